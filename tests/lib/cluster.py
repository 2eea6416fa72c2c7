"""cluster.py - a multi-region Portolan cluster on loopback for integration tests: N regions,
each its own `portolan serve` process with its own cluster file, optionally wired through a
wan.Wan so that every connection between regions crosses the WAN emulator.

Role: tests/integration/test_cluster.py (and later multi-region tests) start a Raft cluster,
find its leader, kill and restart regions, cut the network between them and wait for their
replicated state to agree, without repeating the plumbing. Python 3 standard library only,
plus harness.py and wan.py from this directory.

API
---
    c = Cluster(3, wan_delay_ms=50, args=("--write-timeout", "2s"))   # or wan_delay_ms=None
                                              # auth=True (default): access control on, every
                                              # helper below speaks as the administrator
    with c:                                   # start(): every region up, then stop() + cleanup
        leader = c.wait_leader()              # a Region once all running regions agree on it
        a, b, cc = c.regions                  # Region objects, in cluster-file order
        a.client()                            # a fresh harness.Client to that region's API
                                              # (as c.admin; a.client(auth=creds or None))
        c.admin, c.cli_env()                  # administrator Credentials; env for `portolan`
        c.skopeo_creds("src")                 # skopeo flags with them (--src-creds user:pw)
        a.status()                            # GET /admin/cluster/self as a dict (None: no
                                              # answer); a.state_digest() likewise
        c.kill9(leader); c.restart(leader)    # SIGKILL; start again on the same data dir
        c.isolate(a)                          # cut a from every other region, both ways
        c.partition({a}, {b, cc}); c.heal()   # needs the Wan (wan_delay_ms not None)
        c.wait_converged()                    # equal state digests and applied indexes
        c.direct_connections()                # [(from, to)]: region processes connected
                                              # straight to another region's raft port
        a.replication()                       # GET /admin/replication as a dict (or None)
        a.image_replication("repo", "tag")    # GET /admin/replication/image?name=&reference=
        a.blob_path("sha256:..")              # where a.data_dir keeps that verified blob
        a.blob_file_digest("sha256:..")       # sha256 of that file now, None when absent

Each Region has: name ("region-a", ...), id (1..N), port (its client port), raft_port (the
Raft + peer port it binds), url, node (a harness.Node), cluster_file (the file it was given),
data_dir (its --data-dir: blobs under data_dir/blobs/sha256/<2 hex>/<64 hex>).

Wiring. Ports are picked before anything starts. Without a Wan every cluster file is the
same: each region's address is 127.0.0.1:<its raft port>. With a Wan each region's raft port
is a Wan target, and region X's file lists region Y's address as the proxy port of the link
X -> Y (wan.route), its own entry as its real port; every node is also given --raft-listen
with its real port, so the bind never depends on what its own entry says. Ids, names and
URLs are the same in every file (client URLs are direct: tests talk to regions without
delay; only region-to-region traffic is emulated).

Every address a region's file gives for another region leads through the emulator, so any
connection a region process holds straight to another region's raft port (direct_connections(),
read from /proc) bypasses it: a node must dial what its own file says, not an address a peer
announced about itself.

Networks. Cluster(network=net) runs region i at net.host(i) (its client and raft + peer
port bind there, URLs and cluster files name it) under the command prefix net.wrap(i); the
cluster calls net.start() before the first region starts and net.stop() after the last one
stopped (stop() must be idempotent). tests/lib/partition.py's network puts each region in a
network namespace of its own this way. Such a cluster has no Wan.

Peer TLS. Every cluster runs the raft + peer port with mutual TLS (--peer-tls-cert/-key/-ca)
unless Cluster(peer_tls=False) or PT_PEER_TLS=off in the environment turns it off (then
`--peer-tls off`, accepted on loopback). The certificates of region-a..region-z and their CA
are made once per test run with `portolan cluster certs` (peer_certs()).

Layout: <root>/cluster-<name>.yaml per region and <root>/<name>/data, <root>/<name>/node.log
(harness.Node's layout), where <root> is a fresh temporary directory, removed by cleanup()
unless PT_KEEP_TMP is set.

Access control. With auth=True every region runs `--auth on` with the same
--initial-admin-password-file (<root>/<name>/admin-password, one random password made here): whichever
region's first-administrator write commits first creates "admin", the others' are no-ops.
Region.client(), status() and every admin helper send c.admin as Basic credentials, so
wait_leader() also waits until the administrator exists everywhere it asks (before that the
admin API answers 401). auth=False runs `--auth off`.

Leader agreement. wait_leader() accepts a leader only when exactly one running region calls
itself leader and every other running region it is asked about (default: all running ones)
names it as leader_id with the same term: that is the state in which a write sent anywhere
goes to that leader. A partitioned minority is left out with wait_leader(among=...).
"""

import atexit
import hashlib
import http.client
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import harness
import wan as wanlib

HOST = "127.0.0.1"
NAMES = tuple("region-" + c for c in "abcdefghijklmnopqrstuvwxyz")
STATUS_TIMEOUT = 2.0  # seconds an admin GET may take before the region counts as silent


PEER_TLS_DEFAULT = os.environ.get("PT_PEER_TLS", "on").lower() not in ("off", "0", "false", "no")
_peer_certs = {}  # binary -> directory made by `portolan cluster certs`


def peer_certs(binary=None):
    """A directory holding ca.pem, ca-key.pem and <name>.pem / <name>-key.pem for every name of
    NAMES, made once per test run (per binary) with `portolan cluster certs`; removed at exit
    unless PT_KEEP_TMP is set."""
    binary = binary or harness.portolan_bin()
    if binary not in _peer_certs:
        d = tempfile.mkdtemp(prefix="pt-peer-certs-")
        subprocess.run([binary, "cluster", "certs", "--out", os.path.join(d, "certs"),
                        "--regions", ",".join(NAMES), "--days", "30"],
                       check=True, stdout=subprocess.DEVNULL)
        if not os.environ.get("PT_KEEP_TMP"):
            atexit.register(shutil.rmtree, d, True)
        _peer_certs[binary] = os.path.join(d, "certs")
    return _peer_certs[binary]


def peer_tls_args(name, binary=None):
    """The `portolan serve` flags of region name's peer TLS (certificates from peer_certs())."""
    d = peer_certs(binary)
    return ["--peer-tls-cert", os.path.join(d, name + ".pem"),
            "--peer-tls-key", os.path.join(d, name + "-key.pem"),
            "--peer-tls-ca", os.path.join(d, "ca.pem")]


class ClusterError(AssertionError):
    """A cluster did not reach the state a helper waited for; the message says what it saw."""


class Region:
    """One region: its identity, ports, process and cluster file."""

    def __init__(self, cluster, index, name, port, raft_port, host=HOST):
        self.cluster = cluster
        self.index = index
        self.name = name
        self.id = index + 1
        self.host = host  # the address it listens on (client and raft + peer port)
        self.port = port
        self.raft_port = raft_port
        self.url = "%s://%s:%d" % ("https" if cluster.tls else "http", host, port)
        self.raft_address = "%s:%d" % (host, raft_port)
        self.cluster_file = os.path.join(cluster.root, "cluster-%s.yaml" % name)
        self.data_dir = os.path.join(cluster.root, name, "data")
        self.node = None  # harness.Node, made by Cluster.start

    def __repr__(self):
        return "Region(%s, id=%d, %s)" % (self.name, self.id, self.url)

    def running(self):
        return self.node is not None and self.node.running()

    def client(self, timeout=30, auth="admin"):
        """A new keep-alive client to this region's API (the caller closes it); auth "admin"
        (default): the cluster's administrator when access control is on; else a
        harness.Credentials or None (anonymous)."""
        if auth == "admin":
            auth = self.cluster.admin
        return harness.Client(self.url, cafile=self.cluster.cafile, timeout=timeout, auth=auth)

    def auth_headers(self):
        """{"Authorization": Basic admin} when access control is on, else {}."""
        return self.cluster.admin.headers() if self.cluster.admin is not None else {}

    def _admin(self, path, timeout):
        if not self.running():
            return None
        c = self.client(timeout=timeout)
        try:
            r = c.get(path)
        except (OSError, ValueError, http.client.HTTPException):
            return None
        finally:
            c.close()
        if r.status != 200:
            return None
        try:
            return r.json()
        except ValueError:
            return None

    def status(self, timeout=STATUS_TIMEOUT):
        """GET /admin/cluster/self as a dict, or None when the region does not answer."""
        return self._admin("/admin/cluster/self", timeout)

    def members(self, timeout=STATUS_TIMEOUT):
        """GET /admin/cluster as a dict, or None."""
        return self._admin("/admin/cluster", timeout)

    def state_digest(self, timeout=10.0):
        """GET /admin/state-digest as a dict {"applied_index", "digest"}, or None."""
        return self._admin("/admin/state-digest", timeout)

    def replication(self, timeout=STATUS_TIMEOUT):
        """GET /admin/replication (this region's blob replication status) as a dict, or None."""
        return self._admin("/admin/replication", timeout)

    def image_replication(self, name, reference, timeout=STATUS_TIMEOUT):
        """GET /admin/replication/image for name and reference (a tag or a digest) as a dict,
        or None (no answer, or not a 200: an unknown image is a 404)."""
        query = urllib.parse.urlencode({"name": name, "reference": reference})
        return self._admin("/admin/replication/image?" + query, timeout)

    def blob_path(self, digest):
        """The file of blob digest ("sha256:<64 hex>" or "sha512:<128 hex>") in this region's
        blob store once it is stored and verified: <data_dir>/blobs/<algorithm>/<2 hex>/<hex>
        (node/store/blobstore.c)."""
        algo, _, hexpart = digest.partition(":")
        if (algo, len(hexpart)) not in (("sha256", 64), ("sha512", 128)):
            raise ValueError("not a sha256 or sha512 digest: %r" % (digest,))
        return os.path.join(self.data_dir, "blobs", algo, hexpart[:2], hexpart)

    def blob_file_digest(self, digest):
        """The digest ("<algorithm>:<hex>", the algorithm of digest) of what the file of blob
        digest holds now, hashed in 1 MiB pieces; None when there is no such file."""
        algo = digest.partition(":")[0]
        h = hashlib.new(algo)
        try:
            with open(self.blob_path(digest), "rb") as f:
                while True:
                    piece = f.read(1 << 20)
                    if not piece:
                        break
                    h.update(piece)
        except FileNotFoundError:
            return None
        return algo + ":" + h.hexdigest()

    def log_tail(self, lines=30):
        return self.node.log_tail(lines) if self.node is not None else ""

    def log_grep(self, *words, limit=20):
        """The last `limit` lines of this region's log that contain every word given."""
        if self.node is None:
            return []
        try:
            with open(self.node.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        hits = [ln for ln in text.splitlines() if all(w in ln for w in words)]
        return hits[-limit:]


class Cluster:
    """N regions of one Raft cluster on loopback; see the module comment.

    n: 1..26 regions named region-a, region-b, ...; wan_delay_ms: None for direct
    connections, else the one-way delay of every region pair through a wan.Wan (settable
    later with set_delay); args: extra `portolan serve` flags for every region;
    region_args: {name: [flags]} for single regions; cluster_id: the file's cluster_id
    (default a unique one); start_timeout: seconds each node has to answer /healthz."""

    def __init__(self, n=3, wan_delay_ms=None, args=(), region_args=None, cluster_id=None,
                 start_timeout=30, binary=None, tls=None, peer_tls=None, auth=True,
                 network=None):
        if not 1 <= n <= len(NAMES):
            raise ValueError("a cluster has 1 to %d regions" % len(NAMES))
        # tls: (ca_cert, server_cert, server_key) from harness.make_test_ca: every region
        # serves HTTPS with that certificate, its URL is https, and it trusts that CA for
        # other regions (--tls-peer-ca); clients verify with the CA.
        self.tls = tls
        # peer_tls: mutual TLS on the raft + peer port (None: PT_PEER_TLS, default on)
        self.peer_tls = PEER_TLS_DEFAULT if peer_tls is None else bool(peer_tls)
        self.cafile = tls[0] if tls else None
        self.root = tempfile.mkdtemp(prefix="pt-cluster-")
        self.cluster_id = cluster_id or "test-%s" % os.urandom(4).hex()
        self.args = list(args)
        self.region_args = dict(region_args or {})
        self.start_timeout = start_timeout
        self.binary = binary or harness.portolan_bin()
        # auth: every region with access control on and one administrator password.
        self.auth = bool(auth)
        self.admin = None
        if self.auth:
            self.admin = harness.Credentials(harness.ADMIN_USER, harness.new_password())
        # network: where regions run when not all on this host's loopback (see "Networks"
        # in the module comment); None: every region on 127.0.0.1 in this namespace.
        self.network = network
        if network is not None and wan_delay_ms is not None:
            raise ValueError("a cluster with a network of its own has no Wan")
        self.regions = []
        used = set()
        for i in range(n):
            port, raft_port = self._fresh_port(used), self._fresh_port(used)
            host = network.host(i) if network is not None else HOST
            self.regions.append(Region(self, i, NAMES[i], port, raft_port, host))
        self.wan = None
        if wan_delay_ms is not None:
            self.wan = wanlib.Wan([r.name for r in self.regions], delay_ms=wan_delay_ms)
            for r in self.regions:
                self.wan.add_target(r.name, HOST, r.raft_port)
        self._started = False

    @staticmethod
    def _fresh_port(used):
        for _ in range(100):
            p = harness.free_port()
            if p not in used:
                used.add(p)
                return p
        raise RuntimeError("no free port")

    # -- set-up ---------------------------------------------------------------------------

    def region(self, name_or_id):
        """The Region named name_or_id (a str) or with that Raft id (an int)."""
        for r in self.regions:
            if r.name == name_or_id or r.id == name_or_id:
                return r
        raise KeyError(name_or_id)

    def address_for(self, src, dst):
        """The address (host:port) region src dials to reach region dst's raft port."""
        if self.wan is None or src is dst:
            return dst.raft_address
        host, port = self.wan.route(src.name, HOST, dst.raft_port)
        return "%s:%d" % (host, port)

    def _listed(self, r):
        """The regions r's cluster file lists."""
        return self.regions

    def _write_cluster_file(self, r):
        lines = ["cluster_id: %s" % self.cluster_id, "regions:"]
        for other in self._listed(r):
            lines += ["  - name: %s" % other.name,
                      "    id: %d" % other.id,
                      "    address: %s" % self.address_for(r, other),
                      "    url: %s" % other.url]
        with open(r.cluster_file, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _node_args(self, r):
        tls = ["--tls-peer-ca", self.tls[0]] if self.tls else []
        tls += peer_tls_args(r.name, self.binary) if self.peer_tls else ["--peer-tls", "off"]
        return (["--region", r.name, "--cluster-file", r.cluster_file,
                 "--raft-listen", r.raft_address] + tls + self.args
                + list(self.region_args.get(r.name, ())))

    def start(self):
        """Start the Wan (if any) and every region; returns self. Nodes are started one after
        the other but none waits for a leader: wait_leader() does."""
        if self._started:
            raise RuntimeError("cluster already started")
        self._started = True
        try:
            if self.network is not None:
                self.network.start()
            if self.wan is not None:
                self.wan.start()
            for r in self.regions:
                self._write_cluster_file(r)
                os.makedirs(r.data_dir, exist_ok=True)
                r.node = self.make_node(r)
            for r in self.regions:
                r.node.start(self.start_timeout)
        except BaseException:
            self.stop()
            self.cleanup()
            raise
        return self

    def make_node(self, r, extra_args=()):
        """The (unstarted) harness.Node of region r: its cluster flags, the cluster's TLS
        and access control settings, then extra_args."""
        return harness.Node(data_dir=r.data_dir, port=r.port,
                            args=self._node_args(r) + list(extra_args), binary=self.binary,
                            tls=(self.tls[1], self.tls[2]) if self.tls else None,
                            auth=self.auth,
                            admin_password=self.admin.password if self.admin else None,
                            host=r.host,
                            wrap=self.network.wrap(r.index) if self.network else ())

    def skopeo_creds(self, side="src"):
        """skopeo flags that send the administrator's credentials (side "src", "dest" or ""
        for inspect), [] with access control off."""
        if self.admin is None:
            return []
        return ["--%screds" % (side + "-" if side else ""),
                "%s:%s" % (self.admin.user, self.admin.password)]

    def cli_env(self, creds="admin"):
        """Environment for a `portolan` command against this cluster: PORTOLAN_USER and
        PORTOLAN_PASSWORD of creds (default the administrator; None: no credentials)."""
        return harness.cli_env(self.admin if creds == "admin" else creds)

    def stop(self):
        """SIGTERM every running region (SIGKILL after 10 s), then stop the Wan or the
        network."""
        try:
            for r in self.regions:
                if r.node is not None:
                    r.node.stop()
        finally:
            if self.wan is not None:
                self.wan.stop()
            if self.network is not None:
                self.network.stop()

    def cleanup(self):
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        self._failed_at_enter = harness.FAILED_CHECKS[0]
        return self.start()

    def __exit__(self, *exc):
        try:
            if exc[0] is not None or harness.FAILED_CHECKS[0] != self._failed_at_enter:
                print("cluster %s: a check failed while it ran%s" % (
                    os.path.basename(self.root), self.keep_logs(self.regions)))
            self.stop()
        finally:
            self.cleanup()
        return False

    # -- processes ------------------------------------------------------------------------

    def running(self):
        return [r for r in self.regions if r.running()]

    def kill9(self, r):
        """SIGKILL region r's process (its data directory stays)."""
        r.node.kill9()

    def restart(self, r, timeout=None):
        """Start region r again on the same data directory and ports (it must be stopped or
        killed first, or it is stopped with SIGTERM)."""
        if r.node.running():
            r.node.stop()
        r.node.start(timeout or self.start_timeout)
        return r

    def dead(self):
        """Regions whose process exited by itself (not stopped or killed by the harness)."""
        return [r for r in self.regions if r.node is not None and r.node.proc is not None
                and r.node.proc.poll() is not None]

    def death_notes(self):
        return "; ".join("%s: %s" % (r.name, r.node.death_note()) for r in self.dead())

    # -- leadership -----------------------------------------------------------------------

    def statuses(self, among=None):
        """{Region: status dict or None} for the given (default: running) regions."""
        regions = list(among) if among is not None else self.running()
        return {r: r.status() for r in regions}

    def leader(self, among=None):
        """The leader every region of among (default: the running ones) agrees on, or None.

        Agreement: exactly one of them reports role "leader", and each of the others reports
        that region's id as leader_id in the same term."""
        st = self.statuses(among)
        if not st or any(s is None for s in st.values()):
            return None
        leaders = [r for r, s in st.items() if s.get("role") == "leader"]
        if len(leaders) != 1:
            return None
        lead = leaders[0]
        term = st[lead].get("term")
        for r, s in st.items():
            if s.get("leader_id") != lead.id or s.get("term") != term:
                return None
        return lead

    def wait_leader(self, timeout=30.0, among=None, exclude=None, interval=0.05):
        """Wait until the regions of among (default: running) agree on a leader; returns it.
        exclude: a region that must not be that leader (e.g. a partitioned old leader that
        still believes it leads is left out with among instead). Raises ClusterError with the
        last statuses seen on timeout."""
        deadline = time.monotonic() + timeout
        last = {}
        while True:
            lead = self.leader(among)
            if lead is not None and lead is not exclude:
                return lead
            if time.monotonic() >= deadline:
                last = self.statuses(among)
                break
            time.sleep(interval)
        raise ClusterError("no agreed leader within %.0fs: %s%s%s"
                           % (timeout, self.describe(last),
                              (" (dead: %s)" % self.death_notes()) if self.dead() else "",
                              self.keep_logs(last)))

    def keep_logs(self, regions):
        """Copies the logs of regions to $PT_FAIL_LOGS (default build/test-failures/<time>),
        with the thread stacks of those running (gdb), so a failure seen once can be read
        after the run removed its directories; returns a
        short message suffix naming the folder and each region's last warnings."""
        dest = os.path.join(os.environ.get("PT_FAIL_LOGS", os.path.join(harness.ROOT, "build",
                                                                        "test-failures")),
                            time.strftime("%Y%m%d-%H%M%S") + "-%d" % os.getpid())
        notes = []
        try:
            os.makedirs(dest, exist_ok=True)
            for r in regions:
                if r.node is not None and os.path.exists(r.node.log_path):
                    shutil.copy(r.node.log_path, os.path.join(dest, r.name + ".log"))
                if r.node is not None and r.node.running():
                    stacks = harness._stacks(r.node.proc.pid)
                    if stacks:
                        with open(os.path.join(dest, r.name + ".stacks"), "w") as f:
                            f.write(stacks + "\n")
                warn = [ln[-160:] for ln in r.log_grep('"level":"warn"', limit=2)]
                if warn:
                    notes.append("%s: %s" % (r.name, " | ".join(warn)))
        except OSError as e:
            return " (logs not kept: %s)" % e
        return " (logs in %s%s)" % (dest, ("; last warnings: " + "; ".join(notes)) if notes
                                    else "")

    def followers(self, lead=None):
        lead = lead or self.leader()
        return [r for r in self.running() if r is not lead]

    @staticmethod
    def describe(statuses):
        """A one-line summary of {Region: status} for messages."""
        parts = []
        for r, s in statuses.items():
            if s is None:
                parts.append("%s: no answer" % r.name)
            else:
                parts.append("%s: %s term=%s leader=%s commit=%s applied=%s" % (
                    r.name, s.get("role"), s.get("term"), s.get("leader_region") or "-",
                    s.get("commit_index"), s.get("applied_index")))
        return "; ".join(parts)

    # -- network --------------------------------------------------------------------------

    def _need_wan(self):
        if self.wan is None:
            raise RuntimeError("network control needs a cluster made with wan_delay_ms")

    def partition(self, *groups):
        """Cut both directions between regions of different groups (sets of Regions)."""
        self._need_wan()
        self.wan.partition(*[{r.name for r in g} for g in groups])

    def isolate(self, r):
        """Cut region r from every other region, both directions."""
        self.partition({r}, [x for x in self.regions if x is not r])

    def heal(self):
        self._need_wan()
        self.wan.heal()

    def set_delay(self, ms):
        self._need_wan()
        self.wan.set_delay(ms)

    def direct_connections(self):
        """[(from Region, to Region)] for every established TCP connection that a region's
        process opened straight to another region's raft port, i.e. one that does not cross
        the Wan (whose proxies run in this process). Empty when all traffic is emulated.
        Reads /proc (Linux), IPv4 sockets only, which is what the cluster uses."""
        by_port = {r.raft_port: r for r in self.regions}
        owner = {}
        for r in self.running():
            for inode in _socket_inodes(r.node.pid()):
                owner[inode] = r
        out = []
        for _lport, rport, inode in _established():
            src, dst = owner.get(inode), by_port.get(rport)
            if src is not None and dst is not None and src is not dst:
                out.append((src, dst))
        return out

    # -- convergence ----------------------------------------------------------------------

    def digests(self, among=None):
        """{Region: state digest dict or None} for the given (default: running) regions."""
        regions = list(among) if among is not None else self.running()
        return {r: r.state_digest() for r in regions}

    def wait_converged(self, timeout=30.0, among=None, min_index=0, interval=0.1):
        """Wait until every region of among (default: running) reports the same state digest
        and applied index, at least min_index; returns that {"applied_index", "digest"}.
        Raises ClusterError with the last digests seen on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            ds = self.digests(among)
            vals = list(ds.values())
            if vals and all(v is not None for v in vals):
                first = vals[0]
                if (all(v.get("digest") == first.get("digest")
                        and v.get("applied_index") == first.get("applied_index") for v in vals)
                        and first.get("applied_index", 0) >= min_index):
                    return first
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        summary = "; ".join(
            "%s: %s" % (r.name, "no answer" if d is None else
                        "applied=%s digest=%s" % (d.get("applied_index"),
                                                  str(d.get("digest"))[:12]))
            for r, d in ds.items())
        raise ClusterError("state digests did not converge within %.0fs (min index %d): %s"
                           % (timeout, min_index, summary))


def _established():
    """(local port, remote port, inode) of every ESTABLISHED IPv4 TCP socket."""
    rows = []
    try:
        with open("/proc/net/tcp") as f:
            next(f, None)
            for line in f:
                parts = line.split()
                if len(parts) < 10 or parts[3] != "01":
                    continue
                rows.append((int(parts[1].rsplit(":", 1)[1], 16),
                             int(parts[2].rsplit(":", 1)[1], 16), int(parts[9])))
    except OSError:
        pass
    return rows


def _socket_inodes(pid):
    """The inodes of the sockets process pid has open."""
    inodes = set()
    d = "/proc/%d/fd" % pid
    try:
        fds = os.listdir(d)
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        if target.startswith("socket:[") and target.endswith("]"):
            inodes.add(int(target[8:-1]))
    return inodes


class GrowingCluster(Cluster):
    """A Cluster whose regions beyond the first `initial` are neither started nor listed in
    the bootstrap cluster files; join() starts one of them later with `--join true` and its
    own cluster file (the current members and itself). members lists the regions the cluster
    files know, in order."""

    def __init__(self, initial, total, **kwargs):
        super().__init__(total, **kwargs)
        self.initial = initial
        self.members = list(self.regions[:initial])

    def _listed(self, r):
        return self.members + ([r] if r not in self.members else [])

    def start(self):
        everyone = self.regions
        self.regions = everyone[:self.initial]
        try:
            super().start()
        finally:
            self.regions = everyone
        return self

    def join(self, r):
        """Start region r (not started yet) with `--join true`; it still has to be added
        through the leader."""
        if r.node is not None:
            raise RuntimeError("%s was started already" % r.name)
        self.members.append(r)
        self._write_cluster_file(r)
        os.makedirs(r.data_dir, exist_ok=True)
        r.node = self.make_node(r, ["--join", "true"])
        r.node.start(self.start_timeout)
        return r
