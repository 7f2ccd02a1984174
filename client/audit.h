/* audit.h - the auditor's verifier of a whole server log (docs/AUDIT.md):
 * entries fed in log order are checked for contiguity, hashed into the
 * Merkle tree, their signatures verified (two threads), enrollments,
 * revocations, chains and policy judged by log position, and the accepted
 * change sets replayed into a private in-memory replica whose digest is
 * compared with the server's signed one. Independent of the server's code:
 * only protocol/ and shared/ (merge, digest, replica) are used. Not for
 * reading files or talking to the server (cmd_audit.c does both). */
#ifndef BS_AUDIT_H
#define BS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "enrollment.h"
#include "err.h"
#include "statedigest.h"

/* Failures kept with their text; more are only counted. */
#define AUDIT_FAILURES_MAX 1000
#define AUDIT_REASON_MAX   400
/* Entries verified together (in parallel) before being replayed. */
#define AUDIT_BATCH_ITEMS 2048
#define AUDIT_BATCH_BYTES (8u << 20)
#define AUDIT_THREADS	  2
#define AUDIT_TABLES_MAX  16
/* Bytes of a differing row's table and id kept in a failure. */
#define AUDIT_ROW_TABLE_MAX 64
#define AUDIT_ROW_ID_MAX    256
/* Bytes of row hashes kept, of the server's and of the replay's each. */
#define AUDIT_ROWS_BYTES (512u << 20)

struct audit;

/* One thing that does not hold. index is the log entry (-1: the log as a
 * whole, its checkpoint or its digest); device the author or subject when
 * one is known. */
struct audit_failure {
	int64_t index;
	int has_device;
	uint8_t device[SIGN_PUBLIC_BYTES];
	char reason[AUDIT_REASON_MAX];
	/* a record row that differs from the replay's (control bytes shown
	 * as '?', cut at the maximum) */
	int has_row;
	char table[AUDIT_ROW_TABLE_MAX + 1];
	char row[AUDIT_ROW_ID_MAX + 1];
	char branch[AUDIT_ROW_ID_MAX + 1];
};

/* A value written to a record cell, for --record. */
struct audit_value {
	const char *column; /* the schema's column name (static) */
	int kind;	    /* 0 NULL, 1 integer, 2 text */
	int64_t i;
	char *text; /* owned, NUL-terminated */
};

/* One change set that touched the record asked for. */
struct audit_event {
	uint64_t index;
	uint8_t author[SIGN_PUBLIC_BYTES];
	char role[16]; /* the author's role then, or "unknown" */
	char scope[ENROLLMENT_SCOPE_MAX + 1];	  /* its enrolled scope */
	char branch_id[ENROLLMENT_SCOPE_MAX + 1]; /* the row's scope */
	uint64_t hlc;
	const char *op; /* "insert", "update", "delete" */
	struct audit_value *values;
	size_t nvalues;
};

/* What the audit established; read it after audit_finish. */
struct audit_result {
	uint64_t entries; /* log entries fed */
	uint64_t changesets, accepted, refused, applied;
	uint64_t enrollments, revocations;
	uint64_t devices, revoked; /* enrolled keys; of them revoked */
	uint64_t authors;	   /* devices that wrote a change set */
	uint64_t scopes;	   /* distinct scopes written, district too */
	uint64_t conflicts;	   /* conflict records the replay wrote */
	int have_checkpoint;	   /* a checkpoint was given and decodes */
	int checkpoint_ok;	   /* it verifies and the entries give it */
	struct checkpoint cp;
	int have_digest; /* a digest was given and verifies */
	struct statedigest sd;
	int digest_compared, digest_ok;
	uint8_t replayed[HASH_BYTES]; /* digest of the replay */
	size_t ntables;
	const char *table[AUDIT_TABLES_MAX];
	uint64_t rows[AUDIT_TABLES_MAX]; /* replayed rows per table */
	struct audit_failure *failures;
	size_t nfailures; /* kept (at most AUDIT_FAILURES_MAX) */
	uint64_t failures_total;
	/* --record: the history, oldest first, and the row as replayed */
	struct audit_event *events;
	size_t nevents;
	int record_found;
	struct audit_value *now;
	size_t nnow;
	char now_branch[ENROLLMENT_SCOPE_MAX + 1];
};

struct audit_options {
	const char *record_table; /* --record TABLE ID, or NULL */
	const char *record_id;
	unsigned threads; /* 0: AUDIT_THREADS */
};

/* Starts an audit of the log of `origin` signed by `server_pk`: opens the
 * private in-memory replica. Allocates *out; free with audit_free. Fails
 * with ERR_USAGE for an unknown --record table, ERR_INVALID when memory or
 * the replica cannot be had. */
int audit_new(const uint8_t server_pk[SIGN_PUBLIC_BYTES], const char *origin,
	      const struct audit_options *o, struct audit **out /* OUT */,
	      struct err *e);
void audit_free(struct audit *a);

/* Feeds the entry claimed to be log entry `index` (its exact bytes, copied).
 * Entries must come in the order they were received; whatever they hold is
 * judged, never refused here. Fails (-1, ERR_INVALID) only for local
 * failures: memory, the replica. */
int audit_entry(struct audit *a, uint64_t index, const uint8_t *entry,
		size_t len, struct err *e);

/* The signed checkpoint and state digest to judge the log against (copied;
 * at most one of each; judged by audit_finish). */
void audit_checkpoint(struct audit *a, const uint8_t *p, size_t len);
void audit_digest(struct audit *a, const uint8_t *p, size_t len);

/* One ROWHASH frame of the server's (protocol/FORMAT.md, "Row hashes"),
 * copied for audit_rows_judge. Unsigned, so never a failure by itself. */
void audit_row_hash(struct audit *a, const uint8_t *p, size_t len);

/* After audit_finish: 1 if the replay's digest was compared with the
 * signed one and differs, so that row hashes would say where. */
int audit_rows_wanted(const struct audit *a);

/* After audit_finish and the row hashes: when audit_rows_wanted, compares
 * the server's row hashes with the replay's and records one failure per
 * row that differs (none when no row hash was given). Allocates two sorted
 * indexes for the time of the call. Fails (-1, ERR_INVALID) only for local
 * failures: memory, the replica. */
int audit_rows_judge(struct audit *a, struct err *e);

/* Records a failure found by the caller (a fork, a damaged file). device
 * may be NULL. */
void audit_fail(struct audit *a, int64_t index, const uint8_t *device,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Replays what is left, then judges the checkpoint and the digest. Fills
 * the result. Fails only for local failures, as audit_entry. */
int audit_finish(struct audit *a, struct err *e);

/* The Merkle root of the first `size` entries fed (after audit_finish):
 * 0, or -1 if fewer were fed. */
int audit_prefix_root(const struct audit *a, uint64_t size,
		      uint8_t out[HASH_BYTES] /* OUT */);

const struct audit_result *audit_result(const struct audit *a);

#endif
