/* JSON text for consume replies, written into a bounded buffer. The output
 * format is described in replay_format.h. Everything here is on the hot path of
 * a consume (one call per record), so it avoids printf and copies runs of plain
 * ASCII eight bytes at a time.
 *
 * Base64 is our own table encoder rather than sodium_bin2base64: sodium's is
 * constant-time (no table lookups, arithmetic per character) because it is meant
 * for secrets; record values are not secrets and the table version measured
 * several times faster (numbers in the report of the read path). */
#include "workers/replay/replay_format.h"

#undef NDEBUG /* assertions are for bugs and stay on in every build (STYLE.md habit 5) */
#include <assert.h>
#include <string.h>

#include "ipc/read_msg.h"

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* b64_pairs[v] holds the two characters for the 12-bit value v: one lookup per
 * 12 input bits instead of two. Filled once on first use (the worker is
 * single-threaded). */
static uint8_t b64_pairs[4096][2];
static bool b64_pairs_ready;

static void b64_pairs_fill(void)
{
	for (unsigned v = 0; v < 4096; v++) {
		b64_pairs[v][0] = (uint8_t)b64_alphabet[v >> 6];
		b64_pairs[v][1] = (uint8_t)b64_alphabet[v & 63];
	}
	b64_pairs_ready = true;
}

size_t fmt_b64_encode(uint8_t *out, const uint8_t *in, size_t n)
{
	if (!b64_pairs_ready)
		b64_pairs_fill();
	uint8_t *o = out;
	size_t i = 0;
	/* Six input bytes per step from one 8-byte big-endian load (the 2 extra bytes
	 * are read, never used, hence i + 8 <= n). */
	for (; i + 8 <= n; i += 6) {
		uint64_t w;
		memcpy(&w, in + i, 8);
		w = __builtin_bswap64(w);
		uint8_t chunk[8];
		memcpy(chunk, b64_pairs[(w >> 52) & 0xfff], 2);
		memcpy(chunk + 2, b64_pairs[(w >> 40) & 0xfff], 2);
		memcpy(chunk + 4, b64_pairs[(w >> 28) & 0xfff], 2);
		memcpy(chunk + 6, b64_pairs[(w >> 16) & 0xfff], 2);
		memcpy(o, chunk, 8);
		o += 8;
	}
	for (; i + 3 <= n; i += 3) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
		memcpy(o, b64_pairs[v >> 12], 2);
		memcpy(o + 2, b64_pairs[v & 0xfff], 2);
		o += 4;
	}
	size_t rest = n - i;
	if (rest) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (rest == 2)
			v |= (uint32_t)in[i + 1] << 8;
		o[0] = (uint8_t)b64_alphabet[(v >> 18) & 63];
		o[1] = (uint8_t)b64_alphabet[(v >> 12) & 63];
		o[2] = rest == 2 ? (uint8_t)b64_alphabet[(v >> 6) & 63] : '=';
		o[3] = '=';
		o += 4;
	}
	return (size_t)(o - out);
}

/* Length of the well-formed UTF-8 sequence starting at p (avail bytes present,
 * p[0] >= 0x80), or 0 when it is malformed (Unicode 15, table 3-7). */
static size_t utf8_seq_len(const uint8_t *p, size_t avail)
{
	uint8_t c = p[0];
	size_t len;
	uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		return 0; /* continuation byte, C0/C1 overlong lead, or F5..FF */
	}
	if (avail < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if (p[k] < 0x80 || p[k] > 0xbf)
			return 0;
	return len;
}

bool fmt_utf8_valid(const uint8_t *in, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (in[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = utf8_seq_len(in + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* True when any byte of w is >= 0x80, < 0x20, '"' or '\\' (exact, no false hits
 * that matter: a false positive only sends the word down the byte-wise path). */
static inline bool word_needs_care(uint64_t w)
{
	uint64_t below_space = (w - ONES * 0x20) & ~w;
	uint64_t quote = w ^ (ONES * '"');
	uint64_t backslash = w ^ (ONES * '\\');
	uint64_t is_quote = (quote - ONES) & ~quote;
	uint64_t is_backslash = (backslash - ONES) & ~backslash;
	return ((w | below_space | is_quote | is_backslash) & HIGHS) != 0;
}

/* The escape for an ASCII byte that needs one, into out (>= 6 bytes); returns its length. */
static size_t escape_ascii(uint8_t *out, uint8_t c)
{
	static const char hex[] = "0123456789abcdef";
	char short_form = 0;
	switch (c) {
	case '"': short_form = '"'; break;
	case '\\': short_form = '\\'; break;
	case '\b': short_form = 'b'; break;
	case '\f': short_form = 'f'; break;
	case '\n': short_form = 'n'; break;
	case '\r': short_form = 'r'; break;
	case '\t': short_form = 't'; break;
	default: break;
	}
	out[0] = '\\';
	if (short_form) {
		out[1] = (uint8_t)short_form;
		return 2;
	}
	memcpy(out + 1, "u00", 3);
	out[4] = (uint8_t)hex[c >> 4];
	out[5] = (uint8_t)hex[c & 15];
	return 6;
}

sk_err fmt_json_escape(uint8_t *out, size_t cap, const uint8_t *in, size_t n, size_t *used_out)
{
	size_t i = 0, o = 0;
	while (i < n) {
		if (n - i >= 8 && cap - o >= 8) {
			uint64_t w;
			memcpy(&w, in + i, 8);
			if (!word_needs_care(w)) {
				memcpy(out + o, in + i, 8);
				i += 8;
				o += 8;
				continue;
			}
		}
		uint8_t c = in[i];
		if (c >= 0x80) {
			size_t k = utf8_seq_len(in + i, n - i);
			if (k == 0)
				return SK_EINVAL;
			if (cap - o < k)
				return SK_EFULL;
			memcpy(out + o, in + i, k);
			i += k;
			o += k;
		} else if (c < 0x20 || c == '"' || c == '\\') {
			uint8_t esc[6];
			size_t k = escape_ascii(esc, c);
			if (cap - o < k)
				return SK_EFULL;
			memcpy(out + o, esc, k);
			i++;
			o += k;
		} else {
			if (cap - o < 1)
				return SK_EFULL;
			out[o++] = c;
			i++;
		}
	}
	*used_out = o;
	return SK_OK;
}

/* Inlined so that the copies of short literals compile to a few moves. */
static inline sk_err put(struct fmt_buf *b, const void *bytes, size_t n)
{
	if (b->cap - b->len < n)
		return SK_EFULL;
	memcpy(b->data + b->len, bytes, n);
	b->len += n;
	return SK_OK;
}

sk_err fmt_put(struct fmt_buf *b, const void *bytes, size_t n) { return put(b, bytes, n); }

#define FMT_LIT(b, s) put((b), (s), sizeof(s) - 1)

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
				     "25262728293031323334353637383940414243444546474849"
				     "50515253545556575859606162636465666768697071727374"
				     "75767778798081828384858687888990919293949596979899";

/* Decimal digits of v into out (20 bytes), two at a time; returns how many. */
static size_t u64_digits(uint64_t v, uint8_t out[20])
{
	uint8_t tmp[20];
	uint8_t *end = tmp + sizeof(tmp), *p = end;
	while (v >= 100) {
		p -= 2;
		memcpy(p, digit_pairs + (v % 100) * 2, 2);
		v /= 100;
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, digit_pairs + v * 2, 2);
	} else {
		*--p = (uint8_t)('0' + v);
	}
	size_t n = (size_t)(end - p);
	memcpy(out, p, n);
	return n;
}

static sk_err fmt_u64(struct fmt_buf *b, uint64_t v)
{
	uint8_t digits[20];
	return put(b, digits, u64_digits(v, digits));
}

/* Make cache->offset_digits spell offset: +1 in place when it follows the last one. */
static void cache_offset(struct fmt_msg_cache *c, uint64_t offset)
{
	if (!c->have_offset || offset != c->offset + 1 || offset == 0) {
		c->offset_len = (uint8_t)u64_digits(offset, c->offset_digits);
	} else {
		int i = c->offset_len - 1;
		while (i >= 0 && c->offset_digits[i] == '9')
			c->offset_digits[i--] = '0';
		if (i >= 0) {
			c->offset_digits[i]++;
		} else { /* 99 -> 100: one more digit (20 digits hold every u64) */
			assert(c->offset_len < sizeof(c->offset_digits));
			memmove(c->offset_digits + 1, c->offset_digits, c->offset_len);
			c->offset_digits[0] = '1';
			c->offset_len++;
		}
	}
	c->offset = offset;
	c->have_offset = true;
}

/* Make cache->mid spell ,"partition":P,"timestamp_ms":T (one frame's records share T). */
static void cache_mid(struct fmt_msg_cache *c, uint32_t partition, uint64_t timestamp_ms)
{
	if (c->have_mid && c->partition == partition && c->timestamp_ms == timestamp_ms)
		return;
	struct fmt_buf m = {.data = c->mid, .cap = sizeof(c->mid)};
	sk_err err = FMT_LIT(&m, ",\"partition\":");
	err = err ? err : fmt_u64(&m, partition);
	err = err ? err : FMT_LIT(&m, ",\"timestamp_ms\":");
	err = err ? err : fmt_u64(&m, timestamp_ms);
	assert(err == SK_OK); /* 64 bytes hold the longest: 14 + 10 + 16 + 20 */
	c->mid_len = (uint8_t)m.len;
	c->partition = partition;
	c->timestamp_ms = timestamp_ms;
	c->have_mid = true;
}

/* ,"<name>_b64":"<base64>" */
static sk_err fmt_b64_field(struct fmt_buf *b, const char *name, size_t name_len,
			    const uint8_t *in, size_t n)
{
	size_t need = 2 + name_len + 8 + fmt_b64_len(n) + 1;
	if (b->cap - b->len < need)
		return SK_EFULL;
	uint8_t *o = b->data + b->len;
	memcpy(o, ",\"", 2);
	memcpy(o + 2, name, name_len);
	memcpy(o + 2 + name_len, "_b64\":\"", 7);
	o += 2 + name_len + 7;
	o += fmt_b64_encode(o, in, n);
	*o++ = '"';
	b->len = (size_t)(o - b->data);
	return SK_OK;
}

/* ,"<name>":"<escaped>"; falls back to the _b64 field when in is not UTF-8. */
static sk_err fmt_text_field(struct fmt_buf *b, const char *name, size_t name_len,
			     const uint8_t *in, size_t n)
{
	size_t start = b->len;
	if (b->cap - b->len < 2 + name_len + 3)
		return SK_EFULL;
	uint8_t *o = b->data + b->len;
	memcpy(o, ",\"", 2);
	memcpy(o + 2, name, name_len);
	memcpy(o + 2 + name_len, "\":\"", 3);
	b->len += 2 + name_len + 3;
	size_t used = 0;
	sk_err err = fmt_json_escape(b->data + b->len, b->cap - b->len, in, n, &used);
	if (err == SK_EINVAL) {
		b->len = start;
		return fmt_b64_field(b, name, name_len, in, n);
	}
	if (err != SK_OK)
		return err;
	b->len += used;
	return FMT_LIT(b, "\"");
}

static sk_err fmt_field(struct fmt_buf *b, const char *name, size_t name_len, const uint8_t *in,
			size_t n, bool null_when_empty, uint8_t encoding)
{
	if (null_when_empty && n == 0) {
		sk_err err;
		if ((err = FMT_LIT(b, ",\"")) || (err = put(b, name, name_len)))
			return err;
		return encoding == READ_ENC_TEXT ? FMT_LIT(b, "\":null") : FMT_LIT(b, "_b64\":null");
	}
	if (encoding == READ_ENC_TEXT)
		return fmt_text_field(b, name, name_len, in, n);
	return fmt_b64_field(b, name, name_len, in, n);
}

static sk_err fmt_message_fields(struct fmt_buf *b, struct fmt_msg_cache *c, bool first,
				 const struct record_view *rec, uint8_t encoding)
{
	sk_err err;
	if (!first && (err = FMT_LIT(b, ",")) != SK_OK)
		return err;
	if ((err = FMT_LIT(b, "{\"offset\":")) || (err = put(b, c->offset_digits, c->offset_len)) ||
	    (err = put(b, c->mid, c->mid_len)))
		return err;
	if ((err = fmt_field(b, "key", 3, rec->key, rec->key_len, true, encoding)) ||
	    (err = fmt_field(b, "value", 5, rec->value, rec->value_len, false, encoding)))
		return err;
	return FMT_LIT(b, "}");
}

sk_err fmt_message_cached(struct fmt_buf *b, struct fmt_msg_cache *cache, bool first,
			  uint64_t offset, uint32_t partition, uint64_t timestamp_ms,
			  const struct record_view *rec, uint8_t encoding)
{
	cache_offset(cache, offset);
	cache_mid(cache, partition, timestamp_ms);
	size_t start = b->len;
	sk_err err = fmt_message_fields(b, cache, first, rec, encoding);
	if (err != SK_OK)
		b->len = start;
	return err;
}

sk_err fmt_message(struct fmt_buf *b, bool first, uint64_t offset, uint32_t partition,
		   uint64_t timestamp_ms, const struct record_view *rec, uint8_t encoding)
{
	struct fmt_msg_cache cache;
	cache.have_offset = false;
	cache.have_mid = false;
	return fmt_message_cached(b, &cache, first, offset, partition, timestamp_ms, rec, encoding);
}

sk_err fmt_partition(struct fmt_buf *b, bool first, uint32_t partition, uint64_t log_start,
		     uint64_t high_watermark, uint64_t bytes)
{
	size_t start = b->len;
	sk_err err = SK_OK;
	if (!first)
		err = FMT_LIT(b, ",");
	if (err || (err = FMT_LIT(b, "{\"partition\":")) || (err = fmt_u64(b, partition)) ||
	    (err = FMT_LIT(b, ",\"log_start\":")) || (err = fmt_u64(b, log_start)) ||
	    (err = FMT_LIT(b, ",\"high_watermark\":")) || (err = fmt_u64(b, high_watermark)) ||
	    (err = FMT_LIT(b, ",\"bytes\":")) || (err = fmt_u64(b, bytes)) || (err = FMT_LIT(b, "}")))
		b->len = start;
	return err;
}
