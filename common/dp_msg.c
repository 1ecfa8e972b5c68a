/*
 * dp_msg.c - agent protocol framing and messages (see dp_msg.h).
 */
#include "dp_msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- framing ------------------------------------------------------------ */

int dp_lines_init(struct dp_lines *l)
{
    memset(l, 0, sizeof(*l));
    l->buf = malloc(DP_MSG_LINE_MAX);
    return l->buf ? 0 : -ENOMEM;
}

void dp_lines_free(struct dp_lines *l)
{
    free(l->buf);
    memset(l, 0, sizeof(*l));
}

void dp_lines_reset(struct dp_lines *l)
{
    l->len = 0;
    l->skipping = 0;
}

static void dp_lines_emit(struct dp_lines *l, dp_line_fn fn, void *arg)
{
    size_t n = l->len;
    if (n > 0 && l->buf[n - 1] == '\r')
        n--;
    l->buf[n] = '\0';
    fn(arg, l->buf, n);
    l->len = 0;
}

void dp_lines_feed(struct dp_lines *l, const char *data, size_t n,
                   dp_line_fn fn, void *arg)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;

        if (l->skipping) {
            /* Drop the rest of an over-long line. */
        } else if (l->len + take >= DP_MSG_LINE_MAX) {
            l->skipping = 1;
            l->len = 0;
            fn(arg, NULL, 0);
        } else {
            memcpy(l->buf + l->len, data, take);
            l->len += take;
        }
        if (!nl)
            return;
        if (l->skipping)
            l->skipping = 0;
        else
            dp_lines_emit(l, fn, arg);
        data += take + 1;
        n -= take + 1;
    }
}

/* --- messages ------------------------------------------------------------ */

static int dp_fail(const char **err, const char *code, char *detail,
                   size_t size, const char *why)
{
    *err = code;
    snprintf(detail, size, "%s", why);
    return -EINVAL;
}

static int dp_depth(const json_t *j, int depth)
{
    const char *key;
    json_t *v;
    size_t i;
    int max = depth;

    if (depth > DP_MSG_DEPTH_MAX)
        return depth;
    if (json_is_object(j)) {
        json_object_foreach((json_t *)j, key, v)
        {
            int d = dp_depth(v, depth + 1);
            if (d > max)
                max = d;
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
        {
            int d = dp_depth(v, depth + 1);
            if (d > max)
                max = d;
        }
    }
    return max;
}

/* The body field (args, result, data): an object, or absent (empty). */
static int dp_body(struct dp_msg *m, const char *key)
{
    json_t *b = json_object_get(m->root, key);
    if (!b) {
        b = json_object();
        if (!b || json_object_set_new(m->root, key, b) < 0)
            return -ENOMEM;
    }
    if (!json_is_object(b))
        return -EINVAL;
    m->body = b;
    return 0;
}

static int dp_msg_classify(struct dp_msg *m, const char **err, char *detail,
                           size_t size)
{
    json_t *id = json_object_get(m->root, "id");
    json_t *op = json_object_get(m->root, "op");
    json_t *ok = json_object_get(m->root, "ok");
    json_t *ev = json_object_get(m->root, "event");

    if (json_is_string(ev) && !id && !op && !ok) {
        m->kind = DP_MSG_EVENT;
        m->name = json_string_value(ev);
        return dp_body(m, "data") ? dp_fail(err, "bad-request", detail, size,
                                            "data: must be an object")
                                  : 0;
    }
    if (!json_is_integer(id) || json_integer_value(id) < 1 ||
        json_integer_value(id) > 9007199254740991LL)
        return dp_fail(err, "bad-request", detail, size,
                       "id: must be an integer 1..2^53-1");
    m->id = json_integer_value(id);
    if (json_is_string(op) && !ok) {
        m->kind = DP_MSG_REQUEST;
        m->name = json_string_value(op);
        return dp_body(m, "args") ? dp_fail(err, "bad-request", detail, size,
                                            "args: must be an object")
                                  : 0;
    }
    if (json_is_boolean(ok) && !op) {
        m->kind = DP_MSG_REPLY;
        m->ok = json_is_true(ok);
        m->error = json_string_value(json_object_get(m->root, "error"));
        m->message = json_string_value(json_object_get(m->root, "message"));
        if (!m->message)
            m->message = "";
        if (!m->ok && !m->error)
            return dp_fail(err, "bad-request", detail, size,
                           "error: a failed reply needs an error code");
        return dp_body(m, "result") ? dp_fail(err, "bad-request", detail, size,
                                              "result: must be an object")
                                    : 0;
    }
    return dp_fail(err, "bad-request", detail, size,
                   "not a request, reply or event");
}

int dp_msg_parse(const char *line, size_t len, struct dp_msg *m,
                 const char **err, char *detail, size_t detail_size)
{
    json_error_t jerr;
    int rc;

    memset(m, 0, sizeof(*m));
    m->root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!m->root)
        return dp_fail(err, "bad-json", detail, detail_size, jerr.text);
    if (!json_is_object(m->root))
        rc = dp_fail(err, "bad-json", detail, detail_size, "not a JSON object");
    else if (dp_depth(m->root, 1) > DP_MSG_DEPTH_MAX)
        rc = dp_fail(err, "bad-json", detail, detail_size, "nested too deep");
    else
        rc = dp_msg_classify(m, err, detail, detail_size);
    if (rc < 0)
        dp_msg_free(m);
    return rc;
}

void dp_msg_free(struct dp_msg *m)
{
    json_decref(m->root);
    memset(m, 0, sizeof(*m));
}

/* Serializes obj (consumed) as one line with a newline. */
static char *dp_line(json_t *obj)
{
    char *text, *line = NULL;
    size_t n;

    if (!obj)
        return NULL;
    text = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(obj);
    if (!text)
        return NULL;
    n = strlen(text);
    if (n + 1 < DP_MSG_LINE_MAX && (line = malloc(n + 2))) {
        memcpy(line, text, n);
        memcpy(line + n, "\n", 2);
    }
    free(text);
    return line;
}

char *dp_msg_request(json_int_t id, const char *op, json_t *args)
{
    return dp_line(json_pack("{s:I, s:s, s:o}", "id", id, "op", op, "args",
                             args ? args : json_object()));
}

char *dp_msg_reply_ok(json_int_t id, json_t *result)
{
    if (!result)
        return dp_line(json_pack("{s:I, s:b}", "id", id, "ok", 1));
    return dp_line(
        json_pack("{s:I, s:b, s:o}", "id", id, "ok", 1, "result", result));
}

char *dp_msg_reply_error(json_int_t id, const char *code, const char *message)
{
    return dp_line(json_pack("{s:I, s:b, s:s, s:s}", "id", id, "ok", 0, "error",
                             code, "message", message));
}

char *dp_msg_event(const char *name, json_t *data)
{
    if (!data)
        return dp_line(json_pack("{s:s}", "event", name));
    return dp_line(json_pack("{s:s, s:o}", "event", name, "data", data));
}

static int dp_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

int dp_msg_string(const json_t *obj, const char *key, size_t min, size_t max,
                  int printable, const char **out, char *detail,
                  size_t detail_size)
{
    json_t *v = json_object_get(obj, key);
    size_t n;

    if (!json_is_string(v)) {
        snprintf(detail, detail_size, "%s: must be a string", key);
        return -EINVAL;
    }
    n = json_string_length(v);
    if (n < min || n > max || strlen(json_string_value(v)) != n) {
        snprintf(detail, detail_size, "%s: must be %zu..%zu bytes", key, min,
                 max);
        return -EINVAL;
    }
    if (printable && !dp_printable(json_string_value(v))) {
        snprintf(detail, detail_size, "%s: must be printable ASCII", key);
        return -EINVAL;
    }
    *out = json_string_value(v);
    return 0;
}

int dp_msg_int(const json_t *obj, const char *key, json_int_t lo, json_int_t hi,
               json_int_t *out, char *detail, size_t detail_size)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > hi) {
        snprintf(detail, detail_size, "%s: must be an integer %lld..%lld", key,
                 (long long)lo, (long long)hi);
        return -EINVAL;
    }
    *out = json_integer_value(v);
    return 0;
}

/* --- output queue ------------------------------------------------------------
 */

void dp_outq_init(struct dp_outq *q, size_t max)
{
    memset(q, 0, sizeof(*q));
    q->max = max;
}

void dp_outq_free(struct dp_outq *q)
{
    free(q->buf);
    memset(q, 0, sizeof(*q));
}

void dp_outq_clear(struct dp_outq *q)
{
    q->len = q->off = 0;
}

int dp_outq_push(struct dp_outq *q, char *line)
{
    size_t n;
    char *grown;

    if (!line)
        return -ENOMEM;
    n = strlen(line);
    if (q->off > 0) { /* drop what was written before growing */
        memmove(q->buf, q->buf + q->off, q->len - q->off);
        q->len -= q->off;
        q->off = 0;
    }
    if (q->len + n > q->max) {
        free(line);
        return -ENOBUFS;
    }
    grown = realloc(q->buf, q->len + n);
    if (!grown) {
        free(line);
        return -ENOMEM;
    }
    q->buf = grown;
    memcpy(q->buf + q->len, line, n);
    q->len += n;
    free(line);
    return 0;
}

int dp_outq_flush(struct dp_outq *q, int fd)
{
    while (q->off < q->len) {
        /* send() on sockets avoids SIGPIPE; write() for character devices
         * (the virtio port), where there is no SIGPIPE to fear. */
        ssize_t n = send(fd, q->buf + q->off, q->len - q->off, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, q->buf + q->off, q->len - q->off);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        q->off += (size_t)n;
    }
    q->len = q->off = 0;
    return 0;
}

int dp_outq_pending(const struct dp_outq *q)
{
    return q->len > q->off;
}
