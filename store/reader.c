/* The read path: index files (layout in store/index.c) + journal segments (frame
 * layout in store/frame.c), opened read-only and cached.
 *
 * Visibility: an index entry is visible when it is plausible (index >= 1,
 * record_count >= 1, frame_bytes >= a header) and its raft index is <= commit_index.
 * Entries are in raft index order, so the visible ones are a prefix found by binary
 * search; the high watermark is base_offset + record_count of the last one.
 * Entries the writer is appending are above the commit index, so a torn read of
 * one is never trusted.
 *
 * Files change under a reader: the writer appends to index files, truncates them
 * (raft truncation, never below the commit index) and replaces them by rename
 * (retention trims). Each call stat()s the index path once and reopens when the
 * inode changed; segments are re-checked the same way once per call.
 *
 * Every frame is read whole into one buffer of SK_FRAME_BYTES_MAX bytes allocated
 * at open, passed through frame_decode() (CRC, lengths, records) and matched
 * against its index entry before any record is handed out. */
#include "store/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sk_limits.h"
#include "store/frame.h"
#include "store/index.h"

/* Cached descriptors: direct-mapped, a collision closes the older one. */
#define READER_PART_SLOTS 256
#define READER_SEG_SLOTS 16
/* Index entries read per pread when walking forward or summing bytes. */
#define READER_CHUNK_ENTRIES 64

struct reader_part {
	bool used;
	uint32_t topic_id;
	uint32_t partition;
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t count;     /* entries in the file at the last stat */
	uint64_t sum_count; /* frame_bytes summed over entries [0, sum_count) */
	uint64_t sum_bytes;
};

struct reader_seg {
	bool used;
	uint64_t segment_id;
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t checked_call; /* the call that last confirmed the path still names this file */
};

struct store_reader {
	char index_dir[SK_PATH_BYTES_MAX];
	char journal_dir[SK_PATH_BYTES_MAX];
	uint8_t *frame_buf; /* SK_FRAME_BYTES_MAX */
	uint64_t call;
	uint64_t pread_count;
	/* The frame now in frame_buf, already verified: consecutive reads inside one big
	 * batch frame (limit < its records) do not read and check it again. */
	bool cached_valid;
	struct index_entry cached_entry;
	dev_t cached_dev;
	ino_t cached_ino;
	struct frame_header cached_header;
	struct reader_part parts[READER_PART_SLOTS];
	struct reader_seg segs[READER_SEG_SLOTS];
};

/* A partition as seen by one call: its entries and the visible prefix. */
struct part_view {
	struct reader_part *part; /* NULL: no index file, nothing stored */
	uint64_t visible;         /* entries [0, visible) are visible */
	struct index_entry first; /* valid when part->count > 0 */
	struct index_entry last;  /* the last visible entry, valid when visible > 0 */
};

sk_err reader_open(const char *data_dir, store_reader **out)
{
	store_reader *rd = calloc(1, sizeof(*rd));
	if (!rd)
		return SK_ENOMEM;
	sk_err err = SK_EINVAL;
	int a = snprintf(rd->index_dir, sizeof(rd->index_dir), "%s/index", data_dir);
	int b = snprintf(rd->journal_dir, sizeof(rd->journal_dir), "%s/journal", data_dir);
	/* Leave room for "/<u32>/<u32>.idx" and "/<20 digits>.seg". */
	if (a < 0 || b < 0 || (size_t)a + 32 >= sizeof(rd->index_dir) ||
	    (size_t)b + 32 >= sizeof(rd->journal_dir))
		goto out_free;
	err = SK_ENOMEM;
	rd->frame_buf = malloc(SK_FRAME_BYTES_MAX);
	if (!rd->frame_buf)
		goto out_free;
	for (int i = 0; i < READER_PART_SLOTS; i++)
		rd->parts[i].fd = -1;
	for (int i = 0; i < READER_SEG_SLOTS; i++)
		rd->segs[i].fd = -1;
	*out = rd;
	return SK_OK;
out_free:
	free(rd);
	return err;
}

void reader_close(store_reader *rd)
{
	if (!rd)
		return;
	for (int i = 0; i < READER_PART_SLOTS; i++)
		if (rd->parts[i].fd >= 0)
			close(rd->parts[i].fd);
	for (int i = 0; i < READER_SEG_SLOTS; i++)
		if (rd->segs[i].fd >= 0)
			close(rd->segs[i].fd);
	free(rd->frame_buf);
	free(rd);
}

uint64_t reader_pread_count(const store_reader *rd) { return rd->pread_count; }

static ssize_t reader_pread(store_reader *rd, int fd, void *buf, size_t len, uint64_t at)
{
	rd->pread_count++;
	size_t done = 0;
	/* Loop: a pread of a large frame may return less than asked. */
	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(at + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* ---- index files ---- */

static void part_forget(struct reader_part *p)
{
	if (p->fd >= 0)
		close(p->fd);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

/* Stat the partition's index file and (re)open it if it is not the cached one.
 * *out = NULL when there is no index file (nothing stored yet). */
static sk_err part_refresh(store_reader *rd, uint32_t topic_id, uint32_t partition,
			   struct reader_part **out)
{
	*out = NULL;
	uint32_t slot = (topic_id * 2654435761u) ^ (partition * 40503u);
	struct reader_part *p = &rd->parts[slot % READER_PART_SLOTS];
	char path[SK_PATH_BYTES_MAX];
	int n = snprintf(path, sizeof(path), "%s/%u/%u.idx", rd->index_dir, topic_id, partition);
	if (n < 0 || (size_t)n >= sizeof(path))
		return SK_EINVAL;
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT)
			return SK_OK;
		log_error("reader_index_stat_failed", "errno=%d path=%s", errno, path);
		return SK_EIO;
	}
	bool same = p->used && p->topic_id == topic_id && p->partition == partition &&
		    p->dev == st.st_dev && p->ino == st.st_ino;
	if (!same) {
		part_forget(p);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		/* fstat the descriptor: the path may have been renamed over since the stat. */
		if (fd < 0 || fstat(fd, &st) != 0) {
			int saved = errno;
			if (fd >= 0)
				close(fd);
			if (saved == ENOENT)
				return SK_OK;
			log_error("reader_index_open_failed", "errno=%d path=%s", saved, path);
			return SK_EIO;
		}
		p->used = true;
		p->topic_id = topic_id;
		p->partition = partition;
		p->fd = fd;
		p->dev = st.st_dev;
		p->ino = st.st_ino;
	}
	/* A partial entry being written is not counted. */
	p->count = (uint64_t)st.st_size / SK_INDEX_ENTRY_BYTES;
	if (p->sum_count > p->count) {
		p->sum_count = 0;
		p->sum_bytes = 0;
	}
	*out = p;
	return SK_OK;
}

/* SK_ENOTFOUND when the file ended before entry i (the writer truncated it after
 * the stat; only entries above the commit index are ever cut). */
static sk_err entry_read(store_reader *rd, struct reader_part *p, uint64_t i, struct index_entry *e)
{
	uint8_t raw[SK_INDEX_ENTRY_BYTES];
	ssize_t got = reader_pread(rd, p->fd, raw, sizeof(raw), i * SK_INDEX_ENTRY_BYTES);
	if (got >= 0 && got < (ssize_t)sizeof(raw))
		return SK_ENOTFOUND;
	if (got != (ssize_t)sizeof(raw)) {
		log_error("reader_index_read_failed", "errno=%d topic=%u partition=%u entry=%llu", errno,
			  p->topic_id, p->partition, (unsigned long long)i);
		return SK_EIO;
	}
	index_entry_decode(raw, e);
	return SK_OK;
}

static bool entry_visible(const struct index_entry *e, uint64_t commit_index)
{
	return e->index >= 1 && e->record_count >= 1 && e->frame_bytes >= SK_FRAME_HEADER_BYTES &&
	       e->index <= commit_index;
}

/* Fill v: the visible prefix (binary search on the raft index), first and last entries. */
static sk_err part_view_get(store_reader *rd, uint32_t topic_id, uint32_t partition,
			    uint64_t commit_index, struct part_view *v)
{
	memset(v, 0, sizeof(*v));
	sk_err err = part_refresh(rd, topic_id, partition, &v->part);
	if (err || !v->part || v->part->count == 0)
		return err;
	struct reader_part *p = v->part;
	err = entry_read(rd, p, 0, &v->first);
	if (err)
		return err;
	uint64_t lo = 0, hi = p->count;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		struct index_entry e;
		err = entry_read(rd, p, mid, &e);
		if (err && err != SK_ENOTFOUND)
			return err;
		if (!err && entry_visible(&e, commit_index)) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	v->visible = lo;
	err = lo > 0 ? entry_read(rd, p, lo - 1, &v->last) : SK_OK;
	return err == SK_ENOTFOUND ? SK_EIO : err;
}

/* Journal bytes of entries [0, visible): summed incrementally across calls. */
static sk_err part_bytes(store_reader *rd, struct part_view *v, uint64_t *bytes_out)
{
	struct reader_part *p = v->part;
	if (p->sum_count > v->visible) {
		p->sum_count = 0;
		p->sum_bytes = 0;
	}
	uint8_t buf[READER_CHUNK_ENTRIES * SK_INDEX_ENTRY_BYTES];
	while (p->sum_count < v->visible) {
		uint64_t n = v->visible - p->sum_count;
		if (n > READER_CHUNK_ENTRIES)
			n = READER_CHUNK_ENTRIES;
		size_t len = (size_t)n * SK_INDEX_ENTRY_BYTES;
		if (reader_pread(rd, p->fd, buf, len, p->sum_count * SK_INDEX_ENTRY_BYTES) != (ssize_t)len)
			return SK_EIO;
		for (uint64_t i = 0; i < n; i++) {
			struct index_entry e;
			index_entry_decode(buf + i * SK_INDEX_ENTRY_BYTES, &e);
			p->sum_bytes += e.frame_bytes;
		}
		p->sum_count += n;
	}
	*bytes_out = p->sum_bytes;
	return SK_OK;
}

sk_err reader_partition_info(store_reader *rd, uint32_t topic_id, uint32_t partition,
			     uint64_t commit_index, struct reader_partition_info *out)
{
	memset(out, 0, sizeof(*out));
	rd->call++;
	struct part_view v;
	sk_err err = part_view_get(rd, topic_id, partition, commit_index, &v);
	if (err || !v.part || v.part->count == 0)
		return err;
	out->log_start = v.first.base_offset;
	if (v.visible == 0) {
		out->high_watermark = out->log_start;
		return SK_OK;
	}
	out->high_watermark = v.last.base_offset + v.last.record_count;
	return part_bytes(rd, &v, &out->bytes);
}

/* ---- segments and frames ---- */

/* The open segment, checked once per call to still be the file its path names. */
static sk_err seg_fd(store_reader *rd, uint64_t segment_id, struct reader_seg **out)
{
	struct reader_seg *g = &rd->segs[segment_id % READER_SEG_SLOTS];
	if (g->used && g->segment_id == segment_id && g->checked_call == rd->call) {
		*out = g;
		return SK_OK;
	}
	char path[SK_PATH_BYTES_MAX];
	int n = snprintf(path, sizeof(path), "%s/%020llu.seg", rd->journal_dir,
			 (unsigned long long)segment_id);
	if (n < 0 || (size_t)n >= sizeof(path))
		return SK_EINVAL;
	struct stat st;
	if (stat(path, &st) != 0) {
		/* Removed by retention after the index was read: the data is below the log start. */
		log_warn("reader_segment_missing", "errno=%d path=%s", errno, path);
		return errno == ENOENT ? SK_ERANGE : SK_EIO;
	}
	if (!(g->used && g->segment_id == segment_id && g->dev == st.st_dev && g->ino == st.st_ino)) {
		if (g->fd >= 0)
			close(g->fd);
		memset(g, 0, sizeof(*g));
		g->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (g->fd < 0) {
			log_error("reader_segment_open_failed", "errno=%d path=%s", errno, path);
			return errno == ENOENT ? SK_ERANGE : SK_EIO;
		}
		g->used = true;
		g->segment_id = segment_id;
		g->dev = st.st_dev;
		g->ino = st.st_ino;
	}
	g->checked_call = rd->call;
	*out = g;
	return SK_OK;
}

static sk_err frame_corrupt(const store_reader *rd, const struct index_entry *e, const char *why)
{
	log_error("reader_frame_corrupt", "file=%s/%020llu.seg position=%llu index=%llu why=\"%s\"",
		  rd->journal_dir, (unsigned long long)e->segment_id, (unsigned long long)e->position,
		  (unsigned long long)e->index, why);
	return SK_ECORRUPT;
}

static bool entry_same(const struct index_entry *a, const struct index_entry *b)
{
	return a->base_offset == b->base_offset && a->index == b->index &&
	       a->segment_id == b->segment_id && a->position == b->position &&
	       a->record_count == b->record_count && a->frame_bytes == b->frame_bytes;
}

/* Read the frame of entry e into rd->frame_buf and check it against e (or reuse
 * the frame already there when e names the same bytes of the same file). */
static sk_err frame_load(store_reader *rd, uint32_t topic_id, uint32_t partition,
			 const struct index_entry *e, struct frame_header *h)
{
	if (e->frame_bytes > SK_FRAME_BYTES_MAX || e->frame_bytes < SK_FRAME_HEADER_BYTES)
		return frame_corrupt(rd, e, "index entry frame_bytes out of range");
	struct reader_seg *g;
	sk_err err = seg_fd(rd, e->segment_id, &g);
	if (err)
		return err;
	if (rd->cached_valid && rd->cached_dev == g->dev && rd->cached_ino == g->ino &&
	    entry_same(&rd->cached_entry, e)) {
		*h = rd->cached_header;
		return SK_OK;
	}
	rd->cached_valid = false;
	int fd = g->fd;
	ssize_t got = reader_pread(rd, fd, rd->frame_buf, e->frame_bytes, e->position);
	if (got < 0) {
		log_error("reader_segment_read_failed", "errno=%d segment=%llu", errno,
			  (unsigned long long)e->segment_id);
		return SK_EIO;
	}
	if ((size_t)got != e->frame_bytes)
		return frame_corrupt(rd, e, "segment ends inside the frame");
	const char *why = NULL;
	if (frame_decode(rd->frame_buf, (size_t)got, h, &why) != SK_OK)
		return frame_corrupt(rd, e, why ? why : "frame_decode failed");
	if (h->kind != FRAME_RECORD_BATCH || h->length != e->frame_bytes || h->index != e->index ||
	    h->topic_id != topic_id || h->partition != partition ||
	    h->base_offset != e->base_offset || h->record_count != e->record_count)
		return frame_corrupt(rd, e, "frame does not match its index entry");
	rd->cached_valid = true;
	rd->cached_entry = *e;
	rd->cached_dev = g->dev;
	rd->cached_ino = g->ino;
	rd->cached_header = *h;
	return SK_OK;
}

/* Limits and progress of one reader_read call. */
struct read_state {
	uint64_t offset; /* next offset to deliver */
	uint32_t limit;
	uint64_t max_bytes;
	uint32_t delivered;
	uint64_t value_bytes;
	bool stop;
	reader_record_cb cb;
	void *arg;
};

/* Deliver the records of the frame in rd->frame_buf at or after rs->offset. */
static sk_err frame_deliver(store_reader *rd, const struct index_entry *e,
			    const struct frame_header *h, struct read_state *rs)
{
	const uint8_t *body = rd->frame_buf + SK_FRAME_HEADER_BYTES;
	size_t pos = 0;
	for (uint32_t r = 0; r < h->record_count && !rs->stop; r++) {
		struct record_view rv;
		if (record_decode(body, h->body_bytes, &pos, &rv) != SK_OK)
			return frame_corrupt(rd, e, "record does not decode");
		uint64_t offset = h->base_offset + r;
		if (offset < rs->offset)
			continue;
		if (rs->delivered > 0 && rs->value_bytes + rv.value_len > rs->max_bytes) {
			rs->stop = true;
			break;
		}
		/* false: the callback did not take this record; the next read starts at it. */
		if (!rs->cb(rs->arg, offset, h->timestamp_ms, &rv)) {
			rs->stop = true;
			break;
		}
		rs->delivered++;
		rs->value_bytes += rv.value_len;
		rs->offset = offset + 1;
		if (rs->delivered >= rs->limit)
			rs->stop = true;
	}
	return SK_OK;
}

/* Index entries read ahead by the forward walk, so a read of many small frames
 * costs one pread per READER_CHUNK_ENTRIES entries plus one per frame. */
struct entry_chunk {
	uint64_t first;
	uint64_t n;
	uint8_t raw[READER_CHUNK_ENTRIES * SK_INDEX_ENTRY_BYTES];
};

static sk_err chunk_entry(store_reader *rd, struct reader_part *p, struct entry_chunk *c, uint64_t i,
			  uint64_t visible, struct index_entry *e)
{
	if (i < c->first || i >= c->first + c->n) {
		uint64_t n = visible - i < READER_CHUNK_ENTRIES ? visible - i : READER_CHUNK_ENTRIES;
		size_t len = (size_t)n * SK_INDEX_ENTRY_BYTES;
		if (reader_pread(rd, p->fd, c->raw, len, i * SK_INDEX_ENTRY_BYTES) != (ssize_t)len) {
			log_error("reader_index_read_failed", "errno=%d topic=%u partition=%u entry=%llu",
				  errno, p->topic_id, p->partition, (unsigned long long)i);
			return SK_EIO;
		}
		c->first = i;
		c->n = n;
	}
	index_entry_decode(c->raw + (i - c->first) * SK_INDEX_ENTRY_BYTES, e);
	return SK_OK;
}

/* Index of the last entry in [0, visible) with base_offset <= offset. */
static sk_err find_entry(store_reader *rd, struct reader_part *p, uint64_t visible, uint64_t offset,
			 uint64_t *i_out)
{
	uint64_t lo = 0, hi = visible; /* answer in [lo, hi) */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		struct index_entry e;
		sk_err err = entry_read(rd, p, mid, &e);
		if (err)
			return err == SK_ENOTFOUND ? SK_EIO : err;
		if (e.base_offset <= offset)
			lo = mid;
		else
			hi = mid;
	}
	*i_out = lo;
	return SK_OK;
}

sk_err reader_read(store_reader *rd, uint32_t topic_id, uint32_t partition, uint64_t offset,
		   uint64_t commit_index, uint32_t limit, uint64_t max_bytes, reader_record_cb cb,
		   void *arg, uint64_t *next_offset_out)
{
	*next_offset_out = offset;
	rd->call++;
	struct part_view v;
	sk_err err = part_view_get(rd, topic_id, partition, commit_index, &v);
	if (err || !v.part || v.part->count == 0)
		return err;
	if (offset < v.first.base_offset)
		return SK_ERANGE;
	if (v.visible == 0 || limit == 0 || offset >= v.last.base_offset + v.last.record_count)
		return SK_OK;
	uint64_t i;
	err = find_entry(rd, v.part, v.visible, offset, &i);
	struct read_state rs = {.offset = offset, .limit = limit, .max_bytes = max_bytes, .cb = cb,
				.arg = arg};
	struct entry_chunk chunk = {0};
	for (; !err && i < v.visible && !rs.stop; i++) {
		struct index_entry e;
		struct frame_header h;
		err = chunk_entry(rd, v.part, &chunk, i, v.visible, &e);
		if (!err && rs.delivered > 0 && e.base_offset != rs.offset)
			err = frame_corrupt(rd, &e, "offsets not dense between index entries");
		if (!err)
			err = frame_load(rd, topic_id, partition, &e, &h);
		if (!err)
			err = frame_deliver(rd, &e, &h, &rs);
	}
	*next_offset_out = rs.offset;
	return err;
}
