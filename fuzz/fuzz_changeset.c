/* fuzz_changeset.c - libFuzzer target for changeset_decode. Whatever decodes
 * must re-encode to exactly its input (one encoding per value), carry the id
 * FORMAT.md defines, and survive changeset_verify. Not a signature test:
 * random bytes almost never verify, and that is fine. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "changeset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct changeset cs;
	struct changeset_envelope env;
	struct buf b;
	uint8_t id[HASH_BYTES];
	enum bs_status rc;

	if (!ready) {
		if (sign_init())
			abort();
		ready = 1;
	}
	if (changeset_decode(data, size, &cs) != BS_OK)
		return 0;

	/* Views point into the input where FORMAT.md puts them. */
	if (cs.env_bytes != data || cs.sig != data + cs.env_len ||
	    cs.body != data + cs.env_len + SIGN_BYTES ||
	    cs.encoded_len != size ||
	    cs.env_len + SIGN_BYTES + cs.body_len != size ||
	    cs.env_len > CHANGESET_ENVELOPE_MAX)
		abort();

	/* Canonical: the decoded values encode back to the same bytes. */
	buf_init(&b, CHANGESET_MAX_ENCODED);
	env = cs.env;
	if (changeset_encode_envelope(&env, &b) != BS_OK)
		abort();
	buf_append(&b, cs.sig, SIGN_BYTES);
	buf_append(&b, cs.body, cs.body_len);
	if (b.status != BS_OK || b.len != size ||
	    memcmp(b.data, data, size) != 0)
		abort();
	buf_release(&b);

	hash_sha256(id, data, cs.env_len + SIGN_BYTES, NULL, 0);
	if (memcmp(id, cs.id, HASH_BYTES) != 0)
		abort();

	rc = changeset_verify(&cs);
	if (rc != BS_OK && rc != BS_ESIGNATURE)
		abort();
	return 0;
}
