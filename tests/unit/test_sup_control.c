/* Control messages: the "must reject" cases first (version, command, worker,
 * field types and ranges, size), then round trips, then one real round trip
 * over nng between a listener and sup_control_call(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <poll.h>
#include <pthread.h>

#include "common/config.h"
#include "common/sk_limits.h"
#include "supervisor/sup_control.h"

static char err[256];

static sk_err decode(const char *text, struct sup_request *req)
{
	err[0] = 0;
	return sup_request_decode(text, strlen(text), req, err, sizeof(err));
}

static void test_control_rejects_bad_requests(void **state)
{
	struct sup_request req;
	assert_int_equal(decode("", &req), SK_EINVAL);
	assert_int_equal(decode("not json", &req), SK_EINVAL);
	assert_int_equal(decode("[1,2]", &req), SK_EINVAL);
	assert_int_equal(decode("{\"cmd\":\"status\"}", &req), SK_EVERSION);
	assert_int_equal(decode("{\"v\":2,\"cmd\":\"status\"}", &req), SK_EVERSION);
	assert_int_equal(decode("{\"v\":\"1\",\"cmd\":\"status\"}", &req), SK_EVERSION);
	assert_int_equal(decode("{\"v\":1,\"cmd\":\"reboot\"}", &req), SK_EINVAL);
	assert_int_equal(decode("{\"v\":1}", &req), SK_EINVAL);
	assert_int_equal(decode("{\"v\":1,\"cmd\":\"kill\",\"signal\":9}", &req), SK_EINVAL);
	assert_int_equal(decode("{\"v\":1,\"cmd\":\"kill\",\"worker\":\"printer\",\"signal\":9}", &req),
			 SK_EINVAL);
	assert_non_null(strstr(err, "unknown worker"));
	assert_int_equal(decode("{\"v\":1,\"cmd\":\"kill\",\"worker\":\"raft\"}", &req), SK_EINVAL);
	assert_int_equal(decode("{\"v\":1,\"cmd\":\"kill\",\"worker\":\"raft\",\"signal\":0}", &req),
			 SK_EINVAL);
	assert_int_equal(decode("{\"v\":1,\"cmd\":\"kill\",\"worker\":\"raft\",\"signal\":65}", &req),
			 SK_EINVAL);
	assert_int_equal(decode("{\"v\":1,\"cmd\":\"kill\",\"worker\":3,\"signal\":9}", &req), SK_EINVAL);
	assert_int_equal(decode("{\"v\":1,\"cmd\":\"restart\"}", &req), SK_EINVAL);
	assert_int_equal(decode("{\"v\":1,\"cmd\":\"events\",\"limit\":0}", &req), SK_EINVAL);
	assert_int_equal(decode("{\"v\":1,\"cmd\":\"events\",\"limit\":201}", &req), SK_EINVAL);
	assert_int_equal(decode("{\"v\":1,\"cmd\":\"events\",\"limit\":\"5\"}", &req), SK_EINVAL);
	assert_int_equal(decode("{\"v\":1,\"v\":1,\"cmd\":\"status\"}", &req), SK_EINVAL);
	/* Bigger than the bound: refused before parsing. */
	size_t big = SK_CONTROL_MSG_BYTES_MAX + 1;
	char *buf = malloc(big);
	memset(buf, ' ', big);
	assert_int_equal(sup_request_decode(buf, big, &req, err, sizeof(err)), SK_EINVAL);
	free(buf);
}

static void test_control_requests_round_trip(void **state)
{
	const struct sup_request reqs[] = {
		{.cmd = SUP_CMD_STATUS, .worker = -1},
		{.cmd = SUP_CMD_KILL, .worker = SK_W_REPLAY, .signal = 19},
		{.cmd = SUP_CMD_RESTART, .worker = SK_W_HTTP},
		{.cmd = SUP_CMD_STOP, .worker = -1},
		{.cmd = SUP_CMD_EVENTS, .worker = -1, .limit = 7},
		{.cmd = SUP_CMD_EVENTS, .worker = SK_W_WRITER, .limit = 200},
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		char buf[512];
		size_t len;
		struct sup_request back;
		assert_int_equal(sup_request_encode(&reqs[i], buf, sizeof(buf), &len), SK_OK);
		assert_int_equal(sup_request_decode(buf, len, &back, err, sizeof(err)), SK_OK);
		assert_int_equal(back.cmd, reqs[i].cmd);
		assert_int_equal(back.worker, reqs[i].worker);
		assert_int_equal(back.signal, reqs[i].signal);
		assert_int_equal(back.limit, reqs[i].limit);
	}
	char tiny[8];
	size_t len;
	assert_int_equal(sup_request_encode(&reqs[1], tiny, sizeof(tiny), &len), SK_EFULL);
}

static void test_control_replies(void **state)
{
	size_t len;
	json_t *result;
	char *buf = sup_reply_encode(json_pack("{s:i}", "pid", 7), NULL, &len);
	assert_non_null(buf);
	assert_int_equal(sup_reply_decode(buf, len, &result, err, sizeof(err)), SK_OK);
	assert_int_equal(json_integer_value(json_object_get(result, "pid")), 7);
	json_decref(result);
	free(buf);

	buf = sup_reply_encode(NULL, "that worker has no process now", &len);
	assert_int_equal(sup_reply_decode(buf, len, &result, err, sizeof(err)), SK_EINVAL);
	assert_string_equal(err, "that worker has no process now");
	assert_null(result);
	free(buf);

	const char *bad[] = {"", "{}", "{\"v\":1}", "{\"v\":2,\"ok\":true,\"result\":{}}",
			     "{\"v\":1,\"ok\":true}", "{\"v\":1,\"ok\":true,\"result\":3}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sk_err rc = sup_reply_decode(bad[i], strlen(bad[i]), &result, err, sizeof(err));
		assert_true(rc == SK_ECORRUPT || rc == SK_EVERSION);
		assert_null(result);
	}
	/* A result too big for the bound is not sent as is. */
	json_t *huge = json_object();
	char *s = malloc(SK_CONTROL_MSG_BYTES_MAX + 1);
	memset(s, 'x', SK_CONTROL_MSG_BYTES_MAX);
	s[SK_CONTROL_MSG_BYTES_MAX] = 0;
	json_object_set_new(huge, "blob", json_string(s));
	free(s);
	assert_null(sup_reply_encode(huge, NULL, &len));
}

static void test_control_parses_signal_names(void **state)
{
	assert_int_equal(sup_signal_parse("KILL"), 9);
	assert_int_equal(sup_signal_parse("SIGKILL"), 9);
	assert_int_equal(sup_signal_parse("9"), 9);
	assert_int_equal(sup_signal_parse("STOP"), 19);
	assert_int_equal(sup_signal_parse("TERM"), 15);
	assert_int_equal(sup_signal_parse("0"), 0);
	assert_int_equal(sup_signal_parse("65"), 0);
	assert_int_equal(sup_signal_parse("KIL"), 0);
	assert_int_equal(sup_signal_parse(""), 0);
	assert_int_equal(sup_signal_parse(NULL), 0);
}

/* ---- a real round trip ---- */

static char run_dir[] = "/tmp/skiff-test-control-XXXXXX";

struct server {
	sup_control *c;
	int handled;
};

static void *server_main(void *arg)
{
	struct server *srv = arg;
	struct pollfd pfd = {.fd = sup_control_fd(srv->c), .events = POLLIN};
	for (int rounds = 0; rounds < 100 && srv->handled < 2; rounds++) {
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		struct sup_request req;
		char e[128];
		sk_err rc = sup_control_next(srv->c, &req, e, sizeof(e));
		if (rc != SK_OK)
			continue;
		srv->handled++;
		if (req.cmd == SUP_CMD_STATUS)
			sup_control_reply(srv->c, json_pack("{s:s}", "hello", "skiffctl"), NULL);
		else
			sup_control_reply(srv->c, NULL, "not here");
	}
	return NULL;
}

static void test_control_round_trip_over_nng(void **state)
{
	assert_non_null(mkdtemp(run_dir));
	struct server srv = {0};
	assert_int_equal(sup_control_listen(run_dir, &srv.c, err, sizeof(err)), SK_OK);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, server_main, &srv), 0);
	json_t *result = NULL;
	struct sup_request req = {.cmd = SUP_CMD_STATUS, .worker = -1};
	assert_int_equal(sup_control_call(run_dir, &req, &result, err, sizeof(err)), SK_OK);
	assert_string_equal(json_string_value(json_object_get(result, "hello")), "skiffctl");
	json_decref(result);
	req = (struct sup_request){.cmd = SUP_CMD_RESTART, .worker = SK_W_RAFT};
	assert_int_equal(sup_control_call(run_dir, &req, &result, err, sizeof(err)), SK_EINVAL);
	assert_string_equal(err, "not here");
	pthread_join(t, NULL);
	sup_control_close(srv.c);
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", run_dir, SUP_CONTROL_SOCKET);
	unlink(path);
	/* Nobody listens now: unreachable, not an error reply. */
	req = (struct sup_request){.cmd = SUP_CMD_STATUS, .worker = -1};
	assert_int_equal(sup_control_call(run_dir, &req, &result, err, sizeof(err)), SK_ECLOSED);
	assert_non_null(strstr(err, "cannot reach skiffd"));
	rmdir(run_dir);
}

static void test_control_refuses_a_path_too_long(void **state)
{
	char dir[200];
	memset(dir, 'a', sizeof(dir) - 1);
	dir[0] = '/';
	dir[sizeof(dir) - 1] = 0;
	sup_control *c = NULL;
	assert_int_equal(sup_control_listen(dir, &c, err, sizeof(err)), SK_EINVAL);
	assert_non_null(strstr(err, "too long"));
	json_t *result;
	struct sup_request req = {.cmd = SUP_CMD_STATUS, .worker = -1};
	assert_int_equal(sup_control_call(dir, &req, &result, err, sizeof(err)), SK_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_rejects_bad_requests),
		cmocka_unit_test(test_control_requests_round_trip),
		cmocka_unit_test(test_control_replies),
		cmocka_unit_test(test_control_parses_signal_names),
		cmocka_unit_test(test_control_round_trip_over_nng),
		cmocka_unit_test(test_control_refuses_a_path_too_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
