/*
 * tsdisplay.c - deskpool-display for tests (see tsdisplay.h).
 */
#include "tsdisplay.h"

#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsbroker.h"
#include "tsguest.h"

void tsdisplay_start(struct tsdisplay *d, const char *state_dir)
{
    tsdisplay_start_broker(d, state_dir, NULL);
}

static void tsdisplay_launch(struct tsdisplay *d, const char *state_dir,
                             const char *broker_socket, int rdp);

void tsdisplay_start_broker(struct tsdisplay *d, const char *state_dir,
                            const char *broker_socket)
{
    tsdisplay_launch(d, state_dir, broker_socket, 0);
}

void tsdisplay_start_rdp(struct tsdisplay *d, const char *state_dir,
                         const char *broker_socket)
{
    tsdisplay_launch(d, state_dir, broker_socket, 1);
}

void tsdisplay_start_for(struct tsdisplay *d, struct tsbroker *b, int rdp)
{
    char sock[sizeof(b->dir) + 16];

    snprintf(sock, sizeof(sock), "%s/broker.sock", b->dir);
    tsdisplay_launch(d, b->vm, sock, rdp);
    snprintf(b->display, sizeof(b->display), "%s", d->ctl);
    tsbroker_set(b, "display_gateway", d->gw);
}

int tsdisplay_rdp_port(const struct tsdisplay *d)
{
    long long until = tsguest_now_ms() + 10000;

    for (;;) {
        char line[512];
        FILE *f = fopen(d->log, "r");
        int port = 0;

        while (f && fgets(line, sizeof(line), f)) {
            const char *p = strstr(line, "RDP clients on ");

            if (p && (p = strstr(p, " port ")))
                port = atoi(p + 6);
        }
        if (f)
            fclose(f);
        if (port > 0)
            return port;
        ck_assert_msg(tsguest_now_ms() < until, "no RDP port in %s", d->log);
        tsguest_sleep_ms(50);
    }
}

static void tsdisplay_launch(struct tsdisplay *d, const char *state_dir,
                             const char *broker_socket, int rdp)
{
    static int serial;
    const char *bin = getenv("DESKPOOL_BIN_DIR");
    char exe[512];

    ck_assert_msg(bin != NULL, "DESKPOOL_BIN_DIR is not set");
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s/dd%d-%d", tsguest_root(),
             (int)getpid(), ++serial);
    ck_assert_int_eq(mkdir(d->dir, 0700), 0);
    snprintf(d->ctl, sizeof(d->ctl), "%s/ctl.sock", d->dir);
    snprintf(d->gw, sizeof(d->gw), "%s/gw.sock", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/display.log", d->dir);
    snprintf(exe, sizeof(exe), "%s/deskpool-display", bin);
    d->pid = fork();
    ck_assert_int_ge(d->pid, 0);
    if (d->pid == 0) {
        char *argv[] = {exe,         "--state-dir",  (char *)state_dir,
                        "--control", d->ctl,         "--gateway",
                        d->gw,       "--vnc-listen", "127.0.0.1:0",
                        "--user",    "nobody",       NULL,
                        NULL,        NULL,           NULL,
                        NULL};
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600), n = 11;

        if (broker_socket) {
            argv[n++] = "--broker";
            argv[n++] = (char *)broker_socket;
        }
        /* tests never take the real port 3389 (the default) */
        argv[n++] = "--rdp-listen";
        argv[n++] = rdp ? "127.0.0.1:0" : "";
        dup2(fd, 1); /* FreeRDP logs INFO lines on stdout */
        dup2(fd, 2);
        execv(exe, argv);
        _exit(127);
    }
}

void tsdisplay_stop(struct tsdisplay *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
    /* Under `make SANITIZE=1` the daemon and its session processes
     * report memory errors and leaks to this log: they fail the test. */
    ck_assert_msg(!tsdisplay_log_contains(d, "Sanitizer") &&
                      !tsdisplay_log_contains(d, "runtime error"),
                  "sanitizer report in %s", d->log);
}

int tsdisplay_unix_connect(const char *path, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    long long deadline = tsguest_now_ms() + timeout_ms;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        close(fd);
        if (tsguest_now_ms() > deadline)
            return -1;
        tsguest_sleep_ms(50);
    }
}

json_t *tsdisplay_read_json(int fd)
{
    char line[16384];
    size_t n = 0;

    while (n + 1 < sizeof(line)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;

        if (poll(&p, 1, 10000) <= 0 || read(fd, &c, 1) != 1)
            return NULL;
        if (c == '\n')
            break;
        line[n++] = c;
    }
    line[n] = '\0';
    return json_loads(line, 0, NULL);
}

int tsdisplay_ctl_open(const struct tsdisplay *d)
{
    int fd = tsdisplay_unix_connect(d->ctl, 10000);
    json_t *hello;

    ck_assert_msg(fd >= 0, "the daemon's control socket never came up");
    hello = tsdisplay_read_json(fd);
    ck_assert_msg(hello != NULL, "no hello from the daemon");
    ck_assert_str_eq(json_string_value(json_object_get(hello, "event")),
                     "hello");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(hello, "data"), "version")),
                     1);
    json_decref(hello);
    return fd;
}

static void tsdisplay_send(int fd, const char *text)
{
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

json_t *tsdisplay_request(int fd, const char *line)
{
    json_t *req = json_loads(line, 0, NULL);
    json_int_t id = json_integer_value(json_object_get(req, "id"));

    json_decref(req);
    tsdisplay_send(fd, line);
    tsdisplay_send(fd, "\n");
    for (;;) {
        json_t *m = tsdisplay_read_json(fd);

        ck_assert_msg(m != NULL, "no reply to %s", line);
        if (json_object_get(m, "id") &&
            json_integer_value(json_object_get(m, "id")) == id)
            return m;
        json_decref(m);
    }
}

char *tsdisplay_issue(int fd, const char *kind, const char *desktop,
                      const char *user, int ttl, int *port)
{
    char line[384];
    json_t *r, *res;
    char *cred;

    snprintf(line, sizeof(line),
             "{\"id\":7,\"op\":\"issue\",\"args\":{\"kind\":\"%s\","
             "\"desktop\":\"%s\",\"user\":\"%s\",\"ttl\":%d}}",
             kind, desktop, user, ttl);
    r = tsdisplay_request(fd, line);
    ck_assert_msg(json_is_true(json_object_get(r, "ok")), "issue failed: %s",
                  json_string_value(json_object_get(r, "message")));
    res = json_object_get(r, "result");
    cred = strdup(json_string_value(json_object_get(res, "credential")));
    if (port)
        *port = (int)json_integer_value(json_object_get(res, "port"));
    json_decref(r);
    return cred;
}

json_t *tsdisplay_wait_event(int fd, const char *name)
{
    for (;;) {
        json_t *m = tsdisplay_read_json(fd);
        const char *ev;

        ck_assert_msg(m != NULL, "no %s event", name);
        ev = json_string_value(json_object_get(m, "event"));
        if (ev && !strcmp(ev, name))
            return m;
        json_decref(m);
    }
}

int tsdisplay_log_contains(const struct tsdisplay *d, const char *text)
{
    static char buf[1 << 20];
    int fd = open(d->log, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    if (fd >= 0)
        close(fd);
    if (n < 0)
        return 0;
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

static void tsdisplay_recv(int fd, void *buf, size_t n)
{
    struct timeval tv = {.tv_sec = 20};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ck_assert_msg(recv(fd, buf, n, MSG_WAITALL) == (ssize_t)n,
                  "the server closed the connection or said nothing");
}

int tsdisplay_gateway(const struct tsdisplay *d, const char *preamble,
                      char **reason)
{
    int fd = tsdisplay_unix_connect(d->gw, 5000);
    unsigned char n, len[4], result[4], type;
    char version[13] = {0};
    uint32_t l;

    *reason = NULL;
    ck_assert_int_ge(fd, 0);
    tsdisplay_send(fd, preamble);
    tsdisplay_recv(fd, version, 12);
    ck_assert_str_eq(version, "RFB 003.008\n");
    tsdisplay_send(fd, "RFB 003.008\n");
    tsdisplay_recv(fd, &n, 1);
    if (n == 0) {
        tsdisplay_recv(fd, len, 4);
        l = (uint32_t)len[0] << 24 | len[1] << 16 | len[2] << 8 | len[3];
        ck_assert_uint_lt(l, 1024);
        *reason = calloc(1, l + 1);
        tsdisplay_recv(fd, *reason, l);
        close(fd);
        return -1;
    }
    ck_assert_int_eq(n, 1);
    tsdisplay_recv(fd, &type, 1);
    ck_assert_int_eq(type, 1); /* None: the ticket was the credential */
    ck_assert_int_eq(write(fd, &type, 1), 1);
    tsdisplay_recv(fd, result, 4);
    ck_assert_int_eq(result[3], 0);
    return fd;
}
