/* pushreceipt.c - the signed push receipt codec (protocol/FORMAT.md,
 * "Push receipts"): one server signature over a whole push's verdicts, and
 * its wire form without the ids hash. Not for the embedded checkpoint's own
 * format (checkpoint.c). */
#include "pushreceipt.h"

#include <string.h>

#include <sodium.h>

#include "mem.h"
#include "wire.h"

static const uint8_t pushreceipt_magic[4] = {'B', 'S', 'P', 'R'};

/* Item codes on the wire: the verdict and whether it was logged. */
enum {
	CODE_ACCEPTED = 0,
	CODE_DUPLICATE = 1,
	CODE_REFUSED_LOGGED = 2,
	CODE_REFUSED = 3,
};

void pushreceipt_ids_hash(const uint8_t (*ids)[HASH_BYTES], size_t n,
			  uint8_t out[HASH_BYTES])
{
	crypto_hash_sha256_state st;
	size_t i;

	crypto_hash_sha256_init(&st);
	for (i = 0; i < n; i++)
		crypto_hash_sha256_update(&st, ids[i], HASH_BYTES);
	crypto_hash_sha256_final(&st, out);
}

static int reason_valid(const char *s, size_t len)
{
	return len >= 1 && len <= VERDICT_REASON_MAX && wire_printable(s, len);
}

/* The wire code of an item, or -1 if the item breaks a field rule: the
 * status decides whether a reason is required, and accepted and duplicate
 * sets are always in the log. */
static int item_code(const struct pushreceipt_item *it, uint64_t tree_size,
		     size_t *rlen /* OUT */)
{
	*rlen = strnlen(it->reason, sizeof it->reason);
	if (it->logged && it->index >= tree_size)
		return -1;
	switch (it->status) {
	case VERDICT_ACCEPTED:
	case VERDICT_DUPLICATE:
		if (!it->logged || *rlen != 0)
			return -1;
		return it->status == VERDICT_ACCEPTED ? CODE_ACCEPTED
						      : CODE_DUPLICATE;
	case VERDICT_REFUSED:
		if (!reason_valid(it->reason, *rlen))
			return -1;
		return it->logged ? CODE_REFUSED_LOGGED : CODE_REFUSED;
	}
	return -1;
}

/* Everything before the signature. Checks every rule first, so on an
 * invalid receipt nothing is written. */
static enum bs_status pushreceipt_encode(const struct pushreceipt *pr,
					 struct buf *out)
{
	const struct checkpoint *cp = &pr->checkpoint;
	size_t i, rlen;

	if (pr->count == 0 || pr->count > PUSHRECEIPT_MAX_SETS || !pr->items)
		return BS_EINVALID;
	/* Only a checkpoint that checkpoint_sign or checkpoint_decode filled
	 * in has the bytes its signature covers. */
	if (cp->raw_len == 0 || cp->raw_len + SIGN_BYTES > CHECKPOINT_SIGNED_MAX)
		return BS_ESTATE;
	for (i = 0; i < pr->count; i++)
		if (item_code(&pr->items[i], cp->size, &rlen) < 0)
			return BS_EINVALID;

	buf_append(out, pushreceipt_magic, 4);
	buf_append_u8(out, PUSHRECEIPT_VERSION);
	wire_put_varint(out, cp->raw_len + SIGN_BYTES);
	buf_append(out, cp->raw, cp->raw_len);
	buf_append(out, cp->sig, SIGN_BYTES);
	wire_put_varint(out, pr->count);
	buf_append(out, pr->ids_hash, HASH_BYTES);
	for (i = 0; i < pr->count; i++) {
		const struct pushreceipt_item *it = &pr->items[i];
		int code = item_code(it, cp->size, &rlen);

		buf_append_u8(out, (uint8_t)code);
		if (code != CODE_REFUSED)
			wire_put_varint(out, it->index);
		if (code == CODE_REFUSED_LOGGED || code == CODE_REFUSED)
			wire_put_blob(out, it->reason, rlen);
	}
	return out->status;
}

enum bs_status pushreceipt_sign(const struct pushreceipt *pr,
				const uint8_t sk[SIGN_SECRET_BYTES],
				struct buf *out)
{
	size_t start = out->len;
	uint8_t sig[SIGN_BYTES];
	enum bs_status rc;

	/* A buffer already in error would swallow the appends. */
	if (out->status)
		return out->status;
	rc = pushreceipt_encode(pr, out);
	if (rc)
		goto cleanup;
	rc = sign_detached(SIGN_PUSHRECEIPT, out->data + start,
			   out->len - start, sk, sig);
	if (rc)
		goto cleanup;
	buf_append(out, sig, SIGN_BYTES);
	rc = out->status;
cleanup:
	/* Never leave a partial or unsigned encoding behind, nor a sticky
	 * error the caller did not have before. */
	if (rc) {
		out->len = start;
		out->status = BS_OK;
	}
	return rc;
}

/* One item at r into it; logged indices must lie inside tree_size. */
static enum bs_status item_read(struct wire_reader *r, uint64_t tree_size,
				struct pushreceipt_item *it)
{
	const uint8_t *p;
	size_t n;
	uint8_t code;
	enum bs_status rc;

	if ((rc = wire_get_u8(r, &code)))
		return rc;
	switch (code) {
	case CODE_ACCEPTED: it->status = VERDICT_ACCEPTED; break;
	case CODE_DUPLICATE: it->status = VERDICT_DUPLICATE; break;
	case CODE_REFUSED_LOGGED:
	case CODE_REFUSED: it->status = VERDICT_REFUSED; break;
	default: return BS_EINVALID;
	}
	if (code != CODE_REFUSED) {
		it->logged = 1;
		if ((rc = wire_get_varint(r, &it->index)))
			return rc;
		if (it->index >= tree_size)
			return BS_EINVALID;
	}
	if (code == CODE_REFUSED_LOGGED || code == CODE_REFUSED) {
		if ((rc = wire_get_blob(r, VERDICT_REASON_MAX, &p, &n)))
			return rc;
		if (!reason_valid((const char *)p, n))
			return BS_EINVALID;
		memcpy(it->reason, p, n);
		it->reason[n] = '\0';
	}
	return BS_OK;
}

enum bs_status pushreceipt_decode(const uint8_t *p, size_t len,
				  struct pushreceipt *out)
{
	struct wire_reader r;
	const uint8_t *field;
	size_t n, i;
	uint64_t count;
	uint8_t version;
	enum bs_status rc;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, p, len);
	if ((rc = wire_get_bytes(&r, 4, &field)))
		goto cleanup;
	if (memcmp(field, pushreceipt_magic, 4) != 0) {
		rc = BS_EMAGIC;
		goto cleanup;
	}
	if ((rc = wire_get_u8(&r, &version)))
		goto cleanup;
	if (version != PUSHRECEIPT_VERSION) {
		rc = BS_EVERSION;
		goto cleanup;
	}
	/* A blob longer than the checkpoint in it fails as BS_ETRAILING
	 * inside checkpoint_decode, a shorter one as BS_ETRUNCATED. */
	if ((rc = wire_get_blob(&r, CHECKPOINT_SIGNED_MAX, &field, &n)) ||
	    (rc = checkpoint_decode(field, n, &out->checkpoint)) ||
	    (rc = wire_get_varint(&r, &count)))
		goto cleanup;
	if (count == 0 || count > PUSHRECEIPT_MAX_SETS) {
		rc = BS_EINVALID;
		goto cleanup;
	}
	/* Every item takes at least one byte: a count the input cannot hold
	 * is refused before anything is allocated for it. */
	if (count > wire_remaining(&r)) {
		rc = BS_ETRUNCATED;
		goto cleanup;
	}
	if ((rc = wire_get_fixed(&r, out->ids_hash, HASH_BYTES)))
		goto cleanup;
	out->items = mem_calloc((size_t)count, sizeof *out->items);
	if (!out->items) {
		rc = BS_ENOMEM;
		goto cleanup;
	}
	out->count = (size_t)count;
	for (i = 0; i < out->count; i++)
		if ((rc = item_read(&r, out->checkpoint.size, &out->items[i])))
			goto cleanup;
	out->signed_bytes = p;
	out->signed_len = r.pos;
	if ((rc = wire_get_fixed(&r, out->sig, SIGN_BYTES)))
		goto cleanup;
	rc = wire_expect_end(&r);
cleanup:
	/* A failed decode owns nothing, whether or not the caller releases. */
	if (rc)
		pushreceipt_release(out);
	return rc;
}

enum bs_status pushreceipt_verify(const struct pushreceipt *pr,
				  const uint8_t pk[SIGN_PUBLIC_BYTES])
{
	enum bs_status rc = checkpoint_verify(&pr->checkpoint, pk);

	if (rc)
		return rc;
	if (!pr->signed_bytes || pr->signed_len == 0)
		return BS_ESTATE;
	return sign_verify(SIGN_PUSHRECEIPT, pr->signed_bytes, pr->signed_len,
			   pr->sig, pk);
}

void pushreceipt_release(struct pushreceipt *pr)
{
	mem_free(pr->items);
	memset(pr, 0, sizeof *pr);
}

/* Where the ids hash is in a signed push receipt, or would be in its wire
 * form: just after magic, version, the checkpoint blob and the count,
 * which are checked as far as finding it needs (pushreceipt_decode checks
 * the rest of the rebuilt receipt). */
static enum bs_status pushreceipt_hash_at(const uint8_t *p, size_t len,
					  size_t *off)
{
	struct wire_reader r;
	const uint8_t *field;
	size_t n;
	uint64_t count;
	uint8_t version;
	enum bs_status rc;

	wire_reader_init(&r, p, len);
	if ((rc = wire_get_bytes(&r, 4, &field)))
		return rc;
	if (memcmp(field, pushreceipt_magic, 4) != 0)
		return BS_EMAGIC;
	if ((rc = wire_get_u8(&r, &version)))
		return rc;
	if (version != PUSHRECEIPT_VERSION)
		return BS_EVERSION;
	if ((rc = wire_get_blob(&r, CHECKPOINT_SIGNED_MAX, &field, &n)) ||
	    (rc = wire_get_varint(&r, &count)))
		return rc;
	*off = r.pos;
	return BS_OK;
}

/* Appends p[0, off), the hash when given, and p[skip, len) to out; on
 * failure out is left as it was. */
static enum bs_status pushreceipt_splice(const uint8_t *p, size_t len,
					 size_t off, const uint8_t *hash,
					 size_t skip, struct buf *out)
{
	size_t start = out->len;
	enum bs_status rc;

	buf_append(out, p, off);
	if (hash)
		buf_append(out, hash, HASH_BYTES);
	buf_append(out, p + skip, len - skip);
	rc = out->status;
	if (rc) {
		out->len = start;
		out->status = BS_OK;
	}
	return rc;
}

enum bs_status pushreceipt_wire_pack(const uint8_t *p, size_t len,
				     struct buf *out)
{
	size_t off = 0;
	enum bs_status rc;

	if (out->status)
		return out->status;
	if ((rc = pushreceipt_hash_at(p, len, &off)))
		return rc;
	if (len - off < HASH_BYTES)
		return BS_ETRUNCATED;
	return pushreceipt_splice(p, len, off, NULL, off + HASH_BYTES, out);
}

enum bs_status pushreceipt_wire_unpack(const uint8_t *p, size_t len,
				       const uint8_t ids_hash[HASH_BYTES],
				       struct buf *out)
{
	size_t off = 0;
	enum bs_status rc;

	if (out->status)
		return out->status;
	if (len > PUSHRECEIPT_WIRE_MAX)
		return BS_ELIMIT;
	if ((rc = pushreceipt_hash_at(p, len, &off)))
		return rc;
	return pushreceipt_splice(p, len, off, ids_hash, off, out);
}
