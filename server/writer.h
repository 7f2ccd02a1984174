/* writer.h - branchsyncd's one write connection and the thread that
 * writes pushes to it by group commit: every push queued while a group
 * commits goes into the next group, each push in a savepoint of its own,
 * under one checkpoint and one fsync, and a push returns once its group
 * is durable. The writer also writes the contact times that requests note
 * (store_device_touch). Not for the ingest rules (ingest.h) nor for HTTP
 * (api.c). */
#ifndef BS_WRITER_H
#define BS_WRITER_H

#include <stddef.h>

#include "ingest.h"
#include "srvlog.h"
#include "store.h"

/* Largest group: change sets of the pushes one commit takes at most. */
#define WRITER_GROUP_MAX_SETS 2000
/* Contact times noted by reads alone wait at most about this long. */
#define WRITER_TOUCH_FLUSH_MS 1000

struct writer;

/* Takes s's connection as the write connection, with the log and the
 * ingest over it (both stay the caller's, and must outlive the writer),
 * and starts the writer thread. Allocates *out (writer_free). */
int writer_new(struct store *s, struct srvlog *log, struct ingest *in,
	       struct writer **out /* OUT */, struct err *e);
/* Stops the thread (no push may be queued any more), writes the contact
 * times still noted, and frees. NULL is a no-op. */
void writer_free(struct writer *w);

/* Queues n prepared items as one push (ingest_batch) and waits until its
 * group is committed: 0 with outs[0..n) and *cp, the checkpoint signed
 * over the group; or -1 with e, nothing of the push committed. Thread
 * safe; items and outs stay the caller's. */
int writer_push(struct writer *w, const struct ingest_item *items, size_t n,
		struct ingest_outcome *outs /* OUT */,
		struct checkpoint *cp /* OUT */, struct err *e);

/* The write connection for a transaction of the caller's own (an
 * enrollment): begin waits for it and begins, the log reloaded; commit
 * (durable) or abort (rollback) end the transaction and give the
 * connection back. commit rolls back when it fails. */
int writer_begin(struct writer *w, struct err *e);
int writer_commit(struct writer *w, struct err *e);
void writer_abort(struct writer *w);

#endif
