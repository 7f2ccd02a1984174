/* answer.h - reading what the district server answers, for every command
 * that talks to it (enroll, sync): frame streams taken one frame at a time,
 * signed checkpoints opened and checked, ENTRY frames split, and error
 * answers turned into one sentence and an exit class (answer_get: a GET
 * that must answer 200). Not for judging what the frames mean (sync*.c,
 * enroll.c) nor for HTTP itself (transport.h). */
#ifndef BS_ANSWER_H
#define BS_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "err.h"
#include "frame.h"
#include "transport.h"

/* Hands out the frames of a whole answer body one at a time. The body
 * must outlive the reader; frames stay valid until the next call. The
 * reader allocates at most max_payload bytes; answer_frames_release frees
 * them, also after a failure. */
struct answer_frames {
	struct frame_reader fr;
	const uint8_t *p;
	size_t len, off;
};

void answer_frames_init(struct answer_frames *f, const struct buf *body,
			size_t max_payload);
/* 1 and *out for the next frame; 0 at a proper END; -1 with ERR_VERIFY
 * for a malformed stream (ERR_INVALID when out of memory). */
int answer_frames_next(struct answer_frames *f, struct frame *out /* OUT */,
		       struct err *e);
/* Takes the next frame, which must be of `type` (else ERR_VERIFY naming
 * `what`). */
int answer_frames_expect(struct answer_frames *f, unsigned type,
			 const char *what, struct frame *out /* OUT */,
			 struct err *e);
/* The stream must end here (ERR_VERIFY if another frame follows). */
int answer_frames_end(struct answer_frames *f, struct err *e);
void answer_frames_release(struct answer_frames *f);

/* Decodes a signed checkpoint and verifies its signature with pk and its
 * origin; ERR_VERIFY if any fails. Allocates nothing. */
int answer_checkpoint_open(const uint8_t *p, size_t len,
			   const uint8_t pk[SIGN_PUBLIC_BYTES],
			   const char *origin, struct checkpoint *out /* OUT */,
			   struct err *e);
/* The signed bytes of cp (encoding || signature) into out; returns their
 * length. */
size_t answer_checkpoint_bytes(const struct checkpoint *cp,
			       uint8_t out[CHECKPOINT_SIGNED_MAX]);

/* Splits an ENTRY frame into its log index and entry bytes (pointing into
 * p); ERR_VERIFY if malformed. */
int answer_entry_split(const uint8_t *p, size_t len,
		       uint64_t *index /* OUT */,
		       const uint8_t **entry /* OUT */, size_t *elen /* OUT */,
		       struct err *e);

/* Maps a non-200 answer onto an error about `what` ("push", "pull"):
 * ERR_UNREACHABLE for 408, 429 and 5xx, ERR_INVALID otherwise, with the
 * server's sentence. Returns -1. */
int answer_http_error(const struct transport_reply *reply, const char *what,
		      struct err *e);
/* GET target (idempotent, with transport_request's flags) and expect 200:
 * 0 with *rep filled (the caller releases it), or -1 with e set, a status
 * other than 200 reported as answer_http_error does for `what`. */
int answer_get(struct transport *t, const char *target, unsigned flags,
	       const char *what, struct transport_reply *rep, struct err *e);

#endif
