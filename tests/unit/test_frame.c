#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "store/frame.h"
#include "store/record.h"

static uint8_t frame_buf[4096];
static uint8_t copy_buf[4096];

/* A record batch with three records (one with a key, one with an idempotency key). */
static size_t build_batch(uint8_t *out, size_t cap, struct frame_header *h)
{
	uint8_t body[512];
	size_t pos = 0, used = 0;
	struct record_view recs[3] = {
		{.key = (const uint8_t *)"k1", .key_len = 2, .value = (const uint8_t *)"hello", .value_len = 5},
		{.idem_key = (const uint8_t *)"idem", .idem_key_len = 4, .value = (const uint8_t *)"x", .value_len = 1},
		{.value = (const uint8_t *)"", .value_len = 0},
	};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(record_encode(body + pos, sizeof(body) - pos, &recs[i], &used), SK_OK);
		pos += used;
	}
	memset(h, 0, sizeof(*h));
	h->kind = FRAME_RECORD_BATCH;
	h->term = 1;
	h->index = 42;
	h->topic_id = 7;
	h->partition = 3;
	h->base_offset = 1000;
	h->record_count = 3;
	h->body_bytes = (uint32_t)pos;
	h->timestamp_ms = 1763776800123ull;
	h->ingress_seq = 99;
	h->durable_index = 41;
	assert_int_equal(frame_encode(out, cap, h, body, &used), SK_OK);
	assert_int_equal(used, h->length);
	return used;
}

/* Re-seal the CRC after a test edits a field, so the check behind the CRC is reached. */
static void reseal(uint8_t *f, uint32_t length)
{
	uint32_t crc = crc32c(0, f, 8);
	crc = crc32c(crc, f + 12, length - 12);
	put_u32(f + 8, crc);
}

static void expect_corrupt(const uint8_t *f, size_t len)
{
	struct frame_header h;
	const char *why = NULL;
	assert_int_equal(frame_decode(f, len, &h, &why), SK_ECORRUPT);
	assert_non_null(why);
}

static void test_frame_rejects_every_single_byte_corruption(void **state)
{
	struct frame_header h;
	size_t n = build_batch(frame_buf, sizeof(frame_buf), &h);
	for (size_t i = 0; i < n; i++) {
		for (int x = 1; x < 256; x++) {
			memcpy(copy_buf, frame_buf, n);
			copy_buf[i] ^= (uint8_t)x;
			expect_corrupt(copy_buf, n);
		}
	}
}

static void test_frame_rejects_truncated_buffers(void **state)
{
	struct frame_header h;
	size_t n = build_batch(frame_buf, sizeof(frame_buf), &h);
	for (size_t len = 0; len < n; len++) {
		/* Copy into an exact-size heap-free window so ASan would see an over-read. */
		memcpy(copy_buf + sizeof(copy_buf) - len, frame_buf, len);
		expect_corrupt(copy_buf + sizeof(copy_buf) - len, len);
	}
}

static void test_frame_rejects_bad_lengths_even_with_good_crc(void **state)
{
	struct frame_header h;
	size_t n = build_batch(frame_buf, sizeof(frame_buf), &h);
	uint32_t bad_lengths[] = {0, 8, 72, 79, 81, (uint32_t)n - 8, (uint32_t)n + 1, (uint32_t)n + 8,
				  SK_FRAME_BYTES_MAX + 8, UINT32_MAX};
	for (size_t i = 0; i < sizeof(bad_lengths) / sizeof(bad_lengths[0]); i++) {
		memcpy(copy_buf, frame_buf, n);
		put_u32(copy_buf + 4, bad_lengths[i]);
		if (bad_lengths[i] >= 12 && bad_lengths[i] <= sizeof(copy_buf))
			reseal(copy_buf, bad_lengths[i]);
		expect_corrupt(copy_buf, sizeof(copy_buf));
	}
	/* body_bytes that disagree with length, in both directions. */
	uint32_t bad_body[] = {0, h.body_bytes - 8, h.body_bytes + 8, (uint32_t)n, UINT32_MAX};
	for (size_t i = 0; i < sizeof(bad_body) / sizeof(bad_body[0]); i++) {
		memcpy(copy_buf, frame_buf, n);
		put_u32(copy_buf + 52, bad_body[i]);
		reseal(copy_buf, (uint32_t)n);
		expect_corrupt(copy_buf, n);
	}
}

static void test_frame_rejects_bad_header_fields_even_with_good_crc(void **state)
{
	struct frame_header h;
	size_t n = build_batch(frame_buf, sizeof(frame_buf), &h);
	struct {
		size_t off;
		int width;
		uint64_t value;
	} edits[] = {
		{12, 2, 2},  /* version */
		{14, 2, 0},  /* kind */
		{14, 2, 7},  /* kind */
		{14, 2, 2},  /* kind: a record body is not a topic-created body */
		{16, 8, 0},  /* term */
		{24, 8, 0},  /* index */
		{72, 8, 42}, /* durable index == index */
		{32, 4, 0},  /* topic id */
		{48, 4, 0},  /* record count */
		{48, 4, 2},  /* record count below the records present */
		{48, 4, 4},  /* record count above the records present */
		{40, 8, UINT64_MAX - 1}, /* base offset + count overflows */
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		memcpy(copy_buf, frame_buf, n);
		if (edits[i].width == 2)
			put_u16(copy_buf + edits[i].off, (uint16_t)edits[i].value);
		else if (edits[i].width == 4)
			put_u32(copy_buf + edits[i].off, (uint32_t)edits[i].value);
		else
			put_u64(copy_buf + edits[i].off, edits[i].value);
		reseal(copy_buf, (uint32_t)n);
		expect_corrupt(copy_buf, n);
	}
	/* Non-zero padding. */
	if (h.body_bytes + SK_FRAME_HEADER_BYTES < n) {
		memcpy(copy_buf, frame_buf, n);
		copy_buf[n - 1] = 1;
		reseal(copy_buf, (uint32_t)n);
		expect_corrupt(copy_buf, n);
	}
}

static void test_frame_round_trips_a_record_batch(void **state)
{
	struct frame_header h, got;
	size_t n = build_batch(frame_buf, sizeof(frame_buf), &h);
	assert_int_equal(n % 8, 0);
	assert_int_equal(n, frame_length_for_body(h.body_bytes));
	memset(frame_buf + n, 0xee, 16); /* bytes after the frame are not its business */
	assert_int_equal(frame_decode(frame_buf, n + 16, &got, NULL), SK_OK);
	assert_int_equal(got.length, n);
	assert_int_equal(got.version, 1);
	assert_int_equal(got.kind, FRAME_RECORD_BATCH);
	assert_int_equal(got.term, 1);
	assert_int_equal(got.index, 42);
	assert_int_equal(got.topic_id, 7);
	assert_int_equal(got.partition, 3);
	assert_int_equal(got.base_offset, 1000);
	assert_int_equal(got.record_count, 3);
	assert_int_equal(got.body_bytes, h.body_bytes);
	assert_int_equal(got.timestamp_ms, 1763776800123ull);
	assert_int_equal(got.ingress_seq, 99);
	assert_int_equal(got.durable_index, 41);
	assert_int_equal(get_u32(frame_buf), 0x31464b53);
	assert_memory_equal(frame_buf, "SKF1", 4);
	uint32_t length = 0;
	assert_true(frame_header_plausible(frame_buf, n, &length));
	assert_int_equal(length, n);
	size_t pos = 0;
	struct record_view rv;
	assert_int_equal(record_decode(frame_buf + SK_FRAME_HEADER_BYTES, got.body_bytes, &pos, &rv), SK_OK);
	assert_int_equal(rv.key_len, 2);
	assert_memory_equal(rv.value, "hello", 5);
}

static void finish_control(uint16_t kind, uint32_t topic, uint32_t partition, const uint8_t *body,
			   size_t body_len, size_t *n_out)
{
	struct frame_header h = {.kind = kind, .term = 3, .index = 9, .topic_id = topic,
				 .partition = partition, .body_bytes = (uint32_t)body_len};
	assert_int_equal(frame_encode(frame_buf, sizeof(frame_buf), &h, body, n_out), SK_OK);
}

static void test_frame_round_trips_control_entries(void **state)
{
	uint8_t body[512];
	size_t used, n;
	struct frame_header h;

	struct frame_topic_created tc = {.partitions = 4, .name = (const uint8_t *)"orders", .name_len = 6}, tc2;
	assert_int_equal(frame_topic_created_encode(body, sizeof(body), &tc, &used), SK_OK);
	finish_control(FRAME_TOPIC_CREATED, 5, 0, body, used, &n);
	assert_int_equal(frame_decode(frame_buf, n, &h, NULL), SK_OK);
	assert_int_equal(frame_topic_created_decode(frame_buf + 80, h.body_bytes, &tc2), SK_OK);
	assert_int_equal(tc2.partitions, 4);
	assert_int_equal(tc2.name_len, 6);
	assert_memory_equal(tc2.name, "orders", 6);

	struct frame_offset_committed oc = {.offset = 77, .group = (const uint8_t *)"g", .group_len = 1}, oc2;
	assert_int_equal(frame_offset_committed_encode(body, sizeof(body), &oc, &used), SK_OK);
	finish_control(FRAME_OFFSET_COMMITTED, 5, 2, body, used, &n);
	assert_int_equal(frame_decode(frame_buf, n, &h, NULL), SK_OK);
	assert_int_equal(frame_offset_committed_decode(frame_buf + 80, h.body_bytes, &oc2), SK_OK);
	assert_int_equal(oc2.offset, 77);
	assert_int_equal(h.partition, 2);

	struct frame_log_start ls = {.log_start = 123}, ls2;
	assert_int_equal(frame_log_start_encode(body, sizeof(body), &ls, &used), SK_OK);
	finish_control(FRAME_LOG_START, 5, 1, body, used, &n);
	assert_int_equal(frame_decode(frame_buf, n, &h, NULL), SK_OK);
	assert_int_equal(frame_log_start_decode(frame_buf + 80, h.body_bytes, &ls2), SK_OK);
	assert_int_equal(ls2.log_start, 123);

	struct frame_retention rt = {.bytes = 1 << 20, .ms = 5000}, rt2;
	assert_int_equal(frame_retention_encode(body, sizeof(body), &rt, &used), SK_OK);
	finish_control(FRAME_RETENTION, 5, 0, body, used, &n);
	assert_int_equal(frame_decode(frame_buf, n, &h, NULL), SK_OK);
	assert_int_equal(frame_retention_decode(frame_buf + 80, h.body_bytes, &rt2), SK_OK);
	assert_int_equal(rt2.bytes, 1 << 20);
	assert_int_equal(rt2.ms, 5000);
}

static void test_frame_rejects_malformed_control_bodies(void **state)
{
	uint8_t body[512];
	struct frame_topic_created tc;
	struct frame_offset_committed oc;
	struct frame_log_start ls;
	struct frame_retention rt;
	size_t used;

	/* Encoders refuse bad input. */
	tc = (struct frame_topic_created){.partitions = 0, .name = (const uint8_t *)"a", .name_len = 1};
	assert_int_equal(frame_topic_created_encode(body, sizeof(body), &tc, &used), SK_EINVAL);
	tc = (struct frame_topic_created){.partitions = SK_PARTITIONS_MAX_MAX + 1, .name = (const uint8_t *)"a", .name_len = 1};
	assert_int_equal(frame_topic_created_encode(body, sizeof(body), &tc, &used), SK_EINVAL);
	tc = (struct frame_topic_created){.partitions = 1, .name = (const uint8_t *)"", .name_len = 0};
	assert_int_equal(frame_topic_created_encode(body, sizeof(body), &tc, &used), SK_EINVAL);
	tc = (struct frame_topic_created){.partitions = 1, .name = (const uint8_t *)"a\0b", .name_len = 3};
	assert_int_equal(frame_topic_created_encode(body, sizeof(body), &tc, &used), SK_EINVAL);
	tc = (struct frame_topic_created){.partitions = 1, .name = (const uint8_t *)"abc", .name_len = 3};
	assert_int_equal(frame_topic_created_encode(body, 5, &tc, &used), SK_EFULL);
	oc = (struct frame_offset_committed){.offset = 1, .group = (const uint8_t *)"", .group_len = 0};
	assert_int_equal(frame_offset_committed_encode(body, sizeof(body), &oc, &used), SK_EINVAL);
	assert_int_equal(frame_log_start_encode(body, 7, &ls, &used), SK_EFULL);
	assert_int_equal(frame_retention_encode(body, 15, &rt, &used), SK_EFULL);

	/* Decoders check every length against the bytes present. */
	tc = (struct frame_topic_created){.partitions = 2, .name = (const uint8_t *)"abc", .name_len = 3};
	assert_int_equal(frame_topic_created_encode(body, sizeof(body), &tc, &used), SK_OK);
	for (size_t len = 0; len < used; len++)
		assert_int_equal(frame_topic_created_decode(body, len, &tc), SK_ECORRUPT);
	assert_int_equal(frame_topic_created_decode(body, used + 1, &tc), SK_ECORRUPT);
	put_u16(body + 6, 1); /* reserved */
	assert_int_equal(frame_topic_created_decode(body, used, &tc), SK_ECORRUPT);
	oc = (struct frame_offset_committed){.offset = 1, .group = (const uint8_t *)"grp", .group_len = 3};
	assert_int_equal(frame_offset_committed_encode(body, sizeof(body), &oc, &used), SK_OK);
	for (size_t len = 0; len < used; len++)
		assert_int_equal(frame_offset_committed_decode(body, len, &oc), SK_ECORRUPT);
	put_u16(body + 8, 200); /* group longer than the limit and than the body */
	assert_int_equal(frame_offset_committed_decode(body, used, &oc), SK_ECORRUPT);
	for (size_t len = 0; len < 20; len++) {
		if (len != SK_FRAME_LOG_START_BYTES)
			assert_int_equal(frame_log_start_decode(body, len, &ls), SK_ECORRUPT);
		if (len != SK_FRAME_RETENTION_BYTES)
			assert_int_equal(frame_retention_decode(body, len, &rt), SK_ECORRUPT);
	}

	/* A control frame carrying records or a base offset is invalid. */
	struct frame_header h = {.kind = FRAME_LOG_START, .term = 1, .index = 2, .topic_id = 1,
				 .body_bytes = 8};
	size_t n;
	put_u64(body, 5);
	assert_int_equal(frame_encode(frame_buf, sizeof(frame_buf), &h, body, &n), SK_OK);
	put_u32(frame_buf + 48, 1);
	reseal(frame_buf, (uint32_t)n);
	expect_corrupt(frame_buf, n);
}

static void test_frame_encode_refuses_small_buffers(void **state)
{
	struct frame_header h = {.kind = FRAME_MEMBERSHIP, .term = 1, .index = 1, .body_bytes = 3};
	size_t used;
	assert_int_equal(frame_encode(frame_buf, 87, &h, "abc", &used), SK_EFULL);
	assert_int_equal(frame_encode(frame_buf, 88, &h, "abc", &used), SK_OK);
	assert_int_equal(used, 88);
	h.body_bytes = SK_FRAME_BODY_BYTES_MAX + 1;
	assert_int_equal(frame_encode(frame_buf, sizeof(frame_buf), &h, "abc", &used), SK_EINVAL);
}

static void test_frame_header_plausible_rejects_garbage(void **state)
{
	uint32_t length;
	memset(copy_buf, 0, sizeof(copy_buf));
	assert_false(frame_header_plausible(copy_buf, sizeof(copy_buf), &length));
	struct frame_header h;
	size_t n = build_batch(frame_buf, sizeof(frame_buf), &h);
	assert_false(frame_header_plausible(frame_buf, 79, &length));
	memcpy(copy_buf, frame_buf, n);
	put_u32(copy_buf + 4, 81);
	assert_false(frame_header_plausible(copy_buf, n, &length));
	assert_string_equal(frame_kind_name(FRAME_RECORD_BATCH), "record_batch");
	assert_string_equal(frame_kind_name(99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_rejects_every_single_byte_corruption),
		cmocka_unit_test(test_frame_rejects_truncated_buffers),
		cmocka_unit_test(test_frame_rejects_bad_lengths_even_with_good_crc),
		cmocka_unit_test(test_frame_rejects_bad_header_fields_even_with_good_crc),
		cmocka_unit_test(test_frame_rejects_malformed_control_bodies),
		cmocka_unit_test(test_frame_encode_refuses_small_buffers),
		cmocka_unit_test(test_frame_header_plausible_rejects_garbage),
		cmocka_unit_test(test_frame_round_trips_a_record_batch),
		cmocka_unit_test(test_frame_round_trips_control_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
