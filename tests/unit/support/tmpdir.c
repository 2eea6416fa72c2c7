/*
 * tmpdir.c - a test's temporary directory: made with mkdtemp, removed depth-first with nftw
 * (see tmpdir.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tmpdir.h"

void pt_tmpdir_create(char *dir, size_t len, const char *prefix)
{
    const char *base = getenv("TMPDIR");
    int n = snprintf(dir, len, "%s/%sXXXXXX", base ? base : "/tmp", prefix);
    assert_true(n > 0 && (size_t)n < len);
    assert_non_null(mkdtemp(dir));
}

/* nftw's callback: removes one entry (children come first, FTW_DEPTH). */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int pt_tmpdir_remove(const char *dir)
{
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
