/* statedigest.h - the server's signed statement of the canonical digest of
 * its consolidated records at a given log size, computed from its database
 * as it is at that moment. An auditor replays the log and compares.
 * Encoding: protocol/FORMAT.md, "State digests". */
#ifndef BS_STATEDIGEST_H
#define BS_STATEDIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "checkpoint.h"

#define STATEDIGEST_SIGNED_MAX (5 + 2 + CHECKPOINT_ORIGIN_MAX + 10 + HASH_BYTES + 8 + SIGN_BYTES)

struct statedigest {
	char origin[CHECKPOINT_ORIGIN_MAX + 1];
	uint64_t log_size;          /* entries applied when it was computed */
	uint8_t digest[HASH_BYTES]; /* shared/digest.c over the records */
	uint64_t time_ms;
	uint8_t sig[SIGN_BYTES];
};

enum bs_status statedigest_sign(struct statedigest *sd,
				const uint8_t sk[SIGN_SECRET_BYTES],
				struct buf *out);
/* Decodes exactly one signed statement and verifies it against pk. */
enum bs_status statedigest_open(const uint8_t *p, size_t len,
				const uint8_t pk[SIGN_PUBLIC_BYTES],
				struct statedigest *out /* OUT */)
	__attribute__((warn_unused_result));

#endif
