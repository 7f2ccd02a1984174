/* csbody.c - strict walk of changeset bodies (see csbody.h): the check and
 * the iterator are one code path, so what merge reads is what was checked. */
#include "csbody.h"

#include <string.h>

static int bad(struct csbody_iter *w, const char *what)
{
	err_set(w->e, ERR_INVALID, "change set body is malformed at byte %zu: "
		"%s", w->pos, what);
	return -1;
}

/* SQLite's varint: big-endian 7-bit groups, the 9th byte whole. */
static int get_varint(struct csbody_iter *w, uint64_t *out)
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

static int get_byte(struct csbody_iter *w, uint8_t *out)
{
	if (w->pos >= w->len)
		return bad(w, "truncated");
	*out = w->p[w->pos++];
	return 0;
}

static int skip(struct csbody_iter *w, uint64_t n)
{
	if (n > w->len - w->pos)
		return bad(w, "a value runs past the end");
	w->pos += (size_t)n;
	return 0;
}

static int64_t get_i64be(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

/* One record of ncol fields into out; `undefined_ok` for UPDATE records. */
static int record(struct csbody_iter *w, size_t ncol, int undefined_ok,
		  struct csbody_value *out)
{
	size_t i;

	for (i = 0; i < ncol; i++) {
		struct csbody_value *v = &out[i];
		uint8_t type;
		uint64_t n;

		if (get_byte(w, &type))
			return -1;
		v->type = (enum csbody_type)type;
		v->i = 0;
		v->p = NULL;
		v->n = 0;
		switch (type) {
		case CSBODY_UNDEFINED:
			if (!undefined_ok)
				return bad(w, "an undefined field outside an "
					   "update");
			break;
		case CSBODY_INTEGER:
		case CSBODY_FLOAT:
			if (w->len - w->pos < 8)
				return skip(w, 8);
			v->i = get_i64be(w->p + w->pos);
			w->pos += 8;
			break;
		case CSBODY_TEXT:
		case CSBODY_BLOB:
			if (get_varint(w, &n))
				return -1;
			if (n > CSBODY_MAX_VALUE)
				return bad(w, "a value over the size limit");
			v->p = w->p + w->pos;
			v->n = (size_t)n;
			if (skip(w, n))
				return -1;
			break;
		case CSBODY_NULL:
			break;
		default:
			return bad(w, "an unknown field type");
		}
	}
	return 0;
}

static void undefined(struct csbody_value *v, size_t ncol)
{
	size_t i;

	for (i = 0; i < ncol; i++) {
		v[i].type = CSBODY_UNDEFINED;
		v[i].i = 0;
		v[i].p = NULL;
		v[i].n = 0;
	}
}

/* 'T', column count, key flags, table name. */
static int table_header(struct csbody_iter *w)
{
	const struct schema_table *t;
	const uint8_t *flags, *name, *nul;
	uint64_t n;
	size_t i;

	w->pos++; /* the 'T' */
	if (get_varint(w, &n))
		return -1;
	if (n < 3 || n > CSBODY_MAX_COLS)
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
	w->t = t;
	w->ncol = (size_t)n;
	return 0;
}

static int change(struct csbody_iter *w, struct csbody_op *op)
{
	uint8_t kind, indirect;

	if (get_byte(w, &kind) || get_byte(w, &indirect))
		return -1;
	if (indirect > 1)
		return bad(w, "a bad indirect flag");
	op->t = w->t;
	op->ncol = w->ncol;
	op->indirect = indirect;
	switch (kind) {
	case CSBODY_INSERT:
		op->kind = CSBODY_INSERT;
		undefined(op->oldv, w->ncol);
		return record(w, w->ncol, 0, op->newv);
	case CSBODY_DELETE:
		op->kind = CSBODY_DELETE;
		undefined(op->newv, w->ncol);
		return record(w, w->ncol, 0, op->oldv);
	case CSBODY_UPDATE:
		op->kind = CSBODY_UPDATE;
		return record(w, w->ncol, 1, op->oldv) ||
		       record(w, w->ncol, 1, op->newv) ? -1 : 0;
	default:
		return bad(w, "an unknown operation");
	}
}

void csbody_start(struct csbody_iter *it, const uint8_t *body, size_t len,
		  struct err *e)
{
	memset(it, 0, sizeof *it);
	it->p = body;
	it->len = len;
	it->e = e;
}

int csbody_next(struct csbody_iter *w, struct csbody_op *op)
{
	if (w->len == 0)
		return bad(w, "empty");
	while (w->pos < w->len && w->p[w->pos] == 'T') {
		if (w->ncol && !w->in_table)
			return bad(w, "a table without changes");
		if (table_header(w))
			return -1;
		w->in_table = 0;
	}
	if (w->pos == w->len) {
		if (!w->in_table)
			return bad(w, "a table without changes");
		return 0;
	}
	if (!w->ncol)
		return bad(w, "a change before any table");
	if (change(w, op))
		return -1;
	w->in_table++;
	if (++w->rows > CSBODY_MAX_ROWS)
		return bad(w, "too many rows");
	return 1;
}

int csbody_check(const uint8_t *body, size_t len, struct err *e)
{
	struct csbody_iter it;
	struct csbody_op op;
	int rc;

	csbody_start(&it, body, len, e);
	while ((rc = csbody_next(&it, &op)) == 1)
		;
	return rc;
}
