/* Table-driven INI validation: each key names its type, its field and its range.
 * inih hands us (section, key, value, line); the first problem stops the parse. */
#include "common/config.h"

#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const worker_names[SK_WORKER_COUNT] = {"writer", "raft", "replay", "http"};
static const char *const restart_names[] = {"permanent", "transient", "temporary"};
static const char *const strategy_names[] = {"one_for_one", "rest_for_one", "one_for_all"};
static const char *const ack_names[] = {"none", "local", "majority", "all"};

const char *cfg_worker_name(enum sk_worker_id id)
{
	return (unsigned)id < SK_WORKER_COUNT ? worker_names[id] : "?";
}

bool cfg_worker_parse(const char *name, enum sk_worker_id *out)
{
	for (int i = 0; i < SK_WORKER_COUNT; i++)
		if (strcmp(name, worker_names[i]) == 0) {
			*out = (enum sk_worker_id)i;
			return true;
		}
	return false;
}

const char *cfg_restart_name(enum sk_restart r) { return r <= SK_RESTART_TEMPORARY ? restart_names[r] : "?"; }
const char *cfg_strategy_name(enum sk_strategy s) { return s <= SK_ONE_FOR_ALL ? strategy_names[s] : "?"; }
const char *cfg_ack_name(enum sk_ack a) { return a <= SK_ACK_ALL ? ack_names[a] : "?"; }

bool cfg_ack_parse(const char *s, enum sk_ack *out)
{
	for (int i = 0; i <= SK_ACK_ALL; i++)
		if (strcmp(s, ack_names[i]) == 0) {
			*out = (enum sk_ack)i;
			return true;
		}
	return false;
}

enum key_type { K_U32, K_U64, K_BOOL, K_PATH, K_STR, K_HOSTPORT, K_TOKENS, K_ENUM, K_POW2 };

struct key_def {
	const char *section; /* "worker.*" matches every worker section */
	const char *key;
	enum key_type type;
	size_t offset;       /* into sk_config, or into cfg_worker for worker.* */
	uint64_t min, max;   /* integers: inclusive range; strings: max bytes */
	const char *const *names; /* K_ENUM: allowed words, count in max */
};

#define OFF(f) offsetof(sk_config, f)
#define WOFF(f) offsetof(struct cfg_worker, f)

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

static const struct key_def key_defs[] = {
	{"node", "id", K_U32, OFF(node_id), 1, SK_NODE_ID_MAX, NULL},
	{"node", "data_dir", K_PATH, OFF(data_dir), 1, SK_PATH_BYTES_MAX - 1, NULL},
	{"node", "run_dir", K_PATH, OFF(run_dir), 1, SK_PATH_BYTES_MAX - 1, NULL},
	{"node", "log_level", K_STR, OFF(log_level), 0, 4, log_level_names},
	{"http", "listen", K_HOSTPORT, 0, 1, 65535, NULL},
	{"http", "tokens", K_TOKENS, 0, 0, SK_HTTP_TOKENS_MAX, NULL},
	{"http", "allow_anonymous", K_BOOL, OFF(http_allow_anonymous), 0, 1, NULL},
	{"http", "open_health", K_BOOL, OFF(http_open_health), 0, 1, NULL},
	{"http", "open_metrics", K_BOOL, OFF(http_open_metrics), 0, 1, NULL},
	{"http", "partitions_max", K_U32, OFF(http_partitions_max), SK_PARTITIONS_MIN, SK_PARTITIONS_MAX_MAX, NULL},
	{"http", "body_bytes_max", K_U64, OFF(http_body_bytes_max), SK_HTTP_BODY_BYTES_MIN, SK_HTTP_BODY_BYTES_MAX_MAX, NULL},
	{"http", "batch_records_max", K_U32, OFF(http_batch_records_max), SK_HTTP_BATCH_RECORDS_MIN, SK_HTTP_BATCH_RECORDS_MAX_MAX, NULL},
	{"http", "auto_create_topics", K_BOOL, OFF(http_auto_create_topics), 0, 1, NULL},
	{"http", "auto_create_partitions", K_U32, OFF(http_auto_create_partitions), SK_PARTITIONS_MIN, SK_PARTITIONS_MAX_MAX, NULL},
	{"http", "idempotency_window_ms", K_U64, OFF(http_idempotency_window_ms), SK_IDEMPOTENCY_WINDOW_MS_MIN, SK_IDEMPOTENCY_WINDOW_MS_MAX, NULL},
	{"http", "connections_max", K_U32, OFF(http_connections_max), SK_HTTP_CONNECTIONS_MIN, SK_HTTP_CONNECTIONS_MAX_MAX, NULL},
	{"http", "idle_timeout_ms", K_U32, OFF(http_idle_timeout_ms), SK_HTTP_TIMEOUT_MS_MIN, SK_HTTP_TIMEOUT_MS_MAX, NULL},
	{"http", "request_timeout_ms", K_U32, OFF(http_request_timeout_ms), SK_HTTP_TIMEOUT_MS_MIN, SK_HTTP_TIMEOUT_MS_MAX, NULL},
	{"http", "default_ack", K_ENUM, OFF(http_default_ack), 0, 2, ack_names},
	{"storage", "segment_bytes", K_U64, OFF(segment_bytes), SK_SEGMENT_BYTES_MIN, SK_SEGMENT_BYTES_MAX, NULL},
	{"storage", "retention_bytes", K_U64, OFF(retention_bytes), 0, SK_RETENTION_BYTES_MAX, NULL},
	{"storage", "retention_ms", K_U64, OFF(retention_ms), 0, SK_RETENTION_MS_MAX, NULL},
	{"storage", "ring_bytes", K_POW2, OFF(ring_bytes), SK_RING_BYTES_MIN, SK_RING_BYTES_MAX, NULL},
	{"supervisor", "strategy", K_ENUM, OFF(strategy), 0, 3, strategy_names},
	{"supervisor", "intensity", K_U32, OFF(intensity), SK_SUP_INTENSITY_MIN, SK_SUP_INTENSITY_MAX, NULL},
	{"supervisor", "period_ms", K_U32, OFF(period_ms), SK_SUP_PERIOD_MS_MIN, SK_SUP_PERIOD_MS_MAX, NULL},
	{"supervisor", "backoff_min_ms", K_U32, OFF(backoff_min_ms), SK_SUP_BACKOFF_MS_MIN, SK_SUP_BACKOFF_MS_MAX, NULL},
	{"supervisor", "backoff_max_ms", K_U32, OFF(backoff_max_ms), SK_SUP_BACKOFF_MS_MIN, SK_SUP_BACKOFF_MS_MAX, NULL},
	{"supervisor", "stable_after_ms", K_U32, OFF(stable_after_ms), SK_SUP_STABLE_AFTER_MS_MIN, SK_SUP_STABLE_AFTER_MS_MAX, NULL},
	{"supervisor", "hang_timeout_ms", K_U32, OFF(hang_timeout_ms), SK_SUP_HANG_TIMEOUT_MS_MIN, SK_SUP_HANG_TIMEOUT_MS_MAX, NULL},
	{"worker.*", "restart", K_ENUM, WOFF(restart), 0, 3, restart_names},
	{"worker.*", "shutdown_ms", K_U32, WOFF(shutdown_ms), SK_SUP_SHUTDOWN_MS_MIN, SK_SUP_SHUTDOWN_MS_MAX, NULL},
};

_Static_assert(sizeof(key_defs) / sizeof(key_defs[0]) <= 64, "load_ctx.seen is too small");

void cfg_defaults(sk_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->node_id = 1;
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "var/data");
	snprintf(cfg->run_dir, sizeof(cfg->run_dir), "var/run");
	snprintf(cfg->log_level, sizeof(cfg->log_level), "info");
	snprintf(cfg->http_host, sizeof(cfg->http_host), "127.0.0.1");
	cfg->http_port = 7070;
	cfg->http_open_health = true;
	cfg->http_open_metrics = true;
	cfg->http_partitions_max = 64;
	cfg->http_body_bytes_max = 8 * 1024 * 1024;
	cfg->http_batch_records_max = 10000;
	cfg->http_auto_create_partitions = 1;
	cfg->http_idempotency_window_ms = 24ull * 3600 * 1000;
	cfg->http_connections_max = 1024;
	cfg->http_idle_timeout_ms = 60000;
	cfg->http_request_timeout_ms = 10000;
	cfg->http_default_ack = SK_ACK_LOCAL;
	cfg->segment_bytes = 64ull * 1024 * 1024;
	cfg->ring_bytes = 64ull * 1024 * 1024;
	cfg->strategy = SK_ONE_FOR_ONE;
	cfg->intensity = 5;
	cfg->period_ms = 10000;
	cfg->backoff_min_ms = 10;
	cfg->backoff_max_ms = 5000;
	cfg->stable_after_ms = 10000;
	cfg->hang_timeout_ms = 5000;
	for (int i = 0; i < SK_WORKER_COUNT; i++) {
		cfg->workers[i].restart = SK_RESTART_PERMANENT;
		cfg->workers[i].shutdown_ms = 5000;
	}
}

struct load_ctx {
	sk_config *cfg;
	char *err;
	size_t err_len;
	char dir[SK_PATH_BYTES_MAX]; /* directory of the INI file */
	bool failed;
	FILE *file;
	bool seen[SK_WORKER_COUNT + 1][64]; /* [worker or SK_WORKER_COUNT][key_defs index] */
	int line; /* lines read so far: Debian's inih hands the handler no line number */
};

static int load_fail(struct load_ctx *lc, int line, const char *section, const char *key,
		     const char *value, const char *fmt, uint64_t a, uint64_t b)
{
	char why[256];
	snprintf(why, sizeof(why), fmt, (unsigned long long)a, (unsigned long long)b);
	snprintf(lc->err, lc->err_len, "%s:%d: [%s] %s = \"%.200s\": %s", lc->cfg->path, line,
		 section, key, value, why);
	lc->failed = true;
	return 0;
}

static bool parse_u64(const char *v, uint64_t *out)
{
	if (*v == 0 || *v == '-' || *v == '+')
		return false;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno != 0 || *end != 0)
		return false;
	*out = x;
	return true;
}

static int store_enum(struct load_ctx *lc, const struct key_def *d, void *field, int line,
		      const char *section, const char *value, bool as_string)
{
	char allowed[128] = "";
	for (uint64_t i = 0; i < d->max; i++) {
		if (strcmp(value, d->names[i]) == 0) {
			if (as_string)
				snprintf(field, 8, "%s", value);
			else
				*(int *)field = (int)i;
			return 1;
		}
		strncat(allowed, i ? " | " : "", sizeof(allowed) - strlen(allowed) - 1);
		strncat(allowed, d->names[i], sizeof(allowed) - strlen(allowed) - 1);
	}
	char fmt[200];
	snprintf(fmt, sizeof(fmt), "not one of %s", allowed);
	return load_fail(lc, line, section, d->key, value, fmt, 0, 0);
}

static int store_path(struct load_ctx *lc, char *field, int line, const char *section,
		      const char *key, const char *value)
{
	if (*value == 0)
		return load_fail(lc, line, section, key, value, "must not be empty", 0, 0);
	int n = value[0] == '/' ? snprintf(field, SK_PATH_BYTES_MAX, "%s", value)
				: snprintf(field, SK_PATH_BYTES_MAX, "%s/%s", lc->dir, value);
	if (n < 0 || n >= SK_PATH_BYTES_MAX)
		return load_fail(lc, line, section, key, value, "path longer than %llu bytes",
				 SK_PATH_BYTES_MAX - 1, 0);
	return 1;
}

static int store_hostport(struct load_ctx *lc, int line, const char *section, const char *key,
			  const char *value)
{
	const char *colon = strrchr(value, ':');
	uint64_t port;
	if (!colon || colon == value || (size_t)(colon - value) >= sizeof(lc->cfg->http_host) ||
	    !parse_u64(colon + 1, &port) || port < 1 || port > 65535)
		return load_fail(lc, line, section, key, value,
				 "expected HOST:PORT with PORT in %llu..%llu", 1, 65535);
	memcpy(lc->cfg->http_host, value, (size_t)(colon - value));
	lc->cfg->http_host[colon - value] = 0;
	lc->cfg->http_port = (uint16_t)port;
	return 1;
}

/* tokens = a, b c: separated by commas or spaces; each 16..255 printable bytes. */
static int store_tokens(struct load_ctx *lc, int line, const char *section, const char *key,
			const char *value)
{
	sk_config *cfg = lc->cfg;
	cfg->http_token_count = 0;
	const char *p = value;
	while (*p) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, ", \t");
		if (cfg->http_token_count >= SK_HTTP_TOKENS_MAX)
			return load_fail(lc, line, section, key, value, "more than %llu tokens",
					 SK_HTTP_TOKENS_MAX, 0);
		if (n < 16 || n >= SK_HTTP_TOKEN_BYTES_MAX)
			return load_fail(lc, line, section, key, value,
					 "each token must be %llu..%llu bytes", 16,
					 SK_HTTP_TOKEN_BYTES_MAX - 1);
		memcpy(cfg->http_tokens[cfg->http_token_count], p, n);
		cfg->http_tokens[cfg->http_token_count][n] = 0;
		cfg->http_token_count++;
		p += n;
	}
	return 1;
}

static int store_value(struct load_ctx *lc, const struct key_def *d, void *base, int line,
		       const char *section, const char *value)
{
	void *field = (char *)base + d->offset;
	uint64_t x;
	switch (d->type) {
	case K_U32:
	case K_U64:
	case K_POW2:
		if (!parse_u64(value, &x))
			return load_fail(lc, line, section, d->key, value,
					 "not an integer (allowed %llu..%llu)", d->min, d->max);
		if (x < d->min || x > d->max)
			return load_fail(lc, line, section, d->key, value,
					 "out of range (allowed %llu..%llu)", d->min, d->max);
		if (d->type == K_POW2 && (x & (x - 1)) != 0)
			return load_fail(lc, line, section, d->key, value,
					 "must be a power of two in %llu..%llu", d->min, d->max);
		if (d->type == K_U32)
			*(uint32_t *)field = (uint32_t)x;
		else
			*(uint64_t *)field = x;
		return 1;
	case K_BOOL:
		if (strcmp(value, "true") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "false") == 0)
			*(bool *)field = false;
		else
			return load_fail(lc, line, section, d->key, value,
					 "not a boolean (allowed true | false)", 0, 0);
		return 1;
	case K_PATH:
		return store_path(lc, field, line, section, d->key, value);
	case K_STR:
	case K_ENUM:
		return store_enum(lc, d, field, line, section, value, d->type == K_STR);
	case K_HOSTPORT:
		return store_hostport(lc, line, section, d->key, value);
	case K_TOKENS:
		return store_tokens(lc, line, section, d->key, value);
	}
	return 0;
}

static char *load_reader_cb(char *str, int num, void *stream)
{
	struct load_ctx *lc = stream;
	char *r = fgets(str, num, lc->file);
	if (r)
		lc->line++;
	return r;
}

static int load_handler_cb(void *user, const char *section, const char *key, const char *value)
{
	struct load_ctx *lc = user;
	int line = lc->line;
	if (lc->failed)
		return 0;
	void *base = lc->cfg;
	const char *match = section;
	int slot = SK_WORKER_COUNT;
	if (strncmp(section, "worker.", 7) == 0) {
		enum sk_worker_id id;
		if (!cfg_worker_parse(section + 7, &id))
			return load_fail(lc, line, section, key, value,
					 "unknown section (workers are writer, raft, replay, http)", 0, 0);
		base = &lc->cfg->workers[id];
		match = "worker.*";
		slot = (int)id;
	}
	bool section_known = false;
	for (size_t i = 0; i < sizeof(key_defs) / sizeof(key_defs[0]); i++) {
		const struct key_def *d = &key_defs[i];
		if (strcmp(d->section, match) != 0)
			continue;
		section_known = true;
		if (strcmp(d->key, key) != 0)
			continue;
		/* A second assignment is almost always a copy-paste slip: refuse it. */
		if (lc->seen[slot][i])
			return load_fail(lc, line, section, key, value,
					 "key given twice in this section", 0, 0);
		lc->seen[slot][i] = true;
		return store_value(lc, d, base, line, section, value);
	}
	if (!section_known)
		return load_fail(lc, line, section, key, value,
				 "unknown section (allowed node, http, storage, supervisor, worker.NAME)",
				 0, 0);
	return load_fail(lc, line, section, key, value, "unknown key in this section", 0, 0);
}

/* Checks that involve more than one key. */
static sk_err cfg_check_whole(struct load_ctx *lc)
{
	sk_config *cfg = lc->cfg;
	if (cfg->backoff_min_ms > cfg->backoff_max_ms) {
		snprintf(lc->err, lc->err_len,
			 "%s: [supervisor] backoff_min_ms = %u is above backoff_max_ms = %u", cfg->path,
			 cfg->backoff_min_ms, cfg->backoff_max_ms);
		return SK_ECONFIG;
	}
	if (cfg->http_auto_create_partitions > cfg->http_partitions_max) {
		snprintf(lc->err, lc->err_len,
			 "%s: [http] auto_create_partitions = %u is above partitions_max = %u",
			 cfg->path, cfg->http_auto_create_partitions, cfg->http_partitions_max);
		return SK_ECONFIG;
	}
	if (cfg->segment_bytes % 4096 != 0) {
		snprintf(lc->err, lc->err_len,
			 "%s: [storage] segment_bytes = %llu must be a multiple of 4096", cfg->path,
			 (unsigned long long)cfg->segment_bytes);
		return SK_ECONFIG;
	}
	/* One produce request (body plus its header and names) must fit one ring record,
	 * and a ring record is at most a quarter of the ring (ipc/ring.h). */
	uint64_t record_bytes = cfg->http_body_bytes_max + SK_RING_REQUEST_OVERHEAD_BYTES;
	if (cfg->ring_bytes / 4 < record_bytes) {
		snprintf(lc->err, lc->err_len,
			 "%s: [storage] ring_bytes = %llu is too small for [http] body_bytes_max = %llu "
			 "(ring_bytes must be a power of two >= 4 x (body_bytes_max + %u))",
			 cfg->path, (unsigned long long)cfg->ring_bytes,
			 (unsigned long long)cfg->http_body_bytes_max, SK_RING_REQUEST_OVERHEAD_BYTES);
		return SK_ECONFIG;
	}
	return SK_OK;
}

sk_err cfg_load(const char *path, sk_config *cfg, char *err, size_t err_len)
{
	cfg_defaults(cfg);
	struct load_ctx lc = {.cfg = cfg, .err = err, .err_len = err_len};
	char abs[PATH_MAX];
	if (!realpath(path, abs)) {
		snprintf(err, err_len, "%s: cannot open configuration file: %s", path, strerror(errno));
		return SK_EIO;
	}
	snprintf(cfg->path, sizeof(cfg->path), "%s", abs);
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", abs);
	snprintf(lc.dir, sizeof(lc.dir), "%s", dirname(tmp));
	/* Default relative paths resolve against the INI directory too. */
	char def[SK_PATH_BYTES_MAX];
	snprintf(def, sizeof(def), "%s", cfg->data_dir);
	store_path(&lc, cfg->data_dir, 0, "node", "data_dir", def);
	snprintf(def, sizeof(def), "%s", cfg->run_dir);
	store_path(&lc, cfg->run_dir, 0, "node", "run_dir", def);

	FILE *f = fopen(abs, "r");
	if (!f) {
		snprintf(err, err_len, "%s: cannot open configuration file: %s", abs, strerror(errno));
		return SK_EIO;
	}
	lc.file = f;
	int rc = ini_parse_stream(load_reader_cb, &lc, load_handler_cb, &lc);
	fclose(f);
	if (lc.failed)
		return SK_ECONFIG;
	if (rc != 0) {
		snprintf(err, err_len, "%s:%d: malformed line (expected [section] or key = value)",
			 abs, rc);
		return SK_ECONFIG;
	}
	return cfg_check_whole(&lc);
}
