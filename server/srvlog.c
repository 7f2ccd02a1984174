/* srvlog.c - the server's log and its Merkle tree (see srvlog.h). */
#include "srvlog.h"

#include <stdio.h>
#include <string.h>

#include "mem.h"

struct srvlog {
	struct store *s;
	struct merkle_compact frontier;
	sqlite3_stmt *put_entry, *put_node, *get_leaf, *get_node;
};

static int db_error(struct srvlog *l, const char *what, struct err *e)
{
	err_set(e, ERR_INVALID, "log database error %s: %s", what,
		sqlite3_errmsg(l->s->r->db));
	return -1;
}

static int prep(struct srvlog *l, sqlite3_stmt **st, const char *sql,
		struct err *e)
{
	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
		return 0;
	}
	if (sqlite3_prepare_v3(l->s->r->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
			       st, NULL) == SQLITE_OK)
		return 0;
	return db_error(l, "preparing", e);
}

int srvlog_reload(struct srvlog *l, struct err *e)
{
	uint8_t *enc = NULL;
	size_t len = 0;
	int64_t count = 0;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	merkle_compact_init(&l->frontier);
	if (replica_setting_get(l->s->r, "frontier", &enc, &len, e))
		return -1;
	if (enc && merkle_compact_decode(&l->frontier, enc, len) != BS_OK) {
		err_set(e, ERR_INVALID, "the log's tree frontier is damaged");
		goto cleanup;
	}
	/* max(idx) is one index lookup; count(*) would scan the log */
	if (sqlite3_prepare_v2(l->s->r->db,
			       "SELECT coalesce(max(idx) + 1, 0) FROM srv_log",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
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
	sqlite3_finalize(st);
	mem_free(enc);
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
	if (srvlog_reload(l, e)) {
		srvlog_free(l);
		return -1;
	}
	*out = l;
	return 0;
}

void srvlog_free(struct srvlog *l)
{
	if (!l)
		return;
	sqlite3_finalize(l->put_entry);
	sqlite3_finalize(l->put_node);
	sqlite3_finalize(l->get_leaf);
	sqlite3_finalize(l->get_node);
	mem_free(l);
}

uint64_t srvlog_size(const struct srvlog *l) { return l->frontier.size; }

static int put_node(struct srvlog *l, unsigned level, uint64_t idx,
		    const uint8_t hash[HASH_BYTES], struct err *e)
{
	if (prep(l, &l->put_node,
		 "INSERT INTO srv_nodes(level, idx, hash) VALUES(?1, ?2, ?3)", e))
		return -1;
	sqlite3_bind_int(l->put_node, 1, (int)level);
	sqlite3_bind_int64(l->put_node, 2, (int64_t)idx);
	sqlite3_bind_blob(l->put_node, 3, hash, HASH_BYTES, SQLITE_STATIC);
	return sqlite3_step(l->put_node) == SQLITE_DONE
		? 0 : db_error(l, "storing a tree node", e);
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
	struct buf b;
	int rc = -1;

	buf_init(&b, MERKLE_FRONTIER_MAX_ENCODED);
	if (merkle_compact_encode(&l->frontier, &b) == BS_OK &&
	    replica_setting_set(l->s->r, "frontier", b.data, b.len, e) == 0)
		rc = 0;
	else
		err_set(e, ERR_INVALID, "cannot store the log's tree frontier");
	buf_release(&b);
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
	logentry_leaf_hash(enc.data, enc.len, leaf);
	*index = l->frontier.size;
	if (prep(l, &l->put_entry,
		 "INSERT INTO srv_log(idx, kind, verdict, entry, leaf, author,"
		 " seq, cs_id, scope, time_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6,"
		 " ?7, ?8, ?9, ?10)", e))
		goto cleanup;
	st = l->put_entry;
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
		goto cleanup;
	}
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
	sqlite3_stmt *st = NULL;
	uint8_t bytes[CHECKPOINT_SIGNED_MAX];
	int rc = -1;

	memcpy(bytes, cp->raw, cp->raw_len);
	memcpy(bytes + cp->raw_len, cp->sig, SIGN_BYTES);
	if (sqlite3_prepare_v2(l->s->r->db,
			       "INSERT OR IGNORE INTO srv_checkpoints(size, bytes)"
			       " VALUES(?1, ?2)", -1, &st, NULL) != SQLITE_OK)
		return db_error(l, "storing a checkpoint", e);
	sqlite3_bind_int64(st, 1, (int64_t)cp->size);
	sqlite3_bind_blob(st, 2, bytes, (int)(cp->raw_len + SIGN_BYTES),
			  SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		db_error(l, "storing a checkpoint", e);
	sqlite3_finalize(st);
	return rc;
}

int srvlog_checkpoint_get(struct srvlog *l, int64_t size,
			  struct checkpoint *out, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(l->s->r->db, size < 0
			       ? "SELECT bytes FROM srv_checkpoints"
				 " ORDER BY size DESC LIMIT 1"
			       : "SELECT bytes FROM srv_checkpoints WHERE size=?1",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(l, "reading checkpoints", e);
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
	sqlite3_finalize(st);
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
	enum bs_status rc = BS_EINVALID;

	err_init(&e);
	if (prep(l, &l->get_leaf, "SELECT leaf FROM srv_log WHERE idx=?1", &e))
		return BS_EINVALID;
	sqlite3_bind_int64(l->get_leaf, 1, (int64_t)index);
	if (sqlite3_step(l->get_leaf) == SQLITE_ROW &&
	    sqlite3_column_bytes(l->get_leaf, 0) == HASH_BYTES) {
		memcpy(out, sqlite3_column_blob(l->get_leaf, 0), HASH_BYTES);
		rc = BS_OK;
	}
	sqlite3_reset(l->get_leaf);
	return rc;
}

static enum bs_status node_from_db(void *ctx, uint64_t start, unsigned level,
				   uint8_t out[HASH_BYTES], bool *found)
{
	struct srvlog *l = ctx;
	struct err e;

	*found = false;
	err_init(&e);
	if (prep(l, &l->get_node,
		 "SELECT hash FROM srv_nodes WHERE level=?1 AND idx=?2", &e))
		return BS_EINVALID;
	sqlite3_bind_int(l->get_node, 1, (int)level);
	sqlite3_bind_int64(l->get_node, 2, (int64_t)(start >> level));
	if (sqlite3_step(l->get_node) == SQLITE_ROW &&
	    sqlite3_column_bytes(l->get_node, 0) == HASH_BYTES) {
		memcpy(out, sqlite3_column_blob(l->get_node, 0), HASH_BYTES);
		*found = true;
	}
	sqlite3_reset(l->get_node);
	return BS_OK;
}

static void db_source(struct srvlog *l, struct merkle_source *src)
{
	src->leaf = leaf_from_db;
	src->subtree = node_from_db;
	src->ctx = l;
}

int srvlog_inclusion(struct srvlog *l, uint64_t index, uint64_t size,
		     struct merkle_path *out, struct err *e)
{
	struct merkle_source src;

	db_source(l, &src);
	if (size > l->frontier.size ||
	    merkle_inclusion_proof(&src, index, size, out) != BS_OK) {
		err_set(e, ERR_INVALID, "no inclusion proof for entry %llu in a "
			"tree of %llu", (unsigned long long)index,
			(unsigned long long)size);
		return -1;
	}
	return 0;
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
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(l->s->r->db,
			       "SELECT entry FROM srv_log WHERE idx=?1", -1, &st,
			       NULL) != SQLITE_OK)
		return db_error(l, "reading an entry", e);
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
	sqlite3_finalize(st);
	return rc;
}
