/*
 * bk_client.h - a small blocking HTTPS (or loopback HTTP) client for the
 * broker's REST API: what deskpoolctl, the tests and the benchmarks speak.
 *
 * One struct bk_client is one keep-alive connection to one base URL
 * ("https://host:port"); a request reconnects when the server closed it.
 * TLS certificates are verified against the system's CAs, or a given CA
 * file (the broker's self-signed certificate), with the host name checked;
 * `insecure` skips verification (only for tests and first contact).
 *
 * Replies must carry Content-Length or end the connection (the broker's
 * do); bodies are bounded by BK_CLIENT_MAX_BODY.
 */
#ifndef BK_CLIENT_H
#define BK_CLIENT_H

#include <stddef.h>

#define BK_CLIENT_MAX_BODY (64u << 20)

struct bk_client;

struct bk_response {
    int status;
    char *headers; /* the header lines, "\r\n"-separated */
    char *body;    /* NUL-terminated */
    size_t len;
};

int bk_client_open(struct bk_client **out, const char *base_url,
                   const char *ca_file, int insecure, int timeout_ms, char *err,
                   size_t err_size);
void bk_client_close(struct bk_client *c);

/*
 * Sends method path (with query) with extra header lines ("Name: value\r\n",
 * may be NULL) and a body (may be NULL) and reads the reply into *resp.
 * Returns 0 (any HTTP status), or a negative errno with the reason in err
 * (connection refused, TLS verification failed, timeout, bad reply).
 */
int bk_client_request(struct bk_client *c, const char *method, const char *path,
                      const char *headers, const char *body, size_t len,
                      struct bk_response *resp, char *err, size_t err_size);
void bk_response_free(struct bk_response *r);

/* A header's value (case-insensitive name): 0, or -ENOENT. */
int bk_response_header(const struct bk_response *r, const char *name, char *buf,
                       size_t size);

#endif
