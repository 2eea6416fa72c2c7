/*
 * pattern.h - the vocabulary of access control: identity names, repository patterns, action
 * bits and grants ("team/app-*:pull,push").
 *
 * Role: pure functions shared by the replicated state (validation in replication/fsm.c), the
 * in-memory directory (directory.c) and the HTTP gate. No state, no allocation.
 *
 * Design: a repository pattern follows the repository name grammar (OCI distribution-spec
 * "Pulling manifests": [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+(...)*)*) except that a
 * path component may hold '*' globs ("*" is exactly one component, "app-*" a glob inside one
 * component, never crossing '/') and the last component (or the whole pattern) may be "**",
 * which matches any number (zero or more) of further components. "*" alone is every
 * repository without a slash; "**" alone is every repository; "team" followed by a last
 * component "**" matches "team" itself and everything under "team/".
 *
 * Invariants: a pattern accepted by pt_pattern_valid is at most PT_AUTH_PATTERN_MAX bytes
 * and matching costs O(len(pattern) * len(repo)) at worst, with no recursion.
 *
 * Threads: every function is reentrant.
 */
#ifndef PT_AUTH_PATTERN_H
#define PT_AUTH_PATTERN_H

#include <stddef.h>

#define PT_AUTH_NAME_MAX    64 /* user names and token ids: [a-z0-9][a-z0-9._-]{0,63} */
#define PT_AUTH_PATTERN_MAX 255
#define PT_AUTH_GRANTS_MAX  32 /* grants per identity */

/* Action bits. ADMIN is registry-wide and implies pull, push and delete everywhere. */
enum { PT_ACTION_PULL = 1, PT_ACTION_PUSH = 2, PT_ACTION_DELETE = 4, PT_ACTION_ADMIN = 8 };
#define PT_ACTIONS_ALL 15

/* A repository pattern with the actions it grants. */
struct pt_grant {
    char pattern[PT_AUTH_PATTERN_MAX + 1];
    unsigned actions;
};

/* 1 if s[0..len) is a valid user name or token id ([a-z0-9][a-z0-9._-]{0,63}), else 0. s is
 * borrowed and need not be NUL-terminated. */
int pt_auth_name_valid(const char *s, size_t len);

/* 1 if p[0..len) is a valid repository pattern (see the file comment), else 0. p is borrowed
 * and need not be NUL-terminated; an embedded NUL makes it invalid. */
int pt_pattern_valid(const char *p, size_t len);

/* 1 if the repository name repo[0..repo_len) matches pattern (NUL-terminated, valid per
 * pt_pattern_valid), else 0. Both borrowed. An invalid pattern, or a repository name that is
 * empty or holds a NUL, matches nothing. */
int pt_pattern_match(const char *pattern, const char *repo, size_t repo_len);

/*
 * Parses a grant: "<pattern>:<actions>" where actions is a comma-separated list of pull, push,
 * delete, admin or "*" (= pull,push,delete). "admin" alone or "*:admin" or "**:admin" give
 * ("**", PT_ACTION_ADMIN); admin on any other pattern is refused (admin is registry-wide).
 * A pattern without ":<actions>" is refused. text is borrowed (NUL-terminated); on success the
 * pattern is written NUL-terminated into pattern (pattern_size bytes, at least
 * PT_AUTH_PATTERN_MAX + 1 to hold any) and the bits into *actions. 0, or PT_E_CONFIG for
 * anything malformed or too long (then the outputs are unspecified).
 */
int pt_grant_parse(const char *text, char *pattern, size_t pattern_size, unsigned *actions);

/* Writes the names of the action bits, comma-separated in the order pull, push, delete,
 * admin ("" for 0; unknown bits are ignored), NUL-terminated and truncated to size bytes. */
void pt_actions_format(unsigned actions, char *buf, size_t size);

/* 1 if actions is non-zero and holds no bit outside PT_ACTIONS_ALL, else 0. */
int pt_actions_valid(unsigned actions);

/* The effective bits of a grant set: ADMIN implies pull, push and delete. */
unsigned pt_actions_effective(unsigned actions);

#endif
