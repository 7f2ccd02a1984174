/* records.h - writing and reading rows of the record tables from user input:
 * COLUMN=VALUE pairs are validated by the schema, then an INSERT or UPDATE
 * names exactly those columns and binds every value; SQL identifiers come
 * only from the schema. Used by the client and the server alike. Not for
 * merge or policy (who may write which branch): callers wrap these calls in
 * capture and decide branch ids and tombstones themselves; an insert tells
 * the capture set by records_set_capture exactly what it stored. */
#ifndef BS_RECORDS_H
#define BS_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "err.h"
#include "schema.h"

/* id and branch_id plus the widest table's columns, with room to grow. */
#define RECORDS_MAX_COLUMNS 32
/* A new row id: 128 random bits as lowercase hex. */
#define RECORDS_ID_HEX 32

/* The columns one write names, with their canonical values. Initialise with
 * records_row_init; release with records_row_clear (owns the values). */
struct records_row {
	const struct schema_table *table;
	size_t n;
	const struct schema_column *cols[RECORDS_MAX_COLUMNS];
	struct schema_value vals[RECORDS_MAX_COLUMNS];
};

/* Cached prepared statements over one connection. */
struct records;
struct capture;

void records_row_init(struct records_row *row, const struct schema_table *t);
/* Frees the values and empties the row (its table stays). */
void records_row_clear(struct records_row *row);

/* Validates `len` bytes of `value` (empty: SQL NULL) for the column named
 * `column` and adds it to the row. Fails with ERR_INVALID naming the column
 * when it is unknown, already in the row, or the value is invalid (the
 * schema's message); the row is then unchanged. Allocates only the value. */
int records_row_set(struct records_row *row, const char *column,
		    const char *value, size_t len, struct err *e);

/* The value the row gives for `column`, or NULL if it names no such column.
 * Points into the row. */
const struct schema_value *records_row_get(const struct records_row *row,
					   const char *column);

/* Writes a fresh random id (RECORDS_ID_HEX lowercase hex digits and a NUL)
 * from libsodium's randombytes_buf. sign_init() must have succeeded. */
void records_new_id(char out[RECORDS_ID_HEX + 1]);

/* Prepares nothing yet: statements are made on first use and kept. Allocates
 * *out (records_free). Fails with ERR_INVALID only when out of memory. */
int records_new(sqlite3 *db, struct records **out /* OUT */, struct err *e);
/* Finalizes the statements and frees. NULL is fine. */
void records_free(struct records *rs);

/* From now on records_insert hands each row it inserts to c (capture.h,
 * capture_insert_start) instead of leaving it to c's session: c then needs
 * no read-back of the row at its cut. c must stay alive while rs is used
 * with it; NULL stops this. Updates and deletes always go to the session. */
void records_set_capture(struct records *rs, struct capture *c);

/* Inserts row `id` into row->table: the named columns take their values,
 * every other column its schema_insert_default, so a required column that
 * the row does not name is refused. branch_id must be named, except in a
 * table whose scope is its id (branches), where it defaults to `id` and
 * must equal it. The row must not name `id`. Fails with ERR_INVALID: an
 * invalid id, a missing column, or a row with this id already there. Does
 * not look at tombstones: that is the caller's business (merge_is_deleted). */
int records_insert(struct records *rs, const char *id,
		   const struct records_row *row, struct err *e);

/* Finds row `id` of table t and copies its branch_id into *branch_id (a
 * fresh string: mem_free), or sets *branch_id to NULL when there is no such
 * row. Fails with ERR_INVALID on a database error or when two rows of
 * different branches share the id (the caller cannot tell which is meant). */
int records_find(struct records *rs, const struct schema_table *t,
		 const char *id, char **branch_id /* OUT */, struct err *e);

/* Sets the columns the row names, and only those, on row (id, branch_id).
 * `id` must not be named; branch_id may be named only with its present
 * value (a record never moves between branches). *found is 0 when there is
 * no such row (nothing written), 1 otherwise. Fails with ERR_INVALID. */
int records_update(struct records *rs, const char *id, const char *branch_id,
		   const struct records_row *row, int *found /* OUT */,
		   struct err *e);

/* Deletes row (id, branch_id) of t. *found as for records_update. */
int records_delete(struct records *rs, const struct schema_table *t,
		   const char *id, const char *branch_id, int *found /* OUT */,
		   struct err *e);

/* Reads row `id` of t into vals[0 .. t->ncolumns + 2): id, branch_id, then
 * the columns in schema order, each a fresh value the caller clears with
 * schema_value_clear (all are cleared to NULL first and on failure). *found
 * is 0 when there is no such row. Fails with ERR_INVALID (database error,
 * an id shared by two branches, or out of memory). */
int records_get(struct records *rs, const struct schema_table *t,
		const char *id, struct schema_value *vals /* OUT */,
		int *found /* OUT */, struct err *e);

#endif
