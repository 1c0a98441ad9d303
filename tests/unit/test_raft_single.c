#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "workers/raft/raft_single.h"

static void test_raft_single_commits_what_is_durable_in_term_one(void **state)
{
	struct raft_single s = {0};
	assert_true(raft_single_step(&s, 7, 0, 0)); /* term and leader appear at once */
	assert_int_equal(s.commit_index, 0);
	assert_int_equal(s.term, 1);
	assert_int_equal(s.leader_id, 7);
	assert_true(raft_single_step(&s, 7, 5, 1));
	assert_int_equal(s.commit_index, 5);
	assert_false(raft_single_step(&s, 7, 5, 1)); /* nothing new: no wake-up */
}

static void test_raft_single_never_moves_the_commit_index_backwards(void **state)
{
	struct raft_single s = {.commit_index = 10, .term = 1, .leader_id = 1};
	assert_false(raft_single_step(&s, 1, 4, 1));
	assert_int_equal(s.commit_index, 10);
	assert_true(raft_single_step(&s, 1, 11, 1));
	assert_int_equal(s.commit_index, 11);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raft_single_never_moves_the_commit_index_backwards),
		cmocka_unit_test(test_raft_single_commits_what_is_durable_in_term_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
