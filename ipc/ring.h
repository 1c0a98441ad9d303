/* A single-producer single-consumer ring in shared memory (memfd) that
 * survives the crash of either side (DESIGN.md Appendix A).
 *
 * skiffd creates the memfd, sizes and seals it, and keeps it open; each side
 * maps it with ring_attach(). Cursors are 64-bit and free-running (byte
 * positions; the data-area offset is cursor & (capacity - 1)).
 *
 *   tail  producer's cursor: everything before it is published
 *   head  consumer's cursor: everything before it is released (space reusable)
 *
 * A record becomes visible only by the release-store of tail after all its
 * bytes are in place, so a producer killed mid-copy publishes nothing. The
 * consumer releases (moves head) only when it has finished with a record
 * (the writer: after the frames holding it are fdatasync'd), so a consumer
 * killed at any point re-reads from head. Sequences are assigned by
 * ring_publish() from a counter in the shared header, so they keep rising
 * across producer restarts.
 *
 * Record layout, 8-byte aligned, little-endian, packed field by field:
 *   0  u32 len      payload bytes
 *   4  i32 type     1 = data, -1 = pad to the end of the data area
 *   8  u64 seq      1, 2, 3, ... (pads carry 0)
 *   16 u32 epoch    producer epoch that wrote it
 *   20 u32 crc32c   over bytes [0,20) and the payload
 *   24 payload, then zero padding to a multiple of 8
 */
#ifndef SK_IPC_RING_H
#define SK_IPC_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/sk_error.h"

#define SK_RING_RECORD_HEADER_BYTES 24
#define SK_RING_ID_INGRESS 1
#define SK_RING_ID_COMPLETION 2

enum ring_role { RING_PRODUCER = 1, RING_CONSUMER = 2 };

typedef struct ring ring; /* one side's view: mapping, role, cached cursors */

/* One record as seen by the consumer; payload points into the shared mapping and
 * stays valid until ring_release() moves head past it. */
struct ring_rec {
	uint64_t seq;
	uint32_t epoch;
	uint32_t len;
	const uint8_t *payload;
	uint64_t end_cursor; /* cursor just past this record; pass to ring_release() */
};

/* skiffd: create a sealed memfd holding a ring with a data area of data_bytes
 * (power of two, SK_RING_BYTES_MIN..SK_RING_BYTES_MAX) and records of at most
 * record_bytes_max payload bytes (<= data_bytes / 4). SK_EINVAL on bad sizes,
 * SK_EIO when a system call fails. */
sk_err ring_create(uint32_t ring_id, uint64_t data_bytes, uint32_t record_bytes_max, int *memfd_out);
/* skiffd, before each spawn of a side: record its pid and bump its epoch. */
sk_err ring_set_side(int memfd, enum ring_role role, int32_t pid);

/* A worker maps the ring as producer or consumer. efd_data is written by the
 * producer to wake the consumer, efd_space by the consumer to wake the
 * producer (both eventfds, non-blocking). Checks magic, version, ring id and
 * sizes: SK_ECORRUPT or SK_EVERSION if they do not match. */
sk_err ring_attach(int memfd, uint32_t ring_id, enum ring_role role, int efd_data, int efd_space,
		   ring **out);
void ring_detach(ring *r);

/* Limits of this ring. */
uint32_t ring_record_bytes_max(const ring *r);
uint64_t ring_capacity(const ring *r);

/* Producer: copy the iovecs (total len <= record_bytes_max) into the ring as one record
 * and publish it. Returns its sequence in *seq_out. SK_EFULL when there is no room
 * now (wait for efd_space with ring_wait_*), SK_EINVAL when too big. */
sk_err ring_push(ring *r, const struct iovec *iov, int iovcnt, uint64_t *seq_out);
/* Producer, push many and wake once: ring_push_quiet() is ring_push() without the
 * wake-up; after the last one, ring_wake_consumer() wakes the consumer if it waits.
 * A record pushed quietly stays unnoticed by a sleeping consumer until that call. */
sk_err ring_push_quiet(ring *r, const struct iovec *iov, int iovcnt, uint64_t *seq_out);
void ring_wake_consumer(ring *r);
/* Producer: sequence the next ring_push() will assign. */
uint64_t ring_next_seq(const ring *r);
/* Producer: bytes free now. */
uint64_t ring_free_bytes(ring *r);

/* Consumer: read the record at *cursor (start with ring_head()). SK_EAGAIN when
 * nothing is published there; SK_ECORRUPT when the record fails its checks (the
 * cursor is moved past it when its length is sane, so the caller can log, count and
 * go on; otherwise to tail). On SK_OK *cursor is moved past it. Pads are skipped. */
sk_err ring_peek(ring *r, uint64_t *cursor, struct ring_rec *out);
/* Consumer: release everything before cursor (store-release of head) and wake the
 * producer if it is waiting for space. */
void ring_release(ring *r, uint64_t cursor);
/* Consumer: the released position (where a restarted consumer starts). */
uint64_t ring_head(const ring *r);
/* Consumer: how many bytes are published and not yet released. */
uint64_t ring_depth_bytes(const ring *r);
/* Consumer, shared header: highest sequence the consumer has declared durable
 * (written by the writer after fdatasync, before moving head). */
void ring_set_durable_seq(ring *r, uint64_t seq);
uint64_t ring_durable_seq(const ring *r);

/* Waiting handshake: before sleeping on its eventfd a side calls
 * ring_wait_prepare() (sets its waiting flag, full fence), then checks again for
 * work, and only sleeps if there is none; after waking it calls ring_wait_done()
 * (clears the flag, drains the eventfd). */
void ring_wait_prepare(ring *r);
void ring_wait_done(ring *r);
/* The eventfd this side sleeps on (efd_data for the consumer, efd_space for the producer). */
int ring_wait_fd(const ring *r);

#endif
