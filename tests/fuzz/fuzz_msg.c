/* Fuzz target for msg_req_decode() and msg_completion_decode(), the gates for
 * every ring payload.
 *
 * Input: byte 0 selects the decoder (even: ingress request, odd: completion),
 * the rest is the payload. Whatever a decoder accepts must re-encode to exactly
 * the same bytes (so nothing in an accepted message is ignored), and a request's
 * name and body must lie inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "ipc/msg.h"

static void check_request(const uint8_t *p, size_t len)
{
	struct msg_req m;
	if (msg_req_decode(p, len, &m) != SK_OK)
		return;
	if ((size_t)SK_MSG_REQ_HEADER_BYTES + m.name_len + m.body_len != len)
		abort();
	if (m.name_len && (m.name < p || m.name + m.name_len > p + len))
		abort();
	if (m.body_len && (m.body < p || m.body + m.body_len > p + len))
		abort();
	uint8_t hdr[SK_MSG_REQ_HEADER_BYTES];
	msg_req_encode_header(hdr, &m);
	if (memcmp(hdr, p, sizeof(hdr)) != 0)
		abort();
}

static void check_completion(const uint8_t *p, size_t len)
{
	struct msg_completion c;
	if (msg_completion_decode(p, len, &c) != SK_OK)
		return;
	uint8_t again[SK_MSG_COMPLETION_BYTES];
	msg_completion_encode(again, &c);
	if (len != sizeof(again) || memcmp(again, p, len) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		check_completion(data + 1, size - 1);
	else
		check_request(data + 1, size - 1);
	return 0;
}

/* Seeds: one valid request of each kind and one completion. */
size_t sk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	if (cap < 1 + SK_MSG_REQ_HEADER_BYTES + 32)
		return 0;
	if (i == 5) {
		struct msg_completion c = {.kind = MSG_REQ_PRODUCE, .req_seq = 9, .offset = 3};
		buf[0] = 1;
		msg_completion_encode(buf + 1, &c);
		return 1 + SK_MSG_COMPLETION_BYTES;
	}
	if (i > 5)
		return 0;
	struct msg_req m = {.kind = (uint8_t)(i + 1), .ack = 1, .topic_id = 1, .now_ms = 1};
	if (m.kind == MSG_REQ_PRODUCE) {
		m.record_count = 1;
		m.body_len = 12;
	} else if (m.kind == MSG_REQ_CREATE_TOPIC || m.kind == MSG_REQ_COMMIT) {
		m.topic_id = m.kind == MSG_REQ_CREATE_TOPIC ? 0 : 1;
		m.name_len = 5;
	}
	buf[0] = 0;
	msg_req_encode_header(buf + 1, &m);
	memset(buf + 1 + SK_MSG_REQ_HEADER_BYTES, 'a', m.name_len);
	uint8_t *body = buf + 1 + SK_MSG_REQ_HEADER_BYTES + m.name_len;
	memset(body, 0, m.body_len);
	if (m.body_len)
		put_u32(body, 4); /* one empty record: len 4, no key, no idempotency key */
	return 1 + SK_MSG_REQ_HEADER_BYTES + m.name_len + m.body_len;
}
