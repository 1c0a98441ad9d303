/* INI validation: every bad input is refused with file, line, key, value and
 * what is allowed; the shipped etc/skiff.ini loads as documented. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"

static char tmp_dir[] = "/tmp/skiff-test-config-XXXXXX";
static char ini_path[512];
static char err[1024];
static sk_config cfg;

static sk_err load_text(const char *text)
{
	FILE *f = fopen(ini_path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	err[0] = 0;
	return cfg_load(ini_path, &cfg, err, sizeof(err));
}

/* Refused with SK_ECONFIG, and the message names the line and every fragment given. */
static void assert_refused(const char *text, int line, const char *frag1, const char *frag2)
{
	assert_int_equal(load_text(text), SK_ECONFIG);
	char where[600];
	snprintf(where, sizeof(where), "%s:%d:", ini_path, line);
	if (strstr(err, where) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", where, err);
	if (frag1 && strstr(err, frag1) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", frag1, err);
	if (frag2 && strstr(err, frag2) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", frag2, err);
}

static void test_config_refuses_unknown_section(void **state)
{
	assert_refused("[node]\nid = 2\n[bogus]\nx = 1\n", 4, "[bogus]", "unknown section");
}

static void test_config_refuses_unknown_key(void **state)
{
	assert_refused("[http]\nlisten = 127.0.0.1:1\nlisen = 1\n", 3, "lisen", "unknown key");
}

static void test_config_refuses_unknown_worker_section(void **state)
{
	assert_refused("[worker.printer]\nrestart = permanent\n", 2, "worker.printer", "writer, raft");
}

static void test_config_refuses_non_integer(void **state)
{
	assert_refused("[http]\nbody_bytes_max = 12x\n", 2, "\"12x\"", "allowed 1024..67108864");
	assert_refused("[http]\nbody_bytes_max = -5\n", 2, "\"-5\"", "not an integer");
	assert_refused("[http]\nbody_bytes_max =\n", 2, "body_bytes_max", "not an integer");
}

static void test_config_refuses_out_of_range(void **state)
{
	assert_refused("[supervisor]\nintensity = 0\n", 2, "intensity", "allowed 1..1000");
	assert_refused("[node]\nid = 1000001\n", 2, "\"1000001\"", "out of range");
	assert_refused("[http]\nbody_bytes_max = 99999999999999999999999\n", 2, "body_bytes_max",
		       "not an integer");
}

static void test_config_refuses_bad_enum_and_bool(void **state)
{
	assert_refused("[supervisor]\nstrategy = one_for_some\n", 2, "one_for_some",
		       "one_for_one | rest_for_one | one_for_all");
	assert_refused("[worker.http]\nrestart = sometimes\n", 2, "sometimes", "permanent");
	assert_refused("[http]\nallow_anonymous = yes\n", 2, "\"yes\"", "true | false");
	assert_refused("[http]\ndefault_ack = all\n", 2, "\"all\"", "none | local");
}

static void test_config_refuses_bad_listen_and_tokens(void **state)
{
	assert_refused("[http]\nlisten = 127.0.0.1\n", 2, "listen", "HOST:PORT");
	assert_refused("[http]\nlisten = 127.0.0.1:70000\n", 2, "70000", "1..65535");
	assert_refused("[http]\ntokens = short\n", 2, "tokens", "16..255");
}

static void test_config_refuses_ring_bytes_not_power_of_two(void **state)
{
	assert_refused("[storage]\nring_bytes = 100000\n", 2, "ring_bytes", "power of two");
}

static void test_config_refuses_key_given_twice(void **state)
{
	assert_refused("[node]\nid = 1\nid = 2\n", 3, "id", "given twice");
	/* the same key in two worker sections is fine */
	assert_int_equal(load_text("[worker.http]\nshutdown_ms = 20\n[worker.raft]\nshutdown_ms = 30\n"),
			 SK_OK);
}

static void test_config_refuses_ring_too_small_for_body(void **state)
{
	assert_int_equal(load_text("[http]\nbody_bytes_max = 1048576\n[storage]\nring_bytes = 1048576\n"),
			 SK_ECONFIG);
	assert_non_null(strstr(err, "ring_bytes = 1048576 is too small"));
	assert_int_equal(load_text("[http]\nbody_bytes_max = 65536\n[storage]\nring_bytes = 524288\n"),
			 SK_OK);
}

static void test_config_refuses_segment_bytes_not_page_multiple(void **state)
{
	assert_int_equal(load_text("[storage]\nsegment_bytes = 1048577\n"), SK_ECONFIG);
	assert_non_null(strstr(err, "multiple of 4096"));
}

static void test_config_refuses_malformed_line(void **state)
{
	assert_refused("[node]\nid = 1\nthis line has no equals sign\n", 3, "malformed", NULL);
}

static void test_config_refuses_backoff_min_above_max(void **state)
{
	assert_int_equal(load_text("[supervisor]\nbackoff_min_ms = 500\nbackoff_max_ms = 100\n"),
			 SK_ECONFIG);
	assert_non_null(strstr(err, "backoff_min_ms"));
}

static void test_config_refuses_missing_file(void **state)
{
	assert_int_equal(cfg_load("/nonexistent/skiff.ini", &cfg, err, sizeof(err)), SK_EIO);
	assert_non_null(strstr(err, "/nonexistent/skiff.ini"));
}

static void test_config_resolves_relative_paths_against_ini_dir(void **state)
{
	assert_int_equal(load_text("[node]\ndata_dir = d\nrun_dir = /abs/run\n"), SK_OK);
	char want[600];
	snprintf(want, sizeof(want), "%s/d", tmp_dir);
	assert_string_equal(cfg.data_dir, want);
	assert_string_equal(cfg.run_dir, "/abs/run");
}

static void test_config_parses_every_type(void **state)
{
	const char *text = "[node]\nid = 7\n[http]\nlisten = 0.0.0.0:8081\n"
			   "tokens = aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbbbbbb\nallow_anonymous = true\n"
			   "default_ack = none\nbody_bytes_max = 65536\n[storage]\nring_bytes = 1048576\n"
			   "[supervisor]\nstrategy = rest_for_one\n"
			   "[worker.replay]\nrestart = temporary\nshutdown_ms = 250\n";
	assert_int_equal(load_text(text), SK_OK);
	assert_int_equal(cfg.node_id, 7);
	assert_string_equal(cfg.http_host, "0.0.0.0");
	assert_int_equal(cfg.http_port, 8081);
	assert_int_equal(cfg.http_token_count, 2);
	assert_string_equal(cfg.http_tokens[1], "bbbbbbbbbbbbbbbbbbbb");
	assert_true(cfg.http_allow_anonymous);
	assert_int_equal(cfg.http_default_ack, SK_ACK_NONE);
	assert_int_equal(cfg.ring_bytes, 1048576);
	assert_int_equal(cfg.strategy, SK_REST_FOR_ONE);
	assert_int_equal(cfg.workers[SK_W_REPLAY].restart, SK_RESTART_TEMPORARY);
	assert_int_equal(cfg.workers[SK_W_REPLAY].shutdown_ms, 250);
	assert_int_equal(cfg.workers[SK_W_WRITER].shutdown_ms, 5000);
}

static void test_config_shipped_ini_matches_defaults(void **state)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/etc/skiff.ini", SKIFF_SOURCE_DIR);
	assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), SK_OK);
	sk_config def;
	cfg_defaults(&def);
	/* Everything but the resolved paths must equal the compiled-in defaults. */
	snprintf(def.path, sizeof(def.path), "%s", cfg.path);
	snprintf(def.data_dir, sizeof(def.data_dir), "%s", cfg.data_dir);
	snprintf(def.run_dir, sizeof(def.run_dir), "%s", cfg.run_dir);
	assert_memory_equal(&def, &cfg, sizeof(cfg));
	assert_non_null(strstr(cfg.data_dir, "/etc/../var/data"));
}

static int setup(void **state)
{
	if (!mkdtemp(tmp_dir))
		return -1;
	snprintf(ini_path, sizeof(ini_path), "%s/skiff.ini", tmp_dir);
	return 0;
}

static int teardown(void **state)
{
	unlink(ini_path);
	rmdir(tmp_dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_refuses_unknown_section),
		cmocka_unit_test(test_config_refuses_unknown_key),
		cmocka_unit_test(test_config_refuses_unknown_worker_section),
		cmocka_unit_test(test_config_refuses_non_integer),
		cmocka_unit_test(test_config_refuses_out_of_range),
		cmocka_unit_test(test_config_refuses_bad_enum_and_bool),
		cmocka_unit_test(test_config_refuses_bad_listen_and_tokens),
		cmocka_unit_test(test_config_refuses_ring_bytes_not_power_of_two),
		cmocka_unit_test(test_config_refuses_key_given_twice),
		cmocka_unit_test(test_config_refuses_ring_too_small_for_body),
		cmocka_unit_test(test_config_refuses_segment_bytes_not_page_multiple),
		cmocka_unit_test(test_config_refuses_malformed_line),
		cmocka_unit_test(test_config_refuses_backoff_min_above_max),
		cmocka_unit_test(test_config_refuses_missing_file),
		cmocka_unit_test(test_config_resolves_relative_paths_against_ini_dir),
		cmocka_unit_test(test_config_parses_every_type),
		cmocka_unit_test(test_config_shipped_ini_matches_defaults),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
