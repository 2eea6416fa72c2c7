"""test_api_manifests.py - the OCI distribution-spec v1.1 HTTP API, endpoint by endpoint:
manifests, tags, the catalog, referrers and deletes.

Covers end-3, end-7, end-8a/8b, end-9, end-12a/12b plus the Docker _catalog, manifests and
referrers addressed by sha512, for success and error answers: status, the headers a client
relies on (Docker-Content-Digest, Location, Content-Length, Content-Type, OCI-Subject,
OCI-Filters-Applied, Link) and the JSON error body {"errors":[{"code":..,"message":..}]}.
The base endpoint, uploads and blobs are test_api.py; the checks both share, and what strict
means there, are tests/lib/api_checks.py.
"""

import os
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from api_checks import (  # noqa: E402
    MIB, OCTET, ApiChecks, link_target, media_type, run_module, sha512_digest)
import harness as h  # noqa: E402


class ManifestApi(ApiChecks):
    """Manifests, tags, the catalog, referrers and deletes."""

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

    def referrers_pages(self):
        """The index paginated with Link: every page within n, the union exactly the
        referrers, the artifactType filter and OCI-Filters-Applied kept on every page."""
        c, t = self.c, self.t
        repo = h.unique_repo("ref")
        subject = h.make_image(layers=1)
        subject.push(c, repo, "v1")
        a_t, b_t = "application/vnd.example.a+json", "application/vnd.example.b"
        want = {a_t: [], b_t: []}
        for i in range(7):
            at = a_t if i % 2 == 0 else b_t
            m = h.make_image(layers=1, layer_size=16 + i, artifact_type=at, subject=subject)
            t.eq(m.push(c, repo).status, 201, "referrer %d pushed" % i)
            want[at].append(m.digest)
        r, got = self.referrers_index(repo, subject.digest, what="one page")
        t.eq(len(got), 7, "every referrer on the default page")
        t.eq(r.headers.get("Link"), None, "no Link when everything fits")
        path = "/v2/%s/referrers/%s" % (repo, subject.digest)
        for at, n in ((None, 2), (a_t, 2), (b_t, 1)):
            q = {"n": str(n)}
            if at:
                q["artifactType"] = at
            nxt, seen, pages = path + "?" + urllib.parse.urlencode(q), [], 0
            while nxt and pages < 20:
                r, got = self.referrers_index(repo, subject.digest, nxt[len(path):],
                                              "page %d of %s" % (pages, q))
                t.check(len(got) <= n, "page of %d for n=%d" % (len(got), n))
                t.eq(r.headers.get("OCI-Filters-Applied"), "artifactType" if at else None,
                     "OCI-Filters-Applied on page %d" % pages)
                for d, m in got.items():
                    if at:
                        t.eq(m.get("artifactType"), at, "filtered page holds another type")
                doc = r.json().get("manifests") or []
                seen += [m.get("digest") for m in doc]
                target = link_target(r)
                if target:
                    t.eq(target[0], path, "referrers Link path")
                    t.eq(target[1].get("n"), str(n), "referrers Link n")
                    t.eq(target[1].get("artifactType"), at, "referrers Link artifactType")
                    if doc:
                        t.eq(target[1].get("last"), doc[-1].get("digest"), "referrers Link last")
                nxt, pages = h.next_link(r), pages + 1
            expect = sorted(want[at]) if at else sorted(want[a_t] + want[b_t])
            t.eq(seen, expect, "referrers collected through Link (%s)" % q)
            t.check(pages >= len(expect) // n, "%d pages for %d referrers, n=%d" %
                    (pages, len(expect), n))
        # a large n is clamped, never refused; a bad n or last is
        r, got = self.referrers_index(repo, subject.digest, "?n=100000", "large n")
        t.eq(len(got), 7, "large n")
        for q in ("?n=0", "?n=abc", "?last=nodigest", "?n=-1"):
            self.err(c.get(path + q), 400, "PAGINATION_NUMBER_INVALID", "referrers " + q,
                     strict=True)

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

    # -- sha512 digests (image-spec descriptor.md, "Registered algorithms") --------------------

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

    def tests(self):
        return [
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
            (self.referrers_pages, True),
            (self.tag_delete, True),
            (self.manifest_delete, False),
            (self.sha512_manifests, True),
            (self.sha512_referrers, True),
        ]


def main(results):
    run_module(results, ManifestApi)
