/* transport.c - the HTTP client of branchsync over libcurl (see transport.h
 * and docs/SYNC.md, "Transport"). One easy handle serves every request of a
 * command so the connection (and its TLS session) is reused. Not for the
 * meaning of bodies: enroll.c and sync*.c parse them. */
#include "transport.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "config.h"
#include "mem.h"
#include "request.h"
#include "zbuf.h"

#define TRANSPORT_CONTENT_TYPE "application/x-branchsync"
/* The scheme of the one-header request signature (docs/API.md). */
#define TRANSPORT_AUTH_SCHEME "BS"
/* A challenge as the server sends it: base64url, no padding, 16 bytes. */
#define TRANSPORT_CHALLENGE_TEXT 22
/* "Content-Encoding: zstd" and CRLF: what compressing a body costs. */
#define TRANSPORT_ZSTD_HEADER 24
#define TRANSPORT_CONNECT_TIMEOUT_S 10L
/* A link slower than 10 bytes/s for a whole minute is dead; a slow one is
 * not, so there is no total timeout. */
#define TRANSPORT_LOW_SPEED_BYTES 10L
#define TRANSPORT_LOW_SPEED_TIME_S 60L

enum transport_encoding {
	ENC_IDENTITY,
	ENC_DEFLATE,
	ENC_ZSTD,
	ENC_OTHER,
};

struct transport {
	CURL *curl;
	char base[TRANSPORT_URL_MAX + 1];
	unsigned attempts;
	unsigned backoff_ms;
	const uint8_t *pk, *sk;
	/* one-time challenge for the next signed request; bound when it came
	 * with a 2xx answer to a signed request (the server bound it to our
	 * key), so the request may leave the key out */
	uint8_t challenge[REQUEST_CHALLENGE_BYTES];
	int have_challenge, challenge_bound;
	int got_challenge;             /* the current answer carried one */
	/* what the header callback saw of the current answer */
	enum transport_encoding encoding;
	long retry_after_s;            /* -1: none */
	struct buf raw;                /* the answer as received */
	uint64_t sent, received, requests;
	char errbuf[CURL_ERROR_SIZE];
	int global;                    /* curl_global_init succeeded */
};

/* What one try came to. */
enum transport_try {
	TRY_ANSWER,    /* an HTTP answer is in the reply */
	TRY_AGAIN,     /* a transient failure; may be retried */
	TRY_FAIL,      /* a failure that retrying cannot help (e is set) */
};

/* ---- callbacks ---- */

static size_t transport_write_cb(char *p, size_t size, size_t n, void *ctx)
{
	struct transport *t = ctx;

	buf_append(&t->raw, p, size * n);
	/* returning less than given makes curl stop with CURLE_WRITE_ERROR */
	return t->raw.status ? 0 : size * n;
}

/* 1 if the header line `p` (len bytes, no NUL) is `name: ...`; *value
 * and *vlen get the value without surrounding blanks. */
static int header_is(const char *p, size_t len, const char *name,
		     const char **value, size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || p[n] != ':' || strncasecmp(p, name, n) != 0)
		return 0;
	p += n + 1;
	len -= n + 1;
	while (len > 0 && (*p == ' ' || *p == '\t'))
		p++, len--;
	while (len > 0 && isspace((unsigned char)p[len - 1]))
		len--;
	*value = p;
	*vlen = len;
	return 1;
}

/* 1 if v (vlen bytes, no NUL) is a challenge: base64url without padding
 * of REQUEST_CHALLENGE_BYTES (docs/API.md). */
static int challenge_parse(const char *v, size_t vlen,
			   uint8_t out[REQUEST_CHALLENGE_BYTES])
{
	size_t got = 0;
	const char *end = NULL;

	return vlen == TRANSPORT_CHALLENGE_TEXT &&
	       sodium_base642bin(out, REQUEST_CHALLENGE_BYTES, v, vlen, NULL,
				 &got, &end,
				 sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
		       0 &&
	       got == REQUEST_CHALLENGE_BYTES && end == v + vlen;
}

static size_t transport_header_cb(char *p, size_t size, size_t n, void *ctx)
{
	struct transport *t = ctx;
	size_t len = size * n, vlen;
	const char *v;
	char tmp[32];

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* a new answer begins (after a 1xx, say): forget the last */
		t->encoding = ENC_IDENTITY;
		t->retry_after_s = -1;
	} else if (header_is(p, len, "Content-Encoding", &v, &vlen)) {
		if (vlen == 7 && strncasecmp(v, "deflate", 7) == 0)
			t->encoding = ENC_DEFLATE;
		else if (vlen == 4 && strncasecmp(v, "zstd", 4) == 0)
			t->encoding = ENC_ZSTD;
		else if (!(vlen == 8 && strncasecmp(v, "identity", 8) == 0))
			t->encoding = ENC_OTHER;
	} else if (header_is(p, len, "Retry-After", &v, &vlen)) {
		/* delta-seconds only; an HTTP date falls back to backoff */
		if (vlen > 0 && vlen < sizeof tmp &&
		    strspn(v, "0123456789") >= vlen) {
			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			t->retry_after_s = vlen > 6
					       ? TRANSPORT_RETRY_AFTER_MAX_S
					       : strtol(tmp, NULL, 10);
		}
	} else if (header_is(p, len, "X-BS-Next-Challenge", &v, &vlen)) {
		if (challenge_parse(v, vlen, t->challenge)) {
			t->have_challenge = 1;
			t->challenge_bound = 0; /* until the status is known */
			t->got_challenge = 1;
		}
	}
	return len;
}

/* ---- setup ---- */

/* http:// or https://, a host, an optional port, nothing else. */
static int url_valid(const char *url)
{
	const char *host;
	size_t i, len = strlen(url);

	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else
		return 0;
	if (len > TRANSPORT_URL_MAX || !*host || *host == '/' || *host == ':')
		return 0;
	for (i = 0; url[i]; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' ||
		    c == '@' || c == '\\')
			return 0;
	}
	/* a path, if any, is "/" alone: the API lives at /v1/ */
	host = strchr(host, '/');
	return !host || strcmp(host, "/") == 0;
}

static int transport_setopts(struct transport *t,
			     const struct transport_options *o)
{
	CURL *c = t->curl;

	return curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) ||
	       curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->errbuf) ||
	       curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") ||
	       curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) ||
	       curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
				TRANSPORT_CONNECT_TIMEOUT_S) ||
	       curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT,
				TRANSPORT_LOW_SPEED_BYTES) ||
	       curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
				TRANSPORT_LOW_SPEED_TIME_S) ||
	       curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) ||
	       curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) ||
	       curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) ||
	       curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, transport_write_cb) ||
	       curl_easy_setopt(c, CURLOPT_WRITEDATA, t) ||
	       curl_easy_setopt(c, CURLOPT_HEADERFUNCTION,
				transport_header_cb) ||
	       curl_easy_setopt(c, CURLOPT_HEADERDATA, t) ||
	       (o->cacert && curl_easy_setopt(c, CURLOPT_CAINFO, o->cacert)) ||
	       (o->pin && curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, o->pin));
}

int transport_new(const struct transport_options *o, struct transport **out,
		  struct err *e)
{
	struct transport *t = NULL;
	size_t len;

	*out = NULL;
	if (!o->url || !url_valid(o->url)) {
		err_set(e, ERR_USAGE, "the server URL must look like "
			"https://HOST[:PORT] (or http:// on a trusted "
			"network)");
		return -1;
	}
	t = mem_calloc(1, sizeof *t);
	if (!t) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	len = strlen(o->url);
	memcpy(t->base, o->url, len + 1);
	if (len > 0 && t->base[len - 1] == '/')
		t->base[len - 1] = '\0';
	t->attempts = o->attempts ? o->attempts : TRANSPORT_ATTEMPTS;
	t->backoff_ms = o->backoff_ms ? o->backoff_ms : TRANSPORT_BACKOFF_MS;
	t->retry_after_s = -1;
	buf_init(&t->raw, TRANSPORT_MAX_BODY);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		err_set(e, ERR_INVALID, "cannot start libcurl");
		goto fail;
	}
	t->global = 1;
	t->curl = curl_easy_init();
	if (!t->curl || transport_setopts(t, o)) {
		err_set(e, ERR_INVALID, "cannot set up libcurl (is it built "
			"with TLS and pinned key support?)");
		goto fail;
	}
	*out = t;
	return 0;
fail:
	transport_free(t);
	return -1;
}

void transport_free(struct transport *t)
{
	if (!t)
		return;
	if (t->curl)
		curl_easy_cleanup(t->curl);
	if (t->global)
		curl_global_cleanup();
	buf_release(&t->raw);
	sodium_memzero(t->challenge, sizeof t->challenge);
	mem_free(t);
}

int transport_challenge_get(const struct transport *t,
			    uint8_t out[REQUEST_CHALLENGE_BYTES], int *bound)
{
	*bound = 0;
	if (!t->have_challenge)
		return 0;
	memcpy(out, t->challenge, REQUEST_CHALLENGE_BYTES);
	*bound = t->challenge_bound;
	return 1;
}

void transport_challenge_set(struct transport *t,
			     const uint8_t c[REQUEST_CHALLENGE_BYTES],
			     int bound)
{
	memcpy(t->challenge, c, REQUEST_CHALLENGE_BYTES);
	t->have_challenge = 1;
	t->challenge_bound = !!bound;
}

void transport_set_signer(struct transport *t,
			  const uint8_t pk[SIGN_PUBLIC_BYTES],
			  const uint8_t sk[SIGN_SECRET_BYTES])
{
	t->pk = pk;
	t->sk = sk;
}

void transport_reply_init(struct transport_reply *r)
{
	r->status = 0;
	buf_init(&r->body, TRANSPORT_MAX_BODY);
}

void transport_reply_release(struct transport_reply *r)
{
	buf_release(&r->body);
	r->status = 0;
}

uint64_t transport_bytes_sent(const struct transport *t)
{
	return t->sent;
}

uint64_t transport_bytes_received(const struct transport *t)
{
	return t->received;
}

uint64_t transport_requests(const struct transport *t)
{
	return t->requests;
}

/* ---- one try ---- */

/* The Authorization header of a signed request, appended to *list: one
 * header of base64url(device || challenge || signature), or, when the
 * challenge is bound to this device, of challenge || signature alone (the
 * server knows the device from the challenge): 107 characters instead of
 * 150, and about 100 bytes fewer than the three headers the server
 * also accepts (docs/API.md, "Request authentication"). */
static int transport_sign(struct transport *t, const char *method,
			  const char *target, const uint8_t *body, size_t len,
			  struct curl_slist **list, struct err *e)
{
	struct request_auth ra;
	uint8_t raw[SIGN_PUBLIC_BYTES + REQUEST_CHALLENGE_BYTES + SIGN_BYTES];
	char line[32 + sodium_base64_ENCODED_LEN(
			       sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	struct curl_slist *l;
	size_t n, key = t->challenge_bound ? 0 : SIGN_PUBLIC_BYTES;

	memset(&ra, 0, sizeof ra);
	ra.method = method;
	ra.path = target;
	hash_sha256(ra.body_hash, body, len, NULL, 0);
	memcpy(ra.challenge, t->challenge, REQUEST_CHALLENGE_BYTES);
	memcpy(ra.device, t->pk, SIGN_PUBLIC_BYTES);
	/* a challenge serves one request, whatever becomes of it */
	t->have_challenge = 0;
	t->challenge_bound = 0;
	memcpy(raw, t->pk, key);
	memcpy(raw + key, ra.challenge, REQUEST_CHALLENGE_BYTES);
	if (request_sign(&ra, t->sk, raw + key + REQUEST_CHALLENGE_BYTES) !=
	    BS_OK) {
		err_set(e, ERR_INVALID, "cannot sign the request to %s",
			target);
		return -1;
	}
	n = (size_t)snprintf(line, sizeof line, "Authorization: "
			     TRANSPORT_AUTH_SCHEME " ");
	sodium_bin2base64(line + n, sizeof line - n, raw,
			  key + REQUEST_CHALLENGE_BYTES + SIGN_BYTES,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (!(l = curl_slist_append(*list, line))) {
		err_set(e, ERR_INVALID, "out of memory");
		return -1;
	}
	*list = l;
	return 0;
}

static int transport_headers(int post, int compressed,
			     struct curl_slist **list)
{
	static const char *const always[] = {
		"Accept-Encoding: zstd",
		"Expect:", /* no 100-continue round trip on slow links */
		"Accept:", /* every byte counts on a 2G link */
	};
	struct curl_slist *l;
	size_t i;

	for (i = 0; i < sizeof always / sizeof always[0]; i++) {
		if (!(l = curl_slist_append(*list, always[i])))
			return -1;
		*list = l;
	}
	if (post) {
		if (!(l = curl_slist_append(*list, "Content-Type: "
					    TRANSPORT_CONTENT_TYPE)))
			return -1;
		*list = l;
	}
	if (compressed) {
		if (!(l = curl_slist_append(*list, "Content-Encoding: zstd")))
			return -1;
		*list = l;
	}
	return 0;
}

/* Sorts a libcurl failure: retry (and whether the request may have been
 * processed), or give up with e set. */
static enum transport_try transport_classify(struct transport *t,
					     CURLcode cc, int idempotent,
					     char *why, size_t whylen,
					     struct err *e)
{
	curl_off_t connect_us = 0;

	snprintf(why, whylen, "%s", t->errbuf[0] ? t->errbuf
			: curl_easy_strerror(cc));
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
		return TRY_AGAIN; /* nothing reached the server */
	case CURLE_OPERATION_TIMEDOUT:
		curl_easy_getinfo(t->curl, CURLINFO_CONNECT_TIME_T,
				  &connect_us);
		if (connect_us == 0 || idempotent)
			return TRY_AGAIN;
		err_set(e, ERR_UNREACHABLE, "the link to %s went silent during "
			"the request (%s)", t->base, why);
		return TRY_FAIL;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		if (idempotent)
			return TRY_AGAIN;
		err_set(e, ERR_UNREACHABLE, "the connection to %s broke "
			"during the request (%s)", t->base, why);
		return TRY_FAIL;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
		err_set(e, ERR_VERIFY, "the server's TLS certificate does not "
			"verify (%s); check --cacert and --pin", why);
		return TRY_FAIL;
	case CURLE_WRITE_ERROR:
		if (t->raw.status == BS_ELIMIT) {
			err_set(e, ERR_VERIFY, "the server's answer is larger "
				"than %u MiB", TRANSPORT_MAX_BODY >> 20);
			return TRY_FAIL;
		}
		break;
	default:
		break;
	}
	err_set(e, t->raw.status == BS_ENOMEM || cc == CURLE_OUT_OF_MEMORY
		? ERR_INVALID : ERR_UNREACHABLE,
		"cannot talk to %s (%s)", t->base, why);
	return TRY_FAIL;
}

/* Moves the received answer into reply, decompressing it when it came
 * compressed. */
static enum transport_try transport_decode(struct transport *t,
					   struct transport_reply *reply,
					   struct err *e)
{
	struct buf tmp;
	enum bs_status st;

	buf_reset(&reply->body);
	if (t->encoding == ENC_OTHER) {
		err_set(e, ERR_VERIFY, "the server answered in an encoding "
			"this branchsync does not know");
		return TRY_FAIL;
	}
	if (t->encoding == ENC_IDENTITY) {
		/* swap the buffers: no copy of a large page */
		tmp = reply->body;
		reply->body = t->raw;
		t->raw = tmp;
		return TRY_ANSWER;
	}
	st = t->encoding == ENC_ZSTD
		     ? zbuf_unzstd(t->raw.data, t->raw.len, &reply->body)
		     : zbuf_inflate(t->raw.data, t->raw.len, &reply->body);
	if (st == BS_OK)
		return TRY_ANSWER;
	if (st == BS_ENOMEM) {
		err_set(e, ERR_INVALID, "out of memory reading the answer");
		return TRY_FAIL;
	}
	err_set(e, ERR_VERIFY, st == BS_ELIMIT
		? "the server's answer decompresses beyond the 64 MiB cap"
		: "the server's compressed answer is corrupt");
	return TRY_FAIL;
}

/* One HTTP exchange: method base+target with body (already encoded). */
static enum transport_try transport_exchange(struct transport *t,
					     const char *method,
					     const char *target,
					     const uint8_t *body, size_t len,
					     int compressed, unsigned flags,
					     struct transport_reply *reply,
					     char *why, size_t whylen,
					     struct err *e)
{
	char url[TRANSPORT_URL_MAX + REQUEST_PATH_MAX + 1];
	struct curl_slist *headers = NULL;
	int post = strcmp(method, "POST") == 0;
	enum transport_try rc = TRY_FAIL;
	curl_off_t up = 0, down = 0;
	CURLcode cc;

	snprintf(url, sizeof url, "%s%s", t->base, target);
	buf_reset(&t->raw);
	t->errbuf[0] = '\0';
	t->encoding = ENC_IDENTITY;
	t->retry_after_s = -1;
	t->got_challenge = 0;
	if (transport_headers(post, compressed, &headers)) {
		err_set(e, ERR_INVALID, "out of memory");
		goto cleanup;
	}
	if ((flags & TRANSPORT_SIGNED) &&
	    transport_sign(t, method, target, body, len, &headers, e))
		goto cleanup;
	if (curl_easy_setopt(t->curl, CURLOPT_URL, url) ||
	    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, headers) ||
	    (post ? curl_easy_setopt(t->curl, CURLOPT_POST, 1L) ||
		    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, body) ||
		    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				     (curl_off_t)len)
		  : curl_easy_setopt(t->curl, CURLOPT_HTTPGET, 1L))) {
		err_set(e, ERR_INVALID, "cannot set up the request to %s",
			target);
		goto cleanup;
	}
	cc = curl_easy_perform(t->curl);
	t->requests++;
	curl_easy_getinfo(t->curl, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(t->curl, CURLINFO_SIZE_DOWNLOAD_T, &down);
	t->sent += (uint64_t)(up > 0 ? up : 0);
	t->received += (uint64_t)(down > 0 ? down : 0);
	if (cc != CURLE_OK) {
		rc = transport_classify(t, cc, !!(flags & TRANSPORT_IDEMPOTENT),
					why, whylen, e);
		goto cleanup;
	}
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &reply->status);
	/* the server binds the next challenge to the key whose signature
	 * verified; a 2xx answer to a signed request is sure to be one (an
	 * answer without a challenge leaves the one held as it was) */
	if (t->got_challenge)
		t->challenge_bound = (flags & TRANSPORT_SIGNED) &&
				     reply->status >= 200 &&
				     reply->status < 300;
	rc = transport_decode(t, reply, e);
cleanup:
	/* the handle must not keep pointers to this request's memory */
	curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	return rc;
}

/* A challenge for the next signed request, unless one is held. */
static enum transport_try transport_challenge(struct transport *t,
					      struct transport_reply *reply,
					      char *why, size_t whylen,
					      struct err *e)
{
	enum transport_try rc;

	if (t->have_challenge)
		return TRY_ANSWER;
	rc = transport_exchange(t, "GET", "/v1/challenge", NULL, 0, 0,
				TRANSPORT_IDEMPOTENT, reply, why, whylen, e);
	if (rc != TRY_ANSWER || reply->status != 200 || t->have_challenge)
		return rc;
	/* no header: the body is the challenge (unbound: no one signed) */
	if (challenge_parse((const char *)reply->body.data, reply->body.len,
			    t->challenge)) {
		t->have_challenge = 1;
		t->challenge_bound = 0;
		return TRY_ANSWER;
	}
	err_set(e, ERR_VERIFY, "the server's challenge is malformed");
	return TRY_FAIL;
}

/* ---- the request loop ---- */

static int status_transient(long status, int idempotent)
{
	if (status == 408 || status == 429 || status == 503)
		return 1;
	return idempotent && (status == 500 || status == 502 || status == 504);
}

static void transport_sleep_ms(uint64_t ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Waits before try `attempt` + 1: backoff doubling from backoff_ms, with
 * "equal jitter" (half fixed, half random) so that many devices coming
 * back after an outage do not hit the server in step; or what the
 * server's Retry-After asked. */
static void transport_backoff(const struct transport *t, unsigned attempt)
{
	uint64_t d = (uint64_t)t->backoff_ms
		     << (attempt > 10 ? 10 : attempt - 1);
	long ra = t->retry_after_s;

	d = d / 2 + randombytes_uniform((uint32_t)(d / 2 + 1));
	if (ra >= 0)
		d = (uint64_t)(ra > TRANSPORT_RETRY_AFTER_MAX_S
			       ? TRANSPORT_RETRY_AFTER_MAX_S : ra) * 1000;
	transport_sleep_ms(d);
}

/* 1 if a 401 answer says the challenge was not accepted (expired, used,
 * unknown), which a fresh challenge cures. */
static int challenge_refused(const struct transport_reply *r)
{
	static const char needle[] = "challenge";
	size_t n = sizeof needle - 1, i;

	if (r->status != 401)
		return 0;
	for (i = 0; i + n <= r->body.len; i++)
		if (memcmp(r->body.data + i, needle, n) == 0)
			return 1;
	return 0;
}

int transport_request(struct transport *t, const char *method,
		      const char *target, const uint8_t *body, size_t len,
		      unsigned flags, struct transport_reply *reply,
		      struct err *e)
{
	int idem = !!(flags & TRANSPORT_IDEMPOTENT), fresh = 0, rc = -1;
	unsigned attempt;
	struct buf z;
	const uint8_t *send = body;
	size_t send_len = len;
	char why[CURL_ERROR_SIZE + 64] = "";
	enum transport_try tr;

	buf_init(&z, len + 1024);
	reply->status = 0;
	if ((flags & TRANSPORT_SIGNED) && (!t->pk || !t->sk)) {
		err_set(e, ERR_INVALID, "no device key to sign requests with");
		goto cleanup;
	}
	if (strlen(target) > REQUEST_PATH_MAX) {
		err_set(e, ERR_INVALID, "the request target is too long");
		goto cleanup;
	}
	/* compressed only when it pays, its header line included: a small
	 * push (one edit: 197 bytes, 185 compressed) is cheaper plain */
	if (len > 0 && zbuf_zstd(body, len, &z) == BS_OK &&
	    z.len + TRANSPORT_ZSTD_HEADER < len) {
		send = z.data;
		send_len = z.len;
	}
	for (attempt = 1;; attempt++) {
		tr = TRY_ANSWER;
		if (flags & TRANSPORT_SIGNED)
			tr = transport_challenge(t, reply, why, sizeof why, e);
		/* without a challenge, the reply is /v1/challenge's answer */
		if (tr == TRY_ANSWER &&
		    (!(flags & TRANSPORT_SIGNED) || t->have_challenge))
			tr = transport_exchange(t, method, target, send,
						send_len, send != body, flags,
						reply, why, sizeof why, e);
		if (tr == TRY_FAIL)
			goto cleanup;
		if (tr == TRY_ANSWER) {
			if ((flags & TRANSPORT_SIGNED) && !fresh &&
			    challenge_refused(reply)) {
				fresh = 1; /* once, at once, with a new one */
				attempt--;
				continue;
			}
			if (!status_transient(reply->status, idem) ||
			    attempt >= t->attempts)
				break;
			snprintf(why, sizeof why, "HTTP status %ld",
				 reply->status);
		}
		if (attempt >= t->attempts) {
			err_set(e, ERR_UNREACHABLE, "cannot reach %s after %u "
				"tries (%s)", t->base, attempt, why);
			goto cleanup;
		}
		transport_backoff(t, attempt);
	}
	rc = 0;
cleanup:
	buf_release(&z);
	return rc;
}

void transport_reply_message(const struct transport_reply *r, char *out,
			     size_t n)
{
	static const char key[] = "\"error\"";
	const char *p = (const char *)r->body.data, *end;
	size_t k = sizeof key - 1, o = 0;

	snprintf(out, n, "HTTP status %ld", r->status);
	if (!p)
		return;
	for (end = p + r->body.len; (size_t)(end - p) >= k; p++)
		if (memcmp(p, key, k) == 0)
			break;
	if ((size_t)(end - p) < k)
		return;
	for (p += k; p < end && (*p == ' ' || *p == ':'); p++)
		;
	if (p >= end || *p++ != '"')
		return;
	for (; p < end && *p != '"' && o + 1 < n; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\\' && p + 1 < end) {
			c = (unsigned char)*++p;
			if (c == 'u') {
				c = '?';
				p += end - p > 4 ? 4 : end - p - 1;
			} else if (c != '"' && c != '\\' && c != '/') {
				continue;
			}
		}
		if (c >= 0x20 && c != 0x7f)
			out[o++] = (char)c;
	}
	if (o > 0)
		out[o] = '\0';
}

/* ---- pins ---- */

int transport_pin_parse(const char *in, char out[TRANSPORT_PIN_MAX],
			struct err *e)
{
	uint8_t raw[HASH_BYTES];
	char b64[sodium_base64_ENCODED_LEN(HASH_BYTES,
					   sodium_base64_VARIANT_ORIGINAL)];
	size_t len = strlen(in), got = 0;
	int ok;

	if (strncmp(in, "sha256//", 8) == 0) {
		in += 8;
		len -= 8;
	}
	if (len == 2 * HASH_BYTES)
		ok = sodium_hex2bin(raw, sizeof raw, in, len, NULL, &got,
				    NULL) == 0;
	else
		ok = sodium_base642bin(raw, sizeof raw, in, len, NULL, &got,
				       NULL,
				       sodium_base64_VARIANT_ORIGINAL) == 0;
	if (!ok || got != HASH_BYTES) {
		err_set(e, ERR_USAGE, "--pin takes the SHA-256 of the server's "
			"public key as 64 hex digits or base64");
		return -1;
	}
	sodium_bin2base64(b64, sizeof b64, raw, sizeof raw,
			  sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, TRANSPORT_PIN_MAX, "sha256//%s", b64);
	return 0;
}
