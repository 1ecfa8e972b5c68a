/*
 * Integration test of the agent channel: deskpool-agent in the test guest
 * (started by the image's init with the testdesk backend) against hv_agent,
 * the host end in libdeskpool-hv. What a manager hears on the channel is
 * checked on the wire (events, replies, error codes), and what the user
 * sees is checked on the guest's screen (QMP screendump compared pixel for
 * pixel with testdesk's layout contract, td_layout.h and td_font.h).
 *
 * Each test case boots one guest in an unchecked fixture (in the process
 * that runs the tests, fork mode too) and stops it in its teardown; should
 * that not run, tsguest_run_suite() ends it. Each test opens hv_agent
 * connections of its own and closes them before it ends: QEMU serves one
 * client on agent.sock at a time, so a connection left open would starve
 * the next test. Every test waits for the guest's hello itself, so none
 * needs an earlier one to have waited for the boot.
 *
 *   desktop    the guest as a user's desktop: hello/ready, sessions on
 *              screen, messages, Log off, clipboard, resolution, bad input
 *              and a host that reconnects;
 *   lifecycle  what changes the guest as a whole: personalise, the lock
 *              screen, a reset (reboot) and a QEMU restart under a live
 *              connection, a paused VM going unhealthy.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hv_agent.h"
#include "td_font.h"
#include "td_layout.h"
#include "tsguest.h"
#include "tsppm.h"
#include "tsscreen.h"

#define AT_WIDTH  TSGUEST_WIDTH
#define AT_HEIGHT TSGUEST_HEIGHT

/* TCG boots take ~7 s on an idle machine; CI machines are anything but. */
#define AT_BOOT_TIMEOUT_MS 150000
#define AT_TCASE_TIMEOUT_S 360

/* Heartbeats come every 5 s; an event the guest sends at once may still
 * queue behind a busy emulated CPU. */
#define AT_EVENT_TIMEOUT_MS 20000
/* One request's bound (hv_agent's own timeout ends the wait). */
#define AT_REQUEST_TIMEOUT_MS 15000

/* How long a change on screen may take to show, and how often to look. */
#define AT_SETTLE_MS 20000
#define AT_POLL_MS   200

/* Heartbeat timeout of the health test: longer than the guest's 5 s
 * heartbeat interval, so that a running guest stays healthy and only the
 * pause can make it unhealthy, and far below the default 15 s. */
#define AT_PAUSE_HEARTBEAT_MS 8000

#define AT_VM "agent"

/* Protocol limits from agent/PROTOCOL.md. */
#define AT_CLIPBOARD_MAX 32768
#define AT_LINE_MAX      65536

/* Suite state: the test case's host and whether its VM started. */
static struct hv_host *at_host;
static int at_start_err;

/* Per test, released by the checked teardown even when an assertion
 * leaves the test early (with CK_FORK=no). */
static struct tsppm *at_shot;
static struct at_agent *at_conn;
static int at_raw_fd = -1;

/* ------------------------------------------------------------------------
 * Time */

/* Compact JSON for failure messages, from a small ring of buffers so that
 * one message can show several values. */
static const char *at_json(const json_t *j)
{
    static char bufs[4][512];
    static int next;
    char *buf = bufs[next++ % 4];
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    snprintf(buf, sizeof(bufs[0]), "%s", s ? s : "(none)");
    free(s);
    return buf;
}

/* ------------------------------------------------------------------------
 * Fixtures */

static void at_start(void)
{
    at_start_err = tsguest_host_start(&at_host, AT_VM, "testdesk.mode=idle");
}

static void at_stop(void)
{
    tsguest_host_close(at_host);
    at_host = NULL;
}

static void at_close(struct at_agent *ag);

static void at_test_setup(void)
{
    at_shot = NULL;
    at_conn = NULL;
    at_raw_fd = -1;
}

static void at_test_teardown(void)
{
    tsppm_free(at_shot);
    at_shot = NULL;
    at_close(at_conn);
    if (at_raw_fd >= 0)
        close(at_raw_fd);
    at_raw_fd = -1;
}

static void at_guest(void)
{
    ck_assert_msg(at_start_err == 0,
                  "the test guest did not start: %s (see above)",
                  strerror(-at_start_err));
}

static void at_sock_path(char *buf, size_t size)
{
    int err = hv_vm_path(at_host, AT_VM, "agent.sock", buf, size);
    ck_assert_msg(err == 0, "no agent.sock path: %s", strerror(-err));
}

/* ------------------------------------------------------------------------
 * The host end: an hv_agent that logs every event it hears */

struct at_agent {
    struct hv_agent *a;
    json_t *events; /* [{"event": NAME, "data": DATA}, ...] since open */
    json_t *keep;   /* request results, borrowed by the tests */
    int links_up, links_down;
};

static void at_on_event(void *arg, const char *name, json_t *data)
{
    struct at_agent *ag = arg;

    json_array_append_new(
        ag->events, json_pack("{s:s, s:O?}", "event", name, "data", data));
}

static void at_on_link(void *arg, int up)
{
    struct at_agent *ag = arg;

    if (up)
        ag->links_up++;
    else
        ag->links_down++;
}

static const struct hv_agent_callbacks at_callbacks = {
    .event = at_on_event,
    .link = at_on_link,
};

/* Opens the test's one connection (heartbeat timeout 0: the default). */
static struct at_agent *at_open(int heartbeat_timeout_ms)
{
    char path[PATH_MAX];
    struct at_agent *ag;
    int err;

    at_guest();
    ck_assert_msg(at_conn == NULL, "test bug: a connection is open already");
    at_sock_path(path, sizeof(path));
    ag = calloc(1, sizeof(*ag));
    ck_assert_ptr_nonnull(ag);
    ag->events = json_array();
    ag->keep = json_array();
    err = hv_agent_open(&ag->a, path, &at_callbacks, ag, heartbeat_timeout_ms);
    ck_assert_msg(err == 0, "hv_agent_open(%s): %s", path, strerror(-err));
    at_conn = ag;
    return ag;
}

/* The host side going away, as when the manager exits. */
static void at_close(struct at_agent *ag)
{
    if (!ag)
        return;
    hv_agent_close(ag->a);
    json_decref(ag->events);
    json_decref(ag->keep);
    free(ag);
    if (at_conn == ag)
        at_conn = NULL;
}

/* Runs hv_agent's loop for up to ms, as a manager's poll loop would. */
static void at_pump(struct at_agent *ag, int ms)
{
    long long deadline = tsguest_now_ms() + ms;

    for (;;) {
        struct pollfd p = {hv_agent_fd(ag->a), hv_agent_poll_events(ag->a), 0};
        long long left = deadline - tsguest_now_ms();
        int wait = hv_agent_timeout_ms(ag->a);

        if (left < 0)
            left = 0;
        if (wait < 0 || wait > left)
            wait = (int)left;
        if (poll(&p, 1, wait) < 0)
            p.revents = 0;
        hv_agent_process(ag->a, p.revents);
        if (tsguest_now_ms() >= deadline)
            return;
    }
}

/* Where the next event will go in the log: wait for events after it. */
static size_t at_mark(const struct at_agent *ag)
{
    return json_array_size(ag->events);
}

/* Index of the first event called name at or after from, or -1. */
static long at_find(const struct at_agent *ag, const char *name, size_t from)
{
    for (size_t i = from; i < json_array_size(ag->events); i++) {
        json_t *e = json_array_get(ag->events, i);
        if (strcmp(json_string_value(json_object_get(e, "event")), name) == 0)
            return (long)i;
    }
    return -1;
}

/* Prints the events heard so far (the last ones), for a failure report. */
static void at_print_events(const struct at_agent *ag)
{
    size_t n = json_array_size(ag->events), i = n > 20 ? n - 20 : 0;

    fprintf(stderr, "agent: %zu events heard, the last ones:\n", n);
    for (; i < n; i++)
        fprintf(stderr, "  [%zu] %s\n", i,
                at_json(json_array_get(ag->events, i)));
}

/*
 * Waits for event name at or after *from; returns its data (borrowed from
 * the log) and moves *from past it, so that waits can be chained in the
 * order the guest must send them.
 */
static json_t *at_wait_event(struct at_agent *ag, const char *name,
                             size_t *from, int timeout_ms)
{
    long long deadline = tsguest_now_ms() + timeout_ms;
    long i;

    while ((i = at_find(ag, name, *from)) < 0 && tsguest_now_ms() < deadline)
        at_pump(ag, 100);
    if (i < 0) {
        at_print_events(ag);
        tsguest_print_serial(at_host, AT_VM);
    }
    ck_assert_msg(i >= 0, "no \"%s\" event from the guest within %d s", name,
                  timeout_ms / 1000);
    *from = (size_t)i + 1;
    return json_object_get(json_array_get(ag->events, (size_t)i), "data");
}

/* Connects and waits until the guest introduced itself: hello, ready and
 * a heartbeat. The guest may still be booting. */
static struct at_agent *at_connect(int heartbeat_timeout_ms)
{
    struct at_agent *ag = at_open(heartbeat_timeout_ms);
    size_t at = 0;

    at_wait_event(ag, "hello", &at, AT_BOOT_TIMEOUT_MS);
    at_wait_event(ag, "ready", &at, AT_BOOT_TIMEOUT_MS);
    at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);
    return ag;
}

/* The outcome of one request, as hv_agent_reply_fn reports it. */
struct at_reply {
    int done, status;
    json_t *result; /* borrowed from the connection's keep list */
    char code[64], message[512];
};

static void at_on_reply(void *arg, int status, json_t *result, const char *code,
                        const char *message)
{
    struct at_reply *r = arg;

    r->done = 1;
    r->status = status;
    r->result = json_incref(result);
    snprintf(r->code, sizeof(r->code), "%s", code);
    snprintf(r->message, sizeof(r->message), "%s", message);
}

/* Sends op with args (consumed) and runs the loop until it is answered. */
static void at_request(struct at_agent *ag, const char *op, json_t *args,
                       struct at_reply *r)
{
    int err;

    memset(r, 0, sizeof(*r));
    err = hv_agent_request(ag->a, op, args, AT_REQUEST_TIMEOUT_MS, at_on_reply,
                           r);
    ck_assert_msg(err == 0, "cannot send %s: %s", op, strerror(-err));
    /* hv_agent's timeout or a disconnect always ends this. */
    while (!r->done)
        at_pump(ag, 100);
    if (r->result)
        json_array_append_new(ag->keep, r->result);
}

/* Sends op and asserts success; returns the result (borrowed, may be
 * NULL). */
static json_t *at_ok(struct at_agent *ag, const char *op, json_t *args)
{
    char sent[512];
    struct at_reply r;

    snprintf(sent, sizeof(sent), "%s", at_json(args));
    at_request(ag, op, args, &r);
    if (r.status != 0) {
        at_print_events(ag);
        tsguest_print_serial(at_host, AT_VM);
    }
    ck_assert_msg(r.status == 0, "%s %.200s: %s, error \"%s\": %s", op, sent,
                  strerror(-r.status), r.code, r.message);
    return r.result;
}

/* Sends op and asserts that the guest refuses it with code. */
static void at_refused(struct at_agent *ag, const char *op, json_t *args,
                       const char *code)
{
    char sent[512];
    struct at_reply r;

    snprintf(sent, sizeof(sent), "%s", at_json(args));
    at_request(ag, op, args, &r);
    ck_assert_msg(r.status == -EREMOTEIO && strcmp(r.code, code) == 0,
                  "%s %.200s: expected error \"%s\", got %s (%d) error "
                  "\"%s\": %s",
                  op, sent, code, r.status ? strerror(-r.status) : "ok",
                  r.status, r.code, r.message);
    /* A refusal says why, for whoever reads the manager's log. */
    ck_assert_msg(r.message[0], "%s: error \"%s\" without a message", op, code);
}

static void at_state(const struct at_agent *ag, struct hv_agent_state *st)
{
    hv_agent_state(ag->a, st);
}

/* Integer member key of an event's data, or LLONG_MIN when absent. */
static long long at_int(const json_t *data, const char *key)
{
    json_t *v = json_object_get(data, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : LLONG_MIN;
}

/* String member key, or "" when absent or not a string. */
static const char *at_str(const json_t *data, const char *key)
{
    const char *s = json_string_value(json_object_get(data, key));
    return s ? s : "";
}

/* ------------------------------------------------------------------------
 * Screen */

/* Takes a screendump, kept as at_shot. */
static struct tsscreen at_screen(void)
{
    int err;

    at_guest();
    err = tsguest_screen(at_host, AT_VM, &at_shot);
    ck_assert_msg(err == 0, "screendump failed: %s (see above)",
                  strerror(-err));
    return tsscreen_from_ppm(at_shot);
}

/* Keeps the last screendump where CI keeps build output, so a failure can
 * be looked at: $DESKPOOL_BUILD_DIR/tests/integration/agent-NAME.ppm. */
static void at_keep_screen(const char *name)
{
    (void)tsguest_keep_screen(at_host, AT_VM, "agent", name);
}

/*
 * Lets ms pass. The test's connection keeps being served meanwhile, as a
 * manager's event loop would: events are heard when they come, and
 * hv_agent does not take a long gap for a silent guest.
 */
static void at_idle(int ms)
{
    if (at_conn)
        at_pump(at_conn, ms);
    else
        tsguest_sleep_ms(ms);
}

/* A check looks at a screendump and says what is still wrong. */
typedef int (*at_check_fn)(const struct tsscreen *img, const void *arg,
                           char *why, size_t why_size);

/*
 * Takes screendumps until check() passes or AT_SETTLE_MS is over; the
 * guest draws in its own time, so a single look could come too early.
 */
static void at_poll(at_check_fn check, const void *arg, const char *name)
{
    long long deadline = tsguest_now_ms() + AT_SETTLE_MS;
    char why[512] = "";

    for (;;) {
        struct tsscreen s = at_screen();

        if (check(&s, arg, why, sizeof(why)))
            return;
        if (tsguest_now_ms() >= deadline)
            break;
        at_idle(AT_POLL_MS);
    }
    at_keep_screen(name);
    ck_abort_msg("after %d s: %s", AT_SETTLE_MS / 1000, why);
}

static void at_layout(struct td_layout *l, int width, int height)
{
    ck_assert_int_eq(td_layout_compute(l, width, height), 0);
}

/*
 * A line of text in an area of the screen: text drawn from (tx, ty) in fg
 * on bg, and nothing but bg in the rest of the area, so that the remains
 * of a longer text drawn before would show.
 */
struct at_label {
    const char *what;
    struct td_rect area;
    int tx, ty;
    const char *text;
    uint32_t fg, bg;
};

static int at_shows_label(const struct tsscreen *img, const void *arg,
                          char *why, size_t why_size)
{
    const struct at_label *lb = arg;
    const struct td_rect *r = &lb->area;
    struct tsscreen_diff d;
    char what[256];

    tsscreen_diff_init(&d, img);
    for (int y = r->y; y < r->y + r->h; y++)
        for (int x = r->x; x < r->x + r->w; x++)
            tsscreen_diff_pixel(&d, img, x, y,
                                tsscreen_text_pixel(x, y, lb->tx, lb->ty,
                                                    lb->text, lb->fg, lb->bg));
    snprintf(what, sizeof(what), "%s should read \"%s\"", lb->what, lb->text);
    return tsscreen_diff_why(&d, what, why, why_size) == 0;
}

/* Polls until the top bar's user text reads text. */
static void at_poll_user_text(const char *text, const char *name)
{
    struct td_layout l;
    struct at_label lb;

    at_layout(&l, AT_WIDTH, AT_HEIGHT);
    lb = (struct at_label){.what = "the top bar's user text",
                           .area = l.user,
                           .tx = l.user.x,
                           .ty = l.user.y,
                           .text = text,
                           .fg = TD_COLOR_TOPBAR_TEXT,
                           .bg = TD_COLOR_TOPBAR};
    at_poll(at_shows_label, &lb, name);
}

/* ------------------------------------------------------------------------
 * desktop 1. The guest says hello, ready and keeps beating */

START_TEST(agent_ready)
{
    struct at_agent *ag = at_open(0);
    struct hv_agent_state st;
    json_t *hello, *beat;
    size_t at = 0;

    hello = at_wait_event(ag, "hello", &at, AT_BOOT_TIMEOUT_MS);
    ck_assert_msg(at_int(hello, "version") == 1, "hello: %s", at_json(hello));
    ck_assert_msg(strcmp(at_str(hello, "hostname"), "deskpool-test") == 0,
                  "hello: %s", at_json(hello));
    ck_assert_msg(strncmp(at_str(hello, "os"), "Linux", 5) == 0, "hello: %s",
                  at_json(hello));
    at_wait_event(ag, "ready", &at, AT_BOOT_TIMEOUT_MS);
    beat = at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);
    ck_assert_msg(strcmp(at_str(beat, "user"), "") == 0 &&
                      at_int(beat, "since") == 0,
                  "nobody logged in yet, but: %s", at_json(beat));

    at_state(ag, &st);
    ck_assert_msg(st.connected && st.hello && st.ready && st.healthy,
                  "state: connected %d hello %d ready %d healthy %d",
                  st.connected, st.hello, st.ready, st.healthy);
    ck_assert_str_eq(st.user, "");
    ck_assert_str_eq(st.hostname, "deskpool-test");
    ck_assert_uint_ge(st.heartbeats, 1);
    /* And it keeps beating: the manager's health check rests on it. */
    at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);
    at_state(ag, &st);
    ck_assert_uint_ge(st.heartbeats, 2);
    at_ok(ag, "ping", NULL);
}
END_TEST

/* ------------------------------------------------------------------------
 * desktop 2. prepare-session: the desktop shows whose it is */

START_TEST(agent_session_shown)
{
    struct at_agent *ag = at_connect(0);
    struct hv_agent_state st;
    json_t *login, *beat;
    size_t at = at_mark(ag);

    at_ok(ag, "prepare-session",
          json_pack("{s:s, s:s}", "user", "alice", "display_name",
                    "Alice Liddell"));
    login = at_wait_event(ag, "login", &at, AT_EVENT_TIMEOUT_MS);
    ck_assert_msg(strcmp(at_str(login, "user"), "alice") == 0, "login: %s",
                  at_json(login));
    at_poll_user_text("user: alice (Alice Liddell)", "session");

    /* The heartbeat after the session started knows about it. */
    at = at_mark(ag);
    beat = at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);
    ck_assert_msg(strcmp(at_str(beat, "user"), "alice") == 0 &&
                      at_int(beat, "since") > 0,
                  "heartbeat after login: %s", at_json(beat));
    at_state(ag, &st);
    ck_assert_str_eq(st.user, "alice");
    ck_assert_int_gt(st.since, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * desktop 3. message: a banner the user reads */

/* No banner pixel is left where the banner was. */
static int at_no_banner(const struct tsscreen *img, const void *arg, char *why,
                        size_t why_size)
{
    const struct td_layout *l = arg;
    int n = tsscreen_count_color(img, TD_COLOR_BANNER, &l->banner, 1);

    snprintf(why, why_size, "%d banner pixels left", n);
    return n == 0;
}

START_TEST(agent_message)
{
    static const char text[] = "Maintenance at 5pm";
    struct at_agent *ag = at_connect(0);
    struct td_layout l;
    struct at_label lb;

    at_ok(ag, "message", json_pack("{s:s}", "text", text));
    at_layout(&l, AT_WIDTH, AT_HEIGHT);
    lb = (struct at_label){.what = "the message banner",
                           .area = l.banner,
                           .tx = l.banner.x + TD_TEXT_PAD,
                           .ty = l.banner.y + TD_TEXT_PAD,
                           .text = text,
                           .fg = TD_COLOR_BANNER_TEXT,
                           .bg = TD_COLOR_BANNER};
    at_poll(at_shows_label, &lb, "message");
    /* an empty message takes it away */
    at_ok(ag, "message", json_pack("{s:s}", "text", ""));
    at_poll(at_no_banner, &l, "message-cleared");
}
END_TEST

/* ------------------------------------------------------------------------
 * desktop 4. The user clicks Log off: the host hears who left */

START_TEST(agent_logoff_click)
{
    struct at_agent *ag = at_connect(0);
    struct td_layout l;
    json_t *logout, *beat;
    size_t at;
    int err, x, y;

    at_ok(ag, "prepare-session",
          json_pack("{s:s, s:s}", "user", "alice", "display_name",
                    "Alice Liddell"));
    /* Click only once the session shows: a user clicks what they see. */
    at_poll_user_text("user: alice (Alice Liddell)", "logoff-session");

    at_layout(&l, AT_WIDTH, AT_HEIGHT);
    x = l.logoff.x + l.logoff.w / 2;
    y = l.logoff.y + l.logoff.h / 2;
    at = at_mark(ag);
    err = tsguest_move_abs(at_host, AT_VM, tsguest_px_to_abs(x, AT_WIDTH),
                           tsguest_px_to_abs(y, AT_HEIGHT));
    ck_assert_msg(err == 0, "pointer move failed: %s", strerror(-err));
    err = tsguest_click(at_host, AT_VM, "left");
    ck_assert_msg(err == 0, "click failed: %s", strerror(-err));

    logout = at_wait_event(ag, "logout", &at, AT_EVENT_TIMEOUT_MS);
    ck_assert_msg(strcmp(at_str(logout, "user"), "alice") == 0,
                  "clicking Log off at (%d,%d): logout %s", x, y,
                  at_json(logout));
    at_poll_user_text("user: (none)", "logoff");
    at = at_mark(ag);
    beat = at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);
    ck_assert_msg(strcmp(at_str(beat, "user"), "") == 0,
                  "heartbeat after logoff: %s", at_json(beat));
}
END_TEST

/* ------------------------------------------------------------------------
 * desktop 5. The clipboard carries any text up to the limit, exactly */

static void at_clipboard_round_trip(struct at_agent *ag, const char *text)
{
    json_t *got;
    const char *s;

    at_ok(ag, "clipboard-set", json_pack("{s:s}", "text", text));
    got = at_ok(ag, "clipboard-get", NULL);
    s = json_string_value(json_object_get(got, "text"));
    ck_assert_msg(s != NULL, "clipboard-get: no text in %s", at_json(got));
    ck_assert_msg(json_string_length(json_object_get(got, "text")) ==
                          strlen(text) &&
                      strcmp(s, text) == 0,
                  "clipboard-get returned %zu bytes \"%.60s\"..., set %zu "
                  "bytes \"%.60s\"...",
                  strlen(s), s, strlen(text), text);
}

/* n bytes of printable ASCII in lines of 64, varied so that a lost or
 * moved chunk shows; malloc'd. */
static char *at_big_text(size_t n)
{
    char *t = malloc(n + 1);

    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < n; i++)
        t[i] = i % 64 == 63 ? '\n' : (char)('!' + (i * 7 + i / 64) % 94);
    t[n] = '\0';
    return t;
}

START_TEST(agent_clipboard)
{
    /* Everything JSON and testdesk's line format must escape, and UTF-8. */
    static const char tricky[] = "line one\nline\ttwo \"quoted\" "
                                 "back\\slash h\xc3\xa9llo \xe2\x82\xac";
    struct at_agent *ag = at_connect(0);
    char *big = at_big_text(AT_CLIPBOARD_MAX);
    char *over = at_big_text(AT_CLIPBOARD_MAX + 1);
    json_t *text, *got;

    at_clipboard_round_trip(ag, tricky);
    at_clipboard_round_trip(ag, big);
    text = json_string(over);
    free(over);
    at_refused(ag, "clipboard-set", json_pack("{s:o}", "text", text),
               "bad-request");
    /* Refused means untouched. */
    got = at_ok(ag, "clipboard-get", NULL);
    ck_assert_msg(strcmp(at_str(got, "text"), big) == 0,
                  "the refused text changed the clipboard");
    free(big);
}
END_TEST

/* ------------------------------------------------------------------------
 * desktop 6. set-resolution re-lays out the desktop */

struct at_size {
    int width, height;
};

/* The desk fills width x height of the framebuffer, black beyond. */
static int at_shows_size(const struct tsscreen *img, const void *arg, char *why,
                         size_t why_size)
{
    const struct at_size *s = arg;
    struct td_layout l;
    struct tsscreen_diff d;
    char what[128];

    td_layout_compute(&l, s->width, s->height);
    tsscreen_diff_init(&d, img);
    /* The top bar's first rows hold nothing but its colour, to its end. */
    tsscreen_diff_rect(&d, img, (struct td_rect){0, 0, s->width, 2},
                       TD_COLOR_TOPBAR);
    snprintf(what, sizeof(what), "at %dx%d, the top bar", s->width, s->height);
    if (tsscreen_diff_why(&d, what, why, why_size))
        return 0;
    /* The Log off button moved with the layout (its margin left of the
     * label). */
    tsscreen_diff_rect(
        &d, img,
        (struct td_rect){l.logoff.x, l.logoff.y, TD_TEXT_PAD, l.logoff.h},
        TD_COLOR_LOGOFF);
    snprintf(what, sizeof(what), "at %dx%d, the Log off button at x=%d",
             s->width, s->height, l.logoff.x);
    if (tsscreen_diff_why(&d, what, why, why_size))
        return 0;
    tsscreen_diff_rect(
        &d, img, (struct td_rect){s->width, 0, AT_WIDTH - s->width, AT_HEIGHT},
        0x000000);
    tsscreen_diff_rect(
        &d, img,
        (struct td_rect){0, s->height, s->width, AT_HEIGHT - s->height},
        0x000000);
    snprintf(what, sizeof(what), "at %dx%d, the framebuffer beyond the desk",
             s->width, s->height);
    return tsscreen_diff_why(&d, what, why, why_size) == 0;
}

static void at_set_resolution(struct at_agent *ag, int width, int height)
{
    struct at_size want = {width, height};
    size_t at = at_mark(ag);
    json_t *res, *ev;
    char name[32];

    res = at_ok(ag, "set-resolution",
                json_pack("{s:i, s:i}", "width", width, "height", height));
    ck_assert_msg(
        at_int(res, "width") == width && at_int(res, "height") == height,
        "set-resolution %dx%d: result %s", width, height, at_json(res));
    ev = at_wait_event(ag, "resolution", &at, AT_EVENT_TIMEOUT_MS);
    ck_assert_msg(at_int(ev, "width") == width &&
                      at_int(ev, "height") == height,
                  "set-resolution %dx%d: event %s", width, height, at_json(ev));
    snprintf(name, sizeof(name), "resolution-%dx%d", width, height);
    at_poll(at_shows_size, &want, name);
}

START_TEST(agent_resolution)
{
    struct at_agent *ag = at_connect(0);
    struct tsscreen img;

    at_set_resolution(ag, 800, 600);
    /* The spot a user would look at: right of the desk, mid-height. */
    img = at_screen();
    ck_assert_msg(tsscreen_pixel(&img, 900, 300) == 0x000000,
                  "(900,300) at 800x600: 0x%06x",
                  (unsigned)tsscreen_pixel(&img, 900, 300));
    at_set_resolution(ag, AT_WIDTH, AT_HEIGHT);
}
END_TEST

/* ------------------------------------------------------------------------
 * desktop 7. Bad requests get clear errors and change nothing */

/* Requests a manager could get wrong, and what each must be answered. */
static const struct {
    const char *op, *args, *code;
} at_bad[] = {
    {"teleport", "{}", "unknown-op"},
    {"prepare-session", "{\"user\":\"bad user\",\"display_name\":\"B\"}",
     "bad-request"},
    {"prepare-session", "{\"display_name\":\"Nobody\"}", "bad-request"},
    {"prepare-session", "{\"user\":42}", "bad-request"},
    {"personalise",
     "{\"hostname\":\"bad_name!\","
     "\"machine_id\":\"0123456789abcdef0123456789abcdef\"}",
     "bad-request"},
    {"personalise",
     "{\"hostname\":\"desk-1\",\"machine_id\":\"0123456789ABCDEF\"}",
     "bad-request"},
    {"set-resolution", "{\"width\":100,\"height\":100}", "bad-request"},
    {"message", "{\"text\":\"a\\u0007\"}", "bad-request"},
};

/* Sends one of at_bad; says what was wrong with the answer into why
 * (appending), and returns whether it was right. */
static int at_bad_answered(struct at_agent *ag, size_t i, char *why,
                           size_t why_size)
{
    json_t *args = json_loads(at_bad[i].args, 0, NULL);
    struct at_reply r;
    size_t used = strlen(why);

    ck_assert_msg(args != NULL, "test bug: bad JSON %s", at_bad[i].args);
    at_request(ag, at_bad[i].op, args, &r);
    /* A refusal says why, for whoever reads the manager's log. */
    if (r.status == -EREMOTEIO && strcmp(r.code, at_bad[i].code) == 0 &&
        r.message[0])
        return 1;
    snprintf(why + used, why_size - used,
             "\n  %s %s: expected error \"%s\" with a message, got %s "
             "error \"%s\" message \"%s\"",
             at_bad[i].op, at_bad[i].args, at_bad[i].code,
             r.status ? strerror(-r.status) : "ok", r.code, r.message);
    return 0;
}

START_TEST(agent_bad_requests)
{
    struct at_agent *ag = at_connect(0);
    struct hv_agent_state before, after;
    char why[4096] = "";
    size_t at = at_mark(ag);
    json_t *hello;
    int wrong = 0;

    at_state(ag, &before);
    /* All of them, then one verdict: a report names every wrong answer. */
    for (size_t i = 0; i < sizeof(at_bad) / sizeof(*at_bad); i++)
        wrong += !at_bad_answered(ag, i, why, sizeof(why));
    ck_assert_msg(wrong == 0, "%d bad requests answered wrongly:%s", wrong,
                  why);

    /* Refused means nothing happened: no session started or changed... */
    ck_assert_msg(at_find(ag, "login", at) < 0,
                  "a refused prepare-session logged someone in");
    at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);
    at_state(ag, &after);
    ck_assert_str_eq(after.user, before.user);
    /* ...and the name is the same (hello says it afresh on a reconnect). */
    at_close(ag);
    ag = at_open(0);
    at = 0;
    hello = at_wait_event(ag, "hello", &at, AT_EVENT_TIMEOUT_MS);
    ck_assert_msg(strcmp(at_str(hello, "hostname"), "deskpool-test") == 0,
                  "a refused personalise renamed the guest: %s",
                  at_json(hello));
    /* The channel is as good as before. */
    at_ok(ag, "ping", NULL);
}
END_TEST

/* ------------------------------------------------------------------------
 * desktop 8. Garbage on agent.sock: error events, and nothing breaks */

/* A plain unix-socket client on agent.sock, as a confused or hostile host
 * process would be; lines are read into buf. */
struct at_raw {
    int fd;
    char buf[2 * AT_LINE_MAX];
    size_t len;
};

static void at_raw_open(struct at_raw *raw)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    at_guest();
    at_sock_path(sa.sun_path, sizeof(sa.sun_path));
    raw->len = 0;
    raw->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_msg(raw->fd >= 0, "socket: %s", strerror(errno));
    at_raw_fd = raw->fd;
    ck_assert_msg(connect(raw->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
                  "connect %s: %s", sa.sun_path, strerror(errno));
}

static void at_raw_close(struct at_raw *raw)
{
    close(raw->fd);
    raw->fd = at_raw_fd = -1;
}

static void at_raw_write(struct at_raw *raw, const char *data, size_t n)
{
    long long deadline = tsguest_now_ms() + AT_EVENT_TIMEOUT_MS;

    while (n > 0) {
        struct pollfd p = {raw->fd, POLLOUT, 0};
        ssize_t w = send(raw->fd, data, n, MSG_NOSIGNAL);

        if (w > 0) {
            data += w;
            n -= (size_t)w;
            continue;
        }
        ck_assert_msg(w < 0 && (errno == EAGAIN || errno == EINTR),
                      "writing to agent.sock: %s", strerror(errno));
        ck_assert_msg(tsguest_now_ms() < deadline,
                      "agent.sock took no more bytes for %d s (%zu left)",
                      AT_EVENT_TIMEOUT_MS / 1000, n);
        poll(&p, 1, 100);
    }
}

/* The next line from the guest (parsed), or NULL at the deadline. */
static json_t *at_raw_line(struct at_raw *raw, long long deadline)
{
    for (;;) {
        char *nl = memchr(raw->buf, '\n', raw->len);
        struct pollfd p = {raw->fd, POLLIN, 0};
        long long left = deadline - tsguest_now_ms();
        ssize_t n;

        if (nl) {
            size_t len = (size_t)(nl - raw->buf);
            json_t *j = json_loadb(raw->buf, len, 0, NULL);

            fprintf(stderr, "agent: raw <- %.*s\n",
                    (int)(len < 200 ? len : 200), raw->buf);
            memmove(raw->buf, nl + 1, raw->len - len - 1);
            raw->len -= len + 1;
            if (j)
                return j;
            ck_abort_msg("the guest sent a line that is not JSON");
        }
        ck_assert_msg(raw->len < sizeof(raw->buf),
                      "the guest sent a line over %zu bytes", sizeof(raw->buf));
        if (left <= 0)
            return NULL;
        if (poll(&p, 1, (int)(left < 100 ? left : 100)) <= 0)
            continue;
        n = read(raw->fd, raw->buf + raw->len, sizeof(raw->buf) - raw->len);
        ck_assert_msg(n != 0, "agent.sock closed");
        if (n > 0)
            raw->len += (size_t)n;
    }
}

/* Reads lines until an error event with code comes. */
static void at_raw_wait_error(struct at_raw *raw, const char *code)
{
    long long deadline = tsguest_now_ms() + AT_EVENT_TIMEOUT_MS;
    json_t *j;

    while ((j = at_raw_line(raw, deadline))) {
        json_t *data = json_object_get(j, "data");
        int hit = strcmp(at_str(j, "event"), "error") == 0 &&
                  strcmp(at_str(data, "error"), code) == 0;

        json_decref(j);
        if (hit)
            return;
    }
    tsguest_print_serial(at_host, AT_VM);
    ck_abort_msg("no \"%s\" error event within %d s", code,
                 AT_EVENT_TIMEOUT_MS / 1000);
}

/* Sends a ping with id and reads lines until its reply comes. */
static void at_raw_ping(struct at_raw *raw, int id)
{
    long long deadline = tsguest_now_ms() + AT_EVENT_TIMEOUT_MS;
    char line[64];
    json_t *j;

    snprintf(line, sizeof(line), "{\"id\":%d,\"op\":\"ping\"}\n", id);
    at_raw_write(raw, line, strlen(line));
    while ((j = at_raw_line(raw, deadline))) {
        int hit = at_int(j, "id") == id;
        int ok = json_is_true(json_object_get(j, "ok"));

        json_decref(j);
        if (hit) {
            ck_assert_msg(ok, "ping %d was not answered ok", id);
            return;
        }
    }
    ck_abort_msg("no reply to ping %d within %d s", id,
                 AT_EVENT_TIMEOUT_MS / 1000);
}

START_TEST(agent_garbage)
{
    static const char bad_json[] = "{not json\n";
    /* Ten objects deep: over the protocol's nesting limit of 8. */
    static const char deep[] = "{\"id\":3,\"op\":\"ping\",\"args\":{\"a\":{"
                               "\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{"
                               "\"h\":{}}}}}}}}}}\n";
    struct at_raw *raw = calloc(1, sizeof(*raw));
    size_t long_len = 70000;
    char *long_line = malloc(long_len);
    struct at_agent *ag;

    ck_assert_ptr_nonnull(raw);
    ck_assert_ptr_nonnull(long_line);
    /* The guest must be up, and no hv_agent may hold the socket. */
    at_close(at_connect(0));

    at_raw_open(raw);
    at_raw_write(raw, bad_json, strlen(bad_json));
    at_raw_wait_error(raw, "bad-json");
    memset(long_line, 'x', long_len - 1);
    long_line[long_len - 1] = '\n';
    at_raw_write(raw, long_line, long_len);
    free(long_line);
    at_raw_wait_error(raw, "line-too-long");
    at_raw_write(raw, deep, strlen(deep));
    at_raw_wait_error(raw, "bad-json");
    /* The same connection still works, and so does the next one. */
    at_raw_ping(raw, 7);
    at_raw_close(raw);
    free(raw);

    ag = at_connect(0);
    at_ok(ag, "ping", NULL);
}
END_TEST

/* ------------------------------------------------------------------------
 * desktop 9. The host goes away and comes back */

START_TEST(agent_reconnect)
{
    struct at_agent *ag = at_connect(0);
    struct hv_agent_state st;
    json_t *hello;
    size_t at = 0;

    at_ok(ag, "ping", NULL);
    at_close(ag);

    /* A new manager process: the guest introduces itself again. */
    ag = at_open(0);
    hello = at_wait_event(ag, "hello", &at, AT_EVENT_TIMEOUT_MS);
    ck_assert_msg(at_int(hello, "version") == 1, "hello: %s", at_json(hello));
    at_wait_event(ag, "ready", &at, AT_EVENT_TIMEOUT_MS);
    at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);
    at_state(ag, &st);
    ck_assert_msg(st.connected && st.hello && st.ready && st.healthy,
                  "after reconnecting: connected %d hello %d ready %d "
                  "healthy %d",
                  st.connected, st.hello, st.ready, st.healthy);
    ck_assert_int_eq(ag->links_up, 1);
    at_ok(ag, "ping", NULL);
    at_ok(ag, "message", json_pack("{s:s}", "text", "Welcome back"));
}
END_TEST

/* ------------------------------------------------------------------------
 * lifecycle 1. personalise: a clone gets its own name */

START_TEST(agent_personalise)
{
    static const char host[] = "desk-42";
    struct at_agent *ag = at_connect(0);
    struct hv_agent_state st;
    struct td_layout l;
    struct at_label lb;
    json_t *hello;
    size_t at = 0;

    at_ok(ag, "personalise",
          json_pack("{s:s, s:s}", "hostname", host, "machine_id",
                    "0123456789abcdef0123456789abcdef"));
    at_close(ag);

    ag = at_open(0);
    hello = at_wait_event(ag, "hello", &at, AT_EVENT_TIMEOUT_MS);
    ck_assert_msg(strcmp(at_str(hello, "hostname"), host) == 0,
                  "hello after personalise: %s", at_json(hello));
    at_state(ag, &st);
    ck_assert_str_eq(st.hostname, host);

    /* testdesk reads the hostname again by itself. */
    at_layout(&l, AT_WIDTH, AT_HEIGHT);
    lb = (struct at_label){.what = "the top bar's hostname",
                           .area = l.hostname,
                           .tx = l.hostname.x,
                           .ty = l.hostname.y,
                           .text = host,
                           .fg = TD_COLOR_TOPBAR_TEXT,
                           .bg = TD_COLOR_TOPBAR};
    at_poll(at_shows_label, &lb, "personalise");
}
END_TEST

/* ------------------------------------------------------------------------
 * lifecycle 2. lock: the screen locks, the host hears it, Enter unlocks */

/* Waits for the next heartbeat and checks its locked flag. */
static void at_expect_locked(struct at_agent *ag, int locked)
{
    struct hv_agent_state st;
    size_t at = at_mark(ag);
    json_t *beat = at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);

    ck_assert_msg(json_is_boolean(json_object_get(beat, "locked")) &&
                      json_is_true(json_object_get(beat, "locked")) == locked,
                  "heartbeat, %slocked expected: %s", locked ? "" : "un",
                  at_json(beat));
    at_state(ag, &st);
    ck_assert_int_eq(st.locked, locked);
}

START_TEST(agent_lock)
{
    struct at_agent *ag = at_connect(0);
    struct td_layout l;
    struct at_label lb;
    int err;

    at_layout(&l, AT_WIDTH, AT_HEIGHT);
    at_ok(ag, "lock", NULL);
    lb = (struct at_label){.what = "the lock screen",
                           .area = l.lock,
                           .tx = l.lock_text.x,
                           .ty = l.lock_text.y,
                           .text = TD_LOCK_TEXT,
                           .fg = TD_COLOR_LOCK_TEXT,
                           .bg = TD_COLOR_LOCK};
    at_poll(at_shows_label, &lb, "lock");
    at_expect_locked(ag, 1);

    /* The user unlocks at the keyboard: the desktop is back. */
    err = tsguest_send_key(at_host, AT_VM, "ret", 0);
    ck_assert_msg(err == 0, "key press failed: %s", strerror(-err));
    lb = (struct at_label){.what = "the window's caption",
                           .area = l.label,
                           .tx = l.label.x,
                           .ty = l.label.y,
                           .text = "Type here:",
                           .fg = TD_COLOR_WINDOW_TEXT,
                           .bg = TD_COLOR_WINDOW};
    at_poll(at_shows_label, &lb, "unlock");
    at_expect_locked(ag, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * lifecycle 3. The guest reboots under a live connection */

START_TEST(agent_reset)
{
    struct at_agent *ag = at_connect(0);
    struct hv_agent_state st;
    char err[1024];
    size_t at;
    int boots, rc;

    boots = tsguest_serial_count(at_host, AT_VM, TSGUEST_ROOT_MOUNTED);
    ck_assert_int_gt(boots, 0);
    at = at_mark(ag);
    rc = hv_vm_reset(at_host, AT_VM, err, sizeof(err));
    ck_assert_msg(rc == 0, "reset: %s", err);
    ck_assert_msg(tsguest_wait_serial(at_host, AT_VM, TSGUEST_ROOT_MOUNTED,
                                      boots + 1, AT_BOOT_TIMEOUT_MS) == 0,
                  "the guest did not boot again after the reset");

    /* Nothing is asked of the guest from here: hv_agent alone must get
     * the rebooted agent talking again (it reconnects a channel that stays
     * silent, see HV_AGENT_SILENCE_MS). */
    at_wait_event(ag, "hello", &at, AT_BOOT_TIMEOUT_MS);
    at_wait_event(ag, "ready", &at, AT_BOOT_TIMEOUT_MS);
    at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);
    at_state(ag, &st);
    ck_assert_msg(st.connected && st.hello && st.ready && st.healthy,
                  "after the reboot: connected %d hello %d ready %d "
                  "healthy %d",
                  st.connected, st.hello, st.ready, st.healthy);
    at_ok(ag, "ping", NULL);
}
END_TEST

/* ------------------------------------------------------------------------
 * lifecycle 4. QEMU goes away and comes back: hv_agent reconnects itself */

START_TEST(agent_qemu_restart)
{
    struct at_agent *ag = at_connect(0);
    struct hv_agent_state st;
    long long deadline;
    char err[1024];
    size_t at;
    int rc;

    rc = hv_vm_poweroff(at_host, AT_VM, err, sizeof(err));
    ck_assert_msg(rc == 0, "poweroff: %s", err);
    /* The manager notices: the connection is down, the guest unhealthy. */
    deadline = tsguest_now_ms() + AT_EVENT_TIMEOUT_MS;
    do {
        at_pump(ag, 100);
        at_state(ag, &st);
    } while (st.connected && tsguest_now_ms() < deadline);
    ck_assert_msg(!st.connected && !st.healthy && ag->links_down == 1,
                  "after poweroff: connected %d healthy %d, %d link downs",
                  st.connected, st.healthy, ag->links_down);

    at = at_mark(ag);
    rc = hv_vm_start(at_host, AT_VM, err, sizeof(err));
    ck_assert_msg(rc == 0, "start: %s", err);
    /* Same hv_agent, never told: it finds the new agent.sock by itself. */
    at_wait_event(ag, "hello", &at, AT_BOOT_TIMEOUT_MS);
    at_wait_event(ag, "ready", &at, AT_BOOT_TIMEOUT_MS);
    at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);
    at_state(ag, &st);
    ck_assert_msg(st.connected && st.hello && st.ready && st.healthy,
                  "after the restart: connected %d hello %d ready %d "
                  "healthy %d",
                  st.connected, st.hello, st.ready, st.healthy);
    /* Twice at least: a slow boot may also trip the silence reconnect. */
    ck_assert_int_ge(ag->links_up, 2);
    at_ok(ag, "ping", NULL);
}
END_TEST

/* ------------------------------------------------------------------------
 * lifecycle 5. A guest that stops beating turns unhealthy */

START_TEST(agent_unhealthy)
{
    struct at_agent *ag = at_connect(AT_PAUSE_HEARTBEAT_MS);
    struct hv_vm_status vm;
    struct hv_agent_state st;
    long long deadline;
    char err[1024];
    size_t at = at_mark(ag);
    int rc, went_unhealthy = 0, connected = 0;

    /* Right after a heartbeat it is healthy, whatever the timeout. */
    at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);
    at_state(ag, &st);
    ck_assert_msg(st.healthy, "not healthy right after a heartbeat");

    rc = hv_vm_pause(at_host, AT_VM, err, sizeof(err));
    ck_assert_msg(rc == 0, "pause: %s", err);
    rc = hv_vm_status(at_host, AT_VM, &vm, err, sizeof(err));
    ck_assert_msg(rc == 0 && strcmp(vm.state, "paused") == 0, "after pause: %s",
                  rc == 0 ? vm.state : err);
    deadline = tsguest_now_ms() + AT_PAUSE_HEARTBEAT_MS + AT_EVENT_TIMEOUT_MS;
    while (tsguest_now_ms() < deadline) {
        at_pump(ag, 100);
        at_state(ag, &st);
        if (!st.healthy) {
            went_unhealthy = 1;
            connected = st.connected;
            break;
        }
    }
    /* Resume before asserting, so that the guest outlives a failure. */
    rc = hv_vm_resume(at_host, AT_VM, err, sizeof(err));
    ck_assert_msg(rc == 0, "resume: %s", err);
    ck_assert_msg(went_unhealthy, "still healthy %d s into a pause",
                  (AT_PAUSE_HEARTBEAT_MS + AT_EVENT_TIMEOUT_MS) / 1000);
    /* Silence, not a lost connection, made it unhealthy. */
    ck_assert_msg(connected, "the connection dropped during the pause");

    at = at_mark(ag);
    at_wait_event(ag, "heartbeat", &at, AT_EVENT_TIMEOUT_MS);
    at_state(ag, &st);
    ck_assert_msg(st.healthy, "not healthy after a heartbeat post resume");
    at_ok(ag, "ping", NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */

static TCase *at_tcase(const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_set_timeout(tc, AT_TCASE_TIMEOUT_S);
    tcase_add_unchecked_fixture(tc, at_start, at_stop);
    tcase_add_checked_fixture(tc, at_test_setup, at_test_teardown);
    return tc;
}

static Suite *agent_suite(void)
{
    Suite *s = suite_create("agent");
    TCase *desk = at_tcase("desktop"), *life = at_tcase("lifecycle");

    /* The screen tests run at 1024x768: resolution comes after them. */
    tcase_add_test(desk, agent_ready);
    tcase_add_test(desk, agent_session_shown);
    tcase_add_test(desk, agent_message);
    tcase_add_test(desk, agent_logoff_click);
    tcase_add_test(desk, agent_clipboard);
    tcase_add_test(desk, agent_resolution);
    tcase_add_test(desk, agent_bad_requests);
    tcase_add_test(desk, agent_garbage);
    tcase_add_test(desk, agent_reconnect);
    suite_add_tcase(s, desk);

    tcase_add_test(life, agent_personalise);
    tcase_add_test(life, agent_lock);
    tcase_add_test(life, agent_reset);
    tcase_add_test(life, agent_qemu_restart);
    tcase_add_test(life, agent_unhealthy);
    suite_add_tcase(s, life);
    return s;
}

int main(void)
{
    return tsguest_run_suite(agent_suite());
}
