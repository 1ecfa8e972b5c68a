/*
 * bk_mgr.c - the pool manager thread (see bk_mgr.h).
 *
 * The thread's loop polls an eventfd (kicks and commands) and the agent
 * channel of every desktop it knows; a reconcile pass compares the store
 * with what runs and acts. VM operations are synchronous and bounded
 * (libdeskpool-hv); they run here, never on the HTTP thread.
 *
 * Order of writes, so that a kill -9 anywhere converges on restart:
 *   provision: row PROVISIONING -> create + start VM (or clone it from the
 *              pool's template) -> row BOOTING
 *   delete:    row DELETING -> delete VM -> remove row
 *   refresh:   row REFRESHING -> power off, new disk, start (instant: delete
 *              the VM, clone anew) -> row BOOTING
 * Adoption at start finishes or undoes whatever a crash interrupted.
 *
 * Instant pools: a template takes 15-120 s to make, so it is made on a
 * thread of its own (struct bk_mgr_tmpl, one at a time), never on the
 * manager's; until it is there the pool provisions by booting. A clone
 * (a few hundred ms) runs here. Its agent is personalised by this thread
 * through its own agent connection, and the desktop is READY once the
 * agent said ready and answered personalise.
 */
#include "bk_mgr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bk_pool.h"
#include "bk_store.h"
#include "dp_time.h"
#include "dp_token.h"
#include "hv_agent.h"
#include "hv_template.h"
#include "hv_vm.h"

#define BK_MGR_MAX_POLL  1024
#define BK_MGR_BACKOFF_S 300 /* longest wait after failures */
/* A spare a launch took is replaced this much later: making one (an
 * instant clone's QEMU start, or a whole boot) would take CPU from the
 * user's session start on a small host (the display's session process,
 * the first frame: a few hundred ms). Only that replacement waits; min,
 * waiting launches and anything else never do. */
#define BK_MGR_SPARE_GRACE_MS 2000

/* What the manager keeps about a desktop while it runs. */
struct bk_mgr_desk {
    struct bk_mgr_desk *next;
    struct bk_mgr *m;
    char id[BK_NAME_MAX + 1];
    struct hv_agent *agent;
    char prepared_for[BK_USER_MAX + 1]; /* prepare-session sent for */
    uint64_t boot_started_ms;
    int seen; /* still in the store (this pass) */
    /* instant clones: personalise sent on this boot / answered */
    int personalising, personalise_done;
    int spare;         /* READY and unassigned when last seen */
    uint64_t taken_ms; /* when it was seen assigned after that (a launch) */
};

/*
 * A template being made on a thread of its own. The manager and the
 * thread share it under its own lock: the manager may stop (and be freed)
 * while the thread still waits for a guest, so whichever lets go last
 * frees it. The thread wakes the manager through its own copy of the
 * eventfd.
 */
struct bk_mgr_tmpl {
    struct bk_mgr_tmpl *next;
    pthread_mutex_t lock;
    int refs; /* the manager and the thread */
    int kick_fd;
    char state_dir[sizeof(((struct bk_config *)0)->vm_dir)];
    char qemu_user[sizeof(((struct bk_config *)0)->qemu_user)];
    char pool[BK_NAME_MAX + 1]; /* the pool it was made for first */
    char id[HV_ID_MAX + 1];     /* the template id of the shape */
    struct hv_spec shape;
    /* under lock: */
    int done;
    int status;
    char err[512];
    char made[HV_ID_MAX + 1]; /* the id hv_template_create gave */
    /* the manager's: */
    uint64_t retry_ms; /* a failed build is tried again after this */
    int reported;
};

struct bk_mgr_cmd {
    struct bk_mgr_cmd *next;
    char desktop[BK_NAME_MAX + 1];
    char op[16];
    uint64_t tag;
    /* an agent request (bk_mgr_agent): its arguments (owned) and whom to
     * tell; done is NULL for the other commands */
    json_t *args;
    bk_mgr_agent_fn done;
    void *done_arg;
};

struct bk_mgr_res_node {
    struct bk_mgr_res_node *next;
    struct bk_mgr_result r;
};

struct bk_mgr_backoff {
    struct bk_mgr_backoff *next;
    char pool[BK_NAME_MAX + 1];
    uint64_t not_before_ms;
};

/* Launches waiting for a desktop, per pool (under the lock). */
struct bk_mgr_want {
    struct bk_mgr_want *next;
    char pool[BK_NAME_MAX + 1];
    int waiting;
};

/* Helpdesk views of a desktop (under the lock): the banner its agent
 * should show, and whether the agent still has to be told. */
struct bk_mgr_viewing {
    struct bk_mgr_viewing *next;
    char desktop[BK_NAME_MAX + 1];
    char viewer[BK_USER_MAX + 1]; /* the latest to start viewing */
    int count;                    /* views running */
    int dirty;   /* the agent has not been sent the current text */
    int sending; /* a message request is on its way */
    uint64_t retry_ms, dirty_since_ms;
};

struct bk_mgr {
    struct bk_config cfg;
    struct bk_store *store;
    struct hv_host *host;
    pthread_t thread;
    int thread_started;
    int efd;
    volatile int stop;
    void (*changed)(void *arg);
    void *arg;
    pthread_mutex_t lock; /* cmds and results */
    struct bk_mgr_cmd *cmds;
    struct bk_mgr_res_node *results;
    struct bk_mgr_desk *desks;
    struct bk_mgr_backoff *backoffs;
    struct bk_mgr_want *wants;
    struct bk_mgr_viewing *views;
    uint64_t next_pass_ms;
    struct bk_stats *stats;
    uint64_t next_stats_ms;
    struct bk_mgr_tmpl *tmpls; /* templates being made, or failed */
    uint64_t instant_sig;      /* bk_mgr_instant_sig() of the last pass */
    uint64_t spare_due_ms;     /* a replacement spare waits until (0: none) */
};

static void bk_mgr_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void bk_mgr_log(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "deskpool-broker: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void bk_mgr_changed(struct bk_mgr *m)
{
    if (m->changed)
        m->changed(m->arg);
}

/* --- desktops' runtime ------------------------------------------------------
 */

static struct bk_mgr_desk *bk_mgr_desk_find(struct bk_mgr *m, const char *id)
{
    struct bk_mgr_desk *d;

    for (d = m->desks; d; d = d->next)
        if (!strcmp(d->id, id))
            return d;
    return NULL;
}

static void bk_mgr_desk_drop(struct bk_mgr *m, const char *id)
{
    struct bk_mgr_desk **pp = &m->desks;

    while (*pp) {
        struct bk_mgr_desk *d = *pp;

        if (!strcmp(d->id, id)) {
            *pp = d->next;
            hv_agent_close(d->agent);
            free(d);
            return;
        }
        pp = &d->next;
    }
}

static void bk_mgr_agent_event(void *arg, const char *name, json_t *data);
static void bk_mgr_view_resend(struct bk_mgr *m, const char *desktop);
static int bk_mgr_logoff(struct bk_mgr *m, struct bk_desktop *d, char *err,
                         size_t err_size);

/* prepare-session is fire and forget: a guest that missed it still works
 * (it only does not show who the desktop belongs to). */
static void bk_mgr_ignore_reply(void *arg, int status, json_t *result,
                                const char *code, const char *message)
{
    (void)arg;
    (void)result;
    (void)code;
    if (status)
        bk_mgr_log("agent request failed: %s", message);
}

static const struct hv_agent_callbacks bk_mgr_agent_cb = {
    .event = bk_mgr_agent_event,
};

/* The runtime entry of a running desktop, its agent channel open. */
static struct bk_mgr_desk *bk_mgr_desk_attach(struct bk_mgr *m, const char *id)
{
    struct bk_mgr_desk *d = bk_mgr_desk_find(m, id);
    char path[256];

    if (d)
        return d;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->m = m;
    snprintf(d->id, sizeof(d->id), "%s", id);
    d->boot_started_ms = dp_time_now_ms();
    if (hv_vm_path(m->host, id, "agent.sock", path, sizeof(path)) == 0)
        hv_agent_open(&d->agent, path, &bk_mgr_agent_cb, d, 0);
    d->next = m->desks;
    m->desks = d;
    return d;
}

/* --- store helpers ------------------------------------------------------- */

static void bk_mgr_event(struct bk_mgr *m, const char *kind, const char *pool,
                         const char *desktop, const char *user, json_t *detail)
{
    bk_store_event(m->store, kind, user, pool, desktop, detail);
}

static int bk_mgr_set_state(struct bk_mgr *m, const struct bk_desktop *d,
                            enum bk_state to, const char *error)
{
    int r =
        bk_store_desktop_set_state(m->store, d->id, (int)d->state, to, error);

    if (r == 0) {
        struct bk_mgr_desk *rt = bk_mgr_desk_find(m, d->id);

        /* a launch may take it before the next pass sees it */
        if (rt && to == BK_READY)
            rt->spare = !d->user[0];
        bk_mgr_event(m, "state", d->pool, d->id, d->user,
                     json_pack("{ss ss ss}", "from", bk_state_name(d->state),
                               "to", bk_state_name(to), "error",
                               error ? error : ""));
        bk_mgr_changed(m);
    }
    return r;
}

/* --- agent events -------------------------------------------------------- */

/* An instant clone still has to get its own identity on this boot: until
 * its agent answered personalise it is not READY. */
static int bk_mgr_unpersonalised(const struct bk_desktop *d,
                                 const struct bk_mgr_desk *rt)
{
    return d->state == BK_BOOTING && !strcmp(d->provisioning, "instant") &&
           !d->personalised && !rt->personalise_done;
}

static void bk_mgr_personalised(void *arg, int status, json_t *result,
                                const char *code, const char *message)
{
    struct bk_mgr_desk *rt = arg;
    struct bk_mgr *m = rt->m;
    struct hv_agent_state st = {0};
    struct bk_desktop d;

    (void)result;
    if (status == -ECANCELED)
        return; /* the channel was closed: the desktop is going */
    rt->personalising = 0;
    if (status == -ECONNRESET)
        return; /* asked again on the next connection's hello */
    rt->personalise_done = 1;
    if (bk_store_desktop_get(m->store, rt->id, &d) != 0)
        return;
    if (status == 0) {
        bk_store_desktop_set_made(m->store, rt->id, "instant", 1);
        bk_mgr_event(m, "personalised", d.pool, d.id, d.user,
                     json_pack("{ss}", "hostname", d.id));
    } else {
        /* it runs all the same, as a twin of its template; the store
         * says it was not personalised */
        bk_mgr_log("%s: personalise: %s%s%s", d.id, code ? code : "",
                   code && code[0] ? ": " : "",
                   message && message[0] ? message : strerror(-status));
        bk_mgr_event(
            m, "personalise-failed", d.pool, d.id, d.user,
            json_pack("{ss}", "error",
                      message && message[0] ? message : strerror(-status)));
    }
    if (rt->agent)
        hv_agent_state(rt->agent, &st);
    if (d.state == BK_BOOTING && st.ready)
        bk_mgr_set_state(m, &d, BK_READY, NULL);
    bk_mgr_changed(m);
}

/* Gives a clone its own hostname (its desktop id), a random machine-id,
 * the host's clock and a random seed; the reply arrives through the
 * agent's poll. */
static void bk_mgr_personalise(struct bk_mgr_desk *rt)
{
    json_t *args = hv_template_personalise_args(rt->id);

    if (args && hv_agent_request(rt->agent, "personalise", args, 0,
                                 bk_mgr_personalised, rt) == 0)
        rt->personalising = 1;
    else
        rt->personalise_done = 1; /* not personalised; READY anyway */
}

static void bk_mgr_agent_event(void *arg, const char *name, json_t *data)
{
    struct bk_mgr_desk *rt = arg;
    struct bk_mgr *m = rt->m;
    struct bk_desktop d;

    (void)data;
    if (!strcmp(name, "ready"))
        bk_mgr_view_resend(m, rt->id); /* a rebooted guest forgot it */
    if (bk_store_desktop_get(m->store, rt->id, &d) != 0)
        return;
    /* A clone's agent runs already: it answers our hello with its own and
     * says ready at once. */
    if (!strcmp(name, "hello") && bk_mgr_unpersonalised(&d, rt) &&
        !rt->personalising) {
        bk_mgr_personalise(rt);
    } else if (!strcmp(name, "ready") && bk_state_in_use(d.state)) {
        /* the guest restarted under its user: tell it again whose it is */
        rt->prepared_for[0] = '\0';
        bk_mgr_kick(m);
    } else if (!strcmp(name, "ready") && d.state == BK_BOOTING) {
        if (!bk_mgr_unpersonalised(&d, rt)) /* else when personalised */
            bk_mgr_set_state(m, &d, BK_READY, NULL);
    } else if (!strcmp(name, "logout") && bk_state_in_use(d.state)) {
        bk_mgr_set_state(m, &d, BK_LOGGED_OFF, NULL);
        bk_mgr_kick(m); /* refresh it */
    } else if (!strcmp(name, "login")) {
        bk_mgr_event(m, "desktop-login", d.pool, d.id, d.user, NULL);
    }
}

/* --- VM operations ------------------------------------------------------- */

static void bk_mgr_gc_note(void *arg, const char *id, const char *why)
{
    (void)arg;
    bk_mgr_log("template %s deleted: %s", id, why);
}

/* Is template id the current one of an instant pool (not being deleted)? */
static int bk_mgr_template_wanted(struct bk_mgr *m, json_t *pools,
                                  const char *id)
{
    char tid[HV_ID_MAX + 1], err[512];
    struct hv_spec shape;
    size_t i;
    json_t *p;

    json_array_foreach(pools, i, p)
    {
        if (bk_pool_instant(p) &&
            !json_is_true(json_object_get(p, "deleting")) &&
            bk_pool_spec(p, "template", &shape, err, sizeof(err)) == 0 &&
            hv_template_id(m->host, &shape, tid, err, sizeof(err)) == 0 &&
            !strcmp(tid, id))
            return 1;
    }
    return 0;
}

/* Templates no VM uses any more go when stale (or left incomplete by a
 * crash), or when no instant pool has their shape now (the pool was
 * deleted or changed); the current template of a pool stays for its next
 * clone even while no desktop uses it. */
static void bk_mgr_template_gc(struct bk_mgr *m)
{
    struct hv_template_info *v = NULL;
    json_t *pools = NULL;
    char err[512];
    size_t n = 0, i;

    hv_template_gc(m->host, 0, bk_mgr_gc_note, m);
    if (hv_template_list(m->host, &v, &n) == 0 && n)
        pools = bk_store_pool_list(m->store);
    for (i = 0; pools && i < n; i++) {
        if (!v[i].complete || v[i].stale || v[i].users > 0 ||
            bk_mgr_template_wanted(m, pools, v[i].id))
            continue;
        /* -EBUSY: a clone is being made from it right now */
        if (hv_template_delete(m->host, v[i].id, err, sizeof(err)) == 0)
            bk_mgr_gc_note(m, v[i].id, "no instant pool has its shape");
    }
    json_decref(pools);
    free(v);
}

/* Deletes a desktop: row DELETING, VM gone, row removed. */
static int bk_mgr_delete(struct bk_mgr *m, const struct bk_desktop *d)
{
    char err[512];
    int r;

    if (d->state != BK_DELETING &&
        bk_store_desktop_set_state(m->store, d->id, -1, BK_DELETING, NULL))
        return -EIO;
    bk_mgr_desk_drop(m, d->id);
    r = hv_vm_delete(m->host, d->id, err, sizeof(err));
    if (r && r != -ENOENT) {
        bk_mgr_log("%s: delete: %s", d->id, err);
        return r;
    }
    bk_store_desktop_remove(m->store, d->id);
    bk_mgr_event(m, "deleted", d->pool, d->id, "", NULL);
    bk_mgr_changed(m);
    bk_mgr_template_gc(m);
    return 0;
}

/* Starts the VM (if stopped) and marks it BOOTING unless a user holds it. */
static int bk_mgr_boot(struct bk_mgr *m, const struct bk_desktop *d, char *err,
                       size_t err_size)
{
    struct bk_mgr_desk *rt;
    int r = hv_vm_start(m->host, d->id, err, err_size);

    if (r && r != -EALREADY)
        return r;
    bk_mgr_desk_drop(m, d->id); /* a fresh agent channel for a new boot */
    rt = bk_mgr_desk_attach(m, d->id);
    if (rt)
        rt->boot_started_ms = dp_time_now_ms();
    if (!bk_state_in_use(d->state) && d->state != BK_BOOTING)
        bk_store_desktop_set_state(m->store, d->id, -1, BK_BOOTING, NULL);
    bk_mgr_changed(m);
    return 0;
}

/* --- templates of instant pools -------------------------------------------
 */

#define BK_MGR_TMPL_RETRY_S 300 /* after a failed build */

static void bk_mgr_tmpl_unref(struct bk_mgr_tmpl *t)
{
    int last;

    pthread_mutex_lock(&t->lock);
    last = --t->refs == 0;
    pthread_mutex_unlock(&t->lock);
    if (!last)
        return;
    if (t->kick_fd >= 0)
        close(t->kick_fd);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* The build thread: its own hv_host (the manager's is not shared between
 * threads), the template made or found, the manager woken. */
static void *bk_mgr_tmpl_main(void *arg)
{
    struct bk_mgr_tmpl *t = arg;
    struct hv_host_config hc = {.state_dir = t->state_dir,
                                .qemu_user =
                                    t->qemu_user[0] ? t->qemu_user : NULL,
                                .quiet = 1};
    struct hv_host *h = NULL;
    char id[HV_ID_MAX + 1] = "", err[512] = "";
    uint64_t one = 1;
    int r = hv_host_open(&h, &hc, err, sizeof(err));

    if (!r)
        r = hv_template_create(h, &t->shape, 0, id, NULL, err, sizeof(err));
    if (h)
        hv_host_close(h);
    pthread_mutex_lock(&t->lock);
    t->status = r;
    snprintf(t->err, sizeof(t->err), "%s", r ? err : "");
    snprintf(t->made, sizeof(t->made), "%s", id);
    t->done = 1;
    pthread_mutex_unlock(&t->lock);
    if (write(t->kick_fd, &one, sizeof(one)) < 0) {
        /* the counter is full: the manager wakes anyway */
    }
    bk_mgr_tmpl_unref(t);
    return NULL;
}

/* Reports finished builds; forgets them (a failed one after a while, so
 * that it is tried again). */
static void bk_mgr_tmpl_poll(struct bk_mgr *m)
{
    struct bk_mgr_tmpl *t, **pp;
    uint64_t now = dp_time_now_ms();

    for (pp = &m->tmpls; (t = *pp);) {
        int done, status;
        char err[512], made[HV_ID_MAX + 1];

        pthread_mutex_lock(&t->lock);
        done = t->done;
        status = t->status;
        snprintf(err, sizeof(err), "%s", t->err);
        snprintf(made, sizeof(made), "%s", t->made);
        pthread_mutex_unlock(&t->lock);
        if (done && !t->reported) {
            t->reported = 1;
            t->retry_ms = now + BK_MGR_TMPL_RETRY_S * 1000ull;
            if (status == 0)
                bk_mgr_log("%s: template %s ready", t->pool, made);
            else
                bk_mgr_log("%s: template %s: %s", t->pool, t->id, err);
            bk_mgr_event(m, "template", t->pool, "", "",
                         json_pack("{ss ss ss}", "state",
                                   status ? "failed" : "ready", "id", t->id,
                                   "error", status ? err : ""));
            bk_mgr_changed(m);
        }
        if (done && (status == 0 || now >= t->retry_ms)) {
            *pp = t->next;
            bk_mgr_tmpl_unref(t);
            continue;
        }
        pp = &t->next;
    }
}

/* Starts making template tid for pool on a thread of its own, unless it
 * is being made, failed lately, or another build runs (one at a time: a
 * template boots a guest). */
static void bk_mgr_tmpl_build(struct bk_mgr *m, const json_t *pool,
                              const char *tid, const struct hv_spec *shape)
{
    struct bk_mgr_tmpl *t;
    pthread_attr_t attr;
    int r;

    for (t = m->tmpls; t; t = t->next) {
        int done;

        pthread_mutex_lock(&t->lock);
        done = t->done;
        pthread_mutex_unlock(&t->lock);
        if (!strcmp(t->id, tid) || !done)
            return;
    }
    t = calloc(1, sizeof(*t));
    if (!t)
        return;
    pthread_mutex_init(&t->lock, NULL);
    t->refs = 2;
    t->kick_fd = fcntl(m->efd, F_DUPFD_CLOEXEC, 0);
    snprintf(t->state_dir, sizeof(t->state_dir), "%s", m->cfg.vm_dir);
    snprintf(t->qemu_user, sizeof(t->qemu_user), "%s", m->cfg.qemu_user);
    snprintf(t->pool, sizeof(t->pool), "%s", bk_pool_str(pool, "name"));
    snprintf(t->id, sizeof(t->id), "%s", tid);
    t->shape = *shape;
    r = t->kick_fd < 0 ? -errno : -pthread_attr_init(&attr);
    if (!r) {
        /* detached: a stopping broker does not wait for a guest to boot;
         * an interrupted build is collected at the next start */
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        r = -pthread_create(&(pthread_t){0}, &attr, bk_mgr_tmpl_main, t);
        pthread_attr_destroy(&attr);
    }
    if (r) {
        bk_mgr_log("%s: cannot start making template %s: %s", t->pool, tid,
                   strerror(-r));
        t->refs = 1;
        bk_mgr_tmpl_unref(t);
        return;
    }
    t->next = m->tmpls;
    m->tmpls = t;
    bk_mgr_log("%s: making template %s", t->pool, tid);
    bk_mgr_event(
        m, "template", t->pool, "", "",
        json_pack("{ss ss ss}", "state", "building", "id", tid, "error", ""));
}

/*
 * The template an instant pool's desktops are cloned from: 1 with its id
 * in tid when it is ready; else 0, and it is being made (or failed
 * lately). The id hashes the shape and its files as they are now, so a
 * golden image changed in place gives a new id, hence a new template.
 * quiet: no log when the shape has no template id (a missing file: the
 * provisioning attempt says so).
 */
static int bk_mgr_template(struct bk_mgr *m, const json_t *pool, char *tid,
                           int quiet)
{
    struct hv_spec shape;
    char err[512];
    int r;

    if (bk_pool_spec(pool, "template", &shape, err, sizeof(err)) ||
        hv_template_id(m->host, &shape, tid, err, sizeof(err))) {
        if (!quiet)
            bk_mgr_log("%s: no template: %s", bk_pool_str(pool, "name"), err);
        return 0;
    }
    r = hv_template_check(m->host, tid, err, sizeof(err));
    if (r == 0)
        return 1;
    if (r != -ENOENT)
        bk_mgr_log("%s: template %s: %s", bk_pool_str(pool, "name"), tid, err);
    bk_mgr_tmpl_build(m, pool, tid, &shape);
    return 0;
}

/* Makes VM id as a running clone of template tid. Its agent is left to
 * this thread's own connection (personalise on its hello). */
static int bk_mgr_clone(struct bk_mgr *m, const char *tid, const char *id,
                        char *err, size_t err_size)
{
    struct hv_clone_options o = {.name = id, .personalise_timeout_ms = -1};
    struct hv_clone_result cr;
    int r = hv_template_clone(m->host, tid, id, &o, &cr, err, err_size);

    if (r == 0)
        bk_mgr_log("%s: cloned from template %s: running %.0f ms after exec",
                   id, tid, cr.exec_to_running_ms);
    return r;
}

/* Refresh: a clean disk from the golden image, booted again. A floating
 * desktop loses its user; a desktop of an older image generation is
 * deleted instead (the pool makes a new one from the new image). */
static int bk_mgr_refresh(struct bk_mgr *m, const struct bk_desktop *d,
                          const json_t *pool)
{
    char err[512], tid[HV_ID_MAX + 1];
    const char *made = "boot";
    int r;

    if (pool &&
        d->image_gen < json_integer_value(json_object_get(pool, "image_gen")))
        return bk_mgr_delete(m, d);
    if (d->state != BK_REFRESHING &&
        bk_store_desktop_set_state(m->store, d->id, -1, BK_REFRESHING, NULL))
        return -EIO;
    if (!pool || !bk_pool_dedicated(pool))
        bk_store_desktop_unassign(m->store, d->id);
    bk_mgr_desk_drop(m, d->id);
    if (pool && bk_pool_instant(pool) && bk_mgr_template(m, pool, tid, 0)) {
        /* a fresh clone is quicker than a fresh disk and a cold boot */
        r = hv_vm_delete(m->host, d->id, err, sizeof(err));
        if (r && r != -ENOENT)
            goto fail;
        r = bk_mgr_clone(m, tid, d->id, err, sizeof(err));
        if (r)
            goto fail;
        made = "instant";
    } else {
        r = hv_vm_poweroff(m->host, d->id, err, sizeof(err));
        if (r < 0 && r != -ENOTCONN)
            goto fail;
        r = hv_vm_refresh(m->host, d->id, err, sizeof(err));
        if (r)
            goto fail;
        r = hv_vm_start(m->host, d->id, err, sizeof(err));
        if (r)
            goto fail;
    }
    bk_store_desktop_set_made(m->store, d->id, made, 0);
    bk_store_desktop_set_state(m->store, d->id, BK_REFRESHING, BK_BOOTING,
                               NULL);
    bk_mgr_desk_attach(m, d->id);
    bk_mgr_event(m, "refreshed", d->pool, d->id, "",
                 json_pack("{ss}", "provisioning", made));
    if (!strcmp(made, "instant"))
        bk_mgr_template_gc(m); /* its old template may be stale now */
    bk_mgr_changed(m);
    return 0;
fail:
    bk_mgr_log("%s: refresh: %s", d->id, err);
    bk_store_desktop_set_state(m->store, d->id, -1, BK_ERROR, err);
    bk_mgr_changed(m);
    return r;
}

/* A new desktop id: the pool's name and 6 random characters. */
static int bk_mgr_new_id(const char *pool, char *id, size_t size)
{
    char suffix[7];

    if (dp_token_random_text(suffix, 6, "abcdefghijklmnopqrstuvwxyz0123456789"))
        return -EIO;
    snprintf(id, size, "%s-%s", pool, suffix);
    return 0;
}

static void bk_mgr_backoff(struct bk_mgr *m, const char *pool, int errors)
{
    struct bk_mgr_backoff *b;
    uint64_t wait_s = errors >= 9 ? BK_MGR_BACKOFF_S : (1u << errors);

    if (wait_s > BK_MGR_BACKOFF_S)
        wait_s = BK_MGR_BACKOFF_S;
    for (b = m->backoffs; b; b = b->next)
        if (!strcmp(b->pool, pool))
            break;
    if (!b) {
        b = calloc(1, sizeof(*b));
        if (!b)
            return;
        snprintf(b->pool, sizeof(b->pool), "%s", pool);
        b->next = m->backoffs;
        m->backoffs = b;
    }
    b->not_before_ms = dp_time_now_ms() + wait_s * 1000;
}

/* A pool waits after failures, unless an admin reset its error count
 * (resume, or a changed pool). */
static int bk_mgr_backing_off(struct bk_mgr *m, const json_t *pool)
{
    const char *name = bk_pool_str(pool, "name");
    struct bk_mgr_backoff *b;

    if (bk_pool_int(pool, "errors") == 0)
        return 0;
    for (b = m->backoffs; b; b = b->next)
        if (!strcmp(b->pool, name))
            return dp_time_now_ms() < b->not_before_ms;
    return 0;
}

static void bk_mgr_provision_failed(struct bk_mgr *m, const json_t *pool,
                                    const char *id, const char *err)
{
    const char *name = bk_pool_str(pool, "name");
    json_t *p;

    bk_mgr_log("%s: provisioning failed: %s", id, err);
    bk_store_desktop_remove(m->store, id);
    bk_store_pool_result(m->store, name, err, BK_MGR_RESTRAIN_AFTER);
    p = bk_store_pool_get(m->store, name);
    bk_mgr_backoff(m, name, bk_pool_int(p, "errors"));
    bk_mgr_event(m, "provision-failed", name, id, "",
                 json_pack("{ss sb}", "error", err, "restrained",
                           json_is_true(json_object_get(p, "restrained"))));
    json_decref(p);
    bk_mgr_changed(m);
}

/* Makes one desktop for pool: row first, then the VM. */
static int bk_mgr_provision(struct bk_mgr *m, const json_t *pool)
{
    const char *name = bk_pool_str(pool, "name");
    char id[BK_NAME_MAX + 1], err[512], tid[HV_ID_MAX + 1];
    const char *made = "boot";
    struct hv_spec spec;
    int r;

    if (bk_mgr_new_id(name, id, sizeof(id)) ||
        bk_store_desktop_insert(
            m->store, id, name, BK_PROVISIONING,
            json_integer_value(json_object_get(pool, "image_gen"))))
        return -EIO;
    r = bk_pool_spec(pool, id, &spec, err, sizeof(err));
    /* Instant: a clone of the pool's template; while that is being made,
     * desktops boot as in a boot pool (launches keep working). */
    if (!r && bk_pool_instant(pool) && bk_mgr_template(m, pool, tid, 0)) {
        r = bk_mgr_clone(m, tid, id, err, sizeof(err));
        if (r == 0) {
            made = "instant";
        } else if (r == -ENOENT || r == -ESTALE) {
            bk_mgr_log("%s: %s: booting instead", id, err);
            r = 0; /* gone meanwhile: boot this one */
        }
    }
    if (!r && !strcmp(made, "boot"))
        r = hv_vm_create(m->host, &spec, err, sizeof(err));
    if (!r && !strcmp(made, "boot")) {
        r = hv_vm_start(m->host, id, err, sizeof(err));
        if (r) {
            char e2[256];

            hv_vm_delete(m->host, id, e2, sizeof(e2));
        }
    }
    if (r) {
        bk_mgr_provision_failed(m, pool, id, err);
        return r;
    }
    bk_store_desktop_set_made(m->store, id, made, 0);
    bk_store_desktop_set_state(m->store, id, BK_PROVISIONING, BK_BOOTING, NULL);
    bk_store_pool_result(m->store, name, NULL, 0);
    bk_mgr_desk_attach(m, id);
    bk_mgr_event(m, "provisioned", name, id, "",
                 json_pack("{ss}", "provisioning", made));
    bk_mgr_changed(m);
    return 0;
}

/* --- reconcile ----------------------------------------------------------- */

static json_t *bk_mgr_pool_of(json_t *pools, const char *name)
{
    size_t i;
    json_t *p;

    json_array_foreach(pools, i, p)
    {
        if (!strcmp(bk_pool_str(p, "name"), name))
            return p;
    }
    return NULL;
}

/* Idle and disconnect timeouts of a desktop in use: logs it off (and so
 * frees a floating desktop) when one ran out. Returns 1 if it did. */
static int bk_mgr_timed_out(struct bk_mgr *m, const json_t *pool,
                            struct bk_desktop *d, struct bk_mgr_desk *rt)
{
    int64_t now = (int64_t)time(NULL);
    int disc = bk_pool_int(pool, "disconnect_timeout");
    int idle = bk_pool_int(pool, "idle_timeout");
    struct hv_agent_state st = {0};
    const char *why = NULL;
    char err[256];

    if (rt && rt->agent)
        hv_agent_state(rt->agent, &st);
    if (disc > 0 && d->state == BK_DISCONNECTED && now - d->state_since >= disc)
        why = "disconnect timeout";
    else if (idle > 0 && st.healthy && st.user[0] && st.idle_seconds >= idle)
        why = "idle timeout";
    if (!why)
        return 0;
    bk_mgr_event(m, "timeout", d->pool, d->id, d->user,
                 json_pack("{ss}", "reason", why));
    bk_mgr_logoff(m, d, err, sizeof(err));
    return 1;
}

/* One desktop: finish what its state asks for. */
static void bk_mgr_reconcile_desktop(struct bk_mgr *m, json_t *pools,
                                     struct bk_desktop *d)
{
    json_t *pool = bk_mgr_pool_of(pools, d->pool);
    struct bk_mgr_desk *rt = bk_mgr_desk_find(m, d->id);

    if (!pool || json_is_true(json_object_get(pool, "deleting")) ||
        d->state == BK_DELETING) {
        bk_mgr_delete(m, d);
        return;
    }
    switch (d->state) {
    case BK_LOGGED_OFF:
        if (bk_pool_dedicated(pool)) {
            bk_mgr_set_state(m, d, BK_READY, NULL);
            if (rt)
                rt->prepared_for[0] = '\0';
        } else {
            bk_mgr_refresh(m, d, pool);
        }
        return;
    case BK_REFRESHING: bk_mgr_refresh(m, d, pool); return;
    case BK_ERROR:
        if (!d->user[0])
            bk_mgr_delete(m, d);
        return;
    case BK_BOOTING:
        if (!rt)
            rt = bk_mgr_desk_attach(m, d->id);
        if (rt && dp_time_now_ms() - rt->boot_started_ms >
                      BK_MGR_BOOT_TIMEOUT_S * 1000ull) {
            bk_mgr_set_state(m, d, BK_ERROR,
                             "the desktop's agent was not ready in time");
            bk_store_pool_result(m->store, d->pool, "agent not ready in time",
                                 BK_MGR_RESTRAIN_AFTER);
        }
        return;
    case BK_ASSIGNED:
    case BK_CONNECTED:
    case BK_DISCONNECTED:
        if (!rt)
            rt = bk_mgr_desk_attach(m, d->id);
        if (bk_mgr_timed_out(m, pool, d, rt))
            return;
        if (rt && rt->agent && strcmp(rt->prepared_for, d->user) != 0 &&
            hv_agent_request(
                rt->agent, "prepare-session",
                json_pack("{ss ss}", "user", d->user, "display_name", d->user),
                0, bk_mgr_ignore_reply, NULL) == 0)
            snprintf(rt->prepared_for, sizeof(rt->prepared_for), "%s", d->user);
        return;
    case BK_READY:
        if (!rt)
            bk_mgr_desk_attach(m, d->id);
        return;
    default: return;
    }
}

static int bk_mgr_waiting(struct bk_mgr *m, const char *pool)
{
    struct bk_mgr_want *w;
    int n = 0;

    pthread_mutex_lock(&m->lock);
    for (w = m->wants; w; w = w->next)
        if (!strcmp(w->pool, pool))
            n = w->waiting;
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* Whether a launch took desktop d, a spare before, less than
 * BK_MGR_SPARE_GRACE_MS ago (then its replacement waits, and the pass
 * after the wait is due by m->spare_due_ms). */
static int bk_mgr_spare_taken(struct bk_mgr *m, const struct bk_desktop *d,
                              uint64_t now)
{
    struct bk_mgr_desk *rt = bk_mgr_desk_find(m, d->id);
    uint64_t due;

    if (!rt)
        return 0;
    if (rt->spare && d->user[0])
        rt->taken_ms = now;
    rt->spare = d->state == BK_READY && !d->user[0];
    due = rt->taken_ms + BK_MGR_SPARE_GRACE_MS;
    if (!rt->taken_ms || !d->user[0] || now >= due)
        return 0;
    if (!m->spare_due_ms || due < m->spare_due_ms)
        m->spare_due_ms = due;
    return 1;
}

/* One pool: sizes (min, spare, max), rolling update. */
static void bk_mgr_reconcile_pool(struct bk_mgr *m, const json_t *pool,
                                  const struct bk_desktop *v, size_t n,
                                  int *in_flight)
{
    const char *name = bk_pool_str(pool, "name");
    int64_t gen = json_integer_value(json_object_get(pool, "image_gen"));
    int live = 0, spare = 0, coming = 0, need, waiting, old_deleted = 0;
    int taken = 0;
    uint64_t now = dp_time_now_ms();
    size_t i;

    if (json_is_true(json_object_get(pool, "deleting")))
        return;
    for (i = 0; i < n; i++) {
        if (!strcmp(v[i].pool, name))
            taken += bk_mgr_spare_taken(m, &v[i], now);
        if (strcmp(v[i].pool, name) != 0 || v[i].state == BK_DELETING ||
            v[i].state == BK_ERROR)
            continue;
        live++;
        if (v[i].user[0])
            continue;
        if (v[i].state == BK_READY)
            spare++;
        else if (v[i].state == BK_PROVISIONING || v[i].state == BK_BOOTING ||
                 v[i].state == BK_REFRESHING)
            coming++;
    }
    if (json_is_true(json_object_get(pool, "maintenance")))
        return;
    /* Rolling update: one old-image spare at a time makes way. */
    for (i = 0; i < n && !old_deleted; i++)
        if (!strcmp(v[i].pool, name) && v[i].state == BK_READY &&
            !v[i].user[0] && v[i].image_gen < gen) {
            bk_mgr_delete(m, &v[i]);
            old_deleted = 1;
            live--;
            spare--;
        }
    /* Surplus spares beyond spare and min go (not those a waiting launch
     * is about to take). */
    waiting = bk_mgr_waiting(m, name);
    for (i = n; i-- > 0 && spare > bk_pool_int(pool, "spare") + waiting &&
                live > bk_pool_int(pool, "min");)
        if (!strcmp(v[i].pool, name) && v[i].state == BK_READY &&
            !v[i].user[0] && v[i].image_gen >= gen) {
            bk_mgr_delete(m, &v[i]);
            live--;
            spare--;
        }
    if (json_is_true(json_object_get(pool, "restrained")) ||
        bk_mgr_backing_off(m, pool))
        return;
    /* An instant pool has its template ready before a launch needs it. */
    if (bk_pool_instant(pool)) {
        char tid[HV_ID_MAX + 1];

        bk_mgr_template(m, pool, tid, 1);
    }
    need = bk_pool_int(pool, "min") - live;
    /* Spares launches just took are replaced after BK_MGR_SPARE_GRACE_MS
     * (the other terms do not wait). */
    if (bk_pool_int(pool, "spare") - spare - coming - taken > need)
        need = bk_pool_int(pool, "spare") - spare - coming - taken;
    /* Launches waiting beyond the spares get desktops of their own. */
    if (waiting - spare - coming > need)
        need = waiting - spare - coming;
    if (need > bk_pool_int(pool, "max") - live)
        need = bk_pool_int(pool, "max") - live;
    while (need-- > 0 && *in_flight < m->cfg.provision_limit && !m->stop) {
        if (bk_mgr_provision(m, pool))
            return; /* backing off now */
        (*in_flight)++;
    }
}

/* A fingerprint of the instant pools and their image generations. */
static uint64_t bk_mgr_instant_sig(json_t *pools)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    size_t i;
    json_t *p;

    json_array_foreach(pools, i, p)
    {
        char key[BK_NAME_MAX + 32];
        const char *c;

        if (!bk_pool_instant(p) || json_is_true(json_object_get(p, "deleting")))
            continue;
        snprintf(
            key, sizeof(key), "%s/%lld;", bk_pool_str(p, "name"),
            (long long)json_integer_value(json_object_get(p, "image_gen")));
        for (c = key; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
    }
    return h;
}

static void bk_mgr_reconcile(struct bk_mgr *m)
{
    json_t *pools = bk_store_pool_list(m->store), *p;
    struct bk_desktop *v = NULL;
    size_t n = 0, i;
    int in_flight = 0;

    m->spare_due_ms = 0; /* this pass says again */
    bk_mgr_tmpl_poll(m);
    if (!pools || bk_store_desktop_list(m->store, NULL, NULL, &v, &n)) {
        json_decref(pools);
        return;
    }
    for (i = 0; i < n && !m->stop; i++)
        bk_mgr_reconcile_desktop(m, pools, &v[i]);
    free(v);
    v = NULL;
    /* Sizes from the state after the desktop pass. */
    if (bk_store_desktop_list(m->store, NULL, NULL, &v, &n) == 0) {
        for (i = 0; i < n; i++)
            if (v[i].state == BK_PROVISIONING || v[i].state == BK_BOOTING)
                in_flight++;
        json_array_foreach(pools, i, p)
        {
            if (m->stop)
                break;
            bk_mgr_reconcile_pool(m, p, v, n, &in_flight);
            if (json_is_true(json_object_get(p, "deleting")))
                bk_store_pool_delete(m->store, bk_pool_str(p, "name"));
        }
    }
    free(v);
    /* Instant pools came, went or changed their image: templates of
     * shapes no pool has any more can go. */
    if (bk_mgr_instant_sig(pools) != m->instant_sig) {
        m->instant_sig = bk_mgr_instant_sig(pools);
        bk_mgr_template_gc(m);
    }
    json_decref(pools);
}

/* --- adoption ------------------------------------------------------------ */

static void bk_mgr_adopt_note(void *arg, enum hv_adopt_kind kind,
                              const char *id, const char *detail)
{
    (void)arg;
    if (kind != HV_ADOPT_RUNNING)
        bk_mgr_log("adopt: %s: %s", id, detail ? detail : "");
}

/* The store and the VMs agree again after a restart. */
static void bk_mgr_adopt(struct bk_mgr *m)
{
    struct bk_desktop *v = NULL;
    struct hv_vm_status st;
    char **ids = NULL, err[512];
    size_t n = 0, nids = 0, i, j;

    hv_host_adopt(m->host, bk_mgr_adopt_note, m);
    if (bk_store_desktop_list(m->store, NULL, NULL, &v, &n))
        return;
    for (i = 0; i < n; i++) {
        struct bk_desktop *d = &v[i];

        if (d->state == BK_PROVISIONING || d->state == BK_DELETING) {
            bk_mgr_log("adopt: %s: was %s: deleted", d->id,
                       bk_state_name(d->state));
            bk_mgr_delete(m, d);
            continue;
        }
        if (hv_vm_status(m->host, d->id, &st, err, sizeof(err)) == -ENOENT) {
            bk_mgr_log("adopt: %s: its VM is gone: dropped", d->id);
            bk_store_desktop_remove(m->store, d->id);
            bk_mgr_event(m, "lost", d->pool, d->id, d->user, NULL);
            continue;
        }
        if (d->state == BK_REFRESHING)
            continue; /* the reconcile pass finishes it */
        if (!strcmp(st.state, "stopped")) {
            if (bk_mgr_boot(m, d, err, sizeof(err)))
                bk_store_desktop_set_state(m->store, d->id, -1, BK_ERROR, err);
        } else {
            bk_mgr_desk_attach(m, d->id);
        }
    }
    /* VMs the store does not know: left by a crash before their row. */
    if (hv_vm_list(m->host, &ids, &nids) == 0) {
        for (j = 0; j < nids; j++) {
            struct bk_desktop d;

            if (bk_store_desktop_get(m->store, ids[j], &d) == 0)
                continue;
            bk_mgr_log("adopt: %s: unknown VM: deleted", ids[j]);
            hv_vm_delete(m->host, ids[j], err, sizeof(err));
        }
        hv_vm_list_free(ids, nids);
    }
    free(v);
    bk_mgr_template_gc(m); /* after adoption: what no VM uses any more */
}

/* --- commands ------------------------------------------------------------ */

static void bk_mgr_result_text(struct bk_mgr *m, uint64_t tag, int status,
                               const char *message, const char *path,
                               const char *text)
{
    struct bk_mgr_res_node *n = calloc(1, sizeof(*n)), **pp;

    if (!n)
        return;
    if (text && !(n->r.text = strdup(text))) {
        free(n);
        return;
    }
    n->r.tag = tag;
    n->r.status = status;
    snprintf(n->r.message, sizeof(n->r.message), "%s", message ? message : "");
    snprintf(n->r.path, sizeof(n->r.path), "%s", path ? path : "");
    pthread_mutex_lock(&m->lock);
    for (pp = &m->results; *pp; pp = &(*pp)->next)
        ;
    *pp = n;
    pthread_mutex_unlock(&m->lock);
    bk_mgr_changed(m);
}

static void bk_mgr_result(struct bk_mgr *m, uint64_t tag, int status,
                          const char *message, const char *path)
{
    bk_mgr_result_text(m, tag, status, message, path, NULL);
}

/* An agent request in flight: whom to tell. */
struct bk_mgr_asking {
    bk_mgr_agent_fn done;
    void *arg;
};

static void bk_mgr_agent_reply(void *arg, int status, json_t *result,
                               const char *code, const char *message)
{
    struct bk_mgr_asking *q = arg;
    char err[300];

    snprintf(err, sizeof(err), "the desktop's agent: %s%s%s", code ? code : "",
             code && message ? ": " : "", message ? message : "");
    q->done(q->arg, status, status ? NULL : result, status ? err : NULL);
    free(q);
}

/* Asks the agent without waiting: the manager thread must not stall on a
 * guest (the reply arrives through the agent's poll). 1: done is called
 * later; else the error, and done is not called. */
static int bk_mgr_agent_run(struct bk_mgr *m, struct bk_mgr_cmd *c, char *err,
                            size_t err_size)
{
    struct bk_mgr_desk *rt = bk_mgr_desk_find(m, c->desktop);
    struct bk_mgr_asking *q;
    struct hv_agent_state st = {0};
    json_t *args = c->args;

    if (rt && rt->agent)
        hv_agent_state(rt->agent, &st);
    if (!rt || !rt->agent || !st.connected) {
        snprintf(err, err_size, "the desktop's agent is not connected");
        return -ENOTCONN;
    }
    q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    *q = (struct bk_mgr_asking){.done = c->done, .arg = c->done_arg};
    c->args = NULL; /* hv_agent_request consumes them */
    if (hv_agent_request(rt->agent, c->op, args, 5000, bk_mgr_agent_reply, q) !=
        0) {
        free(q);
        snprintf(err, err_size, "cannot ask the desktop's agent");
        return -EIO;
    }
    return 1;
}

static int bk_mgr_logoff(struct bk_mgr *m, struct bk_desktop *d, char *err,
                         size_t err_size)
{
    struct bk_mgr_desk *rt = bk_mgr_desk_find(m, d->id);

    if (!bk_state_in_use(d->state)) {
        snprintf(err, err_size, "nobody is logged on to %s", d->id);
        return -EINVAL;
    }
    /* Ask the guest to end the session (it may have none: a rebooted
     * desktop); either way the desktop is logged off now, and a logout
     * event arriving later changes nothing. A guest that does not answer
     * is refreshed all the same. */
    if (rt && rt->agent &&
        hv_agent_request_sync(rt->agent, "logoff", NULL, 5000, NULL, err,
                              err_size) != 0)
        bk_mgr_log("%s: logoff through the agent: %s", d->id, err);
    bk_mgr_set_state(m, d, BK_LOGGED_OFF, NULL);
    bk_mgr_kick(m);
    return 0;
}

static int bk_mgr_run_command(struct bk_mgr *m, const struct bk_mgr_cmd *c,
                              char *err, size_t err_size, char *path,
                              size_t path_size)
{
    struct bk_desktop d;
    json_t *pool;
    int r;

    if (bk_store_desktop_get(m->store, c->desktop, &d)) {
        snprintf(err, err_size, "no such desktop");
        return -ENOENT;
    }
    if (!strcmp(c->op, "logoff"))
        return bk_mgr_logoff(m, &d, err, err_size);
    if (!strcmp(c->op, "delete"))
        return bk_mgr_delete(m, &d);
    if (!strcmp(c->op, "reset"))
        return hv_vm_reset(m->host, d.id, err, err_size);
    if (!strcmp(c->op, "power-on")) {
        r = bk_mgr_boot(m, &d, err, err_size);
        if (!r && d.state == BK_MAINTENANCE)
            bk_store_desktop_set_state(m->store, d.id, -1, BK_BOOTING, NULL);
        return r;
    }
    if (!strcmp(c->op, "power-off")) {
        r = hv_vm_poweroff(m->host, d.id, err, err_size);
        if (r >= 0) {
            bk_mgr_desk_drop(m, d.id);
            bk_mgr_set_state(m, &d, BK_MAINTENANCE, NULL);
        }
        return r < 0 ? r : 0;
    }
    if (!strcmp(c->op, "refresh")) {
        pool = bk_store_pool_get(m->store, d.pool);
        r = bk_mgr_refresh(m, &d, pool);
        json_decref(pool);
        return r;
    }
    if (!strcmp(c->op, "screenshot")) {
        int fd;

        snprintf(path, path_size, "/tmp/deskpool-shot-XXXXXX");
        fd = mkstemp(path);
        if (fd < 0) {
            path[0] = '\0';
            snprintf(err, err_size, "cannot make a temporary file");
            return -EIO;
        }
        close(fd);
        r = hv_vm_screenshot(m->host, d.id, path, err, err_size);
        if (r) {
            unlink(path);
            path[0] = '\0';
        }
        return r;
    }
    snprintf(err, err_size, "unknown operation");
    return -EINVAL;
}

static void bk_mgr_commands(struct bk_mgr *m)
{
    for (;;) {
        struct bk_mgr_cmd *c;
        char err[512] = "", path[128] = "";
        int r;

        pthread_mutex_lock(&m->lock);
        c = m->cmds;
        if (c)
            m->cmds = c->next;
        pthread_mutex_unlock(&m->lock);
        if (!c)
            return;
        if (c->done) {
            r = bk_mgr_agent_run(m, c, err, sizeof(err));
            if (r != 1) /* 1: answered later */
                c->done(c->done_arg, r, NULL, err);
        } else {
            r = bk_mgr_run_command(m, c, err, sizeof(err), path, sizeof(path));
            bk_mgr_result(m, c->tag, r, err, path);
        }
        json_decref(c->args);
        free(c);
    }
}

/* --- dashboard samples --------------------------------------------------- */

/* A desktop's QEMU now, with its CPU use since the last pass; for an
 * instant clone also its memory split by sharing (what clones save; the
 * kernel walks the page tables for it, so only for clones). 0 or -ESRCH
 * (not running). */
static int bk_mgr_usage(struct bk_mgr *m, const struct bk_desktop *d,
                        struct bk_stats_usage *u)
{
    const char *id = d->id;
    struct bk_stats_usage prev;
    struct hv_vm_memory mem;
    struct hv_vm_usage vu;

    if (hv_vm_read_usage(m->host, id, &vu))
        return -ESRCH;
    memset(u, 0, sizeof(*u));
    snprintf(u->id, sizeof(u->id), "%s", id);
    u->pid = vu.pid;
    u->cpu_ms = vu.cpu_ms;
    u->t_ms = dp_time_now_ms();
    u->rss_mb = (int64_t)(vu.rss_bytes >> 20);
    u->private_mb = u->shared_mb = -1;
    if (!strcmp(d->provisioning, "instant") &&
        hv_vm_read_memory(m->host, id, &mem) == 0) {
        u->private_mb = (int64_t)(mem.private_bytes >> 20);
        u->shared_mb = (int64_t)(mem.shared_bytes >> 20);
    }
    u->cpu_percent = bk_stats_cpu_percent(
        bk_stats_usage(m->stats, id, &prev) == 0 ? &prev : NULL, u->pid,
        u->cpu_ms, u->t_ms);
    return 0;
}

/* One sample for the dashboard: desktops by state from this thread's
 * store connection, each QEMU's usage from /proc. */
static void bk_mgr_sample(struct bk_mgr *m)
{
    struct bk_stats_sample s = {0};
    struct bk_stats_usage *u;
    struct bk_desktop *v = NULL;
    size_t n = 0, nu = 0, i;

    if (bk_store_desktop_list(m->store, NULL, NULL, &v, &n))
        return;
    u = calloc(n ? n : 1, sizeof(*u));
    for (i = 0; i < n; i++) {
        bk_stats_count(&s, v[i].state, 1);
        if (u && bk_mgr_usage(m, &v[i], &u[nu]) == 0)
            nu++;
    }
    s.t = bk_stats_unix_ms();
    bk_stats_add(m->stats, &s);
    if (u)
        bk_stats_put_usage(m->stats, u, nu);
    free(u);
    free(v);
}

/* Samples when one is due; the schedule keeps its beat unless a long VM
 * operation held the thread past a whole interval. */
static void bk_mgr_sample_due(struct bk_mgr *m)
{
    uint64_t now = dp_time_now_ms(),
             step = (uint64_t)m->cfg.stats_interval * 1000;

    if (now < m->next_stats_ms)
        return;
    bk_mgr_sample(m);
    m->next_stats_ms += step;
    if (m->next_stats_ms <= now)
        m->next_stats_ms = now + step;
}

struct bk_stats *bk_mgr_stats(struct bk_mgr *m)
{
    return m->stats;
}

/* --- helpdesk views ------------------------------------------------------- */

#define BK_MGR_VIEW_TEXT  "Your screen is being viewed by helpdesk (%s)"
#define BK_MGR_VIEW_RETRY 1000  /* ms between attempts to tell the agent */
#define BK_MGR_VIEW_GIVE  60000 /* ms a banner is tried to be cleared */

/* A message request in flight: which desktop's banner. */
struct bk_mgr_view_req {
    struct bk_mgr *m;
    char desktop[BK_NAME_MAX + 1];
};

static struct bk_mgr_viewing *bk_mgr_view_find(struct bk_mgr *m,
                                               const char *desktop)
{
    struct bk_mgr_viewing *v;

    for (v = m->views; v; v = v->next)
        if (!strcmp(v->desktop, desktop))
            return v;
    return NULL;
}

void bk_mgr_view(struct bk_mgr *m, const char *desktop, const char *viewer,
                 int delta)
{
    struct bk_mgr_viewing *v;

    pthread_mutex_lock(&m->lock);
    v = bk_mgr_view_find(m, desktop);
    if (!v && (v = calloc(1, sizeof(*v)))) {
        snprintf(v->desktop, sizeof(v->desktop), "%s", desktop);
        v->next = m->views;
        m->views = v;
    }
    if (v) {
        /* an end without its start (the broker restarted) still clears */
        v->count = v->count + delta < 0 ? 0 : v->count + delta;
        if (delta > 0)
            snprintf(v->viewer, sizeof(v->viewer), "%s", viewer);
        v->dirty = 1;
        v->retry_ms = 0;
        v->dirty_since_ms = dp_time_now_ms();
    }
    pthread_mutex_unlock(&m->lock);
    bk_mgr_kick(m);
}

/* The guest came up again: it shows no banner now. (Manager thread.) */
static void bk_mgr_view_resend(struct bk_mgr *m, const char *desktop)
{
    struct bk_mgr_viewing *v;

    pthread_mutex_lock(&m->lock);
    v = bk_mgr_view_find(m, desktop);
    if (v && v->count > 0 && !v->dirty) {
        v->dirty = 1;
        v->retry_ms = 0;
        v->dirty_since_ms = dp_time_now_ms();
    }
    pthread_mutex_unlock(&m->lock);
}

static void bk_mgr_view_reply(void *arg, int status, json_t *result,
                              const char *code, const char *message)
{
    struct bk_mgr_view_req *req = arg;
    struct bk_mgr_viewing *v;

    (void)result;
    if (status)
        bk_mgr_log("%s: helpdesk banner: %s%s%s", req->desktop,
                   code ? code : "", code && code[0] ? ": " : "",
                   message ? message : strerror(-status));
    pthread_mutex_lock(&req->m->lock);
    v = bk_mgr_view_find(req->m, req->desktop);
    if (v) {
        v->sending = 0;
        if (status && !v->dirty) { /* try again */
            v->dirty = 1;
            v->retry_ms = dp_time_now_ms() + BK_MGR_VIEW_RETRY;
        }
    }
    pthread_mutex_unlock(&req->m->lock);
    free(req);
}

/* Sends v's banner text to its desktop's agent (lock held; the reply
 * comes through the agent's poll, without it). */
static void bk_mgr_view_send(struct bk_mgr *m, struct bk_mgr_viewing *v,
                             uint64_t now)
{
    struct bk_mgr_desk *rt = bk_mgr_desk_find(m, v->desktop);
    struct hv_agent_state st = {0};
    struct bk_mgr_view_req *req;
    char text[BK_USER_MAX + 64] = ""; /* "": clears the banner */

    if (rt && rt->agent)
        hv_agent_state(rt->agent, &st);
    v->retry_ms = now + BK_MGR_VIEW_RETRY;
    if (!st.connected || !st.hello || !(req = calloc(1, sizeof(*req))))
        return; /* no guest listening yet */
    req->m = m;
    snprintf(req->desktop, sizeof(req->desktop), "%s", v->desktop);
    if (v->count > 0)
        snprintf(text, sizeof(text), BK_MGR_VIEW_TEXT, v->viewer);
    if (hv_agent_request(rt->agent, "message", json_pack("{ss}", "text", text),
                         5000, bk_mgr_view_reply, req) != 0) {
        free(req);
        return;
    }
    v->dirty = 0;
    v->sending = 1;
}

/* Tells agents what changed; forgets desktops nobody views any more. */
static void bk_mgr_views(struct bk_mgr *m)
{
    struct bk_mgr_viewing *v, **pp;
    uint64_t now = dp_time_now_ms();

    pthread_mutex_lock(&m->lock);
    for (pp = &m->views; (v = *pp);) {
        /* cleared, or a banner of a desktop gone for good */
        if (!v->count && !v->sending &&
            (!v->dirty || now - v->dirty_since_ms > BK_MGR_VIEW_GIVE)) {
            *pp = v->next;
            free(v);
            continue;
        }
        if (v->dirty && !v->sending && now >= v->retry_ms)
            bk_mgr_view_send(m, v, now);
        pp = &v->next;
    }
    pthread_mutex_unlock(&m->lock);
}

/* Milliseconds until a view needs the loop again, or -1. (A request on
 * its way wakes the loop through the agent's descriptor.) */
static int bk_mgr_views_due(struct bk_mgr *m, uint64_t now)
{
    struct bk_mgr_viewing *v;
    int due = -1;

    pthread_mutex_lock(&m->lock);
    for (v = m->views; v; v = v->next) {
        int t = v->retry_ms > now ? (int)(v->retry_ms - now) : 0;

        if (v->dirty && !v->sending && (due < 0 || t < due))
            due = t;
    }
    pthread_mutex_unlock(&m->lock);
    return due;
}

/* --- the thread ---------------------------------------------------------- */

static void bk_mgr_poll(struct bk_mgr *m)
{
    struct pollfd pfd[BK_MGR_MAX_POLL];
    struct bk_mgr_desk *rt[BK_MGR_MAX_POLL], *d;
    uint64_t now = dp_time_now_ms(), next = m->next_pass_ms;
    int n = 1, i, views = bk_mgr_views_due(m, now), timeout;

    if (m->next_stats_ms < next)
        next = m->next_stats_ms;
    timeout = (int)(next > now ? next - now : 0);
    if (views >= 0 && views < timeout)
        timeout = views;
    pfd[0] = (struct pollfd){.fd = m->efd, .events = POLLIN};
    for (d = m->desks; d && n < BK_MGR_MAX_POLL; d = d->next) {
        int t;

        if (!d->agent)
            continue;
        t = hv_agent_timeout_ms(d->agent);
        if (t >= 0 && t < timeout)
            timeout = t;
        rt[n] = d;
        pfd[n] = (struct pollfd){.fd = hv_agent_fd(d->agent),
                                 .events = hv_agent_poll_events(d->agent)};
        n++;
    }
    if (poll(pfd, (nfds_t)n, timeout) < 0)
        return;
    if (pfd[0].revents & POLLIN) {
        uint64_t v;

        if (read(m->efd, &v, sizeof(v)) > 0)
            m->next_pass_ms = 0; /* kicked: reconcile now */
    }
    for (i = 1; i < n; i++)
        hv_agent_process(rt[i]->agent, pfd[i].revents);
}

static void *bk_mgr_main(void *arg)
{
    struct bk_mgr *m = arg;

    bk_mgr_adopt(m);
    bk_mgr_sample_due(m); /* a fresh history starts now */
    while (!m->stop) {
        bk_mgr_poll(m);
        if (m->stop)
            break;
        bk_mgr_commands(m);
        bk_mgr_views(m);
        if (dp_time_now_ms() >= m->next_pass_ms) {
            bk_mgr_reconcile(m);
            m->next_pass_ms =
                dp_time_now_ms() + (uint64_t)m->cfg.reconcile_interval * 1000;
            /* a deferred replacement spare is due before that */
            if (m->spare_due_ms && m->spare_due_ms < m->next_pass_ms)
                m->next_pass_ms = m->spare_due_ms;
        }
        bk_mgr_sample_due(m);
    }
    return NULL;
}

int bk_mgr_start(struct bk_mgr **out, const struct bk_config *cfg,
                 const char *db_path, void (*changed)(void *arg), void *arg,
                 char *err, size_t err_size)
{
    struct hv_host_config hc = {0};
    struct bk_mgr *m = calloc(1, sizeof(*m));
    int r;

    if (!m)
        return -ENOMEM;
    m->cfg = *cfg;
    m->changed = changed;
    m->arg = arg;
    m->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&m->lock, NULL);
    hc.state_dir = m->cfg.vm_dir;
    hc.qemu_user = m->cfg.qemu_user[0] ? m->cfg.qemu_user : NULL;
    hc.quiet = 1;
    r = bk_stats_new(&m->stats, m->cfg.stats_interval);
    if (r)
        snprintf(err, err_size, "stats_interval: cannot keep its samples");
    if (!r)
        r = bk_store_open(&m->store, db_path, err, err_size);
    if (!r)
        r = hv_host_open(&m->host, &hc, err, err_size);
    if (!r && m->efd < 0)
        r = -errno;
    if (!r)
        r = -pthread_create(&m->thread, NULL, bk_mgr_main, m);
    if (r) {
        bk_mgr_stop(m);
        return r;
    }
    m->thread_started = 1;
    *out = m;
    return 0;
}

void bk_mgr_kick(struct bk_mgr *m)
{
    uint64_t one = 1;

    if (m && write(m->efd, &one, sizeof(one)) < 0) {
        /* the counter is full: a kick is pending anyway */
    }
}

void bk_mgr_stop(struct bk_mgr *m)
{
    struct bk_mgr_res_node *r;
    struct bk_mgr_backoff *b;

    if (!m)
        return;
    m->stop = 1;
    bk_mgr_kick(m);
    if (m->thread_started)
        pthread_join(m->thread, NULL);
    while (m->desks)
        bk_mgr_desk_drop(m, m->desks->id);
    while (m->cmds) {
        struct bk_mgr_cmd *c = m->cmds;

        m->cmds = c->next;
        if (c->done)
            c->done(c->done_arg, -ECANCELED, NULL, "the broker is stopping");
        json_decref(c->args);
        free(c);
    }
    while ((r = m->results)) {
        m->results = r->next;
        if (r->r.path[0])
            unlink(r->r.path);
        free(r->r.text);
        free(r);
    }
    while ((b = m->backoffs)) {
        m->backoffs = b->next;
        free(b);
    }
    while (m->wants) {
        struct bk_mgr_want *w = m->wants;

        m->wants = w->next;
        free(w);
    }
    while (m->tmpls) { /* a build still running frees its own */
        struct bk_mgr_tmpl *t = m->tmpls;

        m->tmpls = t->next;
        bk_mgr_tmpl_unref(t);
    }
    while (m->views) { /* after the desks: their replies look views up */
        struct bk_mgr_viewing *v = m->views;

        m->views = v->next;
        free(v);
    }
    bk_stats_free(m->stats);
    hv_host_close(m->host);
    bk_store_close(m->store);
    if (m->efd >= 0)
        close(m->efd);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Appends a command (commands run in order) and wakes the thread. */
static void bk_mgr_queue(struct bk_mgr *m, struct bk_mgr_cmd *c)
{
    struct bk_mgr_cmd **pp;

    pthread_mutex_lock(&m->lock);
    for (pp = &m->cmds; *pp; pp = &(*pp)->next)
        ;
    *pp = c;
    pthread_mutex_unlock(&m->lock);
    bk_mgr_kick(m);
}

int bk_mgr_command(struct bk_mgr *m, const char *desktop, const char *op,
                   uint64_t tag)
{
    struct bk_mgr_cmd *c;

    if (strlen(op) >= sizeof(c->op))
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    snprintf(c->desktop, sizeof(c->desktop), "%s", desktop);
    snprintf(c->op, sizeof(c->op), "%s", op);
    c->tag = tag;
    bk_mgr_queue(m, c);
    return 0;
}

int bk_mgr_agent(struct bk_mgr *m, const char *desktop, const char *op,
                 json_t *args, bk_mgr_agent_fn done, void *arg)
{
    static const char *const allowed[] = {"clipboard-get", "clipboard-set",
                                          "set-resolution"};
    struct bk_mgr_cmd *c;
    size_t i;

    for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (!strcmp(op, allowed[i]))
            break;
    if (i == sizeof(allowed) / sizeof(allowed[0]) || !done) {
        json_decref(args);
        return -EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        json_decref(args);
        return -ENOMEM;
    }
    snprintf(c->desktop, sizeof(c->desktop), "%s", desktop);
    snprintf(c->op, sizeof(c->op), "%s", op);
    c->args = args;
    c->done = done;
    c->done_arg = arg;
    bk_mgr_queue(m, c);
    return 0;
}

/* A clipboard request of the web API: its answer goes to the results. */
struct bk_mgr_clip {
    struct bk_mgr *m;
    uint64_t tag;
};

static void bk_mgr_clipboard_done(void *arg, int status, json_t *result,
                                  const char *message)
{
    struct bk_mgr_clip *c = arg;

    bk_mgr_result_text(c->m, c->tag, status, message, NULL,
                       json_string_value(json_object_get(result, "text")));
    free(c);
}

int bk_mgr_clipboard(struct bk_mgr *m, const char *desktop, const char *text,
                     uint64_t tag)
{
    struct bk_mgr_clip *c;
    json_t *args = NULL;
    int r;

    if (text && strlen(text) > BK_MGR_CLIPBOARD_MAX)
        return -E2BIG;
    if (text && !(args = json_pack("{ss}", "text", text)))
        return -ENOMEM;
    c = calloc(1, sizeof(*c));
    if (!c) {
        json_decref(args);
        return -ENOMEM;
    }
    *c = (struct bk_mgr_clip){.m = m, .tag = tag};
    r = bk_mgr_agent(m, desktop, text ? "clipboard-set" : "clipboard-get", args,
                     bk_mgr_clipboard_done, c);
    if (r)
        free(c);
    return r;
}

void bk_mgr_demand(struct bk_mgr *m, const char *pool, int delta)
{
    struct bk_mgr_want *w;

    pthread_mutex_lock(&m->lock);
    for (w = m->wants; w; w = w->next)
        if (!strcmp(w->pool, pool))
            break;
    if (!w && (w = calloc(1, sizeof(*w)))) {
        snprintf(w->pool, sizeof(w->pool), "%s", pool);
        w->next = m->wants;
        m->wants = w;
    }
    if (w) {
        w->waiting += delta;
        if (w->waiting < 0)
            w->waiting = 0;
    }
    pthread_mutex_unlock(&m->lock);
    if (delta > 0)
        bk_mgr_kick(m);
}

int bk_mgr_next_result(struct bk_mgr *m, struct bk_mgr_result *r)
{
    struct bk_mgr_res_node *n;

    pthread_mutex_lock(&m->lock);
    n = m->results;
    if (n)
        m->results = n->next;
    pthread_mutex_unlock(&m->lock);
    if (!n)
        return 0;
    *r = n->r;
    free(n);
    return 1;
}
