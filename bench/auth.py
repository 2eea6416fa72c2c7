#!/usr/bin/env python3
"""What access control costs: the same reads with `--auth off` and with `--auth on`, and the
token endpoint's rate, on one machine, printed side by side.

Role: the driver behind bench/auth.sh. It starts two portolan nodes from the same binary on
separate loopback ports (tests/lib/harness.py starts and stops them, data in a temporary
directory): one with `--auth off`, one with `--auth on` and a random password for the first
administrator. Workloads run one at a time, the node without access control first:

  manifest GET by tag   wrk -t2 -c64 --latency, Accept: OCI manifest; on the auth node with
                        `Authorization: Bearer <token from /token>` (and once more with Basic
                        user:password, which the node checks against its cache of logins)
  blob GET              wrk -t2 -c64 on one 1 MiB blob, Bearer on the auth node: MB/s
  /token                wrk -t2 -c64 GET /token?service=&scope=repository:..:pull with the
                        same Basic credentials on every request (a client that repeats its
                        password, as docker does per pull): tokens/s; once with the
                        administrator's password, once with an API token's id and secret

Every answer is checked: wrk's non-2xx and socket-error counts (an error is printed under the
table and makes the exit status 1). Tokens are fetched right before the workload that uses
them (their lifetime is --token-ttl, 5 minutes by default). Each figure is the best of
PT_BENCH_RUNS wrk runs (default 2) of PT_BENCH_DURATION seconds (default 10).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from bench import BenchError, log, parse_wrk, run_tool  # noqa: E402

MIB = 1 << 20
MB = 1e6
CONNECTIONS = 64
WRK_THREADS = 2
BLOB_SIZE = MIB
ACCEPT = harness.OCI_MANIFEST
TOKENS_TARGET = 2000.0  # tokens/s from /token on this machine

# (key, label, format, target text, target check on the auth-on figure or None)
ROWS = [
    ("manifest_rps", "manifest GET by tag (req/s), Bearer", "%.0f", "-", None),
    ("manifest_p99_ms", "manifest GET by tag p99 (ms), Bearer", "%.2f", "-", None),
    ("manifest_basic_rps", "manifest GET by tag (req/s), Basic", "%.0f", "-", None),
    ("blob_mbs", "blob GET 1 MiB x 64 conns (MB/s), Bearer", "%.0f", "-", None),
    ("token_rps", "/token, admin password (tokens/s)", "%.0f", ">= %d" % TOKENS_TARGET,
     lambda v: v >= TOKENS_TARGET),
    ("token_api_rps", "/token, API token secret (tokens/s)", "%.0f", ">= %d" % TOKENS_TARGET,
     lambda v: v >= TOKENS_TARGET),
]


class Side:
    """One node under test: its process, credentials (None: auth off), figures, errors."""

    def __init__(self, name, node):
        self.name = name
        self.node = node
        self.figures = {}
        self.errors = {}

    @property
    def url(self):
        return self.node.url

    def client(self):
        return self.node.client(timeout=120)


def wrk(args, url, headers, key, side):
    """The best of args.runs wrk runs (by requests/s); any error answer of any run is
    recorded under key."""
    cmd = ["wrk", "-t%d" % WRK_THREADS, "-c%d" % CONNECTIONS, "-d%ds" % args.duration, "--latency"]
    for k, v in headers.items():
        cmd += ["-H", "%s: %s" % (k, v)]
    best = None
    for _ in range(args.runs):
        out = run_tool(cmd + [url], timeout=args.duration + 60)
        res = parse_wrk(out)
        if res["non2xx"] or res["socket_errors"]:
            kinds = re.search(r"Socket errors: (connect \d+, read \d+, write \d+, timeout \d+)",
                              out)
            side.errors[key] = "%d non-2xx, %d socket errors (%s) of %d" % (
                res["non2xx"], res["socket_errors"], kinds.group(1) if kinds else "-",
                res["requests"])
        if best is None or res["rps"] > best["rps"]:
            best = res
    return best


def bearer(side, scope):
    """Authorization headers for a read of scope on side: none with auth off, else a Bearer
    token fetched from the challenge's realm with the administrator's password."""
    if side.node.admin is None:
        return {}
    with harness.Client(side.url) as c:
        r = c.get("/v2/")
    scheme, params = harness.parse_challenge(r.headers.get("WWW-Authenticate", ""))
    if r.status != 401 or scheme != "bearer":
        raise BenchError("GET /v2/ gave no Bearer challenge: %s" % r.describe())
    doc = harness.fetch_token(params["realm"], params.get("service", ""), [scope],
                              side.node.admin)
    return {"Authorization": "Bearer " + doc["token"]}


def seed(side, state):
    img = harness.make_image(layers=1, layer_size=4096)
    blob = os.urandom(BLOB_SIZE)
    with side.client() as c:
        img.push(c, "bench/app", "latest")
        state["blob"] = c.push_blob("bench/blob", blob)


def bench_manifest(side, args, state):
    url = side.url + "/v2/bench/app/manifests/latest"
    hdrs = {"Accept": ACCEPT}
    hdrs.update(bearer(side, "repository:bench/app:pull"))
    res = wrk(args, url, hdrs, "manifest_rps", side)
    side.figures["manifest_rps"] = res["rps"]
    side.figures["manifest_p99_ms"] = res.get("p99_ms")
    hdrs = {"Accept": ACCEPT}
    hdrs.update(side.node.auth_headers())
    res = wrk(args, url, hdrs, "manifest_basic_rps", side)
    side.figures["manifest_basic_rps"] = res["rps"]


def bench_blob(side, args, state):
    url = "%s/v2/bench/blob/blobs/%s" % (side.url, state["blob"])
    res = wrk(args, url, bearer(side, "repository:bench/blob:pull"), "blob_mbs", side)
    side.figures["blob_mbs"] = res["rps"] * BLOB_SIZE / MB


def bench_token(side, args, state):
    if side.node.admin is None:
        return
    with harness.Client(side.url) as c:
        r = c.get("/v2/")
    _, params = harness.parse_challenge(r.headers.get("WWW-Authenticate", ""))
    url = "%s?%s" % (params["realm"], urllib.parse.urlencode(
        {"service": params.get("service", ""), "scope": "repository:bench/app:pull"}))
    res = wrk(args, url, side.node.auth_headers(), "token_rps", side)
    side.figures["token_rps"] = res["rps"]
    with side.client() as c:
        r = c.request("POST", "/admin/tokens", {"Content-Type": "application/json"},
                      b'{"grants":[{"pattern":"bench/**","actions":["pull"]}],'
                      b'"description":"bench"}')
    if r.status != 201:
        raise BenchError("POST /admin/tokens: %s" % r.describe())
    doc = r.json()
    creds = harness.Credentials(doc["id"], doc["secret"])
    res = wrk(args, url, creds.headers(), "token_api_rps", side)
    side.figures["token_api_rps"] = res["rps"]


def report(off, on):
    head = ("workload", "auth off", "auth on", "on/off", "target", "met")
    lines = []
    for key, label, pattern, target, ok in ROWS:
        a = off.figures.get(key) if off else None
        b = on.figures.get(key) if on else None
        ratio = "%.2fx" % (b / a) if a and b is not None else "-"
        met = "" if ok is None or b is None else ("yes" if ok(b) else "NO")
        lines.append((label, "-" if a is None else pattern % a,
                      "-" if b is None else pattern % b, ratio, target, met))
    widths = [max(len(x[i]) for x in lines + [head]) for i in range(len(head))]

    def row(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    print(row(head))
    print("  ".join("-" * w for w in widths))
    for x in lines:
        print(row(x))
    print("auth on: Bearer = a token from /token sent on every request; Basic = the "
          "administrator's password on every request. on/off: auth on / auth off.")
    for side in (off, on):
        for key, msg in (side.errors.items() if side else ()):
            print("error: auth %s %s: %s" % (side.name, key, msg))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=int(os.environ.get("PT_BENCH_DURATION", 10)))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("PT_BENCH_RUNS", 2)),
                    help="wrk runs per figure, the best counts (default 2)")
    ap.add_argument("--portolan-arg", action="append", default=[],
                    help="extra argument for both portolan nodes (repeatable)")
    args = ap.parse_args(argv)
    if not (1 <= args.duration <= 120 and 1 <= args.runs <= 10):
        ap.error("duration must be 1..120 s, runs 1..10")
    if not harness.binary_has_auth():
        print("bench: %s has no access control (--auth)" % harness.portolan_bin(),
              file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="pt-bench-auth-", dir=os.environ.get("PT_BENCH_DATA"))
    sides = []
    started = time.monotonic()
    try:
        for name, auth in (("off", False), ("on", True)):
            node = harness.Node(data_dir=os.path.join(work, name, "data"),
                                args=args.portolan_arg, auth=auth,
                                admin_password=harness.new_password() if auth else None)
            node.start()
            node.wait_auth()
            sides.append(Side(name, node))
            log("auth %s on %s" % (name, node.url))
        states = {s.name: {} for s in sides}
        workloads = [("seed", seed), ("manifest GET", bench_manifest), ("blob GET", bench_blob),
                     ("/token", bench_token)]
        for title, fn in workloads:
            for side in sides:
                t0 = time.monotonic()
                try:
                    if title == "seed":
                        fn(side, states[side.name])
                    else:
                        fn(side, args, states[side.name])
                except (BenchError, OSError, RuntimeError, AssertionError, KeyError,
                        harness.TokenError, subprocess.SubprocessError) as e:
                    side.errors[title] = str(e)
                log("%s / auth %s: %.1fs" % (title, side.name, time.monotonic() - t0))
    finally:
        for side in sides:
            side.node.stop()
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)
    print("Portolan access-control bench: %d cores, %s, total %.0fs, binary %s"
          % (os.cpu_count() or 0, time.strftime("%Y-%m-%d %H:%M"),
             time.monotonic() - started, harness.portolan_bin()))
    by = {s.name: s for s in sides}
    report(by.get("off"), by.get("on"))
    return 1 if any(s.errors for s in sides) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
