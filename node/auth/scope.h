/*
 * scope.h - Docker token scopes ("repository:<name>:<actions>", "registry:catalog:*").
 *
 * Role: parse the scope a client asks /token for (Docker token authentication specification,
 * "Requesting a Token" and the "Token Scope Documentation" grammar) and format the scope a
 * 401 challenge names. Pure, no allocation; fuzzed by tests/fuzz/fuzz_scope.c.
 *
 * Grammar accepted (one scope; several are separated by one or more spaces):
 *   scope        ::= resourcetype ":" resourcename ":" action ("," action)*
 *   resourcetype ::= "repository" | "registry"   (anything else of [a-z0-9()]+ is skipped)
 *   resourcename ::= a repository name (oci/reference.h) for "repository", "catalog" for
 *                    "registry"; the name runs to the LAST ':' (a name has no ':')
 *   action       ::= "pull" | "push" | "delete" | "*" (= pull,push,delete); other words of
 *                    [a-z0-9_-]+ are ignored, as the Docker spec lets a server grant less
 * Repeated scopes for the same resource are merged (actions OR-ed) into one entry.
 *
 * Invariants: each entry written has registry = 1 and name "catalog", or registry = 0 and a
 * valid repository name; name is NUL-terminated; actions holds only PULL|PUSH|DELETE bits
 * (possibly 0 when only unknown actions were asked for).
 * Threads: none (pure).
 */
#ifndef PT_AUTH_SCOPE_H
#define PT_AUTH_SCOPE_H

#include <stddef.h>

#include "auth_vocab.h"

#define PT_SCOPE_MAX 16
/* Longest single scope string looked at, and longest scope parameter value. */
#define PT_SCOPE_TEXT_MAX  512
#define PT_SCOPE_INPUT_MAX (PT_SCOPE_MAX * PT_SCOPE_TEXT_MAX)
/* The scope a client asks for to list the catalog. */
#define PT_SCOPE_CATALOG "registry:catalog:*"

struct pt_scope {
    int registry;   /* 1: registry:catalog:*, name "catalog" */
    char name[256]; /* repository name, NUL-terminated */
    unsigned actions;
};

/*
 * Parses s[0..len) (one query parameter value; need not be NUL-terminated), writing at most
 * max entries into out[0..) and their count into *n. For repeated scope parameters call it
 * once per value with out + n_so_far, max - n_so_far (then merging across calls is the
 * caller's). An empty or all-space string gives *n = 0. Returns 0, PT_E_NAME_INVALID for a
 * malformed scope or repository name, or PT_E_TOO_LARGE for more than max distinct resources or
 * len > PT_SCOPE_INPUT_MAX (a scope over PT_SCOPE_TEXT_MAX bytes is malformed). On error *n is
 * 0 and out's contents are unspecified. All pointers borrowed.
 */
int pt_scope_parse(const char *s, size_t len, struct pt_scope *out, size_t max, size_t *n);

/*
 * Writes "repository:<repo>:<actions>" and a NUL into out, actions as the names of the PULL,
 * PUSH, DELETE bits in that order, comma-separated (other bits are left out; no action bit at
 * all writes "pull"). Returns the length written (> 0), PT_E_NAME_INVALID when repo[0..len) is
 * not a valid repository name, or PT_E_TOO_LARGE when out_size cannot hold the text.
 */
int pt_scope_format(const char *repo, size_t len, unsigned actions, char *out, size_t size);

/* "pull,push" style text of the PULL, PUSH, DELETE bits of actions, into buf (NUL-terminated,
 * truncated to size). Returns the length it needed (like snprintf). */
size_t pt_scope_actions_format(unsigned actions, char *buf, size_t size);

#endif
