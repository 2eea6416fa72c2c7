/*
 * ident.h - names, ids and roles of a cluster and its regions.
 *
 *   cluster id  [A-Za-z0-9._-]{1,PT_CLUSTER_ID_MAX}
 *   region      [a-z0-9-]{1,PT_CLUSTER_NAME_MAX}
 *   server id   decimal 1..PT_CLUSTER_SERVER_ID_MAX (a Raft server id, also a JSON integer)
 *   role        voter | standby | spare
 *
 * Role values equal canonical/raft's RAFT_STANDBY, RAFT_VOTER and RAFT_SPARE, so they can be
 * handed to raft_configuration_add and raft_assign unchanged (replication/ asserts it).
 * Strings are borrowed; pure functions: any thread.
 */
#ifndef PT_IDENT_H
#define PT_IDENT_H

#include <stdint.h>

#include "bounds.h"

/* Region roles; the values are canonical/raft's RAFT_STANDBY, RAFT_VOTER, RAFT_SPARE. */
enum pt_cluster_role {
    PT_CLUSTER_STANDBY = 0, /* replicates the log, not part of the quorum */
    PT_CLUSTER_VOTER = 1,   /* replicates the log and votes */
    PT_CLUSTER_SPARE = 2,   /* a member that neither replicates nor votes */
};

/* One region of a cluster, as the cluster file and the admin API name it. */
struct pt_cluster_region {
    char name[PT_CLUSTER_NAME_MAX + 1];       /* region name, the value of serve's --region */
    uint64_t id;                              /* Raft server id, 1..PT_CLUSTER_SERVER_ID_MAX */
    char address[PT_CLUSTER_ADDRESS_MAX + 1]; /* Raft + peer port, host:port */
    char url[PT_CLUSTER_URL_MAX + 1];         /* client URL, http(s)://host[:port] */
    int role;                                 /* enum pt_cluster_role */
};

/* Each returns 0, or PT_E_CONFIG with a static reason in *why (why may be NULL). */
int pt_ident_check_cluster_id(const char *s, const char **why);
int pt_ident_check_region(const char *s, const char **why);

/* Parses a decimal server id; *id is written only on success. Returns 0 or PT_E_CONFIG. */
int pt_ident_parse_server_id(const char *s, uint64_t *id);

/* Parses "voter", "standby" or "spare" into *role. Returns 0 or PT_E_CONFIG. */
int pt_ident_parse_role(const char *s, int *role);

/* The word for role ("unknown" for a value that is none); a static string. */
const char *pt_ident_role_name(int role);

#endif
