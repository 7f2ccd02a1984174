/* csbody.c - strict pre-check of changeset bodies (see csbody.h). */
#include "csbody.h"

#include <string.h>

#include "schema.h"

enum {
	OP_INSERT = 0x12, /* SQLITE_INSERT */
	OP_UPDATE = 0x17, /* SQLITE_UPDATE */
	OP_DELETE = 0x09, /* SQLITE_DELETE */
	TYPE_UNDEFINED = 0,
	TYPE_INTEGER = 1,
	TYPE_FLOAT = 2,
	TYPE_TEXT = 3,
	TYPE_BLOB = 4,
	TYPE_NULL = 5,
};

struct walk {
	const uint8_t *p;
	size_t len, pos;
	struct err *e;
};

static int bad(struct walk *w, const char *what)
{
	err_set(w->e, ERR_INVALID, "change set body is malformed at byte %zu: "
		"%s", w->pos, what);
	return -1;
}

/* SQLite's varint: big-endian 7-bit groups, the 9th byte whole. */
static int get_varint(struct walk *w, uint64_t *out)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 9; i++) {
		uint8_t b;

		if (w->pos >= w->len)
			return bad(w, "truncated number");
		b = w->p[w->pos++];
		if (i == 8) {
			v = (v << 8) | b;
			break;
		}
		v = (v << 7) | (b & 0x7f);
		if (!(b & 0x80))
			break;
	}
	*out = v;
	return 0;
}

static int get_byte(struct walk *w, uint8_t *out)
{
	if (w->pos >= w->len)
		return bad(w, "truncated");
	*out = w->p[w->pos++];
	return 0;
}

static int skip(struct walk *w, uint64_t n)
{
	if (n > w->len - w->pos)
		return bad(w, "a value runs past the end");
	w->pos += (size_t)n;
	return 0;
}

/* One record of ncol fields; `undefined_ok` for UPDATE records. */
static int record(struct walk *w, size_t ncol, int undefined_ok)
{
	size_t i;

	for (i = 0; i < ncol; i++) {
		uint8_t type;
		uint64_t n;

		if (get_byte(w, &type))
			return -1;
		switch (type) {
		case TYPE_UNDEFINED:
			if (!undefined_ok)
				return bad(w, "an undefined field outside an "
					   "update");
			break;
		case TYPE_INTEGER:
		case TYPE_FLOAT:
			if (skip(w, 8))
				return -1;
			break;
		case TYPE_TEXT:
		case TYPE_BLOB:
			if (get_varint(w, &n))
				return -1;
			if (n > CSBODY_MAX_VALUE)
				return bad(w, "a value over the size limit");
			if (skip(w, n))
				return -1;
			break;
		case TYPE_NULL:
			break;
		default:
			return bad(w, "an unknown field type");
		}
	}
	return 0;
}

/* 'T', column count, key flags, table name; returns the column count. */
static int table_header(struct walk *w, size_t *ncol)
{
	const struct schema_table *t;
	const uint8_t *flags, *name, *nul;
	uint64_t n;
	size_t i;

	w->pos++; /* the 'T' */
	if (get_varint(w, &n))
		return -1;
	if (n < 3 || n > 64)
		return bad(w, "a table with an impossible column count");
	flags = w->p + w->pos;
	if (skip(w, n))
		return -1;
	name = w->p + w->pos;
	nul = memchr(name, 0, w->len - w->pos);
	if (!nul || nul - name > 64)
		return bad(w, "an unterminated table name");
	w->pos += (size_t)(nul - name) + 1;
	t = schema_table_find((const char *)name);
	if (!t)
		return bad(w, "an unknown table");
	if (n != t->ncolumns + 2)
		return bad(w, "a table with the wrong column count");
	/* key flags give each key column's position in the key: id, branch_id */
	for (i = 0; i < n; i++)
		if (flags[i] != (i < 2 ? i + 1 : 0))
			return bad(w, "a table keyed by the wrong columns");
	*ncol = (size_t)n;
	return 0;
}

static int change(struct walk *w, size_t ncol)
{
	uint8_t op, indirect;

	if (get_byte(w, &op) || get_byte(w, &indirect))
		return -1;
	if (indirect > 1)
		return bad(w, "a bad indirect flag");
	switch (op) {
	case OP_INSERT:
		return record(w, ncol, 0);
	case OP_DELETE:
		return record(w, ncol, 0);
	case OP_UPDATE:
		return record(w, ncol, 1) || record(w, ncol, 1) ? -1 : 0;
	default:
		return bad(w, "an unknown operation");
	}
}

int csbody_check(const uint8_t *body, size_t len, struct err *e)
{
	struct walk w = {body, len, 0, e};
	size_t ncol = 0, rows = 0, in_table = 0;

	if (len == 0)
		return bad(&w, "empty");
	while (w.pos < w.len) {
		if (w.p[w.pos] == 'T') {
			if (ncol && !in_table)
				return bad(&w, "a table without changes");
			if (table_header(&w, &ncol))
				return -1;
			in_table = 0;
			continue;
		}
		if (!ncol)
			return bad(&w, "a change before any table");
		if (change(&w, ncol))
			return -1;
		in_table++;
		if (++rows > CSBODY_MAX_ROWS)
			return bad(&w, "too many rows");
	}
	if (!in_table)
		return bad(&w, "a table without changes");
	return 0;
}
