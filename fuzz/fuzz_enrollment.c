/* fuzz_enrollment.c - libFuzzer target for enrollment_open. Each input is
 * tried twice: as a signed enrollment under the vectors' server key (seed
 * bytes 0x01..0x20), and as the unsigned part of one that this target signs
 * itself, so that the fuzzer reaches the field rules behind the signature.
 * Whatever opens must re-sign to exactly its input. Not a signature test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enrollment.h"

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

/* The statuses FORMAT.md allows enrollment_open to give. */
static int status_expected(enum bs_status rc)
{
	switch (rc) {
	case BS_OK:
	case BS_ETRUNCATED:
	case BS_EOVERLONG:
	case BS_ETRAILING:
	case BS_EMAGIC:
	case BS_EVERSION:
	case BS_ELIMIT:
	case BS_EINVALID:
	case BS_ESIGNATURE:
		return 1;
	default:
		return 0;
	}
}

/* An opened enrollment re-signs to its input: the unsigned part always
 * (one encoding per value), the signature too when `ours` (Ed25519 is
 * deterministic, and we made it). */
static void check_canonical(const struct enrollment *en, const uint8_t *p,
			    size_t len, int ours)
{
	struct enrollment copy = *en;
	struct buf b;

	if (len < SIGN_BYTES + 1 || len > ENROLLMENT_SIGNED_MAX ||
	    memcmp(en->sig, p + len - SIGN_BYTES, SIGN_BYTES) != 0 ||
	    en->scope[ENROLLMENT_SCOPE_MAX] != '\0' ||
	    en->name[ENROLLMENT_NAME_MAX] != '\0')
		abort();
	buf_init(&b, ENROLLMENT_SIGNED_MAX);
	if (enrollment_sign(&copy, fuzz_sk, &b) != BS_OK || b.len != len ||
	    memcmp(b.data, p, len - SIGN_BYTES) != 0)
		abort();
	if (ours && memcmp(b.data, p, len) != 0)
		abort();
	buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct enrollment en;
	enum bs_status rc;
	uint8_t *signed_copy;

	if (!ready) {
		fuzz_key_init();
		ready = 1;
	}
	rc = enrollment_open(data, size, fuzz_pk, &en);
	if (!status_expected(rc))
		abort();
	if (rc == BS_OK)
		check_canonical(&en, data, size, 0);

	if (size > ENROLLMENT_SIGNED_MAX)
		return 0;
	signed_copy = malloc(size + SIGN_BYTES);
	if (!signed_copy)
		abort();
	if (size)
		memcpy(signed_copy, data, size);
	if (sign_detached(SIGN_ENROLLMENT, data, size, fuzz_sk,
			  signed_copy + size) != BS_OK)
		abort();
	rc = enrollment_open(signed_copy, size + SIGN_BYTES, fuzz_pk, &en);
	/* What it verifies is exactly what we signed, or it fails before. */
	if (!status_expected(rc) || rc == BS_ESIGNATURE)
		abort();
	if (rc == BS_OK)
		check_canonical(&en, signed_copy, size + SIGN_BYTES, 1);
	free(signed_copy);
	return 0;
}
