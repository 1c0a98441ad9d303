/* The http worker's read path: GET /broker/consume/... and GET /broker/topics/{topic}
 * answered by the replay worker over ipc/read_msg.h (nng pair1, dialing
 * ipc://RUN_DIR/replay.sock; nng redials by itself after replay restarts).
 *
 * Event loop integration: the loop polls NNG_OPT_RECVFD and uses non-blocking
 * nng_recvmsg/nng_sendmsg. nng threads run only http_read_pipe_cb, which updates
 * two atomics and writes an eventfd; the loop reads that eventfd and does the rest.
 *
 * Reads in flight live in a table of slots allocated at start, one per allowed
 * connection (a connection has at most one request being answered). A request's
 * req_id is (generation << 16) | slot: a reply whose slot has moved on (it timed
 * out, or it answers a previous incarnation of this process) does not match and is
 * dropped. Generations start at a random value in each process.
 *
 * Deadlines: replay must answer within HTTP_READ_DEADLINE_MS (plus time for a
 * large read from a slow disk), else 503 with Retry-After. When the replay pipe
 * drops, every read sent on it is answered 503 at once; while no pipe is up, new
 * reads get 503 without being sent.
 *
 * Long-poll: a consume that returns no record with wait_ms > 0 is parked with its
 * start offset fixed (so a commit by the group meanwhile does not move it). Each
 * http_read_on_commit() re-sends every parked read; a read that was in flight
 * during a commit is re-sent when its empty answer comes back (the replay may have
 * looked before the commit). The commit index does not say which partition moved,
 * so under a steady stream of commits to other partitions each waiting read is
 * re-checked at most once per HTTP_READ_RECHECK_MS (a due re-check waits on the
 * slot's timer) instead of keeping replay busy with empty reads. At the end of
 * wait_ms the read is checked one last time if a commit came since, else the last
 * empty result is sent. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/transport/ipc/ipc.h>

#include "common/clock.h"
#include "common/log.h"
#include "ipc/read_msg.h"
#include "workers/http/http_internal.h"
#include "workers/replay/replay_format.h"

#define HTTP_READ_DEADLINE_MS 2000
/* A large read from a cold, slow disk (edge flash) is not a hung replay: the
 * deadline grows by max_bytes at this rate (16 MiB/s: +4 s for the 64 MiB max). */
#define HTTP_READ_SLOW_BYTES_PER_MS (16u * 1024 * 1024 / 1000)
#define HTTP_READ_SLOTS_MAX 65536 /* the slot number is 16 bits of req_id */
#define HTTP_READ_BATCH_MAX 64    /* replies handled per wake-up */
#define HTTP_READ_RECHECK_MS 10   /* a waiting read is re-sent at most this often */
#define HTTP_READ_RECV_BUF_MSGS 4 /* replies can be large: bounds what nng holds */
#define HTTP_READ_SEND_BUF_MSGS 1024
#define HTTP_READ_NNG_TIMEOUT_MS 1000
#define HTTP_READ_REDIAL_MIN_MS 10
#define HTTP_READ_REDIAL_MAX_MS 200
#define HTTP_READ_ROUTE_CONSUME "consume"
#define HTTP_READ_ROUTE_TOPIC "topic"

_Static_assert(SK_HTTP_CONNECTIONS_MAX_MAX <= HTTP_READ_SLOTS_MAX, "slot number must fit 16 bits");

enum slot_state { SLOT_FREE = 0, SLOT_SENT, SLOT_PARKED };

struct read_slot {
	struct http_req *req;
	uint16_t gen;
	uint8_t state;
	uint32_t index;
	uint32_t removals_at_send; /* pipe removals counted when the request went out */
	uint64_t commits_at_send;  /* http_read_on_commit calls counted then */
	uint64_t sent_ms;          /* when it last went to replay (monotonic) */
	bool recheck_due;          /* PARKED: a commit came; re-send when the timer fires */
	uint64_t wait_until_ms;    /* long-poll end (monotonic); 0 = no long-poll */
	struct read_req q;
	struct read_reply last; /* PARKED: the empty result to send when the wait ends */
	char topic_name[SK_TOPIC_NAME_BYTES_MAX + 1];
	struct event timer; /* SENT: replay deadline; PARKED: end of the wait */
	struct read_slot *next_parked;
	struct read_slot *prev_parked;
	struct read_slot *next_free;
};

struct http_read {
	struct worker_ctx *ctx;
	nng_socket sock;
	bool sock_open;
	int pipe_efd;
	struct event *recv_ev;
	struct event *pipe_ev;
	struct read_slot *slots;
	uint32_t slot_count;
	struct read_slot *free_list;
	struct read_slot *parked;
	uint64_t commits;
	uint32_t removals_seen;
	struct evbuffer *out; /* reused reply buffer (http_reply_json drains it) */
	/* Written by nng threads (http_read_pipe_cb). */
	_Atomic uint32_t pipe_id;
	_Atomic uint32_t removals;
	/* Counters for the log. */
	uint64_t stale_replies;
	uint64_t malformed_replies;
};

static struct http_read *hr;

/* ---- nng pipe events (nng threads) ---- */

static void http_read_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct http_read *h = arg;
	uint32_t id = nng_pipe_id(p);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_store(&h->pipe_id, id);
		return;
	}
	uint32_t expect = id;
	if (atomic_compare_exchange_strong(&h->pipe_id, &expect, 0)) {
		atomic_fetch_add(&h->removals, 1);
		uint64_t one = 1;
		ssize_t n = write(h->pipe_efd, &one, sizeof(one)); /* wakes the loop */
		(void)n;
	}
}

bool http_read_replay_up(void) { return hr && atomic_load(&hr->pipe_id) != 0; }

/* ---- slots ---- */

static struct read_slot *slot_alloc(struct http_read *h)
{
	struct read_slot *s = h->free_list;
	if (!s)
		return NULL;
	h->free_list = s->next_free;
	s->next_free = NULL;
	return s;
}

/* The request is answered: forget it; a late reply for this generation is dropped. */
static void slot_unpark(struct http_read *h, struct read_slot *s);

static void slot_release(struct http_read *h, struct read_slot *s)
{
	event_del(&s->timer);
	if (s->state == SLOT_PARKED)
		slot_unpark(h, s);
	s->state = SLOT_FREE;
	s->req = NULL;
	s->gen++;
	s->next_free = h->free_list;
	h->free_list = s;
}

static void arm_ms(struct event *ev, uint64_t ms)
{
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
	event_add(ev, &tv);
}

/* The parked read's timer: its re-check when one is due, else the end of its wait. */
static void slot_arm_parked(struct read_slot *s, uint64_t now_ms)
{
	uint64_t at = s->wait_until_ms;
	if (s->recheck_due && s->sent_ms + HTTP_READ_RECHECK_MS < at)
		at = s->sent_ms + HTTP_READ_RECHECK_MS;
	arm_ms(&s->timer, at > now_ms ? at - now_ms : 0);
}

static void slot_park(struct http_read *h, struct read_slot *s, uint64_t now_ms)
{
	s->state = SLOT_PARKED;
	s->prev_parked = NULL;
	s->next_parked = h->parked;
	if (h->parked)
		h->parked->prev_parked = s;
	h->parked = s;
	slot_arm_parked(s, now_ms);
}

static void slot_unpark(struct http_read *h, struct read_slot *s)
{
	event_del(&s->timer);
	if (s->prev_parked)
		s->prev_parked->next_parked = s->next_parked;
	else
		h->parked = s->next_parked;
	if (s->next_parked)
		s->next_parked->prev_parked = s->prev_parked;
	s->next_parked = s->prev_parked = NULL;
	s->state = SLOT_FREE; /* the caller sets the next state */
}

static const char *slot_route(const struct read_slot *s)
{
	return s->q.kind == READ_CONSUME ? HTTP_READ_ROUTE_CONSUME : HTTP_READ_ROUTE_TOPIC;
}

/* ---- replies to the client ---- */

/* 503 unavailable; http_reply_error adds "Retry-After: 1" to every 503. */
static void reply_unavailable(struct http_req *req, const char *route, const char *why)
{
	http_reply_error(req, 503, "unavailable", "%s; retry in a moment", why);
	http_metrics_count(route, 503);
}

static void nng_msg_free_cb(const void *data, size_t len, void *msg) { nng_msg_free(msg); }

/* Append the reply body (a JSON array) to b without copying it: the evbuffer keeps a
 * reference into the nng message and frees the message once the bytes are sent.
 * Takes ownership of msg (may be NULL: then "[]"). */
static bool add_body(struct evbuffer *b, const struct read_reply *rep, nng_msg *msg)
{
	if (!msg || rep->body_len == 0) {
		if (msg)
			nng_msg_free(msg);
		return evbuffer_add(b, "[]", 2) == 0;
	}
	if (evbuffer_add_reference(b, rep->body, rep->body_len, nng_msg_free_cb, msg) != 0) {
		nng_msg_free(msg);
		return false;
	}
	return true;
}

static void reply_consume(struct http_read *h, struct read_slot *s, const struct read_reply *rep,
			  nng_msg *msg)
{
	struct evbuffer *b = h->out;
	evbuffer_drain(b, evbuffer_get_length(b));
	bool ok = evbuffer_add(b, "{\"messages\":", 12) == 0 && add_body(b, rep, msg);
	msg = NULL;
	char tail[192];
	int n;
	if (rep->committed_offset == SK_READ_NO_COMMIT)
		n = snprintf(tail, sizeof(tail),
			     ",\"count\":%u,\"next_offset\":%llu,\"committed_offset\":null,"
			     "\"high_watermark\":%llu,\"log_start\":%llu}",
			     rep->count, (unsigned long long)rep->next_offset,
			     (unsigned long long)rep->high_watermark, (unsigned long long)rep->log_start);
	else
		n = snprintf(tail, sizeof(tail),
			     ",\"count\":%u,\"next_offset\":%llu,\"committed_offset\":%llu,"
			     "\"high_watermark\":%llu,\"log_start\":%llu}",
			     rep->count, (unsigned long long)rep->next_offset,
			     (unsigned long long)rep->committed_offset,
			     (unsigned long long)rep->high_watermark, (unsigned long long)rep->log_start);
	ok = ok && n > 0 && (size_t)n < sizeof(tail) && evbuffer_add(b, tail, (size_t)n) == 0;
	if (!ok) {
		evbuffer_drain(b, evbuffer_get_length(b));
		http_reply_error(s->req, 500, "internal", "out of memory while building the reply");
		http_metrics_count(HTTP_READ_ROUTE_CONSUME, 500);
		return;
	}
	http_reply_json(s->req, 200, b);
	http_metrics_count(HTTP_READ_ROUTE_CONSUME, 200);
}

/* 416 with the log start and the high watermark: the offset asked for (next_offset
 * in the reply) is below the log start (the records were deleted by delete-before or
 * retention) or past the high watermark. Never an empty success, so a consumer cannot
 * skip data unknowingly. */
static void reply_out_of_range(struct http_read *h, struct read_slot *s,
			       const struct read_reply *rep)
{
	struct evbuffer *b = h->out;
	evbuffer_drain(b, evbuffer_get_length(b));
	unsigned long long offset = rep->next_offset, log_start = rep->log_start,
			   hw = rep->high_watermark;
	if (offset < log_start)
		evbuffer_add_printf(b,
				    "{\"error\":\"out_of_range\",\"message\":\"offset %llu is below the "
				    "log start %llu of partition %u: the records before it were deleted; "
				    "read from offset %llu\"",
				    offset, log_start, s->q.partition, log_start);
	else
		evbuffer_add_printf(b,
				    "{\"error\":\"out_of_range\",\"message\":\"offset %llu is past the "
				    "high watermark %llu of partition %u: no record has that offset yet\"",
				    offset, hw, s->q.partition);
	evbuffer_add_printf(b, ",\"offset\":%llu,\"log_start\":%llu,\"high_watermark\":%llu}",
			    offset, log_start, hw);
	http_reply_json(s->req, 416, b);
	http_metrics_count(HTTP_READ_ROUTE_CONSUME, 416);
}

/* Any other status from replay. */
static void reply_read_error(struct http_read *h, struct read_slot *s, const struct read_reply *rep)
{
	const char *route = slot_route(s);
	int code = 500;
	switch (rep->status) {
	case SK_ERANGE:
		if (s->q.kind == READ_CONSUME) {
			reply_out_of_range(h, s, rep);
			return;
		}
		http_reply_error(s->req, 500, "internal", "the replay worker answered out of range");
		break;
	case SK_ENOTFOUND:
		code = 404;
		if (s->q.kind == READ_CONSUME)
			http_reply_error(s->req, 404, "not_found", "partition %u of topic %s does not exist",
					 s->q.partition, s->topic_name);
		else
			http_reply_error(s->req, 404, "not_found", "topic %s does not exist",
					 s->topic_name);
		break;
	case SK_EAGAIN:
		reply_unavailable(s->req, route, "the store is not ready yet");
		return;
	case SK_ECORRUPT:
		http_reply_error(s->req, 500, "corrupt",
				 "stored data failed an integrity check; the replay log names the file "
				 "and position");
		break;
	case SK_EIO:
		http_reply_error(s->req, 500, "storage_error", "reading the store failed");
		break;
	default:
		http_reply_error(s->req, 500, "internal", "the replay worker failed: %s",
				 sk_strerror((sk_err)rep->status));
		break;
	}
	http_metrics_count(route, code);
}

/* {"name":"<topic>","partitions":[...]}. Topic names are [A-Za-z0-9._-], so they
 * need no JSON escaping; anything else is refused rather than sent unescaped. */
static void reply_topic(struct http_read *h, struct read_slot *s, const struct read_reply *rep,
			nng_msg *msg)
{
	struct evbuffer *b = h->out;
	evbuffer_drain(b, evbuffer_get_length(b));
	bool ok = strcspn(s->topic_name, "\"\\") == strlen(s->topic_name);
	for (const char *c = s->topic_name; ok && *c; c++)
		ok = (unsigned char)*c >= 0x20;
	ok = ok && evbuffer_add_printf(b, "{\"name\":\"%s\",\"partitions\":", s->topic_name) > 0;
	if (ok) {
		ok = add_body(b, rep, msg);
	} else {
		nng_msg_free(msg);
	}
	ok = ok && evbuffer_add(b, "}", 1) == 0;
	if (!ok) {
		evbuffer_drain(b, evbuffer_get_length(b));
		http_reply_error(s->req, 500, "internal", "could not build the reply");
		http_metrics_count(HTTP_READ_ROUTE_TOPIC, 500);
		return;
	}
	http_reply_json(s->req, 200, b);
	http_metrics_count(HTTP_READ_ROUTE_TOPIC, 200);
}

/* ---- requests to replay ---- */

/* Send s->q to replay and start its deadline. SK_ECLOSED: replay is not connected;
 * SK_EFULL: nng's send queue is full; SK_EINVAL: the arguments are out of range. */
static sk_err slot_send(struct http_read *h, struct read_slot *s)
{
	if (!http_read_replay_up())
		return SK_ECLOSED;
	s->q.req_id = ((uint32_t)s->gen << 16) | s->index;
	nng_msg *m;
	if (nng_msg_alloc(&m, SK_READ_REQ_HEADER_BYTES + (size_t)s->q.group_len) != 0)
		return SK_ENOMEM;
	size_t len = 0;
	sk_err err = read_req_encode(nng_msg_body(m), nng_msg_len(m), &s->q, &len);
	if (err) {
		nng_msg_free(m);
		return err;
	}
	s->removals_at_send = atomic_load(&h->removals);
	s->commits_at_send = h->commits;
	s->sent_ms = clock_mono_ms();
	s->recheck_due = false;
	int rv = nng_sendmsg(h->sock, m, NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		nng_msg_free(m);
		return rv == NNG_EAGAIN ? SK_EFULL : SK_ECLOSED;
	}
	s->state = SLOT_SENT;
	arm_ms(&s->timer, HTTP_READ_DEADLINE_MS + s->q.max_bytes / HTTP_READ_SLOW_BYTES_PER_MS);
	return SK_OK;
}

/* Send, or answer the client with why it could not be sent. */
static void slot_send_or_fail(struct http_read *h, struct read_slot *s)
{
	sk_err err = slot_send(h, s);
	if (err == SK_OK)
		return;
	const char *route = slot_route(s);
	if (err == SK_EINVAL) {
		http_reply_error(s->req, 400, "bad_request", "limit or max_bytes is out of range");
		http_metrics_count(route, 400);
	} else if (err == SK_EFULL) {
		reply_unavailable(s->req, route, "too many reads are waiting for the replay worker");
	} else {
		reply_unavailable(s->req, route, "the replay worker is restarting");
	}
	slot_release(h, s);
}

static void consume_done(struct http_read *h, struct read_slot *s, const struct read_reply *rep,
			 nng_msg *msg)
{
	if (rep->status != SK_OK) {
		nng_msg_free(msg);
		reply_read_error(h, s, rep);
		slot_release(h, s);
		return;
	}
	uint64_t now = clock_mono_ms();
	if (rep->count == 0 && s->wait_until_ms > now) {
		/* Long-poll: wait for records at this position. */
		s->q.flags |= READ_FLAG_OFFSET;
		s->q.offset = rep->next_offset;
		s->last = *rep;
		s->last.body = NULL;
		s->last.body_len = 0;
		nng_msg_free(msg);
		/* A commit may have come after replay looked: check again, soon. */
		if (s->commits_at_send != h->commits && now >= s->sent_ms + HTTP_READ_RECHECK_MS) {
			slot_send_or_fail(h, s);
			return;
		}
		s->recheck_due = s->commits_at_send != h->commits;
		slot_park(h, s, now);
		return;
	}
	reply_consume(h, s, rep, msg);
	slot_release(h, s);
}

static void handle_reply(struct http_read *h, nng_msg *msg)
{
	struct read_reply rep;
	sk_err err = read_reply_decode(nng_msg_body(msg), nng_msg_len(msg), &rep);
	if (err) {
		h->malformed_replies++;
		log_warn("http_read_reply_malformed", "len=%zu err=%s count=%llu", nng_msg_len(msg),
			 sk_errname(err), (unsigned long long)h->malformed_replies);
		nng_msg_free(msg);
		return;
	}
	uint32_t index = rep.req_id & 0xffffu;
	uint16_t gen = (uint16_t)(rep.req_id >> 16);
	struct read_slot *s = index < h->slot_count ? &h->slots[index] : NULL;
	if (!s || s->state != SLOT_SENT || s->gen != gen || s->q.kind != rep.kind) {
		/* Its request timed out or failed already (or predates this process). */
		h->stale_replies++;
		nng_msg_free(msg);
		return;
	}
	event_del(&s->timer);
	if (rep.kind == READ_CONSUME) {
		consume_done(h, s, &rep, msg);
		return;
	}
	if (rep.status != SK_OK) {
		nng_msg_free(msg);
		reply_read_error(h, s, &rep);
	} else {
		reply_topic(h, s, &rep, msg);
	}
	slot_release(h, s);
}

static void http_read_recv_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_read *h = arg;
	for (int i = 0; i < HTTP_READ_BATCH_MAX; i++) {
		nng_msg *msg;
		int rv = nng_recvmsg(h->sock, &msg, NNG_FLAG_NONBLOCK);
		if (rv == NNG_EAGAIN)
			return;
		if (rv != 0) {
			log_warn("http_read_recv_failed", "err=\"%s\"", nng_strerror(rv));
			return;
		}
		handle_reply(h, msg);
	}
}

/* The replay pipe dropped: every read sent before that gets 503 now. */
static void http_read_pipe_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_read *h = arg;
	uint64_t v;
	ssize_t n = read(h->pipe_efd, &v, sizeof(v));
	(void)n;
	uint32_t removals = atomic_load(&h->removals);
	if (removals == h->removals_seen)
		return;
	h->removals_seen = removals;
	log_warn("http_read_replay_lost", "removals=%u", removals);
	for (uint32_t i = 0; i < h->slot_count; i++) {
		struct read_slot *s = &h->slots[i];
		if (s->state != SLOT_SENT || s->removals_at_send == removals)
			continue;
		reply_unavailable(s->req, slot_route(s), "the replay worker restarted during the read");
		slot_release(h, s);
	}
}

static void slot_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct read_slot *s = arg;
	struct http_read *h = hr;
	if (s->state == SLOT_SENT) {
		reply_unavailable(s->req, slot_route(s), "the replay worker did not answer in time");
		slot_release(h, s);
	} else if (s->state == SLOT_PARKED) {
		slot_unpark(h, s);
		if (s->recheck_due) {
			/* Past the wait end too, the answer to this send is the final one. */
			slot_send_or_fail(h, s);
			return;
		}
		reply_consume(h, s, &s->last, NULL); /* the wait is over: the empty result */
		slot_release(h, s);
	}
}

void http_read_on_commit(void)
{
	struct http_read *h = hr;
	if (!h)
		return;
	h->commits++;
	uint64_t now = clock_mono_ms();
	struct read_slot *next;
	for (struct read_slot *s = h->parked; s; s = next) {
		next = s->next_parked;
		if (s->recheck_due)
			continue; /* its timer will send it */
		if (now < s->sent_ms + HTTP_READ_RECHECK_MS) {
			s->recheck_due = true;
			slot_arm_parked(s, now);
			continue;
		}
		slot_unpark(h, s);
		slot_send_or_fail(h, s);
	}
}

/* ---- entry points from the router ---- */

static size_t bounded_len(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n])
		n++;
	return n;
}

void http_read_consume(struct http_req *req, const struct meta_topic *topic,
		       const struct http_consume_args *args)
{
	struct http_read *h = hr;
	if (!h || !http_read_replay_up()) {
		reply_unavailable(req, HTTP_READ_ROUTE_CONSUME, "the replay worker is restarting");
		return;
	}
	struct read_slot *s = slot_alloc(h);
	if (!s) {
		reply_unavailable(req, HTTP_READ_ROUTE_CONSUME, "too many reads are in progress");
		return;
	}
	s->req = req;
	memset(&s->q, 0, sizeof(s->q));
	s->q.kind = READ_CONSUME;
	s->q.encoding = args->encoding;
	s->q.flags = args->has_offset ? READ_FLAG_OFFSET : 0;
	s->q.topic_id = topic->id;
	s->q.partition = args->partition;
	s->q.offset = args->offset;
	s->q.limit = args->limit;
	s->q.max_bytes = args->max_bytes;
	s->q.group_len = (uint16_t)bounded_len(args->group, SK_GROUP_NAME_BYTES_MAX);
	memcpy(s->q.group, args->group, s->q.group_len);
	s->q.group[s->q.group_len] = '\0';
	snprintf(s->topic_name, sizeof(s->topic_name), "%s", topic->name);
	uint32_t wait_ms = args->wait_ms < SK_HTTP_WAIT_MS_MAX ? args->wait_ms : SK_HTTP_WAIT_MS_MAX;
	s->wait_until_ms = wait_ms ? clock_mono_ms() + wait_ms : 0;
	slot_send_or_fail(h, s);
}

void http_read_topic_info(struct http_req *req, const struct meta_topic *topic)
{
	struct http_read *h = hr;
	if (!h || !http_read_replay_up()) {
		reply_unavailable(req, HTTP_READ_ROUTE_TOPIC, "the replay worker is restarting");
		return;
	}
	struct read_slot *s = slot_alloc(h);
	if (!s) {
		reply_unavailable(req, HTTP_READ_ROUTE_TOPIC, "too many reads are in progress");
		return;
	}
	s->req = req;
	memset(&s->q, 0, sizeof(s->q));
	s->q.kind = READ_PARTITION_INFO;
	s->q.topic_id = topic->id;
	s->q.partition = topic->partitions;
	s->wait_until_ms = 0;
	snprintf(s->topic_name, sizeof(s->topic_name), "%s", topic->name);
	slot_send_or_fail(h, s);
}

/* ---- start and stop ---- */

static sk_err nng_fail(const char *what, int rv)
{
	log_error("http_read_nng_failed", "call=%s err=\"%s\"", what, nng_strerror(rv));
	return SK_EIO;
}

/* Every unbounded nng default set explicitly: reply size (the largest reply
 * replay can build), timeouts, queues, redial pacing. */
static sk_err http_read_socket_options(nng_socket s)
{
	int rv;
	if ((rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ,
				      SK_READ_REPLY_HEADER_BYTES + REPLAY_BODY_BYTES_MAX + 64)) != 0)
		return nng_fail("set recv-size-max", rv);
	if ((rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, HTTP_READ_NNG_TIMEOUT_MS)) != 0 ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, HTTP_READ_NNG_TIMEOUT_MS)) != 0)
		return nng_fail("set timeouts", rv);
	if ((rv = nng_socket_set_int(s, NNG_OPT_RECVBUF, HTTP_READ_RECV_BUF_MSGS)) != 0 ||
	    (rv = nng_socket_set_int(s, NNG_OPT_SENDBUF, HTTP_READ_SEND_BUF_MSGS)) != 0)
		return nng_fail("set buffers", rv);
	if ((rv = nng_socket_set_ms(s, NNG_OPT_RECONNMINT, HTTP_READ_REDIAL_MIN_MS)) != 0 ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, HTTP_READ_REDIAL_MAX_MS)) != 0)
		return nng_fail("set redial times", rv);
	return SK_OK;
}

static sk_err http_read_dial(struct http_read *h)
{
	char url[SK_PATH_BYTES_MAX + 32];
	int n = snprintf(url, sizeof(url), "ipc://%s/replay.sock", h->ctx->cfg->run_dir);
	if (n < 0 || (size_t)n >= sizeof(url))
		return SK_EINVAL;
	int rv = nng_pair1_open(&h->sock);
	if (rv != 0)
		return nng_fail("pair1_open", rv);
	h->sock_open = true;
	sk_err err = http_read_socket_options(h->sock);
	if (err)
		return err;
	if ((rv = nng_pipe_notify(h->sock, NNG_PIPE_EV_ADD_POST, http_read_pipe_cb, h)) != 0 ||
	    (rv = nng_pipe_notify(h->sock, NNG_PIPE_EV_REM_POST, http_read_pipe_cb, h)) != 0)
		return nng_fail("pipe_notify", rv);
	/* Non-blocking: replay may be restarting; nng keeps redialing in the background. */
	if ((rv = nng_dial(h->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0)
		return nng_fail("dial", rv);
	return SK_OK;
}

static sk_err http_read_slots(struct http_read *h)
{
	uint32_t count = h->ctx->cfg->http_connections_max;
	if (count < 1)
		count = 1;
	if (count > HTTP_READ_SLOTS_MAX)
		count = HTTP_READ_SLOTS_MAX;
	h->slots = calloc(count, sizeof(*h->slots));
	if (!h->slots)
		return SK_ENOMEM;
	h->slot_count = count;
	uint16_t seed = 0;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint16_t)clock_mono_ns();
	for (uint32_t i = count; i-- > 0;) {
		struct read_slot *s = &h->slots[i];
		s->index = i;
		s->gen = (uint16_t)(seed + i * 7919u);
		evtimer_assign(&s->timer, h->ctx->base, slot_timer_cb, s);
		s->next_free = h->free_list;
		h->free_list = s;
	}
	return SK_OK;
}

static sk_err http_read_events(struct http_read *h)
{
	int fd, rv;
	if ((rv = nng_socket_get_int(h->sock, NNG_OPT_RECVFD, &fd)) != 0)
		return nng_fail("get recv fd", rv);
	h->recv_ev = event_new(h->ctx->base, fd, EV_READ | EV_PERSIST, http_read_recv_cb, h);
	h->pipe_ev = event_new(h->ctx->base, h->pipe_efd, EV_READ | EV_PERSIST, http_read_pipe_ev_cb, h);
	if (!h->recv_ev || !h->pipe_ev)
		return SK_ENOMEM;
	event_add(h->recv_ev, NULL);
	event_add(h->pipe_ev, NULL);
	return SK_OK;
}

static void http_read_release(struct http_read *h)
{
	if (h->sock_open)
		nng_close(h->sock); /* first: no pipe callback runs after this */
	if (h->recv_ev)
		event_free(h->recv_ev);
	if (h->pipe_ev)
		event_free(h->pipe_ev);
	for (uint32_t i = 0; h->slots && i < h->slot_count; i++)
		event_del(&h->slots[i].timer);
	free(h->slots);
	if (h->out)
		evbuffer_free(h->out);
	if (h->pipe_efd >= 0)
		close(h->pipe_efd);
	free(h);
}

sk_err http_read_init(struct worker_ctx *ctx)
{
	struct http_read *h = calloc(1, sizeof(*h));
	if (!h)
		return SK_ENOMEM;
	h->ctx = ctx;
	h->pipe_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	h->out = evbuffer_new();
	sk_err err = SK_ENOMEM;
	if (h->pipe_efd < 0 || !h->out)
		goto out_release;
	err = http_read_slots(h);
	if (!err)
		err = http_read_dial(h);
	if (!err)
		err = http_read_events(h);
	if (err)
		goto out_release;
	hr = h;
	return SK_OK;
out_release:
	http_read_release(h);
	return err;
}

void http_read_fini(void)
{
	struct http_read *h = hr;
	if (!h)
		return;
	log_info("http_read_stopped", "stale_replies=%llu malformed_replies=%llu",
		 (unsigned long long)h->stale_replies, (unsigned long long)h->malformed_replies);
	hr = NULL;
	http_read_release(h);
}
