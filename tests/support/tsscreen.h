/*
 * tsscreen.h - pixel checks on a test guest's screen against testdesk's
 * layout contract (td_layout.h, td_font.h): glyph cells, filled areas,
 * the pointer marker, and keeping a failed screen for CI.
 *
 * Every check reads a struct tsscreen: a borrowed view of XRGB8888 pixels
 * (0x00RRGGBB), rows stride bytes apart. Both a loaded screendump
 * (tsscreen_from_ppm()) and ds_source's framebuffer (tsscreen_view() on
 * struct ds_source_fb's fields) give one, so the same code checks what
 * QMP and what VNC show. A view owns nothing and is valid as long as the
 * pixels it points at.
 *
 * Differences are gathered in a struct tsscreen_diff (how many pixels
 * differ and the first of them) so that a test can say what is wrong in
 * one failure message. Nothing here asserts: the test decides what a
 * difference means.
 */
#ifndef TSSCREEN_H
#define TSSCREEN_H

#include <stddef.h>
#include <stdint.h>

#include "td_layout.h"
#include "tsppm.h"

/* tsscreen_pixel() outside the screen; never equals an XRGB colour. */
#define TSSCREEN_NO_PIXEL TSPPM_NO_PIXEL

/* A view of width x height pixels, rows stride bytes apart. */
struct tsscreen {
    const uint32_t *pixels;
    int width, height;
    int stride;
};

/* The view of pixels (borrowed); stride in bytes, at least width * 4. */
struct tsscreen tsscreen_view(const uint32_t *pixels, int width, int height,
                              int stride);

/* The view of a loaded screendump, valid until tsppm_free(img). */
struct tsscreen tsscreen_from_ppm(const struct tsppm *img);

/* The pixel at (x, y), or TSSCREEN_NO_PIXEL when it lies outside. */
uint32_t tsscreen_pixel(const struct tsscreen *s, int x, int y);

/* --- the pointer marker --------------------------------------------------- */

/*
 * The pointer marker's hotspot: its top-left TD_COLOR_POINTER pixel (the
 * topmost row, then the leftmost pixel in it). Returns 0 with (*px, *py)
 * set, or -ENOENT when no marker pixel shows.
 */
int tsscreen_find_pointer(const struct tsscreen *s, int *px, int *py);

/* The square a marker drawn with its hotspot at (x, y) may cover. */
struct td_rect tsscreen_pointer_rect(int x, int y);

/*
 * How many pixels of colour lie inside r (in != 0) or outside it (in ==
 * 0), e.g. marker pixels left where the pointer no longer is.
 */
int tsscreen_count_color(const struct tsscreen *s, uint32_t color,
                         const struct td_rect *r, int in);

/* --- text ----------------------------------------------------------------- */

/*
 * The colour testdesk draws at (x, y) for text drawn from (tx, ty) in fg
 * on bg: the glyphs' pixels inside the text's cells, bg everywhere else.
 */
uint32_t tsscreen_text_pixel(int x, int y, int tx, int ty, const char *text,
                             uint32_t fg, uint32_t bg);

/*
 * The first inked pixel of c's glyph (row by row), as an offset from its
 * cell's corner; -ENOENT for a blank glyph (a space).
 */
int tsscreen_glyph_ink(unsigned char c, int *gx, int *gy);

/*
 * Does the text box's first row (laid out for s's size) show exactly text
 * and then a blank cell (no repeated key), the pointer marker masked? 0 when it
 * does; else the number of differing pixels in the first wrong cell, with why
 * (when not NULL) set to "text box should read \"TEXT\": cell (C,0) should show
 * 'X' but N of its pixels differ (first at (X,Y): 0xGOT)".
 */
int tsscreen_textbox_why(const struct tsscreen *s, const char *text, char *why,
                         size_t why_size);

/* --- differences ---------------------------------------------------------- */

/*
 * Pixels that differ from what is expected: how many, and the first one.
 * Pixels inside mask are not compared (an empty mask, as in a zeroed
 * struct, skips nothing). Start from {0} or tsscreen_diff_init().
 */
struct tsscreen_diff {
    struct td_rect mask;
    int count;
    int x, y;
    uint32_t got, want;
};

/*
 * Zeroes d and masks the pointer marker found on s, if any: it may sit
 * anywhere on the screen.
 */
void tsscreen_diff_init(struct tsscreen_diff *d, const struct tsscreen *s);

/* Notes pixel (x, y) holding got where want was expected. */
void tsscreen_diff_value(struct tsscreen_diff *d, int x, int y, uint32_t got,
                         uint32_t want);

/* Compares pixel (x, y) of s with want. */
void tsscreen_diff_pixel(struct tsscreen_diff *d, const struct tsscreen *s,
                         int x, int y, uint32_t want);

/* Compares every pixel of r with want. */
void tsscreen_diff_rect(struct tsscreen_diff *d, const struct tsscreen *s,
                        struct td_rect r, uint32_t want);

/* Compares the text cell at (x, y) with the glyph of c in fg on bg. */
void tsscreen_diff_glyph(struct tsscreen_diff *d, const struct tsscreen *s,
                         int x, int y, unsigned char c, uint32_t fg,
                         uint32_t bg);

/*
 * Does the top bar's hostname (laid out for s's size) read exactly want?
 * 0 when it does; else the number of differing pixels, with why set as
 * tsscreen_diff_why() does ("the top bar's hostname should read \"WANT\"
 * : ...").
 */
int tsscreen_hostname_why(const struct tsscreen *s, const char *want, char *why,
                          size_t why_size);

/* Compares the cells of text, drawn from (x, y) in fg on bg. */
void tsscreen_diff_text(struct tsscreen_diff *d, const struct tsscreen *s,
                        int x, int y, const char *text, uint32_t fg,
                        uint32_t bg);

/*
 * Returns 0 when d holds no difference; else d's count, with why set to
 * "WHAT: N pixels differ, first at (X,Y): 0xGOT, expected 0xWANT".
 */
int tsscreen_diff_why(const struct tsscreen_diff *d, const char *what,
                      char *why, size_t why_size);

/* --- keeping a screen for CI ---------------------------------------------- */

/*
 * Where CI keeps a test's screens: $DESKPOOL_BUILD_DIR/tests/integration/
 * TEST-NAME.ppm. -ENOENT when DESKPOOL_BUILD_DIR is not set,
 * -ENAMETOOLONG when the path does not fit in buf.
 */
int tsscreen_keep_path(const char *test, const char *name, char *buf,
                       size_t size);

/*
 * Writes s as a binary PPM to tsscreen_keep_path(test, name) and says so
 * on stderr, so that a failure can be looked at. Returns 0, -ENOENT
 * without DESKPOOL_BUILD_DIR, or a negative errno from writing.
 */
int tsscreen_keep(const struct tsscreen *s, const char *test, const char *name);

/*
 * Copies the file at src (e.g. a QMP screendump, byte for byte) to
 * tsscreen_keep_path(test, name), saying so on stderr. Returns 0 or a
 * negative errno as tsscreen_keep() does.
 */
int tsscreen_keep_file(const char *src, const char *test, const char *name);

#endif
