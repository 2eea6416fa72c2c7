/*
 * config_env.c - the environment layer of the settings: PORTOLAN_<KEY> for every setting.
 *
 * Design: a variable maps onto the settings table's row whose YAML key, upper-cased, follows
 * the prefix, and goes through the same pt_config__set_value as a YAML key or a flag, named by
 * the variable. env_not_settings[] lists the PORTOLAN_* variables read for other purposes; any
 * other PORTOLAN_* variable is refused unless it is a Kubernetes service link, so a mistyped
 * setting never goes unnoticed. Values are never quoted in messages (some are secrets).
 *
 * Threads: none; runs at start-up on the caller's thread.
 */
#include "config_int.h"

#include <string.h>

#define ENV_PREFIX     "PORTOLAN_"
#define ENV_PREFIX_LEN (sizeof ENV_PREFIX - 1)

/*
 * PORTOLAN_* variables that are not settings: the project's commands and scripts read them
 * for other purposes, so the environment layer passes over them. One row per variable (name
 * without the prefix) and who reads it. Their values are never quoted in any message: some
 * are secrets.
 */
static const struct {
    const char *name;
    const char *reader;
} env_not_settings[] = {
    {"CONFIG", "the YAML file of `portolan serve`, like --config"},
    {"INITIAL_ADMIN_PASSWORD", "the first administrator's password (node/http/auth_startup.c)"},
    {"USER", "the user name of the command-line client (node/cli/credentials.c)"},
    {"PASSWORD", "the password of the command-line client (node/cli/credentials.c)"},
    {"PASSWORD_FILE", "the file holding the pod start script's password (deploy/pod-start.sh)"},
    {"AUTH", "on/off for the regions of deploy/local-cluster.sh"},
    {"BIN", "the binary the integration tests run (tests/lib/harness.py)"},
    {"BOOTSTRAP_MEMBERS", "the pods of the initial cluster (deploy/pod-start.sh)"},
    {"PEER_DOMAIN", "the DNS domain of the pods' peer addresses (deploy/pod-start.sh)"},
    {"URL_TEMPLATE", "the client URL of an added pod (deploy/pod-start.sh)"},
    {"JOIN_VIA", "the region an added pod joins through (deploy/pod-start.sh)"},
    {"JOIN_RETRY_SECONDS", "how often an added pod asks to be added (deploy/pod-start.sh)"},
    {"PEER_ADDRESS_TEMPLATE", "the peer address of an added pod (deploy/pod-start.sh)"},
    {"PEER_TLS_DIR", "the directory of the pods' peer certificates (deploy/pod-start.sh)"},
};

static bool env_is_not_setting(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof env_not_settings / sizeof env_not_settings[0]; i++) {
        if (strlen(env_not_settings[i].name) == len &&
            memcmp(env_not_settings[i].name, name, len) == 0)
            return true;
    }
    return false;
}

void pt_config__env_usage(FILE *out)
{
    for (size_t i = 0; i < sizeof env_not_settings / sizeof env_not_settings[0]; i++)
        fprintf(out, "%s%s%s",
                i == 0       ? "\n  "
                : i % 4 == 0 ? ",\n  "
                             : ", ",
                ENV_PREFIX, env_not_settings[i].name);
}

/* True if s[0..len) is one or more decimal digits. */
static bool all_digits(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/*
 * Kubernetes writes service links into every container of a namespace with a Service called
 * portolan (or portolan-<x>): <SVC>_SERVICE_HOST=<ip>, <SVC>_SERVICE_PORT[_<NAME>]=<port>,
 * <SVC>_PORT=tcp://<ip>:<port> and <SVC>_PORT_<port>_<TCP|UDP|SCTP>[_PROTO|_PORT|_ADDR]. These
 * are recognised by name and value shape so that they are not taken for mistyped settings;
 * a typo such as PORTOLAN_METRICS_PORT=9090 still is refused (its value is not a URL).
 * name is the variable without "PORTOLAN_" (len bytes), value its value.
 */
static bool env_is_service_link(const char *name, size_t len, const char *value)
{
    static const char *const protos[] = {"_TCP", "_UDP", "_SCTP"};
    const char *p;
    char full[256];

    if (len + 2 > sizeof full)
        return false;
    /* Work on "_<name>" so every segment starts with '_'. */
    full[0] = '_';
    memcpy(full + 1, name, len);
    full[len + 1] = '\0';
    if ((p = strstr(full, "_SERVICE_HOST")) != NULL && p[13] == '\0')
        return true;
    if ((p = strstr(full, "_SERVICE_PORT")) != NULL && (p[13] == '\0' || p[13] == '_'))
        return all_digits(value, strlen(value));
    if (len >= 4 && strcmp(full + len + 1 - 5, "_PORT") == 0 &&
        (strncmp(value, "tcp://", 6) == 0 || strncmp(value, "udp://", 6) == 0 ||
         strncmp(value, "sctp://", 7) == 0))
        return true;
    for (p = strstr(full, "_PORT_"); p != NULL; p = strstr(p + 1, "_PORT_")) {
        const char *num = p + 6, *end = num;
        while (*end >= '0' && *end <= '9')
            end++;
        if (end == num)
            continue;
        for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++) {
            size_t n = strlen(protos[i]);
            if (strncmp(end, protos[i], n) == 0 &&
                (end[n] == '\0' || strcmp(end + n, "_PROTO") == 0 ||
                 strcmp(end + n, "_PORT") == 0 || strcmp(end + n, "_ADDR") == 0))
                return true;
        }
    }
    return false;
}

/* The setting whose upper-cased key is name[0..len), or NULL. */
static const struct option *find_env_key(const char *name, size_t len)
{
    for (size_t i = 0; i < pt_config__noptions(); i++) {
        const char *k = pt_config__option(i)->key;
        size_t j;

        if (strlen(k) != len)
            continue;
        for (j = 0; j < len; j++) {
            char u = (k[j] >= 'a' && k[j] <= 'z') ? (char)(k[j] - 'a' + 'A') : k[j];
            if (name[j] != u)
                break;
        }
        if (j == len)
            return pt_config__option(i);
    }
    return NULL;
}

/* The value of PORTOLAN_CONFIG in envp (borrowed), or NULL. */
const char *pt_config__env_config_path(char *const *envp)
{
    static const char var[] = ENV_PREFIX "CONFIG=";

    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        if (strncmp(envp[i], var, sizeof var - 1) == 0)
            return envp[i] + sizeof var - 1;
    }
    return NULL;
}

int pt_config_apply_env(struct pt_config *c, char *const *envp, char *err, size_t errlen)
{
    struct pt_config tmp = *c;
    uint64_t seen = 0;

    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        const char *e = envp[i], *eq, *name, *value;
        const struct option *o;
        char var[ENV_PREFIX_LEN + 64];
        size_t len;
        uint64_t bit;
        int rc;

        if (strncmp(e, ENV_PREFIX, ENV_PREFIX_LEN) != 0 || (eq = strchr(e, '=')) == NULL)
            continue;
        name = e + ENV_PREFIX_LEN;
        len = (size_t)(eq - name);
        value = eq + 1;
        if (env_is_not_setting(name, len))
            continue;
        o = find_env_key(name, len);
        if (o == NULL) {
            if (env_is_service_link(name, len, value))
                continue;
            return pt_config__fail(
                err, errlen,
                "environment variable %.*s is not a setting of portolan serve (settings "
                "are PORTOLAN_ and a key of `portolan serve --help` in upper case, e.g. "
                "PORTOLAN_DATA_DIR); unset it or correct its name",
                (int)(len + ENV_PREFIX_LEN < QUOTE_MAX ? len + ENV_PREFIX_LEN : QUOTE_MAX), e);
        }
        bit = UINT64_C(1) << (o - pt_config__option(0));
        snprintf(var, sizeof var, ENV_PREFIX "%.*s", (int)len, name);
        if (seen & bit)
            return pt_config__fail(err, errlen, "environment variable %s: given twice", var);
        seen |= bit;
        rc = pt_config__set_value(&tmp, o, var, value, err, errlen);
        if (rc != 0)
            return rc;
    }
    *c = tmp;
    return 0;
}
