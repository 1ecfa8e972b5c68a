/*
 * ag_logind.c - the agent's backend for ordinary Linux desktops, where
 * systemd-logind knows the sessions.
 *
 * Session state, logoff and lock go through loginctl; screen size,
 * messages and the clipboard go through xrandr, notify-send and xclip run
 * as the session's user on its X display (when X runs). Programs are run
 * with argv arrays, never a shell. What a desktop lacks (no X, no
 * notification daemon) fails with a clear message, not silently.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ag_desk.h"
#include "dp_time.h"

#define LGD_TIMEOUT_MS   5000
#define LGD_OUT_MAX      (AG_CLIPBOARD_MAX + 1)
#define LGD_WATCH_MS     2000 /* how often to look for a logout */
#define LGD_SESSIONS_DIR "/run/systemd/sessions" /* logind's session files */

struct lgd {
    struct ag_desk base;
    char session[32], user[AG_USER_MAX + 1], display[32];
    uint64_t next_watch_ms;
    int announced;
};

/* Says why into err and returns rc. */
static int lgd_fail(char *err, size_t n, int rc, const char *why)
{
    snprintf(err, n, "%s", why);
    return rc;
}

/* In the child: become the session's user on its display. */
static void lgd_become(const char *user, const char *display)
{
    struct passwd *pw = getpwnam(user);
    char bus[64];

    if (!pw || setgid(pw->pw_gid) < 0 || initgroups(user, pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0)
        _exit(126);
    snprintf(bus, sizeof(bus), "unix:path=/run/user/%u/bus",
             (unsigned)pw->pw_uid);
    setenv("HOME", pw->pw_dir, 1);
    setenv("USER", user, 1);
    setenv("DBUS_SESSION_BUS_ADDRESS", bus, 1);
    if (display[0])
        setenv("DISPLAY", display, 1);
}

/*
 * Runs argv (as user on display when user is not NULL), feeding input to
 * its stdin, collecting stdout into *out (malloc'd, if out is not NULL).
 * Returns 0 when it exits 0, else -EIO with its stderr's start in err.
 */
static int lgd_run(char *const argv[], const char *user, const char *display,
                   const char *input, char **out, char *err, size_t n)
{
    int in[2], o[2], e[2], status, rc = 0;
    size_t len = 0;
    char *buf = malloc(LGD_OUT_MAX);
    char ebuf[256] = "";
    pid_t pid;

    if (!buf || pipe2(in, O_CLOEXEC) || pipe2(o, O_CLOEXEC) ||
        pipe2(e, O_CLOEXEC)) {
        free(buf);
        return lgd_fail(err, n, -ENOMEM, "out of resources");
    }
    pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(o[1], 1);
        dup2(e[1], 2);
        if (user)
            lgd_become(user, display);
        execvp(argv[0], argv);
        fprintf(stderr, "%s: not installed", argv[0]);
        _exit(127);
    }
    close(in[0]);
    close(o[1]);
    close(e[1]);
    if (input)
        (void)!write(in[1], input, strlen(input));
    close(in[1]);
    /* Small outputs: read stdout to EOF (bounded), then stderr. */
    for (ssize_t r;
         pid > 0 && (r = read(o[0], buf + len, LGD_OUT_MAX - 1 - len)) > 0;)
        len += (size_t)r;
    buf[len] = '\0';
    ssize_t er = read(e[0], ebuf, sizeof(ebuf) - 1);
    ebuf[er > 0 ? er : 0] = '\0';
    close(o[0]);
    close(e[0]);
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        ebuf[strcspn(ebuf, "\n")] = '\0';
        snprintf(err, n, "%s: %s", argv[0], ebuf[0] ? ebuf : "failed");
        rc = -EIO;
    }
    if (rc == 0 && out)
        *out = buf;
    else
        free(buf);
    return rc;
}

/* The logind class of session id ("user", "greeter", "lock-screen",
 * "background", ...) from its file in dir; "" if it cannot be read. */
static void lgd_class(const char *dir, const char *id, char *cls, size_t n)
{
    char path[256], line[128];
    FILE *f;

    cls[0] = '\0';
    snprintf(path, sizeof(path), "%s/%s", dir, id);
    f = fopen(path, "re");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "CLASS=", 6) == 0) {
            snprintf(cls, n, "%.*s", (int)strcspn(line + 6, "\n"), line + 6);
            break;
        }
    if (f)
        fclose(f);
}

void ag_logind_pick(const char *list, const char *sessions_dir, char *session,
                    size_t session_size, char *user, size_t user_size)
{
    char *copy = strdup(list ? list : ""), *line, *save = NULL;
    char id[32], uid[16], name[AG_USER_MAX + 1], seat[32], cls[32];
    int found = 0;

    session[0] = user[0] = '\0';
    for (line = copy ? strtok_r(copy, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        int on_seat;

        seat[0] = '\0';
        if (sscanf(line, "%31s %15s %64s %31s", id, uid, name, seat) < 3 ||
            strchr(id, '/') || id[0] == '.')
            continue;
        lgd_class(sessions_dir, id, cls, sizeof(cls));
        if (cls[0] && strcmp(cls, "user") != 0)
            continue; /* a greeter, a lock screen: no one's desktop */
        on_seat = seat[0] && strncmp(seat, "seat", 4) == 0;
        if (!found || on_seat) {
            snprintf(session, session_size, "%s", id);
            snprintf(user, user_size, "%s", name);
            found = 1;
            if (on_seat)
                break;
        }
    }
    free(copy);
}

/* Finds the user's graphical session (ag_logind_pick()). Fills session,
 * user and clears display. */
static int lgd_find_session(struct lgd *l, char *err, size_t n)
{
    char *const list[] = {"loginctl", "list-sessions", "--no-legend", NULL};
    char *out;
    int rc = lgd_run(list, NULL, NULL, NULL, &out, err, n);

    l->session[0] = l->user[0] = l->display[0] = '\0';
    if (rc < 0)
        return rc;
    ag_logind_pick(out, LGD_SESSIONS_DIR, l->session, sizeof(l->session),
                   l->user, sizeof(l->user));
    free(out);
    return 0;
}

static int lgd_prop(const char *props, const char *key, char *val, size_t n)
{
    size_t k = strlen(key);
    for (const char *p = props; p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, key, k) == 0 && p[k] == '=') {
            snprintf(val, n, "%.*s", (int)strcspn(p + k + 1, "\n"), p + k + 1);
            return 0;
        }
    }
    val[0] = '\0';
    return -ENOENT;
}

/* Login time from logind's session file (REALTIME=, microseconds). */
static int64_t lgd_since(const char *session)
{
    char path[96], line[128];
    long long us = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", LGD_SESSIONS_DIR, session);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "REALTIME=%lld", &us) == 1)
            break;
    if (f)
        fclose(f);
    return us / 1000000;
}

static int lgd_status(struct ag_desk *d, struct ag_session *s, char *err,
                      size_t n)
{
    struct lgd *l = (struct lgd *)d;
    char *props, val[64];
    int rc = lgd_find_session(l, err, n);

    memset(s, 0, sizeof(*s));
    if (rc < 0 || !l->session[0])
        return rc;
    char *const show[] = {"loginctl",   "show-session", l->session,      "-p",
                          "IdleHint",   "-p",           "IdleSinceHint", "-p",
                          "LockedHint", "-p",           "Display",       NULL};
    rc = lgd_run(show, NULL, NULL, NULL, &props, err, n);
    if (rc < 0)
        return rc;
    snprintf(s->user, sizeof(s->user), "%s", l->user);
    s->since = lgd_since(l->session);
    lgd_prop(props, "Display", l->display, sizeof(l->display));
    lgd_prop(props, "LockedHint", val, sizeof(val));
    s->locked = strcmp(val, "yes") == 0;
    lgd_prop(props, "IdleHint", val, sizeof(val));
    if (strcmp(val, "yes") == 0) {
        lgd_prop(props, "IdleSinceHint", val, sizeof(val));
        s->idle_seconds =
            (int64_t)time(NULL) - strtoll(val, NULL, 10) / 1000000;
        if (s->idle_seconds < 0)
            s->idle_seconds = 0;
    }
    free(props);
    return 0;
}

static int lgd_ready(struct ag_desk *d)
{
    (void)d;
    return access("/run/systemd/seats", F_OK) == 0;
}

/* A session action through loginctl: terminate-session, lock-session. */
static int lgd_session_cmd(struct lgd *l, const char *verb, char *err, size_t n)
{
    int rc = lgd_find_session(l, err, n);
    if (rc < 0)
        return rc;
    if (!l->session[0])
        return lgd_fail(err, n, -ENOENT, "nobody is logged in");
    char *const argv[] = {"loginctl", (char *)verb, l->session, NULL};
    return lgd_run(argv, NULL, NULL, NULL, NULL, err, n);
}

static int lgd_prepare(struct ag_desk *d, const char *user, const char *display,
                       char *err, size_t n)
{
    /* The user logs in through the display manager; a logind desktop has
     * nothing to show in advance. Accept, so the host can go on. */
    (void)d, (void)user, (void)display, (void)err, (void)n;
    return 0;
}

static int lgd_logoff(struct ag_desk *d, char *err, size_t n)
{
    return lgd_session_cmd((struct lgd *)d, "terminate-session", err, n);
}

static int lgd_lock(struct ag_desk *d, char *err, size_t n)
{
    return lgd_session_cmd((struct lgd *)d, "lock-session", err, n);
}

/* The session's user on its X display, or why there is none. */
static int lgd_x_session(struct lgd *l, char *err, size_t n)
{
    struct ag_session s;
    int rc = lgd_status(&l->base, &s, err, n);
    if (rc < 0)
        return rc;
    if (!l->user[0] || !l->display[0])
        return lgd_fail(err, n, -ENOTSUP,
                        "no X session (Wayland or nobody logged in)");
    return 0;
}

static int lgd_set_resolution(struct ag_desk *d, int w, int h, int *got_w,
                              int *got_h, char *err, size_t n)
{
    struct lgd *l = (struct lgd *)d;
    char size[32], *out, *cur;
    int rc = lgd_x_session(l, err, n);

    if (rc < 0)
        return rc;
    snprintf(size, sizeof(size), "%dx%d", w, h);
    char *const set[] = {"xrandr", "-s", size, NULL};
    char *const get[] = {"xrandr", "--current", NULL};
    rc = lgd_run(set, l->user, l->display, NULL, NULL, err, n);
    if (rc == 0)
        rc = lgd_run(get, l->user, l->display, NULL, &out, err, n);
    if (rc < 0)
        return rc;
    cur = strstr(out, "current ");
    if (!cur || sscanf(cur, "current %d x %d", got_w, got_h) != 2)
        rc = lgd_fail(err, n, -EPROTO, "xrandr: no current size");
    free(out);
    return rc;
}

static int lgd_message(struct ag_desk *d, const char *text, char *err, size_t n)
{
    struct lgd *l = (struct lgd *)d;
    int rc;
    char *const argv[] = {"notify-send", "Deskpool", (char *)text, NULL};

    if (!text[0]) /* a notification goes away by itself */
        return 0;
    rc = lgd_x_session(l, err, n);
    return rc < 0 ? rc : lgd_run(argv, l->user, l->display, NULL, NULL, err, n);
}

static int lgd_clipboard_set(struct ag_desk *d, const char *text, char *err,
                             size_t n)
{
    struct lgd *l = (struct lgd *)d;
    int rc = lgd_x_session(l, err, n);
    char *const argv[] = {"xclip", "-selection", "clipboard", "-i", NULL};
    return rc < 0 ? rc : lgd_run(argv, l->user, l->display, text, NULL, err, n);
}

static int lgd_clipboard_get(struct ag_desk *d, char **text, char *err,
                             size_t n)
{
    struct lgd *l = (struct lgd *)d;
    int rc = lgd_x_session(l, err, n);
    char *const argv[] = {"xclip", "-selection", "clipboard", "-o", NULL};
    return rc < 0 ? rc : lgd_run(argv, l->user, l->display, NULL, text, err, n);
}

static int lgd_fd(struct ag_desk *d)
{
    (void)d;
    return -1;
}

static int lgd_timeout_ms(struct ag_desk *d)
{
    struct lgd *l = (struct lgd *)d;
    uint64_t now = dp_time_now_ms();
    return l->next_watch_ms <= now ? 0 : (int)(l->next_watch_ms - now);
}

/* No push from logind without D-Bus: look every LGD_WATCH_MS for the
 * session's user disappearing. */
static void lgd_process(struct ag_desk *d, short revents, ag_desk_event_fn fn,
                        void *arg)
{
    struct lgd *l = (struct lgd *)d;
    struct ag_desk_event ev = {0};
    char before[AG_USER_MAX + 1], err[256];

    (void)revents;
    if (dp_time_now_ms() < l->next_watch_ms)
        return;
    l->next_watch_ms = dp_time_now_ms() + LGD_WATCH_MS;
    snprintf(before, sizeof(before), "%s", l->user);
    lgd_find_session(l, err, sizeof(err));
    if (!l->announced && lgd_ready(d)) {
        l->announced = 1;
        ev.kind = AG_DESK_UP;
        fn(arg, &ev);
    }
    if (before[0] && strcmp(before, l->user) != 0) {
        ev.kind = AG_DESK_LOGOUT;
        snprintf(ev.user, sizeof(ev.user), "%s", before);
        fn(arg, &ev);
    }
}

static void lgd_close(struct ag_desk *d)
{
    free(d);
}

static const struct ag_desk_ops lgd_ops = {
    .name = "logind",
    .ready = lgd_ready,
    .status = lgd_status,
    .prepare = lgd_prepare,
    .logoff = lgd_logoff,
    .lock = lgd_lock,
    .set_resolution = lgd_set_resolution,
    .message = lgd_message,
    .clipboard_set = lgd_clipboard_set,
    .clipboard_get = lgd_clipboard_get,
    .fd = lgd_fd,
    .timeout_ms = lgd_timeout_ms,
    .process = lgd_process,
    .close = lgd_close,
};

struct ag_desk *ag_logind_open(void)
{
    struct lgd *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->base.ops = &lgd_ops;
    /* A child's exit must not stop us; we wait for our own. */
    signal(SIGPIPE, SIG_IGN);
    return &l->base;
}
