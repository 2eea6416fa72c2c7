/*
 * test_blob_sync_serving.c - the serving side of blob replication between regions
 * (replication/blob_sync.c) and the encodings a transfer relies on: the serving side's limits,
 * probed with raw BlobWants over a BULK channel to a region of support/blob_world.h; the names
 * of transfer sessions and how the start-up sweep finds them; and the encoding of a
 * transfer's BlobWant into its fixed buffer, refused when it would not fit. Every test with a
 * world stops every service, closes every handle (uv_loop_close() == 0) and removes its
 * directory; ASan and LSan check memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "blob_sync.h"
#include "blob_sync_wire.h"
#include "blobstore.h"
#include "digest.h"
#include "err.h"
#include "metastore.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "support/blob_world.h"
#include "support/blob_world_status.h"
#include "support/feed_reader.h"
#include "support/loop.h"
#include "support/loopback.h"
#include "transport.h"
#include "units.h"

static uv_loop_t loop;

/* ---- Loop helpers ------------------------------------------------------------------------- */

#define RUN_UNTIL_GE(ptr, n, ms) PT_LOOP_RUN_UNTIL_GE(&loop, (ptr), (n), (ms))
#define RUN_FOR(ms)              PT_LOOP_RUN_FOR(&loop, (ms))

/* ---- Serving: raw BlobWants over a BULK channel ------------------------------------------- */

struct answer {
    int calls;
    int status;
    size_t len;
    unsigned char *body; /* copy, owned */
};

static void answer_cb(void *arg, int status, const void *body, size_t len)
{
    struct answer *an = arg;
    an->calls++;
    an->status = status;
    free(an->body);
    an->body = NULL;
    if (len > 0) {
        an->body = malloc(len);
        assert_non_null(an->body);
        memcpy(an->body, body, len);
    }
    an->len = len;
}

struct client {
    struct pt_loopback_transport net; /* not listening */
    struct pt_peers *peers;
    int peers_closed;
};

static void client_peers_closed_cb(void *arg)
{
    struct client *c = arg;
    c->peers_closed++;
}

/* Sends a BlobWant (or raw bytes when body is not NULL) from c to server `to` and waits for
 * the answer; returns its status. */
static int want(struct client *c, uint64_t to, uint32_t type, const char *digest, uint64_t offset,
                uint32_t length, const void *raw, size_t raw_len, struct answer *an)
{
    unsigned char buf[256];
    const void *body = raw;
    size_t len = raw_len;

    if (raw == NULL) {
        Portolan__BlobWant bw = PORTOLAN__BLOB_WANT__INIT;
        bw.digest = (char *)digest;
        bw.offset = offset;
        bw.length = length;
        assert_true(portolan__blob_want__get_packed_size(&bw) <= sizeof(buf));
        len = portolan__blob_want__pack(&bw, buf);
        body = buf;
    }
    int before = an->calls;
    assert_int_equal(pt_peers_request(c->peers, to, type, body, len, 5000, answer_cb, an), 0);
    assert_int_equal(an->calls, before);
    assert_true(RUN_UNTIL_GE(&an->calls, before + 1, 6000));
    return an->status;
}

/* Checks that an answers with the bytes [offset, offset + n) of b. */
static void assert_chunk(const struct answer *an, const struct pt_world_blob *b, uint64_t offset,
                         uint64_t n)
{
    Portolan__BlobChunk *bc = portolan__blob_chunk__unpack(NULL, an->len, an->body);
    assert_non_null(bc);
    assert_int_equal(bc->offset, offset);
    assert_int_equal(bc->size, b->size);
    assert_int_equal(bc->data.len, n);
    if (n > 0)
        assert_memory_equal(bc->data.data, b->data + offset, n);
    portolan__blob_chunk__free_unpacked(bc, NULL);
}

/* The serving side's checks: lengths outside 1..PT_BLOB_SYNC_CHUNK_MAX, malformed digests,
 * blobs not held, offsets past the end, undecodable bodies and other request types are
 * refused; good requests get exactly the bytes asked for (fewer at the end). */
static void test_serving_limits(void **state)
{
    (void)state;
    pt_world_up(1, 0); /* A alone: what it sends goes to the probe only */
    struct pt_world_region *a = &pt_world.r[0];
    const struct pt_world_blob *x = pt_world_blob_new(5 * PT_MIB + 7, 50);
    const struct pt_world_blob *other = pt_world_blob_new(10, 51);
    struct client c;
    struct answer an;
    unsigned port;
    const uint32_t WANT = PORTOLAN__PEER_TYPE__PEER_BLOB_WANT;

    memset(&c, 0, sizeof(c));
    memset(&an, 0, sizeof(an));
    pt_world_store_blob(a, x);
    pt_world_record_held(a->name, x);

    pt_loopback_free_ports(&port, 1);
    pt_loopback_transport_init(&c.net, &loop, PT_WORLD_CLUSTER, 7, port);
    assert_int_equal(pt_peers_init(&c.peers, &loop, &c.net.t, PT_CHANNEL_BULK, 7, NULL, NULL), 0);
    assert_int_equal(pt_peers_set_address(c.peers, a->id, a->net.address), 0);

    /* lengths */
    assert_int_equal(want(&c, a->id, WANT, x->digest, 0, 0, NULL, 0, &an), PT_E_RANGE_INVALID);
    assert_int_equal(an.len, 0);
    assert_int_equal(want(&c, a->id, WANT, x->digest, 0, PT_BLOB_SYNC_CHUNK_MAX + 1, NULL, 0, &an),
                     PT_E_RANGE_INVALID);
    assert_int_equal(want(&c, a->id, WANT, x->digest, 0, UINT32_MAX, NULL, 0, &an),
                     PT_E_RANGE_INVALID);
    /* digests */
    assert_int_equal(want(&c, a->id, WANT, "sha256:abc", 0, 10, NULL, 0, &an), PT_E_DIGEST_INVALID);
    assert_int_equal(want(&c, a->id, WANT, "", 0, 10, NULL, 0, &an), PT_E_DIGEST_INVALID);
    char upper[PT_DIGEST_STR_MAX + 1];
    snprintf(upper, sizeof(upper), "sha256:%s", x->d.hex);
    for (char *p = upper + 7; *p != '\0'; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(want(&c, a->id, WANT, upper, 0, 10, NULL, 0, &an), PT_E_DIGEST_INVALID);
    char other_algo[PT_DIGEST_STR_MAX + 1];
    snprintf(other_algo, sizeof(other_algo), "sha384:%.64s", x->d.hex);
    assert_int_equal(want(&c, a->id, WANT, other_algo, 0, 10, NULL, 0, &an), PT_E_DIGEST_INVALID);
    /* a well-formed sha512 digest of a blob not held here */
    char sha512[PT_DIGEST_STR_MAX + 1];
    snprintf(sha512, sizeof(sha512), "sha512:%.64s%.64s", x->d.hex, x->d.hex);
    assert_int_equal(want(&c, a->id, WANT, sha512, 0, 10, NULL, 0, &an), PT_E_BLOB_UNKNOWN);
    /* not held here */
    assert_int_equal(want(&c, a->id, WANT, other->digest, 0, 10, NULL, 0, &an), PT_E_BLOB_UNKNOWN);
    /* past the end */
    assert_int_equal(want(&c, a->id, WANT, x->digest, x->size + 1, 10, NULL, 0, &an),
                     PT_E_RANGE_INVALID);
    assert_int_equal(want(&c, a->id, WANT, x->digest, UINT64_MAX, 10, NULL, 0, &an),
                     PT_E_RANGE_INVALID);
    /* not a BlobWant, and not a type served on BULK channels */
    assert_int_equal(want(&c, a->id, WANT, NULL, 0, 0, "\xff\xff\xff", 3, &an), PT_E_CORRUPT);
    assert_int_equal(
        want(&c, a->id, PORTOLAN__PEER_TYPE__PEER_PROPOSE, x->digest, 0, 10, NULL, 0, &an),
        PT_E_UNSUPPORTED);
    assert_int_equal(pt_world_status_int(a, "bytes_sent_total"), 0);

    /* good requests: exactly the bytes asked for */
    assert_int_equal(want(&c, a->id, WANT, x->digest, 1000, PT_BLOB_SYNC_CHUNK_MAX, NULL, 0, &an),
                     0);
    assert_chunk(&an, x, 1000, PT_BLOB_SYNC_CHUNK_MAX);
    assert_int_equal(want(&c, a->id, WANT, x->digest, 0, 1, NULL, 0, &an), 0);
    assert_chunk(&an, x, 0, 1);
    /* at the end, fewer; at the very end, none */
    assert_int_equal(want(&c, a->id, WANT, x->digest, x->size - 10, 100, NULL, 0, &an), 0);
    assert_chunk(&an, x, x->size - 10, 10);
    assert_int_equal(want(&c, a->id, WANT, x->digest, x->size, 100, NULL, 0, &an), 0);
    assert_chunk(&an, x, x->size, 0);
    assert_int_equal(pt_world_status_int(a, "bytes_sent_total"),
                     (int64_t)PT_BLOB_SYNC_CHUNK_MAX + 1 + 10);

    pt_peers_close(c.peers, client_peers_closed_cb, &c);
    assert_true(RUN_UNTIL_GE(&c.peers_closed, 1, 5000));
    pt_loopback_transport_close(&c.net, &loop, 5000);
    free(an.body);
}

/*
 * Transfer session names (blob_sync_session.c): a sha256 blob's is its hex, a sha512 blob's
 * "512-" and 60 of its hex, both within PT_UPLOAD_ID_MAX; the start-up sweep finds either
 * from the transfer record, and nothing else.
 */
static void test_session_names(void **state)
{
    (void)state;
    struct pt_world_region *a = pt_world_region_add("a", 1, 47001);
    struct pt_digest d256, d512;
    char id256[PT_UPLOAD_ID_MAX + 1], id512[PT_UPLOAD_ID_MAX + 1];
    char s256[PT_DIGEST_STR_MAX + 1], s512[PT_DIGEST_STR_MAX + 1];
    unsigned char rec[1024];
    struct pt_upload u;

    pt_digest_of("x", 1, &d256);
    pt_digest_of_algo("x", 1, PT_DIGEST_SHA512, &d512);
    pt_digest_format(&d256, s256);
    pt_digest_format(&d512, s512);
    pt_blob_sync_session_id(&d256, id256);
    pt_blob_sync_session_id(&d512, id512);
    assert_string_equal(id256, d256.hex);
    assert_int_equal(strlen(id512), PT_UPLOAD_ID_MAX);
    assert_memory_equal(id512, "512-", 4);
    assert_memory_equal(id512 + 4, d512.hex, 60);

    /* no records yet: neither session is live */
    assert_int_equal(pt_blob_sync_session_live(a->ms, id256), 0);
    assert_int_equal(pt_blob_sync_session_live(a->ms, id512), 0);
    assert_true(pt_upload_encoded_size() <= sizeof(rec));
    const struct {
        const char *digest, *id;
    } both[] = {{s256, id256}, {s512, id512}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pt_blobstore_upload_begin_id(a->bs, "@transfer", both[i].id, 1, &u), 0);
        pt_upload_encode(&u, rec);
        assert_int_equal(
            pt_metastore_transfer_put(a->ms, both[i].digest, rec, pt_upload_encoded_size()), 0);
        assert_int_equal(pt_blob_sync_session_live(a->ms, both[i].id), 1);
    }
    /* a session id of that form whose digest has no transfer, and other ids */
    char other[PT_UPLOAD_ID_MAX + 1];
    snprintf(other, sizeof(other), "512-%.60s", d256.hex);
    assert_int_equal(pt_blob_sync_session_live(a->ms, other), 0);
    assert_int_equal(pt_blob_sync_session_live(a->ms, "1-0f0e0d0c-0b0a-4909-8807-060504030201"), 0);
    assert_int_equal(pt_metastore_transfer_delete(a->ms, s512), 0);
    assert_int_equal(pt_blob_sync_session_live(a->ms, id512), 0);
    assert_int_equal(pt_blob_sync_session_live(a->ms, id256), 1);
}

/*
 * Encoding a BlobWant into the fixed buffer a transfer asks with (bsync_encode_want): the
 * largest one a digest allows (sha512) fits and reads back; one that would not fit (a digest
 * far longer than any valid one) is refused with PT_E_TOO_LARGE and leaves the buffer
 * untouched, where packing it blindly would write past the end (ASan checks: the buffer is
 * exactly WANT_BUF bytes on the heap).
 */
static void test_want_encoding(void **state)
{
    (void)state;
    unsigned char *buf = malloc(WANT_BUF);
    char digest[PT_DIGEST_STR_MAX + 1], *long_digest = malloc(4096);
    size_t len = 0;

    assert_non_null(buf);
    assert_non_null(long_digest);
    snprintf(digest, sizeof(digest), "sha512:%0128d", 7);
    assert_int_equal(strlen(digest), PT_DIGEST_STR_MAX);
    assert_int_equal(
        bsync_encode_want(digest, UINT64_MAX, PT_BLOB_SYNC_CHUNK_MAX, buf, WANT_BUF, &len), 0);
    assert_true(len > 0 && len <= WANT_BUF);
    Portolan__BlobWant *bw = portolan__blob_want__unpack(NULL, len, buf);
    assert_non_null(bw);
    assert_string_equal(bw->digest, digest);
    assert_true(bw->offset == UINT64_MAX);
    assert_int_equal(bw->length, PT_BLOB_SYNC_CHUNK_MAX);
    portolan__blob_want__free_unpacked(bw, NULL);

    /* the same with a 4 KiB digest: refused, nothing written */
    memset(long_digest, 'a', 4095);
    long_digest[4095] = '\0';
    memset(buf, 0x5a, WANT_BUF);
    len = 12345;
    assert_int_equal(bsync_encode_want(long_digest, 0, PT_BLOB_SYNC_CHUNK, buf, WANT_BUF, &len),
                     PT_E_TOO_LARGE);
    assert_int_equal(len, 12345);
    for (size_t i = 0; i < WANT_BUF; i++)
        assert_int_equal(buf[i], 0x5a);
    /* and one byte short of what even a valid want needs */
    assert_int_equal(bsync_encode_want(digest, 0, 1, buf, PT_DIGEST_STR_MAX, &len), PT_E_TOO_LARGE);
    free(long_digest);
    free(buf);
}

int main(void)
{
    /* as the node does (server.c): a peer that went away must not kill the process */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_serving_limits, pt_world_setup,
                                                 pt_world_teardown, &loop),
        cmocka_unit_test(test_want_encoding),
        cmocka_unit_test_prestate_setup_teardown(test_session_names, pt_world_setup,
                                                 pt_world_teardown, &loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
