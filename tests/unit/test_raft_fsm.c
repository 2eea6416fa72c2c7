/*
 * test_raft_fsm.c - snapshots of replicated state and the canonical/raft FSM adapter.
 *
 * The first half drives the metastore's snapshot stream directly: a round trip reproduces the
 * state digest and the applied index and leaves local records alone, identical states give
 * identical bytes, the documented format is what restore reads (hand-built streams), and any
 * damage (every single flipped byte, truncation, unknown version, broken structure under a
 * valid checksum) is refused without changing anything.
 *
 * The second half runs real clusters in raft's deterministic in-process fixture
 * (raft/fixture.h): every server has the real FSM over its own RocksDB metastore in a
 * temporary directory, time is simulated, and each test checks that the state digests of all
 * servers converge and are equal through elections, leader loss, partitions, snapshot
 * installation on a lagging follower and membership changes.
 *
 * In between, the adapter's apply is called the way raft calls it after a failure: a server
 * whose apply failed (a write failure injected through the metastore's fault seam, or a
 * committed entry that does not decode) refuses that entry when raft offers it again, and
 * everything after it, even once the fault is gone, until its store is reopened.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "digest.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "metastore.h"
#include "raft_fsm.h"

#define MT_OCI      "application/vnd.oci.image.manifest.v1+json"
#define T0          1700000000000LL
#define MAX_SERVERS 5
#define MAX_REQS    256
#define STEP_MS     20000 /* simulated time allowed for any one wait */

/* One raft_apply request and what its callback reported. */
struct req {
    struct raft_apply apply;
    int done;   /* callback invocations */
    int status; /* the callback's RAFT_* status */
    int result; /* pt_raft_fsm_status of the result, when status is 0 */
};

struct fixture {
    unsigned n_stores; /* metastores opened, ms[0 .. n_stores-1] */
    char dir[256];
    char db[MAX_SERVERS][300];
    struct pt_metastore *ms[MAX_SERVERS];
    struct pt_raft_fsm fsm[MAX_SERVERS];
    struct raft_fixture rf;
    unsigned n; /* servers grown into rf */
    struct req reqs[MAX_REQS];
    unsigned n_reqs;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The initial state names how many metastores the test needs (opening one costs about 0.1 s
 * under the sanitizers, so tests open only what they use). */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->n_stores = *(const unsigned *)*state;
    assert_true(f->n_stores >= 1 && f->n_stores <= MAX_SERVERS);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/pt_raft_fsm_XXXXXX", tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    for (unsigned i = 0; i < f->n_stores; i++) {
        snprintf(f->db[i], sizeof(f->db[i]), "%s/server%u", f->dir, i);
        assert_int_equal(pt_metastore_open(f->db[i], &f->ms[i]), 0);
    }
    assert_int_equal(raft_fixture_initialize(&f->rf), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    raft_fixture_close(&f->rf); /* fires pending apply callbacks; reqs are still alive */
    for (unsigned i = 0; i < f->n_stores; i++)
        pt_metastore_close(f->ms[i]);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void reopen(struct fixture *f, int i)
{
    pt_metastore_close(f->ms[i]);
    assert_int_equal(pt_metastore_open(f->db[i], &f->ms[i]), 0);
}

/* ---- commands ---------------------------------------------------------------------------- */

static void digest_of(const char *s, char out[PT_DIGEST_STR_MAX + 1])
{
    struct pt_digest d;
    pt_digest_of(s, strlen(s), &d);
    pt_digest_format(&d, out);
}

static void repo_of(unsigned k, char repo[32])
{
    snprintf(repo, 32, "team/app%u", k % 3);
}

static void body_of(unsigned k, char body[64])
{
    snprintf(body, 64, "{\"schemaVersion\":2,\"n\":%u}", k);
}

/*
 * The k-th command of the workload: links and records a new layer, stores a manifest over it
 * and moves the tags "latest" and "v<k%4>" of repository app<k%3> to it; every fifth manifest
 * refers to an earlier one (a referrers entry). Later commands overwrite tags of earlier ones,
 * so the final state depends on the order in which commands were applied.
 */
static void cmd_push(struct pt_command_builder *b, unsigned k)
{
    char repo[32], blob[32], layer[PT_DIGEST_STR_MAX + 1], body[64], d[PT_DIGEST_STR_MAX + 1],
        subject[PT_DIGEST_STR_MAX + 1], vtag[16];
    repo_of(k, repo);
    snprintf(blob, sizeof(blob), "layer-%u", k);
    digest_of(blob, layer);
    body_of(k, body);
    digest_of(body, d);
    snprintf(vtag, sizeof(vtag), "v%u", k % 4);
    bool refers = k >= 3 && k % 5 == 0;
    if (refers) {
        char prev[64];
        body_of(k - 3, prev);
        digest_of(prev, subject);
    }
    assert_int_equal(pt_command_builder_init(b, T0 + k, "eu-west"), 0);
    assert_int_equal(pt_command_add_link_blob(b, repo, layer, strlen(blob)), 0);
    assert_int_equal(pt_command_add_blob_stored(b, layer, strlen(blob), NULL), 0);
    const char *tags[] = {"latest", vtag};
    const char *blobs[] = {layer};
    struct pt_command_manifest m = {
        .repo = repo,
        .digest = d,
        .media_type = MT_OCI,
        .body = body,
        .len = strlen(body),
        .tags = tags,
        .n_tags = 2,
        .subject = refers ? subject : NULL,
        .artifact_type = refers ? "application/vnd.example.sig" : NULL,
        .annotations = refers ? "{\"k\":\"v\"}" : NULL,
        .annotations_len = refers ? 9 : 0,
        .blobs = blobs,
        .n_blobs = 1,
    };
    assert_int_equal(pt_command_add_put_manifest(b, &m), 0);
}

/* A command that points tag at a manifest no repository holds: its precondition fails. */
static void cmd_bad_tag(struct pt_command_builder *b, const char *tag)
{
    char d[PT_DIGEST_STR_MAX + 1];
    digest_of("no such manifest", d);
    assert_int_equal(pt_command_builder_init(b, T0, "eu-west"), 0);
    assert_int_equal(pt_command_add_put_tag(b, "team/app0", tag, d), 0);
}

/* Applies b (freed) to ms directly at index; returns the command's status. */
static int apply_direct(struct pt_metastore *ms, struct pt_command_builder *b, uint64_t index)
{
    void *buf;
    size_t len;
    assert_int_equal(pt_command_builder_encode(b, &buf, &len), 0);
    pt_command_builder_free(b);
    struct pt_fsm_result res;
    assert_int_equal(pt_fsm_apply(ms, buf, len, index, &res), 0);
    free(buf);
    return res.status;
}

/* Applies workload commands first..last-1 to ms at indices first..last-1. */
static void push_direct(struct pt_metastore *ms, unsigned first, unsigned last)
{
    for (unsigned k = first; k < last; k++) {
        struct pt_command_builder b;
        cmd_push(&b, k);
        assert_int_equal(apply_direct(ms, &b, k), 0);
    }
}

static void state_of(struct pt_metastore *ms, char hex[65])
{
    assert_int_equal(pt_metastore_state_digest(ms, hex), 0);
}

/* ---- snapshot stream --------------------------------------------------------------------- */

static void test_snapshot_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct pt_metastore *a = f->ms[0], *b = f->ms[1];
    push_direct(a, 1, 31);
    /* b holds something else: another repository, and a local upload record */
    struct pt_command_builder cb;
    assert_int_equal(pt_command_builder_init(&cb, T0, "us-east"), 0);
    char d[PT_DIGEST_STR_MAX + 1];
    digest_of("other", d);
    assert_int_equal(pt_command_add_link_blob(&cb, "other/repo", d, 5), 0);
    assert_int_equal(apply_direct(b, &cb, 40), 0);
    assert_int_equal(pt_metastore_upload_put(b, "upload-1", "session", 7), 0);

    void *buf;
    size_t len;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(a, &buf, &len, &index), 0);
    assert_int_equal(index, 30);
    uint64_t peek = 0;
    assert_int_equal(pt_metastore_snapshot_index(buf, len, &peek), 0);
    assert_int_equal(peek, 30);

    assert_int_equal(pt_metastore_restore(b, buf, len), 0);
    char ha[65], hb[65];
    state_of(a, ha);
    state_of(b, hb);
    assert_string_equal(ha, hb);
    assert_int_equal(pt_metastore_applied_index(b), 30); /* went back from 40: replaced */
    assert_int_equal(pt_metastore_repo_exists(b, "other/repo"), 0);
    char tag[PT_DIGEST_STR_MAX + 1], want[PT_DIGEST_STR_MAX + 1], body[64];
    body_of(29, body);
    digest_of(body, want);
    assert_int_equal(pt_metastore_get_tag(b, "team/app2", "latest", tag), 0);
    assert_string_equal(tag, want);
    struct pt_referrer *refs;
    size_t n_refs;
    body_of(2, body);
    digest_of(body, want);
    assert_int_equal(pt_metastore_list_referrers(b, "team/app2", want, NULL, 10, &refs, &n_refs),
                     0);
    assert_int_equal(n_refs, 1); /* manifest 5 refers to manifest 2 */
    pt_referrers_free(refs, n_refs);
    void *val;
    size_t vlen;
    assert_int_equal(pt_metastore_upload_get(b, "upload-1", &val, &vlen), 0);
    assert_memory_equal(val, "session", 7);
    free(val);

    /* identical state, identical bytes */
    void *buf2;
    size_t len2;
    assert_int_equal(pt_metastore_snapshot(b, &buf2, &len2, &index), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(buf2, buf, len);
    free(buf2);
    free(buf);

    /* the restored store keeps following the log, and survives a reopen */
    push_direct(a, 31, 33);
    push_direct(b, 25, 33); /* 25..30 are skipped by index */
    reopen(f, 1);
    b = f->ms[1];
    assert_int_equal(pt_metastore_applied_index(b), 32);
    state_of(a, ha);
    state_of(b, hb);
    assert_string_equal(ha, hb);
}

static void test_snapshot_empty(void **state)
{
    struct fixture *f = *state;
    char empty[65], h[65];
    state_of(f->ms[0], empty);
    push_direct(f->ms[1], 1, 6);
    void *buf;
    size_t len;
    uint64_t index = 99;
    assert_int_equal(pt_metastore_snapshot(f->ms[0], &buf, &len, &index), 0);
    assert_int_equal(index, 0);
    assert_int_equal(len, 56 + (7 + 5 + 9 + 4 + 10 + 9 + 14 + 4) + 8 * 9);
    assert_int_equal(pt_metastore_restore(f->ms[1], buf, len), 0);
    free(buf);
    state_of(f->ms[1], h);
    assert_string_equal(h, empty);
    assert_int_equal(pt_metastore_applied_index(f->ms[1]), 0);
    reopen(f, 1);
    assert_int_equal(pt_metastore_applied_index(f->ms[1]), 0);
    assert_int_equal(pt_metastore_repo_exists(f->ms[1], "team/app1"), 0);
}

/* Hand-built streams, written from the format drawn in metastore.c. */
struct rec {
    const char *k;
    size_t klen;
    const char *v;
    size_t vlen;
};

struct fam {
    const char *name;
    const struct rec *recs;
    size_t n;
    uint64_t count; /* declared count; n if 0 */
};

static void le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes a stream into out (4096 bytes) and returns its length; extra bytes (may be NULL)
 * go right before the checksum. */
static size_t build_stream(unsigned char *out, uint32_t version, uint64_t index,
                           uint32_t n_fams_hdr, const struct fam *fams, size_t n_fams,
                           const char *extra)
{
    size_t n = 0;
    memcpy(out, "PTLNSNAP", 8);
    n = 8;
    le(out + n, version, 4);
    n += 4;
    le(out + n, index, 8);
    n += 8;
    le(out + n, n_fams_hdr, 4);
    n += 4;
    for (size_t i = 0; i < n_fams; i++) {
        size_t nl = strlen(fams[i].name);
        out[n++] = (unsigned char)nl;
        memcpy(out + n, fams[i].name, nl);
        n += nl;
        le(out + n, fams[i].count ? fams[i].count : fams[i].n, 8);
        n += 8;
        for (size_t j = 0; j < fams[i].n; j++) {
            const struct rec *r = &fams[i].recs[j];
            le(out + n, r->klen, 4);
            n += 4;
            memcpy(out + n, r->k, r->klen);
            n += r->klen;
            le(out + n, r->vlen, 4);
            n += 4;
            memcpy(out + n, r->v, r->vlen);
            n += r->vlen;
        }
    }
    if (extra != NULL) {
        memcpy(out + n, extra, strlen(extra));
        n += strlen(extra);
    }
    assert_true(n + 32 < 4096);
    unsigned int mdlen;
    assert_int_equal(EVP_Digest(out, n, out + n, &mdlen, EVP_sha256(), NULL), 1);
    return n + mdlen;
}

static const char *const family_names[] = {
    "default", "repos", "manifests", "tags", "repo_blobs", "referrers", "blob_locations", "meta",
};

/* The eight families with the given repos and meta records. */
static void families(struct fam fams[8], const struct rec *repos, size_t n_repos,
                     const struct rec *meta, size_t n_meta)
{
    for (int i = 0; i < 8; i++)
        fams[i] = (struct fam){.name = family_names[i]};
    fams[1].recs = repos;
    fams[1].n = n_repos;
    fams[7].recs = meta;
    fams[7].n = n_meta;
}

static void assert_unchanged(struct pt_metastore *ms, const char *hex, uint64_t index)
{
    char now[65];
    state_of(ms, now);
    assert_string_equal(now, hex);
    assert_int_equal(pt_metastore_applied_index(ms), index);
}

static void expect_refused(struct pt_metastore *ms, const unsigned char *buf, size_t len)
{
    char before[65];
    state_of(ms, before);
    uint64_t index = pt_metastore_applied_index(ms);
    assert_int_equal(pt_metastore_restore(ms, buf, len), PT_E_CORRUPT);
    assert_unchanged(ms, before, index);
}

static void test_snapshot_format(void **state)
{
    struct fixture *f = *state;
    struct pt_metastore *ms = f->ms[0];
    static const char created[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0}; /* v1 i64:0 */
    const struct rec repos[] = {{"lib/a", 5, created, 9}, {"lib/b", 5, created, 9}};
    const struct rec meta[] = {{"cluster", 7, "x", 1}};
    struct fam fams[8];
    unsigned char s[4096];

    /* a valid hand-built stream is read as documented */
    families(fams, repos, 2, meta, 1);
    size_t len = build_stream(s, 1, 7, 8, fams, 8, NULL);
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot_index(s, len, &index), 0);
    assert_int_equal(index, 7);
    assert_int_equal(pt_metastore_restore(ms, s, len), 0);
    assert_int_equal(pt_metastore_repo_exists(ms, "lib/a"), 1);
    assert_int_equal(pt_metastore_repo_exists(ms, "lib/b"), 1);
    assert_int_equal(pt_metastore_applied_index(ms), 7);
    /* and written back byte for byte */
    void *out;
    size_t out_len;
    assert_int_equal(pt_metastore_snapshot(ms, &out, &out_len, &index), 0);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, s, len);
    free(out);

    /* everything below has a valid checksum and must still be refused */
    expect_refused(ms, s, build_stream(s, 2, 7, 8, fams, 8, NULL)); /* unknown version */
    expect_refused(ms, s, build_stream(s, 0, 7, 8, fams, 8, NULL)); /* version 0 */
    expect_refused(ms, s, build_stream(s, 1, 7, 9, fams, 8, NULL)); /* family count */
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 7, NULL)); /* a family missing */
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, "\1")); /* trailing bytes */
    fams[2].name = "manifests2";
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* unknown family */
    fams[2].name = "tags";
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* families out of order */

    const struct rec desc[] = {{"lib/b", 5, created, 9}, {"lib/a", 5, created, 9}};
    families(fams, desc, 2, NULL, 0);
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* keys descending */
    const struct rec dup[] = {{"lib/a", 5, created, 9}, {"lib/a", 5, created, 9}};
    families(fams, dup, 2, NULL, 0);
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* duplicate key */
    const struct rec prefix[] = {{"lib/ab", 6, created, 9}, {"lib/a", 5, created, 9}};
    families(fams, prefix, 2, NULL, 0);
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* prefix after longer */
    const struct rec empty[] = {{"", 0, created, 9}};
    families(fams, empty, 1, NULL, 0);
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* empty key */
    const struct rec applied[] = {{"applied_index", 13, created, 9}};
    families(fams, repos, 2, applied, 1);
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* index outside header */
    families(fams, repos, 2, NULL, 0);
    fams[1].count = 3;
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL)); /* count beyond records */
    fams[1].count = UINT64_MAX;
    expect_refused(ms, s, build_stream(s, 1, 7, 8, fams, 8, NULL));

    /* no checksum, no stream */
    families(fams, repos, 2, NULL, 0);
    len = build_stream(s, 1, 7, 8, fams, 8, NULL);
    s[len - 1] ^= 1;
    expect_refused(ms, s, len);
    assert_int_equal(pt_metastore_snapshot_index(s, len, &index), PT_E_CORRUPT);
    s[len - 1] ^= 1;
    s[0] = 'X'; /* magic */
    expect_refused(ms, s, len);
    expect_refused(ms, s, 0);
    expect_refused(ms, NULL, 0);
    assert_int_equal(pt_metastore_snapshot_index(NULL, 0, &index), PT_E_CORRUPT);
}

static void test_snapshot_damage(void **state)
{
    struct fixture *f = *state;
    push_direct(f->ms[0], 1, 8);
    push_direct(f->ms[1], 1, 4);
    void *buf;
    size_t len;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(f->ms[0], &buf, &len, &index), 0);
    char before[65];
    state_of(f->ms[1], before);
    unsigned char *p = buf;

    /* every single flipped byte and every truncation is refused, nothing changes */
    for (size_t i = 0; i < len; i++) {
        p[i] ^= 0x20;
        assert_int_equal(pt_metastore_restore(f->ms[1], p, len), PT_E_CORRUPT);
        assert_int_equal(pt_metastore_snapshot_index(p, len, &index), PT_E_CORRUPT);
        p[i] ^= 0x20;
    }
    for (size_t n = 0; n < len; n += 7)
        assert_int_equal(pt_metastore_restore(f->ms[1], p, n), PT_E_CORRUPT);
    assert_int_equal(pt_metastore_restore(f->ms[1], p, len - 1), PT_E_CORRUPT);
    assert_unchanged(f->ms[1], before, 3);

    /* the undamaged stream still restores */
    assert_int_equal(pt_metastore_restore(f->ms[1], p, len), 0);
    char a[65], b[65];
    state_of(f->ms[0], a);
    state_of(f->ms[1], b);
    assert_string_equal(a, b);
    free(buf);
}

/* ---- adapter callbacks without a cluster --------------------------------------------------- */

static void test_adapter_callbacks(void **state)
{
    struct fixture *f = *state;
    push_direct(f->ms[0], 1, 11);
    struct pt_raft_fsm *src = &f->fsm[0], *dst = &f->fsm[1];
    pt_raft_fsm_init(src, f->ms[0], NULL);
    pt_raft_fsm_init(dst, f->ms[1], NULL);
    assert_int_equal(src->fsm.version, 1);
    assert_ptr_equal(src->fsm.data, src);

    struct raft_buffer *bufs;
    unsigned n_bufs;
    assert_int_equal(src->fsm.snapshot(&src->fsm, &bufs, &n_bufs), 0);
    assert_int_equal(n_bufs, 1);
    assert_int_equal(src->n_snapshots, 1);
    struct raft_buffer copy = {.base = raft_malloc(bufs[0].len), .len = bufs[0].len};
    memcpy(copy.base, bufs[0].base, copy.len);

    /* a damaged snapshot is refused and stays the caller's */
    struct raft_buffer bad = {.base = raft_malloc(copy.len), .len = copy.len};
    memcpy(bad.base, copy.base, copy.len);
    ((unsigned char *)bad.base)[copy.len / 2] ^= 1;
    int devnull = open("/dev/null", O_WRONLY);
    assert_true(devnull >= 0);
    int saved = pt_log_set_fd(devnull); /* the refusal is logged; keep test output clean */
    assert_int_equal(dst->fsm.restore(&dst->fsm, &bad), RAFT_CORRUPT);
    pt_log_set_fd(saved);
    close(devnull);
    raft_free(bad.base);
    assert_int_equal(pt_metastore_applied_index(f->ms[1]), 0);

    /* restore takes the buffer (freed with raft_free: the sanitizer checks both ways) */
    assert_int_equal(dst->fsm.restore(&dst->fsm, &bufs[0]), 0);
    raft_free(bufs); /* the array stays with raft, as in raft's own restore path */
    assert_int_equal(dst->n_restored, 1);
    char a[65], b[65];
    state_of(f->ms[0], a);
    state_of(f->ms[1], b);
    assert_string_equal(a, b);

    /* a snapshot the store has already applied is skipped, and the buffer still taken */
    push_direct(f->ms[1], 11, 13);
    state_of(f->ms[1], b);
    assert_int_equal(dst->fsm.restore(&dst->fsm, &copy), 0);
    assert_int_equal(dst->n_restore_skipped, 1);
    assert_unchanged(f->ms[1], b, 12);

    /* apply without an attached raft instance cannot know its index */
    struct pt_command_builder cb;
    cmd_push(&cb, 20);
    struct raft_buffer entry;
    assert_int_equal(pt_command_encode_with(&cb.msg, raft_malloc, &entry.base, &entry.len), 0);
    pt_command_builder_free(&cb);
    void *result = (void *)1;
    assert_int_equal(dst->fsm.apply(&dst->fsm, &entry, &result), RAFT_INVALID);
    assert_null(result);
    raft_free(entry.base);

    /* results and errors across the boundary */
    assert_int_equal(pt_raft_fsm_status(NULL), 0);
    assert_int_equal(pt_raft_fsm_status((void *)(intptr_t)PT_E_MANIFEST_UNKNOWN),
                     PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_raft_fsm_err(0), 0);
    assert_int_equal(pt_raft_fsm_err(RAFT_NOTLEADER), PT_E_UNAVAILABLE);
    assert_int_equal(pt_raft_fsm_err(RAFT_LEADERSHIPLOST), PT_E_UNAVAILABLE);
    assert_int_equal(pt_raft_fsm_err(RAFT_NOMEM), PT_E_NOMEM);
    assert_int_equal(pt_raft_fsm_err(RAFT_CORRUPT), PT_E_CORRUPT);
    assert_int_equal(pt_raft_fsm_err(RAFT_IOERR), PT_E_IO);
    assert_int_equal(pt_raft_fsm_err(RAFT_TOOBIG), PT_E_TOO_LARGE);
    assert_int_equal(pt_raft_fsm_err(RAFT_MALFORMED), PT_E_INTERNAL);
}

/* ---- clusters ---------------------------------------------------------------------------- */

static struct raft *srv(struct fixture *f, unsigned i)
{
    return raft_fixture_get(&f->rf, i);
}

/* Adds server i = f->n with its FSM over ms[i]; snapshot settings 0 keep raft's defaults. */
static void grow(struct fixture *f, unsigned threshold, unsigned trailing)
{
    unsigned i = f->n;
    assert_true(i + 1 < f->n_stores); /* the last store is expected_state's */
    pt_raft_fsm_init(&f->fsm[i], f->ms[i], NULL);
    assert_int_equal(raft_fixture_grow(&f->rf, &f->fsm[i].fsm), 0);
    pt_raft_fsm_attach(&f->fsm[i], srv(f, i));
    if (threshold != 0) {
        raft_set_snapshot_threshold(srv(f, i), threshold);
        raft_set_snapshot_trailing(srv(f, i), trailing);
    }
    f->n++;
}

/* n voters, bootstrapped and started. */
static void start_cluster(struct fixture *f, unsigned n, unsigned threshold, unsigned trailing)
{
    for (unsigned i = 0; i < n; i++)
        grow(f, threshold, trailing);
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&f->rf, n, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&f->rf, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&f->rf), 0);
}

/* raft 0.15 leaves last_applied before an entry whose apply failed and offers the same entry
 * again at its next commit: that retry, and any restore, must be refused. */
static void test_adapter_apply_failure(void **state)
{
    struct fixture *f = *state;
    grow(f, 0, 0); /* server 0 over ms[0], never started: last_applied 0, next index 1 */
    struct pt_raft_fsm *a = &f->fsm[0];
    struct pt_command_builder cb;
    cmd_push(&cb, 1);
    void *cmd;
    size_t cmd_len;
    assert_int_equal(pt_command_encode(&cb.msg, &cmd, &cmd_len), 0);
    pt_command_builder_free(&cb);
    struct raft_buffer entry;
    assert_int_equal(pt_raft_entry_frame(cmd, cmd_len, &entry), 0);
    free(cmd);

    int devnull = open("/dev/null", O_WRONLY);
    assert_true(devnull >= 0);
    int saved = pt_log_set_fd(devnull);
    pt_metastore_fail_next_commit(f->ms[0], PT_E_IO);
    void *result = (void *)1;
    assert_int_equal(a->fsm.apply(&a->fsm, &entry, &result), RAFT_IOERR);
    assert_null(result);
    /* the fault is gone; the entry offered again is still refused */
    assert_int_equal(a->fsm.apply(&a->fsm, &entry, &result), RAFT_IOERR);
    assert_int_equal(a->fsm.apply(&a->fsm, &entry, &result), RAFT_IOERR);
    assert_int_equal(pt_metastore_halted(f->ms[0]), PT_E_IO);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 0);
    assert_int_equal(a->n_applied, 0);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "team/app1"), 0);

    /* and so is a snapshot, which stays raft's */
    push_direct(f->ms[1], 1, 4);
    struct raft_buffer snap;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot_with(f->ms[1], raft_realloc, raft_free, &snap.base,
                                                &snap.len, &index),
                     0);
    assert_int_equal(a->fsm.restore(&a->fsm, &snap), RAFT_IOERR);
    raft_free(snap.base);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 0);

    /* a committed entry that does not decode stops the log as well */
    struct pt_raft_fsm *b = &f->fsm[1];
    pt_raft_fsm_init(b, f->ms[2], srv(f, 0));
    unsigned char junk[16] = {3}; /* a 3-byte command that is not one */
    struct raft_buffer bad = {.base = junk, .len = sizeof(junk)};
    assert_int_equal(b->fsm.apply(&b->fsm, &bad, &result), RAFT_CORRUPT);
    assert_int_equal(pt_metastore_halted(f->ms[2]), PT_E_CORRUPT);
    assert_int_equal(b->fsm.apply(&b->fsm, &entry, &result), RAFT_CORRUPT);
    assert_int_equal(pt_metastore_applied_index(f->ms[2]), 0);
    pt_log_set_fd(saved);
    close(devnull);

    /* after a restart the entry applies at the index it failed at */
    reopen(f, 0);
    a->ms = f->ms[0];
    assert_int_equal(a->fsm.apply(&a->fsm, &entry, &result), 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1);
    assert_int_equal(a->n_applied, 1);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "team/app1"), 1);
    raft_free(entry.base);
}

static void apply_done_cb(struct raft_apply *a, int status, void *result)
{
    struct req *r = a->data;
    r->done++;
    r->status = status;
    r->result = status == 0 ? pt_raft_fsm_status(result) : 0;
}

/* Proposes b (freed) on server i, which must accept it into its log. */
static struct req *propose(struct fixture *f, unsigned i, struct pt_command_builder *b)
{
    assert_true(f->n_reqs < MAX_REQS);
    struct req *r = &f->reqs[f->n_reqs++];
    memset(r, 0, sizeof(*r));
    r->apply.data = r;
    void *cmd;
    size_t cmd_len;
    assert_int_equal(pt_command_encode(&b->msg, &cmd, &cmd_len), 0);
    pt_command_builder_free(b);
    struct raft_buffer buf;
    assert_int_equal(pt_raft_entry_frame(cmd, cmd_len, &buf), 0);
    free(cmd);
    assert_int_equal(buf.len % 8, 0);
    int rv = raft_apply(srv(f, i), &r->apply, &buf, 1, apply_done_cb);
    if (rv != 0)
        raft_free(buf.base);
    assert_int_equal(rv, 0);
    return r;
}

static unsigned leader(struct fixture *f)
{
    assert_true(raft_fixture_step_until_has_leader(&f->rf, STEP_MS));
    unsigned l = raft_fixture_leader_index(&f->rf);
    assert_true(l < f->n);
    return l;
}

/* Proposes workload commands first..last-1 on the leader; returns the last request. */
static struct req *push(struct fixture *f, unsigned first, unsigned last)
{
    unsigned l = leader(f);
    struct req *r = NULL;
    for (unsigned k = first; k < last; k++) {
        struct pt_command_builder b;
        cmd_push(&b, k);
        r = propose(f, l, &b);
    }
    return r;
}

struct wait {
    unsigned mask; /* servers that must have applied */
    raft_index index;
    const struct req *req; /* or, when set: this request's callback must have fired */
};

static bool waited(struct raft_fixture *rf, void *arg)
{
    const struct wait *w = arg;
    if (w->req != NULL)
        return w->req->done > 0;
    for (unsigned i = 0; i < rf->n; i++)
        if ((w->mask & (1u << i)) && raft_last_applied(raft_fixture_get(rf, i)) < w->index)
            return false;
    return true;
}

static void wait_req(struct fixture *f, const struct req *r)
{
    struct wait w = {.req = r};
    assert_true(raft_fixture_step_until(&f->rf, waited, &w, STEP_MS));
}

/* Steps until every server of mask has applied the leader's last entry, then checks that
 * their state digests and applied indices are equal; hex gets the common digest. */
static void converge(struct fixture *f, unsigned mask, char hex[65])
{
    struct wait w = {.mask = mask, .index = raft_last_index(srv(f, leader(f)))};
    assert_true(raft_fixture_step_until(&f->rf, waited, &w, STEP_MS));
    bool first = true;
    uint64_t applied = 0;
    for (unsigned i = 0; i < f->n; i++) {
        if (!(mask & (1u << i)))
            continue;
        char h[65];
        state_of(f->ms[i], h);
        uint64_t a = pt_metastore_applied_index(f->ms[i]);
        assert_true(a > 0 && a <= raft_last_applied(srv(f, i)));
        if (first) {
            memcpy(hex, h, sizeof(h));
            applied = a;
            first = false;
        }
        assert_string_equal(h, hex);
        assert_int_equal(a, applied);
    }
}

/* The state a single store (the last one, outside the cluster) reaches by applying workload
 * commands 1..n-1 in order. */
static void expected_state(struct fixture *f, unsigned n, char hex[65])
{
    struct pt_metastore *ms = f->ms[f->n_stores - 1];
    push_direct(ms, 1, n);
    state_of(ms, hex);
}

/* Cuts (or restores) the link between servers i and j in both directions: sends fail at
 * once (disconnect) and messages already in flight are dropped (saturate), which is also what
 * the fixture's leader-stability check looks at. */
static void link_set(struct fixture *f, unsigned i, unsigned j, bool up)
{
    if (up) {
        raft_fixture_reconnect(&f->rf, i, j);
        raft_fixture_reconnect(&f->rf, j, i);
        raft_fixture_desaturate(&f->rf, i, j);
        raft_fixture_desaturate(&f->rf, j, i);
    } else {
        raft_fixture_disconnect(&f->rf, i, j);
        raft_fixture_disconnect(&f->rf, j, i);
        raft_fixture_saturate(&f->rf, i, j);
        raft_fixture_saturate(&f->rf, j, i);
    }
}

/* Cuts (or restores) every link of server i. */
static void isolate(struct fixture *f, unsigned i, bool cut)
{
    for (unsigned j = 0; j < f->n; j++)
        if (j != i)
            link_set(f, i, j, !cut);
}

/* Kills server i, the leader, and waits for the others to elect a new one. */
static unsigned kill_leader(struct fixture *f, unsigned i)
{
    raft_fixture_kill(&f->rf, i);
    assert_true(raft_fixture_step_until_has_no_leader(&f->rf, STEP_MS));
    unsigned l = leader(f);
    assert_int_not_equal(l, i);
    return l;
}

static void test_cluster_apply(void **state)
{
    struct fixture *f = *state;
    start_cluster(f, 3, 0, 0);
    unsigned l = leader(f);
    /* one leader, and every server knows it */
    for (unsigned i = 0; i < 3; i++) {
        raft_id id;
        const char *addr;
        raft_leader(srv(f, i), &id, &addr);
        assert_int_equal(id, srv(f, l)->id);
        assert_int_equal(raft_state(srv(f, i)), i == l ? RAFT_LEADER : RAFT_FOLLOWER);
    }

    struct req *last = push(f, 1, 21);
    struct pt_command_builder b;
    cmd_bad_tag(&b, "ghost");
    struct req *bad = propose(f, l, &b);
    char hex[65], want[65];
    converge(f, 7, hex);
    for (unsigned i = 0; i < 21; i++) {
        assert_int_equal(f->reqs[i].done, 1);
        assert_int_equal(f->reqs[i].status, 0);
    }
    assert_int_equal(last->result, 0);
    /* a failed precondition comes back through the result, identically applied everywhere */
    assert_int_equal(bad->status, 0);
    assert_int_equal(bad->result, PT_E_MANIFEST_UNKNOWN);
    expected_state(f, 21, want);
    assert_string_equal(hex, want);
    for (unsigned i = 0; i < 3; i++) {
        char digest[PT_DIGEST_STR_MAX + 1];
        assert_int_equal(pt_metastore_get_tag(f->ms[i], "team/app0", "ghost", digest),
                         PT_E_MANIFEST_UNKNOWN);
        assert_int_equal(f->fsm[i].n_applied, 21);
        assert_int_equal(f->fsm[i].n_skipped, 0);
        /* the store's index is the raft index of the last command */
        assert_int_equal(pt_metastore_applied_index(f->ms[i]), bad->apply.index);
    }
}

static void test_cluster_leader_loss(void **state)
{
    struct fixture *f = *state;
    start_cluster(f, 3, 0, 0);
    raft_fixture_elect(&f->rf, 0);
    push(f, 1, 6);
    char h1[65], h2[65], h3[65], want[65];
    converge(f, 7, h1);

    /* deposed: another server is elected and carries on */
    raft_fixture_depose(&f->rf);
    assert_true(raft_fixture_step_until_has_no_leader(&f->rf, STEP_MS));
    raft_fixture_elect(&f->rf, 1);
    assert_int_equal(leader(f), 1);
    push(f, 6, 11);
    converge(f, 7, h2);
    assert_string_not_equal(h1, h2);

    /* killed: the two others elect a leader among themselves and carry on without it */
    unsigned l = kill_leader(f, 1);
    assert_true(l == 0 || l == 2);
    push(f, 11, 16);
    converge(f, 5, h3);
    char dead[65];
    state_of(f->ms[1], dead);
    assert_string_equal(dead, h2); /* it missed everything since it died */

    /* back: it catches up with what it missed */
    raft_fixture_revive(&f->rf, 1);
    push(f, 16, 18);
    converge(f, 7, h3);
    expected_state(f, 18, want);
    assert_string_equal(h3, want);
    for (unsigned i = 0; i < f->n_reqs; i++)
        assert_int_equal(f->reqs[i].status, 0);
}

static void test_cluster_partition(void **state)
{
    struct fixture *f = *state;
    start_cluster(f, 3, 0, 0);
    raft_fixture_elect(&f->rf, 0);
    push(f, 1, 4);
    char h[65], cut[65], want[65];
    converge(f, 7, h);

    /* a follower cut off: the majority commits without it, it changes nothing meanwhile */
    isolate(f, 2, true);
    push(f, 4, 9);
    converge(f, 3, h);
    state_of(f->ms[2], cut);
    assert_string_not_equal(cut, h);
    assert_true(pt_metastore_applied_index(f->ms[2]) < pt_metastore_applied_index(f->ms[0]));
    isolate(f, 2, false);
    converge(f, 7, h);

    /* the leader cut off: what it accepts alone is never committed; the majority elects a
     * new leader and goes on; after healing everyone holds the majority's history */
    isolate(f, 0, true);
    struct pt_command_builder b;
    assert_int_equal(pt_command_builder_init(&b, T0, "eu-west"), 0);
    char d[PT_DIGEST_STR_MAX + 1], body[64];
    body_of(1, body);
    digest_of(body, d);
    assert_int_equal(pt_command_add_put_tag(&b, "team/app1", "orphan", d), 0);
    struct req *orphan = propose(f, 0, &b);
    wait_req(f, orphan); /* the old leader steps down and gives up on it */
    assert_int_not_equal(orphan->status, 0);
    assert_int_equal(pt_raft_fsm_err(orphan->status), PT_E_UNAVAILABLE);
    unsigned l = leader(f);
    assert_true(l == 1 || l == 2);
    push(f, 9, 14);
    converge(f, 6, h);
    isolate(f, 0, false);
    push(f, 14, 15);
    converge(f, 7, h);
    expected_state(f, 15, want);
    assert_string_equal(h, want);
    for (unsigned i = 0; i < 3; i++) {
        char digest[PT_DIGEST_STR_MAX + 1];
        assert_int_equal(pt_metastore_get_tag(f->ms[i], "team/app1", "orphan", digest),
                         PT_E_MANIFEST_UNKNOWN);
    }
}

static void test_cluster_snapshot_install(void **state)
{
    struct fixture *f = *state;
    start_cluster(f, 3, 4, 2);
    raft_fixture_elect(&f->rf, 0);
    push(f, 1, 4);
    char h[65], want[65];
    converge(f, 7, h);
    uint64_t applied_before = f->fsm[2].n_applied;

    /* follower 2 falls behind by far more than the leader keeps in its log */
    isolate(f, 2, true);
    push(f, 4, 34);
    converge(f, 3, h);
    assert_true(f->fsm[0].n_snapshots >= 1);
    assert_true(srv(f, 0)->log.offset > pt_metastore_applied_index(f->ms[2]));

    isolate(f, 2, false);
    converge(f, 7, h);
    expected_state(f, 34, want);
    assert_string_equal(h, want);
    /* it caught up through InstallSnapshot, not by replaying every entry */
    assert_true(raft_fixture_n_recv(&f->rf, 2, RAFT_IO_INSTALL_SNAPSHOT) >= 1);
    assert_true(f->fsm[2].n_restored >= 1);
    assert_true(f->fsm[2].n_applied - applied_before < 30);

    /* and it keeps following the log afterwards */
    push(f, 34, 40);
    converge(f, 7, h);
    expected_state(f, 40, want);
    assert_string_equal(h, want);
}

static void change_cb(struct raft_change *req, int status)
{
    int *out = req->data;
    *out = status == 0 ? 1 : -1;
}

static bool change_done(struct raft_fixture *rf, void *arg)
{
    (void)rf;
    return *(int *)arg != 0;
}

static int role_of(struct raft *r, raft_id id)
{
    for (unsigned i = 0; i < r->configuration.n; i++)
        if (r->configuration.servers[i].id == id)
            return r->configuration.servers[i].role;
    return -1;
}

static void test_cluster_membership(void **state)
{
    struct fixture *f = *state;
    start_cluster(f, 3, 8, 2);
    raft_fixture_elect(&f->rf, 0);
    push(f, 1, 26);
    char h[65], want[65];
    converge(f, 7, h);
    assert_true(srv(f, 0)->log.offset > 0); /* the log no longer starts at index 1 */

    /* a pristine fourth server joins as a spare, then becomes a voter */
    grow(f, 8, 2);
    struct raft *fresh = srv(f, 3);
    assert_int_equal(raft_start(fresh), 0);
    int done = 0;
    struct raft_change change = {.data = &done};
    assert_int_equal(raft_add(srv(f, 0), &change, fresh->id, fresh->address, change_cb), 0);
    assert_true(raft_fixture_step_until(&f->rf, change_done, &done, STEP_MS));
    assert_int_equal(done, 1);
    assert_int_equal(role_of(srv(f, 0), fresh->id), RAFT_SPARE);
    done = 0;
    assert_int_equal(raft_assign(srv(f, 0), &change, fresh->id, RAFT_VOTER, change_cb), 0);
    assert_true(raft_fixture_step_until(&f->rf, change_done, &done, STEP_MS));
    assert_int_equal(done, 1);
    assert_int_equal(role_of(srv(f, 0), fresh->id), RAFT_VOTER);

    push(f, 26, 31);
    converge(f, 15, h);
    expected_state(f, 31, want);
    assert_string_equal(h, want);
    assert_true(f->fsm[3].n_restored >= 1); /* it started from a snapshot */

    /* four voters need three: with one of the originals gone, commits need the new voter */
    raft_fixture_kill(&f->rf, 2);
    struct req *r = push(f, 31, 33);
    wait_req(f, r);
    assert_int_equal(r->status, 0);
    converge(f, 11, h);
    /* and a voter that loses the cluster stops commits: kill the new one too */
    raft_fixture_kill(&f->rf, 3);
    struct pt_command_builder b;
    cmd_push(&b, 33);
    struct req *stuck = propose(f, raft_fixture_leader_index(&f->rf), &b);
    raft_fixture_step_until_elapsed(&f->rf, 3000);
    assert_true(stuck->done == 0 || stuck->status != 0);
    char now[65];
    state_of(f->ms[0], now);
    assert_string_equal(now, h);
}

int main(void)
{
    static unsigned one = 1, two = 2, four = 4, five = 5;
#define TEST(fn, stores) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &stores)
    const struct CMUnitTest tests[] = {
        TEST(test_snapshot_roundtrip, two),        TEST(test_snapshot_empty, two),
        TEST(test_snapshot_format, one),           TEST(test_snapshot_damage, two),
        TEST(test_adapter_callbacks, two),         TEST(test_cluster_apply, four),
        TEST(test_cluster_leader_loss, four),      TEST(test_cluster_partition, four),
        TEST(test_cluster_snapshot_install, four), TEST(test_cluster_membership, five),
        TEST(test_adapter_apply_failure, four),
    };
#undef TEST
    return cmocka_run_group_tests(tests, NULL, NULL);
}
