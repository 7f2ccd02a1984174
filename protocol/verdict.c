/* verdict.c - push verdict codec (protocol/FORMAT.md, "Verdicts"). */
#include "verdict.h"

#include <string.h>

#include "wire.h"

static enum bs_status verdict_check(const struct verdict *v, size_t rlen)
{
	if (v->status > VERDICT_REFUSED || rlen > VERDICT_REASON_MAX)
		return BS_EINVALID;
	if (v->status != VERDICT_REFUSED && v->receipt_len == 0)
		return BS_EINVALID;
	if (v->status == VERDICT_REFUSED && rlen == 0)
		return BS_EINVALID;
	if (v->receipt_len > RECEIPT_SIGNED_MAX)
		return BS_ELIMIT;
	return wire_printable(v->reason, rlen) ? BS_OK : BS_EINVALID;
}

enum bs_status verdict_encode(const struct verdict *v, struct buf *out)
{
	size_t rlen = strnlen(v->reason, sizeof v->reason);
	enum bs_status rc = verdict_check(v, rlen);

	if (rc)
		return rc;
	buf_append_u8(out, (uint8_t)v->status);
	buf_append(out, v->changeset_id, HASH_BYTES);
	wire_put_blob(out, v->reason, rlen);
	wire_put_blob(out, v->receipt, v->receipt_len);
	return out->status;
}

enum bs_status verdict_decode(const uint8_t *p, size_t len, struct verdict *out)
{
	struct wire_reader r;
	const uint8_t *reason;
	size_t rlen;
	uint8_t status;
	enum bs_status rc;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, p, len);
	if ((rc = wire_get_u8(&r, &status)) ||
	    (rc = wire_get_fixed(&r, out->changeset_id, HASH_BYTES)) ||
	    (rc = wire_get_blob(&r, VERDICT_REASON_MAX, &reason, &rlen)) ||
	    (rc = wire_get_blob(&r, RECEIPT_SIGNED_MAX, &out->receipt,
				&out->receipt_len)) ||
	    (rc = wire_expect_end(&r)))
		return rc;
	out->status = (enum verdict_status)status;
	memcpy(out->reason, reason, rlen);
	out->reason[rlen] = '\0';
	if (memchr(out->reason, '\0', rlen))
		return BS_EINVALID;
	if (out->receipt_len == 0)
		out->receipt = NULL;
	return verdict_check(out, rlen);
}
