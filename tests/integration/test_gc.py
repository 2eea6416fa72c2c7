"""Garbage collection of blobs across regions (node/http/gc.c, node/store/metastore_gc.c).

Role: checks from outside, against three real `portolan serve` processes (tests/lib/cluster.py,
every region started with a short --gc-grace and no schedule, --gc-interval 0), what online
garbage collection promises:
  - collect_everywhere: three images pushed to three regions and replicated, and an untagged
    referrer of one of them; that image's manifest deleted; a dry run (POST
    /admin/gc?dry_run=true) reports exactly its blobs and the one referrer and removes
    nothing; a pass started at a follower deletes the referrer (404 everywhere) and collects
    exactly the image's and the referrer's blobs:
    their files are gone from every region's store, the other images pull byte-identical from
    every region, a manifest PUT naming a collected blob is refused with MANIFEST_BLOB_UNKNOWN,
    the gc series are on /metrics, and the regions' state digests agree;
  - racing_pushes: pushes, retags and deletes in all three regions at once while passes run
    again and again; afterwards every image whose manifest PUT was acknowledged and that was
    not deleted pulls byte-identical from every region, and once a last pass and the local
    sweeps ran, each region's blob files are exactly the blobs the remaining images reference;
  - index_children: on one node, two image indexes sharing a child; while an index exists its
    untagged children stay through a pass; once it is deleted, the next pass after the grace
    deletes the child no other index names (404, children_deleted 1) and collects its blobs
    (files gone), and the shared child and the other index's child still pull byte-identical;
  - mounts_racing_collection: on one node, cross-repository mounts of garbage blobs sent
    while a pass collects them: every answer is 201 (mounted: the blob then stays and reads
    byte-identical from the target) or 202 (an upload session, as the spec allows when a
    blob cannot be mounted), never a 404 or another error;
  - kill_during_collection: a region is killed with SIGKILL right after it started a pass
    over many garbage blobs, then restarted; a new pass completes, every garbage blob's file
    is gone from every region, the kept image pulls byte-identical everywhere, and the state
    digests agree.
Timing assumptions are limits (seconds), not targets, with headroom for a loaded 2-core box.
"""

import hashlib
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from blobrep import (  # noqa: E402
    ERRORS, image_blobs, make_image, metrics, note, push_image, wait_on_disk)
import cluster  # noqa: E402
import harness as h  # noqa: E402

TIMEOUT = 300
GRACE = "1s"
GRACE_S = 1.0
ARGS = ["--gc-grace", GRACE, "--gc-interval", "0"]
REPLICATE_LIMIT = 60
PASS_LIMIT = 60
FILES_LIMIT = 60
LAYER = 32 << 10
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wait_for(pred, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def gc_status(region):
    try:
        with region.client(timeout=10) as cl:
            r = cl.get("/admin/gc")
    except ERRORS:
        return None
    return r.json() if r.status == 200 else None


def gc_run(region, dry_run=False, timeout=PASS_LIMIT):
    """Starts a pass at region and waits for its end; returns its final status (None if the
    region never answered) and the POST's status code."""
    path = "/admin/gc" + ("?dry_run=true" if dry_run else "")
    try:
        with region.client(timeout=10) as cl:
            r = cl.request("POST", path)
    except ERRORS:
        return None, None
    if r.status != 202:
        return None, r.status
    st = wait_for(lambda: (lambda s: s if s is not None and not s["running"] else None)(
        gc_status(region)), timeout)
    return st, r.status


def files_on_disk(region):
    """Digests of every blob file in region's store."""
    out = set()
    root = os.path.join(region.data_dir, "blobs")
    for algo in ("sha256", "sha512"):
        base = os.path.join(root, algo)
        if not os.path.isdir(base):
            continue
        for sub in os.listdir(base):
            for name in os.listdir(os.path.join(base, sub)):
                out.add("%s:%s" % (algo, name))
    return out


def pulls_identical(region, repo, ref, img):
    """'' when region serves img under ref byte-identical (manifest and every blob), else why."""
    try:
        with region.client(timeout=30) as cl:
            r = cl.get_manifest(repo, ref)
            if r.status != 200 or r.body != img.manifest:
                return "manifest %s:%s: %s" % (repo, ref, r.describe())
            for b in img.blobs():
                r = cl.get("/v2/%s/blobs/%s" % (repo, b.digest))
                if r.status != 200:
                    return "blob %s: %s" % (b.digest[:19], r.describe())
                if "sha256:" + hashlib.sha256(r.body).hexdigest() != b.digest:
                    return "blob %s: other bytes" % b.digest[:19]
    except ERRORS as e:
        return "%s: %s" % (region.name, e)
    return ""


def delete_manifest(region, repo, digest):
    with region.client(timeout=30) as cl:
        return cl.delete("/v2/%s/manifests/%s" % (repo, digest)).status


def converged(t, c):
    ok = c.wait_converged(timeout=30)
    t.check(ok, "state digests of the regions differ: %s" % c.digests())


# -- 1. what is garbage goes, everywhere -----------------------------------------------------


def collect_everywhere(results):
    t = results
    with cluster.Cluster(3, args=ARGS) as c:
        c.wait_leader()
        repo = h.unique_repo("gc")
        imgs = [make_image(2, LAYER) for _ in range(3)]
        for r, img, tag in zip(c.regions, imgs, ("a", "b", "c")):
            push_image(r, repo, tag, img)
        every = [bl for img in imgs for bl in image_blobs(img)]
        missing = wait_on_disk(c.regions, every, REPLICATE_LIMIT)
        t.require(not missing, "blobs not replicated everywhere: %s" % missing)
        doomed = imgs[1]
        # an untagged referrer (a signature) of the image to delete: it goes with its subject
        sig_layer, sig_config = os.urandom(3000), b"{}"
        with c.regions[1].client(timeout=30) as cl:
            for data in (sig_layer, sig_config):
                cl.push_blob(repo, data)
            sig = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.example.sig",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                           "digest": sha(sig_config), "size": len(sig_config)},
                "layers": [{"mediaType": "application/octet-stream", "digest": sha(sig_layer),
                            "size": len(sig_layer)}],
                "subject": {"mediaType": doomed.media_type, "digest": doomed.digest,
                            "size": len(doomed.manifest)}}).encode()
            r = cl.put_manifest(repo, sha(sig), sig, OCI_MANIFEST)
            t.eq(r.status, 201, "PUT referrer: %s" % r.describe())
        t.require(not wait_on_disk(c.regions, [(sha(sig_layer), len(sig_layer))],
                                   REPLICATE_LIMIT), "referrer blob not replicated")
        t.eq(delete_manifest(c.regions[0], repo, doomed.digest), 202, "DELETE manifest")
        time.sleep(GRACE_S + 0.5)
        lead = c.wait_leader()
        follower = [r for r in c.regions if r is not lead][0]
        want = sorted([d for d, _ in image_blobs(doomed)] + [sha(sig_layer), sha(sig_config)])

        with follower.client(timeout=10) as cl:
            r = cl.request("POST", "/admin/gc?dry_run=maybe")
        t.eq(r.status, 400, "POST /admin/gc?dry_run=maybe: %s" % r.describe())
        t.check("INVALID" in r.error_codes(), "a malformed dry_run: %s" % r.describe())
        st, code = gc_run(follower, dry_run=True)
        if t.check(st is not None, "dry run at %s: POST %s, no final status" % (follower.name,
                                                                                 code)):
            # a dry run deletes no referrer, so it does not count the referrer's blobs
            t.eq(sorted(b["digest"] for b in st["blobs"]),
                 sorted(d for d, _ in image_blobs(doomed)), "dry run: blobs it would remove")
            t.eq(st["bytes_reclaimed"], sum(n for _, n in image_blobs(doomed)), "dry run bytes")
            t.eq(st["referrers_deleted"], 1, "dry run: referrers it would delete")
        for r in c.regions:
            t.check(set(want) <= files_on_disk(r), "dry run removed files at %s" % r.name)

        st, code = gc_run(follower)
        if t.check(st is not None, "pass at %s: POST %s, no final status" % (follower.name, code)):
            t.eq(st["error"], "", "pass error")
            t.eq(sorted(b["digest"] for b in st["blobs"]), want, "collected blobs")
            t.eq(st["referrers_deleted"], 1, "referrers deleted")
        for r in c.regions:
            with r.client(timeout=30) as cl:
                t.eq(cl.get_manifest(repo, sha(sig)).status, 404,
                     "referrer of the deleted image at %s" % r.name)
        gone = wait_for(lambda: all(not (set(want) & files_on_disk(r)) for r in c.regions),
                        FILES_LIMIT)
        t.check(gone, "collected blob files still on disk: %s" % {
            r.name: sorted(set(want) & files_on_disk(r)) for r in c.regions})
        for r in c.regions:
            for img, tag in ((imgs[0], "a"), (imgs[2], "c")):
                why = pulls_identical(r, repo, tag, img)
                t.check(not why, "pull %s:%s at %s after gc: %s" % (repo, tag, r.name, why))
        with c.regions[2].client(timeout=30) as cl:
            r = cl.put_manifest(repo, "again", doomed.manifest, doomed.media_type)
        t.check(r.status == 400 and "MANIFEST_BLOB_UNKNOWN" in r.error_codes(),
                "manifest PUT naming collected blobs: %s" % r.describe())
        m = metrics(follower) or {}
        for series in ("portolan_gc_last_run_timestamp_seconds",
                       "portolan_gc_blobs_collected_total", "portolan_gc_bytes_reclaimed_total",
                       "portolan_gc_duration_seconds"):
            t.check(series in m, "%s missing from /metrics" % series)
        t.check(m.get("portolan_gc_blobs_collected_total", 0) >= len(want),
                "portolan_gc_blobs_collected_total at %s: %s" % (
                    follower.name, m.get("portolan_gc_blobs_collected_total")))
        converged(t, c)


# -- 2. collection racing pushes, retags and deletes -----------------------------------------


def racing_pushes(results):
    t = results
    with cluster.Cluster(3, args=ARGS) as c:
        lead = c.wait_leader()
        repo = h.unique_repo("gcrace")
        lock = threading.Lock()
        acked = {}  # tag -> image (live)
        deleted = set()
        errors = []
        stop = threading.Event()

        def pusher(r, k):
            n = 0
            while not stop.is_set() and n < 8:
                img = make_image(2, LAYER)
                tag = "%s-%d" % (r.name, n)
                n += 1
                for _attempt in range(5):
                    try:
                        push_image(r, repo, tag, img)
                    except AssertionError:
                        continue  # a blob collected before its manifest came: push again
                    except ERRORS as e:
                        errors.append("%s: %s" % (tag, e))
                        break
                    with lock:
                        acked[tag] = img
                    break
                try:
                    with r.client(timeout=30) as cl:
                        if n % 3 == 0:  # retag
                            rr = cl.put_manifest(repo, tag + "-re", img.manifest, img.media_type)
                            if rr.status == 201:
                                with lock:
                                    acked[tag + "-re"] = img
                        if n % 4 == 0 and tag in acked:  # delete it (every tag goes)
                            if delete_manifest(r, repo, img.digest) == 202:
                                with lock:
                                    for k2 in [k2 for k2, v in acked.items() if v is img]:
                                        del acked[k2]
                                        deleted.add(k2)
                except ERRORS as e:
                    errors.append("%s: %s" % (tag, e))

        threads = [threading.Thread(target=pusher, args=(r, i)) for i, r in enumerate(c.regions)]
        for th in threads:
            th.start()
        passes = 0
        while any(th.is_alive() for th in threads):
            st, code = gc_run(c.regions[passes % 3], timeout=PASS_LIMIT)
            passes += st is not None
            time.sleep(0.2)
        for th in threads:
            th.join()
        stop.set()
        t.check(not errors, "push errors: %s" % errors[:5])
        t.check(passes >= 1, "no pass completed while pushing")
        live = dict(acked)
        for tag, img in sorted(live.items()):
            for r in c.regions:
                why = wait_for(lambda: not pulls_identical(r, repo, tag, img), REPLICATE_LIMIT,
                               interval=0.5)
                t.check(why, "acknowledged %s not pullable at %s: %s" % (
                    tag, r.name, pulls_identical(r, repo, tag, img)))
        # the last pass after the grace; then the files are exactly the referenced blobs
        time.sleep(GRACE_S + 0.5)
        st, _ = gc_run(lead)
        t.check(st is not None and st["error"] == "", "last pass: %s" % st)
        want = {d for img in live.values() for d, _ in image_blobs(img)}
        same = wait_for(lambda: all(files_on_disk(r) == want for r in c.regions), FILES_LIMIT,
                        interval=0.5)
        t.check(same, "blob files are not the referenced blobs: %s" % {
            r.name: {"extra": len(files_on_disk(r) - want), "missing": len(want - files_on_disk(r))}
            for r in c.regions})
        converged(t, c)
        note(results, "%d images live, %d tags deleted, %d passes while pushing" % (
            len(set(id(v) for v in live.values())), len(deleted), passes))


# -- 3. children of a deleted index ----------------------------------------------------------


def index_children(results):
    t = results
    with h.Node(args=ARGS) as n:
        n.name = "node"
        repo = h.unique_repo("gcidx")
        kids = [make_image(1, 4 << 10) for _ in range(3)]
        for k in kids:
            push_image(n, repo, k.digest, k)  # by digest: untagged

        def index(children):
            return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"mediaType": k.media_type, "digest": k.digest, "size": len(k.manifest),
                 "platform": {"architecture": arch, "os": "linux"}}
                for k, arch in zip(children, ("amd64", "arm64"))]}).encode()

        multi, other = index(kids[:2]), index(kids[1:])  # kids[1] is in both
        with n.client(timeout=30) as cl:
            for tag, body in (("multi", multi), ("other", other)):
                r = cl.put_manifest(repo, tag, body, OCI_INDEX)
                t.eq(r.status, 201, "PUT index %s: %s" % (tag, r.describe()))
        time.sleep(GRACE_S + 0.5)
        st, code = gc_run(n)
        t.require(st is not None and st["error"] == "", "pass: %s %s" % (code, st))
        t.eq(st["children_deleted"], 0, "children deleted while their indexes exist")
        for k in kids:
            why = pulls_identical(n, repo, k.digest, k)
            t.check(not why, "child while its index exists: %s" % why)

        t.eq(delete_manifest(n, repo, sha(multi)), 202, "DELETE index")
        time.sleep(GRACE_S + 0.5)
        st, code = gc_run(n)
        t.require(st is not None and st["error"] == "", "pass: %s %s" % (code, st))
        t.eq(st["children_deleted"], 1, "children deleted")
        with n.client(timeout=30) as cl:
            t.eq(cl.get_manifest(repo, kids[0].digest).status, 404, "orphan child")
        doomed = {d for d, _ in image_blobs(kids[0])}
        t.check(doomed <= {b["digest"] for b in st["blobs"]},
                "the orphan child's blobs are not collected: %s" % st["blobs"])
        t.check(wait_for(lambda: not (doomed & files_on_disk(n)), FILES_LIMIT),
                "the orphan child's blob files are still on disk")
        for k in kids[1:]:
            why = pulls_identical(n, repo, k.digest, k)
            t.check(not why, "child of the remaining index: %s" % why)


def mounts_racing_collection(results):
    t = results
    with h.Node(args=ARGS) as n:
        src, dst = h.unique_repo("gcmsrc"), h.unique_repo("gcmdst")
        blobs = [os.urandom(256) for _ in range(240)]
        with n.client(timeout=30) as cl:
            for data in blobs:
                cl.push_blob(src, data)
        time.sleep(GRACE_S + 0.5)  # garbage: linked to src only, referenced by nothing
        answers = {}

        def mount(part):
            with n.client(timeout=30) as cl:
                for data in part:
                    r = cl.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (
                        dst, sha(data), src), {"Content-Length": "0"})
                    answers[sha(data)] = (r.status, r.describe())

        threads = [threading.Thread(target=mount, args=(blobs[i::3],)) for i in range(3)]
        with n.client(timeout=10) as cl:
            t.eq(cl.request("POST", "/admin/gc").status, 202, "POST /admin/gc")
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        st = wait_for(lambda: (lambda s: s if s is not None and not s["running"] else None)(
            gc_status(n)), PASS_LIMIT)
        t.check(st is not None and st["error"] == "", "pass: %s" % st)
        bad = {d: a for d, (c, a) in answers.items() if c not in (201, 202)}
        t.check(not bad, "mount answers other than 201/202: %s" % list(bad.values())[:3])
        mounted = [data for data in blobs if answers.get(sha(data), (0,))[0] == 201]
        with n.client(timeout=30) as cl:
            for data in mounted:
                r = cl.get("/v2/%s/blobs/%s" % (dst, sha(data)))
                t.check(r.status == 200 and r.body == data,
                        "mounted blob %s: %s" % (sha(data)[:19], r.describe()))
        note(results, "%d mounted, %d answered with a session" % (
            len(mounted), sum(1 for c, _ in answers.values() if c == 202)))


# -- 4. SIGKILL in the middle of a collection ------------------------------------------------


def kill_during_collection(results):
    t = results
    with cluster.Cluster(3, args=ARGS) as c:
        c.wait_leader()
        repo = h.unique_repo("gckill")
        keep = make_image(2, LAYER)
        push_image(c.regions[0], repo, "keep", keep)
        doomed = [make_image(6, 4 << 10) for _ in range(6)]
        for i, img in enumerate(doomed):
            push_image(c.regions[i % 3], repo, "d%d" % i, img)
        every = [bl for img in doomed + [keep] for bl in image_blobs(img)]
        t.require(not wait_on_disk(c.regions, every, REPLICATE_LIMIT), "not replicated")
        for img in doomed:
            t.eq(delete_manifest(c.regions[1], repo, img.digest), 202, "DELETE manifest")
        time.sleep(GRACE_S + 0.5)
        victim = c.regions[2]
        with victim.client(timeout=10) as cl:
            cl.request("POST", "/admin/gc")
        time.sleep(0.05)
        c.kill9(victim)
        c.restart(victim)
        c.wait_leader()
        st, code = gc_run(victim)
        t.check(st is not None and st["error"] == "", "pass after the restart: %s %s" % (code, st))
        garbage = {d for img in doomed for d, _ in image_blobs(img)}
        gone = wait_for(lambda: all(not (garbage & files_on_disk(r)) for r in c.regions),
                        FILES_LIMIT, interval=0.5)
        t.check(gone, "garbage files left: %s" % {
            r.name: len(garbage & files_on_disk(r)) for r in c.regions})
        for r in c.regions:
            why = pulls_identical(r, repo, "keep", keep)
            t.check(not why, "pull keep at %s after the kill: %s" % (r.name, why))
        converged(t, c)


def main(results):
    if results.target != "portolan":
        raise h.Skip("garbage collection across regions is portolan-only")
    for name, fn in (("collect_everywhere", collect_everywhere),
                     ("racing_pushes", racing_pushes),
                     ("index_children", index_children),
                     ("mounts_racing_collection", mounts_racing_collection),
                     ("kill_during_collection", kill_during_collection)):
        results.run(name, fn, results)
