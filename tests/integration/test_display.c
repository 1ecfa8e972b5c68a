/*
 * test_display.c - deskpool-display end to end: the real daemon, a booted
 * test desktop, and libvncclient clients (tsvnc) that see, type and point
 * the way a user's VNC viewer or noVNC behind the gateway does.
 *
 * One guest serves every test (Check's unchecked fixture, in the runner
 * process), each test gets its own daemon; tests that type clear the
 * desktop's text box first (the agent's logoff empties it).
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hv_agent.h"
#include "td_layout.h"
#include "tsdisplay.h"
#include "tsguest.h"
#include "tsppm.h"
#include "tsscreen.h"
#include "tsvnc.h"

#define VM              "dspl"
#define BOOT_TIMEOUT_MS 60000
#define SEE_TIMEOUT_MS  15000
#define POINTER_SLACK   2

static struct hv_host *host;
static int start_err;
static struct tsdisplay dmn;

/* ------------------------------------------------------------------------
 * Helpers */

static void desktop_ready(void)
{
    ck_assert_msg(start_err == 0, "the test guest did not start");
    ck_assert_msg(
        tsguest_wait_serial(host, VM, TSGUEST_READY, 1, BOOT_TIMEOUT_MS) == 0,
        "testdesk never became ready");
}

static struct tsvnc *vnc_client(int ctl, const char *encodings, int quality)
{
    struct tsvnc_options o = {
        .encodings = encodings, .quality = quality, .compress = -1};
    struct tsvnc *c;
    char *pw;
    int port, r;

    pw = tsdisplay_issue(ctl, "vnc", VM, "dave", 60, &port);
    r = tsvnc_connect_tcp(&c, "127.0.0.1", port, pw, &o);
    free(pw);
    ck_assert_msg(r == 0, "VNC client: %s", tsvnc_last_connect_error());
    return c;
}

static struct tsvnc *gateway_client(int ctl, const char *peer)
{
    struct tsvnc_options o = {
        .encodings = "raw", .quality = -1, .compress = -1};
    struct tsvnc *c;
    char *ticket;
    int r;

    ticket = tsdisplay_issue(ctl, "gateway", VM, "erin", 60, NULL);
    r = tsvnc_connect_gateway(&c, dmn.gw, ticket, peer, &o);
    free(ticket);
    ck_assert_msg(r == 0, "gateway client: %s", tsvnc_last_connect_error());
    return c;
}

static struct tsscreen client_view(struct tsvnc *c)
{
    int w, h;
    const uint32_t *px = tsvnc_pixels(c, &w, &h);

    return tsscreen_view(px, w, h, w * 4);
}

/* Pixels below the top bar (its clock ticks) that differ from a
 * screendump taken now by more than tolerance in a channel. */
static long differs_from_screen(struct tsvnc *c, int tolerance)
{
    struct tsscreen s = client_view(c);
    struct tsppm *shot = NULL;
    long n = 0;
    int x, y;

    ck_assert_int_eq(tsguest_screendump(host, VM, &shot), 0);
    ck_assert_int_eq(tsppm_width(shot), s.width);
    ck_assert_int_eq(tsppm_height(shot), s.height);
    for (y = TD_TOPBAR_H; y < s.height; y++)
        for (x = 0; x < s.width; x++) {
            uint32_t a = tsppm_pixel(shot, x, y), b = tsscreen_pixel(&s, x, y);
            int sh;

            for (sh = 0; sh < 24; sh += 8) {
                int d = (int)(a >> sh & 0xff) - (int)(b >> sh & 0xff);

                if (d > tolerance || -d > tolerance) {
                    n++;
                    break;
                }
            }
        }
    tsppm_free(shot);
    return n;
}

/* Empties testdesk's text box through the agent (logoff does that). */
static void clear_text_box(void)
{
    struct hv_agent *a;
    char path[256], err[256] = "";
    long long until = tsguest_now_ms() + 20000;
    int r = -1;

    ck_assert_int_eq(hv_vm_path(host, VM, "agent.sock", path, sizeof(path)), 0);
    ck_assert_int_eq(hv_agent_open(&a, path, NULL, NULL, 0), 0);
    while (r != 0 && tsguest_now_ms() < until) {
        hv_agent_wait_event(a, "hello", 300, NULL);
        r = hv_agent_request_sync(a, "logoff", NULL, 10000, NULL, err,
                                  sizeof(err));
    }
    hv_agent_close(a);
    ck_assert_msg(r == 0, "agent logoff: %s", err);
}

/* Does the client show text at the start of the text box's first row? */
static int shows_text(struct tsvnc *c, const char *text)
{
    struct tsscreen s = client_view(c);

    return tsscreen_textbox_why(&s, text, NULL, 0) == 0;
}

static void wait_text(struct tsvnc *c, const char *text)
{
    long long until = tsguest_now_ms() + SEE_TIMEOUT_MS;

    while (!shows_text(c, text) && tsguest_now_ms() < until)
        ck_assert_int_ge(tsvnc_pump(c, 100), 0);
    if (!shows_text(c, text)) {
        struct tsscreen s = client_view(c);

        tsscreen_keep(&s, "display", text);
        ck_abort_msg("the client never showed \"%s\"", text);
    }
}

static int pointer_near(struct tsvnc *c, int x, int y)
{
    struct tsscreen s = client_view(c);
    int px, py;

    return tsscreen_find_pointer(&s, &px, &py) == 0 &&
           abs(px - x) <= POINTER_SLACK && abs(py - y) <= POINTER_SLACK;
}

static json_t *sessions(int ctl)
{
    json_t *r = tsdisplay_request(ctl, "{\"id\":4,\"op\":\"sessions\"}");
    json_t *list =
        json_incref(json_object_get(json_object_get(r, "result"), "sessions"));

    json_decref(r);
    return list;
}

static json_t *subscribe(void)
{
    int fd = tsdisplay_ctl_open(&dmn);

    json_decref(tsdisplay_request(fd, "{\"id\":1,\"op\":\"subscribe\"}"));
    return json_integer(fd);
}

static const char *data_str(json_t *ev, const char *key)
{
    return json_string_value(json_object_get(json_object_get(ev, "data"), key));
}

static json_int_t data_int(json_t *ev, const char *key)
{
    return json_integer_value(
        json_object_get(json_object_get(ev, "data"), key));
}

/* ------------------------------------------------------------------------
 * Tests */

START_TEST(vnc_client_sees_the_desktop)
{
    int ctl, uid = -1;
    struct tsvnc *c;
    json_t *list;
    char path[64], line[128];
    FILE *f;
    long bad;

    desktop_ready();
    ctl = tsdisplay_ctl_open(&dmn);

    /* Raw: exactly what the screen shows. */
    c = vnc_client(ctl, "raw", -1);
    tsvnc_pump(c, 300);
    ck_assert_msg((bad = differs_from_screen(c, 0)) == 0,
                  "raw client: %ld pixels differ from the screen", bad);

    /* The session process serves it as an unprivileged user. */
    list = sessions(ctl);
    ck_assert_uint_eq(json_array_size(list), 1);
    snprintf(path, sizeof(path), "/proc/%d/status",
             (int)json_integer_value(
                 json_object_get(json_array_get(list, 0), "pid")));
    json_decref(list);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Uid: %d", &uid) == 1)
            break;
    fclose(f);
    ck_assert_int_eq(uid, 65534); /* nobody */
    tsvnc_close(c);

    /* Tight with JPEG: the same within JPEG's tolerance. */
    c = vnc_client(ctl, "tight", 6);
    tsvnc_pump(c, 300);
    bad = differs_from_screen(c, 48);
    ck_assert_msg(bad < 1024 * 768 / 100,
                  "tight client: %ld pixels far from the screen", bad);
    tsvnc_close(c);

    /* ZRLE is lossless. */
    c = vnc_client(ctl, "zrle", -1);
    tsvnc_pump(c, 300);
    ck_assert_msg((bad = differs_from_screen(c, 0)) == 0,
                  "zrle client: %ld pixels differ from the screen", bad);
    tsvnc_close(c);
    close(ctl);
}
END_TEST

START_TEST(vnc_client_types_and_points)
{
    static const struct {
        unsigned qnum;
        uint32_t sym;
    } keys[] = {{0x2a, 0xffe1}, {0x02, '!'}}; /* Shift + 1 */
    int ctl, i;
    struct tsvnc *c;
    long long until;

    desktop_ready();
    clear_text_box();
    ctl = tsdisplay_ctl_open(&dmn);
    c = vnc_client(ctl, "tight zrle raw", -1);

    /* Keysyms. */
    ck_assert_int_eq(tsvnc_type(c, "vnc"), 0);
    wait_text(c, "vnc");

    /* Scancodes through the QEMU extended key event. */
    ck_assert_msg(tsvnc_has_ext_keys(c),
                  "the server did not acknowledge QEMU extended keys");
    for (i = 0; i < 2; i++)
        ck_assert_int_eq(tsvnc_key_scancode(c, keys[i].sym, keys[i].qnum, 1),
                         0);
    for (i = 1; i >= 0; i--)
        ck_assert_int_eq(tsvnc_key_scancode(c, keys[i].sym, keys[i].qnum, 0),
                         0);
    wait_text(c, "vnc!");

    /* The pointer marker follows the client's pointer. */
    ck_assert_int_eq(tsvnc_pointer(c, 300, 400, 0), 0);
    until = tsguest_now_ms() + SEE_TIMEOUT_MS;
    while (!pointer_near(c, 300, 400) && tsguest_now_ms() < until)
        tsvnc_pump(c, 100);
    ck_assert_msg(pointer_near(c, 300, 400), "marker never reached 300,400");
    ck_assert_int_eq(tsvnc_pointer(c, 700, 250, 0), 0);
    until = tsguest_now_ms() + SEE_TIMEOUT_MS;
    while (!pointer_near(c, 700, 250) && tsguest_now_ms() < until)
        tsvnc_pump(c, 100);
    ck_assert_msg(pointer_near(c, 700, 250), "marker never reached 700,250");
    tsvnc_close(c);
    close(ctl);
}
END_TEST

START_TEST(gateway_client_with_ticket)
{
    json_t *subfd = subscribe(), *ev;
    int sub = (int)json_integer_value(subfd), ctl;
    struct tsvnc *c;
    long bad;

    desktop_ready();
    clear_text_box();
    ctl = tsdisplay_ctl_open(&dmn);
    c = gateway_client(ctl, "198.51.100.7");
    ev = tsdisplay_wait_event(sub, "connected");
    ck_assert_str_eq(data_str(ev, "via"), "gateway");
    ck_assert_str_eq(data_str(ev, "peer"), "198.51.100.7");
    ck_assert_str_eq(data_str(ev, "user"), "erin");
    ck_assert_str_eq(data_str(ev, "desktop"), VM);
    json_decref(ev);

    tsvnc_pump(c, 300);
    ck_assert_msg((bad = differs_from_screen(c, 0)) == 0,
                  "gateway client: %ld pixels differ from the screen", bad);
    ck_assert_int_eq(tsvnc_type(c, "gw"), 0);
    wait_text(c, "gw");
    tsvnc_close(c);
    ev = tsdisplay_wait_event(sub, "disconnected");
    ck_assert_str_eq(data_str(ev, "reason"), "client closed");
    ck_assert_int_gt(data_int(ev, "bytes_sent"), 1024 * 768 * 4);
    ck_assert_int_gt(data_int(ev, "frames"), 0);
    json_decref(ev);
    json_decref(subfd);
    close(sub);
    close(ctl);
}
END_TEST

START_TEST(bad_credentials_refused_with_reason)
{
    struct tsvnc_options o = {
        .encodings = "raw", .quality = -1, .compress = -1};
    json_t *subfd = subscribe(), *ev;
    int sub = (int)json_integer_value(subfd), ctl, port;
    struct tsvnc *c;
    char *pw;

    desktop_ready();
    ctl = tsdisplay_ctl_open(&dmn);

    /* Wrong password. */
    pw = tsdisplay_issue(ctl, "vnc", VM, "frank", 60, &port);
    ck_assert_int_lt(tsvnc_connect_tcp(&c, "127.0.0.1", port, "wrong123", &o),
                     0);
    ck_assert_msg(strstr(tsvnc_last_connect_error(), "failed"),
                  "client saw: %s", tsvnc_last_connect_error());
    ev = tsdisplay_wait_event(sub, "refused");
    ck_assert_str_eq(data_str(ev, "reason"), "unknown password");
    json_decref(ev);

    /* The right one works once... */
    ck_assert_int_eq(tsvnc_connect_tcp(&c, "127.0.0.1", port, pw, &o), 0);
    tsvnc_close(c);
    /* ...and only once. */
    ck_assert_int_lt(tsvnc_connect_tcp(&c, "127.0.0.1", port, pw, &o), 0);
    free(pw);
    ev = tsdisplay_wait_event(sub, "refused");
    ck_assert_str_eq(data_str(ev, "reason"), "already used");
    json_decref(ev);

    /* Expired. */
    pw = tsdisplay_issue(ctl, "vnc", VM, "frank", 1, &port);
    tsguest_sleep_ms(1500);
    ck_assert_int_lt(tsvnc_connect_tcp(&c, "127.0.0.1", port, pw, &o), 0);
    free(pw);
    ev = tsdisplay_wait_event(sub, "refused");
    ck_assert_str_eq(data_str(ev, "reason"), "expired");
    json_decref(ev);

    /* A reused ticket: the gateway client sees the reason. */
    pw = tsdisplay_issue(ctl, "gateway", VM, "frank", 60, NULL);
    ck_assert_int_eq(tsvnc_connect_gateway(&c, dmn.gw, pw, NULL, &o), 0);
    tsvnc_close(c);
    ck_assert_int_lt(tsvnc_connect_gateway(&c, dmn.gw, pw, NULL, &o), 0);
    ck_assert_msg(strstr(tsvnc_last_connect_error(), "already used"),
                  "client saw: %s", tsvnc_last_connect_error());
    free(pw);

    ck_assert(tsdisplay_log_contains(&dmn, "refused: unknown password"));
    ck_assert(tsdisplay_log_contains(&dmn, "refused: already used"));
    ck_assert(tsdisplay_log_contains(&dmn, "refused: expired"));
    json_decref(subfd);
    close(sub);
    close(ctl);
}
END_TEST

/* A raw client through the gateway up to the RFB normal phase. */
static int raw_gateway_client(int ctl)
{
    char *ticket = tsdisplay_issue(ctl, "gateway", VM, "mallory", 60, NULL);
    char line[128], *reason, init[24], name[64];
    int fd;

    snprintf(line, sizeof(line), "TICKET %s\n", ticket);
    free(ticket);
    fd = tsdisplay_gateway(&dmn, line, &reason);
    ck_assert_msg(fd >= 0, "refused: %s", reason);
    ck_assert_int_eq(write(fd, "\1", 1), 1);
    ck_assert_int_eq(recv(fd, init, sizeof(init), MSG_WAITALL),
                     (ssize_t)sizeof(init));
    ck_assert_int_eq(recv(fd, name, (size_t)init[23], MSG_WAITALL), init[23]);
    return fd;
}

/* True once the server closed fd (whatever it sent before). */
static int server_closed(int fd, int timeout_ms)
{
    long long until = tsguest_now_ms() + timeout_ms;
    char buf[65536];

    while (tsguest_now_ms() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, 200) <= 0)
            continue;
        n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
    }
    return 0;
}

START_TEST(garbage_closes_only_that_connection)
{
    static const unsigned char huge_cut[] = {6,    0,    0,    0,
                                             0xff, 0xff, 0xff, 0xff};
    static const unsigned char bad_type[] = {200, 1, 2, 3};
    static const unsigned char bad_qemu[] = {255, 7, 0, 0};
    static const unsigned char *junk[] = {huge_cut, bad_type, bad_qemu};
    static const size_t junk_len[] = {sizeof(huge_cut), sizeof(bad_type),
                                      sizeof(bad_qemu)};
    int ctl, i;
    struct tsvnc *good;

    desktop_ready();
    clear_text_box();
    ctl = tsdisplay_ctl_open(&dmn);
    good = gateway_client(ctl, NULL);
    for (i = 0; i < 3; i++) {
        int fd = raw_gateway_client(ctl);

        ck_assert_int_eq(write(fd, junk[i], junk_len[i]), (ssize_t)junk_len[i]);
        ck_assert_msg(server_closed(fd, 15000),
                      "garbage %d did not close its connection", i);
        close(fd);
    }
    /* A truncated message, then the client goes away mid-way. */
    i = raw_gateway_client(ctl);
    ck_assert_int_eq(write(i, "\5\0\1", 3), 3);
    close(i);

    /* The other session is untouched: it still types and sees. */
    ck_assert_int_eq(tsvnc_type(good, "fine"), 0);
    wait_text(good, "fine");
    ck_assert_int_eq(kill(dmn.pid, 0), 0);
    tsvnc_close(good);
    close(ctl);
}
END_TEST

START_TEST(killing_a_session_leaves_the_others)
{
    json_t *subfd = subscribe(), *ev, *list;
    int sub = (int)json_integer_value(subfd), ctl, victim;
    struct tsvnc *a, *b;
    json_int_t victim_id;

    desktop_ready();
    clear_text_box();
    ctl = tsdisplay_ctl_open(&dmn);
    a = vnc_client(ctl, "raw", -1);
    b = gateway_client(ctl, NULL);
    list = sessions(ctl);
    ck_assert_uint_eq(json_array_size(list), 2);
    victim = (int)json_integer_value(
        json_object_get(json_array_get(list, 0), "pid"));
    victim_id =
        json_integer_value(json_object_get(json_array_get(list, 0), "session"));
    json_decref(list);
    ck_assert_int_eq(kill(victim, SIGKILL), 0);

    for (;;) {
        ev = tsdisplay_wait_event(sub, "disconnected");
        if (data_int(ev, "session") == victim_id)
            break;
        json_decref(ev);
    }
    ck_assert_str_eq(data_str(ev, "reason"), "killed by signal 9");
    json_decref(ev);
    ck_assert_int_lt(tsvnc_pump(a, 3000), 0); /* a's connection is gone */

    ck_assert_int_eq(tsvnc_type(b, "alive"), 0);
    wait_text(b, "alive");
    list = sessions(ctl);
    ck_assert_uint_eq(json_array_size(list), 1);
    json_decref(list);
    tsvnc_close(a);
    tsvnc_close(b);
    json_decref(subfd);
    close(sub);
    close(ctl);
}
END_TEST

START_TEST(stats_events_while_connected)
{
    json_t *subfd = subscribe(), *ev;
    int sub = (int)json_integer_value(subfd), ctl;
    struct tsvnc *c;
    long long until;

    desktop_ready();
    ctl = tsdisplay_ctl_open(&dmn);
    c = vnc_client(ctl, "tight", 6);
    ev = tsdisplay_wait_event(sub, "connected");
    ck_assert_str_eq(data_str(ev, "via"), "vnc");
    ck_assert_str_eq(data_str(ev, "user"), "dave");
    json_decref(ev);
    /* The clock ticks every second: bytes grow; stats every 5 s. */
    until = tsguest_now_ms() + 12000;
    ev = NULL;
    while (!ev && tsguest_now_ms() < until) {
        struct pollfd p = {.fd = sub, .events = POLLIN};

        tsvnc_pump(c, 200);
        if (poll(&p, 1, 0) > 0) {
            json_t *m = tsdisplay_read_json(sub);
            const char *name = json_string_value(json_object_get(m, "event"));

            if (name && !strcmp(name, "stats"))
                ev = m;
            else
                json_decref(m);
        }
    }
    ck_assert_msg(ev != NULL, "no stats event within 12 s");
    ck_assert_int_gt(data_int(ev, "bytes_sent"), 0);
    ck_assert_int_gt(data_int(ev, "frames"), 0);
    json_decref(ev);
    tsvnc_close(c);
    json_decref(subfd);
    close(sub);
    close(ctl);
}
END_TEST

/* ------------------------------------------------------------------------
 * One guest and one daemon for all tests */

static void suite_setup(void)
{
    start_err = tsguest_host_start(&host, VM, "testdesk.mode=idle");
}

static void suite_teardown(void)
{
    tsguest_host_close(host);
    host = NULL;
}

/* A daemon per test (it starts in milliseconds): a test's leftovers
 * never reach the next one. */
static void test_setup(void)
{
    ck_assert_msg(host != NULL, "no test guest");
    tsdisplay_start(&dmn, hv_host_state_dir(host));
}

static void test_teardown(void)
{
    tsdisplay_stop(&dmn);
}

int main(void)
{
    Suite *s = suite_create("display");
    TCase *tc = tcase_create("vnc");

    signal(SIGPIPE, SIG_IGN);
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, test_setup, test_teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, vnc_client_sees_the_desktop);
    tcase_add_test(tc, vnc_client_types_and_points);
    tcase_add_test(tc, gateway_client_with_ticket);
    tcase_add_test(tc, bad_credentials_refused_with_reason);
    tcase_add_test(tc, garbage_closes_only_that_connection);
    tcase_add_test(tc, killing_a_session_leaves_the_others);
    tcase_add_test(tc, stats_events_while_connected);
    suite_add_tcase(s, tc);
    return tsguest_run_suite(s);
}
