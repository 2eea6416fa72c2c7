/*
 * manifest.h - parse and validate manifests pushed to the registry.
 *
 * A pure function over bytes: no I/O, no clock, no global state, so the same body gives the
 * same answer on every node (the FSM may call it) and a fuzzer can drive it directly.
 *
 * Accepted documents (OCI distribution-spec v1.1.1 "Pushing Manifests", image-spec v1.1
 * manifest.md and image-index.md, Docker image manifest V2 schema 2):
 *   application/vnd.oci.image.manifest.v1+json              -> PT_MANIFEST_IMAGE
 *   application/vnd.docker.distribution.manifest.v2+json    -> PT_MANIFEST_IMAGE
 *   application/vnd.oci.image.index.v1+json                 -> PT_MANIFEST_INDEX
 *   application/vnd.docker.distribution.manifest.list.v2+json -> PT_MANIFEST_INDEX
 * Docker schema 1 (signed or not) is refused as an unsupported media type.
 *
 * Invariant of a successful parse: info.media_type is always one of the four known types,
 * spelled canonically (lower case), so it is safe to serve as a Content-Type header; every
 * descriptor has a sha256 or sha512 digest, a size in [0, 2^53 - 1] and an RFC 6838 media type.
 */
#ifndef PT_MANIFEST_H
#define PT_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "digest.h"

/* The largest manifest body accepted is PT_MANIFEST_MAX_BYTES (base/bounds.h). */
/* Most descriptors (config + layers, or manifests[]) in one manifest. */
#define PT_MANIFEST_MAX_REFS 10000
/* Most JSON values (objects, arrays and the elements and members they hold, counted from the
 * text before any tree is built): room for PT_MANIFEST_MAX_REFS descriptors of 16 fields each;
 * a body past it is refused without being parsed (a wide document costs about 100 bytes of heap
 * per value in a tree). */
#define PT_MANIFEST_MAX_VALUES (16 * PT_MANIFEST_MAX_REFS)
/* Bodies at least this large give their parse memory back to the system (malloc_trim). */
#define PT_MANIFEST_TRIM_BYTES (256 * 1024)
/* Deepest nesting of JSON objects/arrays accepted; real manifests use at most 5 levels. */
#define PT_MANIFEST_MAX_DEPTH 64
/* Largest size a descriptor may declare: 2^53 - 1, the exact-integer range of a JSON double
 * (image-spec considerations.md, "JSON"). */
#define PT_MANIFEST_MAX_SIZE ((uint64_t)9007199254740991ull)

#define PT_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define PT_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define PT_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define PT_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define PT_MT_OCI_EMPTY       "application/vnd.oci.empty.v1+json"

enum pt_manifest_kind {
    PT_MANIFEST_IMAGE, /* OCI image manifest or Docker schema2 manifest: config + layers */
    PT_MANIFEST_INDEX, /* OCI index or Docker manifest list: manifests[] */
};

struct pt_manifest_ref {
    struct pt_digest digest;
    uint64_t size;        /* <= PT_MANIFEST_MAX_SIZE */
    char media_type[128]; /* RFC 6838 type/subtype, NUL-terminated */
};

struct pt_manifest_info {
    enum pt_manifest_kind kind;
    /* Effective media type, stored and served as Content-Type: one of the four known types. */
    char media_type[128];
    /* artifactType, else (image manifest) config.mediaType; "" if none. This is what the
     * referrers API reports for this manifest. */
    char artifact_type[128];
    int has_subject;
    struct pt_digest subject; /* valid only if has_subject */
    /* The blobs the registry must hold for this manifest: image: blobs[0] is the config, then
     * the layers in order, except foreign layers (below). Nothing else is required, so this is
     * also what the PutManifest command lists and what replication fetches. */
    size_t nblobs;
    struct pt_manifest_ref *blobs; /* owned */
    /* Foreign layers: layers whose descriptor carries a non-empty "urls" (image-spec
     * descriptor.md; the non-distributable layer types application/vnd.oci.image.layer.
     * nondistributable.v1.tar[+gzip|+zstd] and application/vnd.docker.image.rootfs.foreign.
     * diff.tar.gzip are pushed that way). Clients fetch them from those URLs, so they are not
     * in blobs[] and need not be in the registry, as in CNCF Distribution. Each URL must be
     * http:// or https:// without a fragment. */
    size_t nforeign;
    size_t nchildren;
    struct pt_manifest_ref *children; /* owned; index: manifests[] in order */
    char *annotations; /* owned: compact JSON object text of "annotations", or NULL if absent */
};

/*
 * Parses and validates body (len bytes, borrowed, not NUL-terminated) sent with the given
 * Content-Type header value (borrowed, NUL-terminated, may be NULL; parameters such as
 * "; charset=utf-8" and surrounding whitespace are ignored, comparison is case-insensitive).
 *
 * Effective media type: the body's mediaType if present (it must then be a known type, and
 * equal the Content-Type when that is a known type), else the Content-Type if known, else
 * inferred from structure ("manifests" -> OCI index, "config" -> OCI image manifest).
 *
 * Returns 0 and fills *out (caller frees with pt_manifest_info_free), or:
 *   PT_E_MANIFEST_TOO_LARGE  len > PT_MANIFEST_MAX_BYTES;
 *   PT_E_UNSUPPORTED_MEDIA   Docker schema 1 (by Content-Type, body mediaType or
 *                            schemaVersion 1); a body mediaType that is not a known manifest
 *                            type; no mediaType, no known Content-Type and nothing to infer;
 *   PT_E_MANIFEST_INVALID    anything else wrong: not UTF-8 JSON, duplicate keys, nesting
 *                            deeper than PT_MANIFEST_MAX_DEPTH, more than PT_MANIFEST_MAX_VALUES
 *                            JSON values (refused before parsing), not an object, schemaVersion
 *                            != 2, mediaType mismatch, missing or ill-typed fields, bad
 *                            descriptor (mediaType, sha256/sha512 digest, integer size
 *                            [0, 2^53 - 1]), non-string annotation values, an image manifest
 *                            with "manifests" or an index with "config"/"layers" (ambiguous
 *                            documents, CVE-2021-41190), more than PT_MANIFEST_MAX_REFS
 *                            descriptors, a foreign layer URL that is not http(s) or has a
 *                            fragment;
 *   PT_E_NOMEM               allocation failed;
 *   PT_E_INTERNAL            out is NULL, or body is NULL with len > 0.
 * On any error *out is left zeroed and owns nothing (freeing it is harmless).
 */
int pt_manifest_parse(const void *body, size_t len, const char *content_type,
                      struct pt_manifest_info *out);

/* Frees what info owns and zeroes it. info may be NULL. */
void pt_manifest_info_free(struct pt_manifest_info *info);

/* 1 if mt (len bytes, borrowed, no parameters) is one of the four known manifest media types,
 * compared case-insensitively; else 0. */
int pt_manifest_media_type_known(const char *mt, size_t len);

#endif
