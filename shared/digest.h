/* digest.h - the canonical digest of a replica's record tables: one SHA-256
 * that is equal on two replicas exactly when they hold the same records
 * (protocol/FORMAT.md, "Canonical digest"). Bookkeeping tables (clocks,
 * tombstones, outbox, conflicts) are not part of it. */
#ifndef BS_DIGEST_H
#define BS_DIGEST_H

#include <stdint.h>

#include <sqlite3.h>

#include "buf.h"
#include "err.h"
#include "sign.h"

/* Bytes of a ROWHASH frame's table name, and of its id or branch_id
 * (protocol/FORMAT.md, "Row hashes"). */
#define DIGEST_TABLE_MAX 64
#define DIGEST_ROW_ID_MAX 1024

/* A ROWHASH payload decoded; every pointer points into the payload. */
struct digest_rowhash {
	const uint8_t *table, *id, *branch_id, *hash;
	size_t table_len, id_len, branch_len;
};

/* Computes the digest over every record table. */
int digest_compute(sqlite3 *db, uint8_t out[HASH_BYTES], struct err *e);

/* The digest of one row (its canonical encoding hashed alone), so that two
 * replicas can find which rows differ. */
int digest_row_hashes(sqlite3 *db, const char *table,
		      int (*each)(void *ctx, const char *id,
				  const char *branch_id,
				  const uint8_t hash[HASH_BYTES]),
		      void *ctx, struct err *e);

/* Appends one ROWHASH frame per row of every record table, tables in
 * canonical order and rows in digest order, to b (which the caller owns;
 * b->status is checked). With a flush (else NULL), it is called after each
 * frame and may write b out and empty it (a file larger than memory); a
 * non-zero return stops the walk with flush's error in e. Allocates
 * nothing that outlives the call. Fails (-1, ERR_INVALID) when the
 * database cannot be read or b is full. */
int digest_put_rows(sqlite3 *db, struct buf *b,
		    int (*flush)(void *ctx, struct err *e), void *ctx,
		    struct err *e);

/* Appends one ROWHASH payload (not framed) to b; errors stick in
 * b->status. */
void digest_rowhash_encode(struct buf *b, const char *table, const char *id,
			   const char *branch_id,
			   const uint8_t hash[HASH_BYTES]);

/* Decodes a ROWHASH payload (untrusted) into *out, without copying.
 * BS_ETRUNCATED, BS_EOVERLONG, BS_ELIMIT (a field over its maximum),
 * BS_ETRAILING. */
enum bs_status digest_rowhash_decode(const uint8_t *p, size_t len,
				     struct digest_rowhash *out /* OUT */);

#endif
