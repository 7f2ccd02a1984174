/* test_sync.c - Check suite 'sync': starts a real branchsyncd
 * ($BRANCHSYNCD_BIN) on a free loopback port and drives real branchsync
 * processes ($BRANCHSYNC_BIN) on temporary replicas through enrollment and
 * sync (docs/SYNC.md): enrollment's checks and refusals; every replica
 * converges to the server's records within its scope, and a branch never
 * receives another branch's records; concurrent edits are listed as
 * conflicts on both sides; a server that is down costs nothing; a second
 * sync is a no-op; an author without the right to write (as the client's
 * own record of the log says) stops the page whole; revocations; TLS with a
 * CA file and a pinned key; the clock follows what was seen within the
 * drift bound; an unlogged refusal stops the sync; large syncs go in
 * batches and pages and resume after a kill; and a server that forks its
 * log is caught with both checkpoints kept as evidence. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "checkpoint.h"
#include "err.h"
#include "harness.h"
#include "sign.h"

#define MAX_ARGS 32

static struct harness_server srv;	    /* made and started by setup() */
static char srv_cert[400], srv_tlskey[400]; /* serve TLS when set */

/* ---- the server ---- */

/* harness_server_start, which serves plain HTTP; once srv_cert is set, the
 * same with --tls-cert and --tls-key. */
static void server_start(int port)
{
	const char *bin = getenv("BRANCHSYNCD_BIN");
	int tries;

	if (!srv_cert[0]) {
		harness_server_start(&srv, port);
		return;
	}
	ck_assert_ptr_nonnull(bin);
	ck_assert_int_eq(srv.pid, -1);
	harness_fmt(srv.port_file, sizeof srv.port_file, "%s.port", srv.dir);
	harness_fmt(srv.log, sizeof srv.log, "%s.log", srv.dir);
	/* a port just freed may still be taken for a moment: retried */
	for (tries = 0; tries < 50; tries++) {
		char listen[64];
		const char *argv[] = {
		    "branchsyncd", "serve", "--data", srv.dir, "--listen",
		    listen, "--port-file", srv.port_file, "--quiet",
		    "--tls-cert", srv_cert, "--tls-key", srv_tlskey, NULL,
		};
		int p = port ? port : 20000 + (int)(random() % 12000);

		snprintf(listen, sizeof listen, "127.0.0.1:%d", p);
		unlink(srv.port_file);
		srv.pid = harness_spawn(bin, argv, srv.log);
		srv.port = harness_port_wait(srv.port_file, srv.pid, 10);
		if (srv.port > 0)
			return;
		harness_kill(srv.pid, SIGKILL);
		srv.pid = -1;
		usleep(200000);
	}
	ck_abort_msg("branchsyncd did not start (see %s)", srv.log);
}

/* harness_server_url, but https when serving TLS. */
static void server_url(char *out, size_t n)
{
	snprintf(out, n, "%s://127.0.0.1:%d", srv_cert[0] ? "https" : "http",
		 srv.port);
}

/* ---- devices ---- */

/* Makes replica tmp/NAME.db enrolled with role (and branch); its path
 * goes to out. */
static void device(const char *name, const char *role, const char *branch,
		   char *out, size_t n)
{
	char tok[HARNESS_HEX_KEY + 1], url[64], file[64];
	struct harness_run r;

	/* not harness_device: TLS, and the enrollment carries the name */
	harness_fmt(file, sizeof file, "%s.db", name);
	harness_path(out, n, file);
	harness_device_init(out, NULL);
	harness_token(&srv, role, branch, tok);
	server_url(url, sizeof url);
	r = harness_bs("enroll", "--db", out, "--server", url, "--token", tok,
		       "--server-key", srv.key, "--name", name, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
}

/* sync --json, which must succeed; the summary goes to out. */
static struct harness_run sync_ok(const char *db)
{
	struct harness_run r = harness_bs("sync", "--db", db, "--json", NULL);

	harness_expect_code(&r, 0);
	ck_assert_msg(r.errlen == 0, "sync wrote on stderr: %s", r.err);
	return r;
}

static void sync_quiet(const char *db)
{
	struct harness_run r = sync_ok(db);

	harness_run_free(&r);
}

/* ---- looking into files ---- */

/* The digest of the server's records as a device of `scope` may see them:
 * its own scope and the district's (NULL: everything). The server must be
 * stopped. */
static void server_digest(const char *scope, uint8_t out[HASH_BYTES])
{
	char src[HARNESS_PATH], copy[HARNESS_PATH];

	harness_fmt(src, sizeof src, "%s/server.db", srv.dir);
	if (!scope) {
		harness_digest(src, out);
		return;
	}
	harness_path(copy, sizeof copy, "scope.db");
	harness_digest_scope(src, scope, copy, out);
}

/* ---- fixtures ---- */

static void setup(void)
{
	char dir[HARNESS_PATH];

	harness_tmp_setup();
	srv_cert[0] = srv_tlskey[0] = '\0';
	harness_path(dir, sizeof dir, "srv");
	harness_server_init(&srv, dir);
	server_start(0);
}

/* harness_tmp_teardown kills the server if a test left it running. */
static void teardown(void)
{
	harness_tmp_teardown();
}

/* ---- enroll ---- */

START_TEST(enroll_rules)
{
	char a[400], b[400], c[400], tok[HARNESS_HEX_KEY + 1], url[64];
	char bad[HARNESS_HEX_KEY + 1];
	struct harness_run r;

	server_url(url, sizeof url);
	harness_path(a, sizeof a, "a.db");
	harness_path(b, sizeof b, "b.db");
	harness_path(c, sizeof c, "c.db");
	harness_device_init(a, NULL);
	harness_device_init(b, NULL);
	harness_device_init(c, NULL);

	/* sync before enrolling */
	r = harness_bs("sync", "--db", a, NULL);
	harness_expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "not enrolled"));
	harness_run_free(&r);

	/* usage */
	harness_token(&srv, "branch", "b1", tok);
	r = harness_bs("enroll", "--db", a, "--server", url, NULL);
	harness_expect_code(&r, 1);
	harness_run_free(&r);
	r = harness_bs("enroll", "--db", a, "--server", url, "--token", "abc",
		       NULL);
	harness_expect_code(&r, 1);
	harness_run_free(&r);
	r = harness_bs("enroll", "--db", a, "--server", "ftp://x", "--token",
		       tok, NULL);
	harness_expect_code(&r, 1);
	harness_run_free(&r);

	/* a wrong --server-key fails before the token is spent */
	memset(bad, 'a', HARNESS_HEX_KEY);
	bad[HARNESS_HEX_KEY] = '\0';
	r = harness_bs("enroll", "--db", a, "--server", url, "--token", tok,
		       "--server-key", bad, NULL);
	harness_expect_code(&r, 4);
	ck_assert_ptr_nonnull(strstr(r.err, "--server-key"));
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(a,
					"SELECT count(*) FROM bs_settings WHERE"
					" key='role'"),
			 0);

	/* the same token, trusted on first use: the key is shown */
	r = harness_bs("enroll", "--db", a, "--server", url, "--token", tok,
		       "--name", "Village 1 PC", NULL);
	harness_expect_code(&r, 0);
	ck_assert_msg(strstr(r.err, srv.key) != NULL, "key not shown: %s",
		      r.err);
	ck_assert_uint_eq(r.outlen, 0);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(a,
					"SELECT value='branch' FROM bs_settings"
					" WHERE key='role'"),
			 1);
	ck_assert_int_eq(harness_db_int(a, "SELECT value='b1' FROM bs_settings"
					   " WHERE key='scope'"),
			 1);
	ck_assert_int_eq(harness_db_int(a,
					"SELECT value='Test' FROM bs_settings"
					" WHERE key='origin'"),
			 1);
	ck_assert_int_eq(harness_db_int(a, "SELECT value=0 FROM bs_settings"
					   " WHERE key='cursor'"),
			 1);
	ck_assert_int_eq(harness_db_int(a,
					"SELECT length(value) FROM bs_settings"
					" WHERE key='server_pk'"),
			 32);
	{
		char sql[200];

		snprintf(sql, sizeof sql,
			 "SELECT lower(hex(value))='%s' FROM"
			 " bs_settings WHERE key='server_pk'",
			 srv.key);
		ck_assert_int_eq(harness_db_int(a, sql), 1);
	}
	ck_assert_int_eq(harness_db_int(a,
					"SELECT count(*) FROM bs_settings WHERE"
					" key='checkpoint'"),
			 1);
	/* its own enrollment is known as an author, at its log position */
	ck_assert_int_eq(
	    harness_db_int(a, "SELECT count(*) FROM bs_authors WHERE"
			      " role='branch' AND scope='b1' AND"
			      " revoke_idx IS NULL AND enroll_idx > 0"),
	    1);

	/* the token is spent */
	r = harness_bs("enroll", "--db", b, "--server", url, "--token", tok,
		       NULL);
	harness_expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "refused the token"));
	harness_run_free(&r);

	/* a replica enrolls once */
	harness_token(&srv, "branch", "b1", tok);
	r = harness_bs("enroll", "--db", a, "--server", url, "--token", tok,
		       NULL);
	harness_expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "already enrolled"));
	harness_run_free(&r);

	/* the right key given: no trust-on-first-use notice */
	r = harness_bs("enroll", "--db", c, "--server", url, "--token", tok,
		       "--server-key", srv.key, NULL);
	harness_expect_code(&r, 0);
	ck_assert_ptr_null(strstr(r.err, srv.key));
	harness_run_free(&r);
}
END_TEST

/* The enrollment's answer lost on the way (the copy taken before enrolling
 * stands for a device that never saw it): the same device asks again with
 * the same token and gets the same enrollment; no other device can, and a
 * fresh token is not spent on an enrolled device. */
START_TEST(enroll_answer_lost)
{
	char a[400], lost[400], lost2[400], b[400], tok[HARNESS_HEX_KEY + 1];
	char tok2[HARNESS_HEX_KEY + 1], url[64];
	struct harness_run r;
	const char *idx_sql = "SELECT enroll_idx FROM bs_authors WHERE"
			      " role='branch' AND scope='b1'";

	server_url(url, sizeof url);
	harness_path(a, sizeof a, "a.db");
	harness_path(lost, sizeof lost, "lost.db");
	harness_path(lost2, sizeof lost2, "lost2.db");
	harness_path(b, sizeof b, "b.db");
	harness_device_init(a, NULL);
	harness_device_init(b, NULL);
	harness_copy_file(a, lost);
	harness_copy_file(a, lost2);
	harness_token(&srv, "branch", "b1", tok);
	r = harness_bs("enroll", "--db", a, "--server", url, "--token", tok,
		       "--server-key", srv.key, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);

	/* the same key, the same token: the same enrollment again */
	r = harness_bs("enroll", "--db", lost, "--server", url, "--token", tok,
		       "--server-key", srv.key, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(lost, idx_sql),
			 harness_db_int(a, idx_sql));
	ck_assert_int_eq(harness_db_int(lost, "SELECT count(*) FROM bs_settings"
					      " WHERE key='role' AND"
					      " value='branch'"),
			 1);
	/* and it works: the device writes and syncs */
	harness_put(lost, NULL, "members", "name=Li Lei", NULL);
	r = harness_bs("sync", "--db", lost, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);

	/* another device with that token: refused */
	r = harness_bs("enroll", "--db", b, "--server", url, "--token", tok,
		       "--server-key", srv.key, NULL);
	harness_expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "refused the token"));
	harness_run_free(&r);

	/* the enrolled key with a fresh token: refused, the token unspent */
	harness_token(&srv, "branch", "b1", tok2);
	r = harness_bs("enroll", "--db", lost2, "--server", url, "--token",
		       tok2, "--server-key", srv.key, NULL);
	harness_expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "already enrolled"));
	harness_run_free(&r);
	r = harness_bs("enroll", "--db", b, "--server", url, "--token", tok2,
		       "--server-key", srv.key, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
}
END_TEST

/* ---- convergence and scope ---- */

START_TEST(converge_within_scope)
{
	char a1[400], a2[400], b[400], d[400], id[65];
	uint8_t da1[HASH_BYTES], da2[HASH_BYTES], db_[HASH_BYTES];
	uint8_t dd[HASH_BYTES], s1[HASH_BYTES], s2[HASH_BYTES],
	    sall[HASH_BYTES];
	const char *order[] = { a1, a2, b, d, a1, a2, b, d };
	struct harness_run r;
	size_t i;
	long long size;

	device("a1", "branch", "b1", a1, sizeof a1);
	device("a2", "branch", "b1", a2, sizeof a2);
	device("b", "branch", "b2", b, sizeof b);
	device("d", "district", NULL, d, sizeof d);

	/* offline work on every device */
	harness_put(a1, id, "members", "name=Li Lei", "phone=13800000001",
		    NULL);
	harness_put(a1, NULL, "needs", "category=job", "detail=welder",
		    "status=open", NULL);
	harness_put(a1, NULL, "members", "--id", id, "occupation=farmer", NULL);
	harness_put(a2, NULL, "members", "name=Han Meimei", NULL);
	harness_put(a2, NULL, "activities", "title=Spring festival",
		    "held_on=2026-01-28", NULL);
	harness_put(b, NULL, "members", "name=Wang Wu", NULL);
	harness_put(b, NULL, "members", "name=Zhao Liu", "gender=f", NULL);
	harness_put(d, NULL, "trainings", "branch_id=district",
		    "title=Evening school", "held_on=2026-02-01", NULL);
	harness_put(d, NULL, "members", "branch_id=b2", "name=Sun Qi", NULL);

	/* two rounds: everyone pushes, then everyone has everything */
	for (i = 0; i < sizeof order / sizeof order[0]; i++)
		sync_quiet(order[i]);

	/* a second sync is a no-op */
	r = sync_ok(a1);
	ck_assert_int_eq(harness_json_int(r.out, "pushed"), 0);
	ck_assert_int_eq(harness_json_int(r.out, "pulled"), 0);
	ck_assert_int_eq(harness_json_int(r.out, "applied"), 0);
	size = harness_json_int(r.out, "size");
	ck_assert_int_eq(harness_json_int(r.out, "cursor"), size);
	ck_assert_ptr_nonnull(strstr(r.out, "{\"pushed\":0,\"accepted\":0,"
				     "\"duplicates\":0,\"refused\":0,"
				     "\"pulled\":0,\"applied\":0,"
				     "\"conflicts\":0,\"bytes_sent\":"));
	harness_run_free(&r);
	/* 4 device enrollments + the server's, 2 branches, 9 change sets */
	ck_assert_int_eq(size, 5 + 2 + 9);

	/* nothing pending, every push acknowledged with a receipt */
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(harness_db_int(order[i],
						"SELECT count(*) FROM"
						" bs_outbox WHERE acked != 1 OR"
						" push_receipt IS NULL"),
				 0);
		ck_assert_int_eq(harness_db_int(order[i], "SELECT count(*) FROM"
							  " bs_authors"),
				 5);
		ck_assert_int_eq(
		    harness_db_int(order[i],
				   "SELECT value > 0 FROM"
				   " bs_settings WHERE key='last_sync'"),
		    1);
	}

	/* scope: b never saw b1's records, d saw all */
	ck_assert_int_eq(harness_db_int(b, "SELECT count(*) FROM members WHERE"
					   " branch_id='b1'"),
			 0);
	ck_assert_int_eq(harness_db_int(b,
					"SELECT count(*) FROM bs_applied WHERE"
					" scope='b1'"),
			 0);
	ck_assert_int_eq(harness_db_int(b, "SELECT count(*) FROM members"), 3);
	ck_assert_int_eq(harness_db_int(b, "SELECT count(*) FROM trainings"),
			 1);
	ck_assert_int_eq(harness_db_int(a1, "SELECT count(*) FROM members WHERE"
					    " branch_id='b2'"),
			 0);
	ck_assert_int_eq(harness_db_int(d, "SELECT count(*) FROM members"), 5);
	ck_assert_int_eq(harness_db_int(d, "SELECT count(*) FROM branches"), 2);
	ck_assert_int_eq(harness_db_int(a2, "SELECT count(*) FROM members WHERE"
					    " occupation='farmer'"),
			 1);

	harness_server_stop(&srv);
	harness_digest(a1, da1);
	harness_digest(a2, da2);
	harness_digest(b, db_);
	harness_digest(d, dd);
	server_digest(NULL, sall);
	server_digest("b1", s1);
	server_digest("b2", s2);
	harness_digest_eq(dd, sall, "district device and server");
	harness_digest_eq(da1, da2, "the two devices of b1");
	harness_digest_eq(da1, s1, "b1 devices and the server's b1 view");
	harness_digest_eq(db_, s2, "b2 device and the server's b2 view");
	ck_assert(memcmp(da1, sall, HASH_BYTES) != 0);
}
END_TEST

/* ---- conflicts ---- */

START_TEST(concurrent_edit_listed_on_both)
{
	char a1[400], a2[400], id[65];
	uint8_t d1[HASH_BYTES], d2[HASH_BYTES];
	const char *dbs[] = { a1, a2 };
	struct harness_run r;
	size_t i;

	device("a1", "branch", "b1", a1, sizeof a1);
	device("a2", "branch", "b1", a2, sizeof a2);
	harness_put(a1, id, "members", "name=Li Lei", "phone=13800000001",
		    NULL);
	sync_quiet(a1);
	sync_quiet(a2);
	ck_assert_int_eq(harness_db_int(a2, "SELECT count(*) FROM members"), 1);

	/* both edit the phone offline */
	harness_put(a1, NULL, "members", "--id", id, "phone=13900000002", NULL);
	harness_put(a2, NULL, "members", "--id", id, "phone=13700000003", NULL);
	sync_quiet(a1);
	r = sync_ok(a2);
	ck_assert_int_ge(harness_json_int(r.out, "conflicts"), 1);
	harness_run_free(&r);
	r = sync_ok(a1);
	ck_assert_int_ge(harness_json_int(r.out, "conflicts"), 1);
	harness_run_free(&r);

	for (i = 0; i < 2; i++) {
		r = harness_bs("conflicts", "--db", dbs[i], "--json", NULL);
		harness_expect_code(&r, 0);
		ck_assert_msg(strstr(r.out, "\"col\":\"phone\"") &&
			      strstr(r.out, "\"kind\":\"concurrent\"") &&
			      strstr(r.out, "13900000002") &&
			      strstr(r.out, "13700000003"),
			      "conflict not listed: %s", r.out);
		harness_run_free(&r);
	}
	harness_digest(a1, d1);
	harness_digest(a2, d2);
	harness_digest_eq(d1, d2, "after the concurrent edit");
}
END_TEST

/* ---- a server that is down ---- */

START_TEST(server_down_loses_nothing)
{
	char a[400], b[400];
	struct harness_run r;
	int port;

	device("a", "branch", "b1", a, sizeof a);
	device("b", "branch", "b1", b, sizeof b);
	sync_quiet(a);
	port = srv.port;
	harness_server_stop(&srv);

	harness_put(a, NULL, "members", "name=Li Lei", NULL);
	harness_put(a, NULL, "members", "name=Han Meimei", NULL);
	r = harness_bs("sync", "--db", a, "--json", NULL);
	harness_expect_code(&r, 3);
	ck_assert_msg(r.seconds < 15, "took %.1f s", r.seconds);
	ck_assert_msg(strstr(r.err, "server unreachable: 2 change sets wait "
			     "in the outbox; nothing is lost") != NULL,
		      "message: %s", r.err);
	ck_assert_uint_eq(r.outlen, 0);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(a,
					"SELECT count(*) FROM bs_outbox WHERE"
					" acked=0"),
			 2);

	server_start(port);
	ck_assert_int_eq(srv.port, port);
	r = sync_ok(a);
	ck_assert_int_eq(harness_json_int(r.out, "pushed"), 2);
	ck_assert_int_eq(harness_json_int(r.out, "accepted"), 2);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(a,
					"SELECT count(*) FROM bs_outbox WHERE"
					" acked=0"),
			 0);
	sync_quiet(b);
	ck_assert_int_eq(harness_db_int(b, "SELECT count(*) FROM members"), 2);
}
END_TEST

/* ---- clocks ---- */

START_TEST(clock_follows_what_was_seen)
{
	char a1[400], a2[400];
	long long near, far, mine;

	device("a1", "branch", "b1", a1, sizeof a1);
	device("a2", "branch", "b1", a2, sizeof a2);

	/* a1's clock runs 5 minutes ahead: within the drift bound */
	setenv("BRANCHSYNC_TEST_CLOCK_OFFSET_MS", "300000", 1);
	harness_put(a1, NULL, "members", "name=Li Lei", NULL);
	sync_quiet(a1);
	unsetenv("BRANCHSYNC_TEST_CLOCK_OFFSET_MS");
	near = harness_db_int(a1, "SELECT max(hlc) FROM bs_outbox");
	sync_quiet(a2);
	ck_assert_int_gt(harness_db_int(a2,
					"SELECT value FROM bs_settings WHERE"
					" key='hlc'"),
			 near);
	/* so a2's next write is ordered after it */
	harness_put(a2, NULL, "members", "name=Han Meimei", NULL);
	ck_assert_int_gt(harness_db_int(a2, "SELECT max(hlc) FROM bs_outbox"),
			 near);

	/* two hours ahead: merged, but not adopted */
	setenv("BRANCHSYNC_TEST_CLOCK_OFFSET_MS", "7200000", 1);
	harness_put(a1, NULL, "members", "name=Wei Wei", NULL);
	sync_quiet(a1);
	unsetenv("BRANCHSYNC_TEST_CLOCK_OFFSET_MS");
	far = harness_db_int(a1, "SELECT max(hlc) FROM bs_outbox");
	sync_quiet(a2);
	ck_assert_int_eq(harness_db_int(a2, "SELECT count(*) FROM members"), 3);
	mine =
	    harness_db_int(a2, "SELECT value FROM bs_settings WHERE key='hlc'");
	ck_assert_int_gt(mine, near);
	ck_assert_int_lt(mine, far);
}
END_TEST

/* ---- TLS ---- */

/* Runs openssl from PATH; 127 when there is none. */
static int openssl(const char *first, ...)
{
	const char *argv[MAX_ARGS + 2];
	struct harness_run r;
	va_list ap;
	size_t n = 0;
	int code;

	argv[n++] = "env";
	argv[n++] = "openssl";
	argv[n++] = first;
	va_start(ap, first);
	while (n < MAX_ARGS && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	r = harness_run_argv("/usr/bin/env", argv);
	code = r.code;
	harness_run_free(&r);
	return code;
}

/* The SHA-256 of a DER file, as 64 hex digits. */
static void file_sha256_hex(const char *path, char out[HARNESS_HEX_KEY + 1])
{
	uint8_t buf[4096], h[HASH_BYTES];
	FILE *f = fopen(path, "rb");
	size_t n, i;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof buf, f);
	ck_assert(n > 0 && feof(f));
	fclose(f);
	hash_sha256(h, buf, n, NULL, 0);
	for (i = 0; i < HASH_BYTES; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

START_TEST(tls_verified)
{
	char a[400], b[400], ca[400], pub[400], der[400], url[64];
	char tok[HARNESS_HEX_KEY + 1], pin[HARNESS_HEX_KEY + 1],
	    wrong[HARNESS_HEX_KEY + 1];
	struct harness_run r;
	int port = srv.port;

	harness_path(srv_cert, sizeof srv_cert, "cert.pem");
	harness_path(srv_tlskey, sizeof srv_tlskey, "key.pem");
	harness_path(pub, sizeof pub, "pub.pem");
	harness_path(der, sizeof der, "pub.der");
	if (openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
		    "ec_paramgen_curve:P-256", "-nodes", "-keyout", srv_tlskey,
		    "-out", srv_cert, "-days", "2", "-subj", "/CN=127.0.0.1",
		    "-addext", "subjectAltName=IP:127.0.0.1", NULL) != 0) {
		fprintf(stderr, "tls_verified: no usable openssl, skipped\n");
		return;
	}
	ck_assert_int_eq(openssl("x509", "-in", srv_cert, "-pubkey", "-noout",
				 "-out", pub, NULL), 0);
	ck_assert_int_eq(openssl("pkey", "-pubin", "-in", pub, "-outform",
				 "der", "-out", der, NULL), 0);
	file_sha256_hex(der, pin);
	memset(wrong, '0', HARNESS_HEX_KEY);
	wrong[HARNESS_HEX_KEY] = '\0';
	harness_server_stop(&srv);
	server_start(port);
	server_url(url, sizeof url);
	snprintf(ca, sizeof ca, "%s", srv_cert);
	harness_path(a, sizeof a, "a.db");
	harness_path(b, sizeof b, "b.db");
	harness_device_init(a, NULL);
	harness_device_init(b, NULL);

	/* a certificate nobody vouches for: refused before any token goes */
	harness_token(&srv, "branch", "b1", tok);
	r = harness_bs("enroll", "--db", a, "--server", url, "--token", tok,
		       NULL);
	harness_expect_code(&r, 4);
	ck_assert_ptr_nonnull(strstr(r.err, "certificate"));
	harness_run_free(&r);
	r = harness_bs("enroll", "--db", a, "--server", url, "--token", tok,
		       "--cacert", ca, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);

	/* a pinned key that is not the server's */
	harness_token(&srv, "branch", "b1", tok);
	r = harness_bs("enroll", "--db", b, "--server", url, "--token", tok,
		       "--cacert", ca, "--pin", wrong, NULL);
	harness_expect_code(&r, 4);
	harness_run_free(&r);
	r = harness_bs("enroll", "--db", b, "--server", url, "--token", tok,
		       "--cacert", ca, "--pin", pin, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(b, "SELECT value LIKE 'sha256//%' FROM"
					   " bs_settings WHERE key='tls_pin'"),
			 1);

	/* the stored settings serve every later sync */
	harness_put(b, NULL, "members", "name=Li Lei", NULL);
	sync_quiet(b);
	sync_quiet(a);
	ck_assert_int_eq(harness_db_int(a, "SELECT count(*) FROM members"), 1);
}
END_TEST

/* ---- the client judges every author by the log ---- */

/* The device id (64 hex digits) of a replica. */
static void device_id(const char *db, char out[HARNESS_HEX_KEY + 1])
{
	struct harness_run r = harness_bs("status", "--db", db, "--json", NULL);
	const char *p;

	harness_expect_code(&r, 0);
	p = strstr(r.out, "\"device_id\":\"");
	ck_assert_ptr_nonnull(p);
	memcpy(out, p + 13, HARNESS_HEX_KEY);
	out[HARNESS_HEX_KEY] = '\0';
	harness_run_free(&r);
}

/* a2's view of a1's rights is altered locally, as if the log had said
 * otherwise: the page holding a1's change set must then be refused whole. */
static void expect_page_refused(const char *db, const char *needle,
				long long members, long long cursor)
{
	struct harness_run r = harness_bs("sync", "--db", db, NULL);
	char sql[128];

	harness_expect_code(&r, 4);
	ck_assert_msg(strstr(r.err, needle) != NULL, "message: %s", r.err);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(db, "SELECT count(*) FROM members"),
			 members);
	snprintf(sql, sizeof sql, "SELECT value=%lld FROM bs_settings WHERE"
		 " key='cursor'", cursor);
	ck_assert_int_eq(harness_db_int(db, sql), 1);
}

START_TEST(author_rights_checked)
{
	char a1[400], a2[400], key[HARNESS_HEX_KEY + 1], sql[300], cur[96];
	struct harness_run r;
	long long cursor;
	int port;

	device("a1", "branch", "b1", a1, sizeof a1);
	device("a2", "branch", "b1", a2, sizeof a2);
	device_id(a1, key);
	harness_put(a1, NULL, "members", "name=Li Lei", NULL);
	sync_quiet(a1);
	sync_quiet(a2);
	ck_assert_int_eq(harness_db_int(a2, "SELECT count(*) FROM members"), 1);
	cursor = harness_db_int(a2, "SELECT value FROM bs_settings WHERE"
				    " key='cursor'");
	harness_put(a1, NULL, "members", "name=Han Meimei", NULL);
	sync_quiet(a1);

	/* out of its scope */
	snprintf(sql, sizeof sql, "UPDATE bs_authors SET scope='b2' WHERE"
		 " lower(hex(key))='%s'", key);
	harness_db_exec(a2, sql);
	expect_page_refused(a2, "does not allow it", 1, cursor);
	ck_assert_int_eq(harness_db_int(a2,
					"SELECT count(*) FROM bs_evidence WHERE"
					" kind='entry' AND length(a) > 0 AND"
					" length(b) > 0"),
			 1);
	/* revoked before it */
	snprintf(sql, sizeof sql, "UPDATE bs_authors SET scope='b1',"
		 " revoke_idx=enroll_idx+1 WHERE lower(hex(key))='%s'", key);
	harness_db_exec(a2, sql);
	expect_page_refused(a2, "revoked before it", 1, cursor);
	/* enrolled only after it */
	snprintf(sql, sizeof sql, "UPDATE bs_authors SET revoke_idx=NULL,"
		 " enroll_idx=1000 WHERE lower(hex(key))='%s'", key);
	harness_db_exec(a2, sql);
	expect_page_refused(a2, "enrolled only later", 1, cursor);
	/* an auditor may not write */
	snprintf(sql, sizeof sql, "UPDATE bs_authors SET enroll_idx=3,"
		 " role='auditor' WHERE lower(hex(key))='%s'", key);
	harness_db_exec(a2, sql);
	expect_page_refused(a2, "does not allow it", 1, cursor);
	/* a wrong server key: no checkpoint verifies */
	harness_db_exec(a2, "UPDATE bs_authors SET role='branch'");
	harness_db_exec(a2, "UPDATE bs_settings SET value=zeroblob(32) WHERE"
			    " key='server_pk'");
	r = harness_bs("sync", "--db", a2, NULL);
	harness_expect_code(&r, 4);
	ck_assert_ptr_nonnull(strstr(r.err, "not signed by the server's key"));
	harness_run_free(&r);
	snprintf(sql, sizeof sql,
		 "UPDATE bs_settings SET value=x'%s' WHERE"
		 " key='server_pk'",
		 srv.key);
	harness_db_exec(a2, sql);

	/* restored, the same page goes through */
	snprintf(sql, sizeof sql, "UPDATE bs_authors SET enroll_idx=(SELECT"
		 " min(enroll_idx) FROM bs_authors WHERE role='branch') WHERE"
		 " lower(hex(key))='%s'", key);
	harness_db_exec(a2, sql);
	sync_quiet(a2);
	ck_assert_int_eq(harness_db_int(a2, "SELECT count(*) FROM members"), 2);

	/* a real revocation reaches every device; the revoked one is
	 * refused */
	port = srv.port;
	harness_server_stop(&srv);
	r = harness_bsd("revoke", "--data", srv.dir, key, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
	server_start(port);
	sync_quiet(a2);
	snprintf(cur, sizeof cur, "lower(hex(key))='%s'", key);
	snprintf(sql, sizeof sql, "SELECT revoke_idx > enroll_idx FROM"
		 " bs_authors WHERE %s", cur);
	ck_assert_int_eq(harness_db_int(a2, sql), 1);
	r = harness_bs("sync", "--db", a1, NULL);
	harness_expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "revoked"));
	harness_run_free(&r);
}
END_TEST

/* ---- refusals ---- */

START_TEST(unlogged_refusal_stops)
{
	char a[400];
	struct harness_run r;

	device("a", "branch", "b1", a, sizeof a);
	harness_put(a, NULL, "members", "name=Li Lei", NULL);
	harness_put(a, NULL, "members", "name=Han Meimei", NULL);
	/* lose the first change set: the second leaves a gap in the chain */
	harness_db_exec(a, "DELETE FROM bs_outbox WHERE seq=1");
	r = harness_bs("sync", "--db", a, "--json", NULL);
	harness_expect_code(&r, 2);
	ck_assert_msg(strstr(r.err, "without logging it") &&
		      strstr(r.err, "chain gap"), "message: %s", r.err);
	ck_assert_uint_eq(r.outlen, 0);
	harness_run_free(&r);
	ck_assert_int_eq(
	    harness_db_int(a, "SELECT count(*) FROM bs_outbox WHERE"
			      " acked=0 AND seq=2 AND push_receipt IS NULL"),
	    1);
	/* nothing was pulled */
	ck_assert_int_eq(harness_db_int(a, "SELECT value FROM bs_settings WHERE"
					   " key='cursor'"),
			 0);
}
END_TEST

/* A PC whose clock is a year ahead does not win forever: the district's
 * later edit of the value it saw replaces it on every replica, and the
 * wrong clock does not leak into the district laptop's other writes. */
START_TEST(future_clock_does_not_win_forever)
{
	char a1[400], d[400], id[80];
	long long stamp;

	device("a1", "branch", "b1", a1, sizeof a1);
	device("d", "district", NULL, d, sizeof d);
	setenv("BRANCHSYNC_TEST_CLOCK_OFFSET_MS", "31536000000", 1);
	harness_put(a1, id, "members", "name=Future", NULL);
	sync_quiet(a1);
	unsetenv("BRANCHSYNC_TEST_CLOCK_OFFSET_MS");
	sync_quiet(d);
	harness_put(d, NULL, "members", "--id", id, "name=Now", NULL);
	harness_put(d, NULL, "needs", "branch_id=b1", "category=job", NULL);
	sync_quiet(d);
	sync_quiet(a1);
	ck_assert_int_eq(harness_db_int(a1,
					"SELECT count(*) FROM members WHERE "
					"name='Now'"),
			 1);
	ck_assert_int_eq(harness_db_int(d, "SELECT count(*) FROM members WHERE "
					   "name='Now'"),
			 1);
	/* the unrelated write carries the laptop's own time (within a day) */
	stamp = harness_db_int(
	    d, "SELECT hlc FROM bs_outbox ORDER BY seq DESC LIMIT 1");
	ck_assert_int_lt(stamp >> 16, (long long)time(NULL) * 1000 + 86400000LL);
}
END_TEST

/* The number of requests of a sync of one new set (which needs no pull). */
static long long sync_one(const char *db, const char *name)
{
	struct harness_run r;
	long long n;

	harness_put(db, NULL, "members", name, NULL);
	r = sync_ok(db);
	ck_assert_int_eq(harness_json_int(r.out, "accepted"), 1);
	n = harness_json_int(r.out, "requests");
	harness_run_free(&r);
	return n;
}

/* The challenge a sync keeps for the next one saves a round trip, and,
 * bound to the device by the server, lets the request leave the device key
 * out; a stale, forged or forgotten one (a restarted server) costs one
 * retry, never the sync, in either form. */
START_TEST(kept_challenge_stale_or_fresh)
{
	char a[400];
	int port;

	device("a", "branch", "b1", a, sizeof a);
	ck_assert_int_ge(sync_one(a, "name=Wang"), 2); /* asks for one */
	ck_assert_int_eq(harness_db_int(a, "SELECT length(value) FROM "
					"bs_settings WHERE key='challenge'"), 16);
	ck_assert_int_eq(harness_db_int(a, "SELECT value FROM bs_settings"
					" WHERE key='challenge_bound'"), 1);
	/* a kept, fresh, bound challenge: the next sync asks for none and
	 * its short form is accepted */
	ck_assert_int_eq(sync_one(a, "name=Li"), 1);
	/* a challenge the server never issued, taken for bound (short form)
	 * or not (long form): refused, replaced, done */
	harness_db_exec(a, "UPDATE bs_settings SET value=randomblob(16) "
			   "WHERE key='challenge'");
	ck_assert_int_eq(sync_one(a, "name=Zhao"), 2);
	harness_db_exec(a, "UPDATE bs_settings SET value=randomblob(16) "
			   "WHERE key='challenge'");
	harness_db_exec(a, "DELETE FROM bs_settings WHERE"
			   " key='challenge_bound'");
	ck_assert_int_eq(sync_one(a, "name=Sun"), 2);
	ck_assert_int_eq(harness_db_int(a, "SELECT value FROM bs_settings"
					" WHERE key='challenge_bound'"), 1);
	/* a 32-byte challenge kept by an older branchsync: not used */
	harness_db_exec(a, "UPDATE bs_settings SET value=randomblob(32) "
			   "WHERE key='challenge'");
	ck_assert_int_eq(sync_one(a, "name=Qian"), 2);
	/* a restarted server forgets its challenges: the bound one kept is
	 * refused and the sync goes on */
	port = srv.port;
	harness_server_stop(&srv);
	server_start(port);
	ck_assert_int_eq(sync_one(a, "name=Zhou"), 2);
	ck_assert_int_eq(harness_db_int(a, "SELECT count(*) FROM bs_outbox "
					"WHERE acked=0"), 0);
}
END_TEST

/* A sync whose push was all the log got since the cursor is one request:
 * the push answer proves the checkpoint and nothing is left to pull. When
 * another device's set came in between, the pull still happens. */
START_TEST(push_only_sync_is_one_request)
{
	char a[400], b[400], id[65];
	struct harness_run r;

	device("a", "branch", "b1", a, sizeof a);
	device("b", "branch", "b1", b, sizeof b);
	sync_quiet(a);
	sync_quiet(b);
	harness_put(a, id, "members", "name=Wang", NULL);
	r = sync_ok(a);
	ck_assert_int_eq(harness_json_int(r.out, "accepted"), 1);
	ck_assert_int_eq(harness_json_int(r.out, "requests"), 1);
	ck_assert_int_eq(harness_json_int(r.out, "cursor"),
			 harness_json_int(r.out, "size"));
	harness_run_free(&r);
	/* b's set lands between a's cursor and a's next push */
	harness_put(b, NULL, "members", "name=Li", NULL);
	sync_quiet(b);
	harness_put(a, NULL, "members", "--id", id, "phone=13800000000",
		    NULL);
	r = sync_ok(a);
	ck_assert_int_eq(harness_json_int(r.out, "accepted"), 1);
	ck_assert_int_eq(harness_json_int(r.out, "requests"), 2);
	ck_assert_int_eq(harness_json_int(r.out, "pulled"), 1);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(a, "SELECT count(*) FROM members"
					" WHERE name='Li'"), 1);
	/* and b gets a's edit in its turn */
	sync_quiet(b);
	ck_assert_int_eq(harness_db_int(b, "SELECT count(*) FROM members"
					" WHERE phone='13800000000'"), 1);
}
END_TEST

/* A replica restored from a backup writes a second set 2: the server
 * refuses it (an equivocation, logged), so its chain head there is still
 * the first set 2. The next set must not be sent compact on the strength
 * of that logged refusal: it goes whole and gets its verdict (a fork),
 * exit 2, instead of a receipt for bytes it never signed. */
START_TEST(restored_replica_is_not_stuck)
{
	char a[400], backup[400], side[420];
	struct harness_run r;

	device("a", "branch", "b1", a, sizeof a);
	harness_put(a, NULL, "members", "name=Wang", NULL);
	sync_quiet(a);
	harness_path(backup, sizeof backup, "a-backup.db");
	harness_copy_file(a, backup);
	harness_put(a, NULL, "members", "name=Li", NULL);
	sync_quiet(a);
	/* the PC's disk is restored from last week's copy */
	harness_copy_file(backup, a);
	snprintf(side, sizeof side, "%s-wal", a);
	unlink(side);
	snprintf(side, sizeof side, "%s-shm", a);
	unlink(side);
	harness_put(a, NULL, "members", "name=Zhao", NULL);
	r = harness_bs("sync", "--db", a, NULL);
	harness_expect_code(&r, 2);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(a, "SELECT acked FROM bs_outbox"
					" WHERE seq=2"), 2);
	harness_put(a, NULL, "members", "name=Qian", NULL);
	r = harness_bs("sync", "--db", a, NULL);
	harness_expect_code(&r, 2);
	ck_assert_msg(strstr(r.err, "receipt") == NULL, "message: %s", r.err);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(a, "SELECT acked FROM bs_outbox"
					" WHERE seq=3"), 2);
}
END_TEST

/* ---- large syncs: batches, pages, and a sync killed midway ---- */

/* A CSV of n members of branch b1 with long names (about 150 bytes a
 * row), so that a few thousand rows pass the 1 MiB batch and page sizes. */
static void big_csv(const char *path, int n, const char *tag)
{
	FILE *f = fopen(path, "w");
	int i;

	ck_assert_ptr_nonnull(f);
	fputs("name,occupation\n", f);
	for (i = 0; i < n; i++)
		fprintf(
		    f,
		    "%s member %06d of a long list,occupation %06d "
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
		    tag, i, i);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(large_sync_resumes)
{
	long long sets;
	char a[400], b[400], csv[400];
	uint8_t da[HASH_BYTES], dbb[HASH_BYTES];
	struct harness_run r;
	const char *bin = getenv("BRANCHSYNC_BIN");
	int status, k;
	pid_t pid;

	device("a", "branch", "b1", a, sizeof a);
	device("b", "branch", "b1", b, sizeof b);
	/* four change sets of ~1 MiB: several push batches */
	for (k = 0; k < 4; k++) {
		char tag[8];

		snprintf(tag, sizeof tag, "s%d", k);
		harness_path(csv, sizeof csv, "big.csv");
		big_csv(csv, 7000, tag);
		harness_import(a, "members", csv);
	}
	/* import cuts big imports into several sets: at least one each */
	sets =
	    harness_db_int(a, "SELECT count(*) FROM bs_outbox WHERE acked=0");
	ck_assert_int_ge(sets, 4);
	r = sync_ok(a);
	ck_assert_int_eq(harness_json_int(r.out, "pushed"), sets);
	ck_assert_int_eq(harness_json_int(r.out, "accepted"), sets);
	/* deflated on the wire: far less than the ~4 MiB of change sets */
	ck_assert_int_lt(harness_json_int(r.out, "bytes_sent"), 3 << 20);
	harness_run_free(&r);

	/* b pulls several pages; cut it at some point, then resume */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execl(bin, "branchsync", "sync", "--db", b, (char *)NULL);
		_exit(127);
	}
	usleep(150000);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	r = sync_ok(b);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(b, "SELECT count(*) FROM members"),
			 28000);
	/* a's sets and the server's own branch row */
	ck_assert_int_eq(harness_db_int(b,
					"SELECT count(*) FROM bs_applied WHERE"
					" scope='b1' AND seq > 0"),
			 sets + 1);
	r = sync_ok(b);
	ck_assert_int_eq(harness_json_int(r.out, "pulled"), 0);
	harness_run_free(&r);
	harness_digest(a, da);
	harness_digest(b, dbb);
	harness_digest_eq(da, dbb, "after a resumed sync");
}
END_TEST

/* ---- a server that forks its log ---- */

/* The size of the checkpoint stored in column `col` of evidence row n. */
static uint64_t evidence_size(const char *db_path, int n, const char *col)
{
	sqlite3 *db = harness_db_open(db_path, 1);
	sqlite3_stmt *st = NULL;
	struct checkpoint cp;
	char sql[128];

	snprintf(sql, sizeof sql, "SELECT %s FROM bs_evidence WHERE"
		 " kind='fork' ORDER BY id LIMIT 1 OFFSET %d", col, n);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(checkpoint_decode(sqlite3_column_blob(st, 0),
					   (size_t)sqlite3_column_bytes(st, 0),
					   &cp), BS_OK);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return cp.size;
}

START_TEST(fork_is_caught)
{
	char a[400], c[400], backup[400];
	struct harness_run r;
	long long s0, s1;
	int port, k;

	device("a", "branch", "b1", a, sizeof a);
	device("c", "branch", "b2", c, sizeof c);
	sync_quiet(a);
	sync_quiet(c);
	port = srv.port;

	/* the district keeps a copy of its data at this point */
	harness_server_stop(&srv);
	harness_path(backup, sizeof backup, "backup");
	harness_copy_dir(srv.dir, backup);
	server_start(port);
	r = sync_ok(a);
	s0 = harness_json_int(r.out, "size");
	harness_run_free(&r);

	/* a sees the log grow */
	harness_put(a, NULL, "members", "name=Li Lei", NULL);
	harness_put(a, NULL, "members", "name=Han Meimei", NULL);
	harness_put(a, NULL, "members", "name=Wei Wei", NULL);
	r = sync_ok(a);
	s1 = harness_json_int(r.out, "size");
	harness_run_free(&r);
	ck_assert_int_eq(s1, s0 + 3);

	/* then the server goes back to its copy and writes other history */
	harness_server_stop(&srv);
	harness_copy_dir(backup, srv.dir);
	server_start(port);
	harness_put(c, NULL, "members", "name=Wang Wu", NULL);
	sync_quiet(c);

	/* a shorter log than a saw: caught */
	r = harness_bs("sync", "--db", a, NULL);
	harness_expect_code(&r, 4);
	ck_assert_msg(strstr(r.err, "forked") && strstr(r.err, "bs_evidence"),
		      "message: %s", r.err);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(a,
					"SELECT count(*) FROM bs_evidence WHERE"
					" kind='fork'"),
			 1);
	ck_assert_uint_eq(evidence_size(a, 0, "a"), (uint64_t)s1);
	ck_assert_uint_eq(evidence_size(a, 0, "b"), (uint64_t)s0 + 1);

	/* a longer one that does not extend it: caught by the proof */
	for (k = 0; k < 3; k++)
		harness_put(c, NULL, "members", "name=Zhao Liu", NULL);
	sync_quiet(c);
	r = harness_bs("sync", "--db", a, NULL);
	harness_expect_code(&r, 4);
	ck_assert_ptr_nonnull(strstr(r.err, "consistency proof fails"));
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(a,
					"SELECT count(*) FROM bs_evidence WHERE"
					" kind='fork'"),
			 2);
	ck_assert_uint_eq(evidence_size(a, 1, "a"), (uint64_t)s1);
	ck_assert_uint_eq(evidence_size(a, 1, "b"), (uint64_t)s0 + 4);

	/* a keeps the checkpoint it verified, and refuses to move on */
	{
		char sql[128];

		snprintf(sql, sizeof sql, "SELECT value=%lld FROM bs_settings"
			 " WHERE key='cursor'", s1);
		ck_assert_int_eq(harness_db_int(a, sql), 1);
	}
	r = harness_bs("sync", "--db", a, NULL);
	harness_expect_code(&r, 4);
	harness_run_free(&r);

	/* with a change to push: the server cannot name the predecessor of
	 * a's compact set (it lost a's sets), answers 409, gets it whole,
	 * and a catches the fork in that push's answer */
	harness_put(a, NULL, "members", "name=Qian Qi", NULL);
	r = harness_bs("sync", "--db", a, NULL);
	harness_expect_code(&r, 4);
	ck_assert_msg(strstr(r.err, "consistency proof fails") != NULL,
		      "message: %s", r.err);
	harness_run_free(&r);
	ck_assert_int_eq(harness_db_int(a, "SELECT count(*) FROM bs_outbox"
					" WHERE acked=0"), 1);
}
END_TEST

static Suite *sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("sync");

	tcase_add_unchecked_fixture(tc, harness_root_setup,
				    harness_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, enroll_rules);
	tcase_add_test(tc, enroll_answer_lost);
	tcase_add_test(tc, converge_within_scope);
	tcase_add_test(tc, concurrent_edit_listed_on_both);
	tcase_add_test(tc, server_down_loses_nothing);
	tcase_add_test(tc, author_rights_checked);
	tcase_add_test(tc, unlogged_refusal_stops);
	tcase_add_test(tc, tls_verified);
	tcase_add_test(tc, clock_follows_what_was_seen);
	tcase_add_test(tc, future_clock_does_not_win_forever);
	tcase_add_test(tc, kept_challenge_stale_or_fresh);
	tcase_add_test(tc, push_only_sync_is_one_request);
	tcase_add_test(tc, restored_replica_is_not_stuck);
	tcase_add_test(tc, large_sync_resumes);
	tcase_add_test(tc, fork_is_caught);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sync_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
