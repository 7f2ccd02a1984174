/* buf.h - a growable byte buffer with a hard maximum size and a sticky error.
 * Every buffer that may hold untrusted or unbounded bytes is created with a
 * cap (the first defence against hostile input). Once an append fails, the
 * buffer remembers why and ignores later appends, so encoders can write a
 * whole object straight down and check `b->status` once at the end. */
#ifndef BS_BUF_H
#define BS_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "bs_status.h"

struct buf {
	uint8_t *data;          /* owned; NULL while empty */
	size_t len;
	size_t cap;
	size_t max;             /* appends beyond this fail with BS_ELIMIT */
	enum bs_status status;  /* first failure, or BS_OK */
};

void buf_init(struct buf *b, size_t max);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_append_u8(struct buf *b, uint8_t v);
/* Empties the buffer but keeps its memory, and clears the error. */
void buf_reset(struct buf *b);
/* Frees the memory (wiping it first) and re-initialises with the same max. */
void buf_release(struct buf *b);
/* Hands the bytes to the caller (free with mem_free); the buffer is emptied.
 * Returns NULL if the buffer is empty or in error. */
uint8_t *buf_detach(struct buf *b, size_t *len /* OUT */);

#endif
