/*
 * policy_args.c - what the policy commands (quota, throttle, repo, tag-rule, retention)
 * share: splitting their command line into operands, their own flags and the flags every admin
 * command takes (which args.c checks), and running one of them between the credentials'
 * resolution and libcurl's global set-up and clean-up (cli_policy_run, or cli_policy_begin and
 * cli_policy_end around it).
 *
 * Each of these groups is one entry of enum cli_cmd (CMD_QUOTA, CMD_THROTTLE, CMD_REPO_LIST,
 * CMD_REPO, CMD_TAG_RULE, CMD_RETENTION):
 * its verb and operands are read here, so the shared tables of args.c grow by one command per
 * group, not one per verb.
 */
#include "cli.h"
#include "cli_int.h"

#include <string.h>

/* The flags of every admin command that take a value (args.c). */
static bool common_takes_value(const char *a)
{
    static const char *const names[] = {"--region", "--cacert", "--timeout", "--user"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(a, names[i]) == 0)
            return true;
    return false;
}

int cli_policy_parse(struct cli_opts *o, enum cli_cmd c, int argc, char **argv,
                     const struct cli_policy_flag *own, size_t n_own, struct cli_policy_args *pa,
                     FILE *err)
{
    const char *title = cli_cmd_titles[c];
    char *common[64];
    int nc = 0;
    memset(pa, 0, sizeof(*pa));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a == NULL)
            break;
        if (a[0] != '-' || a[1] == '\0') {
            if (pa->n_operands == CLI_POLICY_OPERANDS_MAX) {
                fprintf(err, "portolan %s: unexpected argument \"%.64s\"\n", title, a);
                return PT_CLI_USAGE;
            }
            pa->operands[pa->n_operands++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - a) : strlen(a);
        size_t f;
        for (f = 0; f < n_own; f++)
            if (strlen(own[f].name) == nlen && memcmp(own[f].name, a, nlen) == 0)
                break;
        if (f < n_own) {
            if (!own[f].has_value) {
                if (eq != NULL) {
                    fprintf(err, "portolan %s: %s takes no value\n", title, own[f].name);
                    return PT_CLI_USAGE;
                }
                pa->values[f] = "";
            } else if (eq != NULL) {
                pa->values[f] = eq + 1;
            } else if (i + 1 < argc && argv[i + 1] != NULL && strncmp(argv[i + 1], "--", 2) != 0) {
                pa->values[f] = argv[++i];
            } else {
                fprintf(err, "portolan %s: %s: missing value\n", title, own[f].name);
                return PT_CLI_USAGE;
            }
            continue;
        }
        if (nc + 2 > (int)(sizeof common / sizeof common[0])) {
            fprintf(err, "portolan %s: too many arguments\n", title);
            return PT_CLI_USAGE;
        }
        common[nc++] = argv[i];
        if (eq == NULL && common_takes_value(a) && i + 1 < argc)
            common[nc++] = argv[++i];
    }
    return cli_args_parse(o, c, nc, common, err);
}

int cli_policy_run(struct cli_opts *o,
                   int (*fn)(const struct cli_opts *o, const void *arg, FILE *out, FILE *err),
                   const void *arg, FILE *out, FILE *err)
{
    int rc = cli_cred_resolve(o, err);
    if (rc == 0) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(err, "portolan %s: cannot initialise libcurl\n", cli_cmd_titles[o->cmd]);
            rc = PT_CLI_FAILED;
        } else {
            rc = fn(o, arg, out, err);
            curl_global_cleanup();
        }
    }
    explicit_bzero(&o->cred, sizeof o->cred);
    return rc;
}

bool cli_policy_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (argv[i] != NULL && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
                                (i == 0 && strcmp(argv[i], "help") == 0)))
            return true;
    return false;
}

int cli_policy_begin(struct cli_opts *o, enum cli_cmd c, const char *sub, int argc, char **argv,
                     struct cli_extra *ex, size_t nex, const char **ops, size_t max_ops,
                     size_t *nops, FILE *err)
{
    struct cli_policy_flag own[CLI_POLICY_FLAGS_MAX];
    struct cli_policy_args pa;
    *nops = 0;
    if (nex > CLI_POLICY_FLAGS_MAX || max_ops > CLI_POLICY_OPERANDS_MAX)
        return PT_CLI_FAILED;
    for (size_t k = 0; k < nex; k++)
        own[k] = (struct cli_policy_flag){ex[k].name, ex[k].has_value};
    int rc = cli_policy_parse(o, c, argc, argv, own, nex, &pa, err);
    if (rc != 0)
        return rc;
    if (pa.n_operands > max_ops) {
        fprintf(err, "portolan %s %s: unexpected argument \"%.64s\"\n", cli_cmd_titles[c], sub,
                pa.operands[max_ops]);
        return PT_CLI_USAGE;
    }
    for (size_t k = 0; k < nex; k++) {
        ex[k].given = pa.values[k] != NULL;
        ex[k].value = ex[k].has_value ? pa.values[k] : NULL;
    }
    for (size_t i = 0; i < pa.n_operands; i++)
        ops[i] = pa.operands[i];
    *nops = pa.n_operands;
    rc = cli_cred_resolve(o, err);
    if (rc == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(err, "portolan %s: cannot initialise libcurl\n", cli_cmd_titles[c]);
        rc = PT_CLI_FAILED;
    }
    if (rc != 0)
        explicit_bzero(&o->cred, sizeof o->cred);
    return rc;
}

void cli_policy_end(struct cli_opts *o)
{
    curl_global_cleanup();
    explicit_bzero(&o->cred, sizeof o->cred);
}
