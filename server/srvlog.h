/* srvlog.h - the server's append-only log: entries with a global index, the
 * RFC 6962 tree over them kept incrementally (the frontier in memory and in
 * settings, every complete subtree in srv_nodes so proofs cost O(log n)),
 * signed checkpoints, and inclusion and consistency proofs. Appends run in
 * the caller's transaction; after a rollback call srvlog_reload. */
#ifndef BS_SRVLOG_H
#define BS_SRVLOG_H

#include <stdint.h>

#include "checkpoint.h"
#include "logentry.h"
#include "merkle.h"
#include "store.h"

struct srvlog;

/* What an appended entry is about, beside its bytes (for queries). */
struct srvlog_meta {
	const uint8_t *author;   /* change set author or enrolled device */
	uint64_t seq;            /* change set sequence, 0 otherwise */
	const uint8_t *cs_id;    /* change set id, or NULL */
	const char *scope;       /* change set scope, or NULL */
	int64_t time_ms;         /* server clock when logged */
	const uint8_t *leaf;     /* srvlog_leaf of this very entry, if the
				  * caller computed it already, or NULL */
};

int srvlog_open(struct store *s, struct srvlog **out /* OUT */,
		struct err *e);
void srvlog_free(struct srvlog *l);
/* Re-reads the frontier from the database (after a rolled-back append). */
int srvlog_reload(struct srvlog *l, struct err *e);
uint64_t srvlog_size(const struct srvlog *l);

/* The Merkle leaf hash of an entry (what srvlog_append computes; a caller
 * may compute it beforehand, off the write lock, and pass it in meta). */
int srvlog_leaf(const struct logentry *le, uint8_t leaf[HASH_BYTES] /* OUT */);

/* Encodes and appends one entry; *index gets its position. */
int srvlog_append(struct srvlog *l, const struct logentry *le,
		  const struct srvlog_meta *meta, uint64_t *index /* OUT */,
		  struct err *e);

/* Signs a checkpoint of the current tree (unless the latest stored one is
 * of this size already) and stores it; *out gets it. Needs the key. */
int srvlog_checkpoint(struct srvlog *l, int64_t now_ms,
		      struct checkpoint *out /* OUT */, struct err *e);
/* The latest stored checkpoint, or the one of exactly `size` leaves. */
int srvlog_checkpoint_get(struct srvlog *l, int64_t size /* -1: latest */,
			  struct checkpoint *out /* OUT */, struct err *e);

int srvlog_inclusion(struct srvlog *l, uint64_t index, uint64_t size,
		     struct merkle_path *out /* OUT */, struct err *e);
int srvlog_consistency(struct srvlog *l, uint64_t old_size, uint64_t new_size,
		       struct merkle_path *out /* OUT */, struct err *e);

/* Copies entry `index` into out (appended). */
int srvlog_entry(struct srvlog *l, uint64_t index, struct buf *out,
		 struct err *e);

#endif
