/* workers/replay/replay_format.c: base64 and JSON text of consume replies.
 * Checked against independent decoders (libsodium's base64, jansson's JSON
 * parser) so a formatter bug cannot hide behind a matching test bug. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "ipc/read_msg.h"
#include "workers/replay/replay_format.h"

/* Decode standard padded base64 with libsodium; returns the byte count. */
static size_t b64_decode(const char *b64, size_t b64_len, uint8_t *out, size_t cap)
{
	size_t n = 0;
	const char *end = NULL;
	assert_int_equal(sodium_base642bin(out, cap, b64, b64_len, NULL, &n, &end,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	assert_ptr_equal(end, b64 + b64_len);
	return n;
}

/* Parse one message object written by fmt_message. */
static json_t *parse(const struct fmt_buf *b)
{
	json_error_t jerr;
	json_t *j = json_loadb((const char *)b->data, b->len, JSON_ALLOW_NUL, &jerr);
	if (j == NULL)
		fail_msg("not JSON: %s in %.*s", jerr.text, (int)b->len, (const char *)b->data);
	return j;
}

static void test_b64_matches_rfc4648_vectors(void **state)
{
	const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	for (size_t i = 0; i < 7; i++) {
		uint8_t out[16];
		size_t n = fmt_b64_encode(out, (const uint8_t *)in[i], strlen(in[i]));
		assert_int_equal(n, strlen(want[i]));
		assert_int_equal(n, fmt_b64_len(strlen(in[i])));
		assert_memory_equal(out, want[i], n);
	}
}

static void test_b64_agrees_with_sodium_at_every_length(void **state)
{
	uint8_t in[600], out[800 + 1];
	char ref[800 + 1];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 167 + 13);
	for (size_t len = 0; len <= sizeof(in); len++) {
		size_t n = fmt_b64_encode(out, in, len);
		sodium_bin2base64(ref, sizeof(ref), in, len, sodium_base64_VARIANT_ORIGINAL);
		assert_int_equal(n, strlen(ref));
		assert_memory_equal(out, ref, n);
	}
}

static void test_b64_round_trips_all_256_byte_values(void **state)
{
	uint8_t in[256], enc[fmt_b64_len(256)], dec[256];
	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	size_t n = fmt_b64_encode(enc, in, sizeof(in));
	assert_int_equal(b64_decode((const char *)enc, n, dec, sizeof(dec)), 256);
	assert_memory_equal(dec, in, 256);
}

static void test_utf8_rejects_malformed_sequences(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
	} bad[] = {
		{"\x80", 1},                 /* stray continuation */
		{"\xbf", 1},                 /* stray continuation */
		{"\xc0\x80", 2},             /* overlong NUL */
		{"\xc1\xbf", 2},             /* overlong */
		{"\xe0\x80\x80", 3},         /* overlong */
		{"\xe0\x9f\xbf", 3},         /* overlong */
		{"\xed\xa0\x80", 3},         /* surrogate U+D800 */
		{"\xed\xbf\xbf", 3},         /* surrogate U+DFFF */
		{"\xf0\x80\x80\x80", 4},     /* overlong */
		{"\xf0\x8f\xbf\xbf", 4},     /* overlong */
		{"\xf4\x90\x80\x80", 4},     /* U+110000 */
		{"\xf5\x80\x80\x80", 4},     /* lead byte past F4 */
		{"\xff", 1},
		{"\xfe", 1},
		{"\xc2", 1},                 /* truncated */
		{"\xe2\x82", 2},             /* truncated */
		{"\xf0\x9f\x98", 3},         /* truncated */
		{"\xc2\x41", 2},             /* continuation missing */
		{"\xe2\x28\xa1", 3},         /* bad second byte */
		{"\xe2\x82\x28", 3},         /* bad third byte */
		{"ok\xf0\x9f\x98\x80\x80", 7}, /* one continuation too many */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const uint8_t *p = (const uint8_t *)bad[i].bytes;
		assert_false(fmt_utf8_valid(p, bad[i].len));
		uint8_t out[64];
		size_t used;
		assert_int_equal(fmt_json_escape(out, sizeof(out), p, bad[i].len, &used), SK_EINVAL);
	}
}

static void test_utf8_accepts_every_boundary_code_point(void **state)
{
	static const char *good[] = {
		"\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
		"\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const uint8_t *p = (const uint8_t *)good[i];
		size_t n = strlen(good[i]);
		assert_true(fmt_utf8_valid(p, n));
		uint8_t out[64];
		size_t used = 0;
		assert_int_equal(fmt_json_escape(out, sizeof(out), p, n, &used), SK_OK);
		assert_int_equal(used, n); /* nothing to escape: copied as is */
		assert_memory_equal(out, p, n);
	}
}

/* Every single byte value: ASCII escapes as JSON requires and parses back to the
 * same byte; a lone byte >= 0x80 is not UTF-8 and is refused. */
static void test_text_escapes_each_of_256_byte_values(void **state)
{
	for (int c = 0; c < 256; c++) {
		uint8_t in = (uint8_t)c, out[8];
		size_t used = 0;
		sk_err err = fmt_json_escape(out, sizeof(out), &in, 1, &used);
		if (c >= 0x80) {
			assert_int_equal(err, SK_EINVAL);
			continue;
		}
		assert_int_equal(err, SK_OK);
		if (c < 0x20 || c == '"' || c == '\\')
			assert_true(used == 2 || used == 6);
		else
			assert_int_equal(used, 1);
		char doc[16];
		doc[0] = '"';
		memcpy(doc + 1, out, used);
		doc[used + 1] = '"';
		json_error_t jerr;
		json_t *j = json_loadb(doc, used + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		assert_non_null(j);
		assert_int_equal(json_string_length(j), 1);
		assert_int_equal((uint8_t)json_string_value(j)[0], c);
		json_decref(j);
	}
}

/* The 8-byte fast path must agree with the byte-wise path wherever the special
 * byte sits in the word. */
static void test_text_escape_finds_special_bytes_at_every_position(void **state)
{
	const uint8_t specials[] = {0x00, 0x1f, '"', '\\', '\n', 0x7f, 0xc3};
	for (size_t s = 0; s < sizeof(specials); s++) {
		for (size_t len = 1; len <= 40; len++) {
			for (size_t at = 0; at < len; at++) {
				uint8_t in[41], out[41 * 6];
				memset(in, 'a', len);
				in[at] = specials[s];
				size_t n = len;
				if (specials[s] == 0xc3) { /* make it a valid two-byte sequence */
					if (at + 1 >= len)
						continue;
					in[at + 1] = 0xa9;
				}
				size_t used = 0;
				assert_int_equal(fmt_json_escape(out, sizeof(out), in, n, &used), SK_OK);
				char doc[41 * 6 + 2];
				doc[0] = '"';
				memcpy(doc + 1, out, used);
				doc[used + 1] = '"';
				json_error_t jerr;
				json_t *j = json_loadb(doc, used + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
				assert_non_null(j);
				assert_int_equal(json_string_length(j), n);
				assert_memory_equal(json_string_value(j), in, n);
				json_decref(j);
			}
		}
	}
}

static void test_text_escape_stops_at_every_short_capacity(void **state)
{
	const uint8_t in[] = "plain text, then \"quotes\", \\, \x01\x02 and \xc3\xa9\xe2\x82\xac.";
	size_t n = sizeof(in) - 1;
	uint8_t out[sizeof(in) * 6];
	size_t need = 0;
	assert_int_equal(fmt_json_escape(out, sizeof(out), in, n, &need), SK_OK);
	for (size_t cap = 0; cap < need; cap++) {
		size_t used = 12345;
		assert_int_equal(fmt_json_escape(out, cap, in, n, &used), SK_EFULL);
		assert_int_equal(used, 12345);
	}
	size_t used = 0;
	assert_int_equal(fmt_json_escape(out, need, in, n, &used), SK_OK);
	assert_int_equal(used, need);
}

static void test_message_in_b64_round_trips_all_256_byte_values(void **state)
{
	uint8_t value[256], key[3] = {0x00, 0xff, 'k'}, buf[2048], dec[256];
	for (int i = 0; i < 256; i++)
		value[i] = (uint8_t)i;
	struct record_view rec = {.key = key, .key_len = 3, .value = value, .value_len = 256};
	struct fmt_buf b = {.data = buf, .cap = sizeof(buf)};
	assert_int_equal(fmt_message(&b, true, 4611686018427387904ull, 7, 1700000000123ull, &rec,
				     READ_ENC_BASE64),
			 SK_OK);
	json_t *j = parse(&b);
	assert_true(json_integer_value(json_object_get(j, "offset")) == 4611686018427387904ll);
	assert_int_equal(json_integer_value(json_object_get(j, "partition")), 7);
	assert_true(json_integer_value(json_object_get(j, "timestamp_ms")) == 1700000000123ll);
	assert_null(json_object_get(j, "value"));
	const char *v = json_string_value(json_object_get(j, "value_b64"));
	assert_non_null(v);
	assert_int_equal(b64_decode(v, strlen(v), dec, sizeof(dec)), 256);
	assert_memory_equal(dec, value, 256);
	const char *k = json_string_value(json_object_get(j, "key_b64"));
	assert_int_equal(b64_decode(k, strlen(k), dec, sizeof(dec)), 3);
	assert_memory_equal(dec, key, 3);
	json_decref(j);
}

static void test_message_without_key_has_null_key(void **state)
{
	uint8_t buf[256];
	struct record_view rec = {.value = (const uint8_t *)"v", .value_len = 1};
	struct fmt_buf b = {.data = buf, .cap = sizeof(buf)};
	assert_int_equal(fmt_message(&b, true, 0, 0, 0, &rec, READ_ENC_TEXT), SK_OK);
	const char want[] = "{\"offset\":0,\"partition\":0,\"timestamp_ms\":0,\"key\":null,\"value\":\"v\"}";
	assert_int_equal(b.len, sizeof(want) - 1);
	assert_memory_equal(buf, want, b.len);
	b.len = 0;
	assert_int_equal(fmt_message(&b, true, 0, 0, 0, &rec, READ_ENC_BASE64), SK_OK);
	const char want64[] =
		"{\"offset\":0,\"partition\":0,\"timestamp_ms\":0,\"key_b64\":null,\"value_b64\":\"dg==\"}";
	assert_int_equal(b.len, sizeof(want64) - 1);
	assert_memory_equal(buf, want64, b.len);
}

static void test_message_text_falls_back_to_b64_for_invalid_utf8(void **state)
{
	uint8_t value[] = {'a', 0xff, 'b', 0x00}, buf[512], dec[8];
	struct record_view rec = {
		.key = (const uint8_t *)"user-\xc3\xa9", .key_len = 7, .value = value, .value_len = 4};
	struct fmt_buf b = {.data = buf, .cap = sizeof(buf)};
	assert_int_equal(fmt_message(&b, true, 5, 1, 9, &rec, READ_ENC_TEXT), SK_OK);
	json_t *j = parse(&b);
	/* The key is valid UTF-8 and stays text; the value is not and is base64. */
	assert_string_equal(json_string_value(json_object_get(j, "key")), "user-\xc3\xa9");
	assert_null(json_object_get(j, "value"));
	const char *v = json_string_value(json_object_get(j, "value_b64"));
	assert_non_null(v);
	assert_int_equal(b64_decode(v, strlen(v), dec, sizeof(dec)), 4);
	assert_memory_equal(dec, value, 4);
	json_decref(j);
}

static void test_message_text_round_trips_all_ascii_and_multibyte(void **state)
{
	uint8_t value[128 + 9], buf[2048];
	for (int i = 0; i < 128; i++)
		value[i] = (uint8_t)i;
	memcpy(value + 128, "\xe2\x82\xac\xf0\x9f\x98\x80\xc3", 8); /* euro, emoji, ... */
	value[136] = 0xa9;                                          /* ... e-acute */
	struct record_view rec = {.value = value, .value_len = sizeof(value)};
	struct fmt_buf b = {.data = buf, .cap = sizeof(buf)};
	assert_int_equal(fmt_message(&b, true, 1, 2, 3, &rec, READ_ENC_TEXT), SK_OK);
	json_t *j = parse(&b);
	json_t *v = json_object_get(j, "value");
	assert_non_null(v);
	assert_int_equal(json_string_length(v), sizeof(value));
	assert_memory_equal(json_string_value(v), value, sizeof(value));
	json_decref(j);
}

/* At every capacity short of what a message needs, fmt_message refuses and leaves
 * the buffer exactly as it was; at the exact size it fits. For both encodings and
 * for the fallback path. */
static void check_message_capacity(const struct record_view *rec, uint8_t encoding)
{
	uint8_t full[4096], buf[4096];
	struct fmt_buf b = {.data = full, .cap = sizeof(full)};
	assert_int_equal(fmt_put(&b, "[", 1), SK_OK);
	assert_int_equal(fmt_message(&b, false, 42, 3, 99, rec, encoding), SK_OK);
	size_t need = b.len;
	for (size_t cap = 1; cap < need; cap++) {
		memset(buf, 0xee, sizeof(buf));
		struct fmt_buf s = {.data = buf, .len = 1, .cap = cap};
		buf[0] = '[';
		assert_int_equal(fmt_message(&s, false, 42, 3, 99, rec, encoding), SK_EFULL);
		assert_int_equal(s.len, 1);
	}
	struct fmt_buf s = {.data = buf, .len = 1, .cap = need};
	assert_int_equal(fmt_message(&s, false, 42, 3, 99, rec, encoding), SK_OK);
	assert_int_equal(s.len, need);
	assert_memory_equal(buf + 1, full + 1, need - 1);
}

static void test_message_refuses_at_every_short_capacity(void **state)
{
	uint8_t bin[300];
	for (int i = 0; i < 300; i++)
		bin[i] = (uint8_t)(i * 7);
	struct record_view text = {.key = (const uint8_t *)"k\n", .key_len = 2,
				   .value = (const uint8_t *)"a \"quoted\"\tline\x01", .value_len = 17};
	struct record_view binary = {.key = bin, .key_len = 5, .value = bin, .value_len = 300};
	struct record_view nokey = {.value = (const uint8_t *)"", .value_len = 0};
	check_message_capacity(&text, READ_ENC_TEXT);
	check_message_capacity(&text, READ_ENC_BASE64);
	check_message_capacity(&binary, READ_ENC_TEXT); /* falls back to b64 */
	check_message_capacity(&binary, READ_ENC_BASE64);
	check_message_capacity(&nokey, READ_ENC_TEXT);
	check_message_capacity(&nokey, READ_ENC_BASE64);
}

/* The digit cache must give exactly the bytes of the uncached formatter, through
 * digit-count changes (9 -> 10, 99 -> 100, ...), jumps, and frame timestamp changes. */
static void test_cached_digits_match_fresh_formatting(void **state)
{
	static uint8_t fresh_buf[1 << 16], cached_buf[1 << 16];
	struct record_view rec = {.key = (const uint8_t *)"k", .key_len = 1,
				  .value = (const uint8_t *)"v", .value_len = 1};
	uint64_t starts[] = {0, 7, 95, 997, 9999999995ull, 99999999999999999ull,
			     18446744073709551605ull};
	for (size_t k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
		struct fmt_buf fresh = {.data = fresh_buf, .cap = sizeof(fresh_buf)};
		struct fmt_buf cached = {.data = cached_buf, .cap = sizeof(cached_buf)};
		struct fmt_msg_cache cache = {0};
		uint64_t offset = starts[k];
		for (int i = 0; i < 200 && offset < UINT64_MAX; i++) {
			uint64_t ts = 1700000000000ull + (uint64_t)(i / 3);
			uint32_t partition = (uint32_t)(i / 50);
			assert_int_equal(fmt_message(&fresh, i == 0, offset, partition, ts, &rec,
						     READ_ENC_TEXT),
					 SK_OK);
			assert_int_equal(fmt_message_cached(&cached, &cache, i == 0, offset, partition, ts,
							    &rec, READ_ENC_TEXT),
					 SK_OK);
			/* Mostly +1, with a jump now and then (back, and forward). */
			offset = i % 37 == 36 ? offset - 5 : i % 41 == 40 ? offset + 1000 : offset + 1;
		}
		assert_int_equal(cached.len, fresh.len);
		assert_memory_equal(cached_buf, fresh_buf, fresh.len);
	}
}

static void test_partition_entry_is_json_and_respects_capacity(void **state)
{
	uint8_t buf[256];
	struct fmt_buf b = {.data = buf, .cap = sizeof(buf)};
	assert_int_equal(fmt_put(&b, "[", 1), SK_OK);
	assert_int_equal(fmt_partition(&b, true, 0, 5, 10, 4096), SK_OK);
	assert_int_equal(fmt_partition(&b, false, 1, 0, 0, 0), SK_OK);
	assert_int_equal(fmt_put(&b, "]", 1), SK_OK);
	json_error_t jerr;
	json_t *j = json_loadb((const char *)buf, b.len, 0, &jerr);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), 2);
	json_t *p0 = json_array_get(j, 0);
	assert_int_equal(json_integer_value(json_object_get(p0, "partition")), 0);
	assert_int_equal(json_integer_value(json_object_get(p0, "log_start")), 5);
	assert_int_equal(json_integer_value(json_object_get(p0, "high_watermark")), 10);
	assert_int_equal(json_integer_value(json_object_get(p0, "bytes")), 4096);
	json_decref(j);
	size_t one = 0;
	{
		struct fmt_buf s = {.data = buf, .cap = sizeof(buf)};
		assert_int_equal(fmt_partition(&s, false, 1, 2, 3, 4), SK_OK);
		one = s.len;
	}
	for (size_t cap = 0; cap < one; cap++) {
		struct fmt_buf s = {.data = buf, .cap = cap};
		assert_int_equal(fmt_partition(&s, false, 1, 2, 3, 4), SK_EFULL);
		assert_int_equal(s.len, 0);
	}
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_rejects_malformed_sequences),
		cmocka_unit_test(test_text_escape_stops_at_every_short_capacity),
		cmocka_unit_test(test_message_refuses_at_every_short_capacity),
		cmocka_unit_test(test_b64_matches_rfc4648_vectors),
		cmocka_unit_test(test_b64_agrees_with_sodium_at_every_length),
		cmocka_unit_test(test_b64_round_trips_all_256_byte_values),
		cmocka_unit_test(test_utf8_accepts_every_boundary_code_point),
		cmocka_unit_test(test_text_escapes_each_of_256_byte_values),
		cmocka_unit_test(test_text_escape_finds_special_bytes_at_every_position),
		cmocka_unit_test(test_message_in_b64_round_trips_all_256_byte_values),
		cmocka_unit_test(test_message_without_key_has_null_key),
		cmocka_unit_test(test_message_text_falls_back_to_b64_for_invalid_utf8),
		cmocka_unit_test(test_message_text_round_trips_all_ascii_and_multibyte),
		cmocka_unit_test(test_cached_digits_match_fresh_formatting),
		cmocka_unit_test(test_partition_entry_is_json_and_respects_capacity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
