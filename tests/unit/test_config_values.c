/*
 * test_config_values.c - settings of `portolan serve` as they are judged: validation of a
 * whole configuration (listen addresses among them), the syntax of sizes, durations and
 * booleans, the usage text, the example file in deploy/, and the cluster settings with the
 * rules between them and the cluster file.
 *
 * Every refusal is checked for PT_E_CONFIG and for a message naming the key or flag
 * (support/cfg_fixture.h); YAML files are written into a fresh temporary directory per test.
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
#include "config.h"
#include "units.h"
#include "err.h"
#include "support/cfg_fixture.h"

/* ---- validation ------------------------------------------------------------------------ */

static void test_validate(void **state)
{
    struct pt_config c;
    char err[256];

    (void)state;
    pt_config_defaults(&c);
    strcpy(c.tls_cert, "/etc/cert.pem");
    pt_cfg_expect_invalid(&c, "tls_key");
    pt_config_defaults(&c);
    strcpy(c.tls_key, "/etc/key.pem");
    pt_cfg_expect_invalid(&c, "tls_cert");
    strcpy(c.tls_cert, "/etc/cert.pem");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);

    /* Values set by code rather than parsed are held to the same limits. */
    pt_config_defaults(&c);
    c.threads = 100000;
    pt_cfg_expect_invalid(&c, "threads");
    pt_config_defaults(&c);
    c.data_dir[0] = '\0';
    pt_cfg_expect_invalid(&c, "data_dir");
    pt_config_defaults(&c);
    c.log_level = 9;
    pt_cfg_expect_invalid(&c, "log_level");
    pt_config_defaults(&c);
    c.log_level = -1;
    pt_cfg_expect_invalid(&c, "log_level");
    pt_config_defaults(&c);
    c.access_log = 2;
    pt_cfg_expect_invalid(&c, "access_log");
    pt_config_defaults(&c);
    c.max_body_size = 0;
    pt_cfg_expect_invalid(&c, "max_body_size");
    pt_config_defaults(&c);
    c.upload_ttl_ms = 500;
    pt_cfg_expect_invalid(&c, "upload_ttl");
    pt_config_defaults(&c);
    strcpy(c.listen, "nohost");
    pt_cfg_expect_invalid(&c, "listen");
    pt_config_defaults(&c);
    strcpy(c.region, "a.b");
    pt_cfg_expect_invalid(&c, "region");
    pt_config_defaults(&c);
    memset(c.region, 'a', sizeof c.region);
    pt_cfg_expect_invalid(&c, "region");
    /* errbuf may be omitted. */
    assert_int_equal(pt_config_validate(&c, NULL, 0), PT_E_CONFIG);
}

static void test_listen(void **state)
{
    static const struct {
        const char *listen, *host;
        unsigned port;
    } good[] = {
        {"127.0.0.1:5000", "127.0.0.1", 5000},
        {"0.0.0.0:1", "0.0.0.0", 1},
        {"[::]:65535", "::", 65535},
        {"[fe80::1]:443", "fe80::1", 443},
        {"localhost:80", "localhost", 80},
        {"node-1.portolan.svc:5000", "node-1.portolan.svc", 5000},
        {"a:00080", "a", 80},
    };
    static const char *const bad[] = {
        "127.0.0.1", ":5000",        "::1:5000",       "[::1]5000",   "[::1:5000",
        "[]:80",     "[zz]:80",      "host:0",         "host:65536",  "host:",
        "host:abc",  "host:+80",     "host:123456",    "-bad.com:80", "bad-.com:80",
        "a..b:80",   "1.2.3.999:80", "under_score:80", "sp ace:80",   "[::1]:80x",
    };
    struct pt_config c;
    char host[64];
    unsigned port;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        pt_config_defaults(&c);
        strcpy(c.listen, good[i].listen);
        assert_int_equal(pt_config_validate(&c, NULL, 0), 0);
        assert_int_equal(pt_config_listen_addr(&c, host, sizeof host, &port), 0);
        assert_string_equal(host, good[i].host);
        assert_int_equal(port, good[i].port);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pt_config_defaults(&c);
        strcpy(c.listen, bad[i]);
        if (pt_config_listen_addr(&c, host, sizeof host, &port) != PT_E_CONFIG)
            fail_msg("listen \"%s\" accepted", bad[i]);
        pt_cfg_expect_invalid(&c, "listen");
    }
    /* The same syntax for any host:port string, with the reason of a refusal. */
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(pt_addr_parse(good[i].listen, host, sizeof host, &port, NULL), 0);
        assert_string_equal(host, good[i].host);
        assert_int_equal(port, good[i].port);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        assert_int_equal(pt_addr_parse(bad[i], NULL, 0, NULL, &why), PT_E_CONFIG);
        assert_non_null(why);
    }
    assert_int_equal(pt_addr_parse(NULL, NULL, 0, NULL, NULL), PT_E_CONFIG);
    assert_int_equal(pt_addr_parse("[::1]:80", host, 3, &port, NULL), PT_E_CONFIG);
    assert_int_equal(pt_addr_parse("[::1]:80", host, 0, &port, NULL), PT_E_CONFIG);

    /* Host buffer too small. */
    pt_config_defaults(&c);
    assert_int_equal(pt_config_listen_addr(&c, host, 4, &port), PT_E_CONFIG);
    assert_int_equal(pt_config_listen_addr(&c, NULL, 0, &port), 0);
    assert_int_equal(port, 5000);
}

/* ---- value syntax ---------------------------------------------------------------------- */

static void test_parse_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"0", 0},
        {"1", 1},
        {"1023", 1023},
        {"1KiB", 1024},
        {"4MiB", 4u << 20},
        {"64GiB", UINT64_C(64) << 30},
        {"2TiB", UINT64_C(2) << 40},
        {"007KiB", 7 * 1024},
        {"18446744073709551615", UINT64_MAX},
        {"16777215TiB", UINT64_C(16777215) << 40},
    };
    static const char *const bad[] = {
        "",
        "KiB",
        "1 KiB",
        " 1",
        "1 ",
        "-1",
        "+1",
        "1.5MiB",
        "1kib",
        "1KB",
        "1K",
        "1MB",
        "1B",
        "0x10",
        "1e3",
        "1PiB",
        "18446744073709551616",
        "16777216TiB",
        "99999999999999999999999",
    };
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        v = 12345;
        assert_int_equal(pt_units_parse_size(good[i].s, &v), 0);
        assert_int_equal(v, good[i].v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 12345;
        if (pt_units_parse_size(bad[i], &v) != PT_E_CONFIG)
            fail_msg("size \"%s\" accepted", bad[i]);
        assert_int_equal(v, 12345);
    }
    assert_int_equal(pt_units_parse_size(NULL, &v), PT_E_CONFIG);
}

static void test_parse_duration(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } good[] = {
        {"0", 0},         {"90", 90000},
        {"1s", 1000},     {"45s", 45000},
        {"30m", 1800000}, {"24h", 86400000},
        {"1h", 3600000},  {"18446744073709551s", UINT64_C(18446744073709551000)},
    };
    static const char *const bad[] = {
        "",
        "s",
        "1d",
        "1h30m",
        "1.5h",
        "1 h",
        "-1s",
        "1H",
        "1ms",
        "10sec",
        "18446744073709552s",
        "5124095576030432h",
    };
    uint64_t ms;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(pt_units_parse_duration(good[i].s, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = 7;
        if (pt_units_parse_duration(bad[i], &ms) != PT_E_CONFIG)
            fail_msg("duration \"%s\" accepted", bad[i]);
        assert_int_equal(ms, 7);
    }
}

static void test_parse_bool(void **state)
{
    static const char *const yes[] = {"true", "yes", "on", "TRUE", "Yes", "On"};
    static const char *const no[] = {"false", "no", "off", "FALSE", "No", "OFF"};
    static const char *const bad[] = {"", "1", "0", "y", "n", "enabled", "truee", " true"};
    int b;

    (void)state;
    for (size_t i = 0; i < 6; i++) {
        b = -1;
        assert_int_equal(pt_units_parse_bool(yes[i], &b), 0);
        assert_int_equal(b, 1);
        assert_int_equal(pt_units_parse_bool(no[i], &b), 0);
        assert_int_equal(b, 0);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = -1;
        assert_int_equal(pt_units_parse_bool(bad[i], &b), PT_E_CONFIG);
        assert_int_equal(b, -1);
    }
}

static void test_usage(void **state)
{
    static const char *const flags[] = {
        "--config FILE",
        "--listen",
        "--data-dir",
        "--threads",
        "--tls-cert",
        "--tls-key",
        "--region",
        "--max-body-size",
        "--max-manifest-size",
        "--body-spill-threshold",
        "--request-timeout",
        "--upload-ttl",
        "--max-connections",
        "--log-level",
        "--access-log",
        "--cluster-file FILE",
        "--raft-listen HOST:PORT",
        "--tag-reads MODE",
        "--stale-fallback BOOL",
        "--write-timeout DURATION",
        "--read-index-timeout DURATION",
        "linearizable",
        "64GiB",
    };
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    (void)state;
    assert_non_null(out);
    pt_config_usage(out);
    assert_int_equal(fclose(out), 0);
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (strstr(text, flags[i]) == NULL)
            fail_msg("usage lacks \"%s\"", flags[i]);
    }
    free(text);
}

/* The example config in deploy/ must load and validate and set every key. */
static void test_example_file(void **state)
{
    struct pt_config c;
    char err[512] = "";
    char path[4200];
    const char *src = __FILE__;
    const char *cut = strstr(src, "tests/unit/");

    (void)state;
    if (cut == NULL)
        skip();
    snprintf(path, sizeof path, "%.*sdeploy/portolan.example.yaml", (int)(cut - src), src);
    pt_config_defaults(&c);
    if (pt_config_load_file(&c, path, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
}

/* ---- cluster settings ------------------------------------------------------------------ */

static void test_cluster_settings(void **state)
{
    struct pt_cfg_fixture *f = *state;
    struct pt_config c;
    char err[512] = "";
    char cluster[160], arg[200];
    FILE *fp;

    /* Every cluster key from YAML; the cluster file lists the region. */
    snprintf(cluster, sizeof cluster, "%s/cluster.yaml", f->dir);
    fp = fopen(cluster, "w");
    assert_non_null(fp);
    fputs("cluster_id: test\n"
          "regions:\n"
          "  - {name: eu-west, id: 1, address: '127.0.0.1:7001', url: 'http://127.0.0.1:5001'}\n"
          "  - {name: us-east, id: 2, address: '127.0.0.1:7002', url: 'http://127.0.0.1:5002'}\n",
          fp);
    assert_int_equal(fclose(fp), 0);
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "region: eu-west\n"
             "listen: 127.0.0.1:5001\n"
             "cluster_file: %s\n"
             "raft_listen: \"[::]:7001\"\n"
             "peer_tls_cert: /certs/eu-west.pem\n"
             "peer_tls_key: /certs/eu-west-key.pem\n"
             "peer_tls_ca: /certs/ca.pem\n"
             "tag_reads: local\n"
             "stale_fallback: no\n"
             "write_timeout: 2m\n"
             "read_index_timeout: 3\n",
             cluster);
    pt_config_defaults(&c);
    if (pt_config_load_file(&c, pt_cfg_write_yaml(state, yaml), err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(c.cluster_file, cluster);
    assert_string_equal(c.raft_listen, "[::]:7001");
    assert_int_equal(c.peer_tls, 1);
    assert_string_equal(c.peer_tls_cert, "/certs/eu-west.pem");
    assert_string_equal(c.peer_tls_key, "/certs/eu-west-key.pem");
    assert_string_equal(c.peer_tls_ca, "/certs/ca.pem");
    assert_int_equal(c.tag_reads, PT_TAG_READS_LOCAL);
    assert_int_equal(c.stale_fallback, 0);
    assert_int_equal(c.write_timeout_ms, 120000);
    assert_int_equal(c.read_index_timeout_ms, 3000);
    if (pt_config_validate(&c, err, sizeof err) != 0)
        fail_msg("%s", err);

    /* The same as flags; the region may also be the other one. */
    snprintf(arg, sizeof arg, "--cluster-file=%s", cluster);
    char *argv[] = {arg,
                    "--region",
                    "us-east",
                    "--tag-reads",
                    "linearizable",
                    "--stale-fallback",
                    "on",
                    "--write-timeout",
                    "10s",
                    "--read-index-timeout=1m",
                    "--raft-listen",
                    "0.0.0.0:7002",
                    "--peer-tls-cert=/c/us-east.pem",
                    "--peer-tls-key",
                    "/c/us-east-key.pem",
                    "--peer-tls-ca=/c/ca.pem"};
    pt_config_defaults(&c);
    assert_int_equal(pt_config_parse_args(&c, 16, argv, err, sizeof err), 0);
    assert_string_equal(c.peer_tls_key, "/c/us-east-key.pem");
    assert_int_equal(c.tag_reads, PT_TAG_READS_LINEARIZABLE);
    assert_int_equal(c.stale_fallback, 1);
    assert_int_equal(c.write_timeout_ms, 10000);
    assert_int_equal(c.read_index_timeout_ms, 60000);
    assert_string_equal(c.raft_listen, "0.0.0.0:7002");
    if (pt_config_validate(&c, err, sizeof err) != 0)
        fail_msg("%s", err);
    /* An empty raft_listen means the region's address from the file. */
    c.raft_listen[0] = '\0';
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);

    /* Values out of their syntax or limits. */
    pt_cfg_expect_yaml_error(state, "tag_reads: stale\n", "tag_reads");
    pt_cfg_expect_yaml_error(state, "tag_reads: stale\n", "linearizable|local");
    pt_cfg_expect_yaml_error(state, "tag_reads: Local\n", "tag_reads");
    pt_cfg_expect_yaml_error(state, "stale_fallback: 2\n", "stale_fallback");
    pt_cfg_expect_yaml_error(state, "write_timeout: 0\n", "write_timeout");
    pt_cfg_expect_yaml_error(state, "write_timeout: 11m\n", "write_timeout");
    pt_cfg_expect_yaml_error(state, "read_index_timeout: 2m\n", "read_index_timeout");
    pt_cfg_expect_yaml_error(state, "read_index_timeout: 500ms\n", "read_index_timeout");
    pt_cfg_expect_yaml_error(state, "raft_listen: 127.0.0.1\n", "raft_listen");
    pt_cfg_expect_yaml_error(state, "raft_listen: host:0\n", "raft_listen");
    char *bad_mode[] = {"--tag-reads", "eventual"};
    pt_cfg_expect_args_error(2, bad_mode, "--tag-reads");
    char *bad_raft[] = {"--raft-listen=::1:7000"};
    pt_cfg_expect_args_error(1, bad_raft, "--raft-listen");

    /* Peer TLS is required in a cluster; off only where every raft address is loopback. */
    pt_config_defaults(&c);
    snprintf(c.cluster_file, sizeof c.cluster_file, "%s", cluster);
    strcpy(c.region, "eu-west");
    pt_cfg_expect_invalid(&c, "peer_tls: a cluster needs peer_tls_cert, peer_tls_key and");
    strcpy(c.peer_tls_cert, "/c/eu-west.pem");
    strcpy(c.peer_tls_key, "/c/eu-west-key.pem");
    pt_cfg_expect_invalid(&c, "peer_tls_ca");
    strcpy(c.peer_tls_ca, "/c/ca.pem");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
    char *off[] = {"--peer-tls", "off"};
    pt_config_defaults(&c);
    assert_int_equal(pt_config_parse_args(&c, 2, off, err, sizeof err), 0);
    assert_int_equal(c.peer_tls, 0);
    snprintf(c.cluster_file, sizeof c.cluster_file, "%s", cluster);
    strcpy(c.region, "eu-west");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0); /* all loopback */
    strcpy(c.raft_listen, "0.0.0.0:7001");
    pt_cfg_expect_invalid(&c, "peer_tls: off is accepted only on loopback, and the raft bind");
    strcpy(c.raft_listen, "[::1]:7001");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
    char remote[sizeof(c.cluster_file)];
    snprintf(remote, sizeof remote, "%.4000s.remote", cluster);
    fp = fopen(remote, "w");
    assert_non_null(fp);
    fputs("cluster_id: test\n"
          "regions:\n"
          "  - {name: eu-west, id: 1, address: 'localhost:7001', url: 'http://127.0.0.1:5001'}\n"
          "  - {name: us-east, id: 2, address: 'us.example:7002', url: 'http://127.0.0.1:5002'}\n",
          fp);
    assert_int_equal(fclose(fp), 0);
    snprintf(c.cluster_file, sizeof c.cluster_file, "%s", remote);
    pt_cfg_expect_invalid(&c, "region us-east's raft address us.example:7002 is not");
    c.peer_tls = 1;
    strcpy(c.peer_tls_cert, "/c/eu-west.pem");
    strcpy(c.peer_tls_key, "/c/eu-west-key.pem");
    strcpy(c.peer_tls_ca, "/c/ca.pem");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
    unlink(remote);

    /* Rules between settings and the cluster file. */
    pt_config_defaults(&c);
    strcpy(c.raft_listen, "0.0.0.0:7000");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0); /* unused by one region */
    pt_config_defaults(&c);
    c.peer_tls = 0;
    snprintf(c.cluster_file, sizeof c.cluster_file, "%s", cluster);
    strcpy(c.listen, "127.0.0.1:5001");
    pt_cfg_expect_invalid(&c, "region: \"local\" is not a region of cluster file");
    pt_cfg_expect_invalid(&c, "eu-west, us-east");
    strcpy(c.region, "eu-west");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
    /* The raft port may not be the client port. */
    strcpy(c.listen, "127.0.0.1:7001");
    pt_cfg_expect_invalid(&c,
                          "raft_listen: 127.0.0.1:7001 (region's address in cluster_file) takes");
    strcpy(c.listen, "0.0.0.0:7001");
    pt_cfg_expect_invalid(&c, "raft_listen");
    strcpy(c.listen, "127.0.0.2:7001");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
    strcpy(c.raft_listen, "[::]:7001");
    pt_cfg_expect_invalid(&c, "raft_listen: [::]:7001 takes the client listen port");
    strcpy(c.raft_listen, "127.0.0.2:7000");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
    /* A missing or broken cluster file is named. */
    snprintf(c.cluster_file, sizeof c.cluster_file, "%s/absent.yaml", f->dir);
    pt_cfg_expect_invalid(&c, "cluster_file: ");
    pt_cfg_expect_invalid(&c, "absent.yaml");
    fp = fopen(cluster, "w");
    assert_non_null(fp);
    fputs("cluster_id: test\nregions: []\n", fp);
    assert_int_equal(fclose(fp), 0);
    snprintf(c.cluster_file, sizeof c.cluster_file, "%s", cluster);
    pt_cfg_expect_invalid(&c, "at least one region");
    /* Set by code, held to the same limits. */
    pt_config_defaults(&c);
    c.tag_reads = 2;
    pt_cfg_expect_invalid(&c, "tag_reads");
    pt_config_defaults(&c);
    c.write_timeout_ms = 999;
    pt_cfg_expect_invalid(&c, "write_timeout");
    unlink(cluster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test_setup_teardown(test_cluster_settings, pt_cfg_setup, pt_cfg_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
