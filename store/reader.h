/* The read path (used by the replay worker; safe in any process that does not
 * write the store). Reads the per-partition indexes and the journal segments,
 * never meta.db. Only frames whose raft index is <= commit_index are visible,
 * so a reader never serves a record that is not yet acknowledged-durable.
 * A read costs O(log n) to find the frame holding an offset plus the records
 * returned; nothing scans from the start. No allocation per read after open:
 * buffers are sized from the limits. */
#ifndef SK_STORE_READER_H
#define SK_STORE_READER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/sk_error.h"
#include "store/record.h"

typedef struct store_reader store_reader;

struct reader_partition_info {
	uint64_t log_start;      /* first offset still stored */
	uint64_t high_watermark; /* first offset not yet visible (one past the last committed) */
	uint64_t bytes;          /* journal bytes of this partition's frames still stored */
};

/* Called once per record, in offset order; return false to stop early: the record
 * it was given then counts as not delivered (*next_offset_out is that record's offset). */
typedef bool (*reader_record_cb)(void *arg, uint64_t offset, uint64_t timestamp_ms,
				 const struct record_view *rec);

sk_err reader_open(const char *data_dir, store_reader **out);
void reader_close(store_reader *rd);

/* Log start, high watermark and bytes of one partition as of commit_index.
 * A partition that exists in meta but has no records yet: all zero. */
sk_err reader_partition_info(store_reader *rd, uint32_t topic_id, uint32_t partition,
			     uint64_t commit_index, struct reader_partition_info *out);

/* Deliver records of (topic, partition) starting at offset, at most limit records
 * and about max_bytes of values (always at least one record if any is visible), to cb.
 * *next_offset_out = the offset after the last record delivered (== offset when none).
 * SK_ERANGE when offset < log start (the caller reports the log start);
 * offset at or past the high watermark delivers nothing and returns SK_OK.
 * SK_ECORRUPT (with a logged file and position) when a frame fails its checks. */
sk_err reader_read(store_reader *rd, uint32_t topic_id, uint32_t partition, uint64_t offset,
		   uint64_t commit_index, uint32_t limit, uint64_t max_bytes, reader_record_cb cb,
		   void *arg, uint64_t *next_offset_out);

/* preads issued since open (index entries and frames): for metrics and for tests
 * that check a read costs O(log n), not a scan. */
uint64_t reader_pread_count(const store_reader *rd);

#endif
