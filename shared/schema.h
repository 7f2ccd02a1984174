/* schema.h - the one definition of branchsync's record tables: their names,
 * columns, types and allowed values, in canonical order, and the validation
 * that turns a user's input string into a canonical value. Data only: it
 * produces DDL text but never touches a database. */
#ifndef BS_SCHEMA_H
#define BS_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"

/* Bumped whenever a table, column, type, range or allowed value changes:
 * change sets carry it, and the canonical digest depends on the order of
 * tables and columns given here. */
#define SCHEMA_VERSION 1

#define SCHEMA_TEXT_MAX 4096   /* bytes of a text value */
#define SCHEMA_ID_MAX 64       /* characters of a row, scope or ref id */
#define SCHEMA_INPUT_MAX 4096  /* bytes of any input string */

enum schema_type {
	SCHEMA_TEXT,    /* UTF-8, no control chars but tab and newline */
	SCHEMA_DATE,    /* YYYY-MM-DD, a real date in 1900..2100 */
	SCHEMA_ENUM,    /* one of `values`, after `aliases` */
	SCHEMA_INT,     /* int64 within [min, max]; stored as INTEGER */
	SCHEMA_MONEY,   /* 0..1e12, stored as text with two fraction digits */
	SCHEMA_PHONE,   /* optional '+', 5..20 digits, stored compact */
	SCHEMA_IDNUM,   /* resident id: 18 chars with checksum, or 15 digits */
	SCHEMA_REF,     /* the id of another row */
	SCHEMA_ID,      /* `id` and `branch_id` of every table */
};

/* An accepted spelling of an enum value; matched like the values are. */
struct schema_alias {
	const char *from;
	const char *to;
};

struct schema_column {
	const char *name;
	enum schema_type type;
	int required;                 /* empty input is an error */
	const char *const *values;    /* SCHEMA_ENUM: NULL-terminated */
	const struct schema_alias *aliases; /* SCHEMA_ENUM: {NULL} ends; or NULL */
	int64_t min, max;             /* SCHEMA_INT: inclusive range */
	const char *default_value;    /* input used when an insert omits it */
	const char *ref_table;        /* SCHEMA_REF: the table it points into */
};

/* A record table. Its SQL columns are, in this order: id, branch_id, then
 * columns[0..ncolumns-1]; so columns[i] is SQL column i + 2. */
struct schema_table {
	const char *name;
	const struct schema_column *columns; /* beyond id and branch_id */
	size_t ncolumns;
	int scope_is_id;              /* branch_id must equal id (branches) */
};

enum schema_value_kind {
	SCHEMA_VALUE_NULL,
	SCHEMA_VALUE_INT,
	SCHEMA_VALUE_TEXT,
};

/* A canonical typed value. `text` is owned (free with schema_value_clear),
 * NUL-terminated, and set only when kind is SCHEMA_VALUE_TEXT. */
struct schema_value {
	enum schema_value_kind kind;
	int64_t i;
	char *text;
};

/* The scope of district-wide rows. */
#define SCHEMA_DISTRICT_SCOPE "district"

/* Tables in canonical order; schema_table_at returns NULL past the end. */
size_t schema_table_count(void);
const struct schema_table *schema_table_at(size_t i);
/* NULL if there is no table of that name. */
const struct schema_table *schema_table_find(const char *name);
/* Finds a column of `t`, including id and branch_id; NULL if unknown. */
const struct schema_column *schema_column_find(const struct schema_table *t,
					       const char *name);

/* Validates `input` for column `c` of table `t` and stores its canonical
 * form in *out (which the caller clears with schema_value_clear). Empty or
 * NULL input is SQL NULL, an error for required columns. Fails with
 * BS_EINVALID (or BS_ELIMIT for a text over SCHEMA_TEXT_MAX bytes), writing
 * one lowercase sentence that names table and column into err; or
 * BS_ENOMEM. On failure *out is NULL and owns nothing. */
enum bs_status schema_parse_value(const struct schema_table *t,
				  const struct schema_column *c,
				  const char *input,
				  struct schema_value *out /* OUT */,
				  char *err, size_t errlen);
/* The same for `len` bytes that need not be NUL-terminated and may hold a
 * NUL byte (a CSV cell), which is refused. */
enum bs_status schema_parse_value_n(const struct schema_table *t,
				    const struct schema_column *c,
				    const char *input, size_t len,
				    struct schema_value *out /* OUT */,
				    char *err, size_t errlen);
/* The value an insert stores for a column it does not mention: the
 * column's default, or NULL; fails like schema_parse_value with the
 * "is required" message when the column is required and has no default. */
enum bs_status schema_insert_default(const struct schema_table *t,
				     const struct schema_column *c,
				     struct schema_value *out /* OUT */,
				     char *err, size_t errlen);
/* Frees v->text and leaves *v NULL; safe on a cleared value. */
void schema_value_clear(struct schema_value *v);

/* 1 if `s` is a valid row or scope id: 1..64 of [A-Za-z0-9_.:-]. */
int schema_id_valid(const char *s);

/* Messages for names the find functions did not know; `name` is echoed
 * with control characters replaced and cut to a sane length. */
void schema_unknown_table_msg(const char *name, char *err, size_t errlen);
void schema_unknown_column_msg(const struct schema_table *t, const char *name,
			       char *err, size_t errlen);

/* Appends to `out` one SQL script creating every table (STRICT; id TEXT
 * NOT NULL, branch_id TEXT NOT NULL, then the columns in canonical order,
 * INTEGER for SCHEMA_INT and TEXT for the rest; PRIMARY KEY (id, branch_id)
 * so that every changeset entry carries its scope) and an index on each
 * table's branch_id, followed by a NUL byte so that
 * out->data can go straight to sqlite3_exec. Required columns, defaults
 * and allowed values are deliberately not SQL constraints: merge may build
 * a row from its columns in any order, and a DEFAULT would make the result
 * depend on that order. Returns out->status (BS_ELIMIT or BS_ENOMEM). */
enum bs_status schema_ddl(struct buf *out);
/* The same for one table, without the trailing NUL. */
enum bs_status schema_table_ddl(const struct schema_table *t, struct buf *out);

#endif
