/*
 * Unit tests of the daemon ⇄ session channel (display/ds_chan.h): whole
 * JSON messages, a descriptor passed along, and what a misbehaving peer
 * can send (not JSON, not an object, too long, extra descriptors).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ds_chan.h"
#include "tsguest.h"

static int pair[2];

static void setup(void)
{
    ck_assert_int_eq(ds_chan_pair(pair), 0);
}

static void teardown(void)
{
    close(pair[0]);
    close(pair[1]);
}

START_TEST(message_round_trip)
{
    json_t *got;
    int fd;

    ck_assert_int_eq(
        ds_chan_send(pair[0],
                     json_pack("{s:s, s:i}", "op", "stats", "frames", 7), -1),
        0);
    ck_assert_int_eq(ds_chan_recv(pair[1], &got, &fd), 0);
    ck_assert_int_eq(fd, -1);
    ck_assert_str_eq(json_string_value(json_object_get(got, "op")), "stats");
    ck_assert_int_eq(json_integer_value(json_object_get(got, "frames")), 7);
    json_decref(got);
    /* Nothing more: the peer does not block. */
    ck_assert_int_eq(ds_chan_recv(pair[1], &got, &fd), -EAGAIN);
    ck_assert_ptr_null(got);
}
END_TEST

START_TEST(descriptor_passes_along)
{
    int p[2], fd = -1;
    char c = 0;
    json_t *got;

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(ds_chan_send(pair[0], json_pack("{s:b}", "ok", 1), p[0]),
                     0);
    close(p[0]); /* the sender keeps and closes its own */
    ck_assert_int_eq(ds_chan_recv_wait(pair[1], &got, &fd, 1000), 0);
    json_decref(got);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ck_assert_int_eq(read(fd, &c, 1), 1);
    ck_assert_int_eq(c, 'x');
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    close(p[1]);
}
END_TEST

START_TEST(bad_messages_are_eproto)
{
    static const char *bad[] = {"not json", "[1,2]", "{\"a\":", "\"str\""};
    json_t *got;
    size_t i;
    int fd;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(send(pair[0], bad[i], strlen(bad[i]), 0),
                         (ssize_t)strlen(bad[i]));
        ck_assert_int_eq(ds_chan_recv(pair[1], &got, &fd), -EPROTO);
        ck_assert_ptr_null(got);
        ck_assert_int_eq(fd, -1);
    }
    /* Still usable afterwards. */
    ck_assert_int_eq(ds_chan_send(pair[0], json_object(), -1), 0);
    ck_assert_int_eq(ds_chan_recv(pair[1], &got, NULL), 0);
    json_decref(got);
}
END_TEST

START_TEST(oversized_messages_refused)
{
    size_t n = DS_CHAN_MSG_MAX + 100;
    char *big = malloc(n);
    json_t *got;

    memset(big, 'a', n);
    /* Our sender refuses to build one... */
    ck_assert_int_eq(
        ds_chan_send(pair[0],
                     json_pack("{s:s%}", "x", big, (size_t)DS_CHAN_MSG_MAX),
                     -1),
        -EMSGSIZE);
    /* ...and a peer that sends one raw gets -EPROTO, not a truncation. */
    big[0] = '{';
    ck_assert_int_eq(send(pair[0], big, n, 0), (ssize_t)n);
    ck_assert_int_eq(ds_chan_recv(pair[1], &got, NULL), -EPROTO);
    free(big);
}
END_TEST

START_TEST(closed_peer_is_econnreset)
{
    json_t *got;

    close(pair[0]);
    ck_assert_int_eq(ds_chan_recv(pair[1], &got, NULL), -ECONNRESET);
    ck_assert_int_lt(ds_chan_send(pair[1], json_object(), -1), 0);
    pair[0] = open("/dev/null", O_RDONLY); /* for teardown */
}
END_TEST

START_TEST(wait_times_out)
{
    json_t *got;

    ck_assert_int_eq(ds_chan_recv_wait(pair[1], &got, NULL, 50), -ETIMEDOUT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ds-chan");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, message_round_trip);
    tcase_add_test(tc, descriptor_passes_along);
    tcase_add_test(tc, bad_messages_are_eproto);
    tcase_add_test(tc, oversized_messages_refused);
    tcase_add_test(tc, closed_peer_is_econnreset);
    tcase_add_test(tc, wait_times_out);
    suite_add_tcase(s, tc);
    return tsguest_run_checks(s);
}
