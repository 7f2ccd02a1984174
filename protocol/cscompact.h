/* cscompact.h - the compact form of a signed change set, as its author
 * pushes it: the envelope without what the server knows already (the
 * author, who signed the request; the previous id, which the server logged
 * or which came just before in the same push; the body's length and hash,
 * which the body gives). The server expands it back into the exact signed
 * bytes before anything else looks at it, so signatures, ids and the log
 * are those of the full form. Layout: protocol/FORMAT.md, "Compact change
 * sets". Not a format for storage or for anyone but the author. */
#ifndef BS_CSCOMPACT_H
#define BS_CSCOMPACT_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "changeset.h"

/* Appends the compact form of cs (a decoded change set) to out; returns
 * out->status. */
enum bs_status cscompact_encode(const struct changeset *cs, struct buf *out);

/* The sequence number of a compact change set, from its first bytes:
 * BS_ETRUNCATED, BS_EMAGIC, BS_EVERSION, BS_EOVERLONG, or BS_EINVALID for
 * 0. Allocates nothing. */
enum bs_status cscompact_seq(const uint8_t *p, size_t len,
			     uint64_t *seq /* OUT */)
	__attribute__((warn_unused_result));

/* Appends to out the full signed change set that compact form p stands
 * for, given its author and the id of its predecessor (zeros for seq 1).
 * Strict: every field as changeset_decode would check it, the body 1 byte
 * to CHANGESET_MAX_BODY; on failure out is left as it was. The result
 * still has to be decoded and verified like any change set. */
enum bs_status cscompact_expand(const uint8_t *p, size_t len,
				const uint8_t author[SIGN_PUBLIC_BYTES],
				const uint8_t prev[HASH_BYTES],
				struct buf *out)
	__attribute__((warn_unused_result));

#endif
