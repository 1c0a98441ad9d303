/* Recovery: what the writer does at start before it accepts a write
 * (DESIGN.md §6). Only the journal after meta's checkpoint is read, so the time
 * to ready depends on the unchecked tail, not on the size of the journal.
 *
 *   journal_recover()  the scan: CRC, index and term continuity, torn tail cut,
 *                      damage refused (nothing truncated), tail synced;
 *   store_recover()    the scan plus its effects: per-partition indexes extended,
 *                      control entries (and idempotency keys) past meta's applied
 *                      index re-applied in the one transaction that moves it;
 *   store_apply_frame() the meta effect of one frame, shared with the writer's
 *                      group commit so both paths apply entries identically. */
#ifndef SK_STORE_RECOVERY_H
#define SK_STORE_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sk_error.h"
#include "store/frame.h"
#include "store/index.h"
#include "store/journal.h"
#include "store/meta_write.h"

#define SK_RECOVERY_WHY_BYTES (SK_PATH_BYTES_MAX + 256)

/* Called for each valid frame after the checkpoint, in index order. A non-OK return
 * stops recovery with that error. */
typedef sk_err (*recovery_frame_cb)(void *arg, const struct frame_header *h, const uint8_t *body,
				    struct journal_pos pos);

struct recovery_result {
	uint64_t last_index;      /* last frame kept (0: empty journal) */
	uint64_t last_term;
	uint64_t max_ingress_seq; /* highest ingress sequence in the journal */
	uint64_t frames;          /* frames scanned after the checkpoint */
	uint64_t bytes;           /* their bytes */
	bool tail_cut;            /* a torn tail was cut */
	uint64_t cut_segment;
	uint64_t cut_position;
	uint64_t cut_bytes;       /* non-zero bytes zeroed */
	bool truncation_finished; /* an interrupted raft truncation was completed */
	/* where the time went (store_recover fills the last three) */
	uint64_t scan_ns;          /* journal scan, including the callbacks */
	uint64_t sync_ns;          /* syncing the scanned segments */
	uint64_t index_truncate_ns;
	uint64_t meta_commit_ns;
	uint64_t open_ns;          /* meta checkpoint and applied index reads */
};

/* Scan the journal from cp (all zero: from the start) and hand it its tail. On damage
 * returns SK_ECORRUPT with why = "FILE at byte N: reason" and changes nothing.
 * SK_EIO when a syscall fails. */
sk_err journal_recover(journal *j, const struct meta_checkpoint *cp, recovery_frame_cb cb, void *arg,
		       struct recovery_result *out, char *why, size_t why_len);

/* Apply the meta effect of one frame (inside the caller's meta transaction):
 * topic created, offset committed, log start moved (also trims the index when ix is
 * not NULL), retention set, the idempotency key of a record batch. */
sk_err store_apply_frame(meta *m, index_set *ix, const struct frame_header *h, const uint8_t *body);

/* Full recovery: journal_recover() from meta's checkpoint, the index entries the
 * indexes lack for record batches after it (entries past the journal's end dropped),
 * store_apply_frame() for frames past meta's applied index, all in one meta
 * transaction that also moves the applied index. extra (may be NULL) sees every frame
 * after the checkpoint too, in order (the writer's ingress-sequence map); when the
 * index must be rebuilt it sees a prefix of them a second time.
 * Errors as journal_recover(); SK_ECORRUPT also when meta is ahead of the journal. */
sk_err store_recover(journal *j, meta *m, index_set *ix, recovery_frame_cb extra, void *extra_arg,
		     struct recovery_result *out, char *why, size_t why_len);

/* Store a checkpoint at the journal's current end: index_sync(), then one meta
 * transaction with the checkpoint and the applied index (every control entry up to
 * it was applied by the group commits before). */
sk_err store_checkpoint(journal *j, meta *m, index_set *ix, uint64_t max_ingress_seq);

#endif
