/* sign.c - domain-separated Ed25519 signing and verification (see sign.h). */
#include "sign.h"

#include <string.h>

#include <sodium.h>

#include "mem.h"

enum bs_status sign_init(void)
{
	return sodium_init() < 0 ? BS_ECRYPTO : BS_OK;
}

const char *sign_label(enum sign_kind kind)
{
	switch (kind) {
	case SIGN_CHANGESET: return "branchsync/changeset/v1";
	case SIGN_CHECKPOINT: return "branchsync/checkpoint/v1";
	case SIGN_RECEIPT: return "branchsync/receipt/v1";
	case SIGN_ENROLLMENT: return "branchsync/enrollment/v1";
	case SIGN_REVOCATION: return "branchsync/revocation/v1";
	case SIGN_REQUEST: return "branchsync/request/v1";
	case SIGN_DIGEST: return "branchsync/digest/v1";
	case SIGN_PUSHRECEIPT: return "branchsync/pushreceipt/v1";
	}
	return "branchsync/invalid";
}

/* Builds label || 0x00 || msg in a fresh allocation the caller frees. */
static uint8_t *sign_message(enum sign_kind kind, const uint8_t *msg,
			     size_t len, size_t *out_len)
{
	const char *label = sign_label(kind);
	size_t llen = strlen(label) + 1;
	uint8_t *m;

	if (len > SIZE_MAX - llen)
		return NULL;
	m = mem_alloc(llen + len);
	if (!m)
		return NULL;
	memcpy(m, label, llen); /* copies the terminating 0x00 too */
	if (len)
		memcpy(m + llen, msg, len);
	*out_len = llen + len;
	return m;
}

enum bs_status sign_detached(enum sign_kind kind, const uint8_t *msg,
			     size_t len, const uint8_t sk[SIGN_SECRET_BYTES],
			     uint8_t sig[SIGN_BYTES])
{
	size_t mlen = 0;
	uint8_t *m = sign_message(kind, msg, len, &mlen);
	enum bs_status rc = BS_OK;

	if (!m)
		return BS_ENOMEM;
	if (crypto_sign_detached(sig, NULL, m, mlen, sk) != 0)
		rc = BS_ECRYPTO;
	mem_free(m);
	return rc;
}

enum bs_status sign_verify(enum sign_kind kind, const uint8_t *msg, size_t len,
			   const uint8_t sig[SIGN_BYTES],
			   const uint8_t pk[SIGN_PUBLIC_BYTES])
{
	size_t mlen = 0;
	uint8_t *m = sign_message(kind, msg, len, &mlen);
	enum bs_status rc = BS_OK;

	if (!m)
		return BS_ENOMEM;
	if (crypto_sign_verify_detached(sig, m, mlen, pk) != 0)
		rc = BS_ESIGNATURE;
	mem_free(m);
	return rc;
}

void hash_sha256(uint8_t out[HASH_BYTES], const uint8_t *a, size_t alen,
		 const uint8_t *b, size_t blen)
{
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	if (alen)
		crypto_hash_sha256_update(&st, a, alen);
	if (blen)
		crypto_hash_sha256_update(&st, b, blen);
	crypto_hash_sha256_final(&st, out);
}
