/* merge.c - per-column last-writer-wins merge with permanent tombstones and
 * conflict records (rules: merge.h and docs/MERGE.md). Bodies are read with
 * the strict walker of csbody.h: one pass per use, values pointing into the
 * body. The clocks of a row are explicit in bs_rows.clocks (for each schema
 * column after id and branch_id, 12 bytes = u64be HLC of the write holding
 * the cell, 0: never written, and u32be local index of its author in
 * bs_devices), or, for a row nobody wrote since the change set that
 * inserted it, implicit (implicit.h): that change set's clock in every
 * cell. Explicit clocks always win. The local side (capture's clocks) is in
 * merge_local.c; what both share is in merge_int.h. */
#include "merge_int.h"

#include <stdio.h>
#include <string.h>

#include "mem.h"

int merge_prep(struct merge *m, sqlite3_stmt **st, const char *sql,
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
	*st = NULL;
	err_set(e, ERR_INVALID, "database error preparing merge: %s",
		sqlite3_errmsg(m->db));
	return -1;
}

int merge_db_fail(struct merge *m, struct err *e)
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
	if (schema_table_count() > MERGE_MAX_TABLES) {
		mem_free(m);
		err_set(e, ERR_INVALID, "schema has too many tables for merge");
		return -1;
	}
	m->db = db;
	m->author_idx = -1;
	if (implicit_new(db, &m->imp, e)) {
		mem_free(m);
		return -1;
	}
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
	sqlite3_finalize(m->any_tomb);
	for (i = 0; i < MERGE_MAX_TABLES; i++) {
		struct merge_table_stmts *ts = &m->tables[i];

		sqlite3_finalize(ts->select_row);
		sqlite3_finalize(ts->insert_row);
		sqlite3_finalize(ts->delete_row);
		sqlite3_finalize(ts->rowid_of);
		sqlite3_finalize(ts->new_rows);
		for (j = 0; j < MERGE_MAX_COLS; j++)
			sqlite3_finalize(ts->update_col[j]);
	}
	implicit_free(m->imp);
	merge_local_release(&m->local);
	mem_free(m);
}

size_t merge_table_index(const struct schema_table *t)
{
	size_t i;

	for (i = 0; i < schema_table_count(); i++)
		if (schema_table_at(i) == t)
			return i;
	return 0;
}

/* ---- reading operations (no database) ---- */

/* Copies a key field into out (at most SCHEMA_ID_MAX bytes and a NUL);
 * 1 if it was text that fits without a NUL byte inside. */
static int key_copy(const struct csbody_value *v, char *out, size_t *len)
{
	size_t n = v->n > SCHEMA_ID_MAX ? SCHEMA_ID_MAX : v->n;

	*len = 0;
	out[0] = '\0';
	if (v->type != CSBODY_TEXT)
		return 0;
	memcpy(out, v->p, n);
	out[n] = '\0';
	*len = n;
	return n == v->n && memchr(v->p, 0, v->n) == NULL;
}

int merge_op_keys(const struct csbody_op *cop, struct merge_op *op)
{
	const struct csbody_value *keyv;
	int ok;

	op->t = cop->t;
	op->tidx = merge_table_index(cop->t);
	op->op = (int)cop->kind;
	op->newv = cop->newv;
	op->oldv = cop->oldv;
	op->has_meta = op->deleted = 0;
	op->del_hlc = op->del_dev = 0;
	keyv = cop->kind == CSBODY_INSERT ? cop->newv : cop->oldv;
	ok = key_copy(&keyv[0], op->id, &op->id_len);
	ok &= key_copy(&keyv[1], op->branch_id, &op->branch_len);
	return ok;
}

void merge_op_hash(struct merge_op *op)
{
	implicit_key_hash(op->id, op->id_len, op->branch_id, op->branch_len,
			  op->hash);
}

/* Checks the shape of an operation of a body signed for `scope` and reads
 * its keys into op. */
static int read_op(const struct csbody_op *cop, const char *scope,
		   struct merge_op *op, struct err *e)
{
	const struct schema_table *t = cop->t;
	const struct csbody_value *keyv;
	int keys_ok;

	if (cop->ncol != t->ncolumns + 2 || cop->ncol > MERGE_MAX_COLS + 2) {
		err_set(e, ERR_INVALID, "change set has %zu columns for table %s",
			cop->ncol, t->name);
		return -1;
	}
	keyv = cop->kind == CSBODY_INSERT ? cop->newv : cop->oldv;
	if (keyv[0].type != CSBODY_TEXT || keyv[1].type != CSBODY_TEXT) {
		err_set(e, ERR_INVALID, "change set row in %s lacks its keys",
			t->name);
		return -1;
	}
	keys_ok = merge_op_keys(cop, op);
	if (!keys_ok || !schema_id_valid(op->id) ||
	    strcmp(op->branch_id, scope) != 0 ||
	    (t->scope_is_id && strcmp(op->id, op->branch_id) != 0)) {
		err_set(e, ERR_INVALID, "change set for scope %s writes row %.64s "
			"of %s outside it", scope, op->id, t->name);
		return -1;
	}
	return 0;
}

/* Checks a value from a changeset against its column: right storage type,
 * and already in the canonical form schema validation would produce. */
static int check_value(const struct schema_table *t,
		       const struct schema_column *c,
		       const struct csbody_value *v, struct err *e)
{
	struct schema_value sv = {SCHEMA_VALUE_NULL, 0, NULL};
	char msg[256], num[32];
	const char *text;
	size_t len;
	int ok = 0;

	if (v->type == CSBODY_NULL) {
		if (!c->required)
			return 0;
		err_set(e, ERR_INVALID, "change set leaves required column "
			"%s.%s empty", t->name, c->name);
		return -1;
	}
	if (c->type == SCHEMA_INT) {
		if (v->type != CSBODY_INTEGER)
			goto bad;
		snprintf(num, sizeof num, "%lld", (long long)v->i);
		text = num;
		len = strlen(num);
	} else {
		if (v->type != CSBODY_TEXT)
			goto bad;
		text = (const char *)v->p;
		len = v->n;
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

static int check_op_values(const struct merge_op *op, struct err *e)
{
	size_t i;

	if (op->op == CSBODY_DELETE)
		return 0;
	for (i = 0; i < op->t->ncolumns; i++) {
		const struct csbody_value *v = &op->newv[i + 2];

		/* An UPDATE carries only the columns it changed. */
		if (v->type == CSBODY_UNDEFINED) {
			if (op->op == CSBODY_UPDATE)
				continue;
			err_set(e, ERR_INVALID, "change set insert lacks a "
				"column of %s", op->t->name);
			return -1;
		}
		if (check_value(op->t, &op->t->columns[i], v, e))
			return -1;
	}
	return 0;
}

int merge_check(const struct changeset *cs, struct err *e)
{
	struct csbody_iter it;
	struct csbody_op cop;
	struct merge_op op;
	int step, rows = 0;

	if (cs->body_len > CHANGESET_MAX_BODY) {
		err_set(e, ERR_INVALID, "change set body is malformed");
		return -1;
	}
	csbody_start(&it, cs->body, cs->body_len, e);
	while ((step = csbody_next(&it, &cop)) == 1) {
		if (read_op(&cop, cs->env.scope, &op, e) ||
		    check_op_values(&op, e))
			return -1;
		rows++;
	}
	if (step < 0)
		return -1;
	if (rows == 0) {
		err_set(e, ERR_INVALID, "change set body holds no rows");
		return -1;
	}
	return 0;
}

/* ---- clocks and devices ---- */

void merge_clock_get(const uint8_t *clocks, size_t col, uint64_t *hlc,
		     int64_t *dev)
{
	const uint8_t *p = clocks + col * MERGE_CLOCK_BYTES;
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

void merge_clock_set(uint8_t *clocks, size_t col, uint64_t hlc, int64_t dev)
{
	uint8_t *p = clocks + col * MERGE_CLOCK_BYTES;
	int i;

	for (i = 7; i >= 0; i--, hlc >>= 8)
		p[i] = (uint8_t)hlc;
	for (i = 11; i >= 8; i--, dev >>= 8)
		p[i] = (uint8_t)dev;
}

void merge_clocks_fill(struct merge_op *op, uint64_t hlc, int64_t dev)
{
	size_t i;

	for (i = 0; i < op->t->ncolumns; i++)
		merge_clock_set(op->clocks, i, hlc, dev);
}

int merge_author_index(struct merge *m, const uint8_t *key, struct err *e)
{
	if (m->author_idx >= 0 && memcmp(m->author, key, SIGN_PUBLIC_BYTES) == 0)
		return 0;
	if (merge_prep(m, &m->get_dev, "SELECT idx FROM bs_devices WHERE key=?1",
		       e))
		return -1;
	sqlite3_bind_blob(m->get_dev, 1, key, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	if (sqlite3_step(m->get_dev) == SQLITE_ROW) {
		m->author_idx = sqlite3_column_int64(m->get_dev, 0);
	} else {
		if (merge_prep(m, &m->put_dev,
			       "INSERT INTO bs_devices(key) VALUES(?1)", e))
			return -1;
		sqlite3_bind_blob(m->put_dev, 1, key, SIGN_PUBLIC_BYTES,
				  SQLITE_STATIC);
		if (sqlite3_step(m->put_dev) != SQLITE_DONE)
			return merge_db_fail(m, e);
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
	if (merge_prep(m, &m->dev_key, "SELECT key FROM bs_devices WHERE idx=?1",
		       e))
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

int merge_meta_load(struct merge *m, struct merge_op *op, struct err *e)
{
	int step;

	if (merge_prep(m, &m->get_meta,
		       "SELECT clocks, del_hlc, del_dev FROM bs_rows"
		       " WHERE tbl=?1 AND row_id=?2 AND branch_id=?3", e))
		return -1;
	sqlite3_bind_text(m->get_meta, 1, op->t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(m->get_meta, 2, op->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(m->get_meta, 3, op->branch_id, -1, SQLITE_STATIC);
	memset(op->clocks, 0, sizeof op->clocks);
	op->has_meta = op->deleted = 0;
	op->del_hlc = op->del_dev = 0;
	step = sqlite3_step(m->get_meta);
	if (step == SQLITE_ROW) {
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
	return step == SQLITE_ROW || step == SQLITE_DONE ? 0
		: merge_db_fail(m, e);
}

int merge_meta_store(struct merge *m, const struct merge_op *op,
		     struct err *e)
{
	if (merge_prep(m, &m->put_meta,
		       "INSERT INTO bs_rows(tbl, row_id, branch_id, clocks,"
		       " del_hlc, del_dev) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
		       " ON CONFLICT(tbl, row_id, branch_id) DO UPDATE SET"
		       " clocks=excluded.clocks, del_hlc=excluded.del_hlc,"
		       " del_dev=excluded.del_dev", e))
		return -1;
	sqlite3_bind_text(m->put_meta, 1, op->t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(m->put_meta, 2, op->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(m->put_meta, 3, op->branch_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(m->put_meta, 4, op->clocks,
			  (int)(op->t->ncolumns * MERGE_CLOCK_BYTES),
			  SQLITE_STATIC);
	if (op->deleted) {
		sqlite3_bind_int64(m->put_meta, 5, op->del_hlc);
		sqlite3_bind_int64(m->put_meta, 6, op->del_dev);
	}
	if (sqlite3_step(m->put_meta) != SQLITE_DONE)
		return merge_db_fail(m, e);
	return 0;
}

int merge_implicit_load(struct merge *m, struct merge_op *op, int64_t rowid,
			int *found, struct err *e)
{
	uint64_t hlc = 0;
	int64_t dev = 0;

	merge_op_hash(op);
	if (implicit_find(m->imp, op->t, rowid, op->hash, found, &hlc, &dev,
			  e))
		return -1;
	if (!*found && implicit_search(m->imp, op->t,
				       (const uint8_t (*)[IMPLICIT_HASH_BYTES])
				       op->hash, 1, found, &hlc, &dev, e))
		return -1;
	if (*found)
		merge_clocks_fill(op, hlc, dev);
	return 0;
}

int merge_is_deleted(struct merge *m, const char *tbl, const char *id,
		     const char *branch_id, struct err *e)
{
	struct merge_op op;

	memset(&op, 0, sizeof op);
	op.t = schema_table_find(tbl);
	if (!op.t)
		return 0;
	snprintf(op.id, sizeof op.id, "%s", id);
	snprintf(op.branch_id, sizeof op.branch_id, "%s", branch_id);
	if (merge_meta_load(m, &op, e))
		return -1;
	return op.deleted;
}

int merge_table_has_tombstones(struct merge *m, const struct schema_table *t,
			       struct err *e)
{
	int step;

	if (merge_prep(m, &m->any_tomb, "SELECT 1 FROM bs_rows INDEXED BY"
		       " bs_rows_tombstones WHERE tbl=?1 AND"
		       " del_hlc IS NOT NULL LIMIT 1", e))
		return -1;
	sqlite3_bind_text(m->any_tomb, 1, t->name, -1, SQLITE_STATIC);
	step = sqlite3_step(m->any_tomb);
	sqlite3_reset(m->any_tomb);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return merge_db_fail(m, e);
	return step == SQLITE_ROW;
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
	rc = merge_prep(m, st, (const char *)b->data, e);
	buf_release(b);
	return rc;
}

/* A reset statement of table t: `*st` if prepared, else the text that
 * `build` writes, prepared and kept. */
static sqlite3_stmt *table_stmt(struct merge *m, const struct schema_table *t,
				sqlite3_stmt **st,
				void (*build)(struct buf *,
					      const struct schema_table *, size_t),
				size_t arg, struct err *e)
{
	struct buf b;

	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
		return *st;
	}
	buf_init(&b, 4096);
	build(&b, t, arg);
	return prep_built(m, st, &b, e) ? NULL : *st;
}

/* SELECT 1, <columns>, rowid FROM t WHERE keys: column i of the schema is
 * result i + 1, the rowid result ncolumns + 1. */
static void build_select_row(struct buf *b, const struct schema_table *t,
			     size_t arg)
{
	size_t i;

	(void)arg;
	sql_text(b, "SELECT 1");
	for (i = 0; i < t->ncolumns; i++) {
		sql_text(b, ", ");
		sql_name(b, t->columns[i].name);
	}
	sql_text(b, ", rowid FROM ");
	sql_name(b, t->name);
	sql_text(b, " WHERE id=?1 AND branch_id=?2");
}

static void build_insert_row(struct buf *b, const struct schema_table *t,
			     size_t arg)
{
	size_t i;
	char num[16];

	(void)arg;
	sql_text(b, "INSERT INTO ");
	sql_name(b, t->name);
	sql_text(b, "(id, branch_id");
	for (i = 0; i < t->ncolumns; i++) {
		sql_text(b, ", ");
		sql_name(b, t->columns[i].name);
	}
	sql_text(b, ") VALUES(?1, ?2");
	for (i = 0; i < t->ncolumns; i++) {
		snprintf(num, sizeof num, ", ?%zu", i + 3);
		sql_text(b, num);
	}
	sql_text(b, ")");
}

static void build_update_col(struct buf *b, const struct schema_table *t,
			     size_t col)
{
	sql_text(b, "UPDATE ");
	sql_name(b, t->name);
	sql_text(b, " SET ");
	sql_name(b, t->columns[col].name);
	sql_text(b, "=?3 WHERE id=?1 AND branch_id=?2");
}

static void build_delete_row(struct buf *b, const struct schema_table *t,
			     size_t arg)
{
	(void)arg;
	sql_text(b, "DELETE FROM ");
	sql_name(b, t->name);
	sql_text(b, " WHERE id=?1 AND branch_id=?2");
}

static void build_rowid_of(struct buf *b, const struct schema_table *t,
			   size_t arg)
{
	(void)arg;
	sql_text(b, "SELECT rowid FROM ");
	sql_name(b, t->name);
	sql_text(b, " WHERE id=?1 AND branch_id=?2");
}

static void build_new_rows(struct buf *b, const struct schema_table *t,
			   size_t arg)
{
	(void)arg;
	sql_text(b, "SELECT rowid, id, branch_id FROM ");
	sql_name(b, t->name);
	sql_text(b, " WHERE rowid>(SELECT max(rowid) FROM ");
	sql_name(b, t->name);
	sql_text(b, ")-?1 ORDER BY rowid");
}

sqlite3_stmt *merge_stmt(struct merge *m, const struct schema_table *t,
			 enum merge_stmt_kind kind, size_t col, struct err *e)
{
	struct merge_table_stmts *ts = &m->tables[merge_table_index(t)];

	switch (kind) {
	case MERGE_SELECT_ROW:
		return table_stmt(m, t, &ts->select_row, build_select_row, 0, e);
	case MERGE_INSERT_ROW:
		return table_stmt(m, t, &ts->insert_row, build_insert_row, 0, e);
	case MERGE_UPDATE_COL:
		return table_stmt(m, t, &ts->update_col[col], build_update_col,
				  col, e);
	case MERGE_DELETE_ROW:
		return table_stmt(m, t, &ts->delete_row, build_delete_row, 0, e);
	case MERGE_ROWID_OF:
		return table_stmt(m, t, &ts->rowid_of, build_rowid_of, 0, e);
	case MERGE_NEW_ROWS:
		return table_stmt(m, t, &ts->new_rows, build_new_rows, 0, e);
	}
	return NULL;
}

void merge_bind_keys(sqlite3_stmt *st, const struct merge_op *op)
{
	sqlite3_bind_text(st, 1, op->id, (int)op->id_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op->branch_id, (int)op->branch_len,
			  SQLITE_STATIC);
}

/* Binds a changeset value; the body outlives the statement's step. */
static void bind_cs(sqlite3_stmt *st, int i, const struct csbody_value *v)
{
	double d;

	switch (v->type) {
	case CSBODY_INTEGER:
		sqlite3_bind_int64(st, i, v->i);
		break;
	case CSBODY_FLOAT:
		memcpy(&d, &v->i, sizeof d);
		sqlite3_bind_double(st, i, d);
		break;
	case CSBODY_TEXT:
		sqlite3_bind_text(st, i, (const char *)v->p, (int)v->n,
				  SQLITE_STATIC);
		break;
	case CSBODY_BLOB:
		sqlite3_bind_blob(st, i, v->p, (int)v->n, SQLITE_STATIC);
		break;
	default:
		sqlite3_bind_null(st, i);
		break;
	}
}

/* 1 if the changeset value a (undefined counts as NULL) equals the
 * database value b (NULL pointer: SQL NULL). */
static int values_equal(const struct csbody_value *a, sqlite3_value *b)
{
	int ta = a->type == CSBODY_UNDEFINED ? SQLITE_NULL : (int)a->type;
	int tb = b ? sqlite3_value_type(b) : SQLITE_NULL;
	double d;

	if (ta != tb)
		return 0;
	switch (ta) {
	case SQLITE_NULL:
		return 1;
	case SQLITE_INTEGER:
		return a->i == sqlite3_value_int64(b);
	case SQLITE_FLOAT:
		memcpy(&d, &a->i, sizeof d);
		return d == sqlite3_value_double(b);
	default:
		return a->n == (size_t)sqlite3_value_bytes(b) &&
		       (a->n == 0 || memcmp(a->p, sqlite3_value_blob(b),
					    a->n) == 0);
	}
}

/* ---- conflicts ---- */

/* A value in a conflict record: from the change set or from the table. */
struct conflict_value {
	const struct csbody_value *cs;
	sqlite3_value *db;
};

struct conflict {
	const char *col;
	const char *kind;
	struct conflict_value kept, lost;
	uint64_t kept_hlc, lost_hlc;
	const uint8_t *kept_dev, *lost_dev;
};

static void bind_conflict_value(sqlite3_stmt *st, int i,
				const struct conflict_value *v)
{
	if (v->cs)
		bind_cs(st, i, v->cs);
	else if (v->db)
		sqlite3_bind_value(st, i, v->db);
}

static int conflict_record(struct merge *m, const struct merge_op *op,
			   const struct changeset *cs,
			   const struct conflict *c, struct merge_stats *stats,
			   struct err *e)
{
	sqlite3_stmt *st;

	if (merge_prep(m, &m->put_conflict,
		       "INSERT OR IGNORE INTO bs_conflicts(tbl, row_id,"
		       " branch_id, col, kind, kept_value, kept_hlc, kept_device,"
		       " lost_value, lost_hlc, lost_device, changeset) VALUES(?1,"
		       " ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", e))
		return -1;
	st = m->put_conflict;
	sqlite3_bind_text(st, 1, op->t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, op->branch_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c->col, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->kind, -1, SQLITE_STATIC);
	bind_conflict_value(st, 6, &c->kept);
	sqlite3_bind_int64(st, 7, (int64_t)c->kept_hlc);
	sqlite3_bind_blob(st, 8, c->kept_dev, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	bind_conflict_value(st, 9, &c->lost);
	sqlite3_bind_int64(st, 10, (int64_t)c->lost_hlc);
	sqlite3_bind_blob(st, 11, c->lost_dev, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(st, 12, cs->id, HASH_BYTES, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return merge_db_fail(m, e);
	if (sqlite3_changes(m->db) > 0)
		stats->conflicts++;
	return 0;
}

/* ---- applying one row operation ---- */

static int defined(const struct csbody_value *v)
{
	return v->type != CSBODY_UNDEFINED;
}

/* A write reaching a deleted row: the delete stands; keep the write as a
 * conflict so nobody's work vanishes unseen. */
static int apply_to_tombstone(struct merge *m, struct merge_op *op,
			      const struct changeset *cs,
			      struct merge_stats *stats, struct err *e)
{
	uint8_t del_key[SIGN_PUBLIC_BYTES];
	size_t i;
	int failed = 0;

	if (op->op == CSBODY_DELETE) {
		/* the later of two deletes is the one remembered */
		if (clock_cmp(m, cs->env.hlc, (uint64_t)op->del_hlc, op->del_dev,
			      e, &failed) > 0) {
			op->del_hlc = (int64_t)cs->env.hlc;
			op->del_dev = m->author_idx;
			return merge_meta_store(m, op, e);
		}
		return failed ? -1 : 0;
	}
	if (device_key(m, op->del_dev, del_key, e))
		return -1;
	for (i = 0; i < op->t->ncolumns; i++) {
		struct conflict c = {op->t->columns[i].name, "write-after-delete",
				     {NULL, NULL}, {&op->newv[i + 2], NULL},
				     (uint64_t)op->del_hlc, cs->env.hlc,
				     del_key, cs->env.author};

		if (!defined(&op->newv[i + 2]))
			continue;
		stats->cells_lost++;
		if (conflict_record(m, op, cs, &c, stats, e))
			return -1;
	}
	return 0;
}

static int apply_delete(struct merge *m, struct merge_op *op,
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

		merge_clock_get(op->clocks, i, &h, &d);
		if (h == 0 || values_equal(&op->oldv[i + 2], now))
			continue;
		if (device_key(m, d, key, e))
			return -1;
		{
			struct conflict c = {op->t->columns[i].name,
					     "edit-deleted", {NULL, NULL},
					     {NULL, now}, cs->env.hlc, h,
					     cs->env.author, key};
			if (conflict_record(m, op, cs, &c, stats, e))
				return -1;
		}
	}
	if (cur)
		sqlite3_reset(cur);
	st = merge_stmt(m, op->t, MERGE_DELETE_ROW, 0, e);
	if (!st)
		return -1;
	merge_bind_keys(st, op);
	if (sqlite3_step(st) != SQLITE_DONE)
		return merge_db_fail(m, e);
	op->deleted = 1;
	op->del_hlc = (int64_t)cs->env.hlc;
	op->del_dev = m->author_idx;
	m->tombs[op->tidx] = 1;
	return merge_meta_store(m, op, e);
}

/* Decides, column by column, which cells this write wins; records
 * conflicts. won[i] is set for the columns to write. */
static int decide_cells(struct merge *m, struct merge_op *op,
			const struct changeset *cs, sqlite3_stmt *cur,
			int *won, struct merge_stats *stats, struct err *e)
{
	size_t i;
	int failed = 0;

	for (i = 0; i < op->t->ncolumns; i++) {
		const struct csbody_value *v = &op->newv[i + 2];
		uint64_t h;
		int64_t d;
		int cmp;
		sqlite3_value *now;

		won[i] = 0;
		if (!defined(v))
			continue;
		merge_clock_get(op->clocks, i, &h, &d);
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
		if (cmp != 0 && op->op == CSBODY_UPDATE && h != 0 && cur &&
		    !values_equal(&op->oldv[i + 2], now)) {
			uint8_t key[SIGN_PUBLIC_BYTES];
			struct conflict c = {op->t->columns[i].name, "concurrent",
					     {NULL, NULL}, {NULL, NULL}, 0, 0,
					     NULL, NULL};

			if (device_key(m, d, key, e))
				return -1;
			if (cmp > 0) {
				c.kept.cs = v;
				c.kept_hlc = cs->env.hlc;
				c.kept_dev = cs->env.author;
				c.lost.db = now;
				c.lost_hlc = h;
				c.lost_dev = key;
			} else {
				c.kept.db = now;
				c.kept_hlc = h;
				c.kept_dev = key;
				c.lost.cs = v;
				c.lost_hlc = cs->env.hlc;
				c.lost_dev = cs->env.author;
			}
			if (conflict_record(m, op, cs, &c, stats, e))
				return -1;
		}
		if (won[i])
			merge_clock_set(op->clocks, i, cs->env.hlc,
					m->author_idx);
	}
	return 0;
}

static int write_cells(struct merge *m, struct merge_op *op, int exists,
		       const int *won, struct err *e)
{
	sqlite3_stmt *st;
	size_t i;

	if (!exists) {
		/* Even an UPDATE can arrive before its row's INSERT (another
		 * order of the same sets): create the row from what we have,
		 * the INSERT fills the rest when it comes. */
		st = merge_stmt(m, op->t, MERGE_INSERT_ROW, 0, e);
		if (!st)
			return -1;
		merge_bind_keys(st, op);
		for (i = 0; i < op->t->ncolumns; i++)
			if (won[i])
				bind_cs(st, (int)i + 3, &op->newv[i + 2]);
		return sqlite3_step(st) == SQLITE_DONE ? 0 : merge_db_fail(m, e);
	}
	for (i = 0; i < op->t->ncolumns; i++) {
		if (!won[i])
			continue;
		st = merge_stmt(m, op->t, MERGE_UPDATE_COL, i, e);
		if (!st)
			return -1;
		merge_bind_keys(st, op);
		bind_cs(st, 3, &op->newv[i + 2]);
		if (sqlite3_step(st) != SQLITE_DONE)
			return merge_db_fail(m, e);
	}
	return 0;
}

/* The common case of a first insert: a row nobody has. Tries the INSERT
 * of every cell; *done 0 when the row turned out to exist already (the
 * caller then merges cell by cell). The row keeps implicit clocks. */
static int apply_new_row(struct merge *m, struct merge_op *op, int *done,
			 struct merge_stats *stats, struct err *e)
{
	sqlite3_stmt *st = merge_stmt(m, op->t, MERGE_INSERT_ROW, 0, e);
	size_t i;
	int step, code;

	*done = 0;
	if (!st)
		return -1;
	merge_bind_keys(st, op);
	for (i = 0; i < op->t->ncolumns; i++)
		bind_cs(st, (int)i + 3, &op->newv[i + 2]);
	step = sqlite3_step(st);
	code = sqlite3_extended_errcode(m->db);
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		if (code == SQLITE_CONSTRAINT_PRIMARYKEY ||
		    code == SQLITE_CONSTRAINT_UNIQUE)
			return 0;
		return merge_db_fail(m, e);
	}
	/* every cell is won, as decide_cells would find against no clocks */
	stats->cells_won += op->t->ncolumns;
	merge_op_hash(op);
	if (implicit_add(m->imp, op->tidx, sqlite3_last_insert_rowid(m->db),
			 op->hash, e))
		return -1;
	*done = 1;
	return 0;
}

/* 1 if table t may hold tombstones, asked once per table per change set
 * (a tombstone made by this merge sets it). */
static int may_have_tombstones(struct merge *m, const struct merge_op *op,
			       struct err *e)
{
	if (m->tombs[op->tidx] < 0)
		m->tombs[op->tidx] = merge_table_has_tombstones(m, op->t, e);
	return m->tombs[op->tidx];
}

static int apply_op(struct merge *m, struct merge_op *op,
		    const struct changeset *cs, struct merge_stats *stats,
		    struct err *e)
{
	sqlite3_stmt *cur;
	int won[MERGE_MAX_COLS], exists, rc = -1, step, tombs, done = 0;
	int loaded = 0;

	if (op->op == CSBODY_INSERT) {
		/* without a tombstone in the table no key of it is one, and
		 * a row with explicit clocks exists: the INSERT tells */
		if ((tombs = may_have_tombstones(m, op, e)) < 0)
			return -1;
		if (tombs) {
			if (merge_meta_load(m, op, e))
				return -1;
			loaded = 1;
		}
		if (!op->deleted && !op->has_meta &&
		    apply_new_row(m, op, &done, stats, e))
			return -1;
		if (done)
			return 0;
	}
	if (!loaded && merge_meta_load(m, op, e))
		return -1;
	if (op->deleted)
		return apply_to_tombstone(m, op, cs, stats, e);
	cur = merge_stmt(m, op->t, MERGE_SELECT_ROW, 0, e);
	if (!cur)
		return -1;
	merge_bind_keys(cur, op);
	step = sqlite3_step(cur);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		merge_db_fail(m, e);
		goto cleanup;
	}
	exists = step == SQLITE_ROW;
	if (exists && !op->has_meta) {
		int found = 0;

		/* a row nobody wrote since its insert: its clocks are
		 * implicit; every row has clocks of one kind or the other */
		if (merge_implicit_load(m, op, sqlite3_column_int64(
				cur, (int)op->t->ncolumns + 1), &found, e))
			goto cleanup;
		if (!found) {
			err_set(e, ERR_INVALID, "the replica has no clocks for "
				"row %s of %s; it was written outside "
				"branchsync", op->id, op->t->name);
			goto cleanup;
		}
	}
	if (op->op == CSBODY_DELETE) {
		rc = apply_delete(m, op, cs, exists ? cur : NULL, stats, e);
		goto cleanup;
	}
	if (decide_cells(m, op, cs, exists ? cur : NULL, won, stats, e))
		goto cleanup;
	sqlite3_reset(cur);
	if (write_cells(m, op, exists, won, e) || merge_meta_store(m, op, e))
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
	if (merge_prep(m, &m->get_applied, "SELECT 1 FROM bs_applied WHERE id=?1",
		       e))
		return -1;
	sqlite3_bind_blob(m->get_applied, 1, cs->id, HASH_BYTES, SQLITE_STATIC);
	*found = sqlite3_step(m->get_applied) == SQLITE_ROW;
	sqlite3_reset(m->get_applied);
	return 0;
}

int merge_mark_applied(struct merge *m, const struct changeset *cs,
		       int keep_bytes, struct err *e)
{
	sqlite3_stmt *st;

	if (merge_prep(m, &m->put_applied,
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
	return sqlite3_step(st) == SQLITE_DONE ? 0 : merge_db_fail(m, e);
}

/* merge_apply and merge_apply_checked: `check` 0 when the caller ran
 * merge_check on cs already (a 512 KiB body is parsed once less). */
static int apply_changeset(struct merge *m, const struct changeset *cs,
			   int check, int *applied, struct merge_stats *stats,
			   struct err *e)
{
	struct csbody_iter it;
	struct csbody_op cop;
	struct merge_op op;
	int found = 0, rc = -1, step;
	size_t i;

	*applied = 0;
	if (applied_before(m, cs, &found, e))
		return -1;
	if (found) {
		stats->duplicates++;
		return 0;
	}
	if ((check && merge_check(cs, e)) ||
	    merge_author_index(m, cs->env.author, e))
		return -1;
	implicit_discard(m->imp);
	for (i = 0; i < MERGE_MAX_TABLES; i++)
		m->tombs[i] = -1;
	csbody_start(&it, cs->body, cs->body_len, e);
	while ((step = csbody_next(&it, &cop)) == 1) {
		stats->rows++;
		if (read_op(&cop, cs->env.scope, &op, e) ||
		    apply_op(m, &op, cs, stats, e))
			goto cleanup;
	}
	if (step < 0 ||
	    implicit_flush(m->imp, cs->env.hlc, m->author_idx, e) ||
	    merge_mark_applied(m, cs, !m->drop_bytes, e))
		goto cleanup;
	stats->changesets++;
	*applied = 1;
	rc = 0;
cleanup:
	if (rc)
		implicit_discard(m->imp);
	if (rc && e->kind == ERR_OK)
		err_set(e, ERR_INVALID, "change set body is malformed");
	return rc;
}

int merge_apply(struct merge *m, const struct changeset *cs, int *applied,
		struct merge_stats *stats, struct err *e)
{
	return apply_changeset(m, cs, 1, applied, stats, e);
}

int merge_apply_checked(struct merge *m, const struct changeset *cs,
			int *applied, struct merge_stats *stats, struct err *e)
{
	return apply_changeset(m, cs, 0, applied, stats, e);
}
