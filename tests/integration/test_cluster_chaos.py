"""A randomized run against a cluster whose regions talk through the WAN emulator: concurrent
tag writes, reads and deletes in every region while a nemesis kills the leader, cuts off
minorities and restarts followers; then every tag's history must be linearizable and every
region must hold byte-identical replicated state.

Role: the end-to-end check of what README.md promises a cluster's clients ("A cluster of
regions"): a 201/202 means committed, tag reads are linearizable unless they carry
`Warning: 110 - "stale: no quorum"`, writes in a minority fail with 503 UNAVAILABLE. Tests:
  - checker_self_test: tests/lib/linearizability.py on known linearizable and
    non-linearizable histories, against an exhaustive search on small random histories, and
    on a generated linearizable history of 2000 operations over 10 tags (and a corrupted
    copy of it) within a time limit;
  - linearizable_under_chaos: PT_CHAOS_REGIONS (3, or 5) regions behind the emulator with a
    5-20 ms one-way delay per region pair; worker threads PUT manifests by tag (each a
    distinct manifest, so each write has its own digest), DELETE tags and read them
    (HEAD or GET) on PT_CHAOS_TAGS tags in randomly chosen regions, recording every call and
    answer; a nemesis thread meanwhile kill -9s the leader and restarts it, cuts off a random
    minority or the leader's and heals it, and restarts followers (kill -9 or SIGTERM); a
    region whose process exits by itself is a failure (it is restarted so the run goes on,
    its exit status reported). After
    PT_CHAOS_SECONDS it heals everything, waits until every region has applied the same
    index and stays there, reads every tag in every region, then requires: every tag's
    history linearizable (the checker), stale reads serving only digests written to that
    tag before, GET /admin/state-digest byte-identical everywhere, no answer outside the
    documented ones, and no region process that died by itself.

Randomness: every random choice (operations, regions, nemesis actions and timings, WAN
delays) comes from generators seeded by PT_CHAOS_SEED (default below); thread scheduling
and the servers are not deterministic, so a seed replays the same plan, not the same
interleaving. A failing run says its seed, and keeps the history (one JSON object a line),
the nemesis events and every region's log in a directory it names.
With the runner's -v: the seed, operation counts by kind and outcome, nemesis events, the
checker's figures per tag, convergence times.

Blob bytes are not replicated between regions yet: the run only reads and writes metadata
(manifests by tag), with the base image's blobs pushed once and their links replicated.
"""

import http.client
import itertools
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import cluster  # noqa: E402
import harness as h  # noqa: E402
import linearizability as lz  # noqa: E402

TIMEOUT = 240  # the runner's budget for the module; a default run takes about 70 s

DEFAULT_SEED = 20240611
SEED = int(os.environ.get("PT_CHAOS_SEED", DEFAULT_SEED))
SECONDS = float(os.environ.get("PT_CHAOS_SECONDS", 40))
REGIONS = int(os.environ.get("PT_CHAOS_REGIONS", 3))
TAGS = int(os.environ.get("PT_CHAOS_TAGS", 8))
WORKERS = int(os.environ.get("PT_CHAOS_WORKERS", 6))

WRITE_TIMEOUT = 2.0  # given to every node as --write-timeout
REQUEST_TIMEOUT = 10.0  # client socket timeout: well beyond every node-side timeout
DELAY_RANGE_MS = (5, 20)  # one-way delay of each region pair
THINK_S = 0.03  # a worker's mean pause between operations
CONVERGE_S = 45.0  # quiescence after the stop, at most
FINAL_TIMEOUT = 5.0  # client timeout of the checks after the stop
WARNING_STALE = "110"


def note(results, msg):
    if results.verbose:
        print("  " + msg, flush=True)


# -- the checker's self-test -----------------------------------------------------------------


def _history(spec, key="t"):
    """A History from (kind, call, ret, outcome, value) rows; outcome ok/info/fail/stale."""
    hist = lz.History(clock=lambda: 0.0)
    for kind, call, ret, outcome, value in spec:
        op = hist.invoke(key, kind, value=value if kind == lz.WRITE else None, at=call)
        if outcome == "ok":
            hist.ok(op, value=None if kind == lz.WRITE else value, at=ret)
        elif outcome == "info":
            hist.info(op, at=ret)
        elif outcome == "fail":
            hist.fail(op, at=ret)
        else:
            hist.stale(op, value, at=ret)
    return hist


W, R, D = lz.WRITE, lz.READ, lz.DELETE
KNOWN = [
    # (name, linearizable?, history)
    ("write then read", True, [(W, 0, 1, "ok", "a"), (R, 2, 3, "ok", "a")]),
    ("read of an overwritten value", False,
     [(W, 0, 1, "ok", "a"), (W, 2, 3, "ok", "b"), (R, 4, 5, "ok", "a")]),
    ("read before the write was invoked", False, [(R, 0, 1, "ok", "a"), (W, 2, 3, "ok", "a")]),
    ("value seen, then unseen", False,
     [(W, 0, 10, "ok", "a"), (R, 1, 2, "ok", "a"), (R, 3, 4, "ok", None)]),
    ("reads inside a slow write", True,
     [(W, 0, 10, "ok", "a"), (R, 1, 2, "ok", None), (R, 3, 4, "ok", "a")]),
    ("concurrent writes, either order", True,
     [(W, 0, 5, "ok", "a"), (W, 1, 6, "ok", "b"), (R, 7, 8, "ok", "a")]),
    ("concurrent writes, readers disagree on the order", False,
     [(W, 0, 5, "ok", "a"), (W, 1, 6, "ok", "b"), (R, 7, 8, "ok", "a"), (R, 9, 10, "ok", "b"),
      (R, 11, 12, "ok", "a")]),
    ("indeterminate write observed", True, [(W, 0, None, "info", "a"), (R, 5, 6, "ok", "a")]),
    ("indeterminate write never taking effect", True,
     [(W, 0, 1, "ok", "a"), (W, 2, None, "info", "b"), (R, 5, 6, "ok", "a")]),
    ("indeterminate write seen, then unseen", False,
     [(W, 0, None, "info", "a"), (R, 5, 6, "ok", "a"), (R, 7, 8, "ok", None)]),
    ("indeterminate write seen before its invocation", False,
     [(R, 0, 1, "ok", "a"), (W, 2, None, "info", "a")]),
    ("failed write observed", False,
     [(W, 0, 1, "ok", "a"), (W, 2, 3, "fail", "b"), (R, 4, 5, "ok", "b")]),
    ("stale read left out", True,
     [(W, 0, 1, "ok", "a"), (W, 2, 3, "ok", "b"), (R, 4, 5, "stale", "a")]),
    ("delete", True, [(W, 0, 1, "ok", "a"), (D, 2, 3, "ok", True), (R, 4, 5, "ok", None)]),
    ("delete finds nothing after a write", False, [(W, 0, 1, "ok", "a"), (D, 2, 3, "ok", False)]),
    ("delete finds a tag never written", False, [(D, 0, 1, "ok", True)]),
    ("delete needs an indeterminate write", True,
     [(W, 0, None, "info", "a"), (D, 2, 3, "ok", True), (R, 4, 5, "ok", None)]),
    ("indeterminate delete", True,
     [(W, 0, 1, "ok", "a"), (D, 2, None, "info", None), (R, 3, 4, "ok", "a"),
      (R, 5, 6, "ok", None)]),
    ("indeterminate delete undone", False,
     [(W, 0, 1, "ok", "a"), (D, 2, None, "info", None), (R, 3, 4, "ok", "a"),
      (R, 5, 6, "ok", None), (R, 7, 8, "ok", "a")]),
    ("equal times are concurrent", True, [(R, 0, 1, "ok", "a"), (W, 1, 2, "ok", "a")]),
]


def _brute(ops):
    """Exhaustive linearizability of one tag's ops: every subset of the indeterminate ones,
    every order; the reference the checker is compared with (tiny histories only)."""
    rows = []
    for o in ops:
        if o.kind == lz.READ:
            if o.status == lz.OK:
                rows.append(("r", o.value, o.call, o.ret))
        elif o.status == lz.FAIL:
            continue
        elif o.kind == lz.WRITE:
            rows.append(("w", o.value, o.call, o.ret if o.status == lz.OK else float("inf")))
        elif o.status == lz.INFO:
            rows.append(("d?", None, o.call, float("inf")))
        else:
            rows.append(("d+" if o.value else "d-", None, o.call, o.ret))
    done = [x for x in rows if x[3] != float("inf")]
    pending = [x for x in rows if x[3] == float("inf")]
    for k in range(len(pending) + 1):
        for chosen in itertools.combinations(pending, k):
            for order in itertools.permutations(done + list(chosen)):
                if any(order[j][3] < order[i][2] for i in range(len(order))
                       for j in range(i + 1, len(order))):
                    continue  # j returned before i was invoked, yet comes after it
                state, legal = None, True
                for kind, v, _, _ in order:
                    if kind == "w":
                        state = v
                    elif kind == "r":
                        legal = state == v
                    elif kind == "d+":
                        legal, state = state is not None, None
                    elif kind == "d-":
                        legal = state is None
                    else:
                        state = None
                    if not legal:
                        break
                if legal:
                    return True
    return False


def _small_random(rnd, n):
    hist = lz.History(clock=lambda: 0.0)
    written = 0
    for _ in range(n):
        call = rnd.randint(0, 12)
        ret = call + rnd.randint(0, 6)
        kind = rnd.choice([W, W, R, R, D])
        if kind == W:
            written += 1
            op = hist.invoke("k", W, value="v%d" % written, at=call)
            (hist.info if rnd.random() < 0.3 else hist.ok)(op, at=ret)
        elif kind == R:
            op = hist.invoke("k", R, at=call)
            hist.ok(op, value=rnd.choice([None] + ["v%d" % j for j in range(1, written + 2)]),
                    at=ret)
        else:
            op = hist.invoke("k", D, at=call)
            x = rnd.random()
            if x < 0.3:
                hist.info(op, at=ret)
            else:
                hist.ok(op, value=x < 0.7, at=ret)
    return hist


def _generated(seed, nops=2000, ntags=10, procs=16, p_info=0.05, mean=0.05):
    """A linearizable history: each op of `procs` sequential clients gets a linearization
    point inside its interval (after its call for an indeterminate one, or none), results
    follow from applying them in that order. Returns (History, {op seq: linearization point})."""
    rnd = random.Random(seed)
    clocks = [rnd.random() * mean for _ in range(procs)]
    plan = []
    for k in range(nops):
        p = min(range(procs), key=lambda i: clocks[i])
        call = clocks[p]
        ret = call + rnd.expovariate(1.0 / mean)
        clocks[p] = ret + rnd.random() * mean * 0.2
        kind = rnd.choices([W, R, D], [4, 5, 1])[0]
        info = kind != R and rnd.random() < p_info
        effect = not info or rnd.random() < 0.5
        point = rnd.uniform(call, ret + (5.0 if info else 0.0))
        plan.append((point, k, "t%d" % rnd.randrange(ntags), kind, call, ret, info, effect, p))
    state, outcome = {}, {}
    for point, k, tag, kind, call, ret, info, effect, p in sorted(plan):
        if kind == R:
            outcome[k] = state.get(tag)
        elif kind == D:
            outcome[k] = tag in state
            if effect:
                state.pop(tag, None)
        elif effect:
            state[tag] = "v%d" % k
    hist = lz.History(clock=lambda: 0.0)
    for point, k, tag, kind, call, ret, info, effect, p in sorted(plan, key=lambda x: x[4]):
        op = hist.invoke(tag, kind, value="v%d" % k if kind == W else None, process="p%d" % p,
                         at=call)
        if info:
            hist.info(op, at=ret)
        else:
            hist.ok(op, value=outcome.get(k), at=ret)
    return hist


def checker_self_test(results):
    t = results
    for name, want, spec in KNOWN:
        r = lz.check_history(_history(spec))["t"]
        t.check(r.valid is want, "%s: checker says %s, want %s%s" % (
            name, r.valid, want, ("; " + r.message) if r.message else ""))

    # Keys are independent: a violation on one tag is reported on that tag only.
    spec = [(W, 0, 1, "ok", "a"), (W, 2, 3, "ok", "b"), (R, 4, 5, "ok", "a")]
    hist = _history(spec, "bad")
    for kind, call, ret, outcome, value in [(W, 0, 1, "ok", "x"), (R, 4, 5, "ok", "x")]:
        op = hist.invoke("good", kind, value=value if kind == W else None, at=call)
        hist.ok(op, value=None if kind == W else value, at=ret)
    res = lz.check_history(hist)
    t.check(res["good"].valid is True and res["bad"].valid is False,
            "two tags: %r" % res)
    t.check("read -> a" in res["bad"].message and "write(b)" in res["bad"].message,
            "the report names the stale read and the write it missed: %s" % res["bad"].message)
    # An initial value.
    r = lz.check(_history([(R, 0, 1, "ok", "z")]).snapshot(), initial="z")
    t.check(r.valid is True, "read of the initial value: %r" % r)
    # Malformed histories are refused.
    try:
        lz.check_history(_history([(W, 0, 1, "ok", "a"), (W, 2, 3, "ok", "a")]))
        t.check(False, "two writes of one value were accepted")
    except ValueError:
        pass

    # Against an exhaustive search on small random histories (both verdicts occur).
    rnd = random.Random(7)
    verdicts = {True: 0, False: 0}
    for i in range(1500):
        hist = _small_random(rnd, rnd.randint(1, 6))
        ops = hist.snapshot()
        want, got = _brute(ops), lz.check(ops).valid
        verdicts[want] += 1
        if got is not want:
            t.check(False, "random history %d: checker %s, exhaustive search %s: %s" % (
                i, got, want, " | ".join(o.describe() for o in ops)))
            break
    t.check(min(verdicts.values()) > 300, "random small histories: verdicts %r" % verdicts)
    note(results, "checker agrees with the exhaustive search on %d small random histories "
         "(%d linearizable, %d not)" % (sum(verdicts.values()), verdicts[True], verdicts[False]))

    # Size: 2000 operations over 10 tags with 16 clients, and over 3 tags with 32 clients
    # (about 10 concurrent operations per tag), 5% of them indeterminate.
    for tags, procs in ((3, 32), (10, 16)):
        hist = _generated(3, ntags=tags, procs=procs)
        t0 = time.monotonic()
        res = lz.check_history(hist)
        took = time.monotonic() - t0
        bad = [r for r in res.values() if r.valid is not True]
        t.check(not bad, "generated linearizable history judged otherwise: %s" % bad[:3])
        t.check(took < 10.0, "checking 2000 operations took %.1f s" % took)
        note(results, "checker: 2000 ops, %d tags, %d clients in %.2f s (%d configurations, "
             "%d indeterminate, %d pruned)" % (tags, procs, took,
                                               sum(r.configs for r in res.values()),
                                               sum(r.indeterminate for r in res.values()),
                                               sum(r.pruned for r in res.values())))
    # The same history with one read turned stale: a read returning the value of a write
    # that a later completed write overwrote before the read began.
    ops = hist.snapshot()
    target = None
    for rd in ops:
        if rd.kind != R or rd.status != lz.OK:
            continue
        same = [o for o in ops if o.key == rd.key and o.kind == W and o.status == lz.OK]
        for w2 in same:
            if w2.ret < rd.call:
                older = [w1 for w1 in same if w1.ret < w2.call and w1.value != rd.value]
                if older:
                    target = (rd, older[0].value)
                    break
        if target:
            break
    t.require(target is not None, "no read to corrupt in the generated history")
    target[0].value = target[1]
    t0 = time.monotonic()
    res = lz.check_history(ops)
    took = time.monotonic() - t0
    t.check(res[target[0].key].valid is False, "corrupted history judged %r" % res[target[0].key])
    t.check(all(r.valid is True for k, r in res.items() if k != target[0].key),
            "tags other than the corrupted one: %r" % res)
    t.check(took < 10.0, "checking the corrupted history took %.1f s" % took)


# -- the chaos run ---------------------------------------------------------------------------


class Conn:
    """One HTTP/1.1 keep-alive connection to a region, never retried: a request whose fate is
    unknown must be reported as such, not sent twice. generation() (optional) counts the
    region's process starts: a connection opened before the last one is dropped unused, so a
    request does not go down a connection to a process that is gone."""

    def __init__(self, region, timeout=REQUEST_TIMEOUT, generation=None):
        self.region = region
        self.timeout = timeout
        self.generation = generation
        self.conn = None
        self.gen = None

    def request(self, method, path, headers=None, body=None):
        """(status, {lower-case header: value}, body bytes). Raises on a transport error after
        dropping the connection; `sent` on the exception tells whether the request may have
        reached the server."""
        if self.conn is not None and self.generation is not None and (
                self.generation() != self.gen):
            self.close()
        if self.conn is None:
            self.gen = self.generation() if self.generation is not None else None
            self.conn = http.client.HTTPConnection("127.0.0.1", self.region.port,
                                                   timeout=self.timeout)
            try:
                self.conn.connect()
            except OSError as e:
                self.conn = None
                e.sent = False
                raise
        try:
            hdrs = self.region.auth_headers()
            hdrs.update(headers or {})
            self.conn.request(method, path, body=body, headers=hdrs)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            e.sent = True
            raise
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            self.close()
        return resp.status, hdrs, data

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def error_codes(body):
    try:
        return [e.get("code") for e in json.loads(body.decode("utf-8")).get("errors", [])]
    except (ValueError, AttributeError, UnicodeDecodeError):
        return []


def is_stale(hdrs):
    warning = hdrs.get("warning") or ""
    return warning.startswith(WARNING_STALE) and "stale" in warning


class Run:
    """Shared state of one chaos run: the cluster, the history, the events, the problems."""

    def __init__(self, c, repo, base):
        self.c = c
        self.repo = repo
        self.base = base
        self.history = lz.History()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.unexpected = []  # answers outside the documented ones
        self.events = []  # (t, text) of the nemesis
        self.down = set()  # regions the nemesis has stopped (not to be chosen by workers)
        self.deaths = []  # (t, region name, how): processes that exited by themselves
        self.counter = itertools.count(1)
        self.starts = {r.name: 0 for r in c.regions}  # process starts (see Conn)

    def t(self):
        return time.monotonic() - self.history.t0

    def event(self, text):
        with self.lock:
            self.events.append((self.t(), text))

    def problem(self, text):
        with self.lock:
            self.unexpected.append("%.3f %s" % (self.t(), text))

    def up(self):
        with self.lock:
            down = set(self.down)
        return [r for r in self.c.regions if r not in down and r.running()]


def manifest_for(base, label):
    obj = dict(base.obj)
    obj["annotations"] = {"org.portolan.test.chaos": label}
    return h.Manifest(obj, base.media_type, base.blobs)


def do_write(run, conn, tag, proc):
    m = manifest_for(run.base, "%s-%d" % (proc, next(run.counter)))
    hist = run.history
    op = hist.invoke(tag, lz.WRITE, value=m.digest, process=proc, region=conn.region.name)
    try:
        status, hdrs, body = conn.request(
            "PUT", "/v2/%s/manifests/%s" % (run.repo, tag),
            {"Content-Type": m.media_type, "Content-Length": str(len(m.bytes))}, m.bytes)
    except (OSError, http.client.HTTPException) as e:
        (hist.info if getattr(e, "sent", True) else hist.fail)(op, type(e).__name__)
        return
    if status == 201:
        if hdrs.get("docker-content-digest") != m.digest:
            run.problem("PUT %s at %s: Docker-Content-Digest %r, want %s" % (
                tag, conn.region.name, hdrs.get("docker-content-digest"), m.digest))
        hist.ok(op)
    elif status == 503 and "UNAVAILABLE" in error_codes(body):
        hist.info(op, "503")
    else:
        hist.info(op, "%d" % status)
        run.problem("PUT %s at %s: %d %s" % (tag, conn.region.name, status, body[:200]))


def do_delete(run, conn, tag, proc):
    hist = run.history
    op = hist.invoke(tag, lz.DELETE, process=proc, region=conn.region.name)
    try:
        status, hdrs, body = conn.request("DELETE", "/v2/%s/manifests/%s" % (run.repo, tag))
    except (OSError, http.client.HTTPException) as e:
        (hist.info if getattr(e, "sent", True) else hist.fail)(op, type(e).__name__)
        return
    codes = error_codes(body)
    if status == 202:
        hist.ok(op, value=True)
    elif status == 404 and "MANIFEST_UNKNOWN" in codes:
        hist.ok(op, value=False)
    elif status == 503 and "UNAVAILABLE" in codes:
        hist.info(op, "503")
    else:
        hist.info(op, "%d" % status)
        run.problem("DELETE %s at %s: %d %s" % (tag, conn.region.name, status, body[:200]))


def do_read(run, conn, tag, proc, method):
    """A tag read (HEAD or GET) recorded in the history; returns its Op."""
    hist = run.history
    op = hist.invoke(tag, lz.READ, process=proc, region=conn.region.name)
    try:
        status, hdrs, body = conn.request(method, "/v2/%s/manifests/%s" % (run.repo, tag),
                                          {"Accept": h.ACCEPT_MANIFESTS})
    except (OSError, http.client.HTTPException) as e:
        hist.fail(op, type(e).__name__)
        return op
    complete = hist.stale if is_stale(hdrs) else hist.ok
    if status == 200:
        digest = hdrs.get("docker-content-digest")
        if method == "GET" and (digest is None or h.sha256_digest(body) != digest):
            run.problem("GET %s at %s: body digest %s, header %r" % (
                tag, conn.region.name, h.sha256_digest(body), digest))
        complete(op, value=digest, note=method)
    elif status == 404 and (method == "HEAD" or "MANIFEST_UNKNOWN" in error_codes(body)):
        complete(op, value=None, note=method)
    else:
        hist.fail(op, "%d" % status)
        if status != 503:
            run.problem("%s %s at %s: %d %s" % (method, tag, conn.region.name, status,
                                                 body[:200]))
    return op


def worker(run, index, rnd, tags):
    proc = "w%d" % index
    conns = {r.name: Conn(r, generation=lambda name=r.name: run.starts[name])
             for r in run.c.regions}
    try:
        while not run.stop.is_set():
            regions = run.up()
            if not regions:
                run.stop.wait(0.05)
                continue
            region = rnd.choice(regions)
            conn = conns[region.name]
            tag = rnd.choice(tags)
            x = rnd.random()
            if x < 0.40:
                do_write(run, conn, tag, proc)
            elif x < 0.52:
                do_delete(run, conn, tag, proc)
            else:
                do_read(run, conn, tag, proc, "HEAD" if x < 0.80 else "GET")
            run.stop.wait(rnd.expovariate(1.0 / THINK_S))
    finally:
        for conn in conns.values():
            conn.close()


def exit_note(r):
    """How region r's process ended, e.g. 'exit status -11 (SIGSEGV)'."""
    rc = r.node.proc.poll() if r.node.proc is not None else r.node.returncode
    sig = ""
    if rc is not None and rc < 0:
        try:
            sig = " (%s)" % signal.Signals(-rc).name
        except ValueError:
            pass
    return "exit status %s%s" % (rc, sig)


def find_leader(c):
    """The running region that calls itself leader (the highest term if several), or None."""
    best = None
    for r in c.running():
        s = r.status()
        if s and s.get("role") == "leader" and (best is None or s.get("term", 0) > best[1]):
            best = (r, s.get("term", 0))
    return best[0] if best else None


def nemesis(run, rnd):
    """One fault at a time: kill -9 + restart of the leader, a random minority or the leader's
    cut off then healed, a follower restarted (kill -9 or SIGTERM). Every region is running
    and connected again at the end."""
    c = run.c
    minority = (len(c.regions) - 1) // 2

    def restart(r):
        try:
            run.starts[r.name] += 1
            c.restart(r)
            run.event("restarted %s" % r.name)
        except RuntimeError as e:  # a start-up failure: the node's problem, reported
            run.problem("restart of %s failed: %s" % (r.name, e))
        with run.lock:
            run.down.discard(r)

    def reap():
        """Regions whose process exited without being told to: reported, then restarted so
        that the run goes on."""
        for r in c.dead():
            how = exit_note(r)
            with run.lock:
                run.deaths.append((run.t(), r.name, how))
                run.down.add(r)
            run.event("%s DIED by itself: %s" % (r.name, how))
            restart(r)

    while True:
        # Every draw of a round is made up front, whatever the cluster answers, so that a
        # seed always gives the same sequence of faults and timings.
        pause = rnd.uniform(1.0, 3.0)
        action = rnd.choice(["kill-leader", "kill-leader", "partition", "partition-leader",
                             "restart-follower"])
        cut = rnd.sample(c.regions, rnd.randint(1, minority))
        others = rnd.sample(range(len(c.regions) - 1), len(cut) - 1)
        down_for = rnd.uniform(0.5, 3.0)
        cut_for = rnd.uniform(2.0, 5.0)
        pick = rnd.random()
        how = rnd.choice(["kill -9", "SIGTERM"])
        if run.stop.wait(pause):
            break
        reap()
        if action == "kill-leader":
            lead = find_leader(c)
            if lead is None:
                run.event("no leader to kill")
                continue
            with run.lock:
                run.down.add(lead)
            c.kill9(lead)
            run.event("kill -9 leader %s" % lead.name)
            run.stop.wait(down_for)
            restart(lead)
        elif action.startswith("partition"):
            lead = find_leader(c)
            if action == "partition-leader" and lead is not None:
                # The leader and (with five regions) maybe one more, cut off together.
                peers = [r for r in c.regions if r is not lead]
                cut = [lead] + [peers[i] for i in others]
            rest = [r for r in c.regions if r not in cut]
            c.partition(set(cut), set(rest))
            run.event("partition %s | %s%s" % (
                ",".join(r.name for r in cut), ",".join(r.name for r in rest),
                " (leader %s cut off)" % lead.name if lead in cut else ""))
            run.stop.wait(cut_for)
            c.heal()
            run.event("healed")
        else:
            lead = find_leader(c)
            followers = [r for r in c.running() if r is not lead]
            if not followers:
                continue
            r = followers[int(pick * len(followers))]
            with run.lock:
                run.down.add(r)
            if how == "kill -9":
                c.kill9(r)
            else:
                r.node.stop()
            run.event("%s follower %s" % (how, r.name))
            run.stop.wait(down_for)
            restart(r)
    c.heal()
    reap()
    for r in c.regions:
        if not r.running():
            restart(r)


def raw_digests(c):
    """{Region: body bytes of GET /admin/state-digest, or None}."""
    out = {}
    for r in c.regions:
        try:
            with r.client(timeout=FINAL_TIMEOUT) as cl:
                resp = cl.get("/admin/state-digest")
            out[r] = resp.body if resp.status == 200 else None
        except (OSError, http.client.HTTPException):
            out[r] = None
    return out


def quiesce(check, c, timeout):
    """Waits until every region has applied the same index with the same digest, twice in a
    row one second apart; returns the raw digest bodies, or None after a failed check."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        bodies = raw_digests(c)
        vals = list(bodies.values())
        if all(v is not None for v in vals) and len(set(vals)) == 1:
            if last is not None and last == vals[0]:
                return bodies
            last = vals[0]
            time.sleep(1.0)
            continue
        last = None
        time.sleep(0.2)
    check(False, "regions did not reach one applied index and digest within %.0f s: %s; "
          "status: %s" % (timeout, "; ".join(
              "%s: %s" % (r.name, (b or b"no answer").decode("utf-8", "replace"))
              for r, b in raw_digests(c).items()), c.describe(c.statuses(c.regions))))
    return None


def save_evidence(run, reasons):
    """Copies the history, the nemesis events and every region's log out of the cluster's
    temporary directory; returns the directory."""
    out = tempfile.mkdtemp(prefix="pt-chaos-seed%d-" % SEED)
    with open(os.path.join(out, "history.jsonl"), "w") as f:
        t0 = run.history.t0
        for op in run.history.snapshot():
            f.write(json.dumps({
                "seq": op.seq, "key": op.key, "kind": op.kind, "status": op.status,
                "value": op.value, "call": round(op.call - t0, 6),
                "ret": None if op.ret is None else round(op.ret - t0, 6),
                "process": op.process, "region": op.region, "note": op.note}) + "\n")
    with open(os.path.join(out, "events.txt"), "w") as f:
        f.write("seed %d, %d regions, %.0f s\n" % (SEED, len(run.c.regions), SECONDS))
        for t_, text in run.events:
            f.write("%8.3f %s\n" % (t_, text))
        f.write("\n".join(reasons) + "\n")
    for r in run.c.regions:
        if r.node is not None and os.path.exists(r.node.log_path):
            shutil.copy(r.node.log_path, os.path.join(out, "%s.log" % r.name))
        if os.path.exists(r.cluster_file):
            shutil.copy(r.cluster_file, os.path.join(out, os.path.basename(r.cluster_file)))
    return out


def linearizable_under_chaos(results):
    t = results
    if REGIONS not in (3, 5):
        t.skip("PT_CHAOS_REGIONS must be 3 or 5")
    plan = random.Random(SEED)
    note(results, "seed %d (PT_CHAOS_SEED), %d regions, %d tags, %d workers, %.0f s" % (
        SEED, REGIONS, TAGS, WORKERS, SECONDS))
    c = cluster.Cluster(REGIONS, wan_delay_ms=DELAY_RANGE_MS[0],
                        args=("--write-timeout", "%ds" % WRITE_TIMEOUT))
    with c:
        delays = {}
        for a, b in itertools.combinations(c.regions, 2):
            ms = plan.randint(*DELAY_RANGE_MS)
            c.wan.link(a.name, b.name).set_delay(ms)
            delays["%s-%s" % (a.name[-1], b.name[-1])] = ms
        note(results, "one-way delays (ms): %s" % delays)
        lead = c.wait_leader()
        repo = h.unique_repo("chaos")
        base = h.make_image(layers=1, layer_size=512)
        with lead.client() as cl:
            base.push(cl, repo, "base")
        c.wait_converged(timeout=20)

        run = Run(c, repo, base)
        tags = ["t%d" % i for i in range(TAGS)]
        threads = [threading.Thread(target=worker, name="chaos-w%d" % i, daemon=True,
                                    args=(run, i, random.Random(plan.random()), tags))
                   for i in range(WORKERS)]
        nem = threading.Thread(target=nemesis, name="chaos-nemesis", daemon=True,
                               args=(run, random.Random(plan.random())))
        for th in threads:
            th.start()
        nem.start()
        run.stop.wait(SECONDS)
        run.stop.set()
        for th in threads:
            th.join(REQUEST_TIMEOUT + 5)
        nem.join(60)
        t.require(not nem.is_alive() and not any(th.is_alive() for th in threads),
                  "workers or nemesis still running 60 s after the stop")
        run.event("stopped; %d operations" % len(run.history.ops))

        failures = []  # this run's failed checks, also written next to the evidence

        def check(cond, msg):
            if not cond:
                failures.append(msg)
            return cond

        # Quiescence: one leader, every region at the same applied index with equal digests.
        c.heal()
        t0 = time.monotonic()
        try:
            c.wait_leader(timeout=20)
        except cluster.ClusterError as e:
            check(False, "after heal: %s" % e)
        bodies = quiesce(check, c, CONVERGE_S)
        if bodies is not None:
            note(results, "quiescent %.1f s after the stop: %s" % (
                time.monotonic() - t0, next(iter(bodies.values())).decode()))

        # Every tag read in every region, fresh: part of the history.
        finals = []
        for r in c.regions:
            conn = Conn(r, timeout=FINAL_TIMEOUT)
            for tag in tags:
                op = do_read(run, conn, tag, "final", "HEAD")
                if check(op.status == lz.OK, "final read of %s at %s: %s (%s)" % (
                        tag, r.name, op.status, op.note)):
                    finals.append(op)
                elif op.status == lz.FAIL and op.note not in ("503",):
                    check(False, "%s: no answer, its other tags not read" % r.name)
                    break
            conn.close()
        by_tag = {}
        for op in finals:
            by_tag.setdefault(op.key, set()).add(op.value)
        split = {k: sorted(lz.short(v) for v in vs) for k, vs in by_tag.items() if len(vs) > 1}
        check(not split, "regions disagree on tags after quiescence: %s" % split)

        counts = run.history.counts()
        note(results, "operations: %d; %s" % (len(run.history.ops), ", ".join(
            "%s %s %d" % (k[0], k[1], n) for k, n in sorted(counts.items()))))
        note(results, "nemesis:")
        for t_, text in run.events:
            note(results, "  %7.2f %s" % (t_, text))

        started = time.monotonic()
        res = lz.check_history(run.history)
        checked = time.monotonic() - started
        note(results, "checker: %.2f s; %s" % (checked, "; ".join(
            "%s %d ops (%d indeterminate, %d pruned) %d configs" % (
                k, r.ops, r.indeterminate, r.pruned, r.configs) for k, r in res.items())))
        for k, r in res.items():
            if r.valid is False:
                check(False, "seed %d: %s" % (SEED, r.message))
            elif r.valid is None:
                check(False, "seed %d: tag %s: %s" % (SEED, k, r.message))
        # Stale reads promise no recency, but what they serve must have been written there.
        first_put = {}
        for op in run.history.snapshot():
            if op.kind == lz.WRITE:
                key = (op.key, op.value)
                first_put[key] = min(first_put.get(key, op.call), op.call)
        phantom = [op for op in run.history.snapshot()
                   if op.kind == lz.READ and op.status == lz.STALE and op.value is not None
                   and not first_put.get((op.key, op.value), op.ret) < op.ret]
        check(not phantom, "stale reads of digests never written to that tag before: %s" % (
            "; ".join(op.describe(run.history.t0) for op in phantom[:5])))
        writes_ok = counts.get((lz.WRITE, lz.OK), 0)
        reads_ok = counts.get((lz.READ, lz.OK), 0)
        check(writes_ok >= 50 and reads_ok >= 50,
              "too little got through to judge: %d writes and %d fresh reads acknowledged"
              % (writes_ok, reads_ok))
        check(not run.unexpected, "answers outside the documented ones (%d): %s" % (
            len(run.unexpected), "; ".join(run.unexpected[:6])))
        for t_, name, how in run.deaths:
            check(False, "%s died by itself at %.2f s: %s" % (name, t_, how))
        for r in c.dead():
            check(False, "%s died by itself after the run: %s" % (r.name, exit_note(r)))

        for msg in failures:
            t.check(False, msg)
        if failures:
            where = save_evidence(run, failures)
            t.check(False, "seed %d (rerun with PT_CHAOS_SEED=%d); history, nemesis events "
                    "and region logs kept in %s" % (SEED, SEED, where))


def main(results):
    results.run("checker_self_test", checker_self_test, results)
    if results.target != "portolan":
        raise h.Skip("a Raft cluster is portolan-only")
    results.run("linearizable_under_chaos", linearizable_under_chaos, results)
