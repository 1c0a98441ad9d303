/* Tests of the shared-memory ring (ipc/ring.c): codecs of the record layout,
 * wrap-around and padding, back-pressure, re-attach of either side, hostile
 * bytes in the shared memory, the eventfd handshake, and a producer SIGKILLed
 * thousands of times mid-record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "ipc/ring.h"

/* White-box offsets of the shared layout (ring.c's header comment). */
#define T_HEADER_PAGE 4096
#define T_TAIL_OFFSET 256
#define T_NEXT_SEQ_OFFSET 272

#define T_CAP (64 * 1024)
#define T_REC_MAX 4096

struct fixture {
	int memfd;
	int efd_data;
	int efd_space;
	ring *prod;
	ring *cons;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Payload bytes are a function of (seq, index), so any byte can be checked. */
static uint8_t payload_byte(uint64_t mixed_seq, size_t i)
{
	return (uint8_t)(mixed_seq >> ((i & 7) * 8)) ^ (uint8_t)i;
}

static void fill_payload(uint8_t *buf, uint64_t seq, size_t len)
{
	uint64_t m = mix64(seq);
	for (size_t i = 0; i < len; i++)
		buf[i] = payload_byte(m, i);
}

static bool payload_ok(const uint8_t *buf, uint64_t seq, size_t len)
{
	uint64_t m = mix64(seq);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != payload_byte(m, i))
			return false;
	return true;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void fixture_open(struct fixture *f, uint64_t cap, uint32_t rec_max)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(ring_create(SK_RING_ID_INGRESS, cap, rec_max, &f->memfd), SK_OK);
	f->efd_data = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	f->efd_space = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(f->efd_data >= 0 && f->efd_space >= 0);
	assert_int_equal(ring_set_side(f->memfd, RING_PRODUCER, getpid()), SK_OK);
	assert_int_equal(ring_set_side(f->memfd, RING_CONSUMER, getpid()), SK_OK);
	assert_int_equal(ring_attach(f->memfd, SK_RING_ID_INGRESS, RING_PRODUCER, f->efd_data,
				     f->efd_space, &f->prod),
			 SK_OK);
	assert_int_equal(ring_attach(f->memfd, SK_RING_ID_INGRESS, RING_CONSUMER, f->efd_data,
				     f->efd_space, &f->cons),
			 SK_OK);
}

static void fixture_close(struct fixture *f)
{
	ring_detach(f->prod);
	ring_detach(f->cons);
	close(f->efd_data);
	close(f->efd_space);
	close(f->memfd);
}

static sk_err push_seq_payload(ring *r, size_t len, uint64_t *seq_out)
{
	static uint8_t buf[T_REC_MAX * 4];
	uint64_t seq = ring_next_seq(r);
	fill_payload(buf, seq, len);
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	sk_err err = ring_push(r, &iov, 1, seq_out);
	if (err == SK_OK)
		assert_int_equal(*seq_out, seq);
	return err;
}

/* Peek one record and check its payload against its sequence. */
static void expect_record(ring *r, uint64_t *cursor, uint64_t seq, size_t len)
{
	struct ring_rec rec;
	assert_int_equal(ring_peek(r, cursor, &rec), SK_OK);
	assert_int_equal(rec.seq, seq);
	assert_int_equal(rec.len, len);
	assert_true(payload_ok(rec.payload, seq, len));
	assert_int_equal(rec.end_cursor, *cursor);
}

static bool fd_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static uint8_t *map_raw(int memfd)
{
	void *m = mmap(NULL, T_HEADER_PAGE + T_CAP, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	assert_true(m != MAP_FAILED);
	return m;
}

/* ---- must reject ---- */

static void test_ring_create_rejects_bad_sizes(void **state)
{
	int fd;
	assert_int_equal(ring_create(1, T_CAP + 8, 64, &fd), SK_EINVAL);  /* not a power of two */
	assert_int_equal(ring_create(1, 32 * 1024, 64, &fd), SK_EINVAL);  /* below the minimum */
	assert_int_equal(ring_create(1, 1ull << 31, 64, &fd), SK_EINVAL); /* above the maximum */
	assert_int_equal(ring_create(1, T_CAP, T_CAP / 4 + 1, &fd), SK_EINVAL); /* record too big */
	assert_int_equal(ring_create(1, T_CAP, 0, &fd), SK_EINVAL);
	assert_int_equal(ring_create(0, T_CAP, 64, &fd), SK_EINVAL); /* no ring id */
	assert_int_equal(ring_create(1, T_CAP, T_CAP / 4, &fd), SK_OK);
	close(fd);
}

static void test_ring_attach_rejects_wrong_id_magic_version_and_unsealed(void **state)
{
	int fd;
	ring *r;
	assert_int_equal(ring_create(SK_RING_ID_INGRESS, T_CAP, 64, &fd), SK_OK);
	assert_int_equal(ring_attach(fd, SK_RING_ID_COMPLETION, RING_CONSUMER, -1, -1, &r),
			 SK_ECORRUPT);
	assert_int_equal(ring_attach(fd, SK_RING_ID_INGRESS, 7, -1, -1, &r), SK_EINVAL);
	uint8_t *raw = map_raw(fd);
	raw[8] = 2; /* version */
	assert_int_equal(ring_attach(fd, SK_RING_ID_INGRESS, RING_CONSUMER, -1, -1, &r),
			 SK_EVERSION);
	raw[8] = 1;
	raw[0] ^= 0xff; /* magic */
	assert_int_equal(ring_attach(fd, SK_RING_ID_INGRESS, RING_CONSUMER, -1, -1, &r),
			 SK_ECORRUPT);
	assert_int_equal(ring_set_side(fd, RING_PRODUCER, 1), SK_ECORRUPT);
	raw[0] ^= 0xff;
	assert_int_equal(ring_attach(fd, SK_RING_ID_INGRESS, RING_CONSUMER, -1, -1, &r), SK_OK);
	ring_detach(r);
	munmap(raw, T_HEADER_PAGE + T_CAP);
	close(fd);

	/* A memfd of the right size and contents but without seals is refused. */
	int plain = memfd_create("plain", MFD_CLOEXEC);
	assert_true(plain >= 0);
	assert_int_equal(ftruncate(plain, T_HEADER_PAGE + T_CAP), 0);
	assert_int_equal(ring_create(SK_RING_ID_INGRESS, T_CAP, 64, &fd), SK_OK);
	uint8_t page[T_HEADER_PAGE];
	assert_int_equal(pread(fd, page, sizeof(page), 0), (ssize_t)sizeof(page));
	assert_int_equal(pwrite(plain, page, sizeof(page), 0), (ssize_t)sizeof(page));
	assert_int_equal(ring_attach(plain, SK_RING_ID_INGRESS, RING_CONSUMER, -1, -1, &r),
			 SK_EINVAL);
	close(plain);
	close(fd);
}

static void test_ring_push_rejects_records_over_the_limit(void **state)
{
	struct fixture f;
	fixture_open(&f, T_CAP, 100);
	static uint8_t buf[200];
	struct iovec iov[2] = {{buf, 60}, {buf, 41}};
	uint64_t seq;
	assert_int_equal(ring_push(f.prod, iov, 2, &seq), SK_EINVAL);
	assert_int_equal(ring_push(f.prod, iov, -1, &seq), SK_EINVAL);
	iov[1].iov_len = 40;
	assert_int_equal(ring_push(f.prod, iov, 2, &seq), SK_OK);
	assert_int_equal(seq, 1);
	fixture_close(&f);
}

/* ---- behaviour ---- */

static void test_ring_round_trip_gathers_iovecs_into_one_record(void **state)
{
	struct fixture f;
	fixture_open(&f, T_CAP, T_REC_MAX);
	uint64_t cursor = ring_head(f.cons);
	struct ring_rec rec;
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_EAGAIN);

	struct iovec iov[3] = {{"hello, ", 7}, {"", 0}, {"ring", 4}};
	uint64_t seq;
	assert_int_equal(ring_push(f.prod, iov, 3, &seq), SK_OK);
	assert_int_equal(seq, 1);
	assert_int_equal(ring_push(f.prod, NULL, 0, &seq), SK_OK); /* an empty record is a record */
	assert_int_equal(seq, 2);
	assert_int_equal(ring_next_seq(f.prod), 3);
	assert_int_equal(ring_depth_bytes(f.cons), 40 + 24);

	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_OK);
	assert_int_equal(rec.seq, 1);
	assert_int_equal(rec.len, 11);
	assert_memory_equal(rec.payload, "hello, ring", 11);
	assert_int_equal(cursor, 40);
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_OK);
	assert_int_equal(rec.seq, 2);
	assert_int_equal(rec.len, 0);
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_EAGAIN);
	assert_int_equal(ring_head(f.cons), 0); /* peeking releases nothing */
	ring_release(f.cons, cursor);
	assert_int_equal(ring_head(f.cons), 64);
	assert_int_equal(ring_depth_bytes(f.cons), 0);
	assert_int_equal(ring_free_bytes(f.prod), T_CAP);

	ring_set_durable_seq(f.cons, 2);
	assert_int_equal(ring_durable_seq(f.prod), 2);
	fixture_close(&f);
}

/* For many record sizes, run the ring through several wraps with the consumer
 * lagging by a varying amount, so pads and position-only skips of every
 * remainder occur; every record comes back whole and in order. */
static void test_ring_wraps_and_pads_at_many_record_sizes(void **state)
{
	static const size_t sizes[] = {0,    1,	   7,	 8,    9,    15,   16,	 17,   23,  24,
				       25,   40,   63,	 64,   65,   100,  127,	 128,  250, 500,
				       1000, 1024, 1500, 2047, 2048, 3000, 4000, 4095, 4096};
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		struct fixture f;
		fixture_open(&f, T_CAP, T_REC_MAX);
		uint64_t cursor = ring_head(f.cons);
		uint64_t want = 1;
		uint64_t pushed = 0;
		/* Alternate the size with size+8 .. so the tail lands on many offsets. */
		for (int round = 0; round < 100000 && ring_head(f.cons) < 5 * (uint64_t)T_CAP;
		     round++) {
			int burst = 1 + (round * 7) % 13;
			for (int i = 0; i < burst; i++) {
				size_t len = sizes[si] + (size_t)((pushed * 8) % 24);
				if (len > T_REC_MAX)
					len = T_REC_MAX;
				uint64_t seq;
				if (push_seq_payload(f.prod, len, &seq) != SK_OK)
					break;
				pushed++;
			}
			int take = 1 + (round * 5) % 11;
			for (int i = 0; i < take; i++) {
				struct ring_rec rec;
				sk_err err = ring_peek(f.cons, &cursor, &rec);
				if (err == SK_EAGAIN)
					break;
				assert_int_equal(err, SK_OK);
				assert_int_equal(rec.seq, want);
				assert_true(payload_ok(rec.payload, rec.seq, rec.len));
				want++;
				ring_release(f.cons, cursor);
			}
		}
		assert_true(ring_head(f.cons) >= 3 * (uint64_t)T_CAP); /* really wrapped */
		fixture_close(&f);
	}
}

/* When fewer bytes than a pad header remain before the end, both sides skip
 * them by position alone. */
static void test_ring_skips_an_end_too_short_for_a_pad(void **state)
{
	struct fixture f;
	fixture_open(&f, T_CAP, T_REC_MAX);
	uint64_t cursor = ring_head(f.cons);
	uint64_t seq;
	for (uint64_t s = 1; s <= 63; s++) {
		assert_int_equal(push_seq_payload(f.prod, 1000, &seq), SK_OK);
		expect_record(f.cons, &cursor, s, 1000);
	}
	assert_int_equal(push_seq_payload(f.prod, 984, &seq), SK_OK); /* ends 16 bytes short */
	expect_record(f.cons, &cursor, 64, 984);
	assert_int_equal(cursor, T_CAP - 16);
	ring_release(f.cons, cursor);
	assert_int_equal(push_seq_payload(f.prod, 5, &seq), SK_OK);
	expect_record(f.cons, &cursor, 65, 5);
	assert_int_equal(cursor, T_CAP + 32);
	ring_release(f.cons, cursor);
	assert_int_equal(ring_free_bytes(f.prod), T_CAP);
	fixture_close(&f);
}

static void test_ring_full_returns_efull_until_space_is_released(void **state)
{
	struct fixture f;
	fixture_open(&f, T_CAP, T_REC_MAX);
	uint64_t seq = 0;
	int pushed = 0;
	while (pushed < 100000 && push_seq_payload(f.prod, 1000, &seq) == SK_OK)
		pushed++;
	assert_int_equal(pushed, T_CAP / 1024); /* 1000 + 24 bytes each */
	assert_int_equal(push_seq_payload(f.prod, 1000, &seq), SK_EFULL);
	assert_int_equal(push_seq_payload(f.prod, 0, &seq), SK_EFULL);
	assert_int_equal(ring_free_bytes(f.prod), 0);
	assert_int_equal(ring_next_seq(f.prod), (uint64_t)pushed + 1); /* EFULL used no sequence */

	uint64_t cursor = ring_head(f.cons);
	expect_record(f.cons, &cursor, 1, 1000);
	assert_int_equal(push_seq_payload(f.prod, 1000, &seq),
			 SK_EFULL); /* peeked is not released */
	ring_release(f.cons, cursor);
	assert_int_equal(ring_free_bytes(f.prod), 1024);
	assert_int_equal(push_seq_payload(f.prod, 1000, &seq), SK_OK);
	assert_int_equal(seq, (uint64_t)pushed + 1);
	for (uint64_t s = 2; s <= seq; s++)
		expect_record(f.cons, &cursor, s, 1000);
	fixture_close(&f);
}

static void test_ring_sequences_keep_rising_across_a_new_producer_epoch(void **state)
{
	struct fixture f;
	fixture_open(&f, T_CAP, T_REC_MAX);
	uint64_t seq;
	for (int i = 0; i < 3; i++)
		assert_int_equal(push_seq_payload(f.prod, 50, &seq), SK_OK);
	ring_detach(f.prod);
	assert_int_equal(ring_set_side(f.memfd, RING_PRODUCER, getpid()), SK_OK);
	assert_int_equal(ring_attach(f.memfd, SK_RING_ID_INGRESS, RING_PRODUCER, f.efd_data,
				     f.efd_space, &f.prod),
			 SK_OK);
	assert_int_equal(ring_next_seq(f.prod), 4);
	for (int i = 0; i < 3; i++)
		assert_int_equal(push_seq_payload(f.prod, 50, &seq), SK_OK);
	assert_int_equal(seq, 6);

	uint64_t cursor = ring_head(f.cons);
	uint32_t first_epoch = 0;
	for (uint64_t s = 1; s <= 6; s++) {
		struct ring_rec rec;
		assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_OK);
		assert_int_equal(rec.seq, s);
		if (s == 1)
			first_epoch = rec.epoch;
		assert_int_equal(rec.epoch, s <= 3 ? first_epoch : first_epoch + 1);
	}
	fixture_close(&f);
}

static void test_ring_consumer_reattach_rereads_unreleased_records(void **state)
{
	struct fixture f;
	fixture_open(&f, T_CAP, T_REC_MAX);
	uint64_t seq;
	for (int i = 0; i < 5; i++)
		assert_int_equal(push_seq_payload(f.prod, 30, &seq), SK_OK);
	uint64_t cursor = ring_head(f.cons);
	uint64_t after_two = 0;
	for (uint64_t s = 1; s <= 5; s++) {
		expect_record(f.cons, &cursor, s, 30);
		if (s == 2)
			after_two = cursor;
	}
	ring_set_durable_seq(f.cons, 2);
	ring_release(f.cons, after_two);
	ring_detach(f.cons); /* "crash" before releasing 3..5 */

	assert_int_equal(ring_set_side(f.memfd, RING_CONSUMER, getpid()), SK_OK);
	assert_int_equal(ring_attach(f.memfd, SK_RING_ID_INGRESS, RING_CONSUMER, f.efd_data,
				     f.efd_space, &f.cons),
			 SK_OK);
	assert_int_equal(ring_head(f.cons), after_two);
	assert_int_equal(ring_durable_seq(f.cons), 2);
	cursor = ring_head(f.cons);
	for (uint64_t s = 3; s <= 5; s++)
		expect_record(f.cons, &cursor, s, 30);

	/* A consumer may also go back to head within one attach and read again. */
	cursor = ring_head(f.cons);
	for (uint64_t s = 3; s <= 5; s++)
		expect_record(f.cons, &cursor, s, 30);
	fixture_close(&f);
}

/* Read everything from head; return how many records were delivered and
 * how many were reported corrupt. Every delivered record must be an original. */
static void drain_checked(ring *cons, const uint64_t *lens, uint64_t nrec, int *ok, int *bad,
			  bool *seen)
{
	uint64_t cursor = ring_head(cons);
	*ok = 0;
	*bad = 0;
	for (int i = 0; i < 1000; i++) {
		struct ring_rec rec;
		sk_err err = ring_peek(cons, &cursor, &rec);
		if (err == SK_EAGAIN)
			return;
		if (err == SK_ECORRUPT) {
			(*bad)++;
			continue;
		}
		assert_int_equal(err, SK_OK);
		assert_true(rec.seq >= 1 && rec.seq <= nrec);
		assert_int_equal(rec.len, lens[rec.seq - 1]);
		assert_true(payload_ok(rec.payload, rec.seq, rec.len));
		assert_false(seen[rec.seq - 1]);
		seen[rec.seq - 1] = true;
		(*ok)++;
	}
	fail_msg("drain did not reach tail");
}

/* Flip each bit position class of every byte of a few published records (one
 * of them right after a pad) in shared memory: the damaged record is reported
 * SK_ECORRUPT and never delivered; the others still are, unless the damage hit
 * a length or type (then the rest up to tail is skipped, never misread). */
static void test_ring_corrupt_bytes_are_reported_and_never_delivered(void **state)
{
	struct fixture f;
	fixture_open(&f, T_CAP, T_REC_MAX);
	uint64_t seq;
	/* Move the cursors close to the end so the records below wrap with a pad. */
	uint64_t cursor = ring_head(f.cons);
	for (int i = 0; i < 63; i++) {
		assert_int_equal(push_seq_payload(f.prod, 1000, &seq), SK_OK);
		struct ring_rec rec;
		assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_OK);
		ring_release(f.cons, cursor);
	}
	uint64_t base_seq = ring_next_seq(f.prod);
	const size_t lens[] = {13, 0, 1000, 40, 1200}; /* 1000 does not fit before the end: pad */
	uint64_t all_lens[70] = {0};
	for (int i = 0; i < 63; i++)
		all_lens[i] = 1000;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(push_seq_payload(f.prod, lens[i], &seq), SK_OK);
		all_lens[seq - 1] = lens[i];
	}
	uint64_t head = ring_head(f.cons);
	uint64_t tail = head + ring_depth_bytes(f.cons);
	/* Where each record's checked bytes (header and payload) are. */
	uint64_t rec_start[5], rec_end[5], rec_seq[5];
	cursor = head;
	for (int i = 0; i < 5; i++) {
		struct ring_rec rec;
		assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_OK);
		rec_start[i] = rec.end_cursor - ((24 + rec.len + 7) & ~7u);
		rec_end[i] = rec_start[i] + 24 + rec.len;
		rec_seq[i] = rec.seq;
	}
	assert_true(rec_start[2] > rec_end[1]); /* a pad between them */
	uint8_t *raw = map_raw(f.memfd);
	uint8_t *data = raw + T_HEADER_PAGE;
	int flips = 0;
	for (uint64_t pos = head; pos < tail; pos++) {
		uint8_t *byte = data + (pos & (T_CAP - 1));
		for (int bit = 0; bit < 8; bit += 3) {
			*byte ^= (uint8_t)(1u << bit);
			ring_detach(f.cons);
			assert_int_equal(ring_attach(f.memfd, SK_RING_ID_INGRESS, RING_CONSUMER, -1,
						     -1, &f.cons),
					 SK_OK);
			bool seen[70] = {false};
			int ok, bad;
			drain_checked(f.cons, all_lens, base_seq + 4, &ok, &bad, seen);
			*byte ^= (uint8_t)(1u << bit);
			/* Zero padding after a payload and a pad's body are outside any CRC. */
			if (bad == 0)
				assert_int_equal(ok, 5);
			for (int i = 0; i < 5; i++) {
				if (pos >= rec_start[i] && pos < rec_end[i]) {
					assert_true(bad >= 1);
					assert_false(seen[rec_seq[i] - 1]);
				}
			}
			flips++;
		}
	}
	assert_true(flips > 0);

	/* Undamaged again: all five come back. */
	bool seen[70] = {false};
	int ok, bad;
	drain_checked(f.cons, all_lens, base_seq + 4, &ok, &bad, seen);
	assert_int_equal(ok, 5);
	assert_int_equal(bad, 0);
	munmap(raw, T_HEADER_PAGE + T_CAP);
	fixture_close(&f);
}

/* Every single-bit flip of a record's header fields or payload is caught, and
 * a payload, sequence or CRC flip costs that record only. */
static void test_ring_damaged_record_is_skipped_and_the_next_delivered(void **state)
{
	struct fixture f;
	fixture_open(&f, T_CAP, T_REC_MAX);
	uint64_t seq;
	assert_int_equal(push_seq_payload(f.prod, 37, &seq), SK_OK); /* 24 + 37 -> 64 bytes */
	assert_int_equal(push_seq_payload(f.prod, 37, &seq), SK_OK);
	uint8_t *raw = map_raw(f.memfd);
	uint8_t *data = raw + T_HEADER_PAGE;
	/* Bytes 8..23 (seq, epoch, crc) and 24..60 (payload) of record 1. */
	for (int pos = 8; pos < 24 + 37; pos++) {
		for (int bit = 0; bit < 8; bit++) {
			data[pos] ^= (uint8_t)(1u << bit);
			uint64_t cursor = ring_head(f.cons);
			struct ring_rec rec;
			sk_err err = ring_peek(f.cons, &cursor, &rec);
			data[pos] ^= (uint8_t)(1u << bit);
			assert_int_equal(err, SK_ECORRUPT);
			assert_int_equal(cursor, 64); /* moved past it by its (intact) length */
			expect_record(f.cons, &cursor, 2, 37);
		}
	}
	/* A length past the record max, or past tail: cursor goes to tail. */
	put_u32(data, T_REC_MAX + 1);
	uint64_t cursor = 0;
	struct ring_rec rec;
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_ECORRUPT);
	assert_int_equal(cursor, 128);
	put_u32(data, 200);
	cursor = 0;
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_ECORRUPT);
	assert_int_equal(cursor, 128);
	put_u32(data, 37);
	put_u32(data + 4, 2); /* unknown type */
	cursor = 0;
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_ECORRUPT);
	put_u32(data + 4, 1);

	/* A replayed (non-rising) sequence is refused even with a good CRC. */
	put_u64(data + 64 + 8, 1);
	put_u32(data + 64 + 20, crc32c(crc32c(0, data + 64, 20), data + 64 + 24, 37));
	cursor = 0;
	expect_record(f.cons, &cursor, 1, 37);
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_ECORRUPT);
	assert_int_equal(cursor, 128);
	put_u64(data + 64 + 8, 2);
	put_u32(data + 64 + 20, crc32c(crc32c(0, data + 64, 20), data + 64 + 24, 37));

	/* A tail more than capacity past head: reported, cursor unchanged, nothing read. */
	uint64_t real_tail = get_u64(raw + T_TAIL_OFFSET);
	put_u64(raw + T_TAIL_OFFSET, T_CAP + 64);
	ring_detach(f.cons);
	assert_int_equal(ring_attach(f.memfd, SK_RING_ID_INGRESS, RING_CONSUMER, -1, -1, &f.cons),
			 SK_ECORRUPT);
	put_u64(raw + T_TAIL_OFFSET, real_tail);
	assert_int_equal(ring_attach(f.memfd, SK_RING_ID_INGRESS, RING_CONSUMER, -1, -1, &f.cons),
			 SK_OK);
	cursor = ring_head(f.cons);
	expect_record(f.cons, &cursor, 1, 37);
	expect_record(f.cons, &cursor, 2, 37);
	put_u64(raw + T_TAIL_OFFSET, real_tail + T_CAP);
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_ECORRUPT);
	assert_int_equal(cursor, 128);
	put_u64(raw + T_TAIL_OFFSET, real_tail - 64); /* tail moved backwards */
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_ECORRUPT);
	assert_int_equal(cursor, 128);
	put_u64(raw + T_TAIL_OFFSET, real_tail);
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_EAGAIN);
	/* A cursor the ring never handed out is the caller's bug. */
	cursor = 3;
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_EINVAL);
	cursor = real_tail + 8;
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_EINVAL);
	munmap(raw, T_HEADER_PAGE + T_CAP);
	fixture_close(&f);
}

static void test_ring_quiet_pushes_wake_a_waiting_consumer_once(void **state)
{
	struct fixture f;
	fixture_open(&f, T_CAP, T_REC_MAX);
	uint64_t cursor = ring_head(f.cons), seq;
	ring_wait_prepare(f.cons);
	uint8_t payload[16] = {0};
	struct iovec iov = {.iov_base = payload, .iov_len = sizeof(payload)};
	for (int i = 0; i < 3; i++)
		assert_int_equal(ring_push_quiet(f.prod, &iov, 1, &seq), SK_OK);
	/* Published but unannounced: the sleeping consumer is not woken yet. */
	assert_false(fd_readable(f.efd_data));
	ring_wake_consumer(f.prod);
	assert_true(fd_readable(f.efd_data));
	ring_wait_done(f.cons);
	struct ring_rec rec;
	for (uint64_t i = 1; i <= 3; i++) {
		assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_OK);
		assert_int_equal(rec.seq, i);
	}
	ring_release(f.cons, cursor);
	/* Nobody waits: the wake call makes no wake-up. */
	assert_int_equal(ring_push_quiet(f.prod, &iov, 1, &seq), SK_OK);
	ring_wake_consumer(f.prod);
	assert_false(fd_readable(f.efd_data));
	fixture_close(&f);
}

static void test_ring_eventfd_handshake_wakes_each_side(void **state)
{
	struct fixture f;
	fixture_open(&f, T_CAP, T_REC_MAX);
	uint64_t seq;
	/* Nobody waits: a push makes no wake-up (no system call). */
	assert_int_equal(push_seq_payload(f.prod, 10, &seq), SK_OK);
	assert_false(fd_readable(f.efd_data));
	uint64_t cursor = ring_head(f.cons);
	expect_record(f.cons, &cursor, 1, 10);
	ring_release(f.cons, cursor);

	/* Consumer: prepare, re-check (nothing), sleep; a push makes the fd readable. */
	assert_int_equal(ring_wait_fd(f.cons), f.efd_data);
	ring_wait_prepare(f.cons);
	struct ring_rec rec;
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_EAGAIN);
	assert_false(fd_readable(f.efd_data));
	assert_int_equal(push_seq_payload(f.prod, 10, &seq), SK_OK);
	assert_true(fd_readable(f.efd_data));
	ring_wait_done(f.cons);
	assert_false(fd_readable(f.efd_data));
	expect_record(f.cons, &cursor, 2, 10);
	ring_release(f.cons, cursor);

	/* Producer: fill, prepare, re-check (still full); a release wakes it. */
	while (push_seq_payload(f.prod, 2000, &seq) == SK_OK)
		;
	assert_int_equal(ring_wait_fd(f.prod), f.efd_space);
	ring_wait_prepare(f.prod);
	assert_int_equal(push_seq_payload(f.prod, 2000, &seq), SK_EFULL);
	assert_false(fd_readable(f.efd_space));
	assert_int_equal(ring_peek(f.cons, &cursor, &rec), SK_OK);
	ring_release(f.cons, cursor);
	assert_true(fd_readable(f.efd_space));
	ring_wait_done(f.prod);
	assert_false(fd_readable(f.efd_space));
	assert_int_equal(push_seq_payload(f.prod, 2000, &seq), SK_OK);
	fixture_close(&f);
}

/* ---- the crash test ---- */

#define CRASH_KILLS 3000
#define CRASH_TIME_US (20u * 1000 * 1000)
#define CRASH_REC_MAX 1500

static size_t crash_len(uint64_t seq)
{
	return (size_t)(mix64(seq ^ 0x5eed) % (CRASH_REC_MAX + 1));
}

/* The child: attach as a new producer (new epoch) and push numbered records
 * until killed. It never returns. */
static void crash_producer(int memfd, int efd_data, int efd_space)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (ring_set_side(memfd, RING_PRODUCER, getpid()) != SK_OK)
		_exit(2);
	ring *r;
	if (ring_attach(memfd, SK_RING_ID_INGRESS, RING_PRODUCER, efd_data, efd_space, &r) != SK_OK)
		_exit(3);
	static uint8_t buf[CRASH_REC_MAX];
	uint64_t deadline = now_us() + 10u * 1000 * 1000; /* bound even if nobody kills us */
	while (now_us() < deadline) {
		uint64_t seq = ring_next_seq(r);
		size_t len = crash_len(seq);
		fill_payload(buf, seq, len);
		struct iovec iov[2] = {{buf, len / 3}, {buf + len / 3, len - len / 3}};
		sk_err err = ring_push(r, iov, 2, &seq);
		if (err == SK_EFULL) { /* the handshake: flag, look again, only then sleep */
			ring_wait_prepare(r);
			err = ring_push(r, iov, 2, &seq);
			if (err == SK_EFULL) {
				struct pollfd p = {.fd = efd_space, .events = POLLIN};
				poll(&p, 1, 10);
			}
			ring_wait_done(r);
		}
		if (err != SK_OK && err != SK_EFULL)
			_exit(4);
	}
	_exit(0);
}

struct crash_state {
	uint64_t last_seq;
	uint64_t delivered;
	uint64_t gaps;
	uint32_t last_epoch;
	uint64_t cursor;
};

/* Consume up to max records published now; every one must be whole and correct. */
static void crash_consume(ring *cons, struct crash_state *st, int max)
{
	for (int i = 0; i < max; i++) {
		struct ring_rec rec;
		sk_err err = ring_peek(cons, &st->cursor, &rec);
		if (err == SK_EAGAIN)
			break;
		assert_int_equal(err, SK_OK); /* a crash never exposes a broken record */
		assert_true(rec.seq > st->last_seq);
		assert_true(rec.epoch >= st->last_epoch);
		assert_int_equal(rec.len, crash_len(rec.seq));
		assert_true(payload_ok(rec.payload, rec.seq, rec.len));
		st->gaps += rec.seq - st->last_seq - 1;
		st->last_seq = rec.seq;
		st->last_epoch = rec.epoch;
		st->delivered++;
		ring_release(cons, st->cursor);
	}
}

/* Was the child killed with a record half-written past tail? (Report only.) */
static bool crash_left_partial(const uint8_t *raw)
{
	uint64_t tail = get_u64(raw + T_TAIL_OFFSET);
	uint64_t next_seq = get_u64(raw + T_NEXT_SEQ_OFFSET);
	const uint8_t *p = raw + T_HEADER_PAGE + (tail & (T_CAP - 1));
	if ((tail & (T_CAP - 1)) + 24 > T_CAP)
		return false;
	uint64_t seq = get_u64(p + 8);
	return get_u32(p + 4) == 1 && (seq == next_seq || seq + 1 == next_seq);
}

static void test_ring_producer_killed_at_random_points_never_exposes_a_partial_record(void **state)
{
	struct fixture f;
	fixture_open(&f, T_CAP, CRASH_REC_MAX);
	ring_detach(f.prod);
	f.prod = NULL;
	uint8_t *raw = map_raw(f.memfd);
	struct crash_state st = {.cursor = ring_head(f.cons)};
	srand(12345);
	uint64_t start = now_us();
	int kills = 0, partial = 0;
	while (kills < CRASH_KILLS && now_us() - start < CRASH_TIME_US) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			crash_producer(f.memfd, f.efd_data, f.efd_space);
		uint64_t kill_at = now_us() + (uint64_t)(rand() % 3000);
		while (now_us() < kill_at)
			crash_consume(f.cons, &st, 16); /* short, so the kill comes on time */
		assert_int_equal(kill(pid, SIGKILL), 0);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status)); /* not an early exit from a failed attach */
		kills++;
		partial += crash_left_partial(raw) ? 1 : 0;
		crash_consume(f.cons, &st, T_CAP);
	}
	crash_consume(f.cons, &st, T_CAP);
	/* Each kill can cost at most one sequence number (killed between next_seq and tail). */
	assert_true(st.gaps <= (uint64_t)kills);
	assert_true(st.delivered > (uint64_t)kills); /* the producers did real work */
	assert_int_equal(ring_depth_bytes(f.cons), 0);
	print_message("crash: %d kills, %llu records delivered, %llu sequence gaps, %d kills "
		      "left a record half-written past tail, %.1f s\n",
		      kills, (unsigned long long)st.delivered, (unsigned long long)st.gaps, partial,
		      (double)(now_us() - start) / 1e6);
	munmap(raw, T_HEADER_PAGE + T_CAP);
	fixture_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ring_create_rejects_bad_sizes),
	    cmocka_unit_test(test_ring_attach_rejects_wrong_id_magic_version_and_unsealed),
	    cmocka_unit_test(test_ring_push_rejects_records_over_the_limit),
	    cmocka_unit_test(test_ring_round_trip_gathers_iovecs_into_one_record),
	    cmocka_unit_test(test_ring_wraps_and_pads_at_many_record_sizes),
	    cmocka_unit_test(test_ring_skips_an_end_too_short_for_a_pad),
	    cmocka_unit_test(test_ring_full_returns_efull_until_space_is_released),
	    cmocka_unit_test(test_ring_sequences_keep_rising_across_a_new_producer_epoch),
	    cmocka_unit_test(test_ring_consumer_reattach_rereads_unreleased_records),
	    cmocka_unit_test(test_ring_corrupt_bytes_are_reported_and_never_delivered),
	    cmocka_unit_test(test_ring_damaged_record_is_skipped_and_the_next_delivered),
	    cmocka_unit_test(test_ring_eventfd_handshake_wakes_each_side),
	    cmocka_unit_test(test_ring_quiet_pushes_wake_a_waiting_consumer_once),
	    cmocka_unit_test(
		test_ring_producer_killed_at_random_points_never_exposes_a_partial_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
