/* fuzz_pushreceipt.c - libFuzzer target for pushreceipt_decode. Whatever
 * decodes must re-encode to exactly its unsigned bytes (the encoder signs
 * with a fixed key; only the signature may differ) and survive
 * pushreceipt_verify; whatever fails must leave nothing allocated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pushreceipt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t fuzz_pk[SIGN_PUBLIC_BYTES], fuzz_sk[SIGN_SECRET_BYTES];

static void fuzz_key_init(void)
{
	uint8_t seed[32];
	int i;

	if (sign_init())
		abort();
	for (i = 0; i < 32; i++)
		seed[i] = (uint8_t)(1 + i);
	if (crypto_sign_seed_keypair(fuzz_pk, fuzz_sk, seed) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct pushreceipt pr;
	struct buf again;

	if (!ready) {
		fuzz_key_init();
		ready = 1;
	}
	if (pushreceipt_decode(data, size, &pr) != BS_OK) {
		if (pr.items)
			abort(); /* a failed decode keeps nothing */
		return 0;
	}
	(void)pushreceipt_verify(&pr, fuzz_pk);
	buf_init(&again, PUSHRECEIPT_SIGNED_MAX);
	if (pushreceipt_sign(&pr, fuzz_sk, &again) != BS_OK ||
	    again.len != size || pr.signed_len != size - SIGN_BYTES ||
	    memcmp(again.data, data, size - SIGN_BYTES) != 0)
		abort();
	buf_release(&again);
	pushreceipt_release(&pr);
	return 0;
}
