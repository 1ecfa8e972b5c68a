/*
 * tsscreen.c - pixel checks on a test guest's screen (see tsscreen.h).
 */
#include "tsscreen.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "td_font.h"

struct tsscreen tsscreen_view(const uint32_t *pixels, int width, int height,
                              int stride)
{
    struct tsscreen s = {pixels, width, height, stride};
    return s;
}

struct tsscreen tsscreen_from_ppm(const struct tsppm *img)
{
    int w = tsppm_width(img);

    return tsscreen_view(tsppm_pixels(img), w, tsppm_height(img), w * 4);
}

uint32_t tsscreen_pixel(const struct tsscreen *s, int x, int y)
{
    if (!s->pixels || x < 0 || y < 0 || x >= s->width || y >= s->height)
        return TSSCREEN_NO_PIXEL;
    return s->pixels[(size_t)y * (size_t)(s->stride / 4) + (size_t)x];
}

/* ------------------------------------------------------------------------
 * The pointer marker */

int tsscreen_find_pointer(const struct tsscreen *s, int *px, int *py)
{
    for (int y = 0; y < s->height; y++)
        for (int x = 0; x < s->width; x++)
            if (tsscreen_pixel(s, x, y) == TD_COLOR_POINTER) {
                *px = x;
                *py = y;
                return 0;
            }
    return -ENOENT;
}

struct td_rect tsscreen_pointer_rect(int x, int y)
{
    struct td_rect r = {x, y, TD_POINTER_SIZE, TD_POINTER_SIZE};
    return r;
}

int tsscreen_count_color(const struct tsscreen *s, uint32_t color,
                         const struct td_rect *r, int in)
{
    int n = 0;

    for (int y = 0; y < s->height; y++)
        for (int x = 0; x < s->width; x++)
            if (tsscreen_pixel(s, x, y) == color &&
                td_rect_contains(r, x, y) == !!in)
                n++;
    return n;
}

/* ------------------------------------------------------------------------
 * Text */

uint32_t tsscreen_text_pixel(int x, int y, int tx, int ty, const char *text,
                             uint32_t fg, uint32_t bg)
{
    size_t n = strlen(text);
    long gx = (long)x - tx, gy = (long)y - ty;

    if (gx < 0 || gy < 0 || gy >= TD_FONT_H ||
        (size_t)gx >= n * (size_t)TD_FONT_W)
        return bg;
    return td_font_pixel((unsigned char)text[gx / TD_FONT_W],
                         (int)(gx % TD_FONT_W), (int)gy)
               ? fg
               : bg;
}

int tsscreen_glyph_ink(unsigned char c, int *gx, int *gy)
{
    for (int y = 0; y < TD_FONT_H; y++)
        for (int x = 0; x < TD_FONT_W; x++)
            if (td_font_pixel(c, x, y)) {
                *gx = x;
                *gy = y;
                return 0;
            }
    return -ENOENT;
}

/* ------------------------------------------------------------------------
 * Differences */

void tsscreen_diff_init(struct tsscreen_diff *d, const struct tsscreen *s)
{
    int x, y;

    memset(d, 0, sizeof(*d));
    if (tsscreen_find_pointer(s, &x, &y) == 0)
        d->mask = tsscreen_pointer_rect(x, y);
}

void tsscreen_diff_value(struct tsscreen_diff *d, int x, int y, uint32_t got,
                         uint32_t want)
{
    if (got == want || td_rect_contains(&d->mask, x, y))
        return;
    if (d->count++ == 0) {
        d->x = x;
        d->y = y;
        d->got = got;
        d->want = want;
    }
}

void tsscreen_diff_pixel(struct tsscreen_diff *d, const struct tsscreen *s,
                         int x, int y, uint32_t want)
{
    tsscreen_diff_value(d, x, y, tsscreen_pixel(s, x, y), want);
}

void tsscreen_diff_rect(struct tsscreen_diff *d, const struct tsscreen *s,
                        struct td_rect r, uint32_t want)
{
    for (int y = r.y; y < r.y + r.h; y++)
        for (int x = r.x; x < r.x + r.w; x++)
            tsscreen_diff_pixel(d, s, x, y, want);
}

void tsscreen_diff_glyph(struct tsscreen_diff *d, const struct tsscreen *s,
                         int x, int y, unsigned char c, uint32_t fg,
                         uint32_t bg)
{
    for (int gy = 0; gy < TD_FONT_H; gy++)
        for (int gx = 0; gx < TD_FONT_W; gx++)
            tsscreen_diff_pixel(d, s, x + gx, y + gy,
                                td_font_pixel(c, gx, gy) ? fg : bg);
}

void tsscreen_diff_text(struct tsscreen_diff *d, const struct tsscreen *s,
                        int x, int y, const char *text, uint32_t fg,
                        uint32_t bg)
{
    for (int i = 0; text[i]; i++)
        tsscreen_diff_glyph(d, s, x + i * TD_FONT_W, y, (unsigned char)text[i],
                            fg, bg);
}

int tsscreen_diff_why(const struct tsscreen_diff *d, const char *what,
                      char *why, size_t why_size)
{
    if (d->count == 0)
        return 0;
    snprintf(why, why_size,
             "%s: %d pixels differ, first at (%d,%d): 0x%06x, expected "
             "0x%06x",
             what, d->count, d->x, d->y, (unsigned)d->got, (unsigned)d->want);
    return d->count;
}

/* ------------------------------------------------------------------------
 * Keeping a screen for CI */

int tsscreen_keep_path(const char *test, const char *name, char *buf,
                       size_t size)
{
    const char *dir = getenv("DESKPOOL_BUILD_DIR");
    int n;

    if (!dir)
        return -ENOENT;
    n = snprintf(buf, size, "%s/tests/integration/%s-%s.ppm", dir, test, name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Closes f, turning a failed write or close into a negative errno. */
static int tsscreen_close(FILE *f, int err)
{
    if (ferror(f) && err == 0)
        err = -EIO;
    if (fclose(f) != 0 && err == 0)
        err = -errno;
    return err;
}

/* Creates the file tsscreen_keep_path() names (path: room for PATH_MAX). */
static int tsscreen_create(const char *test, const char *name, char *path,
                           FILE **out)
{
    int err = tsscreen_keep_path(test, name, path, PATH_MAX);

    if (err)
        return err;
    *out = fopen(path, "wbe");
    return *out ? 0 : -errno;
}

int tsscreen_keep(const struct tsscreen *s, const char *test, const char *name)
{
    char path[PATH_MAX];
    FILE *f;
    int err = tsscreen_create(test, name, path, &f);

    if (err)
        return err;
    fprintf(f, "P6\n%d %d\n255\n", s->width, s->height);
    for (int y = 0; y < s->height; y++)
        for (int x = 0; x < s->width; x++) {
            uint32_t p = tsscreen_pixel(s, x, y);
            unsigned char rgb[3] = {(unsigned char)(p >> 16),
                                    (unsigned char)(p >> 8), (unsigned char)p};
            fwrite(rgb, 1, 3, f);
        }
    err = tsscreen_close(f, 0);
    if (err == 0)
        fprintf(stderr, "%s: screen kept in %s\n", test, path);
    return err;
}

int tsscreen_keep_file(const char *src, const char *test, const char *name)
{
    char path[PATH_MAX], buf[65536];
    FILE *in = fopen(src, "rbe"), *out;
    size_t n;
    int err;

    if (!in)
        return -errno;
    err = tsscreen_create(test, name, path, &out);
    if (err) {
        fclose(in);
        return err;
    }
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            break;
    err = ferror(in) ? -EIO : 0;
    fclose(in);
    err = tsscreen_close(out, err);
    if (err == 0)
        fprintf(stderr, "%s: last screendump kept in %s\n", test, path);
    return err;
}

int tsscreen_hostname_why(const struct tsscreen *s, const char *want, char *why,
                          size_t why_size)
{
    struct td_layout l;
    struct tsscreen_diff d;
    char what[128];

    td_layout_compute(&l, s->width, s->height);
    tsscreen_diff_init(&d, s);
    for (int y = l.hostname.y; y < l.hostname.y + l.hostname.h; y++)
        for (int x = l.hostname.x; x < l.hostname.x + l.hostname.w; x++)
            tsscreen_diff_pixel(
                &d, s, x, y,
                tsscreen_text_pixel(x, y, l.hostname.x, l.hostname.y, want,
                                    TD_COLOR_TOPBAR_TEXT, TD_COLOR_TOPBAR));
    snprintf(what, sizeof(what), "the top bar's hostname should read \"%s\"",
             want);
    return tsscreen_diff_why(&d, what, why, why_size);
}

int tsscreen_textbox_why(const struct tsscreen *s, const char *text, char *why,
                         size_t why_size)
{
    int n = (int)strlen(text);
    struct tsscreen_diff d;
    struct td_layout l;

    td_layout_compute(&l, s->width, s->height);
    for (int col = 0; col <= n && col < l.text_cols; col++) {
        char want = col < n ? text[col] : ' ';
        int x, y;

        tsscreen_diff_init(&d, s); /* the pointer may rest on the text */
        td_layout_text_cell(&l, col, 0, &x, &y);
        tsscreen_diff_glyph(&d, s, x, y, (unsigned char)want, TD_COLOR_TEXT,
                            TD_COLOR_TEXTBOX);
        if (!d.count)
            continue;
        if (why)
            snprintf(why, why_size,
                     "text box should read \"%s\": cell (%d,0) should show "
                     "'%c' but %d of its pixels differ (first at (%d,%d): "
                     "0x%06x)",
                     text, col, want, d.count, d.x, d.y, (unsigned)d.got);
        return d.count;
    }
    return 0;
}
