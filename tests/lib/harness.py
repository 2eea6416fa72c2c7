"""Integration-test harness for Portolan: processes, an HTTP client, image builders, results.

Role: everything an integration, soak or failure test needs to drive a registry over HTTP,
using the Python 3 standard library only (Debian 12's python3).

- Node runs one `portolan serve` process on a loopback port with its own data directory and
  waits until GET /healthz answers 200. ReferenceRegistry runs CNCF Distribution
  (`docker-registry`) with the same interface, so every API test can also be run against it.
  Both are context managers; a process started by the harness is always stopped by it.
- Client speaks HTTP/1.1 over one keep-alive connection (http.client), sends the path
  exactly as given (tests need malformed paths), and returns a Response whose body is fully
  read. Streaming request bodies (file objects, iterables) are sent with the Content-Length
  the caller provides.
- make_image / make_index build valid OCI (or Docker schema 2) content addressed by sha256.
- Results is a tiny test framework: a test is a function; it passes when none of its checks
  failed and it raised nothing. Checks marked strict=True cover behaviour that only Portolan
  is required to have (OCI 1.1 features missing from Distribution 2.8); they are enforced
  when results.strict is true and only recorded as "waived" otherwise.

Layout of a process's files: <root>/data (the data directory) and <root>/node.log (stdout and
stderr of every start, appended), where <root> is a fresh temporary directory unless the
caller passes data_dir, in which case <root> is its parent.
"""

import hashlib
import http.client
import json
import os
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

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_PORTOLAN_BIN = os.path.join(ROOT, "build", "portolan")

# The sanitizer settings tests/run-all.sh uses, so that a module run on its own judges a
# sanitizer build the same way (h2o's recycled-memory caches are suppressed: tests/lsan.supp).
os.environ.setdefault("LSAN_OPTIONS", "suppressions=%s:print_suppressions=0"
                      % os.path.join(ROOT, "tests", "lsan.supp"))
os.environ.setdefault("ASAN_OPTIONS", "abort_on_error=1")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
REFERENCE_BIN = "/usr/bin/docker-registry"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# Accept header listing every manifest type; Distribution refuses to serve an OCI manifest
# to a client that does not accept it.
ACCEPT_MANIFESTS = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])

EMPTY_JSON = b"{}"


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


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


def _probe(url, path, timeout=1.0):
    """Status of GET url+path, or None when nothing answers."""
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
    except (OSError, http.client.HTTPException):
        return None


class _Process:
    """A server process on a loopback port with a data directory (see module comment)."""

    kind = "process"
    ready_path = "/healthz"

    def __init__(self, data_dir=None, args=(), env=None, tls=None, port=None):
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
        scheme = "https" if tls else "http"
        self.url = "%s://127.0.0.1:%d" % (scheme, self.port)
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
        cmd = self.command()
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
        self.kill9()
        raise RuntimeError("%s not ready on %s after %ss; log tail:\n%s"
                           % (self.kind, self.url, timeout, self.log_tail()))

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

    def client(self, cafile=None):
        return Client(self.url, cafile=cafile)

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
    """A portolan process: `portolan serve --listen 127.0.0.1:PORT --data-dir DIR`."""

    kind = "portolan"
    ready_path = "/healthz"

    def __init__(self, data_dir=None, args=(), env=None, tls=None, port=None, binary=None):
        super().__init__(data_dir, args, env, tls, port)
        self.binary = binary or portolan_bin()

    def command(self):
        cmd = [self.binary, "serve", "--listen", "127.0.0.1:%d" % self.port,
               "--data-dir", self.data_dir]
        if self.tls:
            cmd += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        return cmd + self.args


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


class Headers:
    """Response headers: case-insensitive; get() returns the first value, getall() all."""

    def __init__(self, pairs):
        self._pairs = list(pairs)

    def getall(self, name):
        n = name.lower()
        return [v for k, v in self._pairs if k.lower() == n]

    def get(self, name, default=None):
        vals = self.getall(name)
        return vals[0] if vals else default

    def __getitem__(self, name):
        vals = self.getall(name)
        if not vals:
            raise KeyError(name)
        return vals[0]

    def __contains__(self, name):
        return bool(self.getall(name))

    def keys(self):
        seen = []
        for k, _ in self._pairs:
            if k.lower() not in seen:
                seen.append(k.lower())
        return seen

    def items(self):
        return list(self._pairs)

    def __repr__(self):
        return "Headers(%r)" % self._pairs


class Response:
    def __init__(self, status, headers, body, reason="", version=11):
        self.status = status
        self.headers = headers
        self.body = body
        self.reason = reason
        self.version = version  # 11 for HTTP/1.1, 10 for HTTP/1.0
        self.truncated = False  # the body was shorter than its Content-Length

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def error_codes(self):
        """The codes of an OCI error body {"errors":[{"code":..}]}, [] when there is none."""
        try:
            doc = self.json()
            return [e.get("code") for e in doc.get("errors", [])]
        except (ValueError, AttributeError, UnicodeDecodeError):
            return []

    def describe(self, limit=120):
        body = " ".join(self.body[:limit * 2].decode("utf-8", "replace").split())
        if len(body) > limit:
            body = body[:limit] + "..."
        return ("%d %s" % (self.status, body)).strip()

    def __repr__(self):
        return "Response(%s)" % self.describe()


class _CountingHTTPConnection(http.client.HTTPConnection):
    connects = 0

    def connect(self):
        super().connect()
        self.connects += 1


class _CountingHTTPSConnection(http.client.HTTPSConnection):
    connects = 0

    def connect(self):
        super().connect()
        self.connects += 1


class Client:
    """HTTP/1.1 client on one persistent connection to base_url.

    request() sends path verbatim. body: None, bytes, a file object or an iterable of bytes;
    a file object or iterable is streamed, and a Content-Length must then be given in headers
    (without one, http.client would use chunked encoding). connects counts TCP connections
    opened so far, so tests can assert keep-alive."""

    def __init__(self, base_url, cafile=None, timeout=30):
        parts = urllib.parse.urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port
        self.timeout = timeout
        self.https = parts.scheme == "https"
        if self.https:
            if cafile:
                self.ssl_context = ssl.create_default_context(cafile=cafile)
            else:
                self.ssl_context = ssl.create_default_context()
                self.ssl_context.check_hostname = False
                self.ssl_context.verify_mode = ssl.CERT_NONE
        self._conn = None
        self._closed_connects = 0

    @property
    def connects(self):
        return self._closed_connects + (self._conn.connects if self._conn else 0)

    def _connection(self):
        if self._conn is None:
            if self.https:
                self._conn = _CountingHTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                      context=self.ssl_context, blocksize=65536)
            else:
                self._conn = _CountingHTTPConnection(self.host, self.port, timeout=self.timeout,
                                                     blocksize=65536)
        return self._conn

    def close(self):
        if self._conn is not None:
            self._closed_connects += self._conn.connects
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def request(self, method, path, headers=None, body=None):
        headers = dict(headers or {})
        replayable = body is None or isinstance(body, (bytes, bytearray))
        for attempt in (0, 1):
            conn = self._connection()
            reused = conn.sock is not None
            try:
                return self._exchange(conn, method, path, headers, body)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                # A keep-alive connection the server had already closed: send once more.
                if attempt == 0 and reused and replayable:
                    continue
                raise
            except BaseException:
                self.close()
                raise

    def _exchange(self, conn, method, path, headers, body):
        try:
            conn.request(method, path, body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            # The server may have answered early (e.g. 413) and closed: read that answer.
            if conn.sock is None:
                raise
        resp = conn.getresponse()
        truncated = False
        try:
            data = resp.read()
        except http.client.IncompleteRead as e:
            # Body shorter than its Content-Length: keep what came, drop the connection.
            data, truncated = e.partial, True
        out = Response(resp.status, Headers(resp.getheaders()), data, resp.reason, resp.version)
        out.truncated = truncated
        if resp.will_close or truncated:
            self.close()
        return out

    def get(self, path, headers=None):
        return self.request("GET", path, headers)

    def head(self, path, headers=None):
        return self.request("HEAD", path, headers)

    def delete(self, path, headers=None):
        return self.request("DELETE", path, headers)

    # -- convenience for the distribution API --------------------------------------------

    def push_blob(self, repo, data):
        """Upload data monolithically (POST ?digest=); falls back to POST + PUT when the
        registry answers 202 (single-POST upload is optional in the spec). Returns the
        digest; raises AssertionError on any other answer."""
        digest = sha256_digest(data)
        hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        r = self.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, digest), hdrs, data)
        if r.status == 202:
            loc = self.location_path(r.headers.get("Location", ""))
            r = self.request("PUT", with_query(loc, digest=digest), hdrs, data)
        if r.status != 201:
            raise AssertionError("push_blob %s %s: %s" % (repo, digest, r.describe()))
        return digest

    def put_manifest(self, repo, ref, obj_or_bytes, media_type=None):
        if isinstance(obj_or_bytes, (bytes, bytearray)):
            data = bytes(obj_or_bytes)
            if media_type is None:
                media_type = json.loads(data).get("mediaType")
        else:
            data = canonical_json(obj_or_bytes)
            if media_type is None:
                media_type = obj_or_bytes.get("mediaType")
        hdrs = {"Content-Type": media_type or OCI_MANIFEST}
        return self.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), hdrs, data)

    def get_manifest(self, repo, ref, method="GET"):
        return self.request(method, "/v2/%s/manifests/%s" % (repo, ref),
                            {"Accept": ACCEPT_MANIFESTS})

    def tags(self, repo):
        """The tag list of repo ([] for a 404)."""
        r = self.get("/v2/%s/tags/list" % repo)
        if r.status == 404:
            return []
        if r.status != 200:
            raise AssertionError("tags %s: %s" % (repo, r.describe()))
        return r.json().get("tags") or []

    def catalog(self):
        """Every repository name, following Link pagination."""
        names = []
        path = "/v2/_catalog?n=1000"
        for _ in range(1000):
            r = self.get(path)
            if r.status != 200:
                raise AssertionError("catalog: %s" % r.describe())
            names += r.json().get("repositories") or []
            nxt = next_link(r)
            if not nxt:
                return names
            path = nxt
        raise AssertionError("catalog: pagination does not end")

    def location_path(self, location):
        """A Location header value as a request path (absolute URLs are reduced)."""
        parts = urllib.parse.urlsplit(location)
        path = parts.path
        if parts.query:
            path += "?" + parts.query
        return path


def with_query(path, **params):
    """path with params appended to its query string."""
    sep = "&" if "?" in path else "?"
    return path + sep + urllib.parse.urlencode(params)


def next_link(resp):
    """The path of a Link: <...>; rel="next" header, or None."""
    link = resp.headers.get("Link")
    if not link:
        return None
    for part in link.split(","):
        part = part.strip()
        if 'rel="next"' in part or "rel=next" in part:
            start, end = part.find("<"), part.find(">")
            if start >= 0 and end > start:
                url = part[start + 1:end]
                parts = urllib.parse.urlsplit(url)
                return parts.path + ("?" + parts.query if parts.query else "")
    return None


def raw_exchange(url, data, timeout=5.0, read_limit=1 << 20, half_close=False):
    """Send raw bytes on a fresh connection and return whatever comes back until the server
    closes, the timeout expires, or read_limit bytes arrived. For malformed requests.
    half_close shuts the sending side after data, so the server sees the request end."""
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    if parts.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname=parts.hostname)
    out = b""
    try:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        while len(out) < read_limit:
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, OSError):
                break
            if not chunk:
                break
            out += chunk
            # One complete response without a body is enough.
            if b"\r\n\r\n" in out and _raw_complete(out):
                break
    finally:
        sock.close()
    return out


def _raw_complete(data):
    head, _, rest = data.partition(b"\r\n\r\n")
    length = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            try:
                length = int(v.strip())
            except ValueError:
                return False
    return length is not None and len(rest) >= length


def raw_status(data):
    """Status code of a raw HTTP response, or None."""
    try:
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        return int(line.split()[1])
    except (IndexError, ValueError):
        return None


# -- content builders -----------------------------------------------------------------------


def canonical_json(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


def descriptor(media_type, data, **extra):
    d = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    d.update(extra)
    return d


class Manifest:
    """A manifest's bytes with its object, media type and digest; blobs lists the
    (digest, bytes) it needs pushed first (config and layers), children the manifests an
    index refers to."""

    def __init__(self, obj, media_type=None, blobs=(), children=(), raw=None):
        self.obj = obj
        self.media_type = media_type or obj.get("mediaType")
        self.bytes = raw if raw is not None else canonical_json(obj)
        self.digest = sha256_digest(self.bytes)
        self.size = len(self.bytes)
        self.blobs = list(blobs)
        self.children = list(children)

    def descriptor(self, **extra):
        d = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        d.update(extra)
        return d

    def push(self, client, repo, ref=None):
        """Push blobs, child manifests (by digest), then this manifest by ref (default: its
        digest). Returns the manifest PUT Response; raises AssertionError unless 201."""
        for child in self.children:
            child.push(client, repo)
        for digest, data in self.blobs:
            client.push_blob(repo, data)
        r = client.put_manifest(repo, ref or self.digest, self.bytes, self.media_type)
        if r.status != 201:
            raise AssertionError("push manifest %s:%s: %s" % (repo, ref, r.describe()))
        return r


def random_bytes(n):
    return os.urandom(n)


def make_image(layers=2, layer_size=1024, docker=False, artifact_type=None, subject=None,
               annotations=None, config=None, config_media_type=None, layer_media_type=None):
    """An image manifest with a config blob and `layers` random layers of layer_size bytes.

    docker=True makes a Docker schema 2 manifest. artifact_type, subject (a descriptor dict
    or a Manifest) and annotations fill the OCI 1.1 fields. config (bytes) replaces the
    generated config; with artifact_type set and no config, the empty descriptor {} is used."""
    layer_data = [random_bytes(layer_size) for _ in range(layers)]
    if config is None:
        if artifact_type and not docker:
            config = EMPTY_JSON
            config_media_type = config_media_type or OCI_EMPTY
        else:
            config = canonical_json({
                "architecture": "amd64",
                "os": "linux",
                "created": "2024-01-01T00:00:00Z",
                "rootfs": {"type": "layers",
                           "diff_ids": [sha256_digest(d) for d in layer_data]},
                "config": {},
            })
    if docker:
        mt, cmt, lmt = DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER
    else:
        mt, cmt, lmt = OCI_MANIFEST, OCI_CONFIG, OCI_LAYER
    cmt = config_media_type or cmt
    lmt = layer_media_type or lmt
    obj = {"schemaVersion": 2, "mediaType": mt}
    if artifact_type:
        obj["artifactType"] = artifact_type
    obj["config"] = descriptor(cmt, config)
    obj["layers"] = [descriptor(lmt, d) for d in layer_data]
    if subject is not None:
        obj["subject"] = subject.descriptor() if isinstance(subject, Manifest) else subject
    if annotations:
        obj["annotations"] = dict(annotations)
    blobs = [(sha256_digest(config), config)] + [(sha256_digest(d), d) for d in layer_data]
    img = Manifest(obj, mt, blobs)
    img.config = config
    img.layers = layer_data
    return img


def make_index(manifests, docker=False, annotations=None, platforms=True, artifact_type=None,
               subject=None):
    """An image index (or Docker manifest list) over Manifest objects; artifact_type and
    subject (a descriptor dict or a Manifest) fill the OCI 1.1 fields."""
    mt = DOCKER_LIST if docker else OCI_INDEX
    entries = []
    for i, m in enumerate(manifests):
        d = m.descriptor()
        if platforms:
            d["platform"] = {"architecture": ["amd64", "arm64", "s390x", "ppc64le"][i % 4],
                             "os": "linux"}
        entries.append(d)
    obj = {"schemaVersion": 2, "mediaType": mt}
    if artifact_type:
        obj["artifactType"] = artifact_type
    obj["manifests"] = entries
    if subject is not None:
        obj["subject"] = subject.descriptor() if isinstance(subject, Manifest) else subject
    if annotations:
        obj["annotations"] = dict(annotations)
    return Manifest(obj, mt, children=manifests)


_counter = [0]


def unique_repo(prefix="t"):
    """A repository name not used before in this process."""
    _counter[0] += 1
    return "%s/r%d-%s" % (prefix, _counter[0], os.urandom(3).hex())


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
            self._current.append(str(e))
        except Exception as e:  # a test's own crash is a failure, not the runner's
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
