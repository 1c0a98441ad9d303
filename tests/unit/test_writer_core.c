#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "journal_testlib.h"
#include "store/index.h"
#include "store/meta_write.h"
#include "workers/writer/writer_core.h"

#define SEG (1024 * 1024)
#define NOW_MS 1795000000000ull /* a wall-clock time: the idempotency window is behind it */

static wcore *wc;
static uint64_t seq;
static uint8_t bodies[64][4096];
static int body_next;

static void open_core(void)
{
	struct wcore_opts o = {.data_dir = tl_dir, .segment_bytes = SEG, .partitions_max = 16,
			       .io = journal_fault_io(), .batch_records_max = 1024,
			       .batch_bytes_max = 256 * 1024};
	assert_int_equal(wcore_open(&o, &wc), SK_OK);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(wcore_recover(wc, 0, &res, why, sizeof(why)), SK_OK);
}

static int setup(void **state)
{
	journal_fault_reset();
	tl_fresh_dir();
	seq = 0;
	body_next = 0;
	open_core();
	return 0;
}

static int teardown(void **state)
{
	wcore_close(wc);
	wc = NULL;
	journal_fault_reset();
	tl_cleanup();
	return 0;
}

static struct msg_req produce_req(uint32_t topic, uint32_t partition, uint32_t count, const char *idem)
{
	uint8_t *b = bodies[body_next++ % 64];
	size_t pos = 0, used;
	for (uint32_t i = 0; i < count; i++) {
		struct record_view rv = {.value = (const uint8_t *)"value", .value_len = 5};
		if (i == 0 && idem) {
			rv.idem_key = (const uint8_t *)idem;
			rv.idem_key_len = (uint32_t)strlen(idem);
		}
		assert_int_equal(record_encode(b + pos, 4096 - pos, &rv, &used), SK_OK);
		pos += used;
	}
	return (struct msg_req){.kind = MSG_REQ_PRODUCE, .topic_id = topic, .partition = partition,
				.record_count = count, .arg2 = 60000, .now_ms = NOW_MS, .body = b,
				.body_len = (uint32_t)pos};
}

static struct msg_req create_req(const char *name, uint64_t partitions)
{
	return (struct msg_req){.kind = MSG_REQ_CREATE_TOPIC, .arg = partitions, .now_ms = NOW_MS,
				.name = (const uint8_t *)name, .name_len = (uint16_t)strlen(name)};
}

static struct msg_req commit_req(uint32_t topic, uint32_t partition, const char *group, uint64_t offset)
{
	return (struct msg_req){.kind = MSG_REQ_COMMIT, .topic_id = topic, .partition = partition,
				.arg = offset, .name = (const uint8_t *)group,
				.name_len = (uint16_t)strlen(group)};
}

static struct msg_req delete_req(uint32_t topic, uint32_t partition, uint64_t before)
{
	return (struct msg_req){.kind = MSG_REQ_DELETE_BEFORE, .topic_id = topic, .partition = partition,
				.arg = before};
}

/* One request alone in a batch; returns its completion. */
static struct msg_completion one(struct msg_req req, sk_err expect_commit)
{
	wcore_batch_begin(wc);
	assert_int_not_equal(wcore_take(wc, ++seq, &req), WCORE_NO_ROOM);
	struct wcore_stats st;
	assert_int_equal(wcore_batch_commit(wc, &st), expect_commit);
	uint32_t n;
	const struct msg_completion *c = wcore_completions(wc, &n);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].req_seq, seq);
	return c[0];
}

static void create_topic(const char *name, uint32_t partitions)
{
	struct msg_completion c = one(create_req(name, partitions), SK_OK);
	assert_int_equal(c.status, SK_OK);
	assert_int_equal(c.flags, MSG_FLAG_CREATED);
}

/* ---- must reject ---- */

static void test_writer_rejects_produce_to_unknown_topic_or_partition(void **state)
{
	struct msg_completion c = one(produce_req(9, 0, 1, NULL), SK_OK);
	assert_int_equal(c.status, SK_ENOTFOUND);
	create_topic("t", 2);
	c = one(produce_req(1, 2, 1, NULL), SK_OK);
	assert_int_equal(c.status, SK_ENOTFOUND);
	assert_int_equal(wcore_durable_index(wc), 1); /* only the topic's frame */
}

static void test_writer_rejects_malformed_records_and_bad_topic_requests(void **state)
{
	create_topic("t", 2);
	struct msg_req r = produce_req(1, 0, 2, NULL);
	r.record_count = 3; /* the body holds two */
	assert_int_equal(one(r, SK_OK).status, SK_EINVAL);
	assert_int_equal(one(create_req("big", 17), SK_OK).status, SK_EINVAL);
	assert_int_equal(one(create_req("zero", 0), SK_OK).status, SK_EINVAL);
	struct msg_completion c = one(create_req("t", 3), SK_OK);
	assert_int_equal(c.status, SK_ECONFLICT);
	assert_int_equal(c.current, 2);
	c = one(create_req("t", 2), SK_OK); /* same partitions: OK, not created */
	assert_int_equal(c.status, SK_OK);
	assert_int_equal(c.flags, 0);
	assert_int_equal(c.topic_id, 1);
}

static void test_writer_rejects_commits_backwards_or_past_the_high_watermark(void **state)
{
	create_topic("t", 1);
	for (int i = 0; i < 5; i++)
		assert_int_equal(one(produce_req(1, 0, 1, NULL), SK_OK).status, SK_OK);
	struct msg_completion c = one(commit_req(1, 0, "g", 6), SK_OK);
	assert_int_equal(c.status, SK_ERANGE);
	assert_int_equal(c.current, 5);
	/* offset 5 does not exist yet: committing it would skip the next record */
	c = one(commit_req(1, 0, "g", 5), SK_OK);
	assert_int_equal(c.status, SK_ERANGE);
	assert_int_equal(c.current, 5);
	assert_int_equal(one(commit_req(1, 0, "g", 4), SK_OK).status, SK_OK);
	c = one(commit_req(1, 0, "g", 3), SK_OK);
	assert_int_equal(c.status, SK_ECONFLICT);
	assert_int_equal(c.current, 4);
	c = one(delete_req(1, 0, 6), SK_OK);
	assert_int_equal(c.status, SK_ERANGE);
	assert_int_equal(c.current, 5);
}

/* ---- what works ---- */

static void test_writer_assigns_dense_offsets_in_one_fdatasync_per_batch(void **state)
{
	create_topic("t", 2);
	uint64_t syncs = journal_fault_fsyncs();
	wcore_batch_begin(wc);
	for (int i = 0; i < 10; i++) {
		struct msg_req r = produce_req(1, (uint32_t)(i % 2), 3, NULL);
		assert_int_equal(wcore_take(wc, ++seq, &r), WCORE_TAKEN);
	}
	struct wcore_stats st;
	assert_int_equal(wcore_batch_commit(wc, &st), SK_OK);
	assert_int_equal(journal_fault_fsyncs(), syncs + 1);
	assert_int_equal(st.last_frames, 10);
	assert_int_equal(st.last_records, 30);
	uint32_t n;
	const struct msg_completion *c = wcore_completions(wc, &n);
	assert_int_equal(n, 10);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(c[i].status, SK_OK);
		assert_int_equal(c[i].offset, (i / 2) * 3);
		assert_int_equal(c[i].count, 3);
		assert_int_equal(c[i].index, 2 + i);
	}
	assert_int_equal(wcore_durable_index(wc), 11);
	assert_int_equal(wcore_max_ingress_seq(wc), seq);
}

static void test_writer_answers_a_repeated_idempotency_key_with_the_first_offset(void **state)
{
	create_topic("t", 2);
	assert_int_equal(one(produce_req(1, 0, 1, NULL), SK_OK).offset, 0);
	/* Within one batch: the second ends the batch and points at the first. */
	wcore_batch_begin(wc);
	struct msg_req a = produce_req(1, 1, 2, "key-a"), b = produce_req(1, 0, 2, "key-a");
	assert_int_equal(wcore_take(wc, ++seq, &a), WCORE_TAKEN);
	assert_int_equal(wcore_take(wc, ++seq, &b), WCORE_TAKEN_END);
	struct wcore_stats st;
	assert_int_equal(wcore_batch_commit(wc, &st), SK_OK);
	uint32_t n;
	const struct msg_completion *c = wcore_completions(wc, &n);
	assert_int_equal(n, 2);
	assert_int_equal(c[1].flags, MSG_FLAG_DUPLICATE);
	assert_int_equal(c[1].partition, 1);
	assert_int_equal(c[1].offset, 0);
	assert_int_equal(c[1].index, c[0].index);
	/* In a later batch: found in meta.db. */
	struct msg_completion d = one(produce_req(1, 0, 2, "key-a"), SK_OK);
	assert_int_equal(d.flags, MSG_FLAG_DUPLICATE);
	assert_int_equal(d.partition, 1);
	assert_int_equal(d.offset, 0);
	/* Nothing was appended for the duplicates. */
	assert_int_equal(one(produce_req(1, 1, 1, NULL), SK_OK).offset, 2);
}

static void test_writer_fails_a_batch_on_enospc_and_resumes_when_space_returns(void **state)
{
	create_topic("t", 1);
	assert_int_equal(one(produce_req(1, 0, 1, NULL), SK_OK).offset, 0);
	journal_fault_enospc_after(10);
	struct msg_completion c = one(produce_req(1, 0, 4, NULL), SK_EFULL);
	assert_int_equal(c.status, SK_EFULL);
	assert_true(wcore_storage_full(wc));
	journal_fault_enospc_after(-1);
	c = one(produce_req(1, 0, 1, NULL), SK_OK);
	assert_int_equal(c.status, SK_OK);
	assert_int_equal(c.offset, 1); /* the failed batch left no gap */
	assert_false(wcore_storage_full(wc));
}

static void test_writer_answers_requests_already_in_the_journal_without_appending(void **state)
{
	create_topic("t", 1);
	uint64_t first = seq + 1;
	wcore_batch_begin(wc);
	struct msg_req reqs[3] = {produce_req(1, 0, 2, NULL), commit_req(1, 0, "g", 0),
				  produce_req(1, 0, 1, NULL)};
	for (int i = 0; i < 3; i++)
		wcore_take(wc, ++seq, &reqs[i]);
	struct wcore_stats st;
	assert_int_equal(wcore_batch_commit(wc, &st), SK_OK);
	uint32_t n;
	struct msg_completion before[3];
	memcpy(before, wcore_completions(wc, &n), sizeof(before));
	uint64_t last = wcore_durable_index(wc);
	/* The writer dies before releasing the ring; a new one sees the same records. */
	wcore_close(wc);
	struct wcore_opts o = {.data_dir = tl_dir, .segment_bytes = SEG, .partitions_max = 16,
			       .io = journal_fault_io(), .batch_records_max = 1024,
			       .batch_bytes_max = 256 * 1024};
	assert_int_equal(wcore_open(&o, &wc), SK_OK);
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	assert_int_equal(wcore_recover(wc, first, &res, why, sizeof(why)), SK_OK);
	wcore_batch_begin(wc);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wcore_take(wc, first + (uint64_t)i, &reqs[i]), WCORE_TAKEN);
	assert_int_equal(wcore_batch_commit(wc, &st), SK_OK);
	assert_int_equal(st.last_frames, 0);
	assert_int_equal(wcore_durable_index(wc), last);
	assert_int_equal(wcore_skipped(wc), 3);
	const struct msg_completion *after = wcore_completions(wc, &n);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(after[i].status, SK_OK);
		assert_int_equal(after[i].offset, before[i].offset);
		assert_int_equal(after[i].index, before[i].index);
	}
}

static void test_writer_delete_before_moves_the_log_start(void **state)
{
	create_topic("t", 1);
	for (int i = 0; i < 4; i++)
		one(produce_req(1, 0, 1, NULL), SK_OK);
	struct msg_completion c = one(delete_req(1, 0, 3), SK_OK);
	assert_int_equal(c.status, SK_OK);
	assert_int_equal(c.offset, 3);
	c = one(delete_req(1, 0, 2), SK_OK); /* behind it: nothing to do */
	assert_int_equal(c.status, SK_OK);
	assert_int_equal(c.offset, 3);
	meta *m;
	assert_int_equal(meta_open(tl_dir, true, &m), SK_OK);
	uint64_t ls;
	assert_int_equal(meta_log_start(m, 1, 0, &ls), SK_OK);
	assert_int_equal(ls, 3);
	meta_close(m);
}

static void test_writer_retention_removes_old_segments_and_moves_log_starts(void **state)
{
	create_topic("t", 1);
	static char big[2000];
	memset(big, 'r', sizeof(big));
	for (int b = 0; b < 200; b++) {
		wcore_batch_begin(wc);
		for (int i = 0; i < 10; i++) {
			uint8_t *body = bodies[body_next++ % 64];
			size_t used;
			struct record_view rv = {.value = (const uint8_t *)big, .value_len = sizeof(big)};
			record_encode(body, 4096, &rv, &used);
			struct msg_req r = {.kind = MSG_REQ_PRODUCE, .topic_id = 1, .record_count = 1,
					    .now_ms = NOW_MS, .body = body, .body_len = (uint32_t)used};
			if (wcore_take(wc, ++seq, &r) == WCORE_NO_ROOM) {
				/* The segment is full: commit, then offer it again (a roll). */
				struct wcore_stats st;
				assert_int_equal(wcore_batch_commit(wc, &st), SK_OK);
				wcore_batch_begin(wc);
				assert_int_equal(wcore_take(wc, seq, &r), WCORE_TAKEN);
			}
		}
		struct wcore_stats st;
		assert_int_equal(wcore_batch_commit(wc, &st), SK_OK);
		assert_int_equal(wcore_checkpoint_if_due(wc, false), SK_OK);
	}
	assert_int_equal(wcore_checkpoint_if_due(wc, true), SK_OK);
	char path[512];
	snprintf(path, sizeof(path), "%s/journal/%020d.seg", tl_dir, 1);
	assert_true(tl_exists(path));
	bool changed = false;
	assert_int_equal(wcore_retention(wc, 2 * SEG, 0, NOW_MS, &changed), SK_OK);
	assert_true(changed);
	assert_false(tl_exists(path));
	meta *m;
	assert_int_equal(meta_open(tl_dir, true, &m), SK_OK);
	uint64_t ls;
	assert_int_equal(meta_log_start(m, 1, 0, &ls), SK_OK);
	assert_true(ls > 0 && ls < 2000);
	meta_close(m);
	/* Offsets go on after it, and a restart agrees. */
	assert_int_equal(one(produce_req(1, 0, 1, NULL), SK_OK).offset, 2000);
}

static void test_writer_topic_retention_ms_moves_the_log_start_past_old_records(void **state)
{
	create_topic("t", 1);
	for (int i = 0; i < 6; i++) {
		struct msg_req r = produce_req(1, 0, 1, NULL);
		r.now_ms = NOW_MS + (uint64_t)i * 1000; /* one record a second */
		assert_int_equal(one(r, SK_OK).offset, (uint64_t)i);
	}
	struct msg_req rt = {.kind = MSG_REQ_RETENTION, .topic_id = 1, .arg = 0, .arg2 = 2500,
			     .now_ms = NOW_MS};
	assert_int_equal(one(rt, SK_OK).status, SK_OK);
	bool changed = false;
	/* At NOW + 5.5 s, records older than 2.5 s (offsets 0..2) go. */
	assert_int_equal(wcore_retention(wc, 0, 0, NOW_MS + 5500, &changed), SK_OK);
	assert_true(changed);
	meta *m;
	assert_int_equal(meta_open(tl_dir, true, &m), SK_OK);
	uint64_t ls;
	assert_int_equal(meta_log_start(m, 1, 0, &ls), SK_OK);
	assert_int_equal(ls, 3);
	meta_close(m);
	/* Nothing more to do at the same time: no new frame. */
	uint64_t last = wcore_durable_index(wc);
	assert_int_equal(wcore_retention(wc, 0, 0, NOW_MS + 5500, &changed), SK_OK);
	assert_false(changed);
	assert_int_equal(wcore_durable_index(wc), last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writer_rejects_produce_to_unknown_topic_or_partition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_rejects_malformed_records_and_bad_topic_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_rejects_commits_backwards_or_past_the_high_watermark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_assigns_dense_offsets_in_one_fdatasync_per_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_answers_a_repeated_idempotency_key_with_the_first_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_fails_a_batch_on_enospc_and_resumes_when_space_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_answers_requests_already_in_the_journal_without_appending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_delete_before_moves_the_log_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_retention_removes_old_segments_and_moves_log_starts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_topic_retention_ms_moves_the_log_start_past_old_records, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
