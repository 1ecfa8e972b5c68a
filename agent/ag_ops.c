/*
 * ag_ops.c - the agent protocol, guest side (see ag_ops.h and
 * agent/PROTOCOL.md).
 */
#include "ag_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "dp_msg.h"

/* Bytes of a personalise request's random_seed. */
#define AG_SEED_BYTES 32

#define AG_VERSION_TEXT "deskpool-agent 1"

struct ag_ops {
    struct ag_desk *desk;
    ag_send_fn send;
    void *send_arg;
    char etc_dir[256];
    int live;
};

struct ag_ops *ag_ops_new(struct ag_desk *d, ag_send_fn send, void *arg)
{
    struct ag_ops *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->desk = d;
    a->send = send;
    a->send_arg = arg;
    ag_ops_set_system(a, "/etc", 1);
    return a;
}

void ag_ops_free(struct ag_ops *a)
{
    free(a);
}

void ag_ops_set_system(struct ag_ops *a, const char *etc_dir, int live)
{
    snprintf(a->etc_dir, sizeof(a->etc_dir), "%s", etc_dir);
    a->live = live;
}

static void ag_send(struct ag_ops *a, char *line)
{
    if (line)
        a->send(a->send_arg, line);
}

static void ag_event(struct ag_ops *a, const char *name, json_t *data)
{
    ag_send(a, dp_msg_event(name, data));
}

static void ag_error_event(struct ag_ops *a, const char *code,
                           const char *message)
{
    ag_event(a, "error",
             json_pack("{s:s, s:s}", "error", code, "message", message));
}

/* --- events to the host -----------------------------------------------------
 */

void ag_ops_hello(struct ag_ops *a)
{
    struct utsname u;
    char os[160] = "Linux", host[65] = "";

    if (uname(&u) == 0)
        snprintf(os, sizeof(os), "%s %s", u.sysname, u.release);
    gethostname(host, sizeof(host) - 1);
    ag_event(a, "hello",
             json_pack("{s:i, s:s, s:s, s:s}", "version", DP_MSG_VERSION, "os",
                       os, "hostname", host, "agent", AG_VERSION_TEXT));
    if (a->desk->ops->ready(a->desk)) {
        ag_event(a, "ready", NULL);
        ag_ops_heartbeat(a);
    }
}

void ag_ops_heartbeat(struct ag_ops *a)
{
    struct ag_session s;
    char err[256];

    if (a->desk->ops->status(a->desk, &s, err, sizeof(err)) < 0)
        return; /* no desktop, no news: the host notices the silence */
    ag_event(a, "heartbeat",
             json_pack("{s:s, s:I, s:I, s:b}", "user", s.user, "since",
                       (json_int_t)s.since, "idle_seconds",
                       (json_int_t)s.idle_seconds, "locked", s.locked));
}

void ag_ops_desk_event(void *arg, const struct ag_desk_event *ev)
{
    struct ag_ops *a = arg;

    switch (ev->kind) {
    case AG_DESK_LOGOUT:
        ag_event(a, "logout", json_pack("{s:s}", "user", ev->user));
        break;
    case AG_DESK_RESOLUTION:
        ag_event(
            a, "resolution",
            json_pack("{s:i, s:i}", "width", ev->width, "height", ev->height));
        break;
    case AG_DESK_UP:
        ag_event(a, "ready", NULL);
        ag_ops_heartbeat(a);
        break;
    case AG_DESK_DOWN: break; /* heartbeats stop; the host marks us unhealthy */
    }
}

/* --- requests ---------------------------------------------------------------
 */

/* What a handler says: NULL result and no error is a plain "ok". */
struct ag_reply {
    json_t *result;
    const char *code; /* NULL on success */
    char message[512];
};

static int ag_bad(struct ag_reply *r, const char *code, int rc)
{
    r->code = code;
    return rc;
}

/* Maps a backend failure to a protocol error. */
static int ag_desk_fail(struct ag_reply *r, int rc)
{
    return ag_bad(r, rc == -ENOTCONN ? "not-ready" : "failed", rc);
}

static int op_ping(struct ag_ops *a, json_t *args, struct ag_reply *r)
{
    (void)a, (void)args, (void)r;
    return 0;
}

static int op_prepare(struct ag_ops *a, json_t *args, struct ag_reply *r)
{
    const char *user, *display = "";
    int rc;

    if (dp_msg_string(args, "user", 1, AG_USER_MAX, 1, &user, r->message,
                      sizeof(r->message)) < 0)
        return ag_bad(r, "bad-request", -EINVAL);
    if (strpbrk(user, " |")) {
        snprintf(r->message, sizeof(r->message),
                 "user: no spaces or '|' in user names");
        return ag_bad(r, "bad-request", -EINVAL);
    }
    if (json_object_get(args, "display_name") &&
        dp_msg_string(args, "display_name", 0, 128, 1, &display, r->message,
                      sizeof(r->message)) < 0)
        return ag_bad(r, "bad-request", -EINVAL);
    rc = a->desk->ops->prepare(a->desk, user, display, r->message,
                               sizeof(r->message));
    if (rc < 0)
        return ag_desk_fail(r, rc);
    ag_event(a, "login", json_pack("{s:s}", "user", user));
    return 0;
}

static int op_logoff(struct ag_ops *a, json_t *args, struct ag_reply *r)
{
    (void)args;
    int rc = a->desk->ops->logoff(a->desk, r->message, sizeof(r->message));
    return rc < 0 ? ag_desk_fail(r, rc) : 0;
}

static int op_lock(struct ag_ops *a, json_t *args, struct ag_reply *r)
{
    (void)args;
    int rc = a->desk->ops->lock(a->desk, r->message, sizeof(r->message));
    return rc < 0 ? ag_desk_fail(r, rc) : 0;
}

static int op_set_resolution(struct ag_ops *a, json_t *args, struct ag_reply *r)
{
    json_int_t w, h;
    int gw, gh, rc;

    if (dp_msg_int(args, "width", 320, 8192, &w, r->message,
                   sizeof(r->message)) < 0 ||
        dp_msg_int(args, "height", 200, 8192, &h, r->message,
                   sizeof(r->message)) < 0)
        return ag_bad(r, "bad-request", -EINVAL);
    rc = a->desk->ops->set_resolution(a->desk, (int)w, (int)h, &gw, &gh,
                                      r->message, sizeof(r->message));
    if (rc < 0)
        return ag_desk_fail(r, rc);
    r->result = json_pack("{s:i, s:i}", "width", gw, "height", gh);
    return 0;
}

static int op_message(struct ag_ops *a, json_t *args, struct ag_reply *r)
{
    const char *text;
    int rc;

    /* "" takes the message away (e.g. a helpdesk stopped watching) */
    if (dp_msg_string(args, "text", 0, 256, 1, &text, r->message,
                      sizeof(r->message)) < 0)
        return ag_bad(r, "bad-request", -EINVAL);
    rc = a->desk->ops->message(a->desk, text, r->message, sizeof(r->message));
    return rc < 0 ? ag_desk_fail(r, rc) : 0;
}

static int op_clipboard_set(struct ag_ops *a, json_t *args, struct ag_reply *r)
{
    const char *text;
    int rc;

    if (dp_msg_string(args, "text", 0, AG_CLIPBOARD_MAX, 0, &text, r->message,
                      sizeof(r->message)) < 0)
        return ag_bad(r, "bad-request", -EINVAL);
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 && !strchr("\n\r\t", *p)) {
            snprintf(r->message, sizeof(r->message),
                     "text: control characters other than tab and newlines");
            return ag_bad(r, "bad-request", -EINVAL);
        }
    rc = a->desk->ops->clipboard_set(a->desk, text, r->message,
                                     sizeof(r->message));
    return rc < 0 ? ag_desk_fail(r, rc) : 0;
}

static int op_clipboard_get(struct ag_ops *a, json_t *args, struct ag_reply *r)
{
    char *text;
    int rc;
    (void)args;

    rc = a->desk->ops->clipboard_get(a->desk, &text, r->message,
                                     sizeof(r->message));
    if (rc < 0)
        return ag_desk_fail(r, rc);
    r->result = json_pack("{s:s}", "text", text);
    free(text);
    if (!r->result) { /* not UTF-8: the desktop handed us bytes */
        snprintf(r->message, sizeof(r->message), "clipboard is not UTF-8");
        return ag_bad(r, "failed", -EILSEQ);
    }
    return 0;
}

/* Writes text to path atomically. */
static int ag_write_file(const char *path, const char *text)
{
    char tmp[512];
    int fd, rc = 0;
    size_t n = strlen(text);

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (write(fd, text, n) != (ssize_t)n || fsync(fd) < 0)
        rc = -EIO;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static int ag_hostname_ok(const char *h)
{
    size_t n = strlen(h);
    return n >= 1 && n <= 63 && h[0] != '-' && h[n - 1] != '-' &&
           strspn(h, "abcdefghijklmnopqrstuvwxyz"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == n;
}

/* 2n lowercase hex digits into n bytes; -EINVAL for anything else. */
static int ag_unhex(const char *hex, unsigned char *out, size_t n)
{
    if (strlen(hex) != 2 * n || strspn(hex, "0123456789abcdef") != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* Adds n bytes to the kernel's pool through fd (/dev/random), credited
 * as n * 8 bits of entropy (needs CAP_SYS_ADMIN). */
static int ag_credit_entropy(int fd, const unsigned char *seed, size_t n)
{
    struct rand_pool_info *e = malloc(sizeof(*e) + n);
    int rc;

    if (!e)
        return -ENOMEM;
    e->entropy_count = (int)(n * 8);
    e->buf_size = (int)n;
    memcpy(e->buf, seed, n);
    rc = ioctl(fd, RNDADDENTROPY, e) < 0 ? -errno : 0;
    explicit_bzero(e->buf, n);
    free(e);
    return rc;
}

/* Mixes the host's fresh random bytes into the kernel's pool, credited
 * (a clone's pool is its template's: without new entropy all clones would
 * draw the same numbers until the kernel reseeds). Crediting needs root;
 * an agent without it still mixes them in by writing them. Not live:
 * the bytes go to etc_dir/random-seed, where tests read them. */
static int ag_add_entropy(struct ag_ops *a, const unsigned char *seed, size_t n)
{
    char path[512];
    int fd, rc = 0;

    snprintf(path, sizeof(path), "%s/random-seed", a->etc_dir);
    fd = a->live ? open("/dev/random", O_WRONLY | O_CLOEXEC)
                 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (!a->live || ag_credit_entropy(fd, seed, n) < 0)
        rc = write(fd, seed, n) == (ssize_t)n ? 0 : -EIO;
    close(fd);
    return rc;
}

static int op_personalise(struct ag_ops *a, json_t *args, struct ag_reply *r)
{
    const char *host, *mid, *seed_hex = NULL;
    unsigned char seed[AG_SEED_BYTES];
    json_int_t t = 0;
    char path[512], line[80];
    int rc;

    if (dp_msg_string(args, "hostname", 1, 63, 1, &host, r->message,
                      sizeof(r->message)) < 0 ||
        dp_msg_string(args, "machine_id", 32, 32, 1, &mid, r->message,
                      sizeof(r->message)) < 0 ||
        (json_object_get(args, "time") &&
         dp_msg_int(args, "time", 0, 1LL << 40, &t, r->message,
                    sizeof(r->message)) < 0) ||
        (json_object_get(args, "random_seed") &&
         dp_msg_string(args, "random_seed", 2 * AG_SEED_BYTES,
                       2 * AG_SEED_BYTES, 1, &seed_hex, r->message,
                       sizeof(r->message)) < 0))
        return ag_bad(r, "bad-request", -EINVAL);
    if (seed_hex && ag_unhex(seed_hex, seed, sizeof(seed)) < 0) {
        snprintf(r->message, sizeof(r->message),
                 "random_seed: %d lowercase hex digits", 2 * AG_SEED_BYTES);
        return ag_bad(r, "bad-request", -EINVAL);
    }
    if (!ag_hostname_ok(host) || strspn(mid, "0123456789abcdef") != 32) {
        snprintf(r->message, sizeof(r->message), "%s",
                 ag_hostname_ok(host) ? "machine_id: 32 lowercase hex digits"
                                      : "hostname: letters, digits, '-'");
        return ag_bad(r, "bad-request", -EINVAL);
    }
    snprintf(path, sizeof(path), "%s/machine-id", a->etc_dir);
    snprintf(line, sizeof(line), "%s\n", mid);
    rc = ag_write_file(path, line);
    snprintf(path, sizeof(path), "%s/hostname", a->etc_dir);
    snprintf(line, sizeof(line), "%s\n", host);
    if (rc == 0)
        rc = ag_write_file(path, line);
    if (rc == 0 && a->live && sethostname(host, strlen(host)) < 0)
        rc = -errno;
    if (rc == 0 && a->live && t > 0) {
        struct timespec ts = {.tv_sec = (time_t)t};
        if (clock_settime(CLOCK_REALTIME, &ts) < 0)
            rc = -errno;
    }
    if (rc == 0 && seed_hex)
        rc = ag_add_entropy(a, seed, sizeof(seed));
    explicit_bzero(seed, sizeof(seed));
    if (rc < 0) {
        snprintf(r->message, sizeof(r->message), "%s", strerror(-rc));
        return ag_bad(r, "failed", rc);
    }
    return 0;
}

static const struct {
    const char *op;
    int (*fn)(struct ag_ops *, json_t *, struct ag_reply *);
} ag_op_table[] = {
    {"ping", op_ping},
    {"prepare-session", op_prepare},
    {"logoff", op_logoff},
    {"lock", op_lock},
    {"set-resolution", op_set_resolution},
    {"personalise", op_personalise},
    {"message", op_message},
    {"clipboard-set", op_clipboard_set},
    {"clipboard-get", op_clipboard_get},
};

static void ag_request(struct ag_ops *a, struct dp_msg *m)
{
    struct ag_reply r = {0};

    for (size_t i = 0; i < sizeof(ag_op_table) / sizeof(*ag_op_table); i++) {
        if (strcmp(ag_op_table[i].op, m->name) != 0)
            continue;
        if (ag_op_table[i].fn(a, m->body, &r) < 0 && !r.code)
            r.code = "failed";
        if (r.code) {
            json_decref(r.result);
            ag_send(a, dp_msg_reply_error(m->id, r.code, r.message));
        } else {
            ag_send(a, dp_msg_reply_ok(m->id, r.result));
        }
        return;
    }
    snprintf(r.message, sizeof(r.message), "unknown op '%.64s'", m->name);
    ag_send(a, dp_msg_reply_error(m->id, "unknown-op", r.message));
}

void ag_ops_line(struct ag_ops *a, const char *line, size_t len)
{
    struct dp_msg m;
    const char *code;
    char detail[256];

    if (!line) {
        ag_error_event(a, "line-too-long", "line over 65536 bytes dropped");
        return;
    }
    if (dp_msg_parse(line, len, &m, &code, detail, sizeof(detail)) < 0) {
        ag_error_event(a, code, detail);
        return;
    }
    if (m.kind == DP_MSG_REQUEST) {
        ag_request(a, &m);
    } else if (m.kind == DP_MSG_EVENT && strcmp(m.name, "hello") == 0) {
        if (json_integer_value(json_object_get(m.body, "version")) !=
            DP_MSG_VERSION)
            ag_error_event(a, "version", "agent speaks version 1");
        else
            ag_ops_hello(a); /* the host (re)connected: introduce us */
    }
    /* Replies and other events: the host sends none we wait for. */
    dp_msg_free(&m);
}
