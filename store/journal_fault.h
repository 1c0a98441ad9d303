/* Fault injection for the journal's I/O table, compiled only when SKIFF_FAULTS is
 * defined (test builds). It wraps the real system calls and models a disk with a
 * volatile cache: every write is applied to the file but remembered (with the bytes
 * it replaced) until an fdatasync of that file; journal_fault_crash() then puts
 * back what a power cut could leave. Directory operations (rename, unlink, fsync of
 * a directory) are treated as immediately durable.
 *
 * One global instance: tests are single-threaded (use prepare_async = false). */
#ifndef SK_STORE_JOURNAL_FAULT_H
#define SK_STORE_JOURNAL_FAULT_H

#ifdef SKIFF_FAULTS

#include <stdint.h>

#include "store/journal.h"

enum journal_fault_crash {
	FAULT_CRASH_DROP = 1,        /* every unsynced write is lost */
	FAULT_CRASH_TEAR_PREFIX = 2, /* the last unsynced write keeps its first keep bytes */
	FAULT_CRASH_TEAR_SUFFIX = 3, /* the last unsynced write keeps all but its first keep bytes */
};

/* The wrapping table (pass as journal_opts.io). */
const struct journal_io *journal_fault_io(void);
/* Forget every remembered write and disarm every fault. */
void journal_fault_reset(void);
/* The fdatasync after n more successful ones fails with EIO (n < 0: never). */
void journal_fault_fail_fsync_after(int n);
/* Writes (and fallocate) fail with ENOSPC once bytes more bytes were written;
 * the write that crosses the limit is short (bytes < 0: never). */
void journal_fault_enospc_after(int64_t bytes);
/* Simulate a power cut: undo unsynced writes as mode says (keep: see the enum). */
void journal_fault_crash(enum journal_fault_crash mode, uint64_t keep);
/* Bytes written and not yet synced. */
uint64_t journal_fault_unsynced_bytes(void);
/* fdatasync calls that succeeded so far. */
uint64_t journal_fault_fsyncs(void);

#endif
#endif
