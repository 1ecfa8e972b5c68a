/*
 * td_cmd.c - control commands (see td_cmd.h for the protocol).
 */
#include "td_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

static int td_cmd_reply(char *reply, size_t size, int rc, const char *text)
{
    snprintf(reply, size, "%s%s%s", rc == 0 ? "ok" : "error",
             text[0] ? " " : "", text);
    return rc;
}

static int td_cmd_mode(struct td_desk *d, const char *arg, char *reply,
                       size_t size)
{
    enum td_mode mode;
    if (td_mode_parse(arg, &mode) < 0)
        return td_cmd_reply(reply, size, -EINVAL,
                            "unknown mode (idle, typing, scroll, video)");
    td_desk_set_mode(d, mode);
    return td_cmd_reply(reply, size, 0, "");
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

static int td_cmd_status(struct td_desk *d, char *reply, size_t size)
{
    const struct td_layout *l = td_desk_layout(d);
    snprintf(reply, size, "ok mode=%s user=%s size=%dx%d",
             td_mode_name(td_desk_mode(d)), td_desk_user(d), l->width,
             l->height);
    return 0;
}

int td_cmd_exec(struct td_desk *d, const char *line, char *reply,
                size_t size)
{
    char word[16];
    const char *arg;

    if (td_cmd_split(line, word, sizeof(word), &arg) < 0)
        return td_cmd_reply(reply, size, -EINVAL, "unknown command");
    if (!td_cmd_printable(arg))
        return td_cmd_reply(reply, size, -EINVAL, "non-printable argument");
    if (strcmp(word, "mode") == 0)
        return td_cmd_mode(d, arg, reply, size);
    if (strcmp(word, "user") == 0 && strlen(arg) <= TD_DESK_NAME_MAX) {
        td_desk_set_user(d, arg);
        return td_cmd_reply(reply, size, 0, "");
    }
    if (strcmp(word, "message") == 0 && strlen(arg) <= TD_DESK_MESSAGE_MAX) {
        td_desk_set_message(d, arg);
        return td_cmd_reply(reply, size, 0, "");
    }
    if (strcmp(word, "type") == 0) {
        for (; *arg; arg++)
            td_desk_key(d, *arg);
        return td_cmd_reply(reply, size, 0, "");
    }
    if (strcmp(word, "clear") == 0) {
        td_desk_clear_text(d);
        return td_cmd_reply(reply, size, 0, "");
    }
    if (strcmp(word, "status") == 0)
        return td_cmd_status(d, reply, size);
    if (strcmp(word, "ping") == 0)
        return td_cmd_reply(reply, size, 0, "pong");
    if (strcmp(word, "user") == 0 || strcmp(word, "message") == 0)
        return td_cmd_reply(reply, size, -EINVAL, "argument too long");
    return td_cmd_reply(reply, size, -EINVAL, "unknown command");
}
