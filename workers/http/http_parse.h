/* Pure request parsing for the http worker: route matching, query strings,
 * names, NDJSON splitting and the JSON bodies of the control routes. No I/O,
 * no libevent, no globals: tests/unit/test_http_parse.c and
 * tests/fuzz/fuzz_http_parse.c call these directly.
 *
 * Every function bounds what it reads by the length it is given and writes a
 * one-sentence reason into why (bounded, always NUL-terminated) when it
 * rejects its input. */
#ifndef SK_HTTP_PARSE_H
#define SK_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/sk_error.h"
#include "common/sk_limits.h"
#include "store/record.h"

#define HTTP_WHY_BYTES 160
/* Control bodies (topics, commit, delete-before, retention) are small JSON objects. */
#define HTTP_CONTROL_BODY_BYTES_MAX (64 * 1024)
/* Consume defaults (the seed API's limit default is 100). */
#define HTTP_CONSUME_LIMIT_DEFAULT 100
#define HTTP_CONSUME_BYTES_DEFAULT (4 * 1024 * 1024)

enum http_route {
	HTTP_R_NONE = 0, /* no such path: 404 */
	HTTP_R_HEALTH,
	HTTP_R_READY,
	HTTP_R_METRICS,
	HTTP_R_STATUS,
	HTTP_R_TOPICS,         /* /broker/topics: GET list, POST create */
	HTTP_R_TOPIC_INFO,     /* GET /broker/topics/{topic} */
	HTTP_R_PRODUCE,        /* POST /broker/topics/{topic}/produce */
	HTTP_R_PRODUCE_NDJSON, /* POST /broker/topics/{topic}/produce-ndjson */
	HTTP_R_CONSUME,        /* GET /broker/consume/{topic}/{group}/{partition} */
	HTTP_R_COMMIT,         /* POST /broker/commit */
	HTTP_R_DELETE_BEFORE,  /* POST /broker/delete-before */
	HTTP_R_RETENTION,      /* POST /broker/retention */
	HTTP_R_COUNT
};

/* Methods as a bit set (the route table says which each route accepts). */
enum http_method_bit { HTTP_M_GET = 1, HTTP_M_POST = 2, HTTP_M_HEAD = 4, HTTP_M_OTHER = 8 };

/* A matched path. The segments point into the path given to http_route_match and
 * are NOT validated (the handler answers 400 for a bad name, 404 for an unknown one). */
struct http_match {
	enum http_route route;
	const char *topic;
	size_t topic_len;
	const char *group;
	size_t group_len;
	const char *partition;
	size_t partition_len;
};

/* Match a path (without the query string) of len bytes. One trailing '/' is
 * accepted. Returns the route (HTTP_R_NONE when nothing matches). */
enum http_route http_route_match(const char *path, size_t len, struct http_match *out);
/* Methods a route accepts (HEAD is accepted wherever GET is). */
unsigned http_route_methods(enum http_route route);
/* The "Allow" header value for a route ("GET, HEAD", "POST", ...). */
const char *http_route_allow(enum http_route route);
/* Stable label for /metrics ("produce", "consume", ...; "none" for HTTP_R_NONE). */
const char *http_route_label(enum http_route route);
/* True for routes whose handler may be opened without a token by configuration. */
bool http_route_is_health(enum http_route route);

/* Topic and group names: [A-Za-z0-9._-]{1,128}, and not "." or ".." (names
 * become directory names under data_dir/index). */
bool http_name_valid(const char *s, size_t len);

/* Query parameters every route understands; each has_X says it was present. */
struct http_query {
	bool has_partition;
	uint32_t partition;
	bool has_key;
	uint16_t key_len;
	uint8_t key[SK_KEY_BYTES_MAX];
	bool has_idem;
	uint16_t idem_len;
	uint8_t idem[SK_IDEM_KEY_BYTES_MAX];
	bool has_ack;
	uint8_t ack; /* enum sk_ack */
	bool has_timeout;
	uint32_t timeout_ms;
	bool has_offset;
	uint64_t offset;
	bool has_limit;
	uint32_t limit;
	bool has_max_bytes;
	uint64_t max_bytes;
	bool has_encoding;
	uint8_t encoding; /* enum read_encoding */
	bool has_wait;
	uint32_t wait_ms;
};

/* Parse a query string (without '?') of len bytes: name=value pairs split by '&',
 * values percent-decoded ('+' is a space). Unknown names are ignored; a known name
 * given twice, a bad number, a value out of range or bad percent-encoding is
 * SK_EINVAL with the reason in why. qs may be NULL when len is 0. */
sk_err http_query_parse(const char *qs, size_t len, struct http_query *out, char *why,
			size_t why_len);

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow past max. */
bool http_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);

/* FNV-1a, 32 bit: the partition of a keyed record is fnv1a32(key) % partitions. */
uint32_t http_fnv1a32(const uint8_t *p, size_t len);

/* Decode one JSON string literal (with its quotes, optionally followed by spaces or tabs)
 * that fills all of in[0..len) into out (capacity >= len; a decoded string is never longer
 * than its literal). Returns false when in is not exactly one valid JSON string. */
bool http_json_string_decode(const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);

/* NDJSON produce body -> records (store/record.h) as iovecs, without copying the lines.
 * One record per line ("\n", an optional "\r" before it is dropped); empty lines are
 * skipped; a line that is exactly one JSON string is stored decoded (the seed API
 * unwraps "text" lines), via scratch. The batch idempotency key is carried by the
 * first record. Caller-owned storage, all bounded: */
struct http_ndjson {
	struct iovec *iov; /* out: record header, [idem key], value pieces, ... */
	uint32_t iov_cap;
	uint32_t iov_count;
	uint8_t (*hdr)[SK_RECORD_HEADER_BYTES]; /* one header per record */
	uint32_t records_max;                   /* [http] batch_records_max, <= hdr capacity */
	uint32_t count;                         /* out: records */
	uint8_t *scratch;                       /* decoded JSON-string lines */
	size_t scratch_cap;
	size_t scratch_used;
	uint64_t body_bytes; /* out: encoded bytes of all records */
};
/* seg[0..nseg) is the body. SK_EINVAL (why says: no records, too many, a line too long);
 * SK_EFULL when iov_cap or scratch_cap is too small (the caller flattens and retries). */
sk_err http_ndjson_split(const struct iovec *seg, int nseg, const uint8_t *idem, uint16_t idem_len,
			 struct http_ndjson *nd, char *why, size_t why_len);

/* JSON bodies of the control routes. jansson parses; duplicate keys, wrong types,
 * missing required fields and out-of-range numbers are SK_EINVAL with a reason. */
struct http_create_topic {
	char name[SK_TOPIC_NAME_BYTES_MAX + 1];
	bool has_partitions;
	uint32_t partitions;
};
sk_err http_parse_create_topic(const char *body, size_t len, uint32_t partitions_max,
			       struct http_create_topic *out, char *why, size_t why_len);

struct http_commit {
	char topic[SK_TOPIC_NAME_BYTES_MAX + 1];
	char group[SK_GROUP_NAME_BYTES_MAX + 1];
	uint32_t partition;
	uint64_t offset;
};
sk_err http_parse_commit(const char *body, size_t len, struct http_commit *out, char *why,
			 size_t why_len);

struct http_delete_before {
	char topic[SK_TOPIC_NAME_BYTES_MAX + 1];
	uint32_t partition;
	uint64_t before_offset;
};
sk_err http_parse_delete_before(const char *body, size_t len, struct http_delete_before *out,
				char *why, size_t why_len);

/* Retention: {"topic", "max_bytes"?, "ttl_ms"?} (the seed API's names); at least one of
 * the two; 0 means the node default. A "partition" field is refused (retention is per
 * topic here) and so is topic "*" (the node default lives in the INI). */
struct http_retention {
	char topic[SK_TOPIC_NAME_BYTES_MAX + 1];
	bool has_bytes;
	uint64_t bytes;
	bool has_ms;
	uint64_t ms;
};
sk_err http_parse_retention(const char *body, size_t len, struct http_retention *out, char *why,
			    size_t why_len);

#endif
