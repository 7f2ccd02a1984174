/* enroll.c - `branchsync enroll`: binds this device's key to a role and
 * scope at the district server with a one-time token, checks everything
 * the server signed in answer, and keeps it in the replica's settings
 * (docs/SYNC.md, "Enrollment"). Not for syncing (sync.c). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "answer.h"
#include "bundle.h"
#include "commands.h"
#include "enrollment.h"
#include "identity.h"
#include "logentry.h"
#include "proof.h"
#include "replica.h"
#include "sync.h"
#include "transport.h"
#include "wire.h"

#define ENROLL_TOKEN_HEX 64

static const char enroll_usage[] =
	"usage: branchsync enroll --db FILE --server URL --token TOKEN\n"
	"                         [--name NAME] [--server-key HEX]\n"
	"                         [--cacert FILE] [--pin SHA256]\n\n"
	"Enrolls this device with the district server, using a one-time "
	"token from\nthe district office ('branchsyncd token'). The server's "
	"signed answer is\nchecked and kept: the device's role and scope, the "
	"server's key, and the\nlog's checkpoint. The request is signed, so "
	"the passphrase is needed.\n\n"
	"  --db FILE          the replica (or $BRANCHSYNC_DB)\n"
	"  --server URL       the district server, https://HOST[:PORT]\n"
	"  --token TOKEN      the token, 64 hex digits\n"
	"  --name NAME        this device's name at the server (default: the "
	"name\n                     given to 'branchsync init')\n"
	"  --server-key HEX   the server's public key as the district office "
	"gives it;\n                     without it the key is trusted on "
	"first use and printed\n"
	"  --cacert FILE      trust the CA certificates in FILE (PEM) for "
	"TLS\n"
	"  --pin SHA256       accept only a server whose TLS public key has "
	"this\n                     SHA-256 (hex or base64)\n\n"
	"Exit codes: 0 enrolled, 1 usage, 2 token refused or already "
	"enrolled,\n3 server unreachable, 4 the server's answer does not "
	"verify.\n";

/* The command line, checked. */
struct enroll_args {
	const char *db, *server, *token, *name, *server_key, *cacert, *pin;
	uint8_t key[SIGN_PUBLIC_BYTES];  /* --server-key, if given */
	char pin_norm[TRANSPORT_PIN_MAX];
	char *cacert_abs;                /* realpath of --cacert */
};

/* What the server's answer proved. */
struct enroll_answer {
	struct enrollment en;
	uint8_t server_pk[SIGN_PUBLIC_BYTES];
	char origin[CHECKPOINT_ORIGIN_MAX + 1];
	uint64_t index;
	struct checkpoint cp;
	/* the enrollment's exact signed bytes, kept for bundles */
	uint8_t en_bytes[ENROLLMENT_SIGNED_MAX];
	size_t en_len;
};

static int enroll_hex(const char *hex, uint8_t *out, size_t n)
{
	size_t got = 0;

	return strlen(hex) == 2 * n &&
	       sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, NULL) == 0 &&
	       got == n;
}

static int enroll_check_args(const struct cli_command *cmd,
			     struct enroll_args *a, struct err *e)
{
	uint8_t token[ENROLL_TOKEN_HEX / 2];

	if (!a->server || !a->token)
		return cli_usage(cmd, e, "give the server with --server URL "
				 "and the token with --token TOKEN");
	if (!enroll_hex(a->token, token, sizeof token))
		return cli_usage(cmd, e, "the token is 64 hex digits, as "
				 "'branchsyncd token' prints it");
	if (a->server_key && !enroll_hex(a->server_key, a->key, sizeof a->key))
		return cli_usage(cmd, e, "--server-key takes the server's "
				 "public key as 64 hex digits");
	if (a->name && strlen(a->name) > ENROLLMENT_NAME_MAX)
		return cli_usage(cmd, e, "--name is at most %d bytes",
				 ENROLLMENT_NAME_MAX);
	if (a->pin && transport_pin_parse(a->pin, a->pin_norm, e))
		return -1;
	if (a->cacert && !(a->cacert_abs = realpath(a->cacert, NULL))) {
		err_set(e, ERR_INVALID, "cannot read the CA file %s",
			a->cacert);
		return -1;
	}
	return 0;
}

/* With --server-key, the server must prove it holds that key before the
 * token is spent: its latest checkpoint must verify with it. */
static int enroll_check_server_key(struct transport *t,
				   const struct enroll_args *a, struct err *e)
{
	struct transport_reply rep;
	struct answer_frames fr;
	struct frame f;
	struct checkpoint cp;
	int rc = -1;

	transport_reply_init(&rep);
	answer_frames_init(&fr, &rep.body, CHECKPOINT_SIGNED_MAX);
	if (answer_get(t, "/v1/checkpoint", 0, "checkpoint request", &rep, e))
		goto cleanup;
	answer_frames_init(&fr, &rep.body, CHECKPOINT_SIGNED_MAX);
	if (answer_frames_expect(&fr, FRAME_CHECKPOINT, "checkpoint", &f, e))
		goto cleanup;
	if (checkpoint_decode(f.payload, f.len, &cp) != BS_OK ||
	    checkpoint_verify(&cp, a->key) != BS_OK) {
		err_set(e, ERR_VERIFY,
			"the server at %s does not sign with "
			"the key given by --server-key; do not enroll with it, "
			"and check the key with the district office",
			a->server);
		goto cleanup;
	}
	rc = 0;
cleanup:
	answer_frames_release(&fr);
	transport_reply_release(&rep);
	return rc;
}

/* META: the server's key and the log's name. */
static int enroll_meta(const struct frame *f, struct enroll_answer *ans,
		       struct err *e)
{
	struct wire_reader r;
	const uint8_t *origin;
	size_t n;

	wire_reader_init(&r, f->payload, f->len);
	if (wire_get_fixed(&r, ans->server_pk, SIGN_PUBLIC_BYTES) ||
	    wire_get_blob(&r, CHECKPOINT_ORIGIN_MAX, &origin, &n) ||
	    wire_expect_end(&r) || n == 0 || memchr(origin, 0, n)) {
		err_set(e, ERR_VERIFY, "the server's enrollment answer has a "
			"malformed key and log name");
		return -1;
	}
	memcpy(ans->origin, origin, n);
	ans->origin[n] = '\0';
	return 0;
}

/* ENTRY: the log entry must be exactly this enrollment, accepted. */
static int enroll_entry(const struct buf *eb, const struct buf *enb,
			struct enroll_answer *ans, const uint8_t **entry,
			size_t *elen, struct err *e)
{
	struct logentry le;

	if (answer_entry_split(eb->data, eb->len, &ans->index, entry, elen, e))
		return -1;
	if (logentry_decode(*entry, *elen, &le) != BS_OK ||
	    le.kind != LOGENTRY_ENROLLMENT || le.verdict != LOGENTRY_ACCEPTED ||
	    le.payload_len != enb->len ||
	    memcmp(le.payload, enb->data, enb->len) != 0) {
		err_set(e, ERR_VERIFY, "the server's log entry %llu is not "
			"this device's enrollment",
			(unsigned long long)ans->index);
		return -1;
	}
	return 0;
}

/* CHECKPOINT and PROOF: the entry is in the signed log. */
static int enroll_included(struct answer_frames *fr, const uint8_t *entry,
			   size_t elen, struct enroll_answer *ans,
			   struct err *e)
{
	struct frame f;
	struct proof p;
	uint8_t leaf[HASH_BYTES];

	if (answer_frames_expect(fr, FRAME_CHECKPOINT, "checkpoint", &f, e) ||
	    answer_checkpoint_open(f.payload, f.len, ans->server_pk,
				   ans->origin, &ans->cp, e) ||
	    answer_frames_expect(fr, FRAME_PROOF, "inclusion proof", &f, e))
		return -1;
	logentry_leaf_hash(entry, elen, leaf);
	if (proof_decode(f.payload, f.len, &p) != BS_OK ||
	    p.kind != PROOF_INCLUSION || p.first != ans->index ||
	    p.second != ans->cp.size ||
	    merkle_verify_inclusion(leaf, ans->index, ans->cp.size, &p.path,
				    ans->cp.root) != BS_OK) {
		err_set(e, ERR_VERIFY, "the server's enrollment is not proven "
			"to be in its signed log");
		return -1;
	}
	return 0;
}

/* Checks the whole answer, frame by frame (docs/API.md, enroll). */
static int enroll_verify(const struct transport_reply *rep,
			 const uint8_t my_pk[SIGN_PUBLIC_BYTES],
			 const struct enroll_args *a, struct enroll_answer *ans,
			 struct err *e)
{
	struct answer_frames fr;
	struct frame f;
	struct buf enb, eb;
	const uint8_t *entry = NULL;
	size_t elen = 0;
	int rc = -1;

	buf_init(&enb, ENROLLMENT_SIGNED_MAX);
	buf_init(&eb, WIRE_VARINT_MAX + LOGENTRY_MAX);
	answer_frames_init(&fr, &rep->body, WIRE_VARINT_MAX + LOGENTRY_MAX);
	if (answer_frames_expect(&fr, FRAME_ENROLLMENT, "enrollment", &f, e))
		goto cleanup;
	buf_append(&enb, f.payload, f.len);
	if (enb.status) {
		err_set(e, ERR_VERIFY, "the server's enrollment is too large");
		goto cleanup;
	}
	if (answer_frames_expect(&fr, FRAME_META, "server key", &f, e) ||
	    enroll_meta(&f, ans, e))
		goto cleanup;
	if (a->server_key && memcmp(ans->server_pk, a->key,
				    SIGN_PUBLIC_BYTES) != 0) {
		err_set(e, ERR_VERIFY, "the server's key is not the one given "
			"by --server-key; the enrollment is not kept");
		goto cleanup;
	}
	if (enrollment_open(enb.data, enb.len, ans->server_pk, &ans->en) !=
	    BS_OK) {
		err_set(e, ERR_VERIFY, "the enrollment is not signed by the "
			"server's key");
		goto cleanup;
	}
	if (memcmp(ans->en.device, my_pk, SIGN_PUBLIC_BYTES) != 0) {
		err_set(e, ERR_VERIFY, "the server's enrollment names another "
			"device");
		goto cleanup;
	}
	memcpy(ans->en_bytes, enb.data, enb.len);
	ans->en_len = enb.len;
	if (answer_frames_expect(&fr, FRAME_ENTRY, "log entry", &f, e))
		goto cleanup;
	buf_append(&eb, f.payload, f.len);
	if (eb.status) {
		err_set(e, ERR_INVALID, "out of memory");
		goto cleanup;
	}
	if (enroll_entry(&eb, &enb, ans, &entry, &elen, e) ||
	    enroll_included(&fr, entry, elen, ans, e))
		goto cleanup;
	rc = answer_frames_next(&fr, &f, e);
	if (rc > 0)
		err_set(e, ERR_VERIFY, "the server's enrollment answer has an "
			"unexpected frame");
	rc = rc == 0 ? 0 : -1;
cleanup:
	answer_frames_release(&fr);
	buf_release(&enb);
	buf_release(&eb);
	return rc;
}

/* The request body: one META frame with the token and the name. */
static int enroll_body(const struct enroll_args *a, const char *name,
		       struct buf *b, struct err *e)
{
	struct buf meta;
	char token[ENROLL_TOKEN_HEX + 1];
	size_t i;

	for (i = 0; i < ENROLL_TOKEN_HEX; i++)
		token[i] = (char)tolower((unsigned char)a->token[i]);
	token[ENROLL_TOKEN_HEX] = '\0';
	buf_init(&meta, 512);
	wire_put_blob(&meta, token, ENROLL_TOKEN_HEX);
	wire_put_blob(&meta, name, strlen(name));
	frame_stream_begin(b);
	frame_put(b, FRAME_META, meta.data, meta.len);
	frame_stream_end(b);
	if (meta.status || b->status)
		err_set(e, ERR_INVALID, "out of memory");
	buf_release(&meta);
	sodium_memzero(token, sizeof token);
	return e->kind == ERR_OK ? 0 : -1;
}

static int enroll_refused(const struct transport_reply *rep, struct err *e)
{
	char msg[300];

	transport_reply_message(rep, msg, sizeof msg);
	if (rep->status == 403)
		err_set(e, ERR_INVALID, "the server refused the token (%s)",
			msg);
	else if (rep->status == 409)
		err_set(e, ERR_INVALID,
			"the server says this device is already "
			"enrolled (%s)",
			msg);
	else
		answer_http_error(rep, "enrollment", e);
	return -1;
}

/* Keeps the verified enrollment, all in one transaction. */
static int enroll_store(struct replica *r, const struct enroll_args *a,
			const struct enroll_answer *ans, struct err *e)
{
	char url[TRANSPORT_URL_MAX + 1];
	uint8_t cpb[CHECKPOINT_SIGNED_MAX];
	size_t len = strlen(a->server), n;

	snprintf(url, sizeof url, "%s", a->server);
	if (len > 0 && url[len - 1] == '/')
		url[len - 1] = '\0';
	n = answer_checkpoint_bytes(&ans->cp, cpb);
	if (replica_begin(r, e))
		return -1;
	if (replica_setting_set_text(r, "server_url", url, e) ||
	    replica_setting_set(r, "server_pk", ans->server_pk,
				SIGN_PUBLIC_BYTES, e) ||
	    replica_setting_set_text(r, "origin", ans->origin, e) ||
	    replica_setting_set_text(r, "role",
				     enrollment_role_name(ans->en.role), e) ||
	    replica_setting_set_text(r, "scope", ans->en.scope, e) ||
	    replica_setting_set_int(r, "cursor", 0, e) ||
	    replica_setting_set(r, "checkpoint", cpb, n, e) ||
	    (a->pin &&
	     replica_setting_set_text(r, "tls_pin", a->pin_norm, e)) ||
	    (a->cacert_abs &&
	     replica_setting_set_text(r, "cacert", a->cacert_abs, e)) ||
	    sync_author_enrolled(r, &ans->en, ans->index, e) ||
	    bundle_enrollment_keep(r, ans->en.device, ans->en_bytes,
				   ans->en_len, e) ||
	    replica_commit(r, e)) {
		replica_rollback(r);
		return -1;
	}
	return 0;
}

/* Sends the enrollment and checks the answer. */
static int enroll_exchange(struct identity *idn, const struct enroll_args *a,
			   const char *name, struct enroll_answer *ans,
			   struct err *e)
{
	struct transport_options o;
	struct transport *t = NULL;
	struct transport_reply rep;
	struct buf body;
	int rc = -1;

	memset(&o, 0, sizeof o);
	o.url = a->server;
	o.cacert = a->cacert_abs;
	o.pin = a->pin ? a->pin_norm : NULL;
	transport_reply_init(&rep);
	buf_init(&body, 4096);
	if (enroll_body(a, name, &body, e) || transport_new(&o, &t, e))
		goto cleanup;
	transport_set_signer(t, idn->key->pk, idn->key->sk);
	if (a->server_key && enroll_check_server_key(t, a, e))
		goto cleanup;
	/* not idempotent: the token is spent once the server has it */
	if (transport_request(t, "POST", "/v1/enroll", body.data, body.len,
			      TRANSPORT_SIGNED, &rep, e))
		goto cleanup;
	if (rep.status != 200) {
		enroll_refused(&rep, e);
		goto cleanup;
	}
	rc = enroll_verify(&rep, idn->pk, a, ans, e);
cleanup:
	transport_free(t);
	transport_reply_release(&rep);
	buf_release(&body);
	return rc;
}

static int enroll_run(const struct cli_command *cmd, int argc, char **argv)
{
	struct enroll_args a;
	const struct cli_opt opts[] = {
		{ "--db", &a.db, NULL },
		{ "--server", &a.server, NULL },
		{ "--token", &a.token, NULL },
		{ "--name", &a.name, NULL },
		{ "--server-key", &a.server_key, NULL },
		{ "--cacert", &a.cacert, NULL },
		{ "--pin", &a.pin, NULL },
		{ NULL, NULL, NULL },
	};
	struct enroll_answer ans;
	struct identity idn;
	struct replica *r = NULL;
	const char *db = NULL, *name;
	char hex[2 * SIGN_PUBLIC_BYTES + 1];
	int npos = 0;
	struct err e;

	err_init(&e);
	memset(&a, 0, sizeof a);
	memset(&idn, 0, sizeof idn);
	memset(&ans, 0, sizeof ans);
	if (cli_parse(cmd, argc, argv, opts, &npos, &e))
		goto cleanup;
	if (npos > 0) {
		cli_usage(cmd, &e, "enroll takes no arguments");
		goto cleanup;
	}
	if (enroll_check_args(cmd, &a, &e) || cli_db_path(cmd, a.db, &db, &e) ||
	    replica_open(db, REPLICA_OPEN, &r, &e) ||
	    identity_load(r, &idn, &e))
		goto cleanup;
	if (idn.role) {
		err_set(&e, ERR_INVALID, "this device is already enrolled "
			"(%s%s%s); a device enrolls once", idn.role,
			idn.scope ? " of " : "", idn.scope ? idn.scope : "");
		goto cleanup;
	}
	name = a.name ? a.name : idn.name ? idn.name : "";
	if (strlen(name) > ENROLLMENT_NAME_MAX) {
		cli_usage(cmd, &e,
			  "the device's name is longer than %d bytes; "
			  "give a shorter one with --name",
			  ENROLLMENT_NAME_MAX);
		goto cleanup;
	}
	if (identity_unlock(&idn, &e) ||
	    enroll_exchange(&idn, &a, name, &ans, &e) ||
	    enroll_store(r, &a, &ans, &e))
		goto cleanup;
	sodium_bin2hex(hex, sizeof hex, ans.server_pk, SIGN_PUBLIC_BYTES);
	if (!a.server_key)
		fprintf(stderr,
			"branchsync: the server's key is %s; check that "
			"it is the one the district office gives\n",
			hex);
	fprintf(stderr, "branchsync: enrolled as a %s device of %s with %s "
		"(log entry %llu)\n", enrollment_role_name(ans.en.role),
		ans.en.scope, ans.origin, (unsigned long long)ans.index);
cleanup:
	free(a.cacert_abs); /* from realpath, so libc's */
	identity_release(&idn);
	replica_close(r);
	if (e.kind != ERR_OK)
		return cli_fail(&e);
	return cli_finish(&e);
}

const struct cli_command cmd_enroll = {
	.name = "enroll",
	.summary = "enroll this device with the district server",
	.usage = enroll_usage,
	.run = enroll_run,
};
