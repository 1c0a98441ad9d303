/* Pieces of the http worker shared between its files. The router, produce path,
 * auth, limits and metrics live in http.c (and friends); the read path (consume,
 * topic partition info, long-poll), which talks to the replay worker over
 * ipc/read_msg.h, lives in http_read.c. */
#ifndef SK_HTTP_INTERNAL_H
#define SK_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/sk_error.h"
#include "common/sk_limits.h"
#include "store/meta.h"
#include "workers/worker.h"

struct http_req;
struct evbuffer;

/* Replies (http.c). Every reply is JSON with Content-Type application/json.
 * http_reply_json takes ownership of the bytes in body (drains it). */
void http_reply_json(struct http_req *req, int status, struct evbuffer *body);
/* {"error":"<code>","message":"<sentence>"}; code is a short snake_case word
 * (bad_request, not_found, out_of_range, unavailable, ...). */
void http_reply_error(struct http_req *req, int status, const char *code, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));
/* Count a finished request for /metrics (route label, status). http_read.c calls it
 * for the replies it sends. */
void http_metrics_count(const char *route, int status);

/* Arguments of GET /broker/consume/{topic}/{group}/{partition}, already validated. */
struct http_consume_args {
	uint32_t partition;
	char group[SK_GROUP_NAME_BYTES_MAX + 1];
	bool has_offset;
	uint64_t offset;
	uint32_t limit;
	uint64_t max_bytes;
	uint8_t encoding; /* enum read_encoding */
	uint32_t wait_ms; /* 0 = answer at once */
};

/* Read path (http_read.c). */
sk_err http_read_init(struct worker_ctx *ctx);
void http_read_fini(void);
/* Serve a consume; replies itself (200, or 400/404/416-style errors, 503 when replay
 * is down). Long-polls up to wait_ms when nothing is available. */
void http_read_consume(struct http_req *req, const struct meta_topic *topic,
		       const struct http_consume_args *args);
/* Serve GET /broker/topics/{topic}: every partition's log_start, high_watermark, bytes. */
void http_read_topic_info(struct http_req *req, const struct meta_topic *topic);
/* The commit index moved (http.c calls this on SK_FD_COMMIT_HTTP): re-check long-polls. */
void http_read_on_commit(void);
/* True while the replay worker answers (for /ready). */
bool http_read_replay_up(void);

#endif
