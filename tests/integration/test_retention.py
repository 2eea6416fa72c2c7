"""Retention rules (node/store/metastore_policy.c, node/http/retention.c, node/cli/retention.c).

Role: checks from outside, against three real `portolan serve` processes (tests/lib/cluster.py,
--retention-interval 0: runs on demand only), what a retention rule promises:
  - keep_last_and_untagged: repository P/app holds tags t0..t5 (pushed in that order), two old
    untagged manifests, an old untagged manifest locked for deletes, an old untagged manifest
    that an index tagged "idx" names as its child, and a young untagged manifest; t1 is locked
    for deletes. The rule `retention add 'P/*' --untagged-older-than 4s --keep-last 2 --tags
    't*'`: a dry run (from a follower) lists exactly t0, t2, t3 and the manifests they named
    plus the old free untagged one, and deletes nothing; the real run deletes exactly what the
    dry run listed; in every region the deleted tags and manifests answer 404 and everything
    else (t1 and its manifest, t4, t5, the locked, the child and the young manifests, the
    index) is still served; `portolan retention run --dry-run` then finds nothing; the
    retention series are on /metrics; `retention list|remove` work; state digests agree.
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from blobrep import cli, make_image, metrics, push_image  # noqa: E402
import cluster  # noqa: E402
import harness as h  # noqa: E402

TIMEOUT = 150
AGE_S = 4
LAYER = 1024
RUN_LIMIT = 30
INDEX = "application/vnd.oci.image.index.v1+json"


def wait_for(pred, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def run(region, dry):
    """Starts a retention run at region and returns its final status document (or None)."""
    with region.client(timeout=10) as cl:
        r = cl.request("POST", "/admin/retention/run" + ("?dry_run=true" if dry else ""))
    if r.status != 202:
        return None

    def done():
        with region.client(timeout=10) as cl:
            st = cl.get("/admin/retention/run")
        return st.json() if st.status == 200 and not st.json()["running"] else None
    return wait_for(done, RUN_LIMIT)


def items(st):
    return (sorted((x["repo"], x["tag"], x["digest"]) for x in st["tags"]),
            sorted((x["repo"], x["digest"]) for x in st["manifests"]))


def put_untagged(region, repo, img):
    with region.client(timeout=30) as cl:
        for b in img.blobs():
            cl.push_blob(repo, b.data)
        r = cl.put_manifest(repo, img.digest, img.manifest, img.media_type)
    if r.status != 201:
        raise AssertionError("PUT %s: %s" % (img.digest, r.describe()))


def status(region, repo, ref):
    with region.client(timeout=30) as cl:
        return cl.get_manifest(repo, ref).status


def keep_last_and_untagged(t, c):
    a, b, cc = c.regions
    lead = c.wait_leader()
    follower = [r for r in c.regions if r is not lead][0]
    prefix = h.unique_repo("ret")
    repo = prefix + "/app"
    tagged = [make_image(1, LAYER) for _ in range(6)]
    for i, img in enumerate(tagged):
        push_image(c.regions[i % 3], repo, "t%d" % i, img)
    free1, locked, child, young = (make_image(1, LAYER) for _ in range(4))
    for img in (free1, locked, child):
        put_untagged(b, repo, img)
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": child.media_type, "digest": child.digest,
         "size": len(child.manifest)}]}).encode()
    with cc.client(timeout=30) as cl:
        r = cl.put_manifest(repo, "idx", index, INDEX)
    t.require(r.status == 201, "PUT index: %s" % r.describe())
    for ref in ("%s:t1" % repo, "%s@%s" % (repo, locked.digest)):
        rc, out, err = cli(c, "repo", "lock", ref, "--no-delete", "--region", a.url)
        t.require(rc == 0, "repo lock %s: %s %s" % (ref, out, err))
    rc, out, err = cli(c, "retention", "add", prefix + "/*", "--untagged-older-than",
                       "%ds" % AGE_S, "--keep-last", "2", "--tags", "t*", "--region", cc.url)
    t.require(rc == 0, "retention add: %s %s" % (out, err))
    rc, out, err = cli(c, "retention", "list", "--region", a.url)
    t.check(rc == 0 and prefix + "/*" in out and "t*" in out, "retention list: %s %s" % (
        out, err))
    time.sleep(AGE_S + 0.5)
    put_untagged(a, repo, young)

    want_tags = sorted((repo, "t%d" % i, tagged[i].digest) for i in (0, 2, 3))
    want_mans = sorted([(repo, tagged[i].digest) for i in (0, 2, 3)] + [(repo, free1.digest)])
    dry = run(follower, True)
    t.require(dry is not None and dry["error"] == "", "dry run: %s" % dry)
    t.eq(items(dry), (want_tags, want_mans), "what the dry run lists")
    for i in (0, 2, 3):
        t.eq(status(a, repo, "t%d" % i), 200, "t%d after the dry run" % i)
    real = run(follower, False)
    t.require(real is not None and real["error"] == "", "run: %s" % real)
    t.eq(items(real), items(dry), "what the run deleted, against the dry run")
    t.eq((real["tags_deleted"], real["manifests_deleted"]), (3, 4), "counts of the run")
    c.wait_converged(timeout=30)
    for r in c.regions:
        for i in (0, 2, 3):
            t.eq(status(r, repo, "t%d" % i), 404, "deleted tag t%d at %s" % (i, r.name))
            t.eq(status(r, repo, tagged[i].digest), 404, "its manifest at %s" % r.name)
        t.eq(status(r, repo, free1.digest), 404, "old untagged manifest at %s" % r.name)
        for ref in ("t1", "t4", "t5", "idx", tagged[1].digest, locked.digest, child.digest,
                    young.digest):
            t.eq(status(r, repo, ref), 200, "%s kept at %s" % (ref[:20], r.name))
    rc, out, err = cli(c, "retention", "run", "--dry-run", "--region", a.url)
    t.check(rc == 0 and "0 tags, 0 manifests" in out, "dry run after the run: %s %s" % (out, err))
    m = metrics(follower)
    t.check(m.get("portolan_retention_tags_deleted_total", 0) >= 3 and
            m.get("portolan_retention_manifests_deleted_total", 0) >= 4,
            "retention metrics: %s" % {k: v for k, v in m.items() if "retention" in k})
    rc, out, err = cli(c, "retention", "remove", prefix + "/*", "--region", b.url)
    t.eq(rc, 0, "retention remove: %s" % err)
    rc, out, err = cli(c, "repo", "show", repo, "--region", b.url)
    t.check(rc == 0 and "retention rules: none" in out and "deletes LOCKED" in out,
            "repo show: %s %s" % (out, err))


def main(results):
    if results.target != "portolan":
        raise h.Skip("retention rules are portolan-only")
    with cluster.Cluster(3, args=["--retention-interval", "0"]) as c:
        c.wait_leader()
        results.run("keep_last_and_untagged", keep_last_and_untagged, results, c)
        ok = c.wait_converged(timeout=30)
        results.check(ok, "state digests of the regions differ: %s" % c.digests())
