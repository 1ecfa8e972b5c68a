/*
 * tsws.c - websocket test client (see tsws.h).
 */
#include "tsws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tsguest.h"

struct tsws {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    unsigned char *raw; /* bytes read, not yet parsed into frames */
    size_t raw_len, raw_cap;
    unsigned char *data; /* payload bytes not yet given to the caller */
    size_t data_len, data_cap;
    int closed;
};

static int tsws_more(struct tsws *w, int timeout_ms)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    int n;

    if (w->raw_cap - w->raw_len < 65536) {
        unsigned char *b = realloc(w->raw, w->raw_cap + 131072);

        if (!b)
            return -ENOMEM;
        w->raw = b;
        w->raw_cap += 131072;
    }
    if (SSL_pending(w->ssl) == 0 && poll(&p, 1, timeout_ms) <= 0)
        return -ETIMEDOUT;
    n = SSL_read(w->ssl, w->raw + w->raw_len, 65536);
    if (n <= 0) {
        int e = SSL_get_error(w->ssl, n);

        if (e == SSL_ERROR_WANT_READ)
            return 0; /* a TLS record without data (a session ticket) */
        w->closed = 1;
        return -ECONNRESET;
    }
    w->raw_len += (size_t)n;
    return 0;
}

/* Moves complete frames' payloads from raw to data. */
static void tsws_parse(struct tsws *w)
{
    for (;;) {
        size_t need = 2, len, hdr;
        unsigned op;

        if (w->raw_len < 2)
            return;
        op = w->raw[0] & 0x0f;
        len = w->raw[1] & 0x7f;
        if (len == 126)
            need = 4;
        else if (len == 127)
            need = 10;
        if (w->raw_len < need)
            return;
        if (len == 126)
            len = (size_t)w->raw[2] << 8 | w->raw[3];
        else if (len == 127) {
            size_t i;

            for (len = 0, i = 2; i < 10; i++)
                len = len << 8 | w->raw[i];
        }
        hdr = need; /* server frames are not masked */
        if (w->raw_len < hdr + len)
            return;
        if (op == 0x8)
            w->closed = 1;
        else if (op == 0x0 || op == 0x1 || op == 0x2) {
            if (w->data_len + len > w->data_cap) {
                size_t cap = (w->data_len + len) * 2 + 1024;
                unsigned char *b = realloc(w->data, cap);

                if (!b)
                    return;
                w->data = b;
                w->data_cap = cap;
            }
            memcpy(w->data + w->data_len, w->raw + hdr, len);
            w->data_len += len;
        }
        memmove(w->raw, w->raw + hdr + len, w->raw_len - hdr - len);
        w->raw_len -= hdr + len;
    }
}

static int tsws_handshake(struct tsws *w, const char *path, const char *headers,
                          const char *subprotocol)
{
    unsigned char key[16];
    char b64[32], req[4096], *end;
    int n, status = 0;

    RAND_bytes(key, sizeof(key));
    EVP_EncodeBlock((unsigned char *)b64, key, sizeof(key));
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s%s%s%s\r\n",
                 path, b64, subprotocol ? "Sec-WebSocket-Protocol: " : "",
                 subprotocol ? subprotocol : "", subprotocol ? "\r\n" : "",
                 headers ? headers : "");
    if (SSL_write(w->ssl, req, n) != n)
        return -EPIPE;
    while (!w->raw || !(end = memmem(w->raw, w->raw_len, "\r\n\r\n", 4)))
        if (tsws_more(w, 10000))
            return -ECONNRESET;
    sscanf((char *)w->raw, "HTTP/1.1 %d", &status);
    end += 4;
    w->raw_len -= (size_t)(end - (char *)w->raw);
    memmove(w->raw, end, w->raw_len);
    return status;
}

int tsws_open(struct tsws **out, int port, const char *path,
              const char *headers, const char *subprotocol)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    struct tsws *w = calloc(1, sizeof(*w));
    int status;

    *out = NULL;
    if (!w)
        return -ENOMEM;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    w->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (w->fd < 0 || connect(w->fd, (struct sockaddr *)&sa, sizeof(sa))) {
        tsws_close(w);
        return -ECONNREFUSED;
    }
    w->ctx = SSL_CTX_new(TLS_client_method());
    w->ssl = SSL_new(w->ctx);
    SSL_set_fd(w->ssl, w->fd);
    if (SSL_connect(w->ssl) != 1) {
        tsws_close(w);
        return -EPROTO;
    }
    status = tsws_handshake(w, path, headers, subprotocol);
    if (status != 101) {
        tsws_close(w);
        return status;
    }
    *out = w;
    return 101;
}

int tsws_send(struct tsws *w, const void *data, size_t len)
{
    unsigned char hdr[14], mask[4], *frame;
    size_t h = 0, i;
    int ok;

    RAND_bytes(mask, sizeof(mask));
    hdr[h++] = 0x82; /* FIN, binary */
    if (len < 126) {
        hdr[h++] = 0x80 | (unsigned char)len;
    } else if (len < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(len >> 8);
        hdr[h++] = (unsigned char)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (i = 0; i < 8; i++)
            hdr[h++] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    memcpy(hdr + h, mask, 4);
    h += 4;
    frame = malloc(h + len);
    if (!frame)
        return -ENOMEM;
    memcpy(frame, hdr, h);
    for (i = 0; i < len; i++)
        frame[h + i] = ((const unsigned char *)data)[i] ^ mask[i % 4];
    ok = SSL_write(w->ssl, frame, (int)(h + len)) == (int)(h + len);
    free(frame);
    return ok ? 0 : -EPIPE;
}

int tsws_read(struct tsws *w, void *buf, size_t len, int timeout_ms)
{
    long long deadline = tsguest_now_ms() + timeout_ms;

    for (;;) {
        long long left;

        tsws_parse(w);
        if (w->data_len >= len) {
            memcpy(buf, w->data, len);
            memmove(w->data, w->data + len, w->data_len - len);
            w->data_len -= len;
            return 0;
        }
        if (w->closed)
            return -ECONNRESET;
        left = deadline - tsguest_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        if (tsws_more(w, (int)left) == -ECONNRESET) {
            tsws_parse(w);
            if (w->data_len < len)
                return -ECONNRESET;
        }
    }
}

int tsws_wait_closed(struct tsws *w, int timeout_ms)
{
    long long deadline = tsguest_now_ms() + timeout_ms;

    while (!w->closed && tsguest_now_ms() < deadline) {
        tsws_more(w, 200);
        tsws_parse(w);
        w->data_len = 0;
    }
    return w->closed;
}

void tsws_close(struct tsws *w)
{
    if (!w)
        return;
    if (w->ssl)
        SSL_free(w->ssl);
    SSL_CTX_free(w->ctx);
    if (w->fd >= 0)
        close(w->fd);
    free(w->raw);
    free(w->data);
    free(w);
}
