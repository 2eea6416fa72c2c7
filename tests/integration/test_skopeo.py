"""skopeo against a live node: push, pull, inspect, list-tags, delete, over HTTP and HTTPS.

Role: prove that a real client (skopeo, i.e. containers/image, the code inside podman,
buildah and CRI-O) can use the node end to end, and that what it stores comes back
byte-identical.

What runs, once over plain HTTP and once over HTTPS with a CA made here by openssl
(a server certificate with SAN IP:127.0.0.1; skopeo gets only the CA via --*-cert-dir):
  1. push three generated images (tests/lib/images.py): a multi-layer OCI image from an
     OCI layout, a Docker schema2 image from a ``dir:`` layout, a three-platform OCI index
     and a two-platform Docker manifest list, both with ``--all``;
  2. check over the HTTP API that every manifest (by tag and by digest, index children
     included) and every blob is served byte-identical with the right digest headers;
  3. pull each back to ``dir:`` and to ``oci:`` (``--all`` for the index) and compare every
     manifest and blob byte for byte with the source;
  4. ``skopeo inspect --raw`` (== manifest bytes), ``--config --raw`` (== config bytes), and
     plain ``inspect`` (digest, tags, layers, platform; ``--override-arch`` picks the right
     index child);
  5. copy registry-to-registry (same repository, new tag; and another repository, which
     makes skopeo try a cross-repository mount) and ``skopeo list-tags``;
  6. ``skopeo delete`` (by tag: skopeo resolves it and deletes the manifest by digest):
     the manifest and the tags that pointed at it are gone, the other images are not, and
     the image can be pushed again;
  7. HTTPS only: skopeo without the CA refuses the server (the certificate is really
     checked).

Target: ``results.target`` (a portolan node, or the reference registry when the runner is
asked for it). skopeo never touches the host's
container state: see ``images.Skopeo``.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness  # noqa: E402
import images  # noqa: E402

ACCEPT = ", ".join(
    [images.OCI_MANIFEST, images.OCI_INDEX, images.DOCKER_MANIFEST, images.DOCKER_LIST]
)


class Suite:
    """One pass of the checks against one running registry."""

    def __init__(self, results, label, node, client, sk, work):
        self.results = results
        self.label = label
        self.node = node
        self.client = client
        self.sk = sk
        self.work = work
        self.host = node.url.split("://", 1)[1].rstrip("/")

    def check(self, name, ok, detail=""):
        msg = name if detail in ("", None) else "%s [%s]" % (name, detail)
        return self.results.check(bool(ok), msg)

    def ref(self, repo, tag_or_digest):
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return "docker://%s/%s%s%s" % (self.host, repo, sep, tag_or_digest)

    # -- HTTP-level checks -------------------------------------------------------------

    def check_manifest_http(self, repo, ref, raw, digest, media_type):
        r = self.client.request("GET", "/v2/%s/manifests/%s" % (repo, ref),
                                headers={"Accept": ACCEPT})
        ok = self.check("GET manifest %s:%s status" % (repo, ref[:19]), r.status == 200, r.status)
        if not ok:
            return
        self.check("GET manifest %s:%s bytes identical" % (repo, ref[:19]), r.body == raw,
                   "got %d bytes, want %d" % (len(r.body), len(raw)))
        self.check("GET manifest %s:%s Docker-Content-Digest" % (repo, ref[:19]),
                   r.headers.get("docker-content-digest") == digest,
                   r.headers.get("docker-content-digest"))
        ctype = (r.headers.get("content-type") or "").split(";")[0].strip()
        self.check("GET manifest %s:%s Content-Type" % (repo, ref[:19]), ctype == media_type,
                   ctype)
        h = self.client.request("HEAD", "/v2/%s/manifests/%s" % (repo, ref),
                                headers={"Accept": ACCEPT})
        self.check("HEAD manifest %s:%s" % (repo, ref[:19]),
                   h.status == 200 and h.headers.get("docker-content-digest") == digest
                   and int(h.headers.get("content-length", -1)) == len(raw),
                   (h.status, h.headers.get("docker-content-digest"),
                    h.headers.get("content-length")))

    def check_pushed_http(self, repo, tag, obj):
        self.check_manifest_http(repo, tag, obj.manifest, obj.digest, obj.media_type)
        for digest, media_type, raw in obj.manifests():
            self.check_manifest_http(repo, digest, raw, digest, media_type)
        bad = []
        for b in obj.blobs():
            r = self.client.request("GET", "/v2/%s/blobs/%s" % (repo, b.digest))
            if r.status != 200 or r.body != b.data:
                bad.append((b.digest, r.status, len(r.body or b"")))
        self.check("GET every blob of %s byte-identical" % repo, not bad, bad[:3])

    # -- pull-back checks --------------------------------------------------------------

    def check_dir_pull(self, repo, tag, obj):
        out = self.sk.output_dir("pull-dir-%s-%s" % (repo.replace("/", "_"), tag))
        self.sk.copy(self.ref(repo, tag), "dir:" + out,
                     all_images=isinstance(obj, images.Index))
        got = images.read_dir_layout(out)
        self.check("pull %s to dir: manifest.json identical" % repo,
                   got["manifest"] == obj.manifest)
        if isinstance(obj, images.Index):
            want = {img.digest: img.manifest for img in obj.images}
            self.check("pull %s to dir: every instance manifest identical" % repo,
                       got["instances"] == want, sorted(got["instances"]))
        want_blobs = {b.digest for b in obj.blobs()}
        self.check("pull %s to dir: exactly the source blobs" % repo,
                   set(got["blobs"]) == want_blobs,
                   sorted(set(got["blobs"]) ^ want_blobs))
        bad = [d for d, p in got["blobs"].items() if images.file_digest(p) != d]
        self.check("pull %s to dir: blob files match their digests" % repo, not bad, bad)

    def check_oci_pull(self, repo, tag, obj):
        out = self.sk.output_dir("pull-oci-%s-%s" % (repo.replace("/", "_"), tag))
        self.sk.copy(self.ref(repo, tag), "oci:%s:%s" % (out, tag),
                     all_images=isinstance(obj, images.Index))
        try:
            mt, raw = images.read_oci_layout(out, tag)
        except (KeyError, OSError) as e:
            self.check("pull %s to oci: has the tag" % repo, False, e)
            return
        if obj.media_type == images.DOCKER_MANIFEST:
            # An OCI layout holds OCI manifests only: skopeo converts the manifest and the
            # config, and must carry the layers over untouched.
            doc = json.loads(raw)
            self.check("pull %s to oci: converted to an OCI manifest" % repo,
                       mt == images.OCI_MANIFEST, mt)
            layers = [d["digest"] for d in doc.get("layers", [])]
            self.check("pull %s to oci: same layers" % repo,
                       layers == [b.digest for b in obj.layers], layers)
            bad = [b.digest for b in obj.layers if images.read_oci_blob(out, b.digest) != b.data]
            self.check("pull %s to oci: layer blobs identical" % repo, not bad, bad)
            cfg = json.loads(images.read_oci_blob(out, doc["config"]["digest"]))
            want = json.loads(obj.config.data)
            self.check("pull %s to oci: config keeps its rootfs" % repo,
                       cfg.get("rootfs") == want["rootfs"], cfg.get("rootfs"))
            return
        self.check("pull %s to oci: manifest identical" % repo,
                   raw == obj.manifest and mt == obj.media_type, mt)
        missing = []
        for digest, _mt, want in obj.manifests():
            try:
                if images.read_oci_blob(out, digest) != want:
                    missing.append(digest)
            except OSError:
                missing.append(digest)
        for b in obj.blobs():
            try:
                if images.read_oci_blob(out, b.digest) != b.data:
                    missing.append(b.digest)
            except OSError:
                missing.append(b.digest)
        self.check("pull %s to oci: every manifest and blob identical" % repo, not missing,
                   missing[:3])

    # -- inspect -----------------------------------------------------------------------

    def check_inspect(self, repo, tag, obj, image):
        """``image`` is the Image whose config/layers plain inspect should report."""
        raw = self.sk.inspect(self.ref(repo, tag), raw=True).stdout.encode()
        self.check("inspect --raw %s == manifest bytes" % repo, raw == obj.manifest,
                   images.digest_of(raw))
        cfg = self.sk.inspect(self.ref(repo, tag), raw=True, config=True).stdout.encode()
        self.check("inspect --config --raw %s == config bytes" % repo, cfg == image.config.data)
        info = json.loads(self.sk.inspect(self.ref(repo, tag)).stdout)
        self.check("inspect %s Digest" % repo, info.get("Digest") == obj.digest, info.get("Digest"))
        self.check("inspect %s RepoTags" % repo, tag in (info.get("RepoTags") or []),
                   info.get("RepoTags"))
        self.check("inspect %s Layers" % repo,
                   info.get("Layers") == [b.digest for b in image.layers], info.get("Layers"))
        self.check("inspect %s platform" % repo,
                   (info.get("Os"), info.get("Architecture"))
                   == (image.platform["os"], image.platform["architecture"]),
                   (info.get("Os"), info.get("Architecture")))
        by_digest = json.loads(self.sk.inspect(self.ref(repo, obj.digest)).stdout)
        self.check("inspect %s@digest" % repo, by_digest.get("Digest") == obj.digest,
                   by_digest.get("Digest"))

    def check_inspect_index_child(self, repo, tag, idx):
        for img in idx.images:
            p = img.platform
            extra = ["--override-os", p["os"], "--override-arch", p["architecture"]]
            if p.get("variant"):
                extra += ["--override-variant", p["variant"]]
            args = ["--tls-verify=false"] if not self.sk.cert_dir else [
                "--tls-verify=true", "--cert-dir", self.sk.cert_dir]
            info = json.loads(self.sk.run(*(extra + ["inspect"] + args + [self.ref(repo, tag)]))
                              .stdout)
            self.check("inspect %s for %s/%s picks its layers" % (repo, p["os"], p["architecture"]),
                       info.get("Layers") == [b.digest for b in img.layers]
                       and info.get("Architecture") == p["architecture"],
                       (info.get("Architecture"), info.get("Layers")))

    def tags_of(self, repo):
        r = self.client.request("GET", "/v2/%s/tags/list" % repo)
        if r.status == 404:
            return []
        if r.status != 200:
            return None
        return json.loads(r.body).get("tags") or []

    # -- the whole pass, one results test per step ----------------------------------------

    def build(self):
        self.img = images.make_image("skopeo-oci", layers=4, layer_size=96 << 10)
        self.dimg = images.make_image("skopeo-docker", layers=3, layer_size=80 << 10,
                                      docker=True)
        self.idx = images.make_index("skopeo-index")
        self.dlist = images.make_index("skopeo-docker-list", platforms=images.DEFAULT_PLATFORMS[:2],
                                       docker=True)
        self.src = os.path.join(self.work, "src-oci")
        images.write_oci_layout(self.src, {"image": self.img, "multi": self.idx})
        self.dsrc = os.path.join(self.work, "src-docker")
        images.write_dir_layout(self.dsrc, self.dimg)
        self.lsrc = os.path.join(self.work, "src-docker-list")
        images.write_dir_layout(self.lsrc, self.dlist)
        for d in (self.src, self.dsrc, self.lsrc):
            self.sk.prepare_readable(d)
        self.pushes = [
            ("pt/oci-image", "v1", self.img, "oci:%s:image" % self.src),
            ("pt/docker-image", "v1", self.dimg, "dir:" + self.dsrc),
            ("pt/multi", "v1", self.idx, "oci:%s:multi" % self.src),
            ("pt/docker-list", "v1", self.dlist, "dir:" + self.lsrc),
        ]

    def step_push(self):
        for repo, tag, obj, source in self.pushes:
            p = self.sk.copy(source, self.ref(repo, tag),
                             all_images=isinstance(obj, images.Index), check=False)
            if self.check("push %s" % repo, p.returncode == 0, p.stderr[-800:]):
                # Source bytes must go up unchanged: a converted manifest would differ here.
                self.check_pushed_http(repo, tag, obj)

    def step_pull(self):
        for repo, tag, obj, _ in self.pushes:
            self.check_dir_pull(repo, tag, obj)
            if obj.media_type != images.DOCKER_LIST:
                # (skopeo cannot write a Docker manifest list into an OCI layout.)
                self.check_oci_pull(repo, tag, obj)

    def step_inspect(self):
        self.check_inspect("pt/oci-image", "v1", self.img, self.img)
        self.check_inspect("pt/docker-image", "v1", self.dimg, self.dimg)
        amd64 = [i for i in self.idx.images if i.platform["architecture"] == "amd64"][0]
        self.check_inspect("pt/multi", "v1", self.idx, amd64)
        self.check_inspect_index_child("pt/multi", "v1", self.idx)

    def step_copy_list_tags(self):
        img = self.img
        p = self.sk.copy(self.ref("pt/oci-image", "v1"), self.ref("pt/oci-image", "v2"),
                         check=False)
        self.check("copy to a new tag in the same repository", p.returncode == 0,
                   p.stderr[-800:])
        p = self.sk.copy(self.ref("pt/oci-image", "v1"), self.ref("pt/mounted", "m1"),
                         check=False)
        self.check("copy to another repository (cross-repo mount)", p.returncode == 0,
                   p.stderr[-800:])
        self.check_manifest_http("pt/mounted", "m1", img.manifest, img.digest, img.media_type)
        self.check("blobs readable in the mounted-into repository",
                   all(self.client.request("GET", "/v2/pt/mounted/blobs/" + b.digest).body
                       == b.data for b in img.blobs()))
        lt = json.loads(self.sk.list_tags("docker://%s/pt/oci-image" % self.host).stdout)
        self.check("list-tags pt/oci-image", sorted(lt.get("Tags") or []) == ["v1", "v2"], lt)
        lt = json.loads(self.sk.list_tags("docker://%s/pt/multi" % self.host).stdout)
        self.check("list-tags pt/multi", lt.get("Tags") == ["v1"], lt)

    def step_delete(self):
        img, idx, dimg = self.img, self.idx, self.dimg
        p = self.sk.delete(self.ref("pt/oci-image", "v2"), check=False)
        self.results.require(p.returncode == 0, "skopeo delete pt/oci-image:v2: %s"
                             % p.stderr[-800:])
        r = self.client.request("GET", "/v2/pt/oci-image/manifests/" + img.digest,
                                headers={"Accept": ACCEPT})
        self.check("deleted manifest is 404 by digest", r.status == 404, r.status)
        for tag in ("v1", "v2"):
            r = self.client.request("GET", "/v2/pt/oci-image/manifests/" + tag,
                                    headers={"Accept": ACCEPT})
            self.check("tag %s of the deleted manifest is 404" % tag, r.status == 404, r.status)
        tags = self.tags_of("pt/oci-image")
        self.check("deleted manifest's tags leave the tag list",
                   tags is not None and "v1" not in tags and "v2" not in tags, tags)
        p = self.sk.inspect(self.ref("pt/oci-image", "v1"), check=False)
        self.check("inspect of the deleted image fails", p.returncode != 0)
        self.check_manifest_http("pt/mounted", "m1", img.manifest, img.digest, img.media_type)
        p = self.sk.delete(self.ref("pt/multi", "v1"), check=False)
        self.check("skopeo delete of the index", p.returncode == 0, p.stderr[-800:])
        r = self.client.request("GET", "/v2/pt/multi/manifests/v1", headers={"Accept": ACCEPT})
        self.check("deleted index is 404 by tag", r.status == 404, r.status)
        for child in idx.images:
            # Deleting an index deletes that manifest only, not the manifests it lists.
            self.check_manifest_http("pt/multi", child.digest, child.manifest, child.digest,
                                     child.media_type)
        self.check_manifest_http("pt/docker-image", "v1", dimg.manifest, dimg.digest,
                                 dimg.media_type)
        p = self.sk.copy("oci:%s:image" % self.src, self.ref("pt/oci-image", "v3"), check=False)
        self.results.require(p.returncode == 0, "push again after delete: %s" % p.stderr[-800:])
        self.check_manifest_http("pt/oci-image", "v3", img.manifest, img.digest, img.media_type)
        self.check_dir_pull("pt/oci-image", "v3", img)

    def run(self):
        self.build()
        for step in ("push", "pull", "inspect", "copy_list_tags", "delete"):
            self.results.run("%s_%s" % (self.label, step), getattr(self, "step_" + step))


def run_pass(results, tls):
    label = "https" if tls else "http"
    work = tempfile.mkdtemp(prefix="pt-skopeo-%s-" % label)
    try:
        tls_pair, cafile, cert_dir = None, None, None
        if tls:
            cafile, cert, key = harness.make_test_ca(work)
            tls_pair = (cert, key)
            cert_dir = os.path.join(work, "certs")
        node = harness.registry_for(results.target, data_dir=os.path.join(work, "data"),
                                    tls=tls_pair)
        with node:
            client = harness.Client(node.url, cafile=cafile, timeout=60)
            sk = images.Skopeo(os.path.join(work, "skopeo"), cert_dir=cert_dir)
            suite = Suite(results, label, node, client, sk, os.path.join(work, "images"))
            suite.run()
            if tls:
                def refuses_without_ca():
                    bare = images.Skopeo(os.path.join(work, "skopeo-noca"), cert_dir=None)
                    p = bare.run("inspect", "--tls-verify=true",
                                 "docker://%s/pt/docker-image:v1" % suite.host, check=False)
                    results.check(p.returncode != 0 and "certificate" in p.stderr,
                                  "skopeo without the CA must refuse the server: rc %d %s"
                                  % (p.returncode, p.stderr[-400:]))
                results.run("https_refused_without_ca", refuses_without_ca)
            client.close()
    finally:
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)


def main(results):
    run_pass(results, tls=False)
    run_pass(results, tls=True)
