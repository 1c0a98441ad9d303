/* The replay worker: the read path. It serves READ_CONSUME and
 * READ_PARTITION_INFO requests from the http worker (ipc/read_msg.h) out of the
 * journal and indexes (store/reader.h) and meta.db opened read-only
 * (store/meta.h), and shows only records whose frame is committed
 * (status_page.commit_index).
 *
 * Event loop integration: one nng pair1 socket listening on
 * ipc://RUN_DIR/replay.sock. nng runs its own threads; the loop never lets them
 * call into it. It polls NNG_OPT_RECVFD (readable while a request waits) and
 * NNG_OPT_SENDFD (readable while a send would not block) and uses non-blocking
 * nng_recvmsg/nng_sendmsg. The only code nng threads run is replay_pipe_cb,
 * which stores the id of the connected http pipe in an atomic.
 *
 * A reply goes back only to the pipe its request came from. The send buffer is
 * 0 messages, so nothing is queued while no peer is connected: a reply that
 * cannot be sent at once waits in `pending` (reading stops meanwhile) and is
 * dropped if its pipe goes away, so a restarted http worker never receives an
 * answer to a request it did not send.
 *
 * Per request: O(log n) index lookups, the records returned, two sqlite point
 * queries; no allocation except the nng message that carries the reply (it is
 * handed to nng, which frees it after the write). The JSON is formatted into one
 * buffer allocated at start (REPLAY_BODY_BYTES_MAX) and copied once into that
 * message. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/transport/ipc/ipc.h>

#include "common/bytes.h"
#include "common/log.h"
#include "ipc/read_msg.h"
#include "store/meta.h"
#include "store/reader.h"
#include "workers/replay/replay_format.h"
#include "workers/worker.h"

/* Requests handled per wake-up, so the heartbeat timer runs between batches. */
#define REPLAY_BATCH_MAX 16
/* Requests nng reads ahead from the http pipe. */
#define REPLAY_RECV_BUF_MSGS 256
/* Blocking sends/receives are never used; the timeouts bound them anyway. */
#define REPLAY_NNG_TIMEOUT_MS 1000

struct replay {
	struct worker_ctx *ctx;
	nng_socket sock;
	bool sock_open;
	struct event *recv_ev;
	struct event *send_ev;
	struct event *tick_ev;
	store_reader *rd;
	meta *meta; /* NULL until meta.db exists (opened lazily) */
	struct fmt_buf body;
	nng_msg *pending; /* reply waiting for the pipe to take it */
	uint32_t pending_pipe;
	_Atomic uint32_t pipe_id; /* the connected http pipe, 0 = none (written by nng threads) */
	char sock_path[SK_PATH_BYTES_MAX];
	uint64_t served;
	uint64_t malformed;
	uint64_t dropped;
};

/* nng thread: remember which pipe is the http worker. Touches only the atomic. */
static void replay_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct replay *r = arg;
	uint32_t id = nng_pipe_id(p);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_store(&r->pipe_id, id);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		uint32_t expect = id;
		atomic_compare_exchange_strong(&r->pipe_id, &expect, 0);
	}
}

static sk_err replay_meta(struct replay *r, meta **out)
{
	if (!r->meta) {
		sk_err err = meta_open(r->ctx->cfg->data_dir, true, &r->meta);
		if (err) {
			r->meta = NULL;
			/* Not created yet by the writer: the caller answers "try again". */
			return err == SK_ENOTFOUND ? SK_EAGAIN : err;
		}
	}
	*out = r->meta;
	return SK_OK;
}

struct part_bounds {
	uint64_t log_start;
	uint64_t high_watermark;
	uint64_t bytes;
};

/* Log start, high watermark and bytes of a partition as of commit. The log start is
 * the larger of meta's (moved by delete-before and retention, possibly inside a
 * frame) and the first index entry's (whole frames still stored). */
static sk_err replay_bounds(struct replay *r, uint32_t topic_id, uint32_t partition,
			    uint64_t commit, struct part_bounds *out)
{
	meta *m;
	sk_err err = replay_meta(r, &m);
	if (err)
		return err;
	uint64_t meta_start = 0;
	err = meta_log_start(m, topic_id, partition, &meta_start);
	if (err)
		return err; /* SK_ENOTFOUND: no such partition */
	struct reader_partition_info info;
	err = reader_partition_info(r->rd, topic_id, partition, commit, &info);
	if (err)
		return err;
	out->log_start = info.log_start > meta_start ? info.log_start : meta_start;
	/* Offsets below the log start existed, so the high watermark is at least there even
	 * when retention removed every frame and the index is empty. */
	out->high_watermark =
		info.high_watermark > out->log_start ? info.high_watermark : out->log_start;
	out->bytes = info.bytes;
	return SK_OK;
}

struct consume_ctx {
	struct fmt_buf *body;
	struct fmt_msg_cache cache;
	uint32_t partition;
	uint8_t encoding;
	uint32_t count;
	uint64_t next_offset;
	bool overflow;
};

static bool consume_record_cb(void *arg, uint64_t offset, uint64_t timestamp_ms,
			      const struct record_view *rec)
{
	struct consume_ctx *c = arg;
	bool first = c->count == 0;
	sk_err err = fmt_message_cached(c->body, &c->cache, first, offset, c->partition, timestamp_ms,
					rec, c->encoding);
	/* The only record and its text form is too big: base64 always fits (the buffer is
	 * sized for one record of the largest frame in base64) and says so by its field names. */
	if (err == SK_EFULL && first && c->encoding == READ_ENC_TEXT)
		err = fmt_message_cached(c->body, &c->cache, first, offset, c->partition,
					 timestamp_ms, rec, READ_ENC_BASE64);
	if (err != SK_OK) {
		/* Not delivered: the next read starts at this record. */
		c->overflow = first;
		return false;
	}
	c->count++;
	c->next_offset = offset + 1;
	return true;
}

/* The offset a consume starts at: the one asked for, else after the group's commit. */
static uint64_t consume_start(const struct read_req *q, const struct read_reply *rep)
{
	if (q->flags & READ_FLAG_OFFSET)
		return q->offset;
	if (rep->committed_offset == SK_READ_NO_COMMIT)
		return rep->log_start;
	return rep->committed_offset + 1;
}

static sk_err replay_consume(struct replay *r, const struct read_req *q, struct read_reply *rep)
{
	uint64_t commit = atomic_load_explicit(&r->ctx->page->commit_index, memory_order_acquire);
	struct part_bounds b = {0};
	sk_err err = replay_bounds(r, q->topic_id, q->partition, commit, &b);
	if (err)
		return err;
	rep->log_start = b.log_start;
	rep->high_watermark = b.high_watermark;
	if (q->group_len > 0) {
		err = meta_committed_offset(r->meta, q->group, q->topic_id, q->partition,
					    &rep->committed_offset);
		if (err == SK_ENOTFOUND)
			rep->committed_offset = SK_READ_NO_COMMIT;
		else if (err)
			return err;
	}
	uint64_t start = consume_start(q, rep);
	rep->next_offset = start;
	/* Below the log start is an error even when resuming after a commit: the records
	 * after the group's position are gone, and the client must see that. An explicit
	 * offset past the high watermark is an error too (the client is confused, and a
	 * long-poll there would wait for a record it then skips); a resume position past
	 * it is not, as the group committed that far. */
	if (start < b.log_start)
		return SK_ERANGE;
	if ((q->flags & READ_FLAG_OFFSET) && start > b.high_watermark)
		return SK_ERANGE;
	struct fmt_buf *body = &r->body;
	body->len = 0;
	err = fmt_put(body, "[", 1);
	struct consume_ctx c = {.body = body, .partition = q->partition, .encoding = q->encoding,
				.next_offset = start};
	uint64_t reader_next = start;
	body->cap -= 1; /* keep room for the closing ']' */
	if (!err && start < b.high_watermark)
		err = reader_read(r->rd, q->topic_id, q->partition, start, commit, q->limit,
				  q->max_bytes, consume_record_cb, &c, &reader_next);
	body->cap += 1;
	if (err == SK_ERANGE) { /* retention moved the log start while we read */
		err = replay_bounds(r, q->topic_id, q->partition, commit, &b);
		rep->log_start = b.log_start;
		rep->high_watermark = b.high_watermark;
		return err ? err : SK_ERANGE;
	}
	if (err)
		return err;
	if (c.overflow) {
		log_error("replay_record_too_big", "topic=%u partition=%u offset=%llu", q->topic_id,
			  q->partition, (unsigned long long)start);
		return SK_EFULL;
	}
	fmt_put(body, "]", 1);
	rep->count = c.count;
	rep->next_offset = c.next_offset;
	return SK_OK;
}

static sk_err replay_partitions(struct replay *r, const struct read_req *q, struct read_reply *rep)
{
	uint64_t commit = atomic_load_explicit(&r->ctx->page->commit_index, memory_order_acquire);
	struct fmt_buf *body = &r->body;
	body->len = 0;
	sk_err err = fmt_put(body, "[", 1);
	for (uint32_t p = 0; !err && p < q->partition; p++) {
		struct part_bounds b;
		err = replay_bounds(r, q->topic_id, p, commit, &b);
		if (!err)
			err = fmt_partition(body, p == 0, p, b.log_start, b.high_watermark, b.bytes);
	}
	if (!err)
		err = fmt_put(body, "]", 1);
	if (err)
		return err;
	rep->count = q->partition;
	return SK_OK;
}

/* ---- nng: requests in, replies out ---- */

static void replay_send(struct replay *r, nng_msg *out, uint32_t pipe);

/* A request that does not decode: answer with the error when its version and req_id
 * can be read (the http side then fails that one request at once instead of waiting
 * for its deadline), else drop it. Logged and counted either way. */
static void replay_reject(struct replay *r, nng_msg *in, sk_err why, uint32_t pipe)
{
	const uint8_t *buf = nng_msg_body(in);
	size_t len = nng_msg_len(in);
	r->malformed++;
	log_warn("replay_request_malformed", "len=%zu err=%s count=%llu", len, sk_errname(why),
		 (unsigned long long)r->malformed);
	if (len < 8 || buf[0] != SK_READ_VERSION)
		return;
	struct read_reply rep = {
		.kind = buf[1] == READ_PARTITION_INFO ? READ_PARTITION_INFO : READ_CONSUME,
		.status = (uint8_t)why,
		.req_id = get_u32(buf + 4),
		.committed_offset = SK_READ_NO_COMMIT,
	};
	nng_msg *out;
	if (nng_msg_alloc(&out, SK_READ_REPLY_HEADER_BYTES) != 0)
		return;
	read_reply_encode_header(nng_msg_body(out), &rep);
	replay_send(r, out, pipe);
}

static void replay_serve(struct replay *r, nng_msg *in)
{
	uint32_t pipe = nng_pipe_id(nng_msg_get_pipe(in));
	struct read_req q;
	sk_err err = read_req_decode(nng_msg_body(in), nng_msg_len(in), &q);
	if (err) {
		replay_reject(r, in, err, pipe);
		nng_msg_free(in);
		return;
	}
	nng_msg_free(in);
	struct read_reply rep = {.kind = q.kind, .req_id = q.req_id,
				 .committed_offset = SK_READ_NO_COMMIT};
	err = q.kind == READ_CONSUME ? replay_consume(r, &q, &rep) : replay_partitions(r, &q, &rep);
	rep.status = (uint8_t)err;
	if (err) {
		rep.count = 0;
		r->body.len = 0;
	}
	rep.body_len = (uint32_t)r->body.len;
	nng_msg *out;
	if (nng_msg_alloc(&out, SK_READ_REPLY_HEADER_BYTES + r->body.len) != 0) {
		r->dropped++;
		log_error("replay_reply_alloc_failed", "bytes=%zu", r->body.len);
		return;
	}
	uint8_t *p = nng_msg_body(out);
	read_reply_encode_header(p, &rep);
	if (r->body.len)
		memcpy(p + SK_READ_REPLY_HEADER_BYTES, r->body.data, r->body.len);
	r->served++;
	replay_send(r, out, pipe);
}

/* Hand a reply to nng without blocking. When the pipe cannot take it now, keep it
 * and stop reading requests until SENDFD says it can (back-pressure to http). */
static void replay_send(struct replay *r, nng_msg *out, uint32_t pipe)
{
	if (pipe == 0 || atomic_load(&r->pipe_id) != pipe) {
		nng_msg_free(out); /* its requester is gone */
		r->dropped++;
		return;
	}
	int rv = nng_sendmsg(r->sock, out, NNG_FLAG_NONBLOCK);
	if (rv == 0)
		return;
	if (rv == NNG_EAGAIN) {
		r->pending = out;
		r->pending_pipe = pipe;
		event_del(r->recv_ev);
		event_add(r->send_ev, NULL);
		return;
	}
	nng_msg_free(out);
	r->dropped++;
	log_warn("replay_send_failed", "err=\"%s\"", nng_strerror(rv));
}

static void replay_recv_cb(evutil_socket_t fd, short what, void *arg)
{
	struct replay *r = arg;
	for (int i = 0; i < REPLAY_BATCH_MAX && !r->pending; i++) {
		nng_msg *in;
		int rv = nng_recvmsg(r->sock, &in, NNG_FLAG_NONBLOCK);
		if (rv == NNG_EAGAIN)
			return;
		if (rv != 0) {
			log_warn("replay_recv_failed", "err=\"%s\"", nng_strerror(rv));
			return;
		}
		replay_serve(r, in);
	}
}

static void replay_sendable_cb(evutil_socket_t fd, short what, void *arg)
{
	struct replay *r = arg;
	nng_msg *out = r->pending;
	r->pending = NULL;
	event_del(r->send_ev);
	event_add(r->recv_ev, NULL);
	if (out)
		replay_send(r, out, r->pending_pipe);
}

/* The pending reply's pipe may vanish while we wait for SENDFD, which then never
 * turns readable: the heartbeat-rate check below lets go of it. */
static void replay_check_pending(struct replay *r)
{
	if (r->pending && atomic_load(&r->pipe_id) != r->pending_pipe) {
		nng_msg_free(r->pending);
		r->pending = NULL;
		r->dropped++;
		event_del(r->send_ev);
		event_add(r->recv_ev, NULL);
	}
}

static void replay_tick_cb(evutil_socket_t fd, short what, void *arg) { replay_check_pending(arg); }

static sk_err nng_fail(const char *what, int rv)
{
	log_error("replay_nng_failed", "call=%s err=\"%s\"", what, nng_strerror(rv));
	return SK_EIO;
}

/* Every unbounded nng default set explicitly: message size, timeouts, queues. */
static sk_err replay_socket_options(nng_socket s)
{
	int rv;
	if ((rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ,
				      SK_READ_REQ_HEADER_BYTES + SK_GROUP_NAME_BYTES_MAX + 64)) != 0)
		return nng_fail("set recv-size-max", rv);
	if ((rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, REPLAY_NNG_TIMEOUT_MS)) != 0 ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, REPLAY_NNG_TIMEOUT_MS)) != 0)
		return nng_fail("set timeouts", rv);
	if ((rv = nng_socket_set_int(s, NNG_OPT_RECVBUF, REPLAY_RECV_BUF_MSGS)) != 0 ||
	    (rv = nng_socket_set_int(s, NNG_OPT_SENDBUF, 0)) != 0)
		return nng_fail("set buffers", rv);
	return SK_OK;
}

static sk_err replay_listen(struct replay *r)
{
	int n = snprintf(r->sock_path, sizeof(r->sock_path), "%s/replay.sock", r->ctx->cfg->run_dir);
	if (n < 0 || (size_t)n >= sizeof(r->sock_path) - 8)
		return SK_EINVAL;
	/* A socket file left by a killed replay would make the listen fail. */
	if (unlink(r->sock_path) != 0 && errno != ENOENT) {
		log_error("replay_unlink_failed", "path=%s errno=%d", r->sock_path, errno);
		return SK_EIO;
	}
	char url[SK_PATH_BYTES_MAX + 8];
	snprintf(url, sizeof(url), "ipc://%s", r->sock_path);
	int rv = nng_pair1_open(&r->sock);
	if (rv != 0)
		return nng_fail("pair1_open", rv);
	r->sock_open = true;
	sk_err err = replay_socket_options(r->sock);
	if (err)
		return err;
	if ((rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_POST, replay_pipe_cb, r)) != 0 ||
	    (rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, replay_pipe_cb, r)) != 0)
		return nng_fail("pipe_notify", rv);
	nng_listener l;
	if ((rv = nng_listener_create(&l, r->sock, url)) != 0)
		return nng_fail("listener_create", rv);
	if ((rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600)) != 0)
		return nng_fail("set ipc permissions", rv);
	if ((rv = nng_listener_start(l, 0)) != 0) {
		log_error("replay_listen_failed", "url=%s err=\"%s\"", url, nng_strerror(rv));
		return SK_EIO;
	}
	return SK_OK;
}

static sk_err replay_events(struct replay *r)
{
	int recv_fd, send_fd, rv;
	if ((rv = nng_socket_get_int(r->sock, NNG_OPT_RECVFD, &recv_fd)) != 0 ||
	    (rv = nng_socket_get_int(r->sock, NNG_OPT_SENDFD, &send_fd)) != 0)
		return nng_fail("get poll fds", rv);
	struct event_base *base = r->ctx->base;
	r->recv_ev = event_new(base, recv_fd, EV_READ | EV_PERSIST, replay_recv_cb, r);
	r->send_ev = event_new(base, send_fd, EV_READ | EV_PERSIST, replay_sendable_cb, r);
	struct event *tick = event_new(base, -1, EV_PERSIST, replay_tick_cb, r);
	if (!r->recv_ev || !r->send_ev || !tick) {
		if (tick)
			event_free(tick);
		return SK_ENOMEM;
	}
	struct timeval every = {.tv_sec = 0, .tv_usec = 200 * 1000};
	event_add(r->recv_ev, NULL);
	event_add(tick, &every);
	r->tick_ev = tick;
	return SK_OK;
}

static void replay_release(struct replay *r)
{
	if (r->sock_open) {
		nng_close(r->sock); /* before freeing what its pipe callbacks point at */
		unlink(r->sock_path);
	}
	if (r->pending)
		nng_msg_free(r->pending);
	if (r->recv_ev)
		event_free(r->recv_ev);
	if (r->send_ev)
		event_free(r->send_ev);
	if (r->tick_ev)
		event_free(r->tick_ev);
	if (r->meta)
		meta_close(r->meta);
	if (r->rd)
		reader_close(r->rd);
	free(r->body.data);
	free(r);
}

static sk_err replay_init_cb(struct worker_ctx *ctx)
{
	struct replay *r = calloc(1, sizeof(*r));
	if (!r)
		return SK_ENOMEM;
	r->ctx = ctx;
	sk_err err = SK_ENOMEM;
	/* Virtual memory: pages are touched only as large replies need them. */
	r->body.data = malloc(REPLAY_BODY_BYTES_MAX);
	r->body.cap = REPLAY_BODY_BYTES_MAX;
	if (!r->body.data)
		goto out_release;
	err = reader_open(ctx->cfg->data_dir, &r->rd);
	if (err) {
		log_error("replay_reader_open_failed", "data_dir=%s err=%s", ctx->cfg->data_dir,
			  sk_errname(err));
		goto out_release;
	}
	meta *m; /* opened now if it exists; a later request retries otherwise */
	(void)replay_meta(r, &m);
	err = replay_listen(r);
	if (!err)
		err = replay_events(r);
	if (err)
		goto out_release;
	ctx->state = r;
	log_info("replay_listening", "path=%s", r->sock_path);
	worker_ready(ctx);
	return SK_OK;
out_release:
	replay_release(r);
	return err;
}

static void replay_stop_cb(struct worker_ctx *ctx)
{
	struct replay *r = ctx->state;
	if (r && r->recv_ev)
		event_del(r->recv_ev); /* take no new request; the loop ends right after */
}

static void replay_fini_cb(struct worker_ctx *ctx)
{
	struct replay *r = ctx->state;
	if (!r)
		return;
	log_info("replay_stopped", "served=%llu malformed=%llu dropped=%llu",
		 (unsigned long long)r->served, (unsigned long long)r->malformed,
		 (unsigned long long)r->dropped);
	replay_release(r);
	ctx->state = NULL;
}

const struct worker_ops replay_ops = {
	.name = "replay",
	.init = replay_init_cb,
	.stop = replay_stop_cb,
	.fini = replay_fini_cb,
};
