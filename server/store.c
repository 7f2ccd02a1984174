/* store.c - the server's data directory and its tables, and the
 * challenges and contacts kept in memory (see store.h). */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "fsutil.h"
#include "mem.h"

/* What a branch device's pull reads (api.c): accepted change sets by scope,
 * and the few other entries (enrollments, revocations, refusals), so that
 * a pull does not read every entry logged since the last one. */
#define STORE_PULL_INDEXES \
	"CREATE INDEX IF NOT EXISTS srv_log_accepted ON srv_log(scope, idx)" \
	" WHERE kind = 1 AND verdict = 0;" \
	"CREATE INDEX IF NOT EXISTS srv_log_other ON srv_log(idx)" \
	" WHERE kind != 1 OR verdict != 0;"

/* Server tables beside the replica's own; created once, by store_init. */
static const char store_schema[] =
	"CREATE TABLE srv_log(idx INTEGER PRIMARY KEY NOT NULL,"
	" kind INTEGER NOT NULL, verdict INTEGER NOT NULL, entry BLOB NOT NULL,"
	" leaf BLOB NOT NULL, author BLOB, seq INTEGER, cs_id BLOB,"
	" scope TEXT, time_ms INTEGER NOT NULL) STRICT;"
	"CREATE INDEX srv_log_cs ON srv_log(cs_id);"
	"CREATE INDEX srv_log_author ON srv_log(author, seq);"
	STORE_PULL_INDEXES
	/* complete subtrees of 2^level leaves, level >= 1 */
	"CREATE TABLE srv_nodes(level INTEGER NOT NULL, idx INTEGER NOT NULL,"
	" hash BLOB NOT NULL, PRIMARY KEY(level, idx)) STRICT, WITHOUT ROWID;"
	"CREATE TABLE srv_devices(key BLOB PRIMARY KEY NOT NULL,"
	" role INTEGER NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL,"
	" enroll_idx INTEGER NOT NULL, revoke_idx INTEGER NOT NULL DEFAULT -1,"
	" last_seq INTEGER NOT NULL DEFAULT 0, head BLOB,"
	" last_seen_ms INTEGER NOT NULL DEFAULT 0) STRICT;"
	"CREATE TABLE srv_tokens(hash BLOB PRIMARY KEY NOT NULL,"
	" role INTEGER NOT NULL, scope TEXT NOT NULL,"
	" expires_ms INTEGER NOT NULL, used_ms INTEGER, device BLOB) STRICT;"
	"CREATE TABLE srv_checkpoints(size INTEGER PRIMARY KEY NOT NULL,"
	" bytes BLOB NOT NULL) STRICT;";

#define CHALLENGE_TTL_MS (10 * 60 * 1000)
#define CHALLENGE_BUCKETS (2 * STORE_CHALLENGES_MAX)

/* An issued challenge: a slot of a ring (the oldest is overwritten) that is
 * also on a hash chain by its first bytes, which are random. */
struct store_challenge {
	uint8_t nonce[REQUEST_CHALLENGE_BYTES];
	uint8_t device[SIGN_PUBLIC_BYTES]; /* when bound */
	int64_t expires_ms;
	int32_t next; /* next slot on the chain, -1 at the end */
	uint8_t live, bound;
};

/* A device's latest contact, not yet in srv_devices. */
struct store_touch {
	uint8_t key[SIGN_PUBLIC_BYTES];
	int64_t ms;
	uint8_t used;
};

struct store_shared {
	pthread_mutex_t lock;
	struct store_challenge *ch; /* STORE_CHALLENGES_MAX, on first use */
	int32_t *bucket;	    /* CHALLENGE_BUCKETS chain heads */
	uint32_t ring_next;
	struct store_touch *touch;  /* open addressing, touch_cap slots */
	size_t ntouch, touch_cap;
	int64_t touch_since;
};

static const char *const store_sql[STORE_STMT_COUNT] = {
	[STORE_DEV_GET] = "SELECT role, scope, name, enroll_idx, revoke_idx,"
			  " last_seq, head, last_seen_ms FROM srv_devices"
			  " WHERE key=?1",
	[STORE_DEV_PUT] = "INSERT INTO srv_devices(key, role, scope, name,"
			  " enroll_idx, revoke_idx, last_seq, head,"
			  " last_seen_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
			  " ?9) ON CONFLICT(key) DO UPDATE SET"
			  " role=excluded.role, scope=excluded.scope,"
			  " name=excluded.name, enroll_idx=excluded.enroll_idx,"
			  " revoke_idx=excluded.revoke_idx,"
			  " last_seq=excluded.last_seq, head=excluded.head,"
			  " last_seen_ms=excluded.last_seen_ms",
	[STORE_CHAIN_ID] = "SELECT cs_id FROM srv_log WHERE author=?1 AND"
			   " seq=?2 AND kind=1 AND verdict=0 LIMIT 2",
	[STORE_DEV_SEEN] = "UPDATE srv_devices SET last_seen_ms=?2"
			   " WHERE key=?1 AND last_seen_ms < ?2",
};

void store_global_init(void)
{
	/* SQLite's allocation statistics take a global mutex on every
	 * malloc; nothing here reads them, and ingest allocates a lot */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = mem_alloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Settings of the server's own connections beside the replica's: a push's
 * savepoint keeps the pages it changes in memory rather than in a
 * temporary file made and deleted for every push. */
static int configure(struct store *s, struct err *e)
{
	return replica_exec(s->r->db, "PRAGMA temp_store=MEMORY", e);
}

static struct store *store_new(const char *dir, struct err *e)
{
	struct store *s = mem_calloc(1, sizeof *s);

	if (!s || !(s->dir = mem_strdup(dir)) ||
	    !(s->shared = mem_calloc(1, sizeof *s->shared))) {
		if (s)
			mem_free(s->dir);
		mem_free(s);
		err_set(e, ERR_INVALID, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->shared->lock, NULL);
	return s;
}

static void shared_free(struct store_shared *sh)
{
	if (!sh)
		return;
	pthread_mutex_destroy(&sh->lock);
	mem_free(sh->ch);
	mem_free(sh->bucket);
	mem_free(sh->touch);
	mem_free(sh);
}

static int load_identity(struct store *s, struct err *e)
{
	char *keypath = path_join(s->dir, STORE_KEY_NAME);
	uint8_t *sealed = NULL;
	size_t len = 0;
	int rc = -1;

	if (!keypath) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	if (fsutil_read_all(keypath, 4096, &sealed, &len) ||
	    keystore_public(sealed, len, s->pk) != BS_OK) {
		err_set(e, ERR_INVALID, "cannot read the server key %s: %s",
			keypath, errno ? strerror(errno) : "damaged file");
		goto cleanup;
	}
	s->origin = replica_setting_text(s->r, "district");
	if (!s->origin) {
		err_set(e, ERR_INVALID, "%s is not a branchsyncd data directory "
			"(no district name)", s->dir);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (sealed)
		keystore_sealed_free(sealed, len);
	mem_free(keypath);
	return rc;
}

int store_init(const char *dir, const char *district, const char *passphrase,
	       struct store **out, struct err *e)
{
	struct store *s = NULL;
	char *dbpath = NULL, *keypath = NULL;
	uint8_t *sealed = NULL;
	size_t len = 0;
	int rc = -1;

	*out = NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		err_set(e, ERR_INVALID, "cannot create %s: %s", dir,
			strerror(errno));
		return -1;
	}
	s = store_new(dir, e);
	if (!s)
		return -1;
	dbpath = path_join(dir, STORE_DB_NAME);
	keypath = path_join(dir, STORE_KEY_NAME);
	if (!dbpath || !keypath) {
		err_set(e, ERR_INVALID, "out of memory");
		goto cleanup;
	}
	if (replica_open(dbpath, REPLICA_CREATE, &s->r, e) || configure(s, e) ||
	    replica_exec(s->r->db, store_schema, e) ||
	    replica_setting_set_text(s->r, "district", district, e))
		goto cleanup;
	if (keystore_generate(passphrase, KEYSTORE_STRENGTH_INTERACTIVE, &sealed,
			      &len, s->pk) != BS_OK ||
	    fsutil_write_atomic(keypath, sealed, len, 0600)) {
		err_set(e, ERR_INVALID, "cannot create the server key in %s",
			dir);
		goto cleanup;
	}
	if (load_identity(s, e))
		goto cleanup;
	*out = s;
	s = NULL;
	rc = 0;
cleanup:
	if (sealed)
		keystore_sealed_free(sealed, len);
	mem_free(dbpath);
	mem_free(keypath);
	store_close(s);
	return rc;
}

int store_open(const char *dir, struct store **out, struct err *e)
{
	struct store *s = store_new(dir, e);
	char *dbpath = NULL;
	int rc = -1;

	*out = NULL;
	if (!s)
		return -1;
	dbpath = path_join(dir, STORE_DB_NAME);
	if (!dbpath) {
		err_set(e, ERR_INVALID, "out of memory");
		goto cleanup;
	}
	if (replica_open(dbpath, REPLICA_OPEN, &s->r, e)) {
		e->msg[0] = '\0';
		e->kind = ERR_OK;
		err_set(e, ERR_INVALID, "no branchsyncd data in %s; create it "
			"with 'branchsyncd init'", dir);
		goto cleanup;
	}
	if (configure(s, e) || load_identity(s, e))
		goto cleanup;
	*out = s;
	s = NULL;
	rc = 0;
cleanup:
	mem_free(dbpath);
	store_close(s);
	return rc;
}

int store_upgrade(struct store *s, struct err *e)
{
	if (replica_begin(s->r, e))
		return -1;
	if (replica_exec(s->r->db, STORE_PULL_INDEXES, e) ||
	    replica_commit(s->r, e)) {
		replica_rollback(s->r);
		return -1;
	}
	return 0;
}

int store_reader_open(struct store *base, struct store **out, struct err *e)
{
	struct store *s = mem_calloc(1, sizeof *s);
	char *dbpath = NULL;
	int rc = -1;

	*out = NULL;
	if (!s || !(s->dir = mem_strdup(base->dir)) ||
	    !(s->origin = mem_strdup(base->origin)) ||
	    !(dbpath = path_join(base->dir, STORE_DB_NAME))) {
		err_set(e, ERR_INVALID, "out of memory");
		goto cleanup;
	}
	s->reader = 1;
	s->key = base->key;
	s->shared = base->shared;
	memcpy(s->pk, base->pk, SIGN_PUBLIC_BYTES);
	if (replica_open(dbpath, REPLICA_OPEN, &s->r, e) || configure(s, e))
		goto cleanup;
	*out = s;
	s = NULL;
	rc = 0;
cleanup:
	mem_free(dbpath);
	store_close(s);
	return rc;
}

static uint8_t *read_sealed(struct store *s, size_t *len, struct err *e)
{
	char *keypath = path_join(s->dir, STORE_KEY_NAME);
	uint8_t *sealed = NULL;

	*len = 0;
	if (!keypath || fsutil_read_all(keypath, 4096, &sealed, len))
		err_set(e, ERR_INVALID, "cannot read the server key");
	mem_free(keypath);
	return sealed;
}

int store_key_encrypted(struct store *s)
{
	struct err e;
	size_t len;
	int enc = 0;
	uint8_t *sealed;

	err_init(&e);
	sealed = read_sealed(s, &len, &e);
	if (sealed && keystore_is_encrypted(sealed, len, &enc) != BS_OK)
		enc = 0;
	if (sealed)
		keystore_sealed_free(sealed, len);
	return enc;
}

int store_unlock(struct store *s, const char *passphrase, struct err *e)
{
	size_t len;
	uint8_t *sealed = read_sealed(s, &len, e);
	enum bs_status st;

	if (!sealed)
		return -1;
	st = keystore_open(sealed, len, passphrase, &s->key);
	keystore_sealed_free(sealed, len);
	if (st == BS_EHASH) {
		err_set(e, ERR_INVALID, "wrong passphrase for the server key");
		return -1;
	}
	if (st == BS_ESTATE) {
		err_set(e, ERR_INVALID, "the server key is encrypted; set "
			"BRANCHSYNC_PASSPHRASE");
		return -1;
	}
	if (st != BS_OK) {
		err_set(e, ERR_INVALID, "the server key is damaged (%s)",
			bs_status_str(st));
		return -1;
	}
	return 0;
}

void store_close(struct store *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < STORE_STMT_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	mem_free(s->scratch);
	replica_close(s->r);
	if (!s->reader) {
		keystore_key_free(s->key);
		shared_free(s->shared);
	}
	mem_free(s->origin);
	mem_free(s->dir);
	mem_free(s);
}

static int db_error(struct store *s, const char *what, struct err *e)
{
	err_set(e, ERR_INVALID, "database error %s: %s", what,
		sqlite3_errmsg(s->r->db));
	return -1;
}

/* The cached statement `which`, reset and unbound; NULL on error. */
static sqlite3_stmt *stmt(struct store *s, enum store_stmt which,
			  const char *what, struct err *e)
{
	sqlite3_stmt **st = &s->stmt[which];

	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
		return *st;
	}
	if (sqlite3_prepare_v3(s->r->db, store_sql[which], -1,
			       SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		db_error(s, what, e);
		return NULL;
	}
	return *st;
}

int store_chain_id(struct store *s, const uint8_t author[SIGN_PUBLIC_BYTES],
		   uint64_t seq, uint8_t id[HASH_BYTES], struct err *e)
{
	sqlite3_stmt *st = stmt(s, STORE_CHAIN_ID, "reading the log", e);
	int found = 0, step;

	if (!st)
		return -1;
	sqlite3_bind_blob(st, 1, author, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != HASH_BYTES)
			break;
		memcpy(id, sqlite3_column_blob(st, 0), HASH_BYTES);
		found++;
	}
	sqlite3_reset(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		db_error(s, "reading the log", e);
		return -1;
	}
	return found == 1;
}

int store_device_get(struct store *s, const uint8_t key[SIGN_PUBLIC_BYTES],
		     struct store_device *out, struct err *e)
{
	sqlite3_stmt *st = stmt(s, STORE_DEV_GET, "reading devices", e);
	int rc = -1, step;

	memset(out, 0, sizeof *out);
	if (!st)
		return -1;
	sqlite3_bind_blob(st, 1, key, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		rc = 0;
	} else if (step == SQLITE_ROW) {
		memcpy(out->key, key, SIGN_PUBLIC_BYTES);
		out->role = (enum enrollment_role)sqlite3_column_int(st, 0);
		snprintf(out->scope, sizeof out->scope, "%s",
			 (const char *)sqlite3_column_text(st, 1));
		snprintf(out->name, sizeof out->name, "%s",
			 (const char *)sqlite3_column_text(st, 2));
		out->enroll_idx = sqlite3_column_int64(st, 3);
		out->revoke_idx = sqlite3_column_int64(st, 4);
		out->last_seq = sqlite3_column_int64(st, 5);
		if (sqlite3_column_bytes(st, 6) == HASH_BYTES)
			memcpy(out->head, sqlite3_column_blob(st, 6), HASH_BYTES);
		out->last_seen_ms = sqlite3_column_int64(st, 7);
		rc = 1;
	} else {
		db_error(s, "reading devices", e);
	}
	sqlite3_reset(st);
	return rc;
}

int store_device_put(struct store *s, const struct store_device *d,
		     struct err *e)
{
	sqlite3_stmt *st = stmt(s, STORE_DEV_PUT, "storing a device", e);
	int rc = -1;

	if (!st)
		return -1;
	sqlite3_bind_blob(st, 1, d->key, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)d->role);
	sqlite3_bind_text(st, 3, d->scope, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, d->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, d->enroll_idx);
	sqlite3_bind_int64(st, 6, d->revoke_idx);
	sqlite3_bind_int64(st, 7, d->last_seq);
	if (d->last_seq > 0)
		sqlite3_bind_blob(st, 8, d->head, HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, d->last_seen_ms);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		db_error(s, "storing a device", e);
	sqlite3_reset(st);
	return rc;
}

/* ---- contacts noted in memory ---- */

static uint32_t load32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* The slot of key in an open-addressing table of cap (a power of 2). */
static struct store_touch *touch_slot(struct store_touch *t, size_t cap,
				      const uint8_t *key)
{
	size_t i = load32(key) & (cap - 1);

	while (t[i].used && memcmp(t[i].key, key, SIGN_PUBLIC_BYTES) != 0)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

/* Doubles the table (caller holds the lock). -1 when out of memory. */
static int touch_grow(struct store_shared *sh)
{
	size_t cap = sh->touch_cap ? 2 * sh->touch_cap : 64, i;
	struct store_touch *t = mem_calloc(cap, sizeof *t);

	if (!t)
		return -1;
	for (i = 0; i < sh->touch_cap; i++)
		if (sh->touch[i].used)
			*touch_slot(t, cap, sh->touch[i].key) = sh->touch[i];
	mem_free(sh->touch);
	sh->touch = t;
	sh->touch_cap = cap;
	return 0;
}

int store_device_touch(struct store *s, const uint8_t key[SIGN_PUBLIC_BYTES],
		       int64_t now_ms, struct err *e)
{
	struct store_shared *sh = s->shared;
	struct store_touch *t;

	(void)e;
	pthread_mutex_lock(&sh->lock);
	/* out of memory loses a contact time, nothing else */
	if (2 * (sh->ntouch + 1) <= sh->touch_cap || touch_grow(sh) == 0) {
		t = touch_slot(sh->touch, sh->touch_cap, key);
		if (!t->used) {
			memcpy(t->key, key, SIGN_PUBLIC_BYTES);
			t->used = 1;
			t->ms = now_ms;
			sh->ntouch++;
		} else if (now_ms > t->ms) {
			t->ms = now_ms;
		}
		if (!sh->touch_since)
			sh->touch_since = now_ms;
	}
	pthread_mutex_unlock(&sh->lock);
	return 0;
}

int64_t store_touch_pending_since(struct store *s)
{
	int64_t since;

	pthread_mutex_lock(&s->shared->lock);
	since = s->shared->touch_since;
	pthread_mutex_unlock(&s->shared->lock);
	return since;
}

int store_touch_flush(struct store *s, struct err *e)
{
	struct store_shared *sh = s->shared;
	struct store_touch *t;
	sqlite3_stmt *st;
	size_t n = 0, i;
	int rc = -1;

	/* copied out, so that request threads never wait for the database;
	 * into this store's own array, kept from one flush to the next: a
	 * free of memory that request threads allocated would wait for
	 * their malloc arena */
	pthread_mutex_lock(&sh->lock);
	if (sh->ntouch > s->scratch_cap) {
		t = mem_realloc(s->scratch, sh->touch_cap * sizeof *t);
		if (!t) {
			pthread_mutex_unlock(&sh->lock);
			err_set(e, ERR_INVALID, "out of memory");
			return -1;
		}
		s->scratch = t;
		s->scratch_cap = sh->touch_cap;
	}
	for (i = 0; i < sh->touch_cap; i++)
		if (sh->touch[i].used)
			s->scratch[n++] = sh->touch[i];
	if (sh->touch)
		memset(sh->touch, 0, sh->touch_cap * sizeof *sh->touch);
	sh->ntouch = 0;
	sh->touch_since = 0;
	pthread_mutex_unlock(&sh->lock);
	for (i = 0; i < n; i++) {
		st = stmt(s, STORE_DEV_SEEN, "updating a device", e);
		if (!st)
			goto cleanup;
		sqlite3_bind_blob(st, 1, s->scratch[i].key, SIGN_PUBLIC_BYTES,
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, s->scratch[i].ms);
		if (sqlite3_step(st) != SQLITE_DONE) {
			db_error(s, "updating a device", e);
			sqlite3_reset(st);
			goto cleanup;
		}
		sqlite3_reset(st);
	}
	rc = 0;
cleanup:
	return rc;
}

static void to_hex(const uint8_t *p, size_t n, char *out)
{
	sodium_bin2hex(out, n * 2 + 1, p, n);
}

int store_token_make(struct store *s, enum enrollment_role role,
		     const char *scope, int64_t expires_ms, char hex[65],
		     struct err *e)
{
	uint8_t token[32], hash[HASH_BYTES];
	sqlite3_stmt *st = NULL;
	int rc = -1;

	randombytes_buf(token, sizeof token);
	hash_sha256(hash, token, sizeof token, NULL, 0);
	to_hex(token, sizeof token, hex);
	sodium_memzero(token, sizeof token);
	if (sqlite3_prepare_v2(s->r->db,
			       "INSERT INTO srv_tokens(hash, role, scope,"
			       " expires_ms) VALUES(?1, ?2, ?3, ?4)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(s, "storing a token", e);
	sqlite3_bind_blob(st, 1, hash, HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)role);
	sqlite3_bind_text(st, 3, scope, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, expires_ms);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		db_error(s, "storing a token", e);
	sqlite3_finalize(st);
	return rc;
}

/* The stored hash of a token given as hex; -1 with ERR_INVALID if the hex
 * is not a token. */
static int token_hash(const char *hex, uint8_t hash[HASH_BYTES],
		      struct err *e)
{
	uint8_t token[32];
	size_t n = 0;

	if (strlen(hex) != 64 ||
	    sodium_hex2bin(token, sizeof token, hex, 64, NULL, &n, NULL) ||
	    n != sizeof token) {
		err_set(e, ERR_INVALID, "the enrollment token is malformed; "
			"copy it again from 'branchsyncd token'");
		return -1;
	}
	hash_sha256(hash, token, sizeof token, NULL, 0);
	return 0;
}

int store_token_use(struct store *s, const char *hex, int64_t now_ms,
		    const uint8_t device[SIGN_PUBLIC_BYTES],
		    enum enrollment_role *role,
		    char scope[ENROLLMENT_SCOPE_MAX + 1], struct err *e)
{
	uint8_t hash[HASH_BYTES];
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (token_hash(hex, hash, e))
		return -1;
	if (sqlite3_prepare_v2(s->r->db,
			       "UPDATE srv_tokens SET used_ms=?2, device=?3"
			       " WHERE hash=?1 AND used_ms IS NULL"
			       " AND expires_ms > ?2 RETURNING role, scope",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(s, "using a token", e);
	sqlite3_bind_blob(st, 1, hash, HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_blob(st, 3, device, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*role = (enum enrollment_role)sqlite3_column_int(st, 0);
		snprintf(scope, ENROLLMENT_SCOPE_MAX + 1, "%s",
			 (const char *)sqlite3_column_text(st, 1));
		rc = 0;
	} else {
		err_set(e, ERR_INVALID, "the enrollment token is unknown, "
			"expired or already used; ask the district office for "
			"a new one");
	}
	sqlite3_finalize(st);
	return rc;
}

int store_token_spent_by(struct store *s, const char *hex,
			 const uint8_t device[SIGN_PUBLIC_BYTES],
			 struct err *e)
{
	uint8_t hash[HASH_BYTES];
	sqlite3_stmt *st = NULL;
	struct err ignored;
	int step;

	err_init(&ignored);
	if (token_hash(hex, hash, &ignored))
		return 0;
	if (sqlite3_prepare_v2(s->r->db,
			       "SELECT 1 FROM srv_tokens WHERE hash=?1"
			       " AND used_ms IS NOT NULL AND device=?2",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(s, "reading a token", e);
	sqlite3_bind_blob(st, 1, hash, HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, device, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_finalize(st);
	if (step == SQLITE_ROW)
		return 1;
	if (step == SQLITE_DONE)
		return 0;
	return db_error(s, "reading a token", e);
}

/* ---- challenges in memory ---- */

/* Unlinks slot i from its chain (caller holds the lock). */
static void challenge_unlink(struct store_shared *sh, int32_t i)
{
	int32_t *p = &sh->bucket[load32(sh->ch[i].nonce) % CHALLENGE_BUCKETS];

	while (*p >= 0 && *p != i)
		p = &sh->ch[*p].next;
	if (*p == i)
		*p = sh->ch[i].next;
	sh->ch[i].live = 0;
}

int store_challenge_make(struct store *s, int64_t now_ms,
			 const uint8_t *device,
			 uint8_t out[REQUEST_CHALLENGE_BYTES], struct err *e)
{
	struct store_shared *sh = s->shared;
	struct store_challenge *c;
	int32_t i;
	uint32_t b;
	int rc = -1;

	randombytes_buf(out, REQUEST_CHALLENGE_BYTES);
	pthread_mutex_lock(&sh->lock);
	if (!sh->ch) {
		sh->ch = mem_calloc(STORE_CHALLENGES_MAX, sizeof *sh->ch);
		sh->bucket = mem_alloc(CHALLENGE_BUCKETS * sizeof *sh->bucket);
		if (!sh->ch || !sh->bucket) {
			mem_free(sh->ch);
			mem_free(sh->bucket);
			sh->ch = NULL;
			sh->bucket = NULL;
			err_set(e, ERR_INVALID, "out of memory for challenges");
			goto cleanup;
		}
		memset(sh->bucket, 0xff, CHALLENGE_BUCKETS * sizeof *sh->bucket);
	}
	i = (int32_t)sh->ring_next;
	sh->ring_next = (sh->ring_next + 1) % STORE_CHALLENGES_MAX;
	c = &sh->ch[i];
	if (c->live)
		challenge_unlink(sh, i);
	memcpy(c->nonce, out, REQUEST_CHALLENGE_BYTES);
	c->bound = device != NULL;
	if (device)
		memcpy(c->device, device, SIGN_PUBLIC_BYTES);
	c->expires_ms = now_ms + CHALLENGE_TTL_MS;
	c->live = 1;
	b = load32(out) % CHALLENGE_BUCKETS;
	c->next = sh->bucket[b];
	sh->bucket[b] = i;
	rc = 0;
cleanup:
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

int store_challenge_use(struct store *s,
			const uint8_t c[REQUEST_CHALLENGE_BYTES], int64_t now_ms,
			uint8_t device[SIGN_PUBLIC_BYTES], int *bound,
			struct err *e)
{
	struct store_shared *sh = s->shared;
	int32_t i = -1;
	int rc = -1;

	*bound = 0;
	pthread_mutex_lock(&sh->lock);
	if (sh->ch)
		for (i = sh->bucket[load32(c) % CHALLENGE_BUCKETS]; i >= 0;
		     i = sh->ch[i].next)
			if (memcmp(sh->ch[i].nonce, c,
				   REQUEST_CHALLENGE_BYTES) == 0)
				break;
	if (i >= 0) {
		rc = sh->ch[i].expires_ms >= now_ms ? 0 : -1;
		*bound = rc == 0 && sh->ch[i].bound;
		if (*bound)
			memcpy(device, sh->ch[i].device, SIGN_PUBLIC_BYTES);
		challenge_unlink(sh, i);
	}
	pthread_mutex_unlock(&sh->lock);
	if (rc)
		err_set(e, ERR_INVALID, "the request's challenge is unknown, "
			"expired or already used");
	return rc;
}
