/*
 * fuzz_scope.c - libFuzzer driver for node/auth/scope.h.
 *
 * Input layout: byte 0's low 4 bits, plus one, are the room handed to pt_scope_parse (the
 * ASCII characters '0'..'?' give 1..16); the rest is the scope parameter value, handed over
 * as an unterminated heap copy of exactly its length.
 *
 * Checks beyond memory safety: on failure *n is 0 and the error is NAME_INVALID or TOO_LARGE;
 * on success *n <= room, every entry is either registry "catalog" or a valid repository name,
 * holds only pull/push/delete bits, no two entries name the same resource, every entry's name
 * occurs in the input, and pt_scope_format of a repository entry parses back to the same name
 * and actions (when it asked for any).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz_check.h"
#include "reference.h"
#include "scope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_scope sc[PT_SCOPE_MAX], back[1];
    size_t room, n = 77, i, j, len, nb;
    char *s, text[PT_SCOPE_TEXT_MAX];
    int rc;

    if (size < 1)
        return 0;
    room = (size_t)(data[0] & 15) + 1;
    len = size - 1;
    s = malloc(len ? len : 1);
    PT_FUZZ_CHECK(s != NULL);
    memcpy(s, data + 1, len);
    rc = pt_scope_parse(s, len, sc, room, &n);
    if (rc != 0) {
        PT_FUZZ_CHECK(rc == PT_E_NAME_INVALID || rc == PT_E_TOO_LARGE);
        PT_FUZZ_CHECK(n == 0);
        free(s);
        return 0;
    }
    PT_FUZZ_CHECK(n <= room);
    for (i = 0; i < n; i++) {
        size_t nl = strnlen(sc[i].name, sizeof(sc[i].name));
        PT_FUZZ_CHECK(nl < sizeof(sc[i].name));
        PT_FUZZ_CHECK((sc[i].actions & ~(unsigned)PT_ACTIONS_DOCKER_ALL) == 0);
        if (sc[i].registry)
            PT_FUZZ_CHECK(strcmp(sc[i].name, "catalog") == 0);
        else
            PT_FUZZ_CHECK(pt_name_validate(sc[i].name, nl) == 0);
        PT_FUZZ_CHECK(memmem(s, len, sc[i].name, nl) != NULL);
        for (j = 0; j < i; j++)
            PT_FUZZ_CHECK(sc[j].registry != sc[i].registry || strcmp(sc[j].name, sc[i].name) != 0);
        if (!sc[i].registry && sc[i].actions != 0) {
            rc = pt_scope_format(sc[i].name, nl, sc[i].actions, text, sizeof(text));
            PT_FUZZ_CHECK(rc > 0 && (size_t)rc == strlen(text));
            PT_FUZZ_CHECK(pt_scope_parse(text, (size_t)rc, back, 1, &nb) == 0 && nb == 1);
            PT_FUZZ_CHECK(strcmp(back[0].name, sc[i].name) == 0);
            PT_FUZZ_CHECK(back[0].actions == sc[i].actions && back[0].registry == 0);
        }
    }
    free(s);
    return 0;
}
