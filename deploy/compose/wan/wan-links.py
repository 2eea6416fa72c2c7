#!/usr/bin/env python3
"""wan-links.py - the compose demo's WAN between regions: the project's user-space WAN
emulator (tests/lib/wan.py, wan_proxy.py) run as a container, one TCP proxy per link.

Role: the kernel of the machines the demo was made on has no netem, so the delay and the
bandwidth limit of the links between regions come from this process. Each region's Raft +
peer address in the cluster file names this container (wan:7001 for eu, ...); every link
forwards to the region's real port, so all Raft and blob-replication traffic between regions
crosses a delay line and a token bucket per destination region. TLS passes through untouched
(the proxy works on TCP bytes; the regions authenticate each other end to end).

Configuration (environment):
  WAN_LINKS         LISTEN_PORT=HOST:PORT,...  e.g. "7001=eu:7000,7002=us:7000,7003=ap:7000"
                    (HOST is resolved at every connection: a restarted region's new address
                    is found)
  WAN_DELAY_MS      one-way delay of every link in milliseconds (default 40: RTT 80 ms)
  WAN_JITTER_MS     delay jitter, milliseconds (default 2; never reorders)
  WAN_BANDWIDTH     bytes per second per link and direction (default 25000000; 0 = unlimited)
Runs until SIGTERM or SIGINT, then closes every link. Python 3 standard library only.
"""

import os
import signal
import sys
import threading

sys.path.insert(0, os.environ.get("WAN_LIB", "/usr/lib/portolan-wan"))
import wan  # noqa: E402


def parse_links(text):
    """[(listen_port, host, port)] from WAN_LINKS; raises ValueError naming the bad entry."""
    links = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            listen, target = item.split("=", 1)
            host, port = target.rsplit(":", 1)
            links.append((int(listen), host, int(port)))
        except ValueError:
            raise ValueError("WAN_LINKS: bad entry %r (want LISTEN_PORT=HOST:PORT)" % item)
    if not links:
        raise ValueError("WAN_LINKS: no links")
    return links


def number(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise ValueError("%s: not a number: %r" % (name, os.environ.get(name)))


def main():
    try:
        specs = parse_links(os.environ.get("WAN_LINKS", ""))
        delay = number("WAN_DELAY_MS", 40)
        jitter = number("WAN_JITTER_MS", 2)
        bandwidth = int(number("WAN_BANDWIDTH", 25000000)) or None
    except ValueError as e:
        print("wan-links: %s" % e, file=sys.stderr)
        return 2
    links = []
    for listen, host, port in specs:
        link = wan.Link(listen, host, port, delay_ms=delay, bandwidth_bps=bandwidth,
                        jitter_ms=min(jitter, delay), listen_host="0.0.0.0",
                        name="wan-%d-%s" % (listen, host))
        link.start()
        links.append(link)
        print("wan-links: :%d -> %s:%d delay %g ms (+/- %g), %s B/s" % (
            listen, host, port, delay, min(jitter, delay), bandwidth or "unlimited"), flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    for link in links:
        link.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
