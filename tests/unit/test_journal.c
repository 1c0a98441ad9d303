#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "journal_testlib.h"

static char path[1024]; /* scratch for paths other than segments */

static void test_journal_refuses_bad_options(void **state)
{
	journal *j = NULL;
	struct journal_opts o = {.data_dir = tl_dir, .segment_bytes = SK_SEGMENT_BYTES_MIN - 8};
	assert_int_equal(journal_open(&o, &j), SK_EINVAL);
	o.segment_bytes = SK_SEGMENT_BYTES_MIN + 1;
	assert_int_equal(journal_open(&o, &j), SK_EINVAL);
	o.segment_bytes = (uint64_t)SK_SEGMENT_BYTES_MAX + 8;
	assert_int_equal(journal_open(&o, &j), SK_EINVAL);
	o.segment_bytes = SK_SEGMENT_BYTES_MIN;
	o.data_dir = NULL;
	assert_int_equal(journal_open(&o, &j), SK_EINVAL);
}

static void test_journal_write_before_recovery_has_no_room(void **state)
{
	journal *j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	assert_int_equal(journal_room(j), 0);
	journal_close(j);
}

static void test_journal_creates_first_segment_preallocated_and_zero_filled(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	snprintf(path, sizeof(path), "%s", tl_seg_path(tl_dir, 1));
	assert_true(tl_exists(path));
	assert_int_equal(tl_file_size(path), TL_SEGMENT_BYTES);
	size_t len;
	char *data = tl_read_file(path, &len);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(data[i], 0);
	free(data);
	assert_int_equal(journal_room(j), TL_SEGMENT_BYTES);
	assert_int_equal(journal_last_index(j), 0);
	struct journal_pos p = journal_append_pos(j);
	assert_int_equal(p.segment_id, 1);
	assert_int_equal(p.position, 0);
	journal_close(j);
}

static void test_journal_appends_a_batch_with_one_write_and_one_fdatasync(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	uint64_t syncs = journal_fault_fsyncs();
	tl_append(j, 10, 3, 16, false);
	assert_int_equal(journal_last_index(j), 10);
	assert_int_equal(journal_durable_index(j), 0); /* not durable before the fdatasync */
	assert_true(journal_fault_unsynced_bytes() > 0);
	assert_int_equal(journal_sync(j), SK_OK);
	assert_int_equal(journal_fault_fsyncs(), syncs + 1);
	assert_int_equal(journal_durable_index(j), 10);
	assert_int_equal(journal_fault_unsynced_bytes(), 0);
	/* The file size never changes: appends go into preallocated space. */
	assert_int_equal(tl_file_size(tl_seg_path(tl_dir, 1)), TL_SEGMENT_BYTES);
	size_t len;
	char *data = tl_read_file(tl_seg_path(tl_dir, 1), &len);
	uint64_t pos = 0;
	for (uint64_t i = 1; i <= 10; i++) {
		struct frame_header h;
		assert_int_equal(frame_decode((uint8_t *)data + pos, len - pos, &h, NULL), SK_OK);
		assert_int_equal(h.index, i);
		pos += h.length;
	}
	assert_int_equal(pos, journal_append_pos(j).position);
	free(data);
	journal_close(j);
}

static void test_journal_rolls_into_a_prepared_segment(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	uint64_t rolls = 0;
	for (int b = 0; b < 40; b++) {
		uint64_t before = journal_append_pos(j).segment_id;
		tl_append(j, 8, 4, 1000, true); /* ~32 KiB per batch */
		if (journal_append_pos(j).segment_id != before) {
			rolls++;
			/* Named by its first index; the next one is already prepared. */
			assert_int_equal(journal_append_pos(j).segment_id, journal_last_index(j) - 7);
			snprintf(path, sizeof(path), "%s/journal/next.prep", tl_dir);
			assert_true(tl_exists(path));
			assert_int_equal(tl_file_size(path), TL_SEGMENT_BYTES);
		}
	}
	assert_true(rolls >= 1);
	struct journal_segment_info segs[8];
	size_t n;
	assert_int_equal(journal_segments(j, segs, 8, &n), SK_OK);
	assert_int_equal(n, rolls + 1);
	journal_close(j);
	/* A reopened journal recovers every frame across the segments. */
	struct recovery_result res;
	j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, &res);
	assert_int_equal(res.last_index, 320);
	assert_false(res.tail_cut);
	journal_close(j);
}

static void test_journal_prepares_segments_on_a_helper_thread(void **state)
{
	struct journal_opts o = {.data_dir = tl_dir, .segment_bytes = TL_SEGMENT_BYTES,
				 .prepare_async = true};
	journal *j = NULL;
	assert_int_equal(journal_open(&o, &j), SK_OK);
	struct meta_checkpoint cp = {0};
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(journal_recover(j, &cp, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	for (int b = 0; b < 100; b++)
		tl_append(j, 8, 4, 1000, true);
	assert_true(journal_append_pos(j).segment_id > 1);
	journal_close(j);
	j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, &res);
	assert_int_equal(res.last_index, 800);
	journal_close(j);
}

static void test_journal_gives_an_oversized_frame_its_own_segment(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 1, 1, 10, true);
	size_t big = TL_SEGMENT_BYTES + 4096;
	uint8_t *val = malloc(big);
	uint8_t *body = malloc(big + 16);
	memset(val, 'b', big);
	struct record_view rv = {.value = val, .value_len = (uint32_t)big};
	size_t used;
	assert_int_equal(record_encode(body, big + 16, &rv, &used), SK_OK);
	uint8_t *buf = malloc(used + 96);
	struct frame_header h = {.kind = FRAME_RECORD_BATCH, .term = 1, .index = 2, .topic_id = 1,
				 .base_offset = 1, .record_count = 1, .body_bytes = (uint32_t)used,
				 .durable_index = 1};
	size_t n;
	assert_int_equal(frame_encode(buf, used + 96, &h, body, &n), SK_OK);
	assert_true(journal_room(j) < n);
	assert_int_equal(journal_roll(j, n), SK_OK);
	assert_true(journal_room(j) >= n);
	struct iovec iov = {.iov_base = buf, .iov_len = n};
	assert_int_equal(journal_write(j, &iov, 1, n, 2, 1), SK_OK);
	assert_int_equal(journal_sync(j), SK_OK);
	tl_append(j, 1, 1, 10, true); /* rolls again into a normal segment */
	assert_int_equal(journal_append_pos(j).segment_id, 3);
	journal_close(j);
	struct recovery_result res;
	j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, &res);
	assert_int_equal(res.last_index, 3);
	journal_close(j);
	free(buf);
	free(body);
	free(val);
}

static void test_journal_failed_fdatasync_poisons_it_for_good(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 2, 1, 10, true);
	journal_fault_fail_fsync_after(0);
	tl_append(j, 1, 1, 10, false);
	assert_int_equal(journal_sync(j), SK_EIO);
	assert_true(journal_poisoned(j));
	assert_int_equal(journal_durable_index(j), 2);
	/* Never retried into a success. */
	journal_fault_fail_fsync_after(-1);
	assert_int_equal(journal_sync(j), SK_EIO);
	assert_int_equal(journal_durable_index(j), 2);
	uint8_t b[8] = {0};
	struct iovec iov = {.iov_base = b, .iov_len = 8};
	assert_int_equal(journal_write(j, &iov, 1, 8, 4, 1), SK_EIO);
	assert_int_equal(journal_roll(j, 0), SK_EIO);
	journal_close(j);
}

static void test_journal_enospc_fails_the_batch_and_stays_valid(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 3, 2, 20, true);
	struct journal_pos before = journal_append_pos(j);
	/* A batch of 5 frames that runs out of space in its middle. */
	static uint8_t buf[8192];
	size_t used = 0;
	for (uint64_t i = 4; i <= 8; i++)
		used += tl_batch_frame(buf + used, sizeof(buf) - used, i, 3, 1, 0, (i - 1) * 2, 2, 20, i);
	journal_fault_enospc_after((int64_t)used / 2);
	struct iovec iov = {.iov_base = buf, .iov_len = used};
	assert_int_equal(journal_write(j, &iov, 1, used, 8, 1), SK_EFULL);
	assert_false(journal_poisoned(j));
	assert_int_equal(journal_last_index(j), 3);
	assert_int_equal(journal_append_pos(j).position, before.position);
	/* The half-written bytes were zeroed back. */
	size_t len;
	char *data = tl_read_file(tl_seg_path(tl_dir, 1), &len);
	for (size_t i = before.position; i < before.position + used; i++)
		assert_int_equal(data[i], 0);
	free(data);
	/* Space returns: the same batch goes through. */
	journal_fault_enospc_after(-1);
	assert_int_equal(journal_write(j, &iov, 1, used, 8, 1), SK_OK);
	assert_int_equal(journal_sync(j), SK_OK);
	journal_close(j);
	struct recovery_result res;
	j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, &res);
	assert_int_equal(res.last_index, 8);
	assert_false(res.tail_cut);
	journal_close(j);
}

static void test_journal_enospc_on_roll_leaves_it_unchanged(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 1, 1, 10, true);
	snprintf(path, sizeof(path), "%s/journal/next.prep", tl_dir);
	unlink(path); /* nothing prepared ahead: the roll must allocate */
	journal_fault_enospc_after(4096);
	assert_int_equal(journal_roll(j, 0), SK_EFULL);
	assert_false(journal_poisoned(j));
	assert_false(tl_exists(path)); /* the partial file was removed: its space returns */
	assert_int_equal(journal_append_pos(j).segment_id, 1);
	assert_int_equal(journal_prepare_next(j), SK_EFULL);
	journal_fault_enospc_after(-1);
	assert_int_equal(journal_roll(j, 0), SK_OK);
	assert_int_equal(journal_append_pos(j).segment_id, 2);
	tl_append(j, 1, 1, 10, true);
	journal_close(j);
}

static void fill_segments(journal *j, int segments)
{
	for (int b = 0; b < 1000; b++) {
		struct journal_segment_info segs[64];
		size_t n;
		journal_segments(j, segs, 64, &n);
		if ((int)n >= segments)
			return;
		tl_append(j, 8, 4, 1000, true);
	}
	fail();
}

static void test_journal_retention_removes_whole_old_segments_only(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	fill_segments(j, 4);
	struct journal_segment_info segs[8];
	size_t n;
	journal_segments(j, segs, 8, &n);
	assert_int_equal(n, 4);
	/* A limit inside segment 2 removes only segment 1 (segment 2 still holds frames >= it). */
	assert_int_equal(journal_remove_before(j, segs[2].segment_id - 1), SK_OK);
	struct journal_segment_info after[8];
	journal_segments(j, after, 8, &n);
	assert_int_equal(n, 3);
	assert_int_equal(after[0].segment_id, segs[1].segment_id);
	assert_false(tl_exists(tl_seg_path(tl_dir, segs[0].segment_id)));
	/* Never the segment being appended to. */
	assert_int_equal(journal_remove_before(j, UINT64_MAX), SK_OK);
	journal_segments(j, after, 8, &n);
	assert_int_equal(n, 1);
	assert_int_equal(after[0].segment_id, segs[3].segment_id);
	uint64_t last = journal_last_index(j);
	journal_close(j);
	/* The rest recovers from a checkpoint at the start of what remains. */
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct meta_checkpoint cp = {.segment_id = segs[3].segment_id, .position = 0,
				     .index = segs[3].segment_id - 1, .term = 1};
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(journal_recover(j, &cp, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	assert_int_equal(res.last_index, last);
	journal_close(j);
}

static void test_journal_truncate_refuses_to_cut_below_the_commit_index(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 10, 1, 10, true);
	assert_int_equal(journal_truncate_after(j, 5, 6), SK_ECONFLICT);
	assert_int_equal(journal_last_index(j), 10);
	assert_int_equal(journal_truncate_after(j, 10, 6), SK_OK); /* nothing to cut */
	assert_int_equal(journal_last_index(j), 10);
	journal_close(j);
}

static void test_journal_truncates_to_an_index_across_segments(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	fill_segments(j, 3);
	tl_append(j, 8, 4, 1000, true);
	struct journal_segment_info segs[8];
	size_t n;
	journal_segments(j, segs, 8, &n);
	assert_int_equal(n, 3);
	uint64_t cut = segs[1].segment_id + 5; /* inside segment 2 */
	assert_int_equal(journal_truncate_after(j, cut, 3), SK_OK);
	assert_int_equal(journal_last_index(j), cut);
	assert_int_equal(journal_durable_index(j), cut);
	journal_segments(j, segs, 8, &n);
	assert_int_equal(n, 2);
	snprintf(path, sizeof(path), "%s/journal/truncate.intent", tl_dir);
	assert_false(tl_exists(path));
	/* Appends continue right after the cut, and recovery agrees. */
	tl_append(j, 2, 4, 1000, true);
	assert_int_equal(journal_last_index(j), cut + 2);
	journal_close(j);
	struct recovery_result res;
	j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, &res);
	assert_int_equal(res.last_index, cut + 2);
	assert_false(res.tail_cut);
	journal_close(j);
}

static void test_journal_recovery_finishes_an_interrupted_truncation(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 20, 1, 10, true);
	journal_close(j);
	/* The intent was synced, then the writer died before cutting anything. */
	uint8_t intent[16];
	put_u32(intent, 0x31544b53u);
	put_u64(intent + 8, 12);
	put_u32(intent + 4, crc32c(0, intent + 8, 8));
	snprintf(path, sizeof(path), "%s/journal/truncate.intent", tl_dir);
	FILE *f = fopen(path, "wb");
	fwrite(intent, 1, sizeof(intent), f);
	fclose(f);
	struct recovery_result res;
	j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, &res);
	assert_true(res.truncation_finished);
	assert_int_equal(res.last_index, 12);
	assert_false(tl_exists(path));
	journal_close(j);
	/* A damaged, complete intent stops recovery rather than guessing. */
	f = fopen(path, "wb");
	intent[9] ^= 1;
	fwrite(intent, 1, sizeof(intent), f);
	fclose(f);
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct meta_checkpoint cp = {0};
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_not_equal(journal_recover(j, &cp, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	assert_non_null(strstr(why, "truncate.intent"));
	journal_close(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_refuses_bad_options, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_write_before_recovery_has_no_room, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_failed_fdatasync_poisons_it_for_good, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_enospc_fails_the_batch_and_stays_valid, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_enospc_on_roll_leaves_it_unchanged, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_truncate_refuses_to_cut_below_the_commit_index, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_creates_first_segment_preallocated_and_zero_filled, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_appends_a_batch_with_one_write_and_one_fdatasync, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_rolls_into_a_prepared_segment, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_prepares_segments_on_a_helper_thread, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_gives_an_oversized_frame_its_own_segment, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_retention_removes_whole_old_segments_only, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_truncates_to_an_index_across_segments, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_journal_recovery_finishes_an_interrupted_truncation, tl_setup, tl_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
