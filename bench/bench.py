#!/usr/bin/env python3
"""Portolan against the reference registry, same machine, same workloads, one table.

Role: the driver behind bench/run.sh. It starts a portolan node and CNCF Distribution 2.8
(Debian's docker-registry) on separate loopback ports, each with its data in a temporary
directory (tests/lib/harness.py starts and stops both), runs every workload against one and
then the other, and prints both figures, their ratio (portolan / reference) and the target.

Workloads (sizes as in bench/README.md):
  manifest GET by tag   wrk, 2 threads, 64 connections, --latency: requests/s and p99
  blob GET              256 MiB blob, curl -o /dev/null, best of N runs: MB/s
  monolithic upload     256 MiB, POST then one streamed PUT ?digest= (curl -T): MB/s
  chunked upload        256 MiB in 8 MiB PATCHes on one keep-alive connection: MB/s
  skopeo push / pull    an 8 x 16 MiB image (new content every run), oci: -> registry and
                        registry -> dir:: seconds
  tag writes            wrk + bench/tagput.lua, 64 connections, a new tag per request:
                        writes/s
Every upload carries content the registry has not seen, so no workload is served by
deduplication; every HTTP answer is checked and errors are reported next to the figure.

Design: figures are taken one workload at a time, portolan first then the reference, so
both see the same machine state; nothing runs concurrently with a measurement except the
other (idle) registry. MB is 10^6 bytes. Limits: PT_BENCH_DURATION (seconds per wrk run,
default 10) and PT_BENCH_RUNS (runs per transfer workload, default 3) bound the run time.
"""

import argparse
import hashlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))

import harness  # noqa: E402
import images  # noqa: E402

MIB = 1 << 20
MB = 1e6
BLOB_SIZE = 256 * MIB
CHUNK_SIZE = 8 * MIB
IMAGE_LAYERS = 8
IMAGE_LAYER_SIZE = 16 * MIB
CONNECTIONS = 64
WRK_THREADS = 2
ACCEPT = images.OCI_MANIFEST

# Targets for portolan on a 2-core machine shared with the load generator, as the single-node
# issue states them. Each is (kind, value):
#   "ratio_min":  portolan / reference must be at least value (throughputs)
#   "ratio_max":  portolan / reference must be at most value (times: 1.0 = faster than it)
#   "max":        portolan's figure itself must be at most value
#   None:         measured and reported, no target
TARGETS = {
    "manifest_get_rps": ("ratio_min", 20.0),
    "manifest_get_p99_ms": ("max", 10.0),
    "blob_get_mbs": ("ratio_min", 1.0),
    "mono_upload_mbs": ("ratio_min", 4.0),
    "chunked_upload_mbs": ("ratio_min", 8.0),
    "skopeo_push_s": ("ratio_max", 1.0),
    "skopeo_pull_s": ("ratio_max", 1.0),
    "tag_writes_per_s": (None, None),
}

ROWS = [
    ("manifest_get_rps", "manifest GET by tag (req/s, 64 conns)", "%.0f"),
    ("manifest_get_p99_ms", "manifest GET by tag p99 (ms)", "%.2f"),
    ("blob_get_mbs", "blob GET 256 MiB (MB/s)", "%.0f"),
    ("mono_upload_mbs", "monolithic upload 256 MiB (MB/s)", "%.0f"),
    ("chunked_upload_mbs", "chunked upload 256 MiB / 8 MiB (MB/s)", "%.0f"),
    ("skopeo_push_s", "skopeo push 8 x 16 MiB (s)", "%.2f"),
    ("skopeo_pull_s", "skopeo pull 8 x 16 MiB (s)", "%.2f"),
    ("tag_writes_per_s", "tag writes (writes/s, 64 conns)", "%.0f"),
]


class BenchError(Exception):
    """A workload could not be measured (an error answer, a tool failure)."""


def log(msg):
    sys.stderr.write("[bench] %s\n" % msg)
    sys.stderr.flush()


def run_tool(cmd, timeout=300):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise BenchError("%s failed (%d): %s" % (cmd[0], p.returncode, p.stderr.strip()[-500:]))
    return p.stdout


def loc_path(location):
    p = urllib.parse.urlsplit(location)
    return p.path + ("?" + p.query if p.query else "")


class Registry:
    """One registry under test: its process, an HTTP connection helper, its figures."""

    def __init__(self, name, proc):
        self.name = name
        self.proc = proc
        self.figures = {}
        self.errors = {}
        self.phases = {}

    @property
    def url(self):
        return self.proc.url

    @property
    def host(self):
        return "127.0.0.1:%d" % self.proc.port

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.proc.port, timeout=600,
                                          blocksize=MIB)


def exchange(conn, method, path, headers=None, body=None):
    hdrs = dict(headers or {})
    if body is None and method in ("POST", "PUT", "PATCH"):
        hdrs.setdefault("Content-Length", "0")
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    return r.status, r, data


def start_upload(conn, repo):
    st, r, data = exchange(conn, "POST", "/v2/%s/blobs/uploads/" % repo)
    if st != 202 or not r.getheader("Location"):
        raise BenchError("POST upload: %d %r" % (st, data[:200]))
    return loc_path(r.getheader("Location"))


def file_pieces(path, start, length, piece=MIB):
    with open(path, "rb") as f:
        f.seek(start)
        left = length
        while left > 0:
            b = f.read(min(piece, left))
            if not b:
                raise BenchError("%s shorter than expected" % path)
            left -= len(b)
            yield b


def upload_file(reg, repo, path, size, digest):
    """Untimed monolithic upload used for seeding."""
    c = reg.conn()
    try:
        loc = start_upload(c, repo)
        st, _, data = exchange(c, "PUT", harness.with_query(loc, digest=digest),
                               {"Content-Type": "application/octet-stream",
                                "Content-Length": str(size)}, file_pieces(path, 0, size))
        if st != 201:
            raise BenchError("seed upload: %d %r" % (st, data[:200]))
    finally:
        c.close()


def push_bytes(reg, repo, data):
    c = reg.conn()
    try:
        loc = start_upload(c, repo)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        st, _, body = exchange(c, "PUT", harness.with_query(loc, digest=digest),
                               {"Content-Type": "application/octet-stream"}, data)
        if st != 201:
            raise BenchError("push blob: %d %r" % (st, body[:200]))
        return digest
    finally:
        c.close()


def put_manifest(reg, repo, ref, raw, media_type):
    c = reg.conn()
    try:
        st, _, body = exchange(c, "PUT", "/v2/%s/manifests/%s" % (repo, ref),
                               {"Content-Type": media_type}, raw)
        if st != 201:
            raise BenchError("PUT manifest %s:%s: %d %r" % (repo, ref, st, body[:200]))
    finally:
        c.close()


def push_small_image(reg, repo, tag, seed):
    img = images.make_image(seed, layers=2, layer_size=4096)
    for b in img.blobs():
        push_bytes(reg, repo, b.data)
    put_manifest(reg, repo, tag, img.manifest, img.media_type)
    return img


class BlobFile:
    """A file of BLOB_SIZE pseudo-random bytes; stamp() makes its content new for each use."""

    def __init__(self, path, size):
        self.path = path
        self.size = size
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, 16 * MIB)
                f.write(os.urandom(n))
                left -= n
        self.digest = self._hash()

    def stamp(self, label):
        with open(self.path, "r+b") as f:
            f.write(hashlib.sha256(label.encode()).digest())
        self.digest = self._hash()
        return self.digest

    def _hash(self):
        return images.file_digest(self.path)


# -- workloads --------------------------------------------------------------------------------


def parse_duration_ms(text):
    m = re.match(r"^([\d.]+)(us|ms|s|m)$", text.strip())
    if not m:
        raise BenchError("cannot parse wrk latency %r" % text)
    v, unit = float(m.group(1)), m.group(2)
    return v * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse_wrk(out):
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise BenchError("no Requests/sec in wrk output: %s" % out[-300:])
    res = {"rps": float(rps.group(1))}
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if p99:
        res["p99_ms"] = parse_duration_ms(p99.group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non2xx"] = int(bad.group(1)) if bad else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in sock.groups()) if sock else 0
    total = re.search(r"(\d+) requests in", out)
    res["requests"] = int(total.group(1)) if total else 0
    return res


def bench_manifest_get(reg, args):
    push_small_image(reg, "bench/app", "latest", "bench-app")
    out = run_tool(["wrk", "-t%d" % WRK_THREADS, "-c%d" % CONNECTIONS, "-d%ds" % args.duration,
                    "--latency", "-H", "Accept: " + ACCEPT,
                    reg.url + "/v2/bench/app/manifests/latest"], timeout=args.duration + 60)
    res = parse_wrk(out)
    reg.figures["manifest_get_rps"] = res["rps"]
    reg.figures["manifest_get_p99_ms"] = res.get("p99_ms")
    if res["non2xx"] or res["socket_errors"]:
        reg.errors["manifest_get_rps"] = "%d non-2xx, %d socket errors of %d" % (
            res["non2xx"], res["socket_errors"], res["requests"])


def bench_blob_get(reg, args, blob):
    digest = blob.stamp("get/" + reg.name)
    upload_file(reg, "bench/blob", blob.path, blob.size, digest)
    url = "%s/v2/bench/blob/blobs/%s" % (reg.url, digest)
    rates = []
    for _ in range(args.runs):
        out = run_tool(["curl", "-sS", "-o", "/dev/null", "-w",
                        "%{http_code} %{size_download} %{time_total}", url])
        code, size, secs = out.split()
        if code != "200" or int(size) != blob.size:
            raise BenchError("blob GET: status %s, %s bytes" % (code, size))
        rates.append(blob.size / float(secs) / MB)
    reg.figures["blob_get_mbs"] = max(rates)


def bench_mono_upload(reg, args, blob):
    rates = []
    for i in range(args.runs):
        digest = blob.stamp("mono/%s/%d" % (reg.name, i))
        c = reg.conn()
        try:
            loc = start_upload(c, "bench/mono")
        finally:
            c.close()
        url = reg.url + harness.with_query(loc, digest=digest)
        out = run_tool(["curl", "-sS", "-o", "/dev/null", "-T", blob.path, "-H", "Expect:",
                        "-H", "Content-Type: application/octet-stream", "-w",
                        "%{http_code} %{size_upload} %{time_total}", url])
        code, size, secs = out.split()
        if code != "201" or int(float(size)) != blob.size:
            raise BenchError("monolithic PUT: status %s, %s bytes sent" % (code, size))
        rates.append(blob.size / float(secs) / MB)
    reg.figures["mono_upload_mbs"] = max(rates)


def bench_chunked_upload(reg, args, blob):
    rates = []
    for i in range(args.runs):
        digest = blob.stamp("chunked/%s/%d" % (reg.name, i))
        c = reg.conn()
        try:
            t0 = time.monotonic()
            loc = start_upload(c, "bench/chunked")
            off = 0
            while off < blob.size:
                n = min(CHUNK_SIZE, blob.size - off)
                st, r, data = exchange(
                    c, "PATCH", loc,
                    {"Content-Type": "application/octet-stream", "Content-Length": str(n),
                     "Content-Range": "%d-%d" % (off, off + n - 1)},
                    file_pieces(blob.path, off, n))
                if st != 202:
                    raise BenchError("PATCH at %d: %d %r" % (off, st, data[:200]))
                loc = loc_path(r.getheader("Location") or loc)
                off += n
            st, _, data = exchange(c, "PUT", harness.with_query(loc, digest=digest))
            secs = time.monotonic() - t0
            if st != 201:
                raise BenchError("closing PUT: %d %r" % (st, data[:200]))
        finally:
            c.close()
        rates.append(blob.size / secs / MB)
    reg.figures["chunked_upload_mbs"] = max(rates)


def bench_skopeo(reg, args, work):
    sk = images.Skopeo(os.path.join(work, "skopeo-" + reg.name))
    pushes, pulls = [], []
    for i in range(args.skopeo_runs):
        img = images.make_image("bench/%s/%d" % (reg.name, i), layers=IMAGE_LAYERS,
                                layer_size=IMAGE_LAYER_SIZE, files_per_layer=1, gzip_level=0)
        src = os.path.join(work, "layout-%s-%d" % (reg.name, i))
        images.write_oci_layout(src, {"img": img})
        sk.prepare_readable(src)
        ref = "docker://%s/bench/skopeo%d:v1" % (reg.host, i)
        t0 = time.monotonic()
        sk.copy("oci:%s:img" % src, ref)
        pushes.append(time.monotonic() - t0)
        out = sk.output_dir("pull-%d" % i)
        t0 = time.monotonic()
        sk.copy(ref, "dir:" + out)
        pulls.append(time.monotonic() - t0)
        got = images.read_dir_layout(out)
        if got["manifest"] != img.manifest:
            raise BenchError("skopeo pull returned a different manifest")
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    reg.figures["skopeo_push_s"] = min(pushes)
    reg.figures["skopeo_pull_s"] = min(pulls)


def bench_tag_writes(reg, args, work):
    img = push_small_image(reg, "bench/tags", "base", "bench-tags")
    mfile = os.path.join(work, "tag-manifest-%s.json" % reg.name)
    with open(mfile, "wb") as f:
        f.write(img.manifest)
    out = run_tool(["wrk", "-t%d" % WRK_THREADS, "-c%d" % CONNECTIONS, "-d%ds" % args.duration,
                    "-s", os.path.join(HERE, "tagput.lua"), reg.url, "--", "bench/tags", mfile,
                    img.media_type], timeout=args.duration + 60)
    res = parse_wrk(out)
    reg.figures["tag_writes_per_s"] = res["rps"]
    if res["non2xx"] or res["socket_errors"]:
        reg.errors["tag_writes_per_s"] = "%d non-2xx, %d socket errors of %d" % (
            res["non2xx"], res["socket_errors"], res["requests"])
    # Spot check: early tags of each wrk thread resolve to the manifest (wrk skips the
    # first tag of each thread: it builds one request before the run starts).
    c = reg.conn()
    try:
        for t in range(WRK_THREADS):
            digests = []
            for n in range(1, 6):
                st, r, _ = exchange(c, "HEAD", "/v2/bench/tags/manifests/w%d-%d" % (t, n),
                                    {"Accept": ACCEPT})
                digests.append(r.getheader("Docker-Content-Digest") if st == 200 else None)
            if img.digest not in digests or any(d not in (None, img.digest) for d in digests):
                reg.errors["tag_writes_per_s"] = "tags w%d-1..5 resolve to %r" % (t, digests)
    finally:
        c.close()


# -- report -----------------------------------------------------------------------------------


def fmt(v, pattern):
    return "-" if v is None else pattern % v


def target_text(key):
    kind, value = TARGETS[key]
    if kind == "ratio_min":
        return ">= %gx ref" % value
    if kind == "ratio_max":
        return "< ref" if value == 1.0 else "<= %gx ref" % value
    if kind == "max":
        return "<= %g" % value
    return "-"


def met(key, v, ref):
    kind, value = TARGETS[key]
    if v is None or kind is None:
        return ""
    if kind == "max":
        return "yes" if v <= value else "NO"
    if not ref:
        return "?"
    ratio = v / ref
    if kind == "ratio_min":
        return "yes" if ratio >= value else "NO"
    return "yes" if (ratio < value if value == 1.0 else ratio <= value) else "NO"


def report(regs):
    p = regs.get("portolan")
    r = regs.get("reference")
    head = ("workload", "portolan", "reference", "ratio", "better", "target", "met")
    lines = []
    for key, label, pattern in ROWS:
        pv = p.figures.get(key) if p else None
        rv = r.figures.get(key) if r else None
        ratio = "%.2fx" % (pv / rv) if pv is not None and rv else "-"
        better = "lower" if key.endswith(("_s", "_ms")) and "_per_" not in key else "higher"
        lines.append((label, fmt(pv, pattern), fmt(rv, pattern), ratio, better,
                      target_text(key), met(key, pv, rv)))
    widths = [max(len(x[i]) for x in lines + [head]) for i in range(len(head))]

    def row(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    print(row(head))
    print("  ".join("-" * w for w in widths))
    for x in lines:
        print(row(x))
    print("ratio = portolan / reference; 'better' says which direction is better; "
          "targets apply to portolan.")
    for reg in regs.values():
        for key, msg in reg.errors.items():
            print("error: %s %s: %s" % (reg.name, key, msg))


WORKLOAD_KEYS = ("manifest", "blobget", "mono", "chunked", "skopeo", "tags")
# Uploads a workload's phase sums are divided by: one PUT per run, one POST..PUT per run,
# one push (its pull adds nothing to the upload phases) per skopeo run.
UPLOADS_PER_RUN = {
    "mono": lambda args: args.runs,
    "chunked": lambda args: args.runs,
    "skopeo": lambda args: args.skopeo_runs,
}
PHASE_ORDER = ("receive", "copy", "write", "hash", "fsync", "record", "commit", "response",
               "total")
PHASE_RE = re.compile(r'^portolan_upload_phase_seconds_(sum|count)\{phase="([a-z]+)"\} (\S+)$',
                      re.M)


def scrape_phases(reg):
    """{phase: (seconds summed, count)} from portolan's /metrics."""
    c = reg.conn()
    try:
        st, _, body = exchange(c, "GET", "/metrics")
    finally:
        c.close()
    if st != 200:
        raise BenchError("GET /metrics: %d" % st)
    out = {}
    for kind, phase, val in PHASE_RE.findall(body.decode()):
        s, n = out.get(phase, (0.0, 0))
        out[phase] = (float(val), n) if kind == "sum" else (s, int(float(val)))
    return out


def report_phases(regs):
    p = regs.get("portolan")
    if p is None or not any(p.phases.values()):
        return
    print()
    print("portolan upload phases (portolan_upload_phase_seconds, seconds per upload; a whole")
    print("chunked upload or skopeo push sums all its requests, which skopeo sends several at")
    print("a time, so its phases may add up to more than its total):")
    for title, ph in p.phases.items():
        if not ph:
            continue
        cells = ["%s %.3f" % (k, ph[k]) for k in PHASE_ORDER if k in ph]
        print("  %-18s %s" % (title, "  ".join(cells)))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=("portolan", "reference"),
                    help="measure one registry only")
    ap.add_argument("--duration", type=int, default=int(os.environ.get("PT_BENCH_DURATION", 10)))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("PT_BENCH_RUNS", 3)))
    ap.add_argument("--skopeo-runs", type=int,
                    default=int(os.environ.get("PT_BENCH_SKOPEO_RUNS", 2)))
    ap.add_argument("--workloads", default=os.environ.get("PT_BENCH_WORKLOADS", ""),
                    help="comma-separated subset of: " + ",".join(WORKLOAD_KEYS))
    ap.add_argument("--portolan-arg", action="append", default=[],
                    help="extra argument for portolan serve (repeatable)")
    args = ap.parse_args(argv)
    if not (1 <= args.duration <= 120 and 1 <= args.runs <= 20 and 1 <= args.skopeo_runs <= 10):
        ap.error("duration must be 1..120 s, runs 1..20, skopeo runs 1..10")

    work = tempfile.mkdtemp(prefix="pt-bench-", dir=os.environ.get("PT_BENCH_DATA"))
    regs = {}
    started = time.monotonic()
    try:
        names = [args.only] if args.only else ["portolan", "reference"]
        for name in names:
            data_dir = os.path.join(work, name, "data")
            if name == "portolan":
                proc = harness.Node(data_dir=data_dir, args=args.portolan_arg)
            else:
                # With the blob descriptor cache that Debian's default config enables.
                proc = harness.ReferenceRegistry(
                    data_dir=data_dir, env={"REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR": "inmemory"})
            proc.start()
            regs[name] = Registry(name, proc)
            log("%s on %s (data in %s)" % (name, proc.url, data_dir))
        blob = BlobFile(os.path.join(work, "blob.bin"), BLOB_SIZE)
        workloads = [
            ("manifest", "manifest GET by tag", lambda reg: bench_manifest_get(reg, args)),
            ("blobget", "blob GET", lambda reg: bench_blob_get(reg, args, blob)),
            ("mono", "monolithic upload", lambda reg: bench_mono_upload(reg, args, blob)),
            ("chunked", "chunked upload", lambda reg: bench_chunked_upload(reg, args, blob)),
            ("skopeo", "skopeo push/pull", lambda reg: bench_skopeo(reg, args, work)),
            ("tags", "tag writes", lambda reg: bench_tag_writes(reg, args, work)),
        ]
        chosen = [w for w in args.workloads.split(",") if w]
        for key, title, fn in workloads:
            if chosen and key not in chosen:
                continue
            for reg in regs.values():
                # The reference writes without fsync: what it wrote is still being written back
                # when the next registry's workload starts, and that writeback would be timed
                # as the next one's. Each workload starts with nothing dirty in the page cache.
                os.sync()
                before = scrape_phases(reg) if reg.name == "portolan" else None
                t0 = time.monotonic()
                try:
                    fn(reg)
                except (BenchError, OSError, RuntimeError, http.client.HTTPException,
                        subprocess.SubprocessError) as e:
                    reg.errors[title] = str(e)
                log("%s / %s: %.1fs" % (title, reg.name, time.monotonic() - t0))
                if before is not None and key in UPLOADS_PER_RUN:
                    after = scrape_phases(reg)
                    n = UPLOADS_PER_RUN[key](args)
                    reg.phases[title] = {
                        ph: (after[ph][0] - before.get(ph, (0, 0))[0]) / n
                        for ph in after if after[ph][1] > before.get(ph, (0, 0))[1]}
    finally:
        for reg in regs.values():
            reg.proc.stop()
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)
    print("Portolan bench: %d cores, %s, total %.0fs"
          % (os.cpu_count() or 0, time.strftime("%Y-%m-%d %H:%M"), time.monotonic() - started))
    if "portolan" in regs:
        print("portolan binary: %s" % regs["portolan"].proc.binary)
    report(regs)
    report_phases(regs)
    return 1 if any(reg.errors for reg in regs.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
