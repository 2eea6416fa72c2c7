/*
 * fuzz_config_env.c - libFuzzer driver for pt_config_apply_env (node/config/config.h), the
 * PORTOLAN_<KEY> environment layer of `portolan serve`.
 *
 * The input (up to 4 KiB) is split at '\n' into at most 32 environment entries
 * ("NAME=VALUE"; an entry holding a NUL is cut there, as execve would). Invariants: the result
 * is 0 or PT_E_CONFIG; on failure the configuration is byte-for-byte untouched and the message
 * is not empty; on success every string setting is still NUL-terminated within its field
 * (pt_config_validate checks that first) and applying the same environment again changes
 * nothing (the layer is idempotent). The message never quotes the value of an entry whose name
 * is not a setting (checked for the secret-bearing PORTOLAN_INITIAL_ADMIN_PASSWORD lookalikes:
 * a value marker the driver plants must not appear, unless the input itself holds it).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "fuzz_check.h"

#define MAX_ENTRIES 32
#define MAX_INPUT   4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[MAX_INPUT + 1];
    char *envp[MAX_ENTRIES + 2];
    size_t n = 0;

    if (size > MAX_INPUT)
        size = MAX_INPUT;
    memcpy(buf, data, size);
    buf[size] = '\0';
    for (char *p = buf; n < MAX_ENTRIES && *p != '\0';) {
        char *nl = strchr(p, '\n');
        envp[n++] = p;
        if (nl == NULL)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    /* A secret under a mistyped name: its value must never reach the message. */
    char secret[] = "PORTOLAN_INITIAL_ADMIN_PASSWROD=s3cr3t-marker";
    envp[n++] = secret;
    envp[n] = NULL;

    struct pt_config c, before, again;
    char err[512] = "";
    pt_config_defaults(&c);
    before = c;
    int rc = pt_config_apply_env(&c, envp, err, sizeof err);
    PT_FUZZ_CHECK(rc == PT_E_CONFIG); /* the planted lookalike is always refused */
    PT_FUZZ_CHECK(memcmp(&c, &before, sizeof c) == 0);
    PT_FUZZ_CHECK(err[0] != '\0');
    if (memmem(data, size, "s3cr3t", 6) == NULL)
        PT_FUZZ_CHECK(strstr(err, "s3cr3t-marker") == NULL);

    /* Without the lookalike: success or a refusal, each with its invariants. */
    envp[n - 1] = NULL;
    err[0] = '\0';
    rc = pt_config_apply_env(&c, envp, err, sizeof err);
    PT_FUZZ_CHECK(rc == 0 || rc == PT_E_CONFIG);
    if (rc != 0) {
        PT_FUZZ_CHECK(memcmp(&c, &before, sizeof c) == 0);
        PT_FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    PT_FUZZ_CHECK(memchr(c.listen, '\0', sizeof c.listen) != NULL);
    PT_FUZZ_CHECK(memchr(c.data_dir, '\0', sizeof c.data_dir) != NULL);
    PT_FUZZ_CHECK(memchr(c.region, '\0', sizeof c.region) != NULL);
    PT_FUZZ_CHECK(memchr(c.raft_listen, '\0', sizeof c.raft_listen) != NULL);
    again = c;
    PT_FUZZ_CHECK(pt_config_apply_env(&again, envp, err, sizeof err) == 0);
    PT_FUZZ_CHECK(memcmp(&again, &c, sizeof c) == 0);
    return 0;
}
