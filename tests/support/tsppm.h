/*
 * tsppm.h - load binary PPM images (QEMU screendumps) for pixel checks.
 *
 * QMP `screendump` writes a binary P6 PPM with maxval 255. Tests load it
 * here and compare pixels against testdesk's layout contract, which speaks
 * in 0x00RRGGBB values (XRGB8888), so the loader converts to that format.
 *
 * The parser is bounded: the header must fit in a few hundred bytes, sizes
 * above TSPPM_MAX_DIM are refused, and a short pixel block is an error, so a
 * half-written or hostile file never causes more than a clean failure.
 */
#ifndef TSPPM_H
#define TSPPM_H

#include <stdint.h>

/* Largest width or height accepted, in pixels. */
#define TSPPM_MAX_DIM 16384

/* Returned by tsppm_pixel() for coordinates outside the image; no XRGB
 * pixel has a non-zero top byte, so it never equals a real colour. */
#define TSPPM_NO_PIXEL 0xff000000u

/* A loaded image; opaque, owned by the caller of tsppm_load(). */
struct tsppm;

/*
 * Loads the P6 PPM at path into *out. Comments ('#' to end of line) are
 * accepted wherever the format allows whitespace in the header. Returns 0,
 * or a negative errno: -ENOENT etc. from opening/reading, -EINVAL for a file
 * that is not a P6 PPM with maxval 255, -EFBIG for a width or height above
 * TSPPM_MAX_DIM, -ENODATA for truncated pixel data, -ENOMEM. *out is NULL on
 * failure. The reason is printed to stderr.
 */
int tsppm_load(const char *path, struct tsppm **out);

/* Frees an image from tsppm_load(); NULL is fine. */
void tsppm_free(struct tsppm *img);

/* Size of the image in pixels. */
int tsppm_width(const struct tsppm *img);
int tsppm_height(const struct tsppm *img);

/*
 * The pixel at (x, y) as 0x00RRGGBB, or TSPPM_NO_PIXEL when (x, y) lies
 * outside the image.
 */
uint32_t tsppm_pixel(const struct tsppm *img, int x, int y);

/*
 * All pixels, row after row, width * height values without padding. Owned
 * by img and valid until tsppm_free(img).
 */
const uint32_t *tsppm_pixels(const struct tsppm *img);

#endif
