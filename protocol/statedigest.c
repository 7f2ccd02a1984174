/* statedigest.c - signed state digests (protocol/FORMAT.md, "State
 * digests"). */
#include "statedigest.h"

#include <string.h>

#include "wire.h"

static const uint8_t statedigest_magic[4] = {'B', 'S', 'S', 'D'};

static int origin_ok(const char *s, size_t n)
{
	return n >= 1 && n <= CHECKPOINT_ORIGIN_MAX && wire_printable(s, n);
}

enum bs_status statedigest_sign(struct statedigest *sd,
				const uint8_t sk[SIGN_SECRET_BYTES],
				struct buf *out)
{
	size_t start = out->len, olen = strnlen(sd->origin, sizeof sd->origin);
	enum bs_status rc;

	if (!origin_ok(sd->origin, olen))
		return BS_EINVALID;
	buf_append(out, statedigest_magic, 4);
	buf_append_u8(out, 1);
	wire_put_blob(out, sd->origin, olen);
	wire_put_varint(out, sd->log_size);
	buf_append(out, sd->digest, HASH_BYTES);
	wire_put_u64be(out, sd->time_ms);
	rc = out->status;
	if (rc == BS_OK)
		rc = sign_detached(SIGN_DIGEST, out->data + start,
				   out->len - start, sk, sd->sig);
	if (rc == BS_OK) {
		buf_append(out, sd->sig, SIGN_BYTES);
		rc = out->status;
	}
	if (rc && out->status == BS_OK)
		out->len = start;
	return rc;
}

enum bs_status statedigest_open(const uint8_t *p, size_t len,
				const uint8_t pk[SIGN_PUBLIC_BYTES],
				struct statedigest *out)
{
	struct wire_reader r;
	const uint8_t *m;
	size_t n, signed_len;
	uint8_t version;
	enum bs_status rc;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, p, len);
	if ((rc = wire_get_bytes(&r, 4, &m)))
		return rc;
	if (memcmp(m, statedigest_magic, 4) != 0)
		return BS_EMAGIC;
	if ((rc = wire_get_u8(&r, &version)))
		return rc;
	if (version != 1)
		return BS_EVERSION;
	if ((rc = wire_get_blob(&r, CHECKPOINT_ORIGIN_MAX, &m, &n)))
		return rc;
	memcpy(out->origin, m, n);
	if (!origin_ok(out->origin, n))
		return BS_EINVALID;
	if ((rc = wire_get_varint(&r, &out->log_size)) ||
	    (rc = wire_get_fixed(&r, out->digest, HASH_BYTES)) ||
	    (rc = wire_get_u64be(&r, &out->time_ms)))
		return rc;
	signed_len = r.pos;
	if ((rc = wire_get_fixed(&r, out->sig, SIGN_BYTES)) ||
	    (rc = wire_expect_end(&r)))
		return rc;
	return sign_verify(SIGN_DIGEST, p, signed_len, out->sig, pk);
}
