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
#include <time.h>
#include <unistd.h>

#include "td_cmd.h"
#include "td_ctl.h"
#include "td_desk.h"
#include "td_keymap.h"
#include "tsguest.h"

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

static char last_event[TD_CMD_EVENT_MAX];

/* Runs a command; its event line, if any, is left in last_event. */
static const char *run(const char *line)
{
    static char reply[TD_CMD_LINE_MAX + 1];
    td_cmd_exec(desk, line, reply, sizeof(reply), last_event,
                sizeof(last_event));
    return reply;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Value of "key=" in a status reply. */
static long long status_field(const char *status, const char *key)
{
    char pat[32];
    const char *p;
    snprintf(pat, sizeof(pat), " %s=", key);
    p = strstr(status, pat);
    ck_assert_msg(p != NULL, "no %s in '%s'", key, status);
    return strtoll(p + strlen(pat), NULL, 10);
}

START_TEST(cmd_changes_the_desk)
{
    ck_assert_str_eq(run("ping"), "ok pong");
    ck_assert_str_eq(run("user alice"), "ok");
    ck_assert_str_eq(td_desk_user(desk), "alice");
    ck_assert_str_eq(run("mode scroll"), "ok");
    ck_assert_int_eq(td_desk_mode(desk), TD_MODE_SCROLL);
    {
        char want[256];
        const char *st = run("status");
        snprintf(want, sizeof(want),
                 "ok mode=scroll user=alice size=1024x768 since=%lld "
                 "idle=%lld locked=0 screen=1024x768",
                 status_field(st, "since"), status_field(st, "idle"));
        ck_assert_str_eq(st, want);
    }
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
    ck_assert_str_eq(run("user al ice"), "error bad user name");
    ck_assert_str_eq(run("user al|ice"), "error bad user name");
    ck_assert_str_eq(run("user al\xc3\xa9"), "error non-printable argument");
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    memcpy(name, "user ", 5);
    ck_assert_str_eq(run(name), "error argument too long");
    ck_assert_str_eq(td_desk_user(desk), "");
    /* A tiny reply buffer truncates, it does not overflow. */
    ck_assert_int_eq(td_cmd_exec(desk, "ping", reply, 3, NULL, 0), 0);
    ck_assert_str_eq(reply, "ok");
    ck_assert_int_eq(td_cmd_exec(desk, "nope", reply, sizeof(reply), NULL, 0),
                     -EINVAL);
    /* Commands without arguments are words of their own. */
    ck_assert_str_eq(run("lockdown"), "error unknown command");
    ck_assert_str_eq(run("clipboard"), "error unknown command");
}
END_TEST

START_TEST(cmd_status_line)
{
    char want[256];
    const char *st;
    time_t before = time(NULL), after;
    long long since;

    /* Nobody logged in: an empty user, since 0. */
    td_desk_note_input(desk, mono_ms() - 7000);
    st = run("status");
    ck_assert_int_ge(status_field(st, "idle"), 7);
    ck_assert_int_le(status_field(st, "idle"), 60);
    snprintf(want, sizeof(want),
             "ok mode=idle user= size=1024x768 since=0 idle=%lld locked=0 "
             "screen=1024x768",
             status_field(st, "idle"));
    ck_assert_str_eq(st, want);

    ck_assert_str_eq(run("user carol"), "ok");
    after = time(NULL);
    ck_assert_str_eq(run("lock"), "ok");
    ck_assert_str_eq(run("mode video"), "ok");
    st = run("status");
    since = status_field(st, "since");
    ck_assert_int_ge(since, before);
    ck_assert_int_le(since, after);
    snprintf(want, sizeof(want),
             "ok mode=video user=carol size=1024x768 since=%lld idle=%lld "
             "locked=1 screen=1024x768",
             since, status_field(st, "idle"));
    ck_assert_str_eq(st, want);
    /* The user's own input resets idle. */
    {
        struct td_input_event ev = {.kind = TD_INPUT_POINTER, .x = 1, .y = 1};
        char event[TD_DESK_EVENT_MAX];
        td_desk_input(desk, &ev, mono_ms(), event, sizeof(event));
    }
    ck_assert_int_le(status_field(run("status"), "idle"), 1);
}
END_TEST

START_TEST(cmd_session_and_logoff)
{
    const char *st;
    long long since;

    ck_assert_str_eq(run("session alice|Alice Liddell"), "ok");
    ck_assert_str_eq(last_event, "");
    st = run("status");
    ck_assert_ptr_nonnull(strstr(st, " user=alice "));
    since = status_field(st, "since");
    ck_assert_int_gt(since, 0);
    ck_assert_str_eq(td_desk_display_name(desk), "Alice Liddell");
    /* The same user again: a new display name, the same session. */
    td_desk_set_session(desk, "alice", "Alice", 12345);
    ck_assert_int_eq(status_field(run("status"), "since"), since);
    ck_assert_str_eq(run("session alice|Al | Liddell \xc3\xa9"), "ok");
    ck_assert_str_eq(td_desk_display_name(desk), "Al | Liddell \xc3\xa9");
    ck_assert_str_eq(run("session bob"), "ok");
    ck_assert_str_eq(td_desk_display_name(desk), "");
    ck_assert_str_eq(run("session bob|"), "ok");
    /* A session unlocks the screen. */
    ck_assert_str_eq(run("lock"), "ok");
    ck_assert_str_eq(run("session bob|Bob"), "ok");
    ck_assert_int_eq(status_field(run("status"), "locked"), 0);

    ck_assert_str_eq(run("type half-typed"), "ok");
    ck_assert_str_eq(run("lock"), "ok");
    ck_assert_str_eq(run("logoff"), "ok");
    ck_assert_str_eq(last_event, "event logoff bob");
    st = run("status");
    ck_assert_ptr_nonnull(strstr(st, " user= size="));
    ck_assert_int_eq(status_field(st, "since"), 0);
    ck_assert_int_eq(status_field(st, "locked"), 0);
    ck_assert_str_eq(td_desk_text(desk), "");
    ck_assert_str_eq(run("logoff"), "ok");
    ck_assert_str_eq(last_event, "event logoff");

    /* "user" with no name ends the session too, without an event. */
    ck_assert_str_eq(run("user dave"), "ok");
    ck_assert_str_eq(run("user"), "ok");
    ck_assert_str_eq(last_event, "");
    ck_assert_int_eq(status_field(run("status"), "since"), 0);
}
END_TEST

START_TEST(cmd_session_refuses_bad_names)
{
    char line[512];

    ck_assert_str_eq(run("session"), "error bad user name");
    ck_assert_str_eq(run("session |Nobody"), "error bad user name");
    ck_assert_str_eq(run("session al ice|Alice"), "error bad user name");
    ck_assert_str_eq(run("session al\x01ice|Alice"),
                     "error non-printable argument");
    ck_assert_str_eq(run("session al\xc3\xa9|Alice"),
                     "error non-printable argument");
    ck_assert_str_eq(run("session alice|Ali\x7f"),
                     "error non-printable argument");
    ck_assert_str_eq(run("session alice|A\tB"), "error non-printable argument");
    snprintf(line, sizeof(line), "session %065d|A", 0);
    ck_assert_str_eq(run(line), "error argument too long");
    snprintf(line, sizeof(line), "session %064d|A", 0);
    ck_assert_str_eq(run(line), "ok");
    snprintf(line, sizeof(line), "session alice|%0129d", 0);
    ck_assert_str_eq(run(line), "error argument too long");
    snprintf(line, sizeof(line), "session alice|%0128d", 0);
    ck_assert_str_eq(run(line), "ok");
    ck_assert_str_eq(td_desk_user(desk), "alice");
}
END_TEST

START_TEST(cmd_lock_and_unlock)
{
    ck_assert_int_eq(status_field(run("status"), "locked"), 0);
    ck_assert_str_eq(run("lock"), "ok");
    ck_assert_int_eq(status_field(run("status"), "locked"), 1);
    ck_assert(td_desk_locked(desk));
    ck_assert_str_eq(run("lock"), "ok");
    ck_assert_str_eq(run("unlock"), "ok");
    ck_assert_int_eq(status_field(run("status"), "locked"), 0);
    ck_assert_str_eq(last_event, "");
}
END_TEST

START_TEST(cmd_resolution)
{
    const char *st;

    ck_assert_str_eq(run("resolution 800 600"), "ok 800x600");
    ck_assert_str_eq(last_event, "event resolution 800x600");
    st = run("status");
    ck_assert_ptr_nonnull(strstr(st, " size=800x600 "));
    ck_assert_ptr_nonnull(strstr(st, " screen=1024x768"));
    /* The same size again: nothing changes, but it is still announced. */
    ck_assert_str_eq(run("resolution 800 600"), "ok 800x600");
    ck_assert_str_eq(last_event, "event resolution 800x600");
    /* Limited to the screen. */
    ck_assert_str_eq(run("resolution 1920 1080"), "ok 1024x768");
    ck_assert_str_eq(last_event, "event resolution 1024x768");
    ck_assert_str_eq(run("resolution 2000 700"), "ok 1024x700");
    ck_assert_str_eq(run("resolution 320 240"), "ok 320x240");

    ck_assert_str_eq(run("resolution 319 240"), "error too small");
    ck_assert_str_eq(run("resolution 320 0"), "error too small");
    ck_assert_str_eq(last_event, "");
    ck_assert_str_eq(run("resolution"), "error bad size (resolution W H)");
    ck_assert_str_eq(run("resolution 800"), "error bad size (resolution W H)");
    ck_assert_str_eq(run("resolution 800x600"),
                     "error bad size (resolution W H)");
    ck_assert_str_eq(run("resolution 800 600 1"),
                     "error bad size (resolution W H)");
    ck_assert_str_eq(run("resolution -800 600"),
                     "error bad size (resolution W H)");
    ck_assert_str_eq(run("resolution 800  600"),
                     "error bad size (resolution W H)");
    ck_assert_str_eq(run("resolution 99999999999999999999 600"),
                     "error bad size (resolution W H)");
    ck_assert_ptr_nonnull(strstr(run("status"), " size=320x240 "));
}
END_TEST

START_TEST(cmd_clipboard_round_trip)
{
    char *line = malloc(TD_CMD_LINE_MAX + 1);
    char *want = malloc(TD_CMD_LINE_MAX + 1);
    size_t n;

    ck_assert_str_eq(run("clipboard-get"), "ok");
    ck_assert_str_eq(run("clipboard-set a\\\\b\\nc\\rd\\te \xc3\xbc\x7f"),
                     "ok");
    ck_assert_str_eq(td_desk_clipboard(desk), "a\\b\nc\rd\te \xc3\xbc\x7f");
    ck_assert_str_eq(run("clipboard-get"),
                     "ok a\\\\b\\nc\\rd\\te \xc3\xbc\x7f");
    ck_assert_str_eq(run("clipboard-set  leading space"), "ok");
    ck_assert_str_eq(run("clipboard-get"), "ok  leading space");
    ck_assert_str_eq(run("clipboard-set"), "ok");
    ck_assert_str_eq(run("clipboard-get"), "ok");

    /* Bad input leaves the clipboard as it was. */
    ck_assert_str_eq(run("clipboard-set keep"), "ok");
    ck_assert_str_eq(run("clipboard-set a\\x"), "error bad escape");
    ck_assert_str_eq(run("clipboard-set a\\"), "error bad escape");
    ck_assert_str_eq(run("clipboard-set a\\0"), "error bad escape");
    ck_assert_str_eq(run("clipboard-set a\tb"), "error non-printable argument");
    ck_assert_str_eq(run("clipboard-set a\x1b[0m"),
                     "error non-printable argument");

    /* Exactly the maximum, every byte escaped, and one byte over. */
    n = (size_t)sprintf(line, "clipboard-set ");
    for (int i = 0; i < TD_DESK_CLIPBOARD_MAX; i++)
        n += (size_t)sprintf(line + n, "%s", i % 2 ? "\\n" : "\\\\");
    ck_assert_str_eq(run(line), "ok");
    ck_assert_uint_eq(strlen(td_desk_clipboard(desk)), TD_DESK_CLIPBOARD_MAX);
    sprintf(want, "ok %s", line + strlen("clipboard-set "));
    ck_assert_str_eq(run("clipboard-get"), want);
    strcpy(line + n, "x");
    ck_assert_str_eq(run(line), "error too long");
    ck_assert_uint_eq(strlen(td_desk_clipboard(desk)), TD_DESK_CLIPBOARD_MAX);

    /* A reply buffer too small for the text refuses, never cuts it. */
    {
        char small[64];
        ck_assert_int_lt(
            td_cmd_exec(desk, "clipboard-get", small, sizeof(small), NULL, 0),
            0);
        ck_assert_str_eq(small, "error reply too long");
    }
    free(line);
    free(want);
}
END_TEST

/* --- the socket server, driven by real clients ------------------------- */

static struct td_ctl *ctl;
static char sock_path[108];

static void exec_cmd(void *arg, const char *line, char *reply, size_t size,
                     char *event, size_t event_size)
{
    td_cmd_exec(arg, line, reply, size, event, event_size);
}

/* One round of the server's loop, waiting up to ms. Returns whether
 * there was anything to do. */
static int pump_once(int ms)
{
    struct pollfd pfds[TD_CTL_POLLFDS];
    int n = td_ctl_pollfds(ctl, pfds);
    if (poll(pfds, (nfds_t)n, ms) <= 0)
        return 0;
    td_ctl_handle(ctl, pfds, n, exec_cmd, desk);
    return 1;
}

/* Lets the server handle whatever is pending, until it is idle. */
static void pump(void)
{
    for (int i = 0; i < 50 && pump_once(20); i++)
        ;
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

/* Writes len bytes, letting the server read between writes when the
 * socket is full (the server and the client share this thread). */
static void say_bytes(int fd, const char *text, size_t len)
{
    for (int rounds = 0; len > 0; rounds++) {
        ssize_t n = send(fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        ck_assert_msg(n > 0 || errno == EAGAIN, "send: %s", strerror(errno));
        ck_assert_int_lt(rounds, 10000);
        if (n > 0) {
            text += n;
            len -= (size_t)n;
        }
        pump_once(n > 0 ? 0 : 10);
    }
    pump();
}

static void say(int fd, const char *text)
{
    say_bytes(fd, text, strlen(text));
}

/* Reads one line (without newline), letting the server run while there is
 * nothing to read yet: it sends big replies a piece at a time. Peeks, so
 * that nothing after the line is taken off the socket. */
static const char *hear(int fd)
{
    static char line[TD_CTL_LINE_MAX + 2];
    size_t n = 0;
    uint64_t deadline = mono_ms() + 10000;

    while (n < sizeof(line) - 1 && mono_ms() < deadline) {
        ssize_t got =
            recv(fd, line + n, sizeof(line) - 1 - n, MSG_PEEK | MSG_DONTWAIT);
        char *nl;
        if (got < 0 && errno == EAGAIN) {
            pump_once(10);
            continue;
        }
        if (got <= 0)
            break;
        nl = memchr(line + n, '\n', (size_t)got);
        if (nl)
            got = nl - (line + n) + 1;
        ck_assert_int_eq(recv(fd, line + n, (size_t)got, 0), got);
        n += (size_t)got;
        if (nl) {
            n--;
            break;
        }
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
    ck_assert_int_eq(strncmp(hear(a),
                             "ok mode=idle user=bob size=1024x768 "
                             "since=",
                             42),
                     0);
    /* A command split across writes still arrives whole. */
    say(b, "pi");
    say(b, "ng\r\n");
    ck_assert_str_eq(hear(b), "ok pong");
    td_ctl_broadcast(ctl, "event unlock");
    ck_assert_str_eq(hear(a), "event unlock");
    ck_assert_str_eq(hear(b), "event unlock");
    /* A command's event goes to everyone, after the reply. */
    say(b, "logoff\n");
    ck_assert_str_eq(hear(b), "ok");
    ck_assert_str_eq(hear(b), "event logoff bob");
    ck_assert_str_eq(hear(a), "event logoff bob");
    say(a, "resolution 640 480\n");
    ck_assert_str_eq(hear(a), "ok 640x480");
    ck_assert_str_eq(hear(a), "event resolution 640x480");
    ck_assert_str_eq(hear(b), "event resolution 640x480");
    close(a);
    close(b);
}
END_TEST

START_TEST(ctl_survives_bad_clients)
{
    int bad = client(), good = client();
    char *big = malloc(3 * TD_CTL_LINE_MAX);

    memset(big, 'A', 3 * TD_CTL_LINE_MAX);
    say_bytes(bad, big, 3 * TD_CTL_LINE_MAX);
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

/* Escapes text as the control protocol wants it. */
static size_t escape(char *out, const char *text)
{
    size_t n = 0;
    for (; *text; text++) {
        const char *esc = *text == '\\'   ? "\\\\"
                          : *text == '\n' ? "\\n"
                          : *text == '\r' ? "\\r"
                          : *text == '\t' ? "\\t"
                                          : NULL;
        if (esc) {
            memcpy(out + n, esc, 2);
            n += 2;
        } else {
            out[n++] = *text;
        }
    }
    out[n] = '\0';
    return n;
}

START_TEST(ctl_clipboard_of_32k_through_the_socket)
{
    int a = client(), other = client();
    char *text = malloc(TD_DESK_CLIPBOARD_MAX + 1);
    char *line = malloc(TD_CTL_LINE_MAX + 1);
    char *want = malloc(TD_CTL_LINE_MAX + 1);
    /* Mostly escapes, and UTF-8: the line is nearly twice the text. */
    static const char sample[] = "\\\n\\\t\\\r\xc3\xbc\\\n";
    size_t n;
    int gets, sndbuf;
    socklen_t len = sizeof(sndbuf);

    for (size_t i = 0; i < TD_DESK_CLIPBOARD_MAX; i++)
        text[i] = sample[i % (sizeof(sample) - 1)];
    text[TD_DESK_CLIPBOARD_MAX] = '\0';
    n = (size_t)sprintf(line, "clipboard-set ");
    n += escape(line + n, text);
    line[n++] = '\n';
    say_bytes(a, line, n);
    ck_assert_str_eq(hear(a), "ok");
    ck_assert_str_eq(td_desk_clipboard(desk), text);

    /* More replies asked for at once than a socket buffer holds (the
     * server's is as big as ours): the server sends them a piece at a
     * time as the client reads, and meanwhile serves others. */
    strcpy(want, "ok ");
    escape(want + 3, text);
    ck_assert_uint_gt(strlen(want), 58000);
    ck_assert_int_eq(getsockopt(a, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len), 0);
    gets = sndbuf / (int)strlen(want) + 3;
    for (int i = 0; i < gets; i++)
        say(a, "clipboard-get\n");
    say(other, "ping\n");
    ck_assert_str_eq(hear(other), "ok pong");
    for (int i = 0; i < gets; i++) {
        const char *got = hear(a);
        ck_assert_uint_eq(strlen(got), strlen(want));
        ck_assert_msg(strcmp(got, want) == 0, "reply %d differs", i);
    }
    say(a, "ping\n");
    ck_assert_str_eq(hear(a), "ok pong");
    free(text);
    free(line);
    free(want);
    close(a);
    close(other);
}
END_TEST

START_TEST(ctl_answers_a_client_that_stopped_sending)
{
    int a = client();
    say(a, "ping\nclipboard-get\n");
    ck_assert_int_eq(shutdown(a, SHUT_WR), 0);
    pump();
    ck_assert_str_eq(hear(a), "ok pong");
    ck_assert_str_eq(hear(a), "ok");
    pump();
    /* ...then it is dropped: the next read sees the end. */
    {
        char c;
        struct pollfd p = {.fd = a, .events = POLLIN};
        ck_assert_int_eq(poll(&p, 1, 2000), 1);
        ck_assert_int_eq(read(a, &c, 1), 0);
    }
    close(a);
}
END_TEST

START_TEST(ctl_drops_a_client_that_never_reads)
{
    int lazy = client(), good = client();
    char *line = malloc(TD_CTL_LINE_MAX + 1);
    size_t n;

    /* Fill the clipboard so every get is ~64 KiB, then ask for many
     * without reading: the server stops reading the lazy client's
     * commands rather than buffering without bound... */
    n = (size_t)sprintf(line, "clipboard-set ");
    for (int i = 0; i < TD_DESK_CLIPBOARD_MAX; i++)
        n += (size_t)sprintf(line + n, "\\n");
    line[n++] = '\n';
    say_bytes(lazy, line, n);
    for (int i = 0; i < 64; i++) {
        ssize_t w = send(lazy, "clipboard-get\n", 14, MSG_DONTWAIT);
        ck_assert_int_eq(w, 14);
        pump_once(0);
    }
    pump();
    say(good, "ping\n");
    ck_assert_str_eq(hear(good), "ok pong");
    /* ...and drops it only once events overflow its buffer (6000 events
     * are more than the room a paused client has left). */
    for (int i = 0; i < 6000; i++)
        td_ctl_broadcast(ctl, "event unlock");
    pump();
    say(good, "ping\n");
    {
        int events = 0;
        const char *l;
        while (strcmp(l = hear(good), "ok pong") == 0 ? 0 : (events++, 1))
            ck_assert_str_eq(l, "event unlock");
        ck_assert_int_eq(events, 6000);
    }
    {
        /* The lazy client finds its connection closed after what it got
         * (reset, as its unread commands were thrown away). */
        char buf[65536];
        ssize_t got;
        size_t total = 0;
        while ((got = read(lazy, buf, sizeof(buf))) > 0)
            total += (size_t)got;
        ck_assert_msg(got == 0 || errno == ECONNRESET, "read: %s",
                      strerror(errno));
        ck_assert_uint_gt(total, 0);
    }
    free(line);
    close(lazy);
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
    tcase_add_test(cmd, cmd_status_line);
    tcase_add_test(cmd, cmd_session_and_logoff);
    tcase_add_test(cmd, cmd_session_refuses_bad_names);
    tcase_add_test(cmd, cmd_lock_and_unlock);
    tcase_add_test(cmd, cmd_resolution);
    tcase_add_test(cmd, cmd_clipboard_round_trip);
    tcase_add_checked_fixture(sock, ctl_setup, ctl_teardown);
    tcase_add_test(sock, ctl_serves_commands_and_events);
    tcase_add_test(sock, ctl_survives_bad_clients);
    tcase_add_test(sock, ctl_clipboard_of_32k_through_the_socket);
    tcase_add_test(sock, ctl_answers_a_client_that_stopped_sending);
    tcase_add_test(sock, ctl_drops_a_client_that_never_reads);
    tcase_set_timeout(sock, 30);
    suite_add_tcase(s, keys);
    suite_add_tcase(s, cmd);
    suite_add_tcase(s, sock);
    return s;
}

int main(void)
{
    return tsguest_run_checks(control_suite());
}
