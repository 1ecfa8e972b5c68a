/*
 * hv_qmp.c - non-blocking QMP client (see hv_qmp.h).
 */
#include "hv_qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dp_time.h"

#define HV_QMP_READ_CHUNK 65536

enum hv_qmp_state {
    HV_QMP_GREETING,    /* connected, waiting for {"QMP": ...} */
    HV_QMP_NEGOTIATING, /* qmp_capabilities sent */
    HV_QMP_READY,
    HV_QMP_CLOSED,
};

struct hv_qmp_cmd {
    struct hv_qmp_cmd *next;
    uint64_t id;
    uint64_t deadline_ms;
    char *line; /* serialized, with newline; NULL once written */
    hv_qmp_reply_fn fn;
    void *arg;
};

struct hv_qmp {
    int fd;
    enum hv_qmp_state state;
    int close_reason; /* why it closed, once state is HV_QMP_CLOSED */
    const struct hv_qmp_callbacks *cb;
    void *cb_arg;
    char version[32];
    uint64_t next_id;
    struct hv_qmp_cmd *cmds; /* in submission order */
    char *in;                /* unparsed input */
    size_t in_len, in_cap;
    char *out; /* bytes to write */
    size_t out_len, out_off;
};

int hv_qmp_connect(struct hv_qmp **out, const char *path,
                   const struct hv_qmp_callbacks *cb, void *arg)
{
    static const struct hv_qmp_callbacks no_callbacks;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct hv_qmp *q;
    int fd, err;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Unix sockets connect at once or fail; EAGAIN only means a full
     * backlog, which QEMU's single-client monitor never has. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    q = calloc(1, sizeof(*q));
    if (!q) {
        close(fd);
        return -ENOMEM;
    }
    q->fd = fd;
    q->cb = cb ? cb : &no_callbacks;
    q->cb_arg = arg;
    q->next_id = 1;
    *out = q;
    return 0;
}

static void hv_qmp_cmd_free(struct hv_qmp_cmd *c)
{
    free(c->line);
    free(c);
}

/* Fails every pending command with status and why. */
static void hv_qmp_fail_all(struct hv_qmp *q, int status, const char *why)
{
    while (q->cmds) {
        struct hv_qmp_cmd *c = q->cmds;
        q->cmds = c->next;
        if (c->fn)
            c->fn(c->arg, status, NULL, why);
        hv_qmp_cmd_free(c);
    }
}

/* Ends the connection once: commands fail, the owner hears why. */
static int hv_qmp_shut(struct hv_qmp *q, int reason, const char *why)
{
    if (q->state == HV_QMP_CLOSED)
        return reason;
    q->state = HV_QMP_CLOSED;
    q->close_reason = reason;
    hv_qmp_fail_all(q, reason, why);
    if (q->cb->closed)
        q->cb->closed(q->cb_arg, reason, why);
    return reason;
}

void hv_qmp_close(struct hv_qmp *q)
{
    if (!q)
        return;
    q->state = HV_QMP_CLOSED;
    hv_qmp_fail_all(q, -ECANCELED, "QMP client closed");
    close(q->fd);
    free(q->in);
    free(q->out);
    free(q);
}

int hv_qmp_fd(const struct hv_qmp *q)
{
    return q->fd;
}

short hv_qmp_poll_events(const struct hv_qmp *q)
{
    if (q->state == HV_QMP_CLOSED)
        return 0;
    return POLLIN | (q->out_len > q->out_off ? POLLOUT : 0);
}

int hv_qmp_timeout_ms(const struct hv_qmp *q)
{
    uint64_t now = dp_time_now_ms(), first = UINT64_MAX;
    for (const struct hv_qmp_cmd *c = q->cmds; c; c = c->next)
        if (c->deadline_ms < first)
            first = c->deadline_ms;
    if (first == UINT64_MAX)
        return -1;
    return first <= now ? 0 : (int)(first - now);
}

int hv_qmp_ready(const struct hv_qmp *q)
{
    return q->state == HV_QMP_READY;
}

const char *hv_qmp_version(const struct hv_qmp *q)
{
    return q->version;
}

/* Appends bytes to the output buffer. */
static int hv_qmp_queue_bytes(struct hv_qmp *q, const char *s, size_t n)
{
    char *grown;
    if (q->out_off > 0) { /* drop what was sent before growing */
        memmove(q->out, q->out + q->out_off, q->out_len - q->out_off);
        q->out_len -= q->out_off;
        q->out_off = 0;
    }
    grown = realloc(q->out, q->out_len + n);
    if (!grown)
        return -ENOMEM;
    q->out = grown;
    memcpy(q->out + q->out_len, s, n);
    q->out_len += n;
    return 0;
}

/* Moves the lines of queued commands to the output once QMP is ready
 * (commands must not reach QEMU before qmp_capabilities). */
static int hv_qmp_flush_commands(struct hv_qmp *q)
{
    if (q->state != HV_QMP_READY)
        return 0;
    for (struct hv_qmp_cmd *c = q->cmds; c; c = c->next) {
        if (!c->line)
            continue;
        if (hv_qmp_queue_bytes(q, c->line, strlen(c->line)) < 0)
            return -ENOMEM;
        free(c->line);
        c->line = NULL;
    }
    return 0;
}

static char *hv_qmp_serialize(const char *command, json_t *args, uint64_t id)
{
    json_t *msg =
        json_pack("{s:s, s:I}", "execute", command, "id", (json_int_t)id);
    char *text, *line = NULL;
    size_t n;

    if (!msg)
        return NULL;
    if (args && json_object_set(msg, "arguments", args) < 0) {
        json_decref(msg);
        return NULL;
    }
    text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!text)
        return NULL;
    n = strlen(text);
    line = malloc(n + 2);
    if (line) {
        memcpy(line, text, n);
        memcpy(line + n, "\n", 2);
    }
    free(text);
    return line;
}

static int hv_qmp_enqueue(struct hv_qmp *q, const char *command, json_t *args,
                          int timeout_ms, hv_qmp_reply_fn fn, void *arg,
                          int front)
{
    struct hv_qmp_cmd *c = calloc(1, sizeof(*c)), **tail;

    if (c)
        c->line = hv_qmp_serialize(command, args, q->next_id);
    json_decref(args);
    if (!c || !c->line) {
        free(c);
        return -ENOMEM;
    }
    c->id = q->next_id++;
    c->deadline_ms =
        dp_time_now_ms() +
        (uint64_t)(timeout_ms > 0 ? timeout_ms : HV_QMP_TIMEOUT_MS);
    c->fn = fn;
    c->arg = arg;
    if (front) {
        c->next = q->cmds;
        q->cmds = c;
    } else {
        for (tail = &q->cmds; *tail; tail = &(*tail)->next)
            ;
        *tail = c;
    }
    return 0;
}

int hv_qmp_execute(struct hv_qmp *q, const char *command, json_t *args,
                   int timeout_ms, hv_qmp_reply_fn fn, void *arg)
{
    int rc;
    if (q->state == HV_QMP_CLOSED) {
        json_decref(args);
        return -ENOTCONN;
    }
    rc = hv_qmp_enqueue(q, command, args, timeout_ms, fn, arg, 0);
    if (rc < 0)
        return rc;
    /* Queued: from here on the callback reports the outcome, even when
     * the output cannot grow and the connection has to end. */
    if (hv_qmp_flush_commands(q) < 0)
        hv_qmp_shut(q, -ENOMEM, "out of memory");
    return 0;
}

/* The reply to qmp_capabilities: from now on commands may flow. */
static void hv_qmp_on_capabilities(void *arg, int status, json_t *result,
                                   const char *error)
{
    struct hv_qmp *q = arg;
    (void)result;
    if (status < 0) {
        char why[256];
        snprintf(why, sizeof(why), "QMP negotiation failed: %s", error);
        hv_qmp_shut(q, -EPROTO, why);
        return;
    }
    q->state = HV_QMP_READY;
}

static int hv_qmp_on_greeting(struct hv_qmp *q, json_t *greeting)
{
    json_t *v = json_object_get(greeting, "version");
    json_t *qemu = json_object_get(v, "qemu");
    int rc;

    snprintf(q->version, sizeof(q->version), "%d.%d.%d",
             (int)json_integer_value(json_object_get(qemu, "major")),
             (int)json_integer_value(json_object_get(qemu, "minor")),
             (int)json_integer_value(json_object_get(qemu, "micro")));
    q->state = HV_QMP_NEGOTIATING;
    /* Goes ahead of any queued command, straight to the output. */
    rc = hv_qmp_enqueue(q, "qmp_capabilities", NULL, 0, hv_qmp_on_capabilities,
                        q, 1);
    if (rc < 0)
        return rc;
    rc = hv_qmp_queue_bytes(q, q->cmds->line, strlen(q->cmds->line));
    free(q->cmds->line);
    q->cmds->line = NULL;
    return rc;
}

/* Takes command `id` off the pending list; NULL if unknown (e.g. it timed
 * out already). */
static struct hv_qmp_cmd *hv_qmp_take(struct hv_qmp *q, json_t *id)
{
    struct hv_qmp_cmd **p;
    if (!json_is_integer(id))
        return NULL;
    for (p = &q->cmds; *p; p = &(*p)->next) {
        if ((*p)->id == (uint64_t)json_integer_value(id)) {
            struct hv_qmp_cmd *c = *p;
            *p = c->next;
            return c;
        }
    }
    return NULL;
}

static void hv_qmp_on_reply(struct hv_qmp *q, json_t *msg)
{
    struct hv_qmp_cmd *c = hv_qmp_take(q, json_object_get(msg, "id"));
    json_t *err = json_object_get(msg, "error");
    char why[512];

    if (!c)
        return;
    if (c->fn && err) {
        snprintf(why, sizeof(why), "%s: %s",
                 json_string_value(json_object_get(err, "class")) ?: "Error",
                 json_string_value(json_object_get(err, "desc")) ?: "");
        c->fn(c->arg, -EIO, NULL, why);
    } else if (c->fn) {
        c->fn(c->arg, 0, json_object_get(msg, "return"), "");
    }
    hv_qmp_cmd_free(c);
}

static int hv_qmp_on_message(struct hv_qmp *q, const char *line, size_t n)
{
    json_error_t jerr;
    json_t *msg = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr);
    const char *event;
    int rc = 0;
    char why[256];

    if (!json_is_object(msg)) {
        snprintf(why, sizeof(why), "malformed QMP message: %s",
                 msg ? "not an object" : jerr.text);
        json_decref(msg);
        return hv_qmp_shut(q, -EPROTO, why);
    }
    event = json_string_value(json_object_get(msg, "event"));
    if (q->state == HV_QMP_GREETING && json_object_get(msg, "QMP"))
        rc = hv_qmp_on_greeting(q, json_object_get(msg, "QMP"));
    else if (event && q->cb->event)
        q->cb->event(q->cb_arg, event, json_object_get(msg, "data"));
    else if (json_object_get(msg, "return") || json_object_get(msg, "error"))
        hv_qmp_on_reply(q, msg);
    else if (!event)
        rc = hv_qmp_shut(q, -EPROTO, "unexpected QMP message");
    json_decref(msg);
    if (rc == 0)
        rc = hv_qmp_flush_commands(q);
    return rc;
}

/* Parses every complete line in the input buffer. */
static int hv_qmp_parse_input(struct hv_qmp *q)
{
    size_t start = 0;
    char *nl;
    int rc = 0;

    while (rc == 0 && q->state != HV_QMP_CLOSED &&
           (nl = memchr(q->in + start, '\n', q->in_len - start))) {
        size_t n = (size_t)(nl - (q->in + start));
        if (n > HV_QMP_LINE_MAX)
            rc = hv_qmp_shut(q, -EMSGSIZE, "QMP message over the size limit");
        else if (n > 0)
            rc = hv_qmp_on_message(q, q->in + start, n);
        start += n + 1;
    }
    memmove(q->in, q->in + start, q->in_len - start);
    q->in_len -= start;
    if (rc == 0 && q->in_len > HV_QMP_LINE_MAX)
        rc = hv_qmp_shut(q, -EMSGSIZE, "QMP message over the size limit");
    return rc;
}

static int hv_qmp_read(struct hv_qmp *q)
{
    /* A bounded number of reads per call: a peer flooding events must not
     * keep the caller's loop from its other work. poll() reports the rest. */
    for (int round = 0; round < 16; round++) {
        ssize_t n;
        if (q->in_cap - q->in_len < HV_QMP_READ_CHUNK) {
            size_t cap = q->in_cap ? q->in_cap * 2 : HV_QMP_READ_CHUNK * 2;
            char *grown;
            if (cap > HV_QMP_LINE_MAX + 2 * HV_QMP_READ_CHUNK)
                cap = HV_QMP_LINE_MAX + 2 * HV_QMP_READ_CHUNK;
            grown = realloc(q->in, cap);
            if (!grown)
                return hv_qmp_shut(q, -ENOMEM, "out of memory");
            q->in = grown;
            q->in_cap = cap;
        }
        n = read(q->fd, q->in + q->in_len, q->in_cap - q->in_len);
        if (n == 0)
            return hv_qmp_shut(q, -ECONNRESET, "QEMU closed the QMP socket");
        if (n < 0)
            return errno == EAGAIN || errno == EINTR
                       ? 0
                       : hv_qmp_shut(q, -errno, strerror(errno));
        q->in_len += (size_t)n;
        int rc = hv_qmp_parse_input(q);
        if (rc < 0 || q->state == HV_QMP_CLOSED)
            return rc;
    }
    return 0;
}

static int hv_qmp_write(struct hv_qmp *q)
{
    while (q->out_off < q->out_len) {
        ssize_t n = send(q->fd, q->out + q->out_off, q->out_len - q->out_off,
                         MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR
                       ? 0
                       : hv_qmp_shut(q, -errno, strerror(errno));
        q->out_off += (size_t)n;
    }
    return 0;
}

static void hv_qmp_expire(struct hv_qmp *q)
{
    uint64_t now = dp_time_now_ms();
    struct hv_qmp_cmd **p = &q->cmds;

    while (*p) {
        struct hv_qmp_cmd *c = *p;
        if (c->deadline_ms > now) {
            p = &c->next;
            continue;
        }
        *p = c->next;
        if (c->fn)
            c->fn(c->arg, -ETIMEDOUT, NULL, "QMP command timed out");
        hv_qmp_cmd_free(c);
    }
}

int hv_qmp_process(struct hv_qmp *q, short revents)
{
    if (q->state == HV_QMP_CLOSED)
        return q->close_reason;
    if (revents & (POLLIN | POLLHUP | POLLERR))
        hv_qmp_read(q);
    if (q->state != HV_QMP_CLOSED)
        hv_qmp_write(q);
    if (q->state != HV_QMP_CLOSED)
        hv_qmp_expire(q);
    /* Whatever closed it (a reply, a timeout, the socket) said why. */
    return q->state == HV_QMP_CLOSED ? q->close_reason : 0;
}

/* One round of poll + process on this connection, waiting at most until
 * deadline. Returns 0, -ETIMEDOUT past the deadline, or why it closed. */
static int hv_qmp_poll_once(struct hv_qmp *q, uint64_t deadline)
{
    struct pollfd p = {.fd = q->fd, .events = hv_qmp_poll_events(q)};
    uint64_t now = dp_time_now_ms();
    int wait = hv_qmp_timeout_ms(q);

    if (now >= deadline)
        return -ETIMEDOUT;
    if (wait < 0 || (uint64_t)wait > deadline - now)
        wait = (int)(deadline - now);
    if (poll(&p, 1, wait) < 0 && errno != EINTR)
        return -errno;
    return hv_qmp_process(q, p.revents);
}

struct hv_qmp_sync {
    int done, status;
    json_t *result;
    char *error;
    size_t error_size;
};

static void hv_qmp_sync_reply(void *arg, int status, json_t *result,
                              const char *error)
{
    struct hv_qmp_sync *s = arg;
    s->done = 1;
    s->status = status;
    s->result = json_incref(result);
    if (s->error)
        snprintf(s->error, s->error_size, "%s", error);
}

int hv_qmp_execute_sync(struct hv_qmp *q, const char *command, json_t *args,
                        int timeout_ms, json_t **result, char *error,
                        size_t error_size)
{
    struct hv_qmp_sync s = {.error = error, .error_size = error_size};
    int rc;

    if (error && error_size)
        error[0] = '\0';
    rc = hv_qmp_execute(q, command, args, timeout_ms, hv_qmp_sync_reply, &s);
    if (rc < 0) {
        if (error)
            snprintf(error, error_size, "%s", strerror(-rc));
        return rc;
    }
    /* The command's own timeout ends the wait, and a closing connection
     * fails it: either way the callback runs and sets done. */
    while (!s.done) {
        rc = hv_qmp_poll_once(q, UINT64_MAX);
        if (rc < 0 && !s.done) /* poll itself failed: give up the socket */
            hv_qmp_shut(q, rc, strerror(-rc));
    }
    if (result && s.status == 0)
        *result = s.result;
    else
        json_decref(s.result);
    return s.status;
}

int hv_qmp_wait_ready(struct hv_qmp *q, int timeout_ms)
{
    uint64_t deadline = dp_time_now_ms() + (uint64_t)timeout_ms;
    int rc = 0;

    while (rc == 0 && !hv_qmp_ready(q))
        rc = hv_qmp_poll_once(q, deadline);
    return rc;
}
