/*
 * tsrdp.c - the headless RDP test client (see tsrdp.h).
 */
#include "tsrdp.h"

#include <arpa/inet.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <freerdp/addin.h>
#include <freerdp/client/channels.h>
#include <freerdp/client/cmdline.h>
#include <freerdp/client/rdpgfx.h>
#include <freerdp/event.h>
#include <freerdp/freerdp.h>
#include <freerdp/gdi/gdi.h>
#include <freerdp/gdi/gfx.h>
#include <freerdp/input.h>
#include <freerdp/settings.h>
#include <winpr/synch.h>

struct tsrdp {
    freerdp *instance;
    uint32_t *copy; /* the screen with the X byte cleared */
    size_t copy_size;
    enum tsrdp_graphics graphics;
    /* set on FreeRDP's drdynvc thread */
    pcRdpgfxSurfaceCommand gdi_surface_command;
    int gfx_connected, avc420, planar, other;
    pcRdpgfxEndFrame gdi_end_frame;
    int frames;
    int paints; /* on the thread that pumps */
    int fd;     /* the TCP connection, for tsrdp_traffic(); -1 unknown */
};

/* FreeRDP allocates ContextSize bytes: ours begins with its context. */
struct tsrdp_context {
    rdpContext base;
    struct tsrdp *c;
};

static struct tsrdp *tsrdp_of(rdpContext *context)
{
    return ((struct tsrdp_context *)context)->c;
}

/* Counts surface commands by codec, then lets the GDI decode them. */
static UINT tsrdp_surface_command(RdpgfxClientContext *gfx,
                                  const RDPGFX_SURFACE_COMMAND *cmd)
{
    rdpGdi *gdi = gfx->custom;
    struct tsrdp *c = tsrdp_of(gdi->context);
    int *n = cmd->codecId == RDPGFX_CODECID_AVC420   ? &c->avc420
             : cmd->codecId == RDPGFX_CODECID_PLANAR ? &c->planar
                                                     : &c->other;

    __atomic_add_fetch(n, 1, __ATOMIC_RELAXED);
    return c->gdi_surface_command(gfx, cmd);
}

/* Counts frames for tsrdp_traffic(), then lets the GDI show them. */
static UINT tsrdp_end_frame(RdpgfxClientContext *gfx,
                            const RDPGFX_END_FRAME_PDU *end)
{
    rdpGdi *gdi = gfx->custom;
    struct tsrdp *c = tsrdp_of(gdi->context);

    __atomic_add_fetch(&c->frames, 1, __ATOMIC_RELAXED);
    return c->gdi_end_frame(gfx, end);
}

static void tsrdp_channel_connected(void *context, ChannelConnectedEventArgs *e)
{
    rdpContext *ctx = context;
    struct tsrdp *c = tsrdp_of(ctx);
    RdpgfxClientContext *gfx = e->pInterface;

    if (strcmp(e->name, RDPGFX_DVC_CHANNEL_NAME) != 0)
        return;
    if (!gdi_graphics_pipeline_init(ctx->gdi, gfx))
        return;
    c->gdi_surface_command = gfx->SurfaceCommand;
    gfx->SurfaceCommand = tsrdp_surface_command;
    c->gdi_end_frame = gfx->EndFrame;
    if (c->gdi_end_frame)
        gfx->EndFrame = tsrdp_end_frame;
    __atomic_store_n(&c->gfx_connected, 1, __ATOMIC_RELEASE);
}

static void tsrdp_channel_disconnected(void *context,
                                       ChannelDisconnectedEventArgs *e)
{
    rdpContext *ctx = context;

    if (strcmp(e->name, RDPGFX_DVC_CHANNEL_NAME) == 0)
        gdi_graphics_pipeline_uninit(ctx->gdi, e->pInterface);
}

void tsrdp_gfx_stats(struct tsrdp *c, struct tsrdp_gfx_stats *out)
{
    out->connected = __atomic_load_n(&c->gfx_connected, __ATOMIC_ACQUIRE);
    out->avc420 = __atomic_load_n(&c->avc420, __ATOMIC_RELAXED);
    out->planar = __atomic_load_n(&c->planar, __ATOMIC_RELAXED);
    out->other = __atomic_load_n(&c->other, __ATOMIC_RELAXED);
}

static BOOL tsrdp_resize(rdpContext *context)
{
    return gdi_resize(context->gdi, context->settings->DesktopWidth,
                      context->settings->DesktopHeight);
}

/* Headless: pointer shapes and positions are not shown (the screen the
 * test reads is the desktop's own). */
static BOOL tsrdp_pointer_system(rdpContext *context,
                                 const POINTER_SYSTEM_UPDATE *p)
{
    (void)context;
    (void)p;
    return TRUE;
}

static BOOL tsrdp_pointer_position(rdpContext *context,
                                   const POINTER_POSITION_UPDATE *p)
{
    (void)context;
    (void)p;
    return TRUE;
}

/* FreeRDP fails an update whose EndPaint is missing; the software GDI
 * has drawn into its buffer by then, and nothing needs flushing. */
static BOOL tsrdp_begin_paint(rdpContext *context)
{
    context->gdi->primary->hdc->hwnd->invalid->null = TRUE;
    return TRUE;
}

static BOOL tsrdp_end_paint(rdpContext *context)
{
    tsrdp_of(context)->paints++;
    return TRUE;
}

static BOOL tsrdp_post_connect(freerdp *instance)
{
    if (!gdi_init(instance, PIXEL_FORMAT_BGRX32))
        return FALSE;
    instance->update->DesktopResize = tsrdp_resize;
    instance->update->BeginPaint = tsrdp_begin_paint;
    instance->update->EndPaint = tsrdp_end_paint;
    instance->update->pointer->PointerSystem = tsrdp_pointer_system;
    instance->update->pointer->PointerPosition = tsrdp_pointer_position;
    return TRUE;
}

/* With GFX, the channels drdynvc and rdpgfx (built into
 * libfreerdp-client2) load as xfreerdp's do. */
static BOOL tsrdp_pre_connect(freerdp *instance)
{
    rdpContext *ctx = instance->context;

    if (tsrdp_of(ctx)->graphics == TSRDP_BITMAP)
        return TRUE;
    /* what freerdp_client_context_new() does: find the channels built
     * into libfreerdp-client2 */
    freerdp_register_addin_provider(freerdp_channels_load_static_addin_entry,
                                    0);
    PubSub_SubscribeChannelConnected(ctx->pubSub, tsrdp_channel_connected);
    PubSub_SubscribeChannelDisconnected(ctx->pubSub,
                                        tsrdp_channel_disconnected);
    return freerdp_client_load_addins(ctx->channels, instance->settings);
}

/* Sockets open now: bit fd of set[fd / 64] (descriptors below 1024). */
static void tsrdp_sockets(uint64_t set[16])
{
    struct stat st;

    for (int fd = 0; fd < 1024; fd++)
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
            set[fd / 64] |= 1ull << (fd % 64);
}

/* The TCP socket to port that was not open before connecting, or -1. */
static int tsrdp_find_fd(const uint64_t before[16], int port)
{
    uint64_t now[16] = {0};

    tsrdp_sockets(now);
    for (int fd = 0; fd < 1024; fd++) {
        struct sockaddr_in a;
        socklen_t len = sizeof(a);

        if (!(now[fd / 64] & ~before[fd / 64] & (1ull << (fd % 64))))
            continue;
        if (getpeername(fd, (struct sockaddr *)&a, &len) == 0 &&
            a.sin_family == AF_INET && ntohs(a.sin_port) == port)
            return fd;
    }
    return -1;
}

void tsrdp_traffic(struct tsrdp *c, struct tsrdp_traffic *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    memset(&ti, 0, sizeof(ti));
    out->bytes = -1;
    if (c->fd >= 0 &&
        getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
        len >= offsetof(struct tcp_info, tcpi_bytes_received) +
                   sizeof(ti.tcpi_bytes_received))
        out->bytes = (long long)ti.tcpi_bytes_received;
    out->updates = c->graphics == TSRDP_BITMAP
                       ? c->paints
                       : __atomic_load_n(&c->frames, __ATOMIC_RELAXED);
}

int tsrdp_connect(struct tsrdp **out, int port, const char *user,
                  const char *password, char *why, size_t why_size)
{
    return tsrdp_connect_gfx(out, port, user, password, TSRDP_BITMAP, why,
                             why_size);
}

int tsrdp_connect_gfx(struct tsrdp **out, int port, const char *user,
                      const char *password, enum tsrdp_graphics g, char *why,
                      size_t why_size)
{
    struct tsrdp *c = calloc(1, sizeof(*c));
    uint64_t sockets_before[16] = {0};
    rdpSettings *st;

    *out = NULL;
    if (!c || !(c->instance = freerdp_new())) {
        snprintf(why, why_size, "out of memory");
        free(c);
        return -1;
    }
    c->graphics = g;
    c->fd = -1;
    c->instance->ContextSize = sizeof(struct tsrdp_context);
    c->instance->PreConnect = tsrdp_pre_connect;
    c->instance->PostConnect = tsrdp_post_connect;
    if (!freerdp_context_new(c->instance)) {
        snprintf(why, why_size, "freerdp_context_new failed");
        freerdp_free(c->instance);
        free(c);
        return -1;
    }
    ((struct tsrdp_context *)c->instance->context)->c = c;
    st = c->instance->settings;
    freerdp_settings_set_string(st, FreeRDP_ServerHostname, "127.0.0.1");
    st->ServerPort = (UINT32)port;
    freerdp_settings_set_string(st, FreeRDP_Username, user);
    if (password)
        freerdp_settings_set_string(st, FreeRDP_Password, password);
    st->AutoLogonEnabled = TRUE;
    st->IgnoreCertificate = TRUE;
    st->RdpSecurity = FALSE;
    st->TlsSecurity = TRUE;
    st->NlaSecurity = FALSE;
    st->ExtSecurity = FALSE;
    st->SoftwareGdi = TRUE;
    st->ColorDepth = 32;
    st->DesktopWidth = 1024;
    st->DesktopHeight = 768;
    st->SupportGraphicsPipeline = g != TSRDP_BITMAP;
    st->GfxH264 = g == TSRDP_GFX_AVC420;
    st->GfxAVC444 = FALSE;
    st->GfxAVC444v2 = FALSE;
    st->GfxProgressive = FALSE;
    /* only drdynvc and rdpgfx: nothing asks for rdpdr (not built) */
    st->NetworkAutoDetect = FALSE;
    st->SupportHeartbeatPdu = FALSE;
    st->SupportMultitransport = FALSE;
    st->DeviceRedirection = FALSE;
    st->RedirectClipboard = FALSE;
    st->AudioPlayback = FALSE;
    st->RemoteFxCodec = FALSE;
    st->NSCodec = FALSE;
    st->DesktopResize = TRUE;
    st->TcpConnectTimeout = 10000;
    tsrdp_sockets(sockets_before);
    if (!freerdp_connect(c->instance)) {
        UINT32 e = freerdp_get_last_error(c->instance->context);

        snprintf(why, why_size, "%s (0x%08x)",
                 freerdp_get_last_error_name(e) ? freerdp_get_last_error_name(e)
                                                : "connect failed",
                 e);
        tsrdp_close(c);
        return -1;
    }
    c->fd = tsrdp_find_fd(sockets_before, port);
    *out = c;
    return 0;
}

void tsrdp_close(struct tsrdp *c)
{
    if (!c)
        return;
    if (c->instance) {
        freerdp_disconnect(c->instance);
        if (c->instance->context && c->instance->context->gdi)
            gdi_free(c->instance);
        freerdp_context_free(c->instance);
        freerdp_free(c->instance);
    }
    free(c->copy);
    free(c);
}

int tsrdp_pump(struct tsrdp *c, int ms)
{
    HANDLE h[64];
    DWORD n = freerdp_get_event_handles(c->instance->context, h, 64);

    if (n == 0 || freerdp_shall_disconnect(c->instance))
        return -1;
    WaitForMultipleObjects(n, h, FALSE, (DWORD)ms);
    if (!freerdp_check_event_handles(c->instance->context) ||
        freerdp_shall_disconnect(c->instance))
        return -1;
    return 0;
}

const uint32_t *tsrdp_pixels(struct tsrdp *c, int *width, int *height,
                             int *stride)
{
    rdpGdi *gdi = c->instance->context->gdi;
    size_t w = (size_t)gdi->width, h = (size_t)gdi->height, n = w * h, x, y;

    /* GDI fills the X byte with 0xff; tests compare 0x00RRGGBB. */
    if (n > c->copy_size) {
        uint32_t *p = realloc(c->copy, n * 4);

        if (!p)
            return NULL;
        c->copy = p;
        c->copy_size = n;
    }
    for (y = 0; y < h; y++) {
        const uint32_t *row =
            (const uint32_t *)(gdi->primary_buffer + y * gdi->stride);

        for (x = 0; x < w; x++)
            c->copy[y * w + x] = row[x] & 0x00ffffff;
    }
    *width = (int)gdi->width;
    *height = (int)gdi->height;
    *stride = (int)gdi->width * 4;
    return c->copy;
}

int tsrdp_key(struct tsrdp *c, unsigned scancode, int extended, int down)
{
    UINT16 flags = (UINT16)((down ? KBD_FLAGS_DOWN : KBD_FLAGS_RELEASE) |
                            (extended ? KBD_FLAGS_EXTENDED : 0));

    return freerdp_input_send_keyboard_event(c->instance->input, flags,
                                             (UINT16)scancode)
               ? 0
               : -1;
}

int tsrdp_sync(struct tsrdp *c, unsigned locks)
{
    return freerdp_input_send_synchronize_event(c->instance->input,
                                                (UINT32)locks)
               ? 0
               : -1;
}

int tsrdp_unicode(struct tsrdp *c, unsigned codepoint)
{
    rdpInput *in = c->instance->input;

    return freerdp_input_send_unicode_keyboard_event(in, 0,
                                                     (UINT16)codepoint) &&
                   freerdp_input_send_unicode_keyboard_event(
                       in, KBD_FLAGS_RELEASE, (UINT16)codepoint)
               ? 0
               : -1;
}

int tsrdp_mouse(struct tsrdp *c, int x, int y, int button, int down)
{
    static const UINT16 flag[] = {0, PTR_FLAGS_BUTTON1, PTR_FLAGS_BUTTON2,
                                  PTR_FLAGS_BUTTON3};
    UINT16 f = PTR_FLAGS_MOVE;

    if (button < 0 || button > 3)
        return -1;
    if (button)
        f = (UINT16)(flag[button] | (down ? PTR_FLAGS_DOWN : 0));
    return freerdp_input_send_mouse_event(c->instance->input, f, (UINT16)x,
                                          (UINT16)y)
               ? 0
               : -1;
}
