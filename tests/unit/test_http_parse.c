/* Unit tests of the http worker's pure parsing (workers/http/http_parse.c):
 * routes, names, query strings, numbers, JSON string literals, NDJSON
 * splitting and the control bodies. The "must reject" cases come first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "common/config.h"
#include "ipc/read_msg.h"
#include "store/record.h"
#include "workers/http/http_parse.h"

static enum http_route route_of(const char *path)
{
	struct http_match m;
	return http_route_match(path, strlen(path), &m);
}

/* ---- routes ---- */

static void test_route_rejects_unknown_and_malformed_paths(void **state)
{
	const char *bad[] = {"", "/", "health", "//health", "/health/x", "/broker", "/broker/",
			     "/broker/topics/a/b/c", "/broker/topics//produce", "/broker/consume/t/g",
			     "/broker/consume/t/g/0/x", "/Broker/topics",
			     "/broker/topics/t/produce-ndjsonx", "/broker/commit/x", "/metrics//"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(route_of(bad[i]), HTTP_R_NONE);
}

static void test_route_matches_every_api_path(void **state)
{
	struct http_match m;
	assert_int_equal(route_of("/health"), HTTP_R_HEALTH);
	assert_int_equal(route_of("/ready"), HTTP_R_READY);
	assert_int_equal(route_of("/metrics"), HTTP_R_METRICS);
	assert_int_equal(route_of("/status"), HTTP_R_STATUS);
	assert_int_equal(route_of("/broker/topics"), HTTP_R_TOPICS);
	assert_int_equal(route_of("/broker/topics/"), HTTP_R_TOPICS);
	assert_int_equal(route_of("/broker/commit"), HTTP_R_COMMIT);
	assert_int_equal(route_of("/broker/delete-before"), HTTP_R_DELETE_BEFORE);
	assert_int_equal(route_of("/broker/retention"), HTTP_R_RETENTION);
	const char *p = "/broker/topics/orders/produce";
	assert_int_equal(http_route_match(p, strlen(p), &m), HTTP_R_PRODUCE);
	assert_int_equal(m.topic_len, 6);
	assert_memory_equal(m.topic, "orders", 6);
	p = "/broker/topics/o.r-d_s/produce-ndjson/";
	assert_int_equal(http_route_match(p, strlen(p), &m), HTTP_R_PRODUCE_NDJSON);
	assert_memory_equal(m.topic, "o.r-d_s", 7);
	p = "/broker/topics/orders";
	assert_int_equal(http_route_match(p, strlen(p), &m), HTTP_R_TOPIC_INFO);
	p = "/broker/consume/orders/g1/12";
	assert_int_equal(http_route_match(p, strlen(p), &m), HTTP_R_CONSUME);
	assert_memory_equal(m.group, "g1", 2);
	assert_int_equal(m.partition_len, 2);
	assert_memory_equal(m.partition, "12", 2);
}

static void test_route_methods_and_allow_agree(void **state)
{
	assert_int_equal(http_route_methods(HTTP_R_PRODUCE), HTTP_M_POST);
	assert_string_equal(http_route_allow(HTTP_R_PRODUCE), "POST");
	assert_true(http_route_methods(HTTP_R_TOPICS) & HTTP_M_GET);
	assert_true(http_route_methods(HTTP_R_TOPICS) & HTTP_M_POST);
	assert_string_equal(http_route_allow(HTTP_R_CONSUME), "GET, HEAD");
	assert_int_equal(http_route_methods(HTTP_R_NONE), 0);
	assert_string_equal(http_route_label(HTTP_R_PRODUCE_NDJSON), "produce_ndjson");
	assert_string_equal(http_route_label((enum http_route)99), "none");
}

/* ---- names and numbers ---- */

static void test_name_rejects_bad_characters_dots_and_lengths(void **state)
{
	char long_name[SK_TOPIC_NAME_BYTES_MAX + 2];
	memset(long_name, 'a', sizeof(long_name));
	assert_false(http_name_valid("", 0));
	assert_false(http_name_valid(".", 1));
	assert_false(http_name_valid("..", 2));
	assert_false(http_name_valid("a/b", 3));
	assert_false(http_name_valid("a b", 3));
	assert_false(http_name_valid("a%41", 4));
	assert_false(http_name_valid("caf\xc3\xa9", 5));
	assert_false(http_name_valid("a\0b", 3));
	assert_false(http_name_valid(long_name, SK_TOPIC_NAME_BYTES_MAX + 1));
	assert_true(http_name_valid(long_name, SK_TOPIC_NAME_BYTES_MAX));
	assert_true(http_name_valid("...", 3));
	assert_true(http_name_valid("Orders-2026_v1.x", 16));
}

static void test_u64_rejects_signs_spaces_and_overflow(void **state)
{
	uint64_t v;
	assert_false(http_parse_u64("", 0, UINT64_MAX, &v));
	assert_false(http_parse_u64("-1", 2, UINT64_MAX, &v));
	assert_false(http_parse_u64("+1", 2, UINT64_MAX, &v));
	assert_false(http_parse_u64(" 1", 2, UINT64_MAX, &v));
	assert_false(http_parse_u64("1x", 2, UINT64_MAX, &v));
	assert_false(http_parse_u64("18446744073709551616", 20, UINT64_MAX, &v));
	assert_false(http_parse_u64("11", 2, 10, &v));
	assert_true(http_parse_u64("18446744073709551615", 20, UINT64_MAX, &v));
	assert_true(v == UINT64_MAX);
	assert_true(http_parse_u64("007", 3, 10, &v));
	assert_int_equal(v, 7);
}

static void test_fnv1a_matches_the_reference_values(void **state)
{
	assert_int_equal(http_fnv1a32((const uint8_t *)"", 0), 0x811c9dc5u);
	assert_int_equal(http_fnv1a32((const uint8_t *)"a", 1), 0xe40c292cu);
	assert_int_equal(http_fnv1a32((const uint8_t *)"foobar", 6), 0xbf9cf968u);
}

/* ---- query strings ---- */

static sk_err qparse(const char *qs, struct http_query *q, char *why)
{
	return http_query_parse(qs, strlen(qs), q, why, HTTP_WHY_BYTES);
}

static void test_query_rejects_bad_values_and_repeats(void **state)
{
	struct http_query q;
	char why[HTTP_WHY_BYTES];
	const char *bad[] = {"partition=", "partition=-1", "partition=4294967296", "partition=1x",
			     "partition=1&partition=2", "ack=maybe", "ack=", "timeout_ms=0",
			     "timeout_ms=600001", "limit=0", "limit=100001", "max_bytes=0",
			     "encoding=hex", "wait_ms=60001", "offset=18446744073709551615",
			     "key=%", "key=%4", "key=%zz", "idempotency_key=%g0", "partition=%31%"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = 0;
		assert_int_equal(qparse(bad[i], &q, why), SK_EINVAL);
		assert_true(strlen(why) > 0);
	}
	char big[SK_KEY_BYTES_MAX + 16];
	snprintf(big, sizeof(big), "key=");
	memset(big + 4, 'k', SK_KEY_BYTES_MAX + 1);
	big[4 + SK_KEY_BYTES_MAX + 1] = 0;
	assert_int_equal(qparse(big, &q, why), SK_EINVAL);
	assert_non_null(strstr(why, "longer"));
}

static void test_query_decodes_known_parameters_and_ignores_others(void **state)
{
	struct http_query q;
	char why[HTTP_WHY_BYTES];
	assert_int_equal(qparse("partition=3&key=a%2Fb+c&idempotency_key=id-%00-1&ack=none&"
				"timeout_ms=250&timing=1&&x&offset=42&limit=1000&max_bytes=65536&"
				"encoding=b64&wait_ms=0",
				&q, why),
			 SK_OK);
	assert_true(q.has_partition);
	assert_int_equal(q.partition, 3);
	assert_true(q.has_key);
	assert_int_equal(q.key_len, 5);
	assert_memory_equal(q.key, "a/b c", 5);
	assert_int_equal(q.idem_len, 6);
	assert_memory_equal(q.idem, "id-\0-1", 6);
	assert_int_equal(q.ack, SK_ACK_NONE);
	assert_int_equal(q.timeout_ms, 250);
	assert_int_equal(q.offset, 42);
	assert_int_equal(q.limit, 1000);
	assert_int_equal(q.max_bytes, 65536);
	assert_int_equal(q.encoding, READ_ENC_BASE64);
	assert_true(q.has_wait);
	assert_int_equal(q.wait_ms, 0);
	assert_int_equal(qparse("", &q, why), SK_OK);
	assert_false(q.has_partition || q.has_key || q.has_idem || q.has_ack || q.has_offset);
	assert_int_equal(http_query_parse(NULL, 0, &q, why, sizeof(why)), SK_OK);
	assert_int_equal(qparse("key=&encoding=text&ack=local", &q, why), SK_OK);
	assert_false(q.has_key);
	assert_int_equal(q.encoding, READ_ENC_TEXT);
	assert_int_equal(q.ack, SK_ACK_LOCAL);
}

/* ---- JSON string literals ---- */

static bool jdec(const char *in, char *out, size_t *out_len)
{
	return http_json_string_decode((const uint8_t *)in, strlen(in), (uint8_t *)out, out_len);
}

static void test_json_string_rejects_everything_but_one_string(void **state)
{
	char out[64];
	size_t n;
	const char *bad[] = {"", "\"", "abc", "\"abc", "\"a\"b", "\"a\" x", "\"\\x\"", "\"\\u12\"",
			     "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\tb\"", "\"\\\"",
			     "1", "{\"a\":1}", "\"a\"\"b\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(jdec(bad[i], out, &n));
}

static void test_json_string_decodes_escapes_and_surrogates(void **state)
{
	char out[64];
	size_t n;
	assert_true(jdec("\"alpha\"", out, &n));
	assert_int_equal(n, 5);
	assert_memory_equal(out, "alpha", 5);
	assert_true(jdec("\"\" \t", out, &n));
	assert_int_equal(n, 0);
	assert_true(jdec("\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\"", out, &n));
	assert_int_equal(n, 9);
	assert_memory_equal(out, "q\"\\/\b\f\n\r\t", 9);
	assert_true(jdec("\"\\u00e9\\u20ac\\ud83d\\ude00\\u0000\"", out, &n));
	assert_int_equal(n, 2 + 3 + 4 + 1);
	assert_memory_equal(out, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x00", 10);
	/* In place: out may alias in. */
	char buf[] = "\"x\\ny\"";
	assert_true(http_json_string_decode((uint8_t *)buf, strlen(buf), (uint8_t *)buf, &n));
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "x\ny", 3);
}

/* ---- NDJSON ---- */

#define ND_RECORDS 16

struct nd_fixture {
	struct iovec iov[64];
	uint8_t hdr[ND_RECORDS][SK_RECORD_HEADER_BYTES];
	uint8_t scratch[256];
	struct http_ndjson nd;
	uint8_t flat[1024];
	size_t flat_len;
};

static void nd_setup(struct nd_fixture *f, uint32_t records_max)
{
	memset(f, 0, sizeof(*f));
	f->nd = (struct http_ndjson){.iov = f->iov,
				     .iov_cap = 64,
				     .hdr = f->hdr,
				     .records_max = records_max,
				     .scratch = f->scratch,
				     .scratch_cap = sizeof(f->scratch)};
}

/* Gather the produced iovecs into one buffer, as the ring would. */
static void nd_flatten(struct nd_fixture *f)
{
	f->flat_len = 0;
	for (uint32_t i = 0; i < f->nd.iov_count; i++) {
		assert_true(f->flat_len + f->iov[i].iov_len <= sizeof(f->flat));
		memcpy(f->flat + f->flat_len, f->iov[i].iov_base, f->iov[i].iov_len);
		f->flat_len += f->iov[i].iov_len;
	}
	assert_int_equal(f->flat_len, f->nd.body_bytes);
	assert_true(record_batch_valid(f->flat, f->flat_len, f->nd.count));
}

static sk_err nd_split_parts(struct nd_fixture *f, const char *const *parts, int n,
			     const char *idem)
{
	struct iovec seg[8];
	for (int i = 0; i < n; i++)
		seg[i] = (struct iovec){(void *)parts[i], strlen(parts[i])};
	char why[HTTP_WHY_BYTES];
	return http_ndjson_split(seg, n, (const uint8_t *)idem, (uint16_t)(idem ? strlen(idem) : 0),
				 &f->nd, why, sizeof(why));
}

static void nd_expect(struct nd_fixture *f, uint32_t i, const char *value, const char *idem)
{
	size_t pos = 0;
	struct record_view rv;
	for (uint32_t k = 0; k <= i; k++)
		assert_int_equal(record_decode(f->flat, f->flat_len, &pos, &rv), SK_OK);
	assert_int_equal(rv.key_len, 0);
	assert_int_equal(rv.idem_key_len, idem ? strlen(idem) : 0);
	if (idem)
		assert_memory_equal(rv.idem_key, idem, strlen(idem));
	assert_int_equal(rv.value_len, strlen(value));
	assert_memory_equal(rv.value, value, strlen(value));
}

static void test_ndjson_rejects_empty_bodies_and_too_many_records(void **state)
{
	struct nd_fixture f;
	nd_setup(&f, 2);
	const char *empty[] = {""};
	assert_int_equal(nd_split_parts(&f, empty, 1, NULL), SK_EINVAL);
	const char *blank[] = {"\n\r\n\n"};
	assert_int_equal(nd_split_parts(&f, blank, 1, NULL), SK_EINVAL);
	const char *three[] = {"a\nb\nc\n"};
	assert_int_equal(nd_split_parts(&f, three, 1, NULL), SK_EINVAL);
	nd_setup(&f, ND_RECORDS);
	f.nd.iov_cap = 3;
	assert_int_equal(nd_split_parts(&f, three, 1, NULL), SK_EFULL);
}

static void test_ndjson_splits_lines_across_chains(void **state)
{
	struct nd_fixture f;
	nd_setup(&f, ND_RECORDS);
	const char *parts[] = {"{\"a\":1}\r\nsec", "ond\n\n", "\r", "\nthird\r", "\nlast"};
	assert_int_equal(nd_split_parts(&f, parts, 5, "batch-1"), SK_OK);
	assert_int_equal(f.nd.count, 4);
	nd_flatten(&f);
	nd_expect(&f, 0, "{\"a\":1}", "batch-1");
	nd_expect(&f, 1, "second", NULL);
	nd_expect(&f, 2, "third", NULL);
	nd_expect(&f, 3, "last", NULL);
}

static void test_ndjson_unwraps_json_string_lines(void **state)
{
	struct nd_fixture f;
	nd_setup(&f, ND_RECORDS);
	const char *parts[] = {"\"al", "pha\"\n\"t\\tab\"\r\n\"not closed\n\"\"\n"};
	assert_int_equal(nd_split_parts(&f, parts, 2, NULL), SK_OK);
	assert_int_equal(f.nd.count, 4);
	nd_flatten(&f);
	nd_expect(&f, 0, "alpha", NULL);
	nd_expect(&f, 1, "t\tab", NULL);
	nd_expect(&f, 2, "\"not closed", NULL);
	nd_expect(&f, 3, "", NULL);
}

/* ---- control bodies ---- */

static void test_control_bodies_reject_bad_json_types_and_ranges(void **state)
{
	char why[HTTP_WHY_BYTES];
	struct http_create_topic ct;
	struct http_commit cm;
	struct http_delete_before db;
	struct http_retention rt;
	const char *bad_create[] = {"", "nope", "[]", "{\"name\":1}", "{\"partitions\":2}",
				    "{\"name\":\"a b\"}", "{\"name\":\"..\"}",
				    "{\"name\":\"t\",\"partitions\":0}",
				    "{\"name\":\"t\",\"partitions\":65}",
				    "{\"name\":\"t\",\"partitions\":\"2\"}",
				    "{\"name\":\"t\",\"partitions\":2.0}",
				    "{\"name\":\"t\",\"name\":\"u\"}", "{\"name\":\"t\"", "{\"name\":\"t\"}x"};
	for (size_t i = 0; i < sizeof(bad_create) / sizeof(bad_create[0]); i++)
		assert_int_equal(http_parse_create_topic(bad_create[i], strlen(bad_create[i]), 64, &ct,
							 why, sizeof(why)),
				 SK_EINVAL);
	const char *bad_commit[] = {"{\"topic\":\"t\",\"group\":\"g\",\"partition\":0}",
				    "{\"topic\":\"t\",\"group\":\"g\",\"partition\":-1,\"offset\":1}",
				    "{\"topic\":\"t\",\"group\":\"g/x\",\"partition\":0,\"offset\":1}",
				    "{\"topic\":\"t\",\"group\":\"g\",\"partition\":0,\"offset\":-5}",
				    "{\"topic\":\"t\",\"group\":\"g\",\"partition\":0,\"offset\":null}"};
	for (size_t i = 0; i < sizeof(bad_commit) / sizeof(bad_commit[0]); i++)
		assert_int_equal(http_parse_commit(bad_commit[i], strlen(bad_commit[i]), &cm, why,
						   sizeof(why)),
				 SK_EINVAL);
	const char *bad_db = "{\"topic\":\"t\",\"partition\":0}";
	assert_int_equal(http_parse_delete_before(bad_db, strlen(bad_db), &db, why, sizeof(why)),
			 SK_EINVAL);
	const char *bad_ret[] = {"{\"topic\":\"t\"}", "{\"topic\":\"*\",\"ttl_ms\":1}",
				 "{\"topic\":\"t\",\"partition\":0,\"ttl_ms\":1}",
				 "{\"topic\":\"t\",\"max_bytes\":-1}"};
	for (size_t i = 0; i < sizeof(bad_ret) / sizeof(bad_ret[0]); i++)
		assert_int_equal(http_parse_retention(bad_ret[i], strlen(bad_ret[i]), &rt, why,
						      sizeof(why)),
				 SK_EINVAL);
}

static void test_control_bodies_parse_the_seed_api_fields(void **state)
{
	char why[HTTP_WHY_BYTES];
	struct http_create_topic ct;
	const char *b = "{\"name\":\"events\",\"partitions\":8,\"extra\":true}";
	assert_int_equal(http_parse_create_topic(b, strlen(b), 64, &ct, why, sizeof(why)), SK_OK);
	assert_string_equal(ct.name, "events");
	assert_true(ct.has_partitions);
	assert_int_equal(ct.partitions, 8);
	b = "{\"name\":\"events\"}";
	assert_int_equal(http_parse_create_topic(b, strlen(b), 64, &ct, why, sizeof(why)), SK_OK);
	assert_false(ct.has_partitions);
	struct http_commit cm;
	b = "{\"topic\":\"events\",\"group\":\"g1\",\"partition\":3,\"offset\":124}";
	assert_int_equal(http_parse_commit(b, strlen(b), &cm, why, sizeof(why)), SK_OK);
	assert_string_equal(cm.group, "g1");
	assert_int_equal(cm.partition, 3);
	assert_int_equal(cm.offset, 124);
	struct http_delete_before db;
	b = "{\"topic\":\"events\",\"partition\":0,\"before_offset\":100000}";
	assert_int_equal(http_parse_delete_before(b, strlen(b), &db, why, sizeof(why)), SK_OK);
	assert_int_equal(db.before_offset, 100000);
	struct http_retention rt;
	b = "{\"topic\":\"events\",\"ttl_ms\":60000}";
	assert_int_equal(http_parse_retention(b, strlen(b), &rt, why, sizeof(why)), SK_OK);
	assert_true(rt.has_ms && !rt.has_bytes);
	assert_int_equal(rt.ms, 60000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_rejects_unknown_and_malformed_paths),
		cmocka_unit_test(test_route_matches_every_api_path),
		cmocka_unit_test(test_route_methods_and_allow_agree),
		cmocka_unit_test(test_name_rejects_bad_characters_dots_and_lengths),
		cmocka_unit_test(test_u64_rejects_signs_spaces_and_overflow),
		cmocka_unit_test(test_fnv1a_matches_the_reference_values),
		cmocka_unit_test(test_query_rejects_bad_values_and_repeats),
		cmocka_unit_test(test_query_decodes_known_parameters_and_ignores_others),
		cmocka_unit_test(test_json_string_rejects_everything_but_one_string),
		cmocka_unit_test(test_json_string_decodes_escapes_and_surrogates),
		cmocka_unit_test(test_ndjson_rejects_empty_bodies_and_too_many_records),
		cmocka_unit_test(test_ndjson_splits_lines_across_chains),
		cmocka_unit_test(test_ndjson_unwraps_json_string_lines),
		cmocka_unit_test(test_control_bodies_reject_bad_json_types_and_ranges),
		cmocka_unit_test(test_control_bodies_parse_the_seed_api_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
