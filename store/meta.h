/* meta.db: sqlite in WAL mode, synchronous=FULL, busy_timeout set.
 * Written only by the writer; the http and replay workers open it read-only.
 * Tables: topics, partitions (log start), consumer offsets, idempotency keys,
 * retention, and a single row with the applied raft index and the journal
 * checkpoint. Every change that a journal control entry causes is made in the
 * same transaction that moves the applied index, so it applies exactly once. */
#ifndef SK_STORE_META_H
#define SK_STORE_META_H

#include <stdbool.h>
#include <stdint.h>

#include "common/sk_error.h"
#include "common/sk_limits.h"

typedef struct meta meta;

struct meta_topic {
	uint32_t id;
	char name[SK_TOPIC_NAME_BYTES_MAX + 1];
	uint32_t partitions;
	uint64_t created_index;
	uint64_t retention_bytes; /* 0 = node default */
	uint64_t retention_ms;    /* 0 = node default */
};

/* Open data_dir/meta.db. readonly: for http and replay (SQLITE_OPEN_READONLY;
 * SK_ENOTFOUND if the writer has not created it yet). Writer: creates the schema. */
sk_err meta_open(const char *data_dir, bool readonly, meta **out);
void meta_close(meta *m);

/* Readers (any process). */
sk_err meta_topic_by_name(meta *m, const char *name, struct meta_topic *out); /* SK_ENOTFOUND */
sk_err meta_topic_by_id(meta *m, uint32_t id, struct meta_topic *out);        /* SK_ENOTFOUND */
/* Fill up to cap topics ordered by name; *count_out = how many. */
sk_err meta_topics_list(meta *m, struct meta_topic *out, uint32_t cap, uint32_t *count_out);
/* Committed offset of (group, topic, partition): the last offset the group processed.
 * SK_ENOTFOUND when the group never committed. */
sk_err meta_committed_offset(meta *m, const char *group, uint32_t topic_id, uint32_t partition,
			     uint64_t *offset_out);
/* First offset still stored for a partition (moves with retention / delete-before). */
sk_err meta_log_start(meta *m, uint32_t topic_id, uint32_t partition, uint64_t *log_start_out);
/* Offset previously assigned to an idempotency key within the window:
 * SK_ENOTFOUND when unknown or older than now_ms - window_ms. */
sk_err meta_idem_lookup(meta *m, uint32_t topic_id, const uint8_t *key, uint32_t key_len,
			uint64_t now_ms, uint64_t window_ms, uint32_t *partition_out,
			uint64_t *offset_out, uint64_t *index_out);

/* The writer's side (transactions, apply, checkpoint) is declared in meta_write.h. */

#endif
