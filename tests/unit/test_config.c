/*
 * test_config.c - settings of `portolan serve` as they are read: defaults, YAML, environment
 * variables (PORTOLAN_<KEY>), flags, and their precedence.
 *
 * YAML files are written into a fresh temporary directory per test (support/cfg_fixture.h).
 * Every refusal is checked for PT_E_CONFIG, for a message naming the key or flag, and for
 * leaving the configuration untouched. Validation, value syntax and the cluster settings are
 * tested in test_config_values.c.
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

#include "config.h"
#include "units.h"
#include "err.h"
#include "log.h"
#include "support/cfg_fixture.h"

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
    assert_int_equal(c.body_memory_limit, UINT64_C(1) << 30);
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
    const char *path = pt_cfg_write_yaml(state, "# every key\n"
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
        assert_int_equal(
            pt_config_load_file(&c, pt_cfg_write_yaml(state, empties[i]), err, sizeof err), 0);
        assert_memory_equal(&c, &d, sizeof c);
    }
    /* Keys not in the file keep their values; null clears a string. */
    pt_config_defaults(&c);
    strcpy(c.tls_cert, "/x");
    assert_int_equal(pt_config_load_file(&c,
                                         pt_cfg_write_yaml(state, "---\nregion: ap-1\ntls_cert:\n"),
                                         err, sizeof err),
                     0);
    assert_string_equal(c.region, "ap-1");
    assert_string_equal(c.tls_cert, "");
    assert_int_equal(c.threads, 0);
    assert_string_equal(c.listen, "127.0.0.1:5000");
    /* A quoted "null" is a string, not null. */
    assert_int_equal(
        pt_config_load_file(&c, pt_cfg_write_yaml(state, "data_dir: \"null\"\n"), err, sizeof err),
        0);
    assert_string_equal(c.data_dir, "null");
    /* Flow style is YAML too. */
    assert_int_equal(
        pt_config_load_file(&c, pt_cfg_write_yaml(state, "{threads: 2, access_log: yes}\n"), err,
                            sizeof err),
        0);
    assert_int_equal(c.threads, 2);
    assert_int_equal(c.access_log, 1);
}

static void test_yaml_errors(void **state)
{
    pt_cfg_expect_yaml_error(state, "listen: 0.0.0.0:80\nbogus_key: 1\n", "bogus_key");
    pt_cfg_expect_yaml_error(state, "bogus_key: 1\n", ":1:");
    pt_cfg_expect_yaml_error(state, "max_body_size: 12XB\n", "max_body_size");
    pt_cfg_expect_yaml_error(state, "max_body_size: 1.5GiB\n", "max_body_size");
    pt_cfg_expect_yaml_error(state, "max_manifest_size: 1GiB\n", "max_manifest_size");
    /* The manifest parser and store cap manifests at PT_MANIFEST_MAX_BYTES: no setting above. */
    pt_cfg_expect_yaml_error(state, "max_manifest_size: 5MiB\n", "max_manifest_size");
    pt_cfg_expect_yaml_error(state, "max_manifest_size: 4194305\n", "max_manifest_size");
    pt_cfg_expect_yaml_error(state, "body_spill_threshold: -1\n", "body_spill_threshold");
    pt_cfg_expect_yaml_error(state, "request_timeout: 5d\n", "request_timeout");
    pt_cfg_expect_yaml_error(state, "request_timeout: 0\n", "request_timeout");
    pt_cfg_expect_yaml_error(state, "upload_ttl: 1h30m\n", "upload_ttl");
    pt_cfg_expect_yaml_error(state, "listen: 127.0.0.1:70000\n", "listen");
    pt_cfg_expect_yaml_error(state, "listen: 127.0.0.1:70000\n", "port");
    pt_cfg_expect_yaml_error(state, "listen: 127.0.0.1\n", "listen");
    pt_cfg_expect_yaml_error(state, "threads: many\n", "threads");
    pt_cfg_expect_yaml_error(state, "threads: 5000\n", "threads");
    pt_cfg_expect_yaml_error(state, "max_connections: 0\n", "max_connections");
    pt_cfg_expect_yaml_error(state, "region: EU_West\n", "region");
    pt_cfg_expect_yaml_error(state, "region: \"\"\n", "region");
    pt_cfg_expect_yaml_error(state, "log_level: verbose\n", "log_level");
    pt_cfg_expect_yaml_error(state, "access_log: maybe\n", "access_log");
    pt_cfg_expect_yaml_error(state, "data_dir:\n", "data_dir");
    /* Line numbers point at the offending key. */
    pt_cfg_expect_yaml_error(state, "threads: 1\n\nregion: BAD\n", ":3: region");
    /* Structure. */
    pt_cfg_expect_yaml_error(state, "threads: 1\nthreads: 2\n", "threads");
    pt_cfg_expect_yaml_error(state, "threads: 1\nthreads: 2\n", "twice");
    pt_cfg_expect_yaml_error(state, "listen:\n  host: a\n", "listen");
    pt_cfg_expect_yaml_error(state, "region: [a, b]\n", "region");
    pt_cfg_expect_yaml_error(state, "data_dir: &d /a\ntls_cert: *d\n", "tls_cert");
    pt_cfg_expect_yaml_error(state, "- threads\n", "top level");
    pt_cfg_expect_yaml_error(state, "just text\n", "top level");
    pt_cfg_expect_yaml_error(state, "threads: 1\n---\nthreads: 2\n", "one YAML document");
    pt_cfg_expect_yaml_error(state, "region: \"abc\n", "YAML syntax error");
    pt_cfg_expect_yaml_error(state, "threads: 1\n\tregion: a\n", "YAML syntax error");
    pt_cfg_expect_yaml_error(state, "? [a]\n: 1\n", "keys");
}

static void test_yaml_file_limits(void **state)
{
    struct pt_cfg_fixture *f = *state;
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
    pt_cfg_expect_yaml_error(state, big, "listen");
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

    strcpy(path, pt_cfg_write_yaml(state, "threads: 4\nregion: eu-west\nlog_level: error\n"
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
    pt_cfg_write_yaml(state, "threads: 4\nupload_ttl: forever\n");
    char *argv3[] = {"--threads", "2", "--config", path};
    pt_cfg_expect_args_error(4, argv3, "upload_ttl");
}

static void test_flag_errors(void **state)
{
    char path[160];

    strcpy(path, pt_cfg_write_yaml(state, "threads: 1\n"));
    char *unknown[] = {"--threads", "1", "--bogus", "x"};
    pt_cfg_expect_args_error(4, unknown, "--bogus");
    char *unknown_eq[] = {"--bogus-flag=3"};
    pt_cfg_expect_args_error(1, unknown_eq, "--bogus-flag");
    /* An unknown flag is called unknown, whatever follows it (not "missing value"). */
    char *unknown_last[] = {"--bogus"};
    pt_cfg_expect_args_error(1, unknown_last, "unknown flag \"--bogus\"");
    char *unknown_eq1[] = {"--bogus=1"};
    pt_cfg_expect_args_error(1, unknown_eq1, "unknown flag \"--bogus\"");
    char *unknown_before_flag[] = {"--bogus", "--threads", "2"};
    pt_cfg_expect_args_error(3, unknown_before_flag, "unknown flag \"--bogus\"");
    /* The YAML spelling is not a flag. */
    char *underscore[] = {"--max_body_size", "1"};
    pt_cfg_expect_args_error(2, underscore, "--max_body_size");
    char *size[] = {"--max-body-size", "lots"};
    pt_cfg_expect_args_error(2, size, "--max-body-size");
    char *size_eq[] = {"--max-body-size=1 GiB"};
    pt_cfg_expect_args_error(1, size_eq, "--max-body-size");
    char *dur[] = {"--request-timeout", "1w"};
    pt_cfg_expect_args_error(2, dur, "--request-timeout");
    char *port[] = {"--listen", "localhost:0"};
    pt_cfg_expect_args_error(2, port, "--listen");
    char *port_big[] = {"--listen=[::]:99999"};
    pt_cfg_expect_args_error(1, port_big, "port");
    /* Every flag takes a value; a following flag is not taken as one. */
    char *boolean[] = {"--access-log", "--threads", "2"};
    pt_cfg_expect_args_error(3, boolean, "--access-log");
    char *dashes[] = {"--data-dir", "--x"};
    pt_cfg_expect_args_error(2, dashes, "--data-dir");
    char *missing[] = {"--threads", "2", "--region"};
    pt_cfg_expect_args_error(3, missing, "--region");
    char *positional[] = {"serve"};
    pt_cfg_expect_args_error(1, positional, "serve");
    char *dash[] = {"-t", "2"};
    pt_cfg_expect_args_error(2, dash, "-t");
    char *twice[] = {"--config", path, "--config", path};
    pt_cfg_expect_args_error(4, twice, "--config");
    char *empty_config[] = {"--config="};
    pt_cfg_expect_args_error(1, empty_config, "--config");
    char *manifest_big[] = {"--max-manifest-size=8MiB"};
    pt_cfg_expect_args_error(1, manifest_big, "--max-manifest-size");
    char *level[] = {"--log-level", "INFO"};
    pt_cfg_expect_args_error(2, level, "--log-level");
    /* Unknown flags are found before the file is read. */
    char *order[] = {"--config", "/nonexistent/x.yaml", "--nope", "1"};
    pt_cfg_expect_args_error(4, order, "--nope");
}

/* Access control is off only on loopback; its values are checked. */
static void test_auth_settings(void **state)
{
    struct pt_config c;
    char err[256];
    (void)state;

    pt_config_defaults(&c);
    assert_int_equal(c.auth, 1);
    assert_int_equal(c.audit, PT_AUDIT_ON);
    assert_int_equal(c.token_ttl_ms, 5 * 60 * 1000);
    assert_string_equal(c.auth_service, "portolan");
    char *off_public[] = {"--auth", "off", "--listen", "0.0.0.0:5000"};
    assert_int_equal(pt_config_parse_args(&c, 4, off_public, err, sizeof err), 0);
    assert_int_equal(pt_config_validate(&c, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "auth"));
    pt_config_defaults(&c);
    char *off_local[] = {"--auth", "off", "--listen", "[::1]:5000", "--audit", "stderr"};
    assert_int_equal(pt_config_parse_args(&c, 6, off_local, err, sizeof err), 0);
    assert_int_equal(pt_config_validate(&c, err, sizeof err), 0);
    assert_int_equal(c.auth, 0);
    assert_int_equal(c.audit, PT_AUDIT_STDERR);
    pt_config_defaults(&c);
    char *bad_audit[] = {"--audit", "maybe"};
    assert_int_equal(pt_config_parse_args(&c, 2, bad_audit, err, sizeof err), PT_E_CONFIG);
    char *bad_url[] = {"--public-url", "ftp://x"};
    assert_int_equal(pt_config_parse_args(&c, 2, bad_url, err, sizeof err), 0);
    assert_int_equal(pt_config_validate(&c, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "public_url"));
    pt_config_defaults(&c);
    char *same_port[] = {"--metrics-listen", "127.0.0.1:5000"};
    assert_int_equal(pt_config_parse_args(&c, 2, same_port, err, sizeof err), 0);
    assert_int_equal(pt_config_validate(&c, err, sizeof err), PT_E_CONFIG);
    assert_non_null(strstr(err, "metrics_listen"));
}

/* ---- environment ----------------------------------------------------------------------- */

static void test_env_settings(void **state)
{
    struct pt_config c;
    char err[256] = "";
    char *envp[] = {
        "HOME=/root", "PORTOLAN_DATA_DIR=/var/lib/portolan", "PORTOLAN_LISTEN=0.0.0.0:5000",
        "PORTOLAN_RAFT_LISTEN=0.0.0.0:7000", "PORTOLAN_THREADS=2", "PORTOLAN_MAX_BODY_SIZE=1GiB",
        "PORTOLAN_ACCESS_LOG=off", "PORTOLAN_TAG_READS=local",
        "PORTOLAN_PEER_TLS_CERT=/etc/portolan/eu.crt", "PORTOLAN_TLS_CERT=",
        /* read by other parts of the project: passed over */
        "PORTOLAN_USER=admin", "PORTOLAN_PASSWORD=secret", "PORTOLAN_INITIAL_ADMIN_PASSWORD=secret",
        "PORTOLAN_AUTH=off", "PORTOLAN_BIN=/usr/bin/portolan",
        /* Kubernetes service links of Services "portolan" and "portolan-peer" */
        "PORTOLAN_SERVICE_HOST=10.0.0.1", "PORTOLAN_SERVICE_PORT=5000",
        "PORTOLAN_SERVICE_PORT_HTTP=5000", "PORTOLAN_PORT=tcp://10.0.0.1:5000",
        "PORTOLAN_PORT_5000_TCP=tcp://10.0.0.1:5000", "PORTOLAN_PORT_5000_TCP_PROTO=tcp",
        "PORTOLAN_PORT_5000_TCP_PORT=5000", "PORTOLAN_PORT_5000_TCP_ADDR=10.0.0.1",
        "PORTOLAN_PEER_SERVICE_HOST=10.0.0.2", "PORTOLAN_PEER_PORT_7000_TCP=tcp://10.0.0.2:7000",
        "NOT_PORTOLAN_THREADS=x", NULL};

    (void)state;
    pt_config_defaults(&c);
    strcpy(c.tls_cert, "/x");
    if (pt_config_apply_env(&c, envp, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
    assert_string_equal(c.data_dir, "/var/lib/portolan");
    assert_string_equal(c.listen, "0.0.0.0:5000");
    assert_string_equal(c.raft_listen, "0.0.0.0:7000");
    assert_int_equal(c.threads, 2);
    assert_int_equal(c.max_body_size, UINT64_C(1) << 30);
    assert_int_equal(c.access_log, 0);
    assert_int_equal(c.tag_reads, PT_TAG_READS_LOCAL);
    assert_string_equal(c.peer_tls_cert, "/etc/portolan/eu.crt");
    assert_string_equal(c.tls_cert, "");
    /* PORTOLAN_AUTH is not the auth setting. */
    assert_int_equal(c.auth, 1);

    /* No environment, or one without settings, changes nothing. */
    struct pt_config d = c;
    char *none[] = {"PATH=/bin", NULL};
    assert_int_equal(pt_config_apply_env(&c, NULL, err, sizeof err), 0);
    assert_int_equal(pt_config_apply_env(&c, none, err, sizeof err), 0);
    assert_memory_equal(&c, &d, sizeof c);
}

static void test_env_precedence(void **state)
{
    struct pt_config c;
    char err[256] = "";
    char path[160], other[200], env_config[200];

    /* default < YAML file < environment < flag, one setting decided at each layer. */
    strcpy(path, pt_cfg_write_yaml(state, "threads: 4\nregion: from-file\nmax_connections: 10\n"
                                          "log_level: error\n"));
    snprintf(env_config, sizeof env_config, "PORTOLAN_CONFIG=%s", path);
    char *envp[] = {env_config, "PORTOLAN_REGION=from-env", "PORTOLAN_MAX_CONNECTIONS=20", NULL};
    char *argv[] = {"--max-connections", "30"};
    pt_config_defaults(&c);
    assert_int_equal(pt_config_parse(&c, 2, argv, envp, err, sizeof err), 0);
    assert_int_equal(c.upload_ttl_ms, 24 * 3600 * 1000); /* default */
    assert_int_equal(c.threads, 4);                      /* file */
    assert_int_equal(c.log_level, PT_LOG_ERROR);         /* file */
    assert_string_equal(c.region, "from-env");           /* environment over file */
    assert_int_equal(c.max_connections, 30);             /* flag over environment */

    /* --config wins over PORTOLAN_CONFIG: only the flag's file is read. */
    strcpy(other, path);
    strcpy(strrchr(other, '/'), "/other.yaml");
    FILE *f = fopen(other, "w");
    assert_non_null(f);
    fputs("threads: 6\n", f);
    fclose(f);
    char *argv2[] = {"--config", other};
    pt_config_defaults(&c);
    assert_int_equal(pt_config_parse(&c, 2, argv2, envp, err, sizeof err), 0);
    assert_int_equal(c.threads, 6);
    assert_int_equal(c.log_level, PT_LOG_INFO);
    assert_string_equal(c.region, "from-env");
    unlink(other);

    /* pt_config_parse_args reads no environment. */
    pt_config_defaults(&c);
    assert_int_equal(pt_config_parse_args(&c, 0, argv, err, sizeof err), 0);
    assert_string_equal(c.region, "local");
}

/* Applies envp on top of defaults and expects refusal naming needle, c left untouched, and
 * err free of forbidden (a value that must not be quoted), if not NULL. */
static void expect_env_error(char **envp, const char *needle, const char *forbidden)
{
    struct pt_config c, before;
    char err[512] = "";

    pt_config_defaults(&c);
    before = c;
    assert_int_equal(pt_config_parse(&c, 0, NULL, envp, err, sizeof err), PT_E_CONFIG);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not name \"%s\"", err, needle);
    if (forbidden != NULL && strstr(err, forbidden) != NULL)
        fail_msg("error \"%s\" quotes \"%s\"", err, forbidden);
    assert_memory_equal(&c, &before, sizeof c);
}

static void test_env_errors(void **state)
{
    (void)state;
    /* Unknown variables are refused by name; their values are not quoted. */
    char *typo[] = {"PORTOLAN_THREADS=2", "PORTOLAN_DATADIR=/srv", NULL};
    expect_env_error(typo, "PORTOLAN_DATADIR", NULL);
    char *secret_typo[] = {"PORTOLAN_INITIAL_ADMIN_PASSWRD=hunter2-secret", NULL};
    expect_env_error(secret_typo, "PORTOLAN_INITIAL_ADMIN_PASSWRD", "hunter2");
    char *lower[] = {"PORTOLAN_data_dir=/srv", NULL};
    expect_env_error(lower, "PORTOLAN_data_dir", NULL);
    /* Shaped like a service link by name, but not by value: a mistyped setting. */
    char *port[] = {"PORTOLAN_METRICS_PORT=9090", NULL};
    expect_env_error(port, "PORTOLAN_METRICS_PORT", NULL);
    char *svc[] = {"PORTOLAN_SERVICE_PORT=http", NULL};
    expect_env_error(svc, "PORTOLAN_SERVICE_PORT", NULL);
    char *empty_name[] = {"PORTOLAN_=1", NULL};
    expect_env_error(empty_name, "PORTOLAN_", NULL);

    /* A bad value names the variable. */
    char *threads[] = {"PORTOLAN_THREADS=many", NULL};
    expect_env_error(threads, "PORTOLAN_THREADS", NULL);
    char *listen[] = {"PORTOLAN_LISTEN=nowhere", NULL};
    expect_env_error(listen, "PORTOLAN_LISTEN", NULL);
    char *size[] = {"PORTOLAN_MAX_MANIFEST_SIZE=1TiB", NULL};
    expect_env_error(size, "PORTOLAN_MAX_MANIFEST_SIZE", NULL);
    char *boolean[] = {"PORTOLAN_PEER_TLS=maybe", NULL};
    expect_env_error(boolean, "PORTOLAN_PEER_TLS", NULL);
    char *region[] = {"PORTOLAN_REGION=EU", NULL};
    expect_env_error(region, "PORTOLAN_REGION", NULL);
    char *empty_dir[] = {"PORTOLAN_DATA_DIR=", NULL};
    expect_env_error(empty_dir, "PORTOLAN_DATA_DIR", NULL);
    char *twice[] = {"PORTOLAN_THREADS=1", "PORTOLAN_THREADS=2", NULL};
    expect_env_error(twice, "PORTOLAN_THREADS", NULL);

    /* PORTOLAN_CONFIG: an empty name or a missing file is refused. */
    char *no_name[] = {"PORTOLAN_CONFIG=", NULL};
    expect_env_error(no_name, "PORTOLAN_CONFIG", NULL);
    char *missing[] = {"PORTOLAN_CONFIG=/nonexistent/portolan.yaml", NULL};
    expect_env_error(missing, "/nonexistent/portolan.yaml", NULL);

    /* A refused variable stops the flags too; a flag does not hide a refused variable. */
    struct pt_config c;
    char err[256] = "";
    char *argv[] = {"--threads", "3"};
    pt_config_defaults(&c);
    assert_int_equal(pt_config_parse(&c, 2, argv, threads, err, sizeof err), PT_E_CONFIG);
    assert_int_equal(c.threads, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_yaml_all_keys, pt_cfg_setup, pt_cfg_teardown),
        cmocka_unit_test_setup_teardown(test_yaml_partial_and_empty, pt_cfg_setup, pt_cfg_teardown),
        cmocka_unit_test_setup_teardown(test_yaml_errors, pt_cfg_setup, pt_cfg_teardown),
        cmocka_unit_test_setup_teardown(test_yaml_file_limits, pt_cfg_setup, pt_cfg_teardown),
        cmocka_unit_test(test_flags),
        cmocka_unit_test_setup_teardown(test_flag_override_order, pt_cfg_setup, pt_cfg_teardown),
        cmocka_unit_test_setup_teardown(test_flag_errors, pt_cfg_setup, pt_cfg_teardown),
        cmocka_unit_test(test_auth_settings),
        cmocka_unit_test(test_env_settings),
        cmocka_unit_test_setup_teardown(test_env_precedence, pt_cfg_setup, pt_cfg_teardown),
        cmocka_unit_test(test_env_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
