/*
 * td_cmd.c - control commands (see td_cmd.h for the protocol).
 */
#include "td_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* One command being run: where its reply and event go. */
struct td_cmd {
    struct td_desk *d;
    char *reply, *event;
    size_t size, event_size;
};

/* Splits "word rest" into word (bounded copy) and a pointer to rest ("" when
 * absent). Returns -EINVAL when the word does not fit. */
static int td_cmd_split(const char *line, char *word, size_t size,
                        const char **rest)
{
    size_t n = strcspn(line, " ");
    if (n == 0 || n >= size)
        return -EINVAL;
    memcpy(word, line, n);
    word[n] = '\0';
    *rest = line[n] ? line + n + 1 : "";
    return 0;
}

static int td_cmd_reply(struct td_cmd *c, int rc, const char *text)
{
    snprintf(c->reply, c->size, "%s%s%s", rc == 0 ? "ok" : "error",
             text[0] ? " " : "", text);
    return rc;
}

static int td_cmd_ok(struct td_cmd *c)
{
    return td_cmd_reply(c, 0, "");
}

static int td_cmd_refuse(struct td_cmd *c, const char *why)
{
    return td_cmd_reply(c, -EINVAL, why);
}

/* Names and messages are shown on screen: refuse what the font can't
 * draw rather than showing '?'s. */
static int td_cmd_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* Display names and clipboard text may be UTF-8: only control bytes are
 * refused. */
static int td_cmd_no_controls(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

/* Checks a user name; NULL when it is fine, else the reason. */
static const char *td_cmd_bad_user(const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] > 0x7e)
            return "non-printable argument";
    if (len > TD_DESK_NAME_MAX)
        return "argument too long";
    if (len == 0 || memchr(name, ' ', len) || memchr(name, '|', len))
        return "bad user name";
    return NULL;
}

static int td_cmd_mode(struct td_cmd *c, const char *arg)
{
    enum td_mode mode;
    if (td_mode_parse(arg, &mode) < 0)
        return td_cmd_refuse(c, "unknown mode (idle, typing, scroll, video)");
    td_desk_set_mode(c->d, mode);
    return td_cmd_ok(c);
}

static int td_cmd_user(struct td_cmd *c, const char *arg)
{
    const char *bad = arg[0] ? td_cmd_bad_user(arg, strlen(arg)) : NULL;
    if (bad)
        return td_cmd_refuse(c, bad);
    td_desk_set_user(c->d, arg);
    return td_cmd_ok(c);
}

static int td_cmd_session(struct td_cmd *c, const char *arg)
{
    size_t n = strcspn(arg, "|");
    const char *display = arg[n] ? arg + n + 1 : "";
    const char *bad = td_cmd_bad_user(arg, n);
    char user[TD_DESK_NAME_MAX + 1];

    if (bad)
        return td_cmd_refuse(c, bad);
    if (!td_cmd_no_controls(display))
        return td_cmd_refuse(c, "non-printable argument");
    if (strlen(display) > TD_DESK_DISPLAY_MAX)
        return td_cmd_refuse(c, "argument too long");
    memcpy(user, arg, n);
    user[n] = '\0';
    td_desk_set_session(c->d, user, display, (int64_t)time(NULL));
    td_desk_unlock(c->d);
    return td_cmd_ok(c);
}

static int td_cmd_logoff(struct td_cmd *c, const char *arg)
{
    char event[TD_DESK_EVENT_MAX];
    (void)arg;
    td_desk_end_session(c->d, event, sizeof(event));
    if (c->event)
        snprintf(c->event, c->event_size, "%s", event);
    return td_cmd_ok(c);
}

static int td_cmd_lock(struct td_cmd *c, const char *arg)
{
    (void)arg;
    td_desk_lock(c->d);
    return td_cmd_ok(c);
}

static int td_cmd_unlock(struct td_cmd *c, const char *arg)
{
    (void)arg;
    td_desk_unlock(c->d);
    return td_cmd_ok(c);
}

/* Parses 1-6 decimal digits at *p, advancing it. */
static int td_cmd_number(const char **p, int *out)
{
    int n = 0, v = 0;
    for (; **p >= '0' && **p <= '9'; (*p)++, n++)
        if (n < 6)
            v = v * 10 + (**p - '0');
    if (n == 0 || n > 6)
        return -EINVAL;
    *out = v;
    return 0;
}

static int td_cmd_resolution(struct td_cmd *c, const char *arg)
{
    const struct td_layout *l = td_desk_layout(c->d);
    int w, h, rc;
    char size[32];

    if (td_cmd_number(&arg, &w) < 0 || *arg++ != ' ' ||
        td_cmd_number(&arg, &h) < 0 || *arg)
        return td_cmd_refuse(c, "bad size (resolution W H)");
    rc = td_desk_resize(c->d, w, h);
    if (rc == -EINVAL)
        return td_cmd_refuse(c, "too small");
    if (rc < 0)
        return td_cmd_reply(c, rc, "out of memory");
    snprintf(size, sizeof(size), "%dx%d", l->width, l->height);
    /* Also when unchanged: whoever asked hears the size as it is. */
    if (c->event)
        snprintf(c->event, c->event_size, "event resolution %s", size);
    return td_cmd_reply(c, 0, size);
}

static int td_cmd_message(struct td_cmd *c, const char *arg)
{
    if (strlen(arg) > TD_DESK_MESSAGE_MAX)
        return td_cmd_refuse(c, "argument too long");
    td_desk_set_message(c->d, arg);
    return td_cmd_ok(c);
}

static int td_cmd_type(struct td_cmd *c, const char *arg)
{
    for (; *arg; arg++)
        td_desk_key(c->d, *arg);
    return td_cmd_ok(c);
}

static int td_cmd_clear(struct td_cmd *c, const char *arg)
{
    (void)arg;
    td_desk_clear_text(c->d);
    return td_cmd_ok(c);
}

/* Undoes the line escaping into out (TD_DESK_CLIPBOARD_MAX + 1 bytes).
 * Returns NULL or the reason for refusing the text. */
static const char *td_cmd_unescape(const char *s, char *out)
{
    size_t n = 0;
    for (; *s; s++) {
        char ch = *s;
        if ((unsigned char)ch < 0x20)
            return "non-printable argument";
        if (ch == '\\') {
            switch (*++s) {
            case '\\': ch = '\\'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            default: return "bad escape";
            }
        }
        if (n == TD_DESK_CLIPBOARD_MAX)
            return "too long";
        out[n++] = ch;
    }
    out[n] = '\0';
    return NULL;
}

static int td_cmd_clipboard_set(struct td_cmd *c, const char *arg)
{
    char text[TD_DESK_CLIPBOARD_MAX + 1];
    const char *bad = td_cmd_unescape(arg, text);
    if (bad)
        return td_cmd_refuse(c, bad);
    td_desk_set_clipboard(c->d, text);
    return td_cmd_ok(c);
}

/* Appends len bytes of s to the reply at *n, keeping it NUL-terminated. */
static int td_cmd_put(struct td_cmd *c, size_t *n, const char *s, size_t len)
{
    if (*n + len >= c->size)
        return -ENOSPC;
    memcpy(c->reply + *n, s, len);
    *n += len;
    c->reply[*n] = '\0';
    return 0;
}

static int td_cmd_clipboard_get(struct td_cmd *c, const char *arg)
{
    const char *s = td_desk_clipboard(c->d);
    size_t n = 0;
    int rc;

    (void)arg;
    rc = td_cmd_put(c, &n, *s ? "ok " : "ok", *s ? 3 : 2);
    for (; rc == 0 && *s; s++) {
        const char *esc = *s == '\\'   ? "\\\\"
                          : *s == '\n' ? "\\n"
                          : *s == '\r' ? "\\r"
                          : *s == '\t' ? "\\t"
                                       : NULL;
        rc = esc ? td_cmd_put(c, &n, esc, 2) : td_cmd_put(c, &n, s, 1);
    }
    if (rc < 0) /* a truncated escape would change the text: refuse */
        return td_cmd_reply(c, rc, "reply too long");
    return 0;
}

static int td_cmd_status(struct td_cmd *c, const char *arg)
{
    const struct td_layout *l = td_desk_layout(c->d);
    struct timespec ts;
    uint64_t now_ms;
    int sw, sh;

    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    td_desk_screen_size(c->d, &sw, &sh);
    snprintf(c->reply, c->size,
             "ok mode=%s user=%s size=%dx%d since=%lld idle=%llu locked=%d "
             "screen=%dx%d",
             td_mode_name(td_desk_mode(c->d)), td_desk_user(c->d), l->width,
             l->height, (long long)td_desk_since(c->d),
             (unsigned long long)td_desk_idle_seconds(c->d, now_ms),
             td_desk_locked(c->d), sw, sh);
    return 0;
}

static int td_cmd_ping(struct td_cmd *c, const char *arg)
{
    (void)arg;
    return td_cmd_reply(c, 0, "pong");
}

static const struct td_cmd_def {
    const char *word;
    int (*run)(struct td_cmd *c, const char *arg);
    int any_bytes; /* checks its own argument (UTF-8 allowed) */
} td_cmds[] = {
    {"mode", td_cmd_mode, 0},
    {"user", td_cmd_user, 0},
    {"session", td_cmd_session, 1},
    {"logoff", td_cmd_logoff, 0},
    {"lock", td_cmd_lock, 0},
    {"unlock", td_cmd_unlock, 0},
    {"resolution", td_cmd_resolution, 0},
    {"message", td_cmd_message, 0},
    {"type", td_cmd_type, 0},
    {"clear", td_cmd_clear, 0},
    {"clipboard-set", td_cmd_clipboard_set, 1},
    {"clipboard-get", td_cmd_clipboard_get, 0},
    {"status", td_cmd_status, 0},
    {"ping", td_cmd_ping, 0},
};

int td_cmd_exec(struct td_desk *d, const char *line, char *reply, size_t size,
                char *event, size_t event_size)
{
    struct td_cmd c = {d, reply, event, size, event_size};
    char word[16];
    const char *arg;

    if (event && event_size)
        event[0] = '\0';
    if (td_cmd_split(line, word, sizeof(word), &arg) < 0)
        return td_cmd_refuse(&c, "unknown command");
    for (size_t i = 0; i < sizeof(td_cmds) / sizeof(*td_cmds); i++) {
        if (strcmp(word, td_cmds[i].word) != 0)
            continue;
        if (!td_cmds[i].any_bytes && !td_cmd_printable(arg))
            return td_cmd_refuse(&c, "non-printable argument");
        return td_cmds[i].run(&c, arg);
    }
    if (!td_cmd_printable(arg))
        return td_cmd_refuse(&c, "non-printable argument");
    return td_cmd_refuse(&c, "unknown command");
}
