/*
 * hv_agent.c - host end of the agent channel (see hv_agent.h).
 */
#include "hv_agent.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dp_msg.h"
#include "dp_time.h"

#define HV_AGENT_OUTQ_MAX    (256u * 1024u)
#define HV_AGENT_READ_ROUNDS 16

struct hv_agent_req {
    struct hv_agent_req *next;
    json_int_t id;
    uint64_t deadline_ms;
    hv_agent_reply_fn fn;
    void *arg;
};

struct hv_agent {
    struct sockaddr_un addr;
    int fd;
    const struct hv_agent_callbacks *cb;
    void *cb_arg;
    struct dp_lines in;
    struct dp_outq out;
    struct hv_agent_req *reqs;
    json_int_t next_id;
    uint64_t next_connect_ms;
    int hb_timeout_ms;
    uint64_t last_sign_ms; /* hello or heartbeat: the guest is alive */
    uint64_t last_rx_ms;   /* anything from the guest, or the connect */
    struct hv_agent_state st;
    /* hv_agent_wait_event() */
    const char *waiting;
    json_t *waited;
    int waited_done;
};

static void hv_agent_fail_all(struct hv_agent *a, int status, const char *why)
{
    while (a->reqs) {
        struct hv_agent_req *r = a->reqs;
        a->reqs = r->next;
        if (r->fn)
            r->fn(r->arg, status, NULL, "", why);
        free(r);
    }
}

static void hv_agent_send(struct hv_agent *a, char *line)
{
    /* Events we send are small; a full queue means the guest stopped
     * reading, and dropping a hello or error then is harmless. */
    dp_outq_push(&a->out, line);
}

static void hv_agent_disconnect(struct hv_agent *a, const char *why)
{
    if (a->fd < 0)
        return;
    close(a->fd);
    a->fd = -1;
    dp_lines_reset(&a->in);
    dp_outq_clear(&a->out);
    a->st.connected = a->st.hello = a->st.ready = 0;
    a->next_connect_ms = dp_time_now_ms() + HV_AGENT_RECONNECT_MS;
    hv_agent_fail_all(a, -ECONNRESET, why);
    if (a->cb->link)
        a->cb->link(a->cb_arg, 0);
}

static void hv_agent_try_connect(struct hv_agent *a)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    a->next_connect_ms = dp_time_now_ms() + HV_AGENT_RECONNECT_MS;
    if (fd < 0)
        return;
    if (connect(fd, (struct sockaddr *)&a->addr, sizeof(a->addr)) < 0) {
        close(fd); /* QEMU not (yet) there: retry later */
        return;
    }
    a->fd = fd;
    a->st.connected = 1;
    a->last_rx_ms = dp_time_now_ms();
    hv_agent_send(a, dp_msg_event("hello", json_pack("{s:i, s:s}", "version",
                                                     DP_MSG_VERSION, "host",
                                                     "deskpool")));
    if (a->cb->link)
        a->cb->link(a->cb_arg, 1);
}

int hv_agent_open(struct hv_agent **out, const char *path,
                  const struct hv_agent_callbacks *cb, void *arg,
                  int heartbeat_timeout_ms)
{
    static const struct hv_agent_callbacks none;
    struct hv_agent *a;

    if (strlen(path) >= sizeof(a->addr.sun_path))
        return -ENAMETOOLONG;
    a = calloc(1, sizeof(*a));
    if (!a || dp_lines_init(&a->in) < 0) {
        free(a);
        return -ENOMEM;
    }
    a->addr.sun_family = AF_UNIX;
    strcpy(a->addr.sun_path, path);
    a->fd = -1;
    a->cb = cb ? cb : &none;
    a->cb_arg = arg;
    a->next_id = 1;
    a->hb_timeout_ms = heartbeat_timeout_ms > 0 ? heartbeat_timeout_ms
                                                : HV_AGENT_HEARTBEAT_TIMEOUT_MS;
    dp_outq_init(&a->out, HV_AGENT_OUTQ_MAX);
    hv_agent_try_connect(a);
    *out = a;
    return 0;
}

void hv_agent_close(struct hv_agent *a)
{
    if (!a)
        return;
    hv_agent_fail_all(a, -ECANCELED, "agent client closed");
    if (a->fd >= 0)
        close(a->fd);
    dp_lines_free(&a->in);
    dp_outq_free(&a->out);
    json_decref(a->waited);
    free(a);
}

int hv_agent_fd(const struct hv_agent *a)
{
    return a->fd;
}

short hv_agent_poll_events(const struct hv_agent *a)
{
    if (a->fd < 0)
        return 0;
    return POLLIN | (dp_outq_pending(&a->out) ? POLLOUT : 0);
}

int hv_agent_timeout_ms(const struct hv_agent *a)
{
    uint64_t now = dp_time_now_ms(), next = UINT64_MAX;

    if (a->fd < 0)
        next = a->next_connect_ms;
    else
        next = a->last_rx_ms + HV_AGENT_SILENCE_MS;
    for (const struct hv_agent_req *r = a->reqs; r; r = r->next)
        if (r->deadline_ms < next)
            next = r->deadline_ms;
    if (next == UINT64_MAX)
        return -1;
    return next <= now ? 0 : (int)(next - now);
}

/* --- incoming ------------------------------------------------------------ */

static void hv_agent_copy(char *dst, size_t size, const json_t *obj,
                          const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    snprintf(dst, size, "%s", s ? s : "");
}

/* Keeps what the guest says about itself, for hv_agent_state(). */
static void hv_agent_note_event(struct hv_agent *a, const char *name,
                                json_t *data)
{
    if (strcmp(name, "hello") == 0) {
        json_t *v = json_object_get(data, "version");
        if (json_integer_value(v) != DP_MSG_VERSION) {
            hv_agent_send(
                a, dp_msg_event("error",
                                json_pack("{s:s, s:s}", "error", "version",
                                          "message", "host speaks version 1")));
            return;
        }
        a->st.hello = 1;
        a->last_sign_ms = dp_time_now_ms();
        hv_agent_copy(a->st.os, sizeof(a->st.os), data, "os");
        hv_agent_copy(a->st.hostname, sizeof(a->st.hostname), data, "hostname");
    } else if (strcmp(name, "ready") == 0) {
        a->st.ready = 1;
    } else if (strcmp(name, "heartbeat") == 0) {
        a->last_sign_ms = dp_time_now_ms();
        a->st.heartbeats++;
        hv_agent_copy(a->st.user, sizeof(a->st.user), data, "user");
        a->st.since = json_integer_value(json_object_get(data, "since"));
        a->st.idle_seconds =
            json_integer_value(json_object_get(data, "idle_seconds"));
        a->st.locked = json_is_true(json_object_get(data, "locked"));
    }
}

static void hv_agent_on_event(struct hv_agent *a, const char *name,
                              json_t *data)
{
    hv_agent_note_event(a, name, data);
    if (a->waiting && !a->waited_done && strcmp(a->waiting, name) == 0) {
        a->waited = json_incref(data);
        a->waited_done = 1;
    }
    if (a->cb->event)
        a->cb->event(a->cb_arg, name, data);
}

static void hv_agent_on_reply(struct hv_agent *a, struct dp_msg *m)
{
    struct hv_agent_req **p = &a->reqs, *r;

    while (*p && (*p)->id != m->id)
        p = &(*p)->next;
    if (!(r = *p))
        return; /* timed out already, or not ours */
    *p = r->next;
    if (r->fn) {
        if (m->ok)
            r->fn(r->arg, 0, m->body, "", "");
        else
            r->fn(r->arg, -EREMOTEIO, NULL, m->error, m->message);
    }
    free(r);
}

static void hv_agent_send_error(struct hv_agent *a, const char *code,
                                const char *message)
{
    hv_agent_send(a,
                  dp_msg_event("error", json_pack("{s:s, s:s}", "error", code,
                                                  "message", message)));
}

static void hv_agent_on_line(void *arg, char *line, size_t len)
{
    struct hv_agent *a = arg;
    struct dp_msg m;
    const char *code;
    char detail[256];

    if (!line) {
        hv_agent_send_error(a, "line-too-long", "line over 65536 bytes");
        return;
    }
    if (dp_msg_parse(line, len, &m, &code, detail, sizeof(detail)) < 0) {
        hv_agent_send_error(a, code, detail);
        return;
    }
    if (m.kind == DP_MSG_EVENT)
        hv_agent_on_event(a, m.name, m.body);
    else if (m.kind == DP_MSG_REPLY)
        hv_agent_on_reply(a, &m);
    else /* the host serves no requests in version 1 */
        hv_agent_send(a, dp_msg_reply_error(m.id, "unknown-op",
                                            "the host serves no requests"));
    dp_msg_free(&m);
}

static void hv_agent_read(struct hv_agent *a)
{
    char buf[16384];
    for (int round = 0; round < HV_AGENT_READ_ROUNDS && a->fd >= 0; round++) {
        ssize_t n = read(a->fd, buf, sizeof(buf));
        if (n == 0) {
            hv_agent_disconnect(a, "agent channel closed");
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                hv_agent_disconnect(a, strerror(errno));
            return;
        }
        a->last_rx_ms = dp_time_now_ms();
        dp_lines_feed(&a->in, buf, (size_t)n, hv_agent_on_line, a);
    }
}

static void hv_agent_expire(struct hv_agent *a)
{
    uint64_t now = dp_time_now_ms();
    struct hv_agent_req **p = &a->reqs;

    while (*p) {
        struct hv_agent_req *r = *p;
        if (r->deadline_ms > now) {
            p = &r->next;
            continue;
        }
        *p = r->next;
        if (r->fn)
            r->fn(r->arg, -ETIMEDOUT, NULL, "", "agent did not answer");
        free(r);
    }
}

void hv_agent_process(struct hv_agent *a, short revents)
{
    if (a->fd < 0 && dp_time_now_ms() >= a->next_connect_ms)
        hv_agent_try_connect(a);
    /* Read what has arrived before judging silence (even if poll was not
     * asked): a caller that did not run the loop for a while must not lose
     * a live channel's input. */
    if (a->fd >= 0 && ((revents & (POLLIN | POLLHUP | POLLERR)) ||
                       dp_time_now_ms() - a->last_rx_ms >= HV_AGENT_SILENCE_MS))
        hv_agent_read(a);
    if (a->fd >= 0 && dp_time_now_ms() - a->last_rx_ms >= HV_AGENT_SILENCE_MS) {
        hv_agent_disconnect(a, "agent silent; reconnecting");
        a->next_connect_ms = dp_time_now_ms(); /* at once: reopen */
    }
    if (a->fd >= 0 && dp_outq_flush(&a->out, a->fd) < 0)
        hv_agent_disconnect(a, "cannot write to the agent channel");
    hv_agent_expire(a);
}

void hv_agent_state(const struct hv_agent *a, struct hv_agent_state *st)
{
    *st = a->st;
    st->healthy =
        a->st.connected && a->st.hello &&
        dp_time_now_ms() - a->last_sign_ms < (uint64_t)a->hb_timeout_ms;
}

/* --- requests ------------------------------------------------------------- */

int hv_agent_request(struct hv_agent *a, const char *op, json_t *args,
                     int timeout_ms, hv_agent_reply_fn fn, void *arg)
{
    struct hv_agent_req *r;
    int rc;

    if (a->fd < 0) {
        json_decref(args);
        return -ENOTCONN;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        json_decref(args);
        return -ENOMEM;
    }
    rc = dp_outq_push(&a->out, dp_msg_request(a->next_id, op, args));
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->id = a->next_id++;
    r->deadline_ms =
        dp_time_now_ms() +
        (uint64_t)(timeout_ms > 0 ? timeout_ms : HV_AGENT_TIMEOUT_MS);
    r->fn = fn;
    r->arg = arg;
    r->next = a->reqs;
    a->reqs = r;
    return 0;
}

/* One round of poll + process, at most until deadline. */
static void hv_agent_poll_once(struct hv_agent *a, uint64_t deadline)
{
    struct pollfd p = {.fd = a->fd, .events = hv_agent_poll_events(a)};
    uint64_t now = dp_time_now_ms();
    int wait = hv_agent_timeout_ms(a);

    if (wait < 0 || (uint64_t)wait > deadline - now)
        wait = deadline > now ? (int)(deadline - now) : 0;
    if (poll(&p, 1, wait) < 0)
        p.revents = 0;
    hv_agent_process(a, p.revents);
}

struct hv_agent_sync {
    int done, status;
    json_t *result;
    char *err;
    size_t err_size;
};

static void hv_agent_sync_reply(void *arg, int status, json_t *result,
                                const char *code, const char *message)
{
    struct hv_agent_sync *s = arg;
    s->done = 1;
    s->status = status;
    s->result = json_incref(result);
    if (s->err)
        snprintf(s->err, s->err_size, "%s%s%s", code, code[0] ? ": " : "",
                 message);
}

int hv_agent_request_sync(struct hv_agent *a, const char *op, json_t *args,
                          int timeout_ms, json_t **result, char *err,
                          size_t err_size)
{
    struct hv_agent_sync s = {.err = err, .err_size = err_size};
    int rc = hv_agent_request(a, op, args, timeout_ms, hv_agent_sync_reply, &s);

    if (rc < 0) {
        if (err)
            snprintf(err, err_size, "%s", strerror(-rc));
        return rc;
    }
    /* The request's own timeout or a disconnect always ends the wait. */
    while (!s.done)
        hv_agent_poll_once(a, UINT64_MAX);
    if (result && s.status == 0)
        *result = s.result;
    else
        json_decref(s.result);
    return s.status;
}

int hv_agent_wait_event(struct hv_agent *a, const char *name, int timeout_ms,
                        json_t **data)
{
    uint64_t deadline = dp_time_now_ms() + (uint64_t)timeout_ms;

    a->waiting = name;
    a->waited_done = 0;
    while (!a->waited_done && dp_time_now_ms() < deadline)
        hv_agent_poll_once(a, deadline);
    a->waiting = NULL;
    if (!a->waited_done)
        return -ETIMEDOUT;
    if (data)
        *data = a->waited;
    else
        json_decref(a->waited);
    a->waited = NULL;
    return 0;
}
