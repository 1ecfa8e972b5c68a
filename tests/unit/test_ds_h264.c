/*
 * Unit tests of deskpool-display's H.264 encoder (display/ds_h264.h).
 *
 * Every frame is decoded by FreeRDP's own AVC420 decoder (libfreerdp2:
 * avc420_decompress() into a BGRX surface, showing only the frame's region
 * rectangles, as the RDP client does), and the test looks at what the user
 * would see: PSNR against the source picture, colours of a chart, pixels
 * of text visibly off (smudges). The
 * stream itself is checked where a client depends on it: Annex B start
 * codes, IDRs only when due, the SPS's coded size and crop, and its VUI
 * (full-range BT.709).
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <freerdp/codec/color.h>
#include <freerdp/codec/h264.h>
#include <freerdp/primitives.h>
#include <libyuv.h>

#include "ds_h264.h"
#include "td_canvas.h"
#include "tsguest.h"

/* What "good enough" means, in dB of PSNR over the RGB channels. */
#define PSNR_DEFAULT 35.0 /* default quality, first frame */
#define PSNR_REFRESH 42.0 /* a refresh frame */
#define PSNR_MOTION  33.0 /* a moving gradient, every frame */

#define WHITE 0xffffffu
#define BLACK 0x000000u

/* The sizes most tests run at: 1920x1080 is coded as 1920x1088, 1366 is
 * not a multiple of 16 either. */
static const struct {
    int w, h;
} sizes[] = {{1024, 768}, {1920, 1080}, {1366, 768}};

/* ------------------------------------------------------------------------
 * Pictures */

/* The chart's patches, 0x00RRGGBB. */
static const uint32_t chart_colors[] = {
    0xff0000, 0x00ff00, 0x0000ff, 0x808080, 0xffffff, 0x000000,
    0xffff00, 0x00ffff, 0xff00ff, 0xc86432, 0x1e3cc8, 0x404040,
};
#define NCHART (int)(sizeof(chart_colors) / sizeof(chart_colors[0]))
#define PATCH  64

static const char *chart_names[NCHART] = {
    "red",    "green", "blue",    "grey",   "white", "black",
    "yellow", "cyan",  "magenta", "orange", "navy",  "dark grey",
};

/* Patches of chart_colors, PATCH pixels square, in rows shifted by one
 * colour each, so every colour appears all over the picture. */
static void draw_chart(struct td_canvas *c)
{
    for (int y = 0; y < c->height; y += PATCH)
        for (int x = 0; x < c->width; x += PATCH) {
            int i = (x / PATCH + y / PATCH) % NCHART;
            td_canvas_fill(c, (struct td_rect){x, y, PATCH, PATCH},
                           chart_colors[i]);
        }
}

/* Black text on white, a line every TD_FONT_H + 4 rows. */
static void draw_text(struct td_canvas *c, int line0)
{
    static const char *words[] = {
        "The quick brown fox jumps over the lazy dog. ",
        "Pack my box with five dozen liquor jugs 0123456789; ",
        "{braces} [brackets] (parens) <angles> #hash @at &amp ",
    };
    char line[1024];

    td_canvas_fill(c, (struct td_rect){0, 0, c->width, c->height}, WHITE);
    for (int n = 0, y = 2; y + TD_FONT_H <= c->height;
         n++, y += TD_FONT_H + 4) {
        size_t len = 0;
        while (len + 60 < sizeof(line)) {
            const char *w = words[(n + line0 + (int)len) % 3];
            memcpy(line + len, w, strlen(w));
            len += strlen(w);
        }
        line[len] = '\0';
        td_canvas_text(c, 4, y, line, (c->width - 8) / TD_FONT_W, BLACK, WHITE);
    }
}

/* A smooth gradient moving a few pixels each frame f: every pixel
 * changes, as in video. */
static void draw_gradient(struct td_canvas *c, int f)
{
    for (int y = 0; y < c->height; y++) {
        uint32_t *row = c->px + (size_t)y * (size_t)c->width;
        for (int x = 0; x < c->width; x++) {
            unsigned r = (unsigned)(x + 4 * f) & 0xff;
            unsigned g = (unsigned)(y + 2 * f) & 0xff;
            unsigned b = (unsigned)((x + y) / 4 + 6 * f) & 0xff;
            row[x] = r << 16 | g << 8 | b;
        }
    }
}

static double psnr(const uint32_t *a, const uint32_t *b, size_t n)
{
    double sum = 0;

    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < 24; s += 8) {
            int d = (int)((a[i] >> s) & 0xff) - (int)((b[i] >> s) & 0xff);
            sum += d * d;
        }
    if (sum == 0)
        return 99.0;
    return 10.0 * log10(255.0 * 255.0 * 3.0 * (double)n / sum);
}

/* Pixels of decoded text visibly off (a channel more than SMUDGE levels
 * from the source): the ringing and blur around glyphs at a high QP. */
#define SMUDGE 48
static int text_smudges(const uint32_t *src, const uint32_t *got, size_t n)
{
    int bad = 0;

    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < 24; s += 8) {
            int d = (int)((src[i] >> s) & 0xff) - (int)((got[i] >> s) & 0xff);
            if (d > SMUDGE || d < -SMUDGE) {
                bad++;
                break;
            }
        }
    return bad;
}

/* The worst channel error of a chart colour's patches in got: each
 * patch's mean over its middle (away from chroma bleeding at edges). */
static int chart_error(const uint32_t *got, int w, int h, int color)
{
    int worst = 0;

    for (int py = 0; py + PATCH <= h; py += PATCH)
        for (int px = 0; px + PATCH <= w; px += PATCH) {
            long sum[3] = {0, 0, 0};
            if ((px / PATCH + py / PATCH) % NCHART != color)
                continue;
            for (int y = py + 16; y < py + 48; y++)
                for (int x = px + 16; x < px + 48; x++)
                    for (int s = 0; s < 3; s++)
                        sum[s] += (got[(size_t)y * w + x] >> (8 * s)) & 0xff;
            for (int s = 0; s < 3; s++) {
                int want = (int)((chart_colors[color] >> (8 * s)) & 0xff);
                int e = abs((int)(sum[s] / (32 * 32)) - want);
                worst = e > worst ? e : worst;
            }
        }
    return worst;
}

/* ------------------------------------------------------------------------
 * FreeRDP's decoder, as the client runs it */

struct dec {
    H264_CONTEXT *h264;
    uint32_t *out; /* the client's surface, BGRX */
    int w, h;
};

static void dec_open(struct dec *d, int w, int h)
{
    d->h264 = h264_context_new(FALSE);
    ck_assert_ptr_nonnull(d->h264);
    ck_assert(h264_context_reset(d->h264, (UINT32)w, (UINT32)h));
    d->out = calloc((size_t)w * (size_t)h, 4);
    ck_assert_ptr_nonnull(d->out);
    d->w = w;
    d->h = h;
}

static void dec_close(struct dec *d)
{
    h264_context_free(d->h264);
    free(d->out);
}

/* Decodes f and shows its region rectangles on the surface. */
static void dec_frame(struct dec *d, const struct ds_h264_frame *f)
{
    RECTANGLE_16 r[DS_H264_MAX_RECTS];
    int rc;

    for (int i = 0; i < f->nregions; i++) {
        const struct ds_h264_rect *q = &f->regions[i].rect;
        r[i] = (RECTANGLE_16){(UINT16)q->x, (UINT16)q->y, (UINT16)(q->x + q->w),
                              (UINT16)(q->y + q->h)};
    }
    rc = avc420_decompress(d->h264, f->data, (UINT32)f->size, (BYTE *)d->out,
                           PIXEL_FORMAT_BGRX32, (UINT32)d->w * 4, (UINT32)d->w,
                           (UINT32)d->h, r, (UINT32)f->nregions);
    ck_assert_msg(rc >= 0, "avc420_decompress: %d", rc);
    /* The decoder's picture is the surface's size: the SPS crop worked. */
    ck_assert_int_eq(d->h264->width, d->w);
    ck_assert_int_eq(d->h264->height, d->h);
}

/* ------------------------------------------------------------------------
 * The stream: NAL units and the SPS */

/* The first NAL unit of type type in an Annex B stream, emulation
 * prevention bytes removed, into rbsp; its length, or 0 if none. */
static size_t find_nal(const uint8_t *d, size_t n, int type, uint8_t *rbsp,
                       size_t room)
{
    for (size_t i = 0; i + 3 < n; i++) {
        size_t len = 0, zeros = 0;
        if (d[i] || d[i + 1] || d[i + 2] != 1 || (d[i + 3] & 0x1f) != type)
            continue;
        for (size_t j = i + 4; j < n && len < room; j++) {
            if (zeros >= 2 && d[j] == 1)
                break; /* the next start code */
            if (zeros >= 2 && d[j] == 3) {
                zeros = 0;
                continue;
            }
            zeros = d[j] ? 0 : zeros + 1;
            rbsp[len++] = d[j];
        }
        return len;
    }
    return 0;
}

struct bits {
    const uint8_t *p;
    size_t n, pos; /* bytes, and the next bit */
};

static unsigned bits_u(struct bits *b, int n)
{
    unsigned v = 0;

    for (int i = 0; i < n; i++, b->pos++) {
        ck_assert_msg(b->pos / 8 < b->n, "SPS too short");
        v = v << 1 | ((b->p[b->pos / 8] >> (7 - b->pos % 8)) & 1);
    }
    return v;
}

static unsigned bits_ue(struct bits *b)
{
    int zeros = 0;

    while (bits_u(b, 1) == 0)
        ck_assert_int_lt(++zeros, 32);
    return (1u << zeros) - 1 + bits_u(b, zeros);
}

struct sps {
    int profile;
    int coded_w, coded_h;                        /* macroblocks * 16 */
    int crop_l, crop_r, crop_t, crop_b;          /* in pixels */
    int full_range, primaries, transfer, matrix; /* -1: not signalled */
};

/* Reads an SPS far enough for the size and colour (main profile, frames
 * only: what x264 writes here). */
static void parse_sps(const uint8_t *d, size_t n, struct sps *s)
{
    uint8_t rbsp[256];
    struct bits b = {rbsp, find_nal(d, n, 7, rbsp, sizeof(rbsp)), 0};
    unsigned poc_type;

    ck_assert_msg(b.n > 0, "no SPS in the frame");
    memset(s, 0, sizeof(*s));
    s->full_range = s->primaries = s->transfer = s->matrix = -1;
    s->profile = (int)bits_u(&b, 8);
    /* Main as asked, or baseline when x264 finds the stream fits it
     * (ultrafast: no CABAC); neither has chroma_format_idc & co. */
    ck_assert_msg(s->profile == 77 || s->profile == 66, "profile %d",
                  s->profile);
    bits_u(&b, 16); /* constraint flags, level */
    bits_ue(&b);    /* seq_parameter_set_id */
    bits_ue(&b);    /* log2_max_frame_num_minus4 */
    poc_type = bits_ue(&b);
    ck_assert_uint_ne(poc_type, 1); /* x264 writes 0 or 2 */
    if (poc_type == 0)
        bits_ue(&b);
    bits_ue(&b);   /* max_num_ref_frames */
    bits_u(&b, 1); /* gaps_in_frame_num_allowed */
    s->coded_w = (int)(bits_ue(&b) + 1) * 16;
    s->coded_h = (int)(bits_ue(&b) + 1) * 16;
    ck_assert_uint_eq(bits_u(&b, 1), 1); /* frame_mbs_only */
    bits_u(&b, 1);                       /* direct_8x8_inference */
    if (bits_u(&b, 1)) {
        /* 4:2:0 frames: crop offsets count pairs of pixels. */
        s->crop_l = 2 * (int)bits_ue(&b);
        s->crop_r = 2 * (int)bits_ue(&b);
        s->crop_t = 2 * (int)bits_ue(&b);
        s->crop_b = 2 * (int)bits_ue(&b);
    }
    if (!bits_u(&b, 1))
        return; /* no VUI */
    if (bits_u(&b, 1) && bits_u(&b, 8) == 255)
        bits_u(&b, 32); /* extended sample aspect ratio */
    if (bits_u(&b, 1))
        bits_u(&b, 1); /* overscan_appropriate */
    if (bits_u(&b, 1)) {
        bits_u(&b, 3); /* video_format */
        s->full_range = (int)bits_u(&b, 1);
        if (bits_u(&b, 1)) {
            s->primaries = (int)bits_u(&b, 8);
            s->transfer = (int)bits_u(&b, 8);
            s->matrix = (int)bits_u(&b, 8);
        }
    }
}

static int has_nal(const struct ds_h264_frame *f, int type)
{
    uint8_t tmp[16];

    return find_nal(f->data, f->size, type, tmp, sizeof(tmp)) > 0;
}

static void assert_annexb(const struct ds_h264_frame *f)
{
    ck_assert_uint_gt(f->size, 4);
    ck_assert_msg(
        (!f->data[0] && !f->data[1] && !f->data[2] && f->data[3] == 1) ||
            (!f->data[0] && !f->data[1] && f->data[2] == 1),
        "stream does not start with a start code");
}

/* ------------------------------------------------------------------------
 * Helpers */

static struct ds_h264 *enc_new(int w, int h)
{
    struct ds_h264_params p = {.width = w, .height = h};
    struct ds_h264 *enc;

    ck_assert_int_eq(ds_h264_new(&enc, &p), 0);
    return enc;
}

static int encode(struct ds_h264 *enc, const struct td_canvas *c,
                  const struct ds_h264_rect *damage, int n, unsigned flags,
                  struct ds_h264_frame *f)
{
    int rc = ds_h264_encode(enc, (const uint8_t *)c->px, c->width * 4, damage,
                            n, flags, f);
    ck_assert_int_ge(rc, 0);
    return rc;
}

static void assert_inside(const struct ds_h264_frame *f, int w, int h)
{
    ck_assert_int_ge(f->nregions, 1);
    ck_assert_int_le(f->nregions, DS_H264_MAX_RECTS);
    for (int i = 0; i < f->nregions; i++) {
        const struct ds_h264_region *r = &f->regions[i];
        ck_assert(r->rect.x >= 0 && r->rect.y >= 0 && r->rect.w > 0 &&
                  r->rect.h > 0 && r->rect.x + r->rect.w <= w &&
                  r->rect.y + r->rect.h <= h);
        ck_assert_int_eq(r->qp, f->qp);
        ck_assert_int_eq(r->quality, 100 - f->qp);
    }
}

static void assert_whole(const struct ds_h264_frame *f, int w, int h)
{
    ck_assert_int_eq(f->nregions, 1);
    ck_assert(f->regions[0].rect.x == 0 && f->regions[0].rect.y == 0 &&
              f->regions[0].rect.w == w && f->regions[0].rect.h == h);
}

/* ------------------------------------------------------------------------
 * Tests */

/* The first frame of each size: an IDR of the whole surface, Annex B,
 * coded size ceil16 cropped to the surface, full-range BT.709 in the VUI,
 * and a chart that decodes above PSNR_DEFAULT. */
START_TEST(first_frame_idr_cropped_bt709)
{
    int w = sizes[_i].w, h = sizes[_i].h;
    struct ds_h264 *enc = enc_new(w, h);
    struct ds_h264_frame f;
    struct td_canvas c;
    struct dec d;
    struct sps s;
    double q;

    ck_assert_int_eq(td_canvas_init(&c, w, h), 0);
    draw_chart(&c);
    dec_open(&d, w, h);
    ck_assert_int_eq(encode(enc, &c, NULL, 0, 0, &f), 1);
    ck_assert(f.idr && !f.refresh);
    assert_annexb(&f);
    assert_inside(&f, w, h);
    assert_whole(&f, w, h);
    ck_assert(has_nal(&f, 8) && has_nal(&f, 5)); /* PPS, IDR slice */
    parse_sps(f.data, f.size, &s);
    ck_assert_int_eq(s.coded_w, (w + 15) / 16 * 16);
    ck_assert_int_eq(s.coded_h, (h + 15) / 16 * 16);
    ck_assert_int_eq(s.crop_l, 0);
    ck_assert_int_eq(s.crop_t, 0);
    ck_assert_int_eq(s.coded_w - s.crop_r, w);
    ck_assert_int_eq(s.coded_h - s.crop_b, h);
    ck_assert_int_eq(s.full_range, 1);
    ck_assert_int_eq(s.primaries, 1);
    ck_assert_int_eq(s.transfer, 1);
    ck_assert_int_eq(s.matrix, 1);
    dec_frame(&d, &f);
    q = psnr(c.px, d.out, (size_t)w * h);
    fprintf(stderr,
            "test_ds_h264: %dx%d chart, first frame: %zu bytes, "
            "QP %d, PSNR %.2f dB\n",
            w, h, f.size, f.qp, q);
    ck_assert_msg(q >= PSNR_DEFAULT, "PSNR %.2f dB", q);
    dec_close(&d);
    td_canvas_free(&c);
    ds_h264_free(enc);
}
END_TEST

/* IDRs come first, when forced and after a resize; nothing else is one,
 * and an unchanged screen sends nothing. */
START_TEST(idr_only_when_due)
{
    struct ds_h264 *enc = enc_new(1024, 768);
    struct ds_h264_rect line = {100, 200, 400, TD_FONT_H};
    struct ds_h264_frame f;
    struct td_canvas c;
    struct dec d;

    ck_assert_int_eq(td_canvas_init(&c, 1024, 768), 0);
    draw_text(&c, 0);
    dec_open(&d, 1024, 768);
    ck_assert_int_eq(encode(enc, &c, &line, 1, 0, &f), 1);
    ck_assert(f.idr);
    assert_whole(&f, 1024, 768); /* whatever the damage said */
    dec_frame(&d, &f);

    td_canvas_text(&c, line.x, line.y, "typing something", 50, BLACK, WHITE);
    ck_assert_int_eq(encode(enc, &c, &line, 1, 0, &f), 1);
    ck_assert(!f.idr && !has_nal(&f, 5) && !has_nal(&f, 7));
    ck_assert_int_eq(f.nregions, 1);
    ck_assert_mem_eq(&f.regions[0].rect, &line, sizeof(line));
    dec_frame(&d, &f);

    /* Idle: no damage, nothing to send, however often asked. */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(encode(enc, &c, NULL, 0, 0, &f), 0);
        ck_assert_uint_eq(f.size, 0);
        ck_assert_int_eq(f.nregions, 0);
    }

    ck_assert_int_eq(encode(enc, &c, NULL, 0, DS_H264_IDR, &f), 1);
    ck_assert(f.idr && has_nal(&f, 7) && has_nal(&f, 5));
    assert_whole(&f, 1024, 768);
    dec_frame(&d, &f);
    ck_assert_double_ge(psnr(c.px, d.out, 1024 * 768), PSNR_DEFAULT);

    ck_assert_int_eq(encode(enc, &c, &line, 1, 0, &f), 1);
    ck_assert(!f.idr);

    /* A resize starts over with an IDR at the new size. */
    ck_assert_int_eq(ds_h264_resize(enc, 1366, 768), 0);
    td_canvas_free(&c);
    dec_close(&d);
    ck_assert_int_eq(td_canvas_init(&c, 1366, 768), 0);
    draw_text(&c, 3);
    dec_open(&d, 1366, 768);
    ck_assert_int_eq(encode(enc, &c, NULL, 0, 0, &f), 1);
    ck_assert(f.idr);
    assert_whole(&f, 1366, 768);
    dec_frame(&d, &f);
    ck_assert_double_ge(psnr(c.px, d.out, 1366 * 768), PSNR_DEFAULT);
    /* A bad size leaves the encoder as it was. */
    ck_assert_int_eq(ds_h264_resize(enc, 1367, 768), -EINVAL);
    ck_assert_int_eq(encode(enc, &c, &line, 1, 0, &f), 1);
    ck_assert(!f.idr);
    dec_frame(&d, &f);

    dec_close(&d);
    td_canvas_free(&c);
    ds_h264_free(enc);
}
END_TEST

/* Damage is clipped to the surface, what lies outside sends nothing, and
 * many rectangles merge into at most DS_H264_MAX_RECTS that still cover
 * them all. */
START_TEST(regions_clipped_and_bounded)
{
    static const struct ds_h264_rect outside[] = {
        {1024, 0, 10, 10}, {0, 768, 10, 10}, {-20, -20, 20, 20},
        {5, 5, 0, 9},      {5, 5, 9, -1},    {INT_MAX, INT_MAX, INT_MAX, 1},
    };
    const struct ds_h264_rect edges[] = {
        {-50, -60, 100, 100},
        {1000, 700, 500, 500},
        {-100000, 300, 200000, 10},
    };
    struct ds_h264_rect many[200];
    struct ds_h264 *enc = enc_new(1024, 768);
    struct ds_h264_frame f;
    struct td_canvas c;
    struct dec d;

    ck_assert_int_eq(td_canvas_init(&c, 1024, 768), 0);
    draw_chart(&c);
    dec_open(&d, 1024, 768);
    ck_assert_int_eq(encode(enc, &c, NULL, 0, 0, &f), 1);
    dec_frame(&d, &f);

    ck_assert_int_eq(encode(enc, &c, outside, 6, 0, &f), 0);

    ck_assert_int_eq(encode(enc, &c, edges, 3, 0, &f), 1);
    assert_inside(&f, 1024, 768);
    ck_assert_int_eq(f.nregions, 3);
    ck_assert(f.regions[0].rect.x == 0 && f.regions[0].rect.y == 0 &&
              f.regions[0].rect.w == 50 && f.regions[0].rect.h == 40);
    ck_assert(f.regions[1].rect.x == 1000 && f.regions[1].rect.y == 700 &&
              f.regions[1].rect.w == 24 && f.regions[1].rect.h == 68);
    ck_assert(f.regions[2].rect.x == 0 && f.regions[2].rect.y == 300 &&
              f.regions[2].rect.h == 10);
    dec_frame(&d, &f);

    /* A scatter of glyph-sized changes. */
    draw_text(&c, 1);
    for (int i = 0; i < 200; i++)
        many[i] = (struct ds_h264_rect){(i * 97) % 1000, (i * 53) % 740, 8,
                                        TD_FONT_H};
    ck_assert_int_eq(encode(enc, &c, many, 200, 0, &f), 1);
    assert_inside(&f, 1024, 768);
    for (int i = 0; i < 200; i++) {
        int covered = 0;
        for (int k = 0; k < f.nregions && !covered; k++) {
            const struct ds_h264_rect *r = &f.regions[k].rect;
            covered = many[i].x >= r->x && many[i].y >= r->y &&
                      many[i].x + many[i].w <= r->x + r->w &&
                      many[i].y + many[i].h <= r->y + r->h;
        }
        ck_assert_msg(covered, "damage %d not in any region", i);
    }

    ck_assert_int_eq(
        ds_h264_encode(enc, (const uint8_t *)c.px, 1023 * 4, NULL, 0, 0, &f),
        -EINVAL);
    ck_assert_int_eq(
        ds_h264_encode(enc, (const uint8_t *)c.px, 1024 * 4, NULL, 1, 0, &f),
        -EINVAL);
    ck_assert_int_eq(
        ds_h264_encode(enc, (const uint8_t *)c.px, 1024 * 4, NULL, 0, 0x80, &f),
        -EINVAL);
    dec_close(&d);
    td_canvas_free(&c);
    ds_h264_free(enc);
}
END_TEST

/* Only the damaged rows are converted again: a line typed over the chart
 * shows, and the rest of the picture is still right. */
START_TEST(damage_only_rows)
{
    struct ds_h264 *enc = enc_new(1920, 1080);
    struct ds_h264_rect line = {301, 517, 600, TD_FONT_H}; /* odd y */
    struct ds_h264_frame f;
    struct td_canvas c;
    struct dec d;
    double q;

    ck_assert_int_eq(td_canvas_init(&c, 1920, 1080), 0);
    draw_chart(&c);
    dec_open(&d, 1920, 1080);
    ck_assert_int_eq(encode(enc, &c, NULL, 0, 0, &f), 1);
    dec_frame(&d, &f);
    for (int i = 0; i < 5; i++) {
        td_canvas_text(&c, line.x, line.y, &"Hello, world! 12345"[i], 75, BLACK,
                       WHITE);
        ck_assert_int_eq(encode(enc, &c, &line, 1, 0, &f), 1);
        ck_assert(!f.idr);
        dec_frame(&d, &f);
    }
    q = psnr(c.px, d.out, 1920 * 1080);
    ck_assert_msg(q >= PSNR_DEFAULT, "PSNR %.2f dB", q);
    dec_close(&d);
    td_canvas_free(&c);
    ds_h264_free(enc);
}
END_TEST

/*
 * The colour investigation, kept: FreeRDP's decoder applies full-range
 * BT.709. Each chart colour goes through libyuv's two RGB -> YUV
 * conversions (BT.601 limited, ARGBToI420; BT.601 full, ARGBToJ420) into
 * the decoder's own YUV -> RGB primitive, and through ds_h264 and the
 * whole decoder at refresh quality. ds_h264's must be the closest, within
 * a few levels per channel.
 */
START_TEST(colours_match_the_decoder)
{
    enum { W = 768, H = 768 }; /* every colour in patches of 64 */
    static const char *way[3] = {"I420", "J420", "ds_h264"};
    primitives_t *prims = primitives_get();
    struct ds_h264 *enc = enc_new(W, H);
    int err[3][NCHART], worst[3] = {0, 0, 0};
    uint8_t *yuv = malloc(W * H * 3 / 2);
    uint32_t *rgb = malloc(W * H * 4);
    struct ds_h264_frame f;
    struct td_canvas c;
    struct dec d;

    ck_assert(yuv && rgb);
    ck_assert_int_eq(td_canvas_init(&c, W, H), 0);
    draw_chart(&c);
    dec_open(&d, W, H);
    for (int m = 0; m < 3; m++) {
        uint8_t *pl[3] = {yuv, yuv + W * H, yuv + W * H * 5 / 4};
        const BYTE *cpl[3] = {pl[0], pl[1], pl[2]};
        UINT32 st[3] = {W, W / 2, W / 2};
        prim_size_t roi = {W, H};
        const uint32_t *got = rgb;

        if (m < 2) {
            (m == 0 ? ARGBToI420 : ARGBToJ420)((const uint8_t *)c.px, W * 4,
                                               pl[0], W, pl[1], W / 2, pl[2],
                                               W / 2, W, H);
            ck_assert_int_eq(
                prims->YUV420ToRGB_8u_P3AC4R(cpl, st, (BYTE *)rgb, W * 4,
                                             PIXEL_FORMAT_BGRX32, &roi),
                PRIMITIVES_SUCCESS);
        } else {
            ck_assert_int_eq(encode(enc, &c, NULL, 0, DS_H264_REFRESH, &f), 1);
            ck_assert(f.idr && f.refresh);
            dec_frame(&d, &f);
            got = d.out;
        }
        for (int i = 0; i < NCHART; i++) {
            err[m][i] = chart_error(got, W, H, i);
            worst[m] = err[m][i] > worst[m] ? err[m][i] : worst[m];
        }
    }
    fprintf(stderr,
            "test_ds_h264: worst channel error per chart colour (libyuv "
            "I420, J420 into FreeRDP's YUV->RGB; ds_h264 through x264 at QP "
            "%d and avc420_decompress):\n  %-9s",
            f.qp, "");
    for (int m = 0; m < 3; m++)
        fprintf(stderr, " %8s", way[m]);
    for (int i = 0; i < NCHART; i++) {
        fprintf(stderr, "\n  %-9s", chart_names[i]);
        for (int m = 0; m < 3; m++)
            fprintf(stderr, " %8d", err[m][i]);
    }
    fprintf(stderr, "\n  %-9s %8d %8d %8d\n", "worst", worst[0], worst[1],
            worst[2]);
    ck_assert_int_le(worst[2], 6);
    ck_assert_int_lt(worst[2], worst[0]);
    ck_assert_int_lt(worst[2], worst[1]);
    dec_close(&d);
    td_canvas_free(&c);
    free(yuv);
    free(rgb);
    ds_h264_free(enc);
}
END_TEST

/* Text at the default quality, first frame: readable, few smudges. */
START_TEST(text_at_default_quality)
{
    struct ds_h264 *enc = enc_new(1920, 1080);
    struct ds_h264_frame f;
    struct td_canvas c;
    struct dec d;
    int bad;
    double q;

    ck_assert_int_eq(td_canvas_init(&c, 1920, 1080), 0);
    draw_text(&c, 0);
    dec_open(&d, 1920, 1080);
    ck_assert_int_eq(encode(enc, &c, NULL, 0, 0, &f), 1);
    dec_frame(&d, &f);
    bad = text_smudges(c.px, d.out, 1920 * 1080);
    q = psnr(c.px, d.out, 1920 * 1080);
    fprintf(stderr,
            "test_ds_h264: 1920x1080 text at level 0: %zu bytes, QP %d, "
            "PSNR %.2f dB, %d pixels smudged\n",
            f.size, f.qp, q, bad);
    ck_assert_msg(q >= PSNR_DEFAULT, "PSNR %.2f dB", q);
    ck_assert_int_lt(bad, 1920 * 1080 / 1000);
    dec_close(&d);
    td_canvas_free(&c);
    ds_h264_free(enc);
}
END_TEST

/* At the lowest quality text blurs; the refresh after it leaves no
 * smudge, and covers only what was lossy. */
START_TEST(refresh_makes_text_sharp)
{
    enum { W = 1366, H = 768 };
    struct ds_h264 *enc = enc_new(W, H);
    struct ds_h264_rect word = {40, 302, 8 * 12, TD_FONT_H};
    struct ds_h264_frame f;
    struct td_canvas c;
    struct dec d;
    int bad;
    double q;

    ck_assert_int_eq(td_canvas_init(&c, W, H), 0);
    draw_text(&c, 0);
    dec_open(&d, W, H);
    ck_assert_int_eq(ds_h264_set_quality(enc, DS_H264_LEVELS - 1), 0);
    ck_assert_int_eq(ds_h264_quality(enc), DS_H264_LEVELS - 1);
    ck_assert_int_eq(encode(enc, &c, NULL, 0, 0, &f), 1);
    ck_assert_int_gt(f.qp, DS_H264_DEFAULT_REFRESH_QP + DS_H264_LOSSY_MARGIN);
    dec_frame(&d, &f);
    bad = text_smudges(c.px, d.out, W * H);
    q = psnr(c.px, d.out, W * H);
    fprintf(stderr,
            "test_ds_h264: %dx%d text at level %d: %zu bytes, QP %d, "
            "PSNR %.2f dB, %d pixels smudged\n",
            W, H, DS_H264_LEVELS - 1, f.size, f.qp, q, bad);
    ck_assert(ds_h264_lossy(enc));

    ck_assert_int_eq(encode(enc, &c, NULL, 0, DS_H264_REFRESH, &f), 1);
    ck_assert(f.refresh && !f.idr);
    ck_assert_int_eq(f.qp, DS_H264_DEFAULT_REFRESH_QP);
    assert_whole(&f, W, H); /* the IDR made everything lossy */
    dec_frame(&d, &f);
    bad = text_smudges(c.px, d.out, W * H);
    q = psnr(c.px, d.out, W * H);
    fprintf(stderr,
            "test_ds_h264: after the refresh: %zu bytes, PSNR %.2f "
            "dB, %d pixels smudged\n",
            f.size, q, bad);
    ck_assert_int_eq(bad, 0);
    ck_assert_msg(q >= PSNR_REFRESH, "PSNR %.2f dB", q);
    ck_assert(!ds_h264_lossy(enc));
    ck_assert_int_eq(encode(enc, &c, NULL, 0, DS_H264_REFRESH, &f), 0);

    /* Typing at low quality: the refresh covers the word only. */
    td_canvas_text(&c, word.x, word.y, "Hello world!", 12, BLACK, WHITE);
    ck_assert_int_eq(encode(enc, &c, &word, 1, 0, &f), 1);
    dec_frame(&d, &f);
    if (f.qp > DS_H264_DEFAULT_REFRESH_QP + DS_H264_LOSSY_MARGIN) {
        ck_assert(ds_h264_lossy(enc));
        ck_assert_int_eq(encode(enc, &c, NULL, 0, DS_H264_REFRESH, &f), 1);
        ck_assert_int_eq(f.nregions, 1);
        ck_assert_mem_eq(&f.regions[0].rect, &word, sizeof(word));
        dec_frame(&d, &f);
    }
    ck_assert_int_eq(text_smudges(c.px, d.out, W * H), 0);
    ck_assert_double_ge(psnr(c.px, d.out, W * H), PSNR_REFRESH);
    dec_close(&d);
    td_canvas_free(&c);
    ds_h264_free(enc);
}
END_TEST

/* A moving gradient at 1080p: P-frames all along, each one decoding above
 * PSNR_MOTION. */
START_TEST(moving_gradient)
{
    struct ds_h264 *enc = enc_new(1920, 1080);
    struct ds_h264_rect all = {0, 0, 1920, 1080};
    struct ds_h264_frame f;
    struct td_canvas c;
    struct dec d;
    double worst = 99;
    size_t bytes = 0;

    ck_assert_int_eq(td_canvas_init(&c, 1920, 1080), 0);
    dec_open(&d, 1920, 1080);
    for (int i = 0; i < 12; i++) {
        double q;
        draw_gradient(&c, i);
        ck_assert_int_eq(encode(enc, &c, &all, 1, 0, &f), 1);
        ck_assert_int_eq(f.idr, i == 0);
        dec_frame(&d, &f);
        q = psnr(c.px, d.out, 1920 * 1080);
        worst = q < worst ? q : worst;
        bytes += i ? f.size : 0;
    }
    fprintf(stderr,
            "test_ds_h264: 1920x1080 moving gradient: worst PSNR "
            "%.2f dB, %zu bytes per P-frame\n",
            worst, bytes / 11);
    ck_assert_msg(worst >= PSNR_MOTION, "PSNR %.2f dB", worst);
    dec_close(&d);
    td_canvas_free(&c);
    ds_h264_free(enc);
}
END_TEST

/* Acknowledgements that queue up lower the quality level step by step,
 * and a clear path brings it back; lower levels cost fewer bytes. */
START_TEST(feedback_moves_quality)
{
    struct ds_h264 *enc = enc_new(1024, 768);
    struct ds_h264_rect all = {0, 0, 1024, 768};
    struct ds_h264_frame f;
    struct td_canvas c;
    size_t best, worst;
    int level, qp_best;

    ck_assert_int_eq(td_canvas_init(&c, 1024, 768), 0);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(ds_h264_feedback(enc, 40 + i % 5, 1), 0);
    /* A queue builds up: latency far above the path's 40 ms. */
    ck_assert_int_eq(ds_h264_feedback(enc, 300, 2), 0); /* smoothed */
    ck_assert_int_eq(ds_h264_feedback(enc, 300, 2), 1);
    for (int i = 0; i < DS_H264_HOLD_ACKS - 1; i++)
        ck_assert_int_eq(ds_h264_feedback(enc, 300, 2), 1); /* holds */
    ck_assert_int_eq(ds_h264_feedback(enc, 300, 2), 2);
    /* Frames piling up count even when the latency looks fine. */
    for (int i = 0; i < 100; i++)
        level = ds_h264_feedback(enc, 40, DS_H264_CONGESTED_IN_FLIGHT);
    ck_assert_int_eq(level, DS_H264_LEVELS - 1);

    draw_gradient(&c, 0);
    encode(enc, &c, NULL, 0, 0, &f);
    draw_gradient(&c, 1);
    encode(enc, &c, &all, 1, 0, &f);
    worst = f.size;
    ck_assert_int_eq(ds_h264_set_quality(enc, 0), 0);
    draw_gradient(&c, 2);
    encode(enc, &c, &all, 1, 0, &f);
    best = f.size;
    qp_best = f.qp;
    fprintf(stderr,
            "test_ds_h264: 1024x768 gradient P-frame: level %d "
            "%zu bytes, level 0 %zu bytes (QP %d)\n",
            DS_H264_LEVELS - 1, worst, best, qp_best);
    ck_assert_uint_lt(worst, best);

    /* A clear path: one level up every DS_H264_CLEAR_ACKS. */
    ck_assert_int_eq(ds_h264_set_quality(enc, 3), 0);
    for (int i = 0; i < DS_H264_CLEAR_ACKS * 3 + 10; i++)
        level = ds_h264_feedback(enc, 41, 0);
    ck_assert_int_eq(level, 0);

    ck_assert_int_eq(ds_h264_set_quality(enc, -1), -EINVAL);
    ck_assert_int_eq(ds_h264_set_quality(enc, DS_H264_LEVELS), -EINVAL);
    ck_assert_int_eq(ds_h264_feedback(enc, -1, 0), -EINVAL);
    ck_assert_int_eq(ds_h264_feedback(NULL, 1, 0), -EINVAL);
    td_canvas_free(&c);
    ds_h264_free(enc);
}
END_TEST

START_TEST(bad_params)
{
    static const struct ds_h264_params bad[] = {
        {.width = 1023, .height = 768},
        {.width = 1024, .height = 767},
        {.width = 62, .height = 768},
        {.width = 1024, .height = 0},
        {.width = 4098, .height = 768},
        {.width = 1024, .height = 768, .preset = "warpspeed"},
        {.width = 1024, .height = 768, .crf = 52},
        {.width = 1024, .height = 768, .refresh_qp = -1},
        {.width = 1024, .height = 768, .fps = -5},
    };
    struct ds_h264_params good = {.width = 64,
                                  .height = 64,
                                  .preset = "superfast",
                                  .fps = 60,
                                  .crf = 20,
                                  .refresh_qp = 16};
    struct ds_h264 *enc;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enc = (struct ds_h264 *)&good; /* anything: failure clears it */
        ck_assert_int_eq(ds_h264_new(&enc, &bad[i]), -EINVAL);
        ck_assert_ptr_null(enc);
    }
    ck_assert_int_eq(ds_h264_new(&enc, NULL), -EINVAL);
    ck_assert_int_eq(ds_h264_new(NULL, &good), -EINVAL);
    ck_assert_int_eq(ds_h264_new(&enc, &good), 0);
    ck_assert_int_eq(ds_h264_resize(enc, 64, 4100), -EINVAL);
    ds_h264_free(enc);
    ds_h264_free(NULL);
    ck_assert(!ds_h264_lossy(NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ds-h264");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, first_frame_idr_cropped_bt709, 0,
                        (int)(sizeof(sizes) / sizeof(sizes[0])));
    tcase_add_test(tc, idr_only_when_due);
    tcase_add_test(tc, regions_clipped_and_bounded);
    tcase_add_test(tc, damage_only_rows);
    tcase_add_test(tc, colours_match_the_decoder);
    tcase_add_test(tc, text_at_default_quality);
    tcase_add_test(tc, refresh_makes_text_sharp);
    tcase_add_test(tc, moving_gradient);
    tcase_add_test(tc, feedback_moves_quality);
    tcase_add_test(tc, bad_params);
    suite_add_tcase(s, tc);
    return tsguest_run_checks(s);
}
