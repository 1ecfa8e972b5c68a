/*
 * libFuzzer target: bytes from a hostile peer on the agent channel.
 *
 * Feeds arbitrary input through the guest side of the protocol exactly as
 * deskpool-agent does (dp_lines framing, then ag_ops_line) and through the
 * host side's parser (dp_msg_parse). The desktop behind the agent is a
 * small in-memory one: the thing under test is the protocol code, which
 * must answer everything with a reply or an error event, never crash,
 * leak or overflow. `make check` runs it for a bounded time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ag_desk.h"
#include "ag_ops.h"
#include "dp_msg.h"

struct mem_desk {
    struct ag_desk base;
    char user[AG_USER_MAX + 1];
    char clip[AG_CLIPBOARD_MAX + 1];
};

static int md_ready(struct ag_desk *d)
{
    (void)d;
    return 1;
}

static int md_status(struct ag_desk *d, struct ag_session *s, char *e, size_t n)
{
    (void)e, (void)n;
    memset(s, 0, sizeof(*s));
    strcpy(s->user, ((struct mem_desk *)d)->user);
    return 0;
}

static int md_prepare(struct ag_desk *d, const char *u, const char *dn, char *e,
                      size_t n)
{
    (void)dn, (void)e, (void)n;
    strcpy(((struct mem_desk *)d)->user, u);
    return 0;
}

static int md_nop(struct ag_desk *d, char *e, size_t n)
{
    (void)d, (void)e, (void)n;
    return 0;
}

static int md_res(struct ag_desk *d, int w, int h, int *gw, int *gh, char *e,
                  size_t n)
{
    (void)d, (void)e, (void)n;
    *gw = w > 1024 ? 1024 : w;
    *gh = h > 768 ? 768 : h;
    return 0;
}

static int md_msg(struct ag_desk *d, const char *t, char *e, size_t n)
{
    (void)d, (void)t, (void)e, (void)n;
    return 0;
}

static int md_clip_set(struct ag_desk *d, const char *t, char *e, size_t n)
{
    (void)e, (void)n;
    strcpy(((struct mem_desk *)d)->clip, t);
    return 0;
}

static int md_clip_get(struct ag_desk *d, char **t, char *e, size_t n)
{
    (void)e, (void)n;
    *t = strdup(((struct mem_desk *)d)->clip);
    return *t ? 0 : -12;
}

static int md_fd(struct ag_desk *d)
{
    (void)d;
    return -1;
}

static void md_process(struct ag_desk *d, short r, ag_desk_event_fn fn,
                       void *arg)
{
    (void)d, (void)r, (void)fn, (void)arg;
}

static const struct ag_desk_ops md_ops = {
    "memory", md_ready,    md_status,   md_prepare, md_nop, md_nop,     md_res,
    md_msg,   md_clip_set, md_clip_get, md_fd,      md_fd,  md_process, NULL,
};

static size_t sent;

static void on_send(void *arg, char *line)
{
    struct dp_msg m;
    const char *code;
    char detail[128];
    (void)arg;
    /* Whatever the agent sends must itself be a valid message. */
    if (dp_msg_parse(line, strlen(line) - 1, &m, &code, detail,
                     sizeof(detail)) < 0)
        abort();
    dp_msg_free(&m);
    sent++;
    free(line);
}

static void on_line(void *arg, char *line, size_t len)
{
    ag_ops_line(arg, line, len);
}

static char etc[] = "/tmp/deskpool-fuzz-etc-XXXXXX";

/* personalise's files go to etc; leave nothing behind in /tmp. */
static void remove_etc(void)
{
    char path[64];
    static const char *const files[] = {"hostname", "machine-id",
                                        "hostname.tmp", "machine-id.tmp"};
    for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
        snprintf(path, sizeof(path), "%s/%s", etc, files[i]);
        unlink(path);
    }
    rmdir(etc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mem_desk desk = {.base = {&md_ops}};
    static struct ag_ops *ops;
    struct dp_lines lines;
    struct dp_msg m;
    const char *code;
    char detail[256];

    if (!ops) {
        ops = ag_ops_new(&desk.base, on_send, NULL);
        /* personalise writes here and changes nothing live. */
        ag_ops_set_system(ops, mkdtemp(etc) ? etc : "/nonexistent", 0);
        atexit(remove_etc);
    }
    if (dp_lines_init(&lines) < 0)
        return 0;
    dp_lines_feed(&lines, (const char *)data, size, on_line, ops);
    dp_lines_free(&lines);
    if (dp_msg_parse((const char *)data, size, &m, &code, detail,
                     sizeof(detail)) == 0)
        dp_msg_free(&m);
    return 0;
}
