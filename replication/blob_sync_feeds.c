/*
 * blob_sync_feeds.c - readers of a blob that is still arriving (see blob_sync.h).
 *
 * A client GET of a blob this region lacks joins that blob's transfer through
 * pt_blob_sync_feed: the transfer is found (one per digest, whatever the number of readers) or
 * started at once as an on-demand one, ahead of the background queue. The reader gets a
 * struct pt_blob_feed: the transfer's file descriptor and how far it is written, shared with
 * the HTTP workers under the feed's own mutex and reference counted, so that the transfer and
 * each reader drop it in any order.
 *
 * Invariants: the loop only moves a feed forward (written grows; state leaves RUNNING once);
 * readers never see the last byte before the blob verified (pt_blob_feed_poll holds it back),
 * so none finishes a blob that may turn out corrupt. A waiter is posted at most once: it is
 * unlinked under the lock before its mail goes out.
 */
#include "blob_sync_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "metastore.h"

struct pt_blob_feed *bsync_feed_new(uint64_t size)
{
    struct pt_blob_feed *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    atomic_init(&f->refs, 1);
    pthread_mutex_init(&f->lock, NULL);
    f->fd = -1;
    f->size = size;
    f->state = PT_FEED_RUNNING;
    return f;
}

void bsync_feed_update(struct pt_blob_feed *f, int fd, uint64_t written, int state, int error)
{
    pthread_mutex_lock(&f->lock);
    if (fd >= 0 && f->fd < 0)
        f->fd = fd;
    else if (fd >= 0)
        close(fd);
    if (written > f->written)
        f->written = written;
    if (f->state == PT_FEED_RUNNING) {
        f->state = state;
        f->error = error;
    }
    struct pt_feed_waiter *w = f->waiters;
    f->waiters = NULL;
    pthread_mutex_unlock(&f->lock);
    while (w != NULL) {
        struct pt_feed_waiter *next = w->next;
        pt_mailbox_post(w->mailbox, &w->mail, w->cb);
        w = next;
    }
}

int pt_blob_feed_poll(struct pt_blob_feed *f, uint64_t pos, uint64_t *avail, int *error,
                      struct pt_feed_waiter *w)
{
    pthread_mutex_lock(&f->lock);
    int state = f->state;
    uint64_t a = f->written;
    if (state == PT_FEED_DONE)
        a = f->size;
    else if (f->size > 0 && a >= f->size)
        a = f->size - 1; /* the last byte waits for the digest */
    if (f->fd < 0)
        a = 0;
    *avail = a;
    *error = f->error;
    if (state == PT_FEED_RUNNING && pos >= a && w != NULL) {
        w->next = f->waiters;
        f->waiters = w;
    }
    pthread_mutex_unlock(&f->lock);
    return state;
}

int pt_blob_feed_withdraw(struct pt_blob_feed *f, struct pt_feed_waiter *w)
{
    int found = 0;
    pthread_mutex_lock(&f->lock);
    for (struct pt_feed_waiter **pp = &f->waiters; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return found;
}

void pt_blob_feed_release(struct pt_blob_feed *f)
{
    if (f == NULL || atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    if (f->fd >= 0)
        close(f->fd);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

struct pt_blob_feed *bsync_feed_ref(struct pt_blob_feed *f)
{
    atomic_fetch_add(&f->refs, 1);
    return f;
}

int pt_blob_sync_feed(struct pt_blob_sync *s, const char *digest, uint64_t size,
                      struct pt_blob_feed **feed)
{
    if (s->stopping)
        return PT_E_UNAVAILABLE;
    struct transfer *t = bsync_transfer_find(s, digest);
    if (t == NULL) {
        char **names = NULL;
        size_t n = 0;
        uint64_t holders[MAX_HOLDERS], recorded = size;
        int rv = pt_metastore_blob_regions(s->ms, digest, &recorded, &names, &n);
        if (rv != 0)
            return rv;
        unsigned nholders =
            bsync_holder_ids(s->regions, s->nregions, (const char *const *)names, n, holders);
        pt_strv_free(names, n);
        if (nholders == 0)
            return PT_E_BLOB_UNKNOWN;
        t = bsync_transfer_new(s, digest, recorded, holders, nholders, 1);
        if (t == NULL)
            return PT_E_NOMEM;
    }
    t->demand = 1;
    if (t->state == T_WAITING)
        t->retry_ms = 0; /* someone waits: try again at the next tick */
    *feed = bsync_feed_ref(t->feed);
    return 0;
}
