/* fuzz_proof.c - libFuzzer target for the Merkle proof decoder
 * (protocol/proof.c). Whatever proof_decode accepts must re-encode to the
 * very same bytes (one proof, one encoding) and be a proof the verifiers
 * take as well-formed; any other outcome aborts. Not a test of the math. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "merkle.h"
#include "proof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t a[HASH_BYTES] = {1}, b[HASH_BYTES] = {2};
	struct proof p;
	struct buf out;
	enum bs_status rc;

	if (proof_decode(data, size, &p) != BS_OK)
		return 0;
	buf_init(&out, PROOF_MAX_ENCODED);
	if (proof_encode(&p, &out) != BS_OK || out.len != size ||
	    memcmp(out.data, data, size) != 0)
		abort();
	buf_release(&out);
	/* A decoded proof has possible parameters: verifying it may fail,
	 * but never for being malformed. */
	if (p.kind == PROOF_INCLUSION)
		rc = merkle_verify_inclusion(a, p.first, p.second, &p.path, b);
	else
		rc =
		    merkle_verify_consistency(p.first, p.second, a, b, &p.path);
	if (rc != BS_OK && rc != BS_EPROOF)
		abort();
	return 0;
}
