/* fuzz_checkpoint.c - libFuzzer target for checkpoint_decode. Whatever
 * decodes must re-encode to exactly its input and survive checkpoint_verify
 * (under the key of tests/vectors/checkpoint-kat.txt, so that the seed
 * corpus verifies). Not a signature test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t fuzz_pk[SIGN_PUBLIC_BYTES];

/* The vectors' log key: seed bytes 0x01..0x20. */
static void fuzz_key_init(void)
{
	uint8_t seed[32], sk[SIGN_SECRET_BYTES];
	int i;

	if (sign_init())
		abort();
	for (i = 0; i < 32; i++)
		seed[i] = (uint8_t)(1 + i);
	if (crypto_sign_seed_keypair(fuzz_pk, sk, seed) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct checkpoint cp;
	struct buf b;
	enum bs_status rc;

	if (!ready) {
		fuzz_key_init();
		ready = 1;
	}
	if (checkpoint_decode(data, size, &cp) != BS_OK)
		return 0;

	/* raw is the input without its signature. */
	if (cp.raw_len + SIGN_BYTES != size ||
	    memcmp(cp.raw, data, cp.raw_len) != 0 ||
	    memcmp(cp.sig, data + cp.raw_len, SIGN_BYTES) != 0)
		abort();

	/* Canonical: the decoded values encode back to the same bytes. */
	buf_init(&b, CHECKPOINT_SIGNED_MAX);
	if (checkpoint_encode(&cp, &b) != BS_OK)
		abort();
	buf_append(&b, cp.sig, SIGN_BYTES);
	if (b.status != BS_OK || b.len != size ||
	    memcmp(b.data, data, size) != 0)
		abort();
	buf_release(&b);

	rc = checkpoint_verify(&cp, fuzz_pk);
	if (rc != BS_OK && rc != BS_ESIGNATURE)
		abort();
	return 0;
}
