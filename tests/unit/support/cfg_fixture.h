/*
 * cfg_fixture.h - the fixture of the node settings tests (pt_cfg_: config): a temporary
 * directory holding the YAML file a test writes, and the checks every refusal goes through.
 *
 * Design: one file, portolan.yaml, per test directory; each write replaces it. A refusal is
 * checked for PT_E_CONFIG, for a message naming the key or flag (needle), and, for loads and
 * flags, for leaving the configuration exactly as it was.
 */
#ifndef PT_TEST_CFG_FIXTURE_H
#define PT_TEST_CFG_FIXTURE_H

#include "config.h"

struct pt_cfg_fixture {
    char dir[64];
    char path[128];
};

/* cmocka setup and teardown: *state becomes a struct pt_cfg_fixture (owned by the fixture). */
int pt_cfg_setup(void **state);
int pt_cfg_teardown(void **state);

/* Writes text (borrowed) as the test's YAML file; returns its path (the fixture's). */
const char *pt_cfg_write_yaml(void **state, const char *text);

/* Loads text on top of defaults and expects refusal with a message containing needle. */
void pt_cfg_expect_yaml_error(void **state, const char *text, const char *needle);

/* Parses flags on top of defaults and expects refusal naming needle. */
void pt_cfg_expect_args_error(int argc, char **argv, const char *needle);

/* Expects c (borrowed) to fail validation with a message containing needle. */
void pt_cfg_expect_invalid(const struct pt_config *c, const char *needle);

#endif
