"""Integration-test harness for Portolan: processes, results, and (re-exported) the client.

Role: everything an integration, soak or failure test needs to drive a registry over HTTP,
using the Python 3 standard library only (Debian 12's python3).

- Node runs one `portolan serve` process on a loopback port with its own data directory and
  waits until GET /healthz answers 200. ReferenceRegistry runs CNCF Distribution
  (`docker-registry`) with the same interface, so every API test can also be run against it.
  Both are context managers; a process started by the harness is always stopped by it.
  host= and wrap= put a process elsewhere: it listens on (and is reached at) that address,
  and is started under that command prefix (tests/lib/partition.py runs regions inside
  network namespaces with wrap=["ip", "netns", "exec", <namespace>]).
- Client (an HTTP/1.1 client), Credentials (Basic or the Bearer token flow), the media
  types and make_image / make_index (content addressed by sha256) are
  tests/lib/registry_client.py, re-exported here: a test imports harness only.
- Access control: Node(auth=True, admin_password=new_password()) runs with access control
  on and that password for the first administrator ("admin") in <root>/admin-password (mode
  0600, given with --initial-admin-password-file); node.admin is that Credentials,
  node.client() sends it, node.cli_env() puts it in PORTOLAN_USER/PORTOLAN_PASSWORD for
  `portolan` commands and node.wait_auth() waits until the administrator can log in.
  Node(auth=False), the default, starts `--auth off`.
- Results is a tiny test framework: a test is a function; it passes when none of its checks
  failed and it raised nothing. Checks marked strict=True cover behaviour that only Portolan
  is required to have (OCI 1.1 features missing from Distribution 2.8); they are enforced
  when results.strict is true and only recorded as "waived" otherwise.

Layout of a process's files: <root>/data (the data directory) and <root>/node.log (stdout and
stderr of every start, appended), where <root> is a fresh temporary directory unless the
caller passes data_dir, in which case <root> is its parent.
"""

import http.client
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

from registry_client import (  # noqa: F401  (re-exported: tests use harness.X)
    ACCEPT_MANIFESTS, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST, DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED, EMPTY_JSON, OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_LAYER, OCI_MANIFEST,
    Client, Credentials, Headers, Manifest, Response, TokenError, canonical_json, descriptor,
    fetch_token, make_image, make_index, next_link, parse_challenge, random_bytes, raw_exchange,
    raw_status, scope_for, sha256_digest, unique_repo, with_query)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_PORTOLAN_BIN = os.path.join(ROOT, "build", "portolan")

# The sanitizer settings tests/run-all.sh uses, so that a module run on its own judges a
# sanitizer build the same way (h2o's recycled-memory caches are suppressed: tests/lsan.supp).
os.environ.setdefault("LSAN_OPTIONS", "suppressions=%s:print_suppressions=0"
                      % os.path.join(ROOT, "tests", "lsan.supp"))
os.environ.setdefault("ASAN_OPTIONS", "abort_on_error=1")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
REFERENCE_BIN = "/usr/bin/docker-registry"


ADMIN_USER = "admin"  # the first administrator's name (--initial-admin-password-file)
_HAS_AUTH = {}  # binary path -> whether `serve` knows --auth


def wait_for(pred, timeout, interval=0.05):
    """pred() until truthy or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def binary_has_auth(binary=None):
    """True when `binary serve --help` lists --auth and --initial-admin-password-file (the
    binaries that have access control); remembered per path."""
    binary = binary or portolan_bin()
    if binary not in _HAS_AUTH:
        try:
            p = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            text = p.stdout + p.stderr
        except (OSError, subprocess.TimeoutExpired):
            text = ""
        _HAS_AUTH[binary] = "--auth" in text and "--initial-admin-password-file" in text
    return _HAS_AUTH[binary]


def new_password():
    """A random password (32 URL-safe characters) for a test's users."""
    return secrets.token_urlsafe(24)


def write_secret_file(path, text):
    """Write text to path with mode 0600 (created so, never world-readable for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return path


def cli_env(creds, base=None):
    """The environment for a `portolan` command that authenticates with creds (a
    Credentials or None: no credentials at all, even inherited ones)."""
    env = dict(os.environ if base is None else base)
    env.pop("PORTOLAN_USER", None)
    env.pop("PORTOLAN_PASSWORD", None)
    if creds is not None and creds.user is not None:
        env["PORTOLAN_USER"] = creds.user
        env["PORTOLAN_PASSWORD"] = creds.password
    return env


def wait_login(url, creds, timeout=60.0, cafile=None):
    """Wait until creds can log in at url (GET /admin/auth/whoami answers 200); returns the
    whoami document. Raises AssertionError with the last answer on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            with Client(url, cafile=cafile, timeout=5, auth=creds) as c:
                r = c.get("/admin/auth/whoami")
            if r.status == 200:
                return r.json()
            last = r.describe()
        except (OSError, http.client.HTTPException) as e:
            last = str(e)
        if time.monotonic() >= deadline:
            raise AssertionError("%s cannot log in at %s within %.0fs: %s"
                                 % (creds.user, url, timeout, last))
        time.sleep(0.05)


_forwarded = {"at": 0.0, "ports": frozenset()}


def _forwarded_ports():
    """Ports that podman's netavark forwards to a container (its DNAT rules in nftables,
    cached for 2 s). A container test that ends without netavark's teardown leaves such a rule
    behind, and it takes every later loopback connection to that port to an address that no
    longer answers: a node given that port looks hung (connections time out, nothing arrives)."""
    now = time.monotonic()
    if now - _forwarded["at"] < 2.0:
        return _forwarded["ports"]
    ports = set()
    if shutil.which("nft") is not None:
        try:
            out = subprocess.run(["nft", "list", "table", "ip", "nat"], capture_output=True,
                                 text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for ln in out.splitlines():
            words = ln.split()
            for i, w in enumerate(words[:-1]):
                if w == "dport" and words[i + 1].isdigit():
                    ports.add(int(words[i + 1]))
    _forwarded.update(at=now, ports=frozenset(ports))
    return _forwarded["ports"]


def _ephemeral_low():
    """The lowest port the kernel hands out by itself (to port-0 binds and to the local end of
    outgoing connections), from /proc/sys/net/ipv4/ip_local_port_range; 32768 if unknown."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago and that no leftover container port
    forward takes over (_forwarded_ports). It is taken below the kernel's ephemeral range when
    there is room: a port chosen from that range can be handed by the kernel to another socket
    (an outgoing connection's local end, a proxy listening on port 0) before the process it
    was chosen for binds it, which then fails to start."""
    taken = _forwarded_ports()
    low = _ephemeral_low()
    if low > 12000:
        rng = random.SystemRandom()
        for _ in range(200):
            port = rng.randrange(10000, low)
            if port in taken:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port
    return port


def portolan_bin():
    return os.environ.get("PORTOLAN_BIN", DEFAULT_PORTOLAN_BIN)


def make_self_signed_cert(directory, cn="127.0.0.1"):
    """Write cert.pem and key.pem (SAN IP:127.0.0.1, DNS:localhost) into directory.

    Returns (cert_path, key_path); the certificate is its own CA, so it works as cafile."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", key, "-out", cert, "-subj", "/CN=" + cn,
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


_last_probe_error = {}

# Checks failed so far in this process (any Results), so a fixture can tell that a failure
# happened while it ran (cluster.Cluster keeps its logs then).
FAILED_CHECKS = [0]


def _probe(url, path, timeout=1.0):
    """Status of GET url+path, or None when nothing answers (the reason is kept in
    _last_probe_error[url] for the message of a start-up that timed out)."""
    parts = urllib.parse.urlsplit(url)
    try:
        if parts.scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                               context=ctx)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as e:
        _last_probe_error[url] = "%s: %s" % (type(e).__name__, e)
        return None


def _stacks(pid):
    """Every thread's stack of process pid (gdb, when installed), for a start-up that hung;
    "" when they cannot be had."""
    if shutil.which("gdb") is None:
        return ""
    try:
        out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex",
                              "thread apply all bt 12"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return "\n".join(ln for ln in out.splitlines() if ln.startswith(("#", "Thread ")))


def keep_failure_file(path, name):
    """Copies path to $PT_FAIL_LOGS (default build/test-failures) as <time>-<pid>-name, so
    what a failure seen once left behind outlives the run's temporary directories; returns
    the copy's path, or None."""
    dest = os.environ.get("PT_FAIL_LOGS", os.path.join(ROOT, "build", "test-failures"))
    try:
        os.makedirs(dest, exist_ok=True)
        out = os.path.join(dest, "%s-%d-%s" % (time.strftime("%Y%m%d-%H%M%S"), os.getpid(),
                                               name))
        shutil.copy(path, out)
        return out
    except OSError:
        return None


def _sockets(port):
    """What `ss` shows on a TCP port (listeners with their processes and queues, then the
    connections), for a node that never answered on it; "" when ss is missing."""
    if shutil.which("ss") is None:
        return ""
    out = []
    for args in (["-ltnpe"], ["-tanp"]):
        try:
            r = subprocess.run(["ss"] + args + ["( sport = :%d or dport = :%d )" % (port, port)],
                               capture_output=True, text=True, timeout=10)
            out += r.stdout.splitlines()[:20]
        except (OSError, subprocess.SubprocessError):
            pass
    return "\n".join(out)


class _Process:
    """A server process on a loopback port with a data directory (see module comment)."""

    kind = "process"
    ready_path = "/healthz"

    def __init__(self, data_dir=None, args=(), env=None, tls=None, port=None, host=None,
                 wrap=()):
        if data_dir is None:
            self._tmp_root = tempfile.mkdtemp(prefix="pt-%s-" % self.kind)
            data_dir = os.path.join(self._tmp_root, "data")
        else:
            self._tmp_root = None
        self.data_dir = os.path.abspath(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        self.root = os.path.dirname(self.data_dir)
        self.log_path = os.path.join(self.root, "node.log")
        self.args = list(args)
        self.env = dict(env or {})
        self.tls = tls
        self.port = port or free_port()
        # host: the address the process listens on and tests reach it at (default loopback);
        # wrap: a command prefix the process is started under, e.g. ["ip", "netns", "exec",
        # "<name>"] to run it inside a network namespace (the prefix must exec the command,
        # so that the pid seen here is the server's).
        self.host = host or "127.0.0.1"
        self.wrap = list(wrap)
        scheme = "https" if tls else "http"
        self.url = "%s://%s:%d" % (scheme, self.host, self.port)
        self.proc = None
        self.returncode = None

    def command(self):
        raise NotImplementedError

    def _is_ready(self):
        return _probe(self.url, self.ready_path) == 200

    def start(self, timeout=20):
        if self.running():
            return self
        env = dict(os.environ)
        env.update(self.env)
        cmd = self.wrap + self.command()
        with open(self.log_path, "ab") as log:
            log.write(("=== %s start: %s\n" % (time.strftime("%H:%M:%S"), " ".join(cmd))).encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=env, cwd=self.root)
        self.returncode = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise RuntimeError("%s exited with %s during start-up; log tail:\n%s"
                                   % (self.kind, self.returncode, self.log_tail()))
            if self._is_ready():
                return self
            time.sleep(0.05)
        last = _last_probe_error.get(self.url, "answered, not 200")
        stacks = _stacks(self.proc.pid)
        sockets = _sockets(self.port)
        if sockets:
            stacks = (stacks + "\n" if stacks else "") + "sockets on the port:\n" + sockets
        if stacks:
            with open(self.log_path, "a") as log:
                log.write("=== not ready after %ss (last probe: %s); threads:\n%s\n"
                          % (timeout, last, stacks))
        self.kill9()
        kept = keep_failure_file(self.log_path, "%s-%d.log" % (self.kind, self.port))
        raise RuntimeError("%s not ready on %s after %ss (last probe: %s; %s; log kept in %s);"
                           " log tail:\n%s"
                           % (self.kind, self.url, timeout, last,
                              "thread stacks logged" if stacks else "no stacks", kept,
                              self.log_tail()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def kill9(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.returncode = self.proc.returncode
        self.proc = None

    def restart(self, timeout=20):
        """Stop if running, then start again with the same data directory and port."""
        self.stop()
        return self.start(timeout)

    def pid(self):
        return self.proc.pid if self.proc else None

    def rss_anon_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
        raise RuntimeError("no RssAnon in /proc/%d/status" % self.proc.pid)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    SANITIZER_MARKS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
                       "leak of ")

    def sanitizer_reports(self, limit=6):
        """Lines of the log that come from AddressSanitizer/UBSan/LeakSanitizer reports."""
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        hits = [ln.strip() for ln in text.splitlines()
                if any(m in ln for m in self.SANITIZER_MARKS)]
        return hits[:limit]

    def death_note(self):
        """Why the process is not serving: its exit status and sanitizer lines or log tail."""
        if self.proc is not None and self.proc.poll() is not None:
            self.returncode = self.proc.returncode
        lines = self.sanitizer_reports() or self.log_tail(4).splitlines()
        keep = "" if os.environ.get("PT_KEEP_TMP") else " (PT_KEEP_TMP=1 keeps it)"
        return "%s exited with status %s; log %s%s: %s" % (
            self.kind, self.returncode, self.log_path, keep, " | ".join(lines))

    def guard(self, results, fn):
        """fn wrapped for results.run: it fails at once when the process is no longer running,
        and says so when the process died while fn ran."""
        def guarded(*args, **kwargs):
            results.require(self.running(), "not run: " + self.death_note())
            try:
                return fn(*args, **kwargs)
            finally:
                if not self.running():
                    results.check(False, "the process died during this test: "
                                  + self.death_note())
        guarded.__name__ = getattr(fn, "__name__", "guarded")
        return guarded

    admin = None  # Credentials of the first administrator when access control is on

    def client(self, cafile=None, auth="admin", timeout=30):
        """A new Client; auth "admin" (default): the administrator's credentials when access
        control is on, else none; or a Credentials / None."""
        if auth == "admin":
            auth = self.admin
        return Client(self.url, cafile=cafile, auth=auth, timeout=timeout)

    def auth_headers(self):
        """{"Authorization": Basic admin} when access control is on, else {}."""
        return self.admin.headers() if self.admin is not None else {}

    def cli_env(self, creds="admin"):
        """Environment for a `portolan` command run against this process (see cli_env)."""
        return cli_env(self.admin if creds == "admin" else creds)

    def cleanup(self):
        """Remove the temporary root this object created (kept if PT_KEEP_TMP is set)."""
        if self._tmp_root and not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(self._tmp_root, ignore_errors=True)
            self._tmp_root = None

    def __enter__(self):
        if not self.running():
            try:
                self.start()
            except BaseException:
                self.cleanup()
                raise
        return self

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            self.cleanup()
        return False


class Node(_Process):
    """A portolan process: `portolan serve --listen HOST:PORT --data-dir DIR` (HOST 127.0.0.1
    unless host is given; wrap: a command prefix it runs under, see _Process).

    auth: False (default) runs `--auth off`; True leaves access control on (the default).
    admin_password (with auth=True): the first administrator's password, written to
    <root>/admin-password (mode 0600) and given with --initial-admin-password-file; without
    it the node takes the password from its own flags or environment, or generates one into
    <data-dir>/initial-admin-password. self.admin is Credentials("admin", that password) (read
    after start when the node chose it)."""

    kind = "portolan"
    ready_path = "/healthz"

    def __init__(self, data_dir=None, args=(), env=None, tls=None, port=None, binary=None,
                 auth=False, admin_password=None, host=None, wrap=()):
        super().__init__(data_dir, args, env, tls, port, host, wrap)
        self.binary = binary or portolan_bin()
        # Tests that do not exercise access control run with it off (the node listens on
        # loopback, the one place `--auth off` is allowed); auth=True or an explicit --auth
        # in args leaves it to the test.
        self.auth = auth or any(a == "--auth" or a.startswith("--auth=") for a in self.args)
        self.admin_password_file = None
        if admin_password is not None:
            if not self.auth:
                raise ValueError("admin_password needs auth=True")
            if not binary_has_auth(self.binary):
                raise RuntimeError("%s has no access control (serve --help lists no --auth)"
                                   % self.binary)
            self.admin_password_file = write_secret_file(
                os.path.join(self.root, "admin-password"), admin_password)
            self.admin = Credentials(ADMIN_USER, admin_password)

    def command(self):
        cmd = [self.binary, "serve", "--listen", "%s:%d" % (self.host, self.port),
               "--data-dir", self.data_dir]
        if self.tls:
            cmd += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        if not self.auth:
            cmd += ["--auth", "off"]
        elif self.admin_password_file is not None:
            cmd += ["--initial-admin-password-file", self.admin_password_file]
        return cmd + self.args

    def start(self, timeout=20):
        super().start(timeout)
        if self.auth and self.admin is None:
            self.admin = self._configured_admin()
        return self

    def _configured_admin(self):
        """Credentials of the first administrator when the node chose the password itself:
        --initial-admin-password-file in args, else $PORTOLAN_INITIAL_ADMIN_PASSWORD of env,
        else the file the node generated (<data-dir>/initial-admin-password); None if none."""
        path = None
        for i, a in enumerate(self.args):
            if a == "--initial-admin-password-file" and i + 1 < len(self.args):
                path = self.args[i + 1]
            elif a.startswith("--initial-admin-password-file="):
                path = a.split("=", 1)[1]
        if path is None and self.env.get("PORTOLAN_INITIAL_ADMIN_PASSWORD"):
            return Credentials(ADMIN_USER, self.env["PORTOLAN_INITIAL_ADMIN_PASSWORD"])
        path = path or os.path.join(self.data_dir, "initial-admin-password")
        try:
            with open(path) as f:
                return Credentials(ADMIN_USER, f.read().strip())
        except OSError:
            return None

    def wait_auth(self, timeout=60.0, cafile=None):
        """With access control on: wait until the administrator can log in (the first
        administrator is a replicated write); returns the whoami document, None when off."""
        if self.admin is None:
            return None
        return wait_login(self.url, self.admin, timeout, cafile)


class ReferenceRegistry(_Process):
    """CNCF Distribution 2.8 (Debian's docker-registry) with filesystem storage in data_dir.

    args is ignored (the registry takes a config file); env may carry REGISTRY_* overrides."""

    kind = "reference"
    ready_path = "/v2/"

    def command(self):
        cfg = os.path.join(self.root, "registry.yml")
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            "    rootdirectory: %s" % self.data_dir,
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            "  addr: 127.0.0.1:%d" % self.port,
            "  secret: portolan-integration-tests",
        ]
        if self.tls:
            lines += ["  tls:", "    certificate: %s" % self.tls[0], "    key: %s" % self.tls[1]]
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        return [REFERENCE_BIN, "serve", cfg]


def registry_for(target, **kwargs):
    """An unstarted Node ("portolan") or ReferenceRegistry ("reference")."""
    if target == "portolan":
        return Node(**kwargs)
    if target == "reference":
        kwargs.pop("args", None)
        kwargs.pop("binary", None)
        return ReferenceRegistry(**kwargs)
    raise ValueError("unknown target %r" % target)


# -- results --------------------------------------------------------------------------------


def _describe_exception(e):
    tb = traceback.extract_tb(e.__traceback__)
    where = ""
    if tb:
        # The innermost frame that belongs to a test file, else the innermost.
        frames = [f for f in tb if os.path.basename(f.filename).startswith("test_")] or tb
        where = " (%s:%d)" % (os.path.basename(frames[-1].filename), frames[-1].lineno)
    return "%s: %s%s" % (type(e).__name__, e, where)


class TestFailure(Exception):
    """Raised by Results.require to end the current test."""


class Skip(Exception):
    """Raised by Results.skip to skip the current test."""


class Results:
    """Pass/fail bookkeeping per test function.

    Use as a decorator that runs the test at once:
        @results.test
        def blob_upload(): results.check(r.status == 201, "status %d" % r.status)
        @results.test(strict=True)      # portolan-only: skipped unless results.strict
        def referrers(): ...
    or results.run(name, fn, *args, strict=False), or results.check(...) outside any test,
    which counts as a test of its own. Inside a test, check/eq record a failure and go on,
    require ends the test, skip skips it, and an exception fails it. A check with strict=True
    is enforced only when results.strict; otherwise a failure of it is recorded in
    results.waived. target is "portolan" or "reference"; strict defaults to target ==
    "portolan"."""

    def __init__(self, target="portolan", strict=None, verbose=False, out=None):
        self.target = target
        self.strict = (target == "portolan") if strict is None else strict
        self.verbose = verbose
        self.out = out or sys.stdout
        self.module = ""
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []  # (name, reasons)
        self.waived = []  # (name, reason)
        self._current = None  # reasons of the running test
        self._current_name = None
        self.name_filter = None  # substring: tests whose names lack it are not run
        self.max_reasons = 6  # per failure line, unless verbose

    def _name(self, name):
        return "%s::%s" % (self.module, name) if self.module else name

    def _emit(self, line):
        self.out.write(line + "\n")
        self.out.flush()

    def test(self, fn=None, *, strict=False, name=None):
        def deco(f):
            self.run(name or f.__name__, f, strict=strict)
            return f
        return deco(fn) if fn is not None else deco

    def run(self, name, fn, *args, strict=False, **kwargs):
        full = self._name(name)
        if self.name_filter and self.name_filter not in full:
            return None
        if strict and not self.strict:
            self.skipped += 1
            if self.verbose:
                self._emit("SKIP %s: portolan-only" % full)
            return None
        outer, outer_name = self._current, self._current_name
        self._current, self._current_name = [], full
        value = None
        t0 = time.monotonic()
        try:
            value = fn(*args, **kwargs)
        except Skip as e:
            self._current, self._current_name = outer, outer_name
            self.skipped += 1
            if self.verbose:
                self._emit("SKIP %s: %s" % (full, e))
            return None
        except TestFailure as e:
            FAILED_CHECKS[0] += 1
            self._current.append(str(e))
        except Exception as e:  # a test's own crash is a failure, not the runner's
            FAILED_CHECKS[0] += 1
            self._current.append(_describe_exception(e))
        reasons = self._current
        self._current, self._current_name = outer, outer_name
        if reasons:
            self.fail(full, reasons)
        else:
            self.passed += 1
            if self.verbose:
                self._emit("ok   %s (%.1fs)" % (full, time.monotonic() - t0))
        return value

    def fail(self, full_name, reasons):
        if isinstance(reasons, str):
            reasons = [reasons]
        self.failed += 1
        self.failures.append((full_name, reasons))
        shown = reasons if self.verbose else reasons[:self.max_reasons]
        more = len(reasons) - len(shown)
        line = "; ".join(r.replace("\n", " | ") for r in shown)
        if more:
            line += "; (+%d more, -v shows all)" % more
        self._emit("FAIL %s: %s" % (full_name, line))

    def check(self, cond, msg, strict=False):
        """Record msg as a failure of the running test unless cond. Returns bool(cond)."""
        if cond:
            if self._current is None:
                self.passed += 1
            return True
        if strict and not self.strict:
            where = self._current_name or self._name("-")
            self.waived.append((where, msg))
            if self.verbose:
                self._emit("WAIVED %s: %s (portolan-only)" % (where, msg))
            return False
        FAILED_CHECKS[0] += 1
        if self._current is None:
            self.fail(self._name(msg), [msg])
        else:
            self._current.append(msg)
        return False

    def eq(self, actual, expected, what, strict=False):
        return self.check(actual == expected, "%s: got %r, want %r" % (what, actual, expected),
                          strict=strict)

    def require(self, cond, msg):
        """Like check, but ends the running test when cond is false."""
        if not cond:
            raise TestFailure(msg)

    def skip(self, reason):
        raise Skip(reason)

    def summary(self):
        line = "%d passed, %d failed" % (self.passed, self.failed)
        if self.skipped:
            line += ", %d skipped" % self.skipped
        return line


def make_test_ca(d):
    """Create a CA and a server certificate for IP 127.0.0.1 under ``d`` with openssl.

    Returns (ca_cert, server_cert, server_key) paths. The CA file is also copied into
    ``d/certs/ca.crt`` for skopeo's cert-dir (which must not contain the server key)."""

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)

    ossl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    ossl("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2", "-subj",
         "/CN=Portolan test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt")
    ossl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key")
    ossl("req", "-new", "-key", "server.key", "-subj", "/CN=127.0.0.1", "-out", "server.csr")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-sha256", "-extfile", "server.ext",
         "-out", "server.crt")
    certs = os.path.join(d, "certs")
    os.makedirs(certs, exist_ok=True)
    shutil.copy(os.path.join(d, "ca.crt"), os.path.join(certs, "ca.crt"))
    os.chmod(certs, 0o755)
    os.chmod(os.path.join(certs, "ca.crt"), 0o644)
    return os.path.join(d, "ca.crt"), os.path.join(d, "server.crt"), os.path.join(d, "server.key")
