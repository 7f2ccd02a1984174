/* clock.h - the wall clock as branchsync reads it: Unix milliseconds. In
 * builds with test hooks (meson -Dtest_hooks=true, the default for tests),
 * BRANCHSYNC_TEST_CLOCK_OFFSET_MS shifts it, so tests can run a process
 * whose clock is hours ahead or behind. Release builds ignore the variable. */
#ifndef BS_CLOCK_H
#define BS_CLOCK_H

#include <stdint.h>

uint64_t clock_wall_ms(void);

#endif
