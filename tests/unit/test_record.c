#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "common/sk_limits.h"
#include "store/record.h"

static size_t encode(uint8_t *buf, size_t cap, const char *key, const char *idem, const char *value)
{
	struct record_view rv = {
		.key = (const uint8_t *)key, .key_len = key ? (uint32_t)strlen(key) : 0,
		.idem_key = (const uint8_t *)idem, .idem_key_len = idem ? (uint32_t)strlen(idem) : 0,
		.value = (const uint8_t *)value, .value_len = value ? (uint32_t)strlen(value) : 0,
	};
	size_t used = 0;
	assert_int_equal(record_encode(buf, cap, &rv, &used), SK_OK);
	return used;
}

/* ---- must reject ---- */

static void test_record_decode_rejects_short_header(void **state)
{
	uint8_t buf[64];
	size_t n = encode(buf, sizeof(buf), "k", "", "v");
	struct record_view rv;
	for (size_t len = 0; len < SK_RECORD_HEADER_BYTES; len++) {
		size_t pos = 0;
		assert_int_equal(record_decode(buf, len, &pos, &rv), SK_ECORRUPT);
		assert_int_equal(pos, 0);
	}
	(void)n;
}

static void test_record_decode_rejects_every_truncation(void **state)
{
	uint8_t buf[64];
	size_t n = encode(buf, sizeof(buf), "key", "idem", "value");
	struct record_view rv;
	for (size_t len = 0; len < n; len++) {
		size_t pos = 0;
		assert_int_equal(record_decode(buf, len, &pos, &rv), SK_ECORRUPT);
	}
	size_t pos = 0;
	assert_int_equal(record_decode(buf, n, &pos, &rv), SK_OK);
	assert_int_equal(pos, n);
}

static void test_record_decode_rejects_len_below_four(void **state)
{
	uint8_t buf[16] = {0};
	struct record_view rv;
	for (uint32_t len = 0; len < 4; len++) {
		put_u32(buf, len);
		size_t pos = 0;
		assert_int_equal(record_decode(buf, sizeof(buf), &pos, &rv), SK_ECORRUPT);
	}
}

static void test_record_decode_rejects_key_lengths_over_limits(void **state)
{
	static uint8_t buf[4096];
	struct record_view rv;
	size_t pos = 0;
	/* key one over its limit, with enough bytes present */
	put_u32(buf, 4 + SK_KEY_BYTES_MAX + 1);
	put_u16(buf + 4, SK_KEY_BYTES_MAX + 1);
	put_u16(buf + 6, 0);
	assert_int_equal(record_decode(buf, sizeof(buf), &pos, &rv), SK_ECORRUPT);
	put_u32(buf, 4 + SK_IDEM_KEY_BYTES_MAX + 1);
	put_u16(buf + 4, 0);
	put_u16(buf + 6, SK_IDEM_KEY_BYTES_MAX + 1);
	assert_int_equal(record_decode(buf, sizeof(buf), &pos, &rv), SK_ECORRUPT);
	/* keys longer than the record says it is */
	put_u32(buf, 4 + 10);
	put_u16(buf + 4, 8);
	put_u16(buf + 6, 8);
	assert_int_equal(record_decode(buf, sizeof(buf), &pos, &rv), SK_ECORRUPT);
	assert_int_equal(pos, 0);
}

static void test_record_decode_rejects_pos_past_end(void **state)
{
	uint8_t buf[64];
	size_t n = encode(buf, sizeof(buf), "k", "", "v");
	struct record_view rv;
	size_t pos = n + 1;
	assert_int_equal(record_decode(buf, n, &pos, &rv), SK_ECORRUPT);
	pos = n;
	assert_int_equal(record_decode(buf, n, &pos, &rv), SK_ECORRUPT);
}

static void test_record_encode_rejects_over_limit_and_small_buffer(void **state)
{
	static uint8_t big[SK_KEY_BYTES_MAX + 1];
	static uint8_t buf[4096];
	size_t used = 77;
	struct record_view rv = {.key = big, .key_len = SK_KEY_BYTES_MAX + 1};
	assert_int_equal(record_encode(buf, sizeof(buf), &rv, &used), SK_EINVAL);
	rv = (struct record_view){.idem_key = big, .idem_key_len = SK_IDEM_KEY_BYTES_MAX + 1};
	assert_int_equal(record_encode(buf, sizeof(buf), &rv, &used), SK_EINVAL);
	rv = (struct record_view){.value = big, .value_len = 100};
	assert_int_equal(record_encode(buf, SK_RECORD_HEADER_BYTES + 99, &rv, &used), SK_EFULL);
	assert_int_equal(used, 77);
	assert_int_equal(record_encode(buf, SK_RECORD_HEADER_BYTES + 100, &rv, &used), SK_OK);
	assert_int_equal(used, SK_RECORD_HEADER_BYTES + 100);
}

static void test_record_batch_valid_rejects_wrong_count_and_trailing_bytes(void **state)
{
	uint8_t buf[256];
	size_t n = encode(buf, sizeof(buf), "a", "", "1");
	n += encode(buf + n, sizeof(buf) - n, "", "", "22");
	assert_true(record_batch_valid(buf, n, 2));
	assert_false(record_batch_valid(buf, n, 1));
	assert_false(record_batch_valid(buf, n, 3));
	assert_false(record_batch_valid(buf, n + 1, 2));
	assert_false(record_batch_valid(buf, n - 1, 2));
	assert_true(record_batch_valid(buf, 0, 0));
}

/* ---- round trips ---- */

static void test_record_round_trips_fields(void **state)
{
	uint8_t buf[256];
	size_t n = encode(buf, sizeof(buf), "the-key", "idem-1", "hello");
	assert_int_equal(n, record_encoded_bytes(7, 6, 5));
	assert_int_equal(get_u32(buf), 4 + 7 + 6 + 5);
	assert_int_equal(get_u16(buf + 4), 7);
	assert_int_equal(get_u16(buf + 6), 6);
	struct record_view rv;
	size_t pos = 0;
	assert_int_equal(record_decode(buf, n, &pos, &rv), SK_OK);
	assert_memory_equal(rv.key, "the-key", 7);
	assert_int_equal(rv.key_len, 7);
	assert_memory_equal(rv.idem_key, "idem-1", 6);
	assert_int_equal(rv.idem_key_len, 6);
	assert_memory_equal(rv.value, "hello", 5);
	assert_int_equal(rv.value_len, 5);
}

static void test_record_round_trips_empty_and_binary_values(void **state)
{
	uint8_t value[256];
	for (int i = 0; i < 256; i++)
		value[i] = (uint8_t)i;
	uint8_t buf[1024];
	struct record_view in = {.value = value, .value_len = sizeof(value)};
	size_t used, pos = 0;
	assert_int_equal(record_encode(buf, sizeof(buf), &in, &used), SK_OK);
	struct record_view empty = {0};
	size_t used2;
	assert_int_equal(record_encode(buf + used, sizeof(buf) - used, &empty, &used2), SK_OK);
	assert_int_equal(used2, SK_RECORD_HEADER_BYTES);
	struct record_view out;
	assert_int_equal(record_decode(buf, used + used2, &pos, &out), SK_OK);
	assert_int_equal(out.key_len, 0);
	assert_int_equal(out.value_len, 256);
	assert_memory_equal(out.value, value, 256);
	assert_int_equal(record_decode(buf, used + used2, &pos, &out), SK_OK);
	assert_int_equal(out.key_len + out.idem_key_len + out.value_len, 0);
	assert_int_equal(pos, used + used2);
}

static void test_record_header_matches_full_encoding(void **state)
{
	uint8_t a[64], b[SK_RECORD_HEADER_BYTES];
	encode(a, sizeof(a), "kk", "iii", "vvvv");
	record_encode_header(b, 2, 3, 4);
	assert_memory_equal(a, b, SK_RECORD_HEADER_BYTES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_decode_rejects_short_header),
		cmocka_unit_test(test_record_decode_rejects_every_truncation),
		cmocka_unit_test(test_record_decode_rejects_len_below_four),
		cmocka_unit_test(test_record_decode_rejects_key_lengths_over_limits),
		cmocka_unit_test(test_record_decode_rejects_pos_past_end),
		cmocka_unit_test(test_record_encode_rejects_over_limit_and_small_buffer),
		cmocka_unit_test(test_record_batch_valid_rejects_wrong_count_and_trailing_bytes),
		cmocka_unit_test(test_record_round_trips_fields),
		cmocka_unit_test(test_record_round_trips_empty_and_binary_values),
		cmocka_unit_test(test_record_header_matches_full_encoding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
