/*
 * td_input.c - evdev devices to testdesk events (see td_input.h).
 */
#include "td_input.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "td_keymap.h"

#define TD_BITS_LONG (8 * sizeof(long))
#define TD_TEST_BIT(bits, n)                                                   \
    ((bits[(n) / TD_BITS_LONG] >> ((n) % TD_BITS_LONG)) & 1)

struct td_input_dev {
    int fd;        /* -1: free slot */
    char name[32]; /* "eventN" */
    int has_abs;
    struct input_absinfo ax, ay;
    int raw_x, raw_y, moved;
};

struct td_input {
    char dir[128];
    int width, height;
    int shift; /* shift keys held, over all keyboards */
    int ctrl;  /* ctrl keys held, likewise */
    int alt;   /* alt keys held, likewise */
    int caps;  /* Caps Lock is on (a press toggles it, as on a desktop) */
    struct td_input_dev devs[TD_INPUT_DEVICES];
};

int td_input_new(struct td_input **out, const char *dir, int width, int height)
{
    struct td_input *in = calloc(1, sizeof(*in));
    if (!in)
        return -ENOMEM;
    snprintf(in->dir, sizeof(in->dir), "%s", dir);
    in->width = width;
    in->height = height;
    for (int i = 0; i < TD_INPUT_DEVICES; i++)
        in->devs[i].fd = -1;
    *out = in;
    return 0;
}

void td_input_free(struct td_input *in)
{
    if (!in)
        return;
    for (int i = 0; i < TD_INPUT_DEVICES; i++)
        if (in->devs[i].fd >= 0)
            close(in->devs[i].fd);
    free(in);
}

static int td_input_known(const struct td_input *in, const char *name)
{
    for (int i = 0; i < TD_INPUT_DEVICES; i++)
        if (in->devs[i].fd >= 0 && strcmp(in->devs[i].name, name) == 0)
            return 1;
    return 0;
}

/* Opens device `name` of dir_fd into slot d; returns 0 or -errno. */
static int td_input_open_dev(struct td_input_dev *d, int dir_fd,
                             const char *name)
{
    unsigned long ev[1] = {0}, abs[ABS_CNT / TD_BITS_LONG + 1] = {0};

    if (strlen(name) >= sizeof(d->name))
        return -ENAMETOOLONG;
    d->fd = openat(dir_fd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (d->fd < 0)
        return -errno;
    strcpy(d->name, name);
    ioctl(d->fd, EVIOCGBIT(0, sizeof(ev)), ev);
    ioctl(d->fd, EVIOCGBIT(EV_ABS, sizeof(abs)), abs);
    d->has_abs = TD_TEST_BIT(ev, EV_ABS) && TD_TEST_BIT(abs, ABS_X) &&
                 TD_TEST_BIT(abs, ABS_Y) &&
                 ioctl(d->fd, EVIOCGABS(ABS_X), &d->ax) == 0 &&
                 ioctl(d->fd, EVIOCGABS(ABS_Y), &d->ay) == 0 &&
                 d->ax.maximum > d->ax.minimum && d->ay.maximum > d->ay.minimum;
    d->moved = 0;
    return 0;
}

int td_input_rescan(struct td_input *in)
{
    DIR *dir = opendir(in->dir);
    struct dirent *e;
    int added = 0;

    if (!dir)
        return 0;
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, "event", 5) != 0 ||
            td_input_known(in, e->d_name))
            continue;
        for (int i = 0; i < TD_INPUT_DEVICES; i++) {
            if (in->devs[i].fd < 0) {
                if (td_input_open_dev(&in->devs[i], dirfd(dir), e->d_name) == 0)
                    added++;
                break;
            }
        }
    }
    closedir(dir);
    return added;
}

int td_input_pollfds(const struct td_input *in, struct pollfd *pfds)
{
    int n = 0;
    for (int i = 0; i < TD_INPUT_DEVICES; i++)
        if (in->devs[i].fd >= 0)
            pfds[n++] = (struct pollfd){.fd = in->devs[i].fd, .events = POLLIN};
    return n;
}

static int td_input_scale(int v, const struct input_absinfo *a, int size)
{
    long long span = (long long)a->maximum - a->minimum;
    long long pos = (long long)v - a->minimum;
    if (pos < 0)
        pos = 0;
    if (pos > span)
        pos = span;
    return (int)(pos * (size - 1) / span);
}

/* Counts a modifier key's presses and releases (repeats change nothing). */
static void td_input_modifier(int *held, int value)
{
    *held += value == 1 ? 1 : value == 0 ? -1 : 0;
    if (*held < 0)
        *held = 0;
}

static void td_input_key(struct td_input *in, const struct input_event *e,
                         td_input_fn fn, void *arg)
{
    struct td_input_event out = {0};

    if (e->code == KEY_LEFTSHIFT || e->code == KEY_RIGHTSHIFT) {
        td_input_modifier(&in->shift, e->value);
        return;
    }
    if (e->code == KEY_LEFTCTRL || e->code == KEY_RIGHTCTRL) {
        td_input_modifier(&in->ctrl, e->value);
        return;
    }
    if (e->code == KEY_LEFTALT || e->code == KEY_RIGHTALT) {
        td_input_modifier(&in->alt, e->value);
        return;
    }
    if (e->value == 0)
        return; /* releases type nothing; repeats (2) do */
    if (e->code == KEY_CAPSLOCK) {
        if (e->value == 1) /* a held Caps Lock does not toggle again */
            in->caps = !in->caps;
        return;
    }
    if (e->code == KEY_V && in->ctrl > 0) {
        out.kind = TD_INPUT_PASTE;
        fn(arg, &out);
        return;
    }
    if (e->code == KEY_DELETE && in->ctrl > 0 && in->alt > 0) {
        if (e->value == 1) { /* a held Ctrl+Alt+Del does not repeat */
            out.kind = TD_INPUT_SECURE;
            fn(arg, &out);
        }
        return;
    }
    if (e->code == BTN_LEFT || e->code == BTN_TOUCH || e->code == KEY_POWER) {
        if (e->value == 1) {
            out.kind = e->code == KEY_POWER ? TD_INPUT_POWER : TD_INPUT_CLICK;
            fn(arg, &out);
        }
        return;
    }
    out.kind = TD_INPUT_CHAR;
    out.ch = td_keymap_char(e->code, in->shift > 0);
    /* Caps Lock turns letters' case over (Shift turns it back) */
    if (in->caps && out.ch >= 'a' && out.ch <= 'z')
        out.ch = (char)(out.ch - 'a' + 'A');
    else if (in->caps && out.ch >= 'A' && out.ch <= 'Z')
        out.ch = (char)(out.ch - 'A' + 'a');
    if (out.ch)
        fn(arg, &out);
}

static void td_input_event(struct td_input *in, struct td_input_dev *d,
                           const struct input_event *e, td_input_fn fn,
                           void *arg)
{
    struct td_input_event out = {0};

    if (e->type == EV_KEY) {
        td_input_key(in, e, fn, arg);
    } else if (e->type == EV_ABS && d->has_abs && e->code == ABS_X) {
        d->raw_x = e->value;
        d->moved = 1;
    } else if (e->type == EV_ABS && d->has_abs && e->code == ABS_Y) {
        d->raw_y = e->value;
        d->moved = 1;
    } else if (e->type == EV_SYN && e->code == SYN_REPORT && d->moved) {
        /* One pointer event per report, with both axes up to date. */
        d->moved = 0;
        out.kind = TD_INPUT_POINTER;
        out.x = td_input_scale(d->raw_x, &d->ax, in->width);
        out.y = td_input_scale(d->raw_y, &d->ay, in->height);
        fn(arg, &out);
    }
}

static void td_input_read(struct td_input *in, struct td_input_dev *d,
                          td_input_fn fn, void *arg)
{
    struct input_event evs[64];
    ssize_t n;

    while ((n = read(d->fd, evs, sizeof(evs))) > 0)
        for (size_t i = 0; i < (size_t)n / sizeof(*evs); i++)
            td_input_event(in, d, &evs[i], fn, arg);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
        close(d->fd); /* unplugged: a rescan reopens it if it returns */
        d->fd = -1;
    }
}

void td_input_handle(struct td_input *in, const struct pollfd *pfds, int n,
                     td_input_fn fn, void *arg)
{
    for (int i = 0; i < n; i++) {
        if (!pfds[i].revents)
            continue;
        for (int k = 0; k < TD_INPUT_DEVICES; k++)
            if (in->devs[k].fd == pfds[i].fd)
                td_input_read(in, &in->devs[k], fn, arg);
    }
}
