/* Pure request parsing for the http worker (see http_parse.h). Nothing here
 * allocates except jansson in the control-body parsers; nothing reads past the
 * length it was given. */
#include "common/names.h"
#include "workers/http/http_parse.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "ipc/read_msg.h"

static void why_set(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t why_len, const char *fmt, ...)
{
	if (!why || why_len == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

/* ---- routes ---- */

#define HTTP_PATH_SEGMENTS_MAX 6

struct seg {
	const char *p;
	size_t len;
};

/* Split "/a/b/c" into segments; false on an empty segment or too many. */
static bool path_split(const char *path, size_t len, struct seg *segs, int *nseg)
{
	if (len == 0 || path[0] != '/')
		return false;
	if (len > 1 && path[len - 1] == '/')
		len--; /* one trailing slash is accepted */
	int n = 0;
	size_t i = 1;
	if (len == 1) {
		*nseg = 0;
		return true;
	}
	while (i <= len) {
		const char *start = path + i;
		const char *slash = memchr(start, '/', len - i);
		size_t seg_len = slash ? (size_t)(slash - start) : len - i;
		if (seg_len == 0 || n == HTTP_PATH_SEGMENTS_MAX)
			return false;
		segs[n].p = start;
		segs[n].len = seg_len;
		n++;
		i += seg_len + 1;
	}
	*nseg = n;
	return true;
}

static bool seg_is(const struct seg *s, const char *lit)
{
	size_t n = strlen(lit);
	return s->len == n && memcmp(s->p, lit, n) == 0;
}

static enum http_route route_top(const struct seg *s)
{
	if (seg_is(s, "health"))
		return HTTP_R_HEALTH;
	if (seg_is(s, "ready"))
		return HTTP_R_READY;
	if (seg_is(s, "metrics"))
		return HTTP_R_METRICS;
	if (seg_is(s, "status"))
		return HTTP_R_STATUS;
	return HTTP_R_NONE;
}

static enum http_route route_broker(const struct seg *s, int n, struct http_match *out)
{
	if (n == 2) {
		if (seg_is(&s[1], "topics"))
			return HTTP_R_TOPICS;
		if (seg_is(&s[1], "commit"))
			return HTTP_R_COMMIT;
		if (seg_is(&s[1], "delete-before"))
			return HTTP_R_DELETE_BEFORE;
		if (seg_is(&s[1], "retention"))
			return HTTP_R_RETENTION;
		return HTTP_R_NONE;
	}
	if (seg_is(&s[1], "topics") && (n == 3 || n == 4)) {
		out->topic = s[2].p;
		out->topic_len = s[2].len;
		if (n == 3)
			return HTTP_R_TOPIC_INFO;
		if (seg_is(&s[3], "produce"))
			return HTTP_R_PRODUCE;
		if (seg_is(&s[3], "produce-ndjson"))
			return HTTP_R_PRODUCE_NDJSON;
		return HTTP_R_NONE;
	}
	if (seg_is(&s[1], "consume") && n == 5) {
		out->topic = s[2].p;
		out->topic_len = s[2].len;
		out->group = s[3].p;
		out->group_len = s[3].len;
		out->partition = s[4].p;
		out->partition_len = s[4].len;
		return HTTP_R_CONSUME;
	}
	return HTTP_R_NONE;
}

enum http_route http_route_match(const char *path, size_t len, struct http_match *out)
{
	struct seg segs[HTTP_PATH_SEGMENTS_MAX];
	int n = 0;
	memset(out, 0, sizeof(*out));
	if (!path || !path_split(path, len, segs, &n) || n == 0)
		return HTTP_R_NONE;
	enum http_route r = HTTP_R_NONE;
	if (n == 1)
		r = route_top(&segs[0]);
	else if (seg_is(&segs[0], "broker"))
		r = route_broker(segs, n, out);
	if (r == HTTP_R_NONE)
		memset(out, 0, sizeof(*out));
	out->route = r;
	return r;
}

unsigned http_route_methods(enum http_route route)
{
	switch (route) {
	case HTTP_R_HEALTH:
	case HTTP_R_READY:
	case HTTP_R_METRICS:
	case HTTP_R_STATUS:
	case HTTP_R_TOPIC_INFO:
	case HTTP_R_CONSUME:
		return HTTP_M_GET | HTTP_M_HEAD;
	case HTTP_R_TOPICS:
		return HTTP_M_GET | HTTP_M_HEAD | HTTP_M_POST;
	case HTTP_R_PRODUCE:
	case HTTP_R_PRODUCE_NDJSON:
	case HTTP_R_COMMIT:
	case HTTP_R_DELETE_BEFORE:
	case HTTP_R_RETENTION:
		return HTTP_M_POST;
	default:
		return 0;
	}
}

const char *http_route_allow(enum http_route route)
{
	unsigned m = http_route_methods(route);
	if (m == (HTTP_M_GET | HTTP_M_HEAD | HTTP_M_POST))
		return "GET, HEAD, POST";
	if (m == (HTTP_M_GET | HTTP_M_HEAD))
		return "GET, HEAD";
	if (m == HTTP_M_POST)
		return "POST";
	return "";
}

const char *http_route_label(enum http_route route)
{
	static const char *const labels[HTTP_R_COUNT] = {
		[HTTP_R_NONE] = "none",
		[HTTP_R_HEALTH] = "health",
		[HTTP_R_READY] = "ready",
		[HTTP_R_METRICS] = "metrics",
		[HTTP_R_STATUS] = "status",
		[HTTP_R_TOPICS] = "topics",
		[HTTP_R_TOPIC_INFO] = "topic", /* the read side counts under this label too */
		[HTTP_R_PRODUCE] = "produce",
		[HTTP_R_PRODUCE_NDJSON] = "produce_ndjson",
		[HTTP_R_CONSUME] = "consume",
		[HTTP_R_COMMIT] = "commit",
		[HTTP_R_DELETE_BEFORE] = "delete_before",
		[HTTP_R_RETENTION] = "retention",
	};
	if ((unsigned)route >= HTTP_R_COUNT)
		return "none";
	return labels[route];
}

bool http_route_is_health(enum http_route route)
{
	return route == HTTP_R_HEALTH || route == HTTP_R_READY;
}

bool http_name_valid(const char *s, size_t len)
{
	return sk_name_valid(s, len, SK_TOPIC_NAME_BYTES_MAX);
}

/* ---- numbers, hashing ---- */

bool http_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	if (!s || len == 0 || len > 20)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

uint32_t http_fnv1a32(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* ---- query strings ---- */

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode src into dst (cap bytes). -1 on bad encoding, -2 when too long. */
static long pct_decode(const char *src, size_t len, uint8_t *dst, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)src[i];
		if (c == '%') {
			if (len - i < 3)
				return -1;
			int hi = hex_val(src[i + 1]), lo = hex_val(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (uint8_t)(hi << 4 | lo);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (o == cap)
			return -2;
		dst[o++] = c;
	}
	return (long)o;
}

enum qp { QP_PARTITION, QP_KEY, QP_IDEM, QP_ACK, QP_TIMEOUT, QP_OFFSET, QP_LIMIT, QP_MAX_BYTES,
	  QP_ENCODING, QP_WAIT, QP_COUNT };

static const char *const qp_names[QP_COUNT] = {
	[QP_PARTITION] = "partition", [QP_KEY] = "key",           [QP_IDEM] = "idempotency_key",
	[QP_ACK] = "ack",             [QP_TIMEOUT] = "timeout_ms", [QP_OFFSET] = "offset",
	[QP_LIMIT] = "limit",         [QP_MAX_BYTES] = "max_bytes", [QP_ENCODING] = "encoding",
	[QP_WAIT] = "wait_ms",
};

static int qp_lookup(const char *name, size_t len)
{
	for (int i = 0; i < QP_COUNT; i++)
		if (strlen(qp_names[i]) == len && memcmp(qp_names[i], name, len) == 0)
			return i;
	return -1;
}

/* A numeric parameter within [lo, hi]. */
static bool qp_number(const uint8_t *v, long n, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t x;
	if (n <= 0 || !http_parse_u64((const char *)v, (size_t)n, hi, &x) || x < lo)
		return false;
	*out = x;
	return true;
}

static bool qp_word(const uint8_t *v, long n, const char *word)
{
	return (size_t)n == strlen(word) && memcmp(v, word, (size_t)n) == 0;
}

static bool qp_enum(int which, const uint8_t *v, long n, struct http_query *q)
{
	if (which == QP_ACK) {
		char buf[16];
		if (n <= 0 || n >= (long)sizeof(buf))
			return false;
		memcpy(buf, v, (size_t)n);
		buf[n] = 0;
		enum sk_ack a;
		if (!cfg_ack_parse(buf, &a))
			return false;
		q->ack = (uint8_t)a;
		q->has_ack = true;
		return true;
	}
	if (qp_word(v, n, "b64") || qp_word(v, n, "base64"))
		q->encoding = READ_ENC_BASE64;
	else if (qp_word(v, n, "text"))
		q->encoding = READ_ENC_TEXT;
	else
		return false;
	q->has_encoding = true;
	return true;
}

/* Store one decoded value; false with why set when it is not acceptable. */
static bool qp_store(int which, const uint8_t *v, long n, struct http_query *q, char *why,
		     size_t why_len)
{
	uint64_t x = 0;
	switch (which) {
	case QP_PARTITION:
		if (!qp_number(v, n, 0, UINT32_MAX, &x))
			break;
		q->partition = (uint32_t)x;
		return q->has_partition = true;
	case QP_TIMEOUT:
		if (!qp_number(v, n, 1, SK_HTTP_TIMEOUT_MS_MAX, &x))
			break;
		q->timeout_ms = (uint32_t)x;
		return q->has_timeout = true;
	case QP_OFFSET:
		if (!qp_number(v, n, 0, UINT64_MAX - 1, &x))
			break;
		q->offset = x;
		return q->has_offset = true;
	case QP_LIMIT:
		if (!qp_number(v, n, 1, SK_HTTP_CONSUME_LIMIT_MAX, &x))
			break;
		q->limit = (uint32_t)x;
		return q->has_limit = true;
	case QP_MAX_BYTES:
		if (!qp_number(v, n, 1, SK_HTTP_CONSUME_BYTES_MAX, &x))
			break;
		q->max_bytes = x;
		return q->has_max_bytes = true;
	case QP_WAIT:
		if (!qp_number(v, n, 0, SK_HTTP_WAIT_MS_MAX, &x))
			break;
		q->wait_ms = (uint32_t)x;
		return q->has_wait = true;
	case QP_ACK:
	case QP_ENCODING:
		if (qp_enum(which, v, n, q))
			return true;
		why_set(why, why_len, "Parameter %s has an unknown value (%s)", qp_names[which],
			which == QP_ACK ? "allowed: none, local, majority, all" : "allowed: b64, text");
		return false;
	default:
		return false;
	}
	static const struct {
		uint64_t lo, hi;
	} ranges[QP_COUNT] = {
		[QP_PARTITION] = {0, UINT32_MAX},
		[QP_TIMEOUT] = {1, SK_HTTP_TIMEOUT_MS_MAX},
		[QP_OFFSET] = {0, UINT64_MAX - 1},
		[QP_LIMIT] = {1, SK_HTTP_CONSUME_LIMIT_MAX},
		[QP_MAX_BYTES] = {1, SK_HTTP_CONSUME_BYTES_MAX},
		[QP_WAIT] = {0, SK_HTTP_WAIT_MS_MAX},
	};
	why_set(why, why_len, "Parameter %s must be a whole number from %llu to %llu",
		qp_names[which], (unsigned long long)ranges[which].lo,
		(unsigned long long)ranges[which].hi);
	return false;
}

/* key and idempotency_key: raw bytes after percent-decoding; empty means absent. */
static bool qp_bytes(int which, const char *raw, size_t raw_len, struct http_query *q, char *why,
		     size_t why_len)
{
	uint8_t *dst = which == QP_KEY ? q->key : q->idem;
	size_t cap = which == QP_KEY ? sizeof(q->key) : sizeof(q->idem);
	long n = pct_decode(raw, raw_len, dst, cap);
	if (n == -1) {
		why_set(why, why_len, "Parameter %s has bad percent-encoding", qp_names[which]);
		return false;
	}
	if (n == -2) {
		why_set(why, why_len, "Parameter %s is longer than %zu bytes", qp_names[which], cap);
		return false;
	}
	if (which == QP_KEY) {
		q->key_len = (uint16_t)n;
		q->has_key = n > 0;
	} else {
		q->idem_len = (uint16_t)n;
		q->has_idem = n > 0;
	}
	return true;
}

static bool qp_pair(const char *p, size_t len, struct http_query *q, unsigned *seen, char *why,
		    size_t why_len)
{
	const char *eq = memchr(p, '=', len);
	size_t name_len = eq ? (size_t)(eq - p) : len;
	const char *val = eq ? eq + 1 : p + len;
	size_t val_len = eq ? len - name_len - 1 : 0;
	int which = qp_lookup(p, name_len);
	if (which < 0)
		return true; /* unknown parameters are ignored (the seed API has more) */
	if (*seen & (1u << which)) {
		why_set(why, why_len, "Parameter %s is given more than once", qp_names[which]);
		return false;
	}
	*seen |= 1u << which;
	if (which == QP_KEY || which == QP_IDEM)
		return qp_bytes(which, val, val_len, q, why, why_len);
	uint8_t buf[32];
	long n = pct_decode(val, val_len, buf, sizeof(buf));
	if (n == -1) {
		why_set(why, why_len, "Parameter %s has bad percent-encoding", qp_names[which]);
		return false;
	}
	if (n == -2)
		n = 0; /* far too long for any number or word: rejected below */
	return qp_store(which, buf, n, q, why, why_len);
}

sk_err http_query_parse(const char *qs, size_t len, struct http_query *out, char *why,
			size_t why_len)
{
	memset(out, 0, offsetof(struct http_query, key));
	out->has_idem = false;
	out->idem_len = 0;
	out->has_ack = out->has_timeout = out->has_offset = out->has_limit = false;
	out->has_max_bytes = out->has_encoding = out->has_wait = false;
	unsigned seen = 0;
	size_t i = 0;
	while (i < len) {
		const char *amp = memchr(qs + i, '&', len - i);
		size_t pair_len = amp ? (size_t)(amp - (qs + i)) : len - i;
		if (pair_len > 0 && !qp_pair(qs + i, pair_len, out, &seen, why, why_len))
			return SK_EINVAL;
		i += pair_len + 1;
	}
	return SK_OK;
}

/* ---- JSON string literal decoding ---- */

static bool hex4(const uint8_t *p, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hex_val((char)p[i]);
		if (h < 0)
			return false;
		v = v << 4 | (uint32_t)h;
	}
	*out = v;
	return true;
}

static size_t utf8_put(uint8_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xc0 | cp >> 6);
		o[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xe0 | cp >> 12);
		o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | cp >> 18);
	o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* A \u escape at in[*i] (pointing at 'u'); surrogate pairs must be complete. */
static bool json_unicode(const uint8_t *in, size_t len, size_t *i, uint32_t *cp)
{
	if (len - *i < 5 || !hex4(in + *i + 1, cp))
		return false;
	*i += 5;
	if (*cp >= 0xdc00 && *cp <= 0xdfff)
		return false; /* a low surrogate alone */
	if (*cp < 0xd800 || *cp > 0xdbff)
		return true;
	uint32_t lo;
	if (len - *i < 6 || in[*i] != '\\' || in[*i + 1] != 'u' || !hex4(in + *i + 2, &lo) ||
	    lo < 0xdc00 || lo > 0xdfff)
		return false;
	*i += 6;
	*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	return true;
}

static bool json_escape(const uint8_t *in, size_t len, size_t *i, uint8_t *out, size_t *o)
{
	/* in[*i] is the character after the backslash. */
	static const char from[] = "\"\\/bfnrt";
	static const char to[] = "\"\\/\b\f\n\r\t";
	uint8_t c = in[*i];
	const char *hit = c ? strchr(from, c) : NULL;
	if (hit) {
		out[(*o)++] = (uint8_t)to[hit - from];
		(*i)++;
		return true;
	}
	uint32_t cp;
	if (c != 'u' || !json_unicode(in, len, i, &cp))
		return false;
	*o += utf8_put(out + *o, cp);
	return true;
}

bool http_json_string_decode(const uint8_t *in, size_t len, uint8_t *out, size_t *out_len)
{
	/* out may alias in: the write position never passes the read position. */
	if (len < 2 || in[0] != '"')
		return false;
	size_t i = 1, o = 0;
	for (;;) {
		if (i >= len)
			return false; /* no closing quote */
		uint8_t c = in[i];
		if (c == '"')
			break;
		if (c < 0x20)
			return false;
		if (c != '\\') {
			out[o++] = c;
			i++;
			continue;
		}
		if (++i >= len || !json_escape(in, len, &i, out, &o))
			return false;
	}
	for (i++; i < len; i++)
		if (in[i] != ' ' && in[i] != '\t')
			return false;
	*out_len = o;
	return true;
}

/* ---- NDJSON ---- */

struct nd_line {
	uint32_t first_iov; /* index of the record header slot */
	uint32_t piece0;    /* index of the first value piece */
	uint64_t len;
};

static sk_err nd_push(struct http_ndjson *nd, const void *p, size_t len)
{
	if (len == 0)
		return SK_OK;
	if (nd->iov_count == nd->iov_cap)
		return SK_EFULL;
	nd->iov[nd->iov_count].iov_base = (void *)p;
	nd->iov[nd->iov_count].iov_len = len;
	nd->iov_count++;
	return SK_OK;
}

/* Drop a trailing '\r' from the line's pieces. */
static void nd_trim_cr(struct http_ndjson *nd, struct nd_line *ln)
{
	if (ln->len == 0 || nd->iov_count == ln->piece0)
		return;
	struct iovec *last = &nd->iov[nd->iov_count - 1];
	if (((const uint8_t *)last->iov_base)[last->iov_len - 1] != '\r')
		return;
	last->iov_len--;
	ln->len--;
	if (last->iov_len == 0)
		nd->iov_count--;
}

/* A line that is exactly one JSON string is stored decoded, via scratch. */
static sk_err nd_unwrap(struct http_ndjson *nd, struct nd_line *ln)
{
	const uint8_t *first = nd->iov[ln->piece0].iov_base;
	if (first[0] != '"')
		return SK_OK;
	if (nd->scratch_cap - nd->scratch_used < ln->len)
		return SK_EFULL;
	uint8_t *dst = nd->scratch + nd->scratch_used;
	size_t at = 0;
	for (uint32_t k = ln->piece0; k < nd->iov_count; k++) {
		memcpy(dst + at, nd->iov[k].iov_base, nd->iov[k].iov_len);
		at += nd->iov[k].iov_len;
	}
	size_t dec_len;
	if (!http_json_string_decode(dst, at, dst, &dec_len))
		return SK_OK; /* not a JSON string: keep the line as it is */
	nd->scratch_used += dec_len;
	nd->iov_count = ln->piece0;
	ln->len = dec_len;
	return dec_len ? nd_push(nd, dst, dec_len) : SK_OK;
}

/* Close the line being built: trim, skip if empty, unwrap, write its header. */
static sk_err nd_finish_line(struct http_ndjson *nd, struct nd_line *ln, uint16_t idem_len,
			     char *why, size_t why_len)
{
	nd_trim_cr(nd, ln);
	if (ln->len == 0) {
		nd->iov_count = ln->first_iov; /* an empty line is skipped */
		return SK_OK;
	}
	sk_err err = nd_unwrap(nd, ln);
	if (err != SK_OK)
		return err;
	if (nd->count == nd->records_max) {
		why_set(why, why_len, "The body has more than %u records ([http] batch_records_max)",
			nd->records_max);
		return SK_EINVAL;
	}
	uint32_t idem = nd->count == 0 ? idem_len : 0;
	if (ln->len > UINT32_MAX - 4 - idem) {
		why_set(why, why_len, "A line is too long");
		return SK_EINVAL;
	}
	record_encode_header(nd->hdr[nd->count], 0, idem, (uint32_t)ln->len);
	nd->iov[ln->first_iov].iov_base = nd->hdr[nd->count];
	nd->body_bytes += SK_RECORD_HEADER_BYTES + idem + ln->len;
	nd->count++;
	return SK_OK;
}

/* Open a line: reserve its header slot and the idempotency key (first record only). */
static sk_err nd_open_line(struct http_ndjson *nd, struct nd_line *ln, const uint8_t *idem,
			   uint16_t idem_len)
{
	ln->first_iov = nd->iov_count;
	ln->len = 0;
	if (nd->iov_count == nd->iov_cap)
		return SK_EFULL;
	nd->iov[nd->iov_count].iov_base = NULL;
	nd->iov[nd->iov_count].iov_len = SK_RECORD_HEADER_BYTES;
	nd->iov_count++;
	sk_err err = nd->count == 0 ? nd_push(nd, idem, idem_len) : SK_OK;
	ln->piece0 = nd->iov_count;
	return err;
}

sk_err http_ndjson_split(const struct iovec *seg, int nseg, const uint8_t *idem, uint16_t idem_len,
			 struct http_ndjson *nd, char *why, size_t why_len)
{
	nd->iov_count = 0;
	nd->count = 0;
	nd->scratch_used = 0;
	nd->body_bytes = 0;
	struct nd_line ln;
	sk_err err = nd_open_line(nd, &ln, idem, idem_len);
	for (int s = 0; s < nseg && err == SK_OK; s++) {
		const uint8_t *p = seg[s].iov_base;
		size_t left = seg[s].iov_len;
		while (left > 0 && err == SK_OK) {
			const uint8_t *nl = memchr(p, '\n', left);
			size_t take = nl ? (size_t)(nl - p) : left;
			err = nd_push(nd, p, take);
			ln.len += take;
			p += take;
			left -= take;
			if (!nl || err != SK_OK)
				break;
			p++;
			left--;
			err = nd_finish_line(nd, &ln, idem_len, why, why_len);
			if (err == SK_OK)
				err = nd_open_line(nd, &ln, idem, idem_len);
		}
	}
	if (err == SK_OK)
		err = nd_finish_line(nd, &ln, idem_len, why, why_len);
	if (err == SK_OK && nd->count == 0) {
		why_set(why, why_len, "The body holds no records (one per line)");
		err = SK_EINVAL;
	}
	return err;
}

/* ---- control bodies ---- */

static json_t *body_load(const char *body, size_t len, char *why, size_t why_len)
{
	if (len == 0) {
		why_set(why, why_len, "The body must be a JSON object");
		return NULL;
	}
	if (len > HTTP_CONTROL_BODY_BYTES_MAX) {
		why_set(why, why_len, "The body is longer than %d bytes", HTTP_CONTROL_BODY_BYTES_MAX);
		return NULL;
	}
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		why_set(why, why_len, "The body is not valid JSON (line %d: %s)", jerr.line, jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		why_set(why, why_len, "The body must be a JSON object");
		json_decref(root);
		return NULL;
	}
	return root;
}

/* A required (or optional, when has is non-NULL) name field. */
static bool field_name(json_t *root, const char *field, char *out, bool *has, char *why,
		       size_t why_len)
{
	json_t *v = json_object_get(root, field);
	if (!v && has) {
		*has = false;
		return true;
	}
	if (!v) {
		why_set(why, why_len, "Field \"%s\" is missing", field);
		return false;
	}
	if (!json_is_string(v)) {
		why_set(why, why_len, "Field \"%s\" must be a string", field);
		return false;
	}
	size_t n = json_string_length(v);
	if (!http_name_valid(json_string_value(v), n)) {
		why_set(why, why_len, "Field \"%s\" must match [A-Za-z0-9._-]{1,128}", field);
		return false;
	}
	memcpy(out, json_string_value(v), n);
	out[n] = 0;
	if (has)
		*has = true;
	return true;
}

/* An integer field within [lo, hi]; optional when has is non-NULL. */
static bool field_u64(json_t *root, const char *field, uint64_t lo, uint64_t hi, uint64_t *out,
		      bool *has, char *why, size_t why_len)
{
	json_t *v = json_object_get(root, field);
	if (!v && has) {
		*has = false;
		return true;
	}
	if (!v) {
		why_set(why, why_len, "Field \"%s\" is missing", field);
		return false;
	}
	json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
	if (!json_is_integer(v) || x < 0 || (uint64_t)x < lo || (uint64_t)x > hi) {
		why_set(why, why_len, "Field \"%s\" must be a whole number from %llu to %llu", field,
			(unsigned long long)lo, (unsigned long long)hi);
		return false;
	}
	*out = (uint64_t)x;
	if (has)
		*has = true;
	return true;
}

sk_err http_parse_create_topic(const char *body, size_t len, uint32_t partitions_max,
			       struct http_create_topic *out, char *why, size_t why_len)
{
	json_t *root = body_load(body, len, why, why_len);
	if (!root)
		return SK_EINVAL;
	uint64_t parts = 0;
	bool ok = field_name(root, "name", out->name, NULL, why, why_len) &&
		  field_u64(root, "partitions", SK_PARTITIONS_MIN, partitions_max, &parts,
			    &out->has_partitions, why, why_len);
	out->partitions = (uint32_t)parts;
	json_decref(root);
	return ok ? SK_OK : SK_EINVAL;
}

sk_err http_parse_commit(const char *body, size_t len, struct http_commit *out, char *why,
			 size_t why_len)
{
	json_t *root = body_load(body, len, why, why_len);
	if (!root)
		return SK_EINVAL;
	uint64_t part = 0;
	bool ok = field_name(root, "topic", out->topic, NULL, why, why_len) &&
		  field_name(root, "group", out->group, NULL, why, why_len) &&
		  field_u64(root, "partition", 0, UINT32_MAX, &part, NULL, why, why_len) &&
		  field_u64(root, "offset", 0, INT64_MAX, &out->offset, NULL, why, why_len);
	out->partition = (uint32_t)part;
	json_decref(root);
	return ok ? SK_OK : SK_EINVAL;
}

sk_err http_parse_delete_before(const char *body, size_t len, struct http_delete_before *out,
				char *why, size_t why_len)
{
	json_t *root = body_load(body, len, why, why_len);
	if (!root)
		return SK_EINVAL;
	uint64_t part = 0;
	bool ok = field_name(root, "topic", out->topic, NULL, why, why_len) &&
		  field_u64(root, "partition", 0, UINT32_MAX, &part, NULL, why, why_len) &&
		  field_u64(root, "before_offset", 0, INT64_MAX, &out->before_offset, NULL, why,
			    why_len);
	out->partition = (uint32_t)part;
	json_decref(root);
	return ok ? SK_OK : SK_EINVAL;
}

static bool retention_topic(json_t *root, char *out, char *why, size_t why_len)
{
	json_t *t = json_object_get(root, "topic");
	if (json_is_string(t) && strcmp(json_string_value(t), "*") == 0) {
		why_set(why, why_len, "Topic \"*\" is not supported: set [storage] retention in the "
				      "INI for every topic");
		return false;
	}
	if (json_object_get(root, "partition")) {
		why_set(why, why_len, "Retention is set per topic; remove the \"partition\" field");
		return false;
	}
	return field_name(root, "topic", out, NULL, why, why_len);
}

sk_err http_parse_retention(const char *body, size_t len, struct http_retention *out, char *why,
			    size_t why_len)
{
	json_t *root = body_load(body, len, why, why_len);
	if (!root)
		return SK_EINVAL;
	bool ok = retention_topic(root, out->topic, why, why_len) &&
		  field_u64(root, "max_bytes", 0, SK_RETENTION_BYTES_MAX, &out->bytes,
			    &out->has_bytes, why, why_len) &&
		  field_u64(root, "ttl_ms", 0, SK_RETENTION_MS_MAX, &out->ms, &out->has_ms, why,
			    why_len);
	if (ok && !out->has_bytes && !out->has_ms) {
		why_set(why, why_len, "Give \"max_bytes\", \"ttl_ms\" or both");
		ok = false;
	}
	json_decref(root);
	return ok ? SK_OK : SK_EINVAL;
}
