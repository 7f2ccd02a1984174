/* sync.c - push and pull with the district server, verifying everything
 * the server says (see sync.h; the protocol and its guarantees are in
 * docs/SYNC.md, the endpoints in docs/API.md). Not for HTTP mechanics
 * (transport.c) nor for the merge rules (shared/merge.c). */
#include "sync.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "answer.h"
#include "bundle.h"
#include "changeset.h"
#include "cli.h"
#include "clock.h"
#include "config.h"
#include "cscompact.h"
#include "hlc.h"
#include "logentry.h"
#include "mem.h"
#include "merge.h"
#include "merkle.h"
#include "proof.h"
#include "prefetch.h"
#include "pushreceipt.h"
#include "request.h"
#include "wire.h"

/* An ENTRY frame: varint index, then a log entry. */
#define SYNC_ENTRY_FRAME_MAX (WIRE_VARINT_MAX + LOGENTRY_MAX)
/* A VERDICT frame: status, id, reason blob, receipt blob. */
/* A frame of a push answer: the push receipt, or the consistency proof. */
#define SYNC_PUSH_FRAME_MAX \
	(PUSHRECEIPT_SIGNED_MAX > PROOF_MAX_ENCODED ? PUSHRECEIPT_SIGNED_MAX \
						    : PROOF_MAX_ENCODED)
/* A push body: the batch, plus one set that may overshoot it. */
#define SYNC_PUSH_BODY_MAX (SYNC_PUSH_BYTES + CHANGESET_MAX_ENCODED + 4096)
/* Small answers: a checkpoint or a proof and END. */
#define SYNC_SMALL_FRAME_MAX 8192

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

/* One push batch: the rows sent, in order, and the body carrying them. */
struct sync_batch {
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

/* What a pull page did, counted into the summary once it commits. */
struct sync_page {
	uint64_t pulled, applied, refused;
	struct merge_stats stats;
	struct hlc clock;
	int64_t clock_stored;
	uint64_t wall_ms;
};

/* ---- database helpers ---- */

static int sync_prepare(struct sync *s, const char *sql, sqlite3_stmt **st,
			struct err *e)
{
	if (sqlite3_prepare_v2(s->r->db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	err_set(e, ERR_INVALID, "database error: %s", sqlite3_errmsg(s->r->db));
	return -1;
}

static int sync_done(struct sync *s, sqlite3_stmt *st, struct err *e)
{
	int step = sqlite3_step(st);

	sqlite3_finalize(st);
	if (step == SQLITE_DONE)
		return 0;
	err_set(e, ERR_INVALID, "database error: %s", sqlite3_errmsg(s->r->db));
	return -1;
}

int sync_author_enrolled(struct replica *r, const struct enrollment *en,
			 uint64_t index, struct err *e)
{
	sqlite3_stmt *st = NULL;
	const char *role = enrollment_role_name(en->role);
	int step;

	if (!role) {
		err_set(e, ERR_VERIFY, "the enrollment at log entry %llu has "
			"an unknown role", (unsigned long long)index);
		return -1;
	}
	if (sqlite3_prepare_v2(r->db,
			       "INSERT INTO bs_authors(key, role, scope,"
			       " enroll_idx) VALUES(?1, ?2, ?3, ?4)"
			       " ON CONFLICT(key) DO NOTHING", -1, &st,
			       NULL) != SQLITE_OK) {
		err_set(e, ERR_INVALID, "database error: %s",
			sqlite3_errmsg(r->db));
		return -1;
	}
	sqlite3_bind_blob(st, 1, en->device, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, en->scope, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)index);
	step = sqlite3_step(st);
	sqlite3_finalize(st);
	if (step == SQLITE_DONE)
		return 0;
	err_set(e, ERR_INVALID, "database error: %s", sqlite3_errmsg(r->db));
	return -1;
}

/* Writes one row of evidence in its own transaction (any other is rolled
 * back first: evidence is kept whatever else failed). A failure to keep it
 * is a warning: the verification error is what the caller reports. */
static void sync_evidence(struct sync *s, const char *kind,
			  const char *detail, const uint8_t *a, size_t alen,
			  const uint8_t *b, size_t blen)
{
	sqlite3_stmt *st = NULL;
	struct err e;

	err_init(&e);
	replica_rollback(s->r);
	if (sync_prepare(s,
			 "INSERT INTO bs_evidence(kind, detail, a, b,"
			 " time_ms) VALUES(?1, ?2, ?3, ?4, ?5)",
			 &st, &e) == 0) {
		sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, detail, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(st, 3, a, alen, SQLITE_STATIC);
		sqlite3_bind_blob64(st, 4, b, blen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (int64_t)clock_wall_ms());
		sync_done(s, st, &e);
	}
	if (e.kind != ERR_OK)
		cli_warn("could not keep the evidence in the replica: %s",
			 e.msg);
}

/* ---- checkpoints: the log only grows ---- */

/* Keeps both signed checkpoints as evidence and fails. */
static int sync_fork(struct sync *s, const struct checkpoint *cp,
		     const char *why, struct err *e)
{
	uint8_t a[CHECKPOINT_SIGNED_MAX], b[CHECKPOINT_SIGNED_MAX];
	char old_root[2 * HASH_BYTES + 1], new_root[2 * HASH_BYTES + 1];
	char detail[512];
	size_t alen = answer_checkpoint_bytes(&s->cp, a);
	size_t blen = answer_checkpoint_bytes(cp, b);

	sodium_bin2hex(old_root, sizeof old_root, s->cp.root, HASH_BYTES);
	sodium_bin2hex(new_root, sizeof new_root, cp->root, HASH_BYTES);
	snprintf(detail, sizeof detail, "%s: checkpoint b (%llu entries, "
		 "root %s) does not extend checkpoint a (%llu entries, root "
		 "%s) verified before", why, (unsigned long long)cp->size,
		 new_root, (unsigned long long)s->cp.size, old_root);
	sync_evidence(s, "fork", detail, a, alen, b, blen);
	err_set(e, ERR_VERIFY, "the server's log forked (%s): its signed "
		"checkpoint of %llu entries does not extend the one of %llu "
		"entries this device verified before; both are kept in "
		"bs_evidence, show them to the district office and the auditor",
		why, (unsigned long long)cp->size,
		(unsigned long long)s->cp.size);
	return -1;
}

/* Fetches the consistency proof from our checkpoint to one of `size`. */
static int sync_fetch_consistency(struct sync *s, uint64_t size,
				  struct proof *p, struct err *e)
{
	struct transport_reply rep;
	struct answer_frames fr;
	struct frame f;
	char target[96];
	enum bs_status st;
	int rc = -1;

	transport_reply_init(&rep);
	answer_frames_init(&fr, &rep.body, SYNC_SMALL_FRAME_MAX);
	snprintf(target, sizeof target, "/v1/consistency?old=%" PRIu64
		 "&new=%" PRIu64, s->cp.size, size);
	if (transport_request(s->t, "GET", target, NULL, 0,
			      TRANSPORT_IDEMPOTENT, &rep, e))
		goto cleanup;
	if (rep.status != 200) {
		answer_http_error(&rep, "consistency proof", e);
		goto cleanup;
	}
	answer_frames_init(&fr, &rep.body, SYNC_SMALL_FRAME_MAX);
	if (answer_frames_expect(&fr, FRAME_PROOF, "consistency proof", &f, e))
		goto cleanup;
	if ((st = proof_decode(f.payload, f.len, p)) != BS_OK) {
		err_set(e, ERR_VERIFY, "the server's consistency proof is "
			"malformed (%s)", bs_status_str(st));
		goto cleanup;
	}
	if (answer_frames_end(&fr, e))
		goto cleanup;
	rc = 0;
cleanup:
	answer_frames_release(&fr);
	transport_reply_release(&rep);
	return rc;
}

/* Checks that cp extends the stored checkpoint: same root at the same
 * size, or a consistency proof (given, or fetched when NULL). A log that
 * shrank or a proof that fails is a fork. */
static int sync_extends(struct sync *s, const struct checkpoint *cp,
			const struct proof *given, struct err *e)
{
	struct proof fetched;
	const struct proof *p = given;

	if (cp->size < s->cp.size)
		return sync_fork(s, cp, "the log shrank", e);
	if (cp->size == s->cp.size) {
		if (memcmp(cp->root, s->cp.root, HASH_BYTES) != 0)
			return sync_fork(s, cp, "two roots for one size", e);
		return 0;
	}
	if (!p) {
		if (sync_fetch_consistency(s, cp->size, &fetched, e))
			return -1;
		p = &fetched;
	}
	if (p->kind != PROOF_CONSISTENCY || p->first != s->cp.size ||
	    p->second != cp->size)
		return sync_fork(s, cp, "the consistency proof is for other "
				 "sizes", e);
	if (merkle_verify_consistency(s->cp.size, cp->size, s->cp.root,
				      cp->root, &p->path) != BS_OK)
		return sync_fork(s, cp, "the consistency proof fails", e);
	return 0;
}

/* Given an answer's verified checkpoint (a push receipt's or a pull
 * page's), reads the consistency proof that follows it when it is larger
 * than ours, and proves it extends ours. */
static int sync_checkpoint_proof(struct sync *s, struct answer_frames *fr,
				 const struct checkpoint *cp, struct err *e)
{
	struct frame f;
	struct proof p;
	enum bs_status st;

	if (cp->size <= s->cp.size)
		return sync_extends(s, cp, NULL, e);
	if (answer_frames_expect(fr, FRAME_PROOF, "consistency proof", &f, e))
		return -1;
	if ((st = proof_decode(f.payload, f.len, &p)) != BS_OK) {
		err_set(e, ERR_VERIFY, "the server's consistency proof is "
			"malformed (%s)", bs_status_str(st));
		return -1;
	}
	return sync_extends(s, cp, &p, e);
}

/* Reads a pull page's checkpoint and proves it extends ours. */
static int sync_answer_checkpoint(struct sync *s, struct answer_frames *fr,
				  struct checkpoint *cp, struct err *e)
{
	struct frame f;

	if (answer_frames_expect(fr, FRAME_CHECKPOINT, "checkpoint", &f, e) ||
	    answer_checkpoint_open(f.payload, f.len, s->server_pk, s->origin,
				   cp, e))
		return -1;
	return sync_checkpoint_proof(s, fr, cp, e);
}

static int sync_store_checkpoint(struct sync *s, const struct checkpoint *cp,
				 struct err *e)
{
	uint8_t b[CHECKPOINT_SIGNED_MAX];
	size_t n = answer_checkpoint_bytes(cp, b);

	return replica_setting_set(s->r, "checkpoint", b, n, e);
}

/* ---- push ---- */

/* Whether the server accepted our change set `seq` - 1: then, unless its
 * log and this outbox disagree (a restored backup), it is the head of our
 * chain there when `seq` arrives. A set refused and logged may not be
 * (an equivocation does not move the head), so it does not count. */
static int sync_pred_accepted(struct sync *s, int64_t seq, int *yes,
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
static int sync_put_own(struct sync *s, struct sync_batch *b,
			const uint8_t *bytes, size_t n, struct err *e)
{
	int64_t seq = b->seq[b->n];
	struct changeset cs;
	struct buf c;
	int accepted = 0, rc = -1;

	buf_init(&c, n);
	if (!s->whole && seq > 1 && b->n == 0 &&
	    sync_pred_accepted(s, seq, &accepted, e))
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
static size_t sync_push_count(void)
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
static int sync_batch_fill(struct sync *s, struct sync_batch *b,
			   struct err *e)
{
	size_t max = sync_push_count();
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
		} else if (sync_put_own(s, b, sqlite3_column_blob(st, 2), n,
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
static int sync_receipt_fresh(const struct sync *s,
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
static int sync_push_read(struct sync *s, struct sync_batch *b,
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
	if (sync_receipt_fresh(s, &b->pr, e))
		goto cleanup;
	*cp = b->pr.checkpoint;
	if (sync_checkpoint_proof(s, &fr, cp, e) || answer_frames_end(&fr, e))
		goto cleanup;
	rc = 0;
cleanup:
	answer_frames_release(&fr);
	return rc;
}

static void sync_short_hex(const uint8_t *p, char out[17])
{
	sodium_bin2hex(out, 17, p, 8);
}

static void sync_note_refusal(struct sync *s, const char *reason, size_t len)
{
	size_t i, n = sizeof s->sum->refusal - 1;

	if (s->sum->refusal[0])
		return;
	if (len > n)
		len = n;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)reason[i];

		s->sum->refusal[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	s->sum->refusal[len] = '\0';
}

/* Applies verdict i of the push receipt (stored as bs_receipts row
 * `receipt_id`) to its outbox (or relay) row. A refusal the server did not
 * log leaves the row pending and its reason in `unlogged` (else empty). */
static int sync_verdict(struct sync *s, struct sync_batch *b, size_t i,
			int64_t receipt_id,
			char unlogged[VERDICT_REASON_MAX + 1], struct err *e)
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
static int sync_keep_receipt(struct sync *s, const struct sync_batch *b,
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
static int sync_relay_unlogged(struct sync *s, const struct sync_batch *b,
			       size_t i, const char *reason, struct err *e)
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
static int sync_push_commit(struct sync *s, struct sync_batch *b,
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
	if (sync_keep_receipt(s, b, &receipt_id, e))
		goto fail;
	for (i = 0; i < b->n; i++) {
		if (sync_verdict(s, b, i, receipt_id, reason, e))
			goto fail;
		if (reason[0] && b->relay) {
			if (sync_relay_unlogged(s, b, i, reason, e))
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
	if (sync_store_checkpoint(s, cp, e) || replica_commit(s->r, e))
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
static int sync_push_send(struct sync *s, const struct sync_batch *b,
			  struct transport_reply *rep, struct err *e)
{
	char target[64];

	snprintf(target, sizeof target, "/v1/push?known=%" PRIu64
		 "&receipt=wire", s->cp.size);
	return transport_request(s->t, "POST", target, b->body.data,
				 b->body.len,
				 TRANSPORT_SIGNED | TRANSPORT_IDEMPOTENT, rep, e);
}

static int sync_push_batch(struct sync *s, struct sync_batch *b, int *done,
			   struct err *e)
{
	struct transport_reply rep;
	struct checkpoint cp;
	int stop, rc = -1;

	transport_reply_init(&rep);
	*done = 0;
	if (sync_batch_fill(s, b, e))
		goto cleanup;
	if (b->n == 0) {
		*done = 1;
		rc = 0;
		goto cleanup;
	}
	if (sync_push_send(s, b, &rep, e))
		goto cleanup;
	if (rep.status == 409 && !b->relay && !s->whole) {
		/* it could not name a compact set's predecessor, or one did
		 * not verify as expanded (its log and this outbox disagree):
		 * the same batch, whole, for the verdicts a whole one gets */
		s->whole = 1;
		transport_reply_release(&rep);
		transport_reply_init(&rep);
		if (sync_batch_fill(s, b, e) || sync_push_send(s, b, &rep, e))
			goto cleanup;
	}
	if (rep.status != 200) {
		answer_http_error(&rep, "push", e);
		goto cleanup;
	}
	if (sync_push_read(s, b, &rep, &cp, e) ||
	    sync_push_commit(s, b, &cp, &stop, e))
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

static int sync_push(struct sync *s, struct err *e)
{
	struct sync_batch *b = mem_calloc(1, sizeof *b);
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
			if (sync_push_batch(s, b, &done, e))
				goto cleanup;
	rc = 0;
cleanup:
	buf_release(&b->body);
	buf_release(&b->receipt);
	pushreceipt_release(&b->pr);
	mem_free(b);
	return rc;
}

/* ---- pull: judging entries ---- */

/* A change set may be merged only if its author was enrolled before it
 * was logged, not revoked by then, and its role allows the scope. */
static int sync_may_write(struct sync *s, const struct changeset *cs,
			  uint64_t index, struct err *e)
{
	sqlite3_stmt *st = NULL;
	char hex[17];
	const char *role, *scope;
	int step, rc = -1;

	sync_short_hex(cs->env.author, hex);
	if (sync_prepare(s, "SELECT role, scope, enroll_idx, revoke_idx"
			 " FROM bs_authors WHERE key=?1", &st, e))
		return -1;
	sqlite3_bind_blob(st, 1, cs->env.author, SIGN_PUBLIC_BYTES,
			  SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		err_set(e, ERR_VERIFY, "log entry %llu is a change set by "
			"device %s, which the log never enrolled",
			(unsigned long long)index, hex);
		goto cleanup;
	}
	if (step != SQLITE_ROW) {
		err_set(e, ERR_INVALID, "database error: %s",
			sqlite3_errmsg(s->r->db));
		goto cleanup;
	}
	role = (const char *)sqlite3_column_text(st, 0);
	scope = (const char *)sqlite3_column_text(st, 1);
	if ((uint64_t)sqlite3_column_int64(st, 2) >= index) {
		err_set(e, ERR_VERIFY, "log entry %llu is a change set by "
			"device %s, enrolled only later",
			(unsigned long long)index, hex);
		goto cleanup;
	}
	if (sqlite3_column_type(st, 3) != SQLITE_NULL &&
	    (uint64_t)sqlite3_column_int64(st, 3) < index) {
		err_set(e, ERR_VERIFY, "log entry %llu is a change set by "
			"device %s, revoked before it",
			(unsigned long long)index, hex);
		goto cleanup;
	}
	if (!role || !scope ||
	    !(strcmp(role, "district") == 0 ||
	      (strcmp(role, "branch") == 0 &&
	       strcmp(scope, cs->env.scope) == 0))) {
		err_set(e, ERR_VERIFY,
			"log entry %llu is a change set of scope "
			"%s by device %s, whose enrollment (%s %s) does not "
			"allow it",
			(unsigned long long)index, cs->env.scope, hex,
			role ? role : "?", scope ? scope : "?");
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

static int sync_author_revoked(struct sync *s, const struct revocation *rv,
			       uint64_t index, struct err *e)
{
	sqlite3_stmt *st = NULL;
	char hex[17];

	if (sync_prepare(s, "UPDATE bs_authors SET revoke_idx=?2 WHERE key=?1"
			 " AND enroll_idx < ?2 AND revoke_idx IS NULL", &st, e))
		return -1;
	sqlite3_bind_blob(st, 1, rv->device, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)index);
	if (sync_done(s, st, e))
		return -1;
	if (sqlite3_changes(s->r->db) == 1)
		return 0;
	sync_short_hex(rv->device, hex);
	err_set(e, ERR_VERIFY, "log entry %llu revokes device %s, which was "
		"not enrolled and unrevoked before it",
		(unsigned long long)index, hex);
	return -1;
}

/* A refusal the server logged for one of our change sets: the outbox row
 * learns its verdict (once). */
static int sync_mark_refused(struct sync *s, const struct changeset *cs,
			     const struct logentry *le, struct sync_page *pg,
			     struct err *e)
{
	sqlite3_stmt *st = NULL;

	if (sync_prepare(s, "UPDATE bs_outbox SET acked=2, verdict=?2"
			 " WHERE id=?1 AND acked != 2", &st, e))
		return -1;
	sqlite3_bind_blob(st, 1, cs->id, HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, le->reason, (int)le->reason_len,
			  SQLITE_STATIC);
	if (sync_done(s, st, e))
		return -1;
	if (sqlite3_changes(s->r->db) == 1) {
		pg->refused++;
		sync_note_refusal(s, le->reason, le->reason_len);
	}
	return 0;
}

static int sync_apply_changeset(struct sync *s, uint64_t index,
				const struct logentry *le,
				struct sync_page *pg, struct err *e)
{
	struct changeset cs;
	struct err why;
	enum bs_status st;
	enum hlc_verdict hv;
	uint64_t stamp;
	int applied;

	st = changeset_decode(le->payload, le->payload_len, &cs);
	if (st == BS_OK)
		st = changeset_verify(&cs);
	if (st) {
		err_set(e, ERR_VERIFY, "the change set at log entry %llu does "
			"not verify (%s)", (unsigned long long)index,
			bs_status_str(st));
		return -1;
	}
	if (le->verdict == LOGENTRY_REFUSED)
		return memcmp(cs.env.author, s->id->pk, SIGN_PUBLIC_BYTES) == 0
		       ? sync_mark_refused(s, &cs, le, pg, e) : 0;
	if (sync_may_write(s, &cs, index, e))
		return -1;
	/* checked apart from merge_apply, so that a bad body is told from a
	 * failing disk */
	err_init(&why);
	if (merge_check(&cs, &why)) {
		err_set(e, ERR_VERIFY,
			"the change set at log entry %llu is not "
			"valid for the schema: %s",
			(unsigned long long)index, why.msg);
		return -1;
	}
	if (merge_apply_checked(s->merge, &cs, &applied, &pg->stats, e))
		return -1;
	if (!applied)
		return 0;
	pg->applied++;
	/* our next writes are ordered after what we have seen, unless the
	 * stamp runs too far ahead of our wall clock (docs/MERGE.md) */
	if (hlc_receive(&pg->clock, pg->wall_ms, cs.env.hlc, &stamp, &hv) !=
	    BS_OK) {
		err_set(e, ERR_INVALID, "the local clock cannot advance; check "
			"the computer's date");
		return -1;
	}
	return 0;
}

static int sync_apply_entry(struct sync *s, uint64_t index,
			    const uint8_t *p, size_t len, struct sync_page *pg,
			    struct err *e)
{
	struct logentry le;
	struct enrollment en;
	struct revocation rv;
	enum bs_status st;

	if ((st = logentry_decode(p, len, &le)) != BS_OK) {
		err_set(e, ERR_VERIFY, "log entry %llu is malformed (%s)",
			(unsigned long long)index, bs_status_str(st));
		return -1;
	}
	switch (le.kind) {
	case LOGENTRY_ENROLLMENT:
		if (enrollment_open(le.payload, le.payload_len, s->server_pk,
				    &en) != BS_OK)
			break;
		/* the signed bytes too, so bundles can carry them */
		return sync_author_enrolled(s->r, &en, index, e) ||
		       bundle_enrollment_keep(s->r, en.device, le.payload,
					      le.payload_len, e) ? -1 : 0;
	case LOGENTRY_REVOCATION:
		if (revocation_open(le.payload, le.payload_len, s->server_pk,
				    &rv) != BS_OK)
			break;
		return sync_author_revoked(s, &rv, index, e);
	case LOGENTRY_CHANGESET:
		return sync_apply_changeset(s, index, &le, pg, e);
	}
	err_set(e, ERR_VERIFY, "log entry %llu is not a valid enrollment or "
		"revocation signed by the server", (unsigned long long)index);
	return -1;
}

/* ---- pull: pages ---- */

/* The server said it has fewer entries than our checkpoint: fetch its
 * signed checkpoint; a smaller one proves the log shrank. Returns 0 to try
 * the page again (the server grew meanwhile), -1 on failure. */
static int sync_pull_behind(struct sync *s, struct err *e)
{
	struct transport_reply rep;
	struct answer_frames fr;
	struct checkpoint cp;
	struct frame f;
	int rc = -1;

	transport_reply_init(&rep);
	answer_frames_init(&fr, &rep.body, SYNC_SMALL_FRAME_MAX);
	if (transport_request(s->t, "GET", "/v1/checkpoint", NULL, 0,
			      TRANSPORT_IDEMPOTENT, &rep, e))
		goto cleanup;
	if (rep.status != 200) {
		answer_http_error(&rep, "checkpoint", e);
		goto cleanup;
	}
	answer_frames_init(&fr, &rep.body, SYNC_SMALL_FRAME_MAX);
	if (answer_frames_expect(&fr, FRAME_CHECKPOINT, "checkpoint", &f, e) ||
	    answer_checkpoint_open(f.payload, f.len, s->server_pk, s->origin,
				   &cp, e) ||
	    answer_frames_end(&fr, e))
		goto cleanup;
	if (cp.size < s->cp.size) {
		sync_fork(s, &cp, "the log shrank", e);
		goto cleanup;
	}
	rc = 0;
cleanup:
	answer_frames_release(&fr);
	transport_reply_release(&rep);
	return rc;
}

/* One ENTRY frame (copied into eb) and the PROOF that follows it: in
 * order, inside the checkpoint, included in it, then applied. */
static int sync_page_entry(struct sync *s, struct answer_frames *fr,
			   const struct checkpoint *cp, struct buf *eb,
			   uint64_t *last, struct sync_page *pg,
			   struct err *e)
{
	const uint8_t *entry;
	size_t elen;
	uint64_t index;
	uint8_t leaf[HASH_BYTES];
	struct frame f;
	struct proof p;

	if (answer_entry_split(eb->data, eb->len, &index, &entry, &elen, e))
		return -1;
	if (index < s->cursor || index >= cp->size ||
	    (*last != UINT64_MAX && index <= *last)) {
		err_set(e, ERR_VERIFY, "the server sent log entry %llu out of "
			"order", (unsigned long long)index);
		return -1;
	}
	if (answer_frames_expect(fr, FRAME_PROOF, "inclusion proof", &f, e))
		return -1;
	logentry_leaf_hash(entry, elen, leaf);
	if (proof_decode(f.payload, f.len, &p) != BS_OK ||
	    p.kind != PROOF_INCLUSION || p.first != index ||
	    p.second != cp->size ||
	    merkle_verify_inclusion(leaf, index, cp->size, &p.path,
				    cp->root) != BS_OK) {
		err_set(e, ERR_VERIFY,
			"log entry %llu is not proven to be in "
			"the server's checkpoint of %llu entries",
			(unsigned long long)index,
			(unsigned long long)cp->size);
		return -1;
	}
	if (sync_apply_entry(s, index, entry, elen, pg, e))
		return -1;
	*last = index;
	pg->pulled++;
	return 0;
}

/* Reads entries up to the CURSOR frame and checks the cursor moves on. */
static int sync_page_entries(struct sync *s, struct answer_frames *fr,
			     const struct checkpoint *cp, struct buf *eb,
			     struct sync_page *pg, uint64_t *cursor,
			     struct err *e)
{
	struct wire_reader r;
	struct frame f;
	uint64_t last = UINT64_MAX;
	int rc;

	for (;;) {
		if ((rc = answer_frames_next(fr, &f, e)) < 0)
			return -1;
		if (rc == 0 ||
		    (f.type != FRAME_ENTRY && f.type != FRAME_CURSOR))
			break;
		if (f.type == FRAME_CURSOR) {
			wire_reader_init(&r, f.payload, f.len);
			if (wire_get_varint(&r, cursor) || wire_expect_end(&r))
				break;
			if (*cursor > cp->size || *cursor < s->cursor ||
			    (last != UINT64_MAX && *cursor <= last) ||
			    (*cursor == s->cursor && *cursor < cp->size)) {
				err_set(e, ERR_VERIFY, "the server's pull "
					"cursor %llu makes no sense after %llu",
					(unsigned long long)*cursor,
					(unsigned long long)s->cursor);
				return -1;
			}
			return answer_frames_end(fr, e);
		}
		buf_reset(eb);
		buf_append(eb, f.payload, f.len);
		if (eb->status) {
			err_set(e, ERR_INVALID, "out of memory");
			return -1;
		}
		if (sync_page_entry(s, fr, cp, eb, &last, pg, e))
			return -1;
		buf_reset(eb); /* only a failing entry is kept as evidence */
	}
	err_set(e, ERR_VERIFY, "the server's pull answer lacks a valid cursor");
	return -1;
}

static int sync_page_begin(struct sync *s, struct sync_page *pg,
			   struct err *e)
{
	memset(pg, 0, sizeof *pg);
	pg->wall_ms = clock_wall_ms();
	if (replica_begin(s->r, e) ||
	    replica_setting_int(s->r, "hlc", &pg->clock_stored, 0, e))
		return -1;
	hlc_init(&pg->clock, SYNC_MAX_DRIFT_MS);
	hlc_restore(&pg->clock, (uint64_t)pg->clock_stored);
	return 0;
}

static int sync_page_commit(struct sync *s, const struct checkpoint *cp,
			    uint64_t cursor, struct sync_page *pg,
			    struct err *e)
{
	if (replica_setting_set_int(s->r, "cursor", (int64_t)cursor, e) ||
	    sync_store_checkpoint(s, cp, e) ||
	    (pg->clock.last != (uint64_t)pg->clock_stored &&
	     replica_setting_set_int(s->r, "hlc", (int64_t)pg->clock.last,
				     e)) ||
	    replica_commit(s->r, e))
		return -1;
	s->cp = *cp;
	s->cursor = cursor;
	s->sum->pulled += pg->pulled;
	s->sum->applied += pg->applied;
	s->sum->refused += pg->refused;
	s->sum->conflicts += pg->stats.conflicts;
	return 0;
}

/* The request for the page after `after` of a checkpoint of `known`
 * entries. */
static void sync_pull_target(uint64_t after, uint64_t known, char *out,
			     size_t n)
{
	snprintf(out, n, "/v1/pull?after=%" PRIu64 "&known=%" PRIu64
		 "&limit=%d", after, known, SYNC_PULL_LIMIT);
}

/* Runs on the prefetch thread (prefetch_next_fn): reads, without judging
 * anything, where the page in rep says the pull goes on (its cursor and
 * its checkpoint's size) and names that request. 0 when there is no next
 * page or the answer does not read (the page then fails its checks when
 * it is judged, and what was fetched after it is dropped). */
static int sync_next_target(void *arg, const struct transport_reply *rep,
			    char *out, size_t n)
{
	struct answer_frames fr;
	struct checkpoint cp;
	struct wire_reader r;
	struct frame f;
	struct err quiet;
	uint64_t after = 0;
	int more = 0;

	(void)arg;
	if (rep->status != 200)
		return 0;
	err_init(&quiet);
	answer_frames_init(&fr, &rep->body, SYNC_ENTRY_FRAME_MAX);
	if (answer_frames_expect(&fr, FRAME_CHECKPOINT, "checkpoint", &f,
				 &quiet) ||
	    checkpoint_decode(f.payload, f.len, &cp) != BS_OK)
		goto cleanup;
	while (answer_frames_next(&fr, &f, &quiet) == 1) {
		if (f.type != FRAME_CURSOR)
			continue;
		wire_reader_init(&r, f.payload, f.len);
		more = !wire_get_varint(&r, &after) && !wire_expect_end(&r) &&
		       after < cp.size;
		break;
	}
	if (more)
		sync_pull_target(after, cp.size, out, n);
cleanup:
	answer_frames_release(&fr);
	return more;
}

/* Verifies and commits the page in rep. *done when the cursor reached the
 * checkpoint; *again when the page must be asked for again (see
 * sync_pull_behind). Before judging the first page it starts `next`
 * fetching the pages after it: the server builds them and the link
 * carries them while this one is merged. */
static int sync_pull_page(struct sync *s, struct transport_reply *rep,
			  struct buf *eb, struct prefetch *next, int *done,
			  int *again, struct err *e)
{
	struct answer_frames fr;
	struct sync_page pg;
	struct checkpoint cp;
	uint8_t cpb[CHECKPOINT_SIGNED_MAX];
	char target[PREFETCH_TARGET_MAX];
	uint64_t cursor = 0;
	int rc = -1, open = 0;

	/* initialised first so that every path may release */
	answer_frames_init(&fr, &rep->body, SYNC_ENTRY_FRAME_MAX);
	buf_reset(eb);
	if (rep->status == 409 && !*again) {
		*again = 1;
		prefetch_release(next); /* the transport is ours again */
		rc = sync_pull_behind(s, e);
		goto cleanup;
	}
	if (rep->status == 409) {
		err_set(e, ERR_VERIFY, "the server does not accept the "
			"checkpoint of %llu entries this device verified "
			"before", (unsigned long long)s->cp.size);
		goto cleanup;
	}
	if (rep->status != 200) {
		answer_http_error(rep, "pull", e);
		goto cleanup;
	}
	/* if no thread starts, the pages are asked for one by one */
	if (!next->running &&
	    sync_next_target(NULL, rep, target, sizeof target))
		(void)prefetch_start(next, s->t, target,
				     TRANSPORT_SIGNED | TRANSPORT_IDEMPOTENT,
				     sync_next_target, NULL);
	if (sync_answer_checkpoint(s, &fr, &cp, e) ||
	    sync_page_begin(s, &pg, e))
		goto cleanup;
	open = 1;
	if (sync_page_entries(s, &fr, &cp, eb, &pg, &cursor, e) ||
	    sync_page_commit(s, &cp, cursor, &pg, e))
		goto cleanup;
	open = 0;
	*again = 0;
	*done = cursor >= cp.size;
	rc = 0;
cleanup:
	if (open) {
		replica_rollback(s->r);
		/* an entry that failed verification is kept with the
		 * checkpoint it was served under */
		if (e->kind == ERR_VERIFY && eb->len > 0)
			sync_evidence(s, "entry", e->msg, eb->data, eb->len,
				      cpb, answer_checkpoint_bytes(&cp, cpb));
	}
	answer_frames_release(&fr);
	return rc;
}

static int sync_pull(struct sync *s, struct err *e)
{
	struct transport_reply rep;
	struct prefetch next;
	struct buf eb;
	char target[PREFETCH_TARGET_MAX];
	int done = 0, again = 0, have, rc = -1;

	buf_init(&eb, SYNC_ENTRY_FRAME_MAX);
	transport_reply_init(&rep);
	prefetch_init(&next);
	while (!done) {
		sync_pull_target(s->cursor, s->cp.size, target, sizeof target);
		/* a page fetched ahead is used only if it is the one the
		 * committed cursor and checkpoint ask for now */
		if ((have = prefetch_take(&next, target, &rep, e)) < 0)
			goto cleanup;
		if (!have) {
			prefetch_release(&next);
			transport_reply_release(&rep);
			transport_reply_init(&rep);
			if (transport_request(s->t, "GET", target, NULL, 0,
					      TRANSPORT_SIGNED |
						      TRANSPORT_IDEMPOTENT,
					      &rep, e))
				goto cleanup;
		}
		if (sync_pull_page(s, &rep, &eb, &next, &done, &again, e))
			goto cleanup;
		if (s->progress)
			fprintf(stderr, "branchsync: pull: %llu log entries, "
				"%llu merged, at %llu of %llu\n",
				(unsigned long long)s->sum->pulled,
				(unsigned long long)s->sum->applied,
				(unsigned long long)s->cursor,
				(unsigned long long)s->cp.size);
	}
	rc = 0;
cleanup:
	prefetch_release(&next);
	transport_reply_release(&rep);
	buf_release(&eb);
	return rc;
}

/* ---- the whole sync ---- */

int sync_transport(struct replica *r, const struct identity *id,
		   struct transport **out, struct err *e)
{
	struct transport_options o;
	char *pin = replica_setting_text(r, "tls_pin");
	char *cacert = replica_setting_text(r, "cacert");
	int rc = -1;

	*out = NULL;
	memset(&o, 0, sizeof o);
	o.url = id->server_url;
	o.pin = pin && *pin ? pin : NULL;
	o.cacert = cacert && *cacert ? cacert : NULL;
	if (transport_new(&o, out, e))
		goto cleanup;
	if (id->key)
		transport_set_signer(*out, id->key->pk, id->key->sk);
	rc = 0;
cleanup:
	mem_free(pin);
	mem_free(cacert);
	return rc;
}

/* Reads what enroll stored: the server's key, the log's name, the last
 * verified checkpoint and the cursor. */
static int sync_load(struct sync *s, struct err *e)
{
	uint8_t *pk = NULL, *cpb = NULL;
	size_t pklen = 0, cplen = 0;
	char *origin = NULL;
	int64_t cursor = 0;
	int rc = -1;

	if (!s->id->role || !s->id->server_url) {
		err_set(e, ERR_INVALID, "this device is not enrolled; run "
			"'branchsync enroll' with a token from the district "
			"office first");
		return -1;
	}
	if (replica_setting_get(s->r, "server_pk", &pk, &pklen, e) ||
	    replica_setting_get(s->r, "checkpoint", &cpb, &cplen, e) ||
	    replica_setting_int(s->r, "cursor", &cursor, 0, e))
		goto cleanup;
	origin = replica_setting_text(s->r, "origin");
	if (!pk || pklen != SIGN_PUBLIC_BYTES || !cpb || !origin ||
	    strlen(origin) > CHECKPOINT_ORIGIN_MAX || cursor < 0) {
		err_set(e, ERR_INVALID, "the enrollment stored in %s is "
			"incomplete or damaged; restore the replica from a "
			"backup", s->r->path);
		goto cleanup;
	}
	memcpy(s->server_pk, pk, SIGN_PUBLIC_BYTES);
	strcpy(s->origin, origin);
	s->cursor = (uint64_t)cursor;
	if (answer_checkpoint_open(cpb, cplen, s->server_pk, s->origin,
				   &s->cp, e))
		goto cleanup;
	rc = 0;
cleanup:
	mem_free(pk);
	mem_free(cpb);
	mem_free(origin);
	return rc;
}

/* The server's last challenge, kept between syncs: on a 2G link the
 * round trip to ask for a fresh one costs more than the rest of a no-op
 * sync. A stale one is refused and replaced at the cost of one retry.
 * `challenge_bound` (1 or absent) says the server bound it to this
 * device, so the request may leave the device key out. */
static void sync_challenge_load(struct sync *s)
{
	uint8_t *c = NULL;
	size_t n = 0;
	int64_t bound = 0;
	struct err quiet;

	err_init(&quiet);
	if (replica_setting_get(s->r, "challenge", &c, &n, &quiet) == 0 &&
	    c && n == REQUEST_CHALLENGE_BYTES) {
		if (replica_setting_int(s->r, "challenge_bound", &bound, 0,
					&quiet) != 0)
			bound = 0;
		transport_challenge_set(s->t, c, bound == 1);
	}
	mem_free(c);
}

static void sync_challenge_save(struct sync *s)
{
	uint8_t c[REQUEST_CHALLENGE_BYTES];
	int bound = 0;
	struct err quiet;

	err_init(&quiet);
	/* not one transaction: a crash between these writes leaves the old
	 * challenge with a wrong flag, which costs at most one retry (the
	 * long form is taken with a bound challenge; the short form with an
	 * unbound one is refused and retried) */
	replica_exec(s->r->db, "DELETE FROM bs_settings WHERE"
		     " key='challenge_bound'", &quiet);
	if (transport_challenge_get(s->t, c, &bound)) {
		if (bound)
			replica_setting_set_int(s->r, "challenge_bound", 1,
						&quiet);
		replica_setting_set(s->r, "challenge", c, sizeof c, &quiet);
	} else {
		replica_exec(s->r->db, "DELETE FROM bs_settings WHERE"
			     " key='challenge'", &quiet);
	}
}

int sync_run(struct replica *r, struct identity *id,
	     const struct sync_options *o, struct sync_summary *sum,
	     struct err *e)
{
	struct sync s;
	int rc = -1;

	memset(&s, 0, sizeof s);
	memset(sum, 0, sizeof *sum);
	s.r = r;
	s.id = id;
	s.sum = sum;
	s.progress = o->progress;
	if (sync_load(&s, e) || sync_transport(r, id, &s.t, e) ||
	    merge_new(r->db, &s.merge, e))
		goto cleanup;
	sync_challenge_load(&s);
	s.ahead = s.cursor;
	if (sync_push(&s, e) || (!s.caught_up && sync_pull(&s, e)) ||
	    replica_setting_set_int(r, "last_sync", (int64_t)clock_wall_ms(),
				    e))
		goto cleanup;
	rc = 0;
cleanup:
	if (s.t)
		sync_challenge_save(&s);
	if (s.t) {
		sum->bytes_sent = transport_bytes_sent(s.t);
		sum->bytes_received = transport_bytes_received(s.t);
		sum->requests = transport_requests(s.t);
	}
	sum->checkpoint_size = s.cp.size;
	memcpy(sum->checkpoint_root, s.cp.root, HASH_BYTES);
	sum->cursor = s.cursor;
	merge_free(s.merge);
	transport_free(s.t);
	return rc;
}
