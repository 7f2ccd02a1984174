/* store.h - the district server's data directory: the consolidated database
 * (a replica file, so records and merge bookkeeping are exactly the
 * clients', plus the server's own tables: log, tree nodes, devices, tokens,
 * checkpoints) and the server's device key; beside them, in memory, the
 * one-time request challenges and the devices' last contact not yet
 * written. Not for the log's tree logic (srvlog.h) nor for ingest policy
 * (ingest.h). */
#ifndef BS_STORE_H
#define BS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "enrollment.h"
#include "err.h"
#include "keystore.h"
#include "replica.h"
#include "request.h"

#define STORE_DB_NAME "server.db"
#define STORE_KEY_NAME "server.key"

/* At most this many challenges are outstanding; past it the oldest is
 * forgotten (its request gets a 401 and the client asks again). */
#define STORE_CHALLENGES_MAX (1u << 16)

enum store_stmt {
	STORE_DEV_GET,
	STORE_DEV_PUT,
	STORE_DEV_SEEN,
	STORE_CHAIN_ID,
	STORE_STMT_COUNT
};

struct store_shared;
struct store_touch;

/* A store owns its connection. A reader (store_reader_open) is a second
 * connection to the same file for another thread: it borrows the key and
 * shares the challenges and pending contacts of the store it came from,
 * which must outlive it. One thread uses a store at a time. */
struct store {
	struct replica *r;
	char *dir;
	char *origin;                     /* district name: the log's origin */
	struct keystore_key *key;         /* NULL until store_unlock */
	uint8_t pk[SIGN_PUBLIC_BYTES];
	struct store_shared *shared;      /* thread-safe; owned unless reader */
	int reader;
	sqlite3_stmt *stmt[STORE_STMT_COUNT]; /* prepared on first use */
	struct store_touch *scratch;	  /* store_touch_flush's */
	size_t scratch_cap;
};

/* A registered device as the server knows it. */
struct store_device {
	uint8_t key[SIGN_PUBLIC_BYTES];
	enum enrollment_role role;
	char scope[ENROLLMENT_SCOPE_MAX + 1];
	char name[ENROLLMENT_NAME_MAX + 1];
	int64_t enroll_idx;               /* log index of its enrollment */
	int64_t revoke_idx;               /* -1 while not revoked */
	int64_t last_seq;                 /* last sequence logged, 0 if none */
	uint8_t head[HASH_BYTES];         /* id of that change set */
	int64_t last_seen_ms;
};

/* Creates DIR (mode 0700), its database and the server's key. passphrase
 * NULL stores the key unencrypted (an unattended server). */
int store_init(const char *dir, const char *district, const char *passphrase,
	       struct store **out /* OUT */, struct err *e);
/* Opens an existing data directory (key still locked). */
int store_open(const char *dir, struct store **out /* OUT */, struct err *e);
/* Adds what later versions added to the server's tables (indexes) to a
 * data directory made by an earlier one; a no-op on a current one. Takes
 * the write lock briefly. */
int store_upgrade(struct store *s, struct err *e);
/* Another connection to base's database, for another thread (see struct
 * store). *out is closed with store_close before base is. */
int store_reader_open(struct store *base, struct store **out /* OUT */,
		      struct err *e);
/* Process-wide SQLite settings of the server; call before any other use of
 * SQLite in the process (later it has no effect). */
void store_global_init(void);
/* Opens the server key with the passphrase (ignored for a plain key). */
int store_unlock(struct store *s, const char *passphrase, struct err *e);
/* 1 if the server key is encrypted. */
int store_key_encrypted(struct store *s);
void store_close(struct store *s);

/* Devices. get: 1 found, 0 unknown, -1 error. */
/* The id of `author`'s change set `seq` if the log holds it accepted,
 * exactly once: 1 and *id, 0 if not (none, or an equivocation's two), -1
 * on a database error. */
int store_chain_id(struct store *s, const uint8_t author[SIGN_PUBLIC_BYTES],
		   uint64_t seq, uint8_t id[HASH_BYTES], struct err *e);
int store_device_get(struct store *s, const uint8_t key[SIGN_PUBLIC_BYTES],
		     struct store_device *out /* OUT */, struct err *e);
int store_device_put(struct store *s, const struct store_device *d,
		     struct err *e);
/* Notes a device's contact in memory (thread-safe, never fails); it reaches
 * the database with the next store_touch_flush. */
int store_device_touch(struct store *s, const uint8_t key[SIGN_PUBLIC_BYTES],
		       int64_t now_ms, struct err *e);
/* Writes the contacts noted since the last flush, inside the caller's write
 * transaction; if that rolls back they are lost (they only say when a device
 * was last seen). Returns 0, or -1 on a database error. */
int store_touch_flush(struct store *s, struct err *e);
/* Whether contacts are waiting, and since when (ms, 0 if none). */
int64_t store_touch_pending_since(struct store *s);

/* Enrollment tokens: a token is 32 random bytes shown as hex; only its
 * SHA-256 is stored. make: writes the hex form (65 bytes with NUL). */
int store_token_make(struct store *s, enum enrollment_role role,
		     const char *scope, int64_t expires_ms, char hex[65],
		     struct err *e);
/* Consumes a token: 0 and role/scope if valid, unused and unexpired;
 * -1 with ERR_INVALID otherwise (the token stays unusable once used). */
int store_token_use(struct store *s, const char *hex, int64_t now_ms,
		    const uint8_t device[SIGN_PUBLIC_BYTES],
		    enum enrollment_role *role, char scope[ENROLLMENT_SCOPE_MAX + 1],
		    struct err *e);

/* 1 if the token (hex) was spent enrolling `device` (so that device may
 * ask for its enrollment again after losing the answer), 0 if not
 * (malformed, unknown, unused, or spent by another device), -1 with e set
 * on a database error. */
int store_token_spent_by(struct store *s, const char *hex,
			 const uint8_t device[SIGN_PUBLIC_BYTES],
			 struct err *e);
/* One-time request challenges (protocol/request.h), kept in memory and
 * shared by a store and its readers (thread-safe): a restart forgets them,
 * and so does STORE_CHALLENGES_MAX newer ones. make writes a fresh one to
 * out, bound to `device` when it is not NULL (the key whose signed request
 * it answers, docs/API.md), else unbound; it fails only when memory for
 * the table runs out (ERR_INVALID). */
int store_challenge_make(struct store *s, int64_t now_ms,
			 const uint8_t *device,
			 uint8_t out[REQUEST_CHALLENGE_BYTES] /* OUT */,
			 struct err *e);
/* 0 if the challenge existed and was unexpired: it is consumed either way.
 * On 0, *bound says whether it was bound, and if so device gets the key it
 * was bound to. -1 with ERR_INVALID otherwise. */
int store_challenge_use(struct store *s,
			const uint8_t c[REQUEST_CHALLENGE_BYTES], int64_t now_ms,
			uint8_t device[SIGN_PUBLIC_BYTES] /* OUT */,
			int *bound /* OUT */, struct err *e);

#endif
