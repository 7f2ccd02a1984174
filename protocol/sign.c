/* sign.c - domain-separated Ed25519 signing and verification (see sign.h). */
#include "sign.h"

#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "mem.h"

/* From this size on a hash goes through OpenSSL, whose SHA-256 uses the
 * CPU's SHA extensions where there are some: the 4 MB an initial pull of
 * 20,000 rows hashes (bodies and log leaves) take 2.6 ms there and 11.6 ms
 * in libsodium's portable code. Below it the two cost the same. */
#define HASH_FAST_MIN 4096

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

/* 0, or -1 when OpenSSL cannot (out of memory): the caller then hashes
 * with libsodium, which gives the same bytes. Allocates nothing that
 * outlives the call. */
static int hash_sha256_openssl(uint8_t out[HASH_BYTES], const uint8_t *a,
			       size_t alen, const uint8_t *b, size_t blen)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok;

	if (!c)
		return -1;
	ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	     (alen == 0 || EVP_DigestUpdate(c, a, alen) == 1) &&
	     (blen == 0 || EVP_DigestUpdate(c, b, blen) == 1) &&
	     EVP_DigestFinal_ex(c, out, &n) == 1 && n == HASH_BYTES;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

void hash_sha256(uint8_t out[HASH_BYTES], const uint8_t *a, size_t alen,
		 const uint8_t *b, size_t blen)
{
	crypto_hash_sha256_state st;

	if (alen + blen >= HASH_FAST_MIN &&
	    hash_sha256_openssl(out, a, alen, b, blen) == 0)
		return;

	crypto_hash_sha256_init(&st);
	if (alen)
		crypto_hash_sha256_update(&st, a, alen);
	if (blen)
		crypto_hash_sha256_update(&st, b, blen);
	crypto_hash_sha256_final(&st, out);
}
