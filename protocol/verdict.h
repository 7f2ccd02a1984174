/* verdict.h - the server's answer for one pushed change set: accepted (with
 * its receipt), duplicate (with the original receipt), or refused (with a
 * reason, and a receipt when the refusal itself was logged as evidence, so
 * the device's chain goes on). Encoding: protocol/FORMAT.md, "Verdicts". */
#ifndef BS_VERDICT_H
#define BS_VERDICT_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "checkpoint.h"

#define VERDICT_REASON_MAX 256

enum verdict_status {
	VERDICT_ACCEPTED = 0,
	VERDICT_DUPLICATE = 1,
	VERDICT_REFUSED = 2,
};

struct verdict {
	enum verdict_status status;
	uint8_t changeset_id[HASH_BYTES];
	char reason[VERDICT_REASON_MAX + 1];
	const uint8_t *receipt;   /* signed receipt bytes, or NULL */
	size_t receipt_len;
};

enum bs_status verdict_encode(const struct verdict *v, struct buf *out);
/* receipt points into p. Accepted and duplicate verdicts must carry a
 * receipt (BS_EINVALID otherwise). */
enum bs_status verdict_decode(const uint8_t *p, size_t len,
			      struct verdict *out /* OUT */)
	__attribute__((warn_unused_result));

#endif
