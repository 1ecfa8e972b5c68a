/*
 * bk_api.c - the broker's REST API (see bk_api.h and broker/README.md):
 * logins, users' routes, launches, the router and parked requests; the
 * admin routes and /metrics are in bk_admin.c (shared: bk_api_int.h).
 *
 * Layout: helpers (JSON bodies, sessions, CSRF), then one function per
 * route, then the router. Every handler answers exactly once, now or from
 * bk_api_wake()/bk_api_timeout() for parked requests.
 */
#include "bk_api.h"
#include "bk_api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bk_limit.h"
#include "bk_pool.h"
#include "dp_rpc.h"
#include "dp_time.h"
#include "dp_token.h"

const double bk_launch_buckets[BK_LAUNCH_SLOTS] = {
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25,
    0.5,   1,     2.5,   5,    10,   30,   60};

static int64_t bk_now(void)
{
    return (int64_t)time(NULL);
}

int bk_api_new(struct bk_api **out, const struct bk_api_parts *parts)
{
    struct bk_api *api = calloc(1, sizeof(*api));

    if (!api)
        return -ENOMEM;
    api->cfg = parts->cfg;
    api->store = parts->store;
    api->auth = parts->auth;
    api->mgr = parts->mgr;
    api->user_fails = parts->user_fails;
    api->addr_fails = parts->addr_fails;
    *out = api;
    return 0;
}

void bk_api_free(struct bk_api *api)
{
    free(api);
}

void bk_api_set_http(struct bk_api *api, struct bk_http *http)
{
    api->http = http;
}

void bk_api_event(struct bk_api *api, const char *kind, const char *user,
                  const char *pool, const char *desktop, json_t *detail)
{
    bk_store_event(api->store, kind, user, pool, desktop, detail);
}

/* --- request helpers ------------------------------------------------------ */

/* The body as a JSON object, or NULL after answering 400. */
json_t *bk_api_body(struct bk_req *req)
{
    json_error_t e;
    size_t len;
    const char *body = bk_req_body(req, &len);
    json_t *j;

    if (len == 0)
        return json_object();
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        char msg[256];

        snprintf(msg, sizeof(msg), "malformed JSON at byte %d: %s", e.position,
                 e.text);
        bk_req_error(req, 400, "bad_json", msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        bk_req_error(req, 400, "bad_json", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* A string field of 1..max bytes, or NULL. */
const char *bk_api_str(const json_t *o, const char *key, size_t max)
{
    json_t *v = json_object_get(o, key);
    const char *s = json_string_value(v);

    if (!s || !s[0] || json_string_length(v) > max ||
        strlen(s) != json_string_length(v))
        return NULL;
    return s;
}

static void bk_wait_free(void *p)
{
    struct bk_wait_data *w = p;

    if (w->demand) /* answered, timed out or the client left */
        bk_mgr_demand(w->demand, w->pool, -1);
    free(w);
}

static struct bk_wait_data *bk_api_wait(struct bk_req *req, enum bk_wait kind)
{
    struct bk_wait_data *w = calloc(1, sizeof(*w));

    if (w) {
        w->kind = kind;
        w->started_ms = dp_time_now_ms();
        bk_req_set_data(req, w, bk_wait_free);
    }
    return w;
}

/* The session token from "Authorization: Bearer" or the cookie. */
static int bk_api_token(struct bk_req *req, char token[DP_TOKEN_LEN + 1],
                        int *bearer)
{
    char buf[4096];

    if (bk_req_header(req, "authorization", buf, sizeof(buf)) == 0) {
        if (strncmp(buf, "Bearer ", 7) != 0 || !dp_token_shape_ok(buf + 7))
            return -EINVAL;
        memcpy(token, buf + 7, DP_TOKEN_LEN + 1);
        *bearer = 1;
        return 0;
    }
    *bearer = 0;
    if (bk_req_header(req, "cookie", buf, sizeof(buf)) != 0)
        return -ENOENT;
    return bk_api_session_cookie(buf, token);
}

int bk_api_session_cookie(const char *header, char token[DP_TOKEN_LEN + 1])
{
    const char *p = header;

    while (p && *p) {
        size_t len = strcspn(p, ";");

        while (*p == ' ')
            p++, len--;
        if (len == sizeof(BK_SESSION_COOKIE) + DP_TOKEN_LEN &&
            !strncmp(p, BK_SESSION_COOKIE "=", sizeof(BK_SESSION_COOKIE))) {
            memcpy(token, p + sizeof(BK_SESSION_COOKIE), DP_TOKEN_LEN);
            token[DP_TOKEN_LEN] = '\0';
            if (dp_token_shape_ok(token))
                return 0;
        }
        p = strchr(p, ';');
        if (p)
            p++;
    }
    return -ENOENT;
}

/*
 * Finds the caller's session; answers 401 (none) or 403 (CSRF token
 * missing on a state-changing request made with the cookie) and returns
 * -1 when there is none to use. Free who->s.groups after.
 */
int bk_api_auth(struct bk_api *api, struct bk_req *req, struct bk_who *who)
{
    char token[DP_TOKEN_LEN + 1], csrf[128];
    enum bk_method m = bk_req_method(req);

    memset(who, 0, sizeof(*who));
    if (bk_api_token(req, token, &who->bearer) != 0 ||
        dp_token_hash_hex(token, who->hash) != 0 ||
        bk_store_session_get(api->store, who->hash, api->cfg->session_idle,
                             api->cfg->session_max, &who->s) != 0) {
        bk_req_error(req, 401, "unauthenticated",
                     "log in first (no valid session)");
        return -1;
    }
    if (!who->bearer && m != BK_GET &&
        (bk_req_header(req, "x-csrf-token", csrf, sizeof(csrf)) != 0 ||
         !dp_token_equal(csrf, who->s.csrf))) {
        json_decref(who->s.groups);
        bk_req_error(req, 403, "csrf", "missing or wrong X-CSRF-Token header");
        return -1;
    }
    return 0;
}

int bk_api_admin(struct bk_api *api, struct bk_req *req, struct bk_who *who)
{
    if (bk_api_auth(api, req, who))
        return -1;
    if (!who->s.admin) {
        json_decref(who->s.groups);
        bk_req_error(req, 403, "forbidden", "administrators only");
        return -1;
    }
    return 0;
}

/* --- login ---------------------------------------------------------------- */

static void bk_api_login_start(struct bk_api *api, struct bk_req *req,
                               const json_t *body)
{
    const char *user = bk_api_str(body, "username", 64);
    char id[DP_TOKEN_LEN + 1], key[96], msg[160];
    struct bk_wait_data *w;
    int wait_u, wait_a, r;

    if (!user || !bk_auth_user_ok(user)) {
        bk_req_error(req, 400, "bad_request",
                     "username: must be 1 to 64 printable characters");
        return;
    }
    snprintf(key, sizeof(key), "u:%s", user);
    wait_u = bk_limit_locked(api->user_fails, key, bk_now());
    snprintf(key, sizeof(key), "a:%s", bk_req_addr(req));
    wait_a = bk_limit_locked(api->addr_fails, key, bk_now());
    if (wait_u || wait_a) {
        api->logins_locked++;
        snprintf(msg, sizeof(msg),
                 "too many failed logins%s; try again in %d s",
                 wait_u ? " for this user" : " from this address",
                 wait_u > wait_a ? wait_u : wait_a);
        bk_api_event(api, "login-locked", user, NULL, NULL,
                     json_pack("{ss}", "addr", bk_req_addr(req)));
        bk_req_reply_json(req, 429,
                          json_pack("{ss ss ss si}", "state", "failed", "error",
                                    "locked", "message", msg, "retry_after",
                                    wait_u > wait_a ? wait_u : wait_a),
                          NULL);
        return;
    }
    w = bk_api_wait(req, BK_WAIT_LOGIN);
    if (!w) {
        bk_req_error(req, 500, "internal", "out of memory");
        return;
    }
    w->bearer = json_is_true(json_object_get(body, "bearer"));
    r = bk_auth_start(api->auth, user, bk_req_addr(req), bk_req_id(req), id);
    if (r == -EAGAIN) {
        bk_req_error(req, 503, "busy", "too many logins in progress");
        return;
    }
    if (r) {
        bk_req_error(req, 500, "internal", "cannot start the login");
        return;
    }
    bk_req_park(req, api->cfg->login_timeout * 1000);
}

static void bk_api_login_answer(struct bk_api *api, struct bk_req *req,
                                const json_t *body)
{
    const char *conv = bk_api_str(body, "conversation", DP_TOKEN_LEN);
    struct bk_wait_data *w;
    int r;

    if (!conv || !json_is_array(json_object_get(body, "answers"))) {
        bk_req_error(req, 400, "bad_request",
                     "give username, or conversation and answers");
        return;
    }
    w = bk_api_wait(req, BK_WAIT_LOGIN);
    if (!w) {
        bk_req_error(req, 500, "internal", "out of memory");
        return;
    }
    w->bearer = json_is_true(json_object_get(body, "bearer"));
    r = bk_auth_answer(api->auth, conv, bk_req_addr(req),
                       json_object_get(body, "answers"), bk_req_id(req));
    if (r == -ENOENT)
        bk_req_error(req, 404, "no_conversation",
                     "unknown or finished login conversation; start again");
    else if (r == -EBUSY)
        bk_req_error(req, 409, "not_waiting",
                     "this login is not waiting for answers");
    else if (r == -EINVAL)
        bk_req_error(req, 400, "bad_request",
                     "answers: one string (at most 1024 bytes) per prompt");
    else if (r)
        bk_req_error(req, 500, "internal", "cannot answer the login");
    else
        bk_req_park(req, api->cfg->login_timeout * 1000);
}

static void bk_api_login(struct bk_api *api, struct bk_req *req)
{
    json_t *body = bk_api_body(req);

    if (!body)
        return;
    if (json_object_get(body, "conversation"))
        bk_api_login_answer(api, req, body);
    else
        bk_api_login_start(api, req, body);
    json_decref(body);
}

/* A session for an authenticated user; answers the login request. */
static void bk_api_login_ok(struct bk_api *api, struct bk_req *req,
                            struct bk_auth_result *res, int bearer)
{
    struct bk_session s = {0};
    char token[DP_TOKEN_LEN + 1], hash[DP_TOKEN_HEX_LEN + 1], key[96];
    char cookie[256];
    json_t *reply;

    snprintf(s.user, sizeof(s.user), "%s", res->user);
    s.admin = res->admin;
    s.groups = res->groups;
    s.created = s.last_seen = bk_now();
    if (dp_token_new(token) || dp_token_hash_hex(token, hash) ||
        dp_token_random_text(s.csrf, DP_TOKEN_LEN, DP_TOKEN_B64URL) ||
        bk_store_session_put(api->store, hash, &s, res->addr)) {
        bk_req_error(req, 500, "internal", "cannot store the session");
        return;
    }
    snprintf(key, sizeof(key), "u:%s", res->user);
    bk_limit_reset(api->user_fails, key);
    api->logins_ok++;
    bk_api_event(api, "login", res->user, NULL, NULL,
                 json_pack("{ss sb}", "addr", res->addr, "admin", s.admin));
    reply = json_pack("{ss ss sb sO ss sO}", "state", "ok", "user", s.user,
                      "admin", s.admin, "groups", s.groups, "csrf", s.csrf,
                      "messages", res->prompts);
    if (bearer) {
        json_object_set_new(reply, "token", json_string(token));
        bk_req_reply_json(req, 200, reply, NULL);
        return;
    }
    snprintf(cookie, sizeof(cookie),
             "Set-Cookie: " BK_SESSION_COOKIE
             "=%s; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=%d\r\n",
             token, api->cfg->session_max);
    bk_req_reply_json(req, 200, reply, cookie);
}

static void bk_api_login_failed(struct bk_api *api, struct bk_req *req,
                                struct bk_auth_result *res)
{
    char key[96];

    api->logins_failed++;
    if (res->credentials) { /* wrong secrets count towards lockout */
        snprintf(key, sizeof(key), "u:%s", res->user);
        bk_limit_fail(api->user_fails, key, bk_now());
        snprintf(key, sizeof(key), "a:%s", res->addr);
        bk_limit_fail(api->addr_fails, key, bk_now());
    }
    bk_api_event(
        api, "login-failed", res->user, NULL, NULL,
        json_pack("{ss ss}", "addr", res->addr, "reason", res->message));
    if (req)
        bk_req_reply_json(
            req, res->credentials ? 401 : 403,
            json_pack("{ss ss ss sO}", "state", "failed", "error",
                      res->credentials ? "login_failed" : "account", "message",
                      res->message, "messages", res->prompts),
            NULL);
}

/* Results of PAM conversations reach their requests. */
static void bk_api_auth_results(struct bk_api *api)
{
    struct bk_auth_result res;

    while (bk_auth_next(api->auth, &res)) {
        struct bk_req *req = bk_http_find(api->http, res.waiter);
        struct bk_wait_data *w = req ? bk_req_data(req) : NULL;

        if (w && w->kind != BK_WAIT_LOGIN)
            req = NULL;
        if (res.kind == BK_AUTH_FAIL)
            bk_api_login_failed(api, req, &res);
        else if (req && res.kind == BK_AUTH_OK)
            bk_api_login_ok(api, req, &res, w->bearer);
        else if (req)
            bk_req_reply_json(req, 200,
                              json_pack("{ss ss sO}", "state", "prompt",
                                        "conversation", res.conversation,
                                        "prompts", res.prompts),
                              NULL);
        bk_auth_result_clear(&res);
    }
}

static void bk_api_logout(struct bk_api *api, struct bk_req *req)
{
    struct bk_who who;

    if (bk_api_auth(api, req, &who))
        return;
    bk_store_session_delete(api->store, who.hash);
    bk_api_event(api, "logout", who.s.user, NULL, NULL, NULL);
    json_decref(who.s.groups);
    bk_req_reply_json(req, 200, json_pack("{ss}", "state", "logged-out"),
                      "Set-Cookie: " BK_SESSION_COOKIE
                      "=; Path=/; HttpOnly; Secure; SameSite=Strict; "
                      "Max-Age=0\r\n");
}

static void bk_api_me(struct bk_api *api, struct bk_req *req)
{
    struct bk_who who;

    if (bk_api_auth(api, req, &who))
        return;
    bk_req_reply_json(req, 200,
                      json_pack("{ss sb so ss}", "user", who.s.user, "admin",
                                who.s.admin, "groups", who.s.groups, "csrf",
                                who.s.csrf),
                      NULL);
}

/* --- pools and launches --------------------------------------------------- */

json_t *bk_api_desktop_json(const struct bk_desktop *d)
{
    return json_pack("{ss ss ss ss sI sI sI ss ss ss ss sb}", "id", d->id,
                     "pool", d->pool, "state", bk_state_name(d->state), "user",
                     d->user, "image_gen", (json_int_t)d->image_gen, "created",
                     (json_int_t)d->created, "state_since",
                     (json_int_t)d->state_since, "error", d->error, "protocol",
                     d->protocol, "client", d->client, "provisioning",
                     d->provisioning[0] ? d->provisioning : "boot",
                     "personalised", d->personalised);
}

/* What a user sees of a pool: availability, never its image or users. */
static json_t *bk_api_pool_public(struct bk_api *api, json_t *pool,
                                  const char *user)
{
    const char *name = bk_pool_str(pool, "name");
    int c[BK_STATE_COUNT];
    struct bk_desktop *mine = NULL;
    size_t n = 0, i;
    const char *state = "available";
    json_t *o;

    bk_store_desktop_counts(api->store, name, c);
    if (json_is_true(json_object_get(pool, "maintenance")))
        state = "maintenance";
    else if (json_is_true(json_object_get(pool, "restrained")) ||
             json_integer_value(json_object_get(pool, "max")) == 0)
        state = "unavailable"; /* max 0: no desktop will ever come */
    else if (!c[BK_READY])
        state = "provisioning";
    o = json_pack("{ss ss ss ss si}", "name", name, "description",
                  bk_pool_str(pool, "description"), "type",
                  bk_pool_str(pool, "type"), "state", state, "ready",
                  c[BK_READY]);
    if (bk_store_desktop_list(api->store, name, user, &mine, &n) == 0) {
        json_t *a = json_array();

        for (i = 0; i < n; i++)
            json_array_append_new(a, bk_api_desktop_json(&mine[i]));
        json_object_set_new(o, "desktops", a);
        free(mine);
    }
    return o;
}

static void bk_api_pools(struct bk_api *api, struct bk_req *req)
{
    struct bk_who who;
    json_t *all, *out, *p;
    size_t i;

    if (bk_api_auth(api, req, &who))
        return;
    all = bk_store_pool_list(api->store);
    out = json_array();
    json_array_foreach(all, i, p)
    {
        if (!json_is_true(json_object_get(p, "deleting")) &&
            bk_pool_entitled(p, who.s.user, who.s.groups))
            json_array_append_new(out, bk_api_pool_public(api, p, who.s.user));
    }
    json_decref(all);
    json_decref(who.s.groups);
    bk_req_reply_json(req, 200, json_pack("{so}", "pools", out), NULL);
}

static int bk_api_protocol_ok(const char *p)
{
    return p &&
           (!strcmp(p, "browser") || !strcmp(p, "rdp") || !strcmp(p, "vnc"));
}

/* A one-time ticket for (user, desktop, protocol) into t. */
int bk_api_ticket(struct bk_api *api, const char *user, const char *desktop,
                  const char *protocol, char t[DP_TOKEN_LEN + 1],
                  int64_t *expires)
{
    char hash[DP_TOKEN_HEX_LEN + 1];

    *expires = bk_now() + api->cfg->ticket_ttl;
    if (dp_token_new(t) || dp_token_hash_hex(t, hash))
        return -EIO;
    return bk_store_ticket_put(api->store, hash, user, desktop, protocol,
                               *expires);
}

static void bk_api_launch_observe(struct bk_api *api, uint64_t started_ms)
{
    double s = (double)(dp_time_now_ms() - started_ms) / 1000.0;
    int i;

    api->launches++;
    api->launch_sum += s;
    for (i = 0; i < BK_LAUNCH_SLOTS && s > bk_launch_buckets[i]; i++)
        ;
    api->launch_hist[i]++;
}

/* The reply to a launch that got desktop d; ticket is its browser or RDP
 * ticket (VNC passwords come from the display server now). */
static void bk_api_launch_reply(struct bk_api *api, struct bk_req *req,
                                const struct bk_desktop *d,
                                const char *protocol, const char *ticket,
                                int64_t expires, uint64_t started_ms)
{
    char url[256], err[256], pw[16];
    json_t *reply, *vnc = NULL;

    if (!strcmp(protocol, "vnc")) {
        /* VNC checks the password itself: the display server issues it. */
        if (dp_rpc_request(api->cfg->display_socket, "issue",
                           json_pack("{ss ss ss si}", "kind", "vnc", "desktop",
                                     d->id, "user", d->user, "ttl",
                                     api->cfg->ticket_ttl),
                           2000, &vnc, NULL, 0, err, sizeof(err))) {
            bk_req_error(req, 503, "display_unavailable", err);
            return;
        }
        snprintf(pw, sizeof(pw), "%s",
                 json_string_value(json_object_get(vnc, "credential")) ?: "");
        reply = json_pack(
            "{so ss ss sO ss sI}", "desktop", bk_api_desktop_json(d),
            "protocol", protocol, "host", api->cfg->public_host, "port",
            json_object_get(vnc, "port"), "password", pw, "expires",
            (json_int_t)(time(NULL) + api->cfg->ticket_ttl));
        json_decref(vnc);
    } else {
        reply = json_pack("{so ss ss sI}", "desktop", bk_api_desktop_json(d),
                          "protocol", protocol, "ticket", ticket, "expires",
                          (json_int_t)expires);
        if (!strcmp(protocol, "browser")) {
            /* the pool lets the viewer launch again to reconnect (a
             * ticket is spent once used) */
            snprintf(url, sizeof(url), "/desktop.html#ticket=%s&pool=%s",
                     ticket, d->pool);
            json_object_set_new(reply, "url", json_string(url));
        } else {
            snprintf(url, sizeof(url), "/api/v1/desktops/%s/rdp", d->id);
            json_object_set_new(reply, "rdp_file", json_string(url));
            json_object_set_new(reply, "host",
                                json_string(api->cfg->public_host));
        }
    }
    bk_api_launch_observe(api, started_ms);
    bk_req_reply_json(req, 200, reply, NULL);
}

/* Assignment, ticket and audit record in one transaction (one commit per
 * launch). Returns 0, -EAGAIN (none ready), or another negative errno. */
static int bk_api_launch_store(struct bk_api *api, const struct bk_wait_data *w,
                               struct bk_desktop *d,
                               char ticket[DP_TOKEN_LEN + 1], int64_t *expires)
{
    int r = bk_store_begin(api->store);

    if (r)
        return -EIO;
    r = bk_store_assign(api->store, w->pool, w->user, w->protocol, d);
    if (!r && strcmp(w->protocol, "vnc") != 0)
        r = bk_api_ticket(api, d->user, d->id, w->protocol, ticket, expires);
    if (!r)
        r = bk_store_event(api->store, "launch", d->user, d->pool, d->id,
                           json_pack("{ss}", "protocol", w->protocol));
    if (r) {
        bk_store_rollback(api->store);
        return r;
    }
    return bk_store_commit(api->store);
}

/* Tries to assign; answers, or returns -EAGAIN (none ready yet). */
static int bk_api_launch_try(struct bk_api *api, struct bk_req *req,
                             struct bk_wait_data *w)
{
    struct bk_desktop d;
    char ticket[DP_TOKEN_LEN + 1] = "";
    int64_t expires = 0;
    int r = bk_api_launch_store(api, w, &d, ticket, &expires);

    if (r == -EAGAIN)
        return r;
    if (r == -ENOENT)
        bk_req_error(req, 404, "no_pool", "no such pool");
    else if (r == -EBUSY)
        bk_req_error(req, 409, "maintenance",
                     "the pool is in maintenance; try again later");
    else if (r)
        bk_req_error(req, 500, "internal", "cannot assign a desktop");
    else {
        /* No longer waiting, before the kick: a pass that still counted
         * this launch would make a desktop nobody waits for. */
        if (w->demand) {
            bk_mgr_demand(w->demand, w->pool, -1);
            w->demand = NULL;
        }
        if (d.fresh) /* prepare-session, and maybe a new spare */
            bk_mgr_kick(api->mgr);
        bk_api_launch_reply(api, req, &d, w->protocol, ticket, expires,
                            w->started_ms);
    }
    return 0;
}

static void bk_api_launch(struct bk_api *api, struct bk_req *req,
                          const char *pool)
{
    struct bk_who who;
    struct bk_wait_data *w;
    json_t *body, *p;
    const char *proto;

    if (strlen(pool) > BK_NAME_MAX) {
        bk_req_error(req, 404, "no_pool", "no such pool");
        return;
    }
    if (bk_api_auth(api, req, &who))
        return;
    body = bk_api_body(req);
    if (!body)
        goto out;
    proto = bk_api_str(body, "protocol", 16);
    if (!proto)
        proto = "browser";
    if (!bk_api_protocol_ok(proto)) {
        bk_req_error(req, 400, "bad_request",
                     "protocol: must be browser, rdp or vnc");
        goto out;
    }
    p = bk_store_pool_get(api->store, pool);
    if (!p || json_is_true(json_object_get(p, "deleting")) ||
        !bk_pool_entitled(p, who.s.user, who.s.groups)) {
        json_decref(p);
        bk_req_error(req, 404, "no_pool", "no such pool");
        goto out;
    }
    if (json_is_true(json_object_get(p, "restrained"))) {
        json_decref(p);
        bk_req_error(req, 503, "pool_unavailable",
                     "the pool cannot provision desktops; tell your "
                     "administrator");
        goto out;
    }
    json_decref(p);
    w = bk_api_wait(req, BK_WAIT_LAUNCH);
    if (!w) {
        bk_req_error(req, 500, "internal", "out of memory");
        goto out;
    }
    snprintf(w->user, sizeof(w->user), "%s", who.s.user);
    snprintf(w->pool, sizeof(w->pool), "%s", pool);
    snprintf(w->protocol, sizeof(w->protocol), "%s", proto);
    if (bk_api_launch_try(api, req, w) == -EAGAIN) {
        w->demand = api->mgr;
        bk_mgr_demand(api->mgr, w->pool, 1);
        bk_req_park(req, api->cfg->launch_wait * 1000);
        api->parked_launches++;
    }
out:
    json_decref(body);
    json_decref(who.s.groups);
}

/* --- a user's desktops ---------------------------------------------------- */

/* The caller's desktop id, or NULL after answering 404. Admins may act on
 * any desktop through the admin routes, not these. */
static int bk_api_my_desktop(struct bk_api *api, struct bk_req *req,
                             const struct bk_who *who, const char *id,
                             struct bk_desktop *d)
{
    if (bk_store_desktop_get(api->store, id, d) != 0 ||
        strcmp(d->user, who->s.user) != 0) {
        bk_req_error(req, 404, "no_desktop", "no such desktop");
        return -1;
    }
    return 0;
}

/* {"desktops": [...]} of pool and/or user (NULL or "": any). */
json_t *bk_api_desktop_list(struct bk_api *api, const char *pool,
                            const char *user)
{
    struct bk_desktop *v = NULL;
    size_t n = 0, i;
    json_t *a = json_array();

    if (bk_store_desktop_list(api->store, pool, user, &v, &n) == 0)
        for (i = 0; i < n; i++)
            json_array_append_new(a, bk_api_desktop_json(&v[i]));
    free(v);
    return json_pack("{so}", "desktops", a);
}

static void bk_api_desktops(struct bk_api *api, struct bk_req *req)
{
    struct bk_who who;

    if (bk_api_auth(api, req, &who))
        return;
    bk_req_reply_json(req, 200, bk_api_desktop_list(api, NULL, who.s.user),
                      NULL);
    json_decref(who.s.groups);
}

/* Hands an operation to the pool manager and parks until it is done. */
void bk_api_command(struct bk_api *api, struct bk_req *req, const char *who,
                    const struct bk_desktop *d, const char *op, int timeout_s)
{
    struct bk_wait_data *w = bk_api_wait(req, BK_WAIT_COMMAND);

    if (!w || bk_mgr_command(api->mgr, d->id, op, bk_req_id(req))) {
        bk_req_error(req, 500, "internal", "cannot queue the operation");
        return;
    }
    snprintf(w->op, sizeof(w->op), "%s", op);
    snprintf(w->desktop, sizeof(w->desktop), "%s", d->id);
    /* screenshots change nothing, and the console's thumbnails would flood
     * the audit log */
    if (strcmp(op, "screenshot") != 0)
        bk_api_event(api, op, who, d->pool, d->id, NULL);
    bk_req_park(req, timeout_s * 1000);
}

/* Closes the desktop's display sessions (the desktop keeps running). */
void bk_api_disconnect(struct bk_api *api, struct bk_req *req, const char *who,
                       const struct bk_desktop *d)
{
    json_t *res = NULL;
    char err[256];

    if (dp_rpc_request(api->cfg->display_socket, "disconnect",
                       json_pack("{ss}", "desktop", d->id), 2000, &res, NULL, 0,
                       err, sizeof(err))) {
        bk_req_error(req, 503, "display_unavailable", err);
        return;
    }
    bk_api_event(api, "disconnect", who, d->pool, d->id, NULL);
    bk_req_reply_json(req, 200, res, NULL);
}

static void bk_api_rdp_file(struct bk_api *api, struct bk_req *req,
                            const struct bk_desktop *d)
{
    char ticket[DP_TOKEN_LEN + 1], file[1024], headers[256];
    int64_t expires;
    int n;

    if (bk_api_ticket(api, d->user, d->id, "rdp", ticket, &expires)) {
        bk_req_error(req, 500, "internal", "cannot issue a ticket");
        return;
    }
    /* The ticket travels as the user name ("ticket:" + ticket), which
     * RDP clients send inside TLS in the Client Info PDU; no client needs
     * a password in the file (mstsc cannot read a plain one). */
    n = snprintf(file, sizeof(file),
                 "full address:s:%s:3389\r\n"
                 "username:s:ticket:%s\r\n"
                 "prompt for credentials:i:0\r\n"
                 "authentication level:i:0\r\n"
                 "screen mode id:i:2\r\n"
                 "use multimon:i:0\r\n"
                 "redirectclipboard:i:1\r\n",
                 api->cfg->public_host, ticket);
    snprintf(headers, sizeof(headers),
             "Content-Disposition: attachment; filename=\"%s.rdp\"\r\n", d->id);
    bk_req_reply(req, 200, "application/x-rdp", file, (size_t)n, headers);
}

/*
 * The desktop's clipboard through its agent, for the browser's clipboard
 * panel: GET reads it, POST {"text": ...} sets it. Answered when the
 * agent answers (the manager asks it without waiting).
 */
static void bk_api_clipboard(struct bk_api *api, struct bk_req *req,
                             const struct bk_desktop *d)
{
    struct bk_wait_data *w;
    json_t *body = NULL;
    const char *text = NULL;
    int r;

    if (!bk_state_in_use(d->state)) {
        bk_req_error(req, 409, "not_in_use", "the desktop has no session");
        return;
    }
    if (bk_req_method(req) == BK_POST) {
        body = bk_api_body(req);
        if (!body)
            return;
        text = bk_api_str(body, "text", BK_MGR_CLIPBOARD_MAX);
        if (!text) {
            bk_req_error(req, 400, "bad_request",
                         "text: a string of 1 to 32768 bytes");
            json_decref(body);
            return;
        }
    }
    w = bk_api_wait(req, BK_WAIT_COMMAND);
    r = w ? bk_mgr_clipboard(api->mgr, d->id, text, bk_req_id(req)) : -ENOMEM;
    json_decref(body);
    if (r) {
        bk_req_error(req, 500, "internal", "cannot queue the operation");
        return;
    }
    snprintf(w->op, sizeof(w->op), "%s",
             bk_req_method(req) == BK_POST ? "clipboard-set" : "clipboard-get");
    snprintf(w->desktop, sizeof(w->desktop), "%s", d->id);
    bk_req_park(req, 10000);
}

static void bk_api_desktop_route(struct bk_api *api, struct bk_req *req,
                                 const char *id, const char *action)
{
    struct bk_who who;
    struct bk_desktop d;
    enum bk_method m = bk_req_method(req);

    if (bk_api_auth(api, req, &who))
        return;
    if (bk_api_my_desktop(api, req, &who, id, &d))
        goto out;
    if (!action && m == BK_GET)
        bk_req_reply_json(req, 200, bk_api_desktop_json(&d), NULL);
    else if (action && !strcmp(action, "rdp") && m == BK_GET)
        bk_api_rdp_file(api, req, &d);
    else if (action && !strcmp(action, "logoff") && m == BK_POST)
        bk_api_command(api, req, who.s.user, &d, "logoff", 60);
    else if (action && !strcmp(action, "disconnect") && m == BK_POST)
        bk_api_disconnect(api, req, who.s.user, &d);
    else if (action && !strcmp(action, "clipboard") &&
             (m == BK_GET || m == BK_POST))
        bk_api_clipboard(api, req, &d);
    else
        bk_req_error(req, 404, "not_found", "no such route");
out:
    json_decref(who.s.groups);
}

/* --- routing -------------------------------------------------------------- */

/* Splits "/api/v1/a/b/c" into up to 4 segments after the prefix. */
static int bk_api_split(const char *path, char seg[4][96])
{
    const char *p = path + strlen("/api/v1/");
    int n = 0;

    while (*p && n < 4) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);

        if (len == 0 || len >= 96)
            return -1;
        memcpy(seg[n], p, len);
        seg[n][len] = '\0';
        n++;
        p += len;
        if (*p == '/')
            p++;
    }
    return *p ? -1 : n;
}

void bk_api_request(void *arg, struct bk_req *req)
{
    struct bk_api *api = arg;
    const char *path = bk_req_path(req);
    enum bk_method m = bk_req_method(req);
    char seg[4][96];
    int n;

    if (!strcmp(path, "/metrics") && m == BK_GET) {
        bk_admin_metrics(api, req);
        return;
    }
    if (strncmp(path, "/api/v1/", 8) != 0 ||
        (n = bk_api_split(path, seg)) < 1) {
        bk_req_error(req, 404, "not_found", "no such route");
        return;
    }
    if (n == 1 && !strcmp(seg[0], "login") && m == BK_POST)
        bk_api_login(api, req);
    else if (n == 1 && !strcmp(seg[0], "logout") && m == BK_POST)
        bk_api_logout(api, req);
    else if (n == 1 && !strcmp(seg[0], "me") && m == BK_GET)
        bk_api_me(api, req);
    else if (n == 1 && !strcmp(seg[0], "pools") && m == BK_GET)
        bk_api_pools(api, req);
    else if (n == 3 && !strcmp(seg[0], "pools") && !strcmp(seg[2], "launch") &&
             m == BK_POST)
        bk_api_launch(api, req, seg[1]);
    else if (n == 1 && !strcmp(seg[0], "desktops") && m == BK_GET)
        bk_api_desktops(api, req);
    else if (n >= 2 && n <= 3 && !strcmp(seg[0], "desktops"))
        bk_api_desktop_route(api, req, seg[1], n == 3 ? seg[2] : NULL);
    else if (n >= 2 && !strcmp(seg[0], "admin") && !strcmp(seg[1], "pools"))
        bk_admin_pools(api, req, n > 2 ? seg[2] : NULL, n > 3 ? seg[3] : NULL);
    else if (n >= 2 && !strcmp(seg[0], "admin") && !strcmp(seg[1], "desktops"))
        bk_admin_desktops(api, req, n > 2 ? seg[2] : NULL,
                          n > 3 ? seg[3] : NULL);
    else if (n == 2 && !strcmp(seg[0], "admin") &&
             !strcmp(seg[1], "sessions") && m == BK_GET)
        bk_admin_sessions(api, req);
    else if (n == 2 && !strcmp(seg[0], "admin") && !strcmp(seg[1], "events") &&
             m == BK_GET)
        bk_admin_events(api, req);
    else if (n == 2 && !strcmp(seg[0], "admin") && !strcmp(seg[1], "stats") &&
             m == BK_GET)
        bk_admin_stats(api, req);
    else
        bk_req_error(req, 404, "not_found", "no such route");
}

/* --- parked requests ------------------------------------------------------ */

static void bk_api_command_done(struct bk_req *req,
                                const struct bk_mgr_result *res)
{
    struct bk_wait_data *w = bk_req_data(req);

    if (res->status) {
        bk_req_error(req, res->status == -ENOENT ? 404 : 409, "failed",
                     res->message);
    } else if (!strcmp(w->op, "clipboard-get")) {
        bk_req_reply_json(req, 200,
                          json_pack("{ss}", "text", res->text ? res->text : ""),
                          NULL);
    } else if (!strcmp(w->op, "screenshot")) {
        FILE *f = fopen(res->path, "rb");
        char *png = NULL;
        long n = 0;

        if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
            fseek(f, 0, SEEK_SET) == 0 && (png = malloc((size_t)n)) &&
            fread(png, 1, (size_t)n, f) == (size_t)n)
            bk_req_reply(req, 200, "image/png", png, (size_t)n, NULL);
        else
            bk_req_error(req, 500, "internal", "cannot read the screenshot");
        free(png);
        if (f)
            fclose(f);
    } else {
        bk_req_reply_json(
            req, 200,
            json_pack("{ss ss}", "desktop", w->desktop, "done", w->op), NULL);
    }
}

static void bk_api_mgr_results(struct bk_api *api)
{
    struct bk_mgr_result res;

    while (bk_mgr_next_result(api->mgr, &res)) {
        struct bk_req *req = bk_http_find(api->http, res.tag);
        struct bk_wait_data *w = req ? bk_req_data(req) : NULL;

        if (w && w->kind == BK_WAIT_COMMAND)
            bk_api_command_done(req, &res);
        if (res.path[0])
            unlink(res.path);
        free(res.text);
    }
}

static void bk_api_retry_one(void *arg, struct bk_req *req)
{
    struct bk_api *api = arg;
    struct bk_wait_data *w = bk_req_data(req);

    if (!w || w->kind != BK_WAIT_LAUNCH)
        return;
    if (bk_api_launch_try(api, req, w) == -EAGAIN)
        api->parked_launches++; /* still waiting */
}

/* Parked launches try again: the manager reported a change. */
static void bk_api_retry_launches(struct bk_api *api)
{
    if (!api->parked_launches)
        return;
    api->parked_launches = 0;
    bk_http_foreach_parked(api->http, bk_api_retry_one, api);
}

void bk_api_wake(void *arg)
{
    struct bk_api *api = arg;

    bk_api_auth_results(api);
    bk_api_mgr_results(api);
    bk_api_retry_launches(api);
}

void bk_api_timeout(void *arg, struct bk_req *req)
{
    struct bk_api *api = arg;
    struct bk_wait_data *w = bk_req_data(req);

    if (w && w->kind == BK_WAIT_LAUNCH) {
        if (bk_api_launch_try(api, req, w) == -EAGAIN)
            bk_req_reply_json(
                req, 202,
                json_pack("{ss ss si}", "state", "provisioning", "message",
                          "a desktop is being prepared; try again shortly",
                          "retry_after", 5),
                NULL);
        return;
    }
    if (w && w->kind == BK_WAIT_LOGIN)
        bk_req_error(req, 504, "timeout",
                     "the login did not finish in time; start again");
}

void bk_api_tick(void *arg)
{
    struct bk_api *api = arg;

    if (++api->ticks % 60 == 0) { /* once a minute: drop what expired */
        bk_store_session_expire(api->store, api->cfg->session_idle,
                                api->cfg->session_max);
        /* used and expired tickets are kept 10 minutes, so a replay hears
         * "already used" or "expired" rather than "unknown" */
        bk_store_ticket_purge(api->store, (int64_t)time(NULL) - 600);
    }
}
