/*
 * test_display_ctl.c - deskpool-display's control socket and refusals,
 * without a guest: the real daemon binary, a control client speaking JSON
 * lines, and raw gateway clients that see what noVNC would see.
 * (Sessions with a booted desktop are in test_display.c.)
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsdisplay.h"
#include "tsguest.h"

static struct tsdisplay dmn;

static int ctl_open(void)
{
    return tsdisplay_ctl_open(&dmn);
}

static void send_text(int fd, const char *text)
{
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

#define request    tsdisplay_request
#define wait_event tsdisplay_wait_event
#define read_json  tsdisplay_read_json

static const char *result_str(json_t *reply, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(reply, "result"), key));
}

static char *issue(int fd, const char *kind, const char *desktop, int ttl)
{
    return tsdisplay_issue(fd, kind, desktop, "alice", ttl, NULL);
}

/* The refusal reason a gateway client gets for preamble (malloc'd), or
 * NULL if it was let in. */
static char *gateway_try(const char *preamble)
{
    char *reason;
    int fd = tsdisplay_gateway(&dmn, preamble, &reason);

    if (fd >= 0)
        close(fd);
    return reason;
}

static int log_contains(const char *text)
{
    return tsdisplay_log_contains(&dmn, text);
}

START_TEST(issue_gives_credentials)
{
    int fd = ctl_open();
    json_t *r;
    const char *cred;
    size_t i;

    r = request(fd, "{\"id\":1,\"op\":\"issue\",\"args\":{\"kind\":\"vnc\","
                    "\"desktop\":\"d1\",\"user\":\"alice\"}}");
    ck_assert(json_is_true(json_object_get(r, "ok")));
    cred = result_str(r, "credential");
    ck_assert_uint_eq(strlen(cred), 8);
    ck_assert_int_gt(json_integer_value(
                         json_object_get(json_object_get(r, "result"), "port")),
                     0);
    json_decref(r);

    r = request(fd, "{\"id\":2,\"op\":\"issue\",\"args\":{\"kind\":"
                    "\"gateway\",\"desktop\":\"d1\",\"user\":\"alice\","
                    "\"ttl\":30}}");
    ck_assert(json_is_true(json_object_get(r, "ok")));
    cred = result_str(r, "credential");
    ck_assert_uint_eq(strlen(cred), 43);
    for (i = 0; i < 43; i++)
        ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789-_",
                         cred[i]));
    json_decref(r);
    close(fd);
}
END_TEST

START_TEST(bad_requests_get_clear_errors)
{
    static const struct {
        const char *line, *code;
    } cases[] = {
        {"{\"id\":1,\"op\":\"issue\",\"args\":{\"kind\":\"rdp\","
         "\"desktop\":\"d1\",\"user\":\"a\"}}",
         "bad-request"},
        {"{\"id\":2,\"op\":\"issue\",\"args\":{\"kind\":\"vnc\","
         "\"user\":\"a\"}}",
         "bad-request"},
        {"{\"id\":3,\"op\":\"issue\",\"args\":{\"kind\":\"vnc\","
         "\"desktop\":\"d 1\",\"user\":\"a\"}}",
         "bad-request"},
        {"{\"id\":4,\"op\":\"issue\",\"args\":{\"kind\":\"vnc\","
         "\"desktop\":\"d1\",\"user\":\"a\",\"ttl\":0}}",
         "bad-request"},
        {"{\"id\":5,\"op\":\"frobnicate\"}", "unknown-op"},
        {"{\"id\":6,\"op\":\"disconnect\",\"args\":{}}", "bad-request"},
    };
    int fd = ctl_open();
    json_t *m, *r;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        r = request(fd, cases[i].line);
        ck_assert_msg(json_is_false(json_object_get(r, "ok")), "%s accepted",
                      cases[i].line);
        ck_assert_str_eq(json_string_value(json_object_get(r, "error")),
                         cases[i].code);
        json_decref(r);
    }
    /* Not JSON: an error event, and the connection stays up. */
    send_text(fd, "this is not json\n");
    m = read_json(fd);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(json_string_value(json_object_get(m, "event")), "error");
    json_decref(m);
    r = request(fd, "{\"id\":9,\"op\":\"sessions\"}");
    ck_assert(json_is_true(json_object_get(r, "ok")));
    ck_assert_uint_eq(json_array_size(json_object_get(
                          json_object_get(r, "result"), "sessions")),
                      0);
    json_decref(r);
    close(fd);
}
END_TEST

START_TEST(gateway_refusals_say_why)
{
    int fd = ctl_open(), sub = ctl_open();
    char line[128], *ticket, *reason;
    json_t *r, *ev;

    r = request(sub, "{\"id\":1,\"op\":\"subscribe\"}");
    json_decref(r);

    /* A ticket nobody issued. */
    reason =
        gateway_try("TICKET AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    ck_assert_ptr_nonnull(reason);
    ck_assert_str_eq(reason, "unknown ticket");
    free(reason);
    ev = wait_event(sub, "refused");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "data"), "reason")),
                     "unknown ticket");
    json_decref(ev);

    /* A good ticket for a desktop that does not run: used up. */
    ticket = issue(fd, "gateway", "nosuchdesk", 60);
    snprintf(line, sizeof(line), "TICKET %s 192.0.2.7\n", ticket);
    reason = gateway_try(line);
    ck_assert_ptr_nonnull(reason);
    ck_assert_str_eq(reason, "desktop not running");
    free(reason);
    reason = gateway_try(line);
    ck_assert_ptr_nonnull(reason);
    ck_assert_str_eq(reason, "already used");
    free(reason);
    free(ticket);

    /* An expired one. */
    ticket = issue(fd, "gateway", "nosuchdesk", 1);
    tsguest_sleep_ms(1500);
    snprintf(line, sizeof(line), "TICKET %s\n", ticket);
    reason = gateway_try(line);
    ck_assert_ptr_nonnull(reason);
    ck_assert_str_eq(reason, "expired");
    free(reason);
    free(ticket);

    /* Not a ticket line at all. */
    reason = gateway_try("GET / HTTP/1.1\n");
    ck_assert_ptr_nonnull(reason);
    ck_assert_str_eq(reason, "the connection did not start with a ticket line");
    free(reason);

    /* Revoked. */
    ticket = issue(fd, "gateway", "d2", 60);
    r = request(fd, "{\"id\":3,\"op\":\"revoke\",\"args\":{\"desktop\":"
                    "\"d2\"}}");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(r, "result"), "revoked")),
                     1);
    json_decref(r);
    snprintf(line, sizeof(line), "TICKET %s\n", ticket);
    reason = gateway_try(line);
    ck_assert_str_eq(reason, "unknown ticket");
    free(reason);
    free(ticket);

    ck_assert(log_contains("refused: already used"));
    ck_assert(log_contains("refused: expired"));
    close(sub);
    close(fd);
}
END_TEST

START_TEST(garbage_on_the_gateway_affects_nobody_else)
{
    static const char junk[] = "\x00\xff\xfe garbage without a newline";
    int fd = ctl_open(), g, i;
    char *reason, *ticket, line[128];

    /* Over-long lines and binary junk, some left hanging. */
    for (i = 0; i < 4; i++) {
        char big[4096];

        g = tsdisplay_unix_connect(dmn.gw, 5000);
        ck_assert_int_ge(g, 0);
        memset(big, 'A', sizeof(big));
        if (i % 2)
            send_text(g, "TICKET ");
        ck_assert_int_gt(write(g, i < 2 ? big : junk,
                               i < 2 ? sizeof(big) : sizeof(junk) - 1),
                         0);
        if (i >= 2)
            close(g); /* truncated: gone mid-line */
    }
    /* Meanwhile the daemon answers and refuses others normally. */
    ticket = issue(fd, "gateway", "nosuchdesk", 60);
    snprintf(line, sizeof(line), "TICKET %s\n", ticket);
    reason = gateway_try(line);
    ck_assert_str_eq(reason, "desktop not running");
    free(reason);
    free(ticket);
    ck_assert_int_eq(kill(dmn.pid, 0), 0);
    close(fd);
}
END_TEST

START_TEST(ctl_command_line_client)
{
    const char *bin = getenv("DESKPOOL_BIN_DIR");
    char exe[512], out[512] = {0};
    int pipefd[2], status;
    json_t *res;
    pid_t pid;

    close(ctl_open()); /* the daemon is up */
    snprintf(exe, sizeof(exe), "%s/deskpool-display", bin);
    ck_assert_int_eq(pipe(pipefd), 0);
    pid = fork();
    if (pid == 0) {
        char *argv[] = {exe,
                        "ctl",
                        "--control",
                        dmn.ctl,
                        "issue",
                        "{\"kind\":\"gateway\",\"desktop\":\"d3\","
                        "\"user\":\"bob\"}",
                        NULL};

        dup2(pipefd[1], 1);
        execv(exe, argv);
        _exit(127);
    }
    close(pipefd[1]);
    ck_assert_int_gt(read(pipefd[0], out, sizeof(out) - 1), 0);
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    res = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(res);
    ck_assert_uint_eq(
        strlen(json_string_value(json_object_get(res, "credential"))), 43);
    json_decref(res);
}
END_TEST

static void setup(void)
{
    char state[300];

    snprintf(state, sizeof(state), "%s/st%d", tsguest_root(), (int)getpid());
    tsdisplay_start(&dmn, state);
}

static void teardown(void)
{
    tsdisplay_stop(&dmn);
}

int main(void)
{
    Suite *s = suite_create("display_ctl");
    TCase *tc = tcase_create("daemon");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, issue_gives_credentials);
    tcase_add_test(tc, bad_requests_get_clear_errors);
    tcase_add_test(tc, gateway_refusals_say_why);
    tcase_add_test(tc, garbage_on_the_gateway_affects_nobody_else);
    tcase_add_test(tc, ctl_command_line_client);
    suite_add_tcase(s, tc);
    return tsguest_run_suite(s);
}
