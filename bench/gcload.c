/*
 * gcload.c - the bulk loader of bench/gc.sh and bench/scale.sh: fills a stopped node's
 * metadata store with synthetic repositories, blobs, manifests, tags and referrers through
 * the same commands the API proposes.
 *
 * Role: garbage collection has to be measured over a million blobs, which no HTTP push loop
 * makes in minutes. This tool builds, for each blob, the BlobStored + LinkBlob command an
 * upload proposes, and for each manifest the PutManifest command a manifest PUT proposes (an
 * OCI image manifest body that hashes to its digest, its config and layers listed as blobs,
 * a tag), and applies them with pt_fsm_apply_group, the function a single region's committer
 * calls: every precondition, the garbage collection index and the applied index are written
 * exactly as in service. Nothing here is reachable from a running node.
 *
 * Design: blob i of the run is the sha256 of "gcbench-blob-<seed>-<i>" (no file is written:
 * the collector's file deletion then finds nothing to remove, and the sweep has nothing to
 * do); manifest j references blobs 5j .. 5j+4 (a config and four layers) in repository
 * "bench/r<j % repos>" where those blobs were linked; blobs past 5 x manifests are linked
 * and referenced by nothing: the garbage. Every command carries time_ms = now - age_ms so
 * that the garbage is older than the node's --gc-grace. Groups of --group commands are one
 * synced write each, like a busy committer's groups. For bench/scale.sh: each manifest PUT
 * may carry --tags-per-manifest tags ("t<j / repos>-<k>"), be followed by a referrer (an
 * untagged signature artifact PUT by digest whose subject is manifest j, built from manifest
 * j's config and last layer), and --extra-tags PutTag commands ("x<i>" -> manifest 0) make
 * bench/r0 a repository with many tags. The line printed counts records too: 2 per blob (the
 * blob and its link), 1 + tags per manifest, 2 per referrer (it and its referrer entry), 1
 * per extra tag.
 *
 * --holders A,B,.. records each blob as held by those regions too (at most 8), as if blob
 * replication had copied it there: a cluster seeded from this store (bench/scalecluster.py)
 * then starts with every blob replicated.
 *
 * Invariants: the store must not be open elsewhere (the node stopped); the tool only adds.
 * Threads: one.
 *
 *   pt_gcload --meta DIR --blobs N --manifests M [--repos R] [--region NAME] [--holders A,B,..]
 *             [--age-ms MS] [--group G] [--seed S] [--tags-per-manifest T] [--referrers 0|1]
 *             [--extra-tags X]
 * Prints one line "loaded blobs=N manifests=M commands=C records=R seconds=S" on success; exit 1
 * with a message on any refused command or I/O error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "digest.h"
#include "err.h"
#include "fsm.h"
#include "metastore.h"

#define LAYERS_PER_MANIFEST   5 /* config + 4 layers */
#define BLOB_SIZE             4096
#define MANIFEST_BODY_MAX     2048
#define MAX_TAGS_PER_MANIFEST 64
#define MAX_HOLDERS           8

struct opts {
    const char *meta, *region;
    uint64_t blobs, manifests, repos, group, seed;
    uint64_t tags_per_manifest;       /* tags each manifest PUT carries (1: "t<j / repos>") */
    uint64_t referrers;               /* 1: each manifest gets a referrer (a signature artifact) */
    uint64_t extra_tags;              /* PutTag commands into bench/r0 after the manifests */
    const char *holders[MAX_HOLDERS]; /* regions recorded as holding each blob besides region */
    size_t nholders;
    int64_t age_ms;
};

struct loader {
    struct opts o;
    struct pt_metastore *ms;
    struct pt_fsm_cmd *cmds; /* o.group slots, each buf owned */
    size_t n;
    uint64_t applied;
    uint64_t records; /* blob, link, manifest, tag and referrer records written */
    int64_t time_ms;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void blob_digest(const struct opts *o, uint64_t i, char out[PT_DIGEST_STR_MAX + 1])
{
    char text[64];
    int len = snprintf(text, sizeof(text), "gcbench-blob-%" PRIu64 "-%" PRIu64, o->seed, i);
    struct pt_digest d;
    pt_digest_of(text, (size_t)len, &d);
    pt_digest_format(&d, out);
}

static void repo_name(const struct opts *o, uint64_t j, char out[32])
{
    snprintf(out, 32, "bench/r%" PRIu64, j % o->repos);
}

/* Applies the queued group; 0, or -1 after printing why. */
static int flush(struct loader *l)
{
    if (l->n == 0)
        return 0;
    int rv = pt_fsm_apply_group(l->ms, l->cmds, l->n);
    int bad = rv != 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!bad && l->cmds[i].result.status != 0) {
            fprintf(stderr, "gcload: a command was refused: %s\n",
                    pt_err_message(l->cmds[i].result.status));
            bad = 1;
        }
        free((void *)l->cmds[i].buf);
        l->cmds[i].buf = NULL;
    }
    if (rv != 0)
        fprintf(stderr, "gcload: apply failed: %s\n", pt_err_message(rv));
    l->applied += l->n;
    l->n = 0;
    return bad ? -1 : 0;
}

/* Encodes b (freed here) into the next slot of the group, flushing a full group. */
static int queue(struct loader *l, struct pt_command_builder *b, int rv)
{
    void *buf = NULL;
    size_t len = 0;
    if (rv == 0)
        rv = pt_command_builder_encode(b, &buf, &len);
    pt_command_builder_free(b);
    if (rv != 0) {
        fprintf(stderr, "gcload: cannot build a command: %s\n", pt_err_message(rv));
        return -1;
    }
    l->cmds[l->n++] = (struct pt_fsm_cmd){.buf = buf, .len = len};
    return l->n == l->o.group ? flush(l) : 0;
}

/* Blob i uploaded into the repository of the manifest that will reference it (or, for the
 * garbage, of i / LAYERS_PER_MANIFEST as if it did). */
static int load_blob(struct loader *l, uint64_t i)
{
    char digest[PT_DIGEST_STR_MAX + 1], repo[32];
    blob_digest(&l->o, i, digest);
    repo_name(&l->o, i / LAYERS_PER_MANIFEST, repo);
    struct pt_command_builder b;
    int rv = pt_command_builder_init(&b, l->time_ms, l->o.region);
    if (rv != 0)
        return queue(l, &b, rv);
    rv = pt_command_add_blob_stored(&b, digest, BLOB_SIZE, l->o.region);
    for (size_t h = 0; rv == 0 && h < l->o.nholders; h++)
        rv = pt_command_add_blob_stored(&b, digest, BLOB_SIZE, l->o.holders[h]);
    if (rv == 0)
        rv = pt_command_add_link_blob(&b, repo, digest, BLOB_SIZE);
    l->records += 2;
    return queue(l, &b, rv);
}

/* Tag k of manifest j: "t<j / repos>" when each manifest has one tag (the gc bench's names),
 * else "t<j / repos>-<k>". */
static void tag_name(const struct opts *o, uint64_t j, uint64_t k, char out[48])
{
    if (o->tags_per_manifest == 1)
        snprintf(out, 48, "t%" PRIu64, j / o->repos);
    else
        snprintf(out, 48, "t%" PRIu64 "-%" PRIu64, j / o->repos, k);
}

/* Manifest j: an image of blobs 5j .. 5j+4 in bench/r<j % repos> under tags_per_manifest
 * tags; its digest goes to mdigest. */
static int load_manifest(struct loader *l, uint64_t j, char mdigest[PT_DIGEST_STR_MAX + 1])
{
    char d[LAYERS_PER_MANIFEST][PT_DIGEST_STR_MAX + 1], repo[32];
    const char *blobs[LAYERS_PER_MANIFEST];
    for (int k = 0; k < LAYERS_PER_MANIFEST; k++) {
        blob_digest(&l->o, j * LAYERS_PER_MANIFEST + (uint64_t)k, d[k]);
        blobs[k] = d[k];
    }
    repo_name(&l->o, j, repo);
    char tagbuf[MAX_TAGS_PER_MANIFEST][48];
    const char *tags[MAX_TAGS_PER_MANIFEST];
    for (uint64_t k = 0; k < l->o.tags_per_manifest; k++) {
        tag_name(&l->o, j, k, tagbuf[k]);
        tags[k] = tagbuf[k];
    }
    char body[MANIFEST_BODY_MAX];
    int len = snprintf(
        body, sizeof(body),
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
        "\"%s\",\"size\":%d},\"layers\":["
        "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\","
        "\"size\":%d},"
        "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\","
        "\"size\":%d},"
        "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\","
        "\"size\":%d},"
        "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\","
        "\"size\":%d}]}",
        d[0], BLOB_SIZE, d[1], BLOB_SIZE, d[2], BLOB_SIZE, d[3], BLOB_SIZE, d[4], BLOB_SIZE);
    struct pt_digest md;
    pt_digest_of(body, (size_t)len, &md);
    pt_digest_format(&md, mdigest);
    struct pt_command_manifest m = {
        .repo = repo,
        .digest = mdigest,
        .media_type = "application/vnd.oci.image.manifest.v1+json",
        .body = body,
        .len = (size_t)len,
        .tags = tags,
        .n_tags = (size_t)l->o.tags_per_manifest,
        .artifact_type = "application/vnd.oci.image.config.v1+json",
        .blobs = blobs,
        .n_blobs = LAYERS_PER_MANIFEST,
    };
    l->records += 1 + l->o.tags_per_manifest;
    struct pt_command_builder b;
    int rv = pt_command_builder_init(&b, l->time_ms, l->o.region);
    if (rv != 0)
        return queue(l, &b, rv);
    return queue(l, &b, pt_command_add_put_manifest(&b, &m));
}

/* The referrer of manifest j (digest subject): an untagged signature artifact whose config
 * and layer are manifest j's config and last layer, PUT by digest with subject set. */
static int load_referrer(struct loader *l, uint64_t j, const char *subject)
{
    char cfg[PT_DIGEST_STR_MAX + 1], layer[PT_DIGEST_STR_MAX + 1], repo[32];
    blob_digest(&l->o, j * LAYERS_PER_MANIFEST, cfg);
    blob_digest(&l->o, j * LAYERS_PER_MANIFEST + LAYERS_PER_MANIFEST - 1, layer);
    repo_name(&l->o, j, repo);
    char body[MANIFEST_BODY_MAX];
    int len = snprintf(
        body, sizeof(body),
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"artifactType\":\"application/vnd.dev.cosign.artifact.sig.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"%s\","
        "\"size\":%d},\"layers\":[{\"mediaType\":"
        "\"application/vnd.dev.cosign.simplesigning.v1+json\",\"digest\":\"%s\",\"size\":%d}],"
        "\"subject\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"digest\":\"%s\",\"size\":1}}",
        cfg, BLOB_SIZE, layer, BLOB_SIZE, subject);
    struct pt_digest md;
    char mdigest[PT_DIGEST_STR_MAX + 1];
    pt_digest_of(body, (size_t)len, &md);
    pt_digest_format(&md, mdigest);
    const char *blobs[] = {cfg, layer};
    struct pt_command_manifest m = {
        .repo = repo,
        .digest = mdigest,
        .media_type = "application/vnd.oci.image.manifest.v1+json",
        .body = body,
        .len = (size_t)len,
        .subject = subject,
        .artifact_type = "application/vnd.dev.cosign.artifact.sig.v1+json",
        .blobs = blobs,
        .n_blobs = 2,
    };
    l->records += 2; /* the manifest and its referrer record */
    struct pt_command_builder b;
    int rv = pt_command_builder_init(&b, l->time_ms, l->o.region);
    if (rv != 0)
        return queue(l, &b, rv);
    return queue(l, &b, pt_command_add_put_manifest(&b, &m));
}

/* Extra tag i: "x<i>" in bench/r0 pointing at manifest 0 (a repository with many tags). */
static int load_extra_tag(struct loader *l, uint64_t i, const char *digest)
{
    char tag[32];
    snprintf(tag, sizeof(tag), "x%" PRIu64, i);
    l->records++;
    struct pt_command_builder b;
    int rv = pt_command_builder_init(&b, l->time_ms, l->o.region);
    if (rv != 0)
        return queue(l, &b, rv);
    return queue(l, &b, pt_command_add_put_tag(&b, "bench/r0", tag, digest));
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.region = "local",
                       .repos = 100,
                       .group = 512,
                       .tags_per_manifest = 1,
                       .age_ms = 2 * 86400000LL};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        uint64_t n = 0;
        if (strcmp(k, "--meta") == 0)
            o->meta = v;
        else if (strcmp(k, "--region") == 0)
            o->region = v;
        else if (strcmp(k, "--holders") == 0) {
            /* comma-separated; the strings stay in argv */
            for (char *h = strtok((char *)v, ","); h != NULL; h = strtok(NULL, ",")) {
                if (o->nholders == MAX_HOLDERS)
                    return -1;
                o->holders[o->nholders++] = h;
            }
        } else if (parse_u64(v, &n) != 0)
            return -1;
        else if (strcmp(k, "--blobs") == 0)
            o->blobs = n;
        else if (strcmp(k, "--manifests") == 0)
            o->manifests = n;
        else if (strcmp(k, "--repos") == 0)
            o->repos = n;
        else if (strcmp(k, "--group") == 0)
            o->group = n;
        else if (strcmp(k, "--seed") == 0)
            o->seed = n;
        else if (strcmp(k, "--tags-per-manifest") == 0)
            o->tags_per_manifest = n;
        else if (strcmp(k, "--referrers") == 0)
            o->referrers = n;
        else if (strcmp(k, "--extra-tags") == 0)
            o->extra_tags = n;
        else if (strcmp(k, "--age-ms") == 0)
            o->age_ms = (int64_t)n;
        else
            return -1;
    }
    if (argc % 2 == 0 || o->meta == NULL || o->repos == 0 || o->group == 0 ||
        o->group > PT_COMMAND_MAX_OPS || o->manifests > UINT64_MAX / LAYERS_PER_MANIFEST ||
        o->manifests * LAYERS_PER_MANIFEST > o->blobs || o->tags_per_manifest == 0 ||
        o->tags_per_manifest > MAX_TAGS_PER_MANIFEST || o->referrers > 1 ||
        (o->extra_tags > 0 && o->manifests == 0))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct loader l = {0};
    if (parse_args(argc, argv, &l.o) != 0) {
        fprintf(stderr,
                "usage: pt_gcload --meta DIR --blobs N --manifests M [--repos R] "
                "[--region NAME] [--holders A,B,..] [--age-ms MS] [--group G]\n"
                "       [--seed S] [--tags-per-manifest T] [--referrers 0|1] [--extra-tags X]\n"
                "(blobs >= 5 x manifests; group <= 1024; T <= 64; X needs M > 0)\n");
        return 2;
    }
    int rv = pt_metastore_open(l.o.meta, &l.ms);
    if (rv != 0) {
        fprintf(stderr, "gcload: cannot open %s: %s\n", l.o.meta, pt_err_message(rv));
        return 1;
    }
    l.cmds = calloc(l.o.group, sizeof(*l.cmds));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    l.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - l.o.age_ms;
    double t0 = now_s();
    int bad = l.cmds == NULL;
    for (uint64_t i = 0; !bad && i < l.o.blobs; i++)
        bad = load_blob(&l, i) != 0;
    char first[PT_DIGEST_STR_MAX + 1] = "";
    for (uint64_t j = 0; !bad && j < l.o.manifests; j++) {
        char mdigest[PT_DIGEST_STR_MAX + 1];
        bad = load_manifest(&l, j, mdigest) != 0;
        if (j == 0)
            memcpy(first, mdigest, sizeof(first));
        if (!bad && l.o.referrers)
            bad = load_referrer(&l, j, mdigest) != 0;
    }
    for (uint64_t i = 0; !bad && i < l.o.extra_tags; i++)
        bad = load_extra_tag(&l, i, first) != 0;
    if (!bad)
        bad = flush(&l) != 0;
    double secs = now_s() - t0;
    free(l.cmds);
    pt_metastore_close(l.ms);
    if (bad)
        return 1;
    printf("loaded blobs=%" PRIu64 " manifests=%" PRIu64 " commands=%" PRIu64 " records=%" PRIu64
           " seconds=%.1f\n",
           l.o.blobs, l.o.manifests, l.applied, l.records, secs);
    return 0;
}
