/*
 * loop.h - driving one libuv loop from a unit test until something has happened.
 *
 * The tests of the replication code run every object on one loop and check what callbacks
 * did. They do not sleep: they run the loop until a condition holds, with a deadline so a
 * callback that never comes fails the test instead of hanging it. A fixed pause is only
 * used to check that nothing more happens (PT_LOOP_RUN_FOR).
 *
 * Design: a one-shot timer on the same loop marks the deadline; the loop runs one iteration
 * at a time (UV_RUN_ONCE) and the condition is checked between iterations. The timer is
 * closed before returning and its close completed (UV_RUN_NOWAIT), so a test that closes
 * every handle of its own still ends with uv_loop_close() == 0.
 *
 * Invariant: these functions run the loop themselves, so they must never be called from a
 * callback of that loop.
 */
#ifndef PT_TEST_LOOP_H
#define PT_TEST_LOOP_H

#include <stdbool.h>
#include <uv.h>

/* A condition to run the loop until; arg is the caller's (borrowed). */
typedef bool (*pt_loop_pred_fn)(void *arg);

/* Runs loop (borrowed) until pred(arg) holds or ms milliseconds have passed; returns
 * pred(arg) as it is then. arg is borrowed for the call. */
bool pt_loop_run_until(uv_loop_t *loop, pt_loop_pred_fn pred, void *arg, unsigned ms);

/* The argument of pt_loop_ge_pred: holds once *p >= n (p borrowed). */
struct pt_loop_ge {
    const int *p;
    int n;
};

/* arg is a struct pt_loop_ge (borrowed). */
bool pt_loop_ge_pred(void *arg);

/* Never holds: running until it is running for the whole time. arg is ignored. */
bool pt_loop_never_pred(void *arg);

/* Runs loop until the int at ptr (borrowed) is at least n, for ms at most; true if it is. */
#define PT_LOOP_RUN_UNTIL_GE(loop, ptr, n, ms)                                                     \
    pt_loop_run_until((loop), pt_loop_ge_pred, &(struct pt_loop_ge){(ptr), (n)}, (ms))

/* Runs loop for ms milliseconds whatever happens. */
#define PT_LOOP_RUN_FOR(loop, ms) (void)pt_loop_run_until((loop), pt_loop_never_pred, NULL, (ms))

#endif
