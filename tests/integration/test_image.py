"""The container image: built from deploy/Containerfile, run with podman the ways users run it.

Role: prove that localhost/portolan:latest (deploy/image.sh) is small, runs as the unprivileged
user, takes its configuration from flags, a mounted YAML file or environment variables, keeps
its data on the volume across container restarts, works on a read-only root filesystem, and
serves a real client (skopeo) byte-identical content with access control on.

What runs (every container on a network of the test's own, the client port published on
127.0.0.1, data on a named volume):
  1. ensure_image() builds the image once per test run (tests/lib/containers.py);
  2. image_size < 120 MB; image_config: user 10001:10001, entrypoint `portolan serve`, ports
     5000 and 7000, volume /var/lib/portolan, the PORTOLAN_* defaults of the contract,
     /usr/libexec/portolan/pod-start executable and the binary's shared libraries present;
     runs_as_uid: the serving process has uid and gid 10001;
  3. configured_by_flags / by_yaml / by_env: one container each, the region set by a flag, by
     a YAML file mounted read-only and named by PORTOLAN_CONFIG, by PORTOLAN_REGION (and a
     flag over the environment); /admin/replication (as the administrator) reports it. The
     administrator's password comes from PORTOLAN_INITIAL_ADMIN_PASSWORD, or from a mounted
     file (initial_admin_password_file) in the YAML case; anonymous /v2/ gets 401;
  4. unknown_variable_refused: PORTOLAN_DATADIR makes the container exit 2 naming it;
  5. push_pull_restart: skopeo pushes a generated image with the admin's credentials and
     pulls it back byte-identical; the container is removed and a new one started on the
     same volume: the image is still there, byte-identical;
  6. read_only_root: `--read-only --read-only-tmpfs=false` (no tmpfs anywhere): the node
     starts, takes a push and serves it back.
Skips with the reason when containers cannot run here (containers.skip_reason()).
"""

import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import containers  # noqa: E402
import harness as h  # noqa: E402
import images  # noqa: E402

TIMEOUT = 1800  # a first build from scratch on a busy machine included
SIZE_LIMIT = 120 * 1000 * 1000


class Ctx:
    def __init__(self, work):
        self.work = work
        self.tag = secrets.token_hex(4)
        self.network = "pt-image-" + self.tag
        self.names = []  # containers started (removed at the end)
        self.volumes = []


def start(ctx, name, args=(), env=None, volume=None, mounts=(), extra=()):
    """Starts the image detached as container NAME with the client port published on a free
    127.0.0.1 port; returns (name, url)."""
    port = h.free_port()
    cmd = ["run", "-d", "--name", name, "--network", ctx.network,
           "-p", "127.0.0.1:%d:5000" % port]
    if volume:
        cmd += ["-v", "%s:/var/lib/portolan" % volume]
    for src, dst in mounts:
        cmd += ["-v", "%s:%s:ro" % (src, dst)]
    for k, v in sorted((env or {}).items()):
        cmd += ["-e", "%s=%s" % (k, v)]
    cmd += list(extra) + [containers.IMAGE] + list(args)
    if name not in ctx.names:
        ctx.names.append(name)
    containers.podman(*cmd)
    return name, "http://127.0.0.1:%d" % port


def logs(name):
    p = containers.podman("logs", name, check=False)
    return (p.stdout + p.stderr).strip()[-1500:]


def wait_healthy(name, url, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        st = containers.podman("inspect", "--format", "{{.State.Status}}", name, check=False)
        if st.stdout.strip() in ("exited", "stopped"):
            raise h.TestFailure("container %s exited: %s" % (name, logs(name)))
        time.sleep(0.5)
    raise h.TestFailure("%s did not answer /healthz within %ds: %s" % (name, timeout, logs(name)))


def region_of(url, creds):
    with h.Client(url, auth=creds, timeout=30) as c:
        r = c.request("GET", "/admin/replication")
        if r.status != 200:
            raise h.TestFailure("/admin/replication: %s" % r.describe())
        return r.json()["region"]


def anonymous_status(url):
    with h.Client(url, timeout=30) as c:
        return c.request("GET", "/v2/").status


def remove(ctx, name):
    """Removes container name and its anonymous volumes (the image's VOLUME, when no named
    volume was mounted there)."""
    containers.podman("rm", "-f", "-v", "-t", "5", name, check=False)


def push_and_compare(results, sk, work, url, creds, repo, seed):
    """skopeo pushes a generated image to url/repo:v1 and pulls it back; returns the source
    directory (for later comparisons)."""
    img = images.make_image(seed, layers=2)
    src = os.path.join(work, "src-" + seed)
    images.write_oci_layout(src, {"v1": img})
    sk.prepare_readable(src)
    host = url.split("://", 1)[1]
    cred = ["--dest-creds", "%s:%s" % (creds.user, creds.password)]
    sk.copy("oci:%s:v1" % src, "docker://%s/%s:v1" % (host, repo), extra=cred)
    compare_pull(results, sk, host, creds, repo, img, "after push")
    return img


def compare_pull(results, sk, host, creds, repo, img, when):
    out = sk.output_dir("pull-%s" % secrets.token_hex(3))
    sk.copy("docker://%s/%s:v1" % (host, repo), "dir:%s" % out,
            extra=["--src-creds", "%s:%s" % (creds.user, creds.password)])
    with open(os.path.join(out, "manifest.json"), "rb") as f:
        results.check(f.read() == img.manifest, "%s: manifest differs" % when)
    for blob in img.blobs():
        path = os.path.join(out, blob.digest.split(":", 1)[1])
        ok = os.path.exists(path) and open(path, "rb").read() == blob.data
        results.check(ok, "%s: blob %s differs or is missing" % (when, blob.digest[:19]))


def main(results):
    reason = containers.skip_reason()
    if reason:
        print("SKIP test_image: %s" % reason)
        raise h.Skip(reason)
    image, took = containers.ensure_image()
    if took:
        print("image built in %.0f s" % took)
    work = tempfile.mkdtemp(prefix="pt-image-")
    ctx = Ctx(work)
    containers.podman("network", "create", ctx.network)
    sk = images.Skopeo(os.path.join(work, "skopeo"))
    password = h.new_password()
    admin = h.Credentials("admin", password)
    try:
        run_tests(results, ctx, sk, admin)
    finally:
        for name in ctx.names:
            remove(ctx, name)
        for v in ctx.volumes:
            containers.podman("volume", "rm", "-f", v, check=False)
        containers.podman("network", "rm", "-f", ctx.network, check=False)
        if not os.environ.get("PT_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)


def run_tests(results, ctx, sk, admin):
    def volume(name):
        v = "pt-image-%s-%s" % (ctx.tag, name)
        containers.podman("volume", "create", v)
        ctx.volumes.append(v)
        return v

    @results.test
    def image_size():
        size = containers.image_size()
        print("image size %.1f MB" % (size / 1e6))
        results.check(size < SIZE_LIMIT, "image is %d bytes, limit %d" % (size, SIZE_LIMIT))

    @results.test
    def image_config():
        cfg = json.loads(containers.podman("image", "inspect", containers.IMAGE).stdout)[0]
        c = cfg.get("Config", {})
        results.eq(c.get("User"), "10001:10001", "user")
        results.eq(c.get("Entrypoint"), ["/usr/bin/portolan", "serve"], "entrypoint")
        results.eq(sorted(c.get("ExposedPorts", {})), ["5000/tcp", "7000/tcp"], "ports")
        results.eq(sorted(c.get("Volumes", {})), ["/var/lib/portolan"], "volumes")
        env = dict(e.split("=", 1) for e in c.get("Env", []))
        for k, v in (("PORTOLAN_LISTEN", "0.0.0.0:5000"), ("PORTOLAN_RAFT_LISTEN", "0.0.0.0:7000"),
                     ("PORTOLAN_DATA_DIR", "/var/lib/portolan")):
            results.eq(env.get(k), v, k)
        p = containers.podman("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh",
                              containers.IMAGE, "-c",
                              "test -x /usr/libexec/portolan/pod-start && "
                              "/usr/bin/portolan version", check=False)
        results.check(p.returncode == 0 and p.stdout.startswith("portolan "),
                      "pod-start and portolan version in the image: %r" % (p.stdout + p.stderr))

    @results.test
    def configured_by_flags():
        name, url = start(ctx, "pt-flags-" + ctx.tag, volume=volume("flags"),
                          args=["--region", "by-flags", "--log-level", "info"],
                          env={"PORTOLAN_INITIAL_ADMIN_PASSWORD": admin.password})
        wait_healthy(name, url)
        h.wait_login(url, admin)
        results.eq(region_of(url, admin), "by-flags", "region")
        results.eq(anonymous_status(url), 401, "anonymous /v2/")
        st = containers.podman("exec", name, "cat", "/proc/1/status").stdout
        uid = [line.split()[1:] for line in st.splitlines() if line.startswith(("Uid:", "Gid:"))]
        results.eq(uid, [["10001"] * 4, ["10001"] * 4], "uid and gid of portolan serve")
        remove(ctx, name)

    @results.test
    def configured_by_yaml():
        cfgdir = os.path.join(ctx.work, "yaml")
        os.makedirs(cfgdir)
        with open(os.path.join(cfgdir, "portolan.yaml"), "w") as f:
            f.write("region: by-yaml\n"
                    "initial_admin_password_file: /etc/portolan/admin-password\n"
                    "access_log: off\n")
        h.write_secret_file(os.path.join(cfgdir, "admin-password"), admin.password)
        os.chmod(cfgdir, 0o755)
        for n in os.listdir(cfgdir):  # the server runs as uid 10001
            os.chown(os.path.join(cfgdir, n), 10001, 10001)
        name, url = start(ctx, "pt-yaml-" + ctx.tag, volume=volume("yaml"),
                          mounts=[(cfgdir, "/etc/portolan")],
                          env={"PORTOLAN_CONFIG": "/etc/portolan/portolan.yaml"})
        wait_healthy(name, url)
        h.wait_login(url, admin)
        results.eq(region_of(url, admin), "by-yaml", "region")
        remove(ctx, name)

    @results.test
    def configured_by_env():
        vol = volume("env")
        env = {"PORTOLAN_REGION": "by-env", "PORTOLAN_ACCESS_LOG": "off",
               "PORTOLAN_INITIAL_ADMIN_PASSWORD": admin.password}
        name, url = start(ctx, "pt-env-" + ctx.tag, volume=vol, env=env)
        wait_healthy(name, url)
        h.wait_login(url, admin)
        results.eq(region_of(url, admin), "by-env", "region")
        remove(ctx, name)
        # A flag wins over the environment.
        name, url = start(ctx, "pt-env2-" + ctx.tag, volume=vol, env=env,
                          args=["--region", "flag-over-env"])
        wait_healthy(name, url)
        results.eq(region_of(url, admin), "flag-over-env", "region")
        remove(ctx, name)

    @results.test
    def unknown_variable_refused():
        name = "pt-typo-" + ctx.tag
        ctx.names.append(name)
        p = containers.podman("run", "--name", name, "--network", ctx.network,
                              "-e", "PORTOLAN_DATADIR=/srv", containers.IMAGE, check=False)
        results.eq(p.returncode, 2, "exit status")
        results.check("PORTOLAN_DATADIR" in p.stderr + p.stdout,
                      "the error names the variable: %r" % (p.stderr + p.stdout)[-300:])
        remove(ctx, name)

    @results.test
    def push_pull_restart():
        vol = volume("data")
        env = {"PORTOLAN_INITIAL_ADMIN_PASSWORD": admin.password}
        name, url = start(ctx, "pt-data-" + ctx.tag, volume=vol, env=env)
        wait_healthy(name, url)
        h.wait_login(url, admin)
        img = push_and_compare(results, sk, ctx.work, url, admin, "demo/app", "image-restart")
        remove(ctx, name)
        name, url = start(ctx, "pt-data2-" + ctx.tag, volume=vol, env=env)
        wait_healthy(name, url)
        h.wait_login(url, admin)
        compare_pull(results, sk, url.split("://", 1)[1], admin, "demo/app", img,
                     "after a restart on the same volume")
        remove(ctx, name)

    @results.test
    def read_only_root():
        env = {"PORTOLAN_INITIAL_ADMIN_PASSWORD": admin.password}
        name, url = start(ctx, "pt-ro-" + ctx.tag, volume=volume("ro"), env=env,
                          extra=["--read-only", "--read-only-tmpfs=false"])
        wait_healthy(name, url)
        h.wait_login(url, admin)
        push_and_compare(results, sk, ctx.work, url, admin, "demo/ro", "image-ro")
        remove(ctx, name)
