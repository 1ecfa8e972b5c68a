/*
 * bk_auth.c - PAM conversations in threads (see bk_auth.h).
 *
 * One mutex guards every conversation and the result queue; each
 * conversation has its own condition variable its thread waits on for
 * answers. Finished threads are joined by bk_auth_next() (they have
 * posted their last result and are about to return).
 */
#include "bk_auth.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

enum bk_conv_state { BK_CONV_RUNNING, BK_CONV_WAITING, BK_CONV_DONE };

struct bk_conv {
    struct bk_conv *next;
    struct bk_auth *auth;
    pthread_t thread;
    pthread_cond_t cond;
    enum bk_conv_state state;
    char id[DP_TOKEN_LEN + 1];
    char user[65], addr[64];
    uint64_t waiter;
    json_t *answers;  /* set by bk_auth_answer, taken by the thread */
    json_t *messages; /* info/error shown since the last prompt */
    int cancel;       /* bk_auth_free: give up */
    int joined_ready; /* thread posted its last result */
};

struct bk_result_node {
    struct bk_result_node *next;
    struct bk_auth_result r;
};

struct bk_auth {
    struct bk_auth_config cfg;
    char service[64], admin_group[64];
    bk_auth_notify_fn notify;
    void *arg;
    pthread_mutex_t lock;
    struct bk_conv *convs;
    int count;
    struct bk_result_node *head, **tail;
};

int bk_auth_user_ok(const char *user)
{
    size_t i, n = user ? strlen(user) : 0;

    if (n == 0 || n > 64 || user[0] == '-')
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)user[i] <= 0x20 || user[i] == 0x7f ||
            user[i] == ':' || user[i] == '/')
            return 0;
    return 1;
}

int bk_auth_new(struct bk_auth **out, const struct bk_auth_config *cfg,
                bk_auth_notify_fn notify, void *arg)
{
    struct bk_auth *a = calloc(1, sizeof(*a));

    if (!a)
        return -ENOMEM;
    a->cfg = *cfg;
    snprintf(a->service, sizeof(a->service), "%s", cfg->service);
    snprintf(a->admin_group, sizeof(a->admin_group), "%s", cfg->admin_group);
    a->cfg.service = a->service;
    a->cfg.admin_group = a->admin_group;
    a->notify = notify;
    a->arg = arg;
    pthread_mutex_init(&a->lock, NULL);
    a->tail = &a->head;
    *out = a;
    return 0;
}

/* Queues a result (lock held; the caller then wakes the loop). Returns
 * it for the caller to complete, or NULL when out of memory (nobody hears
 * of it; the request waiting times out). */
static struct bk_auth_result *bk_auth_post(struct bk_auth *a, struct bk_conv *c,
                                           enum bk_auth_kind kind,
                                           json_t *prompts)
{
    struct bk_result_node *n = calloc(1, sizeof(*n));

    if (!n) {
        json_decref(prompts);
        return NULL;
    }
    n->r.waiter = c->waiter;
    n->r.kind = kind;
    n->r.prompts = prompts ? prompts : json_array();
    snprintf(n->r.conversation, sizeof(n->r.conversation), "%s", c->id);
    snprintf(n->r.user, sizeof(n->r.user), "%s", c->user);
    snprintf(n->r.addr, sizeof(n->r.addr), "%s", c->addr);
    *a->tail = n;
    a->tail = &n->next;
    return &n->r;
}

static const char *bk_auth_style(int msg_style)
{
    switch (msg_style) {
    case PAM_PROMPT_ECHO_OFF: return "password";
    case PAM_PROMPT_ECHO_ON: return "text";
    case PAM_ERROR_MSG: return "error";
    default: return "info";
    }
}

static void bk_auth_free_responses(struct pam_response *resp, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (resp[i].resp) {
            OPENSSL_cleanse(resp[i].resp, strlen(resp[i].resp));
            free(resp[i].resp);
        }
    free(resp);
}

/* Waits (lock held) until answers arrive, the deadline passes or the
 * conversation is cancelled. Returns the answers (owned) or NULL. */
static json_t *bk_auth_wait_answers(struct bk_conv *c)
{
    struct bk_auth *a = c->auth;
    struct timespec deadline;
    json_t *ans;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += a->cfg.timeout_s;
    while (!c->answers && !c->cancel)
        if (pthread_cond_timedwait(&c->cond, &a->lock, &deadline) == ETIMEDOUT)
            break;
    ans = c->answers;
    c->answers = NULL;
    c->state = BK_CONV_RUNNING;
    return ans;
}

/* PAM's conversation function, in the conversation's thread. Messages
 * that need no answer are collected and shown with the next prompts (or
 * the result); prompts go to the client and wait for its answers. */
static int bk_auth_conv(int n, const struct pam_message **msg,
                        struct pam_response **resp_out, void *appdata)
{
    struct bk_conv *c = appdata;
    struct bk_auth *a = c->auth;
    struct pam_response *resp;
    json_t *prompts, *answers;
    int i, want = 0, k = 0;

    if (n <= 0 || n > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    resp = calloc((size_t)n, sizeof(*resp));
    if (!resp)
        return PAM_BUF_ERR;
    pthread_mutex_lock(&a->lock);
    for (i = 0; i < n; i++) {
        const char *text = msg[i]->msg ? msg[i]->msg : "";

        json_array_append_new(c->messages,
                              json_pack("{ss ss}", "style",
                                        bk_auth_style(msg[i]->msg_style),
                                        "text", text));
        if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
            msg[i]->msg_style == PAM_PROMPT_ECHO_ON)
            want++;
    }
    if (!want) {
        pthread_mutex_unlock(&a->lock);
        *resp_out = resp;
        return PAM_SUCCESS;
    }
    prompts = c->messages;
    c->messages = json_array();
    c->state = BK_CONV_WAITING;
    bk_auth_post(a, c, BK_AUTH_PROMPT, prompts);
    pthread_mutex_unlock(&a->lock);
    a->notify(a->arg);

    pthread_mutex_lock(&a->lock);
    answers = bk_auth_wait_answers(c);
    pthread_mutex_unlock(&a->lock);
    if (!answers || (int)json_array_size(answers) != want) {
        json_decref(answers);
        bk_auth_free_responses(resp, n);
        return PAM_CONV_ERR;
    }
    for (i = 0; i < n; i++) {
        if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF &&
            msg[i]->msg_style != PAM_PROMPT_ECHO_ON)
            continue;
        resp[i].resp = strdup(json_string_value(json_array_get(answers, k++)));
        if (!resp[i].resp) {
            json_decref(answers);
            bk_auth_free_responses(resp, n);
            return PAM_BUF_ERR;
        }
    }
    json_decref(answers); /* bk_auth_answer copied and will not reuse */
    *resp_out = resp;
    return PAM_SUCCESS;
}

/* The user's groups by name (NSS), and whether one is the admin group. */
static json_t *bk_auth_groups(const char *user, const char *admin_group,
                              int *admin)
{
    char buf[16384];
    struct passwd pw, *pwp = NULL;
    gid_t gids[256];
    int i, ng = (int)(sizeof(gids) / sizeof(gids[0]));
    json_t *names = json_array();

    *admin = 0;
    if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwp) || !pwp)
        return names; /* PAM knows users NSS does not: no groups */
    if (getgrouplist(user, pw.pw_gid, gids, &ng) < 0)
        ng = (int)(sizeof(gids) / sizeof(gids[0])); /* the first 256 */
    for (i = 0; i < ng; i++) {
        struct group gr, *grp = NULL;
        char gbuf[16384];

        if (getgrgid_r(gids[i], &gr, gbuf, sizeof(gbuf), &grp) || !grp)
            continue;
        json_array_append_new(names, json_string(grp->gr_name));
        if (!strcmp(grp->gr_name, admin_group))
            *admin = 1;
    }
    return names;
}

/* What a failed login tells the user. Unknown users and wrong passwords
 * read the same, so the API does not reveal which accounts exist. */
static const char *bk_auth_failure(int code, int *credentials)
{
    *credentials = 0;
    switch (code) {
    case PAM_AUTH_ERR:
    case PAM_USER_UNKNOWN:
    case PAM_CRED_INSUFFICIENT:
    case PAM_AUTHINFO_UNAVAIL:
    case PAM_CRED_ERR: *credentials = 1; return "wrong user name or password";
    case PAM_MAXTRIES: *credentials = 1; return "too many attempts";
    case PAM_ACCT_EXPIRED: return "account expired";
    case PAM_NEW_AUTHTOK_REQD:
    case PAM_AUTHTOK_EXPIRED:
        return "password expired: change it before logging in";
    case PAM_PERM_DENIED: return "account locked or not allowed to log in";
    case PAM_CONV_ERR:
    case PAM_ABORT: return "login abandoned (no answer in time)";
    default: return "login failed";
    }
}

static void *bk_auth_thread(void *arg)
{
    struct bk_conv *c = arg;
    struct bk_auth *a = c->auth;
    struct pam_conv conv = {bk_auth_conv, c};
    pam_handle_t *pamh = NULL;
    struct bk_auth_result *res;
    json_t *groups = NULL;
    int r, admin = 0, credentials = 0;
    const char *why;

    r = pam_start(a->cfg.service, c->user, &conv, &pamh);
    if (r == PAM_SUCCESS) {
        pam_set_item(pamh, PAM_RHOST, c->addr);
        r = pam_authenticate(pamh, PAM_DISALLOW_NULL_AUTHTOK);
        if (r == PAM_SUCCESS)
            r = pam_acct_mgmt(pamh, PAM_DISALLOW_NULL_AUTHTOK);
    }
    if (pamh)
        pam_end(pamh, r);
    if (r == PAM_SUCCESS)
        groups = bk_auth_groups(c->user, a->cfg.admin_group, &admin);

    pthread_mutex_lock(&a->lock);
    why = bk_auth_failure(r, &credentials);
    if (c->cancel && r != PAM_SUCCESS)
        why = "login cancelled";
    res = bk_auth_post(a, c, r == PAM_SUCCESS ? BK_AUTH_OK : BK_AUTH_FAIL,
                       c->messages);
    c->messages = NULL;
    if (res) {
        res->groups = groups;
        res->admin = admin;
        res->pam_code = r;
        res->credentials = credentials;
        if (r != PAM_SUCCESS)
            snprintf(res->message, sizeof(res->message), "%s", why);
    } else {
        json_decref(groups);
    }
    c->state = BK_CONV_DONE;
    pthread_mutex_unlock(&a->lock);
    a->notify(a->arg);
    return NULL;
}

/* The conversation of bk_auth_password(): appdata is the password. */
static int bk_auth_conv_password(int n, const struct pam_message **msg,
                                 struct pam_response **resp_out, void *appdata)
{
    struct pam_response *resp;
    int i;

    if (n <= 0 || n > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    resp = calloc((size_t)n, sizeof(*resp));
    if (!resp)
        return PAM_BUF_ERR;
    for (i = 0; i < n; i++) {
        if (msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
            bk_auth_free_responses(resp, n);
            return PAM_CONV_ERR; /* a question only a person can answer */
        }
        if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF &&
            !(resp[i].resp = strdup(appdata))) {
            bk_auth_free_responses(resp, n);
            return PAM_BUF_ERR;
        }
    }
    *resp_out = resp;
    return PAM_SUCCESS;
}

int bk_auth_password(const struct bk_auth_config *cfg, const char *user,
                     const char *password, const char *addr,
                     struct bk_auth_result *res)
{
    struct pam_conv conv = {bk_auth_conv_password, (void *)password};
    pam_handle_t *pamh = NULL;
    int r;

    memset(res, 0, sizeof(*res));
    if (!bk_auth_user_ok(user))
        return -EINVAL;
    snprintf(res->user, sizeof(res->user), "%s", user);
    snprintf(res->addr, sizeof(res->addr), "%s", addr ? addr : "");
    res->prompts = json_array();
    r = pam_start(cfg->service, user, &conv, &pamh);
    if (r == PAM_SUCCESS) {
        pam_set_item(pamh, PAM_RHOST, res->addr);
        r = pam_authenticate(pamh, PAM_DISALLOW_NULL_AUTHTOK);
        if (r == PAM_SUCCESS)
            r = pam_acct_mgmt(pamh, PAM_DISALLOW_NULL_AUTHTOK);
    }
    if (pamh)
        pam_end(pamh, r);
    res->pam_code = r;
    if (r == PAM_SUCCESS) {
        res->kind = BK_AUTH_OK;
        res->groups = bk_auth_groups(user, cfg->admin_group, &res->admin);
        return 0;
    }
    res->kind = BK_AUTH_FAIL;
    snprintf(res->message, sizeof(res->message), "%s",
             r == PAM_CONV_ERR ? "this login needs the web portal (it asks "
                                 "more than a password)"
                               : bk_auth_failure(r, &res->credentials));
    if (r == PAM_CONV_ERR)
        res->credentials = 0;
    return 0;
}

/* Conversations alive from addr (lock held). */
static int bk_auth_from(struct bk_auth *a, const char *addr)
{
    struct bk_conv *c;
    int n = 0;

    for (c = a->convs; c; c = c->next)
        n += c->state != BK_CONV_DONE && !strcmp(c->addr, addr);
    return n;
}

int bk_auth_start(struct bk_auth *a, const char *user, const char *addr,
                  uint64_t waiter, char id[DP_TOKEN_LEN + 1])
{
    struct bk_conv *c;
    pthread_attr_t attr;
    int r;

    if (!bk_auth_user_ok(user))
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (dp_token_new(c->id)) {
        free(c);
        return -EIO;
    }
    c->auth = a;
    c->waiter = waiter;
    c->messages = json_array();
    snprintf(c->user, sizeof(c->user), "%s", user);
    snprintf(c->addr, sizeof(c->addr), "%s", addr ? addr : "");
    pthread_cond_init(&c->cond, NULL);

    pthread_mutex_lock(&a->lock);
    if (a->count >= a->cfg.max ||
        bk_auth_from(a, c->addr) >= BK_AUTH_PER_ADDR) {
        pthread_mutex_unlock(&a->lock);
        r = -EAGAIN;
        goto fail;
    }
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024); /* PAM needs little */
    r = -pthread_create(&c->thread, &attr, bk_auth_thread, c);
    pthread_attr_destroy(&attr);
    if (r) {
        pthread_mutex_unlock(&a->lock);
        goto fail;
    }
    c->next = a->convs;
    a->convs = c;
    a->count++;
    memcpy(id, c->id, sizeof(c->id));
    pthread_mutex_unlock(&a->lock);
    return 0;
fail:
    json_decref(c->messages);
    pthread_cond_destroy(&c->cond);
    free(c);
    return r;
}

/* The conversation with this id (lock held), comparing in constant time. */
static struct bk_conv *bk_auth_find(struct bk_auth *a, const char *id)
{
    struct bk_conv *c;

    if (!dp_token_shape_ok(id))
        return NULL;
    for (c = a->convs; c; c = c->next)
        if (dp_token_equal(c->id, id))
            return c;
    return NULL;
}

int bk_auth_answer(struct bk_auth *a, const char *id, const char *addr,
                   const json_t *answers, uint64_t waiter)
{
    struct bk_conv *c;
    json_t *copy, *e;
    size_t i;
    int r = 0;

    if (!json_is_array(answers) || json_array_size(answers) > 32)
        return -EINVAL;
    json_array_foreach(answers, i, e)
    {
        if (!json_is_string(e) || json_string_length(e) > 1024 ||
            strlen(json_string_value(e)) != json_string_length(e))
            return -EINVAL;
    }
    pthread_mutex_lock(&a->lock);
    c = bk_auth_find(a, id);
    if (!c || c->state == BK_CONV_DONE || strcmp(c->addr, addr ? addr : ""))
        r = -ENOENT;
    else if (c->state != BK_CONV_WAITING || c->answers)
        r = -EBUSY;
    if (!r) {
        copy = json_deep_copy(answers);
        if (!copy) {
            r = -ENOMEM;
        } else {
            c->answers = copy;
            c->waiter = waiter;
            pthread_cond_signal(&c->cond);
        }
    }
    pthread_mutex_unlock(&a->lock);
    return r;
}

/* Joins and frees conversations whose threads are done (lock held). */
static void bk_auth_reap(struct bk_auth *a)
{
    struct bk_conv **pp = &a->convs;

    while (*pp) {
        struct bk_conv *c = *pp;

        if (c->state != BK_CONV_DONE) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        a->count--;
        pthread_mutex_unlock(&a->lock);
        pthread_join(c->thread, NULL);
        pthread_mutex_lock(&a->lock);
        json_decref(c->answers);
        json_decref(c->messages);
        pthread_cond_destroy(&c->cond);
        OPENSSL_cleanse(c->id, sizeof(c->id));
        free(c);
        pp = &a->convs; /* the list may have changed while unlocked */
    }
}

int bk_auth_next(struct bk_auth *a, struct bk_auth_result *r)
{
    struct bk_result_node *n;

    pthread_mutex_lock(&a->lock);
    bk_auth_reap(a);
    n = a->head;
    if (n) {
        a->head = n->next;
        if (!a->head)
            a->tail = &a->head;
        *r = n->r;
    }
    pthread_mutex_unlock(&a->lock);
    free(n);
    return n != NULL;
}

void bk_auth_result_clear(struct bk_auth_result *r)
{
    json_decref(r->prompts);
    json_decref(r->groups);
    memset(r, 0, sizeof(*r));
}

int bk_auth_running(struct bk_auth *a)
{
    int n;

    pthread_mutex_lock(&a->lock);
    n = a->count;
    pthread_mutex_unlock(&a->lock);
    return n;
}

void bk_auth_free(struct bk_auth *a)
{
    struct bk_conv *c;
    struct bk_auth_result r;

    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    for (c = a->convs; c; c = c->next) {
        c->cancel = 1;
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&a->lock);
    for (;;) { /* threads finish as their PAM calls return */
        int left;

        while (bk_auth_next(a, &r))
            bk_auth_result_clear(&r);
        pthread_mutex_lock(&a->lock);
        left = a->count;
        pthread_mutex_unlock(&a->lock);
        if (!left)
            break;
        usleep(10000);
    }
    pthread_mutex_destroy(&a->lock);
    free(a);
}
