/*
 * test_broker_display.c - the broker and deskpool-display together, with
 * a real test-image desktop: a browser launch's one-time ticket opens the
 * gateway once (and only for its protocol, and only in time), a VNC launch
 * gives a password a VNC client logs in with, the desktop's state follows
 * the display's sessions, and RDP-style logins (user name and password
 * through the local API) get the user's desktop, with wrong passwords
 * refused and rate limited. The admin's console sees the client's
 * address, the dashboard's history counts the session, and a helpdesk
 * views a desktop without touching it while its user is told so.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "td_font.h"
#include "td_layout.h"
#include "tsbroker.h"
#include "tsdisplay.h"
#include "tsguest.h"
#include "tsscreen.h"
#include "tsvnc.h"
#include "tsws.h"

#define BOOT_MS 120000
#define SEE_MS  20000 /* for something to show on a client's screen */
#define BANNER  "Your screen is being viewed by helpdesk (admin)"

static struct tsbroker broker;
static struct tsdisplay dmn;
static struct tsbroker_session admin, alice;
static char local_sock[256];

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

static json_t *launch(struct tsbroker_session *s, const char *protocol)
{
    char body[64];
    json_t *r = NULL;
    int status;

    snprintf(body, sizeof(body), "{\"protocol\":\"%s\"}", protocol);
    status = tsbroker_call(s, "POST", "/api/v1/pools/desk/launch", body, &r);
    ck_assert_msg(status == 200, "launch: %d %s", status, str(r, "message"));
    return r;
}

static char *refusal(const char *ticket)
{
    char preamble[128], *reason = NULL;
    int fd;

    snprintf(preamble, sizeof(preamble), "TICKET %s\n", ticket);
    fd = tsdisplay_gateway(&dmn, preamble, &reason);
    if (fd >= 0)
        close(fd);
    return reason;
}

static void wait_state(const char *id, const char *state)
{
    tsbroker_wait_state(&admin, id, state, NULL, 60000);
}

/* One request on the broker's local API (as deskpool-display makes). */
static json_t *local(const char *line)
{
    int fd = tsdisplay_unix_connect(local_sock, 5000);
    json_t *r;

    ck_assert_int_ge(fd, 0);
    r = tsdisplay_request(fd, line);
    close(fd);
    return r;
}

static void setup(void)
{
    char *pool;

    tsbroker_init(&broker, 0);
    tsbroker_set(&broker, "ticket_ttl", "5");
    tsbroker_set(&broker, "stats_interval", "1"); /* the dashboard's */
    snprintf(local_sock, sizeof(local_sock), "%s/broker.sock", broker.dir);
    tsdisplay_start_for(&dmn, &broker, 0);
    tsbroker_start(&broker);
    tsbroker_connect(&broker, &admin);
    tsbroker_connect(&broker, &alice);
    ck_assert_int_eq(
        tsbroker_login(&broker, &admin, "admin", "admin-pw", NULL, 1), 200);
    ck_assert_int_eq(
        tsbroker_login(&broker, &alice, "alice", "alice-pw", NULL, 0), 200);
    pool = tsbroker_pool_json("desk", 1, 1, 2, NULL);
    ck_assert_int_eq(
        tsbroker_call(&admin, "POST", "/api/v1/admin/pools", pool, NULL), 201);
    free(pool);
    ck_assert_int_ge(tsbroker_wait_ready(&admin, "desk", 1, BOOT_MS), 1);
}

static void teardown(void)
{
    tsbroker_disconnect(&admin);
    tsbroker_disconnect(&alice);
    tsdisplay_stop(&dmn);
    tsbroker_stop(&broker);
    tsbroker_remove_vms(&broker);
}

/* --- what a client shows ------------------------------------------------ */

static struct tsscreen client_view(struct tsvnc *c)
{
    int w, h;
    const uint32_t *px = tsvnc_pixels(c, &w, &h);

    return tsscreen_view(px, w, h, w * 4);
}

/* Does the text box's first row hold exactly text? */
static int shows_text(struct tsvnc *c, const char *text)
{
    struct tsscreen s = client_view(c);

    return tsscreen_textbox_why(&s, text, NULL, 0) == 0;
}

/* Does the message banner show text (NULL: is there no banner)? */
static int shows_banner(struct tsvnc *c, const char *text)
{
    struct tsscreen s = client_view(c);
    struct tsscreen_diff d;
    struct td_layout l;

    td_layout_compute(&l, s.width, s.height);
    if (!text)
        return tsscreen_count_color(&s, TD_COLOR_BANNER, &l.banner, 1) == 0;
    tsscreen_diff_init(&d, &s);
    tsscreen_diff_text(&d, &s, l.banner.x + TD_TEXT_PAD,
                       l.banner.y + TD_TEXT_PAD, text, TD_COLOR_BANNER_TEXT,
                       TD_COLOR_BANNER);
    return d.count == 0;
}

static void wait_screen(struct tsvnc *c,
                        int (*shows)(struct tsvnc *, const char *),
                        const char *text, const char *what)
{
    long long until = tsguest_now_ms() + SEE_MS;

    while (!shows(c, text) && tsguest_now_ms() < until)
        ck_assert_int_ge(tsvnc_pump(c, 100), 0);
    if (!shows(c, text)) {
        struct tsscreen s = client_view(c);

        tsscreen_keep(&s, "broker_display", what);
        ck_abort_msg("the client never showed %s \"%s\"", what,
                     text ? text : "(none)");
    }
}

/* The session of desktop id in GET /api/v1/admin/sessions (a new
 * reference), or NULL. */
static json_t *admin_session(const char *id)
{
    json_t *r = NULL, *s, *found = NULL;
    size_t i;

    ck_assert_int_eq(
        tsbroker_call(&admin, "GET", "/api/v1/admin/sessions", NULL, &r), 200);
    json_array_foreach(json_object_get(r, "sessions"), i, s)
    {
        if (!strcmp(str(s, "desktop"), id))
            found = json_incref(s);
    }
    json_decref(r);
    return found;
}

static json_t *admin_desktop(const char *id)
{
    char path[160];
    json_t *r = NULL;

    snprintf(path, sizeof(path), "/api/v1/admin/desktops/%s", id);
    ck_assert_int_eq(tsbroker_call(&admin, "GET", path, NULL, &r), 200);
    return r;
}

/* Where the admin console sees who is connected from where. */
static void client_address_is_shown(const char *id, const char *client)
{
    char path[160];
    json_t *s = admin_session(id), *d = admin_desktop(id);

    ck_assert_msg(s != NULL, "%s is not among the sessions", id);
    ck_assert_str_eq(str(s, "user"), "alice");
    ck_assert_str_eq(str(s, "client"), client);
    ck_assert_int_gt(json_integer_value(json_object_get(s, "since")), 0);
    ck_assert_str_eq(str(d, "client"), client);
    json_decref(s);
    json_decref(d);
    /* the user sees it on her own desktop too */
    d = NULL;
    snprintf(path, sizeof(path), "/api/v1/desktops/%s", id);
    ck_assert_int_eq(tsbroker_call(&alice, "GET", path, NULL, &d), 200);
    ck_assert_str_eq(str(d, "client"), client);
    json_decref(d);
}

static json_int_t num(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* The dashboard's history: it began empty, with the broker, and comes to
 * count one session (samples every second here); the pool now. */
static void dashboard_counts_the_session(void)
{
    long long until = tsguest_now_ms() + 20000;
    json_t *r = NULL, *s = NULL, *p;
    json_int_t last = 0;
    char path[96];
    size_t i;

    for (;;) {
        json_decref(r);
        r = NULL;
        ck_assert_int_eq(
            tsbroker_call(&admin, "GET", "/api/v1/admin/stats", NULL, &r), 200);
        s = json_array_get(json_object_get(r, "samples"),
                           json_array_size(json_object_get(r, "samples")) - 1);
        if ((num(s, "sessions") == 1 && num(s, "in_use") == 1) ||
            tsguest_now_ms() > until)
            break;
        tsguest_sleep_ms(250);
    }
    ck_assert_int_eq(num(r, "interval"), 1);
    ck_assert_msg(num(s, "sessions") == 1 && num(s, "in_use") == 1,
                  "no sample counts the session: sessions %d, in use %d",
                  (int)num(s, "sessions"), (int)num(s, "in_use"));
    ck_assert_int_le(num(s, "t"), num(r, "now"));
    json_array_foreach(json_object_get(r, "samples"), i, s)
    {
        ck_assert_int_gt(num(s, "t"), last); /* oldest first */
        last = num(s, "t");
    }
    s = json_array_get(json_object_get(r, "samples"), 0);
    ck_assert_int_eq(num(s, "ready") + num(s, "in_use") + num(s, "sessions"),
                     0);
    p = json_array_get(json_object_get(r, "pools"), 0);
    ck_assert_str_eq(str(p, "name"), "desk");
    ck_assert_int_eq(num(p, "max"), 2);
    ck_assert_int_eq(num(p, "in_use"), 1);
    ck_assert_int_ge(num(p, "desktops"), 1);
    json_decref(r);
    /* since: only what came after */
    snprintf(path, sizeof(path), "/api/v1/admin/stats?since=%lld",
             (long long)last);
    r = NULL;
    ck_assert_int_eq(tsbroker_call(&admin, "GET", path, NULL, &r), 200);
    json_array_foreach(json_object_get(r, "samples"), i, s)
    {
        ck_assert_int_gt(num(s, "t"), last);
    }
    json_decref(r);
}

START_TEST(browser_ticket_opens_the_gateway_once)
{
    json_t *r = launch(&alice, "browser"), *rdp;
    char ticket[64], id[80], *why;
    struct tsvnc *vnc = NULL;
    int w = 0, h = 0;

    snprintf(ticket, sizeof(ticket), "%s", str(r, "ticket"));
    snprintf(id, sizeof(id), "%s", str(json_object_get(r, "desktop"), "id"));
    json_decref(r);
    /* the display redeems it with the broker and serves the desktop */
    ck_assert_msg(
        tsvnc_connect_gateway(&vnc, dmn.gw, ticket, "10.1.2.3", NULL) == 0,
        "gateway: %s", tsvnc_last_connect_error());
    tsvnc_pixels(vnc, &w, &h);
    ck_assert_int_eq(w, TSGUEST_WIDTH);
    ck_assert_int_eq(h, TSGUEST_HEIGHT);
    wait_state(id, "CONNECTED");
    /* the admin console: where the user is, and the dashboard's count */
    client_address_is_shown(id, "10.1.2.3");
    dashboard_counts_the_session();
    /* a replay is refused, and says why */
    why = refusal(ticket);
    ck_assert_ptr_nonnull(why);
    ck_assert_str_eq(why, "already used");
    free(why);
    tsvnc_close(vnc);
    wait_state(id, "DISCONNECTED");
    /* nobody is connected now */
    r = admin_session(id);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(str(r, "client"), "");
    json_decref(r);

    /* an RDP ticket is no browser ticket */
    rdp = launch(&alice, "rdp");
    why = refusal(str(rdp, "ticket"));
    ck_assert_ptr_nonnull(why);
    ck_assert_str_eq(why, "ticket issued for another protocol");
    free(why);
    json_decref(rdp);
    /* tickets die after ticket_ttl (5 s here) */
    r = launch(&alice, "browser");
    tsguest_sleep_ms(6000);
    why = refusal(str(r, "ticket"));
    ck_assert_ptr_nonnull(why);
    ck_assert_str_eq(why, "expired");
    free(why);
    json_decref(r);
    why = refusal("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    ck_assert_str_eq(why, "unknown ticket");
    free(why);
}
END_TEST

START_TEST(vnc_launch_gives_a_one_time_password)
{
    json_t *r = launch(&alice, "vnc");
    struct tsvnc *vnc = NULL;
    char password[16];
    int port = (int)json_integer_value(json_object_get(r, "port"));

    snprintf(password, sizeof(password), "%s", str(r, "password"));
    ck_assert_uint_eq(strlen(password), 8);
    ck_assert_int_gt(port, 0);
    json_decref(r);
    ck_assert_msg(tsvnc_connect_tcp(&vnc, "127.0.0.1", port, password, NULL) ==
                      0,
                  "vnc: %s", tsvnc_last_connect_error());
    tsvnc_close(vnc);
    /* single use */
    ck_assert_int_ne(tsvnc_connect_tcp(&vnc, "127.0.0.1", port, password, NULL),
                     0);
}
END_TEST

START_TEST(password_logins_through_the_local_api)
{
    json_t *r;
    char first[80];
    int i;

    r = local("{\"id\":1,\"op\":\"login\",\"args\":{\"user\":\"alice\","
              "\"password\":\"alice-pw\",\"protocol\":\"rdp\","
              "\"client\":\"10.0.0.9\"}}");
    ck_assert_msg(json_is_true(json_object_get(r, "ok")), "%s",
                  str(r, "message"));
    snprintf(first, sizeof(first), "%s",
             str(json_object_get(r, "result"), "desktop"));
    json_decref(r);
    wait_state(first, "ASSIGNED");
    /* the same user again: the same desktop */
    r = local("{\"id\":2,\"op\":\"login\",\"args\":{\"user\":\"alice\","
              "\"password\":\"alice-pw\",\"protocol\":\"rdp\"}}");
    ck_assert_str_eq(str(json_object_get(r, "result"), "desktop"), first);
    json_decref(r);
    /* wrong passwords: refused, then locked */
    for (i = 0; i < 5; i++) {
        r = local("{\"id\":3,\"op\":\"login\",\"args\":{\"user\":\"bob\","
                  "\"password\":\"guess\",\"protocol\":\"rdp\"}}");
        ck_assert(json_is_false(json_object_get(r, "ok")));
        ck_assert_str_eq(str(r, "error"), "denied");
        ck_assert_str_eq(str(r, "message"), "wrong user name or password");
        json_decref(r);
    }
    r = local("{\"id\":4,\"op\":\"login\",\"args\":{\"user\":\"bob\","
              "\"password\":\"bob-pw\",\"protocol\":\"rdp\"}}");
    ck_assert_str_eq(str(r, "error"), "locked");
    json_decref(r);
    /* the web login shares the lockout */
    ck_assert_int_eq(tsbroker_login(&broker, &admin, "bob", "bob-pw", NULL, 1),
                     429);
    /* carol has no pool */
    r = local("{\"id\":5,\"op\":\"login\",\"args\":{\"user\":\"carol\","
              "\"password\":\"carol-pw\",\"protocol\":\"rdp\"}}");
    ck_assert_str_eq(str(r, "error"), "no-pool");
    json_decref(r);
    /* junk gets an error and the connection stays useful */
    r = local("{\"id\":6,\"op\":\"redeem\",\"args\":{}}");
    ck_assert_str_eq(str(r, "error"), "bad-request");
    json_decref(r);
}
END_TEST

START_TEST(disconnect_timeout_frees_a_floating_desktop)
{
    json_t *r;
    struct tsvnc *vnc = NULL;
    char id[80];

    ck_assert_int_eq(tsbroker_call(&admin, "PATCH", "/api/v1/admin/pools/desk",
                                   "{\"disconnect_timeout\":2}", NULL),
                     200);
    r = launch(&alice, "browser");
    snprintf(id, sizeof(id), "%s", str(json_object_get(r, "desktop"), "id"));
    ck_assert_int_eq(
        tsvnc_connect_gateway(&vnc, dmn.gw, str(r, "ticket"), NULL, NULL), 0);
    json_decref(r);
    wait_state(id, "CONNECTED");
    tsvnc_close(vnc); /* the user's network went away */
    wait_state(id, "DISCONNECTED");
    /* 2 s later the session is logged off and the desktop refreshed */
    wait_state(id, "BOOTING");
    r = NULL;
    ck_assert_int_eq(tsbroker_call(&admin, "GET",
                                   "/api/v1/admin/events?pool=desk", NULL, &r),
                     200);
    ck_assert(tsbroker_json_has(r, "disconnect timeout"));
    json_decref(r);
}
END_TEST

/* Counts the events of the audit log (for user on desktop id) of kind. */
static int count_events(const char *user, const char *id, const char *kind)
{
    char path[200];
    json_t *r = NULL, *e;
    size_t i;
    int n = 0;

    snprintf(path, sizeof(path), "/api/v1/admin/events?user=%s&limit=200",
             user);
    ck_assert_int_eq(tsbroker_call(&admin, "GET", path, NULL, &r), 200);
    json_array_foreach(json_object_get(r, "events"), i, e) n +=
        !strcmp(str(e, "desktop"), id) && !strcmp(str(e, "kind"), kind);
    json_decref(r);
    return n;
}

/* The user logs off while her VNC client is still connected: the display
 * closes the session, and its end is in the audit log although the
 * desktop is no longer hers when the display reports it. */
START_TEST(a_session_ended_by_logoff_is_audited)
{
    json_t *r = launch(&alice, "browser");
    struct tsvnc *vnc = NULL;
    long long until = tsguest_now_ms() + 30000;
    char id[80], path[200];

    snprintf(id, sizeof(id), "%s", str(json_object_get(r, "desktop"), "id"));
    ck_assert_int_eq(
        tsvnc_connect_gateway(&vnc, dmn.gw, str(r, "ticket"), NULL, NULL), 0);
    json_decref(r);
    wait_state(id, "CONNECTED");
    snprintf(path, sizeof(path), "/api/v1/desktops/%s/logoff", id);
    ck_assert_int_eq(tsbroker_call(&alice, "POST", path, NULL, NULL), 200);
    while (count_events("alice", id, "disconnected") < 1) {
        ck_assert_msg(tsguest_now_ms() < until,
                      "no disconnected event after the logoff");
        tsguest_sleep_ms(250);
    }
    ck_assert_int_eq(count_events("alice", id, "connected"), 1);
    tsvnc_close(vnc);
}
END_TEST

START_TEST(idle_timeout_logs_off_an_idle_user)
{
    json_t *r;
    char id[80];

    ck_assert_int_eq(tsbroker_call(&admin, "PATCH", "/api/v1/admin/pools/desk",
                                   "{\"idle_timeout\":3}", NULL),
                     200);
    r = launch(&alice, "browser");
    snprintf(id, sizeof(id), "%s", str(json_object_get(r, "desktop"), "id"));
    json_decref(r);
    /* the agent's heartbeats report alice's session going idle; after 3 s
     * the broker logs her off and the floating desktop is refreshed */
    wait_state(id, "BOOTING");
    r = NULL;
    ck_assert_int_eq(tsbroker_call(&admin, "GET",
                                   "/api/v1/admin/events?pool=desk", NULL, &r),
                     200);
    ck_assert(tsbroker_json_has(r, "idle timeout"));
    json_decref(r);
}
END_TEST

/* The broker's thread count (from /proc): gateways must not add any. */
static int broker_threads(void)
{
    char path[64], line[256];
    int n = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)broker.pid);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

/* A websocket to /ws with alice's browser ticket and cookie. */
static int open_ws(struct tsws **w, const char *ticket, const char *cookie,
                   const char *subprotocol)
{
    char path[128], hdr[400];

    snprintf(path, sizeof(path), "/ws?ticket=%s", ticket);
    snprintf(hdr, sizeof(hdr), "%s%s%s", cookie ? "Cookie: " : "",
             cookie ? cookie : "", cookie ? "\r\n" : "");
    return tsws_open(w, broker.port, path, hdr, subprotocol);
}

/* RFB through the websocket up to the ServerInit: the desktop's size. */
static void rfb_through(struct tsws *w, int *width, int *height)
{
    unsigned char b[64], n;
    const unsigned char none = 1, shared = 1;
    size_t name;

    ck_assert_int_eq(tsws_read(w, b, 12, 20000), 0);
    ck_assert_int_eq(memcmp(b, "RFB 003.008\n", 12), 0);
    ck_assert_int_eq(tsws_send(w, "RFB 003.008\n", 12), 0);
    ck_assert_int_eq(tsws_read(w, &n, 1, 10000), 0);
    ck_assert_int_ge(n, 1); /* security types offered */
    ck_assert_int_eq(tsws_read(w, b, n, 10000), 0);
    ck_assert_ptr_nonnull(memchr(b, 1, n)); /* None: the ticket did it */
    ck_assert_int_eq(tsws_send(w, &none, 1), 0);
    ck_assert_int_eq(tsws_read(w, b, 4, 10000), 0);
    ck_assert_int_eq(b[0] | b[1] | b[2] | b[3], 0); /* SecurityResult ok */
    ck_assert_int_eq(tsws_send(w, &shared, 1), 0);
    ck_assert_int_eq(tsws_read(w, b, 24, 10000), 0); /* ServerInit */
    *width = b[0] << 8 | b[1];
    *height = b[2] << 8 | b[3];
    name =
        (size_t)b[20] << 24 | (size_t)b[21] << 16 | (size_t)b[22] << 8 | b[23];
    ck_assert_uint_lt(name, sizeof(b));
    ck_assert_int_eq(tsws_read(w, b, name, 10000), 0); /* desktop name */
}

/* RFB client messages through a websocket (big-endian fields). */
static void ws_key(struct tsws *w, uint32_t keysym, int down)
{
    unsigned char m[8] = {4, (unsigned char)down};
    int i;

    for (i = 0; i < 4; i++)
        m[4 + i] = (unsigned char)(keysym >> (24 - 8 * i));
    ck_assert_int_eq(tsws_send(w, m, sizeof(m)), 0);
}

static void ws_pointer(struct tsws *w, int x, int y, unsigned buttons)
{
    unsigned char m[6] = {5,
                          (unsigned char)buttons,
                          (unsigned char)(x >> 8),
                          (unsigned char)x,
                          (unsigned char)(y >> 8),
                          (unsigned char)y};

    ck_assert_int_eq(tsws_send(w, m, sizeof(m)), 0);
}

/* A view-only client typed and clicked Log off: none of it may reach the
 * desktop. Its user's client shows only her own text, her session goes
 * on, and she can still type. */
static void nothing_reached_the_desktop(struct tsvnc *user, const char *id,
                                        const char *text, const char *more)
{
    struct tsscreen s;
    struct td_layout l;
    char both[32];
    json_t *d;
    int px, py;

    ck_assert_msg(tsvnc_pump(user, 2000) >= 0,
                  "the user's session ended: did the viewer log her off?");
    ck_assert_msg(shows_text(user, text), "the viewer's keys were typed");
    s = client_view(user);
    td_layout_compute(&l, s.width, s.height);
    ck_assert_msg(tsscreen_find_pointer(&s, &px, &py) != 0 ||
                      abs(px - (l.logoff.x + l.logoff.w / 2)) > 2 ||
                      abs(py - (l.logoff.y + l.logoff.h / 2)) > 2,
                  "the viewer moved the pointer");
    d = admin_desktop(id);
    ck_assert_str_eq(str(d, "state"), "CONNECTED");
    ck_assert_str_eq(str(d, "user"), "alice");
    json_decref(d);
    ck_assert_int_eq(tsvnc_type(user, more), 0);
    snprintf(both, sizeof(both), "%s%s", text, more);
    wait_screen(user, shows_text, both, "the user's text");
}

/* A view ticket for desktop id, asked by an admin session. */
static char *view_ticket(struct tsbroker_session *s, const char *id)
{
    char path[160], url[200], *t;
    json_t *r = NULL;

    snprintf(path, sizeof(path), "/api/v1/admin/desktops/%s/view", id);
    ck_assert_int_eq(tsbroker_call(s, "POST", path, NULL, &r), 200);
    t = strdup(str(r, "ticket"));
    ck_assert_uint_eq(strlen(t), 43);
    snprintf(url, sizeof(url), "/desktop.html#ticket=%s&view=1&desktop=%s", t,
             id);
    ck_assert_str_eq(str(r, "url"), url);
    ck_assert_int_gt(num(r, "expires"), (json_int_t)time(NULL));
    json_decref(r);
    return t;
}

/* The audit log has n helpdesk_view events of phase for desktop id. */
static int view_events(const char *id, const char *phase)
{
    json_t *r = NULL, *e;
    size_t i;
    int n = 0;

    ck_assert_int_eq(tsbroker_call(&admin, "GET",
                                   "/api/v1/admin/events?pool=desk", NULL, &r),
                     200);
    json_array_foreach(json_object_get(r, "events"), i, e)
    {
        json_t *detail = json_object_get(e, "detail");

        if (!strcmp(str(e, "kind"), "helpdesk_view") &&
            !strcmp(str(e, "desktop"), id) &&
            !strcmp(str(detail, "phase"), phase)) {
            ck_assert_str_eq(str(e, "user"), "admin");
            ck_assert_str_eq(str(detail, "owner"), "alice");
            n++;
        }
    }
    json_decref(r);
    return n;
}

/*
 * A helpdesk watches alice's desktop: an admin's view ticket opens the
 * gateway for the admin's own browser session only; the view shows the
 * screen, takes no input, and alice sees a banner while it lasts (two
 * views at once: until both ended). Her session is untouched throughout.
 */
static void helpdesk_views_without_touching(const char *id)
{
    struct tsbroker_session helpdesk, bob;
    struct tsvnc *user = NULL, *viewer = NULL;
    struct tsws *v = NULL;
    struct td_layout l;
    unsigned char req[10] = {3, 0, 0, 0, 0, 0, 0, 1, 0, 1}, up[20];
    char *ticket, *ticket2, *ticket3, line[256];
    json_t *r;
    long long until;
    int width = 0, height = 0;

    /* alice watches her screen with a VNC client, and types */
    r = launch(&alice, "browser");
    ck_assert_msg(tsvnc_connect_gateway(&user, dmn.gw, str(r, "ticket"),
                                        "10.1.2.4", NULL) == 0,
                  "gateway: %s", tsvnc_last_connect_error());
    json_decref(r);
    ck_assert_int_eq(tsvnc_type(user, "ab"), 0);
    wait_screen(user, shows_text, "ab", "the user's text");
    wait_screen(user, shows_banner, NULL, "no banner");

    /* an admin in a browser asks for a view; users may not */
    tsbroker_connect(&broker, &helpdesk);
    ck_assert_int_eq(
        tsbroker_login(&broker, &helpdesk, "admin", "admin-pw", NULL, 0), 200);
    ticket = view_ticket(&helpdesk, id);
    snprintf(line, sizeof(line), "/api/v1/admin/desktops/%s/view", id);
    ck_assert_int_eq(tsbroker_call(&alice, "POST", line, NULL, NULL), 403);
    /* the ticket opens the gateway for the admin's session only */
    ck_assert_int_ne(open_ws(&v, ticket, alice.cookie, "binary"), 101);
    tsbroker_connect(&broker, &bob);
    ck_assert_int_eq(tsbroker_login(&broker, &bob, "bob", "bob-pw", NULL, 0),
                     200);
    ck_assert_int_ne(open_ws(&v, ticket, bob.cookie, "binary"), 101);
    tsbroker_disconnect(&bob);
    ck_assert_int_ne(open_ws(&v, ticket, NULL, "binary"), 101);
    ck_assert_int_eq(open_ws(&v, ticket, helpdesk.cookie, "binary"), 101);
    rfb_through(v, &width, &height);
    ck_assert_int_eq(width, TSGUEST_WIDTH);
    ck_assert_int_eq(height, TSGUEST_HEIGHT);
    /* the helpdesk sees the screen: a pixel (raw) for a 1x1 request */
    ck_assert_int_eq(tsws_send(v, req, sizeof(req)), 0);
    ck_assert_int_eq(tsws_read(v, up, 20, 20000), 0);
    ck_assert_int_eq(up[0], 0);  /* FramebufferUpdate */
    ck_assert_int_eq(up[3], 1);  /* one rectangle */
    ck_assert_int_eq(up[15], 0); /* raw */
    /* alice is told */
    wait_screen(user, shows_banner, BANNER, "the banner");
    ck_assert_int_eq(view_events(id, "start"), 1);
    /* the helpdesk's keys and clicks (Log off!) go nowhere */
    td_layout_compute(&l, TSGUEST_WIDTH, TSGUEST_HEIGHT);
    ws_key(v, 'x', 1);
    ws_key(v, 'x', 0);
    ws_pointer(v, l.logoff.x + l.logoff.w / 2, l.logoff.y + l.logoff.h / 2, 0);
    ws_pointer(v, l.logoff.x + l.logoff.w / 2, l.logoff.y + l.logoff.h / 2, 1);
    ws_pointer(v, l.logoff.x + l.logoff.w / 2, l.logoff.y + l.logoff.h / 2, 0);
    nothing_reached_the_desktop(user, id, "ab", "c");

    /* a second view at once, with a VNC client straight to the display
     * (what the gateway does): it sees alice's screen and the banner,
     * and its keysyms, QEMU extended key events and pointer go nowhere */
    ticket2 = view_ticket(&helpdesk, id);
    ck_assert_msg(
        tsvnc_connect_gateway(&viewer, dmn.gw, ticket2, "10.7.7.7", NULL) == 0,
        "view: %s", tsvnc_last_connect_error());
    wait_screen(viewer, shows_text, "abc", "the user's text to the viewer");
    wait_screen(viewer, shows_banner, BANNER, "the banner to the viewer");
    ck_assert_int_eq(tsvnc_type(viewer, "zz"), 0);
    until = tsguest_now_ms() + SEE_MS; /* acknowledged with an update */
    while (!tsvnc_has_ext_keys(viewer) && tsguest_now_ms() < until)
        ck_assert_int_ge(tsvnc_pump(viewer, 100), 0);
    ck_assert_msg(tsvnc_has_ext_keys(viewer),
                  "the display did not acknowledge QEMU extended keys");
    ck_assert_int_eq(tsvnc_key_scancode(viewer, 'q', 0x10, 1), 0);
    ck_assert_int_eq(tsvnc_key_scancode(viewer, 'q', 0x10, 0), 0);
    ck_assert_int_eq(tsvnc_pointer(viewer, l.logoff.x + l.logoff.w / 2,
                                   l.logoff.y + l.logoff.h / 2, 1),
                     0);
    ck_assert_int_eq(tsvnc_pointer(viewer, l.logoff.x + l.logoff.w / 2,
                                   l.logoff.y + l.logoff.h / 2, 0),
                     0);
    nothing_reached_the_desktop(user, id, "abc", "d");
    /* the first view ends: the second still runs, the banner stays */
    tsws_close(v);
    until = tsguest_now_ms() + SEE_MS;
    while (view_events(id, "end") < 1 && tsguest_now_ms() < until)
        ck_assert_int_ge(tsvnc_pump(user, 200), 0);
    ck_assert_int_eq(view_events(id, "end"), 1);
    ck_assert_int_ge(tsvnc_pump(user, 1500), 0);
    ck_assert_msg(shows_banner(user, BANNER), "the banner went too early");
    /* the last view ends: the banner goes; alice's session stays */
    tsvnc_close(viewer);
    wait_screen(user, shows_banner, NULL, "no banner");
    ck_assert_int_eq(view_events(id, "end"), 2);
    r = admin_desktop(id);
    ck_assert_str_eq(str(r, "state"), "CONNECTED");
    ck_assert_str_eq(str(r, "client"), "10.1.2.4");
    json_decref(r);

    /* deskpool-display hears "view only" when it redeems a view ticket */
    ticket3 = view_ticket(&helpdesk, id);
    snprintf(line, sizeof(line),
             "{\"id\":1,\"op\":\"redeem\",\"args\":{\"ticket\":\"%s\","
             "\"protocol\":\"browser\"}}",
             ticket3);
    r = local(line);
    ck_assert_msg(json_is_true(json_object_get(r, "ok")), "%s",
                  str(r, "message"));
    ck_assert(json_is_true(
        json_object_get(json_object_get(r, "result"), "view_only")));
    ck_assert_str_eq(str(json_object_get(r, "result"), "user"), "admin");
    ck_assert_str_eq(str(json_object_get(r, "result"), "desktop"), id);
    json_decref(r);
    tsvnc_close(user);
    tsbroker_disconnect(&helpdesk);
    free(ticket);
    free(ticket2);
    free(ticket3);
}

START_TEST(websocket_gateway_reaches_the_desktop)
{
    struct tsbroker_session bob;
    struct tsws *w = NULL, *more[3] = {NULL};
    json_t *r = launch(&alice, "browser"), *rdp;
    char ticket[64], id[80];
    unsigned char req[10] = {3, 0, 0, 0, 0, 0, 0x04, 0, 0x03, 0};
    unsigned char up[4];
    int width = 0, height = 0, threads, i;

    snprintf(ticket, sizeof(ticket), "%s", str(r, "ticket"));
    snprintf(id, sizeof(id), "%s", str(json_object_get(r, "desktop"), "id"));
    json_decref(r);
    /* without a session, or with someone else's: refused at the upgrade */
    ck_assert_int_ne(open_ws(&w, ticket, NULL, "binary"), 101);
    tsbroker_connect(&broker, &bob);
    ck_assert_int_eq(tsbroker_login(&broker, &bob, "bob", "bob-pw", NULL, 0),
                     200);
    ck_assert_int_ne(open_ws(&w, ticket, bob.cookie, "binary"), 101);
    tsbroker_disconnect(&bob);

    ck_assert_int_eq(open_ws(&w, ticket, alice.cookie, "binary"), 101);
    rfb_through(w, &width, &height);
    ck_assert_int_eq(width, TSGUEST_WIDTH);
    ck_assert_int_eq(height, TSGUEST_HEIGHT);
    /* pixels come back for a framebuffer update request */
    ck_assert_int_eq(tsws_send(w, req, sizeof(req)), 0);
    ck_assert_int_eq(tsws_read(w, up, 4, 20000), 0);
    ck_assert_int_eq(up[0], 0); /* FramebufferUpdate */
    wait_state(id, "CONNECTED");
    /* the ticket is spent */
    ck_assert_int_ne(open_ws(&more[0], ticket, alice.cookie, "binary"), 101);
    /* an RDP ticket is no browser ticket */
    rdp = launch(&alice, "rdp");
    ck_assert_int_ne(
        open_ws(&more[0], str(rdp, "ticket"), alice.cookie, "binary"), 101);
    json_decref(rdp);
    /* a websocket that names no protocol is not served */
    r = launch(&alice, "browser");
    ck_assert_int_ne(open_ws(&more[0], str(r, "ticket"), alice.cookie, NULL),
                     101);
    json_decref(r);

    /* more gateways at once: no thread each */
    threads = broker_threads();
    for (i = 0; i < 3; i++) {
        r = launch(&alice, "browser");
        ck_assert_int_eq(
            open_ws(&more[i], str(r, "ticket"), alice.cookie, "binary"), 101);
        json_decref(r);
        rfb_through(more[i], &width, &height);
    }
    ck_assert_int_eq(broker_threads(), threads);
    for (i = 0; i < 3; i++)
        tsws_close(more[i]);

    /* the browser goes: the display session ends, the desktop waits */
    tsws_close(w);
    wait_state(id, "DISCONNECTED");

    helpdesk_views_without_touching(id);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("broker_display");
    TCase *tc = tcase_create("together");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, browser_ticket_opens_the_gateway_once);
    tcase_add_test(tc, websocket_gateway_reaches_the_desktop);
    tcase_add_test(tc, vnc_launch_gives_a_one_time_password);
    tcase_add_test(tc, password_logins_through_the_local_api);
    tcase_add_test(tc, disconnect_timeout_frees_a_floating_desktop);
    tcase_add_test(tc, idle_timeout_logs_off_an_idle_user);
    tcase_add_test(tc, a_session_ended_by_logoff_is_audited);
    suite_add_tcase(s, tc);
    return tsguest_run_suite(s);
}
