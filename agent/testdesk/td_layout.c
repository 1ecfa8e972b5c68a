/*
 * td_layout.c - testdesk's screen layout as a function of the framebuffer
 * size. See td_layout.h for the contract with the tests.
 */
#include "td_layout.h"

#include <errno.h>

/* Widest hostname shown in the top bar, in characters; on narrow screens
 * it gets at most a fifth of the width. */
#define TD_HOSTNAME_CHARS     24
#define TD_LOGOFF_LABEL_CHARS 7 /* "Log off" */

static struct td_rect td_rect_make(int x, int y, int w, int h)
{
    struct td_rect r = {x, y, w, h};
    return r;
}

/* Vertical offset that centres a glyph row in the top bar. */
static int td_layout_bar_text_y(void)
{
    return (TD_TOPBAR_H - TD_FONT_H) / 2;
}

static void td_layout_topbar(struct td_layout *l)
{
    int ty = td_layout_bar_text_y();
    int clock_w = TD_CLOCK_CHARS * TD_FONT_W;
    int button_w = TD_LOGOFF_LABEL_CHARS * TD_FONT_W + 2 * TD_TEXT_PAD;

    l->topbar = td_rect_make(0, 0, l->width, TD_TOPBAR_H);
    int host_chars = l->width / 5 / TD_FONT_W;

    if (host_chars > TD_HOSTNAME_CHARS)
        host_chars = TD_HOSTNAME_CHARS;
    l->hostname =
        td_rect_make(TD_TEXT_PAD, ty, host_chars * TD_FONT_W, TD_FONT_H);
    l->clock =
        td_rect_make(l->width - TD_TEXT_PAD - clock_w, ty, clock_w, TD_FONT_H);
    /* The button spans the bar's height minus a 2 px margin; its label
     * starts TD_TEXT_PAD inside. */
    l->logoff = td_rect_make(l->clock.x - 2 * TD_TEXT_PAD - button_w, 2,
                             button_w, TD_TOPBAR_H - 4);
    /* The user text takes what is left between hostname and button. */
    l->user.x = l->hostname.x + l->hostname.w + 2 * TD_TEXT_PAD;
    l->user.y = ty;
    l->user.w = l->logoff.x - TD_TEXT_PAD - l->user.x;
    l->user.h = TD_FONT_H;
}

static void td_layout_window(struct td_layout *l)
{
    int margin = l->width / 16;
    int top = TD_TOPBAR_H + l->height / 8;
    int text_w, text_h;

    l->banner =
        td_rect_make(0, TD_TOPBAR_H, l->width, TD_FONT_H + 2 * TD_TEXT_PAD);
    l->window = td_rect_make(margin, top, l->width - 2 * margin,
                             l->height - top - l->height / 8);
    l->label = td_rect_make(l->window.x + 2 * TD_TEXT_PAD,
                            l->window.y + 2 * TD_TEXT_PAD,
                            l->window.w - 4 * TD_TEXT_PAD, TD_FONT_H);
    l->textbox.x = l->window.x + 2 * TD_TEXT_PAD;
    l->textbox.y = l->label.y + TD_FONT_H + 2 * TD_TEXT_PAD;
    l->textbox.w = l->window.w - 4 * TD_TEXT_PAD;
    l->textbox.h = l->window.y + l->window.h - 2 * TD_TEXT_PAD - l->textbox.y;

    /* Whole cells only, so the box's right and bottom edges stay blank. */
    text_w = l->textbox.w - 2 * TD_TEXT_PAD;
    text_h = l->textbox.h - 2 * TD_TEXT_PAD;
    l->text_cols = text_w / TD_FONT_W;
    l->text_rows = text_h / TD_FONT_H;
}

static void td_layout_lock(struct td_layout *l)
{
    int text_w = (int)(sizeof(TD_LOCK_TEXT) - 1) * TD_FONT_W;

    l->lock = td_rect_make(0, TD_TOPBAR_H, l->width, l->height - TD_TOPBAR_H);
    l->lock_text = td_rect_make((l->width - text_w) / 2,
                                TD_TOPBAR_H + (l->lock.h - TD_FONT_H) / 2,
                                text_w, TD_FONT_H);
}

int td_layout_compute(struct td_layout *l, int width, int height)
{
    if (width < TD_MIN_WIDTH || height < TD_MIN_HEIGHT)
        return -EINVAL;
    l->width = width;
    l->height = height;
    td_layout_topbar(l);
    td_layout_window(l);
    td_layout_lock(l);
    return 0;
}

void td_layout_text_cell(const struct td_layout *l, int col, int row, int *x,
                         int *y)
{
    *x = l->textbox.x + TD_TEXT_PAD + col * TD_FONT_W;
    *y = l->textbox.y + TD_TEXT_PAD + row * TD_FONT_H;
}

uint32_t td_layout_wallpaper(const struct td_layout *l, int x, int y)
{
    /* A teal-to-blue diagonal gradient with faint 32 px stripes: varied
     * enough that a wrongly placed copy shows, cheap to recompute. */
    unsigned t = (unsigned)(x + y) * 255u / (unsigned)(l->width + l->height);
    unsigned stripe = ((unsigned)(x + y) / 32u) & 1u ? 8u : 0u;
    unsigned r = 20u + t / 8u;
    unsigned g = 90u + t / 3u - stripe;
    unsigned b = 120u + t / 2u;
    return (r << 16) | (g << 8) | b;
}

int td_rect_contains(const struct td_rect *r, int x, int y)
{
    return x >= r->x && y >= r->y && x < r->x + r->w && y < r->y + r->h;
}
