/* meta.db: sqlite, WAL, synchronous=FULL. Schema (user_version 1):
 *
 *   topics(id PK, name UNIQUE, partitions, created_index,
 *          retention_bytes, retention_ms, retention_index)
 *   partitions(topic_id, partition, log_start, log_start_index)      PK (topic_id, partition)
 *   offsets(grp, topic_id, partition, last_offset, raft_index)       PK (grp, topic_id, partition)
 *   idem(topic_id, key BLOB, partition, last_offset, raft_index, ts_ms)  PK (topic_id, key),
 *        plus an index on ts_ms for pruning
 *   state(id = 1, applied_index, cp_segment_id, cp_position, cp_index, cp_term, cp_ingress_seq)
 *
 * Every u64 is stored as sqlite's signed 64-bit INTEGER (bit pattern kept); the
 * values compared in SQL (offsets, indexes, ms timestamps) stay far below 2^63.
 *
 * Idempotency of the apply functions: each row that a control entry changes
 * remembers the raft index that last changed it, and an entry whose index is not
 * newer changes nothing. So re-applying the entries after meta's applied index
 * (recovery after a crash between the journal fdatasync and the meta commit)
 * leaves the same state as applying them once.
 *
 * Foreign keys are off: rows are only written by the writer after it validated
 * the control entry, and the apply functions check topic existence themselves,
 * so a key check per statement would only cost time.
 *
 * Statements are prepared on first use and cached on the connection (a read-only
 * connection never prepares the writer's statements). */
#include "common/names.h"
#include "store/meta.h"
#include "store/meta_write.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* sqlite's busy handler waits at most this long for a lock (the default is not to
 * wait at all). Readers in WAL mode are blocked only by rare WAL recovery. */
#define META_BUSY_TIMEOUT_MS 5000
#define META_SCHEMA_VERSION 1

enum meta_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_TOPIC_BY_NAME,
	ST_TOPIC_BY_ID,
	ST_TOPICS_LIST,
	ST_COMMITTED,
	ST_LOG_START,
	ST_IDEM_GET,
	ST_APPLIED_GET,
	ST_APPLIED_SET,
	ST_CP_GET,
	ST_CP_SET,
	ST_TOPIC_INSERT,
	ST_PART_INSERT,
	ST_OFFSET_UPSERT,
	ST_LOG_START_UPSERT,
	ST_RETENTION_SET,
	ST_TOPIC_EXISTS,
	ST_IDEM_UPSERT,
	ST_IDEM_PRUNE,
	ST_NEXT_TOPIC_ID,
	ST_COUNT
};

#define TOPIC_COLS "id, name, partitions, created_index, retention_bytes, retention_ms"

static const char *const meta_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_TOPIC_BY_NAME] = "SELECT " TOPIC_COLS " FROM topics WHERE name = ?1",
	[ST_TOPIC_BY_ID] = "SELECT " TOPIC_COLS " FROM topics WHERE id = ?1",
	[ST_TOPICS_LIST] = "SELECT " TOPIC_COLS " FROM topics ORDER BY name LIMIT ?1",
	[ST_COMMITTED] = "SELECT last_offset FROM offsets WHERE grp = ?1 AND topic_id = ?2 AND "
			 "partition = ?3",
	[ST_LOG_START] = "SELECT log_start FROM partitions WHERE topic_id = ?1 AND partition = ?2",
	[ST_IDEM_GET] = "SELECT partition, last_offset, raft_index, ts_ms FROM idem "
			"WHERE topic_id = ?1 AND key = ?2",
	[ST_APPLIED_GET] = "SELECT applied_index FROM state WHERE id = 1",
	[ST_APPLIED_SET] = "UPDATE state SET applied_index = ?1 WHERE id = 1",
	[ST_CP_GET] = "SELECT cp_segment_id, cp_position, cp_index, cp_term, cp_ingress_seq "
		      "FROM state WHERE id = 1",
	[ST_CP_SET] = "UPDATE state SET cp_segment_id = ?1, cp_position = ?2, cp_index = ?3, "
		      "cp_term = ?4, cp_ingress_seq = ?5 WHERE id = 1",
	[ST_TOPIC_INSERT] = "INSERT INTO topics(id, name, partitions, created_index) "
			    "VALUES (?1, ?2, ?3, ?4)",
	[ST_PART_INSERT] = "INSERT OR IGNORE INTO partitions(topic_id, partition) VALUES (?1, ?2)",
	[ST_OFFSET_UPSERT] =
		"INSERT INTO offsets(grp, topic_id, partition, last_offset, raft_index) "
		"VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(grp, topic_id, partition) DO UPDATE SET "
		"last_offset = excluded.last_offset, raft_index = excluded.raft_index "
		"WHERE excluded.raft_index > offsets.raft_index",
	[ST_LOG_START_UPSERT] = "UPDATE partitions SET log_start = ?3, log_start_index = ?4 "
				"WHERE topic_id = ?1 AND partition = ?2 AND log_start_index < ?4 "
				"AND log_start < ?3",
	[ST_RETENTION_SET] = "UPDATE topics SET retention_bytes = ?2, retention_ms = ?3, "
			     "retention_index = ?4 WHERE id = ?1 AND retention_index < ?4",
	[ST_TOPIC_EXISTS] = "SELECT partitions FROM topics WHERE id = ?1",
	[ST_IDEM_UPSERT] =
		"INSERT INTO idem(topic_id, key, partition, last_offset, raft_index, ts_ms) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(topic_id, key) DO UPDATE SET "
		"partition = excluded.partition, last_offset = excluded.last_offset, "
		"raft_index = excluded.raft_index, ts_ms = excluded.ts_ms "
		"WHERE excluded.raft_index > idem.raft_index",
	[ST_IDEM_PRUNE] = "DELETE FROM idem WHERE ts_ms < ?1",
	[ST_NEXT_TOPIC_ID] = "SELECT COALESCE(MAX(id), 0) + 1 FROM topics",
};

static const char meta_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS topics("
	" id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, partitions INTEGER NOT NULL,"
	" created_index INTEGER NOT NULL, retention_bytes INTEGER NOT NULL DEFAULT 0,"
	" retention_ms INTEGER NOT NULL DEFAULT 0, retention_index INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS partitions("
	" topic_id INTEGER NOT NULL, partition INTEGER NOT NULL,"
	" log_start INTEGER NOT NULL DEFAULT 0, log_start_index INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (topic_id, partition)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS offsets("
	" grp TEXT NOT NULL, topic_id INTEGER NOT NULL, partition INTEGER NOT NULL,"
	" last_offset INTEGER NOT NULL, raft_index INTEGER NOT NULL,"
	" PRIMARY KEY (grp, topic_id, partition)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS idem("
	" topic_id INTEGER NOT NULL, key BLOB NOT NULL, partition INTEGER NOT NULL,"
	" last_offset INTEGER NOT NULL, raft_index INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
	" PRIMARY KEY (topic_id, key)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS idem_by_ts ON idem(ts_ms);"
	"CREATE TABLE IF NOT EXISTS state("
	" id INTEGER PRIMARY KEY CHECK (id = 1), applied_index INTEGER NOT NULL,"
	" cp_segment_id INTEGER NOT NULL, cp_position INTEGER NOT NULL, cp_index INTEGER NOT NULL,"
	" cp_term INTEGER NOT NULL, cp_ingress_seq INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO state VALUES (1, 0, 0, 0, 0, 0, 0);";

struct meta {
	sqlite3 *db;
	bool readonly;
	bool in_txn;
	char path[SK_PATH_BYTES_MAX];
	sqlite3_stmt *stmt[ST_COUNT];
};

static sk_err meta_err(meta *m, int rc, const char *what)
{
	log_error("meta_sqlite_error", "what=%s rc=%d msg=\"%s\" path=%s", what, rc,
		  sqlite3_errmsg(m->db), m->path);
	if (rc == SQLITE_FULL)
		return SK_EFULL;
	if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
		return SK_ECORRUPT;
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return SK_EBUSY;
	return SK_EIO;
}

/* The cached statement, reset and unbound, ready for binding; NULL on failure. */
static sqlite3_stmt *meta_stmt(meta *m, enum meta_stmt id)
{
	sqlite3_stmt *st = m->stmt[id];
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	int rc = sqlite3_prepare_v3(m->db, meta_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK) {
		meta_err(m, rc, "prepare");
		return NULL;
	}
	m->stmt[id] = st;
	return st;
}

static void bind_u64(sqlite3_stmt *st, int i, uint64_t v) { sqlite3_bind_int64(st, i, (sqlite3_int64)v); }
static uint64_t col_u64(sqlite3_stmt *st, int i) { return (uint64_t)sqlite3_column_int64(st, i); }

/* Run a statement that returns no rows; resets it so no read snapshot stays open. */
static sk_err meta_run(meta *m, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return meta_err(m, rc, what);
	return SK_OK;
}

/* Step a query expected to return at most one row: SK_OK with a row (caller reads
 * columns, then must sqlite3_reset), SK_ENOTFOUND (already reset) or an error. */
static sk_err meta_row(meta *m, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return SK_OK;
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return SK_ENOTFOUND;
	return meta_err(m, rc, what);
}

static sk_err meta_exec(meta *m, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(m->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		log_error("meta_exec_failed", "rc=%d msg=\"%s\" path=%s", rc, msg ? msg : "", m->path);
		sqlite3_free(msg);
		return rc == SQLITE_FULL ? SK_EFULL : SK_EIO;
	}
	return SK_OK;
}

static int meta_user_version(meta *m)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(m->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static sk_err meta_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return SK_EIO;
	int rc = fsync(fd);
	close(fd);
	return rc == 0 ? SK_OK : SK_EIO;
}

/* Writer connection: WAL + FULL sync, schema created or checked. */
static sk_err meta_setup_writer(meta *m, const char *data_dir, bool created)
{
	/* journal_mode returns the mode actually in force; anything but wal is an error. */
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(m->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return meta_err(m, rc, "journal_mode");
	rc = sqlite3_step(st);
	bool wal = rc == SQLITE_ROW &&
		   strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	if (!wal) {
		log_error("meta_no_wal", "path=%s", m->path);
		return SK_EIO;
	}
	sk_err err = meta_exec(m, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;");
	if (err)
		return err;
	/* Keep the -wal file when the writer closes, so read-only connections (which
	 * cannot create it) can still open the database after a clean writer exit. */
	int persist = 1;
	sqlite3_file_control(m->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	int version = meta_user_version(m);
	if (version > META_SCHEMA_VERSION) {
		log_error("meta_schema_too_new", "version=%d path=%s", version, m->path);
		return SK_EVERSION;
	}
	err = meta_exec(m, "BEGIN IMMEDIATE");
	if (err)
		return err;
	err = meta_exec(m, meta_schema_sql);
	if (!err)
		err = meta_exec(m, "PRAGMA user_version = 1");
	if (err) {
		meta_exec(m, "ROLLBACK");
		return err;
	}
	err = meta_exec(m, "COMMIT");
	if (err)
		return err;
	/* A new file's directory entry must be durable too. */
	if (created && meta_fsync_dir(data_dir) != SK_OK) {
		log_error("meta_dir_fsync_failed", "errno=%d dir=%s", errno, data_dir);
		return SK_EIO;
	}
	return SK_OK;
}

/* Read-only connection: the schema must already be there. */
static sk_err meta_setup_reader(meta *m)
{
	int version = meta_user_version(m);
	if (version < 0)
		return meta_err(m, sqlite3_errcode(m->db), "user_version");
	if (version == 0)
		return SK_ENOTFOUND; /* the writer has not created the schema yet */
	if (version > META_SCHEMA_VERSION)
		return SK_EVERSION;
	return SK_OK;
}

sk_err meta_open(const char *data_dir, bool readonly, meta **out)
{
	meta *m = calloc(1, sizeof(*m));
	if (!m)
		return SK_ENOMEM;
	m->readonly = readonly;
	int n = snprintf(m->path, sizeof(m->path), "%s/meta.db", data_dir);
	sk_err err = SK_EINVAL;
	if (n < 0 || (size_t)n >= sizeof(m->path))
		goto out_free;
	bool exists = access(m->path, F_OK) == 0;
	err = SK_ENOTFOUND;
	if (readonly && !exists)
		goto out_free;
	int flags = SQLITE_OPEN_NOMUTEX |
		    (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	int rc = sqlite3_open_v2(m->path, &m->db, flags, NULL);
	if (rc != SQLITE_OK) {
		err = m->db ? meta_err(m, rc, "open") : SK_ENOMEM;
		goto out_close;
	}
	sqlite3_busy_timeout(m->db, META_BUSY_TIMEOUT_MS);
	err = readonly ? meta_setup_reader(m) : meta_setup_writer(m, data_dir, !exists);
	if (err)
		goto out_close;
	*out = m;
	return SK_OK;
out_close:
	sqlite3_close_v2(m->db);
out_free:
	free(m);
	return err;
}

void meta_close(meta *m)
{
	if (!m)
		return;
	if (m->in_txn)
		meta_rollback(m);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(m->stmt[i]);
	sqlite3_close_v2(m->db);
	free(m);
}

/* ---- readers ---- */

static sk_err topic_from_row(sqlite3_stmt *st, struct meta_topic *out)
{
	memset(out, 0, sizeof(*out));
	out->id = (uint32_t)sqlite3_column_int64(st, 0);
	const unsigned char *name = sqlite3_column_text(st, 1);
	int name_len = sqlite3_column_bytes(st, 1);
	if (!name || name_len <= 0 || name_len > SK_TOPIC_NAME_BYTES_MAX)
		return SK_ECORRUPT;
	memcpy(out->name, name, (size_t)name_len);
	out->name[name_len] = 0;
	out->partitions = (uint32_t)sqlite3_column_int64(st, 2);
	out->created_index = col_u64(st, 3);
	out->retention_bytes = col_u64(st, 4);
	out->retention_ms = col_u64(st, 5);
	return SK_OK;
}

static sk_err meta_topic_query(meta *m, sqlite3_stmt *st, struct meta_topic *out)
{
	sk_err err = meta_row(m, st, "topic_get");
	if (err)
		return err;
	err = topic_from_row(st, out);
	sqlite3_reset(st);
	return err;
}

sk_err meta_topic_by_name(meta *m, const char *name, struct meta_topic *out)
{
	sqlite3_stmt *st = meta_stmt(m, ST_TOPIC_BY_NAME);
	if (!st)
		return SK_EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return meta_topic_query(m, st, out);
}

sk_err meta_topic_by_id(meta *m, uint32_t id, struct meta_topic *out)
{
	sqlite3_stmt *st = meta_stmt(m, ST_TOPIC_BY_ID);
	if (!st)
		return SK_EIO;
	sqlite3_bind_int64(st, 1, id);
	return meta_topic_query(m, st, out);
}

sk_err meta_topics_list(meta *m, struct meta_topic *out, uint32_t cap, uint32_t *count_out)
{
	*count_out = 0;
	sqlite3_stmt *st = meta_stmt(m, ST_TOPICS_LIST);
	if (!st)
		return SK_EIO;
	sqlite3_bind_int64(st, 1, cap);
	uint32_t n = 0;
	int rc;
	while (n < cap && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		sk_err err = topic_from_row(st, &out[n]);
		if (err) {
			sqlite3_reset(st);
			return err;
		}
		n++;
	}
	if (n < cap && rc != SQLITE_DONE) {
		sqlite3_reset(st);
		return meta_err(m, rc, "topics_list");
	}
	sqlite3_reset(st);
	*count_out = n;
	return SK_OK;
}

static bool group_ok(const char *group)
{
	size_t len = strnlen(group, SK_GROUP_NAME_BYTES_MAX + 1);
	return len > 0 && len <= SK_GROUP_NAME_BYTES_MAX;
}

sk_err meta_committed_offset(meta *m, const char *group, uint32_t topic_id, uint32_t partition,
			     uint64_t *offset_out)
{
	if (!group_ok(group))
		return SK_EINVAL;
	sqlite3_stmt *st = meta_stmt(m, ST_COMMITTED);
	if (!st)
		return SK_EIO;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, topic_id);
	sqlite3_bind_int64(st, 3, partition);
	sk_err err = meta_row(m, st, "committed_offset");
	if (err)
		return err;
	*offset_out = col_u64(st, 0);
	sqlite3_reset(st);
	return SK_OK;
}

sk_err meta_log_start(meta *m, uint32_t topic_id, uint32_t partition, uint64_t *log_start_out)
{
	sqlite3_stmt *st = meta_stmt(m, ST_LOG_START);
	if (!st)
		return SK_EIO;
	sqlite3_bind_int64(st, 1, topic_id);
	sqlite3_bind_int64(st, 2, partition);
	sk_err err = meta_row(m, st, "log_start");
	if (err)
		return err;
	*log_start_out = col_u64(st, 0);
	sqlite3_reset(st);
	return SK_OK;
}

static bool idem_key_ok(const uint8_t *key, uint32_t key_len)
{
	/* A zero-length blob would bind as NULL, which never matches. */
	return key && key_len > 0 && key_len <= SK_IDEM_KEY_BYTES_MAX;
}

sk_err meta_idem_lookup(meta *m, uint32_t topic_id, const uint8_t *key, uint32_t key_len,
			uint64_t now_ms, uint64_t window_ms, uint32_t *partition_out,
			uint64_t *offset_out, uint64_t *index_out)
{
	if (!idem_key_ok(key, key_len))
		return SK_EINVAL;
	sqlite3_stmt *st = meta_stmt(m, ST_IDEM_GET);
	if (!st)
		return SK_EIO;
	sqlite3_bind_int64(st, 1, topic_id);
	sqlite3_bind_blob(st, 2, key, (int)key_len, SQLITE_STATIC);
	sk_err err = meta_row(m, st, "idem_lookup");
	if (err)
		return err;
	uint32_t partition = (uint32_t)sqlite3_column_int64(st, 0);
	uint64_t offset = col_u64(st, 1);
	uint64_t index = col_u64(st, 2);
	uint64_t ts_ms = col_u64(st, 3);
	sqlite3_reset(st);
	uint64_t oldest_ms = now_ms > window_ms ? now_ms - window_ms : 0;
	if (ts_ms < oldest_ms)
		return SK_ENOTFOUND;
	*partition_out = partition;
	*offset_out = offset;
	*index_out = index;
	return SK_OK;
}

/* ---- writer: transactions and state ---- */

sk_err meta_begin(meta *m)
{
	if (m->readonly || m->in_txn)
		return SK_EINVAL;
	sqlite3_stmt *st = meta_stmt(m, ST_BEGIN);
	if (!st)
		return SK_EIO;
	sk_err err = meta_run(m, st, "begin");
	if (!err)
		m->in_txn = true;
	return err;
}

sk_err meta_commit(meta *m)
{
	if (!m->in_txn)
		return SK_EINVAL;
	sqlite3_stmt *st = meta_stmt(m, ST_COMMIT);
	sk_err err = st ? meta_run(m, st, "commit") : SK_EIO;
	if (err) {
		meta_rollback(m);
		return err == SK_EFULL ? SK_EFULL : SK_EIO;
	}
	m->in_txn = false;
	return SK_OK;
}

void meta_rollback(meta *m)
{
	if (!m->in_txn)
		return;
	m->in_txn = false;
	/* A failed COMMIT may already have rolled back; ROLLBACK then fails harmlessly. */
	if (sqlite3_get_autocommit(m->db))
		return;
	sqlite3_stmt *st = meta_stmt(m, ST_ROLLBACK);
	if (st)
		meta_run(m, st, "rollback");
}

sk_err meta_applied_index(meta *m, uint64_t *index_out)
{
	sqlite3_stmt *st = meta_stmt(m, ST_APPLIED_GET);
	if (!st)
		return SK_EIO;
	sk_err err = meta_row(m, st, "applied_index");
	if (err)
		return err == SK_ENOTFOUND ? SK_ECORRUPT : err;
	*index_out = col_u64(st, 0);
	sqlite3_reset(st);
	return SK_OK;
}

sk_err meta_set_applied_index(meta *m, uint64_t index)
{
	if (m->readonly)
		return SK_EINVAL;
	uint64_t current;
	sk_err err = meta_applied_index(m, &current);
	if (err)
		return err;
	/* Applied entries cannot be un-applied: going back means the caller lost track. */
	if (index < current) {
		log_error("meta_applied_index_backwards", "current=%llu index=%llu",
			  (unsigned long long)current, (unsigned long long)index);
		return SK_ECONFLICT;
	}
	sqlite3_stmt *st = meta_stmt(m, ST_APPLIED_SET);
	if (!st)
		return SK_EIO;
	bind_u64(st, 1, index);
	return meta_run(m, st, "set_applied_index");
}

sk_err meta_checkpoint_get(meta *m, struct meta_checkpoint *out)
{
	sqlite3_stmt *st = meta_stmt(m, ST_CP_GET);
	if (!st)
		return SK_EIO;
	sk_err err = meta_row(m, st, "checkpoint_get");
	if (err)
		return err == SK_ENOTFOUND ? SK_ECORRUPT : err;
	out->segment_id = col_u64(st, 0);
	out->position = col_u64(st, 1);
	out->index = col_u64(st, 2);
	out->term = col_u64(st, 3);
	out->ingress_seq = col_u64(st, 4);
	sqlite3_reset(st);
	return SK_OK;
}

sk_err meta_checkpoint_set(meta *m, const struct meta_checkpoint *cp)
{
	if (m->readonly)
		return SK_EINVAL;
	sqlite3_stmt *st = meta_stmt(m, ST_CP_SET);
	if (!st)
		return SK_EIO;
	bind_u64(st, 1, cp->segment_id);
	bind_u64(st, 2, cp->position);
	bind_u64(st, 3, cp->index);
	bind_u64(st, 4, cp->term);
	bind_u64(st, 5, cp->ingress_seq);
	return meta_run(m, st, "checkpoint_set");
}

/* ---- writer: control entries ---- */

static bool topic_name_ok(const char *name)
{
	return sk_name_valid(name, strnlen(name, SK_TOPIC_NAME_BYTES_MAX + 1), SK_TOPIC_NAME_BYTES_MAX);
}

/* SK_OK when topic id exists (with *partitions_out), SK_ENOTFOUND, or an error. */
static sk_err meta_topic_partitions(meta *m, uint32_t topic_id, uint32_t *partitions_out)
{
	sqlite3_stmt *st = meta_stmt(m, ST_TOPIC_EXISTS);
	if (!st)
		return SK_EIO;
	sqlite3_bind_int64(st, 1, topic_id);
	sk_err err = meta_row(m, st, "topic_exists");
	if (err)
		return err;
	*partitions_out = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return SK_OK;
}

static sk_err meta_partitions_insert(meta *m, uint32_t topic_id, uint32_t partitions)
{
	for (uint32_t p = 0; p < partitions; p++) {
		sqlite3_stmt *st = meta_stmt(m, ST_PART_INSERT);
		if (!st)
			return SK_EIO;
		sqlite3_bind_int64(st, 1, topic_id);
		sqlite3_bind_int64(st, 2, p);
		sk_err err = meta_run(m, st, "partition_insert");
		if (err)
			return err;
	}
	return SK_OK;
}

sk_err meta_apply_topic_created(meta *m, uint32_t topic_id, const char *name, uint32_t partitions,
				uint64_t index)
{
	if (m->readonly || topic_id == 0 || !topic_name_ok(name) || partitions < SK_PARTITIONS_MIN ||
	    partitions > SK_PARTITIONS_MAX_MAX)
		return SK_EINVAL;
	struct meta_topic t;
	sk_err err = meta_topic_by_id(m, topic_id, &t);
	if (err == SK_OK) {
		/* Re-applied after a crash: the same entry finds its own row. */
		if (strcmp(t.name, name) == 0 && t.partitions == partitions && t.created_index == index)
			return SK_OK;
		return SK_EEXIST;
	}
	if (err != SK_ENOTFOUND)
		return err;
	err = meta_topic_by_name(m, name, &t);
	if (err == SK_OK)
		return SK_EEXIST;
	if (err != SK_ENOTFOUND)
		return err;
	sqlite3_stmt *st = meta_stmt(m, ST_TOPIC_INSERT);
	if (!st)
		return SK_EIO;
	sqlite3_bind_int64(st, 1, topic_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, partitions);
	bind_u64(st, 4, index);
	err = meta_run(m, st, "topic_insert");
	if (err)
		return err;
	return meta_partitions_insert(m, topic_id, partitions);
}

sk_err meta_apply_offset_commit(meta *m, const char *group, uint32_t topic_id, uint32_t partition,
				uint64_t offset, uint64_t index)
{
	if (m->readonly || !group_ok(group))
		return SK_EINVAL;
	/* The upsert changes the row only for an index newer than the one that last
	 * wrote it, so a replayed older entry can never move the offset back. */
	sqlite3_stmt *st = meta_stmt(m, ST_OFFSET_UPSERT);
	if (!st)
		return SK_EIO;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, topic_id);
	sqlite3_bind_int64(st, 3, partition);
	bind_u64(st, 4, offset);
	bind_u64(st, 5, index);
	return meta_run(m, st, "offset_commit");
}

sk_err meta_apply_log_start(meta *m, uint32_t topic_id, uint32_t partition, uint64_t log_start,
			    uint64_t index)
{
	if (m->readonly)
		return SK_EINVAL;
	uint32_t partitions;
	sk_err err = meta_topic_partitions(m, topic_id, &partitions);
	if (err)
		return err;
	if (partition >= partitions)
		return SK_ENOTFOUND;
	/* The log start only moves forward; older or equal entries change nothing. */
	sqlite3_stmt *st = meta_stmt(m, ST_LOG_START_UPSERT);
	if (!st)
		return SK_EIO;
	sqlite3_bind_int64(st, 1, topic_id);
	sqlite3_bind_int64(st, 2, partition);
	bind_u64(st, 3, log_start);
	bind_u64(st, 4, index);
	return meta_run(m, st, "log_start");
}

sk_err meta_apply_retention(meta *m, uint32_t topic_id, uint64_t bytes, uint64_t ms, uint64_t index)
{
	if (m->readonly || bytes > SK_RETENTION_BYTES_MAX || ms > SK_RETENTION_MS_MAX)
		return SK_EINVAL;
	uint32_t partitions;
	sk_err err = meta_topic_partitions(m, topic_id, &partitions);
	if (err)
		return err;
	sqlite3_stmt *st = meta_stmt(m, ST_RETENTION_SET);
	if (!st)
		return SK_EIO;
	sqlite3_bind_int64(st, 1, topic_id);
	bind_u64(st, 2, bytes);
	bind_u64(st, 3, ms);
	bind_u64(st, 4, index);
	return meta_run(m, st, "retention");
}

sk_err meta_idem_put(meta *m, uint32_t topic_id, const uint8_t *key, uint32_t key_len,
		     uint32_t partition, uint64_t offset, uint64_t index, uint64_t ts_ms)
{
	if (m->readonly || !idem_key_ok(key, key_len))
		return SK_EINVAL;
	sqlite3_stmt *st = meta_stmt(m, ST_IDEM_UPSERT);
	if (!st)
		return SK_EIO;
	sqlite3_bind_int64(st, 1, topic_id);
	sqlite3_bind_blob(st, 2, key, (int)key_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, partition);
	bind_u64(st, 4, offset);
	bind_u64(st, 5, index);
	bind_u64(st, 6, ts_ms);
	return meta_run(m, st, "idem_put");
}

sk_err meta_idem_prune(meta *m, uint64_t older_than_ms)
{
	if (m->readonly)
		return SK_EINVAL;
	sqlite3_stmt *st = meta_stmt(m, ST_IDEM_PRUNE);
	if (!st)
		return SK_EIO;
	bind_u64(st, 1, older_than_ms);
	return meta_run(m, st, "idem_prune");
}

sk_err meta_next_topic_id(meta *m, uint32_t *id_out)
{
	sqlite3_stmt *st = meta_stmt(m, ST_NEXT_TOPIC_ID);
	if (!st)
		return SK_EIO;
	sk_err err = meta_row(m, st, "next_topic_id");
	if (err)
		return err == SK_ENOTFOUND ? SK_EIO : err;
	uint64_t id = col_u64(st, 0);
	sqlite3_reset(st);
	if (id > UINT32_MAX)
		return SK_EFULL;
	*id_out = (uint32_t)id;
	return SK_OK;
}
