/* changeset.h - the signed change set: a small envelope of our own whose body
 * is the exact bytes of an SQLite session changeset (opaque at this layer).
 * Encoding, signing input and limits: protocol/FORMAT.md, "Change sets".
 * Not for parsing the body: shared/ does that with SQLite's own iterator,
 * after this module has checked its hash and signature. */
#ifndef BS_CHANGESET_H
#define BS_CHANGESET_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "sign.h"

#define CHANGESET_VERSION 1
#define CHANGESET_SCOPE_MAX 64
#define CHANGESET_MAX_BODY (8u << 20)
/* envelope upper bound: magic, version, key, varints, hashes, scope */
#define CHANGESET_ENVELOPE_MAX 256
#define CHANGESET_MAX_ENCODED \
	(CHANGESET_ENVELOPE_MAX + SIGN_BYTES + CHANGESET_MAX_BODY)

struct changeset_envelope {
	uint8_t author[SIGN_PUBLIC_BYTES];
	uint64_t seq;                    /* 1, 2, 3, ... per author */
	uint8_t prev[HASH_BYTES];        /* id of seq-1; zeros when seq == 1 */
	uint64_t hlc;                    /* packed hybrid logical clock */
	char scope[CHANGESET_SCOPE_MAX + 1];
	uint64_t schema_version;
	uint64_t body_len;
	uint8_t body_hash[HASH_BYTES];   /* SHA-256 of the body */
};

/* A decoded signed change set. Pointers point into the caller's input,
 * which must outlive this struct; nothing here is allocated. */
struct changeset {
	struct changeset_envelope env;
	const uint8_t *env_bytes;
	size_t env_len;
	const uint8_t *sig;              /* SIGN_BYTES */
	const uint8_t *body;
	size_t body_len;
	size_t encoded_len;              /* env + sig + body */
	uint8_t id[HASH_BYTES];          /* SHA-256(envelope || signature) */
};

/* 1 if `s` is a valid scope or row id: 1..64 of [A-Za-z0-9_.:-]. */
int changeset_scope_valid(const char *s, size_t len);

/* Appends the canonical envelope encoding. Fails with BS_EINVALID for a
 * field the format forbids (seq 0, bad scope, non-zero prev at seq 1, ...). */
enum bs_status changeset_encode_envelope(const struct changeset_envelope *env,
					 struct buf *out);

/* Fills env->body_len and env->body_hash from `body`, signs, and appends
 * envelope || signature || body to `out`. Writes the change set id. */
enum bs_status changeset_sign(struct changeset_envelope *env,
			      const uint8_t *body, size_t body_len,
			      const uint8_t sk[SIGN_SECRET_BYTES],
			      struct buf *out, uint8_t id[HASH_BYTES] /* OUT */);

/* Strictly decodes exactly one signed change set occupying all of p..p+len
 * and checks the body hash (BS_EHASH). Does NOT check the signature. */
enum bs_status changeset_decode(const uint8_t *p, size_t len,
				struct changeset *out /* OUT */)
	__attribute__((warn_unused_result));

/* Checks the author's signature over the envelope (BS_ESIGNATURE). */
enum bs_status changeset_verify(const struct changeset *cs)
	__attribute__((warn_unused_result));

#endif
