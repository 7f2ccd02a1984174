/* buf.c - capped growable byte buffer (see buf.h). */
#include "buf.h"

#include <string.h>

#include <sodium.h>

#include "mem.h"

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->status = BS_OK;
}

static int buf_grow(struct buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 64;
	uint8_t *p;

	while (cap < need)
		cap = cap > b->max / 2 ? b->max : cap * 2;
	if (cap > b->max)
		cap = b->max;
	p = mem_realloc(b->data, cap);
	if (!p) {
		b->status = BS_ENOMEM;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
	if (b->status || n == 0)
		return;
	if (n > b->max - b->len) {
		b->status = BS_ELIMIT;
		return;
	}
	if (b->len + n > b->cap && buf_grow(b, b->len + n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void buf_append_u8(struct buf *b, uint8_t v) { buf_append(b, &v, 1); }

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->status = BS_OK;
}

void buf_release(struct buf *b)
{
	if (b->data) {
		sodium_memzero(b->data, b->cap);
		mem_free(b->data);
	}
	buf_init(b, b->max);
}

uint8_t *buf_detach(struct buf *b, size_t *len)
{
	uint8_t *p = b->data;

	*len = 0;
	if (b->status || b->len == 0) {
		buf_release(b);
		return NULL;
	}
	*len = b->len;
	buf_init(b, b->max);
	return p;
}
