#!/usr/bin/env python3
"""run.py - runs Portolan's integration tests.

Discovers tests/integration/test_*.py; each module exposes main(results) and starts the
registry it needs with harness.registry_for(results.target) (results.strict tells whether
portolan-only checks are enforced; raising harness.Skip from main skips the whole module; an
optional module-level TIMEOUT sets its time budget in seconds, default 300; --timeout
overrides every module's). Prints one line per failed test
("FAIL module::test: reasons") as it happens and ends with exactly one summary line
"N passed, N failed" (", N skipped" when some were skipped). Exit status 1 if any failed.

    python3 tests/integration/run.py                      # every module, against portolan
    python3 tests/integration/run.py api bad_input        # a subset (test_ prefix optional)
    python3 tests/integration/run.py --target reference   # against docker-registry 2.8
    python3 tests/integration/run.py -k referrers -v      # tests whose name contains a word

The portolan binary is $PORTOLAN_BIN (default build/portolan of this checkout). With --target
reference, checks that only Portolan must pass (OCI 1.1 behaviour missing from Distribution
2.8) are skipped or waived; -v lists them.
"""

import argparse
import glob
import importlib.util
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import harness  # noqa: E402


class ModuleTimeout(BaseException):
    """Raised in the main thread when a module exceeds its time budget."""


def discover(selected):
    files = sorted(glob.glob(os.path.join(HERE, "test_*.py")))
    mods = [(os.path.basename(f)[:-3], f) for f in files]
    if not selected:
        return mods, []
    wanted = {os.path.basename(s) for s in selected}
    wanted = {s[:-3] if s.endswith(".py") else s for s in wanted}
    wanted = {w if w.startswith("test_") else "test_" + w for w in wanted}
    found = [(n, f) for n, f in mods if n in wanted]
    missing = sorted(wanted - {n for n, _ in found})
    return found, missing


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def on_alarm(signum, frame):
    raise ModuleTimeout()


def main(argv):
    ap = argparse.ArgumentParser(description="Portolan integration tests")
    ap.add_argument("modules", nargs="*", help="module names (api, test_api, test_api.py)")
    ap.add_argument("--target", choices=("portolan", "reference"), default="portolan")
    ap.add_argument("--strict", dest="strict", action="store_true", default=None,
                    help="enforce portolan-only checks whatever the target")
    ap.add_argument("--no-strict", dest="strict", action="store_false")
    ap.add_argument("-k", dest="pattern", help="run only tests whose name contains this")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print passing, skipped and waived checks too")
    ap.add_argument("--timeout", type=int, default=None,
                    help="seconds per module (default: the module's TIMEOUT, else 300)")
    args = ap.parse_args(argv)
    args.timeout_given = args.timeout
    if args.timeout is None:
        args.timeout = 300

    results = harness.Results(target=args.target, strict=args.strict, verbose=args.verbose)
    results.name_filter = args.pattern
    mods, missing = discover(args.modules)
    for name in missing:
        results.fail(name, "no such test module")

    ready = True
    if args.target == "portolan":
        binary = harness.portolan_bin()
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            results.fail("setup", "portolan binary not found at %s (set PORTOLAN_BIN)" % binary)
            ready = False
    elif not os.access(harness.REFERENCE_BIN, os.X_OK):
        results.fail("setup", "%s not installed (apt-get install docker-registry)"
                     % harness.REFERENCE_BIN)
        ready = False

    signal.signal(signal.SIGALRM, on_alarm)
    # A terminated run still stops the registries it started (context managers, finally).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    times = []
    for name, path in mods if ready else []:
        results.module = name
        t0 = time.monotonic()
        signal.alarm(60)
        budget = args.timeout
        try:
            mod = load(name, path)
            if args.timeout_given is None:
                budget = int(getattr(mod, "TIMEOUT", args.timeout))
            signal.alarm(budget)
            entry = getattr(mod, "main", None)
            if entry is None:
                results.fail(name, "module has no main(results)")
            else:
                entry(results)
        except ModuleTimeout:
            results.fail(name, "module timed out after %ds" % budget)
        except harness.Skip as e:
            results.skipped += 1
            if args.verbose:
                print("SKIP %s: %s" % (name, e))
        except Exception as e:  # set-up failure (registry did not start, import error)
            results.fail(name, "module error: %s" % harness._describe_exception(e))
        finally:
            signal.alarm(0)
        times.append((name, time.monotonic() - t0))
        if args.verbose:
            print("--- %s: %.1fs" % (name, times[-1][1]))
    results.module = ""

    if args.verbose:
        if results.waived:
            print("%d portolan-only checks failed on %s (waived):"
                  % (len(results.waived), args.target))
            for where, msg in results.waived:
                print("  %s: %s" % (where, msg))
        print("total %.1fs" % (time.monotonic() - started))
    if times:
        print("seconds: " + " ".join("%s %.0f" % (n.replace("test_", ""), t) for n, t in times)
              + " (total %.0f)" % (time.monotonic() - started))
    print(results.summary())
    sys.stdout.flush()
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
