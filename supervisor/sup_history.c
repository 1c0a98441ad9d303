/* Exit history in sqlite (sup_history.h).
 *
 * File data_dir/supervisor.db, schema version 1 (PRAGMA user_version):
 *   exits(id INTEGER PRIMARY KEY AUTOINCREMENT -- rises forever, orders the rows
 *         at_ms, worker, pid, reason TEXT, code, signal, core, uptime_ms,
 *         restarts_auto, restarts_manual, detail TEXT)
 * Rows with id <= max(id) - rows_max are deleted after each insert. A row whose
 * worker or reason is unknown to this build is skipped when read, never trusted. */
#include "supervisor/sup_history.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

#define HISTORY_SCHEMA_VERSION 1
#define HISTORY_BUSY_TIMEOUT_MS 1000

struct sup_history {
	sqlite3 *db;
	uint32_t rows_max;
	sqlite3_stmt *insert;
	sqlite3_stmt *trim;
	sqlite3_stmt *list_all;
	sqlite3_stmt *list_one;
};

static const char history_schema[] =
	"CREATE TABLE IF NOT EXISTS exits("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, worker INTEGER NOT NULL,"
	" pid INTEGER NOT NULL, reason TEXT NOT NULL, code INTEGER NOT NULL,"
	" signal INTEGER NOT NULL, core INTEGER NOT NULL, uptime_ms INTEGER NOT NULL,"
	" restarts_auto INTEGER NOT NULL, restarts_manual INTEGER NOT NULL,"
	" detail TEXT NOT NULL);"
	"PRAGMA user_version = 1;";

#define HISTORY_COLUMNS                                                                    \
	"at_ms, worker, pid, reason, code, signal, core, uptime_ms, restarts_auto,"        \
	" restarts_manual, detail"

static sk_err history_fail(sqlite3 *db, const char *what, char *err, size_t err_len)
{
	snprintf(err, err_len, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
	return SK_EIO;
}

static int history_user_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	int v = -1;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static sk_err history_prepare(sup_history *h, char *err, size_t err_len)
{
	const char *sql[] = {
		"INSERT INTO exits(" HISTORY_COLUMNS ") VALUES(?,?,?,?,?,?,?,?,?,?,?)",
		"DELETE FROM exits WHERE id <= (SELECT max(id) FROM exits) - ?",
		"SELECT " HISTORY_COLUMNS " FROM exits ORDER BY id DESC LIMIT ?",
		"SELECT " HISTORY_COLUMNS " FROM exits WHERE worker = ? ORDER BY id DESC LIMIT ?",
	};
	sqlite3_stmt **out[] = {&h->insert, &h->trim, &h->list_all, &h->list_one};
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
		if (sqlite3_prepare_v2(h->db, sql[i], -1, out[i], NULL) != SQLITE_OK)
			return history_fail(h->db, "prepare", err, err_len);
	return SK_OK;
}

sk_err sup_history_open(const char *path, uint32_t rows_max, sup_history **out, char *err,
			size_t err_len)
{
	if (rows_max == 0)
		return SK_EINVAL;
	sup_history *h = calloc(1, sizeof(*h));
	if (!h)
		return SK_ENOMEM;
	h->rows_max = rows_max;
	sk_err rc = SK_EIO;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &h->db, flags, NULL) != SQLITE_OK) {
		rc = history_fail(h->db, path, err, err_len);
		goto out_close;
	}
	sqlite3_busy_timeout(h->db, HISTORY_BUSY_TIMEOUT_MS);
	/* History, not data: losing the last exits in a power cut is acceptable. */
	if (sqlite3_exec(h->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
			 NULL) != SQLITE_OK) {
		rc = history_fail(h->db, path, err, err_len);
		goto out_close;
	}
	int version = history_user_version(h->db);
	if (version > HISTORY_SCHEMA_VERSION) {
		snprintf(err, err_len, "%s: schema version %d is newer than this skiffd (%d)", path,
			 version, HISTORY_SCHEMA_VERSION);
		rc = SK_EVERSION;
		goto out_close;
	}
	if (version < 0 || sqlite3_exec(h->db, history_schema, NULL, NULL, NULL) != SQLITE_OK) {
		rc = history_fail(h->db, path, err, err_len);
		goto out_close;
	}
	rc = history_prepare(h, err, err_len);
	if (rc != SK_OK)
		goto out_close;
	*out = h;
	return SK_OK;

out_close:
	sup_history_close(h);
	return rc;
}

void sup_history_close(sup_history *h)
{
	if (!h)
		return;
	sqlite3_finalize(h->insert);
	sqlite3_finalize(h->trim);
	sqlite3_finalize(h->list_all);
	sqlite3_finalize(h->list_one);
	sqlite3_close(h->db);
	free(h);
}

static bool history_step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE;
}

sk_err sup_history_add(sup_history *h, const struct sup_exit *e)
{
	sqlite3_stmt *st = h->insert;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)e->at_ms);
	sqlite3_bind_int(st, 2, (int)e->worker);
	sqlite3_bind_int(st, 3, e->pid);
	sqlite3_bind_text(st, 4, sup_reason_name(e->reason), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, e->code);
	sqlite3_bind_int(st, 6, e->signal);
	sqlite3_bind_int(st, 7, e->core ? 1 : 0);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)e->uptime_ms);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)e->restarts_auto);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)e->restarts_manual);
	sqlite3_bind_text(st, 11, e->detail, -1, SQLITE_STATIC);
	if (!history_step_done(st))
		return SK_EIO;
	sqlite3_bind_int64(h->trim, 1, h->rows_max);
	if (!history_step_done(h->trim))
		return SK_EIO;
	return SK_OK;
}

/* One row into e; false when the row holds something this build does not know. */
static bool history_row(sqlite3_stmt *st, struct sup_exit *e)
{
	memset(e, 0, sizeof(*e));
	e->at_ms = (uint64_t)sqlite3_column_int64(st, 0);
	int worker = sqlite3_column_int(st, 1);
	const char *reason = (const char *)sqlite3_column_text(st, 3);
	if (worker < 0 || worker >= SK_WORKER_COUNT || !reason || !sup_reason_parse(reason, &e->reason))
		return false;
	e->worker = (uint32_t)worker;
	e->pid = sqlite3_column_int(st, 2);
	e->code = sqlite3_column_int(st, 4);
	e->signal = sqlite3_column_int(st, 5);
	e->core = sqlite3_column_int(st, 6) != 0;
	e->uptime_ms = (uint64_t)sqlite3_column_int64(st, 7);
	e->restarts_auto = (uint64_t)sqlite3_column_int64(st, 8);
	e->restarts_manual = (uint64_t)sqlite3_column_int64(st, 9);
	const char *detail = (const char *)sqlite3_column_text(st, 10);
	snprintf(e->detail, sizeof(e->detail), "%s", detail ? detail : "");
	return true;
}

sk_err sup_history_list(sup_history *h, int worker, uint32_t limit, struct sup_exit *out,
			uint32_t *n_out)
{
	sqlite3_stmt *st = worker < 0 ? h->list_all : h->list_one;
	int arg = 1;
	if (worker >= 0)
		sqlite3_bind_int(st, arg++, worker);
	sqlite3_bind_int64(st, arg, limit);
	uint32_t n = 0;
	int rc = SQLITE_DONE;
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
		if (history_row(st, &out[n]))
			n++;
	bool ok = n == limit || rc == SQLITE_DONE;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	*n_out = n;
	return ok ? SK_OK : SK_EIO;
}

sk_err sup_history_count(sup_history *h, uint64_t *count_out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(h->db, "SELECT count(*) FROM exits", -1, &st, NULL) != SQLITE_OK)
		return SK_EIO;
	sk_err rc = SK_EIO;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*count_out = (uint64_t)sqlite3_column_int64(st, 0);
		rc = SK_OK;
	}
	sqlite3_finalize(st);
	return rc;
}
