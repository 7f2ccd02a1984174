/* request.h - how a device signs an HTTP request to the server: over the
 * method, the path with its query, the SHA-256 of the body, a one-time
 * challenge the server issued, and the device's key. The challenge makes a
 * captured request useless a second time, and nothing depends on the
 * device's own clock. Signing input: protocol/FORMAT.md, "Requests". */
#ifndef BS_REQUEST_H
#define BS_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "sign.h"

/* 128 random bits: a one-time nonce that lives ten minutes needs no more,
 * and every byte is carried on every request and answer. */
#define REQUEST_CHALLENGE_BYTES 16
#define REQUEST_METHOD_MAX 16
#define REQUEST_PATH_MAX 2048

struct request_auth {
	const char *method;          /* "GET", "POST" */
	const char *path;            /* "/v1/pull?after=12" as sent */
	uint8_t body_hash[HASH_BYTES];
	uint8_t challenge[REQUEST_CHALLENGE_BYTES];
	uint8_t device[SIGN_PUBLIC_BYTES];
};

enum bs_status request_sign(const struct request_auth *ra,
			    const uint8_t sk[SIGN_SECRET_BYTES],
			    uint8_t sig[SIGN_BYTES] /* OUT */);
enum bs_status request_verify(const struct request_auth *ra,
			      const uint8_t sig[SIGN_BYTES])
	__attribute__((warn_unused_result));

#endif
