#!/usr/bin/env python3
"""Garbage collection over a large store: one node, a million blobs, printed figures.

Role: the driver behind bench/gc.sh. It starts a portolan node once to lay out its data
directory, stops it, fills its metadata store with bench/gcload.c (pt_gcload: synthetic
uploads and manifest PUTs applied through the FSM, as the API would), starts it again and
measures:
  load              time to apply the synthetic commands (blobs, manifests)
  manifest GET idle wrk on one manifest by tag, nothing else running
  dry run           a marking pass that proposes nothing: the mark time and its candidates
  collection        a real pass (POST /admin/gc) with wrk running beside it: pass time,
                    candidates, blobs collected, links removed, the node's peak RssAnon
                    (sampled from /proc/<pid>/status every 50 ms) and VmHWM, and the manifest
                    GET throughput during the pass against idle (target >= 80 %)
Half the blobs are garbage (linked, referenced by no manifest, older than the grace), so the
pass collects about blobs/2.

Figures only: nothing is asserted. Exit status 1 when something could not be measured (the
node died, a pass failed, wrk saw errors), 0 otherwise, whatever the figures.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))

import harness  # noqa: E402

ACCEPT = "application/vnd.oci.image.manifest.v1+json"


class BenchError(Exception):
    pass


def http_json(method, url, timeout=30):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode() or "null")


def parse_wrk(out):
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise BenchError("no Requests/sec in wrk output: %s" % out[-300:])
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (
        sum(int(x) for x in sock.groups()) if sock else 0)
    return float(rps.group(1)), errors


def wrk(url, seconds, connections):
    out = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds, "-H",
                          "Accept: " + ACCEPT, url], capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    return parse_wrk(out)


class MemSampler(threading.Thread):
    """Samples RssAnon and VmHWM (kB) of pid every period seconds until stopped."""

    def __init__(self, pid, period=0.05):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.peak_rss_anon = 0
        self.first_rss_anon = None
        self.vm_hwm = 0
        self._halt = threading.Event()

    def sample(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        v = int(line.split()[1])
                        if self.first_rss_anon is None:
                            self.first_rss_anon = v
                        self.peak_rss_anon = max(self.peak_rss_anon, v)
                    elif line.startswith("VmHWM:"):
                        self.vm_hwm = int(line.split()[1])
        except OSError:
            pass

    def run(self):
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.period)

    def stop(self):
        self._halt.set()
        self.join()
        self.sample()


def wait_pass(node, timeout):
    """Polls GET /admin/gc until the pass ends; returns the final status document."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.running():
            raise BenchError("the node died: " + node.death_note())
        st = http_json("GET", node.url + "/admin/gc")
        if not st["running"] and st["finished_ms"] >= st["started_ms"] > 0:
            return st
        time.sleep(0.2)
    raise BenchError("the pass did not end within %d s" % timeout)


def run_pass(node, dry_run, timeout):
    before = http_json("GET", node.url + "/admin/gc")
    t0 = time.monotonic()
    http_json("POST", node.url + "/admin/gc" + ("?dry_run=true" if dry_run else ""))
    while True:  # the previous pass's status until this one starts
        st = http_json("GET", node.url + "/admin/gc")
        if st["started_ms"] != before["started_ms"] or time.monotonic() - t0 > 30:
            break
        time.sleep(0.05)
    st = wait_pass(node, timeout)
    if st.get("error"):
        raise BenchError("the pass failed: %s" % st["error"])
    return st, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blobs", type=int, default=int(os.environ.get("PT_GCBENCH_BLOBS", 1000000)))
    ap.add_argument("--manifests", type=int,
                    default=int(os.environ.get("PT_GCBENCH_MANIFESTS", 100000)))
    ap.add_argument("--gc-rate", type=int, default=int(os.environ.get("PT_GCBENCH_RATE", 0)),
                    help="the node's --gc-rate (blobs/s; 0 = no limit, the default here)")
    ap.add_argument("--duration", type=int, default=10, help="seconds of the idle wrk run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--timeout", type=int, default=900, help="longest wait for one pass (s)")
    args = ap.parse_args()
    if args.manifests * 5 > args.blobs:
        ap.error("--blobs must be at least 5 x --manifests")
    loader = os.environ.get("PT_GCLOAD_BIN") or os.path.join(
        os.path.dirname(harness.portolan_bin()), "pt_gcload")
    if not os.access(loader, os.X_OK):
        raise BenchError("no loader at %s (cmake --build <dir> --target pt_gcload)" % loader)

    keep = bool(os.environ.get("PT_KEEP_TMP"))
    root = tempfile.mkdtemp(prefix="pt-gcbench-", dir=os.environ.get("PT_BENCH_DATA"))
    data = os.path.join(root, "data")
    node = harness.Node(data_dir=data, args=["--gc-interval", "0", "--gc-grace", "1h",
                                             "--gc-rate", str(args.gc_rate)])
    fig = []
    errors = []
    try:
        node.start()
        node.stop()
        print("loading %d blobs, %d manifests ..." % (args.blobs, args.manifests),
              file=sys.stderr)
        t0 = time.monotonic()
        out = subprocess.run([loader, "--meta", os.path.join(data, "meta"), "--blobs",
                              str(args.blobs), "--manifests", str(args.manifests)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise BenchError("loader failed: %s" % out.stderr.strip())
        load_s = time.monotonic() - t0
        n_cmds = args.blobs + args.manifests
        fig.append(("load (blobs + manifests, %d commands)" % n_cmds,
                    "%.1f s (%.0f commands/s)" % (load_s, n_cmds / load_s)))
        du = subprocess.run(["du", "-sm", os.path.join(data, "meta")], capture_output=True,
                            text=True).stdout.split()
        fig.append(("metadata store size", "%s MB" % (du[0] if du else "?")))

        t0 = time.monotonic()
        node.start(timeout=300)
        fig.append(("node start on the loaded store", "%.1f s" % (time.monotonic() - t0)))
        url = node.url + "/v2/bench/r0/manifests/t0"
        print("manifest GET, idle ...", file=sys.stderr)
        idle, e1 = wrk(url, args.duration, args.connections)
        fig.append(("manifest GET idle (wrk, %d conns)" % args.connections, "%.0f req/s" % idle))

        print("dry run ...", file=sys.stderr)
        mem = MemSampler(node.pid())
        mem.start()
        st, secs = run_pass(node, True, args.timeout)
        mem.stop()
        fig.append(("mark (dry run) time", "%.1f s (%.0f blobs/s)" % (
            secs, st["blobs_examined"] / max(secs, 1e-3))))
        fig.append(("mark: blobs examined / candidates / would collect", "%d / %d / %d" % (
            st["blobs_examined"], st["candidates"], st["blobs_collected"])))
        fig.append(("peak RssAnon during the dry run", "%.1f MiB" % (mem.peak_rss_anon / 1024)))

        print("collection with manifest GETs beside it ...", file=sys.stderr)
        mem = MemSampler(node.pid())
        mem.start()
        result = {}

        def load_during():
            # wrk in windows of 5 s while the pass runs (at least one window)
            total_req, total_s, errs = 0.0, 0.0, 0
            while True:
                r, e = wrk(url, 5, args.connections)
                total_req += r * 5
                total_s += 5
                errs += e
                st2 = http_json("GET", node.url + "/admin/gc")
                if not st2["running"] or total_s >= args.timeout:
                    break
            result["rps"], result["errors"], result["seconds"] = total_req / total_s, errs, total_s

        t = threading.Thread(target=load_during)
        t.start()
        st, secs = run_pass(node, False, args.timeout)
        t.join()
        mem.stop()
        fig.append(("collection pass time (mark + CollectBlobs)", "%.1f s" % secs))
        fig.append(("pass: examined / candidates / collected",
                    "%d / %d / %d" % (st["blobs_examined"], st["candidates"],
                                 st["blobs_collected"])))
        fig.append(("peak RssAnon during the pass (before: %.1f MiB)" % (
            (mem.first_rss_anon or 0) / 1024), "%.1f MiB" % (mem.peak_rss_anon / 1024)))
        fig.append(("VmHWM after the pass", "%.1f MiB" % (mem.vm_hwm / 1024)))
        during = result.get("rps", 0.0)
        fig.append(("manifest GET during the pass (%.0f s of wrk)" % result.get("seconds", 0),
                    "%.0f req/s = %.0f %% of idle (target >= 80 %%)" % (
                        during, 100.0 * during / idle if idle else 0)))
        if e1 or result.get("errors"):
            errors.append("wrk: %d errors idle, %d during the pass" % (e1, result.get("errors")))

        st = http_json("GET", node.url + "/admin/gc")
        again, secs = run_pass(node, True, args.timeout)
        fig.append(("dry run after the pass: candidates", "%d (%.1f s)" % (
            again["candidates"], secs)))
    except (BenchError, RuntimeError, OSError, subprocess.SubprocessError) as e:
        errors.append(str(e))
    finally:
        node.stop()
        if keep:
            print("data kept in %s" % root, file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", root])

    width = max([len(k) for k, _ in fig] + [10])
    print("gc bench: %d blobs (half garbage), %d manifests, --gc-rate %s" % (
        args.blobs, args.manifests, args.gc_rate or "unlimited"))
    for k, v in fig:
        print("  %-*s  %s" % (width, k, v))
    for e in errors:
        print("error: %s" % e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
