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

/* sig_ok: the caller already verified this exact byte string's signature
 * (ingest_verify_batch); 0 makes ingest verify it. */
int ingest_changeset(struct ingest *in, const uint8_t *bytes, size_t len,
		     int sig_ok, int64_t now_ms,
		     struct ingest_outcome *out /* OUT */, struct err *e);

/* Decodes and verifies the signatures of n encoded change sets on up to
 * `threads` threads (0: the online cores); ok[i] is 1 when set i decodes and
 * its author's signature verifies. Signature checks dominate ingest, and
 * they need nothing from the database, so they run before the transaction
 * and in parallel. */
void ingest_verify_batch(const uint8_t *const *bytes, const size_t *lens,
			 size_t n, unsigned threads, uint8_t *ok /* OUT */);

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
