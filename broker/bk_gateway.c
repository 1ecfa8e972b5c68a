/*
 * bk_gateway.c - the websocket gateway to deskpool-display (see
 * bk_gateway.h).
 */
#include "bk_gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bk_api.h"
#include "dp_token.h"
#include "dp_unix.h"

#define BK_GATEWAY_RAW "deskpool-gateway-display"

/* One gateway: the browser's websocket and the display's socket. */
struct bk_gw_conn {
    struct bk_gateway *g;
    struct lws *ws, *raw;
    char ticket[DP_TOKEN_LEN + 1];
    char peer[64];
    int allowed;     /* the upgrade passed the checks */
    int closing;     /* the display side went: close once drained */
    size_t down_len; /* display -> browser, in down[LWS_PRE...] */
    unsigned char down[LWS_PRE + BK_GATEWAY_CHUNK];
    unsigned char *up; /* browser -> display */
    size_t up_len, up_off, up_cap;
};

static struct bk_gateway *bk_gw_of(struct lws *wsi)
{
    const struct lws_protocols *p = lws_get_protocol(wsi);

    return p ? p->user : NULL;
}

/* The session's user (and whether an admin) from the cookie, 0 or -1. */
static int bk_gw_user(struct bk_gateway *g, struct lws *wsi, char *user,
                      size_t size, int *admin)
{
    char cookie[4096], token[DP_TOKEN_LEN + 1], hash[DP_TOKEN_HEX_LEN + 1];
    struct bk_session s;

    if (lws_hdr_copy(wsi, cookie, sizeof(cookie), WSI_TOKEN_HTTP_COOKIE) <= 0 ||
        bk_api_session_cookie(cookie, token) ||
        dp_token_hash_hex(token, hash) ||
        bk_store_session_get(g->store, hash, g->cfg->session_idle,
                             g->cfg->session_max, &s) != 0)
        return -1;
    snprintf(user, size, "%s", s.user);
    *admin = s.admin;
    json_decref(s.groups);
    return 0;
}

/* The upgrade's checks: a session, and a live browser ticket of its
 * user, or a helpdesk view ticket of its user who is still an admin.
 * Returns 0 (allowed; ticket copied into c) or -1. */
static int bk_gw_check(struct bk_gateway *g, struct lws *wsi,
                       struct bk_gw_conn *c)
{
    char user[BK_USER_MAX + 1], owner[BK_USER_MAX + 1], proto[16], buf[128],
        hash[DP_TOKEN_HEX_LEN + 1];
    const char *t = lws_get_urlarg_by_name(wsi, "ticket=", buf, sizeof(buf));
    int admin = 0;

    if (!t || !dp_token_shape_ok(t) ||
        bk_gw_user(g, wsi, user, sizeof(user), &admin) ||
        dp_token_hash_hex(t, hash) ||
        bk_store_ticket_peek(g->store, hash, owner, sizeof(owner), proto,
                             sizeof(proto)) ||
        strcmp(owner, user) != 0 ||
        (strcmp(proto, "browser") != 0 &&
         (strcmp(proto, "view") != 0 || !admin))) {
        g->refused++;
        return -1;
    }
    snprintf(c->ticket, sizeof(c->ticket), "%s", t);
    lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
    c->allowed = 1;
    return 0;
}

/* Connects to the display's gateway, sends the preamble, and adopts the
 * socket into the loop as a child of the websocket. */
static int bk_gw_open(struct bk_gateway *g, struct lws *wsi,
                      struct bk_gw_conn *c)
{
    char pre[160];
    lws_sock_file_fd_type fd;
    int s = dp_unix_connect(g->cfg->display_gateway), n;

    if (s < 0)
        return -1;
    n = snprintf(pre, sizeof(pre), "TICKET %s %s\n", c->ticket,
                 c->peer[0] ? c->peer : "-");
    /* a local socket: a short write does not block */
    if (write(s, pre, (size_t)n) != n ||
        fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) != 0) {
        close(s);
        return -1;
    }
    fd.filefd = s;
    c->raw = lws_adopt_descriptor_vhost(
        lws_get_vhost(wsi), LWS_ADOPT_RAW_FILE_DESC, fd, BK_GATEWAY_RAW, wsi);
    if (!c->raw)
        return -1; /* lws closed the descriptor */
    lws_set_wsi_user(c->raw, c);
    c->ws = wsi;
    c->g = g;
    g->opened++;
    g->active++;
    return 0;
}

/* Browser -> display: keep what the display did not take yet. */
static int bk_gw_up(struct bk_gw_conn *c, const void *in, size_t len)
{
    if (c->up_len - c->up_off + len > 4 * BK_GATEWAY_UP_MAX)
        return -1; /* the browser ignores flow control: drop it */
    if (c->up_off && c->up_off == c->up_len)
        c->up_off = c->up_len = 0;
    if (c->up_len + len > c->up_cap) {
        size_t cap = (c->up_len + len) * 2;
        unsigned char *b = realloc(c->up, cap);

        if (!b)
            return -1;
        c->up = b;
        c->up_cap = cap;
    }
    memcpy(c->up + c->up_len, in, len);
    c->up_len += len;
    if (c->raw)
        lws_callback_on_writable(c->raw);
    if (c->up_len - c->up_off > BK_GATEWAY_UP_MAX)
        lws_rx_flow_control(c->ws, 0);
    return 0;
}

static int bk_gw_ws(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len)
{
    struct bk_gateway *g = bk_gw_of(wsi);
    struct bk_gw_conn *c = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP: /* /ws without an upgrade */
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST,
                               "websocket upgrade expected");
        return -1;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return !c || bk_gw_check(g, wsi, c) ? -1 : 0;
    case LWS_CALLBACK_ESTABLISHED:
        if (!c || !c->allowed || bk_gw_open(g, wsi, c))
            return -1;
        return 0;
    case LWS_CALLBACK_RECEIVE: return bk_gw_up(c, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c->down_len) {
            if (lws_write(wsi, c->down + LWS_PRE, c->down_len,
                          LWS_WRITE_BINARY) < (int)c->down_len)
                return -1;
            c->down_len = 0;
            if (c->raw)
                lws_rx_flow_control(c->raw, 1); /* read the next chunk */
        }
        if (c->closing) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL,
                             (unsigned char *)"desktop session ended", 21);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (c && c->raw) { /* the browser went: close the display side */
            lws_set_wsi_user(c->raw, NULL);
            lws_set_timeout(c->raw, PENDING_TIMEOUT_KILLED_BY_PARENT,
                            LWS_TO_KILL_ASYNC);
            c->raw = NULL;
        }
        if (c && c->g)
            c->g->active--;
        if (c) {
            free(c->up);
            c->up = NULL;
        }
        return 0;
    default: return 0;
    }
}

static int bk_gw_raw(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len)
{
    struct bk_gw_conn *c = user;
    ssize_t n;

    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!c)
            return -1;
        if (c->down_len) { /* the browser has not taken the last chunk */
            lws_rx_flow_control(wsi, 0);
            return 0;
        }
        n = read(lws_get_socket_fd(wsi), c->down + LWS_PRE, BK_GATEWAY_CHUNK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n <= 0)
            return -1; /* the display ended the session */
        c->down_len = (size_t)n;
        lws_rx_flow_control(wsi, 0);
        lws_callback_on_writable(c->ws);
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (!c)
            return -1;
        if (c->up_off < c->up_len) {
            n = write(lws_get_socket_fd(wsi), c->up + c->up_off,
                      c->up_len - c->up_off);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                return -1;
            if (n > 0)
                c->up_off += (size_t)n;
        }
        if (c->up_off < c->up_len)
            lws_callback_on_writable(wsi);
        else
            lws_rx_flow_control(c->ws, 1);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (c) { /* close the websocket once what came is sent */
            c->raw = NULL;
            c->closing = 1;
            lws_callback_on_writable(c->ws);
        }
        return 0;
    default: return 0;
    }
}

void bk_gateway_protocols(struct bk_gateway *g, struct lws_protocols *out)
{
    /* noVNC asks for "binary"; clients that ask for nothing get the
     * mount's protocol, the same callback */
    out[0] = (struct lws_protocols){
        .name = "binary",
        .callback = bk_gw_ws,
        .per_session_data_size = sizeof(struct bk_gw_conn),
        .rx_buffer_size = 65536,
        .user = g,
    };
    out[1] = out[0];
    out[1].name = BK_GATEWAY_PROTOCOL;
    out[2] = (struct lws_protocols){
        .name = BK_GATEWAY_RAW,
        .callback = bk_gw_raw,
        .user = g,
    };
}
