/*
 * args.c - the command line of `portolan cluster ...` and `portolan replication status`:
 * command names, the flags each command takes, the checks of their values, the image
 * argument, and the usage texts that describe them.
 *
 * Design: one table of flags, each with the set of commands that accept it, so a flag given
 * to the wrong command is refused the same way as an unknown one. Values are checked here
 * with the rules the cluster file uses (ident.h, addr.h) and the registry's own grammar for
 * names, tags and digests, so the commands never see an argument they would have to refuse.
 * Flags are "--flag value" or "--flag=value"; a value never starts with "--".
 */
#include "cli.h"
#include "cli_int.h"

#include "addr.h"
#include "reference.h"
#include "units.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 5000 /* one admin request */

const char *const cli_cmd_names[] = {"status", "add", "remove", "transfer-leader", "status"};
const char *const cli_cmd_titles[] = {"cluster status", "cluster add", "cluster remove",
                                      "cluster transfer-leader", "replication status"};

/* Flags and the commands that take them (bit per enum cli_cmd). */
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

int cli_take_url(char *dst, const char *src, const char **why)
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

static int set_flag(struct cli_opts *o, enum cli_flag f, const char *v, FILE *err)
{
    const char *why = NULL;
    const char *name = flags[f].name;

    switch (f) {
    case F_REGION:
        if (cli_take_url(o->region, v, &why) != 0)
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
        if (cli_take_url(o->added.url, v, &why) != 0)
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
    fprintf(err, "portolan %s: %s: \"%.64s\": %s\n", cli_cmd_titles[o->cmd], name, v, why);
    return PT_CLI_USAGE;
}

/*
 * The image argument of `replication status`: NAME:TAG, NAME@DIGEST or NAME (the tag then is
 * "latest"), each part checked with the registry's own grammar. Names, tags and sha256 or
 * sha512 digests hold only characters a query value may carry as they are, so they go into the
 * request URL unescaped.
 */
static int parse_image(struct cli_opts *o, const char *a, FILE *err)
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
                    cli_cmd_titles[o->cmd], a);
            return PT_CLI_USAGE;
        }
        o->image_by_digest = true;
    } else if (colon != NULL && (slash == NULL || colon > slash)) {
        nlen = (size_t)(colon - a);
        ref = colon + 1;
        if (pt_tag_validate(ref, strlen(ref)) != 0) {
            fprintf(err, "portolan %s: \"%.80s\": not a valid tag after ':'\n",
                    cli_cmd_titles[o->cmd], a);
            return PT_CLI_USAGE;
        }
    }
    if (pt_name_validate(a, nlen) != 0) {
        fprintf(err,
                "portolan %s: \"%.80s\": not NAME:TAG or NAME@DIGEST with a repository name "
                "(lower case, digits, separators . _ - /)\n",
                cli_cmd_titles[o->cmd], a);
        return PT_CLI_USAGE;
    }
    memcpy(o->image_name, a, nlen);
    o->image_name[nlen] = '\0';
    snprintf(o->image_ref, sizeof o->image_ref, "%s", ref);
    o->has_image = true;
    return 0;
}

int cli_args_parse(struct cli_opts *o, enum cli_cmd c, int argc, char **argv, FILE *err)
{
    const char *cmd = cli_cmd_titles[c];

    *o = (struct cli_opts){
        .cmd = c, .timeout_ms = DEFAULT_TIMEOUT_MS, .added = {.role = PT_CLUSTER_VOTER}};

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
        int rc = set_flag(o, (enum cli_flag)f, v, err);
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

/* ---- usage ---------------------------------------------------------------------------- */

void pt_cli_cluster_usage(FILE *out)
{
    fprintf(out, "usage: portolan cluster <command> --region URL [flags]\n\n"
                 "commands:\n"
                 "  status            membership and raft state of every region, as a table\n"
                 "  add               add a region: --name N --id I --address HOST:PORT --url URL\n"
                 "                    [--role voter|standby] (default voter)\n"
                 "  remove            remove a region: --id I\n"
                 "  transfer-leader   hand leadership to --id I, or to a voter the leader picks\n"
                 "  certs             make the peer port's TLS certificates (no --region):\n"
                 "                    --out DIR --regions a,b,c [--days N] [--ca DIR]\n\n"
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
