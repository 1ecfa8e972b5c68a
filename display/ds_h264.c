/*
 * ds_h264.c - the H.264 (AVC420) encoder of one RDPGFX surface: x264 for
 * the coding, FreeRDP's primitives for BGRX -> I420. See ds_h264.h.
 *
 * Colour conversion: FreeRDP's decoder turns YUV into RGB with a
 * full-range BT.709 matrix and ignores the stream's VUI, so the encoder
 * must convert with the same matrix. The libyuv in Debian 12 (2023-01)
 * converts RGB to YUV only with BT.601 (ARGBToI420: limited range,
 * ARGBToJ420: full range); its BT.709 constants exist only for YUV -> RGB.
 * Decoded through FreeRDP, J420 is off by up to 41 levels on saturated
 * colours and I420 by up to 54 (tests/unit/test_ds_h264.c measures it).
 * FreeRDP's RGBToYUV420_8u_P3AC4R is the inverse of its decoder's matrix
 * (the conversion FreeRDP's own server encodes with), off by at most ~5,
 * and takes an SSSE3 path when the width and the stride are multiples of
 * 16 and the pixels 16-byte aligned (every common desktop width with a
 * malloc'd framebuffer; other widths take its plain C path, ~5x slower):
 * ~0.5 ms for 1920x1080 here, about what ARGBToJ420 takes
 * (bench/bench_h264.c).
 *
 * Rate control: CRF, without a VBV cap. CRF spends fewer bits on busy
 * frames (video, scrolling), where the eye sees less, and keeps the QP
 * steady on still content; constant QP would not tell the two apart. A
 * VBV cap was tried and dropped: it changes the QP row by row inside a
 * frame, so a refresh frame (a forced QP, x264_picture_t.i_qpplus1) came
 * out as blurry as the frames before it (measured: 27.1 -> 27.2 dB on a
 * text page), and the QP told to the client in the metablock would be
 * wrong. Bandwidth is bounded by the session instead: it keeps at most a
 * few frames unacknowledged, so a slow link lowers the frame rate, and it
 * reports acknowledgement latency to ds_h264_feedback(), which lowers the
 * quality level (a higher CRF: +6 roughly halves the bytes).
 */
#include "ds_h264.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <freerdp/codec/color.h>
#include <freerdp/primitives.h>
#include <x264.h>

/* Acknowledgements after which the path's round-trip estimate may grow
 * by 1 ms (see ds_h264_feedback()). */
#define DS_H264_BASE_CREEP_ACKS 16

/* Latencies above this are taken as this (ms): keeps the sums small. */
#define DS_H264_MAX_LATENCY_MS 60000

struct ds_h264 {
    struct ds_h264_params p; /* defaults filled in; p.preset -> preset */
    char preset[32];
    primitives_t *prims;

    x264_t *x264;
    int width, height;
    uint8_t *yuv; /* I420, the last frame converted: Y, then U, then V */
    uint8_t *plane[3];
    int stride[3];
    int64_t pts;
    int idr_due; /* the next frame must be an IDR */

    /* What was sent above refresh_qp + DS_H264_LOSSY_MARGIN since its
     * last refresh. */
    struct ds_h264_rect lossy[DS_H264_MAX_RECTS];
    int nlossy;

    /* Quality control (ds_h264_feedback()). */
    int level;
    unsigned acks;
    int base_ms, base_age; /* the path's round trip, estimated */
    int queue_ms;          /* smoothed latency above it */
    int hold, clear_run;
};

/* ------------------------------------------------------------------------
 * Rectangles */

static int rect_empty(const struct ds_h264_rect *r)
{
    return r->w <= 0 || r->h <= 0;
}

static long long rect_area(const struct ds_h264_rect *r)
{
    return (long long)r->w * r->h;
}

static int rect_contains(const struct ds_h264_rect *a,
                         const struct ds_h264_rect *b)
{
    return b->x >= a->x && b->y >= a->y && b->x + b->w <= a->x + a->w &&
           b->y + b->h <= a->y + a->h;
}

static struct ds_h264_rect rect_bbox(const struct ds_h264_rect *a,
                                     const struct ds_h264_rect *b)
{
    int x0 = a->x < b->x ? a->x : b->x;
    int y0 = a->y < b->y ? a->y : b->y;
    int x1 = a->x + a->w > b->x + b->w ? a->x + a->w : b->x + b->w;
    int y1 = a->y + a->h > b->y + b->h ? a->y + a->h : b->y + b->h;

    return (struct ds_h264_rect){x0, y0, x1 - x0, y1 - y0};
}

/* r cut to the w x h surface (empty when it lies outside). Computed in
 * long long: a caller's rectangle may be anything. */
static struct ds_h264_rect rect_clip(const struct ds_h264_rect *r, int w, int h)
{
    long long x0 = r->x, y0 = r->y;
    long long x1 = x0 + r->w, y1 = y0 + r->h;

    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > w ? w : x1;
    y1 = y1 > h ? h : y1;
    if (x1 <= x0 || y1 <= y0)
        return (struct ds_h264_rect){0, 0, 0, 0};
    return (struct ds_h264_rect){(int)x0, (int)y0, (int)(x1 - x0),
                                 (int)(y1 - y0)};
}

/*
 * Adds r (not empty) to list (*n rectangles, room for DS_H264_MAX_RECTS),
 * which keeps covering every pixel added: r is dropped when one rectangle
 * holds it, rectangles it holds go, and a full list merges the two
 * rectangles whose bounding box adds the fewest pixels. Merging overshoots
 * a little (the client shows a few unchanged pixels again) but keeps the
 * frame's region list bounded however the damage comes.
 */
static void rects_add(struct ds_h264_rect *list, int *n, struct ds_h264_rect r)
{
    struct ds_h264_rect all[DS_H264_MAX_RECTS + 1];
    long long best = -1;
    int m = 0, bi = 0, bj = 1;

    for (int i = 0; i < *n; i++)
        if (rect_contains(&list[i], &r))
            return;
    for (int i = 0; i < *n; i++)
        if (!rect_contains(&r, &list[i]))
            all[m++] = list[i];
    all[m++] = r;
    if (m > DS_H264_MAX_RECTS) {
        for (int i = 0; i < m; i++)
            for (int j = i + 1; j < m; j++) {
                struct ds_h264_rect b = rect_bbox(&all[i], &all[j]);
                long long waste =
                    rect_area(&b) - rect_area(&all[i]) - rect_area(&all[j]);
                if (best < 0 || waste < best) {
                    best = waste;
                    bi = i;
                    bj = j;
                }
            }
        all[bi] = rect_bbox(&all[bi], &all[bj]);
        all[bj] = all[--m];
    }
    memcpy(list, all, (size_t)m * sizeof(*list));
    *n = m;
}

/* ------------------------------------------------------------------------
 * x264 */

/* x264's messages (errors only: i_log_level) to stderr, prefixed. */
static void h264_x264_log(void *priv, int level, const char *fmt, va_list ap)
{
    (void)priv;
    (void)level;
    fputs("ds_h264: x264: ", stderr);
    vfprintf(stderr, fmt, ap);
}

static int h264_level_crf(const struct ds_h264 *enc, int level)
{
    int crf = enc->p.crf + level * DS_H264_LEVEL_CRF_STEP;

    return crf > 51 ? 51 : crf;
}

/* The x264 settings for a width x height surface at the current level. */
static int h264_x264_params(const struct ds_h264 *enc, int width, int height,
                            x264_param_t *xp)
{
    /* zerolatency: no B-frames, no lookahead, no frame threads: each
     * picture comes out of the call that took it in. */
    if (x264_param_default_preset(xp, enc->preset, "zerolatency") < 0)
        return -EINVAL;
    /* One thread: each RDP session is a process of its own, so sessions
     * spread over the cores already; x264's threads would add a frame of
     * latency each (frame threads) or cost compression (slices) and make
     * one busy session slow down the others on the machine. */
    xp->i_threads = 1;
    xp->b_sliced_threads = 0;
    xp->i_width = width; /* x264 pads to 16 and crops in the SPS */
    xp->i_height = height;
    xp->i_csp = X264_CSP_I420;
    xp->i_fps_num = (uint32_t)enc->p.fps;
    xp->i_fps_den = 1;
    /* IDRs only when asked: every IDR is a burst of bits, and a desktop
     * has no scene cuts worth one. */
    xp->i_keyint_max = X264_KEYINT_MAX_INFINITE;
    xp->i_scenecut_threshold = 0;
    xp->i_bframe = 0;
    xp->b_annexb = 1;
    xp->b_repeat_headers = 1;
    xp->vui.b_fullrange = 1;
    xp->vui.i_colorprim = 1; /* BT.709, H.264 Table E-3 */
    xp->vui.i_transfer = 1;
    xp->vui.i_colmatrix = 1;
    xp->rc.i_rc_method = X264_RC_CRF;
    xp->rc.f_rf_constant = (float)h264_level_crf(enc, enc->level);
    xp->i_log_level = X264_LOG_ERROR;
    xp->pf_log = h264_x264_log;
    if (x264_param_apply_profile(xp, "main") < 0)
        return -EINVAL;
    return 0;
}

/* A new x264 encoder and I420 buffer for width x height into the out
 * arguments; nothing of enc changes. */
static int h264_open(const struct ds_h264 *enc, int width, int height,
                     x264_t **x264, uint8_t **yuv, int stride[3])
{
    x264_param_t xp;
    size_t ysize, csize;
    int rc;

    if (width < DS_H264_MIN_DIM || height < DS_H264_MIN_DIM ||
        width > DS_H264_MAX_DIM || height > DS_H264_MAX_DIM || width % 2 ||
        height % 2) {
        fprintf(stderr,
                "ds_h264: surface %dx%d: want even sizes from %d to %d\n",
                width, height, DS_H264_MIN_DIM, DS_H264_MAX_DIM);
        return -EINVAL;
    }
    rc = h264_x264_params(enc, width, height, &xp);
    if (rc < 0)
        return rc;
    /* Rows 64-byte aligned for x264's and FreeRDP's SIMD loads. */
    stride[0] = (width + 63) & ~63;
    stride[1] = stride[2] = ((width / 2) + 63) & ~63;
    ysize = (size_t)stride[0] * (size_t)height;
    csize = (size_t)stride[1] * (size_t)(height / 2);
    *yuv = aligned_alloc(64, ysize + 2 * csize);
    if (!*yuv)
        return -ENOMEM;
    *x264 = x264_encoder_open(&xp);
    if (!*x264) {
        fprintf(stderr, "ds_h264: x264 refused a %dx%d encoder\n", width,
                height);
        free(*yuv);
        *yuv = NULL;
        return -EINVAL;
    }
    return 0;
}

/* Takes over a new encoder and buffer from h264_open(). */
static void h264_adopt(struct ds_h264 *enc, int width, int height, x264_t *x264,
                       uint8_t *yuv, const int stride[3])
{
    if (enc->x264)
        x264_encoder_close(enc->x264);
    free(enc->yuv);
    enc->x264 = x264;
    enc->yuv = yuv;
    enc->width = width;
    enc->height = height;
    memcpy(enc->stride, stride, sizeof(enc->stride));
    enc->plane[0] = yuv;
    enc->plane[1] = yuv + (size_t)stride[0] * (size_t)height;
    enc->plane[2] = enc->plane[1] + (size_t)stride[1] * (size_t)(height / 2);
    enc->idr_due = 1;
    enc->nlossy = 0;
}

/* ------------------------------------------------------------------------
 * Encoder */

/* Asked before x264 is, which would print its own complaint. */
static int h264_known_preset(const char *preset)
{
    for (int i = 0; x264_preset_names[i]; i++)
        if (strcmp(preset, x264_preset_names[i]) == 0)
            return 1;
    return 0;
}

/* params with defaults filled in, checked. */
static int h264_settle_params(struct ds_h264 *enc,
                              const struct ds_h264_params *params)
{
    const char *preset =
        params->preset ? params->preset : DS_H264_DEFAULT_PRESET;

    enc->p = *params;
    if (!enc->p.fps)
        enc->p.fps = DS_H264_DEFAULT_FPS;
    if (!enc->p.crf)
        enc->p.crf = DS_H264_DEFAULT_CRF;
    if (!enc->p.refresh_qp)
        enc->p.refresh_qp = DS_H264_DEFAULT_REFRESH_QP;
    if (enc->p.fps < 1 || enc->p.fps > 240 || enc->p.crf < 1 ||
        enc->p.crf > 51 || enc->p.refresh_qp < 1 || enc->p.refresh_qp > 51 ||
        strlen(preset) >= sizeof(enc->preset)) {
        fprintf(stderr, "ds_h264: parameter out of range\n");
        return -EINVAL;
    }
    if (!h264_known_preset(preset)) {
        fprintf(stderr, "ds_h264: x264 has no preset \"%s\"\n", preset);
        return -EINVAL;
    }
    snprintf(enc->preset, sizeof(enc->preset), "%s", preset);
    enc->p.preset = enc->preset;
    return 0;
}

int ds_h264_new(struct ds_h264 **out, const struct ds_h264_params *params)
{
    struct ds_h264 *enc;
    x264_t *x264;
    uint8_t *yuv;
    int stride[3], rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!params)
        return -EINVAL;
    enc = calloc(1, sizeof(*enc));
    if (!enc)
        return -ENOMEM;
    rc = h264_settle_params(enc, params);
    if (rc == 0)
        rc = h264_open(enc, params->width, params->height, &x264, &yuv, stride);
    if (rc == 0 && !(enc->prims = primitives_get()))
        rc = -ENOMEM;
    if (rc < 0) {
        free(enc);
        return rc;
    }
    h264_adopt(enc, params->width, params->height, x264, yuv, stride);
    *out = enc;
    return 0;
}

void ds_h264_free(struct ds_h264 *enc)
{
    if (!enc)
        return;
    if (enc->x264)
        x264_encoder_close(enc->x264);
    free(enc->yuv);
    free(enc);
}

int ds_h264_resize(struct ds_h264 *enc, int width, int height)
{
    x264_t *x264;
    uint8_t *yuv;
    int stride[3], rc;

    if (!enc)
        return -EINVAL;
    rc = h264_open(enc, width, height, &x264, &yuv, stride);
    if (rc < 0)
        return rc;
    h264_adopt(enc, width, height, x264, yuv, stride);
    return 0;
}

/*
 * Converts the rows the rectangles touch (whole rows, in pairs: a chroma
 * row covers two) into the I420 buffer. Rows nobody touched keep what the
 * last frames put there, which is what the screen still shows.
 */
static int h264_convert(struct ds_h264 *enc, const uint8_t *bgrx, int stride,
                        const struct ds_h264_rect *rects, int n)
{
    int y0[DS_H264_MAX_RECTS], y1[DS_H264_MAX_RECTS];

    for (int i = 0; i < n; i++) {
        int a = rects[i].y & ~1, b = (rects[i].y + rects[i].h + 1) & ~1;
        int k = i;

        /* Sorted by start, insertion (n is small). */
        while (k > 0 && y0[k - 1] > a) {
            y0[k] = y0[k - 1];
            y1[k] = y1[k - 1];
            k--;
        }
        y0[k] = a;
        y1[k] = b;
    }
    for (int i = 0; i < n;) {
        int a = y0[i], b = y1[i];
        BYTE *dst[3];
        UINT32 dst_step[3];
        prim_size_t roi;

        /* Overlapping and touching bands become one call. */
        for (i++; i < n && y0[i] <= b; i++)
            b = y1[i] > b ? y1[i] : b;
        b = b > enc->height ? enc->height : b;
        for (int p = 0; p < 3; p++) {
            int row = p ? a / 2 : a;
            dst[p] = enc->plane[p] + (size_t)row * (size_t)enc->stride[p];
            dst_step[p] = (UINT32)enc->stride[p];
        }
        roi.width = (UINT32)enc->width;
        roi.height = (UINT32)(b - a);
        if (enc->prims->RGBToYUV420_8u_P3AC4R(
                bgrx + (size_t)a * (size_t)stride, PIXEL_FORMAT_BGRX32,
                (UINT32)stride, dst, dst_step, &roi) != PRIMITIVES_SUCCESS) {
            fprintf(stderr, "ds_h264: colour conversion failed\n");
            return -EIO;
        }
    }
    return 0;
}

/* Runs x264 on the I420 buffer: returns the access unit's size with *data
 * pointing at it (x264's memory, valid until its next call). */
static int h264_code(struct ds_h264 *enc, int idr, int refresh,
                     x264_picture_t *pic_out, uint8_t **data)
{
    x264_picture_t pic;
    x264_nal_t *nal;
    int nnal, size;

    x264_picture_init(&pic);
    pic.img.i_csp = X264_CSP_I420;
    pic.img.i_plane = 3;
    for (int p = 0; p < 3; p++) {
        pic.img.plane[p] = enc->plane[p];
        pic.img.i_stride[p] = enc->stride[p];
    }
    pic.i_type = idr ? X264_TYPE_IDR : X264_TYPE_AUTO;
    pic.i_qpplus1 = refresh ? enc->p.refresh_qp + 1 : X264_QP_AUTO;
    pic.i_pts = enc->pts++;
    size = x264_encoder_encode(enc->x264, &nal, &nnal, &pic, pic_out);
    /* zerolatency never holds a frame back: no output is a failure. */
    if (size <= 0 || nnal < 1) {
        fprintf(stderr, "ds_h264: x264 produced no frame (%d)\n", size);
        return -EIO;
    }
    /* x264 lays the NAL units of one call out back to back. */
    *data = nal[0].p_payload;
    return size;
}

/* The frame's regions (damage, plus the lossy area for a refresh), all
 * with the frame's QP; then what is lossy now. */
static void h264_finish(struct ds_h264 *enc, const struct ds_h264_rect *rects,
                        int n, int refresh, struct ds_h264_frame *out)
{
    out->nregions = n;
    for (int i = 0; i < n; i++) {
        out->regions[i].rect = rects[i];
        out->regions[i].qp = out->qp;
        out->regions[i].quality = 100 - out->qp;
    }
    if (refresh || out->qp <= enc->p.refresh_qp + DS_H264_LOSSY_MARGIN) {
        /* Coded at about refresh quality or better: no refresh needed
         * for it, and for a refresh the lossy area was part of it. */
        if (refresh)
            enc->nlossy = 0;
        return;
    }
    for (int i = 0; i < n; i++)
        rects_add(enc->lossy, &enc->nlossy, rects[i]);
}

int ds_h264_encode(struct ds_h264 *enc, const uint8_t *bgrx, int stride,
                   const struct ds_h264_rect *damage, int ndamage,
                   unsigned flags, struct ds_h264_frame *out)
{
    struct ds_h264_rect dmg[DS_H264_MAX_RECTS], regions[DS_H264_MAX_RECTS];
    int nd = 0, nr, idr, refresh, size, rc;
    x264_picture_t pic_out;
    uint8_t *data;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!enc || !bgrx || !out || ndamage < 0 || (ndamage > 0 && !damage) ||
        stride < enc->width * 4 || (flags & ~(DS_H264_IDR | DS_H264_REFRESH)))
        return -EINVAL;
    idr = (flags & DS_H264_IDR) || enc->idr_due;
    refresh = (flags & DS_H264_REFRESH) != 0;
    if (idr) {
        dmg[nd++] = (struct ds_h264_rect){0, 0, enc->width, enc->height};
    } else {
        for (int i = 0; i < ndamage; i++) {
            struct ds_h264_rect c =
                rect_clip(&damage[i], enc->width, enc->height);
            if (!rect_empty(&c))
                rects_add(dmg, &nd, c);
        }
    }
    memcpy(regions, dmg, (size_t)nd * sizeof(*dmg));
    nr = nd;
    if (refresh && !idr)
        for (int i = 0; i < enc->nlossy; i++)
            rects_add(regions, &nr, enc->lossy[i]);
    if (nr == 0)
        return 0; /* an idle screen sends nothing */

    rc = h264_convert(enc, bgrx, stride, dmg, nd);
    if (rc == 0)
        rc = size = h264_code(enc, idr, refresh, &pic_out, &data);
    if (rc < 0) {
        enc->idr_due = 1;
        return rc;
    }
    enc->idr_due = 0;
    out->data = data;
    out->size = (size_t)size;
    out->idr = pic_out.i_type == X264_TYPE_IDR;
    out->refresh = refresh;
    out->qp = pic_out.i_qpplus1 - 1;
    h264_finish(enc, regions, nr, refresh, out);
    return 1;
}

int ds_h264_lossy(const struct ds_h264 *enc)
{
    return enc && enc->nlossy > 0;
}

/* ------------------------------------------------------------------------
 * Quality */

int ds_h264_set_quality(struct ds_h264 *enc, int level)
{
    x264_param_t xp;

    if (!enc || level < 0 || level >= DS_H264_LEVELS)
        return -EINVAL;
    if (level == enc->level)
        return 0;
    x264_encoder_parameters(enc->x264, &xp);
    xp.rc.f_rf_constant = (float)h264_level_crf(enc, level);
    if (x264_encoder_reconfig(enc->x264, &xp) < 0) {
        fprintf(stderr, "ds_h264: x264 refused quality level %d\n", level);
        return -EIO;
    }
    enc->level = level;
    return 0;
}

int ds_h264_quality(const struct ds_h264 *enc)
{
    return enc ? enc->level : 0;
}

/* Follows the path's own round trip: the lowest latency seen, which
 * creeps up by 1 ms every DS_H264_BASE_CREEP_ACKS acknowledgements while
 * latencies stay above it, so a route change is followed within seconds
 * while a queue that builds up over a second still shows as delay. */
static void h264_track_base(struct ds_h264 *enc, int latency)
{
    if (enc->acks == 0 || latency < enc->base_ms) {
        enc->base_ms = latency;
        enc->base_age = 0;
    } else if (latency > enc->base_ms &&
               ++enc->base_age >= DS_H264_BASE_CREEP_ACKS) {
        enc->base_ms++;
        enc->base_age = 0;
    }
}

int ds_h264_feedback(struct ds_h264 *enc, int ack_latency_ms,
                     int frames_in_flight)
{
    int latency, queue, rc = 0;

    if (!enc || ack_latency_ms < 0 || frames_in_flight < 0)
        return -EINVAL;
    latency = ack_latency_ms > DS_H264_MAX_LATENCY_MS ? DS_H264_MAX_LATENCY_MS
                                                      : ack_latency_ms;
    h264_track_base(enc, latency);
    queue = latency - enc->base_ms;
    /* Smoothed over ~4 acknowledgements: one late frame is no trend. */
    enc->queue_ms = enc->acks == 0 ? queue : (3 * enc->queue_ms + queue) / 4;
    enc->acks++;
    if (enc->hold > 0)
        enc->hold--;

    if (enc->queue_ms > DS_H264_QUEUE_HIGH_MS ||
        frames_in_flight >= DS_H264_CONGESTED_IN_FLIGHT) {
        enc->clear_run = 0;
        if (enc->hold == 0 && enc->level < DS_H264_LEVELS - 1) {
            rc = ds_h264_set_quality(enc, enc->level + 1);
            enc->hold = DS_H264_HOLD_ACKS;
        }
    } else if (enc->queue_ms < DS_H264_QUEUE_LOW_MS && frames_in_flight <= 1) {
        if (++enc->clear_run >= DS_H264_CLEAR_ACKS && enc->level > 0) {
            rc = ds_h264_set_quality(enc, enc->level - 1);
            enc->clear_run = 0;
        }
    } else {
        enc->clear_run = 0;
    }
    return rc < 0 ? rc : enc->level;
}
