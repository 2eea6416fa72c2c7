/*
 * clock.h - the two clocks the node reads: wall-clock time, which travels in replicated
 * commands and upload records (the FSM has no clock of its own), and monotonic time, for
 * timeouts and rates. Any thread.
 */
#ifndef PT_CLOCK_H
#define PT_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t pt_clock_wall_ms(void);

/* Monotonic milliseconds and microseconds (CLOCK_MONOTONIC), from an arbitrary start. */
int64_t pt_clock_mono_ms(void);
int64_t pt_clock_mono_us(void);

/* Milliseconds since this process started (CLOCK_BOOTTIME against /proc/self/stat), or -1
 * when that cannot be read. */
int64_t pt_clock_process_age_ms(void);

#endif
