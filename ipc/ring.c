/* The shared-memory SPSC ring (ipc/ring.h, DESIGN.md Appendix A).
 *
 * Shared layout: a 4 KiB header page, then the data area (capacity bytes, a
 * power of two). The header is private to one build of skiffd (every process
 * runs the same binary), so it is a C struct of atomics; each group of fields
 * sits in its own 128-byte block so the two sides never share a cache line:
 *
 *   0    identity     magic, version, ring id, capacity, record max   ring_create, then read-only
 *   128  sides        producer/consumer epoch and pid                 skiffd (ring_set_side)
 *   256  producer     tail, heartbeat (reserved), next_seq            producer only
 *   384  consumer     head, heartbeat (reserved)                      consumer only
 *   512  durable      durable_seq                                     consumer only
 *   640  c-waiting    consumer_waiting                                consumer only
 *   768  p-waiting    producer_waiting                                producer only
 *
 * Records (layout in ring.h) are 8-byte aligned and never cross the end of
 * the data area. A record that would cross it is preceded by a pad record
 * (type -1, seq 0, len = bytes to the end - 24, crc over its 20 header bytes
 * only) that fills the rest of the area. When fewer than 24 bytes remain
 * before the end there is no room for a pad header: both sides skip those
 * bytes by position alone. A pad never starts at offset 0.
 *
 * Why it is safe
 *  - One writer per field: the producer writes tail, next_seq, the free data
 *    bytes [tail, head + capacity) and producer_waiting; the consumer writes
 *    head, durable_seq and consumer_waiting; skiffd writes a side's epoch and
 *    pid at each spawn of that side (the side reads its epoch once, at attach).
 *  - Publishing: the producer writes the pad (if any) and the whole record,
 *    CRC last, then stores next_seq, then store-release(tail). The consumer
 *    load-acquires tail, so every byte before tail is complete when it looks.
 *    Releasing: the consumer is done reading (and, for the writer, has
 *    fdatasync'd) before store-release(head); the producer load-acquires head
 *    before reusing that space, so it never overwrites bytes still being read.
 *  - Wake-ups (Dekker handshake): the producer stores tail, then a seq_cst
 *    fence, then reads consumer_waiting (ring_push; after ring_push_quiet the
 *    fence and the read happen once, in ring_wake_consumer, for the last tail
 *    stored, which covers every record before it); the consumer sets consumer_waiting,
 *    then a seq_cst fence, then re-reads tail before sleeping. At least one of
 *    them sees the other's store, so a record is never left unnoticed while
 *    the consumer sleeps. The consumer's head / producer_waiting pair is the
 *    mirror image.
 *  - Producer crash: stores it made are in the shared pages; anything after
 *    tail is unpublished garbage that the next producer overwrites. If it died
 *    between storing next_seq and tail, one sequence number is skipped: the
 *    sequences still rise, they are just not dense. A new producer starts at
 *    tail, with next_seq from the header and a new epoch from skiffd.
 *  - Consumer crash: head has not moved past anything it had not finished, so
 *    the next consumer re-reads from head (records already in the journal are
 *    skipped by sequence, using durable_seq or the journal itself).
 *  - Nothing read from shared memory is trusted: the consumer copies each
 *    record header once and checks type, length (against record max, the end
 *    of the area and tail), CRC, and that sequences rise; it checks that tail
 *    stays within capacity of head. The producer checks head the same way. A
 *    peer can make the ring useless, never make this side read or write out of
 *    bounds.
 *
 * What ring_peek answers: SK_OK moves the cursor past the record (pads and
 * position-only skips before it included). SK_ECORRUPT moves it forwards too:
 * past the bad record when its length is sane, else to tail; the one exception
 * is a broken tail (more than capacity past head, or moved backwards), where
 * the cursor cannot move and every call answers SK_ECORRUPT: the caller should
 * stop rather than loop. SK_EINVAL: the caller's cursor is not 8-aligned
 * within [head, tail]. The rising-sequence check runs while the caller goes on
 * from where the last peek left it; starting elsewhere (say at head again)
 * restarts it.
 */
#include "ipc/ring.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/sk_limits.h"

#define RING_MAGIC 0x31474e4952464b53ull /* "SKFRING1" */
#define RING_VERSION 1
#define RING_HEADER_PAGE_BYTES 4096
#define RING_HDR SK_RING_RECORD_HEADER_BYTES
#define RING_CRC_OFFSET 20
#define RING_TYPE_DATA 1
#define RING_TYPE_PAD (-1)

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the ring needs lock-free 64-bit atomics");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the ring needs lock-free 32-bit atomics");

struct ring_hdr {
	/* identity: written by ring_create before anyone maps the ring */
	uint64_t magic;
	uint32_t version;
	uint32_t ring_id;
	uint64_t capacity; /* data-area bytes, power of two */
	uint32_t record_bytes_max;
	uint32_t header_bytes;
	/* skiffd, at each spawn of a side */
	_Alignas(128) _Atomic uint32_t producer_epoch;
	_Atomic uint32_t consumer_epoch;
	_Atomic int32_t producer_pid;
	_Atomic int32_t consumer_pid;
	/* producer */
	_Alignas(128) _Atomic uint64_t tail;
	_Atomic uint64_t producer_heartbeat_ms; /* reserved: heartbeats go on the status page */
	_Atomic uint64_t next_seq;
	/* consumer */
	_Alignas(128) _Atomic uint64_t head;
	_Atomic uint64_t consumer_heartbeat_ms; /* reserved */
	_Alignas(128) _Atomic uint64_t durable_seq;
	_Alignas(128) _Atomic uint32_t consumer_waiting;
	_Alignas(128) _Atomic uint32_t producer_waiting;
};

_Static_assert(offsetof(struct ring_hdr, producer_epoch) == 128, "ring header layout");
_Static_assert(offsetof(struct ring_hdr, tail) == 256, "ring header layout");
_Static_assert(offsetof(struct ring_hdr, head) == 384, "ring header layout");
_Static_assert(offsetof(struct ring_hdr, durable_seq) == 512, "ring header layout");
_Static_assert(offsetof(struct ring_hdr, consumer_waiting) == 640, "ring header layout");
_Static_assert(offsetof(struct ring_hdr, producer_waiting) == 768, "ring header layout");
_Static_assert(sizeof(struct ring_hdr) <= RING_HEADER_PAGE_BYTES, "ring header too big");

struct ring {
	struct ring_hdr *hdr;
	uint8_t *data;
	size_t map_bytes;
	uint64_t cap;
	uint64_t mask;
	uint32_t rec_max;
	uint32_t epoch;
	enum ring_role role;
	int efd_data;
	int efd_space;
	/* producer */
	uint64_t tail;	     /* our own cursor: we are the only writer */
	uint64_t head_cache; /* last head loaded; reloaded only when the ring looks full */
	uint64_t next_seq;
	/* consumer */
	uint64_t head;	      /* our own cursor */
	uint64_t tail_cache;  /* last sane tail loaded */
	uint64_t peek_cursor; /* where the last ring_peek left the cursor */
	uint64_t last_seq;    /* highest sequence seen when continuing from peek_cursor */
	uint32_t last_epoch;
};

static inline uint64_t ring_align8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

static bool ring_sizes_valid(uint64_t data_bytes, uint32_t record_bytes_max)
{
	if (data_bytes < SK_RING_BYTES_MIN || data_bytes > (uint64_t)SK_RING_BYTES_MAX)
		return false;
	if ((data_bytes & (data_bytes - 1)) != 0)
		return false;
	return record_bytes_max >= 1 && record_bytes_max <= data_bytes / 4;
}

static void ring_init_header(struct ring_hdr *h, uint32_t ring_id, uint64_t data_bytes,
			     uint32_t record_bytes_max)
{
	h->magic = RING_MAGIC;
	h->version = RING_VERSION;
	h->ring_id = ring_id;
	h->capacity = data_bytes;
	h->record_bytes_max = record_bytes_max;
	h->header_bytes = RING_HEADER_PAGE_BYTES;
	atomic_store(&h->tail, 0);
	atomic_store(&h->head, 0);
	atomic_store(&h->next_seq, 1);
	atomic_store(&h->durable_seq, 0);
}

sk_err ring_create(uint32_t ring_id, uint64_t data_bytes, uint32_t record_bytes_max, int *memfd_out)
{
	if (ring_id == 0 || !ring_sizes_valid(data_bytes, record_bytes_max))
		return SK_EINVAL;
	char name[32];
	snprintf(name, sizeof(name), "skiff-ring-%u", ring_id);
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return SK_EIO;
	size_t total = RING_HEADER_PAGE_BYTES + (size_t)data_bytes;
	if (ftruncate(fd, (off_t)total) != 0)
		goto out_close_fd;
	void *map = mmap(NULL, RING_HEADER_PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		goto out_close_fd;
	ring_init_header(map, ring_id, data_bytes, record_bytes_max);
	munmap(map, RING_HEADER_PAGE_BYTES);
	/* No side can shrink the file under the other (SIGBUS) or grow it. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		goto out_close_fd;
	*memfd_out = fd;
	return SK_OK;

out_close_fd:
	close(fd);
	return SK_EIO;
}

/* Map the header page of memfd and check its identity (not the ring id). */
static sk_err ring_map_header(int memfd, struct ring_hdr **out)
{
	struct stat st;
	if (fstat(memfd, &st) != 0)
		return SK_EIO;
	if (st.st_size < RING_HEADER_PAGE_BYTES)
		return SK_ECORRUPT;
	void *map =
	    mmap(NULL, RING_HEADER_PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (map == MAP_FAILED)
		return SK_EIO;
	struct ring_hdr *h = map;
	sk_err err = SK_OK;
	if (h->magic != RING_MAGIC)
		err = SK_ECORRUPT;
	else if (h->version != RING_VERSION)
		err = SK_EVERSION;
	else if (h->header_bytes != RING_HEADER_PAGE_BYTES ||
		 !ring_sizes_valid(h->capacity, h->record_bytes_max) ||
		 (uint64_t)st.st_size != RING_HEADER_PAGE_BYTES + h->capacity)
		err = SK_ECORRUPT;
	if (err != SK_OK) {
		munmap(map, RING_HEADER_PAGE_BYTES);
		return err;
	}
	*out = h;
	return SK_OK;
}

sk_err ring_set_side(int memfd, enum ring_role role, int32_t pid)
{
	if (role != RING_PRODUCER && role != RING_CONSUMER)
		return SK_EINVAL;
	struct ring_hdr *h;
	sk_err err = ring_map_header(memfd, &h);
	if (err != SK_OK)
		return err;
	if (role == RING_PRODUCER) {
		atomic_fetch_add(&h->producer_epoch, 1);
		atomic_store(&h->producer_pid, pid);
	} else {
		atomic_fetch_add(&h->consumer_epoch, 1);
		atomic_store(&h->consumer_pid, pid);
	}
	munmap(h, RING_HEADER_PAGE_BYTES);
	return SK_OK;
}

/* head <= tail <= head + capacity, both 8-aligned: anything else is a broken peer. */
static bool ring_cursors_sane(const ring *r, uint64_t head, uint64_t tail)
{
	return (head & 7) == 0 && (tail & 7) == 0 && tail - head <= r->cap;
}

static sk_err ring_attach_side(ring *r)
{
	struct ring_hdr *h = r->hdr;
	uint64_t head = atomic_load_explicit(&h->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	if (!ring_cursors_sane(r, head, tail))
		return SK_ECORRUPT;
	if (r->role == RING_PRODUCER) {
		r->epoch = atomic_load(&h->producer_epoch);
		r->tail = tail;
		r->head_cache = head;
		uint64_t seq = atomic_load(&h->next_seq);
		uint64_t durable = atomic_load(&h->durable_seq);
		/* Never hand out a sequence the consumer may already have made durable. */
		r->next_seq = seq > durable ? seq : durable + 1;
		if (r->next_seq == 0)
			r->next_seq = 1;
		atomic_store(&h->producer_waiting, 0); /* a dead producer's flag */
	} else {
		r->epoch = atomic_load(&h->consumer_epoch);
		r->head = head;
		r->tail_cache = tail;
		r->peek_cursor = head;
		atomic_store(&h->consumer_waiting, 0);
	}
	atomic_thread_fence(memory_order_seq_cst);
	return SK_OK;
}

sk_err ring_attach(int memfd, uint32_t ring_id, enum ring_role role, int efd_data, int efd_space,
		   ring **out)
{
	if (role != RING_PRODUCER && role != RING_CONSUMER)
		return SK_EINVAL;
	struct ring_hdr *h;
	sk_err err = ring_map_header(memfd, &h);
	if (err != SK_OK)
		return err;
	uint64_t cap = h->capacity;
	uint32_t rec_max = h->record_bytes_max;
	bool id_ok = h->ring_id == ring_id;
	munmap(h, RING_HEADER_PAGE_BYTES);
	if (!id_ok)
		return SK_ECORRUPT;
	int seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
		return SK_EINVAL; /* an unsealed ring could be shrunk under us: SIGBUS */

	ring *r = calloc(1, sizeof(*r));
	if (!r)
		return SK_ENOMEM;
	r->map_bytes = RING_HEADER_PAGE_BYTES + (size_t)cap;
	void *map = mmap(NULL, r->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (map == MAP_FAILED) {
		err = SK_EIO;
		goto out_free;
	}
	r->hdr = map;
	r->data = (uint8_t *)map + RING_HEADER_PAGE_BYTES;
	r->cap = cap;
	r->mask = cap - 1;
	r->rec_max = rec_max;
	r->role = role;
	r->efd_data = efd_data;
	r->efd_space = efd_space;
	err = ring_attach_side(r);
	if (err != SK_OK)
		goto out_unmap;
	*out = r;
	return SK_OK;

out_unmap:
	munmap(map, r->map_bytes);
out_free:
	free(r);
	return err;
}

void ring_detach(ring *r)
{
	if (!r)
		return;
	munmap(r->hdr, r->map_bytes);
	free(r);
}

uint32_t ring_record_bytes_max(const ring *r)
{
	return r->rec_max;
}
uint64_t ring_capacity(const ring *r)
{
	return r->cap;
}

static void ring_wake(int efd)
{
	if (efd < 0)
		return;
	uint64_t one = 1;
	/* EAGAIN: the counter is saturated, so the fd is readable anyway. */
	ssize_t n;
	do
		n = write(efd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
}

/* ---- producer ---- */

/* Is there room for need bytes at tail? Reloads head only when the cached value says no. */
static bool ring_has_room(ring *r, uint64_t need)
{
	if (r->tail + need - r->head_cache <= r->cap)
		return true;
	uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	if (!ring_cursors_sane(r, head, r->tail))
		return false; /* a broken consumer: report full rather than overwrite */
	r->head_cache = head;
	return r->tail + need - head <= r->cap;
}

static void ring_put_header(uint8_t *p, uint32_t len, int32_t type, uint64_t seq, uint32_t epoch)
{
	put_u32(p, len);
	put_u32(p + 4, (uint32_t)type);
	put_u64(p + 8, seq);
	put_u32(p + 16, epoch);
}

/* Fill the to_end bytes from off to the end of the data area with a pad. */
static void ring_write_pad(ring *r, uint64_t off, uint64_t to_end)
{
	if (to_end < RING_HDR)
		return; /* skipped by position alone */
	uint8_t *p = r->data + off;
	ring_put_header(p, (uint32_t)(to_end - RING_HDR), RING_TYPE_PAD, 0, r->epoch);
	put_u32(p + RING_CRC_OFFSET, crc32c(0, p, RING_CRC_OFFSET));
}

sk_err ring_push_quiet(ring *r, const struct iovec *iov, int iovcnt, uint64_t *seq_out)
{
	assert(r->role == RING_PRODUCER);
	if (iovcnt < 0 || (iovcnt > 0 && !iov))
		return SK_EINVAL;
	size_t len = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > r->rec_max - len)
			return SK_EINVAL;
		len += iov[i].iov_len;
	}
	uint64_t rec_bytes = ring_align8(RING_HDR + len);
	uint64_t off = r->tail & r->mask;
	uint64_t to_end = r->cap - off;
	uint64_t skip = rec_bytes > to_end ? to_end : 0;
	if (!ring_has_room(r, skip + rec_bytes))
		return SK_EFULL;
	if (skip) {
		ring_write_pad(r, off, to_end);
		off = 0;
	}
	uint8_t *p = r->data + off;
	uint64_t seq = r->next_seq;
	ring_put_header(p, (uint32_t)len, RING_TYPE_DATA, seq, r->epoch);
	uint32_t crc = crc32c(0, p, RING_CRC_OFFSET);
	uint8_t *q = p + RING_HDR;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len == 0)
			continue;
		memcpy(q, iov[i].iov_base, iov[i].iov_len);
		crc = crc32c(crc, iov[i].iov_base, iov[i].iov_len);
		q += iov[i].iov_len;
	}
	memset(q, 0, rec_bytes - RING_HDR - len);
	put_u32(p + RING_CRC_OFFSET, crc);

	/* next_seq before tail: a crash between the two skips a sequence, never repeats one. */
	r->next_seq = seq + 1;
	atomic_store_explicit(&r->hdr->next_seq, seq + 1, memory_order_relaxed);
	r->tail += skip + rec_bytes;
	atomic_store_explicit(&r->hdr->tail, r->tail, memory_order_release);
	if (seq_out)
		*seq_out = seq;
	return SK_OK;
}

/* The producer's half of the handshake: tail is stored; the fence orders that store
 * before the load of the consumer's flag (see "Wake-ups" above). */
void ring_wake_consumer(ring *r)
{
	assert(r->role == RING_PRODUCER);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->hdr->consumer_waiting, memory_order_relaxed))
		ring_wake(r->efd_data);
}

sk_err ring_push(ring *r, const struct iovec *iov, int iovcnt, uint64_t *seq_out)
{
	sk_err err = ring_push_quiet(r, iov, iovcnt, seq_out);
	if (err == SK_OK)
		ring_wake_consumer(r);
	return err;
}

uint64_t ring_next_seq(const ring *r)
{
	return r->next_seq;
}

uint64_t ring_free_bytes(ring *r)
{
	assert(r->role == RING_PRODUCER);
	uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	if (!ring_cursors_sane(r, head, r->tail))
		return 0;
	r->head_cache = head;
	return r->cap - (r->tail - head);
}

/* ---- consumer ---- */

/* Load tail (acquire) and keep it only if it is within capacity of head and
 * has not moved backwards (a producer only ever moves it forwards). */
static bool ring_load_tail(ring *r)
{
	uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	if (!ring_cursors_sane(r, r->head, tail) || tail - r->head < r->tail_cache - r->head)
		return false;
	r->tail_cache = tail;
	return true;
}

/* A record that failed its checks: move the cursor to next and say so. */
static sk_err ring_reject(ring *r, uint64_t *cursor, uint64_t next)
{
	*cursor = next;
	r->peek_cursor = next;
	return SK_ECORRUPT;
}

struct ring_rec_hdr {
	uint32_t len;
	int32_t type;
	uint64_t seq;
	uint32_t epoch;
	uint32_t crc;
};

/* Copy the header once out of shared memory so a peer cannot change it between checks. */
static void ring_get_header(const uint8_t *shared, uint8_t local[RING_HDR], struct ring_rec_hdr *h)
{
	memcpy(local, shared, RING_HDR);
	h->len = get_u32(local);
	h->type = (int32_t)get_u32(local + 4);
	h->seq = get_u64(local + 8);
	h->epoch = get_u32(local + 16);
	h->crc = get_u32(local + RING_CRC_OFFSET);
}

/* Check the pad at cursor c (to_end bytes to the end, avail published). */
static bool ring_pad_valid(uint64_t off, uint64_t to_end, uint64_t avail, const uint8_t *local,
			   const struct ring_rec_hdr *h)
{
	return off != 0 && to_end <= avail && h->len == to_end - RING_HDR && h->seq == 0 &&
	       h->crc == crc32c(0, local, RING_CRC_OFFSET);
}

sk_err ring_peek(ring *r, uint64_t *cursor, struct ring_rec *out)
{
	assert(r->role == RING_CONSUMER);
	uint64_t c = *cursor;
	/* The caller went back (or elsewhere): start the rising-sequence check again. */
	if (c != r->peek_cursor) {
		r->last_seq = 0;
		r->last_epoch = 0;
	}
	if (c == r->tail_cache && !ring_load_tail(r))
		return SK_ECORRUPT; /* tail itself is broken; cursor unchanged */
	uint64_t tail = r->tail_cache;
	if ((c & 7) != 0 || c - r->head > tail - r->head)
		return SK_EINVAL; /* not a cursor between head and tail */
	if (c == tail)
		return SK_EAGAIN;

	uint64_t off = c & r->mask;
	uint64_t to_end = r->cap - off;
	uint64_t avail = tail - c;
	if (to_end < RING_HDR) { /* too little room for a pad header: skipped by position */
		if (avail < to_end)
			return ring_reject(r, cursor, tail);
		c += to_end;
		avail -= to_end;
		off = 0;
		to_end = r->cap;
		/* The producer never publishes a bare skip. */
		if (avail == 0)
			return ring_reject(r, cursor, tail);
	}
	if (avail < RING_HDR)
		return ring_reject(r, cursor, tail);

	uint8_t local[RING_HDR];
	struct ring_rec_hdr h;
	ring_get_header(r->data + off, local, &h);
	if (h.type == RING_TYPE_PAD) {
		if (!ring_pad_valid(off, to_end, avail, local, &h))
			return ring_reject(r, cursor, to_end <= avail ? c + to_end : tail);
		c += to_end;
		avail -= to_end;
		/* A pad is always published with the record that follows it. */
		if (avail < RING_HDR)
			return ring_reject(r, cursor, tail);
		off = 0;
		to_end = r->cap;
		ring_get_header(r->data, local, &h);
	}

	uint64_t rec_bytes = ring_align8(RING_HDR + (uint64_t)h.len);
	bool len_sane = h.len <= r->rec_max && rec_bytes <= to_end && rec_bytes <= avail;
	if (!len_sane)
		return ring_reject(r, cursor, tail);
	uint64_t end = c + rec_bytes;
	if (h.type != RING_TYPE_DATA || h.seq == 0 || h.seq <= r->last_seq ||
	    h.epoch < r->last_epoch)
		return ring_reject(r, cursor, end);
	const uint8_t *payload = r->data + off + RING_HDR;
	if (crc32c(crc32c(0, local, RING_CRC_OFFSET), payload, h.len) != h.crc)
		return ring_reject(r, cursor, end);

	r->last_seq = h.seq;
	r->last_epoch = h.epoch;
	r->peek_cursor = end;
	*cursor = end;
	out->seq = h.seq;
	out->epoch = h.epoch;
	out->len = h.len;
	out->payload = payload;
	out->end_cursor = end;
	return SK_OK;
}

void ring_release(ring *r, uint64_t cursor)
{
	assert(r->role == RING_CONSUMER);
	/* The caller hands back a cursor that ring_peek gave it: head <= cursor <= tail. */
	assert((cursor & 7) == 0 && cursor - r->head <= r->tail_cache - r->head);
	if (cursor == r->head)
		return;
	r->head = cursor;
	atomic_store_explicit(&r->hdr->head, cursor, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->hdr->producer_waiting, memory_order_relaxed))
		ring_wake(r->efd_space);
}

uint64_t ring_head(const ring *r)
{
	if (r->role == RING_CONSUMER)
		return r->head;
	return atomic_load_explicit(&r->hdr->head, memory_order_acquire);
}

uint64_t ring_depth_bytes(const ring *r)
{
	uint64_t head = r->role == RING_CONSUMER
			    ? r->head
			    : atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	if (!ring_cursors_sane(r, head, tail))
		return 0; /* ring_peek reports the broken tail */
	return tail - head;
}

void ring_set_durable_seq(ring *r, uint64_t seq)
{
	assert(r->role == RING_CONSUMER);
	atomic_store_explicit(&r->hdr->durable_seq, seq, memory_order_release);
}

uint64_t ring_durable_seq(const ring *r)
{
	return atomic_load_explicit(&r->hdr->durable_seq, memory_order_acquire);
}

/* ---- waiting handshake ---- */

static _Atomic uint32_t *ring_my_waiting_flag(const ring *r)
{
	return r->role == RING_CONSUMER ? &r->hdr->consumer_waiting : &r->hdr->producer_waiting;
}

void ring_wait_prepare(ring *r)
{
	atomic_store_explicit(ring_my_waiting_flag(r), 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst); /* flag visible before we re-check the cursor */
}

void ring_wait_done(ring *r)
{
	atomic_store_explicit(ring_my_waiting_flag(r), 0, memory_order_relaxed);
	int fd = ring_wait_fd(r);
	if (fd < 0)
		return;
	uint64_t n;
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
}

int ring_wait_fd(const ring *r)
{
	return r->role == RING_CONSUMER ? r->efd_data : r->efd_space;
}
