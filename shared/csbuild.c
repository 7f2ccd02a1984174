/* csbuild.c - changeset INSERT records written from the values an insert
 * stored (see csbuild.h). The bytes, as sqlite3session.c writes them:
 *   table header: 'T', varint column count, one key flag per column (its
 *                 1-based position in the primary key, 0 if none: 1 2 0 ...
 *                 for our (id, branch_id) keys), the table name, 0x00;
 *   INSERT:       0x12 (SQLITE_INSERT), 0x00 (not indirect), one value per
 *                 column;
 *   value:        a type byte (1 INTEGER, 3 TEXT, 5 NULL), then INTEGER: 8
 *                 bytes big-endian two's complement; TEXT: varint byte
 *                 count and the UTF-8 bytes; NULL: nothing.
 * Varints are SQLite's (big-endian groups of 7 bits, high bit set on all
 * but the last; a 9th byte, if any, holds 8 bits), not LEB128. */
#include "csbuild.h"

#include <string.h>

#include "mem.h"

#define CSBUILD_OP_INSERT 0x12
#define CSBUILD_INTEGER	  1
#define CSBUILD_TEXT	  3
#define CSBUILD_NULL	  5
/* A record up to this size is put together on the stack. */
#define CSBUILD_RECORD_LOCAL 1024

void csbuild_init(struct csbuild *b, size_t max)
{
	size_t i;

	for (i = 0; i < CSBUILD_MAX_TABLES; i++)
		buf_init(&b->table[i], max);
	buf_init(&b->joined, max);
	b->rows = 0;
}

void csbuild_release(struct csbuild *b)
{
	size_t i;

	for (i = 0; i < CSBUILD_MAX_TABLES; i++)
		buf_release(&b->table[i]);
	buf_release(&b->joined);
	b->rows = 0;
}

void csbuild_reset(struct csbuild *b)
{
	size_t i;

	for (i = 0; i < CSBUILD_MAX_TABLES; i++)
		buf_reset(&b->table[i]);
	buf_reset(&b->joined);
	b->rows = 0;
}

/* SQLite's putVarint64: writes v to p (room for 9 bytes), returns the
 * number of bytes written. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
	uint8_t rev[10];
	size_t n = 0, i;

	if (v & (UINT64_C(0xff000000) << 32)) {
		p[8] = (uint8_t)v;
		v >>= 8;
		for (i = 8; i-- > 0;) {
			p[i] = (uint8_t)((v & 0x7f) | 0x80);
			v >>= 7;
		}
		return 9;
	}
	do {
		rev[n++] = (uint8_t)((v & 0x7f) | 0x80);
		v >>= 7;
	} while (v != 0);
	rev[0] &= 0x7f;
	for (i = 0; i < n; i++)
		p[i] = rev[n - 1 - i];
	return n;
}

static void add_varint(struct buf *out, uint64_t v)
{
	uint8_t p[9];

	buf_append(out, p, put_varint(p, v));
}

static void add_header(struct buf *out, const struct schema_table *t)
{
	uint8_t flags[CSBUILD_MAX_COLUMNS];
	size_t n = t->ncolumns + 2;

	memset(flags, 0, sizeof flags);
	flags[0] = 1;
	flags[1] = 2;
	buf_append_u8(out, 'T');
	add_varint(out, n);
	buf_append(out, flags, n);
	buf_append(out, t->name, strlen(t->name) + 1);
}

/* Bytes of the INSERT record of vals (ncol values); lens[i] gets the
 * length of each text. */
static size_t record_size(const struct schema_value *const *vals, size_t ncol,
			  size_t *lens)
{
	uint8_t scratch[9];
	size_t i, n = 2;

	for (i = 0; i < ncol; i++) {
		if (vals[i]->kind == SCHEMA_VALUE_INT) {
			n += 9;
		} else if (vals[i]->kind == SCHEMA_VALUE_TEXT) {
			lens[i] = strlen(vals[i]->text);
			n += 1 + put_varint(scratch, lens[i]) + lens[i];
		} else {
			n += 1;
		}
	}
	return n;
}

/* Writes the INSERT record of vals to p (record_size bytes). */
static void record_write(uint8_t *p, const struct schema_value *const *vals,
			 size_t ncol, const size_t *lens)
{
	uint64_t u;
	size_t i, k;

	*p++ = CSBUILD_OP_INSERT;
	*p++ = 0; /* not indirect */
	for (i = 0; i < ncol; i++) {
		switch (vals[i]->kind) {
		case SCHEMA_VALUE_INT:
			*p++ = CSBUILD_INTEGER;
			u = (uint64_t)vals[i]->i;
			for (k = 8; k-- > 0;) {
				p[k] = (uint8_t)u;
				u >>= 8;
			}
			p += 8;
			break;
		case SCHEMA_VALUE_TEXT:
			*p++ = CSBUILD_TEXT;
			p += put_varint(p, lens[i]);
			memcpy(p, vals[i]->text, lens[i]);
			p += lens[i];
			break;
		default:
			*p++ = CSBUILD_NULL;
			break;
		}
	}
}

int csbuild_fits(const struct schema_table *t,
		 const struct schema_value *const *vals)
{
	size_t i;

	if (t->ncolumns + 2 > CSBUILD_MAX_COLUMNS)
		return 0;
	if (vals[0]->kind != SCHEMA_VALUE_TEXT ||
	    vals[1]->kind != SCHEMA_VALUE_TEXT)
		return 0;
	for (i = 0; i < t->ncolumns; i++) {
		enum schema_value_kind k = vals[i + 2]->kind;

		if (k == SCHEMA_VALUE_NULL)
			continue;
		if (k != (t->columns[i].type == SCHEMA_INT ? SCHEMA_VALUE_INT
							   : SCHEMA_VALUE_TEXT))
			return 0;
	}
	return 1;
}

enum bs_status csbuild_insert(struct csbuild *b, size_t tidx,
			      const struct schema_value *const *vals)
{
	const struct schema_table *t = schema_table_at(tidx);
	uint8_t local[CSBUILD_RECORD_LOCAL], *rec = local;
	size_t lens[CSBUILD_MAX_COLUMNS], n, ncol, was;
	struct buf *out;
	enum bs_status st;

	if (!t || tidx >= CSBUILD_MAX_TABLES ||
	    t->ncolumns + 2 > CSBUILD_MAX_COLUMNS)
		return BS_EINVALID;
	ncol = t->ncolumns + 2;
	out = &b->table[tidx];
	was = out->len;
	/* one append per row: a row of long texts needs a bigger scratch */
	n = record_size(vals, ncol, lens);
	if (n > sizeof local && !(rec = mem_alloc(n)))
		return BS_ENOMEM;
	record_write(rec, vals, ncol, lens);
	if (was == 0)
		add_header(out, t);
	buf_append(out, rec, n);
	if (rec != local)
		mem_free(rec);
	st = out->status;
	if (st != BS_OK) {
		/* drop the partial record: b stays as it was */
		out->len = was;
		out->status = BS_OK;
		return st;
	}
	b->rows++;
	return BS_OK;
}

enum bs_status csbuild_body(struct csbuild *b, const uint8_t **body,
			    size_t *len)
{
	size_t i, used = 0, last = 0;

	*body = NULL;
	*len = 0;
	for (i = 0; i < CSBUILD_MAX_TABLES; i++) {
		if (b->table[i].len) {
			used++;
			last = i;
		}
	}
	if (used == 0)
		return BS_OK;
	if (used == 1) {
		/* the common case (an import, a put): no copy */
		*body = b->table[last].data;
		*len = b->table[last].len;
		return BS_OK;
	}
	buf_reset(&b->joined);
	for (i = 0; i < CSBUILD_MAX_TABLES; i++)
		buf_append(&b->joined, b->table[i].data, b->table[i].len);
	if (b->joined.status != BS_OK)
		return b->joined.status;
	*body = b->joined.data;
	*len = b->joined.len;
	return BS_OK;
}
