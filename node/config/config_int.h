/*
 * config_int.h - what the parts of node/config share: the settings table's row type and the
 * one path that parses, checks and stores a value (config.c), used by the YAML file
 * (config_yaml.c) and the environment layer (config_env.c).
 *
 * Threads: none; everything runs at start-up on the caller's thread.
 */
#ifndef PT_CONFIG_INT_H
#define PT_CONFIG_INT_H

#include "config.h"
#include "err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Values quoted back in error messages are cut to this many bytes. */
#define QUOTE_MAX 64

enum kind {
    K_STRING,    /* char[size], length in [min, size - 1] */
    K_LISTEN,    /* char[size], host:port; "" allowed when min is 0 */
    K_REGION,    /* char[size], [a-z0-9-]{1,63} */
    K_UINT,      /* unsigned, plain integer in [min, max] */
    K_SIZE,      /* uint64_t bytes in [min, max] */
    K_DURATION,  /* uint64_t milliseconds in [min, max] */
    K_BOOL,      /* int 0/1 */
    K_LOG_LEVEL, /* int PT_LOG_* */
    K_TAG_READS, /* int PT_TAG_READS_*, one word of choices_of(K_TAG_READS) */
    K_AUDIT,     /* int PT_AUDIT_*, one word of choices_of(K_AUDIT) */
    K_RESERVE,   /* char[size], a free-space reserve: auto, a size or a percentage */
};

struct option {
    const char *key;
    const char *flag;
    enum kind kind;
    size_t off;
    size_t size;
    uint64_t min, max;
    const char *def;
    const char *metavar;
    const char *help;
};

/* Number of settings; options are at most 64 (duplicate detection uses a 64-bit mask). */
size_t pt_config__noptions(void);

/* The i-th setting (i < pt_config__noptions()); borrowed, static. */
const struct option *pt_config__option(size_t i);

/* The setting whose YAML key is key, or NULL. */
const struct option *pt_config__find_key(const char *key);

/* Parses text v as option o's value, checks it against the row's limits and stores it into c.
 * name is used in messages ("--threads", "file.yaml:3: threads", "PORTOLAN_THREADS").
 * 0 or PT_E_CONFIG with err set. */
int pt_config__set_value(struct pt_config *c, const struct option *o, const char *name,
                         const char *v, char *err, size_t errlen);

/* The value of PORTOLAN_CONFIG in envp (borrowed), or NULL. */
const char *pt_config__env_config_path(char *const *envp);

/* Prints the PORTOLAN_* variables that are not settings (config_env.c), for the usage text. */
void pt_config__env_usage(FILE *out);

/* Formats a message into err and returns PT_E_CONFIG. */
__attribute__((format(printf, 3, 4))) static inline int pt_config__fail(char *err, size_t errlen,
                                                                        const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return PT_E_CONFIG;
}

#endif
