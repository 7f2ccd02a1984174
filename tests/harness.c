/* harness.c - helpers for the tests that drive the real programs
 * (harness.h): processes, a server on a loopback port, devices, and looks
 * into SQLite files. Test code only: failures are ck_assert failures. */
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

#include "digest.h"
#include "err.h"
#include "harness.h"
#include "schema.h"

#define MAX_SPAWNED 32

static char root[256];           /* made by the parent, removed by it */
static char tmp[HARNESS_PATH];   /* this test's directory */
static pid_t spawned[MAX_SPAWNED];

/* ---- directories ---- */

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

void harness_rm_tree(const char *path)
{
	if (path[0])
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Unchecked (in the parent): one root for every test, removed even when a
 * test dies before its own teardown. */
void harness_root_setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(root, sizeof root, "%s/bs-harness-XXXXXX",
		 t && *t ? t : "/tmp");
	if (!mkdtemp(root))
		root[0] = '\0';
}

void harness_root_teardown(void)
{
	harness_rm_tree(root);
}

const char *harness_root(void)
{
	return root;
}

void harness_tmp_setup(void)
{
	ck_assert_msg(root[0] != '\0', "no temporary directory");
	snprintf(tmp, sizeof tmp, "%s/t-XXXXXX", root);
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	unsetenv("BRANCHSYNC_DB");
	unsetenv("BRANCHSYNC_PASSPHRASE");
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	memset(spawned, 0, sizeof spawned);
}

void harness_tmp_teardown(void)
{
	size_t i;

	for (i = 0; i < MAX_SPAWNED; i++) {
		if (spawned[i] > 0) {
			kill(spawned[i], SIGKILL);
			waitpid(spawned[i], NULL, 0);
			spawned[i] = 0;
		}
	}
	harness_rm_tree(tmp);
}

void harness_path(char *out, size_t n, const char *name)
{
	harness_fmt(out, n, "%s/%s", tmp, name);
}

void harness_fmt(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	ck_assert_msg(len >= 0 && (size_t)len < n, "path too long: %s", out);
}

/* ---- processes ---- */

double harness_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void harness_run_free(struct harness_run *r)
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

static int status_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status)
				 : 128 + WTERMSIG(status);
}

struct harness_run harness_run_argv(const char *bin, const char *const *argv)
{
	int outp[2], errp[2], status = 0;
	struct harness_run r;
	double t0 = harness_now();
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
	r.code = status_code(status);
	r.seconds = harness_now() - t0;
	return r;
}

static struct harness_run run_va(const char *envname, const char *name,
				 const char *first, va_list ap)
{
	const char *bin = getenv(envname), *argv[HARNESS_MAX_ARGS + 2];
	size_t n = 0;

	ck_assert_msg(bin != NULL, "%s is not set", envname);
	argv[n++] = name;
	argv[n++] = first;
	while (n < HARNESS_MAX_ARGS &&
	       (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	argv[n] = NULL;
	return harness_run_argv(bin, argv);
}

struct harness_run harness_bs(const char *first, ...)
{
	struct harness_run r;
	va_list ap;

	va_start(ap, first);
	r = run_va("BRANCHSYNC_BIN", "branchsync", first, ap);
	va_end(ap);
	return r;
}

struct harness_run harness_bsd(const char *first, ...)
{
	struct harness_run r;
	va_list ap;

	va_start(ap, first);
	r = run_va("BRANCHSYNCD_BIN", "branchsyncd", first, ap);
	va_end(ap);
	return r;
}

void harness_expect_code(const struct harness_run *r, int code)
{
	ck_assert_msg(r->code == code, "exit %d, wanted %d; stderr: %s",
		      r->code, code, r->err);
}

void harness_first_line(const struct harness_run *r, char *out, size_t n)
{
	size_t len = strcspn(r->out, "\n");

	ck_assert_uint_lt(len, n);
	memcpy(out, r->out, len);
	out[len] = '\0';
}

long long harness_json_int(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof pat, "\"%s\":", key);
	p = strstr(json, pat);
	ck_assert_msg(p != NULL, "no %s in %s", key, json);
	return strtoll(p + strlen(pat), NULL, 10);
}

static void spawned_set(pid_t old, pid_t pid)
{
	size_t i;

	for (i = 0; i < MAX_SPAWNED; i++) {
		if (spawned[i] == old) {
			spawned[i] = pid;
			return;
		}
	}
	ck_assert_msg(old != 0, "more than %d background processes",
		      MAX_SPAWNED);
}

pid_t harness_spawn(const char *bin, const char *const *argv,
		    const char *log)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)
			      : open("/dev/null", O_WRONLY);

		/* never outlive the test, whatever happens to it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setsid();
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	spawned_set(0, pid);
	return pid;
}

int harness_wait(pid_t pid)
{
	int status = 0;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	spawned_set(pid, 0);
	return status_code(status);
}

int harness_wait_for(pid_t pid, double seconds)
{
	double t0 = harness_now();
	int status = 0;

	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		ck_assert_int_ge(w, 0);
		if (w == pid) {
			spawned_set(pid, 0);
			return status_code(status);
		}
		if (harness_now() - t0 >= seconds)
			return -1;
		usleep(5000);
	}
}

int harness_running(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si,
				WEXITED | WNOHANG | WNOWAIT), 0);
	return si.si_pid != pid;
}

int harness_kill(pid_t pid, int sig)
{
	ck_assert_int_eq(kill(pid, sig), 0);
	return harness_wait(pid);
}

int harness_port_wait(const char *file, pid_t pid, double seconds)
{
	double t0 = harness_now();

	while (harness_now() - t0 < seconds) {
		FILE *f = fopen(file, "r");

		if (f) {
			int port = 0, ok = fscanf(f, "%d", &port) == 1;

			fclose(f);
			if (ok && port > 0)
				return port;
		}
		if (!harness_running(pid))
			return 0;
		usleep(10000);
	}
	return 0;
}

/* ---- the server ---- */

void harness_server_init(struct harness_server *s, const char *dir)
{
	static const char *const branches[][2] = {
		{ "b1", "Village 1" }, { "b2", "Village 2" },
	};
	struct harness_run r;
	size_t i;

	memset(s, 0, sizeof *s);
	s->pid = -1;
	ck_assert_uint_lt(strlen(dir), sizeof s->dir);
	strcpy(s->dir, dir);
	r = harness_bsd("init", "--data", s->dir, "--district", "Test",
			"--no-passphrase", NULL);
	harness_expect_code(&r, 0);
	harness_first_line(&r, s->key, sizeof s->key);
	ck_assert_uint_eq(strlen(s->key), HARNESS_HEX_KEY);
	harness_run_free(&r);
	for (i = 0; i < sizeof branches / sizeof branches[0]; i++) {
		r = harness_bsd("branch", "add", "--data", s->dir, "--id",
				branches[i][0], "--name", branches[i][1],
				"--kind", "village", NULL);
		harness_expect_code(&r, 0);
		harness_run_free(&r);
	}
}

void harness_server_start(struct harness_server *s, int port)
{
	const char *bin = getenv("BRANCHSYNCD_BIN");
	int tries;

	ck_assert_ptr_nonnull(bin);
	ck_assert_int_eq(s->pid, -1);
	harness_fmt(s->port_file, sizeof s->port_file, "%s.port", s->dir);
	harness_fmt(s->log, sizeof s->log, "%s.log", s->dir);
	/* a port just freed may still be taken for a moment: retried */
	for (tries = 0; tries < 50; tries++) {
		char listen[64];
		const char *argv[] = { "branchsyncd", "serve", "--data",
				       s->dir, "--listen", listen,
				       "--port-file", s->port_file, "--quiet",
				       NULL };
		int p = port ? port : 20000 + (int)(random() % 12000);

		snprintf(listen, sizeof listen, "127.0.0.1:%d", p);
		unlink(s->port_file);
		s->pid = harness_spawn(bin, argv, s->log);
		s->port = harness_port_wait(s->port_file, s->pid, 10);
		if (s->port > 0)
			return;
		harness_kill(s->pid, SIGKILL);
		s->pid = -1;
		usleep(200000);
	}
	ck_abort_msg("branchsyncd did not start (see %s)", s->log);
}

void harness_server_stop(struct harness_server *s)
{
	int code;

	ck_assert_int_gt(s->pid, 0);
	code = harness_kill(s->pid, SIGTERM);
	s->pid = -1;
	ck_assert_msg(code == 0, "branchsyncd ended with %d (see %s)", code,
		      s->log);
}

void harness_server_kill(struct harness_server *s)
{
	ck_assert_int_gt(s->pid, 0);
	harness_kill(s->pid, SIGKILL);
	s->pid = -1;
}

void harness_server_url(const struct harness_server *s, char *out, size_t n)
{
	snprintf(out, n, "http://127.0.0.1:%d", s->port);
}

void harness_token(const struct harness_server *s, const char *role,
		   const char *branch, char out[HARNESS_HEX_KEY + 1])
{
	struct harness_run r =
	    branch ? harness_bsd("token", "--data", s->dir, "--role", role,
				 "--branch", branch, NULL)
		   : harness_bsd("token", "--data", s->dir, "--role", role,
				 NULL);

	harness_expect_code(&r, 0);
	harness_first_line(&r, out, HARNESS_HEX_KEY + 1);
	ck_assert_uint_eq(strlen(out), HARNESS_HEX_KEY);
	harness_run_free(&r);
}

/* ---- devices ---- */

void harness_device_init(const char *db, char id[HARNESS_HEX_KEY + 1])
{
	struct harness_run r =
	    harness_bs("init", "--db", db, "--no-passphrase", NULL);

	harness_expect_code(&r, 0);
	if (id) {
		harness_first_line(&r, id, HARNESS_HEX_KEY + 1);
		ck_assert_uint_eq(strlen(id), HARNESS_HEX_KEY);
	}
	harness_run_free(&r);
}

void harness_device(const struct harness_server *s, const char *db,
		    const char *role, const char *branch,
		    char id[HARNESS_HEX_KEY + 1])
{
	char tok[HARNESS_HEX_KEY + 1], url[64];
	struct harness_run r;

	harness_device_init(db, id);
	harness_token(s, role, branch, tok);
	harness_server_url(s, url, sizeof url);
	r = harness_bs("enroll", "--db", db, "--server", url, "--token", tok,
		       "--server-key", s->key, NULL);
	harness_expect_code(&r, 0);
	harness_run_free(&r);
}

void harness_put(const char *db, char *id, const char *table, ...)
{
	const char *argv[HARNESS_MAX_ARGS + 2];
	const char *bin = getenv("BRANCHSYNC_BIN");
	struct harness_run r;
	va_list ap;
	size_t n = 0;

	ck_assert_ptr_nonnull(bin);
	argv[n++] = "branchsync";
	argv[n++] = "put";
	argv[n++] = "--db";
	argv[n++] = db;
	argv[n++] = table;
	va_start(ap, table);
	while (n < HARNESS_MAX_ARGS &&
	       (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	r = harness_run_argv(bin, argv);
	harness_expect_code(&r, 0);
	if (id)
		harness_first_line(&r, id, 65);
	harness_run_free(&r);
}

void harness_import(const char *db, const char *table, const char *csv)
{
	struct harness_run r =
	    harness_bs("import-csv", "--db", db, table, csv, NULL);

	harness_expect_code(&r, 0);
	harness_run_free(&r);
}

void harness_point_at(const char *db, int port)
{
	char sql[160];

	snprintf(sql, sizeof sql, "UPDATE bs_settings SET"
		 " value='http://127.0.0.1:%d' WHERE key='server_url'", port);
	harness_db_exec(db, sql);
	ck_assert_int_eq(harness_db_int(db, "SELECT count(*) FROM bs_settings"
					" WHERE key='server_url'"), 1);
}

/* ---- files ---- */

sqlite3 *harness_db_open(const char *path, int writable)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db,
				 writable ? SQLITE_OPEN_READWRITE
					  : SQLITE_OPEN_READONLY, NULL);

	ck_assert_msg(rc == SQLITE_OK, "cannot open %s: %s", path,
		      db ? sqlite3_errmsg(db) : "no memory");
	sqlite3_busy_timeout(db, 10000);
	return db;
}

long long harness_db_int(const char *path, const char *sql)
{
	sqlite3 *db = harness_db_open(path, 0);
	sqlite3_stmt *st = NULL;
	long long v;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
		      "%s: %s", sql, sqlite3_errmsg(db));
	ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: %s", sql,
		      sqlite3_errmsg(db));
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

void harness_db_exec(const char *path, const char *sql)
{
	sqlite3 *db = harness_db_open(path, 1);

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK,
		      "%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

void harness_integrity_ok(const char *path)
{
	sqlite3 *db = harness_db_open(path, 0);
	sqlite3_stmt *st = NULL;
	const char *res;

	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1,
					    &st, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: %s", path,
		      sqlite3_errmsg(db));
	res = (const char *)sqlite3_column_text(st, 0);
	ck_assert_msg(res && strcmp(res, "ok") == 0,
		      "integrity_check of %s: %s", path, res ? res : "NULL");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

void harness_digest(const char *path, uint8_t out[HASH_BYTES])
{
	sqlite3 *db = harness_db_open(path, 0);
	struct err e;

	err_init(&e);
	ck_assert_msg(digest_compute(db, out, &e) == 0, "%s", e.msg);
	sqlite3_close(db);
}

void harness_digest_scope(const char *path, const char *scope,
			  const char *scratch, uint8_t out[HASH_BYTES])
{
	char sql[HARNESS_PATH + 128];
	sqlite3 *db;
	size_t i;

	unlink(scratch);
	db = harness_db_open(path, 0);
	snprintf(sql, sizeof sql, "VACUUM INTO '%s'", scratch);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK,
		      "%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
	db = harness_db_open(scratch, 1);
	for (i = 0; i < schema_table_count(); i++) {
		snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE branch_id"
			 " NOT IN ('%s', 'district')",
			 schema_table_at(i)->name, scope);
		ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL),
				 SQLITE_OK);
	}
	sqlite3_close(db);
	harness_digest(scratch, out);
	unlink(scratch);
}

void harness_digest_eq(const uint8_t a[HASH_BYTES],
		       const uint8_t b[HASH_BYTES], const char *what)
{
	ck_assert_msg(memcmp(a, b, HASH_BYTES) == 0, "digests differ: %s",
		      what);
}

void harness_copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	ck_assert_msg(in >= 0, "cannot open %s", from);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_msg(out >= 0, "cannot create %s", to);
	while ((n = read(in, buf, sizeof buf)) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	ck_assert_int_eq(close(out), 0);
}

void harness_copy_dir(const char *from, const char *to)
{
	char a[HARNESS_PATH + 256], b[HARNESS_PATH + 256];
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
		harness_copy_file(a, b);
	}
	closedir(d);
}
