/* csbody.h - a strict walk over an untrusted SQLite session changeset body
 * before SQLite's own iterator ever sees it. The format is SQLite's (the
 * header comment of ext/session/sqlite3session.c); this checks every length
 * against the bytes that remain, the table headers against our schema,
 * every record's field count and types, and limits on rows and values.
 * SQLite's iterator was found (by fuzz/fuzz_push.c) to hang on some corrupt
 * bodies, so nothing untrusted reaches it without passing here first.
 * The same walk is also an iterator (csbody_start, csbody_next) that hands
 * out each row operation with its fields pointing into the body, which is
 * how merge reads bodies: one pass, nothing allocated. Not for judging the
 * values against the schema (merge_check does that). */
#ifndef BS_CSBODY_H
#define BS_CSBODY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "schema.h"

#define CSBODY_MAX_ROWS 200000
#define CSBODY_MAX_VALUE 65536
/* a table header may declare 3 to this many columns */
#define CSBODY_MAX_COLS 64

/* Field types: the changeset's own codes, equal to SQLITE_INTEGER ..
 * SQLITE_NULL; CSBODY_UNDEFINED is a column an UPDATE does not carry. */
enum csbody_type {
	CSBODY_UNDEFINED = 0,
	CSBODY_INTEGER = 1,
	CSBODY_FLOAT = 2,
	CSBODY_TEXT = 3,
	CSBODY_BLOB = 4,
	CSBODY_NULL = 5,
};

/* Operations: the changeset's codes, equal to SQLITE_INSERT etc. */
enum csbody_kind {
	CSBODY_INSERT = 0x12,
	CSBODY_UPDATE = 0x17,
	CSBODY_DELETE = 0x09,
};

/* One field, pointing into the body (which must outlive it). */
struct csbody_value {
	enum csbody_type type;
	int64_t i;           /* INTEGER; FLOAT: the IEEE 754 bits */
	const uint8_t *p;    /* TEXT, BLOB: the bytes (not NUL-terminated) */
	size_t n;
};

/* One row operation. oldv holds the DELETE's and UPDATE's old record,
 * newv the INSERT's and UPDATE's new one; the other is all UNDEFINED.
 * Only the first ncol entries are set. */
struct csbody_op {
	const struct schema_table *t;  /* the schema's table (never NULL) */
	enum csbody_kind kind;
	int indirect;
	size_t ncol;                   /* t->ncolumns + 2 */
	struct csbody_value oldv[CSBODY_MAX_COLS];
	struct csbody_value newv[CSBODY_MAX_COLS];
};

struct csbody_iter {
	const uint8_t *p;
	size_t len, pos;
	const struct schema_table *t;  /* table of the current group */
	size_t ncol, rows, in_table;
	struct err *e;
};

/* 0 if body is a well-formed changeset of our schema's tables; -1 with
 * ERR_INVALID and a message naming the byte offset otherwise. */
int csbody_check(const uint8_t *body, size_t len, struct err *e);

/* Starts a walk of body (len bytes); failures are reported in e. */
void csbody_start(struct csbody_iter *it, const uint8_t *body, size_t len,
		  struct err *e);
/* Reads the next row operation into *op: 1 if there was one, 0 at the
 * end of a well-formed body, -1 (ERR_INVALID, as csbody_check) when the
 * body is malformed, whatever operations came before. */
int csbody_next(struct csbody_iter *it, struct csbody_op *op /* OUT */);

#endif
