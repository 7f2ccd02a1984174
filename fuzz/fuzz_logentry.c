/* fuzz_logentry.c - libFuzzer target for logentry_decode. Whatever decodes
 * must point into its input where FORMAT.md puts the fields, re-encode to
 * exactly its input (one encoding per value), and hash to SHA-256(0x00 ||
 * input) as its Merkle leaf. The payload is opaque here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "logentry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
		return 1;
	default:
		return 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct logentry le;
	struct buf b;
	uint8_t leaf[HASH_BYTES], want[HASH_BYTES], zero = 0x00;
	enum bs_status rc;

	if (!ready) {
		if (sign_init())
			abort();
		ready = 1;
	}
	rc = logentry_decode(data, size, &le);
	if (!status_expected(rc))
		abort();
	if (rc != BS_OK)
		return 0;

	/* The payload ends the entry; the reason sits before it. */
	if (le.payload_len == 0 || le.payload_len > CHANGESET_MAX_ENCODED ||
	    le.payload != data + size - le.payload_len ||
	    le.reason_len > LOGENTRY_REASON_MAX ||
	    (const uint8_t *)le.reason < data + 8 ||
	    (const uint8_t *)le.reason + le.reason_len > le.payload - 1 ||
	    size > LOGENTRY_MAX)
		abort();

	buf_init(&b, LOGENTRY_MAX);
	if (logentry_encode(&le, &b) != BS_OK || b.len != size ||
	    memcmp(b.data, data, size) != 0)
		abort();
	buf_release(&b);

	logentry_leaf_hash(data, size, leaf);
	hash_sha256(want, &zero, 1, data, size);
	if (memcmp(leaf, want, HASH_BYTES) != 0)
		abort();
	return 0;
}
