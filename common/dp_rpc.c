/*
 * dp_rpc.c - one request, one reply over a local socket (see dp_rpc.h).
 */
#include "dp_rpc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp_msg.h"
#include "dp_time.h"
#include "dp_unix.h"

struct dp_rpc_wait {
    json_t *reply; /* the reply with id 1 */
};

static void dp_rpc_line(void *arg, char *line, size_t len)
{
    struct dp_rpc_wait *w = arg;
    json_t *j;

    if (w->reply)
        return;
    j = json_loadb(line, len, 0, NULL);
    if (json_integer_value(json_object_get(j, "id")) == 1)
        w->reply = j;
    else
        json_decref(j); /* hello and other events */
}

int dp_rpc_request(const char *path, const char *op, json_t *args,
                   int timeout_ms, json_t **result, char *code,
                   size_t code_size, char *err, size_t err_size)
{
    struct dp_rpc_wait w = {0};
    struct dp_lines lines;
    uint64_t deadline = dp_time_now_ms() + (uint64_t)timeout_ms;
    char *req = dp_msg_request(1, op, args), buf[4096];
    int fd, r = 0;
    size_t off = 0;

    *result = NULL;
    if (!req)
        return -ENOMEM;
    fd = dp_unix_connect(path);
    if (fd < 0) {
        snprintf(err, err_size, "%s: %s", path, strerror(-fd));
        free(req);
        return fd;
    }
    if (dp_lines_init(&lines)) {
        close(fd);
        free(req);
        return -ENOMEM;
    }
    while (off < strlen(req)) { /* a short line: one write in practice */
        ssize_t n = send(fd, req + off, strlen(req) - off, MSG_NOSIGNAL);

        if (n <= 0) {
            r = -EPIPE;
            break;
        }
        off += (size_t)n;
    }
    while (!r && !w.reply) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = (int64_t)(deadline - dp_time_now_ms());
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) == 0) {
            r = -ETIMEDOUT;
            break;
        }
        n = read(fd, buf, sizeof(buf));
        if (n <= 0) {
            r = -ECONNRESET;
            break;
        }
        dp_lines_feed(&lines, buf, (size_t)n, dp_rpc_line, &w);
    }
    if (r)
        snprintf(err, err_size, "%s: %s", path, strerror(-r));
    else if (!json_is_true(json_object_get(w.reply, "ok"))) {
        snprintf(err, err_size, "%s",
                 json_string_value(json_object_get(w.reply, "message"))
                     ?: "request failed");
        if (code)
            snprintf(code, code_size, "%s",
                     json_string_value(json_object_get(w.reply, "error"))
                         ?: "failed");
        r = -EREMOTEIO;
    } else {
        *result = json_incref(json_object_get(w.reply, "result"));
        if (!*result)
            *result = json_object();
    }
    json_decref(w.reply);
    dp_lines_free(&lines);
    close(fd);
    free(req);
    return r;
}
