/* Payloads carried by the rings. Packed and unpacked field by field, little
 * endian; every decode checks the version and every length against the bytes
 * present, and a malformed payload is an error (dropped, logged, counted by
 * the caller), never trusted.
 *
 * Ingress request (http -> writer), header then variable parts:
 *   0  u8  version (1)
 *   1  u8  kind       enum msg_req_kind
 *   2  u8  ack        enum sk_ack
 *   3  u8  flags      0
 *   4  u32 topic_id   (0 for create_topic)
 *   8  u32 partition
 *   12 u32 record_count  (produce: >= 1; others 0)
 *   16 u64 arg        commit: offset; delete_before: before_offset;
 *                     create_topic: partitions; retention: bytes
 *   24 u64 arg2       retention: ms; produce: idempotency window ms
 *   32 u64 now_ms     wall clock at ingress (record timestamps, idempotency window)
 *   40 u16 name_len   create_topic: topic name; commit: group name
 *   42 u16 reserved   0
 *   44 u32 body_len   produce: records encoded as in store/record.h
 *   48 name, body
 *
 * Completion (writer -> http), fixed 56 bytes:
 *   0  u8  version (1)
 *   1  u8  kind       the request's kind
 *   2  u8  status     sk_err: OK, ENOTFOUND (topic/partition), ECONFLICT (commit
 *                     backwards, topic exists with other partitions), ERANGE (offset past
 *                     high watermark / below log start), EFULL (storage full), EINVAL
 *   3  u8  flags      1 = duplicate (idempotency hit), 2 = created (topic was new)
 *   4  u32 partition
 *   8  u64 req_seq    the ingress ring sequence this completes
 *   16 u64 offset     produce: first offset; commit: committed offset
 *   24 u64 index      raft index of the frame (ack when commit_index >= index)
 *   32 u32 count      records in the frame
 *   36 u32 topic_id
 *   40 u64 current    on ECONFLICT/ERANGE: the current committed offset / high watermark / log start
 *   48 u64 reserved   0
 */
#ifndef SK_IPC_MSG_H
#define SK_IPC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "common/sk_error.h"

#define SK_MSG_VERSION 1
#define SK_MSG_REQ_HEADER_BYTES 48
#define SK_MSG_COMPLETION_BYTES 56

enum msg_req_kind {
	MSG_REQ_PRODUCE = 1,
	MSG_REQ_CREATE_TOPIC = 2,
	MSG_REQ_COMMIT = 3,
	MSG_REQ_DELETE_BEFORE = 4,
	MSG_REQ_RETENTION = 5,
};

enum msg_completion_flags { MSG_FLAG_DUPLICATE = 1, MSG_FLAG_CREATED = 2 };

struct msg_req {
	uint8_t kind;
	uint8_t ack;
	uint32_t topic_id;
	uint32_t partition;
	uint32_t record_count;
	uint64_t arg;
	uint64_t arg2;
	uint64_t now_ms;
	const uint8_t *name; /* points into the decoded buffer */
	uint16_t name_len;
	const uint8_t *body; /* points into the decoded buffer */
	uint32_t body_len;
};

struct msg_completion {
	uint8_t kind;
	uint8_t status;
	uint8_t flags;
	uint32_t partition;
	uint64_t req_seq;
	uint64_t offset;
	uint64_t index;
	uint32_t count;
	uint32_t topic_id;
	uint64_t current;
};

/* Encode the request header into hdr; name and body follow it in the same ring
 * record (pass them as further iovecs to ring_push()). */
void msg_req_encode_header(uint8_t hdr[SK_MSG_REQ_HEADER_BYTES], const struct msg_req *req);
/* Decode a whole ring payload; name/body point into buf. SK_EVERSION, SK_ECORRUPT
 * (lengths disagree with len, unknown kind), SK_OK. */
sk_err msg_req_decode(const uint8_t *buf, size_t len, struct msg_req *out);

void msg_completion_encode(uint8_t out[SK_MSG_COMPLETION_BYTES], const struct msg_completion *c);
sk_err msg_completion_decode(const uint8_t *buf, size_t len, struct msg_completion *out);

#endif
