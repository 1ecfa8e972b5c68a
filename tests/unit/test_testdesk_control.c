/*
 * Unit tests of testdesk's input mapping and control socket: the US keymap,
 * the command language, and the socket server with real unix-socket clients
 * (bad input included: over-long lines, garbage, too many clients).
 */
#include <check.h>
#include <errno.h>
#include <linux/input-event-codes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "td_cmd.h"
#include "td_ctl.h"
#include "td_desk.h"
#include "td_keymap.h"

START_TEST(keymap_us_layout)
{
    ck_assert_int_eq(td_keymap_char(KEY_A, 0), 'a');
    ck_assert_int_eq(td_keymap_char(KEY_A, 1), 'A');
    ck_assert_int_eq(td_keymap_char(KEY_1, 1), '!');
    ck_assert_int_eq(td_keymap_char(KEY_SLASH, 1), '?');
    ck_assert_int_eq(td_keymap_char(KEY_ENTER, 0), '\n');
    ck_assert_int_eq(td_keymap_char(KEY_BACKSPACE, 0), '\b');
    ck_assert_int_eq(td_keymap_char(KEY_LEFTSHIFT, 0), 0);
    ck_assert_int_eq(td_keymap_char(KEY_F1, 0), 0);
    ck_assert_int_eq(td_keymap_char(0xffff, 0), 0);
}
END_TEST

static struct td_desk *desk;

static void desk_setup(void)
{
    desk = td_desk_new(1024, 768, "deskpool-test");
    ck_assert_ptr_nonnull(desk);
}

static void desk_teardown(void)
{
    td_desk_free(desk);
}

static const char *run(const char *line)
{
    static char reply[256];
    td_cmd_exec(desk, line, reply, sizeof(reply));
    return reply;
}

START_TEST(cmd_changes_the_desk)
{
    ck_assert_str_eq(run("ping"), "ok pong");
    ck_assert_str_eq(run("user alice"), "ok");
    ck_assert_str_eq(td_desk_user(desk), "alice");
    ck_assert_str_eq(run("mode scroll"), "ok");
    ck_assert_int_eq(td_desk_mode(desk), TD_MODE_SCROLL);
    ck_assert_str_eq(run("status"),
                     "ok mode=scroll user=alice size=1024x768");
    ck_assert_str_eq(run("type hello world"), "ok");
    ck_assert_str_eq(td_desk_text(desk), "hello world");
    ck_assert_str_eq(run("clear"), "ok");
    ck_assert_str_eq(td_desk_text(desk), "");
    ck_assert_str_eq(run("user"), "ok");
    ck_assert_str_eq(td_desk_user(desk), "");
}
END_TEST

START_TEST(cmd_refuses_bad_input)
{
    char reply[256], name[TD_DESK_NAME_MAX + 8];

    ck_assert_str_eq(run(""), "error unknown command");
    ck_assert_str_eq(run("frobnicate now"), "error unknown command");
    ck_assert_str_eq(run("averyveryverylongcommandword x"),
                     "error unknown command");
    ck_assert_str_eq(run("mode warp"),
                     "error unknown mode (idle, typing, scroll, video)");
    ck_assert_str_eq(run("user al\x01ice"), "error non-printable argument");
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    memcpy(name, "user ", 5);
    ck_assert_str_eq(run(name), "error argument too long");
    ck_assert_str_eq(td_desk_user(desk), "");
    /* A tiny reply buffer truncates, it does not overflow. */
    ck_assert_int_eq(td_cmd_exec(desk, "ping", reply, 3), 0);
    ck_assert_str_eq(reply, "ok");
    ck_assert_int_eq(td_cmd_exec(desk, "nope", reply, sizeof(reply)),
                     -EINVAL);
}
END_TEST

/* --- the socket server, driven by real clients ------------------------- */

static struct td_ctl *ctl;
static char sock_path[108];

static void exec_cmd(void *arg, const char *line, char *reply, size_t size)
{
    td_cmd_exec(arg, line, reply, size);
}

/* Lets the server handle whatever is pending, a few rounds. */
static void pump(void)
{
    struct pollfd pfds[TD_CTL_POLLFDS];
    for (int i = 0; i < 5; i++) {
        int n = td_ctl_pollfds(ctl, pfds);
        if (poll(pfds, (nfds_t)n, 20) > 0)
            td_ctl_handle(ctl, pfds, n, exec_cmd, desk);
    }
}

static int client(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    strcpy(sa.sun_path, sock_path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    pump(); /* accept */
    return fd;
}

static void say(int fd, const char *text)
{
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    pump();
}

/* Reads one reply line (without newline). */
static const char *hear(int fd)
{
    static char line[TD_CTL_LINE_MAX + 2];
    size_t n = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (n < sizeof(line) - 1 && poll(&p, 1, 2000) > 0) {
        if (read(fd, line + n, 1) != 1)
            break;
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    return line;
}

static void ctl_setup(void)
{
    desk_setup();
    snprintf(sock_path, sizeof(sock_path), "/tmp/td-ctl-test.%d",
             (int)getpid());
    ck_assert_int_eq(td_ctl_open(&ctl, sock_path), 0);
}

static void ctl_teardown(void)
{
    td_ctl_close(ctl);
    unlink(sock_path);
    desk_teardown();
}

START_TEST(ctl_serves_commands_and_events)
{
    int a = client(), b = client();

    say(a, "user bob\nstatus\n");
    ck_assert_str_eq(hear(a), "ok");
    ck_assert_str_eq(hear(a), "ok mode=idle user=bob size=1024x768");
    /* A command split across writes still arrives whole. */
    say(b, "pi");
    say(b, "ng\r\n");
    ck_assert_str_eq(hear(b), "ok pong");
    td_ctl_broadcast(ctl, "event logoff");
    ck_assert_str_eq(hear(a), "event logoff");
    ck_assert_str_eq(hear(b), "event logoff");
    close(a);
    close(b);
}
END_TEST

START_TEST(ctl_survives_bad_clients)
{
    int bad = client(), good = client();
    char *big = malloc(3 * TD_CTL_LINE_MAX);

    memset(big, 'A', 3 * TD_CTL_LINE_MAX);
    ck_assert_int_eq(write(bad, big, 3 * TD_CTL_LINE_MAX),
                     3 * TD_CTL_LINE_MAX);
    pump();
    say(bad, "\nping\n");
    ck_assert_str_eq(hear(bad), "error line too long");
    ck_assert_str_eq(hear(bad), "ok pong");
    say(good, "ping\n");
    ck_assert_str_eq(hear(good), "ok pong");
    free(big);

    /* Clients beyond the limit are told so; the others keep working. */
    int extra[TD_CTL_CLIENTS];
    for (int i = 0; i < TD_CTL_CLIENTS - 2; i++)
        extra[i] = client();
    int refused = client();
    ck_assert_str_eq(hear(refused), "error too many clients");
    say(good, "ping\n");
    ck_assert_str_eq(hear(good), "ok pong");
    close(refused);
    for (int i = 0; i < TD_CTL_CLIENTS - 2; i++)
        close(extra[i]);
    close(bad);
    pump();
    /* Hung-up slots are freed for new clients. */
    int again = client();
    say(again, "ping\n");
    ck_assert_str_eq(hear(again), "ok pong");
    close(again);
    close(good);
}
END_TEST

static Suite *control_suite(void)
{
    Suite *s = suite_create("testdesk-control");
    TCase *keys = tcase_create("keymap");
    TCase *cmd = tcase_create("commands");
    TCase *sock = tcase_create("socket");

    tcase_add_test(keys, keymap_us_layout);
    tcase_add_checked_fixture(cmd, desk_setup, desk_teardown);
    tcase_add_test(cmd, cmd_changes_the_desk);
    tcase_add_test(cmd, cmd_refuses_bad_input);
    tcase_add_checked_fixture(sock, ctl_setup, ctl_teardown);
    tcase_add_test(sock, ctl_serves_commands_and_events);
    tcase_add_test(sock, ctl_survives_bad_clients);
    suite_add_tcase(s, keys);
    suite_add_tcase(s, cmd);
    suite_add_tcase(s, sock);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(control_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
