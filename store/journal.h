/* The journal: data_dir/journal/<first raft index, 20 digits>.seg, frames as in
 * store/frame.h, one log for every partition. Only the writer process opens it
 * for writing (single-threaded, except for the optional segment-preparing thread).
 *
 * Segments are preallocated and zero-filled before use (journal/next.prep, made
 * ahead of time by a helper thread, renamed at the roll), so an append never grows
 * a file and the bytes after the last frame are zero. A batch of frames is written
 * with one pwritev() and made durable with one fdatasync(); a batch never spans two
 * segments (the caller asks journal_room() first and rolls).
 *
 * Failure rules: a failed fdatasync poisons the journal (every later call returns
 * SK_EIO; the writer must exit, recovery re-reads the disk); ENOSPC on a write or
 * when preparing a segment returns SK_EFULL and leaves the journal valid (a partial
 * write is zeroed back and synced). All file I/O goes through struct journal_io so
 * tests can drop unsynced writes, tear the last one or fail an fsync. */
#ifndef SK_STORE_JOURNAL_H
#define SK_STORE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common/sk_error.h"
#include "store/frame.h"

/* The most bytes one journal_write() may put anywhere but at the start of a segment.
 * A bigger write (one frame over this size) must start a segment (journal_roll first).
 * Recovery relies on it: a torn tail lies within this many bytes of its first bad
 * frame, so it never reads more than that past the end of the log. */
#define SK_JOURNAL_BATCH_BYTES_MAX (8u * 1024 * 1024)

/* Every system call the journal makes on files. Each returns like the libc call
 * (-1 and errno on failure). */
struct journal_io {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*pwritev)(int fd, const struct iovec *iov, int iovcnt, off_t off);
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
	int (*fdatasync)(int fd);
	/* Write back [off, off + len) and wait for it (sync_file_range WAIT_BEFORE |
	 * WRITE | WAIT_AFTER): bounds the dirty data of a long write. Makes nothing
	 * durable (no metadata, no disk cache flush). */
	int (*writeback)(int fd, off_t off, off_t len);
	int (*fsync)(int fd); /* directories */
	int (*ftruncate)(int fd, off_t len);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
	int (*unlink)(const char *path);
	int (*rename)(const char *from, const char *to);
};

extern const struct journal_io journal_io_posix;

/* Where a frame is: the segment (its first raft index) and the byte offset in it. */
struct journal_pos {
	uint64_t segment_id;
	uint64_t position;
};

struct journal_opts {
	const char *data_dir;
	uint64_t segment_bytes;       /* SK_SEGMENT_BYTES_MIN..SK_SEGMENT_BYTES_MAX, multiple of 8 */
	const struct journal_io *io;  /* NULL: journal_io_posix */
	bool prepare_async;           /* prepare the next segment on a helper thread */
};

/* One segment as listed on disk. */
struct journal_segment_info {
	uint64_t segment_id;
	uint64_t file_bytes;
	uint64_t mtime_ms; /* last modification: the time of its last frame once closed */
};

typedef struct journal journal;

/* Open (creating data_dir/journal if needed) and list the segments; reads no frame.
 * The journal accepts appends only after journal_recover() (store/recovery.h).
 * SK_EINVAL on bad options or a foreign file name, SK_EIO on a failing syscall. */
sk_err journal_open(const struct journal_opts *opts, journal **out);
/* Open for reading only (skiffd verify): lists the segments, creates, removes and
 * writes nothing; SK_ENOTFOUND when data_dir/journal does not exist. */
sk_err journal_open_readonly(const char *data_dir, journal **out);
/* Stop the helper thread, close everything (no sync: durability is per batch). */
void journal_close(journal *j);

/* Bytes that still fit in the current segment before a roll is needed. */
uint64_t journal_room(const journal *j);
/* Position the next appended byte goes to. */
struct journal_pos journal_append_pos(const journal *j);
/* Last raft index / term written (durable or not), and the last one made durable. */
uint64_t journal_last_index(const journal *j);
uint64_t journal_last_term(const journal *j);
uint64_t journal_durable_index(const journal *j);

/* Start a new segment named next_index for at least min_bytes (a frame bigger than
 * a whole segment gets a segment of its own size, prepared on the spot). Uses the
 * prepared segment when it is ready and big enough. SK_EFULL: no space for it (the
 * journal is unchanged; try again later). SK_EIO: poisoned. */
sk_err journal_roll(journal *j, uint64_t min_bytes);
/* Write frames (total bytes, <= journal_room(), and <= SK_JOURNAL_BATCH_BYTES_MAX unless
 * at position 0 of a segment) holding raft indexes up to last_index / last_term at the
 * append position with one pwritev. The frames must be valid and continue the log. SK_EFULL on ENOSPC (zeroed back),
 * SK_EIO otherwise (poisoned). Not durable until journal_sync(). */
sk_err journal_write(journal *j, const struct iovec *iov, int iovcnt, uint64_t bytes,
		     uint64_t last_index, uint64_t last_term);
/* fdatasync the current segment; then everything written is durable. SK_EIO poisons
 * the journal: never retried, the writer must exit. */
sk_err journal_sync(journal *j);
/* True once an fsync failed (or a zero-back after a failed write did). */
bool journal_poisoned(const journal *j);

/* Ask the helper thread (or, when not async, do it now) to prepare the next
 * segment; cheap when one is ready. SK_EFULL when the last attempt hit ENOSPC. */
sk_err journal_prepare_next(journal *j);

/* Raft follower: drop every frame after index (never below commit_index: SK_ECONFLICT).
 * An intent file is written and synced first; whole later segments are removed and
 * the last one is zeroed from the frame boundary after index; recovery finishes an
 * interrupted truncation. The caller truncates the indexes. */
sk_err journal_truncate_after(journal *j, uint64_t index, uint64_t commit_index);

/* List the segments, oldest first, into out (cap entries); *count_out = how many exist. */
sk_err journal_segments(journal *j, struct journal_segment_info *out, size_t cap, size_t *count_out);
/* Retention: remove whole segments whose every frame has index < before_segment_id
 * (never the segment being appended to), oldest first, then sync the directory. */
sk_err journal_remove_before(journal *j, uint64_t before_segment_id);

/* Path of a segment into buf (bounded). */
const char *journal_segment_path(const journal *j, uint64_t segment_id, char *buf, size_t len);

#endif
