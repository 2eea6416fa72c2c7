"""Raft snapshots by reference: a late region is brought up through a snapshot file fetched
from the leader, and the file service refuses what a hostile peer asks.

Role: checks replication/raft_node_snap.c against real `portolan serve` processes
(tests/lib/cluster.py, three regions on loopback, peer mTLS on, snapshots every 32 entries):
  - late_region_fetches_file: a region stopped while 120 writes land is restarted; raft sends
    it an InstallSnapshot that only names a file (a descriptor), so it fetches the file from
    the leader in pieces before raft installs it. Asserted: the region converges to the same
    state digest; its /admin/cluster/self counters show a fetch that succeeded, its bytes, a
    restore from the file, and the file under <data dir>/raft-snapshots; its /metrics show
    portolan_raft_snapshot_fetches_total{outcome="ok"} >= 1; the regions that served pieces
    served at least the fetched bytes.
  - hostile_fetch_refused: on a peer channel authenticated as region-b, SnapshotWant requests
    for a path ("../raft/metadata1", "a/1.pts"), a temporary file, an unknown index and an
    oversized piece are all refused with an error status and no body, and a valid request
    for a file the leader holds is answered with its first bytes (the stream magic).
"""

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, HERE)

import cluster  # noqa: E402
import harness as h  # noqa: E402
import test_cluster_ops as ops  # noqa: E402
import test_peer_attacks as attacks  # noqa: E402

TIMEOUT = 300
LATE_WRITES = 120
SNAPSHOT_EVERY = 32
PEER_SNAPSHOT_WANT = 5


def _varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _field(num, wire, payload):
    if wire == 0:
        return _varint(num << 3) + _varint(payload & 0xFFFFFFFFFFFFFFFF)
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _read_varint(buf, i):
    v, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def _parse_frame(buf):
    """{field number: value} of a PeerFrame (varints and bytes only)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            out[num], i = _read_varint(buf, i)
        elif wire == 2:
            n, i = _read_varint(buf, i)
            out[num], i = buf[i:i + n], i + n
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return out


def _recv_exact(conn, n):
    got = b""
    while len(got) < n:
        chunk = conn.recv(n - len(got))
        if not chunk:
            raise EOFError("peer closed")
        got += chunk
    return got


def ask(conn, call_id, name, offset, length):
    """Sends one SnapshotWant and returns (status as a signed int, body) of its answer."""
    want = _field(1, 2, name.encode()) + _field(2, 0, offset) + _field(3, 0, length)
    frame = _field(1, 0, call_id) + _field(2, 0, PEER_SNAPSHOT_WANT) + _field(5, 2, want)
    conn.sendall(struct.pack(">I", len(frame)) + frame)
    while True:
        n = struct.unpack(">I", _recv_exact(conn, 4))[0]
        f = _parse_frame(_recv_exact(conn, n))
        if f.get(3) and f.get(1) == call_id:
            status = f.get(4, 0)
            if status >= 1 << 63:
                status -= 1 << 64
            return status, f.get(5, b"")


def snapshot_files(region):
    d = os.path.join(region.data_dir, "raft-snapshots")
    try:
        return sorted(x for x in os.listdir(d) if x.endswith(".pts"))
    except FileNotFoundError:
        return []


def main(results):
    t = results
    with cluster.Cluster(3, peer_tls=True, args=("--snapshot-every", str(SNAPSHOT_EVERY))) as c:
        lead = c.wait_leader()
        late = [x for x in c.regions if x is not lead][0]

        @results.test
        def late_region_fetches_file():
            repo = h.unique_repo("snapfile")
            base = h.make_image(layers=1, layer_size=256)
            with lead.client() as cl:
                base.push(cl, repo, "base")
            c.wait_converged(timeout=30)
            late.node.stop()
            live = [x for x in c.regions if x is not late]
            tags = ["s-%04d" % i for i in range(LATE_WRITES)]
            pushed, failures, _ = ops.push_tags(live, repo, base, tags)
            t.require(not failures, "%d writes failed: %s" % (len(failures),
                                                              "; ".join(failures[:3])))
            served_before = sum((r.status() or {}).get("snapshots", {}).get("served_bytes", 0)
                                for r in live)
            late.node.start(c.start_timeout)
            c.wait_converged(timeout=120)
            snaps = late.status()["snapshots"]
            ops.note(results, "%s snapshot counters: %s; files %s" % (
                late.name, snaps, snapshot_files(late)))
            t.check(snaps["fetched"] >= 1 and snaps["fetch_bytes"] > 0,
                    "%s caught up without fetching a snapshot file: %s" % (late.name, snaps))
            t.check(snaps["restored_files"] >= 1,
                    "%s restored no snapshot file: %s" % (late.name, snaps))
            t.check(snapshot_files(late), "no snapshot file under %s" % late.data_dir)
            ok = None
            with h.Client(late.url, timeout=5) as cl:
                for line in cl.get("/metrics").body.decode().splitlines():
                    if line.startswith('portolan_raft_snapshot_fetches_total{outcome="ok"} '):
                        ok = float(line.split()[1])
            t.check(ok is not None and ok >= 1, "fetches metric of %s: %s" % (late.name, ok))
            served = sum((r.status() or {}).get("snapshots", {}).get("served_bytes", 0)
                         for r in live)
            t.check(served - served_before >= snaps["fetch_bytes"],
                    "served %d bytes, %s fetched %d" % (served - served_before, late.name,
                                                        snaps["fetch_bytes"]))
            last = pushed[tags[-1]]
            with late.client() as cl:
                r = cl.get_manifest(repo, tags[-1], "HEAD")
            t.check(r.status == 200 and r.headers.get("Docker-Content-Digest") == last.digest,
                    "%s %s: %s" % (late.name, tags[-1], r.describe()))

        @results.test
        def hostile_fetch_refused():
            lead2 = c.wait_leader()
            files = snapshot_files(lead2)
            t.require(files, "%s holds no snapshot file" % lead2.name)
            asker = [x for x in c.regions if x is not lead2][0]
            certs = cluster.peer_certs(c.binary)
            conn = attacks.connect(lead2.raft_port, c.cluster_id, asker.id, 1,
                                   os.path.join(certs, asker.name + ".pem"),
                                   os.path.join(certs, asker.name + "-key.pem"))
            t.require(conn is not None, "peer channel to %s refused" % lead2.name)
            refused_before = lead2.status()["snapshots"]["serve_refused"]
            try:
                for i, (name, offset, length) in enumerate((
                        ("../raft/metadata1", 0, 4096), ("a/1.pts", 0, 4096),
                        ("/etc/passwd", 0, 4096), (files[-1] + ".tmp", 0, 4096),
                        ("999999999.pts", 0, 4096), ("0.pts", 0, 4096),
                        (files[-1], 0, 64 << 20), (files[-1], 1 << 40, 4096))):
                    status, body = ask(conn, 100 + i, name, offset, length)
                    t.check(status != 0 and body == b"",
                            "SnapshotWant %r offset %d length %d answered status %d with %d "
                            "bytes" % (name, offset, length, status, len(body)))
                status, body = ask(conn, 200, files[-1], 0, 8)
                t.check(status == 0 and body == b"PTLNSNAP",
                        "first bytes of %s: status %d %r" % (files[-1], status, body[:16]))
            finally:
                conn.close()
            refused = lead2.status()["snapshots"]["serve_refused"]
            t.check(refused - refused_before >= 8, "serve_refused %d -> %d" % (refused_before,
                                                                             refused))
            t.check(lead2.running(), "%s died" % lead2.name)

