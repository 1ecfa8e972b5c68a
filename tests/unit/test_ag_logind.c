/*
 * test_ag_logind.c - the logind backend's choice of the user's session
 * (ag_logind_pick()) from real-shaped `loginctl list-sessions` output and
 * logind session files in a folder of the test's own: a display manager's
 * greeter is no one's session, so the hand-over from the greeter to the
 * user's session is not taken for a logout.
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_desk.h"

static char dir[64];
static char session[32], user[65];

/* A logind session file (/run/systemd/sessions/ID) with class cls. */
static void session_file(const char *id, const char *cls)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, id);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "# This is private data. Do not parse.\nUID=1000\n"
            "USER=x\nACTIVE=1\nSTATE=active\nTYPE=x11\nCLASS=%s\n"
            "SEAT=seat0\nREALTIME=1700000000000000\n",
            cls);
    fclose(f);
}

static void pick(const char *list)
{
    ag_logind_pick(list, dir, session, sizeof(session), user, sizeof(user));
}

static int rm_entry(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s, (void)f, (void)w;
    return remove(p), 0;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/dp-logind-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    nftw(dir, rm_entry, 4, FTW_DEPTH | FTW_PHYS);
}

START_TEST(greeter_is_no_ones_session)
{
    session_file("c1", "greeter");
    pick("     c1  113 lightdm seat0 tty7\n");
    ck_assert_str_eq(user, "");
    ck_assert_str_eq(session, "");
}
END_TEST

/* The greeter's session may linger beside the user's for a moment. */
START_TEST(user_session_beside_the_greeter)
{
    session_file("c1", "greeter");
    session_file("2", "user");
    pick("     c1  113 lightdm seat0 tty7\n"
         "      2 1000 alice   seat0 tty7\n");
    ck_assert_str_eq(user, "alice");
    ck_assert_str_eq(session, "2");
}
END_TEST

/* A graphical session on a seat wins over an earlier one without (ssh). */
START_TEST(seat_session_wins)
{
    session_file("3", "user");
    session_file("4", "user");
    pick("      3 1001 bob\n"
         "      4 1000 alice seat0 tty2\n");
    ck_assert_str_eq(user, "alice");
    pick("      3 1001 bob\n");
    ck_assert_str_eq(user, "bob");
}
END_TEST

/* Lock screens and background sessions are skipped; a session whose file
 * cannot be read is kept (older logind, other layouts). */
START_TEST(other_classes_and_missing_files)
{
    session_file("5", "lock-screen");
    session_file("6", "background");
    pick("      5 1000 alice seat0\n      6 1000 alice\n");
    ck_assert_str_eq(user, "");
    pick("      7 1000 carol seat0\n");
    ck_assert_str_eq(user, "carol");
}
END_TEST

/* Nothing, garbage, and ids that would leave the sessions folder. */
START_TEST(bad_lines)
{
    pick("");
    ck_assert_str_eq(user, "");
    pick(NULL);
    ck_assert_str_eq(user, "");
    pick("garbage\n\n  x\n");
    ck_assert_str_eq(user, "");
    session_file("8", "greeter");
    pick("../8 1000 mallory seat0\n");
    ck_assert_str_eq(user, "");
    ck_assert_str_eq(session, "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ag-logind");
    TCase *tc = tcase_create("pick");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, greeter_is_no_ones_session);
    tcase_add_test(tc, user_session_beside_the_greeter);
    tcase_add_test(tc, seat_session_wins);
    tcase_add_test(tc, other_classes_and_missing_files);
    tcase_add_test(tc, bad_lines);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
