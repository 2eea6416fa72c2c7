/*
 * test_config.c - settings of `portolan serve`: defaults, YAML, flags, validation, value
 * syntax; plus the log module whose level the configuration sets.
 *
 * YAML files are written into a fresh temporary directory per test. Every refusal is
 * checked for PT_E_CONFIG, for a message naming the key or flag, and for leaving the
 * configuration untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "units.h"
#include "err.h"
#include "log.h"

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

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

static int teardown(void **state)
{
    struct fixture *f = *state;

    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static const char *write_yaml(void **state, const char *text)
{
    struct fixture *f = *state;
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
    return f->path;
}

/* Loads text on top of defaults and expects refusal with a message containing needle. */
static void expect_yaml_error(void **state, const char *text, const char *needle)
{
    struct pt_config c, before;
    char err[512] = "";

    pt_config_defaults(&c);
    before = c;
    assert_int_equal(pt_config_load_file(&c, write_yaml(state, text), err, sizeof err),
                     PT_E_CONFIG);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not name \"%s\"", err, needle);
    assert_memory_equal(&c, &before, sizeof c);
}

/* Parses flags on top of defaults and expects refusal naming needle. */
static void expect_args_error(int argc, char **argv, const char *needle)
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

/* ---- defaults -------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    struct pt_config c;
    char err[256] = "";
    char host[64];
    unsigned port = 0;

    (void)state;
    memset(&c, 0xAB, sizeof c);
    pt_config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:5000");
    assert_string_equal(c.data_dir, "./portolan-data");
    assert_int_equal(c.threads, 0);
    assert_string_equal(c.tls_cert, "");
    assert_string_equal(c.tls_key, "");
    assert_string_equal(c.region, "local");
    assert_int_equal(c.max_body_size, UINT64_C(64) << 30);
    assert_int_equal(c.max_manifest_size, UINT64_C(4) << 20);
    assert_int_equal(c.body_spill_threshold, UINT64_C(4) << 20);
    assert_int_equal(c.request_timeout_ms, 3600 * 1000);
    assert_int_equal(c.upload_ttl_ms, 24 * 3600 * 1000);
    assert_int_equal(c.max_connections, 4096);
    assert_int_equal(c.log_level, PT_LOG_INFO);
    assert_int_equal(c.access_log, 1);
    assert_string_equal(c.cluster_file, "");
    assert_string_equal(c.raft_listen, "");
    assert_int_equal(c.tag_reads, PT_TAG_READS_LINEARIZABLE);
    assert_int_equal(c.stale_fallback, 1);
    assert_int_equal(c.write_timeout_ms, 5000);
    assert_int_equal(c.read_index_timeout_ms, 1000);
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
    assert_int_equal(pt_config_listen_addr(&c, host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 5000);
}

/* ---- YAML ------------------------------------------------------------------------------ */

static void test_yaml_all_keys(void **state)
{
    struct pt_config c;
    char err[256] = "";
    const char *path = write_yaml(state, "# every key\n"
                                         "listen: \"[::1]:8443\"\n"
                                         "data_dir: /var/lib/portolan\n"
                                         "threads: 4\n"
                                         "tls_cert: /etc/portolan/cert.pem\n"
                                         "tls_key: '/etc/portolan/key.pem'\n"
                                         "region: eu-west-1\n"
                                         "max_body_size: 1TiB\n"
                                         "max_manifest_size: 1048576\n"
                                         "body_spill_threshold: 0\n"
                                         "request_timeout: 30m\n"
                                         "upload_ttl: 90\n"
                                         "max_connections: 100\n"
                                         "log_level: debug\n"
                                         "access_log: off\n");

    pt_config_defaults(&c);
    assert_int_equal(pt_config_load_file(&c, path, err, sizeof err), 0);
    assert_string_equal(c.listen, "[::1]:8443");
    assert_string_equal(c.data_dir, "/var/lib/portolan");
    assert_int_equal(c.threads, 4);
    assert_string_equal(c.tls_cert, "/etc/portolan/cert.pem");
    assert_string_equal(c.tls_key, "/etc/portolan/key.pem");
    assert_string_equal(c.region, "eu-west-1");
    assert_int_equal(c.max_body_size, UINT64_C(1) << 40);
    assert_int_equal(c.max_manifest_size, 1048576);
    assert_int_equal(c.body_spill_threshold, 0);
    assert_int_equal(c.request_timeout_ms, 30 * 60 * 1000);
    assert_int_equal(c.upload_ttl_ms, 90 * 1000);
    assert_int_equal(c.max_connections, 100);
    assert_int_equal(c.log_level, PT_LOG_DEBUG);
    assert_int_equal(c.access_log, 0);
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);

    char host[64];
    unsigned port;
    assert_int_equal(pt_config_listen_addr(&c, host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8443);
}

static void test_yaml_partial_and_empty(void **state)
{
    struct pt_config c, d;
    char err[256] = "";

    pt_config_defaults(&d);
    /* An empty file, a bare document marker and comments change nothing. */
    const char *empties[] = {"", "---\n", "# nothing\n", "---\n...\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        pt_config_defaults(&c);
        assert_int_equal(pt_config_load_file(&c, write_yaml(state, empties[i]), err, sizeof err),
                         0);
        assert_memory_equal(&c, &d, sizeof c);
    }
    /* Keys not in the file keep their values; null clears a string. */
    pt_config_defaults(&c);
    strcpy(c.tls_cert, "/x");
    assert_int_equal(pt_config_load_file(&c, write_yaml(state, "---\nregion: ap-1\ntls_cert:\n"),
                                         err, sizeof err),
                     0);
    assert_string_equal(c.region, "ap-1");
    assert_string_equal(c.tls_cert, "");
    assert_int_equal(c.threads, 0);
    assert_string_equal(c.listen, "127.0.0.1:5000");
    /* A quoted "null" is a string, not null. */
    assert_int_equal(
        pt_config_load_file(&c, write_yaml(state, "data_dir: \"null\"\n"), err, sizeof err), 0);
    assert_string_equal(c.data_dir, "null");
    /* Flow style is YAML too. */
    assert_int_equal(pt_config_load_file(&c, write_yaml(state, "{threads: 2, access_log: yes}\n"),
                                         err, sizeof err),
                     0);
    assert_int_equal(c.threads, 2);
    assert_int_equal(c.access_log, 1);
}

static void test_yaml_errors(void **state)
{
    expect_yaml_error(state, "listen: 0.0.0.0:80\nbogus_key: 1\n", "bogus_key");
    expect_yaml_error(state, "bogus_key: 1\n", ":1:");
    expect_yaml_error(state, "max_body_size: 12XB\n", "max_body_size");
    expect_yaml_error(state, "max_body_size: 1.5GiB\n", "max_body_size");
    expect_yaml_error(state, "max_manifest_size: 1GiB\n", "max_manifest_size");
    /* The manifest parser and store cap manifests at PT_MANIFEST_MAX_BYTES: no setting above. */
    expect_yaml_error(state, "max_manifest_size: 5MiB\n", "max_manifest_size");
    expect_yaml_error(state, "max_manifest_size: 4194305\n", "max_manifest_size");
    expect_yaml_error(state, "body_spill_threshold: -1\n", "body_spill_threshold");
    expect_yaml_error(state, "request_timeout: 5d\n", "request_timeout");
    expect_yaml_error(state, "request_timeout: 0\n", "request_timeout");
    expect_yaml_error(state, "upload_ttl: 1h30m\n", "upload_ttl");
    expect_yaml_error(state, "listen: 127.0.0.1:70000\n", "listen");
    expect_yaml_error(state, "listen: 127.0.0.1:70000\n", "port");
    expect_yaml_error(state, "listen: 127.0.0.1\n", "listen");
    expect_yaml_error(state, "threads: many\n", "threads");
    expect_yaml_error(state, "threads: 5000\n", "threads");
    expect_yaml_error(state, "max_connections: 0\n", "max_connections");
    expect_yaml_error(state, "region: EU_West\n", "region");
    expect_yaml_error(state, "region: \"\"\n", "region");
    expect_yaml_error(state, "log_level: verbose\n", "log_level");
    expect_yaml_error(state, "access_log: maybe\n", "access_log");
    expect_yaml_error(state, "data_dir:\n", "data_dir");
    /* Line numbers point at the offending key. */
    expect_yaml_error(state, "threads: 1\n\nregion: BAD\n", ":3: region");
    /* Structure. */
    expect_yaml_error(state, "threads: 1\nthreads: 2\n", "threads");
    expect_yaml_error(state, "threads: 1\nthreads: 2\n", "twice");
    expect_yaml_error(state, "listen:\n  host: a\n", "listen");
    expect_yaml_error(state, "region: [a, b]\n", "region");
    expect_yaml_error(state, "data_dir: &d /a\ntls_cert: *d\n", "tls_cert");
    expect_yaml_error(state, "- threads\n", "top level");
    expect_yaml_error(state, "just text\n", "top level");
    expect_yaml_error(state, "threads: 1\n---\nthreads: 2\n", "one YAML document");
    expect_yaml_error(state, "region: \"abc\n", "YAML syntax error");
    expect_yaml_error(state, "threads: 1\n\tregion: a\n", "YAML syntax error");
    expect_yaml_error(state, "? [a]\n: 1\n", "keys");
}

static void test_yaml_file_limits(void **state)
{
    struct fixture *f = *state;
    struct pt_config c;
    char err[512] = "";
    char missing[160];

    pt_config_defaults(&c);
    snprintf(missing, sizeof missing, "%s/absent.yaml", f->dir);
    assert_int_equal(pt_config_load_file(&c, missing, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "absent.yaml"));
    assert_int_equal(pt_config_load_file(&c, f->dir, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "regular file"));

    /* A file over the size limit is refused before parsing. */
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    for (int i = 0; i <= PT_CONFIG_FILE_MAX / 16; i++)
        fputs("# padding line.\n", fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(pt_config_load_file(&c, f->path, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "larger than"));

    /* A NUL byte inside a value is refused. */
    fp = fopen(f->path, "w");
    assert_non_null(fp);
    fwrite("region: \"a\\0b\"\n", 1, 15, fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(pt_config_load_file(&c, f->path, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "region"));

    /* Too long for its buffer. */
    char big[400];
    memset(big, 'a', sizeof big);
    snprintf(big, sizeof big, "listen: %0300d:80\n", 0);
    expect_yaml_error(state, big, "listen");
}

/* ---- flags ----------------------------------------------------------------------------- */

static void test_flags(void **state)
{
    struct pt_config c;
    char err[256] = "";
    char *argv[] = {"--listen",
                    "0.0.0.0:80",
                    "--data-dir=/srv/p",
                    "--threads",
                    "3",
                    "--tls-cert",
                    "c.pem",
                    "--tls-key=k.pem",
                    "--region",
                    "us-east-2",
                    "--max-body-size",
                    "2GiB",
                    "--max-manifest-size=2MiB",
                    "--body-spill-threshold",
                    "1MiB",
                    "--request-timeout",
                    "10m",
                    "--upload-ttl=2h",
                    "--max-connections",
                    "9",
                    "--log-level",
                    "warn",
                    "--access-log=NO"};
    int argc = (int)(sizeof argv / sizeof argv[0]);

    (void)state;
    pt_config_defaults(&c);
    assert_int_equal(pt_config_parse_args(&c, argc, argv, err, sizeof err), 0);
    assert_string_equal(c.listen, "0.0.0.0:80");
    assert_string_equal(c.data_dir, "/srv/p");
    assert_int_equal(c.threads, 3);
    assert_string_equal(c.tls_cert, "c.pem");
    assert_string_equal(c.tls_key, "k.pem");
    assert_string_equal(c.region, "us-east-2");
    assert_int_equal(c.max_body_size, UINT64_C(2) << 30);
    assert_int_equal(c.max_manifest_size, UINT64_C(2) << 20);
    assert_int_equal(c.body_spill_threshold, UINT64_C(1) << 20);
    assert_int_equal(c.request_timeout_ms, 600 * 1000);
    assert_int_equal(c.upload_ttl_ms, 7200 * 1000);
    assert_int_equal(c.max_connections, 9);
    assert_int_equal(c.log_level, PT_LOG_WARN);
    assert_int_equal(c.access_log, 0);
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);

    /* No flags: nothing changes. */
    struct pt_config d = c;
    assert_int_equal(pt_config_parse_args(&c, 0, argv, err, sizeof err), 0);
    assert_memory_equal(&c, &d, sizeof c);
}

static void test_flag_override_order(void **state)
{
    struct pt_config c;
    char err[256] = "";
    char path[160];

    strcpy(path, write_yaml(state, "threads: 4\nregion: eu-west\nlog_level: error\n"
                                   "max_connections: 10\n"));
    /* --config comes after the flags but is applied first; a repeated flag's last value
     * wins; --flag=VALUE and --flag VALUE mix. */
    char *argv[] = {"--threads", "8",        "--region=ap-south", "--config",
                    path,        "--region", "us-east-1",         "--max-connections=20"};
    pt_config_defaults(&c);
    assert_int_equal(pt_config_parse_args(&c, 8, argv, err, sizeof err), 0);
    assert_int_equal(c.threads, 8);
    assert_string_equal(c.region, "us-east-1");
    assert_int_equal(c.log_level, PT_LOG_ERROR); /* from the file */
    assert_int_equal(c.max_connections, 20);
    assert_string_equal(c.listen, "127.0.0.1:5000"); /* default */

    /* --config=FILE form. */
    char cfgflag[200];
    snprintf(cfgflag, sizeof cfgflag, "--config=%s", path);
    char *argv2[] = {cfgflag};
    pt_config_defaults(&c);
    assert_int_equal(pt_config_parse_args(&c, 1, argv2, err, sizeof err), 0);
    assert_int_equal(c.threads, 4);
    assert_string_equal(c.region, "eu-west");

    /* A bad file fails the whole parse, naming the file's key; c is unchanged. */
    write_yaml(state, "threads: 4\nupload_ttl: forever\n");
    char *argv3[] = {"--threads", "2", "--config", path};
    expect_args_error(4, argv3, "upload_ttl");
}

static void test_flag_errors(void **state)
{
    char path[160];

    strcpy(path, write_yaml(state, "threads: 1\n"));
    char *unknown[] = {"--threads", "1", "--bogus", "x"};
    expect_args_error(4, unknown, "--bogus");
    char *unknown_eq[] = {"--bogus-flag=3"};
    expect_args_error(1, unknown_eq, "--bogus-flag");
    /* An unknown flag is called unknown, whatever follows it (not "missing value"). */
    char *unknown_last[] = {"--bogus"};
    expect_args_error(1, unknown_last, "unknown flag \"--bogus\"");
    char *unknown_eq1[] = {"--bogus=1"};
    expect_args_error(1, unknown_eq1, "unknown flag \"--bogus\"");
    char *unknown_before_flag[] = {"--bogus", "--threads", "2"};
    expect_args_error(3, unknown_before_flag, "unknown flag \"--bogus\"");
    /* The YAML spelling is not a flag. */
    char *underscore[] = {"--max_body_size", "1"};
    expect_args_error(2, underscore, "--max_body_size");
    char *size[] = {"--max-body-size", "lots"};
    expect_args_error(2, size, "--max-body-size");
    char *size_eq[] = {"--max-body-size=1 GiB"};
    expect_args_error(1, size_eq, "--max-body-size");
    char *dur[] = {"--request-timeout", "1w"};
    expect_args_error(2, dur, "--request-timeout");
    char *port[] = {"--listen", "localhost:0"};
    expect_args_error(2, port, "--listen");
    char *port_big[] = {"--listen=[::]:99999"};
    expect_args_error(1, port_big, "port");
    /* Every flag takes a value; a following flag is not taken as one. */
    char *boolean[] = {"--access-log", "--threads", "2"};
    expect_args_error(3, boolean, "--access-log");
    char *dashes[] = {"--data-dir", "--x"};
    expect_args_error(2, dashes, "--data-dir");
    char *missing[] = {"--threads", "2", "--region"};
    expect_args_error(3, missing, "--region");
    char *positional[] = {"serve"};
    expect_args_error(1, positional, "serve");
    char *dash[] = {"-t", "2"};
    expect_args_error(2, dash, "-t");
    char *twice[] = {"--config", path, "--config", path};
    expect_args_error(4, twice, "--config");
    char *empty_config[] = {"--config="};
    expect_args_error(1, empty_config, "--config");
    char *manifest_big[] = {"--max-manifest-size=8MiB"};
    expect_args_error(1, manifest_big, "--max-manifest-size");
    char *level[] = {"--log-level", "INFO"};
    expect_args_error(2, level, "--log-level");
    /* Unknown flags are found before the file is read. */
    char *order[] = {"--config", "/nonexistent/x.yaml", "--nope", "1"};
    expect_args_error(4, order, "--nope");
}

/* ---- validation ------------------------------------------------------------------------ */

static void expect_invalid(const struct pt_config *c, const char *needle)
{
    char err[256] = "";

    assert_int_equal(pt_config_validate(c, err, sizeof err), PT_E_CONFIG);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not name \"%s\"", err, needle);
}

static void test_validate(void **state)
{
    struct pt_config c;
    char err[256];

    (void)state;
    pt_config_defaults(&c);
    strcpy(c.tls_cert, "/etc/cert.pem");
    expect_invalid(&c, "tls_key");
    pt_config_defaults(&c);
    strcpy(c.tls_key, "/etc/key.pem");
    expect_invalid(&c, "tls_cert");
    strcpy(c.tls_cert, "/etc/cert.pem");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);

    /* Values set by code rather than parsed are held to the same limits. */
    pt_config_defaults(&c);
    c.threads = 100000;
    expect_invalid(&c, "threads");
    pt_config_defaults(&c);
    c.data_dir[0] = '\0';
    expect_invalid(&c, "data_dir");
    pt_config_defaults(&c);
    c.log_level = 9;
    expect_invalid(&c, "log_level");
    pt_config_defaults(&c);
    c.log_level = -1;
    expect_invalid(&c, "log_level");
    pt_config_defaults(&c);
    c.access_log = 2;
    expect_invalid(&c, "access_log");
    pt_config_defaults(&c);
    c.max_body_size = 0;
    expect_invalid(&c, "max_body_size");
    pt_config_defaults(&c);
    c.upload_ttl_ms = 500;
    expect_invalid(&c, "upload_ttl");
    pt_config_defaults(&c);
    strcpy(c.listen, "nohost");
    expect_invalid(&c, "listen");
    pt_config_defaults(&c);
    strcpy(c.region, "a.b");
    expect_invalid(&c, "region");
    pt_config_defaults(&c);
    memset(c.region, 'a', sizeof c.region);
    expect_invalid(&c, "region");
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
        expect_invalid(&c, "listen");
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
    struct fixture *f = *state;
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
             "tag_reads: local\n"
             "stale_fallback: no\n"
             "write_timeout: 2m\n"
             "read_index_timeout: 3\n",
             cluster);
    pt_config_defaults(&c);
    if (pt_config_load_file(&c, write_yaml(state, yaml), err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(c.cluster_file, cluster);
    assert_string_equal(c.raft_listen, "[::]:7001");
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
                    "0.0.0.0:7002"};
    pt_config_defaults(&c);
    assert_int_equal(pt_config_parse_args(&c, 12, argv, err, sizeof err), 0);
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
    expect_yaml_error(state, "tag_reads: stale\n", "tag_reads");
    expect_yaml_error(state, "tag_reads: stale\n", "linearizable|local");
    expect_yaml_error(state, "tag_reads: Local\n", "tag_reads");
    expect_yaml_error(state, "stale_fallback: 2\n", "stale_fallback");
    expect_yaml_error(state, "write_timeout: 0\n", "write_timeout");
    expect_yaml_error(state, "write_timeout: 11m\n", "write_timeout");
    expect_yaml_error(state, "read_index_timeout: 2m\n", "read_index_timeout");
    expect_yaml_error(state, "read_index_timeout: 500ms\n", "read_index_timeout");
    expect_yaml_error(state, "raft_listen: 127.0.0.1\n", "raft_listen");
    expect_yaml_error(state, "raft_listen: host:0\n", "raft_listen");
    char *bad_mode[] = {"--tag-reads", "eventual"};
    expect_args_error(2, bad_mode, "--tag-reads");
    char *bad_raft[] = {"--raft-listen=::1:7000"};
    expect_args_error(1, bad_raft, "--raft-listen");

    /* Rules between settings and the cluster file. */
    pt_config_defaults(&c);
    strcpy(c.raft_listen, "0.0.0.0:7000");
    expect_invalid(&c, "raft_listen: needs cluster_file");
    pt_config_defaults(&c);
    snprintf(c.cluster_file, sizeof c.cluster_file, "%s", cluster);
    strcpy(c.listen, "127.0.0.1:5001");
    expect_invalid(&c, "region: \"local\" is not a region of cluster file");
    expect_invalid(&c, "eu-west, us-east");
    strcpy(c.region, "eu-west");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
    /* The raft port may not be the client port. */
    strcpy(c.listen, "127.0.0.1:7001");
    expect_invalid(&c, "raft_listen: 127.0.0.1:7001 (region's address in cluster_file) takes");
    strcpy(c.listen, "0.0.0.0:7001");
    expect_invalid(&c, "raft_listen");
    strcpy(c.listen, "127.0.0.2:7001");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
    strcpy(c.raft_listen, "[::]:7001");
    expect_invalid(&c, "raft_listen: [::]:7001 takes the client listen port");
    strcpy(c.raft_listen, "127.0.0.2:7000");
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
    /* A missing or broken cluster file is named. */
    snprintf(c.cluster_file, sizeof c.cluster_file, "%s/absent.yaml", f->dir);
    expect_invalid(&c, "cluster_file: ");
    expect_invalid(&c, "absent.yaml");
    fp = fopen(cluster, "w");
    assert_non_null(fp);
    fputs("cluster_id: test\nregions: []\n", fp);
    assert_int_equal(fclose(fp), 0);
    snprintf(c.cluster_file, sizeof c.cluster_file, "%s", cluster);
    expect_invalid(&c, "at least one region");
    /* Set by code, held to the same limits. */
    pt_config_defaults(&c);
    c.tag_reads = 2;
    expect_invalid(&c, "tag_reads");
    pt_config_defaults(&c);
    c.write_timeout_ms = 999;
    expect_invalid(&c, "write_timeout");
    unlink(cluster);
}

/* ---- log ------------------------------------------------------------------------------- */

struct capture {
    int fds[2];
    int saved_fd;
};

static void capture_start(struct capture *cap)
{
    assert_int_equal(pipe2(cap->fds, O_NONBLOCK), 0);
    cap->saved_fd = pt_log_set_fd(cap->fds[1]);
}

/* Reads what was logged; returns the number of bytes put into buf (NUL-terminated). */
static size_t capture_read(struct capture *cap, char *buf, size_t len)
{
    ssize_t n = read(cap->fds[0], buf, len - 1);

    if (n < 0)
        n = 0;
    buf[n] = '\0';
    return (size_t)n;
}

static void capture_stop(struct capture *cap)
{
    pt_log_set_fd(cap->saved_fd);
    close(cap->fds[0]);
    close(cap->fds[1]);
}

static void test_log_levels(void **state)
{
    (void)state;
    assert_int_equal(pt_log_level_parse("debug"), PT_LOG_DEBUG);
    assert_int_equal(pt_log_level_parse("info"), PT_LOG_INFO);
    assert_int_equal(pt_log_level_parse("warn"), PT_LOG_WARN);
    assert_int_equal(pt_log_level_parse("error"), PT_LOG_ERROR);
    assert_int_equal(pt_log_level_parse("warning"), -1);
    assert_int_equal(pt_log_level_parse("Info"), -1);
    assert_int_equal(pt_log_level_parse(""), -1);
    assert_int_equal(pt_log_level_parse(NULL), -1);
    assert_string_equal(pt_log_level_name(PT_LOG_WARN), "warn");
    assert_string_equal(pt_log_level_name(42), "unknown");

    pt_log_set_level(PT_LOG_WARN);
    assert_false(pt_log_enabled(PT_LOG_INFO));
    assert_true(pt_log_enabled(PT_LOG_WARN));
    assert_true(pt_log_enabled(PT_LOG_ERROR));
    pt_log_set_level(17); /* ignored */
    assert_false(pt_log_enabled(PT_LOG_DEBUG));
    assert_true(pt_log_enabled(PT_LOG_WARN));
    pt_log_set_level(PT_LOG_INFO);
}

static void test_log_output(void **state)
{
    struct capture cap;
    char buf[8192];
    json_error_t jerr;
    json_t *rec;
    size_t n;

    (void)state;
    pt_log_set_level(PT_LOG_INFO);
    capture_start(&cap);

    pt_log(PT_LOG_DEBUG, "hidden", NULL);
    assert_int_equal(capture_read(&cap, buf, sizeof buf), 0);

    pt_log(PT_LOG_INFO, "request", "{s:s,s:i,s:s}", "path", "/v2/", "status", 200, "msg",
           "clobber");
    n = capture_read(&cap, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(buf[n - 1], '\n');
    assert_null(memchr(buf, '\n', n - 1)); /* one line */
    /* Fixed fields come first. */
    assert_memory_equal(buf, "{\"ts\":\"", 7);
    rec = json_loads(buf, 0, &jerr);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(rec, "msg")), "request");
    assert_string_equal(json_string_value(json_object_get(rec, "path")), "/v2/");
    assert_int_equal(json_integer_value(json_object_get(rec, "status")), 200);
    const char *ts = json_string_value(json_object_get(rec, "ts"));
    assert_non_null(ts);
    /* 2006-01-02T15:04:05.000Z */
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[4], '-');
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    json_decref(rec);

    /* A format that cannot be packed still logs, with the reason. */
    pt_log(PT_LOG_ERROR, "bad fields", "{s:s}", "path", (const char *)NULL);
    capture_read(&cap, buf, sizeof buf);
    rec = json_loads(buf, 0, &jerr);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "level")), "error");
    assert_non_null(json_object_get(rec, "log_error"));
    json_decref(rec);

    pt_log(PT_LOG_WARN, "not an object", "[i]", 1);
    capture_read(&cap, buf, sizeof buf);
    rec = json_loads(buf, 0, &jerr);
    assert_non_null(rec);
    assert_non_null(json_object_get(rec, "log_error"));
    json_decref(rec);

    /* Oversized records are replaced by a short one that still parses. */
    char *big = malloc(3 * PT_LOG_LINE_MAX);
    assert_non_null(big);
    memset(big, 'x', 3 * PT_LOG_LINE_MAX - 1);
    big[3 * PT_LOG_LINE_MAX - 1] = '\0';
    pt_log(PT_LOG_WARN, big, "{s:s}", "field", big);
    n = capture_read(&cap, buf, sizeof buf);
    assert_true(n > 0 && n <= PT_LOG_LINE_MAX);
    rec = json_loads(buf, 0, &jerr);
    assert_non_null(rec);
    assert_true(json_integer_value(json_object_get(rec, "log_truncated")) > PT_LOG_LINE_MAX);
    assert_int_equal(strlen(json_string_value(json_object_get(rec, "msg"))), 1024);
    assert_null(json_object_get(rec, "field"));
    json_decref(rec);
    free(big);

    capture_stop(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_yaml_all_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_partial_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_file_limits, setup, teardown),
        cmocka_unit_test(test_flags),
        cmocka_unit_test_setup_teardown(test_flag_override_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_errors, setup, teardown),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test_setup_teardown(test_cluster_settings, setup, teardown),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_log_output),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
