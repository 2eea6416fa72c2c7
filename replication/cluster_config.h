/*
 * cluster_config.h - the cluster file: which regions form one Portolan cluster.
 *
 * Every node of a multi-region cluster is started with the same cluster file
 * (`portolan serve --cluster-file FILE --region NAME`). It names the cluster and lists each
 * region once: its name, its Raft server id, the address of its Raft + peer port and the URL
 * its clients use. deploy/cluster.example.yaml documents the format:
 *
 *     cluster_id: portolan-local        # [A-Za-z0-9._-]{1,64}
 *     regions:                          # 1..64 entries
 *       - name: region-a                # [a-z0-9-]{1,63}, unique
 *         id: 1                         # Raft server id, 1..2^63-1, unique
 *         address: 127.0.0.1:7001       # host:port (name, IPv4 or [IPv6]), unique
 *         url: http://127.0.0.1:5001    # http(s)://host[:port], unique
 *         role: voter                   # voter (default) | standby | spare
 *
 * The file seeds Raft's configuration when a cluster is bootstrapped; later membership
 * changes go through Raft (`portolan cluster add/remove`), not through the file. The parser is
 * as strict as the serve configuration's: unknown keys, keys given twice, aliases, nested
 * values where a scalar belongs, a second document and every out-of-limit value are refused
 * with "path:line: key: reason". At least one region must be a voter (Raft needs a quorum).
 *
 * Ids stop at 2^63-1 so that every id is also a JSON integer on the admin API (jansson's
 * json_int_t is signed 64-bit). An address must be one peers can connect to: 0.0.0.0 and [::]
 * are refused (bind to every interface with serve's --raft-listen instead). A URL is a scheme
 * and an authority only; a single trailing '/' is dropped when loading.
 *
 * Role values equal canonical/raft's RAFT_STANDBY, RAFT_VOTER and RAFT_SPARE, so they can be
 * handed to raft_configuration_add and raft_assign unchanged.
 *
 * Nothing here keeps state or starts threads: every function may be called from any thread.
 */
#ifndef PT_CLUSTER_CONFIG_H
#define PT_CLUSTER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "ident.h"

/* Largest cluster file accepted, in bytes. */
#define PT_CLUSTER_FILE_MAX (256 * 1024)

struct pt_cluster_config {
    char cluster_id[PT_CLUSTER_ID_MAX + 1];
    size_t nregions; /* 1..PT_CLUSTER_REGIONS_MAX once loaded */
    struct pt_cluster_region regions[PT_CLUSTER_REGIONS_MAX];
};

/*
 * Reads and checks the cluster file at path (borrowed), at most PT_CLUSTER_FILE_MAX bytes.
 * c (borrowed, about 54 KiB: keep it off small stacks) is written only on success. On error
 * errbuf (borrowed; may be NULL when errlen is 0) gets "path:line: key: reason".
 * Returns 0 or PT_E_CONFIG.
 */
int pt_cluster_config_load(struct pt_cluster_config *c, const char *path, char *errbuf,
                           size_t errlen);

/*
 * Same as pt_cluster_config_load for the YAML text[0..len) (borrowed; need not be
 * NUL-terminated); name (borrowed) stands for the path in messages.
 */
int pt_cluster_config_parse(struct pt_cluster_config *c, const char *text, size_t len,
                            const char *name, char *errbuf, size_t errlen);

/*
 * Checks a whole configuration built by code (c borrowed): the cluster id, 1..64 regions each
 * passing pt_cluster_config_check_region, unique names, ids, addresses and URLs, and at least
 * one voter. errbuf names the region ("regions[2].url: ..."). Returns 0 or PT_E_CONFIG.
 */
int pt_cluster_config_validate(const struct pt_cluster_config *c, char *errbuf, size_t errlen);

/*
 * Checks the fields of one region (r borrowed), e.g. one received on the admin API. errbuf
 * gets "key: reason". Returns 0 or PT_E_CONFIG.
 */
int pt_cluster_config_check_region(const struct pt_cluster_region *r, char *errbuf, size_t errlen);

/* Single values (cluster id, region name, server id, role, address, URL) are checked by
 * base/ident.h and base/addr.h. */

struct pt_region_rec;
/*
 * Name and client URL of region id: its entry in c (NULL allowed), else its replicated record
 * among recs[0..nrecs) (a region added after start-up); both "" when neither knows it. The
 * strings are borrowed from c or recs.
 */
void pt_cluster_config_describe(const struct pt_cluster_config *c, const struct pt_region_rec *recs,
                                size_t nrecs, uint64_t id, const char **name, const char **url);

/* The region of c (borrowed) named name (borrowed), or NULL. The result points into c. */
const struct pt_cluster_region *pt_cluster_config_find(const struct pt_cluster_config *c,
                                                       const char *name);

/* The region of c (borrowed) with server id id, or NULL. The result points into c. */
const struct pt_cluster_region *pt_cluster_config_find_id(const struct pt_cluster_config *c,
                                                          uint64_t id);

#endif
