/* Journal frame codec.
 *
 * A frame is one raft entry. Little-endian, packed field by field:
 *
 *   0  u32 magic          0x31464b53 ("SKF1")
 *   4  u32 length         whole frame including header and padding
 *   8  u32 crc32c         over bytes [0,8) and [12,length)
 *   12 u16 version        1
 *   14 u16 kind           1 record batch, 2 topic created, 3 offset committed,
 *                         4 log start moved, 5 retention set, 6 membership (reserved)
 *   16 u64 term           raft term (single node: 1)
 *   24 u64 index          raft index, 1, 2, 3, ... across the whole journal
 *   32 u32 topic_id
 *   36 u32 partition
 *   40 u64 base_offset    record batch: offset of its first record; others 0
 *   48 u32 record_count   record batch: >= 1; others 0
 *   52 u32 body_bytes     bytes of body before the padding
 *   56 u64 timestamp_ms   wall clock of the request (its ingress time; the writer's clock
 *                         when the request carries none)
 *   64 u64 ingress_seq    highest ingress ring sequence this frame holds (0: none)
 *   72 u64 durable_index  the writer's durable index when this frame was written:
 *                         every frame with index <= it was fdatasync'd before
 *   80 body, then zero padding to length
 *
 * Bodies:
 *   record batch      record_count records as in store/record.h, nothing else
 *   topic created     0 u32 partitions  4 u16 name_len  6 u16 reserved (0)  8 name
 *                     (topic_id = the new id, partition 0)
 *   offset committed  0 u64 offset  8 u16 group_len  10 u16 reserved (0)  12 group
 *                     (topic_id, partition = what the group committed)
 *   log start moved   0 u64 log_start (topic_id, partition = whose start moves)
 *   retention set     0 u64 bytes  8 u64 ms (0 = node default; topic_id, partition 0)
 *   membership        opaque (reserved for the cluster)
 *
 * A frame is valid when, in this order (each check only reads bytes an earlier
 * check proved present):
 *   1. at least 80 bytes are present and magic matches;
 *   2. length is a multiple of 8, 80 <= length <= SK_FRAME_BYTES_MAX, and that many
 *      bytes are present;
 *   3. the CRC matches;
 *   4. version is 1 and kind is 1..6;
 *   5. length == round_up_8(80 + body_bytes) and the padding is all zero;
 *   6. term >= 1, index >= 1, durable_index < index;
 *   7. the body matches its kind: a record batch has record_count >= 1, topic_id >= 1,
 *      base_offset + record_count does not overflow and the body is exactly
 *      record_count well-formed records; a control entry has record_count 0,
 *      base_offset 0, its exact body length, names of 1..128 bytes without NUL,
 *      partitions in 1..SK_PARTITIONS_MAX_MAX, reserved fields 0.
 * The encoder asserts all of this before a frame is written; every reader checks it
 * again after reading.
 */
#include "common/names.h"
#include "store/frame.h"

#include <string.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "store/record.h"
#include "store/store_assert.h"

#define OFF_MAGIC 0
#define OFF_LENGTH 4
#define OFF_CRC 8
#define OFF_VERSION 12
#define OFF_KIND 14
#define OFF_TERM 16
#define OFF_INDEX 24
#define OFF_TOPIC 32
#define OFF_PARTITION 36
#define OFF_BASE_OFFSET 40
#define OFF_RECORD_COUNT 48
#define OFF_BODY_BYTES 52
#define OFF_TIMESTAMP 56
#define OFF_INGRESS_SEQ 64
#define OFF_DURABLE_INDEX 72

static uint32_t frame_crc(const uint8_t *frame, uint32_t length)
{
	uint32_t crc = crc32c(0, frame, OFF_CRC);
	return crc32c(crc, frame + OFF_CRC + 4, length - OFF_CRC - 4);
}

static void header_read(const uint8_t *p, struct frame_header *h)
{
	h->length = get_u32(p + OFF_LENGTH);
	h->version = get_u16(p + OFF_VERSION);
	h->kind = get_u16(p + OFF_KIND);
	h->term = get_u64(p + OFF_TERM);
	h->index = get_u64(p + OFF_INDEX);
	h->topic_id = get_u32(p + OFF_TOPIC);
	h->partition = get_u32(p + OFF_PARTITION);
	h->base_offset = get_u64(p + OFF_BASE_OFFSET);
	h->record_count = get_u32(p + OFF_RECORD_COUNT);
	h->body_bytes = get_u32(p + OFF_BODY_BYTES);
	h->timestamp_ms = get_u64(p + OFF_TIMESTAMP);
	h->ingress_seq = get_u64(p + OFF_INGRESS_SEQ);
	h->durable_index = get_u64(p + OFF_DURABLE_INDEX);
}

static void header_write(uint8_t *p, const struct frame_header *h)
{
	put_u32(p + OFF_MAGIC, SK_FRAME_MAGIC);
	put_u32(p + OFF_LENGTH, h->length);
	put_u32(p + OFF_CRC, 0);
	put_u16(p + OFF_VERSION, h->version);
	put_u16(p + OFF_KIND, h->kind);
	put_u64(p + OFF_TERM, h->term);
	put_u64(p + OFF_INDEX, h->index);
	put_u32(p + OFF_TOPIC, h->topic_id);
	put_u32(p + OFF_PARTITION, h->partition);
	put_u64(p + OFF_BASE_OFFSET, h->base_offset);
	put_u32(p + OFF_RECORD_COUNT, h->record_count);
	put_u32(p + OFF_BODY_BYTES, h->body_bytes);
	put_u64(p + OFF_TIMESTAMP, h->timestamp_ms);
	put_u64(p + OFF_INGRESS_SEQ, h->ingress_seq);
	put_u64(p + OFF_DURABLE_INDEX, h->durable_index);
}

static bool name_valid(const uint8_t *name, size_t len, size_t max)
{
	return sk_name_valid((const char *)name, len, max);
}

static const char *body_check_topic_created(const struct frame_header *h, const uint8_t *body)
{
	struct frame_topic_created b;
	if (h->topic_id == 0 || h->partition != 0)
		return "topic created: bad topic id or partition";
	if (frame_topic_created_decode(body, h->body_bytes, &b) != SK_OK)
		return "topic created: bad body";
	return NULL;
}

static const char *body_check_offset_committed(const struct frame_header *h, const uint8_t *body)
{
	struct frame_offset_committed b;
	if (h->topic_id == 0)
		return "offset committed: topic id 0";
	if (frame_offset_committed_decode(body, h->body_bytes, &b) != SK_OK)
		return "offset committed: bad body";
	return NULL;
}

static const char *body_check_control(const struct frame_header *h, const uint8_t *body)
{
	struct frame_log_start ls;
	struct frame_retention rt;
	if (h->record_count != 0 || h->base_offset != 0)
		return "control entry with records or base offset";
	switch (h->kind) {
	case FRAME_TOPIC_CREATED:
		return body_check_topic_created(h, body);
	case FRAME_OFFSET_COMMITTED:
		return body_check_offset_committed(h, body);
	case FRAME_LOG_START:
		if (h->topic_id == 0 || frame_log_start_decode(body, h->body_bytes, &ls) != SK_OK)
			return "log start: bad topic id or body";
		return NULL;
	case FRAME_RETENTION:
		if (h->topic_id == 0 || h->partition != 0 ||
		    frame_retention_decode(body, h->body_bytes, &rt) != SK_OK)
			return "retention: bad topic id, partition or body";
		return NULL;
	case FRAME_MEMBERSHIP:
		return NULL;
	default:
		return "unknown kind";
	}
}

static const char *body_check(const struct frame_header *h, const uint8_t *body)
{
	if (h->kind != FRAME_RECORD_BATCH)
		return body_check_control(h, body);
	if (h->record_count == 0 || h->topic_id == 0)
		return "record batch: no records or topic id 0";
	if (h->base_offset > UINT64_MAX - h->record_count)
		return "record batch: offsets overflow";
	if (!record_batch_valid(body, h->body_bytes, h->record_count))
		return "record batch: records malformed";
	return NULL;
}

static bool zero_bytes(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* Checks 1-6 of the rules (3, the CRC, only with check_crc); the body is checked by
 * body_check(). */
static const char *frame_check(const uint8_t *buf, size_t len, struct frame_header *h, bool check_crc)
{
	if (len < SK_FRAME_HEADER_BYTES)
		return "truncated header";
	if (get_u32(buf + OFF_MAGIC) != SK_FRAME_MAGIC)
		return "bad magic";
	uint32_t length = get_u32(buf + OFF_LENGTH);
	if (length % SK_FRAME_ALIGN != 0 || length < SK_FRAME_HEADER_BYTES ||
	    length > SK_FRAME_BYTES_MAX)
		return "bad length";
	if (length > len)
		return "truncated frame";
	if (check_crc && get_u32(buf + OFF_CRC) != frame_crc(buf, length))
		return "crc mismatch";
	header_read(buf, h);
	if (h->version != SK_FRAME_VERSION)
		return "unknown version";
	if (h->kind < FRAME_RECORD_BATCH || h->kind > FRAME_KIND_MAX)
		return "unknown kind";
	if (h->body_bytes > length - SK_FRAME_HEADER_BYTES ||
	    frame_length_for_body(h->body_bytes) != length)
		return "body length disagrees with frame length";
	if (!zero_bytes(buf + SK_FRAME_HEADER_BYTES + h->body_bytes,
			length - SK_FRAME_HEADER_BYTES - h->body_bytes))
		return "padding not zero";
	if (h->term == 0 || h->index == 0 || h->durable_index >= h->index)
		return "bad term, index or durable index";
	return NULL;
}

sk_err frame_decode(const uint8_t *buf, size_t len, struct frame_header *out, const char **why_out)
{
	struct frame_header h;
	const char *why = frame_check(buf, len, &h, true);
	if (why == NULL)
		why = body_check(&h, buf + SK_FRAME_HEADER_BYTES);
	if (why_out != NULL)
		*why_out = why;
	if (why != NULL)
		return SK_ECORRUPT;
	*out = h;
	return SK_OK;
}

bool frame_header_plausible(const uint8_t *buf, size_t len, uint32_t *length_out)
{
	if (len < SK_FRAME_HEADER_BYTES || get_u32(buf + OFF_MAGIC) != SK_FRAME_MAGIC)
		return false;
	uint32_t length = get_u32(buf + OFF_LENGTH);
	uint16_t kind = get_u16(buf + OFF_KIND);
	if (length % SK_FRAME_ALIGN != 0 || length < SK_FRAME_HEADER_BYTES ||
	    length > SK_FRAME_BYTES_MAX || get_u16(buf + OFF_VERSION) != SK_FRAME_VERSION ||
	    kind < FRAME_RECORD_BATCH || kind > FRAME_KIND_MAX)
		return false;
	*length_out = length;
	return true;
}

void frame_finish(uint8_t *frame, struct frame_header *h)
{
	STORE_ASSERT(h->body_bytes <= SK_FRAME_BODY_BYTES_MAX);
	uint64_t length = frame_length_for_body(h->body_bytes);
	h->length = (uint32_t)length;
	h->version = SK_FRAME_VERSION;
	header_write(frame, h);
	memset(frame + SK_FRAME_HEADER_BYTES + h->body_bytes, 0,
	       length - SK_FRAME_HEADER_BYTES - h->body_bytes);
	/* Checked before it is written: every rule of a valid frame (the CRC computed just
	 * below is not computed twice), so a frame we could not read back is a bug here. */
	struct frame_header check;
	const char *why = frame_check(frame, length, &check, false);
	if (why == NULL)
		why = body_check(&check, frame + SK_FRAME_HEADER_BYTES);
	if (why != NULL)
		fprintf(stderr, "frame_finish: invalid frame index=%llu: %s\n",
			(unsigned long long)h->index, why);
	STORE_ASSERT(why == NULL && check.index == h->index && check.length == length);
	put_u32(frame + OFF_CRC, frame_crc(frame, h->length));
}

sk_err frame_encode(uint8_t *out, size_t cap, struct frame_header *h, const void *body,
		    size_t *used_out)
{
	if (h->body_bytes > SK_FRAME_BODY_BYTES_MAX)
		return SK_EINVAL;
	uint64_t length = frame_length_for_body(h->body_bytes);
	if (length > cap)
		return SK_EFULL;
	if (h->body_bytes > 0)
		memmove(out + SK_FRAME_HEADER_BYTES, body, h->body_bytes);
	frame_finish(out, h);
	*used_out = h->length;
	return SK_OK;
}

sk_err frame_topic_created_encode(uint8_t *out, size_t cap, const struct frame_topic_created *b,
				  size_t *used_out)
{
	if (!name_valid(b->name, b->name_len, SK_TOPIC_NAME_BYTES_MAX) || b->partitions < SK_PARTITIONS_MIN ||
	    b->partitions > SK_PARTITIONS_MAX_MAX)
		return SK_EINVAL;
	size_t need = SK_FRAME_TOPIC_CREATED_FIXED_BYTES + (size_t)b->name_len;
	if (need > cap)
		return SK_EFULL;
	put_u32(out, b->partitions);
	put_u16(out + 4, b->name_len);
	put_u16(out + 6, 0);
	memcpy(out + 8, b->name, b->name_len);
	*used_out = need;
	return SK_OK;
}

sk_err frame_topic_created_decode(const uint8_t *body, size_t len, struct frame_topic_created *out)
{
	if (len < SK_FRAME_TOPIC_CREATED_FIXED_BYTES)
		return SK_ECORRUPT;
	uint32_t partitions = get_u32(body);
	uint16_t name_len = get_u16(body + 4);
	if (get_u16(body + 6) != 0 || len != SK_FRAME_TOPIC_CREATED_FIXED_BYTES + (size_t)name_len)
		return SK_ECORRUPT;
	if (partitions < SK_PARTITIONS_MIN || partitions > SK_PARTITIONS_MAX_MAX ||
	    !name_valid(body + 8, name_len, SK_TOPIC_NAME_BYTES_MAX))
		return SK_ECORRUPT;
	out->partitions = partitions;
	out->name_len = name_len;
	out->name = body + 8;
	return SK_OK;
}

sk_err frame_offset_committed_encode(uint8_t *out, size_t cap, const struct frame_offset_committed *b,
				     size_t *used_out)
{
	if (!name_valid(b->group, b->group_len, SK_GROUP_NAME_BYTES_MAX))
		return SK_EINVAL;
	size_t need = SK_FRAME_OFFSET_COMMITTED_FIXED_BYTES + (size_t)b->group_len;
	if (need > cap)
		return SK_EFULL;
	put_u64(out, b->offset);
	put_u16(out + 8, b->group_len);
	put_u16(out + 10, 0);
	memcpy(out + 12, b->group, b->group_len);
	*used_out = need;
	return SK_OK;
}

sk_err frame_offset_committed_decode(const uint8_t *body, size_t len,
				     struct frame_offset_committed *out)
{
	if (len < SK_FRAME_OFFSET_COMMITTED_FIXED_BYTES)
		return SK_ECORRUPT;
	uint16_t group_len = get_u16(body + 8);
	if (get_u16(body + 10) != 0 || len != SK_FRAME_OFFSET_COMMITTED_FIXED_BYTES + (size_t)group_len ||
	    !name_valid(body + 12, group_len, SK_GROUP_NAME_BYTES_MAX))
		return SK_ECORRUPT;
	out->offset = get_u64(body);
	out->group_len = group_len;
	out->group = body + 12;
	return SK_OK;
}

sk_err frame_log_start_encode(uint8_t *out, size_t cap, const struct frame_log_start *b,
			      size_t *used_out)
{
	if (cap < SK_FRAME_LOG_START_BYTES)
		return SK_EFULL;
	put_u64(out, b->log_start);
	*used_out = SK_FRAME_LOG_START_BYTES;
	return SK_OK;
}

sk_err frame_log_start_decode(const uint8_t *body, size_t len, struct frame_log_start *out)
{
	if (len != SK_FRAME_LOG_START_BYTES)
		return SK_ECORRUPT;
	out->log_start = get_u64(body);
	return SK_OK;
}

sk_err frame_retention_encode(uint8_t *out, size_t cap, const struct frame_retention *b,
			      size_t *used_out)
{
	if (cap < SK_FRAME_RETENTION_BYTES)
		return SK_EFULL;
	put_u64(out, b->bytes);
	put_u64(out + 8, b->ms);
	*used_out = SK_FRAME_RETENTION_BYTES;
	return SK_OK;
}

sk_err frame_retention_decode(const uint8_t *body, size_t len, struct frame_retention *out)
{
	if (len != SK_FRAME_RETENTION_BYTES)
		return SK_ECORRUPT;
	out->bytes = get_u64(body);
	out->ms = get_u64(body + 8);
	return SK_OK;
}

const char *frame_kind_name(uint16_t kind)
{
	switch (kind) {
	case FRAME_RECORD_BATCH:
		return "record_batch";
	case FRAME_TOPIC_CREATED:
		return "topic_created";
	case FRAME_OFFSET_COMMITTED:
		return "offset_committed";
	case FRAME_LOG_START:
		return "log_start";
	case FRAME_RETENTION:
		return "retention";
	case FRAME_MEMBERSHIP:
		return "membership";
	default:
		return "unknown";
	}
}
