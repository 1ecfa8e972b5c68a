/*
 * bk_stats.h - what the admin dashboard plots: a ring of samples of the
 * desktops' states (one every stats_interval seconds, the last hour, in
 * memory only: a restarted broker starts a fresh history) and the latest
 * CPU and memory use of each desktop's QEMU process.
 *
 * The pool manager's thread writes (bk_stats_add, bk_stats_put_usage)
 * after its sampling pass; the HTTP thread reads (bk_stats_samples,
 * bk_stats_usage). A mutex guards both, held only while copying. Memory is
 * bounded: the ring has room for an hour of samples (allocated once), the
 * usage table one entry per desktop of the last pass.
 *
 * bk_stats_count() and bk_stats_cpu_percent() are pure: the sampling
 * pass and the API use them, the unit tests check them.
 */
#ifndef BK_STATS_H
#define BK_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bk_store.h"

#define BK_STATS_KEEP_S 3600 /* samples older than this are forgotten */

/* Desktops by what they are doing, at time t. */
struct bk_stats_sample {
    int64_t t;        /* Unix ms */
    int desktops;     /* all of them */
    int sessions;     /* CONNECTED: someone is looking at it */
    int in_use;       /* ASSIGNED, CONNECTED, DISCONNECTED: a user holds it */
    int ready;        /* READY */
    int provisioning; /* PROVISIONING, BOOTING, REFRESHING: on their way */
};

/* Adds n desktops in state s to the counts of *c (t is left alone). */
void bk_stats_count(struct bk_stats_sample *c, enum bk_state s, int n);

/* One desktop's QEMU at the last sampling pass. */
struct bk_stats_usage {
    char id[BK_NAME_MAX + 1];
    pid_t pid;
    uint64_t cpu_ms; /* its CPU time (user + system) at t_ms */
    uint64_t t_ms;   /* when it was read, monotonic ms (dp_time_now_ms) */
    int64_t rss_mb;  /* resident memory, MiB */
    /* Instant clones only (-1 for others): of rss_mb, what this QEMU
     * alone maps and what other processes map too (its template's RAM in
     * the page cache, QEMU's libraries), MiB. */
    int64_t private_mb, shared_mb;
    /* CPU use since the reading before, 100 = one core; < 0 while
     * unknown (the first reading of this process) */
    double cpu_percent;
};

/*
 * CPU use of a process between an earlier reading prev (NULL: none) and
 * now (pid, cpu_ms at t_ms): 100 per core kept busy, rounded to 0.1.
 * -1 when the two cannot be compared: no earlier reading, another
 * process (the VM restarted), no time between them, or a CPU time that
 * went backwards.
 */
double bk_stats_cpu_percent(const struct bk_stats_usage *prev, pid_t pid,
                            uint64_t cpu_ms, uint64_t t_ms);

/* The wall clock in Unix ms (samples' and the API's times). */
int64_t bk_stats_unix_ms(void);

struct bk_stats;

/* A ring for an hour of samples taken every interval_s (1-3600) seconds.
 * 0, -EINVAL or -ENOMEM. */
int bk_stats_new(struct bk_stats **out, int interval_s);
void bk_stats_free(struct bk_stats *st);

int bk_stats_interval(const struct bk_stats *st);
/* How many samples the ring holds at most. */
size_t bk_stats_capacity(const struct bk_stats *st);

/* Appends a sample; the oldest goes when the ring is full. */
void bk_stats_add(struct bk_stats *st, const struct bk_stats_sample *s);

/*
 * Copies the samples newer than since_ms (t > since_ms) and not older
 * than BK_STATS_KEEP_S before now_ms, oldest first, into out (at most
 * max). Returns how many.
 */
size_t bk_stats_samples(struct bk_stats *st, int64_t since_ms, int64_t now_ms,
                        struct bk_stats_sample *out, size_t max);

/* Replaces the usage table with v[0..n) (copied). 0 or -ENOMEM (the old
 * table stays). */
int bk_stats_put_usage(struct bk_stats *st, const struct bk_stats_usage *v,
                       size_t n);

/* Desktop id's entry of the usage table: 0, or -ENOENT when its QEMU did
 * not run at the last pass. */
int bk_stats_usage(struct bk_stats *st, const char *id,
                   struct bk_stats_usage *out);

#endif
