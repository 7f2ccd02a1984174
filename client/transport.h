/* transport.h - branchsync's HTTP client for the district server over
 * libcurl (docs/SYNC.md, "Transport"): one connection kept alive for a
 * whole sync, TLS verified (optionally against a CA file or a pinned key),
 * deflate both ways, bodies capped, request signing with one-time
 * challenges (docs/API.md, "Request authentication"), and retries with
 * backoff on transient failures. It knows nothing of what the bodies mean:
 * enroll.c and sync*.c do. */
#ifndef BS_TRANSPORT_H
#define BS_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "request.h"
#include "sign.h"

/* Largest answer body we hold, before and after inflating. */
#define TRANSPORT_MAX_BODY (64u << 20)
/* Tries per request before giving up as unreachable. */
#define TRANSPORT_ATTEMPTS 5
/* The first retry waits about this long; each next one twice as long. */
#define TRANSPORT_BACKOFF_MS 500
/* A Retry-After longer than this is cut to it. */
#define TRANSPORT_RETRY_AFTER_MAX_S 60
/* Longest base URL we take. */
#define TRANSPORT_URL_MAX 1024
/* Length of the "sha256//" + base64 pin form. */
#define TRANSPORT_PIN_MAX 64

struct transport;

struct transport_options {
	const char *url;        /* base: "https://host[:port][/prefix]" */
	const char *cacert;     /* CA bundle (PEM) or NULL: the system's */
	const char *pin;        /* "sha256//BASE64" or NULL */
	unsigned attempts;      /* 0: TRANSPORT_ATTEMPTS */
	unsigned backoff_ms;    /* 0: TRANSPORT_BACKOFF_MS */
};

/* Request flags. */
enum {
	TRANSPORT_SIGNED = 1,     /* sign with the device key and a challenge */
	TRANSPORT_IDEMPOTENT = 2, /* safe to send again after an unclear end */
};

/* One answer: the HTTP status and the body, inflated. */
struct transport_reply {
	long status;
	struct buf body;          /* capped at TRANSPORT_MAX_BODY */
};

/* Checks the URL (http or https, no query, no fragment) and prepares one
 * libcurl handle. Allocates *out; free with transport_free. Fails with
 * ERR_USAGE for a bad URL, ERR_INVALID when libcurl cannot start. */
int transport_new(const struct transport_options *o,
		  struct transport **out /* OUT */, struct err *e);
void transport_free(struct transport *t);

/* The challenge the transport holds for its next signed request, so a
 * later run can start with it instead of asking for one (it is one-time and
 * worthless without the device's key), and whether the server bound it to
 * this device (then requests leave the key out). get: 1, the bytes and
 * *bound if one is held, else 0. set: hands one to the transport; a stale
 * one, or one wrongly taken for bound, costs one retry (the server refuses
 * it, the transport fetches a fresh one). */
int transport_challenge_get(const struct transport *t,
			    uint8_t out[REQUEST_CHALLENGE_BYTES] /* OUT */,
			    int *bound /* OUT */);
void transport_challenge_set(struct transport *t,
			     const uint8_t c[REQUEST_CHALLENGE_BYTES],
			     int bound);

/* Signed requests use this key pair; both must outlive t. */
void transport_set_signer(struct transport *t,
			  const uint8_t pk[SIGN_PUBLIC_BYTES],
			  const uint8_t sk[SIGN_SECRET_BYTES]);

void transport_reply_init(struct transport_reply *r);
void transport_reply_release(struct transport_reply *r);

/*
 * Sends METHOD base+target ("/v1/pull?after=3", exactly as signed) with
 * an optional body (a frame stream: sent deflated when that is smaller),
 * and fills *reply with the final answer. Retries up to the attempt budget
 * with exponential backoff and jitter (honouring Retry-After) on connection
 * failures, timeouts and 408, 429, 503 answers, and, for idempotent
 * requests, on 500, 502, 504 and a connection lost mid-request. A 401 about
 * the challenge is retried once at once with a fresh challenge.
 *
 * Returns 0 when the server answered with anything that is not retried, or
 * was retried to the end of the budget (reply->status says which): callers
 * judge statuses. Returns -1 with ERR_UNREACHABLE when no answer came at
 * all, ERR_VERIFY when the server's TLS certificate or pinned key does not
 * verify or its answer is not decodable, ERR_INVALID for local failures
 * (out of memory, an answer over the cap).
 */
int transport_request(struct transport *t, const char *method,
		      const char *target, const uint8_t *body, size_t len,
		      unsigned flags, struct transport_reply *reply,
		      struct err *e);

/* Writes the sentence of a JSON error answer ({"error": "..."}) into out
 * (at most n - 1 bytes, control characters dropped), or "HTTP status N"
 * when the body holds none. */
void transport_reply_message(const struct transport_reply *r, char *out,
			     size_t n);

/* Body bytes sent and received on the wire (compressed), every attempt. */
uint64_t transport_bytes_sent(const struct transport *t);
uint64_t transport_bytes_received(const struct transport *t);
/* HTTP exchanges tried, answered or not. */
uint64_t transport_requests(const struct transport *t);

/* Normalises a --pin value (64 hex digits, 44 base64 characters, or
 * "sha256//" and base64) into out as "sha256//BASE64". Returns 0, or -1
 * with ERR_USAGE. */
int transport_pin_parse(const char *in, char out[TRANSPORT_PIN_MAX],
			struct err *e);

#endif
