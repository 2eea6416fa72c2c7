"""`portolan backup` and `portolan restore`: a consistent backup of a running region, restored
into a fresh single region that serves the backed-up images byte for byte.

Role: checks README.md's "Backup and restore" against real processes (access control on):
  - backup_requires_admin: POST /admin/backup without credentials is 401, and the CLI
    refuses without credentials (exit 1);
  - backup_and_restore: three images are pushed into a single region; `portolan backup`
    runs while a writer keeps pushing tags (the backup must not need the region to stop);
    the audit log records the backup; an image pushed after the backup is not in it. The
    backup is restored with `portolan restore` into a new data directory, a fresh node
    started on it serves every image pushed before the backup (manifests and blobs
    byte-identical, by tag and digest), every tag it lists resolves to a manifest whose
    blobs are all there (the checkpoint is consistent), and the later image is unknown;
    a damaged blob in a copy of the backup makes `portolan restore` fail naming it.
"""

import json
import os
import shutil
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness as h  # noqa: E402

TIMEOUT = 240


def cli(node, *args, creds="admin", timeout=120):
    env = h.cli_env(node.admin if creds == "admin" else creds)
    r = subprocess.run([h.portolan_bin()] + list(args), env=env, capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def backup_requires_admin(results):
    t = results
    with h.Node(auth=True) as node:
        with node.client(auth=None) as cl:
            r = cl.request("POST", "/admin/backup")
        t.eq(r.status, 401, "POST /admin/backup without credentials")
        rc, out, err = cli(node, "backup", "--region", node.url, creds=None)
        t.eq(rc, 1, "portolan backup without credentials: %s %s" % (out, err))
        t.check(not os.path.exists(os.path.join(node.data_dir, "backups")) or
                not [n for n in os.listdir(os.path.join(node.data_dir, "backups"))
                     if not n.startswith(".")], "a refused backup left a backup behind")


def pull_all(cl, repo, img, tag):
    """Problems pulling img (pushed as repo:tag) from cl: manifest by tag and digest, blobs."""
    bad = []
    for ref in (tag, img.digest):
        r = cl.get_manifest(repo, ref)
        if r.status != 200 or r.body != img.bytes:
            bad.append("%s:%s: %s" % (repo, ref, r.describe()))
    for digest, data in img.blobs:
        r = cl.get("/v2/%s/blobs/%s" % (repo, digest))
        if r.status != 200 or r.body != data:
            bad.append("%s blob %s: %s" % (repo, digest, r.describe()))
    return bad


def backup_and_restore(results):
    t = results
    with h.Node(auth=True) as node:
        repo = h.unique_repo("backup")
        images = {"v%d" % i: h.make_image(layers=2, layer_size=4096 + i) for i in range(3)}
        with node.client() as cl:
            for tag, img in images.items():
                img.push(cl, repo, tag)
        # A writer keeps pushing while the backup runs.
        stop = threading.Event()
        live = []
        base = h.make_image(layers=1, layer_size=300)
        with node.client() as cl:
            base.push(cl, repo + "-live", "base")

        def writer():
            i = 0
            with node.client() as wcl:
                while not stop.is_set():
                    m = dict(base.obj)
                    m["annotations"] = {"n": str(i)}
                    mm = h.Manifest(m, base.media_type, base.blobs)
                    r = wcl.put_manifest(repo + "-live", "t%05d" % i, mm.bytes, mm.media_type)
                    if r.status == 201:
                        live.append(("t%05d" % i, mm))
                    i += 1

        th = threading.Thread(target=writer, daemon=True)
        th.start()
        rc, out, err = cli(node, "backup", "--region", node.url, "--json")
        stop.set()
        th.join(30)
        t.require(rc == 0, "portolan backup: exit %s: %s %s" % (rc, out, err))
        doc = json.loads(out)
        path = doc["path"]
        if results.verbose:
            print("  backup: %s (%d writes during it)" % (out.strip(), len(live)))
        t.check(os.path.isfile(os.path.join(path, "backup.json")), "no backup.json in %s" % path)
        t.eq(doc["missing_blobs"], 0, "missing_blobs of a single region's backup")
        with open(os.path.join(path, "backup.json")) as f:
            manifest = json.load(f)
        t.eq(manifest["applied_index"], doc["applied_index"], "backup.json applied_index")
        audit = os.path.join(node.data_dir, "audit", "audit.log")
        text = open(audit).read() if os.path.exists(audit) else ""
        t.check("/admin/backup" in text, "the audit log does not record the backup")

        later = h.make_image(layers=1, layer_size=777)
        with node.client() as cl:
            later.push(cl, repo, "after")

        # Copy it off the volume (as an operator would), then restore into a new directory.
        work = os.path.join(node.root, "restore")
        os.makedirs(work)
        copy = os.path.join(work, "copy")
        shutil.copytree(path, copy)
        restored = os.path.join(work, "data")
        rc, out, err = cli(node, "restore", "--from", copy, "--data-dir", restored, creds=None)
        t.require(rc == 0, "portolan restore: exit %s: %s %s" % (rc, out, err))
        t.check(os.listdir(restored), "restored directory is empty")

        with h.Node(data_dir=restored, auth=True, admin_password=node.admin.password) as fresh:
            with fresh.client() as cl:
                for tag, img in images.items():
                    bad = pull_all(cl, repo, img, tag)
                    t.check(not bad, "restored region: %s" % "; ".join(bad[:4]))
                r = cl.get_manifest(repo, "after")
                t.eq(r.status, 404, "image pushed after the backup, in the restored region")
                tags = cl.tags(repo + "-live")
                t.check("base" in tags, "live repository tags: %s" % tags[:5])
                known = dict(live)
                broken = []
                for tag in tags:
                    if tag == "base":
                        continue
                    r = cl.get_manifest(repo + "-live", tag)
                    if r.status != 200 or (tag in known and r.body != known[tag].bytes):
                        broken.append("%s: %s" % (tag, r.describe()))
                t.check(not broken, "tags of the restored region that do not resolve: %s" %
                        "; ".join(broken[:4]))
                if results.verbose:
                    print("  restored: %d images, %d of %d live tags" % (
                        len(images), len(tags) - 1, len(live)))

        # A damaged blob is refused.
        damaged = os.path.join(work, "damaged")
        shutil.copytree(path, damaged, copy_function=shutil.copy)
        digest, _ = images["v0"].blobs[0]
        algo, hexd = digest.split(":")
        victim = os.path.join(damaged, "blobs", algo, hexd[:2], hexd)
        with open(victim, "r+b") as f:
            f.write(b"X")
        rc, out, err = cli(node, "restore", "--from", damaged, "--data-dir",
                           os.path.join(work, "data2"), creds=None)
        t.check(rc == 1 and hexd in err, "restore of a damaged backup: exit %s: %s" % (rc, err))


def main(results):
    if results.target != "portolan":
        raise h.Skip("backups are portolan-only")
    results.run("backup_requires_admin", backup_requires_admin, results)
    results.run("backup_and_restore", backup_and_restore, results)
