/*
 * tsvnc.c - a VNC test client on libvncclient (see tsvnc.h).
 *
 * Byte counting: libvncclient 0.9.14 reads its socket itself and counts
 * nothing, so it is given one end of a socketpair and a relay thread
 * copies between that and the real connection, counting what the server
 * sent. Every path (TCP, gateway, QEMU's socket) goes through the same
 * relay, so comparisons between them stay fair.
 */
#include "tsvnc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <rfb/rfbclient.h>

#include "tsppm.h"

/* libvncclient 0.9.14 carries its own copy of TurboJPEG (exported) and
 * never frees the tight decoder's handle: rfbClientCleanup() forgets it. */
int tjDestroy(void *handle);

struct tsvnc {
    rfbClient *cl;
    int server_fd; /* the real connection */
    int app_fd;    /* our end of the relay, next to libvncclient's */
    int stop[2];   /* pipe: tells the relay to end */
    pthread_t relay;
    int relay_running;
    _Atomic uint64_t bytes;
    uint64_t updates;
    uint64_t area; /* pixels received, to know the first frame is whole */
    char err[512];
};

static const char tsvnc_tag;
static __thread struct tsvnc *tsvnc_current; /* for libvncclient's log */

/* libvncclient's informational lines are dropped, except the ones that
 * say why the server refused us ("VNC connection failed: REASON"). */
static void tsvnc_log_info(const char *fmt, ...)
{
    struct tsvnc *c = tsvnc_current;
    char line[512];
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (!c || !strstr(line, "failed"))
        return;
    n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    snprintf(c->err, sizeof(c->err), "%s", line);
}

/* libvncclient's errors (the server's refusal reason among them) become
 * the client's error text. */
static void tsvnc_log_err(const char *fmt, ...)
{
    struct tsvnc *c = tsvnc_current;
    va_list ap;
    size_t n;

    if (!c)
        return;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    n = strlen(c->err);
    while (n && c->err[n - 1] == '\n')
        c->err[--n] = '\0';
}

static int tsvnc_fail(struct tsvnc *c, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (!c->err[0] || err != -EPROTO)
        vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return err;
}

/* Copies bytes both ways until either side closes or we are told to
 * stop; counts what comes from the server. */
static void *tsvnc_relay(void *arg)
{
    struct tsvnc *c = arg;
    char buf[65536];

    for (;;) {
        struct pollfd p[3] = {{.fd = c->server_fd, .events = POLLIN},
                              {.fd = c->app_fd, .events = POLLIN},
                              {.fd = c->stop[0], .events = POLLIN}};
        int i;

        if (poll(p, 3, -1) < 0 && errno != EINTR)
            break;
        if (p[2].revents)
            break;
        for (i = 0; i < 2; i++) {
            int from = i ? c->app_fd : c->server_fd;
            int to = i ? c->server_fd : c->app_fd;
            ssize_t n, off = 0;

            if (!p[i].revents)
                continue;
            n = read(from, buf, sizeof(buf));
            if (n <= 0) {
                shutdown(to, SHUT_WR);
                if (i == 0)
                    shutdown(c->app_fd, SHUT_RDWR);
                return NULL;
            }
            if (i == 0)
                c->bytes += (uint64_t)n;
            while (off < n) {
                ssize_t w = write(to, buf + off, (size_t)(n - off));

                if (w <= 0)
                    return NULL;
                off += w;
            }
        }
    }
    return NULL;
}

/* After each rectangle that carried pixels. */
static void tsvnc_got_update(rfbClient *cl, int x, int y, int w, int h)
{
    struct tsvnc *c = rfbClientGetClientData(cl, (void *)&tsvnc_tag);

    (void)x;
    (void)y;
    c->area += (uint64_t)w * (uint64_t)h;
}

static void tsvnc_finished(rfbClient *cl)
{
    struct tsvnc *c = rfbClientGetClientData(cl, (void *)&tsvnc_tag);

    c->updates++;
}

static char *tsvnc_no_password(rfbClient *cl)
{
    (void)cl;
    return strdup("");
}

static char *tsvnc_password;

static char *tsvnc_get_password(rfbClient *cl)
{
    (void)cl;
    return strdup(tsvnc_password ? tsvnc_password : "");
}

/* Frees everything; c may be half set up. */
void tsvnc_close(struct tsvnc *c)
{
    if (!c)
        return;
    if (c->relay_running) {
        if (write(c->stop[1], "x", 1) < 0) {
            /* the relay ends with the sockets anyway */
        }
        pthread_join(c->relay, NULL);
    }
    if (c->cl) {
        free(c->cl->frameBuffer);
        c->cl->frameBuffer = NULL;
        if (c->cl->tjhnd)
            tjDestroy(c->cl->tjhnd);
        c->cl->tjhnd = NULL;
        rfbClientCleanup(c->cl); /* closes app_fd's peer end */
    }
    if (c->server_fd >= 0)
        close(c->server_fd);
    if (c->app_fd >= 0)
        close(c->app_fd);
    if (c->stop[0] >= 0) {
        close(c->stop[0]);
        close(c->stop[1]);
    }
    free(c);
}

const char *tsvnc_error(const struct tsvnc *c)
{
    return c ? c->err : "no client";
}

/* Reads until a whole update was applied or the time is up. */
static int tsvnc_handle(struct tsvnc *c, int timeout_ms, int until_update)
{
    uint64_t before = c->updates;
    long long left = timeout_ms;
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    tsvnc_current = c;
    for (;;) {
        int r = WaitForMessage(c->cl, (unsigned)(left > 0 ? left : 0) * 1000);

        if (r < 0)
            return tsvnc_fail(c, -ECONNRESET, "connection ended");
        if (r > 0 && !HandleRFBServerMessage(c->cl))
            return tsvnc_fail(c, -ECONNRESET, "server closed the connection");
        if (until_update && c->updates > before)
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        left = timeout_ms - ((t1.tv_sec - t0.tv_sec) * 1000 +
                             (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return 0;
    }
}

/* Sets up libvncclient on the relay and runs the RFB handshake up to the
 * first whole framebuffer. */
static int tsvnc_start(struct tsvnc *c, const char *password,
                       const struct tsvnc_options *o)
{
    int pair[2], timeout = o && o->timeout_ms > 0 ? o->timeout_ms : 10000;
    rfbClient *cl;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0 ||
        pipe2(c->stop, O_CLOEXEC) < 0)
        return tsvnc_fail(c, -errno, "socketpair: %s", strerror(errno));
    c->app_fd = pair[0];
    if (pthread_create(&c->relay, NULL, tsvnc_relay, c)) {
        close(pair[1]);
        return tsvnc_fail(c, -EAGAIN, "cannot start the relay thread");
    }
    c->relay_running = 1;

    rfbClientLog = tsvnc_log_info;
    rfbClientErr = tsvnc_log_err;
    tsvnc_current = c;
    c->cl = cl = rfbGetClient(8, 3, 4);
    if (!cl) {
        close(pair[1]);
        return tsvnc_fail(c, -ENOMEM, "out of memory");
    }
    rfbClientSetClientData(cl, (void *)&tsvnc_tag, c);
    /* XRGB8888 in a uint32_t, like the framebuffers tests compare. */
    cl->format.redShift = 16;
    cl->format.greenShift = 8;
    cl->format.blueShift = 0;
    cl->appData.encodingsString =
        o && o->encodings ? o->encodings : "tight zrle raw";
    cl->appData.enableJPEG = o && o->quality >= 0;
    cl->appData.qualityLevel = o ? o->quality : -1;
    cl->appData.compressLevel = o ? o->compress : -1;
    cl->appData.useRemoteCursor = FALSE;
    cl->readTimeout = (unsigned)(timeout + 999) / 1000;
    cl->canHandleNewFBSize = TRUE;
    tsvnc_password = (char *)password;
    cl->GetPassword = password ? tsvnc_get_password : tsvnc_no_password;
    cl->GotFrameBufferUpdate = tsvnc_got_update;
    cl->FinishedFrameBufferUpdate = tsvnc_finished;
    cl->sock = pair[1];
    if (!InitialiseRFBConnection(cl))
        return tsvnc_fail(c, -EPROTO, "RFB handshake failed");
    tsvnc_password = NULL;
    cl->width = cl->si.framebufferWidth;
    cl->height = cl->si.framebufferHeight;
    /* What rfbInitClient() would set: libvncclient asks for this area
     * after every update (its default, x = -1, asks for nothing). */
    cl->updateRect.x = cl->updateRect.y = 0;
    cl->updateRect.w = cl->width;
    cl->updateRect.h = cl->height;
    if (!cl->MallocFrameBuffer(cl))
        return tsvnc_fail(c, -ENOMEM, "no framebuffer");
    if (!SetFormatAndEncodings(cl) ||
        !SendFramebufferUpdateRequest(cl, 0, 0, cl->width, cl->height, FALSE))
        return tsvnc_fail(c, -ECONNRESET, "cannot send to the server");
    /* The server may answer with pseudo-rectangles first (sizes,
     * capabilities): wait until every pixel has arrived once. */
    while (c->area < (uint64_t)cl->width * (uint64_t)cl->height) {
        int r = tsvnc_handle(c, timeout, 1);

        if (r < 0)
            return r;
        if (r == 0)
            return tsvnc_fail(c, -ETIMEDOUT, "no first frame within %d ms",
                              timeout);
    }
    return 0;
}

static struct tsvnc *tsvnc_new(void)
{
    struct tsvnc *c = calloc(1, sizeof(*c));

    if (c)
        c->server_fd = c->app_fd = c->stop[0] = c->stop[1] = -1;
    return c;
}

/* Finishes a connect: on failure prints why and frees c. */
static int tsvnc_finish(struct tsvnc **out, struct tsvnc *c, int err)
{
    if (err) {
        fprintf(stderr, "tsvnc: %s\n", c->err);
        *out = NULL;
        /* Keep the reason readable for the caller through a static copy. */
        tsvnc_close(c);
        return err;
    }
    *out = c;
    return 0;
}

static char tsvnc_last_error[512];

int tsvnc_connect_tcp(struct tsvnc **out, const char *host, int port,
                      const char *password, const struct tsvnc_options *o)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    struct tsvnc *c = tsvnc_new();
    char serv[16];
    int err;

    if (!c)
        return -ENOMEM;
    snprintf(serv, sizeof(serv), "%d", port);
    if (getaddrinfo(host, serv, &hints, &ai)) {
        tsvnc_close(c);
        return -EINVAL;
    }
    c->server_fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    err = c->server_fd < 0 ||
                  connect(c->server_fd, ai->ai_addr, ai->ai_addrlen) < 0
              ? tsvnc_fail(c, -errno, "connect: %s", strerror(errno))
              : 0;
    freeaddrinfo(ai);
    if (!err)
        err = tsvnc_start(c, password, o);
    snprintf(tsvnc_last_error, sizeof(tsvnc_last_error), "%s", c->err);
    return tsvnc_finish(out, c, err);
}

static int tsvnc_unix(struct tsvnc *c, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    c->server_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->server_fd < 0 ||
        connect(c->server_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return tsvnc_fail(c, -errno, "connect %s: %s", path, strerror(errno));
    return 0;
}

int tsvnc_connect_gateway(struct tsvnc **out, const char *socket_path,
                          const char *ticket, const char *peer,
                          const struct tsvnc_options *o)
{
    struct tsvnc *c = tsvnc_new();
    char line[256];
    int err, n;

    if (!c)
        return -ENOMEM;
    err = tsvnc_unix(c, socket_path);
    if (!err) {
        n = snprintf(line, sizeof(line),
                     peer ? "TICKET %s %s\n" : "TICKET %s\n", ticket, peer);
        if (write(c->server_fd, line, (size_t)n) != n)
            err = tsvnc_fail(c, -EIO, "cannot write the ticket line");
    }
    if (!err)
        err = tsvnc_start(c, NULL, o);
    snprintf(tsvnc_last_error, sizeof(tsvnc_last_error), "%s", c->err);
    return tsvnc_finish(out, c, err);
}

int tsvnc_connect_unix(struct tsvnc **out, const char *socket_path,
                       const struct tsvnc_options *o)
{
    struct tsvnc *c = tsvnc_new();
    int err;

    if (!c)
        return -ENOMEM;
    err = tsvnc_unix(c, socket_path);
    if (!err)
        err = tsvnc_start(c, NULL, o);
    snprintf(tsvnc_last_error, sizeof(tsvnc_last_error), "%s", c->err);
    return tsvnc_finish(out, c, err);
}

const char *tsvnc_last_connect_error(void)
{
    return tsvnc_last_error;
}

/* libvncclient asks for the next incremental update after each one it
 * handled, so there is always one request outstanding. */
int tsvnc_wait_update(struct tsvnc *c, int timeout_ms)
{
    return tsvnc_handle(c, timeout_ms, 1);
}

int tsvnc_pump(struct tsvnc *c, int ms)
{
    int r = tsvnc_handle(c, ms, 0);

    return r < 0 ? r : 0;
}

const uint32_t *tsvnc_pixels(const struct tsvnc *c, int *width, int *height)
{
    *width = c->cl->width;
    *height = c->cl->height;
    return (const uint32_t *)c->cl->frameBuffer;
}

int tsvnc_snapshot(const struct tsvnc *c, struct tsppm **out)
{
    char path[] = "/tmp/tsvnc-XXXXXX";
    int w = c->cl->width, h = c->cl->height, fd, y, x, err;
    const uint32_t *px = (const uint32_t *)c->cl->frameBuffer;
    FILE *f;

    fd = mkstemp(path);
    if (fd < 0)
        return -errno;
    f = fdopen(fd, "w");
    fprintf(f, "P6\n%d %d\n255\n", w, h);
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            uint32_t p = px[(size_t)y * w + x];

            fputc((int)(p >> 16 & 0xff), f);
            fputc((int)(p >> 8 & 0xff), f);
            fputc((int)(p & 0xff), f);
        }
    fclose(f);
    err = tsppm_load(path, out);
    unlink(path);
    return err;
}

int tsvnc_key_sym(struct tsvnc *c, uint32_t keysym, int down)
{
    return SendKeyEvent(c->cl, keysym, down ? TRUE : FALSE) ? 0 : -ECONNRESET;
}

int tsvnc_has_ext_keys(const struct tsvnc *c)
{
    return SupportsClient2Server(c->cl, rfbQemuEvent);
}

int tsvnc_key_scancode(struct tsvnc *c, uint32_t keysym, unsigned qnum,
                       int down)
{
    if (!tsvnc_has_ext_keys(c))
        return -ENOTSUP;
    return SendExtendedKeyEvent(c->cl, keysym, qnum, down ? TRUE : FALSE)
               ? 0
               : -ECONNRESET;
}

int tsvnc_pointer(struct tsvnc *c, int x, int y, unsigned buttons)
{
    return SendPointerEvent(c->cl, x, y, (int)buttons) ? 0 : -ECONNRESET;
}

int tsvnc_type(struct tsvnc *c, const char *text)
{
    for (; *text; text++) {
        uint32_t sym = (unsigned char)*text;

        if (tsvnc_key_sym(c, sym, 1) < 0 || tsvnc_key_sym(c, sym, 0) < 0)
            return -ECONNRESET;
    }
    return 0;
}

uint64_t tsvnc_bytes(const struct tsvnc *c)
{
    return c->bytes;
}

uint64_t tsvnc_updates(const struct tsvnc *c)
{
    return c->updates;
}

int tsvnc_fd(const struct tsvnc *c)
{
    return c->cl->sock;
}
