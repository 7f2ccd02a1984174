/* proof.h - the wire encoding of Merkle proofs (protocol/FORMAT.md, section
 * "Proof encoding"): a kind byte, two varints, a count and the hashes.
 * Only the codec: the proofs are made and checked by merkle.h. */
#ifndef BS_PROOF_H
#define BS_PROOF_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "merkle.h"

enum proof_kind {
	PROOF_INCLUSION = 1,   /* first = leaf index, second = tree size */
	PROOF_CONSISTENCY = 2, /* first = old size, second = new size */
};

/* Kind byte, two varints, count byte, the hashes. */
#define PROOF_MAX_ENCODED (1 + 2 * 10 + 1 + MERKLE_MAX_PROOF * HASH_BYTES)

/* A decoded proof; fixed size, so decoding never allocates. path is what
 * merkle_verify_inclusion / merkle_verify_consistency take, with first and
 * second as their index and sizes. */
struct proof {
	enum proof_kind kind;
	uint64_t first;
	uint64_t second;
	struct merkle_path path;
};

/* Appends the encoding of p to b and returns b->status (BS_ELIMIT or
 * BS_ENOMEM from the buffer). Refuses, leaving b untouched, what the
 * decoder would refuse: BS_EINVALID for an unknown kind, impossible
 * index or sizes, or a count other than the one the sizes imply;
 * BS_ELIMIT for a count over MERKLE_MAX_PROOF or a size over
 * MERKLE_MAX_SIZE. */
enum bs_status proof_encode(const struct proof *p, struct buf *b);

/* Strict decoder of one proof taking all len bytes. Fails with
 * BS_EINVALID (unknown kind; index >= size or old size > new size; count
 * not the one the sizes imply), BS_ELIMIT (count > MERKLE_MAX_PROOF, size
 * > MERKLE_MAX_SIZE), BS_EOVERLONG, BS_ETRUNCATED or BS_ETRAILING; *out is
 * zeroed on failure. Allocates nothing. */
enum bs_status proof_decode(const uint8_t *in, size_t len,
			    struct proof *out /* OUT */)
    __attribute__((warn_unused_result));

#endif
