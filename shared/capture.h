/* capture.h - turns every local write transaction into signed change sets:
 * rows inserted through records_insert (records_set_capture) are written
 * straight into changeset bytes from the values bound (shared/csbuild.c),
 * while an SQLite session records every other write to the record tables
 * (updates, deletes, any other SQL); at each cut the two are combined into
 * one changeset, checked against policy (one scope per set; the enrolled
 * scope only), signed with the next sequence number and the previous id,
 * and appended to the outbox in the same SQLite transaction as the data,
 * so neither can exist without the other. */
#ifndef BS_CAPTURE_H
#define BS_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "replica.h"
#include "schema.h"
#include "sign.h"

struct capture;

/* What capture needs to sign for this device. */
struct capture_signer {
	const uint8_t *pk;       /* SIGN_PUBLIC_BYTES */
	const uint8_t *sk;       /* SIGN_SECRET_BYTES, in sodium_malloc memory */
	const char *scope_only;  /* enrolled branch scope, or NULL (any) */
	uint64_t wall_ms;        /* current wall clock, for the HLC */
};

/* BEGIN IMMEDIATE and start recording. Allocates *out (capture_free). */
int capture_begin(struct replica *r, const struct capture_signer *signer,
		  struct capture **out /* OUT */, struct err *e);
/* Signs what was written since the last cut as one change set (nothing if
 * nothing changed) and starts recording anew. *count gets the number of
 * change sets made (0 or 1). Policy refusals are ERR_INVALID. */
int capture_cut(struct capture *c, int *count /* OUT */, struct err *e);
/* capture_cut, then COMMIT. */
int capture_commit(struct capture *c, int *count /* OUT */, struct err *e);
/* For records_insert, around the INSERT of vals[0 .. t->ncolumns + 2) (id,
 * branch_id, the columns in schema order) into t: capture_insert_start
 * returns 1 when capture will take the row from capture_insert_end rather
 * than from the session (which it then pauses), 0 when the session should
 * record it as usual (it already holds a change since the last cut, or a
 * value is not stored as given); capture_insert_end must follow a 1 once
 * the statement has run, `inserted` saying whether the row was written.
 * An inserted row that capture cannot keep (out of memory, or the change
 * set would pass CHANGESET_MAX_BODY) fails with ERR_INVALID and leaves the
 * capture able only to roll back. Assumes the row is not undone by a
 * ROLLBACK TO a savepoint: only capture_free rolls back. */
int capture_insert_start(struct capture *c, const struct schema_table *t,
			 const struct schema_value *const *vals);
int capture_insert_end(struct capture *c, const struct schema_table *t,
		       const struct schema_value *const *vals, int inserted,
		       struct err *e);
/* Rolls back everything since capture_begin and frees. */
void capture_free(struct capture *c);

#endif
