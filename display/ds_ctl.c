/*
 * ds_ctl.c - the control socket's connections (see ds_ctl.h).
 */
#include "ds_ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dp_unix.h"

struct ds_ctl_conn {
    struct ds_ctl *owner;
    int fd; /* -1: slot free */
    int subscribed;
    int dead; /* close after this turn */
    struct dp_lines in;
    struct dp_outq out;
};

struct ds_ctl {
    int listen_fd;
    char path[108];
    ds_ctl_request_fn fn;
    void *arg;
    char *hello; /* line sent to each new connection */
    struct ds_ctl_conn conns[DS_CTL_MAX_CONNS];
};

static void ds_ctl_drop(struct ds_ctl_conn *c)
{
    if (c->fd < 0)
        return;
    close(c->fd);
    c->fd = -1;
    c->subscribed = c->dead = 0;
    dp_lines_free(&c->in);
    dp_outq_free(&c->out);
}

/* Queues a line (consumed); a peer that does not read is dropped. */
static void ds_ctl_send(struct ds_ctl_conn *c, char *line)
{
    if (c->fd < 0 || c->dead) {
        free(line);
        return;
    }
    if (!line || dp_outq_push(&c->out, line) < 0) {
        fprintf(stderr, "deskpool-display: control connection not reading: "
                        "closed\n");
        c->dead = 1;
        return;
    }
    if (dp_outq_flush(&c->out, c->fd) < 0)
        c->dead = 1;
}

int ds_ctl_open(struct ds_ctl **out, const char *path, ds_ctl_request_fn fn,
                void *arg, const char *hello_event, json_t *hello_data)
{
    struct ds_ctl *s;
    int i, err = -ENOMEM;

    *out = NULL;
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        json_decref(hello_data);
        return -ENAMETOOLONG;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        json_decref(hello_data);
        return -ENOMEM;
    }
    for (i = 0; i < DS_CTL_MAX_CONNS; i++)
        s->conns[i].fd = -1;
    s->fn = fn;
    s->arg = arg;
    s->hello = dp_msg_event(hello_event, hello_data);
    snprintf(s->path, sizeof(s->path), "%s", path);
    s->listen_fd = -1;
    if (!s->hello)
        goto fail;
    s->listen_fd = dp_unix_listen(path, 16, SOCK_NONBLOCK);
    if (s->listen_fd < 0) {
        err = s->listen_fd;
        goto fail;
    }
    *out = s;
    return 0;
fail:
    fprintf(stderr, "deskpool-display: control socket %s: %s\n", path,
            strerror(-err));
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s->hello);
    free(s);
    return err;
}

void ds_ctl_close(struct ds_ctl *s)
{
    int i;

    if (!s)
        return;
    for (i = 0; i < DS_CTL_MAX_CONNS; i++)
        ds_ctl_drop(&s->conns[i]);
    close(s->listen_fd);
    unlink(s->path);
    free(s->hello);
    free(s);
}

static void ds_ctl_accept(struct ds_ctl *s)
{
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    int i;

    if (fd < 0)
        return;
    for (i = 0; i < DS_CTL_MAX_CONNS && s->conns[i].fd >= 0; i++)
        ;
    if (i == DS_CTL_MAX_CONNS || dp_lines_init(&s->conns[i].in) < 0) {
        fprintf(stderr, "deskpool-display: too many control connections\n");
        close(fd);
        return;
    }
    s->conns[i].owner = s;
    s->conns[i].fd = fd;
    dp_outq_init(&s->conns[i].out, DS_CTL_OUTQ_MAX);
    ds_ctl_send(&s->conns[i], strdup(s->hello));
}

/* One line from a control client. */
static void ds_ctl_line(void *arg, char *line, size_t len)
{
    struct ds_ctl_conn *c = arg;
    struct dp_msg m;
    const char *code;
    char detail[200];

    if (!line) {
        ds_ctl_send(c, dp_msg_event("error",
                                    json_pack("{s:s, s:s}", "error",
                                              "line-too-long", "message",
                                              "line longer than 65536 bytes")));
        return;
    }
    if (len == 0)
        return;
    if (dp_msg_parse(line, len, &m, &code, detail, sizeof(detail)) < 0) {
        ds_ctl_send(c,
                    dp_msg_event("error", json_pack("{s:s, s:s}", "error", code,
                                                    "message", detail)));
        return;
    }
    if (m.kind == DP_MSG_REQUEST)
        c->owner->fn(c->owner->arg, c, &m);
    dp_msg_free(&m);
}

static void ds_ctl_read(struct ds_ctl_conn *c)
{
    char buf[16384];
    ssize_t n = read(c->fd, buf, sizeof(buf));

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        c->dead = 1;
        return;
    }
    if (n > 0)
        dp_lines_feed(&c->in, buf, (size_t)n, ds_ctl_line, c);
}

int ds_ctl_fill(struct ds_ctl *s, struct pollfd *p, int max)
{
    int i, n = 0;

    if (max < 1)
        return 0;
    p[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
    for (i = 0; i < DS_CTL_MAX_CONNS && n < max; i++) {
        struct ds_ctl_conn *c = &s->conns[i];

        if (c->fd < 0)
            continue;
        p[n] = (struct pollfd){.fd = c->fd, .events = POLLIN};
        if (dp_outq_pending(&c->out))
            p[n].events |= POLLOUT;
        n++;
    }
    return n;
}

static struct ds_ctl_conn *ds_ctl_find(struct ds_ctl *s, int fd)
{
    int i;

    for (i = 0; i < DS_CTL_MAX_CONNS; i++)
        if (s->conns[i].fd == fd)
            return &s->conns[i];
    return NULL;
}

void ds_ctl_dispatch(struct ds_ctl *s, const struct pollfd *p, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        struct ds_ctl_conn *c;

        if (!p[i].revents)
            continue;
        if (p[i].fd == s->listen_fd) {
            ds_ctl_accept(s);
            continue;
        }
        c = ds_ctl_find(s, p[i].fd);
        if (!c)
            continue;
        if (p[i].revents & POLLOUT && dp_outq_flush(&c->out, c->fd) < 0)
            c->dead = 1;
        if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
            ds_ctl_read(c);
    }
    for (i = 0; i < DS_CTL_MAX_CONNS; i++)
        if (s->conns[i].dead)
            ds_ctl_drop(&s->conns[i]);
}

void ds_ctl_reply_ok(struct ds_ctl_conn *c, json_int_t id, json_t *result)
{
    ds_ctl_send(c, dp_msg_reply_ok(id, result));
}

void ds_ctl_reply_error(struct ds_ctl_conn *c, json_int_t id, const char *code,
                        const char *message)
{
    ds_ctl_send(c, dp_msg_reply_error(id, code, message));
}

void ds_ctl_subscribe(struct ds_ctl_conn *c)
{
    c->subscribed = 1;
}

void ds_ctl_event(struct ds_ctl *s, const char *name, json_t *data)
{
    char *line = dp_msg_event(name, data);
    int i;

    if (!line)
        return;
    for (i = 0; i < DS_CTL_MAX_CONNS; i++)
        if (s->conns[i].fd >= 0 && s->conns[i].subscribed)
            ds_ctl_send(&s->conns[i], strdup(line));
    free(line);
}
