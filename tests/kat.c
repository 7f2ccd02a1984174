/* kat.c - the known-answer file reader shared by the protocol suites
 * (format in the header of each tests/vectors/<module>-kat.txt). Test code
 * only: failures are ck_assert failures, not bs_status values. */
#include "kat.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* Files kept by kat_text; no suite reads more than a few. */
#define KAT_FILES 8

/* malloc, not mem_alloc: the suites arm mem_fail_after() to test the
 * codecs, and the vectors must still load while that seam is armed. The
 * copies live until the process exits. */
const char *kat_text(const char *file)
{
	static char *text[KAT_FILES];
	static char *names[KAT_FILES];
	const char *dir = getenv("BRANCHSYNC_VECTORS");
	char path[4096];
	FILE *f;
	long n;
	int i;

	for (i = 0; i < KAT_FILES && names[i]; i++)
		if (strcmp(names[i], file) == 0)
			return text[i];
	ck_assert_int_lt(i, KAT_FILES);
	ck_assert_msg(dir != NULL, "BRANCHSYNC_VECTORS is not set");
	snprintf(path, sizeof path, "%s/%s", dir, file);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_gt(n, 0);
	rewind(f);
	text[i] = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(text[i]);
	ck_assert_uint_eq(fread(text[i], 1, (size_t)n, f), (size_t)n);
	text[i][n] = '\0';
	fclose(f);
	names[i] = strdup(file);
	ck_assert_ptr_nonnull(names[i]);
	return text[i];
}

const char *kat_find(const char *file, const char *vector, const char *key,
		     size_t *len)
{
	const char *line = kat_text(file);
	size_t klen = strlen(key);
	int in = 0;

	while (*line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);

		if (n > 7 && strncmp(line, "vector ", 7) == 0) {
			in = n - 7 == strlen(vector) &&
			     strncmp(line + 7, vector, n - 7) == 0;
		} else if (in && n > klen && line[klen] == ' ' &&
			   strncmp(line, key, klen) == 0) {
			*len = n - klen - 1;
			return line + klen + 1;
		}
		line += n + (end ? 1 : 0);
	}
	return NULL;
}

int kat_is(const char *file, const char *vector, const char *key,
	   const char *value)
{
	size_t len = 0;
	const char *v = kat_find(file, vector, key, &len);

	return v && len == strlen(value) && strncmp(v, value, len) == 0;
}

size_t kat_names(const char *file, const char *type,
		 char names[][KAT_NAME_MAX], size_t max)
{
	const char *line = kat_text(file);
	size_t count = 0;

	while (*line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);

		if (n > 7 && strncmp(line, "vector ", 7) == 0) {
			ck_assert_uint_lt(count, max);
			ck_assert_uint_lt(n - 7, KAT_NAME_MAX);
			memcpy(names[count], line + 7, n - 7);
			names[count][n - 7] = '\0';
			if (!type || kat_is(file, names[count], "type", type))
				count++;
		}
		line += n + (end ? 1 : 0);
	}
	return count;
}

size_t kat_unhex(const char *hex, size_t len, uint8_t *out, size_t max)
{
	size_t i;

	ck_assert_msg(len % 2 == 0 && len / 2 <= max, "bad hex: %.*s",
		      (int)(len < 64 ? len : 64), hex);
	for (i = 0; i < len / 2; i++) {
		unsigned x;

		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &x), 1);
		out[i] = (uint8_t)x;
	}
	return len / 2;
}

size_t kat_hex(const char *file, const char *vector, const char *key,
	       uint8_t *out, size_t max)
{
	size_t len = 0;
	const char *v = kat_find(file, vector, key, &len);

	ck_assert_msg(v != NULL, "vector %s has no %s", vector, key);
	if (len == 1 && v[0] == '-')
		return 0;
	ck_assert_msg(len % 2 == 0 && len / 2 <= max, "bad hex in %s", key);
	return kat_unhex(v, len, out, max);
}

uint64_t kat_u64(const char *file, const char *vector, const char *key)
{
	size_t len = 0;
	const char *v = kat_find(file, vector, key, &len);
	char tmp[32];

	ck_assert_msg(v != NULL && len > 0 && len < sizeof tmp, "no %s", key);
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	return strtoull(tmp, NULL, 10);
}

void kat_str(const char *file, const char *vector, const char *key, char *dst,
	     size_t max)
{
	size_t len = 0;
	const char *v = kat_find(file, vector, key, &len);

	ck_assert_msg(v != NULL && len <= max, "no %s in %s", key, vector);
	memcpy(dst, v, len);
	dst[len] = '\0';
}

void kat_keypair(uint8_t first, uint8_t pk[32], uint8_t sk[64])
{
	uint8_t seed[32];
	int i;

	for (i = 0; i < 32; i++)
		seed[i] = (uint8_t)(first + i);
	ck_assert_int_eq(crypto_sign_seed_keypair(pk, sk, seed), 0);
}
