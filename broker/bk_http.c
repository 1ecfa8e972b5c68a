/*
 * bk_http.c - the broker's HTTPS server on libwebsockets (see bk_http.h).
 *
 * lws gives each connection a small per-session block holding the request
 * in flight (struct bk_req, heap-allocated so it can be found by id after
 * the callback returns). Replies are written from the WRITEABLE callback:
 * headers, then the body in chunks, the last one marked final; then the
 * transaction completes and the connection waits for the next request.
 */
#include "bk_http.h"

#include <errno.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_time.h"

#define BK_HTTP_PATH_MAX  1024
#define BK_HTTP_CHUNK     16384
#define BK_HTTP_PROTOCOL  "deskpool-http"
#define BK_HTTP_BODY_SECS 10 /* a body must arrive within this */

struct bk_req {
    struct bk_req *prev, *next; /* all requests in flight */
    struct bk_http *http;
    struct lws *wsi;
    uint64_t id;
    enum bk_method method;
    char path[BK_HTTP_PATH_MAX];
    char addr[64];
    char *body;
    size_t body_len, body_cap;
    int body_expected; /* a body follows the headers */
    int too_big;       /* answered 413 already */
    int dispatched;    /* handed to the handler (once only) */
    /* parking */
    int parked;
    uint64_t deadline_ms;
    void *data;
    void (*data_free)(void *);
    /* the reply */
    int answered, close_after;
    int status;
    char ctype[64];
    char *headers; /* "Name: value\r\n" lines */
    unsigned char *out;
    size_t out_len, out_off;
    int head_sent;
};

struct bk_conn { /* lws per-session data */
    struct bk_req *req;
};

struct bk_http {
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    struct bk_http_handlers h;
    void *arg;
    size_t max_body;
    volatile sig_atomic_t stop;
    uint64_t next_id;
    struct bk_req *reqs;
    int nreqs;
    lws_sorted_usec_list_t tick;
    struct lws_http_mount mounts[4];
    struct lws_protocol_vhost_options hsts;
    struct lws_protocols protocols[8];
    char web_root[256];
};

/* --- requests ------------------------------------------------------------ */

static struct bk_req *bk_req_new(struct bk_http *http, struct lws *wsi)
{
    struct bk_req *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->http = http;
    r->wsi = wsi;
    r->id = ++http->next_id;
    r->next = http->reqs;
    if (http->reqs)
        http->reqs->prev = r;
    http->reqs = r;
    http->nreqs++;
    return r;
}

static void bk_req_free(struct bk_req *r)
{
    struct bk_http *http = r->http;

    if (r->prev)
        r->prev->next = r->next;
    else
        http->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    http->nreqs--;
    if (r->data_free)
        r->data_free(r->data);
    free(r->body);
    free(r->headers);
    free(r->out);
    free(r);
}

uint64_t bk_req_id(const struct bk_req *req)
{
    return req->id;
}

struct bk_req *bk_http_find(struct bk_http *http, uint64_t id)
{
    struct bk_req *r;

    for (r = http->reqs; r; r = r->next)
        if (r->id == id)
            return r->answered ? NULL : r;
    return NULL;
}

int bk_http_requests(const struct bk_http *http)
{
    return http->nreqs;
}

enum bk_method bk_req_method(const struct bk_req *req)
{
    return req->method;
}

const char *bk_req_path(const struct bk_req *req)
{
    return req->path;
}

const char *bk_req_addr(const struct bk_req *req)
{
    return req->addr;
}

const char *bk_req_body(const struct bk_req *req, size_t *len)
{
    *len = req->body_len;
    return req->body ? req->body : "";
}

int bk_req_header(struct bk_req *req, const char *name, char *buf, size_t size)
{
    static const struct {
        const char *name;
        enum lws_token_indexes tok;
    } known[] = {
        {"cookie", WSI_TOKEN_HTTP_COOKIE},
        {"authorization", WSI_TOKEN_HTTP_AUTHORIZATION},
        {"content-type", WSI_TOKEN_HTTP_CONTENT_TYPE},
        {"origin", WSI_TOKEN_ORIGIN},
        {"host", WSI_TOKEN_HOST},
    };
    char custom[64];
    size_t i;
    int n;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(known[i].name, name) != 0)
            continue;
        n = lws_hdr_total_length(req->wsi, known[i].tok);
        if (n <= 0)
            return -ENOENT;
        if ((size_t)n >= size)
            return -ENOSPC;
        return lws_hdr_copy(req->wsi, buf, (int)size, known[i].tok) < 0
                   ? -ENOSPC
                   : 0;
    }
    n = snprintf(custom, sizeof(custom), "%s:", name);
    if (n <= 0 || (size_t)n >= sizeof(custom))
        return -ENOENT;
    n = lws_hdr_custom_length(req->wsi, custom, n);
    if (n < 0)
        return -ENOENT;
    if ((size_t)n >= size)
        return -ENOSPC;
    return lws_hdr_custom_copy(req->wsi, buf, (int)size, custom,
                               (int)strlen(custom)) < 0
               ? -ENOSPC
               : 0;
}

int bk_req_query(struct bk_req *req, const char *name, char *buf, size_t size)
{
    char key[64], tmp[1024];
    const char *v;

    if (snprintf(key, sizeof(key), "%s=", name) >= (int)sizeof(key))
        return -ENOENT;
    v = lws_get_urlarg_by_name(req->wsi, key, tmp, (int)sizeof(tmp));
    if (!v)
        return -ENOENT;
    if (strlen(v) >= size)
        return -ENOSPC;
    snprintf(buf, size, "%s", v);
    return 0;
}

void bk_http_foreach_parked(struct bk_http *http,
                            void (*fn)(void *arg, struct bk_req *req),
                            void *arg)
{
    struct bk_req *r, *next;

    /* Requests are freed only from lws callbacks, never by fn. */
    for (r = http->reqs; r; r = next) {
        next = r->next;
        if (r->parked && !r->answered)
            fn(arg, r);
    }
}

void bk_req_park(struct bk_req *req, int timeout_ms)
{
    req->parked = 1;
    req->deadline_ms = dp_time_now_ms() + (uint64_t)timeout_ms;
    lws_set_timeout(req->wsi, NO_PENDING_TIMEOUT, 0);
}

int bk_req_parked(const struct bk_req *req)
{
    return req->parked;
}

void bk_req_set_data(struct bk_req *req, void *data, void (*free_fn)(void *))
{
    if (req->data_free)
        req->data_free(req->data);
    req->data = data;
    req->data_free = free_fn;
}

void *bk_req_data(const struct bk_req *req)
{
    return req->data;
}

void bk_req_reply(struct bk_req *req, int status, const char *ctype,
                  const void *body, size_t len, const char *headers)
{
    if (req->answered)
        return;
    req->answered = 1;
    req->parked = 0;
    req->status = status;
    snprintf(req->ctype, sizeof(req->ctype), "%s", ctype);
    req->headers = headers ? strdup(headers) : NULL;
    /* LWS_PRE bytes in front: lws writes its framing there. */
    req->out = malloc(LWS_PRE + len + 1);
    if (!req->out) {
        req->close_after = 1;
        len = 0;
        req->out = malloc(LWS_PRE + 1);
    }
    if (req->out && len)
        memcpy(req->out + LWS_PRE, body, len);
    req->out_len = req->out ? len : 0;
    lws_callback_on_writable(req->wsi);
}

void bk_req_reply_json(struct bk_req *req, int status, json_t *body,
                       const char *headers)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    if (!text) {
        bk_req_reply(req, 500, "application/json",
                     "{\"error\":\"internal\",\"message\":\"out of memory\"}",
                     46, NULL);
        return;
    }
    bk_req_reply(req, status, "application/json", text, strlen(text), headers);
    free(text);
}

void bk_req_error(struct bk_req *req, int status, const char *code,
                  const char *message)
{
    bk_req_reply_json(req, status,
                      json_pack("{ss ss}", "error", code, "message", message),
                      NULL);
}

/* --- writing ---------------------------------------------------------------
 */

static int bk_http_write_head(struct bk_req *r)
{
    unsigned char buf[LWS_PRE + 4096], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof(buf) - 1;
    const char *line = r->headers;

    if (lws_add_http_common_headers(r->wsi, (unsigned)r->status, r->ctype,
                                    r->out_len, &p, end) ||
        lws_add_http_header_by_name(
            r->wsi, (const unsigned char *)"cache-control:",
            (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (r->close_after && lws_add_http_header_by_token(
                              r->wsi, WSI_TOKEN_CONNECTION,
                              (const unsigned char *)"close", 5, &p, end))
        return -1;
    while (line && *line) { /* "Name: value\r\n" lines */
        const char *colon = strchr(line, ':'), *eol = strstr(line, "\r\n");
        char name[64];
        size_t nlen;

        if (!colon || !eol || colon > eol)
            break;
        nlen = (size_t)(colon - line) + 1;
        if (nlen >= sizeof(name))
            return -1;
        memcpy(name, line, nlen);
        name[nlen] = '\0';
        colon++;
        while (*colon == ' ')
            colon++;
        if (lws_add_http_header_by_name(r->wsi, (const unsigned char *)name,
                                        (const unsigned char *)colon,
                                        (int)(eol - colon), &p, end))
            return -1;
        line = eol + 2;
    }
    if (lws_finalize_write_http_header(r->wsi, start, &p, end))
        return -1;
    r->head_sent = 1;
    return 0;
}

/* Writes the next piece of the reply; returns -1 to close, 1 when the
 * reply is complete, 0 when more follows. */
static int bk_http_write(struct bk_req *r)
{
    size_t n;
    int final;

    if (!r->head_sent) {
        if (bk_http_write_head(r))
            return -1;
        if (r->out_len) { /* the body on the next writable */
            lws_callback_on_writable(r->wsi);
            return 0;
        }
        return 1;
    }
    n = r->out_len - r->out_off;
    if (n > BK_HTTP_CHUNK)
        n = BK_HTTP_CHUNK;
    final = r->out_off + n == r->out_len;
    /* lws_write frames in place: the bytes before the chunk are scratch
     * (they were already sent, or are the LWS_PRE headroom). */
    if (lws_write(r->wsi, r->out + LWS_PRE + r->out_off, n,
                  final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
        return -1;
    r->out_off += n;
    if (!final) {
        lws_callback_on_writable(r->wsi);
        return 0;
    }
    return 1;
}

/* --- the lws callback ---------------------------------------------------- */

static enum bk_method bk_http_method(int m)
{
    switch (m) {
    case LWSHUMETH_GET: return BK_GET;
    case LWSHUMETH_POST: return BK_POST;
    case LWSHUMETH_PUT: return BK_PUT;
    case LWSHUMETH_PATCH: return BK_PATCH;
    case LWSHUMETH_DELETE: return BK_DELETE;
    default: return BK_OTHER;
    }
}

static void bk_http_dispatch(struct bk_req *r)
{
    if (r->dispatched)
        return;
    r->dispatched = 1;
    if (!r->body) { /* handlers always get a string */
        r->body = calloc(1, 1);
        if (!r->body) {
            bk_req_error(r, 500, "internal", "out of memory");
            return;
        }
    }
    r->http->h.request(r->http->arg, r);
}

/* A new request's headers are in. Returns what the lws callback returns. */
static int bk_http_begin(struct bk_http *http, struct lws *wsi,
                         struct bk_conn *pss)
{
    struct bk_req *r;
    char *uri, clen[32];
    int ulen, m;

    if (pss->req) /* a previous one never completed: drop it */
        bk_req_free(pss->req);
    r = pss->req = bk_req_new(http, wsi);
    if (!r)
        return -1;
    m = lws_http_get_uri_and_method(wsi, &uri, &ulen);
    r->method = bk_http_method(m);
    lws_get_peer_simple(wsi, r->addr, sizeof(r->addr));
    if (m < 0 || ulen <= 0 || (size_t)ulen >= sizeof(r->path)) {
        r->close_after = 1;
        bk_req_error(r, 414, "bad_request", "request line too long or bad");
        return 0;
    }
    memcpy(r->path, uri, (size_t)ulen);
    r->path[ulen] = '\0';
    if (r->method == BK_POST || r->method == BK_PUT || r->method == BK_PATCH) {
        long n = 0;

        if (lws_hdr_copy(wsi, clen, sizeof(clen),
                         WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
            n = strtol(clen, NULL, 10);
        if (n < 0 || (size_t)n > http->max_body) {
            r->too_big = r->close_after = 1;
            bk_req_error(r, 413, "too_large", "request body too large");
            return 0;
        }
        if (n > 0 ||
            lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING)) {
            r->body_expected = 1;
            lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
                            BK_HTTP_BODY_SECS);
            return 0; /* the body follows */
        }
    }
    bk_http_dispatch(r);
    return 0;
}

static int bk_http_body(struct bk_http *http, struct bk_req *r, const void *in,
                        size_t len)
{
    if (!r || r->too_big || r->answered || r->dispatched || !in || !len)
        return 0; /* lws may call with nothing for an empty body */
    if (r->body_len + len > http->max_body) {
        r->too_big = r->close_after = 1;
        bk_req_error(r, 413, "too_large", "request body too large");
        return 0;
    }
    if (r->body_len + len + 1 > r->body_cap) {
        size_t cap = (r->body_len + len + 1) * 2;
        char *b;

        if (cap > http->max_body + 1)
            cap = http->max_body + 1;
        b = realloc(r->body, cap);
        if (!b)
            return -1;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, in, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int bk_http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                            void *user, void *in, size_t len)
{
    struct bk_http *http = lws_context_user(lws_get_context(wsi));
    struct bk_conn *pss = user;
    int r;

    switch (reason) {
    case LWS_CALLBACK_HTTP: return bk_http_begin(http, wsi, pss);
    case LWS_CALLBACK_HTTP_BODY:
        return bk_http_body(http, pss ? pss->req : NULL, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
        if (pss && pss->req && !pss->req->answered && !pss->req->too_big)
            bk_http_dispatch(pss->req);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!pss || !pss->req || !pss->req->answered)
            return 0;
        r = bk_http_write(pss->req);
        if (r == 0)
            return 0;
        if (r < 0 || pss->req->close_after) {
            bk_req_free(pss->req);
            pss->req = NULL;
            return -1;
        }
        bk_req_free(pss->req);
        pss->req = NULL;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (pss && pss->req) {
            bk_req_free(pss->req);
            pss->req = NULL;
        }
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* a websocket that named no protocol (or one we do not serve)
         * lands here: only the configured ones are served */
        return -1;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (http && http->h.wake)
            http->h.wake(http->arg);
        return 0;
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* --- the server ---------------------------------------------------------- */

static void bk_http_tick(lws_sorted_usec_list_t *sul)
{
    struct bk_http *http = lws_container_of(sul, struct bk_http, tick);
    uint64_t now = dp_time_now_ms();
    struct bk_req *r, *next;

    for (r = http->reqs; r; r = next) {
        next = r->next; /* the handler may answer (not free) r */
        if (r->parked && !r->answered && now >= r->deadline_ms) {
            r->parked = 0;
            http->h.timeout(http->arg, r);
            if (!r->answered)
                bk_req_error(r, 504, "timeout", "no answer in time");
        }
    }
    if (http->h.tick)
        http->h.tick(http->arg);
    lws_sul_schedule(http->ctx, 0, &http->tick, bk_http_tick, LWS_US_PER_SEC);
}

int bk_http_new(struct bk_http **out, const struct bk_http_config *cfg,
                const struct bk_http_handlers *h, void *arg, char *err,
                size_t err_size)
{
    struct lws_context_creation_info info;
    struct bk_http *http = calloc(1, sizeof(*http));

    if (!http)
        return -ENOMEM;
    http->h = *h;
    http->arg = arg;
    http->max_body = cfg->max_body;
    snprintf(http->web_root, sizeof(http->web_root), "%s", cfg->web_root);

    http->protocols[0] = (struct lws_protocols){
        .name = BK_HTTP_PROTOCOL,
        .callback = bk_http_callback,
        .per_session_data_size = sizeof(struct bk_conn),
    };
    /* Longest mountpoint wins: /api and /metrics reach the callback,
     * everything else is a file under web_root. */
    http->mounts[0] = (struct lws_http_mount){
        .mount_next = &http->mounts[1],
        .mountpoint = "/api",
        .mountpoint_len = 4,
        .origin = BK_HTTP_PROTOCOL,
        .origin_protocol = LWSMPRO_CALLBACK,
    };
    http->mounts[1] = (struct lws_http_mount){
        .mount_next = &http->mounts[2],
        .mountpoint = "/metrics",
        .mountpoint_len = 8,
        .origin = BK_HTTP_PROTOCOL,
        .origin_protocol = LWSMPRO_CALLBACK,
    };
    http->mounts[2] = (struct lws_http_mount){
        .mountpoint = "/",
        .mountpoint_len = 1,
        .origin = http->web_root,
        .def = "index.html",
        .origin_protocol = LWSMPRO_FILE,
    };
    if (cfg->ws_nprotocols > 0 &&
        cfg->ws_nprotocols <
            (int)(sizeof(http->protocols) / sizeof(http->protocols[0])) - 1) {
        memcpy(&http->protocols[1], cfg->ws_protocols,
               (size_t)cfg->ws_nprotocols * sizeof(*cfg->ws_protocols));
        /* upgrades on ws_path without a subprotocol go to ws_protocol */
        http->mounts[1].mount_next = &http->mounts[3];
        http->mounts[3] = (struct lws_http_mount){
            .mount_next = &http->mounts[2],
            .mountpoint = cfg->ws_path,
            .mountpoint_len = (unsigned char)strlen(cfg->ws_path),
            .origin = cfg->ws_protocol,
            .protocol = cfg->ws_protocol,
            .origin_protocol = LWSMPRO_CALLBACK,
        };
    }

    memset(&info, 0, sizeof(info));
    info.port = cfg->port;
    info.iface = cfg->listen;
    info.protocols = http->protocols;
    info.mounts = &http->mounts[0];
    info.user = http;
    info.options =
        LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE |
        LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (cfg->cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->cert;
        info.ssl_private_key_filepath = cfg->key;
        info.alpn = "http/1.1";
        /* Browsers that came once over HTTPS never try plain HTTP again. */
        http->hsts = (struct lws_protocol_vhost_options){
            .name = "strict-transport-security:",
            .value = "max-age=31536000",
        };
        info.headers = &http->hsts;
    }
    info.timeout_secs = 10;
    info.keepalive_timeout = cfg->keepalive_s > 0 ? cfg->keepalive_s : 60;
    info.max_http_header_data = 4096;
    info.max_http_header_pool = 1024; /* headers of requests in flight */
    info.pt_serv_buf_size = 16384;

    http->ctx = lws_create_context(&info);
    if (!http->ctx) {
        snprintf(err, err_size,
                 "cannot listen on %s port %d (in use, or TLS files "
                 "unreadable)",
                 cfg->listen, cfg->port);
        free(http);
        return -EADDRINUSE;
    }
    http->vhost = lws_get_vhost_by_name(http->ctx, "default");
    lws_sul_schedule(http->ctx, 0, &http->tick, bk_http_tick, LWS_US_PER_SEC);
    *out = http;
    return 0;
}

int bk_http_port(const struct bk_http *http)
{
    return http->vhost ? lws_get_vhost_listen_port(http->vhost) : -1;
}

int bk_http_run(struct bk_http *http)
{
    while (!http->stop)
        if (lws_service(http->ctx, 0) < 0)
            break;
    return 0;
}

void bk_http_stop(struct bk_http *http)
{
    http->stop = 1;
    lws_cancel_service(http->ctx);
}

void bk_http_wake(struct bk_http *http)
{
    lws_cancel_service(http->ctx);
}

void bk_http_free(struct bk_http *http)
{
    if (!http)
        return;
    lws_context_destroy(http->ctx); /* closes connections: frees requests */
    while (http->reqs)
        bk_req_free(http->reqs);
    free(http);
}
