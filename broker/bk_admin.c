/*
 * bk_admin.c - the REST API's admin routes and /metrics (see
 * broker/README.md, "REST API"): pools, desktops, sessions, helpdesk
 * views, the audit log, the dashboard's stats and Prometheus metrics.
 * Every route checks for an admin session first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk_api_int.h"
#include "bk_pool.h"
#include "bk_stats.h"

static void bk_admin_pool_put(struct bk_api *api, struct bk_req *req,
                              const struct bk_who *who, const char *name,
                              int create, int patch)
{
    json_t *body = bk_api_body(req), *base = NULL, *settings;
    char err[256];
    int r;

    if (!body)
        return;
    if (create)
        name = bk_api_str(body, "name", BK_POOL_NAME_MAX);
    if (!bk_pool_name_ok(name)) {
        bk_req_error(req, 400, "invalid",
                     "name: 1 to 32 of a-z, 0-9 and '-', not starting "
                     "with '-'");
        goto out;
    }
    if (patch) {
        base = bk_store_pool_get(api->store, name);
        if (!base) {
            bk_req_error(req, 404, "no_pool", "no such pool");
            goto out;
        }
    }
    settings = bk_pool_validate(body, base, err, sizeof(err));
    if (!settings) {
        bk_req_error(req, 400, "invalid", err);
        goto out;
    }
    r = bk_store_pool_put(api->store, name, settings, create);
    json_decref(settings);
    if (r == -EEXIST)
        bk_req_error(req, 409, "exists", "a pool with this name exists");
    else if (r == -ENOENT)
        bk_req_error(req, 404, "no_pool", "no such pool");
    else if (r)
        bk_req_error(req, 500, "internal", "cannot store the pool");
    else {
        bk_api_event(api, create ? "pool-create" : "pool-update", who->s.user,
                     name, NULL, json_incref(body));
        bk_mgr_kick(api->mgr);
        bk_req_reply_json(req, create ? 201 : 200,
                          bk_store_pool_get(api->store, name), NULL);
    }
out:
    json_decref(base);
    json_decref(body);
}

void bk_admin_pools(struct bk_api *api, struct bk_req *req, const char *name,
                    const char *action)
{
    struct bk_who who;
    enum bk_method m = bk_req_method(req);
    json_t *p;

    if (bk_api_admin(api, req, &who))
        return;
    if (!name && m == BK_GET)
        bk_req_reply_json(
            req, 200,
            json_pack("{so}", "pools", bk_store_pool_list(api->store)), NULL);
    else if (!name && m == BK_POST)
        bk_admin_pool_put(api, req, &who, NULL, 1, 0);
    else if (name && !action && m == BK_GET) {
        p = bk_store_pool_get(api->store, name);
        if (p)
            bk_req_reply_json(req, 200, p, NULL);
        else
            bk_req_error(req, 404, "no_pool", "no such pool");
    } else if (name && !action && (m == BK_PUT || m == BK_PATCH))
        bk_admin_pool_put(api, req, &who, name, 0, m == BK_PATCH);
    else if (name && !action && m == BK_DELETE) {
        if (bk_store_pool_delete(api->store, name))
            bk_req_error(req, 404, "no_pool", "no such pool");
        else {
            bk_api_event(api, "pool-delete", who.s.user, name, NULL, NULL);
            bk_mgr_kick(api->mgr);
            bk_req_reply_json(req, 202, json_pack("{ss}", "state", "deleting"),
                              NULL);
        }
    } else if (name && action && !strcmp(action, "resume") && m == BK_POST) {
        bk_store_pool_unrestrain(api->store, name);
        bk_api_event(api, "pool-resume", who.s.user, name, NULL, NULL);
        bk_mgr_kick(api->mgr);
        bk_req_reply_json(req, 200, bk_store_pool_get(api->store, name), NULL);
    } else
        bk_req_error(req, 404, "not_found", "no such route");
    json_decref(who.s.groups);
}

static int bk_admin_desktop_op_ok(const char *op)
{
    static const char *const ops[] = {"power-on", "power-off", "reset",
                                      "refresh",  "delete",    "logoff"};
    size_t i;

    for (i = 0; i < sizeof(ops) / sizeof(*ops); i++)
        if (!strcmp(op, ops[i]))
            return 1;
    return 0;
}

static json_t *bk_admin_pool_of(json_t *pools, const char *name)
{
    json_t *p;
    size_t i;

    json_array_foreach(pools, i, p)
    {
        if (!strcmp(bk_pool_str(p, "name"), name))
            return p;
    }
    return NULL;
}

/* What an admin sees of a desktop: what its user sees, the VM's shape
 * from its pool (pools: the list, or NULL to look it up), and its QEMU's
 * memory and CPU use from the last sampling pass (absent when it was not
 * running then). */
static json_t *bk_admin_desktop_json(struct bk_api *api,
                                     const struct bk_desktop *d, json_t *pools)
{
    json_t *o = bk_api_desktop_json(d), *own = NULL, *p;
    struct bk_stats_usage u;

    if (pools)
        p = bk_admin_pool_of(pools, d->pool);
    else
        p = own = bk_store_pool_get(api->store, d->pool);
    if (o && p) {
        json_object_set_new(o, "vcpus", json_integer(bk_pool_int(p, "vcpus")));
        json_object_set_new(o, "memory_mb",
                            json_integer(bk_pool_int(p, "memory_mb")));
    }
    if (o && bk_stats_usage(bk_mgr_stats(api->mgr), d->id, &u) == 0) {
        json_object_set_new(o, "rss_mb", json_integer(u.rss_mb));
        if (u.private_mb >= 0) {
            json_object_set_new(o, "private_mb", json_integer(u.private_mb));
            json_object_set_new(o, "shared_mb", json_integer(u.shared_mb));
        }
        if (u.cpu_percent >= 0)
            json_object_set_new(o, "cpu_percent", json_real(u.cpu_percent));
    }
    json_decref(own);
    return o;
}

static json_t *bk_admin_desktop_list(struct bk_api *api, const char *pool,
                                     const char *user)
{
    struct bk_desktop *v = NULL;
    size_t n = 0, i;
    json_t *a = json_array(), *pools = bk_store_pool_list(api->store);

    if (pools && bk_store_desktop_list(api->store, pool, user, &v, &n) == 0)
        for (i = 0; i < n; i++)
            json_array_append_new(a, bk_admin_desktop_json(api, &v[i], pools));
    free(v);
    json_decref(pools);
    return json_pack("{so}", "desktops", a);
}

/* A one-time ticket that lets the admin's browser watch the desktop
 * (view-only) through the gateway; the desktop's state stays. */
static void bk_admin_view(struct bk_api *api, struct bk_req *req,
                          const struct bk_who *who, const struct bk_desktop *d)
{
    char ticket[DP_TOKEN_LEN + 1], url[256];
    int64_t expires;

    if (d->state == BK_PROVISIONING || d->state == BK_REFRESHING ||
        d->state == BK_DELETING || d->state == BK_MAINTENANCE) {
        bk_req_error(req, 409, "not_running", "the desktop is not running");
        return;
    }
    if (bk_api_ticket(api, who->s.user, d->id, "view", ticket, &expires)) {
        bk_req_error(req, 500, "internal", "cannot issue a ticket");
        return;
    }
    snprintf(url, sizeof(url), "/desktop.html#ticket=%s&view=1&desktop=%s",
             ticket, d->id);
    bk_req_reply_json(req, 200,
                      json_pack("{ss sI ss}", "ticket", ticket, "expires",
                                (json_int_t)expires, "url", url),
                      NULL);
}

void bk_admin_desktops(struct bk_api *api, struct bk_req *req, const char *id,
                       const char *action)
{
    struct bk_who who;
    struct bk_desktop d;
    enum bk_method m = bk_req_method(req);
    char pool[BK_NAME_MAX + 1] = "", user[BK_USER_MAX + 1] = "";

    if (bk_api_admin(api, req, &who))
        return;
    if (!id && m == BK_GET) {
        bk_req_query(req, "pool", pool, sizeof(pool));
        bk_req_query(req, "user", user, sizeof(user));
        bk_req_reply_json(req, 200, bk_admin_desktop_list(api, pool, user),
                          NULL);
    } else if (!id || bk_store_desktop_get(api->store, id, &d) != 0) {
        bk_req_error(req, 404, "no_desktop", "no such desktop");
    } else if (!action && m == BK_GET) {
        bk_req_reply_json(req, 200, bk_admin_desktop_json(api, &d, NULL), NULL);
    } else if (action && !strcmp(action, "view") && m == BK_POST) {
        bk_admin_view(api, req, &who, &d);
    } else if (action && !strcmp(action, "screenshot") && m == BK_GET) {
        bk_api_command(api, req, who.s.user, &d, "screenshot", 30);
    } else if (action && !strcmp(action, "disconnect") && m == BK_POST) {
        bk_api_disconnect(api, req, who.s.user, &d);
    } else if (action && bk_admin_desktop_op_ok(action) && m == BK_POST) {
        bk_api_command(api, req, who.s.user, &d, action, 120);
    } else {
        bk_req_error(req, 404, "not_found", "no such route");
    }
    json_decref(who.s.groups);
}

/* Sessions: desktops in use, with who holds them. */
void bk_admin_sessions(struct bk_api *api, struct bk_req *req)
{
    struct bk_who who;
    struct bk_desktop *v = NULL;
    size_t n = 0, i;
    json_t *a = json_array();

    if (bk_api_admin(api, req, &who)) {
        json_decref(a);
        return;
    }
    if (bk_store_desktop_list(api->store, NULL, NULL, &v, &n) == 0)
        for (i = 0; i < n; i++)
            if (bk_state_in_use(v[i].state))
                json_array_append_new(
                    a, json_pack("{ss ss ss ss ss sI ss}", "desktop", v[i].id,
                                 "pool", v[i].pool, "user", v[i].user, "state",
                                 bk_state_name(v[i].state), "protocol",
                                 v[i].protocol, "since",
                                 (json_int_t)v[i].assigned_at, "client",
                                 v[i].client));
    free(v);
    json_decref(who.s.groups);
    bk_req_reply_json(req, 200, json_pack("{so}", "sessions", a), NULL);
}

static int64_t bk_admin_query_int(struct bk_req *req, const char *name,
                                  int64_t def)
{
    char buf[32], *end;
    long long v;

    if (bk_req_query(req, name, buf, sizeof(buf)))
        return def;
    v = strtoll(buf, &end, 10);
    return *end || end == buf ? def : v;
}

void bk_admin_events(struct bk_api *api, struct bk_req *req)
{
    struct bk_who who;
    char user[BK_USER_MAX + 1] = "", pool[BK_NAME_MAX + 1] = "";
    int64_t limit;

    if (bk_api_admin(api, req, &who))
        return;
    bk_req_query(req, "user", user, sizeof(user));
    bk_req_query(req, "pool", pool, sizeof(pool));
    limit = bk_admin_query_int(req, "limit", 200);
    if (limit < 1 || limit > 10000)
        limit = 200;
    bk_req_reply_json(
        req, 200,
        json_pack("{so}", "events",
                  bk_store_events(api->store,
                                  bk_admin_query_int(req, "since", 0),
                                  bk_admin_query_int(req, "until", 0), user,
                                  pool, (int)limit)),
        NULL);
    json_decref(who.s.groups);
}

/* --- the dashboard ------------------------------------------------------- */

static json_t *bk_admin_sample_json(const struct bk_stats_sample *s)
{
    return json_pack("{sI si si si si}", "t", (json_int_t)s->t, "sessions",
                     s->sessions, "in_use", s->in_use, "ready", s->ready,
                     "provisioning", s->provisioning);
}

/* Each pool now, counted from the store (not the ring). */
static json_t *bk_admin_stats_pools(struct bk_api *api)
{
    json_t *pools = bk_store_pool_list(api->store), *out = json_array(), *p;
    int c[BK_STATE_COUNT], s;
    size_t i;

    json_array_foreach(pools, i, p)
    {
        struct bk_stats_sample n = {0};

        bk_store_desktop_counts(api->store, bk_pool_str(p, "name"), c);
        for (s = 0; s < BK_STATE_COUNT; s++)
            bk_stats_count(&n, (enum bk_state)s, c[s]);
        json_array_append_new(
            out, json_pack("{ss si si si si si}", "name",
                           bk_pool_str(p, "name"), "max", bk_pool_int(p, "max"),
                           "desktops", n.desktops, "in_use", n.in_use, "ready",
                           n.ready, "provisioning", n.provisioning));
    }
    json_decref(pools);
    return out;
}

void bk_admin_stats(struct bk_api *api, struct bk_req *req)
{
    struct bk_stats *st = bk_mgr_stats(api->mgr);
    size_t cap = bk_stats_capacity(st), n, i;
    struct bk_stats_sample *v = malloc(cap * sizeof(*v));
    int64_t now = bk_stats_unix_ms();
    struct bk_who who;
    json_t *samples;

    if (!v) {
        bk_req_error(req, 500, "internal", "out of memory");
        return;
    }
    if (bk_api_admin(api, req, &who)) {
        free(v);
        return;
    }
    n = bk_stats_samples(st, bk_admin_query_int(req, "since", 0), now, v, cap);
    samples = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(samples, bk_admin_sample_json(&v[i]));
    free(v);
    json_decref(who.s.groups);
    bk_req_reply_json(req, 200,
                      json_pack("{si sI so so}", "interval",
                                bk_stats_interval(st), "now", (json_int_t)now,
                                "samples", samples, "pools",
                                bk_admin_stats_pools(api)),
                      NULL);
}

/* --- metrics -------------------------------------------------------------- */

/* Desktop sessions (desktops in use) by state, over all pools. */
static void bk_admin_metrics_sessions(struct bk_api *api, FILE *f)
{
    static const enum bk_state states[] = {BK_ASSIGNED, BK_CONNECTED,
                                           BK_DISCONNECTED};
    struct bk_desktop *v = NULL;
    size_t n = 0, i, k;

    fprintf(f, "# HELP deskpool_sessions Desktops held by users, by state.\n"
               "# TYPE deskpool_sessions gauge\n");
    bk_store_desktop_list(api->store, NULL, NULL, &v, &n);
    for (k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
        int c = 0;

        for (i = 0; i < n; i++)
            c += v[i].state == states[k];
        fprintf(f, "deskpool_sessions{state=\"%s\"} %d\n",
                bk_state_name(states[k]), c);
    }
    free(v);
}

void bk_admin_metrics(struct bk_api *api, struct bk_req *req)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    json_t *pools, *p;
    size_t i;
    int s, c[BK_STATE_COUNT];
    uint64_t cum = 0;

    if (!bk_config_loopback(bk_req_addr(req))) {
        struct bk_who who; /* remote scrapers need an admin token */

        if (bk_api_admin(api, req, &who))
            return;
        json_decref(who.s.groups);
    }
    f = open_memstream(&text, &len);
    if (!f) {
        bk_req_error(req, 500, "internal", "out of memory");
        return;
    }
    fprintf(f, "# HELP deskpool_desktops Desktops by pool and state.\n"
               "# TYPE deskpool_desktops gauge\n");
    pools = bk_store_pool_list(api->store);
    json_array_foreach(pools, i, p)
    {
        bk_store_desktop_counts(api->store, bk_pool_str(p, "name"), c);
        for (s = 0; s < BK_STATE_COUNT; s++)
            fprintf(f, "deskpool_desktops{pool=\"%s\",state=\"%s\"} %d\n",
                    bk_pool_str(p, "name"), bk_state_name(s), c[s]);
    }
    json_decref(pools);
    bk_admin_metrics_sessions(api, f);
    fprintf(f,
            "# HELP deskpool_logins_total Login attempts by result.\n"
            "# TYPE deskpool_logins_total counter\n"
            "deskpool_logins_total{result=\"ok\"} %llu\n"
            "deskpool_logins_total{result=\"failed\"} %llu\n"
            "deskpool_logins_total{result=\"locked\"} %llu\n"
            "# HELP deskpool_logins_in_progress PAM conversations running.\n"
            "# TYPE deskpool_logins_in_progress gauge\n"
            "deskpool_logins_in_progress %d\n",
            (unsigned long long)api->logins_ok,
            (unsigned long long)api->logins_failed,
            (unsigned long long)api->logins_locked, bk_auth_running(api->auth));
    fprintf(f, "# HELP deskpool_launch_seconds Launch request to answer.\n"
               "# TYPE deskpool_launch_seconds histogram\n");
    for (s = 0; s <= BK_LAUNCH_SLOTS; s++) {
        cum += api->launch_hist[s];
        if (s < BK_LAUNCH_SLOTS)
            fprintf(f, "deskpool_launch_seconds_bucket{le=\"%g\"} %llu\n",
                    bk_launch_buckets[s], (unsigned long long)cum);
        else
            fprintf(f, "deskpool_launch_seconds_bucket{le=\"+Inf\"} %llu\n",
                    (unsigned long long)cum);
    }
    fprintf(f,
            "deskpool_launch_seconds_sum %g\n"
            "deskpool_launch_seconds_count %llu\n",
            api->launch_sum, (unsigned long long)api->launches);
    fclose(f);
    bk_req_reply(req, 200, "text/plain; version=0.0.4", text, len, NULL);
    free(text);
}
