"""A 4 GiB blob through a live node, with the node's anonymous memory watched throughout.

Role: show that blob upload and download are streamed, never buffered in the node's heap:
  1. monolithic upload: POST, then one PUT ?digest= carrying the whole blob;
  2. chunked upload of a second blob: POST, PATCHes of 64 MiB with Content-Range (each
     answer's Range and Location are checked and followed), then PUT ?digest= without body;
  3. for both blobs: HEAD (size, digest), a full GET hashed as it streams, and Range GETs
     of the last 1 MiB and of an unaligned slice in the middle (206, Content-Range, bytes);
  4. meanwhile a thread reads the node's RssAnon every 100 ms; its maximum over the whole
     run must stay under 128 MiB.

Data: a pseudo-random stream that is a pure function of (seed, offset), produced on the fly
in 1 MiB blocks (a seeded random base block, rotated per block and stamped with the block
number, so any misplaced, repeated or lost block changes the digest). Nothing is ever held
whole in memory or written to disk by the test; the digest is computed while generating.

Size: PT_BIGBLOB_SIZE (bytes, or with a K/M/G suffix; default 4G) so the test can run small
while debugging. The test is skipped when the temporary directory has less free space than
the node may need (two blobs, plus their upload files and request-body spill files).
"""

import hashlib
import http.client
import os
import random
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness  # noqa: E402

BLOCK = 1 << 20
CHUNK = 64 << 20
RSS_LIMIT_KIB = 128 << 10
SAMPLE_INTERVAL = 0.1
IO_TIMEOUT = 900
TIMEOUT = 1200  # the run.py budget for this module: 4 GiB twice up and twice down
REPO = "big/blob"


def note(results, msg):
    """Progress and figures, shown with the runner's -v only."""
    if results.verbose:
        print(msg, flush=True)


def parse_size(text):
    """'4G', '512M', '100K' or a plain byte count -> int."""
    text = text.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if text and text[-1] in mult:
        return int(float(text[:-1]) * mult[text[-1]])
    return int(text)


class BlobSource:
    """Deterministic pseudo-random content of ``size`` bytes; see module comment."""

    STAMP = 16

    def __init__(self, seed, size):
        self.seed = seed
        self.size = size
        base = random.Random(seed).randbytes(BLOCK)
        self._base2 = memoryview(base + base)  # a rotation is one zero-copy slice of this
        self._digest = None

    def _parts(self, i):
        """Block ``i`` as (stamp bytes, body memoryview): BLOCK bytes together."""
        rot = (i * 7919 * 64 + 13) % BLOCK
        stamp = struct.pack(">QQ", i, self.size)
        return stamp, self._base2[rot:rot + BLOCK - self.STAMP]

    def pieces(self, start=0, end=None):
        """Yield the bytes of [start, end) as bytes-like pieces (memoryviews, mostly)."""
        end = self.size if end is None else end
        off = start
        while off < end:
            i, within = divmod(off, BLOCK)
            stamp, body = self._parts(i)
            n = min(BLOCK - within, end - off)
            lo, hi = within, within + n
            if lo < self.STAMP:
                yield stamp[lo:min(hi, self.STAMP)]
            if hi > self.STAMP:
                yield body[max(lo, self.STAMP) - self.STAMP:hi - self.STAMP]
            off += n

    def read(self, start, length):
        return b"".join(self.pieces(start, start + length))

    def digest(self):
        if self._digest is None:
            h = hashlib.sha256()
            for p in self.pieces():
                h.update(p)
            self._digest = "sha256:" + h.hexdigest()
        return self._digest


class HashingPieces:
    """Iterates the pieces of [start, end) of a source and hashes them on the way out."""

    def __init__(self, source, start, end, hasher):
        self.it = source.pieces(start, end)
        self.hasher = hasher

    def __iter__(self):
        for p in self.it:
            self.hasher.update(p)
            yield p


class RssSampler(threading.Thread):
    """Reads node.rss_anon_kib() every SAMPLE_INTERVAL seconds until stopped."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node = node
        self.max_kib = 0
        self.samples = 0
        self.errors = 0
        self.phase_max = {}
        self.phase = "start"
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            try:
                kib = self.node.rss_anon_kib()
                self.samples += 1
                self.max_kib = max(self.max_kib, kib)
                self.phase_max[self.phase] = max(self.phase_max.get(self.phase, 0), kib)
            except (OSError, RuntimeError, AttributeError, ValueError):
                self.errors += 1
            self._halt.wait(SAMPLE_INTERVAL)

    def stop(self):
        self._halt.set()
        self.join()


class Streamer:
    """Requests on fresh connections with streamed bodies and streamed, hashed responses."""

    def __init__(self, node, client):
        self.node = node
        self.client = client
        self.port = node.port

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=IO_TIMEOUT,
                                          blocksize=BLOCK)

    def send(self, method, path, headers, body):
        """Send a request (body: bytes, iterable or None); returns (status, headers, body)."""
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            return r.status, harness.Headers(r.getheaders()), data
        finally:
            c.close()

    def get_hashed(self, path, headers=None):
        """GET streaming the body through sha256: (status, headers, length, digest)."""
        c = self.conn()
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            h = hashlib.sha256()
            n = 0
            while True:
                piece = r.read(BLOCK)
                if not piece:
                    break
                h.update(piece)
                n += len(piece)
            return r.status, harness.Headers(r.getheaders()), n, "sha256:" + h.hexdigest()
        finally:
            c.close()

    def start_upload(self, results):
        st, hd, body = self.send("POST", "/v2/%s/blobs/uploads/" % REPO, {"Content-Length": "0"},
                                 None)
        results.require(st == 202, "POST upload: %d %r" % (st, body[:200]))
        loc = hd.get("Location")
        results.require(bool(loc), "POST upload: no Location")
        return self.client.location_path(loc)


def upload_monolithic(results, s, src):
    loc = s.start_upload(results)
    t0 = time.monotonic()
    hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(src.size)}
    st, hd, body = s.send("PUT", harness.with_query(loc, digest=src.digest()), hdrs,
                          src.pieces())
    dt = time.monotonic() - t0
    results.require(st == 201, "monolithic PUT: %d %r" % (st, body[:300]))
    results.eq(hd.get("Docker-Content-Digest"), src.digest(), "monolithic Docker-Content-Digest")
    results.check(bool(hd.get("Location")), "monolithic PUT: no Location")
    note(results, "  monolithic upload %.1f MiB in %.1fs (%.0f MiB/s)"
         % (src.size / 2**20, dt, src.size / 2**20 / max(dt, 1e-9)))


def upload_chunked(results, s, src):
    loc = s.start_upload(results)
    h = hashlib.sha256()
    t0 = time.monotonic()
    off = 0
    while off < src.size:
        n = min(CHUNK, src.size - off)
        hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(n),
                "Content-Range": "%d-%d" % (off, off + n - 1)}
        st, hd, body = s.send("PATCH", loc, hdrs, HashingPieces(src, off, off + n, h))
        results.require(st == 202, "PATCH at %d: %d %r" % (off, st, body[:300]))
        results.require(hd.get("Range") == "0-%d" % (off + n - 1),
                        "PATCH at %d: Range %r, want 0-%d" % (off, hd.get("Range"), off + n - 1))
        nloc = hd.get("Location")
        results.require(bool(nloc), "PATCH at %d: no Location" % off)
        loc = s.client.location_path(nloc)
        off += n
    digest = "sha256:" + h.hexdigest()
    results.require(digest == src.digest(), "generator is not deterministic")
    st, hd, body = s.send("PUT", harness.with_query(loc, digest=digest),
                          {"Content-Length": "0"}, None)
    dt = time.monotonic() - t0
    results.require(st == 201, "chunked closing PUT: %d %r" % (st, body[:300]))
    results.eq(hd.get("Docker-Content-Digest"), digest, "chunked Docker-Content-Digest")
    note(results, "  chunked upload %.1f MiB in %.1fs (%.0f MiB/s)"
         % (src.size / 2**20, dt, src.size / 2**20 / max(dt, 1e-9)))


def check_read(results, s, src, label):
    path = "/v2/%s/blobs/%s" % (REPO, src.digest())
    st, hd, _ = s.send("HEAD", path, {}, None)
    results.check(st == 200, "%s HEAD: %d" % (label, st))
    results.eq(hd.get("Content-Length"), str(src.size), "%s HEAD Content-Length" % label)
    results.eq(hd.get("Docker-Content-Digest"), src.digest(),
               "%s HEAD Docker-Content-Digest" % label)
    t0 = time.monotonic()
    st, hd, n, digest = s.get_hashed(path)
    dt = time.monotonic() - t0
    results.check(st == 200, "%s GET: %d" % (label, st))
    results.eq(n, src.size, "%s GET length" % label)
    results.eq(digest, src.digest(), "%s GET content digest" % label)
    note(results, "  %s GET %.1f MiB in %.1fs (%.0f MiB/s)"
         % (label, n / 2**20, dt, n / 2**20 / max(dt, 1e-9)))
    last = min(BLOCK, src.size)
    mid_len = min(3 * BLOCK + 7, src.size // 3)
    slices = [
        ("last 1 MiB", src.size - last, src.size - 1),
        ("middle slice", src.size // 2 - 12345 if src.size > 30000 else 0, None),
    ]
    for what, start, end in slices:
        if end is None:
            end = start + max(mid_len, 1) - 1
        c = s.conn()
        try:
            c.request("GET", path, headers={"Range": "bytes=%d-%d" % (start, end)})
            r = c.getresponse()
            body = r.read()
            status, cr = r.status, r.getheader("Content-Range")
        finally:
            c.close()
        results.check(status == 206, "%s Range %s: status %d" % (label, what, status))
        results.eq(cr, "bytes %d-%d/%d" % (start, end, src.size),
                   "%s Range %s Content-Range" % (label, what))
        results.check(body == src.read(start, end - start + 1),
                      "%s Range %s: wrong bytes (%d received)" % (label, what, len(body)))


def main(results):
    size = parse_size(os.environ.get("PT_BIGBLOB_SIZE", "4G"))
    if size < 1:
        raise ValueError("PT_BIGBLOB_SIZE must be positive")
    node = harness.registry_for(results.target)
    st = os.statvfs(node.root)
    free = st.f_bavail * st.f_frsize
    need = 6 * size + (1 << 30)
    if free < need:
        node.cleanup()
        results.run("bigblob", lambda: results.skip(
            "needs %.1f GiB free in %s, has %.1f GiB" % (need / 2**30, node.root, free / 2**30)))
        return
    note(results, "  bigblob: %d bytes (%.2f GiB) against %s"
         % (size, size / 2**30, results.target))
    mono = BlobSource("bigblob-monolithic", size)
    chunked = BlobSource("bigblob-chunked", size)
    t0 = time.monotonic()
    mono.digest()
    note(results, "  generated and hashed %.1f MiB in %.1fs"
         % (size / 2**20, time.monotonic() - t0))
    with node:
        client = harness.Client(node.url, timeout=IO_TIMEOUT)
        s = Streamer(node, client)
        sampler = RssSampler(node)
        sampler.start()
        try:
            sampler.phase = "monolithic upload"
            results.run("monolithic_upload", upload_monolithic, results, s, mono)
            sampler.phase = "chunked upload"
            results.run("chunked_upload", upload_chunked, results, s, chunked)
            sampler.phase = "reads"
            results.run("read_monolithic", check_read, results, s, mono, "monolithic")
            results.run("read_chunked", check_read, results, s, chunked, "chunked")
        finally:
            sampler.stop()
            client.close()
        note(results, "  RssAnon max %d KiB over %d samples; per phase: %s"
             % (sampler.max_kib, sampler.samples,
                ", ".join("%s %d KiB" % kv for kv in sampler.phase_max.items())))

        def memory():
            results.check(sampler.samples > 0, "no RssAnon sample could be read")
            results.check(sampler.max_kib < RSS_LIMIT_KIB,
                          "RssAnon peaked at %d KiB (limit %d KiB); per phase %r"
                          % (sampler.max_kib, RSS_LIMIT_KIB, sampler.phase_max))
        results.run("memory_bounded", memory)
