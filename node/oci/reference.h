/*
 * reference.h - repository names and tags (OCI distribution-spec, section "Pulling manifests").
 *
 * Both validators are hand-written matchers over length-delimited input: they never read past
 * s[len - 1], never allocate, and refuse NUL bytes and anything over the length limits before
 * looking further.
 */
#ifndef PT_REFERENCE_H
#define PT_REFERENCE_H

#include <stddef.h>

#include "bounds.h" /* PT_NAME_MAX, PT_TAG_MAX */

/*
 * Repository name, per the distribution-spec grammar
 *   [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 * with 1 <= len <= PT_NAME_MAX. Empty, "." and ".." components cannot match the grammar.
 * Returns 0 or PT_E_NAME_INVALID. s is borrowed and need not be NUL-terminated.
 */
int pt_name_validate(const char *s, size_t len);

/*
 * Tag, per the distribution-spec grammar [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
 * Returns 0 or PT_E_TAG_INVALID. s is borrowed and need not be NUL-terminated.
 */
int pt_tag_validate(const char *s, size_t len);

#endif
