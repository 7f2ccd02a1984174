/* merge.c - per-column last-writer-wins merge with permanent tombstones and
 * conflict records (rules: merge.h and docs/MERGE.md). The per-row clocks
 * live in bs_rows.clocks: for each schema column (after id and branch_id),
 * 12 bytes = u64be HLC of the write holding the cell (0: never written) and
 * u32be local index of its author in bs_devices. */
#include "merge.h"

#include <stdio.h>
#include <string.h>

#include "csbody.h"
#include "mem.h"
#include "schema.h"

#define CLOCK_BYTES 12
#define MAX_TABLES 16
#define MAX_COLS 16

struct table_stmts {
	sqlite3_stmt *select_row;
	sqlite3_stmt *insert_row;
	sqlite3_stmt *delete_row;
	sqlite3_stmt *update_col[MAX_COLS];
};

struct merge {
	sqlite3 *db;
	sqlite3_stmt *get_applied, *put_applied;
	sqlite3_stmt *get_dev, *put_dev, *dev_key;
	sqlite3_stmt *get_meta, *put_meta;
	sqlite3_stmt *put_conflict;
	struct table_stmts tables[MAX_TABLES];
	/* the author of the change set being merged */
	uint8_t author[SIGN_PUBLIC_BYTES];
	int64_t author_idx;
	int drop_bytes;  /* the server keeps change sets in its log instead */
};

/* One row operation decoded from a changeset, with its row metadata. */
struct row_op {
	const struct schema_table *t;
	size_t tidx;
	int op;                /* SQLITE_INSERT, SQLITE_UPDATE, SQLITE_DELETE */
	const char *id, *branch_id;
	sqlite3_value *newv[MAX_COLS + 2];
	sqlite3_value *oldv[MAX_COLS + 2];
	int has_meta;
	uint8_t clocks[MAX_COLS * CLOCK_BYTES];
	int deleted;
	int64_t del_hlc, del_dev;
};

static int prep(struct merge *m, sqlite3_stmt **st, const char *sql,
		struct err *e)
{
	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
		return 0;
	}
	if (sqlite3_prepare_v3(m->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
			       NULL) == SQLITE_OK)
		return 0;
	err_set(e, ERR_INVALID, "database error preparing merge: %s",
		sqlite3_errmsg(m->db));
	return -1;
}

static int db_fail(struct merge *m, struct err *e)
{
	err_set(e, ERR_INVALID, "database error during merge: %s",
		sqlite3_errmsg(m->db));
	return -1;
}

int merge_new(sqlite3 *db, struct merge **out, struct err *e)
{
	struct merge *m = mem_calloc(1, sizeof *m);

	*out = NULL;
	if (!m) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	if (schema_table_count() > MAX_TABLES) {
		mem_free(m);
		err_set(e, ERR_INVALID, "schema has too many tables for merge");
		return -1;
	}
	m->db = db;
	m->author_idx = -1;
	*out = m;
	return 0;
}

void merge_drop_bytes(struct merge *m) { m->drop_bytes = 1; }

void merge_free(struct merge *m)
{
	size_t i, j;

	if (!m)
		return;
	sqlite3_finalize(m->get_applied);
	sqlite3_finalize(m->put_applied);
	sqlite3_finalize(m->get_dev);
	sqlite3_finalize(m->put_dev);
	sqlite3_finalize(m->dev_key);
	sqlite3_finalize(m->get_meta);
	sqlite3_finalize(m->put_meta);
	sqlite3_finalize(m->put_conflict);
	for (i = 0; i < MAX_TABLES; i++) {
		struct table_stmts *ts = &m->tables[i];

		sqlite3_finalize(ts->select_row);
		sqlite3_finalize(ts->insert_row);
		sqlite3_finalize(ts->delete_row);
		for (j = 0; j < MAX_COLS; j++)
			sqlite3_finalize(ts->update_col[j]);
	}
	mem_free(m);
}

static size_t table_index(const struct schema_table *t)
{
	size_t i;

	for (i = 0; i < schema_table_count(); i++)
		if (schema_table_at(i) == t)
			return i;
	return 0;
}

/* ---- validation (no database) ---- */

static int value_is_text(sqlite3_value *v)
{
	return v && sqlite3_value_type(v) == SQLITE_TEXT;
}

/* Checks a value from a changeset against its column: right storage type,
 * and already in the canonical form schema validation would produce. */
static int check_value(const struct schema_table *t,
		       const struct schema_column *c, sqlite3_value *v,
		       struct err *e)
{
	struct schema_value sv = {SCHEMA_VALUE_NULL, 0, NULL};
	char msg[256], num[32];
	const char *text;
	size_t len;
	int type = sqlite3_value_type(v), ok = 0;

	if (type == SQLITE_NULL) {
		if (!c->required)
			return 0;
		err_set(e, ERR_INVALID, "change set leaves required column "
			"%s.%s empty", t->name, c->name);
		return -1;
	}
	if (c->type == SCHEMA_INT) {
		if (type != SQLITE_INTEGER)
			goto bad;
		snprintf(num, sizeof num, "%lld",
			 (long long)sqlite3_value_int64(v));
		text = num;
		len = strlen(num);
	} else {
		if (type != SQLITE_TEXT)
			goto bad;
		text = (const char *)sqlite3_value_text(v);
		len = (size_t)sqlite3_value_bytes(v);
	}
	if (schema_parse_value_n(t, c, text, len, &sv, msg, sizeof msg)) {
		err_set(e, ERR_INVALID, "change set holds an invalid value: %s",
			msg);
		return -1;
	}
	ok = c->type == SCHEMA_INT ? sv.kind == SCHEMA_VALUE_INT
		: (sv.kind == SCHEMA_VALUE_TEXT && strlen(sv.text) == len &&
		   memcmp(sv.text, text, len) == 0);
	schema_value_clear(&sv);
	if (ok)
		return 0;
bad:
	err_set(e, ERR_INVALID, "change set holds a value of the wrong type or "
		"form in %s.%s", t->name, c->name);
	return -1;
}

/* Decodes the current operation of `it` into op, checking its shape. */
static int read_op(sqlite3_changeset_iter *it, const char *scope,
		   struct row_op *op, struct err *e)
{
	const char *tname;
	unsigned char *pk;
	int ncol, kind, indirect, npk, i;
	sqlite3_value **keyv;

	memset(op, 0, sizeof *op);
	if (sqlite3changeset_op(it, &tname, &ncol, &kind, &indirect) ||
	    sqlite3changeset_pk(it, &pk, &npk)) {
		err_set(e, ERR_INVALID, "change set body is malformed");
		return -1;
	}
	op->t = schema_table_find(tname);
	if (!op->t) {
		err_set(e, ERR_INVALID, "change set writes unknown table '%.64s'",
			tname);
		return -1;
	}
	if (ncol != (int)op->t->ncolumns + 2 || ncol > MAX_COLS + 2) {
		err_set(e, ERR_INVALID, "change set has %d columns for table %s",
			ncol, op->t->name);
		return -1;
	}
	for (i = 0; i < ncol; i++) {
		if ((pk[i] != 0) != (i < 2)) {
			err_set(e, ERR_INVALID, "change set keys table %s "
				"by the wrong columns", op->t->name);
			return -1;
		}
	}
	op->tidx = table_index(op->t);
	op->op = kind;
	for (i = 0; i < ncol; i++) {
		if (kind != SQLITE_DELETE)
			sqlite3changeset_new(it, i, &op->newv[i]);
		if (kind != SQLITE_INSERT)
			sqlite3changeset_old(it, i, &op->oldv[i]);
	}
	keyv = kind == SQLITE_INSERT ? op->newv : op->oldv;
	if (!value_is_text(keyv[0]) || !value_is_text(keyv[1])) {
		err_set(e, ERR_INVALID, "change set row in %s lacks its keys",
			op->t->name);
		return -1;
	}
	op->id = (const char *)sqlite3_value_text(keyv[0]);
	op->branch_id = (const char *)sqlite3_value_text(keyv[1]);
	if (!schema_id_valid(op->id) || strcmp(op->branch_id, scope) != 0 ||
	    (op->t->scope_is_id && strcmp(op->id, op->branch_id) != 0)) {
		err_set(e, ERR_INVALID, "change set for scope %s writes row %.64s "
			"of %s outside it", scope, op->id, op->t->name);
		return -1;
	}
	return 0;
}

static int check_op_values(const struct row_op *op, struct err *e)
{
	size_t i;

	for (i = 0; i < op->t->ncolumns; i++) {
		sqlite3_value *v = op->newv[i + 2];

		if (op->op == SQLITE_DELETE)
			break;
		/* An UPDATE carries only the columns it changed. */
		if (!v && op->op == SQLITE_UPDATE)
			continue;
		if (!v || check_value(op->t, &op->t->columns[i], v, e))
			return v ? -1 : (err_set(e, ERR_INVALID,
				"change set insert lacks a column of %s",
				op->t->name), -1);
	}
	return 0;
}

int merge_check(const struct changeset *cs, struct err *e)
{
	sqlite3_changeset_iter *it = NULL;
	struct row_op op;
	int rc = -1, step, rows = 0;

	/* SQLite's iterator must only see bodies that walk cleanly */
	if (cs->body_len > CHANGESET_MAX_BODY ||
	    csbody_check(cs->body, cs->body_len, e))
		return -1;
	if (sqlite3changeset_start(&it, (int)cs->body_len,
				   (void *)cs->body) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "change set body is malformed");
		return -1;
	}
	while ((step = sqlite3changeset_next(it)) == SQLITE_ROW) {
		if (read_op(it, cs->env.scope, &op, e) ||
		    check_op_values(&op, e))
			goto cleanup;
		rows++;
	}
	if (step != SQLITE_DONE) {
		err_set(e, ERR_INVALID, "change set body is malformed");
		goto cleanup;
	}
	if (rows == 0) {
		err_set(e, ERR_INVALID, "change set body holds no rows");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (sqlite3changeset_finalize(it) != SQLITE_OK && rc == 0) {
		err_set(e, ERR_INVALID, "change set body is malformed");
		rc = -1;
	}
	return rc;
}

/* ---- clocks and devices ---- */

static void clock_get(const uint8_t *clocks, size_t col, uint64_t *hlc,
		      int64_t *dev)
{
	const uint8_t *p = clocks + col * CLOCK_BYTES;
	uint64_t h = 0;
	uint32_t d = 0;
	int i;

	for (i = 0; i < 8; i++)
		h = (h << 8) | p[i];
	for (i = 8; i < 12; i++)
		d = (d << 8) | p[i];
	*hlc = h;
	*dev = d;
}

static void clock_set(uint8_t *clocks, size_t col, uint64_t hlc, int64_t dev)
{
	uint8_t *p = clocks + col * CLOCK_BYTES;
	int i;

	for (i = 7; i >= 0; i--, hlc >>= 8)
		p[i] = (uint8_t)hlc;
	for (i = 11; i >= 8; i--, dev >>= 8)
		p[i] = (uint8_t)dev;
}

/* The local index of the current author, creating it on first sight. */
static int author_index(struct merge *m, const uint8_t *key, struct err *e)
{
	if (m->author_idx >= 0 && memcmp(m->author, key, SIGN_PUBLIC_BYTES) == 0)
		return 0;
	if (prep(m, &m->get_dev, "SELECT idx FROM bs_devices WHERE key=?1", e))
		return -1;
	sqlite3_bind_blob(m->get_dev, 1, key, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	if (sqlite3_step(m->get_dev) == SQLITE_ROW) {
		m->author_idx = sqlite3_column_int64(m->get_dev, 0);
	} else {
		if (prep(m, &m->put_dev, "INSERT INTO bs_devices(key) VALUES(?1)",
			 e))
			return -1;
		sqlite3_bind_blob(m->put_dev, 1, key, SIGN_PUBLIC_BYTES,
				  SQLITE_STATIC);
		if (sqlite3_step(m->put_dev) != SQLITE_DONE)
			return db_fail(m, e);
		m->author_idx = sqlite3_last_insert_rowid(m->db);
	}
	sqlite3_reset(m->get_dev);
	memcpy(m->author, key, SIGN_PUBLIC_BYTES);
	return 0;
}

/* Copies the key of device `idx` into out (zeros if unknown). */
static int device_key(struct merge *m, int64_t idx, uint8_t *out,
		      struct err *e)
{
	memset(out, 0, SIGN_PUBLIC_BYTES);
	if (idx == m->author_idx) {
		memcpy(out, m->author, SIGN_PUBLIC_BYTES);
		return 0;
	}
	if (prep(m, &m->dev_key, "SELECT key FROM bs_devices WHERE idx=?1", e))
		return -1;
	sqlite3_bind_int64(m->dev_key, 1, idx);
	if (sqlite3_step(m->dev_key) == SQLITE_ROW &&
	    sqlite3_column_bytes(m->dev_key, 0) == SIGN_PUBLIC_BYTES)
		memcpy(out, sqlite3_column_blob(m->dev_key, 0),
		       SIGN_PUBLIC_BYTES);
	sqlite3_reset(m->dev_key);
	return 0;
}

/* >0 if the write (hlc, author) beats the cell's holder, 0 if it is the
 * same write, <0 if it loses. */
static int clock_cmp(struct merge *m, uint64_t hlc, uint64_t cell_hlc,
		     int64_t cell_dev, struct err *e, int *failed)
{
	uint8_t key[SIGN_PUBLIC_BYTES];

	if (cell_hlc == 0)
		return 1;
	if (hlc != cell_hlc)
		return hlc > cell_hlc ? 1 : -1;
	if (cell_dev == m->author_idx)
		return 0;
	if (device_key(m, cell_dev, key, e)) {
		*failed = 1;
		return 0;
	}
	return memcmp(m->author, key, SIGN_PUBLIC_BYTES);
}

/* ---- row metadata ---- */

static int meta_load(struct merge *m, struct row_op *op, struct err *e)
{
	if (prep(m, &m->get_meta,
		 "SELECT clocks, del_hlc, del_dev FROM bs_rows"
		 " WHERE tbl=?1 AND row_id=?2 AND branch_id=?3", e))
		return -1;
	sqlite3_bind_text(m->get_meta, 1, op->t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(m->get_meta, 2, op->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(m->get_meta, 3, op->branch_id, -1, SQLITE_STATIC);
	memset(op->clocks, 0, sizeof op->clocks);
	if (sqlite3_step(m->get_meta) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(m->get_meta, 0);

		op->has_meta = 1;
		if (n > sizeof op->clocks)
			n = sizeof op->clocks;
		memcpy(op->clocks, sqlite3_column_blob(m->get_meta, 0), n);
		op->deleted = sqlite3_column_type(m->get_meta, 1) != SQLITE_NULL;
		op->del_hlc = sqlite3_column_int64(m->get_meta, 1);
		op->del_dev = sqlite3_column_int64(m->get_meta, 2);
	}
	sqlite3_reset(m->get_meta);
	return 0;
}

static int meta_store(struct merge *m, const struct row_op *op,
		      struct err *e)
{
	if (prep(m, &m->put_meta,
		 "INSERT INTO bs_rows(tbl, row_id, branch_id, clocks, del_hlc,"
		 " del_dev) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
		 " ON CONFLICT(tbl, row_id, branch_id) DO UPDATE SET"
		 " clocks=excluded.clocks, del_hlc=excluded.del_hlc,"
		 " del_dev=excluded.del_dev", e))
		return -1;
	sqlite3_bind_text(m->put_meta, 1, op->t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(m->put_meta, 2, op->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(m->put_meta, 3, op->branch_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(m->put_meta, 4, op->clocks,
			  (int)(op->t->ncolumns * CLOCK_BYTES), SQLITE_STATIC);
	if (op->deleted) {
		sqlite3_bind_int64(m->put_meta, 5, op->del_hlc);
		sqlite3_bind_int64(m->put_meta, 6, op->del_dev);
	}
	if (sqlite3_step(m->put_meta) != SQLITE_DONE)
		return db_fail(m, e);
	return 0;
}

int merge_is_deleted(struct merge *m, const char *tbl, const char *id,
		     const char *branch_id, struct err *e)
{
	struct row_op op;

	memset(&op, 0, sizeof op);
	op.t = schema_table_find(tbl);
	if (!op.t)
		return 0;
	op.id = id;
	op.branch_id = branch_id;
	if (meta_load(m, &op, e))
		return -1;
	return op.deleted;
}

/* ---- record rows ---- */

/* Appends `"name"` to b; names come only from the schema. */
static void sql_name(struct buf *b, const char *name)
{
	buf_append_u8(b, '"');
	buf_append(b, name, strlen(name));
	buf_append_u8(b, '"');
}

static void sql_text(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

static int prep_built(struct merge *m, sqlite3_stmt **st, struct buf *b,
		      struct err *e)
{
	int rc;

	buf_append_u8(b, 0);
	if (b->status) {
		buf_release(b);
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	rc = prep(m, st, (const char *)b->data, e);
	buf_release(b);
	return rc;
}

static sqlite3_stmt *stmt_select_row(struct merge *m, const struct row_op *op,
				     struct err *e)
{
	struct table_stmts *ts = &m->tables[op->tidx];
	struct buf b;
	size_t i;

	if (ts->select_row) {
		sqlite3_reset(ts->select_row);
		return ts->select_row;
	}
	buf_init(&b, 4096);
	sql_text(&b, "SELECT 1");
	for (i = 0; i < op->t->ncolumns; i++) {
		sql_text(&b, ", ");
		sql_name(&b, op->t->columns[i].name);
	}
	sql_text(&b, " FROM ");
	sql_name(&b, op->t->name);
	sql_text(&b, " WHERE id=?1 AND branch_id=?2");
	return prep_built(m, &ts->select_row, &b, e) ? NULL : ts->select_row;
}

static sqlite3_stmt *stmt_insert_row(struct merge *m, const struct row_op *op,
				     struct err *e)
{
	struct table_stmts *ts = &m->tables[op->tidx];
	struct buf b;
	size_t i;
	char num[16];

	if (ts->insert_row) {
		sqlite3_reset(ts->insert_row);
		sqlite3_clear_bindings(ts->insert_row);
		return ts->insert_row;
	}
	buf_init(&b, 4096);
	sql_text(&b, "INSERT INTO ");
	sql_name(&b, op->t->name);
	sql_text(&b, "(id, branch_id");
	for (i = 0; i < op->t->ncolumns; i++) {
		sql_text(&b, ", ");
		sql_name(&b, op->t->columns[i].name);
	}
	sql_text(&b, ") VALUES(?1, ?2");
	for (i = 0; i < op->t->ncolumns; i++) {
		snprintf(num, sizeof num, ", ?%zu", i + 3);
		sql_text(&b, num);
	}
	sql_text(&b, ")");
	return prep_built(m, &ts->insert_row, &b, e) ? NULL : ts->insert_row;
}

static sqlite3_stmt *stmt_update_col(struct merge *m, const struct row_op *op,
				     size_t col, struct err *e)
{
	struct table_stmts *ts = &m->tables[op->tidx];
	struct buf b;

	if (ts->update_col[col]) {
		sqlite3_reset(ts->update_col[col]);
		sqlite3_clear_bindings(ts->update_col[col]);
		return ts->update_col[col];
	}
	buf_init(&b, 4096);
	sql_text(&b, "UPDATE ");
	sql_name(&b, op->t->name);
	sql_text(&b, " SET ");
	sql_name(&b, op->t->columns[col].name);
	sql_text(&b, "=?3 WHERE id=?1 AND branch_id=?2");
	return prep_built(m, &ts->update_col[col], &b, e)
		? NULL : ts->update_col[col];
}

static sqlite3_stmt *stmt_delete_row(struct merge *m, const struct row_op *op,
				     struct err *e)
{
	struct table_stmts *ts = &m->tables[op->tidx];
	struct buf b;

	if (ts->delete_row) {
		sqlite3_reset(ts->delete_row);
		return ts->delete_row;
	}
	buf_init(&b, 4096);
	sql_text(&b, "DELETE FROM ");
	sql_name(&b, op->t->name);
	sql_text(&b, " WHERE id=?1 AND branch_id=?2");
	return prep_built(m, &ts->delete_row, &b, e) ? NULL : ts->delete_row;
}

static void bind_keys(sqlite3_stmt *st, const struct row_op *op)
{
	sqlite3_bind_text(st, 1, op->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op->branch_id, -1, SQLITE_STATIC);
}

static int values_equal(sqlite3_value *a, sqlite3_value *b)
{
	int ta = a ? sqlite3_value_type(a) : SQLITE_NULL;
	int tb = b ? sqlite3_value_type(b) : SQLITE_NULL;

	if (ta != tb)
		return 0;
	switch (ta) {
	case SQLITE_NULL:
		return 1;
	case SQLITE_INTEGER:
		return sqlite3_value_int64(a) == sqlite3_value_int64(b);
	case SQLITE_FLOAT:
		return sqlite3_value_double(a) == sqlite3_value_double(b);
	default:
		return sqlite3_value_bytes(a) == sqlite3_value_bytes(b) &&
		       memcmp(sqlite3_value_blob(a), sqlite3_value_blob(b),
			      (size_t)sqlite3_value_bytes(a)) == 0;
	}
}

/* ---- conflicts ---- */

struct conflict {
	const char *col;
	const char *kind;
	sqlite3_value *kept, *lost;
	uint64_t kept_hlc, lost_hlc;
	const uint8_t *kept_dev, *lost_dev;
};

static int conflict_record(struct merge *m, const struct row_op *op,
			   const struct changeset *cs,
			   const struct conflict *c, struct merge_stats *stats,
			   struct err *e)
{
	sqlite3_stmt *st;

	if (prep(m, &m->put_conflict,
		 "INSERT OR IGNORE INTO bs_conflicts(tbl, row_id, branch_id, col,"
		 " kind, kept_value, kept_hlc, kept_device, lost_value, lost_hlc,"
		 " lost_device, changeset) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
		 " ?9, ?10, ?11, ?12)", e))
		return -1;
	st = m->put_conflict;
	sqlite3_bind_text(st, 1, op->t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, op->branch_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c->col, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->kind, -1, SQLITE_STATIC);
	if (c->kept)
		sqlite3_bind_value(st, 6, c->kept);
	sqlite3_bind_int64(st, 7, (int64_t)c->kept_hlc);
	sqlite3_bind_blob(st, 8, c->kept_dev, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	if (c->lost)
		sqlite3_bind_value(st, 9, c->lost);
	sqlite3_bind_int64(st, 10, (int64_t)c->lost_hlc);
	sqlite3_bind_blob(st, 11, c->lost_dev, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(st, 12, cs->id, HASH_BYTES, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_fail(m, e);
	if (sqlite3_changes(m->db) > 0)
		stats->conflicts++;
	return 0;
}

/* ---- applying one row operation ---- */

/* A write reaching a deleted row: the delete stands; keep the write as a
 * conflict so nobody's work vanishes unseen. */
static int apply_to_tombstone(struct merge *m, struct row_op *op,
			      const struct changeset *cs,
			      struct merge_stats *stats, struct err *e)
{
	uint8_t del_key[SIGN_PUBLIC_BYTES];
	size_t i;
	int failed = 0;

	if (op->op == SQLITE_DELETE) {
		/* the later of two deletes is the one remembered */
		if (clock_cmp(m, cs->env.hlc, (uint64_t)op->del_hlc, op->del_dev,
			      e, &failed) > 0) {
			op->del_hlc = (int64_t)cs->env.hlc;
			op->del_dev = m->author_idx;
			return meta_store(m, op, e);
		}
		return failed ? -1 : 0;
	}
	if (device_key(m, op->del_dev, del_key, e))
		return -1;
	for (i = 0; i < op->t->ncolumns; i++) {
		struct conflict c = {op->t->columns[i].name, "write-after-delete",
				     NULL, op->newv[i + 2],
				     (uint64_t)op->del_hlc, cs->env.hlc,
				     del_key, cs->env.author};

		if (!op->newv[i + 2])
			continue;
		stats->cells_lost++;
		if (conflict_record(m, op, cs, &c, stats, e))
			return -1;
	}
	return 0;
}

static int apply_delete(struct merge *m, struct row_op *op,
			const struct changeset *cs, sqlite3_stmt *cur,
			struct merge_stats *stats, struct err *e)
{
	sqlite3_stmt *st;
	size_t i;

	/* Columns the deleter saw with other values were edited concurrently:
	 * those edits go with the row, and people should know. */
	for (i = 0; cur && i < op->t->ncolumns; i++) {
		uint64_t h;
		int64_t d;
		uint8_t key[SIGN_PUBLIC_BYTES];
		sqlite3_value *now = sqlite3_column_value(cur, (int)i + 1);

		clock_get(op->clocks, i, &h, &d);
		if (h == 0 || values_equal(op->oldv[i + 2], now))
			continue;
		if (device_key(m, d, key, e))
			return -1;
		{
			struct conflict c = {op->t->columns[i].name,
					     "edit-deleted", NULL, now,
					     cs->env.hlc, h, cs->env.author, key};
			if (conflict_record(m, op, cs, &c, stats, e))
				return -1;
		}
	}
	if (cur)
		sqlite3_reset(cur);
	st = stmt_delete_row(m, op, e);
	if (!st)
		return -1;
	bind_keys(st, op);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_fail(m, e);
	op->deleted = 1;
	op->del_hlc = (int64_t)cs->env.hlc;
	op->del_dev = m->author_idx;
	return meta_store(m, op, e);
}

/* Decides, column by column, which cells this write wins; records
 * conflicts. won[i] is set for the columns to write. */
static int decide_cells(struct merge *m, struct row_op *op,
			const struct changeset *cs, sqlite3_stmt *cur,
			int *won, struct merge_stats *stats, struct err *e)
{
	size_t i;
	int failed = 0;

	for (i = 0; i < op->t->ncolumns; i++) {
		uint64_t h;
		int64_t d;
		int cmp;
		sqlite3_value *now;

		won[i] = 0;
		if (!op->newv[i + 2])
			continue;
		clock_get(op->clocks, i, &h, &d);
		cmp = clock_cmp(m, cs->env.hlc, h, d, e, &failed);
		if (failed)
			return -1;
		now = cur ? sqlite3_column_value(cur, (int)i + 1) : NULL;
		if (cmp > 0) {
			won[i] = 1;
			stats->cells_won++;
		} else if (cmp < 0) {
			stats->cells_lost++;
		}
		if (cmp != 0 && op->op == SQLITE_UPDATE && h != 0 && cur &&
		    !values_equal(op->oldv[i + 2], now)) {
			uint8_t key[SIGN_PUBLIC_BYTES];
			struct conflict c = {op->t->columns[i].name, "concurrent",
					     NULL, NULL, 0, 0, NULL, NULL};

			if (device_key(m, d, key, e))
				return -1;
			if (cmp > 0) {
				c.kept = op->newv[i + 2];
				c.kept_hlc = cs->env.hlc;
				c.kept_dev = cs->env.author;
				c.lost = now;
				c.lost_hlc = h;
				c.lost_dev = key;
			} else {
				c.kept = now;
				c.kept_hlc = h;
				c.kept_dev = key;
				c.lost = op->newv[i + 2];
				c.lost_hlc = cs->env.hlc;
				c.lost_dev = cs->env.author;
			}
			if (conflict_record(m, op, cs, &c, stats, e))
				return -1;
		}
		if (won[i])
			clock_set(op->clocks, i, cs->env.hlc, m->author_idx);
	}
	return 0;
}

static int write_cells(struct merge *m, struct row_op *op, int exists,
		       const int *won, struct err *e)
{
	sqlite3_stmt *st;
	size_t i;

	if (!exists) {
		/* Even an UPDATE can arrive before its row's INSERT (another
		 * order of the same sets): create the row from what we have,
		 * the INSERT fills the rest when it comes. */
		st = stmt_insert_row(m, op, e);
		if (!st)
			return -1;
		bind_keys(st, op);
		for (i = 0; i < op->t->ncolumns; i++)
			if (won[i])
				sqlite3_bind_value(st, (int)i + 3, op->newv[i + 2]);
		return sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(m, e);
	}
	for (i = 0; i < op->t->ncolumns; i++) {
		if (!won[i])
			continue;
		st = stmt_update_col(m, op, i, e);
		if (!st)
			return -1;
		bind_keys(st, op);
		sqlite3_bind_value(st, 3, op->newv[i + 2]);
		if (sqlite3_step(st) != SQLITE_DONE)
			return db_fail(m, e);
	}
	return 0;
}

static int apply_op(struct merge *m, struct row_op *op,
		    const struct changeset *cs, struct merge_stats *stats,
		    struct err *e)
{
	sqlite3_stmt *cur;
	int won[MAX_COLS], exists, rc = -1, step;

	if (meta_load(m, op, e))
		return -1;
	if (op->deleted)
		return apply_to_tombstone(m, op, cs, stats, e);
	if (!op->has_meta) {
		/* every row written through capture or merge has its clocks,
		 * so without them there is no row to read: the common case of
		 * a first insert costs no SELECT */
		if (op->op == SQLITE_DELETE)
			return apply_delete(m, op, cs, NULL, stats, e);
		if (decide_cells(m, op, cs, NULL, won, stats, e) ||
		    write_cells(m, op, 0, won, e) || meta_store(m, op, e))
			return -1;
		return 0;
	}
	cur = stmt_select_row(m, op, e);
	if (!cur)
		return -1;
	bind_keys(cur, op);
	step = sqlite3_step(cur);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		db_fail(m, e);
		goto cleanup;
	}
	exists = step == SQLITE_ROW;
	if (op->op == SQLITE_DELETE) {
		rc = apply_delete(m, op, cs, exists ? cur : NULL, stats, e);
		goto cleanup;
	}
	if (decide_cells(m, op, cs, exists ? cur : NULL, won, stats, e))
		goto cleanup;
	sqlite3_reset(cur);
	if (write_cells(m, op, exists, won, e) || meta_store(m, op, e))
		goto cleanup;
	rc = 0;
cleanup:
	sqlite3_reset(cur);
	return rc;
}

/* ---- change sets ---- */

static int applied_before(struct merge *m, const struct changeset *cs,
			  int *found, struct err *e)
{
	if (prep(m, &m->get_applied, "SELECT 1 FROM bs_applied WHERE id=?1", e))
		return -1;
	sqlite3_bind_blob(m->get_applied, 1, cs->id, HASH_BYTES, SQLITE_STATIC);
	*found = sqlite3_step(m->get_applied) == SQLITE_ROW;
	sqlite3_reset(m->get_applied);
	return 0;
}

static int mark_applied(struct merge *m, const struct changeset *cs,
			int keep_bytes, struct err *e)
{
	sqlite3_stmt *st;

	if (prep(m, &m->put_applied,
		 "INSERT INTO bs_applied(id, author, seq, scope, hlc, bytes)"
		 " VALUES(?1, ?2, ?3, ?4, ?5, ?6)", e))
		return -1;
	st = m->put_applied;
	sqlite3_bind_blob(st, 1, cs->id, HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, cs->env.author, SIGN_PUBLIC_BYTES,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)cs->env.seq);
	sqlite3_bind_text(st, 4, cs->env.scope, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)cs->env.hlc);
	if (keep_bytes)
		sqlite3_bind_blob64(st, 6, cs->env_bytes, cs->encoded_len,
				    SQLITE_STATIC);
	return sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(m, e);
}

int merge_apply(struct merge *m, const struct changeset *cs, int *applied,
		struct merge_stats *stats, struct err *e)
{
	sqlite3_changeset_iter *it = NULL;
	struct row_op op;
	int found = 0, rc = -1, step;

	*applied = 0;
	if (applied_before(m, cs, &found, e))
		return -1;
	if (found) {
		stats->duplicates++;
		return 0;
	}
	if (merge_check(cs, e) || author_index(m, cs->env.author, e))
		return -1;
	if (sqlite3changeset_start(&it, (int)cs->body_len,
				   (void *)cs->body) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "change set body is malformed");
		return -1;
	}
	while ((step = sqlite3changeset_next(it)) == SQLITE_ROW) {
		stats->rows++;
		if (read_op(it, cs->env.scope, &op, e) ||
		    apply_op(m, &op, cs, stats, e))
			goto cleanup;
	}
	if (step != SQLITE_DONE || mark_applied(m, cs, !m->drop_bytes, e))
		goto cleanup;
	stats->changesets++;
	*applied = 1;
	rc = 0;
cleanup:
	sqlite3changeset_finalize(it);
	if (rc && e->kind == ERR_OK)
		err_set(e, ERR_INVALID, "change set body is malformed");
	return rc;
}

/* The values are in the tables already; only the clocks need recording. */
static int record_local_op(struct merge *m, struct row_op *op,
			   const struct changeset *cs, struct err *e)
{
	size_t i;

	/* a local INSERT has no clocks yet (merge_clock_floor refused it if
	 * the key were a tombstone): no need to read them */
	if (op->op != SQLITE_INSERT && meta_load(m, op, e))
		return -1;
	if (op->op == SQLITE_DELETE) {
		op->deleted = 1;
		op->del_hlc = (int64_t)cs->env.hlc;
		op->del_dev = m->author_idx;
	} else {
		for (i = 0; i < op->t->ncolumns; i++)
			if (op->op == SQLITE_INSERT || op->newv[i + 2])
				clock_set(op->clocks, i, cs->env.hlc,
					  m->author_idx);
	}
	return meta_store(m, op, e);
}

/* 1 if table t holds any tombstone (asked once per table per capture, so
 * that inserts into a table without deletes need no lookup each). */
static int table_has_tombstones(struct merge *m, const struct schema_table *t,
				struct err *e)
{
	sqlite3_stmt *st = NULL;
	int found;

	if (sqlite3_prepare_v2(m->db, "SELECT 1 FROM bs_rows INDEXED BY"
			       " bs_rows_tombstones WHERE tbl=?1 AND"
			       " del_hlc IS NOT NULL LIMIT 1", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(m, e);
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

/* The scope every row shares; refuses a body that spans two. */
static int same_scope(const struct row_op *op, char *scope, struct err *e)
{
	if (!changeset_scope_valid(op->branch_id, strlen(op->branch_id))) {
		err_set(e, ERR_INVALID, "a row in %s has no valid branch_id",
			op->t->name);
		return -1;
	}
	if (scope[0] && strcmp(scope, op->branch_id) != 0) {
		err_set(e, ERR_INVALID, "one write may touch one branch only, "
			"but this one touches %s and %s; write each branch "
			"separately", scope, op->branch_id);
		return -1;
	}
	strcpy(scope, op->branch_id);
	return 0;
}

int merge_clock_floor(struct merge *m, const uint8_t *body, size_t len,
		      uint64_t *floor, char scope[CHANGESET_SCOPE_MAX + 1],
		      struct err *e)
{
	sqlite3_changeset_iter *it = NULL;
	struct row_op op;
	int tombs[MAX_TABLES], rc = -1, step;
	size_t i;

	*floor = 0;
	scope[0] = '\0';
	for (i = 0; i < MAX_TABLES; i++)
		tombs[i] = -1;
	if (sqlite3changeset_start(&it, (int)len, (void *)body) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "captured change set is malformed");
		return -1;
	}
	while ((step = sqlite3changeset_next(it)) == SQLITE_ROW) {
		const char *tname;
		int ncol, kind, ind;
		sqlite3_value *key[2] = {NULL, NULL};

		memset(&op, 0, sizeof op);
		sqlite3changeset_op(it, &tname, &ncol, &kind, &ind);
		op.t = schema_table_find(tname);
		for (i = 0; i < 2; i++) {
			if (kind == SQLITE_INSERT)
				sqlite3changeset_new(it, (int)i, &key[i]);
			else
				sqlite3changeset_old(it, (int)i, &key[i]);
		}
		if (!op.t || !value_is_text(key[0]) || !value_is_text(key[1])) {
			err_set(e, ERR_INVALID, "captured a row without its keys");
			goto cleanup;
		}
		op.id = (const char *)sqlite3_value_text(key[0]);
		op.branch_id = (const char *)sqlite3_value_text(key[1]);
		if (same_scope(&op, scope, e))
			goto cleanup;
		if (kind == SQLITE_INSERT) {
			size_t ti = table_index(op.t);

			/* a new row has no clocks; only a tombstone matters */
			if (tombs[ti] < 0 &&
			    (tombs[ti] = table_has_tombstones(m, op.t, e)) < 0)
				goto cleanup;
			if (!tombs[ti])
				continue;
		}
		if (meta_load(m, &op, e))
			goto cleanup;
		if (op.deleted) {
			err_set(e, ERR_INVALID, "record %s in %s was deleted and "
				"cannot be written again; create a new record",
				op.id, op.t->name);
			goto cleanup;
		}
		for (i = 0; i < op.t->ncolumns; i++) {
			uint64_t h;
			int64_t d;
			sqlite3_value *v = NULL;

			if (kind == SQLITE_UPDATE &&
			    (sqlite3changeset_new(it, (int)i + 2, &v) ||
			     !v))
				continue;
			clock_get(op.clocks, i, &h, &d);
			if (h > *floor)
				*floor = h;
		}
	}
	rc = step == SQLITE_DONE ? 0 : -1;
cleanup:
	sqlite3changeset_finalize(it);
	if (rc && e->kind == ERR_OK)
		err_set(e, ERR_INVALID, "captured change set is malformed");
	return rc;
}

int merge_record_local(struct merge *m, const struct changeset *cs,
		       struct err *e)
{
	sqlite3_changeset_iter *it = NULL;
	struct row_op op;
	int rc = -1, step;

	if (author_index(m, cs->env.author, e))
		return -1;
	if (sqlite3changeset_start(&it, (int)cs->body_len,
				   (void *)cs->body) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "captured change set is malformed");
		return -1;
	}
	while ((step = sqlite3changeset_next(it)) == SQLITE_ROW) {
		if (read_op(it, cs->env.scope, &op, e) ||
		    record_local_op(m, &op, cs, e))
			goto cleanup;
	}
	if (step != SQLITE_DONE || mark_applied(m, cs, 0, e))
		goto cleanup;
	rc = 0;
cleanup:
	sqlite3changeset_finalize(it);
	if (rc && e->kind == ERR_OK)
		err_set(e, ERR_INVALID, "captured change set is malformed");
	return rc;
}
