/* proof.c - Merkle proof encoding and strict decoding (protocol/FORMAT.md,
 * section "Proof encoding"). Not the proof math: see merkle.c. */
#include "proof.h"

#include <string.h>

#include "wire.h"

/* The rules both directions share, so that whatever decodes re-encodes to
 * the same bytes and nothing is encoded that would not decode. */
static enum bs_status proof_check(const struct proof *p)
{
	size_t want;

	if (p->kind != PROOF_INCLUSION && p->kind != PROOF_CONSISTENCY)
		return BS_EINVALID;
	if (p->path.count > MERKLE_MAX_PROOF || p->second > MERKLE_MAX_SIZE)
		return BS_ELIMIT;
	if (p->kind == PROOF_INCLUSION) {
		if (p->first >= p->second)
			return BS_EINVALID;
		want = merkle_inclusion_length(p->first, p->second);
	} else {
		if (p->first > p->second)
			return BS_EINVALID;
		want = merkle_consistency_length(p->first, p->second);
	}
	return p->path.count == want ? BS_OK : BS_EINVALID;
}

enum bs_status proof_encode(const struct proof *p, struct buf *b)
{
	enum bs_status rc = proof_check(p);
	size_t i;

	if (rc)
		return rc;
	buf_append_u8(b, (uint8_t)p->kind);
	wire_put_varint(b, p->first);
	wire_put_varint(b, p->second);
	wire_put_varint(b, p->path.count);
	for (i = 0; i < p->path.count; i++)
		buf_append(b, p->path.hash[i], HASH_BYTES);
	return b->status;
}

enum bs_status proof_decode(const uint8_t *in, size_t len, struct proof *out)
{
	struct wire_reader r;
	enum bs_status rc;
	uint64_t count;
	uint8_t kind;
	size_t i;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, in, len);
	rc = wire_get_u8(&r, &kind);
	if (rc)
		goto cleanup;
	if (kind != PROOF_INCLUSION && kind != PROOF_CONSISTENCY) {
		rc = BS_EINVALID;
		goto cleanup;
	}
	out->kind = (enum proof_kind)kind;
	rc = wire_get_varint(&r, &out->first);
	if (rc)
		goto cleanup;
	rc = wire_get_varint(&r, &out->second);
	if (rc)
		goto cleanup;
	rc = wire_get_varint(&r, &count);
	if (rc)
		goto cleanup;
	/* The limit comes before the hashes are read, and also bounds the
	 * fixed array they are copied into. */
	if (count > MERKLE_MAX_PROOF) {
		rc = BS_ELIMIT;
		goto cleanup;
	}
	out->path.count = (size_t)count;
	for (i = 0; i < out->path.count; i++) {
		rc = wire_get_fixed(&r, out->path.hash[i], HASH_BYTES);
		if (rc)
			goto cleanup;
	}
	rc = wire_expect_end(&r);
	if (rc)
		goto cleanup;
	rc = proof_check(out);
cleanup:
	if (rc)
		memset(out, 0, sizeof *out);
	return rc;
}
