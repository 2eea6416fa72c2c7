"""wan.py - a user-space WAN emulator for multi-region tests: TCP proxies with one-way delay,
jitter, bandwidth, partitions, resets and byte corruption.

Role: the kernel on the test machines has no netem, so region-to-region traffic between nodes
on loopback goes through these proxies. A node in region "eu" that should reach a node of
region "us" dials the proxy the Wan gives it for that (region, target) instead of the target.
Python 3 standard library only.

API
---
    link = Link(listen_port, target_host, target_port, delay_ms=0, bandwidth_bps=None,
                jitter_ms=0, *, listen_host="127.0.0.1", burst_bytes=65536,
                window_bytes=16 MiB, max_connections=4096, seed=None, name=None)
        One listening port forwarding every accepted connection to one target. listen_port 0
        picks a free port (link.port after start()). The side that connects to the proxy is
        "a", the target is "b": direction "a2b" carries what the connecting side sends, "b2a"
        what the target answers. Each direction is controlled on its own.
    link.start(); link.stop()          # also a context manager; stop() RSTs open connections
                                       # and joins the link's thread
    link.port, link.address            # the proxy's port, (listen_host, port)
    link.set_delay(ms, direction="both")          # one-way delay: RTT = 2 x delay
    link.set_jitter(ms, direction="both")         # each chunk's delay uniform in delay +/- ms
    link.set_bandwidth(bps_or_None, direction="both")
    link.cut(direction="both"); link.heal(direction="both"); link.is_cut(direction)
    link.reset_connections()                      # RST both ends of every proxied connection
    link.flip_next_byte(direction="a2b", after_bytes=0, mask=0x01)
    link.bytes_forwarded   # {"a2b": n, "b2a": n}: bytes delivered to the far end
    link.bytes_received    # {"a2b": n, "b2a": n}: bytes taken from the near end
    link.connections       # proxied connections open now; link.connections_total: ever accepted
    link.corruptions       # one dict per flipped byte: direction, conn (serial), offset (in
                           # that connection's stream in that direction), before, after

    wan = Wan(["eu", "us", "ap"], delay_ms=0, bandwidth_bps=None, jitter_ms=0, *,
              listen_host="127.0.0.1", burst_bytes=65536, window_bytes=16 MiB, seed=None)
    wan.start(); wan.stop()                       # also a context manager
    wan.add_target("us", "127.0.0.1", 7001)       # a listening endpoint of a node in "us";
                                                  # makes one Link to it from every other region
    wan.route("eu", "127.0.0.1", 7001)            # -> (host, port) a node in "eu" dials to reach
                                                  # it (the target itself within its own region)
    wan.link("eu", "us")      # a RegionLink: the same control methods and counters as Link,
                              # where "a2b" means eu -> us and "b2a" us -> eu; .links lists
                              # (Link, flipped): flipped when the Link's a2b is us -> eu
    wan.partition({"eu"}, {"us", "ap"})           # cut both ways between regions of different
                                                  # groups (regions not named are untouched)
    wan.heal()                                    # heal every cut
    wan.set_delay(ms); wan.set_jitter(ms); wan.set_bandwidth(bps)  # every region pair
    wan.reset_connections(); wan.links            # every Link

Units: delays in milliseconds (floats allowed); bandwidth in BYTES per second (tc's "bps"
unit), None for unlimited.

Model
-----
- Delay line. Every chunk read from a socket is stamped with its arrival time (departure from
  the bandwidth limiter + one-way delay + jitter) and queued; a timer delivers it when that
  time comes. Reading never sleeps for the delay, so delay does not throttle throughput: up
  to window_bytes per connection and direction may be on the wire (bandwidth-delay product:
  16 MiB / 50 ms = 320 MB/s). Jitter never reorders: a chunk never arrives before the one
  read before it (a TCP stream cannot be reordered, only delayed).
- Bandwidth. A token bucket per direction of a link (per direction of a region pair in a
  Wan), shared by all the connections it carries: tokens accrue at the rate up to
  burst_bytes; a chunk that finds too few tokens departs when the debt is paid, and the
  sending socket is not read again until then, so the sender is back-pressured like at a
  real bottleneck. Limited chunks are split into pieces of about 2 ms so delivery stays
  smooth. Changing the rate applies to chunks read afterwards.
- Partition (cut). A cut direction delivers nothing, and drops nothing: bytes keep being
  accepted until the connection's window is full, then the sender's writes block, which is
  what TCP does across a partition (segments are lost and retransmitted, the stream stays
  intact). On heal, held bytes cross again (one more delay, at the bandwidth limit). Bytes
  are never silently discarded, because no real partition can make a TCP stream skip bytes:
  a gap would test corruption handling, not partition handling (flip_next_byte does that).
  A partition never closes a connection: the proxy acknowledges bytes locally, so the ends
  never see a TCP timeout; an application timeout fires by itself, and reset_connections()
  ends connections the way a kernel's retransmission timeout would. A connection accepted
  while either direction is cut is held: the target sees no connection until both
  directions heal (the dialling side's connect() succeeds at once, as the proxy's listening
  socket is local, and then hears nothing).
- Connections. The target is dialled one a2b delay after the proxy accepts (the SYN's trip);
  if it refuses, the dialling side gets an RST one b2a delay later. A half-close (EOF) is
  forwarded in order after the data; when both directions have ended the connection closes.
  An RST from one end reaches the other after the data queued before it. reset_connections()
  aborts both ends at once with an RST (SO_LINGER 0).
- Corruption. flip_next_byte XORs mask into exactly one byte: the one at offset after_bytes
  among the bytes that enter that direction after the call, whichever connection carries
  it (in a Wan RegionLink: whichever link of the region pair). Flips may be queued.

Threads: a Link runs its connections on an asyncio event loop in a thread of its own; a Wan
runs all its Links on one such thread (region pairs share token buckets and cut state, which
the loop thread alone touches). Every control method may be called from any thread: it runs
on the loop thread and returns once in effect. Counters are read without locking (ints and
copies, consistent per value, not across values).

Measured on the shared 2-core test machine: with 50 ms delay and no bandwidth limit one
connection carries about 280 MB/s (the window bound above; endpoints in another process),
about 230-265 MB/s with the endpoints in the proxy's own process, for about 0.07 s of CPU
per 100 MB; 20 MB at a 50 MB/s limit arrives at 47.6-49.6 MB/s; RTT is 2 x delay + 0.5-1 ms.
"""

import asyncio
import collections
import concurrent.futures
import random
import socket
import struct
import threading
import time

DIRECTIONS = ("a2b", "b2a")
DEFAULT_BURST = 64 * 1024
DEFAULT_WINDOW = 16 * 1024 * 1024
MAX_DELAY_MS = 600_000.0
MAX_CONNECTIONS = 4096
CONNECT_TIMEOUT = 10.0
CONTROL_TIMEOUT = 10.0
SLICE_SECONDS = 0.002  # a rate-limited chunk is delivered in pieces of about this duration
MIN_SLICE = 16 * 1024
EARLY = 0.0005  # deliver a chunk this much ahead of its time rather than arm a timer for it
WRITE_HIGH = 1024 * 1024  # per-socket write buffer before the proxy stops delivering to it
WRITE_LOW = 256 * 1024


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


_EOF = _Marker("EOF")
_RST = _Marker("RST")


def _check_ms(ms, what):
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not 0 <= ms <= MAX_DELAY_MS:
        raise ValueError("%s must be a number of ms in [0, %g], got %r" % (what, MAX_DELAY_MS, ms))
    return float(ms) / 1000.0


def _check_rate(bps):
    if bps is None:
        return None
    if isinstance(bps, bool) or not isinstance(bps, (int, float)) or not 1 <= bps <= 1e12:
        raise ValueError("bandwidth must be None or bytes/s in [1, 1e12], got %r" % (bps,))
    return float(bps)


def _check_port(port, what, allow_zero):
    low = 0 if allow_zero else 1
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= 65535:
        raise ValueError("%s must be a TCP port, got %r" % (what, port))
    return port


def _directions(direction, allow_both=True):
    if direction == "both" and allow_both:
        return DIRECTIONS
    if direction in DIRECTIONS:
        return (direction,)
    raise ValueError("direction must be %s, got %r"
                     % ("'a2b', 'b2a' or 'both'" if allow_both else "'a2b' or 'b2a'", direction))


def _rst(transport):
    """Abort transport so that its peer sees an RST rather than a FIN."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


class _Loop:
    """An asyncio event loop running in a daemon thread; call() runs a function on it."""

    def __init__(self, name):
        self.name = name
        self.loop = None
        self.thread = None
        self._ready = threading.Event()

    @property
    def running(self):
        return self.thread is not None and self.thread.is_alive() and self.loop.is_running()

    def start(self):
        if self.thread is not None:
            raise RuntimeError("%s: already started" % self.name)
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._on_exception)
        self.thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self):
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
            tasks = asyncio.all_tasks(self.loop)
            for t in tasks:
                t.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    @staticmethod
    def _on_exception(loop, context):
        # A peer that vanishes mid-write is what these tests are about, not an error.
        if isinstance(context.get("exception"), OSError):
            return
        loop.default_exception_handler(context)

    def call(self, fn, *args):
        """Run fn(*args) on the loop thread (directly when not running) and return its value;
        a coroutine function's coroutine is awaited there."""
        if not self.running or threading.current_thread() is self.thread:
            if asyncio.iscoroutinefunction(fn):
                raise RuntimeError("%s: not running" % self.name)
            return fn(*args)
        if asyncio.iscoroutinefunction(fn):
            fut = asyncio.run_coroutine_threadsafe(fn(*args), self.loop)
        else:
            fut = concurrent.futures.Future()

            def run():
                try:
                    fut.set_result(fn(*args))
                except BaseException as e:  # handed to the calling thread
                    fut.set_exception(e)

            self.loop.call_soon_threadsafe(run)
        return fut.result(CONTROL_TIMEOUT)

    def now(self):
        """The loop's clock (time.monotonic, which is also the clock before start)."""
        return self.loop.time() if self.loop is not None else time.monotonic()

    def stop(self):
        if self.thread is None or not self.thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(CONTROL_TIMEOUT)
        if self.thread.is_alive():
            raise RuntimeError("%s: loop thread did not stop" % self.name)


class _Channel:
    """One direction of travel: delay, jitter, token bucket, cut state and pending byte flips.
    Shared by every connection (and in a Wan every link) carrying that direction. Owned by
    the loop thread."""

    def __init__(self, delay, jitter, rate, burst, seed):
        self.delay = delay
        self.jitter = jitter
        self.burst = float(burst)
        self.rng = random.Random(seed)
        self.rate = None
        self.slice = None
        self.tokens = self.burst
        self.t_tokens = 0.0
        self.set_rate(rate)
        self.is_cut = False
        self.resume_at = 0.0  # nothing held by a cut is delivered before this time
        self.seen = 0  # bytes that entered this direction, all connections
        self.flips = []  # [absolute position in self.seen, mask], sorted
        self.pumps = set()
        self.links = set()

    def set_rate(self, rate):
        self.rate = rate
        self.slice = max(MIN_SLICE, int(rate * SLICE_SECONDS)) if rate else None

    def reserve(self, n, now):
        """Take n bytes' tokens; return when the last of them leaves the bottleneck."""
        if self.rate is None:
            return now
        tokens = self.tokens + (now - self.t_tokens) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        tokens -= n
        self.tokens = tokens
        self.t_tokens = now
        return now if tokens >= 0 else now - tokens / self.rate

    def one_way(self):
        if not self.jitter:
            return self.delay
        d = self.delay + self.rng.uniform(-self.jitter, self.jitter)
        return d if d > 0 else 0.0

    def cut(self):
        self.is_cut = True

    def heal(self, now):
        if not self.is_cut:
            return
        self.is_cut = False
        self.resume_at = now + self.delay
        for p in list(self.pumps):
            p.on_heal()
        for link in list(self.links):
            link._on_heal()

    def corrupt(self, data, pump):
        start = self.seen
        end = start + len(data)
        buf = bytearray(data)
        while self.flips and self.flips[0][0] < end:
            pos, mask = self.flips.pop(0)
            i = max(pos - start, 0)
            before = buf[i]
            buf[i] ^= mask
            pump.conn.link._events.append({
                "direction": pump.direction, "conn": pump.conn.serial,
                "offset": pump.seen + i, "before": before, "after": buf[i]})
        return bytes(buf)


class _Pump:
    """One direction of one proxied connection: reads from src, delivers to dst through the
    channel's bandwidth limiter and delay line. Owned by the loop thread."""

    __slots__ = ("conn", "chan", "direction", "src", "dst", "loop", "window", "q", "qbytes",
                 "held", "heldbytes", "last_t", "timer", "timer_at", "hold_until",
                 "hold_handle", "full", "src_paused", "src_eof", "dst_paused", "eof_done",
                 "rst_fed", "seen", "closed", "fwd", "received")

    def __init__(self, conn, chan, direction, src, dst):
        self.conn = conn
        self.chan = chan
        self.direction = direction
        self.src = src  # "a" or "b": the side read from
        self.dst = dst
        self.loop = conn.loop
        self.window = conn.link.window_bytes
        self.q = collections.deque()  # (arrival time, bytes | _EOF | _RST)
        self.qbytes = 0
        self.held = collections.deque()  # entered while cut: bytes | markers
        self.heldbytes = 0
        self.last_t = 0.0
        self.timer = None
        self.timer_at = 0.0
        self.hold_until = 0.0  # the bucket's departure time of the last chunk read
        self.hold_handle = None
        self.full = False
        self.src_paused = False
        self.src_eof = False
        self.dst_paused = False
        self.eof_done = False
        self.rst_fed = False
        self.seen = 0
        self.closed = False
        self.fwd = conn.link._fwd
        self.received = conn.link._in
        chan.pumps.add(self)

    # -- input ----------------------------------------------------------------------------

    def feed(self, data):
        if self.closed:
            return
        n = len(data)
        self.received[self.direction] += n
        chan = self.chan
        if chan.flips and chan.flips[0][0] < chan.seen + n:
            data = chan.corrupt(data, self)
        chan.seen += n
        self.seen += n
        if chan.is_cut or self.held:
            self.held.append(data)
            self.heldbytes += n
        else:
            self._admit(data)
        self._throttle()

    def feed_eof(self):
        self.src_eof = True
        self.src_paused = False
        self.feed_marker(_EOF)

    def feed_marker(self, marker):
        if self.closed:
            return
        if marker is _RST:
            if self.rst_fed:
                return
            self.rst_fed = True
        if self.chan.is_cut or self.held:
            self.held.append(marker)
        else:
            self._admit(marker)

    def _admit(self, item):
        chan = self.chan
        now = self.loop.time()
        was_empty = not self.q
        if item.__class__ is _Marker:
            pieces = (item,)
        elif chan.slice and len(item) > chan.slice:
            mv = memoryview(item)
            pieces = [mv[i:i + chan.slice] for i in range(0, len(item), chan.slice)]
        else:
            pieces = (item,)
        t = 0.0
        for piece in pieces:
            n = 0 if piece.__class__ is _Marker else len(piece)
            depart = chan.reserve(n, now)
            t = depart + chan.one_way()
            if t < self.last_t:
                t = self.last_t
            self.last_t = t
            self.q.append((t, piece))
            self.qbytes += n
            if depart > self.hold_until:
                self.hold_until = depart
        if was_empty:
            self._schedule(self.q[0][0])

    def _throttle(self):
        """Pause reading src while the bucket is in debt for it or its window is full."""
        total = self.qbytes + self.heldbytes
        if total >= self.window:
            self.full = True
        elif total < self.window // 2:
            self.full = False
        wait = self.hold_until - self.loop.time()
        if wait > EARLY and self.hold_handle is None:
            self.hold_handle = self.loop.call_at(self.hold_until, self._hold_done)
        tr = self.conn.t[self.src]
        if tr is None or self.src_eof or self.closed:
            return
        pause = self.full or wait > EARLY
        if pause and not self.src_paused:
            tr.pause_reading()
            self.src_paused = True
        elif not pause and self.src_paused:
            tr.resume_reading()
            self.src_paused = False

    def _hold_done(self):
        self.hold_handle = None
        if not self.closed:
            self._throttle()

    def on_heal(self):
        if self.closed:
            return
        held = self.held
        self.heldbytes = 0
        while held:
            self._admit(held.popleft())
        self._throttle()
        self.deliver()

    # -- output ---------------------------------------------------------------------------

    def _schedule(self, t):
        if self.timer is not None:
            if self.timer_at <= t:
                return
            self.timer.cancel()
        self.timer_at = t
        self.timer = self.loop.call_at(t, self.deliver)

    def deliver(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.closed:
            return
        tr = self.conn.t[self.dst]
        chan = self.chan
        if tr is None or chan.is_cut:
            return  # kicked again on connect / heal
        q = self.q
        now = self.loop.time()
        direction = self.direction
        while q:
            if self.dst_paused:
                break  # kicked again by resume_writing
            t, item = q[0]
            if t < chan.resume_at:
                t = chan.resume_at
            if t > now + EARLY:
                self._schedule(t)
                break
            q.popleft()
            if item.__class__ is _Marker:
                if item is _EOF:
                    if not self.eof_done:
                        self.eof_done = True
                        if tr.can_write_eof():
                            tr.write_eof()
                        self.conn.eof_delivered()
                else:
                    self.conn.rst_delivered(self.dst)
                if self.closed:
                    return
                continue
            n = len(item)
            self.qbytes -= n
            self.fwd[direction] += n
            tr.write(item)
        if self.src_paused and self.full:
            self._throttle()

    def close(self):
        """Stop for good: drop anything queued and cancel timers."""
        self.closed = True
        self.q.clear()
        self.held.clear()
        self.qbytes = self.heldbytes = 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.hold_handle is not None:
            self.hold_handle.cancel()
            self.hold_handle = None
        self.chan.pumps.discard(self)


class _Side(asyncio.Protocol):
    """The protocol of one of a proxied connection's two sockets."""

    def __init__(self, link, conn, name):
        self.link = link
        self.conn = conn
        self.name = name
        self.out = None  # pump reading from this socket
        self.into = None  # pump writing to it

    def connection_made(self, transport):
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        if self.name == "a":
            if self.link._closing or len(self.link._conns) >= self.link.max_connections:
                _rst(transport)
                return
            self.conn = _Conn(self.link, transport)
            self.out, self.into = self.conn.a2b, self.conn.b2a
            self.conn.start()
        else:
            if self.conn.finished:
                _rst(transport)
                self.conn = None
                return
            self.out, self.into = self.conn.b2a, self.conn.a2b
            self.conn.connected(transport)

    def data_received(self, data):
        self.out.feed(data)

    def eof_received(self):
        self.out.feed_eof()
        return True  # keep the socket open: the other direction may still be flowing

    def pause_writing(self):
        if self.into is not None:
            self.into.dst_paused = True

    def resume_writing(self):
        if self.into is not None:
            self.into.dst_paused = False
            self.into.deliver()

    def connection_lost(self, exc):
        if self.conn is not None and self.into is not None:
            self.conn.side_lost(self.name)


class _Conn:
    """One proxied connection: socket a (accepted), socket b (dialled to the target) and the
    two pumps between them. Owned by the loop thread."""

    def __init__(self, link, ta):
        link.connections_total += 1
        self.serial = link.connections_total
        self.link = link
        self.loop = link._loop.loop
        self.t = {"a": ta, "b": None}
        self.lost = {"a": False, "b": False}
        self.closing = False
        self.finished = False
        self.connect_handle = None
        self.connect_task = None
        self.a2b = _Pump(self, link._chan["a2b"], "a2b", "a", "b")
        self.b2a = _Pump(self, link._chan["b2a"], "b2a", "b", "a")
        link._conns.add(self)

    def start(self):
        self.connect_handle = self.loop.call_later(self.a2b.chan.one_way(), self.try_connect)

    def try_connect(self):
        self.connect_handle = None
        if self.finished:
            return
        if self.link._chan["a2b"].is_cut or self.link._chan["b2a"].is_cut:
            self.link._waiting.add(self)
            return
        self.connect_task = self.loop.create_task(self._connect())

    async def _connect(self):
        link = self.link
        loop = self.loop
        task = asyncio.current_task()
        link._connecting.add(task)
        sock = None
        salvage = []
        try:
            infos = await loop.getaddrinfo(link.target_host, link.target_port,
                                           type=socket.SOCK_STREAM)
            err = OSError("no address for %s" % link.target_host)
            for family, kind, proto, _name, addr in infos:
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                try:
                    await asyncio.wait_for(loop.sock_connect(sock, addr), CONNECT_TIMEOUT)
                    break
                except (OSError, asyncio.TimeoutError) as e:
                    # A target that answered and reset at once (before this loop saw the
                    # connect finish) leaves its bytes readable: they go before the RST.
                    salvage = self._drain(sock)
                    sock.close()
                    sock = None
                    err = e
                    if salvage:
                        break
            if sock is None:
                raise err
            await loop.create_connection(lambda: _Side(link, self, "b"), sock=sock)
            sock = None  # the transport owns it
        except (OSError, asyncio.TimeoutError):
            if not self.finished:
                self.lost["b"] = True
                self.a2b.close()
                for data in salvage:
                    self.b2a.feed(data)
                self.b2a.feed_marker(_RST)  # the dialling side hears it one trip later
        finally:
            if sock is not None:
                sock.close()
            link._connecting.discard(task)
            self.connect_task = None

    @staticmethod
    def _drain(sock, limit=1 << 20):
        out = []
        total = 0
        while total < limit:
            try:
                data = sock.recv(262144)
            except OSError:
                break
            if not data:
                break
            out.append(data)
            total += len(data)
        return out

    def connected(self, tb):
        self.t["b"] = tb
        self.a2b.deliver()

    def eof_delivered(self):
        if self.a2b.eof_done and self.b2a.eof_done:
            self.closing = True
            for tr in self.t.values():
                if tr is not None:
                    tr.close()
            self.finish()

    def rst_delivered(self, side):
        """An RST crossed to `side`: abort it (and whatever is left of the other end)."""
        self.reset()

    def side_lost(self, side):
        """Socket `side` went away without the proxy closing it (an RST or a write error)."""
        if self.closing or self.finished:
            return
        self.lost[side] = True
        into, out = (self.b2a, self.a2b) if side == "a" else (self.a2b, self.b2a)
        into.close()
        if self.lost["a"] and self.lost["b"]:
            self.closing = True
            self.finish()
            return
        out.feed_marker(_RST)  # the other end hears of it after what was sent before

    def reset(self):
        self.closing = True
        for tr in self.t.values():
            _rst(tr)
        self.finish()

    def finish(self):
        if self.finished:
            return
        self.finished = True
        self.a2b.close()
        self.b2a.close()
        if self.connect_handle is not None:
            self.connect_handle.cancel()
            self.connect_handle = None
        # A dial in progress is left to finish: the target may already have accepted, and
        # only a transport can RST it (cancelling would close the socket with a FIN).
        self.link._conns.discard(self)
        self.link._waiting.discard(self)


class Link:
    """One listening port forwarding to one target; see the module comment."""

    def __init__(self, listen_port, target_host, target_port, delay_ms=0, bandwidth_bps=None,
                 jitter_ms=0, *, listen_host="127.0.0.1", burst_bytes=DEFAULT_BURST,
                 window_bytes=DEFAULT_WINDOW, max_connections=MAX_CONNECTIONS, seed=None,
                 name=None, _loop=None, _channels=None):
        self.listen_port = _check_port(listen_port, "listen_port", True)
        self.target_port = _check_port(target_port, "target_port", False)
        if not isinstance(target_host, str) or not target_host:
            raise ValueError("target_host must be a host name or address")
        if not isinstance(listen_host, str) or not listen_host:
            raise ValueError("listen_host must be a host name or address")
        if not isinstance(burst_bytes, int) or not 0 <= burst_bytes <= 1 << 30:
            raise ValueError("burst_bytes must be in [0, 1 GiB], got %r" % (burst_bytes,))
        if not isinstance(window_bytes, int) or not 64 * 1024 <= window_bytes <= 1 << 30:
            raise ValueError("window_bytes must be in [64 KiB, 1 GiB], got %r" % (window_bytes,))
        if not isinstance(max_connections, int) or not 1 <= max_connections <= 65536:
            raise ValueError("max_connections must be in [1, 65536]")
        self.target_host = target_host
        self.listen_host = listen_host
        self.window_bytes = window_bytes
        self.max_connections = max_connections
        self.name = name or "wan-link-%s:%d" % (target_host, target_port)
        if _channels is None:
            delay = _check_ms(delay_ms, "delay_ms")
            jitter = _check_ms(jitter_ms, "jitter_ms")
            rate = _check_rate(bandwidth_bps)
            rng = random.Random(seed)
            self._chan = {d: _Channel(delay, jitter, rate, burst_bytes, rng.random())
                          for d in DIRECTIONS}
        else:
            self._chan = dict(_channels)
        self._own_loop = _loop is None
        self._loop = _loop or _Loop(self.name)
        self._server = None
        self._conns = set()
        self._waiting = set()  # connections held back by a cut, dialled on heal
        self._connecting = set()  # tasks dialling the target
        self._events = []
        self._fwd = {"a2b": 0, "b2a": 0}
        self._in = {"a2b": 0, "b2a": 0}
        self._closing = False
        self._state = "new"
        self.connections_total = 0
        self.port = None

    def __repr__(self):
        return "<Link %s:%s -> %s:%d %s>" % (self.listen_host, self.port, self.target_host,
                                           self.target_port, self._state)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def address(self):
        return (self.listen_host, self.port)

    def start(self):
        if self._state != "new":
            raise RuntimeError("%r: start() twice" % self)
        if self._own_loop:
            self._loop.start()
        try:
            self._loop.call(self._serve)
        except BaseException:
            if self._own_loop:
                self._loop.stop()
            raise
        self._state = "running"
        return self

    async def _serve(self):
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Side(self, None, "a"), self.listen_host, self.listen_port,
            reuse_address=True, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        for chan in self._chan.values():
            chan.links.add(self)

    def stop(self):
        """Close the listening socket, RST every proxied connection and (for a Link of its
        own) join its thread. Idempotent."""
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "stopped"
        try:
            self._loop.call(self._shutdown)
        finally:
            if self._own_loop:
                self._loop.stop()

    async def _shutdown(self):
        self._closing = True
        self._server.close()
        for chan in self._chan.values():
            chan.links.discard(self)
        self._reset_all()
        if self._connecting:
            await asyncio.wait(list(self._connecting), timeout=CONNECT_TIMEOUT)
        await self._server.wait_closed()

    # -- control ----------------------------------------------------------------------------

    def _chans(self, direction, allow_both=True):
        return [self._chan[d] for d in _directions(direction, allow_both)]

    def set_delay(self, ms, direction="both"):
        s = _check_ms(ms, "delay")
        chans = self._chans(direction)
        self._loop.call(lambda: [setattr(c, "delay", s) for c in chans])

    def set_jitter(self, ms, direction="both"):
        s = _check_ms(ms, "jitter")
        chans = self._chans(direction)
        self._loop.call(lambda: [setattr(c, "jitter", s) for c in chans])

    def set_bandwidth(self, bps_or_none, direction="both"):
        rate = _check_rate(bps_or_none)
        chans = self._chans(direction)
        self._loop.call(lambda: [c.set_rate(rate) for c in chans])

    def cut(self, direction="both"):
        """Stop delivering in direction; nothing is dropped (see the module comment)."""
        chans = self._chans(direction)
        self._loop.call(lambda: [c.cut() for c in chans])

    def heal(self, direction="both"):
        chans = self._chans(direction)
        self._loop.call(lambda: [c.heal(self._loop.now()) for c in chans])

    def is_cut(self, direction):
        return self._chan[_directions(direction, False)[0]].is_cut

    def reset_connections(self):
        """RST both ends of every proxied connection (and any held by a cut) now."""
        return self._loop.call(self._reset_all)

    def _reset_all(self):
        conns = list(self._conns)
        for conn in conns:
            conn.reset()
        return len(conns)

    def flip_next_byte(self, direction="a2b", after_bytes=0, mask=0x01):
        """XOR mask into the byte at offset after_bytes among those entering direction from
        now on, on whichever connection carries it."""
        chan = self._chans(direction, False)[0]
        if isinstance(after_bytes, bool) or not isinstance(after_bytes, int) \
                or not 0 <= after_bytes <= 1 << 50:
            raise ValueError("after_bytes must be an int >= 0, got %r" % (after_bytes,))
        if isinstance(mask, bool) or not isinstance(mask, int) or not 1 <= mask <= 255:
            raise ValueError("mask must be in [1, 255], got %r" % (mask,))

        def add():
            chan.flips.append([chan.seen + after_bytes, mask])
            chan.flips.sort(key=lambda f: f[0])

        self._loop.call(add)

    def _on_heal(self):
        """A channel healed: dial the target for connections held back by a cut."""
        if self._chan["a2b"].is_cut or self._chan["b2a"].is_cut:
            return
        for conn in list(self._waiting):
            self._waiting.discard(conn)
            if not conn.finished and conn.connect_handle is None:
                conn.connect_handle = conn.loop.call_later(conn.a2b.chan.one_way(),
                                                           conn.try_connect)

    # -- counters ---------------------------------------------------------------------------

    @property
    def bytes_forwarded(self):
        return dict(self._fwd)

    @property
    def bytes_received(self):
        return dict(self._in)

    @property
    def connections(self):
        return len(self._conns)

    @property
    def corruptions(self):
        return list(self._events)


_FLIP = {"a2b": "b2a", "b2a": "a2b"}


class RegionLink:
    """The traffic between two regions of a Wan, seen from region a: "a2b" is a -> b. Made by
    Wan.link(a, b); a view, cheap to make."""

    def __init__(self, wan, a, b):
        self.wan = wan
        self.a = a
        self.b = b

    def __repr__(self):
        return "<RegionLink %s <-> %s>" % (self.a, self.b)

    def _chans(self, direction, allow_both=True):
        pairs = {"a2b": (self.a, self.b), "b2a": (self.b, self.a)}
        return [self.wan._chan[pairs[d]] for d in _directions(direction, allow_both)]

    @property
    def links(self):
        """(Link, flipped): flipped when the Link's a2b is this pair's b2a."""
        out = []
        for (src, _host, _port), link in self.wan._links.items():
            region = self.wan._targets[(link.target_host, link.target_port)]
            if (src, region) == (self.a, self.b):
                out.append((link, False))
            elif (src, region) == (self.b, self.a):
                out.append((link, True))
        return out

    def _apply(self, fn):
        return self.wan._loop.call(fn)

    def set_delay(self, ms, direction="both"):
        s = _check_ms(ms, "delay")
        chans = self._chans(direction)
        self._apply(lambda: [setattr(c, "delay", s) for c in chans])

    def set_jitter(self, ms, direction="both"):
        s = _check_ms(ms, "jitter")
        chans = self._chans(direction)
        self._apply(lambda: [setattr(c, "jitter", s) for c in chans])

    def set_bandwidth(self, bps_or_none, direction="both"):
        rate = _check_rate(bps_or_none)
        chans = self._chans(direction)
        self._apply(lambda: [c.set_rate(rate) for c in chans])

    def cut(self, direction="both"):
        chans = self._chans(direction)
        self._apply(lambda: [c.cut() for c in chans])

    def heal(self, direction="both"):
        chans = self._chans(direction)
        loop = self.wan._loop
        self._apply(lambda: [c.heal(loop.now()) for c in chans])

    def is_cut(self, direction):
        return self._chans(direction, False)[0].is_cut

    def reset_connections(self):
        links = [link for link, _ in self.links]
        return self._apply(lambda: sum(link._reset_all() for link in links))

    def flip_next_byte(self, direction="a2b", after_bytes=0, mask=0x01):
        pairs = {"a2b": (self.a, self.b), "b2a": (self.b, self.a)}
        src, dst = pairs[_directions(direction, False)[0]]
        # Any link carrying src -> dst shares the channel; use one to validate and queue.
        for link, _flipped in self.links:
            if link._chan["a2b"] is self.wan._chan[(src, dst)]:
                return link.flip_next_byte("a2b", after_bytes, mask)
            if link._chan["b2a"] is self.wan._chan[(src, dst)]:
                return link.flip_next_byte("b2a", after_bytes, mask)
        raise ValueError("no target between %s and %s" % (self.a, self.b))

    def _sum(self, attr):
        out = {"a2b": 0, "b2a": 0}
        for link, flipped in self.links:
            for d, n in getattr(link, attr).items():
                out[_FLIP[d] if flipped else d] += n
        return out

    @property
    def bytes_forwarded(self):
        return self._sum("bytes_forwarded")

    @property
    def bytes_received(self):
        return self._sum("bytes_received")

    @property
    def connections(self):
        return sum(link.connections for link, _ in self.links)

    @property
    def corruptions(self):
        out = []
        for link, flipped in self.links:
            for e in link.corruptions:
                e = dict(e, link=link)
                if flipped:
                    e["direction"] = _FLIP[e["direction"]]
                out.append(e)
        return out


class Wan:
    """A full mesh of emulated links between named regions; see the module comment."""

    def __init__(self, regions, delay_ms=0, bandwidth_bps=None, jitter_ms=0, *,
                 listen_host="127.0.0.1", burst_bytes=DEFAULT_BURST,
                 window_bytes=DEFAULT_WINDOW, seed=None):
        regions = list(regions)
        if not 2 <= len(regions) <= 64 or len(set(regions)) != len(regions) \
                or not all(isinstance(r, str) and r for r in regions):
            raise ValueError("regions must be 2 to 64 distinct non-empty names")
        delay = _check_ms(delay_ms, "delay_ms")
        jitter = _check_ms(jitter_ms, "jitter_ms")
        rate = _check_rate(bandwidth_bps)
        if not isinstance(burst_bytes, int) or not 0 <= burst_bytes <= 1 << 30:
            raise ValueError("burst_bytes must be in [0, 1 GiB]")
        if not isinstance(window_bytes, int) or not 64 * 1024 <= window_bytes <= 1 << 30:
            raise ValueError("window_bytes must be in [64 KiB, 1 GiB]")
        self.regions = regions
        self.listen_host = listen_host
        self.window_bytes = window_bytes
        self._chan = {(x, y): _Channel(delay, jitter, rate, burst_bytes,
                                       "%s:%s:%s" % (seed, x, y))
                      for x in regions for y in regions if x != y}
        self._links = {}  # (source region, target host, target port) -> Link
        self._targets = {}  # (target host, target port) -> region
        self._loop = _Loop("wan")
        self._state = "new"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _region(self, r):
        if r not in self.regions:
            raise ValueError("unknown region %r" % (r,))
        return r

    def start(self):
        if self._state != "new":
            raise RuntimeError("Wan: start() twice")
        self._loop.start()
        self._state = "running"
        try:
            for link in self._links.values():
                link.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "stopped"
        try:
            for link in self._links.values():
                link.stop()
        finally:
            self._loop.stop()

    def add_target(self, region, host, port):
        """Declare a listening endpoint of a node in region; makes a Link to it from every
        other region (started at once if the Wan is running)."""
        self._region(region)
        _check_port(port, "port", False)
        if (host, port) in self._targets:
            raise ValueError("target %s:%d already added" % (host, port))
        self._targets[(host, port)] = region
        for src in self.regions:
            if src == region:
                continue
            link = Link(0, host, port, listen_host=self.listen_host,
                        window_bytes=self.window_bytes,
                        name="wan-%s-%s-%s:%d" % (src, region, host, port), _loop=self._loop,
                        _channels={"a2b": self._chan[(src, region)],
                                   "b2a": self._chan[(region, src)]})
            self._links[(src, host, port)] = link
            if self._state == "running":
                link.start()

    def route(self, from_region, host, port):
        """The (host, port) a node in from_region dials to reach target host:port."""
        self._region(from_region)
        region = self._targets.get((host, port))
        if region is None:
            raise ValueError("unknown target %s:%s (add_target first)" % (host, port))
        if region == from_region:
            return (host, port)
        link = self._links[(from_region, host, port)]
        if link.port is None:
            raise RuntimeError("Wan not started")
        return link.address

    def link(self, a, b):
        if self._region(a) == self._region(b):
            raise ValueError("a region pair needs two regions")
        return RegionLink(self, a, b)

    @property
    def links(self):
        return list(self._links.values())

    def partition(self, *groups):
        """Cut both directions between every two regions in different groups."""
        groups = [set(g) for g in groups]
        seen = set()
        for g in groups:
            for r in g:
                self._region(r)
            if g & seen:
                raise ValueError("partition groups overlap")
            seen |= g
        chans = [self._chan[(x, y)] for i, gi in enumerate(groups)
                 for j, gj in enumerate(groups) if i != j for x in gi for y in gj]
        self._loop.call(lambda: [c.cut() for c in chans])

    def heal(self):
        chans = list(self._chan.values())
        self._loop.call(lambda: [c.heal(self._loop.now()) for c in chans])

    def set_delay(self, ms):
        s = _check_ms(ms, "delay")
        self._loop.call(lambda: [setattr(c, "delay", s) for c in self._chan.values()])

    def set_jitter(self, ms):
        s = _check_ms(ms, "jitter")
        self._loop.call(lambda: [setattr(c, "jitter", s) for c in self._chan.values()])

    def set_bandwidth(self, bps_or_none):
        rate = _check_rate(bps_or_none)
        self._loop.call(lambda: [c.set_rate(rate) for c in self._chan.values()])

    def reset_connections(self):
        links = self.links
        return self._loop.call(lambda: sum(link._reset_all() for link in links))
