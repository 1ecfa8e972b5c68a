/*
 * bk_client.c - blocking HTTPS client for the broker's API (see
 * bk_client.h), on OpenSSL.
 */
#include "bk_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define BK_CLIENT_HEAD_MAX 16384

struct bk_client {
    char host[256], port[8];
    int tls, fd, timeout_ms;
    SSL_CTX *ctx;
    SSL *ssl;
};

static int bk_client_fail(char *err, size_t err_size, int r, const char *fmt,
                          const char *what)
{
    snprintf(err, err_size, fmt, what);
    return r;
}

/* "https://host:port" or "http://host:port" (host may be [v6]). */
static int bk_client_parse(struct bk_client *c, const char *url)
{
    const char *p, *colon;
    size_t n;

    if (!strncmp(url, "https://", 8)) {
        c->tls = 1;
        p = url + 8;
    } else if (!strncmp(url, "http://", 7)) {
        p = url + 7;
    } else {
        return -EINVAL;
    }
    if (*p == '[') {
        const char *end = strchr(p, ']');

        if (!end || end[1] != ':')
            return -EINVAL;
        n = (size_t)(end - p - 1);
        if (n >= sizeof(c->host))
            return -EINVAL;
        memcpy(c->host, p + 1, n);
        c->host[n] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(p, ':');
        if (!colon || (size_t)(colon - p) >= sizeof(c->host))
            return -EINVAL;
        memcpy(c->host, p, (size_t)(colon - p));
        c->host[colon - p] = '\0';
    }
    n = strcspn(colon + 1, "/");
    if (n == 0 || n >= sizeof(c->port))
        return -EINVAL;
    memcpy(c->port, colon + 1, n);
    c->port[n] = '\0';
    return 0;
}

int bk_client_open(struct bk_client **out, const char *base_url,
                   const char *ca_file, int insecure, int timeout_ms, char *err,
                   size_t err_size)
{
    struct bk_client *c = calloc(1, sizeof(*c));

    if (!c)
        return -ENOMEM;
    c->fd = -1;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    if (bk_client_parse(c, base_url)) {
        free(c);
        return bk_client_fail(err, err_size, -EINVAL,
                              "%s: not an http(s)://HOST:PORT URL", base_url);
    }
    if (c->tls) {
        c->ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ctx) {
            free(c);
            return bk_client_fail(err, err_size, -ENOMEM, "%s", "TLS setup");
        }
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
        if (insecure) {
            SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
        } else {
            SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
            if ((ca_file &&
                 !SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL)) ||
                (!ca_file && !SSL_CTX_set_default_verify_paths(c->ctx))) {
                bk_client_close(c);
                return bk_client_fail(err, err_size, -EINVAL,
                                      "%s: cannot load CA certificates",
                                      ca_file ? ca_file : "system");
            }
        }
    }
    *out = c;
    return 0;
}

static void bk_client_disconnect(struct bk_client *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

void bk_client_close(struct bk_client *c)
{
    if (!c)
        return;
    bk_client_disconnect(c);
    SSL_CTX_free(c->ctx);
    free(c);
}

static int bk_client_wait(struct bk_client *c, short events)
{
    struct pollfd p = {.fd = c->fd, .events = events};
    int n = poll(&p, 1, c->timeout_ms);

    return n > 0 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

static int bk_client_connect(struct bk_client *c, char *err, size_t err_size)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL, *a;
    int r = getaddrinfo(c->host, c->port, &hints, &ai);

    if (r)
        return bk_client_fail(err, err_size, -EHOSTUNREACH, "%s: unknown host",
                              c->host);
    r = -ECONNREFUSED;
    for (a = ai; a && c->fd < 0; a = a->ai_next) {
        c->fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (c->fd >= 0 && connect(c->fd, a->ai_addr, a->ai_addrlen) != 0) {
            r = -errno;
            close(c->fd);
            c->fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (c->fd < 0) {
        snprintf(err, err_size, "cannot connect to %s port %s: %s", c->host,
                 c->port, strerror(-r));
        return r;
    }
    /* requests are written whole; nothing to gain from Nagle */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    if (!c->tls)
        return 0;
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) ||
        !SSL_set_tlsext_host_name(c->ssl, c->host) ||
        !SSL_set1_host(c->ssl, c->host) || SSL_connect(c->ssl) != 1) {
        long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;

        snprintf(err, err_size, "TLS with %s failed: %s", c->host,
                 v != X509_V_OK ? X509_verify_cert_error_string(v)
                                : "handshake failed");
        ERR_clear_error();
        bk_client_disconnect(c);
        return -EPROTO;
    }
    return 0;
}

static int bk_client_write(struct bk_client *c, const char *p, size_t n)
{
    while (n) {
        ssize_t w;

        if (c->ssl) {
            int k = SSL_write(c->ssl, p, (int)n);

            if (k <= 0)
                return -EPIPE;
            w = k;
        } else {
            if (bk_client_wait(c, POLLOUT))
                return -ETIMEDOUT;
            w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w <= 0)
                return -EPIPE;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads some bytes: > 0, 0 at the end, < 0 on error. */
static ssize_t bk_client_read(struct bk_client *c, char *buf, size_t n)
{
    if (c->ssl && SSL_pending(c->ssl) == 0 && bk_client_wait(c, POLLIN))
        return -ETIMEDOUT;
    if (!c->ssl && bk_client_wait(c, POLLIN))
        return -ETIMEDOUT;
    if (c->ssl) {
        int k = SSL_read(c->ssl, buf, (int)n);

        if (k > 0)
            return k;
        return SSL_get_error(c->ssl, k) == SSL_ERROR_ZERO_RETURN ? 0 : -EIO;
    }
    return read(c->fd, buf, n);
}

/* Reads the reply's head into r and returns how many body bytes it says
 * (-1: until the connection ends); leftover body bytes go into r->body. */
static long bk_client_head(struct bk_client *c, struct bk_response *r)
{
    char *buf = malloc(BK_CLIENT_HEAD_MAX + 1), *end = NULL;
    size_t len = 0;
    long clen = -1;
    char v[32];

    if (!buf)
        return -ENOMEM;
    while (!end) {
        ssize_t n;

        if (len == BK_CLIENT_HEAD_MAX) {
            free(buf);
            return -EMSGSIZE;
        }
        n = bk_client_read(c, buf + len, BK_CLIENT_HEAD_MAX - len);
        if (n <= 0) {
            free(buf);
            return n == 0 ? -ECONNRESET : (long)n;
        }
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    *end = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
        free(buf);
        return -EPROTO;
    }
    r->headers = strdup(buf);
    if (bk_response_header(r, "content-length", v, sizeof(v)) == 0)
        clen = strtol(v, NULL, 10);
    r->len = len - (size_t)(end + 4 - buf);
    r->body = malloc(r->len + 1);
    if (!r->body || !r->headers) {
        free(buf);
        return -ENOMEM;
    }
    memcpy(r->body, end + 4, r->len);
    r->body[r->len] = '\0';
    free(buf);
    return clen;
}

static int bk_client_body(struct bk_client *c, struct bk_response *r, long clen)
{
    size_t want = clen >= 0 ? (size_t)clen : BK_CLIENT_MAX_BODY;

    if (clen > (long)BK_CLIENT_MAX_BODY)
        return -EMSGSIZE;
    while (r->len < want) {
        char *b = realloc(r->body, (clen >= 0 ? want : r->len + 65536) + 1);
        ssize_t n;

        if (!b)
            return -ENOMEM;
        r->body = b;
        n = bk_client_read(c, r->body + r->len,
                           clen >= 0 ? want - r->len : 65536);
        if (n < 0)
            return (int)n;
        if (n == 0) {
            if (clen >= 0)
                return -ECONNRESET;
            bk_client_disconnect(c);
            break;
        }
        r->len += (size_t)n;
    }
    r->body[r->len] = '\0';
    return 0;
}

static int bk_client_once(struct bk_client *c, const char *req, size_t rlen,
                          const char *body, size_t len,
                          struct bk_response *resp)
{
    long clen;
    int r;

    if (len && len <= 65536) { /* head and body in one record */
        char *all = malloc(rlen + len);

        if (!all)
            return -ENOMEM;
        memcpy(all, req, rlen);
        memcpy(all + rlen, body, len);
        r = bk_client_write(c, all, rlen + len);
        free(all);
        if (r && r != -EPIPE)
            return r;
    } else {
        r = bk_client_write(c, req, rlen);
        if (r)
            return r;
        /* A server may refuse a big body before reading it all (413) and
         * close: its answer is still there to read. */
        if (len)
            bk_client_write(c, body, len); /* a failure shows in the reply */
    }
    clen = bk_client_head(c, resp);
    if (clen < -1)
        return (int)clen;
    return bk_client_body(c, resp, clen);
}

int bk_client_request(struct bk_client *c, const char *method, const char *path,
                      const char *headers, const char *body, size_t len,
                      struct bk_response *resp, char *err, size_t err_size)
{
    char *req = NULL;
    size_t rlen = 0;
    FILE *f = open_memstream(&req, &rlen);
    int attempt, r = -EIO;

    memset(resp, 0, sizeof(*resp));
    if (!f)
        return -ENOMEM;
    fprintf(f,
            "%s %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: deskpool\r\n"
            "Accept: application/json\r\n%s",
            method, path, c->host, c->port, headers ? headers : "");
    if (body || strcmp(method, "GET") != 0)
        fprintf(f, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                len);
    fputs("\r\n", f);
    fclose(f);
    /* A kept-alive connection the server closed fails on first use: one
     * retry on a fresh connection. */
    for (attempt = 0; attempt < 2; attempt++) {
        int fresh = c->fd < 0;

        if (fresh && (r = bk_client_connect(c, err, err_size)) != 0)
            break;
        r = bk_client_once(c, req, rlen, body, len, resp);
        if (!r)
            break;
        bk_response_free(resp);
        bk_client_disconnect(c);
        if (fresh) {
            snprintf(err, err_size, "%s %s: %s", method, path, strerror(-r));
            break;
        }
    }
    if (!r) {
        char v[16];

        if (bk_response_header(resp, "connection", v, sizeof(v)) == 0 &&
            !strcasecmp(v, "close"))
            bk_client_disconnect(c);
    }
    free(req);
    return r;
}

void bk_response_free(struct bk_response *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

int bk_response_header(const struct bk_response *r, const char *name, char *buf,
                       size_t size)
{
    size_t n = strlen(name);
    const char *p = r->headers;

    while (p && (p = strstr(p, "\r\n"))) {
        p += 2;
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            const char *v = p + n + 1, *e;

            while (*v == ' ')
                v++;
            e = strstr(v, "\r\n");
            if (!e)
                e = v + strlen(v);
            snprintf(buf, size, "%.*s", (int)(e - v), v);
            return 0;
        }
    }
    return -ENOENT;
}
