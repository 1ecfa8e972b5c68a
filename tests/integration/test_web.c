/*
 * test_web.c - the portal, the browser viewer and the admin console in a
 * real browser: Debian's Chromium, driven by the Playwright scripts in
 * tests/web/ (see tsweb.h), against the real broker serving the built
 * site ($DESKPOOL_WEB_DIR, `make web`) and, for desktops, deskpool-display
 * and real test-image guests.
 *
 *  - login: a wrong password shows the broker's message, the right one
 *    the user's desktops; an OTP stack's second question is asked in the
 *    page with PAM's own text, and a wrong answer is refused;
 *  - a user who is no administrator sees no admin console and gets 403
 *    from the admin API in the browser;
 *  - "Open in browser": the viewer connects and its noVNC canvas shows
 *    the guest's screen (compared with a QMP screendump, within what a
 *    lossy encoding changes), and keys typed in the page show in the
 *    guest's text box, and then in the canvas; when the network goes and
 *    comes back, the viewer reconnects by itself; the portal shows the
 *    desktop connected, and the password "VNC details" shows logs a VNC
 *    client in, once;
 *  - then, on the same desktop (tests/web/session.mjs): "Download .rdp"
 *    gives an RDP file whose one-time ticket the broker redeems once for
 *    the user's desktop; the viewer's clipboard panel sets the guest's
 *    clipboard, which Ctrl+V pastes into its text box, and reads it back;
 *    an admin's "View screen" on the console's Desktops page opens a
 *    read-only viewer while the user's screen shows the helpdesk banner,
 *    the view's keys do not reach the guest, and the banner goes when the
 *    view's tab closes; the viewer's "Log off" ends the session (the
 *    desktop is refreshed for nobody, the audit log says who);
 *  - the admin console: every page, a pool made with its form (a
 *    validation error first), its desktop ready on the Desktops page.
 *
 * The broker serves a copy of the site made when the test starts
 * (tsweb_site()). Screenshots of every page, the scripts' logs and the
 * canvases compared go to $DESKPOOL_ARTIFACTS/web/ for review.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dp_token.h"
#include "td_layout.h"
#include "tsbroker.h"
#include "tsdisplay.h"
#include "tsguest.h"
#include "tsppm.h"
#include "tsscreen.h"
#include "tsvnc.h"
#include "tsweb.h"

#define BOOT_MS 150000
/* What a scenario may take (its own limit, DESKPOOL_WEB_TIMEOUT_MS), and
 * the C side's, a little longer so the script says why it is late. */
#define LOGIN_MS   90000
#define DESKTOP_MS 240000
#define SESSION_MS 240000
#define ADMIN_MS   300000
#define GRACE_MS   30000

/* What noVNC's lossy rectangles may change: per channel, and how many
 * pixels (per mille) may be off by more. */
#define TOLERANCE     24
#define BEYOND_PERMIL 10
/* JPEG works in 8x8 blocks: a changing area spoils the blocks around it. */
#define BLOCK 8

#define TEXT "hello web"
/* What the clipboard panel sends; the viewer types a space, then pastes
 * it after TEXT. */
#define PASTE  "pasted-42"
#define BANNER "Your screen is being viewed by helpdesk (admin)"
/* How long the guest's text box is watched for keys that must not come. */
#define QUIET_MS 2000

static struct tsbroker broker;
static struct tsdisplay dmn;
static struct tsbroker_session admin;
static int with_display;

static const char *str(const json_t *o, const char *key)
{
    return tsweb_str(o, key);
}

static long num(const json_t *o, const char *key)
{
    return (long)json_integer_value(json_object_get(o, key));
}

static void start_broker(int flags)
{
    char site[PATH_MAX];

    /* tsbroker serves $DESKPOOL_WEB_DIR: this test's own copy of it */
    tsweb_site(site, sizeof(site));
    setenv("DESKPOOL_WEB_DIR", site, 1);
    tsbroker_init(&broker, flags);
    if (with_display)
        tsdisplay_start_for(&dmn, &broker, 0);
    tsbroker_start(&broker);
    tsbroker_connect(&broker, &admin);
    ck_assert_int_eq(
        tsbroker_login(&broker, &admin, "admin", "admin-pw", "otp-admin", 1),
        200);
}

static void create_pool(const char *name, int min, int spare, int max)
{
    char *pool = tsbroker_pool_json(name, min, spare, max, NULL);
    json_t *r = NULL;
    int status = tsbroker_call(&admin, "POST", "/api/v1/admin/pools", pool, &r);

    ck_assert_msg(status == 201, "pool %s: %d %s", name, status,
                  str(r, "message"));
    json_decref(r);
    free(pool);
}

static void stop_all(void)
{
    tsbroker_disconnect(&admin);
    if (with_display)
        tsdisplay_stop(&dmn);
    tsbroker_stop(&broker);
    tsbroker_remove_vms(&broker);
}

/* --- login ----------------------------------------------------------------
 * A broker with a password stack and a pool nobody's desktops come from
 * (max 0: no guest), so the portal has a card to show. */

static void setup_login(void)
{
    with_display = 0;
    start_broker(0);
    create_pool("lobby", 0, 0, 0);
}

static void setup_otp(void)
{
    with_display = 0;
    start_broker(TSBROKER_OTP);
}

static void teardown(void)
{
    stop_all();
}

START_TEST(login_wrong_then_right_password)
{
    const char *env[] = {tsweb_kv("DESKPOOL_URL", "%s", broker.url),
                         "DESKPOOL_USER=alice",
                         "DESKPOOL_PASSWORD=alice-pw",
                         "DESKPOOL_POOL=lobby",
                         tsweb_kv("DESKPOOL_WEB_TIMEOUT_MS", "%d", LOGIN_MS),
                         NULL};
    json_t *r = tsweb_run("login", env, LOGIN_MS + GRACE_MS);
    json_t *card = json_object_get(r, "card"), *b;
    const char *name;

    /* the broker's own words, in the page */
    ck_assert_str_eq(str(r, "error"), "wrong user name or password");
    ck_assert_ptr_nonnull(strstr(str(r, "who"), "alice"));
    ck_assert_int_eq(num(r, "adminLinks"), 0);
    ck_assert_msg(json_is_object(card), "no card for the pool lobby");
    ck_assert_str_ne(str(card, "badge"), "");
    json_object_foreach(json_object_get(card, "buttons"), name, b)
        ck_assert_msg(json_integer_value(b) == 1, "card button \"%s\": %lld",
                      name, (long long)json_integer_value(b));
    /* "Log out" ended the session */
    ck_assert_int_eq(num(r, "meAfterLogout"), 401);
    json_decref(r);
}
END_TEST

/* PAM's second question as the broker relays it (what the page must show
 * as the field's label). */
static void otp_prompt(char *text, size_t size)
{
    struct tsbroker_session s;
    json_t *r = NULL, *p;
    char body[256];

    tsbroker_connect(&broker, &s);
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/login",
                                   "{\"username\":\"carol\"}", &r),
                     200);
    snprintf(body, sizeof(body),
             "{\"conversation\":\"%s\",\"answers\":[\"carol-pw\"]}",
             str(r, "conversation"));
    json_decref(r);
    ck_assert_int_eq(tsbroker_call(&s, "POST", "/api/v1/login", body, &r), 200);
    p = json_array_get(json_object_get(r, "prompts"), 0);
    ck_assert_str_eq(str(p, "style"), "text");
    snprintf(text, size, "%s", str(p, "text"));
    ck_assert_str_ne(text, "");
    json_decref(r);
    tsbroker_disconnect(&s);
}

START_TEST(login_asks_for_the_otp)
{
    char prompt[256];
    const char *env[] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    json_t *r;

    otp_prompt(prompt, sizeof(prompt));
    env[0] = tsweb_kv("DESKPOOL_URL", "%s", broker.url);
    env[1] = "DESKPOOL_USER=alice";
    env[2] = "DESKPOOL_PASSWORD=alice-pw";
    env[3] = tsweb_kv("DESKPOOL_OTP_PROMPT", "%s", prompt);
    env[4] = "DESKPOOL_OTP=otp-alice";
    env[5] = tsweb_kv("DESKPOOL_WEB_TIMEOUT_MS", "%d", LOGIN_MS);
    r = tsweb_run("login", env, LOGIN_MS + GRACE_MS);
    /* an OTP is typed in the open, as PAM asked (echo on) */
    ck_assert_str_eq(str(r, "otpInputType"), "text");
    ck_assert_str_eq(str(r, "otpError"), "wrong user name or password");
    ck_assert_ptr_nonnull(strstr(str(r, "who"), "alice"));
    json_decref(r);
}
END_TEST

START_TEST(non_admin_is_kept_out)
{
    const char *env[] = {tsweb_kv("DESKPOOL_URL", "%s", broker.url),
                         "DESKPOOL_USER=bob", "DESKPOOL_PASSWORD=bob-pw",
                         tsweb_kv("DESKPOOL_WEB_TIMEOUT_MS", "%d", LOGIN_MS),
                         NULL};
    json_t *r = tsweb_run("nonadmin", env, LOGIN_MS + GRACE_MS), *v;
    const char *key;

    ck_assert_int_eq(num(r, "adminLinks"), 0);
    ck_assert_uint_eq(json_object_size(json_object_get(r, "pages")), 3);
    json_object_foreach(json_object_get(r, "pages"), key, v)
    {
        ck_assert_msg(!strcmp(str(v, "alert"), "You are not an administrator."),
                      "admin.html%s: alert \"%s\"", key, str(v, "alert"));
        ck_assert_msg(num(v, "poolRows") == 0 && num(v, "desktopRows") == 0 &&
                          num(v, "poolForm") == 0,
                      "admin.html%s shows admin data to bob", key);
    }
    json_object_foreach(json_object_get(r, "status"), key, v)
    {
        long want = strstr(key, "/admin/") ? 403 : 200;

        ck_assert_msg(json_integer_value(v) == want, "%s: %lld, not %ld", key,
                      (long long)json_integer_value(v), want);
    }
    json_decref(r);
}
END_TEST

/* --- a desktop in the browser ---------------------------------------------
 * The broker with deskpool-display, and one desktop (min 1, max 1: one
 * guest boot). */

static void setup_desktop(void)
{
    with_display = 1;
    start_broker(0);
    create_pool("desk", 1, 0, 1);
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "desk", 1, BOOT_MS), 1);
}

/* alice's desktop in pool desk (the one the viewer opened). */
static void alices_desktop(char *id, size_t size)
{
    json_t *r = NULL, *d;
    size_t i;

    id[0] = '\0';
    ck_assert_int_eq(tsbroker_call(&admin, "GET",
                                   "/api/v1/admin/desktops?pool=desk", NULL,
                                   &r),
                     200);
    json_array_foreach(json_object_get(r, "desktops"), i, d)
    {
        if (!strcmp(str(d, "user"), "alice"))
            snprintf(id, size, "%s", str(d, "id"));
    }
    json_decref(r);
    ck_assert_msg(id[0], "alice holds no desktop in pool desk");
}

static struct td_rect grow(struct td_rect r, int by)
{
    struct td_rect g = {r.x - by, r.y - by, r.w + 2 * by, r.h + 2 * by};

    return g;
}

/*
 * Compares the canvas the browser showed (a PPM the script wrote) with
 * the guest's screendump: within TOLERANCE, outside the clock (it ticks)
 * and the pointer marker wherever either shows it.
 */
static void same_screen(const char *canvas_ppm, struct tsppm *guest,
                        const char *what)
{
    struct tsppm *canvas = NULL;
    struct tsscreen c, g;
    struct td_rect mask[3];
    struct tsweb_cmp cmp;
    struct td_layout l;
    int n = 0, x, y;

    ck_assert_int_eq(tsppm_load(canvas_ppm, &canvas), 0);
    c = tsscreen_from_ppm(canvas);
    g = tsscreen_from_ppm(guest);
    ck_assert_int_eq(c.width, g.width);
    ck_assert_int_eq(c.height, g.height);
    td_layout_compute(&l, g.width, g.height);
    mask[n++] = grow(l.clock, BLOCK);
    if (tsscreen_find_pointer(&g, &x, &y) == 0)
        mask[n++] = grow(tsscreen_pointer_rect(x, y), BLOCK);
    if (tsweb_find_pointer(&c, TOLERANCE * 2, &x, &y) == 0)
        mask[n++] = grow(tsscreen_pointer_rect(x, y), BLOCK);
    tsweb_compare(&c, &g, TOLERANCE, mask, n, &cmp);
    fprintf(stderr,
            "%s: %d of %d pixels beyond %d (largest channel difference %d)\n",
            what, cmp.beyond, cmp.compared, TOLERANCE, cmp.max);
    if (cmp.beyond * 1000 > cmp.compared * BEYOND_PERMIL)
        tsscreen_keep(&g, "test_web", "guest");
    ck_assert_msg(cmp.beyond * 1000 <= cmp.compared * BEYOND_PERMIL,
                  "%s: %d of %d pixels differ from the guest's screen by more "
                  "than %d, first at (%d,%d): 0x%06x, guest 0x%06x (%s)",
                  what, cmp.beyond, cmp.compared, TOLERANCE, cmp.x, cmp.y,
                  (unsigned)cmp.a, (unsigned)cmp.b, canvas_ppm);
    tsppm_free(canvas);
}

/* Does the guest's screen (a new screendump in *shot) show text in its
 * text box's first row, and a blank cell after it? 0, or why not. */
static int guest_text_differs(struct hv_host *h, const char *id,
                              const char *text, struct tsppm **shot, char *why,
                              size_t size)
{
    struct tsscreen s;

    ck_assert_int_eq(tsguest_screen(h, id, shot), 0);
    s = tsscreen_from_ppm(*shot);
    return tsscreen_textbox_why(&s, text, why, size);
}

/* Waits until the guest's text box shows text (and a blank cell after
 * it); *shot is the screen that did. what names the screen kept on
 * failure. */
static void guest_shows_text(struct hv_host *h, const char *id,
                             const char *text, const char *what,
                             struct tsppm **shot)
{
    long long deadline = tsguest_now_ms() + 60000;
    char why[256] = "";

    while (guest_text_differs(h, id, text, shot, why, sizeof(why))) {
        if (tsguest_now_ms() > deadline) {
            tsguest_keep_screen(h, id, "test_web", what);
            ck_abort_msg("%s", why);
        }
        tsguest_sleep_ms(500);
    }
}

/* A VNC client logs in once with what the "VNC details" dialog showed. */
static void vnc_details_work(const json_t *vnc)
{
    const char *password = str(vnc, "password");
    int port = (int)num(vnc, "port"), w = 0, h = 0;
    struct tsvnc *c = NULL;

    ck_assert_str_ne(str(vnc, "host"), "");
    ck_assert_int_gt(port, 0);
    ck_assert_uint_eq(strlen(password), 8);
    ck_assert_msg(tsvnc_connect_tcp(&c, "127.0.0.1", port, password, NULL) == 0,
                  "VNC with the dialog's password: %s",
                  tsvnc_last_connect_error());
    tsvnc_pixels(c, &w, &h);
    ck_assert_int_eq(w, TSGUEST_WIDTH);
    ck_assert_int_eq(h, TSGUEST_HEIGHT);
    tsvnc_close(c);
    /* one time */
    ck_assert_int_ne(tsvnc_connect_tcp(&c, "127.0.0.1", port, password, NULL),
                     0);
}

/* The viewer's data-state went connected, reconnecting (the network
 * went), connected again (it came back), by itself. */
static void went_and_came_back(const json_t *states)
{
    const char *want[] = {"connected", "reconnecting", "connected"};
    size_t i, n = 0, count = json_array_size(states);
    const char *last = "";
    char *seen = json_dumps(states, JSON_COMPACT);
    json_t *st;

    json_array_foreach(states, i, st)
    {
        last = json_string_value(st) ?: "";
        if (n < 3 && !strcmp(last, want[n]))
            n++;
    }
    ck_assert_msg(count > 0 && n == 3 && !strcmp(last, "connected"),
                  "the viewer's states: %s", seen ? seen : "?");
    free(seen);
}

static void artifact_path(char *buf, size_t size, const char *name)
{
    const char *dir = getenv("DESKPOOL_ARTIFACTS");
    char web[PATH_MAX];

    ck_assert_msg(dir && *dir, "DESKPOOL_ARTIFACTS is not set");
    ck_assert(snprintf(web, sizeof(web), "%s/web", dir) < (int)sizeof(web));
    mkdir(dir, 0755);
    mkdir(web, 0755);
    ck_assert(snprintf(buf, size, "%s/%s", web, name) < (int)size);
    unlink(buf); /* the script's new one, never an old run's */
}

/* Waits until the guest's message banner shows text, or, with text NULL,
 * until no banner shows. */
/* Waits until the guest shows its lock screen's text (what testdesk
 * shows after Ctrl+Alt+Del). */
static void guest_shows_lock(struct hv_host *h, const char *id)
{
    long long deadline = tsguest_now_ms() + 60000;
    struct tsppm *shot = NULL;
    struct td_layout l;
    char why[256];

    td_layout_compute(&l, TSGUEST_WIDTH, TSGUEST_HEIGHT);
    for (;;) {
        struct tsscreen_diff d;
        struct tsscreen s;

        ck_assert_int_eq(tsguest_screen(h, id, &shot), 0);
        s = tsscreen_from_ppm(shot);
        tsscreen_diff_init(&d, &s);
        tsscreen_diff_text(&d, &s, l.lock_text.x, l.lock_text.y, TD_LOCK_TEXT,
                           TD_COLOR_LOCK_TEXT, TD_COLOR_LOCK);
        if (!tsscreen_diff_why(&d, "the guest's lock screen", why, sizeof(why)))
            break;
        if (tsguest_now_ms() > deadline) {
            tsguest_keep_screen(h, id, "test_web", "locked");
            ck_abort_msg("%s", why);
        }
        tsguest_sleep_ms(500);
    }
    tsppm_free(shot);
}

static void guest_shows_banner(struct hv_host *h, const char *id,
                               const char *text)
{
    long long deadline = tsguest_now_ms() + 60000;
    struct tsppm *shot = NULL;
    struct td_layout l;
    char why[256];

    td_layout_compute(&l, TSGUEST_WIDTH, TSGUEST_HEIGHT);
    for (;;) {
        struct tsscreen_diff d;
        struct tsscreen s;
        int n;

        ck_assert_int_eq(tsguest_screen(h, id, &shot), 0);
        s = tsscreen_from_ppm(shot);
        if (text) {
            tsscreen_diff_init(&d, &s);
            tsscreen_diff_text(&d, &s, l.banner.x + TD_TEXT_PAD,
                               l.banner.y + TD_TEXT_PAD, text,
                               TD_COLOR_BANNER_TEXT, TD_COLOR_BANNER);
            n = tsscreen_diff_why(&d, "the guest's banner", why, sizeof(why));
        } else {
            n = tsscreen_count_color(&s, TD_COLOR_BANNER, &l.banner, 1);
            snprintf(why, sizeof(why),
                     "the guest still shows a banner (%d pixels of its "
                     "colour)",
                     n);
        }
        if (n == 0)
            break;
        if (tsguest_now_ms() > deadline) {
            tsguest_keep_screen(h, id, "test_web",
                                text ? "banner" : "banner-gone");
            tsppm_free(shot);
            ck_abort_msg("%s", why);
        }
        tsguest_sleep_ms(500);
    }
    tsppm_free(shot);
}

/* The guest's text box goes on reading text for QUIET_MS: keys that were
 * typed where they must not reach the guest (a helpdesk's view) did
 * not. */
static void guest_keeps_text(struct hv_host *h, const char *id,
                             const char *text)
{
    long long end = tsguest_now_ms() + QUIET_MS;
    struct tsppm *shot = NULL;
    char why[256];

    do {
        if (guest_text_differs(h, id, text, &shot, why, sizeof(why))) {
            tsguest_keep_screen(h, id, "test_web", "helpdesk-typed");
            tsppm_free(shot);
            ck_abort_msg("the helpdesk's keys reached the desktop: %s", why);
        }
        tsguest_sleep_ms(250);
    } while (tsguest_now_ms() < end);
    tsppm_free(shot);
}

/* A ticket brought to deskpool-display: its redeem request on the
 * broker's local API, as the display makes it. The reply. */
static json_t *redeem(const char *ticket, const char *protocol)
{
    json_t *req = json_pack("{si ss s{ss ss}}", "id", 1, "op", "redeem", "args",
                            "ticket", ticket, "protocol", protocol);
    char sock[PATH_MAX], *line = json_dumps(req, JSON_COMPACT);
    json_t *r;
    int fd;

    ck_assert_ptr_nonnull(line);
    snprintf(sock, sizeof(sock), "%s/broker.sock", broker.dir);
    fd = tsdisplay_unix_connect(sock, 5000);
    ck_assert_int_ge(fd, 0);
    r = tsdisplay_request(fd, line);
    close(fd);
    free(line);
    json_decref(req);
    return r;
}

/*
 * The .rdp file the portal downloaded (path; the browser named it name):
 * it sends an RDP client to the host with a one-time ticket as the user
 * name (see bk_api_rdp_file). The ticket is live: the broker redeems it
 * for alice's desktop, as when deskpool-display gets it from the client,
 * once.
 */
static void rdp_file_works(const char *path, const char *name, const char *id)
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz0123456789-_";
    static const char user_line[] = "\r\nusername:s:ticket:";
    char text[2048], ticket[DP_TOKEN_LEN + 1];
    const char *host, *t;
    size_t n, len;
    FILE *f = fopen(path, "rb");
    json_t *r;

    ck_assert_msg(f != NULL, "no .rdp file at %s", path);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    len = strlen(name);
    ck_assert_msg(len > 4 && !strcmp(name + len - 4, ".rdp"),
                  "the download is called \"%s\"", name);
    /* first the host, on RDP's port */
    ck_assert_msg(!strncmp(text, "full address:s:", 15),
                  "the .rdp file begins \"%.40s\"", text);
    host = text + 15;
    len = strcspn(host, "\r\n");
    ck_assert_msg(len > 5 && !strncmp(host + len - 5, ":3389\r\n", 7),
                  "full address:s:%.*s", (int)len, host);
    /* the ticket as the user name */
    t = strstr(text, user_line);
    ck_assert_msg(t != NULL, "no username:s:ticket: line in %s", path);
    t += strlen(user_line);
    len = strcspn(t, "\r\n");
    ck_assert_msg(len == DP_TOKEN_LEN && strspn(t, b64url) == len &&
                      !strncmp(t + len, "\r\n", 2),
                  "the ticket in the .rdp file: \"%.*s\"", (int)len, t);
    memcpy(ticket, t, len);
    ticket[len] = '\0';

    r = redeem(ticket, "rdp");
    ck_assert_msg(json_is_true(json_object_get(r, "ok")),
                  "the .rdp file's ticket: %s", str(r, "message"));
    ck_assert_str_eq(str(json_object_get(r, "result"), "user"), "alice");
    ck_assert_str_eq(str(json_object_get(r, "result"), "desktop"), id);
    json_decref(r);
    r = redeem(ticket, "rdp");
    ck_assert_msg(!json_is_true(json_object_get(r, "ok")),
                  "the .rdp file's ticket works twice");
    ck_assert_str_eq(str(r, "error"), "used");
    ck_assert_msg(strstr(str(r, "message"), "already used"), "%s",
                  str(r, "message"));
    json_decref(r);
}

/* How many audit events of kind the user made on desktop id (with
 * phase: those whose detail says that phase). */
static int audit_events(const char *kind, const char *user, const char *id,
                        const char *phase)
{
    json_t *r = NULL, *e;
    size_t i;
    int n = 0;

    ck_assert_int_eq(tsbroker_call(&admin, "GET",
                                   "/api/v1/admin/events?pool=desk&limit=1000",
                                   NULL, &r),
                     200);
    json_array_foreach(json_object_get(r, "events"), i, e)
    {
        if (!strcmp(str(e, "kind"), kind) && !strcmp(str(e, "user"), user) &&
            !strcmp(str(e, "desktop"), id) &&
            (!phase ||
             !strcmp(str(json_object_get(e, "detail"), "phase"), phase)))
            n++;
    }
    json_decref(r);
    return n;
}

/* What the view-only viewer (the helpdesk's tab) showed. */
static void view_was_read_only(const json_t *view, const char *id)
{
    const char *hidden[] = {"Ctrl-Alt-Del", "Clipboard", "Log off"};
    const char *shown[] = {"Scale to window", "Fullscreen", "Disconnect"};
    const json_t *buttons = json_object_get(view, "buttons");
    char want[160];

    ck_assert_str_eq(str(view, "path"), "/desktop.html");
    /* the one-time ticket is gone from the address bar */
    snprintf(want, sizeof(want), "#view=1&desktop=%s", id);
    ck_assert_str_eq(str(view, "hash"), want);
    ck_assert_str_eq(str(view, "badge"), "View only");
    for (size_t i = 0; i < 3; i++) {
        ck_assert_msg(json_integer_value(json_object_get(buttons, hidden[i])) ==
                          0,
                      "the helpdesk view shows \"%s\"", hidden[i]);
        ck_assert_msg(json_integer_value(json_object_get(buttons, shown[i])) ==
                          1,
                      "the helpdesk view has no \"%s\"", shown[i]);
    }
}

/* "Scale to window" fitted the 1024x768 desktop into the 1280x720 page,
 * and said it was on. */
static void scale_fitted(const json_t *scale)
{
    const json_t *scaled = json_object_get(scale, "scaled"),
                 *win = json_object_get(scale, "window");

    ck_assert_str_eq(str(scale, "pressed"), "true");
    ck_assert_int_le(num(scaled, "h"), num(win, "h"));
    ck_assert_int_lt(num(scaled, "w"), TSGUEST_WIDTH);
    ck_assert_int_gt(num(scaled, "w"), 0);
}

/*
 * The rest of alice's day with desktop id in the browser
 * (tests/web/session.mjs), and what the guest and the broker show at
 * each of the script's steps.
 */
static void session_goes_on(const char *id)
{
    char rdp[PATH_MAX];
    struct hv_host *h = NULL;
    struct tsppm *shot = NULL;
    struct td_layout l;
    const char *env[40];
    struct tsweb *w;
    json_t *r, *info, *logoff;
    int n = 0;

    artifact_path(rdp, sizeof(rdp), "session-desktop.rdp");
    td_layout_compute(&l, TSGUEST_WIDTH, TSGUEST_HEIGHT);
    env[n++] = tsweb_kv("DESKPOOL_URL", "%s", broker.url);
    env[n++] = "DESKPOOL_USER=alice";
    env[n++] = "DESKPOOL_PASSWORD=alice-pw";
    env[n++] = "DESKPOOL_ADMIN_USER=admin";
    env[n++] = "DESKPOOL_ADMIN_PASSWORD=admin-pw";
    env[n++] = "DESKPOOL_POOL=desk";
    env[n++] = tsweb_kv("DESKPOOL_DESKTOP", "%s", id);
    env[n++] = "DESKPOOL_TEXT=" TEXT;
    env[n++] = "DESKPOOL_PASTE=" PASTE;
    env[n++] = tsweb_kv("DESKPOOL_RDP_FILE", "%s", rdp);
    tsweb_desk_env(env, &n, &l);
    /* the banner's right end: its colour, no text */
    env[n++] =
        tsweb_kv("DESKPOOL_BANNER", "%d,%d,%06x", l.banner.x + l.banner.w - 8,
                 l.banner.y + l.banner.h / 2, TD_COLOR_BANNER);
    env[n++] = tsweb_kv("DESKPOOL_LOCKED", "%06x", TD_COLOR_LOCK);
    env[n++] = tsweb_kv("DESKPOOL_WEB_TIMEOUT_MS", "%d", SESSION_MS);
    env[n] = NULL;
    ck_assert_int_eq(tsguest_host_open(&h, broker.vm), 0);
    w = tsweb_start("session", env);

    info = tsweb_step(w, "rdp", SESSION_MS);
    rdp_file_works(rdp, str(info, "name"), id);
    json_decref(info);
    tsweb_step_done(w, "rdp", NULL);

    /* the clipboard panel's text, pasted in the guest */
    json_decref(tsweb_step(w, "pasted", SESSION_MS));
    guest_shows_text(h, id, TEXT " " PASTE, "pasted", &shot);
    tsweb_step_done(w, "pasted", NULL);

    /* a helpdesk watches: alice is told, the view's keys go nowhere, her
     * session stays hers */
    json_decref(tsweb_step(w, "viewing", SESSION_MS));
    guest_shows_banner(h, id, BANNER);
    guest_keeps_text(h, id, TEXT " " PASTE);
    tsbroker_wait_state(&admin, id, "CONNECTED", "alice", 10000);
    ck_assert_int_eq(audit_events("helpdesk_view", "admin", id, "start"), 1);
    tsweb_step_done(w, "viewing", NULL);
    /* the view's tab closed: the banner goes */
    json_decref(tsweb_step(w, "view-closed", SESSION_MS));
    guest_shows_banner(h, id, NULL);
    ck_assert_int_eq(audit_events("helpdesk_view", "admin", id, "end"), 1);
    tsweb_step_done(w, "view-closed", NULL);

    /* the toolbar's Ctrl-Alt-Del reached the guest as one */
    json_decref(tsweb_step(w, "locked", SESSION_MS));
    guest_shows_lock(h, id);
    tsweb_step_done(w, "locked", NULL);

    r = tsweb_finish(w, SESSION_MS + GRACE_MS);
    ck_assert_str_eq(str(r, "clipboardBack"), PASTE);
    view_was_read_only(json_object_get(r, "view"), id);
    ck_assert_str_eq(str(r, "userStateDuringView"), "connected");
    scale_fitted(json_object_get(r, "scale"));
    logoff = json_object_get(r, "logoff");
    ck_assert_str_eq(str(logoff, "dialog"), "Log off?");
    ck_assert_str_eq(str(logoff, "state"), "disconnected");
    {
        char *said = json_dumps(json_object_get(logoff, "said"), JSON_COMPACT);

        ck_assert_msg(!strcmp(str(logoff, "text"), "You are logged off."),
                      "after \"Log off\" the viewer says \"%s\" (it said %s)",
                      str(logoff, "text"), said ? said : "?");
        free(said);
    }
    json_decref(r);

    /* logged off: the floating desktop is refreshed and nobody's */
    tsbroker_wait_state(&admin, id, "READY", "", BOOT_MS);
    ck_assert_int_eq(audit_events("logoff", "alice", id, NULL), 1);
    tsppm_free(shot);
    hv_host_close(h);
}

START_TEST(browser_desktop_shows_the_guest_and_types)
{
    char canvas1[PATH_MAX], canvas2[PATH_MAX], ack[PATH_MAX], id[80];
    struct hv_host *h = NULL;
    struct tsppm *shot = NULL;
    struct tsscreen s;
    struct td_layout l;
    const char *env[24];
    struct tsweb *w;
    json_t *r, *v;
    const char *key;
    int n = 0, x, y, rc;

    artifact_path(canvas1, sizeof(canvas1), "desktop-canvas.ppm");
    artifact_path(canvas2, sizeof(canvas2), "desktop-canvas-typed.ppm");
    tsweb_path(ack, sizeof(ack), "canvas-compared");
    td_layout_compute(&l, TSGUEST_WIDTH, TSGUEST_HEIGHT);
    td_layout_text_cell(&l, 0, 0, &x, &y); /* read back below */
    env[n++] = tsweb_kv("DESKPOOL_URL", "%s", broker.url);
    env[n++] = "DESKPOOL_USER=alice";
    env[n++] = "DESKPOOL_PASSWORD=alice-pw";
    env[n++] = "DESKPOOL_POOL=desk";
    env[n++] = tsweb_kv("DESKPOOL_CANVAS1", "%s", canvas1);
    env[n++] = tsweb_kv("DESKPOOL_CANVAS2", "%s", canvas2);
    env[n++] = tsweb_kv("DESKPOOL_CANVAS_ACK", "%s", ack);
    env[n++] = tsweb_kv("DESKPOOL_CLOCK", "%d,%d,%d,%d", l.clock.x, l.clock.y,
                        l.clock.w, l.clock.h);
    tsweb_desk_env(env, &n, &l);
    env[n++] = "DESKPOOL_TEXT=" TEXT;
    env[n++] = tsweb_kv("DESKPOOL_WEB_TIMEOUT_MS", "%d", DESKTOP_MS);
    env[n] = NULL;

    w = tsweb_start("desktop", env);
    rc = tsweb_wait_file(w, canvas1, DESKTOP_MS);
    if (rc) {
        tsweb_finish(w, GRACE_MS); /* fails with the script's reason */
        ck_abort_msg("no canvas from the browser: %s", strerror(-rc));
    }
    /* the viewer's session is the desktop's connection */
    alices_desktop(id, sizeof(id));
    tsbroker_wait_state(&admin, id, "CONNECTED", "alice", 30000);
    ck_assert_int_eq(tsguest_host_open(&h, broker.vm), 0);
    ck_assert_int_eq(tsguest_screen(h, id, &shot), 0);
    same_screen(canvas1, shot, "the desktop in the browser");
    fclose(fopen(ack, "w"));

    r = tsweb_finish(w, DESKTOP_MS + GRACE_MS);
    /* what was typed in the page reached the guest... */
    guest_shows_text(h, id, TEXT, "typed", &shot);
    /* ...and came back to the browser */
    same_screen(canvas2, shot, "the typed text in the browser");
    {
        struct tsppm *typed = NULL;
        int errors;

        ck_assert_int_eq(tsppm_load(canvas2, &typed), 0);
        s = tsscreen_from_ppm(typed);
        errors = tsweb_text_errors(&s, x, y, TEXT " ", TD_COLOR_TEXT,
                                   TD_COLOR_TEXTBOX);
        tsppm_free(typed);
        ck_assert_msg(errors == 0,
                      "the canvas's text box does not read \"" TEXT
                      "\": %d pixels wrong",
                      errors);
    }
    tsppm_free(shot);
    hv_host_close(h);

    ck_assert_str_eq(str(r, "state"), "connected");
    ck_assert_int_eq(num(r, "width"), TSGUEST_WIDTH);
    ck_assert_int_eq(num(r, "height"), TSGUEST_HEIGHT);
    json_object_foreach(json_object_get(r, "toolbar"), key, v)
        ck_assert_msg(json_integer_value(v) == 1, "viewer button \"%s\": %lld",
                      key, (long long)json_integer_value(v));
    json_object_foreach(json_object_get(r, "cardButtons"), key, v)
        ck_assert_msg(json_integer_value(v) == 1, "card button \"%s\": %lld",
                      key, (long long)json_integer_value(v));
    went_and_came_back(json_object_get(r, "states"));
    ck_assert_str_eq(str(r, "cardBadge"), "connected");
    vnc_details_work(json_object_get(r, "vnc"));
    json_decref(r);

    session_goes_on(id);
}
END_TEST

/* --- the admin console ---------------------------------------------------- */

static void setup_admin(void)
{
    with_display = 0;
    start_broker(0);
}

START_TEST(admin_console_makes_a_pool)
{
    char *text = tsbroker_pool_json("console", 1, 1, 1, NULL), *bad;
    json_t *settings = json_loads(text, 0, NULL), *r = NULL, *pool = NULL;
    char message[256];
    const char *env[24], *key;
    json_t *v;
    int n = 0;

    /* what the broker says to Minimum above Maximum */
    bad = tsbroker_pool_json("console", 2, 1, 1, NULL);
    ck_assert_int_eq(
        tsbroker_call(&admin, "POST", "/api/v1/admin/pools", bad, &r), 400);
    snprintf(message, sizeof(message), "%s", str(r, "message"));
    ck_assert_str_ne(message, "");
    json_decref(r);
    free(bad);

    env[n++] = tsweb_kv("DESKPOOL_URL", "%s", broker.url);
    env[n++] = "DESKPOOL_USER=admin";
    env[n++] = "DESKPOOL_PASSWORD=admin-pw";
    env[n++] = "DESKPOOL_NEW_POOL=console";
    env[n++] = tsweb_kv("DESKPOOL_GOLDEN", "%s", str(settings, "golden"));
    env[n++] = tsweb_kv("DESKPOOL_KERNEL", "%s", str(settings, "kernel"));
    env[n++] = tsweb_kv("DESKPOOL_INITRD", "%s", str(settings, "initrd"));
    env[n++] = tsweb_kv("DESKPOOL_CMDLINE", "%s", str(settings, "cmdline"));
    env[n++] = tsweb_kv("DESKPOOL_MEMORY", "%ld", num(settings, "memory_mb"));
    env[n++] = tsweb_kv("DESKPOOL_ACCEL", "%s", str(settings, "accel"));
    env[n++] = "DESKPOOL_GROUPS=staff";
    env[n++] = tsweb_kv("DESKPOOL_READY_MS", "%d", BOOT_MS);
    env[n++] = tsweb_kv("DESKPOOL_WEB_TIMEOUT_MS", "%d", ADMIN_MS);
    env[n] = NULL;
    r = tsweb_run("admin", env, ADMIN_MS + GRACE_MS);

    /* the form showed the broker's refusal */
    ck_assert_msg(strstr(str(r, "formError"), message),
                  "the form says \"%s\", the broker \"%s\"",
                  str(r, "formError"), message);
    /* every page has its heading */
    json_object_foreach(json_object_get(r, "headings"), key, v)
        ck_assert_msg(json_string_length(v) > 0, "%s page: no <h1>", key);
    ck_assert_uint_eq(json_object_size(json_object_get(r, "headings")), 5);
    ck_assert_msg(json_is_true(json_object_get(r, "eventsMentionPool")),
                  "the Events page does not show the new pool");

    /* the pool is what the form said */
    ck_assert_int_eq(tsbroker_call(&admin, "GET", "/api/v1/admin/pools/console",
                                   NULL, &pool),
                     200);
    {
        json_t *p = json_object_get(pool, "settings") ?: pool;

        ck_assert_int_eq(num(p, "min"), 1);
        ck_assert_int_eq(num(p, "max"), 1);
        ck_assert_str_eq(str(p, "golden"), str(settings, "golden"));
        ck_assert_str_eq(str(p, "cmdline"), str(settings, "cmdline"));
        ck_assert(tsbroker_json_has(json_object_get(p, "groups"), "staff"));
    }
    json_decref(pool);
    /* the desktop the page showed ready is the pool's, and ready */
    ck_assert_str_ne(str(r, "desktop"), "");
    tsbroker_wait_state(&admin, str(r, "desktop"), "READY", NULL, 10000);
    json_decref(r);
    json_decref(settings);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("web");
    TCase *login = tcase_create("login");
    TCase *otp = tcase_create("otp");
    TCase *desktop = tcase_create("desktop");
    TCase *console = tcase_create("admin");

    tcase_add_checked_fixture(login, setup_login, teardown);
    tcase_set_timeout(login, (LOGIN_MS + GRACE_MS) / 1000 + 30);
    tcase_add_test(login, login_wrong_then_right_password);
    tcase_add_test(login, non_admin_is_kept_out);
    suite_add_tcase(s, login);

    tcase_add_checked_fixture(otp, setup_otp, teardown);
    tcase_set_timeout(otp, (LOGIN_MS + GRACE_MS) / 1000 + 30);
    tcase_add_test(otp, login_asks_for_the_otp);
    suite_add_tcase(s, otp);

    tcase_add_checked_fixture(desktop, setup_desktop, teardown);
    /* two boots: the desktop's, and its refresh after the logoff */
    tcase_set_timeout(
        desktop,
        (2 * BOOT_MS + 2 * DESKTOP_MS + SESSION_MS + 3 * GRACE_MS) / 1000 + 60);
    tcase_add_test(desktop, browser_desktop_shows_the_guest_and_types);
    suite_add_tcase(s, desktop);

    tcase_add_checked_fixture(console, setup_admin, teardown);
    tcase_set_timeout(console, (ADMIN_MS + GRACE_MS) / 1000 + 60);
    tcase_add_test(console, admin_console_makes_a_pool);
    suite_add_tcase(s, console);
    tsweb_clear_artifacts();
    return tsguest_run_suite(s);
}
