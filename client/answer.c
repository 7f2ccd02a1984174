/* answer.c - reading the district server's answers (see answer.h): frame
 * streams, signed checkpoints, ENTRY frames and error answers. Not for what
 * the frames mean. */
#include "answer.h"

#include <stdio.h>
#include <string.h>

#include "wire.h"

void answer_frames_init(struct answer_frames *f, const struct buf *body,
			size_t max_payload)
{
	frame_reader_init(&f->fr, max_payload);
	f->p = body->data;
	f->len = body->len;
	f->off = 0;
}

int answer_frames_next(struct answer_frames *f, struct frame *out,
		       struct err *e)
{
	enum bs_status st;
	size_t used;

	for (;;) {
		if (frame_reader_next(&f->fr, out))
			return 1;
		if (f->off >= f->len)
			break;
		st = frame_reader_feed(&f->fr, f->p + f->off, f->len - f->off,
				       &used);
		if (st)
			goto bad;
		f->off += used;
	}
	st = frame_reader_finish(&f->fr);
	if (st == BS_OK)
		return 0;
bad:
	if (st == BS_ENOMEM)
		err_set(e, ERR_INVALID, "out of memory reading the answer");
	else
		err_set(e, ERR_VERIFY, "the server's answer is not a valid "
			"frame stream (%s at byte %llu)", bs_status_str(st),
			(unsigned long long)f->fr.consumed);
	return -1;
}

int answer_frames_expect(struct answer_frames *f, unsigned type,
			 const char *what, struct frame *out, struct err *e)
{
	int rc = answer_frames_next(f, out, e);

	if (rc < 0)
		return -1;
	if (rc == 0 || out->type != type) {
		err_set(e, ERR_VERIFY, "the server's answer lacks the %s "
			"where it belongs", what);
		return -1;
	}
	return 0;
}

void answer_frames_release(struct answer_frames *f)
{
	frame_reader_release(&f->fr);
}

int answer_frames_end(struct answer_frames *f, struct err *e)
{
	struct frame x;
	int rc = answer_frames_next(f, &x, e);

	if (rc < 0)
		return -1;
	if (rc > 0) {
		err_set(e, ERR_VERIFY, "the server's answer has an unexpected "
			"frame of type %u", x.type);
		return -1;
	}
	return 0;
}

int answer_checkpoint_open(const uint8_t *p, size_t len,
			   const uint8_t pk[SIGN_PUBLIC_BYTES],
			   const char *origin, struct checkpoint *out,
			   struct err *e)
{
	enum bs_status st = checkpoint_decode(p, len, out);

	if (st) {
		err_set(e, ERR_VERIFY, "the server's checkpoint is malformed "
			"(%s)", bs_status_str(st));
		return -1;
	}
	if (checkpoint_verify(out, pk) != BS_OK) {
		err_set(e, ERR_VERIFY,
			"the server's checkpoint of %llu entries "
			"is not signed by the server's key",
			(unsigned long long)out->size);
		return -1;
	}
	if (strcmp(out->origin, origin) != 0) {
		err_set(e, ERR_VERIFY, "the server's checkpoint is for the log "
			"of '%.64s', not of '%.64s'", out->origin, origin);
		return -1;
	}
	return 0;
}

size_t answer_checkpoint_bytes(const struct checkpoint *cp,
			       uint8_t out[CHECKPOINT_SIGNED_MAX])
{
	memcpy(out, cp->raw, cp->raw_len);
	memcpy(out + cp->raw_len, cp->sig, SIGN_BYTES);
	return cp->raw_len + SIGN_BYTES;
}

int answer_entry_split(const uint8_t *p, size_t len, uint64_t *index,
		       const uint8_t **entry, size_t *elen, struct err *e)
{
	struct wire_reader r;

	wire_reader_init(&r, p, len);
	if (wire_get_varint(&r, index) != BS_OK || wire_remaining(&r) == 0) {
		err_set(e, ERR_VERIFY, "the server sent a malformed log entry "
			"frame");
		return -1;
	}
	*entry = p + r.pos;
	*elen = wire_remaining(&r);
	return 0;
}

int answer_http_error(const struct transport_reply *reply, const char *what,
		      struct err *e)
{
	char msg[300];

	transport_reply_message(reply, msg, sizeof msg);
	if (reply->status == 408 || reply->status == 429 ||
	    reply->status >= 500)
		err_set(e, ERR_UNREACHABLE, "the server could not answer the "
			"%s (%s)", what, msg);
	else if (reply->status == 401 || reply->status == 403)
		err_set(e, ERR_INVALID, "the server does not let this device "
			"%s: %s", what, msg);
	else
		err_set(e, ERR_INVALID, "the server refused the %s: %s", what,
			msg);
	return -1;
}

int answer_get(struct transport *t, const char *target, unsigned flags,
	       const char *what, struct transport_reply *rep, struct err *e)
{
	if (transport_request(t, "GET", target, NULL, 0,
			      flags | TRANSPORT_IDEMPOTENT, rep, e))
		return -1;
	if (rep->status != 200)
		return answer_http_error(rep, what, e);
	return 0;
}
