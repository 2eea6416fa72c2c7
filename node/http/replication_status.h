/*
 * replication_status.h - the per-image blob replication summary that
 * GET /admin/replication/image serves (handler in api_replication.c).
 *
 * A struct pt_replication_image gathers what the handler read from the metadata store: the
 * regions of the cluster, and every blob (config and layers) an image references, each digest
 * once and in first-seen order, with the regions that hold it verified (blob_locations).
 * pt_replication_image_json then derives which regions hold every blob ("complete") and, for
 * the others, how many blobs and bytes they lack ("missing"). This part is pure: no I/O, no
 * clock, so it is unit-tested on its own.
 *
 * Limits: at most PT_REPLICATION_IMAGE_BLOBS_MAX distinct blobs and PT_ADMIN_IMAGE_REGIONS_MAX
 * regions per image; adding more fails with PT_E_TOO_LARGE and changes nothing.
 *
 * Threads: a struct pt_replication_image belongs to one thread at a time.
 */
#ifndef PT_REPLICATION_STATUS_H
#define PT_REPLICATION_STATUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "admin_api.h"
#include "bounds.h"
#include "digest.h"
#include "manifest.h"
#include "reference.h"

/* Most distinct blobs listed for one image (an index included): one manifest's limit. */
#define PT_REPLICATION_IMAGE_BLOBS_MAX PT_MANIFEST_MAX_REFS
/* Most manifests walked for one image: the image itself plus one index's children. */
#define PT_REPLICATION_IMAGE_MANIFESTS_MAX (PT_MANIFEST_MAX_REFS + 1)
struct pt_replication_blob {
    char digest[PT_DIGEST_STR_MAX + 1]; /* "sha256:<hex>" or "sha512:<hex>" */
    uint64_t size;
    /* Regions holding the blob verified, sorted byte-wise, without duplicates. Owned by the
     * image: the array and each string are released with free() by
     * pt_replication_image_free (pt_metastore_blob_regions' result can be moved in as is). */
    char **holders;
    size_t nholders;
};

struct pt_replication_gap {
    uint64_t blobs; /* blobs the region does not hold */
    uint64_t bytes; /* their total size, saturating at INT64_MAX */
};

struct pt_replication_image {
    char name[PT_NAME_MAX + 1];
    char reference[PT_DIGEST_INPUT_MAX + 1];  /* the tag or digest the caller asked for */
    char digest[PT_DIGEST_STR_MAX + 1];       /* the manifest it resolved to */
    char (*regions)[PT_CLUSTER_NAME_MAX + 1]; /* owned; sorted byte-wise, unique */
    size_t nregions;
    struct pt_replication_blob *blobs; /* owned; first-seen order, each digest once */
    size_t nblobs;
    /* private */
    size_t blobs_cap;
    uint32_t *slots; /* owned; open-addressing index of blobs by digest (position + 1) */
};

/* Zeroes img (borrowed): an empty image that owns nothing. */
void pt_replication_image_init(struct pt_replication_image *img);

/* Releases everything img owns (the holders of every blob included) and zeroes it. NULL is a
 * no-op. */
void pt_replication_image_free(struct pt_replication_image *img);

/*
 * Adds region (borrowed, NUL-terminated) to the regions of img, keeping them sorted; a region
 * already listed is left as it is. Returns 0, or PT_E_INTERNAL for an empty name or one
 * longer than PT_CLUSTER_NAME_MAX, PT_E_TOO_LARGE beyond PT_ADMIN_IMAGE_REGIONS_MAX
 * regions, PT_E_NOMEM.
 */
int pt_replication_image_add_region(struct pt_replication_image *img, const char *region);

/*
 * Appends the blob digest (borrowed) of size bytes unless it is listed already. Returns 0 when
 * added (blobs[nblobs - 1] is the new blob, with no holders), 1 when it was listed before
 * (nothing changes, the first size stays), PT_E_TOO_LARGE when PT_REPLICATION_IMAGE_BLOBS_MAX
 * blobs are listed already, PT_E_NOMEM.
 */
int pt_replication_image_add_blob(struct pt_replication_image *img, const struct pt_digest *digest,
                                  uint64_t size);

/* 1 if blob lists region (borrowed) among its holders, else 0. */
int pt_replication_blob_held_by(const struct pt_replication_blob *blob, const char *region);

/* What region (borrowed; need not be one of img's regions) lacks of img's blobs, into *out. */
void pt_replication_image_gap(const struct pt_replication_image *img, const char *region,
                              struct pt_replication_gap *out);

/*
 * The answer document (new reference, owned by the caller; NULL when out of memory):
 *   {"name", "reference", "digest", "regions": [every region of img],
 *    "blobs": [{"digest", "size", "regions": [holders]}],
 *    "complete": [regions holding every blob],
 *    "missing": {"<region>": {"blobs": N, "bytes": N}, ...}}
 * An image without blobs is complete in every region. img is borrowed.
 */
json_t *pt_replication_image_json(const struct pt_replication_image *img);

#endif
