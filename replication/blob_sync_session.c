/*
 * blob_sync_session.c - the names of the upload sessions that transfers write to.
 *
 * A transfer from another region writes its blob to an upload session (blobstore.h) whose id
 * is derived from the digest, so a restart finds the session again from the digest alone.
 * Session ids are at most PT_UPLOAD_ID_MAX (64) characters of [0-9a-f-]:
 *   sha256 blob   its 64 hex characters (the name sessions have always had)
 *   sha512 blob   "512-" + the first 60 of its 128 hex characters
 * The two forms cannot meet (only the second has a dash), nor meet the sessions of client
 * uploads (prefix, then a UUID with four dashes). Two sha512 blobs would share a session only
 * if their digests shared 240 bits; even then nothing wrong is stored, since the commit
 * verifies the full digest.
 *
 * The sha512 form cannot be turned back into the digest, so the start-up sweep asks the
 * metastore for the recorded transfer whose digest begins with those 60 characters and checks
 * that its session carries this id (pt_blob_sync_session_live).
 */
#include "blob_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blobstore.h"
#include "err.h"
#include "metastore.h"

#define SHA512_ID_PREFIX     "512-"
#define SHA512_ID_PREFIX_LEN 4
#define SHA512_ID_HEX        (PT_UPLOAD_ID_MAX - SHA512_ID_PREFIX_LEN)

_Static_assert(PT_DIGEST_SHA256_HEX_LEN <= PT_UPLOAD_ID_MAX, "a sha256 hex is a session id");

void pt_blob_sync_session_id(const struct pt_digest *d, char id[PT_UPLOAD_ID_MAX + 1])
{
    if (d->algo == PT_DIGEST_SHA256)
        snprintf(id, PT_UPLOAD_ID_MAX + 1, "%.*s", PT_DIGEST_SHA256_HEX_LEN, d->hex);
    else
        snprintf(id, PT_UPLOAD_ID_MAX + 1, SHA512_ID_PREFIX "%.*s", SHA512_ID_HEX, d->hex);
}

int pt_blob_sync_session_live(struct pt_metastore *ms, const char *id)
{
    char digest[PT_DIGEST_STR_MAX + 1], prefix[PT_DIGEST_STR_MAX + 1];
    char want[PT_UPLOAD_ID_MAX + 1];
    struct pt_upload u;
    struct pt_digest d;
    void *val = NULL;
    size_t len;
    int rv;

    /* both forms are 64 characters long: the dash tells them apart */
    if (strncmp(id, SHA512_ID_PREFIX, SHA512_ID_PREFIX_LEN) == 0) {
        snprintf(prefix, sizeof(prefix), "sha512:%s", id + SHA512_ID_PREFIX_LEN);
        rv = pt_metastore_transfer_first(ms, prefix, digest);
        if (rv != 0)
            return rv != PT_E_NOT_FOUND;
    } else if (strlen(id) == PT_DIGEST_SHA256_HEX_LEN) {
        snprintf(digest, sizeof(digest), "sha256:%s", id);
    } else {
        return 0;
    }
    if (pt_digest_parse(digest, strlen(digest), &d) != 0)
        return 0;
    pt_blob_sync_session_id(&d, want);
    if (strcmp(want, id) != 0)
        return 0;
    rv = pt_metastore_transfer_get(ms, digest, &val, &len);
    if (rv != 0)
        return rv != PT_E_NOT_FOUND; /* a failed read keeps the file */
    rv = pt_upload_decode(val, len, &u) != 0 || strcmp(u.id, id) == 0;
    free(val);
    return rv;
}
