/* checkpoint.h - signed tree heads of the server's log, and the receipts a
 * server returns for an accepted change set. Encodings and signing inputs:
 * protocol/FORMAT.md, "Checkpoints" and "Receipts". Not for proofs (see
 * proof.h) nor for the tree itself (merkle.h). */
#ifndef BS_CHECKPOINT_H
#define BS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "sign.h"

#define CHECKPOINT_VERSION 1
#define CHECKPOINT_ORIGIN_MAX 128
/* magic, version, origin blob, size, root, time, signature */
#define CHECKPOINT_SIGNED_MAX (5 + 2 + CHECKPOINT_ORIGIN_MAX + 10 + HASH_BYTES + 8 + SIGN_BYTES)
#define RECEIPT_VERSION 1
#define RECEIPT_SIGNED_MAX (5 + HASH_BYTES + 10 + 2 + CHECKPOINT_SIGNED_MAX + SIGN_BYTES)

struct checkpoint {
	char origin[CHECKPOINT_ORIGIN_MAX + 1]; /* the log's name (district) */
	uint64_t size;                         /* leaves in the tree */
	uint8_t root[HASH_BYTES];
	uint64_t time_ms;                      /* server clock, Unix ms */
	uint8_t sig[SIGN_BYTES];
	/* The exact signed bytes, kept so verification never re-serialises;
	 * filled by checkpoint_sign and checkpoint_decode. */
	uint8_t raw[CHECKPOINT_SIGNED_MAX];
	size_t raw_len;
};

struct receipt {
	uint8_t changeset_id[HASH_BYTES];
	uint64_t index;                        /* position in the log */
	struct checkpoint checkpoint;          /* a tree that includes index */
	uint8_t sig[SIGN_BYTES];
	uint8_t raw[RECEIPT_SIGNED_MAX];       /* exact signed bytes */
	size_t raw_len;
};

/* Appends the unsigned encoding (the signing input's body); cp->raw is not
 * touched. */
enum bs_status checkpoint_encode(const struct checkpoint *cp, struct buf *out);
/* Signs cp in place (fills cp->sig) and appends encoding || signature. */
enum bs_status checkpoint_sign(struct checkpoint *cp,
			       const uint8_t sk[SIGN_SECRET_BYTES],
			       struct buf *out);
/* Decodes exactly one signed checkpoint (encoding || signature). */
enum bs_status checkpoint_decode(const uint8_t *p, size_t len,
				 struct checkpoint *out /* OUT */)
	__attribute__((warn_unused_result));
enum bs_status checkpoint_verify(const struct checkpoint *cp,
				 const uint8_t pk[SIGN_PUBLIC_BYTES])
	__attribute__((warn_unused_result));

enum bs_status receipt_sign(struct receipt *rc,
			    const uint8_t sk[SIGN_SECRET_BYTES],
			    struct buf *out);
enum bs_status receipt_decode(const uint8_t *p, size_t len,
			      struct receipt *out /* OUT */)
	__attribute__((warn_unused_result));
/* Verifies the receipt's own signature and its embedded checkpoint's, and
 * that the index lies inside the checkpoint's tree (BS_EINVALID if not). */
enum bs_status receipt_verify(const struct receipt *rc,
			      const uint8_t pk[SIGN_PUBLIC_BYTES])
	__attribute__((warn_unused_result));

#endif
