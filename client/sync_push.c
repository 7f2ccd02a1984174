/* sync_push.c - the push half of a sync: the outbox and relayed change sets
 * in bounded batches, each answered by a signed push receipt that is
 * verified and kept with the verdicts it gives (docs/SYNC.md). */
#include "sync_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "answer.h"
#include "changeset.h"
#include "cli.h"
#include "config.h"
#include "cscompact.h"
#include "mem.h"
#include "proof.h"
#include "pushreceipt.h"

/* A VERDICT frame: status, id, reason blob, receipt blob. */
/* A frame of a push answer: the push receipt, or the consistency proof. */
#define SYNC_PUSH_FRAME_MAX \
	(PUSHRECEIPT_SIGNED_MAX > PROOF_MAX_ENCODED ? PUSHRECEIPT_SIGNED_MAX \
						    : PROOF_MAX_ENCODED)
/* A push body: the batch, plus one set that may overshoot it. */
#define SYNC_PUSH_BODY_MAX (SYNC_PUSH_BYTES + CHANGESET_MAX_ENCODED + 4096)

/* One push batch: the rows sent, in order, and the body carrying them. */
struct syncpush_batch {
	size_t n;
	uint64_t bytes;
	int64_t seq[SYNC_PUSH_COUNT];
	uint8_t id[SYNC_PUSH_COUNT][HASH_BYTES];
	struct buf body;
	struct buf receipt;            /* the answer's push receipt, copied */
	struct pushreceipt pr;         /* decoded from it */
	/* A batch of other devices' change sets this district device took
	 * from bundles (bs_relay, docs/BUNDLE.md) rather than of our outbox.
	 * Relay rows are read after (after_author, after_seq), so that one
	 * left pending by an unlogged refusal is not sent again this sync. */
	int relay;
	uint8_t after_author[SIGN_PUBLIC_BYTES];
	int64_t after_seq;
};

/* Whether the server accepted our change set `seq` - 1: then, unless its
 * log and this outbox disagree (a restored backup), it is the head of our
 * chain there when `seq` arrives. A set refused and logged may not be
 * (an equivocation does not move the head), so it does not count. */
static int syncpush_pred_accepted(struct sync *s, int64_t seq, int *yes,
				  struct err *e)
{
	sqlite3_stmt *st = NULL;
	int step;

	*yes = 0;
	if (sync_prepare(s, "SELECT acked FROM bs_outbox WHERE seq=?1", &st,
			 e))
		return -1;
	sqlite3_bind_int64(st, 1, seq - 1);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*yes = sqlite3_column_int(st, 0) == 1;
	sqlite3_finalize(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		err_set(e, ERR_INVALID, "database error: %s",
			sqlite3_errmsg(s->r->db));
		return -1;
	}
	return 0;
}

/* Appends our own change set `bytes` as a push frame: compact when the
 * server can name its predecessor (the set before it in this batch, or
 * our last logged one), else whole (docs/SYNC.md, "Few bytes"). */
static int syncpush_put_own(struct sync *s, struct syncpush_batch *b,
			    const uint8_t *bytes, size_t n, struct err *e)
{
	int64_t seq = b->seq[b->n];
	struct changeset cs;
	struct buf c;
	int accepted = 0, rc = -1;

	buf_init(&c, n);
	if (!s->whole && seq > 1 && b->n == 0 &&
	    syncpush_pred_accepted(s, seq, &accepted, e))
		goto cleanup;
	if (s->whole ||
	    !(seq == 1 || (b->n > 0 && b->seq[b->n - 1] == seq - 1) ||
	      accepted)) {
		frame_put(&b->body, FRAME_CHANGESET, bytes, n);
		rc = 0;
		goto cleanup;
	}
	if (changeset_decode(bytes, n, &cs) != BS_OK ||
	    (int64_t)cs.env.seq != seq ||
	    cscompact_encode(&cs, &c) != BS_OK) {
		err_set(e, ERR_INVALID, "outbox row %lld is damaged",
			(long long)seq);
		goto cleanup;
	}
	frame_put(&b->body, FRAME_CHANGESET_COMPACT, c.data, c.len);
	rc = 0;
cleanup:
	buf_release(&c);
	return rc;
}

_Static_assert(SYNC_PUSH_COUNT <= PUSHRECEIPT_MAX_SETS,
	       "the server answers at most PUSHRECEIPT_MAX_SETS sets a push");

/* Change sets per push: SYNC_PUSH_COUNT, or fewer in test builds that
 * ask (BRANCHSYNC_TEST_PUSH_COUNT), so that a test can see several
 * batches without writing thousands of sets. */
static size_t syncpush_count(void)
{
#if BRANCHSYNC_TEST_HOOKS
	const char *v = getenv("BRANCHSYNC_TEST_PUSH_COUNT");
	long n = v ? strtol(v, NULL, 10) : 0;

	if (n > 0 && n < SYNC_PUSH_COUNT)
		return (size_t)n;
#endif
	return SYNC_PUSH_COUNT;
}

/* Reads the next batch of unacknowledged change sets, oldest first. */
static int syncpush_batch_fill(struct sync *s, struct syncpush_batch *b,
			       struct err *e)
{
	size_t max = syncpush_count();
	sqlite3_stmt *st = NULL;
	int step = SQLITE_DONE, rc = -1;

	b->n = 0;
	b->bytes = 0;
	buf_reset(&b->body);
	buf_reset(&b->receipt);
	pushreceipt_release(&b->pr);
	/* rows are read one step at a time: memory stays bounded by the
	 * batch, whatever the outbox holds */
	if (sync_prepare(s, b->relay
			 ? "SELECT seq, id, bytes, author FROM bs_relay"
			   " WHERE acked=0 AND (author, seq) > (?1, ?2)"
			   " ORDER BY author, seq"
			 : "SELECT seq, id, bytes FROM bs_outbox WHERE acked=0"
			   " ORDER BY seq", &st, e))
		return -1;
	if (b->relay) {
		sqlite3_bind_blob(st, 1, b->after_author, SIGN_PUBLIC_BYTES,
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, b->after_seq);
	}
	frame_stream_begin(&b->body);
	while (b->n < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 2);

		if (b->n > 0 && b->bytes + n > SYNC_PUSH_BYTES)
			break;
		if (sqlite3_column_bytes(st, 1) != HASH_BYTES || n == 0 ||
		    (b->relay &&
		     sqlite3_column_bytes(st, 3) != SIGN_PUBLIC_BYTES)) {
			err_set(e, ERR_INVALID, "outbox row %lld is damaged",
				(long long)sqlite3_column_int64(st, 0));
			goto cleanup;
		}
		b->seq[b->n] = sqlite3_column_int64(st, 0);
		memcpy(b->id[b->n], sqlite3_column_blob(st, 1), HASH_BYTES);
		if (b->relay) {
			/* relayed sets go whole: compact is for our own */
			frame_put(&b->body, FRAME_CHANGESET,
				  sqlite3_column_blob(st, 2), n);
			memcpy(b->after_author, sqlite3_column_blob(st, 3),
			       SIGN_PUBLIC_BYTES);
			b->after_seq = b->seq[b->n];
		} else if (syncpush_put_own(s, b, sqlite3_column_blob(st, 2), n,
					    e)) {
			goto cleanup;
		}
		b->bytes += n;
		b->n++;
	}
	if (b->n < max && step != SQLITE_ROW && step != SQLITE_DONE) {
		err_set(e, ERR_INVALID, "database error: %s",
			sqlite3_errmsg(s->r->db));
		goto cleanup;
	}
	frame_stream_end(&b->body);
	if (b->body.status) {
		err_set(e, ERR_INVALID, "cannot build the push (%s)",
			bs_status_str(b->body.status));
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

/* A set accepted by this push was logged by it: after every entry of the
 * checkpoint verified before, and after the sets accepted before it in
 * the batch. A receipt placing one anywhere else contradicts what the
 * server signed before, so it does not verify. */
static int syncpush_receipt_fresh(const struct sync *s,
				  const struct pushreceipt *pr, struct err *e)
{
	uint64_t next = s->cp.size;
	size_t i;

	for (i = 0; i < pr->count; i++) {
		const struct pushreceipt_item *it = &pr->items[i];

		if (it->status != VERDICT_ACCEPTED)
			continue;
		if (it->index < next) {
			err_set(e, ERR_VERIFY, "the server's push receipt "
				"says change set %zu of the batch was accepted "
				"at log index %llu, which the checkpoint of "
				"%llu entries verified before, or another set "
				"of the batch, holds already",
				i + 1, (unsigned long long)it->index,
				(unsigned long long)s->cp.size);
			return -1;
		}
		next = it->index + 1;
	}
	return 0;
}

/* Reads a push answer (receipt=wire): the push receipt, rebuilt from its
 * wire form with the hash of the ids sent (so its signature verifies only
 * if the server signed for exactly those), which must be the server's, in
 * this log; then the consistency proof from our checkpoint to its own.
 * b->receipt gets the rebuilt signed receipt, which is what is kept. */
static int syncpush_read(struct sync *s, struct syncpush_batch *b,
			 const struct transport_reply *rep,
			 struct checkpoint *cp, struct err *e)
{
	struct answer_frames fr;
	struct frame f;
	uint8_t ids_hash[HASH_BYTES];
	enum bs_status st;
	int rc = -1;

	answer_frames_init(&fr, &rep->body, SYNC_PUSH_FRAME_MAX);
	if (answer_frames_expect(&fr, FRAME_PUSHRECEIPT, "push receipt", &f,
				 e))
		goto cleanup;
	pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])b->id, b->n,
			     ids_hash);
	st = pushreceipt_wire_unpack(f.payload, f.len, ids_hash, &b->receipt);
	if (st == BS_ENOMEM) {
		err_set(e, ERR_INVALID, "out of memory reading the receipt");
		goto cleanup;
	}
	if (st != BS_OK ||
	    (st = pushreceipt_decode(b->receipt.data, b->receipt.len,
				     &b->pr)) != BS_OK ||
	    (st = pushreceipt_verify(&b->pr, s->server_pk)) != BS_OK) {
		err_set(e, ERR_VERIFY, "the server's push receipt does not "
			"verify (%s)", bs_status_str(st));
		goto cleanup;
	}
	if (b->pr.count != b->n ||
	    memcmp(b->pr.ids_hash, ids_hash, HASH_BYTES) != 0 ||
	    strcmp(b->pr.checkpoint.origin, s->origin) != 0) {
		err_set(e, ERR_VERIFY, "the server's push receipt is not for "
			"the %zu change sets sent to log %s", b->n, s->origin);
		goto cleanup;
	}
	if (syncpush_receipt_fresh(s, &b->pr, e))
		goto cleanup;
	*cp = b->pr.checkpoint;
	if (synccp_checkpoint_proof(s, &fr, cp, e) || answer_frames_end(&fr, e))
		goto cleanup;
	rc = 0;
cleanup:
	answer_frames_release(&fr);
	return rc;
}

/* Applies verdict i of the push receipt (stored as bs_receipts row
 * `receipt_id`) to its outbox (or relay) row. A refusal the server did not
 * log leaves the row pending and its reason in `unlogged` (else empty). */
static int syncpush_verdict(struct sync *s, struct syncpush_batch *b, size_t i,
			    int64_t receipt_id,
			    char unlogged[VERDICT_REASON_MAX + 1],
			    struct err *e)
{
	const struct pushreceipt_item *it = &b->pr.items[i];
	sqlite3_stmt *st = NULL;
	static const char relayed[] = "relayed for another device: ";
	char why[VERDICT_REASON_MAX + 1];
	size_t n, len;
	int acked;

	unlogged[0] = '\0';
	if (!it->logged) {
		snprintf(unlogged, VERDICT_REASON_MAX + 1, "%s", it->reason);
		return 0;
	}
	if (sync_prepare(s, b->relay
			 ? "UPDATE bs_relay SET acked=?1, push_receipt=?2,"
			   " verdict=?3 WHERE id=?4"
			 : "UPDATE bs_outbox SET acked=?1, push_receipt=?2,"
			   " verdict=?3 WHERE seq=?4", &st, e))
		return -1;
	if (!b->relay && it->index == s->ahead)
		s->ahead++;
	acked = it->status == VERDICT_REFUSED ? 2 : 1;
	sqlite3_bind_int(st, 1, acked);
	sqlite3_bind_int64(st, 2, receipt_id);
	if (acked == 2)
		sqlite3_bind_text(st, 3, it->reason, -1, SQLITE_STATIC);
	if (b->relay)
		sqlite3_bind_blob(st, 4, b->id[i], HASH_BYTES, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 4, b->seq[i]);
	if (it->status == VERDICT_ACCEPTED)
		s->sum->accepted++;
	else if (it->status == VERDICT_DUPLICATE)
		s->sum->duplicates++;
	else {
		s->sum->refused++;
		/* the reason, said to be a relayed set's when it is */
		n = b->relay ? strlen(relayed) : 0;
		memcpy(why, relayed, n);
		len = strnlen(it->reason, sizeof why - 1 - n);
		memcpy(why + n, it->reason, len);
		sync_note_refusal(s, why, n + len);
	}
	return sync_done(s, st, e);
}

/* Keeps the push receipt once for all the rows it answers, with the ids
 * it binds (in push order), so that it proves on its own what the server
 * promised for each. A receipt that logged nothing answers no row and is
 * not kept (*id stays 0). */
static int syncpush_keep_receipt(struct sync *s, const struct syncpush_batch *b,
				 int64_t *id, struct err *e)
{
	sqlite3_stmt *st = NULL;
	size_t i;

	*id = 0;
	for (i = 0; i < b->pr.count && !b->pr.items[i].logged; i++)
		;
	if (i == b->pr.count)
		return 0;
	if (sync_prepare(s, "INSERT INTO bs_receipts(bytes, ids)"
			 " VALUES(?1, ?2)", &st, e))
		return -1;
	sqlite3_bind_blob64(st, 1, b->receipt.data, b->receipt.len,
			    SQLITE_STATIC);
	sqlite3_bind_blob64(st, 2, b->id, (sqlite3_uint64)b->n * HASH_BYTES,
			    SQLITE_STATIC);
	if (sync_done(s, st, e))
		return -1;
	*id = sqlite3_last_insert_rowid(s->r->db);
	return 0;
}

/* A relayed set the server refused without logging it (a gap in its
 * author's chain, a revoked author, ...): the reason stays with the row,
 * which stays queued, and this device's own pushes go on. */
static int syncpush_relay_unlogged(struct sync *s,
				   const struct syncpush_batch *b, size_t i,
				   const char *reason, struct err *e)
{
	sqlite3_stmt *st = NULL;
	char hex[17];

	if (sync_prepare(s, "UPDATE bs_relay SET verdict=?2 WHERE id=?1", &st,
			 e))
		return -1;
	sqlite3_bind_blob(st, 1, b->id[i], HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
	if (sync_done(s, st, e))
		return -1;
	sync_short_hex(b->id[i], hex);
	cli_warn("the server refused change set %s, relayed for another "
		 "device, without logging it (%s); it stays queued for the "
		 "next sync", hex, reason);
	return 0;
}

/* Commits a batch's verdicts and the checkpoint that covers them. */
static int syncpush_commit(struct sync *s, struct syncpush_batch *b,
			   const struct checkpoint *cp, int *stop,
			   struct err *e)
{
	char reason[VERDICT_REASON_MAX + 1],
	    first_reason[VERDICT_REASON_MAX + 1];
	size_t i;
	int64_t first = 0, receipt_id = 0;

	*stop = 0;
	if (replica_begin(s->r, e))
		return -1;
	if (syncpush_keep_receipt(s, b, &receipt_id, e))
		goto fail;
	for (i = 0; i < b->n; i++) {
		if (syncpush_verdict(s, b, i, receipt_id, reason, e))
			goto fail;
		if (reason[0] && b->relay) {
			if (syncpush_relay_unlogged(s, b, i, reason, e))
				goto fail;
			continue;
		}
		if (reason[0] && !*stop) {
			*stop = 1;
			first = b->seq[i];
			memcpy(first_reason, reason, sizeof reason);
		}
	}
	/* our own sets were all that was logged since the cursor: the
	 * pull would bring nothing (our accepted sets are never sent back,
	 * and our logged refusals we know from this receipt) */
	s->caught_up = !b->relay && s->ahead == cp->size;
	if (s->caught_up &&
	    replica_setting_set_int(s->r, "cursor", (int64_t)cp->size, e))
		goto fail;
	if (synccp_store_checkpoint(s, cp, e) || replica_commit(s->r, e))
		goto fail;
	s->cp = *cp;
	if (s->caught_up)
		s->cursor = cp->size;
	s->sum->pushed += b->n;
	if (*stop) {
		err_set(e, ERR_INVALID, "the server refused change set %lld "
			"without logging it (%s); it and the ones after it "
			"stay in the outbox", (long long)first, first_reason);
		return -1;
	}
	return 0;
fail:
	replica_rollback(s->r);
	return -1;
}

/* One POST of the batch in b->body. */
static int syncpush_send(struct sync *s, const struct syncpush_batch *b,
			 struct transport_reply *rep, struct err *e)
{
	char target[64];

	snprintf(target, sizeof target, "/v1/push?known=%" PRIu64
		 "&receipt=wire", s->cp.size);
	return transport_request(s->t, "POST", target, b->body.data,
				 b->body.len,
				 TRANSPORT_SIGNED | TRANSPORT_IDEMPOTENT, rep, e);
}

static int syncpush_one_batch(struct sync *s, struct syncpush_batch *b,
			      int *done, struct err *e)
{
	struct transport_reply rep;
	struct checkpoint cp;
	int stop, rc = -1;

	transport_reply_init(&rep);
	*done = 0;
	if (syncpush_batch_fill(s, b, e))
		goto cleanup;
	if (b->n == 0) {
		*done = 1;
		rc = 0;
		goto cleanup;
	}
	if (syncpush_send(s, b, &rep, e))
		goto cleanup;
	if (rep.status == 409 && !b->relay && !s->whole) {
		/* it could not name a compact set's predecessor, or one did
		 * not verify as expanded (its log and this outbox disagree):
		 * the same batch, whole, for the verdicts a whole one gets */
		s->whole = 1;
		transport_reply_release(&rep);
		transport_reply_init(&rep);
		if (syncpush_batch_fill(s, b, e) ||
		    syncpush_send(s, b, &rep, e))
			goto cleanup;
	}
	if (rep.status != 200) {
		answer_http_error(&rep, "push", e);
		goto cleanup;
	}
	if (syncpush_read(s, b, &rep, &cp, e) ||
	    syncpush_commit(s, b, &cp, &stop, e))
		goto cleanup;
	if (s->progress)
		fprintf(stderr, "branchsync: push: %llu change sets sent, "
			"%llu bytes\n",
			(unsigned long long)s->sum->pushed,
			(unsigned long long)transport_bytes_sent(s->t));
	rc = 0;
cleanup:
	transport_reply_release(&rep);
	return rc;
}

int syncpush_run(struct sync *s, struct err *e)
{
	struct syncpush_batch *b = mem_calloc(1, sizeof *b);
	int done = 0, rc = -1;

	if (!b) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	buf_init(&b->body, SYNC_PUSH_BODY_MAX);
	buf_init(&b->receipt, PUSHRECEIPT_SIGNED_MAX);
	/* relayed sets first: this device's own may build on what it
	 * relays, never the other way round (docs/BUNDLE.md) */
	for (b->relay = 1; b->relay >= 0; b->relay--)
		for (done = 0; !done;)
			if (syncpush_one_batch(s, b, &done, e))
				goto cleanup;
	rc = 0;
cleanup:
	buf_release(&b->body);
	buf_release(&b->receipt);
	pushreceipt_release(&b->pr);
	mem_free(b);
	return rc;
}
