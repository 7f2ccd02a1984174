/* capture.h - turns every local write transaction into signed change sets:
 * an SQLite session records the record tables while the caller writes, and
 * at each cut the changeset is checked against policy (one scope per set;
 * the enrolled scope only), signed with the next sequence number and the
 * previous id, and appended to the outbox in the same SQLite transaction as
 * the data, so neither can exist without the other. */
#ifndef BS_CAPTURE_H
#define BS_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "replica.h"
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
/* Rolls back everything since capture_begin and frees. */
void capture_free(struct capture *c);

#endif
