/*
 * ds_rdp.c - the RDP session process (see ds_rdp.h).
 *
 * One poll loop over the client's socket, the desktop's source and the
 * daemon channel. FreeRDP's peer reads the socket itself
 * (CheckFileDescriptor) and calls back here: Capabilities (the Client Info
 * PDU has arrived: authenticate, size the session), Activate (send the
 * whole screen), input events. Output is the graphics pipeline's frames
 * (ds_rdpgfx) or bitmap updates of dirty 64x64 tiles, planar-compressed;
 * both take their damage from the dirty tiles.
 */
#include "ds_rdp.h"

#include <ctype.h>
#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <freerdp/channels/channels.h>
#include <freerdp/channels/wtsvc.h>
#include <freerdp/codec/planar.h>
#include <freerdp/freerdp.h>
#include <freerdp/peer.h>
#include <freerdp/settings.h>
#include <winpr/ssl.h>
#include <winpr/wtsapi.h>

#include <jansson.h>

#include "dp_time.h"
#include "ds_chan.h"
#include "ds_cred.h"
#include "ds_rdpclip.h"
#include "ds_rdpdisp.h"
#include "ds_rdpgfx.h"
#include "ds_session.h"
#include "ds_source.h"

#define DS_RDP_TILE        64
#define DS_RDP_AUTH_MS     20000 /* the daemon asks the broker: PAM is slow */
#define DS_RDP_TLS_MS      5000
#define DS_RDP_SOURCE_MS   5000
#define DS_RDP_LOGIN_S     15    /* from connect to credentials: no stalling */
#define DS_RDP_STUCK_S     10    /* after SIGTERM, at most this long */
#define DS_RDP_UPDATE_MAX  16000 /* bytes of tiles per bitmap update */
#define DS_RDP_WHEEL_NOTCH 120
#define DS_RDP_XK_SHIFT_L  0xffe1
#define DS_RDP_SHIFTED     "~!@#$%^&*()_+{}|:\"<>?"
#define DS_RDP_ASKS        4 /* agent requests in flight (the daemon's bound) */

/* Lock keys: RDP's sync flags and the keys (QEMU numbers) that toggle
 * them. */
static const struct {
    UINT32 sync;
    unsigned qnum;
} ds_rdp_locks[] = {{KBD_SYNC_SCROLL_LOCK, 0x46},
                    {KBD_SYNC_NUM_LOCK, 0x45},
                    {KBD_SYNC_CAPS_LOCK, 0x3a}};

static volatile sig_atomic_t ds_rdp_stop;
static int ds_rdp_alarm_chan = -1; /* for the SIGALRM handler only */

/* What the SIGALRM handler tells the daemon (written as is: jansson is not
 * async-signal-safe): a login that never came, or a session told to end
 * that stayed stuck writing to a client that does not read. */
static const char ds_rdp_late[] =
    "{\"op\":\"end\",\"reason\":\"no login within 15 s\","
    "\"refused\":true,\"bytes_sent\":0,\"frames\":0}";
static const char ds_rdp_stuck[] =
    "{\"op\":\"end\",\"reason\":\"disconnected (client not reading)\","
    "\"refused\":false,\"bytes_sent\":0,\"frames\":0}";
static volatile sig_atomic_t ds_rdp_ending; /* SIGTERM came: alarm = stuck */

/* What an agent request sent to the daemon was for. */
enum ds_rdp_ask_kind {
    DS_RDP_ASK_NONE,
    DS_RDP_ASK_CLIP_GET,
    DS_RDP_ASK_CLIP_SET,
    DS_RDP_ASK_RESOLUTION
};

struct ds_rdp {
    const struct ds_session_args *args;
    freerdp_peer *peer;
    struct ds_source *src;
    BITMAP_PLANAR_CONTEXT *planar;
    HANDLE vcm; /* the peer's virtual channel manager */
    struct ds_rdpgfx *gfx;
    int gfx_state; /* enum ds_rdpgfx_state */
    struct ds_rdpdisp *disp;
    struct ds_rdpclip *clip;
    int clip_started;
    int chan_gone; /* the daemon closed the channel: no more requests */
    long long next_ask;
    struct {
        long long id;
        enum ds_rdp_ask_kind kind;
    } asks[DS_RDP_ASKS];

    long long session_id;
    char desktop[DS_CRED_NAME_MAX + 1];
    char user[DS_CRED_NAME_MAX + 1];
    char refused[160]; /* why authentication failed */
    int authed, view_only;

    int activated;  /* the client is ready for graphics */
    int suppressed; /* the client asked for no output (minimised) */
    int width, height;
    int tiles_x, tiles_y;
    unsigned char *dirty; /* tiles_x * tiles_y flags */
    int any_dirty;
    int resize_pending;

    unsigned buttons; /* DS_SOURCE_BUTTON_* held */
    int last_x, last_y;
    int pause_pending; /* the E1 1D of Pause came: drop its 45 */
    UINT32 locks;      /* KBD_SYNC_* lock states the guest has, we believe */
    UINT32 locks_held; /* lock keys down now */

    long long damage_us; /* when the oldest unsent damage was read; 0: none */

    struct ds_session_count count;
};

/* FreeRDP allocates ContextSize bytes: our context begins with its own. */
struct ds_rdp_context {
    rdpContext base;
    struct ds_rdp *s;
};

static void ds_rdp_on_signal(int sig)
{
    (void)sig;
    ds_rdp_stop = 1;
    /* FreeRDP's writes block until the client reads: if this session is
     * stuck in one, the alarm ends it. */
    ds_rdp_ending = 1;
    alarm(DS_RDP_STUCK_S);
}

/* The login deadline passed, or a SIGTERM'd session is still stuck.
 * FreeRDP's TLS handshake and writes block (inside CheckFileDescriptor and
 * the update calls), so a client that stalls there is ended by this alarm,
 * not by the poll loop. */
static void ds_rdp_on_alarm(int sig)
{
    const char *msg = ds_rdp_ending ? ds_rdp_stuck : ds_rdp_late;

    (void)sig;
    if (send(ds_rdp_alarm_chan, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL) <
        0) {
        /* the daemon is gone: nothing to tell */
    }
    _exit(1);
}

static struct ds_rdp *ds_rdp_of(rdpContext *context)
{
    return ((struct ds_rdp_context *)context)->s;
}

/* ------------------------------------------------------------------------
 * Dirty tiles */

static int ds_rdp_resize_tiles(struct ds_rdp *s, int width, int height)
{
    unsigned char *d;
    int tx = (width + DS_RDP_TILE - 1) / DS_RDP_TILE;
    int ty = (height + DS_RDP_TILE - 1) / DS_RDP_TILE;

    d = calloc((size_t)tx * (size_t)ty, 1);
    if (!d)
        return -ENOMEM;
    free(s->dirty);
    s->dirty = d;
    s->width = width;
    s->height = height;
    s->tiles_x = tx;
    s->tiles_y = ty;
    return 0;
}

static void ds_rdp_mark(struct ds_rdp *s, int x, int y, int w, int h)
{
    struct ds_source_rect r = {x, y, w, h};
    int tx, ty;

    if (!ds_source_rect_clip(&r, s->width, s->height))
        return;
    for (ty = r.y / DS_RDP_TILE; ty <= (r.y + r.h - 1) / DS_RDP_TILE; ty++)
        for (tx = r.x / DS_RDP_TILE; tx <= (r.x + r.w - 1) / DS_RDP_TILE; tx++)
            s->dirty[ty * s->tiles_x + tx] = 1;
    s->any_dirty = 1;
}

/* ------------------------------------------------------------------------
 * Output */

static size_t ds_rdp_outq(const struct ds_rdp *s)
{
    int n = 0;

    if (ioctl(s->args->client_fd, SIOCOUTQ, &n) < 0 || n < 0)
        return 0;
    return (size_t)n;
}

static int ds_rdp_flush_batch(struct ds_rdp *s, BITMAP_DATA *tiles, int n)
{
    rdpUpdate *update = s->peer->update;
    BITMAP_UPDATE bu = {
        .count = (UINT32)n, .number = (UINT32)n, .rectangles = tiles};
    BOOL ok = TRUE;
    int i;

    if (n > 0)
        ok = update->BitmapUpdate(update->context, &bu);
    for (i = 0; i < n; i++) {
        s->count.bytes_sent += tiles[i].bitmapLength;
        free(tiles[i].bitmapDataStream);
        tiles[i].bitmapDataStream = NULL;
    }
    return ok ? 0 : -EIO;
}

/* A frame with the damage went to the client's socket: count how long
 * since the damage was read. */
static void ds_rdp_sent_damage(struct ds_rdp *s)
{
    if (!s->damage_us)
        return;
    ds_session_count_latency(&s->count,
                             (long long)(dp_time_now_us() - s->damage_us));
    s->damage_us = 0;
}

/* Sends every dirty tile, grouped in bitmap updates of at most
 * DS_RDP_UPDATE_MAX bytes. */
static int ds_rdp_send_tiles(struct ds_rdp *s)
{
    BITMAP_DATA tiles[64];
    struct ds_source_fb fb;
    size_t batch = 0;
    int n = 0, tx, ty, r = 0;

    ds_source_framebuffer(s->src, &fb);
    if (fb.width != s->width || fb.height != s->height)
        return 0; /* a resize is on its way */
    for (ty = 0; ty < s->tiles_y && r == 0; ty++) {
        for (tx = 0; tx < s->tiles_x && r == 0; tx++) {
            BITMAP_DATA *t;
            const BYTE *src;
            UINT32 size = 0;
            int x = tx * DS_RDP_TILE, y = ty * DS_RDP_TILE;
            int w = s->width - x < DS_RDP_TILE ? s->width - x : DS_RDP_TILE;
            int h = s->height - y < DS_RDP_TILE ? s->height - y : DS_RDP_TILE;

            if (!s->dirty[ty * s->tiles_x + tx])
                continue;
            s->dirty[ty * s->tiles_x + tx] = 0;
            src = (const BYTE *)fb.pixels + (size_t)y * (size_t)fb.stride +
                  (size_t)x * 4;
            t = &tiles[n];
            memset(t, 0, sizeof(*t));
            t->bitmapDataStream = freerdp_bitmap_compress_planar(
                s->planar, src, PIXEL_FORMAT_BGRX32, (UINT32)w, (UINT32)h,
                (UINT32)fb.stride, NULL, &size);
            if (!t->bitmapDataStream) {
                r = -ENOMEM;
                break;
            }
            t->destLeft = (UINT32)x;
            t->destTop = (UINT32)y;
            t->destRight = (UINT32)(x + w - 1);
            t->destBottom = (UINT32)(y + h - 1);
            t->width = (UINT32)w;
            t->height = (UINT32)h;
            t->bitsPerPixel = 32;
            t->compressed = TRUE;
            t->bitmapLength = size;
            t->cbScanWidth = (UINT32)w * 4;
            t->cbUncompressedSize = (UINT32)(w * h * 4);
            t->cbCompMainBodySize = size;
            n++;
            batch += size;
            if (n == (int)(sizeof(tiles) / sizeof(tiles[0])) ||
                batch >= DS_RDP_UPDATE_MAX) {
                r = ds_rdp_flush_batch(s, tiles, n);
                n = 0;
                batch = 0;
            }
        }
    }
    if (ds_rdp_flush_batch(s, tiles, n) < 0 && r == 0)
        r = -EIO;
    s->any_dirty = 0;
    s->count.frames++;
    if (r == 0)
        ds_rdp_sent_damage(s);
    return r;
}

/* The dirty tiles as rectangles (runs of tiles in a row), clipped to the
 * screen, and forgotten. Returns how many, or -ENOMEM. */
static int ds_rdp_dirty_rects(struct ds_rdp *s, struct ds_h264_rect **out)
{
    struct ds_h264_rect *r =
        malloc(sizeof(*r) * (size_t)s->tiles_x * (size_t)s->tiles_y);
    int n = 0, tx, ty;

    *out = r;
    if (!r)
        return -ENOMEM;
    for (ty = 0; ty < s->tiles_y; ty++) {
        for (tx = 0; tx < s->tiles_x; tx++) {
            int x0 = tx, y = ty * DS_RDP_TILE, x, w, h;

            if (!s->dirty[ty * s->tiles_x + tx])
                continue;
            while (tx < s->tiles_x && s->dirty[ty * s->tiles_x + tx])
                s->dirty[ty * s->tiles_x + tx++] = 0;
            x = x0 * DS_RDP_TILE;
            w = tx * DS_RDP_TILE > s->width ? s->width - x
                                            : (tx - x0) * DS_RDP_TILE;
            h = s->height - y < DS_RDP_TILE ? s->height - y : DS_RDP_TILE;
            r[n++] = (struct ds_h264_rect){x, y, w, h};
        }
    }
    s->any_dirty = 0;
    return n;
}

/* The graphics pipeline's frame: the dirty tiles, or when nothing changed
 * the refresh that may be due. Waits while frames are in flight. */
static int ds_rdp_gfx_update(struct ds_rdp *s)
{
    struct ds_h264_rect *rects = NULL;
    struct ds_source_fb fb;
    long long now = dp_time_now_ms();
    long sent;
    int n;

    if (!ds_rdpgfx_ready(s->gfx))
        return 0;
    ds_source_framebuffer(s->src, &fb);
    if (fb.width != s->width || fb.height != s->height)
        return 0; /* a resize is on its way */
    if (!s->any_dirty) {
        sent = ds_rdpgfx_idle(s->gfx, &fb, now);
    } else {
        n = ds_rdp_dirty_rects(s, &rects);
        if (n < 0)
            return n;
        sent = ds_rdpgfx_send(s->gfx, &fb, rects, n, now);
        free(rects);
    }
    if (sent < 0)
        return -EIO;
    if (sent > 0) {
        /* the frame sits in the channel manager's queue: out with it now */
        if (!WTSVirtualChannelManagerCheckFileDescriptor(s->vcm))
            return -EIO;
        s->count.bytes_sent += (uint64_t)sent;
        s->count.frames++;
        ds_rdp_sent_damage(s);
    }
    return 0;
}

/* Sends the dirty tiles when the client is ready and keeps up. */
static int ds_rdp_maybe_update(struct ds_rdp *s)
{
    struct ds_source_rect rects[DS_SOURCE_MAX_DAMAGE];
    int i, n;

    if (!s->src)
        return 0;
    n = ds_source_take_damage(s->src, rects, DS_SOURCE_MAX_DAMAGE);
    for (i = 0; i < n; i++)
        ds_rdp_mark(s, rects[i].x, rects[i].y, rects[i].w, rects[i].h);
    if (!s->activated || s->suppressed || s->gfx_state == DS_RDPGFX_WAIT) {
        /* nothing may go out (not active yet, minimised, the pipeline
         * not chosen): that wait is not the session's latency */
        s->damage_us = 0;
        return 0;
    }
    if (n > 0 && !s->damage_us)
        s->damage_us = dp_time_now_us();
    if (ds_rdp_outq(s) >= DS_RDP_OUTQ_HOLD)
        return 0;
    if (s->gfx_state == DS_RDPGFX_ON)
        return ds_rdp_gfx_update(s);
    if (!s->any_dirty)
        return 0;
    return ds_rdp_send_tiles(s);
}

/* The guest draws its own pointer (std VGA has no hardware cursor):
 * hide the client's. */
static void ds_rdp_hide_pointer(struct ds_rdp *s)
{
    rdpPointerUpdate *p = s->peer->update->pointer;
    POINTER_SYSTEM_UPDATE none = {.type = SYSPTR_NULL};

    if (p && p->PointerSystem)
        p->PointerSystem(s->peer->context, &none);
}

/* The desktop changed its mode: reactivate the client at the new size
 * (the Activate callback then sends the whole screen). */
static int ds_rdp_resize(struct ds_rdp *s)
{
    rdpSettings *settings = s->peer->settings;
    struct ds_source_fb fb;

    ds_source_framebuffer(s->src, &fb);
    if (ds_rdp_resize_tiles(s, fb.width, fb.height) < 0)
        return -ENOMEM;
    if (!s->activated) {
        settings->DesktopWidth = (UINT32)fb.width;
        settings->DesktopHeight = (UINT32)fb.height;
        return 0;
    }
    if (s->gfx_state == DS_RDPGFX_ON) { /* no reactivation with GFX */
        settings->DesktopWidth = (UINT32)fb.width;
        settings->DesktopHeight = (UINT32)fb.height;
        return ds_rdpgfx_resize(s->gfx, fb.width, fb.height);
    }
    if (!settings->DesktopResize) {
        ds_session_log("the client cannot follow the desktop's new size %dx%d",
                       fb.width, fb.height);
        return -ENOTSUP;
    }
    settings->DesktopWidth = (UINT32)fb.width;
    settings->DesktopHeight = (UINT32)fb.height;
    s->activated = 0;
    return s->peer->update->DesktopResize(s->peer->context) ? 0 : -EIO;
}

/* ------------------------------------------------------------------------
 * Input */

/* A lock key pressed by the client toggles what the guest has (a key
 * held down repeats its presses: only the first counts). */
static void ds_rdp_track_lock(struct ds_rdp *s, unsigned qnum, int down)
{
    size_t i;

    for (i = 0; i < sizeof(ds_rdp_locks) / sizeof(ds_rdp_locks[0]); i++) {
        if (ds_rdp_locks[i].qnum != qnum)
            continue;
        if (down && !(s->locks_held & ds_rdp_locks[i].sync))
            s->locks ^= ds_rdp_locks[i].sync;
        if (down)
            s->locks_held |= ds_rdp_locks[i].sync;
        else
            s->locks_held &= ~ds_rdp_locks[i].sync;
    }
}

static BOOL ds_rdp_on_key(rdpInput *input, UINT16 flags, UINT16 code)
{
    struct ds_rdp *s = ds_rdp_of(input->context);
    unsigned qnum = code & 0x7f;
    int down = !(flags & KBD_FLAGS_RELEASE);

    if (!s->src || s->view_only)
        return TRUE;
    if (flags & KBD_FLAGS_EXTENDED1) {
        /* Pause is E1 1D 45: QEMU knows it as qnum 0xc6. */
        if (qnum == 0x1d) {
            s->pause_pending = 1;
            ds_source_key_scancode(s->src, 0xc6, down);
        }
        return TRUE;
    }
    if (s->pause_pending && qnum == 0x45 && !(flags & KBD_FLAGS_EXTENDED)) {
        s->pause_pending = 0;
        return TRUE;
    }
    s->pause_pending = 0;
    if (flags & KBD_FLAGS_EXTENDED)
        qnum |= 0x80;
    if (qnum)
        ds_source_key_scancode(s->src, qnum, down);
    ds_rdp_track_lock(s, qnum, down);
    return TRUE;
}

static BOOL ds_rdp_on_unicode(rdpInput *input, UINT16 flags, UINT16 code)
{
    struct ds_rdp *s = ds_rdp_of(input->context);
    uint32_t sym;
    int shift, down;

    if (!s->src || s->view_only || code < 0x20 ||
        (code >= 0xd800 && code <= 0xdfff))
        return TRUE; /* controls come as scancodes; no surrogate pairs */
    /* Latin-1 keysyms are the code points; the rest is 0x01000000 + U. */
    sym = code < 0x100 ? code : 0x01000000u | code;
    /* QEMU turns a keysym into the key its keymap (en-us) gives, in the
     * Shift state it tracks, and never presses Shift itself: hold it for
     * characters that need it there. */
    shift = code < 0x80 && (isupper(code) || strchr(DS_RDP_SHIFTED, code));
    down = !(flags & KBD_FLAGS_RELEASE);
    if (shift && down)
        ds_source_key_sym(s->src, DS_RDP_XK_SHIFT_L, 1);
    ds_source_key_sym(s->src, sym, down);
    if (shift && !down)
        ds_source_key_sym(s->src, DS_RDP_XK_SHIFT_L, 0);
    return TRUE;
}

static void ds_rdp_wheel(struct ds_rdp *s, unsigned button, int notches)
{
    int i;

    for (i = 0; i < notches && i < 16; i++) {
        ds_source_pointer(s->src, s->last_x, s->last_y, s->buttons | button);
        ds_source_pointer(s->src, s->last_x, s->last_y, s->buttons);
    }
}

static BOOL ds_rdp_on_mouse(rdpInput *input, UINT16 flags, UINT16 x, UINT16 y)
{
    struct ds_rdp *s = ds_rdp_of(input->context);
    static const struct {
        UINT16 flag;
        unsigned button;
    } map[] = {{PTR_FLAGS_BUTTON1, DS_SOURCE_BUTTON_LEFT},
               {PTR_FLAGS_BUTTON2, DS_SOURCE_BUTTON_RIGHT},
               {PTR_FLAGS_BUTTON3, DS_SOURCE_BUTTON_MIDDLE}};
    size_t i;

    if (!s->src || s->view_only)
        return TRUE;
    if (flags & (PTR_FLAGS_WHEEL | PTR_FLAGS_HWHEEL)) {
        int rot = flags & 0x1ff; /* WheelRotationMask */
        int neg = (flags & PTR_FLAGS_WHEEL_NEGATIVE) != 0;
        int notches;

        if (neg)
            rot = 0x200 - rot; /* 9-bit two's complement */
        notches = (rot + DS_RDP_WHEEL_NOTCH - 1) / DS_RDP_WHEEL_NOTCH;
        if (flags & PTR_FLAGS_WHEEL)
            ds_rdp_wheel(s,
                         neg ? DS_SOURCE_BUTTON_WHEEL_DOWN
                             : DS_SOURCE_BUTTON_WHEEL_UP,
                         notches);
        else /* RFB buttons 6 and 7: QEMU's wheel left and right */
            ds_rdp_wheel(s, neg ? 0x20 : 0x40, notches);
        return TRUE;
    }
    s->last_x = x;
    s->last_y = y;
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (!(flags & map[i].flag))
            continue;
        if (flags & PTR_FLAGS_DOWN)
            s->buttons |= map[i].button;
        else
            s->buttons &= ~map[i].button;
    }
    ds_source_pointer(s->src, x, y, s->buttons);
    return TRUE;
}

static BOOL ds_rdp_on_ext_mouse(rdpInput *input, UINT16 flags, UINT16 x,
                                UINT16 y)
{
    /* Back and forward buttons: QEMU's VNC server has none. Move only. */
    (void)flags;
    return ds_rdp_on_mouse(input, PTR_FLAGS_MOVE, x, y);
}

/*
 * The client's lock keys (sent on connect and whenever its window gets the
 * focus): press each lock key whose state differs from what the guest
 * has. The guest's LEDs cannot be read through QEMU's VNC server as
 * libvncclient speaks it, so what it has is what this session believes:
 * off at the start, toggled by every lock key forwarded.
 */
static BOOL ds_rdp_on_sync(rdpInput *input, UINT32 flags)
{
    struct ds_rdp *s = ds_rdp_of(input->context);
    size_t i;

    if (!s->src || s->view_only)
        return TRUE;
    for (i = 0; i < sizeof(ds_rdp_locks) / sizeof(ds_rdp_locks[0]); i++) {
        if ((flags & ds_rdp_locks[i].sync) == (s->locks & ds_rdp_locks[i].sync))
            continue;
        ds_source_key_scancode(s->src, ds_rdp_locks[i].qnum, 1);
        ds_source_key_scancode(s->src, ds_rdp_locks[i].qnum, 0);
        s->locks ^= ds_rdp_locks[i].sync;
    }
    return TRUE;
}

static BOOL ds_rdp_on_focus(rdpInput *input, UINT16 toggle_states)
{
    (void)input;
    (void)toggle_states;
    return TRUE;
}

static BOOL ds_rdp_on_refresh(rdpContext *context, BYTE count,
                              const RECTANGLE_16 *areas)
{
    struct ds_rdp *s = ds_rdp_of(context);
    int i;

    if (s->gfx)
        ds_rdpgfx_request_idr(s->gfx);
    for (i = 0; i < count && s->dirty; i++)
        ds_rdp_mark(s, areas[i].left, areas[i].top,
                    areas[i].right - areas[i].left + 1, /* inclusive */
                    areas[i].bottom - areas[i].top + 1);
    return TRUE;
}

static BOOL ds_rdp_on_suppress(rdpContext *context, BYTE allow,
                               const RECTANGLE_16 *area)
{
    struct ds_rdp *s = ds_rdp_of(context);

    (void)area;
    s->suppressed = !allow;
    if (allow && s->dirty)
        ds_rdp_mark(s, 0, 0, s->width, s->height);
    return TRUE;
}

/* ------------------------------------------------------------------------
 * Requests to the desktop's agent (through the daemon and the broker) */

/* Sends request with args (consumed) to the daemon; its answer comes back
 * as an "agent-reply" (ds_rdp_chan_input()). 0 or a negative errno. */
static int ds_rdp_ask(struct ds_rdp *s, enum ds_rdp_ask_kind kind,
                      const char *request, json_t *args)
{
    int i, r;

    for (i = 0; i < DS_RDP_ASKS && s->asks[i].kind != DS_RDP_ASK_NONE; i++)
        ;
    if (s->chan_gone || !s->authed || i == DS_RDP_ASKS) {
        json_decref(args);
        return s->chan_gone || !s->authed ? -ENOTCONN : -EBUSY;
    }
    r = ds_chan_send(s->args->chan_fd,
                     json_pack("{s:s, s:I, s:s, s:o}", "op", "agent", "id",
                               (json_int_t)(s->next_ask + 1), "request",
                               request, "args", args ? args : json_object()),
                     -1);
    if (r < 0)
        return r;
    s->asks[i].id = ++s->next_ask;
    s->asks[i].kind = kind;
    return 0;
}

static int ds_rdp_clip_ask(void *arg, enum ds_rdpclip_req req, const char *text)
{
    struct ds_rdp *s = arg;

    if (req == DS_RDPCLIP_GET)
        return ds_rdp_ask(s, DS_RDP_ASK_CLIP_GET, "clipboard-get", NULL);
    return ds_rdp_ask(s, DS_RDP_ASK_CLIP_SET, "clipboard-set",
                      json_pack("{s:s}", "text", text));
}

/* The client's window wants another size: ask the guest for that mode
 * (the screen follows when the guest changes it: ds_rdp_resize()). */
static void ds_rdp_want_size(struct ds_rdp *s, int width, int height)
{
    int r;

    if (s->view_only || (width == s->width && height == s->height))
        return;
    r = ds_rdp_ask(s, DS_RDP_ASK_RESOLUTION, "set-resolution",
                   json_pack("{s:i, s:i}", "width", width, "height", height));
    if (r < 0)
        ds_session_log("session %lld: cannot ask for %dx%d: %s", s->session_id,
                       width, height, strerror(-r));
}

static void ds_rdp_agent_reply(struct ds_rdp *s, const json_t *msg)
{
    json_int_t id = json_integer_value(json_object_get(msg, "id"));
    const char *error = json_is_true(json_object_get(msg, "ok"))
                            ? NULL
                            : json_string_value(json_object_get(msg, "error"));
    json_t *result = json_object_get(msg, "result");
    enum ds_rdp_ask_kind kind = DS_RDP_ASK_NONE;
    int i;

    if (!json_is_true(json_object_get(msg, "ok")) && !error)
        error = "failed";
    for (i = 0; i < DS_RDP_ASKS; i++)
        if (s->asks[i].kind != DS_RDP_ASK_NONE && s->asks[i].id == id) {
            kind = s->asks[i].kind;
            s->asks[i].kind = DS_RDP_ASK_NONE;
        }
    if (kind == DS_RDP_ASK_CLIP_GET || kind == DS_RDP_ASK_CLIP_SET)
        ds_rdpclip_answer(s->clip,
                          kind == DS_RDP_ASK_CLIP_GET ? DS_RDPCLIP_GET
                                                      : DS_RDPCLIP_SET,
                          json_string_value(json_object_get(result, "text")),
                          error, dp_time_now_ms());
    else if (kind == DS_RDP_ASK_RESOLUTION && error)
        ds_session_log("session %lld: the desktop keeps its size: %s",
                       s->session_id, error);
}

/* Messages from the daemon after authentication: agent replies. */
static void ds_rdp_chan_input(struct ds_rdp *s)
{
    int i;

    for (i = 0; i < 16 && !s->chan_gone; i++) {
        json_t *msg = NULL;
        int r = ds_chan_recv(s->args->chan_fd, &msg, NULL);
        const char *op;

        if (r == -EAGAIN)
            return;
        if (r < 0 && r != -EPROTO) {
            s->chan_gone = 1; /* the session goes on without requests */
            return;
        }
        op = json_string_value(json_object_get(msg, "op"));
        if (op && !strcmp(op, "agent-reply"))
            ds_rdp_agent_reply(s, msg);
        json_decref(msg);
    }
}

/* ------------------------------------------------------------------------
 * Connection callbacks */

/* Tells a refused client why before the connection closes (a Set Error
 * Info PDU: clients show "insufficient access privileges", and FreeRDP's
 * does not retry as it would after a bare close). */
static void ds_rdp_refuse(struct ds_rdp *s)
{
    rdpRdp *rdp = s->peer->context->rdp;

    freerdp_set_error_info(rdp, ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES);
    freerdp_send_error_info(rdp);
}

/*
 * The Client Info PDU has arrived (with the credentials, inside TLS) and
 * the server's capabilities are about to go out: authenticate through the
 * daemon, open the desktop, and size the session to it. FALSE
 * disconnects the client.
 */
static BOOL ds_rdp_on_capabilities(freerdp_peer *peer)
{
    struct ds_rdp *s = ds_rdp_of(peer->context);
    rdpSettings *settings = peer->settings;
    const char *reason, *desktop, *user;
    json_t *req, *ans = NULL;
    struct ds_source_fb fb;
    int fd = -1, r;

    if (s->authed) /* a reactivation: the size is set already */
        return TRUE;
    alarm(0); /* the credentials came: the daemon's answer is bounded */
    req = json_pack("{s:s, s:s, s:s, s:s}", "op", "auth-rdp", "user",
                    settings->Username ? settings->Username : "", "password",
                    settings->Password ? settings->Password : "", "peer",
                    s->args->peer);
    if (settings->Password) /* not needed any more in this process */
        memset(settings->Password, 0, strlen(settings->Password));
    r = ds_chan_send(s->args->chan_fd, req, -1);
    if (!r)
        r = ds_chan_recv_wait(s->args->chan_fd, &ans, &fd, DS_RDP_AUTH_MS);
    if (r < 0) {
        snprintf(s->refused, sizeof(s->refused),
                 "the display daemon did not answer (%s)", strerror(-r));
        return FALSE;
    }
    desktop = json_string_value(json_object_get(ans, "desktop"));
    user = json_string_value(json_object_get(ans, "user"));
    if (!json_is_true(json_object_get(ans, "ok")) || fd < 0 || !desktop ||
        !user) {
        reason = json_string_value(json_object_get(ans, "reason"));
        snprintf(s->refused, sizeof(s->refused), "%s",
                 reason ? reason : "refused");
        json_decref(ans);
        if (fd >= 0)
            close(fd);
        ds_rdp_refuse(s);
        return FALSE;
    }
    s->session_id = json_integer_value(json_object_get(ans, "session"));
    s->view_only = json_is_true(json_object_get(ans, "view_only"));
    snprintf(s->desktop, sizeof(s->desktop), "%s", desktop);
    snprintf(s->user, sizeof(s->user), "%s", user);
    json_decref(ans);
    s->authed = 1;
    r = ds_source_open_fd(&s->src, fd, s->desktop, DS_RDP_SOURCE_MS);
    if (r < 0) {
        ds_session_log("session %lld: desktop %s: %s", s->session_id,
                       s->desktop, strerror(-r));
        return FALSE;
    }
    ds_source_framebuffer(s->src, &fb);
    if (ds_rdp_resize_tiles(s, fb.width, fb.height) < 0)
        return FALSE;
    settings->DesktopWidth = (UINT32)fb.width;
    settings->DesktopHeight = (UINT32)fb.height;
    settings->ColorDepth = 32;
    return TRUE;
}

static BOOL ds_rdp_on_post_connect(freerdp_peer *peer)
{
    struct ds_rdp *s = ds_rdp_of(peer->context);

    ds_session_log(
        "session %lld: RDP client %s (%s, build %u) at %ux%u", s->session_id,
        s->args->peer,
        peer->settings->ClientHostname ? peer->settings->ClientHostname : "?",
        peer->settings->ClientBuild, peer->settings->DesktopWidth,
        peer->settings->DesktopHeight);
    return s->src != NULL;
}

static BOOL ds_rdp_on_activate(freerdp_peer *peer)
{
    struct ds_rdp *s = ds_rdp_of(peer->context);

    if (!s->src)
        return FALSE;
    s->activated = 1;
    ds_rdp_hide_pointer(s);
    ds_rdp_mark(s, 0, 0, s->width, s->height);
    return TRUE;
}

/* ------------------------------------------------------------------------
 * Setting up */

/* The first channel message: the TLS certificate and key. */
static int ds_rdp_tls(struct ds_rdp *s, rdpSettings *settings)
{
    json_t *msg = NULL;
    const char *cert, *key;
    int r = ds_chan_recv_wait(s->args->chan_fd, &msg, NULL, DS_RDP_TLS_MS);

    if (r < 0) {
        ds_session_log("no TLS material from the daemon: %s", strerror(-r));
        return r;
    }
    cert = json_string_value(json_object_get(msg, "cert"));
    key = json_string_value(json_object_get(msg, "key"));
    if (!cert || !key ||
        !freerdp_settings_set_string(settings, FreeRDP_CertificateContent,
                                     cert) ||
        !freerdp_settings_set_string(settings, FreeRDP_PrivateKeyContent,
                                     key)) {
        ds_session_log("bad TLS material from the daemon");
        json_decref(msg);
        return -EPROTO;
    }
    json_decref(msg);
    return 0;
}

/* The client answered a dynamic channel's creation (on this thread,
 * with the peer's input): each channel checks whether it is its own. */
static BOOL ds_rdp_on_dvc(void *arg, UINT32 channel_id, INT32 status)
{
    struct ds_rdp *s = arg;

    ds_rdpgfx_created(s->gfx, channel_id, status);
    ds_rdpdisp_created(s->disp, channel_id, status);
    return TRUE;
}

/* The virtual channel manager and the channels on it (opened later, when
 * the client is ready for them). */
static int ds_rdp_channels_new(struct ds_rdp *s)
{
    struct ds_rdpclip_hooks hooks = {.arg = s, .ask = ds_rdp_clip_ask};

    s->vcm = WTSOpenServerA((LPSTR)s->peer->context);
    if (!s->vcm || s->vcm == INVALID_HANDLE_VALUE) {
        ds_session_log("cannot open the virtual channel manager");
        s->vcm = NULL;
        return -EIO;
    }
    WTSVirtualChannelManagerSetDVCCreationCallback(s->vcm, ds_rdp_on_dvc, s);
    if (ds_rdpgfx_new(&s->gfx, s->peer, s->vcm) < 0 ||
        ds_rdpdisp_new(&s->disp, s->vcm, s->peer) < 0 ||
        ds_rdpclip_new(&s->clip, s->vcm, s->peer, &hooks) < 0)
        return -ENOMEM;
    return 0;
}

static void ds_rdp_channels_free(struct ds_rdp *s)
{
    /* the channels (and their threads) before the manager they use */
    ds_rdpgfx_free(s->gfx);
    ds_rdpdisp_free(s->disp);
    ds_rdpclip_free(s->clip);
    if (s->vcm)
        WTSCloseServer(s->vcm);
}

static int ds_rdp_peer(struct ds_rdp *s)
{
    freerdp_peer *peer = freerdp_peer_new(s->args->client_fd);
    rdpSettings *st;

    if (!peer)
        return -ENOMEM;
    s->peer = peer;
    peer->ContextSize = sizeof(struct ds_rdp_context);
    if (!freerdp_peer_context_new(peer))
        return -ENOMEM;
    ((struct ds_rdp_context *)peer->context)->s = s;
    if (ds_rdp_channels_new(s) < 0)
        return -EIO;
    st = peer->settings;
    if (ds_rdp_tls(s, st) < 0)
        return -EPROTO;
    st->RdpSecurity = FALSE;
    st->TlsSecurity = TRUE;
    st->NlaSecurity = FALSE;
    st->ExtSecurity = FALSE;
    st->ColorDepth = 32;
    st->RemoteFxCodec = FALSE;
    st->NSCodec = FALSE;
    st->SupportGraphicsPipeline = TRUE; /* announced in the negotiation */
    st->SurfaceFrameMarkerEnabled = FALSE;
    st->FrameMarkerCommandEnabled = FALSE;
    st->HasExtendedMouseEvent = TRUE;
    st->HasHorizontalWheel = TRUE;
    st->UnicodeInput = TRUE;
    st->SuppressOutput = TRUE;
    st->RefreshRect = TRUE;
    st->DesktopResize = TRUE;
    peer->Capabilities = ds_rdp_on_capabilities;
    peer->PostConnect = ds_rdp_on_post_connect;
    peer->Activate = ds_rdp_on_activate;
    peer->input->KeyboardEvent = ds_rdp_on_key;
    peer->input->UnicodeKeyboardEvent = ds_rdp_on_unicode;
    peer->input->MouseEvent = ds_rdp_on_mouse;
    peer->input->ExtendedMouseEvent = ds_rdp_on_ext_mouse;
    peer->input->SynchronizeEvent = ds_rdp_on_sync;
    peer->input->FocusInEvent = ds_rdp_on_focus;
    peer->update->RefreshRect = ds_rdp_on_refresh;
    peer->update->SuppressOutput = ds_rdp_on_suppress;
    if (!peer->Initialize(peer))
        return -EPROTO;
    s->planar = freerdp_bitmap_planar_context_new(PLANAR_FORMAT_HEADER_RLE |
                                                      PLANAR_FORMAT_HEADER_NA,
                                                  DS_RDP_TILE, DS_RDP_TILE);
    return s->planar ? 0 : -ENOMEM;
}

/* Moves the graphics pipeline along; when it settles (on or off), the
 * whole screen goes out by the path chosen. */
static int ds_rdp_gfx_check(struct ds_rdp *s, long long now)
{
    int st = ds_rdpgfx_check(s->gfx, s->activated && s->src, s->width,
                             s->height, now);

    if (st < 0)
        return st;
    if (st != s->gfx_state && s->dirty)
        ds_rdp_mark(s, 0, 0, s->width, s->height);
    s->gfx_state = st;
    return 0;
}

/* The channel manager and every channel: flushes what is queued for the
 * client, opens display control and the clipboard once the client is
 * ready for them, asks for a new size when the client's window settled.
 * Only the channel manager's failure ends the session. */
static int ds_rdp_channels_check(struct ds_rdp *s)
{
    long long now = dp_time_now_ms();
    int w, h;

    if (!WTSVirtualChannelManagerCheckFileDescriptor(s->vcm))
        return -EIO;
    if (ds_rdp_gfx_check(s, now) < 0)
        return -EIO;
    if (!s->activated || !s->src)
        return 0;
    if (WTSVirtualChannelManagerGetDrdynvcState(s->vcm) ==
            DRDYNVC_STATE_READY &&
        ds_rdpdisp_open(s->disp) == 0 && ds_rdpdisp_due(s->disp, now, &w, &h))
        ds_rdp_want_size(s, w, h);
    if (!s->clip_started && !s->view_only) {
        s->clip_started = 1;
        ds_rdpclip_start(s->clip);
    }
    ds_rdpclip_check(s->clip, now);
    return 0;
}

static int ds_rdp_timeout(struct ds_rdp *s, int more)
{
    int t;

    if (more || s->peer->HasMoreToRead(s->peer))
        return 0;
    if (ds_rdpdisp_pending(s->disp))
        return DS_RDPDISP_SETTLE_MS / 3;
    t = ds_rdpclip_timeout(s->clip, dp_time_now_ms(), 1000);
    if (t < 1000)
        return t;
    if (!s->activated || s->suppressed)
        return 1000;
    if (s->any_dirty)
        return 20; /* held back by the client's socket or acks */
    if (s->gfx_state == DS_RDPGFX_WAIT)
        return 50;
    if (ds_rdpgfx_pending(s->gfx))
        return 100; /* a refresh is due once motion stops */
    return 1000;
}

static const char *ds_rdp_serve(struct ds_rdp *s)
{
    HANDLE ev = WTSVirtualChannelManagerGetEventHandle(s->vcm);
    int more = 0, vfd = ev ? GetEventFileDescriptor(ev) : -1;

    for (;;) {
        struct pollfd p[6];
        int n = 5, src_at = -1;

        if (ds_rdp_stop)
            return "disconnected";
        p[0] = (struct pollfd){.fd = s->args->client_fd, .events = POLLIN};
        p[1] = (struct pollfd){.fd = vfd, .events = POLLIN};
        p[2] = (struct pollfd){.fd = ds_rdpdisp_fd(s->disp), .events = POLLIN};
        p[3] = (struct pollfd){.fd = ds_rdpclip_fd(s->clip), .events = POLLIN};
        /* the daemon's answers, once authenticated (before, the
         * Capabilities callback waits for its answer itself) */
        p[4] = (struct pollfd){
            .fd = s->authed && !s->chan_gone ? s->args->chan_fd : -1,
            .events = POLLIN};
        if (s->src) {
            src_at = n;
            p[n++] =
                (struct pollfd){.fd = ds_source_fd(s->src), .events = POLLIN};
        }
        if (poll(p, (nfds_t)n, ds_rdp_timeout(s, more)) < 0 && errno != EINTR)
            return "poll failed";
        if (!s->peer->CheckFileDescriptor(s->peer))
            return s->src ? "client closed" : "closed before authenticating";
        if (p[4].fd >= 0 && p[4].revents)
            ds_rdp_chan_input(s);
        if (ds_rdp_channels_check(s) < 0)
            return "virtual channels failed";
        if (s->src && (more || (src_at >= 0 && p[src_at].revents))) {
            int f = ds_source_process(s->src);

            if (f < 0)
                return "desktop gone";
            more = (f & DS_SOURCE_MORE) != 0;
            if ((f & DS_SOURCE_RESIZED) && ds_rdp_resize(s) < 0)
                return "cannot resize the client";
        }
        if (s->src) {
            if (ds_rdp_maybe_update(s) < 0)
                return "client closed";
            ds_session_report_stats(s->args, &s->count, dp_time_now_ms());
        }
    }
}

static void ds_rdp_end(struct ds_rdp *s, const char *reason, int refused)
{
    ds_session_tell(s->args,
                    json_pack("{s:s, s:s, s:b, s:I, s:I}", "op", "end",
                              "reason", reason, "refused", refused,
                              "bytes_sent", (json_int_t)s->count.bytes_sent,
                              "frames", (json_int_t)s->count.frames));
    if (!refused)
        ds_session_log("session %lld (%s for %s, rdp client %s) ended: %s, "
                       "%llu bytes in %llu updates",
                       s->session_id, s->desktop, s->user, s->args->peer,
                       reason, (unsigned long long)s->count.bytes_sent,
                       (unsigned long long)s->count.frames);
}

static void ds_rdp_setup_process(void)
{
    struct sigaction sa = {0};

    sa.sa_handler = ds_rdp_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = ds_rdp_on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    winpr_InitializeSSL(WINPR_SSL_INIT_DEFAULT);
    WTSRegisterWtsApiFunctionTable(FreeRDP_InitWtsApi());
}

int ds_rdp_run(const struct ds_session_args *args)
{
    struct ds_rdp s = {.args = args};
    const char *reason;
    int refused;

    ds_rdp_alarm_chan = args->chan_fd;
    ds_rdp_setup_process();
    alarm(DS_RDP_LOGIN_S);
    if (ds_rdp_peer(&s) < 0) {
        snprintf(s.refused, sizeof(s.refused), "cannot start RDP");
        reason = s.refused;
    } else {
        s.count.next_stats_ms =
            dp_time_now_ms() + args->stats_interval * 1000LL;
        reason = ds_rdp_serve(&s);
    }
    refused = !s.src;
    if (refused && s.refused[0])
        reason = s.refused;
    ds_rdp_end(&s, reason, refused);
    ds_rdp_channels_free(&s); /* before the context they use */
    if (s.peer) {
        if (s.peer->context) {
            s.peer->Disconnect(s.peer);
            freerdp_peer_context_free(s.peer);
        }
        freerdp_peer_free(s.peer);
    }
    freerdp_bitmap_planar_context_free(s.planar);
    ds_source_close(s.src);
    free(s.dirty);
    return refused ? 1 : 0;
}
