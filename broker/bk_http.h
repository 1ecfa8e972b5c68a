/*
 * bk_http.h - the broker's HTTPS server: libwebsockets over OpenSSL on one
 * port, REST requests handed to a handler, the static files of web/
 * served from a folder.
 *
 * Requests under /api/ and /metrics reach the handler once their body (if
 * any) is complete and within max_body bytes (bigger ones get 413 before
 * the handler sees them). The handler answers at once with bk_req_reply*()
 * or parks the request (bk_req_park) and answers later, looking it up by
 * id: the client may be gone by then (bk_http_find returns NULL). A parked
 * request past its deadline goes to the handler's timeout callback.
 *
 * Everything runs on the thread that calls bk_http_run(); other threads
 * only call bk_http_wake(), which makes the loop call the wake callback
 * soon (e.g. to collect PAM results).
 *
 * Every reply carries lws's security headers (CSP, nosniff, frame
 * denial, no referrer; HSTS over TLS) and "Cache-Control: no-store" for
 * API replies.
 */
#ifndef BK_HTTP_H
#define BK_HTTP_H

#include <jansson.h>
#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

struct bk_http;
struct bk_req;

enum bk_method {
    BK_GET,
    BK_POST,
    BK_PUT,
    BK_PATCH,
    BK_DELETE,
    BK_OTHER,
};

struct bk_http_handlers {
    /* A complete request. */
    void (*request)(void *arg, struct bk_req *req);
    /* A parked request's deadline passed (it is still open). */
    void (*timeout)(void *arg, struct bk_req *req);
    /* bk_http_wake() was called (from any thread). */
    void (*wake)(void *arg);
    /* About once a second. */
    void (*tick)(void *arg);
};

struct bk_http_config {
    const char *listen;     /* numeric address */
    int port;               /* 0: any free port (see bk_http_port) */
    const char *cert, *key; /* PEM files; both NULL: plain HTTP */
    const char *web_root;   /* static files */
    size_t max_body;
    int keepalive_s; /* idle keep-alive connections close after this */
    /* Websocket protocols served on ws_path (e.g. the gateway's, from
     * bk_gateway_protocols); ws_protocol is the one for clients that ask
     * for none. NULL / 0: no websockets. */
    const struct lws_protocols *ws_protocols;
    int ws_nprotocols;
    const char *ws_path, *ws_protocol;
};

int bk_http_new(struct bk_http **out, const struct bk_http_config *cfg,
                const struct bk_http_handlers *h, void *arg, char *err,
                size_t err_size);
void bk_http_free(struct bk_http *http);

/* The port listened on (the chosen one when configured 0). */
int bk_http_port(const struct bk_http *http);

/* Serves until bk_http_stop(). Returns 0. */
int bk_http_run(struct bk_http *http);
/* Thread- and signal-safe: ask the loop to return. */
void bk_http_stop(struct bk_http *http);
/* Thread-safe: have the loop call the wake handler. */
void bk_http_wake(struct bk_http *http);

/* Requests in flight (parked or being answered). */
int bk_http_requests(const struct bk_http *http);

/* --- a request ----------------------------------------------------------- */

uint64_t bk_req_id(const struct bk_req *req);
struct bk_req *bk_http_find(struct bk_http *http, uint64_t id);

enum bk_method bk_req_method(const struct bk_req *req);
const char *bk_req_path(const struct bk_req *req); /* "/api/v1/login" */
const char *bk_req_addr(const struct bk_req *req); /* client address */
/* The body (NUL-terminated; may contain NULs: check len). */
const char *bk_req_body(const struct bk_req *req, size_t *len);
/* A header's value ("cookie", "authorization", "x-csrf-token", ...):
 * 0, or -ENOENT, or -ENOSPC when it does not fit. */
int bk_req_header(struct bk_req *req, const char *name, char *buf, size_t size);
/* A query argument, URL-decoded: 0, -ENOENT, -ENOSPC. */
int bk_req_query(struct bk_req *req, const char *name, char *buf, size_t size);

/* Calls fn for each parked request (fn may answer it). */
void bk_http_foreach_parked(struct bk_http *http,
                            void (*fn)(void *arg, struct bk_req *req),
                            void *arg);

/* Parks the request for up to timeout_ms. */
void bk_req_park(struct bk_req *req, int timeout_ms);
int bk_req_parked(const struct bk_req *req);
/* The caller's tag on the request (e.g. what it waits for). */
void bk_req_set_data(struct bk_req *req, void *data, void (*free_fn)(void *));
void *bk_req_data(const struct bk_req *req);

/*
 * Answers: status, content type, body (copied), extra header lines
 * ("Set-Cookie: ...\r\n"; may be NULL). The connection is kept alive.
 * A request is answered once; later calls are ignored.
 */
void bk_req_reply(struct bk_req *req, int status, const char *ctype,
                  const void *body, size_t len, const char *headers);
/* JSON body (consumed). */
void bk_req_reply_json(struct bk_req *req, int status, json_t *body,
                       const char *headers);
/* {"error": code, "message": message} */
void bk_req_error(struct bk_req *req, int status, const char *code,
                  const char *message);

#endif
