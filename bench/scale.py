#!/usr/bin/env python3
"""A node with a large registry's metadata: printed figures against targets.

Role: the driver behind bench/scale.sh. It lays out a node's data directory (one start and
stop), fills its metadata store with bench/gcload.c (pt_gcload: synthetic uploads, manifest
PUTs with several tags, a referrer per manifest, and a repository of many tags, applied
through the FSM as the API would), then starts the node and measures:
  load              commands/s and records/s of the loader
  data directory    du of the data directory after the load
  start / restart   `portolan serve` until /readyz answers 200: the first start on the
                    loaded store, then a stop and a second start (target < 5 s)
  RssAnon at rest   /proc/<pid>/status a few seconds after the restart (target < 512 MiB)
  catalog pages     GET /v2/_catalog?n=100&last=<a random repository name>, one connection,
                    one request at a time: p50/p99 of the client's time (target p99 < 10 ms)
  tag-list pages    GET /v2/<name>/tags/list?n=100&last=<random>: in bench/r0 (the
                    repository of many tags) and in random repositories (a few tags each)
  manifest GET      wrk by tag on the loaded node against a node holding only that manifest
                    (same body, same repository and tag), --wrk-runs alternating runs, the
                    best of each: the ratio (target >= 80 %), and the node's CPU per request
                    over all its runs (in a note)
  idle CPU          utime+stime of the node over --cpu-seconds with nothing asked of it
                    (a single node has no blob sync; the figure is its background work)
  RssAnon after     after the page and wrk runs

Figures only: nothing is asserted. Exit status 1 when something could not be measured (the
node died, the loader failed, an answer was not 200, wrk saw errors), 0 otherwise.
"""

import argparse
import http.client
import os
import random
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))

import harness  # noqa: E402

ACCEPT = "application/vnd.oci.image.manifest.v1+json"


class BenchError(Exception):
    pass


def env_int(name, default):
    return int(os.environ.get(name, default))


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
    rps, errors = parse_wrk(out)
    if errors:
        raise BenchError("wrk on %s: %d errors" % (url, errors))
    return rps


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError("no %s in /proc/%d/status" % (field, pid))


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def du_mb(path):
    out = subprocess.run(["du", "-sm", path], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else -1


def start_ready(node, timeout):
    """Starts node and returns the seconds until /readyz answered 200."""
    node.ready_path = "/readyz"
    t0 = time.monotonic()
    node.start(timeout=timeout)
    return time.monotonic() - t0


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def pages(node, paths, what):
    """GETs each path on one keep-alive connection; returns the times in ms."""
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    times = []
    try:
        for p in paths:
            t0 = time.perf_counter()
            conn.request("GET", p)
            r = conn.getresponse()
            body = r.read()
            times.append((time.perf_counter() - t0) * 1000.0)
            if r.status != 200:
                raise BenchError("%s: GET %s answered %d: %s" % (what, p, r.status, body[:200]))
    finally:
        conn.close()
    return times


def load(loader, data, args, blobs, manifests, repos, extra_tags):
    out = subprocess.run([loader, "--meta", os.path.join(data, "meta"), "--blobs", str(blobs),
                          "--manifests", str(manifests), "--repos", str(repos),
                          "--tags-per-manifest", str(args.tags_per_manifest),
                          "--referrers", "1", "--extra-tags", str(extra_tags)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError("loader failed: %s" % out.stderr.strip())
    m = re.search(r"commands=(\d+) records=(\d+) seconds=([\d.]+)", out.stdout)
    if not m:
        raise BenchError("loader printed no figures: %s" % out.stdout)
    return int(m.group(1)), int(m.group(2)), float(m.group(3))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repos", type=int, default=env_int("PT_SCALE_REPOS", 100000))
    ap.add_argument("--tags", type=int, default=env_int("PT_SCALE_TAGS", 1000000),
                    help="tags in all: manifests x --tags-per-manifest, the rest in bench/r0")
    ap.add_argument("--blobs", type=int, default=env_int("PT_SCALE_BLOBS", 1000000))
    ap.add_argument("--manifests", type=int, default=env_int("PT_SCALE_MANIFESTS", 100000),
                    help="image manifests, each with one referrer (so twice as many manifests)")
    ap.add_argument("--tags-per-manifest", type=int, default=9)
    ap.add_argument("--pages", type=int, default=1000, help="requests per page workload")
    ap.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--wrk-runs", type=int, default=2,
                    help="alternating wrk runs on each registry (the best of each is kept)")
    ap.add_argument("--cpu-seconds", type=int, default=30)
    ap.add_argument("--start-timeout", type=int, default=300)
    args = ap.parse_args()
    if args.manifests < 1 or args.manifests * 5 > args.blobs:
        ap.error("--blobs must be at least 5 x --manifests (and --manifests >= 1)")
    if args.repos < 1 or args.repos > args.manifests:
        ap.error("--repos must be between 1 and --manifests (each repository gets a manifest)")
    extra = args.tags - args.manifests * args.tags_per_manifest
    if extra < 0:
        ap.error("--tags must be at least --manifests x --tags-per-manifest")
    loader = os.environ.get("PT_GCLOAD_BIN") or os.path.join(
        os.path.dirname(harness.portolan_bin()), "pt_gcload")
    if not os.access(loader, os.X_OK):
        raise BenchError("no loader at %s (cmake --build <dir> --target pt_gcload)" % loader)

    keep = bool(os.environ.get("PT_KEEP_TMP"))
    root = tempfile.mkdtemp(prefix="pt-scalebench-", dir=os.environ.get("PT_BENCH_DATA"))
    rows = []  # (figure, value, target, verdict)
    notes, errors = [], []
    rnd = random.Random(1)

    def row(fig, value, target="", ok=None):
        rows.append((fig, value, target, "" if ok is None else ("ok" if ok else "MISSED")))

    node = empty = None
    try:
        # The reference: a node holding only manifest 0 (bench/r0:t0-0), loaded the same way.
        empty = harness.Node(data_dir=os.path.join(root, "empty", "data"))
        empty.start()
        empty.stop()
        load(loader, empty.data_dir, args, 5, 1, 1, 0)
        tag_url = "/v2/bench/r0/manifests/" + ("t0" if args.tags_per_manifest == 1 else "t0-0")

        node = harness.Node(data_dir=os.path.join(root, "big", "data"))
        node.start()
        node.stop()
        n_tags = args.manifests * args.tags_per_manifest + extra
        print("loading %d repositories, %d tags, %d blobs, %d manifests + %d referrers ..." % (
            args.repos, n_tags, args.blobs, args.manifests, args.manifests), file=sys.stderr)
        cmds, recs, secs = load(loader, node.data_dir, args, args.blobs, args.manifests,
                                args.repos, extra)
        row("load: %d commands, %d records" % (cmds, recs),
            "%.0f s: %.0f commands/s, %.0f records/s" % (secs, cmds / secs, recs / secs))
        row("data directory after the load", "%d MB (metadata %d MB)" % (
            du_mb(node.data_dir), du_mb(os.path.join(node.data_dir, "meta"))))

        first = start_ready(node, args.start_timeout)
        row("first start on the loaded store to /readyz 200", "%.2f s" % first, "< 5 s",
            first < 5)
        node.stop()
        again = start_ready(node, args.start_timeout)
        row("restart to /readyz 200", "%.2f s" % again, "< 5 s", again < 5)
        time.sleep(3)
        rss = status_kib(node.pid(), "RssAnon") / 1024.0
        row("RssAnon at rest", "%.1f MiB" % rss, "< 512 MiB", rss < 512)

        print("catalog and tag-list pages ...", file=sys.stderr)
        cat = ["/v2/_catalog?n=100&last=bench/r%d" % rnd.randrange(args.repos)
               for _ in range(args.pages)]
        pages(node, cat[:20], "warm-up")
        t = pages(node, cat, "catalog")
        p99 = percentile(t, 99)
        row("catalog page (n=100, random last)", "p50 %.2f ms, p99 %.2f ms" % (
            percentile(t, 50), p99), "p99 < 10 ms", p99 < 10)
        big_tags = extra + args.tags_per_manifest * len(range(0, args.manifests, args.repos))
        tl = ["/v2/bench/r0/tags/list?n=100&last=x%d" % rnd.randrange(max(extra, 1))
              for _ in range(args.pages)]
        t = pages(node, tl, "tag list")
        p99 = percentile(t, 99)
        row("tag-list page, bench/r0 (%d tags)" % big_tags, "p50 %.2f ms, p99 %.2f ms" % (
            percentile(t, 50), p99), "p99 < 10 ms", p99 < 10)
        tl = ["/v2/bench/r%d/tags/list?n=100&last=t0-%d" % (
            rnd.randrange(1, args.repos), rnd.randrange(args.tags_per_manifest))
            for _ in range(args.pages)]
        t = pages(node, tl, "tag list")
        p99 = percentile(t, 99)
        row("tag-list page, a random repository", "p50 %.2f ms, p99 %.2f ms" % (
            percentile(t, 50), p99), "p99 < 10 ms", p99 < 10)
        start_ready(empty, 60)
        j = rnd.randrange(args.manifests)
        ref = pages(node, ["/v2/bench/r%d/manifests/%s" % (j % args.repos, (
            "t%d" % (j // args.repos)) if args.tags_per_manifest == 1 else
            "t%d-0" % (j // args.repos))], "manifest")
        notes.append("a random manifest by tag answered in %.2f ms" % ref[0])

        # Both nodes run (the idle one costs nothing); the runs alternate, small registry
        # first, and each side keeps its best, so that a busy moment of the machine does not
        # land on one side only.
        rps_empty = rps = 0.0
        cost = {}  # node -> [CPU seconds, requests] over every run

        def measured(n):
            c0 = cpu_ticks(n.pid())
            r = wrk(n.url + tag_url, args.duration, args.connections)
            c = cost.setdefault(n.port, [0.0, 0.0])
            c[0] += (cpu_ticks(n.pid()) - c0) / float(os.sysconf("SC_CLK_TCK"))
            c[1] += r * args.duration
            return r

        for i in range(args.wrk_runs):
            print("manifest GET, run %d of %d: one manifest, then the loaded registry ..." % (
                i + 1, args.wrk_runs), file=sys.stderr)
            rps_empty = max(rps_empty, measured(empty))
            rps = max(rps, measured(node))
        us = [1e6 * cost[n.port][0] / max(cost[n.port][1], 1) for n in (empty, node)]
        notes.append("node CPU per manifest GET (utime+stime / requests): %.0f us on one "
                     "manifest, %.0f us loaded" % (us[0], us[1]))
        ratio = 100.0 * rps / rps_empty
        row("manifest GET by tag (wrk -c%d %ds, best of %d)" % (
            args.connections, args.duration, args.wrk_runs),
            "%.0f req/s vs %.0f on one manifest = %.0f %%" % (rps, rps_empty, ratio),
            ">= 80 %", ratio >= 80)
        empty.stop()

        print("idle CPU over %d s ..." % args.cpu_seconds, file=sys.stderr)
        hz = os.sysconf("SC_CLK_TCK")
        c0, t0 = cpu_ticks(node.pid()), time.monotonic()
        time.sleep(args.cpu_seconds)
        c1, t1 = cpu_ticks(node.pid()), time.monotonic()
        cpu = 100.0 * (c1 - c0) / hz / (t1 - t0)
        row("idle CPU, single node (utime+stime over %d s)" % args.cpu_seconds,
            "%.2f %% of a core" % cpu, "< 1 %", cpu < 1)
        rss = status_kib(node.pid(), "RssAnon") / 1024.0
        hwm = status_kib(node.pid(), "VmHWM") / 1024.0
        row("RssAnon after the runs (VmHWM %.0f MiB)" % hwm, "%.1f MiB" % rss, "< 512 MiB",
            rss < 512)
    except (BenchError, RuntimeError, OSError, subprocess.SubprocessError) as e:
        errors.append(str(e))
    finally:
        for n in (node, empty):
            if n is not None:
                n.stop()
        if keep:
            print("data kept in %s" % root, file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", root])

    print("scale bench: %d repositories, %d tags, %d blobs, %d manifests with a referrer each"
          % (args.repos, args.manifests * args.tags_per_manifest + max(extra, 0), args.blobs,
             args.manifests))
    w = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in
         enumerate(("figure", "value", "target", "verdict"))]
    fmt = "  %-*s  %-*s  %-*s  %s"
    print(fmt % (w[0], "figure", w[1], "value", w[2], "target", "verdict"))
    for r in rows:
        print(fmt % (w[0], r[0], w[1], r[1], w[2], r[2], r[3]))
    for n in notes:
        print("note: %s" % n)
    for e in errors:
        print("error: %s" % e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
