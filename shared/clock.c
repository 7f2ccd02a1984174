/* clock.c - wall clock with a test-only offset (see clock.h). */
#include "clock.h"

#include <stdlib.h>
#include <time.h>

#include "config.h"

uint64_t clock_wall_ms(void)
{
	struct timespec ts;
	int64_t ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#if BRANCHSYNC_TEST_HOOKS
	{
		const char *off = getenv("BRANCHSYNC_TEST_CLOCK_OFFSET_MS");

		if (off && *off)
			ms += strtoll(off, NULL, 10);
	}
#endif
	return ms < 0 ? 0 : (uint64_t)ms;
}
