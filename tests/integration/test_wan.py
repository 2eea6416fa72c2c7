"""The WAN emulator (tests/lib/wan.py) tested on its own, with plain sockets as endpoints.

Role: multi-region tests trust these proxies for their latency, bandwidth, partitions, resets
and corruption; this module checks each against measurement, without any registry:
  - RTT through a Link is 2 x its one-way delay (and follows set_delay, per direction);
    jitter varies it within bounds and never reorders the stream;
  - a 20 MB transfer at 50 MB/s takes 0.4 s within 15%, in each direction, and two
    connections share one link's rate; with 50 ms delay and no limit a link carries
    100 MB/s or more;
  - cut("a2b") holds a2b data while b2a keeps flowing, heal delivers what was held, intact;
    a cut back-pressures the sender within the window; a connection made during a cut
    reaches the target only after heal;
  - flip_next_byte changes exactly the one byte asked for, in the direction asked for;
  - bytes already in flight when a cut starts are held too and cross again after heal; an
    EOF sent during a cut follows the data held before it;
  - reset_connections RSTs both ends; a refused target RSTs the dialling side, a target's
    RST reaches the client after the data sent before it; max_connections is enforced;
  - bytes_forwarded / bytes_received / connections count exactly; half-close is forwarded;
  - a Wan routes across regions, partitions groups of regions, controls a region pair;
  - stop() joins the link's thread and closes its port; bad arguments raise ValueError.
Needs no portolan binary; runs in about 10 s (TIMEOUT leaves room for a loaded machine).
"""

import hashlib
import os
import socket
import statistics
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness  # noqa: E402,F401  (the runner's conventions: results come from harness)
import wan  # noqa: E402

TIMEOUT = 90
HOST = "127.0.0.1"
MB = 1_000_000


def note(results, msg):
    if results.verbose:
        print(msg, flush=True)


# -- endpoints ------------------------------------------------------------------------------


class Target:
    """A listening socket the test accepts from itself, so both ends of a proxied connection
    are in the test's hands."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def accept(self, timeout=2.0):
        """The next accepted socket, or None if none arrives within timeout."""
        self.sock.settimeout(timeout)
        try:
            s, _ = self.sock.accept()
        except socket.timeout:
            return None
        s.settimeout(5)
        return s

    def close(self):
        self.sock.close()


class Echo:
    """A threaded echo server."""

    def __init__(self):
        self.target = Target()
        self.port = self.target.port
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                s = self.target.accept(timeout=0.2)
            except OSError:
                return
            if s is not None:
                threading.Thread(target=self._echo, args=(s,), daemon=True).start()

    @staticmethod
    def _echo(s):
        s.settimeout(30)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                s.sendall(data)
        except OSError:
            pass
        finally:
            s.close()

    def close(self):
        self.stopped = True
        self.target.close()


def pair(link, target):
    c = socket.create_connection(link.address, timeout=5)
    s = target.accept()
    if s is None:
        c.close()
        raise AssertionError("the target saw no connection through %r" % link)
    return c, s


def recv_exact(sock, n, timeout=5.0):
    sock.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def nothing_within(sock, wait):
    """True if no byte (and no EOF) arrives on sock within wait seconds."""
    sock.settimeout(wait)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except socket.timeout:
        return True
    return False


def outcome(sock, timeout=2.0):
    """What a read sees next: "reset", "eof", "data" or "timeout"."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"
    return "data" if data else "eof"


def wait_until(pred, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def rtts(sock, count=12, size=64):
    """count round trips of size bytes on an echo connection, in ms."""
    out = []
    msg = os.urandom(size)
    for _ in range(count):
        t0 = time.monotonic()
        sock.sendall(msg)
        back = recv_exact(sock, size)
        out.append((time.monotonic() - t0) * 1000)
        if back != msg:
            raise AssertionError("echo returned different bytes")
    return out


def check_rtt(t, samples, want_ms, what, slack_ms=10.0):
    lo, med = min(samples), statistics.median(samples)
    t.check(lo >= want_ms - 1.0, "%s: fastest RTT %.1f ms, want >= %.1f" % (what, lo, want_ms - 1))
    t.check(med <= want_ms + slack_ms,
            "%s: median RTT %.1f ms, want <= %.1f" % (what, med, want_ms + slack_ms))
    return med


# -- tests ----------------------------------------------------------------------------------


def test_rtt(t):
    echo = Echo()
    try:
        with wan.Link(0, HOST, echo.port, delay_ms=40) as link:
            c = socket.create_connection(link.address, timeout=5)
            rtts(c, 2)  # the first trip also dials the target
            m40 = check_rtt(t, rtts(c), 80, "delay 40")
            link.set_delay(10)
            rtts(c, 1)
            m10 = check_rtt(t, rtts(c), 20, "delay 10")
            link.set_delay(30, "a2b")
            link.set_delay(0, "b2a")
            rtts(c, 1)
            m30 = check_rtt(t, rtts(c), 30, "a2b 30 / b2a 0")
            link.set_delay(0)
            rtts(c, 1)
            m0 = statistics.median(rtts(c))
            t.check(m0 < 5, "delay 0: median RTT %.1f ms, want < 5" % m0)
            c.close()
            note(t, "  RTT median: delay 40 -> %.1f ms, 10 -> %.1f, 30/0 -> %.1f, 0 -> %.2f"
                 % (m40, m10, m30, m0))
    finally:
        echo.close()


def test_jitter(t):
    echo = Echo()
    try:
        with wan.Link(0, HOST, echo.port, delay_ms=20, jitter_ms=10, seed=7) as link:
            c = socket.create_connection(link.address, timeout=5)
            rtts(c, 1)
            samples = rtts(c, 30, size=16)  # rtts() checks the echo is intact and in order
            lo, hi = min(samples), max(samples)
            t.check(lo >= 20 - 1, "jitter: fastest RTT %.1f ms, want >= 19" % lo)
            t.check(hi <= 60 + 10, "jitter: slowest RTT %.1f ms, want <= 70" % hi)
            t.check(hi - lo >= 4, "jitter: RTTs span only %.1f ms (%.1f..%.1f)" % (hi - lo, lo, hi))
            # Many small writes in a row arrive in order despite per-chunk jitter.
            stream = os.urandom(20000)
            for i in range(0, len(stream), 500):
                c.sendall(stream[i:i + 500])
            t.check(recv_exact(c, len(stream)) == stream, "jitter reordered the stream")
            c.close()
            note(t, "  jitter 20+-10 ms: RTT %.1f..%.1f ms" % (lo, hi))
    finally:
        echo.close()


class Sink:
    """Accepts connections on a Target and reads each to EOF, timing first and last byte."""

    def __init__(self, target, conns):
        self.target = target
        self.got = []  # per connection: (bytes, t_first, t_last)
        self.threads = [threading.Thread(target=self._one, daemon=True) for _ in range(conns)]
        self.lock = threading.Lock()
        for th in self.threads:
            th.start()

    def _one(self):
        s = self.target.accept(timeout=10)
        if s is None:
            return
        n, first, last = 0, None, None
        buf = bytearray(1 << 20)
        s.settimeout(20)
        try:
            while True:
                k = s.recv_into(buf)
                if not k:
                    break
                last = time.monotonic()
                if first is None:
                    first = last
                n += k
        except OSError:
            pass
        s.close()
        with self.lock:
            self.got.append((n, first, last))

    def join(self):
        for th in self.threads:
            th.join(30)


def send_all(sock, total, chunk=1 << 20):
    block = os.urandom(chunk)
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        sock.sendall(block[:n])
        sent += n
    sock.shutdown(socket.SHUT_WR)


def test_bandwidth_a2b(t):
    total, rate = 20 * MB, 50 * MB
    target = Target()
    try:
        with wan.Link(0, HOST, target.port, delay_ms=5, bandwidth_bps=rate) as link:
            sink = Sink(target, 1)
            c = socket.create_connection(link.address, timeout=10)
            t0 = time.monotonic()
            send_all(c, total)
            sink.join()
            c.close()
            t.require(sink.got and sink.got[0][0] == total,
                      "sink got %r, want %d bytes" % (sink.got, total))
            elapsed = sink.got[0][2] - t0 - 0.005
            got = total / elapsed
            t.check(abs(got - rate) <= 0.15 * rate,
                    "a2b: %.1f MB/s for 20 MB at 50 MB/s (%.3f s)" % (got / MB, elapsed))
            t.eq(link.bytes_forwarded["a2b"], total, "bytes_forwarded a2b")
            note(t, "  a2b 20 MB at 50 MB/s: %.2f MB/s (%.3f s)" % (got / MB, elapsed))
    finally:
        target.close()


def test_bandwidth_b2a(t):
    """The target sends; the limit applies the other way round."""
    total, rate = 20 * MB, 50 * MB
    target = Target()
    try:
        with wan.Link(0, HOST, target.port, delay_ms=5, bandwidth_bps=rate) as link:
            c, s = pair(link, target)
            t0 = time.monotonic()
            th = threading.Thread(target=send_all, args=(s, total), daemon=True)
            th.start()
            n, buf = 0, bytearray(1 << 20)
            c.settimeout(20)
            while n < total:
                k = c.recv_into(buf)
                if not k:
                    break
                n += k
            elapsed = time.monotonic() - t0 - 0.005
            th.join(10)
            c.close()
            s.close()
            t.eq(n, total, "bytes received b2a")
            got = n / elapsed
            t.check(abs(got - rate) <= 0.15 * rate,
                    "b2a: %.1f MB/s for 20 MB at 50 MB/s (%.3f s)" % (got / MB, elapsed))
            note(t, "  b2a 20 MB at 50 MB/s: %.2f MB/s (%.3f s)" % (got / MB, elapsed))
    finally:
        target.close()


def test_bandwidth_shared(t):
    """Two connections on one link share its rate; set_bandwidth changes it."""
    each, rate = 5 * MB, 20 * MB
    target = Target()
    try:
        with wan.Link(0, HOST, target.port, bandwidth_bps=50 * MB) as link:
            link.set_bandwidth(rate)
            sink = Sink(target, 2)
            socks = [socket.create_connection(link.address, timeout=10) for _ in range(2)]
            t0 = time.monotonic()
            senders = [threading.Thread(target=send_all, args=(s, each), daemon=True)
                       for s in socks]
            for th in senders:
                th.start()
            for th in senders:
                th.join(20)
            sink.join()
            for s in socks:
                s.close()
            t.require(len(sink.got) == 2 and all(g[0] == each for g in sink.got),
                      "sink got %r" % sink.got)
            elapsed = max(g[2] for g in sink.got) - t0
            got = 2 * each / elapsed
            t.check(abs(got - rate) <= 0.15 * rate,
                    "2 connections: %.1f MB/s together, want 20 MB/s +-15%%" % (got / MB))
            note(t, "  2 x 5 MB sharing 20 MB/s: %.2f MB/s together" % (got / MB))
    finally:
        target.close()


def test_throughput_with_delay(t):
    """No bandwidth limit, 50 ms delay: the delay line must not throttle (>= 100 MB/s)."""
    total = 150 * MB
    target = Target()
    try:
        with wan.Link(0, HOST, target.port, delay_ms=50) as link:
            sink = Sink(target, 1)
            c = socket.create_connection(link.address, timeout=10)
            t0 = time.monotonic()
            send_all(c, total)
            sink.join()
            c.close()
            t.require(sink.got and sink.got[0][0] == total, "sink got %r" % sink.got)
            first, last = sink.got[0][1], sink.got[0][2]
            t.check(first - t0 >= 0.049, "first byte after %.1f ms, want >= 50"
                    % ((first - t0) * 1000))
            got = total / (last - t0)
            t.check(got >= 100 * MB, "50 ms delay, no limit: %.1f MB/s, want >= 100" % (got / MB))
            note(t, "  150 MB with 50 ms delay, no limit: %.1f MB/s (endpoints in this process)"
                 % (got / MB))
    finally:
        target.close()


def test_cut_one_way(t):
    target = Target()
    try:
        with wan.Link(0, HOST, target.port, delay_ms=10) as link:
            c, s = pair(link, target)
            link.cut("a2b")
            t.check(link.is_cut("a2b") and not link.is_cut("b2a"), "is_cut after cut(a2b)")
            before = link.bytes_forwarded
            c.sendall(b"held-a2b")
            s.sendall(b"still-b2a")
            t.eq(recv_exact(c, 9, timeout=2), b"still-b2a", "b2a while a2b is cut")
            t.check(nothing_within(s, 0.3), "a2b data crossed a cut")
            t.eq(link.bytes_forwarded["a2b"], before["a2b"], "bytes_forwarded a2b during cut")
            t0 = time.monotonic()
            link.heal("a2b")
            t.eq(recv_exact(s, 8, timeout=2), b"held-a2b", "held a2b data after heal")
            waited = (time.monotonic() - t0) * 1000
            t.check(9 <= waited <= 60, "held data arrived %.1f ms after heal, want ~10" % waited)

            link.cut("b2a")
            s.sendall(b"held-b2a")
            c.sendall(b"still-a2b")
            t.eq(recv_exact(s, 9, timeout=2), b"still-a2b", "a2b while b2a is cut")
            t.check(nothing_within(c, 0.3), "b2a data crossed a cut")
            link.heal()
            t.eq(recv_exact(c, 8, timeout=2), b"held-b2a", "held b2a data after heal")
            t.eq(link.connections, 1, "connections (a cut closes nothing)")
            c.close()
            s.close()
    finally:
        target.close()


def test_cut_in_flight(t):
    """Bytes already on the wire when a cut starts are held too and cross again after heal;
    an EOF sent during a cut is held like data."""
    target = Target()
    try:
        with wan.Link(0, HOST, target.port, delay_ms=100) as link:
            c, s = pair(link, target)
            c.sendall(b"in-flight")
            time.sleep(0.03)
            link.cut("a2b")
            t.check(nothing_within(s, 0.25), "bytes in flight crossed a cut")
            t0 = time.monotonic()
            link.heal("a2b")
            t.eq(recv_exact(s, 9, timeout=2), b"in-flight", "in-flight bytes after heal")
            waited = (time.monotonic() - t0) * 1000
            t.check(99 <= waited <= 160, "in-flight bytes arrived %.1f ms after heal, want ~100"
                    % waited)
            link.cut("a2b")
            c.sendall(b"tail")
            c.shutdown(socket.SHUT_WR)
            t.check(nothing_within(s, 0.25), "data or EOF crossed a cut")
            link.heal("a2b")
            t.eq(recv_exact(s, 4, timeout=2), b"tail", "data sent before the EOF, after heal")
            t.eq(outcome(s), "eof", "EOF after heal")
            s.close()
            c.close()
    finally:
        target.close()


def test_cut_new_connection(t):
    target = Target()
    try:
        with wan.Link(0, HOST, target.port, delay_ms=5) as link:
            link.cut()
            c = socket.create_connection(link.address, timeout=5)
            c.sendall(b"hello")
            t.check(target.accept(timeout=0.3) is None, "a connection crossed a full cut")
            link.heal("a2b")
            t.check(target.accept(timeout=0.2) is None,
                    "a connection crossed while b2a was still cut")
            link.heal("b2a")
            s = target.accept(timeout=2)
            t.require(s is not None, "no connection at the target after heal")
            t.eq(recv_exact(s, 5), b"hello", "data sent during the cut")
            s.sendall(b"world")
            t.eq(recv_exact(c, 5), b"world", "answer after heal")
            c.close()
            s.close()
    finally:
        target.close()


def test_cut_backpressure(t):
    """A cut holds at most a window per connection, then blocks the sender; heal delivers
    every byte in order."""
    window = 1 << 20
    target = Target()
    try:
        with wan.Link(0, HOST, target.port, window_bytes=window) as link:
            c, s = pair(link, target)
            link.cut("a2b")
            c.setblocking(False)
            sent = bytearray()
            block = os.urandom(65536)
            deadline = time.monotonic() + 5
            stalled_since = None
            while time.monotonic() < deadline:
                try:
                    n = c.send(block)
                    sent += block[:n]
                    stalled_since = None
                except BlockingIOError:
                    stalled_since = stalled_since or time.monotonic()
                    if time.monotonic() - stalled_since > 0.3:
                        break
                    time.sleep(0.01)
            c.setblocking(True)
            held = link.bytes_received["a2b"]
            t.check(window <= held <= window + 2 * 262144,
                    "the proxy took %d bytes during the cut, want about the %d window"
                    % (held, window))
            t.check(len(sent) < 64 * MB, "the sender was never blocked (%d bytes)" % len(sent))
            t.eq(link.bytes_forwarded["a2b"], 0, "bytes_forwarded during the cut")
            link.heal()
            got = recv_exact(s, len(sent), timeout=10)
            t.check(hashlib.sha256(got).digest() == hashlib.sha256(sent).digest(),
                    "after heal: %d of %d bytes, content %s" % (
                        len(got), len(sent), "equal" if got == sent else "differs"))
            note(t, "  cut with a 1 MiB window: sender blocked after %d bytes (proxy held %d)"
                 % (len(sent), held))
            c.close()
            s.close()
    finally:
        target.close()


def test_flip(t):
    target = Target()
    try:
        with wan.Link(0, HOST, target.port) as link:
            c, s = pair(link, target)
            data = os.urandom(1 << 20)
            pos = 3 * 65536 + 17
            link.flip_next_byte("a2b", after_bytes=pos)
            c.sendall(data)
            got = recv_exact(s, len(data))
            t.require(len(got) == len(data), "a2b: got %d bytes" % len(got))
            diff = [i for i in range(len(data)) if got[i] != data[i]]
            t.eq(diff, [pos], "a2b corrupted offsets")
            if diff == [pos]:
                t.eq(got[pos] ^ data[pos], 0x01, "a2b flip mask")
            t.eq(link.corruptions, [{"direction": "a2b", "conn": 1, "offset": pos,
                                     "before": data[pos], "after": data[pos] ^ 1}],
                 "corruptions")

            link.flip_next_byte("b2a", after_bytes=0, mask=0xFF)
            s.sendall(data)
            got = recv_exact(c, len(data))
            diff = [i for i in range(len(data)) if got[i] != data[i]]
            t.eq(diff, [0], "b2a corrupted offsets")
            # Counting starts at the call: bytes already through do not count.
            link.flip_next_byte("a2b", after_bytes=10)
            c.sendall(data[:100])
            got = recv_exact(s, 100)
            t.eq([i for i in range(100) if got[i] != data[i]], [10], "second a2b flip")
            # Nothing pending: the stream is clean again.
            c.sendall(data)
            t.check(recv_exact(s, len(data)) == data, "bytes corrupted with no flip pending")
            s.sendall(data)
            t.check(recv_exact(c, len(data)) == data, "b2a corrupted with no flip pending")
            t.eq(len(link.corruptions), 3, "corruption records")
            c.close()
            s.close()
    finally:
        target.close()


def test_reset(t):
    target = Target()
    try:
        with wan.Link(0, HOST, target.port, delay_ms=5) as link:
            pairs = [pair(link, target) for _ in range(3)]
            t.eq(link.connections, 3, "connections before reset")
            t.eq(link.reset_connections(), 3, "reset_connections() count")
            t.eq(link.connections, 0, "connections after reset")
            for i, (c, s) in enumerate(pairs):
                t.eq(outcome(c), "reset", "client %d after reset" % i)
                t.eq(outcome(s), "reset", "target side %d after reset" % i)
                c.close()
                s.close()
            c, s = pair(link, target)
            c.sendall(b"again")
            t.eq(recv_exact(s, 5), b"again", "a new connection after reset")
            c.close()
            s.close()
            t.eq(link.connections_total, 4, "connections_total")
        # Beyond max_connections the proxy RSTs new connections and keeps the others.
        with wan.Link(0, HOST, target.port, max_connections=2) as link:
            pairs = [pair(link, target) for _ in range(2)]
            extra = socket.create_connection(link.address, timeout=5)
            t.eq(outcome(extra), "reset", "a connection beyond max_connections")
            c, s = pairs[0]
            c.sendall(b"kept")
            t.eq(recv_exact(s, 4), b"kept", "a connection within the limit")
            t.eq(link.connections, 2, "connections at the limit")
            for sock in [extra] + [x for p in pairs for x in p]:
                sock.close()
    finally:
        target.close()


def test_refused_and_rst(t):
    dead = Target()
    port = dead.port
    dead.close()
    with wan.Link(0, HOST, port, delay_ms=5) as link:
        c = socket.create_connection(link.address, timeout=5)
        t.eq(outcome(c), "reset", "connecting to a refused target")
        c.close()
        t.check(wait_until(lambda: link.connections == 0), "connections after refusal")
    # An RST from the target reaches the client (after the data sent before it).
    target = Target()
    try:
        with wan.Link(0, HOST, target.port, delay_ms=5) as link:
            c, s = pair(link, target)
            s.sendall(b"last words")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            t.eq(recv_exact(c, 10), b"last words", "data before the RST")
            t.eq(outcome(c), "reset", "client after the target's RST")
            t.check(wait_until(lambda: link.connections == 0), "connections after an RST")
            c.close()
    finally:
        target.close()


def test_counts_and_half_close(t):
    target = Target()
    try:
        with wan.Link(0, HOST, target.port, delay_ms=5) as link:
            c, s = pair(link, target)
            t.eq(link.connections, 1, "connections")
            up, down = os.urandom(123457), os.urandom(54321)
            c.sendall(up)
            s.sendall(down)
            t.eq(recv_exact(s, len(up)), up, "a2b bytes")
            t.eq(recv_exact(c, len(down)), down, "b2a bytes")
            t.eq(link.bytes_forwarded, {"a2b": len(up), "b2a": len(down)}, "bytes_forwarded")
            t.eq(link.bytes_received, {"a2b": len(up), "b2a": len(down)}, "bytes_received")
            # Half-close: the client's EOF reaches the target, which can still answer.
            c.shutdown(socket.SHUT_WR)
            t.eq(outcome(s), "eof", "target after the client's shutdown")
            s.sendall(b"after-eof")
            t.eq(recv_exact(c, 9), b"after-eof", "answer after the client's EOF")
            s.close()
            t.eq(outcome(c), "eof", "client after the target closed")
            t.check(wait_until(lambda: link.connections == 0),
                    "connections after both ends closed: %d" % link.connections)
            t.eq(link.bytes_forwarded, {"a2b": len(up), "b2a": len(down) + 9},
                 "bytes_forwarded at the end")
            c.close()
    finally:
        target.close()


def test_wan(t):
    echoes = {r: Echo() for r in ("eu", "us", "ap")}
    targets = []
    try:
        with wan.Wan(["eu", "us", "ap"], delay_ms=15) as w:
            for r, e in echoes.items():
                w.add_target(r, HOST, e.port)
            t.eq(len(w.links), 6, "links in a 3-region mesh with one target each")
            t.eq(w.route("eu", HOST, echoes["eu"].port), (HOST, echoes["eu"].port),
                 "route within a region")

            def dial(src, dst):
                s = socket.create_connection(w.route(src, HOST, echoes[dst].port), timeout=5)
                rtts(s, 1)
                return s

            eu_us, eu_ap, us_ap = dial("eu", "us"), dial("eu", "ap"), dial("us", "ap")
            check_rtt(t, rtts(eu_us, 6), 30, "eu->us")

            w.partition({"eu"}, {"us", "ap"})
            t.check(w.link("eu", "us").is_cut("a2b") and w.link("us", "eu").is_cut("a2b"),
                    "eu-us cut both ways")
            t.check(not w.link("us", "ap").is_cut("a2b"), "us-ap untouched")
            check_rtt(t, rtts(us_ap, 4), 30, "us->ap during the partition")
            eu_us.sendall(b"x")
            t.check(nothing_within(eu_us, 0.3), "eu->us answered across the partition")
            w.heal()
            t.eq(recv_exact(eu_us, 1), b"x", "held byte after heal")

            w.link("eu", "us").set_delay(40)
            check_rtt(t, rtts(eu_us, 6), 80, "eu->us after set_delay(40) on the pair")
            check_rtt(t, rtts(eu_ap, 6), 30, "eu->ap unchanged")
            w.set_delay(5)
            check_rtt(t, rtts(eu_ap, 6), 10, "eu->ap after wan.set_delay(5)")

            # The pair view from "us": its b2a is us -> eu... as seen by eu's client, b2a.
            fw = w.link("us", "eu").bytes_forwarded
            fwd = w.link("eu", "us").bytes_forwarded
            t.eq((fw["a2b"], fw["b2a"]), (fwd["b2a"], fwd["a2b"]), "pair view directions")
            t.check(fwd["a2b"] > 0 and fwd["a2b"] == fwd["b2a"],
                    "eu<->us echo bytes: %r" % fwd)

            # One-way cut through the reversed view: us->eu cut means eu's echoes stall.
            w.link("us", "eu").cut("a2b")
            eu_us.sendall(b"y")
            t.check(nothing_within(eu_us, 0.2), "us->eu answered while cut")
            w.link("eu", "us").heal("b2a")
            t.eq(recv_exact(eu_us, 1), b"y", "echo after healing us->eu")

            w.link("eu", "us").flip_next_byte("b2a", after_bytes=3)
            eu_us.sendall(b"abcdefgh")
            back = recv_exact(eu_us, 8)
            t.eq(back, b"abc" + bytes([ord("d") ^ 1]) + b"efgh", "flip via the pair")
            t.eq([e["direction"] for e in w.link("eu", "us").corruptions], ["b2a"],
                 "pair corruption direction")

            t.eq(w.link("eu", "us").connections, 1, "eu-us connections")
            t.eq(w.reset_connections(), 3, "wan.reset_connections()")
            t.eq(outcome(eu_us), "reset", "eu->us after reset")
            for s in (eu_us, eu_ap, us_ap):
                s.close()

            # Uneven traffic both ways, on links made while the Wan runs: the pair's counts
            # name directions by region, whichever region dialled.
            in_us, in_eu = Target(), Target()
            targets.extend((in_us, in_eu))
            w.add_target("us", HOST, in_us.port)
            w.add_target("eu", HOST, in_eu.port)
            t.eq(len(w.links), 10, "links after two more targets")
            before = w.link("eu", "us").bytes_forwarded
            c1 = socket.create_connection(w.route("eu", HOST, in_us.port), timeout=5)
            c2 = socket.create_connection(w.route("us", HOST, in_eu.port), timeout=5)
            s1, s2 = in_us.accept(), in_eu.accept()
            t.require(s1 is not None and s2 is not None, "no connection at the new targets")
            c1.sendall(b"1" * 1000)
            s1.sendall(b"2" * 10)
            c2.sendall(b"3" * 500)
            s2.sendall(b"4" * 7)
            got = (len(recv_exact(s1, 1000)), len(recv_exact(c1, 10)),
                   len(recv_exact(s2, 500)), len(recv_exact(c2, 7)))
            t.eq(got, (1000, 10, 500, 7), "bytes across the new links")
            after = w.link("eu", "us").bytes_forwarded
            t.eq({d: after[d] - before[d] for d in after}, {"a2b": 1007, "b2a": 510},
                 "eu->us / us->eu bytes")
            rev = w.link("us", "eu").bytes_forwarded
            t.eq(rev, {"a2b": after["b2a"], "b2a": after["a2b"]}, "the pair seen from us")
            for s in (c1, c2, s1, s2):
                s.close()
    finally:
        for e in echoes.values():
            e.close()
        for x in targets:
            x.close()


def test_stop_and_arguments(t):
    target = Target()
    try:
        link = wan.Link(0, HOST, target.port).start()
        thread = link._loop.thread
        c, s = pair(link, target)
        port = link.port
        link.stop()
        t.check(not thread.is_alive(), "the link's thread still runs after stop()")
        t.eq(outcome(c), "reset", "open connection after stop()")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            t.check(False, "the port still accepts after stop()")
        except ConnectionRefusedError:
            pass
        link.stop()  # idempotent
        c.close()
        s.close()
    finally:
        target.close()

    link = wan.Link(0, HOST, 9)
    bad = [
        ("cut sideways", lambda: link.cut("sideways")),
        ("negative delay", lambda: link.set_delay(-1)),
        ("huge delay", lambda: link.set_delay(10 ** 9)),
        ("zero bandwidth", lambda: link.set_bandwidth(0)),
        ("flip both", lambda: link.flip_next_byte("both")),
        ("flip mask 0", lambda: link.flip_next_byte("a2b", 0, mask=0)),
        ("negative after_bytes", lambda: link.flip_next_byte("a2b", -1)),
        ("port 70000", lambda: wan.Link(70000, HOST, 9)),
        ("target port 0", lambda: wan.Link(0, HOST, 0)),
        ("one region", lambda: wan.Wan(["eu"])),
        ("duplicate regions", lambda: wan.Wan(["eu", "eu"])),
        ("overlapping partition", lambda: wan.Wan(["a", "b"]).partition({"a"}, {"a", "b"})),
        ("unknown region", lambda: wan.Wan(["a", "b"]).link("a", "c")),
    ]
    for what, fn in bad:
        try:
            fn()
            t.check(False, "%s: no ValueError" % what)
        except ValueError:
            pass


TESTS = [
    test_rtt,
    test_jitter,
    test_bandwidth_a2b,
    test_bandwidth_b2a,
    test_bandwidth_shared,
    test_throughput_with_delay,
    test_cut_one_way,
    test_cut_in_flight,
    test_cut_new_connection,
    test_cut_backpressure,
    test_flip,
    test_reset,
    test_refused_and_rst,
    test_counts_and_half_close,
    test_wan,
    test_stop_and_arguments,
]


def main(results):
    for fn in TESTS:
        results.run(fn.__name__[len("test_"):], fn, results)
