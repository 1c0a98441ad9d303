/* Requests waiting for the writer and raft (see http_pending.h).
 *
 * Entries come from a fixed pool sized at start ([http] connections_max plus
 * a margin: the server hands us one request per connection at a time), found by
 * ring sequence through an open-addressing index (linear probing, backward-
 * shift deletion), and, once their completion said OK, queued in completion
 * order until status_page.commit_index reaches their raft index. Nothing is
 * allocated per request.
 *
 * Completions: http is the only consumer of the completion ring. At start
 * every completion already waiting belongs to a previous http process and is
 * released unread; later, a completion whose sequence is unknown (its request
 * timed out, or a previous process pushed it) is counted and ignored. */
#include "workers/http/http_pending.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "ipc/fds.h"
#include "ipc/ring.h"
#include "ipc/status_page.h"
#include "workers/http/http_internal.h"

#define PEND_TICK_MS 10        /* safety net: commit index, completions, deadlines */
#define CQ_BATCH_MAX 8192      /* completions handled per callback before yielding */

enum pend_state { PEND_FREE = 0, PEND_ALLOCATED, PEND_WAIT_COMPLETION, PEND_WAIT_COMMIT };

static struct {
	struct event_base *base;
	const struct sk_status_page *page;
	ring *in;
	ring *cq;
	struct http_pend *pool;
	uint32_t pool_cap;
	uint32_t *free_list;
	uint32_t free_count;
	uint32_t *index; /* pool index + 1; 0 = empty */
	uint32_t index_mask;
	uint32_t started;
	struct http_pend *wait_head, *wait_tail;
	uint64_t next_deadline_ms;
	uint64_t last_commit;
	struct event *cq_ev, *commit_ev, *tick_ev;
	bool tick_on;
	uint64_t timeouts, ignored, malformed;
	uint64_t answered;     /* requests answered (rejected or committed) */
	uint64_t tick_answers; /* of which by the safety-net tick, not a wake-up */
} P;

/* ---- index by sequence ---- */

static uint32_t index_home(uint64_t seq)
{
	return (uint32_t)((seq * 0x9e3779b97f4a7c15ull) >> 32) & P.index_mask;
}

static void index_put(struct http_pend *p)
{
	uint32_t i = index_home(p->seq);
	while (P.index[i])
		i = (i + 1) & P.index_mask;
	P.index[i] = (uint32_t)(p - P.pool) + 1;
}

static uint32_t index_find(uint64_t seq)
{
	uint32_t i = index_home(seq);
	for (uint32_t n = 0; n <= P.index_mask && P.index[i]; n++) {
		if (P.pool[P.index[i] - 1].seq == seq)
			return i;
		i = (i + 1) & P.index_mask;
	}
	return UINT32_MAX;
}

/* True when home h lies cyclically in (i, j]. */
static bool index_between(uint32_t i, uint32_t h, uint32_t j)
{
	return i <= j ? (i < h && h <= j) : (i < h || h <= j);
}

static void index_del(uint64_t seq)
{
	uint32_t i = index_find(seq);
	if (i == UINT32_MAX)
		return;
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & P.index_mask;
		if (!P.index[j])
			break;
		uint32_t h = index_home(P.pool[P.index[j] - 1].seq);
		if (index_between(i, h, j))
			continue;
		P.index[i] = P.index[j];
		i = j;
	}
	P.index[i] = 0;
}

/* ---- entries ---- */

struct http_pend *http_pend_alloc(void)
{
	if (P.free_count == 0)
		return NULL;
	struct http_pend *p = &P.pool[P.free_list[--P.free_count]];
	memset(p, 0, sizeof(*p));
	p->state = PEND_ALLOCATED;
	return p;
}

static void wait_unlink(struct http_pend *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		P.wait_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		P.wait_tail = p->prev;
	p->prev = p->next = NULL;
}

static void pend_free(struct http_pend *p)
{
	if (p->state == PEND_FREE)
		return;
	if (p->state == PEND_WAIT_COMMIT)
		wait_unlink(p);
	if (p->state == PEND_WAIT_COMPLETION || p->state == PEND_WAIT_COMMIT) {
		index_del(p->seq);
		P.started--;
	}
	p->state = PEND_FREE;
	p->seq = 0;
	p->req = NULL;
	P.free_list[P.free_count++] = (uint32_t)(p - P.pool);
}

void http_pend_drop(struct http_pend *p) { pend_free(p); }

static void tick_arm(void)
{
	if (P.tick_on)
		return;
	struct timeval tv = {.tv_sec = 0, .tv_usec = PEND_TICK_MS * 1000};
	if (event_add(P.tick_ev, &tv) == 0)
		P.tick_on = true;
}

void http_pend_start(struct http_pend *p, uint64_t seq, uint32_t timeout_ms)
{
	p->seq = seq;
	p->state = PEND_WAIT_COMPLETION;
	p->timeout_ms = timeout_ms;
	p->deadline_ms = clock_mono_ms() + timeout_ms;
	index_put(p);
	P.started++;
	if (P.started == 1 || p->deadline_ms < P.next_deadline_ms)
		P.next_deadline_ms = p->deadline_ms;
	tick_arm();
}

/* ---- ingress ---- */

sk_err http_ingress_push(const struct iovec *iov, int iovcnt, uint64_t *seq_out)
{
	return ring_push(P.in, iov, iovcnt, seq_out);
}

uint32_t http_ingress_record_max(void) { return ring_record_bytes_max(P.in); }

/* ---- commit index ---- */

static void commit_check(void)
{
	uint64_t ci = atomic_load(&P.page->commit_index);
	while (P.wait_head && P.wait_head->c.index <= ci) {
		struct http_pend *p = P.wait_head;
		http_pend_committed(p);
		pend_free(p);
		P.answered++;
	}
	if (ci != P.last_commit) {
		P.last_commit = ci;
		http_read_on_commit();
	}
}

static void cq_cb(evutil_socket_t fd, short what, void *arg);

/* raft's wake-up. The writer does not wake this process for the completions of a
 * group commit that wrote frames (raft's commit follows it): they are in the ring
 * before raft was woken, so drain them first, then answer what commit covers. */
static void commit_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	if (ring_depth_bytes(P.cq) > 0)
		cq_cb(-1, EV_READ, NULL);
	commit_check();
}

/* ---- completions ---- */

static void on_completion(const struct msg_completion *c)
{
	uint32_t i = index_find(c->req_seq);
	struct http_pend *p = i == UINT32_MAX ? NULL : &P.pool[P.index[i] - 1];
	if (!p || p->state != PEND_WAIT_COMPLETION || p->kind != c->kind) {
		P.ignored++;
		return;
	}
	p->c = *c;
	if (c->status != SK_OK) {
		http_pend_rejected(p);
		pend_free(p);
		P.answered++;
		return;
	}
	if (atomic_load(&P.page->commit_index) >= c->index) {
		http_pend_committed(p);
		pend_free(p);
		P.answered++;
		return;
	}
	p->state = PEND_WAIT_COMMIT;
	p->prev = P.wait_tail;
	p->next = NULL;
	if (P.wait_tail)
		P.wait_tail->next = p;
	else
		P.wait_head = p;
	P.wait_tail = p;
}

static void cq_malformed(sk_err err)
{
	/* Logged for the first few and then every 1000th, so a broken peer cannot flood the log. */
	P.malformed++;
	if (P.malformed <= 10 || P.malformed % 1000 == 0)
		log_warn("http_completion_malformed", "err=%s count=%llu", sk_errname(err),
			 (unsigned long long)P.malformed);
}

/* Handle up to CQ_BATCH_MAX completions; true when more may be waiting. */
static bool cq_drain(void)
{
	uint64_t cur = ring_head(P.cq);
	struct ring_rec rec;
	struct msg_completion c;
	uint32_t n = 0;
	for (; n < CQ_BATCH_MAX; n++) {
		sk_err err = ring_peek(P.cq, &cur, &rec);
		if (err == SK_EAGAIN)
			break;
		if (err == SK_OK)
			err = msg_completion_decode(rec.payload, rec.len, &c);
		if (err != SK_OK) {
			cq_malformed(err);
			continue;
		}
		on_completion(&c);
	}
	ring_release(P.cq, cur);
	return n == CQ_BATCH_MAX;
}

static void cq_cb(evutil_socket_t fd, short what, void *arg)
{
	ring_wait_done(P.cq);
	bool more = cq_drain();
	ring_wait_prepare(P.cq);
	if (more || ring_depth_bytes(P.cq) > 0)
		event_active(P.cq_ev, EV_READ, 1);
}

/* At start: everything waiting was meant for a previous http process. */
static void cq_skip_stale(void)
{
	uint64_t cur = ring_head(P.cq);
	struct ring_rec rec;
	uint64_t skipped = 0, bound = ring_capacity(P.cq) / SK_RING_RECORD_HEADER_BYTES + 1;
	for (uint64_t n = 0; n < bound; n++) {
		sk_err err = ring_peek(P.cq, &cur, &rec);
		if (err == SK_EAGAIN)
			break;
		skipped++;
	}
	ring_release(P.cq, cur);
	if (skipped)
		log_info("http_completions_skipped", "count=%llu", (unsigned long long)skipped);
}

/* ---- deadlines and the safety-net tick ---- */

static void deadline_sweep(uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (uint32_t i = 0; i < P.pool_cap; i++) {
		struct http_pend *p = &P.pool[i];
		if (p->state != PEND_WAIT_COMPLETION && p->state != PEND_WAIT_COMMIT)
			continue;
		if (p->deadline_ms > now) {
			next = p->deadline_ms < next ? p->deadline_ms : next;
			continue;
		}
		P.timeouts++;
		http_pend_timed_out(p);
		pend_free(p);
	}
	P.next_deadline_ms = next;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	P.tick_on = false;
	uint64_t answered = P.answered;
	if (ring_depth_bytes(P.cq) > 0)
		cq_cb(-1, EV_READ, NULL);
	commit_check();
	/* Answers a wake-up should have brought: the wake-up chain (writer -> raft
	 * -> http) lost one, or raft is down. Counted, so a test can see it. */
	P.tick_answers += P.answered - answered;
	uint64_t now = clock_mono_ms();
	if (P.started && now >= P.next_deadline_ms)
		deadline_sweep(now);
	if (P.started)
		tick_arm();
}

/* ---- setup ---- */

static void fd_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static sk_err pending_alloc(uint32_t pend_max)
{
	uint32_t slots = 2;
	while (slots < 2 * pend_max)
		slots *= 2;
	P.pool_cap = pend_max;
	P.pool = calloc(pend_max, sizeof(*P.pool));
	P.free_list = calloc(pend_max, sizeof(*P.free_list));
	P.index = calloc(slots, sizeof(*P.index));
	if (!P.pool || !P.free_list || !P.index)
		return SK_ENOMEM;
	P.index_mask = slots - 1;
	for (uint32_t i = pend_max; i-- > 0;)
		P.free_list[P.free_count++] = i;
	return SK_OK;
}

static sk_err rings_attach(void)
{
	fd_nonblock(SK_FD_COMPLETION_DATA);
	fd_nonblock(SK_FD_COMMIT_HTTP);
	sk_err err = ring_attach(SK_FD_INGRESS_RING, SK_RING_ID_INGRESS, RING_PRODUCER,
				 SK_FD_INGRESS_DATA, SK_FD_INGRESS_SPACE, &P.in);
	if (err != SK_OK) {
		log_error("http_ring_attach_failed", "ring=ingress err=%s", sk_errname(err));
		return err;
	}
	err = ring_attach(SK_FD_COMPLETION_RING, SK_RING_ID_COMPLETION, RING_CONSUMER,
			  SK_FD_COMPLETION_DATA, SK_FD_COMPLETION_SPACE, &P.cq);
	if (err != SK_OK)
		log_error("http_ring_attach_failed", "ring=completion err=%s", sk_errname(err));
	return err;
}

sk_err http_pending_init(struct event_base *base, const struct sk_status_page *page,
			 uint32_t pend_max)
{
	memset(&P, 0, sizeof(P));
	P.base = base;
	P.page = page;
	P.last_commit = atomic_load(&page->commit_index);
	sk_err err = pending_alloc(pend_max);
	if (err == SK_OK)
		err = rings_attach();
	if (err != SK_OK)
		return err;
	cq_skip_stale();
	P.cq_ev = event_new(base, SK_FD_COMPLETION_DATA, EV_READ | EV_PERSIST, cq_cb, NULL);
	P.commit_ev = event_new(base, SK_FD_COMMIT_HTTP, EV_READ | EV_PERSIST, commit_cb, NULL);
	P.tick_ev = event_new(base, -1, 0, tick_cb, NULL);
	if (!P.cq_ev || !P.commit_ev || !P.tick_ev || event_add(P.cq_ev, NULL) != 0 ||
	    event_add(P.commit_ev, NULL) != 0)
		return SK_ENOMEM;
	ring_wait_prepare(P.cq);
	if (ring_depth_bytes(P.cq) > 0)
		event_active(P.cq_ev, EV_READ, 1);
	return SK_OK;
}

void http_pending_fini(void)
{
	/* The requests belong to the server, which frees them with their connections. */
	if (P.cq_ev)
		event_free(P.cq_ev);
	if (P.commit_ev)
		event_free(P.commit_ev);
	if (P.tick_ev)
		event_free(P.tick_ev);
	ring_detach(P.in);
	ring_detach(P.cq);
	free(P.pool);
	free(P.free_list);
	free(P.index);
	memset(&P, 0, sizeof(P));
}

void http_pending_stats(struct http_pending_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->pending = P.started;
	if (P.in) {
		out->ring_bytes_capacity = ring_capacity(P.in);
		out->ring_bytes_used = ring_capacity(P.in) - ring_free_bytes(P.in);
	}
	if (P.cq)
		out->completion_ring_bytes = ring_depth_bytes(P.cq);
	out->timeouts = P.timeouts;
	out->completions_ignored = P.ignored;
	out->tick_answers = P.tick_answers;
	out->completions_malformed = P.malformed;
}
