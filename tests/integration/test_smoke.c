/*
 * Smoke test of the test desktop image (build/guest): boot it with
 * libdeskpool-hv and check what a user would see. The screen is read with
 * QMP screendump and compared pixel for pixel with testdesk's layout
 * contract (td_layout.h and td_font.h); keys, pointer moves and clicks go
 * in through QMP input-send-event, as they would from a keyboard and a
 * tablet.
 *
 * One guest serves the whole suite: it is started by an unchecked fixture
 * (in the process that runs the tests, in Check's fork mode too) and
 * stopped by its teardown; should that not run, tsguest_run_suite() ends
 * it. The tests run in order: the desktop is checked before anything is
 * typed into it, and logging off comes last.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "td_font.h"
#include "td_layout.h"
#include "tsguest.h"
#include "tsppm.h"
#include "tsscreen.h"

/* Screen size the image's kernel command line (vga=0x344) asks for. */
#define SMOKE_WIDTH  TSGUEST_WIDTH
#define SMOKE_HEIGHT TSGUEST_HEIGHT

/* TCG boots take ~7 s on an idle machine; CI machines are anything but. */
#define SMOKE_BOOT_TIMEOUT_MS 150000
#define SMOKE_TCASE_TIMEOUT_S 180

/* How long a change on screen may take to show, and how often to look. */
#define SMOKE_SETTLE_MS 20000
#define SMOKE_POLL_MS   200

/* How far the pointer may be from where the scaling formula puts it. */
#define SMOKE_POINTER_SLACK 2

#define SMOKE_READY TSGUEST_READY
#define SMOKE_VM    "smoke"

/* The suite's host and whether its VM started (else why not). */
static struct hv_host *smoke_host;
static int smoke_start_err;
/* The last screendump, freed by the checked teardown even when a failed
 * assertion leaves a test early. */
static struct tsppm *smoke_shot;

/* ------------------------------------------------------------------------
 * Fixtures */

static void smoke_start(void)
{
    smoke_start_err =
        tsguest_host_start(&smoke_host, SMOKE_VM, "testdesk.mode=idle");
}

static void smoke_stop(void)
{
    tsguest_host_close(smoke_host);
    smoke_host = NULL;
}

static void smoke_test_setup(void)
{
    smoke_shot = NULL;
}

static void smoke_test_teardown(void)
{
    tsppm_free(smoke_shot);
    smoke_shot = NULL;
}

/* Waits until testdesk has drawn its first frame. */
static void smoke_desktop(void)
{
    ck_assert_msg(smoke_start_err == 0,
                  "the test guest did not start: %s (see above)",
                  strerror(-smoke_start_err));
    ck_assert_msg(tsguest_wait_serial(smoke_host, SMOKE_VM, SMOKE_READY, 1,
                                      SMOKE_BOOT_TIMEOUT_MS) == 0,
                  "testdesk never said \"%s\" (serial log above)", SMOKE_READY);
}

/* Occurrences of text in the guest's serial log (asserted readable). */
static int smoke_serial_count(const char *text)
{
    int n = tsguest_serial_count(smoke_host, SMOKE_VM, text);

    ck_assert_msg(n >= 0, "cannot read the serial log: %s", strerror(-n));
    return n;
}

/* ------------------------------------------------------------------------
 * Screen */

/* Takes a screendump into the state folder, kept as smoke_shot. */
static struct tsscreen smoke_screen(void)
{
    int err;

    smoke_desktop();
    err = tsguest_screen(smoke_host, SMOKE_VM, &smoke_shot);
    ck_assert_msg(err == 0, "screendump failed: %s (see above)",
                  strerror(-err));
    return tsscreen_from_ppm(smoke_shot);
}

/* Keeps the last screendump where CI keeps build output, so a failure can
 * be looked at: $DESKPOOL_BUILD_DIR/tests/integration/smoke-NAME.ppm. */
static void smoke_keep_screen(const char *name)
{
    (void)tsguest_keep_screen(smoke_host, SMOKE_VM, "smoke", name);
}

/* Fails the test when d holds differences, keeping the screendump. */
#define smoke_assert_same(d, what)                                             \
    do {                                                                       \
        char why_[512];                                                        \
        if (tsscreen_diff_why(&(d), (what), why_, sizeof(why_)))               \
            smoke_keep_screen("desktop");                                      \
        ck_assert_msg((d).count == 0, "%s", why_);                             \
    } while (0)

/* ------------------------------------------------------------------------
 * Polling: a check looks at a screendump and says what is still wrong. */

typedef int (*smoke_check_fn)(const struct tsscreen *s, const void *arg,
                              char *why, size_t why_size);

/*
 * Takes screendumps until check() passes or SMOKE_SETTLE_MS is over; the
 * guest draws in its own time, so a single look could come too early.
 */
static void smoke_poll(smoke_check_fn check, const void *arg, const char *name)
{
    long long deadline = tsguest_now_ms() + SMOKE_SETTLE_MS;
    char why[512] = "";

    for (;;) {
        struct tsscreen s = smoke_screen();

        if (check(&s, arg, why, sizeof(why)))
            return;
        if (tsguest_now_ms() >= deadline)
            break;
        tsguest_sleep_ms(SMOKE_POLL_MS);
    }
    smoke_keep_screen(name);
    ck_abort_msg("after %d s: %s", SMOKE_SETTLE_MS / 1000, why);
}

static void smoke_layout(struct td_layout *l)
{
    ck_assert_int_eq(td_layout_compute(l, SMOKE_WIDTH, SMOKE_HEIGHT), 0);
}

/* ------------------------------------------------------------------------
 * 1. The guest boots into the desktop */

START_TEST(smoke_boots)
{
    char ready[64];

    smoke_desktop();
    snprintf(ready, sizeof(ready), "%s %dx%dx32", SMOKE_READY, SMOKE_WIDTH,
             SMOKE_HEIGHT);
    ck_assert_msg(smoke_serial_count(TSGUEST_ROOT_MOUNTED) > 0,
                  "the serial log lacks \"%s\"", TSGUEST_ROOT_MOUNTED);
    if (smoke_serial_count(ready) == 0)
        tsguest_print_serial(smoke_host, SMOKE_VM);
    ck_assert_msg(smoke_serial_count(ready) > 0,
                  "the serial log lacks \"%s\" (tail above)", ready);
    ck_assert_msg(smoke_serial_count("testdesk exited") == 0,
                  "testdesk exited and was restarted");
}
END_TEST

/* ------------------------------------------------------------------------
 * 2. The desktop is drawn where the layout says */

/* Everything but the pointer marker: it may sit anywhere at first. */
struct smoke_mask {
    struct td_rect pointer;
};

static int smoke_masked(const struct smoke_mask *m, int x, int y)
{
    return td_rect_contains(&m->pointer, x, y);
}

static void smoke_check_topbar(const struct tsscreen *img,
                               const struct td_layout *l,
                               const struct smoke_mask *m)
{
    struct tsscreen_diff d = {0};
    const struct td_rect *text[] = {&l->hostname, &l->user, &l->logoff,
                                    &l->clock};

    /* Every top bar pixel outside the texts and the button is plain. */
    for (int y = 0; y < l->topbar.h; y++) {
        for (int x = 0; x < l->topbar.w; x++) {
            int skip = smoke_masked(m, x, y);
            for (size_t i = 0; i < sizeof(text) / sizeof(*text); i++)
                skip |= td_rect_contains(text[i], x, y);
            if (!skip)
                tsscreen_diff_pixel(&d, img, x, y, TD_COLOR_TOPBAR);
        }
    }
    smoke_assert_same(d, "top bar background");

    memset(&d, 0, sizeof(d));
    tsscreen_diff_text(&d, img, l->user.x, l->user.y, "user: (none)",
                       TD_COLOR_TOPBAR_TEXT, TD_COLOR_TOPBAR);
    smoke_assert_same(d, "\"user: (none)\" in the top bar");
}

static void smoke_check_logoff(const struct tsscreen *img,
                               const struct td_layout *l)
{
    static const char label[] = "Log off";
    int lx = l->logoff.x + TD_TEXT_PAD, ly = l->clock.y;
    struct td_rect text = {lx, ly, (int)strlen(label) * TD_FONT_W, TD_FONT_H};
    struct tsscreen_diff d = {0};

    /* The button: its colour all round the label... */
    for (int y = l->logoff.y; y < l->logoff.y + l->logoff.h; y++)
        for (int x = l->logoff.x; x < l->logoff.x + l->logoff.w; x++)
            if (!td_rect_contains(&text, x, y))
                tsscreen_diff_pixel(&d, img, x, y, TD_COLOR_LOGOFF);
    smoke_assert_same(d, "Log off button background");
    /* ...and the label a user reads on it. */
    tsscreen_diff_text(&d, img, lx, ly, label, TD_COLOR_LOGOFF_TEXT,
                       TD_COLOR_LOGOFF);
    smoke_assert_same(d, "\"Log off\" label");
}

static void smoke_check_window(const struct tsscreen *img,
                               const struct td_layout *l,
                               const struct smoke_mask *m)
{
    struct tsscreen_diff d = {0};

    tsscreen_diff_text(&d, img, l->label.x, l->label.y,
                       "Type here:", TD_COLOR_WINDOW_TEXT, TD_COLOR_WINDOW);
    smoke_assert_same(d, "\"Type here:\" caption");
    /* Nothing typed yet: the whole text box is blank. */
    for (int y = l->textbox.y; y < l->textbox.y + l->textbox.h; y++)
        for (int x = l->textbox.x; x < l->textbox.x + l->textbox.w; x++)
            if (!smoke_masked(m, x, y))
                tsscreen_diff_pixel(&d, img, x, y, TD_COLOR_TEXTBOX);
    smoke_assert_same(d, "empty text box");
}

static void smoke_check_wallpaper(const struct tsscreen *img,
                                  const struct td_layout *l,
                                  const struct smoke_mask *m)
{
    struct tsscreen_diff d = {0};
    int checked = 0;

    /* Everything outside the top bar and the window, banner area included
     * (no message is shown). */
    for (int y = 0; y < l->height; y++) {
        for (int x = 0; x < l->width; x++) {
            if (td_rect_contains(&l->topbar, x, y) ||
                td_rect_contains(&l->window, x, y) || smoke_masked(m, x, y))
                continue;
            tsscreen_diff_pixel(&d, img, x, y, td_layout_wallpaper(l, x, y));
            checked++;
        }
    }
    ck_assert_int_gt(checked, l->width * l->height / 4);
    smoke_assert_same(d, "wallpaper");
}

START_TEST(smoke_desktop_drawn)
{
    struct tsscreen img;
    struct smoke_mask m = {{0, 0, 0, 0}};
    struct td_layout l;
    int px, py;

    smoke_desktop();
    smoke_layout(&l);
    img = smoke_screen();
    if (tsscreen_find_pointer(&img, &px, &py) == 0)
        m.pointer = tsscreen_pointer_rect(px, py);
    smoke_check_topbar(&img, &l, &m);
    smoke_check_logoff(&img, &l);
    smoke_check_window(&img, &l, &m);
    smoke_check_wallpaper(&img, &l, &m);
}
END_TEST

/* ------------------------------------------------------------------------
 * 3. Typed keys are echoed in the text box */

/* True when the text box's first row shows exactly text, then a blank. */
static int smoke_shows_text(const struct tsscreen *img, const void *arg,
                            char *why, size_t why_size)
{
    /* one cell past the text must stay blank: no repeated keys */
    return tsscreen_textbox_why(img, arg, why, why_size) == 0;
}

START_TEST(smoke_typing)
{
    static const char text[] = "hello Hi!";
    int err;

    smoke_desktop();
    err = tsguest_type_text(smoke_host, SMOKE_VM, text);
    ck_assert_msg(err == 0, "typing failed: %s", strerror(-err));
    smoke_poll(smoke_shows_text, text, "typing");
}
END_TEST

/* ------------------------------------------------------------------------
 * 4. The pointer marker follows the tablet */

struct smoke_pointer_want {
    int x, y;              /* expected hotspot */
    struct td_rect before; /* where the marker was before the move */
};

static int smoke_shows_pointer(const struct tsscreen *img, const void *arg,
                               char *why, size_t why_size)
{
    const struct smoke_pointer_want *w = arg;
    struct td_rect at = tsscreen_pointer_rect(w->x - SMOKE_POINTER_SLACK,
                                              w->y - SMOKE_POINTER_SLACK);
    int x, y, stray;

    at.w += 2 * SMOKE_POINTER_SLACK;
    at.h += 2 * SMOKE_POINTER_SLACK;
    if (tsscreen_find_pointer(img, &x, &y) != 0) {
        snprintf(why, why_size, "no pointer marker (0x%06x) on screen",
                 TD_COLOR_POINTER);
        return 0;
    }
    if (abs(x - w->x) > SMOKE_POINTER_SLACK ||
        abs(y - w->y) > SMOKE_POINTER_SLACK) {
        snprintf(why, why_size, "pointer hotspot at (%d,%d), expected (%d,%d)",
                 x, y, w->x, w->y);
        return 0;
    }
    /* The old marker must be gone, not just a new one drawn. */
    stray = tsscreen_count_color(img, TD_COLOR_POINTER, &at, 0);
    if (stray) {
        snprintf(why, why_size,
                 "pointer at (%d,%d), but %d marker pixels remain elsewhere, "
                 "%d of them at its previous place (%d,%d)",
                 x, y, stray,
                 tsscreen_count_color(img, TD_COLOR_POINTER, &w->before, 1),
                 w->before.x, w->before.y);
        return 0;
    }
    return 1;
}

START_TEST(smoke_pointer)
{
    /* Far from the initial marker first, so that each move must show; the
     * last one reaches the far corner: the full range maps to the screen. */
    static const int moves[][2] = {
        {8000, 24000}, {16384, 16384}, {TSGUEST_ABS_MAX, TSGUEST_ABS_MAX}};
    struct smoke_pointer_want w = {0};
    struct tsscreen img = smoke_screen();
    int x, y;

    if (tsscreen_find_pointer(&img, &x, &y) == 0)
        w.before = tsscreen_pointer_rect(x, y);
    for (size_t i = 0; i < sizeof(moves) / sizeof(*moves); i++) {
        int err =
            tsguest_move_abs(smoke_host, SMOKE_VM, moves[i][0], moves[i][1]);
        char name[32];

        ck_assert_msg(err == 0, "pointer move failed: %s", strerror(-err));
        w.x = tsguest_abs_to_px(moves[i][0], SMOKE_WIDTH);
        w.y = tsguest_abs_to_px(moves[i][1], SMOKE_HEIGHT);
        snprintf(name, sizeof(name), "pointer-%zu", i);
        smoke_poll(smoke_shows_pointer, &w, name);
        w.before = tsscreen_pointer_rect(w.x, w.y);
    }
}
END_TEST

/* ------------------------------------------------------------------------
 * 5. Clicking "Log off" empties the text box */

/* Text box pixels in the text colour, outside the pointer marker. */
static int smoke_textbox_ink(const struct tsscreen *img)
{
    struct td_rect pointer = {0, 0, 0, 0};
    struct td_layout l;
    int x, y, n = 0;

    td_layout_compute(&l, SMOKE_WIDTH, SMOKE_HEIGHT);
    /* The marker's black edge is the text colour too. */
    if (tsscreen_find_pointer(img, &x, &y) == 0)
        pointer = tsscreen_pointer_rect(x, y);
    for (y = l.textbox.y; y < l.textbox.y + l.textbox.h; y++)
        for (x = l.textbox.x; x < l.textbox.x + l.textbox.w; x++)
            if (!td_rect_contains(&pointer, x, y) &&
                tsscreen_pixel(img, x, y) == TD_COLOR_TEXT)
                n++;
    return n;
}

static int smoke_shows_some_text(const struct tsscreen *img, const void *arg,
                                 char *why, size_t why_size)
{
    (void)arg;
    if (smoke_textbox_ink(img))
        return 1;
    snprintf(why, why_size, "the typed key does not show in the text box");
    return 0;
}

/* True when the text box is blank again (outside the pointer marker). */
static int smoke_shows_empty_box(const struct tsscreen *img, const void *arg,
                                 char *why, size_t why_size)
{
    struct smoke_mask m = {{0, 0, 0, 0}};
    struct tsscreen_diff d = {0};
    struct td_layout l;
    int x, y;

    (void)arg;
    td_layout_compute(&l, SMOKE_WIDTH, SMOKE_HEIGHT);
    if (tsscreen_find_pointer(img, &x, &y) == 0)
        m.pointer = tsscreen_pointer_rect(x, y);
    for (y = l.textbox.y; y < l.textbox.y + l.textbox.h; y++)
        for (x = l.textbox.x; x < l.textbox.x + l.textbox.w; x++)
            if (!smoke_masked(&m, x, y))
                tsscreen_diff_pixel(&d, img, x, y, TD_COLOR_TEXTBOX);
    if (d.count == 0)
        return 1;
    snprintf(why, why_size,
             "after Log off, %d text box pixels are not blank, first at "
             "(%d,%d): 0x%06x",
             d.count, d.x, d.y, (unsigned)d.got);
    return 0;
}

START_TEST(smoke_logoff_click)
{
    struct td_layout l;
    int err, x, y;

    smoke_desktop();
    smoke_layout(&l);
    /* Something to clear, whatever ran before. */
    err = tsguest_type_text(smoke_host, SMOKE_VM, "x");
    ck_assert_msg(err == 0, "typing failed: %s", strerror(-err));
    smoke_poll(smoke_shows_some_text, NULL, "logoff-typed");
    ck_assert_msg(smoke_serial_count("testdesk: logoff") == 0,
                  "testdesk logged off before the click");

    x = l.logoff.x + l.logoff.w / 2;
    y = l.logoff.y + l.logoff.h / 2;
    err = tsguest_move_abs(smoke_host, SMOKE_VM,
                           tsguest_px_to_abs(x, SMOKE_WIDTH),
                           tsguest_px_to_abs(y, SMOKE_HEIGHT));
    ck_assert_msg(err == 0, "pointer move failed: %s", strerror(-err));
    err = tsguest_click(smoke_host, SMOKE_VM, "left");
    ck_assert_msg(err == 0, "click failed: %s", strerror(-err));
    ck_assert_msg(tsguest_wait_serial(smoke_host, SMOKE_VM, "testdesk: logoff",
                                      1, SMOKE_SETTLE_MS) == 0,
                  "clicking Log off at (%d,%d) did not log off", x, y);
    smoke_poll(smoke_shows_empty_box, NULL, "logoff");
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *smoke_suite(void)
{
    Suite *s = suite_create("smoke");
    TCase *tc = tcase_create("desktop");

    tcase_set_timeout(tc, SMOKE_TCASE_TIMEOUT_S);
    tcase_add_unchecked_fixture(tc, smoke_start, smoke_stop);
    tcase_add_checked_fixture(tc, smoke_test_setup, smoke_test_teardown);
    tcase_add_test(tc, smoke_boots);
    tcase_add_test(tc, smoke_desktop_drawn);
    tcase_add_test(tc, smoke_typing);
    tcase_add_test(tc, smoke_pointer);
    tcase_add_test(tc, smoke_logoff_click);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tsguest_run_suite(smoke_suite());
}
