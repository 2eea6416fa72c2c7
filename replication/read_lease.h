/*
 * read_lease.h - the arithmetic of the leader's read lease (raft_read_index.c): how long a
 * confirmed leadership lasts, whether a lease still holds, and when to renew it. Pure: times
 * are monotonic nanoseconds handed in by the caller (CLOCK_BOOTTIME in raft_read_index.c),
 * nothing here reads a clock.
 *
 * Design: a confirmation round started at t0 (a barrier entry, created after t0) that a
 * majority of voters stored proves that each of them heard from this leader at t0 or later.
 * canonical/raft 0.15 (recv_request_vote.c) has a follower that knows a leader refuse every
 * vote and pre-vote without the disrupt-leader flag, and it keeps that leader until its
 * election timer (randomized, at least election_timeout, counted from the last accepted
 * AppendEntries) fires. So no other region can win an election before t0 + election_timeout
 * as that majority's clocks run; allowing their clocks to run faster than this one by
 * drift_ppm and a margin for loop latency, this leader may answer reads alone until
 *     t0 + election_timeout * (1 - drift) - margin.
 *
 * Invariants: the lease belongs to one term and one lease epoch (bumped by the node whenever
 * it drops every lease: a leadership transfer it starts, a membership change); a lease never
 * holds at or after its end; a lease shorter than nothing is no lease (end == 0).
 * Threads: none of its own; a struct pt_read_lease belongs to its node's loop.
 */
#ifndef PT_READ_LEASE_H
#define PT_READ_LEASE_H

#include <stdint.h>

#define PT_READ_LEASE_DRIFT_PPM 100000 /* other clocks may run 10 % faster than this one */
#define PT_READ_LEASE_MARGIN_MS 100    /* loop latency at the followers, timer granularity */

struct pt_read_lease {
    uint64_t end_ns; /* monotonic time at which the lease ends; 0: no lease */
    uint64_t term;   /* the term it was confirmed in */
    uint64_t epoch;  /* the node's lease epoch when its confirmation round started */
};

/* The end (monotonic ns) of a lease whose confirmation round started at t0_ns:
 * t0 + election_ms * (1 - drift_ppm / 1e6) - margin_ms, or 0 (no lease) when that is not
 * after t0 (drift_ppm >= 1e6, or a margin at least the shortened timeout) or past the
 * range of uint64_t (t0 near UINT64_MAX); t0_ns 0 is no start either. */
uint64_t pt_read_lease_end(uint64_t t0_ns, uint64_t election_ms, uint32_t drift_ppm,
                           uint64_t margin_ms);

/* Whether lease l (borrowed) lets this node read alone at now_ns, while it leads in term
 * `term` with lease epoch `epoch`: 1 or 0. */
int pt_read_lease_holds(const struct pt_read_lease *l, uint64_t now_ns, uint64_t term,
                        uint64_t epoch);

/* Whether a lease that holds at now_ns should be renewed: less than half of length_ns
 * (a whole lease's length) is left. 1 or 0; 1 too when it does not hold. */
int pt_read_lease_wants_renewal(const struct pt_read_lease *l, uint64_t now_ns, uint64_t length_ns);

/* Records a confirmation: a round started at t0_ns in term `term` and lease epoch `epoch`
 * was stored by a majority. The lease becomes {end, term, epoch} unless it already ends later
 * in the same term and epoch (rounds may complete out of start order). end: from
 * pt_read_lease_end; 0 leaves l unchanged. */
void pt_read_lease_confirm(struct pt_read_lease *l, uint64_t end_ns, uint64_t term, uint64_t epoch);

#endif
