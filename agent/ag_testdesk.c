/*
 * ag_testdesk.c - the agent's backend for the test guest's testdesk,
 * through testdesk's control socket (agent/testdesk/README.md).
 *
 * One connection carries both command replies and testdesk's broadcast
 * events. Commands are synchronous and short (testdesk answers at once);
 * events read while waiting for a reply are kept and handed out by
 * process(). If testdesk restarts, the backend reconnects.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ag_desk.h"
#include "dp_msg.h"
#include "dp_time.h"

#define TDB_TIMEOUT_MS   3000
#define TDB_RECONNECT_MS 1000
#define TDB_QUEUE_MAX    64

struct tdb_line {
    struct tdb_line *next;
    char text[];
};

struct tdb {
    struct ag_desk base;
    char path[108];
    int fd;
    uint64_t next_connect_ms;
    int announced; /* UP was reported for this connection */
    struct dp_lines in;
    struct tdb_line *lines, **lines_tail; /* read, not yet consumed */
    int nlines;
};

/* Says why into err and returns rc. */
static int tdb_fail(char *err, size_t n, int rc, const char *why)
{
    snprintf(err, n, "%s", why);
    return rc;
}

static void tdb_clear_lines(struct tdb *t)
{
    while (t->lines) {
        struct tdb_line *l = t->lines;
        t->lines = l->next;
        free(l);
    }
    t->lines_tail = &t->lines;
    t->nlines = 0;
}

static void tdb_disconnect(struct tdb *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    t->announced = 0;
    dp_lines_reset(&t->in);
    t->next_connect_ms = dp_time_now_ms() + TDB_RECONNECT_MS;
}

static int tdb_connect(struct tdb *t)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (t->fd >= 0)
        return 0;
    strcpy(sa.sun_path, t->path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int rc = -errno;
        close(fd);
        t->next_connect_ms = dp_time_now_ms() + TDB_RECONNECT_MS;
        return rc;
    }
    t->fd = fd;
    tdb_clear_lines(t);
    return 0;
}

static void tdb_on_line(void *arg, char *line, size_t len)
{
    struct tdb *t = arg;
    struct tdb_line *l;

    /* testdesk's lines are bounded; a runaway one or a flood is dropped. */
    if (!line || t->nlines >= TDB_QUEUE_MAX ||
        !(l = malloc(sizeof(*l) + len + 1)))
        return;
    memcpy(l->text, line, len + 1);
    l->next = NULL;
    *t->lines_tail = l;
    t->lines_tail = &l->next;
    t->nlines++;
}

/* Reads what is there (waiting at most wait_ms). Returns 0, or -EPIPE
 * when testdesk went away. */
static int tdb_read(struct tdb *t, int wait_ms)
{
    struct pollfd p = {.fd = t->fd, .events = POLLIN};
    char buf[8192];
    ssize_t n;

    if (poll(&p, 1, wait_ms) <= 0)
        return 0;
    n = read(t->fd, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        tdb_disconnect(t);
        return -EPIPE;
    }
    if (n > 0)
        dp_lines_feed(&t->in, buf, (size_t)n, tdb_on_line, t);
    return 0;
}

static int tdb_write_all(struct tdb *t, const char *s, size_t n,
                         uint64_t deadline)
{
    while (n > 0) {
        struct pollfd p = {.fd = t->fd, .events = POLLOUT};
        ssize_t w = send(t->fd, s, n, MSG_NOSIGNAL);
        if (w > 0) {
            s += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -EPIPE;
        if (dp_time_now_ms() >= deadline)
            return -ETIMEDOUT;
        poll(&p, 1, 100);
    }
    return 0;
}

/* Takes the first non-event line off the queue into reply. */
static int tdb_take_reply(struct tdb *t, char **reply)
{
    for (struct tdb_line **p = &t->lines; *p; p = &(*p)->next) {
        struct tdb_line *l = *p;
        if (strncmp(l->text, "event ", 6) == 0)
            continue;
        *p = l->next;
        if (t->lines_tail == &l->next)
            t->lines_tail = p;
        t->nlines--;
        *reply = strdup(l->text);
        free(l);
        return *reply ? 0 : -ENOMEM;
    }
    return -EAGAIN;
}

/*
 * Sends one command line and waits for its reply. On "ok[ DETAILS]"
 * returns 0 and DETAILS (malloc'd, may be "") in *details if not NULL; on
 * "error REASON" returns -EIO with REASON in err.
 */
static int tdb_cmd(struct tdb *t, const char *cmd, char **details, char *err,
                   size_t n)
{
    uint64_t deadline = dp_time_now_ms() + TDB_TIMEOUT_MS;
    char *reply = NULL;
    int rc = tdb_connect(t);

    if (rc < 0)
        return tdb_fail(err, n, -ENOTCONN, "testdesk is not running");
    /* Replies come in order: anything left over from a timed-out command
     * would be taken for ours, so a connection that lost track is reset. */
    rc = tdb_write_all(t, cmd, strlen(cmd), deadline);
    if (rc == 0)
        rc = tdb_write_all(t, "\n", 1, deadline);
    while (rc == 0 && tdb_take_reply(t, &reply) == -EAGAIN) {
        if (dp_time_now_ms() >= deadline)
            rc = -ETIMEDOUT;
        else
            rc = tdb_read(t, 100);
    }
    if (rc < 0) {
        tdb_disconnect(t);
        snprintf(err, n, "testdesk: %s", strerror(-rc));
        return rc;
    }
    if (strncmp(reply, "ok", 2) == 0 && (!reply[2] || reply[2] == ' ')) {
        if (details)
            *details = strdup(reply[2] ? reply + 3 : "");
        free(reply);
        return details && !*details ? -ENOMEM : 0;
    }
    snprintf(err, n, "%s",
             strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
    free(reply);
    return -EIO;
}

/* --- operations ------------------------------------------------------------
 */

static int tdb_ready(struct ag_desk *d)
{
    struct tdb *t = (struct tdb *)d;
    return t->fd >= 0 || tdb_connect(t) == 0;
}

/* Value of "key=" in a status line, copied into buf. */
static int tdb_field(const char *line, const char *key, char *buf, size_t n)
{
    size_t k = strlen(key);
    for (const char *p = line; p && *p; p = strchr(p, ' ')) {
        if (*p == ' ')
            p++;
        if (strncmp(p, key, k) == 0 && p[k] == '=') {
            size_t len = strcspn(p + k + 1, " ");
            snprintf(buf, n, "%.*s", (int)len, p + k + 1);
            return 0;
        }
    }
    return -ENOENT;
}

static int tdb_status(struct ag_desk *d, struct ag_session *s, char *err,
                      size_t n)
{
    char *details, num[32];
    int rc = tdb_cmd((struct tdb *)d, "status", &details, err, n);

    if (rc < 0)
        return rc;
    memset(s, 0, sizeof(*s));
    tdb_field(details, "user", s->user, sizeof(s->user));
    if (tdb_field(details, "since", num, sizeof(num)) == 0)
        s->since = strtoll(num, NULL, 10);
    if (tdb_field(details, "idle", num, sizeof(num)) == 0)
        s->idle_seconds = strtoll(num, NULL, 10);
    if (tdb_field(details, "locked", num, sizeof(num)) == 0)
        s->locked = num[0] == '1';
    free(details);
    return 0;
}

static int tdb_simple(struct ag_desk *d, const char *fmt, const char *a,
                      const char *b, char *err, size_t n)
{
    char cmd[512];
    if ((size_t)snprintf(cmd, sizeof(cmd), fmt, a, b) >= sizeof(cmd))
        return tdb_fail(err, n, -EINVAL, "too long");
    return tdb_cmd((struct tdb *)d, cmd, NULL, err, n);
}

static int tdb_prepare(struct ag_desk *d, const char *user, const char *display,
                       char *err, size_t n)
{
    return tdb_simple(d, "session %s|%s", user, display, err, n);
}

static int tdb_logoff(struct ag_desk *d, char *err, size_t n)
{
    return tdb_simple(d, "logoff%s%s", "", "", err, n);
}

static int tdb_lock(struct ag_desk *d, char *err, size_t n)
{
    return tdb_simple(d, "lock%s%s", "", "", err, n);
}

static int tdb_message(struct ag_desk *d, const char *text, char *err, size_t n)
{
    return tdb_simple(d, "message %s%s", text, "", err, n);
}

static int tdb_set_resolution(struct ag_desk *d, int w, int h, int *got_w,
                              int *got_h, char *err, size_t n)
{
    char cmd[64], *details;
    int rc;

    snprintf(cmd, sizeof(cmd), "resolution %d %d", w, h);
    rc = tdb_cmd((struct tdb *)d, cmd, &details, err, n);
    if (rc < 0)
        return rc;
    if (sscanf(details, "%dx%d", got_w, got_h) != 2) {
        snprintf(err, n, "testdesk: unexpected reply '%s'", details);
        rc = -EPROTO;
    }
    free(details);
    return rc;
}

/* testdesk's line escaping: \\ \n \r \t. Other control bytes are refused
 * before we get here. */
static char *tdb_escape(const char *prefix, const char *s)
{
    size_t n = strlen(prefix);
    char *out = malloc(n + 2 * strlen(s) + 1), *o;
    if (!out)
        return NULL;
    memcpy(out, prefix, n);
    o = out + n;
    for (; *s; s++) {
        const char *esc = *s == '\\'   ? "\\\\"
                          : *s == '\n' ? "\\n"
                          : *s == '\r' ? "\\r"
                          : *s == '\t' ? "\\t"
                                       : NULL;
        if (esc) {
            memcpy(o, esc, 2);
            o += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static int tdb_unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s != '\\') {
            *o++ = *s;
            continue;
        }
        switch (*++s) {
        case '\\': *o++ = '\\'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        default: return -EPROTO;
        }
    }
    *o = '\0';
    return 0;
}

static int tdb_clipboard_set(struct ag_desk *d, const char *text, char *err,
                             size_t n)
{
    char *cmd = tdb_escape("clipboard-set ", text);
    int rc;
    if (!cmd)
        return tdb_fail(err, n, -ENOMEM, "out of memory");
    rc = tdb_cmd((struct tdb *)d, cmd, NULL, err, n);
    free(cmd);
    return rc;
}

static int tdb_clipboard_get(struct ag_desk *d, char **text, char *err,
                             size_t n)
{
    int rc = tdb_cmd((struct tdb *)d, "clipboard-get", text, err, n);
    if (rc == 0 && tdb_unescape(*text) < 0) {
        free(*text);
        snprintf(err, n, "testdesk: bad escape in clipboard");
        return -EPROTO;
    }
    return rc;
}

/* --- events ------------------------------------------------------------------
 */

static int tdb_fd(struct ag_desk *d)
{
    return ((struct tdb *)d)->fd;
}

static int tdb_timeout_ms(struct ag_desk *d)
{
    struct tdb *t = (struct tdb *)d;
    uint64_t now = dp_time_now_ms();
    if (t->lines || (t->fd >= 0 && !t->announced))
        return 0;
    if (t->fd >= 0)
        return -1;
    return t->next_connect_ms <= now ? 0 : (int)(t->next_connect_ms - now);
}

static void tdb_event(const char *line, ag_desk_event_fn fn, void *arg)
{
    struct ag_desk_event ev = {0};

    if (strncmp(line, "event logoff ", 13) == 0) {
        /* "event logoff" alone: a logoff with nobody logged in, which
         * ends no session the host knows of. */
        ev.kind = AG_DESK_LOGOUT;
        snprintf(ev.user, sizeof(ev.user), "%s", line + 13);
        fn(arg, &ev);
    } else if (sscanf(line, "event resolution %dx%d", &ev.width, &ev.height) ==
               2) {
        ev.kind = AG_DESK_RESOLUTION;
        fn(arg, &ev);
    }
}

static void tdb_process(struct ag_desk *d, short revents, ag_desk_event_fn fn,
                        void *arg)
{
    struct tdb *t = (struct tdb *)d;
    struct ag_desk_event ev = {0};
    int was_up = t->fd >= 0;

    if (t->fd < 0 && dp_time_now_ms() >= t->next_connect_ms)
        tdb_connect(t);
    if (t->fd >= 0 && (revents & (POLLIN | POLLHUP | POLLERR)))
        tdb_read(t, 0);
    if (was_up && t->fd < 0) {
        ev.kind = AG_DESK_DOWN;
        fn(arg, &ev);
    }
    if (t->fd >= 0 && !t->announced) {
        t->announced = 1;
        ev.kind = AG_DESK_UP;
        fn(arg, &ev);
    }
    /* Only events are left unconsumed between commands. */
    while (t->lines) {
        struct tdb_line *l = t->lines;
        t->lines = l->next;
        t->nlines--;
        tdb_event(l->text, fn, arg);
        free(l);
    }
    t->lines_tail = &t->lines;
}

static void tdb_close(struct ag_desk *d)
{
    struct tdb *t = (struct tdb *)d;
    if (!t)
        return;
    if (t->fd >= 0)
        close(t->fd);
    tdb_clear_lines(t);
    dp_lines_free(&t->in);
    free(t);
}

static const struct ag_desk_ops tdb_ops = {
    .name = "testdesk",
    .ready = tdb_ready,
    .status = tdb_status,
    .prepare = tdb_prepare,
    .logoff = tdb_logoff,
    .lock = tdb_lock,
    .set_resolution = tdb_set_resolution,
    .message = tdb_message,
    .clipboard_set = tdb_clipboard_set,
    .clipboard_get = tdb_clipboard_get,
    .fd = tdb_fd,
    .timeout_ms = tdb_timeout_ms,
    .process = tdb_process,
    .close = tdb_close,
};

struct ag_desk *ag_testdesk_open(const char *path)
{
    struct tdb *t = calloc(1, sizeof(*t));

    if (!t || strlen(path) >= sizeof(t->path) || dp_lines_init(&t->in) < 0) {
        free(t);
        return NULL;
    }
    t->base.ops = &tdb_ops;
    strcpy(t->path, path);
    t->fd = -1;
    t->lines_tail = &t->lines;
    tdb_connect(t);
    return &t->base;
}
