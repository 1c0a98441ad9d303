/* Read protocol between the http worker and the replay worker (nng pair1 over
 * ipc://RUN_DIR/replay.sock). Little-endian, packed field by field.
 *
 * Request (SK_READ_REQ_HEADER_BYTES = 42, then the group name):
 *   0  u8  version     1
 *   1  u8  kind        1 consume, 2 partition info
 *   2  u8  encoding    0 base64, 1 text
 *   3  u8  flags       bit 0: offset given; other bits 0
 *   4  u32 req_id
 *   8  u32 topic_id
 *   12 u32 partition   kind 2: the topic's partition count
 *   16 u64 offset
 *   24 u32 limit
 *   28 u32 reserved    0
 *   32 u64 max_bytes
 *   40 u16 group_len   0..SK_GROUP_NAME_BYTES_MAX
 *   42 group bytes
 *
 * A request is valid when: version is 1; kind and encoding are known; no unknown
 * flag bit is set; reserved is 0; group_len is within its limit and the message is
 * exactly 42 + group_len bytes; the group holds no NUL byte (it is used as a C
 * string); kind 1 has 1 <= limit <= SK_HTTP_CONSUME_LIMIT_MAX and
 * max_bytes <= SK_HTTP_CONSUME_BYTES_MAX; kind 2 has 1 <= partition (the count)
 * <= SK_PARTITIONS_MAX_MAX.
 *
 * Reply (SK_READ_REPLY_HEADER_BYTES = 48, then the body):
 *   0  u8  version     1
 *   1  u8  kind
 *   2  u8  status      sk_err
 *   3  u8  reserved    0
 *   4  u32 req_id
 *   8  u64 next_offset
 *   16 u64 high_watermark
 *   24 u64 log_start
 *   32 u64 committed_offset   SK_READ_NO_COMMIT when the group never committed
 *   40 u32 count
 *   44 u32 body_len
 *   48 body (JSON text)
 *
 * A reply is valid when: version is 1; kind is known; status is a known sk_err;
 * reserved is 0; the message is exactly 48 + body_len bytes; count is within the
 * limit of its kind (records of one consume, or partitions of one topic). */
#include "ipc/read_msg.h"

#include <stdbool.h>
#include <string.h>

#include "common/bytes.h"

static bool read_req_fields_valid(const struct read_req *r)
{
	if (r->kind != READ_CONSUME && r->kind != READ_PARTITION_INFO)
		return false;
	if (r->encoding != READ_ENC_BASE64 && r->encoding != READ_ENC_TEXT)
		return false;
	if ((r->flags & ~(uint8_t)READ_FLAG_OFFSET) != 0)
		return false;
	if (r->group_len > SK_GROUP_NAME_BYTES_MAX)
		return false;
	if (r->kind == READ_CONSUME)
		return r->limit >= 1 && r->limit <= SK_HTTP_CONSUME_LIMIT_MAX &&
		       r->max_bytes <= SK_HTTP_CONSUME_BYTES_MAX;
	return r->partition >= 1 && r->partition <= SK_PARTITIONS_MAX_MAX;
}

sk_err read_req_encode(uint8_t *out, size_t cap, const struct read_req *req, size_t *len_out)
{
	if (!read_req_fields_valid(req) || memchr(req->group, 0, req->group_len) != NULL)
		return SK_EINVAL;
	size_t len = SK_READ_REQ_HEADER_BYTES + (size_t)req->group_len;
	if (cap < len)
		return SK_EFULL;
	out[0] = SK_READ_VERSION;
	out[1] = req->kind;
	out[2] = req->encoding;
	out[3] = req->flags;
	put_u32(out + 4, req->req_id);
	put_u32(out + 8, req->topic_id);
	put_u32(out + 12, req->partition);
	put_u64(out + 16, req->offset);
	put_u32(out + 24, req->limit);
	put_u32(out + 28, 0);
	put_u64(out + 32, req->max_bytes);
	put_u16(out + 40, req->group_len);
	if (req->group_len)
		memcpy(out + SK_READ_REQ_HEADER_BYTES, req->group, req->group_len);
	*len_out = len;
	return SK_OK;
}

sk_err read_req_decode(const uint8_t *buf, size_t len, struct read_req *out)
{
	if (len < SK_READ_REQ_HEADER_BYTES)
		return SK_ECORRUPT;
	if (buf[0] != SK_READ_VERSION)
		return SK_EVERSION;
	struct read_req r = {
		.kind = buf[1],
		.encoding = buf[2],
		.flags = buf[3],
		.req_id = get_u32(buf + 4),
		.topic_id = get_u32(buf + 8),
		.partition = get_u32(buf + 12),
		.offset = get_u64(buf + 16),
		.limit = get_u32(buf + 24),
		.max_bytes = get_u64(buf + 32),
		.group_len = get_u16(buf + 40),
	};
	if (get_u32(buf + 28) != 0 || !read_req_fields_valid(&r))
		return SK_ECORRUPT;
	if (len != SK_READ_REQ_HEADER_BYTES + (size_t)r.group_len)
		return SK_ECORRUPT;
	const uint8_t *group = buf + SK_READ_REQ_HEADER_BYTES;
	if (memchr(group, 0, r.group_len) != NULL)
		return SK_ECORRUPT;
	memcpy(r.group, group, r.group_len);
	r.group[r.group_len] = '\0';
	*out = r;
	return SK_OK;
}

void read_reply_encode_header(uint8_t out[SK_READ_REPLY_HEADER_BYTES], const struct read_reply *r)
{
	out[0] = SK_READ_VERSION;
	out[1] = r->kind;
	out[2] = r->status;
	out[3] = 0;
	put_u32(out + 4, r->req_id);
	put_u64(out + 8, r->next_offset);
	put_u64(out + 16, r->high_watermark);
	put_u64(out + 24, r->log_start);
	put_u64(out + 32, r->committed_offset);
	put_u32(out + 40, r->count);
	put_u32(out + 44, r->body_len);
}

sk_err read_reply_decode(const uint8_t *buf, size_t len, struct read_reply *out)
{
	if (len < SK_READ_REPLY_HEADER_BYTES)
		return SK_ECORRUPT;
	if (buf[0] != SK_READ_VERSION)
		return SK_EVERSION;
	struct read_reply r = {
		.kind = buf[1],
		.status = buf[2],
		.req_id = get_u32(buf + 4),
		.next_offset = get_u64(buf + 8),
		.high_watermark = get_u64(buf + 16),
		.log_start = get_u64(buf + 24),
		.committed_offset = get_u64(buf + 32),
		.count = get_u32(buf + 40),
		.body_len = get_u32(buf + 44),
	};
	if (buf[3] != 0 || r.status >= SK_ERR_COUNT)
		return SK_ECORRUPT;
	if (r.kind == READ_CONSUME) {
		if (r.count > SK_HTTP_CONSUME_LIMIT_MAX)
			return SK_ECORRUPT;
	} else if (r.kind == READ_PARTITION_INFO) {
		if (r.count > SK_PARTITIONS_MAX_MAX)
			return SK_ECORRUPT;
	} else {
		return SK_ECORRUPT;
	}
	if (len - SK_READ_REPLY_HEADER_BYTES != (size_t)r.body_len)
		return SK_ECORRUPT;
	r.body = buf + SK_READ_REPLY_HEADER_BYTES;
	*out = r;
	return SK_OK;
}
