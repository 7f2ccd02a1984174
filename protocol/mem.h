/* mem.h - the one place where branchsync allocates and decides what running
 * out of memory means: callers get NULL and must fail cleanly with BS_ENOMEM
 * (we never abort inside a library). Tests can make the Nth allocation fail. */
#ifndef BS_MEM_H
#define BS_MEM_H

#include <stddef.h>

void *mem_alloc(size_t n);              /* NULL on failure or n == 0 */
void *mem_calloc(size_t count, size_t size); /* zeroed; NULL on overflow */
void *mem_realloc(void *p, size_t n);   /* like realloc; p kept on failure */
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
void mem_free(void *p);

/* Test seam: after `n` more successful allocations, every allocation fails
 * until mem_fail_reset(). n < 0 disables. This is process-wide state,
 * so only single-threaded tests may use it. */
void mem_fail_after(long n);
void mem_fail_reset(void);

#endif
