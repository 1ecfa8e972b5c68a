/*
 * ds_chan.c - JSON messages with an optional descriptor over a
 * SOCK_SEQPACKET socketpair (see ds_chan.h).
 */
#include "ds_chan.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp_time.h"

int ds_chan_pair(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
        return -errno;
    return 0;
}

int ds_chan_send(int fd, json_t *msg, int pass_fd)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr mh = {0};
    struct iovec iov;
    char *text;
    size_t len;
    ssize_t n;
    int err = 0;

    if (!msg)
        return -ENOMEM;
    text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!text)
        return -ENOMEM;
    len = strlen(text);
    if (len > DS_CHAN_MSG_MAX) {
        free(text);
        return -EMSGSIZE;
    }
    iov.iov_base = text;
    iov.iov_len = len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (pass_fd >= 0) {
        struct cmsghdr *c;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    do
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        err = -errno;
    else if ((size_t)n != len)
        err = -EMSGSIZE; /* a seqpacket is sent whole or not at all */
    free(text);
    return err;
}

/* The descriptor that came with a message, if any; extra ones closed. */
static int ds_chan_take_fd(struct msghdr *mh)
{
    struct cmsghdr *c;
    int fd = -1;

    for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        size_t n, i;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < n; i++) {
            int got;

            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (fd < 0)
                fd = got;
            else
                close(got);
        }
    }
    return fd;
}

int ds_chan_recv(int fd, json_t **msg, int *passed_fd)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct msghdr mh = {0};
    struct iovec iov;
    json_error_t jerr;
    char *buf;
    ssize_t n;
    int got;

    *msg = NULL;
    if (passed_fd)
        *passed_fd = -1;
    buf = malloc(DS_CHAN_MSG_MAX + 1);
    if (!buf)
        return -ENOMEM;
    iov.iov_base = buf;
    iov.iov_len = DS_CHAN_MSG_MAX + 1;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    do
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        int err = n == 0 ? -ECONNRESET : -errno;

        free(buf);
        return err == -EWOULDBLOCK ? -EAGAIN : err;
    }
    got = ds_chan_take_fd(&mh);
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n > DS_CHAN_MSG_MAX)
        goto bad;
    *msg = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!*msg || !json_is_object(*msg))
        goto bad;
    free(buf);
    if (passed_fd)
        *passed_fd = got;
    else if (got >= 0)
        close(got);
    return 0;
bad:
    json_decref(*msg);
    *msg = NULL;
    if (got >= 0)
        close(got);
    free(buf);
    return -EPROTO;
}

int ds_chan_recv_wait(int fd, json_t **msg, int *passed_fd, int timeout_ms)
{
    long long deadline = dp_time_now_ms() + timeout_ms;

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = deadline - dp_time_now_ms();
        int r = ds_chan_recv(fd, msg, passed_fd);

        if (r != -EAGAIN)
            return r;
        if (left <= 0)
            return -ETIMEDOUT;
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
            return -errno;
    }
}
