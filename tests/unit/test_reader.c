/* The read path against a journal built by hand: frames are encoded here from the
 * byte layout (not with the frame codec), so this also checks that the codec and
 * the reader agree on the format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "store/index.h"
#include "store/reader.h"
#include "store/record.h"

#define MAX_GOT 4096

struct got {
	uint32_t n;
	uint32_t stop_after; /* 0 = never stop early */
	bool refuse_all;
	uint64_t offset[MAX_GOT];
	uint64_t ts[MAX_GOT];
	char value[MAX_GOT][32];
	char key[MAX_GOT][16];
};

struct fixture {
	char dir[64];
	index_set *idx;
	store_reader *rd;
	int seg_fd;
	uint64_t segment_id;
	uint64_t position;
	uint64_t next_index;
	uint64_t segment_bytes; /* roll to a new segment past this */
	struct got got;
};

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void seg_path(const struct fixture *f, uint64_t segment_id, char *out, size_t cap)
{
	snprintf(out, cap, "%s/journal/%020llu.seg", f->dir, (unsigned long long)segment_id);
}

static void seg_start(struct fixture *f)
{
	if (f->seg_fd >= 0)
		close(f->seg_fd);
	char path[160];
	f->segment_id = f->next_index;
	seg_path(f, f->segment_id, path, sizeof(path));
	f->seg_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(f->seg_fd >= 0);
	f->position = 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/skiff-test-reader-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	char journal[96];
	snprintf(journal, sizeof(journal), "%s/journal", f->dir);
	if (mkdir(journal, 0755) != 0)
		return -1;
	if (index_set_open(f->dir, &f->idx) != SK_OK || reader_open(f->dir, &f->rd) != SK_OK)
		return -1;
	f->seg_fd = -1;
	f->next_index = 1;
	f->segment_bytes = UINT64_MAX;
	*state = f;
	seg_start(f);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	reader_close(f->rd);
	index_set_close(f->idx);
	close(f->seg_fd);
	nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Encode a record-batch frame by hand from the documented layout. Returns its length. */
static size_t make_frame(uint8_t *out, size_t cap, uint64_t index, uint32_t topic, uint32_t partition,
			 uint64_t base, uint32_t count, uint64_t ts, const char *const *values)
{
	size_t body = 0;
	uint8_t *b = out + 80;
	for (uint32_t i = 0; i < count; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%llu", (unsigned long long)(base + i));
		struct record_view rv = {.key = (const uint8_t *)key,
					 .key_len = (uint32_t)strlen(key),
					 .value = (const uint8_t *)values[i],
					 .value_len = (uint32_t)strlen(values[i])};
		size_t used;
		assert_int_equal(record_encode(b + body, cap - 80 - body, &rv, &used), SK_OK);
		body += used;
	}
	size_t length = (80 + body + 7) & ~(size_t)7;
	assert_true(length <= cap);
	memset(out + 80 + body, 0, length - 80 - body);
	put_u32(out + 0, 0x31464b53u);
	put_u32(out + 4, (uint32_t)length);
	put_u16(out + 12, 1);
	put_u16(out + 14, 1);
	put_u64(out + 16, 1);
	put_u64(out + 24, index);
	put_u32(out + 32, topic);
	put_u32(out + 36, partition);
	put_u64(out + 40, base);
	put_u32(out + 48, count);
	put_u32(out + 52, (uint32_t)body);
	put_u64(out + 56, ts);
	put_u64(out + 64, index);
	put_u64(out + 72, index - 1);
	uint32_t crc = crc32c(0, out, 8);
	put_u32(out + 8, crc32c(crc, out + 12, length - 12));
	return length;
}

/* Append one frame of count records with values "v<offset>" to the journal and index. */
static uint64_t add_frame(struct fixture *f, uint32_t topic, uint32_t partition, uint32_t count)
{
	static uint8_t buf[64 * 1024];
	static char vals[256][32];
	const char *values[256];
	assert_true(count <= 256);
	uint64_t base = index_next_offset(f->idx, topic, partition);
	for (uint32_t i = 0; i < count; i++) {
		snprintf(vals[i], sizeof(vals[i]), "v%llu", (unsigned long long)(base + i));
		values[i] = vals[i];
	}
	if (f->position >= f->segment_bytes)
		seg_start(f);
	uint64_t index = f->next_index++;
	size_t len = make_frame(buf, sizeof(buf), index, topic, partition, base, count, 5000 + index,
				values);
	assert_int_equal(pwrite(f->seg_fd, buf, len, (off_t)f->position), (ssize_t)len);
	struct index_entry e = {.base_offset = base,
				.index = index,
				.segment_id = f->segment_id,
				.position = f->position,
				.record_count = count,
				.frame_bytes = (uint32_t)len,
				.timestamp_ms = 5000 + index};
	assert_int_equal(index_append(f->idx, topic, partition, &e), SK_OK);
	f->position += len;
	return index;
}

static bool collect_cb(void *arg, uint64_t offset, uint64_t timestamp_ms, const struct record_view *rec)
{
	struct got *g = arg;
	if (g->refuse_all || (g->stop_after && g->n >= g->stop_after))
		return false; /* refuse this one */
	assert_true(g->n < MAX_GOT);
	assert_true(rec->value_len < sizeof(g->value[0]) && rec->key_len < sizeof(g->key[0]));
	g->offset[g->n] = offset;
	g->ts[g->n] = timestamp_ms;
	memcpy(g->value[g->n], rec->value, rec->value_len);
	g->value[g->n][rec->value_len] = 0;
	memcpy(g->key[g->n], rec->key, rec->key_len);
	g->key[g->n][rec->key_len] = 0;
	g->n++;
	return true;
}

static sk_err read_at(struct fixture *f, uint32_t t, uint32_t p, uint64_t offset, uint64_t commit,
		      uint32_t limit, uint64_t max_bytes, uint64_t *next)
{
	f->got.n = 0;
	return reader_read(f->rd, t, p, offset, commit, limit, max_bytes, collect_cb, &f->got, next);
}

/* Check that got holds offsets first..first+n-1 with their values. */
static void expect_dense(const struct got *g, uint64_t first, uint32_t n)
{
	assert_int_equal(g->n, n);
	for (uint32_t i = 0; i < n; i++) {
		char want[32];
		assert_int_equal(g->offset[i], first + i);
		snprintf(want, sizeof(want), "v%llu", (unsigned long long)(first + i));
		assert_string_equal(g->value[i], want);
		snprintf(want, sizeof(want), "k%llu", (unsigned long long)(first + i));
		assert_string_equal(g->key[i], want);
	}
}

static void corrupt_byte(struct fixture *f, uint64_t segment_id, uint64_t at)
{
	char path[160];
	seg_path(f, segment_id, path, sizeof(path));
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)at), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)at), 1);
	close(fd);
}

/* ---- must reject ---- */

static void test_reader_offset_below_log_start_is_erange(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 5; i++)
		add_frame(f, 1, 0, 4); /* offsets 0..19 */
	assert_int_equal(index_trim_before(f->idx, 1, 0, 9), SK_OK); /* drops [0,4) and [4,8) */
	uint64_t next = 77;
	assert_int_equal(read_at(f, 1, 0, 7, 100, 10, 1 << 20, &next), SK_ERANGE);
	assert_int_equal(next, 7);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(read_at(f, 1, 0, 0, 100, 10, 1 << 20, &next), SK_ERANGE);
	/* the first kept frame starts at 8: readable even though 8 < 9 (meta's log start rules) */
	assert_int_equal(read_at(f, 1, 0, 8, 100, 100, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 8, 12);
	struct reader_partition_info info;
	assert_int_equal(reader_partition_info(f->rd, 1, 0, 100, &info), SK_OK);
	assert_int_equal(info.log_start, 8);
	assert_int_equal(info.high_watermark, 20);
}

static void test_reader_corrupted_frame_is_ecorrupt(void **state)
{
	struct fixture *f = *state;
	add_frame(f, 1, 0, 3);
	uint64_t second_at = f->position;
	add_frame(f, 1, 0, 3);
	add_frame(f, 1, 0, 3);
	corrupt_byte(f, f->segment_id, second_at + 90); /* inside the second frame's body */
	uint64_t next;
	/* what stays inside the first frame is still served */
	assert_int_equal(read_at(f, 1, 0, 0, 100, 3, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 0, 3);
	/* a read that reaches the bad frame fails, after delivering what came before it */
	assert_int_equal(read_at(f, 1, 0, 1, 100, 100, 1 << 20, &next), SK_ECORRUPT);
	expect_dense(&f->got, 1, 2);
	assert_int_equal(next, 3);
	assert_int_equal(read_at(f, 1, 0, 4, 100, 100, 1 << 20, &next), SK_ECORRUPT);
	assert_int_equal(f->got.n, 0);
	/* the frame after it is fine */
	assert_int_equal(read_at(f, 1, 0, 6, 100, 100, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 6, 3);
}

static void test_reader_every_header_byte_corruption_is_detected(void **state)
{
	struct fixture *f = *state;
	add_frame(f, 1, 0, 2);
	uint64_t len = f->position;
	for (uint64_t at = 0; at < len; at++) {
		corrupt_byte(f, f->segment_id, at);
		uint64_t next;
		assert_int_equal(read_at(f, 1, 0, 0, 100, 100, 1 << 20, &next), SK_ECORRUPT);
		assert_int_equal(f->got.n, 0);
		corrupt_byte(f, f->segment_id, at); /* flip back */
	}
	uint64_t next;
	assert_int_equal(read_at(f, 1, 0, 0, 100, 100, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 0, 2);
}

static void test_reader_index_entry_not_matching_its_frame_is_ecorrupt(void **state)
{
	struct fixture *f = *state;
	add_frame(f, 1, 0, 2);
	/* partition 1's index points at partition 0's frame */
	struct index_entry e = {.base_offset = 0, .index = 1, .segment_id = 1, .position = 0,
				.record_count = 2, .frame_bytes = (uint32_t)f->position};
	assert_int_equal(index_append(f->idx, 1, 1, &e), SK_OK);
	uint64_t next;
	assert_int_equal(read_at(f, 1, 1, 0, 100, 100, 1 << 20, &next), SK_ECORRUPT);
	/* wrong frame length in the entry */
	e.frame_bytes += 8;
	e.index = 2;
	e.base_offset = 0;
	assert_int_equal(index_append(f->idx, 2, 0, &e), SK_OK);
	assert_int_equal(read_at(f, 2, 0, 0, 100, 100, 1 << 20, &next), SK_ECORRUPT);
}

static void test_reader_truncated_segment_is_ecorrupt(void **state)
{
	struct fixture *f = *state;
	add_frame(f, 1, 0, 2);
	add_frame(f, 1, 0, 2);
	assert_int_equal(ftruncate(f->seg_fd, (off_t)f->position - 8), 0);
	uint64_t next;
	assert_int_equal(read_at(f, 1, 0, 2, 100, 100, 1 << 20, &next), SK_ECORRUPT);
}

static void test_reader_missing_segment_is_erange(void **state)
{
	struct fixture *f = *state;
	f->segment_bytes = 1; /* one frame per segment */
	add_frame(f, 1, 0, 2);
	add_frame(f, 1, 0, 2);
	char path[160];
	seg_path(f, 1, path, sizeof(path));
	assert_int_equal(unlink(path), 0); /* retention removed it before the index was trimmed */
	uint64_t next;
	assert_int_equal(read_at(f, 1, 0, 0, 100, 100, 1 << 20, &next), SK_ERANGE);
	assert_int_equal(read_at(f, 1, 0, 2, 100, 100, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 2, 2);
}

/* ---- behaviour ---- */

static void test_reader_empty_and_unknown_partitions_deliver_nothing(void **state)
{
	struct fixture *f = *state;
	struct reader_partition_info info = {1, 1, 1};
	assert_int_equal(reader_partition_info(f->rd, 5, 0, 100, &info), SK_OK);
	assert_int_equal(info.log_start + info.high_watermark + info.bytes, 0);
	uint64_t next = 9;
	assert_int_equal(read_at(f, 5, 0, 0, 100, 10, 100, &next), SK_OK);
	assert_int_equal(next, 0);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(read_at(f, 5, 0, 3, 100, 10, 100, &next), SK_OK);
	assert_int_equal(next, 3);
}

static void test_reader_reads_across_frames_and_segments(void **state)
{
	struct fixture *f = *state;
	f->segment_bytes = 300; /* several segments */
	uint32_t sizes[] = {1, 3, 5, 2, 7, 1};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		add_frame(f, 1, 0, sizes[i]);
		add_frame(f, 1, 1, 2); /* interleaved partition */
	}
	assert_true(f->segment_id > 1);
	uint64_t next;
	assert_int_equal(read_at(f, 1, 0, 0, 1000, 1000, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 0, 19);
	assert_int_equal(next, 19);
	for (uint64_t start = 0; start < 19; start++) {
		assert_int_equal(read_at(f, 1, 0, start, 1000, 1000, 1 << 20, &next), SK_OK);
		expect_dense(&f->got, start, (uint32_t)(19 - start));
	}
	assert_int_equal(read_at(f, 1, 1, 3, 1000, 1000, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 3, 9);
	/* frame timestamps come with each record */
	assert_int_equal(read_at(f, 1, 0, 1, 1000, 1, 1 << 20, &next), SK_OK);
	assert_int_equal(f->got.ts[0], 5000 + 3); /* offset 1 is in the second frame of p0, index 3 */
	/* at or past the high watermark: nothing, SK_OK */
	assert_int_equal(read_at(f, 1, 0, 19, 1000, 1000, 1 << 20, &next), SK_OK);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(next, 19);
	assert_int_equal(read_at(f, 1, 0, 500, 1000, 1000, 1 << 20, &next), SK_OK);
	assert_int_equal(next, 500);
}

static void test_reader_respects_limit_max_bytes_and_callback_stop(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 4; i++)
		add_frame(f, 1, 0, 5); /* values "v0".."v19": 2 or 3 bytes */
	uint64_t next;
	assert_int_equal(read_at(f, 1, 0, 3, 100, 4, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 3, 4);
	assert_int_equal(next, 7);
	assert_int_equal(read_at(f, 1, 0, 3, 100, 0, 1 << 20, &next), SK_OK);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(next, 3);
	/* v0..v9 are 2 bytes: 7 bytes allow 3 records */
	assert_int_equal(read_at(f, 1, 0, 0, 100, 100, 7, &next), SK_OK);
	expect_dense(&f->got, 0, 3);
	assert_int_equal(next, 3);
	/* always at least one record, however small max_bytes is */
	assert_int_equal(read_at(f, 1, 0, 12, 100, 100, 0, &next), SK_OK);
	expect_dense(&f->got, 12, 1);
	assert_int_equal(next, 13);
	/* the callback refuses the third record: the read stops before it */
	f->got.stop_after = 2;
	assert_int_equal(read_at(f, 1, 0, 8, 100, 100, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 8, 2);
	assert_int_equal(next, 10);
	f->got.stop_after = 0;
	/* a refused first record delivers nothing and the next read starts at it */
	f->got.refuse_all = true;
	assert_int_equal(read_at(f, 1, 0, 8, 100, 100, 1 << 20, &next), SK_OK);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(next, 8);
	f->got.refuse_all = false;
}

static void test_reader_reads_inside_one_big_frame_in_steps(void **state)
{
	struct fixture *f = *state;
	add_frame(f, 1, 0, 200);
	add_frame(f, 1, 0, 3);
	uint64_t next = 0, first_cost = 0;
	for (uint64_t start = 0; start < 200; start = next) {
		uint64_t before = reader_pread_count(f->rd);
		assert_int_equal(read_at(f, 1, 0, start, 100, 10, 1 << 20, &next), SK_OK);
		uint64_t cost = reader_pread_count(f->rd) - before;
		expect_dense(&f->got, start, 10);
		assert_int_equal(next, start + 10);
		if (start == 0)
			first_cost = cost;
		else
			assert_true(cost < first_cost); /* the verified frame is reused */
	}
	assert_int_equal(read_at(f, 1, 0, 195, 100, 100, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 195, 8);
}

static void test_reader_commit_index_hides_later_frames(void **state)
{
	struct fixture *f = *state;
	add_frame(f, 1, 0, 2);                  /* index 1: offsets 0,1 */
	add_frame(f, 1, 1, 2);                  /* index 2 */
	uint64_t idx3 = add_frame(f, 1, 0, 2); /* index 3: offsets 2,3 */
	add_frame(f, 1, 0, 2);                  /* index 4: offsets 4,5 */
	uint64_t next;
	assert_int_equal(read_at(f, 1, 0, 0, idx3, 100, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 0, 4);
	assert_int_equal(read_at(f, 1, 0, 4, idx3, 100, 1 << 20, &next), SK_OK);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(next, 4);
	struct reader_partition_info info;
	assert_int_equal(reader_partition_info(f->rd, 1, 0, idx3, &info), SK_OK);
	assert_int_equal(info.log_start, 0);
	assert_int_equal(info.high_watermark, 4);
	uint64_t two_frames = info.bytes;
	assert_int_equal(reader_partition_info(f->rd, 1, 0, 2, &info), SK_OK);
	assert_int_equal(info.high_watermark, 2);
	assert_true(info.bytes > 0 && info.bytes < two_frames);
	assert_int_equal(reader_partition_info(f->rd, 1, 0, 0, &info), SK_OK);
	assert_int_equal(info.high_watermark, 0);
	assert_int_equal(info.bytes, 0);
	assert_int_equal(read_at(f, 1, 0, 0, 0, 100, 1 << 20, &next), SK_OK);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(reader_partition_info(f->rd, 1, 0, 100, &info), SK_OK);
	assert_int_equal(info.high_watermark, 6);
	assert_int_equal(read_at(f, 1, 0, 0, 100, 100, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 0, 6);
}

static void test_reader_follows_index_rewrite_and_truncation(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 6; i++)
		add_frame(f, 1, 0, 2);
	uint64_t next;
	struct reader_partition_info info;
	assert_int_equal(reader_partition_info(f->rd, 1, 0, 100, &info), SK_OK);
	uint64_t bytes_all = info.bytes;
	assert_int_equal(read_at(f, 1, 0, 0, 100, 100, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 0, 12);
	/* retention renames a new file over the index: the reader notices */
	assert_int_equal(index_trim_before(f->idx, 1, 0, 4), SK_OK);
	assert_int_equal(read_at(f, 1, 0, 0, 100, 100, 1 << 20, &next), SK_ERANGE);
	assert_int_equal(reader_partition_info(f->rd, 1, 0, 100, &info), SK_OK);
	assert_int_equal(info.log_start, 4);
	assert_true(info.bytes < bytes_all);
	/* raft truncation cuts the tail in place */
	assert_int_equal(index_truncate_after(f->idx, 4), SK_OK);
	assert_int_equal(reader_partition_info(f->rd, 1, 0, 100, &info), SK_OK);
	assert_int_equal(info.high_watermark, 8);
	assert_int_equal(read_at(f, 1, 0, 4, 100, 100, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 4, 4);
}

static void test_reader_finds_every_offset_among_100000_frames_by_binary_search(void **state)
{
	struct fixture *f = *state;
	const uint32_t frames = 100000;
	/* one record per frame, with a second partition interleaved every 10 frames */
	for (uint32_t i = 0; i < frames; i++) {
		add_frame(f, 1, 0, 1);
		if (i % 10 == 0)
			add_frame(f, 2, 0, 1);
	}
	uint64_t commit = f->next_index - 1;
	/* a binary search over 100,000 entries takes 17 probes; two searches, the first
	 * entry, the last visible entry, one read-ahead of entries and one frame */
	const uint64_t preads_max = 2 * 18 + 4;
	uint64_t worst = 0;
	for (uint64_t off = 0; off < frames; off++) {
		uint64_t before = reader_pread_count(f->rd);
		uint64_t next;
		assert_int_equal(read_at(f, 1, 0, off, commit, 1, 1 << 20, &next), SK_OK);
		uint64_t used = reader_pread_count(f->rd) - before;
		worst = used > worst ? used : worst;
		assert_int_equal(f->got.n, 1);
		assert_int_equal(f->got.offset[0], off);
		assert_int_equal(next, off + 1);
	}
	assert_true(worst <= preads_max);
	uint64_t next;
	assert_int_equal(read_at(f, 2, 0, 9999, commit, 1, 1 << 20, &next), SK_OK);
	expect_dense(&f->got, 9999, 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_reader_offset_below_log_start_is_erange),
		T(test_reader_corrupted_frame_is_ecorrupt),
		T(test_reader_every_header_byte_corruption_is_detected),
		T(test_reader_index_entry_not_matching_its_frame_is_ecorrupt),
		T(test_reader_truncated_segment_is_ecorrupt),
		T(test_reader_missing_segment_is_erange),
		T(test_reader_empty_and_unknown_partitions_deliver_nothing),
		T(test_reader_reads_across_frames_and_segments),
		T(test_reader_respects_limit_max_bytes_and_callback_stop),
		T(test_reader_reads_inside_one_big_frame_in_steps),
		T(test_reader_commit_index_hides_later_frames),
		T(test_reader_follows_index_rewrite_and_truncation),
		T(test_reader_finds_every_offset_among_100000_frames_by_binary_search),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
