/*
 * testdesk - the desktop of Deskpool's test guest.
 *
 * Draws a small deterministic desktop on the Linux framebuffer, echoes typed
 * keys, follows the absolute pointer, and runs benchmark workloads. Options
 * come from the kernel command line (testdesk.mode=idle|typing|scroll|video)
 * or from argv, and the agent drives it at run time over a unix socket
 * (td_cmd.h). See README.md in this folder.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dp_time.h"
#include "td_cmd.h"
#include "td_ctl.h"
#include "td_desk.h"
#include "td_fb.h"
#include "td_input.h"

/* Look for new input devices and re-read the hostname this often. */
#define TD_RESCAN_MS 1000

/* Every reply and event the commands make fits the socket's lines. */
_Static_assert(TD_CTL_LINE_MAX >= TD_CMD_LINE_MAX + 2, "control lines");
_Static_assert(TD_CTL_EVENT_MAX >= TD_CMD_EVENT_MAX, "control events");

struct td_opts {
    const char *fb_path, *input_dir, *ctl_path;
    enum td_mode mode;
    int power_key_off; /* -P: the power button powers the machine off */
};

struct td_app {
    const struct td_opts *opts;
    struct td_desk *desk;
    struct td_fb *fb;
    struct td_input *input;
    struct td_ctl *ctl;
    /* The desk changed beyond its clock since the last full render. */
    int dirty;
};

static volatile sig_atomic_t td_stop;

static void td_on_signal(int sig)
{
    (void)sig;
    td_stop = 1;
}

/* Milliseconds until the wall clock's next second, and its text now. */
static int td_clock(char text[TD_CLOCK_CHARS + 1])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(text, TD_CLOCK_CHARS + 1, "%H:%M:%S", &tm);
    return (int)(1000 - ts.tv_nsec / 1000000) + 1;
}

/* Applies "testdesk.mode=..." from the kernel command line, if present. */
static void td_opts_from_cmdline(struct td_opts *o)
{
    char buf[4096], *tok, *save = NULL;
    FILE *f = fopen("/proc/cmdline", "r");
    size_t n;

    if (!f)
        return;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (tok = strtok_r(buf, " \n", &save); tok;
         tok = strtok_r(NULL, " \n", &save))
        if (strncmp(tok, "testdesk.mode=", 14) == 0 &&
            td_mode_parse(tok + 14, &o->mode) < 0)
            fprintf(stderr, "testdesk: unknown mode '%s', using idle\n",
                    tok + 14);
}

static int td_opts_parse(struct td_opts *o, int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "f:i:c:m:P")) != -1) {
        switch (c) {
        case 'P': o->power_key_off = 1; break;
        case 'f': o->fb_path = optarg; break;
        case 'i': o->input_dir = optarg; break;
        case 'c': o->ctl_path = optarg; break;
        case 'm':
            if (td_mode_parse(optarg, &o->mode) == 0)
                break;
            /* fall through */
        default:
            fprintf(stderr, "usage: testdesk [-f FB] [-i INPUT_DIR] "
                            "[-c CTL_SOCKET] [-m idle|typing|scroll|video] "
                            "[-P]\n");
            return -EINVAL;
        }
    }
    return 0;
}

static void td_on_power(struct td_app *app)
{
    printf("testdesk: power button%s\n",
           app->opts->power_key_off ? ", powering off" : "");
    fflush(stdout);
    /* As a desktop session does (logind's HandlePowerKey): ask init to
     * power off; busybox init and the test guest's take SIGUSR2. */
    if (app->opts->power_key_off)
        kill(1, SIGUSR2);
}

static void td_on_input(void *arg, const struct td_input_event *ev)
{
    struct td_app *app = arg;
    char event[TD_DESK_EVENT_MAX];

    app->dirty = 1;
    if (ev->kind == TD_INPUT_POWER) {
        td_on_power(app);
        return;
    }
    if (td_desk_input(app->desk, ev, dp_time_now_ms(), event, sizeof(event)) ==
        TD_EFFECT_LOGOFF) {
        printf("testdesk: logoff\n");
        fflush(stdout);
    }
    if (event[0] && app->ctl)
        td_ctl_broadcast(app->ctl, event);
}

static void td_on_command(void *arg, const char *line, char *reply, size_t size,
                          char *event, size_t event_size)
{
    struct td_app *app = arg;
    app->dirty = 1;
    td_cmd_exec(app->desk, line, reply, size, event, event_size);
}

/* The top bar shows the current hostname: the agent may change it (an
 * instant clone's personalisation). Only the top bar shows it, so it does
 * not make the desk dirty: td_desk_render_clock() redraws the bar. */
static void td_refresh_hostname(struct td_app *app)
{
    char host[TD_DESK_HOSTNAME_MAX + 1] = "";
    if (gethostname(host, sizeof(host) - 1) == 0)
        td_desk_set_hostname(app->desk, host);
}

/* Shows the desk: whole when it changed or a workload runs, else only
 * what the clock changes (an idle desktop's screen, once a second). */
static void td_show(struct td_app *app, const char *clock)
{
    int rows;

    if (app->dirty || td_desk_mode(app->desk) != TD_MODE_IDLE) {
        td_fb_present(app->fb, td_desk_render(app->desk, clock));
        app->dirty = 0;
        return;
    }
    td_fb_present_rows(app->fb, td_desk_render_clock(app->desk, clock, &rows),
                       0, rows);
}

static int td_min_timeout(int a, int b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* One turn of the loop: draw, then wait for input, commands or time. */
static void td_step(struct td_app *app, uint64_t *next_rescan)
{
    struct pollfd pfds[TD_INPUT_DEVICES + TD_CTL_POLLFDS];
    char clock[TD_CLOCK_CHARS + 1];
    int n_in, n_ctl = 0, timeout;
    uint64_t now = dp_time_now_ms();

    int second = now >= *next_rescan;

    if (second)
        td_refresh_hostname(app);
    timeout = td_min_timeout(td_desk_tick(app->desk, now), td_clock(clock));
    td_show(app, clock);
    if (second) {
        td_input_rescan(app->input);
        *next_rescan = now + TD_RESCAN_MS;
    }
    timeout = td_min_timeout(timeout, (int)(*next_rescan - now));
    n_in = td_input_pollfds(app->input, pfds);
    if (app->ctl)
        n_ctl = td_ctl_pollfds(app->ctl, pfds + n_in);
    if (poll(pfds, (nfds_t)(n_in + n_ctl), timeout) <= 0)
        return;
    td_input_handle(app->input, pfds, n_in, td_on_input, app);
    if (app->ctl)
        td_ctl_handle(app->ctl, pfds + n_in, n_ctl, td_on_command, app);
}

static int td_start(struct td_app *app, const struct td_opts *o)
{
    char host[TD_DESK_HOSTNAME_MAX + 1] = "";
    int w, h, bpp, rc;

    rc = td_fb_open(&app->fb, o->fb_path);
    if (rc < 0) {
        fprintf(stderr, "testdesk: %s: %s\n", o->fb_path, strerror(-rc));
        return rc;
    }
    td_fb_size(app->fb, &w, &h, &bpp);
    gethostname(host, sizeof(host) - 1);
    app->desk = td_desk_new(w, h, host);
    if (!app->desk) {
        fprintf(stderr, "testdesk: cannot lay out a %dx%d screen\n", w, h);
        return -EINVAL;
    }
    td_desk_set_mode(app->desk, o->mode);
    td_desk_note_input(app->desk, dp_time_now_ms()); /* idle since start */
    if (td_input_new(&app->input, o->input_dir, w, h) < 0)
        return -ENOMEM;
    /* The desktop works without its control socket; the agent can't. */
    rc = td_ctl_open(&app->ctl, o->ctl_path);
    if (rc < 0)
        fprintf(stderr, "testdesk: %s: %s\n", o->ctl_path, strerror(-rc));
    return 0;
}

static void td_finish(struct td_app *app)
{
    td_ctl_close(app->ctl);
    td_input_free(app->input);
    td_desk_free(app->desk);
    td_fb_close(app->fb);
}

int main(int argc, char **argv)
{
    struct td_opts o = {.fb_path = "/dev/fb0",
                        .input_dir = "/dev/input",
                        .ctl_path = "/run/testdesk.sock",
                        .mode = TD_MODE_IDLE};
    struct td_app app = {.opts = &o, .dirty = 1};
    char clock[TD_CLOCK_CHARS + 1];
    uint64_t next_rescan = 0;
    int w, h, bpp;

    td_opts_from_cmdline(&o);
    if (td_opts_parse(&o, argc, argv) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, td_on_signal);
    signal(SIGINT, td_on_signal);
    if (td_start(&app, &o) < 0) {
        td_finish(&app);
        return 1;
    }
    td_input_rescan(app.input);
    td_clock(clock);
    td_fb_present(app.fb, td_desk_render(app.desk, clock));
    td_fb_size(app.fb, &w, &h, &bpp);
    printf("testdesk: ready %dx%dx%d mode=%s\n", w, h, bpp,
           td_mode_name(o.mode));
    fflush(stdout);
    while (!td_stop)
        td_step(&app, &next_rescan);
    td_finish(&app);
    return 0;
}
