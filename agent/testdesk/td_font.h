/*
 * td_font.h - testdesk's built-in 8x16 bitmap font.
 *
 * The glyphs for printable ASCII (0x20-0x7e) are generated at build time from
 * Debian's psf-unifont console font by mkfont.c, so no font data is kept in
 * the source tree and no file is read at run time.
 */
#ifndef TD_FONT_H_INCLUDED
#define TD_FONT_H_INCLUDED

#include <stdint.h>

/*
 * Returns the TD_FONT_H rows of the glyph for c, one byte per row, the most
 * significant bit being the leftmost pixel. Characters outside 0x20-0x7e get
 * the glyph of '?'. Never returns NULL.
 */
const uint8_t *td_font_glyph(unsigned char c);

/* True when pixel (x, y) of c's glyph is set (0 <= x < 8, 0 <= y < 16). */
int td_font_pixel(unsigned char c, int x, int y);

#endif
