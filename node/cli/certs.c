/*
 * certs.c - `portolan cluster certs`: the certificates of the raft + peer port's mutual TLS.
 *
 *     portolan cluster certs --out DIR --regions a,b,c [--days N] [--ca DIR]
 *
 * Role: makes, with the OpenSSL API, what `portolan serve` needs for peer_tls_cert,
 * peer_tls_key and peer_tls_ca: a cluster CA (DIR/ca.pem, DIR/ca-key.pem) and, for each
 * region, DIR/<name>.pem and DIR/<name>-key.pem, whose certificate carries the
 * subjectAltName DNS:<name> that peers check against the region a server id belongs to.
 *
 * Design: every key is EC P-256; the CA is self-signed (basicConstraints CA:TRUE, pathlen 0,
 * keyCertSign), a region's certificate is signed by it (CA:FALSE, digitalSignature, extended
 * key usage serverAuth and clientAuth, since a region both dials and accepts). Serials are 128
 * random bits. Nothing is ever overwritten: files are created with O_EXCL, private keys with
 * mode 0600. An existing CA in --out is refused unless --ca names the directory that holds
 * it, which then signs the new regions (adding a region to a running cluster); its ca.pem is
 * copied into --out when --out is another directory, its key never is.
 * Threads: the caller's; blocks on the file system.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_int.h"
#include "ident.h"

#define CERTS_REGIONS_MAX 64
#define CERTS_DAYS_MAX    36500
#define CERTS_PATH_MAX    4096

struct certs_opts {
    const char *out;
    const char *ca_dir; /* NULL: make a new CA */
    long days;
    char names[CERTS_REGIONS_MAX][PT_CLUSTER_NAME_MAX + 1];
    size_t nnames;
};

static int certs_path(char *buf, const char *dir, const char *name, const char *suffix, FILE *err)
{
    int n = snprintf(buf, CERTS_PATH_MAX, "%s/%s%s", dir, name, suffix);
    if (n < 0 || n >= CERTS_PATH_MAX) {
        fprintf(err, "portolan cluster certs: path too long under %.200s\n", dir);
        return -1;
    }
    return 0;
}

static void certs_ssl_error(FILE *err, const char *what)
{
    unsigned long e = ERR_get_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    fprintf(err, "portolan cluster certs: %s: %s\n", what, r != NULL ? r : "failed");
    ERR_clear_error();
}

/* Opens path for writing, failing if it exists; mode 0600 for keys, 0644 otherwise. */
static FILE *certs_create(const char *path, bool secret, FILE *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, secret ? 0600 : 0644);
    FILE *f;
    if (fd < 0) {
        fprintf(err, "portolan cluster certs: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (never overwritten: remove it first)" : "");
        return NULL;
    }
    f = fdopen(fd, "w");
    if (f == NULL)
        close(fd);
    return f;
}

static int certs_write_key(const char *path, EVP_PKEY *key, FILE *err)
{
    FILE *f = certs_create(path, true, err);
    int ok;
    if (f == NULL)
        return -1;
    ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        certs_ssl_error(err, path);
        return -1;
    }
    return 0;
}

static int certs_write_cert(const char *path, X509 *cert, FILE *err)
{
    FILE *f = certs_create(path, false, err);
    int ok;
    if (f == NULL)
        return -1;
    ok = PEM_write_X509(f, cert) == 1;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        certs_ssl_error(err, path);
        return -1;
    }
    return 0;
}

static int certs_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

/* A certificate for key named cn, valid days from now, signed by issuer_key (issuer NULL:
 * self-signed CA). Returns it owned, or NULL. */
static X509 *certs_make(EVP_PKEY *key, const char *cn, long days, X509 *issuer,
                        EVP_PKEY *issuer_key)
{
    unsigned char serial[16];
    X509 *cert = X509_new();
    X509_NAME *name;
    BIGNUM *bn = NULL;
    int ok = cert != NULL && RAND_bytes(serial, sizeof(serial)) == 1;

    serial[0] &= 0x7f; /* positive */
    if (ok)
        ok = (bn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    if (ok)
        ok = X509_set_version(cert, 2) == 1 && X509_gmtime_adj(X509_getm_notBefore(cert), 0) &&
             X509_gmtime_adj(X509_getm_notAfter(cert), days * 86400L) &&
             X509_set_pubkey(cert, key) == 1;
    if (ok) {
        name = X509_get_subject_name(cert);
        ok = X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"portolan",
                                        -1, -1, 0) == 1 &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                        0) == 1 &&
             X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer) : name) == 1;
    }
    if (ok && issuer == NULL) {
        ok = certs_add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") == 0 &&
             certs_add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 &&
             certs_add_ext(cert, cert, NID_subject_key_identifier, "hash") == 0;
    } else if (ok) {
        char san[PT_CLUSTER_NAME_MAX + 8];
        snprintf(san, sizeof(san), "DNS:%s", cn);
        ok = certs_add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
             certs_add_ext(cert, issuer, NID_key_usage, "critical,digitalSignature") == 0 &&
             certs_add_ext(cert, issuer, NID_ext_key_usage, "serverAuth,clientAuth") == 0 &&
             certs_add_ext(cert, issuer, NID_subject_alt_name, san) == 0 &&
             certs_add_ext(cert, issuer, NID_subject_key_identifier, "hash") == 0 &&
             certs_add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always") == 0;
    }
    if (ok)
        ok = X509_sign(cert, issuer_key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

static int certs_load_ca(const char *dir, X509 **cert, EVP_PKEY **key, FILE *err)
{
    char path[CERTS_PATH_MAX];
    FILE *f;

    if (certs_path(path, dir, "ca", ".pem", err) != 0)
        return -1;
    f = fopen(path, "r");
    *cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    if (*cert == NULL) {
        fprintf(err, "portolan cluster certs: --ca: cannot read a certificate from %s\n", path);
        return -1;
    }
    if (certs_path(path, dir, "ca-key", ".pem", err) != 0)
        return -1;
    f = fopen(path, "r");
    *key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    if (*key == NULL || X509_check_private_key(*cert, *key) != 1) {
        fprintf(err, "portolan cluster certs: --ca: %s is not the key of ca.pem\n", path);
        X509_free(*cert);
        EVP_PKEY_free(*key);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static int certs_parse(struct certs_opts *o, int argc, char **argv, FILE *err)
{
    const char *regions = NULL;
    o->days = 3650;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--out") != 0 && strcmp(a, "--regions") != 0 && strcmp(a, "--days") != 0 &&
            strcmp(a, "--ca") != 0) {
            fprintf(err, "portolan cluster certs: unknown flag \"%.64s\"\n", a);
            return -1;
        }
        if (v == NULL) {
            fprintf(err, "portolan cluster certs: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--out") == 0) {
            o->out = v;
        } else if (strcmp(a, "--ca") == 0) {
            o->ca_dir = v;
        } else if (strcmp(a, "--regions") == 0) {
            regions = v;
        } else {
            char *end;
            errno = 0;
            o->days = strtol(v, &end, 10);
            if (errno != 0 || *end != '\0' || end == v || o->days < 1 || o->days > CERTS_DAYS_MAX) {
                fprintf(err, "portolan cluster certs: --days: want 1..%d\n", CERTS_DAYS_MAX);
                return -1;
            }
        }
    }
    if (o->out == NULL || regions == NULL) {
        fprintf(err, "portolan cluster certs: --out DIR and --regions a,b,c are required\n");
        return -1;
    }
    for (const char *p = regions; o->nnames == 0 || *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        const char *why = NULL;
        if (o->nnames == CERTS_REGIONS_MAX) {
            fprintf(err, "portolan cluster certs: --regions: at most %d\n", CERTS_REGIONS_MAX);
            return -1;
        }
        if (len > PT_CLUSTER_NAME_MAX) {
            fprintf(err, "portolan cluster certs: --regions: \"%.*s\": too long\n", (int)len, p);
            return -1;
        }
        memcpy(o->names[o->nnames], p, len);
        o->names[o->nnames][len] = '\0';
        if (pt_ident_check_region(o->names[o->nnames], &why) != 0) {
            fprintf(err, "portolan cluster certs: --regions: \"%s\": %s\n", o->names[o->nnames],
                    why != NULL ? why : "invalid region name");
            return -1;
        }
        for (size_t j = 0; j < o->nnames; j++) {
            if (strcmp(o->names[j], o->names[o->nnames]) == 0) {
                fprintf(err, "portolan cluster certs: --regions: %s twice\n", o->names[j]);
                return -1;
            }
        }
        o->nnames++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

static int certs_copy_ca(X509 *ca, const char *out, FILE *err)
{
    char path[CERTS_PATH_MAX];
    if (certs_path(path, out, "ca", ".pem", err) != 0)
        return -1;
    if (access(path, F_OK) == 0)
        return 0; /* already there: the signing CA's, or checked by serve at start */
    return certs_write_cert(path, ca, err);
}

int cli_certs(int argc, char **argv, FILE *out, FILE *err)
{
    struct certs_opts o;
    char path[CERTS_PATH_MAX];
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    int rc = PT_CLI_FAILED;

    memset(&o, 0, sizeof(o));
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_certs_usage(out);
            return PT_CLI_OK;
        }
    }
    if (certs_parse(&o, argc, argv, err) != 0) {
        cli_certs_usage(err);
        return PT_CLI_USAGE;
    }
    if (mkdir(o.out, 0700) != 0 && errno != EEXIST) {
        fprintf(err, "portolan cluster certs: %s: %s\n", o.out, strerror(errno));
        return PT_CLI_FAILED;
    }
    if (o.ca_dir != NULL) {
        if (certs_load_ca(o.ca_dir, &ca, &ca_key, err) != 0)
            return PT_CLI_FAILED;
        if (certs_copy_ca(ca, o.out, err) != 0)
            goto out;
    } else {
        if (certs_path(path, o.out, "ca", ".pem", err) != 0)
            return PT_CLI_FAILED;
        if (access(path, F_OK) == 0) {
            fprintf(err,
                    "portolan cluster certs: %s exists: pass --ca %s to sign new regions with "
                    "it, or remove it to start a new cluster CA\n",
                    path, o.out);
            return PT_CLI_FAILED;
        }
        ca_key = EVP_EC_gen("P-256");
        ca =
            ca_key != NULL ? certs_make(ca_key, "portolan cluster CA", o.days, NULL, ca_key) : NULL;
        if (ca == NULL) {
            certs_ssl_error(err, "cannot make the CA");
            goto out;
        }
        if (certs_path(path, o.out, "ca-key", ".pem", err) != 0 ||
            certs_write_key(path, ca_key, err) != 0 ||
            certs_path(path, o.out, "ca", ".pem", err) != 0 || certs_write_cert(path, ca, err) != 0)
            goto out;
        fprintf(out, "%s/ca.pem and %s/ca-key.pem: the cluster CA (keep ca-key.pem offline)\n",
                o.out, o.out);
    }
    for (size_t i = 0; i < o.nnames; i++) {
        EVP_PKEY *key = EVP_EC_gen("P-256");
        X509 *cert = key != NULL ? certs_make(key, o.names[i], o.days, ca, ca_key) : NULL;
        int bad = cert == NULL;
        if (bad)
            certs_ssl_error(err, o.names[i]);
        else
            bad = certs_path(path, o.out, o.names[i], "-key.pem", err) != 0 ||
                  certs_write_key(path, key, err) != 0 ||
                  certs_path(path, o.out, o.names[i], ".pem", err) != 0 ||
                  certs_write_cert(path, cert, err) != 0;
        X509_free(cert);
        EVP_PKEY_free(key);
        if (bad)
            goto out;
        fprintf(out, "%s/%s.pem and %s/%s-key.pem: region %s (SAN DNS:%s)\n", o.out, o.names[i],
                o.out, o.names[i], o.names[i], o.names[i]);
    }
    rc = PT_CLI_OK;
out:
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rc;
}

void cli_certs_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan cluster certs --out DIR --regions a,b,c [--days N] [--ca DIR]\n\n"
            "  makes the certificates of the raft + peer port's mutual TLS (peer_tls_cert,\n"
            "  peer_tls_key, peer_tls_ca of `portolan serve`): a cluster CA (DIR/ca.pem,\n"
            "  DIR/ca-key.pem) and for each region DIR/<name>.pem and DIR/<name>-key.pem\n"
            "  (EC P-256, SAN DNS:<name>, serverAuth + clientAuth). Keys are mode 0600;\n"
            "  nothing is overwritten.\n\n"
            "  --out DIR       where to write (created, mode 0700, if missing)\n"
            "  --regions LIST  region names, comma-separated, as in the cluster file\n"
            "  --days N        validity in days (default 3650)\n"
            "  --ca DIR        sign with the CA in DIR (ca.pem, ca-key.pem) instead of making\n"
            "                  one: to add a region to a running cluster\n\n"
            "exit status: 0 ok, 1 failed, 2 usage error\n");
}
