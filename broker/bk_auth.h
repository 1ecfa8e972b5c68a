/*
 * bk_auth.h - PAM logins as conversations that run off the event loop.
 *
 * A login is a PAM transaction (pam_authenticate, then pam_acct_mgmt)
 * running in a thread of its own, so a slow module (a fail delay, an OTP
 * server) never stalls other requests. Whenever PAM asks something, the
 * conversation posts the prompts and waits for answers; the HTTP layer
 * relays them as `POST /api/v1/login` round trips, so stacks that ask more
 * than a password (OTP) work. On success the thread also resolves the
 * user's groups through NSS (getgrouplist), also off the loop.
 *
 * Threads never call back into the caller's loop: they post results on a
 * queue and call notify (which must be thread-safe, e.g.
 * lws_cancel_service); the loop takes them with bk_auth_next().
 *
 * Conversation ids are 256-bit random tokens bound to the source address
 * that started them. A conversation whose prompts stay unanswered for the
 * timeout ends as failed; at most `max` run at once, and at most
 * BK_AUTH_PER_ADDR from one address (so one client cannot hold them all).
 */
#ifndef BK_AUTH_H
#define BK_AUTH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_token.h"

#define BK_AUTH_PER_ADDR 32

struct bk_auth;

struct bk_auth_config {
    const char *service;     /* PAM service name */
    const char *admin_group; /* members are admins */
    int timeout_s;           /* answers must come within this */
    int max;                 /* conversations at once */
};

typedef void (*bk_auth_notify_fn)(void *arg);

int bk_auth_new(struct bk_auth **out, const struct bk_auth_config *cfg,
                bk_auth_notify_fn notify, void *arg);
/* Ends every conversation (PAM sees a conversation error) and joins their
 * threads. */
void bk_auth_free(struct bk_auth *a);

/*
 * Starts a login for user from addr; waiter is the caller's tag for the
 * request that waits (results carry it). Writes the conversation id.
 * Returns 0, -EAGAIN (too many logins running, in all or from addr),
 * -EINVAL (bad user name).
 */
int bk_auth_start(struct bk_auth *a, const char *user, const char *addr,
                  uint64_t waiter, char id[DP_TOKEN_LEN + 1]);

/*
 * Hands answers (array of strings, one per prompt that wants one) to a
 * conversation waiting for them; waiter tags the request now waiting.
 * Returns 0, -ENOENT (unknown or ended, or started from another address),
 * -EBUSY (it is not waiting for answers), -EINVAL (wrong number or type
 * of answers, with the conversation left waiting).
 */
int bk_auth_answer(struct bk_auth *a, const char *id, const char *addr,
                   const json_t *answers, uint64_t waiter);

enum bk_auth_kind {
    BK_AUTH_PROMPT, /* prompts to show, answers wanted */
    BK_AUTH_OK,     /* authenticated and account valid */
    BK_AUTH_FAIL,   /* failed: message says why */
};

struct bk_auth_result {
    uint64_t waiter;
    enum bk_auth_kind kind;
    char conversation[DP_TOKEN_LEN + 1];
    char user[65];
    char addr[64];
    /* PROMPT: [{"style": "password"|"text"|"info"|"error", "text"}]; OK and
     * FAIL: info/error messages PAM showed last (maybe empty). Owned. */
    json_t *prompts;
    json_t *groups;    /* OK: the user's group names; owned */
    int admin;         /* OK: member of admin_group */
    int pam_code;      /* FAIL: PAM's return code */
    int credentials;   /* FAIL: wrong credentials (counts for lockout) */
    char message[160]; /* FAIL: for the user ("wrong user name or
                          password", "account expired", ...) */
};

/* Takes the next result; 1 when one was taken, 0 when none is queued.
 * Free it with bk_auth_result_clear(). */
int bk_auth_next(struct bk_auth *a, struct bk_auth_result *r);
void bk_auth_result_clear(struct bk_auth_result *r);

/*
 * A login without a conversation, in the calling thread (for clients that
 * send user name and password at once: RDP). The password answers every
 * password prompt; a stack that asks anything else (an OTP) fails with
 * "this login needs the web portal". Fills *r (BK_AUTH_OK or
 * BK_AUTH_FAIL; clear it with bk_auth_result_clear). Returns 0, or
 * -EINVAL for a bad user name.
 */
int bk_auth_password(const struct bk_auth_config *cfg, const char *user,
                     const char *password, const char *addr,
                     struct bk_auth_result *r);

/* Number of conversations alive (for metrics). */
int bk_auth_running(struct bk_auth *a);

/* A user name PAM may be given: 1..64 printable characters, no ':'. */
int bk_auth_user_ok(const char *user);

#endif
