/*
 * td_fb.h - the Linux framebuffer (/dev/fb0) as testdesk's screen.
 *
 * td_fb_present() writes only the pixels that changed since the previous
 * present, so an idle desktop touches only the clock: the hypervisor sees
 * few dirty pages and a remote display sends little.
 */
#ifndef TD_FB_H
#define TD_FB_H

#include "td_canvas.h"

struct td_fb;

/* Opens and maps the framebuffer device and switches the console to
 * graphics mode so the kernel's text console does not draw over us.
 * Supports 16, 24 and 32 bits per pixel truecolour. Returns 0 or -errno. */
int td_fb_open(struct td_fb **out, const char *path);
void td_fb_close(struct td_fb *fb);

void td_fb_size(const struct td_fb *fb, int *width, int *height, int *bpp);

/* Shows canvas c (of the framebuffer's size). Returns the number of pixel
 * rows written. */
int td_fb_present(struct td_fb *fb, const struct td_canvas *c);

/* td_fb_present() looking at rows y0 (inclusive) to y1 (exclusive) only:
 * the caller knows the others did not change (td_desk_render_clock()).
 * The first present of a framebuffer always looks at every row. */
int td_fb_present_rows(struct td_fb *fb, const struct td_canvas *c, int y0,
                       int y1);

#endif
