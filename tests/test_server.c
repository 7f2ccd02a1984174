/* test_server.c - Check suite 'server': integration tests that run the real
 * branchsyncd ($BRANCHSYNCD_BIN) on a loopback port and drive it with a small
 * signing client (libcurl, protocol/request.h, libsodium) and raw sockets:
 * enrollment, pushes of real captured change sets and every refusal of
 * docs/API.md, request authentication and replay, body limits, odd paths,
 * roles, pull filtering with proofs, receipts, and kill -9 during pushes.
 * Not for the HTTP layer's unit tests (test_http.c) nor the merge rules
 * (test_merge.c). BRANCHSYNC_SEED=<n> replays the kill -9 test's timing. */
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>
#include <zlib.h>
#include <zstd.h>

#include "capture.h"
#include "changeset.h"
#include "cscompact.h"
#include "pushreceipt.h"
#include "checkpoint.h"
#include "enrollment.h"
#include "frame.h"
#include "logentry.h"
#include "merkle.h"
#include "proof.h"
#include "replica.h"
#include "request.h"
#include "statedigest.h"
#include "verdict.h"
#include "wire.h"

#define CT_FRAMES  "application/x-branchsync"
#define MAX_BODY   (16u << 20)
#define MAX_ARGS   24
#define STREAM_MAX (64u << 20)
#define REPLY_MAX  (64u << 20)

/* The test's own buffers use malloc (and struct buf only for encoding), so
 * nothing here depends on the allocation seam. */

/* ---- the server process ---- */

struct srv {
	char dir[PATH_MAX - 64]; /* this test's own directory */
	char data[PATH_MAX];	 /* --data */
	char port_file[PATH_MAX];
	char log[PATH_MAX];	 /* the server's stderr, appended per start */
	char pid_file[PATH_MAX]; /* lets the unchecked teardown find it */
	pid_t pid;		 /* 0 while not running */
	uint16_t port;
	uint8_t pk[SIGN_PUBLIC_BYTES]; /* printed by init */
	char pk_hex[2 * SIGN_PUBLIC_BYTES + 1];
};

/* What one run of a branchsyncd command produced. */
struct run {
	int code;	/* exit code, or 128 + signal */
	char out[4096]; /* stdout, trailing newlines trimmed */
	char err[4096];
};

static const char *bin;
static char base_dir[256]; /* made by the unchecked fixture */
static struct srv S;	   /* the current test's server */
static unsigned member_counter;

static void read_file(const char *path, char *out, size_t n)
{
	int fd = open(path, O_RDONLY);
	size_t len = 0;
	ssize_t k;

	out[0] = '\0';
	if (fd < 0)
		return;
	while (len + 1 < n && (k = read(fd, out + len, n - 1 - len)) > 0)
		len += (size_t)k;
	out[len] = '\0';
	close(fd);
}

/* The end of the server's log, for failure messages. */
static const char *log_tail(void)
{
	static char tail[2048];
	char *all = malloc(1 << 20);
	size_t n;

	tail[0] = '\0';
	if (!all)
		return tail;
	read_file(S.log, all, 1 << 20);
	n = strlen(all);
	snprintf(tail, sizeof tail, "%s", all + (n > 2000 ? n - 2000 : 0));
	free(all);
	return tail;
}

/* ---- HTTP over libcurl ---- */

struct reply {
	long status; /* 0: no answer (refused, closed, timeout) */
	CURLcode rc;
	uint8_t *body; /* malloc'd, NUL-terminated; may be NULL */
	size_t len;
	char challenge[65]; /* X-BS-Next-Challenge, or "" */
	char ctype[128];
	char cenc[64];
};

static void reply_free(struct reply *r)
{
	free(r->body);
	memset(r, 0, sizeof *r);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	size_t k = size * n;
	uint8_t *nb;

	if (r->len + k > REPLY_MAX)
		return 0;
	nb = realloc(r->body, r->len + k + 1);
	if (!nb)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, p, k);
	r->len += k;
	r->body[r->len] = '\0';
	return k;
}

static void header_value(const char *line, size_t n, const char *name,
			 char *out, size_t outsz)
{
	size_t nl = strlen(name), vl;
	const char *v;

	if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	v = line + nl + 1;
	vl = n - nl - 1;
	while (vl && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl &&
	       (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (vl >= outsz)
		vl = outsz - 1;
	memcpy(out, v, vl);
	out[vl] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	size_t k = size * n;

	header_value(p, k, "X-BS-Next-Challenge", r->challenge,
		     sizeof r->challenge);
	header_value(p, k, "Content-Type", r->ctype, sizeof r->ctype);
	header_value(p, k, "Content-Encoding", r->cenc, sizeof r->cenc);
	return k;
}

/* Sends one request to the current server with the target exactly as
 * given; headers is a NULL-terminated list of "Name: value" lines ("Name:"
 * removes a header curl would add). Returns the status (0: no answer). */
static long http_send(const char *method, const char *target,
		      const char *const *headers, const void *body, size_t len,
		      struct reply *out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	char url[8192];
	size_t i;

	memset(out, 0, sizeof *out);
	ck_assert_ptr_nonnull(c);
	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", S.port, target);
	hl = curl_slist_append(hl, "Expect:");
	for (i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	out->rc = curl_easy_perform(c);
	if (out->rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return out->status;
}

static long http_get(const char *target, struct reply *out)
{
	return http_send("GET", target, NULL, NULL, 0, out);
}

/* The server still answers /healthz. */
static void assert_alive(void)
{
	struct reply r;

	ck_assert_msg(http_get("/healthz", &r) == 200,
		      "the server stopped serving (/healthz: %ld, curl %d): %s",
		      r.status, (int)r.rc, log_tail());
	ck_assert_str_eq((const char *)r.body, "ok\n");
	reply_free(&r);
}

/* An API error: the status, a JSON body {"error": "..."} and, when given,
 * a fragment of the message. */
static void assert_error(const struct reply *r, long status, const char *what)
{
	ck_assert_msg(r->status == status, "expected %ld, got %ld: %s", status,
		      r->status, r->body ? (const char *)r->body : "");
	ck_assert_str_eq(r->ctype, "application/json");
	ck_assert_msg(r->body && strncmp((const char *)r->body,
					 "{\"error\": \"", 11) == 0,
		      "not a JSON error: %s", r->body ? (char *)r->body : "");
	if (what)
		ck_assert_msg(strstr((const char *)r->body, what) != NULL,
			      "'%s' not in %s", what, r->body);
}

static int wait_exit(pid_t pid, int *status)
{
	pid_t got;

	do
		got = waitpid(pid, status, 0);
	while (got < 0 && errno == EINTR);
	return got == pid ? 0 : -1;
}

/* Runs branchsyncd with the NULL-terminated arguments after the command,
 * stdin from /dev/null, stdout and stderr through files in S.dir. */
static void bsd_run(struct run *r, const char *first, ...)
{
	const char *argv[MAX_ARGS + 2];
	char outp[PATH_MAX + 16], errp[PATH_MAX + 16];
	va_list ap;
	size_t n = 0, len;
	int status = 0;
	pid_t pid;

	argv[n++] = "branchsyncd";
	argv[n++] = first;
	va_start(ap, first);
	while (n < MAX_ARGS && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	snprintf(outp, sizeof outp, "%s/cmd.out", S.dir);
	snprintf(errp, sizeof errp, "%s/cmd.err", S.dir);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (in < 0 || o < 0 || e < 0)
			_exit(126);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	ck_assert_int_eq(wait_exit(pid, &status), 0);
	r->code =
	    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	read_file(outp, r->out, sizeof r->out);
	read_file(errp, r->err, sizeof r->err);
	len = strlen(r->out);
	while (len && (r->out[len - 1] == '\n' || r->out[len - 1] == '\r'))
		r->out[--len] = '\0';
}

static void hex_to_bin(const char *hex, uint8_t *out, size_t n)
{
	size_t got = 0;

	ck_assert_msg(
	    strlen(hex) == 2 * n &&
		sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, NULL) == 0 &&
		got == n,
	    "not %zu bytes of hex: '%s'", n, hex);
}

/* A fresh data directory with district Test and branches b1 and b2. */
static void srv_create(void)
{
	struct run r;

	memset(&S, 0, sizeof S);
	snprintf(S.dir, sizeof S.dir, "%s/tXXXXXX", base_dir);
	ck_assert_ptr_nonnull(mkdtemp(S.dir));
	snprintf(S.data, sizeof S.data, "%s/data", S.dir);
	snprintf(S.port_file, sizeof S.port_file, "%s/port", S.dir);
	snprintf(S.log, sizeof S.log, "%s/server.log", S.dir);
	snprintf(S.pid_file, sizeof S.pid_file, "%s/serve.pid", S.dir);
	bsd_run(&r, "init", "--data", S.data, "--district", "Test",
		"--no-passphrase", NULL);
	ck_assert_msg(r.code == 0, "init: %d %s", r.code, r.err);
	hex_to_bin(r.out, S.pk, sizeof S.pk);
	memcpy(S.pk_hex, r.out, sizeof S.pk_hex - 1);
	bsd_run(&r, "branch", "add", "--data", S.data, "--id", "b1", "--name",
		"V1", "--kind", "village", NULL);
	ck_assert_msg(r.code == 0 && strcmp(r.out, "b1") == 0,
		      "branch add b1: %d %s", r.code, r.err);
	bsd_run(&r, "branch", "add", "--data", S.data, "--id", "b2", "--name",
		"V2", "--kind", "village", NULL);
	ck_assert_msg(r.code == 0, "branch add b2: %d %s", r.code, r.err);
}

/* Waits for the port file, then for /healthz to answer 200. */
static void srv_wait_ready(void)
{
	char txt[64];
	int status, i;

	S.port = 0;
	for (i = 0; i < 6000 && !S.port; i++) {
		read_file(S.port_file, txt, sizeof txt);
		if (strchr(txt, '\n')) {
			S.port = (uint16_t)atoi(txt);
			break;
		}
		ck_assert_msg(waitpid(S.pid, &status, WNOHANG) == 0,
			      "branchsyncd serve exited early: %s", log_tail());
		usleep(10000);
	}
	ck_assert_msg(S.port != 0, "no port file after 60 s: %s", log_tail());
	for (i = 0; i < 3000; i++) {
		struct reply r;
		long st = http_get("/healthz", &r);

		reply_free(&r);
		if (st == 200)
			return;
		usleep(10000);
	}
	ck_abort_msg("/healthz never answered 200: %s", log_tail());
}

static void srv_start(void)
{
	pid_t parent = getpid(), pid;
	char txt[32];
	int fd;

	unlink(S.port_file);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int in, lg;

		/* a failed test _exits without teardown: take the server
		 * down with it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(125);
		in = open("/dev/null", O_RDWR);
		lg = open(S.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (in < 0 || lg < 0)
			_exit(126);
		dup2(in, 0);
		dup2(in, 1);
		dup2(lg, 2);
		execl(bin, "branchsyncd", "serve", "--data", S.data, "--listen",
		      "127.0.0.1:0", "--port-file", S.port_file, "--quiet",
		      (char *)NULL);
		_exit(127);
	}
	S.pid = pid;
	fd = open(S.pid_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	snprintf(txt, sizeof txt, "%ld\n", (long)pid);
	ck_assert_int_eq(write(fd, txt, strlen(txt)), (ssize_t)strlen(txt));
	close(fd);
	srv_wait_ready();
}

/* SIGTERM; the server must finish and exit 0 (under the sanitizers, that
 * also means no leak and no error report). */
static void srv_stop(void)
{
	int status = 0, i;
	pid_t got = 0;

	if (!S.pid)
		return;
	ck_assert_int_eq(kill(S.pid, SIGTERM), 0);
	for (i = 0; i < 6000; i++) {
		got = waitpid(S.pid, &status, WNOHANG);
		if (got == S.pid)
			break;
		usleep(10000);
	}
	if (got != S.pid) {
		kill(S.pid, SIGKILL);
		wait_exit(S.pid, &status);
		S.pid = 0;
		ck_abort_msg("branchsyncd did not stop within 60 s of SIGTERM");
	}
	S.pid = 0;
	unlink(S.pid_file);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "branchsyncd serve ended with %s %d: %s",
		      WIFEXITED(status) ? "exit code" : "signal",
		      WIFEXITED(status) ? WEXITSTATUS(status)
					: WTERMSIG(status),
		      log_tail());
}

static void setup(void)
{
	srv_create();
	srv_start();
}

static void teardown(void)
{
	srv_stop();
}

/* ---- unchecked fixture: runs in Check's parent, also after failures ---- */

static void remove_tree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	d = opendir(path);
	if (d) {
		while ((de = readdir(d)) != NULL) {
			char sub[PATH_MAX];

			if (!strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
			remove_tree(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

/* Kills a server a failed test left behind, if that pid is still our
 * branchsyncd on that directory (never anything else). */
static void kill_leftover(const char *dir)
{
	char pf[PATH_MAX + 16], txt[64], proc[64], cmd[8192];
	size_t i, n;
	long pid;
	int fd;

	snprintf(pf, sizeof pf, "%s/serve.pid", dir);
	read_file(pf, txt, sizeof txt);
	pid = atol(txt);
	if (pid <= 1)
		return;
	snprintf(proc, sizeof proc, "/proc/%ld/cmdline", pid);
	fd = open(proc, O_RDONLY);
	if (fd < 0)
		return;
	n = (size_t)read(fd, cmd, sizeof cmd - 1);
	close(fd);
	if (n >= sizeof cmd)
		return;
	for (i = 0; i < n; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	cmd[n] = '\0';
	if (strstr(cmd, "branchsyncd") && strstr(cmd, " serve ") &&
	    strstr(cmd, dir))
		kill((pid_t)pid, SIGKILL);
}

static void suite_setup(void)
{
	snprintf(base_dir, sizeof base_dir, "/tmp/bs-test-server-XXXXXX");
	if (!mkdtemp(base_dir)) {
		perror("mkdtemp");
		abort();
	}
}

static void suite_teardown(void)
{
	DIR *d = opendir(base_dir);
	struct dirent *de;

	if (d) {
		while ((de = readdir(d)) != NULL) {
			char sub[PATH_MAX];

			if (de->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof sub, "%s/%s", base_dir,
				 de->d_name);
			kill_leftover(sub);
		}
		closedir(d);
	}
	remove_tree(base_dir);
}

/* ---- raw sockets, for what curl would not send ---- */

static int raw_dial(void)
{
	struct sockaddr_in sin;
	struct timeval tv = {60, 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(S.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	return fd;
}

/* 0, or -1 once the server has closed on us. */
static int raw_send(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

/* The status of the answer, or -1 if the connection ended without one. */
static int raw_status(int fd)
{
	char buf[1024];
	size_t len = 0;
	int status = -1;

	while (len + 1 < sizeof buf && !memchr(buf, '\n', len)) {
		ssize_t k = recv(fd, buf + len, sizeof buf - 1 - len, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
	}
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		status = -1;
	return status;
}

/* ---- frame streams ---- */

struct frames {
	size_t n;
	uint8_t *type;
	uint8_t **p;
	size_t *len;
};

static void frames_free(struct frames *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		free(f->p[i]);
	free(f->type);
	free(f->p);
	free(f->len);
	memset(f, 0, sizeof *f);
}

/* Splits a whole frame stream into copies of its frames (END excluded). */
static enum bs_status frames_parse(const uint8_t *body, size_t len,
				   struct frames *f)
{
	struct frame_reader fr;
	struct frame fm;
	enum bs_status st = BS_OK;
	size_t used;

	memset(f, 0, sizeof *f);
	frame_reader_init(&fr, LOGENTRY_MAX + WIRE_VARINT_MAX);
	while (len > 0) {
		st = frame_reader_feed(&fr, body, len, &used);
		if (st)
			break;
		body += used;
		len -= used;
		if (frame_reader_next(&fr, &fm)) {
			f->type = realloc(f->type, f->n + 1);
			f->p = realloc(f->p, (f->n + 1) * sizeof *f->p);
			f->len = realloc(f->len, (f->n + 1) * sizeof *f->len);
			ck_assert(f->type && f->p && f->len);
			f->p[f->n] = malloc(fm.len ? fm.len : 1);
			ck_assert_ptr_nonnull(f->p[f->n]);
			memcpy(f->p[f->n], fm.payload, fm.len);
			f->type[f->n] = fm.type;
			f->len[f->n] = fm.len;
			f->n++;
		}
	}
	if (st == BS_OK)
		st = frame_reader_finish(&fr);
	frame_reader_release(&fr);
	return st;
}

static void stream_init(struct buf *b)
{
	buf_init(b, STREAM_MAX);
	frame_stream_begin(b);
}

/* ---- devices: keys, challenges, signed requests ---- */

/* A challenge as the server sends it: base64url without padding. */
#define CHALLENGE_TEXT 22

static void challenge_to_bin(const char *text,
			     uint8_t out[REQUEST_CHALLENGE_BYTES])
{
	size_t got = 0;

	ck_assert_uint_eq(strlen(text), CHALLENGE_TEXT);
	ck_assert_int_eq(sodium_base642bin(out, REQUEST_CHALLENGE_BYTES, text,
					   CHALLENGE_TEXT, NULL, &got, NULL,
					   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
			 0);
	ck_assert_uint_eq(got, REQUEST_CHALLENGE_BYTES);
}

struct dev {
	uint8_t pk[SIGN_PUBLIC_BYTES];
	uint8_t sk[SIGN_SECRET_BYTES];
	char hex[2 * SIGN_PUBLIC_BYTES + 1];
	char challenge[65]; /* the next challenge to use, or "" */
	struct replica *r;  /* where its writes are captured */
	uint64_t enroll_index;
};

static void dev_new(struct dev *d)
{
	struct err e;

	memset(d, 0, sizeof *d);
	crypto_sign_keypair(d->pk, d->sk);
	sodium_bin2hex(d->hex, sizeof d->hex, d->pk, sizeof d->pk);
	err_init(&e);
	ck_assert_msg(replica_open(":memory:", REPLICA_MEMORY, &d->r, &e) == 0,
		      "%s", e.msg);
}

/* Another replica holding the same key (to equivocate). */
static void dev_clone(struct dev *d, const struct dev *from)
{
	struct err e;

	memset(d, 0, sizeof *d);
	memcpy(d->pk, from->pk, sizeof d->pk);
	memcpy(d->sk, from->sk, sizeof d->sk);
	memcpy(d->hex, from->hex, sizeof d->hex);
	err_init(&e);
	ck_assert_msg(replica_open(":memory:", REPLICA_MEMORY, &d->r, &e) == 0,
		      "%s", e.msg);
}

static void dev_free(struct dev *d)
{
	replica_close(d->r);
	sodium_memzero(d->sk, sizeof d->sk);
	d->r = NULL;
}

/* A challenge to sign with: the one the last answer carried, else a
 * fresh one. Returns 0, or -1 when the server did not answer. */
static int dev_challenge(struct dev *d, char out[65])
{
	struct reply r;

	if (d->challenge[0]) {
		memcpy(out, d->challenge, 65);
		d->challenge[0] = '\0';
		return 0;
	}
	if (http_get("/v1/challenge", &r) != 200) {
		reply_free(&r);
		return -1;
	}
	/* base64url of 16 bytes, no padding: 22 characters */
	ck_assert_uint_eq(r.len, CHALLENGE_TEXT);
	ck_assert_str_eq(r.challenge, (const char *)r.body);
	memcpy(out, r.body, CHALLENGE_TEXT);
	out[CHALLENGE_TEXT] = '\0';
	reply_free(&r);
	return 0;
}

/* The three authentication header lines. */
struct auth {
	char device[96];
	char challenge[96];
	char signature[160];
};

static void auth_make(const struct dev *d, const char *challenge_text,
		      const char *method, const char *target, const void *body,
		      size_t len, struct auth *a)
{
	struct request_auth ra;
	uint8_t sig[SIGN_BYTES];
	char sighex[2 * SIGN_BYTES + 1];

	memset(&ra, 0, sizeof ra);
	ra.method = method;
	ra.path = target;
	hash_sha256(ra.body_hash, body, len, NULL, 0);
	challenge_to_bin(challenge_text, ra.challenge);
	memcpy(ra.device, d->pk, sizeof ra.device);
	ck_assert_int_eq(request_sign(&ra, d->sk, sig), BS_OK);
	sodium_bin2hex(sighex, sizeof sighex, sig, sizeof sig);
	snprintf(a->device, sizeof a->device, "X-BS-Device: %s", d->hex);
	snprintf(a->challenge, sizeof a->challenge, "X-BS-Challenge: %s",
		 challenge_text);
	snprintf(a->signature, sizeof a->signature, "X-BS-Signature: %s",
		 sighex);
}

/* Sends with the auth lines and optional content headers. */
static long send_with(const struct auth *a, const char *method,
		      const char *target, const char *ctype, const char *cenc,
		      const char *extra, const void *body, size_t len,
		      struct reply *out)
{
	const char *h[8];
	char ct[160], ce[160];
	size_t n = 0;

	if (a) {
		h[n++] = a->device;
		h[n++] = a->challenge;
		h[n++] = a->signature;
	}
	if (ctype) {
		snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
		h[n++] = ct;
	}
	if (cenc) {
		snprintf(ce, sizeof ce, "Content-Encoding: %s", cenc);
		h[n++] = ce;
	}
	if (extra)
		h[n++] = extra;
	h[n] = NULL;
	return http_send(method, target, h, body, len, out);
}

/* A signed request; remembers the next challenge. ctype NULL for a POST
 * means the frame stream type. Returns the status (0: no answer). */
static long dev_call_ex(struct dev *d, const char *method, const char *target,
			const char *ctype, const char *cenc, const char *extra,
			const void *body, size_t len, struct reply *out)
{
	struct auth a;
	char ch[65];

	memset(out, 0, sizeof *out);
	if (dev_challenge(d, ch))
		return 0;
	if (!ctype && strcmp(method, "POST") == 0)
		ctype = CT_FRAMES;
	auth_make(d, ch, method, target, body, len, &a);
	send_with(&a, method, target, ctype, cenc, extra, body, len, out);
	memcpy(d->challenge, out->challenge, sizeof d->challenge);
	return out->status;
}

static long dev_call(struct dev *d, const char *method, const char *target,
		     const void *body, size_t len, struct reply *out)
{
	return dev_call_ex(d, method, target, NULL, NULL, NULL, body, len, out);
}

/* ---- enrollment ---- */

static void token_make(const char *role, const char *branch, char tok[65])
{
	struct run r;

	if (branch)
		bsd_run(&r, "token", "--data", S.data, "--role", role,
			"--branch", branch, NULL);
	else
		bsd_run(&r, "token", "--data", S.data, "--role", role, NULL);
	ck_assert_msg(r.code == 0 && strlen(r.out) == 64, "token: %d %s %s",
		      r.code, r.out, r.err);
	memcpy(tok, r.out, 65);
}

static void enroll_body(const char *token, const char *name, struct buf *b)
{
	struct buf meta;

	buf_init(&meta, 4096);
	wire_put_blob(&meta, token, strlen(token));
	wire_put_blob(&meta, name, strlen(name));
	stream_init(b);
	frame_put(b, FRAME_META, meta.data, meta.len);
	frame_stream_end(b);
	ck_assert_int_eq(b->status, BS_OK);
	buf_release(&meta);
}

static long enroll_try(struct dev *d, const char *token, const char *name,
		       struct reply *out)
{
	struct buf b;
	long st;

	enroll_body(token, name, &b);
	st = dev_call(d, "POST", "/v1/enroll", b.data, b.len, out);
	buf_release(&b);
	return st;
}

/* Checks an inclusion PROOF frame for the encoded entry at `index`. */
static void check_inclusion(const uint8_t *entry, size_t entry_len,
			    uint64_t index, const uint8_t *proof_bytes,
			    size_t proof_len, const struct checkpoint *cp)
{
	struct proof pr;
	uint8_t leaf[HASH_BYTES];

	ck_assert_int_eq(proof_decode(proof_bytes, proof_len, &pr), BS_OK);
	ck_assert_int_eq(pr.kind, PROOF_INCLUSION);
	ck_assert_uint_eq(pr.first, index);
	ck_assert_uint_eq(pr.second, cp->size);
	logentry_leaf_hash(entry, entry_len, leaf);
	ck_assert_msg(merkle_verify_inclusion(leaf, index, cp->size, &pr.path,
					      cp->root) == BS_OK,
		      "entry %llu is not in the checkpoint of %llu",
		      (unsigned long long)index, (unsigned long long)cp->size);
}

static void checkpoint_check(const uint8_t *p, size_t len,
			     struct checkpoint *cp)
{
	ck_assert_int_eq(checkpoint_decode(p, len, cp), BS_OK);
	ck_assert_int_eq(checkpoint_verify(cp, S.pk), BS_OK);
	ck_assert_str_eq(cp->origin, "Test");
}

/* An ENTRY payload: varint index || log entry. */
struct entry {
	uint64_t index;
	const uint8_t *raw; /* the log entry's bytes */
	size_t raw_len;
	struct logentry le;
	struct changeset cs; /* when le.kind is a change set */
};

static void entry_decode(const uint8_t *p, size_t len, struct entry *e)
{
	struct wire_reader r;

	memset(e, 0, sizeof *e);
	wire_reader_init(&r, p, len);
	ck_assert_int_eq(wire_get_varint(&r, &e->index), BS_OK);
	e->raw = p + r.pos;
	e->raw_len = len - r.pos;
	ck_assert_int_eq(logentry_decode(e->raw, e->raw_len, &e->le), BS_OK);
	if (e->le.kind == LOGENTRY_CHANGESET) {
		ck_assert_int_eq(
		    changeset_decode(e->le.payload, e->le.payload_len, &e->cs),
		    BS_OK);
		ck_assert_int_eq(changeset_verify(&e->cs), BS_OK);
	}
}

/* Enrolls d with `token`: checks every frame of the answer (signed
 * enrollment, the server key, the entry and its inclusion in the signed
 * checkpoint). */
static void enroll_with(struct dev *d, const char *token, const char *name,
			enum enrollment_role role, const char *scope)
{
	struct reply r;
	struct frames f;
	struct enrollment en;
	struct checkpoint cp;
	struct wire_reader wr;
	struct entry e;
	const uint8_t *origin;
	size_t olen;

	ck_assert_msg(enroll_try(d, token, name, &r) == 200, "enroll: %ld %s",
		      r.status, r.body ? (char *)r.body : "");
	ck_assert_str_eq(r.ctype, CT_FRAMES);
	ck_assert_int_eq(frames_parse(r.body, r.len, &f), BS_OK);
	ck_assert_uint_eq(f.n, 5);
	ck_assert_int_eq(f.type[0], FRAME_ENROLLMENT);
	ck_assert_int_eq(f.type[1], FRAME_META);
	ck_assert_int_eq(f.type[2], FRAME_ENTRY);
	ck_assert_int_eq(f.type[3], FRAME_CHECKPOINT);
	ck_assert_int_eq(f.type[4], FRAME_PROOF);
	/* META: the server key (the one init printed) || blob(origin) */
	ck_assert_uint_ge(f.len[1], SIGN_PUBLIC_BYTES);
	ck_assert_int_eq(memcmp(f.p[1], S.pk, SIGN_PUBLIC_BYTES), 0);
	wire_reader_init(&wr, f.p[1] + SIGN_PUBLIC_BYTES,
			 f.len[1] - SIGN_PUBLIC_BYTES);
	ck_assert_int_eq(wire_get_blob(&wr, 256, &origin, &olen), BS_OK);
	ck_assert_int_eq(wire_expect_end(&wr), BS_OK);
	ck_assert_uint_eq(olen, 4);
	ck_assert_int_eq(memcmp(origin, "Test", 4), 0);
	ck_assert_int_eq(enrollment_open(f.p[0], f.len[0], S.pk, &en), BS_OK);
	ck_assert_int_eq(memcmp(en.device, d->pk, SIGN_PUBLIC_BYTES), 0);
	ck_assert_int_eq(en.role, role);
	ck_assert_str_eq(en.scope, scope);
	ck_assert_str_eq(en.name, name);
	checkpoint_check(f.p[3], f.len[3], &cp);
	entry_decode(f.p[2], f.len[2], &e);
	ck_assert_int_eq(e.le.kind, LOGENTRY_ENROLLMENT);
	ck_assert_int_eq(e.le.verdict, LOGENTRY_ACCEPTED);
	ck_assert_uint_eq(e.le.payload_len, f.len[0]);
	ck_assert_int_eq(memcmp(e.le.payload, f.p[0], f.len[0]), 0);
	ck_assert_uint_lt(e.index, cp.size);
	check_inclusion(e.raw, e.raw_len, e.index, f.p[4], f.len[4], &cp);
	d->enroll_index = e.index;
	frames_free(&f);
	reply_free(&r);
}

/* A new device enrolled with a fresh token of that role. */
static void enroll(struct dev *d, const char *role_name, const char *branch)
{
	enum enrollment_role role;
	char tok[65], name[64];

	ck_assert_int_eq(enrollment_role_parse(role_name, &role), 0);
	dev_new(d);
	token_make(role_name, branch, tok);
	snprintf(name, sizeof name, "%s-%s", role_name,
		 branch ? branch : "all");
	enroll_with(d, tok, name, role, branch ? branch : "district");
}

/* ---- change sets ---- */

struct cset {
	uint8_t *bytes;
	size_t len;
	uint8_t id[HASH_BYTES];
	uint64_t seq;
	char scope[CHANGESET_SCOPE_MAX + 1];
	char member[64]; /* the member row it inserts */
};

static void cset_free(struct cset *c)
{
	free(c->bytes);
	memset(c, 0, sizeof *c);
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Captures `sql` on the device's replica as one signed change set (any
 * scope: the client's own scope check is bypassed on purpose). */
static void dev_write(struct dev *d, struct cset *out, const char *sql)
{
	struct capture_signer signer = {d->pk, d->sk, NULL, wall_ms()};
	struct capture *c = NULL;
	struct changeset cs;
	sqlite3_stmt *st;
	char *msg = NULL;
	struct err e;
	int count = 0;

	memset(out, 0, sizeof *out);
	err_init(&e);
	ck_assert_msg(capture_begin(d->r, &signer, &c, &e) == 0, "%s", e.msg);
	ck_assert_msg(sqlite3_exec(d->r->db, sql, NULL, NULL, &msg) ==
			  SQLITE_OK,
		      "%s: %s", sql, msg ? msg : "");
	ck_assert_msg(capture_commit(c, &count, &e) == 0, "%s", e.msg);
	capture_free(c);
	ck_assert_int_eq(count, 1);
	ck_assert_int_eq(
	    sqlite3_prepare_v2(
		d->r->db,
		"SELECT bytes FROM bs_outbox ORDER BY seq DESC LIMIT 1", -1,
		&st, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	out->len = (size_t)sqlite3_column_bytes(st, 0);
	out->bytes = malloc(out->len);
	ck_assert_ptr_nonnull(out->bytes);
	memcpy(out->bytes, sqlite3_column_blob(st, 0), out->len);
	sqlite3_finalize(st);
	ck_assert_int_eq(changeset_decode(out->bytes, out->len, &cs), BS_OK);
	memcpy(out->id, cs.id, HASH_BYTES);
	out->seq = cs.env.seq;
	snprintf(out->scope, sizeof out->scope, "%s", cs.env.scope);
}

/* One change set inserting a new member of `branch`. */
static void dev_member(struct dev *d, struct cset *out, const char *branch)
{
	char sql[256], id[64];

	snprintf(id, sizeof id, "m-%u-%u", (unsigned)getpid(),
		 ++member_counter);
	snprintf(sql, sizeof sql,
		 "INSERT INTO members(id, branch_id, name) "
		 "VALUES('%s', '%s', 'member %s')",
		 id, branch, id);
	dev_write(d, out, sql);
	ck_assert_str_eq(out->scope, branch);
	snprintf(out->member, sizeof out->member, "%s", id);
}

/* ---- pushes ---- */

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle,
		    size_t m)
{
	size_t i;

	for (i = 0; m <= n && i <= n - m; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return 1;
	return 0;
}

/* A push body of compact sets (FORMAT.md, "Compact change sets"), or
 * whole ones where whole[i] is set. */
static void push_compact(const struct cset *const *sets, size_t n,
			 const int *whole, struct buf *b)
{
	struct changeset cs;
	struct buf c;
	size_t i;

	stream_init(b);
	for (i = 0; i < n; i++) {
		if (whole && whole[i]) {
			frame_put(b, FRAME_CHANGESET, sets[i]->bytes,
				  sets[i]->len);
			continue;
		}
		ck_assert_int_eq(changeset_decode(sets[i]->bytes, sets[i]->len,
						  &cs),
				 BS_OK);
		buf_init(&c, sets[i]->len);
		ck_assert_int_eq(cscompact_encode(&cs, &c), BS_OK);
		frame_put(b, FRAME_CHANGESET_COMPACT, c.data, c.len);
		buf_release(&c);
	}
	frame_stream_end(b);
	ck_assert_int_eq(b->status, BS_OK);
}

struct pushed {
	struct reply rep;
	struct frames f;
	size_t n;
	struct verdict *v;  /* point into f */
	struct receipt *rc; /* filled where v[i].receipt */
	struct checkpoint cp;
};

static void pushed_free(struct pushed *p)
{
	frames_free(&p->f);
	reply_free(&p->rep);
	free(p->v);
	free(p->rc);
	memset(p, 0, sizeof *p);
}

/* Checks a 200 push answer: a VERDICT per change set, each for the id
 * sent, its receipt (if any) signed by the server over the push's signed
 * checkpoint, then that CHECKPOINT. */
static void push_parse(struct pushed *p, const uint8_t (*ids)[HASH_BYTES],
		       size_t n)
{
	size_t i;

	ck_assert_str_eq(p->rep.ctype, CT_FRAMES);
	ck_assert_int_eq(frames_parse(p->rep.body, p->rep.len, &p->f), BS_OK);
	ck_assert_uint_eq(p->f.n, n + 1);
	ck_assert_int_eq(p->f.type[n], FRAME_CHECKPOINT);
	checkpoint_check(p->f.p[n], p->f.len[n], &p->cp);
	p->n = n;
	p->v = calloc(n + 1, sizeof *p->v);
	p->rc = calloc(n + 1, sizeof *p->rc);
	ck_assert(p->v && p->rc);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(p->f.type[i], FRAME_VERDICT);
		ck_assert_int_eq(
		    verdict_decode(p->f.p[i], p->f.len[i], &p->v[i]), BS_OK);
		if (ids)
			ck_assert_int_eq(
			    memcmp(p->v[i].changeset_id, ids[i], HASH_BYTES),
			    0);
		if (!p->v[i].receipt)
			continue;
		ck_assert_int_eq(receipt_decode(p->v[i].receipt,
						p->v[i].receipt_len, &p->rc[i]),
				 BS_OK);
		ck_assert_int_eq(receipt_verify(&p->rc[i], S.pk), BS_OK);
		ck_assert_int_eq(memcmp(p->rc[i].changeset_id,
					p->v[i].changeset_id, HASH_BYTES),
				 0);
		ck_assert_uint_eq(p->rc[i].checkpoint.raw_len, p->cp.raw_len);
		ck_assert_int_eq(
		    memcmp(p->rc[i].checkpoint.raw, p->cp.raw, p->cp.raw_len),
		    0);
		ck_assert_uint_lt(p->rc[i].index, p->cp.size);
	}
}

static void push_stream(const struct cset *const *sets, size_t n, struct buf *b)
{
	size_t i;

	stream_init(b);
	for (i = 0; i < n; i++)
		frame_put(b, FRAME_CHANGESET, sets[i]->bytes, sets[i]->len);
	frame_stream_end(b);
	ck_assert_int_eq(b->status, BS_OK);
}

/* Pushes the sets; returns the status (0: no answer) and, for a 200,
 * the checked verdicts. */
static long push_try(struct dev *d, const struct cset *const *sets, size_t n,
		     struct pushed *p)
{
	uint8_t(*ids)[HASH_BYTES] = calloc(n + 1, HASH_BYTES);
	struct buf b;
	size_t i;

	memset(p, 0, sizeof *p);
	ck_assert_ptr_nonnull(ids);
	for (i = 0; i < n; i++)
		memcpy(ids[i], sets[i]->id, HASH_BYTES);
	push_stream(sets, n, &b);
	dev_call(d, "POST", "/v1/push", b.data, b.len, &p->rep);
	buf_release(&b);
	if (p->rep.status == 200)
		push_parse(p, (const uint8_t(*)[HASH_BYTES])ids, n);
	free(ids);
	return p->rep.status;
}

static void push_ok(struct dev *d, const struct cset *const *sets, size_t n,
		    struct pushed *p)
{
	ck_assert_msg(push_try(d, sets, n, p) == 200, "push: %ld %s",
		      p->rep.status, p->rep.body ? (char *)p->rep.body : "");
}

/* Pushes one set alone and checks its verdict. */
static void push_one(struct dev *d, const struct cset *c,
		     enum verdict_status want, int receipt, const char *reason,
		     struct pushed *p)
{
	push_ok(d, &c, 1, p);
	ck_assert_msg(p->v[0].status == want, "verdict %d (%s), wanted %d",
		      p->v[0].status, p->v[0].reason, want);
	ck_assert_msg((p->v[0].receipt != NULL) == (receipt != 0),
		      "receipt %s, wanted %s (%s)",
		      p->v[0].receipt ? "present" : "absent",
		      receipt ? "present" : "absent", p->v[0].reason);
	if (reason)
		ck_assert_msg(strstr(p->v[0].reason, reason) != NULL,
			      "'%s' not in the reason '%s'", reason,
			      p->v[0].reason);
}

/* ---- the server's database, read-only ---- */

static sqlite3 *db_open(void)
{
	char path[PATH_MAX + 16];
	sqlite3 *db = NULL;

	snprintf(path, sizeof path, "%s/server.db", S.data);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	sqlite3_busy_timeout(db, 20000);
	return db;
}

/* A count with an optional blob (?1) and text (?2). */
static long long db_count(const char *sql, const void *blob, size_t blen,
			  const char *text)
{
	sqlite3 *db = db_open();
	sqlite3_stmt *st;
	long long n;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
		      "%s: %s", sql, sqlite3_errmsg(db));
	if (blob)
		sqlite3_bind_blob(st, 1, blob, (int)blen, SQLITE_STATIC);
	if (text)
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* How many log entries hold this change set. */
static long long logged(const struct cset *c)
{
	return db_count("SELECT count(*) FROM srv_log WHERE cs_id = ?1", c->id,
			HASH_BYTES, NULL);
}

/* 1 if the member row is in the consolidated records. */
static long long has_member(const struct cset *c)
{
	return db_count("SELECT count(*) FROM members WHERE id = ?2", NULL, 0,
			c->member);
}

/* ---- tests: enrollment, pushes, receipts, idempotence ---- */

START_TEST(test_enroll_push_receipts)
{
	struct dev a, other;
	struct cset c1, c2, c3, c4;
	const struct cset *two[2], *three[3];
	struct pushed p;
	struct reply r;
	char tok[65], bad[65];
	uint64_t i1, i2;

	dev_new(&a);
	token_make("branch", "b1", tok);
	enroll_with(&a, tok, "pc of b1", ROLE_BRANCH, "b1");
	assert_alive();

	/* the token was spent: another key cannot use it */
	dev_new(&other);
	ck_assert_int_eq(enroll_try(&other, tok, "thief", &r), 403);
	assert_error(&r, 403, NULL);
	reply_free(&r);
	/* an unknown token */
	memset(bad, 'a', 64);
	bad[64] = '\0';
	ck_assert_int_eq(enroll_try(&other, bad, "guess", &r), 403);
	reply_free(&r);
	/* a key that is enrolled already */
	token_make("branch", "b1", tok);
	ck_assert_int_eq(enroll_try(&a, tok, "again", &r), 409);
	assert_error(&r, 409, NULL);
	reply_free(&r);
	/* a malformed enroll body */
	ck_assert_int_eq(
	    dev_call(&other, "POST", "/v1/enroll", "BSFS\x01", 5, &r), 400);
	reply_free(&r);
	assert_alive();

	dev_member(&a, &c1, "b1");
	dev_member(&a, &c2, "b1");
	two[0] = &c1;
	two[1] = &c2;
	push_ok(&a, two, 2, &p);
	ck_assert_int_eq(p.v[0].status, VERDICT_ACCEPTED);
	ck_assert_int_eq(p.v[1].status, VERDICT_ACCEPTED);
	ck_assert_ptr_nonnull(p.v[0].receipt);
	ck_assert_ptr_nonnull(p.v[1].receipt);
	i1 = p.rc[0].index;
	i2 = p.rc[1].index;
	ck_assert_uint_eq(i2, i1 + 1);
	ck_assert_uint_eq(p.cp.size, i2 + 1);
	pushed_free(&p);
	assert_alive();

	/* idempotent: the same set again is a duplicate with its receipt */
	push_one(&a, &c1, VERDICT_DUPLICATE, 1, NULL, &p);
	ck_assert_uint_eq(p.rc[0].index, i1);
	pushed_free(&p);
	dev_member(&a, &c3, "b1");
	three[0] = &c1;
	three[1] = &c2;
	three[2] = &c3;
	push_ok(&a, three, 3, &p);
	ck_assert_int_eq(p.v[0].status, VERDICT_DUPLICATE);
	ck_assert_int_eq(p.v[1].status, VERDICT_DUPLICATE);
	ck_assert_int_eq(p.v[2].status, VERDICT_ACCEPTED);
	ck_assert_uint_eq(p.rc[0].index, i1);
	ck_assert_uint_eq(p.rc[1].index, i2);
	ck_assert_uint_gt(p.rc[2].index, i2);
	pushed_free(&p);
	assert_alive();

	/* twice in one push: stored once, the second a duplicate */
	dev_member(&a, &c4, "b1");
	two[0] = &c4;
	two[1] = &c4;
	push_ok(&a, two, 2, &p);
	ck_assert_int_eq(p.v[0].status, VERDICT_ACCEPTED);
	ck_assert_int_eq(p.v[1].status, VERDICT_DUPLICATE);
	ck_assert_uint_eq(p.rc[0].index, p.rc[1].index);
	pushed_free(&p);

	ck_assert_int_eq(logged(&c1), 1);
	ck_assert_int_eq(logged(&c2), 1);
	ck_assert_int_eq(logged(&c3), 1);
	ck_assert_int_eq(logged(&c4), 1);
	ck_assert_int_eq(has_member(&c1) + has_member(&c2) + has_member(&c3) +
			     has_member(&c4),
			 4);
	cset_free(&c4);
	cset_free(&c1);
	cset_free(&c2);
	cset_free(&c3);
	dev_free(&a);
	dev_free(&other);
}
END_TEST

/* ---- tests: malformed bodies, content types and encodings ---- */

static long post_raw(struct dev *d, const void *body, size_t len,
		     const char *ctype, const char *cenc, struct reply *r)
{
	return dev_call_ex(d, "POST", "/v1/push", ctype, cenc, NULL, body, len,
			   r);
}

/* One zstd frame of in; *out is malloc'd. */
static size_t zstd_bytes(const void *in, size_t len, uint8_t **out)
{
	size_t n = ZSTD_compressBound(len);

	*out = malloc(n);
	ck_assert_ptr_nonnull(*out);
	n = ZSTD_compress(*out, n, in, len, 19);
	ck_assert(!ZSTD_isError(n));
	return n;
}

/* zlib (RFC 1950) bytes of in; *out is malloc'd. */
static size_t deflate_bytes(const void *in, size_t len, uint8_t **out)
{
	uLongf n = compressBound((uLong)len);

	*out = malloc(n);
	ck_assert_ptr_nonnull(*out);
	ck_assert_int_eq(compress2(*out, &n, in, (uLong)len, 9), Z_OK);
	return n;
}

START_TEST(test_malformed_bodies)
{
	struct dev a;
	struct cset c1, c2;
	struct buf b;
	struct reply r;
	struct pushed p;
	struct frames f;
	uint8_t *plain, *z;
	size_t zlen;
	uLongf plain_len;
	static const uint8_t bad_magic[] = {'B', 'S', 'F', 'X', 1, 0};
	static const uint8_t bad_type[] = {'B', 'S', 'F', 'S', 1, 200, 0, 0};

	enroll(&a, "branch", "b1");
	dev_member(&a, &c1, "b1");

	ck_assert_int_eq(
	    post_raw(&a, bad_magic, sizeof bad_magic, NULL, NULL, &r), 400);
	assert_error(&r, 400, "malformed");
	ck_assert_str_ne(r.challenge, "");
	reply_free(&r);
	assert_alive();

	ck_assert_int_eq(
	    post_raw(&a, bad_type, sizeof bad_type, NULL, NULL, &r), 400);
	reply_free(&r);
	assert_alive();

	/* truncated: a valid change set, then no END; nothing is kept */
	stream_init(&b);
	frame_put(&b, FRAME_CHANGESET, c1.bytes, c1.len);
	ck_assert_int_eq(post_raw(&a, b.data, b.len, NULL, NULL, &r), 400);
	assert_error(&r, 400, NULL);
	reply_free(&r);
	/* cut inside the change set frame */
	ck_assert_int_eq(post_raw(&a, b.data, b.len - 7, NULL, NULL, &r), 400);
	reply_free(&r);
	buf_release(&b);
	ck_assert_int_eq(logged(&c1), 0);
	ck_assert_int_eq(has_member(&c1), 0);
	assert_alive();

	/* an empty body */
	ck_assert_int_eq(post_raw(&a, NULL, 0, NULL, NULL, &r), 400);
	reply_free(&r);

	/* a frame other than CHANGESET, alone and after a valid set */
	stream_init(&b);
	frame_put(&b, FRAME_META, "x", 1);
	frame_stream_end(&b);
	ck_assert_int_eq(post_raw(&a, b.data, b.len, NULL, NULL, &r), 400);
	assert_error(&r, 400, "change set");
	reply_free(&r);
	buf_release(&b);
	stream_init(&b);
	frame_put(&b, FRAME_CHANGESET, c1.bytes, c1.len);
	frame_put(&b, FRAME_RECEIPT, "x", 1);
	frame_stream_end(&b);
	ck_assert_int_eq(post_raw(&a, b.data, b.len, NULL, NULL, &r), 400);
	reply_free(&r);
	buf_release(&b);
	ck_assert_int_eq(logged(&c1), 0);
	assert_alive();

	/* more than 1000 change sets in one push */
	stream_init(&b);
	{
		int i;

		for (i = 0; i < 1001; i++)
			frame_put(&b, FRAME_CHANGESET, "x", 1);
	}
	frame_stream_end(&b);
	ck_assert_int_eq(post_raw(&a, b.data, b.len, NULL, NULL, &r), 413);
	assert_error(&r, 413, "1000");
	reply_free(&r);
	buf_release(&b);
	assert_alive();

	/* content types and encodings */
	push_stream((const struct cset *const[]){&c1}, 1, &b);
	ck_assert_int_eq(post_raw(&a, b.data, b.len, "text/plain", NULL, &r),
			 415);
	assert_error(&r, 415, NULL);
	reply_free(&r);
	ck_assert_int_eq(post_raw(&a, b.data, b.len,
				  "application/x-www-form-urlencoded", NULL,
				  &r),
			 415);
	reply_free(&r);
	assert_alive();
	ck_assert_int_eq(post_raw(&a, b.data, b.len, NULL, "gzip", &r), 415);
	assert_error(&r, 415, "Content-Encoding");
	reply_free(&r);
	ck_assert_int_eq(post_raw(&a, b.data, b.len, NULL, "br", &r), 415);
	reply_free(&r);
	assert_alive();
	/* deflate that is not zlib */
	ck_assert_int_eq(post_raw(&a, b.data, b.len, NULL, "deflate", &r), 400);
	assert_error(&r, 400, NULL);
	reply_free(&r);
	ck_assert_int_eq(logged(&c1), 0);
	assert_alive();

	/* zstd that is not zstd */
	ck_assert_int_eq(post_raw(&a, b.data, b.len, NULL, "zstd", &r), 400);
	assert_error(&r, 400, "corrupt");
	reply_free(&r);
	ck_assert_int_eq(logged(&c1), 0);
	/* a zstd body with a byte cut off */
	zlen = zstd_bytes(b.data, b.len, &z);
	ck_assert_int_eq(post_raw(&a, z, zlen - 1, NULL, "zstd", &r), 400);
	reply_free(&r);
	free(z);
	ck_assert_int_eq(logged(&c1), 0);
	assert_alive();

	/* a good deflate push is accepted (so c1 was really never logged) */
	zlen = deflate_bytes(b.data, b.len, &z);
	ck_assert_int_eq(post_raw(&a, z, zlen, NULL, "deflate", &p.rep), 200);
	push_parse(&p, (const uint8_t(*)[HASH_BYTES])c1.id, 1);
	ck_assert_int_eq(p.v[0].status, VERDICT_ACCEPTED);
	pushed_free(&p);
	free(z);
	buf_release(&b);
	ck_assert_int_eq(logged(&c1), 1);

	/* Accept-Encoding: deflate gives a deflated frame stream */
	ck_assert_int_eq(dev_call_ex(&a, "GET", "/v1/pull?after=0", NULL, NULL,
				     "Accept-Encoding: deflate", NULL, 0, &r),
			 200);
	ck_assert_str_eq(r.cenc, "deflate");
	plain_len = 8u << 20;
	plain = malloc(plain_len);
	ck_assert_ptr_nonnull(plain);
	ck_assert_int_eq(uncompress(plain, &plain_len, r.body, (uLong)r.len),
			 Z_OK);
	ck_assert_int_eq(frames_parse(plain, plain_len, &f), BS_OK);
	ck_assert_int_eq(f.type[0], FRAME_CHECKPOINT);
	ck_assert_int_eq(f.type[f.n - 1], FRAME_CURSOR);
	frames_free(&f);
	reply_free(&r);
	assert_alive();

	/* a zstd push is accepted, and zstd is preferred when both are
	 * acceptable */
	dev_member(&a, &c2, "b1");
	push_stream((const struct cset *const[]){&c2}, 1, &b);
	zlen = zstd_bytes(b.data, b.len, &z);
	ck_assert_int_eq(post_raw(&a, z, zlen, NULL, "zstd", &p.rep), 200);
	push_parse(&p, (const uint8_t(*)[HASH_BYTES])c2.id, 1);
	ck_assert_int_eq(p.v[0].status, VERDICT_ACCEPTED);
	pushed_free(&p);
	free(z);
	buf_release(&b);
	ck_assert_int_eq(logged(&c2), 1);
	ck_assert_int_eq(dev_call_ex(&a, "GET", "/v1/pull?after=0", NULL, NULL,
				     "Accept-Encoding: deflate, zstd", NULL, 0,
				     &r),
			 200);
	ck_assert_str_eq(r.cenc, "zstd");
	plain_len = ZSTD_decompress(plain, 8u << 20, r.body, r.len);
	ck_assert(!ZSTD_isError(plain_len));
	ck_assert_int_eq(frames_parse(plain, plain_len, &f), BS_OK);
	ck_assert_int_eq(f.type[0], FRAME_CHECKPOINT);
	ck_assert_int_eq(f.type[f.n - 1], FRAME_CURSOR);
	frames_free(&f);
	free(plain);
	reply_free(&r);
	assert_alive();
	cset_free(&c1);
	cset_free(&c2);
	dev_free(&a);
}
END_TEST

/* Compact sets are expanded to the exact bytes their author signed: the
 * same ids, receipts and log entries as whole ones. One whose predecessor
 * the server cannot name is refused with 409 and nothing is logged; one
 * sent by another device expands under that device's key and fails its
 * signature; a malformed one is 400. */
START_TEST(test_compact_push)
{
	struct dev a, b;
	struct cset c1, c2, c3, c4, c5;
	struct buf body;
	struct pushed p;
	struct reply r;
	int whole_first[2] = {1, 0};
	uint8_t junk[80], ids[2][HASH_BYTES];
	long long b_entries;

	enroll(&a, "branch", "b1");
	enroll(&b, "branch", "b1");
	dev_member(&a, &c1, "b1");
	dev_member(&a, &c2, "b1");
	dev_member(&a, &c3, "b1");
	dev_member(&a, &c4, "b1");
	dev_member(&a, &c5, "b1");

	/* seq 2 first: its predecessor is neither logged nor in the push */
	push_compact((const struct cset *const[]){&c2}, 1, NULL, &body);
	ck_assert_int_eq(post_raw(&a, body.data, body.len, NULL, NULL, &r),
			 409);
	assert_error(&r, 409, "whole");
	reply_free(&r);
	buf_release(&body);
	ck_assert_int_eq(logged(&c2), 0);

	/* seq 1 and 2 compact in one push: seq 1 needs no predecessor,
	 * seq 2 follows it */
	push_compact((const struct cset *const[]){&c1, &c2}, 2, NULL, &body);
	ck_assert_int_eq(post_raw(&a, body.data, body.len, NULL, NULL, &p.rep),
			 200);
	memcpy(ids[0], c1.id, HASH_BYTES);
	memcpy(ids[1], c2.id, HASH_BYTES);
	push_parse(&p, (const uint8_t(*)[HASH_BYTES])ids, 2);
	ck_assert_int_eq(p.v[0].status, VERDICT_ACCEPTED);
	ck_assert_int_eq(p.v[1].status, VERDICT_ACCEPTED);
	pushed_free(&p);
	buf_release(&body);
	ck_assert_int_eq(logged(&c1), 1);
	ck_assert_int_eq(logged(&c2), 1);
	/* the log holds the whole signed bytes */
	{
		sqlite3 *db = db_open();
		sqlite3_stmt *st;

		ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT entry FROM "
						    "srv_log WHERE cs_id=?1",
						    -1, &st, NULL),
				 SQLITE_OK);
		sqlite3_bind_blob(st, 1, c2.id, HASH_BYTES, SQLITE_STATIC);
		ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
		ck_assert(contains(sqlite3_column_blob(st, 0),
				   (size_t)sqlite3_column_bytes(st, 0),
				   c2.bytes, c2.len));
		sqlite3_finalize(st);
		sqlite3_close(db);
	}

	/* seq 3 whole, then seq 4 compact after it in the same push */
	push_compact((const struct cset *const[]){&c3, &c4}, 2, whole_first,
		     &body);
	ck_assert_int_eq(post_raw(&a, body.data, body.len, NULL, NULL, &r),
			 200);
	reply_free(&r);
	buf_release(&body);
	ck_assert_int_eq(logged(&c3), 1);
	ck_assert_int_eq(logged(&c4), 1);
	/* seq 4 compact again, as after a lost answer: its predecessor is
	 * no longer the head but is in the log, so it is a duplicate */
	push_compact((const struct cset *const[]){&c4}, 1, NULL, &body);
	ck_assert_int_eq(post_raw(&a, body.data, body.len, NULL, NULL, &p.rep),
			 200);
	push_parse(&p, (const uint8_t(*)[HASH_BYTES])c4.id, 1);
	ck_assert_int_eq(p.v[0].status, VERDICT_DUPLICATE);
	pushed_free(&p);
	buf_release(&body);
	ck_assert_int_eq(logged(&c4), 1);

	/* a's seq 1 compact, but sent by b: expanded as b's seq 1, which b
	 * did not sign: 409 (sent whole, it would get its real verdict),
	 * nothing logged */
	b_entries = db_count("SELECT count(*) FROM srv_log WHERE author=?1",
			     b.pk, SIGN_PUBLIC_BYTES, NULL);
	push_compact((const struct cset *const[]){&c1}, 1, NULL, &body);
	ck_assert_int_eq(post_raw(&b, body.data, body.len, NULL, NULL, &r),
			 409);
	assert_error(&r, 409, "does not verify");
	reply_free(&r);
	buf_release(&body);
	ck_assert_int_eq(db_count("SELECT count(*) FROM srv_log WHERE author=?1",
				  b.pk, SIGN_PUBLIC_BYTES, NULL),
			 b_entries);
	/* seq 5 compact by a: its last logged set is 4 */
	push_compact((const struct cset *const[]){&c5}, 1, NULL, &body);
	ck_assert_int_eq(post_raw(&a, body.data, body.len, NULL, NULL, &r),
			 200);
	reply_free(&r);
	buf_release(&body);
	ck_assert_int_eq(logged(&c5), 1);

	/* a push of no sets at all */
	stream_init(&body);
	frame_stream_end(&body);
	ck_assert_int_eq(post_raw(&a, body.data, body.len, NULL, NULL, &r),
			 400);
	assert_error(&r, 400, "at least one");
	reply_free(&r);
	buf_release(&body);

	/* malformed compact frames */
	memset(junk, 'B', sizeof junk);
	stream_init(&body);
	frame_put(&body, FRAME_CHANGESET_COMPACT, junk, sizeof junk);
	frame_stream_end(&body);
	ck_assert_int_eq(post_raw(&a, body.data, body.len, NULL, NULL, &r),
			 400);
	assert_error(&r, 400, "compact");
	reply_free(&r);
	buf_release(&body);
	assert_alive();
	cset_free(&c1);
	cset_free(&c2);
	cset_free(&c3);
	cset_free(&c4);
	cset_free(&c5);
	dev_free(&a);
	dev_free(&b);
}
END_TEST

/* With receipt=push the answer is one signed push receipt for the whole
 * push: the verdicts in order with their log indices, bound to the ids
 * sent, under the checkpoint that covers them. */
static void push_receipt_get(struct dev *d, const struct cset *const *sets,
			     size_t n, struct pushreceipt *pr,
			     struct reply *r)
{
	uint8_t ids[4][HASH_BYTES], h[HASH_BYTES];
	struct frames f;
	struct buf body;
	size_t i;

	ck_assert_uint_le(n, 4);
	push_stream(sets, n, &body);
	ck_assert_int_eq(dev_call(d, "POST", "/v1/push?receipt=push",
				  body.data, body.len, r),
			 200);
	buf_release(&body);
	ck_assert_int_eq(frames_parse(r->body, r->len, &f), BS_OK);
	ck_assert_uint_eq(f.n, 1);
	ck_assert_int_eq(f.type[0], FRAME_PUSHRECEIPT);
	ck_assert_int_eq(pushreceipt_decode(f.p[0], f.len[0], pr), BS_OK);
	ck_assert_int_eq(pushreceipt_verify(pr, S.pk), BS_OK);
	/* the signed bytes point into f: not used after this */
	pr->signed_bytes = NULL;
	pr->signed_len = 0;
	frames_free(&f);
	ck_assert_uint_eq(pr->count, n);
	for (i = 0; i < n; i++)
		memcpy(ids[i], sets[i]->id, HASH_BYTES);
	pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])ids, n, h);
	ck_assert_mem_eq(pr->ids_hash, h, HASH_BYTES);
}

START_TEST(test_push_receipt)
{
	struct dev a;
	struct cset c1, c2, c4;
	struct pushreceipt pr, pr2;
	struct reply r, r2;

	enroll(&a, "branch", "b1");
	dev_member(&a, &c1, "b1");
	dev_member(&a, &c2, "b1");
	push_receipt_get(&a, (const struct cset *const[]){&c1, &c2}, 2, &pr,
			 &r);
	ck_assert_int_eq(pr.items[0].status, VERDICT_ACCEPTED);
	ck_assert_int_eq(pr.items[1].status, VERDICT_ACCEPTED);
	ck_assert(pr.items[0].logged && pr.items[1].logged);
	ck_assert_uint_eq(pr.items[1].index, pr.items[0].index + 1);
	ck_assert_uint_eq(pr.checkpoint.size, pr.items[1].index + 1);
	ck_assert_int_eq(logged(&c1), 1);
	ck_assert_int_eq(logged(&c2), 1);

	/* again: duplicates, at the same indices */
	push_receipt_get(&a, (const struct cset *const[]){&c1, &c2}, 2, &pr2,
			 &r2);
	ck_assert_int_eq(pr2.items[0].status, VERDICT_DUPLICATE);
	ck_assert_uint_eq(pr2.items[0].index, pr.items[0].index);
	ck_assert_uint_eq(pr2.items[1].index, pr.items[1].index);
	pushreceipt_release(&pr2);
	reply_free(&r2);

	/* a gap: refused, not logged, with its reason */
	dev_member(&a, &c4, "b1"); /* seq 3 */
	cset_free(&c4);
	dev_member(&a, &c4, "b1"); /* seq 4, sent without 3 */
	push_receipt_get(&a, (const struct cset *const[]){&c4}, 1, &pr2, &r2);
	ck_assert_int_eq(pr2.items[0].status, VERDICT_REFUSED);
	ck_assert(!pr2.items[0].logged);
	ck_assert_uint_gt(strlen(pr2.items[0].reason), 0);
	ck_assert_int_eq(logged(&c4), 0);
	pushreceipt_release(&pr2);
	reply_free(&r2);

	/* an answer form the server does not know */
	ck_assert_int_eq(dev_call(&a, "POST", "/v1/push?receipt=all", NULL, 0,
				  &r2),
			 400);
	reply_free(&r2);
	pushreceipt_release(&pr);
	reply_free(&r);
	cset_free(&c1);
	cset_free(&c2);
	cset_free(&c4);
	assert_alive();
	dev_free(&a);
}
END_TEST

/* With receipt=wire the push receipt comes without the ids hash: put
 * back from the ids sent, in order, it verifies; in another order not. */
START_TEST(test_push_receipt_wire)
{
	struct dev a;
	struct cset c1, c2;
	struct pushreceipt pr;
	struct reply r;
	struct frames f;
	struct buf body, full, again;
	uint8_t ids[2][HASH_BYTES], h[HASH_BYTES];

	enroll(&a, "branch", "b1");
	dev_member(&a, &c1, "b1");
	dev_member(&a, &c2, "b1");
	push_stream((const struct cset *const[]){&c1, &c2}, 2, &body);
	ck_assert_int_eq(dev_call(&a, "POST", "/v1/push?receipt=wire",
				  body.data, body.len, &r),
			 200);
	ck_assert_int_eq(frames_parse(r.body, r.len, &f), BS_OK);
	ck_assert_uint_eq(f.n, 1);
	ck_assert_int_eq(f.type[0], FRAME_PUSHRECEIPT);
	memcpy(ids[0], c1.id, HASH_BYTES);
	memcpy(ids[1], c2.id, HASH_BYTES);
	pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])ids, 2, h);
	buf_init(&full, PUSHRECEIPT_SIGNED_MAX);
	buf_init(&again, PUSHRECEIPT_SIGNED_MAX);
	ck_assert_int_eq(pushreceipt_wire_unpack(f.p[0], f.len[0], h, &full),
			 BS_OK);
	ck_assert_uint_eq(full.len, f.len[0] + HASH_BYTES);
	ck_assert_int_eq(pushreceipt_decode(full.data, full.len, &pr), BS_OK);
	ck_assert_int_eq(pushreceipt_verify(&pr, S.pk), BS_OK);
	ck_assert_uint_eq(pr.count, 2);
	ck_assert_int_eq(pr.items[0].status, VERDICT_ACCEPTED);
	ck_assert_int_eq(pr.items[1].status, VERDICT_ACCEPTED);
	ck_assert_mem_eq(pr.ids_hash, h, HASH_BYTES);
	pushreceipt_release(&pr);
	ck_assert_int_eq(pushreceipt_wire_pack(full.data, full.len, &again),
			 BS_OK);
	ck_assert_uint_eq(again.len, f.len[0]);
	ck_assert_mem_eq(again.data, f.p[0], f.len[0]);
	/* the ids in the other order: the signature does not hold */
	memcpy(ids[0], c2.id, HASH_BYTES);
	memcpy(ids[1], c1.id, HASH_BYTES);
	pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])ids, 2, h);
	buf_reset(&full);
	ck_assert_int_eq(pushreceipt_wire_unpack(f.p[0], f.len[0], h, &full),
			 BS_OK);
	ck_assert_int_eq(pushreceipt_decode(full.data, full.len, &pr), BS_OK);
	ck_assert_int_eq(pushreceipt_verify(&pr, S.pk), BS_ESIGNATURE);
	pushreceipt_release(&pr);
	frames_free(&f);
	reply_free(&r);
	buf_release(&body);
	buf_release(&full);
	buf_release(&again);
	ck_assert_int_eq(logged(&c1), 1);
	ck_assert_int_eq(logged(&c2), 1);
	cset_free(&c1);
	cset_free(&c2);
	assert_alive();
	dev_free(&a);
}
END_TEST

/* ---- tests: body limits ---- */

static uint64_t metric(const char *name)
{
	struct reply r;
	const char *p;
	char key[128];
	unsigned long long v = 0;

	ck_assert_int_eq(http_get("/metrics", &r), 200);
	snprintf(key, sizeof key, "\n%s ", name);
	p = strstr((const char *)r.body, key);
	ck_assert_msg(p != NULL, "no %s in /metrics", name);
	ck_assert_int_eq(sscanf(p + strlen(key), "%llu", &v), 1);
	reply_free(&r);
	return v;
}

/* A chunked POST of `total` zero bytes; the answer's status or -1. */
static int chunked_post(size_t total)
{
	static const char head[] =
	    "POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Content-Type: application/x-branchsync\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n";
	size_t chunk = 64u << 10, sent = 0;
	char *data = calloc(1, chunk + 32);
	int fd = raw_dial(), st;

	ck_assert_ptr_nonnull(data);
	if (raw_send(fd, head, strlen(head)) == 0) {
		while (sent < total) {
			size_t n = total - sent < chunk ? total - sent : chunk;
			char line[32];

			snprintf(line, sizeof line, "%zx\r\n", n);
			if (raw_send(fd, line, strlen(line)) ||
			    raw_send(fd, data, n) || raw_send(fd, "\r\n", 2))
				break;
			sent += n;
		}
		if (sent == total)
			raw_send(fd, "0\r\n\r\n", 5);
	}
	st = raw_status(fd);
	close(fd);
	free(data);
	return st;
}

START_TEST(test_body_limits)
{
	static const char honest[] =
	    "POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Content-Type: application/x-branchsync\r\n"
	    "Content-Length: 17825792\r\n\r\n";
	static const char just_over[] =
	    "POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Content-Type: application/x-branchsync\r\n"
	    "Content-Length: 16777217\r\n\r\n";
	static const char both[] =
	    "POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Content-Type: application/x-branchsync\r\n"
	    "Content-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n0\r\n\r\n";
	struct dev a;
	struct reply r;
	uint64_t in0;
	uint8_t *zeros, *z;
	size_t zlen;
	int fd, k;

	/* honest Content-Length over the limit: answered before any body
	 * byte is sent, so the server cannot have read it */
	in0 = metric("branchsync_http_bytes_received_total");
	fd = raw_dial();
	ck_assert_int_eq(raw_send(fd, honest, strlen(honest)), 0);
	ck_assert_int_eq(raw_status(fd), 413);
	close(fd);
	fd = raw_dial();
	ck_assert_int_eq(raw_send(fd, just_over, strlen(just_over)), 0);
	ck_assert_int_eq(raw_status(fd), 413);
	close(fd);
	ck_assert_uint_lt(metric("branchsync_http_bytes_received_total") - in0,
			  1u << 20);
	assert_alive();

	/* chunked, no length announced: 16.5 MiB gets its 413 */
	ck_assert_int_eq(chunked_post(MAX_BODY + (512u << 10)), 413);
	assert_alive();
	/* far more: a 413 or the connection closed, never the body kept */
	{
		int st = chunked_post(40u << 20);

		ck_assert_msg(st == 413 || st == -1, "chunked 40 MiB: %d", st);
	}
	assert_alive();
	/* both framings at once (a lying length) */
	fd = raw_dial();
	ck_assert_int_eq(raw_send(fd, both, strlen(both)), 0);
	ck_assert_int_eq(raw_status(fd), 400);
	close(fd);
	assert_alive();

	/* a zip bomb: 20 MiB of zeros compressed, properly signed, in each
	 * coding the server takes */
	enroll(&a, "branch", "b1");
	for (k = 0; k < 2; k++) {
		zeros = calloc(1, 20u << 20);
		ck_assert_ptr_nonnull(zeros);
		zlen = k ? zstd_bytes(zeros, 20u << 20, &z)
			 : deflate_bytes(zeros, 20u << 20, &z);
		free(zeros);
		ck_assert_uint_lt(zlen, 1u << 20);
		ck_assert_int_eq(post_raw(&a, z, zlen, NULL,
					  k ? "zstd" : "deflate", &r),
				 413);
		assert_error(&r, 413, "inflates");
		reply_free(&r);
		free(z);
		assert_alive();
	}
	dev_free(&a);
}
END_TEST

/* ---- tests: request authentication and replay ---- */

/* The one-header form: "Authorization: BS " and base64url (no padding)
 * of device || challenge || signature (`named`, the long form), or of
 * challenge || signature (the short form) (docs/API.md). The signature
 * covers d's key either way. */
static void auth_line_form(const struct dev *d, const char *challenge_text,
			   int named, const char *method, const char *target,
			   const void *body, size_t len, char out[256])
{
	struct request_auth ra;
	uint8_t raw[32 + REQUEST_CHALLENGE_BYTES + SIGN_BYTES];
	size_t n, k = named ? 32 : 0;

	memset(&ra, 0, sizeof ra);
	ra.method = method;
	ra.path = target;
	hash_sha256(ra.body_hash, body, len, NULL, 0);
	challenge_to_bin(challenge_text, ra.challenge);
	memcpy(ra.device, d->pk, sizeof ra.device);
	memcpy(raw, d->pk, k);
	memcpy(raw + k, ra.challenge, REQUEST_CHALLENGE_BYTES);
	ck_assert_int_eq(request_sign(&ra, d->sk,
				      raw + k + REQUEST_CHALLENGE_BYTES),
			 BS_OK);
	n = (size_t)snprintf(out, 256, "Authorization: BS ");
	sodium_bin2base64(out + n, 256 - n, raw,
			  k + REQUEST_CHALLENGE_BYTES + SIGN_BYTES,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	/* 150 characters long, 107 short */
	ck_assert_uint_eq(strlen(out + n), named ? 150 : 107);
}

static void auth_line(const struct dev *d, const char *challenge_text,
		      const char *method, const char *target, const void *body,
		      size_t len, char out[256])
{
	auth_line_form(d, challenge_text, 1, method, target, body, len, out);
}

START_TEST(test_auth_header)
{
	struct dev a;
	struct cset c1, c2;
	struct buf b, b2;
	struct reply r;
	char ch[65], line[256], bad[300];
	const char *h[3] = {line, "Content-Type: " CT_FRAMES, NULL};
	size_t n;

	enroll(&a, "branch", "b1");
	dev_member(&a, &c1, "b1");
	push_stream((const struct cset *const[]){&c1}, 1, &b);

	/* the one-header form is accepted like the three headers */
	ck_assert_int_eq(dev_challenge(&a, ch), 0);
	auth_line(&a, ch, "POST", "/v1/push", b.data, b.len, line);
	ck_assert_int_eq(http_send("POST", "/v1/push", h, b.data, b.len, &r),
			 200);
	ck_assert_uint_eq(strlen(r.challenge), CHALLENGE_TEXT);
	reply_free(&r);
	ck_assert_int_eq(logged(&c1), 1);
	/* and replayed, refused */
	ck_assert_int_eq(http_send("POST", "/v1/push", h, b.data, b.len, &r),
			 401);
	assert_error(&r, 401, "challenge");
	reply_free(&r);

	/* one character of the signature changed: does not verify */
	dev_member(&a, &c2, "b1");
	push_stream((const struct cset *const[]){&c2}, 1, &b2);
	ck_assert_int_eq(dev_challenge(&a, ch), 0);
	auth_line(&a, ch, "POST", "/v1/push", b2.data, b2.len, line);
	n = strlen(line);
	line[n - 5] = line[n - 5] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(http_send("POST", "/v1/push", h, b2.data, b2.len, &r),
			 401);
	assert_error(&r, 401, "does not verify");
	reply_free(&r);

	/* malformed: another scheme, padding, a character short, three
	 * bytes more, characters outside base64url; lengths of neither form
	 * (96 bytes: between; 128: device, a 32-byte challenge and
	 * signature, the form before challenges were 16 bytes) */
	ck_assert_int_eq(dev_challenge(&a, ch), 0);
	auth_line(&a, ch, "POST", "/v1/push", b2.data, b2.len, line);
	{
		const char *v = line + strlen("Authorization: BS ");
		const char *forms[] = {"Authorization: Bearer %s",
				       "Authorization: BS %s=",
				       "Authorization: BS %.149s",
				       "Authorization: BS %sAAAA",
				       "Authorization: BS +%.149s",
				       "Authorization: BS  %s",
				       "Authorization: BS %.128s",
				       "Authorization: BS %sAAAAAAAAAAAAAAAAAAAAA"};
		size_t i;

		h[0] = bad;
		for (i = 0; i < sizeof forms / sizeof forms[0]; i++) {
			snprintf(bad, sizeof bad, forms[i], v);
			ck_assert_int_eq(http_send("POST", "/v1/push", h,
						   b2.data, b2.len, &r),
					 401);
			assert_error(&r, 401, "not signed");
			reply_free(&r);
		}
		h[0] = line;
	}
	/* the challenge was never spent by the malformed ones */
	ck_assert_int_eq(http_send("POST", "/v1/push", h, b2.data, b2.len, &r),
			 200);
	reply_free(&r);
	ck_assert_int_eq(logged(&c2), 1);
	buf_release(&b);
	buf_release(&b2);
	cset_free(&c1);
	cset_free(&c2);
	assert_alive();
	dev_free(&a);
}
END_TEST

/* Sends a POST /v1/push of b with one header line (and the type). */
static long push_with_line(const char *line, const struct buf *b,
			   struct reply *r)
{
	const char *h[3] = {line, "Content-Type: " CT_FRAMES, NULL};

	return http_send("POST", "/v1/push", h, b->data, b->len, r);
}

/* A challenge from the answer to a's own signed request: bound to a. */
static void bound_challenge(struct dev *a, char ch[65])
{
	struct reply r;

	a->challenge[0] = '\0';
	ck_assert_int_eq(dev_call(a, "GET", "/v1/pull?after=0&limit=1", NULL,
				  0, &r),
			 200);
	reply_free(&r);
	ck_assert_int_eq(dev_challenge(a, ch), 0);
}

/* Challenges bound to the device whose signed request they answered: the
 * short form (challenge || signature) takes the device from the challenge;
 * it needs a bound challenge, works once, and only for that device; the
 * long form naming another device is refused. */
START_TEST(test_auth_bound)
{
	struct dev a, b;
	struct cset c1, c2, c3;
	struct buf s1, s2, s3;
	struct reply r;
	char ch[65], line[256], line2[256];
	size_t n;

	enroll(&a, "branch", "b1");
	enroll(&b, "branch", "b1");
	dev_member(&a, &c1, "b1");
	dev_member(&a, &c2, "b1");
	dev_member(&a, &c3, "b1");
	push_stream((const struct cset *const[]){&c1}, 1, &s1);
	push_stream((const struct cset *const[]){&c2}, 1, &s2);
	push_stream((const struct cset *const[]){&c3}, 1, &s3);

	/* short form with a bound challenge: accepted; replayed: refused */
	bound_challenge(&a, ch);
	auth_line_form(&a, ch, 0, "POST", "/v1/push", s1.data, s1.len, line);
	ck_assert_int_eq(push_with_line(line, &s1, &r), 200);
	ck_assert_uint_eq(strlen(r.challenge), CHALLENGE_TEXT);
	/* and its answer's challenge is bound too: short form again */
	memcpy(ch, r.challenge, sizeof ch);
	reply_free(&r);
	ck_assert_int_eq(logged(&c1), 1);
	ck_assert_int_eq(push_with_line(line, &s1, &r), 401);
	assert_error(&r, 401, "challenge");
	reply_free(&r);
	auth_line_form(&a, ch, 0, "GET", "/v1/pull?after=0", NULL, 0, line2);
	{
		const char *h[2] = {line2, NULL};

		ck_assert_int_eq(http_send("GET", "/v1/pull?after=0", h, NULL,
					   0, &r),
				 200);
		reply_free(&r);
	}

	/* short form with an unbound challenge (GET /v1/challenge): refused,
	 * and the challenge is spent */
	a.challenge[0] = '\0';
	ck_assert_int_eq(dev_challenge(&a, ch), 0);
	auth_line_form(&a, ch, 0, "POST", "/v1/push", s2.data, s2.len, line);
	ck_assert_int_eq(push_with_line(line, &s2, &r), 401);
	assert_error(&r, 401, "not issued to a device");
	assert_error(&r, 401, "challenge");
	/* the challenge of a 401 answer is unbound as well */
	memcpy(ch, r.challenge, sizeof ch);
	reply_free(&r);
	auth_line_form(&a, ch, 0, "POST", "/v1/push", s2.data, s2.len, line2);
	ck_assert_int_eq(push_with_line(line2, &s2, &r), 401);
	assert_error(&r, 401, "not issued to a device");
	reply_free(&r);
	auth_line(&a, ch, "POST", "/v1/push", s2.data, s2.len, line2);
	ck_assert_int_eq(push_with_line(line2, &s2, &r), 401);
	assert_error(&r, 401, "challenge");
	reply_free(&r);
	ck_assert_int_eq(logged(&c2), 0);

	/* long form with a's bound challenge but naming b, signed by b:
	 * refused, and spent (a cannot use it after) */
	bound_challenge(&a, ch);
	auth_line(&b, ch, "POST", "/v1/push", s2.data, s2.len, line);
	ck_assert_int_eq(push_with_line(line, &s2, &r), 401);
	assert_error(&r, 401, "issued to another device");
	reply_free(&r);
	auth_line_form(&a, ch, 0, "POST", "/v1/push", s2.data, s2.len, line);
	ck_assert_int_eq(push_with_line(line, &s2, &r), 401);
	assert_error(&r, 401, "challenge");
	reply_free(&r);
	/* the same through the three headers */
	bound_challenge(&a, ch);
	{
		struct auth au;

		auth_make(&b, ch, "POST", "/v1/push", s2.data, s2.len, &au);
		send_with(&au, "POST", "/v1/push", CT_FRAMES, NULL, NULL,
			  s2.data, s2.len, &r);
		assert_error(&r, 401, "issued to another device");
		reply_free(&r);
	}
	/* b signing a's bound challenge in the short form: the server
	 * checks a's key, which does not verify b's signature */
	bound_challenge(&a, ch);
	auth_line_form(&b, ch, 0, "POST", "/v1/push", s2.data, s2.len, line);
	ck_assert_int_eq(push_with_line(line, &s2, &r), 401);
	assert_error(&r, 401, "does not verify");
	reply_free(&r);
	ck_assert_int_eq(logged(&c2), 0);

	/* long form naming the device the challenge is bound to: fine */
	bound_challenge(&a, ch);
	auth_line(&a, ch, "POST", "/v1/push", s2.data, s2.len, line);
	ck_assert_int_eq(push_with_line(line, &s2, &r), 200);
	reply_free(&r);
	ck_assert_int_eq(logged(&c2), 1);

	/* tampered short form: a signature character (does not verify, the
	 * challenge spent), a challenge character (unknown challenge, the
	 * real one kept) */
	bound_challenge(&a, ch);
	auth_line_form(&a, ch, 0, "POST", "/v1/push", s3.data, s3.len, line);
	n = strlen(line);
	memcpy(line2, line, n + 1);
	line2[n - 5] = line2[n - 5] == 'A' ? 'B' : 'A';
	line2[20] = line2[20] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(push_with_line(line2, &s3, &r), 401);
	assert_error(&r, 401, "challenge");
	reply_free(&r);
	memcpy(line2, line, n + 1);
	line2[n - 5] = line2[n - 5] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(push_with_line(line2, &s3, &r), 401);
	assert_error(&r, 401, "does not verify");
	reply_free(&r);
	ck_assert_int_eq(push_with_line(line, &s3, &r), 401);
	assert_error(&r, 401, "challenge");
	reply_free(&r);
	/* wrong lengths of the short form: a character short or more */
	bound_challenge(&a, ch);
	auth_line_form(&a, ch, 0, "POST", "/v1/push", s3.data, s3.len, line);
	n = strlen(line);
	memcpy(line2, line, n + 1);
	line2[n - 1] = '\0';
	ck_assert_int_eq(push_with_line(line2, &s3, &r), 401);
	assert_error(&r, 401, "not signed");
	reply_free(&r);
	snprintf(line2, sizeof line2, "%sAAAA", line);
	ck_assert_int_eq(push_with_line(line2, &s3, &r), 401);
	assert_error(&r, 401, "not signed");
	reply_free(&r);
	/* the old form of the three headers: a 32-byte challenge in hex */
	{
		struct auth au;

		auth_make(&a, ch, "POST", "/v1/push", s3.data, s3.len, &au);
		snprintf(au.challenge, sizeof au.challenge,
			 "X-BS-Challenge: %064d", 0);
		send_with(&au, "POST", "/v1/push", CT_FRAMES, NULL, NULL,
			  s3.data, s3.len, &r);
		assert_error(&r, 401, "not signed");
		reply_free(&r);
	}
	/* none of those spent the challenge */
	ck_assert_int_eq(push_with_line(line, &s3, &r), 200);
	reply_free(&r);
	ck_assert_int_eq(logged(&c3), 1);

	buf_release(&s1);
	buf_release(&s2);
	buf_release(&s3);
	cset_free(&c1);
	cset_free(&c2);
	cset_free(&c3);
	assert_alive();
	dev_free(&a);
	dev_free(&b);
}
END_TEST


START_TEST(test_auth)
{
	struct dev a, stranger;
	struct cset c1;
	struct buf b;
	struct auth au;
	struct reply r, r2;
	char ch[65];
	static const char *const hdrs_bad[] = {
	    "X-BS-Device: zz", "X-BS-Challenge: 00", "X-BS-Signature: 00",
	    "Content-Type: " CT_FRAMES, NULL};

	enroll(&a, "branch", "b1");
	dev_member(&a, &c1, "b1");
	push_stream((const struct cset *const[]){&c1}, 1, &b);

	/* no headers */
	send_with(NULL, "POST", "/v1/push", CT_FRAMES, NULL, NULL, b.data,
		  b.len, &r);
	assert_error(&r, 401, "not signed");
	ck_assert_uint_eq(strlen(r.challenge), CHALLENGE_TEXT);
	reply_free(&r);
	ck_assert_int_eq(http_get("/v1/pull?after=0", &r), 401);
	reply_free(&r);
	ck_assert_int_eq(
	    http_send("POST", "/v1/push", hdrs_bad, b.data, b.len, &r), 401);
	reply_free(&r);
	assert_alive();

	/* a challenge the server never issued */
	{
		uint8_t raw[REQUEST_CHALLENGE_BYTES];
		char text[CHALLENGE_TEXT + 1];

		randombytes_buf(raw, sizeof raw);
		sodium_bin2base64(text, sizeof text, raw, sizeof raw,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		auth_make(&a, text, "POST", "/v1/push", b.data, b.len, &au);
	}
	send_with(&au, "POST", "/v1/push", CT_FRAMES, NULL, NULL, b.data, b.len,
		  &r);
	assert_error(&r, 401, "challenge");
	reply_free(&r);

	/* a bad signature; its challenge is spent all the same */
	ck_assert_int_eq(dev_challenge(&a, ch), 0);
	auth_make(&a, ch, "POST", "/v1/push", b.data, b.len, &au);
	au.signature[20] = au.signature[20] == '0' ? '1' : '0';
	send_with(&au, "POST", "/v1/push", CT_FRAMES, NULL, NULL, b.data, b.len,
		  &r);
	assert_error(&r, 401, "does not verify");
	reply_free(&r);
	auth_make(&a, ch, "POST", "/v1/push", b.data, b.len, &au);
	send_with(&au, "POST", "/v1/push", CT_FRAMES, NULL, NULL, b.data, b.len,
		  &r);
	assert_error(&r, 401, "challenge");
	reply_free(&r);
	/* signed for another target, another body, another method */
	ck_assert_int_eq(dev_challenge(&a, ch), 0);
	auth_make(&a, ch, "GET", "/v1/pull?after=0", NULL, 0, &au);
	send_with(&au, "GET", "/v1/pull?after=1", NULL, NULL, NULL, NULL, 0,
		  &r);
	assert_error(&r, 401, "does not verify");
	reply_free(&r);
	ck_assert_int_eq(dev_challenge(&a, ch), 0);
	auth_make(&a, ch, "POST", "/v1/push", "other", 5, &au);
	send_with(&au, "POST", "/v1/push", CT_FRAMES, NULL, NULL, b.data, b.len,
		  &r);
	assert_error(&r, 401, "does not verify");
	reply_free(&r);
	ck_assert_int_eq(dev_challenge(&a, ch), 0);
	auth_make(&a, ch, "GET", "/v1/push", b.data, b.len, &au);
	send_with(&au, "POST", "/v1/push", CT_FRAMES, NULL, NULL, b.data, b.len,
		  &r);
	assert_error(&r, 401, "does not verify");
	reply_free(&r);
	ck_assert_int_eq(logged(&c1), 0);
	assert_alive();

	/* a well-signed request by a key that is not enrolled */
	dev_new(&stranger);
	ck_assert_int_eq(
	    dev_call(&stranger, "POST", "/v1/push", b.data, b.len, &r), 401);
	assert_error(&r, 401, "unknown device");
	reply_free(&r);
	ck_assert_int_eq(
	    dev_call(&stranger, "GET", "/v1/pull?after=0", NULL, 0, &r), 401);
	reply_free(&r);
	assert_alive();

	/* replay of a push: the same headers and body twice */
	ck_assert_int_eq(dev_challenge(&a, ch), 0);
	auth_make(&a, ch, "POST", "/v1/push", b.data, b.len, &au);
	ck_assert_int_eq(send_with(&au, "POST", "/v1/push", CT_FRAMES, NULL,
				   NULL, b.data, b.len, &r),
			 200);
	ck_assert_int_eq(send_with(&au, "POST", "/v1/push", CT_FRAMES, NULL,
				   NULL, b.data, b.len, &r2),
			 401);
	assert_error(&r2, 401, "challenge");
	reply_free(&r);
	reply_free(&r2);
	ck_assert_int_eq(logged(&c1), 1);
	/* replay of a pull */
	ck_assert_int_eq(dev_challenge(&a, ch), 0);
	auth_make(&a, ch, "GET", "/v1/pull?after=0", NULL, 0, &au);
	ck_assert_int_eq(send_with(&au, "GET", "/v1/pull?after=0", NULL, NULL,
				   NULL, NULL, 0, &r),
			 200);
	ck_assert_int_eq(send_with(&au, "GET", "/v1/pull?after=0", NULL, NULL,
				   NULL, NULL, 0, &r2),
			 401);
	assert_error(&r2, 401, "challenge");
	reply_free(&r2);
	/* the challenge carried by an answer works for the next request */
	memcpy(a.challenge, r.challenge, sizeof a.challenge);
	reply_free(&r);
	ck_assert_uint_eq(strlen(a.challenge), CHALLENGE_TEXT);
	ck_assert_int_eq(
	    dev_call(&a, "GET", "/v1/pull?after=0&limit=5", NULL, 0, &r), 200);
	reply_free(&r);
	assert_alive();
	buf_release(&b);
	cset_free(&c1);
	dev_free(&a);
	dev_free(&stranger);
}
END_TEST

/* ---- tests: change sets refused without being logged ---- */

START_TEST(test_unlogged_refusals)
{
	struct dev a, stranger;
	struct cset c1, c2, c3, s1, bad;
	const struct cset *two[2];
	struct changeset cs;
	struct pushed p;

	enroll(&a, "branch", "b1");
	dev_member(&a, &c1, "b1");
	dev_member(&a, &c2, "b1");
	dev_member(&a, &c3, "b1");

	/* one flipped byte in the signature */
	ck_assert_int_eq(changeset_decode(c1.bytes, c1.len, &cs), BS_OK);
	bad = c1;
	bad.bytes = malloc(c1.len);
	ck_assert_ptr_nonnull(bad.bytes);
	memcpy(bad.bytes, c1.bytes, c1.len);
	bad.bytes[cs.env_len + 17] ^= 0x01;
	/* the id covers the signature, so this is another id */
	ck_assert_int_eq(changeset_decode(bad.bytes, bad.len, &cs), BS_OK);
	memcpy(bad.id, cs.id, HASH_BYTES);
	ck_assert_int_ne(memcmp(bad.id, c1.id, HASH_BYTES), 0);
	push_one(&a, &bad, VERDICT_REFUSED, 0, "signature does not verify", &p);
	pushed_free(&p);
	ck_assert_int_eq(logged(&bad), 0);
	ck_assert_int_eq(logged(&c1), 0);
	/* one flipped byte in the body: its hash no longer matches, the set
	 * is undecodable and its verdict names no id (ingest.h) */
	memcpy(bad.bytes, c1.bytes, c1.len);
	bad.bytes[c1.len - 3] ^= 0x40;
	memset(bad.id, 0, HASH_BYTES);
	push_one(&a, &bad, VERDICT_REFUSED, 0, "malformed change set", &p);
	pushed_free(&p);
	ck_assert_int_eq(logged(&c1), 0);
	/* not a change set at all */
	free(bad.bytes);
	bad.bytes = malloc(5);
	ck_assert_ptr_nonnull(bad.bytes);
	memcpy(bad.bytes, "hello", 5);
	bad.len = 5;
	{
		struct buf b;
		const struct cset *one = &bad;

		push_stream(&one, 1, &b);
		ck_assert_int_eq(
		    dev_call(&a, "POST", "/v1/push", b.data, b.len, &p.rep),
		    200);
		memset(bad.id, 0, HASH_BYTES);
		push_parse(&p, (const uint8_t(*)[HASH_BYTES])bad.id, 1);
		ck_assert_int_eq(p.v[0].status, VERDICT_REFUSED);
		ck_assert_ptr_null(p.v[0].receipt);
		ck_assert_ptr_nonnull(
		    strstr(p.v[0].reason, "malformed change set"));
		pushed_free(&p);
		buf_release(&b);
	}
	free(bad.bytes);
	assert_alive();

	/* a set by an author that is not enrolled, relayed by a */
	dev_new(&stranger);
	dev_member(&stranger, &s1, "b1");
	push_one(&a, &s1, VERDICT_REFUSED, 0, "unknown device", &p);
	pushed_free(&p);
	ck_assert_int_eq(logged(&s1), 0);
	assert_alive();

	/* a gap: sequence 3 while nothing is logged */
	push_one(&a, &c3, VERDICT_REFUSED, 0, "gap", &p);
	pushed_free(&p);
	ck_assert_int_eq(logged(&c3), 0);
	/* the chain is untouched: 1, then a gap (3 after 1), then 2 and 3 */
	push_one(&a, &c1, VERDICT_ACCEPTED, 1, NULL, &p);
	pushed_free(&p);
	push_one(&a, &c3, VERDICT_REFUSED, 0, "gap", &p);
	pushed_free(&p);
	ck_assert_int_eq(logged(&c3), 0);
	two[0] = &c2;
	two[1] = &c3;
	push_ok(&a, two, 2, &p);
	ck_assert_int_eq(p.v[0].status, VERDICT_ACCEPTED);
	ck_assert_int_eq(p.v[1].status, VERDICT_ACCEPTED);
	pushed_free(&p);
	ck_assert_int_eq(logged(&c1) + logged(&c2) + logged(&c3), 3);
	ck_assert_int_eq(has_member(&c1) + has_member(&c2) + has_member(&c3),
			 3);
	assert_alive();
	cset_free(&c1);
	cset_free(&c2);
	cset_free(&c3);
	cset_free(&s1);
	dev_free(&a);
	dev_free(&stranger);
}
END_TEST

/* ---- tests: revocation while the server runs ---- */

START_TEST(test_revoked)
{
	struct dev a, dist;
	struct cset c1, c2;
	struct pushed p;
	struct reply r;
	struct run run;
	struct frames f;
	size_t i, revocations = 0, seen_c1 = 0;
	uint64_t cursor = 0;

	enroll(&a, "branch", "b1");
	enroll(&dist, "district", NULL);
	dev_member(&a, &c1, "b1");
	dev_member(&a, &c2, "b1");
	push_one(&a, &c1, VERDICT_ACCEPTED, 1, NULL, &p);
	pushed_free(&p);
	ck_assert_int_eq(dev_call(&a, "GET", "/v1/pull?after=0", NULL, 0, &r),
			 200);
	reply_free(&r);

	bsd_run(&run, "revoke", "--data", S.data, a.hex, NULL);
	ck_assert_msg(run.code == 0, "revoke: %d %s", run.code, run.err);

	ck_assert_int_eq(push_try(&a, (const struct cset *const[]){&c2}, 1, &p),
			 403);
	assert_error(&p.rep, 403, "revoked");
	ck_assert_uint_eq(strlen(p.rep.challenge), CHALLENGE_TEXT);
	pushed_free(&p);
	ck_assert_int_eq(dev_call(&a, "GET", "/v1/pull?after=0", NULL, 0, &r),
			 403);
	assert_error(&r, 403, "revoked");
	reply_free(&r);
	ck_assert_int_eq(logged(&c2), 0);
	assert_alive();

	/* relayed by another device, its new set is refused, not logged */
	push_one(&dist, &c2, VERDICT_REFUSED, 0, "revoked", &p);
	pushed_free(&p);
	ck_assert_int_eq(logged(&c2), 0);
	/* what it signed before stays: duplicate with its receipt */
	push_one(&dist, &c1, VERDICT_DUPLICATE, 1, NULL, &p);
	pushed_free(&p);

	/* the revocation is a signed log entry everyone sees */
	ck_assert_int_eq(
	    dev_call(&dist, "GET", "/v1/pull?after=0&limit=2000", NULL, 0, &r),
	    200);
	ck_assert_int_eq(frames_parse(r.body, r.len, &f), BS_OK);
	for (i = 0; i < f.n; i++) {
		struct entry e;
		struct revocation rv;

		if (f.type[i] == FRAME_CURSOR) {
			struct wire_reader wr;

			wire_reader_init(&wr, f.p[i], f.len[i]);
			ck_assert_int_eq(wire_get_varint(&wr, &cursor), BS_OK);
		}
		if (f.type[i] != FRAME_ENTRY)
			continue;
		entry_decode(f.p[i], f.len[i], &e);
		if (e.le.kind == LOGENTRY_REVOCATION) {
			ck_assert_int_eq(revocation_open(e.le.payload,
							 e.le.payload_len, S.pk,
							 &rv),
					 BS_OK);
			ck_assert_int_eq(
			    memcmp(rv.device, a.pk, SIGN_PUBLIC_BYTES), 0);
			revocations++;
		}
		if (e.le.kind == LOGENTRY_CHANGESET &&
		    memcmp(e.cs.id, c1.id, HASH_BYTES) == 0)
			seen_c1++;
	}
	ck_assert_uint_eq(revocations, 1);
	ck_assert_uint_eq(seen_c1, 1);
	ck_assert_uint_gt(cursor, 0);
	frames_free(&f);
	reply_free(&r);
	assert_alive();
	cset_free(&c1);
	cset_free(&c2);
	dev_free(&a);
	dev_free(&dist);
}
END_TEST

/* ---- tests: refused and logged: scope, equivocation, fork ---- */

START_TEST(test_out_of_scope)
{
	struct dev a;
	struct cset c1, c2, c3;
	struct pushed p;
	uint64_t idx;

	enroll(&a, "branch", "b1");
	dev_member(&a, &c1, "b1");
	dev_member(&a, &c2, "b2");
	dev_member(&a, &c3, "b1");
	ck_assert_uint_eq(c2.seq, 2);
	push_one(&a, &c1, VERDICT_ACCEPTED, 1, NULL, &p);
	pushed_free(&p);
	push_one(&a, &c2, VERDICT_REFUSED, 1, "out of scope", &p);
	idx = p.rc[0].index;
	pushed_free(&p);
	ck_assert_int_eq(logged(&c2), 1);
	ck_assert_int_eq(db_count("SELECT count(*) FROM srv_log WHERE cs_id=?1"
				  " AND verdict=1",
				  c2.id, HASH_BYTES, NULL),
			 1);
	ck_assert_int_eq(has_member(&c2), 0);
	assert_alive();
	/* the chain goes on after a refusal by policy */
	push_one(&a, &c3, VERDICT_ACCEPTED, 1, NULL, &p);
	pushed_free(&p);
	ck_assert_int_eq(has_member(&c3), 1);
	/* the refused set again: the same refusal, the same receipt index */
	push_one(&a, &c2, VERDICT_REFUSED, 1, NULL, &p);
	ck_assert_uint_eq(p.rc[0].index, idx);
	pushed_free(&p);
	ck_assert_int_eq(logged(&c2), 1);
	assert_alive();
	cset_free(&c1);
	cset_free(&c2);
	cset_free(&c3);
	dev_free(&a);
}
END_TEST

START_TEST(test_equivocation_and_fork)
{
	struct dev a, twin;
	struct cset a1, a2, t1, t2, t3;
	struct pushed p;

	enroll(&a, "branch", "b1");
	dev_clone(&twin, &a);
	dev_member(&a, &a1, "b1");
	dev_member(&twin, &t1, "b1");
	ck_assert_uint_eq(a1.seq, 1);
	ck_assert_uint_eq(t1.seq, 1);
	ck_assert_int_ne(memcmp(a1.id, t1.id, HASH_BYTES), 0);

	push_one(&a, &a1, VERDICT_ACCEPTED, 1, NULL, &p);
	pushed_free(&p);
	push_one(&a, &t1, VERDICT_REFUSED, 1, "equivocation", &p);
	pushed_free(&p);
	ck_assert_int_eq(logged(&t1), 1);
	ck_assert_int_eq(has_member(&a1), 1);
	ck_assert_int_eq(has_member(&t1), 0);
	assert_alive();

	/* the first stays the chain's head: a's next set goes on */
	dev_member(&a, &a2, "b1");
	push_one(&a, &a2, VERDICT_ACCEPTED, 1, NULL, &p);
	pushed_free(&p);
	ck_assert_int_eq(has_member(&a2), 1);
	/* the twin's 2 is another equivocation; its 3 follows its own 2,
	 * not the logged head: a fork, kept as evidence too */
	dev_member(&twin, &t2, "b1");
	dev_member(&twin, &t3, "b1");
	push_one(&a, &t2, VERDICT_REFUSED, 1, "equivocation", &p);
	pushed_free(&p);
	push_one(&a, &t3, VERDICT_REFUSED, 1, "fork", &p);
	pushed_free(&p);
	ck_assert_int_eq(logged(&t2) + logged(&t3), 2);
	ck_assert_int_eq(has_member(&t2) + has_member(&t3), 0);
	ck_assert_int_eq(db_count("SELECT last_seq FROM srv_devices WHERE "
				  "key = ?1",
				  a.pk, SIGN_PUBLIC_BYTES, NULL),
			 2);
	assert_alive();
	cset_free(&a1);
	cset_free(&a2);
	cset_free(&t1);
	cset_free(&t2);
	cset_free(&t3);
	dev_free(&a);
	dev_free(&twin);
}
END_TEST

/* ---- tests: roles ---- */

START_TEST(test_roles)
{
	struct dev aud, a, dist;
	struct cset c1, d1;
	struct pushed p;
	struct reply r;
	struct frames f;
	struct checkpoint cp;
	struct statedigest sd;
	size_t i, entries = 0;

	enroll(&aud, "auditor", NULL);
	enroll(&a, "branch", "b1");
	enroll(&dist, "district", NULL);

	/* an auditor may not push, even a well-formed set of its own */
	dev_member(&aud, &c1, "b1");
	ck_assert_int_eq(
	    push_try(&aud, (const struct cset *const[]){&c1}, 1, &p), 403);
	assert_error(&p.rep, 403, "auditor");
	pushed_free(&p);
	ck_assert_int_eq(logged(&c1), 0);
	assert_alive();

	/* district writes the district scope */
	dev_member(&dist, &d1, "district");
	push_one(&dist, &d1, VERDICT_ACCEPTED, 1, NULL, &p);
	pushed_free(&p);

	/* the auditor reads the log: entries without proofs, a cursor */
	ck_assert_int_eq(dev_call(&aud, "GET", "/v1/log?after=0", NULL, 0, &r),
			 200);
	ck_assert_int_eq(frames_parse(r.body, r.len, &f), BS_OK);
	ck_assert_int_eq(f.type[0], FRAME_CHECKPOINT);
	checkpoint_check(f.p[0], f.len[0], &cp);
	for (i = 1; i < f.n; i++) {
		ck_assert_int_ne(f.type[i], FRAME_PROOF);
		if (f.type[i] == FRAME_ENTRY) {
			struct entry e;

			entry_decode(f.p[i], f.len[i], &e);
			ck_assert_uint_eq(e.index, entries);
			entries++;
		}
	}
	ck_assert_int_eq(f.type[f.n - 1], FRAME_CURSOR);
	ck_assert_uint_eq(entries, cp.size);
	frames_free(&f);
	reply_free(&r);

	/* and the signed digest */
	ck_assert_int_eq(dev_call(&aud, "GET", "/v1/digest", NULL, 0, &r), 200);
	ck_assert_int_eq(frames_parse(r.body, r.len, &f), BS_OK);
	ck_assert_uint_eq(f.n, 2);
	ck_assert_int_eq(f.type[0], FRAME_DIGEST);
	ck_assert_int_eq(f.type[1], FRAME_CHECKPOINT);
	ck_assert_int_eq(statedigest_open(f.p[0], f.len[0], S.pk, &sd), BS_OK);
	checkpoint_check(f.p[1], f.len[1], &cp);
	ck_assert_uint_eq(sd.log_size, cp.size);
	ck_assert_str_eq(sd.origin, "Test");
	frames_free(&f);
	reply_free(&r);
	ck_assert_int_eq(dev_call(&aud, "GET", "/v1/devices", NULL, 0, &r),
			 200);
	ck_assert_ptr_nonnull(strstr((const char *)r.body, a.hex));
	reply_free(&r);
	ck_assert_int_eq(dev_call(&aud, "GET", "/v1/pull?after=0", NULL, 0, &r),
			 200);
	reply_free(&r);
	ck_assert_int_eq(dev_call(&dist, "GET", "/v1/log?after=0", NULL, 0, &r),
			 200);
	reply_free(&r);
	assert_alive();

	/* a branch device may not read the whole log */
	ck_assert_int_eq(dev_call(&a, "GET", "/v1/log?after=0", NULL, 0, &r),
			 403);
	assert_error(&r, 403, NULL);
	reply_free(&r);
	ck_assert_int_eq(dev_call(&a, "GET", "/v1/digest", NULL, 0, &r), 403);
	reply_free(&r);
	ck_assert_int_eq(dev_call(&a, "GET", "/v1/devices", NULL, 0, &r), 403);
	reply_free(&r);
	/* wrong methods on signed paths */
	ck_assert_int_eq(dev_call(&a, "GET", "/v1/push", NULL, 0, &r), 405);
	reply_free(&r);
	ck_assert_int_eq(dev_call(&a, "POST", "/v1/pull", "x", 1, &r), 405);
	reply_free(&r);
	assert_alive();
	cset_free(&c1);
	cset_free(&d1);
	dev_free(&aud);
	dev_free(&a);
	dev_free(&dist);
}
END_TEST

/* ---- tests: odd paths and headers ---- */

START_TEST(test_odd_paths)
{
	static const char *const targets[] = {
	    "/v1/../etc/passwd", "//v1/push",  "/v1/push%00",
	    "/v1/%2e%2e/x",	 "/v1/./push", "/v1%2Fpush",
	};
	struct reply r;
	char *longp;
	size_t i;
	int fd, st;

	for (i = 0; i < sizeof targets / sizeof targets[0]; i++) {
		http_get(targets[i], &r);
		ck_assert_msg(r.status == 400, "%s: %ld", targets[i], r.status);
		reply_free(&r);
		http_send("POST", targets[i], NULL, "x", 1, &r);
		ck_assert_msg(r.status == 400, "POST %s: %ld", targets[i],
			      r.status);
		reply_free(&r);
		assert_alive();
	}
	longp = malloc(3001);
	ck_assert_ptr_nonnull(longp);
	longp[0] = '/';
	memset(longp + 1, 'a', 2999);
	longp[3000] = '\0';
	ck_assert_int_eq(http_get(longp, &r), 414);
	reply_free(&r);
	memcpy(longp, "/v1/pull?after=", 15);
	ck_assert_int_eq(http_get(longp, &r), 414);
	reply_free(&r);
	free(longp);
	assert_alive();

	ck_assert_int_eq(http_get("/nope", &r), 404);
	assert_error(&r, 404, NULL);
	reply_free(&r);
	ck_assert_int_eq(http_get("/v1/nope", &r), 404);
	reply_free(&r);
	ck_assert_int_eq(http_send("DELETE", "/v1/push", NULL, NULL, 0, &r),
			 405);
	reply_free(&r);
	ck_assert_int_eq(http_send("POST", "/healthz", NULL, "x", 1, &r), 405);
	reply_free(&r);
	ck_assert_int_eq(http_send("HEAD", "/healthz", NULL, NULL, 0, &r), 200);
	reply_free(&r);
	assert_alive();

	/* a 100 KB header */
	{
		size_t n = 100u << 10;
		char *req = malloc(n + 256);

		ck_assert_ptr_nonnull(req);
		strcpy(req,
		       "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
		memset(req + strlen(req), 'a', n);
		strcpy(req +
			   strlen("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1"
				  "\r\nX-Big: ") +
			   n,
		       "\r\n\r\n");
		fd = raw_dial();
		raw_send(fd, req, strlen(req));
		st = raw_status(fd);
		ck_assert_msg(st == -1 || st >= 400, "100 KB header: %d", st);
		close(fd);
		free(req);
	}
	assert_alive();
	/* garbage instead of a request line */
	fd = raw_dial();
	raw_send(fd, "\x16\x03\x01\x02\x00garbage\r\n\r\n", 16);
	st = raw_status(fd);
	ck_assert_msg(st == -1 || st >= 400, "garbage: %d", st);
	close(fd);
	assert_alive();
}
END_TEST

/* ---- tests: what each device may pull ---- */

struct view {
	struct checkpoint cp;
	uint64_t cursor;
	size_t entries, changesets;
	int has[8]; /* which of the watched ids it saw */
};

/* Pulls as d and checks the whole answer: checkpoint, consistency proof
 * from `old` (if given), every entry with a valid inclusion proof, cursor;
 * `watch` ids are looked for. Branch devices must see only what docs/API.md
 * allows. */
static void pull_check(struct dev *d, const char *scope,
		       const struct checkpoint *old,
		       const uint8_t (*watch)[HASH_BYTES], size_t nwatch,
		       struct view *v)
{
	char target[128];
	struct reply r;
	struct frames f;
	size_t i = 0, k;

	memset(v, 0, sizeof *v);
	snprintf(target, sizeof target,
		 "/v1/pull?after=0&known=%llu&limit=2000",
		 old ? (unsigned long long)old->size : 0ull);
	ck_assert_int_eq(dev_call(d, "GET", target, NULL, 0, &r), 200);
	ck_assert_int_eq(frames_parse(r.body, r.len, &f), BS_OK);
	ck_assert_int_eq(f.type[i], FRAME_CHECKPOINT);
	checkpoint_check(f.p[i], f.len[i], &v->cp);
	i++;
	if (old && old->size < v->cp.size) {
		struct proof pr;

		ck_assert_int_eq(f.type[i], FRAME_PROOF);
		ck_assert_int_eq(proof_decode(f.p[i], f.len[i], &pr), BS_OK);
		ck_assert_int_eq(pr.kind, PROOF_CONSISTENCY);
		ck_assert_int_eq(
		    merkle_verify_consistency(old->size, v->cp.size, old->root,
					      v->cp.root, &pr.path),
		    BS_OK);
		i++;
	}
	for (; i < f.n && f.type[i] == FRAME_ENTRY; i += 2) {
		struct entry e;

		ck_assert_uint_lt(i + 1, f.n);
		ck_assert_int_eq(f.type[i + 1], FRAME_PROOF);
		entry_decode(f.p[i], f.len[i], &e);
		check_inclusion(e.raw, e.raw_len, e.index, f.p[i + 1],
				f.len[i + 1], &v->cp);
		v->entries++;
		if (e.le.kind != LOGENTRY_CHANGESET)
			continue;
		v->changesets++;
		for (k = 0; k < nwatch; k++)
			if (memcmp(e.cs.id, watch[k], HASH_BYTES) == 0)
				v->has[k]++;
		if (!scope)
			continue;
		/* a branch device: accepted sets of its scope or the
		 * district's, and its own */
		if (memcmp(e.cs.env.author, d->pk, SIGN_PUBLIC_BYTES) == 0)
			continue;
		ck_assert_msg(e.le.verdict == LOGENTRY_ACCEPTED &&
				  (strcmp(e.cs.env.scope, scope) == 0 ||
				   strcmp(e.cs.env.scope, "district") == 0),
			      "a %s device pulled entry %llu of scope %s "
			      "(verdict %d)",
			      scope, (unsigned long long)e.index,
			      e.cs.env.scope, e.le.verdict);
	}
	ck_assert_uint_eq(i + 1, f.n);
	ck_assert_int_eq(f.type[i], FRAME_CURSOR);
	{
		struct wire_reader wr;

		wire_reader_init(&wr, f.p[i], f.len[i]);
		ck_assert_int_eq(wire_get_varint(&wr, &v->cursor), BS_OK);
		ck_assert_int_eq(wire_expect_end(&wr), BS_OK);
	}
	ck_assert_uint_eq(v->cursor, v->cp.size);
	frames_free(&f);
	reply_free(&r);
}

START_TEST(test_pull_filtering)
{
	struct dev a, b, dist;
	struct cset a1, a2, a3, b1, d1;
	struct pushed p;
	struct view v, v0;
	struct reply r;
	uint8_t watch[5][HASH_BYTES];
	const struct cset *two[2];
	uint64_t after = 0, seen = 0, skipped = 0;
	int rounds = 0;

	enroll(&a, "branch", "b1");
	enroll(&b, "branch", "b2");
	enroll(&dist, "district", NULL);
	pull_check(&b, "b2", NULL, NULL, 0, &v0);

	dev_member(&a, &a1, "b1");
	dev_member(&a, &a2, "b1");
	dev_member(&a, &a3, "b2"); /* refused, logged */
	dev_member(&b, &b1, "b2");
	dev_member(&dist, &d1, "district");
	two[0] = &a1;
	two[1] = &a2;
	push_ok(&a, two, 2, &p);
	pushed_free(&p);
	push_one(&a, &a3, VERDICT_REFUSED, 1, "out of scope", &p);
	pushed_free(&p);
	push_one(&b, &b1, VERDICT_ACCEPTED, 1, NULL, &p);
	pushed_free(&p);
	push_one(&dist, &d1, VERDICT_ACCEPTED, 1, NULL, &p);
	pushed_free(&p);
	memcpy(watch[0], a1.id, HASH_BYTES);
	memcpy(watch[1], a2.id, HASH_BYTES);
	memcpy(watch[2], a3.id, HASH_BYTES);
	memcpy(watch[3], b1.id, HASH_BYTES);
	memcpy(watch[4], d1.id, HASH_BYTES);

	/* b2's device: none of b1's sets (nor a's refused write into b2) */
	pull_check(&b, "b2", &v0.cp, (const uint8_t(*)[HASH_BYTES])watch, 5,
		   &v);
	ck_assert_int_eq(v.has[0] + v.has[1] + v.has[2], 0);
	ck_assert_int_eq(v.has[3], 0); /* its own accepted set is not sent back */
	ck_assert_int_eq(v.has[4], 1);
	/* b1's device: its own refused one (to learn the verdict), not its
	 * own accepted ones, not b2's */
	pull_check(&a, "b1", NULL, (const uint8_t(*)[HASH_BYTES])watch, 5, &v);
	ck_assert_int_eq(v.has[0] + v.has[1], 0);
	ck_assert_int_eq(v.has[2], 1);
	ck_assert_int_eq(v.has[3], 0);
	ck_assert_int_eq(v.has[4], 1);
	/* the district's device sees everything but its own accepted set */
	pull_check(&dist, NULL, &v0.cp, (const uint8_t(*)[HASH_BYTES])watch, 5,
		   &v);
	ck_assert_int_eq(v.has[0] + v.has[1] + v.has[2] + v.has[3], 4);
	ck_assert_int_eq(v.has[4], 0);
	ck_assert_uint_eq(v.entries, v.cp.size - 1);
	assert_alive();

	/* paging with limit=1 walks every entry once */
	while (after < v.cp.size) {
		char target[96];
		struct frames f;
		size_t i;
		uint64_t next = 0;

		ck_assert_int_lt(rounds++, 1000);
		snprintf(target, sizeof target, "/v1/pull?after=%llu&limit=1",
			 (unsigned long long)after);
		ck_assert_int_eq(dev_call(&dist, "GET", target, NULL, 0, &r),
				 200);
		ck_assert_int_eq(frames_parse(r.body, r.len, &f), BS_OK);
		for (i = 0; i < f.n; i++) {
			struct wire_reader wr;
			struct entry e;

			if (f.type[i] == FRAME_ENTRY) {
				entry_decode(f.p[i], f.len[i], &e);
				/* in order, each once; only the district
				 * device's own accepted set is skipped */
				ck_assert_uint_ge(e.index, seen);
				skipped += e.index - seen;
				seen = e.index + 1;
			} else if (f.type[i] == FRAME_CURSOR) {
				wire_reader_init(&wr, f.p[i], f.len[i]);
				ck_assert_int_eq(wire_get_varint(&wr, &next),
						 BS_OK);
			}
		}
		ck_assert_uint_gt(next, after);
		after = next;
		frames_free(&f);
		reply_free(&r);
	}
	ck_assert_uint_le(seen, v.cp.size);
	ck_assert_uint_eq(skipped + (v.cp.size - seen), 1);

	/* arguments */
	ck_assert_int_eq(
	    dev_call(&dist, "GET", "/v1/pull?after=abc", NULL, 0, &r), 400);
	assert_error(&r, 400, NULL);
	reply_free(&r);
	ck_assert_int_eq(
	    dev_call(&dist, "GET", "/v1/pull?limit=0", NULL, 0, &r), 400);
	reply_free(&r);
	ck_assert_int_eq(
	    dev_call(&dist, "GET", "/v1/pull?known=999999", NULL, 0, &r), 409);
	reply_free(&r);
	assert_alive();
	cset_free(&a1);
	cset_free(&a2);
	cset_free(&a3);
	cset_free(&b1);
	cset_free(&d1);
	dev_free(&a);
	dev_free(&b);
	dev_free(&dist);
}
END_TEST

/* ---- tests: the public proof endpoints ---- */

START_TEST(test_public_proofs)
{
	struct dev a;
	struct cset c1;
	struct pushed p;
	struct reply r;
	struct frames f;
	struct checkpoint cp, cp1;
	struct proof pr;
	struct entry e;
	char target[128];
	uint64_t idx;
	sqlite3 *db;
	sqlite3_stmt *st;

	enroll(&a, "branch", "b1");
	ck_assert_int_eq(http_get("/v1/checkpoint", &r), 200);
	ck_assert_int_eq(frames_parse(r.body, r.len, &f), BS_OK);
	ck_assert_uint_eq(f.n, 1);
	ck_assert_int_eq(f.type[0], FRAME_CHECKPOINT);
	checkpoint_check(f.p[0], f.len[0], &cp1);
	frames_free(&f);
	reply_free(&r);

	dev_member(&a, &c1, "b1");
	push_one(&a, &c1, VERDICT_ACCEPTED, 1, NULL, &p);
	idx = p.rc[0].index;
	cp = p.cp;
	pushed_free(&p);

	/* inclusion of c1's entry in the push's checkpoint */
	snprintf(target, sizeof target, "/v1/inclusion?index=%llu&size=%llu",
		 (unsigned long long)idx, (unsigned long long)cp.size);
	ck_assert_int_eq(http_get(target, &r), 200);
	ck_assert_int_eq(frames_parse(r.body, r.len, &f), BS_OK);
	ck_assert_uint_eq(f.n, 1);
	ck_assert_int_eq(f.type[0], FRAME_PROOF);
	db = db_open();
	ck_assert_int_eq(sqlite3_prepare_v2(db,
					    "SELECT entry FROM srv_log "
					    "WHERE idx = ?1",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, (int64_t)idx);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	memset(&e, 0, sizeof e);
	check_inclusion(sqlite3_column_blob(st, 0),
			(size_t)sqlite3_column_bytes(st, 0), idx, f.p[0],
			f.len[0], &cp);
	ck_assert_int_eq(logentry_decode(sqlite3_column_blob(st, 0),
					 (size_t)sqlite3_column_bytes(st, 0),
					 &e.le),
			 BS_OK);
	ck_assert_uint_eq(e.le.payload_len, c1.len);
	ck_assert_int_eq(memcmp(e.le.payload, c1.bytes, c1.len), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	frames_free(&f);
	reply_free(&r);

	/* consistency of the earlier checkpoint with the new one */
	snprintf(target, sizeof target, "/v1/consistency?old=%llu&new=%llu",
		 (unsigned long long)cp1.size, (unsigned long long)cp.size);
	ck_assert_int_eq(http_get(target, &r), 200);
	ck_assert_int_eq(frames_parse(r.body, r.len, &f), BS_OK);
	ck_assert_uint_eq(f.n, 1);
	ck_assert_int_eq(proof_decode(f.p[0], f.len[0], &pr), BS_OK);
	ck_assert_int_eq(pr.kind, PROOF_CONSISTENCY);
	ck_assert_int_eq(merkle_verify_consistency(cp1.size, cp.size, cp1.root,
						   cp.root, &pr.path),
			 BS_OK);
	frames_free(&f);
	reply_free(&r);

	/* impossible or malformed arguments */
	snprintf(target, sizeof target, "/v1/consistency?old=%llu&new=%llu",
		 (unsigned long long)cp.size, (unsigned long long)cp1.size);
	ck_assert_int_eq(http_get(target, &r), 400);
	reply_free(&r);
	snprintf(target, sizeof target, "/v1/consistency?old=1&new=%llu",
		 (unsigned long long)cp.size + 5);
	ck_assert_int_eq(http_get(target, &r), 400);
	reply_free(&r);
	snprintf(target, sizeof target, "/v1/inclusion?index=%llu&size=%llu",
		 (unsigned long long)cp.size, (unsigned long long)cp.size);
	ck_assert_int_eq(http_get(target, &r), 400);
	reply_free(&r);
	ck_assert_int_eq(http_get("/v1/inclusion?index=-1&size=2", &r), 400);
	reply_free(&r);
	ck_assert_int_eq(http_get("/v1/inclusion", &r), 400);
	reply_free(&r);
	assert_alive();
	cset_free(&c1);
	dev_free(&a);
}
END_TEST

/* ---- tests: kill -9 during pushes ---- */

#define KILL_ROUNDS    6
#define KILL_PER_ROUND 30
#define KILL_SETS      (KILL_ROUNDS * KILL_PER_ROUND)

struct killer {
	pid_t pid;
	long delay_us;
};

static void *killer_run(void *arg)
{
	struct killer *k = arg;
	struct timespec ts = {k->delay_us / 1000000,
			      (k->delay_us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	kill(k->pid, SIGKILL);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Pushes sets[0..n) in one request (several if needed) after a restart:
 * each accepted or duplicate; a set answered before must be a duplicate
 * at the same index. */
static void repush_all(struct dev *d, struct cset *sets, size_t n,
		       int64_t *index, unsigned seed)
{
	const struct cset **list = calloc(n + 1, sizeof *list);
	struct pushed p;
	size_t i;

	ck_assert_ptr_nonnull(list);
	for (i = 0; i < n; i++)
		list[i] = &sets[i];
	push_ok(d, list, n, &p);
	for (i = 0; i < n; i++) {
		ck_assert_msg(p.v[i].status == VERDICT_ACCEPTED ||
				  p.v[i].status == VERDICT_DUPLICATE,
			      "seed %u: set %zu: verdict %d (%s)", seed, i,
			      p.v[i].status, p.v[i].reason);
		if (index[i] >= 0) {
			ck_assert_msg(p.v[i].status == VERDICT_DUPLICATE,
				      "seed %u: set %zu was answered accepted "
				      "before the kill, and is new after it",
				      seed, i);
			ck_assert_uint_eq(p.rc[i].index, (uint64_t)index[i]);
		}
		index[i] = (int64_t)p.rc[i].index;
	}
	pushed_free(&p);
	free(list);
}

START_TEST(test_kill9)
{
	struct dev a;
	struct cset *sets = calloc(KILL_SETS, sizeof *sets);
	int64_t *index = calloc(KILL_SETS, sizeof *index);
	const char *env = getenv("BRANCHSYNC_SEED");
	unsigned seed = env ? (unsigned)strtoul(env, NULL, 10)
			    : (unsigned)time(NULL) ^ (unsigned)getpid();
	double per_push;
	struct reply r;
	struct checkpoint cp;
	struct frames f;
	size_t i, round;
	sqlite3 *db;
	sqlite3_stmt *st;
	uint8_t *leaves;
	int64_t count;

	ck_assert(sets && index);
	enroll(&a, "branch", "b1");
	for (i = 0; i < KILL_SETS; i++) {
		dev_member(&a, &sets[i], "b1");
		index[i] = -1;
	}
	/* how long one push takes here (sanitizers make it slower) */
	{
		double t0 = now_s();

		for (i = 0; i < 3; i++) {
			struct pushed p;

			push_ok(&a, (const struct cset *const[]){&sets[i]}, 1,
				&p);
			ck_assert_int_eq(p.v[0].status, VERDICT_ACCEPTED);
			index[i] = (int64_t)p.rc[0].index;
			pushed_free(&p);
		}
		per_push = (now_s() - t0) / 3;
	}

	for (round = 0; round < KILL_ROUNDS; round++) {
		size_t lo = round * KILL_PER_ROUND, hi = lo + KILL_PER_ROUND;
		struct killer k;
		pthread_t th;
		int status = 0;

		if (lo == 0)
			lo = 3;
		/* a push carries 3.5 sets on average: kill within the loop */
		k.pid = S.pid;
		k.delay_us = (long)(per_push * 1e6 * (double)(hi - lo) / 4.0 *
				    (double)(rand_r(&seed) % 1000) / 1000.0);
		ck_assert_int_eq(pthread_create(&th, NULL, killer_run, &k), 0);
		for (i = lo; i < hi;) {
			const struct cset *list[6];
			size_t n = 1 + (size_t)rand_r(&seed) % 6, j;
			struct pushed p;

			if (n > hi - i)
				n = hi - i;
			for (j = 0; j < n; j++)
				list[j] = &sets[i + j];
			if (push_try(&a, list, n, &p) != 200) {
				ck_assert_msg(p.rep.status == 0,
					      "seed %u: push answered %ld: %s",
					      seed, p.rep.status,
					      p.rep.body ? (char *)p.rep.body
							 : "");
				pushed_free(&p);
				break;
			}
			for (j = 0; j < n; j++) {
				ck_assert_int_eq(p.v[j].status,
						 VERDICT_ACCEPTED);
				index[i + j] = (int64_t)p.rc[j].index;
			}
			pushed_free(&p);
			i += n;
		}
		ck_assert_int_eq(pthread_join(th, NULL), 0);
		ck_assert_int_eq(wait_exit(S.pid, &status), 0);
		ck_assert_msg(WIFSIGNALED(status) &&
				  WTERMSIG(status) == SIGKILL,
			      "seed %u: the server ended on its own (%d): %s",
			      seed, status, log_tail());
		S.pid = 0;
		unlink(S.pid_file);
		a.challenge[0] = '\0';
		srv_start();
		repush_all(&a, sets, hi, index, seed);
		assert_alive();
	}

	ck_assert_int_eq(http_get("/v1/checkpoint", &r), 200);
	ck_assert_int_eq(frames_parse(r.body, r.len, &f), BS_OK);
	ck_assert_uint_eq(f.n, 1);
	checkpoint_check(f.p[0], f.len[0], &cp);
	frames_free(&f);
	reply_free(&r);
	srv_stop();

	/* every set logged exactly once and applied once */
	for (i = 0; i < KILL_SETS; i++)
		ck_assert_msg(logged(&sets[i]) == 1,
			      "seed %u: set %zu logged "
			      "%lld times",
			      seed, i, logged(&sets[i]));
	ck_assert_int_eq(db_count("SELECT count(*) FROM srv_log WHERE kind=1 "
				  "AND author=?1",
				  a.pk, SIGN_PUBLIC_BYTES, NULL),
			 KILL_SETS);
	ck_assert_int_eq(db_count("SELECT count(*) FROM members WHERE "
				  "branch_id=?2",
				  NULL, 0, "b1"),
			 KILL_SETS);
	ck_assert_int_eq(db_count("SELECT last_seq FROM srv_devices WHERE "
				  "key=?1",
				  a.pk, SIGN_PUBLIC_BYTES, NULL),
			 KILL_SETS);
	count = db_count("SELECT count(*) FROM srv_log", NULL, 0, NULL);
	ck_assert_int_eq(
	    db_count("SELECT max(idx) + 1 FROM srv_log", NULL, 0, NULL), count);
	ck_assert_int_eq((int64_t)cp.size, count);

	/* the database is sound, and the signed root is the log's root */
	db = db_open();
	ck_assert_int_eq(
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	leaves = malloc((size_t)count * HASH_BYTES);
	ck_assert_ptr_nonnull(leaves);
	ck_assert_int_eq(sqlite3_prepare_v2(db,
					    "SELECT idx, entry, leaf FROM "
					    "srv_log ORDER BY idx",
					    -1, &st, NULL),
			 SQLITE_OK);
	for (i = 0; sqlite3_step(st) == SQLITE_ROW; i++) {
		ck_assert_int_eq(sqlite3_column_int64(st, 0), (int64_t)i);
		logentry_leaf_hash(sqlite3_column_blob(st, 1),
				   (size_t)sqlite3_column_bytes(st, 1),
				   leaves + i * HASH_BYTES);
		ck_assert_int_eq(sqlite3_column_bytes(st, 2), HASH_BYTES);
		ck_assert_int_eq(memcmp(sqlite3_column_blob(st, 2),
					leaves + i * HASH_BYTES, HASH_BYTES),
				 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	ck_assert_uint_eq(i, (size_t)count);
	{
		struct merkle_array arr = {leaves, (uint64_t)count};
		struct merkle_source src;
		uint8_t root[HASH_BYTES];

		merkle_source_from_array(&src, &arr);
		ck_assert_int_eq(merkle_root(&src, cp.size, root), BS_OK);
		ck_assert_int_eq(memcmp(root, cp.root, HASH_BYTES), 0);
	}
	free(leaves);
	for (i = 0; i < KILL_SETS; i++)
		cset_free(&sets[i]);
	free(sets);
	free(index);
	dev_free(&a);
}
END_TEST

/* ---- tests: the admin commands' exit codes ---- */

START_TEST(test_admin_exit_codes)
{
	struct dev a;
	struct run run;
	char unknown[65];

	memset(unknown, 'b', 64);
	unknown[64] = '\0';
	/* DESIGN.md: 2 for invalid data or refused, with one sentence on
	 * stderr */
	bsd_run(&run, "revoke", "--data", S.data, unknown, NULL);
	ck_assert_msg(run.code == 2 && run.err[0],
		      "revoke of an unknown device: exit %d, stderr '%s'",
		      run.code, run.err);
	/* revoking a device twice */
	enroll(&a, "branch", "b1");
	bsd_run(&run, "revoke", "--data", S.data, a.hex, NULL);
	ck_assert_msg(run.code == 0, "revoke: %d %s", run.code, run.err);
	bsd_run(&run, "revoke", "--data", S.data, a.hex, NULL);
	ck_assert_msg(run.code == 2, "a second revoke of one device: exit %d",
		      run.code);
	ck_assert_int_eq(db_count("SELECT count(*) FROM srv_log WHERE kind=3",
				  NULL, 0, NULL),
			 1);
	dev_free(&a);
	bsd_run(&run, "init", "--data", S.data, "--district", "Again",
		"--no-passphrase", NULL);
	ck_assert_msg(run.code != 0, "init over an existing data directory "
				     "exited 0");
	bsd_run(&run, "token", "--data", S.data, "--role", "branch", NULL);
	ck_assert_msg(run.code == 1, "token without --branch: exit %d",
		      run.code);
	/* serve's counts are checked before anything is opened */
	bsd_run(&run, "serve", "--data", S.data, "--listen", "127.0.0.1:0",
		"--max-connections", "0", NULL);
	ck_assert_msg(run.code == 1 && strstr(run.err, "--max-connections"),
		      "--max-connections 0: exit %d, '%s'", run.code, run.err);
	bsd_run(&run, "serve", "--data", S.data, "--listen", "127.0.0.1:0",
		"--threads", "x", NULL);
	ck_assert_msg(run.code == 1 && strstr(run.err, "--threads"),
		      "--threads x: exit %d, '%s'", run.code, run.err);
	bsd_run(&run, "serve", "--data", S.data, "--listen", "127.0.0.1:0",
		"--threads", "9", "--max-connections", "8", NULL);
	ck_assert_msg(run.code == 1, "more threads than connections: exit %d",
		      run.code);
	assert_alive();
}
END_TEST

static Suite *server_suite(void)
{
	Suite *s = suite_create("server");
	TCase *tc = tcase_create("api");
	TCase *tk = tcase_create("kill9");

	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_enroll_push_receipts);
	tcase_add_test(tc, test_malformed_bodies);
	tcase_add_test(tc, test_body_limits);
	tcase_add_test(tc, test_auth);
	tcase_add_test(tc, test_auth_header);
	tcase_add_test(tc, test_auth_bound);
	tcase_add_test(tc, test_compact_push);
	tcase_add_test(tc, test_push_receipt);
	tcase_add_test(tc, test_push_receipt_wire);
	tcase_add_test(tc, test_unlogged_refusals);
	tcase_add_test(tc, test_revoked);
	tcase_add_test(tc, test_out_of_scope);
	tcase_add_test(tc, test_equivocation_and_fork);
	tcase_add_test(tc, test_roles);
	tcase_add_test(tc, test_odd_paths);
	tcase_add_test(tc, test_pull_filtering);
	tcase_add_test(tc, test_public_proofs);
	tcase_add_test(tc, test_admin_exit_codes);
	suite_add_tcase(s, tc);

	tcase_add_unchecked_fixture(tk, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tk, setup, teardown);
	tcase_set_timeout(tk, 600);
	tcase_add_test(tk, test_kill9);
	suite_add_tcase(s, tk);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	bin = getenv("BRANCHSYNCD_BIN");
	if (!bin || !*bin) {
		fprintf(stderr, "BRANCHSYNCD_BIN is not set\n");
		return EXIT_FAILURE;
	}
	if (sign_init() != BS_OK ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "libsodium or libcurl cannot start\n");
		return EXIT_FAILURE;
	}
	sr = srunner_create(server_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
