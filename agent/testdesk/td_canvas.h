/*
 * td_canvas.h - an in-memory XRGB8888 picture and the few drawing primitives
 * testdesk needs. Everything clips to the canvas, so callers never check
 * bounds. Drawing is deterministic: the same calls give the same pixels.
 */
#ifndef TD_CANVAS_H
#define TD_CANVAS_H

#include <stddef.h>
#include <stdint.h>

#include "td_layout.h"

struct td_canvas {
    uint32_t *px; /* width * height pixels, row-major, 0x00RRGGBB */
    int width, height;
};

/* Allocates a width x height canvas filled with black. Returns 0 or
 * -ENOMEM / -EINVAL. Release with td_canvas_free(). */
int td_canvas_init(struct td_canvas *c, int width, int height);
void td_canvas_free(struct td_canvas *c);

void td_canvas_fill(struct td_canvas *c, struct td_rect r, uint32_t color);

/* Draws text from (x, y), one glyph cell per byte, with a solid background;
 * stops at max_chars characters (or the string's end). Returns the number of
 * characters drawn. */
int td_canvas_text(struct td_canvas *c, int x, int y, const char *text,
                   int max_chars, uint32_t fg, uint32_t bg);

/* Copies the src rectangle of src to (x, y) of dst (same-size canvases or
 * not; clipped to both). */
void td_canvas_copy(struct td_canvas *dst, int x, int y,
                    const struct td_canvas *src, struct td_rect r);

/* The pixel at (x, y), or 0 outside the canvas. */
uint32_t td_canvas_get(const struct td_canvas *c, int x, int y);

#endif
