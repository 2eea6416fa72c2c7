/*
 * read_lease.c - the read lease's arithmetic; see read_lease.h for the argument that makes a
 * lease safe and the bounds it assumes.
 */
#include "read_lease.h"

#define NS_PER_MS 1000000ull

uint64_t pt_read_lease_end(uint64_t t0_ns, uint64_t election_ms, uint32_t drift_ppm,
                           uint64_t margin_ms)
{
    if (drift_ppm >= 1000000u || t0_ns == 0)
        return 0;
    /* election_ms is at most a few seconds: no overflow in ms * ppm */
    uint64_t safe_ms = election_ms * (1000000u - drift_ppm) / 1000000u;
    if (safe_ms <= margin_ms)
        return 0;
    uint64_t length = (safe_ms - margin_ms) * NS_PER_MS;
    if (t0_ns > UINT64_MAX - length)
        return 0; /* a clock that failed (read as the end of time) grants nothing */
    return t0_ns + length;
}

int pt_read_lease_holds(const struct pt_read_lease *l, uint64_t now_ns, uint64_t term,
                        uint64_t epoch)
{
    return l->end_ns != 0 && now_ns < l->end_ns && l->term == term && l->epoch == epoch;
}

int pt_read_lease_wants_renewal(const struct pt_read_lease *l, uint64_t now_ns, uint64_t length_ns)
{
    if (l->end_ns == 0 || now_ns >= l->end_ns)
        return 1;
    return l->end_ns - now_ns < length_ns / 2;
}

void pt_read_lease_confirm(struct pt_read_lease *l, uint64_t end_ns, uint64_t term, uint64_t epoch)
{
    if (end_ns == 0)
        return;
    if (l->term == term && l->epoch == epoch && l->end_ns >= end_ns)
        return;
    l->end_ns = end_ns;
    l->term = term;
    l->epoch = epoch;
}
