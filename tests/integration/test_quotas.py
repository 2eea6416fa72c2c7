"""Storage quotas and request throttling (node/store/metastore_quota.c, node/http/throttle.c).

Role: checks from outside, against a three-region cluster (tests/lib/cluster.py; access
control on, garbage collection with a one second grace and no schedule), what quotas and
throttling promise:
  - quota_across_regions: a quota set with `portolan quota set` in one region refuses, in
    another region, the blob upload that would cross it with 403 DENIED and a message naming
    the quota (before the bytes are kept: nothing of it is stored), and, in a third region, a
    mount that would cross it; `quota list` and `repo list --usage` show the usage and the
    series portolan_repo_usage_bytes is on /metrics; after the image is deleted and a
    garbage collection pass ran, the refused push is accepted;
  - throttling: `portolan throttle set default --reads-per-minute N` in one region makes
    another region answer reads past N with 429 TOOMANYREQUESTS and Retry-After (HTTP/1.1, and
    HTTP/2 when curl speaks it), and the same request succeeds once Retry-After seconds have
    passed; `throttle remove` lifts it.
Timing assumptions are limits (seconds), not targets, with headroom for a loaded 2-core box.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from blobrep import ERRORS, metrics  # noqa: E402
import cluster  # noqa: E402
import harness as h  # noqa: E402

TIMEOUT = 120
ARGS = ["--gc-grace", "1s", "--gc-interval", "0"]
LAYER = 40 << 10
LIMIT = "100KiB"
REPLICATE_LIMIT = 20
PASS_LIMIT = 30
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wait_for(pred, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def cli(c, region, *args):
    """Runs `portolan <args> --region <region's URL>` as the administrator: (rc, out, err)."""
    p = subprocess.run([c.binary] + list(args) + ["--region", region.url],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                       env=c.cli_env())
    return p.returncode, p.stdout, p.stderr


def manifest(config, layers):
    return {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha(layer), "size": len(layer)} for layer in layers]}


def upload(region, repo, data):
    """POST ?digest= of data (monolithic): the response."""
    with region.client(timeout=30) as cl:
        return cl.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, sha(data)),
                          {"Content-Type": "application/octet-stream"}, data)


def seen(region, path, want):
    """True when region's admin GET path answers 200 with want in its body."""
    try:
        with region.client(timeout=10) as cl:
            r = cl.get(path)
    except ERRORS:
        return False
    return r.status == 200 and want in r.body


def throttle_reads(region, subject):
    """The reads per minute of region's throttle for subject (GET /admin/throttles), or None
    when it has none. The tiers listed beside the throttles are not throttles."""
    try:
        with region.client(timeout=10) as cl:
            r = cl.get("/admin/throttles")
    except ERRORS:
        return None
    if r.status != 200:
        return None
    for th in r.json().get("throttles", []):
        if th.get("subject") == subject:
            return th.get("reads_per_minute")
    return None


def gc_pass(region):
    """Runs a garbage collection pass at region; its final status, or None."""
    with region.client(timeout=10) as cl:
        r = cl.request("POST", "/admin/gc")
    if r.status != 202:
        return None

    def done():
        with region.client(timeout=10) as cl:
            s = cl.get("/admin/gc")
        st = s.json() if s.status == 200 else None
        return st if st is not None and not st["running"] else None
    return wait_for(done, PASS_LIMIT)


def quota_across_regions(results, c):
    t = results
    a, b, d = c.regions
    repo = h.unique_repo("quota")
    rc, out, err = cli(c, a, "quota", "set", repo, LIMIT)
    t.require(rc == 0, "quota set: rc %d %s" % (rc, err))
    t.require(wait_for(lambda: seen(b, "/admin/quotas", repo.encode()), REPLICATE_LIMIT) and
              wait_for(lambda: seen(d, "/admin/quotas", repo.encode()), REPLICATE_LIMIT),
              "the quota did not reach every region")

    # one image (config + one 40 KiB layer) fits
    config, layer1 = b'{"architecture":"amd64"}', os.urandom(LAYER)
    with b.client(timeout=30) as cl:
        cl.push_blob(repo, config)
        cl.push_blob(repo, layer1)
        doc = manifest(config, [layer1])
        r = cl.put_manifest(repo, "v1", doc)
        t.eq(r.status, 201, "PUT manifest v1: %s" % r.describe())
        v1 = r.headers.get("Docker-Content-Digest")
    # a second, bigger layer crosses it: refused before its bytes are kept
    layer2 = os.urandom(2 * LAYER)
    r = upload(b, repo, layer2)
    t.eq(r.status, 403, "upload past the quota: %s" % r.describe())
    t.check("DENIED" in r.error_codes(), "error code: %s" % r.describe())
    t.check(repo.encode() in r.body and b"quota" in r.body,
            "the message names the quota: %s" % r.describe())
    t.check(not os.path.exists(b.blob_path(sha(layer2))), "the refused blob was stored")
    # a chunked upload: the PATCH is refused the same way
    with b.client(timeout=30) as cl:
        r = cl.request("POST", "/v2/%s/blobs/uploads/" % repo)
        t.eq(r.status, 202, "POST upload session: %s" % r.describe())
        loc = cl.location_path(r.headers.get("Location", ""))
        r = cl.request("PATCH", loc, {"Content-Type": "application/octet-stream"}, layer2)
        t.eq(r.status, 403, "PATCH past the quota: %s" % r.describe())
    # a mount in the third region of a blob another repository holds: refused too
    other = h.unique_repo("quota-src")
    with d.client(timeout=30) as cl:
        cl.push_blob(other, layer2)
        r = cl.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (repo, sha(layer2),
                                                                          other))
        t.eq(r.status, 403, "mount past the quota: %s" % r.describe())

    rc, out, err = cli(c, d, "quota", "list")
    t.check(rc == 0 and repo in out and "%" in out, "quota list: %d %s %s" % (rc, out, err))
    rc, out, err = cli(c, a, "repo", "list", "--usage")
    t.check(rc == 0 and repo in out, "repo list --usage: %d %s %s" % (rc, out, err))
    m = metrics(a) or {}
    t.check(m.get("portolan_repo_usage_bytes", 0) >= LAYER, "portolan_repo_usage_bytes: %s"
            % m.get("portolan_repo_usage_bytes"))

    # delete the image, wait out the grace, collect: the usage goes down, the push passes
    with a.client(timeout=30) as cl:
        t.eq(cl.delete("/v2/%s/manifests/%s" % (repo, v1)).status, 202, "DELETE manifest")
    time.sleep(1.5)
    st = gc_pass(c.wait_leader())
    t.require(st is not None and st["error"] == "", "gc pass: %s" % st)

    def accepted():
        r = upload(b, repo, layer2)
        return r if r.status == 201 else None
    r = wait_for(accepted, REPLICATE_LIMIT, interval=0.5)
    t.check(r is not None, "upload after delete + gc: %s" % upload(b, repo, layer2).describe())
    rc, out, err = cli(c, a, "quota", "remove", repo)
    t.check(rc == 0, "quota remove: %d %s" % (rc, err))


def curl_h2_status(region, path):
    """(status, Retry-After) of GET path over HTTP/2 (prior knowledge) with curl; None when
    curl is missing or cannot speak it."""
    if shutil.which("curl") is None or region.url.startswith("https"):
        return None
    user, pw = c_admin(region)
    p = subprocess.run(["curl", "-s", "-i", "--http2-prior-knowledge", "-u", "%s:%s" % (user, pw),
                        region.url + path], capture_output=True, timeout=20)
    if p.returncode != 0:
        return None
    lines = p.stdout.split(b"\r\n")
    if not lines or not lines[0].startswith(b"HTTP/2"):
        return None
    status = int(lines[0].split()[1])
    retry = None
    for line in lines[1:]:
        if line.lower().startswith(b"retry-after:"):
            retry = int(line.split(b":", 1)[1])
    return status, retry


def c_admin(region):
    return region.cluster.admin.user, region.cluster.admin.password


def throttling(results, c):
    t = results
    a, b, _ = c.regions
    rc, out, err = cli(c, a, "throttle", "set", "default", "--reads-per-minute", "30")
    t.require(rc == 0, "throttle set: rc %d %s" % (rc, err))
    t.require(wait_for(lambda: throttle_reads(b, "default") == 30, REPLICATE_LIMIT),
              "the throttle did not reach the other region")
    limited = None
    with b.client(timeout=30) as cl:
        for _ in range(200):
            r = cl.get("/v2/")
            if r.status != 200:
                limited = r
                break
    if limited is None:  # what the region believed: its settings and its bucket count
        with b.client(timeout=10) as cl:
            st = cl.get("/admin/throttles")
            m = cl.get("/metrics")
        lines = [ln for ln in m.body.decode("utf-8", "replace").splitlines()
                 if ln.startswith(("portolan_throttle", "portolan_throttled"))]
        t.require(False, "no 429 after 200 reads at 30 per minute (%s says %s; %s)"
                  % (b.name, st.body[:300], "; ".join(lines)))
    t.eq(limited.status, 429, "over the limit: %s" % limited.describe())
    t.check("TOOMANYREQUESTS" in limited.error_codes(), "code: %s" % limited.describe())
    retry = limited.headers.get("Retry-After")
    t.require(retry is not None and retry.isdigit() and 1 <= int(retry) <= 60,
              "Retry-After: %r" % retry)
    h2 = None
    for _ in range(60):  # a token may have come back since: until HTTP/2 meets the limit too
        h2 = curl_h2_status(b, "/v2/")
        if h2 is None or h2[0] != 200:
            break
    if h2 is not None:
        t.eq(h2[0], 429, "HTTP/2 over the limit")
        t.check(h2[1] is not None and h2[1] >= 1, "HTTP/2 Retry-After: %r" % (h2[1],))
        retry = str(max(int(retry), h2[1] or 0))
    time.sleep(int(retry))
    with b.client(timeout=30) as cl:
        r = cl.get("/v2/")
    t.eq(r.status, 200, "after Retry-After seconds: %s" % r.describe())
    rc, out, err = cli(c, b, "throttle", "list")
    t.check(rc == 0 and "default" in out, "throttle list: %d %s %s" % (rc, out, err))
    rc, out, err = cli(c, a, "throttle", "remove", "default")
    t.check(rc == 0, "throttle remove: %d %s" % (rc, err))
    t.check(wait_for(lambda: seen(b, "/admin/throttles", b'"throttles":[]'), REPLICATE_LIMIT),
            "the throttle's removal did not reach the other region")
    with b.client(timeout=30) as cl:
        codes = {cl.get("/v2/").status for _ in range(40)}
    t.eq(codes, {200}, "reads after the removal")


def main(results):
    if results.target != "portolan":
        raise h.Skip("quotas and throttling are portolan-only")
    with cluster.Cluster(3, args=ARGS) as c:
        c.wait_leader()
        results.run("quota_across_regions", quota_across_regions, results, c)
        results.run("throttling", throttling, results, c)
