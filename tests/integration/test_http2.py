"""HTTP/2 through curl: cleartext with prior knowledge (h2c), the HTTP/1.1 Upgrade to h2c, and
TLS with ALPN h2.

Role: the registry's protocol surface beyond HTTP/1.1. Over each kind of connection: the
base endpoint answers 200 over HTTP/2 with the API version header, a blob pushed with a
monolithic POST comes back byte-identical (whole and as a Range), a manifest round-trips
with its digest, and several requests multiplexed on one HTTP/2 connection all succeed.
Python's standard library has no HTTP/2 client, so curl (with nghttp2) does the talking.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Curl:
    def __init__(self, base, mode, cafile=None):
        self.base = base
        self.mode = mode  # "prior" (h2c prior knowledge), "upgrade" (h2c Upgrade) or "tls"
        self.cafile = cafile

    def args(self):
        a = ["curl", "-sS", "--max-time", "60"]
        if self.mode == "prior":
            a.append("--http2-prior-knowledge")
        else:
            a.append("--http2")
        if self.cafile:
            a += ["--cacert", self.cafile]
        return a

    def run(self, path, method="GET", headers=(), data_file=None, out=None):
        """Returns (http_version, status, headers dict (lower-case), body bytes)."""
        with tempfile.NamedTemporaryFile() as hdr, tempfile.NamedTemporaryFile() as body:
            a = self.args() + ["-X", method, "-D", hdr.name, "-o", out or body.name,
                               "-w", "%{http_version} %{http_code}"]
            if self.mode == "upgrade" and path != "/v2/":
                # curl (7.88) gives up when more than its 32 KiB buffer arrives right behind
                # the 101 (h2o may send a whole 64 KiB window at once): the connection is
                # upgraded by a small GET /v2/ first, and this request rides it as HTTP/2.
                a = (self.args() + ["-o", "/dev/null", self.base + "/v2/", "--next"] +
                     a[1:])
            if method == "HEAD":
                a = [x for x in a if x not in ("-X", "HEAD")] + ["-I"]
            for h in headers:
                a += ["-H", h]
            if data_file is not None:
                a += ["--data-binary", "@" + data_file]
            a.append(self.base + path)
            p = subprocess.run(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if p.returncode != 0:
                raise RuntimeError("curl %s %s failed: %s" % (method, path, p.stderr.strip()))
            version, status = p.stdout.split()
            hdrs = {}
            for line in open(hdr.name, "rb").read().decode("latin-1").splitlines():
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            data = b"" if out else open(body.name, "rb").read()
            return version, int(status), hdrs, data

    def parallel(self, paths):
        """GETs every path over one multiplexed connection; returns the list of statuses."""
        a = self.args() + ["--parallel", "--parallel-immediate", "-w", "%{http_version} %{http_code}\\n"]
        for path in paths:
            a += ["-o", "/dev/null", self.base + path]
        p = subprocess.run(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise RuntimeError("curl --parallel failed: %s" % p.stderr.strip())
        return [line.split() for line in p.stdout.splitlines() if line.strip()]


def exercise(results, label, curl, work):
    t = results
    repo = "h2/" + label

    def base():
        version, status, hdrs, _ = curl.run("/v2/")
        t.eq(version, "2", "%s: /v2/ HTTP version" % label)
        t.eq(status, 200, "%s: /v2/ status" % label)
        t.eq(hdrs.get("docker-distribution-api-version"), "registry/2.0",
             "%s: Docker-Distribution-API-Version" % label)

    def blob_round_trip():
        data = os.urandom(3 << 20) + label.encode()
        path = os.path.join(work, "blob-" + label)
        with open(path, "wb") as f:
            f.write(data)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        version, status, hdrs, _ = curl.run(
            "/v2/%s/blobs/uploads/?digest=%s" % (repo, digest), "POST",
            ["Content-Type: application/octet-stream"], data_file=path)
        t.eq(version, "2", "%s: upload HTTP version" % label)
        t.require(status == 201, "%s: monolithic upload status %d" % (label, status))
        t.eq(hdrs.get("docker-content-digest"), digest, "%s: upload Docker-Content-Digest" % label)
        _, status, hdrs, body = curl.run("/v2/%s/blobs/%s" % (repo, digest))
        t.eq(status, 200, "%s: blob GET status" % label)
        t.check(body == data, "%s: blob GET returned different bytes" % label)
        _, status, hdrs, body = curl.run("/v2/%s/blobs/%s" % (repo, digest), headers=[
            "Range: bytes=1000-1999"])
        t.eq(status, 206, "%s: Range GET status" % label)
        t.check(body == data[1000:2000], "%s: Range GET returned different bytes" % label)
        t.eq(hdrs.get("content-range"), "bytes 1000-1999/%d" % len(data),
             "%s: Content-Range" % label)
        _, status, hdrs, body = curl.run("/v2/%s/blobs/%s" % (repo, digest), "HEAD")
        t.eq(status, 200, "%s: blob HEAD status" % label)
        t.eq(hdrs.get("content-length"), str(len(data)), "%s: blob HEAD Content-Length" % label)

    def manifest_round_trip():
        config = json.dumps({"architecture": "amd64", "os": "linux", "label": label}).encode()
        cpath = os.path.join(work, "config-" + label)
        with open(cpath, "wb") as f:
            f.write(config)
        cdigest = "sha256:" + hashlib.sha256(config).hexdigest()
        _, status, _, _ = curl.run("/v2/%s/blobs/uploads/?digest=%s" % (repo, cdigest), "POST",
                                   ["Content-Type: application/octet-stream"], data_file=cpath)
        t.require(status == 201, "%s: config upload status %d" % (label, status))
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cdigest, "size": len(config)},
            "layers": []}).encode()
        mpath = os.path.join(work, "manifest-" + label)
        with open(mpath, "wb") as f:
            f.write(manifest)
        mdigest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        version, status, hdrs, _ = curl.run("/v2/%s/manifests/v1" % repo, "PUT",
                                            ["Content-Type: " + OCI_MANIFEST], data_file=mpath)
        t.eq(version, "2", "%s: manifest PUT HTTP version" % label)
        t.require(status == 201, "%s: manifest PUT status %d" % (label, status))
        t.eq(hdrs.get("docker-content-digest"), mdigest, "%s: manifest PUT digest" % label)
        _, status, hdrs, body = curl.run("/v2/%s/manifests/v1" % repo,
                                         headers=["Accept: " + OCI_MANIFEST])
        t.eq(status, 200, "%s: manifest GET status" % label)
        t.check(body == manifest, "%s: manifest GET returned different bytes" % label)
        t.eq(hdrs.get("content-type"), OCI_MANIFEST, "%s: manifest Content-Type" % label)

    def multiplexed():
        paths = ["/v2/", "/v2/%s/tags/list" % repo, "/v2/_catalog", "/v2/%s/manifests/v1" % repo,
                 "/v2/%s/manifests/nope" % repo, "/healthz"]
        got = curl.parallel(paths)
        t.eq(len(got), len(paths), "%s: parallel answers" % label)
        t.check(all(v == "2" for v, _ in got), "%s: parallel versions %s" % (label, got))
        t.eq(sorted(int(s) for _, s in got), [200, 200, 200, 200, 200, 404],
             "%s: parallel statuses" % label)

    for fn in (base, blob_round_trip, manifest_round_trip, multiplexed):
        results.run("%s_%s" % (label, fn.__name__), fn)


def main(results):
    if results.target != "portolan":
        raise harness.Skip("HTTP/2 cleartext is a portolan feature (Distribution 2.8 lacks h2c)")
    work = tempfile.mkdtemp(prefix="pt-http2-")
    try:
        with harness.registry_for(results.target, data_dir=os.path.join(work, "plain")) as node:
            exercise(results, "h2c_prior", Curl(node.url, "prior"), work)
            exercise(results, "h2c_upgrade", Curl(node.url, "upgrade"), work)
        cert, key = harness.make_self_signed_cert(work)
        with harness.registry_for(results.target, data_dir=os.path.join(work, "tls"),
                                  tls=(cert, key)) as node:
            exercise(results, "h2_tls", Curl(node.url, "tls", cafile=cert), work)
    finally:
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)
