"""A bridge partition: links A-B and B-C up, A-C down, C leading. A still writes and reads
linearizably, its connections to C tunneled through B (replication/transport_relay.c).

Role: checks the relay against real `portolan serve` processes whose region-to-region traffic
crosses the WAN emulator (tests/lib/cluster.py with wan.py, DELAY_MS one way), with peer TLS
on (relays need it; the test is skipped with PT_PEER_TLS=off):
  - bridge_partition: three regions, C made the leader. A writes tags directly first (its
    latency through the direct path), then the link A-C alone is cut both ways
    (wan.link(A, C).cut()). A must acknowledge a write again (the time from the cut to the
    first 201 is reported), then writes more (its latency through the relay), and reads every
    acknowledged tag without a stale flag (no Warning 110: the read index is confirmed
    through the relay). A's status names C as reached through B. After the heal every region
    serves every acknowledged write with its digest, and A's status shows the direct path
    back (the relay's probe found it).
Figures with -v: A's write latency direct and through the relay, the time from the cut to A's
first acknowledged write.
"""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, HERE)

import cluster  # noqa: E402
import harness as h  # noqa: E402
import test_cluster_ops as ops  # noqa: E402

TIMEOUT = 300

DELAY_MS = 20  # one-way delay between regions
WRITE_TIMEOUT = 5.0
FIRST_WRITE_LIMIT = 90.0  # the cut must not keep A from writing longer than this
SAMPLES = 8


def timed_puts(region, repo, base, label, n):
    """n tag PUTs at region one after another: ({tag: Manifest} acknowledged, [seconds of
    each 201], [other answers])."""
    acked, secs, others = {}, [], []
    with region.client(timeout=WRITE_TIMEOUT + 30) as cl:
        for i in range(n):
            tag = "%s-%d" % (label, i)
            m = ops.variant(base, tag)
            t0 = time.monotonic()
            try:
                r = cl.put_manifest(repo, tag, m.bytes, m.media_type)
            except ops.ERRORS as e:
                cl.close()
                others.append("%s: %r" % (tag, e))
                continue
            if r.status == 201:
                acked[tag] = m
                secs.append(time.monotonic() - t0)
            else:
                others.append("%s: %s" % (tag, r.describe()))
    return acked, secs, others


def make_leader(c, target, timeout=30):
    """Asks the leader to hand leadership to target until it leads; returns the leader."""
    deadline = time.monotonic() + timeout
    lead = c.wait_leader()
    while lead is not target and time.monotonic() < deadline:
        ops.admin(lead, "POST", "/admin/cluster/transfer-leader", {"id": target.id})
        time.sleep(1.0)
        try:
            lead = c.wait_leader(timeout=10)
        except cluster.ClusterError:
            pass
    return lead


def bridge_partition(results):
    t = results
    args = ("--write-timeout", "%ds" % WRITE_TIMEOUT)
    with cluster.Cluster(3, wan_delay_ms=DELAY_MS, args=args) as c:
        if not c.peer_tls:
            raise h.Skip("relays need peer TLS (PT_PEER_TLS=off)")
        a, b, cc = c.regions
        lead = make_leader(c, cc)
        t.check(lead is cc, "%s did not take the lead (leader %s)" % (cc.name, lead.name))
        repo = h.unique_repo("bridge")
        base = h.make_image(layers=1, layer_size=512)
        with cc.client() as cl:
            base.push(cl, repo, "base")
        c.wait_converged(timeout=30)

        acked, direct, others = timed_puts(a, repo, base, "direct", SAMPLES)
        t.check(not others, "writes at %s before the cut: %s" % (a.name, "; ".join(others[:4])))

        c.wan.link(a.name, cc.name).cut()
        tag, m, first, before = ops.put_until_ok(a, repo, base, "bridge-first", FIRST_WRITE_LIMIT)
        t.check(tag is not None, "%s acknowledged no write within %.0f s of the cut A-C: %s" % (
            a.name, FIRST_WRITE_LIMIT, "; ".join(before[-4:])))
        if tag is not None:
            acked[tag] = m
        more, relayed, others = timed_puts(a, repo, base, "relayed", SAMPLES)
        acked.update(more)
        t.check(len(more) == SAMPLES, "writes at %s through the relay: %d of %d, %s" % (
            a.name, len(more), SAMPLES, "; ".join(others[:4])))

        bad = ops.read_all(a, repo, acked)
        t.check(not bad, "%s reads during the bridge: %s" % (a.name, "; ".join(bad[:5])))
        st = a.status() or {}
        relays = st.get("relays") or []
        t.check(any(r.get("to") == cc.id and r.get("via") == b.id for r in relays),
                "%s's status does not show %s reached through %s: %r" % (
                    a.name, cc.name, b.name, relays))
        lead_now = c.leader()
        t.check(lead_now is cc, "leader during the bridge: %s" % (
            lead_now.name if lead_now else None))

        c.heal()
        t_heal = time.monotonic()
        back = ops.wait_for(lambda: (a.status() or {}).get("relays") == [], 90)
        back_secs = time.monotonic() - t_heal
        t.check(back, "%s still reaches %s through a relay 90 s after the heal: %r" % (
            a.name, cc.name, (a.status() or {}).get("relays")))
        ops.check_writes_everywhere(t, c, repo, acked, {}, "after the heal")

        def med(xs):
            return ops.ms(statistics.median(xs)) if xs else "-"
        ops.note(results, "%s write latency (median of %d): direct %s, through %s %s" % (
            a.name, SAMPLES, med(direct), b.name, med(relayed)))
        ops.note(results, "cut %s-%s to %s's first acknowledged write: %s (%d answers before)" % (
            a.name, cc.name, a.name, ops.ms(first), len(before)))
        ops.note(results, "heal to %s's direct path back: %s" % (a.name, ops.ms(back_secs)))


def main(results):
    if results.target != "portolan":
        raise h.Skip("a Raft cluster is portolan-only")
    results.run("bridge_partition", bridge_partition, results)
