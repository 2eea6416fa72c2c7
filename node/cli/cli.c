/*
 * cli.c - `portolan cluster ...` and `portolan replication status` (usage in cli.h): flags,
 * admin requests over libcurl, output.
 *
 * The admin API's HTTP contract is written in base/admin_api.h.
 *
 * Design: one blocking libcurl easy handle per admin request; `status` first reads the
 * membership from the region named by --region, then asks every other member for its own
 * view at once through a curl multi handle, each with a short time limit, so one dead region
 * costs SELF_TIMEOUT_MS, not one per region. The region that answered --region contributes
 * the "self" object of its /admin/cluster answer instead of a second request. `replication
 * status` without an image reads the membership the same way (a single region: the queried
 * URL alone) and asks every member for /admin/replication at once; with an image it is one
 * request to --region.
 *
 * Limits: responses are cut at RESPONSE_MAX bytes (the request then fails), only http and
 * https are spoken (redirects included), every request has a total and a connect timeout,
 * members beyond PT_CLUSTER_REGIONS_MAX (image regions beyond PT_ADMIN_IMAGE_REGIONS_MAX) are
 * refused, and every string a server sends is checked (names, addresses, URLs with the
 * cluster file's rules) or cleaned of control characters before it reaches the terminal.
 */
#include "cli.h"

#include "addr.h"
#include "admin_api.h"
#include "bounds.h"
#include "ident.h"
#include "units.h"
#include "digest.h"
#include "reference.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RESPONSE_MAX       (1024 * 1024)
#define DEFAULT_TIMEOUT_MS 5000 /* one admin request */
#define SELF_TIMEOUT_MS    2000 /* one region's /admin/cluster/self during status */
#define CONNECT_TIMEOUT_MS 2000
#define REDIRECTS_MAX      3
#define URL_MAX            (PT_CLUSTER_URL_MAX + 512)
#define ERRORS_SHOWN_MAX   8   /* entries of an error body printed */
#define TEXT_SHOWN_MAX     300 /* bytes of a non-JSON error body or message printed */

/* ---- arguments ------------------------------------------------------------------------- */

enum cmd { CMD_STATUS, CMD_ADD, CMD_REMOVE, CMD_TRANSFER, CMD_REPLICATION };
#define CLUSTER_CMDS 4 /* the first four are `portolan cluster` commands */

static const char *const cmd_names[] = {"status", "add", "remove", "transfer-leader", "status"};
/* As messages name them: "portolan <title>: ...". */
static const char *const cmd_titles[] = {"cluster status", "cluster add", "cluster remove",
                                         "cluster transfer-leader", "replication status"};

/* Flags and the commands that take them (bit per enum cmd). */
enum flag { F_REGION, F_JSON, F_CACERT, F_TIMEOUT, F_NAME, F_ID, F_ADDRESS, F_URL, F_ROLE };

#define ALL_CMDS                                                                                   \
    ((1u << CMD_STATUS) | (1u << CMD_ADD) | (1u << CMD_REMOVE) | (1u << CMD_TRANSFER) |            \
     (1u << CMD_REPLICATION))

static const struct {
    const char *name;
    bool has_value;
    unsigned cmds;
} flags[] = {
    [F_REGION] = {"--region", true, ALL_CMDS},
    [F_JSON] = {"--json", false, ALL_CMDS},
    [F_CACERT] = {"--cacert", true, ALL_CMDS},
    [F_TIMEOUT] = {"--timeout", true, ALL_CMDS},
    [F_NAME] = {"--name", true, 1u << CMD_ADD},
    [F_ID] = {"--id", true, (1u << CMD_ADD) | (1u << CMD_REMOVE) | (1u << CMD_TRANSFER)},
    [F_ADDRESS] = {"--address", true, 1u << CMD_ADD},
    [F_URL] = {"--url", true, 1u << CMD_ADD},
    [F_ROLE] = {"--role", true, 1u << CMD_ADD},
};
#define NFLAGS (sizeof flags / sizeof flags[0])

struct opts {
    enum cmd cmd;
    char region[PT_CLUSTER_URL_MAX + 1]; /* base URL, no trailing '/' */
    const char *cacert;                  /* borrowed from argv, NULL = system CAs */
    uint64_t timeout_ms;
    bool json;
    unsigned given;                 /* bit per enum flag */
    struct pt_cluster_region added; /* add: the new region; remove/transfer: id */
    bool has_image;                 /* replication status: an image was named */
    char image_name[PT_NAME_MAX + 1];
    char image_ref[PT_DIGEST_INPUT_MAX + 1]; /* tag or digest */
    bool image_by_digest;
};

/* Copies a URL argument into dst (PT_CLUSTER_URL_MAX + 1 bytes) without one trailing '/'
 * and checks it. Returns 0, or -1 with *why set. */
static int take_url(char *dst, const char *src, const char **why)
{
    size_t n = strnlen(src, PT_CLUSTER_URL_MAX + 2);

    if (n > 0 && src[n - 1] == '/')
        n--;
    if (n > PT_CLUSTER_URL_MAX) {
        *why = "longer than 511 bytes";
        return -1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return pt_addr_check_url(dst, why) == 0 ? 0 : -1;
}

static int set_flag(struct opts *o, enum flag f, const char *v, FILE *err)
{
    const char *why = NULL;
    const char *name = flags[f].name;

    switch (f) {
    case F_REGION:
        if (take_url(o->region, v, &why) != 0)
            goto bad;
        break;
    case F_JSON:
        o->json = true;
        break;
    case F_CACERT:
        if (v[0] == '\0') {
            why = "missing file name";
            goto bad;
        }
        o->cacert = v;
        break;
    case F_TIMEOUT:
        if (pt_units_parse_duration(v, &o->timeout_ms) != 0 || o->timeout_ms == 0 ||
            o->timeout_ms > 3600 * 1000) {
            why = "expected a duration 1s..1h (seconds, or an s/m/h suffix)";
            goto bad;
        }
        break;
    case F_NAME:
        if (pt_ident_check_region(v, &why) != 0)
            goto bad;
        memcpy(o->added.name, v, strlen(v) + 1);
        break;
    case F_ID:
        if (pt_ident_parse_server_id(v, &o->added.id) != 0) {
            why = "expected a server id 1..9223372036854775807";
            goto bad;
        }
        break;
    case F_ADDRESS:
        if (pt_addr_check_peer(v, &why) != 0)
            goto bad;
        memcpy(o->added.address, v, strlen(v) + 1);
        break;
    case F_URL:
        if (take_url(o->added.url, v, &why) != 0)
            goto bad;
        break;
    case F_ROLE:
        if (pt_ident_parse_role(v, &o->added.role) != 0 || o->added.role == PT_CLUSTER_SPARE) {
            why = "expected voter or standby";
            goto bad;
        }
        break;
    }
    o->given |= 1u << f;
    return 0;
bad:
    fprintf(err, "portolan %s: %s: \"%.64s\": %s\n", cmd_titles[o->cmd], name, v, why);
    return PT_CLI_USAGE;
}

/*
 * The image argument of `replication status`: NAME:TAG, NAME@DIGEST or NAME (the tag then is
 * "latest"), each part checked with the registry's own grammar. Names, tags and sha256
 * digests hold only characters a query value may carry as they are, so they go into the
 * request URL unescaped.
 */
static int parse_image(struct opts *o, const char *a, FILE *err)
{
    const char *at = strchr(a, '@'), *colon = strrchr(a, ':'), *slash = strrchr(a, '/');
    const char *ref = "latest";
    size_t nlen = strlen(a);
    struct pt_digest d;

    if (at != NULL) {
        nlen = (size_t)(at - a);
        ref = at + 1;
        if (pt_digest_parse(ref, strlen(ref), &d) != 0) {
            fprintf(err, "portolan %s: \"%.80s\": not a sha256 digest after '@'\n",
                    cmd_titles[o->cmd], a);
            return PT_CLI_USAGE;
        }
        o->image_by_digest = true;
    } else if (colon != NULL && (slash == NULL || colon > slash)) {
        nlen = (size_t)(colon - a);
        ref = colon + 1;
        if (pt_tag_validate(ref, strlen(ref)) != 0) {
            fprintf(err, "portolan %s: \"%.80s\": not a valid tag after ':'\n", cmd_titles[o->cmd],
                    a);
            return PT_CLI_USAGE;
        }
    }
    if (pt_name_validate(a, nlen) != 0) {
        fprintf(err,
                "portolan %s: \"%.80s\": not NAME:TAG or NAME@DIGEST with a repository name "
                "(lower case, digits, separators . _ - /)\n",
                cmd_titles[o->cmd], a);
        return PT_CLI_USAGE;
    }
    memcpy(o->image_name, a, nlen);
    o->image_name[nlen] = '\0';
    snprintf(o->image_ref, sizeof o->image_ref, "%s", ref);
    o->has_image = true;
    return 0;
}

static int parse_args(struct opts *o, int argc, char **argv, FILE *err)
{
    const char *cmd = cmd_titles[o->cmd];

    for (int i = 0; i < argc;) {
        const char *a = argv[i], *eq, *v;
        size_t nlen;
        size_t f;

        if (a != NULL && a[0] != '-' && o->cmd == CMD_REPLICATION && !o->has_image) {
            int rc = parse_image(o, a, err);
            if (rc != 0)
                return rc;
            i++;
            continue;
        }
        if (a == NULL || strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            fprintf(err, "portolan %s: unexpected argument \"%.64s\"\n", cmd, a ? a : "");
            return PT_CLI_USAGE;
        }
        eq = strchr(a, '=');
        nlen = eq ? (size_t)(eq - a) : strlen(a);
        for (f = 0; f < NFLAGS; f++) {
            if (strlen(flags[f].name) == nlen && memcmp(flags[f].name, a, nlen) == 0)
                break;
        }
        if (f == NFLAGS || !(flags[f].cmds & (1u << o->cmd))) {
            fprintf(err, "portolan %s: unknown flag \"%.*s\"\n", cmd, (int)(nlen < 64 ? nlen : 64),
                    a);
            return PT_CLI_USAGE;
        }
        if (!flags[f].has_value) {
            if (eq != NULL) {
                fprintf(err, "portolan %s: %s takes no value\n", cmd, flags[f].name);
                return PT_CLI_USAGE;
            }
            v = "";
            i++;
        } else if (eq != NULL) {
            v = eq + 1;
            i++;
        } else {
            if (i + 1 >= argc || argv[i + 1] == NULL || strncmp(argv[i + 1], "--", 2) == 0) {
                fprintf(err, "portolan %s: %s: missing value\n", cmd, flags[f].name);
                return PT_CLI_USAGE;
            }
            v = argv[i + 1];
            i += 2;
        }
        int rc = set_flag(o, (enum flag)f, v, err);
        if (rc != 0)
            return rc;
    }

    unsigned need = 1u << F_REGION;
    if (o->cmd == CMD_ADD)
        need |= (1u << F_NAME) | (1u << F_ID) | (1u << F_ADDRESS) | (1u << F_URL);
    if (o->cmd == CMD_REMOVE)
        need |= 1u << F_ID;
    for (size_t f = 0; f < NFLAGS; f++) {
        if ((need & (1u << f)) && !(o->given & (1u << f))) {
            fprintf(err, "portolan %s: %s is required\n", cmd, flags[f].name);
            return PT_CLI_USAGE;
        }
    }
    return 0;
}

void pt_cli_cluster_usage(FILE *out)
{
    fprintf(out, "usage: portolan cluster <command> --region URL [flags]\n\n"
                 "commands:\n"
                 "  status            membership and raft state of every region, as a table\n"
                 "  add               add a region: --name N --id I --address HOST:PORT --url URL\n"
                 "                    [--role voter|standby] (default voter)\n"
                 "  remove            remove a region: --id I\n"
                 "  transfer-leader   hand leadership to --id I, or to a voter the leader picks\n\n"
                 "flags of every command:\n"
                 "  --region URL      client URL of any region, e.g. http://127.0.0.1:5001\n"
                 "  --json            print JSON (status: every region's view merged)\n"
                 "  --cacert FILE     PEM CA certificates for https URLs (default: the system's)\n"
                 "  --timeout D       time limit of the admin request (default 5s; each region's\n"
                 "                    view during status gets at most 2s)\n\n"
                 "exit status: 0 ok, 1 request failed, 2 usage error\n");
}

void pt_cli_replication_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan replication status [NAME:TAG | NAME@DIGEST] --region URL [flags]\n\n"
            "  without an image  blob replication of every region: in sync or how far\n"
            "                    behind (blobs, bytes, oldest missing), active transfers\n"
            "  with an image     which regions hold every blob of the image, and what\n"
            "                    each other region lacks (NAME alone means NAME:latest)\n\n"
            "flags:\n"
            "  --region URL      client URL of any region, e.g. http://127.0.0.1:5001\n"
            "  --json            print JSON (without an image: {\"regions\": [each region's\n"
            "                    status, or its error]})\n"
            "  --cacert FILE     PEM CA certificates for https URLs (default: the system's)\n"
            "  --timeout D       time limit of the admin request (default 5s; each region's\n"
            "                    status gets at most 2s)\n\n"
            "exit status: 0 ok, 1 request failed or a region unreachable, 2 usage error\n");
}

/* ---- HTTP ------------------------------------------------------------------------------ */

struct xfer {
    CURL *h;
    struct curl_slist *headers;
    char *body; /* request body (json_dumps), owned */
    char *resp; /* response bytes, NUL-terminated, owned */
    size_t len, cap;
    bool too_large;
    long status;
    CURLcode rc;
    char url[URL_MAX];
    char errbuf[CURL_ERROR_SIZE];
};

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nmemb;

    if (n > RESPONSE_MAX - x->len) {
        x->too_large = true;
        return 0;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *p = realloc(x->resp, cap);
        if (p == NULL)
            return 0;
        x->resp = p;
        x->cap = cap;
    }
    memcpy(x->resp + x->len, data, n);
    x->len += n;
    x->resp[x->len] = '\0';
    return n;
}

static void xfer_cleanup(struct xfer *x)
{
    if (x->h != NULL)
        curl_easy_cleanup(x->h);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x->resp);
    memset(x, 0, sizeof *x);
}

/*
 * Prepares x (zeroed by the caller) for method on base + path, with body (borrowed, may be
 * NULL) sent as JSON. Returns 0 or -1 with a message in x->errbuf; x must be cleaned up
 * either way.
 */
static int xfer_setup(struct xfer *x, const char *method, const char *base, const char *path,
                      json_t *body, const struct opts *o, uint64_t timeout_ms)
{
    struct curl_slist *l;
    CURLcode c = CURLE_OK;

    snprintf(x->url, sizeof x->url, "%s%s", base, path);
    x->rc = CURLE_OK;
    x->h = curl_easy_init();
    if (x->h == NULL) {
        snprintf(x->errbuf, sizeof x->errbuf, "cannot create an HTTP handle");
        return -1;
    }
    l = curl_slist_append(NULL, "Accept: application/json");
    if (l != NULL)
        x->headers = l;
    if (body != NULL) {
        x->body = json_dumps(body, JSON_COMPACT);
        l = curl_slist_append(x->headers, "Content-Type: application/json");
        if (l != NULL)
            x->headers = l;
        if (x->body == NULL || l == NULL) {
            snprintf(x->errbuf, sizeof x->errbuf, "out of memory");
            return -1;
        }
    }
    if (x->headers == NULL) {
        snprintf(x->errbuf, sizeof x->errbuf, "out of memory");
        return -1;
    }
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (c == CURLE_OK)                                                                         \
            c = curl_easy_setopt(x->h, opt, val);                                                  \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_URL, x->url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, (long)REDIRECTS_MAX);
    SET(CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
    SET(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS,
        (long)(timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS));
    SET(CURLOPT_USERAGENT, "portolan/" PT_VERSION);
    SET(CURLOPT_HTTPHEADER, x->headers);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, x);
    if (o->cacert != NULL)
        SET(CURLOPT_CAINFO, o->cacert);
    if (x->body != NULL) {
        SET(CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
        SET(CURLOPT_POSTFIELDS, x->body);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        SET(CURLOPT_CUSTOMREQUEST, method);
    else if (strcmp(method, "POST") == 0 && x->body == NULL)
        SET(CURLOPT_POST, 1L);
#undef SET
    if (c != CURLE_OK) {
        snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_easy_strerror(c));
        return -1;
    }
    x->errbuf[0] = '\0';
    return 0;
}

/* After a transfer ended with x->rc: 0 with x->status set, or -1 with a reason in why
 * (whylen bytes). */
static int xfer_finish(struct xfer *x, char *why, size_t whylen)
{
    if (x->rc != CURLE_OK) {
        if (x->too_large)
            snprintf(why, whylen, "response larger than %d bytes", RESPONSE_MAX);
        else
            snprintf(why, whylen, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->rc));
        return -1;
    }
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
    return 0;
}

/* Runs one request to completion: 0 with x->status set, or -1 with a reason in why. */
static int xfer_run(struct xfer *x, char *why, size_t whylen)
{
    x->rc = curl_easy_perform(x->h);
    return xfer_finish(x, why, whylen);
}

/* ---- output helpers -------------------------------------------------------------------- */

/* Copies at most max bytes of s into dst (dstlen bytes), control and non-ASCII bytes
 * replaced by '?', so a server cannot send escape sequences to the terminal. */
static const char *clean(char *dst, size_t dstlen, const char *s, size_t max)
{
    size_t n = 0;

    if (dstlen == 0)
        return dst;
    for (; s != NULL && s[n] != '\0' && n < max && n + 1 < dstlen; n++) {
        unsigned char ch = (unsigned char)s[n];
        dst[n] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[n] = '\0';
    return dst;
}

/* The object's string member key if it is a string of at most max bytes, else NULL. */
static const char *get_str(const json_t *obj, const char *key, size_t max)
{
    const json_t *v = json_object_get(obj, key);

    if (!json_is_string(v) || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

/* The object's integer member key if it is >= 0, else -1. */
static long long get_uint(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    return (long long)json_integer_value(v);
}

static json_t *parse_json(const struct xfer *x)
{
    if (x->resp == NULL || x->len == 0)
        return NULL;
    return json_loadb(x->resp, x->len, JSON_REJECT_DUPLICATES, NULL);
}

/* Prints an error answer: the OCI error entries when the body has them, else its start. */
static void print_http_error(FILE *err, const char *cmd, const struct xfer *x)
{
    char a[TEXT_SHOWN_MAX + 1], b[TEXT_SHOWN_MAX + 1];
    json_t *doc = parse_json(x);
    json_t *errors = json_object_get(doc, "errors");
    size_t shown = 0;

    fprintf(err, "portolan %s: %s: HTTP %ld", cmd, clean(a, sizeof a, x->url, URL_MAX), x->status);
    if (json_is_array(errors)) {
        size_t i;
        json_t *e;
        json_array_foreach(errors, i, e)
        {
            const char *code = get_str(e, "code", 128);
            const char *msg = get_str(e, "message", 4096);
            if (shown == ERRORS_SHOWN_MAX || (code == NULL && msg == NULL))
                break;
            fprintf(err, "%s%s: %s", shown ? "\n  " : " ",
                    clean(a, sizeof a, code ? code : "UNKNOWN", 128),
                    clean(b, sizeof b, msg ? msg : "", TEXT_SHOWN_MAX));
            shown++;
        }
    }
    if (shown == 0 && x->len > 0)
        fprintf(err, ": %s", clean(a, sizeof a, x->resp, TEXT_SHOWN_MAX));
    fputc('\n', err);
    json_decref(doc);
}

/* Prints a JSON answer to out, indented; "{}" when the answer had no JSON body. */
static void print_json(FILE *out, json_t *doc)
{
    char *s = NULL;

    if (doc != NULL)
        s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    fprintf(out, "%s\n", s ? s : "{}");
    free(s);
}

/* ---- status ---------------------------------------------------------------------------- */

struct member {
    json_t *entry; /* borrowed from the /admin/cluster document */
    char name[PT_CLUSTER_NAME_MAX + 1];
    uint64_t id;
    char address[PT_CLUSTER_ADDRESS_MAX + 1];
    char url[PT_CLUSTER_URL_MAX + 1];
    const char *role; /* configured: "voter", "standby", "spare" (static) */
    bool valid;       /* the entry passed the checks */
    bool fetching;    /* x is in the multi handle */
    struct xfer x;
    json_t *self; /* the region's own view, owned; NULL when unreachable */
    char error[CURL_ERROR_SIZE + 64];
    const char *state; /* leader, voter, ..., unreachable (static) */
    long long lag;     /* -1 = unknown */
};

/*
 * Checks one member entry of /admin/cluster and fills m's fields. Each field is taken on its
 * own, so a member the server knows only partly (say, no client URL yet) still shows its id
 * and address; only a member with every field valid is asked for its view.
 */
static void read_member(struct member *m, json_t *entry)
{
    const char *name = get_str(entry, "name", PT_CLUSTER_NAME_MAX);
    const char *address = get_str(entry, "address", PT_CLUSTER_ADDRESS_MAX);
    const char *url = get_str(entry, "url", PT_CLUSTER_URL_MAX);
    const char *role = get_str(entry, "role", 16);
    long long id = get_uint(entry, "id");
    const char *field = NULL, *why = NULL;
    int r = PT_CLUSTER_VOTER;

    m->entry = entry;
    m->lag = -1;
    m->state = "unreachable";
    if (id > 0)
        m->id = (uint64_t)id;
    if (pt_addr_check_peer(address, NULL) == 0)
        memcpy(m->address, address, strlen(address) + 1);
    if (pt_ident_check_region(name, NULL) == 0)
        memcpy(m->name, name, strlen(name) + 1);
    else if (m->id != 0)
        snprintf(m->name, sizeof m->name, "#%" PRIu64, m->id);
    else
        snprintf(m->name, sizeof m->name, "?");

    if (!json_is_object(entry)) {
        field = "entry";
        why = "not an object";
    } else if (pt_ident_check_region(name, &why) != 0) {
        field = "name";
    } else if (m->id == 0) {
        field = "id";
        why = "missing or not a positive integer";
    } else if (pt_addr_check_peer(address, &why) != 0) {
        field = "address";
    } else if (take_url(m->url, url ? url : "", &why) != 0) {
        field = "url";
    } else if (role != NULL && pt_ident_parse_role(role, &r) != 0) {
        field = "role";
        why = "not voter, standby or spare";
    }
    if (field != NULL) {
        snprintf(m->error, sizeof m->error, "incomplete member entry: %s: %s", field, why);
        return;
    }
    m->role = pt_ident_role_name(r);
    m->valid = true;
}

/* Checks a region's own view against its member entry; takes the reference to self. */
static void accept_self(struct member *m, json_t *self, const char *cluster_id)
{
    const char *cid = get_str(self, "cluster_id", PT_CLUSTER_ID_MAX);
    const char *region = get_str(self, "region", PT_CLUSTER_NAME_MAX);
    long long id = get_uint(self, "id");
    char c1[80], c2[80];

    if (!json_is_object(self)) {
        snprintf(m->error, sizeof m->error, "answer is not a JSON object");
    } else if (id < 0) {
        snprintf(m->error, sizeof m->error, "answer has no id");
    } else if (id != (long long)m->id) {
        snprintf(m->error, sizeof m->error, "its URL answers as id %lld (%s), not id %" PRIu64, id,
                 clean(c1, sizeof c1, region ? region : "?", 63), m->id);
    } else if (cid == NULL || strcmp(cid, cluster_id) != 0) {
        snprintf(m->error, sizeof m->error, "it belongs to cluster \"%s\", not \"%s\"",
                 clean(c1, sizeof c1, cid ? cid : "?", 64), clean(c2, sizeof c2, cluster_id, 64));
    } else {
        m->self = self;
        return;
    }
    json_decref(self);
}

/* Takes one member's 200 answer (a reference to doc, which may be NULL when the body was
 * not JSON): sets m->self or m->error. */
typedef void (*accept_fn)(struct member *m, json_t *doc, const void *arg);

static void accept_view(struct member *m, json_t *doc, const void *arg)
{
    if (doc == NULL)
        snprintf(m->error, sizeof m->error, "answer is not JSON");
    else
        accept_self(m, doc, arg);
}

/* GETs path of every valid member in ms[0..n) that has no view yet, all at once, and hands
 * each 200 answer to accept (with arg). */
static void fetch_all(struct member *ms, size_t n, const struct opts *o, const char *path,
                      accept_fn accept, const void *arg)
{
    uint64_t timeout = o->timeout_ms < SELF_TIMEOUT_MS ? o->timeout_ms : SELF_TIMEOUT_MS;
    CURLM *multi = curl_multi_init();
    CURLMsg *msg;
    int running = 0, left;

    for (size_t i = 0; i < n; i++) {
        struct member *m = &ms[i];
        if (!m->valid || m->self != NULL)
            continue;
        if (multi == NULL) {
            snprintf(m->error, sizeof m->error, "cannot create an HTTP handle");
            continue;
        }
        if (xfer_setup(&m->x, "GET", m->url, path, NULL, o, timeout) != 0 ||
            curl_easy_setopt(m->x.h, CURLOPT_PRIVATE, m) != CURLE_OK ||
            curl_multi_add_handle(multi, m->x.h) != CURLM_OK) {
            snprintf(m->error, sizeof m->error, "%s",
                     m->x.errbuf[0] ? m->x.errbuf : "cannot start the request");
            if (m->x.h != NULL)
                curl_multi_remove_handle(multi, m->x.h);
            xfer_cleanup(&m->x);
            continue;
        }
        m->fetching = true;
    }
    if (multi == NULL)
        return;
    do {
        if (curl_multi_perform(multi, &running) != CURLM_OK)
            break;
        if (running > 0 && curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK)
            break;
    } while (running > 0);
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        char *priv = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        struct member *m = (struct member *)(void *)priv;
        if (m != NULL) {
            m->x.rc = msg->data.result;
            m->fetching = false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct member *m = &ms[i];
        char why[CURL_ERROR_SIZE + 64];

        if (m->x.h == NULL)
            continue;
        curl_multi_remove_handle(multi, m->x.h);
        if (m->fetching) {
            /* The multi loop broke off: this transfer never completed. */
            snprintf(m->error, sizeof m->error, "request did not complete");
        } else if (xfer_finish(&m->x, why, sizeof why) != 0) {
            snprintf(m->error, sizeof m->error, "%s", why);
        } else if (m->x.status != 200) {
            json_t *doc = parse_json(&m->x);
            json_t *e = json_array_get(json_object_get(doc, "errors"), 0);
            const char *code = get_str(e, "code", 64);
            char c[80];
            snprintf(m->error, sizeof m->error, "HTTP %ld%s%s", m->x.status, code ? " " : "",
                     code ? clean(c, sizeof c, code, 64) : "");
            json_decref(doc);
        } else {
            accept(m, parse_json(&m->x), arg);
        }
        xfer_cleanup(&m->x);
        m->fetching = false;
    }
    curl_multi_cleanup(multi);
}

/* Sets every member's state and lag; returns the leader's member, or NULL. */
static struct member *settle(struct member *ms, size_t n)
{
    static const char *const reported[] = {"candidate", "unavailable"};
    struct member *leader = NULL;

    for (size_t i = 0; i < n; i++) {
        struct member *m = &ms[i];
        const char *role = get_str(m->self, "role", 16);

        if (m->self == NULL) {
            m->state = "unreachable";
            continue;
        }
        m->state = m->role;
        if (role != NULL && strcmp(role, "leader") == 0) {
            m->state = "leader";
            if (leader == NULL || get_uint(m->self, "term") > get_uint(leader->self, "term"))
                leader = m;
        }
        for (size_t r = 0; role != NULL && r < 2; r++) {
            if (strcmp(role, reported[r]) == 0)
                m->state = reported[r];
        }
    }
    /* With two regions claiming leadership (an old leader that has not heard of the new
     * term yet), the higher term is the leader; the other shows as a voter. */
    for (size_t i = 0; i < n; i++) {
        if (&ms[i] != leader && ms[i].state != NULL && strcmp(ms[i].state, "leader") == 0)
            ms[i].state = ms[i].role;
    }
    if (leader != NULL) {
        long long commit = get_uint(leader->self, "commit_index");
        for (size_t i = 0; i < n; i++) {
            long long applied = get_uint(ms[i].self, "applied_index");
            if (ms[i].self != NULL && commit >= 0 && applied >= 0)
                ms[i].lag = commit > applied ? commit - applied : 0;
        }
    }
    return leader;
}

static void num_cell(char *cell, size_t len, long long v)
{
    if (v < 0)
        snprintf(cell, len, "-");
    else
        snprintf(cell, len, "%lld", v);
}

enum column { C_REGION, C_ID, C_ROLE, C_TERM, C_COMMIT, C_APPLIED, C_LAG, C_CONTACT, C_ADDRESS };
#define NCOLUMNS 9
static const char *const headers[NCOLUMNS] = {"REGION",  "ID",  "ROLE",         "TERM",   "COMMIT",
                                              "APPLIED", "LAG", "LAST-CONTACT", "ADDRESS"};
#define CELL_MAX (PT_CLUSTER_ADDRESS_MAX + 1)

static void print_table(FILE *out, const struct member *ms, size_t n, const char *cluster_id,
                        const struct member *leader)
{
    char(*cells)[NCOLUMNS][CELL_MAX] = calloc(n ? n : 1, sizeof *cells);
    size_t width[NCOLUMNS];
    char c1[sizeof ms->error];

    if (cells == NULL) {
        fprintf(out, "out of memory\n");
        return;
    }
    if (leader != NULL)
        fprintf(out, "cluster %s: leader %s (id %" PRIu64 "), term %lld\n", cluster_id,
                leader->name, leader->id, get_uint(leader->self, "term"));
    else
        fprintf(out, "cluster %s: no leader reachable\n", cluster_id);
    for (size_t c = 0; c < NCOLUMNS; c++)
        width[c] = strlen(headers[c]);
    for (size_t i = 0; i < n; i++) {
        const struct member *m = &ms[i];
        char(*row)[CELL_MAX] = cells[i];

        snprintf(row[C_REGION], CELL_MAX, "%s", m->name);
        if (m->id != 0)
            snprintf(row[C_ID], CELL_MAX, "%" PRIu64, m->id);
        else
            snprintf(row[C_ID], CELL_MAX, "-");
        snprintf(row[C_ROLE], CELL_MAX, "%s", m->state);
        num_cell(row[C_TERM], CELL_MAX, get_uint(m->self, "term"));
        num_cell(row[C_COMMIT], CELL_MAX, get_uint(m->self, "commit_index"));
        num_cell(row[C_APPLIED], CELL_MAX, get_uint(m->self, "applied_index"));
        num_cell(row[C_LAG], CELL_MAX, m->lag);
        num_cell(row[C_CONTACT], CELL_MAX, m == leader ? -1 : get_uint(m->self, "last_contact_ms"));
        snprintf(row[C_ADDRESS], CELL_MAX, "%s", m->address[0] ? m->address : "-");
        for (size_t c = 0; c < NCOLUMNS; c++) {
            size_t w = strlen(row[c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t c = 0; c < NCOLUMNS; c++)
        fprintf(out, "%-*s%s", c + 1 < NCOLUMNS ? (int)width[c] : 0, headers[c],
                c + 1 < NCOLUMNS ? "  " : "\n");
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < NCOLUMNS; c++)
            fprintf(out, "%-*s%s", c + 1 < NCOLUMNS ? (int)width[c] : 0, cells[i][c],
                    c + 1 < NCOLUMNS ? "  " : "\n");
    }
    for (size_t i = 0; i < n; i++) {
        if (ms[i].state != NULL && strcmp(ms[i].state, "unreachable") == 0)
            fprintf(out, "%s: %s\n", ms[i].name, clean(c1, sizeof c1, ms[i].error, sizeof c1));
    }
    free(cells);
}

/* The merged document of --json: the cluster answer plus every region's view. */
static json_t *merged_json(const struct member *ms, size_t n, json_t *doc, const char *base,
                           const struct member *leader)
{
    json_t *out = json_object(), *regions = json_array();

    if (out == NULL || regions == NULL) {
        json_decref(out);
        json_decref(regions);
        return NULL;
    }
    json_object_set(out, "cluster_id", json_object_get(doc, "cluster_id"));
    json_object_set_new(out, "queried", json_string(base));
    json_object_set(out, "self", json_object_get(doc, "self"));
    if (leader != NULL)
        json_object_set_new(out, "leader",
                            json_pack("{s:s,s:I,s:I,s:I}", "region", leader->name, "id",
                                      (json_int_t)leader->id, "term",
                                      (json_int_t)get_uint(leader->self, "term"), "commit_index",
                                      (json_int_t)get_uint(leader->self, "commit_index")));
    else
        json_object_set_new(out, "leader", json_null());
    for (size_t i = 0; i < n; i++) {
        const struct member *m = &ms[i];
        json_t *r = json_is_object(m->entry) ? json_copy(m->entry) : json_object();

        if (r == NULL)
            continue;
        json_object_set_new(r, "state", json_string(m->state));
        json_object_set_new(r, "lag", m->lag >= 0 ? json_integer(m->lag) : json_null());
        json_object_set(r, "self", m->self ? m->self : json_null());
        if (m->self == NULL)
            json_object_set_new(r, "error", json_string(m->error));
        json_array_append_new(regions, r);
    }
    json_object_set_new(out, "regions", regions);
    return out;
}

static int cmd_status(const struct opts *o, FILE *out, FILE *err)
{
    struct xfer x = {0};
    struct member *ms = NULL;
    json_t *doc = NULL, *regions, *self;
    const char *cluster_id;
    char why[CURL_ERROR_SIZE + 64];
    size_t n = 0;
    int rc = PT_CLI_FAILED;

    if (xfer_setup(&x, "GET", o->region, "/admin/cluster", NULL, o, o->timeout_ms) != 0 ||
        xfer_run(&x, why, sizeof why) != 0) {
        fprintf(err, "portolan cluster status: %s: %s\n", x.url, x.errbuf[0] ? x.errbuf : why);
        goto out;
    }
    if (x.status != 200) {
        print_http_error(err, cmd_titles[CMD_STATUS], &x);
        goto out;
    }
    doc = parse_json(&x);
    regions = json_object_get(doc, "regions");
    cluster_id = get_str(doc, "cluster_id", PT_CLUSTER_ID_MAX);
    self = json_object_get(doc, "self");
    if (!json_is_object(doc) || !json_is_array(regions) ||
        pt_ident_check_cluster_id(cluster_id, NULL) != 0) {
        fprintf(err,
                "portolan cluster status: %s: answer is not a cluster document "
                "(cluster_id, self, regions)\n",
                x.url);
        goto out;
    }
    n = json_array_size(regions);
    if (n > PT_CLUSTER_REGIONS_MAX) {
        fprintf(err, "portolan cluster status: %s: %zu regions, more than %d\n", x.url, n,
                PT_CLUSTER_REGIONS_MAX);
        goto out;
    }
    ms = calloc(n ? n : 1, sizeof *ms);
    if (ms == NULL) {
        fprintf(err, "portolan cluster status: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        read_member(&ms[i], json_array_get(regions, i));
        /* The queried region's own view came with the answer. */
        if (ms[i].valid && json_is_object(self) && get_uint(self, "id") == (long long)ms[i].id)
            accept_self(&ms[i], json_incref(self), cluster_id);
    }
    fetch_all(ms, n, o, "/admin/cluster/self", accept_view, cluster_id);
    const struct member *leader = settle(ms, n);
    if (o->json) {
        json_t *merged = merged_json(ms, n, doc, o->region, leader);
        if (merged == NULL) {
            fprintf(err, "portolan cluster status: out of memory\n");
            goto out;
        }
        print_json(out, merged);
        json_decref(merged);
    } else {
        print_table(out, ms, n, cluster_id, leader);
    }
    rc = PT_CLI_OK;
out:
    for (size_t i = 0; ms != NULL && i < n; i++) {
        xfer_cleanup(&ms[i].x);
        json_decref(ms[i].self);
    }
    free(ms);
    json_decref(doc);
    xfer_cleanup(&x);
    return rc;
}

/* ---- membership changes ---------------------------------------------------------------- */

/* The leader's client URL as the region at base sees it, into leader (cap bytes); base itself
 * when that region leads or knows no leader. */
static void find_leader(const struct opts *o, const char *base, char *leader, size_t cap)
{
    struct xfer x = {0};
    char why[CURL_ERROR_SIZE + 64];
    snprintf(leader, cap, "%s", base);
    if (xfer_setup(&x, "GET", base, "/admin/cluster/self", NULL, o, o->timeout_ms) == 0 &&
        xfer_run(&x, why, sizeof why) == 0 && x.status == 200) {
        json_t *doc = parse_json(&x);
        const char *role = get_str(doc, "role", 32);
        const char *url = get_str(doc, "leader_url", 511);
        if (role != NULL && strcmp(role, "leader") != 0 && url != NULL && url[0] != '\0')
            snprintf(leader, cap, "%s", url);
        json_decref(doc);
    }
    xfer_cleanup(&x);
}

static int cmd_change(const struct opts *o, FILE *out, FILE *err)
{
    const char *cmd = cmd_titles[o->cmd];
    const char *method = "POST";
    char path[64];
    json_t *body = NULL, *doc = NULL;
    struct xfer x = {0};
    char why[CURL_ERROR_SIZE + 64];
    int rc = PT_CLI_FAILED;

    switch (o->cmd) {
    case CMD_ADD:
        snprintf(path, sizeof path, "/admin/cluster/regions");
        body = json_pack("{s:s,s:I,s:s,s:s,s:s}", "name", o->added.name, "id",
                         (json_int_t)o->added.id, "address", o->added.address, "url", o->added.url,
                         "role", pt_ident_role_name(o->added.role));
        break;
    case CMD_REMOVE:
        method = "DELETE";
        snprintf(path, sizeof path, "/admin/cluster/regions/%" PRIu64, o->added.id);
        break;
    default:
        snprintf(path, sizeof path, "/admin/cluster/transfer-leader");
        if (o->given & (1u << F_ID))
            body = json_pack("{s:I}", "id", (json_int_t)o->added.id);
        else
            body = json_object();
        break;
    }
    if (o->cmd != CMD_REMOVE && body == NULL) {
        fprintf(err, "portolan %s: out of memory\n", cmd);
        return PT_CLI_FAILED;
    }
    char leader[512];
    find_leader(o, o->region, leader, sizeof leader);
    if (xfer_setup(&x, method, leader, path, body, o, o->timeout_ms) != 0 ||
        xfer_run(&x, why, sizeof why) != 0) {
        fprintf(err, "portolan %s: %s: %s\n", cmd, x.url, x.errbuf[0] ? x.errbuf : why);
        goto out;
    }
    if (x.status < 200 || x.status > 299) {
        print_http_error(err, cmd, &x);
        goto out;
    }
    doc = parse_json(&x);
    if (o->json) {
        print_json(out, doc);
    } else if (o->cmd == CMD_ADD) {
        fprintf(out, "added region %s (id %" PRIu64 ", %s) (HTTP %ld)\n", o->added.name,
                o->added.id, pt_ident_role_name(o->added.role), x.status);
    } else if (o->cmd == CMD_REMOVE) {
        fprintf(out, "removal of region id %" PRIu64 " accepted (HTTP %ld)\n", o->added.id,
                x.status);
    } else if (o->given & (1u << F_ID)) {
        fprintf(out, "leadership transfer to id %" PRIu64 " accepted (HTTP %ld)\n", o->added.id,
                x.status);
    } else {
        fprintf(out, "leadership transfer accepted (HTTP %ld)\n", x.status);
    }
    rc = PT_CLI_OK;
out:
    json_decref(doc);
    json_decref(body);
    xfer_cleanup(&x);
    return rc;
}

/* ---- replication status ---------------------------------------------------------------- */

/* A byte count as "512B", "1.5KiB", ... "3.0TiB". */
static const char *bytes_cell(char *cell, size_t len, long long v)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double d = (double)v;
    size_t u = 0;

    if (v < 0) {
        snprintf(cell, len, "-");
        return cell;
    }
    if (v < 1024) {
        snprintf(cell, len, "%lldB", v);
        return cell;
    }
    d /= 1024;
    while (d >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        d /= 1024;
        u++;
    }
    snprintf(cell, len, "%.1f%s", d, units[u]);
    return cell;
}

/* An age in seconds as "4.2s", "3m07s" or "5h02m"; "-" when none or not a number >= 0. */
static const char *age_cell(char *cell, size_t len, const json_t *v)
{
    double s = json_is_number(v) ? json_number_value(v) : -1;

    if (!(s > 0) || s > 1e9)
        snprintf(cell, len, "-");
    else if (s < 60)
        snprintf(cell, len, "%.1fs", s);
    else if (s < 3600)
        snprintf(cell, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(cell, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    return cell;
}

/*
 * Takes one region's /admin/replication answer. A region known from the member list must
 * answer with its own name; the region of a single-region node (no member list) is named by
 * its answer.
 */
static void accept_replication(struct member *m, json_t *doc, const void *arg)
{
    const char *region = get_str(doc, "region", PT_CLUSTER_NAME_MAX);
    char c1[80];

    (void)arg;
    if (!json_is_object(doc)) {
        snprintf(m->error, sizeof m->error, "answer is not a JSON object");
    } else if (pt_ident_check_region(region, NULL) != 0) {
        snprintf(m->error, sizeof m->error, "answer names no valid region");
    } else if (m->entry != NULL && strcmp(region, m->name) != 0) {
        snprintf(m->error, sizeof m->error, "its URL answers as region %s",
                 clean(c1, sizeof c1, region, PT_CLUSTER_NAME_MAX));
    } else if (!json_is_boolean(json_object_get(doc, "in_sync"))) {
        snprintf(m->error, sizeof m->error, "answer has no in_sync");
    } else {
        if (m->entry == NULL)
            memcpy(m->name, region, strlen(region) + 1);
        m->self = doc;
        return;
    }
    json_decref(doc);
}

enum rcolumn { R_REGION, R_STATE, R_BLOBS, R_BYTES, R_OLDEST, R_ACTIVE };
#define NRCOLUMNS 6
static const char *const rheaders[NRCOLUMNS] = {"REGION",       "STATE",          "BLOBS-BEHIND",
                                                "BYTES-BEHIND", "OLDEST-MISSING", "ACTIVE"};
#define RCELL_MAX 80

/* Prints the rows cells[0..n) of ncol columns under headers, each column as wide as needed. */
static void print_rows(FILE *out, const char *const *hdr, char (*cells)[RCELL_MAX], size_t n,
                       size_t ncol)
{
    size_t width[NRCOLUMNS] = {0};

    for (size_t c = 0; c < ncol; c++)
        width[c] = strlen(hdr[c]);
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < ncol; c++) {
            size_t w = strlen(cells[i * ncol + c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t i = 0; i <= n; i++) {
        for (size_t c = 0; c < ncol; c++)
            fprintf(out, "%-*s%s", c + 1 < ncol ? (int)width[c] : 0,
                    i == 0 ? hdr[c] : cells[(i - 1) * ncol + c], c + 1 < ncol ? "  " : "\n");
    }
}

static void print_regions_table(FILE *out, const struct member *ms, size_t n)
{
    char(*cells)[RCELL_MAX] = calloc(n ? n * NRCOLUMNS : 1, sizeof *cells);
    char c1[sizeof ms->error];
    size_t in_sync = 0;

    if (cells == NULL) {
        fprintf(out, "out of memory\n");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct member *m = &ms[i];
        char(*row)[RCELL_MAX] = cells + i * NRCOLUMNS;
        json_t *active = json_object_get(m->self, "active");
        bool sync = json_is_true(json_object_get(m->self, "in_sync"));

        snprintf(row[R_REGION], RCELL_MAX, "%s", m->name);
        snprintf(row[R_STATE], RCELL_MAX, "%s",
                 m->self == NULL ? "unreachable"
                 : sync          ? "in-sync"
                                 : "behind");
        num_cell(row[R_BLOBS], RCELL_MAX, get_uint(m->self, "blobs_behind"));
        bytes_cell(row[R_BYTES], RCELL_MAX, get_uint(m->self, "bytes_behind"));
        age_cell(row[R_OLDEST], RCELL_MAX, json_object_get(m->self, "oldest_missing_age_s"));
        if (json_is_array(active))
            snprintf(row[R_ACTIVE], RCELL_MAX, "%zu", json_array_size(active));
        else
            snprintf(row[R_ACTIVE], RCELL_MAX, "-");
        in_sync += m->self != NULL && sync;
    }
    fprintf(out, "replication: %zu of %zu region%s in sync\n", in_sync, n, n == 1 ? "" : "s");
    print_rows(out, rheaders, cells, n, NRCOLUMNS);
    for (size_t i = 0; i < n; i++) {
        if (ms[i].self == NULL)
            fprintf(out, "%s: %s\n", ms[i].name, clean(c1, sizeof c1, ms[i].error, sizeof c1));
    }
    free(cells);
}

/* {"regions": [each region's status, or {"region", "url", "error"}]} */
static json_t *regions_json(const struct member *ms, size_t n)
{
    json_t *regions = json_array();

    for (size_t i = 0; regions != NULL && i < n; i++) {
        const struct member *m = &ms[i];
        /* A region known by no valid name (single region, bad member entry) is null. */
        bool named = pt_ident_check_region(m->name, NULL) == 0;
        json_t *r = m->self != NULL ? json_incref(m->self)
                                    : json_pack("{s:o,s:s,s:s}", "region",
                                                named ? json_string(m->name) : json_null(), "url",
                                                m->url, "error", m->error);
        if (r == NULL || json_array_append_new(regions, r) != 0) {
            json_decref(regions);
            return NULL;
        }
    }
    return regions != NULL ? json_pack("{s:o}", "regions", regions) : NULL;
}

/*
 * The members to ask, from the /admin/cluster answer doc: its "regions", or for a single
 * region (no member list) the queried URL alone. Returns the array (*n entries, owned) or
 * NULL with a message on err.
 */
static struct member *replication_members(const struct opts *o, json_t *doc, const char *url,
                                          size_t *n, FILE *err)
{
    const char *title = cmd_titles[o->cmd];
    json_t *regions = json_object_get(doc, "regions");
    struct member *ms;

    *n = json_is_array(regions) ? json_array_size(regions) : 1;
    if (!json_is_object(doc) || (regions != NULL && !json_is_array(regions))) {
        fprintf(err, "portolan %s: %s: answer is not a cluster document\n", title, url);
        return NULL;
    }
    if (*n > PT_CLUSTER_REGIONS_MAX) {
        fprintf(err, "portolan %s: %s: %zu regions, more than %d\n", title, url, *n,
                PT_CLUSTER_REGIONS_MAX);
        return NULL;
    }
    ms = calloc(*n ? *n : 1, sizeof *ms);
    if (ms == NULL) {
        fprintf(err, "portolan %s: out of memory\n", title);
        return NULL;
    }
    if (regions == NULL) {
        snprintf(ms[0].name, sizeof ms[0].name, "?");
        memcpy(ms[0].url, o->region, strlen(o->region) + 1);
        ms[0].valid = true;
        snprintf(ms[0].error, sizeof ms[0].error, "no answer");
        return ms;
    }
    for (size_t i = 0; i < *n; i++)
        read_member(&ms[i], json_array_get(regions, i));
    return ms;
}

static int cmd_replication_regions(const struct opts *o, FILE *out, FILE *err)
{
    const char *title = cmd_titles[o->cmd];
    struct xfer x = {0};
    struct member *ms = NULL;
    json_t *doc = NULL;
    char why[CURL_ERROR_SIZE + 64];
    size_t n = 0;
    int rc = PT_CLI_FAILED;

    if (xfer_setup(&x, "GET", o->region, "/admin/cluster", NULL, o, o->timeout_ms) != 0 ||
        xfer_run(&x, why, sizeof why) != 0) {
        fprintf(err, "portolan %s: %s: %s\n", title, x.url, x.errbuf[0] ? x.errbuf : why);
        goto out;
    }
    if (x.status != 200) {
        print_http_error(err, title, &x);
        goto out;
    }
    doc = parse_json(&x);
    ms = replication_members(o, doc, x.url, &n, err);
    if (ms == NULL)
        goto out;
    fetch_all(ms, n, o, "/admin/replication", accept_replication, NULL);
    rc = PT_CLI_OK;
    for (size_t i = 0; i < n; i++) {
        if (ms[i].self == NULL)
            rc = PT_CLI_FAILED;
    }
    if (o->json) {
        json_t *all = regions_json(ms, n);
        if (all == NULL) {
            fprintf(err, "portolan %s: out of memory\n", title);
            rc = PT_CLI_FAILED;
            goto out;
        }
        print_json(out, all);
        json_decref(all);
    } else {
        print_regions_table(out, ms, n);
    }
out:
    for (size_t i = 0; ms != NULL && i < n; i++) {
        xfer_cleanup(&ms[i].x);
        json_decref(ms[i].self);
    }
    free(ms);
    json_decref(doc);
    xfer_cleanup(&x);
    return rc;
}

#define MISSING_SHOWN_MAX 5 /* missing digests listed per region */

/* Prints the per-image document: one row per region, then what each incomplete region lacks. */
static void print_image(FILE *out, const struct opts *o, json_t *doc)
{
    static const char *const hdr[] = {"REGION", "STATE", "BLOBS-MISSING", "BYTES-MISSING"};
    json_t *regions = json_object_get(doc, "regions"), *blobs = json_object_get(doc, "blobs");
    json_t *complete = json_object_get(doc, "complete"), *missing = json_object_get(doc, "missing");
    size_t n = json_array_size(regions), nblobs = json_array_size(blobs), i, j;
    char(*cells)[RCELL_MAX] = calloc(n ? n * 4 : 1, sizeof *cells);
    char c1[RCELL_MAX], c2[RCELL_MAX];
    long long total = 0;
    json_t *v, *b;

    if (cells == NULL) {
        fprintf(out, "out of memory\n");
        return;
    }
    json_array_foreach(blobs, i, b)
    {
        long long size = get_uint(b, "size");
        if (size > 0 && total <= INT64_MAX - size)
            total += size;
    }
    fprintf(out, "image %s%s%s (%s): %zu blob%s, %s\n", o->image_name,
            o->image_by_digest ? "@" : ":", o->image_ref,
            clean(c1, sizeof c1, get_str(doc, "digest", 128), 128), nblobs, nblobs == 1 ? "" : "s",
            bytes_cell(c2, sizeof c2, total));
    json_array_foreach(regions, i, v)
    {
        char(*row)[RCELL_MAX] = cells + i * 4;
        const char *name = json_string_value(v);
        json_t *gap = json_object_get(missing, name ? name : "");
        bool done = false;

        json_array_foreach(complete, j, b)
        {
            if (name != NULL && json_is_string(b) && strcmp(json_string_value(b), name) == 0)
                done = true;
        }
        clean(row[0], RCELL_MAX, name ? name : "?", PT_CLUSTER_NAME_MAX);
        snprintf(row[1], RCELL_MAX, "%s", done ? "complete" : gap ? "missing" : "unknown");
        num_cell(row[2], RCELL_MAX, done ? 0 : get_uint(gap, "blobs"));
        bytes_cell(row[3], RCELL_MAX, done ? 0 : get_uint(gap, "bytes"));
    }
    print_rows(out, hdr, cells, n, 4);
    free(cells);
    /* Per incomplete region, the first digests it lacks. */
    json_array_foreach(regions, i, v)
    {
        const char *name = json_string_value(v);
        size_t shown = 0, lacking = 0;

        if (name == NULL || json_object_get(missing, name) == NULL)
            continue;
        json_array_foreach(blobs, j, b)
        {
            json_t *holders = json_object_get(b, "regions"), *h;
            size_t k;
            bool held = false;
            json_array_foreach(holders, k, h)
            {
                if (json_is_string(h) && strcmp(json_string_value(h), name) == 0)
                    held = true;
            }
            if (held)
                continue;
            if (lacking++ == 0)
                fprintf(out, "%s lacks:", clean(c1, sizeof c1, name, PT_CLUSTER_NAME_MAX));
            if (shown < MISSING_SHOWN_MAX) {
                fprintf(out, " %s", clean(c2, sizeof c2, get_str(b, "digest", 128), 128));
                shown++;
            }
        }
        if (lacking > shown)
            fprintf(out, " (and %zu more)", lacking - shown);
        if (lacking > 0)
            fputc('\n', out);
    }
}

static int cmd_replication_image(const struct opts *o, FILE *out, FILE *err)
{
    const char *title = cmd_titles[o->cmd];
    struct xfer x = {0};
    json_t *doc = NULL;
    char path[PT_NAME_MAX + PT_DIGEST_INPUT_MAX + 64];
    char why[CURL_ERROR_SIZE + 64];
    int rc = PT_CLI_FAILED;

    snprintf(path, sizeof path, "/admin/replication/image?name=%s&reference=%s", o->image_name,
             o->image_ref);
    if (xfer_setup(&x, "GET", o->region, path, NULL, o, o->timeout_ms) != 0 ||
        xfer_run(&x, why, sizeof why) != 0) {
        fprintf(err, "portolan %s: %s: %s\n", title, x.url, x.errbuf[0] ? x.errbuf : why);
        goto out;
    }
    if (x.status != 200) {
        print_http_error(err, title, &x);
        goto out;
    }
    doc = parse_json(&x);
    if (!json_is_object(doc) || !json_is_array(json_object_get(doc, "regions")) ||
        !json_is_array(json_object_get(doc, "blobs")) ||
        !json_is_array(json_object_get(doc, "complete")) ||
        !json_is_object(json_object_get(doc, "missing"))) {
        fprintf(err,
                "portolan %s: %s: answer is not an image replication document "
                "(regions, blobs, complete, missing)\n",
                title, x.url);
        goto out;
    }
    if (json_array_size(json_object_get(doc, "regions")) > PT_ADMIN_IMAGE_REGIONS_MAX) {
        fprintf(err, "portolan %s: %s: answer lists more than %d regions\n", title, x.url,
                PT_ADMIN_IMAGE_REGIONS_MAX);
        goto out;
    }
    if (o->json)
        print_json(out, doc);
    else
        print_image(out, o, doc);
    rc = PT_CLI_OK;
out:
    json_decref(doc);
    xfer_cleanup(&x);
    return rc;
}

/* ---- entry ----------------------------------------------------------------------------- */

/* Runs command c with the arguments that follow its name (argv[0..argc), borrowed); usage
 * prints the help of c's group. */
static int run(enum cmd c, int argc, char **argv, FILE *out, FILE *err, void (*usage)(FILE *))
{
    struct opts o = {
        .cmd = c, .timeout_ms = DEFAULT_TIMEOUT_MS, .added = {.role = PT_CLUSTER_VOTER}};
    int rc;

    for (int i = 0; i < argc; i++) {
        if (argv[i] != NULL && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
            usage(out);
            return PT_CLI_OK;
        }
    }
    rc = parse_args(&o, argc, argv, err);
    if (rc != 0)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(err, "portolan %s: cannot initialise libcurl\n", cmd_titles[c]);
        return PT_CLI_FAILED;
    }
    if (c == CMD_STATUS)
        rc = cmd_status(&o, out, err);
    else if (c == CMD_REPLICATION && o.has_image)
        rc = cmd_replication_image(&o, out, err);
    else if (c == CMD_REPLICATION)
        rc = cmd_replication_regions(&o, out, err);
    else
        rc = cmd_change(&o, out, err);
    curl_global_cleanup();
    return rc;
}

static bool is_help(const char *a)
{
    return strcmp(a, "help") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

int pt_cli_cluster(int argc, char **argv, FILE *out, FILE *err)
{
    size_t c;

    if (argc < 1 || argv[0] == NULL) {
        pt_cli_cluster_usage(err);
        return PT_CLI_USAGE;
    }
    if (is_help(argv[0])) {
        pt_cli_cluster_usage(out);
        return PT_CLI_OK;
    }
    for (c = 0; c < CLUSTER_CMDS; c++) {
        if (strcmp(argv[0], cmd_names[c]) == 0)
            break;
    }
    if (c == CLUSTER_CMDS) {
        fprintf(err, "portolan cluster: unknown command \"%.64s\"\n", argv[0]);
        pt_cli_cluster_usage(err);
        return PT_CLI_USAGE;
    }
    return run((enum cmd)c, argc - 1, argv + 1, out, err, pt_cli_cluster_usage);
}

int pt_cli_replication(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 1 || argv[0] == NULL) {
        pt_cli_replication_usage(err);
        return PT_CLI_USAGE;
    }
    if (is_help(argv[0])) {
        pt_cli_replication_usage(out);
        return PT_CLI_OK;
    }
    if (strcmp(argv[0], cmd_names[CMD_REPLICATION]) != 0) {
        fprintf(err, "portolan replication: unknown command \"%.64s\"\n", argv[0]);
        pt_cli_replication_usage(err);
        return PT_CLI_USAGE;
    }
    return run(CMD_REPLICATION, argc - 1, argv + 1, out, err, pt_cli_replication_usage);
}
