/*
 * test_display_broker_wait.c - an RDP password login the broker has not
 * answered yet must not stop deskpool-display from serving anyone else.
 *
 * The daemon has one loop for every client and the control socket; a
 * password login goes to the broker, whose PAM may take up to 15 s
 * (failure delays). The daemon asks on a worker thread (ds_async) and its
 * loop goes on. Here a fake broker (a thread of this test on a unix
 * socket, speaking the local API's JSON lines) holds an RDP client's
 * "login" request unanswered; meanwhile a VNC credential is issued on the
 * control socket and a VNC client connects with it and gets the desktop.
 * Only then is the login answered "denied", and the RDP client must be
 * refused with the broker's reason.
 *
 * Why it fails when the daemon blocks: a daemon that waits for the
 * broker in its loop (dp_rpc_request() there, as it did before ds_async)
 * answers neither the control socket's "issue" nor the VNC client until
 * the login is answered or its 15 s timeout passes, and the fake broker
 * answers only after the VNC client got in (or gave up). So the issue
 * request gets no reply (tsdisplay's 10 s), which is how the synchronous
 * daemon fails here; and were the VNC client served only after the daemon
 * gave up on the login, the fake broker would have seen the daemon hang
 * up on it first, the RDP client would have been refused already, and
 * with "broker not available" rather than the broker's reason: each of
 * these fails the test, so no timing can make a blocking daemon pass.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dp_msg.h"
#include "dp_unix.h"
#include "tsdisplay.h"
#include "tsguest.h"
#include "tsrdp.h"
#include "tsvnc.h"

#define VM              "bwait"
#define BOOT_TIMEOUT_MS 60000
#define LOGIN_WAIT_MS   20000 /* for the login to reach the fake broker */
#define VNC_BOUND_MS    10000 /* the VNC client's connect and first frame */
#define REFUSAL_WAIT_MS 20000 /* for the RDP client, once answered */
#define FB_CONNS        16
#define FB_OPS          64

static struct hv_host *host;
static int start_err;
static struct tsdisplay dmn;

/* ------------------------------------------------------------------------
 * A fake broker: the local API's framing (hello event, then JSON-lines
 * requests and replies), one thread polling every connection. It holds
 * the first "login" until released and answers everything else "unknown"
 * at once (the daemon also reports sessions, and waits for that answer).
 */

struct fb_conn {
    int fd;
    struct dp_lines lines;
};

struct fake_broker {
    char path[256];
    int lfd;
    int wake[2]; /* a byte: look at release and stop */
    pthread_t thread;
    int started;
    struct fb_conn conns[FB_CONNS];
    int held_fd; /* the held login's connection, -1 if none */
    json_int_t held_id;

    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t cond;
    char ops[FB_OPS][32];
    int n_ops;
    int login_seen;
    int login_held; /* received, not answered, the daemon still waits */
    char login_user[64], login_password[64], login_protocol[16];
    int release, stop;
};

static struct fake_broker fb;

static void fb_send(int fd, char *line)
{
    if (line)
        (void)!send(fd, line, strlen(line), MSG_NOSIGNAL);
    free(line);
}

static void fb_copy_arg(const json_t *args, const char *key, char *out,
                        size_t size)
{
    snprintf(out, size, "%s",
             json_string_value(json_object_get(args, key)) ?: "");
}

/* Records the request; 1 when it is a login to hold. */
static int fb_record(struct fake_broker *b, const struct dp_msg *m)
{
    int hold = 0;

    pthread_mutex_lock(&b->lock);
    if (b->n_ops < FB_OPS)
        snprintf(b->ops[b->n_ops++], sizeof(b->ops[0]), "%s", m->name);
    if (!strcmp(m->name, "login") && !b->login_seen) {
        b->login_seen = b->login_held = hold = 1;
        fb_copy_arg(m->body, "user", b->login_user, sizeof(b->login_user));
        fb_copy_arg(m->body, "password", b->login_password,
                    sizeof(b->login_password));
        fb_copy_arg(m->body, "protocol", b->login_protocol,
                    sizeof(b->login_protocol));
        pthread_cond_broadcast(&b->cond);
    }
    pthread_mutex_unlock(&b->lock);
    return hold;
}

struct fb_line_ctx {
    struct fake_broker *b;
    int fd;
};

static void fb_line(void *arg, char *line, size_t len)
{
    struct fb_line_ctx *x = arg;
    struct dp_msg m;
    const char *err;
    char detail[128];

    if (!line || dp_msg_parse(line, len, &m, &err, detail, sizeof(detail)))
        return;
    if (m.kind == DP_MSG_REQUEST) {
        if (fb_record(x->b, &m)) {
            x->b->held_fd = x->fd;
            x->b->held_id = m.id;
        } else {
            fb_send(x->fd, dp_msg_reply_error(m.id, "unknown", "no such op"));
        }
    }
    dp_msg_free(&m);
}

static void fb_close_conn(struct fake_broker *b, struct fb_conn *c)
{
    if (b->held_fd == c->fd) { /* the daemon gave up waiting */
        b->held_fd = -1;
        pthread_mutex_lock(&b->lock);
        b->login_held = 0;
        pthread_mutex_unlock(&b->lock);
    }
    close(c->fd);
    dp_lines_free(&c->lines);
    c->fd = -1;
}

static void fb_accept(struct fake_broker *b)
{
    int fd = accept4(b->lfd, NULL, NULL, SOCK_CLOEXEC), i;

    if (fd < 0)
        return;
    for (i = 0; i < FB_CONNS; i++)
        if (b->conns[i].fd < 0 && dp_lines_init(&b->conns[i].lines) == 0) {
            b->conns[i].fd = fd;
            fb_send(fd,
                    dp_msg_event("hello", json_pack("{si ss}", "version", 1,
                                                    "service", "fake-broker")));
            return;
        }
    close(fd);
}

static void fb_read(struct fake_broker *b, struct fb_conn *c)
{
    struct fb_line_ctx x = {b, c->fd};
    char buf[4096];
    ssize_t n = read(c->fd, buf, sizeof(buf));

    if (n <= 0)
        fb_close_conn(b, c);
    else
        dp_lines_feed(&c->lines, buf, (size_t)n, fb_line, &x);
}

/* After a wake byte: answers the held login if released; 1 to stop. */
static int fb_woken(struct fake_broker *b)
{
    char byte;
    int release, stop;

    (void)!read(b->wake[0], &byte, 1);
    pthread_mutex_lock(&b->lock);
    release = b->release && b->login_held;
    stop = b->stop;
    if (release)
        b->login_held = 0;
    pthread_mutex_unlock(&b->lock);
    if (release && b->held_fd >= 0)
        fb_send(b->held_fd, dp_msg_reply_error(b->held_id, "denied",
                                               "wrong user name or password"));
    return stop;
}

static void *fb_main(void *arg)
{
    struct fake_broker *b = arg;
    int i;

    for (;;) {
        struct pollfd p[FB_CONNS + 2];

        p[0] = (struct pollfd){.fd = b->lfd, .events = POLLIN};
        p[1] = (struct pollfd){.fd = b->wake[0], .events = POLLIN};
        for (i = 0; i < FB_CONNS; i++)
            p[i + 2] = (struct pollfd){.fd = b->conns[i].fd, .events = POLLIN};
        if (poll(p, FB_CONNS + 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents && fb_woken(b))
            break;
        for (i = 0; i < FB_CONNS; i++)
            if (b->conns[i].fd >= 0 && p[i + 2].revents)
                fb_read(b, &b->conns[i]);
        if (p[0].revents)
            fb_accept(b);
    }
    for (i = 0; i < FB_CONNS; i++)
        if (b->conns[i].fd >= 0)
            fb_close_conn(b, &b->conns[i]);
    return NULL;
}

static void fb_poke(struct fake_broker *b)
{
    ck_assert_int_eq(write(b->wake[1], "x", 1), 1);
}

static void fb_start(struct fake_broker *b)
{
    int i;

    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->held_fd = -1;
    for (i = 0; i < FB_CONNS; i++)
        b->conns[i].fd = -1;
    snprintf(b->path, sizeof(b->path), "%s/fb%d.sock", tsguest_root(),
             (int)getpid());
    b->lfd = dp_unix_listen(b->path, 16, 0);
    ck_assert_msg(b->lfd >= 0, "listen at %s: %s", b->path, strerror(-b->lfd));
    ck_assert_int_eq(pipe2(b->wake, O_CLOEXEC), 0);
    ck_assert_int_eq(pthread_create(&b->thread, NULL, fb_main, b), 0);
    b->started = 1;
}

static void fb_release(struct fake_broker *b)
{
    pthread_mutex_lock(&b->lock);
    b->release = 1;
    pthread_mutex_unlock(&b->lock);
    fb_poke(b);
}

static void fb_stop(struct fake_broker *b)
{
    if (!b->started)
        return;
    pthread_mutex_lock(&b->lock);
    b->stop = 1;
    pthread_mutex_unlock(&b->lock);
    fb_poke(b);
    pthread_join(b->thread, NULL);
    b->started = 0;
    close(b->wake[0]);
    close(b->wake[1]);
    close(b->lfd);
    unlink(b->path);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Waits up to ms for a login to arrive; 1 if one did. */
static int fb_wait_login(struct fake_broker *b, int ms)
{
    struct timespec until;
    int seen;

    deadline_in(&until, ms);
    pthread_mutex_lock(&b->lock);
    while (!b->login_seen &&
           pthread_cond_timedwait(&b->cond, &b->lock, &until) == 0)
        ;
    seen = b->login_seen;
    pthread_mutex_unlock(&b->lock);
    return seen;
}

static int fb_holding(struct fake_broker *b)
{
    int held;

    pthread_mutex_lock(&b->lock);
    held = b->login_held;
    pthread_mutex_unlock(&b->lock);
    return held;
}

/* How many requests of op the fake broker got. */
static int fb_count(struct fake_broker *b, const char *op)
{
    int i, n = 0;

    pthread_mutex_lock(&b->lock);
    for (i = 0; i < b->n_ops; i++)
        n += !strcmp(b->ops[i], op);
    pthread_mutex_unlock(&b->lock);
    return n;
}

/* ------------------------------------------------------------------------
 * An RDP client logging in on a thread of its own (tsrdp_connect() blocks
 * until the session is up or refused). */

struct rdp_login {
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, r;
    char why[256];
};

static void *rdp_login_main(void *arg)
{
    struct rdp_login *l = arg;
    struct tsrdp *c = NULL;
    char why[256] = "";
    int r = tsrdp_connect(&c, l->port, "alice", "pw", why, sizeof(why));

    tsrdp_close(c);
    pthread_mutex_lock(&l->lock);
    l->r = r;
    snprintf(l->why, sizeof(l->why), "%s", why);
    l->done = 1;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

static void rdp_login_start(struct rdp_login *l, int port)
{
    memset(l, 0, sizeof(*l));
    l->port = port;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    ck_assert_int_eq(pthread_create(&l->thread, NULL, rdp_login_main, l), 0);
}

static int rdp_login_done(struct rdp_login *l)
{
    int done;

    pthread_mutex_lock(&l->lock);
    done = l->done;
    pthread_mutex_unlock(&l->lock);
    return done;
}

/* Waits up to ms for the client to finish and joins it; 1 if it did (a
 * client still stuck is left to the process's end). */
static int rdp_login_join(struct rdp_login *l, int ms)
{
    struct timespec until;
    int done;

    deadline_in(&until, ms);
    pthread_mutex_lock(&l->lock);
    while (!l->done && pthread_cond_timedwait(&l->cond, &l->lock, &until) == 0)
        ;
    done = l->done;
    pthread_mutex_unlock(&l->lock);
    if (done)
        pthread_join(l->thread, NULL);
    return done;
}

/* ------------------------------------------------------------------------
 * The test */

/* What the VNC client saw while the login was held. */
struct vnc_seen {
    int r;
    char error[256];
    int width, height;
    int login_held, rdp_done; /* when it was in */
};

static void vnc_while_held(int ctl, struct rdp_login *l, struct vnc_seen *v)
{
    struct tsvnc_options o = {.encodings = "raw",
                              .quality = -1,
                              .compress = -1,
                              .timeout_ms = VNC_BOUND_MS};
    struct tsvnc *c = NULL;
    char *pw;
    int port = 0;

    memset(v, 0, sizeof(*v));
    pw = tsdisplay_issue(ctl, "vnc", VM, "carol", 60, &port);
    v->r = tsvnc_connect_tcp(&c, "127.0.0.1", port, pw, &o);
    free(pw);
    v->login_held = fb_holding(&fb);
    v->rdp_done = rdp_login_done(l);
    if (v->r == 0) {
        tsvnc_pixels(c, &v->width, &v->height);
        tsvnc_close(c);
    } else {
        snprintf(v->error, sizeof(v->error), "%s", tsvnc_last_connect_error());
    }
}

START_TEST(held_login_does_not_stop_vnc)
{
    struct rdp_login l;
    struct vnc_seen v = {0};
    int ctl, seen, joined;

    ck_assert_msg(start_err == 0, "the test guest did not start");
    ck_assert_msg(
        tsguest_wait_serial(host, VM, TSGUEST_READY, 1, BOOT_TIMEOUT_MS) == 0,
        "testdesk never became ready");
    ctl = tsdisplay_ctl_open(&dmn);

    rdp_login_start(&l, tsdisplay_rdp_port(&dmn));
    seen = fb_wait_login(&fb, LOGIN_WAIT_MS);
    if (seen)
        vnc_while_held(ctl, &l, &v);
    fb_release(&fb);
    joined = rdp_login_join(&l, REFUSAL_WAIT_MS);

    ck_assert_msg(seen, "the login never reached the broker");
    ck_assert_int_eq(fb_count(&fb, "login"), 1);
    ck_assert_str_eq(fb.login_user, "alice");
    ck_assert_str_eq(fb.login_password, "pw");
    ck_assert_str_eq(fb.login_protocol, "rdp");
    ck_assert_msg(v.r == 0, "VNC client while the login was held: %s", v.error);
    ck_assert_int_eq(v.width, TSGUEST_WIDTH);
    ck_assert_int_eq(v.height, TSGUEST_HEIGHT);
    ck_assert_msg(v.login_held,
                  "the daemon stopped waiting for the login before VNC got in");
    ck_assert_msg(!v.rdp_done, "the RDP client ended before VNC got in");

    ck_assert_msg(joined, "the RDP client was not refused after the answer");
    ck_assert_msg(l.r != 0, "the RDP client got in with a denied login");
    ck_assert_msg(strstr(l.why, "INSUFFICIENT_PRIVILEGES"), "refusal: %s",
                  l.why);
    ck_assert_msg(tsdisplay_log_contains(&dmn, "rdp client 127.0.0.1:") &&
                      tsdisplay_log_contains(
                          &dmn, "refused: alice: wrong user name or password"),
                  "the display did not log the refusal (%s)", dmn.log);
    close(ctl);
}
END_TEST

/* ------------------------------------------------------------------------
 * One guest for the suite; the fake broker and the daemon per test */

static void suite_setup(void)
{
    start_err = tsguest_host_start(&host, VM, "testdesk.mode=idle");
}

static void suite_teardown(void)
{
    tsguest_host_close(host);
    host = NULL;
}

static void test_setup(void)
{
    ck_assert_msg(host != NULL, "no test guest");
    fb_start(&fb);
    tsdisplay_start_rdp(&dmn, hv_host_state_dir(host), fb.path);
}

static void test_teardown(void)
{
    tsdisplay_stop(&dmn);
    fb_stop(&fb);
}

int main(void)
{
    Suite *s = suite_create("display_broker_wait");
    TCase *tc = tcase_create("broker_wait");

    signal(SIGPIPE, SIG_IGN);
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, test_setup, test_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, held_login_does_not_stop_vnc);
    suite_add_tcase(s, tc);
    return tsguest_run_suite(s);
}
