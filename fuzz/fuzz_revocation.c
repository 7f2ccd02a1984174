/* fuzz_revocation.c - libFuzzer target for revocation_open, through the
 * signed-object driver (signedobj.h). */
#include <string.h>

#include "enrollment.h"
#include "signedobj.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum bs_status open_fn(const uint8_t *p, size_t len, const uint8_t *pk,
			      void *obj)
{
	return revocation_open(p, len, pk, obj);
}

static enum bs_status sign_fn(void *obj, const uint8_t *sk, struct buf *out)
{
	return revocation_sign(obj, sk, out);
}

static int sane_fn(const void *obj, const uint8_t *p, size_t len)
{
	const struct revocation *rv = obj;

	return memcmp(rv->sig, p + len - SIGN_BYTES, SIGN_BYTES) == 0 &&
	       rv->reason[REVOCATION_REASON_MAX] == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct signedobj t = {SIGN_REVOCATION,
		REVOCATION_SIGNED_MAX, sizeof(struct revocation), open_fn,
		sign_fn, sane_fn};

	signedobj_run(&t, data, size);
	return 0;
}
