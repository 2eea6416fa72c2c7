/*
 * admin_api.h - the admin API's contract, shared by the handlers that serve it
 * (http/api_admin.c, http/api_replication.c) and the client that speaks it (cli/).
 *
 * Every node serves these on its client port; bodies are JSON objects.
 *
 *   GET /admin/cluster/self
 *       200 {"cluster_id": str, "region": str, "id": int,
 *            "role": "leader" | "follower" | "candidate" | "standby" | "spare" | "unavailable",
 *            "term": int, "commit_index": int, "applied_index": int,
 *            "leader_id": int (0 = unknown), "leader_region": str ("" = unknown),
 *            "leader_url": str (the leader's client URL, "" = unknown),
 *            "last_contact_ms": int (since the last message from the leader),
 *            "address": str (raft + peer host:port), "url": str (client URL)}
 *       The region's own view; "unavailable" means its raft instance is not running.
 *   GET /admin/cluster
 *       200 {"cluster_id": str, "self": <the /admin/cluster/self object>,
 *            "regions": [{"name": str, "id": int, "address": str, "url": str,
 *                         "role": "voter" | "standby" | "spare"}, ...]}
 *       "regions" are the members of Raft's current configuration (at most 64). A single
 *       region (no Raft) answers without "regions" ({"role": "single", ...}).
 *   POST /admin/cluster/regions  {"name", "id", "address", "url", "role": "voter"|"standby"}
 *       201 <the region object as added>
 *   DELETE /admin/cluster/regions/<id>
 *       202 (body optional)
 *   POST /admin/cluster/transfer-leader  {"id": int} or {} (the leader picks a voter)
 *       202 (body optional)
 *   GET /admin/replication
 *       200 {"region": str, "in_sync": bool, "blobs_behind": int, "bytes_behind": int,
 *            "oldest_missing_age_s": number, "active": [{"digest", "size", "offset", "from"}],
 *            ... counters}: the region's blob replication.
 *   GET /admin/replication/image?name=<repo>&reference=<tag or digest>
 *       200 {"name", "reference", "digest", "regions": [str], "blobs": [{"digest": str,
 *            "size": int, "regions": [str]}], "complete": [str],
 *            "missing": {"<region>": {"blobs": int, "bytes": int}}}; 404 for an unknown image.
 *   GET /admin/gc
 *       200 {"region": str, "running": bool, "dry_run": bool, "phase": "idle" | "starting" |
 *            "marking", "blobs_examined": int, "candidates": int, "blobs_collected": int,
 *            "bytes_reclaimed": int, "links_removed": int (dry run), "started_ms": int,
 *            "finished_ms": int, "blobs": [{"digest": str, "size": int}] (at most 1000, of the
 *            last or current pass: collected, or that a dry run would collect), "truncated":
 *            bool, "error": str ("" = none), "files_deleted_total": int,
 *            "file_bytes_deleted_total": int, "files_swept_total": int (this region's files
 *            since start), "grace_ms": int, "interval_ms": int, "rate": int}
 *   POST /admin/gc[?dry_run=true|false]
 *       202 <the GET object>: a pass starts in this region (its collection is replicated to
 *       every region); 409 EXISTS while one runs. A client polls GET until "running" is false.
 *
 * Access control (every /admin/ route needs the ADMIN grant except auth/whoami and a user's
 * change of its own password; credentials: Authorization: Basic with a user's name and
 * password, or a token's id and secret). Grants travel as
 * {"pattern": "team/app-*", "actions": ["pull", "push", "delete", "admin"]}; times as RFC 3339
 * strings (UTC) or null for never.
 *   POST /admin/users  {"name": str, "password": str, "grants": [grant, ...]}
 *       201 {"name", "grants", "disabled": bool, "created"}; 409 when the name exists.
 *   GET /admin/users
 *       200 {"users": [{"name", "grants", "disabled", "created"}, ...]}
 *   DELETE /admin/users/<name>                     204
 *   PUT /admin/users/<name>/password  {"password": str}
 *       204; the user itself or an administrator.
 *   POST /admin/tokens  {"id"?: str, "grants": [grant, ...], "expires_in_s"?: int,
 *                        "description"?: str}
 *       201 {"id", "secret": "ptk_...", "grants", "expires", "created", "owner",
 *            "description"}: the only time the secret is shown. Without "id" the server
 *       picks one; the owner is the caller.
 *   GET /admin/tokens
 *       200 {"tokens": [{"id", "grants", "disabled", "expires", "created", "owner",
 *                        "description"}, ...]} (never a secret or its hash)
 *   DELETE /admin/tokens/<id>                      204 (revoked)
 *   POST /admin/tokens/<id>/disable, /admin/tokens/<id>/enable     204
 *   GET /admin/auth/anonymous                      200 {"rules": [pattern, ...]}
 *   POST /admin/auth/anonymous  {"pattern": str}   201
 *   DELETE /admin/auth/anonymous?pattern=<percent-encoded pattern>     204
 *   POST /admin/auth/keys/rotate                   201 {"kid": str}
 *   GET /admin/auth/whoami
 *       200 {"identity": "user:alice" | "token:ci" | "anonymous",
 *            "kind": "user" | "token" | "anonymous", "admin": bool}
 *   401 (no or wrong credentials) and 403 (not allowed) carry the error body below; a bad
 *   name, pattern, grant or password is 400 INVALID, an unknown user, token or rule 404, a
 *   duplicate (or removing the last administrator) 409 EXISTS. whoami also carries "name".
 *   Without access control (serve --auth off) these routes answer 404.
 *
 * Storage quotas and throttling (README "Storage quotas and throttling"; sizes in bytes):
 *   GET /admin/quotas
 *       200 {"quotas": [{"pattern": str, "limit": int, "used": int, "percent": number,
 *                        "repository": str | null}, ...], "registry": {"bytes", "blobs"}}
 *       "used" of "*" is the registry's; of a repository pattern, its fullest matching
 *       repository's ("repository"; of the first PT_METASTORE_LIST_MAX with blobs).
 *   POST /admin/quotas  {"pattern": "*" | repository pattern, "limit": int | "10GiB"}
 *       201 {"pattern", "limit"}: created or replaced in every region.
 *   DELETE /admin/quotas?pattern=<percent-encoded pattern>     204; 404 for an unknown one
 *   GET /admin/throttles
 *       200 {"throttles": [{"subject", "tier", "reads_per_minute", "writes_per_minute",
 *            "read_bytes_per_second", "write_bytes_per_second"}, ...],
 *            "tiers": {"basic": {...}, "standard": {...}, "premium": {...}}}
 *   POST /admin/throttles  {"subject": "default" | "anonymous" | "user:<name>" |
 *                           "token:<id>", "tier"?: "basic" | "standard" | "premium" | "custom",
 *                           "reads_per_minute"?, "writes_per_minute"?,
 *                           "read_bytes_per_second"?, "write_bytes_per_second"?: int}
 *       201 <the throttle object>: the tier's values (custom: 0 = no limit), each given field
 *       replacing its value (then the tier reads "custom").
 *   DELETE /admin/throttles?subject=<subject>                   204; 404 for an unknown one
 *   GET /admin/repos[?last=<repo>&n=<1..1000, default 100>]
 *       200 {"repositories": [{"name", "bytes", "blobs", "manifests", "tags"}, ...],
 *            "next": str | null}: repositories holding blobs, byte-wise by name after last;
 *       "next" is the last= of the following page. manifests and tags count up to 100000.
 *   A pattern or subject that is malformed is 400 INVALID. An upload or manifest refused by
 *   a quota is 403 DENIED with a message naming the quota; a request over its throttle is
 *   429 TOOMANYREQUESTS with Retry-After (seconds).
 *   Errors: any 4xx/5xx with {"errors": [{"code": str, "message": str}, ...]}, as the OCI
 *   distribution-spec's error body. Membership changes run on the leader only (elsewhere:
 *   503 UNAVAILABLE), so a client first asks the named region's /admin/cluster/self for
 *   the leader's URL and sends the change there; it may be redirected (307/308, method and
 *   body kept).
 */
#ifndef PT_ADMIN_API_H
#define PT_ADMIN_API_H

/* Paths, below PT_ADMIN_PREFIX. */
#define PT_ADMIN_PREFIX            "/admin/"
#define PT_ADMIN_CLUSTER           "cluster"
#define PT_ADMIN_CLUSTER_SELF      "cluster/self"
#define PT_ADMIN_REGIONS           "cluster/regions"
#define PT_ADMIN_TRANSFER_LEADER   "cluster/transfer-leader"
#define PT_ADMIN_REPLICATION       "replication"
#define PT_ADMIN_REPLICATION_IMAGE "replication/image"
#define PT_ADMIN_GC                "gc"
#define PT_ADMIN_USERS             "users"          /* + "/<name>" */
#define PT_ADMIN_USER_PASSWORD     "/password"      /* after "users/<name>" */
#define PT_ADMIN_TOKENS            "tokens"         /* + "/<id>" */
#define PT_ADMIN_TOKEN_DISABLE     "/disable"       /* after "tokens/<id>" */
#define PT_ADMIN_TOKEN_ENABLE      "/enable"        /* after "tokens/<id>" */
#define PT_ADMIN_ANONYMOUS         "auth/anonymous" /* DELETE takes ?pattern= */
#define PT_ADMIN_KEYS_ROTATE       "auth/keys/rotate"
#define PT_ADMIN_WHOAMI            "auth/whoami"
#define PT_ADMIN_BACKUP            "backup"    /* POST: a backup into <data>/backups */
#define PT_ADMIN_QUOTAS            "quotas"    /* DELETE takes ?pattern= */
#define PT_ADMIN_THROTTLES         "throttles" /* DELETE takes ?subject= */
#define PT_ADMIN_REPOS             "repos"     /* GET ?last=&n= */

/* Most regions listed in an image's replication status: a cluster has at most
 * PT_CLUSTER_REGIONS_MAX members; room for the records of regions removed since. */
#define PT_ADMIN_IMAGE_REGIONS_MAX 128

#endif
