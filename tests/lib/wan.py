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

The model (delay line, bandwidth, partition, connections, corruption) is described with
the code that implements it, in wan_proxy.py.

Threads: a Link runs its connections on an asyncio event loop in a thread of its own; a Wan
runs all its Links on one such thread (region pairs share token buckets and cut state, which
the loop thread alone touches). Every control method may be called from any thread: it runs
on the loop thread and returns once in effect. Counters are read without locking (ints and
copies, consistent per value, not across values).

Measured on the shared 2-core test machine: with 50 ms delay and no bandwidth limit one
connection carries about 280 MB/s (the window bound of the model; endpoints in another
process), about 230-265 MB/s with the endpoints in the proxy's own process, for about 0.07 s
of CPU per 100 MB; 20 MB at a 50 MB/s limit arrives at 47.6-49.6 MB/s; RTT is 2 x delay + 0.5-1 ms.
"""

import asyncio
import logging
import random

from wan_proxy import (CONNECT_TIMEOUT, DEFAULT_BURST, DEFAULT_WINDOW, DIRECTIONS,
                       MAX_CONNECTIONS, _Channel, _Loop, _Side)

# asyncio warns "socket.send() raised exception." for every write on a link whose far side is
# gone (a killed region, a cut link): expected here, and it drowned the tests' own output.
logging.getLogger("asyncio").setLevel(logging.ERROR)

MAX_DELAY_MS = 600_000.0


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
