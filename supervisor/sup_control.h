/* The control socket between skiffctl and skiffd: nng req/rep at
 * ipc://RUN_DIR/control.sock (run_dir is mode 0700, the socket 0600).
 *
 * Wire format, version 1: one UTF-8 JSON object per nng message, at most
 * SK_CONTROL_MSG_BYTES_MAX bytes (both sides set NNG_OPT_RECVMAXSZ to it, so a
 * bigger message is dropped by nng before it is allocated). "v" must be 1;
 * an unknown version, command, worker or field type gets an error reply and
 * changes nothing.
 *
 *   request  {"v":1, "cmd":"status"}
 *            {"v":1, "cmd":"kill", "worker":"raft", "signal":9}
 *            {"v":1, "cmd":"restart", "worker":"raft"}
 *            {"v":1, "cmd":"stop"}
 *            {"v":1, "cmd":"events", "worker":"raft" | null, "limit":20}
 *   reply    {"v":1, "ok":true, "result":{...}}  status: the status JSON (sup_status.h);
 *                                                events: {"events":[...]}, newest first;
 *                                                others: {}
 *            {"v":1, "ok":false, "error":"one line for a person"}
 *
 * Every call has a timeout (SK_CONTROL_TIMEOUT_MS) on both send and receive,
 * and a req is never re-sent (kill and restart are not idempotent). */
#ifndef SK_SUP_CONTROL_H
#define SK_SUP_CONTROL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sk_error.h"

#define SUP_CONTROL_VERSION 1
#define SUP_CONTROL_SOCKET "control.sock"
#define SUP_EVENTS_LIMIT_MAX 200 /* keeps an events reply far below SK_CONTROL_MSG_BYTES_MAX */
#define SUP_EVENTS_LIMIT_DEFAULT 20

enum sup_cmd {
	SUP_CMD_STATUS = 1,
	SUP_CMD_KILL,
	SUP_CMD_RESTART,
	SUP_CMD_STOP,
	SUP_CMD_EVENTS,
};

struct sup_request {
	enum sup_cmd cmd;
	int worker;     /* enum sk_worker_id; -1 when none (events of every worker) */
	int signal;     /* kill: 1..64 */
	uint32_t limit; /* events: 1..SUP_EVENTS_LIMIT_MAX */
};

/* Codecs (pure). encode: SK_EFULL when buf is too small. decode: SK_EVERSION, SK_EINVAL with
 * a reason in err. */
sk_err sup_request_encode(const struct sup_request *req, char *buf, size_t buf_len,
			  size_t *len_out);
sk_err sup_request_decode(const char *buf, size_t len, struct sup_request *out, char *err,
			  size_t err_len);
/* A reply as a malloc'd buffer (caller free()s): ok with result (stolen; NULL means {}), or
 * an error when error != NULL. NULL when out of memory or over SK_CONTROL_MSG_BYTES_MAX. */
char *sup_reply_encode(json_t *result, const char *error, size_t *len_out);
/* Decode a reply: SK_OK with *result (caller json_decref()s); SK_EINVAL with skiffd's error
 * text in err; SK_EVERSION / SK_ECORRUPT for a reply we cannot read. */
sk_err sup_reply_decode(const char *buf, size_t len, json_t **result, char *err, size_t err_len);

/* "KILL", "SIGKILL", "9" -> 9; 0 when unknown. */
int sup_signal_parse(const char *name);

/* Server (skiffd). */
typedef struct sup_control sup_control;
/* Listen on ipc://run_dir/control.sock (a stale file must be removed by the caller, who holds
 * the run_dir lock). SK_EINVAL when the path is too long for a unix socket, SK_EIO. */
sk_err sup_control_listen(const char *run_dir, sup_control **out, char *err, size_t err_len);
/* A descriptor that polls readable while a request waits. */
int sup_control_fd(sup_control *c);
/* Take the next request: SK_EAGAIN when none waits. A malformed request is answered here
 * and reported as SK_EINVAL (err says why); on SK_OK answer it with sup_control_reply(). */
sk_err sup_control_next(sup_control *c, struct sup_request *req, char *err, size_t err_len);
/* Answer the request taken last (result stolen). Never blocks: a reply that cannot be
 * queued is dropped and the client times out. */
void sup_control_reply(sup_control *c, json_t *result, const char *error);
/* Close the socket and remove the socket file. */
void sup_control_close(sup_control *c);

/* Client (skiffctl): one round trip. SK_ECLOSED when skiffd cannot be reached (no socket,
 * refused), SK_ETIMEDOUT when it does not answer in time, SK_EINVAL for an error reply
 * (text in err), SK_EVERSION / SK_ECORRUPT for a reply we cannot read. */
sk_err sup_control_call(const char *run_dir, const struct sup_request *req, json_t **result,
			char *err, size_t err_len);

#endif
