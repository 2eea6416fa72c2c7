/*
 * metastore.c - the metadata store's database: opening and closing the RocksDB database with
 * its column families, the options every call shares, RocksDB errors, point lookups and
 * iterators, the applied index and WAL sync. See metastore.h for the contract and
 * metastore_int.h for how the other pieces of the store divide the rest.
 *
 * One database, one column family per record kind (the key schema is drawn at the top of
 * metastore_codec.c). Every family uses the same options; prefixes have variable length, so
 * no prefix extractor is configured and scans are kept inside a prefix by
 * iterate_upper_bound alone (metastore_read.c).
 *
 * Threads: RocksDB handles are thread-safe; struct pt_metastore is immutable after open except
 * for three atomics: `applied` (written by batch commits and restores), `halted` (set once,
 * never cleared) and `fail_next` (the test seam). Iterators, read options carrying an upper
 * bound and snapshots are per call.
 *
 * Halting: a replicated write that fails may leave RocksDB unsure of what reached the WAL, and
 * the FSM may meet a state it cannot apply the next command to. Either way this store must not
 * change replicated state any further in this process: the first such error is kept in
 * `halted` and every later commit and restore is refused with it, so nothing can ever be
 * applied on top of a state that lacks an entry (metastore_batch.c). Reopening clears it.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "diskspace.h"
#include "err.h"
#include "log.h"
#include "metastore_int.h"

/* One above rocksdb::InfoLogLevel::HEADER_LEVEL (5): nothing reaches the LOG file. */
#define MS_INFO_LOG_OFF 6
/* Bytes of memtables of all families together (rocksdb db_write_buffer_size). */
#define MS_MEMTABLE_BUDGET (64u << 20)
/* Bits per key of the bloom filter of every table file (about 1 % false positives). */
#define MS_BLOOM_BITS_PER_KEY 10

const char *const ms_cf_names[CF_COUNT] = {
    "default",   "repos",          "manifests", "tags",    "repo_blobs",
    "referrers", "blob_locations", "meta",      "uploads", "local_blobs",
};

/* ---- errors and raw access ----------------------------------------------------------- */

int ms_rdb_err(char *err)
{
    int rv = strncmp(err, "Corruption", 10) == 0 ? PT_E_CORRUPT : PT_E_IO;
    pt_log(PT_LOG_ERROR, "rocksdb error", "{s:s}", "error", err);
    free(err);
    return rv;
}

int ms_get_raw(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, enum cf cf, const char *key,
               size_t klen, char **val, size_t *vlen)
{
    char *err = NULL;
    char *v;
    if (wb != NULL)
        v = rocksdb_writebatch_wi_get_from_batch_and_db_cf(wb, ms->db, ms->ro, ms->cf[cf], key,
                                                           klen, vlen, &err);
    else
        v = rocksdb_get_cf(ms->db, ms->ro, ms->cf[cf], key, klen, vlen, &err);
    if (err != NULL)
        return ms_rdb_err(err);
    if (v == NULL)
        return 0;
    *val = v;
    return 1;
}

rocksdb_iterator_t *ms_iter_new(struct pt_metastore *ms, enum cf cf, const char *upper, size_t ulen,
                                const rocksdb_snapshot_t *snap, rocksdb_readoptions_t **ro_out)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    if (ulen > 0)
        rocksdb_readoptions_set_iterate_upper_bound(ro, upper, ulen);
    if (snap != NULL)
        rocksdb_readoptions_set_snapshot(ro, snap);
    *ro_out = ro;
    return rocksdb_create_iterator_cf(ms->db, ro, ms->cf[cf]);
}

int ms_iter_free(rocksdb_iterator_t *it, rocksdb_readoptions_t *ro)
{
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return err != NULL ? ms_rdb_err(err) : 0;
}

/* ---- applied index ------------------------------------------------------------------- */

int ms_applied_at(struct pt_metastore *ms, const rocksdb_readoptions_t *ro, uint64_t *index)
{
    char *err = NULL;
    size_t vlen;
    char *v = rocksdb_get_cf(ms->db, ro, ms->cf[CF_META], MS_APPLIED_KEY, MS_APPLIED_KEY_LEN, &vlen,
                             &err);
    if (err != NULL)
        return ms_rdb_err(err);
    *index = 0;
    if (v == NULL)
        return 0;
    int rv = ms_dec_size(v, vlen, index);
    rocksdb_free(v);
    return rv;
}

uint64_t pt_metastore_applied_index(struct pt_metastore *ms)
{
    return atomic_load(&ms->applied);
}

uint64_t pt_metastore_auth_generation(struct pt_metastore *ms)
{
    return atomic_load(&ms->auth_gen);
}

/* ---- open / close -------------------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return PT_E_CONFIG;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            return PT_E_IO;
        *p = '/';
    }
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return PT_E_IO;
    return 0;
}

/* Removes the OPTIONS-*.dbtmp files a previous open left: with the info log off, RocksDB
 * cannot write its OPTIONS file (it fails to serialize the log level) and leaves the
 * temporary behind; the OPTIONS file is for tools only, the database never reads it. */
static void remove_options_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "OPTIONS-", 8) == 0 && n > 6 &&
            strcmp(e->d_name + n - 6, ".dbtmp") == 0)
            (void)unlinkat(dfd, e->d_name, 0);
    }
    closedir(d);
}

bool pt_metastore_read_only(struct pt_metastore *ms)
{
    return ms->read_only;
}

static int load_applied(struct pt_metastore *ms)
{
    uint64_t index = 0;
    int rv = ms_applied_at(ms, ms->ro, &index);
    atomic_store(&ms->applied, rv == 0 ? index : 0);
    atomic_store(&ms->auth_gen, 1);
    return rv;
}

int pt_metastore_open(const char *dir, struct pt_metastore **out)
{
    int rv = mkdir_p(dir);
    if (rv != 0)
        return rv;
    struct pt_metastore *ms = calloc(1, sizeof(*ms));
    if (ms == NULL)
        return PT_E_NOMEM;

    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(opts, 1);
    rocksdb_options_set_create_missing_column_families(opts, 1);
    rocksdb_options_set_keep_log_file_num(opts, 4);
    /* No info LOG writes at all (headers included): RocksDB 7.8 as packaged asserts when its
     * info log is written again after a write to it failed (ENOSPC), which aborts the node on
     * a full disk. Every RocksDB error reaches the node as a status and is logged there. */
    rocksdb_options_set_info_log_level(opts, MS_INFO_LOG_OFF);
    /* One budget for the memtables of every family: by default each family may hold two of
     * 64 MiB, so a burst of writes spread over families (a garbage collection touches five)
     * grew the node by a quarter of a gigabyte; past the budget the largest one is flushed. */
    rocksdb_options_set_db_write_buffer_size(opts, MS_MEMTABLE_BUDGET);
    /* A bloom filter in every table file: a point lookup (a tag, a manifest, a blob's link)
     * reads the one file that holds its key instead of an index and a data block of every
     * level-0 file and level whose key range covers it. Without it a GET by tag on a store of
     * a million tags ran at 65-72 % of the rate on an empty store. Files written before keep
     * working without one until compaction rewrites them. */
    rocksdb_block_based_table_options_t *table = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_filter_policy(
        table, rocksdb_filterpolicy_create_bloom(MS_BLOOM_BITS_PER_KEY));
    rocksdb_options_set_block_based_table_factory(opts, table);
    rocksdb_block_based_options_destroy(table);
    const rocksdb_options_t *cf_opts[CF_COUNT];
    for (int i = 0; i < CF_COUNT; i++)
        cf_opts[i] = opts;
    remove_options_tmp(dir);
    char *err = NULL;
    ms->db = rocksdb_open_column_families(opts, dir, CF_COUNT, ms_cf_names, cf_opts, ms->cf, &err);
    if (err != NULL && (strstr(err, "No space left") != NULL || pt_disk_low(0))) {
        /* Opening for writing replays the WAL into a new table file and writes a new
         * MANIFEST: on a full disk that fails, so the node opens read-only (the WAL is replayed
         * in memory: everything acknowledged is served) and refuses writes until restarted
         * with space. */
        pt_log(PT_LOG_WARN, "metadata store opened read-only: no space to open it for writing",
               "{s:s,s:s}", "dir", dir, "error", err);
        free(err);
        err = NULL;
        ms->db = rocksdb_open_for_read_only_column_families(opts, dir, CF_COUNT, ms_cf_names,
                                                            cf_opts, ms->cf, 0, &err);
        ms->read_only = true;
    }
    rocksdb_options_destroy(opts);
    if (err != NULL) {
        rv = ms_rdb_err(err);
        goto err_after_alloc;
    }
    ms->ro = rocksdb_readoptions_create();
    ms->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(ms->wo, 0);
    ms->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(ms->wo_sync, 1);
    rv = load_applied(ms);
    if (rv == 0)
        rv = ms_missing_load(ms);
    if (rv == 0)
        rv = ms_gc_index_build(ms);
    if (rv == 0)
        rv = ms_usage_index_build(ms);
    if (rv != 0)
        goto err_after_open;
    *out = ms;
    return 0;

err_after_open:
    pt_metastore_close(ms);
    return rv;
err_after_alloc:
    free(ms);
    return rv;
}

void pt_metastore_close(struct pt_metastore *ms)
{
    if (ms == NULL)
        return;
    for (int i = 0; i < CF_COUNT; i++)
        rocksdb_column_family_handle_destroy(ms->cf[i]);
    rocksdb_close(ms->db);
    rocksdb_readoptions_destroy(ms->ro);
    rocksdb_writeoptions_destroy(ms->wo);
    rocksdb_writeoptions_destroy(ms->wo_sync);
    free(ms);
}

int pt_metastore_checkpoint(struct pt_metastore *ms, const char *dir)
{
    char *err = NULL;
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(ms->db, &err);
    if (err != NULL)
        return ms_rdb_err(err);
    /* log_size_for_flush 0: always flush, so the checkpoint needs no WAL to be complete */
    rocksdb_checkpoint_create(cp, dir, 0, &err);
    rocksdb_checkpoint_object_destroy(cp);
    return err != NULL ? ms_rdb_err(err) : 0;
}

int pt_metastore_sync(struct pt_metastore *ms)
{
    if (ms->read_only)
        return 0; /* nothing was written */
    char *err = NULL;
    rocksdb_flush_wal(ms->db, 1, &err);
    return err != NULL ? ms_rdb_err(err) : 0;
}
