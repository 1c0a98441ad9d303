/* Journal frames: one frame is one raft entry. The byte layout and the rules
 * for a valid frame are at the top of store/frame.c. Summary (little endian):
 *
 *   0  u32 magic 0x31464b53 ("SKF1")   4  u32 length (whole frame, multiple of 8)
 *   8  u32 crc32c over [0,8) and [12,length)
 *   12 u16 version (1)    14 u16 kind (enum frame_kind)
 *   16 u64 term           24 u64 index
 *   32 u32 topic_id       36 u32 partition     40 u64 base_offset
 *   48 u32 record_count   52 u32 body_bytes    56 u64 timestamp_ms
 *   64 u64 ingress_seq    72 u64 durable_index
 *   80 body, zero padding to length
 *
 * frame_decode() is the one gate every byte read from a journal goes through. */
#ifndef SK_STORE_FRAME_H
#define SK_STORE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sk_error.h"
#include "common/sk_limits.h"

#define SK_FRAME_MAGIC 0x31464b53u /* "SKF1" read as a little-endian u32 */
#define SK_FRAME_VERSION 1
#define SK_FRAME_HEADER_BYTES 80
#define SK_FRAME_ALIGN 8
#define SK_FRAME_BODY_BYTES_MAX (SK_FRAME_BYTES_MAX - SK_FRAME_HEADER_BYTES)

enum frame_kind {
	FRAME_RECORD_BATCH = 1,
	FRAME_TOPIC_CREATED = 2,
	FRAME_OFFSET_COMMITTED = 3,
	FRAME_LOG_START = 4,  /* delete-before / retention moved a partition's log start */
	FRAME_RETENTION = 5,  /* per-topic retention set */
	FRAME_MEMBERSHIP = 6, /* reserved for the cluster: body opaque here */
	FRAME_KIND_MAX = 6,
};

/* The decoded header. length and body_bytes are filled by the encoder. */
struct frame_header {
	uint32_t length;
	uint16_t version;
	uint16_t kind;
	uint64_t term;
	uint64_t index;
	uint32_t topic_id;
	uint32_t partition;
	uint64_t base_offset;
	uint32_t record_count;
	uint32_t body_bytes;
	uint64_t timestamp_ms;
	uint64_t ingress_seq;
	uint64_t durable_index;
};

/* Control entry bodies (layouts in frame.c). Pointers point into the frame. */
struct frame_topic_created {
	uint32_t partitions;
	const uint8_t *name;
	uint16_t name_len;
};
struct frame_offset_committed {
	uint64_t offset;
	const uint8_t *group;
	uint16_t group_len;
};
struct frame_log_start {
	uint64_t log_start;
};
struct frame_retention {
	uint64_t bytes; /* 0 = node default */
	uint64_t ms;    /* 0 = node default */
};

#define SK_FRAME_TOPIC_CREATED_FIXED_BYTES 8
#define SK_FRAME_OFFSET_COMMITTED_FIXED_BYTES 12
#define SK_FRAME_LOG_START_BYTES 8
#define SK_FRAME_RETENTION_BYTES 16

/* Whole frame size for a body of body_bytes (header + body, rounded up to 8). */
static inline uint64_t frame_length_for_body(uint64_t body_bytes)
{
	return (SK_FRAME_HEADER_BYTES + body_bytes + SK_FRAME_ALIGN - 1) & ~(uint64_t)(SK_FRAME_ALIGN - 1);
}

/* Check and decode the complete frame at the start of buf (len bytes present; the frame
 * may be followed by more bytes). Every length is checked against len before use; the
 * CRC, version, kind, the body (records or control layout) and the zero padding are
 * verified. SK_OK: *out holds the header and the body is buf[SK_FRAME_HEADER_BYTES ..
 * + out->body_bytes). SK_ECORRUPT otherwise; *why_out (may be NULL) gets a static reason. */
sk_err frame_decode(const uint8_t *buf, size_t len, struct frame_header *out, const char **why_out);

/* Header-only check without CRC or body (magic, version, kind, length range): used to
 * look for a plausible next frame. On true *length_out = the frame's length. */
bool frame_header_plausible(const uint8_t *buf, size_t len, uint32_t *length_out);

/* Finish a frame whose body (h->body_bytes bytes) is already at frame + SK_FRAME_HEADER_BYTES
 * in a buffer of at least frame_length_for_body(h->body_bytes) bytes: sets h->length and
 * h->version, writes the header, zero padding and CRC, then asserts the frame decodes
 * (a frame is checked before it is written). The caller checked the limits. */
void frame_finish(uint8_t *frame, struct frame_header *h);

/* Copy body and finish the frame into out (cap bytes). SK_EFULL when cap is too small,
 * SK_EINVAL when body_bytes is over SK_FRAME_BODY_BYTES_MAX. *used_out = h->length. */
sk_err frame_encode(uint8_t *out, size_t cap, struct frame_header *h, const void *body,
		    size_t *used_out);

/* Control bodies: encode into out (cap bytes, *used_out = body bytes; SK_EINVAL on a bad
 * length, SK_EFULL when cap is too small) and decode from a frame body (SK_ECORRUPT). */
sk_err frame_topic_created_encode(uint8_t *out, size_t cap, const struct frame_topic_created *b,
				  size_t *used_out);
sk_err frame_topic_created_decode(const uint8_t *body, size_t len, struct frame_topic_created *out);
sk_err frame_offset_committed_encode(uint8_t *out, size_t cap, const struct frame_offset_committed *b,
				     size_t *used_out);
sk_err frame_offset_committed_decode(const uint8_t *body, size_t len,
				     struct frame_offset_committed *out);
sk_err frame_log_start_encode(uint8_t *out, size_t cap, const struct frame_log_start *b,
			      size_t *used_out);
sk_err frame_log_start_decode(const uint8_t *body, size_t len, struct frame_log_start *out);
sk_err frame_retention_encode(uint8_t *out, size_t cap, const struct frame_retention *b,
			      size_t *used_out);
sk_err frame_retention_decode(const uint8_t *body, size_t len, struct frame_retention *out);

/* Name of a kind for logs and verify ("record_batch", ...; "unknown"). */
const char *frame_kind_name(uint16_t kind);

#endif
