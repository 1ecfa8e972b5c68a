/*
 * tsqmp.c - minimal blocking QMP client (see tsqmp.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tsqmp.h"

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

/* Pause between connection attempts while QEMU is still starting. */
#define TSQMP_RETRY_MS 50

/* Pause between two typed keys: about 25 keys a second, a fast typist. */
#define TSQMP_KEY_GAP_MS 40

struct tsqmp {
    int fd;
    int timeout_ms;
    long long next_id;
    int broken; /* the input stream lost its framing; no further use */
    char *buf;  /* received bytes not yet returned as lines */
    size_t len, cap;
};

static long long tsqmp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tsqmp_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Waits until fd is ready for events or the deadline passes. */
static int tsqmp_wait(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - tsqmp_now_ms();
        struct pollfd p = {fd, events, 0};
        int n;

        if (left <= 0)
            return -ETIMEDOUT;
        n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* One connection attempt; -ENOENT or -ECONNREFUSED mean "not yet". */
static int tsqmp_try_connect(const char *path, int *fd_out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, err;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

static int tsqmp_connect_retry(const char *path, long long deadline, int *fd)
{
    for (;;) {
        int err = tsqmp_try_connect(path, fd);
        if (err != -ENOENT && err != -ECONNREFUSED)
            return err;
        if (tsqmp_now_ms() + TSQMP_RETRY_MS > deadline)
            return -ETIMEDOUT;
        tsqmp_sleep_ms(TSQMP_RETRY_MS);
    }
}

/* Moves a complete line out of the buffer into a parsed JSON value. */
static int tsqmp_take_line(struct tsqmp *q, char *nl, json_t **msg)
{
    size_t n = (size_t)(nl - q->buf) + 1;
    json_error_t jerr;

    *msg = json_loadb(q->buf, n, 0, &jerr);
    memmove(q->buf, q->buf + n, q->len - n);
    q->len -= n;
    if (!*msg || !json_is_object(*msg)) {
        fprintf(stderr,
                "tsqmp: QEMU sent a message that is not a JSON "
                "object: %s\n",
                *msg ? "(not an object)" : jerr.text);
        json_decref(*msg);
        *msg = NULL;
        return -EPROTO;
    }
    return 0;
}

/* Grows the receive buffer, never past TSQMP_MAX_LINE. */
static int tsqmp_grow(struct tsqmp *q)
{
    size_t cap = q->cap ? q->cap * 2 : 4096;
    char *nb;

    if (q->len >= TSQMP_MAX_LINE) {
        q->broken = 1;
        fprintf(stderr, "tsqmp: QEMU sent a line over %d bytes\n",
                TSQMP_MAX_LINE);
        return -EMSGSIZE;
    }
    if (cap > TSQMP_MAX_LINE)
        cap = TSQMP_MAX_LINE;
    nb = realloc(q->buf, cap);
    if (!nb)
        return -ENOMEM;
    q->buf = nb;
    q->cap = cap;
    return 0;
}

/* Reads the next message (one line of JSON) before the deadline. */
static int tsqmp_read_msg(struct tsqmp *q, long long deadline, json_t **msg)
{
    for (;;) {
        char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
        ssize_t n;
        int err;

        if (nl)
            return tsqmp_take_line(q, nl, msg);
        if (q->len == q->cap && (err = tsqmp_grow(q)) < 0)
            return err;
        if ((err = tsqmp_wait(q->fd, POLLIN, deadline)) < 0)
            return err;
        n = recv(q->fd, q->buf + q->len, q->cap - q->len, 0);
        if (n == 0)
            return -ECONNRESET;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return -errno;
        if (n > 0)
            q->len += (size_t)n;
    }
}

static int tsqmp_send_all(struct tsqmp *q, const char *s, size_t len,
                          long long deadline)
{
    while (len > 0) {
        ssize_t n;
        int err = tsqmp_wait(q->fd, POLLOUT, deadline);

        if (err < 0)
            return err;
        /* MSG_NOSIGNAL: a QEMU that went away must fail the call, not
         * kill the test with SIGPIPE. */
        n = send(q->fd, s, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return -errno;
        if (n > 0) {
            s += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

static int tsqmp_send_msg(struct tsqmp *q, json_t *msg, long long deadline)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    int err;

    if (!text)
        return -ENOMEM;
    err = tsqmp_send_all(q, text, strlen(text), deadline);
    if (!err)
        err = tsqmp_send_all(q, "\n", 1, deadline);
    free(text);
    return err;
}

/* True when msg is the reply to the command with this id. Errors without
 * an id are QEMU's answer to a command it could not even parse, which can
 * only be the one in flight. */
static int tsqmp_is_reply(json_t *msg, long long id)
{
    json_t *jid = json_object_get(msg, "id");

    if (json_object_get(msg, "event"))
        return 0;
    if (!jid)
        return json_object_get(msg, "error") != NULL;
    return json_is_integer(jid) && json_integer_value(jid) == id;
}

/* Turns a reply into the result of tsqmp_execute(). */
static int tsqmp_reply_result(const char *command, json_t *reply, json_t **ret)
{
    json_t *err = json_object_get(reply, "error");
    json_t *val = json_object_get(reply, "return");

    if (err) {
        fprintf(stderr, "tsqmp: %s failed: %s: %s\n", command,
                json_string_value(json_object_get(err, "class")),
                json_string_value(json_object_get(err, "desc")));
        return -EREMOTEIO;
    }
    if (!val) {
        fprintf(stderr, "tsqmp: %s: reply has neither return nor error\n",
                command);
        return -EPROTO;
    }
    if (ret)
        *ret = json_incref(val);
    return 0;
}

static int tsqmp_execute_until(struct tsqmp *q, const char *command,
                               json_t *args, json_t **ret, long long deadline)
{
    /* The pid keeps ids unique when a forked process (Check's fork mode)
     * shares an inherited connection: a stale reply to the other process
     * can never be taken for ours. */
    long long id = (long long)getpid() << 32 | (++q->next_id & 0xffffffff);
    json_t *cmd, *reply = NULL;
    int err;

    if (q->broken) {
        fprintf(stderr,
                "tsqmp: %s: connection unusable after an oversized "
                "message\n",
                command);
        return -EMSGSIZE;
    }
    cmd = json_pack("{s:s, s:I}", "execute", command, "id", (json_int_t)id);
    if (!cmd)
        return -ENOMEM;
    if (args && json_object_set(cmd, "arguments", args) < 0) {
        json_decref(cmd);
        return -EINVAL;
    }
    err = tsqmp_send_msg(q, cmd, deadline);
    json_decref(cmd);
    while (!err) {
        err = tsqmp_read_msg(q, deadline, &reply);
        if (err == -EPROTO)
            err = 0; /* one bad line; the framing is intact */
        if (err || !reply)
            continue;
        if (tsqmp_is_reply(reply, id))
            break;
        json_decref(reply);
        reply = NULL;
    }
    if (err) {
        fprintf(stderr, "tsqmp: %s: %s\n", command, strerror(-err));
        return err;
    }
    err = tsqmp_reply_result(command, reply, ret);
    json_decref(reply);
    return err;
}

int tsqmp_execute(struct tsqmp *q, const char *command, json_t *args,
                  json_t **ret)
{
    if (ret)
        *ret = NULL;
    if (!q || !command || (args && !json_is_object(args)))
        return -EINVAL;
    return tsqmp_execute_until(q, command, args, ret,
                               tsqmp_now_ms() + q->timeout_ms);
}

/* Reads the greeting, which is how QEMU says it accepted this client. */
static int tsqmp_handshake(struct tsqmp *q, long long deadline)
{
    json_t *greeting = NULL;
    int err = tsqmp_read_msg(q, deadline, &greeting);

    if (err == -ETIMEDOUT)
        fprintf(stderr, "tsqmp: no QMP greeting (is another client "
                        "connected?)\n");
    else if (err)
        fprintf(stderr, "tsqmp: reading the QMP greeting: %s\n",
                strerror(-err));
    if (err)
        return err;
    if (!json_object_get(greeting, "QMP")) {
        fprintf(stderr, "tsqmp: first message is not a QMP greeting\n");
        json_decref(greeting);
        return -EPROTO;
    }
    json_decref(greeting);
    return tsqmp_execute_until(q, "qmp_capabilities", NULL, NULL, deadline);
}

int tsqmp_connect(const char *path, int timeout_ms, struct tsqmp **out)
{
    long long deadline = tsqmp_now_ms() + timeout_ms;
    struct tsqmp *q;
    int err;

    *out = NULL;
    if (!path || timeout_ms <= 0)
        return -EINVAL;
    q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->fd = -1;
    q->timeout_ms = TSQMP_DEFAULT_TIMEOUT_MS;
    err = tsqmp_connect_retry(path, deadline, &q->fd);
    if (err)
        fprintf(stderr, "tsqmp: cannot connect to %s: %s\n", path,
                strerror(-err));
    else
        err = tsqmp_handshake(q, deadline);
    if (err) {
        tsqmp_close(q);
        return err;
    }
    *out = q;
    return 0;
}

void tsqmp_close(struct tsqmp *q)
{
    if (!q)
        return;
    if (q->fd >= 0)
        close(q->fd);
    free(q->buf);
    free(q);
}

void tsqmp_set_timeout(struct tsqmp *q, int timeout_ms)
{
    if (q && timeout_ms > 0)
        q->timeout_ms = timeout_ms;
}

/* Appends a key event for qcode to the events array. */
static int tsqmp_add_key(json_t *events, const char *qcode, int down)
{
    json_t *ev =
        json_pack("{s:s, s:{s:b, s:{s:s, s:s}}}", "type", "key", "data", "down",
                  down, "key", "type", "qcode", "data", qcode);
    return ev ? json_array_append_new(events, ev) : -1;
}

static int tsqmp_send_events(struct tsqmp *q, json_t *events)
{
    json_t *args = json_pack("{s:o}", "events", events);
    int err;

    if (!args)
        return -ENOMEM;
    err = tsqmp_execute(q, "input-send-event", args, NULL);
    json_decref(args);
    return err;
}

int tsqmp_send_key_shift(struct tsqmp *q, const char *qcode, int shift)
{
    json_t *events;
    int bad = 0;

    if (!q || !qcode || !*qcode)
        return -EINVAL;
    events = json_array();
    if (!events)
        return -ENOMEM;
    if (shift)
        bad |= tsqmp_add_key(events, "shift", 1);
    bad |= tsqmp_add_key(events, qcode, 1);
    bad |= tsqmp_add_key(events, qcode, 0);
    if (shift)
        bad |= tsqmp_add_key(events, "shift", 0);
    if (bad) {
        json_decref(events);
        return -ENOMEM;
    }
    return tsqmp_send_events(q, events);
}

int tsqmp_send_key(struct tsqmp *q, const char *qcode)
{
    return tsqmp_send_key_shift(q, qcode, 0);
}

/* US layout: the qcode of each key and the characters it types. */
struct tsqmp_key {
    const char *qcode;
    char plain, shifted;
};

static const struct tsqmp_key tsqmp_us_keys[] = {
    {"1", '1', '!'},
    {"2", '2', '@'},
    {"3", '3', '#'},
    {"4", '4', '$'},
    {"5", '5', '%'},
    {"6", '6', '^'},
    {"7", '7', '&'},
    {"8", '8', '*'},
    {"9", '9', '('},
    {"0", '0', ')'},
    {"minus", '-', '_'},
    {"equal", '=', '+'},
    {"bracket_left", '[', '{'},
    {"bracket_right", ']', '}'},
    {"semicolon", ';', ':'},
    {"apostrophe", '\'', '"'},
    {"grave_accent", '`', '~'},
    {"backslash", '\\', '|'},
    {"comma", ',', '<'},
    {"dot", '.', '>'},
    {"slash", '/', '?'},
    {"spc", ' ', 0},
    {"ret", '\n', 0},
};

/* Finds the key that types c; letters are their own qcodes. */
static int tsqmp_key_for(char c, char letter[2], const char **qcode, int *shift)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        letter[0] = (char)(c | 0x20);
        letter[1] = '\0';
        *qcode = letter;
        *shift = c <= 'Z';
        return 0;
    }
    for (size_t i = 0; i < sizeof(tsqmp_us_keys) / sizeof(*tsqmp_us_keys);
         i++) {
        const struct tsqmp_key *k = &tsqmp_us_keys[i];
        if (c == k->plain || (k->shifted && c == k->shifted)) {
            *qcode = k->qcode;
            *shift = c != k->plain;
            return 0;
        }
    }
    return -EINVAL;
}

int tsqmp_type_text(struct tsqmp *q, const char *text)
{
    char letter[2];
    const char *qcode;
    int shift, err = 0;

    if (!q || !text)
        return -EINVAL;
    for (const char *p = text; *p; p++) {
        if (tsqmp_key_for(*p, letter, &qcode, &shift) < 0) {
            fprintf(stderr, "tsqmp: no US key types 0x%02x\n",
                    (unsigned char)*p);
            return -EINVAL;
        }
    }
    for (const char *p = text; *p && !err; p++) {
        tsqmp_key_for(*p, letter, &qcode, &shift);
        if (p != text)
            tsqmp_sleep_ms(TSQMP_KEY_GAP_MS);
        err = tsqmp_send_key_shift(q, qcode, shift);
    }
    return err;
}

int tsqmp_move_abs(struct tsqmp *q, int x, int y)
{
    json_t *events;

    if (!q || x < 0 || y < 0 || x > TSQMP_ABS_MAX || y > TSQMP_ABS_MAX)
        return -EINVAL;
    events = json_pack("[{s:s, s:{s:s, s:i}}, {s:s, s:{s:s, s:i}}]", "type",
                       "abs", "data", "axis", "x", "value", x, "type", "abs",
                       "data", "axis", "y", "value", y);
    if (!events)
        return -ENOMEM;
    return tsqmp_send_events(q, events);
}

int tsqmp_screendump(struct tsqmp *q, const char *path)
{
    json_t *args;
    int err;

    if (!q || !path)
        return -EINVAL;
    args = json_pack("{s:s}", "filename", path);
    if (!args)
        return -ENOMEM;
    err = tsqmp_execute(q, "screendump", args, NULL);
    json_decref(args);
    return err;
}
