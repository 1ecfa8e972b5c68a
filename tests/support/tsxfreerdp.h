/*
 * tsxfreerdp.h - the real FreeRDP X11 client (xfreerdp, Debian's
 * freerdp2-x11) on a virtual X server (Xvfb) for tests: what a user of a
 * Linux thin client runs, seen through a screenshot of its window.
 *
 * Xvfb gets a display number of its own choosing (-displayfd, so parallel
 * tests never race for one) and keeps its screen in an XWD file
 * (-fbdir): the screenshot is read straight from that file, no X client
 * library or tool needed. Without a window manager xfreerdp's window sits
 * at (0,0) with no decorations, so the window is the top-left corner of
 * the screen.
 *
 * Processes are started with fork and execvp (xfreerdp and Xvfb from
 * PATH), argv arrays only; their output goes to log files in a folder of
 * their own under the test root (tsguest_root()), and tsguest_cleanup()
 * ends an Xvfb a failed test left behind (its command line names the
 * folder; xfreerdp exits when its X server goes away).
 *
 * No Check assertions inside: functions return 0 or a negative errno and
 * print the reason to stderr, prefixed "tsxfreerdp:".
 */
#ifndef TSXFREERDP_H
#define TSXFREERDP_H

#include "tsscreen.h"

/* Xvfb's screen: larger than any test desktop, so the window fits. */
#define TSXFREERDP_SCREEN_WIDTH  1280
#define TSXFREERDP_SCREEN_HEIGHT 1024

/* How xfreerdp asks for graphics (its command line options). */
enum tsxfreerdp_graphics {
    TSXFREERDP_AVC420, /* /gfx:avc420: the graphics pipeline with H.264 */
    TSXFREERDP_GFX,    /* /gfx:rfx: the graphics pipeline, no H.264 */
    TSXFREERDP_BITMAP, /* /bpp:32 and no /gfx: no graphics pipeline,
                        * 32-bit bitmap updates (FreeRDP 2.11 reads
                        * "-gfx" as "/gfx") */
};

/* An Xvfb with one xfreerdp on it; opaque. */
struct tsxfreerdp;

/*
 * Starts Xvfb (TSXFREERDP_SCREEN_WIDTH x _HEIGHT, 24 bits), waits until it
 * accepts clients, then starts xfreerdp on it connecting to
 * 127.0.0.1:port as user with password, the certificate ignored (tests run
 * self-signed ones), asking for graphics g. Returns once xfreerdp runs,
 * not once it is connected: look at the screen for that. 0 with *out, or
 * a negative errno with *out NULL and nothing left running.
 */
int tsxfreerdp_start(struct tsxfreerdp **out, int port, const char *user,
                     const char *password, enum tsxfreerdp_graphics g);

/* The same with more xfreerdp options (NULL-terminated, at most 8), e.g.
 * "/dynamic-resolution". */
int tsxfreerdp_start_with(struct tsxfreerdp **out, int port, const char *user,
                          const char *password, enum tsxfreerdp_graphics g,
                          const char *const *extra);

/*
 * Runs an X tool (argv[0] from PATH: xclip, xdotool) on xfreerdp's
 * display, as its user would: input (may be NULL) goes to its stdin; its
 * stdout into out (NUL-terminated, when out is not NULL; else to a log in
 * the instance's folder). Waits up to timeout_ms for it to exit (a tool
 * that forks to stay behind, as xclip -i does, is not waited for).
 * Returns its exit status, or a negative errno (-ETIMEDOUT: killed).
 */
int tsxfreerdp_x(struct tsxfreerdp *x, char *const argv[], const char *input,
                 char *out, size_t out_size, int timeout_ms);

/* The xfreerdp command line's graphics option for g, for messages. */
const char *tsxfreerdp_graphics_args(enum tsxfreerdp_graphics g);

/*
 * Is xfreerdp still running? 1 if so; 0 once it has exited, with its
 * wait status in *status when status is not NULL.
 */
int tsxfreerdp_running(struct tsxfreerdp *x, int *status);

/*
 * A screenshot of xfreerdp's window, width x height pixels from the
 * screen's top-left corner: a copy of Xvfb's screen as XRGB8888
 * (0x00RRGGBB) into *out, owned by x and valid until the next call or
 * tsxfreerdp_stop(). -EINVAL when the size exceeds the screen, -EPROTO
 * for a screen file that is not the 32-bit TrueColor XWD Xvfb writes.
 */
int tsxfreerdp_screen(struct tsxfreerdp *x, int width, int height,
                      struct tsscreen *out);

/* The file xfreerdp's stdout and stderr go to. */
const char *tsxfreerdp_log(const struct tsxfreerdp *x);

/* Prints the last lines of that file (4 KB at most) to stderr. */
void tsxfreerdp_print_log(const struct tsxfreerdp *x);

/*
 * Ends xfreerdp, then Xvfb (SIGTERM, SIGKILL after 5 s), reaps both and
 * frees x. The log files stay until the test root is removed. NULL is
 * fine.
 */
void tsxfreerdp_stop(struct tsxfreerdp *x);

#endif
