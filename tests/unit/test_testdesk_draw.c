/*
 * Unit tests of testdesk's drawing: layout, font, canvas and the desk's
 * rendered picture. These check the pixels a user (or a screendump) sees.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "td_canvas.h"
#include "td_desk.h"
#include "td_font.h"
#include "td_input.h"
#include "td_layout.h"
#include "tsguest.h"

/* True when the text cell at (x, y) shows ch in fg on bg, pixel for pixel. */
static int cell_shows(const struct td_canvas *c, int x, int y, unsigned char ch,
                      uint32_t fg, uint32_t bg)
{
    for (int gy = 0; gy < TD_FONT_H; gy++)
        for (int gx = 0; gx < TD_FONT_W; gx++)
            if (td_canvas_get(c, x + gx, y + gy) !=
                (td_font_pixel(ch, gx, gy) ? fg : bg))
                return 0;
    return 1;
}

/* True when text is drawn from (x, y) in fg on bg, cell by cell. */
static int text_shows(const struct td_canvas *c, int x, int y, const char *text,
                      uint32_t fg, uint32_t bg)
{
    for (int i = 0; text[i]; i++)
        if (!cell_shows(c, x + i * TD_FONT_W, y, (unsigned char)text[i], fg,
                        bg))
            return 0;
    return 1;
}

/* True when the top bar's user text reads exactly text (then blank). */
static int user_shows(const struct td_desk *d, const struct td_canvas *c,
                      const char *text)
{
    const struct td_layout *l = td_desk_layout(d);
    int n = (int)strlen(text);
    return text_shows(c, l->user.x, l->user.y, text, TD_COLOR_TOPBAR_TEXT,
                      TD_COLOR_TOPBAR) &&
           (n >= l->user.w / TD_FONT_W ||
            cell_shows(c, l->user.x + n * TD_FONT_W, l->user.y, ' ',
                       TD_COLOR_TOPBAR_TEXT, TD_COLOR_TOPBAR));
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
    static const int sizes[][2] = {
        {1024, 768}, {800, 600}, {1920, 1080}, {320, 240}, {2560, 1600}};
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
            ck_assert_msg(
                memcmp(ga, td_font_glyph((unsigned char)b), TD_FONT_H) != 0,
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
                         l->banner.y + TD_TEXT_PAD, 'M', TD_COLOR_BANNER_TEXT,
                         TD_COLOR_BANNER));
    td_desk_set_message(d, "");
    c = td_desk_render(d, "00:00:00");
    ck_assert_uint_ne(td_canvas_get(c, l->banner.x + 1, l->banner.y + 1),
                      TD_COLOR_BANNER);
    td_desk_free(d);
}
END_TEST

/* A clock-only redraw of a desk in some state (changed since the last full
 * render in nothing but, possibly, its hostname) gives exactly the picture
 * a full render does, and changes nothing below the rows it reports. */
static void check_clock_render(struct td_desk *d, const char *new_hostname)
{
    struct td_canvas before, clocked;
    const struct td_canvas *c;
    int w, h, rows = -1;

    td_desk_screen_size(d, &w, &h);
    ck_assert_int_eq(td_canvas_init(&before, w, h), 0);
    ck_assert_int_eq(td_canvas_init(&clocked, w, h), 0);
    memcpy(before.px, td_desk_render(d, "00:00:00")->px, (size_t)w * h * 4);
    if (new_hostname)
        td_desk_set_hostname(d, new_hostname);
    c = td_desk_render_clock(d, "23:59:58", &rows);
    ck_assert_int_eq(rows, TD_TOPBAR_H);
    memcpy(clocked.px, c->px, (size_t)w * h * 4);
    ck_assert(memcmp(clocked.px, td_desk_render(d, "23:59:58")->px,
                     (size_t)w * h * 4) == 0);
    /* the clock did change, and only within the reported rows */
    ck_assert(memcmp(clocked.px, before.px, (size_t)w * rows * 4) != 0);
    ck_assert(memcmp(clocked.px + (size_t)w * rows,
                     before.px + (size_t)w * rows,
                     (size_t)w * (h - rows) * 4) == 0);
    td_canvas_free(&before);
    td_canvas_free(&clocked);
}

START_TEST(desk_clock_only_redraw_matches_full_render)
{
    struct td_desk *d = td_desk_new(800, 600, "clocked");
    const struct td_layout *l = td_desk_layout(d);

    check_clock_render(d, NULL);
    td_desk_set_user(d, "alice");
    td_desk_set_message(d, "Maintenance at 5");
    td_desk_key(d, 'x');
    /* the pointer over the clock: it must stay on top of the new text */
    td_desk_pointer(d, l->clock.x + 2, l->clock.y);
    check_clock_render(d, NULL);
    check_clock_render(d, "renamed-clone"); /* shown in the top bar only */
    td_desk_lock(d);
    check_clock_render(d, NULL);
    td_desk_unlock(d);
    ck_assert_int_eq(td_desk_resize(d, 640, 480), 0);
    check_clock_render(d, NULL);
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

/* What main.c does with the user's input. */
static void paste_on_input(void *arg, const struct td_input_event *ev)
{
    char event[TD_DESK_EVENT_MAX];
    td_desk_input(arg, ev, 0, event, sizeof(event));
}

START_TEST(desk_top_bar_shows_the_session)
{
    struct td_desk *d = td_desk_new(1024, 768, "deskpool-test");
    const struct td_canvas *c = td_desk_render(d, "00:00:00");

    ck_assert(user_shows(d, c, "user: (none)"));
    td_desk_set_session(d, "alice", "Alice Liddell", 1700000000);
    c = td_desk_render(d, "00:00:00");
    ck_assert(user_shows(d, c, "user: alice (Alice Liddell)"));
    /* Characters the font lacks show as one '?' each. */
    td_desk_set_session(d, "zoe", "Zo\xc3\xab \xe2\x82\xac!", 1700000000);
    c = td_desk_render(d, "00:00:00");
    ck_assert(user_shows(d, c, "user: zoe (Zo? ?!)"));
    td_desk_set_session(d, "bob", "", 1700000000);
    c = td_desk_render(d, "00:00:00");
    ck_assert(user_shows(d, c, "user: bob"));
    /* The hostname can change while running. */
    td_desk_set_hostname(d, "desk-7");
    c = td_desk_render(d, "00:00:00");
    ck_assert(text_shows(c, td_desk_layout(d)->hostname.x,
                         td_desk_layout(d)->hostname.y, "desk-7 ",
                         TD_COLOR_TOPBAR_TEXT, TD_COLOR_TOPBAR));
    td_desk_free(d);
}
END_TEST

START_TEST(desk_top_bar_truncates_long_names)
{
    struct td_desk *d = td_desk_new(320, 240, "h");
    const struct td_layout *l = td_desk_layout(d);
    const struct td_canvas *c;
    char display[TD_DESK_DISPLAY_MAX + 1], shown[256];
    int cells = l->user.w / TD_FONT_W;

    memset(display, 'D', TD_DESK_DISPLAY_MAX);
    display[TD_DESK_DISPLAY_MAX] = '\0';
    td_desk_set_session(d, "alice", display, 1);
    c = td_desk_render(d, "00:00:00");
    snprintf(shown, sizeof(shown), "user: alice (%s", display);
    shown[cells] = '\0';
    ck_assert(user_shows(d, c, shown));
    /* ...and the Log off button beside it is untouched. */
    for (int x = l->user.x + l->user.w; x < l->logoff.x; x++)
        ck_assert_uint_eq(td_canvas_get(c, x, l->user.y + 8), TD_COLOR_TOPBAR);
    ck_assert_uint_eq(td_canvas_get(c, l->logoff.x + 1, l->logoff.y + 1),
                      TD_COLOR_LOGOFF);
    td_desk_free(d);
}
END_TEST

static enum td_desk_effect input(struct td_desk *d, enum td_input_kind kind,
                                 char ch, char *event)
{
    struct td_input_event ev = {.kind = kind, .ch = ch};
    return td_desk_input(d, &ev, 1000, event, TD_DESK_EVENT_MAX);
}

START_TEST(desk_lock_screen)
{
    struct td_desk *d = td_desk_new(1024, 768, "deskpool-test");
    const struct td_layout *l = td_desk_layout(d);
    const struct td_canvas *c;
    char event[TD_DESK_EVENT_MAX];
    int px, py;

    td_desk_set_user(d, "alice");
    td_desk_set_message(d, "hello");
    td_desk_key(d, 'a');
    td_desk_lock(d);
    td_desk_pointer(d, 10, 700);
    c = td_desk_render(d, "12:34:56");
    /* Under the top bar: one colour and the lock text, centred. */
    ck_assert_int_eq(l->lock.y, TD_TOPBAR_H);
    ck_assert_int_eq(l->lock.h, 768 - TD_TOPBAR_H);
    ck_assert_int_eq(l->lock_text.x * 2 + l->lock_text.w, 1024);
    ck_assert(text_shows(c, l->lock_text.x, l->lock_text.y, TD_LOCK_TEXT,
                         TD_COLOR_LOCK_TEXT, TD_COLOR_LOCK));
    for (int y = TD_TOPBAR_H; y < 768; y += 7)
        for (int x = 0; x < 1024; x += 7)
            if (!td_rect_contains(&l->lock_text, x, y) &&
                !(x >= 10 && x < 10 + TD_POINTER_SIZE && y >= 700 &&
                  y < 700 + TD_POINTER_SIZE))
                ck_assert_uint_eq(td_canvas_get(c, x, y), TD_COLOR_LOCK);
    ck_assert_uint_eq(td_canvas_get(c, 10, 700), TD_COLOR_POINTER);
    /* The top bar stays. */
    ck_assert(text_shows(c, l->clock.x, l->clock.y, "12:34:56",
                         TD_COLOR_TOPBAR_TEXT, TD_COLOR_TOPBAR));
    ck_assert(user_shows(d, c, "user: alice"));

    /* Keys, pastes and clicks do nothing while locked; Enter unlocks. */
    td_desk_set_clipboard(d, "pasted");
    ck_assert_int_eq(input(d, TD_INPUT_CHAR, 'x', event), TD_EFFECT_NONE);
    ck_assert_str_eq(event, "");
    input(d, TD_INPUT_PASTE, 0, event);
    td_desk_pointer(d, l->logoff.x + 2, l->logoff.y + 2);
    ck_assert_int_eq(input(d, TD_INPUT_CLICK, 0, event), TD_EFFECT_NONE);
    ck_assert_str_eq(td_desk_user(d), "alice");
    c = td_desk_render(d, "12:34:56");
    ck_assert(text_shows(c, l->lock_text.x, l->lock_text.y, TD_LOCK_TEXT,
                         TD_COLOR_LOCK_TEXT, TD_COLOR_LOCK));
    ck_assert_int_eq(input(d, TD_INPUT_CHAR, '\n', event), TD_EFFECT_UNLOCK);
    ck_assert_str_eq(event, "event unlock");
    ck_assert(!td_desk_locked(d));
    c = td_desk_render(d, "12:34:56");
    ck_assert(text_cell_shows(d, c, 0, 0, 'a'));
    ck_assert(text_cell_shows(d, c, 1, 0, ' ')); /* no 'x', no paste */
    ck_assert(text_cell_shows(d, c, 0, 1, ' ')); /* the Enter neither */
    ck_assert(cell_shows(c, l->banner.x + TD_TEXT_PAD,
                         l->banner.y + TD_TEXT_PAD, 'h', TD_COLOR_BANNER_TEXT,
                         TD_COLOR_BANNER));
    find_pointer(c, &px, &py);
    ck_assert_int_eq(px, l->logoff.x + 2);
    td_desk_free(d);
}
END_TEST

START_TEST(desk_logoff_click_reports_the_user)
{
    struct td_desk *d = td_desk_new(1024, 768, "h");
    const struct td_layout *l = td_desk_layout(d);
    const struct td_canvas *c;
    char event[TD_DESK_EVENT_MAX];

    td_desk_set_session(d, "alice", "Alice", 5);
    input(d, TD_INPUT_CHAR, 'q', event);
    td_desk_pointer(d, l->logoff.x + 3, l->logoff.y + 3);
    ck_assert_int_eq(input(d, TD_INPUT_CLICK, 0, event), TD_EFFECT_LOGOFF);
    ck_assert_str_eq(event, "event logoff alice");
    c = td_desk_render(d, "00:00:00");
    ck_assert(user_shows(d, c, "user: (none)"));
    ck_assert(text_cell_shows(d, c, 0, 0, ' '));
    ck_assert_int_eq(td_desk_since(d), 0);
    ck_assert_int_eq(input(d, TD_INPUT_CLICK, 0, event), TD_EFFECT_LOGOFF);
    ck_assert_str_eq(event, "event logoff");
    /* Elsewhere a click does nothing. */
    td_desk_pointer(d, 500, 500);
    ck_assert_int_eq(input(d, TD_INPUT_CLICK, 0, event), TD_EFFECT_NONE);
    ck_assert_str_eq(event, "");
    td_desk_free(d);
}
END_TEST

START_TEST(desk_resizes_inside_the_screen)
{
    struct td_desk *d = td_desk_new(1024, 768, "deskpool-test");
    const struct td_layout *l = td_desk_layout(d);
    const struct td_canvas *c;
    struct td_layout want;
    struct td_input_event ev = {.kind = TD_INPUT_POINTER, .x = 1000, .y = 700};
    char event[TD_DESK_EVENT_MAX];
    int sw, sh, px, py;

    td_desk_set_session(d, "alice", "Alice", 42);
    td_desk_set_message(d, "hi");
    td_desk_set_clipboard(d, "clip");
    td_desk_set_mode(d, TD_MODE_SCROLL);
    td_desk_key(d, 'k');
    ck_assert_int_eq(td_desk_resize(d, 800, 600), 0);
    ck_assert_int_eq(l->width, 800);
    ck_assert_int_eq(l->height, 600);
    td_desk_screen_size(d, &sw, &sh);
    ck_assert_int_eq(sw, 1024);
    ck_assert_int_eq(sh, 768);
    /* The layout is the one for an 800x600 screen. */
    ck_assert_int_eq(td_layout_compute(&want, 800, 600), 0);
    ck_assert_int_eq(l->clock.x, want.clock.x);
    ck_assert_int_eq(l->window.w, want.window.w);

    /* The pointer (the tablet covers the whole screen) stays inside. */
    td_desk_input(d, &ev, 1, event, sizeof(event));
    td_desk_set_mode(d, TD_MODE_IDLE);
    c = td_desk_render(d, "12:34:56");
    ck_assert_int_eq(c->width, 1024);
    ck_assert_int_eq(c->height, 768);
    for (int x = 0; x < 1024; x++)
        ck_assert_uint_eq(td_canvas_get(c, x, 0),
                          x < 800 ? TD_COLOR_TOPBAR : TD_COLOR_OUTSIDE);
    for (int y = 0; y < 768; y += 3)
        for (int x = 800; x < 1024; x += 3)
            ck_assert_uint_eq(td_canvas_get(c, x, y), TD_COLOR_OUTSIDE);
    for (int y = 600; y < 768; y += 3)
        for (int x = 0; x < 1024; x += 3)
            ck_assert_uint_eq(td_canvas_get(c, x, y), TD_COLOR_OUTSIDE);
    find_pointer(c, &px, &py);
    ck_assert_int_eq(px, 799);
    ck_assert_int_eq(py, 599);
    ck_assert(text_shows(c, want.clock.x, want.clock.y, "12:34:56",
                         TD_COLOR_TOPBAR_TEXT, TD_COLOR_TOPBAR));
    ck_assert(user_shows(d, c, "user: alice (Alice)"));
    ck_assert(text_cell_shows(d, c, 0, 0, 'k'));
    ck_assert(cell_shows(c, want.banner.x + TD_TEXT_PAD,
                         want.banner.y + TD_TEXT_PAD, 'h', TD_COLOR_BANNER_TEXT,
                         TD_COLOR_BANNER));
    ck_assert_uint_eq(td_canvas_get(c, 799, 590),
                      td_layout_wallpaper(&want, 799, 590));
    ck_assert_str_eq(td_desk_clipboard(d), "clip");
    ck_assert_int_eq(td_desk_since(d), 42);

    /* Video and the lock screen stay inside too. */
    td_desk_set_mode(d, TD_MODE_VIDEO);
    td_desk_tick(d, 100);
    c = td_desk_render(d, "12:34:56");
    ck_assert_uint_eq(td_canvas_get(c, 800, 300), TD_COLOR_OUTSIDE);
    ck_assert_uint_eq(td_canvas_get(c, 300, 600), TD_COLOR_OUTSIDE);
    td_desk_lock(d);
    c = td_desk_render(d, "12:34:56");
    ck_assert_uint_eq(td_canvas_get(c, 799, 300), TD_COLOR_LOCK);
    ck_assert_uint_eq(td_canvas_get(c, 800, 300), TD_COLOR_OUTSIDE);
    ck_assert(text_shows(c, want.lock_text.x, want.lock_text.y, TD_LOCK_TEXT,
                         TD_COLOR_LOCK_TEXT, TD_COLOR_LOCK));

    /* Bigger than the screen: the screen; smaller than the minimum: no. */
    ck_assert_int_eq(td_desk_resize(d, 4000, 3000), 0);
    ck_assert_int_eq(l->width, 1024);
    ck_assert_int_eq(l->height, 768);
    ck_assert_int_eq(td_desk_resize(d, 319, 600), -EINVAL);
    ck_assert_int_eq(td_desk_resize(d, 800, 239), -EINVAL);
    ck_assert_int_eq(l->width, 1024);
    td_desk_unlock(d);
    td_desk_set_mode(d, TD_MODE_IDLE);
    c = td_desk_render(d, "12:34:56");
    ck_assert_uint_eq(td_canvas_get(c, 1023, 0), TD_COLOR_TOPBAR);
    ck_assert_uint_eq(td_canvas_get(c, 1023, 767),
                      td_layout_wallpaper(l, 1023, 767));
    td_desk_free(d);
}
END_TEST

START_TEST(desk_keeps_the_newest_text_when_shrinking)
{
    struct td_desk *d = td_desk_new(1024, 768, "h");
    const struct td_layout *l = td_desk_layout(d);
    const struct td_canvas *c;
    int rows = l->text_rows;

    for (int r = 0; r < rows; r++) {
        td_desk_key(d, (char)('a' + r % 26));
        td_desk_key(d, '\n');
    }
    td_desk_key(d, 'Z');
    ck_assert_int_eq(td_desk_resize(d, 320, 240), 0);
    c = td_desk_render(d, "00:00:00");
    /* The last line is still on screen, at the bottom row. */
    ck_assert(text_cell_shows(d, c, 0, l->text_rows - 1, 'Z'));
    td_desk_free(d);
}
END_TEST

START_TEST(desk_locks_on_ctrl_alt_del)
{
    /* Real td_input reading a FIFO, as below. Ctrl+Del and Alt+Del alone
     * do nothing; Ctrl+Alt+Del (right-hand keys too) locks. */
    char dir[] = "/tmp/td-input-test.XXXXXX", path[64];
    struct td_desk *d = td_desk_new(1024, 768, "h");
    struct td_input *in;
    struct pollfd pfds[TD_INPUT_DEVICES];
    static const unsigned short keys[][2] = {
        {KEY_LEFTCTRL, 1}, {KEY_DELETE, 1}, {KEY_DELETE, 0}, {KEY_LEFTCTRL, 0},
        {KEY_LEFTALT, 1},  {KEY_DELETE, 1}, {KEY_DELETE, 0}, {KEY_LEFTALT, 0}};
    static const unsigned short cad[][2] = {
        {KEY_RIGHTCTRL, 1}, {KEY_RIGHTALT, 1}, {KEY_DELETE, 1},
        {KEY_DELETE, 0},    {KEY_RIGHTALT, 0}, {KEY_RIGHTCTRL, 0}};
    struct input_event evs[8];
    int fd, n;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/event0", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_int_eq(td_input_new(&in, dir, 1024, 768), 0);
    ck_assert_int_eq(td_input_rescan(in), 1);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    for (int round = 0; round < 2; round++) {
        size_t count =
            round ? sizeof(cad) / sizeof(*cad) : sizeof(keys) / sizeof(*keys);

        memset(evs, 0, sizeof(evs));
        for (size_t i = 0; i < count; i++) {
            evs[i].type = EV_KEY;
            evs[i].code = round ? cad[i][0] : keys[i][0];
            evs[i].value = round ? cad[i][1] : keys[i][1];
        }
        ck_assert_int_eq(write(fd, evs, count * sizeof(*evs)),
                         (ssize_t)(count * sizeof(*evs)));
        n = td_input_pollfds(in, pfds);
        ck_assert_int_eq(poll(pfds, (nfds_t)n, 2000), 1);
        td_input_handle(in, pfds, n, paste_on_input, d);
        ck_assert_int_eq(td_desk_locked(d), round);
    }
    close(fd);
    td_input_free(in);
    unlink(path);
    rmdir(dir);
    td_desk_free(d);
}
END_TEST

START_TEST(desk_pastes_with_ctrl_v)
{
    /* Real td_input reading a FIFO that stands in for /dev/input/event0. */
    char dir[] = "/tmp/td-input-test.XXXXXX", path[64];
    struct td_desk *d = td_desk_new(1024, 768, "h");
    struct td_input *in;
    struct pollfd pfds[TD_INPUT_DEVICES];
    static const unsigned short keys[][2] = {
        {KEY_LEFTCTRL, 1},  {KEY_V, 1}, {KEY_V, 0}, {KEY_LEFTCTRL, 0},
        {KEY_RIGHTCTRL, 1}, {KEY_V, 1}, {KEY_V, 0}, {KEY_RIGHTCTRL, 0},
        {KEY_V, 1},         {KEY_V, 0}};
    struct input_event evs[sizeof(keys) / sizeof(*keys)];
    const struct td_canvas *c;
    const char *want = "Hi,ok!Hi,ok!v";
    int fd, n;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/event0", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_int_eq(td_input_new(&in, dir, 1024, 768), 0);
    ck_assert_int_eq(td_input_rescan(in), 1);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    memset(evs, 0, sizeof(evs));
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
        evs[i].type = EV_KEY;
        evs[i].code = keys[i][0];
        evs[i].value = keys[i][1];
    }
    /* Newline, tab and UTF-8 are not typed; printable ASCII is. */
    td_desk_set_clipboard(d, "Hi,\n\tok\xc3\xa9!");
    ck_assert_int_eq(write(fd, evs, sizeof(evs)), (ssize_t)sizeof(evs));
    n = td_input_pollfds(in, pfds);
    ck_assert_int_eq(poll(pfds, (nfds_t)n, 2000), 1);
    td_input_handle(in, pfds, n, paste_on_input, d);

    c = td_desk_render(d, "00:00:00");
    for (int i = 0; want[i]; i++)
        ck_assert(text_cell_shows(d, c, i, 0, (unsigned char)want[i]));
    ck_assert(text_cell_shows(d, c, (int)strlen(want), 0, ' '));
    close(fd);
    td_input_free(in);
    unlink(path);
    rmdir(dir);
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
    tcase_add_test(tc, desk_clock_only_redraw_matches_full_render);
    tcase_add_test(tc, desk_workloads_animate);
    tcase_add_test(tc, desk_top_bar_shows_the_session);
    tcase_add_test(tc, desk_top_bar_truncates_long_names);
    tcase_add_test(tc, desk_lock_screen);
    tcase_add_test(tc, desk_logoff_click_reports_the_user);
    tcase_add_test(tc, desk_resizes_inside_the_screen);
    tcase_add_test(tc, desk_keeps_the_newest_text_when_shrinking);
    tcase_add_test(tc, desk_pastes_with_ctrl_v);
    tcase_add_test(tc, desk_locks_on_ctrl_alt_del);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tsguest_run_checks(draw_suite());
}
