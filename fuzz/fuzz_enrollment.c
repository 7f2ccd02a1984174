/* fuzz_enrollment.c - libFuzzer target for enrollment_open, through the
 * signed-object driver (signedobj.h). */
#include <string.h>

#include "enrollment.h"
#include "signedobj.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum bs_status open_fn(const uint8_t *p, size_t len, const uint8_t *pk,
			      void *obj)
{
	return enrollment_open(p, len, pk, obj);
}

static enum bs_status sign_fn(void *obj, const uint8_t *sk, struct buf *out)
{
	return enrollment_sign(obj, sk, out);
}

static int sane_fn(const void *obj, const uint8_t *p, size_t len)
{
	const struct enrollment *en = obj;

	return memcmp(en->sig, p + len - SIGN_BYTES, SIGN_BYTES) == 0 &&
	       en->scope[ENROLLMENT_SCOPE_MAX] == '\0' &&
	       en->name[ENROLLMENT_NAME_MAX] == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct signedobj t = {SIGN_ENROLLMENT,
		ENROLLMENT_SIGNED_MAX, sizeof(struct enrollment), open_fn,
		sign_fn, sane_fn};

	signedobj_run(&t, data, size);
	return 0;
}
