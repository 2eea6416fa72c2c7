/*
 * text_digest.h - the sha256 digest string of a short text, as the store tests name their
 * manifests and blobs.
 */
#ifndef PT_TEST_TEXT_DIGEST_H
#define PT_TEST_TEXT_DIGEST_H

#include "digest.h"

/* Writes "sha256:<hex>" of the bytes of s (borrowed, NUL-terminated) into out. */
void pt_text_digest(const char *s, char out[PT_DIGEST_STR_MAX + 1]);

#endif
