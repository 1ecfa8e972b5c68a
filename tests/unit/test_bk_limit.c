/*
 * Unit tests of failed-login counters (broker/bk_limit.h): when a key is
 * locked and for how long, the counting window, a success forgetting the
 * failures, and the bound on the table. Time is passed in, so the tests
 * walk it forward instead of waiting.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "bk_limit.h"
#include "tsguest.h"

#define T0 1700000000 /* any Unix time */

static struct bk_limit *l;

static void teardown(void)
{
    bk_limit_free(l);
    l = NULL;
}

/* max 3 failures in 60 s lock for 300 s. */
static void setup(void)
{
    l = bk_limit_new(3, 60, 300, 1000);
    ck_assert_ptr_nonnull(l);
}

START_TEST(locks_after_max_failures_not_before)
{
    ck_assert_int_eq(bk_limit_locked(l, "alice", T0), 0);
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0), 0);
    ck_assert_int_eq(bk_limit_locked(l, "alice", T0), 0);
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0 + 10), 0);
    ck_assert_int_eq(bk_limit_locked(l, "alice", T0 + 10), 0);
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0 + 20), 1);
    ck_assert_int_eq(bk_limit_locked(l, "alice", T0 + 20), 300);
    /* Other keys are not affected. */
    ck_assert_int_eq(bk_limit_locked(l, "bob", T0 + 20), 0);
    ck_assert_int_eq(bk_limit_locked(l, "alicex", T0 + 20), 0);
    ck_assert_int_eq(bk_limit_locked(l, "alic", T0 + 20), 0);
}
END_TEST

START_TEST(lock_lasts_lockout_seconds)
{
    int i;

    for (i = 0; i < 3; i++)
        bk_limit_fail(l, "10.0.0.1", T0 + 100);
    ck_assert_int_eq(bk_limit_locked(l, "10.0.0.1", T0 + 100), 300);
    ck_assert_int_eq(bk_limit_locked(l, "10.0.0.1", T0 + 101), 299);
    ck_assert_int_eq(bk_limit_locked(l, "10.0.0.1", T0 + 399), 1);
    ck_assert_int_eq(bk_limit_locked(l, "10.0.0.1", T0 + 400), 0);
    ck_assert_int_eq(bk_limit_locked(l, "10.0.0.1", T0 + 100000), 0);

    /* Afterwards a single failure does not lock again at once. */
    ck_assert_int_eq(bk_limit_fail(l, "10.0.0.1", T0 + 400), 0);
    ck_assert_int_eq(bk_limit_locked(l, "10.0.0.1", T0 + 400), 0);
    ck_assert_int_eq(bk_limit_fail(l, "10.0.0.1", T0 + 401), 0);
    ck_assert_int_eq(bk_limit_fail(l, "10.0.0.1", T0 + 402), 1);
    ck_assert_int_eq(bk_limit_locked(l, "10.0.0.1", T0 + 402), 300);
}
END_TEST

START_TEST(old_failures_start_a_new_count)
{
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0), 0);
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0 + 30), 0);
    /* The window of the first failure is over: this one counts as the
     * first of a new window. */
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0 + 60), 0);
    ck_assert_int_eq(bk_limit_locked(l, "alice", T0 + 60), 0);
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0 + 61), 0);
    ck_assert_int_eq(bk_limit_locked(l, "alice", T0 + 61), 0);
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0 + 62), 1);
    ck_assert_int_gt(bk_limit_locked(l, "alice", T0 + 62), 0);

    /* A failure a day apart never adds up. */
    ck_assert_int_eq(bk_limit_fail(l, "bob", T0), 0);
    ck_assert_int_eq(bk_limit_fail(l, "bob", T0 + 86400), 0);
    ck_assert_int_eq(bk_limit_fail(l, "bob", T0 + 2 * 86400), 0);
    ck_assert_int_eq(bk_limit_locked(l, "bob", T0 + 2 * 86400), 0);
}
END_TEST

START_TEST(reset_forgets)
{
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0), 0);
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0 + 1), 0);
    ck_assert_int_eq(bk_limit_size(l), 1);
    bk_limit_reset(l, "alice"); /* she logged in */
    ck_assert_int_eq(bk_limit_size(l), 0);
    /* Two more failures are two, not four. */
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0 + 2), 0);
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0 + 3), 0);
    ck_assert_int_eq(bk_limit_locked(l, "alice", T0 + 3), 0);

    /* A reset lifts a lock too, and unknown keys are no trouble. */
    ck_assert_int_eq(bk_limit_fail(l, "alice", T0 + 4), 1);
    bk_limit_reset(l, "alice");
    ck_assert_int_eq(bk_limit_locked(l, "alice", T0 + 4), 0);
    bk_limit_reset(l, "nobody");
    ck_assert_int_eq(bk_limit_size(l), 0);
}
END_TEST

START_TEST(long_keys)
{
    char a[200], b[200];

    /* Keys come from the network (user names typed at the login page). */
    memset(a, 'u', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    ck_assert_int_eq(bk_limit_fail(l, a, T0), 0);
    ck_assert_int_eq(bk_limit_fail(l, a, T0), 0);
    ck_assert_int_eq(bk_limit_fail(l, a, T0), 1);
    ck_assert_int_gt(bk_limit_locked(l, a, T0), 0);
    snprintf(b, sizeof(b), "%s", "u");
    ck_assert_int_eq(bk_limit_locked(l, b, T0), 0);
    bk_limit_reset(l, a);
    ck_assert_int_eq(bk_limit_locked(l, a, T0), 0);
    ck_assert_int_eq(bk_limit_size(l), 0);
}
END_TEST

START_TEST(table_is_bounded)
{
    struct bk_limit *small = bk_limit_new(1, 60, 300, 3);
    char key[32];
    int i;

    /* Every key locks at its first failure and stays locked, so nothing
     * is stale: the least recent make room. */
    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
        ck_assert_int_eq(bk_limit_fail(small, key, T0 + i), 1);
        ck_assert_int_le(bk_limit_size(small), 3);
    }
    ck_assert_int_eq(bk_limit_size(small), 3);
    /* The newest three are kept, the first ones are gone. */
    for (i = 997; i < 1000; i++) {
        snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
        ck_assert_msg(bk_limit_locked(small, key, T0 + 1000) > 0, "%s", key);
    }
    ck_assert_int_eq(bk_limit_locked(small, "10.0.0.0", T0 + 1000), 0);
    ck_assert_int_eq(bk_limit_locked(small, "10.0.3.228", T0 + 1000), 0);
    bk_limit_free(small);
}
END_TEST

START_TEST(stale_entries_go_first)
{
    struct bk_limit *small = bk_limit_new(2, 60, 3600, 3);

    /* "locked" is the least recently touched but still locked for an
     * hour; "s1" and "s2" failed once, long ago: they no longer matter. */
    bk_limit_fail(small, "locked", T0);
    ck_assert_int_eq(bk_limit_fail(small, "locked", T0), 1);
    bk_limit_fail(small, "s1", T0 + 1);
    bk_limit_fail(small, "s2", T0 + 2);
    ck_assert_int_eq(bk_limit_size(small), 3);

    ck_assert_int_eq(bk_limit_fail(small, "new", T0 + 600), 0);
    ck_assert_int_le(bk_limit_size(small), 3);
    ck_assert_int_eq(bk_limit_locked(small, "locked", T0 + 600), 3000);
    /* The newcomer is counted. */
    ck_assert_int_eq(bk_limit_fail(small, "new", T0 + 601), 1);
    ck_assert_int_le(bk_limit_size(small), 3);
    bk_limit_free(small);
}
END_TEST

START_TEST(full_table_keeps_counting)
{
    struct bk_limit *small = bk_limit_new(3, 60, 300, 2);
    char key[16];
    int i;

    /* Two active keys fill the table; an attacker's stream of new keys
     * must not make the table grow. */
    bk_limit_fail(small, "alice", T0);
    bk_limit_fail(small, "bob", T0);
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        bk_limit_fail(small, key, T0 + 1);
        ck_assert_int_le(bk_limit_size(small), 2);
    }
    bk_limit_free(small);
}
END_TEST

static Suite *bk_limit_suite(void)
{
    Suite *s = suite_create("bk-limit");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, locks_after_max_failures_not_before);
    tcase_add_test(tc, lock_lasts_lockout_seconds);
    tcase_add_test(tc, old_failures_start_a_new_count);
    tcase_add_test(tc, reset_forgets);
    tcase_add_test(tc, long_keys);
    tcase_add_test(tc, table_is_bounded);
    tcase_add_test(tc, stale_entries_go_first);
    tcase_add_test(tc, full_table_keeps_counting);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tsguest_run_checks(bk_limit_suite());
}
