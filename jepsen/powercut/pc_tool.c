/* powercut-tool: set up and apply the power-cut model of powercut.h.
 *
 *   powercut-tool init DATA STATE     empty STATE, then take everything now in
 *                                     DATA as durable (run with nothing running)
 *   powercut-tool restore DATA STATE  the cut: replace DATA by its durable image
 *                                     (every process writing DATA must be dead),
 *                                     then init again (notes kept); prints one
 *                                     JSON line describing what was lost
 *   powercut-tool status STATE        print STATE/warnings and STATE/errors;
 *                                     exit 1 when there are errors
 *
 * A restore builds the image in DATA.powercut-new from the durable listing of
 * the root directory down (a directory never fsync'd keeps none of its entries;
 * a file gets its shadow, hard links stay links), then swaps it in with two
 * renames. Files whose name ends in "-shm" are dropped (sqlite rebuilds them). */
#include "powercut.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct restored {
	char key[PC_KEY_BYTES];
	char path[PC_PATH_BYTES];
};

struct restore_ctx {
	struct restored *files;
	size_t count, cap;
	unsigned long long bytes, dirs, links, errors;
};

static int die(const char *what)
{
	fprintf(stderr, "powercut-tool: %s: %s\n", what, strerror(errno));
	return 2;
}

static bool read_text(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(out, 1, cap - 1, f);
	fclose(f);
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
	return n > 0;
}

static bool write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return false;
	bool ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

/* Empty STATE's model and take everything in DATA as durable. keep_notes keeps
 * STATE/warnings and STATE/errors (a restore re-initialises, the notes stay). */
static int init_state(const char *data, const char *state, bool keep_notes)
{
	char p[PC_PATH_BYTES], key[PC_KEY_BYTES];
	enum pc_type type;
	if (mkdir(state, 0755) != 0 && errno != EEXIST)
		return die(state);
	const char *subs[] = {"i", "d", "tmp"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", state, subs[i]);
		pc_remove_tree(p);
		if (mkdir(p, 0755) != 0)
			return die(p);
	}
	const char *files[] = {"root", "data", "warnings", "errors"};
	for (size_t i = 0; i < (keep_notes ? 2u : 4u); i++) {
		snprintf(p, sizeof(p), "%s/%s", state, files[i]);
		unlink(p);
	}
	if (!pc_setup(data, state))
		return die("cannot resolve DATA or STATE");
	int fd = open(pc.data, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || !pc_key_fd(fd, key, &type))
		return die(pc.data);
	close(fd);
	snprintf(p, sizeof(p), "%s/root", pc.state);
	if (!write_text(p, key))
		return die(p);
	snprintf(p, sizeof(p), "%s/data", pc.state);
	if (!write_text(p, pc.data))
		return die(p);
	pc_sync_all();
	return 0;
}

static int unhex(const char *hex, char *out, size_t cap)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 >= cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (char)v;
	}
	out[n / 2] = '\0';
	return (strchr(out, '/') || !strcmp(out, ".") || !strcmp(out, "..") || !out[0]) ? -1 : 0;
}

static int copy_file(const char *from, const char *to, unsigned long long *bytes)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0644);
	int rc = in >= 0 && out >= 0 ? 0 : -1;
	while (rc == 0) {
		ssize_t r = read(in, buf, sizeof(buf));
		if (r == 0)
			break;
		if (r < 0 || write(out, buf, (size_t)r) != r)
			rc = -1;
		else
			*bytes += (unsigned long long)r;
	}
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0)
		rc = -1;
	return rc;
}

static void restore_file(struct restore_ctx *c, const char *key, const char *path)
{
	char shadow[PC_PATH_BYTES];
	for (size_t i = 0; i < c->count; i++) {
		if (!strcmp(c->files[i].key, key)) {
			if (link(c->files[i].path, path) == 0)
				c->links++;
			else
				c->errors++;
			return;
		}
	}
	snprintf(shadow, sizeof(shadow), "%s/i/%s/shadow", pc.state, key);
	if (copy_file(shadow, path, &c->bytes) != 0) {
		fprintf(stderr, "powercut-tool: cannot restore %s from %s: %s\n", path, shadow,
			strerror(errno));
		c->errors++;
		return;
	}
	if (c->count == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		struct restored *bigger = realloc(c->files, c->cap * sizeof(*bigger));
		if (!bigger) {
			c->errors++;
			return;
		}
		c->files = bigger;
	}
	snprintf(c->files[c->count].key, PC_KEY_BYTES, "%s", key);
	snprintf(c->files[c->count].path, PC_PATH_BYTES, "%s", path);
	c->count++;
}

static void restore_dir(struct restore_ctx *c, const char *key, const char *path, int depth)
{
	char listing[PC_PATH_BYTES], line[2 * PC_PATH_BYTES], name[PC_PATH_BYTES];
	char child[PC_PATH_BYTES], ckey[PC_KEY_BYTES], hex[2 * 256 + 2], t;
	if (depth > 64)
		return;
	snprintf(listing, sizeof(listing), "%s/d/%s", pc.state, key);
	FILE *f = fopen(listing, "r");
	if (!f)
		return; /* never fsync'd: no durable entries */
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%c %95s %513s", &t, ckey, hex) != 3 || unhex(hex, name, 256) != 0) {
			c->errors++;
			continue;
		}
		if (pc_excluded_name(name))
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", path, name) >= (int)sizeof(child)) {
			c->errors++;
			continue;
		}
		if (t == 'f') {
			restore_file(c, ckey, child);
		} else if (t == 'd') {
			if (mkdir(child, 0755) != 0) {
				c->errors++;
				continue;
			}
			c->dirs++;
			restore_dir(c, ckey, child, depth + 1);
		} else {
			c->errors++;
		}
	}
	fclose(f);
}

/* Bytes and names under root/rel, for the report. */
static void measure(const char *root, const char *rel, unsigned long long *bytes,
		    unsigned long long *names)
{
	char p[PC_PATH_BYTES], sub[PC_PATH_BYTES];
	snprintf(p, sizeof(p), "%s%s%s", root, *rel ? "/" : "", rel);
	DIR *d = opendir(p);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		if (snprintf(p, sizeof(p), "%s/%s", root, sub) >= (int)sizeof(p) || lstat(p, &st) != 0)
			continue;
		(*names)++;
		if (S_ISDIR(st.st_mode))
			measure(root, sub, bytes, names);
		else
			*bytes += (unsigned long long)st.st_size;
	}
	closedir(d);
}

static int cmd_restore(const char *data, const char *state)
{
	char root[PC_KEY_BYTES], p[PC_PATH_BYTES], fresh[PC_PATH_BYTES], old[PC_PATH_BYTES];
	struct restore_ctx c = {0};
	unsigned long long before_bytes = 0, before_names = 0, after_bytes = 0, after_names = 0;
	if (!pc_setup(data, state))
		return die("cannot resolve DATA or STATE");
	snprintf(p, sizeof(p), "%s/root", pc.state);
	if (!read_text(p, root, sizeof(root)))
		return die(p);
	snprintf(fresh, sizeof(fresh), "%s.powercut-new", pc.data);
	snprintf(old, sizeof(old), "%s.powercut-old", pc.data);
	pc_remove_tree(fresh);
	pc_remove_tree(old);
	if (mkdir(fresh, 0755) != 0)
		return die(fresh);
	restore_dir(&c, root, fresh, 0);
	measure(pc.data, "", &before_bytes, &before_names);
	measure(fresh, "", &after_bytes, &after_names);
	if (rename(pc.data, old) != 0)
		return die(pc.data);
	if (rename(fresh, pc.data) != 0)
		return die(fresh);
	pc_remove_tree(old);
	/* The image is durable as a whole: it is the model's new starting point. */
	int rc = init_state(data, state, true);
	if (rc != 0)
		return rc;
	printf("{\"files\":%zu,\"links\":%llu,\"dirs\":%llu,\"bytes\":%llu,\"bytes_before\":%llu,"
	       "\"names\":%llu,\"names_before\":%llu,\"errors\":%llu}\n",
	       c.count, c.links, c.dirs, after_bytes, before_bytes, after_names, before_names,
	       c.errors);
	free(c.files);
	return c.errors ? 1 : 0;
}

static int cmd_status(const char *state)
{
	char p[PC_PATH_BYTES], line[2048];
	int errors = 0;
	const char *which[] = {"warnings", "errors"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/%s", state, which[i]);
		FILE *f = fopen(p, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			printf("%s: %s", which[i], line);
			errors += i == 1;
		}
		fclose(f);
	}
	return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "init"))
		return init_state(argv[2], argv[3], false);
	if (argc == 4 && !strcmp(argv[1], "restore"))
		return cmd_restore(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "status"))
		return cmd_status(argv[2]);
	fprintf(stderr, "usage: powercut-tool init DATA STATE | restore DATA STATE | status STATE\n");
	return 2;
}
