/*
 * td_ctl.c - the control socket server (see td_ctl.h).
 */
#include "td_ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct td_ctl_client {
    int fd; /* -1 when the slot is free */
    char in[TD_CTL_LINE_MAX + 1];
    size_t in_len;
    int discarding; /* inside an over-long line, skipping to '\n' */
    int eof;        /* the client has sent all it will */
    char out[TD_CTL_OUT_MAX];
    size_t out_off, out_len; /* unsent bytes: out[out_off .. out_len) */
};

struct td_ctl {
    int listen_fd;
    struct td_ctl_client clients[TD_CTL_CLIENTS];
    char reply[TD_CTL_LINE_MAX]; /* one command's reply and event */
    char event[TD_CTL_EVENT_MAX];
};

int td_ctl_open(struct td_ctl **out, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct td_ctl *ctl;
    int fd, err;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    unlink(path); /* a socket left by an earlier run */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0 ||
        !(ctl = calloc(1, sizeof(*ctl)))) {
        err = errno ? -errno : -ENOMEM;
        close(fd);
        return err;
    }
    ctl->listen_fd = fd;
    for (int i = 0; i < TD_CTL_CLIENTS; i++)
        ctl->clients[i].fd = -1;
    *out = ctl;
    return 0;
}

static void td_ctl_drop(struct td_ctl_client *c)
{
    close(c->fd);
    c->fd = -1;
    c->in_len = c->out_off = c->out_len = 0;
    c->discarding = c->eof = 0;
}

void td_ctl_close(struct td_ctl *ctl)
{
    if (!ctl)
        return;
    for (int i = 0; i < TD_CTL_CLIENTS; i++)
        if (ctl->clients[i].fd >= 0)
            td_ctl_drop(&ctl->clients[i]);
    close(ctl->listen_fd);
    free(ctl);
}

/* Room for one more reply and its event: only then is a command run, so
 * a client that does not read its replies stalls only itself. */
static int td_ctl_can_run(const struct td_ctl_client *c)
{
    return TD_CTL_OUT_MAX - (c->out_len - c->out_off) >=
           TD_CTL_LINE_MAX + TD_CTL_EVENT_MAX;
}

int td_ctl_pollfds(const struct td_ctl *ctl, struct pollfd *pfds)
{
    int n = 0;
    pfds[n++] = (struct pollfd){.fd = ctl->listen_fd, .events = POLLIN};
    for (int i = 0; i < TD_CTL_CLIENTS; i++) {
        const struct td_ctl_client *c = &ctl->clients[i];
        short events = 0;
        if (c->fd < 0)
            continue;
        if (!c->eof && td_ctl_can_run(c))
            events |= POLLIN;
        if (c->out_len > c->out_off)
            events |= POLLOUT;
        pfds[n++] = (struct pollfd){.fd = c->fd, .events = events};
    }
    return n;
}

/* Sends what the socket takes now; drops the client on an error. */
static void td_ctl_flush(struct td_ctl_client *c)
{
    while (c->out_len > c->out_off) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            td_ctl_drop(c);
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
}

/* Queues line and a newline (cut to max bytes with it) and sends what it
 * can; a client whose buffer it would overflow is dropped. */
static void td_ctl_queue(struct td_ctl_client *c, const char *line, size_t max)
{
    size_t n = strnlen(line, max - 1);

    if (c->fd < 0)
        return;
    if (c->out_len + n + 1 > TD_CTL_OUT_MAX && c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + n + 1 > TD_CTL_OUT_MAX) {
        td_ctl_drop(c);
        return;
    }
    memcpy(c->out + c->out_len, line, n);
    c->out[c->out_len + n] = '\n';
    c->out_len += n + 1;
    td_ctl_flush(c);
}

static void td_ctl_accept(struct td_ctl *ctl)
{
    static const char full[] = "error too many clients\n";
    int fd = accept4(ctl->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    for (int i = 0; i < TD_CTL_CLIENTS; i++) {
        if (ctl->clients[i].fd < 0) {
            ctl->clients[i].fd = fd;
            return;
        }
    }
    /* Full: say why instead of silently hanging up. */
    ssize_t n = send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n; /* it is going either way */
    close(fd);
}

void td_ctl_broadcast(struct td_ctl *ctl, const char *line)
{
    for (int i = 0; i < TD_CTL_CLIENTS; i++)
        td_ctl_queue(&ctl->clients[i], line, TD_CTL_EVENT_MAX);
}

/* Runs the client's complete lines while its replies have room. */
static void td_ctl_lines(struct td_ctl *ctl, struct td_ctl_client *c,
                         td_ctl_exec_fn exec, void *arg)
{
    while (c->fd >= 0 && td_ctl_can_run(c)) {
        char *nl = memchr(c->in, '\n', c->in_len);
        size_t used;

        if (!nl) {
            if (c->in_len < TD_CTL_LINE_MAX)
                return;
            /* No newline in a full buffer: refuse the line, skip its
             * rest. */
            if (!c->discarding)
                td_ctl_queue(c, "error line too long", TD_CTL_LINE_MAX);
            c->discarding = 1;
            c->in_len = 0;
            return;
        }
        used = (size_t)(nl - c->in) + 1;
        *nl = '\0';
        if (nl > c->in && nl[-1] == '\r')
            nl[-1] = '\0';
        if (c->discarding) {
            c->discarding = 0;
        } else {
            exec(arg, c->in, ctl->reply, sizeof(ctl->reply), ctl->event,
                 sizeof(ctl->event));
            td_ctl_queue(c, ctl->reply, TD_CTL_LINE_MAX);
            if (ctl->event[0])
                td_ctl_broadcast(ctl, ctl->event);
        }
        if (c->fd < 0)
            return;
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
}

static void td_ctl_read(struct td_ctl_client *c)
{
    ssize_t n = read(c->fd, c->in + c->in_len, TD_CTL_LINE_MAX - c->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        c->in_len += (size_t)n;
        return;
    }
    /* Hung up (or failed): what it sent before still gets answered. */
    c->eof = 1;
    if (n < 0)
        td_ctl_drop(c);
}

static void td_ctl_serve(struct td_ctl *ctl, struct td_ctl_client *c,
                         short revents, td_ctl_exec_fn exec, void *arg)
{
    /* A hang-up shows as an error here when output is pending. */
    if (revents & (POLLOUT | POLLHUP | POLLERR))
        td_ctl_flush(c);
    if (c->fd >= 0 && !c->eof && td_ctl_can_run(c) &&
        c->in_len < TD_CTL_LINE_MAX && (revents & (POLLIN | POLLHUP | POLLERR)))
        td_ctl_read(c);
    if (c->fd >= 0)
        td_ctl_lines(ctl, c, exec, arg);
    /* A client that stopped sending goes once its replies are out (with
     * nothing left to send, td_ctl_lines() ran every complete line). */
    if (c->fd >= 0 && c->eof && c->out_len == c->out_off)
        td_ctl_drop(c);
}

void td_ctl_handle(struct td_ctl *ctl, const struct pollfd *pfds, int n,
                   td_ctl_exec_fn exec, void *arg)
{
    for (int i = 0; i < n; i++) {
        if (!pfds[i].revents)
            continue;
        if (pfds[i].fd == ctl->listen_fd) {
            td_ctl_accept(ctl);
            continue;
        }
        for (int k = 0; k < TD_CTL_CLIENTS; k++)
            if (ctl->clients[k].fd == pfds[i].fd)
                td_ctl_serve(ctl, &ctl->clients[k], pfds[i].revents, exec, arg);
    }
}
