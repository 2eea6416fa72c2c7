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

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
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
        if (pt_cluster_config_check_url(good_urls[i], &why) != 0)
            fail_msg("url \"%s\" refused: %s", good_urls[i], why);
    }
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        why = NULL;
        if (pt_cluster_config_check_url(bad_urls[i], &why) != PT_E_CONFIG)
            fail_msg("url \"%s\" accepted", bad_urls[i]);
        assert_non_null(why);
    }
    assert_int_equal(pt_cluster_config_check_url(NULL, NULL), PT_E_CONFIG);
    for (size_t i = 0; i < sizeof good_addrs / sizeof good_addrs[0]; i++)
        assert_int_equal(pt_cluster_config_check_address(good_addrs[i], NULL), 0);
    for (size_t i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
        if (pt_cluster_config_check_address(bad_addrs[i], &why) != PT_E_CONFIG)
            fail_msg("address \"%s\" accepted", bad_addrs[i]);
    }

    assert_int_equal(pt_cluster_config_check_cluster_id("Prod_EU-1.x", NULL), 0);
    assert_int_equal(pt_cluster_config_check_cluster_id("a b", &why), PT_E_CONFIG);
    assert_int_equal(pt_cluster_config_check_cluster_id("", &why), PT_E_CONFIG);
    assert_int_equal(pt_cluster_config_check_name("eu-west-1", NULL), 0);
    assert_int_equal(pt_cluster_config_check_name("eu.west", &why), PT_E_CONFIG);

    assert_int_equal(pt_cluster_config_parse_id("1", &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(pt_cluster_config_parse_id("9223372036854775807", &id), 0);
    assert_int_equal(id, UINT64_C(9223372036854775807));
    id = 42;
    static const char *const bad_ids[] = {"",   "0",  "00", "-1",   "+1",
                                          " 1", "1 ", "1a", "0x1f", "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        if (pt_cluster_config_parse_id(bad_ids[i], &id) != PT_E_CONFIG)
            fail_msg("id \"%s\" accepted", bad_ids[i]);
        assert_int_equal(id, 42);
    }
    assert_int_equal(pt_cluster_config_parse_id(NULL, &id), PT_E_CONFIG);

    assert_int_equal(pt_cluster_config_parse_role("standby", &role), 0);
    assert_int_equal(role, PT_CLUSTER_STANDBY);
    assert_int_equal(pt_cluster_config_parse_role("spare", &role), 0);
    assert_int_equal(role, PT_CLUSTER_SPARE);
    assert_int_equal(pt_cluster_config_parse_role("voter", &role), 0);
    assert_int_equal(role, PT_CLUSTER_VOTER);
    role = 7;
    assert_int_equal(pt_cluster_config_parse_role("leader", &role), PT_E_CONFIG);
    assert_int_equal(pt_cluster_config_parse_role(NULL, &role), PT_E_CONFIG);
    assert_int_equal(role, 7);
    assert_string_equal(pt_cluster_config_role_name(PT_CLUSTER_VOTER), "voter");
    assert_string_equal(pt_cluster_config_role_name(PT_CLUSTER_STANDBY), "standby");
    assert_string_equal(pt_cluster_config_role_name(PT_CLUSTER_SPARE), "spare");
    assert_string_equal(pt_cluster_config_role_name(9), "unknown");
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

/* ---- a fake admin API server ----------------------------------------------------------- */

#define ROUTES_MAX 8

struct route {
    const char *method, *path;
    int status;
    char body[4096];
    char location[256]; /* sent as Location when set */
};

struct fake {
    int fd;
    unsigned port;
    char url[64];
    int wake[2];
    pthread_t thread;
    pthread_mutex_t lock;
    struct route routes[ROUTES_MAX];
    size_t nroutes;
    /* The last request, and how many were served. */
    char method[16], path[256], body[4096];
    unsigned requests;
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void serve_one(struct fake *f, int c)
{
    char buf[16384];
    size_t len = 0;
    char *end = NULL;
    long clen = 0;

    while (len < sizeof buf - 1) {
        ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            clen = cl != NULL && cl < end ? strtol(cl + 17, NULL, 10) : 0;
            if ((size_t)(end + 4 - buf) + (size_t)clen <= len)
                break;
        }
    }
    if (end == NULL)
        return;

    char method[16] = "", path[256] = "";
    if (sscanf(buf, "%15s %255s", method, path) != 2)
        return;
    const struct route *r = NULL;
    pthread_mutex_lock(&f->lock);
    snprintf(f->method, sizeof f->method, "%s", method);
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->body, sizeof f->body, "%.*s", (int)clen, end + 4);
    f->requests++;
    for (size_t i = 0; i < f->nroutes; i++) {
        if (strcmp(f->routes[i].method, method) == 0 && strcmp(f->routes[i].path, path) == 0)
            r = &f->routes[i];
    }
    char head[512];
    const char *body =
        r ? r->body : "{\"errors\":[{\"code\":\"NOT_FOUND\",\"message\":\"no such route\"}]}";
    int status = r ? r->status : 404;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "%s%s%sConnection: close\r\n\r\n",
                     status, strlen(body), r && r->location[0] ? "Location: " : "",
                     r && r->location[0] ? r->location : "", r && r->location[0] ? "\r\n" : "");
    write_all(c, head, (size_t)n);
    write_all(c, body, strlen(body));
    pthread_mutex_unlock(&f->lock);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;

    for (;;) {
        struct pollfd p[2] = {{.fd = f->fd, .events = POLLIN},
                              {.fd = f->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (p[0].revents & POLLIN) {
            int c = accept(f->fd, NULL, NULL);
            if (c < 0)
                continue;
            serve_one(f, c);
            close(c);
        }
    }
    return NULL;
}

static struct fake *fake_start(void)
{
    struct fake *f = calloc(1, sizeof *f);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;

    assert_non_null(f);
    f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->fd >= 0);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->fd, 16), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", f->port);
    assert_int_equal(pipe(f->wake), 0);
    pthread_mutex_init(&f->lock, NULL);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
    return f;
}

static void fake_stop(struct fake *f)
{
    assert_int_equal(write(f->wake[1], "x", 1), 1);
    pthread_join(f->thread, NULL);
    close(f->fd);
    close(f->wake[0]);
    close(f->wake[1]);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

__attribute__((format(printf, 5, 6))) static void
fake_route(struct fake *f, const char *method, const char *path, int status, const char *fmt, ...)
{
    va_list ap;
    struct route *r;

    pthread_mutex_lock(&f->lock);
    assert_true(f->nroutes < ROUTES_MAX);
    r = &f->routes[f->nroutes++];
    r->method = method;
    r->path = path;
    r->status = status;
    va_start(ap, fmt);
    vsnprintf(r->body, sizeof r->body, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&f->lock);
}

/* A port on 127.0.0.1 that refuses connections (bound, then closed). */
static unsigned dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- running the client ---------------------------------------------------------------- */

struct run {
    int rc;
    char *out, *err;
};

static struct run run_cli(int argc, char **argv)
{
    struct run r = {0};
    size_t ol = 0, el = 0;
    FILE *out = open_memstream(&r.out, &ol), *err = open_memstream(&r.err, &el);

    assert_non_null(out);
    assert_non_null(err);
    r.rc = pt_cli_cluster(argc, argv, out, err);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(fclose(err), 0);
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

#define RUN(...)                                                                                   \
    ({                                                                                             \
        char *argv_[] = {__VA_ARGS__};                                                             \
        run_cli((int)(sizeof argv_ / sizeof argv_[0]), argv_);                                     \
    })

static void expect_in(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("\"%s\" not found in:\n%s", needle, hay);
}

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
    struct fake *a, *b, *d;
    char c_url[64];
};

static void cluster_up(struct cluster *cl)
{
    char self_a[1024], self_b[1024], self_d[1024];

    cl->a = fake_start();
    cl->b = fake_start();
    cl->d = fake_start();
    snprintf(cl->c_url, sizeof cl->c_url, "http://127.0.0.1:%u", dead_port());
    self_json(self_a, sizeof self_a, "region-a", 1, "leader", 7, 120, 118, 0, cl->a->url);
    self_json(self_b, sizeof self_b, "region-b", 2, "follower", 7, 117, 115, 40, cl->b->url);
    self_json(self_d, sizeof self_d, "region-x", 9, "follower", 7, 120, 120, 10, cl->d->url);
    fake_route(cl->a, "GET", "/admin/cluster", 200,
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
    fake_route(cl->b, "GET", "/admin/cluster/self", 200, "%s", self_b);
    fake_route(cl->d, "GET", "/admin/cluster/self", 200, "%s", self_d);
}

static void cluster_down(struct cluster *cl)
{
    fake_stop(cl->a);
    fake_stop(cl->b);
    fake_stop(cl->d);
}

/* ---- client tests ---------------------------------------------------------------------- */

static void test_cli_status_table(void **state)
{
    struct cluster cl;
    struct run r;

    (void)state;
    cluster_up(&cl);
    r = RUN("status", "--region", cl.a->url);
    if (r.rc != PT_CLI_OK)
        fail_msg("rc %d: %s", r.rc, r.err);
    expect_in(r.out, "cluster c1: leader region-a (id 1), term 7\n");
    expect_in(r.out, "REGION");
    expect_in(r.out, "LAST-CONTACT");
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
    run_free(&r);

    /* The reasons for unreachable regions follow the table; the queried region was asked
     * once (its own view came with /admin/cluster). */
    r = RUN("status", "--region", cl.a->url);
    expect_in(r.out, "region-c: ");
    expect_in(r.out, "region-d: its URL answers as id 9 (region-x), not id 4");
    run_free(&r);
    assert_int_equal(cl.a->requests, 2);
    assert_string_equal(cl.a->path, "/admin/cluster");
    assert_int_equal(cl.b->requests, 2);
    assert_string_equal(cl.b->path, "/admin/cluster/self");
    cluster_down(&cl);
}

static void test_cli_status_json(void **state)
{
    struct cluster cl;
    struct run r;
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
    run_free(&r);
    cluster_down(&cl);
}

static void test_cli_status_failures(void **state)
{
    struct fake *f = fake_start();
    char url[64];
    struct run r;

    (void)state;
    /* Nothing listens. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u", dead_port());
    r = RUN("status", "--region", url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    expect_in(r.err, "/admin/cluster");
    run_free(&r);
    /* The node has no cluster admin API: the OCI error body is shown. */
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    expect_in(r.err, "HTTP 404 NOT_FOUND: no such route");
    run_free(&r);
    /* Not a cluster document. */
    fake_route(f, "GET", "/admin/cluster", 200, "{\"cluster_id\":\"c1\",\"regions\":{}}");
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    expect_in(r.err, "not a cluster document");
    run_free(&r);
    fake_stop(f);

    /* A 503 with a body that is not JSON is quoted, cleaned of control characters. */
    f = fake_start();
    fake_route(f, "GET", "/admin/cluster", 503, "raft \x1b[31mdown\x1b[0m");
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    expect_in(r.err, "HTTP 503: raft ?[31mdown?[0m");
    run_free(&r);
    fake_stop(f);

    /* Members with bad entries are listed as such; valid ones are still asked. */
    f = fake_start();
    fake_route(f, "GET", "/admin/cluster", 200,
               "{\"cluster_id\":\"c1\",\"self\":{},\"regions\":["
               "{\"name\":\"ok\",\"id\":1,\"address\":\"127.0.0.1:1\",\"url\":\"%s\"},"
               "{\"name\":\"bad\",\"id\":2,\"address\":\"127.0.0.1:2\",\"url\":\"file:///x\"},"
               "{\"name\":\"neg\",\"id\":-3,\"address\":\"127.0.0.1:3\",\"url\":\"%s\"},"
               "{\"name\":\"\",\"id\":4,\"address\":\"127.0.0.1:4\",\"url\":\"\"}]}",
               f->url, f->url);
    fake_route(f, "GET", "/admin/cluster/self", 200,
               "{\"cluster_id\":\"other\",\"id\":1,\"role\":\"leader\"}");
    r = RUN("status", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    expect_in(r.out, "no leader reachable");
    expect_in(r.out, "ok: it belongs to cluster \"other\", not \"c1\"");
    expect_in(r.out, "bad: incomplete member entry: url: must start with http:// or https://");
    expect_in(r.out, "neg: incomplete member entry: id: missing or not a positive integer");
    /* A member known only by id and address keeps them in its row. */
    expect_in(r.out, "#4: incomplete member entry: name: must not be empty");
    expect_in(r.out, "\n#4      4   unreachable");
    expect_in(r.out, "127.0.0.1:4\n");
    run_free(&r);
    fake_stop(f);
}

static void test_cli_changes(void **state)
{
    struct fake *f = fake_start();
    struct run r;
    json_t *body;

    (void)state;
    fake_route(f, "POST", "/admin/cluster/regions", 201,
               "{\"name\":\"region-e\",\"id\":5,\"address\":\"e:7005\",\"url\":\"http://e\","
               "\"role\":\"standby\"}");
    fake_route(f, "DELETE", "/admin/cluster/regions/3", 202, "%s", "");
    fake_route(f, "POST", "/admin/cluster/transfer-leader", 202, "%s", "");

    r = RUN("add", "--region", f->url, "--name", "region-e", "--id=5", "--address", "e:7005",
            "--url", "http://e/", "--role", "standby");
    if (r.rc != PT_CLI_OK)
        fail_msg("rc %d: %s", r.rc, r.err);
    expect_in(r.out, "added region region-e (id 5, standby)");
    assert_string_equal(f->method, "POST");
    body = json_loads(f->body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "name")), "region-e");
    assert_int_equal(json_integer_value(json_object_get(body, "id")), 5);
    assert_string_equal(json_string_value(json_object_get(body, "address")), "e:7005");
    assert_string_equal(json_string_value(json_object_get(body, "url")), "http://e");
    assert_string_equal(json_string_value(json_object_get(body, "role")), "standby");
    json_decref(body);
    run_free(&r);

    /* --json prints the answer; role defaults to voter. */
    r = RUN("add", "--json", "--region", f->url, "--name", "region-f", "--id", "6", "--address",
            "f:7006", "--url", "http://f");
    assert_int_equal(r.rc, PT_CLI_OK);
    expect_in(r.out, "\"region-e\""); /* the canned answer */
    body = json_loads(f->body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(body, "role")), "voter");
    json_decref(body);
    run_free(&r);

    r = RUN("remove", "--region", f->url, "--id", "3");
    assert_int_equal(r.rc, PT_CLI_OK);
    expect_in(r.out, "removal of region id 3 accepted (HTTP 202)");
    assert_string_equal(f->method, "DELETE");
    assert_string_equal(f->path, "/admin/cluster/regions/3");
    run_free(&r);

    r = RUN("transfer-leader", "--region", f->url, "--id", "2");
    assert_int_equal(r.rc, PT_CLI_OK);
    expect_in(r.out, "leadership transfer to id 2 accepted");
    assert_string_equal(f->body, "{\"id\":2}");
    run_free(&r);
    r = RUN("transfer-leader", "--region", f->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    expect_in(r.out, "leadership transfer accepted");
    assert_string_equal(f->body, "{}");
    run_free(&r);

    /* Refusals print every OCI error entry and exit 1. */
    r = RUN("remove", "--region", f->url, "--id", "4");
    assert_int_equal(r.rc, PT_CLI_FAILED);
    expect_in(r.err, "/admin/cluster/regions/4: HTTP 404 NOT_FOUND: no such route");
    run_free(&r);
    fake_stop(f);

    f = fake_start();
    fake_route(f, "POST", "/admin/cluster/regions", 409,
               "{\"errors\":[{\"code\":\"CONFLICT\",\"message\":\"id 1 is region-a\"},"
               "{\"code\":\"DENIED\",\"message\":\"second\"}]}");
    r = RUN("add", "--region", f->url, "--name", "x", "--id", "1", "--address", "x:1", "--url",
            "http://x");
    assert_int_equal(r.rc, PT_CLI_FAILED);
    expect_in(r.err, "HTTP 409 CONFLICT: id 1 is region-a\n  DENIED: second\n");
    run_free(&r);
    fake_stop(f);
}

/* A follower that redirects a change to the leader: method and body are kept. */
static void test_cli_redirect(void **state)
{
    struct fake *leader = fake_start(), *follower = fake_start();
    struct run r;

    (void)state;
    fake_route(leader, "POST", "/admin/cluster/transfer-leader", 202, "%s", "");
    fake_route(follower, "POST", "/admin/cluster/transfer-leader", 307, "%s", "");
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
    run_free(&r);

    /* A redirect loop stops. */
    snprintf(follower->routes[0].location, sizeof follower->routes[0].location,
             "%s/admin/cluster/transfer-leader", follower->url);
    r = RUN("transfer-leader", "--region", follower->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    assert_int_equal(follower->requests, 2 + 1 + 4);
    run_free(&r);
    fake_stop(leader);
    fake_stop(follower);
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
    struct run r;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = run_cli(bad[i].argc, (char **)bad[i].argv);
        if (r.rc != PT_CLI_USAGE)
            fail_msg("case %zu: rc %d, err %s", i, r.rc, r.err);
        expect_in(r.err, bad[i].needle);
        run_free(&r);
    }
    r = run_cli(0, NULL);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    expect_in(r.err, "usage: portolan cluster");
    run_free(&r);
    r = RUN("help");
    assert_int_equal(r.rc, PT_CLI_OK);
    expect_in(r.out, "transfer-leader");
    expect_in(r.out, "exit status");
    run_free(&r);
    r = RUN("add", "--help");
    assert_int_equal(r.rc, PT_CLI_OK);
    expect_in(r.out, "--role voter|standby");
    run_free(&r);
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
