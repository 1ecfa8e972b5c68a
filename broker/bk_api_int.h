/*
 * bk_api_int.h - what the REST API's two files share: bk_api.c (logins,
 * users' routes, launches, the router, parked requests) and bk_admin.c
 * (the admin routes and /metrics). Not for other modules: their API is
 * bk_api.h.
 */
#ifndef BK_API_INT_H
#define BK_API_INT_H

#include <jansson.h>
#include <stdint.h>

#include "bk_api.h"
#include "dp_token.h"

#define BK_LAUNCH_SLOTS 15 /* launch latency histogram buckets */

extern const double bk_launch_buckets[BK_LAUNCH_SLOTS];

struct bk_api {
    const struct bk_config *cfg;
    struct bk_store *store;
    struct bk_auth *auth;
    struct bk_mgr *mgr;
    struct bk_http *http;
    struct bk_limit *user_fails, *addr_fails;
    /* metrics */
    uint64_t logins_ok, logins_failed, logins_locked, launches;
    uint64_t launch_hist[BK_LAUNCH_SLOTS + 1];
    double launch_sum;
    int parked_launches; /* retried when the manager reports changes */
    unsigned ticks;
};

/* What a parked request waits for. */
enum bk_wait { BK_WAIT_LOGIN, BK_WAIT_LAUNCH, BK_WAIT_COMMAND };

struct bk_wait_data {
    enum bk_wait kind;
    struct bk_mgr *demand;      /* launch: counted as waiting in the manager */
    int bearer;                 /* login: the client wants a bearer token */
    char user[BK_USER_MAX + 1]; /* launch: who */
    char pool[BK_NAME_MAX + 1];
    char protocol[16];
    char op[16]; /* command */
    char desktop[BK_NAME_MAX + 1];
    uint64_t started_ms;
};

/* Who is asking: from the session cookie or a bearer token. */
struct bk_who {
    struct bk_session s;
    char hash[DP_TOKEN_HEX_LEN + 1];
    int bearer;
};

/* --- helpers (bk_api.c) ----------------------------------------------------
 */

/* Appends to the audit log (detail consumed; may be NULL). */
void bk_api_event(struct bk_api *api, const char *kind, const char *user,
                  const char *pool, const char *desktop, json_t *detail);
/* The body as a JSON object, or NULL after answering 400. */
json_t *bk_api_body(struct bk_req *req);
/* A string field of 1..max bytes without NULs, or NULL. */
const char *bk_api_str(const json_t *o, const char *key, size_t max);
/* The caller's session; answers 401/403 (CSRF) and returns -1 without
 * one. bk_api_admin also answers 403 to non-admins. Free who->s.groups. */
int bk_api_auth(struct bk_api *api, struct bk_req *req, struct bk_who *who);
int bk_api_admin(struct bk_api *api, struct bk_req *req, struct bk_who *who);
json_t *bk_api_desktop_json(const struct bk_desktop *d);
/* A one-time ticket for (user, desktop, protocol) into t, valid
 * ticket_ttl seconds (*expires: Unix seconds). 0 or a negative errno. */
int bk_api_ticket(struct bk_api *api, const char *user, const char *desktop,
                  const char *protocol, char t[DP_TOKEN_LEN + 1],
                  int64_t *expires);
/* {"desktops": [...]} of pool and/or user (NULL or "": any). */
json_t *bk_api_desktop_list(struct bk_api *api, const char *pool,
                            const char *user);
/* Hands op on desktop d to the pool manager and parks the request. */
void bk_api_command(struct bk_api *api, struct bk_req *req, const char *who,
                    const struct bk_desktop *d, const char *op, int timeout_s);
/* Closes the desktop's display sessions and answers. */
void bk_api_disconnect(struct bk_api *api, struct bk_req *req, const char *who,
                       const struct bk_desktop *d);

/* --- admin routes (bk_admin.c) ------------------------------------------ */

/* /api/v1/admin/pools[/NAME[/ACTION]] */
void bk_admin_pools(struct bk_api *api, struct bk_req *req, const char *name,
                    const char *action);
/* /api/v1/admin/desktops[/ID[/ACTION]] */
void bk_admin_desktops(struct bk_api *api, struct bk_req *req, const char *id,
                       const char *action);
void bk_admin_sessions(struct bk_api *api, struct bk_req *req);
void bk_admin_events(struct bk_api *api, struct bk_req *req);
/* GET /api/v1/admin/stats[?since=MS]: the dashboard's history and the
 * pools now. */
void bk_admin_stats(struct bk_api *api, struct bk_req *req);
/* GET /metrics: loopback clients, or an admin's session. */
void bk_admin_metrics(struct bk_api *api, struct bk_req *req);

#endif
