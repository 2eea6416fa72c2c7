#!/usr/bin/env python3
"""Blob replication between three regions behind the WAN emulator: how long a pushed image
takes to be everywhere against the bandwidth-bound minimum, the first byte of a blob a region
does not hold yet, and how fast a new region backfills; printed as one table with targets.

Role: the driver behind bench/blobs.sh. It starts three regions of one cluster on loopback
with a one-way delay and a bandwidth cap on every link between regions (tests/lib/cluster.py
+ tests/lib/wan.py; clients talk to their own region without delay or cap), runs the
workloads below one at a time and prints each figure next to its target.

Workloads (defaults; RTT is 2 x the one-way delay, 100 ms at 50 ms; the cap is per direction
of each pair of regions, 100 MB/s):
  replication time   an image of --layers (8) random layers of --layer-mib (64) MiB and a
                     config, pushed to region-a one blob after the other: time from the start
                     of the push until every blob is in the blob store (the file at
                     <data>/blobs/sha256/<2 hex>/<64 hex>, right size) of both other regions.
                     The bandwidth-bound minimum is what a link at the cap needs given when
                     the blobs came into existence: max over k of (time blob k was
                     acknowledged + bytes of blobs k.. / cap), with blobs in push order; each
                     receiving region has a link of its own from region-a. Target: within
                     1.3 x that minimum.
  first byte         --gets (5) times: a fresh blob of --get-mib (16) MiB pushed to region-a,
                     and at its 201 a GET of it in region-b or region-c (in turn), which does
                     not hold it yet (checked on disk before the GET is sent): time from
                     sending the GET to the first body byte, p50 and max; the whole body is
                     read and its digest checked. Target: under 2 RTT.
  backfill           a fourth region started with --join and added with `portolan cluster
                     add` once everything above (plus --backfill-mib extra MiB, default 0) is
                     stored: time from the add's answer until its blob store holds every blob
                     pushed, and the MB/s that makes. Target: >= 80 % of the cap.

Processes: the cluster and its WAN emulator run in a child process of this one (`--host`,
requests as JSON lines on its stdin; bench/clusterhost.py, which adds this file's join and
wan ops to its own), so the emulator's event loop never waits for this process's GIL while
it uploads and reads. CPU shares of the regions and of the emulator are noted for the
replication run: the emulator is Python and forwards every byte twice (the two receiving
regions), which can bound the figures on a 2-core machine.

Peer TLS: the links between regions run mutual TLS 1.3 (the cluster library's default, with
certificates from `portolan cluster certs`). --peer-tls off runs them in plain TCP; --peer-tls
both runs every workload twice, with and without, and prints the figures side by side (the
targets are judged on the mTLS run).

Limits: every wait has a time limit (--limit-s, default 120 s per workload); an answer that is
not the expected one is reported as an error under the table. Data lives in one temporary
directory (PT_BENCH_DATA chooses where; PT_KEEP_TMP=1 keeps it). Exit status 1 when a
workload could not be measured, 0 otherwise (a missed target does not fail the run).
MB is 10^6 bytes, MiB 2^20.
"""

import argparse
import hashlib
import http.client
import json
import os
import socket
import sys
import threading
import time
import types

import clusterhost  # puts tests/lib on sys.path
import harness  # tests/lib
from clusterhost import BenchError, CpuMeter, Host, percentile, port_of

clusterlib = clusterhost.clusterlib

MIB = 1 << 20
REGIONS = 3  # started at once; a fourth joins for the backfill
HTTP_TIMEOUT = 120.0
HOST_TIMEOUT = 180.0  # seconds any command of the cluster process may take
POLL_S = 0.01

ROWS = [
    ("repl_s", "image in all regions after push start (s), {image}", "%.2f"),
    ("repl_min_s", "bandwidth-bound minimum (s)", "%.2f"),
    ("repl_ratio", "replication time / minimum", "%.2f"),
    ("raw_mbps", "emulator alone: one TCP stream (MB/s)", "%.1f"),
    ("repl_ratio_raw", "replication time / minimum at that rate", "%.2f"),
    ("ttfb_p50", "first byte of a blob the region lacks, p50 (ms)", "%.0f"),
    ("ttfb_max", "first byte of a blob the region lacks, max (ms)", "%.0f"),
    ("backfill_mbps", "backfill of a new region (MB/s), {backfill}", "%.1f"),
    ("backfill_s", "backfill time after `cluster add` (s)", "%.2f"),
]

log = clusterhost.logger("blob-bench")


def size_on_disk(data_dir, digest):
    """The size of blob digest's file in the blob store under data_dir (the layout of
    tests/lib/cluster.py's Region.blob_path, which reads only data_dir), None when absent."""
    path = clusterlib.Region.blob_path(types.SimpleNamespace(data_dir=data_dir), digest)
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


# -- the cluster process ----------------------------------------------------------------------


def new_cluster(**kwargs):
    # Access control off: these figures are the registry's own (bench/auth.sh measures what
    # access control costs).
    kwargs.setdefault("auth", False)
    return clusterlib.GrowingCluster(REGIONS, REGIONS + 1, **kwargs)


def op_wan(c, cmd):
    """Bytes each link delivered so far, by "from>to" region names."""
    return {"bytes": {"%s>%s" % (x.name, y.name):
                      c.wan.link(x.name, y.name).bytes_forwarded["a2b"]
                      for x in c.regions for y in c.regions if x is not y}}


HOST_OPS = {"wan": op_wan}  # clusterhost.OPS (join among them) and these


# -- HTTP -------------------------------------------------------------------------------------


def get_first_byte(url, repo, digest, want, timeout=HTTP_TIMEOUT):
    """GET a blob on a fresh connection: (status, seconds to the first body byte, seconds in
    all, body digest == want)."""
    conn = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=timeout)
    try:
        t0 = time.monotonic()
        conn.request("GET", "/v2/%s/blobs/%s" % (repo, digest))
        resp = conn.getresponse()
        first = None
        hs = hashlib.sha256()
        while True:
            piece = resp.read1(MIB)
            if not piece:
                break
            if first is None:
                first = time.monotonic() - t0
            hs.update(piece)
        return resp.status, first, time.monotonic() - t0, "sha256:" + hs.hexdigest() == want
    finally:
        conn.close()


# -- workloads --------------------------------------------------------------------------------


class Bench:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.fig = {}
        self.errors = []  # (workload, message)
        self.notes = []
        self.host = None
        self.stored = []  # (digest, size) of every blob pushed: what a new region must fetch
        self.repo = "bench/blobs"

    def note(self, msg):
        self.notes.append(msg)
        log(msg)

    def wait_stored(self, data_dir, blobs, limit):
        """Polls data_dir's store until every (digest, size) is there; returns the monotonic
        time it happened, or None after limit seconds."""
        deadline = time.monotonic() + limit
        pending = list(blobs)
        while True:
            pending = [(d, n) for d, n in pending if size_on_disk(data_dir, d) != n]
            now = time.monotonic()
            if not pending:
                return now
            if now >= deadline:
                return None
            time.sleep(POLL_S)

    def wan_bytes(self):
        return self.host.call("wan")["bytes"]

    def raw_link(self, mib=128):
        """What the emulator itself carries: one plain TCP stream through a Link with the same
        delay and cap, from this process to a local sink (the reference for the bound)."""
        a = self.args
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        got = [0]

        def sink():
            conn, _ = srv.accept()
            with conn:
                while True:
                    piece = conn.recv(MIB)
                    if not piece:
                        return
                    got[0] += len(piece)
        th = threading.Thread(target=sink, daemon=True)
        th.start()
        buf = b"\0" * MIB
        with clusterlib.wanlib.Link(0, "127.0.0.1", srv.getsockname()[1], delay_ms=a.delay_ms,
                                    bandwidth_bps=a.cap_mbps * 1e6) as link:
            t0 = time.monotonic()
            with socket.create_connection(("127.0.0.1", link.port)) as c:
                for _ in range(mib):
                    c.sendall(buf)
                c.shutdown(socket.SHUT_WR)
                th.join(60)
            secs = time.monotonic() - t0
        srv.close()
        self.fig["raw_mbps"] = got[0] / secs / 1e6
        self.note("the emulator alone carried %d MiB in one TCP stream in %.2f s" % (mib, secs))

    def run(self):
        a = self.args
        self.raw_link()
        log("starting %d regions (%.0f ms one way, %.0f MB/s per link)" % (
            REGIONS, a.delay_ms, a.cap_mbps))
        self.host = Host(__file__, self.work, a.delay_ms, a.portolan_arg, HOST_TIMEOUT,
                         bandwidth_bps=a.cap_mbps * 1e6)
        try:
            self.note("leader %s; pushes go to region-a" % self.host.leader)
            for name, fn in (("replication time", self.replication_time),
                             ("first byte", self.first_byte),
                             ("backfill", self.backfill)):
                try:
                    fn()
                except (BenchError, AssertionError, OSError, http.client.HTTPException) as e:
                    self.errors.append((name, str(e)))
                    log("%s: error: %s" % (name, e))
            dead = self.host.call("dead")["dead"]
            if dead:
                self.errors.append(("regions", "died: " + dead))
        finally:
            self.host.close()

    def replication_time(self):
        a = self.args
        cap = a.cap_mbps * 1e6
        src = self.host.region("region-a")
        receivers = [r for r in self.host.regions if r["name"] != "region-a"]
        log("making %d x %d MiB of random layers" % (a.layers, a.layer_mib))
        layers = [os.urandom(a.layer_mib * MIB) for _ in range(a.layers)]
        config = harness.canonical_json({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers",
                       "diff_ids": [harness.sha256_digest(x) for x in layers]}})
        order = layers + [config]
        blobs = [(harness.sha256_digest(x), len(x)) for x in order]
        total = sum(n for _, n in blobs)
        wan0 = self.wan_bytes()
        cpu = CpuMeter(self.host)
        cpu.start()

        done = {}

        def watch(r):
            done[r["name"]] = self.wait_stored(r["data_dir"], blobs, a.limit_s)
        watchers = [threading.Thread(target=watch, args=(r,), daemon=True) for r in receivers]
        acked = []
        cl = harness.Client(src["url"], timeout=HTTP_TIMEOUT)
        try:
            t0 = time.monotonic()
            for w in watchers:
                w.start()
            for x in order:
                cl.push_blob(self.repo, x)
                acked.append(time.monotonic() - t0)
            manifest = {"schemaVersion": 2, "mediaType": harness.OCI_MANIFEST,
                        "config": harness.descriptor(harness.OCI_CONFIG, config),
                        "layers": [harness.descriptor(harness.OCI_LAYER, x) for x in layers]}
            r = cl.put_manifest(self.repo, "big", manifest)
            if r.status != 201:
                raise BenchError("PUT manifest at region-a: %s" % r.describe())
            pushed = time.monotonic() - t0
        finally:
            cl.close()
        for w in watchers:
            w.join(a.limit_s + 5)
        cpu.stop()
        del layers, order
        self.stored += blobs
        late = [n for n in done if done[n] is None]
        if late or len(done) != len(receivers):
            raise BenchError("image not in %s within %.0f s" % (
                late or "every region", a.limit_s))
        per = {n: done[n] - t0 for n in done}
        fig = max(per.values())
        # The bound: blob k exists from acked[k] on, and a link carries cap bytes/s.
        suffix = 0
        bound = 0.0
        for k in range(len(blobs) - 1, -1, -1):
            suffix += blobs[k][1]
            bound = max(bound, acked[k] + suffix / cap)
        self.fig["repl_s"] = fig
        self.fig["repl_min_s"] = bound
        self.fig["repl_ratio"] = fig / bound
        if self.fig.get("raw_mbps"):
            raw = self.fig["raw_mbps"] * 1e6
            suffix, bound_raw = 0, 0.0
            for k in range(len(blobs) - 1, -1, -1):
                suffix += blobs[k][1]
                bound_raw = max(bound_raw, acked[k] + suffix / raw)
            self.fig["repl_ratio_raw"] = fig / bound_raw
        wan1 = self.wan_bytes()
        into = {r["name"]: sum(wan1[k] - wan0.get(k, 0) for k in wan1
                               if k.endswith(">" + r["name"])) for r in receivers}
        self.note("replication: push of %s took %.2f s (first layer acknowledged at %.2f s); "
                  "complete in %s; link bound alone %.2f s; into each region through the "
                  "emulator: %s" % (
                      "%.0f MB" % (total / 1e6), pushed, acked[0],
                      ", ".join("%s %.2f s" % (n, s) for n, s in sorted(per.items())),
                      total / cap, ", ".join("%s %.0f MB" % (n, v / 1e6)
                                             for n, v in sorted(into.items()))))
        self.note("replication CPU: " + cpu.text())

    def first_byte(self):
        a = self.args
        src = self.host.region("region-a")
        targets = [r for r in self.host.regions if r["name"] != "region-a"]
        ttfb = []
        cl = harness.Client(src["url"], timeout=HTTP_TIMEOUT)
        try:
            for i in range(a.gets):
                dst = targets[i % len(targets)]
                data = os.urandom(a.get_mib * MIB)
                digest = harness.sha256_digest(data)
                cl.push_blob(self.repo, data)
                if size_on_disk(dst["data_dir"], digest) is not None:
                    raise BenchError("%s already held the blob at the push's 201" % dst["name"])
                status, first, secs, same = get_first_byte(dst["url"], self.repo, digest,
                                                           digest)
                if status != 200 or first is None or not same:
                    raise BenchError("GET at %s of a blob pushed to region-a: %d, %s" % (
                        dst["name"], status, "same bytes" if same else "other bytes"))
                ttfb.append(first)
                self.stored.append((digest, len(data)))
                log("first byte at %s after %.0f ms, %d MiB in %.2f s" % (
                    dst["name"], first * 1000, a.get_mib, secs))
        finally:
            cl.close()
        self.fig["ttfb_p50"] = percentile(ttfb, 50) * 1000
        self.fig["ttfb_max"] = max(ttfb) * 1000
        self.note("first byte (ms) of %d GETs sent at the push's 201: %s" % (
            len(ttfb), ", ".join("%.0f" % (x * 1000) for x in ttfb)))

    def backfill(self):
        a = self.args
        if a.backfill_mib:
            cl = harness.Client(self.host.region("region-a")["url"], timeout=HTTP_TIMEOUT)
            try:
                left = a.backfill_mib
                while left > 0:
                    n = min(left, 64)
                    data = os.urandom(n * MIB)
                    self.stored.append((cl.push_blob(self.repo, data), len(data)))
                    left -= n
            finally:
                cl.close()
        olds = [r for r in self.host.regions]
        for r in olds:
            if self.wait_stored(r["data_dir"], self.stored, a.limit_s) is None:
                raise BenchError("%s does not hold everything before the backfill" % r["name"])
        total = sum(n for _, n in self.stored)
        lead = self.host.call("leader")["leader"]
        joined = self.host.call("join")
        log("%s started with --join; adding it through the leader %s" % (joined["name"], lead))
        t0 = time.monotonic()
        clusterhost.cluster_add(self.host.region(lead)["url"], joined)
        t_add = time.monotonic()
        new = self.host.region(joined["name"])
        wan0 = self.wan_bytes()
        t_end = self.wait_stored(new["data_dir"], self.stored, a.limit_s + total / 1e6 / 10)
        if t_end is None:
            raise BenchError("%s does not hold every blob %.0f s after it was added" % (
                new["name"], a.limit_s))
        secs = t_end - t_add
        self.fig["backfill_s"] = secs
        self.fig["backfill_mbps"] = total / 1e6 / secs
        wan1 = self.wan_bytes()
        into = {k.split(">")[0]: wan1[k] - wan0.get(k, 0) for k in wan1
                if k.endswith(">" + new["name"])}
        self.note("backfill: %d blobs, %.0f MB, in %.2f s after `cluster add` answered (%.2f s "
                  "for the add); bytes into %s from each region: %s" % (
                      len(self.stored), total / 1e6, secs, t_add - t0, new["name"],
                      ", ".join("%s %.0f MB" % (n, v / 1e6) for n, v in sorted(into.items()))))


def targets(args):
    """{key: (kind, value, text)}: "min"/"max" bound the figure itself."""
    rtt = 2.0 * args.delay_ms
    return {
        "repl_ratio": ("max", 1.3, "<= 1.30"),
        "ttfb_p50": ("max", 2 * rtt, "< %.0f (2 x RTT)" % (2 * rtt)),
        "ttfb_max": ("max", 2 * rtt, "< %.0f (2 x RTT)" % (2 * rtt)),
        "backfill_mbps": ("min", 0.8 * args.cap_mbps, ">= %.0f (80 %% of the cap)"
                          % (0.8 * args.cap_mbps)),
    }


def report_pair(benches, args, started):
    """The figures of the mTLS run and the plain run side by side; targets on the first."""
    tg = targets(args)
    (b_on, b_off) = benches
    print("Portolan blob replication bench, peer mTLS vs plain TCP: %d regions (+1 joining), "
          "%.0f ms one-way delay, %.0f MB/s per link and direction, %d cores, %s, total %.0fs"
          % (REGIONS, args.delay_ms, args.cap_mbps, os.cpu_count() or 0,
             time.strftime("%Y-%m-%d %H:%M"), time.monotonic() - started))
    print("portolan binary: %s" % harness.portolan_bin())
    image = "%d x %d MiB" % (args.layers, args.layer_mib)
    backfill = "%.0f MB" % (sum(n for _, n in b_on.stored) / 1e6)
    head = ("figure", "mTLS", "plain", "target", "met (mTLS)")
    lines = []
    for key, label, pattern in ROWS:
        v, w = b_on.fig.get(key), b_off.fig.get(key)
        kind, value, text = tg.get(key, (None, None, "-"))
        lines.append((label.format(image=image, backfill=backfill),
                      "-" if v is None else pattern % v, "-" if w is None else pattern % w,
                      text, clusterhost.verdict(v, kind, value)))
    clusterhost.print_table(head, lines)
    print("mTLS run:")
    clusterhost.print_notes(b_on.notes, b_on.errors)
    print("plain run:")
    clusterhost.print_notes(b_off.notes, b_off.errors)


def report(b, args, started):
    tg = targets(args)
    print("peer links: %s" % ("mTLS" if os.environ.get("PT_PEER_TLS", "on") != "off"
                              else "plain TCP"))
    print("Portolan blob replication bench: %d regions (+1 joining), %.0f ms one-way delay "
          "(RTT %.0f ms), %.0f MB/s per link and direction, %d cores, %s, total %.0fs"
          % (REGIONS, args.delay_ms, 2 * args.delay_ms, args.cap_mbps, os.cpu_count() or 0,
             time.strftime("%Y-%m-%d %H:%M"), time.monotonic() - started))
    print("portolan binary: %s" % harness.portolan_bin())
    image = "%d x %d MiB" % (args.layers, args.layer_mib)
    backfill = "%.0f MB" % (sum(n for _, n in b.stored) / 1e6)
    head = ("figure", "portolan", "target", "met")
    lines = []
    for key, label, pattern in ROWS:
        v = b.fig.get(key)
        kind, value, text = tg.get(key, (None, None, "-"))
        lines.append((label.format(image=image, backfill=backfill),
                      "-" if v is None else pattern % v, text,
                      clusterhost.verdict(v, kind, value)))
    clusterhost.print_table(head, lines)
    clusterhost.print_notes(b.notes, b.errors)


def main(argv):
    if len(argv) == 2 and argv[0] == "--host":
        clusterhost.host_main(json.loads(argv[1]), new_cluster, HOST_OPS)
        return 0
    env = os.environ.get
    ap = argparse.ArgumentParser(description="Blob replication between three Portolan regions "
                                 "behind the WAN emulator: replication time, first byte of a "
                                 "missing blob, backfill of a new region, with targets.")
    ap.add_argument("--delay-ms", type=float, default=float(env("PT_BLOBBENCH_DELAY_MS", 50)),
                    help="one-way delay between regions (default 50)")
    ap.add_argument("--cap-mbps", type=float, default=float(env("PT_BLOBBENCH_CAP_MBPS", 100)),
                    help="bandwidth cap of each link and direction, MB/s (default 100)")
    ap.add_argument("--layers", type=int, default=int(env("PT_BLOBBENCH_LAYERS", 8)),
                    help="layers of the replicated image (default 8)")
    ap.add_argument("--layer-mib", type=int, default=int(env("PT_BLOBBENCH_LAYER_MIB", 64)),
                    help="MiB per layer (default 64)")
    ap.add_argument("--gets", type=int, default=int(env("PT_BLOBBENCH_GETS", 5)),
                    help="first-byte samples (default 5)")
    ap.add_argument("--get-mib", type=int, default=int(env("PT_BLOBBENCH_GET_MIB", 16)),
                    help="MiB per first-byte blob (default 16)")
    ap.add_argument("--backfill-mib", type=int, default=int(env("PT_BLOBBENCH_BACKFILL_MIB", 0)),
                    help="extra MiB pushed before the backfill (default 0: the image and the "
                    "first-byte blobs)")
    ap.add_argument("--limit-s", type=float, default=float(env("PT_BLOBBENCH_LIMIT_S", 120)),
                    help="time limit of each wait (default 120)")
    ap.add_argument("--portolan-arg", action="append", default=[],
                    help="extra argument for every region's portolan serve (repeatable)")
    ap.add_argument("--peer-tls", choices=("on", "off", "both"),
                    default=env("PT_BLOBBENCH_PEER_TLS", "on"),
                    help="mutual TLS between regions: on (default), off, or both side by side")
    args = ap.parse_args(argv)
    if not (0 <= args.delay_ms <= 1000 and 1 <= args.cap_mbps <= 10000
            and 1 <= args.layers <= 64 and 1 <= args.layer_mib <= 1024
            and 1 <= args.gets <= 100 and 1 <= args.get_mib <= 1024
            and 0 <= args.backfill_mib <= 65536 and 10 <= args.limit_s <= 3600):
        ap.error("delay 0..1000 ms, cap 1..10000 MB/s, layers 1..64, layer 1..1024 MiB, gets "
                 "1..100, get 1..1024 MiB, backfill 0..65536 MiB, limit 10..3600 s")
    if args.peer_tls != "both":
        os.environ["PT_PEER_TLS"] = args.peer_tls  # read by the cluster host process
        return clusterhost.run_bench(Bench, report, args, "pt-bbench-", log)
    benches, rc, started = [], 0, time.monotonic()
    for mode in ("on", "off"):
        os.environ["PT_PEER_TLS"] = mode
        log("run with peer TLS %s" % mode)
        rc |= clusterhost.run_bench(Bench, lambda b, a, s: benches.append(b), args, "pt-bbench-",
                                    log)
    report_pair(benches, args, started)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
