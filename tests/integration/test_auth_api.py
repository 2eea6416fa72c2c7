"""test_auth_api.py - access control at the HTTP API of one node (README "Access control").

Role: checks from outside, with Python's HTTP client against a real `portolan serve`, the
gate (401 challenge and its format, Basic credentials on /v2/, 403 for a missing action,
catalog filtering), the token endpoint (GET with offline_token, POST password and
refresh_token grants, a refresh token refused as an access token, an expired token), the admin
endpoints (users, tokens, anonymous rules, key rotation, whoami, validation errors), the first
administrator (password file, generated file mode 0600), the login limiter (429 with
Retry-After), the audit log and the auth metrics. Registry clients (skopeo, podman) and
clusters are tests/integration/test_auth_clients.py.
"""

import base64
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import urllib.parse

import harness

TIMEOUT = 420


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


class AuthClient(harness.Client):
    """A Client that sends one Authorization header value with every request."""

    def __init__(self, url, authorization=None):
        super().__init__(url)
        self.authorization = authorization

    def request(self, method, path, headers=None, body=None):
        headers = dict(headers or {})
        if self.authorization is not None:
            headers.setdefault("Authorization", self.authorization)
        return super().request(method, path, headers, body)


def challenge_params(value):
    """{"realm": ..., "service": ..., "scope": ...} of a Bearer challenge."""
    assert value.startswith("Bearer "), value
    out = {}
    for part in value[len("Bearer "):].split('",'):
        k, _, v = part.partition("=")
        out[k.strip()] = v.strip().strip('"')
    return out


def token_get(url, authorization=None, **params):
    c = AuthClient(url, authorization)
    q = urllib.parse.urlencode(params, doseq=True)
    r = c.get("/token?" + q)
    c.close()
    return r


def token_post(url, form):
    c = AuthClient(url)
    body = urllib.parse.urlencode(form).encode()
    r = c.request("POST", "/token",
                  {"Content-Type": "application/x-www-form-urlencoded",
                   "Content-Length": str(len(body))}, body)
    c.close()
    return r


def post_json(c, path, obj):
    body = json.dumps(obj).encode()
    return c.request("POST", path, {"Content-Type": "application/json",
                                    "Content-Length": str(len(body))}, body)


def put_json(c, path, obj):
    body = json.dumps(obj).encode()
    return c.request("PUT", path, {"Content-Type": "application/json",
                                   "Content-Length": str(len(body))}, body)


def run_checks(t, node, admin_pw):
    url = node.url
    anon = AuthClient(url)
    admin = AuthClient(url, basic("admin", admin_pw))

    @t.test
    def challenge_format():
        r = anon.get("/v2/")
        t.eq(r.status, 401, "anonymous /v2/")
        t.eq(r.error_codes(), ["UNAUTHORIZED"], "anonymous /v2/ error codes")
        p = challenge_params(r.headers.get("WWW-Authenticate", ""))
        t.eq(p.get("realm"), url + "/token", "realm")
        t.eq(p.get("service"), "portolan", "service")
        t.check("scope" not in p, "a scope on the /v2/ challenge: %r" % p)
        r = anon.get("/v2/some/repo/manifests/latest")
        t.eq(r.status, 401, "anonymous manifest read")
        p = challenge_params(r.headers.get("WWW-Authenticate", ""))
        t.eq(p.get("scope"), "repository:some/repo:pull", "scope of a read")
        r = anon.request("PUT", "/v2/some/repo/manifests/latest",
                         {"Content-Type": harness.OCI_MANIFEST, "Content-Length": "2"}, b"{}")
        p = challenge_params(r.headers.get("WWW-Authenticate", ""))
        t.eq(p.get("scope"), "repository:some/repo:push", "scope of a manifest put")
        r = anon.get("/v2/_catalog")
        p = challenge_params(r.headers.get("WWW-Authenticate", ""))
        t.eq(p.get("scope"), "registry:catalog:*", "scope of the catalog")
        t.eq(anon.get("/healthz").status, 200, "healthz is open")
        t.eq(anon.get("/metrics").status, 200, "metrics are open")

    @t.test
    def basic_on_v2():
        t.eq(admin.get("/v2/").status, 200, "admin Basic on /v2/")
        bad = AuthClient(url, basic("admin", "wrong-" + admin_pw))
        r = bad.get("/v2/")
        t.eq(r.status, 401, "wrong password")
        t.check("WWW-Authenticate" in r.headers, "no challenge after a wrong password")
        r = AuthClient(url, "Basic !!!notbase64").get("/v2/")
        t.eq(r.status, 401, "malformed Basic")
        r = admin.get("/admin/auth/whoami")
        t.eq(r.status, 200, "whoami")
        t.eq(r.json(), {"identity": "user:admin", "name": "admin", "kind": "user",
                        "admin": True}, "whoami body")

    # Users, tokens, anonymous rules ------------------------------------------------------
    state = {}

    @t.test
    def admin_users():
        r = post_json(admin, "/admin/users", {
            "name": "alice", "password": "alice-pw-1",
            "grants": [{"pattern": "team/*", "actions": ["pull", "push"]}, "shared/**:pull"]})
        t.eq(r.status, 201, "create alice: %s" % r.describe())
        if r.status == 201:
            body = r.json()
            t.eq(body.get("name"), "alice", "created name")
            t.check("password" not in r.body.decode(), "the answer repeats the password")
            t.eq(len(body.get("grants", [])), 2, "grants answered")
        r = post_json(admin, "/admin/users", {"name": "alice", "password": "x", "grants": []})
        t.eq(r.status, 409, "duplicate user")
        r = post_json(admin, "/admin/users", {"name": "Bad Name", "password": "x"})
        t.eq(r.status, 400, "invalid name")
        r = post_json(admin, "/admin/users", {"name": "bob", "password": "x",
                                              "grants": [{"pattern": "a/**/b",
                                                          "actions": ["pull"]}]})
        t.eq(r.status, 400, "invalid pattern")
        r = post_json(admin, "/admin/users", {"name": "bob", "password": "x",
                                              "grants": [{"pattern": "a/*",
                                                          "actions": ["fly"]}]})
        t.eq(r.status, 400, "invalid action")
        r = post_json(admin, "/admin/users", {"name": "bob", "password": ""})
        t.eq(r.status, 400, "empty password")
        r = admin.get("/admin/users")
        t.eq(r.status, 200, "list users")
        names = [u["name"] for u in r.json().get("users", [])] if r.status == 200 else []
        t.check("alice" in names and "admin" in names, "users listed: %r" % names)
        t.eq(admin.delete("/admin/users/nobody").status, 404, "delete an unknown user")
        t.eq(admin.delete("/admin/users/admin").status, 409, "delete the last administrator")
        alice = AuthClient(url, basic("alice", "alice-pw-1"))
        t.eq(alice.get("/admin/users").status, 403, "alice lists users")
        r = alice.get("/admin/auth/whoami")
        t.eq(r.status, 200, "alice whoami")
        t.eq(r.json().get("admin") if r.status == 200 else None, False, "alice is no admin")
        # own password: alice may, for herself only
        r = put_json(alice, "/admin/users/alice/password", {"password": "alice-pw-2"})
        t.eq(r.status, 204, "alice changes her password: %s" % r.describe())
        t.eq(AuthClient(url, basic("alice", "alice-pw-2")).get("/v2/").status, 200,
             "new password works")
        t.eq(AuthClient(url, basic("alice", "alice-pw-1")).get("/v2/").status, 401,
             "old password refused")
        alice2 = AuthClient(url, basic("alice", "alice-pw-2"))
        r = put_json(alice2, "/admin/users/admin/password", {"password": "taken"})
        t.eq(r.status, 403, "alice changes the admin's password")
        state["alice"] = alice2

    @t.test
    def gate_actions():
        alice = state.get("alice")
        t.require(alice is not None, "no alice")
        img = harness.make_image(layers=1, layer_size=256)
        r = None
        try:
            img.push(alice, "team/app", "v1")
        except AssertionError as e:
            r = str(e)
        t.check(r is None, "alice pushes to team/app: %s" % r)
        t.eq(alice.get_manifest("team/app", "v1").status, 200, "alice pulls team/app")
        r = alice.delete("/v2/team/app/manifests/%s" % img.digest)
        t.eq(r.status, 403, "alice deletes (no delete grant)")
        t.eq(r.error_codes(), ["DENIED"], "403 code")
        r = alice.get_manifest("other/app", "v1")
        t.eq(r.status, 403, "alice reads outside her grants")
        r = alice.request("POST", "/v2/shared/x/blobs/uploads/", {"Content-Length": "0"}, b"")
        t.eq(r.status, 403, "alice pushes where she may only pull")
        # admin pushes a second repository alice cannot see
        img.push(admin, "secret/app", "v1")
        img.push(admin, "shared/lib", "v1")
        # a mount from a repository alice cannot read falls back to an upload session
        layer = img.blobs[-1][0]
        r = alice.request("POST", "/v2/team/app2/blobs/uploads/?mount=%s&from=secret/app"
                          % layer, {"Content-Length": "0"}, b"")
        t.eq(r.status, 202, "mount from an unreadable repository: a plain session")
        r = alice.request("POST", "/v2/team/app2/blobs/uploads/?mount=%s&from=shared/lib"
                          % layer, {"Content-Length": "0"}, b"")
        t.eq(r.status, 201, "mount from a readable repository")
        r = alice.get("/v2/_catalog")
        t.eq(r.status, 200, "alice catalog")
        repos = r.json().get("repositories", []) if r.status == 200 else []
        t.check("team/app" in repos and "shared/lib" in repos and "secret/app" not in repos,
                "alice's catalog is filtered: %r" % repos)
        r = admin.get("/v2/_catalog")
        t.check("secret/app" in (r.json().get("repositories", []) if r.status == 200 else []),
                "admin's catalog lacks secret/app")
        state["digest"] = img.digest

    @t.test
    def tokens_admin():
        r = post_json(admin, "/admin/tokens", {"id": "ci", "description": "build robot",
                                               "grants": [{"pattern": "team/**",
                                                           "actions": ["pull"]}]})
        t.eq(r.status, 201, "create token: %s" % r.describe())
        t.require(r.status == 201, "no token")
        secret = r.json().get("secret", "")
        t.check(secret.startswith("ptk_"), "secret format %r" % secret[:4])
        r = admin.get("/admin/tokens")
        listed = r.json().get("tokens", []) if r.status == 200 else []
        t.check(any(x["id"] == "ci" for x in listed), "token listed")
        t.check(secret not in r.body.decode(), "the listing shows the secret")
        t.eq(post_json(admin, "/admin/tokens", {"id": "ci", "grants": ["a:pull"]}).status, 409,
             "duplicate token")
        ci = AuthClient(url, basic("ci", secret))
        t.eq(ci.get_manifest("team/app", "v1").status, 200, "token pulls")
        t.eq(ci.request("POST", "/v2/team/app/blobs/uploads/", {"Content-Length": "0"},
                        b"").status, 403, "token pushes without push")
        t.eq(post_json(admin, "/admin/tokens/ci/disable", {}).status, 204, "disable")
        t.eq(ci.get_manifest("team/app", "v1").status, 401, "disabled token refused")
        t.eq(post_json(admin, "/admin/tokens/ci/enable", {}).status, 204, "enable")
        t.eq(ci.get_manifest("team/app", "v1").status, 200, "enabled token works")
        t.eq(admin.delete("/admin/tokens/ci").status, 204, "revoke")
        t.eq(ci.get_manifest("team/app", "v1").status, 401, "revoked token refused")
        t.eq(admin.delete("/admin/tokens/ci").status, 404, "revoke twice")

    @t.test
    def anonymous_rules():
        img = harness.make_image(layers=1, layer_size=128)
        img.push(admin, "public/base", "v1")
        t.eq(anon.get_manifest("public/base", "v1").status, 401, "anonymous before the rule")
        r = post_json(admin, "/admin/auth/anonymous", {"pattern": "public/**"})
        t.eq(r.status, 201, "add rule: %s" % r.describe())
        t.eq(post_json(admin, "/admin/auth/anonymous", {"pattern": "bad//p"}).status, 400,
             "invalid rule")
        r = admin.get("/admin/auth/anonymous")
        t.eq(r.json() if r.status == 200 else None, {"rules": ["public/**"]}, "rules")
        t.eq(anon.get_manifest("public/base", "v1").status, 200, "anonymous pull")
        r = anon.request("POST", "/v2/public/base/blobs/uploads/", {"Content-Length": "0"}, b"")
        t.eq(r.status, 401, "anonymous push")
        r = token_get(url, service="portolan", scope="repository:public/base:pull,push")
        t.eq(r.status, 200, "anonymous token")
        if r.status == 200:
            tok = r.json()["token"]
            bearer = AuthClient(url, "Bearer " + tok)
            t.eq(bearer.get_manifest("public/base", "v1").status, 200, "anonymous bearer pull")
            t.eq(bearer.get("/v2/").status, 200, "anonymous bearer /v2/")
            t.check("refresh_token" not in r.json(), "anonymous refresh token")
        r = admin.delete("/admin/auth/anonymous?pattern=" + urllib.parse.quote("public/**"))
        t.eq(r.status, 204, "delete rule")
        t.eq(anon.get_manifest("public/base", "v1").status, 401, "anonymous after removal")
        r = admin.delete("/admin/auth/anonymous?pattern=nothing")
        t.eq(r.status, 404, "delete unknown rule")

    @t.test
    def token_endpoint():
        auth = basic("alice", "alice-pw-2")
        r = token_get(url, auth, service="portolan",
                      scope=["repository:team/app:pull,push,delete", "repository:secret/app:pull"],
                      offline_token="true", client_id="tests")
        t.eq(r.status, 200, "GET /token: %s" % r.describe())
        t.require(r.status == 200, "no token")
        t.eq(r.headers.get("Cache-Control"), "no-store", "Cache-Control")
        body = r.json()
        for k in ("token", "access_token", "expires_in", "issued_at", "refresh_token"):
            t.check(k in body, "missing %s" % k)
        t.eq(body.get("token"), body.get("access_token"), "token == access_token")
        t.eq(body.get("expires_in"), 300, "expires_in")
        claims = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[1] + "=="))
        access = {(a["name"], tuple(sorted(a["actions"]))) for a in claims.get("access", [])}
        t.eq(access, {("team/app", ("pull", "push"))}, "granted access (delete and "
             "secret/app dropped)")
        bearer = AuthClient(url, "Bearer " + body["token"])
        t.eq(bearer.get_manifest("team/app", "v1").status, 200, "bearer pull")
        r = bearer.get_manifest("team/app2", "v1")
        t.eq(r.status, 401, "bearer on a repository outside the token")
        p = challenge_params(r.headers.get("WWW-Authenticate", ""))
        t.eq(p.get("error"), "insufficient_scope", "insufficient_scope challenge")
        r = bearer.delete("/v2/team/app/manifests/%s" % state.get("digest", "sha256:" + "0" * 64))
        t.eq(r.status, 403, "bearer delete that alice lacks")
        t.eq(AuthClient(url, "Bearer " + body["refresh_token"]).get("/v2/").status, 401,
             "a refresh token as access token")
        t.eq(AuthClient(url, "Bearer " + body["token"][:-4] + "AAAA").get("/v2/").status, 401,
             "a forged signature")
        r = token_post(url, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                             "service": "portolan", "client_id": "tests",
                             "scope": "repository:team/app:pull"})
        t.eq(r.status, 200, "POST refresh_token: %s" % r.describe())
        if r.status == 200:
            t.eq(AuthClient(url, "Bearer " + r.json()["access_token"])
                 .get_manifest("team/app", "v1").status, 200, "refreshed token works")
        r = token_post(url, {"grant_type": "password", "username": "alice",
                             "password": "alice-pw-2", "service": "portolan",
                             "client_id": "tests", "access_type": "offline",
                             "scope": "repository:team/app:pull registry:catalog:*"})
        t.eq(r.status, 200, "POST password: %s" % r.describe())
        if r.status == 200:
            t.check("refresh_token" in r.json(), "offline POST lacks refresh_token")
            cat = AuthClient(url, "Bearer " + r.json()["access_token"]).get("/v2/_catalog")
            t.eq(cat.status, 200, "catalog with a catalog-scoped token")
            listed = cat.json().get("repositories", []) if cat.status == 200 else []
            t.check("team/app" in listed and "secret/app" not in listed,
                    "a catalog token lists what its identity may pull: %r" % listed)
        r = token_post(url, {"grant_type": "password", "username": "alice", "password": "nope",
                             "service": "portolan", "client_id": "tests"})
        t.eq(r.status, 401, "POST wrong password")
        r = token_post(url, {"grant_type": "magic", "service": "portolan"})
        t.eq(r.status, 400, "unknown grant_type")
        r = token_get(url, auth, service="someone-else", scope="repository:team/app:pull")
        t.eq(r.status, 400, "unknown service")
        r = token_get(url, basic("alice", "bad"), service="portolan")
        t.eq(r.status, 401, "GET /token with a wrong password")
        # a removed user's token stops at once
        post_json(admin, "/admin/users", {"name": "carol", "password": "carol-pw",
                                          "grants": ["team/**:pull"]})
        r = token_get(url, basic("carol", "carol-pw"), service="portolan",
                      scope="repository:team/app:pull")
        t.require(r.status == 200, "carol's token: %s" % r.describe())
        carol = AuthClient(url, "Bearer " + r.json()["token"])
        t.eq(carol.get_manifest("team/app", "v1").status, 200, "carol's bearer")
        t.eq(admin.delete("/admin/users/carol").status, 204, "delete carol")
        t.eq(carol.get_manifest("team/app", "v1").status, 401, "deleted user's token")

    @t.test
    def key_rotation():
        r = token_get(url, basic("alice", "alice-pw-2"), service="portolan",
                      scope="repository:team/app:pull")
        old = r.json()["token"] if r.status == 200 else ""
        r = post_json(admin, "/admin/auth/keys/rotate", {})
        t.eq(r.status, 201, "rotate: %s" % r.describe())
        kid = r.json().get("kid") if r.status == 201 else None
        r = token_get(url, basic("alice", "alice-pw-2"), service="portolan",
                      scope="repository:team/app:pull")
        t.require(r.status == 200, "token after rotation")
        new = r.json()["token"]
        header = json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))
        t.eq(header.get("kid"), kid, "new tokens carry the new kid")
        t.eq(AuthClient(url, "Bearer " + new).get_manifest("team/app", "v1").status, 200,
             "new key verifies")
        t.eq(AuthClient(url, "Bearer " + old).get_manifest("team/app", "v1").status, 200,
             "a token of the old key stays valid until it expires")

    @t.test
    def audit_and_metrics():
        r = anon.get("/metrics")
        text = r.body.decode()
        for series in ('portolan_auth_decisions_total{result="denied"}',
                       'portolan_auth_logins_total{result="failed"}',
                       'portolan_auth_token_cache_total{result="hit"}'):
            t.check(series in text, "metrics lack %s" % series)
        path = os.path.join(node.data_dir, "audit", "audit.log")
        t.require(os.path.exists(path), "no audit log at %s" % path)
        with open(path) as f:
            lines = [json.loads(x) for x in f if x.strip()]
        actions = {(x.get("action"), x.get("identity")) for x in lines}
        t.check(("push", "user:alice") in actions, "no push by alice audited")
        t.check(("denied", "user:alice") in actions, "no denial of alice audited")
        t.check(any(a == "login" for a, _ in actions), "no failed login audited")
        t.check(any((a or "").startswith("admin POST") for a, _ in actions),
                "no admin change audited")
        t.check(admin_pw not in open(path).read(), "the audit log holds a password")
        t.check(oct(stat.S_IMODE(os.stat(path).st_mode)) == "0o600", "audit.log mode")


def limiter(t, work):
    mport = harness.free_port()
    with harness.Node(data_dir=os.path.join(work, "limit"),
                      env={"PORTOLAN_INITIAL_ADMIN_PASSWORD": "s3cret-admin"},
                      args=["--auth", "on", "--login-burst", "2", "--login-window", "60s",
                            "--metrics-listen", "127.0.0.1:%d" % mport]) as node:
        @t.test
        def metrics_listener():
            t.eq(AuthClient(node.url).get("/metrics").status, 404, "/metrics on the client port")
            m = AuthClient("http://127.0.0.1:%d" % mport)
            r = m.get("/metrics")
            t.eq(r.status, 200, "/metrics on its own port")
            t.check(b"portolan_auth_logins_total" in r.body, "auth series missing")
            t.eq(m.get("/v2/").status, 404, "the registry on the metrics port")
            t.eq(AuthClient(node.url, basic("admin", "s3cret-admin")).get("/v2/").status, 200,
                 "the administrator from the environment")

        @t.test
        def login_limiter():
            bad = AuthClient(node.url, basic("admin", "guess"))
            statuses = [bad.get("/v2/").status for _ in range(4)]
            t.check(statuses[:2] == [401, 401], "first wrong passwords: %r" % statuses)
            r = bad.get("/v2/")
            t.eq(r.status, 429, "after the burst")
            t.check(int(r.headers.get("Retry-After", "0")) >= 1, "Retry-After %r"
                    % r.headers.get("Retry-After"))
            t.eq(r.error_codes(), ["TOOMANYREQUESTS"], "429 code")
            r = token_get(node.url, basic("admin", "guess"), service="portolan")
            t.eq(r.status, 429, "/token is limited too")
            t.check("initial-admin-password" not in os.listdir(node.data_dir),
                    "a password file was generated although the environment named one")


def expiry(t, work):
    pwfile = os.path.join(work, "admin-pw")
    with open(pwfile, "w") as f:
        f.write("from-a-file\n")
    with harness.Node(data_dir=os.path.join(work, "expiry"),
                      args=["--auth", "on", "--initial-admin-password-file", pwfile,
                            "--token-ttl", "1s"]) as node:
        @t.test
        def password_file_and_expiry():
            admin = AuthClient(node.url, basic("admin", "from-a-file"))
            t.eq(admin.get("/v2/").status, 200, "password from the file (newline stripped)")
            r = token_get(node.url, basic("admin", "from-a-file"), service="portolan",
                          scope="repository:x/y:pull")
            t.require(r.status == 200, "token: %s" % r.describe())
            t.eq(r.json().get("expires_in"), 1, "expires_in of a 1 s token")
            bearer = AuthClient(node.url, "Bearer " + r.json()["token"])
            t.eq(bearer.get("/v2/").status, 200, "fresh token")
            time.sleep(63)  # exp + the verifier's 60 s clock-skew leeway
            r = bearer.get("/v2/")
            t.eq(r.status, 401, "expired token")
            t.check("invalid_token" in r.headers.get("WWW-Authenticate", ""),
                    "expired token challenge %r" % r.headers.get("WWW-Authenticate"))


def auth_off_refused(t, work):
    @t.test
    def auth_off_needs_loopback():
        p = subprocess.run([harness.portolan_bin(), "serve", "--auth", "off", "--listen",
                            "0.0.0.0:%d" % harness.free_port(), "--data-dir",
                            os.path.join(work, "off")], capture_output=True, text=True,
                           timeout=30)
        t.eq(p.returncode, 2, "exit status")
        t.check("auth" in p.stderr and "loopback" in p.stderr, "stderr %r" % p.stderr)


def main(results):
    if results.target != "portolan":
        raise harness.Skip("portolan's access control")
    work = tempfile.mkdtemp(prefix="pt-auth-")
    try:
        with harness.Node(data_dir=os.path.join(work, "main"), args=["--auth", "on"]) as node:
            pwpath = os.path.join(node.data_dir, "initial-admin-password")

            @results.test
            def first_admin_generated():
                results.require(os.path.exists(pwpath), "no generated password file")
                mode = stat.S_IMODE(os.stat(pwpath).st_mode)
                results.eq(oct(mode), "0o600", "password file mode")
                with open(node.log_path) as f:
                    log = f.read()
                with open(pwpath) as f:
                    pw = f.read().strip()
                results.check(pwpath.split("/")[-1] in log, "the log does not name the file")
                results.check(pw not in log, "the log holds the password")
                key = os.path.join(node.data_dir, "auth", "signing-key.pem")
                results.eq(oct(stat.S_IMODE(os.stat(key).st_mode)), "0o600", "key file mode")

            with open(pwpath) as f:
                admin_pw = f.read().strip()
            run_checks(results, node, admin_pw)
        limiter(results, work)
        auth_off_refused(results, work)
        expiry(results, work)
    finally:
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)
