/* implicit.c - implicit clocks kept per range of rowids (see implicit.h and
 * docs/REPLICA.md for bs_implicit). */
#include "implicit.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mem.h"

/* Any fixed key will do: fingerprints never leave the replica, and
 * finding two keys with one 128-bit fingerprint costs 2^64 tries. */
static const uint8_t implicit_siphash_key[16] = {
	'b', 's', '-', 'i', 'm', 'p', 'l', 'i',
	'c', 'i', 't', '-', 'v', '1', 0x5a, 0xa5};

struct implicit_row {
	size_t tidx;
	int64_t rowid;
	uint8_t h[IMPLICIT_HASH_BYTES];
};

struct implicit {
	sqlite3 *db;
	sqlite3_stmt *find, *cut, *put, *search;
	struct implicit_row *rows;
	size_t n, cap;
};

static int implicit_db_fail(struct implicit *im, struct err *e)
{
	err_set(e, ERR_INVALID, "database error in the row clocks: %s",
		sqlite3_errmsg(im->db));
	return -1;
}

/* A reset statement, prepared on first use and kept. */
static sqlite3_stmt *stmt(struct implicit *im, sqlite3_stmt **st,
			  const char *sql, struct err *e)
{
	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
		return *st;
	}
	if (sqlite3_prepare_v3(im->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
			       NULL) != SQLITE_OK) {
		*st = NULL;
		implicit_db_fail(im, e);
		return NULL;
	}
	return *st;
}

int implicit_new(sqlite3 *db, struct implicit **out, struct err *e)
{
	struct implicit *im = mem_calloc(1, sizeof *im);

	*out = im;
	if (!im) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	im->db = db;
	return 0;
}

void implicit_free(struct implicit *im)
{
	if (!im)
		return;
	sqlite3_finalize(im->find);
	sqlite3_finalize(im->cut);
	sqlite3_finalize(im->put);
	sqlite3_finalize(im->search);
	mem_free(im->rows);
	mem_free(im);
}

void implicit_key_hash(const char *id, size_t id_len, const char *branch,
		       size_t branch_len, uint8_t out[IMPLICIT_HASH_BYTES])
{
	/* ids and scopes are at most 64 characters, never NUL */
	unsigned char in[2 * SCHEMA_ID_MAX + 2];
	size_t n = 0, i;
	int zero = 1;

	if (id_len > SCHEMA_ID_MAX)
		id_len = SCHEMA_ID_MAX;
	if (branch_len > SCHEMA_ID_MAX)
		branch_len = SCHEMA_ID_MAX;
	memcpy(in, id, id_len);
	n = id_len;
	in[n++] = 0;
	memcpy(in + n, branch, branch_len);
	n += branch_len;
	crypto_shorthash_siphashx24(out, in, n, implicit_siphash_key);
	for (i = 0; i < IMPLICIT_HASH_BYTES; i++)
		zero &= out[i] == 0;
	if (zero)
		out[0] = 1;
}

int implicit_find(struct implicit *im, const struct schema_table *t,
		  int64_t rowid, const uint8_t h[IMPLICIT_HASH_BYTES],
		  int *found, uint64_t *hlc, int64_t *dev, struct err *e)
{
	sqlite3_stmt *st;
	int step, rc = -1;

	*found = 0;
	/* the live ranges of a table never overlap (implicit_flush), so the
	 * first one ending at or after rowid is the only candidate */
	st = stmt(im, &im->find,
		  "SELECT first, last, hlc, dev, slots FROM bs_implicit"
		  " WHERE tbl=?1 AND last>=?2 AND last>=first"
		  " ORDER BY last LIMIT 1", e);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, rowid);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		int64_t first = sqlite3_column_int64(st, 0);
		int64_t last = sqlite3_column_int64(st, 1);
		const uint8_t *slots = sqlite3_column_blob(st, 4);
		size_t nslots = (size_t)sqlite3_column_bytes(st, 4) /
				IMPLICIT_HASH_BYTES;
		uint64_t at = (uint64_t)(rowid - first);

		if (rowid >= first && rowid <= last && at < nslots && slots &&
		    memcmp(slots + at * IMPLICIT_HASH_BYTES, h,
			   IMPLICIT_HASH_BYTES) == 0) {
			*found = 1;
			*hlc = (uint64_t)sqlite3_column_int64(st, 2);
			*dev = sqlite3_column_int64(st, 3);
		}
	} else if (step != SQLITE_DONE) {
		implicit_db_fail(im, e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_reset(st);
	return rc;
}

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, IMPLICIT_HASH_BYTES);
}

int implicit_search(struct implicit *im, const struct schema_table *t,
		    const uint8_t (*hs)[IMPLICIT_HASH_BYTES], size_t n,
		    int *found, uint64_t *hlc, int64_t *dev, struct err *e)
{
	uint8_t (*sorted)[IMPLICIT_HASH_BYTES] = NULL;
	sqlite3_stmt *st;
	size_t i;
	int step, rc = -1;

	for (i = 0; i < n; i++)
		found[i] = 0;
	if (n == 0)
		return 0;
	sorted = mem_alloc(n * sizeof *sorted);
	if (!sorted) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	memcpy(sorted, hs, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, hash_cmp);
	st = stmt(im, &im->search,
		  "SELECT hlc, dev, slots FROM bs_implicit WHERE tbl=?1", e);
	if (!st)
		goto cleanup;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *slots = sqlite3_column_blob(st, 2);
		size_t nslots = (size_t)sqlite3_column_bytes(st, 2) /
				IMPLICIT_HASH_BYTES, s;

		for (s = 0; slots && s < nslots; s++) {
			const uint8_t *h = slots + s * IMPLICIT_HASH_BYTES;
			const void *hit = bsearch(h, sorted, n, sizeof *sorted,
						  hash_cmp);

			if (!hit)
				continue;
			/* a key is inserted with implicit clocks at most once
			 * (a deleted key never comes back) */
			for (i = 0; i < n; i++) {
				if (memcmp(hs[i], h, IMPLICIT_HASH_BYTES))
					continue;
				found[i] = 1;
				hlc[i] = (uint64_t)sqlite3_column_int64(st, 0);
				dev[i] = sqlite3_column_int64(st, 1);
			}
		}
	}
	if (step != SQLITE_DONE) {
		implicit_db_fail(im, e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (st)
		sqlite3_reset(st);
	mem_free(sorted);
	return rc;
}

int implicit_add(struct implicit *im, size_t tidx, int64_t rowid,
		 const uint8_t h[IMPLICIT_HASH_BYTES], struct err *e)
{
	struct implicit_row *r;

	if (im->n == im->cap) {
		size_t cap = im->cap ? im->cap * 2 : 256;
		struct implicit_row *grown =
			mem_realloc(im->rows, cap * sizeof *grown);

		if (!grown) {
			err_set(e, ERR_INVALID, "out of memory");
			return -1;
		}
		im->rows = grown;
		im->cap = cap;
	}
	r = &im->rows[im->n++];
	r->tidx = tidx;
	r->rowid = rowid;
	memcpy(r->h, h, IMPLICIT_HASH_BYTES);
	return 0;
}

void implicit_discard(struct implicit *im)
{
	im->n = 0;
}

static int row_cmp(const void *a, const void *b)
{
	const struct implicit_row *x = a, *y = b;

	if (x->tidx != y->tidx)
		return x->tidx < y->tidx ? -1 : 1;
	return x->rowid < y->rowid ? -1 : x->rowid > y->rowid;
}

/* Cuts the live ranges of t off below `first`: the one across it ends
 * before it, those wholly above it end before they start. */
static int cut_below(struct implicit *im, const struct schema_table *t,
		     int64_t first, struct err *e)
{
	sqlite3_stmt *st;

	st = stmt(im, &im->cut,
		  "UPDATE bs_implicit SET last=CASE WHEN first>=?2 THEN first-1"
		  " ELSE ?2-1 END WHERE tbl=?1 AND last>=?2 AND last>=first",
		  e);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, first);
	if (sqlite3_step(st) != SQLITE_DONE)
		return implicit_db_fail(im, e);
	return 0;
}

/* Writes rows[a..b) (one table, ascending distinct rowids) as one range. */
static int put_range(struct implicit *im, const struct schema_table *t,
		     const struct implicit_row *rows, size_t a, size_t b,
		     uint64_t hlc, int64_t dev, struct err *e)
{
	uint8_t slots[IMPLICIT_MAX_SLOTS * IMPLICIT_HASH_BYTES];
	int64_t first = rows[a].rowid, last = rows[b - 1].rowid;
	sqlite3_stmt *st;
	size_t i;

	memset(slots, 0, (size_t)(last - first + 1) * IMPLICIT_HASH_BYTES);
	for (i = a; i < b; i++)
		memcpy(slots + (size_t)(rows[i].rowid - first) *
		       IMPLICIT_HASH_BYTES, rows[i].h, IMPLICIT_HASH_BYTES);
	st = stmt(im, &im->put,
		  "INSERT INTO bs_implicit(tbl, first, last, hlc, dev, rows,"
		  " slots) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", e);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, first);
	sqlite3_bind_int64(st, 3, last);
	sqlite3_bind_int64(st, 4, (int64_t)hlc);
	sqlite3_bind_int64(st, 5, dev);
	sqlite3_bind_int64(st, 6, (int64_t)(b - a));
	sqlite3_bind_blob(st, 7, slots,
			  (int)((last - first + 1) * IMPLICIT_HASH_BYTES),
			  SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return implicit_db_fail(im, e);
	return 0;
}

int implicit_flush(struct implicit *im, uint64_t hlc, int64_t dev,
		   struct err *e)
{
	size_t i, start, n = im->n;
	int sorted = 1, rc = -1;

	for (i = 1; i < n && sorted; i++)
		sorted = row_cmp(&im->rows[i - 1], &im->rows[i]) < 0;
	if (!sorted)
		qsort(im->rows, n, sizeof *im->rows, row_cmp);
	for (start = 0; start < n;) {
		const struct schema_table *t =
			schema_table_at(im->rows[start].tidx);
		size_t end = start, a;

		while (end < n && im->rows[end].tidx == im->rows[start].tidx)
			end++;
		if (cut_below(im, t, im->rows[start].rowid, e))
			goto cleanup;
		for (a = start; a < end;) {
			size_t b = a + 1;

			while (b < end &&
			       im->rows[b].rowid - im->rows[a].rowid <
				       IMPLICIT_MAX_SLOTS &&
			       im->rows[b].rowid - im->rows[b - 1].rowid <=
				       IMPLICIT_MAX_GAP)
				b++;
			if (put_range(im, t, im->rows, a, b, hlc, dev, e))
				goto cleanup;
			a = b;
		}
		start = end;
	}
	rc = 0;
cleanup:
	im->n = 0;
	return rc;
}
