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
  - isolated_leader_writes_in_flight: three regions, a writer at each looping "PUT tag,
    DELETE that tag" (a DELETE applied twice would answer 404 MANIFEST_UNKNOWN: the second
    application finds no tag); the leader is cut from both others (wan.py) for CUT_SECONDS,
    then healed. The writes forwarded to it when it was cut must be answered once the
    majority has elected a new leader (sent again with their write id, raft_forward.c),
    never after waiting out the write timeout; no acknowledged PUT's DELETE answers 404;
    at the end every region holds exactly the tags whose PUT was acknowledged and whose
    DELETE was not. Figures with -v: the longest time without an acknowledged write on the
    majority side after the cut, and how soon after the heal the old leader's region writes
    again.
  - stale_leader_reads: three regions; the leader answers tag GETs from its read lease
    (replication/raft_read_index.c; portolan_raft_reads_total{path="lease"} grows), then it
    is cut from both others while a reader keeps reading the tag there. The majority elects
    a leader and a new digest is written under the tag there. Reads at the old leader that
    began after that write was acknowledged must never return the old digest (503, or the
    new one after the heal), and the old leader serves no read from its lease once the new
    one acknowledged the write (its lease ended at most 800 ms after its last confirmation,
    before the majority could elect anyone): its lease-read count stays put until the heal,
    and no read there begun LEASE_MAX after the cut is answered before the heal.
The writer of the first test sends nothing else while its write waits: no other write would commit an entry of
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

TIMEOUT = 240

DELAY_MS = 30  # one-way delay between regions
WRITE_TIMEOUT = 5.0  # the nodes' --write-timeout
WRITE_LIMIT = 2.5  # longest answer to a write in flight across a transfer (election + RTTs)
ROUNDS = 24  # aimed transfers
# Offsets (in one-way delays after the PUT is sent) at which the transfer is asked for: the
# Propose reaches the leader after about 1, the entry the target after 2, the leader holds
# the commit after 3, the target hears of it after 4 (heartbeat permitting).
OFFSETS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.5)
# The longest a leader's read lease outlives the start of its last confirmation round
# (read_lease.h: 800 ms at a 1 s election timeout), with room for the cut taking effect.
LEASE_MAX = 1.0


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


CUT_SECONDS = 10.0  # the leader's isolation: several election timeouts


class TagWriter(threading.Thread):
    """Loops at one region: PUT tag <prefix>-<i> (a variant of base), then DELETE it. Records
    (op, tag, start, end, status or error text) for every request."""

    def __init__(self, region, repo, base, prefix):
        super().__init__(daemon=True)
        self.region, self.repo, self.base, self.prefix = region, repo, base, prefix
        self.ops = []
        self.stop = threading.Event()

    def _call(self, cl, op, tag, fn):
        t0 = time.monotonic()
        try:
            r = fn()
            out = (r.status, r)
        except ops.ERRORS as e:
            out = (repr(e), None)
        self.ops.append((op, tag, t0, time.monotonic(), out[0], out[1]))
        return out

    def run(self):
        i = 0
        cl = None
        while not self.stop.is_set():
            if cl is None:
                cl = self.region.client(timeout=WRITE_TIMEOUT + 30)
            tag = "%s-%03d" % (self.prefix, i)
            i += 1
            m = ops.variant(self.base, tag)
            st, _ = self._call(cl, "put", tag,
                               lambda: cl.put_manifest(self.repo, tag, m.bytes, m.media_type))
            if isinstance(st, str):
                cl = None
                time.sleep(0.05)
                continue
            if st != 201:
                time.sleep(0.05)
                continue
            st, _ = self._call(cl, "delete", tag,
                               lambda: cl.delete("/v2/%s/manifests/%s" % (self.repo, tag)))
            if isinstance(st, str):
                cl = None
                time.sleep(0.05)


def isolated_leader_writes_in_flight(results):
    t = results
    args = ("--write-timeout", "%ds" % WRITE_TIMEOUT)
    with cluster.Cluster(3, wan_delay_ms=DELAY_MS, args=args) as c:
        lead = c.wait_leader()
        repo = h.unique_repo("isolated")
        base = h.make_image(layers=1, layer_size=512)
        with lead.client() as cl:
            base.push(cl, repo, "base")
        c.wait_converged(timeout=20)
        writers = [TagWriter(r, repo, base, r.name) for r in c.regions]
        for w in writers:
            w.start()
        time.sleep(2.0)
        cut = time.monotonic()
        c.isolate(lead)
        others = [r for r in c.regions if r is not lead]
        try:
            new_lead = c.wait_leader(timeout=20, among=others)
        except cluster.ClusterError as e:
            new_lead = None
            t.check(False, "no leader among %s after the cut: %s" % (others, e))
        elected = time.monotonic()
        # A manifest PUT at the cut-off region whose blobs were acknowledged in another: the
        # region cannot confirm the miss with a leader, so 503 (Retry-After), never 400; the
        # same miss confirmed by the leader's state is 400 MANIFEST_BLOB_UNKNOWN.
        fresh = h.make_image(layers=1, layer_size=256)
        cut_off = confirmed = None
        if new_lead is not None:
            with new_lead.client() as cl:
                for _digest, data in fresh.blobs:
                    cl.push_blob(repo, data)
                ghost = h.make_image(layers=1, layer_size=256)  # its blobs never pushed
                confirmed = cl.put_manifest(repo, "ghost", ghost.bytes, ghost.media_type)
            with lead.client(timeout=WRITE_TIMEOUT + 30) as cl:
                cut_off = cl.put_manifest(repo, "fresh", fresh.bytes, fresh.media_type)
        cut_off_at = time.monotonic()
        time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut)))
        healed = time.monotonic()
        c.heal()
        time.sleep(4.0)
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(WRITE_TIMEOUT + 40)
        end = time.monotonic()

        slow, odd, twice, in_flight, in_flight_acked = [], [], [], [], []
        for w in writers:
            acked_puts = set()
            for op, tag, t0, t1, st, r in w.ops:
                what = "%s %s at %s (%.0f ms after the cut)" % (op, tag, w.region.name,
                                                               (t0 - cut) * 1000)
                if t1 - t0 >= WRITE_TIMEOUT - 0.5:
                    slow.append("%s: answered %s after %s" % (what, st, ops.ms(t1 - t0)))
                if op == "put" and st == 201:
                    acked_puts.add(tag)
                if op == "delete" and st == 404 and tag in acked_puts:
                    twice.append(what)
                elif not (st in (201, 202) or (r is not None and ops.unavailable(r))):
                    odd.append("%s: %s" % (what, r.describe() if r is not None else st))
                if w.region is not lead and t0 < cut < t1:
                    in_flight.append("%s: %s in %s" % (what, st, ops.ms(t1 - t0)))
                    if st in (201, 202):
                        in_flight_acked.append(what)

        def longest_gap(regions, since, until):
            acks = sorted(t1 for w in writers if w.region in regions
                          for op, tag, t0, t1, st, r in w.ops
                          if st in (201, 202) and since <= t1 <= until)
            points = [since] + acks + [until]
            return max(b - a for a, b in zip(points, points[1:]))

        gap = longest_gap(others, cut, healed)
        first_after_heal = [t1 for w in writers if w.region is lead
                            for op, tag, t0, t1, st, r in w.ops
                            if st in (201, 202) and t0 >= healed]
        ops.note(results, "cut %s: new leader %s after %s; longest time without an "
                 "acknowledged write on the majority side %s; writes in flight at the cut: "
                 "%s" % (lead.name, new_lead.name if new_lead else None, ops.ms(elected - cut),
                         ops.ms(gap), "; ".join(in_flight) or "none"))
        ops.note(results, "old leader's region writes again %s after the heal" % (
            ops.ms(min(first_after_heal) - healed) if first_after_heal else "never"))
        ops.note(results, "%d requests, %.1f s" % (sum(len(w.ops) for w in writers),
                                                   end - cut))
        t.check(not slow, "%d writes waited out the write timeout (%.0f s): %s" % (
            len(slow), WRITE_TIMEOUT, "; ".join(slow[:4])))
        t.check(not twice, "DELETE of an acknowledged tag answered 404 (applied twice?): %s"
                % "; ".join(twice[:4]))
        t.check(not odd, "answers other than 201/202/503 UNAVAILABLE: %s" % "; ".join(odd[:4]))
        t.check(gap < WRITE_TIMEOUT, "the majority side acknowledged no write for %s after "
                "the cut (write timeout %.0f s)" % (ops.ms(gap), WRITE_TIMEOUT))
        t.check(first_after_heal, "the old leader's region wrote nothing after the heal")
        t.check(in_flight_acked or not in_flight, "no write in flight at the cut on the "
                "majority side was acknowledged: %s" % "; ".join(in_flight))

        if cut_off is not None:
            t.check(ops.unavailable(cut_off) and cut_off.headers.get("Retry-After", "").isdigit(),
                    "manifest PUT at the cut-off %s whose blobs another region acknowledged: "
                    "%s (Retry-After %r), want 503 UNAVAILABLE with Retry-After" % (
                        lead.name, cut_off.describe(), cut_off.headers.get("Retry-After")))
            t.check(cut_off_at < healed, "the cut-off manifest PUT was answered after the heal")
            t.check(confirmed.status == 400 and
                    "MANIFEST_BLOB_UNKNOWN" in confirmed.error_codes(),
                    "manifest PUT at the leader with unknown blobs: %s, want 400 "
                    "MANIFEST_BLOB_UNKNOWN" % confirmed.describe())
            after = None
            for _ in range(50):
                with lead.client() as cl:
                    after = cl.put_manifest(repo, "fresh", fresh.bytes, fresh.media_type)
                if after.status == 201:
                    break
                time.sleep(0.2)
            t.check(after.status == 201, "the same manifest PUT at %s after the heal: %s" % (
                lead.name, after.describe()))

        c.wait_converged(timeout=30)
        # Exactly the tags whose PUT was acknowledged and whose DELETE was not (one whose
        # DELETE or PUT was answered 503 may be either way).
        must, may = set(), set()
        for w in writers:
            state = {}
            for op, tag, t0, t1, st, r in w.ops:
                if op == "put":
                    state[tag] = "present" if st == 201 else "unknown"
                elif st in (202,):
                    state[tag] = "absent"
                elif state.get(tag) == "present":
                    state[tag] = "unknown"
            must |= {tag for tag, s in state.items() if s == "present"}
            may |= {tag for tag, s in state.items() if s == "unknown"}
        for r in c.regions:
            tags = set(ops.all_tags(r, repo)) - {"base", "fresh"}
            t.check(must <= tags and tags <= must | may,
                    "%s: tags missing %s, unexpected %s" % (
                        r.name, sorted(must - tags)[:5], sorted(tags - must - may)[:5]))


def lease_reads(region):
    """The region's portolan_raft_reads_total{path="lease"}, or None when /metrics fails."""
    try:
        with region.client(timeout=10) as cl:
            r = cl.get("/metrics")
    except ops.ERRORS:
        return None
    if r.status != 200:
        return None
    for line in r.body.decode("utf-8", "replace").splitlines():
        if line.startswith('portolan_raft_reads_total{path="lease"}'):
            return int(float(line.rsplit(" ", 1)[1]))
    return None


class TagReader(threading.Thread):
    """Loops GET manifest by tag at one region; records (start, end, status, digest)."""

    def __init__(self, region, repo, tag):
        super().__init__(daemon=True)
        self.region, self.repo, self.tag = region, repo, tag
        self.reads = []
        self.stop = threading.Event()

    def run(self):
        cl = None
        while not self.stop.is_set():
            if cl is None:
                cl = self.region.client(timeout=WRITE_TIMEOUT + 30)
            t0 = time.monotonic()
            try:
                r = cl.get_manifest(self.repo, self.tag)
                st, digest = r.status, r.headers.get("Docker-Content-Digest")
                if st == 200 and ops.is_stale(r):
                    st = "200 stale"  # marked Warning: 110, allowed by the API's contract
            except ops.ERRORS as e:
                st, digest, cl = repr(e), None, None
            self.reads.append((t0, time.monotonic(), st, digest))
            if st != 200:
                time.sleep(0.02)
        if cl is not None:
            cl.close()


def stale_leader_reads(results):
    t = results
    # no answer from local state when the leader is out of reach: every 200 is linearizable
    args = ("--write-timeout", "%ds" % WRITE_TIMEOUT, "--stale-fallback", "false")
    with cluster.Cluster(3, wan_delay_ms=DELAY_MS, args=args) as c:
        lead = c.wait_leader()
        repo = h.unique_repo("stale")
        old = h.make_image(layers=1, layer_size=512)
        with lead.client() as cl:
            old.push(cl, repo, "app")
            first = cl.get_manifest(repo, "app")
        old_digest = first.headers.get("Docker-Content-Digest")
        c.wait_converged(timeout=20)
        reader = TagReader(lead, repo, "app")
        reader.start()
        # the leader answers from its lease while reads keep coming (the first read of a
        # term confirms it; renewal follows the reads)
        leased = wait_for_value(lambda: (lease_reads(lead) or 0) > 0, 20)
        t.check(leased, "the leader served no read from its lease: %s" % lease_reads(lead))
        cut = time.monotonic()
        c.isolate(lead)
        others = [r for r in c.regions if r is not lead]
        new_digest = acked = None
        try:
            new_lead = c.wait_leader(timeout=20, among=others)
            new = ops.variant(old, "new")
            with new_lead.client(timeout=WRITE_TIMEOUT + 30) as cl:
                for _ in range(50):
                    r = cl.put_manifest(repo, "app", new.bytes, new.media_type)
                    if r.status == 201:
                        break
                    time.sleep(0.1)
            if r.status == 201:
                acked = time.monotonic()
                new_digest = r.headers.get("Docker-Content-Digest")
            t.check(acked is not None, "the new leader %s did not take the write: %s" % (
                new_lead.name, r.describe()))
        except cluster.ClusterError as e:
            t.check(False, "no leader among %s after the cut: %s" % (others, e))
        at_ack = lease_reads(lead)
        time.sleep(2.0)  # reads at the cut-off old leader go on
        before_heal = lease_reads(lead)
        healed = time.monotonic()
        c.heal()
        c.wait_converged(timeout=30)
        time.sleep(0.5)
        reader.stop.set()
        reader.join(WRITE_TIMEOUT + 40)
        if acked is None:
            return
        stale = ["%.0f ms after the ack: %s" % ((t0 - acked) * 1000, st)
                 for t0, t1, st, digest in reader.reads
                 if t0 >= acked and st == 200 and digest == old_digest]
        after_cut = [x for x in reader.reads if x[0] >= cut]
        # a lease ends at most LEASE_MAX after the start of its confirmation round, which was
        # before the cut; no barrier can commit on the cut-off side: nothing more is answered
        lease_over = ["%.0f ms after the cut: %s in %.0f ms" % ((t0 - cut) * 1000, st,
                                                               (t1 - t0) * 1000)
                      for t0, t1, st, digest in after_cut
                      if t0 >= cut + LEASE_MAX and t1 < healed and st == 200]
        served = sum(1 for x in after_cut if x[2] == 200)
        fresh = sum(1 for x in after_cut if x[0] >= healed and x[2] == 200 and
                    x[3] == new_digest)
        ops.note(results, "cut %s: %d reads there after the cut (%d answered 200, %d with the "
                 "new digest after the heal); lease reads %s at the ack, %s before the heal; "
                 "new leader's write acknowledged %s after the cut" % (
                     lead.name, len(after_cut), served, fresh, at_ack, before_heal,
                     ops.ms(acked - cut)))
        t.check(not stale, "the old leader returned the overwritten digest after the new "
                "leader acknowledged the write: %s" % "; ".join(stale[:4]))
        t.check(at_ack is not None and at_ack == before_heal,
                "the cut-off old leader served reads from its lease after the new leader "
                "acknowledged a write: %s then %s" % (at_ack, before_heal))
        t.check(fresh > 0, "no read at %s returned the new digest after the heal" % lead.name)
        t.check(not lease_over, "the cut-off old leader answered reads begun after its lease "
                "ended (%.1f s after the cut): %s" % (LEASE_MAX, "; ".join(lease_over[:4])))


def wait_for_value(pred, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def main(results):
    if results.target != "portolan":
        raise h.Skip("a Raft cluster is portolan-only")
    results.run("transfers_aimed_at_forwarded_writes", transfers_aimed_at_forwarded_writes,
                results)
    results.run("isolated_leader_writes_in_flight", isolated_leader_writes_in_flight, results)
    results.run("stale_leader_reads", stale_leader_reads, results)
