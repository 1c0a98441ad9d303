/* Requests waiting for the writer and raft (http_pending.c): the ingress ring
 * (http is its producer), the completion ring (http is its consumer), the
 * commit-index wait and per-request deadlines.
 *
 * Life of a waiting request:
 *   http_pend_alloc()         before anything is pushed (so a full table is a
 *                             clean 503 that changed nothing)
 *   http_ingress_push()       the ingress record; its ring sequence keys the request
 *   http_pend_start(p, seq)   now waiting for the completion with that sequence
 *   completion status != OK   -> http_pend_rejected(p)          (http_produce.c)
 *   status OK, committed      -> http_pend_committed(p)         (http_produce.c)
 *   deadline passed first     -> http_pend_timed_out(p)         (http_produce.c)
 * The pending module frees p after each of those returns. */
#ifndef SK_HTTP_PENDING_H
#define SK_HTTP_PENDING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/sk_error.h"
#include "common/sk_limits.h"
#include "ipc/msg.h"
#include "workers/http/http_parse.h"

struct http_req;
struct event_base;
struct sk_status_page;

enum http_pend_then {
	HTTP_THEN_REPLY = 0,   /* answer the request */
	HTTP_THEN_PRODUCE = 1, /* an auto-create finished: now run the produce */
};

struct http_pend {
	uint64_t seq; /* 0 while free or not pushed yet */
	struct http_req *req;
	uint64_t deadline_ms;
	uint64_t t0_ns;
	uint8_t state;
	uint8_t route; /* enum http_route */
	uint8_t kind;  /* enum msg_req_kind */
	uint8_t then;  /* enum http_pend_then */
	uint32_t partition;
	uint32_t count; /* records pushed */
	uint32_t timeout_ms;
	uint64_t arg; /* commit offset, before_offset, partitions, retention bytes */
	uint64_t arg2;
	struct msg_completion c;
	char topic[SK_TOPIC_NAME_BYTES_MAX + 1];
	char group[SK_GROUP_NAME_BYTES_MAX + 1];
	struct http_pend *prev, *next; /* commit-wait list */
};

sk_err http_pending_init(struct event_base *base, const struct sk_status_page *page,
			 uint32_t pend_max);
void http_pending_fini(void);

/* A free entry (zeroed but for its links), or NULL when every entry is taken. */
struct http_pend *http_pend_alloc(void);
/* Give back an entry that was never started (nothing was pushed for it). */
void http_pend_drop(struct http_pend *p);
/* p was pushed as seq: wait for its completion until now + timeout_ms. */
void http_pend_start(struct http_pend *p, uint64_t seq, uint32_t timeout_ms);

/* Producer side of the ingress ring. SK_EFULL: no room now; SK_EINVAL: too big. */
sk_err http_ingress_push(const struct iovec *iov, int iovcnt, uint64_t *seq_out);
/* Largest payload one ingress record may carry (header included). */
uint32_t http_ingress_record_max(void);

/* Callbacks into http_produce.c. */
void http_pend_rejected(struct http_pend *p);
void http_pend_committed(struct http_pend *p);
void http_pend_timed_out(struct http_pend *p);

struct http_pending_stats {
	uint64_t pending;
	uint64_t ring_bytes_used;
	uint64_t ring_bytes_capacity;
	uint64_t completion_ring_bytes;
	uint64_t timeouts;
	uint64_t completions_ignored;
	uint64_t completions_malformed;
	uint64_t tick_answers;
};
void http_pending_stats(struct http_pending_stats *out);

#endif
