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
#define _GNU_SOURCE /* nftw's FTW_DEPTH, FTW_PHYS */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "checkpoint.h"
#include "digest.h"
#include "err.h"
#include "schema.h"
#include "sign.h"

#define MAX_ARGS 32
#define HEX_KEY 64

/* What one run of a binary produced. */
struct run {
	int code;            /* exit code, or 128 + signal */
	char *out, *err;     /* NUL-terminated, malloc'd */
	size_t outlen, errlen;
	double seconds;
};

static char root[256];       /* made by the parent, removed by it */
static char tmp[320];        /* this test's directory */
static char srv_dir[400];
static char srv_key[HEX_KEY + 1];
static pid_t srv_pid = -1;
static int srv_port;
static char srv_cert[400], srv_tlskey[400]; /* serve TLS when set */

/* ---- processes ---- */

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}

static void append(char **buf, size_t *len, const char *p, size_t n)
{
	*buf = realloc(*buf, *len + n + 1);
	ck_assert_ptr_nonnull(*buf);
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs bin with argv, collecting stdout and stderr; no stdin, no
 * controlling terminal (so nothing waits for a passphrase). */
static struct run run_argv(const char *bin, const char *const *argv)
{
	int outp[2], errp[2], status = 0;
	struct run r;
	double t0 = now_s();
	pid_t pid;

	memset(&r, 0, sizeof r);
	append(&r.out, &r.outlen, "", 0);
	append(&r.err, &r.errlen, "", 0);
	ck_assert_int_eq(pipe(outp), 0);
	ck_assert_int_eq(pipe(errp), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		setsid();
		dup2(devnull, 0);
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		close(outp[0]);
		close(errp[0]);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(outp[1]);
	close(errp[1]);
	while (outp[0] >= 0 || errp[0] >= 0) {
		struct pollfd fds[2] = {
			{ outp[0], POLLIN, 0 }, { errp[0], POLLIN, 0 },
		};
		char buf[65536];
		int i;

		if (poll(fds, 2, -1) < 0) {
			ck_assert_int_eq(errno, EINTR);
			continue;
		}
		for (i = 0; i < 2; i++) {
			int *fd = i ? &errp[0] : &outp[0];
			ssize_t n;

			if (*fd < 0 || !fds[i].revents)
				continue;
			n = read(*fd, buf, sizeof buf);
			if (n <= 0) {
				close(*fd);
				*fd = -1;
			} else if (i == 0) {
				append(&r.out, &r.outlen, buf, (size_t)n);
			} else {
				append(&r.err, &r.errlen, buf, (size_t)n);
			}
		}
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	r.code = WIFEXITED(status) ? WEXITSTATUS(status)
				   : 128 + WTERMSIG(status);
	r.seconds = now_s() - t0;
	return r;
}

static struct run run_va(const char *envname, const char *name,
			 const char *first, va_list ap)
{
	const char *bin = getenv(envname), *argv[MAX_ARGS + 2];
	size_t n = 0;

	ck_assert_msg(bin != NULL, "%s is not set", envname);
	argv[n++] = name;
	argv[n++] = first;
	while (n < MAX_ARGS && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	argv[n] = NULL;
	return run_argv(bin, argv);
}

/* bs("sync", "--db", db, NULL) */
static struct run bs(const char *first, ...)
{
	struct run r;
	va_list ap;

	va_start(ap, first);
	r = run_va("BRANCHSYNC_BIN", "branchsync", first, ap);
	va_end(ap);
	return r;
}

static struct run bsd(const char *first, ...)
{
	struct run r;
	va_list ap;

	va_start(ap, first);
	r = run_va("BRANCHSYNCD_BIN", "branchsyncd", first, ap);
	va_end(ap);
	return r;
}

static void expect_code(const struct run *r, int code)
{
	ck_assert_msg(r->code == code, "exit %d, wanted %d; stderr: %s",
		      r->code, code, r->err);
}

/* The first line of stdout, without its newline, into out. */
static void first_line(const struct run *r, char *out, size_t n)
{
	size_t len = strcspn(r->out, "\n");

	ck_assert_uint_lt(len, n);
	memcpy(out, r->out, len);
	out[len] = '\0';
}

/* ---- the server ---- */

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmp, name);
}

static void server_init(void)
{
	struct run r;

	snprintf(srv_dir, sizeof srv_dir, "%s/srv", tmp);
	r = bsd("init", "--data", srv_dir, "--district", "Test",
		"--no-passphrase", NULL);
	expect_code(&r, 0);
	first_line(&r, srv_key, sizeof srv_key);
	ck_assert_uint_eq(strlen(srv_key), HEX_KEY);
	run_free(&r);
	r = bsd("branch", "add", "--data", srv_dir, "--id", "b1", "--name",
		"Village 1", "--kind", "village", NULL);
	expect_code(&r, 0);
	run_free(&r);
	r = bsd("branch", "add", "--data", srv_dir, "--id", "b2", "--name",
		"Village 2", "--kind", "village", NULL);
	expect_code(&r, 0);
	run_free(&r);
}

/* Starts serving on `port` (0: a random free one) and waits for the port
 * file. Random ports are drawn below the kernel's ephemeral range, so that
 * while this server is stopped no other test's server (port 0) takes its
 * port and answers in its place. A port just freed may still be taken for
 * a moment: retried. */
static void server_start(int port)
{
	char pf[400], listen[64], logf[400];
	int tries;

	path_in(pf, sizeof pf, "port");
	path_in(logf, sizeof logf, "server.log");
	for (tries = 0; tries < 50; tries++) {
		const char *bin = getenv("BRANCHSYNCD_BIN");
		int p = port ? port : 20000 + (int)(random() % 12000);
		double t0 = now_s();
		FILE *f;
		int status;

		snprintf(listen, sizeof listen, "127.0.0.1:%d", p);
		unlink(pf);
		srv_pid = fork();
		ck_assert_int_ge(srv_pid, 0);
		if (srv_pid == 0) {
			int fd =
			    open(logf, O_WRONLY | O_CREAT | O_APPEND, 0600);

			/* never outlive the test, whatever happens to it */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			dup2(fd, 1);
			dup2(fd, 2);
			if (srv_cert[0])
				execl(bin, "branchsyncd", "serve", "--data",
				      srv_dir, "--listen", listen,
				      "--port-file", pf, "--quiet",
				      "--tls-cert", srv_cert, "--tls-key",
				      srv_tlskey, (char *)NULL);
			else
				execl(bin, "branchsyncd", "serve", "--data",
				      srv_dir, "--listen", listen,
				      "--port-file", pf, "--quiet",
				      (char *)NULL);
			_exit(127);
		}
		while (now_s() - t0 < 10) {
			if ((f = fopen(pf, "r")) != NULL) {
				int ok = fscanf(f, "%d", &srv_port) == 1;

				fclose(f);
				if (ok && srv_port > 0)
					return;
			}
			if (waitpid(srv_pid, &status, WNOHANG) == srv_pid)
				break;
			usleep(20000);
		}
		kill(srv_pid, SIGKILL);
		waitpid(srv_pid, &status, 0);
		srv_pid = -1;
		usleep(200000);
	}
	ck_abort_msg("branchsyncd did not start (see %s)", logf);
}

static void server_stop(void)
{
	int status = 0;

	ck_assert_int_gt(srv_pid, 0);
	ck_assert_int_eq(kill(srv_pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(srv_pid, &status, 0), srv_pid);
	srv_pid = -1;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "branchsyncd ended with status %d", status);
}

static void server_url(char *out, size_t n)
{
	snprintf(out, n, "%s://127.0.0.1:%d", srv_cert[0] ? "https" : "http",
		 srv_port);
}

/* A fresh token on stdout of 'branchsyncd token'. */
static void token(const char *role, const char *branch, char out[HEX_KEY + 1])
{
	struct run r = branch
		? bsd("token", "--data", srv_dir, "--role", role, "--branch",
		      branch, NULL)
		: bsd("token", "--data", srv_dir, "--role", role, NULL);

	expect_code(&r, 0);
	first_line(&r, out, HEX_KEY + 1);
	ck_assert_uint_eq(strlen(out), HEX_KEY);
	run_free(&r);
}

/* ---- devices ---- */

static void device_init(const char *db)
{
	struct run r = bs("init", "--db", db, "--no-passphrase", NULL);

	expect_code(&r, 0);
	run_free(&r);
}

/* Makes replica tmp/NAME.db enrolled with role (and branch); its path
 * goes to out. */
static void device(const char *name, const char *role, const char *branch,
		   char *out, size_t n)
{
	char tok[HEX_KEY + 1], url[64];
	struct run r;

	snprintf(out, n, "%s/%s.db", tmp, name);
	device_init(out);
	token(role, branch, tok);
	server_url(url, sizeof url);
	r = bs("enroll", "--db", out, "--server", url, "--token", tok,
	       "--server-key", srv_key, "--name", name, NULL);
	expect_code(&r, 0);
	run_free(&r);
}

/* put; returns the new record's id in id (if not NULL). */
static void put(const char *db, char *id, const char *table, ...)
{
	const char *argv[MAX_ARGS + 2];
	const char *bin = getenv("BRANCHSYNC_BIN");
	struct run r;
	va_list ap;
	size_t n = 0;

	argv[n++] = "branchsync";
	argv[n++] = "put";
	argv[n++] = "--db";
	argv[n++] = db;
	argv[n++] = table;
	va_start(ap, table);
	while (n < MAX_ARGS && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	r = run_argv(bin, argv);
	expect_code(&r, 0);
	if (id)
		first_line(&r, id, 65);
	run_free(&r);
}

/* The value of "key": in a one-line JSON object (numbers only). */
static long long json_int(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof pat, "\"%s\":", key);
	p = strstr(json, pat);
	ck_assert_msg(p != NULL, "no %s in %s", key, json);
	return strtoll(p + strlen(pat), NULL, 10);
}

/* sync --json, which must succeed; the summary goes to out. */
static struct run sync_ok(const char *db)
{
	struct run r = bs("sync", "--db", db, "--json", NULL);

	expect_code(&r, 0);
	ck_assert_msg(r.errlen == 0, "sync wrote on stderr: %s", r.err);
	return r;
}

static void sync_quiet(const char *db)
{
	struct run r = sync_ok(db);

	run_free(&r);
}

/* ---- looking into files ---- */

static sqlite3 *db_open(const char *path)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
					 NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static long long db_int(const char *path, const char *sql)
{
	sqlite3 *db = db_open(path);
	sqlite3_stmt *st = NULL;
	long long v;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
		      "%s: %s", sql, sqlite3_errmsg(db));
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void digest_of(const char *path, uint8_t out[HASH_BYTES])
{
	sqlite3 *db = db_open(path);
	struct err e;

	err_init(&e);
	ck_assert_msg(digest_compute(db, out, &e) == 0, "%s", e.msg);
	sqlite3_close(db);
}

/* The digest of the server's records as a device of `scope` may see them:
 * its own scope and the district's (NULL: everything). The server must be
 * stopped. */
static void server_digest(const char *scope, uint8_t out[HASH_BYTES])
{
	char src[450], copy[450], sql[600];
	sqlite3 *db;
	size_t i;

	snprintf(src, sizeof src, "%s/server.db", srv_dir);
	if (!scope) {
		digest_of(src, out);
		return;
	}
	snprintf(copy, sizeof copy, "%s/scope-%s.db", tmp, scope);
	unlink(copy);
	db = db_open(src);
	snprintf(sql, sizeof sql, "VACUUM INTO '%s'", copy);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	db = db_open(copy);
	for (i = 0; i < schema_table_count(); i++) {
		snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE branch_id"
			 " NOT IN ('%s', 'district')", schema_table_at(i)->name,
			 scope);
		ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL),
				 SQLITE_OK);
	}
	sqlite3_close(db);
	digest_of(copy, out);
}

static void digest_eq(const uint8_t a[HASH_BYTES], const uint8_t b[HASH_BYTES],
		      const char *what)
{
	ck_assert_msg(memcmp(a, b, HASH_BYTES) == 0, "digests differ: %s",
		      what);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	ck_assert_int_ge(in, 0);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(out, 0);
	while ((n = read(in, buf, sizeof buf)) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	ck_assert_int_eq(close(out), 0);
}

/* Copies the regular files of directory `from` into `to` (made if need
 * be), replacing what `to` held. */
static void copy_dir(const char *from, const char *to)
{
	char a[600], b[600];
	struct dirent *de;
	DIR *d;

	mkdir(to, 0700);
	d = opendir(to);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(b, sizeof b, "%s/%s", to, de->d_name);
		ck_assert_int_eq(unlink(b), 0);
	}
	closedir(d);
	d = opendir(from);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		snprintf(a, sizeof a, "%s/%s", from, de->d_name);
		if (stat(a, &st) || !S_ISREG(st.st_mode))
			continue;
		snprintf(b, sizeof b, "%s/%s", to, de->d_name);
		copy_file(a, b);
	}
	closedir(d);
}

/* ---- fixtures ---- */

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_tree(const char *p)
{
	if (p[0])
		nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Unchecked (in the parent): one root for every test, removed even when a
 * test dies before its own teardown. */
static void root_setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(root, sizeof root, "%s/bs-sync-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(root))
		root[0] = '\0';
}

static void root_teardown(void)
{
	rm_tree(root);
}

static void setup(void)
{
	ck_assert_msg(root[0] != '\0', "no temporary directory");
	snprintf(tmp, sizeof tmp, "%s/t-XXXXXX", root);
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	unsetenv("BRANCHSYNC_DB");
	unsetenv("BRANCHSYNC_PASSPHRASE");
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	srv_pid = -1;
	srv_cert[0] = srv_tlskey[0] = '\0';
	server_init();
	server_start(0);
}

static void teardown(void)
{
	if (srv_pid > 0) {
		kill(srv_pid, SIGKILL);
		waitpid(srv_pid, NULL, 0);
		srv_pid = -1;
	}
	rm_tree(tmp);
}

/* ---- enroll ---- */

START_TEST(enroll_rules)
{
	char a[400], b[400], c[400], tok[HEX_KEY + 1], url[64];
	char bad[HEX_KEY + 1];
	struct run r;

	server_url(url, sizeof url);
	path_in(a, sizeof a, "a.db");
	path_in(b, sizeof b, "b.db");
	path_in(c, sizeof c, "c.db");
	device_init(a);
	device_init(b);
	device_init(c);

	/* sync before enrolling */
	r = bs("sync", "--db", a, NULL);
	expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "not enrolled"));
	run_free(&r);

	/* usage */
	token("branch", "b1", tok);
	r = bs("enroll", "--db", a, "--server", url, NULL);
	expect_code(&r, 1);
	run_free(&r);
	r = bs("enroll", "--db", a, "--server", url, "--token", "abc", NULL);
	expect_code(&r, 1);
	run_free(&r);
	r = bs("enroll", "--db", a, "--server", "ftp://x", "--token", tok,
	       NULL);
	expect_code(&r, 1);
	run_free(&r);

	/* a wrong --server-key fails before the token is spent */
	memset(bad, 'a', HEX_KEY);
	bad[HEX_KEY] = '\0';
	r = bs("enroll", "--db", a, "--server", url, "--token", tok,
	       "--server-key", bad, NULL);
	expect_code(&r, 4);
	ck_assert_ptr_nonnull(strstr(r.err, "--server-key"));
	run_free(&r);
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM bs_settings WHERE"
				" key='role'"), 0);

	/* the same token, trusted on first use: the key is shown */
	r = bs("enroll", "--db", a, "--server", url, "--token", tok, "--name",
	       "Village 1 PC", NULL);
	expect_code(&r, 0);
	ck_assert_msg(strstr(r.err, srv_key) != NULL, "key not shown: %s",
		      r.err);
	ck_assert_uint_eq(r.outlen, 0);
	run_free(&r);
	ck_assert_int_eq(db_int(a, "SELECT value='branch' FROM bs_settings"
				" WHERE key='role'"), 1);
	ck_assert_int_eq(db_int(a, "SELECT value='b1' FROM bs_settings"
				" WHERE key='scope'"), 1);
	ck_assert_int_eq(db_int(a, "SELECT value='Test' FROM bs_settings"
				" WHERE key='origin'"), 1);
	ck_assert_int_eq(db_int(a, "SELECT value=0 FROM bs_settings"
				" WHERE key='cursor'"), 1);
	ck_assert_int_eq(db_int(a, "SELECT length(value) FROM bs_settings"
				" WHERE key='server_pk'"), 32);
	{
		char sql[200];

		snprintf(sql, sizeof sql, "SELECT lower(hex(value))='%s' FROM"
			 " bs_settings WHERE key='server_pk'", srv_key);
		ck_assert_int_eq(db_int(a, sql), 1);
	}
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM bs_settings WHERE"
				" key='checkpoint'"), 1);
	/* its own enrollment is known as an author, at its log position */
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM bs_authors WHERE"
				" role='branch' AND scope='b1' AND"
				" revoke_idx IS NULL AND enroll_idx > 0"), 1);

	/* the token is spent */
	r = bs("enroll", "--db", b, "--server", url, "--token", tok, NULL);
	expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "refused the token"));
	run_free(&r);

	/* a replica enrolls once */
	token("branch", "b1", tok);
	r = bs("enroll", "--db", a, "--server", url, "--token", tok, NULL);
	expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "already enrolled"));
	run_free(&r);

	/* the right key given: no trust-on-first-use notice */
	r = bs("enroll", "--db", c, "--server", url, "--token", tok,
	       "--server-key", srv_key, NULL);
	expect_code(&r, 0);
	ck_assert_ptr_null(strstr(r.err, srv_key));
	run_free(&r);
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
	struct run r;
	size_t i;
	long long size;

	device("a1", "branch", "b1", a1, sizeof a1);
	device("a2", "branch", "b1", a2, sizeof a2);
	device("b", "branch", "b2", b, sizeof b);
	device("d", "district", NULL, d, sizeof d);

	/* offline work on every device */
	put(a1, id, "members", "name=Li Lei", "phone=13800000001", NULL);
	put(a1, NULL, "needs", "category=job", "detail=welder",
	    "status=open", NULL);
	put(a1, NULL, "members", "--id", id, "occupation=farmer", NULL);
	put(a2, NULL, "members", "name=Han Meimei", NULL);
	put(a2, NULL, "activities", "title=Spring festival",
	    "held_on=2026-01-28", NULL);
	put(b, NULL, "members", "name=Wang Wu", NULL);
	put(b, NULL, "members", "name=Zhao Liu", "gender=f", NULL);
	put(d, NULL, "trainings", "branch_id=district", "title=Evening school",
	    "held_on=2026-02-01", NULL);
	put(d, NULL, "members", "branch_id=b2", "name=Sun Qi", NULL);

	/* two rounds: everyone pushes, then everyone has everything */
	for (i = 0; i < sizeof order / sizeof order[0]; i++)
		sync_quiet(order[i]);

	/* a second sync is a no-op */
	r = sync_ok(a1);
	ck_assert_int_eq(json_int(r.out, "pushed"), 0);
	ck_assert_int_eq(json_int(r.out, "pulled"), 0);
	ck_assert_int_eq(json_int(r.out, "applied"), 0);
	size = json_int(r.out, "size");
	ck_assert_int_eq(json_int(r.out, "cursor"), size);
	ck_assert_ptr_nonnull(strstr(r.out, "{\"pushed\":0,\"accepted\":0,"
				     "\"duplicates\":0,\"refused\":0,"
				     "\"pulled\":0,\"applied\":0,"
				     "\"conflicts\":0,\"bytes_sent\":"));
	run_free(&r);
	/* 4 device enrollments + the server's, 2 branches, 9 change sets */
	ck_assert_int_eq(size, 5 + 2 + 9);

	/* nothing pending, every push acknowledged with a receipt */
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(db_int(order[i], "SELECT count(*) FROM"
					" bs_outbox WHERE acked != 1 OR"
					" receipt IS NULL"), 0);
		ck_assert_int_eq(db_int(order[i], "SELECT count(*) FROM"
					" bs_authors"), 5);
		ck_assert_int_eq(db_int(order[i], "SELECT value > 0 FROM"
					" bs_settings WHERE key='last_sync'"),
				 1);
	}

	/* scope: b never saw b1's records, d saw all */
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM members WHERE"
				" branch_id='b1'"), 0);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM bs_applied WHERE"
				" scope='b1'"), 0);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM members"), 3);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM trainings"), 1);
	ck_assert_int_eq(db_int(a1, "SELECT count(*) FROM members WHERE"
				" branch_id='b2'"), 0);
	ck_assert_int_eq(db_int(d, "SELECT count(*) FROM members"), 5);
	ck_assert_int_eq(db_int(d, "SELECT count(*) FROM branches"), 2);
	ck_assert_int_eq(db_int(a2, "SELECT count(*) FROM members WHERE"
				" occupation='farmer'"), 1);

	server_stop();
	digest_of(a1, da1);
	digest_of(a2, da2);
	digest_of(b, db_);
	digest_of(d, dd);
	server_digest(NULL, sall);
	server_digest("b1", s1);
	server_digest("b2", s2);
	digest_eq(dd, sall, "district device and server");
	digest_eq(da1, da2, "the two devices of b1");
	digest_eq(da1, s1, "b1 devices and the server's b1 view");
	digest_eq(db_, s2, "b2 device and the server's b2 view");
	ck_assert(memcmp(da1, sall, HASH_BYTES) != 0);
}
END_TEST

/* ---- conflicts ---- */

START_TEST(concurrent_edit_listed_on_both)
{
	char a1[400], a2[400], id[65];
	uint8_t d1[HASH_BYTES], d2[HASH_BYTES];
	const char *dbs[] = { a1, a2 };
	struct run r;
	size_t i;

	device("a1", "branch", "b1", a1, sizeof a1);
	device("a2", "branch", "b1", a2, sizeof a2);
	put(a1, id, "members", "name=Li Lei", "phone=13800000001", NULL);
	sync_quiet(a1);
	sync_quiet(a2);
	ck_assert_int_eq(db_int(a2, "SELECT count(*) FROM members"), 1);

	/* both edit the phone offline */
	put(a1, NULL, "members", "--id", id, "phone=13900000002", NULL);
	put(a2, NULL, "members", "--id", id, "phone=13700000003", NULL);
	sync_quiet(a1);
	r = sync_ok(a2);
	ck_assert_int_ge(json_int(r.out, "conflicts"), 1);
	run_free(&r);
	r = sync_ok(a1);
	ck_assert_int_ge(json_int(r.out, "conflicts"), 1);
	run_free(&r);

	for (i = 0; i < 2; i++) {
		r = bs("conflicts", "--db", dbs[i], "--json", NULL);
		expect_code(&r, 0);
		ck_assert_msg(strstr(r.out, "\"col\":\"phone\"") &&
			      strstr(r.out, "\"kind\":\"concurrent\"") &&
			      strstr(r.out, "13900000002") &&
			      strstr(r.out, "13700000003"),
			      "conflict not listed: %s", r.out);
		run_free(&r);
	}
	digest_of(a1, d1);
	digest_of(a2, d2);
	digest_eq(d1, d2, "after the concurrent edit");
}
END_TEST

/* ---- a server that is down ---- */

START_TEST(server_down_loses_nothing)
{
	char a[400], b[400];
	struct run r;
	int port;

	device("a", "branch", "b1", a, sizeof a);
	device("b", "branch", "b1", b, sizeof b);
	sync_quiet(a);
	port = srv_port;
	server_stop();

	put(a, NULL, "members", "name=Li Lei", NULL);
	put(a, NULL, "members", "name=Han Meimei", NULL);
	r = bs("sync", "--db", a, "--json", NULL);
	expect_code(&r, 3);
	ck_assert_msg(r.seconds < 15, "took %.1f s", r.seconds);
	ck_assert_msg(strstr(r.err, "server unreachable: 2 change sets wait "
			     "in the outbox; nothing is lost") != NULL,
		      "message: %s", r.err);
	ck_assert_uint_eq(r.outlen, 0);
	run_free(&r);
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM bs_outbox WHERE"
				" acked=0"), 2);

	server_start(port);
	ck_assert_int_eq(srv_port, port);
	r = sync_ok(a);
	ck_assert_int_eq(json_int(r.out, "pushed"), 2);
	ck_assert_int_eq(json_int(r.out, "accepted"), 2);
	run_free(&r);
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM bs_outbox WHERE"
				" acked=0"), 0);
	sync_quiet(b);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM members"), 2);
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
	put(a1, NULL, "members", "name=Li Lei", NULL);
	sync_quiet(a1);
	unsetenv("BRANCHSYNC_TEST_CLOCK_OFFSET_MS");
	near = db_int(a1, "SELECT max(hlc) FROM bs_outbox");
	sync_quiet(a2);
	ck_assert_int_gt(db_int(a2, "SELECT value FROM bs_settings WHERE"
				" key='hlc'"), near);
	/* so a2's next write is ordered after it */
	put(a2, NULL, "members", "name=Han Meimei", NULL);
	ck_assert_int_gt(db_int(a2, "SELECT max(hlc) FROM bs_outbox"), near);

	/* two hours ahead: merged, but not adopted */
	setenv("BRANCHSYNC_TEST_CLOCK_OFFSET_MS", "7200000", 1);
	put(a1, NULL, "members", "name=Wei Wei", NULL);
	sync_quiet(a1);
	unsetenv("BRANCHSYNC_TEST_CLOCK_OFFSET_MS");
	far = db_int(a1, "SELECT max(hlc) FROM bs_outbox");
	sync_quiet(a2);
	ck_assert_int_eq(db_int(a2, "SELECT count(*) FROM members"), 3);
	mine = db_int(a2, "SELECT value FROM bs_settings WHERE key='hlc'");
	ck_assert_int_gt(mine, near);
	ck_assert_int_lt(mine, far);
}
END_TEST

/* ---- TLS ---- */

/* Runs openssl from PATH; 127 when there is none. */
static int openssl(const char *first, ...)
{
	const char *argv[MAX_ARGS + 2];
	struct run r;
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
	r = run_argv("/usr/bin/env", argv);
	code = r.code;
	run_free(&r);
	return code;
}

/* The SHA-256 of a DER file, as 64 hex digits. */
static void file_sha256_hex(const char *path, char out[HEX_KEY + 1])
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
	char tok[HEX_KEY + 1], pin[HEX_KEY + 1], wrong[HEX_KEY + 1];
	struct run r;
	int port = srv_port;

	path_in(srv_cert, sizeof srv_cert, "cert.pem");
	path_in(srv_tlskey, sizeof srv_tlskey, "key.pem");
	path_in(pub, sizeof pub, "pub.pem");
	path_in(der, sizeof der, "pub.der");
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
	memset(wrong, '0', HEX_KEY);
	wrong[HEX_KEY] = '\0';
	server_stop();
	server_start(port);
	server_url(url, sizeof url);
	snprintf(ca, sizeof ca, "%s", srv_cert);
	path_in(a, sizeof a, "a.db");
	path_in(b, sizeof b, "b.db");
	device_init(a);
	device_init(b);

	/* a certificate nobody vouches for: refused before any token goes */
	token("branch", "b1", tok);
	r = bs("enroll", "--db", a, "--server", url, "--token", tok, NULL);
	expect_code(&r, 4);
	ck_assert_ptr_nonnull(strstr(r.err, "certificate"));
	run_free(&r);
	r = bs("enroll", "--db", a, "--server", url, "--token", tok,
	       "--cacert", ca, NULL);
	expect_code(&r, 0);
	run_free(&r);

	/* a pinned key that is not the server's */
	token("branch", "b1", tok);
	r = bs("enroll", "--db", b, "--server", url, "--token", tok,
	       "--cacert", ca, "--pin", wrong, NULL);
	expect_code(&r, 4);
	run_free(&r);
	r = bs("enroll", "--db", b, "--server", url, "--token", tok,
	       "--cacert", ca, "--pin", pin, NULL);
	expect_code(&r, 0);
	run_free(&r);
	ck_assert_int_eq(db_int(b, "SELECT value LIKE 'sha256//%' FROM"
				" bs_settings WHERE key='tls_pin'"), 1);

	/* the stored settings serve every later sync */
	put(b, NULL, "members", "name=Li Lei", NULL);
	sync_quiet(b);
	sync_quiet(a);
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM members"), 1);
}
END_TEST

/* ---- the client judges every author by the log ---- */

/* The device id (64 hex digits) of a replica. */
static void device_id(const char *db, char out[HEX_KEY + 1])
{
	struct run r = bs("status", "--db", db, "--json", NULL);
	const char *p;

	expect_code(&r, 0);
	p = strstr(r.out, "\"device_id\":\"");
	ck_assert_ptr_nonnull(p);
	memcpy(out, p + 13, HEX_KEY);
	out[HEX_KEY] = '\0';
	run_free(&r);
}

static void db_exec(const char *path, const char *sql)
{
	sqlite3 *db = db_open(path);

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK,
		      "%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* a2's view of a1's rights is altered locally, as if the log had said
 * otherwise: the page holding a1's change set must then be refused whole. */
static void expect_page_refused(const char *db, const char *needle,
				long long members, long long cursor)
{
	struct run r = bs("sync", "--db", db, NULL);
	char sql[128];

	expect_code(&r, 4);
	ck_assert_msg(strstr(r.err, needle) != NULL, "message: %s", r.err);
	run_free(&r);
	ck_assert_int_eq(db_int(db, "SELECT count(*) FROM members"), members);
	snprintf(sql, sizeof sql, "SELECT value=%lld FROM bs_settings WHERE"
		 " key='cursor'", cursor);
	ck_assert_int_eq(db_int(db, sql), 1);
}

START_TEST(author_rights_checked)
{
	char a1[400], a2[400], key[HEX_KEY + 1], sql[300], cur[96];
	struct run r;
	long long cursor;
	int port;

	device("a1", "branch", "b1", a1, sizeof a1);
	device("a2", "branch", "b1", a2, sizeof a2);
	device_id(a1, key);
	put(a1, NULL, "members", "name=Li Lei", NULL);
	sync_quiet(a1);
	sync_quiet(a2);
	ck_assert_int_eq(db_int(a2, "SELECT count(*) FROM members"), 1);
	cursor = db_int(a2, "SELECT value FROM bs_settings WHERE"
			" key='cursor'");
	put(a1, NULL, "members", "name=Han Meimei", NULL);
	sync_quiet(a1);

	/* out of its scope */
	snprintf(sql, sizeof sql, "UPDATE bs_authors SET scope='b2' WHERE"
		 " lower(hex(key))='%s'", key);
	db_exec(a2, sql);
	expect_page_refused(a2, "does not allow it", 1, cursor);
	ck_assert_int_eq(db_int(a2, "SELECT count(*) FROM bs_evidence WHERE"
				" kind='entry' AND length(a) > 0 AND"
				" length(b) > 0"), 1);
	/* revoked before it */
	snprintf(sql, sizeof sql, "UPDATE bs_authors SET scope='b1',"
		 " revoke_idx=enroll_idx+1 WHERE lower(hex(key))='%s'", key);
	db_exec(a2, sql);
	expect_page_refused(a2, "revoked before it", 1, cursor);
	/* enrolled only after it */
	snprintf(sql, sizeof sql, "UPDATE bs_authors SET revoke_idx=NULL,"
		 " enroll_idx=1000 WHERE lower(hex(key))='%s'", key);
	db_exec(a2, sql);
	expect_page_refused(a2, "enrolled only later", 1, cursor);
	/* an auditor may not write */
	snprintf(sql, sizeof sql, "UPDATE bs_authors SET enroll_idx=3,"
		 " role='auditor' WHERE lower(hex(key))='%s'", key);
	db_exec(a2, sql);
	expect_page_refused(a2, "does not allow it", 1, cursor);
	/* a wrong server key: no checkpoint verifies */
	db_exec(a2, "UPDATE bs_authors SET role='branch'");
	db_exec(a2, "UPDATE bs_settings SET value=zeroblob(32) WHERE"
		" key='server_pk'");
	r = bs("sync", "--db", a2, NULL);
	expect_code(&r, 4);
	ck_assert_ptr_nonnull(strstr(r.err, "not signed by the server's key"));
	run_free(&r);
	snprintf(sql, sizeof sql, "UPDATE bs_settings SET value=x'%s' WHERE"
		 " key='server_pk'", srv_key);
	db_exec(a2, sql);

	/* restored, the same page goes through */
	snprintf(sql, sizeof sql, "UPDATE bs_authors SET enroll_idx=(SELECT"
		 " min(enroll_idx) FROM bs_authors WHERE role='branch') WHERE"
		 " lower(hex(key))='%s'", key);
	db_exec(a2, sql);
	sync_quiet(a2);
	ck_assert_int_eq(db_int(a2, "SELECT count(*) FROM members"), 2);

	/* a real revocation reaches every device; the revoked one is
	 * refused */
	port = srv_port;
	server_stop();
	r = bsd("revoke", "--data", srv_dir, key, NULL);
	expect_code(&r, 0);
	run_free(&r);
	server_start(port);
	sync_quiet(a2);
	snprintf(cur, sizeof cur, "lower(hex(key))='%s'", key);
	snprintf(sql, sizeof sql, "SELECT revoke_idx > enroll_idx FROM"
		 " bs_authors WHERE %s", cur);
	ck_assert_int_eq(db_int(a2, sql), 1);
	r = bs("sync", "--db", a1, NULL);
	expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "revoked"));
	run_free(&r);
}
END_TEST

/* ---- refusals ---- */

START_TEST(unlogged_refusal_stops)
{
	char a[400];
	struct run r;

	device("a", "branch", "b1", a, sizeof a);
	put(a, NULL, "members", "name=Li Lei", NULL);
	put(a, NULL, "members", "name=Han Meimei", NULL);
	/* lose the first change set: the second leaves a gap in the chain */
	db_exec(a, "DELETE FROM bs_outbox WHERE seq=1");
	r = bs("sync", "--db", a, "--json", NULL);
	expect_code(&r, 2);
	ck_assert_msg(strstr(r.err, "without logging it") &&
		      strstr(r.err, "chain gap"), "message: %s", r.err);
	ck_assert_uint_eq(r.outlen, 0);
	run_free(&r);
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM bs_outbox WHERE"
				" acked=0 AND seq=2 AND receipt IS NULL"), 1);
	/* nothing was pulled */
	ck_assert_int_eq(db_int(a, "SELECT value FROM bs_settings WHERE"
				" key='cursor'"), 0);
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
	put(a1, id, "members", "name=Future", NULL);
	sync_quiet(a1);
	unsetenv("BRANCHSYNC_TEST_CLOCK_OFFSET_MS");
	sync_quiet(d);
	put(d, NULL, "members", "--id", id, "name=Now", NULL);
	put(d, NULL, "needs", "branch_id=b1", "category=job", NULL);
	sync_quiet(d);
	sync_quiet(a1);
	ck_assert_int_eq(db_int(a1, "SELECT count(*) FROM members WHERE "
				"name='Now'"), 1);
	ck_assert_int_eq(db_int(d, "SELECT count(*) FROM members WHERE "
				"name='Now'"), 1);
	/* the unrelated write carries the laptop's own time (within a day) */
	stamp = db_int(d, "SELECT hlc FROM bs_outbox ORDER BY seq DESC LIMIT 1");
	ck_assert_int_lt(stamp >> 16, (long long)time(NULL) * 1000 + 86400000LL);
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

static void import(const char *db, const char *csv)
{
	struct run r = bs("import-csv", "--db", db, "members", csv, NULL);

	expect_code(&r, 0);
	run_free(&r);
}

START_TEST(large_sync_resumes)
{
	long long sets;
	char a[400], b[400], csv[400];
	uint8_t da[HASH_BYTES], dbb[HASH_BYTES];
	struct run r;
	const char *bin = getenv("BRANCHSYNC_BIN");
	int status, k;
	pid_t pid;

	device("a", "branch", "b1", a, sizeof a);
	device("b", "branch", "b1", b, sizeof b);
	/* four change sets of ~1 MiB: several push batches */
	for (k = 0; k < 4; k++) {
		char tag[8];

		snprintf(tag, sizeof tag, "s%d", k);
		path_in(csv, sizeof csv, "big.csv");
		big_csv(csv, 7000, tag);
		import(a, csv);
	}
	/* import cuts big imports into several sets: at least one each */
	sets = db_int(a, "SELECT count(*) FROM bs_outbox WHERE acked=0");
	ck_assert_int_ge(sets, 4);
	r = sync_ok(a);
	ck_assert_int_eq(json_int(r.out, "pushed"), sets);
	ck_assert_int_eq(json_int(r.out, "accepted"), sets);
	/* deflated on the wire: far less than the ~4 MiB of change sets */
	ck_assert_int_lt(json_int(r.out, "bytes_sent"), 3 << 20);
	run_free(&r);

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
	run_free(&r);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM members"), 28000);
	/* a's sets and the server's own branch row */
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM bs_applied WHERE"
				" scope='b1' AND seq > 0"), sets + 1);
	r = sync_ok(b);
	ck_assert_int_eq(json_int(r.out, "pulled"), 0);
	run_free(&r);
	digest_of(a, da);
	digest_of(b, dbb);
	digest_eq(da, dbb, "after a resumed sync");
}
END_TEST

/* ---- a server that forks its log ---- */

/* The size of the checkpoint stored in column `col` of evidence row n. */
static uint64_t evidence_size(const char *db_path, int n, const char *col)
{
	sqlite3 *db = db_open(db_path);
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
	struct run r;
	long long s0, s1;
	int port, k;

	device("a", "branch", "b1", a, sizeof a);
	device("c", "branch", "b2", c, sizeof c);
	sync_quiet(a);
	sync_quiet(c);
	port = srv_port;

	/* the district keeps a copy of its data at this point */
	server_stop();
	path_in(backup, sizeof backup, "backup");
	copy_dir(srv_dir, backup);
	server_start(port);
	r = sync_ok(a);
	s0 = json_int(r.out, "size");
	run_free(&r);

	/* a sees the log grow */
	put(a, NULL, "members", "name=Li Lei", NULL);
	put(a, NULL, "members", "name=Han Meimei", NULL);
	put(a, NULL, "members", "name=Wei Wei", NULL);
	r = sync_ok(a);
	s1 = json_int(r.out, "size");
	run_free(&r);
	ck_assert_int_eq(s1, s0 + 3);

	/* then the server goes back to its copy and writes other history */
	server_stop();
	copy_dir(backup, srv_dir);
	server_start(port);
	put(c, NULL, "members", "name=Wang Wu", NULL);
	sync_quiet(c);

	/* a shorter log than a saw: caught */
	r = bs("sync", "--db", a, NULL);
	expect_code(&r, 4);
	ck_assert_msg(strstr(r.err, "forked") && strstr(r.err, "bs_evidence"),
		      "message: %s", r.err);
	run_free(&r);
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM bs_evidence WHERE"
				" kind='fork'"), 1);
	ck_assert_uint_eq(evidence_size(a, 0, "a"), (uint64_t)s1);
	ck_assert_uint_eq(evidence_size(a, 0, "b"), (uint64_t)s0 + 1);

	/* a longer one that does not extend it: caught by the proof */
	for (k = 0; k < 3; k++)
		put(c, NULL, "members", "name=Zhao Liu", NULL);
	sync_quiet(c);
	r = bs("sync", "--db", a, NULL);
	expect_code(&r, 4);
	ck_assert_ptr_nonnull(strstr(r.err, "consistency proof fails"));
	run_free(&r);
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM bs_evidence WHERE"
				" kind='fork'"), 2);
	ck_assert_uint_eq(evidence_size(a, 1, "a"), (uint64_t)s1);
	ck_assert_uint_eq(evidence_size(a, 1, "b"), (uint64_t)s0 + 4);

	/* a keeps the checkpoint it verified, and refuses to move on */
	{
		char sql[128];

		snprintf(sql, sizeof sql, "SELECT value=%lld FROM bs_settings"
			 " WHERE key='cursor'", s1);
		ck_assert_int_eq(db_int(a, sql), 1);
	}
	r = bs("sync", "--db", a, NULL);
	expect_code(&r, 4);
	run_free(&r);
}
END_TEST

static Suite *sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("sync");

	tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, enroll_rules);
	tcase_add_test(tc, converge_within_scope);
	tcase_add_test(tc, concurrent_edit_listed_on_both);
	tcase_add_test(tc, server_down_loses_nothing);
	tcase_add_test(tc, author_rights_checked);
	tcase_add_test(tc, unlogged_refusal_stops);
	tcase_add_test(tc, tls_verified);
	tcase_add_test(tc, clock_follows_what_was_seen);
	tcase_add_test(tc, future_clock_does_not_win_forever);
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
