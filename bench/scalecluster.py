#!/usr/bin/env python3
"""Three regions holding a large registry's metadata: printed figures against targets.

Role: the three-region half of bench/scale.sh (bench/scale.py is the single node's). The
regions run behind the WAN emulator (tests/lib/wan.py, --delay-ms one way) in a child process
(bench/clusterhost.py), access control off.

Steps and figures:
  load          region-a's data directory is laid out by one start and stop of a single region
                named region-a, then filled by pt_gcload with the sizes of bench/scale.py, every
                blob recorded as held by every region (no blob bytes: blob replication then
                has nothing to move, and its idle cost is the figure)
  seed          region-a starts alone with a cluster file of itself and bootstraps the cluster
                from that state (README "A cluster of regions"): the time until its first
                snapshot file is written, and its size
  joins         region-b, then region-c start empty with `--join true` and are added at the
                leader (`portolan cluster add`, tried again while it answers 503), every link
                capped at --catchup-mbps: the time from the add to their /readyz 200, against
                the snapshot bytes they fetched over that bandwidth (target <= 1.5x)
  at rest       RssAnon (target < 512 MiB) and data directory of each region; catalog and
                tag-list pages (n=100 at random offsets, one connection) p99 at the leader and
                at a follower (target < 10 ms); a follower's restart to /readyz (target < 5 s);
                the CPU of each region over --cpu-seconds with nothing asked (blob sync with
                everything replicated)
  manifest GET  wrk by tag at the leader and at a follower, against the same on a second,
                empty three-region cluster holding only that manifest (target >= 80 %)
  fourth region region-d joins while the three take tag writes for --catchup-write-seconds
                (bench/tagput.lua, --clients connections), links capped again: add to ready
                against bytes / bandwidth, write p50/p99/max meanwhile (target p99 < 3 RTT),
                the leader's snapshots written during the run (count, size, seconds) and
                whether the leader and its term stayed the same
Figures only: a missed target does not fail the run. Exit status 1 when something could not
be measured.

    bench/scale.sh --regions 3                       # through scale.sh (builds what is missing)
    python3 bench/scalecluster.py --repos 10000 --tags 100000 --blobs 100000 --manifests 10000
"""

import argparse
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

import clusterhost  # puts tests/lib on sys.path
import harness  # tests/lib
from clusterhost import BenchError, Host

HERE = os.path.dirname(os.path.abspath(__file__))
clusterlib = clusterhost.clusterlib
cbench = clusterhost.load_by_path("pt_cbench", os.path.join(HERE, "cluster.py"))
scale = clusterhost.load_by_path("pt_scale", os.path.join(HERE, "scale.py"))
log = clusterhost.logger("scalecluster")

SETUP_ENV = "PT_SCALECLUSTER_SETUP"  # the child's load settings (JSON), None: empty cluster
REGIONS = 4  # three, then a fourth for the catch-up run
HOST_TIMEOUT = 3600.0  # the child's first answer waits for the load


# -- the cluster process ----------------------------------------------------------------------


def load_first(r, setup):
    """Lays out region r's data directory and fills its store with pt_gcload; writes the
    loader's figures to setup["out"]."""
    os.makedirs(r.data_dir, exist_ok=True)
    node = harness.Node(data_dir=r.data_dir, args=["--region", r.name])
    node.start()
    node.stop()
    holders = ",".join(clusterlib.NAMES[i] for i in range(1, REGIONS))
    p = subprocess.run([setup["loader"], "--meta", os.path.join(r.data_dir, "meta"), "--region",
                        r.name, "--holders", holders, "--blobs", str(setup["blobs"]),
                        "--manifests", str(setup["manifests"]), "--repos", str(setup["repos"]),
                        "--tags-per-manifest", str(setup["tags_per_manifest"]),
                        "--referrers", "1", "--extra-tags", str(setup["extra_tags"])],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError("loader failed: %s" % p.stderr.strip()[-300:])
    with open(setup["out"], "w") as f:
        f.write(p.stdout)


def new_cluster(**kwargs):
    kwargs.setdefault("auth", False)
    c = clusterlib.GrowingCluster(1, REGIONS, **kwargs)
    setup = os.environ.get(SETUP_ENV)
    if setup:
        load_first(c.regions[0], json.loads(setup))
    return c


def op_readyz_restart(c, cmd):
    """Stops a region and starts it again; the seconds from the start to /readyz 200."""
    r = c.region(cmd["region"])
    r.node.stop()
    r.node.ready_path = "/readyz"
    t0 = time.monotonic()
    r.node.start(120)
    return {"ready_s": time.monotonic() - t0, "regions": clusterhost.describe(c)}


HOST_OPS = dict(cbench.HOST_OPS, readyz_restart=op_readyz_restart)


# -- the driver -------------------------------------------------------------------------------


def get_json(url, path, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", clusterhost.port_of(url), timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, (json.loads(body) if r.status == 200 and body else None)
    finally:
        c.close()


def self_status(region):
    try:
        return get_json(region["url"], "/admin/cluster/self")[1] or {}
    except (OSError, http.client.HTTPException, ValueError):
        return {}


class Port:
    """What bench/scale.py's pages() needs of a node."""

    def __init__(self, region):
        self.port = region["port"]


class Bench:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.rows, self.notes, self.errors = [], [], []
        self.host = None
        self.rnd = random.Random(1)

    def row(self, fig, value, target="", ok=None):
        self.rows.append((fig, value, target, "" if ok is None else ("ok" if ok else "MISSED")))

    def note(self, msg):
        self.notes.append(msg)
        log(msg)

    def start(self, name, setup):
        """A cluster process whose region-a is loaded with setup (None: empty)."""
        if setup:
            os.environ[SETUP_ENV] = json.dumps(setup)
        try:
            return Host(__file__, os.path.join(self.work, name), self.args.delay_ms,
                        ["--max-connections-per-address=1024"] + self.args.portolan_arg,
                        HOST_TIMEOUT)
        finally:
            os.environ.pop(SETUP_ENV, None)

    def add_region(self, host, capped):
        """Starts the next region with --join true, adds it at the leader (again while the
        leader answers 503, i.e. is still seeding) and waits for its /readyz 200; returns
        (seconds from the add to ready, its snapshot counters)."""
        lead = host.region(host.call("leader")["leader"])
        joined = host.call("join")
        if capped:
            host.call("bandwidth", bps=self.args.catchup_mbps * 1e6)
        try:
            t0 = time.monotonic()
            deadline = t0 + 300
            while True:
                try:
                    clusterhost.cluster_add(lead["url"], joined)
                    break
                except BenchError as e:
                    if "503" not in str(e) and "unavailable" not in str(e).lower() or \
                            time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)

            def ready():
                try:
                    st, _ = get_json(joined["url"], "/readyz", timeout=5)
                except (OSError, http.client.HTTPException, ValueError):
                    return None
                return st == 200
            if not harness.wait_for(ready, 1800, 0.02):
                raise BenchError("%s never answered /readyz 200" % joined["name"])
            secs = time.monotonic() - t0
        finally:
            if capped:
                host.call("bandwidth", bps=None)
        return secs, self_status(joined).get("snapshots", {}), joined

    def catch_up_row(self, label, secs, snaps):
        fetched = snaps.get("fetch_bytes", 0)
        bound = fetched / (self.args.catchup_mbps * 1e6)
        ratio = secs / bound if bound else float("inf")
        self.row("%s: add to /readyz" % label,
                 "%.1f s for %.0f MB fetched (%.1f s at %.0f MB/s): %.2fx" % (
                     secs, fetched / 1e6, bound, self.args.catchup_mbps, ratio),
                 "<= 1.5x", ratio <= 1.5)
        if not fetched:
            self.errors.append("%s caught up without fetching a snapshot file: %s" % (
                label, snaps))

    def load_figures(self, out_path, seed_s, a):
        with open(out_path) as f:
            m = re.search(r"commands=(\d+) records=(\d+) seconds=([\d.]+)", f.read())
        if m:
            cmds, recs, secs = int(m.group(1)), int(m.group(2)), float(m.group(3))
            self.row("load into region-a: %d commands, %d records" % (cmds, recs),
                     "%.0f s: %.0f commands/s" % (secs, cmds / secs))
        st = self_status(a).get("snapshots", {})
        self.row("seed: start to the first snapshot file", "%.1f s, %.0f MB" % (
            seed_s, st.get("last_bytes", 0) / 1e6))

    def at_rest(self, host, lead, follower):
        a = self.args
        for r in host.regions:
            rss = scale.status_kib(r["pid"], "RssAnon") / 1024.0
            self.row("%s RssAnon at rest, data directory" % r["name"], "%.0f MiB, %d MB" % (
                rss, scale.du_mb(r["data_dir"])), "< 512 MiB", rss < 512)
        extra = a.tags - a.manifests * a.tags_per_manifest
        for who, r in (("leader", lead), ("follower", follower)):
            node = Port(r)
            cat = ["/v2/_catalog?n=100&last=bench/r%d" % self.rnd.randrange(a.repos)
                   for _ in range(a.pages)]
            scale.pages(node, cat[:20], "warm-up")
            t = scale.pages(node, cat, "catalog")
            p99 = scale.percentile(t, 99)
            self.row("catalog page at the %s" % who, "p50 %.2f ms, p99 %.2f ms" % (
                scale.percentile(t, 50), p99), "p99 < 10 ms", p99 < 10)
            tl = ["/v2/bench/r0/tags/list?n=100&last=x%d" % self.rnd.randrange(max(extra, 1))
                  for _ in range(a.pages)]
            t = scale.pages(node, tl, "tag list")
            p99 = scale.percentile(t, 99)
            self.row("tag-list page (bench/r0) at the %s" % who, "p50 %.2f ms, p99 %.2f ms" % (
                scale.percentile(t, 50), p99), "p99 < 10 ms", p99 < 10)
        hz = os.sysconf("SC_CLK_TCK")
        c0 = {r["name"]: scale.cpu_ticks(r["pid"]) for r in host.regions}
        t0 = time.monotonic()
        time.sleep(a.cpu_seconds)
        secs = time.monotonic() - t0
        cpu = {r["name"]: 100.0 * (scale.cpu_ticks(r["pid"]) - c0[r["name"]]) / hz / secs
               for r in host.regions}
        worst = max(cpu.values())
        self.row("idle CPU over %d s (blob sync, everything replicated)" % a.cpu_seconds,
                 ", ".join("%s %.2f %%" % kv for kv in sorted(cpu.items())), "< 1 %",
                 worst < 1)
        ready_s = host.call("readyz_restart", region=follower["name"])["ready_s"]
        self.row("%s (a follower) restart to /readyz 200" % follower["name"], "%.2f s" % ready_s,
                 "< 5 s", ready_s < 5)

    def gets(self, host, lead, follower, tag_path):
        """{"leader": req/s, "follower": req/s}: the best of --wrk-runs wrk runs each."""
        out = {}
        for who, r in (("leader", lead), ("follower", follower)):
            best = 0.0
            for _ in range(self.args.wrk_runs):
                best = max(best, scale.wrk(r["url"] + tag_path, self.args.duration,
                                           self.args.connections))
            out[who] = best
        return out

    def fourth_region(self, host, lead):
        """region-d joins while the three take tag writes."""
        live = list(host.regions)
        repos = {}
        for r in live:
            repo = "bench/tags-" + r["name"]
            img = cbench.push_image(r["url"], repo, "base", repo)
            path = os.path.join(self.work, "manifest-%s.json" % r["name"])
            with open(path, "wb") as f:
                f.write(img.bytes)
            repos[r["name"]] = (repo, path, img.media_type)
        before = self_status(lead)
        log_path = os.path.join(os.path.dirname(lead["data_dir"]), "node.log")
        log_from = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        conns = max(1, self.args.clients // len(live))
        body = 'dofile("%s")\n' % cbench.TAGPUT.replace("\\", "\\\\").replace('"', '\\"')
        runs = [(r, cbench.WrkRun(self.work, "catchup-%s" % r["name"], r["url"],
                                  self.args.catchup_write_seconds, 1, conns, body,
                                  repos[r["name"]])) for r in live]
        result = {}

        def join():
            try:
                result["v"] = self.add_region(host, True)
            except BenchError as e:
                result["e"] = e
        time.sleep(2)  # writes first: a snapshot may start meanwhile
        th = threading.Thread(target=join, daemon=True)
        th.start()
        th.join(self.args.catchup_write_seconds + 1800)
        res = [w.wait() for _, w in runs]
        after = self_status(lead)
        if "e" in result:
            raise result["e"]
        secs, snaps, joined = result["v"]
        self.catch_up_row("region-d during writes", secs, snaps)
        p50 = cbench.merged_percentile(res, 50.0)
        p99 = cbench.merged_percentile(res, 99.0)
        worst = max(r.get("max_us", 0) for r in res) / 1000.0
        rps = sum(r["rps"] for r in res)
        rtt = self.rtt
        self.row("tag writes at the three meanwhile (%d conns, %d s)" % (
            conns * len(live), self.args.catchup_write_seconds),
            "%.0f/s, p50 %.0f ms, p99 %.0f ms, max %.0f ms" % (rps, p50, p99, worst),
            "p99 < %.0f ms (3 RTT)" % (3 * rtt), p99 < 3 * rtt)
        for r, x in zip(live, res):
            if x["non2xx"] or x["socket_errors"]:
                self.errors.append("writes at %s: %d non-2xx, %d socket errors of %d" % (
                    r["name"], x["non2xx"], x["socket_errors"], x["requests"]))
        written = []
        with open(log_path, "rb") as f:
            f.seek(log_from)
            for line in f:
                if b"raft snapshot written" in line:
                    try:
                        d = json.loads(line)
                        written.append((d.get("bytes", 0), d.get("ms", 0)))
                    except ValueError:
                        pass
        same = (after.get("leader_id") == before.get("leader_id")
                and after.get("term") == before.get("term"))
        self.row("leader's snapshots written during the writes",
                 "%d: %s; leader and term kept: %s" % (
                     len(written), ", ".join("%.0f MB in %.1f s" % (b / 1e6, ms / 1000.0)
                                             for b, ms in written) or "none",
                     "yes" if same else "NO (%s -> %s)" % (
                         (before.get("leader_id"), before.get("term")),
                         (after.get("leader_id"), after.get("term")))),
                 "leadership kept", same)

    def run(self):
        a = self.args
        out_path = os.path.join(self.work, "load.out")
        extra = a.tags - a.manifests * a.tags_per_manifest
        setup = {"loader": a.loader, "blobs": a.blobs, "manifests": a.manifests,
                 "repos": a.repos, "tags_per_manifest": a.tags_per_manifest,
                 "extra_tags": extra, "out": out_path}
        log("loading region-a: %d repositories, %d tags, %d blobs, %d manifests + referrers"
            % (a.repos, a.tags, a.blobs, a.manifests))
        tag_path = "/v2/bench/r0/manifests/" + ("t0" if a.tags_per_manifest == 1 else "t0-0")
        rps_loaded = None
        try:
            self.host = host = self.start("loaded", setup)
            t_up = time.monotonic()
            first = host.region("region-a")
            if not harness.wait_for(
                    lambda: self_status(first).get("snapshots", {}).get("taken"), 600, 0.1):
                raise BenchError("region-a wrote no snapshot of its seeded state")
            self.load_figures(out_path, time.monotonic() - t_up, first)
            self.rtt = host.call("rtt")["rtt_ms"]
            self.note("emulated round trip between regions: %.1f ms" % self.rtt)
            for label in ("region-b", "region-c"):
                secs, snaps, _ = self.add_region(host, True)
                self.catch_up_row("%s joins" % label, secs, snaps)
            host.call("converge", timeout=600)
            lead = host.region(host.call("leader")["leader"])
            follower = [r for r in host.regions if r["name"] != lead["name"]][0]
            self.at_rest(host, lead, follower)
            host.call("leader")
            lead = host.region(host.leader)
            follower = [r for r in host.regions if r["name"] != lead["name"]][0]
            rps_loaded = self.gets(host, lead, follower, tag_path)
            if a.catchup_write_seconds:
                self.fourth_region(host, lead)
        except (BenchError, OSError, RuntimeError, subprocess.SubprocessError,
                scale.BenchError) as e:
            self.errors.append("%s: %s" % (type(e).__name__, e))
        finally:
            if self.host is not None:
                self.host.close()
                self.host = None
        if rps_loaded is None:
            return
        # The same GETs on an empty cluster of three holding only that manifest.
        try:
            self.host = host = self.start("empty", None)
            for _ in ("region-b", "region-c"):
                self.add_region(host, False)
            host.call("converge")
            lead = host.region(host.call("leader")["leader"])
            follower = [r for r in host.regions if r["name"] != lead["name"]][0]
            self.push_tag0(lead)
            host.call("converge")
            rps_empty = self.gets(host, lead, follower, tag_path)
            for who in ("leader", "follower"):
                ratio = 100.0 * rps_loaded[who] / rps_empty[who]
                self.row("manifest GET by tag at the %s (wrk -c%d %ds, best of %d)" % (
                    who, a.connections, a.duration, a.wrk_runs),
                    "%.0f req/s vs %.0f empty = %.0f %%" % (
                        rps_loaded[who], rps_empty[who], ratio), ">= 80 %", ratio >= 80)
        except (BenchError, OSError, RuntimeError, subprocess.SubprocessError,
                scale.BenchError) as e:
            self.errors.append("empty cluster: %s: %s" % (type(e).__name__, e))
        finally:
            if self.host is not None:
                self.host.close()
                self.host = None

    def push_tag0(self, lead):
        """An image of pt_gcload's shape (a config and four layers of 4096 bytes) as
        bench/r0:<tag 0>, so that both clusters answer the same GET (the loaded manifests
        name blobs that exist nowhere as bytes: they cannot be pushed through the API)."""
        img = harness.make_image(layers=4, layer_size=4096)
        cl = harness.Client(lead["url"], timeout=30)
        try:
            img.push(cl, "bench/r0", "t0" if self.args.tags_per_manifest == 1 else "t0-0")
        finally:
            cl.close()


def report(b, args, started):
    print("scale bench, three regions (RTT %s): %d repositories, %d tags, %d blobs, %d "
          "manifests with a referrer each; %.0f s" % (
              "%.0f ms" % b.rtt if hasattr(b, "rtt") else "?", args.repos, args.tags,
              args.blobs, args.manifests, time.monotonic() - started))
    w = [max([len(r[i]) for r in b.rows] + [len(h)]) for i, h in
         enumerate(("figure", "value", "target", "verdict"))]
    fmt = "  %-*s  %-*s  %-*s  %s"
    print(fmt % (w[0], "figure", w[1], "value", w[2], "target", "verdict"))
    for r in b.rows:
        print(fmt % (w[0], r[0], w[1], r[1], w[2], r[2], r[3]))
    for n in b.notes:
        print("note: %s" % n)
    for e in b.errors:
        print("error: %s" % e)


def main(argv):
    if len(argv) == 2 and argv[0] == "--host":
        clusterhost.host_main(json.loads(argv[1]), new_cluster, HOST_OPS)
        return 0
    env = scale.env_int
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repos", type=int, default=env("PT_SCALE_REPOS", 100000))
    ap.add_argument("--tags", type=int, default=env("PT_SCALE_TAGS", 1000000))
    ap.add_argument("--blobs", type=int, default=env("PT_SCALE_BLOBS", 1000000))
    ap.add_argument("--manifests", type=int, default=env("PT_SCALE_MANIFESTS", 100000))
    ap.add_argument("--tags-per-manifest", type=int, default=9)
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=10, help="seconds of each GET wrk run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--wrk-runs", type=int, default=2)
    ap.add_argument("--cpu-seconds", type=int, default=30)
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--catchup-mbps", type=float, default=100.0)
    ap.add_argument("--catchup-write-seconds", type=int, default=60,
                    help="tag writes while region-d joins; 0 skips that run")
    ap.add_argument("--clients", type=int, default=64, help="connections of those writes")
    ap.add_argument("--portolan-arg", action="append", default=[])
    args = ap.parse_args(argv)
    if args.manifests < 1 or args.manifests * 5 > args.blobs or \
            not 1 <= args.repos <= args.manifests or \
            args.tags < args.manifests * args.tags_per_manifest:
        ap.error("blobs >= 5 x manifests >= 5, 1 <= repos <= manifests, "
                 "tags >= manifests x tags-per-manifest")
    args.loader = os.environ.get("PT_GCLOAD_BIN") or os.path.join(
        os.path.dirname(harness.portolan_bin()), "pt_gcload")
    if not os.access(args.loader, os.X_OK):
        print("no loader at %s" % args.loader, file=sys.stderr)
        return 2
    return clusterhost.run_bench(Bench, report, args, "pt-scalecluster-", log)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
