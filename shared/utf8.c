/* utf8.c - strict UTF-8 validation (see utf8.h). The byte ranges are those
 * of the Unicode Standard, table 3-7 "Well-Formed UTF-8 Byte Sequences";
 * restricting the second byte is what rules out overlongs, surrogates and
 * code points above U+10FFFF without decoding first. */
#include "utf8.h"

static bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

size_t utf8_decode(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint8_t b0, lo = 0x80, hi = 0xBF;
	size_t need, i;
	uint32_t v;

	if (n == 0)
		return 0;
	b0 = p[0];
	if (b0 < 0x80) {
		*cp = b0;
		return 1;
	}
	if (b0 >= 0xC2 && b0 <= 0xDF) {
		need = 2;
		v = b0 & 0x1F;
	} else if (b0 >= 0xE0 && b0 <= 0xEF) {
		need = 3;
		v = b0 & 0x0F;
		if (b0 == 0xE0)
			lo = 0xA0; /* below: overlong */
		else if (b0 == 0xED)
			hi = 0x9F; /* above: UTF-16 surrogates */
	} else if (b0 >= 0xF0 && b0 <= 0xF4) {
		need = 4;
		v = b0 & 0x07;
		if (b0 == 0xF0)
			lo = 0x90; /* below: overlong */
		else if (b0 == 0xF4)
			hi = 0x8F; /* above: beyond U+10FFFF */
	} else {
		/* 80..C1 (stray continuation, overlong 2-byte), F5..FF */
		return 0;
	}
	if (n < need || p[1] < lo || p[1] > hi)
		return 0;
	v = (v << 6) | (p[1] & 0x3Fu);
	for (i = 2; i < need; i++) {
		if (!is_cont(p[i]))
			return 0;
		v = (v << 6) | (p[i] & 0x3Fu);
	}
	*cp = v;
	return need;
}

size_t utf8_valid_prefix(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t k;

		/* ASCII dominates real input; skip it without decoding. */
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		k = utf8_decode(p + i, n - i, &cp);
		if (k == 0)
			return i;
		i += k;
	}
	return n;
}

bool utf8_valid(const uint8_t *p, size_t n)
{
	return utf8_valid_prefix(p, n) == n;
}
