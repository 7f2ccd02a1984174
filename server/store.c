/* store.c - the server's data directory and its tables (see store.h). */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "fsutil.h"
#include "mem.h"

/* Server tables beside the replica's own; created once, by store_init. */
static const char store_schema[] =
	"CREATE TABLE srv_log(idx INTEGER PRIMARY KEY NOT NULL,"
	" kind INTEGER NOT NULL, verdict INTEGER NOT NULL, entry BLOB NOT NULL,"
	" leaf BLOB NOT NULL, author BLOB, seq INTEGER, cs_id BLOB,"
	" scope TEXT, time_ms INTEGER NOT NULL) STRICT;"
	"CREATE INDEX srv_log_cs ON srv_log(cs_id);"
	"CREATE INDEX srv_log_author ON srv_log(author, seq);"
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
	"CREATE TABLE srv_challenges(nonce BLOB PRIMARY KEY NOT NULL,"
	" expires_ms INTEGER NOT NULL) STRICT;"
	"CREATE INDEX srv_challenges_exp ON srv_challenges(expires_ms);"
	"CREATE TABLE srv_checkpoints(size INTEGER PRIMARY KEY NOT NULL,"
	" bytes BLOB NOT NULL) STRICT;";

#define CHALLENGE_TTL_MS (10 * 60 * 1000)

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = mem_alloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static struct store *store_new(const char *dir, struct err *e)
{
	struct store *s = mem_calloc(1, sizeof *s);

	if (!s || !(s->dir = mem_strdup(dir))) {
		mem_free(s);
		err_set(e, ERR_INVALID, "out of memory");
		return NULL;
	}
	return s;
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
	if (replica_open(dbpath, REPLICA_CREATE, &s->r, e) ||
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
	if (load_identity(s, e))
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
	if (!s)
		return;
	replica_close(s->r);
	keystore_key_free(s->key);
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

int store_device_get(struct store *s, const uint8_t key[SIGN_PUBLIC_BYTES],
		     struct store_device *out, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	memset(out, 0, sizeof *out);
	if (sqlite3_prepare_v2(s->r->db,
			       "SELECT role, scope, name, enroll_idx, revoke_idx,"
			       " last_seq, head, last_seen_ms FROM srv_devices"
			       " WHERE key=?1", -1, &st, NULL) != SQLITE_OK)
		return db_error(s, "reading devices", e);
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
	sqlite3_finalize(st);
	return rc;
}

int store_device_put(struct store *s, const struct store_device *d,
		     struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(s->r->db,
			       "INSERT OR REPLACE INTO srv_devices(key, role,"
			       " scope, name, enroll_idx, revoke_idx, last_seq,"
			       " head, last_seen_ms) VALUES(?1, ?2, ?3, ?4, ?5,"
			       " ?6, ?7, ?8, ?9)", -1, &st, NULL) != SQLITE_OK)
		return db_error(s, "storing a device", e);
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
	sqlite3_finalize(st);
	return rc;
}

int store_device_touch(struct store *s, const uint8_t key[SIGN_PUBLIC_BYTES],
		       int64_t now_ms, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(s->r->db,
			       "UPDATE srv_devices SET last_seen_ms=?2 WHERE key=?1",
			       -1, &st, NULL) != SQLITE_OK)
		return db_error(s, "updating a device", e);
	sqlite3_bind_blob(st, 1, key, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		db_error(s, "updating a device", e);
	sqlite3_finalize(st);
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

int store_token_use(struct store *s, const char *hex, int64_t now_ms,
		    const uint8_t device[SIGN_PUBLIC_BYTES],
		    enum enrollment_role *role,
		    char scope[ENROLLMENT_SCOPE_MAX + 1], struct err *e)
{
	uint8_t token[32], hash[HASH_BYTES];
	size_t n = 0;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (strlen(hex) != 64 ||
	    sodium_hex2bin(token, sizeof token, hex, 64, NULL, &n, NULL) ||
	    n != sizeof token) {
		err_set(e, ERR_INVALID, "the enrollment token is malformed; "
			"copy it again from 'branchsyncd token'");
		return -1;
	}
	hash_sha256(hash, token, sizeof token, NULL, 0);
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

int store_challenge_make(struct store *s, int64_t now_ms, uint8_t out[32],
			 struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	randombytes_buf(out, 32);
	if (sqlite3_prepare_v2(s->r->db,
			       "INSERT INTO srv_challenges(nonce, expires_ms)"
			       " VALUES(?1, ?2)", -1, &st, NULL) != SQLITE_OK)
		return db_error(s, "storing a challenge", e);
	sqlite3_bind_blob(st, 1, out, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms + CHALLENGE_TTL_MS);
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		db_error(s, "storing a challenge", e);
	sqlite3_finalize(st);
	if (rc == 0) {
		/* expired challenges go as new ones come: the table stays small */
		if (sqlite3_prepare_v2(s->r->db,
				       "DELETE FROM srv_challenges WHERE"
				       " expires_ms < ?1", -1, &st,
				       NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, now_ms);
			sqlite3_step(st);
			sqlite3_finalize(st);
		}
	}
	return rc;
}

int store_challenge_use(struct store *s, const uint8_t c[32], int64_t now_ms,
			struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(s->r->db,
			       "DELETE FROM srv_challenges WHERE nonce=?1"
			       " RETURNING expires_ms", -1, &st,
			       NULL) != SQLITE_OK)
		return db_error(s, "checking a challenge", e);
	sqlite3_bind_blob(st, 1, c, 32, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_int64(st, 0) >= now_ms)
		rc = 0;
	else
		err_set(e, ERR_INVALID, "the request's challenge is unknown, "
			"expired or already used");
	sqlite3_finalize(st);
	return rc;
}
