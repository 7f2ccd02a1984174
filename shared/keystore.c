/* keystore.c - sealing and opening device keys (see keystore.h; the byte
 * format is protocol/FORMAT.md, section "Sealed device key"). Every secret
 * (seed, derived key) lives only in sodium_malloc memory and is wiped before
 * any return. Not for storage or passphrase input. */
#include "keystore.h"

#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "mem.h"
#include "wire.h"

_Static_assert(KEYSTORE_SEED_BYTES == crypto_sign_SEEDBYTES, "seed size");
_Static_assert(SIGN_PUBLIC_BYTES == crypto_sign_PUBLICKEYBYTES, "pk size");
_Static_assert(SIGN_SECRET_BYTES == crypto_sign_SECRETKEYBYTES, "sk size");
_Static_assert(KEYSTORE_SALT_BYTES == crypto_pwhash_argon2id_SALTBYTES,
	       "salt size");
_Static_assert(KEYSTORE_NONCE_BYTES == crypto_secretbox_NONCEBYTES,
	       "nonce size");
_Static_assert(KEYSTORE_MAC_BYTES == crypto_secretbox_MACBYTES, "mac size");
_Static_assert(crypto_secretbox_KEYBYTES == 32, "secretbox key size");
_Static_assert(KEYSTORE_PLAIN_LEN == 4 + 1 + 1 + KEYSTORE_SEED_BYTES +
		       SIGN_PUBLIC_BYTES, "plain length");
_Static_assert(KEYSTORE_ENCRYPTED_LEN == 4 + 1 + 1 + 8 + 8 +
		       KEYSTORE_SALT_BYTES + KEYSTORE_NONCE_BYTES +
		       KEYSTORE_MAC_BYTES + KEYSTORE_SEED_BYTES +
		       SIGN_PUBLIC_BYTES, "encrypted length");
_Static_assert(KEYSTORE_MEMLIMIT_MAX <= crypto_pwhash_argon2id_MEMLIMIT_MAX,
	       "memlimit cap above libsodium's");

#define KEYSTORE_BOX_BYTES (KEYSTORE_MAC_BYTES + KEYSTORE_SEED_BYTES)

/* A sealed key decoded in place: pointers into the caller's bytes. */
struct keystore_parts {
	uint8_t mode;
	uint64_t opslimit;
	uint64_t memlimit;
	const uint8_t *salt;
	const uint8_t *nonce;
	const uint8_t *body; /* secretbox (48 bytes) or seed (32 bytes) */
	const uint8_t *pk;
};

/* Secret temporaries, kept together in one sodium_malloc block. */
struct keystore_scratch {
	uint8_t kek[crypto_secretbox_KEYBYTES]; /* Argon2id output */
	uint8_t seed[KEYSTORE_SEED_BYTES];
};

/* BS_ELIMIT unless the cost is one libsodium accepts for Argon2id13 and
 * within our caps. memlimit must be a whole number of KiB: libsodium passes
 * memlimit / 1024 to Argon2, so otherwise 1024 different encodings would
 * unlock with the same key and the format would not be canonical. */
static enum bs_status keystore_check_limits(uint64_t opslimit,
					    uint64_t memlimit)
{
	if (opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
	    opslimit > crypto_pwhash_argon2id_OPSLIMIT_MAX ||
	    opslimit > KEYSTORE_OPSLIMIT_MAX)
		return BS_ELIMIT;
	if (memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
	    memlimit > KEYSTORE_MEMLIMIT_MAX || memlimit % 1024 != 0)
		return BS_ELIMIT;
	return BS_OK;
}

static enum bs_status keystore_strength_limits(enum keystore_strength s,
					       uint64_t *opslimit,
					       uint64_t *memlimit)
{
	switch (s) {
	case KEYSTORE_STRENGTH_INTERACTIVE:
		*opslimit = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
		*memlimit = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;
		return BS_OK;
	case KEYSTORE_STRENGTH_MODERATE:
		*opslimit = crypto_pwhash_argon2id_OPSLIMIT_MODERATE;
		*memlimit = crypto_pwhash_argon2id_MEMLIMIT_MODERATE;
		return BS_OK;
	case KEYSTORE_STRENGTH_MIN:
		*opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
		*memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
		return BS_OK;
	}
	return BS_EINVALID;
}

/* Strict decoding of the whole sealed key; allocates nothing. */
static enum bs_status keystore_parse(const uint8_t *p, size_t len,
				     struct keystore_parts *out)
{
	struct wire_reader r;
	const uint8_t *magic;
	uint8_t version;
	enum bs_status rc;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, p, len);
	rc = wire_get_bytes(&r, 4, &magic);
	if (rc)
		goto cleanup;
	if (memcmp(magic, KEYSTORE_MAGIC, 4) != 0) {
		rc = BS_EMAGIC;
		goto cleanup;
	}
	rc = wire_get_u8(&r, &version);
	if (rc)
		goto cleanup;
	if (version != KEYSTORE_VERSION) {
		rc = BS_EVERSION;
		goto cleanup;
	}
	rc = wire_get_u8(&r, &out->mode);
	if (rc)
		goto cleanup;
	if (out->mode == KEYSTORE_MODE_SECRETBOX) {
		rc = wire_get_u64be(&r, &out->opslimit);
		if (!rc)
			rc = wire_get_u64be(&r, &out->memlimit);
		if (!rc)
			rc = keystore_check_limits(out->opslimit,
						   out->memlimit);
		if (!rc)
			rc = wire_get_bytes(&r, KEYSTORE_SALT_BYTES,
					    &out->salt);
		if (!rc)
			rc = wire_get_bytes(&r, KEYSTORE_NONCE_BYTES,
					    &out->nonce);
		if (!rc)
			rc = wire_get_bytes(&r, KEYSTORE_BOX_BYTES,
					    &out->body);
	} else if (out->mode == KEYSTORE_MODE_PLAIN) {
		rc = wire_get_bytes(&r, KEYSTORE_SEED_BYTES, &out->body);
	} else {
		rc = BS_EINVALID;
	}
	if (rc)
		goto cleanup;
	rc = wire_get_bytes(&r, SIGN_PUBLIC_BYTES, &out->pk);
	if (rc)
		goto cleanup;
	rc = wire_expect_end(&r);
cleanup:
	return rc;
}

/* Argon2id13 of the passphrase into kek. The limits were checked already. */
static enum bs_status keystore_derive(uint8_t kek[crypto_secretbox_KEYBYTES],
				      const char *passphrase,
				      const uint8_t *salt, uint64_t opslimit,
				      uint64_t memlimit)
{
	size_t plen = strlen(passphrase);

	if (plen > crypto_pwhash_argon2id_PASSWD_MAX)
		return BS_ELIMIT;
	/* libsodium fails only when Argon2 cannot get its work area (the
	 * parameters were validated), hence out of memory. */
	if (crypto_pwhash(kek, crypto_secretbox_KEYBYTES, passphrase, plen,
			  salt, (unsigned long long)opslimit, (size_t)memlimit,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return BS_ENOMEM;
	return BS_OK;
}

enum bs_status keystore_seal(const struct keystore_key *key,
			     const char *passphrase,
			     enum keystore_strength strength,
			     uint8_t **sealed, size_t *sealed_len)
{
	struct keystore_scratch *s = NULL;
	uint8_t salt[KEYSTORE_SALT_BYTES], nonce[KEYSTORE_NONCE_BYTES];
	uint8_t box[KEYSTORE_BOX_BYTES];
	const uint8_t *body = key->sk; /* libsodium's sk starts with the seed */
	size_t body_len = KEYSTORE_SEED_BYTES;
	uint64_t opslimit = 0, memlimit = 0;
	struct buf head;
	uint8_t *out = NULL;
	size_t out_len = 0;
	enum bs_status rc;

	buf_init(&head, KEYSTORE_ENCRYPTED_LEN);
	*sealed = NULL;
	*sealed_len = 0;
	rc = sign_init();
	if (rc)
		goto cleanup;
	rc = keystore_strength_limits(strength, &opslimit, &memlimit);
	if (rc)
		goto cleanup;
	if (passphrase && passphrase[0] == '\0') {
		rc = BS_EINVALID; /* plain keys are asked for with NULL only */
		goto cleanup;
	}
	buf_append(&head, KEYSTORE_MAGIC, 4);
	buf_append_u8(&head, KEYSTORE_VERSION);
	if (passphrase) {
		s = sodium_malloc(sizeof *s);
		if (!s) {
			rc = BS_ENOMEM;
			goto cleanup;
		}
		randombytes_buf(salt, sizeof salt);
		randombytes_buf(nonce, sizeof nonce);
		rc = keystore_derive(s->kek, passphrase, salt, opslimit,
				     memlimit);
		if (rc)
			goto cleanup;
		if (crypto_secretbox_easy(box, key->sk, KEYSTORE_SEED_BYTES,
					  nonce, s->kek) != 0) {
			rc = BS_ECRYPTO;
			goto cleanup;
		}
		buf_append_u8(&head, KEYSTORE_MODE_SECRETBOX);
		wire_put_u64be(&head, opslimit);
		wire_put_u64be(&head, memlimit);
		buf_append(&head, salt, sizeof salt);
		buf_append(&head, nonce, sizeof nonce);
		body = box;
		body_len = sizeof box;
	} else {
		buf_append_u8(&head, KEYSTORE_MODE_PLAIN);
	}
	rc = head.status;
	if (rc)
		goto cleanup;
	/* One exact allocation: a growing buffer would leave copies of a
	 * plain seed behind in the heap when it moves. */
	out_len = head.len + body_len + SIGN_PUBLIC_BYTES;
	out = mem_alloc(out_len);
	if (!out) {
		rc = BS_ENOMEM;
		goto cleanup;
	}
	memcpy(out, head.data, head.len);
	memcpy(out + head.len, body, body_len);
	memcpy(out + head.len + body_len, key->pk, SIGN_PUBLIC_BYTES);
	*sealed = out;
	*sealed_len = out_len;
	out = NULL;
cleanup:
	if (s) {
		sodium_memzero(s, sizeof *s);
		sodium_free(s);
	}
	buf_release(&head);
	return rc;
}

enum bs_status keystore_generate(const char *passphrase,
				 enum keystore_strength strength,
				 uint8_t **sealed, size_t *sealed_len,
				 uint8_t pk[SIGN_PUBLIC_BYTES])
{
	struct keystore_key *key = NULL;
	enum bs_status rc;

	*sealed = NULL;
	*sealed_len = 0;
	rc = sign_init();
	if (rc)
		goto cleanup;
	key = sodium_malloc(sizeof *key);
	if (!key) {
		rc = BS_ENOMEM;
		goto cleanup;
	}
	/* libsodium draws the seed on its own stack and wipes it there. */
	if (crypto_sign_keypair(key->pk, key->sk) != 0) {
		rc = BS_ECRYPTO;
		goto cleanup;
	}
	rc = keystore_seal(key, passphrase, strength, sealed, sealed_len);
	if (rc)
		goto cleanup;
	memcpy(pk, key->pk, SIGN_PUBLIC_BYTES);
cleanup:
	keystore_key_free(key);
	return rc;
}

enum bs_status keystore_open(const uint8_t *sealed, size_t len,
			     const char *passphrase, struct keystore_key **out)
{
	struct keystore_parts parts;
	struct keystore_scratch *s = NULL;
	struct keystore_key *key = NULL;
	enum bs_status rc;

	*out = NULL;
	rc = keystore_parse(sealed, len, &parts);
	if (rc)
		goto cleanup;
	if (parts.mode == KEYSTORE_MODE_SECRETBOX && !passphrase) {
		rc = BS_ESTATE;
		goto cleanup;
	}
	rc = sign_init();
	if (rc)
		goto cleanup;
	s = sodium_malloc(sizeof *s);
	key = sodium_malloc(sizeof *key);
	if (!s || !key) {
		rc = BS_ENOMEM;
		goto cleanup;
	}
	if (parts.mode == KEYSTORE_MODE_SECRETBOX) {
		rc = keystore_derive(s->kek, passphrase, parts.salt,
				     parts.opslimit, parts.memlimit);
		if (rc)
			goto cleanup;
		if (crypto_secretbox_open_easy(s->seed, parts.body,
					       KEYSTORE_BOX_BYTES, parts.nonce,
					       s->kek) != 0) {
			rc = BS_EHASH;
			goto cleanup;
		}
	} else {
		memcpy(s->seed, parts.body, KEYSTORE_SEED_BYTES);
	}
	if (crypto_sign_seed_keypair(key->pk, key->sk, s->seed) != 0) {
		rc = BS_ECRYPTO;
		goto cleanup;
	}
	/* The MAC does not cover the clear public key; this check does, and
	 * it is all a plain key has against damage. */
	if (memcmp(key->pk, parts.pk, SIGN_PUBLIC_BYTES) != 0) {
		rc = BS_EINVALID;
		goto cleanup;
	}
	if (sodium_mprotect_readonly(key) != 0) {
		rc = BS_ECRYPTO;
		goto cleanup;
	}
	*out = key;
	key = NULL;
cleanup:
	if (s) {
		sodium_memzero(s, sizeof *s);
		sodium_free(s);
	}
	keystore_key_free(key);
	return rc;
}

enum bs_status keystore_public(const uint8_t *sealed, size_t len,
			       uint8_t pk[SIGN_PUBLIC_BYTES])
{
	struct keystore_parts parts;
	enum bs_status rc = keystore_parse(sealed, len, &parts);

	if (rc == BS_OK)
		memcpy(pk, parts.pk, SIGN_PUBLIC_BYTES);
	return rc;
}

enum bs_status keystore_is_encrypted(const uint8_t *sealed, size_t len,
				     int *encrypted)
{
	struct keystore_parts parts;
	enum bs_status rc = keystore_parse(sealed, len, &parts);

	if (rc == BS_OK)
		*encrypted = parts.mode == KEYSTORE_MODE_SECRETBOX;
	return rc;
}

void keystore_key_free(struct keystore_key *key)
{
	/* sodium_free makes the block writable again and zeroes it. */
	if (key)
		sodium_free(key);
}

void keystore_sealed_free(uint8_t *sealed, size_t len)
{
	if (!sealed)
		return;
	sodium_memzero(sealed, len);
	mem_free(sealed);
}
