/* cmd_audit.c - `branchsync audit`: feeds the verifier (audit.c) the whole
 * log, from a file written by `branchsyncd export-log` or from the server
 * with an auditor's enrollment, and prints what it established and every
 * failure (docs/AUDIT.md). Not for the verification rules themselves. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "answer.h"
#include "audit.h"
#include "clock.h"
#include "commands.h"
#include "digest.h"
#include "hlc.h"
#include "identity.h"
#include "logentry.h"
#include "mem.h"
#include "proof.h"
#include "replica.h"
#include "sync.h"
#include "transport.h"
#include "wire.h"

/* An ENTRY frame: varint index, then a log entry. */
#define AUDIT_ENTRY_FRAME_MAX (WIRE_VARINT_MAX + LOGENTRY_MAX)
/* Entries asked for per page of GET /v1/log (the server's maximum). */
#define AUDIT_PAGE_LIMIT 2000
/* Bytes read from the export file at a time. */
#define AUDIT_READ_CHUNK (1u << 20)
/* A progress line per this many entries, on a terminal only. */
#define AUDIT_PROGRESS_EVERY 20000
/* A ROWHASH frame: three blobs and a hash. */
#define AUDIT_ROWHASH_FRAME_MAX                                                \
	(3 * (WIRE_VARINT_MAX + DIGEST_ROW_ID_MAX) + HASH_BYTES)
/* Small answers: a checkpoint, a digest or a proof, and END. */
#define AUDIT_SMALL_FRAME_MAX 8192

static const char audit_usage[] =
    "usage: branchsync audit --log FILE [--server-key HEX] [--json]\n"
    "                        [--record TABLE ID]\n"
    "       branchsync audit --db FILE [--json] [--record TABLE ID]\n\n"
    "Verifies the district server's whole log independently of the "
    "server: every\nentry is present and in order, the Merkle root matches "
    "the signed checkpoint,\nevery enrollment, revocation and change set "
    "signature verifies, every device's\nchain is contiguous without "
    "forks, every accepted change set's author was\nenrolled, unrevoked "
    "and in scope, every refusal is true, and replaying the log\nfrom "
    "empty gives exactly the records the server signed a digest of.\n\n"
    "  --log FILE         a file written by 'branchsyncd export-log'; its "
    "server\n"
    "                     key is printed: compare it with the one the "
    "district\n                     office published\n"
    "  --server-key HEX   with --log: require this server key\n"
    "  --db FILE          an auditor's replica (or $BRANCHSYNC_DB): the "
    "log is\n                     fetched from its server, and its "
    "checkpoint must extend\n                     the one this auditor "
    "verified last time\n"
    "  --json             print the result as one JSON object on stdout\n"
    "  --record TABLE ID  also show every change set that wrote this "
    "record\n"
    "  --threads N        threads verifying signatures (default 2)\n\n"
    "Exit codes: 0 everything verified, 1 usage, 2 unreadable file or "
    "replica,\n3 server unreachable, 4 verification failed.\n";

struct cmd_audit {
	const char *log, *db, *server_key, *record_table, *record_id;
	int json;
	unsigned threads;
	/* what the source says about itself */
	uint8_t server_pk[SIGN_PUBLIC_BYTES];
	char origin[CHECKPOINT_ORIGIN_MAX + 1];
	char source[TRANSPORT_URL_MAX + 16];
	struct audit *a;
	/* --db: the checkpoint verified before, and its fate */
	int have_old;
	struct checkpoint old;
	int forked, stored;
	/* progress on a terminal */
	int progress;
	uint64_t fed;
};

/* Feeds one entry, telling a person at a terminal how far it got. */
static int cmd_audit_feed(struct cmd_audit *c, uint64_t index,
			  const uint8_t *entry, size_t len, struct err *e)
{
	if (c->progress && ++c->fed % AUDIT_PROGRESS_EVERY == 0)
		fprintf(stderr, "branchsync: audit: %llu entries read\n",
			(unsigned long long)c->fed);
	return audit_entry(c->a, index, entry, len, e);
}

static int cmd_audit_hex(const char *hex, uint8_t *out, size_t n)
{
	size_t got = 0;

	return strlen(hex) == 2 * n &&
	       sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, NULL) == 0 &&
	       got == n;
}

/* ---- --log FILE ---- */

/* META: server key (32 bytes) || blob(origin). */
static int cmd_audit_meta(struct cmd_audit *c, const struct frame *f,
			  struct err *e)
{
	struct wire_reader r;
	const uint8_t *o;
	size_t n;
	uint8_t want[SIGN_PUBLIC_BYTES];
	char hex[2 * SIGN_PUBLIC_BYTES + 1];
	struct audit_options ao = {c->record_table, c->record_id, c->threads};

	wire_reader_init(&r, f->payload, f->len);
	if (f->type != FRAME_META ||
	    wire_get_fixed(&r, c->server_pk, SIGN_PUBLIC_BYTES) ||
	    wire_get_blob(&r, CHECKPOINT_ORIGIN_MAX, &o, &n) ||
	    wire_expect_end(&r) || n == 0 || memchr(o, 0, n)) {
		err_set(e, ERR_INVALID,
			"%s is not a log export: it does not "
			"begin with the server's key and log name",
			c->log);
		return -1;
	}
	memcpy(c->origin, o, n);
	c->origin[n] = '\0';
	if (c->server_key &&
	    (!cmd_audit_hex(c->server_key, want, SIGN_PUBLIC_BYTES) ||
	     memcmp(want, c->server_pk, SIGN_PUBLIC_BYTES) != 0)) {
		sodium_bin2hex(hex, sizeof hex, c->server_pk,
			       SIGN_PUBLIC_BYTES);
		err_set(e, ERR_VERIFY,
			"%s is signed by server key %s, not by "
			"the one given with --server-key",
			c->log, hex);
		return -1;
	}
	return audit_new(c->server_pk, c->origin, &ao, &c->a, e);
}

static int cmd_audit_frame(struct cmd_audit *c, const struct frame *f,
			   uint64_t at, struct err *e)
{
	const uint8_t *entry;
	size_t elen;
	uint64_t index;
	struct err why;

	if (!c->a)
		return cmd_audit_meta(c, f, e);
	switch (f->type) {
	case FRAME_ENTRY:
		err_init(&why);
		if (answer_entry_split(f->payload, f->len, &index, &entry,
				       &elen, &why)) {
			audit_fail(c->a, -1, NULL,
				   "the ENTRY frame at byte "
				   "%llu has no valid log index",
				   (unsigned long long)at);
			return 0;
		}
		return cmd_audit_feed(c, index, entry, elen, e);
	case FRAME_CHECKPOINT:
		audit_checkpoint(c->a, f->payload, f->len);
		return 0;
	case FRAME_DIGEST:
		audit_digest(c->a, f->payload, f->len);
		return 0;
	case FRAME_ROWHASH:
		audit_row_hash(c->a, f->payload, f->len);
		return 0;
	default:
		audit_fail(c->a, -1, NULL,
			   "the export holds a frame of type %u "
			   "at byte %llu, which an export never holds",
			   f->type, (unsigned long long)at);
		return 0;
	}
}

/* Streams the export through the verifier, one frame at a time. */
static int cmd_audit_file(struct cmd_audit *c, struct err *e)
{
	struct frame_reader fr;
	struct frame f;
	uint8_t *chunk = mem_alloc(AUDIT_READ_CHUNK);
	FILE *in = fopen(c->log, "rb");
	enum bs_status st = BS_OK;
	uint64_t at = 0;
	size_t n, off, used;
	int rc = -1;

	frame_reader_init(&fr, AUDIT_ENTRY_FRAME_MAX);
	snprintf(c->source, sizeof c->source, "%s", c->log);
	if (!chunk) {
		err_set(e, ERR_INVALID, "out of memory");
		goto cleanup;
	}
	if (!in) {
		err_set(e, ERR_INVALID, "cannot open %s; check the path",
			c->log);
		goto cleanup;
	}
	while (st == BS_OK && (n = fread(chunk, 1, AUDIT_READ_CHUNK, in)) > 0) {
		for (off = 0; off < n && st == BS_OK;) {
			at = fr.consumed;
			st =
			    frame_reader_feed(&fr, chunk + off, n - off, &used);
			off += used;
			while (st == BS_OK && frame_reader_next(&fr, &f)) {
				if (cmd_audit_frame(c, &f, at, e))
					goto cleanup;
				at = fr.consumed;
			}
		}
	}
	if (ferror(in)) {
		err_set(e, ERR_INVALID, "cannot read %s", c->log);
		goto cleanup;
	}
	if (st == BS_OK)
		st = frame_reader_finish(&fr);
	if (st && !c->a) {
		err_set(e, ERR_INVALID,
			"%s is not a log export (%s at byte "
			"%llu)",
			c->log, bs_status_str(st),
			(unsigned long long)fr.consumed);
		goto cleanup;
	}
	if (st)
		audit_fail(c->a, -1, NULL,
			   "the export is damaged at byte %llu "
			   "(%s): what follows was not read",
			   (unsigned long long)fr.consumed, bs_status_str(st));
	rc = audit_finish(c->a, e) || audit_rows_judge(c->a, e) ? -1 : 0;
cleanup:
	if (in)
		fclose(in);
	mem_free(chunk);
	frame_reader_release(&fr);
	return rc;
}

/* ---- --db FILE: the log from the server ---- */

/* Keeps evidence of a fork in the auditor's replica (its own
 * transaction). A failure to keep it is a warning. */
static void cmd_audit_evidence(struct replica *r, const char *detail,
			       const struct checkpoint *a,
			       const struct checkpoint *b)
{
	uint8_t ab[CHECKPOINT_SIGNED_MAX], bb[CHECKPOINT_SIGNED_MAX];
	size_t alen = answer_checkpoint_bytes(a, ab);
	size_t blen = answer_checkpoint_bytes(b, bb);
	sqlite3_stmt *st = NULL;
	int ok;

	ok =
	    sqlite3_prepare_v2(r->db,
			       "INSERT INTO bs_evidence(kind, detail,"
			       " a, b, time_ms) VALUES('fork', ?1, ?2, ?3, ?4)",
			       -1, &st, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_text(st, 1, detail, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, ab, (int)alen, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, bb, (int)blen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (int64_t)clock_wall_ms());
		ok = sqlite3_step(st) == SQLITE_DONE;
	}
	sqlite3_finalize(st);
	if (!ok)
		cli_warn("could not keep the evidence in the replica: %s",
			 sqlite3_errmsg(r->db));
}

/* Reads what enrollment stored: the server's key, the log's name and the
 * checkpoint verified last. */
static int cmd_audit_load(struct cmd_audit *c, struct replica *r, struct err *e)
{
	uint8_t *pk = NULL, *cpb = NULL;
	size_t pklen = 0, cplen = 0;
	char *origin = NULL;
	int rc = -1;

	if (replica_setting_get(r, "server_pk", &pk, &pklen, e) ||
	    replica_setting_get(r, "checkpoint", &cpb, &cplen, e))
		goto cleanup;
	origin = replica_setting_text(r, "origin");
	if (!pk || pklen != SIGN_PUBLIC_BYTES || !origin ||
	    strlen(origin) > CHECKPOINT_ORIGIN_MAX) {
		err_set(e, ERR_INVALID,
			"the enrollment stored in %s is "
			"incomplete or damaged; restore the replica from a "
			"backup",
			r->path);
		goto cleanup;
	}
	memcpy(c->server_pk, pk, SIGN_PUBLIC_BYTES);
	strcpy(c->origin, origin);
	if (cpb) {
		if (answer_checkpoint_open(cpb, cplen, c->server_pk, c->origin,
					   &c->old, e)) {
			err_set(e, ERR_INVALID,
				"the checkpoint stored in %s "
				"does not verify; restore the replica from a "
				"backup",
				r->path);
			goto cleanup;
		}
		c->have_old = 1;
	}
	rc = 0;
cleanup:
	mem_free(pk);
	mem_free(cpb);
	mem_free(origin);
	return rc;
}

/* GET /v1/digest: the signed digest and the checkpoint of the same
 * moment. The checkpoint must verify: it says how much log to fetch. */
static int cmd_audit_digest(struct cmd_audit *c, struct transport *t,
			    struct checkpoint *cp, struct err *e)
{
	struct transport_reply rep;
	struct answer_frames fr;
	struct frame f;
	int rc = -1;

	transport_reply_init(&rep);
	answer_frames_init(&fr, &rep.body, AUDIT_SMALL_FRAME_MAX);
	if (answer_get(t, "/v1/digest", TRANSPORT_SIGNED, "digest", &rep, e))
		goto cleanup;
	answer_frames_init(&fr, &rep.body, AUDIT_SMALL_FRAME_MAX);
	if (answer_frames_expect(&fr, FRAME_DIGEST, "state digest", &f, e))
		goto cleanup;
	audit_digest(c->a, f.payload, f.len);
	if (answer_frames_expect(&fr, FRAME_CHECKPOINT, "checkpoint", &f, e))
		goto cleanup;
	audit_checkpoint(c->a, f.payload, f.len);
	if (answer_checkpoint_open(f.payload, f.len, c->server_pk, c->origin,
				   cp, e) ||
	    answer_frames_end(&fr, e))
		goto cleanup;
	rc = 0;
cleanup:
	answer_frames_release(&fr);
	transport_reply_release(&rep);
	return rc;
}

static void cmd_audit_fork(struct cmd_audit *c, struct replica *r,
			   const struct checkpoint *cp, const char *why)
{
	char detail[512];

	snprintf(detail, sizeof detail,
		 "%s: checkpoint b (%llu entries) does "
		 "not extend checkpoint a (%llu entries) verified before by "
		 "this auditor",
		 why, (unsigned long long)cp->size,
		 (unsigned long long)c->old.size);
	cmd_audit_evidence(r, detail, &c->old, cp);
	audit_fail(c->a, -1, NULL,
		   "the server's log forked (%s): its signed "
		   "checkpoint of %llu entries does not extend the one of %llu "
		   "entries this auditor verified before; both are kept in "
		   "bs_evidence",
		   why, (unsigned long long)cp->size,
		   (unsigned long long)c->old.size);
	c->forked = 1;
}

/* The new checkpoint must extend the one verified last time: same root at
 * the same size, or a consistency proof from it. */
static int cmd_audit_extends(struct cmd_audit *c, struct replica *r,
			     struct transport *t, const struct checkpoint *cp,
			     struct err *e)
{
	struct transport_reply rep;
	struct answer_frames fr;
	struct frame f;
	struct proof p;
	char target[96];
	int rc = -1;

	if (cp->size < c->old.size) {
		cmd_audit_fork(c, r, cp, "the log shrank");
		return 0;
	}
	if (cp->size == c->old.size) {
		if (memcmp(cp->root, c->old.root, HASH_BYTES) != 0)
			cmd_audit_fork(c, r, cp, "two roots for one size");
		return 0;
	}
	transport_reply_init(&rep);
	answer_frames_init(&fr, &rep.body, AUDIT_SMALL_FRAME_MAX);
	snprintf(target, sizeof target,
		 "/v1/consistency?old=%" PRIu64 "&new=%" PRIu64, c->old.size,
		 cp->size);
	if (answer_get(t, target, 0, "consistency proof", &rep, e))
		goto cleanup;
	answer_frames_init(&fr, &rep.body, AUDIT_SMALL_FRAME_MAX);
	if (answer_frames_expect(&fr, FRAME_PROOF, "consistency proof", &f,
				 e) ||
	    answer_frames_end(&fr, e))
		goto cleanup;
	if (proof_decode(f.payload, f.len, &p) != BS_OK ||
	    p.kind != PROOF_CONSISTENCY || p.first != c->old.size ||
	    p.second != cp->size)
		cmd_audit_fork(c, r, cp,
			       "the consistency proof is malformed or "
			       "for other sizes");
	else if (merkle_verify_consistency(c->old.size, cp->size, c->old.root,
					   cp->root, &p.path) != BS_OK)
		cmd_audit_fork(c, r, cp, "the consistency proof fails");
	rc = 0;
cleanup:
	answer_frames_release(&fr);
	transport_reply_release(&rep);
	return rc;
}

/* One page of GET /v1/log: the entries below the audited size go to the
 * verifier; *after moves to the page's cursor. */
static int cmd_audit_page(struct cmd_audit *c, struct transport *t,
			  const struct checkpoint *cp, uint64_t *after,
			  struct err *e)
{
	struct transport_reply rep;
	struct answer_frames fr;
	struct checkpoint pcp;
	struct wire_reader wr;
	struct frame f;
	const uint8_t *entry;
	size_t elen;
	uint64_t index, cursor;
	char target[96];
	int rc = -1, got;

	transport_reply_init(&rep);
	answer_frames_init(&fr, &rep.body, AUDIT_ENTRY_FRAME_MAX);
	snprintf(target, sizeof target, "/v1/log?after=%" PRIu64 "&limit=%d",
		 *after, AUDIT_PAGE_LIMIT);
	if (answer_get(t, target, TRANSPORT_SIGNED, "log", &rep, e))
		goto cleanup;
	answer_frames_init(&fr, &rep.body, AUDIT_ENTRY_FRAME_MAX);
	if (answer_frames_expect(&fr, FRAME_CHECKPOINT, "checkpoint", &f, e) ||
	    answer_checkpoint_open(f.payload, f.len, c->server_pk, c->origin,
				   &pcp, e))
		goto cleanup;
	while ((got = answer_frames_next(&fr, &f, e)) == 1 &&
	       f.type == FRAME_ENTRY) {
		if (answer_entry_split(f.payload, f.len, &index, &entry, &elen,
				       e))
			goto cleanup;
		if (index < cp->size &&
		    cmd_audit_feed(c, index, entry, elen, e))
			goto cleanup;
	}
	if (got < 0)
		goto cleanup;
	wire_reader_init(&wr, f.payload, f.len);
	if (got == 0 || f.type != FRAME_CURSOR ||
	    wire_get_varint(&wr, &cursor) || wire_expect_end(&wr) ||
	    answer_frames_end(&fr, e) || cursor <= *after) {
		err_set(e, ERR_VERIFY,
			"the server's log page after entry %llu "
			"does not end with a cursor that moves on",
			(unsigned long long)*after);
		goto cleanup;
	}
	*after = cursor;
	rc = 0;
cleanup:
	answer_frames_release(&fr);
	transport_reply_release(&rep);
	return rc;
}

/* GET /v1/rows, asked only once the digest failed: the server's row
 * hashes, to name the rows that differ. They are unsigned and only help
 * the diagnosis, so a bad answer is one more failure, not the end of the
 * audit: whatever goes wrong is recorded as a failure. */
static void cmd_audit_rows(struct cmd_audit *c, struct transport *t)
{
	struct transport_reply rep;
	struct answer_frames fr;
	struct frame f;
	struct err why;

	err_init(&why);
	transport_reply_init(&rep);
	answer_frames_init(&fr, &rep.body, AUDIT_ROWHASH_FRAME_MAX);
	if (answer_get(t, "/v1/rows", TRANSPORT_SIGNED, "row hashes", &rep,
			  &why))
		goto cleanup;
	answer_frames_init(&fr, &rep.body, AUDIT_ROWHASH_FRAME_MAX);
	while (answer_frames_next(&fr, &f, &why) == 1) {
		if (f.type != FRAME_ROWHASH) {
			err_set(&why, ERR_VERIFY, "a frame of type %u came "
				"among them", f.type);
			break;
		}
		audit_row_hash(c->a, f.payload, f.len);
	}
cleanup:
	if (why.kind != ERR_OK)
		audit_fail(c->a, -1, NULL,
			   "the server's row hashes could not be read (%s): "
			   "the rows that differ are not named", why.msg);
	answer_frames_release(&fr);
	transport_reply_release(&rep);
}

static int cmd_audit_server_run(struct cmd_audit *c, struct replica *r,
				struct identity *idn, struct err *e)
{
	struct audit_options ao = {c->record_table, c->record_id, c->threads};
	struct transport *t = NULL;
	struct checkpoint cp;
	uint8_t root[HASH_BYTES], cpb[CHECKPOINT_SIGNED_MAX];
	uint64_t after = 0;
	int rc = -1;

	if (cmd_audit_load(c, r, e) || identity_unlock(idn, e) ||
	    sync_transport(r, idn, &t, e) ||
	    audit_new(c->server_pk, c->origin, &ao, &c->a, e) ||
	    cmd_audit_digest(c, t, &cp, e) ||
	    (c->have_old && cmd_audit_extends(c, r, t, &cp, e)))
		goto cleanup;
	while (after < cp.size)
		if (cmd_audit_page(c, t, &cp, &after, e))
			goto cleanup;
	if (audit_finish(c->a, e))
		goto cleanup;
	if (audit_rows_wanted(c->a))
		cmd_audit_rows(c, t);
	if (audit_rows_judge(c->a, e))
		goto cleanup;
	/* the entries themselves must also give the root verified before */
	if (c->have_old && !c->forked &&
	    (audit_prefix_root(c->a, c->old.size, root) ||
	     memcmp(root, c->old.root, HASH_BYTES) != 0))
		cmd_audit_fork(c, r, &cp,
			       "the entries served now do not give "
			       "the root verified before");
	if (!c->forked && audit_result(c->a)->checkpoint_ok) {
		if (replica_setting_set(r, "checkpoint", cpb,
					answer_checkpoint_bytes(&cp, cpb), e))
			goto cleanup;
		c->stored = 1;
	}
	rc = 0;
cleanup:
	transport_free(t);
	return rc;
}

static int cmd_audit_server(struct cmd_audit *c, struct err *e)
{
	struct identity idn;
	struct replica *r = NULL;
	int rc = -1;

	memset(&idn, 0, sizeof idn);
	if (replica_open(c->db, REPLICA_OPEN, &r, e) ||
	    identity_load(r, &idn, e))
		goto cleanup;
	if (!idn.role || !idn.server_url || strcmp(idn.role, "auditor") != 0) {
		err_set(
		    e, ERR_INVALID,
		    "audit --db needs a replica enrolled as "
		    "auditor (this one is %s); ask the district office for an "
		    "auditor token, or audit an export with --log",
		    idn.role ? idn.role : "not enrolled");
		goto cleanup;
	}
	snprintf(c->source, sizeof c->source, "%s", idn.server_url);
	rc = cmd_audit_server_run(c, r, &idn, e);
cleanup:
	identity_release(&idn);
	replica_close(r);
	return rc;
}

/* ---- output ---- */

static void cmd_audit_short(FILE *f, const uint8_t *key)
{
	cli_hex(f, key, 8);
}

static void cmd_audit_text_value(FILE *f, const struct audit_value *v)
{
	if (v->kind == 0)
		fputs("(empty)", f);
	else if (v->kind == 1)
		fprintf(f, "%lld", (long long)v->i);
	else
		cli_text_field(f, v->text, strlen(v->text));
}

static void cmd_audit_text_record(const struct cmd_audit *c,
				  const struct audit_result *res, FILE *f)
{
	char when[HLC_STR_MAX];
	size_t i, j;

	fprintf(f, "\nhistory of %s ", c->record_table);
	cli_text_field(f, c->record_id, strlen(c->record_id));
	fprintf(f, " (%zu change set%s):\n", res->nevents,
		res->nevents == 1 ? "" : "s");
	for (i = 0; i < res->nevents; i++) {
		const struct audit_event *ev = &res->events[i];

		hlc_format(ev->hlc, when);
		fprintf(f, "  entry %llu  %s  %s in %s  by ",
			(unsigned long long)ev->index, when, ev->op,
			ev->branch_id);
		cmd_audit_short(f, ev->author);
		fprintf(f, " (%s %s)\n", ev->role, ev->scope);
		for (j = 0; j < ev->nvalues; j++) {
			fprintf(f, "      %s: ", ev->values[j].column);
			cmd_audit_text_value(f, &ev->values[j]);
			fputc('\n', f);
		}
	}
	if (!res->record_found) {
		fputs(res->nevents ? "  now: deleted\n"
				   : "  no change set wrote it\n",
		      f);
		return;
	}
	fprintf(f, "  now, in %s:\n", res->now_branch);
	for (j = 0; j < res->nnow; j++) {
		fprintf(f, "      %s: ", res->now[j].column);
		cmd_audit_text_value(f, &res->now[j]);
		fputc('\n', f);
	}
}

static void cmd_audit_text(const struct cmd_audit *c,
			   const struct audit_result *res, FILE *f)
{
	char when[CLI_TIME_MAX];
	size_t i;

	fprintf(f, "audit of the log '%s' from %s\n", c->origin, c->source);
	fputs("server key   ", f);
	cli_hex(f, c->server_pk, SIGN_PUBLIC_BYTES);
	fputs(c->log && !c->server_key
		  ? "\n             (from the file: compare it with the key "
		    "the district office published)\n"
		  : "\n",
	      f);
	fprintf(f, "entries      %llu\n", (unsigned long long)res->entries);
	fprintf(f,
		"change sets  %llu (%llu accepted, %llu refused; %llu "
		"replayed)\n",
		(unsigned long long)res->changesets,
		(unsigned long long)res->accepted,
		(unsigned long long)res->refused,
		(unsigned long long)res->applied);
	fprintf(f, "devices      %llu enrolled, %llu revoked, %llu wrote\n",
		(unsigned long long)res->devices,
		(unsigned long long)res->revoked,
		(unsigned long long)res->authors);
	fprintf(f, "scopes       %llu written (branches and the district)\n",
		(unsigned long long)res->scopes);
	if (res->have_checkpoint) {
		cli_time_ms((int64_t)res->cp.time_ms, when);
		fprintf(f, "checkpoint   %llu entries, root ",
			(unsigned long long)res->cp.size);
		cli_hex(f, res->cp.root, HASH_BYTES);
		fprintf(f, ", signed %s: %s\n", when,
			res->checkpoint_ok ? "the entries give this root"
					   : "FAILED");
	}
	if (c->have_old)
		fprintf(f,
			"previous     %llu entries, verified by this auditor "
			"before: %s\n",
			(unsigned long long)c->old.size,
			c->forked ? "NOT extended (fork)" : "extended");
	if (res->have_digest) {
		fputs("digest       server ", f);
		cli_hex(f, res->sd.digest, HASH_BYTES);
		fputs("\n             replay ", f);
		cli_hex(f, res->replayed, HASH_BYTES);
		fprintf(f, ": %s\n", res->digest_ok ? "equal" : "FAILED");
	}
	fputs("records     ", f);
	for (i = 0; i < res->ntables; i++)
		fprintf(f, "%s %s %llu", i ? "," : "", res->table[i],
			(unsigned long long)res->rows[i]);
	fprintf(f,
		"\nconflicts    %llu concurrent writes recorded by the "
		"replay\n",
		(unsigned long long)res->conflicts);
	if (res->failures_total == 0) {
		fputs("\nverified: every check holds\n", f);
	} else {
		fprintf(f, "\nFAILED: %llu problem%s\n",
			(unsigned long long)res->failures_total,
			res->failures_total == 1 ? "" : "s");
		for (i = 0; i < res->nfailures; i++) {
			const struct audit_failure *fl = &res->failures[i];

			fputs("  ", f);
			if (fl->index >= 0)
				fprintf(f, "entry %lld", (long long)fl->index);
			else
				fputs("log", f);
			if (fl->has_device) {
				fputs(" (device ", f);
				cmd_audit_short(f, fl->device);
				fputc(')', f);
			}
			fprintf(f, ": %s\n", fl->reason);
		}
		if (res->failures_total > res->nfailures)
			fprintf(f, "  ... and %llu more\n",
				(unsigned long long)(res->failures_total -
						     res->nfailures));
	}
	if (c->record_table)
		cmd_audit_text_record(c, res, f);
}

static void cmd_audit_json_hex(FILE *f, const uint8_t *p, size_t n)
{
	fputc('"', f);
	cli_hex(f, p, n);
	fputc('"', f);
}

static void cmd_audit_json_values(FILE *f, const struct audit_value *v,
				  size_t n)
{
	size_t i;

	fputc('{', f);
	for (i = 0; i < n; i++) {
		fprintf(f, "%s\"%s\":", i ? "," : "", v[i].column);
		if (v[i].kind == 0)
			fputs("null", f);
		else if (v[i].kind == 1)
			fprintf(f, "%lld", (long long)v[i].i);
		else
			cli_json_string(f, v[i].text, strlen(v[i].text));
	}
	fputc('}', f);
}

static void cmd_audit_json_record(const struct cmd_audit *c,
				  const struct audit_result *res, FILE *f)
{
	char when[HLC_STR_MAX];
	size_t i;

	fputs(",\"record\":{\"table\":", f);
	cli_json_string(f, c->record_table, strlen(c->record_table));
	fputs(",\"id\":", f);
	cli_json_string(f, c->record_id, strlen(c->record_id));
	fputs(",\"history\":[", f);
	for (i = 0; i < res->nevents; i++) {
		const struct audit_event *ev = &res->events[i];

		hlc_format(ev->hlc, when);
		fprintf(f, "%s{\"index\":%llu,\"device\":", i ? "," : "",
			(unsigned long long)ev->index);
		cmd_audit_json_hex(f, ev->author, SIGN_PUBLIC_BYTES);
		fprintf(f, ",\"role\":\"%s\",\"scope\":", ev->role);
		cli_json_string(f, ev->scope, strlen(ev->scope));
		fputs(",\"branch_id\":", f);
		cli_json_string(f, ev->branch_id, strlen(ev->branch_id));
		fprintf(f,
			",\"hlc\":%llu,\"time\":\"%s\",\"op\":\"%s\","
			"\"values\":",
			(unsigned long long)ev->hlc, when, ev->op);
		cmd_audit_json_values(f, ev->values, ev->nvalues);
		fputc('}', f);
	}
	fputs("],\"now\":", f);
	if (!res->record_found) {
		fputs("null}", f);
		return;
	}
	fputs("{\"branch_id\":", f);
	cli_json_string(f, res->now_branch, strlen(res->now_branch));
	fputs(",\"values\":", f);
	cmd_audit_json_values(f, res->now, res->nnow);
	fputs("}}", f);
}

static void cmd_audit_json(const struct cmd_audit *c,
			   const struct audit_result *res, FILE *f)
{
	char when[CLI_TIME_MAX];
	size_t i;

	fprintf(f, "{\"ok\":%s,\"source\":\"%s\",\"origin\":",
		res->failures_total ? "false" : "true",
		c->log ? "log" : "server");
	cli_json_string(f, c->origin, strlen(c->origin));
	fputs(",\"server_key\":", f);
	cmd_audit_json_hex(f, c->server_pk, SIGN_PUBLIC_BYTES);
	fprintf(
	    f,
	    ",\"entries\":%llu,\"changesets\":%llu,\"accepted\":%llu,"
	    "\"refused\":%llu,\"replayed\":%llu,\"enrollments\":%llu,"
	    "\"revocations\":%llu,\"devices\":%llu,\"revoked\":%llu,"
	    "\"authors\":%llu,\"scopes\":%llu,\"conflicts\":%llu",
	    (unsigned long long)res->entries,
	    (unsigned long long)res->changesets,
	    (unsigned long long)res->accepted, (unsigned long long)res->refused,
	    (unsigned long long)res->applied,
	    (unsigned long long)res->enrollments,
	    (unsigned long long)res->revocations,
	    (unsigned long long)res->devices, (unsigned long long)res->revoked,
	    (unsigned long long)res->authors, (unsigned long long)res->scopes,
	    (unsigned long long)res->conflicts);
	fputs(",\"checkpoint\":", f);
	if (res->have_checkpoint) {
		cli_time_ms((int64_t)res->cp.time_ms, when);
		fprintf(f, "{\"size\":%llu,\"root\":",
			(unsigned long long)res->cp.size);
		cmd_audit_json_hex(f, res->cp.root, HASH_BYTES);
		fprintf(f, ",\"time\":\"%s\",\"verified\":%s}", when,
			res->checkpoint_ok ? "true" : "false");
	} else {
		fputs("null", f);
	}
	if (c->db) {
		fputs(",\"previous_checkpoint\":", f);
		if (c->have_old) {
			fprintf(f, "{\"size\":%llu,\"root\":",
				(unsigned long long)c->old.size);
			cmd_audit_json_hex(f, c->old.root, HASH_BYTES);
			fprintf(f, ",\"extended\":%s}",
				c->forked ? "false" : "true");
		} else {
			fputs("null", f);
		}
		fprintf(f, ",\"checkpoint_stored\":%s",
			c->stored ? "true" : "false");
	}
	fputs(",\"digest\":{\"server\":", f);
	if (res->have_digest)
		cmd_audit_json_hex(f, res->sd.digest, HASH_BYTES);
	else
		fputs("null", f);
	fputs(",\"replayed\":", f);
	cmd_audit_json_hex(f, res->replayed, HASH_BYTES);
	fprintf(f, ",\"equal\":%s},\"tables\":{",
		res->digest_ok ? "true" : "false");
	for (i = 0; i < res->ntables; i++)
		fprintf(f, "%s\"%s\":%llu", i ? "," : "", res->table[i],
			(unsigned long long)res->rows[i]);
	fprintf(f, "},\"failures_total\":%llu,\"failures\":[",
		(unsigned long long)res->failures_total);
	for (i = 0; i < res->nfailures; i++) {
		const struct audit_failure *fl = &res->failures[i];

		fputs(i ? ",{\"index\":" : "{\"index\":", f);
		if (fl->index >= 0)
			fprintf(f, "%lld", (long long)fl->index);
		else
			fputs("null", f);
		fputs(",\"device\":", f);
		if (fl->has_device)
			cmd_audit_json_hex(f, fl->device, SIGN_PUBLIC_BYTES);
		else
			fputs("null", f);
		fputs(",\"reason\":", f);
		cli_json_string(f, fl->reason, strlen(fl->reason));
		if (fl->has_row) {
			fputs(",\"table\":", f);
			cli_json_string(f, fl->table, strlen(fl->table));
			fputs(",\"row\":", f);
			cli_json_string(f, fl->row, strlen(fl->row));
			fputs(",\"branch\":", f);
			cli_json_string(f, fl->branch, strlen(fl->branch));
		}
		fputc('}', f);
	}
	fputc(']', f);
	if (c->record_table)
		cmd_audit_json_record(c, res, f);
	fputs("}\n", f);
}

/* ---- the command ---- */

static int cmd_audit_args(const struct cli_command *cmd, int argc, char **argv,
			  struct cmd_audit *c, struct err *e)
{
	const char *threads = NULL;
	int npos = 0;
	const struct cli_opt opts[] = {
	    {"--log", &c->log, NULL},
	    {"--db", &c->db, NULL},
	    {"--server-key", &c->server_key, NULL},
	    {"--json", NULL, &c->json},
	    {"--record", &c->record_table, NULL},
	    {"--threads", &threads, NULL},
	    {NULL, NULL, NULL},
	};
	char *end;
	unsigned long n;
	uint8_t key[SIGN_PUBLIC_BYTES];

	if (cli_parse(cmd, argc, argv, opts, &npos, e))
		return -1;
	if (c->record_table && npos == 1)
		c->record_id = argv[0];
	else if (c->record_table || npos > 0)
		return cli_usage(cmd, e,
				 c->record_table
				     ? "--record takes a table and a record id"
				     : "audit takes no arguments");
	if (threads) {
		n = strtoul(threads, &end, 10);
		if (!*threads || *end || n < 1 || n > 8)
			return cli_usage(cmd, e, "--threads takes 1 to 8");
		c->threads = (unsigned)n;
	}
	if (c->log && c->db)
		return cli_usage(cmd, e, "give --log or --db, not both");
	if (c->server_key && !c->log)
		return cli_usage(cmd, e,
				 "--server-key goes with --log (with "
				 "--db the key stored at enrollment is used)");
	if (c->server_key && !cmd_audit_hex(c->server_key, key, sizeof key))
		return cli_usage(cmd, e, "--server-key takes 64 hex digits");
	if (!c->log)
		return cli_db_path(cmd, c->db, &c->db, e);
	return 0;
}

static int cmd_audit_run(const struct cli_command *cmd, int argc, char **argv)
{
	struct cmd_audit c;
	const struct audit_result *res;
	struct err e;
	int rc;

	err_init(&e);
	memset(&c, 0, sizeof c);
	if (cmd_audit_args(cmd, argc, argv, &c, &e))
		goto cleanup;
	c.progress = isatty(STDERR_FILENO);
	rc = c.log ? cmd_audit_file(&c, &e) : cmd_audit_server(&c, &e);
	if (rc)
		goto cleanup;
	res = audit_result(c.a);
	if (c.json)
		cmd_audit_json(&c, res, stdout);
	else
		cmd_audit_text(&c, res, stdout);
	if (res->failures_total > 0) {
		const struct audit_failure *fl = &res->failures[0];

		fflush(stdout);
		if (fl->index >= 0)
			err_set(&e, ERR_VERIFY,
				"the audit found %llu problem%s; "
				"the first, at log entry %lld: %s",
				(unsigned long long)res->failures_total,
				res->failures_total == 1 ? "" : "s",
				(long long)fl->index, fl->reason);
		else
			err_set(&e, ERR_VERIFY,
				"the audit found %llu problem%s; "
				"the first: %s",
				(unsigned long long)res->failures_total,
				res->failures_total == 1 ? "" : "s",
				fl->reason);
	}
cleanup:
	audit_free(c.a);
	if (e.kind != ERR_OK)
		return cli_fail(&e);
	return cli_finish(&e);
}

const struct cli_command cmd_audit = {
    .name = "audit",
    .summary = "verify the server's whole log and its records",
    .usage = audit_usage,
    .run = cmd_audit_run,
};
