/* sync_pull.c - the pull half of a sync: the log page by page, each entry
 * proven in a verified checkpoint and its author's right to write checked
 * before it is merged, one transaction a page (docs/SYNC.md). */
#include "sync_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "answer.h"
#include "bundle.h"
#include "changeset.h"
#include "clock.h"
#include "hlc.h"
#include "logentry.h"
#include "merge.h"
#include "merkle.h"
#include "proof.h"
#include "prefetch.h"
#include "wire.h"

/* An ENTRY frame: varint index, then a log entry. */
#define SYNC_ENTRY_FRAME_MAX (WIRE_VARINT_MAX + LOGENTRY_MAX)

/* What a pull page did, counted into the summary once it commits. */
struct syncpull_page {
	uint64_t pulled, applied, refused;
	struct merge_stats stats;
	struct hlc clock;
	int64_t clock_stored;
	uint64_t wall_ms;
};

/* ---- pull: judging entries ---- */

/* A change set may be merged only if its author was enrolled before it
 * was logged, not revoked by then, and its role allows the scope. */
static int syncpull_may_write(struct sync *s, const struct changeset *cs,
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

static int syncpull_author_revoked(struct sync *s, const struct revocation *rv,
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
static int syncpull_mark_refused(struct sync *s, const struct changeset *cs,
				 const struct logentry *le,
				 struct syncpull_page *pg, struct err *e)
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

static int syncpull_apply_changeset(struct sync *s, uint64_t index,
				    const struct logentry *le,
				    struct syncpull_page *pg, struct err *e)
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
		       ? syncpull_mark_refused(s, &cs, le, pg, e) : 0;
	if (syncpull_may_write(s, &cs, index, e))
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

static int syncpull_apply_entry(struct sync *s, uint64_t index,
				const uint8_t *p, size_t len,
				struct syncpull_page *pg, struct err *e)
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
		return syncpull_author_revoked(s, &rv, index, e);
	case LOGENTRY_CHANGESET:
		return syncpull_apply_changeset(s, index, &le, pg, e);
	}
	err_set(e, ERR_VERIFY, "log entry %llu is not a valid enrollment or "
		"revocation signed by the server", (unsigned long long)index);
	return -1;
}

/* ---- pull: pages ---- */

/* The server said it has fewer entries than our checkpoint: fetch its
 * signed checkpoint; a smaller one proves the log shrank. Returns 0 to try
 * the page again (the server grew meanwhile), -1 on failure. */
static int syncpull_behind(struct sync *s, struct err *e)
{
	struct transport_reply rep;
	struct answer_frames fr;
	struct checkpoint cp;
	struct frame f;
	int rc = -1;

	transport_reply_init(&rep);
	answer_frames_init(&fr, &rep.body, SYNC_SMALL_FRAME_MAX);
	if (answer_get(s->t, "/v1/checkpoint", 0, "checkpoint", &rep, e))
		goto cleanup;
	answer_frames_init(&fr, &rep.body, SYNC_SMALL_FRAME_MAX);
	if (answer_frames_expect(&fr, FRAME_CHECKPOINT, "checkpoint", &f, e) ||
	    answer_checkpoint_open(f.payload, f.len, s->server_pk, s->origin,
				   &cp, e) ||
	    answer_frames_end(&fr, e))
		goto cleanup;
	if (cp.size < s->cp.size) {
		synccp_fork(s, &cp, "the log shrank", e);
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
static int syncpull_page_entry(struct sync *s, struct answer_frames *fr,
			       const struct checkpoint *cp, struct buf *eb,
			       uint64_t *last, struct syncpull_page *pg,
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
	if (syncpull_apply_entry(s, index, entry, elen, pg, e))
		return -1;
	*last = index;
	pg->pulled++;
	return 0;
}

/* Reads entries up to the CURSOR frame and checks the cursor moves on. */
static int syncpull_page_entries(struct sync *s, struct answer_frames *fr,
				 const struct checkpoint *cp, struct buf *eb,
				 struct syncpull_page *pg, uint64_t *cursor,
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
		if (syncpull_page_entry(s, fr, cp, eb, &last, pg, e))
			return -1;
		buf_reset(eb); /* only a failing entry is kept as evidence */
	}
	err_set(e, ERR_VERIFY, "the server's pull answer lacks a valid cursor");
	return -1;
}

static int syncpull_page_begin(struct sync *s, struct syncpull_page *pg,
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

static int syncpull_page_commit(struct sync *s, const struct checkpoint *cp,
				uint64_t cursor, struct syncpull_page *pg,
				struct err *e)
{
	if (replica_setting_set_int(s->r, "cursor", (int64_t)cursor, e) ||
	    synccp_store_checkpoint(s, cp, e) ||
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
static void syncpull_target(uint64_t after, uint64_t known, char *out,
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
static int syncpull_next_target(void *arg, const struct transport_reply *rep,
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
		syncpull_target(after, cp.size, out, n);
cleanup:
	answer_frames_release(&fr);
	return more;
}

/* Verifies and commits the page in rep. *done when the cursor reached the
 * checkpoint; *again when the page must be asked for again (see
 * syncpull_behind). Before judging the first page it starts `next`
 * fetching the pages after it: the server builds them and the link
 * carries them while this one is merged. */
static int syncpull_one_page(struct sync *s, struct transport_reply *rep,
			     struct buf *eb, struct prefetch *next, int *done,
			     int *again, struct err *e)
{
	struct answer_frames fr;
	struct syncpull_page pg;
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
		rc = syncpull_behind(s, e);
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
	    syncpull_next_target(NULL, rep, target, sizeof target))
		(void)prefetch_start(next, s->t, target,
				     TRANSPORT_SIGNED | TRANSPORT_IDEMPOTENT,
				     syncpull_next_target, NULL);
	if (synccp_answer_checkpoint(s, &fr, &cp, e) ||
	    syncpull_page_begin(s, &pg, e))
		goto cleanup;
	open = 1;
	if (syncpull_page_entries(s, &fr, &cp, eb, &pg, &cursor, e) ||
	    syncpull_page_commit(s, &cp, cursor, &pg, e))
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

int syncpull_run(struct sync *s, struct err *e)
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
		syncpull_target(s->cursor, s->cp.size, target, sizeof target);
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
		if (syncpull_one_page(s, &rep, &eb, &next, &done, &again, e))
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
