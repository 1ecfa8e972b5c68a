/*
 * test_broker_display.c - the broker and deskpool-display together, with
 * a real test-image desktop: a browser launch's one-time ticket opens the
 * gateway once (and only for its protocol, and only in time), a VNC launch
 * gives a password a VNC client logs in with, the desktop's state follows
 * the display's sessions, and RDP-style logins (user name and password
 * through the local API) get the user's desktop, with wrong passwords
 * refused and rate limited.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tsbroker.h"
#include "tsdisplay.h"
#include "tsguest.h"
#include "tsvnc.h"
#include "tsws.h"

#define BOOT_MS 120000

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
    snprintf(local_sock, sizeof(local_sock), "%s/broker.sock", broker.dir);
    tsdisplay_start_broker(&dmn, broker.vm, local_sock);
    /* the broker asks this display for VNC passwords */
    snprintf(broker.display, sizeof(broker.display), "%s", dmn.ctl);
    tsbroker_set(&broker, "display_gateway", dmn.gw);
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
    /* a replay is refused, and says why */
    why = refusal(ticket);
    ck_assert_ptr_nonnull(why);
    ck_assert_str_eq(why, "already used");
    free(why);
    tsvnc_close(vnc);
    wait_state(id, "DISCONNECTED");

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
    suite_add_tcase(s, tc);
    return tsguest_run_suite(s);
}
