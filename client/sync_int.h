/* sync_int.h - what the parts of a sync (sync.c, sync_cp.c, sync_push.c,
 * sync_pull.c) share: the state of one sync and the helpers they call on
 * each other. Internal to them; the rest of the program uses sync.h. */
#ifndef BS_SYNC_INT_H
#define BS_SYNC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "answer.h"
#include "sync.h"

/* Small answers: a checkpoint or a proof and END. */
#define SYNC_SMALL_FRAME_MAX 8192

struct merge;

struct sync {
	struct replica *r;
	struct identity *id;
	struct transport *t;
	struct merge *merge;
	uint8_t server_pk[SIGN_PUBLIC_BYTES];
	char origin[CHECKPOINT_ORIGIN_MAX + 1];
	struct checkpoint cp;          /* the last one verified and stored */
	uint64_t cursor;               /* the next log index to pull */
	/* The log index just after our own pushed sets when they followed
	 * the cursor without a gap: when it reaches the push's checkpoint,
	 * nothing else was logged and this sync needs no pull. */
	uint64_t ahead;
	int caught_up;
	/* Send whole change sets only: the server could not name the
	 * predecessor of a compact one (409), so this sync does without. */
	int whole;
	int progress;
	struct sync_summary *sum;
};

/* ---- sync.c ---- */

/* Prepares sql on the replica; fails with ERR_INVALID. *st is the
 * caller's to finalize. */
int sync_prepare(struct sync *s, const char *sql, sqlite3_stmt **st,
		 struct err *e);
/* Steps st once and finalizes it; fails with ERR_INVALID unless that step
 * finished the statement. */
int sync_done(struct sync *s, sqlite3_stmt *st, struct err *e);
void sync_evidence(struct sync *s, const char *kind,
		   const char *detail, const uint8_t *a, size_t alen,
		   const uint8_t *b, size_t blen);
/* The first 8 bytes of p in hex, to name a key or id in a message. */
void sync_short_hex(const uint8_t *p, char out[17]);
/* Keeps reason in the summary if it is this sync's first refusal (control
 * bytes as '?', cut to fit). */
void sync_note_refusal(struct sync *s, const char *reason, size_t len);

/* ---- sync_cp.c ---- */

int synccp_fork(struct sync *s, const struct checkpoint *cp,
		const char *why, struct err *e);
int synccp_checkpoint_proof(struct sync *s, struct answer_frames *fr,
			    const struct checkpoint *cp, struct err *e);
int synccp_answer_checkpoint(struct sync *s, struct answer_frames *fr,
			     struct checkpoint *cp, struct err *e);
/* Stores cp as the last verified checkpoint, in the caller's transaction;
 * fails with ERR_INVALID. */
int synccp_store_checkpoint(struct sync *s, const struct checkpoint *cp,
			    struct err *e);

/* ---- sync_push.c ---- */

/* Pushes every pending relayed set, then every own one, in batches, each
 * batch's verdicts and checkpoint committed as it is answered. Fails as
 * sync_run does; allocates nothing that outlives the call. */
int syncpush_run(struct sync *s, struct err *e);

/* ---- sync_pull.c ---- */

/* Pulls the log from s->cursor to the server's latest checkpoint, a page
 * a transaction. Fails as sync_run does; allocates nothing that outlives
 * the call. */
int syncpull_run(struct sync *s, struct err *e);

#endif
