/*
 * ds_session.c - one client connection (see ds_session.h).
 *
 * libvncserver is used without its own sockets or threads: one screen
 * whose only client is the accepted descriptor (rfbNewClient), driven by
 * our poll loop through rfbProcessClientMessage() (one client message)
 * and rfbUpdateClient() (an update, if one is pending and requested).
 * The screen's framebuffer is our own copy of the source's (XRGB8888),
 * refreshed over the damaged rectangles: libvncserver may draw a cursor
 * into it, and its pointer stays valid across source calls.
 */
#include "ds_session.h"

#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rfb/rfb.h>
#include <rfb/rfbregion.h>

#include "dp_time.h"
#include "ds_chan.h"
#include "ds_cred.h"
#include "ds_daemon.h"
#include "ds_source.h"

#define DS_SESSION_PREAMBLE_MAX 128   /* "TICKET <43> <peer>\n" */
#define DS_SESSION_PREAMBLE_MS  10000 /* for the preamble line */
#define DS_SESSION_AUTH_MS      15000 /* for the daemon's answer */
#define DS_SESSION_SOURCE_MS    10000 /* QEMU's first frame */
#define DS_SESSION_CLIENT_WAIT  10000 /* rest of a started client message */
#define DS_SESSION_MAX_MESSAGES 32    /* client messages per loop turn */
#define DS_SESSION_MAX_RECTS    64

/* QEMU's extended key event (ui/vnc.h, RFB community registry). */
#define DS_SESSION_ENC_QEMU_EXT_KEYS (-258)
#define DS_SESSION_MSG_QEMU          255
#define DS_SESSION_QEMU_EXT_KEY      0

/* Lag thresholds for the JPEG quality (display/README.md). */
#define DS_SESSION_LAG1_BYTES (64 * 1024)
#define DS_SESSION_LAG2_BYTES (256 * 1024)
#define DS_SESSION_LAG1_MS    100
#define DS_SESSION_LAG2_MS    300

/* Set by SIGTERM/SIGINT: the daemon (or an admin) ends the session. */
static volatile sig_atomic_t ds_session_stop;

struct ds_session {
    const struct ds_session_args *args;
    rfbScreenInfoPtr screen;
    rfbClientPtr cl;
    struct ds_source *src;
    uint32_t *fb; /* the screen's framebuffer: our copy */
    int width, height;
    unsigned cursor_serial;

    long long session_id;
    char desktop[DS_CRED_NAME_MAX + 1];
    char user[DS_CRED_NAME_MAX + 1];
    char refused[128]; /* why authentication failed, for the log */
    char peer[80];     /* the client's address (the gateway tells it) */
    int view_only;     /* a helpdesk view: nothing the client sends goes in */

    /* Statistics; bytes from libvncserver's int counter, by deltas. */
    struct ds_session_count count;
    unsigned last_stat_bytes;

    /* Lag: when the last update went out, and whether the client has
     * asked for the next one since. */
    long long update_sent_ms;
    int awaiting_request;
    long long lag_ms;
    int quality_penalty;    /* 0, 2 or 4 tight levels */
    long long recovered_ms; /* when the penalty last dropped */
    int client_quality;     /* tight level the client asked for, -1 none */
    int applied_turbo;      /* turboQualityLevel we last set */
    int ext_ack_pending;    /* QEMU extended keys to acknowledge */
};

/* ------------------------------------------------------------------------
 * Logging: one line each, "deskpool-display[PID]: ..." on stderr (the
 * daemon's log). libvncserver's chatter is dropped, its errors kept. */

void ds_session_log(const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "deskpool-display[%d]: %s\n", (int)getpid(), line);
}

static void ds_session_lib_quiet(const char *fmt, ...)
{
    (void)fmt;
}

static void ds_session_lib_err(const char *fmt, ...)
{
    char line[512];
    size_t n;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    /* Said for every unix socket (the gateway): not an error. */
    if (strstr(line, "TCP_NODELAY"))
        return;
    ds_session_log("libvncserver: %s", line);
}

/*
 * libvncserver (Debian's is built with websocket support) peeks at every
 * new client for a websocket or TLS handshake and waits 100 ms for bytes
 * an RFB client never sends first - it waits for the server's version:
 * a fixed tenth of a second on every VNC and browser connection. A
 * session never serves websockets (the broker's gateway unwraps them
 * before they reach the display), so this definition, which takes the
 * place of the library's own (its only caller is webSocketsCheck(),
 * through the PLT; ld exports it from the program because the library
 * defines the same name), says at once that nothing came: a plain RFB
 * client.
 */
int rfbPeekExactTimeout(rfbClientPtr cl, char *buf, int len, int timeout)
{
    (void)cl, (void)buf, (void)len, (void)timeout;
    errno = ETIMEDOUT;
    return -1;
}

static void ds_session_on_signal(int sig)
{
    (void)sig;
    ds_session_stop = 1;
}

void ds_session_init(int argc, char **argv, struct ds_session_args *a)
{
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    memset(a, 0, sizeof(*a));
    a->client_fd = DS_DAEMON_CLIENT_FD;
    a->chan_fd = DS_DAEMON_CHAN_FD;
    a->peer = "unknown";
    a->stats_interval = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--session"))
            a->via = !strcmp(argv[i + 1], "vnc")   ? DS_SESSION_VNC
                     : !strcmp(argv[i + 1], "rdp") ? DS_SESSION_RDP
                                                   : DS_SESSION_GATEWAY;
        else if (!strcmp(argv[i], "--peer"))
            a->peer = argv[i + 1];
        else if (!strcmp(argv[i], "--stats-interval"))
            a->stats_interval = atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : 5;
    }
}

const char *ds_session_via_name(enum ds_session_via via)
{
    return via == DS_SESSION_VNC   ? "vnc"
           : via == DS_SESSION_RDP ? "rdp"
                                   : "gateway";
}

/* ------------------------------------------------------------------------
 * The daemon channel */

/* Sends msg (consumed); a daemon that is gone or busy only loses it. */
void ds_session_tell(const struct ds_session_args *args, json_t *msg)
{
    int r = ds_chan_send(args->chan_fd, msg, -1);

    if (r < 0 && r != -EAGAIN && r != -EPIPE && r != -ECONNRESET)
        ds_session_log("cannot report to the daemon: %s", strerror(-r));
}

/*
 * Asks the daemon to check a credential (req consumed) and waits for the
 * answer. On success fills the session's identity and returns the
 * descriptor connected to the desktop's vnc.sock; otherwise -1 with the
 * reason in s->refused.
 */
static int ds_session_authenticate(struct ds_session *s, json_t *req)
{
    json_t *ans = NULL;
    const char *desktop, *user, *reason;
    int fd = -1, r;

    json_object_set_new(req, "peer", json_string(s->peer));
    r = ds_chan_send(s->args->chan_fd, req, -1);
    if (!r)
        r = ds_chan_recv_wait(s->args->chan_fd, &ans, &fd, DS_SESSION_AUTH_MS);
    if (r < 0) {
        snprintf(s->refused, sizeof(s->refused),
                 "the display daemon did not answer (%s)", strerror(-r));
        return -1;
    }
    if (!json_is_true(json_object_get(ans, "ok"))) {
        reason = json_string_value(json_object_get(ans, "reason"));
        snprintf(s->refused, sizeof(s->refused), "%s",
                 reason ? reason : "refused");
        goto fail;
    }
    desktop = json_string_value(json_object_get(ans, "desktop"));
    user = json_string_value(json_object_get(ans, "user"));
    if (fd < 0 || !desktop || !user) {
        snprintf(s->refused, sizeof(s->refused),
                 "malformed answer from the display daemon");
        goto fail;
    }
    s->session_id = json_integer_value(json_object_get(ans, "session"));
    s->view_only = json_is_true(json_object_get(ans, "view_only"));
    snprintf(s->desktop, sizeof(s->desktop), "%s", desktop);
    snprintf(s->user, sizeof(s->user), "%s", user);
    json_decref(ans);
    return fd;
fail:
    json_decref(ans);
    if (fd >= 0)
        close(fd);
    return -1;
}

/* ------------------------------------------------------------------------
 * Framebuffer and cursor */

/* Copies a rectangle of the source's framebuffer into ours. */
static void ds_session_copy_rect(struct ds_session *s,
                                 const struct ds_source_fb *sfb,
                                 const struct ds_source_rect *r)
{
    int y;

    for (y = r->y; y < r->y + r->h; y++)
        memcpy(s->fb + (size_t)y * s->width + r->x,
               (const char *)sfb->pixels + (size_t)y * sfb->stride +
                   (size_t)r->x * 4,
               (size_t)r->w * 4);
}

static void ds_session_set_format(rfbScreenInfoPtr screen)
{
    /* XRGB8888 in a little-endian uint32_t, as the source hands it out. */
    screen->serverFormat.redShift = 16;
    screen->serverFormat.greenShift = 8;
    screen->serverFormat.blueShift = 0;
    screen->serverFormat.redMax = 255;
    screen->serverFormat.greenMax = 255;
    screen->serverFormat.blueMax = 255;
}

/* Takes the source's size and all of its pixels (first frame, resize). */
static int ds_session_new_fb(struct ds_session *s)
{
    struct ds_source_fb sfb;
    struct ds_source_rect all;
    uint32_t *fb, *old = s->fb;

    /* All of it is copied below: what the source calls damage now is
     * covered (and would hide new damage inside it). */
    ds_source_take_damage(s->src, &all, 1);
    ds_source_framebuffer(s->src, &sfb);
    fb = malloc((size_t)sfb.width * sfb.height * 4);
    if (!fb)
        return -ENOMEM;
    s->fb = fb;
    s->width = sfb.width;
    s->height = sfb.height;
    all = (struct ds_source_rect){0, 0, sfb.width, sfb.height};
    ds_session_copy_rect(s, &sfb, &all);
    rfbNewFramebuffer(s->screen, (char *)fb, sfb.width, sfb.height, 8, 3, 4);
    ds_session_set_format(s->screen);
    free(old);
    return 0;
}

/* Copies the damage into our framebuffer and marks it for the client. */
static void ds_session_apply_damage(struct ds_session *s)
{
    struct ds_source_rect rects[DS_SESSION_MAX_RECTS];
    struct ds_source_fb sfb;
    int n, i;

    n = ds_source_take_damage(s->src, rects, DS_SESSION_MAX_RECTS);
    ds_source_framebuffer(s->src, &sfb);
    for (i = 0; i < n; i++) {
        ds_session_copy_rect(s, &sfb, &rects[i]);
        rfbMarkRectAsModified(s->screen, rects[i].x, rects[i].y,
                              rects[i].x + rects[i].w, rects[i].y + rects[i].h);
    }
}

/* Forwards QEMU's cursor shape (only display devices with a hardware
 * cursor have one; std VGA does not, then the client gets none). */
static void ds_session_update_cursor(struct ds_session *s)
{
    struct ds_source_cursor cur;
    rfbCursorPtr c;
    int row_bytes, x, y;

    if (ds_source_cursor(s->src, &cur) < 0 || cur.serial == s->cursor_serial)
        return;
    s->cursor_serial = cur.serial;
    row_bytes = (cur.width + 7) / 8;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->width = (unsigned short)cur.width;
    c->height = (unsigned short)cur.height;
    c->xhot = (unsigned short)cur.hot_x;
    c->yhot = (unsigned short)cur.hot_y;
    c->richSource = malloc((size_t)cur.width * cur.height * 4);
    c->mask = calloc((size_t)row_bytes * cur.height, 1);
    c->source = calloc((size_t)row_bytes * cur.height, 1);
    if (!c->richSource || !c->mask || !c->source) {
        free(c->richSource);
        free(c->mask);
        free(c->source);
        free(c);
        return;
    }
    for (y = 0; y < cur.height; y++)
        for (x = 0; x < cur.width; x++) {
            uint32_t p = cur.pixels[y * cur.width + x];

            memcpy(c->richSource + ((size_t)y * cur.width + x) * 4, &p, 4);
            if (p >> 24)
                c->mask[y * row_bytes + x / 8] |= (uint8_t)(0x80 >> (x % 8));
        }
    c->cleanup = c->cleanupSource = c->cleanupMask = TRUE;
    c->cleanupRichSource = TRUE;
    rfbSetCursor(s->screen, c);
}

/* ------------------------------------------------------------------------
 * Input: libvncserver hooks to the source */

static struct ds_session *ds_session_of(rfbClientPtr cl)
{
    return cl->screen->screenData;
}

/* libvncserver drops a viewOnly client's keys, pointer and cut text
 * itself; the hooks check again, as the extension message must. */
static void ds_session_on_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
    struct ds_session *s = ds_session_of(cl);

    if (s->src && keysym && !cl->viewOnly)
        ds_source_key_sym(s->src, (uint32_t)keysym, down ? 1 : 0);
}

static void ds_session_on_pointer(int buttons, int x, int y, rfbClientPtr cl)
{
    struct ds_session *s = ds_session_of(cl);

    if (s->src && !cl->viewOnly)
        ds_source_pointer(s->src, x, y, (unsigned)buttons & 0xff);
}

static void ds_session_on_cut_text(char *text, int len, rfbClientPtr cl)
{
    /* The clipboard goes through the agent (agent/PROTOCOL.md). */
    (void)text;
    (void)len;
    (void)cl;
}

/* ------------------------------------------------------------------------
 * The QEMU extended key event, as a libvncserver protocol extension */

static int ds_session_ext_encodings[] = {DS_SESSION_ENC_QEMU_EXT_KEYS, 0};

/* A client announced -258. The acknowledgement (a pseudo-rectangle of
 * that encoding: how QEMU says "send me scancodes"; noVNC waits for it)
 * goes out after libvncserver's own answer to the SetEncodings: its
 * SupportedMessages rectangle (which cannot list message 255) would
 * otherwise overwrite what a libvncclient client learnt from ours. */
static rfbBool ds_session_ext_enable(rfbClientPtr cl, void **data, int enc)
{
    (void)data;
    if (enc != DS_SESSION_ENC_QEMU_EXT_KEYS)
        return FALSE;
    ds_session_of(cl)->ext_ack_pending = 1;
    return TRUE;
}

static void ds_session_ext_ack(struct ds_session *s)
{
    uint8_t msg[16] = {0};
    uint32_t e = (uint32_t)DS_SESSION_ENC_QEMU_EXT_KEYS;

    s->ext_ack_pending = 0;
    msg[0] = rfbFramebufferUpdate;
    msg[3] = 1; /* one rectangle, at 0,0, 0x0 */
    msg[12] = (uint8_t)(e >> 24);
    msg[13] = (uint8_t)(e >> 16);
    msg[14] = (uint8_t)(e >> 8);
    msg[15] = (uint8_t)e;
    if (rfbWriteExact(s->cl, (const char *)msg, sizeof(msg)) < 0)
        rfbCloseClient(s->cl);
}

static uint32_t ds_session_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Client message 255 subtype 0: down-flag (u16), keysym, keycode (u32),
 * the keycode a QEMU "qnum". Anything else under 255 ends the client. */
static rfbBool ds_session_ext_message(rfbClientPtr cl, void *data,
                                      const rfbClientToServerMsg *msg)
{
    struct ds_session *s = ds_session_of(cl);
    uint8_t b[11];
    uint32_t keysym, qnum;
    int down;

    (void)data;
    if (msg->type != DS_SESSION_MSG_QEMU)
        return FALSE;
    if (rfbReadExact(cl, (char *)b, 1) <= 0)
        goto bad;
    if (b[0] != DS_SESSION_QEMU_EXT_KEY) {
        ds_session_log("client sent QEMU message subtype %u: closing", b[0]);
        goto bad;
    }
    if (rfbReadExact(cl, (char *)b + 1, 10) <= 0)
        goto bad;
    down = (b[1] << 8 | b[2]) != 0;
    keysym = ds_session_be32(b + 3);
    qnum = ds_session_be32(b + 7);
    if (!s->src || cl->viewOnly)
        return TRUE;
    if (qnum >= 1 && qnum <= 0xff)
        ds_source_key_scancode(s->src, qnum, down);
    else if (keysym)
        ds_source_key_sym(s->src, keysym, down);
    return TRUE;
bad:
    rfbCloseClient(cl);
    return TRUE;
}

static rfbProtocolExtension ds_session_ext_keys = {
    .newClient = NULL, /* enabled per client by its SetEncodings */
    .pseudoEncodings = ds_session_ext_encodings,
    .enablePseudoEncoding = ds_session_ext_enable,
    .handleMessage = ds_session_ext_message,
};

/* ------------------------------------------------------------------------
 * Authentication */

static void ds_session_hex(char *out, const unsigned char *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int ds_session_open_source(struct ds_session *s, int fd)
{
    int r = ds_source_open_fd(&s->src, fd, s->desktop, DS_SESSION_SOURCE_MS);

    if (r < 0) {
        snprintf(s->refused, sizeof(s->refused), "cannot read desktop %s: %s",
                 s->desktop, strerror(-r));
        return r;
    }
    r = ds_session_new_fb(s);
    if (r < 0)
        snprintf(s->refused, sizeof(s->refused), "out of memory");
    return r;
}

/* libvncserver's VNC authentication check: the daemon holds the
 * passwords, so the challenge and the client's response go there. */
static rfbBool ds_session_check_password(rfbClientPtr cl, const char *resp,
                                         int len)
{
    struct ds_session *s = ds_session_of(cl);
    char chal_hex[2 * DS_CRED_CHALLENGE + 1],
        resp_hex[2 * DS_CRED_CHALLENGE + 1];
    json_t *req;
    int fd;

    if (len != DS_CRED_CHALLENGE || s->src)
        return FALSE;
    ds_session_hex(chal_hex, cl->authChallenge, DS_CRED_CHALLENGE);
    ds_session_hex(resp_hex, (const unsigned char *)resp, DS_CRED_CHALLENGE);
    req = json_pack("{s:s, s:s, s:s}", "op", "auth-vnc", "challenge", chal_hex,
                    "response", resp_hex);
    fd = ds_session_authenticate(s, req);
    if (fd < 0)
        return FALSE;
    cl->viewOnly = s->view_only ? TRUE : FALSE;
    return ds_session_open_source(s, fd) == 0;
}

/* Reads the preamble line byte by byte: nothing of the RFB stream after
 * it may be consumed. Returns 0 with the line (no newline) or -1. */
static int ds_session_read_preamble(struct ds_session *s, char *line,
                                    size_t size)
{
    long long deadline = dp_time_now_ms() + DS_SESSION_PREAMBLE_MS;
    size_t n = 0;

    for (;;) {
        struct pollfd p = {.fd = s->args->client_fd, .events = POLLIN};
        long long left = deadline - dp_time_now_ms();
        ssize_t r;
        char c;

        if (left <= 0 || ds_session_stop) {
            snprintf(s->refused, sizeof(s->refused),
                     "no ticket line within %d s",
                     DS_SESSION_PREAMBLE_MS / 1000);
            return -1;
        }
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        r = read(s->args->client_fd, &c, 1);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0) {
            snprintf(s->refused, sizeof(s->refused),
                     "connection closed before the ticket line");
            return -1;
        }
        if (c == '\n') {
            if (n && line[n - 1] == '\r')
                n--;
            line[n] = '\0';
            return 0;
        }
        if (n + 1 >= size || (unsigned char)c < 0x20 || c == 0x7f) {
            snprintf(s->refused, sizeof(s->refused), "malformed ticket line");
            return -1;
        }
        line[n++] = c;
    }
}

/* Writes all of buf to the client, waiting at most a few seconds. */
static int ds_session_write_raw(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    long long deadline = dp_time_now_ms() + 5000;

    while (len) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if ((long long)dp_time_now_ms() >= deadline || poll(&pfd, 1, 1000) < 0)
            return -1;
    }
    return 0;
}

/* Tells a refused gateway client why, the way RFB 3.8 can before any
 * authentication: ProtocolVersion, then an empty security-type list
 * followed by the reason (noVNC shows it). */
static void ds_session_refuse_rfb(struct ds_session *s, const char *reason)
{
    static const char version[] = "RFB 003.008\n";
    uint8_t msg[5 + 128];
    size_t len = strlen(reason);
    char theirs[12];
    size_t got = 0;
    long long deadline = dp_time_now_ms() + 5000;

    if (len > sizeof(msg) - 5)
        len = sizeof(msg) - 5;
    if (ds_session_write_raw(s->args->client_fd, version, 12) < 0)
        return;
    while (got < sizeof(theirs) && (long long)dp_time_now_ms() < deadline) {
        struct pollfd p = {.fd = s->args->client_fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, 1000) <= 0)
            continue;
        n = read(s->args->client_fd, theirs + got, sizeof(theirs) - got);
        if (n <= 0)
            return;
        got += (size_t)n;
    }
    msg[0] = 0; /* no security types: the reason follows */
    msg[1] = (uint8_t)(len >> 24);
    msg[2] = (uint8_t)(len >> 16);
    msg[3] = (uint8_t)(len >> 8);
    msg[4] = (uint8_t)len;
    memcpy(msg + 5, reason, len);
    ds_session_write_raw(s->args->client_fd, msg, 5 + len);
}

/* Gateway: preamble, ticket check, source; then RFB without a password. */
static int ds_session_gateway_auth(struct ds_session *s)
{
    char line[DS_SESSION_PREAMBLE_MAX + 1];
    char *ticket, *peer, *save = NULL;
    json_t *req;
    int fd;

    if (ds_session_read_preamble(s, line, sizeof(line)) < 0)
        return -1;
    if (strncmp(line, "TICKET ", 7) != 0) {
        snprintf(s->refused, sizeof(s->refused),
                 "the connection did not start with a ticket line");
        return -1;
    }
    ticket = strtok_r(line + 7, " ", &save);
    peer = strtok_r(NULL, " ", &save);
    if (!ticket || strtok_r(NULL, " ", &save)) {
        snprintf(s->refused, sizeof(s->refused), "malformed ticket line");
        return -1;
    }
    req = json_pack("{s:s, s:s}", "op", "auth-ticket", "ticket", ticket);
    if (peer) {
        json_object_set_new(req, "via_peer", json_string(peer));
        snprintf(s->peer, sizeof(s->peer), "%.64s", peer);
    }
    fd = ds_session_authenticate(s, req);
    if (fd < 0)
        return -1;
    return ds_session_open_source(s, fd);
}

/* ------------------------------------------------------------------------
 * Updates, lag and statistics */

/* Tight quality levels 0-9 as libjpeg-turbo qualities (TurboVNC's
 * mapping, the one libvncserver applies to the client's own choice). */
static const int ds_session_turbo_quality[10] = {15, 29, 41, 42, 62,
                                                 77, 79, 86, 92, 100};

static size_t ds_session_outq(const struct ds_session *s)
{
    int n = 0;

    if (ioctl(s->cl->sock, SIOCOUTQ, &n) < 0 || n < 0)
        return 0;
    return (size_t)n;
}

/* Lowers the client's JPEG quality while it lags (display/README.md);
 * remembers what the client itself asked for across its SetEncodings. */
static void ds_session_adapt_quality(struct ds_session *s, long long now)
{
    rfbClientPtr cl = s->cl;
    size_t outq = ds_session_outq(s);
    long long lag = s->awaiting_request ? now - s->update_sent_ms : 0;
    int want = 0, level;

    if (cl->turboQualityLevel != s->applied_turbo) /* new SetEncodings */
        s->client_quality =
            cl->turboQualityLevel < 0 ? -1 : cl->tightQualityLevel;
    if (lag < s->lag_ms)
        lag = s->lag_ms;
    if (outq >= DS_SESSION_LAG2_BYTES || lag >= DS_SESSION_LAG2_MS)
        want = 4;
    else if (outq >= DS_SESSION_LAG1_BYTES || lag >= DS_SESSION_LAG1_MS)
        want = 2;
    if (want > s->quality_penalty) {
        s->quality_penalty = want;
        s->recovered_ms = now;
    } else if (want < s->quality_penalty && now - s->recovered_ms >= 1000) {
        s->quality_penalty--; /* one level a second */
        s->recovered_ms = now;
    }
    if (s->client_quality < 0 || s->client_quality > 9) {
        s->applied_turbo = cl->turboQualityLevel;
        return;
    }
    level = s->client_quality - s->quality_penalty;
    if (level < 0)
        level = 0;
    cl->turboQualityLevel = ds_session_turbo_quality[level];
    s->applied_turbo = cl->turboQualityLevel;
}

static void ds_session_count_bytes(struct ds_session *s)
{
    unsigned now = (unsigned)rfbStatGetSentBytes(s->cl);

    /* libvncserver counts in an int: take deltas, mod 2^32. */
    s->count.bytes_sent += (unsigned)(now - s->last_stat_bytes);
    s->last_stat_bytes = now;
}

/* Sends an update when the client asked and its socket is not backed up;
 * otherwise the damage keeps accumulating in libvncserver's region. */
static void ds_session_maybe_update(struct ds_session *s, long long now)
{
    rfbClientPtr cl = s->cl;

    if (cl->state != RFB_NORMAL || cl->sock < 0)
        return;
    if (s->awaiting_request && !sraRgnEmpty(cl->requestedRegion)) {
        s->lag_ms = now - s->update_sent_ms;
        s->awaiting_request = 0;
    }
    ds_session_adapt_quality(s, now);
    cl->onHold = ds_session_outq(s) >= DS_SESSION_OUTQ_HOLD;
    if (rfbUpdateClient(cl)) {
        s->count.frames++;
        s->update_sent_ms = now;
        s->awaiting_request = 1;
        /* Once libvncserver has sent what it queued for the client's
         * SetEncodings (size first, then SupportedMessages). */
        if (s->ext_ack_pending && cl->sock >= 0 && !cl->newFBSizePending &&
            !cl->enableSupportedMessages)
            ds_session_ext_ack(s);
    }
    ds_session_count_bytes(s);
}

void ds_session_count_latency(struct ds_session_count *c, long long us)
{
    long long b = us / DS_SESSION_LAT_STEP_US;

    if (b < 0)
        b = 0;
    if (b >= DS_SESSION_LAT_BUCKETS)
        b = DS_SESSION_LAT_BUCKETS - 1;
    c->latency[b]++;
    c->latency_n++;
}

/* The latency below which fraction q of the frames stayed, in ms (the
 * upper edge of the bucket). */
static double ds_session_latency_at(const struct ds_session_count *c, double q)
{
    uint64_t want = (uint64_t)(q * (double)c->latency_n + 0.999999), seen = 0;
    int i;

    for (i = 0; i < DS_SESSION_LAT_BUCKETS; i++) {
        seen += c->latency[i];
        if (seen >= want && seen > 0)
            break;
    }
    if (i == DS_SESSION_LAT_BUCKETS)
        i--;
    return (double)(i + 1) * DS_SESSION_LAT_STEP_US / 1000.0;
}

void ds_session_report_stats(const struct ds_session_args *args,
                             struct ds_session_count *c, long long now)
{
    json_t *msg;

    if (now < c->next_stats_ms)
        return;
    c->next_stats_ms = now + args->stats_interval * 1000LL;
    if (c->bytes_sent == c->reported_bytes && c->frames == c->reported_frames)
        return;
    c->reported_bytes = c->bytes_sent;
    c->reported_frames = c->frames;
    msg = json_pack("{s:s, s:I, s:I}", "op", "stats", "bytes_sent",
                    (json_int_t)c->bytes_sent, "frames", (json_int_t)c->frames);
    if (msg && c->latency_n)
        json_object_set_new(msg, "latency",
                            json_pack("{s:I, s:f, s:f}", "n",
                                      (json_int_t)c->latency_n, "p50_ms",
                                      ds_session_latency_at(c, 0.5), "p99_ms",
                                      ds_session_latency_at(c, 0.99)));
    ds_session_tell(args, msg);
}

/* ------------------------------------------------------------------------
 * The loop */

static rfbScreenInfoPtr ds_session_screen(struct ds_session *s)
{
    rfbScreenInfoPtr screen;

    /* A placeholder framebuffer until the desktop is known. */
    screen = rfbGetScreen(NULL, NULL, 64, 64, 8, 3, 4);
    if (!screen)
        return NULL;
    s->fb = calloc(64 * 64, 4);
    if (!s->fb) {
        rfbScreenCleanup(screen);
        return NULL;
    }
    s->width = s->height = 64;
    screen->frameBuffer = (char *)s->fb;
    ds_session_set_format(screen);
    screen->screenData = s;
    screen->desktopName = "Deskpool";
    screen->alwaysShared = TRUE;
    screen->deferUpdateTime = 0;
    screen->deferPtrUpdateTime = 0;
    screen->cursor = NULL; /* the guest draws its own pointer */
    screen->kbdAddEvent = ds_session_on_key;
    screen->ptrAddEvent = ds_session_on_pointer;
    screen->setXCutText = ds_session_on_cut_text;
    screen->socketState = RFB_SOCKET_READY; /* no listening of its own */
    if (s->args->via == DS_SESSION_VNC) {
        /* Non-NULL asks for VNC authentication; the check is ours. */
        screen->authPasswdData = (void *)"daemon";
        screen->passwordCheck = ds_session_check_password;
    }
    return screen;
}

/* Handles what the client sent; 0, or -1 when it is gone. */
static int ds_session_client_input(struct ds_session *s)
{
    int i;

    for (i = 0; i < DS_SESSION_MAX_MESSAGES; i++) {
        struct pollfd p = {.fd = s->cl->sock, .events = POLLIN};

        if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP)))
            break;
        rfbProcessClientMessage(s->cl);
        if (s->cl->sock < 0)
            return -1;
    }
    return 0;
}

/* Reads what QEMU sent; 0, or -1 when the desktop is gone. */
static int ds_session_source_input(struct ds_session *s, int *more)
{
    int r = ds_source_process(s->src);

    *more = 0;
    if (r < 0)
        return -1;
    if ((r & DS_SOURCE_RESIZED) && ds_session_new_fb(s) < 0)
        return -1;
    if (r & DS_SOURCE_DAMAGE)
        ds_session_apply_damage(s);
    if (r & DS_SOURCE_CURSOR)
        ds_session_update_cursor(s);
    *more = (r & DS_SOURCE_MORE) != 0;
    return 0;
}

/* Serves the client until something ends the session; returns why. */
static const char *ds_session_serve(struct ds_session *s)
{
    int more = 0;

    for (;;) {
        struct pollfd p[2];
        long long now = dp_time_now_ms();
        int n = 1, timeout = 1000;

        if (ds_session_stop)
            return "disconnected";
        p[0] = (struct pollfd){.fd = s->cl->sock, .events = POLLIN};
        if (s->src) {
            p[1] =
                (struct pollfd){.fd = ds_source_fd(s->src), .events = POLLIN};
            n = 2;
        }
        /* Held back: look at the socket again soon. (POLLOUT would fire
         * as long as there is any room, long before it drains.) */
        if (s->src && s->cl->onHold)
            timeout = 20;
        if (more)
            timeout = 0;
        if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
            return "poll failed";
        if (ds_session_client_input(s) < 0)
            return s->src ? "client closed" : "closed before authenticating";
        if (s->src && (more || (n == 2 && p[1].revents)) &&
            ds_session_source_input(s, &more) < 0)
            return "desktop gone";
        if (s->src) {
            now = dp_time_now_ms();
            ds_session_maybe_update(s, now);
            if (s->cl->sock < 0)
                return "client closed";
            ds_session_report_stats(s->args, &s->count, now);
        }
    }
}

static void ds_session_setup_process(void)
{
    struct sigaction sa = {0};

    sa.sa_handler = ds_session_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rfbLog = ds_session_lib_quiet;
    rfbErr = ds_session_lib_err;
    rfbMaxClientWait = DS_SESSION_CLIENT_WAIT;
    rfbRegisterProtocolExtension(&ds_session_ext_keys);
}

/* libvncserver 0.9.14 never frees a client's extension records (neither
 * rfbClientConnectionGone() nor rfbDisableExtension() does). */
static void ds_session_free_extensions(rfbClientPtr cl)
{
    rfbExtensionData *e, *next;

    for (e = cl->extensions; e; e = next) {
        next = e->next;
        free(e->data);
        free(e);
    }
    cl->extensions = NULL;
}

static void ds_session_end(struct ds_session *s, const char *reason,
                           int refused)
{
    json_t *msg;

    if (s->cl && s->cl->sock >= 0)
        ds_session_count_bytes(s);
    msg = json_pack("{s:s, s:s, s:b, s:I, s:I}", "op", "end", "reason", reason,
                    "refused", refused, "bytes_sent",
                    (json_int_t)s->count.bytes_sent, "frames",
                    (json_int_t)s->count.frames);
    ds_session_tell(s->args, msg);
    /* The daemon logs refusals (it knows whether it told one already). */
    if (!refused)
        ds_session_log("session %lld (%s for %s, %s client %s) ended: %s, "
                       "%llu bytes in %llu updates",
                       s->session_id, s->desktop, s->user,
                       ds_session_via_name(s->args->via), s->peer, reason,
                       (unsigned long long)s->count.bytes_sent,
                       (unsigned long long)s->count.frames);
}

int ds_session_run(const struct ds_session_args *args)
{
    struct ds_session s = {
        .args = args, .client_quality = -1, .applied_turbo = -1};
    const char *reason;
    int refused = 0;

    snprintf(s.peer, sizeof(s.peer), "%s", args->peer);
    ds_session_setup_process();
    s.screen = ds_session_screen(&s);
    if (!s.screen) {
        ds_session_log("out of memory");
        return 1;
    }
    if (args->via == DS_SESSION_GATEWAY && ds_session_gateway_auth(&s) < 0) {
        /* Only the daemon's answers are safe to tell the client. */
        ds_session_refuse_rfb(&s, s.refused);
        ds_session_end(&s, s.refused, 1);
        close(args->client_fd);
        rfbScreenCleanup(s.screen);
        free(s.fb);
        return 1;
    }
    s.cl = rfbNewClient(s.screen, args->client_fd);
    if (!s.cl) {
        ds_session_end(&s, "cannot start the RFB connection", 1);
        rfbScreenCleanup(s.screen);
        free(s.fb);
        return 1;
    }
    s.cl->viewOnly = s.view_only ? TRUE : FALSE;
    s.count.next_stats_ms = dp_time_now_ms() + args->stats_interval * 1000LL;
    reason = ds_session_serve(&s);
    refused = !s.src;
    if (refused && s.refused[0])
        reason = s.refused;
    ds_session_end(&s, reason, refused);
    /* rfbProcessEvents() would free a closed client; we do it here. */
    if (s.cl->sock >= 0)
        rfbCloseClient(s.cl);
    ds_session_free_extensions(s.cl);
    rfbClientConnectionGone(s.cl);
    rfbScreenCleanup(s.screen);
    ds_source_close(s.src);
    free(s.fb);
    return refused ? 1 : 0;
}
