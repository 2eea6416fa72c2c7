/*
 * tagglob.h - tag patterns of immutable tag rules and retention rules: a glob over the tag
 * grammar (reference.h) where '*' matches any run of tag characters (zero or more).
 *
 * Role: one syntax shared by the FSM (validates rules at apply), the store (matches rules) and
 * the admin API (refuses a bad pattern with 400).
 * Design: a pattern is 1..PT_TAG_GLOB_MAX bytes of [A-Za-z0-9._-] and '*'; matching is the
 * classic iterative glob with one backtrack point (the last star), never recursive, O(len(p) *
 * len(tag)) at worst.
 * Threads: pure functions; reentrant. Every function reads only the bytes it is given.
 */
#ifndef PT_TAGGLOB_H
#define PT_TAGGLOB_H

#include <stddef.h>

#define PT_TAG_GLOB_MAX 128

/* 1 if p[0..len) is a tag pattern (file comment), else 0. */
int pt_tag_glob_valid(const char *p, size_t len);

/* 1 if tag[0..tlen) matches the pattern p[0..plen), else 0. p need not be valid (an invalid
 * one gives a safe but unspecified answer). */
int pt_tag_glob_match(const char *p, size_t plen, const char *tag, size_t tlen);

#endif
