/* powercut: what survives a power cut, for files under one directory.
 *
 * Shared by libpowercut.so (LD_PRELOAD into skiffd and its workers) and
 * powercut-tool (init before start, restore after the cut). The model is
 * POSIX's, not one file system's: a file's bytes are durable only after an
 * fsync/fdatasync of that file (or a write on an O_SYNC/O_DSYNC descriptor,
 * sync(), syncfs()); a name in a directory is durable only after an fsync of
 * that directory. sync_file_range and close make nothing durable.
 *
 * The state lives in files under STATE (never in process memory), so it
 * survives the SIGKILL that starts the cut, and every process writing the same
 * inode shares it: an fsync in one process makes another's writes durable,
 * as the page cache does.
 *
 * STATE layout
 *   STATE/data              realpath of the tracked directory, one line
 *   STATE/root              key of the tracked directory's inode, one line
 *   STATE/i/KEY/shadow      the inode's durable content (size included)
 *   STATE/i/KEY/dirty       changes since creation, append-only (O_APPEND),
 *                           24-byte records, little-endian:
 *                             0  u32 kind   1 write, 2 set size, 3 extend size
 *                             4  u32 zero
 *                             8  u64 a      write: offset; set/extend: size
 *                             16 u64 b      write: length (UINT64_MAX = to EOF)
 *   STATE/i/KEY/cursor      u64 LE: bytes of dirty already applied to shadow
 *   STATE/d/KEY             durable listing of directory KEY, one entry a line:
 *                             "f KEY HEXNAME\n" (regular file) or
 *                             "d KEY HEXNAME\n" (directory)
 *   STATE/d/KEY.lock        flock'd while that listing is rewritten
 *   STATE/tmp/              staging for atomic renames into i/ and d/
 *   STATE/warnings          operations the model does not cover, one a line
 *   STATE/errors            failures of the layer itself: the model is broken
 *
 * KEY = "DEV-INO-BTIMESEC.BTIMENSEC" (hex dev, decimal ino, birth time from
 * statx): an inode number reused after an unlink gets a new key.
 *
 * Validity: a dirty record is applied at a sync by copying the byte range from
 * the live file into the shadow, in record order; a record is written after
 * its data, so a record missed by one sync is applied by the next one (a write
 * racing an fsync may or may not become durable, as in a kernel). A writer
 * never blocks: only syncs of one inode take a lock (flock on its shadow).
 * Files whose name ends in "-shm" (sqlite's shared-memory index, mmap'd and
 * rebuilt from the WAL) are not tracked and are dropped by a restore. */
#ifndef PC_POWERCUT_H
#define PC_POWERCUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PC_ENV_DIR "POWERCUT_DIR"     /* the directory whose files are tracked */
#define PC_ENV_STATE "POWERCUT_STATE" /* STATE, outside that directory */

#define PC_KEY_BYTES 96
#define PC_PATH_BYTES 4096
#define PC_RECORD_BYTES 24

enum pc_kind { PC_WRITE = 1, PC_SETSIZE = 2, PC_EXTEND = 3 };
#define PC_TO_EOF UINT64_MAX

enum pc_type { PC_OTHER = 0, PC_FILE = 1, PC_DIR = 2 };

#define PC_DIR_BYTES 1024 /* longest accepted DATA or STATE path */

struct pc_ctx {
	char data[PC_DIR_BYTES]; /* realpath of the tracked directory */
	size_t data_len;
	char state[PC_DIR_BYTES];
	bool ready;
};
extern struct pc_ctx pc;

/* Fill pc from the two paths; false (and pc.ready false) when either is unusable. */
bool pc_setup(const char *data_dir, const char *state_dir);

/* Inode key and type of an open fd, or of NAME relative to dirfd (no symlink
 * following). false when statx fails. */
bool pc_key_fd(int fd, char key[PC_KEY_BYTES], enum pc_type *type);
bool pc_key_at(int dirfd, const char *name, char key[PC_KEY_BYTES], enum pc_type *type);
/* True when fd is a file or directory under pc.data that the model tracks
 * (not a "-shm" file); fills key and type. */
bool pc_tracked_fd(int fd, char key[PC_KEY_BYTES], enum pc_type *type);
bool pc_excluded_name(const char *name);

/* The inode has state under STATE/i. */
bool pc_inode_known(const char *key);
/* Create STATE/i/KEY: an empty shadow (src_fd < 0: a new file) or a full copy of
 * src_fd (a file that existed before it was tracked). No-op when it exists. */
int pc_inode_init(const char *key, int src_fd);
/* Append one dirty record (after the change it describes was made). */
void pc_dirty_add(const char *key, enum pc_kind kind, uint64_t a, uint64_t b);
/* Make the inode's changes durable: apply its unapplied dirty records to the
 * shadow, reading the live bytes from src_fd (readable). */
int pc_flush(const char *key, int src_fd);
/* Record the current entries of directory dirfd as its durable listing. */
int pc_dir_snapshot(int dirfd, const char *key);
/* Walk pc.data: flush every file, snapshot every directory (sync, syncfs). */
void pc_sync_all(void);

/* Remove a directory tree (raw system calls; no symlink is followed). */
void pc_remove_tree(const char *dir);

/* Append a line to STATE/warnings or STATE/errors. */
void pc_note(const char *which, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Raw system calls, so the layer never re-enters its own wrappers. */
int pc_sys_open(const char *path, int flags, unsigned mode);
int pc_sys_openat(int dirfd, const char *path, int flags, unsigned mode);
int pc_sys_close(int fd);
long pc_sys_pread(int fd, void *buf, size_t n, uint64_t off);
long pc_sys_pwrite(int fd, const void *buf, size_t n, uint64_t off);
int pc_sys_ftruncate(int fd, uint64_t size);
int pc_sys_fsync(int fd);

#endif
