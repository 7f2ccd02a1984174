/* api.c - branchsyncd's endpoints (see api.h and docs/API.md). Requests
 * read through a pool of reader connections, each request in one read
 * transaction; pushes go to the writer (writer.h). */
#include "api.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "clock.h"
#include "cscompact.h"
#include "devices.h"
#include "digest.h"
#include "frame.h"
#include "mem.h"
#include "proof.h"
#include "pushreceipt.h"
#include "request.h"
#include "statedigest.h"
#include "wire.h"
#include "writer.h"
#include "zbuf.h"

#define API_CONTENT_TYPE "application/x-branchsync"
#define API_MAX_BODY (16u << 20)
#define API_MAX_PUSH 1000
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

struct api_core;
struct api_reader;

/* What a request works with. The api given to api_new's caller is the
 * root: its store is the write connection, which only the writer uses.
 * Each request has its own, whose s and log are a reader connection's
 * while it reads (read_begin to read_end) and the root's otherwise, when
 * only the store's thread-safe parts (challenges, contacts, key) may be
 * used. */
struct api {
	struct store *s;
	struct srvlog *log;
	struct api_core *core;
	struct api_reader *reader; /* while reading */
};

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

/* What an authenticated request established. */
struct caller {
	uint8_t key[SIGN_PUBLIC_BYTES];
	struct store_device dev;
	int verified; /* the request's signature verified with key */
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
static int read_begin(struct api *a, int log, struct err *e)
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
static void read_end(struct api *a)
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

/* ---- answers ---- */

static void fail(struct http_response *resp, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct http_response *resp, int status, const char *fmt, ...)
{
	char msg[512];
	struct buf b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	buf_init(&b, 4096); /* a 512-byte message escapes to at most 3072 */
	buf_append(&b, "{\"error\": ", 10);
	cli_json_append(&b, msg, strlen(msg));
	buf_append(&b, "}\n", 2);
	http_response_set(resp, status, "application/json", b.data, b.len);
	buf_release(&b);
}

/* Whether Accept-Encoding value ae lists coding `name` with a weight
 * other than q=0 (RFC 9110, section 12.5.3). */
static int accepts(const char *ae, const char *name)
{
	size_t n = strlen(name);
	const char *p = ae, *q;

	while ((p = strstr(p, name)) != NULL) {
		q = p + n;
		if ((p == ae || p[-1] == ' ' || p[-1] == ',') &&
		    (*q == '\0' || *q == ',' || *q == ';' || *q == ' ')) {
			while (*q == ' ' || *q == ';')
				q++;
			return !(strncmp(q, "q=0", 3) == 0 &&
				 strspn(q + 3, ".0") == strcspn(q + 3, ", "));
		}
		p = q;
	}
	return 0;
}

/* The coding of an answer: zstd if the client takes it, else deflate if
 * it takes that, else none. */
static const char *answer_coding(const struct http_request *req)
{
	const char *ae = http_request_header(req, "Accept-Encoding");

	if (!ae)
		return NULL;
	if (accepts(ae, "zstd"))
		return "zstd";
	if (accepts(ae, "deflate"))
		return "deflate";
	return NULL;
}

/* Hands buffer b over to the answer, without a copy. */
static void answer_take(struct http_response *resp, struct buf *b)
{
	uint8_t *p;
	size_t n;

	p = buf_detach(b, &n);
	http_response_take(resp, 200, API_CONTENT_TYPE, p, n);
}

/* Ends the frame stream in b and sends it, compressed when asked and
 * when that makes it smaller. */
static void send_frames(const struct http_request *req,
			struct http_response *resp, struct buf *b)
{
	const char *coding = answer_coding(req);
	struct buf z;
	enum bs_status st;

	frame_stream_end(b);
	if (b->status) {
		fail(resp, 500, "answer too large or out of memory");
		return;
	}
	if (!coding || b->len < 64) {
		answer_take(resp, b);
		return;
	}
	buf_init(&z, b->len);
	st = strcmp(coding, "zstd") == 0 ? zbuf_zstd(b->data, b->len, &z)
					 : zbuf_deflate(b->data, b->len, &z);
	if (st == BS_OK) {
		answer_take(resp, &z);
		http_response_header(resp, "Content-Encoding", coding);
	} else {
		/* BS_ELIMIT: it would not shrink */
		answer_take(resp, b);
	}
	buf_release(&z);
}

static void put_checkpoint_frame(struct buf *b, const struct checkpoint *cp)
{
	uint8_t bytes[CHECKPOINT_SIGNED_MAX];

	memcpy(bytes, cp->raw, cp->raw_len);
	memcpy(bytes + cp->raw_len, cp->sig, SIGN_BYTES);
	frame_put(b, FRAME_CHECKPOINT, bytes, cp->raw_len + SIGN_BYTES);
}

static void put_proof_frame(struct buf *b, enum proof_kind kind,
			    uint64_t first, uint64_t second,
			    const struct merkle_path *path)
{
	struct proof p;
	struct buf enc;

	memset(&p, 0, sizeof p);
	p.kind = kind;
	p.first = first;
	p.second = second;
	p.path = *path;
	buf_init(&enc, PROOF_MAX_ENCODED);
	if (proof_encode(&p, &enc) == BS_OK)
		frame_put(b, FRAME_PROOF, enc.data, enc.len);
	else
		b->status = enc.status ? enc.status : BS_EINVALID;
	buf_release(&enc);
}

static void put_entry_frame(struct buf *b, uint64_t index, const void *entry,
			    size_t len)
{
	struct buf f;

	buf_init(&f, len + WIRE_VARINT_MAX);
	wire_put_varint(&f, index);
	buf_append(&f, entry, len);
	if (f.status)
		b->status = f.status;
	else
		frame_put(b, FRAME_ENTRY, f.data, f.len);
	buf_release(&f);
}

/* ---- query arguments ---- */

static int arg_u64(const struct http_request *req, const char *name,
		   uint64_t dflt, uint64_t *out)
{
	const char *v = http_request_arg(req, name);
	char *end;
	unsigned long long n;

	*out = dflt;
	if (!v)
		return 0;
	if (!*v || *v == '-' || *v == '+' || *v == ' ')
		return -1;
	n = strtoull(v, &end, 10);
	if (*end)
		return -1;
	*out = n;
	return 0;
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
		fail(resp, 401, "%s; get a new one from /v1/challenge", e.msg);
		return -1;
	}
	if (!p->named && !bound) {
		fail(resp, 401, "the challenge was not issued to a device, so "
		     "the request must name its device: send Authorization: "
		     "BS with device, challenge and signature");
		return -1;
	}
	if (p->named && bound &&
	    sodium_memcmp(p->device, bound_to, SIGN_PUBLIC_BYTES) != 0) {
		fail(resp, 401, "the challenge was issued to another device; "
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
			struct caller *who)
{
	struct request_auth ra;
	struct auth_parts p;
	struct err e;
	int found;

	memset(&ra, 0, sizeof ra);
	memset(&p, 0, sizeof p);
	if (!auth_header(http_request_header(req, "Authorization"), &p) &&
	    !auth_headers(req, &p)) {
		fail(resp, 401, "this request is not signed: send "
		     "Authorization: BS, or X-BS-Device, X-BS-Challenge and "
		     "X-BS-Signature");
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
		fail(resp, 401, "the request signature does not verify");
		return -1;
	}
	who->verified = 1;
	err_init(&e);
	if (!enrolled)
		return 0;
	found = store_device_get(a->s, who->key, &who->dev, &e);
	if (found < 0) {
		fail(resp, 500, "%s", e.msg);
		return -1;
	}
	if (!found) {
		fail(resp, 401, "unknown device: enroll it with a token first");
		return -1;
	}
	if (who->dev.revoke_idx >= 0) {
		fail(resp, 403, "device revoked: this device may no longer "
		     "push or pull");
		return -1;
	}
	store_device_touch(a->s, who->key, (int64_t)clock_wall_ms(), &e);
	return 0;
}

static int role_allowed(const struct caller *who, struct http_response *resp,
			int branch, int district, int auditor)
{
	enum enrollment_role r = who->dev.role;

	if ((r == ROLE_BRANCH && branch) || (r == ROLE_DISTRICT && district) ||
	    (r == ROLE_AUDITOR && auditor))
		return 0;
	fail(resp, 403, "a %s device may not do this",
	     enrollment_role_name(r) ? enrollment_role_name(r) : "unknown");
	return -1;
}

/* The body of a POST as a plain frame stream: content type checked and
 * deflate undone. *plain points into req or into inflated (released by the
 * caller). */
static int post_body(const struct http_request *req,
		     struct http_response *resp, struct buf *inflated,
		     const uint8_t **plain, size_t *len)
{
	const char *ct = http_request_header(req, "Content-Type");
	const char *ce = http_request_header(req, "Content-Encoding");
	enum bs_status st;

	if (!ct || strcasecmp(ct, API_CONTENT_TYPE) != 0) {
		fail(resp, 415, "send frame streams as %s", API_CONTENT_TYPE);
		return -1;
	}
	*plain = req->body;
	*len = req->body_len;
	if (!ce || strcasecmp(ce, "identity") == 0)
		return 0;
	if (strcasecmp(ce, "zstd") == 0)
		st = zbuf_unzstd(req->body, req->body_len, inflated);
	else if (strcasecmp(ce, "deflate") == 0)
		st = zbuf_inflate(req->body, req->body_len, inflated);
	else {
		fail(resp, 415, "unsupported Content-Encoding; use zstd or "
		     "deflate");
		return -1;
	}
	switch (st) {
	case BS_OK:
		*plain = inflated->data;
		*len = inflated->len;
		return 0;
	case BS_ELIMIT:
		fail(resp, 413, "the body inflates beyond %u bytes",
		     API_MAX_BODY);
		return -1;
	case BS_ENOMEM:
		fail(resp, 503, "out of memory decompressing the body; try "
		     "again");
		return -1;
	default:
		fail(resp, 400, "the compressed body is corrupt");
		return -1;
	}
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
		fail(resp, 500, "%s", e.msg);
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
		fail(resp, 500, "%s", e.msg);
		return;
	}
	buf_init(&b, 4096);
	frame_stream_begin(&b);
	put_checkpoint_frame(&b, &cp);
	send_frames(req, resp, &b);
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
	if (arg_u64(req, inclusion ? "index" : "old", UINT64_MAX, &x) ||
	    arg_u64(req, inclusion ? "size" : "new", UINT64_MAX, &y) ||
	    x == UINT64_MAX || y == UINT64_MAX) {
		fail(resp, 400, "give %s as decimal numbers",
		     inclusion ? "index and size" : "old and new");
		return;
	}
	rc = inclusion ? srvlog_inclusion(a->log, x, y, &path, &e)
		       : srvlog_consistency(a->log, x, y, &path, &e);
	if (rc) {
		fail(resp, 400, "%s", e.msg);
		return;
	}
	buf_init(&b, 8192);
	frame_stream_begin(&b);
	put_proof_frame(&b, inclusion ? PROOF_INCLUSION : PROOF_CONSISTENCY, x,
			y, &path);
	send_frames(req, resp, &b);
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

/* Encodes one verdict (with a receipt against cp when logged). */
static int put_verdict(struct api *a, struct buf *b,
		       const struct ingest_outcome *o,
		       const struct checkpoint *cp)
{
	struct verdict v;
	struct receipt rc;
	struct buf rb, vb;
	int ok = -1;

	memset(&v, 0, sizeof v);
	v.status = o->status;
	memcpy(v.changeset_id, o->id, HASH_BYTES);
	snprintf(v.reason, sizeof v.reason, "%s", o->reason);
	buf_init(&rb, RECEIPT_SIGNED_MAX);
	buf_init(&vb, RECEIPT_SIGNED_MAX + 512);
	if (o->logged) {
		memset(&rc, 0, sizeof rc);
		memcpy(rc.changeset_id, o->id, HASH_BYTES);
		rc.index = o->index;
		rc.checkpoint = *cp;
		if (receipt_sign(&rc, a->s->key->sk, &rb) != BS_OK)
			goto cleanup;
		v.receipt = rb.data;
		v.receipt_len = rb.len;
	}
	if (verdict_encode(&v, &vb) != BS_OK)
		goto cleanup;
	frame_put(b, FRAME_VERDICT, vb.data, vb.len);
	ok = 0;
cleanup:
	buf_release(&rb);
	buf_release(&vb);
	return ok;
}

_Static_assert(API_MAX_PUSH <= PUSHRECEIPT_MAX_SETS,
	       "a push receipt must be able to answer the largest push");

/* The answer's one signed receipt for the whole push (FORMAT.md, "Push
 * receipts"), instead of a VERDICT frame with a receipt for each set; in
 * its wire form (without the ids hash the pusher knows) when `wire`. */
static int put_push_receipt(struct api *a, struct buf *b,
			    const struct ingest_outcome *outs, size_t n,
			    const struct checkpoint *cp, int wire)
{
	struct pushreceipt pr;
	uint8_t (*ids)[HASH_BYTES] = NULL;
	struct buf rb, wb;
	size_t i;
	int rc = -1;

	memset(&pr, 0, sizeof pr);
	buf_init(&rb, PUSHRECEIPT_SIGNED_MAX);
	buf_init(&wb, PUSHRECEIPT_WIRE_MAX);
	pr.items = mem_calloc(n ? n : 1, sizeof *pr.items);
	ids = mem_calloc(n ? n : 1, sizeof *ids);
	if (!pr.items || !ids)
		goto cleanup;
	pr.checkpoint = *cp;
	pr.count = n;
	for (i = 0; i < n; i++) {
		struct pushreceipt_item *it = &pr.items[i];

		memcpy(ids[i], outs[i].id, HASH_BYTES);
		it->status = outs[i].status;
		it->logged = outs[i].logged;
		it->index = outs[i].index;
		if (it->status == VERDICT_REFUSED)
			snprintf(it->reason, sizeof it->reason, "%s",
				 outs[i].reason[0] ? outs[i].reason
						   : "refused");
	}
	pushreceipt_ids_hash((const uint8_t(*)[HASH_BYTES])ids, n,
			     pr.ids_hash);
	if (pushreceipt_sign(&pr, a->s->key->sk, &rb) != BS_OK ||
	    (wire && pushreceipt_wire_pack(rb.data, rb.len, &wb) != BS_OK))
		goto cleanup;
	if (wire)
		frame_put(b, FRAME_PUSHRECEIPT, wb.data, wb.len);
	else
		frame_put(b, FRAME_PUSHRECEIPT, rb.data, rb.len);
	rc = 0;
cleanup:
	mem_free(pr.items);
	mem_free(ids);
	buf_release(&rb);
	buf_release(&wb);
	return rc;
}

/* Splits a push body into its change sets (pointers into body), checking
 * the frame stream whole before anything is ingested. */
static int split_push(const uint8_t *body, size_t len, const uint8_t **sets,
		      size_t *lens, uint8_t *compact, size_t *n,
		      struct http_response *resp)
{
	struct frame_reader fr;
	struct frame f;
	size_t used, off = 0;
	enum bs_status st = BS_OK;
	int rc = -1;

	*n = 0;
	frame_reader_init(&fr, CHANGESET_MAX_ENCODED);
	for (;;) {
		/* feed stops at the end of each frame, so a frame's payload
		 * is the f.len bytes of body just before off */
		while (frame_reader_next(&fr, &f)) {
			if (f.type != FRAME_CHANGESET &&
			    f.type != FRAME_CHANGESET_COMPACT) {
				fail(resp, 400, "a push carries only change "
				     "set frames");
				goto cleanup;
			}
			if (*n == API_MAX_PUSH) {
				fail(resp, 413, "at most %d change sets per push",
				     API_MAX_PUSH);
				goto cleanup;
			}
			sets[*n] = body + off - f.len;
			lens[*n] = f.len;
			compact[*n] = f.type == FRAME_CHANGESET_COMPACT;
			(*n)++;
		}
		if (off == len)
			break;
		st = frame_reader_feed(&fr, body + off, len - off, &used);
		if (st)
			break;
		off += used;
	}
	if (st == BS_OK)
		st = frame_reader_finish(&fr);
	if (st) {
		fail(resp, 400, "malformed push body: %s", bs_status_str(st));
		goto cleanup;
	}
	if (*n == 0) {
		fail(resp, 400, "a push carries at least one change set");
		goto cleanup;
	}
	rc = 0;
cleanup:
	frame_reader_release(&fr);
	return rc;
}

/* The predecessor of compact set i of seq `seq` by the caller: zeros for
 * seq 1, the set just before it in this push if that is the caller's
 * seq - 1, else the head of the caller's chain if that is seq - 1, else
 * the caller's accepted seq - 1 in the log (a push sent again after its
 * answer was lost). 0 if it is none of these (the client must send the
 * set whole), -1 on a database error. Needs a read transaction. */
static int compact_prev(struct api *a, const struct caller *who,
			uint64_t seq, const struct changeset *before,
			int have_before, uint8_t prev[HASH_BYTES],
			struct err *e)
{
	memset(prev, 0, HASH_BYTES);
	if (seq == 1)
		return 1;
	if (have_before &&
	    memcmp(before->env.author, who->key, SIGN_PUBLIC_BYTES) == 0 &&
	    before->env.seq == seq - 1) {
		memcpy(prev, before->id, HASH_BYTES);
		return 1;
	}
	if (who->dev.last_seq >= 1 && (uint64_t)who->dev.last_seq == seq - 1) {
		memcpy(prev, who->dev.head, HASH_BYTES);
		return 1;
	}
	return store_chain_id(a->s, who->key, seq - 1, prev, e);
}

/* Turns the compact sets of a push (protocol/FORMAT.md, "Compact change
 * sets") into the full signed bytes, into `full` (owned by the caller),
 * and points sets[i] at them. Everything after this sees full sets only.
 * A compact set whose predecessor the server cannot name gets 409: the
 * whole push is refused, nothing logged, and the client sends it again
 * with whole sets. */
static int expand_push(struct api *a, const struct caller *who,
		       const uint8_t **sets, size_t *lens,
		       const uint8_t *compact, size_t n, struct buf *full,
		       struct http_response *resp)
{
	size_t *off = NULL, i;
	struct changeset before;
	uint8_t prev[HASH_BYTES];
	uint64_t seq;
	int have_before = 0, named, rc = -1;
	enum bs_status st;
	struct err e;

	if (!(off = mem_calloc(n ? n : 1, sizeof *off))) {
		fail(resp, 500, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!compact[i]) {
			have_before = changeset_decode(sets[i], lens[i],
						       &before) == BS_OK;
			continue;
		}
		if ((st = cscompact_seq(sets[i], lens[i], &seq)) != BS_OK) {
			fail(resp, 400, "compact change set %zu is malformed: "
			     "%s", i + 1, bs_status_str(st));
			goto cleanup;
		}
		err_init(&e);
		named = compact_prev(a, who, seq, &before, have_before, prev,
				     &e);
		if (named < 0) {
			fail(resp, 500, "%s", e.msg);
			goto cleanup;
		}
		if (!named) {
			fail(resp, 409, "compact change set %zu (sequence %"
			     PRIu64 ") does not follow this device's last "
			     "logged one; send it whole", i + 1, seq);
			goto cleanup;
		}
		off[i] = full->len;
		if ((st = cscompact_expand(sets[i], lens[i], who->key, prev,
					   full)) != BS_OK) {
			fail(resp, st == BS_ELIMIT ? 413 : 400,
			     "compact change set %zu is malformed: %s", i + 1,
			     bs_status_str(st));
			goto cleanup;
		}
		lens[i] = full->len - off[i];
		/* decoded in place for the next one's predecessor; the
		 * pointers are fixed below, once `full` stops moving */
		have_before = changeset_decode(full->data + off[i], lens[i],
					       &before) == BS_OK;
	}
	for (i = 0; i < n; i++)
		if (compact[i])
			sets[i] = full->data + off[i];
	rc = 0;
cleanup:
	mem_free(off);
	return rc;
}

/* A compact set whose expansion does not verify was expanded with a
 * predecessor other than the one its author signed (our chain head for
 * the device is not what its outbox says: a restored backup, an
 * equivocation). Sent whole it gets the verdict it deserves (a fork, a
 * chain refusal), so ask for that: 409, nothing logged. */
static int compact_unverified(const uint8_t *compact,
			      const struct ingest_item *items, size_t n,
			      struct http_response *resp)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (compact[i] && !items[i].sig_ok) {
			fail(resp, 409, "compact change set %zu does not verify"
			     " as this server expands it; send it whole",
			     i + 1);
			return -1;
		}
	}
	return 0;
}

/* The push answer's last frame when the device said which checkpoint it
 * holds: the consistency proof from it to cp, read in a read transaction
 * of its own (the push was committed by the writer). */
static int put_push_proof(struct api *a, struct buf *b, uint64_t known,
			  const struct checkpoint *cp, struct err *e)
{
	struct merkle_path path;
	int rc;

	if (known == 0 || known >= cp->size)
		return 0;
	if (read_begin(a, 1, e))
		return -1;
	rc = srvlog_consistency(a->log, known, cp->size, &path, e);
	read_end(a);
	if (rc)
		return -1;
	put_proof_frame(b, PROOF_CONSISTENCY, known, cp->size, &path);
	return 0;
}

/* The push's form of answer from ?receipt= (docs/API.md). */
enum push_form {
	PUSH_FORM_BAD = -1,
	PUSH_FORM_EACH,   /* a VERDICT frame each */
	PUSH_FORM_PUSH,   /* one push receipt */
	PUSH_FORM_WIRE,   /* one push receipt in its wire form */
};

static enum push_form push_answer_form(const struct http_request *req)
{
	const char *v = http_request_arg(req, "receipt");

	if (!v || strcmp(v, "each") == 0)
		return PUSH_FORM_EACH;
	if (strcmp(v, "push") == 0)
		return PUSH_FORM_PUSH;
	return strcmp(v, "wire") == 0 ? PUSH_FORM_WIRE : PUSH_FORM_BAD;
}

/* The verdicts and the checkpoint of a committed push, in the form asked
 * for. */
static int put_push_answer(struct api *a, struct buf *b, enum push_form form,
			   const struct ingest_outcome *outs, size_t n,
			   const struct checkpoint *cp)
{
	size_t i;

	if (form != PUSH_FORM_EACH)
		return put_push_receipt(a, b, outs, n, cp,
					form == PUSH_FORM_WIRE);
	for (i = 0; i < n; i++)
		if (put_verdict(a, b, &outs[i], cp))
			return -1;
	put_checkpoint_frame(b, cp);
	return 0;
}

/* The sets are decoded and their signatures verified here, in the
 * request's thread and outside any lock; only their verdicts wait for the
 * writer, in a group with the pushes that came meanwhile. Compact sets
 * are expanded first, against the device's chain as authentication read
 * it. */
static void post_push(struct api *a, const struct http_request *req,
		      struct http_response *resp, struct caller *who)
{
	struct ingest_outcome *outs = NULL;
	struct ingest_item *items = NULL;
	const uint8_t **sets = NULL;
	size_t *lens = NULL;
	uint8_t *compact = NULL;
	struct checkpoint cp;
	struct buf inflated, b, full;
	const uint8_t *body;
	size_t len, n = 0, i;
	uint64_t known;
	enum push_form form = push_answer_form(req);
	struct err e;

	err_init(&e);
	buf_init(&inflated, API_MAX_BODY);
	buf_init(&b, API_MAX_BODY);
	buf_init(&full, API_MAX_BODY + API_MAX_PUSH * CHANGESET_ENVELOPE_MAX);
	if (arg_u64(req, "known", 0, &known) || form == PUSH_FORM_BAD) {
		fail(resp, 400, "known must be a decimal number, receipt "
		     "'wire', 'push' or 'each'");
		goto cleanup;
	}
	if (role_allowed(who, resp, 1, 1, 0) ||
	    post_body(req, resp, &inflated, &body, &len))
		goto cleanup;
	sets = mem_calloc(API_MAX_PUSH, sizeof *sets);
	lens = mem_calloc(API_MAX_PUSH, sizeof *lens);
	compact = mem_calloc(API_MAX_PUSH, 1);
	if (!sets || !lens || !compact) {
		fail(resp, 500, "out of memory");
		goto cleanup;
	}
	/* compact sets are expanded in the read transaction that
	 * authenticated the push; the writer's queue is waited on without */
	if (split_push(body, len, sets, lens, compact, &n, resp) ||
	    expand_push(a, who, sets, lens, compact, n, &full, resp))
		goto cleanup;
	read_end(a);
	/* as many as there are: hundreds of pushes at once each zeroing room
	 * for API_MAX_PUSH would be a megabyte apiece */
	outs = mem_calloc(n ? n : 1, sizeof *outs);
	items = mem_calloc(n ? n : 1, sizeof *items);
	if (!outs || !items) {
		fail(resp, 500, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++)
		ingest_item_init(&items[i], sets[i], lens[i]);
	/* a few sets: the other cores serve other requests meanwhile */
	ingest_prepare(items, n, n >= 8 ? 0 : 1);
	if (compact_unverified(compact, items, n, resp))
		goto cleanup;
	err_init(&e);
	if (writer_push(a->core->writer, items, n, outs, &cp, &e)) {
		fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	frame_stream_begin(&b);
	for (i = 0; i < n; i++)
		count_outcome(a, &outs[i]);
	if (put_push_answer(a, &b, form, outs, n, &cp)) {
		fail(resp, 500, "cannot sign the receipts");
		goto cleanup;
	}
	/* the device's last checkpoint to this one, so that a sync needs no
	 * separate consistency request */
	if (put_push_proof(a, &b, known, &cp, &e)) {
		fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	send_frames(req, resp, &b);
cleanup:
	read_end(a);
	mem_free(outs);
	mem_free(sets);
	mem_free(lens);
	mem_free(items);
	mem_free(compact);
	buf_release(&inflated);
	buf_release(&full);
	buf_release(&b);
}

/* Appends the entries `who` may see from `after` on, each with its
 * inclusion proof in cp; *next gets the cursor. */
static int put_visible(struct api *a, struct buf *b, const struct caller *who,
		       uint64_t after, uint64_t limit,
		       const struct checkpoint *cp, int with_proofs,
		       uint64_t *next, struct err *e)
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
		put_entry_frame(b, idx, sqlite3_column_blob(st, 1), n);
		if (with_proofs) {
			if (srvlog_inclusion(a->log, idx, cp->size, &path, e))
				goto cleanup;
			put_proof_frame(b, PROOF_INCLUSION, idx, cp->size, &path);
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
		     struct http_response *resp, struct caller *who, int log)
{
	uint64_t after, known, limit, next;
	struct checkpoint cp;
	struct merkle_path path;
	struct buf b;
	struct err e;

	err_init(&e);
	buf_init(&b, 64u << 20);
	if (log && role_allowed(who, resp, 0, 1, 1))
		goto cleanup;
	if (arg_u64(req, "after", 0, &after) || arg_u64(req, "known", 0, &known) ||
	    arg_u64(req, "limit", API_PULL_DEFAULT, &limit) || limit == 0) {
		fail(resp, 400, "after, known and limit must be decimal numbers");
		goto cleanup;
	}
	if (limit > API_PULL_MAX)
		limit = API_PULL_MAX;
	if (after > INT64_MAX || known > INT64_MAX) {
		fail(resp, 400, "after and known must be below 2^63");
		goto cleanup;
	}
	if (srvlog_checkpoint_get(a->log, -1, &cp, &e)) {
		fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	if (known > cp.size) {
		fail(resp, 409, "this device has seen a log of %" PRIu64
		     " entries but the server has %" PRIu64, known, cp.size);
		goto cleanup;
	}
	frame_stream_begin(&b);
	put_checkpoint_frame(&b, &cp);
	if (!log && known > 0 && known < cp.size) {
		if (srvlog_consistency(a->log, known, cp.size, &path, &e)) {
			fail(resp, 500, "%s", e.msg);
			goto cleanup;
		}
		put_proof_frame(&b, PROOF_CONSISTENCY, known, cp.size, &path);
	}
	if (put_visible(a, &b, who, after, limit, &cp, !log, &next, &e)) {
		fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	put_cursor(&b, next);
	send_frames(req, resp, &b);
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
	put_entry_frame(b, index, entry.data, entry.len);
	put_checkpoint_frame(b, cp);
	put_proof_frame(b, PROOF_INCLUSION, index, cp->size, &path);
	rc = 0;
cleanup:
	buf_release(&entry);
	buf_release(&meta);
	return rc;
}

/* Logs the enrollment of a new device with `token` into b's answer.
 * Answers the failure itself and returns -1 when it fails. */
static int enroll_new(struct api *a, struct http_response *resp,
		      struct caller *who, const char *token, const char *name,
		      struct buf *b)
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
		fail(resp, 500, "%s", e.msg);
		return -1;
	}
	/* the token is spent in its own commit: a failure later must not
	 * make it reusable */
	if (store_token_use(w->s, token, (int64_t)clock_wall_ms(), who->key,
			    &role, scope, &e)) {
		writer_commit(c->writer, &ce);
		fail(resp, 403, "%s", e.msg);
		goto cleanup;
	}
	/* an enrollment waits for no group: enrollments are rare */
	if (ingest_enroll(c->ingest, who->key, role, scope, name,
			  (int64_t)clock_wall_ms(), &signed_en, &en_len, &index,
			  &e) ||
	    srvlog_checkpoint(w->log, (int64_t)clock_wall_ms(), &cp, &e) ||
	    enroll_answer(a, index, &cp, b, &e)) {
		writer_abort(c->writer);
		fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	if (writer_commit(c->writer, &e)) {
		fail(resp, 500, "%s", e.msg);
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
		fail(resp, 500, "%s", e.msg);
		return -1;
	}
	rc = srvlog_checkpoint_get(c->root->log, -1, &cp, &e) ||
	     enroll_answer(a, (uint64_t)known->enroll_idx, &cp, b, &e) ? -1 : 0;
	writer_commit(c->writer, &ce);
	if (rc)
		fail(resp, 500, "%s", e.msg);
	return rc;
}

static void post_enroll(struct api *a, const struct http_request *req,
			struct http_response *resp, struct caller *who)
{
	char token[65], name[ENROLLMENT_NAME_MAX + 1];
	struct buf inflated, b;
	const uint8_t *body;
	size_t len;
	struct store_device known;
	struct err e;
	int found, spent = 0;

	err_init(&e);
	buf_init(&inflated, API_MAX_BODY);
	buf_init(&b, 1 << 20);
	if (post_body(req, resp, &inflated, &body, &len))
		goto cleanup;
	if (parse_enroll_body(body, len, token, name)) {
		fail(resp, 400, "an enroll body is one META frame with the token "
		     "and the device name");
		goto cleanup;
	}
	found = store_device_get(a->s, who->key, &known, &e);
	if (found > 0 && known.revoke_idx < 0)
		spent = store_token_spent_by(a->s, token, who->key, &e);
	read_end(a);
	if (found < 0 || spent < 0) {
		fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	if (found && !spent) {
		fail(resp, 409, "this device is already enrolled");
		goto cleanup;
	}
	if (found ? enroll_again(a, resp, &known, &b)
		  : enroll_new(a, resp, who, token, name, &b))
		goto cleanup;
	send_frames(req, resp, &b);
cleanup:
	buf_release(&inflated);
	buf_release(&b);
}

static void get_digest(struct api *a, const struct http_request *req,
		       struct http_response *resp, struct caller *who)
{
	struct statedigest sd;
	struct checkpoint cp;
	struct buf b;
	struct err e;

	err_init(&e);
	buf_init(&b, 8192);
	if (role_allowed(who, resp, 0, 1, 1))
		goto cleanup;
	memset(&sd, 0, sizeof sd);
	snprintf(sd.origin, sizeof sd.origin, "%s", a->s->origin);
	sd.log_size = srvlog_size(a->log);
	sd.time_ms = clock_wall_ms();
	if (digest_compute(a->s->r->db, sd.digest, &e) ||
	    srvlog_checkpoint_get(a->log, -1, &cp, &e)) {
		fail(resp, 500, "%s", e.msg);
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
	put_checkpoint_frame(&b, &cp);
	send_frames(req, resp, &b);
cleanup:
	buf_release(&b);
}

/* GET /v1/rows: every record row's hash, unsigned: an auditor uses them
 * only to say where a digest that failed differs. They describe the
 * records when asked, so a push since GET /v1/digest shows up too. */
static void get_rows(struct api *a, const struct http_request *req,
		     struct http_response *resp, struct caller *who)
{
	struct buf b;
	struct err e;

	err_init(&e);
	buf_init(&b, API_ROWS_MAX);
	if (role_allowed(who, resp, 0, 1, 1))
		goto cleanup;
	frame_stream_begin(&b);
	if (digest_put_rows(a->s->r->db, &b, &e)) {
		fail(resp, 500, "%s", e.msg);
		goto cleanup;
	}
	send_frames(req, resp, &b);
cleanup:
	buf_release(&b);
}

static void get_devices(struct api *a, struct http_response *resp,
			struct caller *who)
{
	struct buf b;
	struct err e;

	err_init(&e);
	buf_init(&b, 16u << 20);
	if (role_allowed(who, resp, 0, 1, 1))
		goto cleanup;
	if (devices_json(a->s, &b, &e)) {
		fail(resp, 500, "%s", e.msg);
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
	struct caller who;
	int post = strcmp(req->method, "POST") == 0;
	int enroll = strcmp(req->path, "/v1/enroll") == 0;

	memset(&who, 0, sizeof who);
	if (authenticate(a, req, resp, !enroll, &who) == 0) {
		if (enroll && post)
			post_enroll(a, req, resp, &who);
		else if (strcmp(req->path, "/v1/push") == 0 && post)
			post_push(a, req, resp, &who);
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
			fail(resp, 405, "%s is not allowed on %s", req->method,
			     req->path);
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
	if (reads && read_begin(a, log, &e))
		fail(resp, 500, "%s", e.msg);
	else if (is_signed_path(req->path))
		route_signed(a, req, resp);
	else if (!get && (strcmp(req->path, "/healthz") == 0 ||
			  strncmp(req->path, "/v1/", 4) == 0 ||
			  strcmp(req->path, "/metrics") == 0))
		fail(resp, 405, "%s is not allowed on %s", req->method,
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
		fail(resp, 404, "no such endpoint: %s", req->path);
	read_end(a);
}
