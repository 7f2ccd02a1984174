/* implicit.h - implicit clocks: a row that nobody wrote since the change
 * set that inserted it holds, in every cell, that change set's clock, so
 * instead of a bs_rows entry per row (a B-tree insert as dear as the row's
 * own) its clock is kept once per range of the record table's rowids, in
 * bs_implicit. Each slot of a range holds a fingerprint of the key of the
 * row inserted there, so a lookup by rowid is verified, never trusted;
 * when it does not verify (a row that changed rowid), a search by key over
 * every range still finds it. docs/MERGE.md, "Where clocks live".
 * Not for rows with explicit clocks (bs_rows, merge.c: those always win)
 * nor for tombstones, which are always explicit. */
#ifndef BS_IMPLICIT_H
#define BS_IMPLICIT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "err.h"
#include "schema.h"

#define IMPLICIT_HASH_BYTES 16
/* slots per bs_implicit row: 3840 bytes stay on one 4 KiB page */
#define IMPLICIT_MAX_SLOTS 240
/* a range goes on across at most this many empty slots */
#define IMPLICIT_MAX_GAP 16

struct implicit;

/* Prepares nothing yet. Allocates *out (implicit_free). ERR_INVALID when
 * out of memory. */
int implicit_new(sqlite3 *db, struct implicit **out /* OUT */,
		 struct err *e);
void implicit_free(struct implicit *im);

/* The fingerprint of key (id, branch_id): SipHash-2-4 with 128-bit output
 * of id || 0x00 || branch_id under a fixed key; never all zero (that marks
 * an empty slot). */
void implicit_key_hash(const char *id, size_t id_len, const char *branch,
		       size_t branch_len, uint8_t out[IMPLICIT_HASH_BYTES]);

/* The clock of the row at `rowid` of t whose key hashes to h: *found 1 and
 * *hlc, *dev when the live range covering rowid has h in that slot, else
 * *found 0. ERR_INVALID on a database error. */
int implicit_find(struct implicit *im, const struct schema_table *t,
		  int64_t rowid, const uint8_t h[IMPLICIT_HASH_BYTES],
		  int *found /* OUT */, uint64_t *hlc /* OUT */,
		  int64_t *dev /* OUT */, struct err *e);

/* The slow path, for rows whose rowid is unknown (deleted since) or did
 * not verify: searches every range of t, live or not, for each of the n
 * fingerprints hs[i]; found[i], hlc[i], dev[i] as for implicit_find. Reads
 * every range of t once. ERR_INVALID on a database error or out of memory. */
int implicit_search(struct implicit *im, const struct schema_table *t,
		    const uint8_t (*hs)[IMPLICIT_HASH_BYTES], size_t n,
		    int *found /* OUT */, uint64_t *hlc /* OUT */,
		    int64_t *dev /* OUT */, struct err *e);

/* Notes that the change set being recorded inserted the row at `rowid` of
 * the table at schema index tidx, whose key hashes to h, and that the row
 * keeps implicit clocks. Kept in memory until implicit_flush. */
int implicit_add(struct implicit *im, size_t tidx, int64_t rowid,
		 const uint8_t h[IMPLICIT_HASH_BYTES], struct err *e);

/* Writes the rows noted since the last flush as ranges stamped (hlc, dev)
 * and forgets them. A rowid is only ever allocated above every row then
 * present, so the live ranges from the first new rowid up hold only rows
 * that are gone: they are cut off there (kept for the slow path, no longer
 * consulted by rowid). ERR_INVALID on a database error. */
int implicit_flush(struct implicit *im, uint64_t hlc, int64_t dev,
		   struct err *e);

/* Forgets the rows noted since the last flush. */
void implicit_discard(struct implicit *im);

#endif
