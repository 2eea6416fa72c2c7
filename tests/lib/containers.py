"""containers.py - the one helper for tests that run containers: the Portolan image, podman
and podman-compose on a private container storage.

Role: tests/integration/test_image.py and test_compose.py (and any later test that runs the
image) get podman and podman-compose configured for this machine, and the image built once
per test run.

Design:
- Storage: tests/lib/engines.py's private containers-storage (own graph and run roots,
  registries.conf, policy.json, auth file) with the overlay driver where the kernel has it
  (vfs otherwise: it copies every layer in full, several times slower to build on), and a
  containers.conf that makes `podman run`
  work as root here (NOTES.md "Running containers here"): [containers] default_ulimits = []
  (root lacks CAP_SYS_RESOURCE), [engine] cgroup_manager = "cgroupfs" and runtime = "runc"
  (crun refuses the hybrid cgroup layout), events_logger = "none", and netavark's network
  definitions and libpod's temporary state under the work directory, not in /etc or /run.
  No podman flags are needed on top, so podman-compose (which runs plain `podman`) works the
  same way through the environment (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, ...).
- Image builds (deploy/image.sh: mmdebstrap, podman import, buildah bud) run in a private
  mount namespace with the work directory's varlib/ over /var/lib, as engines.py does, since
  containers/image keeps a blob-info cache in /var/lib/containers as root whatever the flags
  say. Commands that run containers do not: podman keeps each container's network namespace
  as a mount under /run/netns, which a later podman command (ps, kill, podman-compose down)
  must see, and a mount made inside a private namespace is invisible outside it. They pull
  nothing (every image is local), so they write nothing under /var/lib.
- The work directory is $PT_CONTAINERS_DIR when set (tests/run-all.sh sets one per run),
  else build/test-containers in the repository. Tests of one run share it, so the image is
  built once: ensure_image() hashes the sources that go into the image (CMakeLists.txt,
  proto/, replication/, node/, deploy/Containerfile, deploy/image.sh, deploy/pod-start.sh)
  and rebuilds with
  deploy/image.sh only when no image labelled with that hash is in the storage;
  ensure_compose_images() does the same for the compose demo's WAN and Prometheus images.
  Base tarballs and Debian packages are cached in <work>/image-cache.
- skip_reason() says why containers cannot run on this machine ("" when they can): not root,
  a tool missing, or `podman run` of the image failing for a reason outside the project.

Threads: none; one test process at a time uses a work directory.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engines  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
IMAGE = "localhost/portolan:latest"
HASH_LABEL = "org.portolan.source-sha256"
# What deploy/image.sh puts into the image; a change to any of these rebuilds it.
IMAGE_SOURCES = ["CMakeLists.txt", "proto", "replication", "node", "deploy/Containerfile",
                 "deploy/image.sh", "deploy/pod-start.sh"]

# What `deploy/image.sh --compose-images` puts into the compose demo's images.
COMPOSE_IMAGES = ["localhost/portolan-wan:latest", "localhost/portolan-prometheus:latest"]
COMPOSE_SOURCES = ["tests/lib/wan.py", "tests/lib/wan_proxy.py", "deploy/compose/wan",
                   "deploy/compose/prometheus/Containerfile", "deploy/image.sh"]

_storage = None
_image_checked = None


class ContainerError(engines.EngineError):
    """A podman, podman-compose or image.sh command failed (check=True)."""


def work_dir():
    """The run's container work directory (created)."""
    d = os.environ.get("PT_CONTAINERS_DIR") or os.path.join(REPO, "build", "test-containers")
    os.makedirs(d, exist_ok=True)
    return os.path.abspath(d)


def _kernel_has_overlay():
    try:
        with open("/proc/filesystems") as f:
            return any(line.split()[-1:] == ["overlay"] for line in f)
    except OSError:
        return False


def storage():
    """The shared engines.Storage of this run, with the containers.conf described above."""
    global _storage
    if _storage is None:
        st = engines.Storage(os.path.join(work_dir(), "storage"))
        # overlay where the kernel has it (as root it needs no helper); vfs copies every
        # layer in full, which makes builds several times slower.
        driver = "overlay" if _kernel_has_overlay() else "vfs"
        st.root = os.path.join(st.workdir, "root-" + driver)
        with open(st.storage_conf, "w") as f:
            f.write('[storage]\ndriver = "%s"\nrunroot = "%s"\ngraphroot = "%s"\n'
                    % (driver, st.runroot, st.root))
        netdir = os.path.join(st.workdir, "networks")
        tmpdir = os.path.join(st.workdir, "libpod-tmp")
        os.makedirs(netdir, exist_ok=True)
        os.makedirs(tmpdir, exist_ok=True)
        with open(st.containers_conf, "w") as f:
            f.write("[containers]\n"
                    "default_ulimits = []\n"
                    "[engine]\n"
                    'cgroup_manager = "cgroupfs"\n'
                    'runtime = "runc"\n'
                    'events_logger = "none"\n'
                    'tmp_dir = "%s"\n'
                    "[network]\n"
                    'network_backend = "netavark"\n'
                    'network_config_dir = "%s"\n' % (tmpdir, netdir))
        _storage = st
    return _storage


def env(extra=None):
    """The environment podman, buildah, podman-compose and deploy/image.sh run with."""
    e = storage().env()
    e["LANG"] = "C.UTF-8"
    if extra:
        e.update(extra)
    return e


def _run(cmd, check=True, timeout=300, input=None, extra_env=None, cwd=None, isolated=False):
    st = storage()
    p = subprocess.run(st.isolated(cmd) if isolated else cmd, env=env(extra_env),
                       cwd=cwd or st.workdir,
                       capture_output=True, text=True, timeout=timeout, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise ContainerError("%s failed (%d): %s" % (" ".join(cmd[:3]), p.returncode,
                                                     (p.stderr or p.stdout).strip()[-2000:]))
    return p


def podman(*args, check=True, timeout=300, input=None):
    """`podman ARGS` on the run's storage; subprocess.CompletedProcess (text)."""
    return _run(["podman"] + list(args), check=check, timeout=timeout, input=input)


def podman_compose(compose_file, *args, project=None, check=True, timeout=600, extra_env=None):
    """`podman-compose -f FILE [-p PROJECT] ARGS` on the run's storage, run from the compose
    file's directory (relative paths in the file are relative to it)."""
    cmd = ["podman-compose", "-f", os.path.abspath(compose_file)]
    if project:
        cmd += ["-p", project]
    return _run(cmd + list(args), check=check, timeout=timeout, extra_env=extra_env,
                cwd=os.path.dirname(os.path.abspath(compose_file)))


def source_hash(sources=None):
    """sha256 over the paths and contents of sources (default IMAGE_SOURCES; files sorted by
    path)."""
    h = hashlib.sha256()
    for top in sources or IMAGE_SOURCES:
        root = os.path.join(REPO, top)
        paths = [root] if os.path.isfile(root) else sorted(
            os.path.join(d, n) for d, _, names in os.walk(root) for n in names
            if not n.endswith((".pyc", ".orig", ".rej")))
        for p in sorted(paths):
            h.update(os.path.relpath(p, REPO).encode() + b"\0")
            with open(p, "rb") as f:
                h.update(f.read())
            h.update(b"\0")
    return h.hexdigest()


def image_label(name=IMAGE):
    """The source hash label of image name in the storage, or None if there is no such image."""
    p = podman("image", "inspect", "--format", '{{index .Config.Labels "%s"}}' % HASH_LABEL,
               name, check=False)
    return p.stdout.strip() if p.returncode == 0 else None


def ensure_image(log=print):
    """Builds IMAGE with deploy/image.sh unless the storage holds one made from the current
    sources; returns (image name, seconds the build took, 0 when reused)."""
    want = source_hash()
    if image_label() == want:
        return IMAGE, 0.0
    t0 = time.monotonic()
    p = _run(["bash", os.path.join(REPO, "deploy", "image.sh"), "--tag", IMAGE,
              "--cache", os.path.join(work_dir(), "image-cache"),
              "--label", "%s=%s" % (HASH_LABEL, want)], timeout=1800, isolated=True)
    took = time.monotonic() - t0
    for line in p.stdout.splitlines():
        if line.startswith("image.sh: built"):
            log(line)
    if image_label() != want:
        raise ContainerError("deploy/image.sh finished but %s carries no label %s" % (
            IMAGE, HASH_LABEL))
    return IMAGE, took


def ensure_compose_images(log=print):
    """Builds COMPOSE_IMAGES (`deploy/image.sh --compose-images`) unless both carry the hash of
    the current COMPOSE_SOURCES; returns the seconds the build took (0 when reused)."""
    want = source_hash(COMPOSE_SOURCES)
    if all(image_label(n) == want for n in COMPOSE_IMAGES):
        return 0.0
    t0 = time.monotonic()
    p = _run(["bash", os.path.join(REPO, "deploy", "image.sh"), "--compose-images",
              "--cache", os.path.join(work_dir(), "image-cache"),
              "--label", "%s=%s" % (HASH_LABEL, want)], timeout=1800, isolated=True)
    for line in p.stdout.splitlines():
        if line.startswith("image.sh: built"):
            log(line)
    return time.monotonic() - t0


def image_size(name=IMAGE):
    """Size in bytes of image name as podman reports it (all layers, uncompressed)."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", name).stdout.strip())


def skip_reason():
    """Why containers cannot run on this machine; "" when they can."""
    if os.geteuid() != 0:
        return "running containers here needs root (rootless podman needs a subuid range)"
    for tool, pkg in (("podman", "podman"), ("buildah", "buildah"), ("runc", "runc"),
                      ("mmdebstrap", "mmdebstrap"), ("unshare", "util-linux"),
                      ("netavark", "netavark")):
        if shutil.which(tool) is None and not os.path.exists("/usr/lib/podman/" + tool):
            return "%s is not installed (Debian package %s; scripts/deps.sh --test)" % (tool, pkg)
    global _image_checked
    if _image_checked is None:
        # A container from an imported one-file image shows whether podman run works at all.
        p = podman("run", "--rm", "--network", "none", "--entrypoint", "/bin/true",
                   "localhost/debian:bookworm-slim", check=False, timeout=120) \
            if podman("image", "exists", "localhost/debian:bookworm-slim",
                      check=False).returncode == 0 else None
        if p is not None and p.returncode != 0:
            _image_checked = "podman run fails here: %s" % (p.stderr.strip()[-300:])
        else:
            _image_checked = ""
    return _image_checked
