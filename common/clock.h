/* Clocks. The monotonic clock orders events inside one boot; the real clock
 * is only for timestamps shown to people and stored in records. Pure modules
 * (the restart policy, the raft core) take "now" as an argument instead. */
#ifndef SK_CLOCK_H
#define SK_CLOCK_H

#include <stdint.h>

/* Milliseconds / nanoseconds of CLOCK_MONOTONIC. */
uint64_t clock_mono_ms(void);
uint64_t clock_mono_ns(void);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t clock_real_ms(void);
/* Sleep for ms milliseconds (restarts after EINTR). */
void clock_sleep_ms(uint64_t ms);

#endif
