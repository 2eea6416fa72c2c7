/*
 * test_cli_auth.c - the admin client's credentials and its access control and audit commands
 * (node/cli/): the registry clients' auth files (credfile.h), the order of the credential
 * sources with fake HOME and XDG_RUNTIME_DIR directories, the requests `user`, `token` and
 * `auth` send (method, path, JSON body, Authorization header) to an in-process fake server
 * (support/fake_http.h), the messages on 401 and 403, and `audit verify|tail` on a real log.
 *
 * Every test starts with no credential in the environment and HOME pointing at an empty
 * temporary directory, so the developer's own auth files never take part.
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
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "cli_int.h"
#include "credfile.h"
#include "support/cli_run.h"
#include "support/fake_http.h"
#include "support/tmpdir.h"

struct fx {
    char dir[256];
    char home[300], xdg[300];
    struct pt_fake_http *srv;
    FILE *in; /* what the command reads as standard input */
    char in_text[4096];
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void mkdirs(const char *base, const char *sub)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", base, sub);
    for (char *s = p + strlen(base) + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0700);
            *s = '/';
        }
    }
    mkdir(p, 0700);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    pt_tmpdir_create(f->dir, sizeof f->dir, "pt-cli-auth-");
    snprintf(f->home, sizeof f->home, "%s/home", f->dir);
    snprintf(f->xdg, sizeof f->xdg, "%s/run", f->dir);
    mkdir(f->home, 0700);
    mkdir(f->xdg, 0700);
    unsetenv("PORTOLAN_USER");
    unsetenv("PORTOLAN_PASSWORD");
    unsetenv("REGISTRY_AUTH_FILE");
    unsetenv("XDG_RUNTIME_DIR");
    setenv("HOME", f->home, 1);
    f->srv = pt_fake_http_start();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    pt_cli_set_input(NULL);
    if (f->in != NULL)
        fclose(f->in);
    pt_fake_http_stop(f->srv);
    assert_int_equal(pt_tmpdir_remove(f->dir), 0);
    free(f);
    return 0;
}

/* Standard input of the next command. */
static void input(struct fx *f, const char *text)
{
    if (f->in != NULL)
        fclose(f->in);
    snprintf(f->in_text, sizeof f->in_text, "%s", text);
    f->in = fmemopen(f->in_text, strlen(f->in_text), "r");
    assert_non_null(f->in);
    pt_cli_set_input(f->in);
}

/* An auth file entry's "auth" for user:password. */
static const char *b64(const char *s, char *out, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        assert_true(o + 5 < len);
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* An auth file with one entry under key for user:password. */
static void auth_file(const char *path, const char *key, const char *userpass)
{
    char enc[512], text[1024];
    snprintf(text, sizeof text,
             "{\"auths\": {\"other.example\": {\"auth\": \"eDp5\"}, \"%s\": {\"auth\": \"%s\"}}}",
             key, b64(userpass, enc, sizeof enc));
    write_file(path, text);
}

/* ---- credfile.c ------------------------------------------------------------------------ */

static void test_url_authority(void **state)
{
    (void)state;
    char a[CLI_AUTHORITY_MAX], alt[CLI_AUTHORITY_MAX];

    assert_int_equal(cli_url_authority("http://127.0.0.1:5001/x", a, sizeof a, alt, sizeof alt), 0);
    assert_string_equal(a, "127.0.0.1:5001");
    assert_string_equal(alt, "");
    assert_int_equal(cli_url_authority("https://Reg.Example", a, sizeof a, alt, sizeof alt), 0);
    assert_string_equal(a, "reg.example");
    assert_string_equal(alt, "reg.example");
    assert_int_equal(cli_url_authority("https://reg.example:443/", a, sizeof a, alt, sizeof alt),
                     0);
    assert_string_equal(a, "reg.example:443");
    assert_string_equal(alt, "reg.example");
    assert_int_equal(cli_url_authority("http://u:p@h:80", a, sizeof a, alt, sizeof alt), 0);
    assert_string_equal(a, "h:80");
    assert_string_equal(alt, "h");
    assert_int_equal(cli_url_authority("http://[::1]:5000", a, sizeof a, alt, sizeof alt), 0);
    assert_string_equal(a, "[::1]:5000");
    assert_int_equal(cli_url_authority("ftp://x", a, sizeof a, alt, sizeof alt), -1);
    assert_int_equal(cli_url_authority("http://", a, sizeof a, alt, sizeof alt), -1);
}

static void test_base64(void **state)
{
    (void)state;
    unsigned char out[16];

    assert_int_equal(cli_base64_decode("Ym9iOnB3", 8, out, sizeof out), 6);
    assert_memory_equal(out, "bob:pw", 6);
    assert_int_equal(cli_base64_decode("YQ==", 4, out, sizeof out), 1);
    assert_int_equal(cli_base64_decode("YQ", 2, out, sizeof out), 1);
    assert_int_equal(cli_base64_decode("YWI=", 4, out, sizeof out), 2);
    assert_int_equal(cli_base64_decode("Y", 1, out, sizeof out), -1);
    assert_int_equal(cli_base64_decode("Y===", 4, out, sizeof out), -1);
    assert_int_equal(cli_base64_decode("Ym9i OnB3", 9, out, sizeof out), -1);
    assert_int_equal(cli_base64_decode("Ym9iOnB3", 8, out, 5), -1);
}

static int find(const char *json, const char *authority, const char *alt, char *user, char *secret,
                const char **why)
{
    return cli_authfile_find(json, strlen(json), authority, alt, user, secret, why);
}

static void test_authfile_keys(void **state)
{
    (void)state;
    char user[CLI_USER_MAX + 1], secret[CLI_SECRET_MAX + 1];
    const char *why = NULL;

    /* bob:pw in each key form a registry client writes. */
    assert_int_equal(find("{\"auths\":{\"127.0.0.1:5001\":{\"auth\":\"Ym9iOnB3\"}}}",
                          "127.0.0.1:5001", "", user, secret, &why),
                     0);
    assert_string_equal(user, "bob");
    assert_string_equal(secret, "pw");
    assert_int_equal(find("{\"auths\":{\"https://127.0.0.1:5001\":{\"auth\":\"Ym9iOnB3\"}}}",
                          "127.0.0.1:5001", "", user, secret, &why),
                     0);
    assert_int_equal(find("{\"auths\":{\"http://127.0.0.1:5001/v2/\":{\"auth\":\"Ym9iOnB3\"}}}",
                          "127.0.0.1:5001", "", user, secret, &why),
                     0);
    assert_int_equal(find("{\"auths\":{\"REG.example\":{\"auth\":\"Ym9iOnB3\"}}}",
                          "reg.example:443", "reg.example", user, secret, &why),
                     0);
    /* Other port, other host, no auths: not found. */
    assert_int_equal(find("{\"auths\":{\"127.0.0.1:5002\":{\"auth\":\"Ym9iOnB3\"}}}",
                          "127.0.0.1:5001", "", user, secret, &why),
                     1);
    assert_string_equal(secret, "");
    assert_int_equal(find("{\"auths\":{\"127.0.0.1\":{\"auth\":\"Ym9iOnB3\"}}}", "127.0.0.1:5001",
                          "", user, secret, &why),
                     1);
    assert_int_equal(find("{}", "h:1", "", user, secret, &why), 1);
    assert_int_equal(find("{\"auths\":[]}", "h:1", "", user, secret, &why), 1);
    /* An entry without "auth" (a credential helper's) is skipped; a later one matches. */
    assert_int_equal(find("{\"auths\":{\"h:1\":{\"identitytoken\":\"x\"},"
                          "\"https://h:1\":{\"auth\":\"Ym9iOnB3\"}}}",
                          "h:1", "", user, secret, &why),
                     0);
    /* A colon inside the password stays in the password. */
    assert_int_equal(
        find("{\"auths\":{\"h:1\":{\"auth\":\"Ym9iOnA6dw==\"}}}", "h:1", "", user, secret, &why),
        0);
    assert_string_equal(secret, "p:w");
}

static void test_authfile_malformed(void **state)
{
    (void)state;
    char user[CLI_USER_MAX + 1], secret[CLI_SECRET_MAX + 1];
    const char *why = NULL;

    assert_int_equal(find("not json", "h:1", "", user, secret, &why), -1);
    assert_string_equal(why, "not a JSON object");
    /* "bob" without a colon; bad base64; ":pw" without a user. */
    assert_int_equal(
        find("{\"auths\":{\"h:1\":{\"auth\":\"Ym9i\"}}}", "h:1", "", user, secret, &why), -1);
    assert_int_equal(
        find("{\"auths\":{\"h:1\":{\"auth\":\"!!!!\"}}}", "h:1", "", user, secret, &why), -1);
    assert_int_equal(
        find("{\"auths\":{\"h:1\":{\"auth\":\"OnB3\"}}}", "h:1", "", user, secret, &why), -1);
    assert_string_equal(secret, "");
    /* A password over CLI_SECRET_MAX. */
    char *big = malloc(4000), *json = malloc(8000), enc[6000];
    memset(big, 'p', 2000);
    memcpy(big, "bob:", 4);
    big[2000] = '\0';
    snprintf(json, 8000, "{\"auths\":{\"h:1\":{\"auth\":\"%s\"}}}", b64(big, enc, sizeof enc));
    assert_int_equal(find(json, "h:1", "", user, secret, &why), -1);
    /* A file over CLI_AUTHFILE_MAX is refused before parsing. */
    assert_int_equal(cli_authfile_find(json, CLI_AUTHFILE_MAX + 1, "h:1", "", user, secret, &why),
                     -1);
    free(big);
    free(json);
}

/* ---- the order of the sources ----------------------------------------------------------- */

static void resolve(struct fx *f, struct cli_opts *o, int want_rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&buf, &len);

    memset(o, 0, sizeof *o);
    o->cmd = CMD_WHOAMI;
    snprintf(o->region, sizeof o->region, "%s", f->srv->url);
    assert_int_equal(cli_cred_resolve(o, err), want_rc);
    fclose(err);
    free(buf);
}

static void test_source_order(void **state)
{
    struct fx *f = *state;
    struct cli_opts o;
    char host[80], p_docker[400], p_config[400], p_xdg[400], p_env[400];

    snprintf(host, sizeof host, "%s", f->srv->url + strlen("http://"));
    resolve(f, &o, 0);
    assert_false(o.cred.have);

    mkdirs(f->home, ".docker");
    snprintf(p_docker, sizeof p_docker, "%s/.docker/config.json", f->home);
    auth_file(p_docker, host, "d-user:d-pw");
    resolve(f, &o, 0);
    assert_true(o.cred.have);
    assert_string_equal(o.cred.user, "d-user");
    assert_string_equal(o.cred.secret, "d-pw");
    assert_string_equal(o.cred.source, p_docker);

    mkdirs(f->home, ".config/containers");
    snprintf(p_config, sizeof p_config, "%s/.config/containers/auth.json", f->home);
    auth_file(p_config, host, "c-user:c-pw");
    resolve(f, &o, 0);
    assert_string_equal(o.cred.user, "c-user");

    mkdirs(f->xdg, "containers");
    snprintf(p_xdg, sizeof p_xdg, "%s/containers/auth.json", f->xdg);
    auth_file(p_xdg, host, "x-user:x-pw");
    resolve(f, &o, 0);
    assert_string_equal(o.cred.user, "c-user"); /* XDG_RUNTIME_DIR not set yet */
    setenv("XDG_RUNTIME_DIR", f->xdg, 1);
    resolve(f, &o, 0);
    assert_string_equal(o.cred.user, "x-user");
    assert_string_equal(o.cred.source, p_xdg);

    snprintf(p_env, sizeof p_env, "%s/custom.json", f->dir);
    char key[100];
    snprintf(key, sizeof key, "https://%s", host);
    auth_file(p_env, key, "r-user:r-pw");
    setenv("REGISTRY_AUTH_FILE", p_env, 1);
    resolve(f, &o, 0);
    assert_string_equal(o.cred.user, "r-user");

    /* A file without an entry for the host passes to the next one. */
    auth_file(p_env, "elsewhere:1", "z:z");
    resolve(f, &o, 0);
    assert_string_equal(o.cred.user, "x-user");

    setenv("PORTOLAN_USER", "e-user", 1);
    setenv("PORTOLAN_PASSWORD", "e-pw", 1);
    resolve(f, &o, 0);
    assert_string_equal(o.cred.user, "e-user");
    assert_string_equal(o.cred.secret, "e-pw");
    assert_string_equal(o.cred.source, "PORTOLAN_USER");

    /* --user with --password-stdin comes first. */
    input(f, "s-pw\nnext line\n");
    memset(&o, 0, sizeof o);
    o.cmd = CMD_WHOAMI;
    snprintf(o.region, sizeof o.region, "%s", f->srv->url);
    o.user = "s-user";
    o.password_stdin = true;
    assert_int_equal(cli_cred_resolve(&o, stderr), 0);
    assert_string_equal(o.cred.user, "s-user");
    assert_string_equal(o.cred.secret, "s-pw");
    assert_string_equal(o.cred.source, "--user");

    /* PORTOLAN_USER without PORTOLAN_PASSWORD is a mistake, not a silent fallback. */
    unsetenv("PORTOLAN_PASSWORD");
    resolve(f, &o, PT_CLI_USAGE);
}

static void test_bad_files(void **state)
{
    struct fx *f = *state;
    struct cli_opts o;
    char host[80], p_docker[400], p_config[400];

    snprintf(host, sizeof host, "%s", f->srv->url + strlen("http://"));
    mkdirs(f->home, ".docker");
    mkdirs(f->home, ".config/containers");
    snprintf(p_docker, sizeof p_docker, "%s/.docker/config.json", f->home);
    snprintf(p_config, sizeof p_config, "%s/.config/containers/auth.json", f->home);
    auth_file(p_docker, host, "d-user:d-pw");

    /* Not JSON: skipped with a warning. */
    write_file(p_config, "garbage");
    resolve(f, &o, 0);
    assert_string_equal(o.cred.user, "d-user");

    /* Over 1 MiB: skipped without being read whole. */
    FILE *big = fopen(p_config, "w");
    assert_non_null(big);
    assert_int_equal(ftruncate(fileno(big), CLI_AUTHFILE_MAX + 1), 0);
    fclose(big);
    resolve(f, &o, 0);
    assert_string_equal(o.cred.user, "d-user");

    /* The matching entry is malformed: refused, not skipped. */
    char text[300];
    snprintf(text, sizeof text, "{\"auths\":{\"%s\":{\"auth\":\"bm9jb2xvbg==\"}}}", host);
    write_file(p_config, text);
    resolve(f, &o, PT_CLI_USAGE);
    assert_false(o.cred.have);
}

/* ---- commands against a fake server ------------------------------------------------------ */

#define USER(...)  PT_CLI_RUN(pt_cli_user, __VA_ARGS__)
#define TOKEN(...) PT_CLI_RUN(pt_cli_token, __VA_ARGS__)
#define AUTH(...)  PT_CLI_RUN(pt_cli_auth, __VA_ARGS__)
#define AUDIT(...) PT_CLI_RUN(pt_cli_audit, __VA_ARGS__)

static void test_whoami_sends_basic(void **state)
{
    struct fx *f = *state;

    pt_fake_http_route(f->srv, "GET", "/admin/auth/whoami", 200,
                       "{\"identity\":\"user:bob\",\"kind\":\"user\",\"admin\":false}");
    input(f, "pw\n");
    struct pt_cli_run r =
        AUTH("whoami", "--region", f->srv->url, "--user", "bob", "--password-stdin");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "identity: user:bob");
    pt_cli_run_expect_in(r.out, "admin: no");
    pt_cli_run_expect_in(r.out, "credentials from: --user");
    assert_string_equal(f->srv->authorization, "Basic Ym9iOnB3");
    pt_cli_run_free(&r);

    /* Without any credentials nothing is sent. */
    r = AUTH("whoami", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    assert_string_equal(f->srv->authorization, "");
    pt_cli_run_free(&r);

    /* Credentials from an auth file for this host:port. */
    char p[400], host[80];
    snprintf(host, sizeof host, "%s", f->srv->url + strlen("http://"));
    snprintf(p, sizeof p, "%s/auth.json", f->dir);
    auth_file(p, host, "bob:pw");
    setenv("REGISTRY_AUTH_FILE", p, 1);
    r = AUTH("whoami", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    assert_string_equal(f->srv->authorization, "Basic Ym9iOnB3");
    pt_cli_run_expect_in(r.out, "credentials from: ");
    pt_cli_run_expect_in(r.out, "auth.json");
    pt_cli_run_free(&r);
}

static void test_refusals_name_the_credentials(void **state)
{
    struct fx *f = *state;

    pt_fake_http_route(f->srv, "GET", "/admin/users", 401,
                       "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication "
                       "required\"}]}");
    setenv("PORTOLAN_USER", "carol", 1);
    setenv("PORTOLAN_PASSWORD", "s3cret-value", 1);
    struct pt_cli_run r = USER("list", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "HTTP 401 UNAUTHORIZED");
    pt_cli_run_expect_in(r.err, "refused the credentials of \"carol\" (from PORTOLAN_USER)");
    assert_null(strstr(r.err, "s3cret-value"));
    assert_null(strstr(r.out, "s3cret-value"));
    pt_cli_run_free(&r);

    pt_fake_http_route(f->srv, "GET", "/admin/users", 403,
                       "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"denied\"}]}");
    r = USER("list", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "\"carol\" (credentials from PORTOLAN_USER) is not allowed");
    assert_null(strstr(r.err, "s3cret-value"));
    pt_cli_run_free(&r);

    unsetenv("PORTOLAN_USER");
    unsetenv("PORTOLAN_PASSWORD");
    r = USER("list", "--region", f->srv->url);
    pt_cli_run_expect_in(r.err, "no credentials were sent");
    pt_cli_run_free(&r);
}

static void test_user_add(void **state)
{
    struct fx *f = *state;

    pt_fake_http_route(f->srv, "POST", "/admin/users", 201,
                       "{\"name\":\"alice\",\"grants\":[],\"disabled\":false}");
    /* --user's password first, then the new one. */
    input(f, "admin-pw\nalice-pw\n");
    struct pt_cli_run r =
        USER("add", "alice", "--grant", "team/*:pull,push", "--grant", "public/**:pull", "--admin",
             "--region", f->srv->url, "--user", "root", "--password-stdin");
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out,
                         "user alice added, grants: team/*:pull,push public/**:pull **:admin");
    assert_null(strstr(r.out, "alice-pw"));
    assert_string_equal(f->srv->method, "POST");
    assert_string_equal(f->srv->target, "/admin/users");
    json_t *body = json_loads(f->srv->body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "name")), "alice");
    assert_string_equal(json_string_value(json_object_get(body, "password")), "alice-pw");
    json_t *grants = json_object_get(body, "grants");
    assert_int_equal(json_array_size(grants), 3);
    json_t *g0 = json_array_get(grants, 0);
    assert_string_equal(json_string_value(json_object_get(g0, "pattern")), "team/*");
    assert_int_equal(json_array_size(json_object_get(g0, "actions")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(g0, "actions"), 1)),
                        "push");
    json_t *g2 = json_array_get(grants, 2);
    assert_string_equal(json_string_value(json_object_get(g2, "pattern")), "**");
    assert_string_equal(json_string_value(json_array_get(json_object_get(g2, "actions"), 0)),
                        "admin");
    json_decref(body);
    pt_cli_run_free(&r);

    /* An empty new password is refused before any request. */
    unsigned before = f->srv->requests;
    input(f, "\n");
    r = USER("add", "dave", "--region", f->srv->url, "--password-stdin");
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "the new password is empty");
    assert_int_equal(f->srv->requests, before);
    pt_cli_run_free(&r);

    /* Bad names and grants are usage errors. */
    r = USER("add", "Alice", "--region", f->srv->url, "--password-stdin");
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    r = USER("add", "eve", "--grant", "team:*:pull", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    r = USER("add", "eve", "--grant", "team/*:admin", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_expect_in(r.err, "admin is registry-wide");
    pt_cli_run_free(&r);
    r = USER("add", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_expect_in(r.err, "NAME is required");
    pt_cli_run_free(&r);
}

static void test_user_list_remove_passwd(void **state)
{
    struct fx *f = *state;

    pt_fake_http_route(
        f->srv, "GET", "/admin/users", 200,
        "{\"users\":[{\"name\":\"root\",\"grants\":[{\"pattern\":\"**\",\"actions\":[\"admin\"]}],"
        "\"disabled\":false,\"created\":\"2026-12-06T20:41:19Z\"},"
        "{\"name\":\"bob\",\"grants\":[{\"pattern\":\"team/*\",\"actions\":[\"pull\",\"push\"]}],"
        "\"disabled\":true,\"created\":1765053679000}]}");
    pt_fake_http_route(f->srv, "DELETE", "/admin/users/bob", 204, "%s", "");
    pt_fake_http_route(f->srv, "PUT", "/admin/users/bob/password", 204, "%s", "");

    struct pt_cli_run r = USER("list", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "NAME  STATE     CREATED");
    pt_cli_run_expect_in(r.out, "root  active    2026-12-06 20:41:19Z  **:admin");
    pt_cli_run_expect_in(r.out, "bob   disabled  2025-12-06 20:41:19Z  team/*:pull,push");
    pt_cli_run_free(&r);

    r = USER("remove", "bob", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    assert_string_equal(f->srv->method, "DELETE");
    pt_cli_run_expect_in(r.out, "user bob removed");
    pt_cli_run_free(&r);

    input(f, "new-pw\r\n");
    r = USER("passwd", "bob", "--region", f->srv->url, "--password-stdin");
    assert_int_equal(r.rc, PT_CLI_OK);
    assert_string_equal(f->srv->method, "PUT");
    assert_string_equal(f->srv->target, "/admin/users/bob/password");
    assert_string_equal(f->srv->body, "{\"password\":\"new-pw\"}");
    pt_cli_run_free(&r);
}

static void test_token_commands(void **state)
{
    struct fx *f = *state;

    pt_fake_http_route(
        f->srv, "POST", "/admin/tokens", 201,
        "{\"id\":\"ci\",\"secret\":\"ptk_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\","
        "\"grants\":[{\"pattern\":\"team/*\",\"actions\":[\"pull\",\"push\"]}],"
        "\"expires\":\"2027-01-05T20:41:19Z\"}");
    struct pt_cli_run r = TOKEN("create", "--id", "ci", "--grant", "team/*:pull,push", "--expires",
                                "30d", "--description", "build bot", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "token ci created, grants: team/*:pull,push, expires: "
                                "2027-01-05 20:41:19Z");
    pt_cli_run_expect_in(r.out, "secret: ptk_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG");
    pt_cli_run_expect_in(r.out, "will not be shown again");
    json_t *body = json_loads(f->srv->body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "id")), "ci");
    assert_int_equal(json_integer_value(json_object_get(body, "expires_in_s")), 30 * 86400);
    assert_string_equal(json_string_value(json_object_get(body, "description")), "build bot");
    assert_int_equal(json_array_size(json_object_get(body, "grants")), 1);
    json_decref(body);
    pt_cli_run_free(&r);

    /* Without --id and --expires the body has neither. */
    r = TOKEN("create", "--grant", "**:pull", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    assert_null(strstr(f->srv->body, "\"id\""));
    assert_null(strstr(f->srv->body, "expires_in_s"));
    pt_cli_run_free(&r);

    r = TOKEN("create", "--grant", "a:pull", "--expires", "30y", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);

    pt_fake_http_route(f->srv, "GET", "/admin/tokens", 200,
                       "{\"tokens\":[{\"id\":\"ci\",\"owner\":\"root\",\"disabled\":false,"
                       "\"expires\":null,\"created\":\"2026-12-06T20:41:19Z\",\"grants\":"
                       "[{\"pattern\":\"team/*\",\"actions\":[\"pull\"]}],\"description\":"
                       "\"bot\\u001b[31m\"}]}");
    r = TOKEN("list", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "ID  OWNER  STATE   EXPIRES  CREATED");
    pt_cli_run_expect_in(r.out,
                         "ci  root   active  never    2026-12-06 20:41:19Z  team/*:pull  bot?[31m");
    pt_cli_run_free(&r);

    static const struct {
        const char *verb, *method, *target;
    } simple[] = {{"revoke", "DELETE", "/admin/tokens/ci"},
                  {"disable", "POST", "/admin/tokens/ci/disable"},
                  {"enable", "POST", "/admin/tokens/ci/enable"}};
    for (size_t i = 0; i < 3; i++) {
        pt_fake_http_route(f->srv, simple[i].method, simple[i].target, 204, "%s", "");
        r = TOKEN((char *)simple[i].verb, "ci", "--region", f->srv->url);
        assert_int_equal(r.rc, PT_CLI_OK);
        assert_string_equal(f->srv->method, simple[i].method);
        assert_string_equal(f->srv->target, simple[i].target);
        pt_cli_run_free(&r);
    }
}

static void test_auth_commands(void **state)
{
    struct fx *f = *state;

    pt_fake_http_route(f->srv, "GET", "/admin/auth/anonymous", 200,
                       "{\"rules\":[\"public/**\",\"docs/*\"]}");
    pt_fake_http_route(f->srv, "POST", "/admin/auth/anonymous", 201, "{}");
    pt_fake_http_route(f->srv, "DELETE", "/admin/auth/anonymous?pattern=public%2F%2A%2A", 204, "%s",
                       "");
    pt_fake_http_route(f->srv, "POST", "/admin/auth/keys/rotate", 201, "{\"kid\":\"k-123\"}");

    struct pt_cli_run r = AUTH("anonymous", "list", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "ANONYMOUS PULL\npublic/**\ndocs/*\n");
    pt_cli_run_free(&r);

    r = AUTH("anonymous", "add", "public/**", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    assert_string_equal(f->srv->body, "{\"pattern\":\"public/**\"}");
    pt_cli_run_free(&r);

    r = AUTH("anonymous", "remove", "public/**", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    assert_string_equal(f->srv->method, "DELETE");
    pt_cli_run_free(&r);

    r = AUTH("rotate-key", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "new signing key: k-123");
    pt_cli_run_free(&r);

    r = AUTH("anonymous", "add", "Public?", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    r = AUTH("anonymous", "frobnicate", "--region", f->srv->url);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
    /* --password-stdin without --user names no password to read. */
    r = AUTH("whoami", "--region", f->srv->url, "--password-stdin");
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
}

static void test_audit_commands(void **state)
{
    struct fx *f = *state;
    struct pt_audit *a;
    char path[400];

    assert_int_equal(pt_audit_open(f->dir, "eu", 0, 0, 3, &a), 0);
    for (int i = 0; i < 5; i++) {
        char ref[16];
        snprintf(ref, sizeof ref, "v%d", i);
        struct pt_audit_event ev = {.identity = "user:bob",
                                    .action = "push",
                                    .repository = "team/app",
                                    .reference = ref,
                                    .status = 201};
        pt_audit_record(a, &ev);
    }
    pt_audit_close(a);

    struct pt_cli_run r = AUDIT("verify", "--data-dir", f->dir);
    assert_int_equal(r.rc, PT_CLI_OK);
    pt_cli_run_expect_in(r.out, "ok: 5 lines in 1 files");
    pt_cli_run_free(&r);

    r = AUDIT("tail", "--data-dir", f->dir, "-n", "2");
    assert_int_equal(r.rc, PT_CLI_OK);
    assert_null(strstr(r.out, "\"v2\""));
    pt_cli_run_expect_in(r.out, "\"reference\":\"v3\"");
    pt_cli_run_expect_in(r.out, "\"reference\":\"v4\"");
    pt_cli_run_free(&r);

    r = AUDIT("tail", "--data-dir", f->dir, "-n", "0");
    assert_int_equal(r.rc, PT_CLI_OK);
    assert_string_equal(r.out, "");
    pt_cli_run_free(&r);

    /* Tampering: the verify of the file names the line after the edit. */
    snprintf(path, sizeof path, "%s/audit/audit.log", f->dir);
    FILE *fp = fopen(path, "r+");
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    char *v1 = strstr(buf, "\"v1\"");
    v1[2] = '9';
    rewind(fp);
    fwrite(buf, 1, n, fp);
    fclose(fp);
    r = AUDIT("verify", path);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.out, "audit.log:3: chain broken");
    pt_cli_run_free(&r);

    r = AUDIT("verify", "--data-dir", f->dir, path);
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);

    /* No log there: both commands say so. */
    r = AUDIT("tail", "--data-dir", f->home);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "audit/audit.log");
    pt_cli_run_free(&r);
    r = AUDIT("verify", "--data-dir", f->home);
    assert_int_equal(r.rc, PT_CLI_FAILED);
    pt_cli_run_expect_in(r.err, "cannot read the audit log");
    pt_cli_run_free(&r);
    r = AUDIT("tail", "--data-dir", f->dir, "-x");
    assert_int_equal(r.rc, PT_CLI_USAGE);
    pt_cli_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_authority),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_authfile_keys),
        cmocka_unit_test(test_authfile_malformed),
        cmocka_unit_test_setup_teardown(test_source_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whoami_sends_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_name_the_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_list_remove_passwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_commands, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
