/* Control socket (sup_control.h): versioned, bounded JSON over nng req/rep.
 * Layout and validity rules of the messages are in sup_control.h. */
#include "supervisor/sup_control.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/config.h"
#include "common/sk_limits.h"

static const char *const cmd_names[] = {
	[SUP_CMD_STATUS] = "status", [SUP_CMD_KILL] = "kill",     [SUP_CMD_RESTART] = "restart",
	[SUP_CMD_STOP] = "stop",     [SUP_CMD_EVENTS] = "events",
};
#define CMD_LAST SUP_CMD_EVENTS

int sup_signal_parse(const char *name)
{
	if (!name || !*name)
		return 0;
	char *end;
	long n = strtol(name, &end, 10);
	if (*end == 0)
		return n >= 1 && n <= 64 ? (int)n : 0;
	if (strncmp(name, "SIG", 3) == 0)
		name += 3;
	for (int sig = 1; sig < 32; sig++) {
		const char *abbrev = sigabbrev_np(sig);
		if (abbrev && strcmp(abbrev, name) == 0)
			return sig;
	}
	return 0;
}

/* ---- codecs ---- */

static sk_err dump_bounded(json_t *obj, char *buf, size_t buf_len, size_t *len_out)
{
	size_t need = json_dumpb(obj, NULL, 0, JSON_COMPACT);
	if (need == 0)
		return SK_ENOMEM;
	if (need > buf_len)
		return SK_EFULL;
	json_dumpb(obj, buf, need, JSON_COMPACT);
	*len_out = need;
	return SK_OK;
}

sk_err sup_request_encode(const struct sup_request *req, char *buf, size_t buf_len,
			  size_t *len_out)
{
	if (req->cmd < SUP_CMD_STATUS || req->cmd > CMD_LAST)
		return SK_EINVAL;
	json_t *o = json_pack("{s:i, s:s}", "v", SUP_CONTROL_VERSION, "cmd", cmd_names[req->cmd]);
	if (!o)
		return SK_ENOMEM;
	int bad = 0;
	if (req->cmd == SUP_CMD_KILL || req->cmd == SUP_CMD_RESTART || req->cmd == SUP_CMD_EVENTS)
		bad |= json_object_set_new(o, "worker",
					   req->worker >= 0 ? json_string(cfg_worker_name(req->worker))
							    : json_null());
	if (req->cmd == SUP_CMD_KILL)
		bad |= json_object_set_new(o, "signal", json_integer(req->signal));
	if (req->cmd == SUP_CMD_EVENTS)
		bad |= json_object_set_new(o, "limit", json_integer(req->limit));
	sk_err rc = bad ? SK_ENOMEM : dump_bounded(o, buf, buf_len, len_out);
	json_decref(o);
	return rc;
}

static sk_err decode_fail(char *err, size_t err_len, sk_err rc, const char *why)
{
	snprintf(err, err_len, "%s", why);
	return rc;
}

/* The fields beside "cmd": each checked for type and range. */
static sk_err request_fields(json_t *o, struct sup_request *out, char *err, size_t err_len)
{
	json_t *worker = json_object_get(o, "worker");
	bool needs_worker = out->cmd == SUP_CMD_KILL || out->cmd == SUP_CMD_RESTART;
	if (json_is_string(worker)) {
		enum sk_worker_id id;
		if (!cfg_worker_parse(json_string_value(worker), &id))
			return decode_fail(err, err_len, SK_EINVAL,
					   "unknown worker (workers are writer, raft, replay, http)");
		out->worker = (int)id;
	} else if (needs_worker || (worker && !json_is_null(worker))) {
		return decode_fail(err, err_len, SK_EINVAL, "\"worker\" must be a worker name");
	}
	if (out->cmd == SUP_CMD_KILL) {
		json_t *sig = json_object_get(o, "signal");
		json_int_t s = json_is_integer(sig) ? json_integer_value(sig) : 0;
		if (s < 1 || s > 64)
			return decode_fail(err, err_len, SK_EINVAL, "\"signal\" must be 1..64");
		out->signal = (int)s;
	}
	if (out->cmd == SUP_CMD_EVENTS) {
		json_t *limit = json_object_get(o, "limit");
		json_int_t l = json_is_integer(limit) ? json_integer_value(limit) : 0;
		if (l < 1 || l > SUP_EVENTS_LIMIT_MAX)
			return decode_fail(err, err_len, SK_EINVAL, "\"limit\" must be 1..200");
		out->limit = (uint32_t)l;
	}
	return SK_OK;
}

sk_err sup_request_decode(const char *buf, size_t len, struct sup_request *out, char *err,
			  size_t err_len)
{
	memset(out, 0, sizeof(*out));
	out->worker = -1;
	if (len > SK_CONTROL_MSG_BYTES_MAX)
		return decode_fail(err, err_len, SK_EINVAL, "request too large");
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return decode_fail(err, err_len, SK_EINVAL, "request is not a JSON object");
	}
	sk_err rc = SK_OK;
	json_t *v = json_object_get(o, "v");
	const char *cmd = json_string_value(json_object_get(o, "cmd"));
	if (!json_is_integer(v) || json_integer_value(v) != SUP_CONTROL_VERSION) {
		rc = decode_fail(err, err_len, SK_EVERSION, "unsupported request version (want 1)");
		goto out;
	}
	for (int i = SUP_CMD_STATUS; cmd && i <= CMD_LAST; i++)
		if (strcmp(cmd, cmd_names[i]) == 0)
			out->cmd = (enum sup_cmd)i;
	if (out->cmd == 0) {
		rc = decode_fail(err, err_len, SK_EINVAL, "unknown command");
		goto out;
	}
	rc = request_fields(o, out, err, err_len);
out:
	json_decref(o);
	return rc;
}

char *sup_reply_encode(json_t *result, const char *error, size_t *len_out)
{
	json_t *o = error ? json_pack("{s:i, s:b, s:s}", "v", SUP_CONTROL_VERSION, "ok", 0, "error",
				      error)
			  : json_pack("{s:i, s:b, s:o}", "v", SUP_CONTROL_VERSION, "ok", 1, "result",
				      result ? result : json_object());
	if (error)
		json_decref(result);
	if (!o)
		return NULL;
	char *buf = NULL;
	size_t need = json_dumpb(o, NULL, 0, JSON_COMPACT);
	if (need > 0 && need <= SK_CONTROL_MSG_BYTES_MAX && (buf = malloc(need)) != NULL) {
		json_dumpb(o, buf, need, JSON_COMPACT);
		*len_out = need;
	}
	json_decref(o);
	return buf;
}

sk_err sup_reply_decode(const char *buf, size_t len, json_t **result, char *err, size_t err_len)
{
	*result = NULL;
	if (len > SK_CONTROL_MSG_BYTES_MAX)
		return decode_fail(err, err_len, SK_ECORRUPT, "reply too large");
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	sk_err rc = SK_OK;
	json_t *v = json_object_get(o, "v");
	json_t *ok = json_object_get(o, "ok");
	if (!json_is_object(o) || !json_is_boolean(ok)) {
		rc = decode_fail(err, err_len, SK_ECORRUPT, "malformed reply from skiffd");
	} else if (!json_is_integer(v) || json_integer_value(v) != SUP_CONTROL_VERSION) {
		rc = decode_fail(err, err_len, SK_EVERSION, "unsupported reply version from skiffd");
	} else if (json_is_false(ok)) {
		const char *e = json_string_value(json_object_get(o, "error"));
		rc = decode_fail(err, err_len, SK_EINVAL, e ? e : "error without text");
	} else if (!json_is_object(json_object_get(o, "result"))) {
		rc = decode_fail(err, err_len, SK_ECORRUPT, "reply without a result");
	} else {
		*result = json_incref(json_object_get(o, "result"));
	}
	json_decref(o);
	return rc;
}

/* ---- sockets ---- */

struct sup_control {
	nng_socket sock;
	int fd;
};

static sk_err control_url(const char *run_dir, char *url, size_t url_len)
{
	struct sockaddr_un sun;
	int n = snprintf(url, url_len, "ipc://%s/%s", run_dir, SUP_CONTROL_SOCKET);
	if (n < 0 || (size_t)n >= url_len || strlen(url) - 6 >= sizeof(sun.sun_path))
		return SK_EINVAL;
	return SK_OK;
}

/* Limits every socket sets explicitly (STYLE.md habit 7). */
static int control_limits(nng_socket s)
{
	int rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, SK_CONTROL_MSG_BYTES_MAX);
	if (rv == 0)
		rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, SK_CONTROL_TIMEOUT_MS);
	if (rv == 0)
		rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, SK_CONTROL_TIMEOUT_MS);
	return rv;
}

sk_err sup_control_listen(const char *run_dir, sup_control **out, char *err, size_t err_len)
{
	char url[SK_PATH_BYTES_MAX + 32];
	if (control_url(run_dir, url, sizeof(url)) != SK_OK) {
		snprintf(err, err_len, "%s/%s: path too long for a unix socket", run_dir,
			 SUP_CONTROL_SOCKET);
		return SK_EINVAL;
	}
	sup_control *c = calloc(1, sizeof(*c));
	if (!c)
		return SK_ENOMEM;
	nng_listener l;
	const char *what = "rep0 open";
	int rv = nng_rep0_open(&c->sock);
	if (rv != 0)
		goto out_free;
	what = "socket options";
	if ((rv = control_limits(c->sock)) != 0)
		goto out_close;
	what = "listen";
	if ((rv = nng_listener_create(&l, c->sock, url)) != 0)
		goto out_close;
	if ((rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600)) != 0 ||
	    (rv = nng_listener_start(l, 0)) != 0)
		goto out_close;
	what = "recv-fd";
	if ((rv = nng_socket_get_int(c->sock, NNG_OPT_RECVFD, &c->fd)) != 0)
		goto out_close;
	*out = c;
	return SK_OK;

out_close:
	nng_close(c->sock);
out_free:
	free(c);
	snprintf(err, err_len, "%s: %s: %s", url, what, nng_strerror(rv));
	return SK_EIO;
}

int sup_control_fd(sup_control *c) { return c->fd; }

sk_err sup_control_next(sup_control *c, struct sup_request *req, char *err, size_t err_len)
{
	nng_msg *msg;
	int rv = nng_recvmsg(c->sock, &msg, NNG_FLAG_NONBLOCK);
	if (rv == NNG_EAGAIN)
		return SK_EAGAIN;
	if (rv != 0) {
		snprintf(err, err_len, "recv: %s", nng_strerror(rv));
		return SK_EIO;
	}
	sk_err rc = sup_request_decode(nng_msg_body(msg), nng_msg_len(msg), req, err, err_len);
	nng_msg_free(msg);
	if (rc != SK_OK) {
		sup_control_reply(c, NULL, err);
		return SK_EINVAL;
	}
	return SK_OK;
}

void sup_control_reply(sup_control *c, json_t *result, const char *error)
{
	size_t len = 0;
	char *buf = sup_reply_encode(result, error, &len);
	if (!buf)
		buf = sup_reply_encode(NULL, "reply too large or out of memory", &len);
	nng_msg *msg;
	if (!buf || nng_msg_alloc(&msg, 0) != 0) {
		free(buf);
		return;
	}
	if (nng_msg_append(msg, buf, len) != 0 || nng_sendmsg(c->sock, msg, NNG_FLAG_NONBLOCK) != 0)
		nng_msg_free(msg);
	free(buf);
}

void sup_control_close(sup_control *c)
{
	if (!c)
		return;
	nng_close(c->sock);
	free(c);
}

static sk_err call_errno(int rv, const char *url, char *err, size_t err_len)
{
	switch (rv) {
	case NNG_ECONNREFUSED:
	case NNG_ENOENT:
		snprintf(err, err_len, "cannot reach skiffd at %s: %s", url, nng_strerror(rv));
		return SK_ECLOSED;
	case NNG_ETIMEDOUT:
		snprintf(err, err_len, "skiffd at %s did not answer within %d ms", url,
			 SK_CONTROL_TIMEOUT_MS);
		return SK_ETIMEDOUT;
	default:
		snprintf(err, err_len, "cannot reach skiffd at %s: %s", url, nng_strerror(rv));
		return SK_ECLOSED;
	}
}

static sk_err call_round_trip(nng_socket s, const char *url, const char *req, size_t req_len,
			      json_t **result, char *err, size_t err_len)
{
	int rv = nng_dial(s, url, NULL, 0);
	if (rv != 0)
		return call_errno(rv, url, err, err_len);
	if ((rv = nng_send(s, (void *)req, req_len, 0)) != 0)
		return call_errno(rv, url, err, err_len);
	nng_msg *msg;
	if ((rv = nng_recvmsg(s, &msg, 0)) != 0)
		return call_errno(rv, url, err, err_len);
	sk_err rc = sup_reply_decode(nng_msg_body(msg), nng_msg_len(msg), result, err, err_len);
	nng_msg_free(msg);
	return rc;
}

sk_err sup_control_call(const char *run_dir, const struct sup_request *req, json_t **result,
			char *err, size_t err_len)
{
	char url[SK_PATH_BYTES_MAX + 32];
	if (control_url(run_dir, url, sizeof(url)) != SK_OK) {
		snprintf(err, err_len, "%s/%s: path too long for a unix socket", run_dir,
			 SUP_CONTROL_SOCKET);
		return SK_EINVAL;
	}
	char buf[1024];
	size_t len;
	sk_err rc = sup_request_encode(req, buf, sizeof(buf), &len);
	if (rc != SK_OK) {
		snprintf(err, err_len, "cannot encode request: %s", sk_strerror(rc));
		return rc;
	}
	nng_socket s;
	int rv = nng_req0_open(&s);
	if (rv != 0) {
		snprintf(err, err_len, "nng: %s", nng_strerror(rv));
		return SK_EIO;
	}
	if ((rv = control_limits(s)) != 0 ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0) {
		snprintf(err, err_len, "nng: %s", nng_strerror(rv));
		nng_close(s);
		return SK_EIO;
	}
	rc = call_round_trip(s, url, buf, len, result, err, err_len);
	nng_close(s);
	return rc;
}
