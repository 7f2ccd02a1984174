/* checkpoint.c - signed tree heads and receipts (protocol/FORMAT.md,
 * "Checkpoints" and "Receipts"). */
#include "checkpoint.h"

#include <string.h>

#include "wire.h"

static const uint8_t checkpoint_magic[4] = {'B', 'S', 'C', 'P'};
static const uint8_t receipt_magic[4] = {'B', 'S', 'R', 'C'};

/* Origins are printable: no control bytes, so they can be shown safely. */
static int origin_valid(const char *s, size_t len)
{
	return len >= 1 && len <= CHECKPOINT_ORIGIN_MAX &&
	       wire_printable(s, len);
}

enum bs_status checkpoint_encode(const struct checkpoint *cp, struct buf *out)
{
	size_t olen = strnlen(cp->origin, sizeof cp->origin);

	if (!origin_valid(cp->origin, olen))
		return BS_EINVALID;
	buf_append(out, checkpoint_magic, 4);
	buf_append_u8(out, CHECKPOINT_VERSION);
	wire_put_blob(out, cp->origin, olen);
	wire_put_varint(out, cp->size);
	buf_append(out, cp->root, HASH_BYTES);
	wire_put_u64be(out, cp->time_ms);
	return out->status;
}

enum bs_status checkpoint_sign(struct checkpoint *cp,
			       const uint8_t sk[SIGN_SECRET_BYTES],
			       struct buf *out)
{
	size_t start = out->len;
	enum bs_status rc = checkpoint_encode(cp, out);

	if (rc == BS_OK && out->len - start > sizeof cp->raw)
		rc = BS_ELIMIT;
	if (rc == BS_OK)
		rc = sign_detached(SIGN_CHECKPOINT, out->data + start,
				   out->len - start, sk, cp->sig);
	if (rc == BS_OK) {
		cp->raw_len = out->len - start;
		memcpy(cp->raw, out->data + start, cp->raw_len);
		buf_append(out, cp->sig, SIGN_BYTES);
		rc = out->status;
	}
	/* Never leave an unsigned encoding in the caller's buffer. */
	if (rc && out->status == BS_OK)
		out->len = start;
	return rc;
}

static enum bs_status checkpoint_read(struct wire_reader *r,
				      struct checkpoint *out)
{
	const uint8_t *p;
	size_t n;
	uint8_t version;
	size_t start = r->pos;
	enum bs_status rc;

	memset(out, 0, sizeof *out);
	if ((rc = wire_get_bytes(r, 4, &p)))
		return rc;
	if (memcmp(p, checkpoint_magic, 4) != 0)
		return BS_EMAGIC;
	if ((rc = wire_get_u8(r, &version)))
		return rc;
	if (version != CHECKPOINT_VERSION)
		return BS_EVERSION;
	if ((rc = wire_get_blob(r, CHECKPOINT_ORIGIN_MAX, &p, &n)))
		return rc;
	memcpy(out->origin, p, n);
	if (!origin_valid(out->origin, n))
		return BS_EINVALID;
	if ((rc = wire_get_varint(r, &out->size)) ||
	    (rc = wire_get_fixed(r, out->root, HASH_BYTES)) ||
	    (rc = wire_get_u64be(r, &out->time_ms)))
		return rc;
	out->raw_len = r->pos - start;
	memcpy(out->raw, r->p + start, out->raw_len);
	return wire_get_fixed(r, out->sig, SIGN_BYTES);
}

enum bs_status checkpoint_decode(const uint8_t *p, size_t len,
				 struct checkpoint *out)
{
	struct wire_reader r;
	enum bs_status rc;

	wire_reader_init(&r, p, len);
	rc = checkpoint_read(&r, out);
	return rc ? rc : wire_expect_end(&r);
}

enum bs_status checkpoint_verify(const struct checkpoint *cp,
				 const uint8_t pk[SIGN_PUBLIC_BYTES])
{
	if (cp->raw_len == 0 || cp->raw_len > sizeof cp->raw)
		return BS_ESTATE;
	return sign_verify(SIGN_CHECKPOINT, cp->raw, cp->raw_len, cp->sig, pk);
}

/* The embedded checkpoint must already be signed (its raw bytes known). */
static enum bs_status receipt_encode(const struct receipt *rc, struct buf *out)
{
	const struct checkpoint *cp = &rc->checkpoint;

	if (cp->raw_len == 0 || cp->raw_len > sizeof cp->raw)
		return BS_ESTATE;
	buf_append(out, receipt_magic, 4);
	buf_append_u8(out, RECEIPT_VERSION);
	buf_append(out, rc->changeset_id, HASH_BYTES);
	wire_put_varint(out, rc->index);
	wire_put_varint(out, cp->raw_len + SIGN_BYTES);
	buf_append(out, cp->raw, cp->raw_len);
	buf_append(out, cp->sig, SIGN_BYTES);
	return out->status;
}

enum bs_status receipt_sign(struct receipt *rc,
			    const uint8_t sk[SIGN_SECRET_BYTES],
			    struct buf *out)
{
	size_t start = out->len;
	enum bs_status st;

	/* receipt_verify refuses such a receipt, so never sign one. */
	if (rc->index >= rc->checkpoint.size)
		return BS_EINVALID;
	st = receipt_encode(rc, out);
	if (st == BS_OK && out->len - start > sizeof rc->raw)
		st = BS_ELIMIT;
	if (st == BS_OK)
		st = sign_detached(SIGN_RECEIPT, out->data + start,
				   out->len - start, sk, rc->sig);
	if (st == BS_OK) {
		rc->raw_len = out->len - start;
		memcpy(rc->raw, out->data + start, rc->raw_len);
		buf_append(out, rc->sig, SIGN_BYTES);
		st = out->status;
	}
	if (st && out->status == BS_OK)
		out->len = start;
	return st;
}

enum bs_status receipt_decode(const uint8_t *p, size_t len, struct receipt *out)
{
	struct wire_reader r;
	const uint8_t *cp;
	size_t cplen;
	uint8_t version;
	enum bs_status rc;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, p, len);
	if ((rc = wire_get_bytes(&r, 4, &cp)))
		return rc;
	if (memcmp(cp, receipt_magic, 4) != 0)
		return BS_EMAGIC;
	if ((rc = wire_get_u8(&r, &version)))
		return rc;
	if (version != RECEIPT_VERSION)
		return BS_EVERSION;
	if ((rc = wire_get_fixed(&r, out->changeset_id, HASH_BYTES)) ||
	    (rc = wire_get_varint(&r, &out->index)) ||
	    (rc = wire_get_blob(&r, CHECKPOINT_SIGNED_MAX, &cp, &cplen)) ||
	    (rc = checkpoint_decode(cp, cplen, &out->checkpoint)))
		return rc;
	out->raw_len = r.pos;
	memcpy(out->raw, p, out->raw_len);
	if ((rc = wire_get_fixed(&r, out->sig, SIGN_BYTES)))
		return rc;
	return wire_expect_end(&r);
}

enum bs_status receipt_verify(const struct receipt *rc,
			      const uint8_t pk[SIGN_PUBLIC_BYTES])
{
	enum bs_status st;

	if (rc->index >= rc->checkpoint.size)
		return BS_EINVALID;
	st = checkpoint_verify(&rc->checkpoint, pk);
	if (st)
		return st;
	if (rc->raw_len == 0 || rc->raw_len > sizeof rc->raw)
		return BS_ESTATE;
	return sign_verify(SIGN_RECEIPT, rc->raw, rc->raw_len, rc->sig, pk);
}
