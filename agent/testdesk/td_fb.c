/*
 * td_fb.c - framebuffer output with change detection (see td_fb.h).
 */
#include "td_fb.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <linux/kd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct td_fb {
    int fd, tty_fd;
    uint8_t *mem;
    size_t mem_len;
    struct fb_var_screeninfo var;
    unsigned stride, bytes_pp;
    struct td_canvas shadow; /* what the screen shows now */
    int shown;               /* shadow valid (after the first present) */
};

/* Keeps the kernel console from blinking a cursor or printing on our
 * pixels. Failure is not fatal: tests then see console text, not a hang. */
static int td_fb_graphics_mode(void)
{
    int fd = open("/dev/tty0", O_RDWR | O_CLOEXEC);
    if (fd >= 0 && ioctl(fd, KDSETMODE, KD_GRAPHICS) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int td_fb_setup(struct td_fb *fb)
{
    struct fb_fix_screeninfo fix;

    if (ioctl(fb->fd, FBIOGET_VSCREENINFO, &fb->var) < 0 ||
        ioctl(fb->fd, FBIOGET_FSCREENINFO, &fix) < 0)
        return -errno;
    if (fix.visual != FB_VISUAL_TRUECOLOR ||
        (fb->var.bits_per_pixel != 16 && fb->var.bits_per_pixel != 24 &&
         fb->var.bits_per_pixel != 32))
        return -ENOTSUP;
    fb->bytes_pp = fb->var.bits_per_pixel / 8;
    fb->stride = fix.line_length;
    fb->mem_len = fix.smem_len;
    if ((size_t)fb->stride * fb->var.yres > fb->mem_len)
        return -EINVAL;
    fb->mem =
        mmap(NULL, fb->mem_len, PROT_READ | PROT_WRITE, MAP_SHARED, fb->fd, 0);
    if (fb->mem == MAP_FAILED) {
        fb->mem = NULL;
        return -errno;
    }
    return td_canvas_init(&fb->shadow, (int)fb->var.xres, (int)fb->var.yres);
}

int td_fb_open(struct td_fb **out, const char *path)
{
    struct td_fb *fb = calloc(1, sizeof(*fb));
    int rc;

    if (!fb)
        return -ENOMEM;
    fb->tty_fd = -1;
    fb->fd = open(path, O_RDWR | O_CLOEXEC);
    if (fb->fd < 0) {
        rc = -errno;
        free(fb);
        return rc;
    }
    rc = td_fb_setup(fb);
    if (rc < 0) {
        td_fb_close(fb);
        return rc;
    }
    fb->tty_fd = td_fb_graphics_mode();
    *out = fb;
    return 0;
}

void td_fb_close(struct td_fb *fb)
{
    if (!fb)
        return;
    if (fb->tty_fd >= 0) {
        ioctl(fb->tty_fd, KDSETMODE, KD_TEXT);
        close(fb->tty_fd);
    }
    if (fb->mem)
        munmap(fb->mem, fb->mem_len);
    td_canvas_free(&fb->shadow);
    close(fb->fd);
    free(fb);
}

void td_fb_size(const struct td_fb *fb, int *width, int *height, int *bpp)
{
    *width = (int)fb->var.xres;
    *height = (int)fb->var.yres;
    *bpp = (int)fb->var.bits_per_pixel;
}

/* Scales an 8-bit channel into the framebuffer's bitfield. */
static uint32_t td_fb_channel(uint32_t v8, const struct fb_bitfield *f)
{
    return (v8 >> (8 - f->length)) << f->offset;
}

static uint32_t td_fb_pixel(const struct td_fb *fb, uint32_t xrgb)
{
    return td_fb_channel((xrgb >> 16) & 0xff, &fb->var.red) |
           td_fb_channel((xrgb >> 8) & 0xff, &fb->var.green) |
           td_fb_channel(xrgb & 0xff, &fb->var.blue);
}

static void td_fb_write_span(struct td_fb *fb, const uint32_t *src, int y,
                             int x0, int x1)
{
    uint8_t *dst = fb->mem + (size_t)y * fb->stride + (size_t)x0 * fb->bytes_pp;
    int native = fb->bytes_pp == 4 && fb->var.red.offset == 16 &&
                 fb->var.green.offset == 8 && fb->var.blue.offset == 0;

    if (native) {
        memcpy(dst, src + x0, (size_t)(x1 - x0) * 4);
        return;
    }
    for (int x = x0; x < x1; x++, dst += fb->bytes_pp) {
        uint32_t p = td_fb_pixel(fb, src[x]);
        memcpy(dst, &p, fb->bytes_pp); /* little-endian: low bytes first */
    }
}

int td_fb_present(struct td_fb *fb, const struct td_canvas *c)
{
    return td_fb_present_rows(fb, c, 0, c->height);
}

int td_fb_present_rows(struct td_fb *fb, const struct td_canvas *c, int y0,
                       int y1)
{
    int rows = 0, w = fb->shadow.width;

    if (c->width != w || c->height != fb->shadow.height)
        return -EINVAL;
    if (!fb->shown || y0 < 0)
        y0 = 0;
    if (!fb->shown || y1 > c->height)
        y1 = c->height;
    for (int y = y0; y < y1; y++) {
        const uint32_t *src = c->px + (size_t)y * w;
        uint32_t *old = fb->shadow.px + (size_t)y * w;
        int x0 = 0, x1 = w;

        if (fb->shown) {
            while (x0 < w && src[x0] == old[x0])
                x0++;
            if (x0 == w)
                continue;
            while (src[x1 - 1] == old[x1 - 1])
                x1--;
        }
        td_fb_write_span(fb, src, y, x0, x1);
        memcpy(old + x0, src + x0, (size_t)(x1 - x0) * sizeof(*src));
        rows++;
    }
    fb->shown = 1;
    return rows;
}
