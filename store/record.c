/* Record codec. Byte layout (little-endian, packed, no padding between records):
 *
 *   0  u32 len           bytes after this field: 4 + key_len + idem_key_len + value_len
 *   4  u16 key_len       0..SK_KEY_BYTES_MAX
 *   6  u16 idem_key_len  0..SK_IDEM_KEY_BYTES_MAX
 *   8  key, idempotency key, value (value_len = len - 4 - key_len - idem_key_len)
 *
 * A record is valid when: the 8 header bytes are present, len >= 4, key_len and
 * idem_key_len are within their limits, 4 + key_len + idem_key_len <= len, and all
 * len bytes after the len field are present in the buffer. Nothing is read before
 * its length has been checked against the bytes actually present. */
#include "store/record.h"

#include <string.h>

#include "common/bytes.h"
#include "common/sk_limits.h"

void record_encode_header(uint8_t out[SK_RECORD_HEADER_BYTES], uint32_t key_len, uint32_t idem_len,
			  uint32_t value_len)
{
	put_u32(out, 4u + key_len + idem_len + value_len);
	put_u16(out + 4, (uint16_t)key_len);
	put_u16(out + 6, (uint16_t)idem_len);
}

sk_err record_encode(uint8_t *out, size_t cap, const struct record_view *rec, size_t *used_out)
{
	if (rec->key_len > SK_KEY_BYTES_MAX || rec->idem_key_len > SK_IDEM_KEY_BYTES_MAX)
		return SK_EINVAL;
	/* len is a u32: the whole record after the len field must fit in it. */
	uint64_t after_len = 4ull + rec->key_len + rec->idem_key_len + rec->value_len;
	if (after_len > UINT32_MAX)
		return SK_EINVAL;
	size_t total = record_encoded_bytes(rec->key_len, rec->idem_key_len, rec->value_len);
	if (total > cap)
		return SK_EFULL;
	record_encode_header(out, rec->key_len, rec->idem_key_len, rec->value_len);
	uint8_t *p = out + SK_RECORD_HEADER_BYTES;
	/* memcpy with a NULL source is undefined even for 0 bytes. */
	if (rec->key_len)
		memcpy(p, rec->key, rec->key_len);
	p += rec->key_len;
	if (rec->idem_key_len)
		memcpy(p, rec->idem_key, rec->idem_key_len);
	p += rec->idem_key_len;
	if (rec->value_len)
		memcpy(p, rec->value, rec->value_len);
	*used_out = total;
	return SK_OK;
}

sk_err record_decode(const uint8_t *buf, size_t len, size_t *pos, struct record_view *out)
{
	size_t at = *pos;
	if (at > len || len - at < SK_RECORD_HEADER_BYTES)
		return SK_ECORRUPT;
	const uint8_t *p = buf + at;
	uint32_t after_len = get_u32(p);
	uint32_t key_len = get_u16(p + 4);
	uint32_t idem_len = get_u16(p + 6);
	if (after_len < 4 || key_len > SK_KEY_BYTES_MAX || idem_len > SK_IDEM_KEY_BYTES_MAX)
		return SK_ECORRUPT;
	if (4ull + key_len + idem_len > after_len)
		return SK_ECORRUPT;
	if ((uint64_t)after_len > (uint64_t)(len - at - 4))
		return SK_ECORRUPT;
	out->key = p + SK_RECORD_HEADER_BYTES;
	out->key_len = key_len;
	out->idem_key = out->key + key_len;
	out->idem_key_len = idem_len;
	out->value = out->idem_key + idem_len;
	out->value_len = after_len - 4 - key_len - idem_len;
	*pos = at + 4 + (size_t)after_len;
	return SK_OK;
}

bool record_batch_valid(const uint8_t *buf, size_t len, uint32_t count)
{
	size_t pos = 0;
	struct record_view rv;
	for (uint32_t i = 0; i < count; i++)
		if (record_decode(buf, len, &pos, &rv) != SK_OK)
			return false;
	return pos == len;
}
