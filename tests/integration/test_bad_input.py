"""test_bad_input.py - malformed and hostile requests get the right refusal and change nothing.

Every request here is wrong in one way: a malformed repository name, digest or tag, a broken
manifest, a bad Content-Range, a body over a limit, a path-traversal attempt, a bad pagination
number, a method a route does not have, or a malformed HTTP message. Each must get its status
and OCI error code (NAME_INVALID, DIGEST_INVALID, TAG_INVALID, MANIFEST_INVALID, RANGE_INVALID,
PAGINATION_NUMBER_INVALID, SIZE_INVALID, UNSUPPORTED, ...). At the end the catalog, every tag
list, every tag's digest and every known blob are as they were before, the process is still
serving, and no file was created outside the data directory (traversal attempts carry a
unique marker name that is searched for afterwards).

Each case states what the reference registry (Distribution 2.8) must do: "exact" (the same
answer as Portolan), "reject" (any non-2xx answer) or "any" (Distribution gets it wrong, so
only Portolan is held to it).
"""

import json
import os
import shutil
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402

OCTET = {"Content-Type": "application/octet-stream"}
MIB = 1024 * 1024


def q(s):
    return urllib.parse.quote(s, safe="")


class BadInput:
    def __init__(self, results, reg, root):
        self.t = results
        self.reg = reg
        self.root = root
        self.c = h.Client(reg.url, timeout=15)
        self.mark = "ptescape%s" % os.urandom(4).hex()
        self.repo = "good/repo"
        self.img = None
        self.blobs = []
        # (repo, tag) pairs that a wrongly accepted "any" case created on a target that is
        # not held to the strict checks; the final comparison leaves them out.
        self.tolerated = set()
        self.long_tag = None

    # -- helpers -----------------------------------------------------------------------

    def expect(self, what, r, status, codes=None, ref="reject"):
        """status: an int or a tuple; codes: an OCI code or a tuple of acceptable ones, or
        None to accept any error body. ref: what Distribution 2.8 has to do (module doc)."""
        t = self.t
        statuses = (status,) if isinstance(status, int) else tuple(status)
        exact_strict = ref != "exact"
        t.check(r.status in statuses, "%s: status %d, want %s (%s)"
                % (what, r.status, "/".join(map(str, statuses)), r.describe()),
                strict=exact_strict)
        if r.status >= 400 and codes is not None:
            codes = (codes,) if isinstance(codes, str) else tuple(codes)
            got = r.error_codes()
            t.check(any(c in codes for c in got), "%s: error codes %s, want %s (%s)"
                    % (what, got, "|".join(codes), r.describe()), strict=exact_strict)
        if ref == "reject":
            t.check(not 200 <= r.status < 300, "%s: accepted with %d" % (what, r.status))
        t.check(r.status < 500, "%s: server error %d (%s)" % (what, r.status, r.describe()),
                strict=True)

    def tolerate(self, r, ref, tag, repo=None):
        if ref == "any" and not self.t.strict and 200 <= r.status < 300:
            self.tolerated.add((repo or self.repo, tag))

    def raw(self, data, timeout=2.0, half_close=False):
        out = h.raw_exchange(self.reg.url, data, timeout=timeout, half_close=half_close)
        return h.raw_status(out), out

    def raw_refused(self, what, data, strict=False, allow_2xx=False, half_close=False):
        """A malformed HTTP message gets a 4xx/5xx (not a 2xx) or the connection closed."""
        status, out = self.raw(data, half_close=half_close)
        if not allow_2xx:
            self.t.check(status is None or status >= 400, "%s: answered %r"
                         % (what, out[:80]), strict=strict)
        self.alive(what)
        return status

    def alive(self, what):
        t = self.t
        t.require(self.reg.running(), "process died after: %s; %s"
                  % (what, self.reg.death_note()))
        r = h.Client(self.reg.url, timeout=10)
        try:
            st = r.get("/v2/").status
        finally:
            r.close()
        t.require(st == 200, "GET /v2/ answered %d after: %s" % (st, what))

    def new_session(self):
        r = self.c.request("POST", "/v2/%s/blobs/uploads/" % self.repo, {"Content-Length": "0"})
        self.t.require(r.status == 202, "POST upload: %s" % r.describe())
        return self.c.location_path(r.headers["Location"])

    def snapshot(self):
        c = self.c
        state = {}
        for repo in sorted(c.catalog()):
            tags = {}
            for tag in sorted(c.tags(repo)):
                r = c.get_manifest(repo, tag, "HEAD")
                tags[tag] = (r.status, r.headers.get("Docker-Content-Digest"))
            state[repo] = tags
        for d in self.blobs:
            state["blob " + d] = c.head("/v2/%s/blobs/%s" % (self.repo, d)).status
        return state

    def tree(self, exclude):
        """Every path under root except those under exclude."""
        out = set()
        for dirpath, dirnames, filenames in os.walk(self.root):
            if dirpath == exclude or dirpath.startswith(exclude + os.sep):
                continue
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                if p != exclude:
                    out.add(p)
        return out

    # -- setup ---------------------------------------------------------------------------

    def seed(self):
        c = self.c
        self.img = h.make_image(layers=2)
        self.img.push(c, self.repo, "v1")
        other = h.make_image(layers=1)
        other.push(c, "good/other", "latest")
        self.blobs = [d for d, _ in self.img.blobs] + [d for d, _ in other.blobs]
        self.before = self.snapshot()
        self.outside_before = self.tree(self.reg.data_dir)

    # -- cases ---------------------------------------------------------------------------

    def names(self):
        c = self.c
        img = self.img
        bad = ["Upper/case", "a/../b", "a//b", "a/", "a" * 256, "%2e%2e%2fetc", "a/%2e%2e/b",
               "-a", "a-", "a..b", "_a", "a/.b", "a___b", "a%20b"]
        for name in bad:
            label = "name %r" % (name if len(name) < 40 else name[:10] + "...(%d)" % len(name))
            self.expect(label + " tags/list", c.get("/v2/%s/tags/list" % name),
                        400, "NAME_INVALID")
            self.expect(label + " GET manifest", c.get_manifest(name, "v1"), 400, "NAME_INVALID")
            self.expect(label + " PUT manifest", c.put_manifest(name, "v1", img.bytes,
                                                                img.media_type),
                        400, "NAME_INVALID")
            self.expect(label + " GET blob", c.get("/v2/%s/blobs/%s" % (name, self.blobs[0])),
                        400, "NAME_INVALID")
            # Distribution opens upload sessions for some of these names.
            r = c.request("POST", "/v2/%s/blobs/uploads/" % name, {"Content-Length": "0"})
            self.expect(label + " POST upload", r, 400, "NAME_INVALID", ref="any")
        # 255 characters is the longest name; it is valid (an unknown repository).
        r = c.get("/v2/%s/tags/list" % ("a" * 255))
        self.expect("255-character name", r, 404, "NAME_UNKNOWN", ref="exact")
        # A source repository name in a mount is validated too.
        r = c.request("POST", "/v2/good/mnt/blobs/uploads/?mount=%s&from=%s"
                      % (self.blobs[0], q("../good/repo")), {"Content-Length": "0"})
        self.expect("mount from '../good/repo'", r, (202, 400), "NAME_INVALID", ref="any")
        self.t.check(r.status != 201, "mount from '../good/repo' mounted the blob")

    def digests(self):
        c = self.c
        repo = self.repo
        data = b"some content"
        bad = ["sha256:zz", "sha256:" + "a" * 63, "sha256:" + "a" * 65, "sha256:" + "A" * 64,
               "md5:" + "a" * 32, "sha256:", "sha512:" + "a" * 64, "sha256:" + "g" * 64,
               ":" + "a" * 64, "SHA256:" + "a" * 64, "sha256:" + "a" * 63 + "%00"]
        for d in bad:
            label = "digest %r" % (d if len(d) < 24 else d[:14] + "...")
            self.expect(label + " GET blob", c.get("/v2/%s/blobs/%s" % (repo, d)),
                        400, "DIGEST_INVALID")
            self.expect(label + " HEAD blob", c.head("/v2/%s/blobs/%s" % (repo, d)), 400)
            self.expect(label + " DELETE blob", c.delete("/v2/%s/blobs/%s" % (repo, d)),
                        400, "DIGEST_INVALID")
            self.expect(label + " GET manifest", c.get_manifest(repo, d), 400, "DIGEST_INVALID")
            self.expect(label + " DELETE manifest", c.delete("/v2/%s/manifests/%s" % (repo, d)),
                        400, "DIGEST_INVALID")
            self.expect(label + " single POST", c.request(
                "POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), OCTET, data),
                400, "DIGEST_INVALID", ref="any")
            loc = self.new_session()
            self.expect(label + " closing PUT", c.request(
                "PUT", h.with_query(loc, digest="X").replace("digest=X", "digest=" + d),
                OCTET, data), 400, "DIGEST_INVALID", ref="any")
            r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=good/other" % (repo, d),
                          {"Content-Length": "0"})
            self.expect(label + " mount", r, 400, "DIGEST_INVALID", ref="any")
        # A manifest whose descriptor carries a malformed digest.
        obj = json.loads(self.img.bytes)
        obj["layers"][0]["digest"] = "sha256:zz"
        r = c.put_manifest(repo, "baddigest", obj, h.OCI_MANIFEST)
        self.expect("layer descriptor with a malformed digest", r, 400,
                    ("MANIFEST_INVALID", "DIGEST_INVALID"))

    def tags(self):
        c = self.c
        img = self.img
        for tag in ["a" * 129, "a" * 200, ".a", "-a", "a%20b", "%2e%2e", "a%2fb", "t\u00e9".encode(
                "utf-8").decode("latin-1"), "a%00b"]:
            label = "tag %r" % (tag if len(tag) < 24 else "a*%d" % len(tag))
            path = "/v2/%s/manifests/%s" % (self.repo, urllib.parse.quote(tag, safe="%"))
            r = c.request("PUT", path, {"Content-Type": img.media_type}, img.bytes)
            self.expect(label + " PUT", r, 400, "TAG_INVALID")
            # A tag that can never exist names no manifest: reads and deletes get the 404 of an
            # unknown manifest (Distribution answers 404 too), only a push is told it is invalid.
            self.expect(label + " GET", c.request("GET", path), 404, "MANIFEST_UNKNOWN")
            self.expect(label + " HEAD", c.request("HEAD", path), 404)
            self.expect(label + " DELETE", c.request("DELETE", path), 404, "MANIFEST_UNKNOWN")
        # A '/' in the tag cannot be told from a longer path: a 404 is right too.
        r = c.put_manifest(self.repo, "a/b", img.bytes, img.media_type)
        self.expect("tag 'a/b' PUT", r, (400, 404), ("TAG_INVALID", "NOT_FOUND", "NAME_UNKNOWN",
                                                     "NAME_INVALID"))
        # ':' is not in the tag grammar, so the reference is read as a malformed digest.
        r = c.put_manifest(self.repo, "a:b", img.bytes, img.media_type)
        self.expect("tag 'a:b' PUT", r, 400, ("TAG_INVALID", "DIGEST_INVALID"), ref="any")
        self.tolerate(r, "any", "a:b")
        # Bad tags given with ?tag= on a push by digest.
        for tag in (".bad", "a" * 129):
            r = c.put_manifest(self.repo, "%s?tag=ok1&tag=%s" % (self.img.digest, tag),
                               img.bytes, img.media_type)
            self.expect("?tag=%s" % tag[:12], r, 400, "TAG_INVALID", ref="any")
            self.tolerate(r, "any", "ok1")
            self.tolerate(r, "any", tag)
        # The longest valid tag is accepted (and removed again at the end of the module).
        r = c.put_manifest(self.repo, "a" * 128, img.bytes, img.media_type)
        self.t.eq(r.status, 201, "128-character tag")
        self.long_tag = "a" * 128

    def bad_json(self):
        c = self.c
        good = json.loads(self.img.bytes)

        def variant(**changes):
            obj = json.loads(self.img.bytes)
            for k, v in changes.items():
                if v is None:
                    obj.pop(k, None)
                else:
                    obj[k] = v
            return h.canonical_json(obj)

        layer = dict(good["layers"][0])
        cases = [
            ("not JSON", b"{not json", "exact"),
            ("array", b"[]", "exact"),
            ("null", b"null", "reject"),
            ("string", b'"x"', "exact"),
            ("empty object", b"{}", "reject"),
            ("empty body", b"", "reject"),
            ("schemaVersion only", b'{"schemaVersion":2}', "reject"),
            ("schemaVersion string", variant(schemaVersion="2"), "reject"),
            ("no config", variant(config=None), "reject"),
            ("layers not a list", variant(layers="x"), "exact"),
            ("layer not an object", variant(layers=[1]), "reject"),
            ("negative size", variant(layers=[dict(layer, size=-1)]), "any"),
            ("size not a number", variant(layers=[dict(layer, size="12")]), "reject"),
            ("huge size", variant(layers=[dict(layer, size=1 << 70)]), "any"),
            ("trailing garbage", self.img.bytes + b"xyz", "exact"),
            ("two documents", self.img.bytes + self.img.bytes, "exact"),
            ("invalid UTF-8", b"\xff\xfe" + self.img.bytes, "exact"),
            ("deep nesting", b"[" * 100000 + b"]" * 100000, "exact"),
            ("deep object nesting", b'{"a":' * 50000 + b"1" + b"}" * 50000, "reject"),
            ("truncated", self.img.bytes[:-1], "exact"),
        ]
        for what, body, ref in cases:
            r = c.put_manifest(self.repo, "badjson", body, h.OCI_MANIFEST)
            self.expect("manifest %s" % what, r, 400, "MANIFEST_INVALID", ref=ref)
            self.tolerate(r, ref, "badjson")
        # schemaVersion 1 under an OCI type: invalid, or read as an unsupported schema 1.
        r = c.put_manifest(self.repo, "badjson", variant(schemaVersion=1), h.OCI_MANIFEST)
        self.expect("manifest schemaVersion 1", r, (400, 415), ("MANIFEST_INVALID", "UNSUPPORTED"))
        idx = h.canonical_json({"schemaVersion": 2, "mediaType": h.OCI_INDEX, "manifests": "x"})
        r = c.put_manifest(self.repo, "badjson", idx, h.OCI_INDEX)
        self.expect("index with manifests not a list", r, 400, "MANIFEST_INVALID", ref="exact")
        # Unknown manifest media type.
        r = c.put_manifest(self.repo, "badjson", self.img.bytes, "text/plain")
        self.expect("manifest as text/plain", r, (400, 415), ("MANIFEST_INVALID", "UNSUPPORTED"),
                    ref="exact")

    def content_range(self):
        c, t = self.c, self.t
        data = b"0123456789"
        for rng, body in [("abc", data), ("5-2", data), ("-1-8", data), ("0-", data),
                          ("0-99999999999999999999999", data), ("1-10", data),
                          ("0-19", data), ("0-4", data), ("0x0-0x9", data), ("9-0", data),
                          ("0-9-9", data), ("0 - 9", data)]:
            loc = self.new_session()
            r = c.request("PATCH", loc, dict(OCTET, **{"Content-Range": rng}), body)
            self.expect("PATCH Content-Range %r with %d bytes" % (rng, len(body)), r, (400, 416),
                        ("RANGE_INVALID", "SIZE_INVALID", "BLOB_UPLOAD_INVALID"), ref="any")
            # Nothing was written: the session still starts at 0.
            r = c.request("PATCH", loc, dict(OCTET, **{"Content-Range": "0-9"}), data)
            t.check(r.status == 202 and r.headers.get("Range") == "0-9",
                    "PATCH 0-9 after a refused %r: %s Range %r"
                    % (rng, r.describe(), r.headers.get("Range")), strict=True)
            c.delete(c.location_path(r.headers.get("Location", loc)))

    def truncated_body(self):
        c, t = self.c, self.t
        loc = self.new_session()
        head = ("PATCH %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                "Content-Range: 0-999\r\nContent-Length: 1000\r\n\r\n" % loc).encode()
        self.raw(head + b"x" * 10, half_close=True)
        self.alive("truncated PATCH body")
        # The session survives; it may or may not keep the bytes that did arrive.
        r = c.get(loc)
        t.check(r.status == 204 and r.headers.get("Range") in ("0-0", "0-9", None),
                "upload status after a truncated PATCH: %s Range %r"
                % (r.describe(), r.headers.get("Range")), strict=True)
        d = h.sha256_digest(b"x" * 1000)
        self.blobs += [d, h.sha256_digest(b"x" * 10)]
        r = c.request("PUT", h.with_query(loc, digest=d), {"Content-Length": "0"}, b"")
        self.expect("closing PUT after a truncated PATCH", r, 400,
                    ("DIGEST_INVALID", "SIZE_INVALID", "BLOB_UPLOAD_INVALID"))
        # A manifest PUT cut short.
        head = ("PUT /v2/%s/manifests/cut HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                "Content-Length: %d\r\n\r\n" % (self.repo, h.OCI_MANIFEST, len(self.img.bytes)))
        self.raw(head.encode() + self.img.bytes[:50], half_close=True)
        self.alive("truncated manifest body")

    def size_limits(self):
        c = self.c
        big = b"{" + b" " * (5 * MIB) + b"}"
        r = c.put_manifest(self.repo, "huge", big, h.OCI_MANIFEST)
        self.expect("5 MiB manifest", r, 413, "SIZE_INVALID")
        # A declared length far beyond any limit is refused without waiting for the body.
        for what, path, ct in (
                ("manifest", "/v2/%s/manifests/huge" % self.repo, h.OCI_MANIFEST),
                ("upload", "/v2/%s/blobs/uploads/?digest=%s" % (self.repo, self.blobs[0]),
                 "application/octet-stream")):
            msg = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                   "Content-Length: 99999999999999\r\n\r\n" % (
                       "PUT" if what == "manifest" else "POST", path, ct)).encode()
            status, out = self.raw(msg + b"{", timeout=1.5)
            self.t.check(status == 413, "%s with Content-Length 99999999999999: %r"
                         % (what, out[:60]), strict=True)
            self.alive("huge Content-Length on " + what)
        # Long URL, long header, many headers: refused or served, never fatal; beyond a few
        # hundred KiB of request head, refused.
        self.raw_refused("100 KiB request target", b"GET /v2/" + b"a" * 100000
                         + b"/tags/list HTTP/1.1\r\nHost: x\r\n\r\n")
        self.raw_refused("100 KiB header", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: "
                         + b"a" * 100000 + b"\r\n\r\n", allow_2xx=True)
        self.raw_refused("2 MiB header", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: "
                         + b"a" * (2 * MIB) + b"\r\n\r\n")
        self.raw_refused("2000 headers", b"GET /v2/ HTTP/1.1\r\nHost: x\r\n"
                         + b"".join(b"X-H%d: v\r\n" % i for i in range(2000)) + b"\r\n",
                         strict=True)

    def pagination(self):
        c = self.c
        for path in ("/v2/%s/tags/list" % self.repo, "/v2/_catalog"):
            for n in ("abc", "-1", "1.5", "1e3", "%20", "0x10", "99999999999999999999999"):
                r = c.get("%s?n=%s" % (path, n))
                self.expect("%s n=%s" % (path, n), r, 400, "PAGINATION_NUMBER_INVALID",
                            ref="any")
            r = c.get(path + "?n=100000")
            self.t.check(r.status in (200, 400), "%s n=100000: %s" % (path, r.describe()))
            if r.status == 400:
                self.expect(path + " n=100000", r, 400, "PAGINATION_NUMBER_INVALID", ref="any")

    def traversal(self):
        c, t = self.c, self.t
        m = self.mark
        data = b"traversal payload"
        d = h.sha256_digest(data)
        reads = ["/v2/../../etc/passwd", "/v2/%2e%2e/%2e%2e/etc/passwd",
                 "/v2/..%2f..%2f..%2fetc%2fpasswd/tags/list",
                 "/v2/a/blobs/sha256:../../x", "/v2/%s/blobs/sha256:..%%2f..%%2f..%%2fetc%%2fpasswd"
                 % self.repo, "/v2/%s/blobs/sha256%%3a..%%2f..%%2f..%%2f..%%2fetc%%2fpasswd"
                 % self.repo, "/v2/%s/manifests/..%%2f..%%2f..%%2f..%%2fetc%%2fpasswd" % self.repo,
                 "/v2/%s/blobs/uploads/..%%2f..%%2f..%%2fetc%%2fpasswd" % self.repo,
                 "/v2/%s/blobs/uploads/../../../../etc/passwd" % self.repo,
                 "/v2/%s/referrers/sha256:..%%2f..%%2fetc%%2fpasswd" % self.repo]
        for path in reads:
            r = c.get(path)
            t.check(not 200 <= r.status < 300, "GET %s answered %d" % (path, r.status))
            t.check(b"root:" not in r.body, "GET %s served /etc/passwd" % path)
            t.check(r.status < 500, "GET %s: server error %d" % (path, r.status), strict=True)
            t.check(bool(r.error_codes()), "GET %s: no OCI error body (%s)"
                    % (path, r.describe()), strict=True)
        writes = [
            ("PUT", "/v2/%s/blobs/uploads/..%%2f..%%2f..%%2f%s?digest=%s" % (self.repo, m, d)),
            ("PUT", "/v2/%s/blobs/uploads/../../../%s?digest=%s" % (self.repo, m, d)),
            ("PATCH", "/v2/%s/blobs/uploads/%%2e%%2e%%2f%%2e%%2e%%2f%s" % (self.repo, m)),
            ("PATCH", "/v2/%s/blobs/uploads/..%%2f..%%2f..%%2f..%%2f..%%2f..%%2f..%%2f..%%2f"
                      "tmp%%2f%s" % (self.repo, m)),
            ("POST", "/v2/%%2e%%2e%%2f%s/blobs/uploads/?digest=%s" % (m, d)),
            ("POST", "/v2/..%%2f..%%2f..%%2f%s/blobs/uploads/?digest=%s" % (m, d)),
            ("PUT", "/v2/..%%2f..%%2f%s/manifests/v1" % m),
            ("PUT", "/v2/%s/manifests/..%%2f..%%2f..%%2f%s" % (self.repo, m)),
            ("PUT", "/v2/%s/manifests/%%2e%%2e%%2f%s" % (self.repo, m)),
            ("DELETE", "/v2/%s/blobs/sha256:..%%2f..%%2f..%%2f%s" % (self.repo, m)),
            ("DELETE", "/v2/%s/manifests/..%%2f..%%2f%s" % (self.repo, m)),
            ("DELETE", "/v2/%s/manifests/..%%2fv1" % self.repo),
            ("DELETE", "/v2/good/other/../repo/manifests/v1"),
            ("DELETE", "/v2/good/other/%%2e%%2e/repo/blobs/%s" % self.blobs[0]),
        ]
        for method, path in writes:
            if method == "PUT" and "/manifests/" in path:
                r = c.request(method, path, {"Content-Type": self.img.media_type}, self.img.bytes)
            elif method in ("PUT", "PATCH", "POST"):
                r = c.request(method, path, OCTET, data)
            else:
                r = c.request(method, path)
            t.check(not 200 <= r.status < 300, "%s %s answered %d" % (method, path, r.status))
            t.check(r.status < 500, "%s %s: server error %d" % (method, path, r.status),
                    strict=True)
            t.check(bool(r.error_codes()), "%s %s: no OCI error body (%s)"
                    % (method, path, r.describe()), strict=True)
        self.blobs.append(d)

    def methods(self):
        c = self.c
        repo = self.repo
        cases = [
            ("FOO", "/v2/%s/tags/list" % repo, "exact"),
            ("PROPFIND", "/v2/%s/manifests/v1" % repo, "exact"),
            ("TRACE", "/v2/%s/manifests/v1" % repo, "exact"),
            ("PATCH", "/v2/%s/manifests/v1" % repo, "exact"),
            ("POST", "/v2/%s/manifests/v1" % repo, "exact"),
            ("PUT", "/v2/%s/blobs/%s" % (repo, self.blobs[0]), "exact"),
            ("POST", "/v2/%s/blobs/%s" % (repo, self.blobs[0]), "exact"),
            ("DELETE", "/v2/%s/tags/list" % repo, "exact"),
            ("PUT", "/v2/_catalog", "exact"),
            ("DELETE", "/v2/_catalog", "exact"),
            ("FOO", "/v2/", "any"),
            ("DELETE", "/v2/", "any"),
            ("PUT", "/v2/%s/referrers/%s" % (repo, self.img.digest), "any"),
        ]
        for method, path, ref in cases:
            r = c.request(method, path, {"Content-Length": "0"} if method != "TRACE" else None)
            what = "%s %s" % (method, path)
            self.t.check(r.status == 405, "%s: status %d, want 405 (%s)"
                         % (what, r.status, r.describe()), strict=ref != "exact")
            self.t.check("UNSUPPORTED" in r.error_codes(), "%s: error codes %s, want UNSUPPORTED"
                         % (what, r.error_codes()), strict=True)

    def raw_http(self):
        repo = self.repo
        self.raw_refused("garbage request line", b"GARBAGE\r\n\r\n")
        self.raw_refused("binary noise", os.urandom(512) + b"\r\n\r\n")
        self.raw_refused("negative Content-Length",
                         b"PUT /v2/%s/manifests/neg HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: -1\r\n\r\n" % repo.encode())
        self.raw_refused("non-numeric Content-Length",
                         b"PUT /v2/%s/manifests/nan HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 1x\r\n\r\n" % repo.encode())
        # h2o 2.2.5 keeps only the first Content-Length and hides the header from handlers,
        # so a duplicate cannot be refused (RFC 9112 section 6.3 asks for 400): recorded as
        # a known limitation. What is checked: the node survives it and keeps serving.
        self.raw_refused("conflicting Content-Length",
                         b"POST /v2/%s/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde" % repo.encode(),
                         allow_2xx=True)
        self.raw_refused("bad chunked encoding",
                         b"PUT /v2/%s/manifests/chunk HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n"
                         % (repo.encode(), h.OCI_MANIFEST.encode()))
        self.raw_refused("HTTP/9.9", b"GET /v2/ HTTP/9.9\r\nHost: x\r\n\r\n")
        self.raw_refused("NUL in the path", b"GET /v2/a\x00b/tags/list HTTP/1.1\r\nHost: x\r\n\r\n")
        self.raw_refused("space in the path", b"GET /v2/a b/tags/list HTTP/1.1\r\nHost: x\r\n\r\n")
        self.raw_refused("bare LF line ends", b"GET /v2/ HTTP/1.1\nHost: x\n\n", allow_2xx=True)
        self.raw_refused("header without colon",
                         b"GET /v2/ HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n")
        self.raw_refused("Content-Length and Transfer-Encoding",
                         b"GET /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         b"Content-Length: 3\r\n\r\n0\r\n\r\n", allow_2xx=True)
        self.raw_refused("request cut in the headers", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-A: ",
                         allow_2xx=True, half_close=True)

    def unchanged(self):
        c, t = self.c, self.t
        # The one tag this module added on purpose goes away again first.
        if self.long_tag:
            r = c.delete("/v2/%s/manifests/%s" % (self.repo, self.long_tag))
            t.eq(r.status, 202, "DELETE of the 128-character tag", strict=True)
            if not t.strict:  # Distribution 2.8 cannot delete a tag
                self.tolerated.add((self.repo, self.long_tag))
        after = self.snapshot()
        before = self.before
        for repo, tag in self.tolerated:
            after.get(repo, {}).pop(tag, None)
        t.eq(sorted(k for k in after if not k.startswith("blob ")),
             sorted(k for k in before if not k.startswith("blob ")), "catalog after bad input")
        for key in sorted(set(before) | set(after)):
            if key.startswith("blob ") and key not in before:
                t.eq(after[key], 404, "%s (sent with bad input)" % key[:30])
            elif key in before and key in after:
                t.eq(after[key], before[key], "%s after bad input" % key)

    def no_escape(self):
        t = self.t
        data_dir = self.reg.data_dir
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            for n in dirnames + filenames:
                if self.mark in n:
                    found.append(os.path.join(dirpath, n))
        for d in {os.getcwd(), "/tmp", "/", "/etc", os.path.dirname(self.root),
                  os.path.dirname(os.path.dirname(self.root))}:
            try:
                found += [os.path.join(d, n) for n in os.listdir(d) if self.mark in n]
            except OSError:
                pass
        t.check(not found, "files named after a traversal attempt: %s" % found)
        new = sorted(self.tree(data_dir) - self.outside_before)
        t.check(not new, "files created outside the data directory: %s" % new[:10])

    def run(self):
        t = self.t
        failed = t.failed
        t.run("seed", self.reg.guard(t, self.seed))
        if t.failed > failed:
            return
        for fn in (self.names, self.digests, self.tags, self.bad_json, self.content_range,
                   self.truncated_body, self.size_limits, self.pagination, self.traversal,
                   self.methods, self.raw_http, self.unchanged, self.no_escape):
            t.run(fn.__name__, self.reg.guard(t, fn))
        t.run("still_serving", self.alive, "all bad input")
        self.c.close()


def clean_shutdown(results, reg, code):
    reports = reg.sanitizer_reports()
    results.check(not reports, "sanitizer reports in %s: %s" % (reg.log_path, " | ".join(reports)))
    results.check(code == 0, "exit status %s after SIGTERM" % code)


def main(results):
    root = tempfile.mkdtemp(prefix="pt-badinput-")
    try:
        # The data directory sits three levels down so that a traversal that climbs out of
        # it lands in directories this test watches.
        data_dir = os.path.join(root, "l1", "l2", "l3", "data")
        reg = h.registry_for(results.target, data_dir=data_dir)
        try:
            reg.start()
            BadInput(results, reg, root).run()
            code = reg.stop()
            # A clean exit also means no sanitizer report in a PT_SANITIZE build.
            results.run("clean_shutdown", clean_shutdown, results, reg, code, strict=True)
        finally:
            reg.stop()
    finally:
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(root, ignore_errors=True)
