/* mem.c - allocation wrapper with a failure-injection seam (see mem.h). */
#include "mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The only mutable global of the library: a test-only countdown. */
static long fail_countdown = -1;

static int should_fail(void)
{
	if (fail_countdown < 0)
		return 0;
	if (fail_countdown == 0)
		return 1;
	fail_countdown--;
	return 0;
}

void mem_fail_after(long n) { fail_countdown = n; }
void mem_fail_reset(void) { fail_countdown = -1; }

void *mem_alloc(size_t n)
{
	if (n == 0 || should_fail())
		return NULL;
	return malloc(n);
}

void *mem_calloc(size_t count, size_t size)
{
	if (count == 0 || size == 0 || count > SIZE_MAX / size || should_fail())
		return NULL;
	return calloc(count, size);
}

void *mem_realloc(void *p, size_t n)
{
	if (n == 0 || should_fail())
		return NULL;
	return realloc(p, n);
}

char *mem_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *out = mem_alloc(len + 1);

	if (!out)
		return NULL;
	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

char *mem_strdup(const char *s) { return mem_strndup(s, strlen(s)); }

void mem_free(void *p) { free(p); }
