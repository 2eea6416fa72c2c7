/*
 * config.c - defaults, YAML file, flags and validation for `portolan serve`.
 *
 * Design: one table (options[]) describes every setting: YAML key, flag, value kind, where
 * it lives in struct pt_config, its limits, its default and its help text. Defaults, the
 * YAML loader, the flag parser, validation and the usage text all walk that table, so a
 * setting cannot have a flag without a key, a default that fails its own limits, or a
 * limit that is checked on one path and not another. Adding a setting is one row plus the
 * struct field (and a line in deploy/portolan.example.yaml).
 *
 * A value is parsed by its kind (size, duration, ...) and then checked against the row's
 * limits by the same function pt_config_validate uses. Loading and flag parsing work on a
 * copy of the caller's struct and copy it back only on success, so a refused file or flag
 * leaves the configuration as it was.
 *
 * The YAML file (config_yaml.c) and the environment layer (config_env.c) set values through
 * the same pt_config__set_value as the flags.
 *
 * Cluster settings are checked against the cluster file itself in pt_config_validate: the
 * file must load (replication/cluster_config.c owns its format) and name this node's region.
 */
#include "config.h"

#include "addr.h"
#include "bounds.h"
#include "cluster_config.h"
#include "diskspace.h"
#include "err.h"
#include "ident.h"
#include "log.h"
#include "units.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_int.h"

static const char *const tag_reads_choices[] = {
    [PT_TAG_READS_LINEARIZABLE] = "linearizable", [PT_TAG_READS_LOCAL] = "local", NULL};
static const char *const audit_choices[] = {
    [PT_AUDIT_OFF] = "off", [PT_AUDIT_ON] = "on", [PT_AUDIT_STDERR] = "stderr", NULL};

/* The words a choice kind accepts, indexed by the stored value; NULL-terminated. */
static const char *const *choices_of(enum kind k)
{
    switch (k) {
    case K_TAG_READS:
        return tag_reads_choices;
    case K_AUDIT:
        return audit_choices;
    default:
        return NULL;
    }
}

static size_t choice_count(enum kind k)
{
    const char *const *words = choices_of(k);
    size_t n = 0;

    while (words != NULL && words[n] != NULL)
        n++;
    return n;
}

#define FIELD(f) offsetof(struct pt_config, f), sizeof(((struct pt_config *)0)->f)

static const struct option options[] = {
    {"listen", "--listen", K_LISTEN, FIELD(listen), 1, 0, "127.0.0.1:5000", "HOST:PORT",
     "address to accept client connections on (IPv4, hostname or [IPv6])"},
    {"data_dir", "--data-dir", K_STRING, FIELD(data_dir), 1, 0, "./portolan-data", "DIR",
     "directory holding blobs, metadata and raft state"},
    {"threads", "--threads", K_UINT, FIELD(threads), 0, 1024, "0", "N",
     "event-loop threads, 0 = one per core"},
    {"tls_cert", "--tls-cert", K_STRING, FIELD(tls_cert), 0, 0, "", "FILE",
     "PEM certificate chain; empty = plain HTTP (set with tls_key)"},
    {"tls_key", "--tls-key", K_STRING, FIELD(tls_key), 0, 0, "", "FILE",
     "PEM private key for tls_cert"},
    {"region", "--region", K_REGION, FIELD(region), 0, 0, "local", "NAME",
     "region this node serves, [a-z0-9-]{1,63}"},
    {"max_body_size", "--max-body-size", K_SIZE, FIELD(max_body_size), 1, 16 * PT_TIB, "64GiB",
     "SIZE", "largest request body (blob or upload chunk)"},
    {"max_manifest_size", "--max-manifest-size", K_SIZE, FIELD(max_manifest_size), PT_KIB,
     PT_MANIFEST_MAX_BYTES, "4MiB", "SIZE", "largest manifest accepted (at most 4MiB)"},
    {"body_spill_threshold", "--body-spill-threshold", K_SIZE, FIELD(body_spill_threshold), 0,
     PT_GIB, "4MiB", "SIZE", "request bodies above this are buffered in a temp file"},
    {"body_memory_limit", "--body-memory-limit", K_SIZE, FIELD(body_memory_limit), 0, PT_TIB,
     "1GiB", "SIZE",
     "while the node's anonymous memory is above this, bodies above 1MiB go to a temp file"},
    {"request_timeout", "--request-timeout", K_DURATION, FIELD(request_timeout_ms), PT_SEC_MS,
     7 * PT_DAY_MS, "1h", "DURATION", "time limit for one whole request, body included"},
    {"upload_ttl", "--upload-ttl", K_DURATION, FIELD(upload_ttl_ms), PT_SEC_MS, 365 * PT_DAY_MS,
     "24h", "DURATION", "unfinished uploads idle this long are removed"},
    {"gc_grace", "--gc-grace", K_DURATION, FIELD(gc_grace_ms), 0, 365 * PT_DAY_MS, "1h", "DURATION",
     "garbage collection keeps a blob linked this recently even if no manifest references it"},
    {"gc_interval", "--gc-interval", K_DURATION, FIELD(gc_interval_ms), 0, 365 * PT_DAY_MS, "6h",
     "DURATION", "garbage collection runs this often on the leader region; 0 = only on demand"},
    {"retention_interval", "--retention-interval", K_DURATION, FIELD(retention_interval_ms), 0,
     365 * PT_DAY_MS, "1h", "DURATION",
     "retention rules are evaluated this often on the leader region; 0 = only on demand"},
    {"gc_rate", "--gc-rate", K_UINT, FIELD(gc_rate), 0, 10000000, "2000", "N",
     "blobs per second a garbage collection pass examines; 0 = no limit"},
    {"max_connections", "--max-connections", K_UINT, FIELD(max_connections), 1, 1048576, "4096",
     "N", "open client connections, all threads together"},
    {"header_timeout", "--header-timeout", K_DURATION, FIELD(header_timeout_ms), PT_SEC_MS,
     10 * PT_MIN_MS, "10s", "DURATION",
     "an HTTP/1 request whose headers are not complete this long after they began is closed"},
    {"keepalive_timeout", "--keepalive-timeout", K_DURATION, FIELD(keepalive_timeout_ms), PT_SEC_MS,
     PT_DAY_MS, "60s", "DURATION",
     "a connection with no request in progress and no traffic this long is closed"},
    {"max_connections_per_address", "--max-connections-per-address", K_UINT,
     FIELD(max_connections_per_address), 1, 1048576, "256", "N",
     "open client connections from one IP address"},
    {"reserved_connections", "--reserved-connections", K_UINT, FIELD(reserved_connections), 0,
     1048576, "256", "N", "of max_connections, kept for addresses holding at most 8 connections"},
    {"http2_max_resets", "--http2-max-resets", K_UINT, FIELD(http2_max_resets), 1, 1048576, "100",
     "N",
     "HTTP/2 streams reset before their response was sent, per connection and second; past it "
     "GOAWAY"},
    {"log_level", "--log-level", K_LOG_LEVEL, FIELD(log_level), 0, 0, "info", "LEVEL",
     "debug, info, warn or error"},
    {"access_log", "--access-log", K_BOOL, FIELD(access_log), 0, 0, "true", "BOOL",
     "log one line per request"},
    {"cluster_file", "--cluster-file", K_STRING, FIELD(cluster_file), 0, 0, "", "FILE",
     "regions of the cluster; empty = a single region without raft"},
    {"raft_listen", "--raft-listen", K_LISTEN, FIELD(raft_listen), 0, 0, "", "HOST:PORT",
     "raft + peer port to bind; empty = the region's address in cluster_file"},
    {"tag_reads", "--tag-reads", K_TAG_READS, FIELD(tag_reads), 0, 0, "linearizable", "MODE",
     "tag reads: linearizable (confirm the leader's commit) or local"},
    {"stale_fallback", "--stale-fallback", K_BOOL, FIELD(stale_fallback), 0, 0, "true", "BOOL",
     "no leader reachable: serve tag reads stale (Warning 110); false = 503"},
    {"shutdown_timeout", "--shutdown-timeout", K_DURATION, FIELD(shutdown_timeout_ms), PT_SEC_MS,
     PT_DAY_MS, "25s", "DURATION",
     "after SIGTERM: leadership handed over, connections drained and exit 0 within this"},
    {"write_timeout", "--write-timeout", K_DURATION, FIELD(write_timeout_ms), PT_SEC_MS,
     10 * PT_MIN_MS, "5s", "DURATION", "a write not committed within this gets 503"},
    {"read_index_timeout", "--read-index-timeout", K_DURATION, FIELD(read_index_timeout_ms),
     PT_SEC_MS, PT_MIN_MS, "1s", "DURATION", "a linearizable read waits this long for the leader"},
    {"snapshot_every", "--snapshot-every", K_UINT, FIELD(snapshot_every), 16, 1048576, "8192", "N",
     "Raft log entries between snapshots of the metadata (a quarter more are kept)"},
    {"join", "--join", K_BOOL, FIELD(join), 0, 0, "false", "BOOL",
     "a region added to a running cluster: never bootstrap, wait for `portolan cluster add`"},
    {"tls_peer_ca", "--tls-peer-ca", K_STRING, FIELD(tls_peer_ca), 0, 0, "", "FILE",
     "PEM CAs that sign other regions' HTTPS certificates (forwarded uploads); empty = the "
     "system's"},
    {"peer_tls", "--peer-tls", K_BOOL, FIELD(peer_tls), 0, 0, "true", "BOOL",
     "mutual TLS on the raft + peer port; off only where every raft address is loopback"},
    {"peer_tls_cert", "--peer-tls-cert", K_STRING, FIELD(peer_tls_cert), 0, 0, "", "FILE",
     "PEM certificate of this region for the raft + peer port (SAN DNS:<region>; `portolan "
     "cluster certs`)"},
    {"peer_tls_key", "--peer-tls-key", K_STRING, FIELD(peer_tls_key), 0, 0, "", "FILE",
     "PEM private key of peer_tls_cert"},
    {"peer_tls_ca", "--peer-tls-ca", K_STRING, FIELD(peer_tls_ca), 0, 0, "", "FILE",
     "PEM cluster CA: the only CA whose regions may connect to the raft + peer port"},
    {"replication_concurrency", "--replication-concurrency", K_UINT, FIELD(replication_concurrency),
     1, 256, "4", "N",
     "blobs fetched from other regions at once in the background (client pulls come on top)"},
    {"replication_bandwidth", "--replication-bandwidth", K_SIZE, FIELD(replication_bandwidth), 0,
     PT_TIB, "0", "SIZE",
     "bytes per second this region receives for blob replication; 0 = no limit"},
    {"auth", "--auth", K_BOOL, FIELD(auth), 0, 0, "on", "BOOL",
     "access control (users, tokens, grants); off only with a loopback listen address"},
    {"initial_admin_password_file", "--initial-admin-password-file", K_STRING,
     FIELD(initial_admin_password_file), 0, 0, "", "FILE",
     "password of the first administrator \"admin\" (else $PORTOLAN_INITIAL_ADMIN_PASSWORD, "
     "else generated into <data-dir>/initial-admin-password)"},
    {"token_ttl", "--token-ttl", K_DURATION, FIELD(token_ttl_ms), PT_SEC_MS, PT_DAY_MS, "5m",
     "DURATION", "lifetime of the access tokens /token issues"},
    {"refresh_token_ttl", "--refresh-token-ttl", K_DURATION, FIELD(refresh_token_ttl_ms), PT_MIN_MS,
     365 * PT_DAY_MS, "720h", "DURATION",
     "lifetime of the refresh tokens /token issues with offline_token=true"},
    {"auth_service", "--auth-service", K_STRING, FIELD(auth_service), 1, 0, "portolan", "NAME",
     "service name of the token challenge and the tokens' audience"},
    {"public_url", "--public-url", K_STRING, FIELD(public_url), 0, 0, "", "URL",
     "base URL clients reach this region at (token realm); empty = the region's url in "
     "cluster_file, else the request's scheme and Host"},
    {"metrics_listen", "--metrics-listen", K_LISTEN, FIELD(metrics_listen), 0, 0, "", "HOST:PORT",
     "serve /metrics only on this address (without access control); empty = on listen"},
    {"audit", "--audit", K_AUDIT, FIELD(audit), 0, 0, "on", "MODE",
     "audit log: on (<data-dir>/audit/), stderr, or off"},
    {"login_burst", "--login-burst", K_UINT, FIELD(login_burst), 1, 10000, "10", "N",
     "failed logins per user name or client address before they are slowed down"},
    {"login_window", "--login-window", K_DURATION, FIELD(login_window_ms), PT_SEC_MS, PT_DAY_MS,
     "1m", "DURATION", "window in which login_burst failures are counted"},
    {"disk_reserve", "--disk-reserve", K_RESERVE, FIELD(disk_reserve), 0, 0, "auto", "SIZE|N%",
     "free space kept on the data filesystems: below it writes get 507 and reads go on; auto = "
     "2GiB or 5% of the filesystem, whichever is smaller"},
};

#define NOPTIONS (sizeof options / sizeof options[0])
_Static_assert(NOPTIONS <= 64, "duplicate-key detection uses a 64-bit mask");

/* ---- value syntax ---------------------------------------------------------------------- */

/* ---- limits, shared by setting and validating ------------------------------------------ */

static int check_string(const struct option *o, const char *name, const char *v, char *err,
                        size_t errlen)
{
    size_t n = strlen(v);
    const char *why;

    if (n >= o->size)
        return pt_config__fail(err, errlen, "%s: value too long (%zu bytes, at most %zu)", name, n,
                               o->size - 1);
    switch (o->kind) {
    case K_LISTEN:
        if (n == 0 && o->min == 0)
            break;
        why = pt_addr_parse(v, NULL, 0, NULL, &why) != 0 ? why : NULL;
        if (why != NULL)
            return pt_config__fail(err, errlen, "%s: \"%.*s\": %s", name, QUOTE_MAX, v, why);
        break;
    case K_RESERVE: {
        struct pt_disk_reserve r;
        if (pt_disk_reserve_parse(v, &r) != 0)
            return pt_config__fail(
                err, errlen,
                "%s: \"%.*s\": expected auto, a size (e.g. 2GiB) or a percentage up to "
                "50%% (e.g. 5%%)",
                name, QUOTE_MAX, v);
        break;
    }
    case K_REGION:
        if (pt_ident_check_region(v, NULL) != 0)
            return pt_config__fail(err, errlen, "%s: \"%.*s\": must match [a-z0-9-]{1,63}", name,
                                   QUOTE_MAX, v);
        break;
    default:
        if (n < o->min)
            return pt_config__fail(err, errlen, "%s: must not be empty", name);
        break;
    }
    return 0;
}

static int check_number(const struct option *o, const char *name, uint64_t v, char *err,
                        size_t errlen)
{
    char a[32], b[32], c[32];

    switch (o->kind) {
    case K_BOOL:
        if (v > 1)
            return pt_config__fail(err, errlen, "%s: must be 0 or 1", name);
        return 0;
    case K_LOG_LEVEL:
        if (v > PT_LOG_ERROR)
            return pt_config__fail(err, errlen, "%s: not a log level", name);
        return 0;
    case K_TAG_READS:
    case K_AUDIT:
        if (v >= choice_count(o->kind))
            return pt_config__fail(err, errlen, "%s: not one of the choices", name);
        return 0;
    default:
        break;
    }
    if (v >= o->min && v <= o->max)
        return 0;
    if (o->kind == K_SIZE)
        return pt_config__fail(
            err, errlen, "%s: %s out of range %s..%s", name, pt_units_format_size(v, a, sizeof a),
            pt_units_format_size(o->min, b, sizeof b), pt_units_format_size(o->max, c, sizeof c));
    if (o->kind == K_DURATION)
        return pt_config__fail(err, errlen, "%s: %s out of range %s..%s", name,
                               pt_units_format_duration(v, a, sizeof a),
                               pt_units_format_duration(o->min, b, sizeof b),
                               pt_units_format_duration(o->max, c, sizeof c));
    return pt_config__fail(err, errlen, "%s: %llu out of range %llu..%llu", name,
                           (unsigned long long)v, (unsigned long long)o->min,
                           (unsigned long long)o->max);
}

/* Writes o's choices as "a|b|c" into buf. */
static const char *join_choices(const struct option *o, char *buf, size_t len)
{
    const char *const *words = choices_of(o->kind);
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; words[i] != NULL && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? "|" : "", words[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

static bool is_string_kind(enum kind k)
{
    return k == K_STRING || k == K_LISTEN || k == K_REGION || k == K_RESERVE;
}

/* Parses text v as option o's value, checks it and stores it into c. name is used in
 * messages ("--threads", "file.yaml:3: threads"). */
static int set_value(struct pt_config *c, const struct option *o, const char *name, const char *v,
                     char *err, size_t errlen)
{
    char *field = (char *)c + o->off;
    uint64_t n = 0;
    int b, rc;

    if (is_string_kind(o->kind)) {
        rc = check_string(o, name, v, err, errlen);
        if (rc != 0)
            return rc;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    }

    switch (o->kind) {
    case K_UINT: {
        const char *end;
        if (pt_units_parse_digits(v, &end, &n) != 0 || *end != '\0')
            return pt_config__fail(err, errlen, "%s: invalid number \"%.*s\"", name, QUOTE_MAX, v);
        break;
    }
    case K_SIZE:
        if (pt_units_parse_size(v, &n) != 0)
            return pt_config__fail(err, errlen,
                                   "%s: invalid size \"%.*s\" (bytes, or a KiB/MiB/GiB/TiB suffix)",
                                   name, QUOTE_MAX, v);
        break;
    case K_DURATION:
        if (pt_units_parse_duration(v, &n) != 0)
            return pt_config__fail(err, errlen,
                                   "%s: invalid duration \"%.*s\" (seconds, or an s/m/h suffix)",
                                   name, QUOTE_MAX, v);
        break;
    case K_BOOL:
        if (pt_units_parse_bool(v, &b) != 0)
            return pt_config__fail(err, errlen,
                                   "%s: invalid boolean \"%.*s\" (true/false/yes/no/on/off)", name,
                                   QUOTE_MAX, v);
        n = (uint64_t)b;
        break;
    case K_LOG_LEVEL:
        b = pt_log_level_parse(v);
        if (b < 0)
            return pt_config__fail(err, errlen,
                                   "%s: invalid log level \"%.*s\" (debug|info|warn|error)", name,
                                   QUOTE_MAX, v);
        n = (uint64_t)b;
        break;
    case K_TAG_READS:
    case K_AUDIT: {
        const char *const *words = choices_of(o->kind);
        size_t i;
        for (i = 0; words[i] != NULL && strcmp(words[i], v) != 0; i++)
            ;
        if (words[i] == NULL) {
            char list[128];
            return pt_config__fail(err, errlen, "%s: invalid value \"%.*s\" (expected %s)", name,
                                   QUOTE_MAX, v, join_choices(o, list, sizeof list));
        }
        n = i;
        break;
    }
    default:
        return pt_config__fail(err, errlen, "%s: unhandled setting kind", name);
    }
    rc = check_number(o, name, n, err, errlen);
    if (rc != 0)
        return rc;

    switch (o->kind) {
    case K_UINT:
        *(unsigned *)(void *)field = (unsigned)n;
        break;
    case K_SIZE:
    case K_DURATION:
        *(uint64_t *)(void *)field = n;
        break;
    default:
        *(int *)(void *)field = (int)n;
        break;
    }
    return 0;
}

static const struct option *find_key(const char *key)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (strcmp(options[i].key, key) == 0)
            return &options[i];
    }
    return NULL;
}

/* Finds a flag by name (name has the leading "--" and is namelen bytes long). */
static const struct option *find_flag(const char *name, size_t namelen)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (strlen(options[i].flag) == namelen && memcmp(options[i].flag, name, namelen) == 0)
            return &options[i];
    }
    return NULL;
}

size_t pt_config__noptions(void)
{
    return NOPTIONS;
}

const struct option *pt_config__option(size_t i)
{
    return i < NOPTIONS ? &options[i] : NULL;
}

const struct option *pt_config__find_key(const char *key)
{
    return find_key(key);
}

int pt_config__set_value(struct pt_config *c, const struct option *o, const char *name,
                         const char *v, char *err, size_t errlen)
{
    return set_value(c, o, name, v, err, errlen);
}

void pt_config_defaults(struct pt_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NOPTIONS; i++) {
        /* Defaults satisfy their own limits (checked by the unit tests), so this cannot
         * fail; the result is ignored rather than half-handled. */
        (void)set_value(c, &options[i], options[i].key, options[i].def, NULL, 0);
    }
}

/* The rules between the cluster settings and the cluster file; called once every setting
 * passed its own limits. */
static int validate_peer_tls(const struct pt_config *c, const struct pt_cluster_config *cc,
                             const char *bind_host, char *err, size_t errlen);

static int validate_cluster(const struct pt_config *c, char *err, size_t errlen)
{
    struct pt_cluster_config *cc;
    const struct pt_cluster_region *self;
    const char *bind, *why;
    char sub[512], chost[PT_HOST_MAX + 1], rhost[PT_HOST_MAX + 1];
    unsigned cport = 0, rport = 0;
    int rc;

    /* A single region runs no Raft and leaves raft_listen unused, so one setting (the
     * container image's PORTOLAN_RAFT_LISTEN) serves single regions and clusters alike. */
    if (c->cluster_file[0] == '\0')
        return 0;
    cc = malloc(sizeof *cc);
    if (cc == NULL)
        return pt_config__fail(err, errlen, "cluster_file: out of memory");
    rc = pt_cluster_config_load(cc, c->cluster_file, sub, sizeof sub);
    if (rc != 0) {
        rc = pt_config__fail(err, errlen, "cluster_file: %s", sub);
        goto out;
    }
    self = pt_cluster_config_find(cc, c->region);
    if (self == NULL) {
        char names[256];
        size_t used = 0;
        names[0] = '\0';
        for (size_t i = 0; i < cc->nregions && used < sizeof names; i++) {
            int n = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                             cc->regions[i].name);
            if (n < 0)
                break;
            used += (size_t)n;
        }
        rc = pt_config__fail(err, errlen,
                             "region: \"%s\" is not a region of cluster file %s (it lists %s)",
                             c->region, c->cluster_file, names);
        goto out;
    }
    bind = c->raft_listen[0] != '\0' ? c->raft_listen : self->address;
    why = pt_addr_parse(bind, rhost, sizeof rhost, &rport, &why) != 0 ? why : NULL;
    if (why == NULL)
        why = pt_addr_parse(c->listen, chost, sizeof chost, &cport, &why) != 0 ? why : NULL;
    if (why != NULL) {
        rc = pt_config__fail(err, errlen, "raft_listen: \"%.*s\": %s", QUOTE_MAX, bind, why);
        goto out;
    }
    if (rport == cport &&
        (strcmp(rhost, chost) == 0 || pt_addr_is_wildcard(rhost) || pt_addr_is_wildcard(chost))) {
        rc = pt_config__fail(err, errlen, "raft_listen: %s%s takes the client listen port %u of %s",
                             bind,
                             c->raft_listen[0] != '\0' ? "" : " (region's address in cluster_file)",
                             cport, c->listen);
        goto out;
    }
    rc = validate_peer_tls(c, cc, rhost, err, errlen);
out:
    free(cc);
    return rc;
}

/* Access control may only be switched off where nobody but this machine can connect; the
 * public URL, when given, is an http(s) base URL; the metrics port is not the client port. */
static int validate_auth(const struct pt_config *c, char *err, size_t errlen)
{
    char host[PT_HOST_MAX + 1], mhost[PT_HOST_MAX + 1];
    unsigned port = 0, mport = 0;

    if (pt_addr_parse(c->listen, host, sizeof host, &port, NULL) != 0)
        return pt_config__fail(err, errlen, "listen: malformed");
    if (!c->auth && !pt_addr_is_loopback(host))
        return pt_config__fail(
            err, errlen, "auth: off is only allowed when listen is a loopback address (%s is not)",
            c->listen);
    if (c->public_url[0] != '\0') {
        size_t n = strlen(c->public_url);
        if ((strncmp(c->public_url, "http://", 7) != 0 &&
             strncmp(c->public_url, "https://", 8) != 0) ||
            strpbrk(c->public_url, " \"\\?#") != NULL || n > 512)
            return pt_config__fail(err, errlen,
                                   "public_url: \"%.*s\" is not an http:// or https:// base URL",
                                   QUOTE_MAX, c->public_url);
    }
    if (strpbrk(c->auth_service, " \",\\") != NULL || strlen(c->auth_service) > 200)
        return pt_config__fail(err, errlen,
                               "auth_service: no spaces, quotes, commas or backslashes");
    if (c->metrics_listen[0] != '\0') {
        if (pt_addr_parse(c->metrics_listen, mhost, sizeof mhost, &mport, NULL) != 0)
            return pt_config__fail(err, errlen, "metrics_listen: malformed");
        if (mport == port)
            return pt_config__fail(err, errlen,
                                   "metrics_listen: must not take the client listen port %u", port);
    }
    if (c->refresh_token_ttl_ms < c->token_ttl_ms)
        return pt_config__fail(err, errlen, "refresh_token_ttl: shorter than token_ttl");
    return 0;
}

/* Peer TLS is the default with a cluster file: all three files, or an explicit peer_tls off
 * on a cluster whose raft addresses (and bind host) are all loopback. */
static int validate_peer_tls(const struct pt_config *c, const struct pt_cluster_config *cc,
                             const char *bind_host, char *err, size_t errlen)
{
    char host[PT_HOST_MAX + 1];

    if (c->peer_tls) {
        if (c->peer_tls_cert[0] == '\0' || c->peer_tls_key[0] == '\0' || c->peer_tls_ca[0] == '\0')
            return pt_config__fail(
                err, errlen,
                "peer_tls: a cluster needs peer_tls_cert, peer_tls_key and peer_tls_ca "
                "(make them with `portolan cluster certs`); peer_tls off is accepted only "
                "when every raft address is loopback");
        return 0;
    }
    if (!pt_addr_is_loopback(bind_host))
        return pt_config__fail(
            err, errlen,
            "peer_tls: off is accepted only on loopback, and the raft bind address %s is "
            "not: set peer_tls_cert, peer_tls_key and peer_tls_ca",
            bind_host);
    for (size_t i = 0; i < cc->nregions; i++) {
        if (pt_addr_parse(cc->regions[i].address, host, sizeof host, NULL, NULL) != 0 ||
            !pt_addr_is_loopback(host))
            return pt_config__fail(
                err, errlen,
                "peer_tls: off is accepted only on loopback, and region %s's raft address "
                "%s is not: set peer_tls_cert, peer_tls_key and peer_tls_ca",
                cc->regions[i].name, cc->regions[i].address);
    }
    return 0;
}

int pt_config_validate(const struct pt_config *c, char *err, size_t errlen)
{
    int rc;

    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct option *o = &options[i];
        const char *field = (const char *)c + o->off;
        uint64_t n;

        if (is_string_kind(o->kind)) {
            if (memchr(field, '\0', o->size) == NULL)
                return pt_config__fail(err, errlen, "%s: value not terminated", o->key);
            rc = check_string(o, o->key, field, err, errlen);
        } else {
            switch (o->kind) {
            case K_UINT:
                n = *(const unsigned *)(const void *)field;
                break;
            case K_SIZE:
            case K_DURATION:
                n = *(const uint64_t *)(const void *)field;
                break;
            default: {
                int v = *(const int *)(const void *)field;
                /* Negative ints become huge and fail the range check. */
                n = v < 0 ? UINT64_MAX : (uint64_t)v;
                break;
            }
            }
            rc = check_number(o, o->key, n, err, errlen);
        }
        if (rc != 0)
            return rc;
    }
    if ((c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0')) {
        if (c->tls_key[0] == '\0')
            return pt_config__fail(err, errlen, "tls_key: must be set when tls_cert is set");
        return pt_config__fail(err, errlen, "tls_cert: must be set when tls_key is set");
    }
    if ((rc = validate_auth(c, err, errlen)) != 0)
        return rc;
    return validate_cluster(c, err, errlen);
}

int pt_config_listen_addr(const struct pt_config *c, char *host, size_t hostlen, unsigned *port)
{
    if (memchr(c->listen, '\0', sizeof c->listen) == NULL)
        return PT_E_CONFIG;
    if (host != NULL && hostlen == 0)
        return PT_E_CONFIG;
    if (pt_addr_parse(c->listen, host, hostlen, port, NULL) != 0)
        return PT_E_CONFIG;
    return 0;
}

void pt_config_usage(FILE *out)
{
    fprintf(out, "Flags (--FLAG VALUE or --FLAG=VALUE; later flags override the file):\n"
                 "  --config FILE                      YAML file read before the other flags\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct option *o = &options[i];
        char left[64];

        snprintf(left, sizeof left, "%s %s", o->flag, o->metavar);
        fprintf(out, "  %-34s %s (default \"%s\")\n", left, o->help, o->def);
    }
    fprintf(out,
            "\nEvery flag is also a YAML key: --max-body-size is max_body_size, and an\n"
            "environment variable: PORTOLAN_MAX_BODY_SIZE. Precedence, lowest first: default,\n"
            "YAML file (--config FILE, else $PORTOLAN_CONFIG), PORTOLAN_<KEY>, flag. An unknown\n"
            "PORTOLAN_* variable is refused, except these, read for other purposes:");
    pt_config__env_usage(out);
    fprintf(out,
            ".\n"
            "SIZE is bytes or a KiB/MiB/GiB/TiB suffix; DURATION is seconds or an s/m/h suffix;\n"
            "BOOL is true/false, yes/no or on/off.\n");
}

/* ---- flags ----------------------------------------------------------------------------- */

static bool is_config_flag(const char *name, size_t namelen)
{
    return namelen == 8 && memcmp(name, "--config", 8) == 0;
}

/* An unknown flag is named as such, before anything is said about its value. */
static int check_known(const char *name, size_t namelen, char *err, size_t errlen)
{
    if (is_config_flag(name, namelen) || find_flag(name, namelen) != NULL)
        return 0;
    return pt_config__fail(err, errlen, "unknown flag \"%.*s\"",
                           (int)(namelen < QUOTE_MAX ? namelen : QUOTE_MAX), name);
}

/*
 * Reads the flag at argv[*i]: sets name/namelen (with the "--") and value, and advances *i
 * past the flag and its value. Returns 0 or PT_E_CONFIG (also for a flag that is not one of
 * options[] nor --config).
 */
static int next_flag(int argc, char **argv, int *i, const char **name, size_t *namelen,
                     const char **value, char *err, size_t errlen)
{
    const char *a = argv[*i];
    const char *eq;

    if (a == NULL || strncmp(a, "--", 2) != 0 || a[2] == '\0' || a[2] == '=')
        return pt_config__fail(err, errlen, "unexpected argument \"%.*s\" (flags are --name VALUE)",
                               QUOTE_MAX, a ? a : "");
    eq = strchr(a, '=');
    *name = a;
    if (eq != NULL) {
        *namelen = (size_t)(eq - a);
        *value = eq + 1;
        *i += 1;
        return check_known(a, *namelen, err, errlen);
    }
    *namelen = strlen(a);
    if (check_known(a, *namelen, err, errlen) != 0)
        return PT_E_CONFIG;
    /* A value that looks like a flag is most likely a forgotten value; one that really
     * starts with "--" can be given as --flag=VALUE. */
    if (*i + 1 >= argc || argv[*i + 1] == NULL || strncmp(argv[*i + 1], "--", 2) == 0)
        return pt_config__fail(err, errlen, "%.*s: missing value", QUOTE_MAX, a);
    *value = argv[*i + 1];
    *i += 2;
    return 0;
}

int pt_config_parse_args(struct pt_config *c, int argc, char **argv, char *err, size_t errlen)
{
    return pt_config_parse(c, argc, argv, NULL, err, errlen);
}

int pt_config_parse(struct pt_config *c, int argc, char **argv, char *const *envp, char *err,
                    size_t errlen)
{
    struct pt_config tmp = *c;
    const char *config_path = NULL;
    const char *name = NULL, *value = NULL;
    size_t namelen = 0;
    int i, rc;

    /* Pass 1: structure, known flags, and the config file. */
    for (i = 0; i < argc;) {
        rc = next_flag(argc, argv, &i, &name, &namelen, &value, err, errlen);
        if (rc != 0)
            return rc;
        if (is_config_flag(name, namelen)) {
            if (config_path != NULL)
                return pt_config__fail(err, errlen, "--config: given more than once");
            if (value[0] == '\0')
                return pt_config__fail(err, errlen, "--config: missing file name");
            config_path = value;
        }
    }
    if (config_path == NULL && (config_path = pt_config__env_config_path(envp)) != NULL &&
        config_path[0] == '\0')
        return pt_config__fail(err, errlen,
                               "PORTOLAN_CONFIG: missing file name (unset it for no file)");
    if (config_path != NULL) {
        rc = pt_config_load_file(&tmp, config_path, err, errlen);
        if (rc != 0)
            return rc;
    }
    /* The environment over the file. */
    rc = pt_config_apply_env(&tmp, envp, err, errlen);
    if (rc != 0)
        return rc;
    /* Pass 2: the flags, in order, over the file and the environment. */
    for (i = 0; i < argc;) {
        const struct option *o;

        next_flag(argc, argv, &i, &name, &namelen, &value, err, errlen);
        if (is_config_flag(name, namelen))
            continue;
        o = find_flag(name, namelen);
        rc = set_value(&tmp, o, o->flag, value, err, errlen);
        if (rc != 0)
            return rc;
    }
    *c = tmp;
    return 0;
}
