/* test_audit.c - Check suite 'audit': builds a small honest district with a
 * real branchsyncd ($BRANCHSYNCD_BIN) and real branchsync processes
 * ($BRANCHSYNC_BIN): two branches, several devices, puts and updates, a
 * change set refused as out of scope (made by a device that ignores its own
 * policy, with shared/capture), a revocation. Then `branchsync audit`: the
 * honest log passes from an export and from the server with an auditor
 * enrollment; every tampering is caught with exit 4 and a message naming
 * the entry: flipped bytes (signature, body, enrollment, checkpoint,
 * digest), a deleted entry, swapped entries, an entry by an unknown key, a
 * re-signed enrollment, a record changed in the server's database, a
 * revoked device's write with the checkpoint and digest re-signed by the
 * server's own key, and a server that forks its log between two audits.
 * A synthetic log of several thousand change sets crosses batch and thread
 * boundaries. */
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

#include <sodium.h>
#include <sqlite3.h>

#include "capture.h"
#include "changeset.h"
#include "checkpoint.h"
#include "clock.h"
#include "digest.h"
#include "enrollment.h"
#include "err.h"
#include "frame.h"
#include "keystore.h"
#include "logentry.h"
#include "merkle.h"
#include "replica.h"
#include "sign.h"
#include "statedigest.h"
#include "wire.h"

#define MAX_ARGS  32
#define HEX_KEY	  64
#define NOT_FOUND ((size_t)-1)

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
	ck_assert_msg(r->code == code,
		      "exit %d, wanted %d; stdout: %s\n"
		      "stderr: %s",
		      r->code, code, r->out, r->err);
}

static void first_line(const struct run *r, char *out, size_t n)
{
	size_t len = strcspn(r->out, "\n");

	ck_assert_uint_lt(len, n);
	memcpy(out, r->out, len);
	out[len] = '\0';
}

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

/* Starts serving on `port` (0: a random one in 20000-32000, below the
 * kernel's ephemeral range, so that while this server is stopped no other
 * test's server takes its port) and waits for the port file. */
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

static void sync_code(const char *db, int code)
{
	struct run r = bs("sync", "--db", db, NULL);

	expect_code(&r, code);
	run_free(&r);
}

/* ---- files ---- */

static sqlite3 *db_open(const char *path)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
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

/* Copies the regular files of `from` into `to` (made if need be),
 * replacing what `to` held. */
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

static void read_all(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	*out = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(*out);
	ck_assert_uint_eq(fread(*out, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
}

/* ---- keys ---- */

/* The device key of a replica made with --no-passphrase. */
static struct keystore_key *replica_key(const char *db)
{
	sqlite3 *h = db_open(db);
	sqlite3_stmt *st = NULL;
	struct keystore_key *k = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(h,
					    "SELECT value FROM bs_settings"
					    " WHERE key='device_key'",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(keystore_open(sqlite3_column_blob(st, 0),
				       (size_t)sqlite3_column_bytes(st, 0),
				       NULL, &k),
			 BS_OK);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return k;
}

/* The server's key from its data directory (made with --no-passphrase). */
static struct keystore_key *server_secret(void)
{
	char path[450];
	uint8_t *sealed;
	size_t len;
	struct keystore_key *k = NULL;

	snprintf(path, sizeof path, "%s/server.key", srv_dir);
	read_all(path, &sealed, &len);
	ck_assert_int_eq(keystore_open(sealed, len, NULL, &k), BS_OK);
	free(sealed);
	return k;
}

/* Runs `sql` on the replica through capture as its device, with no scope
 * limit (a device that ignores its own policy), and copies the signed
 * change set made into out. */
static void rogue_write(const char *db, const char *sql, struct buf *out)
{
	struct keystore_key *k = replica_key(db);
	struct capture_signer sg = {k->pk, k->sk, NULL, clock_wall_ms()};
	struct replica *r = NULL;
	struct capture *c = NULL;
	sqlite3_stmt *st = NULL;
	struct err e;
	int count = 0;

	err_init(&e);
	ck_assert_msg(replica_open(db, REPLICA_OPEN, &r, &e) == 0, "%s", e.msg);
	ck_assert_msg(capture_begin(r, &sg, &c, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(sqlite3_exec(r->db, sql, NULL, NULL, NULL), SQLITE_OK);
	ck_assert_msg(capture_commit(c, &count, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(count, 1);
	capture_free(c);
	ck_assert_int_eq(sqlite3_prepare_v2(r->db,
					    "SELECT bytes FROM bs_outbox"
					    " ORDER BY seq DESC LIMIT 1",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	buf_reset(out);
	buf_append(out, sqlite3_column_blob(st, 0),
		   (size_t)sqlite3_column_bytes(st, 0));
	ck_assert_int_eq(out->status, BS_OK);
	sqlite3_finalize(st);
	replica_close(r);
	keystore_key_free(k);
}

/* ---- export files, frame by frame ---- */

struct xframe {
	uint8_t type;
	uint8_t *p;
	size_t len;
};

struct xlog {
	struct xframe *f;
	size_t n;
	uint8_t pk[SIGN_PUBLIC_BYTES];
};

static void xlog_add(struct xlog *x, size_t pos, uint8_t type, const uint8_t *p,
		     size_t len)
{
	x->f = realloc(x->f, (x->n + 1) * sizeof *x->f);
	ck_assert_ptr_nonnull(x->f);
	memmove(x->f + pos + 1, x->f + pos, (x->n - pos) * sizeof *x->f);
	x->f[pos].type = type;
	x->f[pos].p = malloc(len + 1);
	ck_assert_ptr_nonnull(x->f[pos].p);
	if (len)
		memcpy(x->f[pos].p, p, len);
	x->f[pos].len = len;
	x->n++;
}

static void xlog_remove(struct xlog *x, size_t pos)
{
	free(x->f[pos].p);
	memmove(x->f + pos, x->f + pos + 1, (x->n - pos - 1) * sizeof *x->f);
	x->n--;
}

static void xlog_set(struct xlog *x, size_t pos, const uint8_t *p, size_t len)
{
	free(x->f[pos].p);
	x->f[pos].p = malloc(len + 1);
	ck_assert_ptr_nonnull(x->f[pos].p);
	memcpy(x->f[pos].p, p, len);
	x->f[pos].len = len;
}

static void xlog_read(const char *path, struct xlog *x)
{
	struct frame_reader fr;
	struct frame f;
	uint8_t *data;
	size_t len, off = 0, used;

	memset(x, 0, sizeof *x);
	read_all(path, &data, &len);
	frame_reader_init(&fr, 16u << 20);
	while (off < len) {
		ck_assert_int_eq(
		    frame_reader_feed(&fr, data + off, len - off, &used),
		    BS_OK);
		off += used;
		while (frame_reader_next(&fr, &f))
			xlog_add(x, x->n, f.type, f.payload, f.len);
	}
	ck_assert_int_eq(frame_reader_finish(&fr), BS_OK);
	frame_reader_release(&fr);
	free(data);
	ck_assert_uint_gt(x->n, 0);
	ck_assert_int_eq(x->f[0].type, FRAME_META);
	memcpy(x->pk, x->f[0].p, SIGN_PUBLIC_BYTES);
}

static void xlog_write(const struct xlog *x, const char *path)
{
	struct buf b;
	FILE *f;
	size_t i;

	buf_init(&b, 1u << 30);
	frame_stream_begin(&b);
	for (i = 0; i < x->n; i++)
		frame_put(&b, x->f[i].type, x->f[i].p, x->f[i].len);
	frame_stream_end(&b);
	ck_assert_int_eq(b.status, BS_OK);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(b.data, 1, b.len, f), b.len);
	ck_assert_int_eq(fclose(f), 0);
	buf_release(&b);
}

static void xlog_free(struct xlog *x)
{
	size_t i;

	for (i = 0; i < x->n; i++)
		free(x->f[i].p);
	free(x->f);
	memset(x, 0, sizeof *x);
}

static size_t xlog_find_type(const struct xlog *x, uint8_t type)
{
	size_t i;

	for (i = 0; i < x->n; i++)
		if (x->f[i].type == type)
			return i;
	return NOT_FOUND;
}

/* The log entry of ENTRY frame `pos`: its index and decoded entry, and
 * the offset of the entry's payload in the frame. */
static size_t xlog_entry(const struct xlog *x, size_t pos, uint64_t *index,
			 struct logentry *le)
{
	struct wire_reader r;

	ck_assert_int_eq(x->f[pos].type, FRAME_ENTRY);
	wire_reader_init(&r, x->f[pos].p, x->f[pos].len);
	ck_assert_int_eq(wire_get_varint(&r, index), BS_OK);
	ck_assert_int_eq(
	    logentry_decode(x->f[pos].p + r.pos, x->f[pos].len - r.pos, le),
	    BS_OK);
	return (size_t)(le->payload - x->f[pos].p);
}

/* The frame of the nth (from 0) entry of `kind` and `verdict` whose author
 * (change sets) or device (enrollments, revocations) is `who` (any when
 * NULL). */
static size_t xlog_find(const struct xlog *x, int kind, int verdict,
			const uint8_t *who, int nth)
{
	size_t i;

	for (i = 0; i < x->n; i++) {
		struct logentry le;
		struct changeset cs;
		struct enrollment en;
		struct revocation rv;
		const uint8_t *key = NULL;
		uint64_t index;

		if (x->f[i].type != FRAME_ENTRY)
			continue;
		xlog_entry(x, i, &index, &le);
		if ((int)le.kind != kind || (int)le.verdict != verdict)
			continue;
		if (kind == LOGENTRY_CHANGESET &&
		    changeset_decode(le.payload, le.payload_len, &cs) == BS_OK)
			key = cs.env.author;
		if (kind == LOGENTRY_ENROLLMENT &&
		    enrollment_open(le.payload, le.payload_len, x->pk, &en) ==
			BS_OK)
			key = en.device;
		if (kind == LOGENTRY_REVOCATION &&
		    revocation_open(le.payload, le.payload_len, x->pk, &rv) ==
			BS_OK)
			key = rv.device;
		if (who && (!key || memcmp(key, who, SIGN_PUBLIC_BYTES) != 0))
			continue;
		if (nth-- == 0)
			return i;
	}
	return NOT_FOUND;
}

static uint64_t xlog_index(const struct xlog *x, size_t pos)
{
	struct logentry le;
	uint64_t index;

	xlog_entry(x, pos, &index, &le);
	return index;
}

/* An ENTRY frame payload: varint index || the entry. */
static void entry_frame(uint64_t index, int kind, int verdict,
			const char *reason, const uint8_t *p, size_t len,
			struct buf *out)
{
	struct logentry le = {
	    kind, verdict, reason, reason ? strlen(reason) : 0, p, len};

	buf_reset(out);
	wire_put_varint(out, index);
	ck_assert_int_eq(logentry_encode(&le, out), BS_OK);
}

/* Re-signs the export's checkpoint over all its entries with sk, as a
 * dishonest server would. */
static void xlog_resign_checkpoint(struct xlog *x, const uint8_t *sk)
{
	struct merkle_compact mc;
	struct checkpoint cp;
	struct buf b;
	size_t i, pos = xlog_find_type(x, FRAME_CHECKPOINT);

	ck_assert_uint_ne(pos, NOT_FOUND);
	ck_assert_int_eq(checkpoint_decode(x->f[pos].p, x->f[pos].len, &cp),
			 BS_OK);
	merkle_compact_init(&mc);
	for (i = 0; i < x->n; i++) {
		struct wire_reader r;
		uint64_t index;
		uint8_t leaf[HASH_BYTES];

		if (x->f[i].type != FRAME_ENTRY)
			continue;
		wire_reader_init(&r, x->f[i].p, x->f[i].len);
		ck_assert_int_eq(wire_get_varint(&r, &index), BS_OK);
		logentry_leaf_hash(x->f[i].p + r.pos, x->f[i].len - r.pos,
				   leaf);
		ck_assert_int_eq(merkle_compact_append(&mc, leaf), BS_OK);
	}
	cp.size = merkle_compact_size(&mc);
	merkle_compact_root(&mc, cp.root);
	buf_init(&b, CHECKPOINT_SIGNED_MAX);
	ck_assert_int_eq(checkpoint_sign(&cp, sk, &b), BS_OK);
	xlog_set(x, pos, b.data, b.len);
	buf_release(&b);
}

/* Re-signs the export's state digest as one of `size` entries and
 * `digest`. */
static void xlog_resign_digest(struct xlog *x, const uint8_t *sk, uint64_t size,
			       const uint8_t *digest)
{
	struct statedigest sd;
	struct buf b;
	size_t pos = xlog_find_type(x, FRAME_DIGEST);

	ck_assert_uint_ne(pos, NOT_FOUND);
	ck_assert_int_eq(
	    statedigest_open(x->f[pos].p, x->f[pos].len, x->pk, &sd), BS_OK);
	sd.log_size = size;
	memcpy(sd.digest, digest, HASH_BYTES);
	buf_init(&b, STATEDIGEST_SIGNED_MAX);
	ck_assert_int_eq(statedigest_sign(&sd, sk, &b), BS_OK);
	xlog_set(x, pos, b.data, b.len);
	buf_release(&b);
}

/* The position just after the last ENTRY frame, and the next index. */
static size_t xlog_end(const struct xlog *x, uint64_t *next)
{
	size_t i, last = NOT_FOUND;

	for (i = 0; i < x->n; i++)
		if (x->f[i].type == FRAME_ENTRY)
			last = i;
	ck_assert_uint_ne(last, NOT_FOUND);
	*next = xlog_index(x, last) + 1;
	return last + 1;
}

/* ---- auditing ---- */

static struct run audit_log(const char *file)
{
	return bs("audit", "--log", file, NULL);
}

/* The audit of `file` fails (exit 4) and its report holds every needle. */
static void expect_caught(const char *file, const char *n1, const char *n2)
{
	struct run r = audit_log(file);

	expect_code(&r, 4);
	ck_assert_msg(strstr(r.out, "FAILED") && strstr(r.err, "the audit "
							       "found"),
		      "report: %s\nstderr: %s", r.out, r.err);
	ck_assert_msg(strstr(r.out, n1) != NULL, "no '%s' in the report:\n%s",
		      n1, r.out);
	ck_assert_msg(!n2 || strstr(r.out, n2) != NULL,
		      "no '%s' in the report:\n%s", n2, r.out);
	run_free(&r);
}

/* "entry N" as the report writes it. */
static const char *entry_name(uint64_t index, char *out, size_t n)
{
	snprintf(out, n, "entry %llu", (unsigned long long)index);
	return out;
}

/* ---- the district ---- */

struct district {
	char a1[400], a2[400], b[400], d[400], au[400];
	uint8_t a1_pk[SIGN_PUBLIC_BYTES], a2_pk[SIGN_PUBLIC_BYTES];
	char member[65]; /* put by a1, edited by a2 and a1 */
	char log[400];	 /* the export */
};

static void device_pk(const char *db, uint8_t pk[SIGN_PUBLIC_BYTES])
{
	struct keystore_key *k = replica_key(db);

	memcpy(pk, k->pk, SIGN_PUBLIC_BYTES);
	keystore_key_free(k);
}

static void export(const char *path)
{
	struct run r =
	    bsd("export-log", "--data", srv_dir, "--out", path, NULL);

	expect_code(&r, 0);
	run_free(&r);
}

/* Two branches and a district; a1 and a2 write b1, b writes b2, d the
 * district; a2 edits a1's member; a1 signs a write of b2 that the server
 * refuses and logs; a2 is revoked; a1 goes on. The log is exported to
 * D->log. */
static void district_build(struct district *D)
{
	char a2hex[HEX_KEY + 1], other[65];
	struct buf cs;
	struct run r;
	int port = srv_port;

	device("a1", "branch", "b1", D->a1, sizeof D->a1);
	device("a2", "branch", "b1", D->a2, sizeof D->a2);
	device("b", "branch", "b2", D->b, sizeof D->b);
	device("d", "district", NULL, D->d, sizeof D->d);
	device("au", "auditor", NULL, D->au, sizeof D->au);
	device_pk(D->a1, D->a1_pk);
	device_pk(D->a2, D->a2_pk);

	put(D->a1, D->member, "members", "name=Li Lei", "gender=male", NULL);
	put(D->a1, other, "members", "name=Han Meimei", NULL);
	sync_code(D->a1, 0);
	put(D->b, NULL, "members", "name=Wang Wu", NULL);
	put(D->b, NULL, "needs", "category=job", "detail=a driver", NULL);
	sync_code(D->b, 0);
	put(D->d, NULL, "activities", "branch_id=district",
	    "title=District meeting", NULL);
	sync_code(D->d, 0);
	sync_code(D->a2, 0);
	put(D->a2, NULL, "members", "--id", D->member, "phone=13800138000",
	    NULL);
	sync_code(D->a2, 0);

	/* a write of b2 by a device of b1: refused by the server and logged,
	 * and a1's chain goes on */
	buf_init(&cs, CHANGESET_MAX_ENCODED);
	rogue_write(D->a1,
		    "INSERT INTO members(id, branch_id, name, status)"
		    " VALUES('intruder', 'b2', 'Intruder', 'active')",
		    &cs);
	buf_release(&cs);
	r = bs("sync", "--db", D->a1, NULL);
	expect_code(&r, 2);
	ck_assert_msg(strstr(r.err, "out of scope"), "%s", r.err);
	run_free(&r);

	/* a2 is revoked */
	server_stop();
	sodium_bin2hex(a2hex, sizeof a2hex, D->a2_pk, SIGN_PUBLIC_BYTES);
	r = bsd("revoke", "--data", srv_dir, a2hex, NULL);
	expect_code(&r, 0);
	run_free(&r);
	server_start(port);

	put(D->a1, NULL, "members", "--id", D->member, "status=away",
	    "away_city=Shenzhen", NULL);
	sync_code(D->a1, 0);
	path_in(D->log, sizeof D->log, "log.bin");
	export(D->log);
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

	snprintf(root, sizeof root, "%s/bs-audit-XXXXXX", t && *t ? t : "/tmp");
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
	ck_assert_int_eq(sign_init(), BS_OK);
	snprintf(tmp, sizeof tmp, "%s/t-XXXXXX", root);
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	unsetenv("BRANCHSYNC_DB");
	unsetenv("BRANCHSYNC_PASSPHRASE");
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	srv_pid = -1;
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

/* ---- an honest district passes ---- */

START_TEST(honest_log_passes)
{
	struct district D;
	struct run r;
	char bad[HEX_KEY + 1];

	district_build(&D);

	r = bs("audit", "--log", D.log, NULL);
	expect_code(&r, 0);
	ck_assert_msg(strstr(r.out, "verified: every check holds") &&
			  strstr(r.out, srv_key) && strstr(r.out, "compare it"),
		      "%s", r.out);
	run_free(&r);

	r = bs("audit", "--log", D.log, "--json", NULL);
	expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"ok\":true"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"failures\":[]"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"equal\":true"));
	ck_assert_int_eq(json_int(r.out, "refused"), 1);
	ck_assert_int_eq(json_int(r.out, "revocations"), 1);
	ck_assert_int_eq(json_int(r.out, "revoked"), 1);
	/* the server, a1, a2, b, d, au */
	ck_assert_int_eq(json_int(r.out, "devices"), 6);
	ck_assert_int_eq(json_int(r.out, "members"), 3);
	ck_assert_int_eq(json_int(r.out, "size"), json_int(r.out, "entries"));
	run_free(&r);

	/* the key the district office published, or another */
	r = bs("audit", "--log", D.log, "--server-key", srv_key, NULL);
	expect_code(&r, 0);
	run_free(&r);
	memset(bad, 'a', HEX_KEY);
	bad[HEX_KEY] = '\0';
	r = bs("audit", "--log", D.log, "--server-key", bad, NULL);
	expect_code(&r, 4);
	ck_assert_msg(strstr(r.err, srv_key) != NULL, "%s", r.err);
	run_free(&r);

	/* from the server, by the auditor; the second audit extends the
	 * checkpoint the first stored */
	r = bs("audit", "--db", D.au, NULL);
	expect_code(&r, 0);
	ck_assert_msg(strstr(r.out, "verified: every check holds"), "%s",
		      r.out);
	run_free(&r);
	put(D.b, NULL, "members", "name=Zhao Liu", NULL);
	sync_code(D.b, 0);
	r = bs("audit", "--db", D.au, "--json", NULL);
	expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"extended\":true"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"checkpoint_stored\":true"));
	ck_assert_int_eq(json_int(r.out, "members"), 4);
	run_free(&r);

	/* only an auditor's replica may audit from the server */
	r = bs("audit", "--db", D.a1, NULL);
	expect_code(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "auditor"));
	run_free(&r);

	/* usage and unreadable files */
	r = bs("audit", "--log", D.log, "--db", D.au, NULL);
	expect_code(&r, 1);
	run_free(&r);
	r = bs("audit", "--log", D.log, "--record", "members", NULL);
	expect_code(&r, 1);
	run_free(&r);
	r = bs("audit", "--log", D.log, "--record", "nosuch", "x", NULL);
	expect_code(&r, 1);
	run_free(&r);
	r = bs("audit", "--log", D.a1, NULL);
	expect_code(&r, 2);
	run_free(&r);
	{
		char missing[450];

		path_in(missing, sizeof missing, "missing.bin");
		r = bs("audit", "--log", missing, NULL);
		expect_code(&r, 2);
		run_free(&r);
	}

	/* the server down: unreachable */
	server_stop();
	r = bs("audit", "--db", D.au, NULL);
	expect_code(&r, 3);
	run_free(&r);
}
END_TEST

START_TEST(record_history)
{
	struct district D;
	struct run r;
	const char *p;

	district_build(&D);
	r = bs("audit", "--log", D.log, "--record", "members", D.member, NULL);
	expect_code(&r, 0);
	p = strstr(r.out, "history of members");
	ck_assert_msg(p != NULL, "%s", r.out);
	ck_assert_ptr_nonnull(strstr(p, "(3 change sets)"));
	ck_assert_ptr_nonnull(strstr(p, "insert in b1"));
	ck_assert_ptr_nonnull(strstr(p, "name: Li Lei"));
	ck_assert_ptr_nonnull(strstr(p, "phone: 13800138000"));
	ck_assert_ptr_nonnull(strstr(p, "away_city: Shenzhen"));
	ck_assert_ptr_nonnull(strstr(p, "(branch b1)"));
	/* the row as the replay left it */
	p = strstr(p, "now, in b1:");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(strstr(p, "status: away"));
	ck_assert_ptr_nonnull(strstr(p, "phone: 13800138000"));
	run_free(&r);

	r = bs("audit", "--log", D.log, "--json", "--record", "members",
	       D.member, NULL);
	expect_code(&r, 0);
	p = strstr(r.out, "\"history\":[");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(strstr(p, "\"op\":\"insert\""));
	ck_assert_ptr_nonnull(strstr(p, "\"op\":\"update\""));
	ck_assert_ptr_nonnull(strstr(p, "\"phone\":\"13800138000\""));
	ck_assert_ptr_nonnull(strstr(p, "\"now\":{\"branch_id\":\"b1\""));
	run_free(&r);

	/* a record nobody wrote */
	r = bs("audit", "--log", D.log, "--record", "members", "nosuchid",
	       NULL);
	expect_code(&r, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "no change set wrote it"));
	run_free(&r);
}
END_TEST

/* ---- tampered exports ---- */

/* Writes x with one byte of frame `pos` flipped at `off` into tmp/name. */
static void flipped(const struct xlog *x, size_t pos, size_t off,
		    const char *name, char *out, size_t n)
{
	ck_assert_uint_lt(off, x->f[pos].len);
	path_in(out, n, name);
	x->f[pos].p[off] ^= 0x20;
	xlog_write(x, out);
	x->f[pos].p[off] ^= 0x20;
}

START_TEST(flipped_bytes_caught)
{
	struct district D;
	struct xlog x;
	struct logentry le;
	struct changeset cs;
	char file[450], at[64];
	size_t pos, off;
	uint64_t index;

	district_build(&D);
	xlog_read(D.log, &x);

	/* in a change set's signature */
	pos = xlog_find(&x, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, D.a1_pk, 0);
	ck_assert_uint_ne(pos, NOT_FOUND);
	off = xlog_entry(&x, pos, &index, &le);
	ck_assert_int_eq(changeset_decode(le.payload, le.payload_len, &cs),
			 BS_OK);
	flipped(&x, pos, off + cs.env_len + 10, "sig.bin", file, sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at),
		      "signature does not verify");

	/* in a body */
	flipped(&x, pos, off + cs.env_len + SIGN_BYTES + cs.body_len / 2,
		"body.bin", file, sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at),
		      "does not match the hash");

	/* in the envelope (its sequence, say: the signature covers it) */
	flipped(&x, pos, off + 5 + 32 + 5, "env.bin", file, sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at), "Merkle root");

	/* in an enrollment */
	pos = xlog_find(&x, LOGENTRY_ENROLLMENT, LOGENTRY_ACCEPTED, D.a1_pk, 0);
	ck_assert_uint_ne(pos, NOT_FOUND);
	off = xlog_entry(&x, pos, &index, &le);
	flipped(&x, pos, off + 12, "enroll.bin", file, sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at),
		      "enrollment does not verify");

	/* in a revocation */
	pos = xlog_find(&x, LOGENTRY_REVOCATION, LOGENTRY_ACCEPTED, D.a2_pk, 0);
	ck_assert_uint_ne(pos, NOT_FOUND);
	off = xlog_entry(&x, pos, &index, &le);
	flipped(&x, pos, off + 8, "revoke.bin", file, sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at),
		      "revocation does not verify");

	/* in an entry's verdict: accepted becomes something else */
	pos = xlog_find(&x, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, D.a1_pk, 1);
	ck_assert_uint_ne(pos, NOT_FOUND);
	xlog_entry(&x, pos, &index, &le);
	flipped(&x, pos, wire_varint_size(index) + 6, "verdict.bin", file,
		sizeof file);
	expect_caught(file, entry_name(index, at, sizeof at), "malformed");

	/* in the checkpoint's root, and in its signature */
	pos = xlog_find_type(&x, FRAME_CHECKPOINT);
	flipped(&x, pos, x.f[pos].len - SIGN_BYTES - 8 - 4, "cproot.bin", file,
		sizeof file);
	expect_caught(file, "checkpoint's signature does not verify",
		      "Merkle root");
	flipped(&x, pos, x.f[pos].len - 3, "cpsig.bin", file, sizeof file);
	expect_caught(file, "checkpoint's signature does not verify", NULL);

	/* in the state digest */
	pos = xlog_find_type(&x, FRAME_DIGEST);
	flipped(&x, pos, x.f[pos].len - SIGN_BYTES - 8 - 4, "digest.bin", file,
		sizeof file);
	expect_caught(file, "state digest does not verify", NULL);

	/* in the server's key */
	flipped(&x, 0, 3, "meta.bin", file, sizeof file);
	expect_caught(file, "entry 0", "does not start with the server's");

	/* the file, untouched, still passes */
	path_in(file, sizeof file, "same.bin");
	xlog_write(&x, file);
	{
		struct run r = audit_log(file);

		expect_code(&r, 0);
		run_free(&r);
	}
	xlog_free(&x);
}
END_TEST

START_TEST(missing_swapped_and_foreign_entries_caught)
{
	struct district D;
	struct xlog x;
	struct buf cs, fr;
	char file[450], at[64], stray[400];
	size_t pos, end;
	uint64_t index, next;

	district_build(&D);

	/* an entry deleted */
	xlog_read(D.log, &x);
	pos = xlog_find(&x, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, D.a1_pk, 1);
	index = xlog_index(&x, pos);
	xlog_remove(&x, pos);
	path_in(file, sizeof file, "deleted.bin");
	xlog_write(&x, file);
	expect_caught(file, entry_name(index, at, sizeof at),
		      "this entry is missing");
	xlog_free(&x);

	/* two entries swapped */
	xlog_read(D.log, &x);
	pos = xlog_find(&x, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, NULL, 3);
	{
		struct xframe t = x.f[pos];

		x.f[pos] = x.f[pos + 1];
		x.f[pos + 1] = t;
	}
	index = xlog_index(&x, pos + 1);
	path_in(file, sizeof file, "swapped.bin");
	xlog_write(&x, file);
	expect_caught(file, entry_name(index, at, sizeof at), "out of order");
	xlog_free(&x);

	/* an entry signed by a key the log never enrolled, added at the end
	 * with the checkpoint left as it was */
	snprintf(stray, sizeof stray, "%s/stray.db", tmp);
	device_init(stray);
	buf_init(&cs, CHANGESET_MAX_ENCODED);
	buf_init(&fr, LOGENTRY_MAX + 16);
	rogue_write(stray,
		    "INSERT INTO members(id, branch_id, name, status)"
		    " VALUES('ghost', 'b1', 'Ghost', 'active')",
		    &cs);
	xlog_read(D.log, &x);
	end = xlog_end(&x, &next);
	entry_frame(next, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, NULL, cs.data,
		    cs.len, &fr);
	xlog_add(&x, end, FRAME_ENTRY, fr.data, fr.len);
	path_in(file, sizeof file, "foreign.bin");
	xlog_write(&x, file);
	expect_caught(file, entry_name(next, at, sizeof at), "never enrolled");
	expect_caught(file, "beyond the signed checkpoint", NULL);
	xlog_free(&x);

	/* ... or in place of an honest entry, renumbered */
	xlog_read(D.log, &x);
	pos = xlog_find(&x, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, D.a1_pk, 0);
	index = xlog_index(&x, pos);
	entry_frame(index, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, NULL, cs.data,
		    cs.len, &fr);
	xlog_set(&x, pos, fr.data, fr.len);
	path_in(file, sizeof file, "replaced.bin");
	xlog_write(&x, file);
	expect_caught(file, entry_name(index, at, sizeof at), "never enrolled");
	xlog_free(&x);
	buf_release(&cs);
	buf_release(&fr);
}
END_TEST

START_TEST(enrollment_by_another_key_caught)
{
	struct district D;
	struct xlog x;
	struct logentry le;
	struct enrollment en;
	uint8_t pk[SIGN_PUBLIC_BYTES], sk[SIGN_SECRET_BYTES];
	struct buf b, fr;
	char file[450], at[64];
	size_t pos;
	uint64_t index;

	district_build(&D);
	xlog_read(D.log, &x);
	pos = xlog_find(&x, LOGENTRY_ENROLLMENT, LOGENTRY_ACCEPTED, D.a1_pk, 0);
	ck_assert_uint_ne(pos, NOT_FOUND);
	xlog_entry(&x, pos, &index, &le);
	ck_assert_int_eq(enrollment_open(le.payload, le.payload_len, x.pk, &en),
			 BS_OK);
	/* the same statement, signed by someone else's key */
	crypto_sign_keypair(pk, sk);
	buf_init(&b, ENROLLMENT_SIGNED_MAX);
	buf_init(&fr, 4096);
	ck_assert_int_eq(enrollment_sign(&en, sk, &b), BS_OK);
	entry_frame(index, LOGENTRY_ENROLLMENT, LOGENTRY_ACCEPTED, NULL, b.data,
		    b.len, &fr);
	xlog_set(&x, pos, fr.data, fr.len);
	path_in(file, sizeof file, "enroll-other.bin");
	xlog_write(&x, file);
	/* the enrollment, then a1's change sets, which then have no
	 * enrolled author */
	expect_caught(file, entry_name(index, at, sizeof at),
		      "enrollment does not verify with the server's key");
	expect_caught(file, "by a device the log never enrolled", NULL);
	buf_release(&b);
	buf_release(&fr);
	xlog_free(&x);
}
END_TEST

/* ---- the server's own records ---- */

/* Runs sql on the server's database with the sqlite3 tool, as someone
 * with access to the server's disk would. */
static void server_sql(const char *dbp, const char *sql)
{
	const char *argv[] = {"sqlite3", dbp, sql, NULL};
	struct run r = run_argv("/usr/bin/sqlite3", argv);

	if (r.code == 127) {
		/* no sqlite3 tool here: the same through the library */
		sqlite3 *h = db_open(dbp);

		ck_assert_int_eq(sqlite3_exec(h, sql, NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_close(h);
	} else {
		expect_code(&r, 0);
	}
	run_free(&r);
}

/* The branch_id of a members row of the server's database. */
static void member_branch(const char *dbp, const char *id, char *out,
			  size_t n)
{
	sqlite3 *h = db_open(dbp);
	sqlite3_stmt *st = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(h, "SELECT branch_id FROM members"
					    " WHERE id = ?1", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
}

START_TEST(changed_record_caught)
{
	struct district D;
	char sql[300], dbp[450], file[450], want[300], branch[80];
	struct run r;
	int port = srv_port;

	district_build(&D);
	server_stop();
	snprintf(dbp, sizeof dbp, "%s/server.db", srv_dir);
	member_branch(dbp, D.member, branch, sizeof branch);
	snprintf(sql, sizeof sql, "UPDATE members SET name='x' WHERE id='%s';",
		 D.member);
	server_sql(dbp, sql);
	ck_assert_int_eq(db_int(dbp, "SELECT count(*) FROM members WHERE"
				     " name='x'"),
			 1);
	path_in(file, sizeof file, "changed.bin");
	export(file);
	/* the digest fails, and the row hashes name the one row changed */
	snprintf(want, sizeof want, "table members row %s (branch %s): "
		 "differs from what the log produces", D.member, branch);
	expect_caught(file, "not what its log yields", want);

	/* from the server too, and the log itself is fine */
	server_start(port);
	r = bs("audit", "--db", D.au, "--json", NULL);
	expect_code(&r, 4);
	ck_assert_int_eq(json_int(r.out, "failures_total"), 2);
	ck_assert_ptr_nonnull(strstr(r.out, "\"verified\":true"));
	ck_assert_ptr_nonnull(strstr(r.out, "not what its log yields"));
	ck_assert_msg(strstr(r.out, want) != NULL, "no '%s' in %s", want,
		      r.out);
	snprintf(want, sizeof want, "\"table\":\"members\",\"row\":\"%s\","
		 "\"branch\":\"%s\"", D.member, branch);
	ck_assert_msg(strstr(r.out, want) != NULL, "no '%s' in %s", want,
		      r.out);
	run_free(&r);
}
END_TEST

/* A row deleted and one added behind the log's back: each is named, and
 * nothing else is. */
START_TEST(deleted_record_caught)
{
	struct district D;
	char dbp[450], file[450], sql[300], gone[300], extra[300],
	    branch[80];
	struct run r;
	int port = srv_port;

	district_build(&D);
	server_stop();
	snprintf(dbp, sizeof dbp, "%s/server.db", srv_dir);
	member_branch(dbp, D.member, branch, sizeof branch);
	snprintf(sql, sizeof sql,
		 "DELETE FROM members WHERE id='%s';"
		 " INSERT INTO members(id, branch_id, name, status)"
		 " VALUES('ghost1', '%s', 'Ghost', 'active');",
		 D.member, branch);
	server_sql(dbp, sql);
	ck_assert_int_eq(db_int(dbp, "SELECT count(*) FROM members WHERE"
				     " id='ghost1'"),
			 1);
	path_in(file, sizeof file, "deleted.bin");
	export(file);
	snprintf(gone, sizeof gone, "table members row %s (branch %s): "
		 "produced by the log but missing from the server's records",
		 D.member, branch);
	snprintf(extra, sizeof extra, "table members row ghost1 (branch %s): "
		 "in the server's records but not produced by the log",
		 branch);
	expect_caught(file, gone, extra);
	r = audit_log(file);
	ck_assert_ptr_null(strstr(r.out, "differs from what the log"));
	run_free(&r);

	server_start(port);
	r = bs("audit", "--db", D.au, "--json", NULL);
	expect_code(&r, 4);
	ck_assert_int_eq(json_int(r.out, "failures_total"), 3);
	ck_assert_msg(strstr(r.out, gone) && strstr(r.out, extra),
		      "report: %s", r.out);
	run_free(&r);
}
END_TEST

/* A revoked device's later write, accepted and applied by a dishonest
 * server that re-signs its checkpoint and digest: the policy rule still
 * fails it. */
START_TEST(revoked_write_resigned_caught)
{
	struct district D;
	struct keystore_key *sk;
	struct xlog x;
	struct buf cs, fr;
	char file[450], at[64], hex[2 * HASH_BYTES + 1];
	uint8_t digest[HASH_BYTES];
	size_t end, got;
	uint64_t next;
	const char *p;
	struct run r;

	district_build(&D);
	/* a2 writes after its revocation; the server takes it */
	buf_init(&cs, CHANGESET_MAX_ENCODED);
	buf_init(&fr, LOGENTRY_MAX + 16);
	rogue_write(D.a2,
		    "INSERT INTO members(id, branch_id, name, status)"
		    " VALUES('late', 'b1', 'Late Entry', 'active')",
		    &cs);
	sk = server_secret();
	xlog_read(D.log, &x);
	end = xlog_end(&x, &next);
	entry_frame(next, LOGENTRY_CHANGESET, LOGENTRY_ACCEPTED, NULL, cs.data,
		    cs.len, &fr);
	xlog_add(&x, end, FRAME_ENTRY, fr.data, fr.len);
	xlog_resign_checkpoint(&x, sk->sk);
	path_in(file, sizeof file, "revoked.bin");
	xlog_write(&x, file);

	/* its digest then is that of the replay, re-signed too */
	r = bs("audit", "--log", file, "--json", NULL);
	expect_code(&r, 4);
	p = strstr(r.out, "\"replayed\":\"");
	ck_assert_ptr_nonnull(p);
	memcpy(hex, p + 12, 2 * HASH_BYTES);
	hex[2 * HASH_BYTES] = '\0';
	ck_assert_int_eq(sodium_hex2bin(digest, sizeof digest, hex,
					2 * HASH_BYTES, NULL, &got, NULL),
			 0);
	run_free(&r);
	xlog_resign_digest(&x, sk->sk, next + 1, digest);
	xlog_write(&x, file);

	r = bs("audit", "--log", file, "--json", NULL);
	expect_code(&r, 4);
	ck_assert_int_eq(json_int(r.out, "failures_total"), 1);
	ck_assert_ptr_nonnull(strstr(r.out, "\"verified\":true"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"equal\":true"));
	ck_assert_ptr_nonnull(strstr(r.out, "revoked before it"));
	run_free(&r);
	expect_caught(file, entry_name(next, at, sizeof at),
		      "revoked before it");

	/* the same trick with a refusal the server never makes: an honest
	 * write logged as refused */
	xlog_free(&x);
	xlog_read(D.log, &x);
	{
		size_t pos = xlog_find(&x, LOGENTRY_CHANGESET,
				       LOGENTRY_ACCEPTED, D.a1_pk, 0);
		struct logentry le;
		uint64_t index;

		xlog_entry(&x, pos, &index, &le);
		entry_frame(index, LOGENTRY_CHANGESET, LOGENTRY_REFUSED,
			    "out of scope: made up", le.payload, le.payload_len,
			    &fr);
		xlog_set(&x, pos, fr.data, fr.len);
		xlog_resign_checkpoint(&x, sk->sk);
		path_in(file, sizeof file, "refused.bin");
		xlog_write(&x, file);
		expect_caught(file, entry_name(index, at, sizeof at),
			      "although its author may write");
	}
	keystore_key_free(sk);
	buf_release(&cs);
	buf_release(&fr);
	xlog_free(&x);
}
END_TEST

/* ---- a server that shows its auditor two histories ---- */

START_TEST(forked_log_caught)
{
	struct district D;
	char backup[450], c[400];
	struct run r;
	int port = srv_port, k;

	district_build(&D);
	/* a copy of the server as it is now */
	server_stop();
	snprintf(backup, sizeof backup, "%s/backup", tmp);
	copy_dir(srv_dir, backup);
	server_start(port);

	/* the auditor sees the log grow */
	put(D.b, NULL, "members", "name=Zhao Liu", NULL);
	put(D.b, NULL, "members", "name=Qian Qi", NULL);
	sync_code(D.b, 0);
	r = bs("audit", "--db", D.au, NULL);
	expect_code(&r, 0);
	run_free(&r);

	/* the server goes back to its copy: a shorter log */
	server_stop();
	copy_dir(backup, srv_dir);
	server_start(port);
	r = bs("audit", "--db", D.au, NULL);
	expect_code(&r, 4);
	ck_assert_msg(strstr(r.out, "forked") && strstr(r.out, "shrank"), "%s",
		      r.out);
	run_free(&r);
	ck_assert_int_eq(db_int(D.au, "SELECT count(*) FROM bs_evidence WHERE"
				      " kind='fork'"),
			 1);

	/* and writes another history, longer than what the auditor saw */
	device("c", "branch", "b2", c, sizeof c);
	for (k = 0; k < 4; k++)
		put(c, NULL, "members", "name=Other history", NULL);
	sync_code(c, 0);
	r = bs("audit", "--db", D.au, NULL);
	expect_code(&r, 4);
	ck_assert_msg(strstr(r.out, "forked") &&
			  strstr(r.out, "consistency proof fails"),
		      "%s", r.out);
	ck_assert_ptr_nonnull(strstr(r.err, "forked"));
	run_free(&r);
	ck_assert_int_eq(db_int(D.au, "SELECT count(*) FROM bs_evidence WHERE"
				      " kind='fork'"),
			 2);
	/* the auditor keeps the checkpoint it verified: still caught */
	r = bs("audit", "--db", D.au, NULL);
	expect_code(&r, 4);
	run_free(&r);
	/* while the exported log on its own is consistent */
	{
		char file[450];

		path_in(file, sizeof file, "other.bin");
		export(file);
		r = audit_log(file);
		expect_code(&r, 0);
		run_free(&r);
	}
}
END_TEST

/* ---- many change sets: batches and threads ---- */

/* An export being written: the stream, and the tree of its entries. */
struct synth {
	struct buf out, fr;
	struct merkle_compact mc;
	uint64_t index;
};

static void synth_entry(struct synth *y, int kind, const uint8_t *p, size_t len)
{
	uint8_t leaf[HASH_BYTES];
	size_t vlen = wire_varint_size(y->index);

	entry_frame(y->index++, kind, LOGENTRY_ACCEPTED, NULL, p, len, &y->fr);
	logentry_leaf_hash(y->fr.data + vlen, y->fr.len - vlen, leaf);
	ck_assert_int_eq(merkle_compact_append(&y->mc, leaf), BS_OK);
	frame_put(&y->out, FRAME_ENTRY, y->fr.data, y->fr.len);
}

static void synth_enroll(struct synth *y, const uint8_t *ssk, const uint8_t *pk,
			 enum enrollment_role role, const char *scope,
			 struct buf *b)
{
	struct enrollment en;

	memset(&en, 0, sizeof en);
	memcpy(en.device, pk, SIGN_PUBLIC_BYTES);
	en.role = role;
	snprintf(en.scope, sizeof en.scope, "%s", scope);
	buf_reset(b);
	ck_assert_int_eq(enrollment_sign(&en, ssk, b), BS_OK);
	synth_entry(y, LOGENTRY_ENROLLMENT, b->data, b->len);
}

/* The change set device `dev` makes for one new member, into b. */
static void synth_member(struct replica *dev, const struct keystore_key *dk,
			 int i, struct buf *b)
{
	struct capture_signer sg = {dk->pk, dk->sk, "b1", clock_wall_ms()};
	struct capture *c = NULL;
	sqlite3_stmt *st = NULL;
	struct err e;
	char sql[200];
	int count;

	err_init(&e);
	ck_assert_int_eq(capture_begin(dev, &sg, &c, &e), 0);
	snprintf(sql, sizeof sql,
		 "INSERT INTO members(id, branch_id, name,"
		 " status) VALUES('m%d', 'b1', 'Member %d', 'active')",
		 i, i);
	ck_assert_int_eq(sqlite3_exec(dev->db, sql, NULL, NULL, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(capture_commit(c, &count, &e), 0);
	capture_free(c);
	ck_assert_int_eq(sqlite3_prepare_v2(dev->db,
					    "SELECT bytes FROM"
					    " bs_outbox ORDER BY seq DESC"
					    " LIMIT 1",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	buf_reset(b);
	buf_append(b, sqlite3_column_blob(st, 0),
		   (size_t)sqlite3_column_bytes(st, 0));
	sqlite3_finalize(st);
}

/* Writes an export of n change sets by one branch device (and the
 * enrollments), signed by a fresh server key, with the digest of the
 * device's own replica (which holds exactly what its sets wrote); the
 * change set at log index `bad` (if not 0) gets a wrong signature. */
static void synthetic_log(const char *path, int n, uint64_t bad)
{
	uint8_t spk[SIGN_PUBLIC_BYTES], ssk[SIGN_SECRET_BYTES];
	struct keystore_key *dk;
	struct replica *dev = NULL;
	struct checkpoint cp;
	struct statedigest sd;
	struct synth y;
	struct buf b;
	struct err e;
	char dbp[450];
	int i;
	FILE *f;

	err_init(&e);
	crypto_sign_keypair(spk, ssk);
	snprintf(dbp, sizeof dbp, "%s/synthetic-%llu.db", tmp,
		 (unsigned long long)bad);
	device_init(dbp);
	dk = replica_key(dbp);
	ck_assert_int_eq(replica_open(dbp, REPLICA_OPEN, &dev, &e), 0);
	/* a scratch replica: no fsync per change set */
	ck_assert_int_eq(
	    sqlite3_exec(dev->db, "PRAGMA synchronous=OFF", NULL, NULL, NULL),
	    SQLITE_OK);
	memset(&y, 0, sizeof y);
	buf_init(&y.out, 1u << 30);
	buf_init(&y.fr, LOGENTRY_MAX + 16);
	buf_init(&b, CHANGESET_MAX_ENCODED);
	merkle_compact_init(&y.mc);
	frame_stream_begin(&y.out);
	buf_append(&b, spk, SIGN_PUBLIC_BYTES);
	wire_put_blob(&b, "Synthetic", 9);
	frame_put(&y.out, FRAME_META, b.data, b.len);
	synth_enroll(&y, ssk, spk, ROLE_DISTRICT, "district", &b);
	synth_enroll(&y, ssk, dk->pk, ROLE_BRANCH, "b1", &b);
	for (i = 0; i < n; i++) {
		synth_member(dev, dk, i, &b);
		if (y.index == bad) {
			struct changeset cs;

			ck_assert_int_eq(changeset_decode(b.data, b.len, &cs),
					 BS_OK);
			b.data[cs.env_len] ^= 1;
		}
		synth_entry(&y, LOGENTRY_CHANGESET, b.data, b.len);
	}
	memset(&cp, 0, sizeof cp);
	strcpy(cp.origin, "Synthetic");
	cp.size = merkle_compact_size(&y.mc);
	merkle_compact_root(&y.mc, cp.root);
	cp.time_ms = clock_wall_ms();
	buf_reset(&b);
	ck_assert_int_eq(checkpoint_sign(&cp, ssk, &b), BS_OK);
	frame_put(&y.out, FRAME_CHECKPOINT, b.data, b.len);
	memset(&sd, 0, sizeof sd);
	strcpy(sd.origin, "Synthetic");
	sd.log_size = y.index;
	ck_assert_int_eq(digest_compute(dev->db, sd.digest, &e), 0);
	buf_reset(&b);
	ck_assert_int_eq(statedigest_sign(&sd, ssk, &b), BS_OK);
	frame_put(&y.out, FRAME_DIGEST, b.data, b.len);
	frame_stream_end(&y.out);
	ck_assert_int_eq(y.out.status, BS_OK);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(y.out.data, 1, y.out.len, f), y.out.len);
	ck_assert_int_eq(fclose(f), 0);
	buf_release(&y.out);
	buf_release(&y.fr);
	buf_release(&b);
	replica_close(dev);
	keystore_key_free(dk);
}

START_TEST(many_changesets)
{
	char file[450];
	struct run r;
	double t0;
	const int n = 5000;

	path_in(file, sizeof file, "many.bin");
	synthetic_log(file, n, 0);
	t0 = now_s();
	r = bs("audit", "--log", file, "--json", NULL);
	expect_code(&r, 0);
	fprintf(stderr, "audit of %d change sets: %.0f per second\n", n,
		n / (now_s() - t0));
	ck_assert_int_eq(json_int(r.out, "changesets"), n);
	ck_assert_int_eq(json_int(r.out, "members"), n);
	run_free(&r);
	/* the same with one thread */
	r = bs("audit", "--log", file, "--threads", "1", NULL);
	expect_code(&r, 0);
	run_free(&r);

	/* a bad signature deep in the second batch: named, and the rest
	 * still verified */
	synthetic_log(file, n, 3001);
	r = bs("audit", "--log", file, "--json", NULL);
	expect_code(&r, 4);
	ck_assert_ptr_nonnull(strstr(r.out, "{\"index\":3001,"));
	ck_assert_ptr_nonnull(strstr(r.out, "signature does not verify"));
	/* its set was not replayed, so its chain successor breaks the chain
	 * and the digest differs */
	ck_assert_int_eq(json_int(r.out, "members"), n - 1);
	run_free(&r);
}
END_TEST

static Suite *audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("audit");

	tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, honest_log_passes);
	tcase_add_test(tc, record_history);
	tcase_add_test(tc, flipped_bytes_caught);
	tcase_add_test(tc, missing_swapped_and_foreign_entries_caught);
	tcase_add_test(tc, enrollment_by_another_key_caught);
	tcase_add_test(tc, changed_record_caught);
	tcase_add_test(tc, deleted_record_caught);
	tcase_add_test(tc, revoked_write_resigned_caught);
	tcase_add_test(tc, forked_log_caught);
	tcase_add_test(tc, many_changesets);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(audit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
