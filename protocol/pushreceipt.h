/* pushreceipt.h - the server's one signed answer to a whole push: the
 * checkpoint that covers it, a hash binding the ids of the change sets
 * pushed (in order), and each one's verdict (accepted or duplicate with
 * its log index, refused with its reason, and a log index when the
 * refusal was logged). One signature for up to 1000 sets instead of one
 * receipt each: on a 2G link that is most of a push's answer. The client
 * keeps it as its proof of what the server promised. Encoding and signing
 * input: protocol/FORMAT.md, "Push receipts". Not for per-set receipts
 * (checkpoint.h) nor for the verdict frames of the older answer form
 * (verdict.h). The wire form leaves out the ids hash, which the pusher
 * knows. */
#ifndef BS_PUSHRECEIPT_H
#define BS_PUSHRECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "checkpoint.h"
#include "verdict.h"

#define PUSHRECEIPT_VERSION 1
/* As many as a push may carry (docs/API.md). */
#define PUSHRECEIPT_MAX_SETS 1000
/* magic, version, checkpoint blob, count, ids hash, per set a code, an
 * index and a reason blob, signature */
#define PUSHRECEIPT_SIGNED_MAX \
	(5 + 2 + CHECKPOINT_SIGNED_MAX + 2 + HASH_BYTES + \
	 PUSHRECEIPT_MAX_SETS * (1 + 10 + 2 + VERDICT_REASON_MAX) + SIGN_BYTES)

struct pushreceipt_item {
	enum verdict_status status;
	int logged;             /* has a log index: accepted, duplicate, or a
				 * logged refusal */
	uint64_t index;         /* when logged: its position in the log */
	char reason[VERDICT_REASON_MAX + 1]; /* refused: why; else "" */
};

struct pushreceipt {
	struct checkpoint checkpoint;  /* signed; its tree holds every index */
	uint8_t ids_hash[HASH_BYTES];  /* pushreceipt_ids_hash of the sets */
	size_t count;
	struct pushreceipt_item *items; /* count of them */
	uint8_t sig[SIGN_BYTES];
	/* Set by decode: the exact signed bytes (everything before the
	 * signature), pointing into the decoded input, which must outlive
	 * verification. */
	const uint8_t *signed_bytes;
	size_t signed_len;
};

/* SHA-256 of the n ids concatenated in push order. */
void pushreceipt_ids_hash(const uint8_t (*ids)[HASH_BYTES], size_t n,
			  uint8_t out[HASH_BYTES]);

/* Appends the signed encoding of pr (its checkpoint already signed) to
 * out. BS_EINVALID for a count of 0 or over the maximum, an accepted or
 * duplicate item not logged, a logged index not inside the checkpoint's
 * tree, an accepted item with a reason, a refused one without, or a
 * reason with control bytes; BS_ESTATE if the checkpoint is not signed.
 * On failure out is left as it was. pr->sig is not touched. */
enum bs_status pushreceipt_sign(const struct pushreceipt *pr,
				const uint8_t sk[SIGN_SECRET_BYTES],
				struct buf *out);

/* Decodes strictly (FORMAT.md steps); items is allocated (mem_calloc)
 * after the count is checked against the maximum and the bytes left, and
 * released by pushreceipt_release, also after a failure. Does not verify
 * signatures. */
enum bs_status pushreceipt_decode(const uint8_t *p, size_t len,
				  struct pushreceipt *out /* OUT */)
	__attribute__((warn_unused_result));

/* The checkpoint's signature and the receipt's own (over signed_bytes)
 * under pk, both the log's key: BS_ESIGNATURE. Indices were checked
 * against the tree by decode. */
enum bs_status pushreceipt_verify(const struct pushreceipt *pr,
				  const uint8_t pk[SIGN_PUBLIC_BYTES])
	__attribute__((warn_unused_result));

void pushreceipt_release(struct pushreceipt *pr);

/* The wire form (FORMAT.md, "Push receipts", "Wire form"): the signed
 * encoding without the ids hash, which the receiver knows already (it
 * pushed the sets) and puts back before decoding; the signature still
 * covers it. pack: appends the wire form of the signed receipt p to out.
 * unpack: appends the signed receipt rebuilt from wire form p and
 * ids_hash. Both check magic, version, the checkpoint blob's length and
 * the count's varint, failing as pushreceipt_decode would there (and
 * pack with BS_ETRUNCATED if the hash is cut short; unpack with BS_ELIMIT
 * over PUSHRECEIPT_WIRE_MAX); nothing else is checked until the rebuilt
 * bytes are decoded. On failure out is left as it was. */
#define PUSHRECEIPT_WIRE_MAX (PUSHRECEIPT_SIGNED_MAX - HASH_BYTES)
enum bs_status pushreceipt_wire_pack(const uint8_t *p, size_t len,
				     struct buf *out);
enum bs_status pushreceipt_wire_unpack(const uint8_t *p, size_t len,
				       const uint8_t ids_hash[HASH_BYTES],
				       struct buf *out);

#endif
