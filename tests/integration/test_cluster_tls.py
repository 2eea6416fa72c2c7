"""Three regions serving HTTPS (a CA and a certificate for 127.0.0.1 made here with openssl):
a chunked upload begun in one region goes on in another, which forwards it over HTTPS to the
region that owns the session and checks that region's certificate.

Role: the one place where regions talk to each other's client port: an upload session lives
in the region that began it (its id names that region), so a client whose DNS answer moved it
to another region mid-upload is forwarded there. Checks, against real `portolan serve`
processes started by tests/lib/cluster.py with --tls-cert/--tls-key and --tls-peer-ca:
  - forwarded_upload: POST in region-a; PATCH of the second chunk, a GET of the session's
    status and the final PUT in region-b (all answered as region-a answers them, with the
    relative Location of the session); the blob is stored, linked and served by region-c,
    byte-identical; region-b's log says it forwarded;
  - untrusted_peer: region-b restarted trusting another CA: a forwarded chunk is refused
    (an error status, never a 2xx), and region-a's session is left as it was (its offset
    unchanged), so the client can go on in region-a.
"""

import hashlib
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import cluster  # noqa: E402
import harness as h  # noqa: E402

TIMEOUT = 120
CHUNK = 1 << 20
REPO = "tls/forward"


def chunk_headers(start, data):
    return {"Content-Type": "application/octet-stream",
            "Content-Range": "%d-%d" % (start, start + len(data) - 1),
            "Content-Length": str(len(data))}


def main(results):
    if shutil.which("openssl") is None:
        raise h.Skip("openssl is not installed")
    work = tempfile.mkdtemp(prefix="pt-tls-")
    try:
        run(results, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def forwarded(client, method, path, headers=None, body=None):
    """A request that region-b forwards to the session's owner over HTTPS. h2o 2.2.5's proxy
    client loses about one TLS 1.3 connection in ten before the owner reads the request (502,
    "I/O error (send request)" or "(head)"; the owner logs no request): a known defect of
    that client, left for the peer TLS work. Registry clients retry a 502, and so does this
    test, once; a second 502 fails it."""
    r = client.request(method, path, headers, body)
    if r.status == 502 and "I/O error" in r.body.decode("latin-1"):
        r = client.request(method, path, headers, body)
    return r


def run(results, work):
    tls = h.make_test_ca(work)
    with cluster.Cluster(3, tls=tls) as c:
        c.wait_leader()
        a, b, cc = c.regions
        ca, cb = a.client(), b.client()
        data = os.urandom(3 * CHUNK)
        digest = h.sha256_digest(data)

        t = results

        @results.test
        def forwarded_upload():
            r = ca.request("POST", "/v2/%s/blobs/uploads/" % REPO, {"Content-Length": "0"}, b"")
            t.check(r.status == 202, "POST in region-a: %s" % r.describe())
            loc = ca.location_path(r.headers.get("Location", ""))
            r = ca.request("PATCH", loc, chunk_headers(0, data[:CHUNK]), data[:CHUNK])
            t.check(r.status == 202, "first PATCH in region-a: %s" % r.describe())
            r = forwarded(cb, "PATCH", loc, chunk_headers(CHUNK, data[CHUNK:2 * CHUNK]),
                          data[CHUNK:2 * CHUNK])
            t.check(r.status == 202 and r.headers.get("Range") == "0-%d" % (2 * CHUNK - 1),
                    "second PATCH in region-b: %s" % r.describe())
            t.check(r.headers.get("Location", "").startswith("/v2/"),
                    "Location is relative, so the client stays in region-b: %r"
                    % r.headers.get("Location"))
            r = forwarded(cb, "GET", loc)
            t.check(r.status == 204 and r.headers.get("Range") == "0-%d" % (2 * CHUNK - 1),
                    "session status through region-b: %s" % r.describe())
            r = forwarded(cb, "PUT", h.with_query(loc, digest=digest),
                          {"Content-Type": "application/octet-stream",
                           "Content-Length": str(CHUNK)}, data[2 * CHUNK:])
            t.check(r.status == 201, "final PUT in region-b: %s" % r.describe())
            got = cc.client().get("/v2/%s/blobs/%s" % (REPO, digest))
            t.check(got.status == 200 and hashlib.sha256(got.body).hexdigest() == digest[7:],
                    "region-c serves the blob: %s" % got.describe())
            t.check(b.log_grep("upload forwarded to its region"),
                    "region-b did not log a forwarded upload")

        @results.test
        def untrusted_peer():
            other = os.path.join(work, "other")
            os.makedirs(other)
            other_ca = h.make_test_ca(other)[0]
            b.node.args = [x if x != tls[0] else other_ca for x in b.node.args]
            c.restart(b)
            c.wait_leader()
            cb2 = b.client()
            r = ca.request("POST", "/v2/%s/blobs/uploads/" % REPO, {"Content-Length": "0"}, b"")
            loc = ca.location_path(r.headers.get("Location", ""))
            r = ca.request("PATCH", loc, chunk_headers(0, data[:CHUNK]), data[:CHUNK])
            t.check(r.status == 202, "PATCH in region-a: %s" % r.describe())
            r = cb2.request("PATCH", loc, chunk_headers(CHUNK, data[CHUNK:2 * CHUNK]),
                            data[CHUNK:2 * CHUNK])
            t.check(not 200 <= r.status < 300, "a chunk forwarded to a region whose "
                    "certificate region-b does not trust was accepted: %s" % r.describe())
            r = ca.request("GET", loc)
            t.check(r.status == 204 and r.headers.get("Range") == "0-%d" % (CHUNK - 1),
                    "region-a's session after the refused chunk: %s" % r.describe())
