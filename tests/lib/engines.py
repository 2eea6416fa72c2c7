"""engines.py - podman, buildah and containerd (ctr) for integration tests, cut off from the
host's container state.

Role: run the real container engines against a registry under test the way users do (login,
push, pull, build), with every byte they keep inside one directory of the test's. Python 3
standard library only; the engines are Debian 12 packages (podman, buildah, containerd).

- Storage (podman and buildah share one): a private containers-storage (driver vfs, its own
  graph root and run root, storage.conf, registries.conf, policy.json, containers.conf) under
  a work directory; an empty default auth file (REGISTRY_AUTH_FILE), so an engine given no
  credentials sends none. As root, containers/image keeps its blob-info cache in
  /var/lib/containers/cache whatever the flags say (buildah sets no cache directory), so each
  command runs in a private mount namespace (`unshare --mount`) with the work directory's
  varlib/ bound over /var/lib: nothing lands in the host's /var/lib.
- Containerd starts a private containerd daemon as root with its root, state, sockets and
  config under a short directory in /tmp (a unix socket path is limited to 108 bytes), the
  CRI plugin and the snapshotters that need kernel features disabled; Containerd.ctr runs
  `ctr --address SOCK --namespace tests ...`. stop() ends the daemon it started (by pid).

Everything here runs as root (rootless podman needs user namespaces and a subuid range this
machine's test runs do not set up). Each run returns subprocess.CompletedProcess with text output; check=True raises
RuntimeError with the tail of stderr. Passwords go to the engines on stdin
(--password-stdin) or in --creds/--user arguments (the test's own random ones).
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class EngineError(RuntimeError):
    """A command of an engine failed (check=True): the message carries its stderr."""


def _run(cmd, env, cwd, timeout, check, input=None, what=None):
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise EngineError("%s failed (%d): %s" % (what or " ".join(cmd[:3]), p.returncode,
                                                  (p.stderr or p.stdout).strip()[-1500:]))
    return p


class Storage:
    """A private containers-storage and configuration for podman and buildah under workdir
    (created; owned by the caller)."""

    def __init__(self, workdir):
        self.workdir = os.path.abspath(workdir)
        w = self.workdir
        for sub in ("root", "run", "tmp", "home", "config", "varlib"):
            os.makedirs(os.path.join(w, sub), exist_ok=True)
        self.root = os.path.join(w, "root")
        self.runroot = os.path.join(w, "run")
        self.varlib = os.path.join(w, "varlib")
        self.storage_conf = _write(os.path.join(w, "storage.conf"),
                                   '[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n'
                                   % (self.runroot, self.root))
        self.registries_conf = _write(os.path.join(w, "registries.conf"),
                                      'unqualified-search-registries = []\n'
                                      'short-name-mode = "disabled"\n')
        self.policy = _write(os.path.join(w, "policy.json"),
                             '{"default": [{"type": "insecureAcceptAnything"}]}\n')
        self.auth_file = _write(os.path.join(w, "auth.json"), '{"auths": {}}\n')
        self.containers_conf = _write(os.path.join(w, "containers.conf"),
                                      '[engine]\ncgroup_manager = "cgroupfs"\n'
                                      'events_logger = "none"\n')

    def env(self):
        w = self.workdir
        return {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": os.path.join(w, "home"),
            "TMPDIR": os.path.join(w, "tmp"),
            "XDG_CONFIG_HOME": os.path.join(w, "config"),
            "XDG_RUNTIME_DIR": self.runroot,
            "CONTAINERS_CONF": self.containers_conf,
            "CONTAINERS_REGISTRIES_CONF": self.registries_conf,
            "CONTAINERS_STORAGE_CONF": self.storage_conf,
            "REGISTRY_AUTH_FILE": self.auth_file,
            "DOCKER_CONFIG": os.path.join(w, "home"),
        }

    def isolated(self, cmd):
        """cmd run in a private mount namespace with varlib/ over /var/lib."""
        return (["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount --bind "$0" /var/lib && exec "$@"', self.varlib] + list(cmd))

    def run(self, tool, args, check=True, timeout=300, input=None):
        cmd = [tool, "--root", self.root, "--runroot", self.runroot, "--storage-driver", "vfs"]
        if tool == "podman":
            cmd += ["--events-backend", "none", "--cgroup-manager", "cgroupfs"]
        cmd += list(args)
        return _run(self.isolated(cmd), self.env(), self.workdir, timeout, check, input,
                    what="%s %s" % (tool, " ".join(args[:2])))


class Podman:
    """podman on a Storage. tls_verify False: plain HTTP registries."""

    def __init__(self, storage, tls_verify=False):
        self.st = storage
        self.tls = ["--tls-verify=%s" % ("true" if tls_verify else "false")]

    def run(self, *args, check=True, timeout=300, input=None):
        return self.st.run("podman", args, check=check, timeout=timeout, input=input)

    def login(self, host, user, password, authfile, check=True):
        return self.run("login", *self.tls, "--authfile", authfile, "--username", user,
                        "--password-stdin", host, check=check, input=password + "\n")

    def logout(self, host, authfile, check=True):
        return self.run("logout", "--authfile", authfile, host, check=check)

    def pull(self, ref, authfile=None, creds=None, check=True):
        extra = (["--authfile", authfile] if authfile else []) + (
            ["--creds", creds] if creds else [])
        return self.run("pull", *self.tls, "--signature-policy", self.st.policy, *extra, ref,
                        check=check)

    def push(self, src, dst, authfile=None, creds=None, check=True):
        extra = (["--authfile", authfile] if authfile else []) + (
            ["--creds", creds] if creds else [])
        return self.run("push", *self.tls, "--signature-policy", self.st.policy, *extra,
                        src, dst, check=check)


class Buildah:
    """buildah on a Storage: from scratch, copy, config, commit, push."""

    def __init__(self, storage, tls_verify=False):
        self.st = storage
        self.tls = ["--tls-verify=%s" % ("true" if tls_verify else "false")]

    def run(self, *args, check=True, timeout=300, input=None):
        return self.st.run("buildah", args, check=check, timeout=timeout, input=input)

    def build_scratch(self, name, files, labels=None):
        """An image `name` from scratch holding files {path in image: bytes}, with labels;
        returns its image id."""
        ctr = self.run("from", "--signature-policy", self.st.policy, "scratch").stdout.strip()
        try:
            src = tempfile.mkdtemp(prefix="build-", dir=self.st.workdir)
            for path, data in sorted(files.items()):
                local = os.path.join(src, os.path.basename(path))
                with open(local, "wb") as f:
                    f.write(data)
                self.run("copy", ctr, local, path)
            for k, v in sorted((labels or {}).items()):
                self.run("config", "--label", "%s=%s" % (k, v), ctr)
            return self.run("commit", "--quiet", ctr, name).stdout.strip()
        finally:
            self.run("rm", ctr, check=False)

    def push(self, image, dst, creds=None, authfile=None, check=True):
        extra = (["--creds", creds] if creds else []) + (
            ["--authfile", authfile] if authfile else [])
        return self.run("push", *self.tls, "--signature-policy", self.st.policy, *extra,
                        image, dst, check=check)


class Containerd:
    """A private containerd daemon (as root) and ctr against it; see the module comment."""

    DISABLED = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
                "io.containerd.internal.v1.opt"]

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ctrd-", dir="/tmp")
        self.sock = os.path.join(self.dir, "c.sock")
        self.log_path = os.path.join(self.dir, "containerd.log")
        self.config = _write(os.path.join(self.dir, "config.toml"), "\n".join([
            "version = 2",
            'root = "%s"' % os.path.join(self.dir, "root"),
            'state = "%s"' % os.path.join(self.dir, "state"),
            "disabled_plugins = [%s]" % ", ".join('"%s"' % p for p in self.DISABLED),
            "[grpc]",
            '  address = "%s"' % self.sock,
            "[ttrpc]",
            '  address = "%s"' % (self.sock + ".ttrpc"),
            "[debug]",
            '  address = ""',
            "[metrics]",
            '  address = ""',
        ]) + "\n")
        self.proc = None

    @staticmethod
    def available():
        """Why containerd cannot run here ("" when it can): binaries present, running as root."""
        for tool in ("containerd", "ctr"):
            if shutil.which(tool) is None:
                return "%s is not installed (Debian package containerd)" % tool
        if os.geteuid() != 0:
            return "containerd needs root"
        return ""

    def start(self, timeout=30):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(["containerd", "--config", self.config],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EngineError("containerd exited with %s: %s" % (self.proc.returncode,
                                                                    self.log_tail()))
            if os.path.exists(self.sock) and self.ctr("version", check=False).returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise EngineError("containerd did not answer within %ds: %s" % (timeout,
                                                                       self.log_tail()))

    def log_tail(self, n=5):
        try:
            with open(self.log_path, "rb") as f:
                return " | ".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""

    def ctr(self, *args, check=True, timeout=120):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": self.dir}
        return _run(["ctr", "--address", self.sock, "--namespace", "tests"] + list(args), env,
                    self.dir, timeout, check, what="ctr %s" % " ".join(args[:2]))

    def pull(self, ref, user=None, plain_http=True, check=True):
        """`ctr images pull` (unpacked with the native snapshotter); user "name:secret"."""
        args = ["images", "pull", "--snapshotter", "native"]
        if plain_http:
            args.append("--plain-http")
        if user:
            args += ["--user", user]
        return self.ctr(*(args + [ref]), check=check)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None

    def cleanup(self):
        self.stop()
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)
