/*
 * Unit tests of deskpool-display's one-time credentials (display/ds_cred.h):
 * tickets and VNC passwords are issued, redeemed once, refused with the
 * right reason when unknown, expired or reused, and the store stays
 * bounded. VNC responses are computed as a real client does
 * (libvncserver's rfbEncryptBytes, the DES of VNC authentication).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rfb/rfbproto.h>

#include "ds_cred.h"
#include "tsguest.h"

#define T0 1000000 /* any monotonic origin */

static struct ds_cred_store *st;

static void setup(void)
{
    st = ds_cred_store_new();
    ck_assert_ptr_nonnull(st);
}

static void teardown(void)
{
    ds_cred_store_free(st);
}

static void issue(enum ds_cred_kind kind, const char *desktop, int ttl,
                  int64_t now, char *out)
{
    ck_assert_int_eq(ds_cred_issue(st, kind, desktop, "alice", ttl, now, out,
                                   DS_CRED_TICKET_LEN + 1, NULL),
                     0);
}

/* What a VNC client answers to challenge with password. */
static void vnc_response(const char *password, const unsigned char *challenge,
                         unsigned char *response)
{
    char pw[9] = {0};

    memcpy(response, challenge, DS_CRED_CHALLENGE);
    memcpy(pw, password, strnlen(password, 8));
    rfbEncryptBytes(response, pw);
}

static const unsigned char challenge[DS_CRED_CHALLENGE] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

START_TEST(ticket_redeemed_once)
{
    char t[DS_CRED_TICKET_LEN + 1];
    struct ds_cred_grant g;
    int64_t expires = 0;
    size_t i;

    ck_assert_int_eq(ds_cred_issue(st, DS_CRED_GATEWAY, "desk-1", "alice", 60,
                                   T0, t, sizeof(t), &expires),
                     0);
    ck_assert_int_eq(expires, T0 + 60000);
    ck_assert_uint_eq(strlen(t), DS_CRED_TICKET_LEN);
    for (i = 0; i < strlen(t); i++)
        ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789-_",
                         t[i]));
    ck_assert_int_eq(ds_cred_live(st, T0), 1);
    ck_assert_int_eq(ds_cred_redeem_ticket(st, t, T0 + 1000, &g), DS_CRED_OK);
    ck_assert_str_eq(g.desktop, "desk-1");
    ck_assert_str_eq(g.user, "alice");
    ck_assert_int_eq(g.kind, DS_CRED_GATEWAY);
    ck_assert_int_eq(ds_cred_redeem_ticket(st, t, T0 + 2000, &g), DS_CRED_USED);
    ck_assert_int_eq(ds_cred_live(st, T0 + 2000), 0);
    ck_assert_str_eq(ds_cred_reason(DS_CRED_USED, DS_CRED_GATEWAY),
                     "already used");
}
END_TEST

START_TEST(ticket_expires_then_is_forgotten)
{
    char t[DS_CRED_TICKET_LEN + 1];
    struct ds_cred_grant g;

    issue(DS_CRED_GATEWAY, "d", 1, T0, t);
    ck_assert_int_eq(ds_cred_redeem_ticket(st, t, T0 + 1000, &g),
                     DS_CRED_EXPIRED);
    ds_cred_expire(st, T0 + 1000 + DS_CRED_REMEMBER_MS);
    ck_assert_int_eq(ds_cred_redeem_ticket(st, t, T0 + 2000, &g),
                     DS_CRED_UNKNOWN);
}
END_TEST

START_TEST(garbage_tickets_unknown)
{
    static const char *bad[] = {"",
                                "short",
                                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
                                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    char t[DS_CRED_TICKET_LEN + 1];
    struct ds_cred_grant g;
    size_t i;

    issue(DS_CRED_GATEWAY, "d", 60, T0, t);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(ds_cred_redeem_ticket(st, bad[i], T0, &g),
                         DS_CRED_UNKNOWN);
    /* One character off is another ticket. */
    t[10] = t[10] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(ds_cred_redeem_ticket(st, t, T0, &g), DS_CRED_UNKNOWN);
    ck_assert_int_eq(ds_cred_live(st, T0), 1);
    ck_assert_str_eq(ds_cred_reason(DS_CRED_UNKNOWN, DS_CRED_GATEWAY),
                     "unknown ticket");
}
END_TEST

START_TEST(vnc_password_picks_its_desktop)
{
    char p1[DS_CRED_TICKET_LEN + 1], p2[DS_CRED_TICKET_LEN + 1];
    unsigned char resp[DS_CRED_CHALLENGE];
    struct ds_cred_grant g;
    size_t i;

    issue(DS_CRED_VNC, "desk-1", 60, T0, p1);
    issue(DS_CRED_VNC, "desk-2", 60, T0, p2);
    ck_assert_uint_eq(strlen(p1), DS_CRED_VNC_LEN);
    ck_assert_str_ne(p1, p2);
    for (i = 0; i < DS_CRED_VNC_LEN; i++)
        ck_assert(strchr(DS_CRED_VNC_ALPHABET, p1[i]));

    vnc_response(p2, challenge, resp);
    ck_assert_int_eq(ds_cred_redeem_vnc(st, challenge, resp, T0, &g),
                     DS_CRED_OK);
    ck_assert_str_eq(g.desktop, "desk-2");
    vnc_response(p1, challenge, resp);
    ck_assert_int_eq(ds_cred_redeem_vnc(st, challenge, resp, T0, &g),
                     DS_CRED_OK);
    ck_assert_str_eq(g.desktop, "desk-1");
    ck_assert_int_eq(ds_cred_redeem_vnc(st, challenge, resp, T0, &g),
                     DS_CRED_USED);
}
END_TEST

START_TEST(vnc_wrong_and_expired)
{
    char p[DS_CRED_TICKET_LEN + 1];
    unsigned char resp[DS_CRED_CHALLENGE];
    struct ds_cred_grant g;

    issue(DS_CRED_VNC, "d", 5, T0, p);
    vnc_response("wrongpw1", challenge, resp);
    ck_assert_int_eq(ds_cred_redeem_vnc(st, challenge, resp, T0, &g),
                     DS_CRED_UNKNOWN);
    ck_assert_str_eq(ds_cred_reason(DS_CRED_UNKNOWN, DS_CRED_VNC),
                     "unknown password");
    vnc_response(p, challenge, resp);
    ck_assert_int_eq(ds_cred_redeem_vnc(st, challenge, resp, T0 + 5000, &g),
                     DS_CRED_EXPIRED);
    ck_assert_str_eq(ds_cred_reason(DS_CRED_EXPIRED, DS_CRED_VNC), "expired");
}
END_TEST

START_TEST(revoke_drops_unused)
{
    char a[DS_CRED_TICKET_LEN + 1], b[DS_CRED_TICKET_LEN + 1];
    struct ds_cred_grant g;

    issue(DS_CRED_GATEWAY, "d1", 60, T0, a);
    issue(DS_CRED_GATEWAY, "d2", 60, T0, b);
    ck_assert_int_eq(ds_cred_revoke(st, "d1"), 1);
    ck_assert_int_eq(ds_cred_redeem_ticket(st, a, T0, &g), DS_CRED_UNKNOWN);
    ck_assert_int_eq(ds_cred_redeem_ticket(st, b, T0, &g), DS_CRED_OK);
    ck_assert_int_eq(ds_cred_revoke(st, "d2"), 0); /* used: kept */
}
END_TEST

START_TEST(bad_issue_arguments)
{
    char out[DS_CRED_TICKET_LEN + 1];

    ck_assert_int_lt(
        ds_cred_issue(st, DS_CRED_VNC, "", "u", 60, T0, out, sizeof(out), NULL),
        0);
    ck_assert_int_lt(ds_cred_issue(st, DS_CRED_VNC, "has space", "u", 60, T0,
                                   out, sizeof(out), NULL),
                     0);
    ck_assert_int_lt(
        ds_cred_issue(st, DS_CRED_VNC, "d", "u", 0, T0, out, sizeof(out), NULL),
        0);
    ck_assert_int_lt(ds_cred_issue(st, DS_CRED_VNC, "d", "u", 3601, T0, out,
                                   sizeof(out), NULL),
                     0);
    ck_assert_int_lt(
        ds_cred_issue(st, DS_CRED_GATEWAY, "d", "u", 60, T0, out, 8, NULL), 0);
    ck_assert(!ds_cred_name_ok(
        "a-name-that-is-much-longer-than-sixty-four-characters-is-refused-x"));
    ck_assert(ds_cred_name_ok("desk-01"));
    ck_assert_int_eq(ds_cred_live(st, T0), 0);
}
END_TEST

START_TEST(store_stays_bounded)
{
    char first[DS_CRED_TICKET_LEN + 1], t[DS_CRED_TICKET_LEN + 1];
    struct ds_cred_grant g;
    int i;

    issue(DS_CRED_GATEWAY, "d", 60, T0, first);
    for (i = 0; i < DS_CRED_MAX + 10; i++)
        issue(DS_CRED_GATEWAY, "d", 60, T0 + 1 + i, t);
    /* The oldest made room; the newest works. */
    ck_assert_int_eq(ds_cred_live(st, T0 + DS_CRED_MAX), DS_CRED_MAX);
    ck_assert_int_eq(ds_cred_redeem_ticket(st, first, T0 + DS_CRED_MAX, &g),
                     DS_CRED_UNKNOWN);
    ck_assert_int_eq(ds_cred_redeem_ticket(st, t, T0 + DS_CRED_MAX, &g),
                     DS_CRED_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ds-cred");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ticket_redeemed_once);
    tcase_add_test(tc, ticket_expires_then_is_forgotten);
    tcase_add_test(tc, garbage_tickets_unknown);
    tcase_add_test(tc, vnc_password_picks_its_desktop);
    tcase_add_test(tc, vnc_wrong_and_expired);
    tcase_add_test(tc, revoke_drops_unused);
    tcase_add_test(tc, bad_issue_arguments);
    tcase_add_test(tc, store_stays_bounded);
    suite_add_tcase(s, tc);
    return tsguest_run_checks(s);
}
