/*
 * tsxfreerdp.c - xfreerdp on Xvfb for tests (see tsxfreerdp.h).
 */
#include "tsxfreerdp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsguest.h"

/* How long Xvfb may take to come up, and a process to go on SIGTERM. */
#define TSXFREERDP_XVFB_MS 20000
#define TSXFREERDP_TERM_MS 5000

/* XWD (X11's xwd.h, XWD_FILE_VERSION 7): a header of 25 big-endian
 * CARD32 fields, the window name, ncolors 12-byte colour entries, then
 * the pixels. */
#define XWD_HEADER_FIELDS 25
#define XWD_VERSION       7
#define XWD_ZPIXMAP       2
#define XWD_LSBFIRST      0
#define XWD_TRUECOLOR     4
#define XWD_COLOR_SIZE    12
enum {
    XWD_HEADER_SIZE,
    XWD_FILE_VERSION,
    XWD_PIXMAP_FORMAT,
    XWD_PIXMAP_DEPTH,
    XWD_PIXMAP_WIDTH,
    XWD_PIXMAP_HEIGHT,
    XWD_XOFFSET,
    XWD_BYTE_ORDER,
    XWD_BITMAP_UNIT,
    XWD_BITMAP_BIT_ORDER,
    XWD_BITMAP_PAD,
    XWD_BITS_PER_PIXEL,
    XWD_BYTES_PER_LINE,
    XWD_VISUAL_CLASS,
    XWD_RED_MASK,
    XWD_GREEN_MASK,
    XWD_BLUE_MASK,
    XWD_BITS_PER_RGB,
    XWD_COLORMAP_ENTRIES,
    XWD_NCOLORS,
};

struct tsxfreerdp {
    pid_t xvfb, client;
    int client_status, client_done;
    int display;      /* Xvfb's display number */
    char dir[256];    /* this instance's folder under the test root */
    char screen[300]; /* Xvfb's screen: DIR/Xvfb_screen0 */
    char log[300];    /* xfreerdp's output */
    uint32_t *shot;   /* the last screenshot */
    size_t shot_size; /* its capacity, in pixels */
};

/* FreeRDP 2.11 reads "-gfx" as "/gfx": without /gfx there is no pipeline.
 * With its default colour depth bitmap updates show colours a few steps
 * off (GFX surfaces are 32-bit whatever it is): ask for 32 bits. */
const char *tsxfreerdp_graphics_args(enum tsxfreerdp_graphics g)
{
    switch (g) {
    case TSXFREERDP_AVC420: return "/gfx:avc420";
    case TSXFREERDP_GFX: return "/gfx:rfx";
    case TSXFREERDP_BITMAP: return "/bpp:32";
    }
    return "";
}

const char *tsxfreerdp_log(const struct tsxfreerdp *x)
{
    return x->log;
}

void tsxfreerdp_print_log(const struct tsxfreerdp *x)
{
    char buf[4096];
    int fd = open(x->log, O_RDONLY | O_CLOEXEC);
    off_t end = fd < 0 ? 0 : lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
    ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof(buf), from);

    if (n > 0)
        fprintf(stderr, "tsxfreerdp: the end of %s:\n%.*s\n", x->log, (int)n,
                buf);
    if (fd >= 0)
        close(fd);
}

/* In the child: stdin from /dev/null, stdout and stderr to log. */
static void tsxfreerdp_redirect(const char *log)
{
    int in = open("/dev/null", O_RDONLY);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

    if (in < 0 || out < 0)
        _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
}

/* SIGTERM, then SIGKILL if pid has not gone within TSXFREERDP_TERM_MS;
 * reaped. Returns its wait status. */
static int tsxfreerdp_end(pid_t pid)
{
    long long until = tsguest_now_ms() + TSXFREERDP_TERM_MS;
    int status = 0;

    kill(pid, SIGTERM);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (tsguest_now_ms() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        tsguest_sleep_ms(20);
    }
    return status;
}

/* Reads the display number Xvfb writes to fd once it accepts clients. */
static int tsxfreerdp_read_display(int fd, pid_t xvfb)
{
    long long until = tsguest_now_ms() + TSXFREERDP_XVFB_MS;
    char buf[16];
    size_t len = 0;

    while (len < sizeof(buf) - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = until - tsguest_now_ms();
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) == 0) {
            fprintf(stderr, "tsxfreerdp: Xvfb (pid %d) did not come up\n",
                    (int)xvfb);
            return -ETIMEDOUT;
        }
        n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(buf, '\n', len))
            break;
    }
    buf[len] = '\0';
    if (!memchr(buf, '\n', len)) {
        fprintf(stderr, "tsxfreerdp: Xvfb exited before it was ready\n");
        return -ECHILD;
    }
    return atoi(buf);
}

static int tsxfreerdp_start_xvfb(struct tsxfreerdp *x)
{
    char size[64], fdarg[16], xlog[300];
    int fds[2], display;

    snprintf(size, sizeof(size), "%dx%dx24", TSXFREERDP_SCREEN_WIDTH,
             TSXFREERDP_SCREEN_HEIGHT);
    snprintf(xlog, sizeof(xlog), "%s/xvfb.log", x->dir);
    /* the read end stays with us; Xvfb inherits the write end */
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    x->xvfb = fork();
    if (x->xvfb < 0) {
        close(fds[0]);
        close(fds[1]);
        return -errno;
    }
    if (x->xvfb == 0) {
        char *argv[] = {"Xvfb",      "-displayfd", fdarg,    "-screen",
                        "0",         size,         "-fbdir", x->dir,
                        "-nolisten", "tcp",        NULL};
        int fd = dup(fds[1]); /* without O_CLOEXEC */

        snprintf(fdarg, sizeof(fdarg), "%d", fd);
        tsxfreerdp_redirect(xlog);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    display = tsxfreerdp_read_display(fds[0], x->xvfb);
    close(fds[0]);
    if (display < 0) {
        tsxfreerdp_end(x->xvfb);
        x->xvfb = 0;
        fprintf(stderr, "tsxfreerdp: see %s\n", xlog);
        return display;
    }
    x->display = display;
    return 0;
}

#define TSXFREERDP_EXTRA_MAX 8

static int tsxfreerdp_start_client(struct tsxfreerdp *x, int port,
                                   const char *user, const char *password,
                                   enum tsxfreerdp_graphics g,
                                   const char *const *extra)
{
    char server[64], u[160], p[160], disp[32];

    snprintf(server, sizeof(server), "/v:127.0.0.1:%d", port);
    snprintf(u, sizeof(u), "/u:%s", user);
    snprintf(p, sizeof(p), "/p:%s", password ? password : "");
    snprintf(disp, sizeof(disp), ":%d", x->display);
    x->client = fork();
    if (x->client < 0)
        return -errno;
    if (x->client == 0) {
        char *argv[8 + TSXFREERDP_EXTRA_MAX] = {
            "xfreerdp",
            server,
            u,
            p,
            "/cert:ignore",
            (char *)tsxfreerdp_graphics_args(g),
            "/log-level:INFO",
        };
        int i;

        for (i = 0; extra && extra[i] && i < TSXFREERDP_EXTRA_MAX; i++)
            argv[7 + i] = (char *)extra[i];

        /* its known_hosts and config go to the test's folder */
        setenv("DISPLAY", disp, 1);
        setenv("HOME", x->dir, 1);
        setenv("XDG_CONFIG_HOME", x->dir, 1);
        tsxfreerdp_redirect(x->log);
        execvp(argv[0], argv);
        _exit(127);
    }
    return 0;
}

int tsxfreerdp_start(struct tsxfreerdp **out, int port, const char *user,
                     const char *password, enum tsxfreerdp_graphics g)
{
    return tsxfreerdp_start_with(out, port, user, password, g, NULL);
}

int tsxfreerdp_start_with(struct tsxfreerdp **out, int port, const char *user,
                          const char *password, enum tsxfreerdp_graphics g,
                          const char *const *extra)
{
    static int serial;
    const char *root = tsguest_root();
    struct tsxfreerdp *x;
    int rc;

    *out = NULL;
    if (!root)
        return -EIO;
    x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    snprintf(x->dir, sizeof(x->dir), "%s/xfreerdp%d-%d", root, (int)getpid(),
             ++serial);
    snprintf(x->screen, sizeof(x->screen), "%s/Xvfb_screen0", x->dir);
    snprintf(x->log, sizeof(x->log), "%s/xfreerdp.log", x->dir);
    if (mkdir(x->dir, 0700) < 0) {
        rc = -errno;
        fprintf(stderr, "tsxfreerdp: %s: %s\n", x->dir, strerror(-rc));
        free(x);
        return rc;
    }
    rc = tsxfreerdp_start_xvfb(x);
    if (rc == 0)
        rc = tsxfreerdp_start_client(x, port, user, password, g, extra);
    if (rc < 0) {
        tsxfreerdp_stop(x);
        return rc;
    }
    fprintf(stderr, "tsxfreerdp: xfreerdp %s on :%d, output in %s\n",
            tsxfreerdp_graphics_args(g), x->display, x->log);
    *out = x;
    return 0;
}

int tsxfreerdp_running(struct tsxfreerdp *x, int *status)
{
    if (!x->client_done && x->client > 0 &&
        waitpid(x->client, &x->client_status, WNOHANG) == x->client)
        x->client_done = 1;
    if (status)
        *status = x->client_status;
    return x->client > 0 && !x->client_done;
}

/* Field i of an XWD header. */
static uint32_t tsxfreerdp_xwd(const unsigned char *h, int i)
{
    const unsigned char *p = h + 4 * i;

    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Checks the header of Xvfb's screen file: what the pixels are and where
 * they start (*offset), rows *stride bytes apart. */
static int tsxfreerdp_header(const unsigned char *h, int *w, int *hgt,
                             int *stride, off_t *offset)
{
    uint32_t hs = tsxfreerdp_xwd(h, XWD_HEADER_SIZE);
    uint32_t nc = tsxfreerdp_xwd(h, XWD_NCOLORS);

    if (tsxfreerdp_xwd(h, XWD_FILE_VERSION) != XWD_VERSION ||
        hs < 4 * XWD_HEADER_FIELDS || hs > 4096 || nc > 65536 ||
        tsxfreerdp_xwd(h, XWD_PIXMAP_FORMAT) != XWD_ZPIXMAP ||
        tsxfreerdp_xwd(h, XWD_BITS_PER_PIXEL) != 32 ||
        tsxfreerdp_xwd(h, XWD_BYTE_ORDER) != XWD_LSBFIRST ||
        tsxfreerdp_xwd(h, XWD_VISUAL_CLASS) != XWD_TRUECOLOR ||
        tsxfreerdp_xwd(h, XWD_RED_MASK) != 0xff0000 ||
        tsxfreerdp_xwd(h, XWD_GREEN_MASK) != 0xff00 ||
        tsxfreerdp_xwd(h, XWD_BLUE_MASK) != 0xff)
        return -EPROTO;
    *w = (int)tsxfreerdp_xwd(h, XWD_PIXMAP_WIDTH);
    *hgt = (int)tsxfreerdp_xwd(h, XWD_PIXMAP_HEIGHT);
    *stride = (int)tsxfreerdp_xwd(h, XWD_BYTES_PER_LINE);
    if (*w <= 0 || *w > 16384 || *hgt <= 0 || *hgt > 16384 ||
        *stride < *w * 4 || *stride > 65536 * 4)
        return -EPROTO;
    *offset = (off_t)hs + (off_t)nc * XWD_COLOR_SIZE;
    return 0;
}

/* Copies width x height pixels from the top-left corner of the screen
 * file into x->shot (the pad byte cleared). */
static int tsxfreerdp_copy(struct tsxfreerdp *x, int fd, int width, int height)
{
    unsigned char h[4 * XWD_HEADER_FIELDS];
    int sw, sh, stride;
    off_t off;

    if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
        tsxfreerdp_header(h, &sw, &sh, &stride, &off) < 0) {
        fprintf(stderr, "tsxfreerdp: %s is not a 32-bit TrueColor XWD\n",
                x->screen);
        return -EPROTO;
    }
    if (width > sw || height > sh)
        return -EINVAL;
    for (int y = 0; y < height; y++) {
        uint32_t *row = x->shot + (size_t)y * (size_t)width;
        size_t n = (size_t)width * 4;

        if (pread(fd, row, n, off + (off_t)y * stride) != (ssize_t)n) {
            fprintf(stderr, "tsxfreerdp: %s is short\n", x->screen);
            return -EPROTO;
        }
        for (int i = 0; i < width; i++)
            row[i] &= 0x00ffffffu;
    }
    return 0;
}

int tsxfreerdp_screen(struct tsxfreerdp *x, int width, int height,
                      struct tsscreen *out)
{
    size_t need;
    int fd, rc;

    if (width <= 0 || height <= 0 || width > TSXFREERDP_SCREEN_WIDTH ||
        height > TSXFREERDP_SCREEN_HEIGHT)
        return -EINVAL;
    need = (size_t)width * (size_t)height;
    if (need > x->shot_size) {
        uint32_t *p = realloc(x->shot, need * sizeof(*p));

        if (!p)
            return -ENOMEM;
        x->shot = p;
        x->shot_size = need;
    }
    fd = open(x->screen, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        fprintf(stderr, "tsxfreerdp: %s: %s\n", x->screen, strerror(-rc));
        return rc;
    }
    rc = tsxfreerdp_copy(x, fd, width, height);
    close(fd);
    if (rc == 0)
        *out = tsscreen_view(x->shot, width, height, width * 4);
    return rc;
}

void tsxfreerdp_stop(struct tsxfreerdp *x)
{
    if (!x)
        return;
    if (tsxfreerdp_running(x, NULL))
        tsxfreerdp_end(x->client);
    if (x->xvfb > 0)
        tsxfreerdp_end(x->xvfb);
    free(x->shot);
    free(x);
}

/* ------------------------------------------------------------------------
 * X tools on the same display */

/* Writes input to fd (then closes it) and reads fd_out into out until EOF
 * or the deadline. Returns the bytes read, or -ETIMEDOUT. */
static int tsxfreerdp_talk(int fd_in, const char *input, int fd_out, char *out,
                           size_t out_size, long long until)
{
    size_t n = 0;

    if (fd_in >= 0) {
        if (input && write(fd_in, input, strlen(input)) < 0) {
            /* the tool did not read: it will say so */
        }
        close(fd_in);
    }
    while (fd_out >= 0) {
        struct pollfd p = {.fd = fd_out, .events = POLLIN};
        long long left = until - tsguest_now_ms();
        ssize_t r;

        if (left <= 0)
            return -ETIMEDOUT;
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        r = read(fd_out, out + n, out_size - 1 - n);
        if (r <= 0 || (n += (size_t)r) >= out_size - 1)
            break;
    }
    if (out)
        out[n] = '\0';
    return (int)n;
}

int tsxfreerdp_x(struct tsxfreerdp *x, char *const argv[], const char *input,
                 char *out, size_t out_size, int timeout_ms)
{
    long long until = tsguest_now_ms() + timeout_ms;
    int in[2] = {-1, -1}, pout[2] = {-1, -1}, status = 0, r;
    char disp[32], log[320];
    pid_t pid;

    snprintf(disp, sizeof(disp), ":%d", x->display);
    snprintf(log, sizeof(log), "%s/xtools.log", x->dir);
    if (pipe2(in, O_CLOEXEC) < 0 || (out && pipe2(pout, O_CLOEXEC) < 0))
        return -errno;
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

        /* a tool that stays behind (xclip owning the selection) keeps
         * nothing of the test's: stdout goes to the log unless read */
        dup2(in[0], 0);
        dup2(out ? pout[1] : lf, 1);
        dup2(lf, 2);
        setenv("DISPLAY", disp, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    if (out)
        close(pout[1]);
    r = tsxfreerdp_talk(in[1], input, out ? pout[0] : -1, out, out_size, until);
    if (out)
        close(pout[0]);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (tsguest_now_ms() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -ETIMEDOUT;
        }
        tsguest_sleep_ms(10);
    }
    if (r < 0)
        return r;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
