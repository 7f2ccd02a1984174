/* cscompact.c - compact change set codec (protocol/FORMAT.md, "Compact
 * change sets"). */
#include "cscompact.h"

#include <string.h>

#include "wire.h"

static const uint8_t cscompact_magic[4] = {'B', 'S', 'C', 'C'};

enum bs_status cscompact_encode(const struct changeset *cs, struct buf *out)
{
	const struct changeset_envelope *env = &cs->env;

	buf_append(out, cscompact_magic, sizeof cscompact_magic);
	buf_append_u8(out, CHANGESET_VERSION);
	wire_put_varint(out, env->seq);
	wire_put_u64be(out, env->hlc);
	wire_put_blob(out, env->scope, strnlen(env->scope, sizeof env->scope));
	wire_put_varint(out, env->schema_version);
	buf_append(out, cs->sig, SIGN_BYTES);
	buf_append(out, cs->body, cs->body_len);
	return out->status;
}

static enum bs_status head_decode(struct wire_reader *r, uint64_t *seq)
{
	const uint8_t *p;
	uint8_t version;
	enum bs_status rc;

	if ((rc = wire_get_bytes(r, sizeof cscompact_magic, &p)))
		return rc;
	if (memcmp(p, cscompact_magic, sizeof cscompact_magic) != 0)
		return BS_EMAGIC;
	if ((rc = wire_get_u8(r, &version)))
		return rc;
	if (version != CHANGESET_VERSION)
		return BS_EVERSION;
	if ((rc = wire_get_varint(r, seq)))
		return rc;
	return *seq == 0 ? BS_EINVALID : BS_OK;
}

enum bs_status cscompact_seq(const uint8_t *p, size_t len, uint64_t *seq)
{
	struct wire_reader r;

	wire_reader_init(&r, p, len);
	return head_decode(&r, seq);
}

enum bs_status cscompact_expand(const uint8_t *p, size_t len,
				const uint8_t author[SIGN_PUBLIC_BYTES],
				const uint8_t prev[HASH_BYTES],
				struct buf *out)
{
	struct changeset_envelope env;
	struct wire_reader r;
	const uint8_t *scope, *sig, *body;
	size_t start = out->len, scope_len, body_len;
	enum bs_status rc;

	memset(&env, 0, sizeof env);
	wire_reader_init(&r, p, len);
	if ((rc = head_decode(&r, &env.seq)) ||
	    (rc = wire_get_u64be(&r, &env.hlc)) ||
	    (rc = wire_get_blob(&r, CHANGESET_SCOPE_MAX, &scope, &scope_len)) ||
	    (rc = wire_get_varint(&r, &env.schema_version)) ||
	    (rc = wire_get_bytes(&r, SIGN_BYTES, &sig)))
		return rc;
	body_len = wire_remaining(&r);
	if (body_len == 0)
		return BS_ETRUNCATED;
	if (body_len > CHANGESET_MAX_BODY)
		return BS_ELIMIT;
	if ((rc = wire_get_bytes(&r, body_len, &body)))
		return rc;
	/* a scope with a NUL inside would shorten silently: refuse */
	if (!changeset_scope_valid((const char *)scope, scope_len))
		return BS_EINVALID;
	memcpy(env.author, author, SIGN_PUBLIC_BYTES);
	memcpy(env.prev, prev, HASH_BYTES);
	memcpy(env.scope, scope, scope_len);
	env.body_len = body_len;
	hash_sha256(env.body_hash, body, body_len, NULL, 0);
	/* the envelope encoder checks scope, seq against prev, and sizes */
	if ((rc = changeset_encode_envelope(&env, out)))
		goto cleanup;
	buf_append(out, sig, SIGN_BYTES);
	buf_append(out, body, body_len);
	rc = out->status;
cleanup:
	if (rc && out->status == BS_OK)
		out->len = start;
	return rc;
}
