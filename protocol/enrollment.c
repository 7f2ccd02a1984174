/* enrollment.c - signed enrollments and revocations (protocol/FORMAT.md,
 * "Enrollments and revocations"). */
#include "enrollment.h"

#include <string.h>

#include "changeset.h"
#include "wire.h"

static const uint8_t enrollment_magic[4] = {'B', 'S', 'E', 'N'};
static const uint8_t revocation_magic[4] = {'B', 'S', 'R', 'V'};

const char *enrollment_role_name(enum enrollment_role role)
{
	switch (role) {
	case ROLE_BRANCH: return "branch";
	case ROLE_DISTRICT: return "district";
	case ROLE_AUDITOR: return "auditor";
	}
	return NULL;
}

int enrollment_role_parse(const char *name, enum enrollment_role *role)
{
	if (strcmp(name, "branch") == 0)
		*role = ROLE_BRANCH;
	else if (strcmp(name, "district") == 0)
		*role = ROLE_DISTRICT;
	else if (strcmp(name, "auditor") == 0)
		*role = ROLE_AUDITOR;
	else
		return -1;
	return 0;
}

/* Printable text without control bytes (names are shown to people). */
static int text_valid(const char *s, size_t len, size_t max, int allow_empty)
{
	return len <= max && (allow_empty || len > 0) && wire_printable(s, len);
}

static int enrollment_valid(const struct enrollment *en)
{
	size_t slen = strnlen(en->scope, sizeof en->scope);
	int district;

	if (!enrollment_role_name(en->role) ||
	    !changeset_scope_valid(en->scope, slen))
		return 0;
	/* district and auditor devices see everything: their scope says so.
	 * "district" names no branch (it is the scope of district-wide rows),
	 * so a branch device may not claim it. */
	district = strcmp(en->scope, "district") == 0;
	if (en->role == ROLE_BRANCH ? district : !district)
		return 0;
	return text_valid(en->name, strnlen(en->name, sizeof en->name),
			  ENROLLMENT_NAME_MAX, 1);
}

static void enrollment_encode(const struct enrollment *en, struct buf *out)
{
	buf_append(out, enrollment_magic, 4);
	buf_append_u8(out, ENROLLMENT_VERSION);
	buf_append(out, en->device, SIGN_PUBLIC_BYTES);
	buf_append_u8(out, (uint8_t)en->role);
	wire_put_blob(out, en->scope, strlen(en->scope));
	wire_put_blob(out, en->name, strlen(en->name));
	wire_put_u64be(out, en->time_ms);
}

/* Signs out[start..] under `kind`, appends the signature; on failure the
 * partial bytes are taken back out. */
static enum bs_status sign_tail(struct buf *out, size_t start,
				enum sign_kind kind,
				const uint8_t sk[SIGN_SECRET_BYTES],
				uint8_t sig[SIGN_BYTES])
{
	enum bs_status rc = out->status;

	if (rc == BS_OK)
		rc = sign_detached(kind, out->data + start, out->len - start, sk,
				   sig);
	if (rc == BS_OK) {
		buf_append(out, sig, SIGN_BYTES);
		rc = out->status;
	}
	if (rc && out->status == BS_OK)
		out->len = start;
	return rc;
}

enum bs_status enrollment_sign(struct enrollment *en,
			       const uint8_t sk[SIGN_SECRET_BYTES],
			       struct buf *out)
{
	size_t start = out->len;

	if (!enrollment_valid(en))
		return BS_EINVALID;
	enrollment_encode(en, out);
	return sign_tail(out, start, SIGN_ENROLLMENT, sk, en->sig);
}

/* Reads a blob into a NUL-terminated char array of max+1 bytes. */
static enum bs_status get_text(struct wire_reader *r, char *dst, size_t max)
{
	const uint8_t *p;
	size_t n;
	enum bs_status rc = wire_get_blob(r, max, &p, &n);

	if (rc == BS_OK) {
		memcpy(dst, p, n);
		dst[n] = '\0';
		if (memchr(dst, '\0', n))
			rc = BS_EINVALID;
	}
	return rc;
}

static enum bs_status expect_header(struct wire_reader *r,
				    const uint8_t magic[4])
{
	const uint8_t *p;
	uint8_t version;
	enum bs_status rc;

	if ((rc = wire_get_bytes(r, 4, &p)))
		return rc;
	if (memcmp(p, magic, 4) != 0)
		return BS_EMAGIC;
	if ((rc = wire_get_u8(r, &version)))
		return rc;
	return version == ENROLLMENT_VERSION ? BS_OK : BS_EVERSION;
}

enum bs_status enrollment_open(const uint8_t *p, size_t len,
			       const uint8_t pk[SIGN_PUBLIC_BYTES],
			       struct enrollment *out)
{
	struct wire_reader r;
	uint8_t role;
	size_t signed_len;
	enum bs_status rc;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, p, len);
	if ((rc = expect_header(&r, enrollment_magic)) ||
	    (rc = wire_get_fixed(&r, out->device, SIGN_PUBLIC_BYTES)) ||
	    (rc = wire_get_u8(&r, &role)) ||
	    (rc = get_text(&r, out->scope, ENROLLMENT_SCOPE_MAX)) ||
	    (rc = get_text(&r, out->name, ENROLLMENT_NAME_MAX)) ||
	    (rc = wire_get_u64be(&r, &out->time_ms)))
		return rc;
	out->role = (enum enrollment_role)role;
	if (!enrollment_valid(out))
		return BS_EINVALID;
	signed_len = r.pos;
	if ((rc = wire_get_fixed(&r, out->sig, SIGN_BYTES)) ||
	    (rc = wire_expect_end(&r)))
		return rc;
	return sign_verify(SIGN_ENROLLMENT, p, signed_len, out->sig, pk);
}

enum bs_status revocation_sign(struct revocation *rv,
			       const uint8_t sk[SIGN_SECRET_BYTES],
			       struct buf *out)
{
	size_t start = out->len;
	size_t rlen = strnlen(rv->reason, sizeof rv->reason);

	if (!text_valid(rv->reason, rlen, REVOCATION_REASON_MAX, 1))
		return BS_EINVALID;
	buf_append(out, revocation_magic, 4);
	buf_append_u8(out, ENROLLMENT_VERSION);
	buf_append(out, rv->device, SIGN_PUBLIC_BYTES);
	wire_put_u64be(out, rv->time_ms);
	wire_put_blob(out, rv->reason, rlen);
	return sign_tail(out, start, SIGN_REVOCATION, sk, rv->sig);
}

enum bs_status revocation_open(const uint8_t *p, size_t len,
			       const uint8_t pk[SIGN_PUBLIC_BYTES],
			       struct revocation *out)
{
	struct wire_reader r;
	size_t signed_len;
	enum bs_status rc;

	memset(out, 0, sizeof *out);
	wire_reader_init(&r, p, len);
	if ((rc = expect_header(&r, revocation_magic)) ||
	    (rc = wire_get_fixed(&r, out->device, SIGN_PUBLIC_BYTES)) ||
	    (rc = wire_get_u64be(&r, &out->time_ms)) ||
	    (rc = get_text(&r, out->reason, REVOCATION_REASON_MAX)))
		return rc;
	if (!text_valid(out->reason, strlen(out->reason),
			REVOCATION_REASON_MAX, 1))
		return BS_EINVALID;
	signed_len = r.pos;
	if ((rc = wire_get_fixed(&r, out->sig, SIGN_BYTES)) ||
	    (rc = wire_expect_end(&r)))
		return rc;
	return sign_verify(SIGN_REVOCATION, p, signed_len, out->sig, pk);
}
