/* logentry.h - one entry of the server's append-only log: what kind of
 * object it holds (a change set, an enrollment, a revocation), the server's
 * verdict on it, and the object's exact signed bytes. The Merkle leaf of an
 * entry is SHA-256(0x00 || entry encoding). Encoding: protocol/FORMAT.md,
 * "Log entries". */
#ifndef BS_LOGENTRY_H
#define BS_LOGENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "changeset.h"

#define LOGENTRY_VERSION 1
#define LOGENTRY_REASON_MAX 256
#define LOGENTRY_MAX (5 + 2 + 3 + LOGENTRY_REASON_MAX + 5 + CHANGESET_MAX_ENCODED)

enum logentry_kind {
	LOGENTRY_CHANGESET = 1,
	LOGENTRY_ENROLLMENT = 2,
	LOGENTRY_REVOCATION = 3,
};

enum logentry_verdict {
	LOGENTRY_ACCEPTED = 0, /* applied to the consolidated records */
	LOGENTRY_REFUSED = 1,  /* kept as evidence, not applied */
};

/* A decoded entry; reason and payload point into the caller's input. */
struct logentry {
	enum logentry_kind kind;
	enum logentry_verdict verdict;
	const char *reason;  /* not NUL-terminated; reason_len bytes */
	size_t reason_len;
	const uint8_t *payload;
	size_t payload_len;
};

/* Appends the encoding. Only change sets may be refused, and a refused
 * entry must say why (BS_EINVALID otherwise). */
enum bs_status logentry_encode(const struct logentry *le, struct buf *out);
enum bs_status logentry_decode(const uint8_t *p, size_t len,
			       struct logentry *out /* OUT */)
	__attribute__((warn_unused_result));
/* The Merkle leaf hash of an encoded entry. */
void logentry_leaf_hash(const uint8_t *entry, size_t len,
			uint8_t out[HASH_BYTES] /* OUT */);

#endif
