/* fuzz_verdict.c - libFuzzer target for verdict_decode. Whatever decodes
 * must re-encode to exactly its input (one encoding per value), with its
 * receipt pointing at the input's last bytes. The receipt is opaque here
 * (fuzz_receipt.c covers its decoder). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verdict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A verdict has no magic or version: those statuses would be a bug. */
static int status_expected(enum bs_status rc)
{
	switch (rc) {
	case BS_OK:
	case BS_ETRUNCATED:
	case BS_EOVERLONG:
	case BS_ETRAILING:
	case BS_ELIMIT:
	case BS_EINVALID:
		return 1;
	default:
		return 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verdict v;
	struct buf b;
	enum bs_status rc = verdict_decode(data, size, &v);

	if (!status_expected(rc))
		abort();
	if (rc != BS_OK)
		return 0;

	if (v.status > VERDICT_REFUSED || v.receipt_len > RECEIPT_SIGNED_MAX ||
	    (v.receipt_len == 0) != (v.receipt == NULL) ||
	    (v.receipt && v.receipt != data + size - v.receipt_len) ||
	    v.reason[VERDICT_REASON_MAX] != '\0' ||
	    (v.status == VERDICT_REFUSED && v.reason[0] == '\0') ||
	    (v.status != VERDICT_REFUSED && v.receipt_len == 0))
		abort();

	buf_init(&b, 1 + HASH_BYTES + 2 + VERDICT_REASON_MAX + 2 +
			     RECEIPT_SIGNED_MAX);
	if (verdict_encode(&v, &b) != BS_OK || b.len != size ||
	    memcmp(b.data, data, size) != 0)
		abort();
	buf_release(&b);
	return 0;
}
