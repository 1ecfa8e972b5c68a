/*
 * ds_cred.c - one-time credentials (see ds_cred.h).
 *
 * A flat array of DS_CRED_MAX entries: the store is small (credentials
 * live a minute) and a linear scan over a few thousand entries costs
 * microseconds, well under one connection's set-up.
 */
#include "ds_cred.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <rfb/rfbproto.h>

#include "dp_token.h"

#define DS_CRED_TICKET_BYTES 32
#define DS_CRED_HASH_LEN     DP_TOKEN_HASH_LEN

struct ds_cred_entry {
    int in_use; /* slot holds a credential */
    enum ds_cred_kind kind;
    int used;          /* redeemed */
    int64_t issued_ms; /* for "oldest first" */
    int64_t expires_ms;
    int64_t forget_ms;             /* when used or expired ones are dropped */
    char vnc[DS_CRED_VNC_LEN + 1]; /* DS_CRED_VNC */
    unsigned char hash[DS_CRED_HASH_LEN]; /* DS_CRED_GATEWAY: SHA-256 */
    struct ds_cred_grant grant;
};

struct ds_cred_store {
    struct ds_cred_entry e[DS_CRED_MAX];
};

struct ds_cred_store *ds_cred_store_new(void)
{
    return calloc(1, sizeof(struct ds_cred_store));
}

void ds_cred_store_free(struct ds_cred_store *s)
{
    if (s)
        OPENSSL_cleanse(s, sizeof(*s)); /* passwords are kept in clear */
    free(s);
}

int ds_cred_name_ok(const char *name)
{
    size_t n;

    if (!name)
        return 0;
    for (n = 0; name[n]; n++)
        if (name[n] <= 0x20 || name[n] >= 0x7f || n >= DS_CRED_NAME_MAX)
            return 0;
    return n > 0;
}

static int ds_cred_live_at(const struct ds_cred_entry *e, int64_t now_ms)
{
    return e->in_use && !e->used && now_ms < e->expires_ms;
}

/* A free slot: an empty one, else the oldest forgettable, else the
 * oldest of all (the store is full of live credentials: a flood). */
static struct ds_cred_entry *ds_cred_slot(struct ds_cred_store *s,
                                          int64_t now_ms)
{
    struct ds_cred_entry *dead = NULL, *oldest = NULL;
    int i;

    for (i = 0; i < DS_CRED_MAX; i++) {
        struct ds_cred_entry *e = &s->e[i];

        if (!e->in_use)
            return e;
        if (!ds_cred_live_at(e, now_ms) &&
            (!dead || e->issued_ms < dead->issued_ms))
            dead = e;
        if (!oldest || e->issued_ms < oldest->issued_ms)
            oldest = e;
    }
    return dead ? dead : oldest;
}

static int ds_cred_vnc_taken(const struct ds_cred_store *s, const char *pw,
                             int64_t now_ms)
{
    int i;

    for (i = 0; i < DS_CRED_MAX; i++)
        if (ds_cred_live_at(&s->e[i], now_ms) && s->e[i].kind == DS_CRED_VNC &&
            !strcmp(s->e[i].vnc, pw))
            return 1;
    return 0;
}

int ds_cred_issue(struct ds_cred_store *s, enum ds_cred_kind kind,
                  const char *desktop, const char *user, int ttl_s,
                  int64_t now_ms, char *out, size_t out_size,
                  int64_t *expires_ms)
{
    struct ds_cred_entry *e;
    char text[DS_CRED_TICKET_LEN + 1];
    int r, tries;

    if (!s || !out || out_size < DS_CRED_TICKET_LEN + 1 ||
        !ds_cred_name_ok(desktop) || !ds_cred_name_ok(user) || ttl_s < 1 ||
        ttl_s > 3600 || (kind != DS_CRED_VNC && kind != DS_CRED_GATEWAY))
        return -EINVAL;
    e = ds_cred_slot(s, now_ms);
    memset(e, 0, sizeof(*e));
    if (kind == DS_CRED_VNC) {
        /* 57^8 passwords: a clash among the live ones is rare; retry. */
        for (tries = 0; tries < 16; tries++) {
            r = dp_token_random_text(text, DS_CRED_VNC_LEN,
                                     DS_CRED_VNC_ALPHABET);
            if (r < 0)
                return r;
            if (!ds_cred_vnc_taken(s, text, now_ms))
                break;
        }
        if (tries == 16)
            return -EIO;
        memcpy(e->vnc, text, sizeof(e->vnc));
    } else {
        r = dp_token_random_text(text, DS_CRED_TICKET_LEN, DP_TOKEN_B64URL);
        if (!r)
            r = dp_token_hash(text, e->hash);
        if (r < 0)
            return r;
    }
    e->in_use = 1;
    e->kind = kind;
    e->issued_ms = now_ms;
    e->expires_ms = now_ms + (int64_t)ttl_s * 1000;
    e->forget_ms = e->expires_ms + DS_CRED_REMEMBER_MS;
    e->grant.kind = kind;
    snprintf(e->grant.desktop, sizeof(e->grant.desktop), "%s", desktop);
    snprintf(e->grant.user, sizeof(e->grant.user), "%s", user);
    snprintf(out, out_size, "%s", text);
    OPENSSL_cleanse(text, sizeof(text));
    if (expires_ms)
        *expires_ms = e->expires_ms;
    return 0;
}

/* The verdict on a matching entry; redeems it when it is live. */
static enum ds_cred_refusal ds_cred_take(struct ds_cred_entry *e,
                                         int64_t now_ms,
                                         struct ds_cred_grant *grant)
{
    if (e->used)
        return DS_CRED_USED;
    if (now_ms >= e->expires_ms)
        return DS_CRED_EXPIRED;
    e->used = 1;
    e->forget_ms = now_ms + DS_CRED_REMEMBER_MS;
    if (grant)
        *grant = e->grant;
    return DS_CRED_OK;
}

static int ds_cred_ticket_shape_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;

    return n == DS_CRED_TICKET_LEN && strspn(t, DP_TOKEN_B64URL) == n;
}

enum ds_cred_refusal ds_cred_redeem_ticket(struct ds_cred_store *s,
                                           const char *ticket, int64_t now_ms,
                                           struct ds_cred_grant *grant)
{
    unsigned char hash[DS_CRED_HASH_LEN];
    int i;

    if (!s || !ds_cred_ticket_shape_ok(ticket) || dp_token_hash(ticket, hash))
        return DS_CRED_UNKNOWN;
    for (i = 0; i < DS_CRED_MAX; i++) {
        struct ds_cred_entry *e = &s->e[i];

        if (e->in_use && e->kind == DS_CRED_GATEWAY &&
            CRYPTO_memcmp(e->hash, hash, sizeof(hash)) == 0)
            return ds_cred_take(e, now_ms, grant);
    }
    return DS_CRED_UNKNOWN;
}

/* Does password answer challenge with response (VNC authentication)? */
static int ds_cred_vnc_matches(const char *password,
                               const unsigned char *challenge,
                               const unsigned char *response)
{
    unsigned char buf[DS_CRED_CHALLENGE];
    char pw[DS_CRED_VNC_LEN + 1];
    int ok;

    memcpy(buf, challenge, sizeof(buf));
    snprintf(pw, sizeof(pw), "%s", password);
    rfbEncryptBytes(buf, pw); /* in place */
    ok = CRYPTO_memcmp(buf, response, sizeof(buf)) == 0;
    OPENSSL_cleanse(pw, sizeof(pw));
    return ok;
}

enum ds_cred_refusal
ds_cred_redeem_vnc(struct ds_cred_store *s,
                   const unsigned char challenge[DS_CRED_CHALLENGE],
                   const unsigned char response[DS_CRED_CHALLENGE],
                   int64_t now_ms, struct ds_cred_grant *grant)
{
    struct ds_cred_entry *stale = NULL;
    int i;

    if (!s || !challenge || !response)
        return DS_CRED_UNKNOWN;
    /* Live ones first: a password may repeat among used ones. */
    for (i = 0; i < DS_CRED_MAX; i++) {
        struct ds_cred_entry *e = &s->e[i];

        if (!e->in_use || e->kind != DS_CRED_VNC ||
            !ds_cred_vnc_matches(e->vnc, challenge, response))
            continue;
        if (ds_cred_live_at(e, now_ms))
            return ds_cred_take(e, now_ms, grant);
        stale = e;
    }
    return stale ? ds_cred_take(stale, now_ms, grant) : DS_CRED_UNKNOWN;
}

int ds_cred_revoke(struct ds_cred_store *s, const char *desktop)
{
    int i, n = 0;

    for (i = 0; s && desktop && i < DS_CRED_MAX; i++) {
        struct ds_cred_entry *e = &s->e[i];

        if (e->in_use && !e->used && !strcmp(e->grant.desktop, desktop)) {
            OPENSSL_cleanse(e, sizeof(*e));
            n++;
        }
    }
    return n;
}

void ds_cred_expire(struct ds_cred_store *s, int64_t now_ms)
{
    int i;

    for (i = 0; s && i < DS_CRED_MAX; i++)
        if (s->e[i].in_use && now_ms >= s->e[i].forget_ms)
            OPENSSL_cleanse(&s->e[i], sizeof(s->e[i]));
}

int ds_cred_live(const struct ds_cred_store *s, int64_t now_ms)
{
    int i, n = 0;

    for (i = 0; s && i < DS_CRED_MAX; i++)
        n += ds_cred_live_at(&s->e[i], now_ms);
    return n;
}

const char *ds_cred_reason(enum ds_cred_refusal r, enum ds_cred_kind kind)
{
    switch (r) {
    case DS_CRED_OK: return "ok";
    case DS_CRED_EXPIRED: return "expired";
    case DS_CRED_USED: return "already used";
    case DS_CRED_UNKNOWN:
    default: return kind == DS_CRED_VNC ? "unknown password" : "unknown ticket";
    }
}
