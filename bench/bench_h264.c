/*
 * bench_h264 - deskpool-display's H.264 encoder (display/ds_h264.h) on
 * 1920x1080 full-motion video, against issue 8's target: at least 60
 * frames a second on one core, colour conversion included (x264 ultrafast
 * alone does about 150).
 *
 * The video is testdesk's "video" workload drawn over the whole screen: a
 * gradient and checkerboard that moves every frame, so every pixel
 * changes. Frames are drawn outside the timed calls. One thread
 * throughout, as in a session process. Prints one Markdown table:
 *
 *  (a) x264 alone on ready I420 frames, with ds_h264's settings (preset
 *      ultrafast, tune zerolatency, one thread, CRF 23);
 *  (b) BGRX -> I420 alone: libyuv's ARGBToJ420 (BT.601, the issue's
 *      suggestion, for reference) and FreeRDP's RGBToYUV420 (BT.709, the
 *      one ds_h264 uses: see ds_h264.c);
 *  (c) ds_h264_encode(), the real path: conversion, x264, regions;
 *  (d) typing on a still 1080p text page: one glyph changed per frame,
 *      damaged alone (only its rows are converted) and with the whole
 *      screen damaged (everything converted): what converting only the
 *      damaged rows saves.
 *
 * (a), (b) and (c) run call after call on each frame, and so do the two
 * halves of (d), so that a machine busy with something else slows them
 * alike. Times are per call: the thread's CPU time (what "one core"
 * means) and the wall-clock median.
 *
 *   bench_h264 [SECONDS]   (for each of the two loops, default 5)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <freerdp/codec/color.h>
#include <freerdp/primitives.h>
#include <libyuv.h>
#include <x264.h>

#include "ds_h264.h"
#include "td_canvas.h"
#include "tsbench.h"
#include "tsguest.h"

#define W          1920
#define H          1080
#define MAX_FRAMES 20000
#define TARGET_FPS 60.0

struct row {
    const char *what;
    int frames;
    double cpu_ms;  /* mean thread CPU time per call */
    double wall_ms; /* median wall time per call */
    double bytes;   /* mean bytes per frame; < 0: none */
};

static double cpu_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* testdesk's video workload (agent/testdesk/td_desk.c), whole screen. */
static void draw_video(uint32_t *px, unsigned f)
{
    for (int y = 0; y < H; y++) {
        uint32_t *row = px + (size_t)y * W;
        unsigned vy = (unsigned)y + 3u * f;
        for (int x = 0; x < W; x++) {
            unsigned vx = (unsigned)x + 6u * f;
            unsigned check = ((vx >> 5) ^ (vy >> 5)) & 1u;
            row[x] = (vx & 0xffu) << 16 | (vy & 0xffu) << 8 |
                     (check ? 0xc0u : 0x40u);
        }
    }
}

/* The calls of one row: per-call wall times for the median. */
struct samples {
    double wall[MAX_FRAMES];
};

/* Times of one call, added to r. */
struct timer {
    double cpu0, wall0;
};

static void timer_start(struct timer *t)
{
    t->wall0 = tsbench_now_ms();
    t->cpu0 = cpu_now_ms();
}

static void timer_stop(struct timer *t, struct row *r, struct samples *s)
{
    double cpu = cpu_now_ms() - t->cpu0;

    s->wall[r->frames] = tsbench_now_ms() - t->wall0;
    r->cpu_ms += cpu;
    r->frames++;
}

static void row_end(struct row *r, struct samples *s, size_t bytes)
{
    r->bytes = r->bytes < 0 ? -1 : (double)bytes / r->frames;
    r->cpu_ms /= r->frames;
    r->wall_ms = tsbench_median(s->wall, r->frames);
}

/* The I420 layout both conversions write and x264 reads. */
struct i420 {
    uint8_t *buf, *plane[3];
    int stride[3];
};

static void i420_init(struct i420 *p)
{
    p->buf = aligned_alloc(64, W * H * 3 / 2);
    if (!p->buf) {
        fprintf(stderr, "bench_h264: out of memory\n");
        exit(1);
    }
    p->plane[0] = p->buf;
    p->plane[1] = p->buf + W * H;
    p->plane[2] = p->plane[1] + W * H / 4;
    p->stride[0] = W;
    p->stride[1] = p->stride[2] = W / 2;
}

static void convert_709(const uint32_t *px, struct i420 *p)
{
    BYTE *dst[3] = {p->plane[0], p->plane[1], p->plane[2]};
    UINT32 step[3] = {W, W / 2, W / 2};
    prim_size_t roi = {W, H};

    primitives_get()->RGBToYUV420_8u_P3AC4R(
        (const BYTE *)px, PIXEL_FORMAT_BGRX32, W * 4, dst, step, &roi);
}

static void convert_601(const uint32_t *px, struct i420 *p)
{
    ARGBToJ420((const uint8_t *)px, W * 4, p->plane[0], W, p->plane[1], W / 2,
               p->plane[2], W / 2, W, H);
}

/* (a): x264 with ds_h264's settings (ds_h264.c, h264_x264_params()). */
static x264_t *x264_open(void)
{
    x264_param_t xp;

    x264_param_default_preset(&xp, "ultrafast", "zerolatency");
    xp.i_threads = 1;
    xp.b_sliced_threads = 0;
    xp.i_width = W;
    xp.i_height = H;
    xp.i_csp = X264_CSP_I420;
    xp.i_fps_num = 30;
    xp.i_fps_den = 1;
    xp.i_keyint_max = X264_KEYINT_MAX_INFINITE;
    xp.i_scenecut_threshold = 0;
    xp.vui.b_fullrange = 1;
    xp.vui.i_colorprim = xp.vui.i_transfer = xp.vui.i_colmatrix = 1;
    xp.rc.i_rc_method = X264_RC_CRF;
    xp.rc.f_rf_constant = DS_H264_DEFAULT_CRF;
    xp.i_log_level = X264_LOG_ERROR;
    x264_param_apply_profile(&xp, "main");
    return x264_encoder_open(&xp);
}

static struct ds_h264 *enc_new(void)
{
    struct ds_h264_params params = {.width = W, .height = H};
    struct ds_h264 *enc;

    if (ds_h264_new(&enc, &params) < 0)
        exit(1);
    return enc;
}

static struct samples *samples_new(int n)
{
    struct samples *s = calloc((size_t)n, sizeof(*s));

    if (!s) {
        fprintf(stderr, "bench_h264: out of memory\n");
        exit(1);
    }
    return s;
}

/*
 * (a), (b) and (c) in one loop, call after call on the same frames, so
 * a busy machine slows them alike: r[0] x264 alone, r[1] ARGBToJ420,
 * r[2] FreeRDP's conversion (its I420 feeds r[0]), r[3] ds_h264_encode.
 */
static void bench_video(double seconds, uint32_t *px, struct row *r)
{
    struct ds_h264_rect all = {0, 0, W, H};
    struct ds_h264 *enc = enc_new();
    struct samples *s = samples_new(4);
    x264_t *x = x264_open();
    size_t bytes[2] = {0, 0};
    struct i420 p601, p709;
    x264_picture_t pic, out;
    double t_end;

    if (!x) {
        fprintf(stderr, "bench_h264: x264_encoder_open failed\n");
        exit(1);
    }
    i420_init(&p601);
    i420_init(&p709);
    x264_picture_init(&pic);
    pic.img.i_csp = X264_CSP_I420;
    pic.img.i_plane = 3;
    for (int i = 0; i < 3; i++) {
        pic.img.plane[i] = p709.plane[i];
        pic.img.i_stride[i] = p709.stride[i];
    }
    r[1].bytes = r[2].bytes = -1;
    t_end = tsbench_now_ms() + seconds * 1000;
    for (unsigned f = 0; f < MAX_FRAMES && tsbench_now_ms() < t_end; f++) {
        struct ds_h264_frame fr;
        struct timer t;
        x264_nal_t *nal;
        int nnal, size;

        draw_video(px, f);
        timer_start(&t);
        convert_601(px, &p601);
        timer_stop(&t, &r[1], &s[1]);
        timer_start(&t);
        convert_709(px, &p709);
        timer_stop(&t, &r[2], &s[2]);
        pic.i_pts = f;
        timer_start(&t);
        size = x264_encoder_encode(x, &nal, &nnal, &pic, &out);
        timer_stop(&t, &r[0], &s[0]);
        bytes[0] += size > 0 ? (size_t)size : 0;
        timer_start(&t);
        if (ds_h264_encode(enc, (const uint8_t *)px, W * 4, &all, 1, 0, &fr) <
            0)
            exit(1);
        timer_stop(&t, &r[3], &s[3]);
        bytes[1] += fr.size;
    }
    row_end(&r[0], &s[0], bytes[0]);
    row_end(&r[1], &s[1], 0);
    row_end(&r[2], &s[2], 0);
    row_end(&r[3], &s[3], bytes[1]);
    x264_encoder_close(x);
    ds_h264_free(enc);
    free(p601.buf);
    free(p709.buf);
    free(s);
}

/* A still text page, 1080p, for (d). */
static void draw_page(struct td_canvas *c)
{
    static const char text[] = "The quick brown fox jumps over the lazy dog.";

    td_canvas_fill(c, (struct td_rect){0, 0, W, H}, 0xffffff);
    for (int y = 8; y + TD_FONT_H < H; y += 2 * TD_FONT_H)
        for (int x = 8; x + 45 * TD_FONT_W < W; x += 45 * TD_FONT_W)
            td_canvas_text(c, x, y, text, 44, 0, 0xffffff);
}

/* (d): glyphs typed one a frame over a still text page; two encoders on
 * the same frames, r[0] told the glyph's cell, r[1] the whole screen. */
static void bench_typing(double seconds, struct row *r)
{
    struct ds_h264 *enc[2] = {enc_new(), enc_new()};
    struct samples *s = samples_new(2);
    int cols = (W - 16) / TD_FONT_W, rows = (H - 16) / TD_FONT_H;
    size_t bytes[2] = {0, 0};
    struct ds_h264_frame fr;
    struct td_canvas c;
    double t_end;

    if (td_canvas_init(&c, W, H) < 0)
        exit(1);
    draw_page(&c);
    for (int e = 0; e < 2; e++)
        if (ds_h264_encode(enc[e], (const uint8_t *)c.px, W * 4, NULL, 0, 0,
                           &fr) < 0)
            exit(1);
    t_end = tsbench_now_ms() + seconds * 1000;
    for (unsigned f = 0; f < MAX_FRAMES && tsbench_now_ms() < t_end; f++) {
        struct ds_h264_rect damage[2] = {
            {8 + (int)(f % (unsigned)cols) * TD_FONT_W,
             8 + (int)((f / (unsigned)cols) % (unsigned)rows) * TD_FONT_H,
             TD_FONT_W, TD_FONT_H},
            {0, 0, W, H}};
        char glyph[2] = {(char)('a' + f % 26), '\0'};

        td_canvas_text(&c, damage[0].x, damage[0].y, glyph, 1, 0x202020,
                       0xf0f0f0);
        for (int e = 0; e < 2; e++) {
            struct timer t;

            timer_start(&t);
            if (ds_h264_encode(enc[e], (const uint8_t *)c.px, W * 4, &damage[e],
                               1, 0, &fr) < 0)
                exit(1);
            timer_stop(&t, &r[e], &s[e]);
            bytes[e] += fr.size;
        }
    }
    for (int e = 0; e < 2; e++) {
        row_end(&r[e], &s[e], bytes[e]);
        ds_h264_free(enc[e]);
    }
    td_canvas_free(&c);
    free(s);
}

static void print_row(const struct row *r)
{
    char bytes[32] = "-";

    if (r->bytes >= 0)
        snprintf(bytes, sizeof(bytes), "%.0f", r->bytes);
    printf("| %s | %d | %.2f | %.0f | %.2f | %s |\n", r->what, r->frames,
           r->cpu_ms, 1000.0 / r->cpu_ms, r->wall_ms, bytes);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5;
    struct row rows[] = {
        {"(a) x264 alone, ready I420", 0, 0, 0, 0},
        {"(b) BGRX -> I420, libyuv ARGBToJ420 (BT.601)", 0, 0, 0, 0},
        {"(b) BGRX -> I420, FreeRDP RGBToYUV420 (BT.709, used)", 0, 0, 0, 0},
        {"(c) ds_h264_encode: conversion + x264", 0, 0, 0, 0},
        {"(d) typing, one glyph a frame, glyph damaged", 0, 0, 0, 0},
        {"(d) typing, same, whole screen damaged", 0, 0, 0, 0},
    };
    uint32_t *px = aligned_alloc(64, (size_t)W * H * 4);
    char cpu[128];

    if (seconds <= 0 || seconds > 60 || !px) {
        fprintf(stderr, "usage: bench_h264 [SECONDS per loop, up to 60]\n");
        return 2;
    }
    bench_video(seconds, px, rows);
    bench_typing(seconds, rows + 4);

    tsguest_cpu_model(cpu, sizeof(cpu));
    printf("\n### H.264 encoder: 1920x1080 full-motion video\n\n"
           "%s, %ld cores, one thread; x264 %d, preset %s, tune "
           "zerolatency, CRF %d; testdesk's video workload; %.0f s a loop\n\n",
           cpu, sysconf(_SC_NPROCESSORS_ONLN), X264_BUILD,
           DS_H264_DEFAULT_PRESET, DS_H264_DEFAULT_CRF, seconds);
    printf("| path | frames | CPU ms/frame (mean) | fps on one core | wall "
           "ms/frame (median) | bytes/frame |\n"
           "|---|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        print_row(&rows[i]);
    printf("\nTarget (c) >= %.0f fps on one core: %s (%.0f fps).\n", TARGET_FPS,
           1000.0 / rows[3].cpu_ms >= TARGET_FPS ? "met" : "MISSED",
           1000.0 / rows[3].cpu_ms);
    free(px);
    return 0;
}
