/*
 * auth_vocab.h - the access-control vocabulary the credential, scope and token modules use.
 *
 * The vocabulary (name length, action bits) is defined once, in pattern.h. This header
 * includes it when it is present and otherwise spells out the same values, so the modules
 * that only need the numbers (credentials, scope, jwt) build on their own and their fuzz
 * drivers need no other auth sources. The fallback values must stay equal to pattern.h's.
 */
#ifndef PT_AUTH_VOCAB_H
#define PT_AUTH_VOCAB_H

#if defined(__has_include) && __has_include("pattern.h")
#include "pattern.h"
#else
#define PT_AUTH_NAME_MAX 64 /* user names and token ids: [a-z0-9][a-z0-9._-]{0,63} */
enum { PT_ACTION_PULL = 1, PT_ACTION_PUSH = 2, PT_ACTION_DELETE = 4, PT_ACTION_ADMIN = 8 };
#define PT_ACTIONS_ALL   15
#endif

/* The Docker actions "*" stands for in a scope or a token's access entry. */
#define PT_ACTIONS_DOCKER_ALL (PT_ACTION_PULL | PT_ACTION_PUSH | PT_ACTION_DELETE)

#endif
