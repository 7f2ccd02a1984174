/* csbuild.h - writes SQLite session changeset bytes for rows that capture
 * knows were inserted, so that an insert needs no session read-back at the
 * cut. The bytes are what sqlite3session_changeset writes for the same
 * inserts into our STRICT record tables (format: the header comment of
 * ext/session/sqlite3session.c; what we accept: shared/csbody.c), except
 * that rows come in insertion order rather than the session's hash order.
 * INSERTs only: updates and deletes stay with the session (shared/capture.c
 * combines the two). */
#ifndef BS_CSBUILD_H
#define BS_CSBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "schema.h"

/* Record tables the builder can hold (the schema has fewer), and columns
 * per table (csbody's limit). */
#define CSBUILD_MAX_TABLES  16
#define CSBUILD_MAX_COLUMNS 64

/* Rows inserted since the last csbuild_reset, one buffer per table so that
 * each table's records stay together under one header. */
struct csbuild {
	struct buf table[CSBUILD_MAX_TABLES]; /* header, then the INSERTs */
	struct buf joined;		      /* csbuild_body's, if several */
	size_t rows;
};

/* Empties b; every buffer is capped at `max` bytes. Allocates nothing. */
void csbuild_init(struct csbuild *b, size_t max);
/* Frees (wiping) every buffer; b is then empty and reusable. */
void csbuild_release(struct csbuild *b);
/* Empties b but keeps its memory, for the next cut. */
void csbuild_reset(struct csbuild *b);

/* 1 if vals[0 .. t->ncolumns + 2) (id, branch_id, then the columns in
 * schema order; none NULL) are stored exactly as given by a STRICT table
 * of schema_ddl: id and branch_id text, INTEGER columns integers or NULL,
 * TEXT columns text or NULL. 0 otherwise (SQLite would convert or refuse
 * the value, and only the session can say what it stored). */
int csbuild_fits(const struct schema_table *t,
		 const struct schema_value *const *vals);

/* Appends an INSERT of vals (as csbuild_fits, which must hold) to table
 * tidx (schema_table_at order), after the table's header if it is the
 * table's first row. BS_ELIMIT when the table's buffer would pass its cap,
 * BS_EINVALID for a table not in the schema, BS_ENOMEM; on failure b is
 * unchanged. */
enum bs_status csbuild_insert(struct csbuild *b, size_t tidx,
			      const struct schema_value *const *vals);

/* The changeset of every row inserted since the reset, tables in schema
 * order: *body points into b (valid until the next csbuild_* call) and
 * *len is 0 when there were none. BS_ELIMIT or BS_ENOMEM when the tables
 * must be joined and that fails. */
enum bs_status csbuild_body(struct csbuild *b, const uint8_t **body /* OUT */,
			    size_t *len /* OUT */);

#endif
