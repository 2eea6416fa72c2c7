/*
 * metrics.h - Prometheus metrics for the HTTP server (text exposition format 0.0.4).
 *
 * Routes are small integers named once at start-up. Updates are lock-free (relaxed C11
 * atomics) and may come from any thread; pt_metrics_render reads the counters at scrape time.
 * Series exported:
 *   portolan_http_requests_total{route,method,code}        counter, only combinations seen
 *   portolan_http_request_duration_seconds{route,le}       histogram
 *   portolan_http_request_bytes_total{route}               counter (request body bytes)
 *   portolan_http_response_bytes_total{route}              counter (response body bytes)
 *   portolan_uploads_in_progress                           gauge
 *   portolan_upload_phase_seconds{phase,le}                histogram (pt_metrics_upload_phase)
 *   portolan_ready                                         gauge, 1 while /readyz says 200
 *   portolan_replication_* (blob replication, cluster only; see pt_metrics_replication)
 *   portolan_auth_* (access control; see pt_metrics_auth)
 *   portolan_throttled_requests_total{kind}, portolan_quota_refusals_total   counters
 *   (portolan_repo_usage_bytes and portolan_quota_* are appended by http/api_quota.c)
 *   portolan_disk_free_bytes, _reserve_bytes, _low (gauges), _refusals_total (diskspace.h)
 *   portolan_peer_refused_total{reason}                   counter (see pt_metrics_peer_refused)
 *   portolan_peer_relayed_connections{side}              gauge (see pt_metrics_relayed)
 *   portolan_raft_reads_total{path}                      counter (see pt_metrics_raft_read)
 *   portolan_raft_snapshot_*                             counters (see pt_metrics_snapshot)
 *   process_resident_memory_bytes, process_start_time_seconds   gauges
 * Methods are GET, HEAD, PUT, POST, PATCH, DELETE or "other"; status codes outside
 * PT_METRICS_CODES are counted as code="other".
 */
#ifndef PT_METRICS_H
#define PT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define PT_METRICS_MAX_ROUTES 16

/* Status codes with their own series; every other code is counted as "other". */
#define PT_METRICS_CODES                                                                           \
    200, 201, 202, 204, 206, 301, 307, 400, 401, 403, 404, 405, 413, 415, 416, 429, 500, 503, 507

/*
 * Names routes 0..nroutes-1 and zeroes every metric. route_names and the strings are
 * borrowed and must stay valid for the life of the process (static storage); nroutes above
 * PT_METRICS_MAX_ROUTES is cut to it. Call once at start-up, before any other thread
 * updates metrics.
 */
void pt_metrics_init(const char *const *route_names, size_t nroutes);

/*
 * Records one finished request: route id (ids >= the nroutes given to init are ignored),
 * method (borrowed, NUL-terminated, may be NULL = "other"), HTTP status, latency in seconds
 * (negative or NaN counts as 0), request and response body bytes.
 */
void pt_metrics_request(unsigned route, const char *method, int status, double seconds,
                        uint64_t bytes_in, uint64_t bytes_out);

/*
 * Canonical method name for a method that is not NUL-terminated (h2o's req->method):
 * returns "GET", ..., "DELETE" or "other", static storage, for pt_metrics_request.
 */
const char *pt_metrics_method(const char *method, size_t len);

/* Adds delta (+1 when an upload session starts, -1 when it ends) to uploads in progress. */
void pt_metrics_uploads_in_progress(int delta);
/*
 * Where the time of blob upload requests goes (portolan_upload_phase_seconds{phase}), one
 * observation per request and phase it went through:
 *   receive  from the first byte of the request to its handler: h2o reading the body, and
 *            spilling it to its temp file when larger than body_spill_threshold
 *   copy     copying the body out of h2o's buffer (only a body h2o holds in memory)
 *   write    writing the body to the upload file (page cache; writeback started); for a
 *            body copied in slices, one observation per slice, its hash included
 *   hash     SHA-256 of a spilled body (each piece hashed just before it is written, so
 *            write + hash is the time of the job)
 *   fsync    making the file durable: a commit's fsync of file and directory around the
 *            rename (a chunk is not fsync'd on its own)
 *   record   storing the session's state in the metadata store (PATCH, session POST)
 *   commit   the replicated metadata commit of the blob's link (raft)
 *   response from the end of the work to the answer handed to h2o
 *   total    from the first byte of the request to the answer handed to h2o
 * seconds below 0 or NaN count as 0. Any thread.
 */
enum {
    PT_METRICS_UP_RECEIVE = 0,
    PT_METRICS_UP_COPY,
    PT_METRICS_UP_WRITE,
    PT_METRICS_UP_HASH,
    PT_METRICS_UP_FSYNC,
    PT_METRICS_UP_RECORD,
    PT_METRICS_UP_COMMIT,
    PT_METRICS_UP_RESPONSE,
    PT_METRICS_UP_TOTAL,
    PT_METRICS_UP_N
};
void pt_metrics_upload_phase(int phase, double seconds);

/* Sets portolan_ready (1 ready, 0 not; see /readyz). */
void pt_metrics_ready(int ready);

/* Blob replication figures, published as a whole by replication/blob_sync.c (any thread). */
enum {
    PT_METRICS_REPL_RECEIVED = 0, /* counters */
    PT_METRICS_REPL_SENT,
    PT_METRICS_REPL_FETCHED,
    PT_METRICS_REPL_VERIFY_FAILURES,
    PT_METRICS_REPL_QUEUE, /* gauges */
    PT_METRICS_REPL_BEHIND_BLOBS,
    PT_METRICS_REPL_BEHIND_BYTES,
    PT_METRICS_REPL_OLDEST_MS,
    PT_METRICS_REPL_N
};
/* Sets every replication series (values borrowed); the series appear from the first call. */
void pt_metrics_replication(const uint64_t values[PT_METRICS_REPL_N]);

/* Access control (http/auth_gate.c), counted from any thread:
 *   portolan_auth_decisions_total{result="allowed|denied|unauthorized"}
 *   portolan_auth_logins_total{result="ok|failed|limited"}
 *   portolan_auth_token_cache_total{result="hit|miss"} */
enum {
    PT_METRICS_AUTH_ALLOWED = 0,
    PT_METRICS_AUTH_DENIED,
    PT_METRICS_AUTH_UNAUTHORIZED,
    PT_METRICS_AUTH_LOGIN_OK,
    PT_METRICS_AUTH_LOGIN_FAILED,
    PT_METRICS_AUTH_LOGIN_LIMITED,
    PT_METRICS_AUTH_CACHE_HIT,
    PT_METRICS_AUTH_CACHE_MISS,
    PT_METRICS_AUTH_N
};
/* Adds one to the series which (a PT_METRICS_AUTH_* value; others are ignored). */
void pt_metrics_auth(int which);
/* One request refused by throttling (read: a GET/HEAD, else a write). */
void pt_metrics_throttled(int read);
/* One upload or manifest refused by a storage quota. */
void pt_metrics_quota_refused(void);
/* Why the peer port closed a connection or turned one away (any thread). */
enum {
    PT_METRICS_PEER_RAFT_MESSAGE = 0, /* a raft message failed validation (raft_wire.h) */
    PT_METRICS_PEER_FRAME,            /* a peer frame too long, or over the frame budget */
    PT_METRICS_PEER_HANDSHAKE_LIMIT,  /* too many handshakes from one source address */
    PT_METRICS_PEER_RELAY,            /* a relay request refused (not a member, limits, loop) */
    PT_METRICS_PEER_N
};
/* Counts one refusal for reason (a PT_METRICS_PEER_* value; others are ignored). */
void pt_metrics_peer_refused(int reason);

/* Garbage collection of blobs (http/gc.c), any thread: a finished pass that collected
 * `collected` blobs of `bytes` bytes in this region, ending at end_ms (wall clock) after
 * duration_ms. Series: portolan_gc_last_run_timestamp_seconds, portolan_gc_blobs_collected_total,
 * portolan_gc_bytes_reclaimed_total, portolan_gc_duration_seconds (the last pass). Files deleted
 * after a collection applied are counted with pt_metrics_gc_reclaimed. */
void pt_metrics_gc_pass(int64_t end_ms, uint64_t duration_ms);
void pt_metrics_gc_reclaimed(uint64_t blobs, uint64_t bytes);

/* Retention (http/retention.c), any thread: a run (not a dry run) of this region that ended
 * at end_ms and deleted tags and manifests. Series:
 * portolan_retention_last_run_timestamp_seconds, portolan_retention_tags_deleted_total,
 * portolan_retention_manifests_deleted_total. */
void pt_metrics_retention_run(int64_t end_ms, uint64_t tags, uint64_t manifests);

/* Relayed connections open now (portolan_peer_relayed_connections{side}): SERVED are spliced
 * by this node for others, THROUGH are this node's own connections tunneled through a relay.
 * delta is +1 or -1. Any thread. */
enum { PT_METRICS_RELAY_SERVED = 0, PT_METRICS_RELAY_THROUGH, PT_METRICS_RELAY_N };
void pt_metrics_relayed(int side, int delta);

/* Linearizable reads (replication/raft_read_index.c), by how their read point was found
 * (portolan_raft_reads_total{path}): LEASE answered by the leader from its read lease, no
 * round trip; READ_INDEX a leader's read that waited for a barrier (no lease held: the
 * fallback); FORWARDED a follower's ReadIndex request to the leader (one per batch of reads).
 * Any thread. */
enum {
    PT_METRICS_READ_LEASE = 0,
    PT_METRICS_READ_INDEX,
    PT_METRICS_READ_FORWARDED,
    PT_METRICS_READ_N
};
void pt_metrics_raft_read(int path);

/* Raft snapshot files (replication/raft_fsm.c, raft_node_snap.c), any thread: add `bytes`
 * (and `ms` where it has a duration) to one event of kind. Series:
 *   portolan_raft_snapshots_total, _snapshot_bytes_total, _snapshot_seconds_total (written),
 *   portolan_raft_snapshot_restores_total, _restore_bytes_total, _restore_seconds_total,
 *   portolan_raft_snapshot_fetches_total{outcome="ok|failed"}, _fetch_bytes_total,
 *   portolan_raft_snapshot_served_bytes_total, _serve_refused_total. */
enum {
    PT_METRICS_SNAP_WRITTEN = 0, /* a snapshot file written (bytes, ms) */
    PT_METRICS_SNAP_RESTORED,    /* a store restored from a file (bytes, ms) */
    PT_METRICS_SNAP_FETCHED,     /* a file fetched from a peer (bytes, ms) */
    PT_METRICS_SNAP_FETCH_FAILED,
    PT_METRICS_SNAP_SERVED,        /* a piece of a file read for a peer (bytes) */
    PT_METRICS_SNAP_SERVE_REFUSED, /* a piece refused (bad name, range, busy, unknown) */
    PT_METRICS_SNAP_N
};
void pt_metrics_snapshot(int kind, uint64_t bytes, uint64_t ms);

/*
 * Renders every metric. On success *out is a malloc'd, NUL-terminated buffer owned by the
 * caller (free it) and *len its length without the NUL. Returns 0 or PT_E_NOMEM.
 */
int pt_metrics_render(char **out, size_t *len);
/* The process's anonymous resident memory in bytes (RssAnon of /proc/self/status: the heap,
 * not mapped files); -1 if unavailable. Any thread. */
long long pt_metrics_rss_anon(void);

#endif
