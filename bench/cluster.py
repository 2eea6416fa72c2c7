#!/usr/bin/env python3
"""Three regions of one Portolan cluster behind the WAN emulator: tag writes, write latency,
replication lag, follower tag reads and leader failover, printed as one table with targets.

Role: the driver behind bench/cluster.sh. It starts three regions on loopback with a one-way
delay between every pair of regions (tests/lib/cluster.py + tests/lib/wan.py; clients talk to
their own region without delay), runs the workloads below one at a time, and prints each
figure next to its target. The tag-write workload also runs against Debian's docker-registry
(CNCF Distribution 2.8, one node, the same wrk workload as bench/bench.py) for the
side-by-side figure.

Workloads (defaults; RTT is 2 x the one-way delay, 100 ms at 50 ms):
  reference tag writes   bench.py's tag-write workload on docker-registry: wrk -t2 -c64
                         + bench/tagput.lua, a new tag per request
  --- first cluster, default flags (linearizable tag reads) ---
  tag writes             64 connections spread over the regions (one wrk -t1 per region,
                         22/21/21 connections); each region's connections PUT one small
                         manifest under new tags of their own repository (blobs pushed once
                         beforehand): writes/s, and p50/p99 latency over all regions (the
                         regions' latency percentiles merged by request count)
  write capacity         the same with --capacity-connections (1024) connections
  follower tag reads     wrk -t2 -c64 --latency, manifest GET by tag, on one region while it
                         follows, then on the same region after leadership moved to it
                         (POST /admin/cluster/transfer-leader): requests/s, their ratio and
                         p50/p99 latency at each (the leader answers from its read lease,
                         a follower after one round trip), and how the region's reads found
                         their read point (portolan_raft_reads_total). --reads-only runs
                         this alone
  --- second cluster, --tag-reads local ---
  replication lag        one write at a time (--lag-writes 60), from each region in turn.
                         The two other regions poll the new tag (local reads, 1 ms apart, one
                         keep-alive connection each) from before the write: time from the
                         writer's 201 to their first 200 (negative: readable before the writer
                         heard back). At the 201 each of them is also sent one GET by digest,
                         which catches up with the leader when it misses: time to its 200
  open-loop writes       --open-loop-rate (100) writes/s for 3 s spread over the regions, each
                         sent on its own schedule and connection, whether or not earlier ones
                         finished (the way independent CI jobs push): p50/p99 latency
  catch-up               after the follower reads: a new fourth region joins and is added while the
                         three take tag writes, every link capped at --catchup-mbps (100 MB/s):
                         time from the add to its first /readyz 200 against the snapshot bytes
                         it fetched over the cap (<= 1.5x), write p99 meanwhile
  failover               4 writers in each region but the leader, each one PUT at a time (a
                         failure retried after 20 ms), then kill -9 of the leader: time from
                         the kill to the first 201 of a PUT sent after it, and when a survivor
                         first called itself leader; the region is then started again and the
                         next run (--failover-runs 3) kills whichever region leads

Wiring: a region dials every other region through the WAN proxy its own cluster file names;
after the write run the regions' sockets are checked (Cluster.direct_connections) and any
connection straight to another region's raft port is reported as an error, since figures
measured around the emulator are better than the WAN allows.

Processes: each cluster and its WAN emulator run in a child process of this one (`--host`,
requests as JSON lines on its stdin; bench/clusterhost.py, which adds this file's rtt op to
its own), so the emulator's event loop never waits for this process's GIL; load comes from
wrk, pollers and writers from threads here. time.monotonic is CLOCK_MONOTONIC, comparable
across the processes (the kill time comes from the child). CPU shares of the regions and of
the emulator are printed for the throughput runs, to tell latency-bound figures from
CPU-bound ones.

Limits: every wrk run lasts --duration seconds (PT_BENCH_DURATION, 1..120); lag, open-loop
and failover requests have their own counts and time limits; an answer that is not the
expected one is reported as an error under the table. Data lives in one temporary directory
(PT_BENCH_DATA chooses where; PT_KEEP_TMP=1 keeps it; PT_BENCH_DEBUG=1 logs every failover
write). Exit status 1 when a workload could not be measured, 0 otherwise (a missed target does
not fail the run).
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time

import clusterhost  # puts tests/lib on sys.path
import harness  # tests/lib
from clusterhost import BenchError, CpuMeter, Host, percentile, port_of

HERE = os.path.dirname(os.path.abspath(__file__))
clusterlib = clusterhost.clusterlib
# bench.py gives the reference workload and wrk's output parser.
bench = clusterhost.load_by_path("pt_bench", os.path.join(HERE, "bench.py"))

ACCEPT = harness.OCI_MANIFEST
TAGPUT = os.path.join(HERE, "tagput.lua")
REGIONS = 3
HTTP_TIMEOUT = 30.0
LAG_POLL_S = 0.001  # pause between two polls of one poller
LAG_GIVE_UP_S = 5.0  # a write not visible elsewhere within this is reported as an error
FAILOVER_WRITERS = 4  # writers per surviving region, each one PUT at a time
FAILOVER_PUT_TIMEOUT = 6.0  # > the default --write-timeout (5 s)
FAILOVER_GIVE_UP_S = 15.0
OPEN_LOOP_S = 3.0
OPEN_LOOP_TIMEOUT = 30.0
HOST_TIMEOUT = 120.0  # seconds any command of the cluster process may take

# The percentiles each wrk run reports from its done() hook: enough points to merge the
# latency distributions of several wrk processes (each point stands for 0.1 % of its
# requests) with p99 and p99.9 exact per process.
GRID = [round(0.1 * k, 1) for k in range(1, 1000)] + [99.95, 99.99]

WRK_DONE = r"""
function done(summary, latency, requests)
    local f = assert(io.open(os.getenv("PT_WRK_OUT"), "w"))
    f:write(string.format("requests %d\n", summary.requests))
    f:write(string.format("status_errors %d\n", summary.errors.status))
    f:write(string.format("socket_errors %d\n", summary.errors.connect + summary.errors.read
        + summary.errors.write + summary.errors.timeout))
    f:write(string.format("duration_us %d\n", summary.duration))
    f:write(string.format("mean_us %f\n", latency.mean))
    f:write(string.format("max_us %d\n", latency.max))
    for _, p in ipairs({@GRID@}) do
        f:write(string.format("p %s %d\n", tostring(p), latency:percentile(p)))
    end
    f:close()
end
""".replace("@GRID@", ", ".join("%g" % p for p in GRID))

# (key, label, format) of each table row; targets() gives the targets, from the delay.
ROWS = [
    ("tag_writes", "tag writes/s, {clients} clients over 3 regions", "%.0f"),
    ("write_p50", "write latency p50 (ms), {clients} clients", "%.0f"),
    ("write_p99", "write latency p99 (ms), {clients} clients", "%.0f"),
    ("capacity", "tag writes/s, {capacity} clients", "%.0f"),
    ("capacity_p99", "write latency p99 (ms), {capacity} clients", "%.0f"),
    ("open_p50", "write latency p50 (ms), open loop {rate}/s", "%.0f"),
    ("open_p99", "write latency p99 (ms), open loop {rate}/s", "%.0f"),
    ("lag_tag_p50", "replication lag p50 (ms), tag, local reads", "%.1f"),
    ("lag_tag_p99", "replication lag p99 (ms), tag, local reads", "%.1f"),
    ("lag_digest_p50", "GET by digest at the 201, elsewhere p50 (ms)", "%.1f"),
    ("lag_digest_p99", "GET by digest at the 201, elsewhere p99 (ms)", "%.1f"),
    ("get_follower", "GET by tag/s, follower (linearizable)", "%.0f"),
    ("get_leader", "GET by tag/s, same region as leader", "%.0f"),
    ("get_ratio", "follower / leader GET by tag", "%.2f"),
    ("get_leader_p50", "GET by tag latency p50 (ms), leader", "%.0f"),
    ("get_leader_p99", "GET by tag latency p99 (ms), leader", "%.0f"),
    ("get_follower_p50", "GET by tag latency p50 (ms), follower", "%.0f"),
    ("get_follower_p99", "GET by tag latency p99 (ms), follower", "%.0f"),
    ("failover_max", "failover: kill -9 to next write (s), worst", "%.2f"),
    ("catchup_s", "new region: add to ready (s), {mbps} MB/s links", "%.2f"),
    ("catchup_ratio", "catch-up / (snapshot bytes / bandwidth)", "%.2f"),
    ("catchup_p99", "write latency p99 (ms) during the catch-up", "%.0f"),
]

log = clusterhost.logger("cluster-bench")


# -- the cluster process ----------------------------------------------------------------------


def measure_wan_rtt(c, samples=3):
    """Median time for a few bytes to reach another region's raft port through the Wan and
    its refusal (the port drops a bad handshake at once) to come back, in ms."""
    out = []
    for i in range(samples):
        a, b = c.regions[i % len(c.regions)], c.regions[(i + 1) % len(c.regions)]
        host, port = c.wan.route(a.name, clusterlib.HOST, b.raft_port)
        with socket.create_connection((host, port), timeout=5) as s:
            t0 = time.monotonic()
            s.sendall(b"\0" * 64)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
            out.append((time.monotonic() - t0) * 1000)
    return sorted(out)[len(out) // 2]


def op_rtt(c, cmd):
    return {"rtt_ms": measure_wan_rtt(c)}


def op_bandwidth(c, cmd):
    """Caps every link of the emulator at bps bytes per second (None: no cap)."""
    c.wan.set_bandwidth(cmd.get("bps"))
    return {}


HOST_OPS = {"rtt": op_rtt, "bandwidth": op_bandwidth}  # and clusterhost.OPS


def new_cluster(**kwargs):
    # Access control off: these figures are the registry's own (bench/auth.sh measures what
    # access control costs).
    kwargs.setdefault("auth", False)
    # a fourth region, never started but for the catch-up (join), has its Wan links already
    return clusterlib.GrowingCluster(REGIONS, REGIONS + 1, **kwargs)


# -- HTTP -------------------------------------------------------------------------------------


class Conn:
    """One keep-alive HTTP/1.1 connection to a region; reconnects after an error."""

    def __init__(self, url, timeout=HTTP_TIMEOUT):
        self.port = port_of(url)
        self.timeout = timeout
        self.c = None

    def request(self, method, path, headers=None, body=None):
        """(status, headers dict lower-cased, body); raises OSError/HTTPException."""
        hdrs = dict(headers or {})
        if body is None and method in ("PUT", "POST"):
            hdrs["Content-Length"] = "0"
        if self.c is None:
            self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self.c.request(method, path, body=body, headers=hdrs)
            r = self.c.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None


def push_image(url, repo, tag, seed):
    """Pushes a small image (config + one layer) to repo:tag in one region; returns it."""
    img = harness.make_image(layers=1, layer_size=512,
                             annotations={"bench.seed": seed})
    cl = harness.Client(url, timeout=HTTP_TIMEOUT)
    try:
        img.push(cl, repo, tag)
    finally:
        cl.close()
    return img


def variant(img, n):
    """img's manifest with one more annotation: a new digest over the same blobs."""
    obj = json.loads(img.bytes)
    obj.setdefault("annotations", {})["bench.n"] = str(n)
    return harness.Manifest(obj, img.media_type)


# -- wrk --------------------------------------------------------------------------------------


class WrkRun:
    """One wrk process with a done() hook that writes its latency percentiles to a file."""

    def __init__(self, work, name, url, duration, threads, connections, script_body,
                 script_args=(), headers=()):
        self.name = name
        self.out_path = os.path.join(work, "wrk-%s.out" % name)
        script = os.path.join(work, "wrk-%s.lua" % name)
        with open(script, "w") as f:
            f.write(script_body + WRK_DONE)
        cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--latency",
               "-s", script]
        for h in headers:
            cmd += ["-H", h]
        cmd.append(url)
        if script_args:
            cmd += ["--"] + list(script_args)
        env = dict(os.environ, PT_WRK_OUT=self.out_path)
        self.duration = duration
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)

    def wait(self):
        try:
            out, err = self.proc.communicate(timeout=self.duration + 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise BenchError("wrk %s did not finish" % self.name)
        if self.proc.returncode != 0:
            raise BenchError("wrk %s failed (%d): %s" % (self.name, self.proc.returncode,
                                                       err.strip()[-300:]))
        res = bench.parse_wrk(out)
        res["grid"] = []
        with open(self.out_path) as f:
            for line in f:
                parts = line.split()
                if parts[0] == "p":
                    res["grid"].append((float(parts[1]), float(parts[2]) / 1000.0))
                else:
                    res[parts[0]] = float(parts[1])
        if not res["grid"]:
            raise BenchError("wrk %s wrote no latency percentiles" % self.name)
        res["p50_ms"] = self.pct(res, 50.0)
        res["p99_ms"] = self.pct(res, 99.0)
        return res

    @staticmethod
    def pct(res, p):
        return min(res["grid"], key=lambda g: abs(g[0] - p))[1]


def merged_percentile(results, p):
    """The p-th latency percentile (ms) over the requests of several wrk runs: each run's
    percentile grid stands for its requests, each point for an equal share of them."""
    points = []
    for res in results:
        grid = res["grid"]
        w = res["requests"] / float(len(grid))
        points += [(ms, w) for _, ms in grid]
    points.sort()
    total = sum(w for _, w in points)
    acc = 0.0
    for ms, w in points:
        acc += w
        if acc >= p / 100.0 * total:
            return ms
    return points[-1][0]


# -- workloads --------------------------------------------------------------------------------


class Bench:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.fig = {}  # key -> value
        self.ref = {}  # key -> reference value
        self.errors = []  # (workload, message)
        self.notes = []  # lines printed under the table
        self.host = None
        self.repos = None  # the tag-write repositories of run_writes, for the catch-up

    def note(self, msg):
        self.notes.append(msg)
        log(msg)

    def role_of(self, name):
        return "leader" if name == self.host.leader else "follower"

    # reference ----------------------------------------------------------------------------

    def reference_tag_writes(self):
        proc = harness.ReferenceRegistry(
            data_dir=os.path.join(self.work, "reference", "data"),
            env={"REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR": "inmemory"})
        proc.start()
        try:
            reg = bench.Registry("reference", proc)
            bench.bench_tag_writes(reg, self.args, self.work)
            self.ref["tag_writes"] = reg.figures.get("tag_writes_per_s")
            for key, msg in reg.errors.items():
                self.errors.append(("reference tag writes", msg))
        finally:
            proc.stop()
            proc.cleanup()

    # tag writes ---------------------------------------------------------------------------

    def seed_tag_repos(self):
        """One repository per region, its blobs pushed through that region; returns
        {region name: (repo, manifest file, media type, image)}."""
        out = {}
        for r in self.host.regions:
            repo = "bench/tags-" + r["name"]
            img = push_image(r["url"], repo, "base", repo)
            path = os.path.join(self.work, "manifest-%s.json" % r["name"])
            with open(path, "wb") as f:
                f.write(img.bytes)
            out[r["name"]] = (repo, path, img.media_type, img)
        return out

    def tag_writes(self, repos, connections, label):
        """connections spread over the regions, a wrk -t1 per region; returns (writes/s,
        p50 ms, p99 ms) over all regions and notes each region's figures."""
        n = len(self.host.regions)
        share = [connections // n + (1 if i < connections % n else 0) for i in range(n)]
        cpu = CpuMeter(self.host)
        cpu.start()
        runs = []
        for r, c in zip(self.host.regions, share):
            repo, path, mt, _ = repos[r["name"]]
            body = 'dofile("%s")\n' % TAGPUT.replace("\\", "\\\\").replace('"', '\\"')
            runs.append((r, WrkRun(self.work, "%s-%s" % (label.replace(" ", "-"), r["name"]),
                                   r["url"],
                                   self.args.duration, 1, c, body, (repo, path, mt))))
        results = []
        for r, w in runs:
            results.append((r, w.wait()))
        cpu.stop()
        per = [res for _, res in results]
        total = sum(res["rps"] for res in per)
        p50 = merged_percentile(per, 50.0)
        p99 = merged_percentile(per, 99.0)
        mean = sum(res["mean_us"] * res["requests"] for res in per) / max(
            1, sum(res["requests"] for res in per)) / 1000.0
        for r, res in results:
            if res["non2xx"] or res["socket_errors"]:
                self.errors.append((label, "%s: %d non-2xx, %d socket errors of %d" % (
                    r["name"], res["non2xx"], res["socket_errors"], res["requests"])))
        detail = "; ".join("%s (%s, %d conns) %.0f/s p50 %.0f p99 %.0f ms" % (
            r["name"], self.role_of(r["name"]), c, res["rps"], res["p50_ms"], res["p99_ms"])
            for (r, res), c in zip(results, share))
        self.note("%s: %s" % (label, detail))
        self.note("%s: mean latency %.0f ms, so %d connections allow at most %.0f writes/s "
                  "(connections / mean latency; 5000/s would take %.0f writes in flight); "
                  "CPU: %s" % (label, mean, connections, connections / (mean / 1000.0),
                               5000 * mean / 1000.0, cpu.text()))
        return total, p50, p99

    def spot_check_tags(self, repos):
        """Early tags each region wrote resolve, read through another region, to the
        manifest (wrk builds one request before its run, so w0-1 may be missing)."""
        names = [r["name"] for r in self.host.regions]
        for i, name in enumerate(names):
            repo, _, _, img = repos[name]
            reader = self.host.region(names[(i + 1) % len(names)])
            c = Conn(reader["url"])
            try:
                found = []
                for n in range(2, 7):
                    st, h, _ = c.request("GET", "/v2/%s/manifests/w0-%d" % (repo, n),
                                         {"Accept": ACCEPT})
                    found.append(h.get("docker-content-digest") if st == 200 else st)
            finally:
                c.close()
            if any(d != img.digest for d in found):
                self.errors.append(("tag writes", "tags w0-2..6 of %s read at %s: %r"
                                    % (repo, reader["name"], found)))

    def run_writes(self):
        repos = self.seed_tag_repos()
        self.host.call("converge")
        total, p50, p99 = self.tag_writes(repos, self.args.clients, "tag writes")
        self.fig["tag_writes"], self.fig["write_p50"], self.fig["write_p99"] = total, p50, p99
        direct = self.host.call("direct")["direct"]
        if direct:
            self.errors.append(("tag writes", "regions hold connections straight to other "
                                "regions' raft ports, around the emulator, so the figures "
                                "are better than the WAN allows: " + ", ".join(
                                    "%s->%s" % tuple(d) for d in direct)))
        t0 = time.monotonic()
        idx = self.host.call("converge")["applied_index"]
        self.note("after the write run the regions agreed (state digests) at index %d "
                  "within %.1f s" % (idx, time.monotonic() - t0))
        self.spot_check_tags(repos)
        if self.args.capacity_connections:
            total, _, p99 = self.tag_writes(repos, self.args.capacity_connections, "capacity")
            self.fig["capacity"], self.fig["capacity_p99"] = total, p99
            self.host.call("converge")
        self.repos = repos

    def run_catchup(self):
        """A new fourth region joins (`--join true`, then `portolan cluster add` at the leader)
        and catches up from a snapshot file it fetches over the emulator, every link capped at
        --catchup-mbps, while the three others take tag writes: the time from the add to its
        first /readyz 200 against the bytes it fetched over the cap, and the write latency
        meanwhile."""
        repos = self.repos
        live = list(self.host.regions)
        lead = self.host.call("leader")["leader"]
        bps = self.args.catchup_mbps * 1e6
        joined = self.host.call("join")
        self.host.call("bandwidth", bps=bps)
        ready = {}
        try:
            conns = max(2, self.args.clients // len(live))
            body = 'dofile("%s")\n' % TAGPUT.replace("\\", "\\\\").replace('"', '\\"')
            runs = []
            for r in live:
                repo, path, mt, _ = repos[r["name"]]
                runs.append((r, WrkRun(self.work, "catchup-%s" % r["name"], r["url"],
                                       self.args.duration, 1, conns, body, (repo, path, mt))))
            stop = threading.Event()

            def poll(t0):
                c = Conn(joined["url"])
                try:
                    while not stop.is_set() and time.monotonic() - t0 < HOST_TIMEOUT:
                        try:
                            st, _, _ = c.request("GET", "/readyz")
                        except (OSError, http.client.HTTPException):
                            st = None
                        if st == 200:
                            ready["s"] = time.monotonic() - t0
                            st, _, data = c.request("GET", "/admin/cluster/self")
                            if st == 200:
                                ready["snaps"] = json.loads(data).get("snapshots", {})
                            return
                        time.sleep(0.02)
                finally:
                    c.close()
            t0 = time.monotonic()
            th = threading.Thread(target=poll, args=(t0,), daemon=True)
            th.start()
            try:
                clusterhost.cluster_add(self.host.region(lead)["url"], joined)
            except BenchError:
                stop.set()
                raise
            add_s = time.monotonic() - t0
            th.join(HOST_TIMEOUT)
            stop.set()
            results = [(r, w.wait()) for r, w in runs]
        finally:
            self.host.call("bandwidth", bps=None)
        if "s" not in ready:
            raise BenchError("%s never answered /readyz 200 after it was added" % joined["name"])
        snaps = ready.get("snaps", {})
        fetched = snaps.get("fetch_bytes", 0)
        bound = fetched / bps
        p99 = merged_percentile([res for _, res in results], 99.0)
        self.fig["catchup_s"], self.fig["catchup_p99"] = ready["s"], p99
        if fetched:
            self.fig["catchup_ratio"] = ready["s"] / bound
        self.note("catch-up: %s added in %.2f s, ready %.2f s after the add began; fetched %d "
                  "snapshot bytes (%d file(s), %s restored, %s dropped): %.2f s at %.0f MB/s; "
                  "writes at the three others meanwhile p99 %.0f ms (%s)" % (
                      joined["name"], add_s, ready["s"], fetched, snaps.get("fetched", 0),
                      snaps.get("restored_files", 0), snaps.get("dropped", 0), bound,
                      self.args.catchup_mbps, p99,
                      "; ".join("%s %.0f/s" % (r["name"], res["rps"]) for r, res in results)))
        if not fetched:
            self.errors.append(("catch-up", "%s caught up without fetching a snapshot file "
                                "(the log not compacted yet?): %s" % (joined["name"], snaps)))
        self.host.call("converge")

    # follower reads -----------------------------------------------------------------------

    def wrk_get(self, region, label):
        w = WrkRun(self.work, label, region["url"] + "/v2/bench/app/manifests/latest",
                   self.args.duration, 2, self.args.clients, "", headers=["Accept: " + ACCEPT])
        res = w.wait()
        if res["non2xx"] or res["socket_errors"]:
            self.errors.append((label, "%d non-2xx, %d socket errors of %d" % (
                res["non2xx"], res["socket_errors"], res["requests"])))
        return res

    def transfer_leader(self, to):
        lead = self.host.region(self.host.leader)
        c = Conn(lead["url"])
        try:
            st, _, body = c.request("POST", "/admin/cluster/transfer-leader",
                                    {"Content-Type": "application/json"},
                                    json.dumps({"id": to["id"]}).encode())
        finally:
            c.close()
        if st // 100 != 2:
            raise BenchError("transfer-leader to %s: %d %r" % (to["name"], st, body[:200]))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.host.call("leader")["leader"] == to["name"]:
                return
            time.sleep(0.2)
        raise BenchError("%s did not become leader" % to["name"])

    def run_follower_reads(self):
        lead = self.host.region(self.host.leader)
        push_image(lead["url"], "bench/app", "latest", "bench-app")
        self.host.call("converge")
        f = self.host.others(self.host.leader)[0]
        cpu = CpuMeter(self.host)
        cpu.start()
        res_f = self.wrk_get(f, "get-follower")
        cpu.stop()
        self.note("GET by tag at %s as follower: %.0f/s, p50 %.0f p99 %.0f ms; CPU: %s"
                  % (f["name"], res_f["rps"], res_f["p50_ms"], res_f["p99_ms"], cpu.text()))
        self.transfer_leader(f)
        cpu.start()
        res_l = self.wrk_get(f, "get-leader")
        cpu.stop()
        self.note("GET by tag at %s as leader: %.0f/s, p50 %.0f p99 %.0f ms; CPU: %s"
                  % (f["name"], res_l["rps"], res_l["p50_ms"], res_l["p99_ms"], cpu.text()))
        self.fig["get_follower"], self.fig["get_leader"] = res_f["rps"], res_l["rps"]
        for role, res in (("follower", res_f), ("leader", res_l)):
            self.fig["get_%s_p50" % role] = res["p50_ms"]
            self.fig["get_%s_p99" % role] = res["p99_ms"]
        self.read_paths(f)
        if res_l["rps"]:
            self.fig["get_ratio"] = res_f["rps"] / res_l["rps"]

    def read_paths(self, region):
        """Notes how the GETs' read points were found (portolan_raft_reads_total): from the
        leader's lease, by a barrier (read-index fallback), or forwarded by a follower."""
        c = Conn(region["url"])
        try:
            st, _, body = c.request("GET", "/metrics")
        finally:
            c.close()
        if st != 200:
            return
        paths = {}
        for line in body.decode("utf-8", "replace").splitlines():
            if line.startswith("portolan_raft_reads_total{path=\""):
                name = line.split('"')[1]
                paths[name] = int(float(line.rsplit(" ", 1)[1]))
        if paths:
            self.note("reads at %s (both runs): %s" % (region["name"], ", ".join(
                "%s %d" % kv for kv in sorted(paths.items()))))

    # replication lag ----------------------------------------------------------------------

    def run_lag(self):
        """One write at a time from each region in turn. Tag pollers (local tag reads) run in
        the other regions from before the write: time from the writer's 201 to their first
        200 is the replication lag. At the 201 each other region is also sent one GET by
        digest (a miss by digest catches up with the leader before it answers): time to its
        200 is what a client pulling by digest elsewhere right after a push waits."""
        repo = "bench/lag"
        base = push_image(self.host.region(self.host.leader)["url"], repo, "base", "bench-lag")
        self.host.call("converge")
        names = [r["name"] for r in self.host.regions]
        conns = {(r["name"], kind): Conn(r["url"], timeout=10)
                 for r in self.host.regions for kind in ("digest", "tag", "write")}
        samples = {"digest": [], "tag": []}  # (writer role, ms after the 201)
        write_ms = {"leader": [], "follower": []}
        rng = random.Random(1)
        try:
            for i in range(self.args.lag_writes):
                writer = names[i % len(names)]
                m = variant(base, "lag-%d" % i)
                tag = "lag-%d" % i
                readers = [n for n in names if n != writer]
                seen = {}
                stop = time.monotonic() + LAG_GIVE_UP_S
                pollers = [threading.Thread(target=self._poll, args=(
                    conns[(rn, "tag")], repo, tag, m.digest, stop, seen, (rn, "tag")))
                    for rn in readers]
                for t in pollers:
                    t.start()
                time.sleep(0.005)  # the pollers are polling (404s) before the write leaves
                t_send = time.monotonic()
                st, _, body = conns[(writer, "write")].request(
                    "PUT", "/v2/%s/manifests/%s" % (repo, tag),
                    {"Content-Type": m.media_type}, m.bytes)
                t_201 = time.monotonic()
                fetchers = [threading.Thread(target=self._poll, args=(
                    conns[(rn, "digest")], repo, m.digest, m.digest, stop, seen, (rn, "digest"),
                    True)) for rn in readers]
                for t in fetchers:
                    t.start()
                for t in pollers + fetchers:
                    t.join()
                if st != 201:
                    raise BenchError("lag write at %s: %d %r" % (writer, st, body[:200]))
                role = self.role_of(writer)
                write_ms[role].append((t_201 - t_send) * 1000)
                for (rn, kind), (t_seen, first_status) in seen.items():
                    if t_seen is None:
                        self.errors.append(("replication lag", "%s written at %s not readable "
                                            "by %s at %s within %.0f s" % (
                                                tag, writer, kind, rn, LAG_GIVE_UP_S)))
                        continue
                    samples[kind].append((role, (t_seen - t_201) * 1000))
                    if kind == "digest" and first_status != 200:
                        self.errors.append(("replication lag", "GET by digest at %s sent after "
                                            "the 201 of %s at %s answered %s" % (
                                                rn, tag, writer, first_status)))
                time.sleep(rng.uniform(0, 0.1))  # do not keep step with the heartbeat
        finally:
            for c in conns.values():
                c.close()
        for kind in ("digest", "tag"):
            vals = [v for _, v in samples[kind]]
            if vals:
                self.fig["lag_%s_p50" % kind] = percentile(vals, 50)
                self.fig["lag_%s_p99" % kind] = percentile(vals, 99)
            for role in ("leader", "follower"):
                rv = [v for ro, v in samples[kind] if ro == role]
                if rv:
                    self.note("%s, writer is the %s: n=%d p50 %.1f p99 %.1f max %.1f ms" % (
                        "GET by digest sent at the 201" if kind == "digest"
                        else "lag by tag (local reads)", role, len(rv), percentile(rv, 50),
                        percentile(rv, 99), max(rv)))
        for role, vals in write_ms.items():
            if vals:
                self.note("single write (no other load) at the %s: n=%d p50 %.0f p99 %.0f ms"
                          % (role, len(vals), percentile(vals, 50), percentile(vals, 99)))

    @staticmethod
    def _poll(conn, repo, ref, digest, stop, seen, key, once_first=False):
        """Polls repo:ref until it answers 200 with digest; seen[key] = (time of that answer
        or None on giving up, status of the first answer)."""
        seen[key] = (None, None)
        first = None
        path = "/v2/%s/manifests/%s" % (repo, ref)
        while time.monotonic() < stop:
            try:
                st, h, _ = conn.request("GET", path, {"Accept": ACCEPT})
            except (OSError, http.client.HTTPException):
                st, h = 0, {}
            t = time.monotonic()
            if first is None:
                first = st
            if st == 200 and h.get("docker-content-digest") == digest:
                seen[key] = (t, first)
                return
            seen[key] = (None, first)
            time.sleep(LAG_POLL_S)

    # open-loop writes ---------------------------------------------------------------------

    def run_open_loop(self):
        """Writes that arrive on their own schedule (like independent CI jobs), not when an
        earlier one finished: --open-loop-rate writes/s spread over the regions for
        OPEN_LOOP_S seconds, each on a new connection; latency of each."""
        repo = "bench/open"
        base = push_image(self.host.region(self.host.leader)["url"], repo, "base", "bench-open")
        self.host.call("converge")
        m = variant(base, "open")
        rate = float(self.args.open_loop_rate)
        results = []
        lock = threading.Lock()

        def put(r, n):
            c = Conn(r["url"], timeout=OPEN_LOOP_TIMEOUT)
            t0 = time.monotonic()
            try:
                st, _, _ = c.request("PUT", "/v2/%s/manifests/o-%d" % (repo, n),
                                     {"Content-Type": m.media_type}, m.bytes)
            except (OSError, http.client.HTTPException):
                st = 0
            finally:
                c.close()
            with lock:
                results.append((r["name"], t0, time.monotonic() - t0, st))

        total = int(rate * OPEN_LOOP_S)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(total, 600))
        start = time.monotonic()
        for n in range(total):
            due = start + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(put, self.host.regions[n % len(self.host.regions)], n)
        pool.shutdown(wait=True)
        ok = [x[2] * 1000 for x in results if x[3] == 201]
        bad = len(results) - len(ok)
        if bad:
            self.errors.append(("open-loop writes", "%d of %d writes failed" % (bad, total)))
        if ok:
            self.fig["open_p50"] = percentile(ok, 50)
            self.fig["open_p99"] = percentile(ok, 99)
            first_half = [x[2] * 1000 for x in results if x[3] == 201 and x[1] < start + 1.0]
            self.note("open-loop writes, %.0f/s over the regions for %.0f s: p50 %.0f p99 %.0f "
                      "max %.0f ms; writes sent in the first second took %.0f ms at the median"
                      % (rate, OPEN_LOOP_S, percentile(ok, 50), percentile(ok, 99), max(ok),
                         percentile(first_half, 50) if first_half else float("nan")))

    # failover -----------------------------------------------------------------------------

    def run_failover(self):
        repo = "bench/failover"
        base = push_image(self.host.region(self.host.leader)["url"], repo, "base",
                          "bench-failover")
        self.host.call("converge")
        runs = []
        for run in range(self.args.failover_runs):
            runs.append(self._failover_once(repo, base, run))
        self.fig["failover_max"] = max(t["resume_s"] for t in runs)
        self.note("failover runs (kill -9 of the leader): " + "; ".join(
            "%s killed, %s leads after %s s, first write %.2f s (at %s)"
            % (t["killed"], t["new_leader"] or "?",
               "%.2f" % t["elected_s"] if t["elected_s"] is not None else "?",
               t["resume_s"], t["first_region"]) for t in runs))
        self.note("failover: writes that failed (503 or no answer) between the kill and the "
                  "first success: %s" % ", ".join(str(t["failed"]) for t in runs))

    def _failover_once(self, repo, base, run):
        """FAILOVER_WRITERS writers in every region but the leader, each one PUT after the
        other (a failed one is retried after 20 ms), then kill -9 of the leader: time from the
        kill to the first 201 of a PUT sent after it. Then the region is started again."""
        victim = self.host.leader
        survivors = self.host.others(victim)
        m = variant(base, "failover-%d" % run)
        results = []  # (region, t_start, t_end, status)
        lock = threading.Lock()
        counter = [0]
        done = threading.Event()
        elected = {}

        def writer(r):
            c = Conn(r["url"], timeout=FAILOVER_PUT_TIMEOUT)
            try:
                while not done.is_set():
                    with lock:
                        counter[0] += 1
                        n = counter[0]
                    t0 = time.monotonic()
                    try:
                        st, _, _ = c.request("PUT", "/v2/%s/manifests/f%d-%d" % (repo, run, n),
                                             {"Content-Type": m.media_type}, m.bytes)
                    except (OSError, http.client.HTTPException):
                        st = 0
                    with lock:
                        results.append((r["name"], t0, time.monotonic(), st))
                    if st != 201:
                        done.wait(0.02)
            finally:
                c.close()

        def watcher():
            conns = {r["name"]: Conn(r["url"], timeout=1) for r in survivors}
            try:
                while not done.is_set() and not elected:
                    for name, c in conns.items():
                        try:
                            st, _, body = c.request("GET", "/admin/cluster/self")
                            s = json.loads(body) if st == 200 else {}
                        except (OSError, http.client.HTTPException, ValueError):
                            s = {}
                        if s.get("role") == "leader" and not elected:
                            elected.update(t=time.monotonic(), name=name)
                    time.sleep(0.01)
            finally:
                for c in conns.values():
                    c.close()

        threads = [threading.Thread(target=writer, args=(r,))
                   for r in survivors for _ in range(FAILOVER_WRITERS)]
        for t in threads:
            t.start()
        # Kill once every surviving region has written through the leader (channels open).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                warm = {x[0] for x in results if x[3] == 201}
            if warm >= {r["name"] for r in survivors}:
                break
            time.sleep(0.02)
        else:
            done.set()
            for t in threads:
                t.join()
            raise BenchError("run %d: no write succeeded in every region before the kill"
                             % run)
        time.sleep(0.2)
        t_kill = self.host.call("kill9", region=victim)["t_kill"]
        wt = threading.Thread(target=watcher)
        wt.start()
        first = None
        deadline = time.monotonic() + FAILOVER_GIVE_UP_S
        while time.monotonic() < deadline and first is None:
            time.sleep(0.01)
            with lock:
                ok = [x for x in results if x[3] == 201 and x[1] >= t_kill]
            if ok:
                first = min(ok, key=lambda x: x[2])
        done.set()
        for t in threads + [wt]:
            t.join()
        with lock:
            ok = [x for x in results if x[3] == 201 and x[1] >= t_kill]
            first = min(ok, key=lambda x: x[2]) if ok else None
            failed = sum(1 for x in results if x[3] != 201 and x[2] >= t_kill
                         and (first is None or x[2] <= first[2]))
        if os.environ.get("PT_BENCH_DEBUG"):
            for x in sorted(results, key=lambda x: x[1]):
                log("  write %s start %+.3f end %+.3f status %s" % (
                    x[0], x[1] - t_kill, x[2] - t_kill, x[3]))
        log("failover run %d: killed %s, first write after %s" % (
            run, victim, "%.2f s" % (first[2] - t_kill) if first else "none"))
        self.host.call("restart", region=victim)
        self.host.call("leader")
        self.host.call("converge")
        if first is None:
            raise BenchError("run %d: no write succeeded within %.0f s of killing %s"
                             % (run, FAILOVER_GIVE_UP_S, victim))
        return {"killed": victim, "new_leader": elected.get("name"),
                "elected_s": elected["t"] - t_kill if "t" in elected else None,
                "resume_s": first[2] - t_kill, "first_region": first[0], "failed": failed}

    # driver -------------------------------------------------------------------------------

    def step(self, title, fn):
        t0 = time.monotonic()
        try:
            fn()
        except (BenchError, OSError, RuntimeError, AssertionError, http.client.HTTPException,
                subprocess.SubprocessError, bench.BenchError) as e:
            self.errors.append((title, "%s: %s" % (type(e).__name__, e)))
            if self.host is not None:
                try:
                    dead = self.host.call("dead")["dead"]
                    if dead:
                        self.errors.append((title, "dead regions: " + dead))
                except BenchError:
                    pass
        log("%s: %.1fs" % (title, time.monotonic() - t0))

    def start_cluster(self, name, extra):
        t0 = time.monotonic()
        try:
            # Every load generator connects from 127.0.0.1: lift the per-address connection cap
            # (a guard against one hostile address) to what the capacity run opens.
            guard = ["--max-connections-per-address=%d"
                     % max(256, self.args.capacity_connections)]
            self.host = Host(__file__, os.path.join(self.work, name), self.args.delay_ms,
                             guard + self.args.portolan_arg + extra, HOST_TIMEOUT)
        except (BenchError, OSError, ValueError) as e:
            self.errors.append(("cluster start", str(e)))
            return False
        log("%s cluster (%s) up in %.1fs, leader %s, data in %s" % (
            name, " ".join(extra) or "default flags", time.monotonic() - t0, self.host.leader,
            self.host.root))
        return True

    def stop_cluster(self):
        if self.host is not None:
            self.host.close()
            self.host = None

    def run(self):
        if not self.args.no_reference:
            self.step("reference tag writes", self.reference_tag_writes)
        # Writes and follower reads: default flags (linearizable tag reads).
        if self.start_cluster("first", []):
            try:
                self.rtt = self.host.call("rtt")["rtt_ms"]
                self.note("emulated round trip between regions, measured: %.1f ms "
                          "(nominal %.0f)" % (self.rtt, 2 * self.args.delay_ms))
                if not self.args.reads_only:
                    self.step("tag writes", self.run_writes)
                self.step("follower tag reads", self.run_follower_reads)
                # last on this cluster: the region it adds makes it four voters
                if self.args.catchup_mbps and self.repos is not None:
                    self.step("new region catch-up", self.run_catchup)
            finally:
                self.stop_cluster()
        if self.args.reads_only:
            return
        # Lag (tags polled with local reads) and failover: a fresh cluster, so that no region
        # is restarted with other flags and failover starts from a short log.
        if self.start_cluster("second", ["--tag-reads", "local"]):
            try:
                self.step("replication lag", self.run_lag)
                if self.args.open_loop_rate:
                    self.step("open-loop writes", self.run_open_loop)
                if self.args.failover_runs:
                    self.step("failover", self.run_failover)
            finally:
                self.stop_cluster()


# -- report -----------------------------------------------------------------------------------


def targets(args):
    """{key: (kind, value, text)}: "min"/"max" bound the figure itself."""
    rtt = 2.0 * args.delay_ms
    return {
        "tag_writes": ("min", 5000.0, ">= 5000"),
        "write_p99": ("max", 3 * rtt, "< %.0f (3 x RTT)" % (3 * rtt)),
        "capacity_p99": ("max", 3 * rtt, "< %.0f (3 x RTT)" % (3 * rtt)),
        "open_p99": ("max", 3 * rtt, "< %.0f (3 x RTT)" % (3 * rtt)),
        "lag_digest_p99": ("max", rtt + 20, "< %.0f (RTT + 20)" % (rtt + 20)),
        "lag_tag_p99": ("max", rtt + 20, "< %.0f (RTT + 20)" % (rtt + 20)),
        # the leader answers from its read lease (no round trip), a follower in one
        "get_leader_p50": ("max", 20.0, "< 20"),
        "get_follower_p50": ("max", rtt + 20, "< %.0f (RTT + 20)" % (rtt + 20)),
        "failover_max": ("max", 3.0, "<= 3"),
        "catchup_ratio": ("max", 1.5, "<= 1.5"),
        "catchup_p99": ("max", 3 * rtt, "< %.0f (3 x RTT)" % (3 * rtt)),
    }


def report(b, args, started):
    tg = targets(args)
    print("Portolan cluster bench: %d regions, %.0f ms one-way delay between regions "
          "(RTT %.0f ms), %d cores, %s, total %.0fs"
          % (REGIONS, args.delay_ms, 2 * args.delay_ms, os.cpu_count() or 0,
             time.strftime("%Y-%m-%d %H:%M"), time.monotonic() - started))
    print("portolan binary: %s" % harness.portolan_bin())
    head = ("figure", "portolan", "reference", "target", "met")
    lines = []
    for key, label, pattern in ROWS:
        if args.reads_only and not key.startswith("get_"):
            continue
        if (key.startswith("capacity") and not args.capacity_connections) or (
                key.startswith("open") and not args.open_loop_rate) or (
                key.startswith("failover") and not args.failover_runs) or (
                key.startswith("catchup") and not args.catchup_mbps):
            continue
        label = label.format(clients=args.clients, capacity=args.capacity_connections,
                             rate=args.open_loop_rate, mbps=args.catchup_mbps)
        v = b.fig.get(key)
        rv = b.ref.get(key)
        kind, value, text = tg.get(key, (None, None, "-"))
        met = clusterhost.verdict(v, kind, value, inclusive=key == "failover_max")
        lines.append((label, "-" if v is None else pattern % v,
                      "-" if rv is None else pattern % rv, text, met))
    clusterhost.print_table(head, lines)
    print("reference = docker-registry 2.8, one node, same tag-write workload (wrk -t2 -c64).")
    clusterhost.print_notes(b.notes, b.errors)


def main(argv):
    if len(argv) == 2 and argv[0] == "--host":
        clusterhost.host_main(json.loads(argv[1]), new_cluster, HOST_OPS)
        return 0
    ap = argparse.ArgumentParser(description="Three Portolan regions behind the WAN emulator: "
                                 "tag writes, write latency, replication lag, follower tag "
                                 "reads and failover, with targets.")
    env = os.environ.get
    ap.add_argument("--duration", type=int, default=int(env("PT_BENCH_DURATION", 10)),
                    help="seconds per wrk run (default 10)")
    ap.add_argument("--delay-ms", type=float, default=50.0,
                    help="one-way delay between regions (default 50)")
    ap.add_argument("--clients", type=int, default=64,
                    help="connections of the tag-write and GET runs (default 64)")
    ap.add_argument("--capacity-connections", type=int, default=1024,
                    help="connections of the capacity write run; 0 skips it (default 1024)")
    ap.add_argument("--lag-writes", type=int, default=int(env("PT_BENCH_LAG_WRITES", 60)),
                    help="writes of the replication-lag run (default 60)")
    ap.add_argument("--failover-runs", type=int, default=int(env("PT_BENCH_FAILOVER_RUNS", 3)),
                    help="kill -9 runs (default 3); 0 skips failover")
    ap.add_argument("--open-loop-rate", type=int, default=100,
                    help="writes/s of the open-loop run, 0 skips it (default 100)")
    ap.add_argument("--catchup-mbps", type=float, default=100.0,
                    help="bandwidth cap (MB/s) of every link while a new fourth region "
                    "catches up from a snapshot file; 0 skips it (default 100)")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the docker-registry tag-write run")
    ap.add_argument("--reads-only", action="store_true",
                    help="only the GET by tag runs (follower, then leader): their rate and "
                    "p50/p99 latency")
    ap.add_argument("--portolan-arg", action="append", default=[],
                    help="extra argument for every region's portolan serve (repeatable)")
    args = ap.parse_args(argv)
    if not (1 <= args.duration <= 120 and 0 <= args.delay_ms <= 1000
            and 3 <= args.clients <= 1024 and args.capacity_connections in range(0, 3073)
            and 3 <= args.lag_writes <= 3000 and 0 <= args.failover_runs <= 20
            and 0 <= args.open_loop_rate <= 2000):
        ap.error("duration 1..120 s, delay 0..1000 ms, clients 3..1024, capacity connections "
                 "0..3072, lag writes 3..3000, failover runs 0..20, open-loop rate 0..2000")
    if args.capacity_connections and args.capacity_connections < REGIONS:
        ap.error("capacity connections: 0 or at least %d" % REGIONS)
    args.runs = 1  # bench.py's Registry helpers read these
    sys.setswitchinterval(0.0002)  # pollers and the writer hand the GIL over quickly

    return clusterhost.run_bench(Bench, report, args, "pt-cbench-", log)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
