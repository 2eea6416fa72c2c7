"""A full disk: the node stays up, refuses writes cleanly, serves reads, loses nothing
acknowledged, and writes again by itself once space returns.

Role: the free-space reserve (--disk-reserve, node/base/diskspace.h) checked from outside on a
real, small filesystem: each node's data directory is a tmpfs of a few MiB mounted for the
test (root only: the module is skipped with a message otherwise), filled with a filler file.

  - single_node_reserve: one node, reserve 8 MiB on a 48 MiB tmpfs. An image is pushed. The
    filler takes the free space below the reserve: a new upload (POST), a chunk (PATCH) on a
    session opened before, its closing PUT and a manifest PUT get 507 with the spec's JSON error
    and a Retry-After header; the image is still pulled whole (manifest and blobs); /healthz
    answers 200 with disk state "low"; /metrics has portolan_disk_low 1 and refusals. The filler
    shrinks: the same writes succeed, with no restart.
  - disk_full_to_the_last_byte: the filler takes every free byte (ENOSPC). Writes get 507, the
    node keeps serving reads; it is then stopped and started again on that full disk: it starts,
    serves everything acknowledged, and refuses writes; space back: writes resume.
  - full_follower_catches_up: three regions; one follower's data directory is a tiny tmpfs.
    After an image is replicated, the follower's disk is filled below its reserve; writes at
    the leader still commit (majority of two), the follower stays up, keeps serving what it
    had, and its store stops (the committed entries are held back, disk_held_entries). The
    filler is removed: the follower catches up (same state digest as the others) and serves
    the images written meanwhile, blobs included.
  - full_leader_hands_over: three regions on tiny tmpfs; the leader's disk is filled below its
    reserve: leadership moves to another region, writes there commit, a write sent to the full
    region gets 507, and once space is back the former leader catches up.

Figures (free bytes, refusals, catch-up time) are printed with -v.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import cluster  # noqa: E402
import harness as h  # noqa: E402

TIMEOUT = 420
MIB = 1 << 20
CATCH_UP_DEADLINE = 120.0


def note(results, msg):
    if results.verbose:
        print(msg, flush=True)


def mount_tmpfs(path, size_mib):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % size_mib, "tmpfs", path],
                   check=True, capture_output=True)


def umount(path):
    subprocess.run(["umount", "-l", path], capture_output=True)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path, leave):
    """Grows <path>/filler until at most `leave` bytes are free (0: until ENOSPC)."""
    filler = os.path.join(path, "filler")
    chunk = b"\0" * MIB
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            left = free_bytes(path) - leave
            if left <= 0:
                break
            try:
                if os.write(fd, chunk[:min(len(chunk), left)] if leave else chunk) == 0:
                    break
            except OSError:
                break  # ENOSPC: full to the last byte
    finally:
        os.close(fd)
    return filler


def unfill(path):
    try:
        os.unlink(os.path.join(path, "filler"))
    except FileNotFoundError:
        pass


def push_image(cl, repo, tag, layer_size=64 << 10):
    m = h.make_image(layers=2, layer_size=layer_size)
    for digest, data in m.blobs:
        cl.push_blob(repo, data)
    r = cl.put_manifest(repo, tag, m.bytes, m.media_type)
    if r.status != 201:
        raise AssertionError("manifest PUT %s:%s: %s" % (repo, tag, r.describe()))
    return m


def check_image(t, cl, repo, tag, m, where=""):
    r = cl.get_manifest(repo, tag)
    t.check(r.status == 200 and r.body == m.bytes,
            "%s%s:%s manifest: %s" % (where, repo, tag, r.describe()))
    for digest, data in m.blobs:
        r = cl.get("/v2/%s/blobs/%s" % (repo, digest))
        t.check(r.status == 200 and r.body == data,
                "%sblob %s of %s: %s" % (where, digest[:19], repo, r.describe()))


def check_refused(t, r, what):
    """A write refused below the reserve: 507, the spec's JSON error, Retry-After."""
    t.check(r.status == 507, "%s: want 507, got %s" % (what, r.describe()))
    if r.status != 507:
        return
    t.check(r.headers.get("Retry-After", "").isdigit(), "%s: no Retry-After" % what)
    try:
        errs = json.loads(r.body)["errors"]
        t.check(errs and errs[0]["code"] and "insufficient storage" in errs[0]["message"],
                "%s: error body %r" % (what, r.body[:200]))
    except (ValueError, KeyError, TypeError):
        t.check(False, "%s: not an OCI JSON error: %r" % (what, r.body[:200]))


def healthz(cl):
    r = cl.get("/healthz")
    try:
        return r.status, json.loads(r.body)
    except ValueError:
        return r.status, {}


def metric(cl, name):
    r = cl.get("/metrics")
    for line in r.body.decode(errors="replace").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def writes(t, cl, repo, label):
    """Tries each kind of write once; returns the responses by kind."""
    out = {}
    data = os.urandom(4096)
    digest = h.sha256_digest(data)
    hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    out["POST monolithic"] = cl.request("POST", "/v2/%s/blobs/uploads/?digest=%s"
                                        % (repo, digest), hdrs, data)
    return out, data, digest


def single_node_reserve(results, binary, tmp):
    t = results
    # the tmpfs is the data directory itself: the node's log (one level up) stays off it
    mnt = os.path.join(tmp, "single", "data")
    mount_tmpfs(mnt, 48)
    try:
        data_dir = mnt
        node = h.Node(data_dir=data_dir, args=["--disk-reserve", "8MiB"], binary=binary).start()
        try:
            cl = node.client()
            repo = h.unique_repo("diskfull")
            m1 = push_image(cl, repo, "v1")
            # a chunked upload opened while there is space
            r = cl.request("POST", "/v2/%s/blobs/uploads/" % repo, {"Content-Length": "0"}, b"")
            t.require(r.status == 202, "open session: %s" % r.describe())
            session = cl.location_path(r.headers["Location"])

            fill(mnt, 4 * MIB)
            note(results, "filled: %d bytes free, reserve 8 MiB" % free_bytes(mnt))
            out, data, digest = writes(t, cl, repo, "low")
            check_refused(t, out["POST monolithic"], "POST upload below the reserve")
            r = cl.request("POST", "/v2/%s/blobs/uploads/" % repo, {"Content-Length": "0"}, b"")
            check_refused(t, r, "POST session below the reserve")
            chunk = os.urandom(8192)
            r = cl.request("PATCH", session, {"Content-Type": "application/octet-stream",
                                              "Content-Range": "0-%d" % (len(chunk) - 1),
                                              "Content-Length": str(len(chunk))}, chunk)
            check_refused(t, r, "PATCH below the reserve")
            r = cl.request("PUT", h.with_query(session, digest=h.sha256_digest(chunk)),
                           {"Content-Length": str(len(chunk)),
                            "Content-Type": "application/octet-stream"}, chunk)
            check_refused(t, r, "closing PUT below the reserve")
            r = cl.put_manifest(repo, "v2", m1.bytes, m1.media_type)
            check_refused(t, r, "manifest PUT below the reserve")
            r = cl.delete("/v2/%s/manifests/v1" % repo)
            check_refused(t, r, "tag DELETE below the reserve")
            check_image(t, cl, repo, "v1", m1, "below the reserve: ")
            status, body = healthz(cl)
            disk = body.get("disk", {})
            t.check(status == 200 and disk.get("state") == "low"
                    and disk.get("reserve_bytes") == 8 * MIB and disk.get("free_bytes", 1 << 62)
                    < 8 * MIB, "healthz below the reserve: %s %s" % (status, body))
            t.check(metric(cl, "portolan_disk_low") == 1, "metrics: portolan_disk_low")
            refusals = metric(cl, "portolan_disk_refusals_total") or 0
            t.check(refusals >= 6, "metrics: %s refusals" % refusals)
            note(results, "refusals counted: %d; free at healthz %s" % (refusals, disk))

            unfill(mnt)
            status, body = healthz(cl)
            t.check(body.get("disk", {}).get("state") == "ok", "healthz after: %s" % body)
            r = cl.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, digest),
                           {"Content-Type": "application/octet-stream",
                            "Content-Length": str(len(data))}, data)
            t.check(r.status == 201, "POST upload with space back: %s" % r.describe())
            r = cl.request("PATCH", session, {"Content-Type": "application/octet-stream",
                                              "Content-Range": "0-%d" % (len(chunk) - 1),
                                              "Content-Length": str(len(chunk))}, chunk)
            t.check(r.status == 202, "PATCH with space back: %s" % r.describe())
            r = cl.request("PUT", h.with_query(session, digest=h.sha256_digest(chunk)),
                           {"Content-Length": "0"}, b"")
            t.check(r.status == 201, "closing PUT with space back: %s" % r.describe())
            m2 = push_image(cl, repo, "v2")
            check_image(t, cl, repo, "v2", m2)
            check_image(t, cl, repo, "v1", m1)
            t.check(metric(cl, "portolan_disk_low") == 0, "metrics: low flag cleared")
            cl.close()
        finally:
            node.stop()
            t.check(node.returncode in (0, None), "node exit status %s" % node.returncode)
    finally:
        umount(mnt)


def disk_full_to_the_last_byte(results, binary, tmp):
    t = results
    # the tmpfs is the data directory itself: the node's log (one level up) stays off it
    mnt = os.path.join(tmp, "full", "data")
    mount_tmpfs(mnt, 48)
    try:
        data_dir = mnt
        node = h.Node(data_dir=data_dir, args=["--disk-reserve", "8MiB"], binary=binary).start()
        try:
            cl = node.client()
            repo = h.unique_repo("diskfull")
            images = [(tag, push_image(cl, repo, tag)) for tag in ("a", "b", "c")]
            fill(mnt, 0)
            note(results, "full: %d bytes free" % free_bytes(mnt))
            out, data, digest = writes(t, cl, repo, "full")
            check_refused(t, out["POST monolithic"], "POST upload on a full disk")
            m = h.make_image(layers=1, layer_size=512)
            r = cl.put_manifest(repo, "d", m.bytes, m.media_type)
            t.check(r.status in (507, 400), "manifest PUT on a full disk: %s" % r.describe())
            for tag, m in images:
                check_image(t, cl, repo, tag, m, "full disk: ")
            t.require(node.running(), "node died on a full disk:\n%s" % node.log_tail())
            cl.close()

            node.stop()
            t.check(node.returncode == 0, "stop on a full disk: exit %s\n%s"
                    % (node.returncode, node.log_tail()))
            fill(mnt, 0)  # closing released what RocksDB had preallocated: full again
            node.start()
            note(results, "restarted on a full disk: %d bytes free" % free_bytes(mnt))
            cl = node.client()
            for tag, m in images:
                check_image(t, cl, repo, tag, m, "restarted on a full disk: ")
            out, data, digest = writes(t, cl, repo, "full after restart")
            check_refused(t, out["POST monolithic"], "POST upload after a restart on a full disk")
            status, body = healthz(cl)
            t.check(status == 200 and body.get("disk", {}).get("state") == "low",
                    "healthz after a restart on a full disk: %s %s" % (status, body))

            unfill(mnt)
            m4 = push_image(cl, repo, "d")
            check_image(t, cl, repo, "d", m4, "space back: ")
            for tag, m in images:
                check_image(t, cl, repo, tag, m, "space back: ")
            cl.close()
        finally:
            node.stop()
    finally:
        umount(mnt)


def full_follower_catches_up(results, binary, tmp):
    t = results
    c = cluster.Cluster(3, binary=binary, region_args={"region-c": ["--disk-reserve", "16MiB"]})
    full = c.region("region-c")
    mount_tmpfs(full.data_dir, 64)
    try:
        with c:
            lead = c.wait_leader()
            if lead is full:
                other = c.region("region-a")
                with lead.client() as cl:
                    cl.request("POST", "/admin/cluster/transfer-leader",
                               {"Content-Type": "application/json"},
                               json.dumps({"id": other.id}).encode())
                lead = c.wait_leader(exclude=full)
            repo = h.unique_repo("diskfull")
            with lead.client() as cl:
                m0 = push_image(cl, repo, "before")
            c.wait_converged(timeout=60)
            with full.client() as cl:
                check_image(t, cl, repo, "before", m0, "full follower, before: ")
            applied = full.status().get("applied_index")
            applied_store = (full.state_digest() or {}).get("applied_index")

            fill(full.data_dir, 4 * MIB)
            note(results, "follower filled: %d bytes free" % free_bytes(full.data_dir))
            acked = []
            with lead.client() as cl:
                for i in range(5):
                    tag = "during-%d" % i
                    acked.append((tag, push_image(cl, repo, tag)))
            time.sleep(1.0)
            t.require(full.running(), "the full follower died:\n%s" % full.log_tail())
            st = full.status() or {}
            held = st.get("disk_held_entries", 0)
            note(results, "follower: raft applied index %s -> %s while full, %s entries held "
                 "back" % (applied, st.get("applied_index"), held))
            t.check(held >= 5, "the full follower holds back no entries: %s" % st)
            fd, ld = full.state_digest() or {}, lead.state_digest() or {}
            note(results, "store applied index: follower %s, leader %s"
                 % (fd.get("applied_index"), ld.get("applied_index")))
            t.check(fd.get("applied_index") == applied_store and fd.get("digest") != ld.get("digest"),
                    "the full follower's store changed below its reserve: %s vs %s" % (fd, ld))
            with full.client() as cl:
                check_image(t, cl, repo, "before", m0, "full follower, while full: ")
                status, body = healthz(cl)
                t.check(body.get("disk", {}).get("state") == "low", "follower healthz: %s" % body)

            unfill(full.data_dir)
            t0 = time.monotonic()
            c.wait_converged(timeout=CATCH_UP_DEADLINE)
            note(results, "follower caught up in %.1f s" % (time.monotonic() - t0))
            t.check("disk_held_entries" not in (full.status() or {}), "entries still held back")
            t.require(full.running(), "the follower died:\n%s" % full.log_tail())
            with full.client() as cl:
                for tag, m in acked:
                    check_image(t, cl, repo, tag, m, "caught-up follower: ")
                check_image(t, cl, repo, "before", m0, "caught-up follower: ")
            with lead.client() as cl:
                m5 = push_image(cl, repo, "after")
            c.wait_converged(timeout=60)
            with full.client() as cl:
                check_image(t, cl, repo, "after", m5, "caught-up follower: ")
            bad = full.log_grep("halt", "corrupt", limit=5)
            t.check(not bad, "follower log: %s" % bad)
    finally:
        umount(full.data_dir)
        c.cleanup()


def full_leader_hands_over(results, binary, tmp):
    t = results
    c = cluster.Cluster(3, binary=binary, args=["--disk-reserve", "16MiB"])
    for r in c.regions:
        mount_tmpfs(r.data_dir, 64)
    try:
        with c:
            old = c.wait_leader()
            repo = h.unique_repo("diskfull")
            with old.client() as cl:
                m0 = push_image(cl, repo, "before")
            c.wait_converged(timeout=60)
            fill(old.data_dir, 4 * MIB)
            t0 = time.monotonic()
            new = c.wait_leader(exclude=old, timeout=60)
            note(results, "leadership left the full %s for %s in %.1f s"
                 % (old.name, new.name, time.monotonic() - t0))
            with new.client() as cl:
                m1 = push_image(cl, repo, "during")
            with old.client() as cl:
                # a write sent to the full region is refused there, reads go on
                r = cl.put_manifest(repo, "refused", m0.bytes, m0.media_type)
                check_refused(t, r, "manifest PUT at the full former leader")
                check_image(t, cl, repo, "before", m0, "full former leader: ")
            unfill(old.data_dir)
            c.wait_converged(timeout=CATCH_UP_DEADLINE)
            with old.client() as cl:
                check_image(t, cl, repo, "during", m1, "former leader after space returned: ")
    finally:
        for r in c.regions:
            umount(r.data_dir)
        c.cleanup()


def main(results):
    if results.target != "portolan":
        raise h.Skip("portolan's own free-space reserve")
    if os.geteuid() != 0:
        raise h.Skip("needs root to mount a small tmpfs for the data directory")
    binary = h.portolan_bin()
    tmp = tempfile.mkdtemp(prefix="pt-diskfull-")
    try:
        results.run("single_node_reserve", single_node_reserve, results, binary, tmp)
        results.run("disk_full_to_the_last_byte", disk_full_to_the_last_byte, results, binary,
                    tmp)
        results.run("full_follower_catches_up", full_follower_catches_up, results, binary, tmp)
        results.run("full_leader_hands_over", full_leader_hands_over, results, binary, tmp)
    finally:
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
