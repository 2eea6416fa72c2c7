/*
 * config.h - settings of the `portolan serve` daemon.
 *
 * Every setting has a default, a YAML key, an environment variable (PORTOLAN_ and the key in
 * upper case) and a command-line flag (the key with '_' written as '-'). The daemon builds
 * its configuration in four layers, later ones winning:
 *
 *     pt_config_defaults -> YAML file (--config FILE, else $PORTOLAN_CONFIG)
 *                        -> PORTOLAN_<KEY> variables -> the other flags
 *
 * and then calls pt_config_validate, which adds the checks that involve several settings.
 * A PORTOLAN_* variable that is neither a setting nor one of the variables the project reads
 * for other purposes (a table in config.c: PORTOLAN_USER, PORTOLAN_PASSWORD,
 * PORTOLAN_INITIAL_ADMIN_PASSWORD, PORTOLAN_AUTH, ...) nor a Kubernetes service link
 * (PORTOLAN_SERVICE_HOST, ...) is refused by name, so a mistyped setting is never ignored.
 * Messages name a variable but never quote the value of one that is not a setting.
 * Value syntax:
 *   sizes      plain bytes or an integer with a KiB, MiB, GiB or TiB suffix ("64GiB")
 *   durations  plain seconds or an integer with an s, m or h suffix ("90", "30m", "24h")
 *   booleans   true/false, yes/no, on/off (any case)
 *   listen     host:port with an IPv4 literal, a hostname or a bracketed IPv6 literal
 *   choice     one word of a fixed list ("linearizable" or "local" for tag_reads)
 * deploy/portolan.example.yaml documents every key. Errors are PT_E_CONFIG with a message
 * naming the offending key or flag written into the caller's errbuf.
 *
 * Cluster settings: cluster_file names the cluster file (replication/cluster_config.h); empty
 * means a single region without Raft. When it is set, pt_config_validate reads it and
 * requires region to name one of its regions, so a node never starts as a region the
 * cluster does not know. raft_listen is the address the Raft + peer port binds; empty means
 * this region's address in the cluster file; without cluster_file it is unused (a container
 * image sets it for single regions and clusters alike). The raft + peer port runs TLS 1.3 with
 * mutual authentication (peer_tls_cert, peer_tls_key, peer_tls_ca, all required with cluster_file);
 * peer_tls off is accepted only when every region's address and the bind address are
 * loopback (a cluster on one machine, for development). tag_reads, stale_fallback, write_timeout
 * and read_index_timeout are the read and write guarantees of DESIGN.md section 1.
 *
 * Access control: auth off is refused unless listen is a loopback address (127.0.0.0/8,
 * ::1, localhost); with it off the node serves everyone as before. metrics_listen, when set,
 * must not take the client port.
 */
#ifndef PT_CONFIG_H
#define PT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Largest YAML file accepted by pt_config_load_file. */
#define PT_CONFIG_FILE_MAX (1024 * 1024)

struct pt_config {
    char listen[256];              /* host:port to accept on */
    char data_dir[4096];           /* blobs, metadata and raft state live here */
    unsigned threads;              /* event-loop threads; 0 = one per core */
    char tls_cert[4096];           /* PEM certificate chain; "" = plain HTTP */
    char tls_key[4096];            /* PEM private key; set together with tls_cert */
    char tls_peer_ca[4096];        /* PEM CAs of other regions' HTTPS; "" = the system's */
    char region[64];               /* [a-z0-9-]{1,63} */
    uint64_t max_body_size;        /* bytes; largest request body (blob upload chunk) */
    uint64_t max_manifest_size;    /* bytes; largest manifest accepted */
    uint64_t body_spill_threshold; /* bytes; request bodies above this go to a temp file */
    uint64_t body_memory_limit;    /* bytes of anonymous memory above which bodies above 1 MiB
                                      spill whatever body_spill_threshold says */
    uint64_t request_timeout_ms;   /* whole-request time limit */
    uint64_t upload_ttl_ms;        /* unfinished uploads idle this long are removed */
    uint64_t gc_grace_ms;          /* blobs linked this recently are never collected */
    uint64_t gc_interval_ms; /* scheduled garbage collection on the leader; 0 = on demand only */
    unsigned gc_rate;        /* blobs examined per second by a pass; 0 = no limit */
    uint64_t retention_interval_ms; /* retention evaluated on the leader; 0 = on demand only */
    unsigned max_connections;       /* open client connections, all threads together */
    uint64_t header_timeout_ms;     /* HTTP/1 request headers must be complete within this */
    uint64_t keepalive_timeout_ms;  /* a connection idle this long (no request) is closed */
    unsigned max_connections_per_address; /* open client connections from one IP address */
    unsigned reserved_connections;        /* of max_connections, kept for small clients */
    unsigned http2_max_resets;            /* early-reset streams per HTTP/2 connection and second */
    int log_level;                        /* PT_LOG_* from log.h */
    int access_log;                       /* 1 = log one line per request */
    char cluster_file[4096];              /* cluster file; "" = single region, no Raft */
    char raft_listen[262];            /* host:port the Raft + peer port binds; "" = own address */
    int tag_reads;                    /* PT_TAG_READS_*: how tag resolution reads */
    int join;                         /* 1 = added to a running cluster: never bootstrap */
    unsigned snapshot_every;          /* Raft entries between snapshots */
    int stale_fallback;               /* 1 = no leader: answer stale reads (Warning 110), 0 = 503 */
    uint64_t write_timeout_ms;        /* a write waits this long for commit, then 503 */
    uint64_t shutdown_timeout_ms;     /* SIGTERM to exit: transfer, drain, close within this */
    uint64_t read_index_timeout_ms;   /* a linearizable read waits this long for the read index */
    unsigned replication_concurrency; /* background blob transfers from other regions at once */
    uint64_t replication_bandwidth;   /* bytes/s received for blob replication; 0 = no limit */
    int peer_tls;                     /* 1 = the raft + peer port runs mutual TLS (required) */
    char peer_tls_cert[4096];         /* PEM chain of this region, SAN DNS:<region> */
    char peer_tls_key[4096];          /* its PEM private key */
    char peer_tls_ca[4096];           /* PEM of the cluster CA, the only one peers may use */
    /* access control (README "Access control") */
    int auth;                               /* 1 = users, tokens and grants are enforced */
    char initial_admin_password_file[4096]; /* first administrator's password; "" = env/generated */
    uint64_t token_ttl_ms;                  /* access tokens from /token */
    uint64_t refresh_token_ttl_ms;          /* refresh tokens (offline_token=true) */
    char auth_service[256];                 /* challenge service and token audience */
    char public_url[1024];                  /* realm base; "" = cluster file url, else Host */
    char metrics_listen[256];               /* host:port serving /metrics alone; "" = on listen */
    int audit;                              /* PT_AUDIT_* */
    unsigned login_burst;                   /* failed logins per key before backing off */
    uint64_t login_window_ms;               /* window of login_burst */
    char disk_reserve[32]; /* free-space reserve: "auto", a size or "N%" (diskspace.h) */
};

/* Values of pt_config.audit. */
enum pt_audit_mode {
    PT_AUDIT_OFF = 0,    /* no audit records */
    PT_AUDIT_ON = 1,     /* hash-chained files under <data-dir>/audit/ */
    PT_AUDIT_STDERR = 2, /* one JSON line per record on stderr */
};

/* Values of pt_config.tag_reads. */
enum pt_tag_reads {
    PT_TAG_READS_LINEARIZABLE = 0, /* confirm the leader's commit index, then read locally */
    PT_TAG_READS_LOCAL = 1,        /* read the region's applied state as it is */
};

/* Fills c (borrowed) with every default; the result passes pt_config_validate. */
void pt_config_defaults(struct pt_config *c);

/*
 * Applies the YAML file at path (borrowed) on top of c: a top-level mapping of known keys to
 * scalar values, each key at most once, at most PT_CONFIG_FILE_MAX bytes. An empty file
 * changes nothing. On error c is left unchanged and errbuf (borrowed, may be NULL when
 * errlen is 0) gets "path:line: key: reason". Returns 0 or PT_E_CONFIG.
 */
int pt_config_load_file(struct pt_config *c, const char *path, char *errbuf, size_t errlen);

/*
 * Applies serve flags argv[0..argc) on top of c (argv and c borrowed; argv[0] is the first
 * flag, not the program name). "--config FILE" (or --config=FILE) is loaded first wherever
 * it appears and may be given once; the other flags then apply in order, the last of a
 * repeated flag winning. Every flag takes a value, as "--flag VALUE" or "--flag=VALUE";
 * booleans too ("--access-log off"). In the spaced form a value may not start with "--"
 * (use --flag=VALUE for that). Positional arguments, unknown flags and bad values are
 * refused. "--help" is not handled here: the caller checks for it and calls pt_config_usage.
 * On error c is left unchanged and errbuf names the flag. Returns 0 or PT_E_CONFIG.
 * Call pt_config_defaults before and pt_config_validate after.
 */
int pt_config_parse_args(struct pt_config *c, int argc, char **argv, char *errbuf, size_t errlen);

/*
 * Applies the PORTOLAN_<KEY> settings of envp (borrowed; "NAME=VALUE" strings, NULL-terminated,
 * e.g. environ; NULL = none) on top of c (borrowed), as described at the top of this file.
 * On error c is left unchanged and errbuf names the variable (an unknown one, one given twice,
 * or one whose value is refused). Returns 0 or PT_E_CONFIG.
 */
int pt_config_apply_env(struct pt_config *c, char *const *envp, char *errbuf, size_t errlen);

/*
 * The whole layering of `portolan serve` on top of c (borrowed): the YAML file of --config,
 * else of PORTOLAN_CONFIG in envp; then pt_config_apply_env(envp); then the flags as
 * pt_config_parse_args applies them. envp is borrowed and may be NULL (no environment). On
 * error c is left unchanged and errbuf names the flag, key or variable. Returns 0 or
 * PT_E_CONFIG. pt_config_parse_args(c, argc, argv, ...) is pt_config_parse with envp NULL.
 */
int pt_config_parse(struct pt_config *c, int argc, char **argv, char *const *envp, char *errbuf,
                    size_t errlen);

/*
 * Checks every setting of c (borrowed) and the rules between them: tls_cert and tls_key both
 * set or both empty; with cluster_file, the file loads
 * (pt_cluster_config_load), lists region, and the Raft bind address (raft_listen, else the
 * region's address) does not take the client listen port. Returns 0 or PT_E_CONFIG with
 * errbuf naming the key.
 */
int pt_config_validate(const struct pt_config *c, char *errbuf, size_t errlen);

/* Writes the flag list with value syntax and defaults to out (borrowed); no "Usage:" line,
 * the caller prints its own. */
void pt_config_usage(FILE *out);

/*
 * Splits c->listen into host (without IPv6 brackets) and port. host (borrowed, hostlen
 * bytes) is NUL-terminated. Returns 0, or PT_E_CONFIG if listen is malformed or the host
 * does not fit.
 */
int pt_config_listen_addr(const struct pt_config *c, char *host, size_t hostlen, unsigned *port);

/* Value syntax (sizes, durations, booleans, host:port) is base/units.h and base/addr.h. */

#endif
