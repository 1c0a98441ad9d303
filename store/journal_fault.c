/* Fault injection for struct journal_io (see store/journal_fault.h). Test builds only. */
#ifdef SKIFF_FAULTS

#include "store/journal_fault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_assert.h"

/* One write not yet synced: the bytes it replaced, on a dup of its fd (so it can be
 * undone after a rename or close), keyed by inode for fdatasync. */
struct undo {
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t off;
	uint64_t len;
	uint8_t *old;
	uint8_t *new_bytes;
};

#define FAULT_UNDO_MAX 65536

static struct {
	struct undo undo[FAULT_UNDO_MAX];
	size_t undo_n;
	int fsync_fail_after; /* < 0: off */
	int64_t enospc_after; /* < 0: off */
	uint64_t fsyncs;
} fault = {.fsync_fail_after = -1, .enospc_after = -1};

static void undo_free(struct undo *u)
{
	close(u->fd);
	free(u->old);
	free(u->new_bytes);
}

static bool same_file(int fd, dev_t *dev, ino_t *ino)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return false;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return true;
}

/* Remember [off, off+len) of fd before it is overwritten. */
static void remember(int fd, uint64_t off, uint64_t len)
{
	STORE_ASSERT(fault.undo_n < FAULT_UNDO_MAX);
	struct undo *u = &fault.undo[fault.undo_n];
	u->fd = dup(fd);
	STORE_ASSERT(u->fd >= 0 && same_file(fd, &u->dev, &u->ino));
	u->off = off;
	u->len = len;
	u->old = calloc(1, len ? len : 1);
	u->new_bytes = calloc(1, len ? len : 1);
	STORE_ASSERT(u->old != NULL && u->new_bytes != NULL);
	ssize_t n = pread(fd, u->old, len, (off_t)off); /* past EOF reads as zero (calloc) */
	STORE_ASSERT(n >= 0);
	fault.undo_n++;
}

static ssize_t fault_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	uint64_t len = 0;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	bool short_write = false;
	if (fault.enospc_after >= 0) {
		if (fault.enospc_after == 0) {
			errno = ENOSPC;
			return -1;
		}
		if ((int64_t)len > fault.enospc_after) {
			len = (uint64_t)fault.enospc_after;
			short_write = true;
		}
	}
	remember(fd, (uint64_t)off, len);
	struct undo *u = &fault.undo[fault.undo_n - 1];
	uint64_t at = 0;
	for (int i = 0; i < iovcnt && at < len; i++) {
		uint64_t n = iov[i].iov_len < len - at ? iov[i].iov_len : len - at;
		memcpy(u->new_bytes + at, iov[i].iov_base, n);
		at += n;
	}
	ssize_t w = pwrite(fd, u->new_bytes, len, off);
	STORE_ASSERT(w == (ssize_t)len);
	if (fault.enospc_after >= 0)
		fault.enospc_after -= (int64_t)len;
	(void)short_write;
	return w;
}

static int fault_fdatasync(int fd)
{
	if (fault.fsync_fail_after == 0) {
		errno = EIO;
		return -1;
	}
	if (fault.fsync_fail_after > 0)
		fault.fsync_fail_after--;
	int rc = fdatasync(fd);
	if (rc != 0)
		return rc;
	fault.fsyncs++;
	dev_t dev;
	ino_t ino;
	STORE_ASSERT(same_file(fd, &dev, &ino));
	size_t keep = 0;
	for (size_t i = 0; i < fault.undo_n; i++) {
		struct undo *u = &fault.undo[i];
		if (u->dev == dev && u->ino == ino)
			undo_free(u);
		else
			fault.undo[keep++] = *u;
	}
	fault.undo_n = keep;
	return 0;
}

static int fault_fallocate(int fd, int mode, off_t off, off_t len)
{
	if (mode == 0 && fault.enospc_after >= 0 && (int64_t)len > fault.enospc_after) {
		errno = ENOSPC;
		return -1;
	}
	return fallocate(fd, mode, off, len);
}

static int fault_open(const char *path, int flags, mode_t mode) { return open(path, flags, mode); }

/* No fault to inject: write-back makes nothing durable. */
static int fault_writeback(int fd, off_t off, off_t len) { return journal_io_posix.writeback(fd, off, len); }

static const struct journal_io fault_io = {
	.open = fault_open,
	.close = close,
	.pwritev = fault_pwritev,
	.pread = pread,
	.fdatasync = fault_fdatasync,
	.writeback = fault_writeback,
	.fsync = fsync,
	.ftruncate = ftruncate,
	.fallocate = fault_fallocate,
	.unlink = unlink,
	.rename = rename,
};

const struct journal_io *journal_fault_io(void) { return &fault_io; }

void journal_fault_reset(void)
{
	for (size_t i = 0; i < fault.undo_n; i++)
		undo_free(&fault.undo[i]);
	fault.undo_n = 0;
	fault.fsync_fail_after = -1;
	fault.enospc_after = -1;
	fault.fsyncs = 0;
}

void journal_fault_fail_fsync_after(int n) { fault.fsync_fail_after = n; }
void journal_fault_enospc_after(int64_t bytes) { fault.enospc_after = bytes; }
uint64_t journal_fault_fsyncs(void) { return fault.fsyncs; }

uint64_t journal_fault_unsynced_bytes(void)
{
	uint64_t n = 0;
	for (size_t i = 0; i < fault.undo_n; i++)
		n += fault.undo[i].len;
	return n;
}

static void put_back(const struct undo *u, uint64_t from, uint64_t to)
{
	if (from >= to)
		return;
	ssize_t w = pwrite(u->fd, u->old + from, to - from, (off_t)(u->off + from));
	STORE_ASSERT(w == (ssize_t)(to - from));
}

void journal_fault_crash(enum journal_fault_crash mode, uint64_t keep)
{
	/* Newest first, so overlapping writes unwind to the oldest synced bytes. */
	for (size_t i = fault.undo_n; i-- > 0;) {
		const struct undo *u = &fault.undo[i];
		bool last = i + 1 == fault.undo_n;
		uint64_t k = keep < u->len ? keep : u->len;
		if (last && mode == FAULT_CRASH_TEAR_PREFIX)
			put_back(u, k, u->len);
		else if (last && mode == FAULT_CRASH_TEAR_SUFFIX)
			put_back(u, 0, k);
		else
			put_back(u, 0, u->len);
		fdatasync(u->fd);
	}
	for (size_t i = 0; i < fault.undo_n; i++)
		undo_free(&fault.undo[i]);
	fault.undo_n = 0;
}

#endif
