"""registry_client.py - the client side of the distribution API for Portolan's tests: media
types, content addressed by sha256, and an HTTP client.

Role: what a test needs to speak to a registry, with the Python 3 standard library only
(Debian 12's python3); tests/lib/harness.py starts the registry and re-exports every name here,
so tests use them as harness.X.

- Client speaks HTTP/1.1 over one keep-alive connection (http.client), sends the path
  exactly as given (tests need malformed paths), and returns a Response whose body is fully
  read. Streaming request bodies (file objects, iterables) are sent with the Content-Length
  the caller provides. raw_exchange sends bytes that are not HTTP at all.
- Credentials and Client(auth=...) speak access control the way registry clients do: mode
  "basic" sends Authorization: Basic on every request; mode "bearer" follows the Docker token
  flow (a 401 with `WWW-Authenticate: Bearer realm=..,service=..,scope=..` -> GET the realm
  with Basic and the scope -> retry with `Authorization: Bearer <token>`), keeping one token
  per scope until it expires or is refused. fetch_token and parse_challenge are the pieces.
- make_image / make_index build valid OCI (or Docker schema 2) content addressed by sha256.
"""

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import time
import urllib.parse

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


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


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
    opened so far, so tests can assert keep-alive.

    auth: None (send no credentials) or a Credentials (borrowed): every request that does
    not carry its own Authorization header gets them (see Credentials for the two modes).
    tokens_fetched counts the tokens a bearer client obtained from the realm."""

    def __init__(self, base_url, cafile=None, timeout=30, auth=None):
        parts = urllib.parse.urlsplit(base_url)
        self.auth = auth
        self.cafile = cafile
        self._tokens = {}  # scope text -> (token, monotonic expiry)
        self._challenge = None  # (realm, service) of the registry's last Bearer challenge
        self.tokens_fetched = 0
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
        if self.auth is None or any(k.lower() == "authorization" for k in headers):
            return self._send(method, path, headers, body, replayable)
        if self.auth.mode == "basic" or not path.startswith("/v2/"):
            # The admin API and the other non-registry paths take Basic credentials.
            headers.update(self.auth.headers())
            return self._send(method, path, headers, body, replayable)
        scope = scope_for(method, path)
        if not replayable and scope not in self._tokens:
            self._learn_challenge()
            if self._challenge is not None:
                self._fetch(scope, scope)
        token = self._cached(scope)
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        r = self._send(method, path, headers, body, replayable)
        if r.status != 401 or not replayable:
            return r
        scheme, params = parse_challenge(r.headers.get("WWW-Authenticate", ""))
        if scheme != "bearer" or "realm" not in params:
            return r
        self._challenge = (params["realm"], params.get("service", ""))
        self._tokens.pop(scope, None)
        if not self._fetch(scope, params.get("scope") or scope):
            return r
        headers["Authorization"] = "Bearer " + self._tokens[scope][0]
        return self._send(method, path, headers, body, replayable)

    def _cached(self, scope):
        hit = self._tokens.get(scope)
        if hit is None or hit[1] <= time.monotonic():
            return None
        return hit[0]

    def _learn_challenge(self):
        """Asks GET /v2/ without credentials for the realm and service of the challenge."""
        if self._challenge is not None:
            return
        r = self._send("GET", "/v2/", {}, None, True)
        scheme, params = parse_challenge(r.headers.get("WWW-Authenticate", ""))
        if r.status == 401 and scheme == "bearer" and "realm" in params:
            self._challenge = (params["realm"], params.get("service", ""))

    def _fetch(self, key, scope):
        """Gets a token for scope (space-separated scopes) from the realm and keeps it under
        key (the scope a request computed); True on success."""
        realm, service = self._challenge
        try:
            doc = fetch_token(realm, service, scope.split() if scope else [], self.auth,
                              cafile=self.cafile, timeout=self.timeout)
        except TokenError:
            return False
        self.tokens_fetched += 1
        # Renew a little early: a token is refused once expired.
        life = max(1, int(doc.get("expires_in") or 60) - 5)
        self._tokens[key] = (doc.get("token") or doc.get("access_token"),
                             time.monotonic() + life)
        return True

    def _send(self, method, path, headers, body, replayable):
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


# -- access control -------------------------------------------------------------------------


class Credentials:
    """A user name and password, or an API token's id and secret ("ptk_...").

    mode "basic": a Client sends them as Authorization: Basic on every request. mode
    "bearer": a Client sends them only to the token realm (GET <realm>?service=&scope= with
    Basic) and sends the registry the token it got (Authorization: Bearer), as docker,
    containerd and containers/image do. Paths outside /v2/ (the admin API) get Basic in both
    modes. A Credentials with user None stands for anonymous: no Basic header anywhere, and
    in bearer mode anonymous tokens from the realm."""

    def __init__(self, user, password, mode="basic"):
        if mode not in ("basic", "bearer"):
            raise ValueError("mode is basic or bearer")
        self.user = user
        self.password = password
        self.mode = mode

    def basic_header(self):
        raw = ("%s:%s" % (self.user, self.password)).encode()
        return "Basic " + base64.b64encode(raw).decode()

    def headers(self):
        """{"Authorization": "Basic ..."} ({} for anonymous)."""
        return {} if self.user is None else {"Authorization": self.basic_header()}

    def bearer(self):
        """The same credentials in bearer mode."""
        return Credentials(self.user, self.password, "bearer")

    def __repr__(self):  # never the password
        return "Credentials(%r, %s)" % (self.user, self.mode)


class TokenError(Exception):
    """The token realm refused or failed: .status (None: no answer) and .body."""

    def __init__(self, msg, status=None, body=b""):
        super().__init__(msg)
        self.status = status
        self.body = body


def parse_challenge(value):
    """(scheme in lower case, {param: value}) of a WWW-Authenticate value such as
    'Bearer realm="https://r/token",service="portolan",scope="repository:a:pull"'.
    Quoted values may hold commas and escaped quotes. ("", {}) for an empty value."""
    value = (value or "").strip()
    if not value:
        return "", {}
    scheme, _, rest = value.partition(" ")
    params = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            out = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(rest[i])
                i += 1
            i += 1
            params[key] = "".join(out)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


def scope_for(method, path):
    """The Docker token scope a request on path needs: "repository:<name>:pull" for reads,
    ":pull,push" for writes, ":delete" for DELETE, "registry:catalog:*" for the catalog, ""
    for /v2/ itself."""
    p = urllib.parse.urlsplit(path).path
    if p.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    rest = p[len("/v2/"):]
    for marker in ("/manifests/", "/blobs/", "/tags/", "/referrers/"):
        k = rest.find(marker)
        if k > 0:
            name = rest[:k]
            if method in ("GET", "HEAD"):
                actions = "pull"
            elif method == "DELETE":
                actions = "delete"
            else:
                actions = "pull,push"
            return "repository:%s:%s" % (name, actions)
    return ""


def fetch_token(realm, service, scopes=(), creds=None, cafile=None, timeout=30, offline=False,
                method="GET"):
    """The realm's JSON answer ({"token", "access_token", "expires_in", "issued_at",
    "refresh_token"?}) for scopes (a list of scope texts, each its own scope= parameter).

    GET sends creds (a Credentials, or None/anonymous) as Basic; POST sends the OAuth2 form
    (grant_type=password with username and password). Raises TokenError unless 200 with a
    token."""
    parts = urllib.parse.urlsplit(realm)
    params = [("service", service)] if service else []
    params += [("scope", s) for s in scopes if s]
    headers = {}
    body = None
    path = parts.path or "/"
    if method == "GET":
        if offline:
            params.append(("offline_token", "true"))
        if creds is not None and creds.user is not None:
            headers["Authorization"] = creds.basic_header()
        query = urllib.parse.urlencode(params)
        if parts.query:
            query = parts.query + ("&" + query if query else "")
        if query:
            path += "?" + query
    else:
        form = [("grant_type", "password"), ("client_id", "portolan-tests")] + params
        if creds is not None and creds.user is not None:
            form += [("username", creds.user), ("password", creds.password)]
        if offline:
            form.append(("access_type", "offline"))
        body = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    base = "%s://%s" % (parts.scheme, parts.netloc)
    with Client(base, cafile=cafile, timeout=timeout) as c:
        try:
            r = c.request(method, path, headers, body)
        except (OSError, http.client.HTTPException) as e:
            raise TokenError("token realm %s: %s" % (realm, e))
    if r.status != 200:
        raise TokenError("token realm %s: %s" % (realm, r.describe()), r.status, r.body)
    try:
        doc = r.json()
    except ValueError:
        raise TokenError("token realm %s: not JSON: %s" % (realm, r.describe()), r.status,
                         r.body)
    if not (doc.get("token") or doc.get("access_token")):
        raise TokenError("token realm %s: no token in %s" % (realm, r.describe()), r.status,
                         r.body)
    return doc


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
