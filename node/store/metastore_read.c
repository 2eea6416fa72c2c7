/*
 * metastore_read.c - reads of replicated records: repositories, manifests, tags, blob links,
 * referrers, blob locations and regions, and the paginated listings of repositories, tags and
 * referrers.
 *
 * Each record kind has one lookup (ms_manifest_get, ms_tag_get, ...) that reads through an
 * optional write batch: the public readers pass none and see committed state, the FSM's batch
 * (metastore_batch.c) passes its own and sees its staged writes over it. A malformed key
 * component cannot name any record, so it reports the same miss as an absent record.
 *
 * Listings seek to "<prefix><last>" and bound the iterator with iterate_upper_bound set to the
 * prefix whose final "\0" is replaced by "\1" (every key of the prefix sorts below it).
 * Prefixes have variable length, so no prefix extractor is configured; the upper bound alone
 * keeps scans inside the prefix. A listing returns at most PT_METASTORE_LIST_MAX entries and
 * says whether more follow, so a client pages through with "last".
 *
 * Threads: any thread; every iterator and its read options are per call.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "metastore_int.h"

/* ---- point lookups ------------------------------------------------------------------- */

int ms_manifest_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                    const char *digest, struct pt_manifest_rec *out, bool want_body)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX) || !ms_digest_ok(digest))
        return PT_E_MANIFEST_UNKNOWN;
    char key[KEY_MAX];
    size_t klen = ms_key_join(key, repo, digest, NULL);
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, wb, CF_MANIFESTS, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv == 0 ? PT_E_MANIFEST_UNKNOWN : rv;
    rv = 0;
    if (out != NULL) {
        rv = ms_dec_manifest(v, vlen, out, want_body);
        if (rv != 0)
            pt_manifest_rec_free(out);
    }
    rocksdb_free(v);
    return rv;
}

int pt_metastore_get_manifest(struct pt_metastore *ms, const char *repo, const char *digest,
                              struct pt_manifest_rec *out)
{
    return ms_manifest_get(ms, NULL, repo, digest, out, true);
}

void pt_manifest_rec_free(struct pt_manifest_rec *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
}

int ms_tag_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
               const char *tag, char digest_out[PT_METASTORE_DIGEST_MAX + 1])
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX) || !ms_name_ok(tag, PT_METASTORE_TAG_MAX))
        return PT_E_MANIFEST_UNKNOWN;
    char key[KEY_MAX];
    size_t klen = ms_key_join(key, repo, tag, NULL);
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, wb, CF_TAGS, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv == 0 ? PT_E_MANIFEST_UNKNOWN : rv;
    rv = ms_dec_tag(v, vlen, digest_out, NULL);
    rocksdb_free(v);
    return rv;
}

int pt_metastore_get_tag(struct pt_metastore *ms, const char *repo, const char *tag,
                         char digest_out[PT_METASTORE_DIGEST_MAX + 1])
{
    return ms_tag_get(ms, NULL, repo, tag, digest_out);
}

int ms_repo_exists(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return 0;
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, wb, CF_REPOS, repo, strlen(repo), &v, &vlen);
    if (rv == 1)
        rocksdb_free(v);
    return rv;
}

int pt_metastore_repo_exists(struct pt_metastore *ms, const char *repo)
{
    return ms_repo_exists(ms, NULL, repo);
}

/* ---- listings ------------------------------------------------------------------------ */

/* Lists the key suffixes after prefix (plen bytes, 0 or ending in "\0") that sort after
 * prefix+last; see pt_metastore_list_tags for the output contract. */
static int list_names(struct pt_metastore *ms, enum cf cf, const char *prefix, size_t plen,
                      const char *last, size_t n, char ***names, size_t *count, int *more)
{
    *names = NULL;
    *count = 0;
    *more = 0;
    if (n > PT_METASTORE_LIST_MAX)
        n = PT_METASTORE_LIST_MAX;
    if (last == NULL)
        last = "";
    size_t llen = strlen(last);
    char *start = malloc(plen + llen + 1);
    if (start == NULL)
        return PT_E_NOMEM;
    memcpy(start, prefix, plen);
    memcpy(start + plen, last, llen);
    char upper[KEY_MAX];
    if (plen > 0) {
        memcpy(upper, prefix, plen);
        upper[plen - 1] = '\1';
    }
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, cf, upper, plen, NULL, &ro);
    rocksdb_iter_seek(it, start, plen + llen);
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int rv = 0;
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, prefix, plen) != 0)
            break;
        if (klen == plen + llen && memcmp(k, start, klen) == 0)
            continue; /* last itself */
        if (cnt == n) {
            *more = 1;
            break;
        }
        if (cnt == cap && (rv = pt_array_grow(&v, &cap, sizeof(*v), 16, n)) != 0)
            break;
        if (memchr(k + plen, '\0', klen - plen) != NULL) {
            rv = PT_E_CORRUPT;
            break;
        }
        v[cnt] = ms_copy_z(k + plen, klen - plen);
        if (v[cnt] == NULL) {
            rv = PT_E_NOMEM;
            break;
        }
        cnt++;
    }
    int irv = ms_iter_free(it, ro);
    free(start);
    if (rv == 0)
        rv = irv;
    if (rv != 0) {
        pt_strv_free(v, cnt);
        *more = 0;
        return rv;
    }
    *names = v;
    *count = cnt;
    return 0;
}

int pt_metastore_list_tags(struct pt_metastore *ms, const char *repo, const char *last, size_t n,
                           char ***names, size_t *count, int *more)
{
    *names = NULL;
    *count = 0;
    *more = 0;
    int rv = ms_repo_exists(ms, NULL, repo);
    if (rv <= 0)
        return rv == 0 ? PT_E_NAME_UNKNOWN : rv;
    char prefix[PT_METASTORE_REPO_MAX + 1];
    size_t plen = strlen(repo) + 1;
    memcpy(prefix, repo, plen);
    return list_names(ms, CF_TAGS, prefix, plen, last, n, names, count, more);
}

int pt_metastore_list_repos(struct pt_metastore *ms, const char *last, size_t n, char ***names,
                            size_t *count, int *more)
{
    return list_names(ms, CF_REPOS, "", 0, last, n, names, count, more);
}

void pt_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- blobs --------------------------------------------------------------------------- */

int ms_blob_linked(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                   const char *digest, uint64_t *size)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX) || !ms_digest_ok(digest))
        return PT_E_BLOB_UNKNOWN;
    char key[KEY_MAX];
    size_t klen = ms_key_join(key, repo, digest, NULL);
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, wb, CF_REPO_BLOBS, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv == 0 ? PT_E_BLOB_UNKNOWN : rv;
    rv = ms_dec_size(v, vlen, size);
    rocksdb_free(v);
    return rv;
}

int pt_metastore_blob_linked(struct pt_metastore *ms, const char *repo, const char *digest,
                             uint64_t *size)
{
    return ms_blob_linked(ms, NULL, repo, digest, size);
}

int ms_location_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *digest,
                    struct location *loc)
{
    if (!ms_digest_ok(digest))
        return 0;
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, wb, CF_BLOB_LOCATIONS, digest, strlen(digest), &v, &vlen);
    if (rv <= 0)
        return rv;
    rv = ms_dec_location(v, vlen, loc);
    rocksdb_free(v);
    return rv == 0 ? 1 : rv;
}

int pt_metastore_blob_location(struct pt_metastore *ms, const char *digest, uint64_t *size)
{
    struct location *loc = malloc(sizeof(*loc));
    if (loc == NULL)
        return PT_E_NOMEM;
    int rv = ms_location_get(ms, NULL, digest, loc);
    if (rv == 1 && size != NULL)
        *size = loc->size;
    free(loc);
    return rv == 1 ? 0 : rv == 0 ? PT_E_BLOB_UNKNOWN : rv;
}

int pt_metastore_blob_regions(struct pt_metastore *ms, const char *digest, uint64_t *size,
                              char ***regions, size_t *count)
{
    *regions = NULL;
    *count = 0;
    struct location *loc = malloc(sizeof(*loc));
    if (loc == NULL)
        return PT_E_NOMEM;
    int rv = ms_location_get(ms, NULL, digest, loc);
    if (rv <= 0) {
        free(loc);
        return rv == 0 ? PT_E_BLOB_UNKNOWN : rv;
    }
    char **v = NULL;
    if (loc->n > 0) {
        v = calloc(loc->n, sizeof(*v));
        if (v == NULL) {
            free(loc);
            return PT_E_NOMEM;
        }
    }
    for (size_t i = 0; i < loc->n; i++) {
        v[i] = strdup(loc->regions[i]);
        if (v[i] == NULL) {
            pt_strv_free(v, i);
            free(loc);
            return PT_E_NOMEM;
        }
    }
    if (size != NULL)
        *size = loc->size;
    *regions = v;
    *count = loc->n;
    free(loc);
    return 0;
}

/* ---- referrers ----------------------------------------------------------------------- */

/* The referrers of repo's subject after `after` (NULL or "": from the first) through an
 * iterator, examining at most scan records and keeping at most max that pass the filter;
 * next gets the digest of the last record examined when more may follow, else "". */
static int referrers_walk(struct pt_metastore *ms, const char *repo, const char *subject,
                          const char *artifact_type_filter, const char *after, size_t max,
                          size_t scan, struct pt_referrer **out, size_t *count,
                          char next[PT_METASTORE_DIGEST_MAX + 1])
{
    *out = NULL;
    *count = 0;
    next[0] = '\0';
    int rv = ms_repo_exists(ms, NULL, repo);
    if (rv <= 0)
        return rv == 0 ? PT_E_NAME_UNKNOWN : rv;
    rv = 0;
    size_t alen = after != NULL ? strlen(after) : 0;
    if (!ms_digest_ok(subject) || alen > PT_METASTORE_DIGEST_MAX)
        return 0;
    if (max > PT_METASTORE_LIST_MAX)
        max = PT_METASTORE_LIST_MAX;
    char prefix[KEY_MAX], upper[KEY_MAX], start[KEY_MAX + 1];
    size_t plen = ms_key_join(prefix, repo, subject, "");
    memcpy(upper, prefix, plen);
    upper[plen - 1] = '\1';
    memcpy(start, prefix, plen);
    memcpy(start + plen, after != NULL ? after : "", alen);

    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_REFERRERS, upper, plen, NULL, &ro);
    struct pt_referrer *v = NULL;
    size_t cnt = 0, cap = 0, seen = 0;
    rocksdb_iter_seek(it, start, plen + alen);
    if (alen > 0 && rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen == plen + alen && memcmp(k, start, klen) == 0)
            rocksdb_iter_next(it);
    }
    for (; rocksdb_iter_valid(it) && cnt < max && seen < scan; rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *val = rocksdb_iter_value(it, &vlen);
        if (klen < plen || memcmp(k, prefix, plen) != 0)
            break;
        if (cnt == cap && (rv = pt_array_grow(&v, &cap, sizeof(*v), 8, max)) != 0)
            break;
        struct pt_referrer *r = &v[cnt];
        size_t dlen = klen - plen;
        if (dlen > PT_METASTORE_DIGEST_MAX || memchr(k + plen, '\0', dlen) != NULL) {
            rv = PT_E_CORRUPT;
            break;
        }
        memcpy(r->digest, k + plen, dlen);
        r->digest[dlen] = '\0';
        seen++;
        memcpy(next, r->digest, dlen + 1);
        rv = ms_dec_referrer(val, vlen, r);
        if (rv != 0) {
            free(r->annotations);
            break;
        }
        if (artifact_type_filter != NULL && strcmp(r->artifact_type, artifact_type_filter) != 0) {
            free(r->annotations);
            continue;
        }
        cnt++;
    }
    /* more may follow only when the walk stopped at a limit before the subject's end */
    bool more = rv == 0 && rocksdb_iter_valid(it) && (cnt >= max || seen >= scan);
    if (more) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        more = klen >= plen && memcmp(k, prefix, plen) == 0;
    }
    if (!more || seen == 0)
        next[0] = '\0';
    int irv = ms_iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    if (rv != 0) {
        pt_referrers_free(v, cnt);
        next[0] = '\0';
        return rv;
    }
    if (cnt == 0) {
        free(v);
        v = NULL;
    }
    *out = v;
    *count = cnt;
    return 0;
}

int pt_metastore_list_referrers(struct pt_metastore *ms, const char *repo, const char *subject,
                                const char *artifact_type_filter, size_t max,
                                struct pt_referrer **out, size_t *count)
{
    char next[PT_METASTORE_DIGEST_MAX + 1];
    return referrers_walk(ms, repo, subject, artifact_type_filter, NULL, max, SIZE_MAX, out, count,
                          next);
}

int pt_metastore_referrers_page(struct pt_metastore *ms, const char *repo, const char *subject,
                                const char *artifact_type_filter, const char *after, size_t max,
                                struct pt_referrer **out, size_t *count,
                                char next[PT_METASTORE_DIGEST_MAX + 1])
{
    return referrers_walk(ms, repo, subject, artifact_type_filter, after, max,
                          PT_METASTORE_LIST_MAX, out, count, next);
}

void pt_referrers_free(struct pt_referrer *r, size_t n)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(r[i].annotations);
    free(r);
}

/* ---- blobs this region lacks --------------------------------------------------------- */

int pt_metastore_missing_foreach(struct pt_metastore *ms, const char *region,
                                 int (*cb)(const char *digest, uint64_t size,
                                           const char *const *holders, size_t n, void *arg),
                                 void *arg)
{
    struct location *loc = malloc(sizeof(*loc));
    if (loc == NULL)
        return PT_E_NOMEM;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_BLOB_LOCATIONS, NULL, 0, NULL, &ro);
    int rv = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        char digest[PT_DIGEST_STR_MAX + 1];
        if ((rv = ms_key_text(k, klen, digest, PT_DIGEST_STR_MAX)) != 0 ||
            (rv = ms_dec_location(v, vlen, loc)) != 0)
            break;
        int held = 0;
        const char *holders[PT_METASTORE_REGIONS_MAX];
        for (size_t i = 0; i < loc->n; i++) {
            holders[i] = loc->regions[i];
            held |= strcmp(loc->regions[i], region) == 0;
        }
        if (!held && (rv = cb(digest, loc->size, holders, loc->n, arg)) != 0)
            break;
    }
    int irv = ms_iter_free(it, ro);
    free(loc);
    return rv != 0 ? rv : irv;
}

/* ---- regions of the cluster ---------------------------------------------------------- */

int pt_metastore_list_regions(struct pt_metastore *ms, struct pt_region_rec **out, size_t *count)
{
    char upper[MS_REGION_PREFIX_LEN];
    memcpy(upper, MS_REGION_PREFIX, MS_REGION_PREFIX_LEN);
    upper[MS_REGION_PREFIX_LEN - 1]++; /* "region0": just past every "region/..." key */
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_DEFAULT, upper, MS_REGION_PREFIX_LEN, NULL, &ro);
    size_t n = 0, cap = 0;
    struct pt_region_rec *v = NULL;
    int rv = 0;
    for (rocksdb_iter_seek(it, MS_REGION_PREFIX, MS_REGION_PREFIX_LEN);
         rocksdb_iter_valid(it) && rv == 0; rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *val = rocksdb_iter_value(it, &vlen);
        if (n == cap && (rv = pt_array_grow(&v, &cap, sizeof(*v), 8, 1024)) != 0)
            break;
        rv = ms_dec_region(k, klen, val, vlen, &v[n]);
        n++;
    }
    int irv = ms_iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    if (rv != 0) {
        free(v);
        return rv;
    }
    *out = v;
    *count = n;
    return 0;
}

int pt_metastore_foreach_blob_link(struct pt_metastore *ms,
                                   int (*cb)(const char *digest, uint64_t size, void *arg),
                                   void *arg)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_REPO_BLOBS, NULL, 0, NULL, &ro);
    int rv = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && rv == 0; rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        const char *sep = memchr(k, '\0', klen);
        char digest[PT_METASTORE_DIGEST_MAX + 1];
        size_t dlen = sep != NULL ? klen - (size_t)(sep + 1 - k) : 0;
        uint64_t size;
        if (sep == NULL || dlen == 0 || dlen > PT_METASTORE_DIGEST_MAX ||
            ms_dec_size(v, vlen, &size) != 0) {
            rv = PT_E_CORRUPT;
            break;
        }
        memcpy(digest, sep + 1, dlen);
        digest[dlen] = '\0';
        rv = cb(digest, size, arg);
    }
    int irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv;
}
