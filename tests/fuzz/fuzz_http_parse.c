/* Fuzz target for the http worker's request parsing (workers/http/http_parse.c):
 * paths, query strings, NDJSON bodies, JSON string lines and the JSON bodies of
 * the control routes. The first byte picks the parser, the rest is its input.
 * Besides "no crash, no sanitizer report", it checks what must always hold:
 * matched path segments lie inside the input, a decoded JSON string is never
 * longer than its literal, and an accepted NDJSON body gathers into exactly
 * the record batch it claims (store/record.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/record.h"
#include "workers/http/http_parse.h"

#define FUZZ_RECORDS_MAX 64
#define FUZZ_BYTES_MAX 65536

static void check(int ok)
{
	if (!ok)
		abort();
}

static void fuzz_route(const char *s, size_t n)
{
	struct http_match m;
	enum http_route r = http_route_match(s, n, &m);
	check(r == m.route);
	if (m.topic)
		check(m.topic >= s && m.topic + m.topic_len <= s + n);
	if (m.group)
		check(m.group >= s && m.group + m.group_len <= s + n);
	if (m.partition)
		check(m.partition >= s && m.partition + m.partition_len <= s + n);
	(void)http_route_methods(r);
	(void)http_route_allow(r);
	if (m.topic)
		(void)http_name_valid(m.topic, m.topic_len);
}

static void fuzz_query(const char *s, size_t n)
{
	struct http_query q;
	char why[HTTP_WHY_BYTES];
	if (http_query_parse(s, n, &q, why, sizeof(why)) != SK_OK)
		return;
	check(q.key_len <= SK_KEY_BYTES_MAX && q.idem_len <= SK_IDEM_KEY_BYTES_MAX);
	check(!q.has_limit || (q.limit >= 1 && q.limit <= SK_HTTP_CONSUME_LIMIT_MAX));
}

static void fuzz_json_string(const uint8_t *d, size_t n)
{
	uint8_t *out = malloc(n ? n : 1);
	size_t len = 0;
	if (http_json_string_decode(d, n, out, &len))
		check(len <= n);
	free(out);
}

/* Split the input into up to 4 chains at positions taken from its first bytes. */
static void fuzz_ndjson(const uint8_t *d, size_t n)
{
	static struct iovec iov[4 * FUZZ_RECORDS_MAX + 16];
	static uint8_t hdr[FUZZ_RECORDS_MAX][SK_RECORD_HEADER_BYTES];
	static uint8_t scratch[FUZZ_BYTES_MAX], flat[FUZZ_BYTES_MAX * 2];
	if (n < 3)
		return;
	size_t cut1 = d[0] % (n - 2) + 2, cut2 = cut1 + (n > cut1 ? d[1] % (n - cut1 + 1) : 0);
	struct iovec seg[3] = {{(void *)(d + 2), cut1 - 2}, {(void *)(d + cut1), cut2 - cut1},
			       {(void *)(d + cut2), n - cut2}};
	struct http_ndjson nd = {.iov = iov, .iov_cap = sizeof(iov) / sizeof(iov[0]), .hdr = hdr,
				 .records_max = FUZZ_RECORDS_MAX, .scratch = scratch,
				 .scratch_cap = sizeof(scratch)};
	char why[HTTP_WHY_BYTES];
	if (http_ndjson_split(seg, 3, (const uint8_t *)"idem", 4, &nd, why, sizeof(why)) != SK_OK)
		return;
	size_t at = 0;
	for (uint32_t i = 0; i < nd.iov_count; i++) {
		check(at + iov[i].iov_len <= sizeof(flat));
		memcpy(flat + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	check(at == nd.body_bytes && nd.count >= 1 && nd.count <= FUZZ_RECORDS_MAX);
	check(record_batch_valid(flat, at, nd.count));
}

static void fuzz_bodies(uint8_t which, const char *s, size_t n)
{
	char why[HTTP_WHY_BYTES];
	struct http_create_topic ct;
	struct http_commit cm;
	struct http_delete_before db;
	struct http_retention rt;
	switch (which % 4) {
	case 0:
		if (http_parse_create_topic(s, n, 64, &ct, why, sizeof(why)) == SK_OK)
			check(http_name_valid(ct.name, strlen(ct.name)) &&
			      (!ct.has_partitions || (ct.partitions >= 1 && ct.partitions <= 64)));
		break;
	case 1:
		if (http_parse_commit(s, n, &cm, why, sizeof(why)) == SK_OK)
			check(http_name_valid(cm.group, strlen(cm.group)));
		break;
	case 2:
		(void)http_parse_delete_before(s, n, &db, why, sizeof(why));
		break;
	default:
		if (http_parse_retention(s, n, &rt, why, sizeof(why)) == SK_OK)
			check(rt.has_bytes || rt.has_ms);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > FUZZ_BYTES_MAX)
		return 0;
	const uint8_t *d = data + 1;
	size_t n = size - 1;
	switch (data[0] % 8) {
	case 0: fuzz_route((const char *)d, n); break;
	case 1: fuzz_query((const char *)d, n); break;
	case 2: fuzz_json_string(d, n); break;
	case 3: fuzz_ndjson(d, n); break;
	default: fuzz_bodies((uint8_t)(data[0] % 8 - 4), (const char *)d, n); break;
	}
	return 0;
}

size_t sk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

size_t sk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	static const char *const seeds[] = {
		"\x00/broker/consume/orders/g1/0",
		"\x00/broker/topics/orders/produce-ndjson/",
		"\x01partition=3&key=a%2Fb+c&idempotency_key=k1&ack=none&timeout_ms=250&encoding=b64",
		"\x01offset=42&limit=1000&max_bytes=65536&wait_ms=100&encoding=text",
		"\x02\"t\\u00e9\\ud83d\\ude00\\n\"  ",
		"\x03\x05\x07{\"a\":1}\r\n\"alpha\"\n\nline three\n\"\\u0041\"",
		"\x04{\"name\":\"events\",\"partitions\":8}",
		"\x05{\"topic\":\"events\",\"group\":\"g1\",\"partition\":0,\"offset\":10}",
		"\x06{\"topic\":\"events\",\"partition\":0,\"before_offset\":100}",
		"\x07{\"topic\":\"events\",\"ttl_ms\":60000,\"max_bytes\":1048576}",
	};
	if (i >= sizeof(seeds) / sizeof(seeds[0]))
		return 0;
	size_t n = strlen(seeds[i] + 1) + 1;
	if (n > cap)
		return 0;
	memcpy(buf, seeds[i], n);
	return n;
}
