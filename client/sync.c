/* sync.c - push and pull with the district server (see sync.h; the protocol
 * and its guarantees are in docs/SYNC.md, the endpoints in docs/API.md):
 * the entry points, the order of a sync and the helpers its parts share
 * (sync_int.h). Pushing is in sync_push.c, pulling in sync_pull.c and
 * checkpoints in sync_cp.c; HTTP in transport.c, merging in shared/merge.c. */
#include "sync_int.h"

#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "answer.h"
#include "cli.h"
#include "clock.h"
#include "mem.h"
#include "merge.h"
#include "request.h"

/* ---- database helpers ---- */

int sync_prepare(struct sync *s, const char *sql, sqlite3_stmt **st,
		 struct err *e)
{
	if (sqlite3_prepare_v2(s->r->db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	err_set(e, ERR_INVALID, "database error: %s", sqlite3_errmsg(s->r->db));
	return -1;
}

int sync_done(struct sync *s, sqlite3_stmt *st, struct err *e)
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
void sync_evidence(struct sync *s, const char *kind,
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

/* ---- shared by push and pull ---- */

void sync_short_hex(const uint8_t *p, char out[17])
{
	sodium_bin2hex(out, 17, p, 8);
}

void sync_note_refusal(struct sync *s, const char *reason, size_t len)
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
	if (syncpush_run(&s, e) || (!s.caught_up && syncpull_run(&s, e)) ||
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
