/*
 * td_font.c - access to the generated 8x16 glyph table (see td_font.h).
 */
#include "td_font.h"

#include "td_layout.h"

/* Generated from psf-unifont by mkfont.c: glyphs for 0x20..0x7e. */
extern const uint8_t td_font_data[0x7f - 0x20][TD_FONT_H];

const uint8_t *td_font_glyph(unsigned char c)
{
    if (c < 0x20 || c > 0x7e)
        c = '?';
    return td_font_data[c - 0x20];
}

int td_font_pixel(unsigned char c, int x, int y)
{
    if (x < 0 || x >= TD_FONT_W || y < 0 || y >= TD_FONT_H)
        return 0;
    return (td_font_glyph(c)[y] >> (7 - x)) & 1;
}
