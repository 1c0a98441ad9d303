/* The restart policy, driven by a fake clock and a scripted random source:
 * each strategy, restart types, intensity within the period, backoff with its
 * jitter bounds and its reset after stable_after_ms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "supervisor/sup_policy.h"
#include "workers/worker.h"

#define W 0 /* writer */
#define R 1 /* raft */
#define P 2 /* replay */
#define H 3 /* http */
#define BIT(i) (1u << (i))

static struct sup_policy pol;
static uint64_t rand_value; /* what the fake random source returns */

static uint64_t fake_rand(void *ctx)
{
	(void)ctx;
	return rand_value;
}

static void setup_policy(enum sk_strategy strategy, uint32_t intensity, uint32_t period_ms)
{
	struct sup_policy_cfg cfg = {
		.strategy = strategy,
		.intensity = intensity,
		.period_ms = period_ms,
		.backoff_min_ms = 100,
		.backoff_max_ms = 1000,
		.stable_after_ms = 5000,
		.child_count = 4,
	};
	sup_policy_init(&pol, &cfg);
	rand_value = 0;
}

/* An abnormal exit of child at now after uptime_ms. */
static struct sup_decision crash(uint32_t child, uint64_t now, uint64_t uptime_ms)
{
	struct sup_decision d;
	sup_policy_decide(&pol, child, SUP_EXIT_ABNORMAL, now, uptime_ms, fake_rand, NULL, &d);
	return d;
}

static void test_policy_classifies_exit_codes(void **state)
{
	assert_int_equal(sup_exit_classify(0, 0), SUP_EXIT_NORMAL);
	assert_int_equal(sup_exit_classify(SK_EXIT_CONFIG, 0), SUP_EXIT_PERMANENT);
	assert_int_equal(sup_exit_classify(SK_EXIT_DATAERR, 0), SUP_EXIT_PERMANENT);
	assert_int_equal(sup_exit_classify(SK_EXIT_SOFTWARE, 0), SUP_EXIT_ABNORMAL);
	assert_int_equal(sup_exit_classify(SK_EXIT_IOERR, 0), SUP_EXIT_ABNORMAL);
	assert_int_equal(sup_exit_classify(-1, 9), SUP_EXIT_ABNORMAL);
	assert_int_equal(sup_exit_classify(-1, 15), SUP_EXIT_ABNORMAL);
}

static void test_policy_permanent_exit_fails_without_counting(void **state)
{
	setup_policy(SK_ONE_FOR_ONE, 1, 10000);
	struct sup_decision d;
	for (int i = 0; i < 5; i++) {
		sup_policy_decide(&pol, W, SUP_EXIT_PERMANENT, 1000 + i, 10, fake_rand, NULL, &d);
		assert_int_equal(d.action, SUP_ACT_FAIL);
		assert_int_equal(d.restart_mask, 0);
		assert_int_equal(d.stop_mask, 0);
	}
	assert_int_equal(sup_policy_restarts_in_period(&pol, 1010), 0);
}

static void test_policy_one_for_one_restarts_only_the_child(void **state)
{
	setup_policy(SK_ONE_FOR_ONE, 5, 10000);
	struct sup_decision d = crash(R, 1000, 10);
	assert_int_equal(d.action, SUP_ACT_RESTART);
	assert_int_equal(d.restart_mask, BIT(R));
	assert_int_equal(d.stop_mask, 0);
	assert_int_equal(d.restarts_in_period, 1);
}

static void test_policy_rest_for_one_takes_the_later_children(void **state)
{
	setup_policy(SK_REST_FOR_ONE, 5, 10000);
	struct sup_decision d = crash(R, 1000, 10);
	assert_int_equal(d.action, SUP_ACT_RESTART);
	assert_int_equal(d.stop_mask, BIT(P) | BIT(H));
	assert_int_equal(d.restart_mask, BIT(R) | BIT(P) | BIT(H));
	d = crash(H, 2000, 10);
	assert_int_equal(d.stop_mask, 0);
	assert_int_equal(d.restart_mask, BIT(H));
	d = crash(W, 3000, 10);
	assert_int_equal(d.stop_mask, BIT(R) | BIT(P) | BIT(H));
	assert_int_equal(d.restart_mask, 0xf);
}

static void test_policy_one_for_all_takes_every_child(void **state)
{
	setup_policy(SK_ONE_FOR_ALL, 5, 10000);
	struct sup_decision d = crash(P, 1000, 10);
	assert_int_equal(d.action, SUP_ACT_RESTART);
	assert_int_equal(d.stop_mask, BIT(W) | BIT(R) | BIT(H));
	assert_int_equal(d.restart_mask, 0xf);
	assert_int_equal(d.restarts_in_period, 1); /* one crash counts once */
}

static void test_policy_strategy_does_not_restart_temporary_siblings(void **state)
{
	setup_policy(SK_ONE_FOR_ALL, 5, 10000);
	pol.cfg.restart[H] = SK_RESTART_TEMPORARY;
	struct sup_decision d = crash(W, 1000, 10);
	assert_int_equal(d.stop_mask, BIT(R) | BIT(P) | BIT(H));
	assert_int_equal(d.restart_mask, BIT(W) | BIT(R) | BIT(P));
}

static void test_policy_restart_types(void **state)
{
	setup_policy(SK_ONE_FOR_ONE, 5, 10000);
	pol.cfg.restart[W] = SK_RESTART_PERMANENT;
	pol.cfg.restart[R] = SK_RESTART_TRANSIENT;
	pol.cfg.restart[P] = SK_RESTART_TEMPORARY;
	struct sup_decision d;
	sup_policy_decide(&pol, W, SUP_EXIT_NORMAL, 1000, 10, fake_rand, NULL, &d);
	assert_int_equal(d.action, SUP_ACT_RESTART); /* permanent: even after exit 0 */
	sup_policy_decide(&pol, R, SUP_EXIT_NORMAL, 1001, 10, fake_rand, NULL, &d);
	assert_int_equal(d.action, SUP_ACT_NONE); /* transient: exit 0 is the end */
	sup_policy_decide(&pol, R, SUP_EXIT_ABNORMAL, 1002, 10, fake_rand, NULL, &d);
	assert_int_equal(d.action, SUP_ACT_RESTART);
	sup_policy_decide(&pol, P, SUP_EXIT_ABNORMAL, 1003, 10, fake_rand, NULL, &d);
	assert_int_equal(d.action, SUP_ACT_NONE); /* temporary: never */
	assert_int_equal(sup_policy_restarts_in_period(&pol, 1004), 2);
}

static void test_policy_escalates_past_intensity(void **state)
{
	setup_policy(SK_ONE_FOR_ONE, 3, 10000);
	for (int i = 0; i < 3; i++)
		assert_int_equal(crash(i % 4, 1000 + i * 100, 10).action, SUP_ACT_RESTART);
	struct sup_decision d = crash(H, 1400, 10);
	assert_int_equal(d.action, SUP_ACT_ESCALATE);
	assert_int_equal(d.restarts_in_period, 4);
	/* Asked again after escalating, it still escalates and stays bounded. */
	for (int i = 0; i < 3000; i++)
		assert_int_equal(crash(W, 1500, 10).action, SUP_ACT_ESCALATE);
}

static void test_policy_forgets_restarts_older_than_the_period(void **state)
{
	setup_policy(SK_ONE_FOR_ONE, 2, 1000);
	assert_int_equal(crash(W, 10000, 10).action, SUP_ACT_RESTART);
	assert_int_equal(crash(W, 10500, 10).action, SUP_ACT_RESTART);
	assert_int_equal(sup_policy_restarts_in_period(&pol, 10999), 2);
	assert_int_equal(sup_policy_restarts_in_period(&pol, 11000), 1); /* the first left */
	assert_int_equal(crash(W, 11000, 10).action, SUP_ACT_RESTART);
	assert_int_equal(crash(W, 11001, 10).action, SUP_ACT_ESCALATE);
}

static void test_policy_a_steady_trickle_never_escalates(void **state)
{
	setup_policy(SK_ONE_FOR_ONE, 1, 1000);
	for (uint64_t t = 1000; t < 100000; t += 1000)
		assert_int_equal(crash(R, t, 10).action, SUP_ACT_RESTART);
}

static void test_policy_backoff_doubles_up_to_max(void **state)
{
	setup_policy(SK_ONE_FOR_ONE, 100, 10000);
	/* rand 0 picks the low end of [delay/2, delay]; rand -1 % span the high end. */
	rand_value = UINT64_MAX;
	const uint32_t want_max[] = {100, 200, 400, 800, 1000, 1000};
	for (int i = 0; i < 6; i++) {
		rand_value = 0;
		assert_int_equal(sup_policy_backoff_ms(&pol, (uint32_t)i, fake_rand, NULL),
				 want_max[i] / 2);
	}
	for (uint32_t i = 0; i < 6; i++) {
		uint32_t d = crash(W, 1000 + i, 10).delay_ms;
		assert_in_range(d, want_max[i] / 2, want_max[i]);
	}
	assert_int_equal(sup_policy_backoff_ms(&pol, 4000000000u, fake_rand, NULL), 500);
}

static void test_policy_backoff_jitter_stays_in_bounds(void **state)
{
	setup_policy(SK_ONE_FOR_ONE, 100, 10000);
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 10000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		rand_value = x;
		uint32_t n = (uint32_t)(i % 8);
		uint32_t d = sup_policy_backoff_ms(&pol, n, fake_rand, NULL);
		uint32_t full = 100u << n > 1000 ? 1000 : 100u << n;
		assert_in_range(d, full / 2, full);
	}
	rand_value = 50; /* span 51 at n=0: 50 % 51 = 50 -> the top */
	assert_int_equal(sup_policy_backoff_ms(&pol, 0, fake_rand, NULL), 100);
}

static void test_policy_backoff_resets_after_stable_run(void **state)
{
	setup_policy(SK_ONE_FOR_ONE, 100, 10000);
	rand_value = 0;
	assert_int_equal(crash(W, 1000, 10).delay_ms, 50);
	assert_int_equal(crash(W, 2000, 10).delay_ms, 100);
	assert_int_equal(crash(W, 3000, 10).delay_ms, 200);
	/* Ran stable_after_ms: the next restart is the first of a new series. */
	assert_int_equal(crash(W, 9000, 5000).delay_ms, 50);
	assert_int_equal(crash(W, 9100, 10).delay_ms, 100);
	/* Each child has its own series. */
	assert_int_equal(crash(R, 9200, 10).delay_ms, 50);
}

static void test_policy_zero_backoff_min_means_no_delay(void **state)
{
	setup_policy(SK_ONE_FOR_ONE, 100, 10000);
	pol.cfg.backoff_min_ms = 0;
	rand_value = 12345;
	for (int i = 0; i < 10; i++)
		assert_int_equal(crash(W, 1000 + i, 10).delay_ms, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_classifies_exit_codes),
		cmocka_unit_test(test_policy_permanent_exit_fails_without_counting),
		cmocka_unit_test(test_policy_one_for_one_restarts_only_the_child),
		cmocka_unit_test(test_policy_rest_for_one_takes_the_later_children),
		cmocka_unit_test(test_policy_one_for_all_takes_every_child),
		cmocka_unit_test(test_policy_strategy_does_not_restart_temporary_siblings),
		cmocka_unit_test(test_policy_restart_types),
		cmocka_unit_test(test_policy_escalates_past_intensity),
		cmocka_unit_test(test_policy_forgets_restarts_older_than_the_period),
		cmocka_unit_test(test_policy_a_steady_trickle_never_escalates),
		cmocka_unit_test(test_policy_backoff_doubles_up_to_max),
		cmocka_unit_test(test_policy_backoff_jitter_stays_in_bounds),
		cmocka_unit_test(test_policy_backoff_resets_after_stable_run),
		cmocka_unit_test(test_policy_zero_backoff_min_means_no_delay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
