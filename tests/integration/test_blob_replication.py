"""Blob replication between regions: every region converges to holding every blob, a region
that lacks a blob streams it to its clients as it arrives, and the admin API tells per region
and per image how far replication is. Transfers under faults (cut links, kill -9, a byte
corrupted on the wire) are tests/integration/test_blob_faults.py.

Role: checks from outside, against three real `portolan serve` processes started by
tests/lib/cluster.py with every region-to-region connection through the WAN emulator
(tests/lib/wan.py, 20 ms one way), what the blob replication of the cluster promises:
  - replicate_everywhere: a 5-layer image (3 MiB layers of random bytes, config) pushed to
    region-a is, within REPLICATE_LIMIT seconds, in every region's blob store at
    <data dir>/blobs/sha256/<2 hex>/<64 hex> with the right SHA-256 (the file is hashed);
    /admin/replication/image (asked in every region) lists every region as complete and none
    missing, with the manifest's blobs and sizes; /admin/replication of every region says
    in_sync with nothing behind and nothing active; the receiving regions' counters
    (bytes_received_total, blobs_fetched_total) grew by at least the image, and the blob
    bytes crossed the emulator (no region connects around it);
  - replication_metrics: every series of the spec is on every region's /metrics, and
    portolan_replication_bytes_received_total grew by at least the image in the two regions
    that fetched it; `portolan replication status` (the whole cluster, and one image) answers
    with every region;
  - pull_while_replicating: with the links into region-c capped at SLOW_INTO_C, skopeo pulls
    the image from region-c right after its push to region-a (the client talks to region-c
    only): byte-identical manifest and blobs although region-c lacked some of them when the
    pull started, and no more bytes crossed into region-c than the image once (one transfer
    per digest, whatever the readers); four threads GET one blob region-c lacks at once and
    all get its exact bytes; Range GETs (one near the end, one at the start) of a blob still
    arriving answer 206 with the right Content-Range and bytes;
  - manifest_in_other_region: layers pushed to region-a, the manifest PUT to region-b by
    digest and then by tag (201 both, no retry: blob links are replicated metadata), and
    region-c serves the manifest (by tag and digest) and every blob byte-identical, and
    skopeo pulls it from there;
  - image_status: region-b and region-c started with --replication-bandwidth 1MiB, a
    config + 3 x 3 MiB image pushed to region-a: right after the push the per-image status
    (asked in all three regions) says complete == [region-a] and lists region-b and region-c
    as missing, with blob and byte counts that match the blobs it lists (every layer
    missing); while the transfers run, bytes arrive and the missing bytes only shrink; at the
    end complete lists all three regions and missing is empty; the transfers took at least
    80 % of the time the bandwidth limit allows (the limit holds); an unknown image or
    repository is a 404 with the OCI error code.
Figures (replication time, first-byte latency of a streamed blob, MB/s, bytes on the wire)
are printed with the runner's -v.

The helpers both modules use (content, pushing, looking at stores and status) are
tests/lib/blobrep.py.

Timing assumptions stated as numbers below (limits, not targets): they hold on a loaded
2-core machine with a few times headroom.
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from blobrep import (  # noqa: E402
    DELAY_MS, ERRORS, IO_TIMEOUT, METRICS_LAG, MIB, REPLICATE_LIMIT, SETTLE_LIMIT, WIRE_BOUND,
    check_alive, check_image_doc, check_in_sync, check_missing_consistent, cli, counters, evidence,
    get_blob, grew, image_blobs, image_status, make_image, mb, metrics, ms, note, push_blob,
    push_image, short, size_on_disk, status_text, wait_for, wait_head, wait_image_complete,
    wait_on_disk, wan_into, wrong_on_disk)
import cluster  # noqa: E402
import harness as h  # noqa: E402
import images  # noqa: E402

TIMEOUT = 420

IMAGE_LAYERS, IMAGE_LAYER = 5, 3 * MIB
PULL_LAYERS, PULL_LAYER = 4, 4 * MIB
SKOPEO_TIMEOUT = 120  # seconds one skopeo command may take
SLOW_INTO_C = 3e6  # bytes/s on each link into region-c while it must stream
STREAM_BLOB = 8 * MIB
STREAM_READERS = 4
STATUS_LAYERS, STATUS_LAYER = 3, 3 * MIB
STATUS_RATE, STATUS_RATE_MAX = "1MiB", float(MIB)  # --replication-bandwidth
STATUS_BURST = 1 * MIB  # a transfer's piece: what a bandwidth limiter may let through at once
SERIES = ("portolan_replication_bytes_received_total",
          "portolan_replication_bytes_sent_total",
          "portolan_replication_blobs_fetched_total",
          "portolan_replication_verify_failures_total",
          "portolan_replication_queue_blobs",
          "portolan_replication_behind_bytes",
          "portolan_replication_oldest_missing_seconds")


# -- 1. every region holds every blob -------------------------------------------------------


def replicate_everywhere(results):
    t = results
    with cluster.Cluster(3, wan_delay_ms=DELAY_MS) as c:
        lead = c.wait_leader()
        a, b, cc = c.regions
        names = [r.name for r in c.regions]
        before = {r.name: counters(r) for r in c.regions}
        t.require(all(before.values()), "GET /admin/replication before the push: %s" % {
            n: v for n, v in before.items() if v is None})
        m_before = {r.name: metrics(r) for r in c.regions}
        wan_before = {r.name: wan_into(c, r) for r in c.regions}

        img = make_image(IMAGE_LAYERS, IMAGE_LAYER)
        blobs = image_blobs(img)
        total = sum(n for _, n in blobs)
        repo = h.unique_repo("blobrep")
        t0 = time.monotonic()
        secs = push_image(a, repo, "v1", img)
        note(results, "pushed %d blobs (%s) to %s (%s) in %s" % (
            len(blobs), mb(total), a.name, "leader" if a is lead else "follower", ms(secs)))

        missing = wait_on_disk(c.regions, blobs, REPLICATE_LIMIT)
        t_disk = time.monotonic() - t0
        t.require(not missing, "not every blob in every region's store within %.0f s of the "
                  "push: missing %s; %s" % (REPLICATE_LIMIT, {
                      n: [d[:19] for d in ds] for n, ds in missing.items()}, evidence(c)))
        note(results, "every blob on disk in every region %.2f s after the push began "
             "(%s into each of 2 regions)" % (t_disk, mb(total)))
        bad = wrong_on_disk(c.regions, blobs)
        t.check(not bad, "blob files whose SHA-256 is not their name: %s" % bad[:5])

        pending = wait_image_complete(c.regions, repo, "v1", names, SETTLE_LIMIT)
        t.check(not pending, "/admin/replication/image %s:v1 not complete everywhere within "
                "%.0f s of the blobs being on disk: %s" % (repo, SETTLE_LIMIT, {
                    n: status_text(st) for n, st in pending.items()}))
        for r in c.regions:
            st = image_status(r, repo, "v1")
            if not t.check(st is not None, "/admin/replication/image at %s: no answer" % r.name):
                continue
            where = "/admin/replication/image %s:v1 at %s" % (repo, r.name)
            check_image_doc(t, st, repo, "v1", img, names, where)
            for bl in st.get("blobs") or []:
                t.eq(sorted(bl.get("regions") or []), names, "%s: regions of %s" % (
                    where, str(bl.get("digest"))[:19]))
            st2 = image_status(r, repo, img.digest)
            t.check(st2 is not None and sorted(st2.get("complete") or []) == names
                    and st2.get("digest") == img.digest,
                    "%s by digest: %s" % (where, status_text(st2)))
        check_in_sync(t, c, c.regions, "after the push")

        after = {r.name: counters(r) for r in c.regions}
        for r in (b, cc):
            got = grew(after[r.name], before[r.name], "bytes_received_total")
            t.check(got is not None and got >= total, "%s bytes_received_total grew by %r, "
                    "the image is %d bytes" % (r.name, got, total))
            got = grew(after[r.name], before[r.name], "blobs_fetched_total")
            t.check(got is not None and got >= len(blobs), "%s blobs_fetched_total grew by "
                    "%r, the image has %d blobs" % (r.name, got, len(blobs)))
        sent = [grew(after[r.name], before[r.name], "bytes_sent_total") for r in c.regions]
        t.check(None not in sent and sum(sent) >= 2 * total, "bytes_sent_total grew by %r "
                "over the regions; two regions fetched %d bytes each" % (sent, total))
        into = {r.name: wan_into(c, r) - wan_before[r.name] for r in c.regions}
        note(results, "bytes through the emulator into each region: %s" % {
            n: mb(v) for n, v in into.items()})
        for r in (b, cc):
            t.check(into[r.name] >= total, "only %d bytes crossed the emulator into %s, the "
                    "image is %d: blob traffic goes around it" % (into[r.name], r.name, total))
        direct = c.direct_connections()
        t.check(not direct, "region processes connected straight to other regions' raft "
                "ports: %s" % ["%s->%s" % (x.name, y.name) for x, y in direct])

        def replication_metrics():
            for r in c.regions:
                # /metrics may be refreshed a little after /admin/replication (a second).
                was = (m_before.get(r.name) or {}).get(SERIES[0], 0.0)
                m = wait_for(lambda: (lambda m: m if m is not None and (
                    r is a or (m.get(SERIES[0], 0.0) - was >= total
                               and m.get("portolan_replication_queue_blobs") == 0
                               and m.get("portolan_replication_behind_bytes") == 0))
                    else None)(metrics(r)), METRICS_LAG) or metrics(r)
                if not t.check(m is not None, "%s /metrics: no 200" % r.name):
                    continue
                absent = [s for s in SERIES if s not in m]
                t.check(not absent, "%s /metrics lacks %s" % (r.name, absent))
                if r is a:
                    continue
                t.check(m.get(SERIES[0], 0.0) - was >= total, "%s %s grew by %r, the image "
                        "is %d bytes" % (r.name, SERIES[0], m.get(SERIES[0], 0.0) - was, total))
                t.check(m.get("portolan_replication_queue_blobs") == 0
                        and m.get("portolan_replication_behind_bytes") == 0,
                        "%s in sync but queue_blobs %r behind_bytes %r" % (
                            r.name, m.get("portolan_replication_queue_blobs"),
                            m.get("portolan_replication_behind_bytes")))
            rc, out, err = cli(c, "replication", "status", "--region", b.url, "--json")
            if t.check(rc == 0, "portolan replication status --region %s --json: exit %s: %s"
                       % (b.name, rc, (err or out)[:300])):
                t.check(all(n in out for n in names), "portolan replication status names "
                        "not every region: %s" % out[:400])
                try:
                    json.loads(out)
                except ValueError:
                    t.check(False, "portolan replication status --json: not JSON: %s"
                            % out[:200])
            rc, out, err = cli(c, "replication", "status", "%s:v1" % repo, "--region", cc.url,
                               "--json")
            if t.check(rc == 0, "portolan replication status %s:v1 --json: exit %s: %s" % (
                    repo, rc, (err or out)[:300])):
                try:
                    doc = json.loads(out)
                except ValueError:
                    doc = None
                t.check(isinstance(doc, dict) and sorted(doc.get("complete") or []) == names
                        and doc.get("digest") == img.digest,
                        "portolan replication status %s:v1 --json: %s" % (
                            repo, status_text(doc) if isinstance(doc, dict) else out[:300]))
            rc, out, err = cli(c, "replication", "status", "--region", a.url)
            t.check(rc == 0 and all(n in out for n in names), "portolan replication status "
                    "(text): exit %s: %s" % (rc, (out or err)[:300]))

        results.run("replication_metrics", replication_metrics)
        check_alive(t, c)


# -- 2. a region streams blobs it lacks ------------------------------------------------------


def pull_while_replicating(results):
    t = results
    work = tempfile.mkdtemp(prefix="pt-blobrep-")
    try:
        with cluster.Cluster(3, wan_delay_ms=DELAY_MS) as c:
            c.wait_leader()
            a, b, cc = c.regions
            names = [r.name for r in c.regions]
            for src in (a, b):
                c.wan.link(src.name, cc.name).set_bandwidth(SLOW_INTO_C, "a2b")
            sk = images.Skopeo(os.path.join(work, "skopeo"), timeout=SKOPEO_TIMEOUT)
            repo = h.unique_repo("blobrep")

            img = make_image(PULL_LAYERS, PULL_LAYER)
            blobs = image_blobs(img)
            total = sum(n for _, n in blobs)
            wan0 = wan_into(c, cc)
            push_image(a, repo, "v1", img)
            lacking = [d for d, n in blobs if size_on_disk(cc, d) != n]
            out = sk.output_dir("pull")
            t0 = time.monotonic()
            p = sk.copy("docker://127.0.0.1:%d/%s:v1" % (cc.port, repo), "dir:" + out,
                        extra=c.skopeo_creds("src"), check=False)
            secs = time.monotonic() - t0
            t.require(p.returncode == 0, "skopeo copy from %s right after the push to %s: %s; "
                      "%s" % (cc.name, a.name, p.stderr.strip()[-600:], evidence(c, [cc])))
            note(results, "skopeo pulled %s from %s in %.2f s; %d of %d blobs were not in its "
                 "store when the pull began (links into it at %s/s)" % (
                     mb(total), cc.name, secs, len(lacking), len(blobs), mb(SLOW_INTO_C)))
            t.check(lacking, "%s held every blob before the pull began: nothing was streamed "
                    "(the links into it were not slow enough to test this)" % cc.name)
            got = images.read_dir_layout(out)
            t.check(got["manifest"] == img.manifest, "pulled manifest differs from the pushed")
            t.eq(sorted(got["blobs"]), sorted(d for d, _ in blobs), "pulled blobs")
            bad = [d for d, path in got["blobs"].items() if images.file_digest(path) != d]
            t.check(not bad, "pulled blob files whose digest differs: %s" % bad)
            missing = wait_on_disk([cc], blobs, REPLICATE_LIMIT)
            t.check(not missing, "%s store lacks %s %.0f s after the pull" % (
                cc.name, missing, REPLICATE_LIMIT))
            into = wan_into(c, cc) - wan0
            note(results, "%s crossed into %s for the %s image" % (mb(into), cc.name,
                                                                   mb(total)))
            t.check(into <= WIRE_BOUND * total + MIB, "%d bytes crossed into %s for an image "
                    "of %d: the pull fetched blobs again besides the background transfer"
                    % (into, cc.name, total))

            def concurrent_gets():
                data = os.urandom(STREAM_BLOB)
                digest = h.sha256_digest(data)
                push_blob(a, repo, data)
                r = wait_head(cc, repo, digest, len(data))
                t.require(r.status == 200, "HEAD of the new blob at %s: %s" % (
                    cc.name, r.describe()))
                lacked = size_on_disk(cc, digest) is None
                outs = [None] * STREAM_READERS

                def reader(i):
                    try:
                        outs[i] = get_blob(cc, repo, digest)
                    except ERRORS as e:
                        outs[i] = e
                threads = [threading.Thread(target=reader, args=(i,))
                           for i in range(STREAM_READERS)]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join(IO_TIMEOUT + 10)
                firsts = []
                for i, o in enumerate(outs):
                    if not t.check(isinstance(o, tuple), "reader %d: %r" % (i, o)):
                        continue
                    status, hd, body, first, total_s = o
                    t.check(status == 200 and body == data, "reader %d: %d, %d bytes, %s" % (
                        i, status, len(body), "identical" if body == data else "different"))
                    t.eq(hd.get("Docker-Content-Digest"), digest, "reader %d digest header" % i)
                    if first is not None:
                        firsts.append(first)
                note(results, "%d concurrent GETs of a %s blob %s lacked: first byte after "
                     "%s, done after %s" % (
                         STREAM_READERS, mb(len(data)), cc.name,
                         "/".join(ms(x) for x in sorted(firsts)),
                         "/".join(ms(o[4]) for o in outs if isinstance(o, tuple))))
                t.check(lacked, "%s held the blob before the GETs: nothing was streamed"
                        % cc.name)

            def range_on_arriving_blob():
                src = os.urandom(STREAM_BLOB)
                digest = h.sha256_digest(src)
                push_blob(a, repo, src)
                r = wait_head(cc, repo, digest, len(src))
                t.require(r.status == 200, "HEAD of the new blob at %s: %s" % (
                    cc.name, r.describe()))
                lacked = size_on_disk(cc, digest) is None
                size = len(src)
                for start, end in ((size - 2 * MIB, size - MIB - 1), (0, 1023),
                                   (size - 1000, size - 1)):
                    status, hd, body, _first, secs = get_blob(
                        cc, repo, digest, {"Range": "bytes=%d-%d" % (start, end)})
                    what = "Range bytes=%d-%d of a blob arriving at %s" % (start, end, cc.name)
                    t.check(status == 206, "%s: status %d" % (what, status))
                    t.eq(hd.get("Content-Range"), "bytes %d-%d/%d" % (start, end, size),
                         what + ": Content-Range")
                    t.check(body == src[start:end + 1], "%s: %d bytes, %s" % (
                        what, len(body), "right" if body == src[start:end + 1] else "wrong"))
                    note(results, "%s: %d in %s" % (what, status, ms(secs)))
                t.check(lacked, "%s held the blob before the Range GETs" % cc.name)

            results.run("concurrent_gets_of_missing_blob", concurrent_gets)
            results.run("range_get_of_arriving_blob", range_on_arriving_blob)
            c.wan.set_bandwidth(None)
            missing = wait_on_disk(c.regions, blobs, REPLICATE_LIMIT)
            t.check(not missing, "blobs not everywhere %.0f s after the links sped up: %s" % (
                REPLICATE_LIMIT, missing))
            pending = wait_image_complete(c.regions, repo, "v1", names, SETTLE_LIMIT)
            t.check(not pending, "image not complete everywhere at the end: %s" % {
                n: status_text(st) for n, st in pending.items()})
            check_in_sync(t, c, c.regions, "at the end")
            check_alive(t, c)
    finally:
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)


# -- 5. manifest in another region than its layers ------------------------------------------


def manifest_in_other_region(results):
    t = results
    work = tempfile.mkdtemp(prefix="pt-blobrep-")
    try:
        with cluster.Cluster(3, wan_delay_ms=DELAY_MS) as c:
            c.wait_leader()
            a, b, cc = c.regions
            names = [r.name for r in c.regions]
            repo = h.unique_repo("blobrep")
            img = make_image(3, 2 * MIB)
            with a.client(timeout=IO_TIMEOUT) as cl:
                for bl in img.blobs():
                    cl.push_blob(repo, bl.data)
            with b.client() as cl:
                r = cl.put_manifest(repo, img.digest, img.manifest, img.media_type)
                t.check(r.status == 201 and r.headers.get("Docker-Content-Digest")
                        == img.digest, "PUT manifest by digest at %s, layers pushed to %s: %s"
                        % (b.name, a.name, r.describe()))
                r = cl.put_manifest(repo, "v1", img.manifest, img.media_type)
                t.require(r.status == 201, "PUT manifest by tag at %s: %s" % (
                    b.name, r.describe()))
            with cc.client(timeout=IO_TIMEOUT) as cl:
                for ref in ("v1", img.digest):
                    r = cl.get_manifest(repo, ref)
                    t.check(r.status == 200 and r.body == img.manifest,
                            "GET manifest %s at %s: %s" % (ref[:19], cc.name, r.describe(60)))
                for bl in img.blobs():
                    r = cl.get("/v2/%s/blobs/%s" % (repo, bl.digest))
                    t.check(r.status == 200 and r.body == bl.data, "GET blob %s at %s: %d, "
                            "%d bytes" % (bl.digest[:19], cc.name, r.status, len(r.body)))
            sk = images.Skopeo(os.path.join(work, "skopeo"), timeout=SKOPEO_TIMEOUT)
            for ref, sep in (("v1", ":"), (img.digest, "@")):
                out = sk.output_dir("pull-%s" % ref.replace(":", "-"))
                p = sk.copy("docker://127.0.0.1:%d/%s%s%s" % (cc.port, repo, sep, ref),
                            "dir:" + out, extra=c.skopeo_creds("src"), check=False)
                if not t.check(p.returncode == 0, "skopeo copy %s%s from %s: %s" % (
                        sep, ref[:19], cc.name, p.stderr.strip()[-400:])):
                    continue
                got = images.read_dir_layout(out)
                t.check(got["manifest"] == img.manifest and sorted(got["blobs"]) == sorted(
                    d for d, _ in image_blobs(img)) and all(
                        images.file_digest(p) == d for d, p in got["blobs"].items()),
                    "skopeo pull %s%s from %s: not the pushed image" % (sep, ref[:19], cc.name))
            missing = wait_on_disk(c.regions, image_blobs(img), REPLICATE_LIMIT)
            t.check(not missing, "blobs not everywhere within %.0f s: %s" % (
                REPLICATE_LIMIT, missing))
            pending = wait_image_complete(c.regions, repo, "v1", names, SETTLE_LIMIT)
            t.check(not pending, "image not complete everywhere: %s" % {
                n: status_text(st) for n, st in pending.items()})
            bad = wrong_on_disk(c.regions, image_blobs(img))
            t.check(not bad, "blob files whose SHA-256 is not their name: %s" % bad)
            check_alive(t, c)
    finally:
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)


# -- 6. per-image status before, during and after -------------------------------------------


def image_status_phases(results):
    t = results
    limited = ["--replication-bandwidth", STATUS_RATE]
    with cluster.Cluster(3, wan_delay_ms=DELAY_MS,
                         region_args={"region-b": limited, "region-c": limited}) as c:
        c.wait_leader()
        a, b, cc = c.regions
        names = [r.name for r in c.regions]
        repo = h.unique_repo("blobrep")
        img = make_image(STATUS_LAYERS, STATUS_LAYER)
        blobs = image_blobs(img)
        total = sum(n for _, n in blobs)
        layer_bytes = sum(bl.size for bl in img.layers)
        t0 = time.monotonic()
        push_image(a, repo, "v1", img)
        pushed = time.monotonic() - t0

        # Before: a layer of STATUS_LAYER bytes needs STATUS_LAYER / rate seconds at least.
        # The status is this region's view of its applied state (no read index): the other
        # regions may apply the push a moment after region-a answered, so they are waited for
        # (briefly) to know the image and its blobs.
        before = {}
        for r in c.regions:
            before[r.name] = wait_for(lambda: image_status(r, repo, "v1"), 2.0)
        behind = {}
        for r in (b, cc):
            behind[r.name] = wait_for(lambda: (lambda st: st if st and (
                st.get("blobs_behind") or 0) >= STATUS_LAYERS else None)(r.replication()), 2.0)
        asked = time.monotonic() - t0
        t.require(asked < STATUS_LAYER / STATUS_RATE_MAX, "the push and the first status took "
                  "%.1f s: a layer may have arrived already" % asked)
        for r in c.regions:
            st = before[r.name]
            where = "/admin/replication/image before replication, at %s" % r.name
            if not t.check(st is not None, where + ": no answer"):
                continue
            check_image_doc(t, st, repo, "v1", img, names, where)
            t.eq(sorted(st.get("complete") or []), [a.name], where + ": complete")
            want = check_missing_consistent(t, st, names, where)
            t.eq(sorted(want), [b.name, cc.name], where + ": regions missing")
            for n in (b.name, cc.name):
                w = want.get(n) or {"blobs": 0, "bytes": 0}
                t.check(w["blobs"] >= STATUS_LAYERS and w["bytes"] >= layer_bytes,
                        "%s: %s misses %r, every layer (%d, %d bytes) should be missing" % (
                            where, n, w, STATUS_LAYERS, layer_bytes))
            for bl in st.get("blobs") or []:
                if bl.get("digest") in {x.digest for x in img.layers}:
                    t.eq(sorted(bl.get("regions") or []), [a.name], "%s: regions of layer %s" % (
                        where, str(bl.get("digest"))[:19]))
        note(results, "before (push %s, asked %.2f s after it began): %s" % (
            ms(pushed), asked, status_text(before[a.name])))
        for r in (b, cc):
            # bytes_behind may count what is still to come of blobs being fetched: at most
            # asked x the rate arrived so far, plus one piece of a transfer (a limiter's burst).
            st = behind[r.name] or r.replication() or {}
            t.check(st.get("in_sync") is False and (st.get("blobs_behind") or 0) >= STATUS_LAYERS
                    and (st.get("bytes_behind") or 0)
                    >= layer_bytes - asked * STATUS_RATE_MAX - STATUS_BURST,
                    "%s /admin/replication before replication (every layer missing): %s" % (
                        r.name, short(st, ("in_sync", "blobs_behind", "bytes_behind", "active"))))

        # During: bytes arrive, what is missing only shrinks.
        time.sleep(3.0)
        during = image_status(a, repo, "v1")
        if t.check(during is not None, "/admin/replication/image during: no answer"):
            where = "/admin/replication/image during replication"
            check_image_doc(t, during, repo, "v1", img, names, where)
            want = check_missing_consistent(t, during, names, where)
            for n in (b.name, cc.name):
                was = (before[a.name] or {}).get("missing", {}).get(n, {}).get("bytes", total)
                now = want.get(n, {}).get("bytes", 0)
                t.check(now <= was, "%s: %s misses %d bytes, more than the %d before" % (
                    where, n, now, was))
            note(results, "during (%.1f s): %s" % (time.monotonic() - t0, status_text(during)))
        for r in (b, cc):
            st = r.replication() or {}
            got = st.get("bytes_received_total") or 0
            active = st.get("active") or []
            t.check(got > 0 or any((x.get("offset") or 0) > 0 for x in active),
                    "%s received nothing in 3 s: %s" % (r.name, short(st)))
            t.check(st.get("in_sync") is False and (st.get("oldest_missing_age_s") or 0) > 0,
                    "%s while behind: %s" % (r.name, short(st, (
                        "in_sync", "oldest_missing_age_s", "blobs_behind"))))
            for x in active:
                t.check(x.get("from") == a.name and x.get("size") in {n for _, n in blobs}
                        and 0 <= (x.get("offset") or 0) <= x.get("size", 0),
                        "%s active transfer %r (only %s holds the image)" % (r.name, x, a.name))

        # After.
        limit = 60 + 2 * total / STATUS_RATE_MAX
        missing = wait_on_disk(c.regions, blobs, limit)
        took = time.monotonic() - t0
        t.require(not missing, "blobs not everywhere %.0f s after the push: %s; %s" % (
            limit, missing, evidence(c)))
        note(results, "every blob everywhere %.1f s after the push began (%s per receiving "
             "region at --replication-bandwidth %s)" % (took, mb(total), STATUS_RATE))
        floor = 0.8 * total / STATUS_RATE_MAX
        t.check(took >= floor, "replicated in %.1f s, faster than --replication-bandwidth "
                "%s allows (at least %.1f s for %d bytes)" % (took, STATUS_RATE, floor, total))
        pending = wait_image_complete(c.regions, repo, "v1", names, SETTLE_LIMIT)
        t.check(not pending, "per-image status not complete everywhere %.0f s after the blobs "
                "were: %s" % (SETTLE_LIMIT, {n: status_text(st) for n, st in pending.items()}))
        for r in c.regions:
            st = image_status(r, repo, "v1")
            where = "/admin/replication/image after replication, at %s" % r.name
            if not t.check(st is not None, where + ": no answer"):
                continue
            check_image_doc(t, st, repo, "v1", img, names, where)
            t.eq(sorted(st.get("complete") or []), names, where + ": complete")
            t.eq(st.get("missing"), {}, where + ": missing")
        check_in_sync(t, c, c.regions, "after replication")

        for name, ref, codes in ((repo, "nope", ("MANIFEST_UNKNOWN",)),
                                 ("no/such-repo", "v1", ("NAME_UNKNOWN", "MANIFEST_UNKNOWN"))):
            with a.client() as cl:
                r = cl.get(h.with_query("/admin/replication/image", name=name, reference=ref))
            t.check(r.status == 404 and any(x in r.error_codes() for x in codes),
                    "/admin/replication/image %s:%s: %s, want 404 %s" % (
                        name, ref, r.describe(), "/".join(codes)))
        check_alive(t, c)


def sha512_blob(results):
    """A blob pushed by its sha512 digest reaches every region (several BlobWants, a transfer
    session named after the digest, verified with SHA-512) and is served there."""
    t = results
    with cluster.Cluster(3) as c:
        c.wait_leader()
        a, b, cc = c.regions
        repo = h.unique_repo("blobrep")
        data = os.urandom(3 * MIB + 123)
        d = "sha512:" + hashlib.sha512(data).hexdigest()
        with a.client(timeout=IO_TIMEOUT) as cl:
            r = cl.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d),
                           {"Content-Type": "application/octet-stream"}, data)
        t.require(r.status == 201, "sha512 single POST at %s: %s" % (a.name, r.describe()))
        missing = wait_on_disk(c.regions, [(d, len(data))], REPLICATE_LIMIT)
        t.require(not missing, "sha512 blob not in every region within %.0f s: %s; %s" % (
            REPLICATE_LIMIT, missing, evidence(c)))
        bad = wrong_on_disk(c.regions, [(d, len(data))])
        t.check(not bad, "sha512 blob files that do not hash to their name: %s" % bad)
        for r in (b, cc):
            with r.client(timeout=IO_TIMEOUT) as cl:
                g = cl.get("/v2/%s/blobs/%s" % (repo, d))
            t.check(g.status == 200 and g.body == data and
                    g.headers.get("Docker-Content-Digest") == d,
                    "GET sha512 blob at %s: %s" % (r.name, g.describe()))
        check_in_sync(t, c, c.regions, "after the sha512 blob")
        check_alive(t, c)


def main(results):
    if results.target != "portolan":
        raise h.Skip("blob replication between regions is portolan-only")
    for name, fn in (("replicate_everywhere", replicate_everywhere),
                     ("pull_while_replicating", pull_while_replicating),
                     ("manifest_in_other_region", manifest_in_other_region),
                     ("image_status", image_status_phases),
                     ("sha512_blob", sha512_blob)):
        results.run(name, fn, results)
