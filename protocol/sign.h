/* sign.h - domain-separated pure Ed25519 (protocol/FORMAT.md, "Signatures").
 * Every signed object kind has its own context label; the signed message is
 * the label's ASCII bytes, one 0x00 byte, then the object's exact encoding,
 * so a signature made for one kind can never be passed off as another.
 * Not for key storage: keys are handled in shared/keystore. */
#ifndef BS_SIGN_H
#define BS_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"

#define SIGN_PUBLIC_BYTES 32
#define SIGN_SECRET_BYTES 64 /* libsodium's seed || public key form */
#define SIGN_BYTES 64
#define HASH_BYTES 32

enum sign_kind {
	SIGN_CHANGESET,
	SIGN_CHECKPOINT,
	SIGN_RECEIPT,
	SIGN_ENROLLMENT,
	SIGN_REVOCATION,
	SIGN_REQUEST,
	SIGN_DIGEST,
	SIGN_PUSHRECEIPT,
};

/* Calls sodium_init() and reports whether libsodium is usable. Safe to call
 * any number of times from any thread (libsodium makes it so). */
enum bs_status sign_init(void) __attribute__((warn_unused_result));

/* The label for a kind, e.g. "branchsync/changeset/v1". */
const char *sign_label(enum sign_kind kind);

enum bs_status sign_detached(enum sign_kind kind, const uint8_t *msg,
			     size_t len, const uint8_t sk[SIGN_SECRET_BYTES],
			     uint8_t sig[SIGN_BYTES] /* OUT */);

/* BS_OK only if `sig` is a valid signature of (label(kind), 0x00, msg). */
enum bs_status sign_verify(enum sign_kind kind, const uint8_t *msg, size_t len,
			   const uint8_t sig[SIGN_BYTES],
			   const uint8_t pk[SIGN_PUBLIC_BYTES])
	__attribute__((warn_unused_result));

/* SHA-256 of the concatenation of two byte strings (b may be NULL/0). */
void hash_sha256(uint8_t out[HASH_BYTES], const uint8_t *a, size_t alen,
		 const uint8_t *b, size_t blen);

#endif
