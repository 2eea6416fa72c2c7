"""Hostile traffic on the raft + peer port from a region's own certificate: malformed raft
messages, terms at 2^64-1, frames announced huge and sent slowly, and a flood of idle
connections, against three real `portolan serve` processes with peer TLS on.

Role: a hand-built peer client (Python's ssl module with region-b's certificate from
`portolan cluster certs`, speaking the transport's HELLO, then raw raft messages or peer
frames) checks that a bad message closes only its connection, is logged and counted in
portolan_peer_refused_total, and never reaches libraft:
  - an AppendEntries whose header announces 2^20 entries, and one announcing 1000 entries in a
    48-byte header (libraft would read 16 KiB past it): the connection is closed, region-a
    stays up, the metric counts them;
  - a RequestVote with term 2^64-1 and one naming another candidate than the sender: closed,
    and the cluster keeps (or elects) a leader whose term stays below 2^48;
  - a non-member's certificate and id never get a WELCOME;
  - memory: an InstallSnapshot announcing 5 GiB with 64 MiB sent, and sixteen channels (PEER
    and BULK, four each from region-b and region-c, as many as a region keeps) each holding a
    frame announced at 16 MiB with 15 MiB sent: region-a's VmRSS grows by less than the frame
    budget plus a margin (without the budget: +240 MB), the channels over the budget are
    closed and counted;
  - a flood of 200 idle TCP connections to a restarting follower's raft port: the follower
    rejoins and serves a write (polled within a generous deadline; no timing assertion).
Uses the optimised binary in CI (tests/run-all.sh): the memory bound is about the real binary.
"""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import cluster  # noqa: E402
import harness as h  # noqa: E402

TIMEOUT = 300
MAGIC = b"\x89PTRAFT\n"
NOT_A_MEMBER = 24
FLOOD = 200
# PT_PEERS_INBOUND_PER_PEER: the channels of one kind a region keeps open from one peer
CHANNELS_PER_KIND = 4
# PT_PEERS_PARTIAL_BUDGET (96 MiB) and room for the process's own churn
RSS_MARGIN_KIB = (96 + 48) * 1024


def note(text):
    """Prints a measurement next to the test's results."""
    print("note: " + text, flush=True)


def hello(cluster_id, server_id, flags):
    address = "127.0.0.1:1"
    body = struct.pack(">QHH", server_id, len(cluster_id), len(address)) + cluster_id.encode() \
        + address.encode()
    return MAGIC + struct.pack(">HBBI", 1, 1, flags, len(body)) + body


def le(*words):
    return b"".join(struct.pack("<Q", w) for w in words)


def connect(port, cluster_id, server_id, flags, cert, key):
    """A TLS connection to 127.0.0.1:port that got its WELCOME, or None."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    try:
        conn = ctx.wrap_socket(s, server_hostname="region-a")
        conn.sendall(hello(cluster_id, server_id, flags))
        got = b""
        while len(got) < 16:
            chunk = conn.recv(16 - len(got))
            if not chunk:
                break
            got += chunk
    except (OSError, ssl.SSLError):
        s.close()
        return None
    if got[:8] != MAGIC or len(got) < 16 or got[10] != 2:
        s.close()
        return None
    rest = struct.unpack(">I", got[12:16])[0]
    while rest > 0:
        chunk = conn.recv(rest)
        if not chunk:
            break
        rest -= len(chunk)
    return conn


def closed_by_peer(conn, deadline=15.0):
    """True when the other end closes conn within deadline seconds."""
    conn.settimeout(1.0)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if conn.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except (OSError, ssl.SSLError):
            return True
    return False


def send_all(conn, data, limit):
    """Sends data repeatedly up to limit bytes; returns how many went out before an error."""
    sent = 0
    try:
        while sent < limit:
            n = min(len(data), limit - sent)
            conn.sendall(data[:n])
            sent += n
    except (OSError, ssl.SSLError):
        pass
    return sent


def refused(region, reason):
    """portolan_peer_refused_total{reason=...} of region, or None."""
    try:
        with region.client(timeout=10) as cl:
            r = cl.get("/metrics")
    except (OSError, ValueError):
        return None
    want = 'portolan_peer_refused_total{reason="%s"} ' % reason
    for line in r.body.decode("utf-8", "replace").splitlines():
        if line.startswith(want):
            return float(line.split()[-1])
    return None


def vm_rss_kib(region):
    with open("/proc/%d/status" % region.node.pid()) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main(results):
    if shutil.which("openssl") is None:
        raise h.Skip("openssl is not installed")
    t = results
    with cluster.Cluster(3, peer_tls=True) as c:
        c.wait_leader()
        a, b, cc = c.regions
        certs = cluster.peer_certs(c.binary)
        b_cert = os.path.join(certs, b.name + ".pem")
        b_key = os.path.join(certs, b.name + "-key.pem")
        port, cid = a.raft_port, c.cluster_id

        def raft_conn():
            conn = connect(port, cid, b.id, 0, b_cert, b_key)
            t.check(conn is not None, "region-b's raft handshake to region-a failed")
            return conn

        @results.test
        def malformed_append_closes_only_its_connection():
            before = refused(a, "raft_message") or 0
            for what, msg in (
                    ("2^20 entries", le(1, 48) + le(3, 10, 3, 9, 1 << 20) + le(0)),
                    ("1000 entries in 48 bytes", le(1, 48) + le(3, 10, 3, 9, 1000) + le(0)),
                    ("unknown type", le(9, 24) + le(1, 2, 3))):
                conn = raft_conn()
                if conn is None:
                    return
                conn.sendall(msg)
                t.check(closed_by_peer(conn), "%s: connection not closed" % what)
                conn.close()
            t.check(a.running(), "region-a died: %s" % a.node.death_note())
            after = refused(a, "raft_message")
            t.check(after is not None and after >= before + 3,
                    "raft_message refusals %s -> %s" % (before, after))
            t.check(bool(a.log_grep("invalid raft message")), "no log line for the refusals")

        @results.test
        def terms_are_protected():
            conn = raft_conn()
            if conn is None:
                return
            conn.sendall(le(3, 40) + le(2**64 - 1, b.id, 1, 1, 2))  # pre-vote, term 2^64-1
            t.check(closed_by_peer(conn), "term 2^64-1: connection not closed")
            conn.close()
            conn = raft_conn()
            if conn is None:
                return
            conn.sendall(le(3, 40) + le(5, cc.id, 1, 1, 0))  # a vote for region-c, from b
            t.check(closed_by_peer(conn), "foreign candidate: connection not closed")
            conn.close()
            x_certs = os.path.join(os.path.dirname(certs), "x-certs")
            subprocess.run([c.binary, "cluster", "certs", "--out", x_certs, "--ca",
                            certs, "--regions", "region-x"], check=True,
                           stdout=subprocess.DEVNULL)
            x = connect(port, cid, NOT_A_MEMBER, 0,
                        os.path.join(x_certs, "region-x.pem"),
                        os.path.join(x_certs, "region-x-key.pem"))
            t.check(x is None, "a non-member got a WELCOME on the raft channel")
            lead = c.wait_leader(timeout=30)
            st = lead.status() or {}
            t.check(0 < st.get("term", 0) < 2**48, "leader's term: %s" % st.get("term"))
            for r in c.regions:
                t.check(r.running(), "%s died: %s" % (r.name, r.node.death_note()))

        @results.test
        def memory_is_bounded():
            base = vm_rss_kib(a)
            before = refused(a, "peer_frame") or 0
            conn = raft_conn()
            if conn is not None:
                conn.sendall(le(5, 48) + le(4, 100, 4, 90, 0) + le(5 << 30))
                sent = send_all(conn, b"\0" * (1 << 20), 64 << 20)
                t.check(closed_by_peer(conn), "5 GiB snapshot: connection not closed")
                conn.close()
                note("snapshot announced at 5 GiB: %d MiB went out before the close" %
                      (sent >> 20))
            chans = []
            for who, flags in ((b, 1), (b, 3), (cc, 1), (cc, 3)) * CHANNELS_PER_KIND:
                ch = connect(port, cid, who.id, flags, os.path.join(certs, who.name + ".pem"),
                             os.path.join(certs, who.name + "-key.pem"))
                if ch is None:
                    continue
                chans.append(ch)
                ch.sendall(struct.pack(">I", 16 << 20))
                send_all(ch, b"\1" * (1 << 20), 15 << 20)
            time.sleep(1)
            peak = vm_rss_kib(a)
            after = refused(a, "peer_frame")
            for ch in chans:
                ch.close()
            note("VmRSS of region-a: %d MiB before, %d MiB with %d channels x 15 MiB under way "
                 "(+%d MiB); peer_frame refusals %s -> %s" %
                 (base >> 10, peak >> 10, len(chans), (peak - base) >> 10, before, after))
            t.check(peak - base < RSS_MARGIN_KIB,
                    "VmRSS grew by %d MiB (bound %d MiB)" % ((peak - base) >> 10,
                                                            RSS_MARGIN_KIB >> 10))
            t.check(after is not None and after > before,
                    "no channel refused over the budget: %s -> %s" % (before, after))
            t.check(a.running(), "region-a died: %s" % a.node.death_note())

        @results.test
        def idle_flood_does_not_keep_a_follower_out():
            lead = c.wait_leader(timeout=30)
            f = [r for r in c.regions if r is not lead][0]
            f.node.stop()
            socks, stop = [], threading.Event()

            def flood():
                while not stop.is_set() and len(socks) < FLOOD:
                    try:
                        socks.append(socket.create_connection(("127.0.0.1", f.raft_port),
                                                              timeout=2))
                    except OSError:
                        time.sleep(0.02)

            th = threading.Thread(target=flood, daemon=True)
            th.start()
            started = time.monotonic()
            try:
                c.restart(f, timeout=120)
                repo = h.unique_repo("flood")
                img = h.make_image(layers=1, layer_size=1024)
                ok, last = False, None
                end = time.monotonic() + 120
                while time.monotonic() < end and not ok:
                    try:
                        with f.client(timeout=10) as cl:
                            img.push(cl, repo, "v1")
                            got = cl.get_manifest(repo, "v1")
                        ok = got.status == 200
                        last = got.describe()
                    except (AssertionError, OSError, ValueError) as e:
                        last = str(e)[:200]
                        time.sleep(0.5)
                note("flood of %d idle connections: follower %s served a write after %.1f s" %
                      (len(socks), f.name, time.monotonic() - started))
                t.check(ok, "follower under the flood never served the write: %s" % last)
                t.check(len(socks) >= FLOOD // 2, "only %d flood connections opened" % len(socks))
            finally:
                stop.set()
                th.join(5)
                for s in socks:
                    s.close()
