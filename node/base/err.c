/*
 * err.c - lookups into the PT_ERRORS table (see err.h).
 */
#include "err.h"

struct err_entry {
    int status;
    const char *code;
    const char *message;
};

static const struct err_entry entries[] = {
#define PT__ERR_ENTRY(name, status, code, msg) {status, code, msg},
    PT_ERRORS(PT__ERR_ENTRY)
#undef PT__ERR_ENTRY
};

static const struct err_entry *lookup(int err)
{
    static const struct err_entry internal = {500, "UNKNOWN", "internal error"};
    if (err <= PT__ERR_BASE || err >= PT__ERR_END)
        return &internal;
    return &entries[err - PT__ERR_BASE - 1];
}

int pt_err_status(int err)
{
    return lookup(err)->status;
}

const char *pt_err_code(int err)
{
    return lookup(err)->code;
}

const char *pt_err_message(int err)
{
    return lookup(err)->message;
}
