"""partition.py - a three-region (or larger) Portolan cluster whose regions run in network
namespaces of their own, with links between regions cut and healed by nftables rules.

Role: tests/integration/test_partitions.py and bench/partitions.py partition a cluster in
every shape a WAN produces (a region cut off, a bridge region that alone reaches both ends,
a flapping link) while clients keep talking to every region. The kernel drops the packets,
as a real partition does: TCP sees silence, retransmits, and carries on after the heal,
with no user-space proxy in the path. When namespaces or nftables are not available (not
root, no `ip` or `nft`) the same API cuts links in the WAN emulator (tests/lib/wan.py)
instead, and says why. Python 3 standard library only, plus cluster.py / harness.py.

API
---
    c = PartitionCluster(3, args=("--write-timeout", "2s"))   # mode from PT_PARTITION_NET:
                                        # "auto" (default): namespaces when they work, else
                                        # the Wan; "netns" or "wan" to insist
    c.mode, c.fallback_reason           # "netns" or "wan"; why not netns (None when netns)
    with c:                             # cluster.Cluster's API: wait_leader(), regions, ...
        a, b, cc = c.regions
        c.cut(a, cc); c.mend(a, cc)     # one link, both directions
        c.isolate(a); c.partition({a}, {b, cc})   # every link between groups
        c.heal()                        # every link up again
        c.cut_links()                   # {frozenset({Region, Region})} cut now
        c.neighbours(a)                 # regions a has a link to now
        c.reaches_majority(a)           # a and its neighbours are a majority of the regions

Namespaces (mode "netns"). One bridge in the calling (root) namespace, <prefix>b, holding
10.S.T.254/24; region i lives in namespace ptpart-<pid>-<tag>-<i> behind a veth pair
(<prefix>h<i> on the bridge, <prefix>v<i> inside, 10.S.T.<i+1>/24); <prefix> is "pt" and five
random hex digits (<tag>), the /24 one no route of this host uses. Each region binds its
client port and its raft + peer port on its 10.S.T.x address and is started with `ip netns
exec <namespace>` (harness.Node's wrap); tests reach client ports from the root namespace
across the bridge. Each namespace holds one nftables table (inet, named <prefix>) with a set
`cut` of peer addresses and four rules dropping TCP to and from those addresses on any of
the cluster's raft + peer ports, in the input and output hooks. Cutting the link between
regions i and j adds j's address to i's set and i's to j's (one `nft -f -` per namespace);
mending removes them. Client ports are never filtered, so the tests still reach every
region; region-to-region traffic is nothing but the raft + peer port (Raft, forwarded writes
and blob transfer share it), so a cut link carries nothing between the two regions.

Clean-up. stop() (called by the cluster after its regions stopped, also when start()
fails) deletes the tables, the namespaces and the bridge; deleting a namespace takes its
veth pair with it. An atexit handler stops every cluster and network still running at exit
(an exception escaping a test, the runner's time limit; SIGTERM is turned into SystemExit
while a cluster runs, if nothing else handles it). A process killed outright cannot
clean up: the next PartitionCluster of any run first removes namespaces named
ptpart-<pid>-... whose <pid> is no longer alive, stopping the region processes still in
them, and their bridges.

WAN fallback (mode "wan"): cluster.Cluster with wan_delay_ms=0 (no delay); a cut link stops
delivering in both directions (wan_proxy.py's model: bytes are held, not dropped) and
mending delivers what was held.
"""

import atexit
import os
import re
import shutil
import signal
import subprocess
import threading

import cluster

IP = shutil.which("ip") or "/usr/sbin/ip"
NFT = shutil.which("nft") or "/usr/sbin/nft"
NS_PREFIX = "ptpart-"
COMMAND_TIMEOUT = 20  # seconds an `ip` or `nft` command may take

_live = []  # networks and clusters to stop at exit, most recent last
_live_lock = threading.Lock()


class NetworkError(RuntimeError):
    """An `ip` or `nft` command failed; the message has its output."""


def _run(cmd, stdin=None):
    """Runs cmd (a list); returns its stdout. Raises NetworkError with its output on
    failure."""
    try:
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                           timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NetworkError("%s: %s" % (" ".join(cmd), e)) from None
    if p.returncode != 0:
        raise NetworkError("%s: exit %d: %s" % (" ".join(cmd), p.returncode,
                                                 (p.stderr or p.stdout).strip()[:400]))
    return p.stdout


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale():
    """Removes the namespaces (and their bridges) that an earlier process of these tests
    left behind when it was killed: those named ptpart-<pid>-<tag>-<i> whose pid is gone.
    Region processes still inside them are killed (SIGKILL, by pid). Returns the names
    removed."""
    try:
        out = _run([IP, "netns", "list"])
    except NetworkError:
        return []
    removed = []
    tags = set()
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"^%s(\d+)-([0-9a-f]{5})-\d+$" % re.escape(NS_PREFIX), name)
        if not m or _alive(int(m.group(1))):
            continue
        try:
            for pid in _run([IP, "netns", "pids", name]).split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
        except NetworkError:
            pass
        try:
            _run([IP, "netns", "del", name])
            removed.append(name)
        except NetworkError:
            pass
        tags.add(m.group(2))
    for tag in tags:
        try:
            _run([IP, "link", "del", "pt%sb" % tag])
        except NetworkError:
            pass
    return removed


def _used_subnets():
    """The 10.S.T prefixes of this host's IPv4 routes and addresses."""
    used = set()
    for cmd in ([IP, "-4", "route", "show", "table", "all"], [IP, "-4", "-o", "addr"]):
        try:
            text = _run(cmd)
        except NetworkError:
            continue
        used.update(re.findall(r"\b10\.(\d+)\.(\d+)\.\d+", text))
    return {(int(a), int(b)) for a, b in used}


class NetnsNetwork:
    """Regions in network namespaces of their own behind one bridge; see the module comment.
    A cluster.Cluster network: host(i), wrap(i), start(), stop(); plus set_cut()."""

    def __init__(self, n):
        if not 2 <= n <= 200:
            raise ValueError("2 to 200 regions")
        self.n = n
        self.tag = os.urandom(3).hex()[:5]
        self.prefix = "pt" + self.tag
        self.bridge = self.prefix + "b"
        used = _used_subnets()
        rnd = int.from_bytes(os.urandom(2), "big")
        for k in range(2000):
            s, t = 200 + (rnd + k) % 50, (rnd // 50 + k) % 256
            if (s, t) not in used:
                break
        else:
            raise NetworkError("no free 10.x.y.0/24 for the bridge")
        self.net = "10.%d.%d" % (s, t)
        self.namespaces = ["%s%d-%s-%d" % (NS_PREFIX, os.getpid(), self.tag, i)
                           for i in range(n)]
        self.ports = []  # raft + peer ports the rules filter (set by the cluster before start)
        self._cut = {i: set() for i in range(n)}  # namespace index -> peer indexes cut
        self._lock = threading.Lock()
        self._made = {"bridge": False, "ns": []}
        self._state = "new"

    def host(self, i):
        return "%s.%d" % (self.net, i + 1)

    def wrap(self, i):
        return [IP, "netns", "exec", self.namespaces[i]]

    def start(self):
        if self._state != "new":
            raise RuntimeError("network started twice")
        if not self.ports:
            raise RuntimeError("no raft ports to filter")
        self._state = "running"
        with _live_lock:
            _live.append(self)
        try:
            _run([IP, "link", "add", self.bridge, "type", "bridge"])
            self._made["bridge"] = True
            _run([IP, "addr", "add", "%s.254/24" % self.net, "dev", self.bridge])
            _run([IP, "link", "set", self.bridge, "up"])
            ports = ", ".join(str(p) for p in sorted(set(self.ports)))
            for i, ns in enumerate(self.namespaces):
                outer, inner = "%sh%d" % (self.prefix, i), "%sv%d" % (self.prefix, i)
                _run([IP, "netns", "add", ns])
                self._made["ns"].append(ns)
                _run([IP, "link", "add", outer, "type", "veth", "peer", "name", inner])
                _run([IP, "link", "set", inner, "netns", ns])
                _run([IP, "link", "set", outer, "master", self.bridge, "up"])
                _run([IP, "-n", ns, "addr", "add", "%s/24" % self.host(i), "dev", inner])
                _run([IP, "-n", ns, "link", "set", inner, "up"])
                _run([IP, "-n", ns, "link", "set", "lo", "up"])
                rules = "\n".join([
                    "table inet %s {" % self.prefix,
                    "  set cut { type ipv4_addr; }",
                    "  chain out {",
                    "    type filter hook output priority 0; policy accept;",
                    "    ip daddr @cut tcp dport { %s } drop" % ports,
                    "    ip daddr @cut tcp sport { %s } drop" % ports,
                    "  }",
                    "  chain in {",
                    "    type filter hook input priority 0; policy accept;",
                    "    ip saddr @cut tcp dport { %s } drop" % ports,
                    "    ip saddr @cut tcp sport { %s } drop" % ports,
                    "  }",
                    "}", ""])
                _run(self.wrap(i) + [NFT, "-f", "-"], stdin=rules)
        except BaseException:
            self.stop()
            raise
        return self

    def set_cut(self, i, j, cut):
        """Cut (cut=True) or mend the link between regions i and j, both directions."""
        if i == j:
            raise ValueError("a link needs two regions")
        with self._lock:
            for a, b in ((i, j), (j, i)):
                if (b in self._cut[a]) == cut:
                    continue
                verb = "add" if cut else "delete"
                _run(self.wrap(a) + [NFT, "-f", "-"],
                     stdin="%s element inet %s cut { %s }\n" % (verb, self.prefix, self.host(b)))
                (self._cut[a].add if cut else self._cut[a].discard)(b)

    def rules(self, i):
        """The nftables ruleset of region i's namespace (text), for messages."""
        return _run(self.wrap(i) + [NFT, "list", "ruleset"])

    def stop(self):
        """Deletes the tables, namespaces and bridge this network made. Idempotent; never
        raises for what is already gone."""
        if self._state == "stopped":
            return
        self._state = "stopped"
        for ns in self._made["ns"]:
            try:
                _run([IP, "netns", "exec", ns, NFT, "delete", "table", "inet", self.prefix])
            except NetworkError:
                pass
            try:
                _run([IP, "netns", "del", ns])
            except NetworkError:
                pass
        self._made["ns"] = []
        if self._made["bridge"]:
            try:
                _run([IP, "link", "del", self.bridge])
            except NetworkError:
                pass
            self._made["bridge"] = False
        with _live_lock:
            if self in _live:
                _live.remove(self)

    def leftovers(self):
        """Namespaces and links of this network that still exist (empty after stop())."""
        out = []
        try:
            names = _run([IP, "netns", "list"])
            out += [ns for ns in self.namespaces if re.search(r"^%s\b" % re.escape(ns), names,
                                                                re.M)]
            links = _run([IP, "-o", "link"])
            out += sorted(set(re.findall(r"\b(%s[bhv]\d*)\b" % re.escape(self.prefix), links)))
        except NetworkError as e:
            out.append(str(e))
        return out


_probe_result = []


def netns_unavailable():
    """None when namespaces with nftables work here, else the reason (text). Tried once per
    process: a namespace with one nftables table is made and removed."""
    if _probe_result:
        return _probe_result[0]
    reason = None
    if os.geteuid() != 0:
        reason = "not root (network namespaces and nftables need CAP_NET_ADMIN)"
    elif not os.path.exists(IP):
        reason = "no `ip` command"
    elif not os.path.exists(NFT):
        reason = "no `nft` command (apt-get install nftables)"
    else:
        sweep_stale()
        ns = "%s%d-%s-probe" % (NS_PREFIX, os.getpid(), os.urandom(3).hex()[:5])
        try:
            _run([IP, "netns", "add", ns])
            try:
                _run([IP, "netns", "exec", ns, NFT, "-f", "-"],
                     stdin="table inet probe {\n  set s { type ipv4_addr; }\n}\n")
            finally:
                _run([IP, "netns", "del", ns])
        except NetworkError as e:
            reason = str(e)
    _probe_result.append(reason)
    return reason


class PartitionCluster(cluster.Cluster):
    """A cluster.Cluster whose links between regions are cut and mended one by one; see the
    module comment. mode: "auto", "netns" or "wan" (default PT_PARTITION_NET, else "auto");
    other arguments as cluster.Cluster's (not wan_delay_ms or network)."""

    def __init__(self, n=3, mode=None, **kwargs):
        mode = mode or os.environ.get("PT_PARTITION_NET", "auto")
        if mode not in ("auto", "netns", "wan"):
            raise ValueError("mode must be auto, netns or wan, got %r" % (mode,))
        self.fallback_reason = None
        if mode == "wan":
            self.fallback_reason = "asked for (PT_PARTITION_NET=wan)"
        else:
            why = netns_unavailable()
            if why is not None and mode == "netns":
                raise NetworkError("network namespaces unavailable: %s" % why)
            self.fallback_reason = why
        self.mode = "wan" if self.fallback_reason else "netns"
        if self.mode == "netns":
            net = NetnsNetwork(n)
            super().__init__(n, network=net, **kwargs)
            net.ports = [r.raft_port for r in self.regions]
        else:
            super().__init__(n, wan_delay_ms=0, **kwargs)
        self._cut = set()  # frozenset({Region, Region})
        self._cut_lock = threading.Lock()

    def describe_network(self):
        """One line: how links are cut here."""
        if self.mode == "netns":
            return ("network namespaces %s-*, bridge %s (%s.0/24), nftables drops on the raft "
                    "+ peer ports" % (self.network.namespaces[0].rsplit("-", 1)[0],
                                      self.network.bridge, self.network.net))
        return "WAN emulator cuts (namespaces unavailable: %s)" % self.fallback_reason

    def start(self):
        with _live_lock:
            _live.append(self)
        _exit_on_sigterm()
        return super().start()

    def stop(self):
        try:
            super().stop()
        finally:
            with _live_lock:
                if self in _live:
                    _live.remove(self)

    # -- links ----------------------------------------------------------------------------

    def _set(self, a, b, cut):
        if a is b:
            raise ValueError("a link needs two regions")
        if self.mode == "netns":
            self.network.set_cut(a.index, b.index, cut)
        else:
            link = self.wan.link(a.name, b.name)
            (link.cut if cut else link.heal)()
        with self._cut_lock:
            (self._cut.add if cut else self._cut.discard)(frozenset((a, b)))

    def cut(self, a, b):
        """Cut the link between regions a and b, both directions."""
        self._set(a, b, True)

    def mend(self, a, b):
        """Mend the link between regions a and b."""
        self._set(a, b, False)

    def partition(self, *groups):
        """Cut every link between regions of different groups (iterables of Regions);
        links within a group and of regions not named are left as they are."""
        groups = [list(g) for g in groups]
        for i, gi in enumerate(groups):
            for gj in groups[i + 1:]:
                for a in gi:
                    for b in gj:
                        self._set(a, b, True)

    def isolate(self, r):
        self.partition([r], [x for x in self.regions if x is not r])

    def heal(self):
        """Mend every cut link."""
        for pair in list(self.cut_links()):
            a, b = sorted(pair, key=lambda x: x.index)
            self._set(a, b, False)

    def cut_links(self):
        with self._cut_lock:
            return set(self._cut)

    def neighbours(self, r):
        cut = self.cut_links()
        return [x for x in self.regions if x is not r and frozenset((r, x)) not in cut]

    def reaches_majority(self, r):
        """Whether r and the regions it has a link to are a majority of all regions."""
        return 1 + len(self.neighbours(r)) > len(self.regions) // 2


def _exit_on_sigterm():
    """SIGTERM (e.g. from `timeout`) raises SystemExit in the main thread, so that
    try/finally blocks and the atexit clean-up run; only when SIGTERM still has its default
    action and this is the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)


def _stop_all():
    """Clusters first (their regions run inside the networks), then networks."""
    with _live_lock:
        items = list(reversed(_live))
    items.sort(key=lambda x: not isinstance(x, cluster.Cluster))
    for x in items:
        try:
            x.stop()
        except Exception:  # noqa: BLE001 - exit clean-up goes on with the next one
            pass


atexit.register(_stop_all)
