/*
 * Unit tests of the display daemon's broker requests off its loop
 * (display/ds_async.h), against a real JSON-lines server on a unix socket
 * that answers each request after the delay it names: a slow request
 * does not hold a quick one back, outcomes arrive on the loop's side
 * only when dispatched, errors and a silent server are reported, the
 * number in flight is bounded, and closing cancels what is left; the
 * ordered lane keeps its requests in order (a slow first one is not
 * overtaken) and closing sends none of those still waiting.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp_msg.h"
#include "dp_time.h"
#include "dp_unix.h"
#include "ds_async.h"
#include "tsguest.h"

static char dir[64], sock_path[128];
static int lfd = -1, stop_pipe[2];
static int received; /* requests the server read (atomic) */
static pthread_t server;

/* One connection: read a request line, wait its "delay_ms", answer
 * {"echo": its "value"} or the error it asks for; "silent" never answers
 * (until the client gives up). */
static void *serve_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    size_t n = 0;
    struct dp_msg m;
    const char *err;
    char detail[64], *line = NULL;

    while (n < sizeof(buf) - 1 && !memchr(buf, '\n', n)) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);

        if (r <= 0)
            break;
        n += (size_t)r;
    }
    if (n && dp_msg_parse(buf, strcspn(buf, "\n"), &m, &err, detail,
                          sizeof(detail)) == 0) {
        json_int_t delay =
            json_integer_value(json_object_get(m.body, "delay_ms"));
        const char *fail = json_string_value(json_object_get(m.body, "fail"));

        __atomic_add_fetch(&received, 1, __ATOMIC_SEQ_CST);
        if (json_is_true(json_object_get(m.body, "silent")))
            delay = 5000;
        usleep((useconds_t)delay * 1000);
        line = fail ? dp_msg_reply_error(m.id, fail, "as asked")
                    : dp_msg_reply_ok(
                          m.id, json_pack("{s:O}", "echo",
                                          json_object_get(m.body, "value")));
        if (write(fd, line, strlen(line)) < 0) {
            /* the client gave up */
        }
        free(line);
        dp_msg_free(&m);
    }
    close(fd);
    return NULL;
}

static void *server_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = lfd, .events = POLLIN},
                              {.fd = stop_pipe[0], .events = POLLIN}};
        pthread_t t;
        int fd;

        if (poll(p, 2, -1) < 0 || p[1].revents)
            return NULL;
        fd = accept(lfd, NULL, NULL);
        if (fd >= 0 &&
            pthread_create(&t, NULL, serve_one, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
    }
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/dpt-asyncXXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sock_path, sizeof(sock_path), "%s/broker.sock", dir);
    lfd = dp_unix_listen(sock_path, 64, 0);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(pipe(stop_pipe), 0);
    ck_assert_int_eq(pthread_create(&server, NULL, server_main, NULL), 0);
}

static void teardown(void)
{
    close(stop_pipe[1]);
    pthread_join(server, NULL);
    close(stop_pipe[0]);
    close(lfd);
    unlink(sock_path);
    rmdir(dir);
}

/* What the done callbacks saw, in order. */
struct outcome {
    int n;
    int r[64];
    char what[64][64];
};

static void record(void *arg, int r, json_t *result, const char *code,
                   const char *message)
{
    struct outcome *o = arg;
    const char *echo = json_string_value(json_object_get(result, "echo"));

    o->r[o->n] = r;
    snprintf(o->what[o->n], sizeof(o->what[0]), "%s",
             r == 0            ? (echo ? echo : "?")
             : r == -EREMOTEIO ? code
                               : message);
    o->n++;
}

/* Dispatches until want outcomes came or ms passed. */
static void wait_for(struct ds_async *a, struct outcome *o, int want, int ms)
{
    long long until = (long long)dp_time_now_ms() + ms;

    while (o->n < want && (long long)dp_time_now_ms() < until) {
        struct pollfd p = {.fd = ds_async_fd(a), .events = POLLIN};

        if (poll(&p, 1, 100) > 0)
            ds_async_dispatch(a);
    }
}

/* A request the server answers with value after delay_ms, on the
 * unordered workers or (ordered) the ordered lane. */
static int ask_on(struct ds_async *a, struct outcome *o, const char *value,
                  int delay_ms, int ordered)
{
    json_t *args =
        json_pack("{s:s, s:i}", "value", value, "delay_ms", delay_ms);

    return ordered
               ? ds_async_request_ordered(a, sock_path, "test", args, 3000,
                                          record, o)
               : ds_async_request(a, sock_path, "test", args, 3000, record, o);
}

static int ask(struct ds_async *a, struct outcome *o, const char *value,
               int delay_ms)
{
    return ask_on(a, o, value, delay_ms, 0);
}

START_TEST(quick_answer_is_not_held_by_a_slow_one)
{
    struct ds_async *a;
    struct outcome o = {0};
    long long t0 = (long long)dp_time_now_ms();

    ck_assert_int_eq(ds_async_open(&a), 0);
    ck_assert_int_eq(ask(a, &o, "slow", 800), 0);
    ck_assert_int_eq(ask(a, &o, "quick", 0), 0);
    /* the calls returned at once, and nothing is called before dispatch */
    ck_assert_int_lt((long long)dp_time_now_ms() - t0, 500);
    ck_assert_int_eq(o.n, 0);
    wait_for(a, &o, 2, 5000);
    ck_assert_int_eq(o.n, 2);
    ck_assert_str_eq(o.what[0], "quick");
    ck_assert_str_eq(o.what[1], "slow");
    ck_assert_int_eq(o.r[0], 0);
    ds_async_close(a);
}
END_TEST

START_TEST(errors_come_back)
{
    struct ds_async *a;
    struct outcome o = {0};

    ck_assert_int_eq(ds_async_open(&a), 0);
    ck_assert_int_eq(ds_async_request(a, sock_path, "test",
                                      json_pack("{s:s}", "fail", "used"), 3000,
                                      record, &o),
                     0);
    ck_assert_int_eq(ds_async_request(a, sock_path, "test",
                                      json_pack("{s:b}", "silent", 1), 300,
                                      record, &o),
                     0);
    ck_assert_int_eq(ds_async_request(a, "/nonexistent/broker.sock", "test",
                                      NULL, 300, record, &o),
                     0);
    wait_for(a, &o, 3, 5000);
    ck_assert_int_eq(o.n, 3);
    /* the refused connection and the server's error come first */
    for (int i = 0; i < 3; i++) {
        if (o.r[i] == -EREMOTEIO)
            ck_assert_str_eq(o.what[i], "used");
        else
            ck_assert_msg(o.r[i] == -ETIMEDOUT || o.r[i] == -ENOENT ||
                              o.r[i] == -ECONNREFUSED,
                          "outcome %d: %d (%s)", i, o.r[i], o.what[i]);
    }
    ds_async_close(a);
}
END_TEST

START_TEST(in_flight_is_bounded_and_close_cancels)
{
    struct ds_async *a;
    struct outcome o = {0};
    int i;

    ck_assert_int_eq(ds_async_open(&a), 0);
    for (i = 0; i < DS_ASYNC_MAX; i++)
        ck_assert_int_eq(ask(a, &o, "held", 300), 0);
    ck_assert_int_eq(ask(a, &o, "one too many", 0), -EBUSY);
    /* closing waits for them and reports each, undispatched, as cancelled */
    ds_async_close(a);
    ck_assert_int_eq(o.n, DS_ASYNC_MAX);
    for (i = 0; i < o.n; i++)
        ck_assert_int_eq(o.r[i], -ECANCELED);
}
END_TEST

static int ask_ordered(struct ds_async *a, struct outcome *o, const char *value,
                       int delay_ms)
{
    return ask_on(a, o, value, delay_ms, 1);
}

START_TEST(ordered_lane_keeps_the_order)
{
    struct ds_async *a;
    struct outcome o = {0};

    ck_assert_int_eq(ds_async_open(&a), 0);
    /* a slow first request is not overtaken by the quick second one */
    ck_assert_int_eq(ask_ordered(a, &o, "connected", 500), 0);
    ck_assert_int_eq(ask_ordered(a, &o, "disconnected", 0), 0);
    /* while an unordered one is not held back by either */
    ck_assert_int_eq(ask(a, &o, "other", 0), 0);
    wait_for(a, &o, 3, 5000);
    ck_assert_int_eq(o.n, 3);
    ck_assert_str_eq(o.what[0], "other");
    ck_assert_str_eq(o.what[1], "connected");
    ck_assert_str_eq(o.what[2], "disconnected");
    ds_async_close(a);
}
END_TEST

START_TEST(close_cancels_the_ordered_queue)
{
    struct ds_async *a;
    struct outcome o = {0};
    int i;

    ck_assert_int_eq(ds_async_open(&a), 0);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(ask_ordered(a, &o, "queued", 300), 0);
    while (__atomic_load_n(&received, __ATOMIC_SEQ_CST) < 1)
        usleep(10 * 1000); /* the first is on its way */
    ds_async_close(a);
    /* every done was called, as cancelled (the loop never dispatched) */
    ck_assert_int_eq(o.n, 5);
    for (i = 0; i < o.n; i++)
        ck_assert_int_eq(o.r[i], -ECANCELED);
    /* and the four still waiting were never sent */
    ck_assert_int_eq(__atomic_load_n(&received, __ATOMIC_SEQ_CST), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ds-async");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, quick_answer_is_not_held_by_a_slow_one);
    tcase_add_test(tc, errors_come_back);
    tcase_add_test(tc, in_flight_is_bounded_and_close_cancels);
    tcase_add_test(tc, ordered_lane_keeps_the_order);
    tcase_add_test(tc, close_cancels_the_ordered_queue);
    suite_add_tcase(s, tc);
    return tsguest_run_checks(s);
}
