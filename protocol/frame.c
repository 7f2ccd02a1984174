/* frame.c - frame stream writer and incremental reader (see frame.h and
 * protocol/FORMAT.md, section "Frame streams"). Knows nothing of what the
 * payloads mean. */
#include "frame.h"

#include <string.h>

/* What frame_reader_next hands out for an empty payload: never NULL. */
static const uint8_t frame_empty[1];

void frame_stream_begin(struct buf *b)
{
	buf_append(b, FRAME_MAGIC, FRAME_MAGIC_LEN);
	buf_append_u8(b, FRAME_VERSION);
}

void frame_put(struct buf *b, unsigned type, const void *payload, size_t len)
{
	if (type == FRAME_END || type > FRAME_TYPE_MAX) {
		if (b->status == BS_OK)
			b->status = BS_EINVALID;
		return;
	}
	buf_append_u8(b, (uint8_t)type);
	wire_put_varint(b, len);
	buf_append(b, payload, len);
}

void frame_stream_end(struct buf *b)
{
	buf_append_u8(b, FRAME_END);
	buf_append_u8(b, 0);
}

void frame_reader_init(struct frame_reader *r, size_t max_payload)
{
	memset(r, 0, sizeof *r);
	r->max_payload = max_payload;
	r->state = FRAME_RS_MAGIC;
	r->status = BS_OK;
	buf_init(&r->payload, max_payload);
}

/* The varint length is complete in r->len_bytes: check it, then decide
 * whether a payload follows. Nothing is buffered before this check. */
static enum bs_status frame_reader_length(struct frame_reader *r)
{
	struct wire_reader w;
	uint64_t n;
	enum bs_status rc;

	wire_reader_init(&w, r->len_bytes, r->len_n);
	rc = wire_get_varint(&w, &n);
	if (rc)
		goto cleanup;
	if (r->type == FRAME_END) {
		if (n != 0) {
			rc = BS_EINVALID;
			goto cleanup;
		}
		r->state = FRAME_RS_DONE;
		goto cleanup;
	}
	if (n > r->max_payload) {
		rc = BS_ELIMIT;
		goto cleanup;
	}
	r->payload_len = (size_t)n;
	buf_reset(&r->payload);
	r->state = n ? FRAME_RS_PAYLOAD : FRAME_RS_READY;
cleanup:
	return rc;
}

/* Advances the state machine by one byte of everything but payload. */
static enum bs_status frame_reader_byte(struct frame_reader *r, uint8_t byte)
{
	enum bs_status rc = BS_OK;

	switch (r->state) {
	case FRAME_RS_MAGIC:
		/* Fail at the first wrong byte: a non-stream is told early. */
		if (byte != (uint8_t)FRAME_MAGIC[r->hdr_len]) {
			rc = BS_EMAGIC;
			break;
		}
		if (++r->hdr_len == FRAME_MAGIC_LEN)
			r->state = FRAME_RS_VERSION;
		break;
	case FRAME_RS_VERSION:
		if (byte != FRAME_VERSION) {
			rc = BS_EVERSION;
			break;
		}
		r->state = FRAME_RS_TYPE;
		break;
	case FRAME_RS_TYPE:
		if (byte > FRAME_TYPE_MAX) {
			rc = BS_EINVALID;
			break;
		}
		r->type = byte;
		r->len_n = 0;
		r->state = FRAME_RS_LENGTH;
		break;
	case FRAME_RS_LENGTH:
		r->len_bytes[r->len_n++] = byte;
		/* Ten bytes is the longest varint; wire_get_varint judges it. */
		if (!(byte & 0x80) || r->len_n == WIRE_VARINT_MAX)
			rc = frame_reader_length(r);
		break;
	case FRAME_RS_DONE:
		rc = BS_ETRAILING;
		break;
	case FRAME_RS_PAYLOAD:
	case FRAME_RS_READY:
		rc = BS_ESTATE; /* unreachable: frame_reader_feed handles these */
		break;
	}
	return rc;
}

enum bs_status frame_reader_feed(struct frame_reader *r, const void *data,
				 size_t len, size_t *used)
{
	const uint8_t *p = data;
	size_t i = 0;
	enum bs_status rc = BS_OK;

	*used = 0;
	if (r->status) {
		rc = r->status;
		goto cleanup;
	}
	if (r->state == FRAME_RS_READY) {
		rc = BS_ESTATE;
		goto cleanup;
	}
	while (i < len && r->state != FRAME_RS_READY) {
		if (r->state == FRAME_RS_PAYLOAD) {
			size_t want = r->payload_len - r->payload.len;
			size_t n = len - i < want ? len - i : want;

			buf_append(&r->payload, p + i, n);
			if (r->payload.status) {
				rc = r->status = r->payload.status;
				break;
			}
			i += n;
			if (r->payload.len == r->payload_len)
				r->state = FRAME_RS_READY;
			continue;
		}
		rc = frame_reader_byte(r, p[i]);
		if (rc) {
			r->status = rc;
			break;
		}
		i++;
	}
	r->consumed += i;
	*used = i;
cleanup:
	return rc;
}

bool frame_reader_next(struct frame_reader *r, struct frame *f)
{
	if (r->status || r->state != FRAME_RS_READY)
		return false;
	f->type = r->type;
	f->len = r->payload_len;
	f->payload = f->len ? r->payload.data : frame_empty;
	r->state = FRAME_RS_TYPE;
	return true;
}

enum bs_status frame_reader_finish(const struct frame_reader *r)
{
	if (r->status)
		return r->status;
	return r->state == FRAME_RS_DONE ? BS_OK : BS_ETRUNCATED;
}

void frame_reader_release(struct frame_reader *r)
{
	buf_release(&r->payload);
	frame_reader_init(r, r->max_payload);
}
