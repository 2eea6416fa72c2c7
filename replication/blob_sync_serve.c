/*
 * blob_sync_serve.c - other regions' BlobWants answered from this region's blob store.
 *
 * A BlobWant (proto/peer.proto) arrives on a BULK channel (pt_peers, transport.h) and asks for
 * at most PT_BLOB_SYNC_CHUNK_MAX bytes of a verified blob at an offset. The piece is read on
 * the thread pool (never on the raft loop) and answered as one BlobChunk carrying the blob's
 * size, so the asking side checks every piece against what it expects.
 *
 * Limits: at most PT_BLOB_SYNC_SERVE_MAX reads in flight (beyond, TOOMANYREQUESTS: the asker
 * waits briefly and asks again); a malformed message, a bad digest or an empty or oversized
 * length is refused before any I/O. A blob not stored here answers the blob store's error.
 */
#include "blob_sync_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"

struct serve {
    struct pt_blob_sync *s;
    uv_work_t work;
    struct pt_peer_call *call;
    struct pt_digest d;
    uint64_t offset;
    uint32_t len;
    int rv;
    uint64_t size;
    size_t got;
    unsigned char *buf;
};

static void serve_work(uv_work_t *work)
{
    struct serve *sv = work->data;
    int fd;
    sv->rv = pt_blobstore_open_blob(sv->s->bs, &sv->d, &fd, &sv->size);
    if (sv->rv != 0)
        return;
    if (sv->offset > sv->size) {
        sv->rv = PT_E_RANGE_INVALID;
        close(fd);
        return;
    }
    uint64_t left = sv->size - sv->offset;
    size_t want = left < sv->len ? (size_t)left : sv->len;
    sv->buf = malloc(want > 0 ? want : 1);
    if (sv->buf == NULL) {
        sv->rv = PT_E_NOMEM;
        close(fd);
        return;
    }
    while (sv->got < want) {
        ssize_t n = pread(fd, sv->buf + sv->got, want - sv->got, (off_t)(sv->offset + sv->got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            sv->rv = PT_E_IO;
            break;
        }
        sv->got += (size_t)n;
    }
    close(fd);
}

static void after_serve(uv_work_t *work, int status)
{
    struct serve *sv = work->data;
    struct pt_blob_sync *s = sv->s;
    (void)status;
    s->serving--;
    if (sv->rv != 0) {
        pt_peer_reply(sv->call, sv->rv, NULL, 0);
    } else {
        Portolan__BlobChunk bc = PORTOLAN__BLOB_CHUNK__INIT;
        bc.offset = sv->offset;
        bc.size = sv->size;
        bc.data.data = sv->buf;
        bc.data.len = sv->got;
        size_t n = portolan__blob_chunk__get_packed_size(&bc);
        unsigned char *out = malloc(n);
        if (out == NULL) {
            pt_peer_reply(sv->call, PT_E_NOMEM, NULL, 0);
        } else {
            portolan__blob_chunk__pack(&bc, out);
            pt_peer_reply(sv->call, 0, out, n);
            s->bytes_sent += sv->got;
            free(out);
        }
    }
    free(sv->buf);
    free(sv);
    bsync_done(s);
}

void bsync_serve_request(void *arg, uint64_t from, uint32_t type, const void *body, size_t len,
                         struct pt_peer_call *call)
{
    struct pt_blob_sync *s = arg;
    if (s->cfg.is_member != NULL && !s->cfg.is_member(s->cfg.member_arg, from)) {
        pt_peer_reply(call, PT_E_DENIED, NULL, 0);
        return;
    }
    if (type != PORTOLAN__PEER_TYPE__PEER_BLOB_WANT) {
        pt_peer_reply(call, PT_E_UNSUPPORTED, NULL, 0);
        return;
    }
    if (s->stopping) {
        pt_peer_reply(call, PT_E_UNAVAILABLE, NULL, 0);
        return;
    }
    if (s->serving >= PT_BLOB_SYNC_SERVE_MAX) {
        pt_peer_reply(call, PT_E_TOOMANYREQUESTS, NULL, 0);
        return;
    }
    Portolan__BlobWant *bw = portolan__blob_want__unpack(NULL, len, body);
    struct serve *sv = bw != NULL ? calloc(1, sizeof(*sv)) : NULL;
    int rv = bw == NULL ? PT_E_CORRUPT : sv == NULL ? PT_E_NOMEM : 0;
    if (rv == 0 && pt_digest_parse(bw->digest, strlen(bw->digest), &sv->d) != 0)
        rv = PT_E_DIGEST_INVALID;
    if (rv == 0 && (bw->length == 0 || bw->length > PT_BLOB_SYNC_CHUNK_MAX))
        rv = PT_E_RANGE_INVALID;
    if (rv != 0) {
        free(sv);
        if (bw != NULL)
            portolan__blob_want__free_unpacked(bw, NULL);
        pt_peer_reply(call, rv, NULL, 0);
        return;
    }
    sv->s = s;
    sv->call = call;
    sv->offset = bw->offset;
    sv->len = bw->length;
    portolan__blob_want__free_unpacked(bw, NULL);
    s->serving++;
    sv->work.data = sv;
    bsync_queue_work(s, &sv->work, serve_work, after_serve);
}
