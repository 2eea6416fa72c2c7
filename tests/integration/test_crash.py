"""kill -9 at random moments under concurrent writes; after each restart nothing acknowledged
is lost, nothing unacknowledged is half-visible, and interrupted chunked uploads resume.

Role: the crash guarantee of the design ("no partial blob or manifest is ever visible;
uploads resume or fail cleanly") checked from outside, against a real process.

Each round:
  1. worker threads write continuously: chunked uploads (POST, PATCHes of random sizes with
     Content-Range, PUT ?digest=), monolithic uploads (POST, PUT ?digest= with the body),
     and image pushes (config + layers, then the manifest under a unique tag and under a
     per-worker "latest" tag that keeps moving); one more worker parks two uploads (one
     empty, one after a few PATCHes) so every kill finds uploads at a chunk boundary;
  2. after a random delay the node gets SIGKILL; workers see their connections drop;
  3. the node restarts on the same data directory and the ledger is checked:
     - every blob whose upload got its 201 is served whole and correct (HEAD and GET);
     - every manifest PUT that got its 201 is served byte-identical by tag and by digest;
     - every write that was in flight at the kill (no answer) is either absent (404) or
       complete and correct: never partial, never wrong;
     - a moving tag resolves to its last acknowledged digest or to the one in flight;
     - every chunked upload interrupted mid-way answers GET on its upload URL with 204 and
       Range 0-(N-1), where N is the acknowledged offset, or the acknowledged offset plus the
       PATCH that was in flight (the node may have committed it without the client hearing);
       the rest is then PATCHed from N and the closing PUT must give 201 and a correct blob;
       one whose closing PUT was in flight is either complete or resumable at its full size.
After the last round everything acknowledged in any round is checked once more.

Reproducibility: PT_CRASH_SEED (default 20240601) seeds the kill delays and every worker's
choices (sizes, chunking); PT_CRASH_ROUNDS (default 5) sets the number of kills. Thread
scheduling still varies, so the seed fixes the workload, not the exact interleaving.

The reference registry loses the ability to resume an upload whose PATCH was cut mid-body
(it appends the partial body and then finds the offset in its signed state wrong); those
resume checks are portolan-only (strict) and recorded as waived against it.
"""

import hashlib
import http.client
import os
import random
import re
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness  # noqa: E402

IO_TIMEOUT = 60
KILL_DELAY = (0.3, 2.5)
WORKERS = (("chunked", 3), ("monolithic", 2), ("image", 2), ("parked", 1))
RANGE_RE = re.compile(r"^(?:bytes=)?0-(-?\d+)$")


def note(results, msg):
    """Progress and counts, shown with the runner's -v only."""
    if results.verbose:
        print(msg, flush=True)


def blob_data(seed, size):
    return random.Random(seed).randbytes(size)


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def loc_path(location):
    p = urllib.parse.urlsplit(location)
    return p.path + ("?" + p.query if p.query else "")


class Unexpected(Exception):
    """A live node answered with a status the protocol does not allow here."""


class Session:
    """A chunked upload as the client knows it."""

    def __init__(self, repo, seed, size, digest, location):
        self.repo = repo
        self.seed = seed
        self.size = size
        self.digest = digest
        self.location = location  # last Location received (absolute path + query)
        self.acked = 0  # bytes the node acknowledged (202 on PATCH)
        self.inflight = 0  # length of a PATCH sent without an answer
        self.final_inflight = False  # closing PUT sent without an answer
        self.done = False  # closed (201 seen) or settled after a restart


class Ledger:
    """What the clients sent and what the node acknowledged. Guarded by ``lock``."""

    def __init__(self):
        self.lock = threading.Lock()
        self.blobs_acked = {}  # digest -> (repo, seed, size)
        self.blobs_maybe = {}  # digest -> (repo, seed, size): sent, never answered
        self.manifests_acked = {}  # (repo, ref) -> (digest, bytes, media type)
        self.manifests_maybe = {}  # (repo, ref) -> (digest, bytes, media type)
        self.moving = {}  # (repo, tag) -> {"acked": digest|None, "maybe": set(digest)}
        self.sessions = []
        self.errors = []
        self.counts = {}

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n


class Worker(threading.Thread):
    """Writes until its connection fails (the kill) or ``stop`` is set."""

    def __init__(self, kind, name, port, ledger, rng, stop):
        super().__init__(daemon=True, name=name)
        self.kind = kind
        self.port = port
        self.ledger = ledger
        self.rng = rng
        self.stop = stop
        self.conn = None
        self.n = 0

    # -- HTTP on one keep-alive connection ---------------------------------------------------

    def req(self, method, path, headers=None, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=IO_TIMEOUT)
        hdrs = dict(headers or {})
        if body is None and method in ("POST", "PUT", "PATCH"):
            hdrs.setdefault("Content-Length", "0")
        self.conn.request(method, path, body=body, headers=hdrs)
        r = self.conn.getresponse()
        data = r.read()
        out = (r.status, harness.Headers(r.getheaders()), data)
        if r.will_close:
            self.conn.close()
            self.conn = None
        return out

    def expect(self, what, got, want, body=b""):
        if got != want:
            raise Unexpected("%s: status %d, want %d: %r" % (what, got, want, body[:200]))

    def run(self):
        try:
            while not self.stop.is_set():
                getattr(self, "do_" + self.kind)()
                self.n += 1
        except (OSError, http.client.HTTPException):
            pass  # the node went away
        except Unexpected as e:
            with self.ledger.lock:
                self.ledger.errors.append("%s: %s" % (self.name, e))
        finally:
            if self.conn is not None:
                self.conn.close()

    # -- workloads -------------------------------------------------------------------------

    def fresh(self, lo, hi, part=0):
        seed = "%s/%d/%d" % (self.name, self.n, part)
        size = self.rng.randint(lo, hi)
        data = blob_data(seed, size)
        return seed, size, data, digest_of(data)

    def post_upload(self, repo):
        st, hd, body = self.req("POST", "/v2/%s/blobs/uploads/" % repo)
        self.expect("POST upload", st, 202, body)
        loc = hd.get("Location")
        if not loc:
            raise Unexpected("POST upload: no Location")
        return loc_path(loc)

    def put_blob(self, repo, seed, size, data, digest):
        """Monolithic upload, recorded in the ledger."""
        loc = self.post_upload(repo)
        with self.ledger.lock:
            self.ledger.blobs_maybe[digest] = (repo, seed, size)
        st, _, body = self.req("PUT", harness.with_query(loc, digest=digest),
                               {"Content-Type": "application/octet-stream",
                                "Content-Length": str(size)}, data)
        self.expect("monolithic PUT", st, 201, body)
        with self.ledger.lock:
            self.ledger.blobs_maybe.pop(digest, None)
            self.ledger.blobs_acked[digest] = (repo, seed, size)

    def do_monolithic(self):
        seed, size, data, digest = self.fresh(1, 4 << 20)
        self.put_blob("crash/mono", seed, size, data, digest)
        self.ledger.count("monolithic uploads acknowledged")

    def do_chunked(self):
        repo = "crash/chunked"
        seed, size, data, digest = self.fresh(256 << 10, 10 << 20)
        s = Session(repo, seed, size, digest, self.post_upload(repo))
        with self.ledger.lock:
            self.ledger.sessions.append(s)
            self.ledger.blobs_maybe[digest] = (repo, seed, size)
        while s.acked < size:
            n = min(size - s.acked, self.rng.randint(64 << 10, 2 << 20))
            with self.ledger.lock:
                s.inflight = n
            st, hd, body = self.req(
                "PATCH", s.location,
                {"Content-Type": "application/octet-stream", "Content-Length": str(n),
                 "Content-Range": "%d-%d" % (s.acked, s.acked + n - 1)},
                data[s.acked:s.acked + n])
            self.expect("PATCH", st, 202, body)
            if hd.get("Range") != "0-%d" % (s.acked + n - 1):
                raise Unexpected("PATCH: Range %r after %d bytes" % (hd.get("Range"),
                                                                     s.acked + n))
            with self.ledger.lock:
                s.acked += n
                s.inflight = 0
                if hd.get("Location"):
                    s.location = loc_path(hd.get("Location"))
        with self.ledger.lock:
            s.final_inflight = True
        st, _, body = self.req("PUT", harness.with_query(s.location, digest=digest))
        self.expect("closing PUT", st, 201, body)
        with self.ledger.lock:
            s.final_inflight = False
            s.done = True
            self.ledger.blobs_maybe.pop(digest, None)
            self.ledger.blobs_acked[digest] = (repo, seed, size)
        self.ledger.count("chunked uploads acknowledged")

    def do_parked(self):
        """Leave two sessions open at a known offset for the kill to find: one empty (POST
        only) and one after a few whole PATCHes; then wait for the kill."""
        repo = "crash/parked"
        for chunks in (0, self.rng.randint(1, 4)):
            seed, size, data, digest = self.fresh(4 << 20, 6 << 20, part=chunks)
            s = Session(repo, seed, size, digest, self.post_upload(repo))
            with self.ledger.lock:
                self.ledger.sessions.append(s)
                self.ledger.blobs_maybe[digest] = (repo, seed, size)
            for _ in range(chunks):
                n = 512 << 10
                with self.ledger.lock:
                    s.inflight = n
                st, hd, body = self.req(
                    "PATCH", s.location,
                    {"Content-Type": "application/octet-stream", "Content-Length": str(n),
                     "Content-Range": "%d-%d" % (s.acked, s.acked + n - 1)},
                    data[s.acked:s.acked + n])
                self.expect("PATCH", st, 202, body)
                with self.ledger.lock:
                    s.acked += n
                    s.inflight = 0
                    if hd.get("Location"):
                        s.location = loc_path(hd.get("Location"))
        self.stop.wait()

    def do_image(self):
        repo = "crash/img"
        descs = []
        for i in range(1 + self.rng.randint(1, 2)):
            seed, size, data, digest = self.fresh(512, 64 << 10, part=i)
            self.put_blob(repo, seed, size, data, digest)
            descs.append({"mediaType": harness.OCI_LAYER if i else harness.OCI_CONFIG,
                          "digest": digest, "size": size})
        manifest = {"schemaVersion": 2, "mediaType": harness.OCI_MANIFEST,
                    "config": descs[0], "layers": descs[1:],
                    "annotations": {"org.example.push": "%s/%d" % (self.name, self.n)}}
        raw = harness.canonical_json(manifest)
        mdigest = digest_of(raw)
        for tag in ("p-%s-%d" % (self.name, self.n), "latest-%s" % self.name):
            key = (repo, tag)
            moving = tag.startswith("latest-")
            with self.ledger.lock:
                if moving:
                    self.ledger.moving.setdefault(key, {"acked": None, "maybe": set()})
                    self.ledger.moving[key]["maybe"].add(mdigest)
                else:
                    self.ledger.manifests_maybe[key] = (mdigest, raw, harness.OCI_MANIFEST)
            st, hd, body = self.req("PUT", "/v2/%s/manifests/%s" % key,
                                    {"Content-Type": harness.OCI_MANIFEST}, raw)
            self.expect("manifest PUT", st, 201, body)
            with self.ledger.lock:
                if moving:
                    m = self.ledger.moving[key]
                    m["acked"] = mdigest
                    m["maybe"] = set()
                else:
                    del self.ledger.manifests_maybe[key]
                    self.ledger.manifests_acked[key] = (mdigest, raw, harness.OCI_MANIFEST)
        self.ledger.count("images acknowledged")


class Verifier:
    """Checks the ledger against a restarted node (main thread only)."""

    def __init__(self, results, node, ledger, context):
        self.results = results
        self.node = node
        self.ledger = ledger
        self.context = context  # appended to failure messages: how to reproduce
        self.client = harness.Client(node.url, timeout=IO_TIMEOUT)

    def check(self, cond, msg, strict=False):
        return self.results.check(cond, "%s [%s]" % (msg, self.context), strict=strict)

    def close(self):
        self.client.close()

    def blob_state(self, repo, digest, seed, size):
        """'absent', 'ok', or a description of what is wrong."""
        r = self.client.get("/v2/%s/blobs/%s" % (repo, digest))
        if r.status == 404:
            return "absent"
        if r.status != 200:
            return "GET status %d" % r.status
        if r.body != blob_data(seed, size):
            return "GET returned %d bytes that do not match (want %d)" % (len(r.body), size)
        h = self.client.head("/v2/%s/blobs/%s" % (repo, digest))
        if h.status != 200 or h.headers.get("Content-Length") != str(size):
            return "HEAD %d Content-Length %r" % (h.status, h.headers.get("Content-Length"))
        return "ok"

    def acked_blobs(self):
        bad = []
        for digest, (repo, seed, size) in sorted(self.ledger.blobs_acked.items()):
            st = self.blob_state(repo, digest, seed, size)
            if st != "ok":
                bad.append("%s %s: %s" % (repo, digest[:19], st))
        self.check(not bad, "acknowledged blobs damaged or lost (%d of %d): %s"
                   % (len(bad), len(self.ledger.blobs_acked), bad[:5]))

    def unacked_blobs(self):
        bad, present = [], 0
        for digest, (repo, seed, size) in sorted(self.ledger.blobs_maybe.items()):
            st = self.blob_state(repo, digest, seed, size)
            if st == "ok":
                present += 1
            elif st != "absent":
                bad.append("%s %s: %s" % (repo, digest[:19], st))
        self.check(not bad, "unacknowledged blobs visible in part: %s" % bad[:5])
        self.ledger.count("unacknowledged blobs found complete", present)

    def manifest_state(self, repo, ref, digest, raw, media_type):
        r = self.client.get_manifest(repo, ref)
        if r.status == 404:
            return "absent"
        if r.status != 200:
            return "GET status %d" % r.status
        if r.body != raw:
            return "bytes differ (%d vs %d)" % (len(r.body), len(raw))
        if r.headers.get("Docker-Content-Digest") != digest:
            return "Docker-Content-Digest %r" % r.headers.get("Docker-Content-Digest")
        return "ok"

    def manifests(self):
        bad = []
        for (repo, tag), (digest, raw, mt) in sorted(self.ledger.manifests_acked.items()):
            for ref in (tag, digest):
                st = self.manifest_state(repo, ref, digest, raw, mt)
                if st != "ok":
                    bad.append("%s:%s %s" % (repo, ref[:24], st))
        self.check(not bad, "acknowledged manifests damaged or lost (%d of %d): %s"
                   % (len(bad), len(self.ledger.manifests_acked), bad[:5]))
        bad = []
        for (repo, tag), (digest, raw, mt) in sorted(self.ledger.manifests_maybe.items()):
            for ref in (tag, digest):
                st = self.manifest_state(repo, ref, digest, raw, mt)
                if st not in ("ok", "absent"):
                    bad.append("%s:%s %s" % (repo, ref[:24], st))
        self.check(not bad, "unacknowledged manifests visible in part: %s" % bad[:5])
        bad = []
        for (repo, tag), m in sorted(self.ledger.moving.items()):
            r = self.client.get_manifest(repo, tag, method="HEAD")
            got = r.headers.get("Docker-Content-Digest") if r.status == 200 else None
            allowed = set(m["maybe"]) | {m["acked"]}
            if r.status not in (200, 404) or got not in allowed:
                bad.append("%s:%s -> %d %r, want one of %r"
                           % (repo, tag, r.status, got, sorted(d for d in allowed if d)))
            elif got != m["acked"]:
                m["acked"] = got  # the in-flight write had been committed
            m["maybe"] = set()
        self.check(not bad, "moving tags resolve to a digest never written: %s" % bad[:5])

    def upload_offset(self, s):
        """(status, offset or None, headers) of GET on the session's upload URL."""
        r = self.client.get(s.location)
        if r.status != 204:
            return r.status, None, r
        m = RANGE_RE.match(r.headers.get("Range") or "")
        if not m:
            return r.status, None, r
        end = int(m.group(1))
        return r.status, end + 1, r

    def resume(self, s, offset):
        """PATCH the rest of the session's blob from ``offset`` and close it."""
        data = blob_data(s.seed, s.size)
        loc = s.location
        while offset < s.size:
            n = min(s.size - offset, 1 << 20)
            r = self.client.request(
                "PATCH", loc,
                {"Content-Type": "application/octet-stream", "Content-Length": str(n),
                 "Content-Range": "%d-%d" % (offset, offset + n - 1)},
                data[offset:offset + n])
            if r.status != 202:
                return "resume PATCH at %d: %s" % (offset, r.describe())
            loc = loc_path(r.headers.get("Location") or loc)
            offset += n
        r = self.client.request("PUT", harness.with_query(loc, digest=s.digest),
                                {"Content-Length": "0"})
        if r.status != 201:
            return "resume closing PUT: %s" % r.describe()
        st = self.blob_state(s.repo, s.digest, s.seed, s.size)
        return None if st == "ok" else "resumed blob: %s" % st

    def sessions(self):
        open_sessions = [s for s in self.ledger.sessions if not s.done]
        bad, waived = [], []
        for s in open_sessions:
            s.done = True
            status, offset, r = self.upload_offset(s)
            if s.final_inflight:
                st = self.blob_state(s.repo, s.digest, s.seed, s.size)
                if st == "ok":
                    self.ledger.count("uploads completed by the PUT in flight at the kill")
                    self._acked(s)
                    continue
                allowed = {s.size}
            else:
                allowed = {s.acked}
                if s.inflight:
                    allowed.add(s.acked + s.inflight)
            # "0-0" is how some registries write the range of an empty upload.
            zero_ok = offset == 1 and 0 in allowed and 1 not in allowed
            if status != 204 or (offset not in allowed and not zero_ok):
                msg = ("upload %s (acked %d, in flight %d, final %s): GET -> %s"
                       % (s.location.split("?")[0][-36:], s.acked, s.inflight, s.final_inflight,
                          r.describe() + " Range %r" % r.headers.get("Range")))
                (waived if s.inflight else bad).append(msg)
                continue
            if zero_ok:
                offset = 0
            self.ledger.count("interrupted uploads with a PATCH in flight" if s.inflight
                              else "interrupted uploads at a chunk boundary")
            if s.inflight and offset == s.acked + s.inflight:
                self.ledger.count("in-flight PATCHes found committed")
            err = self.resume(s, offset)
            if err:
                (waived if s.inflight else bad).append(err)
            else:
                self.ledger.count("interrupted uploads resumed")
                self._acked(s)
        self.check(not bad, "interrupted uploads not resumable: %s" % bad[:5])
        self.check(not waived, "uploads cut mid-PATCH not resumable: %s" % waived[:5],
                   strict=True)

    def _acked(self, s):
        self.ledger.blobs_maybe.pop(s.digest, None)
        self.ledger.blobs_acked[s.digest] = (s.repo, s.seed, s.size)


def run_round(node, ledger, rng, rnd):
    stop = threading.Event()
    workers = []
    for kind, n in WORKERS:
        for i in range(n):
            name = "r%d-%s%d" % (rnd, kind[0], i)
            wrng = random.Random("%s/%s" % (rng.random(), name))
            workers.append(Worker(kind, name, node.port, ledger, wrng, stop))
    delay = rng.uniform(*KILL_DELAY)
    for w in workers:
        w.start()
    time.sleep(delay)
    node.kill9()
    stop.set()
    for w in workers:
        w.join(IO_TIMEOUT + 10)
    return delay, [w.name for w in workers if w.is_alive()]


def main(results):
    seed = int(os.environ.get("PT_CRASH_SEED", "20240601"))
    rounds = int(os.environ.get("PT_CRASH_ROUNDS", "5"))
    rng = random.Random(seed)
    ledger = Ledger()
    note(results, "  crash: seed %d, %d rounds, target %s" % (seed, rounds, results.target))
    node = harness.registry_for(results.target)
    with node:
        for rnd in range(rounds):
            if not node.running():
                node.start()
            delay, stuck = run_round(node, ledger, rng, rnd)
            note(results, "  round %d: killed after %.2fs" % (rnd, delay))
            results.check(not stuck, "round %d: workers still running after the kill: %s"
                          " [PT_CRASH_SEED=%d]" % (rnd, stuck, seed))
            node.start()
            v = Verifier(results, node, ledger, "PT_CRASH_SEED=%d, round %d" % (seed, rnd))
            try:
                results.run("round%d_errors_while_live" % rnd, lambda: v.check(
                    not ledger.errors, "unexpected answers from the live node: %s"
                    % ledger.errors[:5]))
                ledger.errors.clear()
                results.run("round%d_acked_blobs" % rnd, v.acked_blobs)
                results.run("round%d_unacked_blobs" % rnd, v.unacked_blobs)
                results.run("round%d_manifests" % rnd, v.manifests)
                results.run("round%d_upload_resume" % rnd, v.sessions)
            finally:
                v.close()
        node.restart()
        v = Verifier(results, node, ledger, "PT_CRASH_SEED=%d, after a clean restart" % seed)
        try:
            results.run("final_acked_blobs", v.acked_blobs)
            results.run("final_manifests", v.manifests)
        finally:
            v.close()
    c = ledger.counts
    note(results, "  crash: %s" % ", ".join("%s %d" % kv for kv in sorted(c.items())))
    results.run("exercised", lambda: results.check(
        c.get("interrupted uploads at a chunk boundary", 0)
        + c.get("interrupted uploads with a PATCH in flight", 0) > 0
        and c.get("images acknowledged", 0) > 0,
        "the kills hit no interrupted upload or no image was pushed: %r" % c))
