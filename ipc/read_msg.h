/* The read protocol between the http worker and the replay worker: nng pair1
 * over ipc://RUN_DIR/replay.sock (replay listens, http dials; nng reconnects
 * by itself after either restarts). Requests carry a req_id the reply echoes,
 * so many reads are in flight at once. Both sides set NNG_OPT_RECVMAXSZ.
 *
 * Request, little-endian, packed field by field:
 *   0  u8  version (1)
 *   1  u8  kind        1 consume, 2 partition info (all partitions of a topic)
 *   2  u8  encoding    0 base64, 1 text
 *   3  u8  flags       1 = offset given (else resume after the group's commit)
 *   4  u32 req_id
 *   8  u32 topic_id
 *   12 u32 partition   (kind 2: the topic's partition count)
 *   16 u64 offset
 *   24 u32 limit
 *   28 u32 reserved 0
 *   32 u64 max_bytes
 *   40 u16 group_len   0..SK_GROUP_NAME_BYTES_MAX
 *   42 group bytes
 *
 * Reply:
 *   0  u8  version (1)
 *   1  u8  kind
 *   2  u8  status      sk_err (ERANGE: offset below log start; ENOTFOUND; ECORRUPT; EIO)
 *   3  u8  reserved 0
 *   4  u32 req_id
 *   8  u64 next_offset
 *   16 u64 high_watermark
 *   24 u64 log_start
 *   32 u64 committed_offset   UINT64_MAX when the group never committed
 *   40 u32 count              records (kind 1) or partitions (kind 2)
 *   44 u32 body_len
 *   48 body: JSON text. kind 1: the "messages" array ("[{...},...]");
 *      kind 2: the "partitions" array. The http worker wraps it into the response.
 */
#ifndef SK_IPC_READ_MSG_H
#define SK_IPC_READ_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "common/sk_error.h"
#include "common/sk_limits.h"

#define SK_READ_VERSION 1
#define SK_READ_REQ_HEADER_BYTES 42
#define SK_READ_REPLY_HEADER_BYTES 48
#define SK_READ_NO_COMMIT UINT64_MAX

enum read_kind { READ_CONSUME = 1, READ_PARTITION_INFO = 2 };
enum read_encoding { READ_ENC_BASE64 = 0, READ_ENC_TEXT = 1 };
enum read_flags { READ_FLAG_OFFSET = 1 };

struct read_req {
	uint8_t kind;
	uint8_t encoding;
	uint8_t flags;
	uint32_t req_id;
	uint32_t topic_id;
	uint32_t partition;
	uint64_t offset;
	uint32_t limit;
	uint64_t max_bytes;
	uint16_t group_len;
	char group[SK_GROUP_NAME_BYTES_MAX + 1]; /* NUL-terminated copy */
};

struct read_reply {
	uint8_t kind;
	uint8_t status;
	uint32_t req_id;
	uint64_t next_offset;
	uint64_t high_watermark;
	uint64_t log_start;
	uint64_t committed_offset;
	uint32_t count;
	uint32_t body_len;
	const uint8_t *body; /* points into the decoded buffer */
};

/* Encode a request into out (cap >= SK_READ_REQ_HEADER_BYTES + group_len); *len_out. */
sk_err read_req_encode(uint8_t *out, size_t cap, const struct read_req *req, size_t *len_out);
sk_err read_req_decode(const uint8_t *buf, size_t len, struct read_req *out);
/* Encode the reply header (body follows it in the same message). */
void read_reply_encode_header(uint8_t out[SK_READ_REPLY_HEADER_BYTES], const struct read_reply *r);
sk_err read_reply_decode(const uint8_t *buf, size_t len, struct read_reply *out);

#endif
