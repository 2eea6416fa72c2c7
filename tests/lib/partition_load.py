"""partition_load.py - the client load, the partition scenarios and the figures that
tests/integration/test_partitions.py checks and bench/partitions.py prints.

Role: both run the same thing against a partition.PartitionCluster: a writer, a reader and
a blob uploader per region, one partition scenario, then the heal; they differ only in what
they do with the record (assert, or tabulate over several runs). Python 3 standard library
only, plus harness.py, linearizability.py and partition.py.

Load (Load(c, repo, base, tags).start() ... .stop()), per region X, each on its own
keep-alive connections to X's client port, every operation timed with time.monotonic:
  - writer: PUTs a distinct manifest under one of `tags` (chosen at random), one at a time,
    pausing PACE between answers (FAILED_PAUSE after a failure). Most manifests reuse the
    base image's blobs (pushed before the load). Every CROSS_EVERY-th one, when its
    uploader has one ready, references a layer whose upload another region acknowledged
    (201) before this PUT was sent: its blobs exist in the cluster, wherever they are
    stored, so a 400 to it (MANIFEST_BLOB_UNKNOWN) is wrong; a region that cannot confirm
    what the leader committed must answer 503 instead.
  - uploader: uploads small new blobs at the other regions in turn (monolithic POST), PACE
    apart, and hands each acknowledged one to X's writer, replacing the one it has not used
    yet: the writer always references the latest, so that its PUT comes soon after another
    region's 201 (while X may not have applied that upload yet, or cannot learn of it).
  - reader: HEADs one of `tags` at random, PACE apart (answers with `Warning: 110` are
    stale reads, which promise nothing about recency).
Every tag write and read goes into a linearizability.History (201: ok; 503, a timeout or a
cut connection: indeterminate; 400: no effect). Load also keeps, per region, the completion
times of acknowledged writes, the acknowledged manifests and blobs, 400s to writes whose
blobs existed, and every other unexpected answer.

Scenarios (run_scenario(c, kind, load, hold)): each starts from a healed cluster with an
agreed leader, lets the load run WARMUP seconds, changes the network, holds it `hold`
seconds, heals, and lets the load run on until every region has had a write acknowledged
after the heal (at least POST_MIN seconds, at most POST_MAX):
  leader-isolated    the leader cut from both others (with three regions this is also the
                     majority/minority split with the leader on the minority side)
  follower-isolated  one follower cut from both others (the leader on the majority side)
  bridge             leadership moved to the third region C (transfer-leader) first; then
                     A-C cut, A-B and B-C up: A reaches a majority (itself and B), not the
                     leader
  flapping           the link leader-follower cut and mended every FLAP_MIN..FLAP_MAX s
                     (random) for `hold` seconds; every region reaches a majority throughout

Figures (Scenario.figures(load)), per region: "gap", the longest time within [cut, heal]
without an acknowledged write there (the edges count: from the cut to the first 201, from
the last 201 to the heal); "heal", the time from the heal to the first 201 completed after
it; "majority", whether the region reached a majority of the regions (itself and the
regions it had a link to) the whole time, i.e. whether the availability goal applies to it.

Goal (GOAL_GAP, GOAL_HEAL): wherever a majority is reachable, a region that can reach it
goes no longer without acknowledged writes than the election time plus one round trip
(election timeout 1-2 s randomised, pre-vote and vote; about 2.5 s here); after the heal
every region writes again within 1 s.
"""

import http.client
import os
import random
import threading
import time

import harness as h
import linearizability as lz

GOAL_GAP = 2.5
GOAL_HEAL = 1.0
PACE = 0.02  # seconds between a writer's or reader's answers and its next request
FAILED_PAUSE = 0.05  # after a 503 or a connection error
CROSS_EVERY = 2  # every n-th write references a blob uploaded at another region
REQUEST_TIMEOUT = 15.0  # client socket timeout: beyond every node-side timeout (write 5 s)
WARMUP = 1.0
POST_MIN = 1.5  # seconds of load after the heal, at least
POST_MAX = 8.0  # ... and at most, waiting for every region's first 201 after the heal
FLAP_MIN, FLAP_MAX = 0.2, 0.5
SCENARIOS = ("leader-isolated", "follower-isolated", "bridge", "flapping")
ERRORS = (OSError, http.client.HTTPException)


def unavailable(resp):
    return resp.status == 503 and "UNAVAILABLE" in resp.error_codes()


def is_stale(resp):
    warning = resp.headers.get("Warning") or ""
    return warning.startswith("110")


def layer_manifest(base, layer, label):
    """An image manifest with base's config and one layer (data bytes, already uploaded),
    annotated with label."""
    obj = {"schemaVersion": 2, "mediaType": h.OCI_MANIFEST,
           "config": dict(base.obj["config"]),
           "layers": [h.descriptor(h.OCI_LAYER, layer)],
           "annotations": {"org.portolan.test.partition": label}}
    return h.Manifest(obj, h.OCI_MANIFEST)


def variant(base, label):
    obj = dict(base.obj)
    obj["annotations"] = {"org.portolan.test.partition": label}
    return h.Manifest(obj, base.media_type, base.blobs)


class Load:
    """Writers, readers and uploaders in every region of cluster c; see the module comment."""

    def __init__(self, c, repo, base, tags, seed=None, history=None):
        self.c = c
        self.repo = repo
        self.base = base
        self.tags = list(tags)
        self.rnd = random.Random(seed)
        self.history = history or lz.History()
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = []
        self.acks = {r.name: [] for r in c.regions}  # completion times of 201s
        self.acked = {}  # manifest digest -> (Manifest, region name)
        self.blobs = {}  # blob digest -> region name that acknowledged its upload
        self.bad400 = []  # texts: 400 to a write whose blobs existed
        self.unexpected = []  # texts: answers outside 201/503 UNAVAILABLE (and stale reads)
        self.counts = {}  # (what, outcome) -> n
        self.latest = {r.name: None for r in c.regions}  # (data, region name, 201 time)
        self.serial = 0

    def _count(self, what, outcome):
        with self.lock:
            self.counts[(what, outcome)] = self.counts.get((what, outcome), 0) + 1

    def _label(self, region):
        with self.lock:
            self.serial += 1
            return "%s-%d-%s" % (region.name, self.serial, os.urandom(3).hex())

    def start(self):
        for r in self.c.regions:
            for fn in (self._writer, self._reader, self._uploader):
                th = threading.Thread(target=fn, args=(r, random.Random(self.rnd.random())),
                                      name="%s-%s" % (fn.__name__.strip("_"), r.name),
                                      daemon=True)
                th.start()
                self.threads.append(th)
        return self

    def stop(self):
        self.stop_event.set()
        for th in self.threads:
            th.join(REQUEST_TIMEOUT + 10)
        stuck = [th.name for th in self.threads if th.is_alive()]
        if stuck:
            raise AssertionError("load threads still running: %s" % ", ".join(stuck))

    # -- the three loops ------------------------------------------------------------------

    def _writer(self, region, rnd):
        cl = region.client(timeout=REQUEST_TIMEOUT)
        n = 0
        try:
            while not self.stop_event.is_set():
                n += 1
                tag = rnd.choice(self.tags)
                label = self._label(region)
                cross = None
                if n % CROSS_EVERY == 0:
                    with self.lock:
                        cross, self.latest[region.name] = self.latest[region.name], None
                if cross is not None:
                    layer, where, acked_at = cross
                    m = layer_manifest(self.base, layer, label)
                else:
                    m = variant(self.base, label)
                op = self.history.invoke(tag, lz.WRITE, value=m.digest, process="w-" + region.name,
                                         region=region.name)
                try:
                    resp = cl.put_manifest(self.repo, tag, m.bytes, m.media_type)
                except ERRORS as e:
                    cl.close()
                    self.history.info(op, type(e).__name__)
                    self._count("write", "error")
                    self.stop_event.wait(FAILED_PAUSE)
                    continue
                now = time.monotonic()
                what = "write" if cross is None else "cross-region write"
                if resp.status == 201:
                    self.history.ok(op)
                    with self.lock:
                        self.acks[region.name].append(now)
                        self.acked[m.digest] = (m, region.name)
                    self._count(what, "201")
                    self.stop_event.wait(PACE)
                    continue
                if unavailable(resp):
                    self.history.info(op, "503")
                    self._count(what, "503")
                elif resp.status == 400:
                    self.history.fail(op, "400")
                    self._count(what, "400")
                    blobs = ("its layer uploaded at %s (201 %.3f s before this PUT)"
                             % (where, op.call - acked_at) if cross is not None
                             else "the base image's blobs")
                    with self.lock:
                        self.bad400.append("PUT %s at %s, %s: %s" % (
                            tag, region.name, blobs, resp.describe()))
                else:
                    self.history.info(op, str(resp.status))
                    self._count(what, str(resp.status))
                    with self.lock:
                        self.unexpected.append("PUT %s at %s: %s" % (tag, region.name,
                                                                     resp.describe()))
                self.stop_event.wait(FAILED_PAUSE)
        finally:
            cl.close()

    def _reader(self, region, rnd):
        cl = region.client(timeout=REQUEST_TIMEOUT)
        try:
            while not self.stop_event.is_set():
                self.read(cl, region, rnd.choice(self.tags), "r-" + region.name)
                self.stop_event.wait(PACE)
        finally:
            cl.close()

    def read(self, cl, region, tag, process):
        """One HEAD of tag at region on client cl, recorded; returns the Op."""
        op = self.history.invoke(tag, lz.READ, process=process, region=region.name)
        try:
            resp = cl.get_manifest(self.repo, tag, "HEAD")
        except ERRORS as e:
            cl.close()
            self.history.fail(op, type(e).__name__)
            self._count("read", "error")
            return op
        complete = self.history.stale if is_stale(resp) else self.history.ok
        if resp.status == 200:
            complete(op, value=resp.headers.get("Docker-Content-Digest"))
            self._count("read", "200 stale" if is_stale(resp) else "200")
        elif resp.status == 404:
            complete(op, value=None)
            self._count("read", "404 stale" if is_stale(resp) else "404")
        else:
            self.history.fail(op, str(resp.status))
            self._count("read", str(resp.status))
            if resp.status != 503:
                with self.lock:
                    self.unexpected.append("HEAD %s at %s: %s" % (tag, region.name,
                                                                  resp.describe()))
        return op

    def _uploader(self, region, rnd):
        others = [r for r in self.c.regions if r is not region]
        clients = {r.name: r.client(timeout=REQUEST_TIMEOUT) for r in others}
        i = 0
        try:
            while not self.stop_event.is_set():
                where = others[i % len(others)]
                i += 1
                cl = clients[where.name]
                data = os.urandom(256)
                digest = h.sha256_digest(data)
                hdrs = {"Content-Type": "application/octet-stream",
                        "Content-Length": str(len(data))}
                try:
                    resp = cl.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (
                        self.repo, digest), hdrs, data)
                except ERRORS:
                    cl.close()
                    self._count("blob upload", "error")
                    self.stop_event.wait(FAILED_PAUSE)
                    continue
                if resp.status == 201:
                    self._count("blob upload", "201")
                    with self.lock:
                        self.blobs[digest] = where.name
                        self.latest[region.name] = (data, where.name, time.monotonic())
                    self.stop_event.wait(PACE)
                    continue
                self._count("blob upload", str(resp.status))
                if not unavailable(resp):
                    with self.lock:
                        self.unexpected.append("blob upload at %s: %s" % (where.name,
                                                                         resp.describe()))
                self.stop_event.wait(FAILED_PAUSE)
        finally:
            for cl in clients.values():
                cl.close()

    # -- figures --------------------------------------------------------------------------

    def ack_times(self, region):
        with self.lock:
            return sorted(self.acks[region.name])


def longest_gap(times, since, until):
    """The longest stretch of [since, until] with no time of times in it (edges count)."""
    inside = [t for t in times if since <= t <= until]
    edges = [since] + inside + [until]
    return max(b - a for a, b in zip(edges, edges[1:]))


def first_after(times, since):
    """Seconds from since to the first time at or after it, None when there is none."""
    later = [t for t in times if t >= since]
    return (later[0] - since) if later else None


class Scenario:
    """What run_scenario did: kind, t_cut, t_heal, roles ({region name: text}), majority
    ({region name: bool}), events ([(time, text)]), the leader's name before the cut and,
    for leader-isolated, elected (seconds from the cut until the others agreed on a new
    leader, polled every 50 ms; None if they did not within the hold)."""

    def __init__(self, kind):
        self.kind = kind
        self.t_cut = self.t_heal = self.t_end = None
        self.roles = {}
        self.majority = {}
        self.events = []
        self.leader_before = None
        self.elected = None  # leader-isolated: seconds from the cut to an agreed new leader

    def event(self, text):
        self.events.append((time.monotonic(), text))

    def figures(self, load):
        """{region name: {"gap", "heal", "majority", "role"}}; see the module comment."""
        out = {}
        for r in load.c.regions:
            times = load.ack_times(r)
            out[r.name] = {"gap": longest_gap(times, self.t_cut, self.t_heal),
                           "heal": first_after(times, self.t_heal),
                           "majority": self.majority[r.name],
                           "role": self.roles[r.name]}
        return out


def transfer_leader(c, target, timeout=20.0):
    """Moves leadership to region target (POST /admin/cluster/transfer-leader at the leader,
    retried) and waits until every region agrees; raises AssertionError on failure."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        lead = c.wait_leader(timeout=max(1.0, deadline - time.monotonic()))
        if lead is target:
            return
        try:
            with lead.client(timeout=10) as cl:
                resp = cl.request("POST", "/admin/cluster/transfer-leader",
                                  {"Content-Type": "application/json"},
                                  ('{"id": %d}' % target.id).encode())
            last = resp.describe()
        except ERRORS as e:
            last = repr(e)
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            if c.leader() is target:
                return
            time.sleep(0.05)
    raise AssertionError("leadership did not move to %s within %.0f s: %s" % (
        target.name, timeout, last))


def watch_election(c, sc, old, among, hold):
    """For hold seconds from sc.t_cut: notes in sc.events when the regions of among first
    agree on a leader other than old (the election's length, to tell it from the write
    path's share of a gap)."""
    end = sc.t_cut + hold
    while time.monotonic() < end:
        lead = c.leader(among=among)
        if lead is not None and lead is not old:
            sc.elected = time.monotonic() - sc.t_cut
            sc.event("%s elected (agreed by %s)" % (lead.name, ", ".join(r.name
                                                                      for r in among)))
            break
        time.sleep(0.05)
    time.sleep(max(0.0, end - time.monotonic()))


def run_scenario(c, kind, load, hold, rnd=None):
    """Runs scenario kind (SCENARIOS) on partition cluster c with load running (started
    here, stopped by the caller); returns the Scenario. The cluster is healed on return,
    also when this raises."""
    rnd = rnd or random.Random()
    sc = Scenario(kind)
    if kind == "bridge":
        transfer_leader(c, c.regions[-1])
    lead = c.wait_leader(timeout=20)
    sc.leader_before = lead.name
    followers = [r for r in c.regions if r is not lead]
    load.start()
    time.sleep(WARMUP)
    try:
        if kind == "leader-isolated":
            c.isolate(lead)
            sc.roles = {r.name: "cut off (leader)" if r is lead else "majority side"
                        for r in c.regions}
        elif kind == "follower-isolated":
            cut = followers[0]
            c.isolate(cut)
            sc.roles = {r.name: "cut off" if r is cut else
                        "majority side (leader)" if r is lead else "majority side"
                        for r in c.regions}
        elif kind == "bridge":
            a, b = [r for r in c.regions if r is not lead][:2]
            c.cut(a, lead)
            sc.roles = {a.name: "end, no link to leader", b.name: "bridge",
                        lead.name: "end (leader)"}
        elif kind == "flapping":
            other = followers[0]
            sc.roles = {r.name: "flapping link (leader)" if r is lead else
                        "flapping link" if r is other else "steady links"
                        for r in c.regions}
        else:
            raise ValueError("unknown scenario %r" % (kind,))
        sc.t_cut = time.monotonic()
        sc.event("%s: %s" % (kind, ", ".join("%s %s" % (n, x) for n, x in sc.roles.items())))
        if kind == "flapping":
            sc.majority = {r.name: True for r in c.regions}
            flaps = 0
            while time.monotonic() < sc.t_cut + hold:
                c.cut(lead, other)
                flaps += 1
                time.sleep(rnd.uniform(FLAP_MIN, FLAP_MAX))
                c.mend(lead, other)
                time.sleep(rnd.uniform(FLAP_MIN, FLAP_MAX))
            sc.event("%d cuts of %s-%s" % (flaps, lead.name, other.name))
        else:
            sc.majority = {r.name: c.reaches_majority(r) for r in c.regions}
            if kind == "leader-isolated":
                watch_election(c, sc, lead, followers, hold)
            else:
                time.sleep(hold)
    finally:
        c.heal()
    sc.t_heal = time.monotonic()
    sc.event("healed")
    time.sleep(POST_MIN)
    while time.monotonic() < sc.t_heal + POST_MAX and any(
            first_after(load.ack_times(r), sc.t_heal) is None for r in c.regions):
        time.sleep(0.1)
    sc.t_end = time.monotonic()
    return sc
