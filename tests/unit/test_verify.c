#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "journal_testlib.h"
#include "store/verify.h"

static char path[1024];
static char out_buf[65536];

static int run_verify(void)
{
	FILE *f = fmemopen(out_buf, sizeof(out_buf) - 1, "w");
	int rc = verify_data_dir(tl_dir, f);
	fclose(f);
	return rc;
}

/* Topic 1 with one partition, then batches of records. */
static void build_journal(int batches)
{
	journal *j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	uint8_t buf[256], body[64];
	size_t n, used;
	struct frame_topic_created tc = {.partitions = 1, .name = (const uint8_t *)"t", .name_len = 1};
	frame_topic_created_encode(body, sizeof(body), &tc, &n);
	struct frame_header h = {.kind = FRAME_TOPIC_CREATED, .term = 1, .index = 1, .topic_id = 1,
				 .body_bytes = (uint32_t)n};
	assert_int_equal(frame_encode(buf, sizeof(buf), &h, body, &used), SK_OK);
	struct iovec iov = {.iov_base = buf, .iov_len = used};
	assert_int_equal(journal_write(j, &iov, 1, used, 1, 1), SK_OK);
	assert_int_equal(journal_sync(j), SK_OK);
	journal_close(j);
	/* tl_append numbers offsets from (index - 1) * records: start it at index 2 with
	 * frames of one record each, so offsets are 1, 2, ... : shift by writing index 2
	 * as offset 0 ourselves instead. */
	j = tl_open_recovered(tl_dir, TL_SEGMENT_BYTES, NULL);
	for (int b = 0; b < batches; b++) {
		static uint8_t fb[1 << 16];
		size_t total = 0;
		for (int f = 0; f < 8; f++) {
			uint64_t idx = journal_last_index(j) + 1 + (uint64_t)f;
			total += tl_batch_frame(fb + total, sizeof(fb) - total, idx, journal_durable_index(j), 1, 0,
						(idx - 2) * 3, 3, 500, idx);
		}
		if (journal_room(j) < total)
			assert_int_equal(journal_roll(j, total), SK_OK);
		struct iovec v = {.iov_base = fb, .iov_len = total};
		assert_int_equal(journal_write(j, &v, 1, total, journal_last_index(j) + 8, 1), SK_OK);
		assert_int_equal(journal_sync(j), SK_OK);
	}
	journal_close(j);
}

static void test_verify_reports_a_missing_journal(void **state)
{
	assert_int_not_equal(run_verify(), SK_VERIFY_CLEAN);
}

static void test_verify_names_file_and_byte_of_damage(void **state)
{
	build_journal(10);
	snprintf(path, sizeof(path), "%s/journal/%020d.seg", tl_dir, 1);
	uint8_t x = 0x42;
	tl_poke(path, 5000, &x, 1);
	assert_int_equal(run_verify(), SK_VERIFY_PROBLEM);
	assert_non_null(strstr(out_buf, "first problem: "));
	assert_non_null(strstr(out_buf, path));
	assert_non_null(strstr(out_buf, "crc mismatch"));
	assert_non_null(strstr(out_buf, "result: NOT clean"));
}

static void test_verify_reports_a_missing_segment(void **state)
{
	build_journal(400);
	struct journal_segment_info segs[8];
	size_t n;
	journal *j = tl_open(tl_dir, TL_SEGMENT_BYTES);
	journal_segments(j, segs, 8, &n);
	journal_close(j);
	assert_true(n >= 3);
	snprintf(path, sizeof(path), "%s/journal/%020llu.seg", tl_dir, (unsigned long long)segs[1].segment_id);
	unlink(path);
	assert_int_equal(run_verify(), SK_VERIFY_PROBLEM);
	assert_non_null(strstr(out_buf, "missing segment"));
}

static void test_verify_passes_a_clean_journal_with_a_summary(void **state)
{
	build_journal(400); /* several segments */
	int rc = run_verify();
	if (rc != SK_VERIFY_CLEAN)
		fprintf(stderr, "%s", out_buf);
	assert_int_equal(rc, SK_VERIFY_CLEAN);
	assert_non_null(strstr(out_buf, "result: clean"));
	assert_non_null(strstr(out_buf, "topic 1 partition 0: 9600 records in 3200 frames, offsets 0..9600"));
	assert_non_null(strstr(out_buf, "record_batch      3200"));
	assert_non_null(strstr(out_buf, "topic_created     1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_verify_reports_a_missing_journal, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_verify_names_file_and_byte_of_damage, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_verify_reports_a_missing_segment, tl_setup, tl_teardown),
		cmocka_unit_test_setup_teardown(test_verify_passes_a_clean_journal_with_a_summary, tl_setup, tl_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
