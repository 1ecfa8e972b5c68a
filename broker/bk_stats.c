/*
 * bk_stats.c - the admin dashboard's samples and per-desktop usage (see
 * bk_stats.h).
 */
#include "bk_stats.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bk_stats {
    int interval_s;
    pthread_mutex_t lock;
    struct bk_stats_sample *ring;
    size_t cap, head, count;      /* head: where the next sample goes */
    struct bk_stats_usage *usage; /* sorted by id */
    size_t nusage;
};

void bk_stats_count(struct bk_stats_sample *c, enum bk_state s, int n)
{
    c->desktops += n;
    switch (s) {
    case BK_CONNECTED:
        c->sessions += n;
        c->in_use += n;
        break;
    case BK_ASSIGNED:
    case BK_DISCONNECTED: c->in_use += n; break;
    case BK_READY: c->ready += n; break;
    case BK_PROVISIONING:
    case BK_BOOTING:
    case BK_REFRESHING: c->provisioning += n; break;
    default: break;
    }
}

double bk_stats_cpu_percent(const struct bk_stats_usage *prev, pid_t pid,
                            uint64_t cpu_ms, uint64_t t_ms)
{
    double pct;

    if (!prev || prev->pid != pid || t_ms <= prev->t_ms ||
        cpu_ms < prev->cpu_ms)
        return -1;
    pct = 100.0 * (double)(cpu_ms - prev->cpu_ms) / (double)(t_ms - prev->t_ms);
    return round(pct * 10) / 10;
}

int64_t bk_stats_unix_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int bk_stats_new(struct bk_stats **out, int interval_s)
{
    struct bk_stats *st;

    if (interval_s < 1 || interval_s > BK_STATS_KEEP_S)
        return -EINVAL;
    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->interval_s = interval_s;
    /* an hour, and the sample that starts it */
    st->cap = (size_t)(BK_STATS_KEEP_S + interval_s - 1) / interval_s + 1;
    st->ring = calloc(st->cap, sizeof(*st->ring));
    if (!st->ring) {
        free(st);
        return -ENOMEM;
    }
    pthread_mutex_init(&st->lock, NULL);
    *out = st;
    return 0;
}

void bk_stats_free(struct bk_stats *st)
{
    if (!st)
        return;
    pthread_mutex_destroy(&st->lock);
    free(st->ring);
    free(st->usage);
    free(st);
}

int bk_stats_interval(const struct bk_stats *st)
{
    return st->interval_s;
}

size_t bk_stats_capacity(const struct bk_stats *st)
{
    return st->cap;
}

void bk_stats_add(struct bk_stats *st, const struct bk_stats_sample *s)
{
    pthread_mutex_lock(&st->lock);
    st->ring[st->head] = *s;
    st->head = (st->head + 1) % st->cap;
    if (st->count < st->cap)
        st->count++;
    pthread_mutex_unlock(&st->lock);
}

size_t bk_stats_samples(struct bk_stats *st, int64_t since_ms, int64_t now_ms,
                        struct bk_stats_sample *out, size_t max)
{
    int64_t oldest = now_ms - (int64_t)BK_STATS_KEEP_S * 1000;
    size_t i, n = 0;

    pthread_mutex_lock(&st->lock);
    for (i = 0; i < st->count && n < max; i++) {
        const struct bk_stats_sample *s =
            &st->ring[(st->head + st->cap - st->count + i) % st->cap];

        if (s->t > since_ms && s->t >= oldest)
            out[n++] = *s;
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

static int bk_stats_usage_cmp(const void *a, const void *b)
{
    return strcmp(((const struct bk_stats_usage *)a)->id,
                  ((const struct bk_stats_usage *)b)->id);
}

int bk_stats_put_usage(struct bk_stats *st, const struct bk_stats_usage *v,
                       size_t n)
{
    struct bk_stats_usage *copy = NULL, *old;

    if (n) {
        copy = malloc(n * sizeof(*copy));
        if (!copy)
            return -ENOMEM;
        memcpy(copy, v, n * sizeof(*copy));
        qsort(copy, n, sizeof(*copy), bk_stats_usage_cmp);
    }
    pthread_mutex_lock(&st->lock);
    old = st->usage;
    st->usage = copy;
    st->nusage = n;
    pthread_mutex_unlock(&st->lock);
    free(old);
    return 0;
}

int bk_stats_usage(struct bk_stats *st, const char *id,
                   struct bk_stats_usage *out)
{
    struct bk_stats_usage key, *found;
    int r = -ENOENT;

    memset(&key, 0, sizeof(key));
    if (strlen(id) >= sizeof(key.id))
        return -ENOENT;
    strcpy(key.id, id);
    pthread_mutex_lock(&st->lock);
    found = st->nusage ? bsearch(&key, st->usage, st->nusage,
                                 sizeof(*st->usage), bk_stats_usage_cmp)
                       : NULL;
    if (found) {
        *out = *found;
        r = 0;
    }
    pthread_mutex_unlock(&st->lock);
    return r;
}
