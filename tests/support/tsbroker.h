/*
 * tsbroker.h - deskpool-broker for tests: the real binary
 * ($DESKPOOL_BIN_DIR/deskpool-broker) on a fresh state folder, with the
 * real PAM library through pam_wrapper and users and groups through
 * nss_wrapper, so no system account is read or touched.
 *
 * Accounts (pam_matrix passdb and nss_wrapper files), written per broker:
 *
 *   alice / alice-pw     groups alice, staff
 *   bob   / bob-pw       groups bob, staff
 *   carol / carol-pw     groups carol (no pool entitlement by group)
 *   admin / admin-pw     groups admin, staff, deskpool-admins
 *   locked / locked-pw   PAM's account step refuses (pam_matrix: another
 *                        service)
 *
 * With TSBROKER_OTP the stack asks a second question (echo on, like an
 * OTP prompt): the answer is "otp-" + the user name.
 *
 * Check assertions inside: for test cases and fixtures.
 */
#ifndef TSBROKER_H
#define TSBROKER_H

#include <jansson.h>
#include <sys/types.h>

#include "bk_client.h"

enum {
    TSBROKER_OTP = 1,  /* second, echoed prompt */
    TSBROKER_SLOW = 2, /* each login's first module sleeps 2 s */
};

struct tsbroker {
    pid_t pid;
    int port;
    char dir[100];       /* everything of this broker */
    char state[128];     /* state_dir */
    char vm[128];        /* vm_dir (at most 40: unix socket paths) */
    char log[128];       /* its stderr */
    char cert[160];      /* its self-signed certificate */
    char url[64];        /* https://127.0.0.1:PORT */
    char display[256];   /* display_socket setting */
    char extra[16][128]; /* more --set KEY=VALUE */
    int nextra;
    int flags;
};

/* Prepares a broker (folder, accounts, PAM stack) without starting it;
 * add settings with tsbroker_set() before tsbroker_start(). */
void tsbroker_init(struct tsbroker *b, int flags);
void tsbroker_set(struct tsbroker *b, const char *key, const char *value);
/* Starts it and waits until it listens (port from its log). */
void tsbroker_start(struct tsbroker *b);
/* SIGTERM and wait; fails the test on sanitizer reports in its log. */
void tsbroker_stop(struct tsbroker *b);
/* Deletes the broker's VMs (they outlive it by design), so the next test
 * has the machine to itself. */
void tsbroker_remove_vms(struct tsbroker *b);
/* Whether the file at path has a line holding text (0 if unreadable). */
int tsbroker_file_contains(const char *path, const char *text);

/* SIGKILL, as a crash would. */
void tsbroker_kill9(struct tsbroker *b);
int tsbroker_log_contains(const struct tsbroker *b, const char *text);

/* A client: a session of one user (or none). */
struct tsbroker_session {
    struct bk_client *c;
    char token[64];   /* bearer token, or "" */
    char cookie[256]; /* "deskpool_session=..." for cookie sessions */
    char csrf[64];
    int admin;
    char log[128]; /* the broker's log, shown when it stops answering */
};

/* A connection without a session. */
void tsbroker_connect(const struct tsbroker *b, struct tsbroker_session *s);
void tsbroker_disconnect(struct tsbroker_session *s);

/*
 * Logs in through the whole conversation, answering password prompts with
 * password and text prompts with otp, as a browser (cookie + CSRF) or a
 * CLI (bearer = 1). Returns the final HTTP status (200 on success).
 */
int tsbroker_login(const struct tsbroker *b, struct tsbroker_session *s,
                   const char *user, const char *password, const char *otp,
                   int bearer);

/*
 * One request with the session's credentials (CSRF header included for
 * cookie sessions). body may be NULL. Returns the HTTP status; *reply gets
 * the parsed JSON body (NULL if none or not JSON) when reply is not NULL.
 */
int tsbroker_call(struct tsbroker_session *s, const char *method,
                  const char *path, const char *body, json_t **reply);

/* The same with a raw reply (for files and images). */
int tsbroker_raw(struct tsbroker_session *s, const char *method,
                 const char *path, const char *headers, const char *body,
                 size_t len, struct bk_response *resp);

/* The environment that makes the real PAM library use this broker's
 * accounts (for other programs under test, e.g. deskpoolctl): sets it in
 * the calling process. */
void tsbroker_pam_env(const struct tsbroker *b);

/* A pool of the test image: JSON settings for POST /api/v1/admin/pools
 * (name, min/spare/max, extra settings as a JSON object text or NULL). */
char *tsbroker_pool_json(const char *name, int min, int spare, int max,
                         const char *extra);

/*
 * Polls GET /api/v1/admin/desktops/ID as admin until the desktop is in
 * state (and, when user is not NULL, held by user), for at most
 * timeout_ms; fails the test otherwise. A desktop that is gone fails it
 * at once, with the last audit events on stderr.
 */
void tsbroker_wait_state(struct tsbroker_session *admin, const char *id,
                         const char *state, const char *user, int timeout_ms);

/*
 * Polls the audit log of pool (as admin) until it has a "template" event
 * in state ("building", "ready"), for at most timeout_ms; fails the test
 * otherwise, or at once when a template event says "failed" (b's log
 * named).
 */
void tsbroker_wait_template(const struct tsbroker *b,
                            struct tsbroker_session *admin, const char *pool,
                            const char *state, int timeout_ms);

/* True when the JSON text of j contains text (e.g. an event kind). */
int tsbroker_json_has(const json_t *j, const char *text);

/* Polls GET /api/v1/admin/desktops?pool= until count desktops are READY
 * (and no more than max exist), for at most timeout_ms. Returns the ready
 * count seen last. */
int tsbroker_wait_ready(struct tsbroker_session *admin, const char *pool,
                        int count, int timeout_ms);

#endif
