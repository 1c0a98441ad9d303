/* Ring payload codecs. The byte layouts are in ipc/msg.h; the rules a decoded
 * message must satisfy, beyond its layout:
 *
 * Ingress request
 *   - at least 1 byte (the version) and version == SK_MSG_VERSION, else SK_EVERSION
 *   - at least SK_MSG_REQ_HEADER_BYTES, and exactly header + name_len + body_len
 *   - kind is a known msg_req_kind, ack a known sk_ack, flags and reserved 0
 *   - produce:       record_count >= 1, body_len >= 1, no name
 *   - create_topic:  topic_id 0, name 1..SK_TOPIC_NAME_BYTES_MAX, no records, no body
 *   - commit:        group name 1..SK_GROUP_NAME_BYTES_MAX, no records, no body
 *   - delete_before, retention: no name, no records, no body
 * Completion
 *   - version first (SK_EVERSION), then exactly SK_MSG_COMPLETION_BYTES
 *   - kind known, status a known sk_err, only known flags, reserved 0
 * Anything else is SK_ECORRUPT.
 */
#include "ipc/msg.h"

#include <assert.h>

#include "common/config.h"
#include "common/sk_limits.h"

static bool msg_kind_known(uint8_t kind)
{
	return kind >= MSG_REQ_PRODUCE && kind <= MSG_REQ_RETENTION;
}

void msg_req_encode_header(uint8_t hdr[SK_MSG_REQ_HEADER_BYTES], const struct msg_req *req)
{
	assert(msg_kind_known(req->kind));
	hdr[0] = SK_MSG_VERSION;
	hdr[1] = req->kind;
	hdr[2] = req->ack;
	hdr[3] = 0;
	put_u32(hdr + 4, req->topic_id);
	put_u32(hdr + 8, req->partition);
	put_u32(hdr + 12, req->record_count);
	put_u64(hdr + 16, req->arg);
	put_u64(hdr + 24, req->arg2);
	put_u64(hdr + 32, req->now_ms);
	put_u16(hdr + 40, req->name_len);
	put_u16(hdr + 42, 0);
	put_u32(hdr + 44, req->body_len);
}

/* Per-kind consistency of the counts and lengths (layout already checked). */
static bool msg_req_shape_valid(const struct msg_req *m)
{
	switch (m->kind) {
	case MSG_REQ_PRODUCE:
		return m->record_count >= 1 && m->body_len >= 1 && m->name_len == 0;
	case MSG_REQ_CREATE_TOPIC:
		return m->topic_id == 0 && m->name_len >= 1 &&
		       m->name_len <= SK_TOPIC_NAME_BYTES_MAX && m->record_count == 0 &&
		       m->body_len == 0;
	case MSG_REQ_COMMIT:
		return m->name_len >= 1 && m->name_len <= SK_GROUP_NAME_BYTES_MAX &&
		       m->record_count == 0 && m->body_len == 0;
	case MSG_REQ_DELETE_BEFORE:
	case MSG_REQ_RETENTION:
		return m->name_len == 0 && m->record_count == 0 && m->body_len == 0;
	default:
		return false;
	}
}

sk_err msg_req_decode(const uint8_t *buf, size_t len, struct msg_req *out)
{
	if (len < 1)
		return SK_ECORRUPT;
	if (buf[0] != SK_MSG_VERSION)
		return SK_EVERSION;
	if (len < SK_MSG_REQ_HEADER_BYTES)
		return SK_ECORRUPT;
	struct msg_req m = {
	    .kind = buf[1],
	    .ack = buf[2],
	    .topic_id = get_u32(buf + 4),
	    .partition = get_u32(buf + 8),
	    .record_count = get_u32(buf + 12),
	    .arg = get_u64(buf + 16),
	    .arg2 = get_u64(buf + 24),
	    .now_ms = get_u64(buf + 32),
	    .name_len = get_u16(buf + 40),
	    .body_len = get_u32(buf + 44),
	};
	if (!msg_kind_known(m.kind) || m.ack > SK_ACK_ALL || buf[3] != 0 || get_u16(buf + 42) != 0)
		return SK_ECORRUPT;
	/* 64-bit sum: name_len + body_len cannot overflow it. */
	if ((uint64_t)SK_MSG_REQ_HEADER_BYTES + m.name_len + m.body_len != (uint64_t)len)
		return SK_ECORRUPT;
	if (!msg_req_shape_valid(&m))
		return SK_ECORRUPT;
	m.name = m.name_len ? buf + SK_MSG_REQ_HEADER_BYTES : NULL;
	m.body = m.body_len ? buf + SK_MSG_REQ_HEADER_BYTES + m.name_len : NULL;
	*out = m;
	return SK_OK;
}

void msg_completion_encode(uint8_t out[SK_MSG_COMPLETION_BYTES], const struct msg_completion *c)
{
	assert(msg_kind_known(c->kind) && c->status < SK_ERR_COUNT);
	out[0] = SK_MSG_VERSION;
	out[1] = c->kind;
	out[2] = c->status;
	out[3] = c->flags;
	put_u32(out + 4, c->partition);
	put_u64(out + 8, c->req_seq);
	put_u64(out + 16, c->offset);
	put_u64(out + 24, c->index);
	put_u32(out + 32, c->count);
	put_u32(out + 36, c->topic_id);
	put_u64(out + 40, c->current);
	put_u64(out + 48, 0);
}

sk_err msg_completion_decode(const uint8_t *buf, size_t len, struct msg_completion *out)
{
	if (len < 1)
		return SK_ECORRUPT;
	if (buf[0] != SK_MSG_VERSION)
		return SK_EVERSION;
	if (len != SK_MSG_COMPLETION_BYTES)
		return SK_ECORRUPT;
	struct msg_completion c = {
	    .kind = buf[1],
	    .status = buf[2],
	    .flags = buf[3],
	    .partition = get_u32(buf + 4),
	    .req_seq = get_u64(buf + 8),
	    .offset = get_u64(buf + 16),
	    .index = get_u64(buf + 24),
	    .count = get_u32(buf + 32),
	    .topic_id = get_u32(buf + 36),
	    .current = get_u64(buf + 40),
	};
	if (!msg_kind_known(c.kind) || c.status >= SK_ERR_COUNT ||
	    (c.flags & ~(MSG_FLAG_DUPLICATE | MSG_FLAG_CREATED)) != 0 || get_u64(buf + 48) != 0)
		return SK_ECORRUPT;
	*out = c;
	return SK_OK;
}
