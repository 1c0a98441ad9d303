/* Status encoding: exactly the names of issue 2, nulls where nothing applies,
 * bounded output, and the skiffctl side (all-running check, table). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"
#include "supervisor/sup_status.h"

static struct sup_status sample(void)
{
	struct sup_status st;
	memset(&st, 0, sizeof(st));
	st.pid = 4242;
	st.uptime_ms = 61000;
	st.strategy = SK_REST_FOR_ONE;
	st.intensity = 5;
	st.period_ms = 10000;
	st.restarts_in_period = 2;
	st.worker_count = SK_WORKER_COUNT;
	for (uint32_t i = 0; i < SK_WORKER_COUNT; i++) {
		struct sup_status_worker *w = &st.workers[i];
		w->id = i;
		w->state = SUP_STATE_RUNNING;
		w->pid = (int32_t)(5000 + i);
		w->ready = true;
		w->uptime_ms = 1000 * (i + 1);
		w->next_restart_ms = -1;
	}
	/* raft: killed by SIGKILL, now waiting out its backoff */
	struct sup_status_worker *r = &st.workers[SK_W_RAFT];
	r->state = SUP_STATE_BACKOFF;
	r->pid = 0;
	r->ready = false;
	r->uptime_ms = 0;
	r->restarts_auto = 3;
	r->restarts_manual = 1;
	r->next_restart_ms = 120;
	r->has_exit = true;
	r->last_exit = (struct sup_exit){.worker = SK_W_RAFT, .pid = 5001, .reason = SUP_REASON_HANG,
					 .code = -1, .signal = 9, .core = false,
					 .at_ms = 1763776800123ull};
	/* writer: failed permanently with a reason */
	struct sup_status_worker *wr = &st.workers[SK_W_WRITER];
	wr->state = SUP_STATE_FAILED;
	wr->pid = 0;
	wr->ready = false;
	wr->has_exit = true;
	wr->last_exit = (struct sup_exit){.worker = SK_W_WRITER, .pid = 5000,
					  .reason = SUP_REASON_EXIT, .code = 65, .at_ms = 1};
	snprintf(wr->last_exit.detail, sizeof(wr->last_exit.detail),
		 "journal/00000000000000000001.seg: bad CRC at byte 4096");
	return st;
}

static void assert_keys(const json_t *obj, const char *const *keys, size_t n)
{
	assert_true(json_is_object(obj));
	assert_int_equal(json_object_size(obj), n);
	for (size_t i = 0; i < n; i++)
		if (!json_object_get(obj, keys[i]))
			fail_msg("missing key \"%s\"", keys[i]);
}

static void test_status_json_has_exactly_the_issue_names(void **state)
{
	struct sup_status st = sample();
	json_t *root = sup_status_to_json(&st);
	static const char *const top[] = {"supervisor", "workers"};
	static const char *const sup[] = {"pid", "uptime_ms", "strategy", "intensity", "period_ms",
					  "restarts_in_period"};
	static const char *const worker[] = {"name",	  "state",    "pid",	   "ready",
					     "uptime_ms", "restarts", "last_exit", "next_restart_ms"};
	static const char *const restarts[] = {"auto", "manual"};
	static const char *const last_exit[] = {"reason", "code", "signal", "core", "at", "detail"};
	assert_keys(root, top, 2);
	assert_keys(json_object_get(root, "supervisor"), sup, 6);
	json_t *workers = json_object_get(root, "workers");
	assert_int_equal(json_array_size(workers), SK_WORKER_COUNT);
	for (size_t i = 0; i < SK_WORKER_COUNT; i++) {
		json_t *w = json_array_get(workers, i);
		assert_keys(w, worker, 8);
		assert_keys(json_object_get(w, "restarts"), restarts, 2);
		json_t *e = json_object_get(w, "last_exit");
		if (!json_is_null(e))
			assert_keys(e, last_exit, 6);
	}
	json_decref(root);
}

static void test_status_json_values(void **state)
{
	struct sup_status st = sample();
	char buf[SUP_STATUS_JSON_BYTES_MAX];
	size_t len;
	assert_int_equal(sup_status_encode(&st, buf, sizeof(buf), &len), SK_OK);
	assert_int_equal(strlen(buf), len);
	json_t *root = json_loads(buf, 0, NULL);
	assert_non_null(root);
	json_t *sup = json_object_get(root, "supervisor");
	assert_int_equal(json_integer_value(json_object_get(sup, "pid")), 4242);
	assert_string_equal(json_string_value(json_object_get(sup, "strategy")), "rest_for_one");
	assert_int_equal(json_integer_value(json_object_get(sup, "restarts_in_period")), 2);
	json_t *workers = json_object_get(root, "workers");
	const char *names[] = {"writer", "raft", "replay", "http"};
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(
			json_string_value(json_object_get(json_array_get(workers, i), "name")), names[i]);

	json_t *raft = json_array_get(workers, SK_W_RAFT);
	assert_string_equal(json_string_value(json_object_get(raft, "state")), "backoff");
	assert_true(json_is_null(json_object_get(raft, "pid")));
	assert_true(json_is_false(json_object_get(raft, "ready")));
	assert_int_equal(json_integer_value(json_object_get(raft, "next_restart_ms")), 120);
	json_t *r = json_object_get(raft, "restarts");
	assert_int_equal(json_integer_value(json_object_get(r, "auto")), 3);
	assert_int_equal(json_integer_value(json_object_get(r, "manual")), 1);
	json_t *e = json_object_get(raft, "last_exit");
	assert_string_equal(json_string_value(json_object_get(e, "reason")), "hang");
	assert_true(json_is_null(json_object_get(e, "code")));
	assert_int_equal(json_integer_value(json_object_get(e, "signal")), 9);
	assert_true(json_is_false(json_object_get(e, "core")));
	assert_int_equal(json_integer_value(json_object_get(e, "at")), 1763776800123ll);
	assert_true(json_is_null(json_object_get(e, "detail")));

	json_t *writer = json_array_get(workers, SK_W_WRITER);
	assert_string_equal(json_string_value(json_object_get(writer, "state")), "failed");
	e = json_object_get(writer, "last_exit");
	assert_int_equal(json_integer_value(json_object_get(e, "code")), 65);
	assert_true(json_is_null(json_object_get(e, "signal")));
	assert_non_null(strstr(json_string_value(json_object_get(e, "detail")), "byte 4096"));

	json_t *http = json_array_get(workers, SK_W_HTTP);
	assert_true(json_is_null(json_object_get(http, "last_exit")));
	assert_true(json_is_null(json_object_get(http, "next_restart_ms")));
	assert_int_equal(json_integer_value(json_object_get(http, "pid")), 5003);
	json_decref(root);
}

static void test_status_encode_refuses_a_small_buffer(void **state)
{
	struct sup_status st = sample();
	char buf[64];
	size_t len = 0;
	assert_int_equal(sup_status_encode(&st, buf, sizeof(buf), &len), SK_EFULL);
}

static void test_status_all_running(void **state)
{
	struct sup_status st = sample();
	json_t *root = sup_status_to_json(&st);
	assert_false(sup_status_all_running(root));
	json_decref(root);
	for (int i = 0; i < SK_WORKER_COUNT; i++) {
		st.workers[i].state = SUP_STATE_RUNNING;
		st.workers[i].ready = true;
	}
	root = sup_status_to_json(&st);
	assert_true(sup_status_all_running(root));
	json_decref(root);
	st.workers[SK_W_HTTP].ready = false; /* running but not ready yet: not all running */
	root = sup_status_to_json(&st);
	assert_false(sup_status_all_running(root));
	json_decref(root);
	json_t *bogus = json_pack("{s:[]}", "workers");
	assert_false(sup_status_all_running(bogus));
	json_decref(bogus);
}

static void test_status_table_names_every_worker(void **state)
{
	struct sup_status st = sample();
	json_t *root = sup_status_to_json(&st);
	char *text = NULL;
	size_t text_len = 0;
	FILE *f = open_memstream(&text, &text_len);
	assert_int_equal(sup_status_print_table(root, f), SK_OK);
	fclose(f);
	assert_non_null(strstr(text, "strategy rest_for_one"));
	assert_non_null(strstr(text, "restarts 2 of 5"));
	assert_non_null(strstr(text, "writer   failed"));
	assert_non_null(strstr(text, "byte 4096")); /* why it failed */
	assert_non_null(strstr(text, "raft     backoff"));
	assert_non_null(strstr(text, "hang SIGKILL"));
	assert_non_null(strstr(text, "3/1"));
	assert_non_null(strstr(text, "in 120ms"));
	assert_non_null(strstr(text, "http     running   5003"));
	free(text);
	json_decref(root);
	json_t *bogus = json_pack("{s:i}", "supervisor", 1);
	f = open_memstream(&text, &text_len);
	assert_int_equal(sup_status_print_table(bogus, f), SK_EINVAL);
	fclose(f);
	free(text);
	json_decref(bogus);
}

static void test_status_names_round_trip(void **state)
{
	for (int r = 0; r < SUP_REASON_COUNT; r++) {
		enum sup_reason back;
		assert_true(sup_reason_parse(sup_reason_name((enum sup_reason)r), &back));
		assert_int_equal(back, r);
	}
	enum sup_reason x;
	assert_false(sup_reason_parse("crashed", &x));
	assert_string_equal(sup_reason_name(SUP_REASON_STRATEGY), "killed-by-strategy");
	assert_string_equal(sup_reason_name(SUP_REASON_READY_TIMEOUT), "ready-timeout");
	assert_string_equal(sup_state_name(SUP_STATE_STOPPING), "stopping");
	char b[32];
	assert_string_equal(sup_fmt_duration(850, b, sizeof(b)), "850ms");
	assert_string_equal(sup_fmt_duration(303000, b, sizeof(b)), "5m03s");
	assert_string_equal(sup_fmt_duration(3720000, b, sizeof(b)), "1h02m");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_json_has_exactly_the_issue_names),
		cmocka_unit_test(test_status_json_values),
		cmocka_unit_test(test_status_encode_refuses_a_small_buffer),
		cmocka_unit_test(test_status_all_running),
		cmocka_unit_test(test_status_table_names_every_worker),
		cmocka_unit_test(test_status_names_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
