/*
 * cfg_fixture.c - the settings tests' YAML file and refusal checks (see cfg_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_fixture.h"
#include "err.h"

int pt_cfg_setup(void **state)
{
    struct pt_cfg_fixture *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/pt-test-config-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/portolan.yaml", f->dir);
    *state = f;
    return 0;
}

int pt_cfg_teardown(void **state)
{
    struct pt_cfg_fixture *f = *state;

    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

const char *pt_cfg_write_yaml(void **state, const char *text)
{
    struct pt_cfg_fixture *f = *state;
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
    return f->path;
}

void pt_cfg_expect_yaml_error(void **state, const char *text, const char *needle)
{
    struct pt_config c, before;
    char err[512] = "";

    pt_config_defaults(&c);
    before = c;
    assert_int_equal(pt_config_load_file(&c, pt_cfg_write_yaml(state, text), err, sizeof err),
                     PT_E_CONFIG);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not name \"%s\"", err, needle);
    assert_memory_equal(&c, &before, sizeof c);
}

void pt_cfg_expect_args_error(int argc, char **argv, const char *needle)
{
    struct pt_config c, before;
    char err[512] = "";

    pt_config_defaults(&c);
    before = c;
    assert_int_equal(pt_config_parse_args(&c, argc, argv, err, sizeof err), PT_E_CONFIG);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not name \"%s\"", err, needle);
    assert_memory_equal(&c, &before, sizeof c);
}

void pt_cfg_expect_invalid(const struct pt_config *c, const char *needle)
{
    char err[256] = "";

    assert_int_equal(pt_config_validate(c, err, sizeof err), PT_E_CONFIG);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not name \"%s\"", err, needle);
}
