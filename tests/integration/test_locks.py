"""Repository locks and immutable tags across regions (replication/fsm_policy.c,
node/store/metastore_policy.c, node/http/api_policy.c, node/cli/repo.c, node/cli/tagrule.c).

Role: checks from outside, against three real `portolan serve` processes (tests/lib/cluster.py),
that a lock or an immutable tag rule set through one region refuses the writes it names from
every region, with 403 DENIED and a message naming the lock or the rule:
  - repo_lock: `portolan repo lock R --no-write` at region a; a manifest PUT from each region
    is refused ("repository R is locked for writes"), so is a new upload; `repo show` lists
    the lock; after `repo unlock` the push is accepted;
  - tag_and_manifest_locks: a tag locked for deletes cannot be deleted, nor the manifest it
    names; a manifest locked for deletes cannot be deleted; a repository locked for deletes
    refuses a blob delete; a tag locked for writes does not move but can be re-put at its digest;
  - immutable_tags: `portolan tag-rule add 'P/*' 'v*'`: a new matching tag is written, re-put
    at the same digest (idempotent push) is fine, moving it or deleting it is refused
    ("... is immutable (rule P/*:v*)") from every region; a non-matching tag moves; two
    regions racing to write a new matching tag with different digests: exactly one wins and
    every region names its digest; racing to move an existing one: none wins;
  - the regions' state digests agree at the end.
"""

import json
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from blobrep import cli, make_image, push_image  # noqa: E402
import cluster  # noqa: E402
import harness as h  # noqa: E402

TIMEOUT = 120
LAYER = 2048


def put(region, repo, ref, img, blobs=True):
    """(status, error message) of a manifest PUT of img (its blobs pushed first unless
    blobs is false)."""
    with region.client(timeout=30) as cl:
        for b in img.blobs() if blobs else ():
            cl.push_blob(repo, b.data)
        r = cl.put_manifest(repo, ref, img.manifest, img.media_type)
    return r.status, message(r)


def message(r):
    try:
        return r.json()["errors"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def delete(region, path):
    with region.client(timeout=30) as cl:
        r = cl.delete(path)
    return r.status, message(r)


def denied(t, got, words, what):
    status, msg = got
    t.check(status == 403 and words in msg, "%s: want 403 naming %r, got %s %r" % (
        what, words, status, msg))


def tag_digest(region, repo, tag):
    with region.client(timeout=30) as cl:
        r = cl.get_manifest(repo, tag)
    return r.headers.get("Docker-Content-Digest") if r.status == 200 else None


def admin(region, method, path, body=None):
    with region.client(timeout=30) as cl:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        return cl.request(method, path, hdrs, data)


def repo_lock(t, c):
    a, b, cc = c.regions
    repo = h.unique_repo("lock")
    img, other = make_image(1, LAYER), make_image(1, LAYER)
    push_image(b, repo, "v1", img)
    push_image(b, repo, other.digest, other)  # its blobs are in the repository before the lock
    rc, out, err = cli(c, "repo", "lock", repo, "--no-write", "--region", a.url)
    t.eq(rc, 0, "repo lock: %s %s" % (out, err))
    for r in c.regions:
        denied(t, put(r, repo, "v2", other, blobs=False), "repository %s is locked for writes" % repo,
               "push to a write-locked repository at %s" % r.name)
    with c.regions[2].client(timeout=30) as cl:
        r = cl.request("POST", "/v2/%s/blobs/uploads/" % repo, {"Content-Length": "0"})
    denied(t, (r.status, message(r)), "repository %s is locked for writes" % repo,
           "upload to a write-locked repository")
    rc, out, err = cli(c, "repo", "show", repo, "--region", cc.url)
    t.check(rc == 0 and "writes LOCKED" in out and "deletes enabled" in out,
            "repo show: %s %s" % (out, err))
    rc, out, err = cli(c, "repo", "unlock", repo, "--region", b.url)
    t.eq(rc, 0, "repo unlock: %s" % err)
    t.eq(put(cc, repo, "v2", other)[0], 201, "push after unlock")


def tag_and_manifest_locks(t, c):
    a, b, cc = c.regions
    repo = h.unique_repo("lockt")
    img, img2, other = make_image(1, LAYER), make_image(1, LAYER), make_image(1, LAYER)
    push_image(a, repo, "keep", img)
    push_image(a, repo, "pinned", img2)
    rc, out, err = cli(c, "repo", "lock", "%s:keep" % repo, "--no-delete", "--region", b.url)
    t.eq(rc, 0, "tag lock: %s" % err)
    for r in c.regions:
        denied(t, delete(r, "/v2/%s/manifests/keep" % repo),
               "tag %s:keep is locked for deletes" % repo, "tag delete at %s" % r.name)
        denied(t, delete(r, "/v2/%s/manifests/%s" % (repo, img.digest)),
               "tag %s:keep is locked for deletes" % repo,
               "delete of a manifest a locked tag names at %s" % r.name)
    rc, out, err = cli(c, "repo", "lock", "%s@%s" % (repo, img2.digest), "--no-delete",
                       "--region", cc.url)
    t.eq(rc, 0, "manifest lock: %s" % err)
    denied(t, delete(a, "/v2/%s/manifests/%s" % (repo, img2.digest)),
           "manifest %s@%s is locked for deletes" % (repo, img2.digest), "manifest delete")
    # a write-locked tag: re-put at its digest is fine, a move is refused
    rc, out, err = cli(c, "repo", "lock", "%s:pinned" % repo, "--no-write", "--region", a.url)
    t.eq(rc, 0, "tag write lock: %s" % err)
    t.eq(put(b, repo, "pinned", img2)[0], 201, "re-put of a write-locked tag at its digest")
    denied(t, put(b, repo, "pinned", other), "tag %s:pinned is locked for writes" % repo,
           "move of a write-locked tag")
    # a repository locked for deletes: a blob delete is refused too
    r = admin(a, "POST", "/admin/locks", {"repo": repo, "delete_enabled": False})
    t.eq(r.status, 200, "lock by the admin API: %s" % r.describe())
    blob = img.blobs()[0].digest
    denied(t, delete(cc, "/v2/%s/blobs/%s" % (repo, blob)),
           "repository %s is locked for deletes" % repo, "blob delete")
    r = admin(a, "GET", "/admin/locks?repo=%s" % repo)
    t.check(r.status == 200 and len(r.json()["locks"]) == 4, "GET /admin/locks?repo=: %s" %
            r.describe(300))
    # unlocked, everything goes
    for ref in ("", ":keep", ":pinned", "@" + img2.digest):
        rc, out, err = cli(c, "repo", "unlock", repo + ref, "--region", b.url)
        t.eq(rc, 0, "unlock %s: %s" % (ref, err))
    t.eq(delete(a, "/v2/%s/manifests/keep" % repo)[0], 202, "tag delete after unlock")
    t.eq(delete(b, "/v2/%s/manifests/%s" % (repo, img2.digest))[0], 202,
         "manifest delete after unlock")


def race(regions, fn):
    """Runs fn(region) in one thread per region, released together; returns the results."""
    out = [None] * len(regions)
    go = threading.Barrier(len(regions))

    def one(i, r):
        go.wait()
        out[i] = fn(i, r)
    th = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(regions)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    return out


def immutable_tags(t, c):
    a, b, cc = c.regions
    prefix = h.unique_repo("imm")
    repo = prefix + "/app"
    rc, out, err = cli(c, "tag-rule", "add", prefix + "/*", "v*", "--region", cc.url)
    t.eq(rc, 0, "tag-rule add: %s %s" % (out, err))
    rc, out, err = cli(c, "tag-rule", "list", "--region", a.url)
    t.check(rc == 0 and prefix + "/*" in out, "tag-rule list: %s %s" % (out, err))
    img, img2, img3 = (make_image(1, LAYER) for _ in range(3))
    t.eq(put(a, repo, "v1.0", img)[0], 201, "first write of an immutable tag")
    t.eq(put(b, repo, "v1.0", img)[0], 201, "idempotent re-push of an immutable tag")
    rule = "(rule %s/*:v*)" % prefix
    for r in c.regions:
        denied(t, put(r, repo, "v1.0", img2), rule, "move of an immutable tag at %s" % r.name)
        denied(t, delete(r, "/v2/%s/manifests/v1.0" % repo), rule,
               "delete of an immutable tag at %s" % r.name)
    t.eq(put(a, repo, "latest", img)[0], 201, "latest")
    t.eq(put(b, repo, "latest", img2)[0], 201, "latest moves: not a matching tag")
    # race for a new immutable tag: exactly one wins
    for r in (a, b, cc):
        with r.client(timeout=30) as cl:
            for x in (img2, img3):
                for bl in x.blobs():
                    cl.push_blob(repo, bl.data)
    imgs = [img2, img3]

    def push_new(i, r):
        with r.client(timeout=30) as cl:
            return cl.put_manifest(repo, "v2.0", imgs[i].manifest, imgs[i].media_type).status
    got = race([a, cc], push_new)
    t.check(sorted(got) == [201, 403], "racing writes of a new immutable tag: %s" % got)
    if 201 in got:
        winner = imgs[got.index(201)].digest
        c.wait_converged(timeout=30)
        for r in c.regions:
            t.eq(tag_digest(r, repo, "v2.0"), winner, "v2.0 at %s" % r.name)

    def push_move(i, r):
        with r.client(timeout=30) as cl:
            return cl.put_manifest(repo, "v1.0", imgs[i].manifest, imgs[i].media_type).status
    got = race([b, cc], push_move)
    t.eq(got, [403, 403], "racing moves of an existing immutable tag")
    for r in c.regions:
        t.eq(tag_digest(r, repo, "v1.0"), img.digest, "v1.0 at %s" % r.name)
    rc, out, err = cli(c, "tag-rule", "remove", prefix + "/*", "v*", "--region", b.url)
    t.eq(rc, 0, "tag-rule remove: %s" % err)
    t.eq(put(a, repo, "v1.0", img2)[0], 201, "the tag moves once the rule is gone")
    r = admin(a, "POST", "/admin/tag-rules", {"repo_pattern": prefix + "/*", "tag_pattern": "v["})
    t.check(r.status == 400 and "INVALID" in r.error_codes(), "bad tag pattern: %s" %
            r.describe())


def main(results):
    if results.target != "portolan":
        raise h.Skip("locks and immutable tags are portolan-only")
    with cluster.Cluster(3) as c:
        c.wait_leader()
        for name, fn in (("repo_lock", repo_lock),
                         ("tag_and_manifest_locks", tag_and_manifest_locks),
                         ("immutable_tags", immutable_tags)):
            results.run(name, fn, results, c)
        ok = c.wait_converged(timeout=30)
        results.check(ok, "state digests of the regions differ: %s" % c.digests())
