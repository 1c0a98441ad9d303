/* ipc/read_msg.c: the http <-> replay read protocol. Rejections first, then the
 * round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "ipc/read_msg.h"

static struct read_req sample_req(void)
{
	struct read_req r = {
		.kind = READ_CONSUME,
		.encoding = READ_ENC_TEXT,
		.flags = READ_FLAG_OFFSET,
		.req_id = 0xdeadbeef,
		.topic_id = 7,
		.partition = 3,
		.offset = 0x0102030405060708ull,
		.limit = 1000,
		.max_bytes = 1 << 20,
	};
	strcpy(r.group, "billing.v2");
	r.group_len = (uint16_t)strlen(r.group);
	return r;
}

static size_t encode_sample(uint8_t *buf, size_t cap)
{
	struct read_req r = sample_req();
	size_t len = 0;
	assert_int_equal(read_req_encode(buf, cap, &r, &len), SK_OK);
	assert_int_equal(len, SK_READ_REQ_HEADER_BYTES + r.group_len);
	return len;
}

static void test_read_req_decode_rejects_every_truncation(void **state)
{
	uint8_t buf[256];
	size_t len = encode_sample(buf, sizeof(buf));
	struct read_req out;
	for (size_t n = 0; n < len; n++)
		assert_int_not_equal(read_req_decode(buf, n, &out), SK_OK);
	/* One byte too many is as wrong as one too few. */
	buf[len] = 'x';
	assert_int_equal(read_req_decode(buf, len + 1, &out), SK_ECORRUPT);
}

static void test_read_req_decode_rejects_unknown_version(void **state)
{
	uint8_t buf[256];
	size_t len = encode_sample(buf, sizeof(buf));
	struct read_req out;
	buf[0] = 2;
	assert_int_equal(read_req_decode(buf, len, &out), SK_EVERSION);
	buf[0] = 0;
	assert_int_equal(read_req_decode(buf, len, &out), SK_EVERSION);
}

/* Flip one header field at a time to a bad value; each must be rejected. */
static void test_read_req_decode_rejects_bad_fields(void **state)
{
	uint8_t good[256], buf[256];
	size_t len = encode_sample(good, sizeof(good));
	struct read_req out;
	struct {
		size_t at;
		int width;
		uint64_t value;
	} cases[] = {
		{1, 1, 0},                                  /* kind */
		{1, 1, 3},                                  /* kind */
		{2, 1, 2},                                  /* encoding */
		{3, 1, 2},                                  /* unknown flag */
		{3, 1, 0x81},                               /* unknown flag beside a known one */
		{24, 4, 0},                                 /* limit 0 */
		{24, 4, SK_HTTP_CONSUME_LIMIT_MAX + 1},     /* limit over max */
		{28, 4, 1},                                 /* reserved */
		{32, 8, SK_HTTP_CONSUME_BYTES_MAX + 1ull},  /* max_bytes over max */
		{40, 2, 11},                                /* group_len disagrees with the bytes */
		{40, 2, 9},                                 /* group_len disagrees with the bytes */
		{40, 2, SK_GROUP_NAME_BYTES_MAX + 1},       /* group_len over max */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(buf, good, len);
		if (cases[i].width == 1)
			buf[cases[i].at] = (uint8_t)cases[i].value;
		else if (cases[i].width == 2)
			put_u16(buf + cases[i].at, (uint16_t)cases[i].value);
		else if (cases[i].width == 4)
			put_u32(buf + cases[i].at, (uint32_t)cases[i].value);
		else
			put_u64(buf + cases[i].at, cases[i].value);
		assert_int_equal(read_req_decode(buf, len, &out), SK_ECORRUPT);
	}
}

static void test_read_req_decode_rejects_nul_in_group(void **state)
{
	uint8_t buf[256];
	size_t len = encode_sample(buf, sizeof(buf));
	struct read_req out;
	buf[SK_READ_REQ_HEADER_BYTES + 2] = 0;
	assert_int_equal(read_req_decode(buf, len, &out), SK_ECORRUPT);
}

static void test_read_req_decode_rejects_bad_partition_count(void **state)
{
	struct read_req r = {.kind = READ_PARTITION_INFO, .partition = 4, .topic_id = 1};
	uint8_t buf[64];
	size_t len;
	struct read_req out;
	assert_int_equal(read_req_encode(buf, sizeof(buf), &r, &len), SK_OK);
	put_u32(buf + 12, 0);
	assert_int_equal(read_req_decode(buf, len, &out), SK_ECORRUPT);
	put_u32(buf + 12, SK_PARTITIONS_MAX_MAX + 1);
	assert_int_equal(read_req_decode(buf, len, &out), SK_ECORRUPT);
}

static void test_read_req_encode_rejects_what_decode_rejects(void **state)
{
	uint8_t buf[256];
	size_t len;
	struct read_req r = sample_req();
	r.limit = 0;
	assert_int_equal(read_req_encode(buf, sizeof(buf), &r, &len), SK_EINVAL);
	r = sample_req();
	r.group_len = SK_GROUP_NAME_BYTES_MAX + 1;
	assert_int_equal(read_req_encode(buf, sizeof(buf), &r, &len), SK_EINVAL);
	r = sample_req();
	r.group[1] = 0;
	assert_int_equal(read_req_encode(buf, sizeof(buf), &r, &len), SK_EINVAL);
	r = sample_req();
	r.encoding = 9;
	assert_int_equal(read_req_encode(buf, sizeof(buf), &r, &len), SK_EINVAL);
	r = sample_req();
	assert_int_equal(read_req_encode(buf, SK_READ_REQ_HEADER_BYTES + r.group_len - 1, &r, &len),
			 SK_EFULL);
}

static void test_read_req_round_trips(void **state)
{
	uint8_t buf[256];
	size_t len = encode_sample(buf, sizeof(buf));
	struct read_req want = sample_req(), got;
	memset(&got, 0x55, sizeof(got));
	assert_int_equal(read_req_decode(buf, len, &got), SK_OK);
	assert_int_equal(got.kind, want.kind);
	assert_int_equal(got.encoding, want.encoding);
	assert_int_equal(got.flags, want.flags);
	assert_int_equal(got.req_id, want.req_id);
	assert_int_equal(got.topic_id, want.topic_id);
	assert_int_equal(got.partition, want.partition);
	assert_true(got.offset == want.offset);
	assert_int_equal(got.limit, want.limit);
	assert_true(got.max_bytes == want.max_bytes);
	assert_int_equal(got.group_len, want.group_len);
	assert_string_equal(got.group, want.group);
}

static void test_read_req_round_trips_longest_and_empty_group(void **state)
{
	uint8_t buf[SK_READ_REQ_HEADER_BYTES + SK_GROUP_NAME_BYTES_MAX];
	struct read_req r = sample_req(), got;
	memset(r.group, 'g', SK_GROUP_NAME_BYTES_MAX);
	r.group[SK_GROUP_NAME_BYTES_MAX] = 0;
	r.group_len = SK_GROUP_NAME_BYTES_MAX;
	size_t len;
	assert_int_equal(read_req_encode(buf, sizeof(buf), &r, &len), SK_OK);
	assert_int_equal(read_req_decode(buf, len, &got), SK_OK);
	assert_int_equal(strlen(got.group), SK_GROUP_NAME_BYTES_MAX);
	r.group_len = 0;
	r.flags = 0;
	assert_int_equal(read_req_encode(buf, sizeof(buf), &r, &len), SK_OK);
	assert_int_equal(len, SK_READ_REQ_HEADER_BYTES);
	assert_int_equal(read_req_decode(buf, len, &got), SK_OK);
	assert_string_equal(got.group, "");
	assert_int_equal(got.flags, 0);
}

static const uint8_t sample_body[] = "[{\"offset\":1}]";

static size_t encode_sample_reply(uint8_t *buf)
{
	struct read_reply r = {
		.kind = READ_CONSUME,
		.status = SK_OK,
		.req_id = 42,
		.next_offset = 2,
		.high_watermark = 9,
		.log_start = 1,
		.committed_offset = SK_READ_NO_COMMIT,
		.count = 1,
		.body_len = sizeof(sample_body) - 1,
	};
	read_reply_encode_header(buf, &r);
	memcpy(buf + SK_READ_REPLY_HEADER_BYTES, sample_body, r.body_len);
	return SK_READ_REPLY_HEADER_BYTES + r.body_len;
}

static void test_read_reply_decode_rejects_every_truncation(void **state)
{
	uint8_t buf[128];
	size_t len = encode_sample_reply(buf);
	struct read_reply out;
	for (size_t n = 0; n < len; n++)
		assert_int_not_equal(read_reply_decode(buf, n, &out), SK_OK);
	buf[len] = ' ';
	assert_int_equal(read_reply_decode(buf, len + 1, &out), SK_ECORRUPT);
}

static void test_read_reply_decode_rejects_bad_fields(void **state)
{
	uint8_t good[128], buf[128];
	size_t len = encode_sample_reply(good);
	struct read_reply out;
	memcpy(buf, good, len);
	buf[0] = 9;
	assert_int_equal(read_reply_decode(buf, len, &out), SK_EVERSION);
	memcpy(buf, good, len);
	buf[1] = 3; /* kind */
	assert_int_equal(read_reply_decode(buf, len, &out), SK_ECORRUPT);
	memcpy(buf, good, len);
	buf[2] = SK_ERR_COUNT; /* status */
	assert_int_equal(read_reply_decode(buf, len, &out), SK_ECORRUPT);
	memcpy(buf, good, len);
	buf[3] = 1; /* reserved */
	assert_int_equal(read_reply_decode(buf, len, &out), SK_ECORRUPT);
	memcpy(buf, good, len);
	put_u32(buf + 40, SK_HTTP_CONSUME_LIMIT_MAX + 1); /* count */
	assert_int_equal(read_reply_decode(buf, len, &out), SK_ECORRUPT);
	memcpy(buf, good, len);
	buf[1] = READ_PARTITION_INFO;
	put_u32(buf + 40, SK_PARTITIONS_MAX_MAX + 1);
	assert_int_equal(read_reply_decode(buf, len, &out), SK_ECORRUPT);
	memcpy(buf, good, len);
	put_u32(buf + 44, 0xffffffffu); /* body_len far past the message */
	assert_int_equal(read_reply_decode(buf, len, &out), SK_ECORRUPT);
}

static void test_read_reply_round_trips(void **state)
{
	uint8_t buf[128];
	size_t len = encode_sample_reply(buf);
	struct read_reply out;
	assert_int_equal(read_reply_decode(buf, len, &out), SK_OK);
	assert_int_equal(out.kind, READ_CONSUME);
	assert_int_equal(out.status, SK_OK);
	assert_int_equal(out.req_id, 42);
	assert_true(out.next_offset == 2);
	assert_true(out.high_watermark == 9);
	assert_true(out.log_start == 1);
	assert_true(out.committed_offset == SK_READ_NO_COMMIT);
	assert_int_equal(out.count, 1);
	assert_int_equal(out.body_len, sizeof(sample_body) - 1);
	assert_memory_equal(out.body, sample_body, out.body_len);
	assert_ptr_equal(out.body, buf + SK_READ_REPLY_HEADER_BYTES);
}

static void test_read_reply_round_trips_error_without_body(void **state)
{
	uint8_t buf[SK_READ_REPLY_HEADER_BYTES];
	struct read_reply r = {.kind = READ_CONSUME, .status = SK_ERANGE, .req_id = 5, .log_start = 77};
	read_reply_encode_header(buf, &r);
	struct read_reply out;
	assert_int_equal(read_reply_decode(buf, sizeof(buf), &out), SK_OK);
	assert_int_equal(out.status, SK_ERANGE);
	assert_true(out.log_start == 77);
	assert_int_equal(out.body_len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_req_decode_rejects_every_truncation),
		cmocka_unit_test(test_read_req_decode_rejects_unknown_version),
		cmocka_unit_test(test_read_req_decode_rejects_bad_fields),
		cmocka_unit_test(test_read_req_decode_rejects_nul_in_group),
		cmocka_unit_test(test_read_req_decode_rejects_bad_partition_count),
		cmocka_unit_test(test_read_req_encode_rejects_what_decode_rejects),
		cmocka_unit_test(test_read_req_round_trips),
		cmocka_unit_test(test_read_req_round_trips_longest_and_empty_group),
		cmocka_unit_test(test_read_reply_decode_rejects_every_truncation),
		cmocka_unit_test(test_read_reply_decode_rejects_bad_fields),
		cmocka_unit_test(test_read_reply_round_trips),
		cmocka_unit_test(test_read_reply_round_trips_error_without_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
