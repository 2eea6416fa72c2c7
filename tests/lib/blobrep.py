"""blobrep.py - shared code of the blob replication tests (test_blob_replication.py and
test_blob_faults.py under tests/integration/): content made on the fly, pushing images and
streamed uploads, and looking at regions from outside: their blob stores on disk,
/admin/replication (counters, in sync), the per-image status, /metrics, the CLI, a watcher of
blob paths and plain blob GETs.

Role: both modules run three real `portolan serve` processes through tests/lib/cluster.py
(every region-to-region connection through the WAN emulator) and check what blob replication
promises; the helpers here only observe and push, the checks stay in the modules. The
constants below are the ones these helpers use and the limits both modules share.
"""

import hashlib
import http.client
import json
import os
import random
import re
import struct
import subprocess
import threading
import time

import harness as h
import images

MIB = 1 << 20
DELAY_MS = 20  # one-way delay of every region pair
IO_TIMEOUT = 120  # seconds one HTTP exchange may take
REPLICATE_LIMIT = 60.0  # a small image is everywhere within this (unthrottled links)
SETTLE_LIMIT = 10.0  # blob on disk -> blob_locations / in_sync say so within this
WIRE_BOUND = 1.2  # bytes into a region for a blob <= this x its size
METRICS_LAG = 3.0  # /metrics follows /admin/replication within this

COUNTERS = ("bytes_received_total", "bytes_sent_total", "blobs_fetched_total",
            "verify_failures_total", "resumed_total")
ERRORS = (OSError, http.client.HTTPException)


def note(results, msg):
    """Figures and progress, shown with the runner's -v only."""
    if results.verbose:
        print("  " + msg, flush=True)


def ms(seconds):
    return "%.0f ms" % (seconds * 1000.0)


def mb(n):
    return "%.1f MB" % (n / 1e6)


wait_for = h.wait_for  # pred() until truthy or timeout; its last value


# -- content --------------------------------------------------------------------------------


class Pattern:
    """Deterministic content of `size` bytes made on the fly in 1 MiB blocks: a random base
    block, rotated per block and stamped with the block number and the seed, so a lost,
    repeated or misplaced block changes the digest. Never held whole in memory."""

    BLOCK = MIB
    STAMP = 16

    def __init__(self, seed, size):
        self.size = size
        self.seed = seed
        base = random.Random(seed).randbytes(self.BLOCK)
        self._base2 = memoryview(base + base)
        self._digest = None

    def pieces(self, start=0, end=None):
        end = self.size if end is None else end
        off = start
        while off < end:
            i, within = divmod(off, self.BLOCK)
            rot = (i * 7919 * 64 + 13) % self.BLOCK
            block_stamp = struct.pack(">QQ", i, self.seed & 0xFFFFFFFFFFFFFFFF)
            n = min(self.BLOCK - within, end - off)
            lo, hi = within, within + n
            if lo < self.STAMP:
                yield block_stamp[lo:min(hi, self.STAMP)]
            if hi > self.STAMP:
                body = self._base2[rot:rot + self.BLOCK - self.STAMP]
                yield body[max(lo, self.STAMP) - self.STAMP:hi - self.STAMP]
            off += n

    def read(self, start, length):
        return b"".join(bytes(p) for p in self.pieces(start, start + length))

    def digest(self):
        if self._digest is None:
            hs = hashlib.sha256()
            for p in self.pieces():
                hs.update(p)
            self._digest = "sha256:" + hs.hexdigest()
        return self._digest


def new_seed():
    return int.from_bytes(os.urandom(8), "big")


def make_image(layers, layer_size):
    """An OCI image (tests/lib/images.py) with random, stored (gzip level 0) layers."""
    return images.make_image(new_seed(), layers=layers, layer_size=layer_size,
                             files_per_layer=1, gzip_level=0)


def image_blobs(img):
    """[(digest, size)] of an images.Image: config and layers."""
    return [(b.digest, b.size) for b in img.blobs()]


# -- pushing --------------------------------------------------------------------------------


def push_blob(region, repo, data):
    with region.client(timeout=IO_TIMEOUT) as cl:
        return cl.push_blob(repo, data)


def push_image(region, repo, tag, img, blobs=True):
    """Pushes img's blobs (unless blobs is false) and its manifest under tag to region;
    raises AssertionError unless every answer is a 201. Returns the seconds it took."""
    t0 = time.monotonic()
    with region.client(timeout=IO_TIMEOUT) as cl:
        if blobs:
            for b in img.blobs():
                cl.push_blob(repo, b.data)
        r = cl.put_manifest(repo, tag, img.manifest, img.media_type)
    if r.status != 201:
        raise AssertionError("PUT manifest %s:%s at %s: %s" % (repo, tag, region.name,
                                                                r.describe()))
    return time.monotonic() - t0


def upload_stream(region, repo, src):
    """Uploads a Pattern to region: POST, then one PUT ?digest= streaming it. Returns the
    seconds the PUT took; raises AssertionError on any unexpected answer."""
    digest = src.digest()
    with region.client(timeout=IO_TIMEOUT) as cl:
        r = cl.request("POST", "/v2/%s/blobs/uploads/" % repo, {"Content-Length": "0"})
        if r.status != 202 or not r.headers.get("Location"):
            raise AssertionError("POST upload at %s: %s" % (region.name, r.describe()))
        loc = cl.location_path(r.headers.get("Location"))
        hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(src.size)}
        t0 = time.monotonic()
        r = cl.request("PUT", h.with_query(loc, digest=digest), hdrs, src.pieces())
        secs = time.monotonic() - t0
    if r.status != 201:
        raise AssertionError("PUT %s (%s) at %s: %s" % (digest, mb(src.size), region.name,
                                                         r.describe()))
    return secs


# -- looking at regions ---------------------------------------------------------------------


def size_on_disk(region, digest):
    """Size of the blob's file in region's store, None when absent."""
    try:
        return os.stat(region.blob_path(digest)).st_size
    except FileNotFoundError:
        return None


def wait_on_disk(regions, blobs, timeout):
    """Waits until every region's store has a file of the right size for every (digest,
    size) of blobs; returns {region name: [digests still absent or of another size]}."""
    def missing():
        out = {}
        for r in regions:
            gone = [d for d, n in blobs if size_on_disk(r, d) != n]
            if gone:
                out[r.name] = gone
        return out
    deadline = time.monotonic() + timeout
    while True:
        m = missing()
        if not m or time.monotonic() >= deadline:
            return m
        time.sleep(0.05)


def wrong_on_disk(regions, blobs):
    """["region: digest holds sha256:..."] for every file whose content is not its digest."""
    bad = []
    for r in regions:
        for d, _n in blobs:
            got = r.blob_file_digest(d)
            if got != d:
                bad.append("%s: %s holds %s" % (r.name, d[:19], got and got[:19]))
    return bad


def store_files(region):
    """{digest: path} of every file under region's blobs/sha256/<2 hex>/."""
    root = os.path.join(region.data_dir, "blobs", "sha256")
    out = {}
    for sub in sorted(os.listdir(root)) if os.path.isdir(root) else ():
        d = os.path.join(root, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            out["sha256:" + name] = os.path.join(d, name)
    return out


def wan_into(c, dst):
    """Bytes the emulator delivered to region dst from every other region so far."""
    return sum(c.wan.link(src.name, dst.name).bytes_forwarded["a2b"]
               for src in c.regions if src is not dst)


def counters(region):
    """The counters of region's /admin/replication, or None."""
    st = region.replication()
    if st is None:
        return None
    return {k: st.get(k) for k in COUNTERS}


def grew(after, before, key):
    """after[key] - before[key], None when either is missing or not a number."""
    try:
        return after[key] - before[key]
    except (TypeError, KeyError):
        return None


def short(st, keys=("in_sync", "blobs_behind", "bytes_behind", "active", "verify_failures_total",
                    "resumed_total", "bytes_received_total")):
    """A compact rendering of a /admin/replication answer for failure messages."""
    if st is None:
        return "no answer"
    doc = {k: st.get(k) for k in keys if k in st and k != "active"}
    text = json.dumps(doc, sort_keys=True)
    if "active" in keys and isinstance(st.get("active"), list):
        text += " active %s" % ["%s %s/%s from %s %s" % (
            str(x.get("digest"))[7:19], x.get("offset"), x.get("size"), x.get("from"),
            x.get("state", "")) for x in st["active"][:6]]
    return text[:600]


def evidence(c, regions=None):
    """Replication status and the last error lines of regions (default all), for messages."""
    parts = []
    for r in regions or c.regions:
        parts.append("%s /admin/replication %s" % (r.name, short(r.replication())))
        for line in r.log_grep('"level":"error"', limit=2):
            parts.append("%s log: %s" % (r.name, line[:300]))
    for r in c.dead():
        parts.append("%s died: %s" % (r.name, r.node.death_note()))
    return " | ".join(parts)


def check_alive(t, c):
    for r in c.dead():
        t.check(False, "%s died: %s" % (r.name, r.node.death_note()))
    for r in c.regions:
        if r.node is not None:
            reports = r.node.sanitizer_reports()
            t.check(not reports, "%s sanitizer reports: %s" % (r.name, " | ".join(reports)))


def wait_in_sync(regions, timeout):
    """Waits until every region's /admin/replication says in_sync; returns {name: answer}
    of those that still do not."""
    def behind():
        out = {}
        for r in regions:
            st = r.replication()
            if st is None or st.get("in_sync") is not True:
                out[r.name] = st
        return out
    deadline = time.monotonic() + timeout
    while True:
        b = behind()
        if not b or time.monotonic() >= deadline:
            return b
        time.sleep(0.1)


def check_in_sync(t, c, regions, what):
    """Every region in sync (waited for) with nothing behind, nothing active."""
    left = wait_in_sync(regions, SETTLE_LIMIT)
    t.check(not left, "%s: /admin/replication not in_sync within %.0f s: %s" % (
        what, SETTLE_LIMIT, "; ".join("%s %s" % (n, short(st)) for n, st in left.items())))
    for r in regions:
        st = r.replication() or {}
        if st.get("in_sync") is not True:
            continue
        t.check(st.get("region") == r.name, "%s /admin/replication region %r" % (
            r.name, st.get("region")))
        t.check(st.get("blobs_behind") == 0 and st.get("bytes_behind") == 0
                and st.get("oldest_missing_age_s") == 0 and st.get("active") == [],
                "%s: in_sync but %s" % (r.name, short(st, ("blobs_behind", "bytes_behind",
                                                           "oldest_missing_age_s", "active"))))


def image_status(region, repo, ref):
    return region.image_replication(repo, ref, timeout=10.0)


def wait_image_complete(regions, repo, ref, names, timeout):
    """Waits until the per-image status asked in every region of regions lists exactly
    names (sorted) as complete; returns {region name: last answer} of the others."""
    def pending():
        out = {}
        for r in regions:
            st = image_status(r, repo, ref)
            if st is None or sorted(st.get("complete") or []) != names \
                    or st.get("missing") != {}:
                out[r.name] = st
        return out
    deadline = time.monotonic() + timeout
    while True:
        p = pending()
        if not p or time.monotonic() >= deadline:
            return p
        time.sleep(0.1)


def status_text(st):
    if st is None:
        return "no answer"
    return json.dumps({k: st.get(k) for k in ("complete", "missing")}, sort_keys=True)[:400]


def check_image_doc(t, st, repo, ref, img, names, where):
    """The fields of a per-image answer that do not depend on progress."""
    t.eq(st.get("name"), repo, where + ": name")
    t.eq(st.get("reference"), ref, where + ": reference")
    t.eq(st.get("digest"), img.digest, where + ": digest")
    t.eq(st.get("regions"), names, where + ": regions")
    listed = st.get("blobs")
    if not t.check(isinstance(listed, list), where + ": blobs is %r" % (listed,)):
        return
    t.eq(sorted((b.get("digest"), b.get("size")) for b in listed),
         sorted(image_blobs(img)), where + ": blobs (digest, size)")


def check_missing_consistent(t, st, names, where):
    """missing[region] counts exactly the blobs whose regions lack it, and their bytes;
    complete lists exactly the regions lacking none. Returns {region: (blobs, bytes)}."""
    listed = st.get("blobs") or []
    want = {}
    for n in names:
        lack = [b for b in listed if n not in (b.get("regions") or [])]
        if lack:
            want[n] = {"blobs": len(lack), "bytes": sum(b.get("size") or 0 for b in lack)}
    t.eq(st.get("missing"), want, where + ": missing (from the blobs it lists)")
    t.eq(sorted(st.get("complete") or []), [n for n in names if n not in want],
         where + ": complete (from the blobs it lists)")
    return want


def metrics(region):
    """{series name: value summed over its label sets} of region's /metrics, None when it does
    not answer 200."""
    try:
        with region.client(timeout=10) as cl:
            r = cl.get("/metrics")
    except ERRORS:
        return None
    if r.status != 200:
        return None
    out = {}
    pat = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)")
    for line in r.body.decode("utf-8", "replace").splitlines():
        m = pat.match(line)
        if not m:
            continue
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        out[m.group(1)] = out.get(m.group(1), 0.0) + v
    return out


def cli(c, *args, timeout=60):
    """(exit status, stdout, stderr) of `portolan ARGS` with the cluster's binary, as the
    cluster's administrator."""
    try:
        p = subprocess.run([c.binary] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, env=c.cli_env())
    except subprocess.TimeoutExpired:
        return None, "", "no exit within %d s" % timeout
    return p.returncode, p.stdout, p.stderr


class DiskWatch(threading.Thread):
    """Watches the paths where regions will keep blobs, every 20 ms, while running: a file
    there must always have the blob's size, and with verify set, every new file (a new inode)
    is hashed as soon as it is seen. problems lists what broke that; appeared maps (region
    name, digest) to the monotonic time the file was first seen."""

    def __init__(self, entries, verify=False, interval=0.02):
        super().__init__(daemon=True)
        self.entries = list(entries)  # (Region, digest, size)
        self.verify = verify
        self.interval = interval
        self.problems = []
        self.appeared = {}
        self._inode = {}
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.scan()
            self._halt.wait(self.interval)

    def scan(self):
        for r, digest, size in self.entries:
            key = (r.name, digest)
            try:
                st = os.stat(r.blob_path(digest))
            except FileNotFoundError:
                continue
            self.appeared.setdefault(key, time.monotonic())
            if st.st_size != size:
                self.problems.append("%s: %s under blobs/ with %d bytes of %d" % (
                    r.name, digest[:19], st.st_size, size))
            if self.verify and self._inode.get(key) != st.st_ino:
                self._inode[key] = st.st_ino
                got = r.blob_file_digest(digest)
                if got is not None and got != digest:
                    self.problems.append("%s: %s under blobs/ holds %s" % (
                        r.name, digest[:19], got[:19]))

    def stop(self):
        self._halt.set()
        self.join(30)
        self.scan()


def get_blob(region, repo, digest, headers=None, timeout=IO_TIMEOUT):
    """GET a blob at region (a cluster.Region) on a fresh connection, with the cluster's
    credentials: (status, headers, body, seconds to the first body byte or None, total
    seconds)."""
    conn = http.client.HTTPConnection("127.0.0.1", region.port, timeout=timeout)
    try:
        hdrs = region.auth_headers()
        hdrs.update(headers or {})
        t0 = time.monotonic()
        conn.request("GET", "/v2/%s/blobs/%s" % (repo, digest), headers=hdrs)
        resp = conn.getresponse()
        parts, first = [], None
        while True:
            piece = resp.read1(1 << 20)
            if not piece:
                break
            if first is None:
                first = time.monotonic() - t0
            parts.append(piece)
        return (resp.status, h.Headers(resp.getheaders()), b"".join(parts), first,
                time.monotonic() - t0)
    finally:
        conn.close()


def wait_head(region, repo, digest, size, timeout=5.0):
    """HEAD of the blob at region until a 200 with its size (it answers from replicated
    metadata); returns the last Response."""
    last = [None]

    def ok():
        with region.client(timeout=10) as cl:
            r = cl.head("/v2/%s/blobs/%s" % (repo, digest))
        last[0] = r
        return r.status == 200 and r.headers.get("Content-Length") == str(size)
    wait_for(ok, timeout)
    return last[0]
