"""The Kubernetes manifests (deploy/k8s): rendered, schema-valid, and true to the deployment.

Role: prove without a cluster that what `kubectl apply -k` would send is accepted by the API
(every object validated against the Kubernetes API schemas, unknown fields included) and
keeps the promises deploy/README.md makes about it.

What runs (tests/lib/k8s.py does the rendering):
  1. deploy/k8s is copied to a work directory and deploy/k8s/make-secrets.sh makes its
     Secrets: the single-cluster layout (keys for portolan-0..4) and each region of the
     multi-region layout (eu, us, ap, sa) under one cluster CA;
  2. `kubectl kustomize` renders the base, the single-cluster layout and every region; each
     render is validated by tests/k8s/validate.mjs (npm kubernetes-models);
  3. the deployment's invariants, on each render with a StatefulSet:
     - the pod command is /usr/libexec/portolan/pod-start; startup and readiness probes GET
       /readyz, liveness GET /healthz, all on the client port 5000;
     - non-root (uid/gid 10001), read-only root filesystem, no privilege escalation, every
       capability dropped, seccomp RuntimeDefault, /tmp an emptyDir, every mount but the
       data volume and /tmp read-only; requests and limits for CPU and memory;
       terminationGracePeriodSeconds 30 (the node drains within 25 s); zone spreading;
     - serviceName names a headless Service that publishes not-ready addresses and selects
       the pods; podManagementPolicy Parallel (the bootstrapped members start together);
       the volume of a pod removed by scaling down is deleted, the others kept;
     - every ConfigMap and Secret a volume or env entry names exists in the render, with the
       keys the pod reads: portolan.yaml and cluster.yaml at the paths PORTOLAN_CONFIG and
       PORTOLAN_CLUSTER_FILE give, the admin password where portolan.yaml's
       initial_admin_password_file and PORTOLAN_PASSWORD_FILE point, ca.crt and
       <region>.crt/.key for every pod; each region certificate names its region
       (subjectAltName) and is signed by ca.crt (openssl verify);
     - the cluster file: the bootstrapped pods (<set>-0 .. <set>-(PORTOLAN_BOOTSTRAP_MEMBERS-1))
       with their ids (ordinal + 1) and peer names under the headless Service (single
       cluster); every region's pod listed under its name, with one identical cluster file
       in every region (multi-region);
     - the disruption budget selects the pods and keeps a Raft majority of voters: single
       cluster, voters - maxUnavailable >= majority; multi-region, losing every pod of one
       Kubernetes cluster leaves a majority, and every region has a LoadBalancer peer
       Service that selects its pod and publishes it before it is ready.

Skipped (with the reason) when kubectl, node, npm or openssl is missing; scripts/deps.sh
--test installs them. Uses the portolan binary ($PORTOLAN_BIN) for `portolan cluster certs`.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness  # noqa: E402
import k8s  # noqa: E402

TIMEOUT = 600
POD_COMMAND = ["/usr/libexec/portolan/pod-start"]
UID = 10001
SHUTDOWN_TIMEOUT_S = 25  # the node's default --shutdown-timeout


def pod_spec(sts):
    return sts["spec"]["template"]["spec"]


def container(sts):
    return pod_spec(sts)["containers"][0]


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


def env_value(c, name):
    e = env_of(c).get(name)
    return None if e is None else e.get("value")


def port_number(c, port):
    """The container port a probe's port (a number or a name) means."""
    if isinstance(port, int):
        return port
    for p in c.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def mount_for(c, path):
    """(volume mount, relative path under it) of the mount holding path, deepest first."""
    best = None
    for m in c.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best[0]["mountPath"].rstrip("/")):
                best = (m, path[len(mp) + 1:])
    return best


def volume(sts, name):
    for v in pod_spec(sts).get("volumes", []):
        if v["name"] == name:
            return v
    return None


def file_at(objects, sts, path):
    """The content (bytes) a file at path of the container has, from the ConfigMap or Secret
    mounted there; None when no mount, volume, object or key provides it."""
    found = mount_for(container(sts), path)
    if found is None:
        return None
    m, rel = found
    v = volume(sts, m["name"])
    if v is None:
        return None
    if "configMap" in v:
        cms = k8s.find(objects, "ConfigMap", v["configMap"]["name"])
        data = cms[0].get("data", {}) if cms else {}
        return data[rel].encode() if rel in data else None
    if "secret" in v:
        secs = k8s.find(objects, "Secret", v["secret"]["secretName"])
        return k8s.secret_files(secs[0]).get(rel) if secs else None
    return None


def check_security(results, label, sts):
    spec, c = pod_spec(sts), container(sts)
    psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
    results.check(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True,
                  "%s: runAsNonRoot" % label)
    results.check(csc.get("runAsUser", psc.get("runAsUser")) == UID and
                  csc.get("runAsGroup", psc.get("runAsGroup")) == UID,
                  "%s: runs as uid/gid %d" % (label, UID))
    results.check(csc.get("readOnlyRootFilesystem") is True, "%s: readOnlyRootFilesystem" % label)
    results.check(csc.get("allowPrivilegeEscalation") is False,
                  "%s: allowPrivilegeEscalation false" % label)
    results.check("ALL" in csc.get("capabilities", {}).get("drop", []),
                  "%s: every capability dropped" % label)
    results.check(csc.get("capabilities", {}).get("add") in (None, []),
                  "%s: no capability added" % label)
    seccomp = csc.get("seccompProfile", psc.get("seccompProfile", {}))
    results.eq(seccomp.get("type"), "RuntimeDefault", "%s: seccomp profile" % label)
    tmp = mount_for(c, "/tmp")
    results.check(tmp is not None and tmp[1] == "" and
                  "emptyDir" in (volume(sts, tmp[0]["name"]) or {}),
                  "%s: /tmp is an emptyDir" % label)
    data_mount = mount_for(c, "/var/lib/portolan")
    results.check(data_mount is not None and data_mount[1] == "" and
                  data_mount[0]["name"] in [t["metadata"]["name"]
                                            for t in sts["spec"].get("volumeClaimTemplates", [])],
                  "%s: /var/lib/portolan is a volume claim template" % label)
    for m in c.get("volumeMounts", []):
        if m["mountPath"] not in ("/tmp", "/var/lib/portolan"):
            results.check(m.get("readOnly") is True, "%s: %s mounted read-only" % (
                label, m["mountPath"]))
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for what in ("cpu", "memory"):
            results.check(what in res.get(part, {}), "%s: resources.%s.%s" % (label, part, what))
    grace = spec.get("terminationGracePeriodSeconds")
    results.check(grace == 30, "%s: terminationGracePeriodSeconds %r, want 30 (drain %d s)" % (
        label, grace, SHUTDOWN_TIMEOUT_S))
    keys = [t.get("topologyKey") for t in spec.get("topologySpreadConstraints", [])]
    results.check("topology.kubernetes.io/zone" in keys, "%s: spread across zones" % label)


def check_probes(results, label, sts):
    c = container(sts)
    results.eq(c.get("command"), POD_COMMAND, "%s: pod command" % label)
    results.check(not c.get("args"), "%s: no args beside the pod command" % label)
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz"),
                        ("livenessProbe", "/healthz")):
        p = c.get(probe)
        if not results.check(p is not None and "httpGet" in p, "%s: %s is an httpGet" % (
                label, probe)):
            continue
        results.eq(p["httpGet"].get("path"), path, "%s: %s path" % (label, probe))
        results.eq(port_number(c, p["httpGet"].get("port")), 5000, "%s: %s port" % (label, probe))
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    results.eq(ports, {"http": 5000, "raft": 7000}, "%s: container ports" % label)


def check_services(results, label, objects, sts):
    labels = sts["spec"]["template"]["metadata"]["labels"]
    sel = sts["spec"]["selector"]["matchLabels"]
    results.check(all(labels.get(k) == v for k, v in sel.items()),
                  "%s: the selector matches the pod labels" % label)
    results.eq(sts["spec"].get("podManagementPolicy"), "Parallel",
               "%s: podManagementPolicy" % label)
    results.eq(sts["spec"].get("persistentVolumeClaimRetentionPolicy"),
               {"whenScaled": "Delete", "whenDeleted": "Retain"},
               "%s: a removed pod's volume goes, the StatefulSet's stay" % label)
    svcs = k8s.find(objects, "Service", sts["spec"].get("serviceName"))
    if not results.check(len(svcs) == 1, "%s: serviceName %r names a Service" % (
            label, sts["spec"].get("serviceName"))):
        return
    svc = svcs[0]["spec"]
    results.eq(svc.get("clusterIP"), "None", "%s: peer Service is headless" % label)
    results.check(svc.get("publishNotReadyAddresses") is True,
                  "%s: peer Service publishes not-ready pods" % label)
    results.check(svc.get("selector") and all(labels.get(k) == v
                                              for k, v in svc["selector"].items()),
                  "%s: peer Service selects the pods" % label)
    results.eq(sorted(p["port"] for p in svc.get("ports", [])), [5000, 7000],
               "%s: peer Service ports" % label)


def check_references(results, label, objects, sts):
    """Every ConfigMap/Secret the pod names exists; the files the pod reads exist."""
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    c = container(sts)
    for v in pod_spec(sts).get("volumes", []):
        if "configMap" in v:
            results.check(("ConfigMap", v["configMap"]["name"]) in names,
                          "%s: ConfigMap %s exists" % (label, v["configMap"]["name"]))
        if "secret" in v:
            results.check(("Secret", v["secret"]["secretName"]) in names,
                          "%s: Secret %s exists" % (label, v["secret"]["secretName"]))
    for e in c.get("env", []) + c.get("envFrom", []):
        src = e.get("valueFrom", e)
        for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret"),
                          ("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if key in src:
                results.check((kind, src[key]["name"]) in names, "%s: %s %s exists" % (
                    label, kind, src[key]["name"]))
    for var in ("PORTOLAN_CONFIG", "PORTOLAN_CLUSTER_FILE", "PORTOLAN_PASSWORD_FILE"):
        path = env_value(c, var)
        results.check(path is not None and file_at(objects, sts, path) is not None,
                      "%s: %s=%s is a file of a mounted ConfigMap or Secret" % (label, var, path))


def settings(objects, sts):
    raw = file_at(objects, sts, env_value(container(sts), "PORTOLAN_CONFIG") or "")
    return k8s.parse_yaml(raw.decode()) if raw else {}


def cluster_file(objects, sts):
    raw = file_at(objects, sts, env_value(container(sts), "PORTOLAN_CLUSTER_FILE") or "")
    return k8s.parse_yaml(raw.decode()) if raw else {}


def check_secrets(results, label, objects, sts, work):
    c = container(sts)
    conf = settings(objects, sts)
    pw_path = conf.get("initial_admin_password_file")
    results.eq(pw_path, env_value(c, "PORTOLAN_PASSWORD_FILE"),
               "%s: the node and the pod command read one admin password file" % label)
    pw = file_at(objects, sts, pw_path or "")
    results.check(pw is not None and len(pw.strip()) >= 16,
                  "%s: admin password in the Secret (16 characters or more)" % label)
    tls_dir = env_value(c, "PORTOLAN_PEER_TLS_DIR")
    name = sts["metadata"]["name"]
    replicas = sts["spec"]["replicas"]
    want = replicas if label != "single" else k8s.SINGLE_SECRETS_REPLICAS
    ca = file_at(objects, sts, "%s/ca.crt" % tls_dir)
    if not results.check(ca is not None, "%s: %s/ca.crt" % (label, tls_dir)):
        return
    ca_path = os.path.join(work, "%s-ca.crt" % label)
    with open(ca_path, "wb") as f:
        f.write(ca)
    for i in range(want):
        region = "%s-%d" % (name, i)
        crt = file_at(objects, sts, "%s/%s.crt" % (tls_dir, region))
        key = file_at(objects, sts, "%s/%s.key" % (tls_dir, region))
        if not results.check(crt is not None and key is not None,
                             "%s: certificate and key of %s in the Secret" % (label, region)):
            continue
        path = os.path.join(work, "%s-%s.crt" % (label, region))
        with open(path, "wb") as f:
            f.write(crt)
        v = subprocess.run(["openssl", "verify", "-CAfile", ca_path, path], capture_output=True,
                           text=True)
        results.check(v.returncode == 0, "%s: %s.crt signed by ca.crt: %s" % (
            label, region, (v.stderr or v.stdout).strip()[-200:]))
        san = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-ext", "subjectAltName"],
                             capture_output=True, text=True)
        results.check("DNS:%s" % region in san.stdout.split(), "%s: %s.crt names DNS:%s (%s)" % (
            label, region, region, " ".join(san.stdout.split())))


def voters(cf):
    return [r for r in cf.get("regions", []) if r.get("role", "voter") == "voter"]


def check_single_cluster(results, objects, sts):
    label = "single"
    c = container(sts)
    cf = cluster_file(objects, sts)
    boot = int(env_value(c, "PORTOLAN_BOOTSTRAP_MEMBERS") or "3")
    name, svc = sts["metadata"]["name"], sts["spec"]["serviceName"]
    results.check(sts["spec"]["replicas"] >= boot,
                  "%s: replicas %d cover the %d bootstrapped members" % (
                      label, sts["spec"]["replicas"], boot))
    want = [{"name": "%s-%d" % (name, i), "id": i + 1,
             "address": "%s-%d.%s:7000" % (name, i, svc),
             "url": "http://%s-%d.%s:5000" % (name, i, svc), "role": "voter"}
            for i in range(boot)]
    results.eq(cf.get("regions"), want, "%s: cluster file regions" % label)
    results.check(env_value(c, "PORTOLAN_PEER_DOMAIN", ).startswith(svc + "."),
                  "%s: PORTOLAN_PEER_DOMAIN under the headless Service" % label)
    pdbs = k8s.find(objects, "PodDisruptionBudget")
    if results.check(len(pdbs) == 1, "%s: one PodDisruptionBudget" % label):
        pdb = pdbs[0]["spec"]
        labels = sts["spec"]["template"]["metadata"]["labels"]
        results.check(all(labels.get(k) == v
                          for k, v in pdb["selector"]["matchLabels"].items()),
                      "%s: the budget selects the pods" % label)
        n = len(voters(cf))
        mu = pdb.get("maxUnavailable")
        results.check(isinstance(mu, int) and n - mu >= n // 2 + 1,
                      "%s: maxUnavailable %r keeps a majority of %d voters" % (label, mu, n))


def check_multi_region(results, renders):
    files = {}
    for r in k8s.REGIONS:
        objects = renders[r]
        sts = k8s.find(objects, "StatefulSet")[0]
        cf = cluster_file(objects, sts)
        files[r] = cf
        pod = "%s-0" % sts["metadata"]["name"]
        results.eq(sts["spec"]["replicas"], 1, "%s: one pod, the region" % r)
        results.eq(pod, "portolan-%s-0" % r, "%s: the pod's (region's) name" % r)
        mine = [x for x in cf.get("regions", []) if x.get("name") == pod]
        results.check(len(mine) == 1, "%s: %s in the cluster file" % (r, pod))
        peers = [o for o in k8s.find(objects, "Service")
                 if o["spec"].get("type") == "LoadBalancer" and
                 any(p["port"] == 7000 for p in o["spec"].get("ports", []))]
        if results.check(len(peers) == 1, "%s: a LoadBalancer Service for the peer port" % r):
            spec = peers[0]["spec"]
            results.eq(spec.get("selector"), {"statefulset.kubernetes.io/pod-name": pod},
                       "%s: peer Service selects the region's pod" % r)
            results.check(spec.get("publishNotReadyAddresses") is True,
                          "%s: peer Service publishes the pod before it is ready" % r)
            host = peers[0]["metadata"].get("annotations", {}).get(
                "external-dns.alpha.kubernetes.io/hostname")
            if mine:
                results.eq("%s:7000" % host, mine[0]["address"],
                           "%s: the peer Service's host name is the region's address" % r)
        env = env_of(container(sts))
        url = env.get("PORTOLAN_PUBLIC_URL", {}).get("value")
        if mine:
            results.eq(url, mine[0]["url"], "%s: public URL is the region's url" % r)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            results.eq(container(sts)[probe]["httpGet"].get("scheme"), "HTTPS",
                       "%s: %s speaks HTTPS (the pod serves TLS)" % (r, probe))
        https = settings(objects, sts)
        for key in ("tls_cert", "tls_key"):
            results.check(file_at(objects, sts, https.get(key, "")) is not None,
                          "%s: %s is a file of a mounted Secret" % (r, key))
    first = files[k8s.REGIONS[0]]
    for r in k8s.REGIONS[1:]:
        results.check(files[r] == first, "%s: same cluster file as %s" % (r, k8s.REGIONS[0]))
    vs = voters(first)
    results.check(len(vs) >= 3, "multi-region: at least three voters (%d)" % len(vs))
    majority = len(vs) // 2 + 1
    for r in k8s.REGIONS:
        here = [v for v in vs if v["name"] == "portolan-%s-0" % r]
        results.check(len(vs) - len(here) >= majority,
                      "multi-region: losing %s leaves a majority of voters" % r)
    standbys = [x["name"] for x in first.get("regions", []) if x.get("role") == "standby"]
    results.eq(standbys, ["portolan-sa-0"], "multi-region: the far region is a standby")
    ids = [x["id"] for x in first.get("regions", [])]
    results.check(len(set(ids)) == len(ids), "multi-region: region ids unique")


def main(results):
    why = k8s.missing_tools()
    if why:
        print("test_k8s_manifests: skipped: %s" % why)
        raise harness.Skip(why)
    k8s.ensure_node_modules()
    print("test_k8s_manifests: %s" % k8s.kubectl_version())
    work = tempfile.mkdtemp(prefix="k8s-manifests-")
    try:
        dirs = k8s.prepare(work, harness.portolan_bin())
        renders = {}

        @results.test
        def render_and_validate():
            for label, d in dirs.items():
                objects, errors = k8s.validate(k8s.render(d))
                renders[label] = objects
                results.check(not errors, "%s: schema: %s" % (label, "; ".join(errors[:8])))
                kinds = sorted(o["kind"] for o in objects)
                results.check("StatefulSet" in kinds and "PodDisruptionBudget" in kinds,
                              "%s: rendered %s" % (label, kinds))

        for label in [lbl for lbl in dirs if lbl in renders and lbl != "base"]:
            objects = renders[label]
            sts_all = k8s.find(objects, "StatefulSet")

            def one(label=label, objects=objects, sts_all=sts_all):
                results.require(len(sts_all) == 1, "%s: one StatefulSet" % label)
                sts = sts_all[0]
                check_probes(results, label, sts)
                check_security(results, label, sts)
                check_services(results, label, objects, sts)
                check_references(results, label, objects, sts)
                check_secrets(results, label, objects, sts, work)
            results.run("invariants_%s" % label, one)

        if "single" in renders:
            results.run("single_cluster", check_single_cluster, results, renders["single"],
                        k8s.find(renders["single"], "StatefulSet")[0])
        if all(r in renders for r in k8s.REGIONS):
            results.run("multi_region", check_multi_region, results, renders)

        @results.test
        def base_secrets_are_external():
            # The base alone names the Secrets make-secrets.sh provides, and no others.
            objects = renders.get("base", [])
            sts = k8s.find(objects, "StatefulSet")
            results.require(sts, "base: no StatefulSet")
            names = sorted(v["secret"]["secretName"] for v in pod_spec(sts[0])["volumes"]
                           if "secret" in v)
            results.eq(names, ["portolan-admin", "portolan-peer-tls"], "base: Secrets named")
            results.check(not k8s.find(objects, "Secret"), "base: holds no Secret")
            text = open(os.path.join(k8s.K8S_DIR, "make-secrets.sh")).read()
            for n in names:
                results.check(re.search(r"\b%s\b" % re.escape(n), text) is not None,
                              "make-secrets.sh makes %s" % n)
    finally:
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)
