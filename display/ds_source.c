/*
 * ds_source.c - one desktop's screen and input, read from QEMU's VNC server
 * with libvncclient. See ds_source.h.
 *
 * libvncclient does the RFB work: handshake, message parsing, raw rectangle
 * copies, RichCursor and DesktopSize decoding, key and pointer messages.
 * This module keeps it to what QEMU should send and watches what arrives:
 *
 *   - The connection is set up step by step (ConnectToRFBServer, then
 *     InitialiseRFBConnection) instead of rfbInitClient(), because
 *     SetFormatAndEncodings() always announces ExtendedDesktopSize, and
 *     libvncclient 0.9.14 ignores QEMU's ExtendedDesktopSize rectangles
 *     (QEMU numbers its screen 0, which libvncclient treats as invalid), so
 *     the first larger frame after a mode change would fail as "Rect too
 *     large". We send our own SetPixelFormat and SetEncodings instead, with
 *     plain DesktopSize, which libvncclient follows.
 *   - libvncclient requests an update after every FramebufferUpdate it
 *     reads, including QEMU's unsolicited ones (cursor, resize, the
 *     extended key event acknowledgement). Its requests are switched off
 *     (the FramebufferUpdateRequest bit of client2server) and we send ours:
 *     one after each answer that carried pixels.
 *   - Damage is recorded per rectangle in GotFrameBufferUpdate, but only
 *     for rectangles that came with pixels (the GotBitmap/GotFillRect/
 *     GotCopyRect hooks, chained to libvncclient's own copies): the
 *     extended key event acknowledgement arrives as a full-screen
 *     rectangle with no pixels at all.
 */
#include "ds_source.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rfb/rfbclient.h>

#include "dp_time.h"

/* Server messages handled per ds_source_process() call at most. */
#define DS_SOURCE_MAX_MESSAGES 16

/* RFB pseudo-encodings (RFC 6143 §7.8 and QEMU's ui/vnc.h). */
#define DS_SOURCE_ENC_RAW           0
#define DS_SOURCE_ENC_DESKTOP_SIZE  (-223)
#define DS_SOURCE_ENC_RICH_CURSOR   (-239)
#define DS_SOURCE_ENC_QEMU_EXT_KEYS (-258)

struct ds_source {
    rfbClient *client;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int given_fd;   /* ds_source_open_fd(): connected already; else -1 */
    int status;     /* 0, or the negative errno that ended the source */
    char why[256];  /* why it ended */
    unsigned flags; /* DS_SOURCE_* gathered during one process call */

    /* The message being read: did the current rectangle bring pixels, did
     * the message have pixels, or only pseudo-rectangles? */
    int rect_pixels, msg_pixels, msg_pseudo;

    struct ds_source_rect damage[DS_SOURCE_MAX_DAMAGE];
    int ndamage;

    uint32_t *cursor; /* ARGB8888, cursor_w * cursor_h */
    int cursor_w, cursor_h, cursor_hx, cursor_hy;
    unsigned cursor_serial;

    struct ds_source_stats stats;

    /* libvncclient's own rectangle copies, chained from ours. */
    GotBitmapProc lib_bitmap;
    GotFillRectProc lib_fill;
    GotCopyRectProc lib_copy;
};

/* Tag of our pointer in libvncclient's per-client data. */
static const char ds_source_tag;

/* ------------------------------------------------------------------------
 * Logging and failure */

static void ds_source_log_drop(const char *format, ...)
{
    (void)format;
}

static void ds_source_log_err(const char *format, ...)
{
    int saved = errno;
    va_list ap;

    fputs("ds_source: libvncclient: ", stderr);
    va_start(ap, format);
    vfprintf(stderr, format, ap);
    va_end(ap);
    errno = saved;
}

/* Ends the source with err (first reason wins) and says why on stderr. */
static int ds_source_fail(struct ds_source *src, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ds_source_fail(struct ds_source *src, int err, const char *fmt, ...)
{
    va_list ap;

    if (src->status)
        return src->status;
    va_start(ap, fmt);
    vsnprintf(src->why, sizeof(src->why), fmt, ap);
    va_end(ap);
    src->status = err;
    fprintf(stderr, "ds_source: %s: %s\n", src->path, src->why);
    return err;
}

static struct ds_source *ds_source_of(rfbClient *client)
{
    return rfbClientGetClientData(client, (void *)&ds_source_tag);
}

/* ------------------------------------------------------------------------
 * Damage */

static int ds_source_rect_contains(const struct ds_source_rect *a,
                                   const struct ds_source_rect *b)
{
    return b->x >= a->x && b->y >= a->y && b->x + b->w <= a->x + a->w &&
           b->y + b->h <= a->y + a->h;
}

static struct ds_source_rect
ds_source_rect_union(const struct ds_source_rect *a,
                     const struct ds_source_rect *b)
{
    int x0 = a->x < b->x ? a->x : b->x, y0 = a->y < b->y ? a->y : b->y;
    int x1 = a->x + a->w > b->x + b->w ? a->x + a->w : b->x + b->w;
    int y1 = a->y + a->h > b->y + b->h ? a->y + a->h : b->y + b->h;
    struct ds_source_rect u = {x0, y0, x1 - x0, y1 - y0};

    return u;
}

/* True when a and b together form one rectangle (same columns and
 * touching rows, or the other way round). */
static int ds_source_rect_adjacent(const struct ds_source_rect *a,
                                   const struct ds_source_rect *b)
{
    if (a->x == b->x && a->w == b->w)
        return a->y <= b->y + b->h && b->y <= a->y + a->h;
    if (a->y == b->y && a->h == b->h)
        return a->x <= b->x + b->w && b->x <= a->x + a->w;
    return 0;
}

int ds_source_rect_clip(struct ds_source_rect *r, int width, int height)
{
    if (r->x < 0) {
        r->w += r->x;
        r->x = 0;
    }
    if (r->y < 0) {
        r->h += r->y;
        r->y = 0;
    }
    if (r->x + r->w > width)
        r->w = width - r->x;
    if (r->y + r->h > height)
        r->h = height - r->y;
    return r->w > 0 && r->h > 0;
}

static void ds_source_damage_add(struct ds_source *src, int x, int y, int w,
                                 int h)
{
    struct ds_source_rect r = {x, y, w, h};

    if (!ds_source_rect_clip(&r, src->client->width, src->client->height))
        return;

    /* Merge with what r contains or extends; r grows, so start over. */
    for (int i = 0; i < src->ndamage;) {
        struct ds_source_rect *d = &src->damage[i];

        if (ds_source_rect_contains(d, &r))
            return;
        if (ds_source_rect_contains(&r, d) || ds_source_rect_adjacent(d, &r)) {
            r = ds_source_rect_union(&r, d);
            *d = src->damage[--src->ndamage];
            i = 0;
            continue;
        }
        i++;
    }
    if (src->ndamage == DS_SOURCE_MAX_DAMAGE) {
        for (int i = 0; i < src->ndamage; i++)
            r = ds_source_rect_union(&r, &src->damage[i]);
        src->ndamage = 0;
    }
    src->damage[src->ndamage++] = r;
    src->flags |= DS_SOURCE_DAMAGE;
}

/* ------------------------------------------------------------------------
 * Messages we send ourselves */

static void ds_source_put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void ds_source_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int ds_source_write(struct ds_source *src, const uint8_t *msg,
                           size_t len, const char *what)
{
    errno = 0;
    if (WriteToRFBServer(src->client, (const char *)msg, (unsigned)len))
        return 0;
    return ds_source_fail(src, errno ? -errno : -EPIPE,
                          "cannot send %s to the VNC server: %s", what,
                          strerror(errno ? errno : EPIPE));
}

/*
 * QEMU's native format, XRGB8888 as a uint32_t in host order: QEMU then
 * copies rows (vnc_write_pixels_copy) instead of converting each pixel.
 */
static void ds_source_native_format(rfbPixelFormat *f)
{
    memset(f, 0, sizeof(*f));
    f->bitsPerPixel = 32;
    f->depth = 24;
    f->bigEndian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
    f->trueColour = 1;
    f->redMax = f->greenMax = f->blueMax = 255;
    f->redShift = 16;
    f->greenShift = 8;
    f->blueShift = 0;
}

static int ds_source_send_format(struct ds_source *src)
{
    const rfbPixelFormat *f = &src->client->format;
    uint8_t msg[sz_rfbSetPixelFormatMsg] = {rfbSetPixelFormat};

    msg[4] = f->bitsPerPixel;
    msg[5] = f->depth;
    msg[6] = f->bigEndian;
    msg[7] = f->trueColour;
    ds_source_put16(msg + 8, f->redMax);
    ds_source_put16(msg + 10, f->greenMax);
    ds_source_put16(msg + 12, f->blueMax);
    msg[14] = f->redShift;
    msg[15] = f->greenShift;
    msg[16] = f->blueShift;
    return ds_source_write(src, msg, sizeof(msg), "SetPixelFormat");
}

static int ds_source_send_encodings(struct ds_source *src)
{
    /* Raw is the only real encoding: QEMU would prefer any other it knows
     * (and spend CPU on it), and we would have to decode it. */
    static const int32_t encs[] = {
        DS_SOURCE_ENC_RAW, DS_SOURCE_ENC_DESKTOP_SIZE,
        DS_SOURCE_ENC_RICH_CURSOR, DS_SOURCE_ENC_QEMU_EXT_KEYS};
    enum { N = sizeof(encs) / sizeof(*encs) };
    uint8_t msg[sz_rfbSetEncodingsMsg + 4 * N] = {rfbSetEncodings};

    ds_source_put16(msg + 2, N);
    for (int i = 0; i < N; i++)
        ds_source_put32(msg + sz_rfbSetEncodingsMsg + 4 * i, (uint32_t)encs[i]);
    return ds_source_write(src, msg, sizeof(msg), "SetEncodings");
}

static int ds_source_request(struct ds_source *src, int incremental)
{
    uint8_t msg[sz_rfbFramebufferUpdateRequestMsg] = {
        rfbFramebufferUpdateRequest, (uint8_t)(incremental ? 1 : 0)};

    ds_source_put16(msg + 6, (unsigned)src->client->width);
    ds_source_put16(msg + 8, (unsigned)src->client->height);
    src->stats.requests++;
    return ds_source_write(src, msg, sizeof(msg), "a FramebufferUpdateRequest");
}

/* ------------------------------------------------------------------------
 * libvncclient hooks */

/* Called for the first framebuffer and after every DesktopSize change
 * (libvncclient has set client->width and height). */
static rfbBool ds_source_malloc_fb(rfbClient *client)
{
    struct ds_source *src = ds_source_of(client);
    int w = client->width, h = client->height;
    uint8_t *fb;

    if (w <= 0 || h <= 0) {
        ds_source_fail(src, -EPROTO, "QEMU announced a %dx%d framebuffer", w,
                       h);
        return FALSE;
    }
    if (w > DS_SOURCE_MAX_DIM || h > DS_SOURCE_MAX_DIM) {
        ds_source_fail(src, -EFBIG,
                       "QEMU announced a %dx%d framebuffer, above %dx%d", w, h,
                       DS_SOURCE_MAX_DIM, DS_SOURCE_MAX_DIM);
        return FALSE;
    }
    fb = calloc((size_t)w * (size_t)h, 4);
    if (!fb) {
        ds_source_fail(src, -ENOMEM, "no memory for a %dx%d framebuffer", w, h);
        return FALSE;
    }
    free(client->frameBuffer);
    client->frameBuffer = fb;
    src->ndamage = 0;
    ds_source_damage_add(src, 0, 0, w, h);
    src->flags |= DS_SOURCE_RESIZED;
    src->msg_pseudo = 1;
    return TRUE;
}

static void ds_source_got_bitmap(rfbClient *client, const uint8_t *buffer,
                                 int x, int y, int w, int h)
{
    struct ds_source *src = ds_source_of(client);

    src->rect_pixels = 1;
    src->stats.pixel_bytes += (uint64_t)w * (uint64_t)h * 4;
    src->lib_bitmap(client, buffer, x, y, w, h);
}

static void ds_source_got_fill(rfbClient *client, int x, int y, int w, int h,
                               uint32_t colour)
{
    struct ds_source *src = ds_source_of(client);

    src->rect_pixels = 1;
    src->lib_fill(client, x, y, w, h, colour);
}

static void ds_source_got_copy(rfbClient *client, int src_x, int src_y, int w,
                               int h, int dest_x, int dest_y)
{
    struct ds_source *src = ds_source_of(client);

    src->rect_pixels = 1;
    src->lib_copy(client, src_x, src_y, w, h, dest_x, dest_y);
}

/* After each rectangle of a FramebufferUpdate, pseudo-encodings included
 * (those without pixels are not damage). */
static void ds_source_got_rect(rfbClient *client, int x, int y, int w, int h)
{
    struct ds_source *src = ds_source_of(client);

    if (src->rect_pixels) {
        src->msg_pixels = 1;
        src->stats.rects++;
        ds_source_damage_add(src, x, y, w, h);
    } else {
        src->msg_pseudo = 1;
    }
    src->rect_pixels = 0;
}

/*
 * After each FramebufferUpdate message. QEMU sends its cursor, size
 * changes and the extended key acknowledgement unasked, as messages of
 * pseudo-rectangles only; those leave our request outstanding. Anything
 * else answered it, so the next one goes out.
 */
static void ds_source_finished(rfbClient *client)
{
    struct ds_source *src = ds_source_of(client);
    int unasked = src->msg_pseudo && !src->msg_pixels;

    src->stats.updates++;
    src->msg_pixels = src->msg_pseudo = src->rect_pixels = 0;
    if (unasked || src->status)
        return;
    src->stats.frames++;
    ds_source_request(src, 1);
}

static void ds_source_got_cursor(rfbClient *client, int xhot, int yhot,
                                 int width, int height, int bytes_per_pixel)
{
    struct ds_source *src = ds_source_of(client);
    size_t n = (size_t)width * (size_t)height;
    uint32_t *argb = NULL;

    src->msg_pseudo = 1;
    if (bytes_per_pixel == 4 && client->rcSource && client->rcMask &&
        width > 0 && height > 0 && width <= DS_SOURCE_MAX_CURSOR &&
        height <= DS_SOURCE_MAX_CURSOR)
        argb = malloc(n * 4);
    if (argb) {
        for (size_t i = 0; i < n; i++) {
            uint32_t px;

            memcpy(&px, client->rcSource + i * 4, 4);
            argb[i] = client->rcMask[i] ? 0xff000000u | (px & 0xffffffu) : 0;
        }
        free(src->cursor);
        src->cursor = argb;
        src->cursor_w = width;
        src->cursor_h = height;
        src->cursor_hx = xhot < 0 ? 0 : xhot >= width ? width - 1 : xhot;
        src->cursor_hy = yhot < 0 ? 0 : yhot >= height ? height - 1 : yhot;
        src->cursor_serial++;
        src->flags |= DS_SOURCE_CURSOR;
    } else {
        fprintf(stderr,
                "ds_source: %s: cursor %dx%d (%d bytes a pixel) "
                "ignored\n",
                src->path, width, height, bytes_per_pixel);
    }
    /* libvncclient allocates both per shape and frees neither for good. */
    free(client->rcSource);
    client->rcSource = NULL;
    free(client->rcMask);
    client->rcMask = NULL;
}

/* QEMU's -vnc unix: has no password; never ask anyone for one. */
static char *ds_source_no_password(rfbClient *client)
{
    (void)client;
    return NULL;
}

/* ------------------------------------------------------------------------
 * Reading */

/*
 * Why HandleRFBServerMessage() or InitialiseRFBConnection() failed:
 * libvncclient only says FALSE. err is errno after the call, started_ms
 * when the call began, proto_why the reason when the connection is fine
 * and nothing timed out (libvncclient refused what it read).
 */
static int ds_source_read_failed(struct ds_source *src, int err,
                                 long long started_ms, const char *proto_why)
{
    unsigned timeout_s = src->client->readTimeout;
    char c;
    ssize_t n;

    if (src->status)
        return src->status;
    n = recv(src->client->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
        return ds_source_fail(src, -ECONNRESET,
                              "QEMU closed the VNC connection (the VM "
                              "stopped?)");
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return ds_source_fail(src, -errno, "reading from the VNC server: %s",
                              strerror(errno));
    if (timeout_s && dp_time_now_ms() - started_ms >= timeout_s * 1000LL)
        return ds_source_fail(src, -ETIMEDOUT,
                              "the VNC server sent nothing for %u s in the "
                              "middle of a message",
                              timeout_s);
    if (err && err != EAGAIN && err != EWOULDBLOCK && err != EINTR)
        return ds_source_fail(src, -err, "reading from the VNC server: %s",
                              strerror(err));
    return ds_source_fail(src, -EPROTO, "%s", proto_why);
}

int ds_source_process(struct ds_source *src)
{
    unsigned flags;

    if (!src)
        return -EINVAL;
    if (src->status)
        return src->status;
    for (int i = 0; i < DS_SOURCE_MAX_MESSAGES; i++) {
        long long started;

        /* Bytes libvncclient already read do not show on the fd. */
        if (!src->client->buffered) {
            int n = WaitForMessage(src->client, 0);

            if (n < 0 && errno == EINTR)
                break;
            if (n < 0)
                return ds_source_fail(src, -errno, "waiting for QEMU: %s",
                                      strerror(errno));
            if (n == 0)
                break;
        }
        started = dp_time_now_ms();
        errno = 0;
        if (!HandleRFBServerMessage(src->client))
            return ds_source_read_failed(
                src, errno, started,
                "the VNC server sent a message libvncclient could not "
                "handle");
        if (src->status)
            return src->status;
    }
    flags = src->flags;
    src->flags = 0;
    if (src->client->buffered)
        flags |= DS_SOURCE_MORE;
    return (int)flags;
}

/* ------------------------------------------------------------------------
 * Opening and closing */

static int ds_source_check_path(const char *path)
{
    struct stat st;

    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr, "ds_source: %s: path too long for a unix socket\n",
                path);
        return -ENAMETOOLONG;
    }
    /* libvncclient would take anything but a socket for a host name. */
    if (stat(path, &st) < 0) {
        int err = errno;

        fprintf(stderr, "ds_source: %s: %s\n", path, strerror(err));
        return -err;
    }
    if (!S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "ds_source: %s: not a unix socket\n", path);
        return -ENOTSOCK;
    }
    return 0;
}

static int ds_source_connect(struct ds_source *src)
{
    rfbClient *client = src->client;
    uint32_t no_auth[] = {rfbNoAuth, 0};
    long long started;
    int err;

    SetClientAuthSchemes(client, no_auth, -1);
    if (src->given_fd >= 0) {
        client->sock = src->given_fd;
        src->given_fd = -1; /* the client owns it now */
        goto connected;
    }
    free(client->serverHost);
    client->serverHost = strdup(src->path);
    if (!client->serverHost)
        return ds_source_fail(src, -ENOMEM, "out of memory");
    errno = 0;
    if (!ConnectToRFBServer(client, client->serverHost, 0)) {
        err = errno ? errno : ECONNREFUSED;
        return ds_source_fail(src, -err, "cannot connect: %s", strerror(err));
    }
connected:
    if (client->sock >= FD_SETSIZE)
        return ds_source_fail(src, -EMFILE,
                              "descriptor %d is beyond select()'s FD_SETSIZE",
                              client->sock);
    started = dp_time_now_ms();
    errno = 0;
    /* A server that wants a password fails here too: we offer none. */
    if (!InitialiseRFBConnection(client))
        return ds_source_read_failed(src, errno, started,
                                     "RFB handshake failed (not a VNC "
                                     "server, or it asks for a password)");
    return 0;
}

/* Reads until the first answer to our request (a whole framebuffer). */
static int ds_source_first_frame(struct ds_source *src, int timeout_ms)
{
    long long deadline = dp_time_now_ms() + timeout_ms;

    while (src->stats.frames == 0) {
        struct pollfd pfd = {.fd = src->client->sock, .events = POLLIN};
        long long left = deadline - dp_time_now_ms();
        int r;

        if (left <= 0)
            return ds_source_fail(src, -ETIMEDOUT,
                                  "no framebuffer from QEMU within %d ms",
                                  timeout_ms);
        if (!src->client->buffered && poll(&pfd, 1, (int)left) < 0 &&
            errno != EINTR)
            return ds_source_fail(src, -errno, "poll: %s", strerror(errno));
        r = ds_source_process(src);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Opens a source on socket_path, or on fd (>= 0, then socket_path only
 * names it in messages). */
static int ds_source_start(struct ds_source **out, const char *socket_path,
                           int fd, int timeout_ms)
{
    struct ds_source *src;
    rfbClient *client;
    int err;

    /* Process-wide hooks; every source sets the same ones. */
    rfbClientLog = ds_source_log_drop;
    rfbClientErr = ds_source_log_err;

    src = calloc(1, sizeof(*src));
    client = src ? rfbGetClient(8, 3, 4) : NULL;
    if (!client) {
        free(src);
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "ds_source: %s: out of memory\n", socket_path);
        return -ENOMEM;
    }
    src->client = client;
    src->given_fd = fd;
    snprintf(src->path, sizeof(src->path), "%s", socket_path);
    rfbClientSetClientData(client, (void *)&ds_source_tag, src);

    ds_source_native_format(&client->format);
    client->appData.requestedDepth = client->format.depth;
    client->connectTimeout = client->readTimeout =
        (unsigned)((timeout_ms + 999) / 1000);
    client->GetPassword = ds_source_no_password;
    client->MallocFrameBuffer = ds_source_malloc_fb;
    src->lib_bitmap = client->GotBitmap;
    src->lib_fill = client->GotFillRect;
    src->lib_copy = client->GotCopyRect;
    client->GotBitmap = ds_source_got_bitmap;
    client->GotFillRect = ds_source_got_fill;
    client->GotCopyRect = ds_source_got_copy;
    client->GotFrameBufferUpdate = ds_source_got_rect;
    client->FinishedFrameBufferUpdate = ds_source_finished;
    client->GotCursorShape = ds_source_got_cursor;

    err = ds_source_connect(src);
    if (!err) {
        client->width = client->si.framebufferWidth;
        client->height = client->si.framebufferHeight;
        client->updateRect.x = client->updateRect.y = 0;
        client->updateRect.w = client->width;
        client->updateRect.h = client->height;
        if (!ds_source_malloc_fb(client))
            err = src->status;
    }
    if (!err) {
        /* Our requests only (see the top of this file). */
        client->supportedMessages
            .client2server[rfbFramebufferUpdateRequest / 8] &=
            (uint8_t) ~(1u << (rfbFramebufferUpdateRequest % 8));
        src->flags = 0;
        src->msg_pseudo = 0;
        err = ds_source_send_format(src);
    }
    if (!err)
        err = ds_source_send_encodings(src);
    if (!err)
        err = ds_source_request(src, 0);
    if (!err)
        err = ds_source_first_frame(src, timeout_ms);
    if (err) {
        ds_source_close(src);
        return err;
    }
    src->flags = 0;
    *out = src;
    return 0;
}

int ds_source_open(struct ds_source **out, const char *socket_path,
                   int timeout_ms)
{
    int err;

    if (out)
        *out = NULL;
    if (!out || !socket_path || timeout_ms <= 0)
        return -EINVAL;
    err = ds_source_check_path(socket_path);
    if (err)
        return err;
    return ds_source_start(out, socket_path, -1, timeout_ms);
}

int ds_source_open_fd(struct ds_source **out, int fd, const char *name,
                      int timeout_ms)
{
    if (out)
        *out = NULL;
    if (!out || fd < 0 || !name || timeout_ms <= 0) {
        if (fd >= 0)
            close(fd);
        return -EINVAL;
    }
    return ds_source_start(out, name, fd, timeout_ms);
}

void ds_source_close(struct ds_source *src)
{
    if (!src)
        return;
    /* rfbClientCleanup() frees neither the framebuffer nor the cursor. */
    free(src->client->frameBuffer);
    free(src->client->rcSource);
    free(src->client->rcMask);
    if (src->given_fd >= 0)
        close(src->given_fd); /* failed before the client took it */
    rfbClientCleanup(src->client);
    free(src->cursor);
    free(src);
}

/* ------------------------------------------------------------------------
 * Accessors */

int ds_source_fd(const struct ds_source *src)
{
    return src->client->sock;
}

int ds_source_status(const struct ds_source *src)
{
    return src->status;
}

const char *ds_source_error(const struct ds_source *src)
{
    return src->why;
}

void ds_source_framebuffer(const struct ds_source *src, struct ds_source_fb *fb)
{
    fb->pixels = (const uint32_t *)(const void *)src->client->frameBuffer;
    fb->width = src->client->width;
    fb->height = src->client->height;
    fb->stride = src->client->width * 4;
}

int ds_source_take_damage(struct ds_source *src, struct ds_source_rect *rects,
                          int max)
{
    int n = src->ndamage;

    if (!rects || max < 1)
        return -EINVAL;
    if (n > max) {
        rects[0] = src->damage[0];
        for (int i = 1; i < n; i++)
            rects[0] = ds_source_rect_union(&rects[0], &src->damage[i]);
        n = 1;
    } else {
        memcpy(rects, src->damage, (size_t)n * sizeof(*rects));
    }
    src->ndamage = 0;
    return n;
}

int ds_source_cursor(const struct ds_source *src, struct ds_source_cursor *cur)
{
    if (!src->cursor)
        return -ENOENT;
    cur->pixels = src->cursor;
    cur->width = src->cursor_w;
    cur->height = src->cursor_h;
    cur->hot_x = src->cursor_hx;
    cur->hot_y = src->cursor_hy;
    cur->serial = src->cursor_serial;
    return 0;
}

void ds_source_stats(const struct ds_source *src, struct ds_source_stats *st)
{
    *st = src->stats;
}

/* ------------------------------------------------------------------------
 * Input */

int ds_source_has_scancodes(const struct ds_source *src)
{
    /* libvncclient sets this bit when QEMU acknowledges the encoding. */
    return SupportsClient2Server(src->client, rfbQemuEvent) ? 1 : 0;
}

/* The source's error after a failed send: libvncclient only says FALSE. */
static int ds_source_send_failed(struct ds_source *src, const char *what)
{
    int err = errno ? errno : EPIPE;

    return ds_source_fail(src, -err, "cannot send %s to the VNC server: %s",
                          what, strerror(err));
}

int ds_source_key_scancode(struct ds_source *src, unsigned qnum, int down)
{
    if (src->status)
        return src->status;
    if (qnum < 1 || qnum > 0xff)
        return -EINVAL;
    if (!ds_source_has_scancodes(src))
        return -ENOTSUP;
    /* No keysym: QEMU (without -k) goes by the scancode alone. */
    errno = 0;
    if (!SendExtendedKeyEvent(src->client, 0, qnum, down ? TRUE : FALSE))
        return ds_source_send_failed(src, "a key event");
    return 0;
}

int ds_source_key_sym(struct ds_source *src, uint32_t keysym, int down)
{
    if (src->status)
        return src->status;
    if (keysym == 0)
        return -EINVAL;
    errno = 0;
    if (!SendKeyEvent(src->client, keysym, down ? TRUE : FALSE))
        return ds_source_send_failed(src, "a key event");
    return 0;
}

int ds_source_pointer(struct ds_source *src, int x, int y, unsigned buttons)
{
    int w = src->client->width, h = src->client->height;

    if (src->status)
        return src->status;
    if (buttons > 0xff)
        return -EINVAL;
    x = x < 0 ? 0 : x >= w ? w - 1 : x;
    y = y < 0 ? 0 : y >= h ? h - 1 : y;
    errno = 0;
    if (!SendPointerEvent(src->client, x, y, (int)buttons))
        return ds_source_send_failed(src, "a pointer event");
    return 0;
}
