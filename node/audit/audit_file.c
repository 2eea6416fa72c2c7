/*
 * audit_file.c - what the audit log's writer (audit.c) and reader (audit_verify.c) share
 * (audit_int.h): the hash that chains the lines, the names of the files, and reading the last
 * line of a file within a bound. No logging and no state, so the fuzz driver of verify
 * (tests/fuzz/fuzz_audit_verify.c) compiles it alone.
 */
#include "audit.h"
#include "audit_int.h"

#include "err.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void pt_audit_hash_hex(const void *p, size_t len, char out[PT_AUDIT_HASH_HEX])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256(p, len, md);
    for (size_t i = 0; i < sizeof md; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * sizeof md] = '\0';
}

int pt_audit_path(char *dst, size_t len, const char *dir, unsigned n)
{
    int w = n == 0 ? snprintf(dst, len, "%s/" PT_AUDIT_FILE, dir)
                   : snprintf(dst, len, "%s/" PT_AUDIT_FILE ".%u", dir, n);
    return w < 0 || (size_t)w >= len ? -1 : 0;
}

int pt_audit_last_line(int fd, char *buf, size_t *len, uint64_t *size, int *torn)
{
    struct stat st;
    size_t want, start, end;
    ssize_t r;

    *len = 0;
    *torn = 0;
    if (fstat(fd, &st) != 0)
        return PT_E_IO;
    *size = (uint64_t)st.st_size;
    if (st.st_size == 0)
        return 0;
    want =
        (uint64_t)st.st_size < PT_AUDIT_LINE_MAX + 1 ? (size_t)st.st_size : PT_AUDIT_LINE_MAX + 1;
    r = pread(fd, buf, want, st.st_size - (off_t)want);
    if (r != (ssize_t)want)
        return PT_E_IO;
    end = want;
    if (buf[end - 1] == '\n')
        end--;
    else
        *torn = 1;
    start = end;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    if (start == 0 && want < (uint64_t)st.st_size)
        return PT_E_CORRUPT; /* no line start within PT_AUDIT_LINE_MAX bytes */
    memmove(buf, buf + start, end - start);
    *len = end - start;
    return 0;
}
