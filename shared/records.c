/* records.c - validated row writes and reads on the record tables (see
 * records.h). Statements are prepared once per table (per column set for
 * updates) and kept, so a 20,000-row import prepares a handful. Not for
 * merge: the caller brackets these writes in a capture, which an insert
 * tells what it stored. */
#include "records.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "capture.h"
#include "mem.h"

#define RECORDS_SQL_MAX 8192

/* The statements of one table that do not depend on a column set. */
struct records_table {
	sqlite3_stmt *insert;  /* every column, in schema order */
	sqlite3_stmt *find;    /* branch_id of an id */
	sqlite3_stmt *get;     /* every column of an id */
	sqlite3_stmt *del;
};

/* An UPDATE of one set of columns of one table. */
struct records_update {
	size_t tidx;
	uint32_t mask;         /* bit i: SQL column i is set */
	sqlite3_stmt *st;
};

struct records {
	sqlite3 *db;
	struct records_table *tables;
	size_t ntables;
	struct records_update *updates;
	size_t nupdates, cap;
	struct capture *capture;   /* records_set_capture's, or NULL */
};

static int records_nomem(struct err *e)
{
	err_set(e, ERR_INVALID, "out of memory");
	return -1;
}

static int records_db_fail(struct records *rs, struct err *e)
{
	err_set(e, ERR_INVALID, "database error: %s", sqlite3_errmsg(rs->db));
	return -1;
}

void records_row_init(struct records_row *row, const struct schema_table *t)
{
	memset(row, 0, sizeof *row);
	row->table = t;
}

void records_row_clear(struct records_row *row)
{
	size_t i;

	for (i = 0; i < row->n; i++)
		schema_value_clear(&row->vals[i]);
	row->n = 0;
}

/* The column named `name`. Rows are mostly given in schema order (an
 * import's columns, a put's), perhaps skipping some, so the few columns
 * after the last one given are tried before the lookup by name; the schema
 * names no column id or branch_id, so the answer is the same. */
static const struct schema_column *column_of(const struct records_row *row,
					     const char *name)
{
	const struct schema_table *t = row->table;
	size_t next = 0, k;

	if (row->n > 0) {
		uintptr_t at = (uintptr_t)row->cols[row->n - 1] -
			       (uintptr_t)t->columns;

		/* after id or branch_id, the first column is next */
		if (at < t->ncolumns * sizeof *t->columns)
			next = at / sizeof *t->columns + 1;
		for (k = next; k < t->ncolumns && k < next + 4; k++)
			if (strcmp(t->columns[k].name, name) == 0)
				return &t->columns[k];
	}
	return schema_column_find(t, name);
}

int records_row_set(struct records_row *row, const char *column,
		    const char *value, size_t len, struct err *e)
{
	const struct schema_column *c = column_of(row, column);
	char msg[sizeof e->msg];
	size_t i;
	enum bs_status st;

	if (!c) {
		schema_unknown_column_msg(row->table, column, msg, sizeof msg);
		err_set(e, ERR_INVALID, "%s", msg);
		return -1;
	}
	for (i = 0; i < row->n; i++) {
		if (row->cols[i] == c) {
			err_set(e, ERR_INVALID, "column '%s' is given twice",
				c->name);
			return -1;
		}
	}
	if (row->n == RECORDS_MAX_COLUMNS) {
		err_set(e, ERR_INVALID, "too many columns for table '%s'",
			row->table->name);
		return -1;
	}
	st = schema_parse_value_n(row->table, c, value, value ? len : 0,
				  &row->vals[row->n], msg, sizeof msg);
	if (st != BS_OK) {
		err_set(e, ERR_INVALID, "%s", msg);
		return -1;
	}
	row->cols[row->n++] = c;
	return 0;
}

const struct schema_value *records_row_get(const struct records_row *row,
					   const char *column)
{
	size_t i;

	for (i = 0; i < row->n; i++)
		if (strcmp(row->cols[i]->name, column) == 0)
			return &row->vals[i];
	return NULL;
}

void records_new_id(char out[RECORDS_ID_HEX + 1])
{
	unsigned char raw[RECORDS_ID_HEX / 2];

	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(out, RECORDS_ID_HEX + 1, raw, sizeof raw);
}

int records_new(sqlite3 *db, struct records **out, struct err *e)
{
	struct records *rs;

	*out = NULL;
	rs = mem_calloc(1, sizeof *rs);
	if (!rs)
		return records_nomem(e);
	rs->db = db;
	rs->ntables = schema_table_count();
	rs->tables = mem_calloc(rs->ntables, sizeof *rs->tables);
	if (!rs->tables) {
		mem_free(rs);
		return records_nomem(e);
	}
	*out = rs;
	return 0;
}

void records_free(struct records *rs)
{
	size_t i;

	if (!rs)
		return;
	for (i = 0; i < rs->ntables; i++) {
		sqlite3_finalize(rs->tables[i].insert);
		sqlite3_finalize(rs->tables[i].find);
		sqlite3_finalize(rs->tables[i].get);
		sqlite3_finalize(rs->tables[i].del);
	}
	for (i = 0; i < rs->nupdates; i++)
		sqlite3_finalize(rs->updates[i].st);
	mem_free(rs->tables);
	mem_free(rs->updates);
	mem_free(rs);
}

void records_set_capture(struct records *rs, struct capture *c)
{
	rs->capture = c;
}

/* ---- SQL text, from schema names only ---- */

static void sql_add(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

/* Schema names are plain lowercase words; quoting them anyway means no
 * future name can ever be read as a keyword. */
static void sql_name(struct buf *b, const char *name)
{
	buf_append_u8(b, '"');
	sql_add(b, name);
	buf_append_u8(b, '"');
}

static void sql_param(struct buf *b, size_t n)
{
	char num[24];

	snprintf(num, sizeof num, "?%zu", n);
	sql_add(b, num);
}

/* The SQL name of column i: id, branch_id, then the schema's columns. */
static const char *col_name(const struct schema_table *t, size_t i)
{
	return i == 0 ? "id" : i == 1 ? "branch_id" : t->columns[i - 2].name;
}

/* Prepares b's text into *st (kept for the life of rs) and releases b. */
static int prepare_built(struct records *rs, struct buf *b,
			 sqlite3_stmt **st, struct err *e)
{
	int rc = -1;

	buf_append_u8(b, 0);
	if (b->status) {
		records_nomem(e);
		goto cleanup;
	}
	if (sqlite3_prepare_v3(rs->db, (const char *)b->data, -1,
			       SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		*st = NULL;
		records_db_fail(rs, e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	buf_release(b);
	return rc;
}

static size_t table_index(struct records *rs, const struct schema_table *t)
{
	size_t i;

	for (i = 0; i < rs->ntables; i++)
		if (schema_table_at(i) == t)
			return i;
	return rs->ntables;
}

/* The per-table statement set of t, or NULL (and e set) for a table that
 * is not one of the schema's. */
static struct records_table *table_stmts(struct records *rs,
					 const struct schema_table *t,
					 struct err *e)
{
	size_t i = table_index(rs, t);

	if (i == rs->ntables) {
		err_set(e, ERR_INVALID, "not a record table");
		return NULL;
	}
	return &rs->tables[i];
}

/* A reset statement ready for binding, prepared on first use by `build`. */
static sqlite3_stmt *stmt_ready(struct records *rs, sqlite3_stmt **st,
				const struct schema_table *t,
				void (*build)(struct buf *, const struct schema_table *),
				struct err *e)
{
	struct buf b;

	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
		return *st;
	}
	buf_init(&b, RECORDS_SQL_MAX);
	build(&b, t);
	return prepare_built(rs, &b, st, e) ? NULL : *st;
}

static void build_insert(struct buf *b, const struct schema_table *t)
{
	size_t i, n = t->ncolumns + 2;

	sql_add(b, "INSERT INTO ");
	sql_name(b, t->name);
	sql_add(b, "(");
	for (i = 0; i < n; i++) {
		if (i)
			sql_add(b, ", ");
		sql_name(b, col_name(t, i));
	}
	sql_add(b, ") VALUES(");
	for (i = 0; i < n; i++) {
		if (i)
			sql_add(b, ", ");
		sql_param(b, i + 1);
	}
	sql_add(b, ")");
}

static void build_find(struct buf *b, const struct schema_table *t)
{
	sql_add(b, "SELECT \"branch_id\" FROM ");
	sql_name(b, t->name);
	/* Two rows would mean one id in two branches: ask for a second. */
	sql_add(b, " WHERE \"id\"=?1 LIMIT 2");
}

static void build_get(struct buf *b, const struct schema_table *t)
{
	size_t i;

	sql_add(b, "SELECT ");
	for (i = 0; i < t->ncolumns + 2; i++) {
		if (i)
			sql_add(b, ", ");
		sql_name(b, col_name(t, i));
	}
	sql_add(b, " FROM ");
	sql_name(b, t->name);
	sql_add(b, " WHERE \"id\"=?1 LIMIT 2");
}

static void build_delete(struct buf *b, const struct schema_table *t)
{
	sql_add(b, "DELETE FROM ");
	sql_name(b, t->name);
	sql_add(b, " WHERE \"id\"=?1 AND \"branch_id\"=?2");
}

/* ---- values ---- */

static int bind_value(sqlite3_stmt *st, int i, const struct schema_value *v)
{
	switch (v->kind) {
	case SCHEMA_VALUE_INT:
		return sqlite3_bind_int64(st, i, v->i);
	case SCHEMA_VALUE_TEXT:
		/* The value outlives the step: no copy needed. */
		return sqlite3_bind_text(st, i, v->text, -1, SQLITE_STATIC);
	default:
		return sqlite3_bind_null(st, i);
	}
}

/* SQL column index of c in t (see col_name), or t->ncolumns + 2. */
static size_t col_index(const struct schema_table *t,
			const struct schema_column *c)
{
	size_t i;

	for (i = 0; i < t->ncolumns + 2; i++)
		if (strcmp(col_name(t, i), c->name) == 0)
			return i;
	return i;
}

/* Copies column `i` of the current result row into *v. */
static int read_value(sqlite3_stmt *st, int i, struct schema_value *v,
		      struct err *e)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		return 0;
	case SQLITE_INTEGER:
		v->kind = SCHEMA_VALUE_INT;
		v->i = sqlite3_column_int64(st, i);
		return 0;
	case SQLITE_TEXT: {
		const char *p = (const char *)sqlite3_column_text(st, i);
		int n = sqlite3_column_bytes(st, i);

		if (!p)
			return records_nomem(e);
		v->text = mem_strndup(p, (size_t)n);
		if (!v->text)
			return records_nomem(e);
		v->kind = SCHEMA_VALUE_TEXT;
		return 0;
	}
	default:
		/* STRICT tables of TEXT and INTEGER columns hold nothing else. */
		err_set(e, ERR_INVALID, "column %s holds a value of an "
			"unexpected type", sqlite3_column_name(st, i));
		return -1;
	}
}

static int id_check(const char *id, struct err *e)
{
	if (schema_id_valid(id))
		return 0;
	err_set(e, ERR_INVALID, "that is not a valid record id: ids are 1 to "
		"%d characters from a-z, A-Z, 0-9, '_', '.', ':' and '-'",
		SCHEMA_ID_MAX);
	return -1;
}

/* ---- writes ---- */

/* The value the row gives for column c (the schema's own column, compared
 * by address: no name lookups per row), or NULL. */
static const struct schema_value *row_value(const struct records_row *row,
					    const struct schema_column *c)
{
	size_t i;

	for (i = 0; i < row->n; i++)
		if (row->cols[i] == c)
			return &row->vals[i];
	return NULL;
}

/* Chooses what the insert of `row` with id `id` binds to each SQL column:
 * bind[i] points into the row, or to defs[i] which then owns a default.
 * *branch_id is the row's branch (borrowed from the row or `id`). */
static int insert_values(const char *id, const struct records_row *row,
			 const char **branch_id,
			 const struct schema_value **bind,
			 struct schema_value *defs, struct err *e)
{
	const struct schema_table *t = row->table;
	const struct schema_value *given;
	char msg[sizeof e->msg];
	size_t i;

	if (row_value(row, schema_column_find(t, "id"))) {
		err_set(e, ERR_INVALID, "column 'id' cannot be set: a record's "
			"id is chosen when it is made");
		return -1;
	}
	given = row_value(row, schema_column_find(t, "branch_id"));
	if (t->scope_is_id) {
		if (given && strcmp(given->text, id) != 0) {
			err_set(e, ERR_INVALID, "the branch_id of a row of "
				"table '%s' must equal its id", t->name);
			return -1;
		}
		*branch_id = id;
	} else if (given) {
		*branch_id = given->text;
	} else {
		err_set(e, ERR_INVALID, "column 'branch_id' of table '%s' is "
			"required", t->name);
		return -1;
	}
	for (i = 2; i < t->ncolumns + 2; i++) {
		const struct schema_column *c = &t->columns[i - 2];

		bind[i] = row_value(row, c);
		if (bind[i])
			continue;
		if (schema_insert_default(t, c, &defs[i], msg, sizeof msg)) {
			err_set(e, ERR_INVALID, "%s", msg);
			return -1;
		}
		bind[i] = &defs[i];
	}
	return 0;
}

int records_insert(struct records *rs, const char *id,
		   const struct records_row *row, struct err *e)
{
	const struct schema_table *t = row->table;
	const struct schema_value *bind[RECORDS_MAX_COLUMNS];
	struct schema_value defs[RECORDS_MAX_COLUMNS], keys[2];
	struct records_table *ts = NULL;
	sqlite3_stmt *st = NULL;
	const char *branch_id = NULL;
	size_t i, n = t->ncolumns + 2;
	int rc = -1, step, direct;

	memset(defs, 0, sizeof defs);
	memset(bind, 0, sizeof bind);
	if (n > RECORDS_MAX_COLUMNS) {
		err_set(e, ERR_INVALID, "table '%s' has too many columns",
			t->name);
		return -1;
	}
	if (id_check(id, e) ||
	    insert_values(id, row, &branch_id, bind, defs, e))
		goto cleanup;
	if (!(ts = table_stmts(rs, t, e)) ||
	    !(st = stmt_ready(rs, &ts->insert, t, build_insert, e)))
		goto cleanup;
	if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, branch_id, -1, SQLITE_STATIC) != SQLITE_OK) {
		records_db_fail(rs, e);
		goto cleanup;
	}
	for (i = 2; i < n; i++)
		if (bind_value(st, (int)i + 1, bind[i]) != SQLITE_OK) {
			records_db_fail(rs, e);
			goto cleanup;
		}
	/* the keys as values too, borrowed, for the capture */
	memset(keys, 0, sizeof keys);
	keys[0].kind = keys[1].kind = SCHEMA_VALUE_TEXT;
	keys[0].text = (char *)id;
	keys[1].text = (char *)branch_id;
	bind[0] = &keys[0];
	bind[1] = &keys[1];
	direct = rs->capture && capture_insert_start(rs->capture, t, bind);
	step = sqlite3_step(st);
	if (direct && capture_insert_end(rs->capture, t, bind,
					 step == SQLITE_DONE, e))
		goto cleanup;
	if (step != SQLITE_DONE &&
	    (sqlite3_extended_errcode(rs->db) == SQLITE_CONSTRAINT_PRIMARYKEY ||
	     sqlite3_extended_errcode(rs->db) == SQLITE_CONSTRAINT_UNIQUE)) {
		err_set(e, ERR_INVALID, "a record with id %s already exists in "
			"table '%s'", id, t->name);
		goto cleanup;
	}
	if (step != SQLITE_DONE) {
		records_db_fail(rs, e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (st)
		sqlite3_reset(st);
	for (i = 0; i < n; i++)
		schema_value_clear(&defs[i]);
	return rc;
}

int records_find(struct records *rs, const struct schema_table *t,
		 const char *id, char **branch_id, struct err *e)
{
	struct records_table *ts;
	sqlite3_stmt *st;
	char *found = NULL;
	int rc = -1, step;

	*branch_id = NULL;
	if (!(ts = table_stmts(rs, t, e)) ||
	    !(st = stmt_ready(rs, &ts->find, t, build_find, e)))
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		found = mem_strdup((const char *)sqlite3_column_text(st, 0)
				   ? (const char *)sqlite3_column_text(st, 0)
				   : "");
		if (!found) {
			records_nomem(e);
			goto cleanup;
		}
		step = sqlite3_step(st);
		if (step == SQLITE_ROW) {
			err_set(e, ERR_INVALID, "id %s is used by two branches "
				"in table '%s'; report this to the district "
				"office", id, t->name);
			goto cleanup;
		}
	}
	if (step != SQLITE_DONE) {
		records_db_fail(rs, e);
		goto cleanup;
	}
	*branch_id = found;
	found = NULL;
	rc = 0;
cleanup:
	sqlite3_reset(st);
	mem_free(found);
	return rc;
}

/* The UPDATE statement setting the columns in `mask` of table tidx. */
static sqlite3_stmt *update_stmt(struct records *rs,
				 const struct schema_table *t, size_t tidx,
				 uint32_t mask, struct err *e)
{
	struct records_update *u;
	struct buf b;
	size_t i, param = 3;
	int first = 1;

	for (i = 0; i < rs->nupdates; i++) {
		u = &rs->updates[i];
		if (u->tidx == tidx && u->mask == mask) {
			sqlite3_reset(u->st);
			sqlite3_clear_bindings(u->st);
			return u->st;
		}
	}
	if (rs->nupdates == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 8;
		struct records_update *grown =
			mem_realloc(rs->updates, cap * sizeof *grown);

		if (!grown) {
			records_nomem(e);
			return NULL;
		}
		rs->updates = grown;
		rs->cap = cap;
	}
	buf_init(&b, RECORDS_SQL_MAX);
	sql_add(&b, "UPDATE ");
	sql_name(&b, t->name);
	sql_add(&b, " SET ");
	for (i = 2; i < t->ncolumns + 2; i++) {
		if (!(mask & (UINT32_C(1) << i)))
			continue;
		if (!first)
			sql_add(&b, ", ");
		first = 0;
		sql_name(&b, col_name(t, i));
		sql_add(&b, "=");
		sql_param(&b, param++);
	}
	sql_add(&b, " WHERE \"id\"=?1 AND \"branch_id\"=?2");
	u = &rs->updates[rs->nupdates];
	if (prepare_built(rs, &b, &u->st, e))
		return NULL;
	u->tidx = tidx;
	u->mask = mask;
	rs->nupdates++;
	return u->st;
}

int records_update(struct records *rs, const char *id, const char *branch_id,
		   const struct records_row *row, int *found, struct err *e)
{
	const struct schema_table *t = row->table;
	const struct schema_value *given;
	const struct schema_value *by_col[RECORDS_MAX_COLUMNS];
	sqlite3_stmt *st = NULL;
	uint32_t mask = 0;
	size_t i, tidx, param = 3;
	char *current = NULL;
	int rc = -1;

	*found = 0;
	memset(by_col, 0, sizeof by_col);
	if (t->ncolumns + 2 > RECORDS_MAX_COLUMNS) {
		err_set(e, ERR_INVALID, "table '%s' has too many columns",
			t->name);
		return -1;
	}
	if (records_row_get(row, "id")) {
		err_set(e, ERR_INVALID, "column 'id' cannot be changed");
		return -1;
	}
	given = records_row_get(row, "branch_id");
	if (given && strcmp(given->text, branch_id) != 0) {
		err_set(e, ERR_INVALID, "record %s of table '%s' belongs to "
			"branch %s and cannot move to another branch; record a "
			"transfer and a new row instead", id, t->name,
			branch_id);
		return -1;
	}
	for (i = 0; i < row->n; i++) {
		size_t ci = col_index(t, row->cols[i]);

		if (ci < 2 || ci >= t->ncolumns + 2)
			continue;
		mask |= UINT32_C(1) << ci;
		by_col[ci] = &row->vals[i];
	}
	tidx = table_index(rs, t);
	if (tidx == rs->ntables) {
		err_set(e, ERR_INVALID, "not a record table");
		return -1;
	}
	if (mask == 0) {
		/* Nothing to set: the answer is only whether the row is there. */
		if (records_find(rs, t, id, &current, e))
			return -1;
		*found = current && strcmp(current, branch_id) == 0;
		mem_free(current);
		return 0;
	}
	st = update_stmt(rs, t, tidx, mask, e);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, branch_id, -1, SQLITE_STATIC);
	for (i = 2; i < t->ncolumns + 2; i++) {
		if (!by_col[i])
			continue;
		if (bind_value(st, (int)param++, by_col[i]) != SQLITE_OK) {
			records_db_fail(rs, e);
			goto cleanup;
		}
	}
	if (sqlite3_step(st) != SQLITE_DONE) {
		records_db_fail(rs, e);
		goto cleanup;
	}
	*found = sqlite3_changes(rs->db) > 0;
	rc = 0;
cleanup:
	sqlite3_reset(st);
	return rc;
}

int records_delete(struct records *rs, const struct schema_table *t,
		   const char *id, const char *branch_id, int *found,
		   struct err *e)
{
	struct records_table *ts;
	sqlite3_stmt *st;
	int rc = -1;

	*found = 0;
	if (!(ts = table_stmts(rs, t, e)) ||
	    !(st = stmt_ready(rs, &ts->del, t, build_delete, e)))
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, branch_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		records_db_fail(rs, e);
		goto cleanup;
	}
	*found = sqlite3_changes(rs->db) > 0;
	rc = 0;
cleanup:
	sqlite3_reset(st);
	return rc;
}

int records_get(struct records *rs, const struct schema_table *t,
		const char *id, struct schema_value *vals, int *found,
		struct err *e)
{
	struct records_table *ts;
	sqlite3_stmt *st;
	size_t i, n = t->ncolumns + 2;
	int rc = -1, step;

	*found = 0;
	for (i = 0; i < n; i++)
		memset(&vals[i], 0, sizeof vals[i]);
	if (!(ts = table_stmts(rs, t, e)) ||
	    !(st = stmt_ready(rs, &ts->get, t, build_get, e)))
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		rc = 0;
		goto cleanup;
	}
	if (step != SQLITE_ROW) {
		records_db_fail(rs, e);
		goto cleanup;
	}
	for (i = 0; i < n; i++)
		if (read_value(st, (int)i, &vals[i], e))
			goto cleanup;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		err_set(e, ERR_INVALID, "id %s is used by two branches in table "
			"'%s'; report this to the district office", id, t->name);
		goto cleanup;
	}
	if (step != SQLITE_DONE) {
		records_db_fail(rs, e);
		goto cleanup;
	}
	*found = 1;
	rc = 0;
cleanup:
	sqlite3_reset(st);
	if (rc)
		for (i = 0; i < n; i++)
			schema_value_clear(&vals[i]);
	return rc;
}
