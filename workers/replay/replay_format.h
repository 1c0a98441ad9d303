/* JSON formatting for the replay worker's replies: the "messages" array of a
 * consume and the "partitions" array of a topic, written straight into one
 * reused buffer (no JSON library objects per record).
 *
 * A message is
 *   {"offset":N,"partition":P,"timestamp_ms":T,<key>,<value>}
 * where, with encoding base64, <key> is "key_b64":"<base64>" and <value> is
 * "value_b64":"<base64>" (RFC 4648 standard alphabet, with padding); with
 * encoding text, <key> is "key":"<JSON string>" and <value> is
 * "value":"<JSON string>", except that a key or value that is not valid UTF-8 is
 * written as "key_b64"/"value_b64" for that message instead: text never cuts or
 * alters bytes. A record without a key has "key":null (text) or "key_b64":null
 * (base64). */
#ifndef SK_REPLAY_FORMAT_H
#define SK_REPLAY_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sk_error.h"
#include "common/sk_limits.h"
#include "store/record.h"

/* Largest JSON body of one read reply (the http side's NNG_OPT_RECVMAXSZ follows
 * from it). A consume stops before the record that would not fit, but the first
 * record must always fit, in base64 at worst: a whole frame of value, a key, and
 * the fixed fields. Text can take up to 6 bytes per input byte (\u00XX); a first
 * record whose text does not fit is sent in base64 instead. */
#define REPLAY_BODY_BYTES_MAX ((size_t)96 * 1024 * 1024)
_Static_assert(REPLAY_BODY_BYTES_MAX >= (SK_FRAME_BYTES_MAX / 3 + 1) * 4 +
					       (SK_KEY_BYTES_MAX / 3 + 1) * 4 + 256,
	       "one base64 record of the largest frame must fit in a reply");

/* A bounded output buffer: data[0 .. len) is written, cap is fixed by the owner. */
struct fmt_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* Bytes base64 takes for n input bytes (with padding). */
static inline size_t fmt_b64_len(size_t n) { return (n + 2) / 3 * 4; }

/* Base64 (standard alphabet, padded) of in[0..n) into out (fmt_b64_len(n) bytes);
 * returns the bytes written. */
size_t fmt_b64_encode(uint8_t *out, const uint8_t *in, size_t n);

/* True when in[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool fmt_utf8_valid(const uint8_t *in, size_t n);

/* Write in[0..n) as the inside of a JSON string (no quotes) into out (cap bytes):
 * '"' and '\\' escaped, control bytes as \b \f \n \r \t or \u00XX, everything else
 * copied. SK_EINVAL when in is not valid UTF-8, SK_EFULL when cap is too small;
 * *used_out is set only on SK_OK. */
sk_err fmt_json_escape(uint8_t *out, size_t cap, const uint8_t *in, size_t n, size_t *used_out);

/* Digits that repeat from one message of a reply to the next, kept so that a run of
 * records costs almost no number formatting: the running offset (incremented in
 * place) and the ,"partition":P,"timestamp_ms":T part of the current frame.
 * Zero-initialise it before the first message of a reply. */
struct fmt_msg_cache {
	bool have_offset;
	uint8_t offset_len;
	uint64_t offset;
	uint8_t offset_digits[20];
	bool have_mid;
	uint8_t mid_len;
	uint32_t partition;
	uint64_t timestamp_ms;
	uint8_t mid[64];
};

/* Append one message (preceded by ',' unless first) in encoding (enum read_encoding).
 * SK_EFULL when it does not fit; b->len is then unchanged. */
sk_err fmt_message(struct fmt_buf *b, bool first, uint64_t offset, uint32_t partition,
		   uint64_t timestamp_ms, const struct record_view *rec, uint8_t encoding);
/* The same bytes as fmt_message, reusing digits kept in cache (see above). */
sk_err fmt_message_cached(struct fmt_buf *b, struct fmt_msg_cache *cache, bool first,
			  uint64_t offset, uint32_t partition, uint64_t timestamp_ms,
			  const struct record_view *rec, uint8_t encoding);

/* Append {"partition":P,"log_start":L,"high_watermark":H,"bytes":B} (',' unless first).
 * SK_EFULL when it does not fit; b->len is then unchanged. */
sk_err fmt_partition(struct fmt_buf *b, bool first, uint32_t partition, uint64_t log_start,
		     uint64_t high_watermark, uint64_t bytes);

/* Append one byte / bytes. SK_EFULL leaves b unchanged. */
sk_err fmt_put(struct fmt_buf *b, const void *bytes, size_t n);

#endif
