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

#include "store/index.h"

struct fixture {
	char dir[64];
	index_set *s;
};

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/skiff-test-index-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (index_set_open(f->dir, &f->s) != SK_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	index_set_close(f->s);
	nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void reopen(struct fixture *f)
{
	index_set_close(f->s);
	f->s = NULL;
	assert_int_equal(index_set_open(f->dir, &f->s), SK_OK);
}

static struct index_entry entry(uint64_t base, uint32_t count, uint64_t index)
{
	return (struct index_entry){.base_offset = base,
				    .index = index,
				    .segment_id = 1,
				    .position = index * 128,
				    .record_count = count,
				    .frame_bytes = 128,
				    .timestamp_ms = 1000 + index};
}

static void append(struct fixture *f, uint32_t t, uint32_t p, uint64_t base, uint32_t count,
		   uint64_t index)
{
	struct index_entry e = entry(base, count, index);
	assert_int_equal(index_append(f->s, t, p, &e), SK_OK);
}

static off_t file_size(struct fixture *f, uint32_t t, uint32_t p)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/index/%u/%u.idx", f->dir, t, p);
	struct stat st;
	if (stat(path, &st) != 0)
		return -1;
	return st.st_size;
}

static struct index_entry read_entry(struct fixture *f, uint32_t t, uint32_t p, uint64_t i)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/index/%u/%u.idx", f->dir, t, p);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t raw[SK_INDEX_ENTRY_BYTES];
	assert_int_equal(pread(fd, raw, sizeof(raw), (off_t)(i * SK_INDEX_ENTRY_BYTES)), sizeof(raw));
	close(fd);
	struct index_entry e;
	index_entry_decode(raw, &e);
	return e;
}

static void write_raw(struct fixture *f, uint32_t t, uint32_t p, const void *bytes, size_t len)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/index/%u/%u.idx", f->dir, t, p);
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	close(fd);
}

/* ---- must reject ---- */

static void test_index_rejects_gap_overlap_and_non_rising_index(void **state)
{
	struct fixture *f = *state;
	struct index_entry e = entry(1, 1, 1);
	assert_int_equal(index_append(f->s, 1, 0, &e), SK_EINVAL); /* a new partition starts at 0 */
	append(f, 1, 0, 0, 5, 3);
	e = entry(4, 1, 4); /* overlap */
	assert_int_equal(index_append(f->s, 1, 0, &e), SK_EINVAL);
	e = entry(6, 1, 4); /* gap */
	assert_int_equal(index_append(f->s, 1, 0, &e), SK_EINVAL);
	e = entry(5, 1, 3); /* raft index not rising */
	assert_int_equal(index_append(f->s, 1, 0, &e), SK_EINVAL);
	e = entry(5, 0, 4); /* empty frame */
	assert_int_equal(index_append(f->s, 1, 0, &e), SK_EINVAL);
	e = entry(5, 1, 4);
	e.frame_bytes = 79; /* smaller than a frame header */
	assert_int_equal(index_append(f->s, 1, 0, &e), SK_EINVAL);
	assert_int_equal(file_size(f, 1, 0), SK_INDEX_ENTRY_BYTES);
	assert_int_equal(index_next_offset(f->s, 1, 0), 5);
}

static void test_index_run_is_all_or_nothing(void **state)
{
	struct fixture *f = *state;
	append(f, 1, 0, 0, 2, 1);
	struct index_entry run[3] = {entry(2, 1, 2), entry(3, 4, 3), entry(8, 1, 4)}; /* gap at 7 */
	assert_int_equal(index_append_run(f->s, 1, 0, run, 3), SK_EINVAL);
	assert_int_equal(file_size(f, 1, 0), SK_INDEX_ENTRY_BYTES); /* nothing of it written */
	assert_int_equal(index_next_offset(f->s, 1, 0), 2);
	assert_int_equal(index_append_run(f->s, 1, 0, run, 0), SK_EINVAL);
	assert_int_equal(index_append_run(f->s, 1, 0, run, SK_INDEX_RUN_MAX + 1), SK_EINVAL);
	run[2] = entry(7, 1, 4);
	assert_int_equal(index_append_run(f->s, 1, 0, run, 3), SK_OK);
	assert_int_equal(file_size(f, 1, 0), 4 * SK_INDEX_ENTRY_BYTES);
	assert_int_equal(index_next_offset(f->s, 1, 0), 8);
	struct index_entry e = read_entry(f, 1, 0, 2);
	assert_int_equal(e.base_offset, 3);
	assert_int_equal(e.record_count, 4);
	e = read_entry(f, 1, 0, 3);
	assert_int_equal(e.base_offset, 7);
	assert_int_equal(e.index, 4);
}

static void test_index_open_fails_on_unusable_dir(void **state)
{
	index_set *s = NULL;
	assert_int_not_equal(index_set_open("/nonexistent/skiff/dir", &s), SK_OK);
	assert_null(s);
}

/* ---- behaviour ---- */

static void test_index_entry_round_trips_little_endian(void **state)
{
	struct index_entry in = {.base_offset = 0x0102030405060708ull,
				 .index = 0x1112131415161718ull,
				 .segment_id = 0x2122232425262728ull,
				 .position = 0x3132333435363738ull,
				 .record_count = 0x41424344,
				 .frame_bytes = 0x51525354,
				 .timestamp_ms = 0x6162636465666768ull};
	uint8_t raw[SK_INDEX_ENTRY_BYTES];
	index_entry_encode(raw, &in);
	assert_int_equal(raw[0], 0x08);
	assert_int_equal(raw[7], 0x01);
	assert_int_equal(raw[32], 0x44);
	assert_int_equal(raw[47], 0x61);
	struct index_entry out;
	index_entry_decode(raw, &out);
	assert_memory_equal(&in, &out, sizeof(in));
}

static void test_index_append_moves_next_offset_and_survives_reopen(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(index_next_offset(f->s, 1, 0), 0);
	assert_int_equal(file_size(f, 1, 0), -1); /* asking does not create the file */
	append(f, 1, 0, 0, 3, 1);
	append(f, 1, 0, 3, 1, 2);
	append(f, 1, 1, 0, 10, 3);
	append(f, 2, 0, 0, 1, 4);
	assert_int_equal(index_next_offset(f->s, 1, 0), 4);
	assert_int_equal(index_next_offset(f->s, 1, 1), 10);
	assert_int_equal(index_sync(f->s), SK_OK);
	assert_int_equal(index_sync(f->s), SK_OK); /* nothing written: still fine */
	reopen(f);
	assert_int_equal(index_next_offset(f->s, 1, 0), 4);
	assert_int_equal(index_next_offset(f->s, 1, 1), 10);
	assert_int_equal(index_next_offset(f->s, 2, 0), 1);
	assert_int_equal(index_next_offset(f->s, 3, 0), 0);
	uint64_t next = 9;
	assert_int_equal(index_next_offset_get(f->s, 2, 0, &next), SK_OK);
	assert_int_equal(next, 1);
	append(f, 1, 0, 4, 2, 5);
	struct index_entry e = read_entry(f, 1, 0, 2);
	assert_int_equal(e.base_offset, 4);
	assert_int_equal(e.index, 5);
	assert_int_equal(e.record_count, 2);
	assert_int_equal(e.timestamp_ms, 1005);
}

static void test_index_cuts_partial_trailing_entry_on_reopen(void **state)
{
	struct fixture *f = *state;
	append(f, 1, 0, 0, 2, 1);
	append(f, 1, 0, 2, 2, 2);
	uint8_t junk[SK_INDEX_ENTRY_BYTES];
	struct index_entry next = entry(4, 2, 3);
	index_entry_encode(junk, &next);
	for (size_t cut = 1; cut < SK_INDEX_ENTRY_BYTES; cut += 7) {
		reopen(f);
		write_raw(f, 1, 0, junk, cut);
		assert_int_equal(file_size(f, 1, 0), 2 * SK_INDEX_ENTRY_BYTES + (off_t)cut);
		reopen(f);
		assert_int_equal(index_next_offset(f->s, 1, 0), 4);
		assert_int_equal(file_size(f, 1, 0), 2 * SK_INDEX_ENTRY_BYTES);
	}
	append(f, 1, 0, 4, 2, 3);
	assert_int_equal(file_size(f, 1, 0), 3 * SK_INDEX_ENTRY_BYTES);
}

static void test_index_cuts_zero_filled_tail_on_reopen(void **state)
{
	struct fixture *f = *state;
	append(f, 1, 0, 0, 2, 1);
	reopen(f);
	uint8_t zeros[3 * SK_INDEX_ENTRY_BYTES + 5] = {0};
	write_raw(f, 1, 0, zeros, sizeof(zeros));
	reopen(f);
	assert_int_equal(index_next_offset(f->s, 1, 0), 2);
	assert_int_equal(file_size(f, 1, 0), SK_INDEX_ENTRY_BYTES);
}

static void test_index_truncate_after_cuts_every_partition_including_untouched(void **state)
{
	struct fixture *f = *state;
	/* raft indexes interleave across partitions, as in one journal */
	append(f, 1, 0, 0, 1, 1);
	append(f, 1, 1, 0, 1, 2);
	append(f, 1, 0, 1, 1, 3);
	append(f, 2, 0, 0, 5, 4);
	append(f, 1, 1, 1, 1, 5);
	append(f, 1, 0, 2, 1, 6);
	assert_int_equal(index_sync(f->s), SK_OK);
	reopen(f); /* nothing loaded: truncation must find the files itself */
	assert_int_equal(index_truncate_after(f->s, 3), SK_OK);
	assert_int_equal(file_size(f, 1, 0), 2 * SK_INDEX_ENTRY_BYTES);
	assert_int_equal(file_size(f, 1, 1), 1 * SK_INDEX_ENTRY_BYTES);
	assert_int_equal(file_size(f, 2, 0), 0);
	assert_int_equal(index_next_offset(f->s, 1, 0), 2);
	assert_int_equal(index_next_offset(f->s, 1, 1), 1);
	assert_int_equal(index_next_offset(f->s, 2, 0), 0);
	/* appends continue from the cut */
	append(f, 2, 0, 0, 1, 4);
	append(f, 1, 0, 2, 1, 5);
	assert_int_equal(index_truncate_after(f->s, 100), SK_OK); /* nothing above: no change */
	assert_int_equal(index_next_offset(f->s, 1, 0), 3);
	assert_int_equal(index_truncate_after(f->s, 0), SK_OK);
	assert_int_equal(index_next_offset(f->s, 1, 0), 0);
	assert_int_equal(index_next_offset(f->s, 2, 0), 0);
	assert_int_equal(index_sync(f->s), SK_OK);
	reopen(f);
	assert_int_equal(index_next_offset(f->s, 1, 0), 0);
}

static void test_index_truncate_after_drops_zeroed_entries_below_cut(void **state)
{
	struct fixture *f = *state;
	append(f, 1, 0, 0, 1, 1);
	append(f, 1, 0, 1, 1, 2);
	reopen(f);
	/* a zeroed entry then a valid later one: recovery cuts back to the checkpoint */
	uint8_t raw[2 * SK_INDEX_ENTRY_BYTES] = {0};
	struct index_entry later = entry(3, 1, 9);
	index_entry_encode(raw + SK_INDEX_ENTRY_BYTES, &later);
	write_raw(f, 1, 0, raw, sizeof(raw));
	reopen(f);
	assert_int_equal(index_truncate_after(f->s, 2), SK_OK);
	assert_int_equal(file_size(f, 1, 0), 2 * SK_INDEX_ENTRY_BYTES);
	assert_int_equal(index_next_offset(f->s, 1, 0), 2);
}

static void test_index_trim_before_keeps_file_dense_and_last_entry(void **state)
{
	struct fixture *f = *state;
	for (uint64_t i = 0; i < 10; i++)
		append(f, 1, 0, i * 10, 10, i + 1); /* offsets 0..99 in frames of 10 */
	assert_int_equal(index_trim_before(f->s, 1, 0, 0), SK_OK);
	assert_int_equal(file_size(f, 1, 0), 10 * SK_INDEX_ENTRY_BYTES);
	/* 35: frames [0,10) [10,20) [20,30) go, [30,40) stays */
	assert_int_equal(index_trim_before(f->s, 1, 0, 35), SK_OK);
	assert_int_equal(file_size(f, 1, 0), 7 * SK_INDEX_ENTRY_BYTES);
	assert_int_equal(read_entry(f, 1, 0, 0).base_offset, 30);
	assert_int_equal(index_next_offset(f->s, 1, 0), 100);
	/* appends go after the rewritten file's end */
	append(f, 1, 0, 100, 5, 11);
	assert_int_equal(file_size(f, 1, 0), 8 * SK_INDEX_ENTRY_BYTES);
	assert_int_equal(read_entry(f, 1, 0, 7).base_offset, 100);
	/* trimming everything keeps the last entry: it remembers the next offset */
	assert_int_equal(index_trim_before(f->s, 1, 0, 105), SK_OK);
	assert_int_equal(file_size(f, 1, 0), SK_INDEX_ENTRY_BYTES);
	assert_int_equal(read_entry(f, 1, 0, 0).base_offset, 100);
	assert_int_equal(index_sync(f->s), SK_OK);
	reopen(f);
	assert_int_equal(index_next_offset(f->s, 1, 0), 105);
	assert_int_equal(index_trim_before(f->s, 9, 9, 10), SK_OK); /* no such partition: nothing */
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s/index/1/0.idx.tmp", f->dir);
	assert_int_not_equal(access(tmp, F_OK), 0);
}

static void test_index_handles_more_partitions_than_open_file_limit(void **state)
{
	struct fixture *f = *state;
	/* more than the descriptor cap: clean ones are closed and reopened on demand */
	for (uint32_t round = 0; round < 2; round++) {
		reopen(f);
		for (uint32_t p = 0; p < 300; p++) /* loads (opens) every file, clean */
			assert_int_equal(index_next_offset(f->s, 1, p), round);
		for (uint32_t p = 0; p < 300; p++)
			append(f, 1, p, round, 1, round * 1000 + p + 1);
		assert_int_equal(index_sync(f->s), SK_OK);
	}
	for (uint32_t p = 0; p < 300; p += 37)
		assert_int_equal(index_next_offset(f->s, 1, p), 2);
	assert_int_equal(index_truncate_after(f->s, 1000), SK_OK);
	for (uint32_t p = 0; p < 300; p += 37)
		assert_int_equal(index_next_offset(f->s, 1, p), 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_index_rejects_gap_overlap_and_non_rising_index),
		T(test_index_run_is_all_or_nothing),
		cmocka_unit_test(test_index_open_fails_on_unusable_dir),
		cmocka_unit_test(test_index_entry_round_trips_little_endian),
		T(test_index_append_moves_next_offset_and_survives_reopen),
		T(test_index_cuts_partial_trailing_entry_on_reopen),
		T(test_index_cuts_zero_filled_tail_on_reopen),
		T(test_index_truncate_after_cuts_every_partition_including_untouched),
		T(test_index_truncate_after_drops_zeroed_entries_below_cut),
		T(test_index_trim_before_keeps_file_dense_and_last_entry),
		T(test_index_handles_more_partitions_than_open_file_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
