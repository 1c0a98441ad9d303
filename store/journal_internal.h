/* Private to journal.c, recovery.c, verify.c and journal_fault.c: the journal's
 * state. Nothing outside store/ includes this. */
#ifndef SK_STORE_JOURNAL_INTERNAL_H
#define SK_STORE_JOURNAL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/sk_limits.h"
#include "store/journal.h"

#define JOURNAL_DIR_NAME "journal"
#define JOURNAL_PREP_NAME "next.prep"
#define JOURNAL_PREP_OLD_NAME "next.prep.old" /* a leftover, removed by the preparing side */
#define JOURNAL_INTENT_NAME "truncate.intent"
#define JOURNAL_SEGMENTS_MIN_CAP 1024
/* Zero-fill chunk: one pwritev of this many zero bytes at a time. */
#define JOURNAL_ZERO_CHUNK_BYTES (1024 * 1024)

enum journal_prep_state {
	PREP_NONE = 0, /* nothing prepared, nobody working on it */
	PREP_BUSY,     /* the helper thread is writing next.prep */
	PREP_READY,    /* next.prep is zero-filled and synced, prep_bytes long */
	PREP_FULL,     /* the last attempt hit ENOSPC */
	PREP_FAILED,   /* the last attempt failed otherwise */
};

struct journal_seg {
	uint64_t id;
	uint64_t file_bytes;
	uint64_t mtime_ms;
};

struct journal {
	char dir[SK_PATH_BYTES_MAX]; /* data_dir/journal */
	const struct journal_io *io;
	uint64_t segment_bytes;
	bool prepare_async;

	struct journal_seg *segs; /* sorted by id */
	size_t seg_count;
	size_t seg_cap;

	/* The segment being appended to (the last one) after recovery. */
	bool recovered;
	bool poisoned;
	int tail_fd;             /* -1 before recovery or with no segment */
	uint64_t append_pos;     /* next byte to write in the tail segment */
	uint64_t last_index;
	uint64_t last_term;
	uint64_t durable_index;
	uint64_t durable_term;

	/* The helper thread and the segment it prepares. */
	pthread_t prep_thread;
	bool prep_thread_running;
	pthread_mutex_t prep_mu;
	pthread_cond_t prep_cv;
	enum journal_prep_state prep_state;
	uint64_t prep_bytes;   /* size of the prepared (or wanted) segment */
	bool prep_requested;
	bool prep_stop;
	_Atomic bool prep_cancel; /* journal_close: stop zero-filling at the next chunk */
};

/* Re-read the directory into j->segs (ids sorted). */
sk_err journal_list(journal *j);
/* Open segment id read-write (or read-only) through j->io. -1 on failure. */
int journal_open_segment(journal *j, uint64_t id, bool writable);
/* fsync the journal directory. */
sk_err journal_sync_dir(journal *j);
/* Write zeros over [from, to) of fd and fdatasync it. */
sk_err journal_zero_range(journal *j, int fd, uint64_t from, uint64_t to);
/* Remove segment id from disk and from j->segs (no directory sync). */
sk_err journal_unlink_segment(journal *j, uint64_t id);
/* Recovery hands the journal its tail: segment tail_id (opened here) with frames
 * up to append_pos, last index and term; everything was synced by recovery. */
sk_err journal_set_tail(journal *j, uint64_t tail_id, uint64_t append_pos, uint64_t last_index,
			uint64_t last_term);
/* Create the first segment (named first_index) of an empty journal. */
sk_err journal_create_first(journal *j, uint64_t first_index);

/* Truncation intent: present while a journal_truncate_after() is in progress. */
sk_err journal_intent_read(journal *j, bool *present_out, uint64_t *index_out);
sk_err journal_intent_clear(journal *j);
/* The cut itself (also used by recovery to finish an interrupted one): removes
 * segments after index, zeroes the rest of the one holding it and reports where the
 * log now ends. */
sk_err journal_cut_after(journal *j, uint64_t index, uint64_t *tail_id_out, uint64_t *pos_out,
			 uint64_t *term_out);

/* Map a whole segment read-only (length = file size). Returns NULL with *len_out 0
 * for an empty file; SK_EIO in *err_out on failure. */
const uint8_t *journal_map_segment(journal *j, uint64_t id, size_t *len_out, sk_err *err_out);
void journal_unmap_segment(const uint8_t *map, size_t len);

#endif
