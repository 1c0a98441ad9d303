/* Per-partition indexes: data_dir/index/<topic_id>/<partition>.idx, one fixed-size
 * entry per record-batch frame, in offset order, so offset -> frame is a binary
 * search. Derived data: rebuilt from the journal after the checkpoint on
 * recovery, never the source of truth. Entry, little-endian, 48 bytes:
 *   0  u64 base_offset   first offset in the frame
 *   8  u64 index         raft index of the frame
 *   16 u64 segment_id    first raft index of the segment holding it
 *   24 u64 position      byte offset of the frame in that segment
 *   32 u32 record_count
 *   36 u32 frame_bytes
 *   40 u64 timestamp_ms
 * Only the writer appends or truncates; readers use store/reader.h. */
#ifndef SK_STORE_INDEX_H
#define SK_STORE_INDEX_H

#include <stdint.h>

#include "common/sk_error.h"

#define SK_INDEX_ENTRY_BYTES 48

struct index_entry {
	uint64_t base_offset;
	uint64_t index;
	uint64_t segment_id;
	uint64_t position;
	uint32_t record_count;
	uint32_t frame_bytes;
	uint64_t timestamp_ms;
};

typedef struct index_set index_set; /* the writer's open index files, one per partition */

sk_err index_set_open(const char *data_dir, index_set **out);
void index_set_close(index_set *s);
/* Append one entry (base_offset must equal the partition's next offset). */
sk_err index_append(index_set *s, uint32_t topic_id, uint32_t partition, const struct index_entry *e);
/* Append n (1..SK_INDEX_RUN_MAX) consecutive entries of one partition with one
 * pwrite: all or none (SK_EINVAL if any entry does not follow the one before). */
#define SK_INDEX_RUN_MAX 64
sk_err index_append_run(index_set *s, uint32_t topic_id, uint32_t partition,
			const struct index_entry *e, uint32_t n);
/* The offset the next frame of this partition gets (0 for a new partition). */
uint64_t index_next_offset(index_set *s, uint32_t topic_id, uint32_t partition);
/* The same with an error channel (index_next_offset returns UINT64_MAX, which no
 * append accepts, when the file cannot be read): SK_EIO, SK_ENOMEM. */
sk_err index_next_offset_get(index_set *s, uint32_t topic_id, uint32_t partition, uint64_t *out);
/* Drop every entry with raft index > index, in every partition (recovery cut, raft truncation). */
sk_err index_truncate_after(index_set *s, uint64_t index);
/* Drop entries wholly below log_start (retention), keeping the file dense. */
sk_err index_trim_before(index_set *s, uint32_t topic_id, uint32_t partition, uint64_t log_start);
/* fdatasync every index file written since the last call (before a checkpoint). */
sk_err index_sync(index_set *s);
/* Decode / encode one on-disk entry. */
void index_entry_encode(uint8_t out[SK_INDEX_ENTRY_BYTES], const struct index_entry *e);
void index_entry_decode(const uint8_t in[SK_INDEX_ENTRY_BYTES], struct index_entry *out);

#endif
