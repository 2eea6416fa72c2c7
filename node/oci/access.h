/*
 * access.h - the grammar of access control records: identity names, repository patterns,
 * action bits and the stored forms of password hashes and token secrets.
 *
 * Role: pure syntax checks and pattern matching shared by the layers that must agree on them
 * without depending on each other: the store and the FSM validate replicated records with
 * them, and node/auth (pattern.h, password.h) builds its vocabulary on them.
 *
 * Design: a repository pattern follows the repository name grammar (reference.h), except
 * that a path component may hold '*' globs ("*" is exactly one component, "app-*" a glob
 * inside one component, never crossing '/'), and the last component (or the whole pattern)
 * may be a double star, which matches any number (zero or more) of further components. A
 * single star alone is every repository without a slash; a double star alone is every
 * repository. Pattern characters are the name characters [a-z0-9._-] plus '*'; components
 * are non-empty.
 *
 * Invariants: every function reads only the bytes it is given (length-delimited input need
 * not be NUL-terminated), never allocates and never recurses; matching costs at most
 * O(len(pattern) * len(repo)).
 *
 * Threads: every function is reentrant.
 */
#ifndef PT_ACCESS_H
#define PT_ACCESS_H

#include <stddef.h>

#define PT_ACCESS_NAME_MAX        64  /* user names, token ids, key ids, token (jti) ids */
#define PT_ACCESS_PATTERN_MAX     255 /* repository patterns */
#define PT_ACCESS_ACTIONS_ALL     15  /* pull 1, push 2, delete 4, admin 8 */
#define PT_ACCESS_ADMIN           8   /* registry-wide: only on the pattern "**" */
#define PT_ACCESS_HASH_MAX        255 /* stored password hash, without NUL */
#define PT_ACCESS_SECRET_HASH_LEN 71  /* "sha256:" + 64 hex */

/* 1 if s[0..len) is a user name or token id: [a-z0-9][a-z0-9._-]{0,63}; else 0. */
int pt_access_name_valid(const char *s, size_t len);

/* 1 if s[0..len) is a key id or token (jti) id: [A-Za-z0-9._-]{1,64} (base64url and
 * friends); else 0. */
int pt_access_id_valid(const char *s, size_t len);

/* 1 if p[0..len) is a repository pattern (file comment), else 0. */
int pt_access_pattern_valid(const char *p, size_t len);

/* 1 if repo[0..repo_len) matches pattern p[0..plen), else 0. p must be valid per
 * pt_access_pattern_valid (an invalid one gives an unspecified but safe answer); an empty
 * repository matches nothing. */
int pt_access_pattern_match(const char *p, size_t plen, const char *repo, size_t repo_len);

/* 1 if actions is non-zero and holds no bit outside PT_ACCESS_ACTIONS_ALL, else 0. */
int pt_access_actions_valid(unsigned actions);

/* 1 if h (NUL-terminated) looks like a yescrypt hash from crypt(3): "$y$" then the parameter,
 * salt and hash fields, non-empty, in crypt's base64 alphabet [./0-9A-Za-z], at most
 * PT_ACCESS_HASH_MAX bytes. Else 0. */
int pt_access_password_hash_valid(const char *h);

/* 1 if h (NUL-terminated) is "sha256:" + 64 lowercase hex, else 0. */
int pt_access_secret_hash_valid(const char *h);

#endif
