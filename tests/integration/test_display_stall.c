/*
 * test_display_stall.c - a client that stops reading must not hold up
 * anyone else, and gets the desktop's latest state, coalesced, when it
 * reads again (issue 5: "frames are coalesced, never queued without
 * bound").
 *
 * Two raw RFB clients come in through deskpool-display's gateway socket
 * with tickets, as noVNC behind the broker would: A asks for a whole
 * frame and then reads nothing while text is typed into the desktop; B
 * keeps reading. B must see the typing as it happens; A's session process
 * must stay small; when A reads again it must catch up in a few updates
 * (not one per keystroke) and end up showing what the screen shows.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "td_layout.h"
#include "tsbench.h"
#include "tsdisplay.h"
#include "tsguest.h"
#include "tsppm.h"

#define VM              "stall"
#define BOOT_TIMEOUT_MS 60000
#define ENC_RAW         0
#define ENC_DESKTOPSIZE (-223)

static struct hv_host *host;
static int start_err;
static struct tsdisplay dmn;

/* A raw RFB client: 32 bpp in the server's format (XRGB8888). */
struct client {
    int fd;
    int w, h;
    uint32_t *fb;
    int updates;
};

static void recv_all(struct client *c, void *buf, size_t n)
{
    ck_assert_msg(recv(c->fd, buf, n, MSG_WAITALL) == (ssize_t)n,
                  "the server closed the connection");
}

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static void client_open(struct client *c, int ctl)
{
    char *ticket, line[128], *reason;
    uint8_t init[24], enc[12] = {2, 0, 0, 2};
    struct timeval tv = {.tv_sec = 20};
    uint32_t name_len;
    char name[256];

    ticket = tsdisplay_issue(ctl, "gateway", VM, "carol", 60, NULL);
    snprintf(line, sizeof(line), "TICKET %s\n", ticket);
    free(ticket);
    c->fd = tsdisplay_gateway(&dmn, line, &reason);
    ck_assert_msg(c->fd >= 0, "gateway refused: %s", reason);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ck_assert_int_eq(write(c->fd, "\1", 1), 1); /* ClientInit: shared */
    recv_all(c, init, sizeof(init));
    c->w = (int)be16(init);
    c->h = (int)be16(init + 2);
    name_len =
        (uint32_t)init[20] << 24 | init[21] << 16 | init[22] << 8 | init[23];
    ck_assert_uint_lt(name_len, sizeof(name));
    recv_all(c, name, name_len);
    c->fb = calloc((size_t)c->w * c->h, 4);
    /* SetEncodings: raw, DesktopSize. */
    enc[4 + 3] = ENC_RAW;
    enc[8] = enc[9] = enc[10] = 0xff;
    enc[11] = (uint8_t)(ENC_DESKTOPSIZE & 0xff);
    ck_assert_int_eq(write(c->fd, enc, sizeof(enc)), (ssize_t)sizeof(enc));
}

static void client_request(struct client *c, int incremental)
{
    uint8_t m[10] = {3,
                     (uint8_t)incremental,
                     0,
                     0,
                     0,
                     0,
                     (uint8_t)(c->w >> 8),
                     (uint8_t)c->w,
                     (uint8_t)(c->h >> 8),
                     (uint8_t)c->h};

    ck_assert_int_eq(write(c->fd, m, sizeof(m)), (ssize_t)sizeof(m));
}

/* Reads one FramebufferUpdate (raw rectangles, DesktopSize) if one starts
 * within timeout_ms. Returns 1 (read) or 0 (nothing came). */
static int client_read_update(struct client *c, int timeout_ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    uint8_t hdr[4], r[12];
    unsigned n, i;

    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    recv_all(c, hdr, 4);
    ck_assert_int_eq(hdr[0], 0); /* FramebufferUpdate */
    n = be16(hdr + 2);
    for (i = 0; i < n; i++) {
        int x, y, w, h, enc, row;

        recv_all(c, r, 12);
        x = (int)be16(r);
        y = (int)be16(r + 2);
        w = (int)be16(r + 4);
        h = (int)be16(r + 6);
        enc = (int)((uint32_t)r[8] << 24 | r[9] << 16 | r[10] << 8 | r[11]);
        if (enc == ENC_DESKTOPSIZE) {
            c->w = w;
            c->h = h;
            free(c->fb);
            c->fb = calloc((size_t)w * h, 4);
            continue;
        }
        ck_assert_int_eq(enc, ENC_RAW);
        ck_assert(x + w <= c->w && y + h <= c->h);
        for (row = 0; row < h; row++)
            recv_all(c, c->fb + (size_t)(y + row) * c->w + x, (size_t)w * 4);
    }
    c->updates++;
    return 1;
}

static void client_close(struct client *c)
{
    close(c->fd);
    free(c->fb);
}

/* Pixels of c's framebuffer that differ from a screendump, below the top
 * bar (its clock ticks). */
static long diff_below_bar(const struct client *c)
{
    struct tsppm *shot = NULL;
    long diff = 0;
    int x, y;

    ck_assert_int_eq(tsguest_screendump(host, VM, &shot), 0);
    ck_assert_int_eq(tsppm_width(shot), c->w);
    ck_assert_int_eq(tsppm_height(shot), c->h);
    for (y = TD_TOPBAR_H; y < c->h; y++)
        for (x = 0; x < c->w; x++)
            diff += tsppm_pixel(shot, x, y) != c->fb[(size_t)y * c->w + x];
    tsppm_free(shot);
    return diff;
}

/* The pid of the session process whose peer is not B's: sessions are
 * listed in id order, A came first. */
static pid_t first_session_pid(int ctl)
{
    json_t *r = tsdisplay_request(ctl, "{\"id\":3,\"op\":\"sessions\"}");
    json_t *list = json_object_get(json_object_get(r, "result"), "sessions");
    pid_t pid;

    ck_assert_uint_eq(json_array_size(list), 2);
    pid = (pid_t)json_integer_value(
        json_object_get(json_array_get(list, 0), "pid"));
    json_decref(r);
    return pid;
}

START_TEST(stalled_client_holds_up_nobody)
{
    struct client a, b;
    int ctl, b_during = 0, a_catchup = 0, i;
    long long until;
    long rss;

    ck_assert_msg(start_err == 0, "guest did not start");
    ck_assert_msg(
        tsguest_wait_serial(host, VM, TSGUEST_READY, 1, BOOT_TIMEOUT_MS) == 0,
        "testdesk never became ready");
    ctl = tsdisplay_ctl_open(&dmn);
    client_open(&a, ctl);
    client_open(&b, ctl);

    /* A asks for a whole frame, then reads nothing. */
    client_request(&a, 0);
    /* B follows the desktop while text is typed. */
    client_request(&b, 0);
    ck_assert(client_read_update(&b, 10000));
    client_request(&b, 1);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(tsguest_type_text(host, VM, "stalled clients "), 0);
        until = tsguest_now_ms() + 300;
        while (tsguest_now_ms() < until)
            if (client_read_update(&b, 50)) {
                b_during++;
                client_request(&b, 1);
            }
    }
    ck_assert_msg(b_during >= 3, "B got %d updates while A stalled", b_during);

    /* A's session buffers nothing beyond its own frame. */
    rss = tsbench_rss_kib(first_session_pid(ctl));
    ck_assert_msg(rss > 0 && rss < 96 * 1024,
                  "stalled session's RSS is %ld KiB", rss);

    /* A reads again: a few updates bring it up to date. */
    until = tsguest_now_ms() + 15000;
    while (tsguest_now_ms() < until && diff_below_bar(&a) != 0) {
        if (client_read_update(&a, 2000)) {
            a_catchup++;
            client_request(&a, 1);
        }
    }
    ck_assert_msg(diff_below_bar(&a) == 0,
                  "A never caught up with the screen (%d updates)", a_catchup);
    ck_assert_msg(a_catchup <= 6,
                  "A caught up in %d updates: typed text was queued, not "
                  "coalesced",
                  a_catchup);
    client_close(&a);
    client_close(&b);
    close(ctl);
}
END_TEST

static void setup(void)
{
    start_err = tsguest_host_start(&host, VM, "testdesk.mode=idle");
    if (host)
        tsdisplay_start(&dmn, hv_host_state_dir(host));
}

static void teardown(void)
{
    tsdisplay_stop(&dmn);
    tsguest_host_close(host);
    host = NULL;
}

int main(void)
{
    Suite *s = suite_create("display_stall");
    TCase *tc = tcase_create("stall");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stalled_client_holds_up_nobody);
    suite_add_tcase(s, tc);
    return tsguest_run_suite(s);
}
