"""The StatefulSet's pods, run as a kubelet would run them, in podman containers.

Role: exercise without a Kubernetes cluster what only running pods show: the pod command's
ordinal logic (region and Raft id from the hostname), the peer DNS names under the headless
Service, the probes, a pod joining by itself and the documented scale-down.

How a pod is made from the rendered manifests (tests/lib/k8s.py renders deploy/k8s with
the Secrets make-secrets.sh writes), the way Kubernetes does it:
  - image, command and args of the StatefulSet's container; environment from its env list
    with the downward API filled in (metadata.name = the pod's name, metadata.namespace =
    "default") and $(VAR) references expanded as the kubelet expands them;
  - hostname portolan-N; one podman network with DNS (netavark + aardvark-dns) in which each
    pod answers to portolan-N.portolan-peers, portolan-N.portolan-peers.default.svc and
    portolan-N.portolan-peers.default.svc.cluster.local (the headless Service), and the
    search path of a pod's resolv.conf; the client Service's names (portolan,
    portolan.default.svc, ...) belong to the pods that were ready when a pod joins;
  - every ConfigMap and Secret volume as files at its mountPath, read-only, in the kubelet's
    layout (key -> ..data/key, ..data -> a timestamped directory), mode defaultMode, group
    fsGroup; the volume claim template as a directory of group fsGroup (setgid, 2775); an
    emptyDir of medium Memory as a tmpfs of its sizeLimit;
  - the security context: --read-only root (and no tmpfs podman would add), user and group
    10001 with fsGroup as supplementary group, every capability dropped, no privilege
    escalation (podman's default seccomp profile is the runtime default);
  - the client port published on 127.0.0.1 (the kubelet's probes and this test's clients
    go there), and `podman stop` with terminationGracePeriodSeconds.
Probes run as the kubelet runs them, from the manifest: the startup probe every
periodSeconds until it succeeds (failureThreshold failures in a row would restart the
container: a test failure here), then readiness; liveness runs in the background the whole
time and any failureThreshold failures in a row fail the test.

What runs:
  1. pods portolan-0..2 start at once (podManagementPolicy Parallel), pass their startup and
     readiness probes; `portolan cluster status` in portolan-0 (through the peer DNS names)
     shows three regions named after the pods with ids 1..3 and a leader;
  2. skopeo pushes an image to portolan-0 through its published port and pulls it from
     portolan-2: byte-identical;
  3. scale to 4: portolan-3 adds itself to the cluster, turns ready, shows in the status with
     id 4, and serves the image;
  4. scale back to 3 the documented way: `portolan cluster remove --id 4`, then the pod is
     stopped (SIGTERM: it exits 0 within the grace period); three regions remain and a
     push through portolan-1 still commits.

Skipped, with the reason printed, when containers cannot run here (not root, podman or
netavark missing; tests/lib/containers.py says why) or kubectl/node are missing.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness  # noqa: E402
import images  # noqa: E402
import k8s  # noqa: E402

try:
    import containers  # noqa: E402
except ImportError:  # deploy/image.sh's helper not present: reported as a failure below
    containers = None

TIMEOUT = 3000  # the image build (once per run, shared) plus four pods' start-ups
NAMESPACE = "default"
CLUSTER_DOMAIN = "cluster.local"
READY_WAIT_S = 300  # readiness after a successful startup probe (no kubelet bound: ours)


# ---- what the kubelet does with the manifest ----------------------------------------------

def expand(text, env):
    """$(VAR) references in text expanded with env as Kubernetes does: a defined VAR is
    replaced, $$ is a literal $, an undefined reference stays as written."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        m = re.match(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", text[i:])
        if m and m.group(1) in env:
            out.append(env[m.group(1)])
            i += m.end()
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def pod_env(c, pod, objects):
    """The container's environment (ordered dict) for pod: values, downward API fields and
    ConfigMap/Secret keys, each $(VAR) expanded with the variables defined before it."""
    env = {}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = expand(e["value"], env)
            continue
        src = e.get("valueFrom", {})
        if "fieldRef" in src:
            field = src["fieldRef"]["fieldPath"]
            known = {"metadata.name": pod, "metadata.namespace": NAMESPACE}
            if field not in known:
                raise ValueError("env %s: fieldRef %s is not emulated" % (e["name"], field))
            env[e["name"]] = known[field]
        elif "secretKeyRef" in src or "configMapKeyRef" in src:
            ref = src.get("secretKeyRef") or src["configMapKeyRef"]
            kind = "Secret" if "secretKeyRef" in src else "ConfigMap"
            obj = k8s.find(objects, kind, ref["name"])[0]
            data = k8s.secret_files(obj) if kind == "Secret" else {
                k: v.encode() for k, v in obj.get("data", {}).items()}
            env[e["name"]] = data[ref["key"]].decode()
        else:
            raise ValueError("env %s: %s is not emulated" % (e["name"], sorted(src)))
    return env


def write_projected(dirpath, files, mode, gid):
    """files {key: bytes} laid out as the kubelet projects a ConfigMap or Secret volume:
    the data in a timestamped directory, ..data pointing at it, each key a symlink."""
    os.makedirs(dirpath)
    os.chmod(dirpath, 0o755)
    stamp = "..%s" % time.strftime("%Y_%m_%d_%H_%M_%S.000000001", time.gmtime())
    os.makedirs(os.path.join(dirpath, stamp))
    os.chmod(os.path.join(dirpath, stamp), 0o755)
    os.chown(os.path.join(dirpath, stamp), 0, gid)
    for key, data in files.items():
        p = os.path.join(dirpath, stamp, key)
        with open(p, "wb") as f:
            f.write(data)
        os.chown(p, 0, gid)
        os.chmod(p, mode)
    os.symlink(stamp, os.path.join(dirpath, "..data"))
    for key in files:
        os.symlink(os.path.join("..data", key), os.path.join(dirpath, key))


class Cluster:
    """The StatefulSet's pods in podman containers on one network (see the module comment)."""

    def __init__(self, results, work, objects, image):
        self.results = results
        self.work = work
        self.objects = objects
        self.image = image
        self.sts = k8s.find(objects, "StatefulSet")[0]
        self.name = self.sts["metadata"]["name"]
        self.spec = self.sts["spec"]["template"]["spec"]
        self.c = self.spec["containers"][0]
        self.peer_service = self.sts["spec"]["serviceName"]
        self.client_services = [s["metadata"]["name"] for s in k8s.find(objects, "Service")
                                if s["spec"].get("clusterIP") != "None" and
                                s["metadata"]["name"] != self.peer_service]
        self.tag = "k8s%d" % os.getpid()
        self.network = "%s-net" % self.tag
        self.pods = {}  # ordinal -> {"ctr", "port"}
        self.host_ports = {}  # ordinal -> the host port its client port is published on
        self.lock = threading.Lock()
        self.live = {}  # ordinal -> consecutive liveness failures, for pods being watched
        self.liveness_failures = []
        self.stop_watch = threading.Event()
        self.watcher = None

    def ctr(self, i):
        return "%s-%s-%d" % (self.tag, self.name, i)

    def pod(self, i):
        return "%s-%d" % (self.name, i)

    def peer_names(self, i):
        base = "%s.%s" % (self.pod(i), self.peer_service)
        return [base, "%s.%s.svc" % (base, NAMESPACE),
                "%s.%s.svc.%s" % (base, NAMESPACE, CLUSTER_DOMAIN)]

    def service_names(self):
        out = []
        for s in self.client_services:
            out += [s, "%s.%s" % (s, NAMESPACE), "%s.%s.svc" % (s, NAMESPACE),
                    "%s.%s.svc.%s" % (s, NAMESPACE, CLUSTER_DOMAIN)]
        return out

    def create_network(self):
        containers.podman("network", "create", self.network)

    def volume_args(self, i):
        """podman flags for the pod's volumes; files written under work/pods/<pod>/."""
        root = os.path.join(self.work, "pods", self.pod(i))
        psc = self.spec.get("securityContext", {})
        gid = psc.get("fsGroup", 0)
        claims = {t["metadata"]["name"] for t in self.sts["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        args = []
        for m in self.c.get("volumeMounts", []):
            name, path = m["name"], m["mountPath"]
            ro = ",ro" if m.get("readOnly") else ""
            host = os.path.join(root, name)
            if name in claims:
                if not os.path.isdir(host):  # a claim outlives its pod
                    os.makedirs(host)
                    os.chown(host, 0, gid)
                    os.chmod(host, 0o2775)
                args += ["-v", "%s:%s%s" % (host, path, ro)]
                continue
            v = volumes[name]
            if "emptyDir" in v:
                ed = v["emptyDir"]
                if ed.get("medium") == "Memory":
                    size = ed.get("sizeLimit", "64Mi").replace("Mi", "m").replace("Gi", "g")
                    args += ["--tmpfs", "%s:rw,size=%s,mode=1777" % (path, size)]
                else:
                    os.makedirs(host, exist_ok=True)
                    os.chmod(host, 0o1777)
                    args += ["-v", "%s:%s%s" % (host, path, ro)]
                continue
            if "configMap" in v:
                obj = k8s.find(self.objects, "ConfigMap", v["configMap"]["name"])[0]
                files = {k: s.encode() for k, s in obj.get("data", {}).items()}
                mode = v["configMap"].get("defaultMode", 0o644)
            elif "secret" in v:
                obj = k8s.find(self.objects, "Secret", v["secret"]["secretName"])[0]
                files = k8s.secret_files(obj)
                mode = v["secret"].get("defaultMode", 0o644)
            else:
                raise ValueError("volume %s: kind not emulated" % name)
            if os.path.exists(host):
                shutil.rmtree(host)
            write_projected(host, files, mode, gid)
            args += ["-v", "%s:%s:ro" % (host, path)]
        return args

    def security_args(self):
        psc = self.spec.get("securityContext", {})
        csc = self.c.get("securityContext", {})
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        args = ["--user", "%d:%d" % (uid, gid)]
        if "fsGroup" in psc:
            args += ["--group-add", str(psc["fsGroup"])]
        if csc.get("readOnlyRootFilesystem"):
            args += ["--read-only", "--read-only-tmpfs=false"]
        for cap in csc.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", cap]
        if csc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        return args

    def start(self, i, with_service_names):
        """podman run of pod i (detached); publishes the client port on 127.0.0.1."""
        pod = self.pod(i)
        env = pod_env(self.c, pod, self.objects)
        args = ["run", "-d", "--name", self.ctr(i), "--hostname", pod,
                "--network", self.network]
        for n in self.peer_names(i) + (self.service_names() if with_service_names else []):
            args += ["--network-alias", n]
        for d in ("%s.svc.%s" % (NAMESPACE, CLUSTER_DOMAIN), "svc." + CLUSTER_DOMAIN,
                  CLUSTER_DOMAIN):
            args += ["--dns-search", d]
        args += self.volume_args(i) + self.security_args()
        for k, v in env.items():
            args += ["-e", "%s=%s" % (k, v)]
        http_port = [p["containerPort"] for p in self.c["ports"] if p["name"] == "http"][0]
        host_port = self.host_ports.get(i) or harness.free_port()
        args += ["-p", "127.0.0.1:%d:%d" % (host_port, http_port)]
        args += ["--stop-timeout", str(self.spec.get("terminationGracePeriodSeconds", 30))]
        command = [expand(x, env) for x in self.c.get("command", [])]
        if command:
            args += ["--entrypoint", json.dumps(command)]
        args += [self.image] + [expand(x, env) for x in self.c.get("args", [])]
        containers.podman(*args)
        self.pods[i] = {"ctr": self.ctr(i), "port": host_port}

    def url(self, i):
        return "http://127.0.0.1:%d" % self.pods[i]["port"]

    def running(self, i):
        p = containers.podman("inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}",
                              self.ctr(i), check=False)
        parts = p.stdout.split()
        return (parts[0] == "true", int(parts[1])) if len(parts) == 2 else (False, -1)

    def logs(self, i, lines=30):
        p = containers.podman("logs", "--tail", str(lines), self.ctr(i), check=False)
        return " | ".join((p.stdout + p.stderr).strip().splitlines()[-lines:])

    # -- probes, as the kubelet runs them --

    def probe(self, i, spec):
        """One httpGet probe of pod i: (success, status or error text)."""
        hg = spec["httpGet"]
        req = urllib.request.Request(self.url(i) + hg.get("path", "/"))
        try:
            with urllib.request.urlopen(req, timeout=spec.get("timeoutSeconds", 1)) as r:
                r.read()
                return 200 <= r.status < 400, r.status
        except urllib.error.HTTPError as e:
            return 200 <= e.code < 400, e.code
        except Exception as e:  # refused, reset, timed out: a failed probe
            return False, type(e).__name__

    def wait_started(self, ordinals):
        """The startup probe of each pod, every periodSeconds, until it succeeds; a pod whose
        probe failed failureThreshold times in a row (the kubelet would restart it) or whose
        container exited fails the test."""
        spec = self.c["startupProbe"]
        period, threshold = spec.get("periodSeconds", 10), spec.get("failureThreshold", 3)
        time.sleep(spec.get("initialDelaySeconds", 0))
        failures = {i: 0 for i in ordinals}
        pending = set(ordinals)
        while pending:
            for i in sorted(pending):
                ok, what = self.probe(i, spec)
                if ok:
                    pending.discard(i)
                    with self.lock:
                        self.live[i] = 0
                    continue
                failures[i] += 1
                alive, code = self.running(i)
                self.results.require(alive, "%s exited (%d) before it started: %s" % (
                    self.pod(i), code, self.logs(i)))
                self.results.require(failures[i] < threshold,
                                     "%s: startup probe failed %d times (last: %s): %s" % (
                                         self.pod(i), failures[i], what, self.logs(i)))
            if pending:
                time.sleep(period)
        return failures

    def wait_ready(self, i):
        spec = self.c["readinessProbe"]
        deadline = time.monotonic() + READY_WAIT_S
        while True:
            ok, what = self.probe(i, spec)
            if ok:
                return
            self.results.require(time.monotonic() < deadline, "%s not ready in %ds (%s): %s" % (
                self.pod(i), READY_WAIT_S, what, self.logs(i)))
            time.sleep(spec.get("periodSeconds", 10))

    def watch_liveness(self):
        spec = self.c["livenessProbe"]
        period, threshold = spec.get("periodSeconds", 10), spec.get("failureThreshold", 3)

        def loop():
            while not self.stop_watch.wait(period):
                with self.lock:
                    watched = list(self.live)
                for i in watched:
                    ok, what = self.probe(i, spec)
                    with self.lock:
                        if i not in self.live:
                            continue
                        self.live[i] = 0 if ok else self.live[i] + 1
                        if self.live[i] >= threshold:
                            self.liveness_failures.append("%s: liveness failed %d times (%s)" % (
                                self.pod(i), self.live[i], what))
                            self.live[i] = 0
        self.watcher = threading.Thread(target=loop, daemon=True)
        self.watcher.start()

    def unwatch(self, i):
        with self.lock:
            self.live.pop(i, None)

    def stop(self, i):
        """`podman stop` with the grace period; returns the exit code."""
        self.unwatch(i)
        grace = self.spec.get("terminationGracePeriodSeconds", 30)
        containers.podman("stop", "-t", str(grace), self.ctr(i), timeout=grace + 60)
        return self.running(i)[1]

    def exec_cli(self, i, *args, password, check=True):
        """`portolan ARGS` inside pod i with the administrator's credentials."""
        return containers.podman("exec", "-e", "PORTOLAN_USER=admin",
                                 "-e", "PORTOLAN_PASSWORD=%s" % password, self.ctr(i),
                                 "/usr/bin/portolan", *args, check=check, timeout=120)

    def cleanup(self):
        self.stop_watch.set()
        for i in list(self.pods):
            containers.podman("rm", "-f", "-t", "0", self.ctr(i), check=False)
        containers.podman("network", "rm", "-f", self.network, check=False)


def status(cluster, i, password):
    """`portolan cluster status --json` asked in pod i of the region at its peer name."""
    region = "http://%s:5000" % cluster.peer_names(i)[0]
    p = cluster.exec_cli(i, "cluster", "status", "--region", region, "--json",
                         password=password, check=False)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"error": (p.stderr or p.stdout).strip()[-500:]}


def members(st):
    return sorted((r.get("name"), r.get("id"), r.get("state")) for r in st.get("regions", []))


def wait_members(cluster, i, password, want_names, timeout=120):
    """The status once its regions are want_names, each answering, with a leader."""
    deadline = time.monotonic() + timeout
    while True:
        st = status(cluster, i, password)
        names = sorted(r.get("name") for r in st.get("regions", []))
        answered = all(r.get("self") for r in st.get("regions", []))
        if names == sorted(want_names) and answered and st.get("leader"):
            return st
        if time.monotonic() > deadline:
            return st
        time.sleep(2)


def main(results):
    if containers is None:
        results.fail("setup", "tests/lib/containers.py is missing (the container image helper)")
        return
    why = containers.skip_reason() or k8s.missing_tools()
    if why:
        print("test_k8s_pods: skipped: %s" % why)
        raise harness.Skip(why)
    k8s.ensure_node_modules()
    image, took = containers.ensure_image()
    if took:
        print("test_k8s_pods: built %s in %.0fs" % (image, took))
    work = tempfile.mkdtemp(prefix="k8s-pods-")
    cluster = None
    failed_before = results.failed
    try:
        dirs = k8s.prepare(work, harness.portolan_bin(), regions=False)
        objects, errors = k8s.validate(k8s.render(dirs["single"]))
        results.require(not errors, "render: %s" % "; ".join(errors[:5]))
        sts = k8s.find(objects, "StatefulSet")[0]
        c = sts["spec"]["template"]["spec"]["containers"][0]
        results.eq(c["image"], image, "the StatefulSet runs the image deploy/image.sh builds")
        has = containers.podman("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh",
                                image, "-c", 'test -x "$0"', c["command"][0], check=False)
        results.require(has.returncode == 0, "%s is not in the image" % c["command"][0])

        admin = k8s.find(objects, "Secret")
        password = [k8s.secret_files(s)["password"] for s in admin
                    if "password" in k8s.secret_files(s)][0].decode().strip()
        # The operator's one per-deployment value: the URL clients reach (the token realm,
        # public_url in the settings). Here portolan-0's published port, for every pod:
        # a token from one region is accepted by every other.
        cluster = Cluster(results, work, objects, image)
        cluster.host_ports[0] = harness.free_port()
        cm = [o for o in objects if o["kind"] == "ConfigMap" and "portolan.yaml" in o["data"]]
        results.require(len(cm) == 1, "one ConfigMap with portolan.yaml")
        cm[0]["data"]["portolan.yaml"] += "\npublic_url: http://127.0.0.1:%d\n" % (
            cluster.host_ports[0])
        cluster.create_network()

        @results.test
        def bootstrap_three_pods():
            for i in range(3):
                cluster.start(i, with_service_names=True)
            cluster.watch_liveness()
            cluster.wait_started([0, 1, 2])
            for i in range(3):
                cluster.wait_ready(i)
            st = wait_members(cluster, 0, password, ["%s-%d" % (cluster.name, i) for i in range(3)])
            results.eq([(n, i) for n, i, _ in members(st)],
                       [("%s-%d" % (cluster.name, i), i + 1) for i in range(3)],
                       "regions (name, id) in the status: %s" % st.get("error", ""))
            results.check(st.get("leader") is not None, "a leader: %s" % json.dumps(st)[:300])
            for i in range(3):
                with urllib.request.urlopen(cluster.url(i) + "/readyz", timeout=5) as r:
                    results.eq(json.loads(r.read()).get("ready"), True,
                               "%s /readyz body" % cluster.pod(i))

        if results.failed > failed_before:
            return
        sk = images.Skopeo(os.path.join(work, "skopeo"))
        img = images.make_image(seed=4242, layers=2, layer_size=256 << 10)
        layout = os.path.join(work, "layout")
        images.write_oci_layout(layout, {"v1": img})
        sk.prepare_readable(layout)
        creds = "admin:%s" % password

        def push(i, tag):
            return sk.copy("oci:%s:v1" % layout, "docker://127.0.0.1:%d/k8s/app:%s" % (
                cluster.pods[i]["port"], tag), extra=["--dest-creds", creds], check=False)

        def pull_matches(i, tag, name):
            out = sk.output_dir(name)
            p = sk.copy("docker://127.0.0.1:%d/k8s/app:%s" % (cluster.pods[i]["port"], tag),
                        "dir:" + out, extra=["--src-creds", creds], check=False)
            if not results.check(p.returncode == 0, "pull %s from %s: %s" % (
                    tag, cluster.pod(i), p.stderr.strip()[-500:])):
                return
            got = images.read_dir_layout(out)
            results.eq(got["manifest"], img.manifest, "%s: manifest bytes" % cluster.pod(i))
            for b in img.blobs():
                path = got["blobs"].get(b.digest)
                data = open(path, "rb").read() if path else None
                results.check(data == b.data, "%s: blob %s byte-identical" % (
                    cluster.pod(i), b.digest[:19]))

        @results.test
        def push_pod0_pull_pod2():
            p = push(0, "v1")
            results.require(p.returncode == 0, "push to %s: %s" % (cluster.pod(0),
                                                                   p.stderr.strip()[-500:]))
            pull_matches(2, "v1", "pull-2")

        @results.test
        def scale_to_four_self_join():
            cluster.start(3, with_service_names=False)
            cluster.wait_started([3])
            cluster.wait_ready(3)
            want = ["%s-%d" % (cluster.name, i) for i in range(4)]
            st = wait_members(cluster, 0, password, want)
            got = {n: i for n, i, _ in members(st)}
            results.eq(got.get(cluster.pod(3)), 4, "%s's id in the status (%s)" % (
                cluster.pod(3), st.get("error", "")))
            results.eq(sorted(got), sorted(want), "regions after the scale-up")
            pull_matches(3, "v1", "pull-3")

        @results.test
        def scale_back_to_three():
            region = "http://%s:5000" % cluster.peer_names(0)[0]
            p = cluster.exec_cli(0, "cluster", "remove", "--region", region, "--id", "4",
                                 password=password, check=False)
            results.require(p.returncode == 0, "cluster remove --id 4: %s" % (
                p.stderr or p.stdout).strip()[-500:])
            code = cluster.stop(3)
            results.eq(code, 0, "%s's exit status after SIGTERM" % cluster.pod(3))
            want = ["%s-%d" % (cluster.name, i) for i in range(3)]
            st = wait_members(cluster, 1, password, want)
            results.eq(sorted(n for n, _, _ in members(st)), want, "regions after the scale-down")
            p = push(1, "v2")
            results.check(p.returncode == 0, "push through %s after the scale-down: %s" % (
                cluster.pod(1), p.stderr.strip()[-500:]))

        @results.test
        def liveness_held():
            cluster.stop_watch.set()
            if cluster.watcher is not None:
                cluster.watcher.join(60)
            results.check(not cluster.liveness_failures, "; ".join(cluster.liveness_failures))
    finally:
        if cluster is not None:
            if results.failed > failed_before:
                for i in sorted(cluster.pods):
                    print("%s log: %s" % (cluster.pod(i), cluster.logs(i, 15)))
            cluster.cleanup()
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)
