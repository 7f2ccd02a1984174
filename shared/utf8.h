/* utf8.h - strict UTF-8 validation and decoding (Unicode 15, table 3-7):
 * no overlong forms, no surrogates, nothing above U+10FFFF, no truncated
 * sequences. Used wherever text enters from outside (CSV import, schema
 * checks). Not a converter: other encodings are csv.c's business. */
#ifndef BS_UTF8_H
#define BS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes one code point at the start of p[0..n). Returns the length of its
 * sequence (1-4) and stores the code point in *cp, or returns 0 (leaving *cp
 * untouched) when n == 0 or the bytes are not a well-formed sequence. U+0000
 * is well-formed (a 1-byte sequence); callers that forbid it check *cp. */
size_t utf8_decode(const uint8_t *p, size_t n, uint32_t *cp /* OUT */);

/* Returns the length of the longest well-formed prefix of p[0..n): n when
 * the whole input is valid, else the offset of the first byte of the first
 * bad sequence. Never fails. */
size_t utf8_valid_prefix(const uint8_t *p, size_t n);

/* True when all of p[0..n) is well-formed UTF-8 (an empty input is). */
bool utf8_valid(const uint8_t *p, size_t n);

#endif
