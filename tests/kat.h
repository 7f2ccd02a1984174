/* kat.h - reading the known-answer files in tests/vectors/ (the directory
 * named by BRANCHSYNC_VECTORS) for the protocol suites. Not a parser for
 * anything else: the files are trusted test inputs, and every helper fails
 * the running Check test (ck_assert) rather than returning an error. */
#ifndef BS_KAT_H
#define BS_KAT_H

#include <stddef.h>
#include <stdint.h>

/* Longest record name plus its NUL, as kat_names stores them. */
#define KAT_NAME_MAX 32

/* The whole text of `file` (a name inside BRANCHSYNC_VECTORS), NUL-ended.
 * Read once and kept for the life of the process; the caller frees
 * nothing. Fails the test if the file is missing or empty. */
const char *kat_text(const char *file);

/* Value of `key` in record `vector` of `file`, or NULL; *len gets its
 * length. The value points into kat_text's copy and is not NUL-ended. */
const char *kat_find(const char *file, const char *vector, const char *key,
		     size_t *len);

/* Whether `key` of record `vector` is exactly `value`. */
int kat_is(const char *file, const char *vector, const char *key,
	   const char *value);

/* Names of the records of `file` whose `type` is `type` (NULL: all), in
 * file order, into names; returns how many. Fails the test past max
 * records or on a name of KAT_NAME_MAX bytes or more. */
size_t kat_names(const char *file, const char *type,
		 char names[][KAT_NAME_MAX], size_t max);

/* The len hex digits at hex into out (at most max bytes); returns the
 * number of bytes. Fails the test on an odd length, too many bytes or a
 * character that is not hex. */
size_t kat_unhex(const char *hex, size_t len, uint8_t *out, size_t max);

/* Hex value of `key` in record `vector` (`-` is the empty string) into out;
 * returns its length. Fails the test if the key is missing or bad. */
size_t kat_hex(const char *file, const char *vector, const char *key,
	       uint8_t *out, size_t max);

/* Decimal value of `key` in record `vector`. Fails the test if missing. */
uint64_t kat_u64(const char *file, const char *vector, const char *key);

/* Literal value of `key` in record `vector` into dst, which holds max + 1
 * bytes; NUL-ended. Fails the test if missing or longer than max. */
void kat_str(const char *file, const char *vector, const char *key, char *dst,
	     size_t max);

/* The key pair whose 32-byte seed is first, first+1, ..., first+31 (the
 * vectors use 0x01.. for the server and 0x21.. for a second device). */
void kat_keypair(uint8_t first, uint8_t pk[32], uint8_t sk[64]);

#endif
