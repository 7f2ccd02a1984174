/* fuzz_statedigest.c - libFuzzer target for statedigest_open. Each input is
 * tried twice: as a signed state digest under the vectors' server key (seed
 * bytes 0x01..0x20), and as the unsigned part of one that this target signs
 * itself, so that the fuzzer gets behind the signature. Whatever opens must
 * re-sign to exactly its input. Not a signature test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "statedigest.h"

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

/* The statuses FORMAT.md allows statedigest_open to give. */
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

/* An opened statement re-signs to its input: the unsigned part always (one
 * encoding per value), the signature too when `ours` (Ed25519 is
 * deterministic, and we made it). */
static void check_canonical(const struct statedigest *sd, const uint8_t *p,
			    size_t len, int ours)
{
	struct statedigest copy = *sd;
	struct buf b;

	if (len < SIGN_BYTES + 1 || len > STATEDIGEST_SIGNED_MAX ||
	    memcmp(sd->sig, p + len - SIGN_BYTES, SIGN_BYTES) != 0 ||
	    sd->origin[CHECKPOINT_ORIGIN_MAX] != '\0')
		abort();
	buf_init(&b, STATEDIGEST_SIGNED_MAX);
	if (statedigest_sign(&copy, fuzz_sk, &b) != BS_OK || b.len != len ||
	    memcmp(b.data, p, len - SIGN_BYTES) != 0)
		abort();
	if (ours && memcmp(b.data, p, len) != 0)
		abort();
	buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct statedigest sd;
	enum bs_status rc;
	uint8_t *signed_copy;

	if (!ready) {
		fuzz_key_init();
		ready = 1;
	}
	rc = statedigest_open(data, size, fuzz_pk, &sd);
	if (!status_expected(rc))
		abort();
	if (rc == BS_OK)
		check_canonical(&sd, data, size, 0);

	if (size > STATEDIGEST_SIGNED_MAX)
		return 0;
	signed_copy = malloc(size + SIGN_BYTES);
	if (!signed_copy)
		abort();
	if (size)
		memcpy(signed_copy, data, size);
	if (sign_detached(SIGN_DIGEST, data, size, fuzz_sk,
			  signed_copy + size) != BS_OK)
		abort();
	rc = statedigest_open(signed_copy, size + SIGN_BYTES, fuzz_pk, &sd);
	/* What it verifies is exactly what we signed, or it fails before. */
	if (!status_expected(rc) || rc == BS_ESIGNATURE)
		abort();
	if (rc == BS_OK)
		check_canonical(&sd, signed_copy, size + SIGN_BYTES, 1);
	free(signed_copy);
	return 0;
}
