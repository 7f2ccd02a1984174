/* capture.c - every local write transaction becomes signed change sets in
 * the outbox, atomically with the data (see capture.h): records_insert's
 * rows through csbuild.c, all else through an SQLite session, combined at
 * the cut. The device's chain state lives in settings: 'seq' (last
 * sequence), 'head' (last id), 'hlc'. */
#include "capture.h"

#include <stdio.h>
#include <string.h>

#include "changeset.h"
#include "csbuild.h"
#include "hlc.h"
#include "mem.h"
#include "merge.h"
#include "schema.h"

/* How far ahead of our wall clock an adopted stamp may be. */
#define CAPTURE_MAX_DRIFT_MS (10 * 60 * 1000)
/* The page cache (KiB) while capturing: a 20,000-row import's table, index,
 * clock and outbox pages must stay cached until the commit, or they are
 * spilled to the WAL mid-transaction and read back (SQLite's default is 2
 * MiB); the session also reads back the rows it recorded at the cut.
 * Restored when capture ends. */
#define CAPTURE_CACHE_KIB 16384

struct capture {
	struct replica *r;
	const struct capture_signer *signer;
	sqlite3_session *session;
	struct csbuild built;     /* rows records_insert reported */
	int broken;               /* a reported row was lost: roll back */
	struct merge *merge;
	struct hlc clock;
	int64_t seq;
	uint8_t head[HASH_BYTES];
	int open;                 /* transaction still ours to finish */
	int64_t cache_size;       /* the connection's, to restore; 0: unchanged */
};

static int session_start(struct capture *c, struct err *e)
{
	size_t i;

	if (sqlite3session_create(c->r->db, "main", &c->session) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "cannot start recording changes: %s",
			sqlite3_errmsg(c->r->db));
		return -1;
	}
	for (i = 0; i < schema_table_count(); i++) {
		if (sqlite3session_attach(c->session,
					  schema_table_at(i)->name) != SQLITE_OK) {
			err_set(e, ERR_INVALID, "cannot record table %s",
				schema_table_at(i)->name);
			return -1;
		}
	}
	return 0;
}

static int load_chain(struct capture *c, struct err *e)
{
	int64_t hlc_last;
	uint8_t *head = NULL;
	size_t len = 0;

	if (replica_setting_int(c->r, "seq", &c->seq, 0, e) ||
	    replica_setting_int(c->r, "hlc", &hlc_last, 0, e) ||
	    replica_setting_get(c->r, "head", &head, &len, e))
		return -1;
	memset(c->head, 0, sizeof c->head);
	if (head && len == HASH_BYTES)
		memcpy(c->head, head, HASH_BYTES);
	mem_free(head);
	if ((c->seq > 0) != (len == HASH_BYTES)) {
		err_set(e, ERR_INVALID, "the replica's change set chain is "
			"damaged (sequence %lld without its head)",
			(long long)c->seq);
		return -1;
	}
	hlc_init(&c->clock, 0);
	hlc_restore(&c->clock, (uint64_t)hlc_last);
	return 0;
}

/* One integer PRAGMA's value, or 0. */
static int64_t pragma_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Raises the connection's page cache to CAPTURE_CACHE_KIB for the
 * capture (never lowers it); capture_free puts it back. */
static int cache_raise(struct capture *c, struct err *e)
{
	char sql[64];
	int64_t size = pragma_int(c->r->db, "PRAGMA cache_size"), kib;

	/* negative: KiB; positive: pages */
	kib = size < 0 ? -size
		: size * pragma_int(c->r->db, "PRAGMA page_size") / 1024;
	if (size == 0 || kib >= CAPTURE_CACHE_KIB)
		return 0;
	snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", CAPTURE_CACHE_KIB);
	if (replica_exec(c->r->db, sql, e))
		return -1;
	c->cache_size = size;
	return 0;
}

static void cache_restore(struct capture *c)
{
	char sql[64];

	if (!c->cache_size)
		return;
	snprintf(sql, sizeof sql, "PRAGMA cache_size=%lld",
		 (long long)c->cache_size);
	sqlite3_exec(c->r->db, sql, NULL, NULL, NULL);
	c->cache_size = 0;
}

int capture_begin(struct replica *r, const struct capture_signer *signer,
		  struct capture **out, struct err *e)
{
	struct capture *c = mem_calloc(1, sizeof *c);

	*out = NULL;
	if (!c) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	c->r = r;
	c->signer = signer;
	csbuild_init(&c->built, CHANGESET_MAX_BODY);
	if (cache_raise(c, e) || replica_begin(r, e))
		goto fail;
	c->open = 1;
	if (load_chain(c, e) || merge_new(r->db, &c->merge, e) ||
	    session_start(c, e))
		goto fail;
	*out = c;
	return 0;
fail:
	capture_free(c);
	return -1;
}

static int outbox_append(struct capture *c, const struct changeset *cs,
			 struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(c->r->db,
			       "INSERT INTO bs_outbox(seq, id, scope, hlc, bytes)"
			       " VALUES(?1, ?2, ?3, ?4, ?5)", -1, &st,
			       NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_int64(st, 1, (int64_t)cs->env.seq);
	sqlite3_bind_blob(st, 2, cs->id, HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, cs->env.scope, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)cs->env.hlc);
	sqlite3_bind_blob64(st, 5, cs->env_bytes, cs->encoded_len,
			    SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
cleanup:
	if (rc)
		err_set(e, ERR_INVALID, "cannot append to the outbox: %s",
			sqlite3_errmsg(c->r->db));
	sqlite3_finalize(st);
	return rc;
}

static int save_chain(struct capture *c, const struct changeset *cs,
		      struct err *e)
{
	c->seq = (int64_t)cs->env.seq;
	memcpy(c->head, cs->id, HASH_BYTES);
	return replica_setting_set_int(c->r, "seq", c->seq, e) ||
	       replica_setting_set(c->r, "head", c->head, HASH_BYTES, e) ||
	       replica_setting_set_int(c->r, "hlc", (int64_t)c->clock.last, e);
}

/* The stamp of a new write: the clock's next tick, but always after every
 * cell it overwrites, since its author saw those values, whatever the wall
 * clocks say (docs/MERGE.md, "Clocks"). A stamp pushed into the far future
 * by such a cell is used for this write only and not adopted by the clock,
 * so one wrong clock does not spread to this device's other writes. */
static int stamp_after(struct capture *c, uint64_t floor, uint64_t *stamp)
{
	uint64_t limit = c->signer->wall_ms + CAPTURE_MAX_DRIFT_MS;

	if (hlc_now(&c->clock, c->signer->wall_ms, stamp) != BS_OK)
		return -1;
	if (floor >= *stamp) {
		*stamp = floor + 1;
		if (hlc_physical(*stamp) <= limit)
			hlc_restore(&c->clock, *stamp);
	}
	return 0;
}

/* The decoded view of the change set changeset_sign just wrote to out:
 * the signer's own output, so it is not parsed or hashed again. */
static void signed_view(const struct changeset_envelope *env,
			const struct buf *out, const uint8_t id[HASH_BYTES],
			struct changeset *cs)
{
	size_t body_len = (size_t)env->body_len;

	memset(cs, 0, sizeof *cs);
	cs->env = *env;
	cs->env_bytes = out->data;
	cs->env_len = out->len - SIGN_BYTES - body_len;
	cs->sig = out->data + cs->env_len;
	cs->body = cs->sig + SIGN_BYTES;
	cs->body_len = body_len;
	cs->encoded_len = out->len;
	memcpy(cs->id, id, HASH_BYTES);
}

/* Signs `body` as the next change set of the chain and stores it. */
static int sign_and_store(struct capture *c, const uint8_t *body, size_t len,
			  const char *scope, uint64_t floor, struct err *e)
{
	struct changeset_envelope env;
	struct changeset cs;
	struct buf out;
	uint8_t id[HASH_BYTES];
	int rc = -1;

	buf_init(&out, CHANGESET_MAX_ENCODED);
	memset(&env, 0, sizeof env);
	memcpy(env.author, c->signer->pk, SIGN_PUBLIC_BYTES);
	env.seq = (uint64_t)c->seq + 1;
	if (c->seq > 0)
		memcpy(env.prev, c->head, HASH_BYTES);
	strcpy(env.scope, scope);
	env.schema_version = SCHEMA_VERSION;
	if (len > CHANGESET_MAX_BODY) {
		err_set(e, ERR_INVALID, "this write is too large for one change "
			"set (%zu bytes, limit %u); split it into smaller ones",
			len, CHANGESET_MAX_BODY);
		goto cleanup;
	}
	if (stamp_after(c, floor, &env.hlc) ||
	    changeset_sign(&env, body, len, c->signer->sk, &out, id)) {
		err_set(e, ERR_INVALID, "cannot sign the change set");
		goto cleanup;
	}
	signed_view(&env, &out, id, &cs);
	if (outbox_append(c, &cs, e) || merge_record_local(c->merge, &cs, e) ||
	    save_chain(c, &cs, e))
		goto cleanup;
	rc = 0;
cleanup:
	buf_release(&out);
	return rc;
}

static int too_large(struct err *e)
{
	err_set(e, ERR_INVALID, "this write is too large for one change set "
		"(limit %u bytes); split it into smaller ones",
		CHANGESET_MAX_BODY);
	return -1;
}

/* The body of this cut from the session's changeset (slen bytes at ses)
 * and the builder's inserts: either alone as it is, or both combined by a
 * changegroup, the builder's first, since every row it holds was inserted
 * before the session recorded anything (capture_insert_start): an INSERT
 * then an UPDATE of one row become one INSERT, an INSERT then a DELETE
 * nothing, as the session itself would have written. *body points into
 * ses, the builder, or *grouped (sqlite3_free). */
static int cut_body(struct capture *c, void *ses, int slen, void **grouped,
		    const uint8_t **body, size_t *len, struct err *e)
{
	sqlite3_changegroup *g = NULL;
	const uint8_t *built;
	size_t blen;
	int glen = 0, rc = -1;
	enum bs_status st = csbuild_body(&c->built, &built, &blen);

	*grouped = NULL;
	if (st == BS_ELIMIT)
		return too_large(e);
	if (st != BS_OK) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	*body = blen ? built : ses;
	*len = blen ? blen : (size_t)slen;
	if (blen == 0 || slen == 0)
		return 0;
	if (sqlite3changegroup_new(&g) != SQLITE_OK ||
	    sqlite3changegroup_add(g, (int)blen, (void *)built) != SQLITE_OK ||
	    sqlite3changegroup_add(g, slen, ses) != SQLITE_OK ||
	    sqlite3changegroup_output(g, &glen, grouped) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "cannot combine the recorded changes");
		goto cleanup;
	}
	*body = *grouped;
	*len = (size_t)glen;
	rc = 0;
cleanup:
	sqlite3changegroup_delete(g);
	return rc;
}

/* capture_cut; `again`: go on recording afterwards. */
static int cut(struct capture *c, int *count, int again, struct err *e)
{
	void *ses = NULL, *grouped = NULL;
	const uint8_t *body = NULL;
	size_t len = 0;
	int slen = 0, rc = -1;
	uint64_t floor = 0;
	char scope[CHANGESET_SCOPE_MAX + 1];

	*count = 0;
	if (!c->session || c->broken) {
		err_set(e, ERR_INVALID, "this capture failed earlier and can "
			"only be rolled back");
		return -1;
	}
	if (sqlite3session_changeset(c->session, &slen, &ses) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "cannot collect the recorded changes");
		goto cleanup;
	}
	/* what follows writes only bookkeeping: nothing left to record */
	sqlite3session_delete(c->session);
	c->session = NULL;
	if (cut_body(c, ses, slen, &grouped, &body, &len, e))
		goto cleanup;
	if (len > 0) {
		if (merge_clock_floor(c->merge, body, len, &floor, scope, e))
			goto cleanup;
		if (c->signer->scope_only &&
		    strcmp(scope, c->signer->scope_only) != 0) {
			err_set(e, ERR_INVALID, "this device is enrolled for "
				"branch %s and may not write branch %s",
				c->signer->scope_only, scope);
			goto cleanup;
		}
		if (sign_and_store(c, body, len, scope, floor, e))
			goto cleanup;
		*count = 1;
	}
	csbuild_reset(&c->built);
	rc = again ? session_start(c, e) : 0;
cleanup:
	sqlite3_free(ses);
	sqlite3_free(grouped);
	return rc;
}

/* The index of t in the schema, or schema_table_count(). */
static size_t table_index(const struct schema_table *t)
{
	size_t i;

	for (i = 0; i < schema_table_count(); i++)
		if (schema_table_at(i) == t)
			return i;
	return i;
}

int capture_insert_start(struct capture *c, const struct schema_table *t,
			 const struct schema_value *const *vals)
{
	/* Once the session holds a change, a later insert must be ordered
	 * after it, which only the session itself can do (see cut_body). */
	if (!c->session || c->broken || !sqlite3session_isempty(c->session) ||
	    table_index(t) == schema_table_count() || !csbuild_fits(t, vals))
		return 0;
	sqlite3session_enable(c->session, 0);
	return 1;
}

int capture_insert_end(struct capture *c, const struct schema_table *t,
		       const struct schema_value *const *vals, int inserted,
		       struct err *e)
{
	enum bs_status st;

	sqlite3session_enable(c->session, 1);
	if (!inserted)
		return 0;
	st = csbuild_insert(&c->built, table_index(t), vals);
	if (st == BS_OK)
		return 0;
	/* the row is in the table but in no change set */
	c->broken = 1;
	if (st == BS_ELIMIT)
		return too_large(e);
	err_set(e, ERR_INVALID, "out of memory");
	return -1;
}

int capture_cut(struct capture *c, int *count, struct err *e)
{
	return cut(c, count, 1, e);
}

int capture_commit(struct capture *c, int *count, struct err *e)
{
	if (cut(c, count, 0, e))
		return -1;
	if (replica_commit(c->r, e))
		return -1;
	c->open = 0;
	return 0;
}

void capture_free(struct capture *c)
{
	if (!c)
		return;
	if (c->session)
		sqlite3session_delete(c->session);
	csbuild_release(&c->built);
	merge_free(c->merge);
	if (c->open)
		replica_rollback(c->r);
	cache_restore(c);
	mem_free(c);
}
