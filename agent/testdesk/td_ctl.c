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
    int fd;             /* -1 when the slot is free */
    char buf[TD_CTL_LINE_MAX + 1];
    size_t len;
    int discarding;     /* inside an over-long line, skipping to '\n' */
};

struct td_ctl {
    int listen_fd;
    struct td_ctl_client clients[TD_CTL_CLIENTS];
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
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 4) < 0 || !(ctl = calloc(1, sizeof(*ctl)))) {
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
    c->len = 0;
    c->discarding = 0;
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

int td_ctl_pollfds(const struct td_ctl *ctl, struct pollfd *pfds)
{
    int n = 0;
    pfds[n++] = (struct pollfd){.fd = ctl->listen_fd, .events = POLLIN};
    for (int i = 0; i < TD_CTL_CLIENTS; i++)
        if (ctl->clients[i].fd >= 0)
            pfds[n++] =
                (struct pollfd){.fd = ctl->clients[i].fd, .events = POLLIN};
    return n;
}

/* Writes a whole line; a client too slow to take a short reply is
 * dropped rather than allowed to stall the desktop. */
static void td_ctl_send(struct td_ctl_client *c, const char *line)
{
    char out[TD_CTL_LINE_MAX + 2];
    int n = snprintf(out, sizeof(out), "%s\n", line);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(out)) { /* keep the line a line */
        n = (int)sizeof(out) - 1;
        out[n - 1] = '\n';
    }
    if (send(c->fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
        td_ctl_drop(c);
}

static void td_ctl_accept(struct td_ctl *ctl)
{
    int fd = accept4(ctl->listen_fd, NULL, NULL,
                     SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    for (int i = 0; i < TD_CTL_CLIENTS; i++) {
        if (ctl->clients[i].fd < 0) {
            ctl->clients[i].fd = fd;
            return;
        }
    }
    /* Full: say why instead of silently hanging up. */
    struct td_ctl_client tmp = {.fd = fd};
    td_ctl_send(&tmp, "error too many clients");
    if (tmp.fd >= 0)
        close(fd);
}

/* Runs every complete line in the client's buffer. */
static void td_ctl_lines(struct td_ctl_client *c, td_ctl_exec_fn exec,
                         void *arg)
{
    char reply[TD_CTL_LINE_MAX];
    char *nl;

    while (c->fd >= 0 && (nl = memchr(c->buf, '\n', c->len))) {
        size_t used = (size_t)(nl - c->buf) + 1;
        *nl = '\0';
        if (nl > c->buf && nl[-1] == '\r')
            nl[-1] = '\0';
        if (c->discarding) {
            c->discarding = 0;
        } else {
            exec(arg, c->buf, reply, sizeof(reply));
            td_ctl_send(c, reply);
        }
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
    if (c->fd >= 0 && c->len == TD_CTL_LINE_MAX) {
        /* No newline in a full buffer: refuse the line, skip its rest. */
        if (!c->discarding)
            td_ctl_send(c, "error line too long");
        c->discarding = 1;
        c->len = 0;
    }
}

static void td_ctl_read(struct td_ctl_client *c, td_ctl_exec_fn exec,
                        void *arg)
{
    ssize_t n = read(c->fd, c->buf + c->len, TD_CTL_LINE_MAX - c->len);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        td_ctl_drop(c);
        return;
    }
    if (n > 0) {
        c->len += (size_t)n;
        td_ctl_lines(c, exec, arg);
    }
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
                td_ctl_read(&ctl->clients[k], exec, arg);
    }
}

void td_ctl_broadcast(struct td_ctl *ctl, const char *line)
{
    for (int i = 0; i < TD_CTL_CLIENTS; i++)
        if (ctl->clients[i].fd >= 0)
            td_ctl_send(&ctl->clients[i], line);
}
