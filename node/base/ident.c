/*
 * ident.c - the names and ids by which a cluster and its regions are known: checked the same
 * way in the cluster file, on the admin API and in the command-line client.
 */
#include "ident.h"

#include "bounds.h"
#include "err.h"

#include <stddef.h>
#include <string.h>

static int reason(const char **why, const char *text)
{
    if (why != NULL)
        *why = text;
    return text == NULL ? 0 : PT_E_CONFIG;
}

int pt_ident_check_cluster_id(const char *s, const char **why)
{
    size_t n;

    if (s == NULL || s[0] == '\0')
        return reason(why, "must not be empty");
    n = strnlen(s, PT_CLUSTER_ID_MAX + 1);
    if (n > PT_CLUSTER_ID_MAX)
        return reason(why, "longer than 64 bytes");
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return reason(why, "must match [A-Za-z0-9._-]{1,64}");
    }
    return 0;
}

int pt_ident_check_region(const char *s, const char **why)
{
    size_t n;

    if (s == NULL || s[0] == '\0')
        return reason(why, "must not be empty");
    n = strnlen(s, PT_CLUSTER_NAME_MAX + 1);
    if (n > PT_CLUSTER_NAME_MAX)
        return reason(why, "longer than 63 bytes");
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return reason(why, "must match [a-z0-9-]{1,63}");
    }
    return 0;
}

int pt_ident_parse_server_id(const char *s, uint64_t *id)
{
    uint64_t v = 0;

    if (s == NULL || s[0] == '\0')
        return PT_E_CONFIG;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return PT_E_CONFIG;
        unsigned d = (unsigned)(*p - '0');
        if (v > (PT_CLUSTER_SERVER_ID_MAX - d) / 10)
            return PT_E_CONFIG;
        v = v * 10 + d;
    }
    if (v == 0)
        return PT_E_CONFIG;
    *id = v;
    return 0;
}

int pt_ident_parse_role(const char *s, int *role)
{
    static const int roles[] = {PT_CLUSTER_VOTER, PT_CLUSTER_STANDBY, PT_CLUSTER_SPARE};

    if (s == NULL)
        return PT_E_CONFIG;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        if (strcmp(s, pt_ident_role_name(roles[i])) == 0) {
            *role = roles[i];
            return 0;
        }
    }
    return PT_E_CONFIG;
}

const char *pt_ident_role_name(int role)
{
    switch (role) {
    case PT_CLUSTER_VOTER:
        return "voter";
    case PT_CLUSTER_STANDBY:
        return "standby";
    case PT_CLUSTER_SPARE:
        return "spare";
    default:
        return "unknown";
    }
}
