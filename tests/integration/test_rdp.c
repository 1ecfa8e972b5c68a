/*
 * test_rdp.c - deskpool-display's RDP port with the broker and a real
 * test-image desktop, seen through a headless FreeRDP client (tsrdp,
 * software GDI): alice logs in with her password and sees exactly what a
 * QMP screendump shows (clock masked); keys typed as scancodes and
 * Unicode reach the guest's text box, the client's lock-key Synchronize
 * sets the guest's Caps Lock, the mouse moves its pointer; a wrong
 * password is refused (the display logs it, the broker counts it: five wrong
 * guesses lock bob out); a portal ticket ("ticket:<t>" as the user name) opens
 * the desktop once; garbage after the TCP connect ends only that connection
 * while another session goes on. Through the graphics pipeline: a client
 * asking for AVC420 gets H.264 frames, sees the desktop within H.264's
 * tolerance (closer after the refresh that follows motion), and its typing
 * and pointer reach the guest; one asking for GFX without H.264 gets
 * planar surface commands and sees it exactly.
 */
#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "td_layout.h"
#include "tsbroker.h"
#include "tsdisplay.h"
#include "tsguest.h"
#include "tsppm.h"
#include "tsrdp.h"
#include "tsrdpenv.h"
#include "tsscreen.h"
#include "tsweb.h"

#define SEE_MS 20000

static struct tsbroker broker;
static struct tsdisplay dmn;
static struct tsbroker_session admin, alice;
static struct tsrdpenv env = {
    .broker = &broker, .display = &dmn, .admin = &admin, .alice = &alice};
static int rdp_port;

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

static void setup(void)
{
    tsrdpenv_start(&env);
    rdp_port = env.rdp_port;
}

static void teardown(void)
{
    tsrdpenv_stop(&env);
}

static struct tsscreen client_view(struct tsrdp *c)
{
    int w, h, stride;
    const uint32_t *px = tsrdp_pixels(c, &w, &h, &stride);

    return tsscreen_view(px, w, h, stride);
}

/* The desktop alice got (the only one of the pool in use). */
static void alice_desktop(char *id, size_t size)
{
    tsrdpenv_alice_desktop(&env, id, size);
}

/* Pumps the client until its screen equals the guest's screendump
 * outside the clock: every channel within tol on all but max_beyond
 * pixels, or fails. */
static void client_near_guest(struct tsrdp *c, struct hv_host *h,
                              const char *id, int tol, int max_beyond)
{
    long long until = tsguest_now_ms() + SEE_MS;
    struct tsppm *shot = NULL;
    struct tsweb_cmp cmp = {0};
    struct td_layout l;

    td_layout_compute(&l, TSGUEST_WIDTH, TSGUEST_HEIGHT);
    for (;;) {
        struct tsscreen a, b;

        ck_assert_int_ge(tsrdp_pump(c, 200), 0);
        ck_assert_int_eq(tsguest_screen(h, id, &shot), 0);
        a = client_view(c);
        b = tsscreen_from_ppm(shot);
        tsweb_compare(&a, &b, tol, &l.clock, 1, &cmp);
        if ((cmp.beyond <= max_beyond && cmp.compared > 0) ||
            tsguest_now_ms() > until)
            break;
    }
    if (cmp.beyond > max_beyond) {
        struct tsscreen a = client_view(c);

        tsscreen_keep(&a, "rdp", "client");
        tsguest_keep_screen(h, id, "rdp", "guest");
    }
    ck_assert_msg(cmp.beyond <= max_beyond && cmp.width == TSGUEST_WIDTH &&
                      cmp.height == TSGUEST_HEIGHT,
                  "the RDP client's %dx%d screen differs from the guest's: %d "
                  "pixels beyond the tolerance %d (at most %d), first at "
                  "(%d,%d): 0x%06x vs 0x%06x",
                  cmp.width, cmp.height, cmp.beyond, tol, max_beyond, cmp.x,
                  cmp.y, cmp.a, cmp.b);
    fprintf(stderr, "rdp: within %d: %d of %d pixels beyond, max %d\n", tol,
            cmp.beyond, cmp.compared, cmp.max);
    tsppm_free(shot);
}

static void client_matches_guest(struct tsrdp *c, struct hv_host *h,
                                 const char *id)
{
    client_near_guest(c, h, id, 8, 0);
}

/* The text box reads text on the client's screen: exactly, or (lossy)
 * each pixel nearer the right colour. */
static int client_text_errors(struct tsrdp *c, const char *text, int lossy)
{
    struct tsscreen s = client_view(c);
    struct td_layout l;
    char padded[128];
    int x, y;

    if (!lossy)
        return tsscreen_textbox_why(&s, text, NULL, 0);
    td_layout_compute(&l, s.width, s.height);
    td_layout_text_cell(&l, 0, 0, &x, &y);
    snprintf(padded, sizeof(padded), "%s ", text);
    return tsweb_text_errors(&s, x, y, padded, TD_COLOR_TEXT, TD_COLOR_TEXTBOX);
}

/* Pumps the client until the guest's text box reads text, on the guest's
 * screendump and on the client's screen. */
static void text_arrives_ex(struct tsrdp *c, struct hv_host *h, const char *id,
                            const char *text, int lossy)
{
    long long until = tsguest_now_ms() + SEE_MS;
    struct tsppm *shot = NULL;
    char why[256] = "";
    int guest = 1, client = 1;

    while (tsguest_now_ms() < until) {
        struct tsscreen s;

        ck_assert_int_ge(tsrdp_pump(c, 200), 0);
        ck_assert_int_eq(tsguest_screen(h, id, &shot), 0);
        s = tsscreen_from_ppm(shot);
        guest = tsscreen_textbox_why(&s, text, why, sizeof(why));
        client = client_text_errors(c, text, lossy);
        if (!guest && !client)
            break;
    }
    tsppm_free(shot);
    ck_assert_msg(!guest, "guest: %s", why);
    if (client) {
        struct tsscreen s = client_view(c);

        tsscreen_keep(&s, "rdp", "client-text");
        tsscreen_textbox_why(&s, text, why, sizeof(why));
    }
    ck_assert_msg(!client, "the RDP client does not show \"%s\": %s", text,
                  lossy ? "pixels read wrong" : why);
}

static void text_arrives(struct tsrdp *c, struct hv_host *h, const char *id,
                         const char *text)
{
    text_arrives_ex(c, h, id, text, 0);
}

/* Moves the RDP mouse to (x, y) and waits for testdesk's pointer marker
 * there (within a pixel or two: QEMU scales the absolute position), on
 * the guest's screendump and on the client's screen. */
static void pointer_arrives_ex(struct tsrdp *c, struct hv_host *h,
                               const char *id, int x, int y, int lossy)
{
    long long until = tsguest_now_ms() + SEE_MS;
    struct tsppm *shot = NULL;
    int gx = -1, gy = -1, cx = -1, cy = -1, ok = 0;

    ck_assert_int_eq(tsrdp_mouse(c, x, y, 0, 0), 0);
    while (!ok && tsguest_now_ms() < until) {
        struct tsscreen s;

        ck_assert_int_ge(tsrdp_pump(c, 200), 0);
        ck_assert_int_eq(tsguest_screen(h, id, &shot), 0);
        s = tsscreen_from_ppm(shot);
        tsscreen_find_pointer(&s, &gx, &gy);
        s = client_view(c);
        if (lossy)
            tsweb_find_pointer(&s, 48, &cx, &cy);
        else
            tsscreen_find_pointer(&s, &cx, &cy);
        /* H.264 smears the marker's edge by a pixel or two */
        ok = abs(gx - x) <= 2 && abs(gy - y) <= 2 && abs(cx - gx) <= lossy &&
             abs(cy - gy) <= lossy;
    }
    tsppm_free(shot);
    ck_assert_msg(ok,
                  "pointer moved to (%d,%d): the guest shows it at (%d,%d), "
                  "the RDP client at (%d,%d)",
                  x, y, gx, gy, cx, cy);
}

static void pointer_arrives(struct tsrdp *c, struct hv_host *h, const char *id,
                            int x, int y)
{
    pointer_arrives_ex(c, h, id, x, y, 0);
}

static void press(struct tsrdp *c, unsigned code)
{
    ck_assert_int_eq(tsrdp_key(c, code, 0, 1), 0);
    ck_assert_int_eq(tsrdp_key(c, code, 0, 0), 0);
}

/* A raw TCP connection that sends junk: the server must close it. */
static void garbage_is_dropped(const unsigned char *junk, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)rdp_port)};
    struct pollfd p;
    char buf[4096];
    long long until = tsguest_now_ms() + 30000;
    int fd = socket(AF_INET, SOCK_STREAM, 0), closed = 0;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(write(fd, junk, len), (ssize_t)len);
    while (!closed && tsguest_now_ms() < until) {
        p = (struct pollfd){.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 200) > 0 && read(fd, buf, sizeof(buf)) <= 0)
            closed = 1;
    }
    close(fd);
    ck_assert_msg(closed, "the display kept a connection that sent junk");
}

/* Pumps c for ms (the server's frames keep coming meanwhile). */
static void pump_for(struct tsrdp *c, int ms)
{
    long long until = tsguest_now_ms() + ms;

    while (tsguest_now_ms() < until)
        ck_assert_int_ge(tsrdp_pump(c, 50), 0);
}

/* Reads what the server sends until the graphics pipeline is up, as a
 * real client does all the time: this client reads only when pumped, and
 * the comparisons in between (QMP screendumps) are slow on a loaded
 * machine, while the server waits only so long for the channel's caps. */
static void gfx_up(struct tsrdp *c)
{
    long long until = tsguest_now_ms() + SEE_MS;
    struct tsrdp_gfx_stats st = {0};

    while (!st.connected && tsguest_now_ms() < until) {
        ck_assert_int_ge(tsrdp_pump(c, 50), 0);
        tsrdp_gfx_stats(c, &st);
    }
    /* then a little more: the caps exchange follows the channel's creation */
    pump_for(c, 500);
}

/* The graphics pipeline: a client asking for AVC420 gets H.264 frames and
 * sees the desktop (within H.264's tolerance while things move, nearly
 * exact once the refresh after motion came); one asking for GFX without
 * H.264 gets planar surface commands, exact. */
static void gfx_clients(struct hv_host *h, const char *id)
{
    struct tsrdp_gfx_stats st;
    struct tsrdp *c = NULL;
    char why[256];
    int pixels = TSGUEST_WIDTH * TSGUEST_HEIGHT;

    ck_assert_msg(tsrdp_connect_gfx(&c, rdp_port, "alice", "alice-pw",
                                    TSRDP_GFX_AVC420, why, sizeof(why)) == 0,
                  "GFX AVC420 login failed: %s", why);
    gfx_up(c);
    client_near_guest(c, h, id, 40, pixels / 100);
    tsrdp_gfx_stats(c, &st);
    ck_assert_msg(st.connected && st.avc420 > 0 && st.planar == 0,
                  "AVC420 client: rdpgfx %d, %d AVC420, %d planar, %d other "
                  "surface commands",
                  st.connected, st.avc420, st.planar, st.other);
    press(c, 0x2e); /* c */
    ck_assert_int_eq(tsrdp_unicode(c, 'Q'), 0);
    text_arrives_ex(c, h, id, "hi!AbCDe wcQ", 1);
    pointer_arrives_ex(c, h, id, 500, 300, 3);
    pump_for(c, 1500); /* motion stopped: the refresh frame comes */
    client_near_guest(c, h, id, 16, pixels / 1000);
    tsrdp_close(c);
    c = NULL;
    tsbroker_wait_state(&admin, id, "DISCONNECTED", NULL, 20000);
    ck_assert(tsdisplay_log_contains(&dmn, "graphics pipeline: AVC420"));

    ck_assert_msg(tsrdp_connect_gfx(&c, rdp_port, "alice", "alice-pw",
                                    TSRDP_GFX, why, sizeof(why)) == 0,
                  "GFX login failed: %s", why);
    gfx_up(c);
    client_matches_guest(c, h, id);
    press(c, 0x39); /* space */
    text_arrives(c, h, id, "hi!AbCDe wcQ ");
    tsrdp_gfx_stats(c, &st);
    ck_assert_msg(st.connected && st.planar > 0 && st.avc420 == 0,
                  "GFX client: rdpgfx %d, %d AVC420, %d planar, %d other "
                  "surface commands",
                  st.connected, st.avc420, st.planar, st.other);
    tsrdp_close(c);
    tsbroker_wait_state(&admin, id, "DISCONNECTED", NULL, 20000);
    ck_assert(tsdisplay_log_contains(&dmn, "graphics pipeline: planar"));
}

START_TEST(rdp_password_ticket_and_garbage)
{
    /* an X.224 Connection Request whose negotiation request is nonsense,
     * and one cut short (the server waits, then gives up) */
    static const unsigned char junk1[] = {
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0xff, 0x08, 0x00, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char cut[] = {0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0};
    static const unsigned char junk2[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct tsrdp *c = NULL, *c2 = NULL;
    struct hv_host *h = NULL;
    char id[80], why[256], user[128];
    json_t *r;
    int i;

    /* alice logs in with her password and gets her desktop */
    ck_assert_msg(
        tsrdp_connect(&c, rdp_port, "alice", "alice-pw", why, sizeof(why)) == 0,
        "alice's RDP login failed: %s", why);
    alice_desktop(id, sizeof(id));
    ck_assert_int_eq(tsguest_host_open(&h, broker.vm), 0);
    tsbroker_wait_state(&admin, id, "CONNECTED", NULL, 20000);
    client_matches_guest(c, h, id);
    ck_assert(tsdisplay_log_contains(&dmn, "via rdp from 127.0.0.1:"));

    /* typing: scancodes (h, i), then a Unicode key event ('!') */
    press(c, 0x23);
    press(c, 0x17);
    text_arrives(c, h, id, "hi");
    ck_assert_int_eq(tsrdp_unicode(c, '!'), 0);
    text_arrives(c, h, id, "hi!");
    /* lock keys: the client's Synchronize turns the guest's Caps Lock on
     * (a), off (b); a Caps Lock key the client forwards counts (c), so a
     * Synchronize that agrees presses nothing (d), one that does not
     * turns it off again (e) */
    ck_assert_int_eq(tsrdp_sync(c, TSRDP_CAPS_LOCK), 0);
    press(c, 0x1e);
    ck_assert_int_eq(tsrdp_sync(c, 0), 0);
    press(c, 0x30);
    press(c, 0x3a);
    press(c, 0x2e);
    ck_assert_int_eq(tsrdp_sync(c, TSRDP_CAPS_LOCK), 0);
    press(c, 0x20);
    ck_assert_int_eq(tsrdp_sync(c, 0), 0);
    press(c, 0x12);
    text_arrives(c, h, id, "hi!AbCDe");
    /* the mouse (absolute) */
    pointer_arrives(c, h, id, 300, 400);
    pointer_arrives(c, h, id, 700, 250);

    /* a wrong password: refused, logged by the display, counted by the
     * broker */
    ck_assert_int_ne(
        tsrdp_connect(&c2, rdp_port, "alice", "nope", why, sizeof(why)), 0);
    ck_assert_ptr_null(c2);
    ck_assert_msg(strstr(why, "INSUFFICIENT_PRIVILEGES"), "refusal: %s", why);
    ck_assert_msg(tsdisplay_log_contains(&dmn, "rdp client 127.0.0.1:") &&
                      tsdisplay_log_contains(&dmn, "refused: alice:"),
                  "the display did not log the refusal");

    /* garbage after the TCP connect ends only that connection */
    garbage_is_dropped(junk1, sizeof(junk1));
    garbage_is_dropped(junk2, sizeof(junk2) - 1);
    garbage_is_dropped(cut, sizeof(cut));
    press(c, 0x39); /* space */
    press(c, 0x11); /* w */
    text_arrives(c, h, id, "hi!AbCDe w");
    tsrdp_close(c);
    c = NULL;
    tsbroker_wait_state(&admin, id, "DISCONNECTED", NULL, 20000);

    gfx_clients(h, id);

    /* a portal ticket, as the .rdp file carries it: once */
    r = NULL;
    ck_assert_int_eq(tsbroker_call(&alice, "POST", "/api/v1/pools/desk/launch",
                                   "{\"protocol\":\"rdp\"}", &r),
                     200);
    snprintf(user, sizeof(user), "ticket:%s", str(r, "ticket"));
    json_decref(r);
    ck_assert_msg(tsrdp_connect(&c, rdp_port, user, NULL, why, sizeof(why)) ==
                      0,
                  "ticket login failed: %s", why);
    client_matches_guest(c, h, id);
    tsrdp_close(c);
    c = NULL;
    ck_assert_int_ne(tsrdp_connect(&c, rdp_port, user, NULL, why, sizeof(why)),
                     0);
    ck_assert(tsdisplay_log_contains(&dmn, "refused: already used"));

    /* the broker counts RDP failures: bob guesses five times, and then
     * his right password is refused too (locked) */
    for (i = 0; i < 5; i++) {
        ck_assert_int_ne(
            tsrdp_connect(&c, rdp_port, "bob", "guess", why, sizeof(why)), 0);
        ck_assert_msg(strstr(why, "INSUFFICIENT_PRIVILEGES"), "%s", why);
    }
    ck_assert_int_ne(
        tsrdp_connect(&c, rdp_port, "bob", "bob-pw", why, sizeof(why)), 0);
    ck_assert(tsdisplay_log_contains(&dmn, "refused: bob: too many failed"));
    tsguest_host_close(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rdp");
    TCase *tc = tcase_create("rdp");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, rdp_password_ticket_and_garbage);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
