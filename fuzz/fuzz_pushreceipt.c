/* fuzz_pushreceipt.c - libFuzzer target for pushreceipt_decode. Whatever
 * decodes must re-encode to exactly its unsigned bytes (the encoder signs
 * with a fixed key; only the signature may differ) and survive
 * pushreceipt_verify; whatever fails must leave nothing allocated. The
 * input is also taken as a wire form: rebuilt and packed again, it must
 * come back unchanged. */
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

static void fuzz_wire(const uint8_t *data, size_t size)
{
	static const uint8_t h[HASH_BYTES] = {0x5a, 0xa5};
	struct buf full, wire;

	buf_init(&full, PUSHRECEIPT_SIGNED_MAX);
	buf_init(&wire, PUSHRECEIPT_WIRE_MAX);
	if (pushreceipt_wire_unpack(data, size, h, &full) == BS_OK &&
	    (full.len != size + HASH_BYTES ||
	     pushreceipt_wire_pack(full.data, full.len, &wire) != BS_OK ||
	     wire.len != size || memcmp(wire.data, data, size) != 0))
		abort();
	buf_release(&full);
	buf_release(&wire);
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
	fuzz_wire(data, size);
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
