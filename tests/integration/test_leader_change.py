"""A write in flight while leadership is handed over: it is answered within a bound (201, or
503 UNAVAILABLE at once), never left to wait out the write timeout.

Role: checks raft_node.h's promise about a write in flight across a change of leader against
real `portolan serve` processes whose region-to-region traffic crosses the WAN emulator
(tests/lib/cluster.py with wan.py, DELAY_MS one way), so that each step of a forwarded write
(Propose to the leader, replication, commit, the answer, the follower learning the commit
index) takes a visible time and a transfer can be aimed at one of those steps:
  - transfers_aimed_at_forwarded_writes: three regions; in each round one tag PUT goes to the
    region that is about to receive leadership (a follower, so the write is forwarded to the
    leader), and after an offset the test asks the leader to hand leadership to that very
    region (POST /admin/cluster/transfer-leader). The offsets step through the write's life
    (before the Propose reaches the leader, while the entry is on its way to the target,
    after the commit and before the target learns of it); the write may be lost with the
    old leader's term (503 UNAVAILABLE) or committed (201), but it must be answered within
    WRITE_LIMIT. At the end the three converge, and every acknowledged tag is served
    everywhere with its digest; a refused one is absent or intact.
The writer sends nothing else while its write waits: no other write would commit an entry of
the new leader's term and so end a wait for an entry of an earlier term (Raft dissertation
6.4), which is how such a wait would last the whole write timeout. Figures with -v.

Observed with canonical/raft 0.15: a new leader in this cluster also commits the earlier
term's entries by counting the followers' replicas, so the wait above ends within a
heartbeat even without the barrier raft_forward.c commits at the start of a term.
"""

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, HERE)

import cluster  # noqa: E402
import harness as h  # noqa: E402
import test_cluster_ops as ops  # noqa: E402

TIMEOUT = 150

DELAY_MS = 30  # one-way delay between regions
WRITE_TIMEOUT = 5.0  # the nodes' --write-timeout
WRITE_LIMIT = 2.5  # longest answer to a write in flight across a transfer (election + RTTs)
ROUNDS = 24  # aimed transfers
# Offsets (in one-way delays after the PUT is sent) at which the transfer is asked for: the
# Propose reaches the leader after about 1, the entry the target after 2, the leader holds
# the commit after 3, the target hears of it after 4 (heartbeat permitting).
OFFSETS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.5)


def aimed_round(c, among, base, repo, label, offset):
    """One round among the given regions: PUT a tag at the leader-to-be, ask the leader for
    the transfer `offset` seconds later. Returns (tag, Manifest, status or error text,
    write seconds, transfer Response, leader name, target name)."""
    lead = c.wait_leader(timeout=15, among=among)
    target = among[(among.index(lead) + 1) % len(among)]
    m = ops.variant(base, label)
    out = {}

    def write():
        t0 = time.monotonic()
        try:
            with target.client(timeout=WRITE_TIMEOUT + 30) as cl:
                r = cl.put_manifest(repo, label, m.bytes, m.media_type)
            out["answer"] = r
        except ops.ERRORS as e:
            out["answer"] = repr(e)
        out["secs"] = time.monotonic() - t0

    th = threading.Thread(target=write, daemon=True)
    th.start()
    time.sleep(offset)
    tr, _ = ops.admin(lead, "POST", "/admin/cluster/transfer-leader", {"id": target.id})
    th.join(WRITE_TIMEOUT + 40)
    return m, out.get("answer", "no answer"), out.get("secs", float("inf")), tr, lead, target


def transfers_aimed_at_forwarded_writes(results):
    t = results
    args = ("--write-timeout", "%ds" % WRITE_TIMEOUT)
    with cluster.Cluster(3, wan_delay_ms=DELAY_MS, args=args) as c:
        lead = c.wait_leader()
        repo = h.unique_repo("leaderchange")
        base = h.make_image(layers=1, layer_size=512)
        with lead.client() as cl:
            base.push(cl, repo, "base")
        c.wait_converged(timeout=20)

        acked, refused, slow, odd = {}, {}, [], []
        transfers_done = 0
        for i in range(ROUNDS):
            offset = OFFSETS[i % len(OFFSETS)] * DELAY_MS / 1000.0
            label = "aimed-%02d" % i
            try:
                m, answer, secs, tr, lead, target = aimed_round(c, c.regions, base, repo,
                                                                label, offset)
            except cluster.ClusterError as e:
                t.check(False, "round %s: no leader: %s" % (label, e))
                continue
            what = "%s (PUT at %s, transfer %s -> %s asked %.0f ms after it)" % (
                label, target.name, lead.name, target.name, offset * 1000)
            if tr.status in (200, 202, 204):
                transfers_done += 1
            elif not ops.unavailable(tr):
                odd.append("transfer for %s: %s" % (what, tr.describe()))
            if isinstance(answer, str):
                odd.append("%s: %s" % (what, answer))
            elif answer.status == 201:
                acked[label] = m
            elif ops.unavailable(answer):
                refused[label] = m
            else:
                odd.append("%s: %s" % (what, answer.describe()))
            if secs > WRITE_LIMIT:
                slow.append("%s: answered in %s" % (what, ops.ms(secs)))
            ops.note(results, "%s: %s in %s; transfer %d" % (
                what, answer if isinstance(answer, str) else answer.status, ops.ms(secs),
                tr.status))
            time.sleep(0.2)

        ops.note(results, "%d acknowledged, %d refused with 503, %d of %d transfers done" % (
            len(acked), len(refused), transfers_done, ROUNDS))
        t.check(not slow, "%d writes in flight across a transfer took longer than %s (write "
                "timeout %.0f s): %s" % (len(slow), ops.ms(WRITE_LIMIT), WRITE_TIMEOUT,
                                         "; ".join(slow[:4])))
        t.check(not odd, "answers other than 201/503 UNAVAILABLE: %s" % "; ".join(odd[:4]))
        t.check(transfers_done >= ROUNDS // 2,
                "only %d of %d transfers done" % (transfers_done, ROUNDS))
        t.check(acked, "no aimed write acknowledged")

        ops.check_writes_everywhere(t, c, repo, acked, refused, "at the end")


def main(results):
    if results.target != "portolan":
        raise h.Skip("a Raft cluster is portolan-only")
    results.run("transfers_aimed_at_forwarded_writes", transfers_aimed_at_forwarded_writes,
                results)
