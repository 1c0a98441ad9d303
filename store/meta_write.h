/* The writer's side of meta.db. Only the writer process calls these.
 * Pattern per group commit (after the journal fdatasync):
 *   meta_begin(); meta_apply_*()/meta_idem_put() for each entry; meta_set_applied_index();
 *   meta_commit();
 * so a crash anywhere leaves meta at the previous applied index, and recovery
 * re-applies exactly the entries after it. */
#ifndef SK_STORE_META_WRITE_H
#define SK_STORE_META_WRITE_H

#include "store/meta.h"

/* Where recovery starts scanning: every frame before (segment_id, position) is
 * reflected in the indexes (which were fsync'd before this was stored). */
struct meta_checkpoint {
	uint64_t segment_id;  /* first raft index of the segment (its file name) */
	uint64_t position;    /* byte offset of the next frame in that segment */
	uint64_t index;       /* raft index of the last frame before position (0 = none) */
	uint64_t term;        /* its term */
	uint64_t ingress_seq; /* highest ingress sequence in frames before position */
};

sk_err meta_begin(meta *m);
sk_err meta_commit(meta *m);   /* SK_EIO (and the transaction is rolled back) on failure */
void meta_rollback(meta *m);

/* Highest raft index whose control entries are applied (0 initially). */
sk_err meta_applied_index(meta *m, uint64_t *index_out);
sk_err meta_set_applied_index(meta *m, uint64_t index);
sk_err meta_checkpoint_get(meta *m, struct meta_checkpoint *out); /* all zero when none */
sk_err meta_checkpoint_set(meta *m, const struct meta_checkpoint *cp);

/* Control entries. Each is idempotent for the same index. */
sk_err meta_apply_topic_created(meta *m, uint32_t topic_id, const char *name, uint32_t partitions,
				uint64_t index);
sk_err meta_apply_offset_commit(meta *m, const char *group, uint32_t topic_id, uint32_t partition,
				uint64_t offset, uint64_t index);
sk_err meta_apply_log_start(meta *m, uint32_t topic_id, uint32_t partition, uint64_t log_start,
			    uint64_t index);
sk_err meta_apply_retention(meta *m, uint32_t topic_id, uint64_t bytes, uint64_t ms, uint64_t index);
/* Remember an idempotency key -> (partition, offset, index) at ts_ms; older keys than
 * the window are pruned by meta_idem_prune(). */
sk_err meta_idem_put(meta *m, uint32_t topic_id, const uint8_t *key, uint32_t key_len,
		     uint32_t partition, uint64_t offset, uint64_t index, uint64_t ts_ms);
sk_err meta_idem_prune(meta *m, uint64_t older_than_ms);
/* Next free topic id (1 + the highest used). */
sk_err meta_next_topic_id(meta *m, uint32_t *id_out);

#endif
