/*
 * client.c - the admin client's HTTP: one request over a blocking libcurl easy handle, many
 * at once over a multi handle, and reading what came back (JSON documents, their fields, the
 * OCI error bodies of refusals).
 *
 * Design: a struct cli_xfer owns everything one request needs (handle, headers, body,
 * response buffer, error text), so a caller zeroes one, sets it up, runs it alone
 * (cli_xfer_run) or with others (cli_xfer_run_all), reads the outcome with cli_xfer_finish
 * and cleans it up. cli_request wraps that for the commands that send one request and print
 * its failure.
 *
 * Credentials (cli_opts.cred, credentials.c) go with every request as HTTP Basic; a 401 or
 * 403 answer is followed by which credentials were sent (never the secret).
 *
 * Limits: responses are cut at RESPONSE_MAX bytes (the request then fails), only http and
 * https are spoken (redirects included, at most REDIRECTS_MAX, method and body kept), every
 * request has a total and a connect timeout. Error bodies are shown cleaned of control
 * characters, at most ERRORS_SHOWN_MAX entries and TEXT_SHOWN_MAX bytes of each text.
 */
#include "cli_int.h"

#include <stdlib.h>
#include <string.h>

#define RESPONSE_MAX       (1024 * 1024)
#define CONNECT_TIMEOUT_MS 2000
#define REDIRECTS_MAX      3
#define ERRORS_SHOWN_MAX   8   /* entries of an error body printed */
#define TEXT_SHOWN_MAX     300 /* bytes of a non-JSON error body or message printed */

/* ---- one request ----------------------------------------------------------------------- */

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct cli_xfer *x = arg;
    size_t n = size * nmemb;

    if (n > RESPONSE_MAX - x->resp.len) {
        x->too_large = true;
        return 0;
    }
    pt_buf_append(&x->resp, data, n);
    if (x->resp.nomem)
        return 0;
    x->resp.p[x->resp.len] = '\0';
    return n;
}

void cli_xfer_cleanup(struct cli_xfer *x)
{
    if (x->h != NULL)
        curl_easy_cleanup(x->h);
    curl_slist_free_all(x->headers);
    if (x->body != NULL) /* may hold a password */
        explicit_bzero(x->body, strlen(x->body));
    free(x->body);
    free(x->resp.p);
    memset(x, 0, sizeof *x);
}

/*
 * Prepares x (zeroed by the caller) for method on base + path, with body (borrowed, may be
 * NULL) sent as JSON. Returns 0 or -1 with a message in x->errbuf; x must be cleaned up
 * either way.
 */
int cli_xfer_setup(struct cli_xfer *x, const char *method, const char *base, const char *path,
                   json_t *body, const struct cli_opts *o, uint64_t timeout_ms)
{
    struct curl_slist *l;
    CURLcode c = CURLE_OK;

    snprintf(x->url, sizeof x->url, "%s%s", base, path);
    x->rc = CURLE_OK;
    x->h = curl_easy_init();
    if (x->h == NULL) {
        snprintf(x->errbuf, sizeof x->errbuf, "cannot create an HTTP handle");
        return -1;
    }
    l = curl_slist_append(NULL, "Accept: application/json");
    if (l != NULL)
        x->headers = l;
    if (body != NULL) {
        x->body = json_dumps(body, JSON_COMPACT);
        l = curl_slist_append(x->headers, "Content-Type: application/json");
        if (l != NULL)
            x->headers = l;
        if (x->body == NULL || l == NULL) {
            snprintf(x->errbuf, sizeof x->errbuf, "out of memory");
            return -1;
        }
    }
    if (x->headers == NULL) {
        snprintf(x->errbuf, sizeof x->errbuf, "out of memory");
        return -1;
    }
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (c == CURLE_OK)                                                                         \
            c = curl_easy_setopt(x->h, opt, val);                                                  \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_URL, x->url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, (long)REDIRECTS_MAX);
    SET(CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
    SET(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS,
        (long)(timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS));
    SET(CURLOPT_USERAGENT, "portolan/" PT_VERSION);
    SET(CURLOPT_HTTPHEADER, x->headers);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, x);
    if (o->cacert != NULL)
        SET(CURLOPT_CAINFO, o->cacert);
    /* HTTP Basic; libcurl keeps it for this host only (no CURLOPT_UNRESTRICTED_AUTH). */
    if (o->cred.have) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_USERNAME, o->cred.user);
        SET(CURLOPT_PASSWORD, o->cred.secret);
    }
    if (x->body != NULL) {
        SET(CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
        SET(CURLOPT_POSTFIELDS, x->body);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        SET(CURLOPT_CUSTOMREQUEST, method);
    else if (strcmp(method, "POST") == 0 && x->body == NULL)
        SET(CURLOPT_POST, 1L);
#undef SET
    if (c != CURLE_OK) {
        snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_easy_strerror(c));
        return -1;
    }
    x->errbuf[0] = '\0';
    return 0;
}

/* After a transfer ended with x->rc: 0 with x->status set, or -1 with a reason in why
 * (whylen bytes). */
int cli_xfer_finish(struct cli_xfer *x, char *why, size_t whylen)
{
    if (x->rc != CURLE_OK) {
        if (x->too_large)
            snprintf(why, whylen, "response larger than %d bytes", RESPONSE_MAX);
        else
            snprintf(why, whylen, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->rc));
        return -1;
    }
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
    return 0;
}

/* Runs one request to completion: 0 with x->status set, or -1 with a reason in why. */
int cli_xfer_run(struct cli_xfer *x, char *why, size_t whylen)
{
    x->rc = curl_easy_perform(x->h);
    return cli_xfer_finish(x, why, whylen);
}

/* ---- many at once ---------------------------------------------------------------------- */

/* Ends x without a transfer: the reason goes where cli_xfer_finish looks for it. */
static void xfer_fail(struct cli_xfer *x, const char *why)
{
    x->rc = CURLE_FAILED_INIT;
    x->too_large = false;
    snprintf(x->errbuf, sizeof x->errbuf, "%s", why);
}

void cli_xfer_run_all(struct cli_xfer **xs, size_t n)
{
    CURLM *multi = curl_multi_init();
    CURLMsg *msg;
    int running = 0, left;

    for (size_t i = 0; i < n; i++) {
        struct cli_xfer *x = xs[i];

        x->in_multi = x->done = false;
        if (multi == NULL) {
            xfer_fail(x, "cannot create an HTTP handle");
            continue;
        }
        if (curl_easy_setopt(x->h, CURLOPT_PRIVATE, x) != CURLE_OK ||
            curl_multi_add_handle(multi, x->h) != CURLM_OK) {
            xfer_fail(x, "cannot start the request");
            continue;
        }
        x->in_multi = true;
    }
    if (multi == NULL)
        return;
    do {
        if (curl_multi_perform(multi, &running) != CURLM_OK)
            break;
        if (running > 0 && curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK)
            break;
    } while (running > 0);
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        char *priv = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        struct cli_xfer *x = (struct cli_xfer *)(void *)priv;
        if (x != NULL) {
            x->rc = msg->data.result;
            x->done = true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct cli_xfer *x = xs[i];

        if (!x->in_multi)
            continue;
        curl_multi_remove_handle(multi, x->h);
        x->in_multi = false;
        /* The multi loop broke off: this transfer never completed. */
        if (!x->done)
            xfer_fail(x, "request did not complete");
    }
    curl_multi_cleanup(multi);
}

/* ---- answers --------------------------------------------------------------------------- */

int cli_request(struct cli_xfer *x, const struct cli_opts *o, const char *method, const char *base,
                const char *path, json_t *body, bool any_2xx, FILE *err)
{
    const char *title = cli_cmd_titles[o->cmd];
    char why[CLI_WHY_MAX];

    if (cli_xfer_setup(x, method, base, path, body, o, o->timeout_ms) != 0 ||
        cli_xfer_run(x, why, sizeof why) != 0) {
        fprintf(err, "portolan %s: %s: %s\n", title, x->url, x->errbuf[0] ? x->errbuf : why);
        return -1;
    }
    if (any_2xx ? x->status < 200 || x->status > 299 : x->status != 200) {
        cli_print_http_error(err, title, x);
        if (x->status == 401 || x->status == 403)
            cli_print_auth_hint(err, o, x->status);
        return -1;
    }
    return 0;
}

/* The object's string member key if it is a string of at most max bytes, else NULL. */
const char *cli_json_str(const json_t *obj, const char *key, size_t max)
{
    const json_t *v = json_object_get(obj, key);

    if (!json_is_string(v) || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

/* The object's integer member key if it is >= 0, else -1. */
long long cli_json_uint(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    return (long long)json_integer_value(v);
}

json_t *cli_xfer_json(const struct cli_xfer *x)
{
    if (x->resp.len == 0)
        return NULL;
    return json_loadb((const char *)x->resp.p, x->resp.len, JSON_REJECT_DUPLICATES, NULL);
}

int cli_get_list(struct cli_xfer *x, const struct cli_opts *o, const char *path, const char *key,
                 FILE *out, FILE *err, json_t **doc, json_t **items)
{
    *doc = NULL;
    *items = NULL;
    if (cli_request(x, o, "GET", o->region, path, NULL, false, err) != 0)
        return -1;
    *doc = cli_xfer_json(x);
    *items = json_object_get(*doc, key);
    if (!json_is_array(*items)) {
        fprintf(err, "portolan %s: %s: answer has no \"%s\" array\n", cli_cmd_titles[o->cmd],
                x->url, key);
        return -1;
    }
    if (o->json) {
        cli_print_json(out, *doc);
        return 0;
    }
    return 1;
}

/* Prints an error answer: the OCI error entries when the body has them, else its start. */
void cli_print_http_error(FILE *err, const char *cmd, const struct cli_xfer *x)
{
    char a[TEXT_SHOWN_MAX + 1], b[TEXT_SHOWN_MAX + 1];
    json_t *doc = cli_xfer_json(x);
    json_t *errors = json_object_get(doc, "errors");
    size_t shown = 0;

    fprintf(err, "portolan %s: %s: HTTP %ld", cmd, cli_clean(a, sizeof a, x->url, CLI_URL_MAX),
            x->status);
    if (json_is_array(errors)) {
        size_t i;
        json_t *e;
        json_array_foreach(errors, i, e)
        {
            const char *code = cli_json_str(e, "code", 128);
            const char *msg = cli_json_str(e, "message", 4096);
            if (shown == ERRORS_SHOWN_MAX || (code == NULL && msg == NULL))
                break;
            fprintf(err, "%s%s: %s", shown ? "\n  " : " ",
                    cli_clean(a, sizeof a, code ? code : "UNKNOWN", 128),
                    cli_clean(b, sizeof b, msg ? msg : "", TEXT_SHOWN_MAX));
            shown++;
        }
    }
    if (shown == 0 && x->resp.len > 0)
        fprintf(err, ": %s", cli_clean(a, sizeof a, (const char *)x->resp.p, TEXT_SHOWN_MAX));
    fputc('\n', err);
    json_decref(doc);
}
