/*
 * test_cluster_config.c - the cluster file (replication/cluster_config.c): parsing, limits,
 * the example file, single values (URLs and peer addresses) and validation of configurations
 * built by code.
 *
 * Cluster files are parsed from memory or written into a fresh temporary directory; every
 * refusal is checked for PT_E_CONFIG, a message naming the key (and line), and an untouched
 * output struct. The `portolan cluster` client is tested in test_cluster_cli.c.
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

#include "addr.h"
#include "cluster_config.h"
#include "err.h"

/* ---- helpers --------------------------------------------------------------------------- */

static const char *const good_yaml = "# three regions\n"
                                     "cluster_id: portolan-local\n"
                                     "regions:\n"
                                     "  - name: region-a\n"
                                     "    id: 1\n"
                                     "    address: 127.0.0.1:7001\n"
                                     "    url: http://127.0.0.1:5001\n"
                                     "    role: voter\n"
                                     "  - name: region-b\n"
                                     "    id: 9223372036854775807\n"
                                     "    address: \"[::1]:7002\"\n"
                                     "    url: https://b.example.com/\n"
                                     "    role: standby\n"
                                     "  - {name: region-c, id: 3, address: c.example:7003,\n"
                                     "     url: 'HTTP://[2001:db8::1]:8443', role: spare}\n"
                                     "  - name: d\n"
                                     "    id: 4\n"
                                     "    address: d:7004\n"
                                     "    url: http://d\n";

static int parse(struct pt_cluster_config *c, const char *text, char *err, size_t errlen)
{
    return pt_cluster_config_parse(c, text, strlen(text), "cluster.yaml", err, errlen);
}

/* Parses text and expects refusal with a message containing needle, c untouched. */
static void expect_error(const char *text, const char *needle)
{
    struct pt_cluster_config *c = malloc(sizeof *c), *before = malloc(sizeof *before);
    char err[512] = "";

    assert_non_null(c);
    assert_non_null(before);
    memset(c, 0x5A, sizeof *c);
    memcpy(before, c, sizeof *c);
    assert_int_equal(parse(c, text, err, sizeof err), PT_E_CONFIG);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not name \"%s\" for:\n%s", err, needle, text);
    assert_memory_equal(c, before, sizeof *c);
    free(c);
    free(before);
}

/* A one-region file with the region's lines replaced by body. */
static void expect_region_error(const char *body, const char *needle)
{
    char text[2048];

    snprintf(text, sizeof text, "cluster_id: x\nregions:\n  - %s\n", body);
    expect_error(text, needle);
}

/* ---- parsing --------------------------------------------------------------------------- */

static void test_parse_valid(void **state)
{
    struct pt_cluster_config *c = calloc(1, sizeof *c);
    char err[512] = "";

    (void)state;
    assert_non_null(c);
    if (parse(c, good_yaml, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(c->cluster_id, "portolan-local");
    assert_int_equal(c->nregions, 4);

    assert_string_equal(c->regions[0].name, "region-a");
    assert_int_equal(c->regions[0].id, 1);
    assert_string_equal(c->regions[0].address, "127.0.0.1:7001");
    assert_string_equal(c->regions[0].url, "http://127.0.0.1:5001");
    assert_int_equal(c->regions[0].role, PT_CLUSTER_VOTER);

    assert_int_equal(c->regions[1].id, UINT64_C(9223372036854775807));
    assert_string_equal(c->regions[1].address, "[::1]:7002");
    assert_string_equal(c->regions[1].url, "https://b.example.com"); /* '/' dropped */
    assert_int_equal(c->regions[1].role, PT_CLUSTER_STANDBY);

    assert_string_equal(c->regions[2].name, "region-c");
    assert_string_equal(c->regions[2].url, "HTTP://[2001:db8::1]:8443");
    assert_int_equal(c->regions[2].role, PT_CLUSTER_SPARE);

    assert_int_equal(c->regions[3].role, PT_CLUSTER_VOTER); /* default */
    assert_string_equal(c->regions[3].url, "http://d");

    assert_ptr_equal(pt_cluster_config_find(c, "region-c"), &c->regions[2]);
    assert_null(pt_cluster_config_find(c, "region-x"));
    assert_null(pt_cluster_config_find(c, ""));
    assert_null(pt_cluster_config_find(c, NULL));
    assert_ptr_equal(pt_cluster_config_find_id(c, 4), &c->regions[3]);
    assert_ptr_equal(pt_cluster_config_find_id(c, UINT64_C(9223372036854775807)), &c->regions[1]);
    assert_null(pt_cluster_config_find_id(c, 2));
    assert_null(pt_cluster_config_find_id(c, 0));
    assert_null(pt_cluster_config_find_id(NULL, 1));
    assert_int_equal(pt_cluster_config_validate(c, err, sizeof err), 0);

    /* The same text from a file; a document marker and end marker are fine. */
    char dir[] = "/tmp/pt-test-cluster-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/cluster.yaml", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "---\n%s...\n", good_yaml);
    assert_int_equal(fclose(fp), 0);
    struct pt_cluster_config *d = calloc(1, sizeof *d);
    assert_non_null(d);
    if (pt_cluster_config_load(d, path, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_memory_equal(c, d, sizeof *c);
    unlink(path);
    rmdir(dir);
    free(d);
    free(c);
}

static void test_parse_errors(void **state)
{
    (void)state;
    /* Whole-file structure. */
    expect_error("", "empty");
    expect_error("---\n", "top level");
    expect_error("- a\n", "top level");
    expect_error("just text\n", "top level");
    expect_error("cluster_id: x\n", "missing key \"regions\"");
    expect_error("regions:\n  - {name: a, id: 1, address: a:1, url: http://a}\n",
                 "missing key \"cluster_id\"");
    expect_error("cluster_id: x\nregions: []\n", "at least one region");
    expect_error("cluster_id: x\nregions:\n", "regions");
    expect_error("cluster_id: x\nregions: a\n", "list of regions");
    expect_error("cluster_id: x\nregions: {a: 1}\n", "list of regions");
    expect_error("cluster_id: x\nbogus: 1\n", "unknown key \"bogus\"");
    expect_error("cluster_id: x\n\nbogus: 1\n", "cluster.yaml:3:");
    expect_error("cluster_id: x\ncluster_id: y\n", "cluster_id: key given twice");
    expect_error("cluster_id: [x]\n", "cluster_id");
    expect_error("cluster_id: \"\"\n", "cluster_id");
    expect_error("cluster_id: has space\n", "cluster_id");
    expect_error("cluster_id: a/b\n", "cluster_id");
    expect_error("cluster_id: "
                 "x123456789012345678901234567890123456789012345678901234567890123456\n",
                 "cluster_id");
    expect_error("? [a]\n: 1\n", "keys");
    expect_error("cluster_id: x\nregions:\n  - a\n", "regions[0]");
    expect_error("cluster_id: x\nregions:\n  - [a]\n", "regions[0]");
    expect_error("cluster_id: x\nregions: [{name: a, id: 1, address: a:1, url: http://a}]\n"
                 "---\ncluster_id: y\n",
                 "one YAML document");
    expect_error("cluster_id: \"x\n", "YAML syntax error");
    expect_error("cluster_id: x\n\tregions: a\n", "YAML syntax error");
    expect_error("cluster_id: &c x\nregions:\n  - {name: *c, id: 1, address: a:1, url: http://a}\n",
                 "alias");

    /* One region's keys. */
    expect_region_error("{name: a, id: 1, address: a:1}", "missing key \"url\"");
    expect_region_error("{id: 1, address: a:1, url: http://a}", "missing key \"name\"");
    expect_region_error("{name: a, address: a:1, url: http://a}", "missing key \"id\"");
    expect_region_error("{name: a, id: 1, url: http://a}", "missing key \"address\"");
    expect_region_error("{name: a, id: 1, address: a:1, url: http://a, zone: z}",
                        "regions[0]: unknown key \"zone\"");
    expect_region_error("{name: a, name: b, id: 1, address: a:1, url: http://a}",
                        "regions[0].name: key given twice");
    expect_region_error("{name: [a], id: 1, address: a:1, url: http://a}", "regions[0].name");
    expect_region_error("{name: {x: 1}, id: 1, address: a:1, url: http://a}", "regions[0].name");

    /* Values. */
    expect_region_error("{name: A, id: 1, address: a:1, url: http://a}", "regions[0].name");
    expect_region_error("{name: a_b, id: 1, address: a:1, url: http://a}", "regions[0].name");
    expect_region_error("{name: ~, id: 1, address: a:1, url: http://a}", "regions[0].name");
    expect_region_error("{name: "
                        "a123456789012345678901234567890123456789012345678901234567890123, "
                        "id: 1, address: a:1, url: http://a}",
                        "regions[0].name");
    expect_region_error("{name: a, id: 0, address: a:1, url: http://a}", "regions[0].id");
    expect_region_error("{name: a, id: -1, address: a:1, url: http://a}", "regions[0].id");
    expect_region_error("{name: a, id: 1.5, address: a:1, url: http://a}", "regions[0].id");
    expect_region_error("{name: a, id: 0x10, address: a:1, url: http://a}", "regions[0].id");
    expect_region_error("{name: a, id: 9223372036854775808, address: a:1, url: http://a}",
                        "regions[0].id");
    expect_region_error("{name: a, id: 99999999999999999999999, address: a:1, url: http://a}",
                        "regions[0].id");
    expect_region_error("{name: a, id: 1, address: a, url: http://a}", "regions[0].address");
    expect_region_error("{name: a, id: 1, address: 'a:0', url: http://a}", "regions[0].address");
    expect_region_error("{name: a, id: 1, address: '::1:7000', url: http://a}",
                        "regions[0].address");
    expect_region_error("{name: a, id: 1, address: 0.0.0.0:7000, url: http://a}", "connect to");
    expect_region_error("{name: a, id: 1, address: '[::]:7000', url: http://a}", "connect to");
    expect_region_error("{name: a, id: 1, address: a:1, url: ftp://a}", "http:// or https://");
    expect_region_error("{name: a, id: 1, address: a:1, url: a:5000}", "regions[0].url");
    expect_region_error("{name: a, id: 1, address: a:1, url: http://a/v2}", "no path");
    expect_region_error("{name: a, id: 1, address: a:1, url: 'http://a?x=1'}", "no path");
    expect_region_error("{name: a, id: 1, address: a:1, url: 'http://u:p@a'}", "user");
    expect_region_error("{name: a, id: 1, address: a:1, url: 'http://'}", "missing host");
    expect_region_error("{name: a, id: 1, address: a:1, url: 'http://a:99999'}", "port");
    expect_region_error("{name: a, id: 1, address: a:1, url: 'http://a//'}", "regions[0].url");
    expect_region_error("{name: a, id: 1, address: a:1, url: http://a, role: leader}",
                        "regions[0].role");
    expect_region_error("{name: a, id: 1, address: a:1, url: http://a, role: Voter}",
                        "regions[0].role");

    /* Rules between regions, with the line of the offending region. */
    const char *base = "cluster_id: x\nregions:\n"
                       "  - {name: a, id: 1, address: a:1, url: http://a}\n";
    const struct {
        const char *second, *needle;
    } dups[] = {
        {"{name: a, id: 2, address: b:1, url: http://b}", "cluster.yaml:4: regions[1].name: same "
                                                          "as regions[0]"},
        {"{name: b, id: 1, address: b:1, url: http://b}", "regions[1].id: same"},
        {"{name: b, id: 2, address: A:1, url: http://b}", "regions[1].address: same"},
        {"{name: b, id: 2, address: b:1, url: http://A}", "regions[1].url: same"},
    };
    for (size_t i = 0; i < sizeof dups / sizeof dups[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "%s  - %s\n", base, dups[i].second);
        expect_error(text, dups[i].needle);
    }
    expect_error("cluster_id: x\nregions:\n"
                 "  - {name: a, id: 1, address: a:1, url: http://a, role: standby}\n"
                 "  - {name: b, id: 2, address: b:1, url: http://b, role: spare}\n",
                 "at least one region must be a voter");
}

static void test_parse_limits(void **state)
{
    struct pt_cluster_config *c = calloc(1, sizeof *c);
    size_t cap = 64 * 1024, len;
    char *text = malloc(cap);
    char err[512] = "";

    (void)state;
    assert_non_null(c);
    assert_non_null(text);
    /* 64 regions load; a 65th is refused. */
    len = (size_t)snprintf(text, cap, "cluster_id: big\nregions:\n");
    for (int i = 1; i <= PT_CLUSTER_REGIONS_MAX; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "  - {name: r%d, id: %d, address: 10.0.0.%d:7000, "
                                "url: http://10.0.0.%d:5000}\n",
                                i, i, i, i);
    if (parse(c, text, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(c->nregions, PT_CLUSTER_REGIONS_MAX);
    assert_string_equal(c->regions[63].name, "r64");
    snprintf(text + len, cap - len,
             "  - {name: r65, id: 65, address: 10.0.0.65:7000, url: http://10.0.0.65:5000}\n");
    expect_error(text, "more than 64 regions");

    /* Longest address and URL fit; one byte more does not. */
    char host[300], region[1024];
    memset(host, 'a', sizeof host);
    for (int i = 63; i < 253; i += 64)
        host[i] = '.';
    host[253] = '\0';
    snprintf(region, sizeof region, "{name: a, id: 1, address: '%s:65535', url: http://a}", host);
    snprintf(text, cap, "cluster_id: x\nregions:\n  - %s\n", region);
    if (parse(c, text, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(strlen(c->regions[0].address), 253 + 6);
    memset(host, 'a', sizeof host);
    host[254] = '\0';
    snprintf(region, sizeof region, "{name: a, id: 1, address: '%s:1', url: http://a}", host);
    expect_region_error(region, "regions[0].address");
    char url[600] = "https://";
    memset(url + 8, 'u', 520);
    url[520] = '\0';
    snprintf(region, sizeof region, "{name: a, id: 1, address: a:1, url: '%s'}", url);
    expect_region_error(region, "longer than 511");

    /* A NUL byte inside a value. */
    static const char nul[] = "cluster_id: \"a\\0b\"\nregions: []\n";
    assert_int_equal(pt_cluster_config_parse(c, nul, sizeof nul - 1, "n.yaml", err, sizeof err),
                     PT_E_CONFIG);
    assert_non_null(strstr(err, "NUL"));

    /* Text over the size limit is refused before parsing. */
    assert_int_equal(
        pt_cluster_config_parse(c, text, PT_CLUSTER_FILE_MAX + 1, "big.yaml", err, sizeof err),
        PT_E_CONFIG);
    assert_non_null(strstr(err, "larger than"));

    /* Files: missing, a directory, too large. */
    char dir[] = "/tmp/pt-test-cluster-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/absent.yaml", dir);
    assert_int_equal(pt_cluster_config_load(c, path, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "absent.yaml"));
    assert_int_equal(pt_cluster_config_load(c, dir, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "regular file"));
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i <= PT_CLUSTER_FILE_MAX / 16; i++)
        fputs("# padding line.\n", fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(pt_cluster_config_load(c, path, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "larger than"));
    unlink(path);
    rmdir(dir);
    /* errbuf may be omitted. */
    assert_int_equal(parse(c, "bogus: 1\n", NULL, 0), PT_E_CONFIG);
    free(text);
    free(c);
}

/* The example in deploy/ loads and shows every role. */
static void test_example_file(void **state)
{
    struct pt_cluster_config *c = calloc(1, sizeof *c);
    char err[512] = "", path[4200];
    const char *src = __FILE__;
    const char *cut = strstr(src, "tests/unit/");
    int roles = 0;

    (void)state;
    assert_non_null(c);
    if (cut == NULL) {
        free(c);
        skip();
    }
    snprintf(path, sizeof path, "%.*sdeploy/cluster.example.yaml", (int)(cut - src), src);
    if (pt_cluster_config_load(c, path, err, sizeof err) != 0)
        fail_msg("%s", err);
    for (size_t i = 0; i < c->nregions; i++)
        roles |= 1 << c->regions[i].role;
    assert_int_equal(roles, (1 << PT_CLUSTER_VOTER) | (1 << PT_CLUSTER_STANDBY));
    assert_non_null(pt_cluster_config_find(c, "eu-west"));
    free(c);
}

/* ---- single values and code-built configurations --------------------------------------- */

static void test_values(void **state)
{
    static const char *const good_urls[] = {
        "http://a",      "https://registry.example.com", "http://127.0.0.1:5001",
        "https://[::1]", "https://[fe80::1]:443",        "HTTPS://A.EXAMPLE",
    };
    static const char *const bad_urls[] = {
        "",           "http:/a",        "http://",     "http://a/",     "http://a/x",
        "http://a#f", "http://a:0",     "http://[::1", "http://[::1]x", "http://a b",
        "ws://a",     "http://a:80:80", "http://u@a",  "http://-a",     "http://1.2.3.999",
    };
    static const char *const good_addrs[] = {"a:1", "127.0.0.1:7001", "[::1]:7000",
                                             "node-1.portolan.svc:7000"};
    static const char *const bad_addrs[] = {"",          "a",           ":1",     "a:0",
                                            "0.0.0.0:1", "[::]:1",      "[::1]",  "a:b",
                                            "a_b:1",     "1.2.3.4.5:1", "a:65536"};
    const char *why;
    uint64_t id;
    int role;

    (void)state;
    for (size_t i = 0; i < sizeof good_urls / sizeof good_urls[0]; i++) {
        if (pt_addr_check_url(good_urls[i], &why) != 0)
            fail_msg("url \"%s\" refused: %s", good_urls[i], why);
    }
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        why = NULL;
        if (pt_addr_check_url(bad_urls[i], &why) != PT_E_CONFIG)
            fail_msg("url \"%s\" accepted", bad_urls[i]);
        assert_non_null(why);
    }
    assert_int_equal(pt_addr_check_url(NULL, NULL), PT_E_CONFIG);
    for (size_t i = 0; i < sizeof good_addrs / sizeof good_addrs[0]; i++)
        assert_int_equal(pt_addr_check_peer(good_addrs[i], NULL), 0);
    for (size_t i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
        if (pt_addr_check_peer(bad_addrs[i], &why) != PT_E_CONFIG)
            fail_msg("address \"%s\" accepted", bad_addrs[i]);
    }

    assert_int_equal(pt_ident_check_cluster_id("Prod_EU-1.x", NULL), 0);
    assert_int_equal(pt_ident_check_cluster_id("a b", &why), PT_E_CONFIG);
    assert_int_equal(pt_ident_check_cluster_id("", &why), PT_E_CONFIG);
    assert_int_equal(pt_ident_check_region("eu-west-1", NULL), 0);
    assert_int_equal(pt_ident_check_region("eu.west", &why), PT_E_CONFIG);

    assert_int_equal(pt_ident_parse_server_id("1", &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(pt_ident_parse_server_id("9223372036854775807", &id), 0);
    assert_int_equal(id, UINT64_C(9223372036854775807));
    id = 42;
    static const char *const bad_ids[] = {"",   "0",  "00", "-1",   "+1",
                                          " 1", "1 ", "1a", "0x1f", "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        if (pt_ident_parse_server_id(bad_ids[i], &id) != PT_E_CONFIG)
            fail_msg("id \"%s\" accepted", bad_ids[i]);
        assert_int_equal(id, 42);
    }
    assert_int_equal(pt_ident_parse_server_id(NULL, &id), PT_E_CONFIG);

    assert_int_equal(pt_ident_parse_role("standby", &role), 0);
    assert_int_equal(role, PT_CLUSTER_STANDBY);
    assert_int_equal(pt_ident_parse_role("spare", &role), 0);
    assert_int_equal(role, PT_CLUSTER_SPARE);
    assert_int_equal(pt_ident_parse_role("voter", &role), 0);
    assert_int_equal(role, PT_CLUSTER_VOTER);
    role = 7;
    assert_int_equal(pt_ident_parse_role("leader", &role), PT_E_CONFIG);
    assert_int_equal(pt_ident_parse_role(NULL, &role), PT_E_CONFIG);
    assert_int_equal(role, 7);
    assert_string_equal(pt_ident_role_name(PT_CLUSTER_VOTER), "voter");
    assert_string_equal(pt_ident_role_name(PT_CLUSTER_STANDBY), "standby");
    assert_string_equal(pt_ident_role_name(PT_CLUSTER_SPARE), "spare");
    assert_string_equal(pt_ident_role_name(9), "unknown");
}

static void expect_invalid(const struct pt_cluster_config *c, const char *needle)
{
    char err[512] = "";

    assert_int_equal(pt_cluster_config_validate(c, err, sizeof err), PT_E_CONFIG);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not name \"%s\"", err, needle);
}

static void test_validate(void **state)
{
    struct pt_cluster_config *c = calloc(1, sizeof *c), *good = calloc(1, sizeof *good);
    struct pt_cluster_region r = {.name = "x", .id = 5, .address = "x:1", .url = "http://x"};
    char err[256];

    (void)state;
    assert_non_null(c);
    assert_non_null(good);
    assert_int_equal(parse(good, good_yaml, err, sizeof err), 0);

#define RESET() memcpy(c, good, sizeof *c)
    RESET();
    assert_int_equal(pt_cluster_config_validate(c, NULL, 0), 0);
    RESET();
    c->nregions = 0;
    expect_invalid(c, "at least one region");
    RESET();
    c->nregions = PT_CLUSTER_REGIONS_MAX + 1;
    expect_invalid(c, "more than 64");
    RESET();
    c->cluster_id[0] = '\0';
    expect_invalid(c, "cluster_id");
    RESET();
    memset(c->cluster_id, 'a', sizeof c->cluster_id);
    expect_invalid(c, "cluster_id");
    RESET();
    c->regions[2].id = 0;
    expect_invalid(c, "regions[2].id");
    RESET();
    c->regions[2].id = UINT64_C(1) << 63;
    expect_invalid(c, "regions[2].id");
    RESET();
    c->regions[1].id = 1;
    expect_invalid(c, "regions[1].id: same as regions[0]");
    RESET();
    c->regions[3].role = 3;
    expect_invalid(c, "regions[3].role");
    RESET();
    memset(c->regions[0].name, 'a', sizeof c->regions[0].name);
    expect_invalid(c, "regions[0].name");
    RESET();
    memset(c->regions[0].url, 'a', sizeof c->regions[0].url);
    expect_invalid(c, "regions[0].url");
    RESET();
    strcpy(c->regions[0].url, "http://a/");
    expect_invalid(c, "regions[0].url");
    RESET();
    strcpy(c->regions[3].address, "[::]:1");
    expect_invalid(c, "regions[3].address");
    RESET();
    c->regions[0].role = PT_CLUSTER_STANDBY;
    c->regions[3].role = PT_CLUSTER_SPARE;
    expect_invalid(c, "voter");
#undef RESET

    assert_int_equal(pt_cluster_config_check_region(&r, err, sizeof err), 0);
    r.role = -1;
    assert_int_equal(pt_cluster_config_check_region(&r, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "role"));
    free(c);
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),  cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_limits), cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_values),       cmocka_unit_test(test_validate),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
