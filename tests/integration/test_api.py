"""test_api.py - the OCI distribution-spec v1.1 HTTP API, endpoint by endpoint: the base
endpoint, uploads and blobs.

Covers end-1, end-2, end-4a/4b/5/6/13, end-10 and end-11 plus the Docker extras (DELETE of an
upload session, Docker-Upload-UUID), blobs addressed by sha512, HEAD of every kind of path and
keep-alive, for success and error answers: status, the headers a client relies on
(Docker-Content-Digest, Docker-Upload-UUID, Location, Range, Content-Length, Content-Type,
Docker-Distribution-API-Version) and the JSON error body {"errors":[{"code":..,"message":..}]}.
Manifests, tags, the catalog and referrers are test_api_manifests.py; the checks both share,
and what strict means there, are tests/lib/api_checks.py.
"""

import hashlib
import io
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from api_checks import MIB, OCTET, ApiChecks, run_module, sha512_digest  # noqa: E402
import harness as h  # noqa: E402


class Api(ApiChecks):
    """The base endpoint, uploads and blobs."""

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

    def tests(self):
        return [
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
            (self.sha512_blobs, True),
            (self.digest_algorithms_refused, True),
            (self.head_everywhere, False),
            (self.keep_alive, False),
        ]


def main(results):
    run_module(results, Api)
