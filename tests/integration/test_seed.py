"""A region that holds state bootstraps a cluster from it (README "A cluster of regions"): a
single region given a cluster file, or a restored backup; and a region whose snapshot takes
long to fetch is still added as a voter.

Role: checks replication/raft_seed.c against real processes (access control on):
  - single_region_grows: a single region takes three images; stopped, it is started again
    with a cluster file that lists only itself. Its earlier images are still served, a push
    after the change is acknowledged and served (before the seed, the first writes of the new
    log were skipped as "already applied": acknowledged, never stored), a second region
    started with `--join true` is added with `portolan cluster add` (tried again while the
    seeding region still answers 503) while it is stopped (SIGSTOP) for longer than raft 0.15
    lets a catch-up round last, and is a voter in the end; it catches up (equal state digests) and serves every manifest, old and new, and every
    blob, which it fetches from the first region (the blobs the single region recorded under
    its old name "local" are claimed by region-a when the seed is made). The first region then restarts and still serves all of it.
  - seed_refused: a region that holds state refuses to start with a cluster file listing
    other regions too (they would bootstrap a log without that state) and refuses `--join
    true` (a joining region starts empty), naming the fix in its log; the refused starts
    leave the state as it was: it still serves its images as a single region.
"""

import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, HERE)

import cluster  # noqa: E402
import harness as h  # noqa: E402
import test_backup as backup  # noqa: E402
import test_cluster_ops as ops  # noqa: E402

TIMEOUT = 240
REPO = "seed/app"
STOPPED_S = 8  # region-b is stopped this long as it is added: longer than a 5 s catch-up round


def push_images(cl, tags):
    imgs = {}
    for tag in tags:
        img = h.make_image(layers=2, layer_size=2048)
        img.push(cl, REPO, tag)
        imgs[tag] = img
    return imgs


def serving_problems(region_client, imgs):
    """What region_client serves wrongly of imgs ({tag: Manifest}): manifests by tag and
    digest, blobs."""
    bad = []
    for tag, img in imgs.items():
        bad += backup.pull_all(region_client, REPO, img, tag)
    return bad


def check_served(t, region, imgs, timeout, what):
    """Checks that region serves imgs within timeout (it may still be fetching blobs)."""
    with region.client() as cl:
        if not ops.wait_for(lambda: not serving_problems(cl, imgs), timeout):
            t.check(False, "%s serves wrongly: %s" % (
                what, "; ".join(serving_problems(cl, imgs)[:4])))


def single_region_grows(results):
    t = results
    c = cluster.GrowingCluster(1, 2)
    a, b = c.regions
    try:
        # 1. The same data directory and port first serve a single region.
        os.makedirs(a.data_dir, exist_ok=True)
        with h.Node(data_dir=a.data_dir, port=a.port, auth=True,
                    admin_password=c.admin.password) as single:
            single.wait_auth()
            with single.client() as cl:
                before = push_images(cl, ["v1", "v2", "v3"])
            single.stop()
        # 2. The region bootstraps a cluster of itself from that state.
        c.start()
        lead = c.wait_leader()
        t.require(lead is a, "leader %s" % lead)
        t.check(a.log_grep("bootstrapping a cluster from this region's state"),
                "region-a's log does not say it bootstraps from its state")
        with a.client() as cl:
            bad = serving_problems(cl, before)
            t.check(not bad, "region-a after the change: %s" % "; ".join(bad[:4]))
            after = push_images(cl, ["n1", "n2"])
            bad = serving_problems(cl, after)
            t.check(not bad, "pushed after the change: %s" % "; ".join(bad[:4]))
        everything = dict(before, **after)
        # 3. A second region joins and receives that state as a snapshot. It is stopped
        # (SIGSTOP) for longer than raft lets one catch-up round last (5 s) right after it
        # started: it is added as a voter all the same (a standby until it has caught up).
        c.join(b)
        refused = []

        def added():
            rc, out, err = ops.cli(c, "add", "--region", a.url, "--name", b.name, "--id",
                                   str(b.id), "--address", b.raft_address, "--url", b.url,
                                   "--role", "voter", "--timeout", "120s")
            if rc != 0:
                refused.append((err or out).strip()[:200])
            return rc == 0

        done = {}
        adder = threading.Thread(target=lambda: done.update(ok=ops.wait_for(added, 150, 1.0)),
                                 daemon=True)
        os.kill(b.node.pid(), signal.SIGSTOP)
        t_add = time.monotonic()
        try:
            adder.start()
            time.sleep(STOPPED_S)
        finally:
            os.kill(b.node.pid(), signal.SIGCONT)
        adder.join(160)
        add_s = time.monotonic() - t_add
        t.require(done.get("ok"), "portolan cluster add region-b: %s" % refused[-3:])
        t.check(add_s >= STOPPED_S, "added in %.1f s, while stopped for %d s" % (
            add_s, STOPPED_S))
        members = {m.get("id"): m.get("role") for m in (a.members() or {}).get("regions", [])}
        t.check(members.get(b.id) == "voter", "region-b's role: %s" % members)
        if results.verbose:
            print("  region-b added as a voter in %.1f s (stopped for the first %d s)" % (
                add_s, STOPPED_S))
        conv = c.wait_converged(timeout=60, among=[a, b])
        t.check(conv, "region-a and region-b did not converge: %s" % c.digests([a, b]))
        check_served(t, b, everything, 60, "region-b")
        layer = before["v1"].blobs[-1][0]
        held = ops.wait_for(lambda: b.blob_file_digest(layer) == layer, 60)
        t.check(held, "region-b never held %s (a blob of before the change) itself" % layer)
        st = b.status() or {}
        snaps = st.get("snapshots") or {}
        t.check(st.get("leader_id") == a.id, "region-b /admin/cluster/self: %s" % st)
        if results.verbose:
            print("  region-b: %s" % snaps)
        # 4. The first region restarts on the seeded log.
        c.restart(a)
        c.wait_leader(timeout=60)
        with a.client() as cl:
            bad = serving_problems(cl, everything)
            t.check(not bad, "region-a after a restart: %s" % "; ".join(bad[:4]))
            more = push_images(cl, ["r1"])
        conv = c.wait_converged(timeout=60, among=[a, b])
        t.check(conv, "not converged after the restart: %s" % c.digests([a, b]))
        check_served(t, b, more, 30, "region-b after region-a's restart")
    finally:
        c.stop()
        c.cleanup()


def refused_start(node, extra, cluster_file, words):
    """(refused as expected, text): `portolan serve` on node's data directory with extra
    flags must exit non-zero within 60 s and log every one of words."""
    cmd = node.command() + ["--cluster-file", cluster_file, "--region", "region-a",
                            "--peer-tls", "off"] + extra
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
    except subprocess.TimeoutExpired:
        return False, "still running after 60 s"
    text = p.stdout + p.stderr
    return p.returncode != 0 and all(w in text for w in words), "exit %d: %s" % (
        p.returncode, text[-400:])


def seed_refused(results):
    t = results
    with h.Node(auth=True) as node:
        node.wait_auth()
        with node.client() as cl:
            imgs = push_images(cl, ["v1"])
        node.stop()
        ports = [h.free_port() for _ in range(2)]
        two = os.path.join(node.root, "two.yaml")
        with open(two, "w") as f:
            f.write("cluster_id: seed-test\nregions:\n")
            for i, name in enumerate(("region-a", "region-b")):
                f.write("  - name: %s\n    id: %d\n    address: 127.0.0.1:%d\n"
                        "    url: http://127.0.0.1:%d\n" % (name, i + 1, ports[i], 1 + i))
        one = os.path.join(node.root, "one.yaml")
        with open(one, "w") as f:
            f.write("cluster_id: seed-test\nregions:\n  - name: region-a\n    id: 1\n"
                    "    address: 127.0.0.1:%d\n    url: %s\n" % (ports[0], node.url))
        ok, text = refused_start(node, [], two, ["list only this region", "cluster add"])
        t.check(ok, "start with a two-region cluster file: %s" % text)
        ok, text = refused_start(node, ["--join", "true"], one, ["empty data directory"])
        t.check(ok, "start with --join true: %s" % text)
        node.start()
        with node.client() as cl:
            bad = serving_problems(cl, imgs)
            t.check(not bad, "the single region after the refused starts: %s" % "; ".join(
                bad[:4]))


def main(results):
    if results.target != "portolan":
        raise h.Skip("clusters are portolan-only")
    results.run("single_region_grows", single_region_grows, results)
    results.run("seed_refused", seed_refused, results)
