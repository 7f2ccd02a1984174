/* changeset.c - signed change set codec (protocol/FORMAT.md, "Change sets"). */
#include "changeset.h"

#include <string.h>

#include "wire.h"

static const uint8_t changeset_magic[4] = {'B', 'S', 'C', 'S'};
static const uint8_t zero_hash[HASH_BYTES];

int changeset_scope_valid(const char *s, size_t len)
{
	size_t i;

	if (len < 1 || len > CHANGESET_SCOPE_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '_' || c == '.' ||
			 c == ':' || c == '-';
		if (!ok)
			return 0;
	}
	return 1;
}

/* The rules both the encoder and the decoder enforce, so that anything we
 * can encode we can decode and vice versa. */
static enum bs_status envelope_check(const struct changeset_envelope *env)
{
	int prev_zero = memcmp(env->prev, zero_hash, HASH_BYTES) == 0;

	if (env->seq == 0 || (env->seq == 1) != prev_zero)
		return BS_EINVALID;
	/* strnlen: a caller's scope that fills the array without a NUL must be
	 * refused, not read past. */
	if (!changeset_scope_valid(env->scope,
				   strnlen(env->scope, sizeof env->scope)))
		return BS_EINVALID;
	if (env->schema_version == 0 || env->body_len == 0)
		return BS_EINVALID;
	if (env->body_len > CHANGESET_MAX_BODY)
		return BS_ELIMIT;
	return BS_OK;
}

enum bs_status changeset_encode_envelope(const struct changeset_envelope *env,
					 struct buf *out)
{
	enum bs_status rc = envelope_check(env);

	if (rc)
		return rc;
	buf_append(out, changeset_magic, sizeof changeset_magic);
	buf_append_u8(out, CHANGESET_VERSION);
	buf_append(out, env->author, SIGN_PUBLIC_BYTES);
	wire_put_varint(out, env->seq);
	buf_append(out, env->prev, HASH_BYTES);
	wire_put_u64be(out, env->hlc);
	wire_put_blob(out, env->scope, strnlen(env->scope, sizeof env->scope));
	wire_put_varint(out, env->schema_version);
	wire_put_varint(out, env->body_len);
	buf_append(out, env->body_hash, HASH_BYTES);
	return out->status;
}

enum bs_status changeset_sign(struct changeset_envelope *env,
			      const uint8_t *body, size_t body_len,
			      const uint8_t sk[SIGN_SECRET_BYTES],
			      struct buf *out, uint8_t id[HASH_BYTES])
{
	size_t start = out->len;
	uint8_t sig[SIGN_BYTES];
	enum bs_status rc;

	env->body_len = body_len;
	hash_sha256(env->body_hash, body, body_len, NULL, 0);
	rc = changeset_encode_envelope(env, out);
	if (rc)
		goto cleanup;
	rc = sign_detached(SIGN_CHANGESET, out->data + start, out->len - start,
			   sk, sig);
	if (rc)
		goto cleanup;
	buf_append(out, sig, SIGN_BYTES);
	if (out->status) {
		rc = out->status;
		goto cleanup;
	}
	hash_sha256(id, out->data + start, out->len - start, NULL, 0);
	buf_append(out, body, body_len);
	rc = out->status;
cleanup:
	if (rc && out->status == BS_OK)
		out->len = start;
	return rc;
}

static enum bs_status envelope_decode(struct wire_reader *r,
				      struct changeset_envelope *env)
{
	const uint8_t *p;
	size_t n;
	uint8_t version;
	enum bs_status rc;

	if ((rc = wire_get_bytes(r, 4, &p)))
		return rc;
	if (memcmp(p, changeset_magic, 4) != 0)
		return BS_EMAGIC;
	if ((rc = wire_get_u8(r, &version)))
		return rc;
	if (version != CHANGESET_VERSION)
		return BS_EVERSION;
	if ((rc = wire_get_fixed(r, env->author, SIGN_PUBLIC_BYTES)) ||
	    (rc = wire_get_varint(r, &env->seq)) ||
	    (rc = wire_get_fixed(r, env->prev, HASH_BYTES)) ||
	    (rc = wire_get_u64be(r, &env->hlc)) ||
	    (rc = wire_get_blob(r, CHANGESET_SCOPE_MAX, &p, &n)))
		return rc;
	memcpy(env->scope, p, n);
	env->scope[n] = '\0';
	if (!changeset_scope_valid(env->scope, n))
		return BS_EINVALID;
	if ((rc = wire_get_varint(r, &env->schema_version)) ||
	    (rc = wire_get_varint(r, &env->body_len)))
		return rc;
	if (env->body_len > CHANGESET_MAX_BODY)
		return BS_ELIMIT;
	if ((rc = wire_get_fixed(r, env->body_hash, HASH_BYTES)))
		return rc;
	return envelope_check(env);
}

enum bs_status changeset_decode(const uint8_t *p, size_t len,
				struct changeset *out)
{
	struct wire_reader r;
	uint8_t hash[HASH_BYTES];
	enum bs_status rc;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, p, len);
	rc = envelope_decode(&r, &out->env);
	if (rc)
		return rc;
	out->env_bytes = p;
	out->env_len = r.pos;
	if ((rc = wire_get_bytes(&r, SIGN_BYTES, &out->sig)) ||
	    (rc = wire_get_bytes(&r, (size_t)out->env.body_len, &out->body)))
		return rc;
	out->body_len = (size_t)out->env.body_len;
	if ((rc = wire_expect_end(&r)))
		return rc;
	hash_sha256(hash, out->body, out->body_len, NULL, 0);
	if (memcmp(hash, out->env.body_hash, HASH_BYTES) != 0)
		return BS_EHASH;
	out->encoded_len = len;
	hash_sha256(out->id, p, out->env_len + SIGN_BYTES, NULL, 0);
	return BS_OK;
}

enum bs_status changeset_verify(const struct changeset *cs)
{
	return sign_verify(SIGN_CHANGESET, cs->env_bytes, cs->env_len, cs->sig,
			   cs->env.author);
}
