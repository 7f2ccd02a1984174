/* ingest.h - the server's verdict on everything that enters its log: change
 * sets pushed by devices (decode, author, signature, revocation, chain,
 * policy, then log and merge), and the server's own enrollments and
 * revocations. The rules are in docs/API.md, "Ingest". Every function runs
 * inside the caller's transaction; a return of -1 means an internal failure
 * and the caller must roll back; refusals are outcomes, not failures. */
#ifndef BS_INGEST_H
#define BS_INGEST_H

#include <stdint.h>

#include "merge.h"
#include "srvlog.h"
#include "store.h"
#include "verdict.h"

struct ingest;

struct ingest_outcome {
	enum verdict_status status;
	char reason[VERDICT_REASON_MAX + 1];
	int logged;               /* 1 if it has a log index (and a receipt) */
	uint64_t index;
	uint8_t id[HASH_BYTES];   /* change set id (zeros if undecodable) */
};

struct ingest_counts {
	uint64_t accepted, duplicate, refused;
};

int ingest_new(struct store *s, struct srvlog *log, struct ingest **out,
	       struct err *e);
void ingest_free(struct ingest *in);

/* A pushed change set made ready before the write transaction: decoded and
 * its author's signature checked. Signature checks dominate ingest and need
 * nothing from the database, so they run outside the write lock, in
 * parallel. Points into `bytes`, which must outlive it. */
struct ingest_item {
	const uint8_t *bytes;
	size_t len;
	enum bs_status decoded; /* BS_OK, or why it does not decode */
	int sig_ok;		/* decoded, and the signature verifies */
	struct changeset cs;	/* when decoded */
	int has_leaf;		/* leaf: its log entry's Merkle leaf if */
	uint8_t leaf[HASH_BYTES]; /* accepted (hashed here, off the lock) */
};

void ingest_item_init(struct ingest_item *it, const uint8_t *bytes,
		      size_t len);
/* Decodes and verifies n items on up to `threads` threads (0: the online
 * cores). Never fails: a thread that cannot start leaves its share to the
 * others. */
void ingest_prepare(struct ingest_item *items, size_t n, unsigned threads);

/* Preparing a batch on `helpers` threads while the caller does something
 * else (such as ingesting the batch before): ingest_prepare_start returns at
 * once; ingest_prepare_finish makes the caller prepare what is left, waits
 * for the helpers and frees *p. Allocates *p; on failure to allocate, *p is
 * NULL and finish prepares everything itself. */
struct ingest_prep;
void ingest_prepare_start(struct ingest_item *items, size_t n,
			  unsigned helpers, struct ingest_prep **p /* OUT */);
void ingest_prepare_finish(struct ingest_prep *p, struct ingest_item *items,
			   size_t n);

/* Verdicts on n prepared items in order, as one push: outs[i] for items[i].
 * Runs in a savepoint of the caller's transaction. On -1 nothing of the
 * batch stays and the log is reloaded; the caller's transaction goes on
 * unless the failure ended it (sqlite3_get_autocommit says so). */
int ingest_batch(struct ingest *in, const struct ingest_item *items,
		 size_t n, int64_t now_ms, struct ingest_outcome *outs /* OUT */,
		 struct err *e);

/* After the caller rolled back a transaction ingest wrote in: forgets
 * what ingest had cached of it. */
void ingest_rolled_back(struct ingest *in);

/* One change set as it comes (the server's own outbox; pushes go through
 * ingest_prepare and ingest_batch). sig_ok: the caller already verified
 * this exact byte string's signature; 0 makes ingest verify it. */
int ingest_changeset(struct ingest *in, const uint8_t *bytes, size_t len,
		     int sig_ok, int64_t now_ms,
		     struct ingest_outcome *out /* OUT */, struct err *e);

/* Signs and logs an enrollment of `device` and registers it. *signed_bytes
 * (mem_free) gets the signed enrollment. Enrolling a known device fails. */
int ingest_enroll(struct ingest *in, const uint8_t device[SIGN_PUBLIC_BYTES],
		  enum enrollment_role role, const char *scope,
		  const char *name, int64_t now_ms, uint8_t **signed_bytes,
		  size_t *signed_len, uint64_t *index, struct err *e);

/* Signs and logs a revocation; the device can neither push nor pull after
 * it. Fails for unknown or already revoked devices. */
int ingest_revoke(struct ingest *in, const uint8_t device[SIGN_PUBLIC_BYTES],
		  const char *reason, int64_t now_ms, uint64_t *index,
		  struct err *e);

/* Logs every change set of the server's own outbox not yet in the log
 * (admin writes such as 'branch add' made through capture). */
int ingest_own_outbox(struct ingest *in, int64_t now_ms, struct err *e);

#endif
