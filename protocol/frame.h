/* frame.h - frame streams, the envelope of HTTP bodies and bundle files
 * (protocol/FORMAT.md, section "Frame streams"): magic "BSFS", a version
 * byte, then type + varint length + payload frames up to an END frame.
 * The reader is incremental with bounded memory. What a payload holds is
 * the business of the module that uses its type, not of this one. */
#ifndef BS_FRAME_H
#define BS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"
#include "buf.h"
#include "wire.h"

#define FRAME_MAGIC "BSFS"
#define FRAME_MAGIC_LEN 4
#define FRAME_VERSION 1
#define FRAME_HEADER_LEN 5 /* magic + version */

/* Types 1..127 belong to callers; each is defined in the section of the
 * format that uses it. 16..127 are unassigned but pass the reader; 128..255
 * are rejected (BS_EINVALID). */
enum frame_type {
	FRAME_END = 0, /* empty payload; marks a complete stream */
	FRAME_CHANGESET = 1,
	FRAME_RECEIPT = 2,
	FRAME_CHECKPOINT = 3,
	FRAME_PROOF = 4,
	FRAME_ENROLLMENT = 5,
	FRAME_REVOCATION = 6,
	FRAME_VERDICT = 7,
	FRAME_DIGEST = 8,
	FRAME_CURSOR = 9,
	FRAME_ERROR = 10,
	FRAME_META = 11,
	FRAME_ENTRY = 12, /* varint log index || log entry */
	FRAME_ROWHASH = 13, /* one record row's hash ("Row hashes") */
	FRAME_CHANGESET_COMPACT = 14, /* "Compact change sets" */
	FRAME_PUSHRECEIPT = 15, /* "Push receipts" */
	FRAME_TYPE_MAX = 127, /* the largest type a stream may carry */
};

/* Writers append to a struct buf; errors stick in b->status, so a stream
 * can be written straight down and b->status checked once. */

/* Appends the magic and version. */
void frame_stream_begin(struct buf *b);
/* Appends one frame. type must be 1..FRAME_TYPE_MAX, else b->status becomes
 * BS_EINVALID (if it was BS_OK) and nothing is appended. payload may be NULL
 * when len is 0. The buffer's max is the only bound on len. */
void frame_put(struct buf *b, unsigned type, const void *payload, size_t len);
/* Appends the END frame; nothing may follow it. */
void frame_stream_end(struct buf *b);

/* One frame handed out by the reader. payload points into the reader and
 * stays valid until the next frame_reader_feed or frame_reader_release;
 * it is never NULL, even when len is 0. */
struct frame {
	uint8_t type;
	const uint8_t *payload;
	size_t len;
};

/* Where the reader is in the byte layout; private to frame.c. */
enum frame_reader_state {
	FRAME_RS_MAGIC,
	FRAME_RS_VERSION,
	FRAME_RS_TYPE,
	FRAME_RS_LENGTH,
	FRAME_RS_PAYLOAD,
	FRAME_RS_READY, /* a complete frame waits for frame_reader_next */
	FRAME_RS_DONE,  /* END seen */
};

/* An incremental reader. Holds at most max_payload bytes of payload (one
 * frame) plus this struct, whatever the length of the stream. Fields are
 * private except `consumed`: the bytes accepted so far, which after an error
 * is the offset of the offending byte in the stream. */
struct frame_reader {
	size_t max_payload;
	enum frame_reader_state state;
	enum bs_status status; /* sticky: the first error */
	size_t hdr_len;        /* magic/version bytes seen */
	uint8_t type;
	uint8_t len_bytes[WIRE_VARINT_MAX]; /* the length, as it arrives */
	size_t len_n;
	size_t payload_len;
	struct buf payload;    /* capped at max_payload */
	uint64_t consumed;
};

/* Prepares a reader for one stream whose frames carry at most max_payload
 * bytes each. Allocates nothing yet: the payload buffer grows as payload
 * bytes arrive, never past max_payload. Release with frame_reader_release. */
void frame_reader_init(struct frame_reader *r, size_t max_payload);

/*
 * Takes bytes from data[0..len) until the current frame is complete or the
 * data is used up, and sets *used to how many it took; the caller offers the
 * rest again after taking the frame with frame_reader_next:
 *
 *	while (len > 0) {
 *		if ((rc = frame_reader_feed(&r, p, len, &used)))
 *			goto cleanup;
 *		p += used, len -= used;
 *		if (frame_reader_next(&r, &f))
 *			handle(&f);
 *	}
 *	rc = frame_reader_finish(&r);
 *
 * A frame's declared length is checked against max_payload before any of
 * its payload is buffered. Fails with the stream's first error, which
 * sticks (every later call returns it): BS_EMAGIC, BS_EVERSION, BS_EINVALID
 * (type >= 128, or END with a payload), BS_EOVERLONG (non-canonical
 * length), BS_ELIMIT (length over max_payload), BS_ETRAILING (a byte after
 * END), BS_ENOMEM. Returns BS_ESTATE, not sticky, with *used = 0, while a
 * complete frame has not been taken.
 */
enum bs_status frame_reader_feed(struct frame_reader *r, const void *data,
				 size_t len, size_t *used /* OUT */);

/* If a complete frame is waiting, fills *f, hands it over and returns true;
 * otherwise (more input needed, END seen, or an error) returns false. END
 * is never handed out: frame_reader_finish reports it. */
bool frame_reader_next(struct frame_reader *r, struct frame *f /* OUT */);

/* BS_OK if END was read and no error occurred; the sticky error if any;
 * BS_ETRUNCATED if the input stopped before END (inside a frame or not). */
enum bs_status frame_reader_finish(const struct frame_reader *r);

/* Frees (and wipes) the payload buffer and re-initialises the reader with
 * the same max_payload, so frames handed out before are no longer valid. */
void frame_reader_release(struct frame_reader *r);

#endif
