/* The power-cut model shared by libpowercut.so and powercut-tool: inode keys,
 * shadows, dirty records and directory listings. The STATE layout is in
 * powercut.h. Every file operation here is a raw system call, so this code
 * never re-enters the interposed wrappers. */
#include "powercut.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct pc_ctx pc;

/* ------------------------------------------------------------ system calls */

int pc_sys_openat(int dirfd, const char *path, int flags, unsigned mode)
{
	return (int)syscall(SYS_openat, dirfd, path, flags | O_CLOEXEC, mode);
}

int pc_sys_open(const char *path, int flags, unsigned mode)
{
	return pc_sys_openat(AT_FDCWD, path, flags, mode);
}

int pc_sys_close(int fd) { return (int)syscall(SYS_close, fd); }

long pc_sys_pread(int fd, void *buf, size_t n, uint64_t off)
{
	return syscall(SYS_pread64, fd, buf, n, (off_t)off);
}

long pc_sys_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
	return syscall(SYS_pwrite64, fd, buf, n, (off_t)off);
}

int pc_sys_ftruncate(int fd, uint64_t size) { return (int)syscall(SYS_ftruncate, fd, (off_t)size); }

int pc_sys_fsync(int fd) { return (int)syscall(SYS_fsync, fd); }

static long sys_write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		long w = syscall(SYS_write, fd, (const char *)buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return (long)done;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------ notes */

void pc_note(const char *which, const char *fmt, ...)
{
	char path[PC_PATH_BYTES], line[1024];
	if (!pc.ready)
		return;
	int n = snprintf(line, sizeof(line), "pid %d: ", (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	snprintf(path, sizeof(path), "%s/%s", pc.state, which);
	int fd = pc_sys_open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		return;
	sys_write_all(fd, line, (size_t)n);
	pc_sys_close(fd);
}

/* ------------------------------------------------------------ setup, keys */

bool pc_setup(const char *data_dir, const char *state_dir)
{
	char real[PATH_MAX];
	pc.ready = false;
	if (!data_dir || !state_dir || !realpath(data_dir, real) || strlen(real) >= sizeof(pc.data))
		return false;
	snprintf(pc.data, sizeof(pc.data), "%s", real);
	pc.data_len = strlen(pc.data);
	if (!realpath(state_dir, real) || strlen(real) >= sizeof(pc.state))
		return false;
	snprintf(pc.state, sizeof(pc.state), "%s", real);
	pc.ready = true;
	return true;
}

static bool key_from_statx(const struct statx *sx, char key[PC_KEY_BYTES], enum pc_type *type)
{
	unsigned long long dev = ((unsigned long long)sx->stx_dev_major << 32) | sx->stx_dev_minor;
	long long bsec = 0;
	unsigned bnsec = 0;
	if (sx->stx_mask & STATX_BTIME) {
		bsec = sx->stx_btime.tv_sec;
		bnsec = sx->stx_btime.tv_nsec;
	}
	snprintf(key, PC_KEY_BYTES, "%llx-%llu-%lld.%09u", dev, (unsigned long long)sx->stx_ino,
		 bsec, bnsec);
	*type = S_ISREG(sx->stx_mode) ? PC_FILE : S_ISDIR(sx->stx_mode) ? PC_DIR : PC_OTHER;
	return true;
}

bool pc_key_at(int dirfd, const char *name, char key[PC_KEY_BYTES], enum pc_type *type)
{
	struct statx sx;
	unsigned mask = STATX_TYPE | STATX_INO | STATX_BTIME;
	if (syscall(SYS_statx, dirfd, name, AT_SYMLINK_NOFOLLOW, mask, &sx) != 0)
		return false;
	return key_from_statx(&sx, key, type);
}

bool pc_key_fd(int fd, char key[PC_KEY_BYTES], enum pc_type *type)
{
	struct statx sx;
	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO | STATX_BTIME, &sx) != 0)
		return false;
	return key_from_statx(&sx, key, type);
}

bool pc_excluded_name(const char *name)
{
	size_t n = strlen(name);
	return n >= 4 && strcmp(name + n - 4, "-shm") == 0;
}

bool pc_tracked_fd(int fd, char key[PC_KEY_BYTES], enum pc_type *type)
{
	struct statx sx;
	char link[64], path[PC_PATH_BYTES];
	if (!pc.ready || fd < 0)
		return false;
	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO | STATX_BTIME, &sx) != 0)
		return false;
	if (!S_ISREG(sx.stx_mode) && !S_ISDIR(sx.stx_mode))
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	long n = syscall(SYS_readlinkat, AT_FDCWD, link, path, sizeof(path) - 1);
	if (n <= 0)
		return false;
	path[n] = '\0';
	if (strncmp(path, pc.data, pc.data_len) != 0 || (path[pc.data_len] != '/' && path[pc.data_len]))
		return false;
	const char *base = strrchr(path, '/');
	if (pc_excluded_name(base ? base + 1 : path))
		return false;
	return key_from_statx(&sx, key, type);
}

/* ------------------------------------------------------------ inodes */

static void inode_path(char *out, const char *key, const char *leaf)
{
	snprintf(out, PC_PATH_BYTES, "%s/i/%s%s%s", pc.state, key, leaf ? "/" : "", leaf ? leaf : "");
}

bool pc_inode_known(const char *key)
{
	char p[PC_PATH_BYTES];
	struct statx sx;
	inode_path(p, key, NULL);
	return syscall(SYS_statx, AT_FDCWD, p, 0, STATX_TYPE, &sx) == 0;
}

/* Copy src[off, off+len) (len PC_TO_EOF: to its end) to dst at the same offset.
 * Returns the end offset reached, or -1. */
static int64_t copy_range(int src, int dst, uint64_t off, uint64_t len)
{
	char buf[32768];
	uint64_t end = len == PC_TO_EOF ? UINT64_MAX : off + len;
	while (off < end) {
		size_t want = end - off < sizeof(buf) ? (size_t)(end - off) : sizeof(buf);
		long r = pc_sys_pread(src, buf, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		long done = 0;
		while (done < r) {
			long w = pc_sys_pwrite(dst, buf + done, (size_t)(r - done), off + (uint64_t)done);
			if (w <= 0)
				return -1;
			done += w;
		}
		off += (uint64_t)r;
	}
	return (int64_t)off;
}

static int write_file(const char *path, const void *buf, size_t n)
{
	int fd = pc_sys_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	long w = n ? sys_write_all(fd, buf, n) : 0;
	pc_sys_close(fd);
	return w == (long)n ? 0 : -1;
}


int pc_inode_init(const char *key, int src_fd)
{
	char tmp[PC_DIR_BYTES + 256], p[PC_PATH_BYTES], final[PC_PATH_BYTES];
	uint8_t zero[8] = {0};
	if (pc_inode_known(key))
		return 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s.%d.%ld", pc.state, key, (int)getpid(), ts.tv_nsec);
	if (syscall(SYS_mkdirat, AT_FDCWD, tmp, 0755) != 0)
		goto fail;
	snprintf(p, sizeof(p), "%s/shadow", tmp);
	int fd = pc_sys_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		goto fail_tmp;
	int64_t copied = src_fd >= 0 ? copy_range(src_fd, fd, 0, PC_TO_EOF) : 0;
	pc_sys_close(fd);
	if (copied < 0)
		goto fail_tmp;
	snprintf(p, sizeof(p), "%s/dirty", tmp);
	if (write_file(p, NULL, 0) != 0)
		goto fail_tmp;
	snprintf(p, sizeof(p), "%s/cursor", tmp);
	if (write_file(p, zero, sizeof(zero)) != 0)
		goto fail_tmp;
	inode_path(final, key, NULL);
	if (syscall(SYS_renameat, AT_FDCWD, tmp, AT_FDCWD, final) != 0) {
		pc_remove_tree(tmp); /* another process initialised it first */
		return pc_inode_known(key) ? 0 : -1;
	}
	return 0;
fail_tmp:
	pc_remove_tree(tmp);
fail:
	pc_note("errors", "cannot initialise state of inode %s: %s", key, strerror(errno));
	return -1;
}

void pc_dirty_add(const char *key, enum pc_kind kind, uint64_t a, uint64_t b)
{
	char p[PC_PATH_BYTES];
	uint8_t rec[PC_RECORD_BYTES] = {0};
	put_le32(rec, (uint32_t)kind);
	put_le64(rec + 8, a);
	put_le64(rec + 16, b);
	inode_path(p, key, "dirty");
	int fd = pc_sys_open(p, O_WRONLY | O_APPEND, 0);
	/* One write of 24 bytes to an O_APPEND file: records never interleave. */
	if (fd < 0 || sys_write_all(fd, rec, sizeof(rec)) != (long)sizeof(rec))
		pc_note("errors", "cannot record a change of inode %s: %s", key, strerror(errno));
	if (fd >= 0)
		pc_sys_close(fd);
}

static void apply_record(const uint8_t *rec, int src, int shadow, const char *key)
{
	uint32_t kind = get_le32(rec);
	uint64_t a = get_le64(rec + 8), b = get_le64(rec + 16);
	struct stat st;
	if (kind == PC_WRITE) {
		if (copy_range(src, shadow, a, b) < 0)
			pc_note("errors", "inode %s: cannot copy %llu+%llu to its shadow: %s", key,
				(unsigned long long)a, (unsigned long long)b, strerror(errno));
	} else if (kind == PC_SETSIZE) {
		pc_sys_ftruncate(shadow, a);
	} else if (kind == PC_EXTEND) {
		if (syscall(SYS_fstat, shadow, &st) == 0 && (uint64_t)st.st_size < a)
			pc_sys_ftruncate(shadow, a);
	} else {
		pc_note("errors", "inode %s: dirty record of unknown kind %u", key, kind);
	}
}

int pc_flush(const char *key, int src_fd)
{
	char p[PC_PATH_BYTES];
	uint8_t cur[8], recs[PC_RECORD_BYTES * 256];
	int rc = -1;
	inode_path(p, key, "shadow");
	int shadow = pc_sys_open(p, O_RDWR, 0);
	if (shadow < 0)
		goto out;
	syscall(SYS_flock, shadow, LOCK_EX);
	inode_path(p, key, "cursor");
	int cfd = pc_sys_open(p, O_RDWR, 0);
	inode_path(p, key, "dirty");
	int dfd = pc_sys_open(p, O_RDONLY, 0);
	if (cfd < 0 || dfd < 0 || pc_sys_pread(cfd, cur, 8, 0) != 8)
		goto out_close;
	uint64_t pos = get_le64(cur);
	for (;;) {
		long n = pc_sys_pread(dfd, recs, sizeof(recs), pos);
		if (n < 0 && errno == EINTR)
			continue;
		n -= n % PC_RECORD_BYTES; /* a record is whole once its write returned */
		if (n <= 0)
			break;
		for (long i = 0; i < n; i += PC_RECORD_BYTES)
			apply_record(recs + i, src_fd, shadow, key);
		pos += (uint64_t)n;
	}
	put_le64(cur, pos);
	rc = pc_sys_pwrite(cfd, cur, 8, 0) == 8 ? 0 : -1;
out_close:
	if (cfd >= 0)
		pc_sys_close(cfd);
	if (dfd >= 0)
		pc_sys_close(dfd);
	pc_sys_close(shadow); /* releases the flock */
out:
	if (rc != 0)
		pc_note("errors", "cannot make inode %s durable: %s", key, strerror(errno));
	return rc;
}

/* ------------------------------------------------------------ directories */

struct pc_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static void hex_name(char *out, size_t cap, const char *name)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (const unsigned char *s = (const unsigned char *)name; *s && o + 3 < cap; s++) {
		out[o++] = hex[*s >> 4];
		out[o++] = hex[*s & 15];
	}
	out[o] = '\0';
}

/* Append "T KEY HEX\n" for one entry of dirfd to buf; regular files get state. */
static size_t list_entry(int dirfd, const char *name, char *buf, size_t used, size_t cap)
{
	char key[PC_KEY_BYTES], hex[2 * 256 + 1];
	enum pc_type type;
	if (pc_excluded_name(name) || !pc_key_at(dirfd, name, key, &type))
		return used;
	if (type == PC_OTHER) {
		pc_note("warnings", "%s: not a file or directory, not modelled", name);
		return used;
	}
	if (type == PC_FILE && !pc_inode_known(key)) {
		int src = pc_sys_openat(dirfd, name, O_RDONLY | O_NOFOLLOW, 0);
		pc_note("warnings", "%s: first seen in a directory sync; its content is taken as durable",
			name);
		pc_inode_init(key, src);
		if (src >= 0)
			pc_sys_close(src);
	}
	hex_name(hex, sizeof(hex), name);
	int n = snprintf(buf + used, cap - used, "%c %s %s\n", type == PC_FILE ? 'f' : 'd', key, hex);
	return n > 0 && (size_t)n < cap - used ? used + (size_t)n : used;
}

int pc_dir_snapshot(int dirfd, const char *key)
{
	char p[PC_PATH_BYTES], tmp[PC_PATH_BYTES], lockp[PC_PATH_BYTES], ents[16384];
	size_t cap = 65536, used = 0;
	int rc = -1;
	char *buf = malloc(cap);
	int dfd = pc_sys_openat(dirfd, ".", O_RDONLY | O_DIRECTORY, 0);
	snprintf(lockp, sizeof(lockp), "%s/d/%s.lock", pc.state, key);
	int lfd = pc_sys_open(lockp, O_RDWR | O_CREAT, 0644);
	if (!buf || dfd < 0 || lfd < 0)
		goto out;
	syscall(SYS_flock, lfd, LOCK_EX);
	for (;;) {
		long n = syscall(SYS_getdents64, dfd, ents, sizeof(ents));
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct pc_dirent64 *d = (struct pc_dirent64 *)(ents + off);
			off += d->d_reclen;
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				continue;
			if (cap - used < 2048) {
				char *bigger = realloc(buf, cap * 2);
				if (!bigger)
					goto out;
				buf = bigger;
				cap *= 2;
			}
			used = list_entry(dfd, d->d_name, buf, used, cap);
		}
	}
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(tmp, sizeof(tmp), "%s/tmp/d.%s.%d.%ld", pc.state, key, (int)getpid(), ts.tv_nsec);
	snprintf(p, sizeof(p), "%s/d/%s", pc.state, key);
	if (write_file(tmp, buf, used) == 0 &&
	    syscall(SYS_renameat, AT_FDCWD, tmp, AT_FDCWD, p) == 0)
		rc = 0;
out:
	if (rc != 0)
		pc_note("errors", "cannot record the listing of directory %s: %s", key, strerror(errno));
	if (lfd >= 0)
		pc_sys_close(lfd);
	if (dfd >= 0)
		pc_sys_close(dfd);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------ whole tree */

static void sync_tree(int dirfd, int depth)
{
	char ents[16384], key[PC_KEY_BYTES];
	enum pc_type type;
	char dkey[PC_KEY_BYTES];
	if (depth > 64 || !pc_key_fd(dirfd, dkey, &type))
		return;
	for (;;) {
		long n = syscall(SYS_getdents64, dirfd, ents, sizeof(ents));
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct pc_dirent64 *d = (struct pc_dirent64 *)(ents + off);
			off += d->d_reclen;
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..") ||
			    pc_excluded_name(d->d_name) || !pc_key_at(dirfd, d->d_name, key, &type))
				continue;
			int fd = type == PC_OTHER ? -1
						  : pc_sys_openat(dirfd, d->d_name, O_RDONLY | O_NOFOLLOW, 0);
			if (fd < 0)
				continue;
			if (type == PC_DIR) {
				sync_tree(fd, depth + 1);
			} else if (type == PC_FILE) {
				if (!pc_inode_known(key))
					pc_inode_init(key, fd);
				else
					pc_flush(key, fd);
			}
			pc_sys_close(fd);
		}
	}
	/* Last, so every file it lists already has its state. */
	pc_dir_snapshot(dirfd, dkey);
}

void pc_sync_all(void)
{
	int fd = pc_sys_open(pc.data, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return;
	sync_tree(fd, 0);
	pc_sys_close(fd);
}

void pc_remove_tree(const char *dir)
{
	char ents[16384], p[PC_PATH_BYTES];
	int fd = pc_sys_open(dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd >= 0) {
		for (;;) {
			long n = syscall(SYS_getdents64, fd, ents, sizeof(ents));
			if (n <= 0)
				break;
			for (long off = 0; off < n;) {
				struct pc_dirent64 *d = (struct pc_dirent64 *)(ents + off);
				off += d->d_reclen;
				if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
					continue;
				snprintf(p, sizeof(p), "%s/%s", dir, d->d_name);
				if (syscall(SYS_unlinkat, AT_FDCWD, p, 0) != 0)
					pc_remove_tree(p);
			}
		}
		pc_sys_close(fd);
	}
	syscall(SYS_unlinkat, AT_FDCWD, dir, AT_REMOVEDIR);
}
