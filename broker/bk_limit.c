/*
 * bk_limit.c - failed-login counters (see bk_limit.h): a chained hash
 * table of small entries.
 */
#include "bk_limit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BK_LIMIT_BUCKETS 4096
#define BK_LIMIT_KEY_MAX 80

struct bk_limit_entry {
    struct bk_limit_entry *next;
    char key[BK_LIMIT_KEY_MAX];
    int failures;
    int64_t first, last, locked_until;
};

struct bk_limit {
    pthread_mutex_t lock;
    int max, window, lockout, capacity, size;
    struct bk_limit_entry *buckets[BK_LIMIT_BUCKETS];
};

struct bk_limit *bk_limit_new(int max, int window_s, int lockout_s,
                              int capacity)
{
    struct bk_limit *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    l->max = max;
    l->window = window_s;
    l->lockout = lockout_s;
    l->capacity = capacity;
    pthread_mutex_init(&l->lock, NULL);
    return l;
}

void bk_limit_free(struct bk_limit *l)
{
    int i;

    if (!l)
        return;
    for (i = 0; i < BK_LIMIT_BUCKETS; i++)
        while (l->buckets[i]) {
            struct bk_limit_entry *e = l->buckets[i];

            l->buckets[i] = e->next;
            free(e);
        }
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static unsigned bk_limit_hash(const char *key)
{
    unsigned h = 2166136261u; /* FNV-1a */

    while (*key)
        h = (h ^ (unsigned char)*key++) * 16777619u;
    return h % BK_LIMIT_BUCKETS;
}

static struct bk_limit_entry **bk_limit_slot(struct bk_limit *l,
                                             const char *key)
{
    struct bk_limit_entry **pp = &l->buckets[bk_limit_hash(key)];

    while (*pp && strncmp((*pp)->key, key, BK_LIMIT_KEY_MAX - 1) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* An entry that no longer matters: its window and lockout are over. */
static int bk_limit_stale(const struct bk_limit *l,
                          const struct bk_limit_entry *e, int64_t now)
{
    return now >= e->locked_until && now - e->first >= l->window;
}

/* Makes room for one entry: drops stale ones, else the least recent. */
static void bk_limit_evict(struct bk_limit *l, int64_t now)
{
    struct bk_limit_entry **oldest = NULL;
    int i;

    for (i = 0; i < BK_LIMIT_BUCKETS; i++) {
        struct bk_limit_entry **pp = &l->buckets[i];

        while (*pp) {
            if (bk_limit_stale(l, *pp, now)) {
                struct bk_limit_entry *e = *pp;

                *pp = e->next;
                free(e);
                l->size--;
                continue;
            }
            if (!oldest || (*pp)->last < (*oldest)->last)
                oldest = pp;
            pp = &(*pp)->next;
        }
    }
    if (l->size >= l->capacity && oldest) {
        struct bk_limit_entry *e = *oldest;

        *oldest = e->next;
        free(e);
        l->size--;
    }
}

int bk_limit_locked(struct bk_limit *l, const char *key, int64_t now)
{
    struct bk_limit_entry *e;
    int left;

    pthread_mutex_lock(&l->lock);
    e = *bk_limit_slot(l, key);
    left = e && now < e->locked_until ? (int)(e->locked_until - now) : 0;
    pthread_mutex_unlock(&l->lock);
    return left;
}

static int bk_limit_fail_locked(struct bk_limit *l, const char *key,
                                int64_t now)
{
    struct bk_limit_entry **pp = bk_limit_slot(l, key), *e = *pp;

    if (!e) {
        if (l->size >= l->capacity) {
            bk_limit_evict(l, now);
            pp = bk_limit_slot(l, key);
        }
        e = calloc(1, sizeof(*e));
        if (!e)
            return 0;
        strncpy(e->key, key, sizeof(e->key) - 1);
        e->first = now;
        *pp = e;
        l->size++;
    }
    if (now - e->first >= l->window && now >= e->locked_until) {
        e->failures = 0; /* a new window */
        e->first = now;
    }
    e->failures++;
    e->last = now;
    if (e->failures >= l->max) {
        e->locked_until = now + l->lockout;
        e->failures = 0;
        e->first = now;
        return 1;
    }
    return 0;
}

int bk_limit_fail(struct bk_limit *l, const char *key, int64_t now)
{
    int locked;

    pthread_mutex_lock(&l->lock);
    locked = bk_limit_fail_locked(l, key, now);
    pthread_mutex_unlock(&l->lock);
    return locked;
}

void bk_limit_reset(struct bk_limit *l, const char *key)
{
    struct bk_limit_entry **pp, *e;

    pthread_mutex_lock(&l->lock);
    pp = bk_limit_slot(l, key);
    e = *pp;
    if (e) {
        *pp = e->next;
        free(e);
        l->size--;
    }
    pthread_mutex_unlock(&l->lock);
}

int bk_limit_size(const struct bk_limit *l)
{
    return l->size;
}
