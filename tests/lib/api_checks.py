"""api_checks.py - what the distribution-API modules share (tests/integration/test_api.py:
base, uploads and blobs; test_api_manifests.py: manifests, tags, catalog, referrers): the checks
of an answer a client relies on (status, the JSON error body, Location, HEAD the same as GET,
a manifest served exactly), small request helpers, and the run of a module: one registry,
every test of an ApiChecks subclass in its order, then its clean shutdown.

One registry serves a whole module; each test works in repositories of its own, so tests
are independent of each other's order. Checks marked strict cover behaviour that Portolan must
have but CNCF Distribution 2.8 lacks (referrers, tag deletion, sorted and paginated tag lists,
single-POST upload, Content-Range checking, ?tag= on manifest PUT, 413 for large manifests,
pagination number validation, manifests with foreign layers (2.8 refuses their urls unless
configured), sha512 digests (2.8 files a blob pushed by sha512 under its sha256, refuses a
manifest PUT by its sha512 digest and takes sha384)); they are enforced for the portolan target
only.
"""

import hashlib
import urllib.parse

import harness as h

OCTET = {"Content-Type": "application/octet-stream"}
MIB = 1024 * 1024


def sha512_digest(data):
    return "sha512:" + hashlib.sha512(data).hexdigest()


def media_type(value):
    """A Content-Type value without parameters."""
    return (value or "").split(";")[0].strip()


def link_target(resp):
    """(path, query dict) of a Link rel="next" header, or None."""
    path = h.next_link(resp)
    if path is None:
        return None
    parts = urllib.parse.urlsplit(path)
    return parts.path, dict(urllib.parse.parse_qsl(parts.query))


class ApiChecks:
    """The checks and helpers of the API tests; a subclass lists its tests in tests()."""

    def __init__(self, results, reg):
        self.t = results
        self.reg = reg
        self.c = h.Client(reg.url)

    # -- helpers -----------------------------------------------------------------------

    def err(self, r, status, codes, what, strict=False, code_strict=None, head=False):
        """Check an error answer: status (int or tuple) and, unless head, a JSON error body
        carrying one of codes. code_strict defaults to strict."""
        t = self.t
        statuses = (status,) if isinstance(status, int) else tuple(status)
        ok = t.check(r.status in statuses, "%s: status %d, want %s (%s)"
                     % (what, r.status, "/".join(map(str, statuses)), r.describe()),
                     strict=strict)
        if head:
            return t.check(r.body == b"", "%s: HEAD answered with a body" % what) and ok
        codes = (codes,) if isinstance(codes, str) else tuple(codes)
        cs = strict if code_strict is None else code_strict
        got = r.error_codes()
        ok = t.check(any(c in codes for c in got), "%s: error codes %s, want %s (%s)"
                     % (what, got, "|".join(codes), r.describe()), strict=cs) and ok
        if got:
            doc = r.json()
            shape = all(isinstance(e, dict) and isinstance(e.get("code"), str)
                        and isinstance(e.get("message", ""), str) for e in doc["errors"])
            ok = t.check(shape, "%s: malformed error body %r" % (what, r.body[:200]),
                         strict=cs) and ok
            ok = t.check(media_type(r.headers.get("Content-Type")) == "application/json",
                         "%s: error Content-Type %r" % (what, r.headers.get("Content-Type")),
                         strict=cs) and ok
        return ok

    def status(self, r, want, what, strict=False):
        wants = (want,) if isinstance(want, int) else tuple(want)
        return self.t.check(r.status in wants, "%s: status %d, want %s (%s)"
                            % (what, r.status, "/".join(map(str, wants)), r.describe()),
                            strict=strict)

    def loc(self, r, what):
        value = r.headers.get("Location")
        self.t.require(value, "%s: no Location header (%s)" % (what, r.describe()))
        return self.c.location_path(value)

    def start_upload(self, repo, what="POST upload"):
        r = self.c.request("POST", "/v2/%s/blobs/uploads/" % repo, {"Content-Length": "0"})
        self.t.require(r.status == 202, "%s: status %d, want 202 (%s)"
                       % (what, r.status, r.describe()))
        return r, self.loc(r, what)

    def patch(self, loc, data, start, end=None, extra=None):
        end = start + len(data) - 1 if end is None else end
        hdrs = dict(OCTET, **{"Content-Range": "%d-%d" % (start, end),
                              "Content-Length": str(len(data))})
        hdrs.update(extra or {})
        return self.c.request("PATCH", loc, hdrs, data)

    def blob_is(self, repo, digest, data, what):
        r = self.c.get("/v2/%s/blobs/%s" % (repo, digest))
        self.t.check(r.status == 200 and r.body == data, "%s: GET blob gave %s, want the bytes"
                     % (what, r.describe()))

    def blob_absent(self, repo, digest, what):
        r = self.c.head("/v2/%s/blobs/%s" % (repo, digest))
        self.t.check(r.status == 404, "%s: HEAD blob %s is %d, want 404"
                     % (what, digest[:19], r.status))

    def blob_location_ok(self, r, repo, digest, what):
        loc = r.headers.get("Location")
        if not self.t.check(loc is not None, "%s: no Location" % what):
            return
        path = self.c.location_path(loc)
        self.t.eq(path.split("?")[0], "/v2/%s/blobs/%s" % (repo, digest), what + " Location")
        self.t.eq(r.headers.get("Docker-Content-Digest"), digest,
                  what + " Docker-Content-Digest")

    def same_as_get(self, get, head, what, names=("Content-Type", "Content-Length",
                                                 "Docker-Content-Digest", "Location", "Range",
                                                 "Docker-Upload-UUID",
                                                 "Docker-Distribution-API-Version")):
        t = self.t
        t.eq(head.status, get.status, what + ": HEAD status vs GET")
        for n in names:
            t.eq(head.headers.get(n), get.headers.get(n), "%s: HEAD %s vs GET" % (what, n))
        t.eq(head.body, b"", what + ": HEAD body")

    def manifest_ok(self, repo, ref, m, what):
        """GET and HEAD of repo:ref serve m exactly, with its type and digest."""
        t = self.t
        g = self.c.get_manifest(repo, ref)
        if not t.check(g.status == 200, "%s: GET %s status %d (%s)"
                       % (what, ref, g.status, g.describe())):
            return
        t.check(g.body == m.bytes, "%s: GET %s bytes differ from the pushed manifest" % (what, ref))
        t.eq(media_type(g.headers.get("Content-Type")), m.media_type, what + " Content-Type")
        t.eq(g.headers.get("Docker-Content-Digest"), m.digest, what + " Docker-Content-Digest")
        t.eq(g.headers.get("Content-Length"), str(m.size), what + " Content-Length")
        hd = self.c.get_manifest(repo, ref, "HEAD")
        self.same_as_get(g, hd, "%s HEAD %s" % (what, ref))

    def push_blobs(self, repo, m):
        for digest, data in m.blobs:
            self.c.push_blob(repo, data)

    def sha512_manifest(self, obj, media_type=None):
        """A Manifest addressed by its sha512 digest (bytes, media type and size as usual)."""
        m = h.Manifest(obj, media_type)
        m.digest = sha512_digest(m.bytes)
        return m

    def run(self):
        t = self.t
        tests = self.tests()
        for fn, strict in tests:
            t.run(fn.__name__, self.reg.guard(t, fn), strict=strict)
        self.c.close()


def clean_shutdown(results, reg, code):
    reports = reg.sanitizer_reports()
    results.check(not reports, "sanitizer reports in %s: %s" % (reg.log_path, " | ".join(reports)))
    results.check(code == 0, "exit status %s after SIGTERM" % code)


def run_module(results, cls):
    """Starts the registry, runs cls(results, reg).run(), then checks its clean shutdown."""
    reg = h.registry_for(results.target)
    try:
        reg.start()
        cls(results, reg).run()
        code = reg.stop()
        # A clean exit also means no sanitizer report in a PT_SANITIZE build.
        results.run("clean_shutdown", clean_shutdown, results, reg, code, strict=True)
    finally:
        reg.stop()
        reg.cleanup()
