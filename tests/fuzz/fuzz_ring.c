/* Fuzz target for ring_peek(), the consumer's gate for bytes a producer put in
 * shared memory. Input: byte 0 bit 0 asks for every record's CRC to be fixed up
 * first (as in fuzz_frame), so the checks behind the CRC are reached; bytes 1-2
 * say how far before the end of the data area head sits (x 8), so wrapping,
 * pads and position-only skips are reached; the rest becomes the published
 * bytes from head (tail = head + their length rounded down to 8). Every record
 * ring_peek delivers must lie inside the data area and before tail, have a
 * length within the record max, a correct CRC and a rising sequence; every
 * answer but EAGAIN moves the cursor forwards, never past tail. ASan checks
 * that nothing outside the mapping is read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "ipc/ring.h"

/* White-box offsets of the shared layout (ipc/ring.c's header comment). */
#define FZ_HEADER_PAGE 4096
#define FZ_TAIL_OFFSET 256
#define FZ_CAP (64 * 1024)
#define FZ_REC_MAX 1024

#define FZ_HEAD_OFFSET 384

static int fz_fd = -1;
static uint8_t *fz_raw;

static void fz_setup(void)
{
	if (ring_create(SK_RING_ID_INGRESS, FZ_CAP, FZ_REC_MAX, &fz_fd) != SK_OK)
		abort();
	void *m = mmap(NULL, FZ_HEADER_PAGE + FZ_CAP, PROT_READ | PROT_WRITE, MAP_SHARED, fz_fd, 0);
	if (m == MAP_FAILED)
		abort();
	fz_raw = m;
}

/* Give every record of the chain from head a correct CRC, so the fuzzer gets
 * past the CRC to the length, type, sequence and position checks. */
static void fz_fix_crcs(uint8_t *data, uint64_t head, uint64_t tail)
{
	uint64_t pos = head;
	while (pos <= tail && tail - pos >= SK_RING_RECORD_HEADER_BYTES) {
		uint64_t off = pos & (FZ_CAP - 1), to_end = FZ_CAP - off;
		if (to_end < SK_RING_RECORD_HEADER_BYTES) {
			pos += to_end;
			continue;
		}
		uint8_t *p = data + off;
		uint32_t len = get_u32(p);
		if ((int32_t)get_u32(p + 4) == -1) {
			put_u32(p + 20, crc32c(0, p, 20));
			pos += to_end;
			continue;
		}
		uint64_t rec = (SK_RING_RECORD_HEADER_BYTES + (uint64_t)len + 7) & ~(uint64_t)7;
		if (len > FZ_REC_MAX || rec > to_end || rec > tail - pos)
			return;
		put_u32(p + 20, crc32c(crc32c(0, p, 20), p + 24, len));
		pos += rec;
	}
}

/* Check one delivered record against everything ring_peek promises. The
 * consumer has its own mapping, so positions are compared as offsets: the
 * record lies wholly inside the data area, ends at end_cursor <= tail, and its
 * payload pointer is at the same offset from one mapping base for every record. */
static void fz_check(const struct ring_rec *rec, uint64_t tail, uint64_t *last_seq,
		     const uint8_t **base)
{
	const uint8_t *data = fz_raw + FZ_HEADER_PAGE;
	if (rec->len > FZ_REC_MAX || rec->end_cursor > tail || rec->seq <= *last_seq)
		abort();
	uint64_t bytes = (SK_RING_RECORD_HEADER_BYTES + (uint64_t)rec->len + 7) & ~(uint64_t)7;
	uint64_t off = (rec->end_cursor - bytes) & (FZ_CAP - 1);
	if (off + bytes > FZ_CAP)
		abort(); /* a record never crosses the end */
	const uint8_t *b = rec->payload - SK_RING_RECORD_HEADER_BYTES - off;
	if (*base && b != *base)
		abort();
	*base = b;
	const uint8_t *hdr = data + off;
	if (get_u32(hdr) != rec->len || get_u64(hdr + 8) != rec->seq ||
	    get_u32(hdr + 16) != rec->epoch)
		abort();
	if (memcmp(rec->payload, hdr + SK_RING_RECORD_HEADER_BYTES, rec->len) != 0)
		abort();
	if (crc32c(crc32c(0, hdr, 20), hdr + SK_RING_RECORD_HEADER_BYTES, rec->len) !=
	    get_u32(hdr + 20))
		abort();
	*last_seq = rec->seq;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	if (fz_fd < 0)
		fz_setup();
	if (size < 3)
		return 0;
	/* Byte 0: bit 0 = fix up CRCs. Bytes 1-2: how far before the end head sits (x 8). */
	uint64_t back = (uint64_t)get_u16(in + 1) * 8 % FZ_CAP;
	uint64_t head = 5 * (uint64_t)FZ_CAP - back;
	size_t n = (size - 3) & ~(size_t)7;
	if (n > FZ_CAP)
		n = FZ_CAP;
	uint8_t *data = fz_raw + FZ_HEADER_PAGE;
	for (size_t i = 0; i < n; i++)
		data[(head + i) & (FZ_CAP - 1)] = in[3 + i];
	uint64_t tail = head + n;
	if (in[0] & 1)
		fz_fix_crcs(data, head, tail);
	put_u64(fz_raw + FZ_HEAD_OFFSET, head);
	put_u64(fz_raw + FZ_TAIL_OFFSET, tail);
	ring *cons;
	if (ring_attach(fz_fd, SK_RING_ID_INGRESS, RING_CONSUMER, -1, -1, &cons) != SK_OK)
		abort();

	uint64_t cursor = head, last_seq = 0;
	const uint8_t *base = NULL;
	for (int i = 0; i <= FZ_CAP / 8; i++) {
		struct ring_rec rec;
		uint64_t before = cursor;
		sk_err err = ring_peek(cons, &cursor, &rec);
		if (err == SK_EAGAIN)
			break;
		if (cursor <= before || cursor > tail)
			abort(); /* every answer but EAGAIN makes progress, never past tail */
		if (err == SK_OK)
			fz_check(&rec, tail, &last_seq, &base);
		else if (err != SK_ECORRUPT)
			abort();
	}
	if (cursor != tail)
		abort();
	ring_release(cons, tail);
	ring_detach(cons);
	return 0;
}

static size_t fz_put_record(uint8_t *p, uint32_t len, int32_t type, uint64_t seq)
{
	size_t bytes = (SK_RING_RECORD_HEADER_BYTES + len + 7) & ~(size_t)7;
	memset(p, 0, bytes);
	put_u32(p, len);
	put_u32(p + 4, (uint32_t)type);
	put_u64(p + 8, seq);
	for (uint32_t i = 0; i < len && type == 1; i++)
		p[SK_RING_RECORD_HEADER_BYTES + i] = (uint8_t)('a' + i % 26);
	return bytes;
}

/* Seeds (CRCs fixed up by mode bit 0): records in the middle of the area;
 * 32 bytes before the end, so a pad comes first; 16 bytes before the end, so
 * those bytes are skipped by position alone. */
size_t sk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	static const uint16_t backs[] = {4096, 4, 2};
	if (i >= sizeof(backs) / sizeof(backs[0]) || cap < 512)
		return 0;
	buf[0] = 1;
	put_u16(buf + 1, backs[i]);
	size_t n = 3;
	if (i == 1)
		n += fz_put_record(buf + n, 8, -1, 0); /* pad: 24 + 8 = the 32 bytes to the end */
	if (i == 2) {
		memset(buf + n, 0, 16);
		n += 16;
	}
	n += fz_put_record(buf + n, 50, 1, 10);
	n += fz_put_record(buf + n, 0, 1, 11);
	n += fz_put_record(buf + n, 100, 1, 12);
	return n;
}
