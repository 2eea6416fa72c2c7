/*
 * cli_int.h - what the pieces of the admin client share (private to node/cli/).
 *
 *   cli.c          entry points (cli.h): pick the command, set up libcurl, run it
 *   args.c         command names, flags and their checks, the image argument, usage texts
 *   client.c       one admin request over libcurl, many at once, reading answers and
 *                  printing error bodies
 *   table.c        terminal output: cleaning server strings, cells, column tables, JSON
 *   members.c      a cluster's membership as /admin/cluster reports it, and asking every
 *                  member for something in parallel
 *   cluster.c      `portolan cluster status|add|remove|transfer-leader`
 *   replication.c  `portolan replication status` (every region, or one image)
 *   credentials.c  which user and password the admin requests carry (--user and
 *                  --password-stdin, PORTOLAN_USER/PORTOLAN_PASSWORD, registry auth files),
 *                  reading secrets from standard input or the terminal
 *   credfile.c     the registry clients' auth files (credfile.h)
 *   users.c        `portolan user add|remove|list|passwd`
 *   tokens.c       `portolan token create|list|revoke|disable|enable`
 *   access.c       `portolan auth anonymous list|add|remove`, `auth whoami`, `auth rotate-key`
 *   auditlog.c     `portolan audit verify|tail` (local files, no HTTP)
 *   certs.c        `portolan cluster certs`: the peer port's CA and region certificates
 *   policy_args.c  the command line and run of quota.c, throttle.c, repo_usage.c
 *   quota.c        `portolan quota set|list|remove`
 *   throttle.c     `portolan throttle set|list|remove`
 *   repo_usage.c   `portolan repo list [--usage]`
 *
 * Everything here runs on the caller's thread and blocks; nothing is shared between threads.
 * Strings a server sent reach the terminal only through cli_clean or after a check with the
 * cluster file's rules (ident.h, addr.h).
 */
#ifndef PT_CLI_INT_H
#define PT_CLI_INT_H

#include "buf.h"
#include "bounds.h"
#include "credfile.h"
#include "digest.h"
#include "ident.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_URL_MAX (PT_CLUSTER_URL_MAX + 512) /* a base URL plus an admin path and query */

/* ---- args.c ---------------------------------------------------------------------------- */

enum cli_cmd {
    CMD_STATUS,
    CMD_ADD,
    CMD_REMOVE,
    CMD_TRANSFER,
    CMD_REPLICATION,
    CMD_USER_ADD,
    CMD_USER_REMOVE,
    CMD_USER_LIST,
    CMD_USER_PASSWD,
    CMD_TOKEN_CREATE,
    CMD_TOKEN_LIST,
    CMD_TOKEN_REVOKE,
    CMD_TOKEN_DISABLE,
    CMD_TOKEN_ENABLE,
    CMD_ANON_LIST,
    CMD_ANON_ADD,
    CMD_ANON_REMOVE,
    CMD_WHOAMI,
    CMD_ROTATE_KEY,
    CMD_AUDIT_VERIFY,
    CMD_AUDIT_TAIL,
    CMD_BACKUP,
    CMD_GC_RUN,
    CMD_GC_STATUS,
    CMD_QUOTA,     /* `quota set|list|remove` (quota.c; verb parsed there) */
    CMD_THROTTLE,  /* `throttle set|list|remove` (throttle.c) */
    CMD_REPO_LIST, /* `repo list [--usage]` (repo_usage.c) */
    CMD_REPO,      /* repo lock|unlock|show (repo.c parses its own operands and flags) */
    CMD_TAG_RULE,  /* tag-rule add|list|remove (tagrule.c) */
    CMD_RETENTION, /* retention add|list|remove|run (retention.c) */
    CMD_COUNT
};
#define CLI_CLUSTER_CMDS 4 /* the first four are `portolan cluster` commands */

/* Indexed by enum cli_cmd: the name typed after the group ("anonymous list" for the two
 * words of `auth anonymous list`), and the title messages use ("portolan <title>: ..."). */
extern const char *const cli_cmd_names[];
extern const char *const cli_cmd_titles[];

/* Flags, as bits of cli_opts.given. */
enum cli_flag {
    F_REGION,
    F_JSON,
    F_CACERT,
    F_TIMEOUT,
    F_NAME,
    F_ID,
    F_ADDRESS,
    F_URL,
    F_ROLE,
    F_USER,
    F_PASSWORD_STDIN,
    F_GRANT,
    F_ADMIN,
    F_TOKEN_ID,
    F_EXPIRES,
    F_DESCRIPTION,
    F_DATA_DIR,
    F_LINES,
    F_FOLLOW,
    F_DRY_RUN
};

/* Action bits of a grant, as the server's (auth/pattern.h PT_ACTION_*). */
enum { CLI_PULL = 1, CLI_PUSH = 2, CLI_DELETE = 4, CLI_ADMIN = 8 };
#define CLI_GRANTS_MAX      32  /* grants a user or token holds (PT_AUTH_GRANTS_MAX) */
#define CLI_PATTERN_MAX     255 /* a repository pattern (PT_AUTH_PATTERN_MAX) */
#define CLI_NAME_MAX        64  /* user names and token ids (PT_AUTH_NAME_MAX) */
#define CLI_DESCRIPTION_MAX 255
#define CLI_FILES_MAX       64 /* files named to `audit verify` */

struct cli_grant {
    char pattern[CLI_PATTERN_MAX + 1];
    unsigned actions; /* CLI_* bits */
};

/* The credentials the admin requests carry, and where they came from. */
struct cli_cred {
    bool have;
    char user[CLI_USER_MAX + 1];
    char secret[CLI_SECRET_MAX + 1]; /* never printed */
    char source[320];                /* "--user", "PORTOLAN_USER", or the auth file's path */
};

/* One command's parsed arguments. */
struct cli_opts {
    enum cli_cmd cmd;
    char region[PT_CLUSTER_URL_MAX + 1]; /* base URL, no trailing '/' */
    const char *cacert;                  /* borrowed from argv, NULL = system CAs */
    uint64_t timeout_ms;
    bool json;
    unsigned given;                 /* bit per enum cli_flag */
    struct pt_cluster_region added; /* add: the new region; remove/transfer: id */
    bool has_image;                 /* replication status: an image was named */
    char image_name[PT_NAME_MAX + 1];
    char image_ref[PT_DIGEST_INPUT_MAX + 1]; /* tag or digest */
    bool image_by_digest;
    /* Access control commands. */
    const char *user;    /* --user NAME (borrowed from argv), NULL = none */
    bool password_stdin; /* --password-stdin */
    const char *arg;     /* the NAME, ID or PATTERN operand (borrowed), NULL = none */
    struct cli_grant grants[CLI_GRANTS_MAX];
    size_t n_grants;
    bool admin;              /* user add --admin */
    const char *token_id;    /* token create --id (borrowed) */
    uint64_t expires_s;      /* token create --expires, 0 = never */
    const char *description; /* token create --description (borrowed) */
    struct cli_cred cred;    /* filled by cli_cred_resolve before any request */
    /* audit verify|tail. */
    const char *data_dir;             /* --data-dir (borrowed) */
    const char *files[CLI_FILES_MAX]; /* audit verify FILE... (borrowed) */
    size_t n_files;
    unsigned long lines; /* audit tail -n */
    bool follow;         /* audit tail --follow */
    bool dry_run;        /* gc run --dry-run */
};

/* Fills o with the defaults of command c, then with the flags (and image) in argv[0..argc)
 * (borrowed; o->cacert keeps pointing into it). Returns 0, or PT_CLI_USAGE with a message on
 * err. */
int cli_args_parse(struct cli_opts *o, enum cli_cmd c, int argc, char **argv, FILE *err);

/* Copies a URL (src, borrowed) into dst (PT_CLUSTER_URL_MAX + 1 bytes) without one trailing
 * '/' and checks it with the cluster file's rules. Returns 0, or -1 with a static *why. */
int cli_take_url(char *dst, const char *src, const char **why);

/* ---- client.c -------------------------------------------------------------------------- */

/* One admin request and its answer. Zeroed by its owner before cli_xfer_setup; released
 * with cli_xfer_cleanup whatever happened. */
struct cli_xfer {
    CURL *h;
    struct curl_slist *headers;
    char *body;         /* request body (json_dumps), owned */
    struct pt_buf resp; /* response bytes, NUL-terminated once any arrived, owned */
    bool too_large;
    bool in_multi; /* cli_xfer_run_all: added to its multi handle */
    bool done;     /* cli_xfer_run_all: the multi handle reported its end */
    long status;
    CURLcode rc;
    char url[CLI_URL_MAX];
    char errbuf[CURL_ERROR_SIZE];
};

/* Room for the reason of a failed request (cli_xfer_finish). */
#define CLI_WHY_MAX (CURL_ERROR_SIZE + 64)

/*
 * Prepares x (zeroed by the caller) for method on base + path, with body (borrowed, may be
 * NULL) sent as JSON, with o's CA file and a total time limit of timeout_ms. Returns 0 or -1
 * with a message in x->errbuf; x must be cleaned up either way.
 */
int cli_xfer_setup(struct cli_xfer *x, const char *method, const char *base, const char *path,
                   json_t *body, const struct cli_opts *o, uint64_t timeout_ms);

/* Runs one prepared request to completion: 0 with x->status set, or -1 with a reason in why
 * (whylen bytes). */
int cli_xfer_run(struct cli_xfer *x, char *why, size_t whylen);

/*
 * Runs the prepared requests xs[0..n) (borrowed) at once and returns when every one ended.
 * Each x->rc is then its result; one that could not start or complete gets an error rc with
 * the reason in x->errbuf, so cli_xfer_finish reports every outcome.
 */
void cli_xfer_run_all(struct cli_xfer **xs, size_t n);

/* After a request ended with x->rc: 0 with x->status set, or -1 with a reason in why
 * (whylen bytes). */
int cli_xfer_finish(struct cli_xfer *x, char *why, size_t whylen);

/* Frees what x owns and zeroes it. */
void cli_xfer_cleanup(struct cli_xfer *x);

/*
 * Sends one admin request of command o->cmd into x (zeroed by the caller, cleaned up by it
 * either way): method on base + path with body (borrowed, may be NULL) and o's time limit.
 * Returns 0 when the answer is 200 (any 2xx with any_2xx); else prints on err why it failed
 * or the error answer (cli_print_http_error) and returns -1.
 */
int cli_request(struct cli_xfer *x, const struct cli_opts *o, const char *method, const char *base,
                const char *path, json_t *body, bool any_2xx, FILE *err);

/* The answer's JSON document (a new reference), or NULL when the body is empty or not JSON. */
json_t *cli_xfer_json(const struct cli_xfer *x);

/*
 * GETs an admin listing: path's answer must be an object whose member key is an array.
 * Returns 1 with *doc (a new reference, the caller's) and *items (borrowed from it) for the
 * caller to print as a table; 0 when o->json asked for the document and it was printed to out
 * (*doc still set); -1 when the request failed or the answer has no such array (said on err).
 */
int cli_get_list(struct cli_xfer *x, const struct cli_opts *o, const char *path, const char *key,
                 FILE *out, FILE *err, json_t **doc, json_t **items);

/* Prints an error answer to err after "portolan <title>: <url>: HTTP <status>": the OCI error
 * entries when the body has them, else its start, cleaned. */
void cli_print_http_error(FILE *err, const char *title, const struct cli_xfer *x);

/* The object's string member key (borrowed from obj) if it is a string of at most max bytes
 * without NUL, else NULL. */
const char *cli_json_str(const json_t *obj, const char *key, size_t max);

/* The object's integer member key if it is >= 0, else -1. */
long long cli_json_uint(const json_t *obj, const char *key);

/* ---- table.c --------------------------------------------------------------------------- */

#define CLI_TABLE_COLUMNS_MAX 12

/* Copies at most max bytes of s (borrowed, may be NULL) into dst (dstlen bytes), control and
 * non-ASCII bytes replaced by '?', so a server cannot send escape sequences to the terminal.
 * Returns dst. */
const char *cli_clean(char *dst, size_t dstlen, const char *s, size_t max);

/* Cells of a table, each written into cell (len bytes) and returned: a count ("-" when
 * negative), a byte count ("512B", "1.5KiB", ... "-" when negative), an age in seconds
 * ("4.2s", "3m07s", "5h02m"; "-" when v is not a number > 0). */
const char *cli_num_cell(char *cell, size_t len, long long v);
const char *cli_bytes_cell(char *cell, size_t len, long long v);
const char *cli_age_cell(char *cell, size_t len, const json_t *v);

/*
 * Prints a header line hdr[0..ncol) and n rows under it, each column as wide as its widest
 * entry. cells (borrowed) holds the rows one after the other, ncol cells of cell_max bytes
 * each (NUL-terminated). ncol is at most CLI_TABLE_COLUMNS_MAX.
 */
void cli_print_rows(FILE *out, const char *const *hdr, size_t ncol, const char *cells,
                    size_t cell_max, size_t n);

/* Prints doc (borrowed) to out, indented with sorted keys; "{}" when doc is NULL. */
void cli_print_json(FILE *out, json_t *doc);

/* ---- members.c ------------------------------------------------------------------------- */

/* One member of the cluster and what it answered. */
struct cli_member {
    json_t *entry; /* borrowed from the /admin/cluster document; NULL for a single region */
    char name[PT_CLUSTER_NAME_MAX + 1];
    uint64_t id;
    char address[PT_CLUSTER_ADDRESS_MAX + 1];
    char url[PT_CLUSTER_URL_MAX + 1];
    const char *role; /* configured: "voter", "standby", "spare" (static) */
    bool valid;       /* the entry passed the checks */
    struct cli_xfer x;
    json_t *self;            /* what it answered (its own view, its status), owned; NULL = none */
    char error[CLI_WHY_MAX]; /* why self is NULL */
    const char *state;       /* status: leader, voter, ..., unreachable (static) */
    long long lag;           /* status: -1 = unknown */
};

/*
 * Reads the membership of o->region's cluster (GET /admin/cluster): one member per entry of
 * its "regions", each field checked on its own. Without single_ok the answer must hold a
 * valid cluster_id and "regions"; with it, an answer without "regions" (a single region, no
 * Raft) gives one member: the queried URL, named "?". On success returns 0 with *doc the
 * answer (owned) and *ms (owned, n entries, at most PT_CLUSTER_REGIONS_MAX; free with
 * cli_members_free); else prints why on err and returns -1, leaving them untouched.
 */
int cli_members_fetch(const struct cli_opts *o, bool single_ok, json_t **doc,
                      struct cli_member **ms, size_t *n, FILE *err);

/* Takes one member's 200 answer (a new reference to doc, NULL when the body was not JSON):
 * sets m->self or m->error. */
typedef void (*cli_accept_cb)(struct cli_member *m, json_t *doc, const void *arg);

/*
 * GETs path of every valid member in ms[0..n) that has no answer yet, all at once, each
 * within 2 s (SELF_TIMEOUT_MS) or o's shorter limit, and hands each 200 answer to accept (with
 * arg, borrowed); every other outcome goes into the member's error.
 */
void cli_members_ask(struct cli_member *ms, size_t n, const struct cli_opts *o, const char *path,
                     cli_accept_cb accept, const void *arg);

/* Prints "<name>: <error>" for every member without an answer. */
void cli_members_print_errors(FILE *out, const struct cli_member *ms, size_t n);

/* Frees ms[0..n) (owned, may be NULL) with the answers and requests they hold. */
void cli_members_free(struct cli_member *ms, size_t n);

/* ---- credentials.c --------------------------------------------------------------------- */

/* Where secrets are read from (standard input unless pt_cli_set_input changed it). */
FILE *cli_input(void);

/*
 * Fills o->cred for the admin requests to o->region, the first source that has credentials:
 * --user with --password-stdin (one line of cli_input()) or a terminal prompt; the
 * environment's PORTOLAN_USER and PORTOLAN_PASSWORD; the first of $REGISTRY_AUTH_FILE,
 * $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json
 * with an entry for the URL's host:port (files over CLI_AUTHFILE_MAX are skipped with a
 * warning). No source leaves o->cred.have false. Returns 0, or PT_CLI_USAGE with a message on
 * err (a --user without a password, a malformed matching auth file entry).
 */
int cli_cred_resolve(struct cli_opts *o, FILE *err);

/*
 * Reads one secret line (without its line end) from in (borrowed) into buf (size bytes).
 * Returns 0, or -1 with a static reason in *why: nothing to read, or longer than size - 1.
 */
int cli_read_secret_line(FILE *in, char *buf, size_t size, const char **why);

/*
 * Asks for a secret on the terminal (/dev/tty) without echo: prompt, then, with confirm, the
 * same again, which must match. Returns 0 with buf filled, or -1 with a static *why (no
 * terminal, mismatch, too long, empty).
 */
int cli_prompt_secret(const char *prompt, bool confirm, char *buf, size_t size, const char **why);

/* After a 401 or 403 answer: prints on err which credentials were sent (user and source,
 * never the secret) or that none were, and how to give some. */
void cli_print_auth_hint(FILE *err, const struct cli_opts *o, long status);

/* ---- users.c, tokens.c, access.c, auditlog.c -------------------------------------------- */

/* Each returns PT_CLI_OK or PT_CLI_FAILED. */
int cli_user_run(const struct cli_opts *o, FILE *out, FILE *err);
int cli_token_run(const struct cli_opts *o, FILE *out, FILE *err);
int cli_access_run(const struct cli_opts *o, FILE *out, FILE *err);
int cli_audit_run(const struct cli_opts *o, FILE *out, FILE *err);

/* Grant text for tables: "team/app-*:pull,push" entries of a JSON grants array joined by " "
 * into buf (len bytes, cut to fit, cleaned); "-" for none. */
const char *cli_grants_cell(char *buf, size_t len, const json_t *grants);

/* A time a server sent (RFC 3339 string, or integer seconds or milliseconds since the
 * epoch) as "2026-12-06 20:41:19Z" into cell; never_text for null, 0 or absent. */
const char *cli_time_cell(char *cell, size_t len, const json_t *v, const char *never_text);

/* The JSON grants array of o->grants (a new reference), NULL without memory. */
json_t *cli_grants_json(const struct cli_opts *o);

/* ---- cluster.c, replication.c ---------------------------------------------------------- */

/* The commands, run with parsed options; each returns PT_CLI_OK or PT_CLI_FAILED. */
int cli_cluster_status(const struct cli_opts *o, FILE *out, FILE *err);
int cli_cluster_change(const struct cli_opts *o, FILE *out, FILE *err);
int cli_replication_regions(const struct cli_opts *o, FILE *out, FILE *err);
int cli_replication_image(const struct cli_opts *o, FILE *out, FILE *err);
/* gc.c: `portolan gc run` and `portolan gc status`. */
int cli_gc_run(const struct cli_opts *o, FILE *out, FILE *err);

/* ---- certs.c --------------------------------------------------------------------------- */

/* `portolan cluster certs` with the arguments after its name (argv[0..argc), borrowed).
 * Returns PT_CLI_OK, PT_CLI_FAILED (a file exists, cannot be written, the CA does not load)
 * or PT_CLI_USAGE. */
int cli_certs(int argc, char **argv, FILE *out, FILE *err);
/* `portolan backup` (backup.c): POST /admin/backup at o->region; prints where it went. */
int cli_backup_run(const struct cli_opts *o, FILE *out, FILE *err);
void cli_certs_usage(FILE *out);

/* ---- policy_args.c: what the policy commands share (quota, throttle, repo, tag-rule,
 * retention) ---------------------------------------------------------------------------- */

#define CLI_POLICY_OPERANDS_MAX 4
#define CLI_POLICY_FLAGS_MAX    8

/* A flag of one of these commands (not one of every admin command's). */
struct cli_policy_flag {
    const char *name;
    bool has_value;
};

/* The operands (verb first) and own flag values (values[i] for own[i]: NULL absent, "" for a
 * flag without value) of a command line; borrowed from argv. */
struct cli_policy_args {
    const char *operands[CLI_POLICY_OPERANDS_MAX];
    size_t n_operands;
    const char *values[CLI_POLICY_FLAGS_MAX];
};

/* Splits argv[0..argc) into operands, own[0..n_own) flags and the common flags, which
 * cli_args_parse checks into o for command c. 0, or PT_CLI_USAGE with a message on err. */
int cli_policy_parse(struct cli_opts *o, enum cli_cmd c, int argc, char **argv,
                     const struct cli_policy_flag *own, size_t n_own, struct cli_policy_args *pa,
                     FILE *err);
/* Resolves the credentials, runs fn(o, arg) under libcurl's global set-up, wipes them. */
int cli_policy_run(struct cli_opts *o,
                   int (*fn)(const struct cli_opts *o, const void *arg, FILE *out, FILE *err),
                   const void *arg, FILE *out, FILE *err);
/* true when argv asks for help (help, --help, -h). */
bool cli_policy_help(int argc, char **argv);

/* A flag of repo, tag-rule or retention that the common flags do not have (at most
 * CLI_POLICY_FLAGS_MAX of them). */
struct cli_extra {
    const char *name; /* "--keep-last" */
    bool has_value;
    bool given;        /* out */
    const char *value; /* out: borrowed from argv */
};

/*
 * Sets up policy command c (CMD_REPO, CMD_TAG_RULE or CMD_RETENTION): cli_policy_parse with
 * the flags named in ex[0..nex) ("--flag value" or "--flag=value") and up to max_ops
 * (<= CLI_POLICY_OPERANDS_MAX) operands out of argv[0..argc) (borrowed), then resolves the
 * credentials and initialises libcurl. Returns PT_CLI_OK (then cli_policy_end
 * must follow) or PT_CLI_USAGE with a message on err.
 */
int cli_policy_begin(struct cli_opts *o, enum cli_cmd c, const char *sub, int argc, char **argv,
                     struct cli_extra *ex, size_t nex, const char **ops, size_t max_ops,
                     size_t *nops, FILE *err);
/* Cleans libcurl up and wipes the credentials of o. */
void cli_policy_end(struct cli_opts *o);

#endif
