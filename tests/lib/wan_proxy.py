"""wan_proxy.py - the data plane of the WAN emulator (tests/lib/wan.py): the proxied
connections and what happens to their bytes on the way: delay line, token bucket, cut state
and byte flips, all run on one asyncio event loop thread.

Role: wan.py holds the public API (Link, RegionLink, Wan) and its argument checks; this file
holds the machinery a Link drives: _Loop (the event loop thread and its call()), _Channel (one
direction of travel, shared by every connection carrying it), _Pump (one direction of one
connection), _Side (the protocol of one socket) and _Conn (one proxied connection). These
reach into their Link's private state (_chan, _conns, _waiting, _connecting, _events, _fwd,
_in, _closing, window_bytes, max_connections); only the loop thread touches it.
Python 3 standard library only.

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
