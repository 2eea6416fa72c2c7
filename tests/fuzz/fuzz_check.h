/*
 * fuzz_check.h - the invariant check shared by the libFuzzer drivers in tests/fuzz/.
 *
 * PT_FUZZ_CHECK names the failed condition and its line on stderr and aborts, which libFuzzer
 * reports as a crash and saves the input for. It is used instead of assert() so the checks
 * hold whatever NDEBUG says.
 */
#ifndef PT_FUZZ_CHECK_H
#define PT_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define PT_FUZZ_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
