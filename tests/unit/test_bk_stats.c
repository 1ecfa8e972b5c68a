/*
 * test_bk_stats.c - the admin dashboard's numbers (broker/bk_stats.h):
 * desktops counted by what they are doing, the ring of samples (oldest
 * first, an hour kept, bounded, since filters), CPU percentages from two
 * readings, and the usage table the HTTP thread reads while the manager
 * replaces it.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk_stats.h"

START_TEST(states_are_counted_as_the_dashboard_shows_them)
{
    struct bk_stats_sample c = {0};
    int s;

    for (s = 0; s < BK_STATE_COUNT; s++)
        bk_stats_count(&c, (enum bk_state)s, 1);
    ck_assert_int_eq(c.desktops, BK_STATE_COUNT);
    ck_assert_int_eq(c.sessions, 1);     /* CONNECTED */
    ck_assert_int_eq(c.in_use, 3);       /* ASSIGNED, CONNECTED, DISCONNECTED */
    ck_assert_int_eq(c.ready, 1);        /* READY */
    ck_assert_int_eq(c.provisioning, 3); /* PROVISIONING, BOOTING, REFRESHING */

    memset(&c, 0, sizeof(c));
    bk_stats_count(&c, BK_CONNECTED, 4);
    bk_stats_count(&c, BK_DISCONNECTED, 2);
    bk_stats_count(&c, BK_REFRESHING, 3);
    bk_stats_count(&c, BK_ERROR, 5);
    bk_stats_count(&c, BK_MAINTENANCE, 0);
    ck_assert_int_eq(c.desktops, 14);
    ck_assert_int_eq(c.sessions, 4);
    ck_assert_int_eq(c.in_use, 6);
    ck_assert_int_eq(c.ready, 0);
    ck_assert_int_eq(c.provisioning, 3);
    ck_assert_int_eq(c.t, 0); /* counting leaves the time alone */
}
END_TEST

static struct bk_stats_sample sample(int64_t t, int ready)
{
    struct bk_stats_sample s = {.t = t, .ready = ready};

    return s;
}

START_TEST(ring_keeps_an_hour_oldest_first)
{
    struct bk_stats *st = NULL;
    struct bk_stats_sample out[400];
    int64_t t0 = 1700000000000LL, now;
    size_t cap, n, i;

    ck_assert_int_eq(bk_stats_new(&st, 0), -EINVAL);
    ck_assert_int_eq(bk_stats_new(&st, 3601), -EINVAL);
    ck_assert_int_eq(bk_stats_new(&st, 10), 0);
    ck_assert_int_eq(bk_stats_interval(st), 10);
    cap = bk_stats_capacity(st);
    ck_assert_uint_eq(cap, 361); /* an hour every 10 s, and the first */

    /* empty at first */
    ck_assert_uint_eq(bk_stats_samples(st, 0, t0, out, cap), 0);
    for (i = 0; i < 3; i++) {
        struct bk_stats_sample s = sample(t0 + (int64_t)i * 10000, (int)i);

        bk_stats_add(st, &s);
    }
    now = t0 + 20000;
    n = bk_stats_samples(st, 0, now, out, cap);
    ck_assert_uint_eq(n, 3);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(out[i].t, t0 + (int64_t)i * 10000);
        ck_assert_int_eq(out[i].ready, (int)i);
    }
    /* since: only newer ones */
    n = bk_stats_samples(st, t0 + 10000, now, out, cap);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0].t, t0 + 20000);
    ck_assert_uint_eq(bk_stats_samples(st, t0 + 20000, now, out, cap), 0);
    /* at most max */
    ck_assert_uint_eq(bk_stats_samples(st, 0, now, out, 2), 2);
    ck_assert_int_eq(out[1].t, t0 + 10000);

    /* two hours of samples: the ring keeps the newest cap, in order */
    for (i = 3; i < 720; i++) {
        struct bk_stats_sample s = sample(t0 + (int64_t)i * 10000, (int)i);

        bk_stats_add(st, &s);
    }
    now = t0 + 719 * 10000LL;
    n = bk_stats_samples(st, 0, now, out, sizeof(out) / sizeof(*out));
    ck_assert_uint_eq(n, cap);
    ck_assert_int_eq(out[0].ready, 720 - (int)cap);
    ck_assert_int_eq(out[n - 1].ready, 719);
    for (i = 1; i < n; i++)
        ck_assert_int_eq(out[i].t - out[i - 1].t, 10000);
    ck_assert_int_ge(out[0].t, now - BK_STATS_KEEP_S * 1000LL);

    /* samples older than an hour are not shown, however few there are
     * (the manager may have been held up) */
    n = bk_stats_samples(st, 0, now + 1800 * 1000LL, out, cap);
    ck_assert_uint_eq(n, 181);
    ck_assert_int_ge(out[0].t, now - 1800 * 1000LL);
    bk_stats_free(st);
}
END_TEST

START_TEST(one_second_interval_is_still_bounded)
{
    struct bk_stats *st = NULL;

    ck_assert_int_eq(bk_stats_new(&st, 1), 0);
    ck_assert_uint_eq(bk_stats_capacity(st), 3601);
    bk_stats_free(st);
    ck_assert_int_eq(bk_stats_new(&st, 3600), 0);
    ck_assert_uint_eq(bk_stats_capacity(st), 2);
    bk_stats_free(st);
    ck_assert_int_eq(bk_stats_new(&st, 7), 0);
    ck_assert_uint_eq(bk_stats_capacity(st), 516); /* ceil(3600 / 7) + 1 */
    bk_stats_free(st);
}
END_TEST

START_TEST(cpu_percent_from_two_readings)
{
    struct bk_stats_usage prev = {.pid = 42, .cpu_ms = 1000, .t_ms = 5000};

    /* half a core over 10 s */
    ck_assert_double_eq(bk_stats_cpu_percent(&prev, 42, 6000, 15000), 50.0);
    /* two cores busy: 200 */
    ck_assert_double_eq(bk_stats_cpu_percent(&prev, 42, 21000, 15000), 200.0);
    /* idle */
    ck_assert_double_eq(bk_stats_cpu_percent(&prev, 42, 1000, 15000), 0.0);
    /* rounded to a tenth: 1 ms over 3 s = 0.0333 % */
    ck_assert_double_eq(bk_stats_cpu_percent(&prev, 42, 1001, 8000), 0.0);
    ck_assert_double_eq(bk_stats_cpu_percent(&prev, 42, 1010, 8000), 0.3);
    /* not comparable: unknown */
    ck_assert_double_lt(bk_stats_cpu_percent(NULL, 42, 6000, 15000), 0);
    ck_assert_double_lt(bk_stats_cpu_percent(&prev, 43, 6000, 15000), 0);
    ck_assert_double_lt(bk_stats_cpu_percent(&prev, 42, 6000, 5000), 0);
    ck_assert_double_lt(bk_stats_cpu_percent(&prev, 42, 999, 15000), 0);
}
END_TEST

static struct bk_stats_usage usage(const char *id, int64_t rss)
{
    struct bk_stats_usage u = {.pid = 1, .rss_mb = rss, .cpu_percent = -1};

    snprintf(u.id, sizeof(u.id), "%s", id);
    return u;
}

START_TEST(usage_table_is_replaced_whole)
{
    struct bk_stats *st = NULL;
    struct bk_stats_usage v[3], got;
    char longid[200];

    ck_assert_int_eq(bk_stats_new(&st, 10), 0);
    ck_assert_int_eq(bk_stats_usage(st, "a-1", &got), -ENOENT);
    v[0] = usage("p-zz", 300);
    v[1] = usage("p-aa", 100);
    v[2] = usage("p-mm", 200);
    ck_assert_int_eq(bk_stats_put_usage(st, v, 3), 0);
    ck_assert_int_eq(bk_stats_usage(st, "p-aa", &got), 0);
    ck_assert_int_eq(got.rss_mb, 100);
    ck_assert_int_eq(bk_stats_usage(st, "p-mm", &got), 0);
    ck_assert_int_eq(got.rss_mb, 200);
    ck_assert_int_eq(bk_stats_usage(st, "p-zz", &got), 0);
    ck_assert_int_eq(got.rss_mb, 300);
    ck_assert_int_eq(bk_stats_usage(st, "p-bb", &got), -ENOENT);
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    ck_assert_int_eq(bk_stats_usage(st, longid, &got), -ENOENT);
    /* the next pass found only one running: the others are gone */
    ck_assert_int_eq(bk_stats_put_usage(st, &v[2], 1), 0);
    ck_assert_int_eq(bk_stats_usage(st, "p-aa", &got), -ENOENT);
    ck_assert_int_eq(bk_stats_usage(st, "p-mm", &got), 0);
    /* and then none */
    ck_assert_int_eq(bk_stats_put_usage(st, NULL, 0), 0);
    ck_assert_int_eq(bk_stats_usage(st, "p-mm", &got), -ENOENT);
    bk_stats_free(st);
}
END_TEST

/* The manager writes while the HTTP thread reads: no torn samples. */
static void *writer(void *arg)
{
    struct bk_stats *st = arg;
    int i;

    for (i = 1; i <= 20000; i++) {
        struct bk_stats_sample s = {
            .t = i, .sessions = i, .in_use = i, .ready = i, .provisioning = i};
        struct bk_stats_usage u = usage("d-1", i);

        bk_stats_add(st, &s);
        bk_stats_put_usage(st, &u, 1);
    }
    return NULL;
}

START_TEST(readers_see_whole_samples)
{
    struct bk_stats *st = NULL;
    struct bk_stats_sample out[400];
    struct bk_stats_usage got;
    pthread_t t;
    int rounds = 0, torn = 0;
    size_t n, i;

    ck_assert_int_eq(bk_stats_new(&st, 10), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, writer, st), 0);
    /* (plain checks in the loop: Check's asserts are slow in numbers) */
    while (rounds++ < 2000) {
        n = bk_stats_samples(st, 0, 20000, out, 400);
        for (i = 0; i < n; i++)
            torn += out[i].sessions != (int)out[i].t ||
                    out[i].provisioning != (int)out[i].t ||
                    (i && out[i].t != out[i - 1].t + 1);
        torn += bk_stats_usage(st, "d-1", &got) == 0 && got.rss_mb <= 0;
    }
    pthread_join(t, NULL);
    ck_assert_int_eq(torn, 0);
    n = bk_stats_samples(st, 0, 20000, out, 400);
    ck_assert_uint_eq(n, bk_stats_capacity(st));
    ck_assert_int_eq(out[n - 1].t, 20000);
    bk_stats_free(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bk_stats");
    TCase *tc = tcase_create("stats");
    SRunner *r;
    int failed;

    tcase_add_test(tc, states_are_counted_as_the_dashboard_shows_them);
    tcase_add_test(tc, ring_keeps_an_hour_oldest_first);
    tcase_add_test(tc, one_second_interval_is_still_bounded);
    tcase_add_test(tc, cpu_percent_from_two_readings);
    tcase_add_test(tc, usage_table_is_replaced_whole);
    tcase_add_test(tc, readers_see_whole_samples);
    suite_add_tcase(s, tc);
    r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
