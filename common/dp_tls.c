/*
 * dp_tls.c - self-signed TLS material (see dp_tls.h), with OpenSSL 3.
 */
#include "dp_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Writes PEM text from a memory BIO to path atomically with mode. */
static int dp_tls_write(const char *path, BIO *mem, mode_t mode)
{
    char tmp[4096];
    char *data;
    long n = BIO_get_mem_data(mem, &data);
    int fd, r = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    if (write(fd, data, (size_t)n) != n || fsync(fd) != 0)
        r = -EIO;
    close(fd);
    if (!r && rename(tmp, path) != 0)
        r = -errno;
    if (r)
        unlink(tmp);
    return r;
}

static int dp_tls_add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A host name fit for a certificate's CN and SAN (no commas: they would
 * split the SAN list). */
static int dp_tls_host_ok(const char *host)
{
    size_t n = strlen(host);

    return n > 0 && n < 200 &&
           strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789.-:") == n;
}

static X509 *dp_tls_cert(EVP_PKEY *key, const char *host)
{
    X509 *x = X509_new();
    X509_NAME *name;
    unsigned char serial[16], addr[16];
    char san[512];
    BIGNUM *bn = NULL;
    int ip = inet_pton(AF_INET, host, addr) == 1 ||
             inet_pton(AF_INET6, host, addr) == 1;

    if (!x)
        return NULL;
    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f; /* positive */
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    snprintf(san, sizeof(san), "%s:%s,DNS:localhost,IP:127.0.0.1,IP:::1",
             ip ? "IP" : "DNS", host);
    name = X509_get_subject_name(x);
    if (!bn || !X509_set_version(x, 2) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400) ||
        !X509_set_pubkey(x, key) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                    (const unsigned char *)"Deskpool", -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)host, -1, -1, 0) ||
        !X509_set_issuer_name(x, name) ||
        !dp_tls_add_ext(x, NID_subject_alt_name, san) ||
        !dp_tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        !dp_tls_add_ext(x, NID_ext_key_usage, "serverAuth") ||
        !X509_sign(x, key, EVP_sha256())) {
        BN_free(bn);
        X509_free(x);
        return NULL;
    }
    BN_free(bn);
    return x;
}

int dp_tls_selfsigned(const char *cert_path, const char *key_path,
                      const char *host, char *err, size_t err_size)
{
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    BIO *kb = NULL, *cb = NULL;
    int r = -EIO;

    if (access(cert_path, F_OK) == 0 && access(key_path, F_OK) == 0)
        return 1;
    if (!dp_tls_host_ok(host)) {
        snprintf(err, err_size, "%s: not a host name for a certificate", host);
        return -EINVAL;
    }
    key = EVP_EC_gen("P-256");
    x = key ? dp_tls_cert(key, host) : NULL;
    kb = BIO_new(BIO_s_mem());
    cb = BIO_new(BIO_s_mem());
    if (!x || !kb || !cb ||
        !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509(cb, x)) {
        snprintf(err, err_size, "cannot make a self-signed certificate");
        goto out;
    }
    /* Key first: a certificate without its key would look complete. */
    r = dp_tls_write(key_path, kb, 0600);
    if (r) {
        snprintf(err, err_size, "%s: %s", key_path, strerror(-r));
        goto out;
    }
    r = dp_tls_write(cert_path, cb, 0644);
    if (r)
        snprintf(err, err_size, "%s: %s", cert_path, strerror(-r));
out:
    BIO_free(kb);
    BIO_free(cb);
    X509_free(x);
    EVP_PKEY_free(key);
    return r;
}

int dp_tls_fingerprint(const char *cert_path, char out[96])
{
    FILE *f = fopen(cert_path, "r");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    X509 *x;

    if (!f)
        return -errno;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!x)
        return -EINVAL;
    if (!X509_digest(x, EVP_sha256(), md, &n) || n != 32) {
        X509_free(x);
        return -EIO;
    }
    X509_free(x);
    for (i = 0; i < n; i++)
        snprintf(out + 3 * i, 4, i + 1 < n ? "%02X:" : "%02X", md[i]);
    return 0;
}
