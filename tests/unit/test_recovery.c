#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "journal_testlib.h"
#include "store/index.h"
#include "store/meta_write.h"

static char path[1024]; /* scratch for paths other than segments */

static sk_err recover_from(journal *j, const struct meta_checkpoint *cp, struct recovery_result *res,
			   char *why)
{
	return journal_recover(j, cp, NULL, NULL, res, why, SK_RECOVERY_WHY_BYTES);
}

static sk_err recover(journal *j, struct recovery_result *res, char *why)
{
	struct meta_checkpoint cp = {0};
	return recover_from(j, &cp, res, why);
}

/* ---- must refuse ---- */

static void test_recovery_refuses_damage_mid_journal_naming_file_and_byte(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 5, 2, 30, true);
	uint64_t bad_pos = journal_append_pos(j).position;
	tl_append(j, 5, 2, 30, true);
	tl_append(j, 5, 2, 30, true);
	journal_close(j);
	uint8_t x = 0x5a;
	tl_poke(tl_seg_path(tl_dir, 1), bad_pos + 100, &x, 1);
	size_t len_before, len_after;
	char *before = tl_read_file(tl_seg_path(tl_dir, 1), &len_before);

	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES], expect[1200];
	assert_int_equal(recover(j, &res, why), SK_ECORRUPT);
	snprintf(expect, sizeof(expect), "%s at byte %llu: crc mismatch", tl_seg_path(tl_dir, 1),
		 (unsigned long long)bad_pos);
	assert_non_null(strstr(why, expect));
	assert_int_equal(journal_room(j), 0); /* no appends accepted */
	journal_close(j);
	char *after = tl_read_file(tl_seg_path(tl_dir, 1), &len_after);
	assert_int_equal(len_before, len_after);
	assert_memory_equal(before, after, len_before); /* nothing truncated */
	free(before);
	free(after);
}

static void test_recovery_refuses_a_zeroed_hole_before_durable_frames(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 3, 1, 30, true);
	uint64_t hole = journal_append_pos(j).position;
	tl_append(j, 3, 1, 30, true);
	tl_append(j, 3, 1, 30, true);
	journal_close(j);
	static const uint8_t zeros[256];
	tl_poke(tl_seg_path(tl_dir, 1), hole, zeros, sizeof(zeros)); /* a lost block */
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(recover(j, &res, why), SK_ECORRUPT);
	char expect[64];
	snprintf(expect, sizeof(expect), "at byte %llu:", (unsigned long long)hole);
	assert_non_null(strstr(why, expect));
	journal_close(j);
}

static uint64_t fill_to_segments(journal *j, int segments)
{
	for (int b = 0; b < 1000; b++) {
		struct journal_segment_info segs[64];
		size_t n;
		journal_segments(j, segs, 64, &n);
		if ((int)n >= segments)
			return segs[n - 1].segment_id;
		tl_append(j, 8, 4, 1000, true);
	}
	fail();
	return 0;
}

static void test_recovery_refuses_a_missing_segment(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	fill_to_segments(j, 3);
	tl_append(j, 8, 4, 1000, true);
	struct journal_segment_info segs[8];
	size_t n;
	journal_segments(j, segs, 8, &n);
	journal_close(j);
	assert_int_equal(unlink(tl_seg_path(tl_dir, segs[1].segment_id)), 0);
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(recover(j, &res, why), SK_ECORRUPT);
	assert_non_null(strstr(why, "missing segment"));
	assert_non_null(strstr(why, tl_seg_path(tl_dir, segs[2].segment_id)));
	journal_close(j);
	assert_true(tl_exists(tl_seg_path(tl_dir, segs[2].segment_id))); /* nothing removed */
}

static void test_recovery_refuses_a_bad_segment_end_before_a_durable_segment(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	uint64_t second = fill_to_segments(j, 2);
	tl_append(j, 8, 4, 1000, true);
	journal_close(j);
	/* Damage the last frame of segment 1: the frames in segment 2 were written after it
	 * was durable, so this is not a torn tail. */
	struct meta_checkpoint cp = {0};
	size_t len;
	char *data = tl_read_file(tl_seg_path(tl_dir, 1), &len);
	uint64_t pos = 0, last = 0;
	struct frame_header h;
	while (frame_decode((uint8_t *)data + pos, len - pos, &h, NULL) == SK_OK) {
		last = pos;
		pos += h.length;
	}
	free(data);
	uint8_t x = 0xff;
	tl_poke(tl_seg_path(tl_dir, 1), last + 90, &x, 1);
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(recover_from(j, &cp, &res, why), SK_ECORRUPT);
	assert_non_null(strstr(why, tl_seg_path(tl_dir, 1)));
	char expect[64];
	snprintf(expect, sizeof(expect), "at byte %llu:", (unsigned long long)last);
	assert_non_null(strstr(why, expect));
	journal_close(j);
	assert_true(tl_exists(tl_seg_path(tl_dir, second)));
}

static void test_recovery_refuses_when_meta_is_ahead_of_the_journal(void **state)
{
	meta *m;
	index_set *ix;
	assert_int_equal(meta_open(tl_dir, false, &m), SK_OK);
	assert_int_equal(index_set_open(tl_dir, &ix), SK_OK);
	assert_int_equal(meta_begin(m), SK_OK);
	assert_int_equal(meta_set_applied_index(m, 7), SK_OK);
	assert_int_equal(meta_commit(m), SK_OK);
	journal *j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(store_recover(j, m, ix, NULL, NULL, &res, why, sizeof(why)), SK_ECORRUPT);
	assert_non_null(strstr(why, "applied index 7"));
	journal_close(j);
	index_set_close(ix);
	meta_close(m);
}

/* ---- torn tails ---- */

static void tear_every_byte(enum journal_fault_crash mode)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 20, 3, 40, true);
	uint64_t good_end = journal_append_pos(j).position;
	journal_close(j);
	uint8_t frame[4096];
	size_t flen = tl_batch_frame(frame, sizeof(frame), 21, 20, 1, 0, 60, 3, 40, 21);
	for (size_t keep = 0; keep <= flen; keep++) {
		/* Write the last frame without a sync, then lose part of it in a crash. */
		j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
		assert_int_equal(journal_last_index(j), 20);
		tl_append(j, 1, 3, 40, false);
		journal_close(j);
		journal_fault_crash(mode, keep);

		j = tl_open(tl_dir, TL_SEGMENT_BYTES);
		struct recovery_result res;
		char why[SK_RECOVERY_WHY_BYTES];
		assert_int_equal(recover(j, &res, why), SK_OK);
		bool whole = (mode == FAULT_CRASH_TEAR_PREFIX && keep == flen) ||
			     (mode == FAULT_CRASH_TEAR_SUFFIX && keep == 0);
		assert_int_equal(res.last_index, whole ? 21 : 20);
		assert_int_equal(journal_append_pos(j).position, whole ? good_end + flen : good_end);
		if (whole) {
			/* A complete frame survived: cut it ourselves for the next round. */
			assert_int_equal(journal_truncate_after(j, 20, 20), SK_OK);
		} else {
			bool any = (mode == FAULT_CRASH_TEAR_PREFIX) ? keep > 0 : keep < flen;
			assert_int_equal(res.tail_cut, any);
		}
		journal_close(j);
		/* The cut is durable: a second crash changes nothing, and the tail is zero. */
		journal_fault_crash(FAULT_CRASH_DROP, 0);
		size_t len;
		char *data = tl_read_file(tl_seg_path(tl_dir, 1), &len);
		for (size_t i = good_end; i < good_end + flen; i++)
			assert_int_equal(data[i], 0);
		free(data);
	}
	/* And the log goes on from index 21. */
	j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 2, 3, 40, true);
	assert_int_equal(journal_last_index(j), 22);
	journal_close(j);
}

static void test_recovery_cuts_a_prefix_torn_tail_at_every_byte_of_the_last_frame(void **state)
{
	tear_every_byte(FAULT_CRASH_TEAR_PREFIX);
}

static void test_recovery_cuts_a_suffix_torn_tail_at_every_byte_of_the_last_frame(void **state)
{
	tear_every_byte(FAULT_CRASH_TEAR_SUFFIX);
}

static void test_recovery_cuts_a_torn_batch_even_with_complete_frames_after_the_bad_one(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 4, 1, 30, true);
	uint64_t good_end = journal_append_pos(j).position;
	tl_append(j, 6, 1, 30, false); /* one unsynced batch: durable_index 4 in each frame */
	journal_close(j);
	/* The page holding the batch's first frame never reached the disk; the others did. */
	static const uint8_t zeros[64];
	tl_poke(tl_seg_path(tl_dir, 1), good_end, zeros, sizeof(zeros));
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(recover(j, &res, why), SK_OK);
	assert_int_equal(res.last_index, 4);
	assert_true(res.tail_cut);
	assert_int_equal(res.cut_position, good_end);
	journal_close(j);
	size_t len;
	char *data = tl_read_file(tl_seg_path(tl_dir, 1), &len);
	for (size_t i = good_end; i < len; i++)
		assert_int_equal(data[i], 0);
	free(data);
}

static void test_recovery_cuts_a_torn_tail_in_a_later_segment(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	uint64_t second = fill_to_segments(j, 2);
	tl_append(j, 1, 1, 30, true);
	uint64_t pos = journal_append_pos(j).position;
	tl_append(j, 1, 1, 30, false);
	journal_close(j);
	journal_fault_crash(FAULT_CRASH_TEAR_PREFIX, 50);
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(recover(j, &res, why), SK_OK);
	assert_int_equal(res.cut_segment, second);
	assert_int_equal(res.cut_position, pos);
	journal_close(j);
}

static void test_recovery_syncs_frames_it_accepted_from_the_page_cache(void **state)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 3, 1, 30, true);
	tl_append(j, 3, 1, 30, false); /* the writer was SIGKILLed before its fdatasync */
	journal_close(j);
	struct recovery_result res;
	j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, &res);
	assert_int_equal(res.last_index, 6);
	journal_close(j);
	journal_fault_crash(FAULT_CRASH_DROP, 0); /* then the power went */
	j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, &res);
	assert_int_equal(res.last_index, 6);
	journal_close(j);
}

/* ---- checkpoint ---- */

static void test_recovery_scans_only_after_the_checkpoint(void **state)
{
	meta *m;
	index_set *ix;
	assert_int_equal(meta_open(tl_dir, false, &m), SK_OK);
	assert_int_equal(index_set_open(tl_dir, &ix), SK_OK);
	assert_int_equal(meta_begin(m), SK_OK);
	assert_int_equal(meta_apply_topic_created(m, 1, "t", 1, 1), SK_OK);
	assert_int_equal(meta_commit(m), SK_OK);
	journal *j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(store_recover(j, m, ix, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	tl_append(j, 50, 2, 30, true);
	journal_close(j);
	/* The next start indexes those 50 frames and stores a checkpoint after them. */
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	assert_int_equal(store_recover(j, m, ix, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	assert_int_equal(res.frames, 50);
	assert_int_equal(store_checkpoint(j, m, ix, 50), SK_OK);
	uint64_t cp_pos = journal_append_pos(j).position;
	tl_append(j, 7, 2, 30, true);
	journal_close(j);
	index_set_close(ix);
	/* Damage before the checkpoint is not read at start (verify finds it). */
	uint8_t x = 0x77;
	tl_poke(tl_seg_path(tl_dir, 1), 200, &x, 1);
	assert_int_equal(index_set_open(tl_dir, &ix), SK_OK);
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	assert_int_equal(store_recover(j, m, ix, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	assert_int_equal(res.frames, 7);
	assert_int_equal(res.last_index, 57);
	assert_int_equal(res.max_ingress_seq, 57);
	assert_true(journal_append_pos(j).position > cp_pos);
	assert_int_equal(index_next_offset(ix, 1, 0), 57 * 2);
	journal_close(j);
	index_set_close(ix);
	meta_close(m);
}

static void test_recovery_rebuilds_an_index_that_disagrees_with_the_journal(void **state)
{
	meta *m;
	index_set *ix;
	assert_int_equal(meta_open(tl_dir, false, &m), SK_OK);
	assert_int_equal(meta_begin(m), SK_OK);
	assert_int_equal(meta_apply_topic_created(m, 1, "t", 1, 1), SK_OK);
	assert_int_equal(meta_commit(m), SK_OK);
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 4, 3, 20, true); /* frames of 3 records: offsets 0, 3, 6, 9 */
	journal_close(j);
	/* An index claiming frames of 2 and 3 records: offsets 0..5, not what the journal says. */
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/index", tl_dir);
	mkdir(dir, 0755);
	snprintf(dir, sizeof(dir), "%s/index/1", tl_dir);
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/index/1/0.idx", tl_dir);
	uint8_t raw[2 * SK_INDEX_ENTRY_BYTES];
	struct index_entry e0 = {.base_offset = 0, .index = 1, .segment_id = 1, .position = 0,
				 .record_count = 2, .frame_bytes = 128, .timestamp_ms = 1};
	struct index_entry e1 = {.base_offset = 2, .index = 2, .segment_id = 1, .position = 128,
				 .record_count = 3, .frame_bytes = 128, .timestamp_ms = 1};
	index_entry_encode(raw, &e0);
	index_entry_encode(raw + SK_INDEX_ENTRY_BYTES, &e1);
	FILE *f = fopen(path, "wb");
	fwrite(raw, 1, sizeof(raw), f);
	fclose(f);
	assert_int_equal(index_set_open(tl_dir, &ix), SK_OK);
	assert_int_equal(index_next_offset(ix, 1, 0), 5);
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(store_recover(j, m, ix, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	assert_int_equal(index_next_offset(ix, 1, 0), 12);
	journal_close(j);
	index_set_close(ix);
	/* The rebuilt file holds the journal's frames. */
	size_t len;
	char *data = tl_read_file(path, &len);
	assert_int_equal(len, 4 * SK_INDEX_ENTRY_BYTES);
	struct index_entry got;
	index_entry_decode((uint8_t *)data + SK_INDEX_ENTRY_BYTES, &got);
	assert_int_equal(got.base_offset, 3);
	assert_int_equal(got.index, 2);
	free(data);
	meta_close(m);
}

static void test_recovery_keeps_index_entries_written_before_a_sigkill(void **state)
{
	meta *m;
	index_set *ix;
	assert_int_equal(meta_open(tl_dir, false, &m), SK_OK);
	assert_int_equal(meta_begin(m), SK_OK);
	assert_int_equal(meta_apply_topic_created(m, 1, "t", 1, 1), SK_OK);
	assert_int_equal(meta_commit(m), SK_OK);
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	tl_append(j, 6, 1, 20, true);
	journal_close(j);
	assert_int_equal(index_set_open(tl_dir, &ix), SK_OK);
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(store_recover(j, m, ix, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	journal_close(j);
	index_set_close(ix);
	snprintf(path, sizeof(path), "%s/index/1/0.idx", tl_dir);
	struct stat st1, st2;
	assert_int_equal(stat(path, &st1), 0);
	/* Again, as after a SIGKILL with no checkpoint: the entries are there, none added. */
	assert_int_equal(index_set_open(tl_dir, &ix), SK_OK);
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	assert_int_equal(store_recover(j, m, ix, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	assert_int_equal(res.frames, 6);
	assert_int_equal(index_next_offset(ix, 1, 0), 6);
	journal_close(j);
	index_set_close(ix);
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st1.st_size, 6 * SK_INDEX_ENTRY_BYTES);
	assert_int_equal(st2.st_size, st1.st_size);
	meta_close(m);
}

/* ---- meta applies exactly once ---- */

static size_t control_frame(uint8_t *out, uint16_t kind, uint64_t index, uint64_t durable,
			    uint32_t topic, uint32_t partition, const uint8_t *body, size_t body_len)
{
	struct frame_header h = {.kind = kind, .term = 1, .index = index, .topic_id = topic,
				 .partition = partition, .body_bytes = (uint32_t)body_len,
				 .durable_index = durable, .ingress_seq = index};
	size_t used;
	if (frame_encode(out, 4096, &h, body, &used) != SK_OK)
		abort();
	return used;
}

static size_t commit_frame(uint8_t *out, uint64_t index, uint64_t durable, uint64_t offset)
{
	uint8_t body[64];
	size_t n;
	struct frame_offset_committed oc = {.offset = offset, .group = (const uint8_t *)"g", .group_len = 1};
	frame_offset_committed_encode(body, sizeof(body), &oc, &n);
	return control_frame(out, FRAME_OFFSET_COMMITTED, index, durable, 1, 1, body, n);
}

/* A child "writer": recover, append frames, fdatasync, then (stage 2 only) the meta
 * transaction, then die without a checkpoint. */
static void child_writer(int stage)
{
	meta *m;
	index_set *ix;
	journal *j;
	struct journal_opts o = {.data_dir = tl_dir, .segment_bytes = TL_SEGMENT_BYTES};
	if (meta_open(tl_dir, false, &m) || index_set_open(tl_dir, &ix) || journal_open(&o, &j))
		_exit(10);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	if (store_recover(j, m, ix, NULL, NULL, &res, why, sizeof(why)) != SK_OK)
		_exit(11);
	static uint8_t buf[16384];
	size_t used = 0;
	uint64_t first = journal_last_index(j) + 1, durable = journal_durable_index(j);
	if (stage == 1) {
		uint8_t body[64];
		size_t n;
		struct frame_topic_created tc = {.partitions = 2, .name = (const uint8_t *)"orders", .name_len = 6};
		frame_topic_created_encode(body, sizeof(body), &tc, &n);
		used += control_frame(buf, FRAME_TOPIC_CREATED, 1, durable, 1, 0, body, n);
		/* A record batch whose first record carries an idempotency key. */
		uint8_t rec[64];
		struct record_view rv = {.idem_key = (const uint8_t *)"key-1", .idem_key_len = 5,
					 .value = (const uint8_t *)"hello", .value_len = 5};
		record_encode(rec, sizeof(rec), &rv, &n);
		struct frame_header h = {.kind = FRAME_RECORD_BATCH, .term = 1, .index = 2, .topic_id = 1,
					 .partition = 1, .record_count = 1, .body_bytes = (uint32_t)n,
					 .timestamp_ms = 5000, .durable_index = durable, .ingress_seq = 2};
		size_t fl;
		frame_encode(buf + used, sizeof(buf) - used, &h, rec, &fl);
		used += fl;
		used += commit_frame(buf + used, 3, durable, 0);
	} else {
		used += commit_frame(buf, first, durable, 0); /* replays nothing: same offset */
	}
	uint64_t last = first + (stage == 1 ? 2 : 0);
	struct iovec iov = {.iov_base = buf, .iov_len = used};
	if (journal_write(j, &iov, 1, used, last, 1) != SK_OK || journal_sync(j) != SK_OK)
		_exit(12);
	if (stage == 2) {
		/* The group commit's meta transaction, then death before any checkpoint. */
		struct frame_header h;
		if (frame_decode(buf, used, &h, NULL) != SK_OK || meta_begin(m) ||
		    store_apply_frame(m, ix, &h, buf + SK_FRAME_HEADER_BYTES) ||
		    meta_set_applied_index(m, last) || meta_commit(m))
			_exit(13);
	}
	_exit(0); /* stage 1: died between the journal fdatasync and the meta commit */
}

static void run_child(int stage)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_writer(stage);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void check_meta(meta *m, uint64_t applied)
{
	struct meta_topic t;
	assert_int_equal(meta_topic_by_name(m, "orders", &t), SK_OK);
	assert_int_equal(t.id, 1);
	assert_int_equal(t.partitions, 2);
	assert_int_equal(t.created_index, 1);
	uint32_t part;
	uint64_t off, idx, got;
	assert_int_equal(meta_idem_lookup(m, 1, (const uint8_t *)"key-1", 5, 6000, 60000, &part, &off, &idx), SK_OK);
	assert_int_equal(part, 1);
	assert_int_equal(off, 0);
	assert_int_equal(idx, 2);
	assert_int_equal(meta_committed_offset(m, "g", 1, 1, &off), SK_OK);
	assert_int_equal(off, 0);
	assert_int_equal(meta_applied_index(m, &got), SK_OK);
	assert_int_equal(got, applied);
}

static void recover_all(uint64_t *last_out, uint64_t *next_offset_out)
{
	meta *m;
	index_set *ix;
	journal *j;
	struct journal_opts o = {.data_dir = tl_dir, .segment_bytes = TL_SEGMENT_BYTES};
	assert_int_equal(meta_open(tl_dir, false, &m), SK_OK);
	assert_int_equal(index_set_open(tl_dir, &ix), SK_OK);
	assert_int_equal(journal_open(&o, &j), SK_OK);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(store_recover(j, m, ix, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	*last_out = res.last_index;
	*next_offset_out = index_next_offset(ix, 1, 1);
	check_meta(m, res.last_index);
	journal_close(j);
	index_set_close(ix);
	meta_close(m);
}

static void test_recovery_applies_meta_entries_exactly_once_across_a_death_after_fdatasync(void **state)
{
	uint64_t last, next;
	run_child(1); /* frames 1-3 durable, meta never committed */
	recover_all(&last, &next);
	assert_int_equal(last, 3);
	assert_int_equal(next, 1); /* one record indexed, once */
	recover_all(&last, &next); /* again: nothing applied twice, nothing indexed twice */
	assert_int_equal(last, 3);
	assert_int_equal(next, 1);
	run_child(2); /* frame 4 with its meta transaction, no checkpoint */
	recover_all(&last, &next);
	assert_int_equal(last, 4);
	assert_int_equal(next, 1);
}

static void test_recovery_keeps_meta_unchanged_when_the_batch_never_reached_the_disk(void **state)
{
	meta *m;
	index_set *ix;
	assert_int_equal(meta_open(tl_dir, false, &m), SK_OK);
	assert_int_equal(index_set_open(tl_dir, &ix), SK_OK);
	journal *j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(store_recover(j, m, ix, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	uint8_t buf[4096], body[64];
	size_t n;
	struct frame_topic_created tc = {.partitions = 1, .name = (const uint8_t *)"lost", .name_len = 4};
	frame_topic_created_encode(body, sizeof(body), &tc, &n);
	size_t used = control_frame(buf, FRAME_TOPIC_CREATED, 1, 0, 1, 0, body, n);
	struct iovec iov = {.iov_base = buf, .iov_len = used};
	assert_int_equal(journal_write(j, &iov, 1, used, 1, 1), SK_OK);
	journal_close(j); /* died before the fdatasync ... */
	journal_fault_crash(FAULT_CRASH_DROP, 0); /* ... and the power went */
	j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	assert_int_equal(store_recover(j, m, ix, NULL, NULL, &res, why, sizeof(why)), SK_OK);
	assert_int_equal(res.last_index, 0);
	struct meta_topic t;
	assert_int_equal(meta_topic_by_name(m, "lost", &t), SK_ENOTFOUND);
	journal_close(j);
	index_set_close(ix);
	meta_close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recovery_refuses_damage_mid_journal_naming_file_and_byte, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_refuses_a_zeroed_hole_before_durable_frames, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_refuses_a_missing_segment, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_refuses_a_bad_segment_end_before_a_durable_segment, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_refuses_when_meta_is_ahead_of_the_journal, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_cuts_a_prefix_torn_tail_at_every_byte_of_the_last_frame, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_cuts_a_suffix_torn_tail_at_every_byte_of_the_last_frame, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_cuts_a_torn_batch_even_with_complete_frames_after_the_bad_one, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_cuts_a_torn_tail_in_a_later_segment, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_syncs_frames_it_accepted_from_the_page_cache, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_scans_only_after_the_checkpoint, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_rebuilds_an_index_that_disagrees_with_the_journal, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_keeps_index_entries_written_before_a_sigkill, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_applies_meta_entries_exactly_once_across_a_death_after_fdatasync, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_recovery_keeps_meta_unchanged_when_the_batch_never_reached_the_disk, tl_setup, tl_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
