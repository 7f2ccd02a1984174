/* api.c - branchsyncd's endpoints (see api.h and docs/API.md). Requests
 * read through a pool of reader connections, each request in one read
 * transaction; the push endpoint is push.c's, its commits the writer's
 * (writer.h). */
#include "api_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "answer.h"
#include "clock.h"
#include "devices.h"
#include "digest.h"
#include "frame.h"
#include "mem.h"
#include "proof.h"
#include "push.h"
#include "request.h"
#include "statedigest.h"
#include "wire.h"
#include "writer.h"

#define API_PULL_DEFAULT 500
#define API_PULL_MAX 2000
#define API_PAGE_BYTES (1u << 20)
/* The rows answer before compression: about 600,000 rows; the client
 * takes at most TRANSPORT_MAX_BODY of it compressed. */
#define API_ROWS_MAX (64u << 20)
/* A challenge in headers and bodies: base64url without padding of its 16
 * bytes (docs/API.md). */
#define API_CHALLENGE_TEXT 22
_Static_assert(sodium_base64_ENCODED_LEN(REQUEST_CHALLENGE_BYTES,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
	       API_CHALLENGE_TEXT + 1, "challenge text length");

/* Reader connections per online core: as many as branchsyncd serve's
 * threads (main.c), so that a request does not wait for one; with a
 * thread per connection, more requests than readers wait their turn. */
#define API_READERS_PER_CORE 16

enum api_reader_stmt {
	READ_BEGIN,
	READ_END,
	READ_VISIBLE_LOG,    /* GET /v1/log: every entry */
	READ_VISIBLE_ALL,    /* pull by a district or auditor device */
	READ_VISIBLE_BRANCH, /* pull by a branch device */
	READ_STMT_COUNT
};

static const char *const api_reader_sql[READ_STMT_COUNT] = {
	[READ_BEGIN] = "BEGIN",
	[READ_END] = "COMMIT",
	[READ_VISIBLE_LOG] = "SELECT idx, entry FROM srv_log WHERE idx >= ?1"
			     " AND idx < ?2 AND ?4 IS NOT NULL ORDER BY idx",
	[READ_VISIBLE_ALL] = "SELECT idx, entry FROM srv_log WHERE idx >= ?1"
			     " AND idx < ?2 AND (kind != 1 OR verdict != 0"
			     " OR author IS NOT ?4) ORDER BY idx",
	/* kind != 1 OR (verdict = 0 AND scope IN (?3, 'district') AND
	 * author IS NOT ?4) OR (verdict != 0 AND author = ?4), written as
	 * two parts that the two partial indexes of store.c answer */
	[READ_VISIBLE_BRANCH] = "SELECT idx, entry FROM srv_log WHERE idx IN"
				" (SELECT idx FROM srv_log WHERE kind = 1 AND"
				" verdict = 0 AND scope IN (?3, 'district') AND"
				" idx >= ?1 AND idx < ?2 AND author IS NOT ?4"
				" UNION ALL SELECT idx FROM srv_log WHERE"
				" (kind != 1 OR verdict != 0) AND idx >= ?1 AND"
				" idx < ?2 AND (kind != 1 OR author = ?4))"
				" ORDER BY idx",
};

/* A reader connection with its log (whose proofs cache committed nodes)
 * and statements. */
struct api_reader {
	struct store *s;
	struct srvlog *log;
	sqlite3_stmt *stmt[READ_STMT_COUNT];
	struct api_reader *next_idle, *next;
};

/* Shared by every request. */
struct api_core {
	struct api *root;
	struct ingest *ingest;	  /* over root's store and log */
	struct writer *writer;	  /* root's store's connection */
	struct http_server *http;
	pthread_mutex_t readers_lock;
	pthread_cond_t reader_free;
	struct api_reader *idle, *readers; /* readers: all, for api_free */
	unsigned nreaders, max_readers;
	atomic_uint_fast64_t accepted, duplicate, refused;
};

static int readers_open(struct api_core *c, struct err *e);

int api_new(struct store *s, struct api **out, struct err *e)
{
	struct api *a = mem_calloc(1, sizeof *a);
	struct api_core *c = mem_calloc(1, sizeof *c);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	*out = NULL;
	if (!a || !c) {
		mem_free(a);
		mem_free(c);
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	a->s = s;
	a->core = c;
	c->root = a;
	c->max_readers = API_READERS_PER_CORE * (cores > 0 ? (unsigned)cores : 1);
	pthread_mutex_init(&c->readers_lock, NULL);
	pthread_cond_init(&c->reader_free, NULL);
	if (store_upgrade(s, e) || srvlog_open(s, &a->log, e) ||
	    ingest_new(s, a->log, &c->ingest, e) || readers_open(c, e) ||
	    writer_new(s, a->log, c->ingest, &c->writer, e)) {
		api_free(a);
		return -1;
	}
	*out = a;
	return 0;
}

static void reader_free(struct api_reader *r)
{
	size_t i;

	for (i = 0; i < READ_STMT_COUNT; i++)
		sqlite3_finalize(r->stmt[i]);
	srvlog_free(r->log);
	store_close(r->s);
	mem_free(r);
}

void api_free(struct api *a)
{
	struct api_core *c;
	struct api_reader *r;

	if (!a)
		return;
	c = a->core;
	/* after the http server stopped: no push is coming */
	writer_free(c->writer);
	while ((r = c->readers)) {
		c->readers = r->next;
		reader_free(r);
	}
	ingest_free(c->ingest);
	srvlog_free(a->log);
	pthread_mutex_destroy(&c->readers_lock);
	pthread_cond_destroy(&c->reader_free);
	mem_free(c);
	mem_free(a);
}

void api_set_http(struct api *a, struct http_server *h)
{
	a->core->http = h;
}

/* ---- readers and read transactions ---- */

/* An idle reader, a new one while under max_readers, or else the first
 * one given back. NULL with e set if a new one cannot be opened. */
static struct api_reader *reader_take(struct api_core *c, struct err *e)
{
	struct api_reader *r;

	pthread_mutex_lock(&c->readers_lock);
	while (!c->idle && c->nreaders >= c->max_readers)
		pthread_cond_wait(&c->reader_free, &c->readers_lock);
	r = c->idle;
	if (r)
		c->idle = r->next_idle;
	else
		c->nreaders++; /* a place for the one opened below */
	pthread_mutex_unlock(&c->readers_lock);
	if (r)
		return r;
	r = mem_calloc(1, sizeof *r);
	if (!r) {
		err_set(e, ERR_INVALID, "out of memory");
	} else if (store_reader_open(c->root->s, &r->s, e) ||
		   srvlog_open(r->s, &r->log, e)) {
		reader_free(r);
		r = NULL;
	}
	pthread_mutex_lock(&c->readers_lock);
	if (r) {
		r->next = c->readers;
		c->readers = r;
	} else {
		c->nreaders--;
		pthread_cond_signal(&c->reader_free);
	}
	pthread_mutex_unlock(&c->readers_lock);
	return r;
}

static void reader_give(struct api_core *c, struct api_reader *r)
{
	pthread_mutex_lock(&c->readers_lock);
	r->next_idle = c->idle;
	c->idle = r;
	pthread_cond_signal(&c->reader_free);
	pthread_mutex_unlock(&c->readers_lock);
}

/* Opens every reader ahead of the first requests (each reads the schema
 * once, better at start than in the first burst of requests). */
static int readers_open(struct api_core *c, struct err *e)
{
	struct api_reader *taken = NULL, *r;
	unsigned i;
	int rc = 0;

	for (i = 0; i < c->max_readers; i++) {
		r = reader_take(c, e);
		if (!r) {
			rc = -1;
			break;
		}
		r->next_idle = taken;
		taken = r;
	}
	while ((r = taken)) {
		taken = r->next_idle;
		reader_give(c, r);
	}
	return rc;
}

/* The reader's statement `which`, reset; NULL with e set on error. */
static sqlite3_stmt *reader_stmt(struct api_reader *r,
				 enum api_reader_stmt which, struct err *e)
{
	sqlite3_stmt **st = &r->stmt[which];

	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
		return *st;
	}
	if (sqlite3_prepare_v3(r->s->r->db, api_reader_sql[which], -1,
			       SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK)
		return *st;
	err_set(e, ERR_INVALID, "database error: %s",
		sqlite3_errmsg(r->s->r->db));
	return NULL;
}

static int reader_exec(struct api_reader *r, enum api_reader_stmt which,
		       struct err *e)
{
	sqlite3_stmt *st = reader_stmt(r, which, e);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	err_set(e, ERR_INVALID, "database error: %s",
		sqlite3_errmsg(r->s->r->db));
	return -1;
}

/* Takes a reader for the request: one snapshot for everything it reads,
 * so the log and the tables agree even while the writer commits (WAL
 * readers). With `log`, the log is reloaded in it (the writer, or admin
 * commands from another process, appended); without, a->log stays NULL. */
int api_read_begin(struct api *a, int log, struct err *e)
{
	struct api_reader *r = reader_take(a->core, e);

	if (!r)
		return -1;
	if (reader_exec(r, READ_BEGIN, e)) {
		reader_give(a->core, r);
		return -1;
	}
	a->reader = r;
	a->s = r->s;
	if (!log)
		return 0;
	a->log = r->log;
	return srvlog_reload(a->log, e);
}

/* Gives the reader back: from here a->s is the root's store (its
 * thread-safe parts only) and a->log is gone. */
void api_read_end(struct api *a)
{
	struct api_reader *r = a->reader;
	struct err e;

	if (!r)
		return;
	err_init(&e);
	if (reader_exec(r, READ_END, &e))
		replica_rollback(r->s->r);
	reader_give(a->core, r);
	a->reader = NULL;
	a->s = a->core->root->s;
	a->log = NULL;
}

/* ---- authentication ---- */

static int hex_field(const char *hex, uint8_t *out, size_t n)
{
	size_t got = 0;

	return hex && strlen(hex) == 2 * n &&
	       sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, NULL) == 0 &&
	       got == n;
}

/* The parts of a request's signature as they came: the device is absent
 * (named 0) in the short form, which only a bound challenge allows. */
struct auth_parts {
	uint8_t device[SIGN_PUBLIC_BYTES];
	uint8_t challenge[REQUEST_CHALLENGE_BYTES];
	uint8_t sig[SIGN_BYTES];
	int named;
};

/* "BS " and base64url without padding of device || challenge || signature
 * (the long form, 112 bytes) or of challenge || signature (the short
 * form, 80 bytes): the one-header form of the request signature. 0 for
 * anything else, the 128 bytes of 32-byte challenges included. */
static int auth_header(const char *v, struct auth_parts *p)
{
	uint8_t raw[SIGN_PUBLIC_BYTES + REQUEST_CHALLENGE_BYTES + SIGN_BYTES];
	const uint8_t *q = raw;
	const char *end = NULL;
	size_t got = 0;

	if (!v || strncmp(v, "BS ", 3) != 0 ||
	    sodium_base642bin(raw, sizeof raw, v + 3, strlen(v + 3), NULL,
			      &got, &end,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    *end != '\0')
		return 0;
	if (got == sizeof raw) {
		memcpy(p->device, raw, SIGN_PUBLIC_BYTES);
		q += SIGN_PUBLIC_BYTES;
		p->named = 1;
	} else if (got == sizeof raw - SIGN_PUBLIC_BYTES) {
		p->named = 0;
	} else {
		return 0;
	}
	memcpy(p->challenge, q, REQUEST_CHALLENGE_BYTES);
	memcpy(p->sig, q + REQUEST_CHALLENGE_BYTES, SIGN_BYTES);
	return 1;
}

/* A challenge as carried in headers: base64url without padding, exactly
 * API_CHALLENGE_TEXT characters. */
static int challenge_field(const char *v, uint8_t out[REQUEST_CHALLENGE_BYTES])
{
	const char *end = NULL;
	size_t got = 0;

	return v && strlen(v) == API_CHALLENGE_TEXT &&
	       sodium_base642bin(out, REQUEST_CHALLENGE_BYTES, v,
				 API_CHALLENGE_TEXT, NULL, &got, &end,
				 sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
		       0 &&
	       got == REQUEST_CHALLENGE_BYTES && *end == '\0';
}

/* The three-header form: X-BS-Device and X-BS-Signature in hex,
 * X-BS-Challenge as it was issued. Always names the device. */
static int auth_headers(const struct http_request *req, struct auth_parts *p)
{
	p->named = 1;
	return hex_field(http_request_header(req, "X-BS-Device"), p->device,
			 SIGN_PUBLIC_BYTES) &&
	       challenge_field(http_request_header(req, "X-BS-Challenge"),
			       p->challenge) &&
	       hex_field(http_request_header(req, "X-BS-Signature"), p->sig,
			 SIGN_BYTES);
}

/* A fresh challenge in X-BS-Next-Challenge, bound to `device` (the key
 * whose signature this answer's request carried) or, NULL, to none. */
static void next_challenge(struct api *a, struct http_response *resp,
			   const uint8_t *device)
{
	uint8_t c[REQUEST_CHALLENGE_BYTES];
	char text[API_CHALLENGE_TEXT + 1];
	struct err e;

	err_init(&e);
	if (store_challenge_make(a->s, (int64_t)clock_wall_ms(), device, c,
				 &e) == 0) {
		sodium_bin2base64(text, sizeof text, c, sizeof c,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		http_response_header(resp, "X-BS-Next-Challenge", text);
	}
}

/* Spends the request's challenge and settles which device signed: the one
 * the challenge was bound to, and the one named, must agree. */
static int auth_challenge(struct api *a, struct auth_parts *p,
			  struct http_response *resp)
{
	uint8_t bound_to[SIGN_PUBLIC_BYTES];
	int bound = 0;
	struct err e;

	err_init(&e);
	if (store_challenge_use(a->s, p->challenge, (int64_t)clock_wall_ms(),
				bound_to, &bound, &e)) {
		answer_fail(resp, 401, "%s; get a new one from /v1/challenge",
			    e.msg);
		return -1;
	}
	if (!p->named && !bound) {
		answer_fail(resp, 401, "the challenge was not issued to a "
			    "device, so the request must name its device: "
			    "send Authorization: BS with device, challenge "
			    "and signature");
		return -1;
	}
	if (p->named && bound &&
	    sodium_memcmp(p->device, bound_to, SIGN_PUBLIC_BYTES) != 0) {
		answer_fail(resp, 401,
			    "the challenge was issued to another device; "
			    "get a new one from /v1/challenge");
		return -1;
	}
	if (!p->named)
		memcpy(p->device, bound_to, SIGN_PUBLIC_BYTES);
	return 0;
}

/* Checks the request's signature and challenge (caller holds the lock).
 * With `enrolled`, the key must also be a registered, unrevoked device.
 * who->verified is set once the signature verified. */
static int authenticate(struct api *a, const struct http_request *req,
			struct http_response *resp, int enrolled,
			struct api_caller *who)
{
	struct request_auth ra;
	struct auth_parts p;
	struct err e;
	int found;

	memset(&ra, 0, sizeof ra);
	memset(&p, 0, sizeof p);
	if (!auth_header(http_request_header(req, "Authorization"), &p) &&
	    !auth_headers(req, &p)) {
		answer_fail(resp, 401, "this request is not signed: send "
			    "Authorization: BS, or X-BS-Device, "
			    "X-BS-Challenge and X-BS-Signature");
		return -1;
	}
	if (auth_challenge(a, &p, resp))
		return -1;
	memcpy(who->key, p.device, SIGN_PUBLIC_BYTES);
	ra.method = req->method;
	ra.path = req->url;
	hash_sha256(ra.body_hash, req->body, req->body_len, NULL, 0);
	memcpy(ra.challenge, p.challenge, REQUEST_CHALLENGE_BYTES);
	memcpy(ra.device, p.device, SIGN_PUBLIC_BYTES);
	if (request_verify(&ra, p.sig) != BS_OK) {
		answer_fail(resp, 401, "the request signature does not verify");
		return -1;
	}
	who->verified = 1;
	err_init(&e);
	if (!enrolled)
		return 0;
	found = store_device_get(a->s, who->key, &who->dev, &e);
	if (found < 0) {
		answer_fail(resp, 500, "%s", e.msg);
		return -1;
	}
	if (!found) {
		answer_fail(resp, 401,
			    "unknown device: enroll it with a token first");
		return -1;
	}
	if (who->dev.revoke_idx >= 0) {
		answer_fail(resp, 403,
			    "device revoked: this device may no longer "
			    "push or pull");
		return -1;
	}
	store_device_touch(a->s, who->key, (int64_t)clock_wall_ms(), &e);
	return 0;
}

int api_role_allowed(const struct api_caller *who, struct http_response *resp,
		     int branch, int district, int auditor)
{
	enum enrollment_role r = who->dev.role;

	if ((r == ROLE_BRANCH && branch) || (r == ROLE_DISTRICT && district) ||
	    (r == ROLE_AUDITOR && auditor))
		return 0;
	answer_fail(resp, 403, "a %s device may not do this",
		    enrollment_role_name(r) ? enrollment_role_name(r)
					    : "unknown");
	return -1;
}


/* ---- endpoints ---- */

/* An unbound challenge: nothing says who asks. */
static void get_challenge(struct api *a, struct http_response *resp)
{
	uint8_t c[REQUEST_CHALLENGE_BYTES];
	char text[API_CHALLENGE_TEXT + 1];
	struct err e;

	err_init(&e);
	if (store_challenge_make(a->s, (int64_t)clock_wall_ms(), NULL, c,
				 &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		return;
	}
	sodium_bin2base64(text, sizeof text, c, sizeof c,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	http_response_set(resp, 200, "text/plain", text, strlen(text));
	http_response_header(resp, "X-BS-Next-Challenge", text);
}

static void get_checkpoint(struct api *a, const struct http_request *req,
			   struct http_response *resp)
{
	struct checkpoint cp;
	struct buf b;
	struct err e;

	err_init(&e);
	if (srvlog_checkpoint_get(a->log, -1, &cp, &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		return;
	}
	buf_init(&b, 4096);
	frame_stream_begin(&b);
	answer_checkpoint_frame(&b, &cp);
	answer_send_frames(req, resp, &b);
	buf_release(&b);
}

static void get_proof(struct api *a, const struct http_request *req,
		      struct http_response *resp, int inclusion)
{
	uint64_t x, y;
	struct merkle_path path;
	struct buf b;
	struct err e;
	int rc;

	err_init(&e);
	if (answer_arg_u64(req, inclusion ? "index" : "old", UINT64_MAX, &x) ||
	    answer_arg_u64(req, inclusion ? "size" : "new", UINT64_MAX, &y) ||
	    x == UINT64_MAX || y == UINT64_MAX) {
		answer_fail(resp, 400, "give %s as decimal numbers",
			    inclusion ? "index and size" : "old and new");
		return;
	}
	rc = inclusion ? srvlog_inclusion(a->log, x, y, &path, &e)
		       : srvlog_consistency(a->log, x, y, &path, &e);
	if (rc) {
		answer_fail(resp, 400, "%s", e.msg);
		return;
	}
	buf_init(&b, 8192);
	frame_stream_begin(&b);
	answer_proof_frame(&b, inclusion ? PROOF_INCLUSION : PROOF_CONSISTENCY,
			   x, y, &path);
	answer_send_frames(req, resp, &b);
	buf_release(&b);
}

static void count_outcome(struct api *a, const struct ingest_outcome *o)
{
	struct api_core *c = a->core;

	if (o->status == VERDICT_ACCEPTED)
		atomic_fetch_add(&c->accepted, 1);
	else if (o->status == VERDICT_DUPLICATE)
		atomic_fetch_add(&c->duplicate, 1);
	else
		atomic_fetch_add(&c->refused, 1);
}

int api_commit_push(struct api *a, const struct ingest_item *items, size_t n,
		    struct ingest_outcome *outs, struct checkpoint *cp,
		    struct err *e)
{
	size_t i;

	if (writer_push(a->core->writer, items, n, outs, cp, e))
		return -1;
	for (i = 0; i < n; i++)
		count_outcome(a, &outs[i]);
	return 0;
}

/* Appends the entries `who` may see from `after` on, each with its
 * inclusion proof in cp; *next gets the cursor. */
static int put_visible(struct api *a, struct buf *b,
		       const struct api_caller *who, uint64_t after,
		       uint64_t limit, const struct checkpoint *cp,
		       int with_proofs, uint64_t *next, struct err *e)
{
	sqlite3_stmt *st;
	int all = who->dev.role != ROLE_BRANCH, rc = -1, step;
	uint64_t count = 0, bytes = 0;

	*next = after > cp->size ? after : cp->size;
	/* the whole log (GET /v1/log, for audits) holds every entry */
	st = reader_stmt(a->reader, !with_proofs ? READ_VISIBLE_LOG
				    : all	 ? READ_VISIBLE_ALL
						 : READ_VISIBLE_BRANCH, e);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)after);
	sqlite3_bind_int64(st, 2, (int64_t)cp->size);
	if (!all)
		sqlite3_bind_text(st, 3, who->dev.scope, -1, SQLITE_STATIC);
	/* a device's own accepted change sets are not sent back: it has
	 * them, and its receipts prove where they are */
	sqlite3_bind_blob(st, 4, who->key, SIGN_PUBLIC_BYTES, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t idx = (uint64_t)sqlite3_column_int64(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 1);
		struct merkle_path path;

		if (count == limit || (count > 0 && bytes + n > API_PAGE_BYTES)) {
			*next = idx;
			break;
		}
		answer_entry_frame(b, idx, sqlite3_column_blob(st, 1), n);
		if (with_proofs) {
			if (srvlog_inclusion(a->log, idx, cp->size, &path, e))
				goto cleanup;
			answer_proof_frame(b, PROOF_INCLUSION, idx, cp->size,
					   &path);
		}
		count++;
		bytes += n;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		err_set(e, ERR_INVALID, "database error: %s",
			sqlite3_errmsg(a->s->r->db));
		goto cleanup;
	}
	rc = b->status ? -1 : 0;
	if (rc)
		err_set(e, ERR_INVALID, "the page is too large");
cleanup:
	sqlite3_reset(st);
	return rc;
}

static void put_cursor(struct buf *b, uint64_t next)
{
	uint8_t v[WIRE_VARINT_MAX];

	frame_put(b, FRAME_CURSOR, v, wire_varint_encode(next, v));
}

static void get_pull(struct api *a, const struct http_request *req,
		     struct http_response *resp, struct api_caller *who,
		     int log)
{
	uint64_t after, known, limit, next;
	struct checkpoint cp;
	struct merkle_path path;
	struct buf b;
	struct err e;

	err_init(&e);
	buf_init(&b, 64u << 20);
	if (log && api_role_allowed(who, resp, 0, 1, 1))
		goto cleanup;
	if (answer_arg_u64(req, "after", 0, &after) ||
	    answer_arg_u64(req, "known", 0, &known) ||
	    answer_arg_u64(req, "limit", API_PULL_DEFAULT, &limit) ||
	    limit == 0) {
		answer_fail(resp, 400,
			    "after, known and limit must be decimal numbers");
		goto cleanup;
	}
	if (limit > API_PULL_MAX)
		limit = API_PULL_MAX;
	if (after > INT64_MAX || known > INT64_MAX) {
		answer_fail(resp, 400, "after and known must be below 2^63");
		goto cleanup;
	}
	if (srvlog_checkpoint_get(a->log, -1, &cp, &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	if (known > cp.size) {
		answer_fail(resp, 409,
			    "this device has seen a log of %" PRIu64
			    " entries but the server has %" PRIu64,
			    known, cp.size);
		goto cleanup;
	}
	frame_stream_begin(&b);
	answer_checkpoint_frame(&b, &cp);
	if (!log && known > 0 && known < cp.size) {
		if (srvlog_consistency(a->log, known, cp.size, &path, &e)) {
			answer_fail(resp, 500, "%s", e.msg);
			goto cleanup;
		}
		answer_proof_frame(&b, PROOF_CONSISTENCY, known, cp.size,
				   &path);
	}
	if (put_visible(a, &b, who, after, limit, &cp, !log, &next, &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	put_cursor(&b, next);
	answer_send_frames(req, resp, &b);
cleanup:
	buf_release(&b);
}

/* META payload of an enroll request: blob(token) || blob(name). */
static int parse_enroll_body(const uint8_t *body, size_t len, char *token,
			     char *name)
{
	struct frame_reader fr;
	struct frame f;
	struct wire_reader r;
	const uint8_t *p;
	size_t used, n, off = 0;
	int got = 0, rc = -1;

	frame_reader_init(&fr, 1024);
	while (off < len) {
		if (frame_reader_feed(&fr, body + off, len - off, &used))
			goto cleanup;
		off += used;
		if (frame_reader_next(&fr, &f)) {
			if (got++ || f.type != FRAME_META)
				goto cleanup;
			wire_reader_init(&r, f.payload, f.len);
			if (wire_get_blob(&r, 64, &p, &n) || n != 64)
				goto cleanup;
			memcpy(token, p, 64);
			token[64] = '\0';
			if (wire_get_blob(&r, ENROLLMENT_NAME_MAX, &p, &n) ||
			    wire_expect_end(&r))
				goto cleanup;
			memcpy(name, p, n);
			name[n] = '\0';
		}
	}
	rc = (got == 1 && frame_reader_finish(&fr) == BS_OK) ? 0 : -1;
cleanup:
	frame_reader_release(&fr);
	return rc;
}

/* The frames answering an enrollment logged at `index`: the signed
 * enrollment, the server's key and origin, its log entry, the checkpoint
 * cp and the entry's inclusion in it. Reads through the writer's log
 * (the caller holds the writer). */
static int enroll_answer(struct api *a, uint64_t index,
			 const struct checkpoint *cp, struct buf *b,
			 struct err *e)
{
	struct api *w = a->core->root;
	struct merkle_path path;
	struct logentry le;
	struct buf entry, meta;
	int rc = -1;

	buf_init(&entry, LOGENTRY_MAX);
	buf_init(&meta, 512);
	if (srvlog_entry(w->log, index, &entry, e) ||
	    srvlog_inclusion(w->log, index, cp->size, &path, e))
		goto cleanup;
	if (logentry_decode(entry.data, entry.len, &le) != BS_OK ||
	    le.kind != LOGENTRY_ENROLLMENT) {
		err_set(e, ERR_INVALID, "log entry %llu is not an enrollment",
			(unsigned long long)index);
		goto cleanup;
	}
	buf_append(&meta, a->s->pk, SIGN_PUBLIC_BYTES);
	wire_put_blob(&meta, a->s->origin, strlen(a->s->origin));
	frame_stream_begin(b);
	frame_put(b, FRAME_ENROLLMENT, le.payload, le.payload_len);
	frame_put(b, FRAME_META, meta.data, meta.len);
	answer_entry_frame(b, index, entry.data, entry.len);
	answer_checkpoint_frame(b, cp);
	answer_proof_frame(b, PROOF_INCLUSION, index, cp->size, &path);
	rc = 0;
cleanup:
	buf_release(&entry);
	buf_release(&meta);
	return rc;
}

/* Logs the enrollment of a new device with `token` into b's answer.
 * Answers the failure itself and returns -1 when it fails. */
static int enroll_new(struct api *a, struct http_response *resp,
		      struct api_caller *who, const char *token,
		      const char *name, struct buf *b)
{
	char scope[ENROLLMENT_SCOPE_MAX + 1];
	enum enrollment_role role;
	struct api_core *c = a->core;
	struct api *w = c->root;
	struct checkpoint cp;
	uint8_t *signed_en = NULL;
	size_t en_len = 0;
	uint64_t index;
	struct err e, ce;
	int rc = -1;

	err_init(&e);
	err_init(&ce);
	if (writer_begin(c->writer, &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		return -1;
	}
	/* the token is spent in its own commit: a failure later must not
	 * make it reusable */
	if (store_token_use(w->s, token, (int64_t)clock_wall_ms(), who->key,
			    &role, scope, &e)) {
		writer_commit(c->writer, &ce);
		answer_fail(resp, 403, "%s", e.msg);
		goto cleanup;
	}
	/* an enrollment waits for no group: enrollments are rare */
	if (ingest_enroll(c->ingest, who->key, role, scope, name,
			  (int64_t)clock_wall_ms(), &signed_en, &en_len, &index,
			  &e) ||
	    srvlog_checkpoint(w->log, (int64_t)clock_wall_ms(), &cp, &e) ||
	    enroll_answer(a, index, &cp, b, &e)) {
		writer_abort(c->writer);
		answer_fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	if (writer_commit(c->writer, &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	rc = 0;
cleanup:
	mem_free(signed_en);
	return rc;
}

/* The same answer again for a device that enrolled with this token and
 * lost the answer on the way (a cut link): the request is signed with
 * the device's key, so only that device gets it. */
static int enroll_again(struct api *a, struct http_response *resp,
			const struct store_device *known, struct buf *b)
{
	struct api_core *c = a->core;
	struct checkpoint cp;
	struct err e, ce;
	int rc;

	err_init(&e);
	err_init(&ce);
	if (writer_begin(c->writer, &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		return -1;
	}
	rc = srvlog_checkpoint_get(c->root->log, -1, &cp, &e) ||
	     enroll_answer(a, (uint64_t)known->enroll_idx, &cp, b, &e) ? -1 : 0;
	writer_commit(c->writer, &ce);
	if (rc)
		answer_fail(resp, 500, "%s", e.msg);
	return rc;
}

static void post_enroll(struct api *a, const struct http_request *req,
			struct http_response *resp, struct api_caller *who)
{
	char token[65], name[ENROLLMENT_NAME_MAX + 1];
	struct buf inflated, b;
	const uint8_t *body;
	size_t len;
	struct store_device known;
	struct err e;
	int found, spent = 0;

	err_init(&e);
	buf_init(&inflated, ANSWER_MAX_BODY);
	buf_init(&b, 1 << 20);
	if (answer_post_body(req, resp, &inflated, &body, &len))
		goto cleanup;
	if (parse_enroll_body(body, len, token, name)) {
		answer_fail(resp, 400,
			    "an enroll body is one META frame with the token "
			    "and the device name");
		goto cleanup;
	}
	found = store_device_get(a->s, who->key, &known, &e);
	if (found > 0 && known.revoke_idx < 0)
		spent = store_token_spent_by(a->s, token, who->key, &e);
	api_read_end(a);
	if (found < 0 || spent < 0) {
		answer_fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	if (found && !spent) {
		answer_fail(resp, 409, "this device is already enrolled");
		goto cleanup;
	}
	if (found ? enroll_again(a, resp, &known, &b)
		  : enroll_new(a, resp, who, token, name, &b))
		goto cleanup;
	answer_send_frames(req, resp, &b);
cleanup:
	buf_release(&inflated);
	buf_release(&b);
}

static void get_digest(struct api *a, const struct http_request *req,
		       struct http_response *resp, struct api_caller *who)
{
	struct statedigest sd;
	struct checkpoint cp;
	struct buf b;
	struct err e;

	err_init(&e);
	buf_init(&b, 8192);
	if (api_role_allowed(who, resp, 0, 1, 1))
		goto cleanup;
	memset(&sd, 0, sizeof sd);
	snprintf(sd.origin, sizeof sd.origin, "%s", a->s->origin);
	sd.log_size = srvlog_size(a->log);
	sd.time_ms = clock_wall_ms();
	if (digest_compute(a->s->r->db, sd.digest, &e) ||
	    srvlog_checkpoint_get(a->log, -1, &cp, &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	frame_stream_begin(&b);
	{
		struct buf sb;

		buf_init(&sb, STATEDIGEST_SIGNED_MAX);
		if (statedigest_sign(&sd, a->s->key->sk, &sb) == BS_OK)
			frame_put(&b, FRAME_DIGEST, sb.data, sb.len);
		else
			b.status = BS_EINVALID;
		buf_release(&sb);
	}
	answer_checkpoint_frame(&b, &cp);
	answer_send_frames(req, resp, &b);
cleanup:
	buf_release(&b);
}

/* GET /v1/rows: every record row's hash, unsigned: an auditor uses them
 * only to say where a digest that failed differs. They describe the
 * records when asked, so a push since GET /v1/digest shows up too. */
static void get_rows(struct api *a, const struct http_request *req,
		     struct http_response *resp, struct api_caller *who)
{
	struct buf b;
	struct err e;

	err_init(&e);
	buf_init(&b, API_ROWS_MAX);
	if (api_role_allowed(who, resp, 0, 1, 1))
		goto cleanup;
	frame_stream_begin(&b);
	if (digest_put_rows(a->s->r->db, &b, NULL, NULL, &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	answer_send_frames(req, resp, &b);
cleanup:
	buf_release(&b);
}

static void get_devices(struct api *a, struct http_response *resp,
			struct api_caller *who)
{
	struct buf b;
	struct err e;

	err_init(&e);
	buf_init(&b, 16u << 20);
	if (api_role_allowed(who, resp, 0, 1, 1))
		goto cleanup;
	if (devices_json(a->s, &b, &e)) {
		answer_fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	http_response_set(resp, 200, "application/json", b.data, b.len);
cleanup:
	buf_release(&b);
}

static void get_metrics(struct api *a, struct http_response *resp)
{
	struct http_stats hs;
	char text[2048];
	int n;

	memset(&hs, 0, sizeof hs);
	if (a->core->http)
		http_server_stats(a->core->http, &hs);
	n = snprintf(text, sizeof text,
		"# HELP branchsync_http_requests_total Requests answered.\n"
		"# TYPE branchsync_http_requests_total counter\n"
		"branchsync_http_requests_total %" PRIu64 "\n"
		"# TYPE branchsync_http_responses_total counter\n"
		"branchsync_http_responses_total{class=\"2xx\"} %" PRIu64 "\n"
		"branchsync_http_responses_total{class=\"4xx\"} %" PRIu64 "\n"
		"branchsync_http_responses_total{class=\"5xx\"} %" PRIu64 "\n"
		"# TYPE branchsync_http_bytes_received_total counter\n"
		"branchsync_http_bytes_received_total %" PRIu64 "\n"
		"# TYPE branchsync_http_bytes_sent_total counter\n"
		"branchsync_http_bytes_sent_total %" PRIu64 "\n"
		"# HELP branchsync_changesets_total Pushed change sets by verdict.\n"
		"# TYPE branchsync_changesets_total counter\n"
		"branchsync_changesets_total{verdict=\"accepted\"} %" PRIu64 "\n"
		"branchsync_changesets_total{verdict=\"duplicate\"} %" PRIu64 "\n"
		"branchsync_changesets_total{verdict=\"refused\"} %" PRIu64 "\n"
		"# HELP branchsync_log_entries Entries in the log.\n"
		"# TYPE branchsync_log_entries gauge\n"
		"branchsync_log_entries %" PRIu64 "\n",
		hs.requests, hs.status_2xx, hs.status_4xx, hs.status_5xx,
		hs.bytes_in, hs.bytes_out,
		(uint64_t)atomic_load(&a->core->accepted),
		(uint64_t)atomic_load(&a->core->duplicate),
		(uint64_t)atomic_load(&a->core->refused), srvlog_size(a->log));
	http_response_set(resp, 200, "text/plain; version=0.0.4", text,
			  (size_t)n);
}

/* Authenticated endpoints: one table so the checks cannot be forgotten. */
static void route_signed(struct api *a, const struct http_request *req,
			 struct http_response *resp)
{
	struct api_caller who;
	int post = strcmp(req->method, "POST") == 0;
	int enroll = strcmp(req->path, "/v1/enroll") == 0;

	memset(&who, 0, sizeof who);
	if (authenticate(a, req, resp, !enroll, &who) == 0) {
		if (enroll && post)
			post_enroll(a, req, resp, &who);
		else if (strcmp(req->path, "/v1/push") == 0 && post)
			push_post(a, req, resp, &who);
		else if (strcmp(req->path, "/v1/pull") == 0 && !post)
			get_pull(a, req, resp, &who, 0);
		else if (strcmp(req->path, "/v1/log") == 0 && !post)
			get_pull(a, req, resp, &who, 1);
		else if (strcmp(req->path, "/v1/digest") == 0 && !post)
			get_digest(a, req, resp, &who);
		else if (strcmp(req->path, "/v1/rows") == 0 && !post)
			get_rows(a, req, resp, &who);
		else if (strcmp(req->path, "/v1/devices") == 0 && !post)
			get_devices(a, resp, &who);
		else
			answer_fail(resp, 405, "%s is not allowed on %s",
				    req->method, req->path);
	}
	/* bound to the key that signed: that device alone may use it, and
	 * may then leave its key out of the request (docs/API.md) */
	next_challenge(a, resp, who.verified ? who.key : NULL);
}

static int is_signed_path(const char *p)
{
	static const char *const paths[] = {"/v1/enroll", "/v1/push",
		"/v1/pull", "/v1/log", "/v1/digest", "/v1/rows",
		"/v1/devices"};
	size_t i;

	for (i = 0; i < sizeof paths / sizeof paths[0]; i++)
		if (strcmp(p, paths[i]) == 0)
			return 1;
	return 0;
}

void api_handle(void *ctx, const struct http_request *req,
		struct http_response *resp)
{
	struct api_core *c = ((struct api *)ctx)->core;
	struct api request = {c->root->s, NULL, c, NULL}, *a = &request;
	struct err e;
	int get = strcmp(req->method, "GET") == 0 ||
		  strcmp(req->method, "HEAD") == 0;

	/* a challenge reads nothing; a push or an enrollment reads the
	 * device registry only (the log they append to is the writer's) */
	int reads = strcmp(req->path, "/v1/challenge") != 0 &&
		    strcmp(req->path, "/healthz") != 0;
	int log = strcmp(req->path, "/v1/push") != 0 &&
		  strcmp(req->path, "/v1/enroll") != 0;

	err_init(&e);
	if (reads && api_read_begin(a, log, &e))
		answer_fail(resp, 500, "%s", e.msg);
	else if (is_signed_path(req->path))
		route_signed(a, req, resp);
	else if (!get && (strcmp(req->path, "/healthz") == 0 ||
			  strncmp(req->path, "/v1/", 4) == 0 ||
			  strcmp(req->path, "/metrics") == 0))
		answer_fail(resp, 405, "%s is not allowed on %s", req->method,
			    req->path);
	else if (strcmp(req->path, "/healthz") == 0)
		http_response_set(resp, 200, "text/plain", "ok\n", 3);
	else if (strcmp(req->path, "/metrics") == 0)
		get_metrics(a, resp);
	else if (strcmp(req->path, "/v1/challenge") == 0)
		get_challenge(a, resp);
	else if (strcmp(req->path, "/v1/checkpoint") == 0)
		get_checkpoint(a, req, resp);
	else if (strcmp(req->path, "/v1/consistency") == 0)
		get_proof(a, req, resp, 0);
	else if (strcmp(req->path, "/v1/inclusion") == 0)
		get_proof(a, req, resp, 1);
	else
		answer_fail(resp, 404, "no such endpoint: %s", req->path);
	api_read_end(a);
}
