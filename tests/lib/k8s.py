"""k8s.py - renders Portolan's Kubernetes manifests (deploy/k8s) the way an operator does, for
the tests that check them (test_k8s_manifests) and run them (test_k8s_pods).

Role: one place that knows how a deployment is put together: copy deploy/k8s into a work
directory, make its Secrets with deploy/k8s/make-secrets.sh (a cluster CA, peer certificates
and an administrator password; for the multi-region regions also a client HTTPS certificate
made here with openssl), render each kustomization with `kubectl kustomize` and turn the
YAML into objects with tests/k8s/validate.mjs, which also validates every object against the
Kubernetes API schemas (npm package kubernetes-models, installed in tests/k8s/node_modules
by scripts/deps.sh --test, or here with `npm ci` when missing).

Python 3 standard library only; kubectl (Debian: kubernetes-client), node and npm and openssl
are the tools. Nothing is written outside the caller's work directory and tests/k8s.
"""

import json
import os
import shutil
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S_DIR = os.path.join(ROOT, "deploy", "k8s")
NODE_DIR = os.path.join(ROOT, "tests", "k8s")
REGIONS = ("eu", "us", "ap", "sa")  # deploy/k8s/overlays/multi-region/<r>
SINGLE_SECRETS_REPLICAS = 5  # make-secrets.sh's default: keys for portolan-0 .. portolan-4


class RenderError(RuntimeError):
    """A tool failed: the message carries its output."""


def _run(cmd, cwd=None, timeout=300, input=None):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if p.returncode != 0:
        raise RenderError("%s failed (%d): %s" % (" ".join(cmd[:3]), p.returncode,
                                                  (p.stderr or p.stdout).strip()[-2000:]))
    return p.stdout


def missing_tools():
    """Why the manifests cannot be rendered and checked here ("" when they can)."""
    for tool, pkg in (("kubectl", "kubernetes-client"), ("node", "nodejs"), ("npm", "npm"),
                      ("openssl", "openssl")):
        if shutil.which(tool) is None:
            return "%s is not installed (Debian package %s; scripts/deps.sh --test)" % (tool, pkg)
    return ""


def kubectl_version():
    """`kubectl version --client` in one line, for the test's log."""
    p = subprocess.run(["kubectl", "version", "--client"], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    return " ".join((p.stdout or p.stderr).split())[:200]


def ensure_node_modules():
    """tests/k8s/node_modules as package-lock.json pins it (npm ci when it is missing)."""
    if os.path.isdir(os.path.join(NODE_DIR, "node_modules", "kubernetes-models")) and \
            os.path.isdir(os.path.join(NODE_DIR, "node_modules", "yaml")):
        return
    _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, timeout=600)


def prepare(work, portolan_bin, regions=True):
    """Copies deploy/k8s into work/k8s and makes every Secret its kustomizations read (the
    single-cluster one with keys for SINGLE_SECRETS_REPLICAS pods, and, with regions, one per
    region of the multi-region layout, all under one CA). Returns {label: kustomization
    directory} for "base" (no Secrets), "single" (deploy/k8s) and each region made."""
    k8s = os.path.join(work, "k8s")
    shutil.copytree(K8S_DIR, k8s, ignore=shutil.ignore_patterns("secrets"))
    make = os.path.join(k8s, "make-secrets.sh")
    _run([make, "--portolan", portolan_bin, "--replicas", str(SINGLE_SECRETS_REPLICAS)])
    dirs = {"base": os.path.join(k8s, "base"), "single": k8s}
    ca = os.path.join(work, "multi-region-ca")
    for r in REGIONS if regions else ():
        d = os.path.join(k8s, "overlays", "multi-region", r)
        host = "%s.registry.example" % r
        cert, key = os.path.join(work, host + ".crt"), os.path.join(work, host + ".key")
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + host,
              "-addext", "subjectAltName=DNS:" + host])
        _run([make, "--portolan", portolan_bin, "--out", os.path.join(d, "secrets"),
              "--regions", "portolan-%s-0" % r, "--ca-dir", ca, "--https-cert", cert,
              "--https-key", key])
        dirs[r] = d
    return dirs


def render(kdir):
    """`kubectl kustomize kdir` as YAML text."""
    return _run(["kubectl", "kustomize", kdir])


def validate(yaml_text):
    """(objects, errors) of tests/k8s/validate.mjs over one rendered YAML stream: the objects
    in order, and every schema error as "Kind/name: error"."""
    p = subprocess.run(["node", os.path.join(NODE_DIR, "validate.mjs"), "-"], input=yaml_text,
                       capture_output=True, text=True, timeout=300, cwd=NODE_DIR)
    if p.returncode not in (0, 1):
        raise RenderError("validate.mjs failed (%d): %s" % (p.returncode, p.stderr.strip()[-2000:]))
    out = json.loads(p.stdout)
    errors = ["%s/%s: %s" % (e["kind"], e["name"], e["error"]) for e in out["errors"]]
    return [o["object"] for o in out["objects"]], errors


def parse_yaml(text):
    """A YAML document (a ConfigMap's file, say) as Python data, parsed by the npm yaml package
    (the Python here has no YAML parser of its own)."""
    script = ("import {parse} from 'yaml'; import {readFileSync} from 'node:fs';"
              "process.stdout.write(JSON.stringify(parse(readFileSync(0, 'utf8'))));")
    p = subprocess.run(["node", "--input-type=module", "-e", script], input=text,
                       capture_output=True, text=True, timeout=60, cwd=NODE_DIR)
    if p.returncode != 0:
        raise RenderError("yaml parse failed: %s" % p.stderr.strip()[-1000:])
    return json.loads(p.stdout)


def find(objects, kind, name=None):
    """The objects of kind (and name, when given)."""
    return [o for o in objects if o.get("kind") == kind and
            (name is None or o.get("metadata", {}).get("name") == name)]


def secret_files(secret):
    """{key: bytes} of a rendered Secret (data base64, line breaks allowed; stringData)."""
    import base64
    files = {}
    for k, v in (secret.get("data") or {}).items():
        files[k] = base64.b64decode("".join(v.split()))
    for k, v in (secret.get("stringData") or {}).items():
        files[k] = v.encode()
    return files
