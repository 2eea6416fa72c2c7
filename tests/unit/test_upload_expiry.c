/*
 * test_upload_expiry.c - unit tests for node/http/upload_expiry.c: start-up recovery and the
 * periodic expiry of upload sessions, on a real metastore and blob store in a temp dir.
 *
 * What they pin down: a session is deleted only when its current record says it is expired
 * (not a copy read earlier by a walk), never while a request holds its busy mark, never when
 * its record cannot be decoded; recovery drops expired and lost sessions, resumes the others
 * and sweeps only files that belong to no session.
 */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blobstore.h"
#include "clock.h"
#include "err.h"
#include "metastore.h"
#include "upload_expiry.h"
#include "worker.h"

#define TTL_MS 60000

struct fixture {
    char dir[256];
    struct pt_node node;
};

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void open_stores(struct fixture *f)
{
    char meta[300];
    snprintf(meta, sizeof(meta), "%s/meta", f->dir);
    assert_int_equal(pt_blobstore_open(f->dir, &f->node.bs), 0);
    assert_int_equal(pt_metastore_open(meta, &f->node.ms), 0);
}

static void close_stores(struct fixture *f)
{
    pt_metastore_close(f->node.ms);
    pt_blobstore_close(f->node.bs);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *base = getenv("TMPDIR");
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "%s/pt_upload_expiry_XXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    f->node.cfg.upload_ttl_ms = TTL_MS;
    pthread_mutex_init(&f->node.busy_lock, NULL);
    open_stores(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    close_stores(f);
    pthread_mutex_destroy(&f->node.busy_lock);
    assert_int_equal(nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(f);
    return 0;
}

/* Writes u's record as a request would after a PATCH. */
static void put_record(struct fixture *f, const struct pt_upload *u)
{
    unsigned char buf[1024];
    assert_true(pt_upload_encoded_size() <= sizeof(buf));
    pt_upload_encode(u, buf);
    assert_int_equal(pt_metastore_upload_put(f->node.ms, u->id, buf, pt_upload_encoded_size()), 0);
}

/* A session with a file, some bytes and a record last updated age_ms ago. */
static void new_session(struct fixture *f, int64_t age_ms, struct pt_upload *u)
{
    int64_t t = pt_clock_wall_ms() - age_ms;
    assert_int_equal(pt_blobstore_upload_begin(f->node.bs, "repo", t, u), 0);
    assert_int_equal(pt_blobstore_upload_append(f->node.bs, u, "abc", 3), 0);
    u->updated_ms = t;
    put_record(f, u);
}

static int has_file(struct fixture *f, const char *id)
{
    int fd;
    if (pt_blobstore_upload_open_read(f->node.bs, id, &fd) != 0)
        return 0;
    close(fd);
    return 1;
}

static int has_record(struct fixture *f, const char *id)
{
    void *val;
    size_t len;
    int rv = pt_metastore_upload_get(f->node.ms, id, &val, &len);
    free(val);
    return rv == 0;
}

/* A walk read the record while the session was stale; a PATCH refreshed it before expiry got
 * to it: the session must survive (the decision is made on the current record). */
static void test_check_decides_on_current_record(void **state)
{
    struct fixture *f = *state;
    struct pt_upload u;
    unsigned char seen[1024];

    new_session(f, 2 * TTL_MS, &u);
    pt_upload_encode(&u, seen);
    u.updated_ms = pt_clock_wall_ms(); /* the PATCH */
    put_record(f, &u);

    assert_int_equal(pt_upload_expiry_check(&f->node, u.id, seen, pt_upload_encoded_size()), 0);
    assert_true(has_file(f, u.id));
    assert_true(has_record(f, u.id));
}

static void test_check_drops_expired(void **state)
{
    struct fixture *f = *state;
    struct pt_upload u;
    unsigned char seen[1024];

    new_session(f, 2 * TTL_MS, &u);
    pt_upload_encode(&u, seen);
    assert_int_equal(pt_upload_expiry_check(&f->node, u.id, seen, pt_upload_encoded_size()), 1);
    assert_false(has_file(f, u.id));
    assert_false(has_record(f, u.id));
    /* gone already: nothing to do */
    assert_int_equal(pt_upload_expiry_check(&f->node, u.id, seen, pt_upload_encoded_size()), 0);
}

static void test_check_skips_busy_and_fresh(void **state)
{
    struct fixture *f = *state;
    struct pt_upload stale, fresh;
    unsigned char seen[1024];

    new_session(f, 2 * TTL_MS, &stale);
    assert_int_equal(pt_node_upload_acquire(&f->node, stale.id), 0);
    assert_int_equal(pt_upload_expiry_check(&f->node, stale.id, NULL, 0), 0);
    assert_true(has_file(f, stale.id));
    pt_node_upload_release(&f->node, stale.id);
    /* the mark is released again by the check when it did not take it */
    assert_int_equal(pt_upload_expiry_check(&f->node, stale.id, NULL, 0), 1);

    new_session(f, 0, &fresh);
    pt_upload_encode(&fresh, seen);
    assert_int_equal(pt_upload_expiry_check(&f->node, fresh.id, seen, pt_upload_encoded_size()), 0);
    assert_int_equal(pt_upload_expiry_check(&f->node, fresh.id, NULL, 0), 0);
    assert_true(has_file(f, fresh.id));
    /* no mark left behind */
    assert_int_equal(pt_node_upload_acquire(&f->node, fresh.id), 0);
    pt_node_upload_release(&f->node, fresh.id);
}

/* A record that cannot be decoded is not known to be expired: the session stays. */
static void test_unreadable_record_kept(void **state)
{
    struct fixture *f = *state;
    struct pt_upload u;

    new_session(f, 2 * TTL_MS, &u);
    assert_int_equal(pt_metastore_upload_put(f->node.ms, u.id, "junk", 4), 0);
    assert_int_equal(pt_upload_expiry_pass(&f->node), 0);
    assert_true(has_file(f, u.id));
    assert_true(has_record(f, u.id));

    unsigned resumed, dropped;
    assert_int_equal(pt_upload_expiry_recover(&f->node, pt_clock_wall_ms(), &resumed, &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_true(has_file(f, u.id));
    assert_true(has_record(f, u.id));
}

static void test_pass(void **state)
{
    struct fixture *f = *state;
    struct pt_upload a, b, c;

    new_session(f, 2 * TTL_MS, &a);
    new_session(f, 0, &b);
    new_session(f, TTL_MS + 1000, &c);
    assert_int_equal(pt_upload_expiry_pass(&f->node), 2);
    assert_false(has_file(f, a.id));
    assert_true(has_file(f, b.id));
    assert_true(has_record(f, b.id));
    assert_false(has_record(f, c.id));
}

/* Restart: expired and lost sessions go, live ones resume, stray files are swept. */
static void test_recover(void **state)
{
    struct fixture *f = *state;
    struct pt_upload live, old, lost, stray;

    new_session(f, 0, &live);
    new_session(f, 2 * TTL_MS, &old);
    new_session(f, 0, &lost);
    assert_int_equal(pt_blobstore_upload_abort(f->node.bs, lost.id), 0);           /* file gone */
    assert_int_equal(pt_blobstore_upload_begin(f->node.bs, "repo", 0, &stray), 0); /* no record */
    close_stores(f);
    open_stores(f);

    unsigned resumed, dropped;
    assert_int_equal(pt_upload_expiry_recover(&f->node, pt_clock_wall_ms(), &resumed, &dropped), 0);
    assert_int_equal(resumed, 1);
    assert_int_equal(dropped, 2);
    assert_true(has_file(f, live.id));
    assert_true(has_record(f, live.id));
    assert_false(has_file(f, old.id));
    assert_false(has_record(f, old.id));
    assert_false(has_record(f, lost.id));
    assert_false(has_file(f, stray.id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_check_decides_on_current_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_drops_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_skips_busy_and_fresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_record_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
