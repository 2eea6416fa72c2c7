"""Operating a cluster: growing it by a region, removing one, handing leadership over, while
writes keep flowing; and a five-region cluster losing a minority, then a majority.

Role: checks the operator side of README.md's "A cluster of regions" against real
`portolan serve` processes (tests/lib/cluster.py, direct connections between regions):
  - membership_changes: three regions take 1000 tags (distinct small manifests, pushed 16 at
    a time across the regions), with a snapshot every 256 entries (a quarter of that kept
    behind it), so that the leader no longer holds the start of the log and a new region
    can only catch up from a snapshot; a fourth region started with `--join true` and its
    own cluster file is added through the leader (`portolan cluster status` asked at a
    follower names it, `portolan cluster add` goes to it) and catches up: its state digest
    equals the others' and all 1000 tags are served there with the right digests; an
    original follower is removed (DELETE /admin/cluster/regions/<id>): no region lists it in
    /admin/cluster any more, and its process is stopped; leadership is handed to the new
    region (`portolan cluster transfer-leader`) and every remaining region's
    /admin/cluster/self names it. A writer PUTs a new tag every few tens of milliseconds
    through all of this: writes must keep being acknowledged (no gap longer than GAP_LIMIT,
    answers only 201 or 503 UNAVAILABLE), and every acknowledged one must be served by
    every remaining region at the end;
  - leadership_transfers_under_writes: leadership goes round three regions a dozen times
    under a steady writer; no single write may take more than WRITE_LIMIT (a write in
    flight when the leader changes is moved to the new leader or refused at once, never
    left to wait out the write timeout);
  - removed_region_answers_a_write: a region removed while its process still runs answers a
    write it forwarded 503 UNAVAILABLE soon after (it knows no leader), not after the whole
    write timeout;
  - five_regions_minority_majority: with five regions, kill -9 of two (the leader among
    them) leaves a majority that elects a leader and acknowledges writes in every survivor;
    kill -9 of a third leaves two regions that refuse writes with 503 UNAVAILABLE within the
    write timeout (and answer tag reads with the stale warning); after the three restart the
    cluster converges, every acknowledged write is served everywhere, and writes work in
    every region again.
Figures (push rate, catch-up and transfer times, failover) are printed with the runner's -v.

Blob bytes are not replicated between regions yet: the base image's blobs are pushed once,
their links are replicated, and only manifests and tags are compared across regions.
"""

import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import cluster  # noqa: E402
import harness as h  # noqa: E402

TIMEOUT = 300

TAG_COUNT = 1000
PUSH_CONCURRENCY = 16
WRITE_TIMEOUT = 2.0  # given to the five-region cluster as --write-timeout
SLACK = 2.0  # seconds allowed beyond a node's own timeout on a loaded machine
GAP_LIMIT = 5.0  # longest time without an acknowledged write during membership changes
TRANSFERS = 12  # leadership transfers under a steady writer
WRITE_LIMIT = 2.0  # longest single write across them (the write timeout is 5 s)
SNAPSHOT_EVERY = 256  # so that the 1000 tags are behind snapshots when a region joins
REMOVED_WRITE_TIMEOUT = 10.0  # --write-timeout of removed_region_answers_a_write's cluster
REMOVED_LIMIT = 6.0  # its answer: election timeout (1-2 s), 1 s leaderless, slack; far below 10 s
ERRORS = (OSError, http.client.HTTPException)


def note(results, msg):
    if results.verbose:
        print("  " + msg, flush=True)


def ms(seconds):
    return "%.0f ms" % (seconds * 1000.0)


def variant(base, label):
    """A manifest with base's (already pushed) config and layer and one annotation making its
    digest unique: a pure metadata write."""
    obj = dict(base.obj)
    obj["annotations"] = {"org.portolan.test.ops": label}
    return h.Manifest(obj, base.media_type, base.blobs)


def unavailable(resp):
    return resp.status == 503 and "UNAVAILABLE" in resp.error_codes()


def is_stale(resp):
    warning = resp.headers.get("Warning") or ""
    return warning.startswith("110") and "stale" in warning


def admin(region, method, path, body=None, timeout=30):
    """(Response, seconds) of an admin request with a JSON body."""
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    t0 = time.monotonic()
    with region.client(timeout=timeout) as cl:
        r = cl.request(method, path, hdrs, data)
    return r, time.monotonic() - t0


def cli(c, *args, timeout=150):
    """(exit status, stdout, stderr) of `portolan cluster ARGS` with the cluster's binary,
    as the cluster's administrator."""
    try:
        p = subprocess.run([c.binary, "cluster"] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, env=c.cli_env())
    except subprocess.TimeoutExpired:
        return None, "", "no exit within %d s" % timeout
    return p.returncode, p.stdout, p.stderr


def listed_ids(region):
    m = region.members()
    if m is None:
        return None
    return sorted(x.get("id") for x in m.get("regions", []))


def wait_for(pred, timeout, interval=0.1):
    """pred() until truthy or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def push_tags(regions, repo, base, tags, concurrency=PUSH_CONCURRENCY):
    """PUTs variant(base, tag) by tag for every tag, `concurrency` at a time, spread over the
    regions round robin. Returns ({tag: Manifest}, [failure texts], seconds)."""
    local = threading.local()

    def put(i_tag):
        i, tag = i_tag
        region = regions[i % len(regions)]
        clients = getattr(local, "clients", None)
        if clients is None:
            clients = local.clients = {}
        cl = clients.get(region.name)
        if cl is None:
            cl = clients[region.name] = region.client(timeout=30)
        m = variant(base, tag)
        try:
            r = cl.put_manifest(repo, tag, m.bytes, m.media_type)
        except ERRORS as e:
            return tag, m, "%s at %s: %r" % (tag, region.name, e)
        if r.status != 201:
            return tag, m, "%s at %s: %s" % (tag, region.name, r.describe())
        return tag, m, None

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        out = list(pool.map(put, enumerate(tags)))
    seconds = time.monotonic() - t0
    return ({tag: m for tag, m, err in out if err is None},
            [err for _, _, err in out if err is not None], seconds)


def read_all(region, repo, expected, concurrency=PUSH_CONCURRENCY):
    """HEADs every tag of expected ({tag: Manifest}) at region; returns the mismatches."""
    local = threading.local()

    def head(tag):
        cl = getattr(local, "client", None)
        if cl is None:
            cl = local.client = region.client(timeout=30)
        try:
            r = cl.get_manifest(repo, tag, "HEAD")
        except ERRORS as e:
            return "%s: %r" % (tag, e)
        want = expected[tag].digest
        if r.status != 200 or r.headers.get("Docker-Content-Digest") != want:
            return "%s: %d digest %s, want %s" % (tag, r.status,
                                                  r.headers.get("Docker-Content-Digest"), want)
        if r.headers.get("Warning"):
            return "%s: Warning %r" % (tag, r.headers.get("Warning"))
        return None

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        return [x for x in pool.map(head, sorted(expected)) if x is not None]


def all_tags(region, repo):
    """Every tag of repo at region, following the Link pagination."""
    out = []
    path = "/v2/%s/tags/list" % repo
    with region.client() as cl:
        for _ in range(1000):
            r = cl.get(path)
            if r.status != 200:
                raise AssertionError("%s tags/list: %s" % (region.name, r.describe()))
            out += r.json().get("tags") or []
            path = h.next_link(r)
            if not path:
                return out
    raise AssertionError("%s tags/list: pagination does not end" % region.name)


class Writer(threading.Thread):
    """PUTs a new tag every `pace` seconds to the regions of `targets` in turn, recording
    every answer; pause()/resume() hold it between writes (for a digest comparison)."""

    def __init__(self, repo, base, targets, pace=0.03):
        super().__init__(daemon=True, name="ops-writer")
        self.repo = repo
        self.base = base
        self.pace = pace
        self.lock = threading.Lock()
        self.targets = list(targets)
        self.stop = threading.Event()
        self.running = threading.Event()
        self.running.set()
        self.idle = threading.Event()
        self.acked = {}  # tag -> Manifest
        self.ack_times = []  # monotonic time of each 201
        self.refused = []  # (time, region, tag): 503 UNAVAILABLE
        self.unexpected = []  # texts
        self.phase = "start"
        self.per_phase = {}
        self.slowest = (0.0, "")  # (seconds, description) of the slowest answered write

    def set_targets(self, regions):
        with self.lock:
            self.targets = list(regions)

    def pause(self):
        self.running.clear()
        self.idle.wait(30)

    def resume(self):
        self.running.set()

    def run(self):
        clients = {}
        i = 0
        try:
            while not self.stop.is_set():
                if not self.running.is_set():
                    self.idle.set()
                    self.running.wait(0.1)
                    continue
                self.idle.clear()
                with self.lock:
                    targets = list(self.targets)
                region = targets[i % len(targets)]
                i += 1
                tag = "live-%05d" % i
                m = variant(self.base, tag)
                cl = clients.get(region.name)
                if cl is None:
                    cl = clients[region.name] = region.client(timeout=WRITE_TIMEOUT + 30)
                t0 = time.monotonic()
                try:
                    r = cl.put_manifest(self.repo, tag, m.bytes, m.media_type)
                except ERRORS as e:
                    cl.close()
                    with self.lock:
                        self.unexpected.append("%s at %s (%s): %r" % (tag, region.name,
                                                                      self.phase, e))
                    self.stop.wait(0.2)
                    continue
                now = time.monotonic()
                with self.lock:
                    if now - t0 > self.slowest[0]:
                        self.slowest = (now - t0, "%s at %s (%s): %d" % (
                            tag, region.name, self.phase, r.status))
                    if r.status == 201:
                        self.acked[tag] = m
                        self.ack_times.append(now)
                        self.per_phase[self.phase] = self.per_phase.get(self.phase, 0) + 1
                    elif unavailable(r):
                        self.refused.append((now, region.name, tag))
                    else:
                        self.unexpected.append("%s at %s (%s): %s" % (
                            tag, region.name, self.phase, r.describe()))
                self.stop.wait(self.pace)
        finally:
            self.idle.set()
            for cl in clients.values():
                cl.close()

    def longest_gap(self, since, until):
        with self.lock:
            times = [t for t in self.ack_times if since <= t <= until]
        edges = [since] + times + [until]
        return max(b - a for a, b in zip(edges, edges[1:]))


def converged_paused(t, c, writer, among, what, timeout=30):
    """Pauses the writer, waits for equal digests among the given regions, resumes."""
    writer.pause()
    try:
        return c.wait_converged(timeout=timeout, among=among)
    except cluster.ClusterError as e:
        t.check(False, "%s: %s" % (what, e))
        return None
    finally:
        writer.resume()


def membership_changes(results):
    t = results
    with cluster.GrowingCluster(3, 4, args=("--snapshot-every", str(SNAPSHOT_EVERY))) as c:
        a, b, cc, d = c.regions
        lead = c.wait_leader()
        originals = [a, b, cc]
        repo = h.unique_repo("ops")
        base = h.make_image(layers=1, layer_size=512)
        with lead.client() as cl:
            base.push(cl, repo, "base")

        tags = ["tag-%04d" % i for i in range(TAG_COUNT)]
        pushed, failures, secs = push_tags(originals, repo, base, tags)
        t.require(not failures, "%d of %d tag pushes failed: %s" % (
            len(failures), len(tags), "; ".join(failures[:5])))
        note(results, "%d tags pushed through %s, %d at a time: %.1f s (%.0f/s)" % (
            len(pushed), ", ".join(r.name for r in originals), PUSH_CONCURRENCY, secs,
            len(pushed) / secs))
        d0 = c.wait_converged(timeout=30, among=originals)
        note(results, "three regions at applied index %d" % d0["applied_index"])

        writer = Writer(repo, base, originals)
        writer.start()
        t_start = time.monotonic()
        try:
            time.sleep(1.0)

            # 1. A fourth region joins.
            writer.phase = "add"
            t_add = time.monotonic()
            c.join(d)
            lead = c.wait_leader(among=originals)
            # The operator's way: `cluster status` (asked anywhere) names the leader, `cluster
            # add` goes to it.
            asked = [x for x in originals if x is not lead][0]
            rc, out, err = cli(c, "status", "--region", asked.url, "--json")
            t.require(rc == 0, "portolan cluster status at %s: exit %s: %s" % (
                asked.name, rc, (err or out)[:300]))
            named = json.loads(out).get("leader") or {}
            t.check(named.get("id") == lead.id, "portolan cluster status at %s names leader "
                    "%r, the regions agree on %s" % (asked.name, named, lead.name))
            t0 = time.monotonic()
            rc, out, err = cli(c, "add", "--region", lead.url, "--name", d.name, "--id",
                               str(d.id), "--address", d.raft_address, "--url", d.url,
                               "--role", "voter", "--timeout", "120s")
            t.require(rc == 0, "portolan cluster add %s at leader %s: exit %s: %s" % (
                d.name, lead.name, rc, (err or out)[:300]))
            note(results, "%s added as a voter in %s (leader %s)" % (
                d.name, ms(time.monotonic() - t0), lead.name))
            four = originals + [d]
            ids = wait_for(lambda: all(listed_ids(x) == [1, 2, 3, 4] for x in four), 10)
            t.check(ids, "/admin/cluster after the add: %s" % {
                x.name: listed_ids(x) for x in four})
            m = lead.members() or {}
            role = {x.get("id"): x.get("role") for x in m.get("regions", [])}
            t.check(role.get(d.id) == "voter", "%s's role in /admin/cluster: %r" % (
                d.name, role.get(d.id)))
            dg = converged_paused(t, c, writer, four, "%s catching up" % d.name)
            if dg is not None:
                note(results, "%s caught up %.1f s after its start: applied index %d" % (
                    d.name, time.monotonic() - t_add, dg["applied_index"]))
            st = d.status() or {}
            t.check(st.get("role") == "follower" and st.get("leader_id") == lead.id,
                    "%s /admin/cluster/self: %s" % (d.name, st))
            bad = read_all(d, repo, pushed)
            t.check(not bad, "%s serves %d of %d pushed tags wrongly: %s" % (
                d.name, len(bad), len(pushed), "; ".join(bad[:5])))
            listed = set(all_tags(d, repo))
            missing = sorted(set(pushed) - listed)
            t.check(not missing, "%s tags/list lacks %d pushed tags: %s" % (
                d.name, len(missing), missing[:5]))
            writer.set_targets(four)
            time.sleep(1.0)

            # 2. An original follower leaves.
            writer.phase = "remove"
            lead = c.wait_leader(among=four)
            gone = [x for x in originals if x is not lead][0]
            rest = [x for x in four if x is not gone]
            writer.set_targets(rest)
            r, secs = admin(lead, "DELETE", "/admin/cluster/regions/%d" % gone.id)
            t.require(r.status in (200, 202, 204), "remove %s at leader %s: %s" % (
                gone.name, lead.name, r.describe()))
            note(results, "%s removed in %s" % (gone.name, ms(secs)))
            want = sorted(x.id for x in rest)
            ok = wait_for(lambda: all(listed_ids(x) == want for x in rest), 10)
            t.check(ok, "/admin/cluster after removing %s (id %d): %s" % (
                gone.name, gone.id, {x.name: listed_ids(x) for x in rest}))
            # A write picked before set_targets may still be on its way to the region that
            # leaves: let it finish before that region's process goes away.
            writer.running.clear()
            writer.idle.wait(WRITE_TIMEOUT + 5)
            writer.running.set()
            gone.node.stop()
            t.check(not gone.running(), "%s still running after SIGTERM" % gone.name)
            time.sleep(1.0)

            # 3. Leadership goes to the region that joined.
            writer.phase = "transfer"
            lead = c.wait_leader(among=rest)
            target = d if lead is not d else [x for x in rest if x is not d][0]
            t0 = time.monotonic()
            rc, out, err = cli(c, "transfer-leader", "--region", lead.url, "--id",
                               str(target.id))
            secs = time.monotonic() - t0
            t.check(rc == 0, "portolan cluster transfer-leader --id %d at %s: exit %s: %s" % (
                target.id, lead.name, rc, (err or out)[:300]))
            t_tr = time.monotonic()
            new = None
            try:
                new = c.wait_leader(timeout=15, among=rest)
            except cluster.ClusterError as e:
                t.check(False, "after the transfer: %s" % e)
            if new is not None:
                note(results, "leadership %s -> %s: answered in %s, agreed by all %.0f ms "
                     "after the answer" % (lead.name, new.name, ms(secs),
                                           (time.monotonic() - t_tr) * 1000))
                t.check(new is target, "leader after transferring to %s: %s" % (
                    target.name, new.name))
            for x in rest:
                st = x.status() or {}
                want_role = "leader" if x is target else "follower"
                t.check(st.get("role") == want_role and st.get("leader_id") == target.id
                        and st.get("leader_region") == target.name,
                        "%s /admin/cluster/self after the transfer: role %r leader %r (%r), "
                        "want %s under %s" % (x.name, st.get("role"), st.get("leader_id"),
                                              st.get("leader_region"), want_role,
                                              target.name))
            writer.phase = "after"
            time.sleep(1.5)
        finally:
            writer.stop.set()
            writer.join(WRITE_TIMEOUT + 40)
        t_end = time.monotonic()

        with writer.lock:
            acked = dict(writer.acked)
            refused = list(writer.refused)
            unexpected = list(writer.unexpected)
            per_phase = dict(writer.per_phase)
        gap = writer.longest_gap(t_start, t_end)
        note(results, "writer: %d acknowledged %s, %d refused with 503, longest gap %s" % (
            len(acked), per_phase, len(refused), ms(gap)))
        # The transfer itself takes milliseconds: the gap check covers it.
        for phase in ("add", "remove", "after"):
            t.check(per_phase.get(phase, 0) > 0, "no write acknowledged during %s" % phase)
        t.check(gap <= GAP_LIMIT, "writes stalled for %s during the membership changes"
                % ms(gap))
        t.check(not unexpected, "writes answered with neither 201 nor 503 UNAVAILABLE: %s"
                % "; ".join(unexpected[:5]))

        dg = None
        try:
            dg = c.wait_converged(timeout=30, among=rest)
        except cluster.ClusterError as e:
            t.check(False, "at the end: %s" % e)
        if dg is not None:
            note(results, "%s converged at applied index %d" % (
                ", ".join(x.name for x in rest), dg["applied_index"]))
        for x in rest:
            bad = read_all(x, repo, acked)
            t.check(not bad, "%s serves %d of %d acknowledged writes wrongly: %s" % (
                x.name, len(bad), len(acked), "; ".join(bad[:5])))
        for x in c.dead():
            t.check(False, "%s died: %s" % (x.name, x.node.death_note()))


def leadership_transfers_under_writes(results):
    """Leadership goes round three regions TRANSFERS times while a writer PUTs a tag every few
    tens of milliseconds through all of them: no write may take longer than WRITE_LIMIT (a
    write in flight across a change of leader is moved or refused at once, and the new
    leader commits what the old one had committed), answers are only 201 or 503, and every
    acknowledged write is served everywhere at the end."""
    t = results
    with cluster.Cluster(3) as c:
        lead = c.wait_leader()
        repo = h.unique_repo("transfers")
        base = h.make_image(layers=1, layer_size=512)
        with lead.client() as cl:
            base.push(cl, repo, "base")
        c.wait_converged(timeout=20)
        writer = Writer(repo, base, c.regions)
        writer.start()
        try:
            time.sleep(0.5)
            for i in range(TRANSFERS):
                lead = c.wait_leader(timeout=15)
                target = c.regions[(lead.index + 1) % len(c.regions)]
                writer.phase = "transfer %d" % (i + 1)
                r, secs = admin(lead, "POST", "/admin/cluster/transfer-leader",
                                {"id": target.id})
                t.check(r.status in (200, 202, 204), "transfer %d to %s at %s: %s" % (
                    i + 1, target.name, lead.name, r.describe()))
                time.sleep(0.4)
            writer.phase = "after"
            time.sleep(0.5)
        finally:
            writer.stop.set()
            writer.join(WRITE_TIMEOUT + 40)
        with writer.lock:
            acked = dict(writer.acked)
            refused = list(writer.refused)
            unexpected = list(writer.unexpected)
            slowest = writer.slowest
        note(results, "writer: %d acknowledged, %d refused with 503, slowest %s: %s" % (
            len(acked), len(refused), ms(slowest[0]), slowest[1]))
        t.check(slowest[0] <= WRITE_LIMIT, "a write took %s across %d leadership transfers "
                "(limit %s): %s" % (ms(slowest[0]), TRANSFERS, ms(WRITE_LIMIT), slowest[1]))
        t.check(not unexpected, "writes answered with neither 201 nor 503 UNAVAILABLE: %s"
                % "; ".join(unexpected[:5]))
        t.check(len(acked) > TRANSFERS, "only %d writes acknowledged" % len(acked))
        try:
            c.wait_converged(timeout=30)
        except cluster.ClusterError as e:
            t.check(False, "at the end: %s" % e)
        for x in c.regions:
            bad = read_all(x, repo, acked)
            t.check(not bad, "%s serves %d of %d acknowledged writes wrongly: %s" % (
                x.name, len(bad), len(acked), "; ".join(bad[:5])))
        for x in c.dead():
            t.check(False, "%s died: %s" % (x.name, x.node.death_note()))


def removed_region_answers_a_write(results):
    """A region removed from the cluster while its process still runs gets nothing more from
    the leader, so a write it forwards there right after its removal is committed without it
    and can never be applied there. The write must be answered 503 UNAVAILABLE once that
    region has known no leader for an election timeout, within REMOVED_LIMIT, not after the whole
    write timeout (REMOVED_WRITE_TIMEOUT): the operator's writer in membership_changes waits
    for such a write. The remaining regions go on acknowledging writes."""
    t = results
    args = ("--write-timeout", "%ds" % REMOVED_WRITE_TIMEOUT)
    with cluster.Cluster(3, args=args) as c:
        lead = c.wait_leader()
        repo = h.unique_repo("removed")
        base = h.make_image(layers=1, layer_size=512)
        with lead.client() as cl:
            base.push(cl, repo, "base")
        c.wait_converged(timeout=20)
        gone = [x for x in c.regions if x is not lead][0]
        r, secs = admin(lead, "DELETE", "/admin/cluster/regions/%d" % gone.id)
        t.require(r.status in (200, 202, 204), "remove %s at leader %s: %s" % (
            gone.name, lead.name, r.describe()))
        m = variant(base, "after-removal")
        with gone.client(timeout=REMOVED_WRITE_TIMEOUT + 30) as cl:
            t0 = time.monotonic()
            resp = cl.put_manifest(repo, "after-removal", m.bytes, m.media_type)
            took = time.monotonic() - t0
        note(results, "write at removed %s: %s in %s" % (gone.name, resp.status, ms(took)))
        t.check(unavailable(resp), "write at removed %s: %s, want 503 UNAVAILABLE" % (
            gone.name, resp.describe()))
        t.check(took <= REMOVED_LIMIT, "write at removed %s answered after %s (limit %s, "
                "write timeout %s)" % (gone.name, ms(took), ms(REMOVED_LIMIT),
                                       ms(REMOVED_WRITE_TIMEOUT)))
        rest = [x for x in c.regions if x is not gone]
        for x in rest:
            tag, _, secs, others = put_until_ok(x, repo, base, "rest-" + x.name, 15)
            t.check(tag is not None, "no write acknowledged at %s after the removal: %s" % (
                x.name, "; ".join(others[:3])))
        for x in c.dead():
            t.check(False, "%s died: %s" % (x.name, x.node.death_note()))


def check_writes_everywhere(t, c, repo, acked, refused, when):
    """Once c converged: every region serves every acknowledged write ({tag: Manifest}); a
    refused one ({tag: Manifest}) may or may not have been committed, and if it is there it
    is intact; no region died."""
    try:
        c.wait_converged(timeout=30)
    except cluster.ClusterError as e:
        t.check(False, "%s: %s" % (when, e))
    for x in c.regions:
        bad = read_all(x, repo, acked)
        t.check(not bad, "%s serves %d of %d acknowledged writes wrongly: %s" % (
            x.name, len(bad), len(acked), "; ".join(bad[:5])))
        with x.client() as cl:
            for tag, m in refused.items():
                r = cl.get_manifest(repo, tag, "HEAD")
                t.check(r.status == 404 or r.headers.get("Docker-Content-Digest")
                        == m.digest, "%s %s (refused earlier): %s" % (x.name, tag,
                                                                     r.describe()))
    for x in c.dead():
        t.check(False, "%s died: %s" % (x.name, x.node.death_note()))


def put_until_ok(region, repo, base, label, limit):
    """PUTs new tags at region until one gets 201 or limit seconds pass; returns (tag,
    Manifest, seconds) of the first 201 or (None, None, seconds), and the other answers."""
    t0 = time.monotonic()
    others = []
    n = 0
    with region.client(timeout=WRITE_TIMEOUT + 30) as cl:
        while time.monotonic() - t0 < limit:
            n += 1
            tag = "%s-%d" % (label, n)
            m = variant(base, tag)
            try:
                r = cl.put_manifest(repo, tag, m.bytes, m.media_type)
            except ERRORS as e:
                cl.close()
                others.append("%s: %r" % (tag, e))
                time.sleep(0.2)
                continue
            if r.status == 201:
                return tag, m, time.monotonic() - t0, others
            if not unavailable(r):
                others.append("%s: %s" % (tag, r.describe()))
            time.sleep(0.1)
    return None, None, time.monotonic() - t0, others


def five_regions_minority_majority(results):
    t = results
    args = ("--write-timeout", "%ds" % WRITE_TIMEOUT)
    with cluster.Cluster(5, args=args) as c:
        lead = c.wait_leader()
        repo = h.unique_repo("five")
        base = h.make_image(layers=1, layer_size=512)
        acked = {}
        with lead.client() as cl:
            base.push(cl, repo, "base")
        acked["base"] = base
        c.wait_converged(timeout=20)

        # Two of five gone (the leader one of them): the three others go on.
        followers = c.followers(lead)
        killed = [lead, followers[0]]
        survivors = [x for x in c.regions if x not in killed]
        t_kill = time.monotonic()
        for x in killed:
            c.kill9(x)
        tag, m, secs, others = put_until_ok(survivors[0], repo, base, "after-two", 15)
        t.require(tag is not None, "no write acknowledged at %s within 15 s of killing %s: %s"
                  % (survivors[0].name, ", ".join(x.name for x in killed), others[:4]))
        acked[tag] = m
        t.check(not others, "writes at %s after killing two answered otherwise than 201/503: "
                "%s" % (survivors[0].name, others[:4]))
        new = c.wait_leader(timeout=15, among=survivors)
        note(results, "killed %s; first write acknowledged %s after the kill; %s leads" % (
            ", ".join(x.name for x in killed), ms(time.monotonic() - t_kill), new.name))
        for x in survivors:
            with x.client(timeout=WRITE_TIMEOUT + 30) as cl:
                for i in range(3):
                    tag = "three-%s-%d" % (x.name, i)
                    m = variant(base, tag)
                    r = cl.put_manifest(repo, tag, m.bytes, m.media_type)
                    if t.check(r.status == 201, "PUT %s at %s with 3 of 5 up: %s" % (
                            tag, x.name, r.describe())):
                        acked[tag] = m

        # A third gone: two of five cannot commit.
        third = new
        c.kill9(third)
        pair = [x for x in survivors if x is not third]
        time.sleep(0.5)
        refused = {}
        for x in pair:
            with x.client(timeout=WRITE_TIMEOUT + 30) as cl:
                for i in range(2):
                    tag = "two-%s-%d" % (x.name, i)
                    m = variant(base, tag)
                    t0 = time.monotonic()
                    try:
                        r = cl.put_manifest(repo, tag, m.bytes, m.media_type)
                    except ERRORS as e:
                        t.check(False, "PUT %s at %s with 2 of 5 up: %r" % (tag, x.name, e))
                        continue
                    secs = time.monotonic() - t0
                    refused[tag] = m
                    t.check(unavailable(r), "PUT %s at %s with 2 of 5 up: %s, want 503 "
                            "UNAVAILABLE" % (tag, x.name, r.describe()))
                    t.check(secs <= WRITE_TIMEOUT + SLACK, "PUT %s at %s with 2 of 5 up took "
                            "%s (write timeout %.0f s)" % (tag, x.name, ms(secs),
                                                           WRITE_TIMEOUT))
                    note(results, "2 of 5 up: PUT at %s -> %d in %s" % (x.name, r.status,
                                                                      ms(secs)))
                r = cl.get_manifest(repo, "base")
                t.check(r.status == 200 and r.body == base.bytes and is_stale(r),
                        "tag read at %s with 2 of 5 up: %s, Warning %r" % (
                            x.name, r.describe(40), r.headers.get("Warning")))

        # Back to five.
        t_back = time.monotonic()
        for x in killed + [third]:
            c.restart(x)
        try:
            c.wait_leader(timeout=30)
            d = c.wait_converged(timeout=30)
            note(results, "all five back and converged in %.1f s (applied index %d)" % (
                time.monotonic() - t_back, d["applied_index"]))
        except cluster.ClusterError as e:
            t.check(False, "after the restarts: %s" % e)
        for x in c.regions:
            with x.client(timeout=WRITE_TIMEOUT + 30) as cl:
                tag = "back-%s" % x.name
                m = variant(base, tag)
                r = cl.put_manifest(repo, tag, m.bytes, m.media_type)
                if t.check(r.status == 201, "PUT %s at %s after the restarts: %s" % (
                        tag, x.name, r.describe())):
                    acked[tag] = m
        check_writes_everywhere(t, c, repo, acked, refused, "after the last writes")


def main(results):
    if results.target != "portolan":
        raise h.Skip("a Raft cluster is portolan-only")
    for name, fn in (("membership_changes", membership_changes),
                     ("leadership_transfers_under_writes", leadership_transfers_under_writes),
                     ("removed_region_answers_a_write", removed_region_answers_a_write),
                     ("five_regions_minority_majority", five_regions_minority_majority)):
        results.run(name, fn, results)
