/*
 * fuzz_disk_reserve.c - libFuzzer driver for pt_disk_reserve_parse (node/base/diskspace.h),
 * the parser of --disk-reserve.
 *
 * The whole input (up to 64 bytes, as a NUL-terminated string; an input holding a NUL is cut
 * there, as the command line would) is parsed. On success exactly one form is set: automatic
 * (only "" and "auto"), a percentage in 0.01..50% (the input then ends in '%'), or bytes; the
 * result formats back to a string that parses to the same reserve, and the reserve in bytes
 * never exceeds the filesystem for a percentage or the automatic form. On failure the output
 * is untouched.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "diskspace.h"
#include "err.h"
#include "fuzz_check.h"
#include "units.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[65];
    if (size > 64)
        size = 64;
    memcpy(s, data, size);
    s[size] = '\0';

    struct pt_disk_reserve r, sentinel;
    memset(&r, 0xA5, sizeof r);
    memcpy(&sentinel, &r, sizeof r);
    int rv = pt_disk_reserve_parse(s, &r);
    if (rv != 0) {
        PT_FUZZ_CHECK(rv == PT_E_CONFIG);
        PT_FUZZ_CHECK(memcmp(&r, &sentinel, sizeof r) == 0);
        return 0;
    }
    size_t n = strlen(s);
    char back[64];
    struct pt_disk_reserve again;
    if (r.automatic) {
        PT_FUZZ_CHECK(n == 0 || strcmp(s, "auto") == 0);
        PT_FUZZ_CHECK(pt_disk_reserve_bytes(&r, UINT64_MAX) <= (UINT64_C(2) << 30));
        return 0;
    }
    if (r.percent_x100 != 0) {
        PT_FUZZ_CHECK(n > 0 && s[n - 1] == '%');
        PT_FUZZ_CHECK(r.percent_x100 <= 5000);
        snprintf(back, sizeof back, "%u.%02u%%", r.percent_x100 / 100, r.percent_x100 % 100);
        PT_FUZZ_CHECK(pt_disk_reserve_parse(back, &again) == 0);
        PT_FUZZ_CHECK(!again.automatic && again.percent_x100 == r.percent_x100);
        PT_FUZZ_CHECK(pt_disk_reserve_bytes(&r, UINT64_MAX) <= UINT64_MAX / 2);
        return 0;
    }
    PT_FUZZ_CHECK(n > 0 && s[n - 1] != '%');
    pt_units_format_size(r.bytes, back, sizeof back);
    PT_FUZZ_CHECK(pt_disk_reserve_parse(back, &again) == 0);
    PT_FUZZ_CHECK(!again.automatic && again.percent_x100 == 0 && again.bytes == r.bytes);
    PT_FUZZ_CHECK(pt_disk_reserve_bytes(&r, 0) == r.bytes);
    return 0;
}
