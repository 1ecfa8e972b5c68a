/*
 * test_xfreerdp.c - the real FreeRDP X11 client against deskpool-display's
 * RDP port, with the broker and a real test-image desktop (tsrdpenv):
 * xfreerdp runs on Xvfb, logs in as alice with her password, and a
 * screenshot of its window shows what a QMP screendump of her desktop
 * shows (clock masked). Three ways of asking for graphics, each checked
 * against the path the display server logs it took: /gfx:avc420 (H.264
 * frames, within H.264's tolerance), /gfx:rfx (the graphics pipeline
 * without H.264: planar surface commands, exact) and /bpp:32 without
 * /gfx (no pipeline: planar bitmap updates, exact).
 *
 * The channels, as the user of a Linux thin client meets them: text
 * copied on the client (xclip owning Xvfb's CLIPBOARD) arrives in the
 * desktop's clipboard (read through the portal's API), and text copied
 * in the desktop (set through that API) is what a paste on the client
 * gets (xclip -o asks xfreerdp, which asks the server); with
 * /dynamic-resolution, resizing xfreerdp's window (xdotool) resizes the
 * desktop through its agent (testdesk draws its desk at the new size).
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "td_layout.h"
#include "tsbroker.h"
#include "tsdisplay.h"
#include "tsguest.h"
#include "tsppm.h"
#include "tsrdpenv.h"
#include "tsscreen.h"
#include "tsweb.h"
#include "tsxfreerdp.h"

/* The first frames take a while under TCG, and xfreerdp's login too. */
#define LOGIN_MS 60000
#define SEE_MS   30000

static struct tsbroker broker;
static struct tsdisplay dmn;
static struct tsbroker_session admin, alice;
static struct tsrdpenv env = {
    .broker = &broker, .display = &dmn, .admin = &admin, .alice = &alice};

static void setup(void)
{
    tsrdpenv_start(&env);
}

static void teardown(void)
{
    tsrdpenv_stop(&env);
}

/* Fails the test, with the end of xfreerdp's output, once it exited. */
static void client_still_runs(struct tsxfreerdp *x)
{
    int status = 0;

    if (tsxfreerdp_running(x, &status))
        return;
    tsxfreerdp_print_log(x);
    ck_abort_msg("xfreerdp exited (status %d) before showing the desktop",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* Waits until the display server let alice in over RDP. */
static void logged_in(struct tsxfreerdp *x)
{
    long long until = tsguest_now_ms() + LOGIN_MS;

    while (!tsdisplay_log_contains(&dmn, "via rdp from 127.0.0.1:")) {
        client_still_runs(x);
        ck_assert_msg(tsguest_now_ms() < until,
                      "xfreerdp did not log in within %d s (see %s)",
                      LOGIN_MS / 1000, tsxfreerdp_log(x));
        tsguest_sleep_ms(200);
    }
}

/*
 * Looks at xfreerdp's window until it equals the guest's screendump
 * outside the clock: every channel within tol on all but max_beyond
 * pixels, or fails, keeping both screens as xfreerdp-NAME-{client,guest}.
 */
static void window_shows_guest(struct tsxfreerdp *x, struct hv_host *h,
                               const char *id, const char *name, int tol,
                               int max_beyond)
{
    long long until = tsguest_now_ms() + SEE_MS;
    struct tsppm *shot = NULL;
    struct tsweb_cmp cmp = {0};
    struct tsscreen a = {0}, b;
    struct td_layout l;
    char keep[64];

    td_layout_compute(&l, TSGUEST_WIDTH, TSGUEST_HEIGHT);
    for (;;) {
        client_still_runs(x);
        ck_assert_int_eq(tsguest_screen(h, id, &shot), 0);
        ck_assert_int_eq(
            tsxfreerdp_screen(x, TSGUEST_WIDTH, TSGUEST_HEIGHT, &a), 0);
        b = tsscreen_from_ppm(shot);
        tsweb_compare(&a, &b, tol, &l.clock, 1, &cmp);
        if ((cmp.beyond <= max_beyond && cmp.compared > 0) ||
            tsguest_now_ms() > until)
            break;
        tsguest_sleep_ms(200);
    }
    if (cmp.beyond > max_beyond) {
        snprintf(keep, sizeof(keep), "%s-client", name);
        tsscreen_keep(&a, "xfreerdp", keep);
        snprintf(keep, sizeof(keep), "%s-guest", name);
        tsguest_keep_screen(h, id, "xfreerdp", keep);
    }
    ck_assert_msg(cmp.beyond <= max_beyond && cmp.compared > 0,
                  "xfreerdp's window (%s) differs from the guest's screen: "
                  "%d pixels beyond the tolerance %d (at most %d), first at "
                  "(%d,%d): 0x%06x vs 0x%06x",
                  name, cmp.beyond, tol, max_beyond, cmp.x, cmp.y, cmp.a,
                  cmp.b);
    fprintf(stderr, "xfreerdp %s: within %d: %d of %d pixels beyond, max %d\n",
            name, tol, cmp.beyond, cmp.compared, cmp.max);
    tsppm_free(shot);
}

/* Did the display server take the path its log calls path (and not the
 * one called other)? If not, its graphics lines go to stderr. */
static int display_took(const char *path, const char *other)
{
    char line[512];
    FILE *f;

    if (tsdisplay_log_contains(&dmn, path) &&
        !tsdisplay_log_contains(&dmn, other))
        return 1;
    f = fopen(dmn.log, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strstr(line, "graphics pipeline"))
            fprintf(stderr, "display: %s", line);
    if (f)
        fclose(f);
    return 0;
}

/*
 * xfreerdp asking for graphics g logs in as alice and its window shows
 * her desktop within (tol, max_beyond); the display server took the path
 * its log calls path, and not the one called other.
 */
static void xfreerdp_shows_desktop(enum tsxfreerdp_graphics g, const char *name,
                                   int tol, int max_beyond, const char *path,
                                   const char *other)
{
    struct tsxfreerdp *x = NULL;
    struct hv_host *h = NULL;
    char id[80];

    ck_assert_int_eq(tsxfreerdp_start(&x, env.rdp_port, "alice", "alice-pw", g),
                     0);
    logged_in(x);
    tsrdpenv_alice_desktop(&env, id, sizeof(id));
    tsbroker_wait_state(&admin, id, "CONNECTED", "alice", 20000);
    ck_assert_int_eq(tsguest_host_open(&h, broker.vm), 0);
    window_shows_guest(x, h, id, name, tol, max_beyond);
    ck_assert_msg(display_took(path, other),
                  "xfreerdp %s: the display's log (%s) should say \"%s\" "
                  "and not \"%s\"",
                  tsxfreerdp_graphics_args(g), dmn.log, path, other);
    client_still_runs(x);
    tsxfreerdp_stop(x);
    tsbroker_wait_state(&admin, id, "DISCONNECTED", NULL, 20000);
    tsguest_host_close(h);
}

/* alice's desktop's clipboard through the portal's API ("" on error). */
static void desktop_clipboard(const char *id, char *out, size_t size)
{
    char path[160];
    json_t *r = NULL;

    snprintf(path, sizeof(path), "/api/v1/desktops/%s/clipboard", id);
    out[0] = '\0';
    if (tsbroker_call(&alice, "GET", path, NULL, &r) == 200)
        snprintf(out, size, "%s",
                 json_string_value(json_object_get(r, "text")) ?: "");
    json_decref(r);
}

/* xfreerdp logged in as alice, showing her desktop (id into id). */
static struct tsxfreerdp *xfreerdp_on_desktop(const char *const *extra,
                                              struct hv_host **h, char *id,
                                              size_t id_size)
{
    struct tsxfreerdp *x = NULL;

    ck_assert_int_eq(tsxfreerdp_start_with(&x, env.rdp_port, "alice",
                                           "alice-pw", TSXFREERDP_AVC420,
                                           extra),
                     0);
    logged_in(x);
    tsrdpenv_alice_desktop(&env, id, id_size);
    tsbroker_wait_state(&admin, id, "CONNECTED", "alice", 20000);
    ck_assert_int_eq(tsguest_host_open(h, broker.vm), 0);
    window_shows_guest(x, *h, id, "channels", 40,
                       TSGUEST_WIDTH * TSGUEST_HEIGHT / 100);
    return x;
}

START_TEST(xfreerdp_clipboard_both_ways)
{
    static const char from_client[] = "copied on the thin client \u00e9\u20ac";
    static const char from_desktop[] = "copied in the desktop\nline two";
    char *xclip_in[] = {"xclip", "-selection", "clipboard", "-i", NULL};
    char *xclip_out[] = {"xclip", "-selection", "clipboard", "-o", NULL};
    char id[80], got[256] = "", path[160], *body;
    json_t *set;
    struct hv_host *h = NULL;
    struct tsxfreerdp *x = xfreerdp_on_desktop(NULL, &h, id, sizeof(id));
    long long until;

    /* the client copies: xclip owns the CLIPBOARD, xfreerdp sends the
     * server its formats, the server fetches the text into the guest */
    ck_assert_int_eq(tsxfreerdp_x(x, xclip_in, from_client, NULL, 0, 5000), 0);
    for (until = tsguest_now_ms() + 20000; tsguest_now_ms() < until;
         tsguest_sleep_ms(200)) {
        desktop_clipboard(id, got, sizeof(got));
        if (!strcmp(got, from_client))
            break;
    }
    ck_assert_msg(!strcmp(got, from_client),
                  "the desktop's clipboard has \"%s\", not the client's "
                  "\"%s\"",
                  got, from_client);

    /* the desktop copies: the server offers it, a paste on the client
     * (xclip -o asks xfreerdp) gets it */
    snprintf(path, sizeof(path), "/api/v1/desktops/%s/clipboard", id);
    set = json_pack("{s:s}", "text", from_desktop);
    body = json_dumps(set, 0);
    json_decref(set);
    ck_assert_int_eq(tsbroker_call(&alice, "POST", path, body, NULL), 200);
    free(body);
    for (until = tsguest_now_ms() + 20000; tsguest_now_ms() < until;
         tsguest_sleep_ms(300)) {
        if (tsxfreerdp_x(x, xclip_out, NULL, got, sizeof(got), 5000) == 0 &&
            !strcmp(got, from_desktop))
            break;
    }
    ck_assert_msg(!strcmp(got, from_desktop),
                  "a paste on the client gives \"%s\", not the desktop's "
                  "\"%s\"",
                  got, from_desktop);
    client_still_runs(x);
    tsxfreerdp_stop(x);
    tsguest_host_close(h);
}
END_TEST

/* 0x00RRGGBB of the guest's screen at (px, py). */
static uint32_t guest_pixel(struct hv_host *h, const char *id, int px, int py)
{
    struct tsppm *shot = NULL;
    uint32_t v;

    ck_assert_int_eq(tsguest_screen(h, id, &shot), 0);
    v = tsppm_pixel(shot, px, py);
    tsppm_free(shot);
    return v;
}

START_TEST(xfreerdp_window_resize_resizes_the_desktop)
{
    static const char *const dynamic[] = {"/dynamic-resolution", NULL};
    char *find[] = {"xdotool", "search", "--name", "FreeRDP", NULL};
    char id[80], wid[64] = "";
    struct hv_host *h = NULL;
    struct tsxfreerdp *x = xfreerdp_on_desktop(dynamic, &h, id, sizeof(id));
    long long until;
    uint32_t corner = 0;

    /* testdesk draws its desk over the whole 1024x768 screen now */
    ck_assert_uint_ne(guest_pixel(h, id, 1000, 740), TD_COLOR_OUTSIDE);
    ck_assert_int_eq(tsxfreerdp_x(x, find, NULL, wid, sizeof(wid), 5000), 0);
    wid[strcspn(wid, "\n")] = '\0';
    ck_assert_msg(wid[0], "xdotool finds no xfreerdp window");
    {
        char *resize[] = {"xdotool", "windowsize", wid, "800", "600", NULL};

        ck_assert_int_eq(tsxfreerdp_x(x, resize, NULL, NULL, 0, 5000), 0);
    }
    /* xfreerdp sends the layout, the session asks the agent for 800x600,
     * testdesk draws an 800x600 desk (outside it: TD_COLOR_OUTSIDE) */
    for (until = tsguest_now_ms() + 20000; tsguest_now_ms() < until;
         tsguest_sleep_ms(300)) {
        corner = guest_pixel(h, id, 1000, 740);
        if (corner == TD_COLOR_OUTSIDE)
            break;
    }
    ck_assert_msg(corner == TD_COLOR_OUTSIDE,
                  "the desktop was not resized to the window (0x%06x at "
                  "1000,740; display log %s)",
                  corner, dmn.log);
    ck_assert_uint_eq(guest_pixel(h, id, 900, 100), TD_COLOR_OUTSIDE);
    ck_assert_uint_ne(guest_pixel(h, id, 700, 500), TD_COLOR_OUTSIDE);
    ck_assert(!tsdisplay_log_contains(&dmn, "keeps its size"));
    client_still_runs(x);
    tsxfreerdp_stop(x);
    tsguest_host_close(h);
}
END_TEST

START_TEST(xfreerdp_gfx_avc420)
{
    /* H.264: the tolerance test_rdp allows an AVC420 client */
    xfreerdp_shows_desktop(
        TSXFREERDP_AVC420, "avc420", 40, TSGUEST_WIDTH * TSGUEST_HEIGHT / 100,
        "graphics pipeline: AVC420", "graphics pipeline: planar");
}
END_TEST

START_TEST(xfreerdp_gfx_without_avc)
{
    xfreerdp_shows_desktop(TSXFREERDP_GFX, "gfx", 0, 0,
                           "graphics pipeline: planar",
                           "graphics pipeline: AVC420");
}
END_TEST

START_TEST(xfreerdp_bitmap_updates)
{
    xfreerdp_shows_desktop(TSXFREERDP_BITMAP, "bitmap", 0, 0,
                           "graphics pipeline off (the client has no GFX)",
                           "graphics pipeline: ");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("xfreerdp");
    TCase *tc = tcase_create("xfreerdp");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, xfreerdp_gfx_avc420);
    tcase_add_test(tc, xfreerdp_gfx_without_avc);
    tcase_add_test(tc, xfreerdp_bitmap_updates);
    tcase_add_test(tc, xfreerdp_clipboard_both_ways);
    tcase_add_test(tc, xfreerdp_window_resize_resizes_the_desktop);
    suite_add_tcase(s, tc);
    return tsguest_run_suite(s);
}
