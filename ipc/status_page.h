/* The status page: one shared-memory page (memfd) created by skiffd and
 * mapped by every worker. Each field has exactly one writer (named beside it)
 * and is read with atomics; nobody takes a lock. The layout is private to one
 * build of skiffd (all processes run the same binary), so it is a C struct;
 * magic and version guard against a mismatched mapping.
 *
 * Single node: the raft worker copies durable_index into commit_index
 * (a one-member group), so every acknowledgement goes through raft. */
#ifndef SK_IPC_STATUS_PAGE_H
#define SK_IPC_STATUS_PAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/sk_error.h"
#include "common/sk_limits.h"

#define SK_STATUS_MAGIC 0x5347415053464b53ull /* "SKFSPAGS" */
#define SK_STATUS_VERSION 1
#define SK_STATUS_PAGE_BYTES 16384
#define SK_FSYNC_BUCKETS 16 /* fdatasync latency histogram: bucket i counts <= 2^i * 16 us */

enum sk_writer_state {
	SK_WRITER_STARTING = 0,
	SK_WRITER_OK = 1,
	SK_WRITER_STORAGE_FULL = 2, /* ENOSPC: produces get 507 until space returns */
	SK_WRITER_FAILED = 3,       /* fsync failed or damage found: writer stopped */
};

struct sk_status_page {
	/* identity: written once by skiffd */
	uint64_t magic;
	uint32_t version;
	uint32_t bytes;
	_Alignas(128) _Atomic uint64_t durable_index; /* writer: last fdatasync'd raft index */
	_Atomic uint64_t durable_term;                 /* writer */
	_Atomic uint32_t writer_state;                 /* writer: enum sk_writer_state */
	_Atomic uint64_t writer_epoch;                 /* writer: +1 at each start (after recovery) */
	_Atomic uint64_t topics_version;               /* writer: +1 when topics or retention change */
	_Alignas(128) _Atomic uint64_t commit_index;   /* raft */
	_Atomic uint64_t term;                         /* raft */
	_Atomic uint64_t leader_id;                    /* raft: node id, 0 = unknown */
	_Atomic uint64_t raft_epoch;                   /* raft: +1 at each start */
	/* heartbeat_ms[w]: written by worker w (CLOCK_MONOTONIC ms) from its event loop */
	_Alignas(128) _Atomic uint64_t heartbeat_ms[SK_WORKER_COUNT];
	_Atomic uint32_t ready[SK_WORKER_COUNT]; /* worker w: 1 once ready, skiffd clears at spawn */
	/* writer metrics, monotonic counters */
	_Alignas(128) _Atomic uint64_t fsync_count;
	_Atomic uint64_t fsync_records; /* records made durable, summed over fsyncs */
	_Atomic uint64_t fsync_bytes;
	_Atomic uint64_t fsync_ns_total;
	_Atomic uint64_t fsync_bucket[SK_FSYNC_BUCKETS];
	_Atomic uint64_t frames_appended;
	_Atomic uint64_t ring_skipped;    /* ingress records already in the journal (replays) */
	_Atomic uint64_t ring_malformed;  /* ingress records dropped as malformed */
	/* supervisor: restarts per worker (auto + manual), for /metrics */
	_Alignas(128) _Atomic uint64_t worker_restarts[SK_WORKER_COUNT];
};

_Static_assert(sizeof(struct sk_status_page) <= SK_STATUS_PAGE_BYTES, "status page too big");

/* skiffd: create the memfd (sealed to its size), map it, initialise identity.
 * Returns the fd in *fd_out and the mapping in *page_out. */
sk_err status_page_create(int *fd_out, struct sk_status_page **page_out);
/* Worker: map the page on fd and check magic, version and size (SK_ECORRUPT if not). */
sk_err status_page_attach(int fd, struct sk_status_page **page_out);
/* Unmap. */
void status_page_detach(struct sk_status_page *page);
/* Add one fdatasync of duration_ns covering records/bytes to the writer metrics. */
void status_page_count_fsync(struct sk_status_page *page, uint64_t duration_ns, uint64_t records,
			     uint64_t bytes);

#endif
