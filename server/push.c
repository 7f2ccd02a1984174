/* push.c - POST /v1/push (docs/API.md): splits and expands the pushed
 * sets, verifies them in the request's thread, has the writer commit them
 * and answers with verdicts or one signed push receipt. */
#include "push.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "answer.h"
#include "cscompact.h"
#include "frame.h"
#include "mem.h"
#include "pushreceipt.h"

#define PUSH_MAX_SETS 1000

/* Encodes one verdict (with a receipt against cp when logged). */
static int put_verdict(struct api *a, struct buf *b,
		       const struct ingest_outcome *o,
		       const struct checkpoint *cp)
{
	struct verdict v;
	struct receipt rc;
	struct buf rb, vb;
	int ok = -1;

	memset(&v, 0, sizeof v);
	v.status = o->status;
	memcpy(v.changeset_id, o->id, HASH_BYTES);
	snprintf(v.reason, sizeof v.reason, "%s", o->reason);
	buf_init(&rb, RECEIPT_SIGNED_MAX);
	buf_init(&vb, RECEIPT_SIGNED_MAX + 512);
	if (o->logged) {
		memset(&rc, 0, sizeof rc);
		memcpy(rc.changeset_id, o->id, HASH_BYTES);
		rc.index = o->index;
		rc.checkpoint = *cp;
		if (receipt_sign(&rc, a->s->key->sk, &rb) != BS_OK)
			goto cleanup;
		v.receipt = rb.data;
		v.receipt_len = rb.len;
	}
	if (verdict_encode(&v, &vb) != BS_OK)
		goto cleanup;
	frame_put(b, FRAME_VERDICT, vb.data, vb.len);
	ok = 0;
cleanup:
	buf_release(&rb);
	buf_release(&vb);
	return ok;
}

_Static_assert(PUSH_MAX_SETS <= PUSHRECEIPT_MAX_SETS,
	       "a push receipt must be able to answer the largest push");

/* The answer's one signed receipt for the whole push (FORMAT.md, "Push
 * receipts"), instead of a VERDICT frame with a receipt for each set; in
 * its wire form (without the ids hash the pusher knows) when `wire`. */
static int put_push_receipt(struct api *a, struct buf *b,
			    const struct ingest_outcome *outs, size_t n,
			    const struct checkpoint *cp, int wire)
{
	struct pushreceipt pr;
	uint8_t (*ids)[HASH_BYTES] = NULL;
	struct buf rb, wb;
	size_t i;
	int rc = -1;

	memset(&pr, 0, sizeof pr);
	buf_init(&rb, PUSHRECEIPT_SIGNED_MAX);
	buf_init(&wb, PUSHRECEIPT_WIRE_MAX);
	pr.items = mem_calloc(n ? n : 1, sizeof *pr.items);
	ids = mem_calloc(n ? n : 1, sizeof *ids);
	if (!pr.items || !ids)
		goto cleanup;
	pr.checkpoint = *cp;
	pr.count = n;
	for (i = 0; i < n; i++) {
		struct pushreceipt_item *it = &pr.items[i];

		memcpy(ids[i], outs[i].id, HASH_BYTES);
		it->status = outs[i].status;
		it->logged = outs[i].logged;
		it->index = outs[i].index;
		if (it->status == VERDICT_REFUSED)
			snprintf(it->reason, sizeof it->reason, "%s",
				 outs[i].reason[0] ? outs[i].reason
						   : "refused");
	}
	pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])ids, n,
			     pr.ids_hash);
	if (pushreceipt_sign(&pr, a->s->key->sk, &rb) != BS_OK ||
	    (wire && pushreceipt_wire_pack(rb.data, rb.len, &wb) != BS_OK))
		goto cleanup;
	if (wire)
		frame_put(b, FRAME_PUSHRECEIPT, wb.data, wb.len);
	else
		frame_put(b, FRAME_PUSHRECEIPT, rb.data, rb.len);
	rc = 0;
cleanup:
	mem_free(pr.items);
	mem_free(ids);
	buf_release(&rb);
	buf_release(&wb);
	return rc;
}

/* Splits a push body into its change sets (pointers into body), checking
 * the frame stream whole before anything is ingested. */
static int split_push(const uint8_t *body, size_t len, const uint8_t **sets,
		      size_t *lens, uint8_t *compact, size_t *n,
		      struct http_response *resp)
{
	struct frame_reader fr;
	struct frame f;
	size_t used, off = 0;
	enum bs_status st = BS_OK;
	int rc = -1;

	*n = 0;
	frame_reader_init(&fr, CHANGESET_MAX_ENCODED);
	for (;;) {
		/* feed stops at the end of each frame, so a frame's payload
		 * is the f.len bytes of body just before off */
		while (frame_reader_next(&fr, &f)) {
			if (f.type != FRAME_CHANGESET &&
			    f.type != FRAME_CHANGESET_COMPACT) {
				answer_fail(resp, 400,
					    "a push carries only change "
					    "set frames");
				goto cleanup;
			}
			if (*n == PUSH_MAX_SETS) {
				answer_fail(resp, 413,
					    "at most %d change sets per push",
					    PUSH_MAX_SETS);
				goto cleanup;
			}
			sets[*n] = body + off - f.len;
			lens[*n] = f.len;
			compact[*n] = f.type == FRAME_CHANGESET_COMPACT;
			(*n)++;
		}
		if (off == len)
			break;
		st = frame_reader_feed(&fr, body + off, len - off, &used);
		if (st)
			break;
		off += used;
	}
	if (st == BS_OK)
		st = frame_reader_finish(&fr);
	if (st) {
		answer_fail(resp, 400, "malformed push body: %s",
			    bs_status_str(st));
		goto cleanup;
	}
	if (*n == 0) {
		answer_fail(resp, 400,
			    "a push carries at least one change set");
		goto cleanup;
	}
	rc = 0;
cleanup:
	frame_reader_release(&fr);
	return rc;
}

/* The predecessor of compact set i of seq `seq` by the caller: zeros for
 * seq 1, the set just before it in this push if that is the caller's
 * seq - 1, else the head of the caller's chain if that is seq - 1, else
 * the caller's accepted seq - 1 in the log (a push sent again after its
 * answer was lost). 0 if it is none of these (the client must send the
 * set whole), -1 on a database error. Needs a read transaction. */
static int compact_prev(struct api *a, const struct api_caller *who,
			uint64_t seq, const struct changeset *before,
			int have_before, uint8_t prev[HASH_BYTES],
			struct err *e)
{
	memset(prev, 0, HASH_BYTES);
	if (seq == 1)
		return 1;
	if (have_before &&
	    memcmp(before->env.author, who->key, SIGN_PUBLIC_BYTES) == 0 &&
	    before->env.seq == seq - 1) {
		memcpy(prev, before->id, HASH_BYTES);
		return 1;
	}
	if (who->dev.last_seq >= 1 && (uint64_t)who->dev.last_seq == seq - 1) {
		memcpy(prev, who->dev.head, HASH_BYTES);
		return 1;
	}
	return store_chain_id(a->s, who->key, seq - 1, prev, e);
}

/* Turns the compact sets of a push (protocol/FORMAT.md, "Compact change
 * sets") into the full signed bytes, into `full` (owned by the caller),
 * and points sets[i] at them. Everything after this sees full sets only.
 * A compact set whose predecessor the server cannot name gets 409: the
 * whole push is refused, nothing logged, and the client sends it again
 * with whole sets. */
static int expand_push(struct api *a, const struct api_caller *who,
		       const uint8_t **sets, size_t *lens,
		       const uint8_t *compact, size_t n, struct buf *full,
		       struct http_response *resp)
{
	size_t *off = NULL, i;
	struct changeset before;
	uint8_t prev[HASH_BYTES];
	uint64_t seq;
	int have_before = 0, named, rc = -1;
	enum bs_status st;
	struct err e;

	if (!(off = mem_calloc(n ? n : 1, sizeof *off))) {
		answer_fail(resp, 500, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!compact[i]) {
			have_before = changeset_decode(sets[i], lens[i],
						       &before) == BS_OK;
			continue;
		}
		if ((st = cscompact_seq(sets[i], lens[i], &seq)) != BS_OK) {
			answer_fail(resp, 400,
				    "compact change set %zu is malformed: "
				    "%s",
				    i + 1, bs_status_str(st));
			goto cleanup;
		}
		err_init(&e);
		named = compact_prev(a, who, seq, &before, have_before, prev,
				     &e);
		if (named < 0) {
			answer_fail(resp, 500, "%s", e.msg);
			goto cleanup;
		}
		if (!named) {
			answer_fail(resp, 409,
				    "compact change set %zu (sequence %" PRIu64
				    ") does not follow this device's last "
				    "logged one; send it whole",
				    i + 1, seq);
			goto cleanup;
		}
		off[i] = full->len;
		if ((st = cscompact_expand(sets[i], lens[i], who->key, prev,
					   full)) != BS_OK) {
			answer_fail(resp, st == BS_ELIMIT ? 413 : 400,
				    "compact change set %zu is malformed: %s",
				    i + 1, bs_status_str(st));
			goto cleanup;
		}
		lens[i] = full->len - off[i];
		/* decoded in place for the next one's predecessor; the
		 * pointers are fixed below, once `full` stops moving */
		have_before = changeset_decode(full->data + off[i], lens[i],
					       &before) == BS_OK;
	}
	for (i = 0; i < n; i++)
		if (compact[i])
			sets[i] = full->data + off[i];
	rc = 0;
cleanup:
	mem_free(off);
	return rc;
}

/* A compact set whose expansion does not verify was expanded with a
 * predecessor other than the one its author signed (our chain head for
 * the device is not what its outbox says: a restored backup, an
 * equivocation). Sent whole it gets the verdict it deserves (a fork, a
 * chain refusal), so ask for that: 409, nothing logged. */
static int compact_unverified(const uint8_t *compact,
			      const struct ingest_item *items, size_t n,
			      struct http_response *resp)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (compact[i] && !items[i].sig_ok) {
			answer_fail(resp, 409,
				    "compact change set %zu does not verify"
				    " as this server expands it; send it whole",
				    i + 1);
			return -1;
		}
	}
	return 0;
}

/* The push answer's last frame when the device said which checkpoint it
 * holds: the consistency proof from it to cp, read in a read transaction
 * of its own (the push was committed by the writer). */
static int put_push_proof(struct api *a, struct buf *b, uint64_t known,
			  const struct checkpoint *cp, struct err *e)
{
	struct merkle_path path;
	int rc;

	if (known == 0 || known >= cp->size)
		return 0;
	if (api_read_begin(a, 1, e))
		return -1;
	rc = srvlog_consistency(a->log, known, cp->size, &path, e);
	api_read_end(a);
	if (rc)
		return -1;
	answer_proof_frame(b, PROOF_CONSISTENCY, known, cp->size, &path);
	return 0;
}

/* The push's form of answer from ?receipt= (docs/API.md). */
enum push_form {
	PUSH_FORM_BAD = -1,
	PUSH_FORM_EACH,   /* a VERDICT frame each */
	PUSH_FORM_PUSH,   /* one push receipt */
	PUSH_FORM_WIRE,   /* one push receipt in its wire form */
};

static enum push_form push_answer_form(const struct http_request *req)
{
	const char *v = http_request_arg(req, "receipt");

	if (!v || strcmp(v, "each") == 0)
		return PUSH_FORM_EACH;
	if (strcmp(v, "push") == 0)
		return PUSH_FORM_PUSH;
	return strcmp(v, "wire") == 0 ? PUSH_FORM_WIRE : PUSH_FORM_BAD;
}

/* The verdicts and the checkpoint of a committed push, in the form asked
 * for. */
static int put_push_answer(struct api *a, struct buf *b, enum push_form form,
			   const struct ingest_outcome *outs, size_t n,
			   const struct checkpoint *cp)
{
	size_t i;

	if (form != PUSH_FORM_EACH)
		return put_push_receipt(a, b, outs, n, cp,
					form == PUSH_FORM_WIRE);
	for (i = 0; i < n; i++)
		if (put_verdict(a, b, &outs[i], cp))
			return -1;
	answer_checkpoint_frame(b, cp);
	return 0;
}

/* The sets are decoded and their signatures verified here, in the
 * request's thread and outside any lock; only their verdicts wait for the
 * writer, in a group with the pushes that came meanwhile. Compact sets
 * are expanded first, against the device's chain as authentication read
 * it. */
void push_post(struct api *a, const struct http_request *req,
	       struct http_response *resp, struct api_caller *who)
{
	struct ingest_outcome *outs = NULL;
	struct ingest_item *items = NULL;
	const uint8_t **sets = NULL;
	size_t *lens = NULL;
	uint8_t *compact = NULL;
	struct checkpoint cp;
	struct buf inflated, b, full;
	const uint8_t *body;
	size_t len, n = 0, i;
	uint64_t known;
	enum push_form form = push_answer_form(req);
	struct err e;

	err_init(&e);
	buf_init(&inflated, ANSWER_MAX_BODY);
	buf_init(&b, ANSWER_MAX_BODY);
	buf_init(&full,
		 ANSWER_MAX_BODY + PUSH_MAX_SETS * CHANGESET_ENVELOPE_MAX);
	if (answer_arg_u64(req, "known", 0, &known) || form == PUSH_FORM_BAD) {
		answer_fail(resp, 400,
			    "known must be a decimal number, receipt "
			    "'wire', 'push' or 'each'");
		goto cleanup;
	}
	if (api_role_allowed(who, resp, 1, 1, 0) ||
	    answer_post_body(req, resp, &inflated, &body, &len))
		goto cleanup;
	sets = mem_calloc(PUSH_MAX_SETS, sizeof *sets);
	lens = mem_calloc(PUSH_MAX_SETS, sizeof *lens);
	compact = mem_calloc(PUSH_MAX_SETS, 1);
	if (!sets || !lens || !compact) {
		answer_fail(resp, 500, "out of memory");
		goto cleanup;
	}
	/* compact sets are expanded in the read transaction that
	 * authenticated the push; the writer's queue is waited on without */
	if (split_push(body, len, sets, lens, compact, &n, resp) ||
	    expand_push(a, who, sets, lens, compact, n, &full, resp))
		goto cleanup;
	api_read_end(a);
	/* as many as there are: hundreds of pushes at once each zeroing room
	 * for PUSH_MAX_SETS would be a megabyte apiece */
	outs = mem_calloc(n ? n : 1, sizeof *outs);
	items = mem_calloc(n ? n : 1, sizeof *items);
	if (!outs || !items) {
		answer_fail(resp, 500, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++)
		ingest_item_init(&items[i], sets[i], lens[i]);
	/* a few sets: the other cores serve other requests meanwhile */
	ingest_prepare(items, n, n >= 8 ? 0 : 1);
	if (compact_unverified(compact, items, n, resp))
		goto cleanup;
	err_init(&e);
	if (api_commit_push(a, items, n, outs, &cp, &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	frame_stream_begin(&b);
	if (put_push_answer(a, &b, form, outs, n, &cp)) {
		answer_fail(resp, 500, "cannot sign the receipts");
		goto cleanup;
	}
	/* the device's last checkpoint to this one, so that a sync needs no
	 * separate consistency request */
	if (put_push_proof(a, &b, known, &cp, &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	answer_send_frames(req, resp, &b);
cleanup:
	api_read_end(a);
	mem_free(outs);
	mem_free(sets);
	mem_free(lens);
	mem_free(items);
	mem_free(compact);
	buf_release(&inflated);
	buf_release(&full);
	buf_release(&b);
}
