/*
 * metastore_throttle.c - the request throttling settings (replicated records in the default
 * column family; the counters themselves are local to each region, node/http/throttle.c).
 *
 *   key                              value
 *   -------------------------------  -----------------------------------------------------
 *   "policy/throttle/" <subject>     v1 u8:tier u32:reads_per_minute u32:writes_per_minute
 *                                    u64:read_bytes_per_second u64:write_bytes_per_second
 *                                    (0 = no limit on that one; tier: enum pt_throttle_tier,
 *                                    which preset the numbers came from, for display)
 *
 * Subjects (pt_metastore_throttle_subject_valid): "default" (every identity without its own
 * record), "anonymous" (requests without credentials, counted per client address),
 * "user:" <name> and "token:" <id> (names and ids of oci/access.h).
 *
 * A committed batch that stages one moves pt_metastore_auth_generation (the generation of
 * the settings a region caches, shared with access control), so readers reload.
 * Bounds: at most PT_METASTORE_THROTTLES_MAX records (a replacement always works).
 */
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "metastore_int.h"

#define T_PREFIX  "policy/throttle/"
#define T_KEY_MAX (sizeof(T_PREFIX) + PT_METASTORE_THROTTLE_SUBJECT_MAX)
#define T_VAL_LEN (1 + 1 + 4 + 4 + 8 + 8)

bool pt_metastore_throttle_subject_valid(const char *s)
{
    size_t n = strnlen(s, PT_METASTORE_THROTTLE_SUBJECT_MAX + 1);
    if (n == 0 || n > PT_METASTORE_THROTTLE_SUBJECT_MAX)
        return false;
    if (strcmp(s, "default") == 0 || strcmp(s, "anonymous") == 0)
        return true;
    if (n > 5 && memcmp(s, "user:", 5) == 0)
        return pt_access_name_valid(s + 5, n - 5);
    if (n > 6 && memcmp(s, "token:", 6) == 0)
        return pt_access_id_valid(s + 6, n - 6);
    return false;
}

static size_t t_key(char *key, const char *subject)
{
    size_t p = strlen(T_PREFIX), n = strlen(subject);
    memcpy(key, T_PREFIX, p);
    memcpy(key + p, subject, n);
    return p + n;
}

static int t_decode(const char *k, size_t klen, const char *v, size_t vlen,
                    struct pt_throttle_rec *r)
{
    size_t p = strlen(T_PREFIX);
    int rv = ms_key_text(k + p, klen - p, r->subject, PT_METASTORE_THROTTLE_SUBJECT_MAX);
    if (rv != 0)
        return rv;
    const unsigned char *u = (const unsigned char *)v;
    if (vlen != T_VAL_LEN || u[0] != REC_VERSION || u[1] >= PT_THROTTLE_TIER_COUNT ||
        !pt_metastore_throttle_subject_valid(r->subject))
        return PT_E_CORRUPT;
    r->tier = u[1];
    r->reads_per_minute = pt_get_le32(u + 2);
    r->writes_per_minute = pt_get_le32(u + 6);
    r->read_bytes_per_second = pt_get_le64(u + 10);
    r->write_bytes_per_second = pt_get_le64(u + 18);
    return 0;
}

/* Walks the records through wb (may be NULL); cb returns nonzero to stop (negative: error). */
static int t_walk(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb,
                  int (*cb)(void *arg, const struct pt_throttle_rec *r), void *arg)
{
    size_t plen = strlen(T_PREFIX);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ms->db, ro, ms->cf[CF_DEFAULT]);
    if (wb != NULL)
        it = rocksdb_writebatch_wi_create_iterator_with_base_cf(wb, it, ms->cf[CF_DEFAULT]);
    int rv = 0;
    for (rocksdb_iter_seek(it, T_PREFIX, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, T_PREFIX, plen) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vlen);
        struct pt_throttle_rec r;
        if ((rv = t_decode(k, klen, v, vlen, &r)) != 0 || (rv = cb(arg, &r)) != 0)
            break;
    }
    int irv = ms_iter_free(it, ro);
    if (rv < 0)
        return rv;
    return irv != 0 ? irv : 0;
}

struct t_list {
    struct pt_throttle_rec *v;
    size_t n, cap;
    int err;
};

static int t_list_cb(void *arg, const struct pt_throttle_rec *r)
{
    struct t_list *l = arg;
    if (l->n == l->cap && (l->err = pt_array_grow(&l->v, &l->cap, sizeof(*l->v), 8,
                                                  PT_METASTORE_THROTTLES_MAX + 1)) != 0)
        return -1;
    l->v[l->n++] = *r;
    return 0;
}

int pt_metastore_throttle_list(struct pt_metastore *ms, struct pt_throttle_rec **out, size_t *n)
{
    struct t_list l = {0};
    int rv = t_walk(ms, NULL, t_list_cb, &l);
    if (rv != 0 || l.err != 0) {
        free(l.v);
        *out = NULL;
        *n = 0;
        return l.err != 0 ? l.err : rv;
    }
    *out = l.v;
    *n = l.n;
    return 0;
}

int pt_metastore_throttle_get(struct pt_metastore *ms, const char *subject,
                              struct pt_throttle_rec *out)
{
    if (!pt_metastore_throttle_subject_valid(subject))
        return PT_E_NOT_FOUND;
    char key[T_KEY_MAX], *v;
    size_t vlen, klen = t_key(key, subject);
    int rv = ms_get_raw(ms, NULL, CF_DEFAULT, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv < 0 ? rv : PT_E_NOT_FOUND;
    rv = t_decode(key, klen, v, vlen, out);
    rocksdb_free(v);
    return rv;
}

static int t_count_cb(void *arg, const struct pt_throttle_rec *r)
{
    (void)r;
    ++*(size_t *)arg;
    return 0;
}

int pt_metastore_batch_throttle_put(struct pt_metastore_batch *b, const struct pt_throttle_rec *r)
{
    if (!pt_metastore_throttle_subject_valid(r->subject) || r->tier >= PT_THROTTLE_TIER_COUNT)
        return PT_E_CONFIG;
    char key[T_KEY_MAX], *v;
    size_t vlen, klen = t_key(key, r->subject);
    int rv = ms_get_raw(b->ms, b->wb, CF_DEFAULT, key, klen, &v, &vlen);
    if (rv < 0)
        return rv;
    if (rv == 1) {
        rocksdb_free(v);
    } else {
        size_t n = 0;
        if ((rv = t_walk(b->ms, b->wb, t_count_cb, &n)) != 0)
            return rv;
        if (n >= PT_METASTORE_THROTTLES_MAX)
            return PT_E_TOO_LARGE;
    }
    unsigned char val[T_VAL_LEN];
    val[0] = REC_VERSION;
    val[1] = (unsigned char)r->tier;
    pt_put_le32(val + 2, r->reads_per_minute);
    pt_put_le32(val + 6, r->writes_per_minute);
    pt_put_le64(val + 10, r->read_bytes_per_second);
    pt_put_le64(val + 18, r->write_bytes_per_second);
    struct pt_buf e = {0};
    pt_buf_append(&e, val, sizeof(val));
    b->auth = true;
    return ms_stage_put(b, CF_DEFAULT, key, klen, &e);
}

int pt_metastore_batch_throttle_delete(struct pt_metastore_batch *b, const char *subject)
{
    if (!pt_metastore_throttle_subject_valid(subject))
        return PT_E_CONFIG;
    char key[T_KEY_MAX];
    b->auth = true;
    ms_stage_delete(b, CF_DEFAULT, key, t_key(key, subject));
    return 0;
}
