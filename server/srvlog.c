/* srvlog.c - the server's log and its Merkle tree (see srvlog.h). */
#include "srvlog.h"

#include <stdio.h>
#include <string.h>

#include "mem.h"

enum srvlog_stmt {
	LOG_PUT_ENTRY,
	LOG_PUT_NODE,
	LOG_GET_LEAF,
	LOG_GET_NODE,
	LOG_GET_FRONTIER,
	LOG_PUT_FRONTIER,
	LOG_COUNT,
	LOG_CP_LATEST,
	LOG_CP_SIZE,
	LOG_CP_PUT,
	LOG_GET_ENTRY,
	LOG_STMT_COUNT
};

/* The frontier is the replica setting "frontier" (replica.c's bs_settings),
 * written here with a cached statement as it changes with every entry. */
static const char *const srvlog_sql[LOG_STMT_COUNT] = {
	[LOG_PUT_ENTRY] = "INSERT INTO srv_log(idx, kind, verdict, entry, leaf,"
			  " author, seq, cs_id, scope, time_ms) VALUES(?1, ?2,"
			  " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[LOG_PUT_NODE] = "INSERT INTO srv_nodes(level, idx, hash)"
			 " VALUES(?1, ?2, ?3)",
	[LOG_GET_LEAF] = "SELECT leaf FROM srv_log WHERE idx=?1",
	[LOG_GET_NODE] = "SELECT hash FROM srv_nodes WHERE level=?1 AND idx=?2",
	[LOG_GET_FRONTIER] = "SELECT value FROM bs_settings"
			     " WHERE key='frontier'",
	[LOG_PUT_FRONTIER] = "INSERT INTO bs_settings(key, value)"
			     " VALUES('frontier', ?1) ON CONFLICT(key)"
			     " DO UPDATE SET value=excluded.value",
	/* max(idx) is one index lookup; count(*) would scan the log */
	[LOG_COUNT] = "SELECT coalesce(max(idx) + 1, 0) FROM srv_log",
	[LOG_CP_LATEST] = "SELECT bytes FROM srv_checkpoints"
			  " ORDER BY size DESC LIMIT 1",
	[LOG_CP_SIZE] = "SELECT bytes FROM srv_checkpoints WHERE size=?1",
	[LOG_CP_PUT] = "INSERT OR IGNORE INTO srv_checkpoints(size, bytes)"
		       " VALUES(?1, ?2)",
	[LOG_GET_ENTRY] = "SELECT entry FROM srv_log WHERE idx=?1",
};

/* Proofs for a page of entries ask for the same subtrees again and again,
 * and so do the pulls that follow. A reader keeps the hashes it read or
 * computed, of leaves, complete subtrees and the incomplete right edges
 * of the trees proven: MTH(D[start:start+len]) of committed entries never
 * changes. (Not the writer: what it reads may be rolled back.)
 * Direct-mapped, so bounded. */
#define SRVLOG_CACHE_SLOTS 8192

struct srvlog_node {
	uint64_t start, len; /* len 0: unused */
	uint8_t hash[HASH_BYTES];
};

struct srvlog {
	struct store *s;
	struct merkle_compact frontier;
	sqlite3_stmt *stmt[LOG_STMT_COUNT]; /* prepared on first use */
	struct srvlog_node *cache;	    /* readers only; NULL if none */
};

static struct srvlog_node *cache_slot(struct srvlog *l, uint64_t start,
				      uint64_t len)
{
	uint64_t k = (start * 0x9e3779b97f4a7c15ull) ^
		     (len * 0xc2b2ae3d27d4eb4full);

	return &l->cache[(k >> 32) % SRVLOG_CACHE_SLOTS];
}

/* 1 and out if MTH(D[start:start+len]) is cached. */
static int cache_get(struct srvlog *l, uint64_t start, uint64_t len,
		     uint8_t out[HASH_BYTES])
{
	struct srvlog_node *n;

	if (!l->cache)
		return 0;
	n = cache_slot(l, start, len);
	if (n->len != len || n->start != start)
		return 0;
	memcpy(out, n->hash, HASH_BYTES);
	return 1;
}

static void cache_put(struct srvlog *l, uint64_t start, uint64_t len,
		      const uint8_t hash[HASH_BYTES])
{
	struct srvlog_node *n;

	if (!l->cache)
		return;
	n = cache_slot(l, start, len);
	n->start = start;
	n->len = len;
	memcpy(n->hash, hash, HASH_BYTES);
}

static int db_error(struct srvlog *l, const char *what, struct err *e)
{
	err_set(e, ERR_INVALID, "log database error %s: %s", what,
		sqlite3_errmsg(l->s->r->db));
	return -1;
}

/* The cached statement `which`, reset and unbound; NULL on error. */
static sqlite3_stmt *stmt(struct srvlog *l, enum srvlog_stmt which,
			  struct err *e)
{
	sqlite3_stmt **st = &l->stmt[which];

	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
		return *st;
	}
	if (sqlite3_prepare_v3(l->s->r->db, srvlog_sql[which], -1,
			       SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK)
		return *st;
	db_error(l, "preparing", e);
	return NULL;
}

/* Reads the frontier and counts the entries; both in one snapshot. */
static int reload(struct srvlog *l, struct err *e)
{
	sqlite3_stmt *st;
	int64_t count = 0;
	int rc = -1, step;

	merkle_compact_init(&l->frontier);
	st = stmt(l, LOG_GET_FRONTIER, e);
	if (!st)
		return -1;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW &&
	    merkle_compact_decode(&l->frontier, sqlite3_column_blob(st, 0),
				  (size_t)sqlite3_column_bytes(st, 0)) != BS_OK) {
		err_set(e, ERR_INVALID, "the log's tree frontier is damaged");
		goto cleanup;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		db_error(l, "reading the tree frontier", e);
		goto cleanup;
	}
	sqlite3_reset(st);
	st = stmt(l, LOG_COUNT, e);
	if (!st)
		goto cleanup;
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_error(l, "counting entries", e);
		goto cleanup;
	}
	count = sqlite3_column_int64(st, 0);
	if ((uint64_t)count != l->frontier.size) {
		err_set(e, ERR_INVALID, "the log holds %lld entries but its tree "
			"%llu; the data directory is damaged",
			(long long)count, (unsigned long long)l->frontier.size);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (st)
		sqlite3_reset(st);
	return rc;
}

int srvlog_reload(struct srvlog *l, struct err *e)
{
	sqlite3 *db = l->s->r->db;
	int rc;

	if (!sqlite3_get_autocommit(db))
		return reload(l, e);
	/* outside a transaction, a commit by another connection could fall
	 * between the two reads */
	if (replica_exec(db, "BEGIN", e))
		return -1;
	rc = reload(l, e);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

int srvlog_open(struct store *s, struct srvlog **out, struct err *e)
{
	struct srvlog *l = mem_calloc(1, sizeof *l);

	*out = NULL;
	if (!l) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	l->s = s;
	/* without memory for it, proofs just read every node */
	if (s->reader)
		l->cache = mem_calloc(SRVLOG_CACHE_SLOTS, sizeof *l->cache);
	if (srvlog_reload(l, e)) {
		srvlog_free(l);
		return -1;
	}
	*out = l;
	return 0;
}

void srvlog_free(struct srvlog *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < LOG_STMT_COUNT; i++)
		sqlite3_finalize(l->stmt[i]);
	mem_free(l->cache);
	mem_free(l);
}

uint64_t srvlog_size(const struct srvlog *l) { return l->frontier.size; }

static int put_node(struct srvlog *l, unsigned level, uint64_t idx,
		    const uint8_t hash[HASH_BYTES], struct err *e)
{
	sqlite3_stmt *st = stmt(l, LOG_PUT_NODE, e);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int(st, 1, (int)level);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	sqlite3_bind_blob(st, 3, hash, HASH_BYTES, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE
		? 0 : db_error(l, "storing a tree node", e);
	sqlite3_reset(st);
	return rc;
}

/* Stores every complete subtree the new leaf closes: while the node is a
 * right child, its left sibling is the last frontier root. */
static int store_completed(struct srvlog *l, uint64_t index,
			   const uint8_t leaf[HASH_BYTES], struct err *e)
{
	uint8_t h[HASH_BYTES];
	size_t roots = 0;
	uint64_t size = l->frontier.size, i = index;
	unsigned level = 0;

	for (; size; size &= size - 1)
		roots++;
	memcpy(h, leaf, HASH_BYTES);
	while (i & 1) {
		merkle_node_hash(h, l->frontier.root[--roots], h);
		i >>= 1;
		level++;
		if (put_node(l, level, i, h, e))
			return -1;
	}
	return 0;
}

static int save_frontier(struct srvlog *l, struct err *e)
{
	sqlite3_stmt *st;
	struct buf b;
	int rc = -1;

	buf_init(&b, MERKLE_FRONTIER_MAX_ENCODED);
	if (merkle_compact_encode(&l->frontier, &b) != BS_OK) {
		err_set(e, ERR_INVALID, "cannot encode the log's tree frontier");
		goto cleanup;
	}
	st = stmt(l, LOG_PUT_FRONTIER, e);
	if (!st)
		goto cleanup;
	sqlite3_bind_blob(st, 1, b.data, (int)b.len, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		db_error(l, "storing the tree frontier", e);
	sqlite3_reset(st);
cleanup:
	buf_release(&b);
	return rc;
}

int srvlog_leaf(const struct logentry *le, uint8_t leaf[HASH_BYTES])
{
	struct buf enc;
	int rc = -1;

	buf_init(&enc, LOGENTRY_MAX);
	if (logentry_encode(le, &enc) == BS_OK) {
		logentry_leaf_hash(enc.data, enc.len, leaf);
		rc = 0;
	}
	buf_release(&enc);
	return rc;
}

int srvlog_append(struct srvlog *l, const struct logentry *le,
		  const struct srvlog_meta *meta, uint64_t *index,
		  struct err *e)
{
	struct buf enc;
	uint8_t leaf[HASH_BYTES];
	sqlite3_stmt *st;
	int rc = -1;

	buf_init(&enc, LOGENTRY_MAX);
	if (logentry_encode(le, &enc) != BS_OK) {
		err_set(e, ERR_INVALID, "cannot encode a log entry");
		goto cleanup;
	}
	if (meta->leaf)
		memcpy(leaf, meta->leaf, HASH_BYTES);
	else
		logentry_leaf_hash(enc.data, enc.len, leaf);
	*index = l->frontier.size;
	st = stmt(l, LOG_PUT_ENTRY, e);
	if (!st)
		goto cleanup;
	sqlite3_bind_int64(st, 1, (int64_t)*index);
	sqlite3_bind_int(st, 2, (int)le->kind);
	sqlite3_bind_int(st, 3, (int)le->verdict);
	sqlite3_bind_blob64(st, 4, enc.data, enc.len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, leaf, HASH_BYTES, SQLITE_STATIC);
	if (meta->author)
		sqlite3_bind_blob(st, 6, meta->author, SIGN_PUBLIC_BYTES,
				  SQLITE_STATIC);
	if (meta->seq)
		sqlite3_bind_int64(st, 7, (int64_t)meta->seq);
	if (meta->cs_id)
		sqlite3_bind_blob(st, 8, meta->cs_id, HASH_BYTES, SQLITE_STATIC);
	if (meta->scope)
		sqlite3_bind_text(st, 9, meta->scope, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, meta->time_ms);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_error(l, "appending", e);
		sqlite3_reset(st);
		goto cleanup;
	}
	sqlite3_reset(st);
	if (store_completed(l, *index, leaf, e))
		goto cleanup;
	if (merkle_compact_append(&l->frontier, leaf) != BS_OK) {
		err_set(e, ERR_INVALID, "the log is full");
		goto cleanup;
	}
	if (save_frontier(l, e))
		goto cleanup;
	rc = 0;
cleanup:
	buf_release(&enc);
	return rc;
}

static int store_checkpoint(struct srvlog *l, const struct checkpoint *cp,
			    struct err *e)
{
	sqlite3_stmt *st = stmt(l, LOG_CP_PUT, e);
	uint8_t bytes[CHECKPOINT_SIGNED_MAX];
	int rc = -1;

	if (!st)
		return -1;
	memcpy(bytes, cp->raw, cp->raw_len);
	memcpy(bytes + cp->raw_len, cp->sig, SIGN_BYTES);
	sqlite3_bind_int64(st, 1, (int64_t)cp->size);
	sqlite3_bind_blob(st, 2, bytes, (int)(cp->raw_len + SIGN_BYTES),
			  SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		db_error(l, "storing a checkpoint", e);
	sqlite3_reset(st);
	return rc;
}

int srvlog_checkpoint_get(struct srvlog *l, int64_t size,
			  struct checkpoint *out, struct err *e)
{
	sqlite3_stmt *st = stmt(l, size < 0 ? LOG_CP_LATEST : LOG_CP_SIZE, e);
	int rc = -1;

	if (!st)
		return -1;
	if (size >= 0)
		sqlite3_bind_int64(st, 1, size);
	if (sqlite3_step(st) != SQLITE_ROW)
		err_set(e, ERR_INVALID, "no checkpoint of that size");
	else if (checkpoint_decode(sqlite3_column_blob(st, 0),
				   (size_t)sqlite3_column_bytes(st, 0),
				   out) != BS_OK)
		err_set(e, ERR_INVALID, "a stored checkpoint is damaged");
	else
		rc = 0;
	sqlite3_reset(st);
	return rc;
}

int srvlog_checkpoint(struct srvlog *l, int64_t now_ms,
		      struct checkpoint *out, struct err *e)
{
	struct err quiet;
	struct buf b;
	int rc = -1;

	err_init(&quiet);
	if (srvlog_checkpoint_get(l, -1, out, &quiet) == 0 &&
	    out->size == l->frontier.size)
		return 0;
	if (!l->s->key) {
		err_set(e, ERR_INVALID, "the server key is locked");
		return -1;
	}
	memset(out, 0, sizeof *out);
	snprintf(out->origin, sizeof out->origin, "%s", l->s->origin);
	out->size = l->frontier.size;
	merkle_compact_root(&l->frontier, out->root);
	out->time_ms = (uint64_t)now_ms;
	buf_init(&b, CHECKPOINT_SIGNED_MAX);
	if (checkpoint_sign(out, l->s->key->sk, &b) != BS_OK)
		err_set(e, ERR_INVALID, "cannot sign a checkpoint");
	else
		rc = store_checkpoint(l, out, e);
	buf_release(&b);
	return rc;
}

static enum bs_status leaf_from_db(void *ctx, uint64_t index,
				   uint8_t out[HASH_BYTES])
{
	struct srvlog *l = ctx;
	struct err e;
	sqlite3_stmt *st;
	enum bs_status rc = BS_EINVALID;

	if (cache_get(l, index, 1, out))
		return BS_OK;
	err_init(&e);
	st = stmt(l, LOG_GET_LEAF, &e);
	if (!st)
		return BS_EINVALID;
	sqlite3_bind_int64(st, 1, (int64_t)index);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 0) == HASH_BYTES) {
		memcpy(out, sqlite3_column_blob(st, 0), HASH_BYTES);
		cache_put(l, index, 1, out);
		rc = BS_OK;
	}
	sqlite3_reset(st);
	return rc;
}

static enum bs_status node_from_db(void *ctx, uint64_t start, unsigned level,
				   uint8_t out[HASH_BYTES], bool *found)
{
	struct srvlog *l = ctx;
	struct err e;
	sqlite3_stmt *st;

	*found = cache_get(l, start, (uint64_t)1 << level, out);
	if (*found)
		return BS_OK;
	err_init(&e);
	st = stmt(l, LOG_GET_NODE, &e);
	if (!st)
		return BS_EINVALID;
	sqlite3_bind_int(st, 1, (int)level);
	sqlite3_bind_int64(st, 2, (int64_t)(start >> level));
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 0) == HASH_BYTES) {
		memcpy(out, sqlite3_column_blob(st, 0), HASH_BYTES);
		cache_put(l, start, (uint64_t)1 << level, out);
		*found = true;
	}
	sqlite3_reset(st);
	return BS_OK;
}

static void db_source(struct srvlog *l, struct merkle_source *src)
{
	src->leaf = leaf_from_db;
	src->subtree = node_from_db;
	src->ctx = l;
}

/* RFC 9162's k: the largest power of two below n (n >= 2). */
static uint64_t split(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

/* MTH(D[start:start+n]), n >= 1 (RFC 9162 2.1.1): from the cache, from
 * the stored leaves and complete subtrees, or from its two halves.
 * Recursion depth <= 64. */
static enum bs_status range_hash(struct srvlog *l, uint64_t start, uint64_t n,
				 uint8_t out[HASH_BYTES])
{
	uint8_t left[HASH_BYTES], right[HASH_BYTES];
	enum bs_status rc;
	bool found = false;
	uint64_t k;

	if (cache_get(l, start, n, out))
		return BS_OK;
	if (n == 1)
		return leaf_from_db(l, start, out);
	if ((n & (n - 1)) == 0) {
		rc = node_from_db(l, start, (unsigned)__builtin_ctzll(n), out,
				  &found);
		if (rc || found)
			return rc;
	}
	k = split(n);
	rc = range_hash(l, start, k, left);
	if (rc == BS_OK)
		rc = range_hash(l, start + k, n - k, right);
	if (rc)
		return rc;
	merkle_node_hash(out, left, right);
	cache_put(l, start, n, out);
	return BS_OK;
}

/* PATH(index, D[size]) of RFC 9162 2.1.3.1, as merkle_inclusion_proof
 * makes it (same subtrees, same order: its siblings from the leaf up), but
 * with range_hash: the incomplete right edges of the tree, which every
 * proof against the same size shares, are hashed once per reader instead
 * of once per proof (five of the six hashes of a proof in a tree of a few
 * thousand entries). tests/test_srvlog.c holds them equal. */
int srvlog_inclusion(struct srvlog *l, uint64_t index, uint64_t size,
		     struct merkle_path *out, struct err *e)
{
	uint64_t base = 0, m = index, n = size, k, start, len;
	size_t depth = 0, i;
	uint8_t t[HASH_BYTES];

	out->count = 0;
	if (size > l->frontier.size || index >= size)
		goto fail;
	/* top down, each level's sibling; the proof lists them bottom up */
	while (n > 1) {
		k = split(n);
		if (m < k) {
			start = base + k;
			len = n - k;
			n = k;
		} else {
			start = base;
			len = k;
			base += k;
			m -= k;
			n -= k;
		}
		if (depth == MERKLE_MAX_PROOF ||
		    range_hash(l, start, len, out->hash[depth]) != BS_OK)
			goto fail;
		depth++;
	}
	for (i = 0; i < depth / 2; i++) {
		memcpy(t, out->hash[i], HASH_BYTES);
		memcpy(out->hash[i], out->hash[depth - 1 - i], HASH_BYTES);
		memcpy(out->hash[depth - 1 - i], t, HASH_BYTES);
	}
	out->count = depth;
	return 0;
fail:
	out->count = 0;
	err_set(e, ERR_INVALID, "no inclusion proof for entry %llu in a "
		"tree of %llu", (unsigned long long)index,
		(unsigned long long)size);
	return -1;
}

int srvlog_consistency(struct srvlog *l, uint64_t old_size, uint64_t new_size,
		       struct merkle_path *out, struct err *e)
{
	struct merkle_source src;

	db_source(l, &src);
	if (new_size > l->frontier.size ||
	    merkle_consistency_proof(&src, old_size, new_size, out) != BS_OK) {
		err_set(e, ERR_INVALID, "no consistency proof from %llu to %llu",
			(unsigned long long)old_size,
			(unsigned long long)new_size);
		return -1;
	}
	return 0;
}

int srvlog_entry(struct srvlog *l, uint64_t index, struct buf *out,
		 struct err *e)
{
	sqlite3_stmt *st = stmt(l, LOG_GET_ENTRY, e);
	int rc = -1;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)index);
	if (sqlite3_step(st) == SQLITE_ROW) {
		buf_append(out, sqlite3_column_blob(st, 0),
			   (size_t)sqlite3_column_bytes(st, 0));
		rc = out->status ? -1 : 0;
		if (rc)
			err_set(e, ERR_INVALID, "out of memory reading the log");
	} else {
		err_set(e, ERR_INVALID, "no log entry %llu",
			(unsigned long long)index);
	}
	sqlite3_reset(st);
	return rc;
}
