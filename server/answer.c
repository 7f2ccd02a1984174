/* answer.c - the parts of branchsyncd's answers and requests that every
 * endpoint shares (see answer.h). */
#include "answer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "frame.h"
#include "wire.h"
#include "zbuf.h"

void answer_fail(struct http_response *resp, int status, const char *fmt, ...)
{
	char msg[512];
	struct buf b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	buf_init(&b, 4096); /* a 512-byte message escapes to at most 3072 */
	buf_append(&b, "{\"error\": ", 10);
	cli_json_append(&b, msg, strlen(msg));
	buf_append(&b, "}\n", 2);
	http_response_set(resp, status, "application/json", b.data, b.len);
	buf_release(&b);
}

/* Whether Accept-Encoding value ae lists coding `name` with a weight
 * other than q=0 (RFC 9110, section 12.5.3). */
static int accepts(const char *ae, const char *name)
{
	size_t n = strlen(name);
	const char *p = ae, *q;

	while ((p = strstr(p, name)) != NULL) {
		q = p + n;
		if ((p == ae || p[-1] == ' ' || p[-1] == ',') &&
		    (*q == '\0' || *q == ',' || *q == ';' || *q == ' ')) {
			while (*q == ' ' || *q == ';')
				q++;
			return !(strncmp(q, "q=0", 3) == 0 &&
				 strspn(q + 3, ".0") == strcspn(q + 3, ", "));
		}
		p = q;
	}
	return 0;
}

/* The coding of an answer: zstd if the client takes it, else deflate if
 * it takes that, else none. */
static const char *answer_coding(const struct http_request *req)
{
	const char *ae = http_request_header(req, "Accept-Encoding");

	if (!ae)
		return NULL;
	if (accepts(ae, "zstd"))
		return "zstd";
	if (accepts(ae, "deflate"))
		return "deflate";
	return NULL;
}

/* Hands buffer b over to the answer, without a copy. */
static void answer_take(struct http_response *resp, struct buf *b)
{
	uint8_t *p;
	size_t n;

	p = buf_detach(b, &n);
	http_response_take(resp, 200, ANSWER_CONTENT_TYPE, p, n);
}

/* Ends the frame stream in b and sends it, compressed when asked and
 * when that makes it smaller. */
void answer_send_frames(const struct http_request *req,
			struct http_response *resp, struct buf *b)
{
	const char *coding = answer_coding(req);
	struct buf z;
	enum bs_status st;

	frame_stream_end(b);
	if (b->status) {
		answer_fail(resp, 500, "answer too large or out of memory");
		return;
	}
	if (!coding || b->len < 64) {
		answer_take(resp, b);
		return;
	}
	buf_init(&z, b->len);
	st = strcmp(coding, "zstd") == 0 ? zbuf_zstd(b->data, b->len, &z)
					 : zbuf_deflate(b->data, b->len, &z);
	if (st == BS_OK) {
		answer_take(resp, &z);
		http_response_header(resp, "Content-Encoding", coding);
	} else {
		/* BS_ELIMIT: it would not shrink */
		answer_take(resp, b);
	}
	buf_release(&z);
}

void answer_checkpoint_frame(struct buf *b, const struct checkpoint *cp)
{
	uint8_t bytes[CHECKPOINT_SIGNED_MAX];

	memcpy(bytes, cp->raw, cp->raw_len);
	memcpy(bytes + cp->raw_len, cp->sig, SIGN_BYTES);
	frame_put(b, FRAME_CHECKPOINT, bytes, cp->raw_len + SIGN_BYTES);
}

void answer_proof_frame(struct buf *b, enum proof_kind kind,
			uint64_t first, uint64_t second,
			const struct merkle_path *path)
{
	struct proof p;
	struct buf enc;

	memset(&p, 0, sizeof p);
	p.kind = kind;
	p.first = first;
	p.second = second;
	p.path = *path;
	buf_init(&enc, PROOF_MAX_ENCODED);
	if (proof_encode(&p, &enc) == BS_OK)
		frame_put(b, FRAME_PROOF, enc.data, enc.len);
	else
		b->status = enc.status ? enc.status : BS_EINVALID;
	buf_release(&enc);
}

void answer_entry_frame(struct buf *b, uint64_t index, const void *entry,
			size_t len)
{
	struct buf f;

	buf_init(&f, len + WIRE_VARINT_MAX);
	wire_put_varint(&f, index);
	buf_append(&f, entry, len);
	if (f.status)
		b->status = f.status;
	else
		frame_put(b, FRAME_ENTRY, f.data, f.len);
	buf_release(&f);
}

int answer_arg_u64(const struct http_request *req, const char *name,
		   uint64_t dflt, uint64_t *out)
{
	const char *v = http_request_arg(req, name);
	char *end;
	unsigned long long n;

	*out = dflt;
	if (!v)
		return 0;
	if (!*v || *v == '-' || *v == '+' || *v == ' ')
		return -1;
	n = strtoull(v, &end, 10);
	if (*end)
		return -1;
	*out = n;
	return 0;
}


/* The body of a POST as a plain frame stream: content type checked and
 * deflate undone. *plain points into req or into inflated (released by the
 * caller). */
int answer_post_body(const struct http_request *req,
		     struct http_response *resp, struct buf *inflated,
		     const uint8_t **plain, size_t *len)
{
	const char *ct = http_request_header(req, "Content-Type");
	const char *ce = http_request_header(req, "Content-Encoding");
	enum bs_status st;

	if (!ct || strcasecmp(ct, ANSWER_CONTENT_TYPE) != 0) {
		answer_fail(resp, 415, "send frame streams as %s",
			    ANSWER_CONTENT_TYPE);
		return -1;
	}
	*plain = req->body;
	*len = req->body_len;
	if (!ce || strcasecmp(ce, "identity") == 0)
		return 0;
	if (strcasecmp(ce, "zstd") == 0)
		st = zbuf_unzstd(req->body, req->body_len, inflated);
	else if (strcasecmp(ce, "deflate") == 0)
		st = zbuf_inflate(req->body, req->body_len, inflated);
	else {
		answer_fail(resp, 415,
			    "unsupported Content-Encoding; use zstd or "
			    "deflate");
		return -1;
	}
	switch (st) {
	case BS_OK:
		*plain = inflated->data;
		*len = inflated->len;
		return 0;
	case BS_ELIMIT:
		answer_fail(resp, 413, "the body inflates beyond %u bytes",
			    ANSWER_MAX_BODY);
		return -1;
	case BS_ENOMEM:
		answer_fail(resp, 503,
			    "out of memory decompressing the body; try "
			    "again");
		return -1;
	default:
		answer_fail(resp, 400, "the compressed body is corrupt");
		return -1;
	}
}
