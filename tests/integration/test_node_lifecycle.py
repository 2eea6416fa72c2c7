"""A region's life under an orchestrator: readiness (/readyz) and graceful shutdown (SIGTERM).

Role: checks README.md's "Probes" and "Stopping a region" against real `portolan serve`
processes (tests/lib/cluster.py, three regions on loopback, access control and peer mTLS on):
  - single_region_ready: a single region answers /readyz 200 {"ready":true} (GET and HEAD),
    open without credentials, and portolan_ready is 1; POST is refused with 405;
  - not_ready_until_caught_up: one region of three started alone answers 503 "no leader known
    yet" (one of three elects nobody); once the others run, every region turns ready and
    reaches the leader's commit index read then;
  - late_region_catches_up: a region stopped while 300 writes land (snapshots every 64
    entries, so it catches up from a snapshot) is restarted; the first 200 it gives on
    /readyz comes only once its applied index has reached the leader's commit index read
    before the restart, and the last write is readable there;
  - leader_sigterm_hands_over: SIGTERM to the leader of three while a writer PUTs tags at the
    followers: the leader logs that it handed leadership over before it exits (no election:
    the new leader is the one it named), it exits with status 0, /readyz at the leader
    never answers 200 again once it answered 503, and every acknowledged write is served by
    both remaining regions. The longest time without an acknowledged write is printed (-v);
    only correctness is asserted, not time.
"""

import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, HERE)

import cluster  # noqa: E402
import harness as h  # noqa: E402
import test_cluster_ops as ops  # noqa: E402

TIMEOUT = 300
LATE_WRITES = 300
SNAPSHOT_EVERY = 64


def readyz(region_or_url, method="GET"):
    """(status, body dict or None) of /readyz, or (None, None) when nothing answers."""
    url = region_or_url if isinstance(region_or_url, str) else region_or_url.url
    try:
        with h.Client(url, timeout=5) as cl:
            r = cl.request(method, "/readyz")
    except ops.ERRORS:
        return None, None
    try:
        body = r.json() if method == "GET" else None
    except ValueError:
        body = None
    return r.status, body


def metric(url, name):
    with h.Client(url, timeout=5) as cl:
        r = cl.get("/metrics")
    for line in r.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def wait_ready(region, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = readyz(region)
        if status == 200:
            return True
        time.sleep(0.05)
    return False


def single_region_ready(results):
    t = results
    with h.Node(auth=True) as node:
        status, body = readyz(node.url)
        t.eq(status, 200, "GET /readyz without credentials")
        t.eq(body, {"ready": True}, "GET /readyz body")
        status, _ = readyz(node.url, "HEAD")
        t.eq(status, 200, "HEAD /readyz")
        status, _ = readyz(node.url, "POST")
        t.eq(status, 405, "POST /readyz")
        t.eq(metric(node.url, "portolan_ready"), 1.0, "portolan_ready")


def not_ready_until_caught_up(results):
    t = results
    c = cluster.Cluster(3)
    try:
        for r in c.regions:
            c._write_cluster_file(r)
            os.makedirs(r.data_dir, exist_ok=True)
            r.node = c.make_node(r)
        first = c.regions[0]
        first.node.start(c.start_timeout)
        # Alone, one of three regions can elect nobody: it must not claim to be ready.
        time.sleep(2.5)  # past an election timeout
        status, body = readyz(first)
        t.eq((status, body), (503, {"ready": False, "reason": "no leader known yet"}),
             "/readyz of %s alone" % first.name)
        t.eq(metric(first.url, "portolan_ready"), 0.0, "portolan_ready of %s alone" % first.name)
        for r in c.regions[1:]:
            r.node.start(c.start_timeout)
        lead = c.wait_leader()
        commit = lead.status()["commit_index"]
        for r in c.regions:
            t.check(wait_ready(r, 60), "%s not ready within 60 s: %s" % (r.name, readyz(r)))
            # Every region started before `commit` was read, so its catch-up read may have
            # begun earlier and a ready region may trail the leader by a heartbeat: it has to
            # reach that index, not to be there at its first 200 (late_region_catches_up
            # checks that, with the commit index read before the region starts).
            applied = [None]

            def reached(r=r):
                applied[0] = (r.status() or {}).get("applied_index", -1)
                return applied[0] >= commit
            t.check(ops.wait_for(reached, 10), "%s ready, applied index %s, below the leader's "
                    "commit index %d" % (r.name, applied[0], commit))
    finally:
        c.stop()
        c.cleanup()


def late_region_catches_up(results):
    t = results
    with cluster.Cluster(3, args=("--snapshot-every", str(SNAPSHOT_EVERY))) as c:
        lead = c.wait_leader()
        late = [x for x in c.regions if x is not lead][0]
        repo = h.unique_repo("late")
        base = h.make_image(layers=1, layer_size=256)
        with lead.client() as cl:
            base.push(cl, repo, "base")
        c.wait_converged(timeout=30)
        late.node.stop()
        live = [x for x in c.regions if x is not late]
        tags = ["w-%04d" % i for i in range(LATE_WRITES)]
        pushed, failures, _ = ops.push_tags(live, repo, base, tags)
        t.require(not failures, "%d writes failed: %s" % (len(failures), "; ".join(failures[:3])))
        lead = c.wait_leader(among=live)
        target = lead.status()["commit_index"]
        ops.note(results, "%d writes while %s was down; leader commit index %d" % (
            len(pushed), late.name, target))
        late.node.start(c.start_timeout)
        seen = []
        deadline = time.monotonic() + 120
        ready_at = None
        while time.monotonic() < deadline:
            status, body = readyz(late)
            if status == 200:
                ready_at = late.status()
                break
            seen.append(body.get("reason") if body else status)
            time.sleep(0.02)
        t.require(ready_at is not None, "%s never ready: %s" % (late.name, seen[-3:]))
        ops.note(results, "%s: %d not-ready answers (%s) before ready at applied index %d" % (
            late.name, len(seen), sorted(set(map(str, seen))), ready_at["applied_index"]))
        t.check(ready_at["applied_index"] >= target, "%s ready at applied index %d, below the "
                "leader's commit index %d before its restart" % (
                    late.name, ready_at["applied_index"], target))
        last = pushed[tags[-1]]
        with late.client() as cl:
            r = cl.get_manifest(repo, tags[-1], "HEAD")
        t.check(r.status == 200 and r.headers.get("Docker-Content-Digest") == last.digest,
                "%s %s after ready: %s" % (late.name, tags[-1], r.describe()))


def leader_sigterm_hands_over(results):
    t = results
    with cluster.Cluster(3) as c:
        lead = c.wait_leader()
        followers = [x for x in c.regions if x is not lead]
        repo = h.unique_repo("sigterm")
        base = h.make_image(layers=1, layer_size=256)
        with lead.client() as cl:
            base.push(cl, repo, "base")
        c.wait_converged(timeout=30)
        term = lead.status()["term"]
        writer = ops.Writer(repo, base, followers)
        writer.start()
        answers = []
        stop_probe = threading.Event()

        def probe():
            while not stop_probe.is_set():
                status, body = readyz(lead)
                answers.append((status, body.get("reason") if body else None))
                if status is None:
                    return
                time.sleep(0.01)

        time.sleep(1.5)
        prober = threading.Thread(target=probe, daemon=True)
        t_sig = time.monotonic()
        lead.node.proc.send_signal(signal.SIGTERM)
        prober.start()
        try:
            rc = lead.node.proc.wait(60)
        except Exception:
            rc = None
        t_exit = time.monotonic()
        stop_probe.set()
        prober.join(10)
        time.sleep(2.0)
        writer.stop.set()
        writer.join(ops.WRITE_TIMEOUT + 40)
        t_end = time.monotonic()
        t.eq(rc, 0, "exit status of the leader after SIGTERM")
        handed = lead.log_grep("leadership handed over before shutdown")
        t.check(handed, "%s logged no leadership hand-over; log tail: %s" % (
            lead.name, lead.node.log_tail(15)))
        after = c.wait_leader(among=followers, timeout=30)
        st = after.status()
        if handed:
            t.check('"leader_id":%d' % after.id in handed[0].replace(" ", ""),
                    "handed over (%s), but the leader now is %s" % (handed[0], after.name))
        t.check(st["term"] == term + 1, "term %d after the hand-over, %d before: an election "
                "beyond the transfer's one" % (st["term"], term))
        statuses = [s for s, _ in answers]
        if 503 in statuses:
            first = statuses.index(503)
            t.check(200 not in statuses[first:], "/readyz of the stopping leader went back to "
                    "200: %s" % answers[first:first + 10])
            t.check(all(r == "draining" for s, r in answers[first:] if s == 503),
                    "503 reasons while stopping: %s" % sorted(set(answers[first:]), key=str))
        gap = writer.longest_gap(t_sig, t_end)
        ops.note(results, "SIGTERM to exit %s; longest time without an acknowledged write "
                 "around it %s; %d acknowledged, %d refused; /readyz answers while stopping: "
                 "%s" % (ops.ms(t_exit - t_sig), ops.ms(gap), len(writer.acked),
                         len(writer.refused), sorted(set(answers), key=str)))
        t.check(not writer.unexpected, "writer: %s" % "; ".join(writer.unexpected[:5]))
        lead.node.returncode = rc
        lead.node.proc = None
        everyone = c.regions
        c.regions = followers
        try:
            ops.check_writes_everywhere(t, c, repo, writer.acked, {}, "after the leader stopped")
        finally:
            c.regions = everyone


def main(results):
    if results.target != "portolan":
        raise h.Skip("readiness and cluster shutdown are portolan-only")
    results.run("single_region_ready", single_region_ready, results)
    results.run("not_ready_until_caught_up", not_ready_until_caught_up, results)
    results.run("late_region_catches_up", late_region_catches_up, results)
    results.run("leader_sigterm_hands_over", leader_sigterm_hands_over, results)
