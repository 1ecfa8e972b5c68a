/*
 * bk_local.c - the broker's local API for deskpool-display (see
 * bk_local.h).
 */
#include "bk_local.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bk_pool.h"
#include "bk_store.h"
#include "dp_msg.h"
#include "dp_time.h"
#include "dp_token.h"
#include "dp_unix.h"

struct bk_local_conn {
    struct bk_local *l;
    int fd;
    pthread_t thread;
    struct bk_store *store;
    int done; /* the thread has finished */
};

struct bk_local {
    struct bk_local_parts p;
    int lfd, stop_pipe[2];
    pthread_t accept_thread;
    int started;
    pthread_mutex_t lock;
    struct bk_local_conn *conns[BK_LOCAL_MAX_CONNS];
};

/* A request's outcome: a result object, or an error code and message. */
struct bk_local_reply {
    json_t *result;
    const char *code;
    char message[256];
};

static int bk_local_fail(struct bk_local_reply *rep, const char *code,
                         const char *message)
{
    rep->code = code;
    snprintf(rep->message, sizeof(rep->message), "%s", message);
    return -1;
}

/* --- requests -------------------------------------------------------------
 */

static int bk_local_redeem(struct bk_local_conn *c, json_t *args,
                           struct bk_local_reply *rep)
{
    const char *ticket, *proto;
    char hash[DP_TOKEN_HEX_LEN + 1], user[BK_USER_MAX + 1],
        desktop[BK_NAME_MAX + 1], detail[128], kind[16] = "";
    struct bk_desktop d;
    int r, view = 0;

    if (dp_msg_string(args, "ticket", 1, 64, 1, &ticket, detail,
                      sizeof(detail)) ||
        dp_msg_string(args, "protocol", 1, 16, 1, &proto, detail,
                      sizeof(detail)))
        return bk_local_fail(rep, "bad-request", detail);
    if (!dp_token_shape_ok(ticket) || dp_token_hash_hex(ticket, hash))
        return bk_local_fail(rep, "unknown", "unknown ticket");
    /* The gateway serves helpdesk views as it serves browsers: a "view"
     * ticket is redeemed where a browser ticket is asked for. */
    if (!strcmp(proto, "browser")) /* (a spent one too: it says so below) */
        bk_store_ticket_peek(c->store, hash, user, sizeof(user), kind,
                             sizeof(kind));
    if (!strcmp(kind, "view")) {
        view = 1;
        proto = "view";
    }
    r = bk_store_ticket_redeem(c->store, hash, proto, user, sizeof(user),
                               desktop, sizeof(desktop));
    if (r == -ENOENT)
        return bk_local_fail(rep, "unknown", "unknown ticket");
    if (r == -ETIMEDOUT)
        return bk_local_fail(rep, "expired", "ticket expired");
    if (r == -EALREADY)
        return bk_local_fail(rep, "used", "ticket already used");
    if (r == -EPROTO)
        return bk_local_fail(rep, "protocol",
                             "ticket issued for another protocol");
    if (r || bk_store_desktop_get(c->store, desktop, &d))
        return bk_local_fail(rep, "unknown", "the ticket's desktop is gone");
    /* a helpdesk may view any desktop; users only their own */
    if (!view && strcmp(d.user, user) != 0)
        return bk_local_fail(rep, "unknown",
                             "the ticket's desktop is no longer the user's");
    bk_store_event(c->store, "redeem", user, d.pool, desktop,
                   json_pack("{ss}", "protocol", proto));
    rep->result = json_pack("{ss ss ss}", "user", user, "desktop", desktop,
                            "pool", d.pool);
    if (view)
        json_object_set_new(rep->result, "view_only", json_true());
    return 0;
}

/* The first entitled pool that gives user a desktop now (or after
 * waiting launch_wait for one): 0 with *d, or -1 with rep set. */
static int bk_local_assign(struct bk_local_conn *c, const char *user,
                           const json_t *groups, const char *want,
                           const char *proto, struct bk_desktop *d,
                           struct bk_local_reply *rep)
{
    json_t *pools = bk_store_pool_list(c->store), *p, *chosen = NULL;
    uint64_t deadline =
        dp_time_now_ms() + (uint64_t)c->l->p.cfg->launch_wait * 1000;
    size_t i;
    int r = -EAGAIN;

    json_array_foreach(pools, i, p)
    {
        if ((!want || !strcmp(bk_pool_str(p, "name"), want)) &&
            !json_is_true(json_object_get(p, "deleting")) &&
            bk_pool_entitled(p, user, groups)) {
            chosen = p;
            r = bk_store_assign(c->store, bk_pool_str(p, "name"), user, proto,
                                d);
            if (r != -EAGAIN && r != -EBUSY)
                break;
        }
    }
    if (!chosen) {
        json_decref(pools);
        return bk_local_fail(rep, "no-pool", "no desktop pool for this user");
    }
    if (r == -EAGAIN) { /* wait for the manager, as a web launch does */
        const char *name = bk_pool_str(chosen, "name");

        bk_mgr_demand(c->l->p.mgr, name, 1);
        while (r == -EAGAIN && dp_time_now_ms() < deadline) {
            struct timespec ts = {0, 250 * 1000000};

            nanosleep(&ts, NULL);
            r = bk_store_assign(c->store, name, user, proto, d);
        }
        bk_mgr_demand(c->l->p.mgr, name, -1);
    }
    json_decref(pools);
    if (r)
        return bk_local_fail(rep, "unavailable",
                             "no desktop is available now; try again");
    bk_mgr_kick(c->l->p.mgr);
    return 0;
}

static int bk_local_login(struct bk_local_conn *c, json_t *args,
                          struct bk_local_reply *rep)
{
    const char *user, *password, *proto, *pool = NULL, *client = "";
    char detail[128], ukey[96], akey[96];
    struct bk_auth_result res;
    struct bk_desktop d;
    int r;

    if (dp_msg_string(args, "user", 1, 64, 1, &user, detail, sizeof(detail)) ||
        dp_msg_string(args, "password", 0, 1024, 0, &password, detail,
                      sizeof(detail)) ||
        dp_msg_string(args, "protocol", 1, 16, 1, &proto, detail,
                      sizeof(detail)) ||
        (json_object_get(args, "pool") &&
         dp_msg_string(args, "pool", 1, 64, 1, &pool, detail,
                       sizeof(detail))) ||
        (json_object_get(args, "client") &&
         dp_msg_string(args, "client", 0, 63, 1, &client, detail,
                       sizeof(detail))))
        return bk_local_fail(rep, "bad-request", detail);
    snprintf(ukey, sizeof(ukey), "u:%s", user);
    snprintf(akey, sizeof(akey), "a:%s", client);
    if (bk_limit_locked(c->l->p.user_fails, ukey, time(NULL)) ||
        (client[0] && bk_limit_locked(c->l->p.addr_fails, akey, time(NULL))))
        return bk_local_fail(rep, "locked",
                             "too many failed logins; try again later");
    if (bk_auth_password(&c->l->p.auth, user, password, client, &res))
        return bk_local_fail(rep, "denied", "wrong user name or password");
    if (res.kind != BK_AUTH_OK) {
        if (res.credentials) {
            bk_limit_fail(c->l->p.user_fails, ukey, time(NULL));
            if (client[0])
                bk_limit_fail(c->l->p.addr_fails, akey, time(NULL));
        }
        bk_store_event(c->store, "login-failed", user, NULL, NULL,
                       json_pack("{ss ss ss}", "addr", client, "protocol",
                                 proto, "reason", res.message));
        bk_local_fail(rep, "denied", res.message);
        bk_auth_result_clear(&res);
        return -1;
    }
    bk_limit_reset(c->l->p.user_fails, ukey);
    bk_store_event(c->store, "login", user, NULL, NULL,
                   json_pack("{ss ss}", "addr", client, "protocol", proto));
    r = bk_local_assign(c, user, res.groups, pool, proto, &d, rep);
    bk_auth_result_clear(&res);
    if (r)
        return r;
    bk_store_event(c->store, "launch", user, d.pool, d.id,
                   json_pack("{ss}", "protocol", proto));
    rep->result =
        json_pack("{ss ss ss}", "user", user, "desktop", d.id, "pool", d.pool);
    return 0;
}

/* A helpdesk view began or ended: the desktop's state and client stay
 * its user's; its user is told through the agent's banner. */
static int bk_local_view(struct bk_local_conn *c, const char *ev,
                         const struct bk_desktop *d, const char *viewer,
                         const char *client, struct bk_local_reply *rep)
{
    int start = !strcmp(ev, "connected");

    bk_store_event(c->store, "helpdesk_view", viewer, d->pool, d->id,
                   json_pack("{ss ss ss}", "phase", start ? "start" : "end",
                             "owner", d->user, "client", client));
    bk_mgr_view(c->l->p.mgr, d->id, viewer, start ? 1 : -1);
    rep->result = json_object();
    return 0;
}

/* The end of a session whose desktop is no longer the user's: only the
 * audit event (pool: the desktop's, "" when it is gone). */
static int bk_local_session_gone(struct bk_local_conn *c, const char *pool,
                                 const char *desktop, const char *user,
                                 const char *proto, const char *client,
                                 json_t *args, struct bk_local_reply *rep)
{
    bk_store_event(c->store, "disconnected", user, pool, desktop,
                   json_pack("{ss ss sO* sb}", "protocol", proto, "client",
                             client, "bytes", json_object_get(args, "bytes"),
                             "after_logoff", 1));
    rep->result = json_object();
    return 0;
}

static int bk_local_session(struct bk_local_conn *c, json_t *args,
                            struct bk_local_reply *rep)
{
    const char *ev, *desktop, *user, *proto, *client = "";
    char detail[128];
    struct bk_desktop d;
    enum bk_state to;
    int r = 0, known;

    if (dp_msg_string(args, "event", 1, 16, 1, &ev, detail, sizeof(detail)) ||
        dp_msg_string(args, "desktop", 1, BK_NAME_MAX, 1, &desktop, detail,
                      sizeof(detail)) ||
        dp_msg_string(args, "user", 1, BK_USER_MAX, 1, &user, detail,
                      sizeof(detail)) ||
        dp_msg_string(args, "protocol", 1, 16, 1, &proto, detail,
                      sizeof(detail)) ||
        (json_object_get(args, "client") &&
         dp_msg_string(args, "client", 0, BK_CLIENT_MAX, 1, &client, detail,
                       sizeof(detail))))
        return bk_local_fail(rep, "bad-request", detail);
    if (strcmp(ev, "connected") && strcmp(ev, "disconnected"))
        return bk_local_fail(rep, "bad-request",
                             "event: connected or disconnected");
    if (json_is_true(json_object_get(args, "view"))) {
        if (bk_store_desktop_get(c->store, desktop, &d))
            return bk_local_fail(rep, "unknown", "no such desktop");
        return bk_local_view(c, ev, &d, user, client, rep);
    }
    known = bk_store_desktop_get(c->store, desktop, &d) == 0;
    if (!known || strcmp(d.user, user) != 0) {
        /* A session that ends after its desktop left the user (logged
         * off, refreshed, deleted: the display is told to close it) still
         * ended: audited, and nothing else changes. */
        if (!strcmp(ev, "disconnected"))
            return bk_local_session_gone(c, known ? d.pool : "", desktop, user,
                                         proto, client, args, rep);
        return bk_local_fail(rep, "unknown", "not this user's desktop");
    }
    to = !strcmp(ev, "connected") ? BK_CONNECTED : BK_DISCONNECTED;
    /* the state and the client address change together */
    if (bk_state_in_use(d.state) && bk_store_begin(c->store) == 0) {
        if (d.state != to)
            r = bk_store_desktop_set_state(c->store, desktop, (int)d.state, to,
                                           NULL);
        if (!r)
            r = bk_store_desktop_set_client(c->store, desktop, client,
                                            to == BK_CONNECTED);
        if (r)
            bk_store_rollback(c->store);
        else
            bk_store_commit(c->store);
    }
    bk_store_event(c->store, ev, user, d.pool, desktop,
                   json_pack("{ss ss sO*}", "protocol", proto, "client", client,
                             "bytes", json_object_get(args, "bytes")));
    rep->result = json_object();
    return 0;
}

/*
 * An agent request of a display session: the display daemon asks for the
 * session's own desktop and user, the broker checks they still go
 * together, and this connection's thread waits for the agent's answer
 * (the manager's thread must not). The wait is shared with the manager's
 * callback: whoever finishes last frees it.
 */
#define BK_LOCAL_AGENT_MS 8000

struct bk_local_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs, done, status;
    json_t *result;
    char message[256];
};

static void bk_local_wait_put(struct bk_local_wait *w)
{
    int last;

    pthread_mutex_lock(&w->lock);
    last = --w->refs == 0;
    pthread_mutex_unlock(&w->lock);
    if (!last)
        return;
    json_decref(w->result);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

static void bk_local_agent_done(void *arg, int status, json_t *result,
                                const char *message)
{
    struct bk_local_wait *w = arg;

    pthread_mutex_lock(&w->lock);
    w->status = status;
    w->result = result ? json_incref(result) : NULL;
    snprintf(w->message, sizeof(w->message), "%s", message ? message : "");
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    bk_local_wait_put(w);
}

/* Waits for the manager's callback; the outcome into rep. */
static int bk_local_agent_wait(struct bk_local_wait *w,
                               struct bk_local_reply *rep)
{
    struct timespec until;
    int r = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += BK_LOCAL_AGENT_MS / 1000;
    pthread_mutex_lock(&w->lock);
    while (!w->done && r != ETIMEDOUT)
        r = pthread_cond_timedwait(&w->cond, &w->lock, &until);
    if (!w->done)
        r = bk_local_fail(rep, "timeout", "the desktop's agent did not answer");
    else if (w->status == -ENOTCONN)
        r = bk_local_fail(rep, "no-agent", w->message);
    else if (w->status)
        r = bk_local_fail(rep, "agent", w->message);
    else {
        rep->result = w->result ? json_incref(w->result) : json_object();
        r = 0;
    }
    pthread_mutex_unlock(&w->lock);
    bk_local_wait_put(w);
    return r;
}

static int bk_local_agent(struct bk_local_conn *c, json_t *args,
                          struct bk_local_reply *rep)
{
    const char *desktop, *user, *op;
    char detail[128];
    struct bk_desktop d;
    struct bk_local_wait *w;
    json_t *a = json_object_get(args, "args");

    if (dp_msg_string(args, "desktop", 1, BK_NAME_MAX, 1, &desktop, detail,
                      sizeof(detail)) ||
        dp_msg_string(args, "user", 1, BK_USER_MAX, 1, &user, detail,
                      sizeof(detail)) ||
        dp_msg_string(args, "op", 1, 16, 1, &op, detail, sizeof(detail)))
        return bk_local_fail(rep, "bad-request", detail);
    if (a && !json_is_object(a))
        return bk_local_fail(rep, "bad-request", "args: not an object");
    if (bk_store_desktop_get(c->store, desktop, &d) || strcmp(d.user, user))
        return bk_local_fail(rep, "unknown", "not this user's desktop");
    w = calloc(1, sizeof(*w));
    if (!w)
        return bk_local_fail(rep, "internal", "out of memory");
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->refs = 2; /* this thread and the callback */
    switch (bk_mgr_agent(c->l->p.mgr, desktop, op, a ? json_deep_copy(a) : NULL,
                         bk_local_agent_done, w)) {
    case 0: return bk_local_agent_wait(w, rep);
    case -EINVAL:
        bk_local_fail(rep, "bad-request", "op: not an agent request allowed");
        break;
    default: bk_local_fail(rep, "internal", "out of memory");
    }
    w->refs = 1; /* the callback never comes */
    bk_local_wait_put(w);
    return -1;
}

/* --- connections ----------------------------------------------------------
 */

static void bk_local_send(int fd, char *line)
{
    size_t off = 0, n = line ? strlen(line) : 0;

    while (off < n) { /* replies are short: a blocking write */
        ssize_t w = send(fd, line + off, n - off, MSG_NOSIGNAL);

        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(line);
}

static void bk_local_line(void *arg, char *line, size_t len)
{
    struct bk_local_conn *c = arg;
    struct bk_local_reply rep = {0};
    struct dp_msg m;
    const char *code = NULL;
    char detail[128];
    int r;

    if (!line) { /* over-long line */
        bk_local_send(c->fd, dp_msg_reply_error(0, "line-too-long",
                                                "lines end within 64 KiB"));
        return;
    }
    if (dp_msg_parse(line, len, &m, &code, detail, sizeof(detail))) {
        bk_local_send(c->fd, dp_msg_reply_error(0, code, detail));
        return;
    }
    if (m.kind != DP_MSG_REQUEST) {
        dp_msg_free(&m);
        return; /* events (a display's hello) need no answer */
    }
    if (!strcmp(m.name, "redeem"))
        r = bk_local_redeem(c, m.body, &rep);
    else if (!strcmp(m.name, "login"))
        r = bk_local_login(c, m.body, &rep);
    else if (!strcmp(m.name, "session"))
        r = bk_local_session(c, m.body, &rep);
    else if (!strcmp(m.name, "agent"))
        r = bk_local_agent(c, m.body, &rep);
    else
        r = bk_local_fail(&rep, "unknown-op", m.name);
    bk_local_send(c->fd, r ? dp_msg_reply_error(m.id, rep.code, rep.message)
                           : dp_msg_reply_ok(m.id, rep.result));
    dp_msg_free(&m);
}

static void *bk_local_conn_main(void *arg)
{
    struct bk_local_conn *c = arg;
    struct dp_lines lines;
    char buf[8192];

    if (dp_lines_init(&lines) == 0) {
        bk_local_send(
            c->fd,
            dp_msg_event("hello", json_pack("{si ss}", "version", 1, "service",
                                            "deskpool-broker")));
        for (;;) {
            struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
                                  {.fd = c->l->stop_pipe[0], .events = POLLIN}};
            ssize_t n;

            if (poll(p, 2, -1) < 0 || p[1].revents)
                break;
            n = read(c->fd, buf, sizeof(buf));
            if (n <= 0)
                break;
            dp_lines_feed(&lines, buf, (size_t)n, bk_local_line, c);
        }
        dp_lines_free(&lines);
    }
    pthread_mutex_lock(&c->l->lock);
    c->done = 1;
    pthread_mutex_unlock(&c->l->lock);
    return NULL;
}

/* Joins finished connection threads; returns a free slot or -1. */
static int bk_local_slot(struct bk_local *l)
{
    int i, free_slot = -1;

    pthread_mutex_lock(&l->lock);
    for (i = 0; i < BK_LOCAL_MAX_CONNS; i++) {
        struct bk_local_conn *c = l->conns[i];

        if (c && c->done) {
            pthread_join(c->thread, NULL);
            close(c->fd);
            bk_store_close(c->store);
            free(c);
            l->conns[i] = c = NULL;
        }
        if (!c && free_slot < 0)
            free_slot = i;
    }
    pthread_mutex_unlock(&l->lock);
    return free_slot;
}

/* Only root and the broker's own user may talk to it. */
static int bk_local_peer_ok(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
           (cred.uid == 0 || cred.uid == geteuid());
}

static void bk_local_accept(struct bk_local *l, int fd)
{
    struct bk_local_conn *c;
    char err[256];
    int slot = bk_local_slot(l);

    if (!bk_local_peer_ok(fd) || slot < 0) {
        bk_local_send(
            fd, dp_msg_event("error",
                             json_pack("{ss ss}", "error", "refused", "message",
                                       slot < 0 ? "too many "
                                                  "connections"
                                                : "not allowed")));
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c || bk_store_open(&c->store, l->p.db_path, err, sizeof(err))) {
        free(c);
        close(fd);
        return;
    }
    c->l = l;
    c->fd = fd;
    pthread_mutex_lock(&l->lock);
    l->conns[slot] = c;
    if (pthread_create(&c->thread, NULL, bk_local_conn_main, c)) {
        l->conns[slot] = NULL;
        pthread_mutex_unlock(&l->lock);
        bk_store_close(c->store);
        close(fd);
        free(c);
        return;
    }
    pthread_mutex_unlock(&l->lock);
}

static void *bk_local_accept_main(void *arg)
{
    struct bk_local *l = arg;

    for (;;) {
        struct pollfd p[2] = {{.fd = l->lfd, .events = POLLIN},
                              {.fd = l->stop_pipe[0], .events = POLLIN}};
        int fd;

        if (poll(p, 2, -1) < 0 || p[1].revents)
            break;
        fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            bk_local_accept(l, fd);
    }
    return NULL;
}

int bk_local_start(struct bk_local **out, const struct bk_local_parts *p,
                   char *err, size_t err_size)
{
    struct bk_local *l = calloc(1, sizeof(*l));
    int r;

    if (!l)
        return -ENOMEM;
    l->p = *p;
    l->stop_pipe[0] = l->stop_pipe[1] = -1;
    pthread_mutex_init(&l->lock, NULL);
    l->lfd = dp_unix_listen(p->cfg->local_socket, 64, 0);
    if (l->lfd < 0)
        snprintf(err, err_size, "%s: %s", p->cfg->local_socket,
                 strerror(-l->lfd));
    if (l->lfd < 0 || pipe2(l->stop_pipe, O_CLOEXEC)) {
        r = l->lfd < 0 ? l->lfd : -errno;
        bk_local_stop(l);
        return r;
    }
    r = -pthread_create(&l->accept_thread, NULL, bk_local_accept_main, l);
    if (r) {
        bk_local_stop(l);
        return r;
    }
    l->started = 1;
    *out = l;
    return 0;
}

void bk_local_stop(struct bk_local *l)
{
    int i;

    if (!l)
        return;
    if (l->stop_pipe[1] >= 0) /* wakes every thread: nobody reads it */
        close(l->stop_pipe[1]);
    if (l->started)
        pthread_join(l->accept_thread, NULL);
    for (i = 0; i < BK_LOCAL_MAX_CONNS; i++) {
        struct bk_local_conn *c = l->conns[i];

        if (!c)
            continue;
        pthread_join(c->thread, NULL);
        close(c->fd);
        bk_store_close(c->store);
        free(c);
    }
    if (l->lfd >= 0) {
        close(l->lfd);
        unlink(l->p.cfg->local_socket);
    }
    if (l->stop_pipe[0] >= 0)
        close(l->stop_pipe[0]);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
