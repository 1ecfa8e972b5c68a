/*
 * bk_api.h - the broker's REST API (broker/README.md lists every route):
 * login conversations, sessions, pools, launches, desktops, the admin API
 * and /metrics, on top of bk_http.
 *
 * It runs on the HTTP thread with that thread's own store connection. It
 * never waits: PAM runs in bk_auth's threads, VM work in the pool
 * manager's; requests that need them are parked and answered when their
 * result arrives (bk_api_wake) or their time is up.
 */
#ifndef BK_API_H
#define BK_API_H

#include "bk_auth.h"
#include "bk_config.h"
#include "bk_http.h"
#include "bk_limit.h"
#include "bk_mgr.h"
#include "bk_store.h"
#include "dp_token.h"

#define BK_SESSION_COOKIE "deskpool_session"

struct bk_api;

/* The session token in a Cookie header's text: the first
 * BK_SESSION_COOKIE with a token's shape. 0, or -ENOENT. (The gateway
 * checks sessions too.) */
int bk_api_session_cookie(const char *header, char token[DP_TOKEN_LEN + 1]);

struct bk_api_parts {
    const struct bk_config *cfg;
    struct bk_store *store; /* this thread's connection */
    struct bk_auth *auth;
    struct bk_mgr *mgr;
    /* failed-login counters, shared with the local API (RDP logins) */
    struct bk_limit *user_fails, *addr_fails;
};

int bk_api_new(struct bk_api **out, const struct bk_api_parts *parts);
void bk_api_free(struct bk_api *api);
/* Must be set before requests arrive (bk_http needs the api first). */
void bk_api_set_http(struct bk_api *api, struct bk_http *http);

/* bk_http handlers (arg: the bk_api). */
void bk_api_request(void *arg, struct bk_req *req);
void bk_api_timeout(void *arg, struct bk_req *req);
void bk_api_wake(void *arg);
void bk_api_tick(void *arg);

#endif
