/*
 * test_cluster_config.c - the cluster file (replication/cluster_config.c) and the
 * `portolan cluster` client (node/cli.c) that reads and changes a cluster's membership.
 *
 * Cluster files are parsed from memory or written into a fresh temporary directory; every
 * refusal is checked for PT_E_CONFIG, a message naming the key (and line), and an untouched
 * output struct. The client is driven against small in-process HTTP servers (one thread
 * each, one request per connection) that answer canned admin API responses and record what
 * they received, so the tests see the real requests libcurl sends and the real output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "addr.h"
#include "cluster_config.h"
#include "err.h"
#include "support/cli_run.h"
#include "support/fake_http.h"

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

/* ---- running the client ---------------------------------------------------------------- */

#define RUN(...) PT_CLI_RUN(pt_cli_cluster, __VA_ARGS__)

/* The /admin/cluster/self body of one region. */
static void self_json(char *buf, size_t len, const char *region, int id, const char *role, int term,
                      int commit, int applied, int contact, const char *url)
{
    snprintf(buf, len,
             "{\"cluster_id\":\"c1\",\"region\":\"%s\",\"id\":%d,\"role\":\"%s\",\"term\":%d,"
             "\"commit_index\":%d,\"applied_index\":%d,\"leader_id\":1,"
             "\"leader_region\":\"region-a\",\"last_contact_ms\":%d,"
             "\"address\":\"127.0.0.1:700%d\",\"url\":\"%s\"}",
             region, id, role, term, commit, applied, contact, id, url);
}

/*
 * Three regions: a (leader, answers --region), b (follower 5 entries behind), c (nothing
 * listens), plus d, whose URL answers as another region.
 */
struct cluster {
    struct pt_fake_http *a, *b, *d;
    char c_url[64];
};

static void cluster_up(struct cluster *cl)
{
    char self_a[1024], self_b[1024], self_d[1024];

    cl->a = pt_fake_http_start();
    cl->b = pt_fake_http_start();
    cl->d = pt_fake_http_start();
    pt_fake_http_dead_url(cl->c_url, sizeof cl->c_url);
    self_json(self_a, sizeof self_a, "region-a", 1, "leader", 7, 120, 118, 0, cl->a->url);
    self_json(self_b, sizeof self_b, "region-b", 2, "follower", 7, 117, 115, 40, cl->b->url);
    self_json(self_d, sizeof self_d, "region-x", 9, "follower", 7, 120, 120, 10, cl->d->url);
    pt_fake_http_route(
        cl->a, "GET", "/admin/cluster", 200,
        "{\"cluster_id\":\"c1\",\"self\":%s,\"regions\":["
        "{\"name\":\"region-a\",\"id\":1,\"address\":\"127.0.0.1:7001\",\"url\":\"%s\","
        "\"role\":\"voter\"},"
        "{\"name\":\"region-b\",\"id\":2,\"address\":\"127.0.0.1:7002\",\"url\":\"%s/\","
        "\"role\":\"voter\"},"
        "{\"name\":\"region-c\",\"id\":3,\"address\":\"127.0.0.1:7003\",\"url\":\"%s\","
        "\"role\":\"standby\"},"
        "{\"name\":\"region-d\",\"id\":4,\"address\":\"127.0.0.1:7004\",\"url\":\"%s\","
        "\"role\":\"voter\"}]}",
        self_a, cl->a->url, cl->b->url, cl->c_url, cl->d->url);
    pt_fake_http_route(cl->b, "GET", "/admin/cluster/self", 200, "%s", self_b);
    pt_fake_http_route(cl->d, "GET", "/admin/cluster/self", 200, "%s", self_d);
}

static void cluster_down(struct cluster *cl)
{
    pt_fake_http_stop(cl->a);
    pt_fake_http_stop(cl->b);
    pt_fake_http_stop(cl->d);
}

/* ---- client tests ---------------------------------------------------------------------- */

static void test_cli_status_table(void **state)
{
    struct cluster cl;
    struct pt_cli_run r;

    (void)state;
    cluster_up(&cl);
    r = RUN("status", "--region", cl.a->url);
    if (r.rc != PT_CLI_OK)
        fail_msg("rc %d: %s", r.rc, r.err);
    pt_cli_run_expect_in(r.out, "cluster c1: leader region-a (id 1), term 7\n");
    pt_cli_run_expect_in(r.out, "REGION");
    pt_cli_run_expect_in(r.out, "LAST-CONTACT");
    /* Lines are "name id role term commit applied lag contact address". */
    char name[64], role[32], term[16], commit[16], applied[16], lag[16], contact[16], addr[64];
    unsigned long id;
    int rows = 0;
    for (char *line = strtok(r.out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (sscanf(line, "%63s %lu %31s %15s %15s %15s %15s %15s %63s", name, &id, role, term,
                   commit, applied, lag, contact, addr) != 9)
            continue;
        rows++;
        if (strcmp(name, "region-a") == 0) {
            assert_string_equal(role, "leader");
            assert_string_equal(commit, "120");
            assert_string_equal(applied, "118");
            assert_string_equal(lag, "2");
            assert_string_equal(contact, "-");
        } else if (strcmp(name, "region-b") == 0) {
            assert_int_equal(id, 2);
            assert_string_equal(role, "voter");
            assert_string_equal(term, "7");
            assert_string_equal(lag, "5"); /* leader commit 120 - applied 115 */
            assert_string_equal(contact, "40");
            assert_string_equal(addr, "127.0.0.1:7002");
        } else if (strcmp(name, "region-c") == 0) {
            assert_string_equal(role, "unreachable");
            assert_string_equal(term, "-");
            assert_string_equal(lag, "-");
            assert_string_equal(addr, "127.0.0.1:7003");
        } else if (strcmp(name, "region-d") == 0) {
            assert_string_equal(role, "unreachable");
        } else {
            fail_msg("unexpected row %s", line);
        }
    }
    assert_int_equal(rows, 4);
    pt_cli_run_free(&r);

    /* The reasons for unreachable regions follow the table; the queried region was asked
     * once (its own view came with /admin/cluster). */
    r = RUN("status", "--region", cl.a->url);
    pt_cli_run_expect_in(r.out, "region-c: ");
    pt_cli_run_expect_in(r.out, "region-d: its URL answers as id 9 (region-x), not id 4");
    pt_cli_run_free(&r);
    assert_int_equal(cl.a->requests, 2);
    assert_string_equal(cl.a->target, "/admin/cluster");
    assert_int_equal(cl.b->requests, 2);
    assert_string_equal(cl.b->target, "/admin/cluster/self");
    cluster_down(&cl);
}

static void test_cli_status_json(void **state)
{
    struct cluster cl;
    struct pt_cli_run r;
    json_t *doc, *regions;

    (void)state;
    cluster_up(&cl);
    r = RUN("status", "--json", "--region", cl.a->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    doc = json_loads(r.out, 0, NULL);
    if (doc == NULL)
        fail_msg("not JSON: %s", r.out);
    assert_string_equal(json_string_value(json_object_get(doc, "cluster_id")), "c1");
    assert_string_equal(json_string_value(json_object_get(doc, "queried")), cl.a->url);
    json_t *leader = json_object_get(doc, "leader");
    assert_string_equal(json_string_value(json_object_get(leader, "region")), "region-a");
    assert_int_equal(json_integer_value(json_object_get(leader, "commit_index")), 120);
    regions = json_object_get(doc, "regions");
    assert_int_equal(json_array_size(regions), 4);
    json_t *b = json_array_get(regions, 1), *c = json_array_get(regions, 2);
    assert_string_equal(json_string_value(json_object_get(b, "state")), "voter");
    assert_int_equal(json_integer_value(json_object_get(b, "lag")), 5);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(b, "self"), "applied_index")), 115);
    assert_string_equal(json_string_value(json_object_get(c, "state")), "unreachable");
    assert_string_equal(json_string_value(json_object_get(c, "role")), "standby");
    assert_true(json_is_null(json_object_get(c, "self")));
    assert_true(json_is_null(json_object_get(c, "lag")));
    assert_true(json_string_length(json_object_get(c, "error")) > 0);
    json_decref(doc);
    pt_cli_run_free(&r);
    cluster_down(&cl);
}

static void test_cli_status_failures(void **state)
{
    struct pt_fake_http *f = pt_fake_http_start();
    char url[64];
    struct pt_cli_run r;

    (void)state;
    /* Nothing listens. */
    pt_fake_http_dead_url(url, sizeof url);
    r = RUN("status", "--region", url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "/admin/cluster");
    pt_cli_run_free(&r);
    /* The node has no cluster admin API: the OCI error body is shown. */
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "HTTP 404 NOT_FOUND: no such route");
    pt_cli_run_free(&r);
    /* Not a cluster document. */
    pt_fake_http_route(f, "GET", "/admin/cluster", 200, "{\"cluster_id\":\"c1\",\"regions\":{}}");
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "not a cluster document");
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);

    /* A 503 with a body that is not JSON is quoted, cleaned of control characters. */
    f = pt_fake_http_start();
    pt_fake_http_route(f, "GET", "/admin/cluster", 503, "raft \x1b[31mdown\x1b[0m");
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "HTTP 503: raft ?[31mdown?[0m");
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);

    /* Members with bad entries are listed as such; valid ones are still asked. */
    f = pt_fake_http_start();
    pt_fake_http_route(
        f, "GET", "/admin/cluster", 200,
        "{\"cluster_id\":\"c1\",\"self\":{},\"regions\":["
        "{\"name\":\"ok\",\"id\":1,\"address\":\"127.0.0.1:1\",\"url\":\"%s\"},"
        "{\"name\":\"bad\",\"id\":2,\"address\":\"127.0.0.1:2\",\"url\":\"file:///x\"},"
        "{\"name\":\"neg\",\"id\":-3,\"address\":\"127.0.0.1:3\",\"url\":\"%s\"},"
        "{\"name\":\"\",\"id\":4,\"address\":\"127.0.0.1:4\",\"url\":\"\"}]}",
        f->url, f->url);
    pt_fake_http_route(f, "GET", "/admin/cluster/self", 200,
                       "{\"cluster_id\":\"other\",\"id\":1,\"role\":\"leader\"}");
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "no leader reachable");
    pt_cli_run_expect_in(r.out, "ok: it belongs to cluster \"other\", not \"c1\"");
    pt_cli_run_expect_in(r.out,
                         "bad: incomplete member entry: url: must start with http:// or https://");
    pt_cli_run_expect_in(r.out,
                         "neg: incomplete member entry: id: missing or not a positive integer");
    /* A member known only by id and address keeps them in its row. */
    pt_cli_run_expect_in(r.out, "#4: incomplete member entry: name: must not be empty");
    pt_cli_run_expect_in(r.out, "\n#4      4   unreachable");
    pt_cli_run_expect_in(r.out, "127.0.0.1:4\n");
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);
}

static void test_cli_changes(void **state)
{
    struct pt_fake_http *f = pt_fake_http_start();
    struct pt_cli_run r;
    json_t *body;

    (void)state;
    pt_fake_http_route(
        f, "POST", "/admin/cluster/regions", 201,
        "{\"name\":\"region-e\",\"id\":5,\"address\":\"e:7005\",\"url\":\"http://e\","
        "\"role\":\"standby\"}");
    pt_fake_http_route(f, "DELETE", "/admin/cluster/regions/3", 202, "%s", "");
    pt_fake_http_route(f, "POST", "/admin/cluster/transfer-leader", 202, "%s", "");

    r = RUN("add", "--region", f->url, "--name", "region-e", "--id=5", "--address", "e:7005",
            "--url", "http://e/", "--role", "standby");
    if (r.rc != PT_CLI_OK)
        fail_msg("rc %d: %s", r.rc, r.err);
    pt_cli_run_expect_in(r.out, "added region region-e (id 5, standby)");
    assert_string_equal(f->method, "POST");
    body = json_loads(f->body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "name")), "region-e");
    assert_int_equal(json_integer_value(json_object_get(body, "id")), 5);
    assert_string_equal(json_string_value(json_object_get(body, "address")), "e:7005");
    assert_string_equal(json_string_value(json_object_get(body, "url")), "http://e");
    assert_string_equal(json_string_value(json_object_get(body, "role")), "standby");
    json_decref(body);
    pt_cli_run_free(&r);

    /* --json prints the answer; role defaults to voter. */
    r = RUN("add", "--json", "--region", f->url, "--name", "region-f", "--id", "6", "--address",
            "f:7006", "--url", "http://f");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "\"region-e\""); /* the canned answer */
    body = json_loads(f->body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(body, "role")), "voter");
    json_decref(body);
    pt_cli_run_free(&r);

    r = RUN("remove", "--region", f->url, "--id", "3");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "removal of region id 3 accepted (HTTP 202)");
    assert_string_equal(f->method, "DELETE");
    assert_string_equal(f->target, "/admin/cluster/regions/3");
    pt_cli_run_free(&r);

    r = RUN("transfer-leader", "--region", f->url, "--id", "2");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "leadership transfer to id 2 accepted");
    assert_string_equal(f->body, "{\"id\":2}");
    pt_cli_run_free(&r);
    r = RUN("transfer-leader", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "leadership transfer accepted");
    assert_string_equal(f->body, "{}");
    pt_cli_run_free(&r);

    /* Refusals print every OCI error entry and exit 1. */
    r = RUN("remove", "--region", f->url, "--id", "4");
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "/admin/cluster/regions/4: HTTP 404 NOT_FOUND: no such route");
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);

    f = pt_fake_http_start();
    pt_fake_http_route(f, "POST", "/admin/cluster/regions", 409,
                       "{\"errors\":[{\"code\":\"CONFLICT\",\"message\":\"id 1 is region-a\"},"
                       "{\"code\":\"DENIED\",\"message\":\"second\"}]}");
    r = RUN("add", "--region", f->url, "--name", "x", "--id", "1", "--address", "x:1", "--url",
            "http://x");
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "HTTP 409 CONFLICT: id 1 is region-a\n  DENIED: second\n");
    pt_cli_run_free(&r);
    pt_fake_http_stop(f);
}

/* A follower that redirects a change to the leader: method and body are kept. */
static void test_cli_redirect(void **state)
{
    struct pt_fake_http *leader = pt_fake_http_start(), *follower = pt_fake_http_start();
    struct pt_cli_run r;

    (void)state;
    pt_fake_http_route(leader, "POST", "/admin/cluster/transfer-leader", 202, "%s", "");
    pt_fake_http_route(follower, "POST", "/admin/cluster/transfer-leader", 307, "%s", "");
    snprintf(follower->routes[0].location, sizeof follower->routes[0].location,
             "%s/admin/cluster/transfer-leader", leader->url);
    r = RUN("transfer-leader", "--region", follower->url, "--id", "3");
    if (r.rc != PT_CLI_OK)
        fail_msg("rc %d: %s", r.rc, r.err);
    /* First the leader lookup (GET /admin/cluster/self: unknown here), then the change. */
    assert_int_equal(follower->requests, 2);
    assert_int_equal(leader->requests, 1);
    assert_string_equal(leader->method, "POST");
    assert_string_equal(leader->body, "{\"id\":3}");
    pt_cli_run_free(&r);

    /* A redirect loop stops. */
    snprintf(follower->routes[0].location, sizeof follower->routes[0].location,
             "%s/admin/cluster/transfer-leader", follower->url);
    r = RUN("transfer-leader", "--region", follower->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    assert_int_equal(follower->requests, 2 + 1 + 4);
    pt_cli_run_free(&r);
    pt_fake_http_stop(leader);
    pt_fake_http_stop(follower);
}

static void test_cli_usage(void **state)
{
    static const struct {
        int argc;
        char *argv[8];
        const char *needle;
    } bad[] = {
        {1, {"status"}, "--region is required"},
        {1, {"bogus"}, "unknown command"},
        {2, {"status", "--region"}, "--region: missing value"},
        {3, {"status", "--region", "127.0.0.1:5000"}, "http://"},
        {3, {"status", "--region", "http://a/v2"}, "no path"},
        {4, {"status", "--region=http://a", "--name", "x"}, "unknown flag \"--name\""},
        {3, {"status", "--region=http://a", "-v"}, "unexpected argument"},
        {3, {"status", "--region=http://a", "--json=yes"}, "takes no value"},
        {3, {"status", "--region=http://a", "--timeout=0"}, "--timeout"},
        {3, {"status", "--region=http://a", "--timeout=2d"}, "--timeout"},
        {2, {"remove", "--region=http://a"}, "--id is required"},
        {4, {"remove", "--region=http://a", "--id", "0"}, "--id"},
        {4, {"remove", "--region=http://a", "--id", "-2"}, "--id: \"-2\""},
        {5,
         {"add", "--region=http://a", "--name=a", "--id=1", "--address=a:1"},
         "--url is required"},
        {6,
         {"add", "--region=http://a", "--name=A", "--id=1", "--address=a:1", "--url=http://a"},
         "--name"},
        {6,
         {"add", "--region=http://a", "--name=a", "--id=1", "--address=0.0.0.0:1",
          "--url=http://a"},
         "--address"},
        {7,
         {"add", "--region=http://a", "--name=a", "--id=1", "--address=a:1", "--url=http://a",
          "--role=spare"},
         "voter or standby"},
        {3, {"transfer-leader", "--region=http://a", "--cacert="}, "--cacert"},
    };
    struct pt_cli_run r;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = pt_cli_run_capture(pt_cli_cluster, bad[i].argc, (char **)bad[i].argv);
        if (r.rc != PT_CLI_USAGE)
            fail_msg("case %zu: rc %d, err %s", i, r.rc, r.err);
        pt_cli_run_expect_in(r.err, bad[i].needle);
        pt_cli_run_free(&r);
    }
    r = pt_cli_run_capture(pt_cli_cluster, 0, NULL);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_expect_in(r.err, "usage: portolan cluster");
    pt_cli_run_free(&r);
    r = RUN("help");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "transfer-leader");
    pt_cli_run_expect_in(r.out, "exit status");
    pt_cli_run_free(&r);
    r = RUN("add", "--help");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "--role voter|standby");
    pt_cli_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_cli_status_table),
        cmocka_unit_test(test_cli_status_json),
        cmocka_unit_test(test_cli_status_failures),
        cmocka_unit_test(test_cli_changes),
        cmocka_unit_test(test_cli_redirect),
        cmocka_unit_test(test_cli_usage),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
