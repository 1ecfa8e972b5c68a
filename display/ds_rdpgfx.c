/*
 * ds_rdpgfx.c - the RDPGFX pipeline of an RDP session (see ds_rdpgfx.h).
 */
#include "ds_rdpgfx.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <freerdp/channels/wtsvc.h>
#include <freerdp/codec/planar.h>
#include <freerdp/server/rdpgfx.h>
#include <winpr/synch.h>
#include <winpr/wtsapi.h>

#include "dp_time.h"
#include "ds_session.h"

#define DS_RDPGFX_SURFACE 1
#define DS_RDPGFX_TILE    64
#define DS_RDPGFX_RING    32 /* send times kept, by frame id */

struct ds_rdpgfx {
    freerdp_peer *peer;
    HANDLE vcm;
    RdpgfxServerContext *gfx;
    struct ds_h264 *enc;
    BITMAP_PLANAR_CONTEXT *planar;
    enum ds_rdpgfx_state state;
    long long caps_deadline;
    int width, height; /* the surface, 0 before it exists */
    int idr;
    int avc_ok; /* the confirmed caps allow AVC420 (this thread's copy) */
    long long last_damage_ms;
    uint32_t frame_id;
    uint32_t sent; /* frames sent */

    /* shared with FreeRDP's channel thread */
    pthread_mutex_t lock;
    int caps_new;      /* a CapsAdvertise was confirmed: (re)make the surface */
    int avc;           /* the confirmed caps allow AVC420 */
    int refused;       /* the client refused the channel */
    UINT32 channel_id; /* the channel's, once assigned */
    uint32_t acked;    /* frames acknowledged */
    int suspended;     /* the client stopped acknowledging */
    long long sent_ms[DS_RDPGFX_RING];
    int latency[DS_RDPGFX_RING]; /* acknowledgements not yet fed back */
    int nlatency;
};

/* ------------------------------------------------------------------------
 * FreeRDP's channel thread */

/* 10.1's caps data has no flags (FreeRDP sends 0 even when it disables
 * AVC): it allows AVC only when no other 10.x set disables it. */
static int ds_rdpgfx_caps_avc(const RDPGFX_CAPSET *c, int avc_disabled_10)
{
    if (c->version == RDPGFX_CAPVERSION_81)
        return (c->flags & RDPGFX_CAPS_FLAG_AVC420_ENABLED) != 0;
    if (c->version == RDPGFX_CAPVERSION_101)
        return !avc_disabled_10;
    if (c->version >= RDPGFX_CAPVERSION_10)
        return !(c->flags & RDPGFX_CAPS_FLAG_AVC_DISABLED);
    return 0;
}

static int ds_rdpgfx_avc_disabled_10(const RDPGFX_CAPS_ADVERTISE_PDU *adv)
{
    UINT16 i;

    for (i = 0; i < adv->capsSetCount; i++)
        if (adv->capsSets[i].version >= RDPGFX_CAPVERSION_10 &&
            adv->capsSets[i].version != RDPGFX_CAPVERSION_101 &&
            (adv->capsSets[i].flags & RDPGFX_CAPS_FLAG_AVC_DISABLED))
            return 1;
    return 0;
}

/* The highest version allowing AVC420, else the highest version. */
static UINT ds_rdpgfx_on_caps(RdpgfxServerContext *gfx,
                              const RDPGFX_CAPS_ADVERTISE_PDU *adv)
{
    struct ds_rdpgfx *g = gfx->custom;
    const RDPGFX_CAPSET *best = NULL, *best_avc = NULL;
    RDPGFX_CAPSET chosen;
    RDPGFX_CAPS_CONFIRM_PDU confirm = {.capsSet = &chosen};
    int avc_disabled_10 = ds_rdpgfx_avc_disabled_10(adv);
    UINT16 i;
    UINT r;

    for (i = 0; i < adv->capsSetCount; i++) {
        const RDPGFX_CAPSET *c = &adv->capsSets[i];

        if (c->version > RDPGFX_CAPVERSION_107)
            continue;
        if (!best || c->version > best->version)
            best = c;
        if (ds_rdpgfx_caps_avc(c, avc_disabled_10) &&
            (!best_avc || c->version > best_avc->version))
            best_avc = c;
    }
    if (!best)
        return CHANNEL_RC_UNSUPPORTED_VERSION;
    chosen = best_avc ? *best_avc : *best;
    if (!best_avc && chosen.version >= RDPGFX_CAPVERSION_10)
        chosen.flags |= RDPGFX_CAPS_FLAG_AVC_DISABLED;
    r = gfx->CapsConfirm(gfx, &confirm);
    if (r != CHANNEL_RC_OK)
        return r;
    pthread_mutex_lock(&g->lock);
    g->avc = best_avc != NULL;
    g->caps_new = 1;
    pthread_mutex_unlock(&g->lock);
    return CHANNEL_RC_OK;
}

static UINT ds_rdpgfx_on_ack(RdpgfxServerContext *gfx,
                             const RDPGFX_FRAME_ACKNOWLEDGE_PDU *ack)
{
    struct ds_rdpgfx *g = gfx->custom;
    long long now = dp_time_now_ms();

    pthread_mutex_lock(&g->lock);
    g->suspended = ack->queueDepth == SUSPEND_FRAME_ACKNOWLEDGEMENT;
    if (g->acked != g->sent)
        g->acked++;
    if (g->nlatency < DS_RDPGFX_RING)
        g->latency[g->nlatency++] =
            (int)(now - g->sent_ms[ack->frameId % DS_RDPGFX_RING]);
    pthread_mutex_unlock(&g->lock);
    return CHANNEL_RC_OK;
}

static UINT ds_rdpgfx_on_qoe(RdpgfxServerContext *gfx,
                             const RDPGFX_QOE_FRAME_ACKNOWLEDGE_PDU *qoe)
{
    (void)gfx;
    (void)qoe;
    return CHANNEL_RC_OK;
}

/* No cache is used: import nothing the client offers. */
static UINT ds_rdpgfx_on_cache_offer(RdpgfxServerContext *gfx,
                                     const RDPGFX_CACHE_IMPORT_OFFER_PDU *offer)
{
    RDPGFX_CACHE_IMPORT_REPLY_PDU reply = {0};

    (void)offer;
    return gfx->CacheImportReply(gfx, &reply);
}

void ds_rdpgfx_created(struct ds_rdpgfx *g, UINT32 channel_id, INT32 status)
{
    pthread_mutex_lock(&g->lock);
    if (g->gfx && channel_id == g->channel_id && status < 0)
        g->refused = 1;
    pthread_mutex_unlock(&g->lock);
}

static BOOL ds_rdpgfx_on_id(RdpgfxServerContext *gfx, UINT32 channel_id)
{
    struct ds_rdpgfx *g = gfx->custom;

    pthread_mutex_lock(&g->lock);
    g->channel_id = channel_id;
    pthread_mutex_unlock(&g->lock);
    return TRUE;
}

/* ------------------------------------------------------------------------
 * Setting up */

int ds_rdpgfx_new(struct ds_rdpgfx **out, freerdp_peer *peer, HANDLE vcm)
{
    struct ds_rdpgfx *g = calloc(1, sizeof(*g));

    *out = NULL;
    if (!g)
        return -ENOMEM;
    pthread_mutex_init(&g->lock, NULL);
    g->peer = peer;
    g->vcm = vcm;
    *out = g;
    return 0;
}

void ds_rdpgfx_free(struct ds_rdpgfx *g)
{
    if (!g)
        return;
    if (g->gfx) {
        g->gfx->Close(g->gfx);
        rdpgfx_server_context_free(g->gfx);
    }
    ds_h264_free(g->enc);
    freerdp_bitmap_planar_context_free(g->planar);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

const char *ds_rdpgfx_codec(const struct ds_rdpgfx *g)
{
    if (g->state != DS_RDPGFX_ON)
        return NULL;
    return g->enc ? "AVC420" : "planar";
}

static int ds_rdpgfx_off(struct ds_rdpgfx *g, const char *why)
{
    if (g->state != DS_RDPGFX_OFF)
        ds_session_log("graphics pipeline off (%s): bitmap updates", why);
    g->state = DS_RDPGFX_OFF;
    return DS_RDPGFX_OFF;
}

static int ds_rdpgfx_open(struct ds_rdpgfx *g, long long now)
{
    RdpgfxServerContext *gfx = rdpgfx_server_context_new(g->vcm);

    if (!gfx)
        return ds_rdpgfx_off(g, "out of memory");
    gfx->rdpcontext = g->peer->context;
    gfx->custom = g;
    gfx->CapsAdvertise = ds_rdpgfx_on_caps;
    gfx->FrameAcknowledge = ds_rdpgfx_on_ack;
    gfx->QoeFrameAcknowledge = ds_rdpgfx_on_qoe;
    gfx->CacheImportOffer = ds_rdpgfx_on_cache_offer;
    gfx->ChannelIdAssigned = ds_rdpgfx_on_id;
    g->gfx = gfx;
    if (!gfx->Open(gfx))
        return ds_rdpgfx_off(g, "cannot open the channel");
    g->caps_deadline = now + DS_RDPGFX_CAPS_MS;
    return DS_RDPGFX_WAIT;
}

/* The surface: made at the desktop's size, mapped to the one monitor. */
static int ds_rdpgfx_surface(struct ds_rdpgfx *g, int width, int height)
{
    RdpgfxServerContext *gfx = g->gfx;
    MONITOR_DEF mon = {0, 0, width - 1, height - 1, MONITOR_PRIMARY};
    RDPGFX_RESET_GRAPHICS_PDU reset = {.width = (UINT32)width,
                                       .height = (UINT32)height,
                                       .monitorCount = 1,
                                       .monitorDefArray = &mon};
    RDPGFX_CREATE_SURFACE_PDU create = {.surfaceId = DS_RDPGFX_SURFACE,
                                        .width = (UINT16)width,
                                        .height = (UINT16)height,
                                        .pixelFormat =
                                            GFX_PIXEL_FORMAT_XRGB_8888};
    RDPGFX_MAP_SURFACE_TO_OUTPUT_PDU map = {.surfaceId = DS_RDPGFX_SURFACE};
    RDPGFX_DELETE_SURFACE_PDU del = {.surfaceId = DS_RDPGFX_SURFACE};

    if (g->width && gfx->DeleteSurface(gfx, &del) != CHANNEL_RC_OK)
        return -EIO;
    g->width = 0;
    if (gfx->ResetGraphics(gfx, &reset) != CHANNEL_RC_OK ||
        gfx->CreateSurface(gfx, &create) != CHANNEL_RC_OK ||
        gfx->MapSurfaceToOutput(gfx, &map) != CHANNEL_RC_OK)
        return -EIO;
    g->width = width;
    g->height = height;
    g->idr = 1;
    return 0;
}

/* Caps were confirmed, or the desktop's size changed: the codec, then
 * the surface. H.264 4:2:0 needs even sizes: a desktop with an odd one
 * gets planar frames (until its size is even again). */
static int ds_rdpgfx_start(struct ds_rdpgfx *g, int avc, int width, int height)
{
    struct ds_h264_params p = {.width = width, .height = height};
    int r = 0;

    g->avc_ok = avc;
    if (avc && (width % 2 || height % 2)) {
        ds_session_log("graphics pipeline: %dx%d is odd: planar, not AVC420",
                       width, height);
        avc = 0;
    }

    if (avc && !g->enc)
        r = ds_h264_new(&g->enc, &p);
    else if (avc)
        r = g->enc && (width != g->width || height != g->height)
                ? ds_h264_resize(g->enc, width, height)
                : 0;
    if (!avc) {
        ds_h264_free(g->enc);
        g->enc = NULL;
    }
    if (!avc && !g->planar)
        g->planar = freerdp_bitmap_planar_context_new(
            PLANAR_FORMAT_HEADER_RLE | PLANAR_FORMAT_HEADER_NA, DS_RDPGFX_TILE,
            DS_RDPGFX_TILE);
    if (r < 0 || (!avc && !g->planar))
        return -ENOMEM;
    pthread_mutex_lock(&g->lock);
    g->acked = g->sent; /* a reset forgets what was in flight */
    g->suspended = 0;
    pthread_mutex_unlock(&g->lock);
    if (ds_rdpgfx_surface(g, width, height) < 0)
        return -EIO;
    if (g->state != DS_RDPGFX_ON)
        ds_session_log("graphics pipeline: %s at %dx%d",
                       avc ? "AVC420" : "planar", width, height);
    g->state = DS_RDPGFX_ON;
    return 0;
}

/* Before the caps: open the channel once drdynvc is up, give up on a
 * client that refuses it or stays silent. */
static int ds_rdpgfx_wait(struct ds_rdpgfx *g, long long now)
{
    int refused;

    if (!g->gfx) {
        if (!g->peer->settings->SupportGraphicsPipeline)
            return ds_rdpgfx_off(g, "the client has no GFX");
        if (!WTSVirtualChannelManagerIsChannelJoined(g->vcm, "drdynvc"))
            return ds_rdpgfx_off(g, "the client has no drdynvc");
        if (WTSVirtualChannelManagerGetDrdynvcState(g->vcm) !=
            DRDYNVC_STATE_READY) {
            if (!g->caps_deadline)
                g->caps_deadline = now + DS_RDPGFX_CAPS_MS;
            return now > g->caps_deadline
                       ? ds_rdpgfx_off(g, "drdynvc never ready")
                       : DS_RDPGFX_WAIT;
        }
        return ds_rdpgfx_open(g, now);
    }
    pthread_mutex_lock(&g->lock);
    refused = g->refused;
    pthread_mutex_unlock(&g->lock);
    if (refused)
        return ds_rdpgfx_off(g, "the client refused the channel");
    if (now > g->caps_deadline)
        return ds_rdpgfx_off(g, "no caps from the client");
    return DS_RDPGFX_WAIT;
}

int ds_rdpgfx_check(struct ds_rdpgfx *g, int activated, int width, int height,
                    long long now_ms)
{
    int caps_new, avc;

    if (g->state == DS_RDPGFX_OFF || !activated)
        return g->state;
    pthread_mutex_lock(&g->lock);
    caps_new = g->caps_new;
    avc = g->avc;
    g->caps_new = 0;
    pthread_mutex_unlock(&g->lock);
    if (caps_new) {
        if (ds_rdpgfx_start(g, avc, width, height) < 0) {
            ds_session_log("cannot set the graphics surface up");
            return -EIO;
        }
        /* queued behind the CapsConfirm: on its way at once */
        if (!WTSVirtualChannelManagerCheckFileDescriptor(g->vcm))
            return -EIO;
    }
    if (g->state == DS_RDPGFX_WAIT)
        return ds_rdpgfx_wait(g, now_ms);
    return g->state;
}

int ds_rdpgfx_resize(struct ds_rdpgfx *g, int width, int height)
{
    if (g->state != DS_RDPGFX_ON)
        return 0;
    return ds_rdpgfx_start(g, g->avc_ok, width, height);
}

int ds_rdpgfx_pending(const struct ds_rdpgfx *g)
{
    if (g->state != DS_RDPGFX_ON)
        return 0;
    return g->idr || (g->enc && ds_h264_lossy(g->enc));
}

void ds_rdpgfx_request_idr(struct ds_rdpgfx *g)
{
    g->idr = 1;
}

/* ------------------------------------------------------------------------
 * Frames */

/* Feeds acknowledgement latencies to the encoder; returns frames in
 * flight (0 when the client suspended acknowledgements). */
static int ds_rdpgfx_acks(struct ds_rdpgfx *g)
{
    int lat[DS_RDPGFX_RING], n, i, in_flight;

    pthread_mutex_lock(&g->lock);
    n = g->nlatency;
    memcpy(lat, g->latency, sizeof(int) * (size_t)n);
    g->nlatency = 0;
    in_flight = g->suspended ? 0 : (int)(g->sent - g->acked);
    pthread_mutex_unlock(&g->lock);
    for (i = 0; i < n && g->enc; i++)
        ds_h264_feedback(g->enc, lat[i] < 0 ? 0 : lat[i], in_flight);
    return in_flight;
}

int ds_rdpgfx_ready(struct ds_rdpgfx *g)
{
    if (g->state != DS_RDPGFX_ON)
        return 0;
    return ds_rdpgfx_acks(g) < DS_RDPGFX_IN_FLIGHT;
}

static UINT32 ds_rdpgfx_next_frame(struct ds_rdpgfx *g, long long now)
{
    UINT32 id = ++g->frame_id;

    pthread_mutex_lock(&g->lock);
    g->sent_ms[id % DS_RDPGFX_RING] = now;
    g->sent++;
    pthread_mutex_unlock(&g->lock);
    return id;
}

static long ds_rdpgfx_send_avc(struct ds_rdpgfx *g,
                               const struct ds_source_fb *fb,
                               const struct ds_h264_rect *damage, int ndamage,
                               unsigned flags, long long now)
{
    struct ds_h264_frame f;
    RECTANGLE_16 rects[DS_H264_MAX_RECTS];
    RDPGFX_H264_QUANT_QUALITY qq[DS_H264_MAX_RECTS];
    RDPGFX_AVC420_BITMAP_STREAM avc = {0};
    RDPGFX_SURFACE_COMMAND cmd = {0};
    RDPGFX_START_FRAME_PDU start = {0};
    RDPGFX_END_FRAME_PDU end = {0};
    int r, i;

    if (g->idr)
        flags |= DS_H264_IDR;
    r = ds_h264_encode(g->enc, (const uint8_t *)fb->pixels, fb->stride, damage,
                       ndamage, flags, &f);
    if (r <= 0)
        return r < 0 ? -EIO : 0;
    g->idr = 0;
    for (i = 0; i < f.nregions; i++) {
        const struct ds_h264_region *rg = &f.regions[i];

        rects[i] = (RECTANGLE_16){(UINT16)rg->rect.x, (UINT16)rg->rect.y,
                                  (UINT16)(rg->rect.x + rg->rect.w),
                                  (UINT16)(rg->rect.y + rg->rect.h)};
        qq[i] = (RDPGFX_H264_QUANT_QUALITY){.qp = (BYTE)rg->qp,
                                            .qualityVal = (BYTE)rg->quality};
    }
    avc.meta = (RDPGFX_H264_METABLOCK){(UINT32)f.nregions, rects, qq};
    avc.data = (BYTE *)f.data;
    avc.length = (UINT32)f.size;
    cmd = (RDPGFX_SURFACE_COMMAND){.surfaceId = DS_RDPGFX_SURFACE,
                                   .codecId = RDPGFX_CODECID_AVC420,
                                   .format = PIXEL_FORMAT_BGRX32,
                                   .right = (UINT32)g->width,
                                   .bottom = (UINT32)g->height,
                                   .extra = &avc};
    start.frameId = end.frameId = ds_rdpgfx_next_frame(g, now);
    if (g->gfx->SurfaceFrameCommand(g->gfx, &cmd, &start, &end) !=
        CHANNEL_RC_OK)
        return -EIO;
    return (long)f.size;
}

/* One planar surface command of a tile. FreeRDP's planar encoder writes
 * rows bottom-up, as bitmap updates want them; GFX surface commands are
 * decoded top-down, so the tile goes in upside down. */
static long ds_rdpgfx_planar_tile(struct ds_rdpgfx *g,
                                  const struct ds_source_fb *fb, int x, int y,
                                  int w, int h)
{
    uint32_t tile[DS_RDPGFX_TILE * DS_RDPGFX_TILE];
    RDPGFX_SURFACE_COMMAND cmd;
    UINT32 size = 0;
    BYTE *data;
    UINT r;
    int row;

    for (row = 0; row < h; row++)
        memcpy(&tile[(h - 1 - row) * w],
               (const BYTE *)fb->pixels +
                   (size_t)(y + row) * (size_t)fb->stride + (size_t)x * 4,
               (size_t)w * 4);
    data = freerdp_bitmap_compress_planar(
        g->planar, (const BYTE *)tile, PIXEL_FORMAT_BGRX32, (UINT32)w,
        (UINT32)h, (UINT32)w * 4, NULL, &size);
    if (!data)
        return -ENOMEM;
    cmd = (RDPGFX_SURFACE_COMMAND){.surfaceId = DS_RDPGFX_SURFACE,
                                   .codecId = RDPGFX_CODECID_PLANAR,
                                   .format = PIXEL_FORMAT_BGRX32,
                                   .left = (UINT32)x,
                                   .top = (UINT32)y,
                                   .right = (UINT32)(x + w),
                                   .bottom = (UINT32)(y + h),
                                   .length = size,
                                   .data = data};
    r = g->gfx->SurfaceCommand(g->gfx, &cmd);
    free(data);
    return r == CHANNEL_RC_OK ? (long)size : -EIO;
}

static long ds_rdpgfx_send_planar(struct ds_rdpgfx *g,
                                  const struct ds_source_fb *fb,
                                  const struct ds_h264_rect *damage,
                                  int ndamage, long long now)
{
    RDPGFX_START_FRAME_PDU start = {0};
    RDPGFX_END_FRAME_PDU end = {0};
    struct ds_h264_rect all;
    long total = 0, n;
    int i, x, y;

    if (g->idr) {
        all = (struct ds_h264_rect){0, 0, g->width, g->height};
        damage = &all;
        ndamage = 1;
        g->idr = 0;
    }
    if (ndamage <= 0)
        return 0;
    start.frameId = end.frameId = ds_rdpgfx_next_frame(g, now);
    if (g->gfx->StartFrame(g->gfx, &start) != CHANNEL_RC_OK)
        return -EIO;
    for (i = 0; i < ndamage; i++) {
        const struct ds_h264_rect *d = &damage[i];

        for (y = d->y; y < d->y + d->h; y += DS_RDPGFX_TILE)
            for (x = d->x; x < d->x + d->w; x += DS_RDPGFX_TILE) {
                int w = d->x + d->w - x, h = d->y + d->h - y;

                n = ds_rdpgfx_planar_tile(
                    g, fb, x, y, w < DS_RDPGFX_TILE ? w : DS_RDPGFX_TILE,
                    h < DS_RDPGFX_TILE ? h : DS_RDPGFX_TILE);
                if (n < 0)
                    return n;
                total += n;
            }
    }
    if (g->gfx->EndFrame(g->gfx, &end) != CHANNEL_RC_OK)
        return -EIO;
    return total;
}

long ds_rdpgfx_send(struct ds_rdpgfx *g, const struct ds_source_fb *fb,
                    const struct ds_h264_rect *damage, int ndamage,
                    long long now_ms)
{
    if (g->state != DS_RDPGFX_ON || fb->width != g->width ||
        fb->height != g->height)
        return 0;
    if (ndamage > 0)
        g->last_damage_ms = now_ms;
    if (g->enc)
        return ds_rdpgfx_send_avc(g, fb, damage, ndamage, 0, now_ms);
    return ds_rdpgfx_send_planar(g, fb, damage, ndamage, now_ms);
}

long ds_rdpgfx_idle(struct ds_rdpgfx *g, const struct ds_source_fb *fb,
                    long long now_ms)
{
    if (g->state != DS_RDPGFX_ON || fb->width != g->width ||
        fb->height != g->height)
        return 0;
    if (!g->enc)
        return g->idr ? ds_rdpgfx_send_planar(g, fb, NULL, 0, now_ms) : 0;
    if (g->idr)
        return ds_rdpgfx_send_avc(g, fb, NULL, 0, 0, now_ms);
    if (now_ms - g->last_damage_ms < DS_RDPGFX_STILL_MS ||
        !ds_h264_lossy(g->enc))
        return 0;
    return ds_rdpgfx_send_avc(g, fb, NULL, 0, DS_H264_REFRESH, now_ms);
}
