#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <unistd.h>

#include "store/meta.h"
#include "store/meta_write.h"

struct fixture {
	char dir[64];
	meta *m; /* writer connection */
};

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/skiff-test-meta-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (meta_open(f->dir, false, &f->m) != SK_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	meta_close(f->m);
	nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static meta *open_reader(struct fixture *f)
{
	meta *r = NULL;
	assert_int_equal(meta_open(f->dir, true, &r), SK_OK);
	return r;
}

static void create_topic(meta *m, uint32_t id, const char *name, uint32_t partitions, uint64_t index)
{
	assert_int_equal(meta_begin(m), SK_OK);
	assert_int_equal(meta_apply_topic_created(m, id, name, partitions, index), SK_OK);
	assert_int_equal(meta_set_applied_index(m, index), SK_OK);
	assert_int_equal(meta_commit(m), SK_OK);
}

/* ---- must reject ---- */

static void test_meta_readonly_open_of_missing_db_is_not_found(void **state)
{
	char dir[] = "/tmp/skiff-test-meta-empty-XXXXXX";
	assert_non_null(mkdtemp(dir));
	meta *m = (meta *)0x1;
	assert_int_equal(meta_open(dir, true, &m), SK_ENOTFOUND);
	assert_int_equal(meta_open("/nonexistent/skiff/dir", true, &m), SK_ENOTFOUND);
	assert_int_equal(rmdir(dir), 0);
}

static void test_meta_readonly_connection_refuses_writes(void **state)
{
	struct fixture *f = *state;
	meta *r = open_reader(f);
	assert_int_equal(meta_begin(r), SK_EINVAL);
	assert_int_equal(meta_apply_topic_created(r, 1, "t", 1, 1), SK_EINVAL);
	assert_int_equal(meta_apply_offset_commit(r, "g", 1, 0, 1, 2), SK_EINVAL);
	assert_int_equal(meta_set_applied_index(r, 5), SK_EINVAL);
	struct meta_checkpoint cp = {.segment_id = 1};
	assert_int_equal(meta_checkpoint_set(r, &cp), SK_EINVAL);
	assert_int_equal(meta_idem_put(r, 1, (const uint8_t *)"k", 1, 0, 0, 1, 1), SK_EINVAL);
	meta_close(r);
	uint64_t applied = 99;
	assert_int_equal(meta_applied_index(f->m, &applied), SK_OK);
	assert_int_equal(applied, 0);
}

static void test_meta_rejects_bad_names_and_partition_counts(void **state)
{
	struct fixture *f = *state;
	char long_name[SK_TOPIC_NAME_BYTES_MAX + 2];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	assert_int_equal(meta_apply_topic_created(f->m, 1, long_name, 1, 1), SK_EINVAL);
	assert_int_equal(meta_apply_topic_created(f->m, 1, "", 1, 1), SK_EINVAL);
	assert_int_equal(meta_apply_topic_created(f->m, 1, "t", 0, 1), SK_EINVAL);
	assert_int_equal(meta_apply_topic_created(f->m, 1, "t", SK_PARTITIONS_MAX_MAX + 1, 1),
			 SK_EINVAL);
	assert_int_equal(meta_apply_topic_created(f->m, 0, "t", 1, 1), SK_EINVAL);
	char long_group[SK_GROUP_NAME_BYTES_MAX + 2];
	memset(long_group, 'g', sizeof(long_group) - 1);
	long_group[sizeof(long_group) - 1] = 0;
	assert_int_equal(meta_apply_offset_commit(f->m, long_group, 1, 0, 1, 2), SK_EINVAL);
	assert_int_equal(meta_apply_offset_commit(f->m, "", 1, 0, 1, 2), SK_EINVAL);
	uint64_t off;
	assert_int_equal(meta_committed_offset(f->m, "", 1, 0, &off), SK_EINVAL);
	uint32_t count = 9;
	struct meta_topic t;
	assert_int_equal(meta_topics_list(f->m, &t, 1, &count), SK_OK);
	assert_int_equal(count, 0);
}

static void test_meta_rejects_bad_idempotency_keys(void **state)
{
	struct fixture *f = *state;
	uint8_t big[SK_IDEM_KEY_BYTES_MAX + 1] = {0};
	uint32_t p;
	uint64_t o, i;
	assert_int_equal(meta_idem_put(f->m, 1, big, 0, 0, 0, 1, 1), SK_EINVAL);
	assert_int_equal(meta_idem_put(f->m, 1, big, sizeof(big), 0, 0, 1, 1), SK_EINVAL);
	assert_int_equal(meta_idem_put(f->m, 1, NULL, 3, 0, 0, 1, 1), SK_EINVAL);
	assert_int_equal(meta_idem_lookup(f->m, 1, big, 0, 10, 10, &p, &o, &i), SK_EINVAL);
	assert_int_equal(meta_idem_lookup(f->m, 1, big, sizeof(big), 10, 10, &p, &o, &i), SK_EINVAL);
}

static void test_meta_rejects_conflicting_topic_and_unknown_partition(void **state)
{
	struct fixture *f = *state;
	create_topic(f->m, 1, "orders", 4, 10);
	/* same id, other name or partitions; same name, other id */
	assert_int_equal(meta_apply_topic_created(f->m, 1, "other", 4, 10), SK_EEXIST);
	assert_int_equal(meta_apply_topic_created(f->m, 1, "orders", 5, 10), SK_EEXIST);
	assert_int_equal(meta_apply_topic_created(f->m, 2, "orders", 4, 11), SK_EEXIST);
	assert_int_equal(meta_apply_log_start(f->m, 1, 4, 10, 12), SK_ENOTFOUND);
	assert_int_equal(meta_apply_log_start(f->m, 9, 0, 10, 12), SK_ENOTFOUND);
	assert_int_equal(meta_apply_retention(f->m, 9, 1, 1, 12), SK_ENOTFOUND);
	assert_int_equal(meta_apply_retention(f->m, 1, SK_RETENTION_BYTES_MAX + 1, 0, 12), SK_EINVAL);
	assert_int_equal(meta_apply_retention(f->m, 1, 0, SK_RETENTION_MS_MAX + 1, 12), SK_EINVAL);
	struct meta_topic t;
	assert_int_equal(meta_topic_by_name(f->m, "missing", &t), SK_ENOTFOUND);
	assert_int_equal(meta_topic_by_id(f->m, 77, &t), SK_ENOTFOUND);
	uint64_t ls;
	assert_int_equal(meta_log_start(f->m, 1, 4, &ls), SK_ENOTFOUND);
}

static void test_meta_applied_index_never_moves_back(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(meta_set_applied_index(f->m, 20), SK_OK);
	assert_int_equal(meta_set_applied_index(f->m, 19), SK_ECONFLICT);
	assert_int_equal(meta_set_applied_index(f->m, 20), SK_OK);
	uint64_t applied;
	assert_int_equal(meta_applied_index(f->m, &applied), SK_OK);
	assert_int_equal(applied, 20);
}

static void test_meta_transaction_calls_out_of_order_are_rejected(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(meta_commit(f->m), SK_EINVAL);
	meta_rollback(f->m); /* nothing open: harmless */
	assert_int_equal(meta_begin(f->m), SK_OK);
	assert_int_equal(meta_begin(f->m), SK_EINVAL);
	assert_int_equal(meta_commit(f->m), SK_OK);
}

/* ---- behaviour ---- */

static void test_meta_topic_created_is_idempotent(void **state)
{
	struct fixture *f = *state;
	create_topic(f->m, 1, "orders", 3, 10);
	create_topic(f->m, 1, "orders", 3, 10); /* re-applied after a crash */
	struct meta_topic t;
	assert_int_equal(meta_topic_by_name(f->m, "orders", &t), SK_OK);
	assert_int_equal(t.id, 1);
	assert_int_equal(t.partitions, 3);
	assert_int_equal(t.created_index, 10);
	assert_int_equal(t.retention_bytes, 0);
	assert_string_equal(t.name, "orders");
	assert_int_equal(meta_topic_by_id(f->m, 1, &t), SK_OK);
	assert_string_equal(t.name, "orders");
	uint64_t ls = 9;
	for (uint32_t p = 0; p < 3; p++) {
		assert_int_equal(meta_log_start(f->m, 1, p, &ls), SK_OK);
		assert_int_equal(ls, 0);
	}
	uint32_t next;
	assert_int_equal(meta_next_topic_id(f->m, &next), SK_OK);
	assert_int_equal(next, 2);
}

static void test_meta_topics_list_is_ordered_by_name_and_capped(void **state)
{
	struct fixture *f = *state;
	uint32_t next;
	assert_int_equal(meta_next_topic_id(f->m, &next), SK_OK);
	assert_int_equal(next, 1);
	create_topic(f->m, 1, "zeta", 1, 1);
	create_topic(f->m, 2, "alpha", 2, 2);
	create_topic(f->m, 3, "mid", 3, 3);
	struct meta_topic t[4];
	uint32_t count;
	assert_int_equal(meta_topics_list(f->m, t, 4, &count), SK_OK);
	assert_int_equal(count, 3);
	assert_string_equal(t[0].name, "alpha");
	assert_string_equal(t[1].name, "mid");
	assert_string_equal(t[2].name, "zeta");
	assert_int_equal(meta_topics_list(f->m, t, 2, &count), SK_OK);
	assert_int_equal(count, 2);
	assert_string_equal(t[1].name, "mid");
	assert_int_equal(meta_next_topic_id(f->m, &next), SK_OK);
	assert_int_equal(next, 4);
}

static void test_meta_offset_commit_is_idempotent_and_never_moves_back_for_old_index(void **state)
{
	struct fixture *f = *state;
	create_topic(f->m, 1, "t", 2, 1);
	uint64_t off;
	assert_int_equal(meta_committed_offset(f->m, "g", 1, 0, &off), SK_ENOTFOUND);
	assert_int_equal(meta_apply_offset_commit(f->m, "g", 1, 0, 5, 10), SK_OK);
	assert_int_equal(meta_apply_offset_commit(f->m, "g", 1, 0, 5, 10), SK_OK);
	assert_int_equal(meta_committed_offset(f->m, "g", 1, 0, &off), SK_OK);
	assert_int_equal(off, 5);
	assert_int_equal(meta_apply_offset_commit(f->m, "g", 1, 0, 9, 12), SK_OK);
	/* an entry already applied (index 10, 11) cannot move it back */
	assert_int_equal(meta_apply_offset_commit(f->m, "g", 1, 0, 5, 10), SK_OK);
	assert_int_equal(meta_committed_offset(f->m, "g", 1, 0, &off), SK_OK);
	assert_int_equal(off, 9);
	assert_int_equal(meta_apply_offset_commit(f->m, "g", 1, 0, 2, 11), SK_OK);
	assert_int_equal(meta_committed_offset(f->m, "g", 1, 0, &off), SK_OK);
	assert_int_equal(off, 9);
	assert_int_equal(meta_apply_offset_commit(f->m, "g", 1, 0, 9, 12), SK_OK);
	assert_int_equal(meta_committed_offset(f->m, "g", 1, 0, &off), SK_OK);
	assert_int_equal(off, 9);
	/* other groups and partitions are separate */
	assert_int_equal(meta_committed_offset(f->m, "g", 1, 1, &off), SK_ENOTFOUND);
	assert_int_equal(meta_committed_offset(f->m, "h", 1, 0, &off), SK_ENOTFOUND);
	/* a newer entry stores what it says (the writer validated it, e.g. an operator reset) */
	assert_int_equal(meta_apply_offset_commit(f->m, "g", 1, 0, 3, 13), SK_OK);
	assert_int_equal(meta_committed_offset(f->m, "g", 1, 0, &off), SK_OK);
	assert_int_equal(off, 3);
}

static void test_meta_log_start_moves_forward_only_and_is_idempotent(void **state)
{
	struct fixture *f = *state;
	create_topic(f->m, 1, "t", 2, 1);
	assert_int_equal(meta_apply_log_start(f->m, 1, 1, 100, 5), SK_OK);
	assert_int_equal(meta_apply_log_start(f->m, 1, 1, 100, 5), SK_OK);
	assert_int_equal(meta_apply_log_start(f->m, 1, 1, 50, 6), SK_OK);
	uint64_t ls;
	assert_int_equal(meta_log_start(f->m, 1, 1, &ls), SK_OK);
	assert_int_equal(ls, 100);
	assert_int_equal(meta_apply_log_start(f->m, 1, 1, 200, 7), SK_OK);
	assert_int_equal(meta_apply_log_start(f->m, 1, 1, 150, 5), SK_OK);
	assert_int_equal(meta_log_start(f->m, 1, 1, &ls), SK_OK);
	assert_int_equal(ls, 200);
	assert_int_equal(meta_log_start(f->m, 1, 0, &ls), SK_OK);
	assert_int_equal(ls, 0);
}

static void test_meta_retention_is_idempotent_per_index(void **state)
{
	struct fixture *f = *state;
	create_topic(f->m, 1, "t", 1, 1);
	assert_int_equal(meta_apply_retention(f->m, 1, 1000, 60000, 5), SK_OK);
	assert_int_equal(meta_apply_retention(f->m, 1, 1000, 60000, 5), SK_OK);
	assert_int_equal(meta_apply_retention(f->m, 1, 7, 7, 4), SK_OK); /* older: ignored */
	struct meta_topic t;
	assert_int_equal(meta_topic_by_id(f->m, 1, &t), SK_OK);
	assert_int_equal(t.retention_bytes, 1000);
	assert_int_equal(t.retention_ms, 60000);
	assert_int_equal(meta_apply_retention(f->m, 1, 0, 0, 6), SK_OK);
	assert_int_equal(meta_topic_by_id(f->m, 1, &t), SK_OK);
	assert_int_equal(t.retention_bytes, 0);
	assert_int_equal(t.retention_ms, 0);
}

static void test_meta_applied_index_moves_only_on_commit(void **state)
{
	struct fixture *f = *state;
	meta *r = open_reader(f);
	uint64_t applied;
	assert_int_equal(meta_begin(f->m), SK_OK);
	assert_int_equal(meta_set_applied_index(f->m, 7), SK_OK);
	assert_int_equal(meta_applied_index(r, &applied), SK_OK);
	assert_int_equal(applied, 0);
	meta_rollback(f->m);
	assert_int_equal(meta_applied_index(f->m, &applied), SK_OK);
	assert_int_equal(applied, 0);
	assert_int_equal(meta_begin(f->m), SK_OK);
	assert_int_equal(meta_set_applied_index(f->m, 7), SK_OK);
	assert_int_equal(meta_commit(f->m), SK_OK);
	assert_int_equal(meta_applied_index(r, &applied), SK_OK);
	assert_int_equal(applied, 7);
	meta_close(r);
}

static void test_meta_rolled_back_transaction_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	create_topic(f->m, 1, "kept", 1, 1);
	assert_int_equal(meta_begin(f->m), SK_OK);
	assert_int_equal(meta_apply_topic_created(f->m, 2, "gone", 2, 2), SK_OK);
	assert_int_equal(meta_apply_offset_commit(f->m, "g", 1, 0, 4, 3), SK_OK);
	assert_int_equal(meta_apply_log_start(f->m, 1, 0, 4, 4), SK_OK);
	assert_int_equal(meta_idem_put(f->m, 1, (const uint8_t *)"k", 1, 0, 3, 5, 1000), SK_OK);
	struct meta_checkpoint cp = {.segment_id = 1, .position = 4096, .index = 5, .term = 1};
	assert_int_equal(meta_checkpoint_set(f->m, &cp), SK_OK);
	assert_int_equal(meta_set_applied_index(f->m, 5), SK_OK);
	meta_rollback(f->m);

	struct meta_topic t;
	assert_int_equal(meta_topic_by_name(f->m, "gone", &t), SK_ENOTFOUND);
	uint64_t v;
	assert_int_equal(meta_committed_offset(f->m, "g", 1, 0, &v), SK_ENOTFOUND);
	assert_int_equal(meta_log_start(f->m, 1, 0, &v), SK_OK);
	assert_int_equal(v, 0);
	uint32_t p;
	uint64_t o, i;
	assert_int_equal(meta_idem_lookup(f->m, 1, (const uint8_t *)"k", 1, 1000, 10, &p, &o, &i),
			 SK_ENOTFOUND);
	assert_int_equal(meta_checkpoint_get(f->m, &cp), SK_OK);
	assert_int_equal(cp.segment_id + cp.position + cp.index + cp.term + cp.ingress_seq, 0);
	assert_int_equal(meta_applied_index(f->m, &v), SK_OK);
	assert_int_equal(v, 1);
}

static void test_meta_readonly_connection_sees_committed_state_only(void **state)
{
	struct fixture *f = *state;
	meta *r = open_reader(f);
	struct meta_topic t;
	assert_int_equal(meta_begin(f->m), SK_OK);
	assert_int_equal(meta_apply_topic_created(f->m, 1, "t", 1, 1), SK_OK);
	assert_int_equal(meta_apply_offset_commit(f->m, "g", 1, 0, 4, 1), SK_OK);
	/* the writer holds its write transaction open: the reader still works (WAL) */
	assert_int_equal(meta_topic_by_name(r, "t", &t), SK_ENOTFOUND);
	uint64_t off;
	assert_int_equal(meta_committed_offset(r, "g", 1, 0, &off), SK_ENOTFOUND);
	uint32_t count = 5;
	assert_int_equal(meta_topics_list(r, &t, 1, &count), SK_OK);
	assert_int_equal(count, 0);
	assert_int_equal(meta_commit(f->m), SK_OK);
	assert_int_equal(meta_topic_by_name(r, "t", &t), SK_OK);
	assert_int_equal(t.id, 1);
	assert_int_equal(meta_committed_offset(r, "g", 1, 0, &off), SK_OK);
	assert_int_equal(off, 4);
	meta_close(r);
}

static void test_meta_readonly_open_works_after_writer_closed(void **state)
{
	struct fixture *f = *state;
	create_topic(f->m, 1, "t", 1, 1);
	meta_close(f->m);
	f->m = NULL;
	meta *r = open_reader(f);
	struct meta_topic t;
	assert_int_equal(meta_topic_by_name(r, "t", &t), SK_OK);
	/* and a writer coming back while the reader is open */
	assert_int_equal(meta_open(f->dir, false, &f->m), SK_OK);
	create_topic(f->m, 2, "u", 1, 2);
	assert_int_equal(meta_topic_by_name(r, "u", &t), SK_OK);
	meta_close(r);
}

static void test_meta_idempotency_window_lookup_and_prune(void **state)
{
	struct fixture *f = *state;
	const uint8_t key[] = {0, 1, 2, 0xff}; /* binary keys are fine */
	uint32_t p;
	uint64_t o, i;
	assert_int_equal(meta_idem_put(f->m, 1, key, sizeof(key), 2, 40, 9, 10000), SK_OK);
	assert_int_equal(meta_idem_put(f->m, 1, key, sizeof(key), 2, 40, 9, 10000), SK_OK);
	assert_int_equal(meta_idem_put(f->m, 1, (const uint8_t *)"old", 3, 0, 1, 3, 1000), SK_OK);
	assert_int_equal(meta_idem_lookup(f->m, 1, key, sizeof(key), 15000, 5000, &p, &o, &i), SK_OK);
	assert_int_equal(p, 2);
	assert_int_equal(o, 40);
	assert_int_equal(i, 9);
	/* outside the window: unknown, even before pruning */
	assert_int_equal(meta_idem_lookup(f->m, 1, key, sizeof(key), 15001, 5000, &p, &o, &i),
			 SK_ENOTFOUND);
	/* keys are per topic and compared as whole bytes */
	assert_int_equal(meta_idem_lookup(f->m, 2, key, sizeof(key), 15000, 5000, &p, &o, &i),
			 SK_ENOTFOUND);
	assert_int_equal(meta_idem_lookup(f->m, 1, key, 3, 15000, 5000, &p, &o, &i), SK_ENOTFOUND);
	/* a window larger than now does not wrap */
	assert_int_equal(meta_idem_lookup(f->m, 1, (const uint8_t *)"old", 3, 1000, 5000, &p, &o, &i),
			 SK_OK);
	assert_int_equal(meta_idem_prune(f->m, 5000), SK_OK);
	assert_int_equal(meta_idem_lookup(f->m, 1, (const uint8_t *)"old", 3, 1000, 5000, &p, &o, &i),
			 SK_ENOTFOUND);
	assert_int_equal(meta_idem_lookup(f->m, 1, key, sizeof(key), 10000, 5000, &p, &o, &i), SK_OK);
	/* a replay of an older entry does not overwrite; a newer reuse of the key does */
	assert_int_equal(meta_idem_put(f->m, 1, key, sizeof(key), 0, 1, 5, 500), SK_OK);
	assert_int_equal(meta_idem_lookup(f->m, 1, key, sizeof(key), 10000, 5000, &p, &o, &i), SK_OK);
	assert_int_equal(o, 40);
	assert_int_equal(meta_idem_put(f->m, 1, key, sizeof(key), 1, 77, 20, 30000), SK_OK);
	assert_int_equal(meta_idem_lookup(f->m, 1, key, sizeof(key), 30000, 5000, &p, &o, &i), SK_OK);
	assert_int_equal(p, 1);
	assert_int_equal(o, 77);
	assert_int_equal(i, 20);
}

static void test_meta_checkpoint_round_trips_across_reopen(void **state)
{
	struct fixture *f = *state;
	struct meta_checkpoint cp;
	assert_int_equal(meta_checkpoint_get(f->m, &cp), SK_OK);
	assert_int_equal(cp.segment_id | cp.position | cp.index | cp.term | cp.ingress_seq, 0);
	struct meta_checkpoint in = {.segment_id = 1000001,
				     .position = 123456789,
				     .index = 1000500,
				     .term = 3,
				     .ingress_seq = UINT64_MAX - 5};
	assert_int_equal(meta_begin(f->m), SK_OK);
	assert_int_equal(meta_checkpoint_set(f->m, &in), SK_OK);
	assert_int_equal(meta_set_applied_index(f->m, 1000500), SK_OK);
	assert_int_equal(meta_commit(f->m), SK_OK);
	meta_close(f->m);
	assert_int_equal(meta_open(f->dir, false, &f->m), SK_OK);
	assert_int_equal(meta_checkpoint_get(f->m, &cp), SK_OK);
	assert_int_equal(cp.segment_id, in.segment_id);
	assert_int_equal(cp.position, in.position);
	assert_int_equal(cp.index, in.index);
	assert_int_equal(cp.term, in.term);
	assert_true(cp.ingress_seq == in.ingress_seq);
	meta *r = open_reader(f);
	assert_int_equal(meta_checkpoint_get(r, &cp), SK_OK);
	assert_int_equal(cp.index, in.index);
	uint64_t applied;
	assert_int_equal(meta_applied_index(r, &applied), SK_OK);
	assert_int_equal(applied, 1000500);
	meta_close(r);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_readonly_open_of_missing_db_is_not_found),
		T(test_meta_readonly_connection_refuses_writes),
		T(test_meta_rejects_bad_names_and_partition_counts),
		T(test_meta_rejects_bad_idempotency_keys),
		T(test_meta_rejects_conflicting_topic_and_unknown_partition),
		T(test_meta_applied_index_never_moves_back),
		T(test_meta_transaction_calls_out_of_order_are_rejected),
		T(test_meta_topic_created_is_idempotent),
		T(test_meta_topics_list_is_ordered_by_name_and_capped),
		T(test_meta_offset_commit_is_idempotent_and_never_moves_back_for_old_index),
		T(test_meta_log_start_moves_forward_only_and_is_idempotent),
		T(test_meta_retention_is_idempotent_per_index),
		T(test_meta_applied_index_moves_only_on_commit),
		T(test_meta_rolled_back_transaction_leaves_nothing),
		T(test_meta_readonly_connection_sees_committed_state_only),
		T(test_meta_readonly_open_works_after_writer_closed),
		T(test_meta_idempotency_window_lookup_and_prune),
		T(test_meta_checkpoint_round_trips_across_reopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
