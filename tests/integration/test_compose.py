"""The compose demo (deploy/compose/compose.yaml) brought up with podman-compose, used, broken
and torn down the way its README section describes.

Role: prove that the three-region demo starts from nothing (init makes the password,
certificates and cluster file), replicates across its WAN emulator with peer TLS and access
control on, survives the loss of the leader's container, and is watched by Prometheus.

What runs (project name and published ports of the test's own; the secrets directory is a
temporary one, PT_DEMO_SECRETS):
  0. valid_for_docker_compose: `docker-compose config --quiet` accepts the file (Debian's
     docker-compose 1.29 checks it against the Compose schema; skipped when not installed);
  1. ensure_image() and ensure_compose_images() (tests/lib/containers.py), then
     `podman-compose up -d`; bring_up: every region answers /healthz and the administrator
     (password from the secrets directory init wrote) logs in, and the regions agree on a
     leader (GET /admin/cluster/self). The time is printed.
  2. push_eu_pull_ap: skopeo pushes a generated image to eu and pulls it from ap
     byte-identical (ap fetches the blobs across the WAN).
  3. leader_failover: the leader's container is killed (podman kill); a second image is
     pushed to a surviving region, retried until it succeeds; the time from the kill to the
     successful push is printed and must stay within FAILOVER_BOUND; the survivors agree on a
     new leader; the container is started again and catches up (the second image can be
     pulled from it).
  4. prometheus_scraped: Prometheus has scraped all three regions (max_over_time of up is 1
     for each) and evaluated the recording rules (region:up:min has three series, the
     replication lag rule a series for ap, which fetched blobs).
  5. teardown: `podman-compose down -v` and `podman network rm <project>_default` (which
     podman-compose 1.0 leaves, unlike docker compose): no container, volume or network of
     the project is left (checked; anything left is removed and reported).
Skips with the reason when containers cannot run here (containers.skip_reason()).
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import containers  # noqa: E402
import harness as h  # noqa: E402
import images  # noqa: E402

TIMEOUT = 1800  # image builds from scratch included; the demo itself takes a few minutes
COMPOSE = os.path.join(containers.REPO, "deploy", "compose", "compose.yaml")
REGIONS = ("eu", "us", "ap")
IDS = {1: "eu", 2: "us", 3: "ap"}
FAILOVER_BOUND = 60.0  # seconds from the leader's kill to an accepted push (generous: busy CI)
BRING_UP_TIMEOUT = 180.0
VOLUMES_BEFORE = set()  # volumes in the storage before the demo came up


def http_json(base, path, creds=None, timeout=5):
    """GET base+path as JSON (admin API with Basic credentials), or None on any failure."""
    try:
        with h.Client(base, auth=creds, timeout=timeout) as c:
            r = c.request("GET", path)
            return r.json() if r.status == 200 else None
    except Exception:
        return None


class Demo:
    def __init__(self, work):
        self.work = work
        self.project = "ptdemo" + secrets.token_hex(3)
        self.secrets = os.path.join(work, "secrets")
        os.makedirs(self.secrets)
        self.ports = {r: h.free_port() for r in REGIONS}
        self.prom_port = h.free_port()
        self.env = {"PT_DEMO_EU_PORT": str(self.ports["eu"]),
                    "PT_DEMO_US_PORT": str(self.ports["us"]),
                    "PT_DEMO_AP_PORT": str(self.ports["ap"]),
                    "PT_DEMO_PROMETHEUS_PORT": str(self.prom_port),
                    "PT_DEMO_SECRETS": self.secrets}
        self.admin = None

    def url(self, region):
        return "http://127.0.0.1:%d" % self.ports[region]

    def compose(self, *args, check=True, timeout=600):
        return containers.podman_compose(COMPOSE, *args, project=self.project, check=check,
                                         timeout=timeout, extra_env=self.env)

    def container(self, service):
        """The container name of a service (podman-compose 1.0: <project>_<service>_1)."""
        p = containers.podman("ps", "-a", "--format", "{{.Names}}", "--filter",
                              "label=com.docker.compose.project=%s" % self.project, "--filter",
                              "label=com.docker.compose.service=%s" % service)
        names = p.stdout.split()
        if len(names) != 1:
            raise h.TestFailure("service %s: containers %r" % (service, names))
        return names[0]

    def status(self, region):
        return http_json(self.url(region), "/admin/cluster/self", self.admin, timeout=3)

    def leader(self, among):
        """The region every one of among agrees is leader (same term), or None."""
        st = {r: self.status(r) for r in among}
        if any(s is None for s in st.values()):
            return None
        leaders = [r for r, s in st.items() if s.get("role") == "leader"]
        if len(leaders) != 1:
            return None
        term = st[leaders[0]].get("term")
        lead_id = st[leaders[0]].get("id")
        if any(s.get("leader_id") != lead_id or s.get("term") != term for s in st.values()):
            return None
        return leaders[0]

    def wait_leader(self, among, timeout=90.0, exclude=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lead = self.leader(among)
            if lead is not None and lead != exclude:
                return lead
            time.sleep(0.3)
        raise h.TestFailure("no agreed leader among %s within %.0fs: %r" % (
            among, timeout, {r: self.status(r) for r in among}))

    def logs(self, service, n=15):
        try:
            p = containers.podman("logs", "--tail", str(n), self.container(service), check=False)
            return (p.stdout + p.stderr).strip().replace("\n", " | ")[-1200:]
        except Exception as e:
            return str(e)


def wait_healthy(demo, region, deadline):
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(demo.url(region) + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.5)
    raise h.TestFailure("%s did not answer /healthz: %s" % (region, demo.logs(region)))


def push(sk, demo, region, src, repo, tag, check=True):
    host = demo.url(region).split("://", 1)[1]
    return sk.copy("oci:%s:%s" % (src, tag), "docker://%s/%s:%s" % (host, repo, tag),
                   extra=["--dest-creds", "admin:%s" % demo.admin.password], check=check)


def pull_compare(results, sk, demo, region, repo, tag, img, what):
    host = demo.url(region).split("://", 1)[1]
    out = sk.output_dir("pull-%s" % secrets.token_hex(4))
    p = sk.copy("docker://%s/%s:%s" % (host, repo, tag), "dir:%s" % out,
                extra=["--src-creds", "admin:%s" % demo.admin.password], check=False)
    if p.returncode != 0:
        return results.check(False, "%s: pull failed: %s" % (what, p.stderr.strip()[-400:]))
    with open(os.path.join(out, "manifest.json"), "rb") as f:
        ok = results.check(f.read() == img.manifest, "%s: manifest differs" % what)
    for blob in img.blobs():
        path = os.path.join(out, blob.digest.split(":", 1)[1])
        same = os.path.exists(path) and open(path, "rb").read() == blob.data
        ok = results.check(same, "%s: blob %s differs" % (what, blob.digest[:19])) and ok
    return ok


def prom_query(demo, query):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (demo.prom_port,
                                                   urllib.parse.urlencode({"query": query}))
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.loads(r.read())
        return doc["data"]["result"] if doc.get("status") == "success" else None
    except Exception:
        return None


def main(results):
    reason = containers.skip_reason()
    if reason:
        print("SKIP test_compose: %s" % reason)
        raise h.Skip(reason)
    if shutil.which("podman-compose") is None:
        reason = "podman-compose is not installed (Debian package; scripts/deps.sh --test)"
        print("SKIP test_compose: %s" % reason)
        raise h.Skip(reason)
    _, took = containers.ensure_image()
    took += containers.ensure_compose_images()
    if took:
        print("images built in %.0f s" % took)
    work = tempfile.mkdtemp(prefix="pt-compose-")
    demo = Demo(work)
    # Volumes there before the demo: anything else left at the end (named or anonymous) is
    # the demo's.
    VOLUMES_BEFORE.update(containers.podman("volume", "ls", "--format",
                                            "{{.Name}}").stdout.split())
    sk = images.Skopeo(os.path.join(work, "skopeo"))
    try:
        run_tests(results, demo, sk)
    finally:
        teardown(results, demo)
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)


def teardown(results, demo):
    @results.test
    def teardown_removes_everything():
        p = demo.compose("down", "-v", check=False, timeout=300)
        # podman-compose 1.0 leaves the project's network (docker compose removes it).
        containers.podman("network", "rm", demo.project + "_default", check=False)
        label = "label=com.docker.compose.project=%s" % demo.project
        left_c = containers.podman("ps", "-a", "-q", "--filter", label).stdout.split()
        left_v = [v for v in containers.podman(
            "volume", "ls", "--format", "{{.Name}}").stdout.split()
            if v.startswith(demo.project + "_") or v not in VOLUMES_BEFORE]
        left_n = [n for n in containers.podman(
            "network", "ls", "--format", "{{.Name}}").stdout.split()
            if n.startswith(demo.project + "_")]
        for c in left_c:
            containers.podman("rm", "-f", "-t", "0", c, check=False)
        for v in left_v:
            containers.podman("volume", "rm", "-f", v, check=False)
        for n in left_n:
            containers.podman("network", "rm", "-f", n, check=False)
        results.eq(p.returncode, 0, "podman-compose down -v exit status (%s)"
                   % p.stderr.strip()[-300:])
        results.check(not (left_c or left_v or left_n), "left after down -v: containers %r, "
                      "volumes %r, networks %r" % (left_c, left_v, left_n))


def run_tests(results, demo, sk):
    state = {}

    @results.test
    def valid_for_docker_compose():
        if shutil.which("docker-compose") is None:
            results.skip("docker-compose is not installed (Debian package docker-compose)")
        p = subprocess.run(["docker-compose", "-f", COMPOSE, "config", "--quiet"],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, **demo.env))
        results.eq(p.returncode, 0, "docker-compose config: %s" % p.stderr.strip()[-400:])

    @results.test
    def bring_up():
        t0 = time.monotonic()
        demo.compose("up", "-d", timeout=600)
        deadline = t0 + BRING_UP_TIMEOUT
        path = os.path.join(demo.secrets, "admin-password")
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.2)
        results.require(os.path.exists(path), "init made no admin-password: %s"
                        % demo.logs("init"))
        results.eq(oct(os.stat(path).st_mode & 0o777), "0o600", "admin-password mode")
        with open(path) as f:
            password = f.read().strip()
        results.require(len(password) >= 32, "admin password of %d characters" % len(password))
        demo.admin = h.Credentials("admin", password)
        for r in REGIONS:
            wait_healthy(demo, r, deadline)
        for r in REGIONS:
            h.wait_login(demo.url(r), demo.admin, timeout=max(5.0, deadline - time.monotonic()))
        lead = demo.wait_leader(REGIONS, timeout=max(5.0, deadline - time.monotonic()))
        took = time.monotonic() - t0
        print("compose bring-up: %.1f s to three healthy regions with leader %s" % (took, lead))
        state["up"] = True

    if not state.get("up"):
        return

    @results.test
    def push_eu_pull_ap():
        img = images.make_image("compose-1", layers=2)
        src = os.path.join(demo.work, "src1")
        images.write_oci_layout(src, {"v1": img})
        sk.prepare_readable(src)
        push(sk, demo, "eu", src, "demo/app", "v1")
        deadline = time.monotonic() + 60
        while True:  # the tag is committed before eu answers; the blobs may still be in flight
            if pull_compare(h.Results(out=open(os.devnull, "w")), sk, demo, "ap", "demo/app",
                            "v1", img, "probe"):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        pull_compare(results, sk, demo, "ap", "demo/app", "v1", img, "pull from ap")

    @results.test
    def leader_failover():
        lead = demo.wait_leader(REGIONS)
        survivors = [r for r in REGIONS if r != lead]
        img = images.make_image("compose-2", layers=2)
        src = os.path.join(demo.work, "src2")
        images.write_oci_layout(src, {"v2": img})
        sk.prepare_readable(src)
        name = demo.container(lead)
        t0 = time.monotonic()
        containers.podman("kill", name)
        target = survivors[0]
        attempts = 0
        while True:
            attempts += 1
            p = push(sk, demo, target, src, "demo/app", "v2", check=False)
            if p.returncode == 0:
                break
            if time.monotonic() - t0 > FAILOVER_BOUND * 2:
                raise h.TestFailure("no push accepted %.0fs after the leader %s was killed: %s"
                                    % (time.monotonic() - t0, lead, p.stderr.strip()[-300:]))
            time.sleep(0.2)
        took = time.monotonic() - t0
        print("failover: leader %s killed, push to %s accepted after %.1f s (%d attempts)"
              % (lead, target, took, attempts))
        results.check(took <= FAILOVER_BOUND, "push accepted %.1f s after the leader's kill, "
                      "bound %.0f s" % (took, FAILOVER_BOUND))
        new = demo.wait_leader(survivors)
        results.check(new != lead, "new leader %s" % new)
        pull_compare(results, sk, demo, survivors[1], "demo/app", "v2", img,
                     "pull from the other survivor")
        # Bring the old leader back: it catches up and serves the image pushed without it.
        containers.podman("start", name)
        wait_healthy(demo, lead, time.monotonic() + 90)
        h.wait_login(demo.url(lead), demo.admin, timeout=60)
        demo.wait_leader(REGIONS)
        deadline = time.monotonic() + 60
        while not pull_compare(h.Results(out=open(os.devnull, "w")), sk, demo, lead,
                               "demo/app", "v2", img, "probe") and time.monotonic() < deadline:
            time.sleep(1)
        pull_compare(results, sk, demo, lead, "demo/app", "v2", img,
                     "pull from the restarted old leader")

    @results.test
    def prometheus_scraped():
        deadline = time.monotonic() + 60
        seen, rules = set(), set()
        while time.monotonic() < deadline:
            res = prom_query(demo, 'max_over_time(up{job="portolan"}[10m])') or []
            seen = {s["metric"].get("region") for s in res if s["value"][1] == "1"}
            rules = {s["metric"].get("region") for s in (prom_query(demo, "region:up:min") or [])}
            if seen >= set(REGIONS) and rules >= set(REGIONS):
                break
            time.sleep(2)
        results.eq(sorted(seen & set(REGIONS)), sorted(REGIONS), "regions scraped (up == 1)")
        results.eq(sorted(rules & set(REGIONS)), sorted(REGIONS), "recording rule region:up:min")
        # A region exports its replication series once it has fetched blobs (ap has).
        lag = prom_query(demo, "region:portolan_replication_behind_bytes:max") or []
        results.check("ap" in {s["metric"].get("region") for s in lag},
                      "replication lag recording rule has no series for ap: %r" % (lag,))
