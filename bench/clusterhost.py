"""clusterhost.py - the part bench/cluster.py and bench/blobs.py share: a child process that
hosts a cluster of regions behind the WAN emulator and answers the driver's requests, the
driver's handle on it, and a few helpers (logging, percentiles, CPU shares, the table).

Role: both benches measure a cluster started by tests/lib/cluster.py with its Wan
(tests/lib/wan.py). The Wan is Python and forwards every byte between regions on its own
event loop; were it in the driver's process, the driver's load threads would hold the GIL
while it should deliver. So each bench runs the cluster in a child process of its own: the
bench script started again with `--host '<JSON config>'`, whose main() hands over to
host_main() here. The driver talks to it through Host. Python 3 standard library only, plus
tests/lib (loaded by path: bench/cluster.py shares the library's module name).

Protocol: one JSON object a line. The child's first line says whether the cluster is up,
{"ok": true, "regions": [...], "leader": <name>, "root": <dir>} or {"ok": false, "error": <text>}.
Then each request on its stdin, {"op": <name>, <argument>: <value>, ...}, gets exactly one
line back: {"ok": true, <result fields>} or {"ok": false, "error": "<Type>: <text>"}; an error
leaves the cluster running and the driver decides. {"op": "stop"} or the end of stdin stops
every region and the Wan and removes the cluster's directory (unless the config says keep);
the last line is {"ok": true, "stopped": true}. Each entry of "regions" describes a region
whose process was started: name, id, url, port, raft_address, data_dir, pid (null once it
was killed). A reply that carries "regions" or "leader" updates Host.regions / Host.leader.

Ops every host answers (handlers in OPS):
    stop                          stop the cluster and exit (no reply of its own)
    leader   [timeout=30]         wait until the running regions agree on a leader: leader,
                                  regions
    kill9    region               SIGKILL that region: t_kill (its time.monotonic(), which is
                                  CLOCK_MONOTONIC and so comparable across processes)
    restart  region               start it again on the same data directory: regions
    converge [timeout=60]         wait for equal state digests: applied_index
    direct                        [[from, to]] of connections a region holds straight to
                                  another region's raft port, around the emulator
    cpu                           CPU seconds of the host process (the emulator): cpu_s
    dead                          what is known of regions that exited by themselves: dead
A bench adds ops of its own with the `ops` argument of host_main, {name: fn(cluster, request)
-> dict of result fields}; bench/cluster.py adds rtt, bench/blobs.py join and wan.

Config (Host builds it): tmp (the directory the cluster's root is made in, and the child's
log), delay_ms (one-way delay of every region pair), args (extra `portolan serve` flags),
binary, keep (leave the cluster's directory), bandwidth_bps (optional: cap of every link and
direction, bytes/s).

Limits: every request waits at most Host's timeout for its answer (the cluster's own waits
have their own: 30 s to start a node or agree on a leader, 60 s to converge); a child that
does not answer in time is reported as a BenchError naming its log.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(HERE, "..", "tests", "lib")
sys.path.insert(0, LIB)

import harness  # noqa: E402


def load_by_path(name, path):
    """Imports the file at path as module name: bench/cluster.py is called cluster.py too, so
    the test library's cluster.py (and bench.py) are loaded by path, never by search order."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


clusterlib = load_by_path("pt_test_cluster", os.path.join(LIB, "cluster.py"))


class BenchError(Exception):
    """A workload could not be measured (an error answer, a tool failure)."""


def logger(tag):
    """A log(msg) function writing "[tag] msg" lines to stderr."""
    def log(msg):
        sys.stderr.write("[%s] %s\n" % (tag, msg))
        sys.stderr.flush()
    return log


def percentile(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def port_of(url):
    return int(url.rsplit(":", 1)[1])


def proc_cpu_s(pid):
    """utime + stime of pid in seconds, None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, IndexError, ValueError, TypeError):
        return None


def verdict(value, kind, bound, inclusive=True):
    """"yes" or "NO": whether figure value meets a target of kind "min" (value >= bound) or
    "max" (value <= bound; value < bound when not inclusive); "" without a value or target."""
    if value is None or kind not in ("min", "max"):
        return ""
    if kind == "min":
        ok = value >= bound
    else:
        ok = value <= bound if inclusive else value < bound
    return "yes" if ok else "NO"


def print_table(head, lines):
    """Prints rows of cells under head: the first column left-aligned, the others
    right-aligned, columns two spaces apart, a rule of dashes under the head."""
    widths = [max(len(x[i]) for x in lines + [head]) for i in range(len(head))]

    def row(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    print(row(head))
    print("  ".join("-" * w for w in widths))
    for x in lines:
        print(row(x))


def print_notes(notes, errors):
    """Prints the notes ("- " each) and the errors ("error: <workload>: <message>") under the
    table."""
    for n in notes:
        print("- " + n)
    for title, msg in errors:
        print("error: %s: %s" % (title, msg))


def run_bench(make_bench, report, args, prefix, log):
    """Runs make_bench(args, work).run() with work a new temporary directory whose name
    starts with prefix (under PT_BENCH_DATA when set; removed afterwards unless PT_KEEP_TMP is
    set), then report(bench, args, started). Returns the exit status: 1 when the bench
    recorded an error (bench.errors), else 0."""
    env = os.environ.get
    work = tempfile.mkdtemp(prefix=prefix, dir=env("PT_BENCH_DATA"))
    started = time.monotonic()
    b = make_bench(args, work)
    try:
        b.run()
    finally:
        if not env("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            log("kept %s" % work)
    report(b, args, started)
    return 1 if b.errors else 0


# -- the cluster process ----------------------------------------------------------------------


def describe(c):
    """The "regions" field: every region whose process was started."""
    return [{"name": r.name, "id": r.id, "url": r.url, "port": r.port,
             "raft_address": r.raft_address, "data_dir": r.data_dir, "pid": r.node.pid()}
            for r in c.regions if r.node is not None]


def _op_leader(c, cmd):
    lead = c.wait_leader(timeout=cmd.get("timeout", 30))
    return {"leader": lead.name, "regions": describe(c)}


def _op_kill9(c, cmd):
    r = c.region(cmd["region"])
    t = time.monotonic()
    c.kill9(r)
    return {"t_kill": t}


def _op_restart(c, cmd):
    c.restart(c.region(cmd["region"]))
    return {"regions": describe(c)}


def _op_converge(c, cmd):
    return {"applied_index": c.wait_converged(timeout=cmd.get("timeout", 60)).get(
        "applied_index")}


def _op_direct(c, cmd):
    return {"direct": [[a.name, b.name] for a, b in c.direct_connections()]}


def _op_cpu(c, cmd):
    t = os.times()
    return {"cpu_s": t.user + t.system}


def _op_dead(c, cmd):
    return {"dead": c.death_notes()}


def _op_join(c, cmd):
    """Starts the first region that was never started (a GrowingCluster's next one) with
    `--join true`; its address is the one the leader (or the first region) dials for it
    through the Wan, for `portolan cluster add`."""
    r = [x for x in c.regions if x.node is None][0]
    c.join(r)
    started = [x for x in c.regions if x is not r and x.node is not None]
    src = c.leader(among=started) or started[0]
    host, port = c.wan.route(src.name, clusterlib.HOST, r.raft_port)
    return {"regions": describe(c), "name": r.name, "id": r.id, "url": r.url,
            "address": "%s:%d" % (host, port)}


OPS = {"leader": _op_leader, "kill9": _op_kill9, "restart": _op_restart, "join": _op_join,
       "converge": _op_converge, "direct": _op_direct, "cpu": _op_cpu, "dead": _op_dead}


def host_main(cfg, new_cluster, ops=None):
    """Runs the cluster and answers the driver's requests until stop (see the module comment).
    new_cluster(**kwargs) makes the (unstarted) Cluster from wan_delay_ms, args, binary and
    start_timeout; ops: the bench's own {name: handler}, added to OPS."""
    handlers = dict(OPS, **(ops or {}))
    tempfile.tempdir = cfg["tmp"]  # the cluster's root goes inside the benchmark's directory
    c = new_cluster(wan_delay_ms=cfg["delay_ms"], args=cfg["args"], binary=cfg["binary"],
                    start_timeout=30)
    out = sys.stdout

    def send(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        c.start()
        if cfg.get("bandwidth_bps"):
            c.wan.set_bandwidth(cfg["bandwidth_bps"])
        lead = c.wait_leader(timeout=30)
        send({"ok": True, "regions": describe(c), "leader": lead.name, "root": c.root})
        for line in sys.stdin:
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "stop":
                break
            fn = handlers.get(op)
            if fn is None:
                send({"ok": False, "error": "unknown op %r" % op})
                continue
            try:
                reply = fn(c, cmd)
            except Exception as e:  # reported to the driver, which decides
                send({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
                continue
            send(dict(reply, ok=True))
    except Exception as e:
        send({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    finally:
        try:
            c.stop()
        finally:
            if not cfg.get("keep"):
                c.cleanup()
        send({"ok": True, "stopped": True})


# -- the driver's side ------------------------------------------------------------------------


def cluster_add(lead_url, joined):
    """`portolan cluster add` of the region the join op started (joined: its reply), sent to
    the leader at lead_url, as a voter; raises BenchError unless it succeeds."""
    p = subprocess.run([harness.portolan_bin(), "cluster", "add", "--region", lead_url,
                        "--name", joined["name"], "--id", str(joined["id"]), "--address",
                        joined["address"], "--url", joined["url"], "--role", "voter",
                        "--timeout", "120s"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    if p.returncode != 0:
        raise BenchError("portolan cluster add: exit %d: %s" % (
            p.returncode, (p.stderr or p.stdout)[:300]))


class Host:
    """The driver's handle on the cluster process: script is the bench file whose main()
    passes `--host CONFIG` to host_main; tmp the directory for the cluster and the child's
    log (cluster-host.log); timeout the seconds any request may take."""

    def __init__(self, script, tmp, delay_ms, args, timeout, bandwidth_bps=None):
        os.makedirs(tmp, exist_ok=True)
        cfg = {"tmp": tmp, "delay_ms": delay_ms, "args": list(args),
               "binary": harness.portolan_bin(), "keep": bool(os.environ.get("PT_KEEP_TMP")),
               "bandwidth_bps": bandwidth_bps}
        self.timeout = timeout
        self.log_path = os.path.join(tmp, "cluster-host.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(script), "--host", json.dumps(cfg)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.regions = []
        try:
            first = self._read()
            if not first.get("ok"):
                raise BenchError("cluster did not start: %s" % first.get("error"))
        except BaseException:
            self.close()
            raise
        self.regions = first["regions"]
        self.leader = first["leader"]
        self.root = first["root"]

    def _read(self):
        result = {}

        def reader():
            result["line"] = self.proc.stdout.readline()
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t.join(self.timeout)
        line = result.get("line")
        if not line:
            raise BenchError("cluster process gave no answer (log: %s)" % self.log_path)
        return json.loads(line)

    def call(self, op, **kw):
        """Sends one request; returns the reply, or raises BenchError with its error."""
        kw["op"] = op
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if not reply.get("ok"):
            raise BenchError("%s: %s" % (op, reply.get("error")))
        if "regions" in reply:
            self.regions = reply["regions"]
        if "leader" in reply:
            self.leader = reply["leader"]
        return reply

    def region(self, name):
        return next(r for r in self.regions if r["name"] == name)

    def others(self, name):
        return [r for r in self.regions if r["name"] != name]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
                self.proc.stdin.flush()
                self.proc.stdin.close()
                self.proc.wait(60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class CpuMeter:
    """CPU shares of the regions and of the cluster process (the emulator) between start()
    and stop()."""

    def __init__(self, host):
        self.host = host

    def _sample(self):
        regions = {r["name"]: proc_cpu_s(r["pid"]) for r in self.host.regions if r["pid"]}
        return regions, self.host.call("cpu")["cpu_s"], time.monotonic()

    def start(self):
        self.t0 = self._sample()

    def stop(self):
        r1, w1, t1 = self._sample()
        r0, w0, t0 = self.t0
        secs = max(t1 - t0, 1e-6)
        self.regions = {n: (r1[n] - r0[n]) / secs for n in r1
                        if r1.get(n) is not None and r0.get(n) is not None}
        self.wan = (w1 - w0) / secs
        return self

    def text(self):
        return ", ".join("%s %.0f%%" % (n, 100 * v) for n, v in sorted(self.regions.items())) \
            + ", WAN emulator %.0f%%" % (100 * self.wan)
