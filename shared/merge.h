/* merge.h - the one implementation of branchsync's merge rules, used by the
 * client, the server and the auditor (docs/MERGE.md):
 *   - each cell goes to the write with the greatest (HLC, author key);
 *   - a delete makes a permanent tombstone: the row id never comes back, and
 *     writes that reach a deleted row are kept as conflicts, not applied;
 *   - an UPDATE whose old value differs from the current one was made
 *     without seeing the current value: recorded as a conflict;
 *   - a change set already applied is a no-op.
 * All functions run inside the caller's transaction. */
#ifndef BS_MERGE_H
#define BS_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "changeset.h"
#include "err.h"

struct merge;

struct merge_stats {
	uint64_t changesets;    /* applied (not duplicates) */
	uint64_t duplicates;
	uint64_t rows;          /* row operations examined */
	uint64_t cells_won;     /* cells written */
	uint64_t cells_lost;    /* cells kept at a newer value */
	uint64_t conflicts;     /* conflict records written */
};

/* Prepares a merger over db (statements are cached). Free with merge_free. */
int merge_new(sqlite3 *db, struct merge **out /* OUT */, struct err *e);
void merge_free(struct merge *m);
/* Do not keep others' change set bytes in bs_applied (clients keep them to
 * forward them in bundles; the server has them in its log). */
void merge_drop_bytes(struct merge *m);

/* Checks that a change set body is well formed for our schema without
 * touching the database: known tables, column counts, key columns, every
 * row's branch_id equal to the envelope scope, values typed and valid. */
int merge_check(const struct changeset *cs, struct err *e);

/* Applies a verified change set from any device. *applied is 1 if it was
 * new, 0 if it had been applied before. Fails with ERR_INVALID when the
 * body does not parse or breaks the schema; the caller rolls back. */
int merge_apply(struct merge *m, const struct changeset *cs,
		int *applied /* OUT */, struct merge_stats *stats,
		struct err *e);

/* merge_apply of a change set that passed merge_check and has not changed
 * since (merge_check reads the set alone, not the database): the body is
 * not checked twice. */
int merge_apply_checked(struct merge *m, const struct changeset *cs,
			int *applied /* OUT */, struct merge_stats *stats,
			struct err *e);

/* Capture's side, in this order for each captured body: merge_clock_floor
 * on the body before it is signed, merge_record_local on the signed change
 * set of the same body. */

/* Before a captured body is signed: *floor gets the greatest clock of the
 * cells it overwrites, so the caller can stamp the write after them (a
 * write must beat what its author saw, whatever the wall clocks say), and
 * scope the one branch_id all its rows share. Fails with ERR_INVALID if the
 * body spans two scopes, re-creates a deleted row or holds an invalid id.
 * Keeps what merge_record_local needs (the clocks found, where the inserted
 * keys are in the body) until the next call. */
int merge_clock_floor(struct merge *m, const uint8_t *body, size_t len,
		      uint64_t *floor /* OUT */,
		      char scope[CHANGESET_SCOPE_MAX + 1] /* OUT */,
		      struct err *e);

/* Records the clocks of the change set this device just captured (its
 * values are already in the tables) and marks it applied; cs's body must be
 * the bytes merge_clock_floor saw. Rows it inserted get implicit clocks
 * (implicit.h), the rows it updates or deletes explicit ones. */
int merge_record_local(struct merge *m, const struct changeset *cs,
		       struct err *e);

/* 1 if (tbl, id, branch_id) is a tombstone, 0 if not, -1 on error. */
int merge_is_deleted(struct merge *m, const char *tbl, const char *id,
		     const char *branch_id, struct err *e);

#endif
