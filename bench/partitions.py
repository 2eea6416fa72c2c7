#!/usr/bin/env python3
"""Three regions of one Portolan cluster partitioned in four ways under load: per partition
kind and region, the longest time without an acknowledged write and the time to the first
write after the heal, printed as one table next to the availability goal.

Role: the driver behind bench/partitions.sh. It starts three regions with
tests/lib/partition.py (each in a network namespace of its own, links cut by nftables
rules on the raft + peer ports; the WAN emulator's cuts, with no delay, when namespaces are
unavailable), and runs tests/lib/partition_load.py's scenarios one after the other on that
one cluster, --runs times each (a writer, a reader and a blob uploader per region, see that
module): leader-isolated, follower-isolated (the leader on the majority side), bridge (the
leader at one end, A-C cut) and flapping (the leader-follower link cut and mended every
0.2-0.5 s). tests/integration/test_partitions.py runs the same scenarios once and asserts
on them; this prints their spread.

Figures, per scenario and region (over the runs: the worst, and min-max):
  longest gap      the longest time between the cut and the heal without a 201 at that
                   region (from the cut to the first, between two, from the last to the heal)
  first write      from the heal to the first 201 completed at that region after it
Goal: where the region reached a majority (itself and the regions it had a link to) the
whole time, gap <= 2.5 s (election time 1-2 s plus pre-vote, vote and a round trip); every
region's first write <= 1 s after the heal. A region cut off from the majority has no gap
goal ("-"). Each run's correctness findings (400s to writes whose blobs existed, answers
other than 201/503 for writes, regions that did not converge) are printed under the table;
tests/integration/test_partitions.py judges linearizability.

Exit status 1 when a scenario could not be run (the cluster did not start, no leader, a
transfer failed) or a correctness finding was made, 0 otherwise (a figure that misses the
goal does not fail the run).
"""

import argparse
import os
import random
import sys
import time

import clusterhost  # puts tests/lib first on sys.path

import partition  # noqa: E402  (tests/lib)
import partition_load as pl  # noqa: E402  (tests/lib)
import harness  # noqa: E402  (tests/lib)

log = clusterhost.logger("partitions-bench")


def spread(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    return "%.2f-%.2f" % (min(vals), max(vals)) if len(vals) > 1 else "%.2f" % vals[0]


def worst(values):
    """The largest value, None counting as infinite (no write at all); None when empty."""
    if not values:
        return None
    return float("inf") if any(v is None for v in values) else max(values)


def fmt(v):
    if v is None:
        return "-"
    return "none" if v == float("inf") else "%.2f" % v


class Bench:
    def __init__(self, args):
        self.args = args
        self.runs = {}  # (kind, role) -> list of figures dicts (with "region")
        self.notes = []
        self.elections = []  # leader-isolated: seconds from the cut to an agreed new leader
        self.errors = []
        self.network = ""

    def run(self):
        a = self.args
        rnd = random.Random(a.seed)
        c = partition.PartitionCluster(3, mode=a.net)
        self.network = c.describe_network()
        log(self.network)
        with c:
            lead = c.wait_leader(timeout=30)
            repo = harness.unique_repo("partitions-bench")
            base = harness.make_image(layers=1, layer_size=512)
            with lead.client() as cl:
                base.push(cl, repo, "base")
            c.wait_converged(timeout=20)
            for i in range(a.runs):
                for kind in a.scenarios:
                    self.one(c, repo, base, kind, i, rnd)

    def one(self, c, repo, base, kind, i, rnd):
        a = self.args
        tags = ["%s-%d-%d" % (kind, i, k) for k in range(5)]
        load = pl.Load(c, repo, base, tags, seed=rnd.random())
        sc = None
        t0 = time.monotonic()
        try:
            sc = pl.run_scenario(c, kind, load, a.flap_hold if kind == "flapping" else a.hold,
                                 random.Random(rnd.random()))
        except AssertionError as e:
            self.errors.append(("%s run %d" % (kind, i + 1), str(e)))
        finally:
            c.heal()
            load.stop()
        if sc is None:
            return
        figs = sc.figures(load)
        for name, f in figs.items():
            self.runs.setdefault((kind, f["role"]), []).append(dict(f, region=name))
        if kind == "leader-isolated":
            self.elections.append(sc.elected)
        what = "%s run %d" % (kind, i + 1)
        if load.bad400:
            self.errors.append((what, "%d writes whose blobs existed answered 400, e.g. %s" % (
                len(load.bad400), load.bad400[0][:160])))
        if load.unexpected:
            self.errors.append((what, "%d unexpected answers, e.g. %s" % (
                len(load.unexpected), load.unexpected[0][:160])))
        try:
            c.wait_leader(timeout=20)
            c.wait_converged(timeout=30)
        except AssertionError as e:
            self.errors.append((what, "after the heal: %s" % e))
        for r in c.dead():
            self.errors.append((what, "%s died: %s" % (r.name, r.node.death_note())))
        log("%s: %.0f s; %s" % (what, time.monotonic() - t0, "; ".join(
            "%s gap %.2f heal %s" % (n, f["gap"], fmt(f["heal"])) for n, f in figs.items())))


def report(b, args, started):
    print("Portolan partition bench: 3 regions, %d run(s) per partition kind, held %.0f s "
          "(flapping %.0f s), %d cores, %s, total %.0fs"
          % (args.runs, args.hold, args.flap_hold, os.cpu_count() or 0,
             time.strftime("%Y-%m-%d %H:%M"), time.monotonic() - started))
    print("portolan binary: %s" % harness.portolan_bin())
    print("links: %s" % b.network)
    head = ("partition / region's role", "samples", "longest gap s", "min-max", "goal", "met",
            "first write s", "min-max", "goal", "met")
    lines = []
    for kind in args.scenarios:
        for (k, role), runs in b.runs.items():
            if k != kind:
                continue
            majority = all(f["majority"] for f in runs)
            gap = worst([f["gap"] for f in runs])
            heal = worst([f["heal"] for f in runs])
            lines.append(("%s / %s" % (kind, role), str(len(runs)), fmt(gap),
                          spread([f["gap"] for f in runs]),
                          "<= %.1f" % pl.GOAL_GAP if majority else "-",
                          clusterhost.verdict(gap, "max", pl.GOAL_GAP) if majority else "",
                          fmt(heal), spread([f["heal"] for f in runs]),
                          "<= %.1f" % pl.GOAL_HEAL, clusterhost.verdict(heal, "max",
                                                                        pl.GOAL_HEAL)))
    clusterhost.print_table(head, lines)
    notes = ["gap: longest time between cut and heal without a 201 at a region; first "
             "write: heal to the first 201 there ('none': none within %.0f s); the worst "
             "sample, then min-max; samples: runs x regions in that role (the leader's "
             "region differs between runs)" % pl.POST_MAX]
    if b.elections:
        notes.append("leader-isolated: the two others agreed on a new leader %s s after the "
                     "cut (polled every 50 ms; election timeout 1-2 s)" % spread(b.elections))
    clusterhost.print_notes(notes + b.notes, b.errors)


def main(argv):
    ap = argparse.ArgumentParser(description="Three Portolan regions partitioned four ways "
                                 "under load: write availability per region, with the goal.")
    env = os.environ.get
    ap.add_argument("--runs", type=int, default=int(env("PT_BENCH_PARTITION_RUNS", 3)),
                    help="runs of each partition kind (default 3)")
    ap.add_argument("--hold", type=float, default=8.0,
                    help="seconds each partition is held (default 8)")
    ap.add_argument("--flap-hold", type=float, default=10.0,
                    help="seconds the link flaps (default 10)")
    ap.add_argument("--scenarios", default=",".join(pl.SCENARIOS),
                    help="comma-separated subset of %s" % ",".join(pl.SCENARIOS))
    ap.add_argument("--net", default=env("PT_PARTITION_NET", "auto"),
                    choices=("auto", "netns", "wan"),
                    help="how links are cut (default auto: namespaces when available)")
    ap.add_argument("--seed", type=int, default=1, help="the load's random seed")
    args = ap.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    if not (1 <= args.runs <= 50 and 1 <= args.hold <= 120 and 1 <= args.flap_hold <= 120
            and args.scenarios and set(args.scenarios) <= set(pl.SCENARIOS)):
        ap.error("runs 1..50, hold and flap-hold 1..120 s, scenarios among %s"
                 % ",".join(pl.SCENARIOS))
    started = time.monotonic()
    b = Bench(args)
    try:
        b.run()
    except (AssertionError, RuntimeError, OSError) as e:
        b.errors.append(("cluster", str(e)))
    report(b, args, started)
    return 1 if b.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
