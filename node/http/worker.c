/*
 * worker.c - what a handler reaches through its worker: the worker that owns a request, and
 * the node-wide set of uploads that have an operation in flight (one PATCH or PUT of a
 * session at a time, whichever loop it arrives on).
 *
 * The busy set is a short list under node->busy_lock: it holds one entry per upload being
 * written at this instant, so a list walk is cheaper than a table.
 */
#include "worker.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pt_busy_upload {
    struct pt_busy_upload *next;
    char id[80];
};

struct pt_worker *pt_worker_of(h2o_req_t *req)
{
    return (struct pt_worker *)((char *)req->conn->ctx - offsetof(struct pt_worker, ctx));
}

int pt_node_upload_acquire(struct pt_node *node, const char *id)
{
    int rv = 0;
    pthread_mutex_lock(&node->busy_lock);
    for (struct pt_busy_upload *b = node->busy; b != NULL; b = b->next) {
        if (strcmp(b->id, id) == 0) {
            rv = -1;
            break;
        }
    }
    if (rv == 0) {
        struct pt_busy_upload *b = calloc(1, sizeof(*b));
        if (b == NULL) {
            rv = -1;
        } else {
            snprintf(b->id, sizeof(b->id), "%s", id);
            b->next = node->busy;
            node->busy = b;
        }
    }
    pthread_mutex_unlock(&node->busy_lock);
    return rv;
}

void pt_node_upload_release(struct pt_node *node, const char *id)
{
    pthread_mutex_lock(&node->busy_lock);
    for (struct pt_busy_upload **p = &node->busy; *p != NULL; p = &(*p)->next) {
        if (strcmp((*p)->id, id) == 0) {
            struct pt_busy_upload *b = *p;
            *p = b->next;
            free(b);
            break;
        }
    }
    pthread_mutex_unlock(&node->busy_lock);
}
