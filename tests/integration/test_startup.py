"""test_startup.py - `portolan serve` refusing to start, from outside the process.

- serve_unknown_flag: an unknown flag is called unknown, with or without a value.
- port_taken: a second node started on the address of a running one exits with "cannot
  listen" instead of sharing the port with it.
- worker_thread_failure: when an HTTP worker thread cannot be created, the node logs the
  error, stops the workers already running and exits non-zero instead of serving with a
  loop missing. The failure is injected with an LD_PRELOAD shim (compiled here with cc) that
  fails the second pthread_create whose start routine is the server's worker_main (found with
  nm, so other threads of RocksDB, libuv and the committer are left alone).

Portolan-only: the reference target skips the module.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402

TIMEOUT = 120

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static int calls;

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    create_fn real = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
    const char *off = getenv("PT_SHIM_FN_OFFSET");
    const char *nth = getenv("PT_SHIM_FAIL_NTH");
    Dl_info info;
    if (off != NULL && nth != NULL && dladdr((void *)fn, &info) != 0 && info.dli_fbase != NULL &&
        (uintptr_t)fn - (uintptr_t)info.dli_fbase == (uintptr_t)strtoull(off, NULL, 16) &&
        __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST) == atoi(nth))
        return EAGAIN;
    return real(t, a, fn, arg);
}
"""


def serve_unknown_flag(results, binary):
    for args in (["--bogus"], ["--bogus=1"], ["--bogus", "--threads", "2"]):
        p = subprocess.run([binary, "serve"] + args, capture_output=True, text=True, timeout=30)
        results.eq(p.returncode, 2, "serve %s: exit status" % " ".join(args))
        results.check('unknown flag "--bogus"' in p.stderr,
                      "serve %s: stderr %r does not call the flag unknown"
                      % (" ".join(args), p.stderr.strip()))


def port_taken(results, binary, tmp):
    """A second node on the address of a running one refuses to start (its loops' shared
    port must not take in another process's share of the connections)."""
    first = h.Node(data_dir=os.path.join(tmp, "first"), binary=binary, args=["--threads", "2"])
    first.start(timeout=60)
    try:
        p = subprocess.run([binary, "serve", "--listen", "127.0.0.1:%d" % first.port,
                            "--data-dir", os.path.join(tmp, "second"), "--threads", "2"],
                           capture_output=True, text=True, timeout=60)
        results.check(p.returncode not in (0, None), "a second node on port %d exited with %r"
                      % (first.port, p.returncode))
        results.check("cannot listen" in p.stdout + p.stderr,
                      "no 'cannot listen' logged by the second node: %r"
                      % (p.stdout + p.stderr)[-300:])
        results.check(first.running(), "the first node stopped")
        reports = [ln for ln in (p.stdout + p.stderr).splitlines()
                   if any(m in ln for m in h._Process.SANITIZER_MARKS)]
        results.check(not reports, "sanitizer reports: %s" % " | ".join(reports[:4]))
    finally:
        first.stop()


def worker_offset(binary):
    out = subprocess.run(["nm", binary], capture_output=True, text=True).stdout
    offs = [ln.split()[0] for ln in out.splitlines() if ln.endswith(" worker_main")]
    return offs[0] if len(offs) == 1 else None


def worker_thread_failure(results, binary, tmp):
    cc = shutil.which("cc") or shutil.which("gcc")
    off = worker_offset(binary) if shutil.which("nm") else None
    if cc is None or off is None:
        results.check(False, "needs cc, nm and a binary with symbols (worker_main)")
        return
    shim = os.path.join(tmp, "failthread.so")
    src = os.path.join(tmp, "failthread.c")
    with open(src, "w") as f:
        f.write(SHIM)
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", shim, src, "-ldl"], check=True)
    env = dict(os.environ, LD_PRELOAD=shim, PT_SHIM_FN_OFFSET=off, PT_SHIM_FAIL_NTH="2")
    # An ASan runtime must come first unless told otherwise; the shim forwards to it.
    env["ASAN_OPTIONS"] = ":".join(x for x in (os.environ.get("ASAN_OPTIONS"),
                                               "verify_asan_link_order=0") if x)
    cmd = [binary, "serve", "--listen", "127.0.0.1:%d" % h.free_port(),
           "--data-dir", os.path.join(tmp, "data"), "--threads", "3"]
    log_path = os.path.join(tmp, "node.log")
    with open(log_path, "w") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            code = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    with open(log_path, errors="replace") as f:
        log_text = f.read()
    results.check(code is not None, "node kept running with a worker thread missing: %s"
                  % log_text[-400:])
    results.check(code not in (None, 0), "exit status %r after a failed worker thread" % code)
    results.check("cannot start an HTTP worker thread" in log_text,
                  "no error logged for the failed worker thread: %s" % log_text[-400:])
    results.check('"listening"' not in log_text, "said it was listening with a worker missing")
    reports = [ln for ln in log_text.splitlines()
               if any(m in ln for m in h._Process.SANITIZER_MARKS)]
    results.check(not reports, "sanitizer reports: %s" % " | ".join(reports[:4]))


def main(results):
    if results.target != "portolan":
        raise h.Skip("portolan's own start-up")
    binary = h.portolan_bin()
    tmp = tempfile.mkdtemp(prefix="pt-startup-")
    try:
        results.run("serve_unknown_flag", serve_unknown_flag, results, binary)
        results.run("worker_thread_failure", worker_thread_failure, results, binary, tmp)
        results.run("port_taken", port_taken, results, binary, tmp)
    finally:
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
