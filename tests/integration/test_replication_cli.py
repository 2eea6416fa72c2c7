"""test_replication_cli.py - replication status of one image and of the regions, on one node.

A single-region node (region "west-1", no cluster file) answers:
- GET /admin/replication/image?name=&reference= with the image's blobs (config and layers;
  for an index, of every child, each digest once), the regions holding each, the regions
  holding all ("complete": the node's own region) and what the others lack ("missing": none);
  404 NAME_UNKNOWN / MANIFEST_UNKNOWN for an unknown image, 400 for a missing or bad name,
  reference or digest, 405 for other methods;
- GET /admin/replication with its own status: {"region": "west-1", "in_sync": true, ...}.
`portolan replication status` prints both, as text and with --json, with exit status 0 when
answered and 1 when the image is unknown. Access control is on: every request and command
speaks as the administrator.
"""

import json
import os
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402

TIMEOUT = 120
REGION = "west-1"
IMAGE_PATH = "/admin/replication/image"


def image_path(**params):
    return IMAGE_PATH + ("?" + urllib.parse.urlencode(params) if params else "")


def cli(node, *args, timeout=30):
    """(exit status, stdout, stderr) of `portolan replication ARGS` as the administrator."""
    try:
        p = subprocess.run([node.binary, "replication"] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout,
                           env=node.cli_env())
    except subprocess.TimeoutExpired:
        return None, "", "no exit within %d s" % timeout
    return p.returncode, p.stdout, p.stderr


def blob_list(img):
    """[(digest, size)] of an image's config and layers, in manifest order."""
    return [(d, len(data)) for d, data in img.blobs]


class ReplicationCli:
    def __init__(self, results, node):
        self.t = results
        self.node = node
        self.c = node.client()

    def get_json(self, path, what):
        t = self.t
        r = self.c.get(path)
        t.require(r.status == 200, "%s: %s" % (what, r.describe()))
        t.check((r.headers.get("Content-Type") or "").startswith("application/json"),
                "%s: Content-Type %r" % (what, r.headers.get("Content-Type")))
        return r.json()

    def error(self, r, status, code, what):
        t = self.t
        t.check(r.status == status, "%s: status %d, want %d (%s)"
                % (what, r.status, status, r.describe()))
        t.check(code in r.error_codes(), "%s: error codes %s, want %s"
                % (what, r.error_codes(), code))

    def check_single_region_doc(self, doc, repo, ref, digest, blobs, what):
        t = self.t
        t.eq(doc.get("name"), repo, what + ": name")
        t.eq(doc.get("reference"), ref, what + ": reference")
        t.eq(doc.get("digest"), digest, what + ": digest")
        t.eq(doc.get("regions"), [REGION], what + ": regions")
        got = [(b.get("digest"), b.get("size")) for b in doc.get("blobs", [])]
        t.eq(got, blobs, what + ": blobs (digest, size) in manifest order")
        for b in doc.get("blobs", []):
            t.eq(b.get("regions"), [REGION], what + ": holders of %s" % b.get("digest"))
        t.eq(doc.get("complete"), [REGION], what + ": complete")
        t.eq(doc.get("missing"), {}, what + ": missing")

    def run(self):
        t = self.t
        repo = h.unique_repo("repl")
        img = h.make_image(layers=3, layer_size=2048)
        img.push(self.c, repo, "v1")
        self.repo, self.img = repo, img

        @t.test
        def image_by_tag():
            doc = self.get_json(image_path(name=repo, reference="v1"), "by tag")
            self.check_single_region_doc(doc, repo, "v1", img.digest, blob_list(img), "by tag")

        @t.test
        def image_by_digest():
            doc = self.get_json(image_path(name=repo, reference=img.digest), "by digest")
            self.check_single_region_doc(doc, repo, img.digest, img.digest, blob_list(img),
                                         "by digest")

        @t.test
        def image_head():
            r = self.c.head(image_path(name=repo, reference="v1"))
            t.eq(r.status, 200, "HEAD status")
            t.eq(r.body, b"", "HEAD body")

        @t.test
        def index_lists_each_blob_once():
            irepo = h.unique_repo("repl")
            a = h.make_image(layers=2, layer_size=512)
            b = h.make_image(layers=1, layer_size=700)
            # a is listed twice: its blobs must still appear once.
            idx = h.make_index([a, b, a])
            idx.push(self.c, irepo, "multi")
            doc = self.get_json(image_path(name=irepo, reference="multi"), "index")
            self.check_single_region_doc(doc, irepo, "multi", idx.digest,
                                         blob_list(a) + blob_list(b), "index")

        @t.test
        def unknown_image():
            self.error(self.c.get(image_path(name=repo, reference="nope")), 404,
                       "MANIFEST_UNKNOWN", "unknown tag")
            self.error(self.c.get(image_path(name=repo, reference=h.sha256_digest(b"none"))),
                       404, "MANIFEST_UNKNOWN", "unknown digest")
            self.error(self.c.get(image_path(name=h.unique_repo("absent"), reference="v1")),
                       404, "NAME_UNKNOWN", "unknown repository")

        @t.test
        def bad_parameters():
            self.error(self.c.get(image_path(reference="v1")), 400, "NAME_INVALID",
                       "missing name")
            self.error(self.c.get(IMAGE_PATH), 400, "NAME_INVALID", "no query")
            self.error(self.c.get(image_path(name="", reference="v1")), 400, "NAME_INVALID",
                       "empty name")
            self.error(self.c.get(image_path(name="Upper/Case", reference="v1")), 400,
                       "NAME_INVALID", "invalid name")
            self.error(self.c.get(image_path(name="a" * 300, reference="v1")), 400,
                       "NAME_INVALID", "name too long")
            self.error(self.c.get(image_path(name=repo)), 400, "TAG_INVALID",
                       "missing reference")
            self.error(self.c.get(image_path(name=repo, reference="-bad")), 400, "TAG_INVALID",
                       "invalid tag")
            self.error(self.c.get(image_path(name=repo, reference="sha256:1234")), 400,
                       "DIGEST_INVALID", "invalid digest")
            self.error(self.c.get(image_path(name=repo, reference="x" * 300)), 400,
                       "TAG_INVALID", "reference too long")
            r = self.c.request("POST", image_path(name=repo, reference="v1"))
            t.eq(r.status, 405, "POST status (%s)" % r.describe())

        @t.test
        def region_status():
            doc = self.get_json("/admin/replication", "GET /admin/replication")
            t.eq(doc.get("region"), REGION, "region")
            t.eq(doc.get("in_sync"), True, "in_sync")
            t.eq(doc.get("blobs_behind"), 0, "blobs_behind")
            t.eq(doc.get("bytes_behind"), 0, "bytes_behind")
            t.eq(doc.get("active"), [], "active")

        @t.test
        def cli_image_json():
            rc, out, err = cli(self.node, "status", "%s:v1" % repo, "--region", self.node.url,
                               "--json")
            t.require(rc == 0, "exit %s: %s" % (rc, err.strip()))
            doc = json.loads(out)
            self.check_single_region_doc(doc, repo, "v1", img.digest, blob_list(img), "cli --json")
            rc, out, err = cli(self.node, "status", "%s@%s" % (repo, img.digest), "--json",
                               "--region", self.node.url)
            t.require(rc == 0, "by digest: exit %s: %s" % (rc, err.strip()))
            t.eq(json.loads(out).get("digest"), img.digest, "cli by digest: digest")

        @t.test
        def cli_image_text():
            rc, out, err = cli(self.node, "status", "%s:v1" % repo, "--region", self.node.url)
            t.require(rc == 0, "exit %s: %s" % (rc, err.strip()))
            t.check(("image %s:v1 (%s): 4 blobs" % (repo, img.digest)) in out,
                    "no image line in %r" % out)
            rows = [ln.split() for ln in out.splitlines()]
            t.check(["REGION", "STATE", "BLOBS-MISSING", "BYTES-MISSING"] in rows,
                    "no header in %r" % out)
            t.check([REGION, "complete", "0", "0B"] in rows, "no complete row in %r" % out)
            t.check("lacks" not in out, "a region lacks blobs: %r" % out)

        @t.test
        def cli_image_unknown():
            rc, out, err = cli(self.node, "status", "%s:nope" % repo, "--region", self.node.url)
            t.eq(rc, 1, "exit status for an unknown tag")
            t.check("HTTP 404" in err and "MANIFEST_UNKNOWN" in err, "stderr %r" % err)
            t.eq(out, "", "stdout")
            rc, out, err = cli(self.node, "status", "Bad:v1", "--region", self.node.url)
            t.eq(rc, 2, "exit status for a bad image name (stderr %r)" % err)

        @t.test
        def cli_regions():
            rc, out, err = cli(self.node, "status", "--region", self.node.url, "--json")
            t.require(rc == 0, "--json: exit %s: %s %s" % (rc, err.strip(), out.strip()))
            doc = json.loads(out)
            regions = doc.get("regions")
            t.require(isinstance(regions, list) and len(regions) == 1,
                      "regions: %r" % regions)
            t.eq(regions[0].get("region"), REGION, "--json: region")
            t.eq(regions[0].get("in_sync"), True, "--json: in_sync")
            t.check("error" not in regions[0], "--json: error %r" % regions[0].get("error"))
            rc, out, err = cli(self.node, "status", "--region", self.node.url)
            t.require(rc == 0, "text: exit %s: %s" % (rc, err.strip()))
            t.check("replication: 1 of 1 region in sync" in out, "no summary in %r" % out)
            rows = [ln.split() for ln in out.splitlines()]
            t.check(any(r[:2] == [REGION, "in-sync"] for r in rows), "no row for %s in %r"
                    % (REGION, out))

        @t.test
        def cli_unreachable_region():
            dead = "http://127.0.0.1:%d" % h.free_port()
            rc, out, err = cli(self.node, "status", "--region", dead)
            t.eq(rc, 1, "exit status when the region does not answer (stderr %r)" % err)


def clean_shutdown(results, node, code):
    reports = node.sanitizer_reports()
    results.check(not reports, "sanitizer reports in %s: %s" % (node.log_path, " | ".join(reports)))
    results.check(code == 0, "exit status %s after SIGTERM" % code)


def main(results):
    if results.target != "portolan":
        raise h.Skip("portolan admin API only")
    node = h.Node(args=["--region", REGION], auth=True, admin_password=h.new_password())
    try:
        node.start()
        node.wait_auth()
        ReplicationCli(results, node).run()
        code = node.stop()
        results.run("clean_shutdown", clean_shutdown, results, node, code)
    finally:
        node.stop()
        node.cleanup()
