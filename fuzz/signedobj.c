/* signedobj.c - fuzz driver for server-signed objects (see signedobj.h). */
#include "signedobj.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static uint8_t fuzz_pk[SIGN_PUBLIC_BYTES], fuzz_sk[SIGN_SECRET_BYTES];

static void key_init(void)
{
	static int ready;
	uint8_t seed[32];
	int i;

	if (ready)
		return;
	if (sign_init())
		abort();
	for (i = 0; i < 32; i++)
		seed[i] = (uint8_t)(1 + i);
	if (crypto_sign_seed_keypair(fuzz_pk, fuzz_sk, seed) != 0)
		abort();
	ready = 1;
}

/* The statuses FORMAT.md allows these decoders to give. */
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

/* An opened object re-signs to its input: the unsigned part always (one
 * encoding per value), the signature too when `ours` (Ed25519 is
 * deterministic, and we made it). */
static void check_canonical(const struct signedobj *t, const void *obj,
			    const uint8_t *p, size_t len, int ours)
{
	void *copy = malloc(t->obj_size);
	struct buf b;

	if (!copy || len < SIGN_BYTES + 1 || len > t->max ||
	    !t->sane(obj, p, len))
		abort();
	memcpy(copy, obj, t->obj_size);
	buf_init(&b, t->max);
	if (t->sign(copy, fuzz_sk, &b) != BS_OK || b.len != len ||
	    memcmp(b.data, p, len - SIGN_BYTES) != 0)
		abort();
	if (ours && memcmp(b.data, p, len) != 0)
		abort();
	buf_release(&b);
	free(copy);
}

void signedobj_run(const struct signedobj *t, const uint8_t *data,
		   size_t size)
{
	void *obj = malloc(t->obj_size);
	uint8_t *signed_copy;
	enum bs_status rc;

	key_init();
	if (!obj)
		abort();
	rc = t->open(data, size, fuzz_pk, obj);
	if (!status_expected(rc))
		abort();
	if (rc == BS_OK)
		check_canonical(t, obj, data, size, 0);
	if (size > t->max) {
		free(obj);
		return;
	}
	signed_copy = malloc(size + SIGN_BYTES);
	if (!signed_copy)
		abort();
	if (size)
		memcpy(signed_copy, data, size);
	if (sign_detached(t->kind, data, size, fuzz_sk, signed_copy + size) !=
	    BS_OK)
		abort();
	rc = t->open(signed_copy, size + SIGN_BYTES, fuzz_pk, obj);
	/* What it verifies is exactly what we signed, or it fails before. */
	if (!status_expected(rc) || rc == BS_ESIGNATURE)
		abort();
	if (rc == BS_OK)
		check_canonical(t, obj, signed_copy, size + SIGN_BYTES, 1);
	free(signed_copy);
	free(obj);
}
