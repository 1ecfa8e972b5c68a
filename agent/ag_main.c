/*
 * deskpool-agent - the in-guest agent of a Deskpool desktop.
 *
 * Talks to the host over the virtio-serial port org.deskpool.agent.0
 * (agent/PROTOCOL.md) and to the desktop through a backend (ag_desk.h).
 * It keeps the port open for ever: when the host side goes away the port
 * reports POLLHUP, and when it comes back the agent says hello again. No
 * busy loops: it sleeps in poll() between heartbeats. See README.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ag_desk.h"
#include "ag_ops.h"
#include "dp_msg.h"
#include "dp_time.h"

#define AG_PORT          "/dev/virtio-ports/org.deskpool.agent.0"
#define AG_TESTDESK_SOCK "/run/testdesk.sock"
#define AG_OUTQ_MAX      (256u * 1024u)
#define AG_REOPEN_MS     1000
/* While the host is away the port polls as "hung up" at once; look again
 * this often instead of spinning. */
#define AG_HUP_BACKOFF_MS 500

/* The test guest's static build has only the testdesk backend. */
#ifdef AG_NO_LOGIND
#define AG_DEFAULT_BACKEND "testdesk"
#else
#define AG_DEFAULT_BACKEND "logind"
#endif

struct ag_main {
    const char *port_path;
    int port, host_up;
    uint64_t port_retry_ms, hup_until_ms, next_beat_ms;
    int beat_ms;
    struct dp_lines in;
    struct dp_outq out;
    struct ag_desk *desk;
    struct ag_ops *ops;
};

static volatile sig_atomic_t ag_stop;

static void ag_on_signal(int sig)
{
    (void)sig;
    ag_stop = 1;
}

static void ag_log(const char *fmt, const char *arg)
{
    fprintf(stderr, "deskpool-agent: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
}

/* Lines for the host; dropped while it is away (it asks again). */
static void ag_send(void *arg, char *line)
{
    struct ag_main *m = arg;
    if (!m->host_up || m->port < 0) {
        free(line);
        return;
    }
    if (dp_outq_push(&m->out, line) == -ENOBUFS)
        ag_log("%s", "host not reading; message dropped");
}

static void ag_on_line(void *arg, char *line, size_t len)
{
    struct ag_main *m = arg;
    ag_ops_line(m->ops, line, len);
}

static void ag_port_close(struct ag_main *m)
{
    if (m->port >= 0)
        close(m->port);
    m->port = -1;
    m->host_up = 0;
    dp_outq_clear(&m->out);
    dp_lines_reset(&m->in);
    m->port_retry_ms = dp_time_now_ms() + AG_REOPEN_MS;
}

static void ag_port_open(struct ag_main *m)
{
    m->port = open(m->port_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (m->port < 0)
        m->port_retry_ms = dp_time_now_ms() + AG_REOPEN_MS;
}

static void ag_host_state(struct ag_main *m, int up)
{
    if (up == m->host_up)
        return;
    m->host_up = up;
    dp_outq_clear(&m->out);
    dp_lines_reset(&m->in);
    ag_log("%s", up ? "host connected" : "host gone");
    if (up) {
        ag_ops_hello(m->ops);
        m->next_beat_ms = dp_time_now_ms() + (uint64_t)m->beat_ms;
    }
}

static void ag_port_io(struct ag_main *m, short revents)
{
    char buf[16384];
    ssize_t n;

    if (revents & POLLHUP) {
        ag_host_state(m, 0);
        m->hup_until_ms = dp_time_now_ms() + AG_HUP_BACKOFF_MS;
        return;
    }
    ag_host_state(m, 1);
    if (revents & POLLIN) {
        n = read(m->port, buf, sizeof(buf));
        if (n > 0)
            dp_lines_feed(&m->in, buf, (size_t)n, ag_on_line, m);
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            ag_port_close(m);
    }
    if (m->port >= 0 && dp_outq_flush(&m->out, m->port) < 0)
        dp_outq_clear(&m->out); /* host vanished mid-write: it says hello */
}

static int ag_min_wait(int a, uint64_t at, uint64_t now)
{
    int b = at <= now ? 0 : (int)(at - now);
    return a < 0 || b < a ? b : a;
}

static void ag_step(struct ag_main *m)
{
    struct pollfd p[2] = {{.fd = -1}, {.fd = -1}};
    uint64_t now = dp_time_now_ms();
    int wait = m->desk->ops->timeout_ms(m->desk);

    if (m->port < 0 && now >= m->port_retry_ms)
        ag_port_open(m);
    if (m->port < 0)
        wait = ag_min_wait(wait, m->port_retry_ms, now);
    else if (now < m->hup_until_ms)
        wait = ag_min_wait(wait, m->hup_until_ms, now);
    else
        /* Until the host is known to be there, ask for POLLOUT too: the
         * port is writable exactly when the host side is open, so a host
         * that connected and stays quiet is noticed at once. */
        p[0] = (struct pollfd){
            m->port,
            POLLIN | (!m->host_up || dp_outq_pending(&m->out) ? POLLOUT : 0),
            0};
    if (m->host_up)
        wait = ag_min_wait(wait, m->next_beat_ms, now);
    p[1] = (struct pollfd){m->desk->ops->fd(m->desk), POLLIN, 0};
    if (poll(p, 2, wait) < 0 && errno != EINTR)
        return;
    if (p[0].fd >= 0 && p[0].revents)
        ag_port_io(m, p[0].revents);
    m->desk->ops->process(m->desk, p[1].revents, ag_ops_desk_event, m->ops);
    if (m->host_up && dp_time_now_ms() >= m->next_beat_ms) {
        ag_ops_heartbeat(m->ops);
        m->next_beat_ms = dp_time_now_ms() + (uint64_t)m->beat_ms;
    }
    if (m->port >= 0 && m->host_up && dp_outq_flush(&m->out, m->port) < 0)
        dp_outq_clear(&m->out);
}

static void ag_usage(void)
{
    fprintf(stderr, "usage: deskpool-agent [-p PORT] [-b testdesk|logind] "
                    "[-s TESTDESK_SOCKET] [-i HEARTBEAT_SECONDS]\n"
                    "  PORT defaults to " AG_PORT "\n");
}

int main(int argc, char **argv)
{
    struct ag_main m = {.port_path = AG_PORT, .port = -1, .beat_ms = 5000};
    const char *backend = AG_DEFAULT_BACKEND, *td_sock = AG_TESTDESK_SOCK;
    int c;

    while ((c = getopt(argc, argv, "p:b:s:i:h")) != -1) {
        switch (c) {
        case 'p': m.port_path = optarg; break;
        case 'b': backend = optarg; break;
        case 's': td_sock = optarg; break;
        case 'i': m.beat_ms = atoi(optarg) * 1000; break;
        default: ag_usage(); return 2;
        }
    }
    if (m.beat_ms < 1000 || m.beat_ms > 3600000) {
        ag_usage();
        return 2;
    }
    if (strcmp(backend, "testdesk") == 0)
        m.desk = ag_testdesk_open(td_sock);
#ifndef AG_NO_LOGIND
    else if (strcmp(backend, "logind") == 0)
        m.desk = ag_logind_open();
#endif
    if (!m.desk || dp_lines_init(&m.in) < 0 ||
        !(m.ops = ag_ops_new(m.desk, ag_send, &m))) {
        ag_usage();
        return 1;
    }
    dp_outq_init(&m.out, AG_OUTQ_MAX);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, ag_on_signal);
    signal(SIGINT, ag_on_signal);
    ag_log("started, desktop backend %s", m.desk->ops->name);
    while (!ag_stop)
        ag_step(&m);
    ag_port_close(&m);
    ag_ops_free(m.ops);
    m.desk->ops->close(m.desk);
    dp_lines_free(&m.in);
    dp_outq_free(&m.out);
    return 0;
}
