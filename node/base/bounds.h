/*
 * bounds.h - the one definition of each length and count that several layers share: names
 * and addresses of a cluster's regions, repository names, tags and upload ids. A layer that
 * needs such a limit includes this header instead of writing the number again; limits that
 * belong to one module stay in its header (digest lengths in oci/digest.h, frame sizes in the
 * transport).
 */
#ifndef PT_BOUNDS_H
#define PT_BOUNDS_H

#include <stdint.h>

/* Longest RFC 1123 hostname, and longest label of one. */
#define PT_HOST_MAX       253
#define PT_HOST_LABEL_MAX 63

/* A cluster: its id, a region's name, a region's Raft + peer address (host:port, the host
 * bracketed when IPv6), a region's client URL, in bytes without the NUL. */
#define PT_CLUSTER_ID_MAX      64
#define PT_CLUSTER_NAME_MAX    63
#define PT_CLUSTER_ADDRESS_MAX (PT_HOST_MAX + 8)
#define PT_CLUSTER_URL_MAX     511
/* Most regions in one cluster, and the largest Raft server id (a JSON integer too). */
#define PT_CLUSTER_REGIONS_MAX   64
#define PT_CLUSTER_SERVER_ID_MAX ((uint64_t)INT64_MAX)

/* Repository name and tag (OCI distribution-spec; Distribution's limits). */
#define PT_NAME_MAX 255
#define PT_TAG_MAX  128

/* Upload session id in /v2/<name>/blobs/uploads/<id>: the longest the router accepts, the
 * longest the blob store makes (an id prefix and a UUID) and the key of its session record. */
#define PT_UPLOAD_ID_MAX 64

/* Largest manifest body, in bytes: what the parser accepts (oci/manifest.h), the store keeps
 * (store/metastore.h) and max_manifest_size may be set to (config). The distribution-spec
 * suggests accepting at least 4 MiB; DESIGN.md section 3 makes it the limit. */
#define PT_MANIFEST_MAX_BYTES (4u * 1024u * 1024u)

#endif
