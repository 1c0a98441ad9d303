/* One record inside a record-batch frame (and, byte for byte, inside an
 * ingress-ring produce request, so the writer copies it into the journal
 * without re-encoding). Little-endian, packed field by field:
 *
 *   0  u32 len           bytes after this field: 4 + key_len + idem_key_len + value_len
 *   4  u16 key_len       0..SK_KEY_BYTES_MAX
 *   6  u16 idem_key_len  0..SK_IDEM_KEY_BYTES_MAX
 *   8  key, idempotency key, value
 *
 * Records follow each other with no padding. A batch's idempotency key is
 * carried by its first record. */
#ifndef SK_STORE_RECORD_H
#define SK_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sk_error.h"

#define SK_RECORD_HEADER_BYTES 8

struct record_view {
	const uint8_t *key;
	uint32_t key_len;
	const uint8_t *idem_key;
	uint32_t idem_key_len;
	const uint8_t *value;
	uint32_t value_len;
};

/* Bytes one record takes. */
static inline size_t record_encoded_bytes(size_t key_len, size_t idem_len, size_t value_len)
{
	return SK_RECORD_HEADER_BYTES + key_len + idem_len + value_len;
}

/* Write the 8-byte record header for the given lengths into out (caller checked limits). */
void record_encode_header(uint8_t out[SK_RECORD_HEADER_BYTES], uint32_t key_len, uint32_t idem_len,
			  uint32_t value_len);
/* Encode one whole record into out (cap bytes). SK_EINVAL if a length is over its limit,
 * SK_EFULL if cap is too small. *used_out = bytes written. */
sk_err record_encode(uint8_t *out, size_t cap, const struct record_view *rec, size_t *used_out);
/* Decode the record at buf[*pos] within len bytes; every length is checked against the
 * bytes present. On SK_OK *pos moves past it. SK_ECORRUPT otherwise. */
sk_err record_decode(const uint8_t *buf, size_t len, size_t *pos, struct record_view *out);
/* Check that buf holds exactly count well-formed records and nothing else. */
bool record_batch_valid(const uint8_t *buf, size_t len, uint32_t count);

#endif
