/* request.c - request signing input (protocol/FORMAT.md, "Requests"). */
#include "request.h"

#include <string.h>

#include "buf.h"
#include "wire.h"

/* blob(method) || blob(path) || body hash || challenge || device key */
static enum bs_status request_message(const struct request_auth *ra,
				      struct buf *b)
{
	size_t mlen = strlen(ra->method), plen = strlen(ra->path);

	if (mlen == 0 || mlen > REQUEST_METHOD_MAX || plen == 0 ||
	    plen > REQUEST_PATH_MAX)
		return BS_EINVALID;
	wire_put_blob(b, ra->method, mlen);
	wire_put_blob(b, ra->path, plen);
	buf_append(b, ra->body_hash, HASH_BYTES);
	buf_append(b, ra->challenge, REQUEST_CHALLENGE_BYTES);
	buf_append(b, ra->device, SIGN_PUBLIC_BYTES);
	return b->status;
}

enum bs_status request_sign(const struct request_auth *ra,
			    const uint8_t sk[SIGN_SECRET_BYTES],
			    uint8_t sig[SIGN_BYTES])
{
	struct buf b;
	enum bs_status rc;

	buf_init(&b, 4 * REQUEST_PATH_MAX);
	rc = request_message(ra, &b);
	if (rc == BS_OK)
		rc = sign_detached(SIGN_REQUEST, b.data, b.len, sk, sig);
	buf_release(&b);
	return rc;
}

enum bs_status request_verify(const struct request_auth *ra,
			      const uint8_t sig[SIGN_BYTES])
{
	struct buf b;
	enum bs_status rc;

	buf_init(&b, 4 * REQUEST_PATH_MAX);
	rc = request_message(ra, &b);
	if (rc == BS_OK)
		rc = sign_verify(SIGN_REQUEST, b.data, b.len, sig, ra->device);
	buf_release(&b);
	return rc;
}
