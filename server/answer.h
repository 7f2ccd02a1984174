/* answer.h - the parts of branchsyncd's answers and requests that every
 * endpoint shares: JSON errors, frame streams (compressed as the client
 * accepts), a POST's frame body and a query's numbers. */
#ifndef BS_ANSWER_H
#define BS_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "checkpoint.h"
#include "http.h"
#include "merkle.h"
#include "proof.h"

#define ANSWER_CONTENT_TYPE "application/x-branchsync"
#define ANSWER_MAX_BODY (16u << 20)

/* A JSON error answer with status and the formatted message. */
void answer_fail(struct http_response *resp, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Ends the frame stream in b and answers with it (b's bytes may be handed
 * over; b is still the caller's to release); a 500 if b failed. */
void answer_send_frames(const struct http_request *req,
			struct http_response *resp, struct buf *b);
/* Frames appended to b; a failure is left in b->status. */
void answer_checkpoint_frame(struct buf *b, const struct checkpoint *cp);
void answer_proof_frame(struct buf *b, enum proof_kind kind, uint64_t first,
			uint64_t second, const struct merkle_path *path);
void answer_entry_frame(struct buf *b, uint64_t index, const void *entry,
			size_t len);
/* Query argument `name` as a decimal number, dflt when absent; -1 if it is
 * not one. */
int answer_arg_u64(const struct http_request *req, const char *name,
		   uint64_t dflt, uint64_t *out /* OUT */);
/* The POST's frame stream, inflated into `inflated` (the caller's, capped
 * by the caller) when compressed; -1 with the error answer in resp. */
int answer_post_body(const struct http_request *req,
		     struct http_response *resp, struct buf *inflated,
		     const uint8_t **plain /* OUT */, size_t *len /* OUT */);

#endif
