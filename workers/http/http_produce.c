/* The write side of the HTTP API: produce, produce-ndjson and the control
 * entries (create topic, commit, delete-before, retention). Each request is
 * validated, encoded as one ingress record (ipc/msg.h header, then records in
 * store/record.h layout) and pushed to the ingress ring; the answer goes out
 * when the writer's completion says OK and the commit index covers its raft
 * index (http_pending.c), or as an error when the completion says otherwise
 * or the request's deadline passes.
 *
 * The body is never copied on the way in: the ring record is gathered from
 * the header, the record header, key, idempotency key and the evbuffer's own
 * chains (evbuffer_peek), so the only copy is evbuffer -> ring. An NDJSON line
 * that is a JSON string is the exception: it is decoded through a scratch
 * buffer (see http_parse.h). Every buffer is sized at start from the limits. */
#include <event2/buffer.h>
#include <event2/util.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/log.h"
#include "ipc/msg.h"
#include "workers/http/http_pending.h"
#include "workers/http/http_worker.h"

_Static_assert(sizeof(struct evbuffer_iovec) == sizeof(struct iovec) &&
		       offsetof(struct evbuffer_iovec, iov_base) == offsetof(struct iovec, iov_base) &&
		       offsetof(struct evbuffer_iovec, iov_len) == offsetof(struct iovec, iov_len),
	       "evbuffer_iovec is struct iovec on this platform");

#define PRODUCE_FIXED_IOVS 4 /* message header, record header, key, idempotency key */
#define PRODUCE_SEGS_EXTRA 64

static struct {
	const sk_config *cfg;
	const struct sk_status_page *page;
	struct iovec *iov; /* [0] message header, then the record pieces */
	uint32_t iov_cap;
	struct iovec *segs; /* the body's chains */
	uint32_t segs_cap;
	uint8_t (*hdr)[SK_RECORD_HEADER_BYTES];
	uint8_t *scratch;
	size_t scratch_cap;
} W;

static void produce_run(struct http_req *req, enum http_route route,
			const struct http_match *m, const char *query, bool may_create);

/* ---- small helpers ---- */

static uint8_t control_ack(void)
{
	/* Control entries are always made durable before the answer. */
	return W.cfg->http_default_ack == SK_ACK_NONE ? SK_ACK_LOCAL : (uint8_t)W.cfg->http_default_ack;
}

/* New produces are refused while the disk is full or the writer has failed. */
static bool writer_accepts(struct http_req *req, enum http_route route)
{
	uint32_t st = atomic_load(&W.page->writer_state);
	if (st == SK_WRITER_STORAGE_FULL) {
		http_fail(req, route, 507, "insufficient_storage",
			  "The disk is full; writes are refused until space is freed.");
		return false;
	}
	if (st == SK_WRITER_FAILED) {
		http_fail(req, route, 503, "unavailable",
			  "The writer stopped after a storage failure; an operator must look at it.");
		return false;
	}
	return true;
}

/* Resolve a topic by name, answering 400/404/503 itself when it cannot. */
struct http_topic *http_topic_or_fail(struct http_req *req, enum http_route route,
				      const char *name, size_t len)
{
	if (!http_name_valid(name, len)) {
		http_fail(req, route, 400, "bad_request",
			  "Topic names match [A-Za-z0-9._-]{1,128} and are not . or ..");
		return NULL;
	}
	struct http_topic *t = NULL;
	sk_err err = http_topic_find(name, len, &t);
	if (err == SK_OK)
		return t;
	if (err == SK_ENOTFOUND)
		http_fail(req, route, 404, "not_found", "Topic %.*s does not exist.", (int)len, name);
	else
		http_fail(req, route, 503, "unavailable", "The topic list cannot be read yet; retry.");
	return NULL;
}

static bool partition_ok(struct http_req *req, enum http_route route,
			 const struct http_topic *t, uint32_t partition)
{
	if (partition < t->t.partitions)
		return true;
	http_fail(req, route, 404, "not_found", "Topic %s has no partition %u (it has %u).", t->t.name,
		  partition, t->t.partitions);
	return false;
}

static void pend_fill(struct http_pend *p, struct http_req *req, enum http_route route,
		      uint8_t kind, const char *topic, uint64_t t0_ns)
{
	p->req = req;
	p->route = (uint8_t)route;
	p->kind = kind;
	p->t0_ns = t0_ns;
	size_t n = strlen(topic);
	memcpy(p->topic, topic, n + 1);
}

/* Push one ingress record and start waiting for it; answers 503/413 itself on failure. */
static bool push_and_wait(struct http_req *req, enum http_route route, struct http_pend *p,
			  const struct iovec *iov, int iovcnt, uint32_t timeout_ms)
{
	uint64_t seq = 0;
	sk_err err = http_ingress_push(iov, iovcnt, &seq);
	if (err != SK_OK) {
		if (p)
			http_pend_drop(p);
		if (err == SK_EFULL)
			http_fail(req, route, 503, "unavailable",
				  "The ingress ring is full; retry shortly with the same idempotency_key.");
		else
			http_fail(req, route, 413, "too_large",
				  "The request is larger than one ingress record may be.");
		return false;
	}
	if (p)
		http_pend_start(p, seq, timeout_ms);
	return true;
}

/* ---- produce ---- */

static bool choose_partition(struct http_req *req, enum http_route route,
			     struct http_topic *t, const struct http_query *q, uint32_t *out)
{
	if (t->t.partitions == 0) {
		http_fail(req, route, 503, "unavailable", "Topic %s has no partitions yet.", t->t.name);
		return false;
	}
	if (q->has_partition) {
		*out = q->partition;
		return partition_ok(req, route, t, q->partition);
	}
	if (q->has_key && route == HTTP_R_PRODUCE)
		*out = http_fnv1a32(q->key, q->key_len) % t->t.partitions;
	else
		*out = t->rr++ % t->t.partitions;
	return true;
}

/* The body's chains as iovecs in dst (flattened first when there are more than cap). */
static int body_segments(struct evbuffer *b, struct iovec *dst, uint32_t cap)
{
	int n = evbuffer_peek(b, -1, NULL, NULL, 0);
	if (n > (int)cap) {
		evbuffer_pullup(b, -1); /* rare: a body in very many small chains */
		n = evbuffer_peek(b, -1, NULL, NULL, 0);
	}
	if (n <= 0)
		return 0;
	return evbuffer_peek(b, -1, NULL, (struct evbuffer_iovec *)dst, n);
}

/* Single produce: [msg header][record header][key][idem][value chains]. */
static int build_single(struct http_req *req, const struct http_query *q,
			uint8_t rh[SK_RECORD_HEADER_BYTES], uint32_t *body_len)
{
	struct evbuffer *b = http_req_body(req);
	size_t vlen = evbuffer_get_length(b);
	uint64_t rec = record_encoded_bytes(q->key_len, q->idem_len, vlen);
	if (SK_MSG_REQ_HEADER_BYTES + rec > http_ingress_record_max()) {
		http_fail(req, HTTP_R_PRODUCE, 413, "too_large",
			  "The value is larger than one ingress record may be.");
		return -1;
	}
	record_encode_header(rh, q->key_len, q->idem_len, (uint32_t)vlen);
	W.iov[1] = (struct iovec){rh, SK_RECORD_HEADER_BYTES};
	W.iov[2] = (struct iovec){(void *)q->key, q->key_len};
	W.iov[3] = (struct iovec){(void *)q->idem, q->idem_len};
	int nseg = body_segments(b, W.iov + PRODUCE_FIXED_IOVS, W.segs_cap);
	*body_len = (uint32_t)rec;
	return PRODUCE_FIXED_IOVS + nseg;
}

static sk_err ndjson_split(struct evbuffer *b, const struct http_query *q, struct http_ndjson *nd,
			   char *why)
{
	*nd = (struct http_ndjson){
		.iov = W.iov + 1,
		.iov_cap = W.iov_cap - 1,
		.hdr = W.hdr,
		.records_max = W.cfg->http_batch_records_max,
		.scratch = W.scratch,
		.scratch_cap = W.scratch_cap,
	};
	int nseg = body_segments(b, W.segs, W.segs_cap);
	sk_err err = http_ndjson_split(W.segs, nseg, q->idem, q->idem_len, nd, why, HTTP_WHY_BYTES);
	if (err == SK_EFULL && nseg > 1) {
		evbuffer_pullup(b, -1);
		nseg = body_segments(b, W.segs, W.segs_cap);
		err = http_ndjson_split(W.segs, nseg, q->idem, q->idem_len, nd, why, HTTP_WHY_BYTES);
	}
	return err;
}

/* NDJSON: [msg header] then per record [record header][idem: first only][line pieces]. */
static int build_ndjson(struct http_req *req, const struct http_query *q, uint32_t *count,
			uint32_t *body_len)
{
	char why[HTTP_WHY_BYTES] = "the body could not be split into records";
	struct http_ndjson nd;
	sk_err err = ndjson_split(http_req_body(req), q, &nd, why);
	if (err != SK_OK) {
		http_fail(req, HTTP_R_PRODUCE_NDJSON, 400, "bad_request", "%s.", why);
		return -1;
	}
	if (SK_MSG_REQ_HEADER_BYTES + nd.body_bytes > http_ingress_record_max()) {
		http_fail(req, HTTP_R_PRODUCE_NDJSON, 413, "too_large",
			  "The batch is larger than one ingress record may be.");
		return -1;
	}
	*count = nd.count;
	*body_len = (uint32_t)nd.body_bytes;
	return 1 + (int)nd.iov_count;
}

/* The produce answer is the hottest reply: assembled by hand, then one evbuffer_add. */
struct jbuf {
	char b[384 + SK_TOPIC_NAME_BYTES_MAX];
	size_t n;
};

static void jb_str(struct jbuf *j, const char *s)
{
	size_t n = strlen(s);
	memcpy(j->b + j->n, s, n);
	j->n += n;
}

static void jb_u64(struct jbuf *j, uint64_t v)
{
	char tmp[20];
	int i = 0;
	do {
		tmp[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i)
		j->b[j->n++] = tmp[--i];
}

static void reply_produced(struct http_req *req, enum http_route route, const char *topic,
			   uint32_t partition, const struct msg_completion *c, uint32_t count,
			   uint64_t t0_ns)
{
	struct jbuf j = {.n = 0};
	jb_str(&j, "{\"ok\":true,\"topic\":\"");
	jb_str(&j, topic); /* a valid name: nothing to escape */
	jb_str(&j, "\",\"partition\":");
	jb_u64(&j, partition);
	jb_str(&j, route == HTTP_R_PRODUCE ? ",\"offset\":" : ",\"first_offset\":");
	if (c)
		jb_u64(&j, c->offset);
	else
		jb_str(&j, "null");
	if (route != HTTP_R_PRODUCE) {
		jb_str(&j, ",\"count\":");
		jb_u64(&j, c && c->count ? c->count : count);
	}
	jb_str(&j, c ? ",\"durable\":true,\"duplicate\":" : ",\"durable\":false,\"duplicate\":");
	jb_str(&j, !c ? "null}" : (c->flags & MSG_FLAG_DUPLICATE) ? "true}" : "false}");
	evbuffer_add(http_req_out(req), j.b, j.n);
	http_metrics_produce_latency(clock_mono_ns() - t0_ns);
	http_send(req, route, 200);
}

/* Unknown topic with [http] auto_create_topics: create it, then produce (see http_pend_committed). */
static void auto_create(struct http_req *req, enum http_route route, const char *name,
			size_t len, uint32_t timeout_ms)
{
	struct http_pend *p = http_pend_alloc();
	if (!p) {
		http_fail(req, route, 503, "unavailable", "Too many requests are waiting; retry.");
		return;
	}
	char topic[SK_TOPIC_NAME_BYTES_MAX + 1];
	memcpy(topic, name, len);
	topic[len] = 0;
	pend_fill(p, req, route, MSG_REQ_CREATE_TOPIC, topic, clock_mono_ns());
	p->then = HTTP_THEN_PRODUCE;
	p->arg = W.cfg->http_auto_create_partitions;
	struct msg_req mr = {.kind = MSG_REQ_CREATE_TOPIC, .ack = control_ack(),
			     .arg = p->arg, .now_ms = clock_real_ms(), .name_len = (uint16_t)len};
	uint8_t hdr[SK_MSG_REQ_HEADER_BYTES];
	msg_req_encode_header(hdr, &mr);
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {topic, len}};
	push_and_wait(req, route, p, iov, 2, timeout_ms);
}

static struct http_topic *produce_topic(struct http_req *req, enum http_route route,
					const struct http_match *m, bool may_create,
					uint32_t timeout_ms)
{
	if (!http_name_valid(m->topic, m->topic_len))
		return http_topic_or_fail(req, route, m->topic, m->topic_len);
	struct http_topic *t = NULL;
	sk_err err = http_topic_find(m->topic, m->topic_len, &t);
	if (err == SK_ENOTFOUND && may_create && W.cfg->http_auto_create_topics) {
		auto_create(req, route, m->topic, m->topic_len, timeout_ms);
		return NULL;
	}
	return err == SK_OK ? t : http_topic_or_fail(req, route, m->topic, m->topic_len);
}

/* Everything a produce needs before it is encoded; false when already answered. */
static bool produce_check(struct http_req *req, enum http_route route, const char *query,
			  struct http_query *q)
{
	char why[HTTP_WHY_BYTES];
	if (http_query_parse(query, query ? strlen(query) : 0, q, why, sizeof(why)) != SK_OK) {
		http_fail(req, route, 400, "bad_request", "%s.", why);
		return false;
	}
	if (!http_req_body_framed(req)) {
		http_fail(req, route, 411, "length_required",
			  "Send the body with a Content-Length (or chunked).");
		return false;
	}
	return writer_accepts(req, route);
}

static void produce_run(struct http_req *req, enum http_route route,
			const struct http_match *m, const char *query, bool may_create)
{
	uint64_t t0 = clock_mono_ns();
	struct http_query q;
	if (!produce_check(req, route, query, &q))
		return;
	uint32_t timeout_ms = q.has_timeout ? q.timeout_ms : W.cfg->http_request_timeout_ms;
	struct http_topic *t = produce_topic(req, route, m, may_create, timeout_ms);
	uint32_t partition;
	if (!t || !choose_partition(req, route, t, &q, &partition))
		return;
	uint8_t ack = q.has_ack ? q.ack : (uint8_t)W.cfg->http_default_ack;
	struct http_pend *p = NULL;
	if (ack != SK_ACK_NONE && !(p = http_pend_alloc())) {
		http_fail(req, route, 503, "unavailable", "Too many requests are waiting; retry.");
		return;
	}
	uint8_t hdr[SK_MSG_REQ_HEADER_BYTES], rh[SK_RECORD_HEADER_BYTES];
	uint32_t count = 1, body_len = 0;
	int iovcnt = route == HTTP_R_PRODUCE ? build_single(req, &q, rh, &body_len)
					     : build_ndjson(req, &q, &count, &body_len);
	if (iovcnt < 0) {
		if (p)
			http_pend_drop(p);
		return;
	}
	struct msg_req mr = {.kind = MSG_REQ_PRODUCE, .ack = ack, .topic_id = t->t.id,
			     .partition = partition, .record_count = count,
			     .arg2 = W.cfg->http_idempotency_window_ms, .now_ms = clock_real_ms(),
			     .body_len = body_len};
	msg_req_encode_header(hdr, &mr);
	W.iov[0] = (struct iovec){hdr, sizeof(hdr)};
	if (p) {
		pend_fill(p, req, route, MSG_REQ_PRODUCE, t->t.name, t0);
		p->partition = partition;
		p->count = count;
	}
	if (push_and_wait(req, route, p, W.iov, iovcnt, timeout_ms) && !p)
		reply_produced(req, route, t->t.name, partition, NULL, count, t0);
}

void http_handle_produce(struct http_req *req, enum http_route route,
			 const struct http_match *m, const char *query)
{
	produce_run(req, route, m, query, true);
}

/* ---- control entries ---- */

/* The JSON body as one contiguous string (small: bounded before the copy). */
static const char *control_body(struct http_req *req, enum http_route route, size_t *len)
{
	struct evbuffer *b = http_req_body(req);
	*len = evbuffer_get_length(b);
	if (*len > HTTP_CONTROL_BODY_BYTES_MAX) {
		http_fail(req, route, 413, "too_large", "The JSON body is longer than %d bytes.",
			  HTTP_CONTROL_BODY_BYTES_MAX);
		return NULL;
	}
	const char *p = (const char *)evbuffer_pullup(b, -1);
	return p ? p : "";
}

static void control_push(struct http_req *req, enum http_route route, struct http_pend *p,
			 struct msg_req *mr, const char *name)
{
	uint8_t hdr[SK_MSG_REQ_HEADER_BYTES];
	mr->ack = control_ack();
	mr->now_ms = clock_real_ms();
	mr->name_len = (uint16_t)(name ? strlen(name) : 0);
	msg_req_encode_header(hdr, mr);
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)name, mr->name_len}};
	push_and_wait(req, route, p, iov, name ? 2 : 1, W.cfg->http_request_timeout_ms);
}

static struct http_pend *control_pend(struct http_req *req, enum http_route route,
				      uint8_t kind, const char *topic)
{
	struct http_pend *p = http_pend_alloc();
	if (!p) {
		http_fail(req, route, 503, "unavailable", "Too many requests are waiting; retry.");
		return NULL;
	}
	pend_fill(p, req, route, kind, topic, clock_mono_ns());
	return p;
}

static void reply_topic(struct http_req *req, const char *name, uint32_t partitions,
			bool created)
{
	evbuffer_add_printf(http_req_out(req),
			    "{\"ok\":true,\"topic\":\"%s\",\"partitions\":%u,\"created\":%s}", name,
			    partitions, created ? "true" : "false");
	http_send(req, HTTP_R_TOPICS, created ? 201 : 200);
}

void http_handle_create_topic(struct http_req *req)
{
	const enum http_route route = HTTP_R_TOPICS;
	size_t len;
	const char *body = control_body(req, route, &len);
	struct http_create_topic ct;
	char why[HTTP_WHY_BYTES];
	if (!body)
		return;
	if (http_parse_create_topic(body, len, W.cfg->http_partitions_max, &ct, why, sizeof(why)) !=
	    SK_OK) {
		http_fail(req, route, 400, "bad_request", "%s.", why);
		return;
	}
	uint32_t parts = ct.has_partitions ? ct.partitions : W.cfg->http_auto_create_partitions;
	struct http_topic *t = NULL;
	if (http_topic_find(ct.name, strlen(ct.name), &t) == SK_OK) {
		if (t->t.partitions == parts)
			reply_topic(req, t->t.name, parts, false);
		else
			http_fail(req, route, 409, "conflict",
				  "Topic %s already exists with %u partitions.", ct.name, t->t.partitions);
		return;
	}
	if (!writer_accepts(req, route))
		return;
	struct http_pend *p = control_pend(req, route, MSG_REQ_CREATE_TOPIC, ct.name);
	if (!p)
		return;
	p->arg = parts;
	struct msg_req mr = {.kind = MSG_REQ_CREATE_TOPIC, .arg = parts};
	control_push(req, route, p, &mr, p->topic);
}

/* The topic (and partition, when one is named) a control request acts on, if the
 * writer takes writes now; answers 400/404/503/507 itself and returns NULL if not. */
static struct http_topic *control_target(struct http_req *req, enum http_route route,
					 const char *topic, const uint32_t *partition)
{
	struct http_topic *t = http_topic_or_fail(req, route, topic, strlen(topic));
	if (!t || (partition && !partition_ok(req, route, t, *partition)) ||
	    !writer_accepts(req, route))
		return NULL;
	return t;
}

void http_handle_commit(struct http_req *req)
{
	const enum http_route route = HTTP_R_COMMIT;
	size_t len;
	const char *body = control_body(req, route, &len);
	struct http_commit cm;
	char why[HTTP_WHY_BYTES];
	if (!body)
		return;
	if (http_parse_commit(body, len, &cm, why, sizeof(why)) != SK_OK) {
		http_fail(req, route, 400, "bad_request", "%s.", why);
		return;
	}
	struct http_topic *t = control_target(req, route, cm.topic, &cm.partition);
	if (!t)
		return;
	struct http_pend *p = control_pend(req, route, MSG_REQ_COMMIT, cm.topic);
	if (!p)
		return;
	memcpy(p->group, cm.group, sizeof(cm.group));
	p->partition = cm.partition;
	p->arg = cm.offset;
	struct msg_req mr = {.kind = MSG_REQ_COMMIT, .topic_id = t->t.id, .partition = cm.partition,
			     .arg = cm.offset};
	control_push(req, route, p, &mr, p->group);
}

void http_handle_delete_before(struct http_req *req)
{
	const enum http_route route = HTTP_R_DELETE_BEFORE;
	size_t len;
	const char *body = control_body(req, route, &len);
	struct http_delete_before db;
	char why[HTTP_WHY_BYTES];
	if (!body)
		return;
	if (http_parse_delete_before(body, len, &db, why, sizeof(why)) != SK_OK) {
		http_fail(req, route, 400, "bad_request", "%s.", why);
		return;
	}
	struct http_topic *t = control_target(req, route, db.topic, &db.partition);
	if (!t)
		return;
	struct http_pend *p = control_pend(req, route, MSG_REQ_DELETE_BEFORE, db.topic);
	if (!p)
		return;
	p->partition = db.partition;
	p->arg = db.before_offset;
	struct msg_req mr = {.kind = MSG_REQ_DELETE_BEFORE, .topic_id = t->t.id,
			     .partition = db.partition, .arg = db.before_offset};
	control_push(req, route, p, &mr, NULL);
}

void http_handle_retention(struct http_req *req)
{
	const enum http_route route = HTTP_R_RETENTION;
	size_t len;
	const char *body = control_body(req, route, &len);
	struct http_retention rt;
	char why[HTTP_WHY_BYTES];
	if (!body)
		return;
	if (http_parse_retention(body, len, &rt, why, sizeof(why)) != SK_OK) {
		http_fail(req, route, 400, "bad_request", "%s.", why);
		return;
	}
	struct http_topic *t = control_target(req, route, rt.topic, NULL);
	if (!t)
		return;
	struct http_pend *p = control_pend(req, route, MSG_REQ_RETENTION, rt.topic);
	if (!p)
		return;
	/* An omitted field keeps the topic's current value. */
	p->arg = rt.has_bytes ? rt.bytes : t->t.retention_bytes;
	p->arg2 = rt.has_ms ? rt.ms : t->t.retention_ms;
	struct msg_req mr = {.kind = MSG_REQ_RETENTION, .topic_id = t->t.id, .arg = p->arg,
			     .arg2 = p->arg2};
	control_push(req, route, p, &mr, NULL);
}

/* ---- outcomes (called by http_pending.c) ---- */

/* Re-run a produce whose topic was just auto-created. */
static void produce_again(struct http_pend *p)
{
	if (p->c.status == SK_OK)
		http_topics_learn(p->topic, p->c.topic_id, (uint32_t)p->arg);
	size_t path_len;
	const char *path = http_req_path(p->req, &path_len);
	struct http_match m;
	enum http_route route = http_route_match(path, path_len, &m);
	if (route != HTTP_R_PRODUCE && route != HTTP_R_PRODUCE_NDJSON) {
		http_fail(p->req, (enum http_route)p->route, 500, "internal", "The request was lost.");
		return;
	}
	produce_run(p->req, route, &m, http_req_query(p->req), false);
}

void http_pend_committed(struct http_pend *p)
{
	struct http_req *req = p->req;
	struct evbuffer *out = http_req_out(req);
	enum http_route route = (enum http_route)p->route;
	const struct msg_completion *c = &p->c;
	if (p->then == HTTP_THEN_PRODUCE) {
		produce_again(p);
		return;
	}
	switch (p->kind) {
	case MSG_REQ_PRODUCE:
		reply_produced(req, route, p->topic, c->partition, c, p->count, p->t0_ns);
		return;
	case MSG_REQ_CREATE_TOPIC:
		http_topics_learn(p->topic, c->topic_id, (uint32_t)p->arg);
		reply_topic(req, p->topic, (uint32_t)p->arg, (c->flags & MSG_FLAG_CREATED) != 0);
		return;
	case MSG_REQ_COMMIT:
		evbuffer_add_printf(out,
				    "{\"ok\":true,\"topic\":\"%s\",\"group\":\"%s\",\"partition\":%u,"
				    "\"offset\":%llu}",
				    p->topic, p->group, p->partition, (unsigned long long)p->arg);
		break;
	case MSG_REQ_DELETE_BEFORE:
		evbuffer_add_printf(out,
				    "{\"ok\":true,\"topic\":\"%s\",\"partition\":%u,\"before_offset\":%llu,"
				    "\"log_start\":%llu}",
				    p->topic, p->partition, (unsigned long long)p->arg,
				    (unsigned long long)c->offset);
		break;
	default:
		evbuffer_add_printf(out,
				    "{\"ok\":true,\"topic\":\"%s\",\"max_bytes\":%llu,\"ttl_ms\":%llu}",
				    p->topic, (unsigned long long)p->arg, (unsigned long long)p->arg2);
		break;
	}
	http_send(req, route, 200);
}

/* {"error","message"} plus one machine-readable number (the current value). */
static void fail_with(struct http_pend *p, int status, const char *code, const char *field,
		      const char *msg)
{
	struct evbuffer *out = http_req_out(p->req);
	evbuffer_add_printf(out, "{\"error\":\"%s\",\"message\":\"", code);
	http_json_escape(out, msg, strlen(msg));
	evbuffer_add_printf(out, "\",\"%s\":%llu}", field, (unsigned long long)p->c.current);
	http_send(p->req, (enum http_route)p->route, status);
}

static void rejected_conflict(struct http_pend *p)
{
	char msg[HTTP_WHY_BYTES + 2 * SK_TOPIC_NAME_BYTES_MAX];
	if (p->kind == MSG_REQ_COMMIT) {
		snprintf(msg, sizeof(msg),
			 "Group %s has committed offset %llu on %s/%u; a commit may not move it backwards.",
			 p->group, (unsigned long long)p->c.current, p->topic, p->partition);
		fail_with(p, 409, "conflict", "committed_offset", msg);
		return;
	}
	http_fail(p->req, (enum http_route)p->route, 409, "conflict",
		  "Topic %s already exists with %llu partitions.", p->topic,
		  (unsigned long long)p->c.current);
}

static void rejected_range(struct http_pend *p)
{
	char msg[HTTP_WHY_BYTES + SK_TOPIC_NAME_BYTES_MAX];
	snprintf(msg, sizeof(msg), "Offset %llu is past the high watermark %llu of %s/%u.",
		 (unsigned long long)p->arg, (unsigned long long)p->c.current, p->topic, p->partition);
	fail_with(p, 400, "out_of_range", "high_watermark", msg);
}

void http_pend_rejected(struct http_pend *p)
{
	enum http_route route = (enum http_route)p->route;
	struct http_req *req = p->req;
	if (p->then == HTTP_THEN_PRODUCE && p->c.status == SK_ECONFLICT) {
		produce_again(p); /* created meanwhile by someone else: produce into it */
		return;
	}
	switch (p->c.status) {
	case SK_ENOTFOUND:
		http_fail(req, route, 404, "not_found", "Topic %s or its partition does not exist.",
			  p->topic);
		return;
	case SK_ECONFLICT:
		rejected_conflict(p);
		return;
	case SK_ERANGE:
		rejected_range(p);
		return;
	case SK_EFULL:
		http_fail(req, route, 507, "insufficient_storage",
			  "The disk is full; writes are refused until space is freed.");
		return;
	case SK_EINVAL:
		http_fail(req, route, 400, "bad_request", "The writer refused the request as invalid.");
		return;
	default:
		http_fail(req, route, 500, "internal", "The writer failed the request (%s).",
			  sk_errname((sk_err)p->c.status));
		return;
	}
}

void http_pend_timed_out(struct http_pend *p)
{
	http_fail(p->req, (enum http_route)p->route, 503, "timeout",
		  "No acknowledgement within %u ms; the outcome is unknown, so retry with the same "
		  "idempotency_key.",
		  p->timeout_ms);
}

/* ---- setup ---- */

sk_err http_produce_init(struct event_base *base, const struct sk_status_page *page)
{
	memset(&W, 0, sizeof(W));
	W.cfg = http_ctx->cfg;
	W.page = page;
	uint32_t recs = W.cfg->http_batch_records_max;
	W.segs_cap = (uint32_t)(W.cfg->http_body_bytes_max / 1024) + PRODUCE_SEGS_EXTRA;
	/* ndjson worst case: header + idem + one piece per record, and a line may span chains. */
	W.iov_cap = 1 + 2 * recs + 1 + W.segs_cap + PRODUCE_FIXED_IOVS;
	W.scratch_cap = W.cfg->http_body_bytes_max;
	W.iov = calloc(W.iov_cap, sizeof(*W.iov));
	W.segs = calloc(W.segs_cap, sizeof(*W.segs));
	W.hdr = calloc(recs, sizeof(*W.hdr));
	W.scratch = malloc(W.scratch_cap);
	if (!W.iov || !W.segs || !W.hdr || !W.scratch)
		return SK_ENOMEM;
	return http_pending_init(base, page, W.cfg->http_connections_max + PRODUCE_SEGS_EXTRA * 4);
}

void http_produce_fini(void)
{
	http_pending_fini();
	free(W.iov);
	free(W.segs);
	free(W.hdr);
	free(W.scratch);
	memset(&W, 0, sizeof(W));
}
