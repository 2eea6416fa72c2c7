/*
 * test_metastore.c - metastore: records through batches, lookups, tags with their listing
 * order and pagination, upload records, persistence across reopen, what writers are refused,
 * the state digest, readers running while a writer commits, and the bloom filter of the
 * table files. Each test runs on a fresh
 * database in its own temporary directory (support/ms_fixture.h). Blob locations and
 * referrers are tested in test_metastore_refs.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "err.h"
#include "log.h"
#include "metastore.h"
#include "support/ms_fixture.h"
#include "support/text_digest.h"

static void test_open_empty(void **state)
{
    struct pt_ms_fixture *f = *state;
    struct stat st;
    assert_int_equal(stat(f->db, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(pt_metastore_applied_index(f->ms), 0);
    assert_int_equal(pt_metastore_repo_exists(f->ms, "library/alpine"), 0);
    char **names;
    size_t count;
    int more;
    assert_int_equal(pt_metastore_list_repos(f->ms, "", 100, &names, &count, &more), 0);
    assert_null(names);
    assert_int_equal(count, 0);
    assert_int_equal(more, 0);
    assert_int_equal(pt_metastore_sync(f->ms), 0);
}

static void test_manifest_crud(void **state)
{
    struct pt_ms_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1], other[PT_DIGEST_STR_MAX + 1];
    const char *body = "{\"schemaVersion\":2}";
    pt_ms_put_manifest(f, "library/alpine", body, 1, d);
    assert_int_equal(pt_metastore_applied_index(f->ms), 1);
    assert_int_equal(pt_metastore_repo_exists(f->ms, "library/alpine"), 1);
    assert_int_equal(pt_metastore_repo_exists(f->ms, "library"), 0);

    struct pt_manifest_rec rec;
    assert_int_equal(pt_metastore_get_manifest(f->ms, "library/alpine", d, &rec), 0);
    assert_string_equal(rec.media_type, "application/vnd.oci.image.manifest.v1+json");
    assert_string_equal(rec.artifact_type, "");
    assert_string_equal(rec.subject, "");
    assert_int_equal(rec.len, strlen(body));
    assert_memory_equal(rec.body, body, rec.len);
    assert_int_equal(((char *)rec.body)[rec.len], '\0');
    pt_manifest_rec_free(&rec);
    assert_null(rec.body);

    pt_text_digest("other", other);
    assert_int_equal(pt_metastore_get_manifest(f->ms, "library/alpine", other, &rec),
                     PT_E_MANIFEST_UNKNOWN);
    assert_null(rec.body);
    assert_int_equal(pt_metastore_get_manifest(f->ms, "library/busybox", d, &rec),
                     PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_manifest(f->ms, "library/alpine", "sha256:abc", &rec),
                     PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_manifest(f->ms, "", d, &rec), PT_E_MANIFEST_UNKNOWN);

    /* subject and artifact type round-trip; delete removes the record */
    struct pt_metastore_batch *b = pt_ms_batch(f);
    char art[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("artifact", art);
    assert_int_equal(pt_metastore_batch_manifest_put(b, "library/alpine", art,
                                                     "application/vnd.oci.image.manifest.v1+json",
                                                     "application/spdx+json", d, "artifact", 8),
                     0);
    assert_int_equal(pt_metastore_batch_manifest_delete(b, "library/alpine", d), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 2), 0);
    pt_metastore_batch_free(b);
    assert_int_equal(pt_metastore_get_manifest(f->ms, "library/alpine", d, &rec),
                     PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_manifest(f->ms, "library/alpine", art, &rec), 0);
    assert_string_equal(rec.artifact_type, "application/spdx+json");
    assert_string_equal(rec.subject, d);
    pt_manifest_rec_free(&rec);
    assert_int_equal(pt_metastore_applied_index(f->ms), 2);
}

static void test_batch_isolation(void **state)
{
    struct pt_ms_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("m", d);
    struct pt_metastore_batch *b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_repo_ensure(b, "r", 5), 0);
    assert_int_equal(pt_metastore_batch_manifest_put(b, "r", d, "t/x", "", "", "m", 1), 0);
    /* visible through the batch, not to readers */
    struct pt_manifest_rec rec;
    assert_int_equal(pt_metastore_batch_manifest_get(b, "r", d, &rec), 0);
    assert_null(rec.body);
    assert_int_equal(rec.len, 1);
    assert_string_equal(rec.media_type, "t/x");
    assert_int_equal(pt_metastore_batch_manifest_get(b, "r", d, NULL), 0);
    assert_int_equal(pt_metastore_repo_exists(f->ms, "r"), 0);
    assert_int_equal(pt_metastore_get_manifest(f->ms, "r", d, &rec), PT_E_MANIFEST_UNKNOWN);

    /* clear discards everything staged */
    pt_metastore_batch_clear(b);
    assert_int_equal(pt_metastore_batch_manifest_get(b, "r", d, NULL), PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    assert_int_equal(pt_metastore_repo_exists(f->ms, "r"), 0);
    assert_int_equal(pt_metastore_applied_index(f->ms), 0);

    /* a staged delete hides a stored record from batch reads */
    assert_int_equal(pt_metastore_batch_manifest_put(b, "r", d, "t/x", "", "", "m", 1), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 3), 0);
    assert_int_equal(pt_metastore_batch_manifest_delete(b, "r", d), 0);
    assert_int_equal(pt_metastore_batch_manifest_get(b, "r", d, NULL), PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_manifest(f->ms, "r", d, &rec), 0);
    pt_manifest_rec_free(&rec);
    pt_metastore_batch_free(b); /* discards the staged delete */
    assert_int_equal(pt_metastore_get_manifest(f->ms, "r", d, &rec), 0);
    pt_manifest_rec_free(&rec);
    assert_int_equal(pt_metastore_applied_index(f->ms), 3);

    /* repo_ensure keeps an existing record */
    char before[65], after[65];
    b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_repo_ensure(b, "r", 5), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    assert_int_equal(pt_metastore_state_digest(f->ms, before), 0);
    assert_int_equal(pt_metastore_batch_repo_ensure(b, "r", 99), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    assert_int_equal(pt_metastore_state_digest(f->ms, after), 0);
    assert_string_equal(before, after);
    pt_metastore_batch_free(b);
}

static void test_tags_and_pagination(void **state)
{
    struct pt_ms_fixture *f = *state;
    char d1[PT_DIGEST_STR_MAX + 1], d2[PT_DIGEST_STR_MAX + 1], d3[PT_DIGEST_STR_MAX + 1],
        d4[PT_DIGEST_STR_MAX + 1];
    pt_ms_put_manifest(f, "app", "one", 1, d1);
    pt_ms_put_manifest(f, "app", "two", 2, d2);
    pt_ms_put_manifest(f, "app/sub", "three", 3, d3);
    pt_ms_put_manifest(f, "apq", "four", 4, d4);
    static const char *const tags[] = {"v2", "latest", "v10", "V1", "v1.0", "_x"};
    pt_ms_put_tags(f, "app", d1, tags, 6);
    static const char *const sub_tags[] = {"zz", "aa"};
    pt_ms_put_tags(f, "app/sub", d3, sub_tags, 2);
    pt_ms_put_tags(f, "apq", d4, sub_tags, 1);

    char got[PT_DIGEST_STR_MAX + 1];
    assert_int_equal(pt_metastore_get_tag(f->ms, "app", "latest", got), 0);
    assert_string_equal(got, d1);
    assert_int_equal(pt_metastore_get_tag(f->ms, "app", "zz", got), PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_tag(f->ms, "nope", "latest", got), PT_E_MANIFEST_UNKNOWN);

    /* byte-wise order, only this repository's tags */
    static const char *const all[] = {"V1", "_x", "latest", "v1.0", "v10", "v2"};
    char **names;
    size_t count;
    int more;
    assert_int_equal(pt_metastore_list_tags(f->ms, "app", "", 100, &names, &count, &more), 0);
    pt_ms_assert_names(names, count, all, 6);
    assert_int_equal(more, 0);
    pt_strv_free(names, count);

    /* pages of 4 then 2 */
    assert_int_equal(pt_metastore_list_tags(f->ms, "app", "", 4, &names, &count, &more), 0);
    pt_ms_assert_names(names, count, all, 4);
    assert_int_equal(more, 1);
    pt_strv_free(names, count);
    assert_int_equal(pt_metastore_list_tags(f->ms, "app", "v1.0", 4, &names, &count, &more), 0);
    pt_ms_assert_names(names, count, all + 4, 2);
    assert_int_equal(more, 0);
    pt_strv_free(names, count);
    /* exactly filling a page: no more */
    assert_int_equal(pt_metastore_list_tags(f->ms, "app", "latest", 3, &names, &count, &more), 0);
    pt_ms_assert_names(names, count, all + 3, 3);
    assert_int_equal(more, 0);
    pt_strv_free(names, count);
    /* last need not exist */
    assert_int_equal(pt_metastore_list_tags(f->ms, "app", "v1", 10, &names, &count, &more), 0);
    pt_ms_assert_names(names, count, all + 3, 3);
    pt_strv_free(names, count);
    /* after the end */
    assert_int_equal(pt_metastore_list_tags(f->ms, "app", "zzz", 10, &names, &count, &more), 0);
    assert_int_equal(count, 0);
    assert_null(names);
    assert_int_equal(more, 0);
    /* n == 0 reports whether anything follows */
    assert_int_equal(pt_metastore_list_tags(f->ms, "app", "", 0, &names, &count, &more), 0);
    assert_int_equal(count, 0);
    assert_int_equal(more, 1);

    static const char *const sub_sorted[] = {"aa", "zz"};
    assert_int_equal(pt_metastore_list_tags(f->ms, "app/sub", "", 10, &names, &count, &more), 0);
    pt_ms_assert_names(names, count, sub_sorted, 2);
    pt_strv_free(names, count);

    assert_int_equal(pt_metastore_list_tags(f->ms, "missing", "", 10, &names, &count, &more),
                     PT_E_NAME_UNKNOWN);
    assert_null(names);

    /* repositories */
    static const char *const repos[] = {"app", "app/sub", "apq"};
    assert_int_equal(pt_metastore_list_repos(f->ms, "", 2, &names, &count, &more), 0);
    pt_ms_assert_names(names, count, repos, 2);
    assert_int_equal(more, 1);
    pt_strv_free(names, count);
    assert_int_equal(pt_metastore_list_repos(f->ms, "app/sub", 2, &names, &count, &more), 0);
    pt_ms_assert_names(names, count, repos + 2, 1);
    assert_int_equal(more, 0);
    pt_strv_free(names, count);

    /* tag delete */
    struct pt_metastore_batch *b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_tag_get(b, "app", "v2", got), 0);
    assert_int_equal(pt_metastore_batch_tag_delete(b, "app", "v2"), 0);
    assert_int_equal(pt_metastore_batch_tag_get(b, "app", "v2", got), PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);
    assert_int_equal(pt_metastore_get_tag(f->ms, "app", "v2", got), PT_E_MANIFEST_UNKNOWN);
}

static void test_tags_delete_to(void **state)
{
    struct pt_ms_fixture *f = *state;
    char d1[PT_DIGEST_STR_MAX + 1], d2[PT_DIGEST_STR_MAX + 1];
    pt_ms_put_manifest(f, "r", "one", 1, d1);
    pt_ms_put_manifest(f, "r", "two", 2, d2);
    pt_ms_put_manifest(f, "r2", "one", 3, d1);
    static const char *const t1[] = {"a", "c", "e"};
    static const char *const t2[] = {"b", "d"};
    pt_ms_put_tags(f, "r", d1, t1, 3);
    pt_ms_put_tags(f, "r", d2, t2, 2);
    pt_ms_put_tags(f, "r2", d1, t1, 1);

    struct pt_metastore_batch *b = pt_ms_batch(f);
    /* staged changes are seen: "f" (new) goes, "c" (moved to d2) stays */
    assert_int_equal(pt_metastore_batch_tag_put(b, "r", "f", d1, 1), 0);
    assert_int_equal(pt_metastore_batch_tag_put(b, "r", "c", d2, 1), 0);
    assert_int_equal(pt_metastore_batch_tags_delete_to(b, "r", d1), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);

    static const char *const left[] = {"b", "c", "d"};
    char **names;
    size_t count;
    int more;
    assert_int_equal(pt_metastore_list_tags(f->ms, "r", "", 10, &names, &count, &more), 0);
    pt_ms_assert_names(names, count, left, 3);
    pt_strv_free(names, count);
    char got[PT_DIGEST_STR_MAX + 1];
    assert_int_equal(pt_metastore_get_tag(f->ms, "r2", "a", got), 0);
    assert_string_equal(got, d1);
}

struct seen {
    char ids[8][32];
    size_t n;
    struct pt_metastore *ms;
    int stop_at;
};

static int collect_cb(const char *id, const void *val, size_t len, void *arg)
{
    struct seen *s = arg;
    assert_true(s->n < 8);
    assert_int_equal(len, strlen(id) + 1);
    assert_memory_equal(val, id, len);
    strcpy(s->ids[s->n++], id);
    /* deleting while iterating is allowed */
    assert_int_equal(pt_metastore_upload_delete(s->ms, id), 0);
    return (int)s->n == s->stop_at ? 42 : 0;
}

static void test_uploads(void **state)
{
    struct pt_ms_fixture *f = *state;
    void *val;
    size_t len;
    assert_int_equal(pt_metastore_upload_get(f->ms, "u1", &val, &len), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_null(val);
    static const char *const ids[] = {"u3", "u1", "u2", "u10"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pt_metastore_upload_put(f->ms, ids[i], ids[i], strlen(ids[i]) + 1), 0);
    assert_int_equal(pt_metastore_upload_get(f->ms, "u2", &val, &len), 0);
    assert_int_equal(len, 3);
    assert_string_equal(val, "u2");
    free(val);
    /* overwrite, empty value */
    assert_int_equal(pt_metastore_upload_put(f->ms, "u2", "", 0), 0);
    assert_int_equal(pt_metastore_upload_get(f->ms, "u2", &val, &len), 0);
    assert_int_equal(len, 0);
    free(val);
    assert_int_equal(pt_metastore_upload_put(f->ms, "u2", "u2", 3), 0);

    /* limits */
    char long_id[PT_UPLOAD_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(pt_metastore_upload_put(f->ms, long_id, "x", 1), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(pt_metastore_upload_put(f->ms, "", "x", 1), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(pt_metastore_upload_get(f->ms, long_id, &val, &len), PT_E_BLOB_UPLOAD_UNKNOWN);
    char *big = calloc(1, PT_METASTORE_UPLOAD_VAL_MAX + 1);
    assert_non_null(big);
    assert_int_equal(pt_metastore_upload_put(f->ms, "big", big, PT_METASTORE_UPLOAD_VAL_MAX + 1),
                     PT_E_TOO_LARGE);
    free(big);

    /* replicated state is untouched by upload records */
    char before[65];
    assert_int_equal(pt_metastore_state_digest(f->ms, before), 0);

    /* foreach in id order, stop value returned */
    struct seen s = {.ms = f->ms, .stop_at = 2};
    assert_int_equal(pt_metastore_upload_foreach(f->ms, collect_cb, &s), 42);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ids[0], "u1");
    assert_string_equal(s.ids[1], "u10");
    s.n = 0;
    s.stop_at = -1;
    assert_int_equal(pt_metastore_upload_foreach(f->ms, collect_cb, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ids[0], "u2");
    assert_string_equal(s.ids[1], "u3");
    s.n = 0;
    assert_int_equal(pt_metastore_upload_foreach(f->ms, collect_cb, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(pt_metastore_upload_delete(f->ms, "never"), 0);

    char after[65];
    assert_int_equal(pt_metastore_state_digest(f->ms, after), 0);
    assert_string_equal(before, after);
}

static void test_reopen_persists(void **state)
{
    struct pt_ms_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1];
    pt_ms_put_manifest(f, "library/alpine", "persist me", 41, d);
    static const char *const tags[] = {"3.19"};
    pt_ms_put_tags(f, "library/alpine", d, tags, 1);
    assert_int_equal(pt_metastore_upload_put(f->ms, "sess", "state", 5), 0);
    assert_int_equal(pt_metastore_sync(f->ms), 0);
    char before[65];
    assert_int_equal(pt_metastore_state_digest(f->ms, before), 0);

    pt_ms_reopen(f);
    assert_int_equal(pt_metastore_applied_index(f->ms), 41);
    char got[PT_DIGEST_STR_MAX + 1], after[65];
    assert_int_equal(pt_metastore_get_tag(f->ms, "library/alpine", "3.19", got), 0);
    assert_string_equal(got, d);
    struct pt_manifest_rec rec;
    assert_int_equal(pt_metastore_get_manifest(f->ms, "library/alpine", d, &rec), 0);
    assert_memory_equal(rec.body, "persist me", rec.len);
    pt_manifest_rec_free(&rec);
    void *val;
    size_t len;
    assert_int_equal(pt_metastore_upload_get(f->ms, "sess", &val, &len), 0);
    assert_memory_equal(val, "state", 5);
    free(val);
    assert_int_equal(pt_metastore_state_digest(f->ms, after), 0);
    assert_string_equal(before, after);

    /* a second handle on the same directory is refused while the first is open */
    struct pt_metastore *second;
    int devnull = open("/dev/null", O_WRONLY);
    assert_true(devnull >= 0);
    int old_fd = pt_log_set_fd(devnull);
    assert_int_equal(pt_metastore_open(f->db, &second), PT_E_IO);
    pt_log_set_fd(old_fd);
    close(devnull);
}

/* 1 if the file at path holds the bytes needle[0..n), else 0. */
static int file_contains(const char *path, const char *needle, size_t n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char buf[1 << 16];
    size_t have = 0, got;
    int found = 0;
    while (!found && (got = fread(buf + have, 1, sizeof(buf) - have, fp)) > 0) {
        have += got;
        for (size_t i = 0; !found && i + n <= have; i++)
            found = memcmp(buf + i, needle, n) == 0;
        size_t keep = have < n ? have : n - 1; /* a match across two reads */
        memmove(buf, buf + have - keep, keep);
        have = keep;
    }
    fclose(fp);
    return found;
}

/* Table files carry a bloom filter (a point lookup then reads the one file holding its key,
 * not one per level): reopening replays the log into table files, and each names the
 * builtin bloom filter among its meta blocks. */
static void test_tables_have_bloom_filters(void **state)
{
    struct pt_ms_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1];
    pt_ms_put_manifest(f, "library/alpine", "filtered", 7, d);
    static const char *const tags[] = {"3.19", "3.20"};
    pt_ms_put_tags(f, "library/alpine", d, tags, 2);
    assert_int_equal(pt_metastore_sync(f->ms), 0);
    pt_ms_reopen(f);
    DIR *dir = opendir(f->db);
    assert_non_null(dir);
    static const char needle[] = "BuiltinBloomFilter";
    int tables = 0, filtered = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".sst") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", f->db, e->d_name);
        tables++;
        filtered += file_contains(path, needle, sizeof(needle) - 1);
    }
    closedir(dir);
    assert_true(tables > 0);
    assert_int_equal(filtered, tables);
    char got[PT_DIGEST_STR_MAX + 1];
    assert_int_equal(pt_metastore_get_tag(f->ms, "library/alpine", "3.20", got), 0);
    assert_string_equal(got, d);
    assert_int_equal(pt_metastore_get_tag(f->ms, "library/alpine", "3.21", got),
                     PT_E_MANIFEST_UNKNOWN);
}

static void test_writer_validation(void **state)
{
    struct pt_ms_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("x", d);
    char long_repo[PT_METASTORE_REPO_MAX + 2];
    memset(long_repo, 'r', sizeof(long_repo) - 1);
    long_repo[sizeof(long_repo) - 1] = '\0';
    char long_tag[PT_METASTORE_TAG_MAX + 2];
    memset(long_tag, 't', sizeof(long_tag) - 1);
    long_tag[sizeof(long_tag) - 1] = '\0';
    char long_type[PT_METASTORE_MEDIA_TYPE_MAX + 2];
    memset(long_type, 'm', sizeof(long_type) - 1);
    long_type[sizeof(long_type) - 1] = '\0';

    struct pt_metastore_batch *b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_repo_ensure(b, "", 0), PT_E_NAME_INVALID);
    assert_int_equal(pt_metastore_batch_repo_ensure(b, long_repo, 0), PT_E_NAME_INVALID);
    long_repo[PT_METASTORE_REPO_MAX] = '\0';
    assert_int_equal(pt_metastore_batch_repo_ensure(b, long_repo, 0), 0);
    assert_int_equal(pt_metastore_batch_manifest_put(b, "r", "sha256:00", "t", "", "", "x", 1),
                     PT_E_DIGEST_INVALID);
    assert_int_equal(pt_metastore_batch_manifest_put(b, "r", d, "t", "", "sha256:1", "x", 1),
                     PT_E_DIGEST_INVALID);
    assert_int_equal(pt_metastore_batch_manifest_put(b, "r", d, "", "", "", "x", 1),
                     PT_E_MANIFEST_INVALID);
    assert_int_equal(pt_metastore_batch_manifest_put(b, "r", d, long_type, "", "", "x", 1),
                     PT_E_MANIFEST_INVALID);
    assert_int_equal(pt_metastore_batch_manifest_put(b, "r", d, "t", long_type, "", "x", 1),
                     PT_E_MANIFEST_INVALID);
    assert_int_equal(pt_metastore_batch_manifest_put(b, "r", d, "t", "", "", "", 0),
                     PT_E_MANIFEST_INVALID);
    assert_int_equal(
        pt_metastore_batch_manifest_put(b, "r", d, "t", "", "", "x", PT_METASTORE_MANIFEST_MAX + 1),
        PT_E_MANIFEST_TOO_LARGE);
    assert_int_equal(pt_metastore_batch_tag_put(b, "r", "", d, 0), PT_E_TAG_INVALID);
    assert_int_equal(pt_metastore_batch_tag_put(b, "r", long_tag, d, 0), PT_E_TAG_INVALID);
    assert_int_equal(pt_metastore_batch_tag_put(b, "r", "t", "sha512:00", 0), PT_E_DIGEST_INVALID);
    assert_int_equal(pt_metastore_batch_tag_put(b, "", "t", d, 0), PT_E_NAME_INVALID);
    assert_int_equal(pt_metastore_batch_blob_link(b, "r", "SHA256:00", 1), PT_E_DIGEST_INVALID);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);

    /* only the valid repo_ensure was staged */
    char **names;
    size_t count;
    int more;
    assert_int_equal(pt_metastore_list_repos(f->ms, "", 10, &names, &count, &more), 0);
    assert_int_equal(count, 1);
    assert_string_equal(names[0], long_repo);
    pt_strv_free(names, count);
}

static void test_state_digest(void **state)
{
    struct pt_ms_fixture *f = *state;
    char empty[65], a[65], b2[65], c[65];
    assert_int_equal(pt_metastore_state_digest(f->ms, empty), 0);
    assert_int_equal(strlen(empty), 64);

    char d1[PT_DIGEST_STR_MAX + 1], d2[PT_DIGEST_STR_MAX + 1];
    pt_ms_put_manifest(f, "r", "one", 1, d1);
    pt_ms_put_manifest(f, "r", "two", 2, d2);
    assert_int_equal(pt_metastore_state_digest(f->ms, a), 0);
    assert_string_not_equal(a, empty);

    /* the applied index (meta) is not part of the digest */
    struct pt_metastore_batch *b = pt_ms_batch(f);
    assert_int_equal(pt_metastore_batch_commit(b, 100), 0);
    assert_int_equal(pt_metastore_state_digest(f->ms, b2), 0);
    assert_string_equal(a, b2);

    /* a change and its undo */
    static const char *const tags[] = {"t"};
    pt_ms_put_tags(f, "r", d1, tags, 1);
    assert_int_equal(pt_metastore_state_digest(f->ms, c), 0);
    assert_string_not_equal(a, c);
    assert_int_equal(pt_metastore_batch_tag_delete(b, "r", "t"), 0);
    assert_int_equal(pt_metastore_batch_commit(b, 0), 0);
    pt_metastore_batch_free(b);
    assert_int_equal(pt_metastore_state_digest(f->ms, c), 0);
    assert_string_equal(a, c);
}

struct reader {
    struct pt_metastore *ms;
    int done;
    int reads;
};

/* Reads while the main thread commits: every tag seen names a stored manifest, and the tag
 * list is never partially updated (each commit adds one tag together with its manifest). */
static void *reader_main(void *arg)
{
    struct reader *r = arg;
    while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
        char **names;
        size_t count;
        int more;
        int rv =
            pt_metastore_list_tags(r->ms, "r", "", PT_METASTORE_LIST_MAX, &names, &count, &more);
        if (rv == PT_E_NAME_UNKNOWN)
            continue;
        if (rv != 0)
            return (void *)1;
        for (size_t i = 0; i < count; i++) {
            char d[PT_DIGEST_STR_MAX + 1];
            struct pt_manifest_rec rec;
            if (pt_metastore_get_tag(r->ms, "r", names[i], d) != 0 ||
                pt_metastore_get_manifest(r->ms, "r", d, &rec) != 0) {
                pt_strv_free(names, count);
                return (void *)1;
            }
            pt_manifest_rec_free(&rec);
        }
        pt_strv_free(names, count);
        r->reads++;
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    struct pt_ms_fixture *f = *state;
    enum { WRITES = 200, READERS = 3 };
    struct reader r[READERS];
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (struct reader){.ms = f->ms};
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
    }
    struct pt_metastore_batch *b = pt_ms_batch(f);
    for (int i = 0; i < WRITES; i++) {
        char body[32], tag[16], d[PT_DIGEST_STR_MAX + 1];
        snprintf(body, sizeof(body), "manifest %d", i);
        snprintf(tag, sizeof(tag), "t%03d", i);
        pt_text_digest(body, d);
        assert_int_equal(pt_metastore_batch_repo_ensure(b, "r", 1), 0);
        assert_int_equal(
            pt_metastore_batch_manifest_put(b, "r", d, "t/x", "", "", body, strlen(body)), 0);
        assert_int_equal(pt_metastore_batch_tag_put(b, "r", tag, d, 1), 0);
        assert_int_equal(pt_metastore_batch_commit(b, (uint64_t)i + 1), 0);
    }
    pt_metastore_batch_free(b);
    for (int i = 0; i < READERS; i++) {
        __atomic_store_n(&r[i].done, 1, __ATOMIC_RELEASE);
        void *ret;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_null(ret);
    }
    assert_int_equal(pt_metastore_applied_index(f->ms), WRITES);
    char **names;
    size_t count;
    int more;
    assert_int_equal(pt_metastore_list_tags(f->ms, "r", "", 1000, &names, &count, &more), 0);
    assert_int_equal(count, WRITES);
    pt_strv_free(names, count);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_empty, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_manifest_crud, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_batch_isolation, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_tags_and_pagination, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_tags_delete_to, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_uploads, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_persists, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_tables_have_bloom_filters, pt_ms_setup,
                                        pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_writer_validation, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_state_digest, pt_ms_setup, pt_ms_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_readers, pt_ms_setup, pt_ms_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
