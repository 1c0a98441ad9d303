/* Private pieces of the http worker's write side, shared by http.c (router,
 * auth, limits, replies), http_conn.c (connection slots), http_topics.c (the
 * topic cache over meta.db), http_produce.c (ingress ring, completions,
 * commit waits), http_metrics.c and http_parse.c; HTTP itself is http_server.h. The read side's seam is
 * http_internal.h. One process, one thread: no locks anywhere. */
#ifndef SK_HTTP_WORKER_H
#define SK_HTTP_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/sk_error.h"
#include "store/meta.h"
#include "workers/http/http_internal.h"
#include "workers/http/http_parse.h"
#include "workers/http/http_server.h"
#include "workers/worker.h"

struct http_req;
struct evbuffer;
struct event_base;

/* The worker's context (set in http_init). */
extern struct worker_ctx *http_ctx;

/* ---- replies (http.c) ---- */
/* Send what the caller wrote into the request's output buffer, count it for route,
 * and release the connection's busy mark. */
void http_send(struct http_req *req, enum http_route route, int status);
/* An error reply counted for route; adds Retry-After: 1 to 503s. */
void http_fail(struct http_req *req, enum http_route route, int status, const char *code,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* JSON-escape s[0..len) into out (quotes not included). */
void http_json_escape(struct evbuffer *out, const char *s, size_t len);

/* ---- topic cache over meta.db (http_topics.c) ---- */
struct http_topic {
	struct meta_topic t;
	uint32_t rr; /* round-robin cursor for unkeyed produces */
};
sk_err http_topics_init(const char *data_dir, const struct sk_status_page *page);
void http_topics_fini(void);
/* Look a topic up; reloads when status_page.topics_version moved, or on a miss.
 * SK_ENOTFOUND; SK_EAGAIN when meta.db cannot be read yet. The pointer is valid until the
 * next call into this module. */
sk_err http_topic_find(const char *name, size_t len, struct http_topic **out);
/* Resolve a topic by name for a route, answering 400 (bad name), 404 (unknown) or
 * 503 (topic list not readable yet) itself and returning NULL when it cannot. */
struct http_topic *http_topic_or_fail(struct http_req *req, enum http_route route,
				      const char *name, size_t len);
/* Remember a topic the writer just confirmed (before meta.db may show it). */
void http_topics_learn(const char *name, uint32_t id, uint32_t partitions);
/* Reload if needed, then call fn for every topic in name order. SK_EAGAIN as above. */
sk_err http_topics_each(void (*fn)(const struct http_topic *t, void *arg), void *arg);
/* The open meta.db (read-only), or NULL when it cannot be opened yet. */
meta *http_topics_meta(void);

/* ---- produce path and control entries (http_produce.c) ---- */
sk_err http_produce_init(struct event_base *base, const struct sk_status_page *page);
void http_produce_fini(void);
/* Route handlers; each replies (now or when the entry is committed / times out). */
void http_handle_produce(struct http_req *req, enum http_route route,
			 const struct http_match *m, const char *query);
void http_handle_create_topic(struct http_req *req);
void http_handle_commit(struct http_req *req);
void http_handle_delete_before(struct http_req *req);
void http_handle_retention(struct http_req *req);

/* ---- metrics (http_metrics.c) ---- */
void http_metrics_count_route(enum http_route route, int status);
void http_metrics_produce_latency(uint64_t ns);
/* Prometheus text exposition of everything. */
void http_metrics_render(struct evbuffer *out, const struct sk_status_page *page);

#endif
