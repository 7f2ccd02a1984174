/* sync.h - the branch device's sync with the district server (docs/SYNC.md):
 * push the outbox in bounded batches and keep the server's receipts, then
 * pull the log page by page, verifying every checkpoint, proof, signature
 * and author's right to write before merging, each page in one transaction
 * so that a sync cut anywhere resumes without loss or duplicates. Not for
 * HTTP (transport.h), reading answers (answer.h) nor the merge rules
 * (shared/merge.h). */
#ifndef BS_SYNC_H
#define BS_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "enrollment.h"
#include "err.h"
#include "identity.h"
#include "replica.h"
#include "transport.h"
#include "verdict.h"

/* A push batch holds at most this many change sets, and stops adding more
 * once this many bytes of change sets are in it (so one set larger than
 * that still goes, alone). */
#define SYNC_PUSH_COUNT 500
#define SYNC_PUSH_BYTES (1u << 20)
/* Entries asked for per pull page (the server also stops near 1 MiB). */
#define SYNC_PULL_LIMIT 500
/* How far ahead of our wall clock a received stamp may move our clock. */
#define SYNC_MAX_DRIFT_MS (10 * 60 * 1000)

struct sync_options {
	int progress;          /* report batches and pages on stderr */
};

/* What one sync did; the --json keys of docs/SYNC.md. */
struct sync_summary {
	uint64_t pushed, accepted, duplicates, refused;
	uint64_t pulled, applied, conflicts;
	uint64_t bytes_sent, bytes_received, requests;
	uint64_t checkpoint_size;
	uint8_t checkpoint_root[HASH_BYTES];
	uint64_t cursor;
	/* the server's reason for the first change set it refused (and
	 * logged) during this sync, empty if none */
	char refusal[VERDICT_REASON_MAX + 1];
};

/*
 * Pushes, then pulls, for the enrolled device `id` (unlocked) on replica r.
 * Fills *sum as it goes (also when it fails). Returns 0 when everything
 * was pushed (or refused and logged: sum->refused says how many) and
 * pulled to the server's latest checkpoint. Fails with ERR_UNREACHABLE
 * (no answer; what was done is committed, the rest waits), ERR_VERIFY (a
 * checkpoint, proof, signature or author's right does not verify; nothing
 * of that batch or page is kept; a fork leaves both signed checkpoints in
 * bs_evidence), or ERR_INVALID (not enrolled, refused by the server without
 * a log entry, local failures). Allocates nothing that outlives the call.
 */
int sync_run(struct replica *r, struct identity *id,
	     const struct sync_options *o, struct sync_summary *sum /* OUT */,
	     struct err *e);

/* Opens a transport to the replica's server with the stored TLS settings
 * and the device's key for signing. Free with transport_free. */
int sync_transport(struct replica *r, const struct identity *id,
		   struct transport **out /* OUT */, struct err *e);

/* Records a verified enrollment at log index `index` in bs_authors (the
 * first one of a key stands). Runs in the caller's transaction; fails with
 * ERR_VERIFY for an unknown role, ERR_INVALID on a database error. */
int sync_author_enrolled(struct replica *r, const struct enrollment *en,
			 uint64_t index, struct err *e);

#endif
