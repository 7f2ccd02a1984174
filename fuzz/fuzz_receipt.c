/* fuzz_receipt.c - libFuzzer target for receipt_decode. Whatever decodes
 * must re-encode to exactly its input (rebuilt here field by field from
 * FORMAT.md, as there is no unsigned receipt encoder to call) and survive
 * receipt_verify under the key of tests/vectors/checkpoint-kat.txt. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "checkpoint.h"
#include "wire.h"

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
	struct receipt r;
	struct buf cp, b;
	enum bs_status rc;

	if (!ready) {
		fuzz_key_init();
		ready = 1;
	}
	if (receipt_decode(data, size, &r) != BS_OK)
		return 0;

	if (r.raw_len + SIGN_BYTES != size ||
	    memcmp(r.raw, data, r.raw_len) != 0 ||
	    memcmp(r.sig, data + r.raw_len, SIGN_BYTES) != 0)
		abort();

	/* The embedded checkpoint, then the receipt around it. */
	buf_init(&cp, CHECKPOINT_SIGNED_MAX);
	if (checkpoint_encode(&r.checkpoint, &cp) != BS_OK)
		abort();
	if (cp.len != r.checkpoint.raw_len ||
	    memcmp(cp.data, r.checkpoint.raw, cp.len) != 0)
		abort();
	buf_append(&cp, r.checkpoint.sig, SIGN_BYTES);
	buf_init(&b, RECEIPT_SIGNED_MAX);
	buf_append(&b, "BSRC", 4);
	buf_append_u8(&b, RECEIPT_VERSION);
	buf_append(&b, r.changeset_id, HASH_BYTES);
	wire_put_varint(&b, r.index);
	wire_put_blob(&b, cp.data, cp.len);
	buf_append(&b, r.sig, SIGN_BYTES);
	if (cp.status != BS_OK || b.status != BS_OK || b.len != size ||
	    memcmp(b.data, data, size) != 0)
		abort();
	buf_release(&cp);
	buf_release(&b);

	rc = receipt_verify(&r, fuzz_pk);
	if (rc != BS_OK && rc != BS_ESIGNATURE && rc != BS_EINVALID)
		abort();
	return 0;
}
