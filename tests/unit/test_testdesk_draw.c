/*
 * Unit tests of testdesk's drawing: layout, font, canvas and the desk's
 * rendered picture. These check the pixels a user (or a screendump) sees.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "td_canvas.h"
#include "td_desk.h"
#include "td_font.h"
#include "td_layout.h"

/* True when the text cell at (x, y) shows ch in fg on bg, pixel for pixel. */
static int cell_shows(const struct td_canvas *c, int x, int y,
                      unsigned char ch, uint32_t fg, uint32_t bg)
{
    for (int gy = 0; gy < TD_FONT_H; gy++)
        for (int gx = 0; gx < TD_FONT_W; gx++)
            if (td_canvas_get(c, x + gx, y + gy) !=
                (td_font_pixel(ch, gx, gy) ? fg : bg))
                return 0;
    return 1;
}

static int text_cell_shows(const struct td_desk *d, const struct td_canvas *c,
                           int col, int row, unsigned char ch)
{
    int x, y;
    td_layout_text_cell(td_desk_layout(d), col, row, &x, &y);
    return cell_shows(c, x, y, ch, TD_COLOR_TEXT, TD_COLOR_TEXTBOX);
}

START_TEST(layout_fits_common_sizes)
{
    static const int sizes[][2] = {{1024, 768}, {800, 600}, {1920, 1080},
                                   {320, 240}, {2560, 1600}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
        struct td_layout l;
        int w = sizes[i][0], h = sizes[i][1];
        ck_assert_int_eq(td_layout_compute(&l, w, h), 0);
        /* Everything on screen, nothing overlapping in the top bar. */
        ck_assert_int_le(l.window.x + l.window.w, w);
        ck_assert_int_le(l.window.y + l.window.h, h);
        ck_assert_int_le(l.textbox.y + l.textbox.h, l.window.y + l.window.h);
        ck_assert_int_le(l.hostname.x + l.hostname.w, l.user.x);
        ck_assert_int_le(l.user.x + l.user.w, l.logoff.x);
        ck_assert_int_le(l.logoff.x + l.logoff.w, l.clock.x);
        ck_assert_int_le(l.clock.x + l.clock.w, w);
        ck_assert_int_gt(l.user.w, 0);
        ck_assert_int_ge(l.text_cols, 20);
        ck_assert_int_ge(l.text_rows, 3);
    }
}
END_TEST

START_TEST(layout_refuses_tiny_screens)
{
    struct td_layout l;
    ck_assert_int_eq(td_layout_compute(&l, 319, 240), -EINVAL);
    ck_assert_int_eq(td_layout_compute(&l, 320, 10), -EINVAL);
    ck_assert_ptr_null(td_desk_new(100, 100, "h"));
}
END_TEST

START_TEST(font_has_distinct_ascii_glyphs)
{
    /* Every printable character but space draws something, and no two
     * share a glyph: tests tell typed characters apart by their pixels. */
    for (int a = 0x21; a <= 0x7e; a++) {
        const uint8_t *ga = td_font_glyph((unsigned char)a);
        int lit = 0;
        for (int i = 0; i < TD_FONT_H; i++)
            lit |= ga[i];
        ck_assert_msg(lit, "glyph %c is blank", a);
        for (int b = a + 1; b <= 0x7e; b++)
            ck_assert_msg(memcmp(ga, td_font_glyph((unsigned char)b),
                                 TD_FONT_H) != 0,
                          "%c and %c look alike", a, b);
    }
    ck_assert_ptr_eq(td_font_glyph(0x01), td_font_glyph('?'));
    ck_assert_int_eq(td_font_pixel('A', 8, 0), 0);
}
END_TEST

START_TEST(canvas_clips_drawing)
{
    struct td_canvas c;
    ck_assert_int_eq(td_canvas_init(&c, 40, 20), 0);
    td_canvas_fill(&c, (struct td_rect){-10, -10, 15, 15}, 0x123456);
    ck_assert_uint_eq(td_canvas_get(&c, 4, 4), 0x123456);
    ck_assert_uint_eq(td_canvas_get(&c, 5, 5), 0);
    /* Text running off the right edge draws the visible part only. */
    ck_assert_int_eq(td_canvas_text(&c, 36, 2, "WW", 2, 0xffffff, 0x0), 2);
    td_canvas_fill(&c, (struct td_rect){30, 0, 100, 100}, 0xabcdef);
    ck_assert_uint_eq(td_canvas_get(&c, 39, 19), 0xabcdef);
    ck_assert_uint_eq(td_canvas_get(&c, 40, 0), 0);
    td_canvas_free(&c);
    ck_assert_int_eq(td_canvas_init(&c, 0, 10), -EINVAL);
}
END_TEST

START_TEST(desk_draws_the_top_bar)
{
    struct td_desk *d = td_desk_new(1024, 768, "deskpool-test");
    const struct td_layout *l = td_desk_layout(d);
    const struct td_canvas *c = td_desk_render(d, "12:34:56");
    const char *clock = "12:34:56", *host = "deskpool-test";

    for (int i = 0; clock[i]; i++)
        ck_assert(cell_shows(c, l->clock.x + i * TD_FONT_W, l->clock.y,
                             (unsigned char)clock[i], TD_COLOR_TOPBAR_TEXT,
                             TD_COLOR_TOPBAR));
    for (int i = 0; host[i]; i++)
        ck_assert(cell_shows(c, l->hostname.x + i * TD_FONT_W, l->hostname.y,
                             (unsigned char)host[i], TD_COLOR_TOPBAR_TEXT,
                             TD_COLOR_TOPBAR));
    ck_assert(cell_shows(c, l->user.x, l->user.y, 'u', TD_COLOR_TOPBAR_TEXT,
                         TD_COLOR_TOPBAR));
    ck_assert_uint_eq(td_canvas_get(c, l->logoff.x + 1, l->logoff.y + 1),
                      TD_COLOR_LOGOFF);
    ck_assert_uint_eq(td_canvas_get(c, 0, TD_TOPBAR_H - 1), TD_COLOR_TOPBAR);
    ck_assert_uint_eq(td_canvas_get(c, 1, TD_TOPBAR_H),
                      td_layout_wallpaper(l, 1, TD_TOPBAR_H));
    td_desk_free(d);
}
END_TEST

START_TEST(desk_echoes_typed_text)
{
    struct td_desk *d = td_desk_new(1024, 768, "h");
    const struct td_canvas *c;

    for (const char *p = "Hi!"; *p; p++)
        td_desk_key(d, *p);
    td_desk_key(d, '\n');
    td_desk_key(d, 'x');
    td_desk_key(d, 'y');
    td_desk_key(d, '\b');
    ck_assert_str_eq(td_desk_text(d), "Hi!\nx");
    c = td_desk_render(d, "00:00:00");
    ck_assert(text_cell_shows(d, c, 0, 0, 'H'));
    ck_assert(text_cell_shows(d, c, 1, 0, 'i'));
    ck_assert(text_cell_shows(d, c, 2, 0, '!'));
    ck_assert(text_cell_shows(d, c, 3, 0, ' '));
    ck_assert(text_cell_shows(d, c, 0, 1, 'x'));
    ck_assert(text_cell_shows(d, c, 1, 1, ' '));
    td_desk_free(d);
}
END_TEST

START_TEST(desk_wraps_and_scrolls_text)
{
    struct td_desk *d = td_desk_new(320, 240, "h");
    const struct td_layout *l = td_desk_layout(d);
    const struct td_canvas *c;

    /* Fill every row, then one more line: row 0 must scroll away. */
    for (int r = 0; r <= l->text_rows; r++)
        for (int i = 0; i < l->text_cols; i++)
            td_desk_key(d, (char)('a' + r % 26));
    c = td_desk_render(d, "00:00:00");
    ck_assert(text_cell_shows(d, c, 0, 0, 'b'));
    ck_assert(text_cell_shows(d, c, l->text_cols - 1, l->text_rows - 1,
                              (unsigned char)('a' + l->text_rows % 26)));
    /* Control characters are ignored, not drawn. */
    td_desk_clear_text(d);
    td_desk_key(d, 0x07);
    ck_assert_str_eq(td_desk_text(d), "");
    td_desk_free(d);
}
END_TEST

/* Position of the top-left pointer-coloured pixel (the hotspot). */
static void find_pointer(const struct td_canvas *c, int *px, int *py)
{
    *px = *py = -1;
    for (int y = 0; y < c->height && *py < 0; y++)
        for (int x = 0; x < c->width; x++)
            if (td_canvas_get(c, x, y) == TD_COLOR_POINTER) {
                *px = x;
                *py = y;
                break;
            }
}

START_TEST(desk_pointer_and_logoff_button)
{
    struct td_desk *d = td_desk_new(1024, 768, "h");
    const struct td_layout *l = td_desk_layout(d);
    int x, y;

    td_desk_pointer(d, 300, 400);
    find_pointer(td_desk_render(d, "00:00:00"), &x, &y);
    ck_assert_int_eq(x, 300);
    ck_assert_int_eq(y, 400);
    td_desk_pointer(d, -5, 5000);
    td_desk_pointer_pos(d, &x, &y);
    ck_assert_int_eq(x, 0);
    ck_assert_int_eq(y, 767);
    ck_assert_int_eq(td_desk_click(d), TD_CLICK_NOTHING);

    td_desk_set_user(d, "alice");
    td_desk_key(d, 'z');
    td_desk_pointer(d, l->logoff.x + 3, l->logoff.y + 3);
    ck_assert_int_eq(td_desk_click(d), TD_CLICK_LOGOFF);
    td_desk_logoff(d);
    ck_assert_str_eq(td_desk_user(d), "");
    ck_assert_str_eq(td_desk_text(d), "");
    td_desk_free(d);
}
END_TEST

START_TEST(desk_banner_shows_message)
{
    struct td_desk *d = td_desk_new(800, 600, "h");
    const struct td_layout *l = td_desk_layout(d);
    const struct td_canvas *c;

    td_desk_set_message(d, "Maintenance at 5");
    c = td_desk_render(d, "00:00:00");
    ck_assert(cell_shows(c, l->banner.x + TD_TEXT_PAD,
                         l->banner.y + TD_TEXT_PAD, 'M',
                         TD_COLOR_BANNER_TEXT, TD_COLOR_BANNER));
    td_desk_set_message(d, "");
    c = td_desk_render(d, "00:00:00");
    ck_assert_uint_ne(td_canvas_get(c, l->banner.x + 1, l->banner.y + 1),
                      TD_COLOR_BANNER);
    td_desk_free(d);
}
END_TEST

START_TEST(desk_workloads_animate)
{
    struct td_desk *d = td_desk_new(640, 480, "h");
    struct td_canvas before;
    enum td_mode m;

    ck_assert_int_eq(td_desk_tick(d, 1000), -1); /* idle: no frames */
    ck_assert_int_eq(td_mode_parse("video", &m), 0);
    ck_assert_int_eq(td_mode_parse("movie", &m), -EINVAL);

    /* typing: characters appear as time passes */
    td_desk_set_mode(d, TD_MODE_TYPING);
    for (uint64_t t = 0; t < 1200; t += 10)
        td_desk_tick(d, t);
    ck_assert_int_ge((int)strlen(td_desk_text(d)), 8);
    ck_assert_int_le((int)strlen(td_desk_text(d)), 12);

    /* video: every frame differs almost everywhere under the top bar */
    td_desk_set_mode(d, TD_MODE_VIDEO);
    ck_assert_int_eq(td_canvas_init(&before, 640, 480), 0);
    td_desk_tick(d, 5000);
    memcpy(before.px, td_desk_render(d, "00:00:00")->px, 640 * 480 * 4);
    ck_assert_int_gt(td_desk_tick(d, 5040), 0);
    {
        const struct td_canvas *c = td_desk_render(d, "00:00:00");
        int changed = 0;
        for (int i = 640 * TD_TOPBAR_H; i < 640 * 480; i++)
            changed += c->px[i] != before.px[i];
        ck_assert_int_gt(changed, 640 * (480 - TD_TOPBAR_H) * 9 / 10);
    }
    td_canvas_free(&before);
    td_desk_free(d);
}
END_TEST

static Suite *draw_suite(void)
{
    Suite *s = suite_create("testdesk-draw");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, layout_fits_common_sizes);
    tcase_add_test(tc, layout_refuses_tiny_screens);
    tcase_add_test(tc, font_has_distinct_ascii_glyphs);
    tcase_add_test(tc, canvas_clips_drawing);
    tcase_add_test(tc, desk_draws_the_top_bar);
    tcase_add_test(tc, desk_echoes_typed_text);
    tcase_add_test(tc, desk_wraps_and_scrolls_text);
    tcase_add_test(tc, desk_pointer_and_logoff_button);
    tcase_add_test(tc, desk_banner_shows_message);
    tcase_add_test(tc, desk_workloads_animate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(draw_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
