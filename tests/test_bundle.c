/* test_bundle.c - Check suite 'bundle': a real branchsyncd
 * ($BRANCHSYNCD_BIN) on a loopback port and real branchsync processes
 * ($BRANCHSYNC_BIN) carrying change sets in bundle files (docs/BUNDLE.md):
 * a branch device's bundle relayed by a district device reaches the server
 * with its author's signatures, and the author's own later sync is told
 * "duplicate", nothing doubled; a district device's bundle for a branch
 * brings a fresh device of that branch its scope and the district's, gaps
 * in other devices' chains included, and nothing of other branches; every
 * kind of damage (a flipped byte, a cut, a forged enrollment, another
 * server, frames out of order) is refused with exit 4 and the replica left
 * exactly as it was; a second import changes nothing; a device bundle must
 * chain to what the replica holds; a relay the server refuses does not
 * block the district device's own pushes. */
#define _GNU_SOURCE /* nftw's FTW_DEPTH, FTW_PHYS */
#include <check.h>
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

#include <sodium.h>
#include <sqlite3.h>

#include "buf.h"
#include "digest.h"
#include "enrollment.h"
#include "err.h"
#include "frame.h"
#include "schema.h"
#include "sign.h"
#include "wire.h"

#define MAX_ARGS   32
#define HEX_KEY	   64
#define MAX_FRAMES 64

/* What one run of a binary produced. */
struct run {
	int code;	 /* exit code, or 128 + signal */
	char *out, *err; /* NUL-terminated, malloc'd */
	size_t outlen, errlen;
};

static char root[256]; /* made by the parent, removed by it */
static char tmp[320];  /* this test's directory */
static char srv_dir[400];
static char srv_key[HEX_KEY + 1];
static pid_t srv_pid = -1;
static int srv_port;

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

/* Runs bin with argv, collecting stdout and stderr; no stdin, no
 * controlling terminal (so nothing waits for a passphrase). */
static struct run run_argv(const char *bin, const char *const *argv)
{
	int outp[2], errp[2], status = 0;
	struct run r;
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
		    {outp[0], POLLIN, 0},
		    {errp[0], POLLIN, 0},
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
	r.code =
	    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
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

static void first_line(const struct run *r, char *out, size_t n)
{
	size_t len = strcspn(r->out, "\n");

	ck_assert_uint_lt(len, n);
	memcpy(out, r->out, len);
	out[len] = '\0';
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

/* ---- the server ---- */

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmp, name);
}

/* A district server in `dir` with branches b1 and b2; its key into key. */
static void server_init_at(const char *dir, char key[HEX_KEY + 1])
{
	struct run r;

	r = bsd("init", "--data", dir, "--district", "Test", "--no-passphrase",
		NULL);
	expect_code(&r, 0);
	first_line(&r, key, HEX_KEY + 1);
	ck_assert_uint_eq(strlen(key), HEX_KEY);
	run_free(&r);
	r = bsd("branch", "add", "--data", dir, "--id", "b1", "--name",
		"Village 1", "--kind", "village", NULL);
	expect_code(&r, 0);
	run_free(&r);
	r = bsd("branch", "add", "--data", dir, "--id", "b2", "--name",
		"Village 2", "--kind", "village", NULL);
	expect_code(&r, 0);
	run_free(&r);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Serves on `port` (0: a random one in 20000-32000, below the kernel's
 * ephemeral range, as test_sync.c does) and waits for the port file. */
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

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			dup2(fd, 1);
			dup2(fd, 2);
			execl(bin, "branchsyncd", "serve", "--data", srv_dir,
			      "--listen", listen, "--port-file", pf, "--quiet",
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

static void token(const char *role, const char *branch, char out[HEX_KEY + 1])
{
	struct run r =
	    branch ? bsd("token", "--data", srv_dir, "--role", role, "--branch",
			 branch, NULL)
		   : bsd("token", "--data", srv_dir, "--role", role, NULL);

	expect_code(&r, 0);
	first_line(&r, out, HEX_KEY + 1);
	run_free(&r);
}

/* ---- devices ---- */

static void device_init(const char *db)
{
	struct run r = bs("init", "--db", db, "--no-passphrase", NULL);

	expect_code(&r, 0);
	run_free(&r);
}

/* Makes replica tmp/NAME.db enrolled with role (and branch). */
static void device(const char *name, const char *role, const char *branch,
		   char *out, size_t n)
{
	char tok[HEX_KEY + 1], url[64];
	struct run r;

	snprintf(out, n, "%s/%s.db", tmp, name);
	device_init(out);
	token(role, branch, tok);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", srv_port);
	r = bs("enroll", "--db", out, "--server", url, "--token", tok,
	       "--server-key", srv_key, "--name", name, NULL);
	expect_code(&r, 0);
	run_free(&r);
}

static void put(const char *db, const char *table, ...)
{
	const char *argv[MAX_ARGS + 2];
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
	r = run_argv(getenv("BRANCHSYNC_BIN"), argv);
	expect_code(&r, 0);
	run_free(&r);
}

/* sync --json, which must succeed quietly; the caller frees the run. */
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

/* bundle export (--json); must succeed. */
static struct run export_ok(const char *db, const char *out,
			    const char *for_branch)
{
	struct run r = for_branch ? bs("bundle", "export", "--db", db, "--out",
				       out, "--for", for_branch, "--json", NULL)
				  : bs("bundle", "export", "--db", db, "--out",
				       out, "--json", NULL);

	expect_code(&r, 0);
	return r;
}

static struct run import_json(const char *db, const char *file)
{
	return bs("bundle", "import", "--db", db, "--json", file, NULL);
}

/* ---- looking into files ---- */

static sqlite3 *db_open(const char *path, int flags)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, flags, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* The first column of the first row, read-only (the server may run). */
static long long db_int(const char *path, const char *sql)
{
	sqlite3 *db = db_open(path, SQLITE_OPEN_READONLY);
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

static long long srv_int(const char *sql)
{
	char path[450];

	snprintf(path, sizeof path, "%s/server.db", srv_dir);
	return db_int(path, sql);
}

/* The device key of a replica, as 64 hex digits, from `status --json`. */
static void device_key(const char *db, char out[HEX_KEY + 1])
{
	struct run r = bs("status", "--db", db, "--json", NULL);
	const char *p;

	expect_code(&r, 0);
	p = strstr(r.out, "\"device_id\":\"");
	ck_assert_msg(p != NULL, "no device_id in %s", r.out);
	memcpy(out, p + 13, HEX_KEY);
	out[HEX_KEY] = '\0';
	run_free(&r);
}

static void digest_of(const char *path, uint8_t out[HASH_BYTES])
{
	sqlite3 *db = db_open(path, SQLITE_OPEN_READONLY);
	struct err e;

	err_init(&e);
	ck_assert_msg(digest_compute(db, out, &e) == 0, "%s", e.msg);
	sqlite3_close(db);
}

/* The digest of the server's records as a device of `scope` sees them
 * (NULL: all). The server must be stopped. */
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
	db = db_open(src, SQLITE_OPEN_READWRITE);
	snprintf(sql, sizeof sql, "VACUUM INTO '%s'", copy);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	db = db_open(copy, SQLITE_OPEN_READWRITE);
	for (i = 0; i < schema_table_count(); i++) {
		snprintf(sql, sizeof sql,
			 "DELETE FROM \"%s\" WHERE branch_id"
			 " NOT IN ('%s', 'district')",
			 schema_table_at(i)->name, scope);
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

/* Everything an import could change in a replica. */
struct state {
	uint8_t digest[HASH_BYTES];
	long long applied, relay, enrollments, outbox, conflicts, rows, hlc;
};

static void state_of(const char *db, struct state *s)
{
	memset(s, 0, sizeof *s);
	digest_of(db, s->digest);
	s->applied = db_int(db, "SELECT count(*) FROM bs_applied");
	s->relay = db_int(db, "SELECT count(*) FROM bs_relay");
	s->enrollments = db_int(db, "SELECT count(*) FROM bs_enrollments");
	s->outbox = db_int(db, "SELECT count(*) FROM bs_outbox");
	s->conflicts = db_int(db, "SELECT count(*) FROM bs_conflicts");
	s->rows = db_int(db, "SELECT count(*) FROM bs_rows");
	s->hlc = db_int(db, "SELECT coalesce((SELECT value FROM bs_settings"
			    " WHERE key='hlc'), 0)");
}

static void state_same(const char *db, const struct state *before,
		       const char *what)
{
	struct state now;

	state_of(db, &now);
	ck_assert_msg(memcmp(before, &now, sizeof now) == 0,
		      "the replica changed: %s", what);
}

/* ---- bundle files ---- */

static uint8_t *file_read(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p;
	FILE *f = fopen(path, "rb");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fstat(fileno(f), &st), 0);
	*len = (size_t)st.st_size;
	p = malloc(*len + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(fread(p, 1, *len, f), *len);
	fclose(f);
	return p;
}

static void file_write(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* A bundle's frames as the test's own reader sees them. */
struct frames {
	uint8_t *data;
	size_t len, n;
	uint8_t type[MAX_FRAMES];
	size_t off[MAX_FRAMES], plen[MAX_FRAMES]; /* payload in data */
};

static void frames_read(const char *path, struct frames *fs)
{
	struct frame_reader fr;
	struct frame f;
	size_t off = 0, used;

	memset(fs, 0, sizeof *fs);
	fs->data = file_read(path, &fs->len);
	frame_reader_init(&fr, 16u << 20);
	while (off < fs->len) {
		ck_assert_int_eq(frame_reader_feed(&fr, fs->data + off,
						   fs->len - off, &used),
				 BS_OK);
		off += used;
		if (!frame_reader_next(&fr, &f))
			continue;
		ck_assert_uint_lt(fs->n, MAX_FRAMES);
		fs->type[fs->n] = f.type;
		fs->plen[fs->n] = f.len;
		fs->off[fs->n++] = (size_t)fr.consumed - f.len;
	}
	ck_assert_int_eq(frame_reader_finish(&fr), BS_OK);
	frame_reader_release(&fr);
}

/* Writes a stream of the frames of fs in the order `order` (indexes,
 * ending with -1), replacing frame `swap` (if >= 0) by (stype, sp, slen). */
static void frames_write(const struct frames *fs, const int *order, int swap,
			 unsigned stype, const uint8_t *sp, size_t slen,
			 const char *path)
{
	struct buf b;
	size_t i;

	buf_init(&b, 64u << 20);
	frame_stream_begin(&b);
	for (i = 0; order[i] >= 0; i++) {
		int k = order[i];

		if (k == swap)
			frame_put(&b, stype, sp, slen);
		else
			frame_put(&b, fs->type[k], fs->data + fs->off[k],
				  fs->plen[k]);
	}
	frame_stream_end(&b);
	ck_assert_int_eq(b.status, BS_OK);
	file_write(path, b.data, b.len);
	buf_release(&b);
}

/* An import that must fail with `code`, say `needle` and change nothing. */
static void import_refused(const char *db, const char *file, int code,
			   const char *needle, const char *what)
{
	struct state before;
	struct run r;

	state_of(db, &before);
	r = bs("bundle", "import", "--db", db, file, NULL);
	ck_assert_msg(r.code == code, "%s: exit %d, wanted %d; stderr: %s",
		      what, r.code, code, r.err);
	ck_assert_msg(strstr(r.err, needle) != NULL, "%s: message: %s", what,
		      r.err);
	ck_assert_msg(strchr(r.err, '\n') == r.err + r.errlen - 1,
		      "%s: not one line: %s", what, r.err);
	ck_assert_uint_eq(r.outlen, 0);
	run_free(&r);
	state_same(db, &before, what);
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

static void root_setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(root, sizeof root, "%s/bs-bundle-XXXXXX",
		 t && *t ? t : "/tmp");
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
	ck_assert_int_ge(sodium_init(), 0);
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	srv_pid = -1;
	snprintf(srv_dir, sizeof srv_dir, "%s/srv", tmp);
	server_init_at(srv_dir, srv_key);
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

/* ---- branch -> district -> server ---- */

START_TEST(relay_through_district)
{
	char a[400], d[400], file[400], akey[HEX_KEY + 1], sql[300];
	uint8_t da[HASH_BYTES], dd[HASH_BYTES], s1[HASH_BYTES],
	    sall[HASH_BYTES];
	struct state before;
	struct run r;

	device("a", "branch", "b1", a, sizeof a);
	device("d", "district", NULL, d, sizeof d);
	device_key(a, akey);
	path_in(file, sizeof file, "a.bundle");

	/* a branch with no link records three changes */
	put(a, "members", "name=Li Lei", "phone=13800000001", NULL);
	put(a, "needs", "category=job", "detail=welder", "status=open", NULL);
	put(a, "activities", "title=Spring festival", "held_on=2026-01-28",
	    NULL);
	r = export_ok(a, file, NULL);
	ck_assert_ptr_nonnull(strstr(r.out, "\"kind\":\"device\""));
	ck_assert_int_eq(json_int(r.out, "changesets"), 3);
	ck_assert_int_eq(json_int(r.out, "enrollments"), 1);
	ck_assert_int_eq(json_int(r.out, "missing_enrollments"), 0);
	run_free(&r);
	/* exporting sends nothing: the sets stay pending at a */
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM bs_outbox WHERE"
				   " acked=0"),
			 3);
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM bs_outbox WHERE"
				   " acked=0"),
			 3);
	{
		struct stat st;

		ck_assert_int_eq(stat(file, &st), 0);
		ck_assert_int_eq(st.st_mode & 0777, 0600);
	}

	/* the district laptop, which never synced, takes it in: a's own
	 * enrollment travels with it */
	r = import_json(d, file);
	expect_code(&r, 0);
	ck_assert_int_eq(json_int(r.out, "changesets"), 3);
	ck_assert_int_eq(json_int(r.out, "applied"), 3);
	ck_assert_int_eq(json_int(r.out, "relayed"), 3);
	ck_assert_ptr_nonnull(strstr(r.out, akey));
	run_free(&r);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM bs_applied WHERE"
		 " lower(hex(author))='%s' AND scope='b1' AND bytes IS NOT"
		 " NULL",
		 akey);
	ck_assert_int_eq(db_int(d, sql), 3);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM bs_relay WHERE"
		 " lower(hex(author))='%s' AND acked=0",
		 akey);
	ck_assert_int_eq(db_int(d, sql), 3);
	ck_assert_int_eq(db_int(d, "SELECT count(*) FROM members WHERE"
				   " phone='13800000001'"),
			 1);
	ck_assert_int_eq(db_int(d, "SELECT count(*) FROM needs"), 1);

	/* a second import changes nothing */
	state_of(d, &before);
	r = bs("bundle", "import", "--db", d, file, NULL);
	expect_code(&r, 0);
	ck_assert_msg(strstr(r.err, "0 new change sets") != NULL, "%s", r.err);
	run_free(&r);
	r = import_json(d, file);
	expect_code(&r, 0);
	ck_assert_int_eq(json_int(r.out, "applied"), 0);
	ck_assert_int_eq(json_int(r.out, "duplicates"), 3);
	ck_assert_int_eq(json_int(r.out, "relayed"), 0);
	run_free(&r);
	state_same(d, &before, "second import");

	/* d's sync pushes them with a's signatures */
	r = sync_ok(d);
	ck_assert_int_eq(json_int(r.out, "pushed"), 3);
	ck_assert_int_eq(json_int(r.out, "accepted"), 3);
	ck_assert_int_eq(json_int(r.out, "applied"), 2); /* b1, b2 rows */
	run_free(&r);
	ck_assert_int_eq(db_int(d, "SELECT count(*) FROM bs_relay WHERE"
				   " acked=1 AND receipt IS NOT NULL"),
			 3);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM srv_log WHERE kind=1"
		 " AND verdict=0 AND lower(hex(author))='%s' AND scope='b1'",
		 akey);
	ck_assert_int_eq(srv_int(sql), 3);
	snprintf(sql, sizeof sql,
		 "SELECT max(seq) FROM srv_log WHERE kind=1"
		 " AND lower(hex(author))='%s'",
		 akey);
	ck_assert_int_eq(srv_int(sql), 3);
	ck_assert_int_eq(srv_int("SELECT count(*) FROM members WHERE"
				 " phone='13800000001'"),
			 1);

	/* a, back online, is told "duplicate": acknowledged, not doubled */
	r = sync_ok(a);
	ck_assert_int_eq(json_int(r.out, "pushed"), 3);
	ck_assert_int_eq(json_int(r.out, "accepted"), 0);
	ck_assert_int_eq(json_int(r.out, "duplicates"), 3);
	run_free(&r);
	ck_assert_int_eq(db_int(a, "SELECT count(*) FROM bs_outbox WHERE"
				   " acked=1 AND receipt IS NOT NULL"),
			 3);
	ck_assert_int_eq(srv_int("SELECT count(*) FROM (SELECT cs_id FROM"
				 " srv_log WHERE kind=1 GROUP BY cs_id"
				 " HAVING count(*) > 1)"),
			 0);
	ck_assert_int_eq(srv_int(sql), 3);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM srv_log WHERE kind=1"
		 " AND lower(hex(author))='%s'",
		 akey);
	ck_assert_int_eq(srv_int(sql), 3);

	/* the next round changes nothing anywhere */
	r = sync_ok(d);
	ck_assert_int_eq(json_int(r.out, "pushed"), 0);
	ck_assert_int_eq(json_int(r.out, "applied"), 0);
	run_free(&r);
	sync_quiet(a);
	server_stop();
	digest_of(a, da);
	digest_of(d, dd);
	server_digest(NULL, sall);
	server_digest("b1", s1);
	digest_eq(dd, sall, "district device and server");
	digest_eq(da, s1, "branch device and the server's b1 view");
}
END_TEST

/* A device bundle must chain to what the importer holds. */
START_TEST(device_bundle_chains_to_replica)
{
	char a[400], d[400], file[400];
	struct run r;

	device("a", "branch", "b1", a, sizeof a);
	device("d", "district", NULL, d, sizeof d);
	path_in(file, sizeof file, "a.bundle");
	put(a, "members", "name=Li Lei", NULL);
	sync_quiet(a);
	put(a, "members", "name=Han Meimei", NULL);
	put(a, "members", "name=Wei Wei", NULL);
	r = export_ok(a, file, NULL);
	ck_assert_int_eq(json_int(r.out, "changesets"), 2);
	run_free(&r);

	/* d never saw a's first change set: a gap, refused whole */
	import_refused(d, file, 4,
		       "neither the bundle nor this replica "
		       "holds",
		       "gap before the bundle");
	ck_assert_int_eq(db_int(d, "SELECT count(*) FROM members"), 0);

	/* once d has it, the bundle goes in */
	sync_quiet(d);
	r = import_json(d, file);
	expect_code(&r, 0);
	ck_assert_int_eq(json_int(r.out, "applied"), 2);
	ck_assert_int_eq(json_int(r.out, "relayed"), 2);
	run_free(&r);
	ck_assert_int_eq(db_int(d, "SELECT count(*) FROM members"), 3);
}
END_TEST

/* ---- district -> branch ---- */

START_TEST(district_to_branch)
{
	char a[400], c[400], d[400], b[400], file[400], file2[400];
	char sql[300];
	uint8_t db_[HASH_BYTES], s1[HASH_BYTES];
	struct run r;

	device("a", "branch", "b1", a, sizeof a);
	device("c", "branch", "b2", c, sizeof c);
	device("d", "district", NULL, d, sizeof d);
	device("b", "branch", "b1", b, sizeof b);
	path_in(file, sizeof file, "for-b1.bundle");
	path_in(file2, sizeof file2, "for-b2.bundle");

	put(a, "members", "name=Li Lei", NULL);
	put(a, "needs", "category=job", "detail=welder", NULL);
	put(c, "members", "name=Wang Wu", "phone=13900000009", NULL);
	/* d's chain interleaves scopes: the b1 bundle holds d's sets 1, 3
	 * and 4, not 2 */
	put(d, "members", "branch_id=b1", "name=Sun Qi", NULL);
	put(d, "members", "branch_id=b2", "name=Zhou Ba", NULL);
	put(d, "trainings", "branch_id=district", "title=Evening school",
	    "held_on=2026-02-01", NULL);
	put(d, "activities", "branch_id=b1", "title=Visit", NULL);
	sync_quiet(a);
	sync_quiet(c);
	sync_quiet(d);
	sync_quiet(d);

	/* only a district device exports for a branch */
	r = bs("bundle", "export", "--db", a, "--out", file, "--for", "b1",
	       NULL);
	expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "only a district device"));
	run_free(&r);
	ck_assert_int_eq(access(file, F_OK), -1);
	r = bs("bundle", "export", "--db", d, "--out", file, "--for",
	       "district", NULL);
	expect_code(&r, 2);
	run_free(&r);

	r = export_ok(d, file, "b1");
	ck_assert_ptr_nonnull(strstr(r.out, "\"kind\":\"branch\""));
	/* the b1 branch row, a's 2, d's 3 */
	ck_assert_int_eq(json_int(r.out, "changesets"), 6);
	/* d's own, the server's, a's */
	ck_assert_int_eq(json_int(r.out, "enrollments"), 3);
	ck_assert_int_eq(json_int(r.out, "missing_enrollments"), 0);
	run_free(&r);

	/* b, enrolled but never synced, takes it in */
	r = import_json(b, file);
	expect_code(&r, 0);
	ck_assert_int_eq(json_int(r.out, "applied"), 6);
	ck_assert_int_eq(json_int(r.out, "relayed"), 0);
	run_free(&r);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM members WHERE"
				   " branch_id='b1'"),
			 2);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM members WHERE"
				   " branch_id='b2'"),
			 0);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM bs_applied WHERE"
				   " scope='b2'"),
			 0);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM trainings WHERE"
				   " branch_id='district'"),
			 1);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM branches"), 1);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM needs"), 1);
	ck_assert_int_eq(db_int(b, "SELECT count(*) FROM bs_relay"), 0);

	/* a bundle for b2 is not for b */
	r = export_ok(d, file2, "b2");
	run_free(&r);
	import_refused(b, file2, 2, "is for branch b2", "bundle for b2");
	/* nor is a b2 device's own bundle */
	put(c, "members", "name=Zhao Liu", NULL);
	r = export_ok(c, file2, NULL);
	ck_assert_int_eq(json_int(r.out, "changesets"), 1);
	run_free(&r);
	import_refused(b, file2, 2, "may not see", "b2 device's bundle");

	/* b's first sync finds nothing new */
	r = sync_ok(b);
	ck_assert_int_eq(json_int(r.out, "applied"), 0);
	run_free(&r);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM bs_applied");
	ck_assert_int_eq(db_int(b, sql), 6);
	server_stop();
	digest_of(b, db_);
	server_digest("b1", s1);
	digest_eq(db_, s1, "fresh b1 device and the server's b1 view");
}
END_TEST

/* ---- damage ---- */

/* Makes a replica bundle of a's three change sets for d (never synced)
 * and returns its frames. */
static void damaged_setup(char *a, char *d, size_t n, char *file,
			  struct frames *fs)
{
	struct run r;

	device("a", "branch", "b1", a, n);
	device("d", "district", NULL, d, n);
	snprintf(file, n, "%s/a.bundle", tmp);
	put(a, "members", "name=Li Lei", "phone=13800000001", NULL);
	put(a, "members", "name=Han Meimei", NULL);
	put(a, "needs", "category=training", "detail=computers", NULL);
	r = export_ok(a, file, NULL);
	run_free(&r);
	frames_read(file, fs);
	/* META, a's enrollment, three change sets */
	ck_assert_uint_eq(fs->n, 5);
	ck_assert_int_eq(fs->type[0], FRAME_META);
	ck_assert_int_eq(fs->type[1], FRAME_ENROLLMENT);
	ck_assert_int_eq(fs->type[2], FRAME_CHANGESET);
}

/* A copy of the bundle with one byte of frame k's payload flipped. */
static void flip(const struct frames *fs, int k, size_t at, const char *path)
{
	uint8_t *copy = malloc(fs->len);

	ck_assert_ptr_nonnull(copy);
	ck_assert_uint_lt(at, fs->plen[k]);
	memcpy(copy, fs->data, fs->len);
	copy[fs->off[k] + at] ^= 0x01;
	file_write(path, copy, fs->len);
	free(copy);
}

START_TEST(damage_changes_nothing)
{
	char a[400], d[400], file[400], bad[400];
	struct frames fs;
	struct run r;
	int cs = 3; /* the second change set */
	const int swapped[] = {0, 1, 3, 2, 4, -1};
	const int repeated[] = {0, 1, 2, 3, 4, 3, -1};
	const int dropped[] = {0, 1, 2, 4, -1};
	const int extra_end[] = {0, 1, 2, 3, 4, 1, -1};

	damaged_setup(a, d, sizeof a, file, &fs);
	path_in(bad, sizeof bad, "bad.bundle");

	/* a flipped byte in the body, the signature, the envelope */
	flip(&fs, cs, fs.plen[cs] - 1, bad);
	import_refused(d, bad, 4,
		       "frame 4 is a change set that does not "
		       "verify",
		       "body byte");
	flip(&fs, cs, fs.plen[cs] / 2, bad);
	import_refused(d, bad, 4, "frame 4", "middle byte");
	flip(&fs, cs, 140, bad);
	import_refused(d, bad, 4, "frame 4", "signature byte");
	flip(&fs, cs, 10, bad);
	import_refused(d, bad, 4, "frame 4", "author byte");
	flip(&fs, cs, 50, bad);
	import_refused(d, bad, 4, "frame 4", "prev byte");

	/* cut short */
	file_write(bad, fs.data, fs.len - 10);
	import_refused(d, bad, 4, "truncated", "last 10 bytes cut");
	file_write(bad, fs.data, fs.len - 2);
	import_refused(d, bad, 4, "truncated", "END cut");
	file_write(bad, fs.data, 3);
	import_refused(d, bad, 4, "truncated", "3 bytes");
	file_write(bad, (const uint8_t *)"", 0);
	import_refused(d, bad, 4, "truncated", "empty file");
	file_write(bad, (const uint8_t *)"id,name\n1,x\n", 12);
	import_refused(d, bad, 4, "not a bundle", "not a bundle");
	{
		uint8_t *more = malloc(fs.len + 1);

		ck_assert_ptr_nonnull(more);
		memcpy(more, fs.data, fs.len);
		more[fs.len] = 0;
		file_write(bad, more, fs.len + 1);
		free(more);
		import_refused(d, bad, 4, "malformed at byte", "after END");
	}

	/* frames out of their order: a's sequence 2 first (a gap), a set
	 * repeated after a later one, a set left out */
	frames_write(&fs, swapped, -1, 0, NULL, 0, bad);
	import_refused(d, bad, 4, "frame 3: device", "swapped sets");
	frames_write(&fs, repeated, -1, 0, NULL, 0, bad);
	import_refused(d, bad, 4, "sequence order", "repeated set");
	frames_write(&fs, dropped, -1, 0, NULL, 0, bad);
	import_refused(d, bad, 4, "neither the bundle nor this replica",
		       "a set left out");
	frames_write(&fs, extra_end, -1, 0, NULL, 0, bad);
	import_refused(d, bad, 4, "frame 6", "enrollment after the sets");
	{
		static const int meta_late[] = {1, 0, 2, 3, 4, -1};

		frames_write(&fs, meta_late, -1, 0, NULL, 0, bad);
		import_refused(d, bad, 4, "frame 1", "META not first");
	}

	/* and the bundle itself goes in */
	r = import_json(d, file);
	expect_code(&r, 0);
	ck_assert_int_eq(json_int(r.out, "applied"), 3);
	run_free(&r);
	free(fs.data);
}
END_TEST

/* A device bundle's META, written here from protocol/FORMAT.md alone. */
static void meta_bytes(struct buf *b, const uint8_t server_pk[32],
		       const uint8_t exporter[32], uint64_t time_ms)
{
	/* protocol/FORMAT.md, "Bundles": magic, version, kind, origin,
	 * server key, exporter, scope, time */
	buf_append(b, "BSBN", 4);
	buf_append_u8(b, 1);
	buf_append_u8(b, 1);
	wire_put_blob(b, "Test", 4);
	buf_append(b, server_pk, 32);
	buf_append(b, exporter, 32);
	wire_put_blob(b, "b1", 2);
	wire_put_u64be(b, time_ms);
}

/* The known answer of protocol/FORMAT.md, "Bundles". */
static void meta_known_answer(void)
{
	static const char want[] =
	    "4253424e01010454657374"
	    "1111111111111111111111111111111111111111111111111111111111111111"
	    "2222222222222222222222222222222222222222222222222222222222222222"
	    "0262310000019ac0e4a000";
	uint8_t k1[32], k2[32];
	char hex[2 * 86 + 1];
	struct buf b;

	memset(k1, 0x11, sizeof k1);
	memset(k2, 0x22, sizeof k2);
	buf_init(&b, 512);
	meta_bytes(&b, k1, k2, UINT64_C(1764172800000));
	ck_assert_int_eq(b.status, BS_OK);
	ck_assert_uint_eq(b.len, 86);
	sodium_bin2hex(hex, sizeof hex, b.data, b.len);
	ck_assert_str_eq(hex, want);
	buf_release(&b);
}

static void hex_key(const char *hex, uint8_t out[32])
{
	size_t got = 0;

	ck_assert_int_eq(
	    sodium_hex2bin(out, 32, hex, HEX_KEY, NULL, &got, NULL), 0);
	ck_assert_uint_eq(got, 32);
}

START_TEST(foreign_signatures_refused)
{
	char a[400], d[400], file[400], bad[400], akey[HEX_KEY + 1];
	uint8_t other_pk[32], other_sk[64], apk[32], spk[32];
	const int all[] = {0, 1, 2, 3, 4, -1};
	struct enrollment en;
	struct frames fs;
	struct buf b;
	struct run r;

	damaged_setup(a, d, sizeof a, file, &fs);
	path_in(bad, sizeof bad, "bad.bundle");
	device_key(a, akey);
	hex_key(akey, apk);
	hex_key(srv_key, spk);
	crypto_sign_keypair(other_pk, other_sk);

	/* an enrollment of a's key, signed by another server */
	memset(&en, 0, sizeof en);
	memcpy(en.device, apk, 32);
	en.role = ROLE_BRANCH;
	strcpy(en.scope, "b1");
	strcpy(en.name, "a");
	buf_init(&b, 4096);
	ck_assert_int_eq(enrollment_sign(&en, other_sk, &b), BS_OK);
	frames_write(&fs, all, 1, FRAME_ENROLLMENT, b.data, b.len, bad);
	import_refused(d, bad, 4,
		       "frame 2: the enrollment is not one signed "
		       "by this device's district server",
		       "forged enrollment");
	buf_release(&b);

	/* a's real enrollment, as district: the server never signed that */
	en.role = ROLE_DISTRICT;
	strcpy(en.scope, "district");
	ck_assert_int_eq(enrollment_sign(&en, other_sk, &b), BS_OK);
	frames_write(&fs, all, 1, FRAME_ENROLLMENT, b.data, b.len, bad);
	import_refused(d, bad, 4, "frame 2", "forged district enrollment");
	buf_release(&b);

	/* made for another server */
	meta_bytes(&b, other_pk, apk, 0);
	frames_write(&fs, all, 0, FRAME_META, b.data, b.len, bad);
	import_refused(d, bad, 4, "made for the server with key",
		       "another server's META");
	buf_release(&b);

	/* the same META for this server is accepted: the format is as
	 * written */
	meta_known_answer();
	meta_bytes(&b, spk, apk, UINT64_C(1764172800000));
	frames_write(&fs, all, 0, FRAME_META, b.data, b.len, bad);
	buf_release(&b);
	r = import_json(d, bad);
	expect_code(&r, 0);
	ck_assert_int_eq(json_int(r.out, "applied"), 3);
	run_free(&r);
	free(fs.data);
}
END_TEST

/* ---- the relay and refusals ---- */

START_TEST(refused_relay_does_not_block)
{
	char a[400], d[400], file[400], file2[400], akey[HEX_KEY + 1];
	struct run r;
	int port;

	device("a", "branch", "b1", a, sizeof a);
	device("d", "district", NULL, d, sizeof d);
	device_key(a, akey);
	path_in(file, sizeof file, "a.bundle");
	path_in(file2, sizeof file2, "a2.bundle");
	sync_quiet(d);
	put(a, "members", "name=Li Lei", NULL);
	put(a, "members", "name=Han Meimei", NULL);
	r = export_ok(a, file, NULL);
	run_free(&r);

	/* a is revoked; d does not know yet */
	port = srv_port;
	server_stop();
	r = bsd("revoke", "--data", srv_dir, akey, NULL);
	expect_code(&r, 0);
	run_free(&r);
	server_start(port);
	r = import_json(d, file);
	expect_code(&r, 0);
	ck_assert_int_eq(json_int(r.out, "relayed"), 2);
	run_free(&r);
	put(d, "trainings", "branch_id=district", "title=Evening school", NULL);

	/* the server refuses the relay without logging it; d's own change
	 * goes through all the same, and the relay stays queued */
	r = bs("sync", "--db", d, "--json", NULL);
	expect_code(&r, 0);
	ck_assert_msg(strstr(r.err, "relayed for another device") &&
			  strstr(r.err, "revoked"),
		      "stderr: %s", r.err);
	ck_assert_int_eq(json_int(r.out, "accepted"), 1);
	run_free(&r);
	ck_assert_int_eq(db_int(d, "SELECT count(*) FROM bs_outbox WHERE"
				   " acked=1"),
			 1);
	ck_assert_int_eq(db_int(d, "SELECT count(*) FROM bs_relay WHERE"
				   " acked=0 AND verdict LIKE '%revoked%'"),
			 2);
	{
		char sql[200];

		snprintf(sql, sizeof sql,
			 "SELECT count(*) FROM srv_log WHERE"
			 " kind=1 AND lower(hex(author))='%s'",
			 akey);
		ck_assert_int_eq(srv_int(sql), 0);
	}

	/* now that d knows of the revocation, a new set of a is refused;
	 * the ones it holds are still a no-op */
	put(a, "members", "name=Wei Wei", NULL);
	r = export_ok(a, file2, NULL);
	run_free(&r);
	import_refused(d, file2, 4, "which the server revoked",
		       "revoked author");
	r = import_json(d, file);
	expect_code(&r, 0);
	ck_assert_int_eq(json_int(r.out, "applied"), 0);
	run_free(&r);
}
END_TEST

/* ---- the command line ---- */

START_TEST(usage_and_refusals)
{
	char a[400], n[400], file[400], missing[400];
	struct run r;

	device("a", "branch", "b1", a, sizeof a);
	path_in(n, sizeof n, "new.db");
	path_in(file, sizeof file, "x.bundle");
	path_in(missing, sizeof missing, "missing.bundle");
	device_init(n);

	r = bs("bundle", NULL);
	expect_code(&r, 1);
	run_free(&r);
	r = bs("bundle", "frob", "--db", a, NULL);
	expect_code(&r, 1);
	run_free(&r);
	r = bs("bundle", "export", "--db", a, NULL);
	expect_code(&r, 1);
	run_free(&r);
	r = bs("bundle", "import", "--db", a, NULL);
	expect_code(&r, 1);
	run_free(&r);
	r = bs("bundle", "import", "--db", a, file, file, NULL);
	expect_code(&r, 1);
	run_free(&r);
	r = bs("bundle", "export", "--help", NULL);
	expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "bundle import"));
	run_free(&r);

	/* a device that is not enrolled has no server to bundle for */
	r = bs("bundle", "export", "--db", n, "--out", file, NULL);
	expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "not enrolled"));
	run_free(&r);
	ck_assert_int_eq(access(file, F_OK), -1);

	/* nothing pending: a valid bundle with no change sets */
	r = bs("bundle", "export", "--db", a, "--out", file, NULL);
	expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "no change sets"));
	run_free(&r);
	r = bs("bundle", "import", "--db", n, file, NULL);
	expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "not enrolled"));
	run_free(&r);
	r = bs("bundle", "import", "--db", a, file, NULL);
	expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "0 new change sets"));
	run_free(&r);
	import_refused(a, missing, 2, "cannot read", "missing file");
}
END_TEST

static Suite *bundle_suite(void)
{
	Suite *s = suite_create("bundle");
	TCase *tc = tcase_create("bundle");

	tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, relay_through_district);
	tcase_add_test(tc, device_bundle_chains_to_replica);
	tcase_add_test(tc, district_to_branch);
	tcase_add_test(tc, damage_changes_nothing);
	tcase_add_test(tc, foreign_signatures_refused);
	tcase_add_test(tc, refused_relay_does_not_block);
	tcase_add_test(tc, usage_and_refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bundle_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
