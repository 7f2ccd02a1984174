/* merge_local.c - the clocks of this device's own writes, for capture: the
 * floor a captured body must be stamped above, and, once it is signed, the
 * clocks it gives its rows (merge.h). Its values are in the tables already.
 * The rows it inserts keep implicit clocks (implicit.h): found among the
 * highest rowids of their table, matched to the body's INSERTs by key, so
 * a row that merely moved is never taken for new. Not for change sets
 * from elsewhere (merge.c). */
#include "merge_int.h"

#include <string.h>

#include "mem.h"

void merge_local_release(struct merge_local *l)
{
	mem_free(l->keys);
	mem_free(l->index);
	mem_free(l->ops);
	memset(l, 0, sizeof *l);
}

static int local_nomem(struct err *e)
{
	err_set(e, ERR_INVALID, "out of memory");
	return -1;
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *q;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 256;
	q = mem_realloc(*p, ncap * size);
	if (!q)
		return -1;
	*p = q;
	*cap = ncap;
	return 0;
}

/* The scope every row shares; refuses a body that spans two. */
static int same_scope(const struct merge_op *op, char *scope, struct err *e)
{
	if (!changeset_scope_valid(op->branch_id, op->branch_len)) {
		err_set(e, ERR_INVALID, "a row in %s has no valid branch_id",
			op->t->name);
		return -1;
	}
	if (scope[0] && strcmp(scope, op->branch_id) != 0) {
		err_set(e, ERR_INVALID, "one write may touch one branch only, "
			"but this one touches %s and %s; write each branch "
			"separately", scope, op->branch_id);
		return -1;
	}
	strcpy(scope, op->branch_id);
	return 0;
}

/* Reads the keys of a captured operation, refusing what our own server
 * would refuse anyway. */
static int local_keys(const struct csbody_op *cop, struct merge_op *op,
		      char *scope, struct err *e)
{
	const struct csbody_value *keyv =
		cop->kind == CSBODY_INSERT ? cop->newv : cop->oldv;
	int ok;

	if (keyv[0].type != CSBODY_TEXT || keyv[1].type != CSBODY_TEXT) {
		err_set(e, ERR_INVALID, "captured a row without its keys");
		return -1;
	}
	ok = merge_op_keys(cop, op);
	if (keyv[1].n != op->branch_len)
		op->branch_len = 0; /* too long: not a valid scope */
	if (same_scope(op, scope, e))
		return -1;
	if (!ok || !schema_id_valid(op->id)) {
		err_set(e, ERR_INVALID, "record id %.64s in %s is not valid: "
			"ids are 1 to %d characters from a-z, A-Z, 0-9, '_', "
			"'.', ':' and '-'", op->id, op->t->name, SCHEMA_ID_MAX);
		return -1;
	}
	return 0;
}

static int refuse_deleted(const struct merge_op *op, struct err *e)
{
	err_set(e, ERR_INVALID, "record %s in %s was deleted and cannot be "
		"written again; create a new record", op->id, op->t->name);
	return -1;
}

static void raise_floor(const uint8_t *clocks, uint32_t cols, size_t ncol,
			uint64_t *floor)
{
	size_t i;

	for (i = 0; i < ncol; i++) {
		uint64_t h;
		int64_t d;

		if (!(cols & (UINT32_C(1) << i)))
			continue;
		merge_clock_get(clocks, i, &h, &d);
		if (h > *floor)
			*floor = h;
	}
}

/* An INSERT: only a tombstone matters; its key is kept for later. */
static int floor_insert(struct merge *m, const uint8_t *body,
			struct merge_op *op, uint64_t *floor, struct err *e)
{
	struct merge_local *l = &m->local;
	struct merge_local_key *k;

	if (m->tombs[op->tidx] < 0 &&
	    (m->tombs[op->tidx] = merge_table_has_tombstones(m, op->t, e)) < 0)
		return -1;
	if (m->tombs[op->tidx]) {
		if (merge_meta_load(m, op, e))
			return -1;
		if (op->deleted)
			return refuse_deleted(op, e);
		if (op->has_meta)
			raise_floor(op->clocks, UINT32_MAX, op->t->ncolumns,
				    floor);
	}
	if (grow((void **)&l->keys, &l->capkeys, l->nkeys, sizeof *l->keys))
		return local_nomem(e);
	k = &l->keys[l->nkeys++];
	k->tidx = (uint32_t)op->tidx;
	k->id_off = (uint32_t)(op->newv[0].p - body);
	k->branch_off = (uint32_t)(op->newv[1].p - body);
	k->id_len = (uint8_t)op->id_len;
	k->branch_len = (uint8_t)op->branch_len;
	k->matched = 0;
	merge_op_hash(op);
	memcpy(k->h, op->hash, IMPLICIT_HASH_BYTES);
	return 0;
}

/* An UPDATE or DELETE: the clocks of the cells it replaces, kept for
 * merge_record_local. A deleted row's rowid is gone: its implicit clocks
 * are found by the search that follows the walk. */
static int floor_change(struct merge *m, struct merge_op *op,
			struct err *e)
{
	struct merge_local *l = &m->local;
	struct merge_local_clocks *lc;
	size_t i;

	if (merge_meta_load(m, op, e))
		return -1;
	if (op->deleted)
		return refuse_deleted(op, e);
	if (grow((void **)&l->ops, &l->capops, l->nops, sizeof *l->ops))
		return local_nomem(e);
	lc = &l->ops[l->nops++];
	memset(lc, 0, sizeof *lc);
	lc->tidx = op->tidx;
	lc->has_meta = op->has_meta;
	merge_op_hash(op);
	memcpy(lc->h, op->hash, IMPLICIT_HASH_BYTES);
	for (i = 0; i < op->t->ncolumns; i++)
		if (op->op == CSBODY_DELETE ||
		    op->newv[i + 2].type != CSBODY_UNDEFINED)
			lc->floor_cols |= UINT32_C(1) << i;
	if (!op->has_meta && op->op == CSBODY_UPDATE) {
		sqlite3_stmt *st = merge_stmt(m, op->t, MERGE_ROWID_OF, 0, e);
		uint64_t hlc = 0;
		int64_t dev = 0;
		int found = 0, step;

		if (!st)
			return -1;
		merge_bind_keys(st, op);
		step = sqlite3_step(st);
		if (step == SQLITE_ROW &&
		    implicit_find(m->imp, op->t, sqlite3_column_int64(st, 0),
				  op->hash, &found, &hlc, &dev, e)) {
			sqlite3_reset(st);
			return -1;
		}
		sqlite3_reset(st);
		if (step != SQLITE_ROW && step != SQLITE_DONE)
			return merge_db_fail(m, e);
		if (found)
			merge_clocks_fill(op, hlc, dev);
		lc->pending = !found;
	} else if (!op->has_meta) {
		lc->pending = 1;
	}
	memcpy(lc->clocks, op->clocks, sizeof lc->clocks);
	return 0;
}

/* The slow search for the changes whose rows were not found by rowid, all
 * of one table at a time. Rows without clocks of either kind keep none, as
 * they always did. */
static int floor_search(struct merge *m, struct err *e)
{
	struct merge_local *l = &m->local;
	uint8_t (*hs)[IMPLICIT_HASH_BYTES] = NULL;
	uint64_t *hlc = NULL;
	int64_t *dev = NULL;
	int *found = NULL, rc = -1;
	size_t t, i, n;

	if (l->nops == 0)
		return 0;
	hs = mem_alloc(l->nops * sizeof *hs);
	hlc = mem_alloc(l->nops * sizeof *hlc);
	dev = mem_alloc(l->nops * sizeof *dev);
	found = mem_alloc(l->nops * sizeof *found);
	if (!hs || !hlc || !dev || !found) {
		local_nomem(e);
		goto cleanup;
	}
	for (t = 0; t < schema_table_count(); t++) {
		const struct schema_table *tab = schema_table_at(t);

		for (i = n = 0; i < l->nops; i++)
			if (l->ops[i].pending && l->ops[i].tidx == t)
				memcpy(hs[n++], l->ops[i].h, IMPLICIT_HASH_BYTES);
		if (n == 0)
			continue;
		if (implicit_search(m->imp, tab,
				    (const uint8_t (*)[IMPLICIT_HASH_BYTES])hs,
				    n, found, hlc, dev, e))
			goto cleanup;
		for (i = n = 0; i < l->nops; i++) {
			struct merge_local_clocks *lc = &l->ops[i];
			size_t c;

			if (!lc->pending || lc->tidx != t)
				continue;
			lc->pending = 0;
			if (!found[n++])
				continue;
			for (c = 0; c < tab->ncolumns; c++)
				merge_clock_set(lc->clocks, c, hlc[n - 1],
						dev[n - 1]);
		}
	}
	rc = 0;
cleanup:
	mem_free(hs);
	mem_free(hlc);
	mem_free(dev);
	mem_free(found);
	return rc;
}

int merge_clock_floor(struct merge *m, const uint8_t *body, size_t len,
		      uint64_t *floor, char scope[CHANGESET_SCOPE_MAX + 1],
		      struct err *e)
{
	struct merge_local *l = &m->local;
	struct csbody_iter it;
	struct csbody_op cop;
	struct merge_op op;
	size_t i;
	int step;

	*floor = 0;
	scope[0] = '\0';
	l->nkeys = l->nops = 0;
	l->body_len = len;
	for (i = 0; i < MERGE_MAX_TABLES; i++)
		m->tombs[i] = -1;
	if (len > CHANGESET_MAX_BODY) {
		err_set(e, ERR_INVALID, "captured change set is malformed");
		return -1;
	}
	csbody_start(&it, body, len, e);
	while ((step = csbody_next(&it, &cop)) == 1) {
		if (cop.ncol > MERGE_MAX_COLS + 2) {
			err_set(e, ERR_INVALID, "captured a table too wide "
				"for merge");
			return -1;
		}
		if (local_keys(&cop, &op, scope, e))
			return -1;
		if (cop.kind == CSBODY_INSERT ? floor_insert(m, body, &op, floor, e)
					      : floor_change(m, &op, e))
			return -1;
	}
	if (step < 0 || floor_search(m, e))
		return -1;
	for (i = 0; i < l->nops; i++)
		raise_floor(l->ops[i].clocks, l->ops[i].floor_cols,
			    schema_table_at(l->ops[i].tidx)->ncolumns, floor);
	return 0;
}

/* ---- recording ---- */

static uint64_t key_slot(const uint8_t *h)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | h[i];
	return v;
}

/* An open-addressing index of the inserted keys by fingerprint. */
static int index_keys(struct merge_local *l, struct err *e)
{
	size_t size = 16, i;

	while (size < 2 * l->nkeys)
		size *= 2;
	if (size > l->index_size) {
		uint32_t *grown = mem_realloc(l->index, size * sizeof *grown);

		if (!grown)
			return local_nomem(e);
		l->index = grown;
		l->index_size = size;
	}
	memset(l->index, 0, size * sizeof *l->index);
	for (i = 0; i < l->nkeys; i++) {
		size_t s = (size_t)key_slot(l->keys[i].h) & (size - 1);

		while (l->index[s])
			s = (s + 1) & (size - 1);
		l->index[s] = (uint32_t)i + 1;
	}
	l->index_size = size;
	return 0;
}

/* The inserted key of table tidx equal to (id, branch), or NULL. */
static struct merge_local_key *find_key(struct merge_local *l,
					const uint8_t *body, size_t tidx,
					const char *id, size_t id_len,
					const char *branch, size_t branch_len,
					const uint8_t *h)
{
	size_t s = (size_t)key_slot(h) & (l->index_size - 1);

	for (; l->index[s]; s = (s + 1) & (l->index_size - 1)) {
		struct merge_local_key *k = &l->keys[l->index[s] - 1];

		if (k->tidx == tidx && k->id_len == id_len &&
		    k->branch_len == branch_len &&
		    memcmp(body + k->id_off, id, id_len) == 0 &&
		    memcmp(body + k->branch_off, branch, branch_len) == 0)
			return k;
	}
	return NULL;
}

/* The rows of table tidx the body inserted (count of them) keep implicit
 * clocks. A new row gets the rowid after the highest present, so they are
 * among the `count` highest unless rows were deleted meanwhile; those
 * found elsewhere get explicit clocks (record_inserts). */
static int match_new_rows(struct merge *m, const uint8_t *body, size_t tidx,
			  size_t count, struct err *e)
{
	struct merge_local *l = &m->local;
	const struct schema_table *t = schema_table_at(tidx);
	sqlite3_stmt *st = merge_stmt(m, t, MERGE_NEW_ROWS, 0, e);
	int step, rc = -1;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)count);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 1);
		size_t id_len = (size_t)sqlite3_column_bytes(st, 1);
		const char *br = (const char *)sqlite3_column_text(st, 2);
		size_t br_len = (size_t)sqlite3_column_bytes(st, 2);
		uint8_t h[IMPLICIT_HASH_BYTES];
		struct merge_local_key *k;

		if (!id || !br || id_len > SCHEMA_ID_MAX ||
		    br_len > SCHEMA_ID_MAX)
			continue;
		implicit_key_hash(id, id_len, br, br_len, h);
		k = find_key(l, body, tidx, id, id_len, br, br_len, h);
		/* a row that is new here but not an INSERT of the body was
		 * deleted and written again: it is no insert of this set */
		if (!k || k->matched)
			continue;
		k->matched = 1;
		if (implicit_add(m->imp, tidx, sqlite3_column_int64(st, 0), h,
				 e))
			goto cleanup;
	}
	if (step != SQLITE_DONE) {
		merge_db_fail(m, e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_reset(st);
	return rc;
}

/* The INSERTs of the body: implicit clocks for those found among the
 * highest rowids, explicit ones for the others (rows deleted in the same
 * capture left them lower rowids). */
static int record_inserts(struct merge *m, const struct changeset *cs,
			  struct err *e)
{
	struct merge_local *l = &m->local;
	size_t tables[MERGE_MAX_TABLES] = {0};
	size_t i;

	if (l->nkeys == 0)
		return 0;
	if (index_keys(l, e))
		return -1;
	for (i = 0; i < l->nkeys; i++)
		tables[l->keys[i].tidx]++;
	for (i = 0; i < MERGE_MAX_TABLES; i++)
		if (tables[i] && match_new_rows(m, cs->body, i, tables[i], e))
			return -1;
	for (i = 0; i < l->nkeys; i++) {
		struct merge_local_key *k = &l->keys[i];
		struct merge_op op;

		if (k->matched)
			continue;
		memset(&op, 0, sizeof op);
		op.t = schema_table_at(k->tidx);
		op.tidx = k->tidx;
		memcpy(op.id, cs->body + k->id_off, k->id_len);
		op.id_len = k->id_len;
		memcpy(op.branch_id, cs->body + k->branch_off, k->branch_len);
		op.branch_len = k->branch_len;
		merge_clocks_fill(&op, cs->env.hlc, m->author_idx);
		if (merge_meta_store(m, &op, e))
			return -1;
	}
	return 0;
}

int merge_record_local(struct merge *m, const struct changeset *cs,
		       struct err *e)
{
	struct merge_local *l = &m->local;
	struct csbody_iter it;
	struct csbody_op cop;
	struct merge_op op;
	size_t k = 0, i;
	int step;

	if (cs->body_len != l->body_len) {
		err_set(e, ERR_INVALID, "captured change set is malformed");
		return -1;
	}
	if (merge_author_index(m, cs->env.author, e))
		return -1;
	implicit_discard(m->imp);
	/* a body of INSERTs only (an import) needs no second walk */
	step = 0;
	if (l->nops)
		csbody_start(&it, cs->body, cs->body_len, e);
	while (l->nops && (step = csbody_next(&it, &cop)) == 1) {
		struct merge_local_clocks *lc;

		if (cop.kind == CSBODY_INSERT)
			continue;
		if (k >= l->nops) {
			err_set(e, ERR_INVALID, "captured change set is "
				"malformed");
			return -1;
		}
		lc = &l->ops[k++];
		merge_op_keys(&cop, &op);
		memcpy(op.clocks, lc->clocks, sizeof op.clocks);
		if (cop.kind == CSBODY_DELETE) {
			op.deleted = 1;
			op.del_hlc = (int64_t)cs->env.hlc;
			op.del_dev = m->author_idx;
		} else {
			for (i = 0; i < op.t->ncolumns; i++)
				if (op.newv[i + 2].type != CSBODY_UNDEFINED)
					merge_clock_set(op.clocks, i,
							cs->env.hlc,
							m->author_idx);
		}
		if (merge_meta_store(m, &op, e))
			return -1;
	}
	if (step < 0 || record_inserts(m, cs, e) ||
	    implicit_flush(m->imp, cs->env.hlc, m->author_idx, e) ||
	    merge_mark_applied(m, cs, 0, e)) {
		implicit_discard(m->imp);
		return -1;
	}
	return 0;
}
