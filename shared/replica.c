/* replica.c - opening, migrating and configuring a replica file (see
 * replica.h). The layout of the internal tables is documented in
 * docs/REPLICA.md. */
#include "replica.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "mem.h"
#include "schema.h"

int replica_exec(sqlite3 *db, const char *sql, struct err *e)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	err_set(e, ERR_INVALID, "database error: %s",
		msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -1;
}

void replica_global_init(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* Migration 1: the record tables and the device's bookkeeping. */
static int migrate_1(sqlite3 *db, struct err *e)
{
	static const char internal[] =
		"CREATE TABLE bs_settings(key TEXT PRIMARY KEY NOT NULL,"
		" value ANY) STRICT;"
		/* seq is the author sequence of our own change sets. */
		"CREATE TABLE bs_outbox(seq INTEGER PRIMARY KEY NOT NULL,"
		" id BLOB NOT NULL UNIQUE, scope TEXT NOT NULL,"
		" hlc INTEGER NOT NULL, bytes BLOB NOT NULL,"
		" acked INTEGER NOT NULL DEFAULT 0, receipt BLOB) STRICT;"
		/* devices seen, numbered locally so per-cell clocks stay small */
		"CREATE TABLE bs_devices(idx INTEGER PRIMARY KEY NOT NULL,"
		" key BLOB NOT NULL UNIQUE) STRICT;"
		/* per record row: the clock of the write holding each cell, and
		 * the deletion clock once the row is a tombstone (merge.c) */
		"CREATE TABLE bs_rows(tbl TEXT NOT NULL, row_id TEXT NOT NULL,"
		" branch_id TEXT NOT NULL, clocks BLOB NOT NULL,"
		" del_hlc INTEGER, del_dev INTEGER,"
		" PRIMARY KEY(tbl, row_id, branch_id)) STRICT, WITHOUT ROWID;"
		/* every change set merged here, ours and others', for idempotence */
		"CREATE TABLE bs_applied(id BLOB PRIMARY KEY NOT NULL,"
		" author BLOB NOT NULL, seq INTEGER NOT NULL, scope TEXT NOT NULL,"
		" hlc INTEGER NOT NULL, bytes BLOB) STRICT;"
		"CREATE INDEX bs_applied_author ON bs_applied(author, seq);";
	struct buf ddl;
	int rc = -1;

	buf_init(&ddl, 1 << 20);
	if (schema_ddl(&ddl) != BS_OK) {
		err_set(e, ERR_INVALID, "cannot build the record schema");
		goto cleanup;
	}
	buf_append_u8(&ddl, 0);
	if (ddl.status) {
		err_set(e, ERR_INVALID, "out of memory building the schema");
		goto cleanup;
	}
	if (replica_exec(db, (const char *)ddl.data, e) ||
	    replica_exec(db, internal, e))
		goto cleanup;
	rc = 0;
cleanup:
	buf_release(&ddl);
	return rc;
}

/* Migration 2: conflicts people can list and resolve. */
static int migrate_2(sqlite3 *db, struct err *e)
{
	return replica_exec(db,
		"CREATE TABLE bs_conflicts(id INTEGER PRIMARY KEY NOT NULL,"
		" tbl TEXT NOT NULL, row_id TEXT NOT NULL, branch_id TEXT NOT NULL,"
		" col TEXT NOT NULL, kind TEXT NOT NULL,"
		" kept_value ANY, kept_hlc INTEGER, kept_device BLOB,"
		" lost_value ANY, lost_hlc INTEGER, lost_device BLOB,"
		" changeset BLOB NOT NULL, resolved INTEGER NOT NULL DEFAULT 0,"
		" UNIQUE(changeset, tbl, row_id, branch_id, col)) STRICT;",
		e);
}

/* Migration 3: what sync learns from the server. The verdict of a refused
 * change set stays with its outbox row; bs_authors holds every verified
 * enrollment and revocation (who may write what, by log position); and
 * bs_evidence keeps the signed proof of a server that forked its log. */
static int migrate_3(sqlite3 *db, struct err *e)
{
	return replica_exec(db,
		"ALTER TABLE bs_outbox ADD COLUMN verdict TEXT;"
		"CREATE TABLE bs_authors(key BLOB PRIMARY KEY NOT NULL,"
		" role TEXT NOT NULL, scope TEXT NOT NULL,"
		" enroll_idx INTEGER NOT NULL, revoke_idx INTEGER) STRICT;"
		"CREATE TABLE bs_evidence(id INTEGER PRIMARY KEY NOT NULL,"
		" kind TEXT NOT NULL, detail TEXT NOT NULL, a BLOB, b BLOB,"
		" time_ms INTEGER NOT NULL) STRICT;",
		e);
}

/* Migration 4: what bundles need (docs/BUNDLE.md). bs_enrollments keeps
 * the exact server-signed bytes of every enrollment this device verified
 * (from the log, its own enrollment, or a bundle), so that a bundle can
 * carry its authors' enrollments to a device that never synced;
 * bs_authors stays what the log said, by log position. bs_relay holds
 * other devices' change sets a district device took from a bundle, to be
 * pushed with their original signatures at its next sync (client/sync_push.c):
 * acked as in bs_outbox, and the server's reason in verdict. */
static int migrate_4(sqlite3 *db, struct err *e)
{
	return replica_exec(db,
		"CREATE TABLE bs_enrollments(key BLOB PRIMARY KEY NOT NULL,"
		" bytes BLOB NOT NULL) STRICT;"
		"CREATE TABLE bs_relay(id BLOB PRIMARY KEY NOT NULL,"
		" author BLOB NOT NULL, seq INTEGER NOT NULL,"
		" bytes BLOB NOT NULL, acked INTEGER NOT NULL DEFAULT 0,"
		" receipt BLOB, verdict TEXT, UNIQUE(author, seq)) STRICT;",
		e);
}

/* Migration 5: find a table's tombstones without scanning its rows (every
 * capture asks whether a table has any, merge.c table_has_tombstones). */
static int migrate_5(sqlite3 *db, struct err *e)
{
	return replica_exec(db,
		"CREATE INDEX bs_rows_tombstones ON bs_rows(tbl)"
		" WHERE del_hlc IS NOT NULL;", e);
}

/* Migration 6: implicit clocks (shared/implicit.h). A row nobody wrote
 * since the change set that inserted it gets no bs_rows entry; its clock
 * is kept once per range of its table's rowids, with a 16-byte fingerprint
 * of each row's key per slot (`rows` of them not empty). Rows already in
 * bs_rows keep their entries, which always win, so an older file needs
 * nothing but the new table. Only live ranges (last >= first) are looked
 * up by rowid. */
static int migrate_6(sqlite3 *db, struct err *e)
{
	return replica_exec(db,
		"CREATE TABLE bs_implicit(tbl TEXT NOT NULL,"
		" first INTEGER NOT NULL, last INTEGER NOT NULL,"
		" hlc INTEGER NOT NULL, dev INTEGER NOT NULL,"
		" rows INTEGER NOT NULL, slots BLOB NOT NULL) STRICT;"
		"CREATE INDEX bs_implicit_live ON bs_implicit(tbl, last)"
		" WHERE last >= first;", e);
}

/* Migration 7: a push is answered by one signed push receipt for all its
 * sets (protocol/FORMAT.md, "Push receipts"); it is kept once, in
 * bs_receipts with the ids it binds, and each row it answers points at
 * it. The receipt columns keep the per-set receipts of pushes made
 * before. */
static int migrate_7(sqlite3 *db, struct err *e)
{
	return replica_exec(db,
		"CREATE TABLE bs_receipts(id INTEGER PRIMARY KEY NOT NULL,"
		" bytes BLOB NOT NULL, ids BLOB NOT NULL) STRICT;"
		"ALTER TABLE bs_outbox ADD COLUMN push_receipt INTEGER;"
		"ALTER TABLE bs_relay ADD COLUMN push_receipt INTEGER;", e);
}

typedef int (*migration_fn)(sqlite3 *db, struct err *e);
static const migration_fn migrations[REPLICA_VERSION] = {
	migrate_1, migrate_2, migrate_3, migrate_4, migrate_5, migrate_6,
	migrate_7};

int replica_migrate(sqlite3 *db, int version, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int have = 0, rc = -1, i;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) ||
	    sqlite3_step(st) != SQLITE_ROW) {
		err_set(e, ERR_INVALID, "cannot read the replica version: %s",
			sqlite3_errmsg(db));
		goto cleanup;
	}
	have = sqlite3_column_int(st, 0);
	if (have > REPLICA_VERSION) {
		err_set(e, ERR_INVALID,
			"this replica was written by a newer branchsync "
			"(version %d, this one knows %d); upgrade branchsync",
			have, REPLICA_VERSION);
		goto cleanup;
	}
	for (i = have; i < version; i++) {
		char pragma[64];

		/* Each step commits with its version number, so a crash between
		 * steps resumes at the right one. */
		if (replica_exec(db, "BEGIN IMMEDIATE", e))
			goto cleanup;
		snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", i + 1);
		if (migrations[i](db, e) || replica_exec(db, pragma, e) ||
		    replica_exec(db, "COMMIT", e)) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

/* page_size: 0 for SQLite's, else the size a new file's pages get (an
 * existing file keeps its own: WAL mode does not change it). */
static int configure(sqlite3 *db, enum replica_mode mode, int page_size,
		     struct err *e)
{
	char sql[48];

	sqlite3_busy_timeout(db, 10000);
	sqlite3_extended_result_codes(db, 1);
	snprintf(sql, sizeof sql, "PRAGMA page_size=%d", page_size);
	if (page_size && replica_exec(db, sql, e))
		return -1;
	if (mode != REPLICA_MEMORY &&
	    replica_exec(db, "PRAGMA journal_mode=WAL", e))
		return -1;
	/* FULL: a change set acknowledged to the user survives a power cut. */
	return replica_exec(db,
		"PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;"
		" PRAGMA trusted_schema=OFF; PRAGMA secure_delete=ON;", e);
}

static int open_replica(const char *path, enum replica_mode mode,
			int version, int page_size, struct replica **out,
			struct err *e)
{
	struct replica *r = NULL;
	struct stat st;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	int rc = -1;

	*out = NULL;
	if (mode == REPLICA_OPEN && stat(path, &st) != 0) {
		err_set(e, ERR_INVALID,
			"no replica at %s; create one with 'branchsync init'",
			path);
		return -1;
	}
	if (mode == REPLICA_CREATE) {
		if (stat(path, &st) == 0) {
			err_set(e, ERR_INVALID, "%s already exists; choose "
				"another --db or remove it first", path);
			return -1;
		}
		flags |= SQLITE_OPEN_CREATE;
	}
	if (mode == REPLICA_MEMORY)
		flags |= SQLITE_OPEN_MEMORY | SQLITE_OPEN_CREATE;
	r = mem_calloc(1, sizeof *r);
	if (!r || !(r->path = mem_strdup(path))) {
		err_set(e, ERR_INVALID, "out of memory");
		goto cleanup;
	}
	if (sqlite3_open_v2(path, &r->db, flags, NULL) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "cannot open %s: %s", path,
			r->db ? sqlite3_errmsg(r->db) : "out of memory");
		goto cleanup;
	}
	if (mode == REPLICA_CREATE)
		chmod(path, 0600); /* personal data: owner only */
	if (configure(r->db, mode, page_size, e) ||
	    replica_migrate(r->db, version, e))
		goto cleanup;
	*out = r;
	r = NULL;
	rc = 0;
cleanup:
	replica_close(r);
	return rc;
}

int replica_open_at(const char *path, enum replica_mode mode, int version,
		    struct replica **out, struct err *e)
{
	return open_replica(path, mode, version, 0, out, e);
}

int replica_open(const char *path, enum replica_mode mode,
		 struct replica **out, struct err *e)
{
	return open_replica(path, mode, REPLICA_VERSION, 0, out, e);
}

int replica_create_device(const char *path, struct replica **out,
			  struct err *e)
{
	return open_replica(path, REPLICA_CREATE, REPLICA_VERSION,
			    REPLICA_DEVICE_PAGE_SIZE, out, e);
}

void replica_close(struct replica *r)
{
	if (!r)
		return;
	if (r->db)
		sqlite3_close(r->db);
	mem_free(r->path);
	mem_free(r);
}

int replica_begin(struct replica *r, struct err *e)
{
	return replica_exec(r->db, "BEGIN IMMEDIATE", e);
}

int replica_commit(struct replica *r, struct err *e)
{
	return replica_exec(r->db, "COMMIT", e);
}

void replica_rollback(struct replica *r)
{
	if (!sqlite3_get_autocommit(r->db))
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
}

int replica_setting_get(struct replica *r, const char *key, uint8_t **val,
			size_t *len, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	*val = NULL;
	*len = 0;
	if (sqlite3_prepare_v2(r->db,
			       "SELECT value FROM bs_settings WHERE key=?1", -1,
			       &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 0);
		int n = sqlite3_column_bytes(st, 0);

		*val = mem_alloc((size_t)n + 1);
		if (!*val) {
			err_set(e, ERR_INVALID, "out of memory");
			goto cleanup;
		}
		if (n)
			memcpy(*val, p, (size_t)n);
		(*val)[n] = 0;
		*len = (size_t)n;
	} else if (step != SQLITE_DONE) {
		goto fail;
	}
	rc = 0;
	goto cleanup;
fail:
	err_set(e, ERR_INVALID, "cannot read setting %s: %s", key,
		sqlite3_errmsg(r->db));
cleanup:
	sqlite3_finalize(st);
	return rc;
}

char *replica_setting_text(struct replica *r, const char *key)
{
	uint8_t *v = NULL;
	size_t n;
	struct err e;

	err_init(&e);
	if (replica_setting_get(r, key, &v, &n, &e))
		return NULL;
	return (char *)v;
}

int replica_setting_int(struct replica *r, const char *key, int64_t *out,
			int64_t dflt, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	*out = dflt;
	if (sqlite3_prepare_v2(r->db,
			       "SELECT value FROM bs_settings WHERE key=?1", -1,
			       &st, NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	rc = (step == SQLITE_ROW || step == SQLITE_DONE) ? 0 : -1;
cleanup:
	if (rc)
		err_set(e, ERR_INVALID, "cannot read setting %s: %s", key,
			sqlite3_errmsg(r->db));
	sqlite3_finalize(st);
	return rc;
}

static int setting_store(struct replica *r, const char *key,
			 int (*bind)(sqlite3_stmt *, const void *, size_t),
			 const void *val, size_t len, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(r->db,
			       "INSERT INTO bs_settings(key, value) VALUES(?1, ?2)"
			       " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
			       -1, &st, NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (bind(st, val, len) != SQLITE_OK)
		goto cleanup;
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
cleanup:
	if (rc)
		err_set(e, ERR_INVALID, "cannot store setting %s: %s", key,
			sqlite3_errmsg(r->db));
	sqlite3_finalize(st);
	return rc;
}

static int bind_blob(sqlite3_stmt *st, const void *v, size_t n)
{
	return sqlite3_bind_blob64(st, 2, v ? v : "", n, SQLITE_TRANSIENT);
}

static int bind_text(sqlite3_stmt *st, const void *v, size_t n)
{
	return sqlite3_bind_text64(st, 2, v, n, SQLITE_TRANSIENT, SQLITE_UTF8);
}

static int bind_int(sqlite3_stmt *st, const void *v, size_t n)
{
	(void)n;
	return sqlite3_bind_int64(st, 2, *(const int64_t *)v);
}

int replica_setting_set(struct replica *r, const char *key, const void *val,
			size_t len, struct err *e)
{
	return setting_store(r, key, bind_blob, val, len, e);
}

int replica_setting_set_text(struct replica *r, const char *key,
			     const char *val, struct err *e)
{
	return setting_store(r, key, bind_text, val, strlen(val), e);
}

int replica_setting_set_int(struct replica *r, const char *key, int64_t v,
			    struct err *e)
{
	return setting_store(r, key, bind_int, &v, sizeof v, e);
}
