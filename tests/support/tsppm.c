/*
 * tsppm.c - bounded loader for binary P6 PPM images (see tsppm.h).
 */
#include "tsppm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A real P6 header is about 15 bytes; allow room for a few comments but no
 * more, so a file without pixel data cannot keep the parser reading. */
#define TSPPM_MAX_HEADER 4096

struct tsppm {
    int width, height;
    uint32_t *px;
};

/* Header reader: a FILE plus a count of header bytes consumed. */
struct tsppm_reader {
    FILE *f;
    size_t used;
};

static int tsppm_getc(struct tsppm_reader *r)
{
    if (r->used++ >= TSPPM_MAX_HEADER)
        return EOF;
    return getc(r->f);
}

static int tsppm_is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* Skips whitespace and comments; returns the first other character. */
static int tsppm_skip_space(struct tsppm_reader *r)
{
    int c = tsppm_getc(r);

    for (;;) {
        if (c == '#') {
            while (c != '\n' && c != '\r' && c != EOF)
                c = tsppm_getc(r);
        } else if (!tsppm_is_space(c)) {
            return c;
        }
        c = tsppm_getc(r);
    }
}

/*
 * Reads one header number that must be in 1..max, followed by exactly one
 * whitespace character (or a comment, which ends in one). Values above max
 * give -EFBIG so that oversized images are told apart from garbage.
 */
static int tsppm_read_number(struct tsppm_reader *r, int max, int *out)
{
    int c = tsppm_skip_space(r);
    long v = 0;

    if (c < '0' || c > '9')
        return -EINVAL;
    while (c >= '0' && c <= '9') {
        v = v * 10 + (c - '0');
        if (v > max)
            return -EFBIG;
        c = tsppm_getc(r);
    }
    if (c == '#') {
        while (c != '\n' && c != '\r' && c != EOF)
            c = tsppm_getc(r);
    }
    if (!tsppm_is_space(c) || v < 1)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

static int tsppm_read_header(struct tsppm_reader *r, int *w, int *h)
{
    int maxval, err;

    if (tsppm_getc(r) != 'P' || tsppm_getc(r) != '6')
        return -EINVAL;
    err = tsppm_read_number(r, TSPPM_MAX_DIM, w);
    if (!err)
        err = tsppm_read_number(r, TSPPM_MAX_DIM, h);
    if (!err)
        err = tsppm_read_number(r, 65535, &maxval);
    if (!err && maxval != 255)
        err = -EINVAL; /* 16-bit samples: QEMU never writes them */
    return err;
}

/* Reads width * height RGB triplets and packs them as 0x00RRGGBB. */
static int tsppm_read_pixels(FILE *f, struct tsppm *img)
{
    size_t row_bytes = (size_t)img->width * 3;
    unsigned char *row = malloc(row_bytes);
    int err = 0;

    if (!row)
        return -ENOMEM;
    for (int y = 0; y < img->height && !err; y++) {
        uint32_t *dst = img->px + (size_t)y * (size_t)img->width;
        if (fread(row, 1, row_bytes, f) != row_bytes) {
            err = -ENODATA;
            break;
        }
        for (int x = 0; x < img->width; x++) {
            const unsigned char *p = row + (size_t)x * 3;
            dst[x] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        }
    }
    free(row);
    return err;
}

/* Refuses a header whose pixel data cannot be in the file, before
 * allocating for it: a 30-byte file must not cost a gigabyte. */
static int tsppm_check_size(FILE *f, int w, int h)
{
    struct stat st;
    long pos = ftell(f);

    if (pos < 0 || fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode))
        return 0; /* not a plain file: the read will tell */
    if ((unsigned long long)(st.st_size - pos) <
        (unsigned long long)w * (unsigned long long)h * 3)
        return -ENODATA;
    return 0;
}

static const char *tsppm_strerror(int err)
{
    switch (err) {
    case -EINVAL: return "not a binary PPM (P6, maxval 255)";
    case -EFBIG: return "image larger than 16384 pixels in a dimension";
    case -ENODATA: return "pixel data truncated";
    default: return strerror(-err);
    }
}

int tsppm_load(const char *path, struct tsppm **out)
{
    struct tsppm_reader r = {NULL, 0};
    struct tsppm *img = NULL;
    int w = 0, h = 0, err;

    *out = NULL;
    r.f = fopen(path, "rbe");
    if (!r.f) {
        err = -errno;
        fprintf(stderr, "tsppm: %s: %s\n", path, strerror(errno));
        return err;
    }
    err = tsppm_read_header(&r, &w, &h);
    if (!err)
        err = tsppm_check_size(r.f, w, h);
    if (!err) {
        img = calloc(1, sizeof(*img));
        if (img)
            img->px = malloc((size_t)w * (size_t)h * sizeof(uint32_t));
        if (!img || !img->px)
            err = -ENOMEM;
    }
    if (!err) {
        img->width = w;
        img->height = h;
        err = tsppm_read_pixels(r.f, img);
    }
    fclose(r.f);
    if (err) {
        fprintf(stderr, "tsppm: %s: %s\n", path, tsppm_strerror(err));
        tsppm_free(img);
        return err;
    }
    *out = img;
    return 0;
}

void tsppm_free(struct tsppm *img)
{
    if (!img)
        return;
    free(img->px);
    free(img);
}

int tsppm_width(const struct tsppm *img)
{
    return img->width;
}

int tsppm_height(const struct tsppm *img)
{
    return img->height;
}

uint32_t tsppm_pixel(const struct tsppm *img, int x, int y)
{
    if (x < 0 || y < 0 || x >= img->width || y >= img->height)
        return TSPPM_NO_PIXEL;
    return img->px[(size_t)y * (size_t)img->width + (size_t)x];
}

const uint32_t *tsppm_pixels(const struct tsppm *img)
{
    return img->px;
}
