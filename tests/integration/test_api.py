"""test_api.py - the OCI distribution-spec v1.1 HTTP API, endpoint by endpoint.

Covers end-1 .. end-13 plus the Docker extras (_catalog, DELETE of an upload session,
Docker-Upload-UUID), for success and error answers: status, the headers a client relies on
(Docker-Content-Digest, Docker-Upload-UUID, Location, Range, Content-Length, Content-Type,
Docker-Distribution-API-Version, OCI-Subject, OCI-Filters-Applied, Link) and the JSON error
body {"errors":[{"code":..,"message":..}]}.

One registry serves the whole module; each test works in repositories of its own, so tests
are independent of each other's order. Checks marked strict cover behaviour that Portolan must
have but CNCF Distribution 2.8 lacks (referrers, tag deletion, sorted and paginated tag lists,
single-POST upload, Content-Range checking, ?tag= on manifest PUT, 413 for large manifests,
pagination number validation, manifests with foreign layers (2.8 refuses their urls unless
configured), sha512 digests (2.8 files a blob pushed by sha512 under its sha256, refuses a
manifest PUT by its sha512 digest and takes sha384)); they are enforced for the portolan target
only.
"""

import hashlib
import io
import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402

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


class Api:
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

    # -- end-1 ---------------------------------------------------------------------------

    def base(self):
        c, t = self.c, self.t
        r = c.get("/v2/")
        t.eq(r.status, 200, "GET /v2/ status")
        t.eq(r.headers.get("Docker-Distribution-API-Version"), "registry/2.0",
             "GET /v2/ Docker-Distribution-API-Version")
        if r.body:
            try:
                json.loads(r.body)
            except ValueError:
                t.check(False, "GET /v2/ body is not JSON: %r" % r.body[:100])
        hd = c.head("/v2/")
        self.same_as_get(r, hd, "HEAD /v2/")

    # -- end-4a/4b/5/6/13, uploads ---------------------------------------------------------

    def upload_single_post(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        data = os.urandom(3000)
        d = h.sha256_digest(data)
        r = c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), OCTET, data)
        t.check(r.status in (201, 202), "single POST: status %d (%s)" % (r.status, r.describe()))
        if t.check(r.status == 201, "single POST: status %d, want 201" % r.status, strict=True):
            self.blob_location_ok(r, repo, d, "single POST")
        elif r.status == 202:
            # The spec's fallback: the 202 opened a session that a PUT completes.
            r = c.request("PUT", h.with_query(self.loc(r, "single POST 202"), digest=d), OCTET,
                          data)
            t.eq(r.status, 201, "single POST fallback PUT status")
        self.blob_is(repo, d, data, "single POST")

    def upload_post_put(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        r, loc = self.start_upload(repo)
        t.check(bool(r.headers.get("Docker-Upload-UUID")), "POST: no Docker-Upload-UUID")
        data = os.urandom(MIB + 17)
        d = h.sha256_digest(data)
        # The body is streamed from a file object with the length given up front.
        r = c.request("PUT", h.with_query(loc, digest=d),
                      dict(OCTET, **{"Content-Length": str(len(data))}), io.BytesIO(data))
        t.eq(r.status, 201, "PUT upload status")
        self.blob_location_ok(r, repo, d, "PUT upload")
        self.blob_is(repo, d, data, "POST+PUT")
        r = c.get(loc)
        self.err(r, 404, "BLOB_UPLOAD_UNKNOWN", "status of a completed upload")

        # A body produced by an iterable, also with its length given.
        r, loc = self.start_upload(repo)
        parts = [os.urandom(1000) for _ in range(5)]
        data = b"".join(parts)
        d = h.sha256_digest(data)
        r = c.request("PUT", h.with_query(loc, digest=d),
                      dict(OCTET, **{"Content-Length": str(len(data))}), iter(parts))
        t.eq(r.status, 201, "PUT upload (iterable body) status")
        self.blob_is(repo, d, data, "POST+PUT iterable")

    def upload_chunked(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        data = os.urandom(200000)
        d = h.sha256_digest(data)
        cuts = [0, 65536, 150000, len(data)]
        r, loc = self.start_upload(repo)
        uuid = r.headers.get("Docker-Upload-UUID")
        for i in range(len(cuts) - 1):
            chunk = data[cuts[i]:cuts[i + 1]]
            r = self.patch(loc, chunk, cuts[i])
            if not t.check(r.status == 202, "PATCH %d: status %d (%s)"
                           % (i, r.status, r.describe())):
                return
            t.eq(r.headers.get("Range"), "0-%d" % (cuts[i + 1] - 1), "PATCH %d Range" % i)
            t.eq(r.headers.get("Docker-Upload-UUID"), uuid, "PATCH %d Docker-Upload-UUID" % i)
            t.eq(r.headers.get("Content-Length"), "0", "PATCH %d Content-Length" % i)
            loc = self.loc(r, "PATCH %d" % i)
        g = c.get(loc)
        t.eq(g.status, 204, "upload status (GET) status")
        t.eq(g.headers.get("Range"), "0-%d" % (len(data) - 1), "upload status Range")
        t.check(bool(g.headers.get("Location")), "upload status: no Location")
        t.eq(g.headers.get("Docker-Upload-UUID"), uuid, "upload status Docker-Upload-UUID")
        hd = c.head(loc)
        self.same_as_get(g, hd, "upload status HEAD")
        r = c.request("PUT", h.with_query(self.loc(g, "status"), digest=d),
                      {"Content-Length": "0"}, b"")
        t.eq(r.status, 201, "closing PUT (empty) status")
        self.blob_location_ok(r, repo, d, "closing PUT")
        self.blob_is(repo, d, data, "chunked")

        # The last chunk may travel in the closing PUT.
        data = os.urandom(5000)
        d = h.sha256_digest(data)
        r, loc = self.start_upload(repo)
        r = self.patch(loc, data[:3000], 0)
        t.eq(r.status, 202, "PATCH before final PUT status")
        loc = self.loc(r, "PATCH")
        rest = data[3000:]
        r = c.request("PUT", h.with_query(loc, digest=d),
                      dict(OCTET, **{"Content-Range": "3000-%d" % (len(data) - 1),
                                     "Content-Length": str(len(rest))}), rest)
        t.eq(r.status, 201, "closing PUT with the last chunk: status")
        self.blob_is(repo, d, data, "chunked + final PUT chunk")

    def upload_chunk_out_of_order(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        data = os.urandom(30000)
        d = h.sha256_digest(data)
        r, loc = self.start_upload(repo)
        r = self.patch(loc, data[:10000], 0)
        t.require(r.status == 202, "first PATCH: %s" % r.describe())
        loc = self.loc(r, "first PATCH")
        # A gap: the chunk starts past the current offset.
        r = self.patch(loc, data[12000:20000], 12000)
        self.err(r, 416, "RANGE_INVALID", "PATCH leaving a gap", code_strict=True)
        g = c.get(loc)
        t.eq(g.status, 204, "status after gap")
        t.eq(g.headers.get("Range"), "0-9999", "Range after gap")
        # An overlap: the chunk starts before the current offset.
        r = self.patch(loc, data[5000:15000], 5000)
        self.err(r, 416, "RANGE_INVALID", "overlapping PATCH", code_strict=True)
        g = c.get(loc)
        t.eq(g.status, 204, "status after overlap")
        t.eq(g.headers.get("Range"), "0-9999", "Range after overlap")
        loc = self.loc(g, "status")
        # The session is still usable from the offset it reports.
        r = self.patch(loc, data[10000:], 10000)
        t.eq(r.status, 202, "PATCH resuming at the offset")
        r = c.request("PUT", h.with_query(self.loc(r, "resume"), digest=d),
                      {"Content-Length": "0"}, b"")
        t.eq(r.status, 201, "closing PUT after 416s")
        self.blob_is(repo, d, data, "after 416s")

    def upload_cancel(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        r, loc = self.start_upload(repo)
        r = self.patch(loc, b"some bytes", 0)
        t.eq(r.status, 202, "PATCH status")
        loc = self.loc(r, "PATCH")
        r = c.delete(loc)
        t.eq(r.status, 204, "DELETE upload status")
        self.err(c.get(loc), 404, "BLOB_UPLOAD_UNKNOWN", "GET status after DELETE")
        self.err(c.head(loc), 404, "BLOB_UPLOAD_UNKNOWN", "HEAD status after DELETE", head=True)
        self.err(c.delete(loc), 404, "BLOB_UPLOAD_UNKNOWN", "DELETE upload again")
        r = self.patch(loc, b"more", 10)
        self.err(r, 404, "BLOB_UPLOAD_UNKNOWN", "PATCH after DELETE")
        self.blob_absent(repo, h.sha256_digest(b"some bytes"), "cancelled upload")

    def upload_unknown_session(self):
        c = self.c
        repo = h.unique_repo("api")
        c.push_blob(repo, b"make the repository exist")
        base = "/v2/%s/blobs/uploads/%s" % (repo, "0f0e0d0c-0b0a-4909-8807-060504030201")
        # Distribution answers BLOB_UPLOAD_INVALID for a session it cannot decode.
        for what, r in (("GET", c.get(base)),
                        ("PATCH", self.patch(base, b"abc", 0)),
                        ("PUT", c.request("PUT", h.with_query(base, digest=h.sha256_digest(b"abc")),
                                          OCTET, b"abc")),
                        ("DELETE", c.delete(base))):
            self.err(r, 404, "BLOB_UPLOAD_UNKNOWN", "%s unknown session" % what,
                     code_strict=True)

    def upload_digest_mismatch(self):
        c = self.c
        repo = h.unique_repo("api")
        data = os.urandom(4096)
        wrong = h.sha256_digest(b"something else")
        r, loc = self.start_upload(repo)
        r = c.request("PUT", h.with_query(loc, digest=wrong), OCTET, data)
        self.err(r, 400, "DIGEST_INVALID", "PUT with the wrong digest")
        self.blob_absent(repo, wrong, "wrong digest")
        self.blob_absent(repo, h.sha256_digest(data), "wrong digest (actual content)")
        # Single POST with the wrong digest: Distribution ignores ?digest= there.
        r = c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, wrong), OCTET, data)
        self.err(r, 400, "DIGEST_INVALID", "single POST with the wrong digest", strict=True)
        self.blob_absent(repo, wrong, "single POST wrong digest")
        self.blob_absent(repo, h.sha256_digest(data), "single POST wrong digest (actual)")

    # -- end-11 --------------------------------------------------------------------------

    def mount(self):
        c, t = self.c, self.t
        src, dst = h.unique_repo("api"), h.unique_repo("api")
        data = os.urandom(2048)
        d = c.push_blob(src, data)
        r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d, src),
                      {"Content-Length": "0"})
        t.eq(r.status, 201, "mount status")
        self.blob_location_ok(r, dst, d, "mount")
        self.blob_is(dst, d, data, "mounted")
        # Mounting a blob the source does not have opens an ordinary session.
        other = os.urandom(100)
        od = h.sha256_digest(other)
        r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, od, src),
                      {"Content-Length": "0"})
        t.eq(r.status, 202, "mount of an unknown blob: status")
        t.check(bool(r.headers.get("Docker-Upload-UUID")), "mount 202: no Docker-Upload-UUID")
        loc = self.loc(r, "mount 202")
        r = c.request("PUT", h.with_query(loc, digest=od), OCTET, other)
        t.eq(r.status, 201, "upload in the session a failed mount opened")
        self.blob_is(dst, od, other, "after failed mount")

    # -- end-2, blob reads and deletes -----------------------------------------------------

    def blob_get_head(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        data = os.urandom(10000)
        d = c.push_blob(repo, data)
        g = c.get("/v2/%s/blobs/%s" % (repo, d))
        t.eq(g.status, 200, "GET blob status")
        t.check(g.body == data, "GET blob bytes differ")
        t.eq(g.headers.get("Content-Length"), str(len(data)), "GET blob Content-Length")
        t.eq(g.headers.get("Docker-Content-Digest"), d, "GET blob Docker-Content-Digest")
        t.check(bool(g.headers.get("Content-Type")), "GET blob: no Content-Type")
        hd = c.head("/v2/%s/blobs/%s" % (repo, d))
        self.same_as_get(g, hd, "HEAD blob")

    def blob_range(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        data = os.urandom(1000)
        d = c.push_blob(repo, data)
        path = "/v2/%s/blobs/%s" % (repo, d)
        for rng, lo, hi in (("bytes=2-5", 2, 5), ("bytes=990-", 990, 999),
                            ("bytes=0-0", 0, 0), ("bytes=500-5000", 500, 999)):
            r = c.get(path, {"Range": rng})
            t.eq(r.status, 206, "Range %s status" % rng)
            t.eq(r.headers.get("Content-Range"), "bytes %d-%d/%d" % (lo, hi, len(data)),
                 "Range %s Content-Range" % rng)
            t.eq(r.headers.get("Content-Length"), str(hi - lo + 1), "Range %s Content-Length" % rng)
            t.check(r.body == data[lo:hi + 1], "Range %s: wrong bytes" % rng)
        r = c.get(path, {"Range": "bytes=5000-6000"})
        t.eq(r.status, 416, "unsatisfiable Range status")
        t.eq(r.headers.get("Content-Range"), "bytes */%d" % len(data),
             "unsatisfiable Range Content-Range")

    def blob_unknown(self):
        c = self.c
        repo = h.unique_repo("api")
        c.push_blob(repo, b"exists")
        d = h.sha256_digest(os.urandom(16))
        self.err(c.get("/v2/%s/blobs/%s" % (repo, d)), 404, "BLOB_UNKNOWN", "GET unknown blob")
        self.err(c.head("/v2/%s/blobs/%s" % (repo, d)), 404, "BLOB_UNKNOWN", "HEAD unknown blob",
                 head=True)
        r = c.get("/v2/%s/blobs/%s" % (h.unique_repo("nosuch"), d))
        self.err(r, 404, ("BLOB_UNKNOWN", "NAME_UNKNOWN"), "GET blob in an unknown repository")

    def blob_delete(self):
        c, t = self.c, self.t
        a, b = h.unique_repo("api"), h.unique_repo("api")
        data = os.urandom(512)
        d = c.push_blob(a, data)
        r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (b, d, a),
                      {"Content-Length": "0"})
        t.eq(r.status, 201, "mount before delete")
        r = c.delete("/v2/%s/blobs/%s" % (b, d))
        t.eq(r.status, 202, "DELETE blob status")
        self.err(c.get("/v2/%s/blobs/%s" % (b, d)), 404, "BLOB_UNKNOWN", "GET deleted blob")
        self.err(c.delete("/v2/%s/blobs/%s" % (b, d)), 404, "BLOB_UNKNOWN", "DELETE blob again")
        self.blob_is(a, d, data, "other repository after delete")

    # -- sha512 digests (image-spec descriptor.md, "Registered algorithms") --------------------

    def sha512_blobs(self):
        """A blob addressed by its sha512 digest: single POST, chunked upload closed by PUT,
        GET (whole and Range), HEAD, mount into another repository, DELETE."""
        c, t = self.c, self.t
        repo, dst = h.unique_repo("s512"), h.unique_repo("s512")
        data = os.urandom(3000)
        d = sha512_digest(data)
        r = c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), OCTET, data)
        if r.status == 202:  # the spec's fallback: the session a PUT completes
            r = c.request("PUT", h.with_query(self.loc(r, "sha512 POST 202"), digest=d), OCTET,
                          data)
        t.require(r.status == 201, "sha512 single POST: status %d (%s)" % (r.status, r.describe()))
        self.blob_location_ok(r, repo, d, "sha512 single POST")
        self.blob_is(repo, d, data, "sha512 single POST")
        # the same bytes under sha256 are another blob, not pushed
        self.blob_absent(repo, h.sha256_digest(data), "sha256 of a sha512-pushed blob")

        big = os.urandom(300000)
        bd = sha512_digest(big)
        r, loc = self.start_upload(repo, "sha512 chunked POST")
        for lo, hi in ((0, 100000), (100000, 250000)):
            r = self.patch(loc, big[lo:hi], lo)
            t.require(r.status == 202, "sha512 PATCH %d: %s" % (lo, r.describe()))
            loc = self.loc(r, "sha512 PATCH")
        r = c.request("PUT", h.with_query(loc, digest=bd),
                      dict(OCTET, **{"Content-Range": "250000-%d" % (len(big) - 1),
                                     "Content-Length": str(len(big) - 250000)}), big[250000:])
        t.require(r.status == 201, "sha512 closing PUT: %s" % r.describe())
        self.blob_location_ok(r, repo, bd, "sha512 closing PUT")
        g = c.get("/v2/%s/blobs/%s" % (repo, bd))
        t.eq(g.status, 200, "GET sha512 blob status")
        t.check(g.body == big, "GET sha512 blob: bytes differ")
        t.eq(g.headers.get("Docker-Content-Digest"), bd, "GET sha512 blob Docker-Content-Digest")
        t.eq(g.headers.get("Content-Length"), str(len(big)), "GET sha512 blob Content-Length")
        self.same_as_get(g, c.head("/v2/%s/blobs/%s" % (repo, bd)), "HEAD sha512 blob")
        r = c.get("/v2/%s/blobs/%s" % (repo, bd), {"Range": "bytes=299990-"})
        t.eq(r.status, 206, "sha512 blob Range status")
        t.check(r.body == big[299990:], "sha512 blob Range: wrong bytes")
        t.eq(r.headers.get("Content-Range"), "bytes 299990-299999/300000",
             "sha512 blob Content-Range")

        # A wrong sha512 digest is refused and stores nothing.
        wrong = sha512_digest(b"something else")
        r, loc = self.start_upload(repo, "sha512 mismatch POST")
        r = c.request("PUT", h.with_query(loc, digest=wrong), OCTET, b"abc")
        self.err(r, 400, "DIGEST_INVALID", "PUT with the wrong sha512 digest")
        self.blob_absent(repo, wrong, "wrong sha512 digest")
        self.blob_absent(repo, sha512_digest(b"abc"), "wrong sha512 digest (actual content)")

        r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, bd, repo),
                      {"Content-Length": "0"})
        t.eq(r.status, 201, "sha512 mount status")
        self.blob_location_ok(r, dst, bd, "sha512 mount")
        self.blob_is(dst, bd, big, "sha512 mounted")
        r = c.delete("/v2/%s/blobs/%s" % (dst, bd))
        t.eq(r.status, 202, "DELETE sha512 blob status")
        self.err(c.get("/v2/%s/blobs/%s" % (dst, bd)), 404, "BLOB_UNKNOWN",
                 "GET deleted sha512 blob")
        self.blob_is(repo, bd, big, "sha512 blob in the source after delete")

    def sha512_image(self, repo):
        """An OCI image whose config and layers are sha512 descriptors, blobs pushed."""
        c = self.c
        layers = [os.urandom(700), os.urandom(900)]
        config = h.canonical_json({"architecture": "amd64", "os": "linux",
                                   "rootfs": {"type": "layers",
                                              "diff_ids": [sha512_digest(x) for x in layers]}})
        for blob in [config] + layers:
            r = c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, sha512_digest(blob)),
                          OCTET, blob)
            if r.status == 202:
                r = c.request("PUT", h.with_query(self.loc(r, "sha512 blob POST 202"),
                                                  digest=sha512_digest(blob)), OCTET, blob)
            self.t.require(r.status == 201, "push sha512 blob: %s" % r.describe())

        def desc(mt, b):
            return {"mediaType": mt, "digest": sha512_digest(b), "size": len(b)}
        obj = {"schemaVersion": 2, "mediaType": h.OCI_MANIFEST,
               "config": desc(h.OCI_CONFIG, config),
               "layers": [desc(h.OCI_LAYER, x) for x in layers]}
        return obj

    def sha512_manifests(self):
        """A manifest with sha512 config and layers, pushed by tag (stored under its sha256)
        and by its sha512 digest; GET/HEAD/DELETE by the sha512 digest; an index whose child
        is a sha512 descriptor."""
        c, t = self.c, self.t
        repo = h.unique_repo("s512")
        obj = self.sha512_image(repo)
        by_tag = h.Manifest(obj)  # sha256-addressed when pushed by tag
        r = c.put_manifest(repo, "v1", by_tag.bytes, by_tag.media_type)
        t.require(r.status == 201, "PUT sha512-descriptor manifest by tag: %s" % r.describe())
        t.eq(r.headers.get("Docker-Content-Digest"), by_tag.digest, "PUT by tag digest")
        self.manifest_ok(repo, "v1", by_tag, "sha512 descriptors by tag")

        m = self.sha512_manifest(dict(obj, annotations={"org.example": "sha512"}))
        r = c.put_manifest(repo, m.digest, m.bytes, m.media_type)
        t.require(r.status == 201, "PUT manifest by sha512 digest: %s" % r.describe())
        t.eq(r.headers.get("Docker-Content-Digest"), m.digest, "PUT by sha512 Docker-Content-Digest")
        t.eq(c.location_path(r.headers.get("Location", "")), "/v2/%s/manifests/%s" % (repo, m.digest),
             "PUT by sha512 Location")
        self.manifest_ok(repo, m.digest, m, "manifest by sha512 digest")
        # a sha512 reference the body does not hash to
        other = self.sha512_manifest(dict(obj, annotations={"org.example": "other"}))
        r = c.put_manifest(repo, m.digest, other.bytes, other.media_type)
        self.err(r, 400, "DIGEST_INVALID", "PUT by a sha512 digest that does not match")
        self.err(c.get_manifest(repo, other.digest), 404, "MANIFEST_UNKNOWN",
                 "GET never-stored sha512 manifest")

        # An index whose child manifest is addressed by sha512.
        idx = h.Manifest({"schemaVersion": 2, "mediaType": h.OCI_INDEX,
                          "manifests": [m.descriptor()]})
        r = c.put_manifest(repo, "idx", idx.bytes, idx.media_type)
        t.require(r.status == 201, "PUT index with a sha512 child: %s" % r.describe())
        self.manifest_ok(repo, "idx", idx, "index with a sha512 child")

        r = c.delete("/v2/%s/manifests/%s" % (repo, m.digest))
        t.eq(r.status, 202, "DELETE manifest by sha512 digest status")
        self.err(c.get_manifest(repo, m.digest), 404, "MANIFEST_UNKNOWN",
                 "GET deleted sha512 manifest")
        self.manifest_ok(repo, "v1", by_tag, "tagged manifest after the sha512 one's delete")

    def sha512_referrers(self):
        """A referrer whose subject is addressed by its sha512 digest."""
        c, t = self.c, self.t
        repo = h.unique_repo("s512")
        subject = self.sha512_manifest(self.sha512_image(repo))
        r = c.put_manifest(repo, subject.digest, subject.bytes, subject.media_type)
        t.require(r.status == 201, "PUT sha512 subject: %s" % r.describe())
        at = "application/vnd.example.sbom.v1"
        ref = h.make_image(layers=1, layer_size=64, artifact_type=at, subject=subject.descriptor())
        r = ref.push(c, repo)
        t.eq(r.headers.get("OCI-Subject"), subject.digest, "OCI-Subject of a sha512 subject")
        _, got = self.referrers_index(repo, subject.digest, what="referrers of a sha512 subject")
        t.eq(sorted(got), [ref.digest], "referrers of a sha512 subject")
        t.eq((got.get(ref.digest) or {}).get("artifactType"), at, "sha512 referrer artifactType")
        # the subject's sha256 digest names another (absent) manifest: no referrers there
        _, got = self.referrers_index(repo, h.sha256_digest(subject.bytes),
                                      what="referrers of the subject's sha256")
        t.eq(got, {}, "referrers under the sha256 of a sha512 subject")

    def digest_algorithms_refused(self):
        """Algorithms other than sha256 and sha512 are refused with DIGEST_INVALID."""
        c = self.c
        repo = h.unique_repo("s512")
        c.push_blob(repo, b"exists")
        d384 = "sha384:" + hashlib.sha384(b"x").hexdigest()
        r = c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d384), OCTET, b"x")
        self.err(r, 400, ("DIGEST_INVALID", "UNSUPPORTED"), "single POST with a sha384 digest")
        self.err(c.get("/v2/%s/blobs/%s" % (repo, d384)), (400, 404),
                 ("DIGEST_INVALID", "BLOB_UNKNOWN"), "GET blob by sha384")

    # -- end-3/7, manifests ----------------------------------------------------------------

    def manifest_put_get(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        img = h.make_image()
        self.push_blobs(repo, img)
        r = c.put_manifest(repo, "v1", img.bytes, img.media_type)
        t.eq(r.status, 201, "PUT manifest by tag status")
        t.eq(r.headers.get("Docker-Content-Digest"), img.digest, "PUT by tag Docker-Content-Digest")
        loc = r.headers.get("Location")
        if t.check(loc is not None, "PUT by tag: no Location"):
            t.check(c.location_path(loc).startswith("/v2/%s/manifests/" % repo),
                    "PUT by tag Location %r" % loc)
        self.manifest_ok(repo, "v1", img, "by tag")
        self.manifest_ok(repo, img.digest, img, "by digest")

        # By digest, without a tag.
        img2 = h.make_image(layers=1)
        self.push_blobs(repo, img2)
        r = c.put_manifest(repo, img2.digest, img2.bytes, img2.media_type)
        t.eq(r.status, 201, "PUT manifest by digest status")
        t.eq(r.headers.get("Docker-Content-Digest"), img2.digest,
             "PUT by digest Docker-Content-Digest")
        self.manifest_ok(repo, img2.digest, img2, "pushed by digest")
        t.eq(c.tags(repo), ["v1"], "tags after a PUT by digest")
        # A digest reference that does not match the body.
        r = c.put_manifest(repo, img.digest, img2.bytes, img2.media_type)
        self.err(r, 400, "DIGEST_INVALID", "PUT by a digest that does not match")

        # Re-tagging: the tag moves to the new manifest.
        r = c.put_manifest(repo, "v1", img2.bytes, img2.media_type)
        t.eq(r.status, 201, "re-tag status")
        self.manifest_ok(repo, "v1", img2, "re-tagged")
        self.manifest_ok(repo, img.digest, img, "old manifest after re-tag")

    def manifest_put_with_tags(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        img = h.make_image(layers=1)
        self.push_blobs(repo, img)
        r = c.put_manifest(repo, img.digest + "?tag=alpha&tag=beta", img.bytes, img.media_type)
        t.eq(r.status, 201, "PUT by digest with ?tag= status")
        t.eq(sorted(c.tags(repo)), ["alpha", "beta"], "tags set by ?tag=")
        self.manifest_ok(repo, "alpha", img, "?tag=alpha")
        self.manifest_ok(repo, "beta", img, "?tag=beta")

    def manifest_types(self):
        c = self.c
        repo = h.unique_repo("api")
        d1, d2 = h.make_image(docker=True), h.make_image(docker=True)
        lst = h.make_index([d1, d2], docker=True)
        lst.push(c, repo, "list")
        self.manifest_ok(repo, "list", lst, "docker manifest list")
        self.manifest_ok(repo, d1.digest, d1, "docker schema 2")
        o1, o2 = h.make_image(), h.make_image()
        idx = h.make_index([o1, o2], annotations={"org.example": "x"})
        idx.push(c, repo, "index")
        self.manifest_ok(repo, "index", idx, "oci index")
        # An image with no layers is valid.
        empty = h.make_image(layers=0)
        empty.push(c, repo, "nolayers")
        self.manifest_ok(repo, "nolayers", empty, "image without layers")

    def manifest_blob_unknown(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        present = h.make_image(layers=1)
        present.push(c, repo, "present")
        img = h.make_image()
        # Config pushed, layers missing.
        c.push_blob(repo, img.config)
        r = c.put_manifest(repo, "broken", img.bytes, img.media_type)
        self.err(r, 400, "MANIFEST_BLOB_UNKNOWN", "manifest with a missing layer")
        self.err(c.get_manifest(repo, img.digest), 404, "MANIFEST_UNKNOWN",
                 "rejected manifest by digest")
        t.eq(c.tags(repo), ["present"], "tags after a rejected manifest")
        # An index whose child manifest is missing.
        missing = h.make_image(layers=1)
        idx = h.make_index([present, missing])
        r = c.put_manifest(repo, "idx", idx.bytes, idx.media_type)
        self.err(r, 400, "MANIFEST_BLOB_UNKNOWN", "index with a missing child")
        t.eq(c.tags(repo), ["present"], "tags after a rejected index")

    FOREIGN_TYPES = [
        (False, "application/vnd.oci.image.layer.nondistributable.v1.tar"),
        (False, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
        (False, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"),
        (True, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
        (False, h.OCI_LAYER),  # any layer that carries urls
    ]

    def manifest_foreign_layers(self):
        """Layers with urls (non-distributable, "foreign") live outside the registry: the
        manifest is accepted without them and served back byte for byte."""
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        for n, (docker, lmt) in enumerate(self.FOREIGN_TYPES):
            what = "foreign layer %s" % lmt
            img = h.make_image(layers=1, docker=docker)
            foreign = os.urandom(64)  # never pushed
            fd = h.sha256_digest(foreign)
            obj = dict(img.obj)
            obj["layers"] = [{"mediaType": lmt, "digest": fd, "size": len(foreign),
                              "urls": ["https://example.com/v2/x/blobs/%s" % fd]}] + obj["layers"]
            m = h.Manifest(obj, img.media_type, img.blobs)
            for _, data in m.blobs:
                c.push_blob(repo, data)
            tag = "f%d" % n
            r = c.put_manifest(repo, tag, m.bytes, m.media_type)
            if not t.check(r.status == 201, "%s: PUT status %d (%s)"
                           % (what, r.status, r.describe()), strict=True):
                continue
            t.eq(r.headers.get("Docker-Content-Digest"), m.digest, what + " digest")
            self.manifest_ok(repo, tag, m, what)
            self.manifest_ok(repo, m.digest, m, what)
            self.blob_absent(repo, fd, what)
        # A required layer is still required when a foreign one is present.
        img = h.make_image(layers=1)
        obj = dict(img.obj)
        obj["layers"] = obj["layers"] + [{"mediaType": self.FOREIGN_TYPES[1][1],
                                          "digest": h.sha256_digest(b"f"), "size": 1,
                                          "urls": ["https://example.com/f"]}]
        m = h.Manifest(obj, img.media_type, img.blobs)
        c.push_blob(repo, img.config)
        r = c.put_manifest(repo, "missing", m.bytes, m.media_type)
        self.err(r, 400, "MANIFEST_BLOB_UNKNOWN", "foreign layer beside a missing layer")

    def manifest_refused(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        img = h.make_image(layers=1)
        img.push(c, repo, "ok")
        # Docker schema 1 (signed and unsigned) is refused.
        s1 = h.canonical_json({
            "schemaVersion": 1, "name": repo, "tag": "s1", "architecture": "amd64",
            "fsLayers": [{"blobSum": img.blobs[1][0]}],
            "history": [{"v1Compatibility": "{}"}],
            "signatures": [{"header": {"alg": "ES256"}, "signature": "AAAA", "protected": "e30"}]})
        for mt in (h.DOCKER_SCHEMA1_SIGNED, "application/vnd.docker.distribution.manifest.v1+json"):
            r = c.put_manifest(repo, "s1", s1, mt)
            self.err(r, (400, 415), ("MANIFEST_INVALID", "UNSUPPORTED"), "schema 1 (%s)" % mt)
        # Content-Type disagreeing with the manifest's mediaType.
        for mt in (h.OCI_INDEX, h.DOCKER_MANIFEST):
            r = c.put_manifest(repo, "mismatch", img.bytes, mt)
            self.err(r, 400, "MANIFEST_INVALID", "Content-Type %s for an image manifest" % mt)
        t.eq(c.tags(repo), ["ok"], "tags after refused manifests")

    def manifest_size_limit(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        img = h.make_image(layers=1)
        self.push_blobs(repo, img)

        def padded(total):
            obj = dict(img.obj)
            obj["annotations"] = {"pad": ""}
            base = len(h.canonical_json(obj))
            obj["annotations"] = {"pad": "x" * (total - base)}
            data = h.canonical_json(obj)
            assert len(data) == total
            return data

        four = padded(4 * MIB)
        r = c.put_manifest(repo, "four", four, h.OCI_MANIFEST)
        t.eq(r.status, 201, "4 MiB manifest status")
        g = c.get_manifest(repo, "four")
        t.check(g.status == 200 and g.body == four, "4 MiB manifest read back: %d" % g.status)
        big = padded(4 * MIB + 1)
        r = c.put_manifest(repo, "big", big, h.OCI_MANIFEST)
        t.check(400 <= r.status < 500, "manifest over 4 MiB: status %d" % r.status)
        self.err(r, 413, "SIZE_INVALID", "manifest over 4 MiB", strict=True)
        self.err(c.get_manifest(repo, "big"), 404, "MANIFEST_UNKNOWN", "oversized manifest tag")

    def manifest_unknown(self):
        c = self.c
        repo = h.unique_repo("api")
        h.make_image(layers=1).push(c, repo, "v1")
        d = h.sha256_digest(os.urandom(8))
        self.err(c.get_manifest(repo, "nosuchtag"), 404, "MANIFEST_UNKNOWN", "GET unknown tag")
        self.err(c.get_manifest(repo, "nosuchtag", "HEAD"), 404, "MANIFEST_UNKNOWN",
                 "HEAD unknown tag", head=True)
        self.err(c.get_manifest(repo, d), 404, "MANIFEST_UNKNOWN", "GET unknown digest")
        self.err(c.get_manifest(repo, d, "HEAD"), 404, "MANIFEST_UNKNOWN", "HEAD unknown digest",
                 head=True)
        other = h.unique_repo("nosuch")
        self.err(c.get_manifest(other, "v1"), 404, ("NAME_UNKNOWN", "MANIFEST_UNKNOWN"),
                 "GET manifest in an unknown repository")
        # A reference outside the tag grammar can never exist: 404 like any unknown manifest
        # (Distribution's 404 carries no error body, so the code is checked for Portolan only).
        for bad in ("-bad", ".x", "a" * 129):
            for name, codes in ((repo, "MANIFEST_UNKNOWN"),
                                (other, ("NAME_UNKNOWN", "MANIFEST_UNKNOWN"))):
                what = "GET invalid tag %s in %s" % (bad[:8], name)
                self.err(c.get_manifest(name, bad), 404, codes, what, code_strict=True)
                self.err(c.get_manifest(name, bad, "HEAD"), 404, codes, "HEAD" + what[3:],
                         head=True)

    # -- end-8a/8b, tags -----------------------------------------------------------------

    TAGS = ["v1.9", "latest", "0.1", "b-2", "v1.10", "a", "9", "b", "v1.2", "b.1", "b_1"]

    def tag_repo(self):
        c = self.c
        repo = h.unique_repo("tags")
        img = h.make_image(layers=1)
        self.push_blobs(repo, img)
        for tag in self.TAGS:
            r = c.put_manifest(repo, tag, img.bytes, img.media_type)
            self.t.require(r.status == 201, "tag %s: %s" % (tag, r.describe()))
        return repo

    def tags_list(self):
        c, t = self.c, self.t
        repo = self.tag_repo()
        r = c.get("/v2/%s/tags/list" % repo)
        t.eq(r.status, 200, "tags/list status")
        t.eq(media_type(r.headers.get("Content-Type")), "application/json", "tags Content-Type")
        doc = r.json()
        t.eq(doc.get("name"), repo, "tags/list name")
        got = doc.get("tags") or []
        t.eq(sorted(got), sorted(self.TAGS), "tags/list set")
        t.eq(got, sorted(self.TAGS), "tags/list order", strict=True)
        self.err(c.get("/v2/%s/tags/list" % h.unique_repo("nosuch")), 404, "NAME_UNKNOWN",
                 "tags/list of an unknown repository")

    def tags_pagination(self):
        c, t = self.c, self.t
        repo = self.tag_repo()
        want = sorted(self.TAGS)
        path = "/v2/%s/tags/list" % repo
        r = c.get(path + "?n=3")
        t.eq(r.status, 200, "n=3 status")
        t.eq(r.json().get("tags"), want[:3], "n=3 page")
        target = link_target(r)
        if t.check(target is not None, "n=3: no Link rel=\"next\" (%r)" % r.headers.get("Link")):
            lp, q = target
            t.eq(lp, path, "Link path")
            t.eq(q.get("n"), "3", "Link n")
            t.eq(q.get("last"), want[2], "Link last")
            raw = r.headers.get("Link")
            t.check(raw.startswith("<") and 'rel="next"' in raw, "Link syntax %r" % raw)
        # Following Link headers yields every tag once, in order.
        seen, nxt, pages = [], path + "?n=4", 0
        while nxt and pages < 20:
            r = c.get(nxt)
            if not t.check(r.status == 200, "page %s: %s" % (nxt, r.describe())):
                break
            page = r.json().get("tags") or []
            t.check(len(page) <= 4, "page of %d tags for n=4" % len(page))
            seen += page
            nxt, pages = h.next_link(r), pages + 1
        t.eq(seen, want, "tags collected through Link")
        r = c.get(path + "?n=2&last=" + want[4])
        t.eq(r.json().get("tags"), want[5:7], "n=2&last=%s" % want[4])
        r = c.get(path + "?last=" + want[-3])
        t.eq(r.json().get("tags"), want[-2:], "last=%s without n" % want[-3])
        r = c.get(path + "?n=0")
        t.eq(r.status, 200, "n=0 status")
        t.eq(r.json().get("tags") or [], [], "n=0 tags")
        t.check("Link" not in r.headers, "n=0 answered with a Link header")
        r = c.get(path + "?n=%d" % len(want))
        t.eq(r.json().get("tags"), want, "n=all")
        r = c.get(path + "?n=1000")
        t.eq(r.json().get("tags"), want, "n larger than the list")
        t.check("Link" not in r.headers, "last page answered with a Link header")

    def tags_pagination_invalid(self):
        c = self.c
        repo = self.tag_repo()
        for n in ("-1", "abc", "1.5", "0x10"):
            r = c.get("/v2/%s/tags/list?n=%s" % (repo, n))
            self.err(r, 400, "PAGINATION_NUMBER_INVALID", "tags/list n=%s" % n)

    # -- _catalog ------------------------------------------------------------------------

    def catalog(self):
        c, t = self.c, self.t
        prefix = "cat%s" % os.urandom(2).hex()
        mine = ["%s/a" % prefix, "%s/b" % prefix, "%s/c/d" % prefix]
        for repo in mine:
            c.push_blob(repo, b"x")
            h.make_image(layers=0).push(c, repo, "v1")
        r = c.get("/v2/_catalog")
        t.eq(r.status, 200, "_catalog status")
        t.eq(media_type(r.headers.get("Content-Type")), "application/json",
             "_catalog Content-Type")
        full = r.json().get("repositories") or []
        for repo in mine:
            t.check(repo in full, "_catalog lacks %s" % repo)
        t.eq(full, sorted(full), "_catalog order")
        seen, nxt, pages = [], "/v2/_catalog?n=2", 0
        while nxt and pages < 500:
            r = c.get(nxt)
            if not t.check(r.status == 200, "_catalog page %s: %s" % (nxt, r.describe())):
                break
            page = r.json().get("repositories") or []
            t.check(len(page) <= 2, "_catalog page of %d for n=2" % len(page))
            target = link_target(r)
            if target:
                t.eq(target[0], "/v2/_catalog", "_catalog Link path")
                t.eq(target[1].get("n"), "2", "_catalog Link n")
                t.eq(target[1].get("last"), page[-1] if page else None, "_catalog Link last")
            seen += page
            nxt, pages = h.next_link(r), pages + 1
        t.eq(seen, full, "_catalog collected through Link")
        r = c.get("/v2/_catalog?n=1&last=%s" % mine[0])
        t.eq(r.json().get("repositories"), [mine[1]], "_catalog n=1&last=%s" % mine[0])
        for n in ("-1", "abc"):
            self.err(c.get("/v2/_catalog?n=%s" % n), 400, "PAGINATION_NUMBER_INVALID",
                     "_catalog n=%s" % n, strict=True)

    # -- end-12a/12b, referrers ------------------------------------------------------------

    def referrers_index(self, repo, digest, query="", what="referrers"):
        r = self.c.get("/v2/%s/referrers/%s%s" % (repo, digest, query))
        t = self.t
        t.require(r.status == 200, "%s: status %d (%s)" % (what, r.status, r.describe()))
        t.eq(media_type(r.headers.get("Content-Type")), h.OCI_INDEX, what + " Content-Type")
        doc = r.json()
        t.eq(doc.get("schemaVersion"), 2, what + " schemaVersion")
        t.eq(doc.get("mediaType"), h.OCI_INDEX, what + " mediaType")
        t.check(isinstance(doc.get("manifests"), list), what + ": manifests is not a list")
        return r, {m.get("digest"): m for m in doc.get("manifests") or []}

    def referrers(self):
        c, t = self.c, self.t
        repo = h.unique_repo("ref")
        subject = h.make_image(layers=1)
        subject.push(c, repo, "v1")
        sbom_t, sig_t = "application/vnd.example.sbom.v1", "application/vnd.example.signature.v1"
        sbom = h.make_image(layers=1, layer_size=64, artifact_type=sbom_t, subject=subject,
                            annotations={"org.example.kind": "sbom"})
        sig = h.make_image(layers=1, layer_size=64, artifact_type=sig_t, subject=subject,
                           annotations={"org.example.kind": "sig", "org.example.n": "2"})
        for m in (sbom, sig):
            r = m.push(c, repo)
            t.eq(r.headers.get("OCI-Subject"), subject.digest, "OCI-Subject on PUT")
        # No artifactType: the config media type stands in for it.
        plain = h.make_image(layers=1, config=b'{"x":1}',
                             config_media_type="application/vnd.example.config.v1+json",
                             subject=subject)
        plain.push(c, repo, "plain")
        # An index can refer too.
        idx = h.make_index([h.make_image(layers=1)], artifact_type="application/vnd.example.idx",
                           subject=subject, annotations={"org.example.kind": "idx"})
        idx.push(c, repo)
        # A referrer in another repository is not listed here.
        other = h.unique_repo("ref")
        h.make_image(layers=1, artifact_type=sbom_t, subject=subject).push(c, other)

        r, got = self.referrers_index(repo, subject.digest)
        t.eq(sorted(got), sorted([sbom.digest, sig.digest, plain.digest, idx.digest]),
             "referrers listed")
        for m, at, ann in ((sbom, sbom_t, {"org.example.kind": "sbom"}),
                           (sig, sig_t, {"org.example.kind": "sig", "org.example.n": "2"}),
                           (plain, "application/vnd.example.config.v1+json", None),
                           (idx, "application/vnd.example.idx", {"org.example.kind": "idx"})):
            d = got.get(m.digest)
            if not t.check(d is not None, "referrer %s missing" % m.digest[:19]):
                continue
            t.eq(d.get("mediaType"), m.media_type, "referrer mediaType")
            t.eq(d.get("size"), m.size, "referrer size")
            t.eq(d.get("artifactType"), at, "referrer artifactType")
            t.eq(d.get("annotations") or None, ann, "referrer annotations")

        q = "?artifactType=" + urllib.parse.quote(sbom_t, safe="")
        r, got = self.referrers_index(repo, subject.digest, q, "filtered referrers")
        t.eq(sorted(got), [sbom.digest], "filtered referrers")
        t.eq(r.headers.get("OCI-Filters-Applied"), "artifactType", "OCI-Filters-Applied")
        r, got = self.referrers_index(repo, subject.digest, "?artifactType=application%2Fnone",
                                      "filter matching nothing")
        t.eq(got, {}, "filter matching nothing")

        # Deleting a referrer removes it from the list.
        r = c.delete("/v2/%s/manifests/%s" % (repo, sig.digest))
        t.eq(r.status, 202, "DELETE referrer")
        r, got = self.referrers_index(repo, subject.digest, what="referrers after delete")
        t.check(sig.digest not in got, "deleted referrer still listed")
        t.check(sbom.digest in got, "other referrer gone after delete")

    def referrers_edge_cases(self):
        c, t = self.c, self.t
        repo = h.unique_repo("ref")
        h.make_image(layers=1).push(c, repo, "v1")
        unknown = h.sha256_digest(os.urandom(8))
        r, got = self.referrers_index(repo, unknown, what="unknown subject")
        t.eq(got, {}, "referrers of an unknown subject")
        # A subject may be pushed after its referrer.
        later = h.make_image(layers=1)
        art = h.make_image(layers=1, artifact_type="application/vnd.example.early",
                           subject=later)
        r = art.push(c, repo)
        t.eq(r.status, 201, "referrer before its subject")
        t.eq(r.headers.get("OCI-Subject"), later.digest, "OCI-Subject before the subject")
        r, got = self.referrers_index(repo, later.digest, what="subject not yet pushed")
        t.eq(list(got), [art.digest], "referrers of a subject not yet pushed")
        later.push(c, repo, "later")
        r, got = self.referrers_index(repo, later.digest, what="subject pushed later")
        t.eq(list(got), [art.digest], "referrers once the subject exists")
        r = c.get("/v2/%s/referrers/sha256:abc" % repo)
        self.status(r, 400, "referrers of a malformed digest")
        # Never 404 (a client would fall back to the tag schema), not even for a repository
        # that does not exist: an empty index, exactly.
        for name in (repo, h.unique_repo("nosuch")):
            what = "referrers in %s repository" % ("an existing" if name == repo else "an unknown")
            r, got = self.referrers_index(name, unknown, what=what)
            t.eq(r.json(), {"schemaVersion": 2, "mediaType": h.OCI_INDEX, "manifests": []}, what)
            r, got = self.referrers_index(name, unknown, "?artifactType=application%2Fx",
                                          what=what + " filtered")
            t.eq(got, {}, what + " filtered")

    # -- end-9/10, deletes -----------------------------------------------------------------

    def tag_delete(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        img = h.make_image(layers=1)
        img.push(c, repo, "keep")
        r = c.put_manifest(repo, "drop", img.bytes, img.media_type)
        t.eq(r.status, 201, "second tag")
        r = c.delete("/v2/%s/manifests/drop" % repo)
        t.eq(r.status, 202, "DELETE tag status")
        self.err(c.get_manifest(repo, "drop"), 404, "MANIFEST_UNKNOWN", "GET deleted tag")
        t.eq(c.tags(repo), ["keep"], "tags after tag delete")
        self.manifest_ok(repo, img.digest, img, "manifest after its tag was deleted")
        self.manifest_ok(repo, "keep", img, "other tag after tag delete")
        self.err(c.delete("/v2/%s/manifests/drop" % repo), 404, "MANIFEST_UNKNOWN",
                 "DELETE deleted tag")

    def manifest_delete(self):
        c, t = self.c, self.t
        repo = h.unique_repo("api")
        img = h.make_image(layers=1)
        img.push(c, repo, "a")
        c.put_manifest(repo, "b", img.bytes, img.media_type)
        keep = h.make_image(layers=1)
        keep.push(c, repo, "c")
        r = c.delete("/v2/%s/manifests/%s" % (repo, img.digest))
        t.eq(r.status, 202, "DELETE manifest status")
        self.err(c.get_manifest(repo, img.digest), 404, "MANIFEST_UNKNOWN",
                 "GET deleted manifest")
        for tag in ("a", "b"):
            self.err(c.get_manifest(repo, tag), 404, "MANIFEST_UNKNOWN",
                     "GET tag %s of a deleted manifest" % tag)
        t.eq(c.tags(repo), ["c"], "tags after manifest delete")
        self.manifest_ok(repo, "c", keep, "unrelated manifest after delete")
        for digest, data in img.blobs:
            self.blob_is(repo, digest, data, "blob of a deleted manifest")
        self.err(c.delete("/v2/%s/manifests/%s" % (repo, img.digest)), 404, "MANIFEST_UNKNOWN",
                 "DELETE manifest again")
        r = c.delete("/v2/%s/manifests/nosuchtag" % repo)
        self.err(r, 404, "MANIFEST_UNKNOWN", "DELETE unknown tag", strict=True)

    # -- HEAD, keep-alive ----------------------------------------------------------------

    def head_everywhere(self):
        c = self.c
        repo = h.unique_repo("api")
        img = h.make_image(layers=1)
        img.push(c, repo, "v1")
        r, loc = self.start_upload(repo)
        r = self.patch(loc, b"0123456789", 0)
        loc = self.loc(r, "PATCH")
        unknown = h.sha256_digest(b"unknown")
        paths = [("/v2/", None), ("/v2/%s/blobs/%s" % (repo, img.blobs[1][0]), None),
                 ("/v2/%s/blobs/%s" % (repo, unknown), None),
                 ("/v2/%s/manifests/v1" % repo, {"Accept": h.ACCEPT_MANIFESTS}),
                 ("/v2/%s/manifests/%s" % (repo, img.digest), {"Accept": h.ACCEPT_MANIFESTS}),
                 ("/v2/%s/manifests/nosuch" % repo, {"Accept": h.ACCEPT_MANIFESTS}),
                 (loc, None)]
        for path, hdrs in paths:
            g = c.get(path, hdrs)
            hd = c.head(path, hdrs)
            self.same_as_get(g, hd, "HEAD %s" % path.split("?")[0])

    def keep_alive(self):
        t = self.t
        c = h.Client(self.reg.url)
        try:
            repo = h.unique_repo("api")
            img = h.make_image(layers=2)
            img.push(c, repo, "v1")
            c.get("/v2/")
            c.head("/v2/%s/blobs/%s" % (repo, img.blobs[1][0]))
            c.get("/v2/%s/blobs/%s" % (repo, h.sha256_digest(b"none")))  # 404
            c.get_manifest(repo, "v1")
            c.get_manifest(repo, "nosuch", "HEAD")  # 404 without a body
            c.get("/v2/%s/tags/list" % repo)
            c.put_manifest(repo, "bad", b"{not json", h.OCI_MANIFEST)  # 400
            r = c.request("POST", "/v2/%s/blobs/uploads/" % repo, {"Content-Length": "0"})
            loc = c.location_path(r.headers.get("Location", ""))
            r = c.request("PATCH", loc, dict(OCTET, **{"Content-Range": "0-2"}), b"abc")
            c.delete(c.location_path(r.headers.get("Location", loc)))
            r = c.get("/v2/")
            t.eq(r.status, 200, "last request on the connection")
            t.eq(r.version, 11, "HTTP version of the answer")
            t.check("close" not in (r.headers.get("Connection") or "").lower(),
                    "answer carries Connection: close")
            t.eq(c.connects, 1, "TCP connections for 14 requests")
        finally:
            c.close()

    def run(self):
        t = self.t
        tests = [
            (self.base, False),
            (self.upload_single_post, False),
            (self.upload_post_put, False),
            (self.upload_chunked, False),
            (self.upload_chunk_out_of_order, True),
            (self.upload_cancel, False),
            (self.upload_unknown_session, False),
            (self.upload_digest_mismatch, False),
            (self.mount, False),
            (self.blob_get_head, False),
            (self.blob_range, False),
            (self.blob_unknown, False),
            (self.blob_delete, False),
            (self.manifest_put_get, False),
            (self.manifest_put_with_tags, True),
            (self.manifest_types, False),
            (self.manifest_blob_unknown, False),
            (self.manifest_foreign_layers, False),
            (self.manifest_refused, False),
            (self.manifest_size_limit, False),
            (self.manifest_unknown, False),
            (self.tags_list, False),
            (self.tags_pagination, True),
            (self.tags_pagination_invalid, True),
            (self.catalog, False),
            (self.referrers, True),
            (self.referrers_edge_cases, True),
            (self.tag_delete, True),
            (self.manifest_delete, False),
            (self.sha512_blobs, True),
            (self.sha512_manifests, True),
            (self.sha512_referrers, True),
            (self.digest_algorithms_refused, True),
            (self.head_everywhere, False),
            (self.keep_alive, False),
        ]
        for fn, strict in tests:
            t.run(fn.__name__, self.reg.guard(t, fn), strict=strict)
        self.c.close()


def clean_shutdown(results, reg, code):
    reports = reg.sanitizer_reports()
    results.check(not reports, "sanitizer reports in %s: %s" % (reg.log_path, " | ".join(reports)))
    results.check(code == 0, "exit status %s after SIGTERM" % code)


def main(results):
    reg = h.registry_for(results.target)
    try:
        reg.start()
        Api(results, reg).run()
        code = reg.stop()
        # A clean exit also means no sanitizer report in a PT_SANITIZE build.
        results.run("clean_shutdown", clean_shutdown, results, reg, code, strict=True)
    finally:
        reg.stop()
        reg.cleanup()
