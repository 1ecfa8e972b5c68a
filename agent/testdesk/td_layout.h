/*
 * td_layout.h - where testdesk draws things, and in which colours.
 *
 * testdesk is the framebuffer desktop of Deskpool's test guest. Its screen is
 * deterministic: everything except the clock and the workload animations is a
 * pure function of the framebuffer size and of the desktop state. This header
 * is the contract between testdesk and the tests that look at its pixels from
 * outside the guest (QMP screendump, VNC, RDP): they call td_layout_compute()
 * with the size they see and find every element where testdesk drew it.
 *
 * Pixels are 0x00RRGGBB values (XRGB8888, the vesafb and QEMU native format).
 */
#ifndef TD_LAYOUT_H
#define TD_LAYOUT_H

#include <stdint.h>

/* Glyph cell of the built-in font (see td_font.h). */
#define TD_FONT_W 8
#define TD_FONT_H 16

/* Height of the top bar and padding around text inside boxes. */
#define TD_TOPBAR_H 24
#define TD_TEXT_PAD 4

/* Smallest framebuffer testdesk lays out; smaller ones are refused. */
#define TD_MIN_WIDTH  320
#define TD_MIN_HEIGHT 240

/* Colours. The pointer colour is used nowhere else, so a test can find the
 * pointer by looking for it. */
#define TD_COLOR_TOPBAR       0x1f2a44u
#define TD_COLOR_TOPBAR_TEXT  0xffffffu
#define TD_COLOR_LOGOFF       0xc0392bu
#define TD_COLOR_LOGOFF_TEXT  0xffffffu
#define TD_COLOR_WINDOW       0xd8dce3u
#define TD_COLOR_WINDOW_TEXT  0x1f2a44u
#define TD_COLOR_TEXTBOX      0xffffffu
#define TD_COLOR_TEXT         0x000000u
#define TD_COLOR_BANNER       0xf4d03fu
#define TD_COLOR_BANNER_TEXT  0x000000u
#define TD_COLOR_POINTER      0xff00ffu
#define TD_COLOR_POINTER_EDGE 0x000000u
/* The lock screen: the top bar's colour under it, white text. */
#define TD_COLOR_LOCK      TD_COLOR_TOPBAR
#define TD_COLOR_LOCK_TEXT 0xffffffu
/* Framebuffer pixels outside a desk smaller than the screen. */
#define TD_COLOR_OUTSIDE 0x000000u

/* The lock screen's text, centred in the lock rectangle. */
#define TD_LOCK_TEXT "Locked - press Enter to unlock"

/* Size of the pointer marker; its hotspot is its top-left pixel. */
#define TD_POINTER_SIZE 12

/* An axis-aligned rectangle in framebuffer pixels. */
struct td_rect {
    int x, y, w, h;
};

/*
 * The positions of everything testdesk draws for one desk size (the
 * framebuffer's unless the desk was made smaller).
 * Text strings are drawn with their first glyph cell at the rectangle's
 * top-left corner (x, y), one TD_FONT_W x TD_FONT_H cell per character.
 */
struct td_layout {
    int width, height;        /* desk size in pixels: the framebuffer's, or
                                 less after a "resolution" command (the desk
                                 is then drawn at the framebuffer's top-left
                                 and the rest is TD_COLOR_OUTSIDE) */
    struct td_rect topbar;    /* full width, TD_TOPBAR_H high, at the top */
    struct td_rect hostname;  /* left of the top bar */
    struct td_rect user;      /* "user: NAME" or "user: (none)", mid top bar */
    struct td_rect logoff;    /* the "Log off" button, right of the top bar */
    struct td_rect clock;     /* "HH:MM:SS", right end of the top bar */
    struct td_rect banner;    /* message banner under the top bar */
    struct td_rect window;    /* the text window on the wallpaper */
    struct td_rect label;     /* "Type here:" caption inside the window */
    struct td_rect textbox;   /* white box that echoes typed keys */
    int text_cols, text_rows; /* character cells inside the text box */
    /* The lock screen: everything under the top bar, and its text
     * (TD_LOCK_TEXT) centred in it. While locked, these replace the banner,
     * the wallpaper and the window; the top bar and the pointer stay. */
    struct td_rect lock;
    struct td_rect lock_text;
};

/* Characters of the clock text, "HH:MM:SS". */
#define TD_CLOCK_CHARS 8

/*
 * Fills *l for a width x height desk. Returns 0, or -EINVAL when the
 * size is below TD_MIN_WIDTH x TD_MIN_HEIGHT (the layout is then unusable).
 */
int td_layout_compute(struct td_layout *l, int width, int height);

/*
 * Top-left pixel of text cell (col, row) of the text box. The caller keeps
 * col < text_cols and row < text_rows.
 */
void td_layout_text_cell(const struct td_layout *l, int col, int row, int *x,
                         int *y);

/* The wallpaper colour at (x, y): a deterministic diagonal gradient. */
uint32_t td_layout_wallpaper(const struct td_layout *l, int x, int y);

/* True when (x, y) lies inside r. */
int td_rect_contains(const struct td_rect *r, int x, int y);

#endif
