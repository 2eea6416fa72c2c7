/*
 * clock.c - wall-clock and monotonic time (clock.h).
 */
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t read_us(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t pt_clock_wall_ms(void)
{
    return read_us(CLOCK_REALTIME) / 1000;
}

int64_t pt_clock_mono_ms(void)
{
    return read_us(CLOCK_MONOTONIC) / 1000;
}

int64_t pt_clock_mono_us(void)
{
    return read_us(CLOCK_MONOTONIC);
}

int64_t pt_clock_process_age_ms(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* field 2 (comm) may hold spaces and parentheses: the fields after it follow the last ')' */
    const char *p = strrchr(buf, ')');
    long ticks = sysconf(_SC_CLK_TCK);
    if (p == NULL || ticks <= 0)
        return -1;
    /* the space before each of the fields state (3) .. starttime (22, clock ticks since boot) */
    for (int field = 3; field <= 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    char *end = NULL;
    unsigned long long start = p != NULL ? strtoull(p + 1, &end, 10) : 0;
    if (p == NULL || end == p + 1)
        return -1;
    int64_t age =
        read_us(CLOCK_BOOTTIME) / 1000 - (int64_t)(start * 1000ULL / (unsigned long)ticks);
    return age >= 0 ? age : 0;
}
