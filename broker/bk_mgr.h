/*
 * bk_mgr.h - the pool manager: a thread that makes the desktops on this
 * host what the store says they should be.
 *
 * It owns the libdeskpool-hv host (vm_dir) and a connection to each
 * running desktop's agent, and runs a reconcile pass whenever kicked and
 * every reconcile_interval seconds:
 *
 *   - each pool gets at least `min` desktops and `spare` ready unassigned
 *     ones, never more than `max`; surplus spares and spares of an old
 *     image generation are deleted (rolling update);
 *   - provisioning (linked clone, then boot; for an instant pool a clone
 *     of the pool's template) runs at most provision_limit desktops at
 *     once; a failure backs off (2^errors s, up to 5 min) and after 5 in a
 *     row the pool is *restrained* until an admin resumes it;
 *   - an instant pool's template is made on a thread of its own the first
 *     time the pool needs it and whenever its shape or files changed (a
 *     new template id); until it is ready the pool provisions by booting.
 *     A clone is personalised (hostname = desktop id, random machine-id,
 *     clock) through the manager's agent connection and is READY once its
 *     agent said ready and answered; stale and incomplete templates no VM
 *     uses are collected after deletions and at start;
 *   - agent events drive the states: ready -> READY; logout -> LOGGED_OFF,
 *     then a floating desktop is refreshed (powered off, its disk replaced
 *     by a fresh linked clone, booted again; instant: deleted and cloned
 *     anew) and a dedicated one is READY for its user again;
 *   - an ASSIGNED desktop is told who it belongs to (prepare-session);
 *   - pools being deleted lose their desktops, then their row.
 *
 * Every stats_interval seconds (and once at start) it samples the
 * desktops' states and each QEMU's CPU and memory use into a bk_stats
 * (bk_mgr_stats()), which the HTTP thread reads. While a helpdesk view of
 * a desktop runs (bk_mgr_view()), its user is told so through the agent's
 * `message` banner.
 *
 * On start it adopts what runs (hv_host_adopt) and repairs the store: a
 * desktop caught PROVISIONING by a crash is deleted and made again, a VM
 * the store does not know is deleted, a desktop whose VM stopped is booted
 * again. Every state change is a store transaction made before or after
 * the VM change it stands for, so a kill -9 at any point converges on the
 * next start with no duplicate, lost or orphan desktop.
 *
 * Other threads talk to it through bk_mgr_kick() and bk_mgr_command(); it
 * reports through the `changed` callback (called on its thread; must be
 * thread-safe, e.g. bk_http_wake) and bk_mgr_next_result().
 */
#ifndef BK_MGR_H
#define BK_MGR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bk_config.h"
#include "bk_stats.h"

#define BK_MGR_BOOT_TIMEOUT_S 180 /* BOOTING without the agent's ready */
#define BK_MGR_RESTRAIN_AFTER 5   /* provisioning failures in a row */

struct bk_mgr;

/* Opens the store and the hv host, adopts running VMs and starts the
 * thread. */
int bk_mgr_start(struct bk_mgr **out, const struct bk_config *cfg,
                 const char *db_path, void (*changed)(void *arg), void *arg,
                 char *err, size_t err_size);
/* Stops the thread (VMs keep running) and frees. */
void bk_mgr_stop(struct bk_mgr *m);

/* Asks for a reconcile pass soon. Thread-safe. */
void bk_mgr_kick(struct bk_mgr *m);

/* A launch is waiting for a desktop of pool (delta +1), or stopped
 * waiting (-1): the pool provisions for waiting launches beyond its
 * spares, up to max. Thread-safe. */
void bk_mgr_demand(struct bk_mgr *m, const char *pool, int delta);

/*
 * Queues an operation on a desktop: "logoff", "power-on", "power-off",
 * "reset", "refresh", "delete", "screenshot". The outcome comes back
 * tagged with tag through bk_mgr_next_result(). Thread-safe. 0, -EINVAL
 * (unknown op), -ENOMEM.
 */
int bk_mgr_command(struct bk_mgr *m, const char *desktop, const char *op,
                   uint64_t tag);

/*
 * The desktop's clipboard through its agent: "clipboard-set" with text
 * (copied; at most BK_MGR_CLIPBOARD_MAX bytes of UTF-8) or "clipboard-get"
 * (text NULL), whose result carries the text. The agent's answer comes
 * back as for bk_mgr_command(); -ENOTCONN in the result when the desktop
 * has no agent. Thread-safe. 0, -EINVAL, -E2BIG, -ENOMEM.
 */
#define BK_MGR_CLIPBOARD_MAX 32768
int bk_mgr_clipboard(struct bk_mgr *m, const char *desktop, const char *text,
                     uint64_t tag);

/*
 * Asks the desktop's agent, for the display server's sessions: op
 * "clipboard-get", "clipboard-set" ({text}) or "set-resolution" ({width,
 * height}) with args (consumed, NULL = {}). done runs exactly once, on the
 * manager's thread: status 0 with the agent's result (borrowed), or a
 * negative errno and why (-ENOTCONN: no agent connected, -ETIMEDOUT,
 * -ECANCELED: the manager stopped first). Returns 0, or -EINVAL (op not
 * one of these) / -ENOMEM, and then done is not called. Thread-safe.
 */
typedef void (*bk_mgr_agent_fn)(void *arg, int status, json_t *result,
                                const char *message);
int bk_mgr_agent(struct bk_mgr *m, const char *desktop, const char *op,
                 json_t *args, bk_mgr_agent_fn done, void *arg);

struct bk_mgr_result {
    uint64_t tag;
    int status;        /* 0 or negative errno */
    char message[256]; /* why it failed */
    char path[128];    /* screenshot: a PNG file the caller removes */
    char *text;        /* clipboard-get: the text; the taker frees it */
};

/* Takes the next command result; 1 if one was taken. Thread-safe. */
int bk_mgr_next_result(struct bk_mgr *m, struct bk_mgr_result *r);

/* The dashboard's samples and usage table (owned by the manager, valid
 * until bk_mgr_stop; its functions are thread-safe). */
struct bk_stats *bk_mgr_stats(struct bk_mgr *m);

/*
 * A helpdesk view of desktop by viewer began (delta +1) or ended (-1).
 * While any runs, the desktop shows the banner "Your screen is being
 * viewed by helpdesk (VIEWER)" (agent `message`; sent again if the guest
 * was not listening); when the last one ends the banner is cleared.
 * Thread-safe; the agent is told from the manager's thread.
 */
void bk_mgr_view(struct bk_mgr *m, const char *desktop, const char *viewer,
                 int delta);

#endif
