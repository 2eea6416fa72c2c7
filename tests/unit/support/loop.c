/*
 * loop.c - running a test's libuv loop until a condition holds or a deadline passes (see
 * loop.h). The deadline is a timer on the loop itself whose callback sets a flag on the
 * caller's stack; the timer is closed, and the close completed, before returning.
 */
#include "loop.h"

/* The deadline timer's callback: sets the flag its data points at (the caller's stack). */
static void deadline_cb(uv_timer_t *tm)
{
    *(bool *)tm->data = true;
}

bool pt_loop_run_until(uv_loop_t *loop, pt_loop_pred_fn pred, void *arg, unsigned ms)
{
    uv_timer_t tm;
    bool expired = false;

    uv_timer_init(loop, &tm);
    tm.data = &expired;
    uv_timer_start(&tm, deadline_cb, ms, 0);
    while (!pred(arg) && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tm, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return pred(arg);
}

bool pt_loop_ge_pred(void *arg)
{
    const struct pt_loop_ge *g = arg;
    return *g->p >= g->n;
}

bool pt_loop_never_pred(void *arg)
{
    (void)arg;
    return false;
}
