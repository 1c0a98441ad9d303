#include "common/clock.h"

#include <errno.h>
#include <time.h>

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t clock_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t clock_mono_ms(void) { return clock_ns(CLOCK_MONOTONIC) / 1000000ull; }
uint64_t clock_real_ms(void) { return clock_ns(CLOCK_REALTIME) / 1000000ull; }

void clock_sleep_ms(uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}
