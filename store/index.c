/* Per-partition index files: data_dir/index/<topic_id>/<partition>.idx (decimal names).
 *
 * Entry, little-endian, 48 bytes, packed field by field; entries follow each other
 * with nothing in between, in offset order (and so in raft index order):
 *   0  u64 base_offset   first offset in the frame
 *   8  u64 index         raft index of the frame
 *   16 u64 segment_id    first raft index of the segment holding it
 *   24 u64 position      byte offset of the frame in that segment
 *   32 u32 record_count
 *   36 u32 frame_bytes
 *   40 u64 timestamp_ms
 *
 * A file is valid when its size is a multiple of 48, every entry has index >= 1,
 * record_count >= 1 and frame_bytes >= 80 (a frame header), indexes rise strictly
 * and each entry's base_offset is the previous entry's base_offset + record_count.
 *
 * Durability: appends are plain pwrite()s with no fsync; index_sync() fdatasyncs the
 * files written since the last sync (and the directories of new files) before the
 * writer stores a checkpoint, so every entry before the checkpoint is durable and
 * the entries after it are rebuilt from the journal by recovery. What a crash can
 * leave after the last sync: a partial trailing entry (cut at open) and, on file
 * systems that extend the size before the data, zero-filled trailing entries
 * (invalid: index 0; cut at open, and by index_truncate_after()).
 *
 * Retention (index_trim_before) rewrites the file without its dropped prefix into
 * <partition>.idx.tmp, fdatasyncs it and renames it over the old one, so a crash
 * leaves either the old or the new file. The last entry is always kept, even when
 * it is wholly below the log start, so the next offset survives a restart (meta's
 * log start is authoritative for what is readable).
 *
 * Contract for the writer:
 *  - recovery calls index_truncate_after(checkpoint index) before re-appending the
 *    entries of frames after the checkpoint (index_append accepts only the next
 *    offset and a rising raft index, so duplicates are refused, not skipped);
 *  - index_trim_before runs only after a checkpoint that covers every frame already
 *    in the index (index_sync + meta_checkpoint_set committed). Otherwise a crash
 *    could leave a trimmed file whose kept entries are all cut by the recovery
 *    truncation, losing the partition's next offset. */
#include "store/index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/log.h"
#include "common/sk_limits.h"
#include "store/store_assert.h"

/* Open index files kept at once; clean ones are closed past this (the writer may
 * touch more partitions than the process may hold descriptors). */
#define INDEX_OPEN_FILES_MAX 256
/* Entries read per pread when scanning or copying (12 KiB on the stack). */
#define INDEX_CHUNK_ENTRIES 256
#define INDEX_FRAME_BYTES_MIN 80

struct idx_part {
	uint32_t topic_id;
	uint32_t partition;
	int fd;              /* -1 when closed (or the file does not exist) */
	bool exists;         /* the file is on disk */
	bool dirty;          /* written since the last index_sync (in the dirty list) */
	bool new_file;       /* created since the last sync: fsync its directory */
	bool new_dir;        /* its topic directory too was created: fsync index/ */
	uint64_t count;      /* entries in the file */
	uint64_t next_offset;
	uint64_t last_index; /* raft index of the last entry (0 = none) */
};

struct index_set {
	char dir[SK_PATH_BYTES_MAX]; /* data_dir/index */
	struct idx_part **slots;     /* open addressing on (topic_id, partition) */
	size_t slot_count;           /* power of two */
	size_t used;
	struct idx_part **dirty;
	size_t dirty_n, dirty_cap;
	size_t open_fds;
	size_t evict_hand;
};

void index_entry_encode(uint8_t out[SK_INDEX_ENTRY_BYTES], const struct index_entry *e)
{
	put_u64(out + 0, e->base_offset);
	put_u64(out + 8, e->index);
	put_u64(out + 16, e->segment_id);
	put_u64(out + 24, e->position);
	put_u32(out + 32, e->record_count);
	put_u32(out + 36, e->frame_bytes);
	put_u64(out + 40, e->timestamp_ms);
}

void index_entry_decode(const uint8_t in[SK_INDEX_ENTRY_BYTES], struct index_entry *out)
{
	out->base_offset = get_u64(in + 0);
	out->index = get_u64(in + 8);
	out->segment_id = get_u64(in + 16);
	out->position = get_u64(in + 24);
	out->record_count = get_u32(in + 32);
	out->frame_bytes = get_u32(in + 36);
	out->timestamp_ms = get_u64(in + 40);
}

static bool entry_plausible(const struct index_entry *e)
{
	return e->index >= 1 && e->record_count >= 1 && e->frame_bytes >= INDEX_FRAME_BYTES_MIN &&
	       e->base_offset + e->record_count > e->base_offset;
}

/* ---- paths and directories ---- */

static sk_err part_path(const index_set *s, uint32_t topic_id, uint32_t partition,
			const char *suffix, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%u/%u.idx%s", s->dir, topic_id, partition, suffix);
	return n < 0 || (size_t)n >= cap ? SK_EINVAL : SK_OK;
}

static sk_err topic_dir_path(const index_set *s, uint32_t topic_id, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%u", s->dir, topic_id);
	return n < 0 || (size_t)n >= cap ? SK_EINVAL : SK_OK;
}

static sk_err fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		log_error("index_dir_open_failed", "errno=%d dir=%s", errno, dir);
		return SK_EIO;
	}
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	if (rc != 0) {
		log_error("index_dir_fsync_failed", "errno=%d dir=%s", saved, dir);
		return SK_EIO;
	}
	return SK_OK;
}

/* fsync one file by path (an index file some earlier writer left). */
static sk_err fsync_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("index_open_failed", "errno=%d path=%s", errno, path);
		return SK_EIO;
	}
	int rc = fdatasync(fd);
	int saved = errno;
	close(fd);
	if (rc != 0) {
		log_error("index_fsync_failed", "errno=%d path=%s", saved, path);
		return SK_EIO;
	}
	return SK_OK;
}

/* A writer killed before its checkpoint leaves index files and directory entries
 * that may not be durable; the next writer finds them already there and would
 * never sync them, yet its next checkpoint claims them. So at open, make the
 * whole tree durable once: every topic directory, every index file in it, and
 * index/ itself. Cost: one fsync per file, once per writer start. */
static sk_err sync_tree_at_open(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		log_error("index_dir_open_failed", "errno=%d dir=%s", errno, dir);
		return SK_EIO;
	}
	sk_err err = SK_OK;
	struct dirent *de;
	char path[SK_PATH_BYTES_MAX];
	while (!err && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		int n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		struct stat st;
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			err = sync_tree_at_open(path);
		else if (S_ISREG(st.st_mode))
			err = fsync_file(path);
	}
	closedir(d);
	return err ? err : fsync_dir(dir);
}

/* mkdir that treats "already there" as success; *created_out says whether it made it. */
static sk_err make_dir(const char *dir, bool *created_out)
{
	*created_out = false;
	if (mkdir(dir, 0755) == 0) {
		*created_out = true;
		return SK_OK;
	}
	if (errno == EEXIST)
		return SK_OK;
	log_error("index_mkdir_failed", "errno=%d dir=%s", errno, dir);
	return errno == ENOSPC ? SK_EFULL : SK_EIO;
}

/* ---- the partition table ---- */

static size_t part_hash(uint32_t topic_id, uint32_t partition)
{
	uint64_t k = ((uint64_t)topic_id << 32) | partition;
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k;
}

static struct idx_part **part_slot(struct idx_part **slots, size_t slot_count, uint32_t topic_id,
				   uint32_t partition)
{
	size_t mask = slot_count - 1;
	for (size_t i = part_hash(topic_id, partition) & mask;; i = (i + 1) & mask) {
		struct idx_part *p = slots[i];
		if (!p || (p->topic_id == topic_id && p->partition == partition))
			return &slots[i];
	}
}

static sk_err table_grow(index_set *s)
{
	size_t count = s->slot_count * 2;
	struct idx_part **slots = calloc(count, sizeof(*slots));
	if (!slots)
		return SK_ENOMEM;
	for (size_t i = 0; i < s->slot_count; i++) {
		struct idx_part *p = s->slots[i];
		if (p)
			*part_slot(slots, count, p->topic_id, p->partition) = p;
	}
	free(s->slots);
	s->slots = slots;
	s->slot_count = count;
	return SK_OK;
}

/* ---- descriptors ---- */

static void part_close_fd(index_set *s, struct idx_part *p)
{
	if (p->fd < 0)
		return;
	close(p->fd);
	p->fd = -1;
	s->open_fds--;
}

/* Close one clean descriptor when over the limit (dirty ones wait for index_sync). */
static void evict_one(index_set *s)
{
	for (size_t n = 0; n < s->slot_count; n++) {
		size_t i = s->evict_hand++ & (s->slot_count - 1);
		struct idx_part *p = s->slots[i];
		if (p && p->fd >= 0 && !p->dirty) {
			part_close_fd(s, p);
			return;
		}
	}
}

/* Open the partition's file. create: make it (and its directory) when missing.
 * SK_ENOTFOUND when missing and !create. */
static sk_err part_open_fd(index_set *s, struct idx_part *p, bool create)
{
	if (p->fd >= 0)
		return SK_OK;
	char path[SK_PATH_BYTES_MAX];
	if (part_path(s, p->topic_id, p->partition, "", path, sizeof(path)))
		return SK_EINVAL;
	if (s->open_fds >= INDEX_OPEN_FILES_MAX)
		evict_one(s);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		char dir[SK_PATH_BYTES_MAX];
		bool dir_created;
		sk_err err = topic_dir_path(s, p->topic_id, dir, sizeof(dir));
		if (!err)
			err = make_dir(dir, &dir_created);
		if (err)
			return err;
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0) {
			p->new_file = true;
			p->new_dir = p->new_dir || dir_created;
		}
	}
	if (fd < 0) {
		if (errno == ENOENT)
			return SK_ENOTFOUND;
		log_error("index_open_failed", "errno=%d path=%s", errno, path);
		return errno == ENOSPC ? SK_EFULL : SK_EIO;
	}
	p->fd = fd;
	p->exists = true;
	s->open_fds++;
	return SK_OK;
}

static sk_err read_entries(const struct idx_part *p, uint64_t first, uint64_t n, uint8_t *buf)
{
	size_t want = (size_t)n * SK_INDEX_ENTRY_BYTES;
	ssize_t got = pread(p->fd, buf, want, (off_t)(first * SK_INDEX_ENTRY_BYTES));
	if (got != (ssize_t)want) {
		log_error("index_read_failed", "errno=%d topic=%u partition=%u entry=%llu", errno,
			  p->topic_id, p->partition, (unsigned long long)first);
		return SK_EIO;
	}
	return SK_OK;
}

/* Entries kept when scanning back from the end: drop while an entry is implausible
 * or its index is above cut. Sets *count_out to the entries that stay. */
static sk_err scan_back(const struct idx_part *p, uint64_t count, uint64_t cut, uint64_t *count_out)
{
	uint8_t buf[INDEX_CHUNK_ENTRIES * SK_INDEX_ENTRY_BYTES];
	while (count > 0) {
		uint64_t n = count < INDEX_CHUNK_ENTRIES ? count : INDEX_CHUNK_ENTRIES;
		sk_err err = read_entries(p, count - n, n, buf);
		if (err)
			return err;
		for (uint64_t i = n; i > 0; i--) {
			struct index_entry e;
			index_entry_decode(buf + (i - 1) * SK_INDEX_ENTRY_BYTES, &e);
			if (entry_plausible(&e) && e.index <= cut) {
				*count_out = count - (n - i);
				return SK_OK;
			}
		}
		count -= n;
	}
	*count_out = 0;
	return SK_OK;
}

/* Shrink the file to count entries and refresh next_offset / last_index from its last entry. */
static sk_err part_set_count(index_set *s, struct idx_part *p, uint64_t count)
{
	if (ftruncate(p->fd, (off_t)(count * SK_INDEX_ENTRY_BYTES)) != 0) {
		log_error("index_truncate_failed", "errno=%d topic=%u partition=%u", errno, p->topic_id,
			  p->partition);
		return SK_EIO;
	}
	p->count = count;
	p->next_offset = 0;
	p->last_index = 0;
	if (count > 0) {
		uint8_t raw[SK_INDEX_ENTRY_BYTES];
		sk_err err = read_entries(p, count - 1, 1, raw);
		if (err)
			return err;
		struct index_entry e;
		index_entry_decode(raw, &e);
		p->next_offset = e.base_offset + e.record_count;
		p->last_index = e.index;
	}
	return SK_OK;
}

static void mark_dirty(index_set *s, struct idx_part *p);

/* Read an existing file's state, cutting a partial or zero-filled tail. */
static sk_err part_load(index_set *s, struct idx_part *p)
{
	sk_err err = part_open_fd(s, p, false);
	if (err == SK_ENOTFOUND) {
		p->exists = false;
		return SK_OK;
	}
	if (err)
		return err;
	struct stat st;
	if (fstat(p->fd, &st) != 0)
		return SK_EIO;
	uint64_t size = (uint64_t)st.st_size;
	uint64_t count = size / SK_INDEX_ENTRY_BYTES;
	uint64_t keep;
	err = scan_back(p, count, UINT64_MAX, &keep);
	if (err)
		return err;
	if (keep * SK_INDEX_ENTRY_BYTES != size)
		log_warn("index_tail_cut", "topic=%u partition=%u bytes=%llu kept_entries=%llu",
			 p->topic_id, p->partition, (unsigned long long)size, (unsigned long long)keep);
	err = part_set_count(s, p, keep);
	if (!err && keep * SK_INDEX_ENTRY_BYTES != size)
		mark_dirty(s, p);
	return err;
}

/* The partition's state, loaded from disk on first use. NULL only on failure (*err_out). */
static struct idx_part *part_get(index_set *s, uint32_t topic_id, uint32_t partition, sk_err *err_out)
{
	struct idx_part **slot = part_slot(s->slots, s->slot_count, topic_id, partition);
	if (*slot) {
		*err_out = SK_OK;
		return *slot;
	}
	if ((s->used + 1) * 2 > s->slot_count) {
		*err_out = table_grow(s);
		if (*err_out)
			return NULL;
		slot = part_slot(s->slots, s->slot_count, topic_id, partition);
	}
	struct idx_part *p = calloc(1, sizeof(*p));
	if (!p) {
		*err_out = SK_ENOMEM;
		return NULL;
	}
	p->topic_id = topic_id;
	p->partition = partition;
	p->fd = -1;
	*err_out = part_load(s, p);
	if (*err_out) {
		part_close_fd(s, p);
		free(p);
		return NULL;
	}
	*slot = p;
	s->used++;
	return p;
}

static void mark_dirty(index_set *s, struct idx_part *p)
{
	if (p->dirty)
		return;
	if (s->dirty_n == s->dirty_cap) {
		size_t cap = s->dirty_cap ? s->dirty_cap * 2 : 64;
		struct idx_part **d = realloc(s->dirty, cap * sizeof(*d));
		STORE_ASSERT(d); /* a few pointers; running out here is not recoverable */
		s->dirty = d;
		s->dirty_cap = cap;
	}
	s->dirty[s->dirty_n++] = p;
	p->dirty = true;
}

/* ---- public API ---- */

sk_err index_set_open(const char *data_dir, index_set **out)
{
	index_set *s = calloc(1, sizeof(*s));
	if (!s)
		return SK_ENOMEM;
	sk_err err = SK_EINVAL;
	int n = snprintf(s->dir, sizeof(s->dir), "%s/index", data_dir);
	if (n < 0 || (size_t)n >= sizeof(s->dir) - 32) /* room for /<topic>/<partition>.idx.tmp */
		goto out_free;
	bool created;
	err = make_dir(s->dir, &created);
	if (err)
		goto out_free;
	if (created && (err = fsync_dir(data_dir)))
		goto out_free;
	if (!created && (err = sync_tree_at_open(s->dir)))
		goto out_free;
	s->slot_count = 64;
	s->slots = calloc(s->slot_count, sizeof(*s->slots));
	err = SK_ENOMEM;
	if (!s->slots)
		goto out_free;
	*out = s;
	return SK_OK;
out_free:
	free(s);
	return err;
}

void index_set_close(index_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->slot_count; i++) {
		struct idx_part *p = s->slots[i];
		if (!p)
			continue;
		part_close_fd(s, p);
		free(p);
	}
	free(s->slots);
	free(s->dirty);
	free(s);
}

sk_err index_next_offset_get(index_set *s, uint32_t topic_id, uint32_t partition, uint64_t *out)
{
	sk_err err;
	struct idx_part *p = part_get(s, topic_id, partition, &err);
	if (!p)
		return err;
	*out = p->next_offset;
	return SK_OK;
}

uint64_t index_next_offset(index_set *s, uint32_t topic_id, uint32_t partition)
{
	uint64_t next = UINT64_MAX;
	sk_err err = index_next_offset_get(s, topic_id, partition, &next);
	if (err) {
		/* No error channel here: an offset that no append accepts is the safe answer. */
		log_error("index_next_offset_failed", "topic=%u partition=%u err=%s", topic_id,
			  partition, sk_errname(err));
		return UINT64_MAX;
	}
	return next;
}

sk_err index_append_run(index_set *s, uint32_t topic_id, uint32_t partition,
			const struct index_entry *e, uint32_t n)
{
	sk_err err;
	if (n == 0 || n > SK_INDEX_RUN_MAX)
		return SK_EINVAL;
	struct idx_part *p = part_get(s, topic_id, partition, &err);
	if (!p)
		return err;
	uint64_t next = p->next_offset, last = p->last_index;
	for (uint32_t i = 0; i < n; i++) {
		if (!entry_plausible(&e[i]) || e[i].base_offset != next || e[i].index <= last)
			return SK_EINVAL;
		next = e[i].base_offset + e[i].record_count;
		last = e[i].index;
	}
	err = part_open_fd(s, p, true);
	if (err)
		return err;
	uint8_t raw[SK_INDEX_RUN_MAX * SK_INDEX_ENTRY_BYTES];
	for (uint32_t i = 0; i < n; i++)
		index_entry_encode(raw + (size_t)i * SK_INDEX_ENTRY_BYTES, &e[i]);
	size_t bytes = (size_t)n * SK_INDEX_ENTRY_BYTES;
	off_t at = (off_t)(p->count * SK_INDEX_ENTRY_BYTES);
	ssize_t w = pwrite(p->fd, raw, bytes, at);
	if (w != (ssize_t)bytes) {
		int saved = w < 0 ? errno : ENOSPC;
		/* Leave no partial entry behind: the next append writes at the same place. */
		if (ftruncate(p->fd, at) != 0)
			log_error("index_append_undo_failed", "errno=%d topic=%u partition=%u", errno,
				  topic_id, partition);
		log_error("index_append_failed", "errno=%d topic=%u partition=%u", saved, topic_id,
			  partition);
		return saved == ENOSPC ? SK_EFULL : SK_EIO;
	}
	p->count += n;
	p->next_offset = next;
	p->last_index = last;
	mark_dirty(s, p);
	return SK_OK;
}

sk_err index_append(index_set *s, uint32_t topic_id, uint32_t partition, const struct index_entry *e)
{
	return index_append_run(s, topic_id, partition, e, 1);
}

/* Parse a whole decimal u32 name with an optional exact suffix; false otherwise. */
static bool parse_u32_name(const char *name, const char *suffix, uint32_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; name[i] >= '0' && name[i] <= '9'; i++) {
		v = v * 10 + (uint64_t)(name[i] - '0');
		if (v > UINT32_MAX || i >= 10)
			return false;
	}
	if (i == 0 || strcmp(name + i, suffix) != 0)
		return false;
	*out = (uint32_t)v;
	return true;
}

static sk_err truncate_part(index_set *s, struct idx_part *p, uint64_t index)
{
	if (p->count == 0 || p->last_index <= index)
		return SK_OK;
	sk_err err = part_open_fd(s, p, false);
	if (err)
		return err;
	uint64_t keep;
	err = scan_back(p, p->count, index, &keep);
	if (!err)
		err = part_set_count(s, p, keep);
	if (!err)
		mark_dirty(s, p);
	return err;
}

static sk_err truncate_topic_dir(index_set *s, uint32_t topic_id, uint64_t index)
{
	char dir[SK_PATH_BYTES_MAX];
	if (topic_dir_path(s, topic_id, dir, sizeof(dir)))
		return SK_EINVAL;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? SK_OK : SK_EIO;
	sk_err err = SK_OK;
	struct dirent *de;
	while (!err && (de = readdir(d)) != NULL) {
		uint32_t partition;
		if (!parse_u32_name(de->d_name, ".idx", &partition))
			continue;
		struct idx_part *p = part_get(s, topic_id, partition, &err);
		if (p)
			err = truncate_part(s, p, index);
	}
	closedir(d);
	return err;
}

sk_err index_truncate_after(index_set *s, uint64_t index)
{
	/* Every file on disk, not only the partitions this process has touched. */
	DIR *d = opendir(s->dir);
	if (!d) {
		log_error("index_dir_open_failed", "errno=%d dir=%s", errno, s->dir);
		return SK_EIO;
	}
	sk_err err = SK_OK;
	struct dirent *de;
	while (!err && (de = readdir(d)) != NULL) {
		uint32_t topic_id;
		if (parse_u32_name(de->d_name, "", &topic_id))
			err = truncate_topic_dir(s, topic_id, index);
	}
	closedir(d);
	return err;
}

/* First entry in [0, count) whose records are not wholly below log_start. */
static sk_err first_kept(const struct idx_part *p, uint64_t log_start, uint64_t *out)
{
	uint64_t lo = 0, hi = p->count;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		uint8_t raw[SK_INDEX_ENTRY_BYTES];
		sk_err err = read_entries(p, mid, 1, raw);
		if (err)
			return err;
		struct index_entry e;
		index_entry_decode(raw, &e);
		if (e.base_offset + e.record_count <= log_start)
			lo = mid + 1;
		else
			hi = mid;
	}
	*out = lo;
	return SK_OK;
}

/* Copy entries [first, count) of p into fd. */
static sk_err copy_entries(const struct idx_part *p, uint64_t first, int fd)
{
	uint8_t buf[INDEX_CHUNK_ENTRIES * SK_INDEX_ENTRY_BYTES];
	for (uint64_t i = first; i < p->count;) {
		uint64_t n = p->count - i < INDEX_CHUNK_ENTRIES ? p->count - i : INDEX_CHUNK_ENTRIES;
		sk_err err = read_entries(p, i, n, buf);
		if (err)
			return err;
		size_t bytes = (size_t)n * SK_INDEX_ENTRY_BYTES;
		ssize_t w = pwrite(fd, buf, bytes, (off_t)((i - first) * SK_INDEX_ENTRY_BYTES));
		if (w != (ssize_t)bytes)
			return w < 0 && errno != ENOSPC ? SK_EIO : SK_EFULL;
		i += n;
	}
	return SK_OK;
}

/* Write entries [first, count) to <partition>.idx.tmp, sync it and rename it over the file. */
static sk_err rewrite_from(index_set *s, struct idx_part *p, uint64_t first)
{
	char path[SK_PATH_BYTES_MAX], tmp[SK_PATH_BYTES_MAX], dir[SK_PATH_BYTES_MAX];
	if (part_path(s, p->topic_id, p->partition, "", path, sizeof(path)) ||
	    part_path(s, p->topic_id, p->partition, ".tmp", tmp, sizeof(tmp)) ||
	    topic_dir_path(s, p->topic_id, dir, sizeof(dir)))
		return SK_EINVAL;
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_error("index_tmp_open_failed", "errno=%d path=%s", errno, tmp);
		return errno == ENOSPC ? SK_EFULL : SK_EIO;
	}
	sk_err err = copy_entries(p, first, fd);
	if (!err && fdatasync(fd) != 0)
		err = SK_EIO;
	if (!err && rename(tmp, path) != 0)
		err = SK_EIO;
	if (err) {
		log_error("index_rewrite_failed", "errno=%d path=%s", errno, tmp);
		close(fd);
		unlink(tmp);
		return err;
	}
	part_close_fd(s, p);
	p->fd = fd;
	s->open_fds++;
	p->count -= first;
	return fsync_dir(dir);
}

sk_err index_trim_before(index_set *s, uint32_t topic_id, uint32_t partition, uint64_t log_start)
{
	sk_err err;
	struct idx_part *p = part_get(s, topic_id, partition, &err);
	if (!p)
		return err;
	if (p->count == 0)
		return SK_OK;
	err = part_open_fd(s, p, false);
	if (err)
		return err;
	uint64_t first;
	err = first_kept(p, log_start, &first);
	if (err)
		return err;
	/* Keep the last entry: it alone remembers the partition's next offset. */
	if (first >= p->count)
		first = p->count - 1;
	if (first == 0)
		return SK_OK;
	return rewrite_from(s, p, first);
}

sk_err index_sync(index_set *s)
{
	bool sync_index_dir = false;
	sk_err err = SK_OK;
	size_t i = 0;
	for (; i < s->dirty_n && !err; i++) {
		struct idx_part *p = s->dirty[i];
		if (p->fd >= 0 && fdatasync(p->fd) != 0) {
			log_error("index_fdatasync_failed", "errno=%d topic=%u partition=%u", errno,
				  p->topic_id, p->partition);
			err = SK_EIO;
			break;
		}
		if (p->new_file) {
			char dir[SK_PATH_BYTES_MAX];
			err = topic_dir_path(s, p->topic_id, dir, sizeof(dir));
			if (!err)
				err = fsync_dir(dir);
			if (err)
				break;
		}
		sync_index_dir = sync_index_dir || p->new_dir;
		p->new_file = false;
		p->new_dir = false;
		p->dirty = false;
	}
	if (!err && sync_index_dir)
		err = fsync_dir(s->dir);
	/* Keep the ones not yet synced for the next call (a failed sync stops the writer anyway). */
	if (i < s->dirty_n)
		memmove(s->dirty, s->dirty + i, (s->dirty_n - i) * sizeof(*s->dirty));
	s->dirty_n -= i;
	return err;
}
