"""test_auth_clients.py - access control with real registry clients, on one node and on a
cluster of three regions, both with `--auth on`.

Role: prove that what docker-compatible clients do to log in works against Portolan: the
challenge on /v2/, the token realm (/token, GET with Basic and POST with a form), Bearer
tokens on every request, and refusals that clients report the way users expect. Clients:
skopeo (containers/image), podman, buildah, containerd's ctr, curl and the tests' own Python
client (tests/lib/registry_client.py), all isolated from the host (tests/lib/images.py,
tests/lib/engines.py).

One node (auth on, first administrator "admin" with a random password):
  - token_flow_python / token_flow_curl: GET /v2/ -> 401 with `WWW-Authenticate: Bearer
    realm,service`; GET <realm>?service&scope with Basic -> {token, access_token, expires_in,
    issued_at}; the request again with `Authorization: Bearer` -> 200; POST /token
    (grant_type=password, then refresh_token with offline access); wrong password -> 401.
  - skopeo_login_copy: `skopeo login --authfile` then copy both ways (oci: -> registry ->
    dir:, byte-identical); a wrong password is refused by login.
  - podman_login_push_pull, buildah_push_creds, ctr_pull_user: each engine against the node
    (`portolan auth whoami` reads podman's auth file too).
  - pull_only_token: an API token with pull on team/** pulls but cannot push: 403 at the HTTP
    level; skopeo and podman fail with "denied".
  - pattern_scope: a token for team/* reads team/x, not other/x (skopeo and HTTP).
  - expired_token: a token made with `portolan token create --expires 3s` is refused (401)
    once expired: by Basic, by the realm, and a Bearer token issued for it before.
  - anonymous_pull: rule public/**: anonymous skopeo copy from public/x works, from private/y
    fails with 401; anonymous push refused; rule removed: public/x refused too.
  - catalog_filtering: a user with team/* sees only team/ repositories (Basic and Bearer).
  - admin_api_needs_admin: /admin/* answers 401 without credentials, 403 to a user without
    admin, 200 to the administrator; whoami tells each who they are.
Three regions (auth on, one administrator):
  - cluster_clients: skopeo login + push at region-a, pull at region-b and region-c; podman
    pull at region-c, ctr pull at region-b.
  - cluster_token_revocation: a token made at region-a works at b and c (Basic, and a Bearer
    token issued by b accepted at c); revoked at region-a (`portolan token revoke`), once
    each region's admin API no longer lists it (polled), b and c refuse its secret and that
    Bearer token (401), and skopeo fails.
  - cluster_anonymous: the anonymous rule set at region-b reaches region-c (polled); anonymous
    skopeo at c pulls public/ and gets 401 for private/.
  - cluster_catalog: the team user's catalog at region-c holds team/ repositories only.
  - cluster_cli_needs_admin: `portolan cluster add/remove` (and GET /admin/cluster) are refused
    (403) to the team user and work for the administrator (a standby region-d is added and
    removed again; the member list is checked after each).

Every wait is a poll of the state it needs with a deadline, never a sleep taken as proof.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import cluster as clusterlib  # noqa: E402
import engines  # noqa: E402
import harness as h  # noqa: E402
import images  # noqa: E402

TIMEOUT = 900
POLL_TIMEOUT = 60.0  # seconds a replicated change may take to reach every region
NODE_ARGS = ["--login-burst", "1000"]  # refusals made on purpose must not slow the test down
ACCEPT = h.ACCEPT_MANIFESTS


# -- small helpers ----------------------------------------------------------------------------


def wait_for(fn, what, timeout=POLL_TIMEOUT, interval=0.1):
    """Poll fn() until it returns a true value (returned); AssertionError naming what and the
    last value otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not within %.0fs (last: %r)" % (what, timeout, v))
        time.sleep(interval)


def grant(pattern, *actions):
    return {"pattern": pattern, "actions": list(actions)}


def admin_call(url, creds, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    with h.Client(url, auth=creds, timeout=30) as c:
        return c.request(method, path, hdrs, data)


def make_user(url, admin, name, grants):
    """Creates user name with grants (a list of grant()); returns its Credentials."""
    pw = h.new_password()
    r = admin_call(url, admin, "POST", "/admin/users",
                   {"name": name, "password": pw, "grants": grants})
    if r.status != 201:
        raise AssertionError("POST /admin/users %s: %s" % (name, r.describe()))
    return h.Credentials(name, pw)


def make_token(url, creds, grants, expires_in_s=None, description="tests"):
    """Creates an API token; returns (Credentials(id, secret), the answer document)."""
    body = {"grants": grants, "description": description}
    if expires_in_s is not None:
        body["expires_in_s"] = expires_in_s
    r = admin_call(url, creds, "POST", "/admin/tokens", body)
    if r.status != 201:
        raise AssertionError("POST /admin/tokens: %s" % r.describe())
    doc = r.json()
    return h.Credentials(doc["id"], doc["secret"]), doc


def token_ids(url, admin):
    """The ids GET /admin/tokens lists at url, or None when it does not answer 200."""
    try:
        r = admin_call(url, admin, "GET", "/admin/tokens")
    except OSError:
        return None
    if r.status != 200:
        return None
    return {t.get("id") for t in r.json().get("tokens", [])}


def anonymous_rules(url, admin):
    try:
        r = admin_call(url, admin, "GET", "/admin/auth/anonymous")
    except OSError:
        return None
    return r.json().get("rules") if r.status == 200 else None


def challenge(url):
    """(realm, service) of the Bearer challenge GET /v2/ answers without credentials."""
    with h.Client(url) as c:
        r = c.get("/v2/")
    scheme, params = h.parse_challenge(r.headers.get("WWW-Authenticate", ""))
    if r.status != 401 or scheme != "bearer" or "realm" not in params:
        raise AssertionError("GET /v2/ without credentials: %s, WWW-Authenticate %r"
                             % (r.describe(), r.headers.get("WWW-Authenticate")))
    return params["realm"], params.get("service", "")


def bearer_token(url, creds, *scopes):
    realm, service = challenge(url)
    return h.fetch_token(realm, service, list(scopes), creds)["token"]


def get_manifest(url, repo, ref, headers=None, auth=None):
    hdrs = {"Accept": ACCEPT}
    hdrs.update(headers or {})
    with h.Client(url, auth=auth) as c:
        return c.get("/v2/%s/manifests/%s" % (repo, ref), hdrs)


def bearer_get(url, token, repo, ref):
    return get_manifest(url, repo, ref, {"Authorization": "Bearer " + token})


def push_image(url, creds, repo, tag):
    """Pushes a small generated image (Python client, Basic); returns the harness.Manifest."""
    img = h.make_image(layers=1, layer_size=2048)
    with h.Client(url, auth=creds) as c:
        img.push(c, repo, tag)
    return img


def catalog(url, creds):
    with h.Client(url, auth=creds) as c:
        return sorted(c.catalog())


def portolan(env, *args, timeout=60):
    """(exit status, stdout, stderr) of `portolan ARGS` with env (harness.cli_env)."""
    p = subprocess.run([h.portolan_bin()] + list(args), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    return p.returncode, p.stdout, p.stderr


def err_text(p):
    return (p.stderr or "") + (p.stdout or "")


def says_unauthorized(text):
    t = text.lower()
    return ("unauthorized" in t or "authentication required" in t or "401" in t
            or "invalid username/password" in t)


def says_denied(text):
    t = text.lower()
    return "denied" in t or "403" in t or "forbidden" in t


class Tools:
    """The real clients, each with its state under one work directory."""

    def __init__(self, work):
        self.work = work
        self.sk = images.Skopeo(os.path.join(work, "skopeo"))
        self.storage = engines.Storage(os.path.join(work, "engines"))
        self.podman = engines.Podman(self.storage)
        self.buildah = engines.Buildah(self.storage)
        self.ctrd = None
        self.ctrd_error = engines.Containerd.available()
        self.src = os.path.join(work, "src")
        self.img = images.make_image("auth-clients", layers=2, layer_size=24 << 10)
        images.write_oci_layout(self.src, {"img": self.img})
        self.sk.prepare_readable(self.src)
        self.n = 0

    def containerd(self):
        """The private containerd, started on first use; None (and ctrd_error says why) when
        it cannot run."""
        if self.ctrd is None and not self.ctrd_error:
            c = engines.Containerd()
            try:
                self.ctrd = c.start()
            except (engines.EngineError, OSError) as e:
                self.ctrd_error = str(e)
                c.cleanup()
        return self.ctrd

    def out(self, name):
        self.n += 1
        return self.sk.output_dir("%s-%d" % (name, self.n))

    def authfile(self, name):
        """A path for an auth file skopeo may create (in its own directory)."""
        return os.path.join(self.sk.workdir, "auth-%s.json" % name)

    def close(self):
        if self.ctrd is not None:
            self.ctrd.cleanup()


def ref(host, repo, tag):
    return "docker://%s/%s:%s" % (host, repo, tag)


def skopeo_login(t, sk, host, creds, authfile):
    return sk.run("login", "--tls-verify=false", "--authfile", authfile, "--username",
                  creds.user, "--password-stdin", host, check=False,
                  input=creds.password + "\n")


def skopeo_push(tools, host, repo, tag, extra=()):
    return tools.sk.copy("oci:%s:img" % tools.src, ref(host, repo, tag), extra=extra,
                         check=False)


def skopeo_pull_ok(t, tools, host, repo, tag, extra=(), what=""):
    """skopeo copy host/repo:tag -> dir:, and the manifest comes back byte-identical."""
    out = tools.out("pull")
    p = tools.sk.copy(ref(host, repo, tag), "dir:" + out, extra=extra, check=False)
    if not t.check(p.returncode == 0, "%sskopeo pull %s:%s: %s" % (what, repo, tag,
                                                                    err_text(p)[-600:])):
        return False
    got = images.read_dir_layout(out)
    return t.check(got["manifest"] == tools.img.manifest,
                   "%sskopeo pull %s:%s: manifest differs from the pushed one" % (what, repo, tag))


# -- one node ---------------------------------------------------------------------------------


class NodeSuite:
    def __init__(self, results, node, tools):
        self.t = results
        self.node = node
        self.url = node.url
        self.host = node.url.split("://", 1)[1]
        self.admin = node.admin
        self.tools = tools

    def run(self):
        for name in ("token_flow_python", "token_flow_curl", "skopeo_login_copy",
                     "podman_login_push_pull", "buildah_push_creds", "ctr_pull_user",
                     "pull_only_token", "pattern_scope", "expired_token", "anonymous_pull",
                     "catalog_filtering", "admin_api_needs_admin"):
            self.t.run("node_" + name, self.node.guard(self.t, getattr(self, name)))

    # -- token flow -----------------------------------------------------------------------

    def token_flow_python(self):
        t = self.t
        repo = h.unique_repo("flow")
        img = push_image(self.url, self.admin, repo, "v1")
        with h.Client(self.url) as c:
            r = c.get("/v2/")
            t.eq(r.status, 401, "GET /v2/ without credentials")
            scheme, params = h.parse_challenge(r.headers.get("WWW-Authenticate", ""))
            t.eq(scheme, "bearer", "challenge scheme")
            t.check(params.get("realm", "").endswith("/token"), "realm %r" % params)
            t.check(params.get("service"), "challenge without service: %r" % params)
            r = c.get("/v2/%s/manifests/v1" % repo, {"Accept": ACCEPT})
            t.eq(r.status, 401, "manifest GET without credentials")
            scheme, params = h.parse_challenge(r.headers.get("WWW-Authenticate", ""))
            t.eq(params.get("scope"), "repository:%s:pull" % repo, "challenge scope")
            t.check(r.error_codes() == ["UNAUTHORIZED"], "401 body codes %r" % r.error_codes())
        realm, service = params["realm"], params.get("service", "")
        scope = "repository:%s:pull" % repo
        doc = h.fetch_token(realm, service, [scope], self.admin)
        for k in ("token", "access_token", "expires_in", "issued_at"):
            t.check(k in doc, "token answer lacks %s: %r" % (k, sorted(doc)))
        t.check(isinstance(doc.get("expires_in"), int) and doc["expires_in"] > 0,
                "expires_in %r" % doc.get("expires_in"))
        t.check(doc.get("token") == doc.get("access_token"), "token != access_token")
        t.check(doc["token"].count(".") == 2, "the token is not a JWT")
        r = bearer_get(self.url, doc["token"], repo, "v1")
        t.check(r.status == 200 and r.body == img.bytes, "GET with Bearer: %s" % r.describe())
        with h.Client(self.url, auth=h.Credentials(None, None, "bearer")) as c:
            r = c.get("/v2/", {"Authorization": "Bearer " + doc["token"]})
            t.eq(r.status, 200, "GET /v2/ with Bearer")
            r = c.get("/v2/", {"Authorization": "Bearer " + doc["token"][:-4] + "AAAA"})
            t.eq(r.status, 401, "GET /v2/ with a Bearer token whose signature was altered")
        # The bearer client: every request through the realm, a push included.
        with h.Client(self.url, auth=self.admin.bearer()) as c:
            img2 = h.make_image(layers=2, layer_size=4096)
            img2.push(c, repo, "v2")
            t.check(c.tokens_fetched >= 1, "the bearer client fetched no token")
            r = c.get_manifest(repo, "v2")
            t.check(r.status == 200 and r.body == img2.bytes, "bearer GET v2: %s" % r.describe())
        # A pull token does not allow a push.
        pull_tok = doc["token"]
        with h.Client(self.url) as c:
            r = c.put_manifest(repo, "v3", img.bytes, img.media_type)
        # (no credentials at all)
        t.eq(r.status, 401, "manifest PUT without credentials")
        with h.Client(self.url) as c:
            r = c.request("PUT", "/v2/%s/manifests/v3" % repo,
                          {"Content-Type": img.media_type, "Authorization": "Bearer " + pull_tok},
                          img.bytes)
        t.check(r.status in (401, 403), "PUT with a pull-only Bearer token: %s" % r.describe())
        # Wrong password: the realm refuses.
        try:
            h.fetch_token(realm, service, [scope], h.Credentials("admin", "wrong-" + h.new_password()))
            t.check(False, "the realm gave a token for a wrong password")
        except h.TokenError as e:
            t.eq(e.status, 401, "realm with a wrong password")
        # POST /token with the OAuth2 password grant, offline: a refresh token.
        pdoc = h.fetch_token(realm, service, [scope], self.admin, method="POST", offline=True)
        t.check(bearer_get(self.url, pdoc["token"], repo, "v1").status == 200,
                "the token from POST /token does not read")
        rt = pdoc.get("refresh_token")
        if t.check(rt, "POST /token with access_type=offline gave no refresh_token: %r"
                   % sorted(pdoc)):
            form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": rt,
                                           "service": service, "scope": scope,
                                           "client_id": "portolan-tests"}).encode()
            parts = urllib.parse.urlsplit(realm)
            with h.Client("%s://%s" % (parts.scheme, parts.netloc)) as c:
                r = c.request("POST", parts.path,
                              {"Content-Type": "application/x-www-form-urlencoded"}, form)
            if t.check(r.status == 200, "POST /token refresh_token grant: %s" % r.describe()):
                tok = r.json().get("token") or r.json().get("access_token")
                t.eq(bearer_get(self.url, tok, repo, "v1").status, 200,
                     "GET with the refreshed token")
        # GET /token with offline_token=true (docker's form) also gives a refresh token.
        gdoc = h.fetch_token(realm, service, [scope], self.admin, offline=True)
        t.check(gdoc.get("refresh_token"), "GET /token offline_token=true: no refresh_token")

    def token_flow_curl(self):
        t = self.t
        repo = h.unique_repo("curl")
        img = push_image(self.url, self.admin, repo, "v1")
        path = "%s/v2/%s/manifests/v1" % (self.url, repo)
        p = subprocess.run(["curl", "-sS", "-i", "-H", "Accept: " + ACCEPT, path],
                           capture_output=True, timeout=30)
        head = p.stdout.decode("latin-1").split("\r\n\r\n", 1)[0]
        t.check(head.startswith("HTTP/1.1 401"), "curl without credentials: %r" % head[:80])
        line = [ln for ln in head.split("\r\n") if ln.lower().startswith("www-authenticate:")]
        t.require(line, "curl: no WWW-Authenticate in %r" % head)
        scheme, params = h.parse_challenge(line[0].split(":", 1)[1])
        t.require(scheme == "bearer" and "realm" in params, "challenge %r" % line[0])
        # (The challenge's scope is checked in token_flow_python; like docker, ask for the
        # scope of the request made.)
        query = urllib.parse.urlencode({"service": params.get("service", ""),
                                        "scope": "repository:%s:pull" % repo})
        # The password reaches curl through a config on stdin, not the command line.
        cfg = 'user = "%s:%s"\n' % (self.admin.user, self.admin.password)
        p = subprocess.run(["curl", "-sS", "-f", "-K", "-", params["realm"] + "?" + query],
                           capture_output=True, text=True, timeout=30, input=cfg)
        t.require(p.returncode == 0, "curl /token: %s" % p.stderr[-300:])
        token = json.loads(p.stdout)["token"]
        p = subprocess.run(["curl", "-sS", "-f", "-H", "Accept: " + ACCEPT, "-K", "-", path],
                           capture_output=True, timeout=30,
                           input=('header = "Authorization: Bearer %s"\n' % token).encode())
        t.check(p.returncode == 0 and p.stdout == img.bytes,
                "curl GET with Bearer: rc %d %r" % (p.returncode, p.stderr[-200:]))

    # -- real clients -------------------------------------------------------------------------

    def skopeo_login_copy(self):
        t, tools = self.t, self.tools
        af = tools.authfile("node-admin")
        bad = skopeo_login(t, tools.sk, self.host,
                           h.Credentials("admin", "wrong-" + h.new_password()),
                           tools.authfile("node-bad"))
        t.check(bad.returncode != 0 and says_unauthorized(err_text(bad)),
                "skopeo login with a wrong password: rc %d %s" % (bad.returncode,
                                                                  err_text(bad)[-300:]))
        p = skopeo_login(t, tools.sk, self.host, self.admin, af)
        t.require(p.returncode == 0, "skopeo login: %s" % err_text(p)[-400:])
        with open(af) as f:
            t.check(self.host in json.load(f).get("auths", {}), "login did not write %s" % af)
        p = skopeo_push(tools, self.host, "skopeo/img", "v1", ["--authfile", af])
        t.require(p.returncode == 0, "skopeo push with --authfile: %s" % err_text(p)[-600:])
        r = get_manifest(self.url, "skopeo/img", "v1", auth=self.admin)
        t.check(r.status == 200 and r.body == tools.img.manifest,
                "pushed manifest over HTTP: %s" % r.describe())
        skopeo_pull_ok(t, tools, self.host, "skopeo/img", "v1", ["--authfile", af])
        # Without the auth file the same pull is refused.
        out = tools.out("pull-anon")
        p = tools.sk.copy(ref(self.host, "skopeo/img", "v1"), "dir:" + out, check=False)
        t.check(p.returncode != 0 and says_unauthorized(err_text(p)),
                "anonymous skopeo pull of a private image: rc %d %s" % (p.returncode,
                                                                        err_text(p)[-300:]))

    def podman_login_push_pull(self):
        t, tools = self.t, self.tools
        af = os.path.join(tools.storage.workdir, "auth-podman.json")
        p = tools.podman.login(self.host, self.admin.user, self.admin.password, af, check=False)
        t.require(p.returncode == 0, "podman login: %s" % err_text(p)[-400:])
        src = "%s/skopeo/img:v1" % self.host
        if tools.sk.copy("oci:%s:img" % tools.src, "docker://" + src, check=False,
                         extra=["--dest-creds", "%s:%s" % (self.admin.user,
                                                           self.admin.password)]).returncode:
            t.require(False, "seeding skopeo/img:v1 failed")
        p = tools.podman.pull(src, authfile=af, check=False)
        t.require(p.returncode == 0, "podman pull: %s" % err_text(p)[-600:])
        dst = "%s/podman/img:v1" % self.host
        p = tools.podman.push(src, dst, authfile=af, check=False)
        t.require(p.returncode == 0, "podman push: %s" % err_text(p)[-600:])
        r = get_manifest(self.url, "podman/img", "v1", auth=self.admin)
        t.check(r.status == 200, "manifest podman pushed: %s" % r.describe())
        if r.status == 200:
            layers = [d["digest"] for d in r.json().get("layers", [])]
            t.eq(len(layers), len(tools.img.layers), "layers of the image podman pushed")
        # The command-line client reads the same auth file.
        env = h.cli_env(None)
        env["REGISTRY_AUTH_FILE"] = af
        rc, out, err = portolan(env, "auth", "whoami", "--region", self.url, "--json")
        t.check(rc == 0 and json.loads(out or "{}").get("admin") is True,
                "portolan auth whoami with podman's auth file: rc %s %s" % (rc, (out + err)[-300:]))
        p = tools.podman.logout(self.host, af, check=False)
        t.check(p.returncode == 0, "podman logout: %s" % err_text(p)[-300:])
        p = tools.podman.pull(dst, authfile=af, check=False)
        t.check(p.returncode != 0 and says_unauthorized(err_text(p)),
                "podman pull after logout: rc %d %s" % (p.returncode, err_text(p)[-300:]))

    def buildah_push_creds(self):
        t, tools = self.t, self.tools
        payload = os.urandom(4096)
        tools.buildah.build_scratch("localhost/auth-built", {"/payload.bin": payload},
                                    labels={"org.example.test": "auth-clients"})
        creds = "%s:%s" % (self.admin.user, self.admin.password)
        p = tools.buildah.push("localhost/auth-built", "docker://%s/buildah/img:v1" % self.host,
                               creds=creds, check=False)
        t.require(p.returncode == 0, "buildah push --creds: %s" % err_text(p)[-600:])
        p = tools.buildah.push("localhost/auth-built", "docker://%s/buildah/img:v2" % self.host,
                               creds="admin:wrong-" + h.new_password(), check=False)
        t.check(p.returncode != 0 and says_unauthorized(err_text(p)),
                "buildah push with a wrong password: rc %d %s" % (p.returncode,
                                                                  err_text(p)[-300:]))
        p = tools.sk.inspect(ref(self.host, "buildah/img", "v1"), check=False,
                             extra=["--creds", creds])
        t.require(p.returncode == 0, "skopeo inspect of the built image: %s" % err_text(p)[-300:])
        info = json.loads(p.stdout)
        t.eq((info.get("Labels") or {}).get("org.example.test"), "auth-clients",
             "label of the image buildah pushed")

    def ctr_pull_user(self):
        t, tools = self.t, self.tools
        ctrd = tools.containerd()
        if ctrd is None:
            t.skip("containerd cannot run here: %s" % tools.ctrd_error)
        push_ok = skopeo_push(tools, self.host, "ctr/img", "v1", [
            "--dest-creds", "%s:%s" % (self.admin.user, self.admin.password)])
        t.require(push_ok.returncode == 0, "seed ctr/img: %s" % err_text(push_ok)[-300:])
        target = "%s/ctr/img:v1" % self.host
        p = ctrd.pull(target, check=False)
        t.check(p.returncode != 0 and says_unauthorized(err_text(p)),
                "ctr pull without --user: rc %d %s" % (p.returncode, err_text(p)[-300:]))
        p = ctrd.pull(target, user="%s:%s" % (self.admin.user, self.admin.password), check=False)
        t.require(p.returncode == 0, "ctr images pull --user: %s" % err_text(p)[-600:])
        p = ctrd.ctr("images", "ls", "-q", check=False)
        t.check(target in p.stdout.split(), "ctr images ls: %r" % p.stdout[-300:])
        p = ctrd.ctr("images", "check", check=False)
        t.check(p.returncode == 0 and "complete" in p.stdout,
                "ctr images check: %s" % (p.stdout + p.stderr)[-300:])

    # -- grants ---------------------------------------------------------------------------

    def pull_only_token(self):
        t, tools = self.t, self.tools
        seeded = push_image(self.url, self.admin, "team/pullonly", "v1")
        tok, doc = make_token(self.url, self.admin, [grant("team/**", "pull")])
        t.check(doc.get("secret", "").startswith("ptk_"), "token secret %r..." %
                doc.get("secret", "")[:4])
        t.eq(get_manifest(self.url, "team/pullonly", "v1", auth=tok).status, 200,
             "pull with the pull-only token (Basic)")
        with h.Client(self.url, auth=tok) as c:
            r = c.request("POST", "/v2/team/pullonly/blobs/uploads/", {"Content-Length": "0"})
            t.eq(r.status, 403, "upload with the pull-only token (Basic)")
            t.check("DENIED" in r.error_codes(), "403 body codes %r" % r.error_codes())
            r = c.put_manifest("team/pullonly", "v2", seeded.bytes, seeded.media_type)
            t.eq(r.status, 403, "manifest PUT with the pull-only token (Basic)")
            r = c.delete("/v2/team/pullonly/manifests/" + seeded.digest)
            t.eq(r.status, 403, "manifest DELETE with the pull-only token (Basic)")
        with h.Client(self.url, auth=tok.bearer()) as c:
            r = c.request("POST", "/v2/team/pullonly/blobs/uploads/", {"Content-Length": "0"})
            t.eq(r.status, 403, "upload with the pull-only token (Bearer)")
        creds = "%s:%s" % (tok.user, tok.password)
        p = skopeo_push(tools, self.host, "team/pullonly", "v3", ["--dest-creds", creds])
        t.check(p.returncode != 0 and says_denied(err_text(p)),
                "skopeo push with a pull-only token: rc %d %s" % (p.returncode,
                                                                 err_text(p)[-400:]))
        ok = skopeo_push(tools, self.host, "team/pullonly", "v4", [
            "--dest-creds", "%s:%s" % (self.admin.user, self.admin.password)])
        t.require(ok.returncode == 0, "admin push: %s" % err_text(ok)[-300:])
        skopeo_pull_ok(t, tools, self.host, "team/pullonly", "v4", ["--src-creds", creds],
                       what="pull-only token: ")
        p = tools.podman.pull("%s/team/pullonly:v4" % self.host, creds=creds, check=False)
        t.check(p.returncode == 0, "podman pull with the pull-only token: %s"
                % err_text(p)[-300:])
        if p.returncode == 0:
            p = tools.podman.push("%s/team/pullonly:v4" % self.host,
                                  "%s/team/pullonly:v5" % self.host, creds=creds, check=False)
            t.check(p.returncode != 0 and says_denied(err_text(p)),
                    "podman push with a pull-only token: rc %d %s" % (p.returncode,
                                                                     err_text(p)[-400:]))
        t.eq(get_manifest(self.url, "team/pullonly", "v3", auth=self.admin).status, 404,
             "the refused push left no tag v3")

    def pattern_scope(self):
        t, tools = self.t, self.tools
        push_image(self.url, self.admin, "team/x", "v1")
        push_image(self.url, self.admin, "other/x", "v1")
        tok, _ = make_token(self.url, self.admin, [grant("team/*", "pull", "push")])
        t.eq(get_manifest(self.url, "team/x", "v1", auth=tok).status, 200,
             "team/* token reads team/x (Basic)")
        r = get_manifest(self.url, "other/x", "v1", auth=tok)
        t.eq(r.status, 403, "team/* token reads other/x (Basic)")
        with h.Client(self.url, auth=tok.bearer()) as c:
            t.eq(c.get_manifest("team/x", "v1").status, 200, "team/* token reads team/x (Bearer)")
            r = c.get_manifest("other/x", "v1")
            t.check(r.status in (401, 403), "team/* token reads other/x (Bearer): %s"
                    % r.describe())
        # The realm grants nothing on other/x: the token it gives has no access there.
        jwt = bearer_token(self.url, tok, "repository:other/x:pull")
        t.check(bearer_get(self.url, jwt, "other/x", "v1").status in (401, 403),
                "a token asked for other/x reads it")
        creds = "%s:%s" % (tok.user, tok.password)
        p = tools.sk.inspect(ref(self.host, "other/x", "v1"), check=False,
                             extra=["--creds", creds])
        t.check(p.returncode != 0, "skopeo inspect other/x with the team/* token succeeded")
        p = tools.sk.inspect(ref(self.host, "team/x", "v1"), check=False,
                             extra=["--creds", creds])
        t.check(p.returncode == 0, "skopeo inspect team/x with the team/* token: %s"
                % err_text(p)[-300:])
        # "*" is one component: team/x/y is outside team/*.
        push_image(self.url, self.admin, "team/x/y", "v1")
        t.check(get_manifest(self.url, "team/x/y", "v1", auth=tok).status != 200,
                "team/* token reads team/x/y")

    def expired_token(self):
        t = self.t
        repo = "team/expiring"
        push_image(self.url, self.admin, repo, "v1")
        made = time.monotonic()
        rc, out, err = portolan(h.cli_env(self.admin), "token", "create", "--region", self.url,
                                "--grant", "team/**:pull", "--expires", "3s", "--json")
        t.require(rc == 0, "portolan token create --expires 3s: rc %s %s" % (rc, err[-300:]))
        doc = json.loads(out)
        tok = h.Credentials(doc["id"], doc["secret"])
        t.check(doc.get("expires"), "token answer without expires: %r" % sorted(doc))
        jwt = None
        r = get_manifest(self.url, repo, "v1", auth=tok)
        early = time.monotonic() - made < 2.0
        if early:  # judged only when the machine was quick enough to ask before the expiry
            t.eq(r.status, 200, "fresh token (Basic)")
            try:
                jwt = bearer_token(self.url, tok, "repository:%s:pull" % repo)
            except h.TokenError as e:
                t.check(False, "realm refused a fresh token: %s" % e)

        def refused():
            return get_manifest(self.url, repo, "v1", auth=tok).status == 401
        wait_for(refused, "the expired token refused by Basic", timeout=60)
        t.check(time.monotonic() - made >= 2.5, "token refused before its expiry")
        try:
            h.fetch_token(*challenge(self.url), ["repository:%s:pull" % repo], tok)
            t.check(False, "the realm gave a token for an expired API token")
        except h.TokenError as e:
            t.eq(e.status, 401, "realm with an expired API token")
        if jwt is not None:
            t.eq(bearer_get(self.url, jwt, repo, "v1").status, 401,
                 "a Bearer token issued for the API token before it expired")

    def anonymous_pull(self):
        t, tools = self.t, self.tools
        creds = ["--dest-creds", "%s:%s" % (self.admin.user, self.admin.password)]
        for repo in ("public/x", "private/y"):
            p = skopeo_push(tools, self.host, repo, "v1", creds)
            t.require(p.returncode == 0, "seed %s: %s" % (repo, err_text(p)[-300:]))
        r = admin_call(self.url, self.admin, "POST", "/admin/auth/anonymous",
                       {"pattern": "public/**"})
        t.require(r.status in (200, 201), "POST /admin/auth/anonymous: %s" % r.describe())
        t.check("public/**" in (anonymous_rules(self.url, self.admin) or []),
                "GET /admin/auth/anonymous lacks public/**")
        try:
            skopeo_pull_ok(t, tools, self.host, "public/x", "v1", what="anonymous: ")
            out = tools.out("anon-private")
            p = tools.sk.copy(ref(self.host, "private/y", "v1"), "dir:" + out, check=False)
            t.check(p.returncode != 0 and says_unauthorized(err_text(p)),
                    "anonymous skopeo from private/y: rc %d %s" % (p.returncode,
                                                                   err_text(p)[-300:]))
            anon = h.Credentials(None, None, "bearer")
            with h.Client(self.url, auth=anon) as c:
                t.eq(c.get_manifest("public/x", "v1").status, 200, "anonymous token flow, public")
                t.eq(c.get_manifest("private/y", "v1").status, 401,
                     "anonymous token flow, private")
                r = c.request("POST", "/v2/public/x/blobs/uploads/", {"Content-Length": "0"})
                t.eq(r.status, 401, "anonymous upload to public/x")
            with h.Client(self.url) as c:
                t.eq(c.get_manifest("public/x", "v1").status, 200,
                     "anonymous GET without any token, public")
        finally:
            q = urllib.parse.urlencode({"pattern": "public/**"})
            r = admin_call(self.url, self.admin, "DELETE", "/admin/auth/anonymous?" + q)
            t.eq(r.status, 204, "DELETE /admin/auth/anonymous")
        out = tools.out("anon-off")
        p = tools.sk.copy(ref(self.host, "public/x", "v1"), "dir:" + out, check=False)
        t.check(p.returncode != 0 and says_unauthorized(err_text(p)),
                "anonymous skopeo from public/x with the rule removed: rc %d %s"
                % (p.returncode, err_text(p)[-300:]))

    def catalog_filtering(self):
        t = self.t
        for repo in ("team/cat-a", "team/cat-b", "other/cat-c"):
            push_image(self.url, self.admin, repo, "v1")
        user = make_user(self.url, self.admin, "cataloguser", [grant("team/*", "pull")])
        names = catalog(self.url, user)
        t.check(names and all(n.startswith("team/") and n.count("/") == 1 for n in names),
                "team/* user's catalog: %r" % names)
        t.check({"team/cat-a", "team/cat-b"} <= set(names), "catalog lacks team repos: %r"
                % names)
        names_b = catalog(self.url, user.bearer())
        t.eq(names_b, names, "team/* user's catalog with a Bearer token")
        everything = catalog(self.url, self.admin)
        t.check("other/cat-c" in everything and set(names) < set(everything),
                "administrator's catalog: %r" % everything[:20])
        with h.Client(self.url) as c:
            t.eq(c.get("/v2/_catalog").status, 401, "catalog without credentials")

    def admin_api_needs_admin(self):
        t = self.t
        user = make_user(self.url, self.admin, "plainuser", [grant("team/**", "pull", "push")])
        anon = h.Credentials(None, None)
        for method, path, body in (("GET", "/admin/users", None), ("GET", "/admin/tokens", None),
                                   ("POST", "/admin/users", {"name": "x1", "password": "p" * 16,
                                                             "grants": []}),
                                   ("GET", "/admin/auth/anonymous", None),
                                   ("POST", "/admin/auth/keys/rotate", None),
                                   ("GET", "/admin/state-digest", None)):
            t.eq(admin_call(self.url, anon, method, path, body).status, 401,
                 "%s %s without credentials" % (method, path))
            r = admin_call(self.url, user, method, path, body)
            t.eq(r.status, 403, "%s %s as a user without admin" % (method, path))
        t.eq(admin_call(self.url, self.admin, "GET", "/admin/users").status, 200,
             "GET /admin/users as the administrator")
        r = admin_call(self.url, user, "GET", "/admin/auth/whoami")
        if t.check(r.status == 200, "whoami as the user: %s" % r.describe()):
            doc = r.json()
            t.check(doc.get("admin") is False and "plainuser" in str(doc.get("identity")),
                    "whoami of the user: %r" % doc)
        doc = self.node.wait_auth()
        t.check(doc.get("admin") is True, "whoami of the administrator: %r" % doc)
        r = admin_call(self.url, self.admin, "GET", "/admin/users")
        names = [u.get("name") for u in r.json().get("users", [])]
        t.check("admin" in names and "plainuser" in names, "users listed: %r" % names)
        t.check(b"password" not in r.body and b"$y$" not in r.body,
                "GET /admin/users shows passwords or their hashes")


# -- three regions ----------------------------------------------------------------------------


class ClusterSuite:
    def __init__(self, results, c, tools):
        self.t = results
        self.c = c
        self.a, self.b, self.cc = c.regions
        self.admin = c.admin
        self.tools = tools

    @staticmethod
    def host(region):
        return region.url.split("://", 1)[1]

    def run(self):
        for name in ("cluster_clients", "cluster_token_revocation", "cluster_anonymous",
                     "cluster_catalog", "cluster_cli_needs_admin"):
            self.t.run(name, getattr(self, name))

    def cluster_clients(self):
        t, tools = self.t, self.tools
        af = tools.authfile("cluster-a")
        p = skopeo_login(t, tools.sk, self.host(self.a), self.admin, af)
        t.require(p.returncode == 0, "skopeo login at region-a: %s" % err_text(p)[-300:])
        p = skopeo_push(tools, self.host(self.a), "geo/img", "v1", ["--authfile", af])
        t.require(p.returncode == 0, "skopeo push at region-a: %s" % err_text(p)[-400:])
        creds = "%s:%s" % (self.admin.user, self.admin.password)
        for r in (self.b, self.cc):
            skopeo_pull_ok(t, tools, self.host(r), "geo/img", "v1", ["--src-creds", creds],
                           what="%s: " % r.name)
        p = tools.podman.pull("%s/geo/img:v1" % self.host(self.cc), creds=creds, check=False)
        t.check(p.returncode == 0, "podman pull at region-c: %s" % err_text(p)[-300:])
        ctrd = tools.containerd()
        if ctrd is not None:
            p = ctrd.pull("%s/geo/img:v1" % self.host(self.b), user=creds, check=False)
            t.check(p.returncode == 0, "ctr pull at region-b: %s" % err_text(p)[-300:])

    def cluster_token_revocation(self):
        t, tools = self.t, self.tools
        repo = "team/revoked"
        push_image(self.a.url, self.admin, repo, "v1")
        tok, _ = make_token(self.a.url, self.admin, [grant("team/**", "pull")])
        for r in (self.b, self.cc):
            wait_for(lambda r=r: tok.user in (token_ids(r.url, self.admin) or set()),
                     "token %s listed at %s" % (tok.user, r.name))
            t.eq(get_manifest(r.url, repo, "v1", auth=tok).status, 200,
                 "the new token at %s (Basic)" % r.name)
        jwt = bearer_token(self.b.url, tok, "repository:%s:pull" % repo)
        for r in (self.b, self.cc, self.a):
            t.eq(bearer_get(r.url, jwt, repo, "v1").status, 200,
                 "region-b's Bearer token at %s" % r.name)
        rc, out, err = portolan(self.c.cli_env(), "token", "revoke", tok.user, "--region",
                                self.a.url)
        t.require(rc == 0, "portolan token revoke at region-a: rc %s %s" % (rc, err[-300:]))
        for r in (self.a, self.b, self.cc):
            wait_for(lambda r=r: token_ids(r.url, self.admin) is not None
                     and tok.user not in token_ids(r.url, self.admin),
                     "token %s gone from %s's list" % (tok.user, r.name))
        for r in (self.b, self.cc):
            t.eq(get_manifest(r.url, repo, "v1", auth=tok).status, 401,
                 "the revoked token's secret at %s" % r.name)
            t.eq(bearer_get(r.url, jwt, repo, "v1").status, 401,
                 "a Bearer token of the revoked token at %s" % r.name)
        p = tools.sk.inspect(ref(self.host(self.cc), repo, "v1"), check=False,
                             extra=["--creds", "%s:%s" % (tok.user, tok.password)])
        t.check(p.returncode != 0 and says_unauthorized(err_text(p)),
                "skopeo with the revoked token at region-c: rc %d %s" % (p.returncode,
                                                                         err_text(p)[-300:]))

    def cluster_anonymous(self):
        t, tools = self.t, self.tools
        creds = ["--dest-creds", "%s:%s" % (self.admin.user, self.admin.password)]
        for repo in ("public/geo", "private/geo"):
            p = skopeo_push(tools, self.host(self.a), repo, "v1", creds)
            t.require(p.returncode == 0, "seed %s: %s" % (repo, err_text(p)[-300:]))
        r = admin_call(self.b.url, self.admin, "POST", "/admin/auth/anonymous",
                       {"pattern": "public/**"})
        t.require(r.status in (200, 201), "POST /admin/auth/anonymous at region-b: %s"
                  % r.describe())
        wait_for(lambda: "public/**" in (anonymous_rules(self.cc.url, self.admin) or []),
                 "anonymous rule at region-c")
        skopeo_pull_ok(t, tools, self.host(self.cc), "public/geo", "v1",
                       what="anonymous at region-c: ")
        out = tools.out("anon-geo-private")
        p = tools.sk.copy(ref(self.host(self.cc), "private/geo", "v1"), "dir:" + out,
                          check=False)
        t.check(p.returncode != 0 and says_unauthorized(err_text(p)),
                "anonymous skopeo from private/geo at region-c: rc %d %s"
                % (p.returncode, err_text(p)[-300:]))
        with h.Client(self.cc.url, auth=h.Credentials(None, None, "bearer")) as c:
            t.eq(c.get_manifest("private/geo", "v1").status, 401,
                 "anonymous token flow at region-c, private")

    def cluster_catalog(self):
        t = self.t
        for repo in ("team/geo-cat", "other/geo-cat"):
            push_image(self.a.url, self.admin, repo, "v1")
        user = make_user(self.a.url, self.admin, "geocatalog", [grant("team/*", "pull")])
        wait_for(lambda: get_manifest(self.cc.url, "team/geo-cat", "v1", auth=user).status
                 == 200, "the new user reads team/geo-cat at region-c")
        names = catalog(self.cc.url, user)
        t.check("team/geo-cat" in names and all(n.startswith("team/") for n in names),
                "team user's catalog at region-c: %r" % names)
        t.check("other/geo-cat" in catalog(self.cc.url, self.admin),
                "administrator's catalog at region-c lacks other/geo-cat")

    def cluster_cli_needs_admin(self):
        t, c = self.t, self.c
        user = make_user(self.a.url, self.admin, "geoplain", [grant("**", "pull", "push")])
        wait_for(lambda: admin_call(self.b.url, user, "GET", "/admin/auth/whoami").status
                 == 200, "the new user logs in at region-b")
        t.eq(admin_call(self.b.url, user, "GET", "/admin/cluster").status, 403,
             "GET /admin/cluster as a user without admin")
        t.eq(admin_call(self.b.url, h.Credentials(None, None), "GET", "/admin/cluster").status,
             401, "GET /admin/cluster without credentials")
        lead = c.wait_leader()
        port, raft_port = h.free_port(), h.free_port()
        add = ["add", "--region", lead.url, "--name", "region-d", "--id", "4",
               "--address", "127.0.0.1:%d" % raft_port, "--url", "http://127.0.0.1:%d" % port,
               "--role", "standby"]

        def cli(creds, *args):
            p = subprocess.run([c.binary, "cluster"] + list(args), capture_output=True,
                               text=True, timeout=120, stdin=subprocess.DEVNULL,
                               env=c.cli_env(creds))
            return p.returncode, p.stdout + p.stderr

        def ids():
            m = lead.members()
            return sorted(x.get("id") for x in (m or {}).get("regions", []))
        before = ids()
        rc, out = cli(user, *add)
        t.check(rc == 1 and says_denied(out), "cluster add as a user without admin: rc %s %s"
                % (rc, out[-300:]))
        rc, out = cli(None, *add)
        t.check(rc == 1 and says_unauthorized(out), "cluster add without credentials: rc %s %s"
                % (rc, out[-300:]))
        t.eq(ids(), before, "members after the refused adds")
        rc, out = cli("admin", *add)
        t.require(rc == 0, "cluster add as the administrator: rc %s %s" % (rc, out[-300:]))
        t.check(4 in ids(), "region-d not listed after add: %r" % ids())
        rc, out = cli(user, "remove", "--region", lead.url, "--id", "4")
        t.check(rc == 1 and says_denied(out), "cluster remove as a user without admin: rc %s %s"
                % (rc, out[-300:]))
        t.check(4 in ids(), "region-d gone after a refused remove")
        rc, out = cli("admin", "remove", "--region", c.wait_leader().url, "--id", "4")
        t.check(rc == 0, "cluster remove as the administrator: rc %s %s" % (rc, out[-300:]))
        wait_for(lambda: 4 not in ids(), "region-d removed from the member list")


def main(results):
    if results.target != "portolan":
        raise h.Skip("access control is portolan's")
    if not h.binary_has_auth():
        results.fail("setup", "%s has no access control (serve --help lists no --auth)"
                     % h.portolan_bin())
        return
    work = tempfile.mkdtemp(prefix="pt-auth-clients-")
    tools = Tools(work)
    try:
        node = h.Node(data_dir=os.path.join(work, "node", "data"), args=NODE_ARGS, auth=True,
                      admin_password=h.new_password())
        with node:
            node.wait_auth()
            NodeSuite(results, node, tools).run()
        with clusterlib.Cluster(3, args=NODE_ARGS) as c:
            c.wait_leader(timeout=60)
            ClusterSuite(results, c, tools).run()
    finally:
        tools.close()
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)
