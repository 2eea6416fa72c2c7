"""Hostile clients against a live node: request smuggling, HTTP/2 rapid reset, slow and idle
connection floods, and a burst of absurdly wide manifests.

Role: each attack runs against the real binary over raw sockets (HTTP/1) or a raw HTTP/2
client (the h2 package: python3-h2). For every attack the node must stay up, keep serving a
normal client while the attack runs, keep what it acknowledged before (an image pushed at the
start is read back at the end), and refuse the attack the way the README's "Hardening"
settings say:
  1. smuggling: differing duplicate Content-Length, or Content-Length with Transfer-Encoding,
     get 400 and the connection closed; the request hidden behind the body never runs;
  2. HTTP/2 rapid reset: HEADERS + RST_STREAM pairs on one connection get GOAWAY
     (ENHANCE_YOUR_CALM) and the connection closed; the access log does not get one line per
     reset stream; normal GETs on other connections are answered during the attack;
  2b. HTTP/2 CONTINUATION, PING and SETTINGS floods from a client that never reads: the
     connection is closed or no longer read, memory stays put, normal GETs are answered;
  3. header time-out: a request head left half-sent is closed after --header-timeout;
  4. connection flood: one address holding as many idle connections as it can get is held to
     --max-connections-per-address; several flooding addresses cannot take the reserved slots;
     a normal client is still served, and idle connections are closed after
     --keepalive-timeout;
  5. wide manifests: 16 concurrent PUTs of a manifest with 10^6 layer entries get 400 and the
     node's RssAnon returns within 20% (+ 16 MiB) of its idle figure. Memory figures are about
     the optimised binary (tests/run-all.sh runs this module there).
Figures (latencies, log lines, RssAnon) are printed with the runner's -v; only outcomes are
asserted, never timings beyond generous upper bounds.
"""

import http.client
import os
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness  # noqa: E402

try:
    import h2.config
    import h2.connection
    import h2.events
except ImportError:  # a Python outside Debian's: use Debian's python3-h2 (pure Python)
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import h2.config
        import h2.connection
        import h2.events
    except ImportError:
        h2 = None

HEADER_TIMEOUT_S = 2
KEEPALIVE_S = 15
PER_ADDRESS = 40
MAX_CONNS = 200
RESERVED = 60
SMALL_CLIENT = 8  # worker.c: addresses holding fewer may use the reserved slots
ENHANCE_YOUR_CALM = 11


def note(results, msg):
    if results.verbose:
        print(msg, flush=True)


def raw_exchange(port, data, wait=5.0, src=None):
    """Sends data on a new connection; returns (bytes received, closed by the server)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if src:
        s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(data)
    s.settimeout(wait)
    out, closed = b"", False
    try:
        while True:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            out += b
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed


def get_ok(node, path="/v2/"):
    """One GET on a fresh HTTP/1.1 connection: (status, seconds)."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status, time.monotonic() - t0
    finally:
        c.close()


def log_lines(node, needle):
    with open(node.log_path, "rb") as f:
        return sum(1 for line in f if needle in line)


class Prober(threading.Thread):
    """Normal GETs in a loop until stopped; keeps statuses and latencies."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node = node
        self.stop = threading.Event()
        self.statuses = []
        self.latencies = []
        self.errors = []

    def run(self):
        while not self.stop.is_set():
            try:
                st, dt = get_ok(self.node)
                self.statuses.append(st)
                self.latencies.append(dt)
            except OSError as e:
                self.errors.append(str(e))
            time.sleep(0.02)

    def finish(self):
        self.stop.set()
        self.join(60)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0.0


def smuggling(results, node):
    cases = {
        "differing Content-Length": (
            b"POST /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 48\r\n\r\n"
            b"helloGET /v2/smuggled-cl/tags/list HTTP/1.1\r\nHost: x\r\n\r\n"),
        "Content-Length and Transfer-Encoding": (
            b"POST /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            b"GET /v2/smuggled-te/tags/list HTTP/1.1\r\nHost: x\r\n\r\n"),
        "Content-Length list": (
            b"POST /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 40\r\n\r\n"
            b"helloGET /v2/smuggled-list/tags/list HTTP/1.1\r\nHost: x\r\n\r\n"),
    }
    for what, data in cases.items():
        out, closed = raw_exchange(node.port, data)
        results.check(out.startswith(b"HTTP/1.1 400"), "%s: got %r" % (what, out[:40]))
        results.check(closed, "%s: connection left open" % what)
        results.check(out.count(b"HTTP/1.1 ") <= 1, "%s: %d responses on the connection"
                      % (what, out.count(b"HTTP/1.1 ")))
    time.sleep(0.5)
    results.eq(log_lines(node, b"smuggled-"), 0, "smuggled requests in the access log")
    # Equal duplicates are allowed (RFC 9110 8.6), and keep-alive still works.
    out, closed = raw_exchange(
        node.port, b"GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    results.eq(out.count(b"HTTP/1.1 200"), 2, "two pipelined requests with equal lengths")


def rapid_reset_conn(port, pairs, path="/v2/"):
    """HEADERS + RST_STREAM pairs on one h2c connection until the server ends it; returns
    (pairs sent, GOAWAY error code or None, closed)."""
    s = socket.create_connection(("127.0.0.1", port))
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                             header_encoding="utf-8"))
    c.initiate_connection()
    s.sendall(c.data_to_send())
    goaway, closed, sent = None, False, 0
    hdrs = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")]

    def absorb(data):
        nonlocal goaway
        try:
            for e in c.receive_data(data):
                if isinstance(e, h2.events.ConnectionTerminated):
                    goaway = e.error_code
        except h2.exceptions.ProtocolError:
            pass

    s.setblocking(False)
    try:
        while sent < pairs and goaway is None:
            for _ in range(100):
                sid = c.get_next_available_stream_id()
                c.send_headers(sid, hdrs, end_stream=True)
                c.reset_stream(sid)
            sent += 100
            s.sendall(c.data_to_send())
            try:
                d = s.recv(65536)
                if not d:
                    closed = True
                    break
                absorb(d)
            except BlockingIOError:
                pass
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    except h2.exceptions.ProtocolError:
        pass  # the client library saw the GOAWAY first
    s.setblocking(True)
    s.settimeout(10)
    try:
        while not closed:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            absorb(d)
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    except socket.timeout:
        pass
    s.close()
    return sent, goaway, closed


def rapid_reset(results, node):
    if h2 is None:
        results.skip("the h2 package (python3-h2) is not installed")
    before = log_lines(node, b'"http":2')
    st, base_latency = get_ok(node)
    prober = Prober(node)
    prober.start()
    conns = []
    t_end = time.monotonic() + 5.0  # an attacker that reconnects for 5 s
    while time.monotonic() < t_end or len(conns) < 5:
        conns.append(rapid_reset_conn(node.port, 100000))
    prober.finish()
    reset_lines = log_lines(node, b'"http":2') - before
    # The node closes with the client's frames still unread, so the kernel may answer with a
    # TCP reset that overtakes the GOAWAY before the client reads it: every connection must
    # end, most must see the GOAWAY, and none another error code.
    for i, (sent, goaway, closed) in enumerate(conns):
        results.check(goaway in (None, ENHANCE_YOUR_CALM), "connection %d: GOAWAY code %s"
                      % (i, goaway))
        results.check(closed, "connection %d: not closed by the server" % i)
        results.check(sent < 100000, "connection %d: all %d pairs accepted" % (i, sent))
    seen = sum(1 for c in conns if c[1] == ENHANCE_YOUR_CALM)
    results.check(seen * 2 >= len(conns), "GOAWAY seen on %d of %d connections"
                  % (seen, len(conns)))
    total = sum(c[0] for c in conns)
    note(results, "  rapid reset: %d pairs sent over %d connections, %d HTTP/2 access-log lines; "
         "normal GETs during the attack: %d, median %.1f ms (before %.1f ms), %d errors"
         % (total, len(conns), reset_lines, len(prober.statuses),
            median(prober.latencies) * 1e3, base_latency * 1e3, len(prober.errors)))
    results.check(reset_lines < total // 10, "access log flooded: %d lines for %d reset streams"
                  % (reset_lines, total))
    results.check(prober.statuses and all(s == 200 for s in prober.statuses) and
                  not prober.errors, "normal GETs during the attack: %s %s"
                  % (sorted(set(prober.statuses)), prober.errors[:3]))
    results.check(log_lines(node, b"too many reset streams") + log_lines(
        node, b"resets too many streams") >= len(conns), "no GOAWAY warning logged")


def h2_frame(ftype, flags, sid, payload):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", sid) + payload)


def h2_floods(results, node):
    """CONTINUATION without end, and PING / SETTINGS floods from a client that never reads:
    h2o 2.2.5 bounds the first (it refuses a header block past its request size limit) and
    stops reading while its own answers are unread; the node's memory must stay put."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b"")
    floods = {
        "CONTINUATION": h2_frame(1, 0x1, 1, b"\x82") + h2_frame(9, 0, 1, b"\x40\x01a\x01b" * 3000),
        "PING": h2_frame(6, 0, 0, b"12345678") * 1000,
        "SETTINGS": h2_frame(4, 0, 0, struct.pack(">HI", 3, 100)) * 1000,
    }
    idle = node.rss_anon_kib()
    for what, chunk in floods.items():
        s = socket.create_connection(("127.0.0.1", node.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(preface)
        s.settimeout(3)
        sent, ended = 0, "still open"
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 5 and sent < (64 << 20):
                s.sendall(chunk if what != "CONTINUATION" or sent == 0
                          else h2_frame(9, 0, 1, b"\x40\x01a\x01b" * 3000))
                sent += len(chunk)
        except socket.timeout:
            ended = "the node stopped reading"
        except (ConnectionResetError, BrokenPipeError):
            ended = "closed by the node"
        rss = node.rss_anon_kib()
        st = get_ok(node)[0]
        s.close()
        note(results, "  %s flood: %.1f MB sent, %s; RssAnon %d KiB (idle %d KiB); normal GET %d"
             % (what, sent / 1e6, ended, rss, idle, st))
        results.eq(st, 200, "normal GET during the %s flood" % what)
        results.check(ended != "still open", "%s flood: %.1f MB accepted in 5 s"
                      % (what, sent / 1e6))
        results.check(rss <= idle + 32 * 1024, "%s flood: RssAnon %d KiB, idle %d KiB"
                      % (what, rss, idle))


def header_timeout(results, node):
    s = socket.create_connection(("127.0.0.1", node.port))
    t0 = time.monotonic()
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    s.settimeout(HEADER_TIMEOUT_S + 10)
    closed_after = None
    try:
        for i in range(40):  # a byte every 0.25 s keeps the head growing, never complete
            try:
                s.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - t0
                break
            s.settimeout(0.25)
            try:
                if s.recv(1024) == b"":
                    closed_after = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed_after = time.monotonic() - t0
                break
    finally:
        s.close()
    note(results, "  header time-out %ds: half-sent request closed after %s s"
         % (HEADER_TIMEOUT_S, "%.2f" % closed_after if closed_after else "never"))
    results.check(closed_after is not None, "a half-sent request head stayed open for 10 s")
    results.check(closed_after is None or closed_after >= HEADER_TIMEOUT_S - 0.1,
                  "closed before the header time-out: %.2f s" % (closed_after or 0))
    results.eq(get_ok(node)[0], 200, "normal GET afterwards")


def open_idle(src, port, n):
    """Opens n connections from src; returns (kept open, refused at once)."""
    kept, refused = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            refused += 1
            s.close()
            continue
        kept.append(s)
    time.sleep(0.3)
    alive = []
    for s in kept:
        s.setblocking(False)
        try:
            d = s.recv(1)
            gone = d == b""
        except BlockingIOError:
            gone = False
        except OSError:
            gone = True
        if gone:
            refused += 1
            s.close()
        else:
            alive.append(s)
    return alive, refused


def connection_flood(results, node):
    one, refused = open_idle("127.0.0.2", node.port, 3 * PER_ADDRESS)
    note(results, "  flood from one address: %d kept, %d refused (cap %d)"
         % (len(one), refused, PER_ADDRESS))
    results.check(len(one) <= PER_ADDRESS, "one address holds %d connections, cap %d"
                  % (len(one), PER_ADDRESS))
    results.eq(get_ok(node)[0], 200, "normal client during a one-address flood")
    many = []
    for i in range(3, 3 + (MAX_CONNS // PER_ADDRESS) + 2):
        kept, _ = open_idle("127.0.0.%d" % i, node.port, PER_ADDRESS)
        many += kept
    total = len(one) + len(many)
    note(results, "  flood from %d addresses: %d connections held of %d (%d reserved)"
         % (2 + MAX_CONNS // PER_ADDRESS, total, MAX_CONNS, RESERVED))
    # Past MAX_CONNS - RESERVED, an address holding SMALL_CLIENT or more gets nothing more.
    addresses = 2 + MAX_CONNS // PER_ADDRESS
    results.check(total <= MAX_CONNS - RESERVED + SMALL_CLIENT * addresses,
                  "flooding addresses took %d connections, %d are reserved of %d"
                  % (total, RESERVED, MAX_CONNS))
    results.eq(get_ok(node)[0], 200, "normal client with every flooding address at its cap")
    # keep-alive idle time-out: the flood is closed by the node
    deadline = time.monotonic() + KEEPALIVE_S + 10
    held = one + many
    while time.monotonic() < deadline and held:
        time.sleep(0.5)
        rest = []
        for s in held:
            try:
                d = s.recv(1)
                gone = d == b""
            except BlockingIOError:
                gone = False
            except OSError:
                gone = True
            if gone:
                s.close()
            else:
                rest.append(s)
        held = rest
    results.eq(len(held), 0, "idle connections still open 10 s after the keep-alive time-out")
    for s in held:
        s.close()


def wide_manifests(results, node):
    c = harness.Client(node.url, timeout=120)
    for _ in range(20):
        c.get("/v2/")
    c.close()
    time.sleep(1.0)
    idle = node.rss_anon_kib()
    body = (b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
            b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":'
            b'"sha256:' + b"a" * 64 + b'","size":1},"layers":[' +
            b",".join([b"{}"] * 1000000) + b"]}")
    statuses = []
    peak = [idle]

    def one(i):
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=120)
        conn.request("PUT", "/v2/wide/m/manifests/t%d" % i, body,
                     {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        r = conn.getresponse()
        r.read()
        statuses.append(r.status)
        conn.close()
        peak[0] = max(peak[0], node.rss_anon_kib())

    for _ in range(2):
        ts = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    time.sleep(1.0)
    after = node.rss_anon_kib()
    note(results, "  wide manifests: 32 x %d bytes, statuses %s; RssAnon idle %d KiB, peak seen "
         "%d KiB, after %d KiB" % (len(body), sorted(set(statuses)), idle, peak[0], after))
    results.check(statuses and all(s == 400 for s in statuses), "statuses %s" % statuses[:5])
    with open("/proc/%d/maps" % node.pid()) as f:
        if "libasan" in f.read():
            results.skip("RssAnon is about the optimised binary (AddressSanitizer quarantines "
                         "freed memory)")
    results.check(after <= idle * 1.2 + 16 * 1024,
                  "RssAnon after the burst %d KiB, idle %d KiB" % (after, idle))


def phase_count(node, phase):
    """portolan_upload_phase_seconds_count{phase=...} of node's /metrics (0 when absent)."""
    c = harness.Client(node.url, timeout=30)
    r = c.get("/metrics")
    c.close()
    want = 'portolan_upload_phase_seconds_count{phase="%s"} ' % phase
    for ln in r.body.decode("utf-8", "replace").splitlines():
        if ln.startswith(want):
            return int(ln.split()[-1])
    return 0


def body_memory_guard(results):
    """With --body-spill-threshold 32MiB, a body of 8 MiB stays in memory (its upload records a
    "copy" phase) while the node's anonymous memory is below --body-memory-limit, and goes to
    a temp file (a "hash" phase instead) while it is above: many such bodies at once cannot
    take memory without bound."""
    data = os.urandom(8 << 20)
    for limit, in_memory in (("2GiB", True), ("1MiB", False)):
        with harness.Node(args=["--body-spill-threshold", "32MiB",
                                "--body-memory-limit", limit]) as node:
            time.sleep(0.5)  # past a check of the node's memory (every 100 ms)
            c = harness.Client(node.url, timeout=60)
            digest = c.push_blob("guard/mem", data)
            r = c.get("/v2/guard/mem/blobs/%s" % digest)
            c.close()
            results.check(r.status == 200 and r.body == data,
                          "limit %s: blob read back: %s" % (limit, r.describe()))
            copies, hashed = phase_count(node, "copy"), phase_count(node, "hash")
            note(results, "  body memory limit %s: copy %d, hash %d" % (limit, copies, hashed))
            results.eq((copies > 0, hashed > 0), (in_memory, not in_memory),
                       "limit %s: (in memory, spilled) of an 8 MiB body" % limit)


def main(results):
    if results.target != "portolan":
        results.run("hostile_clients", lambda: results.skip("portolan only"))
        return
    args = ["--header-timeout", "%ds" % HEADER_TIMEOUT_S,
            "--keepalive-timeout", "%ds" % KEEPALIVE_S,
            "--max-connections-per-address", str(PER_ADDRESS),
            "--max-connections", str(MAX_CONNS),
            "--reserved-connections", str(RESERVED),
            "--http2-max-resets", "100"]
    with harness.Node(args=args) as node:
        c = harness.Client(node.url, timeout=30)
        img = harness.make_image(layers=2, layer_size=4096)
        img.push(c, "kept/image", "v1")
        c.close()
        for name, fn in (("smuggling", smuggling), ("rapid_reset", rapid_reset),
                         ("h2_floods", h2_floods),
                         ("header_timeout", header_timeout),
                         ("connection_flood", connection_flood),
                         ("wide_manifests", wide_manifests)):
            results.run(name, node.guard(results, fn), results, node)

        def acknowledged_kept():
            c = harness.Client(node.url, timeout=30)
            r = c.get_manifest("kept/image", "v1")
            results.eq(r.status, 200, "manifest pushed before the attacks")
            results.eq(r.body, img.bytes, "manifest bytes")
            for digest, data in img.blobs:
                r = c.get("/v2/kept/image/blobs/%s" % digest)
                results.check(r.status == 200 and r.body == data, "blob %s" % digest)
            c.close()
        results.run("acknowledged_kept", node.guard(results, acknowledged_kept))
    results.run("body_memory_guard", body_memory_guard, results)
