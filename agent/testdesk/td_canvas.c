/*
 * td_canvas.c - clipped drawing into an XRGB8888 buffer (see td_canvas.h).
 */
#include "td_canvas.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "td_font.h"

int td_canvas_init(struct td_canvas *c, int width, int height)
{
    if (width <= 0 || height <= 0 || width > 16384 || height > 16384)
        return -EINVAL;
    c->px = calloc((size_t)width * (size_t)height, sizeof(*c->px));
    if (!c->px)
        return -ENOMEM;
    c->width = width;
    c->height = height;
    return 0;
}

void td_canvas_free(struct td_canvas *c)
{
    free(c->px);
    c->px = NULL;
    c->width = c->height = 0;
}

/* Intersects r with the w x h area; returns 0 when nothing is left. */
static int td_clip(struct td_rect *r, int w, int h)
{
    if (r->x < 0) {
        r->w += r->x;
        r->x = 0;
    }
    if (r->y < 0) {
        r->h += r->y;
        r->y = 0;
    }
    if (r->x + r->w > w)
        r->w = w - r->x;
    if (r->y + r->h > h)
        r->h = h - r->y;
    return r->w > 0 && r->h > 0;
}

void td_canvas_fill(struct td_canvas *c, struct td_rect r, uint32_t color)
{
    if (!td_clip(&r, c->width, c->height))
        return;
    for (int y = r.y; y < r.y + r.h; y++) {
        uint32_t *row = c->px + (size_t)y * c->width + r.x;
        for (int x = 0; x < r.w; x++)
            row[x] = color;
    }
}

static void td_canvas_glyph(struct td_canvas *c, int x, int y, unsigned char ch,
                            uint32_t fg, uint32_t bg)
{
    const uint8_t *g = td_font_glyph(ch);
    for (int gy = 0; gy < TD_FONT_H; gy++) {
        int py = y + gy;
        if (py < 0 || py >= c->height)
            continue;
        for (int gx = 0; gx < TD_FONT_W; gx++) {
            int px = x + gx;
            if (px < 0 || px >= c->width)
                continue;
            c->px[(size_t)py * c->width + px] =
                (g[gy] & (0x80 >> gx)) ? fg : bg;
        }
    }
}

int td_canvas_text(struct td_canvas *c, int x, int y, const char *text,
                   int max_chars, uint32_t fg, uint32_t bg)
{
    int n = 0;
    for (; text[n] && n < max_chars; n++)
        td_canvas_glyph(c, x + n * TD_FONT_W, y, (unsigned char)text[n], fg,
                        bg);
    return n;
}

void td_canvas_copy(struct td_canvas *dst, int x, int y,
                    const struct td_canvas *src, struct td_rect r)
{
    /* Clip the source, then the destination, moving both origins alike. */
    struct td_rect d;
    int ox = r.x, oy = r.y;
    if (!td_clip(&r, src->width, src->height))
        return;
    d.x = x + (r.x - ox);
    d.y = y + (r.y - oy);
    d.w = r.w;
    d.h = r.h;
    ox = d.x;
    oy = d.y;
    if (!td_clip(&d, dst->width, dst->height))
        return;
    r.x += d.x - ox;
    r.y += d.y - oy;
    for (int row = 0; row < d.h; row++)
        memcpy(dst->px + (size_t)(d.y + row) * dst->width + d.x,
               src->px + (size_t)(r.y + row) * src->width + r.x,
               (size_t)d.w * sizeof(uint32_t));
}

uint32_t td_canvas_get(const struct td_canvas *c, int x, int y)
{
    if (x < 0 || y < 0 || x >= c->width || y >= c->height)
        return 0;
    return c->px[(size_t)y * c->width + x];
}
