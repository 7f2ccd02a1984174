/* keystore.h - a device's Ed25519 key pair sealed into one byte string, with
 * the secret part encrypted under a passphrase (Argon2id + XSalsa20-Poly1305)
 * or, when the operator chose so, in clear (protocol/FORMAT.md, section
 * "Sealed device key"). Not for storing the sealed bytes (the caller keeps
 * them in the replica or a file) nor for reading passphrases (passphrase.h). */
#ifndef BS_KEYSTORE_H
#define BS_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "sign.h"

#define KEYSTORE_MAGIC "BSKY"
#define KEYSTORE_VERSION 1
#define KEYSTORE_MODE_PLAIN 0
#define KEYSTORE_MODE_SECRETBOX 1 /* Argon2id13 + XSalsa20-Poly1305 */

#define KEYSTORE_SEED_BYTES 32
#define KEYSTORE_SALT_BYTES 16
#define KEYSTORE_NONCE_BYTES 24
#define KEYSTORE_MAC_BYTES 16
/* Whole sealed keys have exactly one of these two lengths. */
#define KEYSTORE_PLAIN_LEN 70
#define KEYSTORE_ENCRYPTED_LEN 142

/* Bounds on the Argon2id cost read from a sealed key, on top of libsodium's
 * own: a hostile or damaged key must not make us allocate gigabytes or spin
 * for hours before the MAC can say it is wrong. */
#define KEYSTORE_OPSLIMIT_MAX 16u
#define KEYSTORE_MEMLIMIT_MAX (1024u * 1024u * 1024u)

/* How hard the passphrase is to guess offline. INTERACTIVE (libsodium's
 * crypto_pwhash_*_INTERACTIVE: 2 passes, 64 MiB) is the default because it
 * stays usable on old branch PCs; MIN is for tests only. */
enum keystore_strength {
	KEYSTORE_STRENGTH_INTERACTIVE = 0,
	KEYSTORE_STRENGTH_MODERATE,   /* 3 passes, 256 MiB */
	KEYSTORE_STRENGTH_MIN,        /* 1 pass, 8 KiB: tests only */
};

/* An opened device key. Lives in sodium_malloc memory (guard pages, locked,
 * wiped when freed) and is read-only: writing to it faults. */
struct keystore_key {
	uint8_t pk[SIGN_PUBLIC_BYTES];
	uint8_t sk[SIGN_SECRET_BYTES]; /* seed || pk, as sign_detached takes */
};

/* Makes a new key pair and seals it: encrypted under `passphrase` at
 * `strength`, or in clear if `passphrase` is NULL (the caller warns the
 * operator). The passphrase is used as its exact bytes up to the NUL.
 * On BS_OK, *sealed is a fresh allocation of *sealed_len bytes that the
 * caller frees with keystore_sealed_free, and pk holds the public key.
 * Fails with BS_EINVALID for an empty passphrase or unknown strength,
 * BS_ELIMIT for a passphrase libsodium cannot take, BS_ENOMEM, or
 * BS_ECRYPTO when libsodium cannot be initialised; *sealed is then NULL. */
enum bs_status keystore_generate(const char *passphrase,
				 enum keystore_strength strength,
				 uint8_t **sealed /* OUT */,
				 size_t *sealed_len /* OUT */,
				 uint8_t pk[SIGN_PUBLIC_BYTES] /* OUT */)
	__attribute__((warn_unused_result));

/* Seals an opened key again, e.g. under a new passphrase. Same contract and
 * failures as keystore_generate, with a fresh salt and nonce. */
enum bs_status keystore_seal(const struct keystore_key *key,
			     const char *passphrase,
			     enum keystore_strength strength,
			     uint8_t **sealed /* OUT */,
			     size_t *sealed_len /* OUT */)
	__attribute__((warn_unused_result));

/* Decodes a sealed key strictly and opens it. `passphrase` is needed for an
 * encrypted key and ignored for a plain one (so scripts that always set
 * BRANCHSYNC_PASSPHRASE work with both). On BS_OK, *out is the key; free it
 * with keystore_key_free. On failure *out is NULL and the result says why:
 *   BS_EHASH      authentication failed: wrong passphrase (or the encrypted
 *                 part was altered; the two cannot be told apart). Returned
 *                 for nothing else, so callers may report "wrong passphrase".
 *   BS_ESTATE     the key is encrypted and `passphrase` is NULL.
 *   BS_EINVALID   unknown mode, or the stored public key is not the one of
 *                 the stored secret key (damage).
 *   BS_EMAGIC, BS_EVERSION, BS_ETRUNCATED, BS_ETRAILING   malformed bytes.
 *   BS_ELIMIT     Argon2id cost outside the allowed range (checked before
 *                 any key derivation), or a passphrase libsodium cannot take.
 *   BS_ENOMEM     out of memory, including for Argon2id's work area.
 *   BS_ECRYPTO    libsodium could not be initialised or protect memory. */
enum bs_status keystore_open(const uint8_t *sealed, size_t len,
			     const char *passphrase,
			     struct keystore_key **out /* OUT */)
	__attribute__((warn_unused_result));

/* Copies the public key out of a sealed key without any passphrase (for
 * status displays and enrollment). The whole key is decoded strictly; fails
 * with the malformed-bytes results of keystore_open. Allocates nothing. */
enum bs_status keystore_public(const uint8_t *sealed, size_t len,
			       uint8_t pk[SIGN_PUBLIC_BYTES] /* OUT */)
	__attribute__((warn_unused_result));

/* Sets *encrypted to 1 if opening needs a passphrase, 0 if not, after the
 * same strict decoding as keystore_public. */
enum bs_status keystore_is_encrypted(const uint8_t *sealed, size_t len,
				     int *encrypted /* OUT */)
	__attribute__((warn_unused_result));

/* Wipes and frees an opened key. NULL is fine. */
void keystore_key_free(struct keystore_key *key);

/* Wipes and frees a sealed key from keystore_generate/keystore_seal (a plain
 * one holds the secret seed). NULL is fine. */
void keystore_sealed_free(uint8_t *sealed, size_t len);

#endif
