/* Exit history: survives a close and reopen, newest first, filtered by worker,
 * bounded to rows_max, refuses a schema from a newer skiffd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/config.h"
#include "supervisor/sup_history.h"

static char dir[64];
static char path[256];
static char err[512];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/skiff-test-history-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, SUP_HISTORY_FILE);
	return 0;
}

static int teardown(void **state)
{
	char p[300];
	const char *suffix[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

static struct sup_exit exit_of(uint32_t worker, int32_t pid)
{
	struct sup_exit e = {.worker = worker, .pid = pid, .reason = SUP_REASON_SIGNAL, .code = -1,
			     .signal = 9, .core = pid % 2 == 0, .at_ms = 1000 + (uint64_t)pid,
			     .uptime_ms = 77, .restarts_auto = (uint64_t)pid, .restarts_manual = 1};
	return e;
}

static void test_history_survives_reopen_newest_first(void **state)
{
	sup_history *h;
	assert_int_equal(sup_history_open(path, 100, &h, err, sizeof(err)), SK_OK);
	for (int32_t pid = 1; pid <= 5; pid++) {
		struct sup_exit e = exit_of((uint32_t)pid % 2, pid);
		if (pid == 5) {
			e.reason = SUP_REASON_EXIT;
			e.code = 65;
			e.signal = 0;
			snprintf(e.detail, sizeof(e.detail), "bad CRC at byte 4096");
		}
		assert_int_equal(sup_history_add(h, &e), SK_OK);
	}
	sup_history_close(h);

	assert_int_equal(sup_history_open(path, 100, &h, err, sizeof(err)), SK_OK);
	struct sup_exit out[10];
	uint32_t n;
	assert_int_equal(sup_history_list(h, -1, 10, out, &n), SK_OK);
	assert_int_equal(n, 5);
	assert_int_equal(out[0].pid, 5);
	assert_int_equal(out[0].code, 65);
	assert_int_equal(out[0].reason, SUP_REASON_EXIT);
	assert_string_equal(out[0].detail, "bad CRC at byte 4096");
	assert_int_equal(out[4].pid, 1);
	assert_int_equal(out[1].signal, 9);
	assert_true(out[1].core);
	assert_int_equal(out[1].restarts_auto, 4);
	assert_int_equal(out[1].restarts_manual, 1);
	assert_int_equal(out[1].uptime_ms, 77);
	assert_int_equal(out[1].at_ms, 1004);
	/* One worker only (raft = odd pids), and a limit. */
	assert_int_equal(sup_history_list(h, SK_W_RAFT, 10, out, &n), SK_OK);
	assert_int_equal(n, 3);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(out[i].worker, SK_W_RAFT);
	assert_int_equal(sup_history_list(h, -1, 2, out, &n), SK_OK);
	assert_int_equal(n, 2);
	sup_history_close(h);
}

static void test_history_is_bounded(void **state)
{
	sup_history *h;
	assert_int_equal(sup_history_open(path, 10, &h, err, sizeof(err)), SK_OK);
	for (int32_t pid = 100; pid < 125; pid++) {
		struct sup_exit e = exit_of(SK_W_HTTP, pid);
		assert_int_equal(sup_history_add(h, &e), SK_OK);
	}
	uint64_t count;
	assert_int_equal(sup_history_count(h, &count), SK_OK);
	assert_int_equal(count, 10);
	struct sup_exit out[20];
	uint32_t n;
	assert_int_equal(sup_history_list(h, -1, 20, out, &n), SK_OK);
	assert_int_equal(n, 10);
	assert_int_equal(out[0].pid, 124);
	assert_int_equal(out[9].pid, 115);
	sup_history_close(h);
}

static void test_history_skips_rows_it_does_not_know(void **state)
{
	sup_history *h;
	assert_int_equal(sup_history_open(path, 10, &h, err, sizeof(err)), SK_OK);
	struct sup_exit e = exit_of(SK_W_WRITER, 1);
	assert_int_equal(sup_history_add(h, &e), SK_OK);
	sup_history_close(h);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "INSERT INTO exits(at_ms,worker,pid,reason,code,signal,core,"
				      "uptime_ms,restarts_auto,restarts_manual,detail) VALUES"
				      "(1,9,2,'exit',0,0,0,0,0,0,''),(1,0,3,'melted',0,0,0,0,0,0,'')",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(sup_history_open(path, 10, &h, err, sizeof(err)), SK_OK);
	struct sup_exit out[10];
	uint32_t n;
	assert_int_equal(sup_history_list(h, -1, 10, out, &n), SK_OK);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].pid, 1);
	sup_history_close(h);
}

static void test_history_refuses_a_newer_schema(void **state)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	sup_history *h = NULL;
	assert_int_equal(sup_history_open(path, 10, &h, err, sizeof(err)), SK_EVERSION);
	assert_non_null(strstr(err, "newer"));
	assert_int_equal(sup_history_open(path, 0, &h, err, sizeof(err)), SK_EINVAL);
}

static void test_history_reports_an_unopenable_file(void **state)
{
	sup_history *h = NULL;
	assert_int_equal(sup_history_open("/nonexistent-dir/x/supervisor.db", 10, &h, err,
					  sizeof(err)),
			 SK_EIO);
	assert_non_null(strstr(err, "/nonexistent-dir/x/supervisor.db"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_history_survives_reopen_newest_first, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_history_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history_skips_rows_it_does_not_know, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_history_refuses_a_newer_schema, setup,
						teardown),
		cmocka_unit_test(test_history_reports_an_unopenable_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
