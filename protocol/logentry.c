/* logentry.c - log entry codec (protocol/FORMAT.md, "Log entries"). */
#include "logentry.h"

#include <string.h>

#include "merkle.h"
#include "wire.h"

static const uint8_t logentry_magic[4] = {'B', 'S', 'L', 'E'};

static enum bs_status logentry_check(const struct logentry *le)
{
	if (le->kind < LOGENTRY_CHANGESET || le->kind > LOGENTRY_REVOCATION)
		return BS_EINVALID;
	if (le->verdict != LOGENTRY_ACCEPTED && le->verdict != LOGENTRY_REFUSED)
		return BS_EINVALID;
	if (le->verdict == LOGENTRY_REFUSED &&
	    (le->kind != LOGENTRY_CHANGESET || le->reason_len == 0))
		return BS_EINVALID;
	if (le->verdict == LOGENTRY_ACCEPTED && le->reason_len != 0)
		return BS_EINVALID;
	if (le->reason_len > LOGENTRY_REASON_MAX || le->payload_len == 0)
		return BS_EINVALID;
	/* what the decoder would refuse, the encoder must not write */
	if (le->payload_len > CHANGESET_MAX_ENCODED)
		return BS_ELIMIT;
	return wire_printable(le->reason, le->reason_len) ? BS_OK : BS_EINVALID;
}

enum bs_status logentry_encode(const struct logentry *le, struct buf *out)
{
	enum bs_status rc = logentry_check(le);

	if (rc)
		return rc;
	buf_append(out, logentry_magic, 4);
	buf_append_u8(out, LOGENTRY_VERSION);
	buf_append_u8(out, (uint8_t)le->kind);
	buf_append_u8(out, (uint8_t)le->verdict);
	wire_put_blob(out, le->reason, le->reason_len);
	wire_put_blob(out, le->payload, le->payload_len);
	return out->status;
}

enum bs_status logentry_decode(const uint8_t *p, size_t len,
			       struct logentry *out)
{
	struct wire_reader r;
	const uint8_t *m, *reason;
	uint8_t version, kind, verdict;
	enum bs_status rc;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, p, len);
	if ((rc = wire_get_bytes(&r, 4, &m)))
		return rc;
	if (memcmp(m, logentry_magic, 4) != 0)
		return BS_EMAGIC;
	if ((rc = wire_get_u8(&r, &version)))
		return rc;
	if (version != LOGENTRY_VERSION)
		return BS_EVERSION;
	if ((rc = wire_get_u8(&r, &kind)) || (rc = wire_get_u8(&r, &verdict)) ||
	    (rc = wire_get_blob(&r, LOGENTRY_REASON_MAX, &reason,
				&out->reason_len)) ||
	    (rc = wire_get_blob(&r, CHANGESET_MAX_ENCODED, &out->payload,
				&out->payload_len)) ||
	    (rc = wire_expect_end(&r)))
		return rc;
	out->kind = (enum logentry_kind)kind;
	out->verdict = (enum logentry_verdict)verdict;
	out->reason = (const char *)reason;
	return logentry_check(out);
}

void logentry_leaf_hash(const uint8_t *entry, size_t len,
			uint8_t out[HASH_BYTES])
{
	merkle_leaf_hash(out, entry, len);
}
