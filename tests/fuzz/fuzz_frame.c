/* Fuzz target for frame_decode(), the gate for every byte read from a journal.
 *
 * Input: byte 0 selects the mode, the rest is the candidate frame.
 *   even: decoded as is (CRC, magic and length checks);
 *   odd:  magic, length (the input length rounded down to 8) and CRC are fixed up
 *         first, so the fuzzer reaches the checks behind the CRC (version, kind,
 *         lengths, padding, records, control bodies).
 * Whatever frame_decode() accepts must satisfy the rules it promises; the body
 * decoders are run on it too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "store/frame.h"
#include "store/record.h"

#define FUZZ_FRAME_BYTES_MAX 65536

static void check_accepted(const uint8_t *f, size_t len, const struct frame_header *h)
{
	if (h->length > len || h->length % 8 != 0 || h->length < SK_FRAME_HEADER_BYTES ||
	    frame_length_for_body(h->body_bytes) != h->length || h->durable_index >= h->index)
		abort();
	const uint8_t *body = f + SK_FRAME_HEADER_BYTES;
	struct frame_topic_created tc;
	struct frame_offset_committed oc;
	struct frame_log_start ls;
	struct frame_retention rt;
	size_t pos = 0;
	struct record_view rv;
	switch (h->kind) {
	case FRAME_RECORD_BATCH:
		for (uint32_t i = 0; i < h->record_count; i++)
			if (record_decode(body, h->body_bytes, &pos, &rv) != SK_OK)
				abort();
		if (pos != h->body_bytes)
			abort();
		break;
	case FRAME_TOPIC_CREATED:
		if (frame_topic_created_decode(body, h->body_bytes, &tc) != SK_OK)
			abort();
		break;
	case FRAME_OFFSET_COMMITTED:
		if (frame_offset_committed_decode(body, h->body_bytes, &oc) != SK_OK)
			abort();
		break;
	case FRAME_LOG_START:
		if (frame_log_start_decode(body, h->body_bytes, &ls) != SK_OK)
			abort();
		break;
	case FRAME_RETENTION:
		if (frame_retention_decode(body, h->body_bytes, &rt) != SK_OK)
			abort();
		break;
	case FRAME_MEMBERSHIP:
		break;
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t fixed[FUZZ_FRAME_BYTES_MAX];
	if (size < 1)
		return 0;
	const uint8_t *f = data + 1;
	size_t len = size - 1;
	if ((data[0] & 1) && len >= SK_FRAME_HEADER_BYTES && len <= sizeof(fixed)) {
		memcpy(fixed, f, len);
		uint32_t length = (uint32_t)(len & ~(size_t)7);
		put_u32(fixed, SK_FRAME_MAGIC);
		put_u32(fixed + 4, length);
		put_u32(fixed + 8, crc32c(crc32c(0, fixed, 8), fixed + 12, length - 12));
		f = fixed;
	}
	struct frame_header h;
	const char *why = NULL;
	if (frame_decode(f, len, &h, &why) == SK_OK)
		check_accepted(f, len, &h);
	else if (why == NULL)
		abort();
	return 0;
}

/* Seeds for the standalone driver: one valid frame of each kind, in mode 1. */
size_t sk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t sk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	uint8_t body[256];
	size_t body_len = 0, used = 0;
	struct frame_header h = {.term = 1, .index = 5, .topic_id = 1, .durable_index = 4};
	struct record_view rv = {.key = (const uint8_t *)"key", .key_len = 3,
				 .value = (const uint8_t *)"value!", .value_len = 6};
	struct frame_topic_created tc = {.partitions = 3, .name = (const uint8_t *)"t", .name_len = 1};
	struct frame_offset_committed oc = {.offset = 9, .group = (const uint8_t *)"grp", .group_len = 3};
	struct frame_log_start ls = {.log_start = 4};
	struct frame_retention rt = {.bytes = 100, .ms = 200};
	switch (i) {
	case 0:
	case 1:
		h.kind = FRAME_RECORD_BATCH;
		h.record_count = i + 1;
		for (unsigned r = 0; r <= i; r++) {
			record_encode(body + body_len, sizeof(body) - body_len, &rv, &used);
			body_len += used;
		}
		break;
	case 2:
		h.kind = FRAME_TOPIC_CREATED;
		frame_topic_created_encode(body, sizeof(body), &tc, &body_len);
		break;
	case 3:
		h.kind = FRAME_OFFSET_COMMITTED;
		frame_offset_committed_encode(body, sizeof(body), &oc, &body_len);
		break;
	case 4:
		h.kind = FRAME_LOG_START;
		frame_log_start_encode(body, sizeof(body), &ls, &body_len);
		break;
	case 5:
		h.kind = FRAME_RETENTION;
		frame_retention_encode(body, sizeof(body), &rt, &body_len);
		break;
	default:
		return 0;
	}
	h.body_bytes = (uint32_t)body_len;
	if (cap < 1 || frame_encode(buf + 1, cap - 1, &h, body, &used) != SK_OK)
		return 0;
	buf[0] = 1;
	return used + 1;
}
