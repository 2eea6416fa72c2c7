/*
 * text_digest.c - the sha256 digest string of a text (see text_digest.h).
 */
#include <string.h>

#include "text_digest.h"

void pt_text_digest(const char *s, char out[PT_DIGEST_STR_MAX + 1])
{
    struct pt_digest d;
    pt_digest_of(s, strlen(s), &d);
    pt_digest_format(&d, out);
}
