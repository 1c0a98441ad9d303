/* Helpers shared by test_journal.c and test_recovery.c (header-only, static). */
#ifndef SK_TESTS_JOURNAL_TESTLIB_H
#define SK_TESTS_JOURNAL_TESTLIB_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/frame.h"
#include "store/journal.h"
#include "store/journal_fault.h"
#include "store/record.h"
#include "store/recovery.h"

#define TL_SEGMENT_BYTES (1024 * 1024)

static char tl_dir[256];

static inline int tl_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void tl_rmrf(const char *dir) { nftw(dir, tl_rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* A fresh data_dir under TMPDIR (or /tmp). */
static inline const char *tl_fresh_dir(void)
{
	if (tl_dir[0])
		tl_rmrf(tl_dir);
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tl_dir, sizeof(tl_dir), "%s/sk-journal-test-XXXXXX", base);
	if (mkdtemp(tl_dir) == NULL)
		abort();
	return tl_dir;
}

static inline void tl_cleanup(void)
{
	if (tl_dir[0])
		tl_rmrf(tl_dir);
	tl_dir[0] = '\0';
}

/* Open a journal on dir with the fault table, synchronous preparation. */
static inline journal *tl_open(const char *dir, uint64_t segment_bytes)
{
	struct journal_opts o = {.data_dir = dir, .segment_bytes = segment_bytes,
				 .io = journal_fault_io(), .prepare_async = false};
	journal *j = NULL;
	if (journal_open(&o, &j) != SK_OK)
		abort();
	return j;
}

/* Open and recover from scratch (no checkpoint). Aborts on failure. */
static inline journal *tl_open_recovered(const char *dir, uint64_t segment_bytes, struct recovery_result *res)
{
	journal *j = tl_open(dir, segment_bytes);
	struct meta_checkpoint cp = {0};
	char why[SK_RECOVERY_WHY_BYTES];
	struct recovery_result r;
	if (journal_recover(j, &cp, NULL, NULL, res ? res : &r, why, sizeof(why)) != SK_OK) {
		fprintf(stderr, "recover failed: %s\n", why);
		abort();
	}
	return j;
}

/* Encode a record batch of count records (value = "v<index>-<i>", padded to value_bytes)
 * into out; returns the frame length. */
static inline size_t tl_batch_frame(uint8_t *out, size_t cap, uint64_t index, uint64_t durable_index,
			     uint32_t topic, uint32_t partition, uint64_t base_offset, uint32_t count,
			     size_t value_bytes, uint64_t ingress_seq)
{
	static uint8_t body[65536];
	size_t pos = 0, used;
	for (uint32_t i = 0; i < count; i++) {
		char value[4096];
		memset(value, 'x', sizeof(value));
		int n = snprintf(value, sizeof(value), "v%llu-%u", (unsigned long long)index, i);
		size_t vlen = value_bytes > (size_t)n ? value_bytes : (size_t)n;
		struct record_view rv = {.value = (const uint8_t *)value, .value_len = (uint32_t)vlen};
		if (record_encode(body + pos, sizeof(body) - pos, &rv, &used) != SK_OK)
			abort();
		pos += used;
	}
	struct frame_header h = {.kind = FRAME_RECORD_BATCH, .term = 1, .index = index,
				 .topic_id = topic, .partition = partition, .base_offset = base_offset,
				 .record_count = count, .body_bytes = (uint32_t)pos,
				 .timestamp_ms = 1000 + index, .ingress_seq = ingress_seq,
				 .durable_index = durable_index};
	if (frame_encode(out, cap, &h, body, &used) != SK_OK)
		abort();
	return used;
}

/* Append frames for indexes [first, first+n) as one batch (one write, one sync unless
 * sync is false); every frame holds `records` records of partition 0 of topic 1. */
static inline void tl_append(journal *j, uint64_t n, uint32_t records, size_t value_bytes, bool sync)
{
	static uint8_t buf[1 << 20];
	size_t used = 0;
	uint64_t first = journal_last_index(j) + 1;
	uint64_t durable = journal_durable_index(j);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t idx = first + i;
		used += tl_batch_frame(buf + used, sizeof(buf) - used, idx, durable, 1, 0, (idx - 1) * records,
				       records, value_bytes, idx);
	}
	if (journal_room(j) < used && journal_roll(j, used) != SK_OK)
		abort();
	struct iovec iov = {.iov_base = buf, .iov_len = used};
	if (journal_write(j, &iov, 1, used, first + n - 1, 1) != SK_OK)
		abort();
	if (sync && journal_sync(j) != SK_OK)
		abort();
}

static inline uint64_t tl_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static inline bool tl_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static inline char *tl_read_file(const char *path, size_t *len_out)
{
	*len_out = 0;
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		abort();
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	*len_out = (size_t)n;
	return buf;
}

static inline void tl_poke(const char *path, uint64_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0 || pwrite(fd, bytes, n, (off_t)off) != (ssize_t)n)
		abort();
	close(fd);
}

/* data_dir/journal/<id, 20 digits>.seg in a static buffer (valid until the next call). */
static inline const char *tl_seg_path(const char *dir, uint64_t id)
{
	static char seg_path_buf[1024];
	snprintf(seg_path_buf, sizeof(seg_path_buf), "%s/journal/%020llu.seg", dir,
		 (unsigned long long)id);
	return seg_path_buf;
}

/* cmocka fixtures: a fresh directory and no fault armed, before and after each test. */
static inline int tl_setup(void **state)
{
	journal_fault_reset();
	tl_fresh_dir();
	return 0;
}

static inline int tl_teardown(void **state)
{
	journal_fault_reset();
	tl_cleanup();
	return 0;
}

#endif
