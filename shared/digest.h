/* digest.h - the canonical digest of a replica's record tables: one SHA-256
 * that is equal on two replicas exactly when they hold the same records
 * (protocol/FORMAT.md, "Canonical digest"). Bookkeeping tables (clocks,
 * tombstones, outbox, conflicts) are not part of it. */
#ifndef BS_DIGEST_H
#define BS_DIGEST_H

#include <stdint.h>

#include <sqlite3.h>

#include "err.h"
#include "sign.h"

/* Computes the digest over every record table. */
int digest_compute(sqlite3 *db, uint8_t out[HASH_BYTES], struct err *e);

/* The digest of one row (its canonical encoding hashed alone), so that two
 * replicas can find which rows differ. */
int digest_row_hashes(sqlite3 *db, const char *table,
		      int (*each)(void *ctx, const char *id,
				  const char *branch_id,
				  const uint8_t hash[HASH_BYTES]),
		      void *ctx, struct err *e);

#endif
