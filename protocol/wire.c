/* wire.c - primitive encodings (protocol/FORMAT.md, "Primitives"). */
#include "wire.h"

#include <string.h>

void wire_reader_init(struct wire_reader *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
}

size_t wire_remaining(const struct wire_reader *r) { return r->len - r->pos; }

enum bs_status wire_get_u8(struct wire_reader *r, uint8_t *out)
{
	if (wire_remaining(r) < 1)
		return BS_ETRUNCATED;
	*out = r->p[r->pos++];
	return BS_OK;
}

enum bs_status wire_get_varint(struct wire_reader *r, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	size_t i;

	for (i = 0; i < WIRE_VARINT_MAX; i++) {
		uint8_t byte;

		if (r->pos + i >= r->len)
			return BS_ETRUNCATED;
		byte = r->p[r->pos + i];
		/* The 10th byte may only carry the top bit of a u64. */
		if (i == WIRE_VARINT_MAX - 1 && byte > 1)
			return BS_EOVERLONG;
		v |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			/* A zero final byte after others means a longer form. */
			if (byte == 0 && i > 0)
				return BS_EOVERLONG;
			r->pos += i + 1;
			*out = v;
			return BS_OK;
		}
		shift += 7;
	}
	return BS_EOVERLONG;
}

enum bs_status wire_get_u64be(struct wire_reader *r, uint64_t *out)
{
	uint64_t v = 0;
	int i;

	if (wire_remaining(r) < 8)
		return BS_ETRUNCATED;
	for (i = 0; i < 8; i++)
		v = (v << 8) | r->p[r->pos + i];
	r->pos += 8;
	*out = v;
	return BS_OK;
}

enum bs_status wire_get_bytes(struct wire_reader *r, size_t n,
			      const uint8_t **out)
{
	if (wire_remaining(r) < n)
		return BS_ETRUNCATED;
	*out = r->p + r->pos;
	r->pos += n;
	return BS_OK;
}

enum bs_status wire_get_fixed(struct wire_reader *r, void *dst, size_t n)
{
	const uint8_t *p;
	enum bs_status rc = wire_get_bytes(r, n, &p);

	if (rc == BS_OK)
		memcpy(dst, p, n);
	return rc;
}

enum bs_status wire_get_blob(struct wire_reader *r, size_t max,
			     const uint8_t **out, size_t *len)
{
	uint64_t n;
	enum bs_status rc = wire_get_varint(r, &n);

	if (rc)
		return rc;
	if (n > max)
		return BS_ELIMIT;
	if (n > wire_remaining(r))
		return BS_ETRUNCATED;
	*len = (size_t)n;
	return wire_get_bytes(r, (size_t)n, out);
}

enum bs_status wire_expect_end(const struct wire_reader *r)
{
	return r->pos == r->len ? BS_OK : BS_ETRAILING;
}

int wire_printable(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i] < 0x20 || c[i] == 0x7f)
			return 0;
	return 1;
}

size_t wire_varint_encode(uint64_t v, uint8_t *out)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

size_t wire_varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

void wire_put_varint(struct buf *b, uint64_t v)
{
	uint8_t tmp[WIRE_VARINT_MAX];

	buf_append(b, tmp, wire_varint_encode(v, tmp));
}

void wire_put_u64be(struct buf *b, uint64_t v)
{
	uint8_t tmp[8];
	int i;

	for (i = 7; i >= 0; i--) {
		tmp[i] = (uint8_t)v;
		v >>= 8;
	}
	buf_append(b, tmp, 8);
}

void wire_put_blob(struct buf *b, const void *p, size_t n)
{
	wire_put_varint(b, n);
	buf_append(b, p, n);
}
