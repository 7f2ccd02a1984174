/* bench_load.c - many branch devices pushing and pulling at once against
 * one real branchsyncd on loopback: 500 client threads, each its own
 * enrolled device with its own connection, sign real captured change sets
 * and pull with the cursor protocol, all started together; errors and the
 * latency of every request. One JSON object per figure on stdout
 * (scripts/bench.sh). Not a test, and not a client: nothing it receives is
 * verified beyond its framing and the push verdicts. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "benchsync.h"
#include "buf.h"
#include "capture.h"
#include "checkpoint.h"
#include "err.h"
#include "frame.h"
#include "replica.h"
#include "request.h"
#include "sign.h"
#include "verdict.h"
#include "wire.h"

#define CLIENTS 500
#define BRANCHES 50    /* 10 devices a branch: each pull brings others' sets */
#define ROUNDS 4       /* push one change set, then pull; per client */
#define DEADLINE_S 120 /* no round starts after this */
#define REQUEST_TIMEOUT_S 60
/* The server allows 32 connections per address; branches are behind
 * different addresses in life, so the clients spread over 127.1.0.0/16. */
#define CLIENTS_PER_ADDRESS 16
#define ANSWER_MAX (8u << 20)
#define CT_FRAMES "Content-Type: application/x-branchsync"
/* A challenge: base64url without padding of 16 bytes (docs/API.md). */
#define CHALLENGE_TEXT 22

struct answer {
	long status;
	char next[65]; /* X-BS-Next-Challenge, or "" */
	struct buf body;
};

struct client {
	int n;
	char branch[16];
	uint8_t pk[SIGN_PUBLIC_BYTES], sk[SIGN_SECRET_BYTES];
	char hex[2 * SIGN_PUBLIC_BYTES + 1];
	char challenge[65];
	char source[48]; /* CURLOPT_INTERFACE */
	struct replica *r;
	uint64_t cursor, known;
	double lat[ROUNDS * 3];
	int nlat, errors, tried; /* tried: requests attempted */
	char why[160]; /* the first error */
};

static const struct benchsync_server *srv;
static struct client clients[CLIENTS];
static pthread_barrier_t start_line;
static double t_start;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;

	buf_append(&a->body, p, size * n);
	return a->body.status == BS_OK ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	static const char name[] = "X-BS-Next-Challenge:";
	struct answer *a = arg;
	size_t len = size * n, k = sizeof name - 1;

	if (len > k + CHALLENGE_TEXT && strncasecmp(p, name, k) == 0) {
		while (k < len && p[k] == ' ')
			k++;
		if (len - k >= CHALLENGE_TEXT) {
			memcpy(a->next, p + k, CHALLENGE_TEXT);
			a->next[CHALLENGE_TEXT] = '\0';
		}
	}
	return len;
}

/* One request on the client's handle. Returns 0, or -1 with c->why set
 * (curl failures only: the caller judges the status). */
static int request(struct client *c, CURL *h, const char *method,
		   const char *target, const struct buf *body, int sign,
		   struct answer *a)
{
	struct curl_slist *hl = NULL;
	char url[2200], line[3][200], sighex[2 * SIGN_BYTES + 1];
	uint8_t sig[SIGN_BYTES];
	struct request_auth ra;
	CURLcode cc;
	int rc = -1;

	memset(a, 0, sizeof *a);
	buf_init(&a->body, ANSWER_MAX);
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv->port, target);
	if (sign) {
		memset(&ra, 0, sizeof ra);
		ra.method = method;
		ra.path = target;
		memcpy(ra.device, c->pk, sizeof ra.device);
		hash_sha256(ra.body_hash, body ? body->data : NULL,
			    body ? body->len : 0, NULL, 0);
		if (sodium_base642bin(ra.challenge, sizeof ra.challenge,
				      c->challenge, CHALLENGE_TEXT, NULL, NULL,
				      NULL,
				      sodium_base64_VARIANT_URLSAFE_NO_PADDING) !=
			    0 ||
		    request_sign(&ra, c->sk, sig) != BS_OK) {
			snprintf(c->why, sizeof c->why, "cannot sign");
			goto cleanup;
		}
		sodium_bin2hex(sighex, sizeof sighex, sig, sizeof sig);
		snprintf(line[0], sizeof line[0], "X-BS-Device: %s", c->hex);
		snprintf(line[1], sizeof line[1], "X-BS-Challenge: %s",
			 c->challenge);
		snprintf(line[2], sizeof line[2], "X-BS-Signature: %s", sighex);
		c->challenge[0] = '\0'; /* used once, whatever happens */
		hl = curl_slist_append(hl, line[0]);
		hl = curl_slist_append(hl, line[1]);
		hl = curl_slist_append(hl, line[2]);
	}
	if (body)
		hl = curl_slist_append(hl, CT_FRAMES);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)body->len);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	cc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	if (cc != CURLE_OK) {
		snprintf(c->why, sizeof c->why, "%s %s: %s", method, target,
			 curl_easy_strerror(cc));
		goto cleanup;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	if (a->next[0])
		memcpy(c->challenge, a->next, sizeof c->challenge);
	rc = 0;
cleanup:
	curl_slist_free_all(hl);
	return rc;
}

static CURL *handle_new(const struct client *c)
{
	CURL *h = curl_easy_init();

	if (!h)
		benchsync_die("curl_easy_init failed");
	curl_easy_setopt(h, CURLOPT_INTERFACE, c->source);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	return h;
}

static int fresh_challenge(struct client *c, CURL *h)
{
	struct answer a;
	int rc = -1;

	if (c->challenge[0])
		return 0;
	if (request(c, h, "GET", "/v1/challenge", NULL, 0, &a))
		goto cleanup;
	if (a.status != 200 || a.body.len != CHALLENGE_TEXT) {
		snprintf(c->why, sizeof c->why, "challenge: status %ld",
			 a.status);
		goto cleanup;
	}
	memcpy(c->challenge, a.body.data, CHALLENGE_TEXT);
	c->challenge[CHALLENGE_TEXT] = '\0';
	rc = 0;
cleanup:
	buf_release(&a.body);
	return rc;
}

/* The frames of an answer, each handed to fn (which returns 0 or -1).
 * Returns 0 when the stream is well formed to its END and fn agreed. */
static int frames_walk(const struct buf *b,
		       int (*fn)(struct client *, const struct frame *),
		       struct client *c)
{
	struct frame_reader r;
	struct frame f;
	const uint8_t *p = b->data;
	size_t len = b->len, used;
	int rc = -1;

	frame_reader_init(&r, ANSWER_MAX);
	while (len > 0) {
		if (frame_reader_feed(&r, p, len, &used) != BS_OK)
			goto cleanup;
		p += used;
		len -= used;
		if (frame_reader_next(&r, &f) && fn(c, &f))
			goto cleanup;
	}
	rc = frame_reader_finish(&r) == BS_OK ? 0 : -1;
cleanup:
	frame_reader_release(&r);
	return rc;
}

static int push_frame(struct client *c, const struct frame *f)
{
	struct verdict v;

	(void)c;
	if (f->type != FRAME_VERDICT)
		return 0;
	if (verdict_decode(f->payload, f->len, &v) != BS_OK ||
	    v.status != VERDICT_ACCEPTED)
		return -1;
	return 0;
}

static int pull_frame(struct client *c, const struct frame *f)
{
	struct checkpoint cp;
	struct wire_reader w;

	if (f->type == FRAME_CHECKPOINT) {
		if (checkpoint_decode(f->payload, f->len, &cp) != BS_OK)
			return -1;
		c->known = cp.size;
	} else if (f->type == FRAME_CURSOR) {
		wire_reader_init(&w, f->payload, f->len);
		if (wire_get_varint(&w, &c->cursor) != BS_OK)
			return -1;
	}
	return 0;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One new member of the client's branch, captured and signed, as a push
 * body. */
static int member_body(struct client *c, int round, struct buf *body)
{
	struct capture_signer signer = { c->pk, c->sk, c->branch, wall_ms() };
	struct capture *cap = NULL;
	sqlite3_stmt *st = NULL;
	char sql[256];
	struct err e;
	int count = 0, rc = -1;

	err_init(&e);
	snprintf(sql, sizeof sql, "INSERT INTO members(id, branch_id, name)"
		 " VALUES('load-%d-%d', '%s', 'member %d of client %d')",
		 c->n, round, c->branch, round, c->n);
	if (capture_begin(c->r, &signer, &cap, &e) ||
	    sqlite3_exec(c->r->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    capture_commit(cap, &count, &e) || count != 1)
		goto cleanup;
	if (sqlite3_prepare_v2(c->r->db, "SELECT bytes FROM bs_outbox"
			       " ORDER BY seq DESC LIMIT 1", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto cleanup;
	buf_init(body, 1u << 20);
	frame_stream_begin(body);
	frame_put(body, FRAME_CHANGESET, sqlite3_column_blob(st, 0),
		  (size_t)sqlite3_column_bytes(st, 0));
	frame_stream_end(body);
	rc = body->status == BS_OK ? 0 : -1;
cleanup:
	if (rc)
		snprintf(c->why, sizeof c->why, "capture: %.120s", e.msg);
	sqlite3_finalize(st);
	capture_free(cap);
	return rc;
}

/* A timed request: its latency is kept; an answer other than 200 or one
 * the walker refuses is an error. */
static int timed(struct client *c, CURL *h, const char *method,
		 const char *target, const struct buf *body,
		 int (*fn)(struct client *, const struct frame *))
{
	struct answer a;
	double t0;
	int rc = -1;

	if (fresh_challenge(c, h))
		return -1;
	t0 = benchsync_now();
	if (request(c, h, method, target, body, 1, &a))
		goto cleanup;
	c->lat[c->nlat++] = benchsync_now() - t0;
	if (a.status != 200) {
		snprintf(c->why, sizeof c->why, "%s %s: status %ld: %.60s",
			 method, target, a.status,
			 a.body.data ? (const char *)a.body.data : "");
		goto cleanup;
	}
	if (frames_walk(&a.body, fn, c)) {
		snprintf(c->why, sizeof c->why, "%s %s: unexpected answer",
			 method, target);
		goto cleanup;
	}
	rc = 0;
cleanup:
	buf_release(&a.body);
	return rc;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	CURL *h = handle_new(c);
	char target[128];
	struct buf body;
	int i;

	pthread_barrier_wait(&start_line);
	for (i = 0; i < ROUNDS; i++) {
		if (benchsync_now() - t_start > DEADLINE_S)
			break;
		c->tried += 2;
		if (member_body(c, i, &body)) {
			c->errors += 2;
			continue;
		}
		if (timed(c, h, "POST", "/v1/push", &body, push_frame))
			c->errors++;
		buf_release(&body);
		snprintf(target, sizeof target,
			 "/v1/pull?after=%llu&known=%llu&limit=500",
			 (unsigned long long)c->cursor,
			 (unsigned long long)c->known);
		if (timed(c, h, "GET", target, NULL, pull_frame))
			c->errors++;
	}
	curl_easy_cleanup(h);
	return NULL;
}

/* Enrolls c with a fresh token through h (setup, not timed). */
static void enroll(struct client *c, CURL *h)
{
	char tok[BENCHSYNC_HEX_KEY + 1], name[32];
	struct benchsync_run r;
	struct buf meta, body;
	struct answer a;

	r = benchsync_bsd("token", "--data", srv->dir, "--role", "branch",
			  "--branch", c->branch, NULL);
	benchsync_expect_ok(&r, "branchsyncd token");
	snprintf(tok, sizeof tok, "%.64s", r.out);
	benchsync_run_free(&r);
	snprintf(name, sizeof name, "load %d", c->n);
	buf_init(&meta, 4096);
	wire_put_blob(&meta, tok, strlen(tok));
	wire_put_blob(&meta, name, strlen(name));
	buf_init(&body, 8192);
	frame_stream_begin(&body);
	frame_put(&body, FRAME_META, meta.data, meta.len);
	frame_stream_end(&body);
	if (body.status != BS_OK || fresh_challenge(c, h) ||
	    request(c, h, "POST", "/v1/enroll", &body, 1, &a))
		benchsync_die("enrollment of client %d failed: %s", c->n,
			      c->why);
	if (a.status != 200)
		benchsync_die("enrollment of client %d: status %ld: %.200s",
			      c->n, a.status,
			      a.body.data ? (const char *)a.body.data : "");
	buf_release(&a.body);
	buf_release(&meta);
	buf_release(&body);
}

static void clients_setup(void)
{
	struct err e;
	CURL *h;
	int i;

	for (i = 0; i < CLIENTS; i++) {
		struct client *c = &clients[i];

		c->n = i;
		snprintf(c->branch, sizeof c->branch, "b%d", 1 + i % BRANCHES);
		snprintf(c->source, sizeof c->source, "host!127.1.%d.%d",
			 i / CLIENTS_PER_ADDRESS / 200,
			 1 + i / CLIENTS_PER_ADDRESS % 200);
		crypto_sign_keypair(c->pk, c->sk);
		sodium_bin2hex(c->hex, sizeof c->hex, c->pk, sizeof c->pk);
		err_init(&e);
		if (replica_open(":memory:", REPLICA_MEMORY, &c->r, &e))
			benchsync_die("replica: %s", e.msg);
		/* a connection per device, closed before the next: the
		 * server's connection limit is for the timed part */
		h = handle_new(c);
		enroll(c, h);
		curl_easy_cleanup(h);
	}
}

int main(int argc, char **argv)
{
	static pthread_t tid[CLIENTS];
	static double lat[CLIENTS * ROUNDS * 3];
	struct benchsync_server s;
	pthread_attr_t attr;
	double p50, p99, wall;
	long errors = 0, n = 0, tried = 0, due = 2L * CLIENTS * ROUNDS;
	const char *why = NULL;
	int i, j;

	benchsync_start(argc > 1 ? argv[1] : "/tmp", "bench-load");
	if (sign_init() != BS_OK ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		benchsync_die("cannot initialise libsodium or libcurl");
	benchsync_server_start(&s, "srv", BRANCHES);
	srv = &s;
	clients_setup();
	fprintf(stderr, "bench: %d devices enrolled\n", CLIENTS);

	if (pthread_barrier_init(&start_line, NULL, CLIENTS + 1) ||
	    pthread_attr_init(&attr) ||
	    pthread_attr_setstacksize(&attr, 1u << 20))
		benchsync_die("cannot prepare the threads");
	for (i = 0; i < CLIENTS; i++)
		if (pthread_create(&tid[i], &attr, client_main, &clients[i]))
			benchsync_die("cannot start thread %d", i);
	t_start = benchsync_now();
	pthread_barrier_wait(&start_line);
	for (i = 0; i < CLIENTS; i++)
		pthread_join(tid[i], NULL);
	wall = benchsync_now() - t_start;

	for (i = 0; i < CLIENTS; i++) {
		struct client *c = &clients[i];

		for (j = 0; j < c->nlat; j++)
			lat[n++] = c->lat[j];
		errors += c->errors;
		tried += c->tried;
		if (c->errors && !why)
			why = c->why;
		replica_close(c->r);
		sodium_memzero(c->sk, sizeof c->sk);
	}
	/* a request never made (deadline) counts as an error too */
	errors += due - tried;
	if (why)
		fprintf(stderr, "bench: load: %ld errors; the first: %s\n",
			errors, why);
	fprintf(stderr, "bench: load: %ld requests answered in %.1f s\n", n,
		wall);
	if (n == 0)
		benchsync_die("no request was answered");
	p50 = benchsync_median(lat, (int)n); /* sorts lat */
	p99 = lat[(size_t)((double)(n - 1) * 0.99 + 0.5)];
	benchsync_figure("500 concurrent clients pushing and pulling: errors",
			 (double)errors, "", 0, NULL, "0", errors == 0);
	benchsync_figure("500 concurrent clients: p50 request latency",
			 p50 * 1000, "ms", 0, NULL, "report", 1);
	benchsync_figure("500 concurrent clients: p99 request latency",
			 p99 * 1000, "ms", 0, NULL, "< 500 ms", p99 < 0.5);
	benchsync_server_stop(&s);
	curl_global_cleanup();
	return 0;
}
