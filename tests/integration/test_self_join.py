"""A StatefulSet pod beyond the bootstrap members joins the running cluster by itself
(deploy/pod-start.sh), is removed, and is added again.

Role: checks README.md's "Running in Kubernetes" on the host, without containers: three
regions on loopback (tests/lib/cluster.py: access control and peer mTLS on, a snapshot every
64 entries) take 300 tags, so the leader's log no longer starts at 1 and a new region can
only catch up from a snapshot. Then deploy/pod-start.sh runs with the environment a
StatefulSet pod would have (HOSTNAME=region-3, so Raft id 4; PORTOLAN_JOIN_VIA a follower's
URL; the administrator's password in a file; peer certificates in a Secret-like directory
holding ca.crt, region-3.crt and region-3.key), paths and addresses overridden for loopback:
  - the pod becomes a member (the leader's /admin/cluster lists id 4), its log says a raft
    snapshot was restored, /readyz turns 200, and a tag written before it started is
    readable there with its digest;
  - SIGTERM to the script's process reaches the node (the script exec's it): exit status 0;
  - `portolan cluster remove --id 4`, then the pod is stopped; restarted on the same data
    (a pod restarted after its removal), it is not added again and does not disturb the
    cluster: the members do not list it, the leader and its term stay, writes keep working,
    and its /readyz stays 503;
  - scaled to four again on the old volume (the pod-joined marker removed, as README says),
    it joins again, turns ready and serves a tag written while it was out.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, HERE)

import cluster  # noqa: E402
import harness as h  # noqa: E402
import test_cluster_ops as ops  # noqa: E402
import test_node_lifecycle as life  # noqa: E402

TIMEOUT = 300
SNAPSHOT_EVERY = 64
TAGS = 300
POD = "region-3"
POD_ID = 4
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "deploy", "pod-start.sh")


class Pod:
    """deploy/pod-start.sh run as a StatefulSet would run it, on loopback."""

    def __init__(self, c, root, join_via):
        self.c = c
        self.root = root
        self.data = os.path.join(root, "data")
        self.port = h.free_port()
        self.raft_port = h.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(root, "pod.log")
        self.proc = None
        os.makedirs(root, exist_ok=True)
        tls = os.path.join(root, "peer-tls")
        made = os.path.join(root, "certs")
        ca = cluster.peer_certs(c.binary)
        subprocess.run([c.binary, "cluster", "certs", "--out", made, "--regions", POD, "--ca", ca],
                       check=True, stdout=subprocess.DEVNULL)
        os.makedirs(tls)
        shutil.copy(os.path.join(ca, "ca.pem"), os.path.join(tls, "ca.crt"))
        shutil.copy(os.path.join(made, POD + ".pem"), os.path.join(tls, POD + ".crt"))
        shutil.copy(os.path.join(made, POD + "-key.pem"), os.path.join(tls, POD + ".key"))
        pw = h.write_secret_file(os.path.join(root, "password"), c.admin.password)
        self.env = dict(os.environ)
        self.env.update({
            "HOSTNAME": POD,
            "PORTOLAN_BIN": c.binary,
            "PORTOLAN_DATA_DIR": self.data,
            "PORTOLAN_CLUSTER_FILE": c.regions[0].cluster_file,
            "PORTOLAN_PEER_TLS_DIR": tls,
            "PORTOLAN_PEER_ADDRESS_TEMPLATE": "127.0.0.1:%d" % self.raft_port,
            "PORTOLAN_URL_TEMPLATE": "http://127.0.0.1:%d" % self.port,
            "PORTOLAN_JOIN_VIA": join_via.url,
            "PORTOLAN_USER": c.admin.user,
            "PORTOLAN_PASSWORD_FILE": pw,
            "PORTOLAN_JOIN_RETRY_SECONDS": "1",
        })
        self.args = ["--listen", "127.0.0.1:%d" % self.port,
                     "--raft-listen", "127.0.0.1:%d" % self.raft_port,
                     "--initial-admin-password-file", pw]

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(["sh", SCRIPT] + self.args, env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        return self

    def stop(self):
        """SIGTERM to the script's process (the node after exec); its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "killed after 60 s"
        rc, self.proc = self.proc.returncode, None
        return rc

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def client(self):
        return h.Client(self.url, auth=self.c.admin, timeout=30)


def member_ids(region):
    m = region.members() or {}
    return [x.get("id") for x in m.get("regions", [])]


def wait_for(pred, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


def served(pod, repo, tag, m):
    try:
        with pod.client() as cl:
            r = cl.get_manifest(repo, tag, "HEAD")
    except ops.ERRORS:
        return False
    return r.status == 200 and r.headers.get("Docker-Content-Digest") == m.digest


def self_join_remove_rejoin(results):
    t = results
    if not shutil.which("sh"):
        raise h.Skip("no sh")
    args = ("--snapshot-every", str(SNAPSHOT_EVERY))
    with cluster.Cluster(3, args=args) as c:
        lead = c.wait_leader()
        repo = h.unique_repo("selfjoin")
        base = h.make_image(layers=1, layer_size=256)
        with lead.client() as cl:
            base.push(cl, repo, "base")
        tags = ["t-%04d" % i for i in range(TAGS)]
        pushed, failures, _ = ops.push_tags(c.regions, repo, base, tags)
        t.require(not failures, "writes failed: %s" % "; ".join(failures[:3]))
        lead = c.wait_leader()
        via = [x for x in c.regions if x is not lead][0]
        pod = Pod(c, os.path.join(c.root, POD), via)
        try:
            # 1. The pod joins by itself and catches up from a snapshot.
            t0 = time.monotonic()
            pod.start()
            ids = wait_for(lambda: POD_ID in member_ids(lead) and member_ids(lead), 90)
            t.require(ids and POD_ID in ids, "%s not a member after 90 s: %s; pod log: %s" % (
                POD, ids, pod.log()[-1500:]))
            ready = wait_for(lambda: life.readyz(pod.url)[0] == 200, 90)
            ops.note(results, "%s member and ready after %.1f s" % (POD, time.monotonic() - t0))
            t.check(ready, "%s /readyz: %s" % (POD, life.readyz(pod.url)))
            t.check("raft snapshot restored" in pod.log(), "%s restored no snapshot" % POD)
            t.check(served(pod, repo, tags[0], pushed[tags[0]]),
                    "%s does not serve %s:%s" % (POD, repo, tags[0]))
            t.check(served(pod, repo, tags[-1], pushed[tags[-1]]),
                    "%s does not serve %s:%s" % (POD, repo, tags[-1]))

            # 2. Scale down: remove it, then stop the pod (SIGTERM reaches the node).
            env = c.cli_env()
            r = subprocess.run([c.binary, "cluster", "remove", "--region", via.url, "--id",
                                str(POD_ID)], env=env, capture_output=True, text=True,
                               timeout=60)
            t.require(r.returncode == 0, "cluster remove: %s %s" % (r.stdout, r.stderr))
            gone = wait_for(lambda: all(POD_ID not in member_ids(x) for x in c.regions), 30)
            t.check(gone, "still listed after removal: %s" % [member_ids(x) for x in c.regions])
            t.eq(pod.stop(), 0, "exit status of the pod's node after SIGTERM")

            # 3. Restarted on the same data after its removal: not added, no disturbance.
            lead = c.wait_leader()
            term = lead.status()["term"]
            pod.start()
            time.sleep(8)  # several election timeouts and join retries
            t.check("not adding it again" in pod.log(), "restarted pod tried to join again")
            t.check(all(POD_ID not in member_ids(x) for x in c.regions),
                    "removed pod listed again: %s" % [member_ids(x) for x in c.regions])
            after = c.wait_leader()
            t.check(after is lead and after.status()["term"] == term,
                    "leader %s term %s, before %s term %d" % (
                        after.name, after.status()["term"], lead.name, term))
            status, body = life.readyz(pod.url)
            t.check(status == 503, "/readyz of the removed pod: %s %s" % (status, body))
            more, failures, _ = ops.push_tags(c.regions, repo, base, ["while-out"])
            t.check(not failures, "writes while the removed pod runs: %s" % failures)
            t.eq(pod.stop(), 0, "exit status of the removed pod")

            # 4. Scaled to four again on the old volume, marker removed.
            os.unlink(os.path.join(pod.data, "pod-joined"))
            t0 = time.monotonic()
            pod.start()
            ids = wait_for(lambda: POD_ID in member_ids(lead) and member_ids(lead), 90)
            t.check(ids and POD_ID in ids, "%s not re-added: %s; log: %s" % (
                POD, ids, pod.log()[-1500:]))
            ready = wait_for(lambda: life.readyz(pod.url)[0] == 200, 90)
            t.check(ready, "re-added %s /readyz: %s" % (POD, life.readyz(pod.url)))
            t.check(wait_for(lambda: served(pod, repo, "while-out", more["while-out"]), 30),
                    "re-added %s does not serve the tag written while it was out" % POD)
            ops.note(results, "%s re-added and ready after %.1f s" % (
                POD, time.monotonic() - t0))
            for x in c.dead():
                t.check(False, "%s died: %s" % (x.name, x.node.death_note()))
        finally:
            rc = pod.stop()
            if rc not in (None, 0):
                t.check(False, "pod exit status %s at the end" % rc)


def main(results):
    if results.target != "portolan":
        raise h.Skip("a Raft cluster is portolan-only")
    results.run("self_join_remove_rejoin", self_join_remove_rejoin, results)
