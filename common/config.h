/* skiff's one INI file (inih). Every key has a type, a default and a range;
 * cfg_load() rejects the whole file on the first problem with one line:
 *   skiff.ini:12: [http] body_bytes_max = "12x": not an integer (allowed 1024..67108864)
 * Relative paths resolve against the directory of the INI file. */
#ifndef SK_CONFIG_H
#define SK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sk_error.h"
#include "common/sk_limits.h"

#define SK_EXIT_CONFIG 78 /* EX_CONFIG: a restart cannot help */

enum sk_worker_id { SK_W_WRITER = 0, SK_W_RAFT, SK_W_REPLAY, SK_W_HTTP };
enum sk_restart { SK_RESTART_PERMANENT = 0, SK_RESTART_TRANSIENT, SK_RESTART_TEMPORARY };
enum sk_strategy { SK_ONE_FOR_ONE = 0, SK_REST_FOR_ONE, SK_ONE_FOR_ALL };
enum sk_ack { SK_ACK_NONE = 0, SK_ACK_LOCAL, SK_ACK_MAJORITY, SK_ACK_ALL };

struct cfg_worker {
	enum sk_restart restart;
	uint32_t shutdown_ms;
};

typedef struct sk_config {
	char path[SK_PATH_BYTES_MAX]; /* absolute path of the INI file */
	/* [node] */
	uint32_t node_id;
	char data_dir[SK_PATH_BYTES_MAX];
	char run_dir[SK_PATH_BYTES_MAX];
	char log_level[8]; /* debug | info | warn | error */
	/* [http] */
	char http_host[256];
	uint16_t http_port;
	char http_tokens[SK_HTTP_TOKENS_MAX][SK_HTTP_TOKEN_BYTES_MAX];
	uint32_t http_token_count;
	bool http_allow_anonymous;
	bool http_open_health;  /* /health and /ready without a token */
	bool http_open_metrics; /* /metrics without a token */
	uint32_t http_partitions_max;
	uint64_t http_body_bytes_max;
	uint32_t http_batch_records_max;
	bool http_auto_create_topics;
	uint32_t http_auto_create_partitions;
	uint64_t http_idempotency_window_ms;
	uint32_t http_connections_max;
	uint32_t http_idle_timeout_ms;
	uint32_t http_request_timeout_ms; /* default produce timeout_ms */
	enum sk_ack http_default_ack;
	/* [storage] */
	uint64_t segment_bytes;
	uint64_t retention_bytes; /* 0 = keep everything */
	uint64_t retention_ms;    /* 0 = keep everything */
	uint64_t ring_bytes;      /* data area of the ingress ring, power of two */
	/* [supervisor] */
	enum sk_strategy strategy;
	uint32_t intensity;
	uint32_t period_ms;
	uint32_t backoff_min_ms;
	uint32_t backoff_max_ms;
	uint32_t stable_after_ms;
	uint32_t hang_timeout_ms;
	/* [worker.NAME], indexed by enum sk_worker_id */
	struct cfg_worker workers[SK_WORKER_COUNT];
} sk_config;

/* Fill cfg with every default (the values documented in etc/skiff.ini). */
void cfg_defaults(sk_config *cfg);
/* Load and validate path into cfg. On error returns SK_ECONFIG (or SK_EIO when the
 * file cannot be read) and writes one line naming file, line, key, value and what is
 * allowed into err (bounded by err_len). cfg is unspecified after an error. */
sk_err cfg_load(const char *path, sk_config *cfg, char *err, size_t err_len);

/* Names used in INI files, JSON and logs. */
const char *cfg_worker_name(enum sk_worker_id id);
bool cfg_worker_parse(const char *name, enum sk_worker_id *out);
const char *cfg_restart_name(enum sk_restart r);
const char *cfg_strategy_name(enum sk_strategy s);
const char *cfg_ack_name(enum sk_ack a);
bool cfg_ack_parse(const char *s, enum sk_ack *out);

#endif
