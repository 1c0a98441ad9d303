/* libpowercut.so: LD_PRELOAD wrappers that feed the power-cut model (powercut.h).
 *
 *   POWERCUT_DIR=/abs/data_dir POWERCUT_STATE=/abs/state LD_PRELOAD=libpowercut.so skiffd ...
 *
 * Each wrapper calls the real function first and, only when it succeeded on a
 * file or directory under POWERCUT_DIR, records what changed (writes, sizes) or
 * what became durable (fsync, fdatasync, O_SYNC writes, sync, syncfs). The
 * layer keeps no state in memory besides the two paths, so a fork, an exec or a
 * SIGKILL loses nothing; the wrappers called between fork and exec (close, dup2,
 * execve) are not wrapped at all. Not modelled, and reported in
 * STATE/warnings when seen: writes through a shared writable mmap (except the
 * "-shm" files), writes through stdio (glibc calls its internal write). */
#include "powercut.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_truncate)(const char *, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_sync_file_range)(int, off_t, off_t, unsigned);
static int (*real_syncfs)(int);
static void (*real_sync)(void);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static FILE *(*real_fopen)(const char *, const char *);

/* Resolve a real function on first use too: another library's constructor may
 * call a wrapper before ours has run. */
#define REAL(name)                                                   \
	do {                                                         \
		if (!real_##name)                                    \
			real_##name = dlsym(RTLD_NEXT, #name);       \
		if (!real_##name) {                                  \
			errno = ENOSYS;                              \
			return -1;                                   \
		}                                                    \
	} while (0)

__attribute__((constructor)) static void pc_init(void)
{
	real_openat = dlsym(RTLD_NEXT, "openat");
	real_write = dlsym(RTLD_NEXT, "write");
	real_pwrite = dlsym(RTLD_NEXT, "pwrite");
	real_writev = dlsym(RTLD_NEXT, "writev");
	real_pwritev = dlsym(RTLD_NEXT, "pwritev");
	real_pwritev2 = dlsym(RTLD_NEXT, "pwritev2");
	real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
	real_truncate = dlsym(RTLD_NEXT, "truncate");
	real_fallocate = dlsym(RTLD_NEXT, "fallocate");
	real_posix_fallocate = dlsym(RTLD_NEXT, "posix_fallocate");
	real_fsync = dlsym(RTLD_NEXT, "fsync");
	real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
	real_sync_file_range = dlsym(RTLD_NEXT, "sync_file_range");
	real_syncfs = dlsym(RTLD_NEXT, "syncfs");
	real_sync = dlsym(RTLD_NEXT, "sync");
	real_mmap = dlsym(RTLD_NEXT, "mmap");
	real_fopen = dlsym(RTLD_NEXT, "fopen");
	pc_setup(getenv(PC_ENV_DIR), getenv(PC_ENV_STATE));
}

/* Warn once per process and kind. */
static void warn_once(atomic_int *flag, const char *fmt, const char *what)
{
	if (atomic_exchange(flag, 1) == 0)
		pc_note("warnings", fmt, what);
}

/* A readable descriptor on fd's inode (fd may be write-only). */
static int reopen_ro(int fd)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	return pc_sys_open(link, O_RDONLY, 0);
}

/* fd is tracked and a file: its key, state created on first sight. */
static bool tracked_file(int fd, char key[PC_KEY_BYTES])
{
	enum pc_type type;
	if (!pc.ready || !pc_tracked_fd(fd, key, &type) || type != PC_FILE)
		return false;
	if (!pc_inode_known(key)) {
		int src = reopen_ro(fd);
		pc_note("warnings", "inode %s: written but never opened through the layer; its "
			"content so far is taken as durable", key);
		pc_inode_init(key, src);
		if (src >= 0)
			pc_sys_close(src);
	}
	return true;
}

static void flush_fd(int fd, const char *key)
{
	int src = reopen_ro(fd);
	if (src < 0) {
		pc_note("errors", "inode %s: cannot reopen fd %d to read it", key, fd);
		return;
	}
	pc_flush(key, src);
	pc_sys_close(src);
}

#define AT_POSITION (-1) /* the write moved the file position to its end */
#define AT_END (-2)      /* an O_APPEND pwrite: at the end, position unchanged */

/* After a successful write of n bytes at off (or AT_POSITION, AT_END). */
static void wrote(int fd, int64_t off, size_t n)
{
	char key[PC_KEY_BYTES];
	struct stat st;
	if (n == 0 || !tracked_file(fd, key))
		return;
	if (off == AT_POSITION) {
		off_t end = lseek(fd, 0, SEEK_CUR);
		off = end < 0 ? -1 : (int64_t)end - (int64_t)n;
	} else if (off == AT_END) {
		off = fstat(fd, &st) == 0 ? (int64_t)st.st_size - (int64_t)n : -1;
	}
	if (off < 0) {
		pc_note("errors", "inode %s: cannot find where a write of %zu bytes went", key, n);
		return;
	}
	pc_dirty_add(key, PC_WRITE, (uint64_t)off, n);
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & (O_SYNC | O_DSYNC)))
		flush_fd(fd, key);
}

/* ------------------------------------------------------------ open */

static int do_open(int dirfd, const char *path, int flags, mode_t mode)
{
	REAL(openat);
	bool may_write = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
	if (!pc.ready || !may_write)
		return real_openat(dirfd, path, flags, mode);
	struct stat st;
	bool existed = fstatat(dirfd, path, &st, (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) == 0;
	if (existed && S_ISREG(st.st_mode)) {
		/* Seen for the first time: what it holds now is what a cut keeps. */
		int pre = pc_sys_openat(dirfd, path, O_RDONLY, 0);
		char key[PC_KEY_BYTES];
		enum pc_type type;
		if (pre >= 0 && pc_tracked_fd(pre, key, &type) && type == PC_FILE &&
		    !pc_inode_known(key))
			pc_inode_init(key, pre);
		if (pre >= 0)
			pc_sys_close(pre);
	}
	int fd = real_openat(dirfd, path, flags, mode);
	if (fd < 0)
		return fd;
	int saved = errno;
	char key[PC_KEY_BYTES];
	enum pc_type type;
	if (pc_tracked_fd(fd, key, &type) && type == PC_FILE) {
		if (!pc_inode_known(key)) {
			bool created = (!existed && (flags & O_CREAT)) || (flags & O_TMPFILE) == O_TMPFILE;
			int src = created ? -1 : reopen_ro(fd);
			pc_inode_init(key, src);
			if (src >= 0)
				pc_sys_close(src);
		}
		if (existed && (flags & O_TRUNC))
			pc_dirty_add(key, PC_SETSIZE, 0, 0);
	}
	errno = saved;
	return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	return do_open(AT_FDCWD, path, flags, m);
}

EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	return do_open(AT_FDCWD, path, flags, m);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	return do_open(dirfd, path, flags, m);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	return do_open(dirfd, path, flags, m);
}

/* _FORTIFY_SOURCE entry points (flags without O_CREAT). */
EXPORT int __open_2(const char *path, int flags) { return do_open(AT_FDCWD, path, flags, 0); }
EXPORT int __open64_2(const char *path, int flags) { return do_open(AT_FDCWD, path, flags, 0); }
EXPORT int __openat_2(int dirfd, const char *path, int flags) { return do_open(dirfd, path, flags, 0); }
EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return do_open(dirfd, path, flags, 0);
}

EXPORT int creat(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

EXPORT int creat64(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* ------------------------------------------------------------ writes */

static size_t iov_bytes(ssize_t r) { return r > 0 ? (size_t)r : 0; }

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(write);
	ssize_t r = real_write(fd, buf, n);
	if (r > 0 && pc.ready) {
		int saved = errno;
		wrote(fd, AT_POSITION, (size_t)r);
		errno = saved;
	}
	return r;
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite);
	ssize_t r = real_pwrite(fd, buf, n, off);
	if (r > 0 && pc.ready) {
		int saved = errno;
		/* O_APPEND: Linux appends a pwrite at the end, whatever off says. */
		int fl = fcntl(fd, F_GETFL);
		wrote(fd, fl >= 0 && (fl & O_APPEND) ? AT_END : (int64_t)off, (size_t)r);
		errno = saved;
	}
	return r;
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) { return pwrite(fd, buf, n, off); }

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(writev);
	ssize_t r = real_writev(fd, iov, cnt);
	if (r > 0 && pc.ready) {
		int saved = errno;
		wrote(fd, AT_POSITION, iov_bytes(r));
		errno = saved;
	}
	return r;
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(pwritev);
	ssize_t r = real_pwritev(fd, iov, cnt, off);
	if (r > 0 && pc.ready) {
		int saved = errno;
		int fl = fcntl(fd, F_GETFL);
		wrote(fd, fl >= 0 && (fl & O_APPEND) ? AT_END : (int64_t)off, iov_bytes(r));
		errno = saved;
	}
	return r;
}

EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	REAL(pwritev2);
	ssize_t r = real_pwritev2(fd, iov, cnt, off, flags);
	if (r > 0 && pc.ready) {
		int saved = errno;
		int fl = fcntl(fd, F_GETFL);
		int64_t at = off == -1 ? AT_POSITION
			     : (fl >= 0 && (fl & O_APPEND)) || (flags & RWF_APPEND) ? AT_END
										  : (int64_t)off;
		wrote(fd, at, iov_bytes(r));
		if (flags & (RWF_DSYNC | RWF_SYNC)) {
			char key[PC_KEY_BYTES];
			if (tracked_file(fd, key))
				flush_fd(fd, key);
		}
		errno = saved;
	}
	return r;
}

EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return pwritev2(fd, iov, cnt, off, flags);
}

/* ------------------------------------------------------------ sizes */

EXPORT int ftruncate(int fd, off_t len)
{
	REAL(ftruncate);
	int r = real_ftruncate(fd, len);
	char key[PC_KEY_BYTES];
	if (r == 0 && pc.ready) {
		int saved = errno;
		if (tracked_file(fd, key))
			pc_dirty_add(key, PC_SETSIZE, (uint64_t)len, 0);
		errno = saved;
	}
	return r;
}

EXPORT int ftruncate64(int fd, off_t len) { return ftruncate(fd, len); }

EXPORT int truncate(const char *path, off_t len)
{
	REAL(truncate);
	int r = real_truncate(path, len);
	char key[PC_KEY_BYTES];
	if (r == 0 && pc.ready) {
		int saved = errno;
		int fd = pc_sys_open(path, O_RDONLY, 0);
		if (fd >= 0 && tracked_file(fd, key))
			pc_dirty_add(key, PC_SETSIZE, (uint64_t)len, 0);
		if (fd >= 0)
			pc_sys_close(fd);
		errno = saved;
	}
	return r;
}

EXPORT int truncate64(const char *path, off_t len) { return truncate(path, len); }

static void allocated(int fd, int mode, off_t off, off_t len)
{
	char key[PC_KEY_BYTES];
	static atomic_int warned;
	if (!tracked_file(fd, key))
		return;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		pc_dirty_add(key, PC_WRITE, (uint64_t)off, (uint64_t)len);
	if (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) {
		warn_once(&warned, "%s: modelled as a rewrite from the offset to the end", "fallocate collapse/insert range");
		struct stat st;
		pc_dirty_add(key, PC_WRITE, (uint64_t)off, PC_TO_EOF);
		if (fstat(fd, &st) == 0)
			pc_dirty_add(key, PC_SETSIZE, (uint64_t)st.st_size, 0);
	} else if (!(mode & FALLOC_FL_KEEP_SIZE)) {
		pc_dirty_add(key, PC_EXTEND, (uint64_t)(off + len), 0);
	}
}

EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
	REAL(fallocate);
	int r = real_fallocate(fd, mode, off, len);
	if (r == 0 && pc.ready) {
		int saved = errno;
		allocated(fd, mode, off, len);
		errno = saved;
	}
	return r;
}

EXPORT int fallocate64(int fd, int mode, off_t off, off_t len) { return fallocate(fd, mode, off, len); }

EXPORT int posix_fallocate(int fd, off_t off, off_t len)
{
	REAL(posix_fallocate);
	int r = real_posix_fallocate(fd, off, len);
	if (r == 0 && pc.ready)
		allocated(fd, 0, off, len);
	return r;
}

EXPORT int posix_fallocate64(int fd, off_t off, off_t len) { return posix_fallocate(fd, off, len); }

/* ------------------------------------------------------------ durability */

static void synced(int fd)
{
	char key[PC_KEY_BYTES];
	enum pc_type type;
	if (!pc_tracked_fd(fd, key, &type))
		return;
	if (type == PC_DIR) {
		int dfd = reopen_ro(fd);
		if (dfd >= 0) {
			pc_dir_snapshot(dfd, key);
			pc_sys_close(dfd);
		}
	} else if (tracked_file(fd, key)) {
		flush_fd(fd, key);
	}
}

EXPORT int fsync(int fd)
{
	REAL(fsync);
	int r = real_fsync(fd);
	if (r == 0 && pc.ready) {
		int saved = errno;
		synced(fd);
		errno = saved;
	}
	return r;
}

EXPORT int fdatasync(int fd)
{
	REAL(fdatasync);
	int r = real_fdatasync(fd);
	if (r == 0 && pc.ready) {
		int saved = errno;
		synced(fd);
		errno = saved;
	}
	return r;
}

/* Not a durability barrier (no metadata, no disk cache flush): passed through. */
EXPORT int sync_file_range(int fd, off_t off, off_t n, unsigned flags)
{
	static atomic_int warned;
	char key[PC_KEY_BYTES];
	enum pc_type type;
	if (pc.ready && pc_tracked_fd(fd, key, &type))
		warn_once(&warned, "%s: not a durability barrier, nothing made durable", "sync_file_range");
	REAL(sync_file_range);
	return real_sync_file_range(fd, off, n, flags);
}

EXPORT int syncfs(int fd)
{
	REAL(syncfs);
	int r = real_syncfs(fd);
	if (r == 0 && pc.ready) {
		int saved = errno;
		pc_sync_all();
		errno = saved;
	}
	return r;
}

EXPORT void sync(void)
{
	if (!real_sync)
		real_sync = dlsym(RTLD_NEXT, "sync");
	if (real_sync)
		real_sync();
	if (pc.ready)
		pc_sync_all();
}

/* ------------------------------------------------------------ not modelled */

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	static atomic_int warned;
	char key[PC_KEY_BYTES];
	enum pc_type type;
	if (pc.ready && fd >= 0 && (prot & PROT_WRITE) && (flags & MAP_SHARED) &&
	    pc_tracked_fd(fd, key, &type))
		warn_once(&warned, "%s: writes through a shared mapping are not modelled",
			  "mmap of a tracked file");
	if (!real_mmap)
		real_mmap = dlsym(RTLD_NEXT, "mmap");
	if (!real_mmap) {
		errno = ENOSYS;
		return MAP_FAILED;
	}
	return real_mmap(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
	static atomic_int warned;
	if (!real_fopen)
		real_fopen = dlsym(RTLD_NEXT, "fopen");
	if (!real_fopen) {
		errno = ENOSYS;
		return NULL;
	}
	FILE *f = real_fopen(path, mode);
	char key[PC_KEY_BYTES];
	enum pc_type type;
	if (f && pc.ready && strpbrk(mode, "wa+") && pc_tracked_fd(fileno(f), key, &type))
		warn_once(&warned, "%s: stdio writes bypass the layer and are not modelled", path);
	return f;
}

EXPORT FILE *fopen64(const char *path, const char *mode) { return fopen(path, mode); }
