/*
 * td_desk.c - testdesk's desktop state and rendering (see td_desk.h).
 */
#include "td_desk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Text box capacity; far more than any screen shows, so wrapping and
 * scrolling, not this bound, decide what is visible. */
#define TD_TEXT_MAX 8192

/* Workload pacing. */
#define TD_TYPING_INTERVAL_MS 120 /* ~8 characters a second */
#define TD_FRAME_INTERVAL_MS  33  /* ~30 frames a second */
#define TD_SCROLL_STEP_PX     2

static const char td_typing_sample[] =
    "The quick brown fox jumps over the lazy dog. Pack my box with five "
    "dozen liquor jugs. Sphinx of black quartz, judge my vow. ";

struct td_desk {
    struct td_layout layout;    /* the desk, at most the screen's size */
    struct td_canvas canvas;    /* the screen, what td_desk_render() draws */
    struct td_canvas wallpaper; /* drawn once: copying beats recomputing */
    struct td_canvas scratch;   /* text box interior, for pixel scrolling */
    char hostname[TD_DESK_HOSTNAME_MAX + 1];
    char user[TD_DESK_NAME_MAX + 1];
    char display[TD_DESK_DISPLAY_MAX + 1];
    int64_t since; /* login time, Unix seconds; 0: nobody */
    int locked;
    uint64_t input_ms; /* last user input, monotonic */
    char message[TD_DESK_MESSAGE_MAX + 1];
    char clipboard[TD_DESK_CLIPBOARD_MAX + 1];
    char text[TD_TEXT_MAX + 1];
    size_t text_len;
    int pointer_x, pointer_y;
    enum td_mode mode;
    uint64_t next_ms;  /* when the workload next advances; 0 = now */
    unsigned frame;    /* workload frames so far (scroll, video) */
    size_t typing_pos; /* next character of td_typing_sample */
};

static void td_copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* The canvases that depend on the layout, made for a new one. */
struct td_desk_canvases {
    struct td_canvas wallpaper, scratch;
};

static void td_desk_canvases_free(struct td_desk_canvases *c)
{
    td_canvas_free(&c->wallpaper);
    td_canvas_free(&c->scratch);
}

static int td_desk_canvases_make(struct td_desk_canvases *c,
                                 const struct td_layout *l)
{
    int rc = td_canvas_init(&c->wallpaper, l->width, l->height);
    if (rc == 0)
        rc = td_canvas_init(&c->scratch, l->text_cols * TD_FONT_W,
                            l->text_rows * TD_FONT_H);
    if (rc < 0) {
        td_desk_canvases_free(c);
        return rc;
    }
    for (int y = 0; y < l->height; y++)
        for (int x = 0; x < l->width; x++)
            c->wallpaper.px[(size_t)y * l->width + x] =
                td_layout_wallpaper(l, x, y);
    return 0;
}

struct td_desk *td_desk_new(int width, int height, const char *hostname)
{
    struct td_desk *d = calloc(1, sizeof(*d));
    struct td_desk_canvases c = {0};

    if (!d)
        return NULL;
    if (td_layout_compute(&d->layout, width, height) < 0 ||
        td_canvas_init(&d->canvas, width, height) < 0 ||
        td_desk_canvases_make(&c, &d->layout) < 0) {
        td_desk_free(d);
        return NULL;
    }
    d->wallpaper = c.wallpaper;
    d->scratch = c.scratch;
    td_copy_str(d->hostname, sizeof(d->hostname), hostname);
    d->pointer_x = width / 2;
    d->pointer_y = height / 2;
    return d;
}

void td_desk_free(struct td_desk *d)
{
    if (!d)
        return;
    td_canvas_free(&d->canvas);
    td_canvas_free(&d->wallpaper);
    td_canvas_free(&d->scratch);
    free(d);
}

const struct td_layout *td_desk_layout(const struct td_desk *d)
{
    return &d->layout;
}

void td_desk_screen_size(const struct td_desk *d, int *width, int *height)
{
    *width = d->canvas.width;
    *height = d->canvas.height;
}

static int td_clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void td_desk_fit_text(struct td_desk *d);

int td_desk_resize(struct td_desk *d, int width, int height)
{
    struct td_layout l;
    struct td_desk_canvases c = {0};
    struct td_rect all = {0, 0, d->canvas.width, d->canvas.height};
    int rc;

    if (width < TD_MIN_WIDTH || height < TD_MIN_HEIGHT)
        return -EINVAL;
    width = width < d->canvas.width ? width : d->canvas.width;
    height = height < d->canvas.height ? height : d->canvas.height;
    if (td_layout_compute(&l, width, height) < 0)
        return -EINVAL;
    rc = td_desk_canvases_make(&c, &l);
    if (rc < 0)
        return rc;
    td_canvas_free(&d->wallpaper);
    td_canvas_free(&d->scratch);
    d->wallpaper = c.wallpaper;
    d->scratch = c.scratch;
    d->layout = l;
    /* Rendering only draws inside the desk: what is outside now stays. */
    td_canvas_fill(&d->canvas, all, TD_COLOR_OUTSIDE);
    td_desk_pointer(d, d->pointer_x, d->pointer_y);
    td_desk_fit_text(d);
    return 0;
}

void td_desk_set_hostname(struct td_desk *d, const char *hostname)
{
    td_copy_str(d->hostname, sizeof(d->hostname), hostname);
}

void td_desk_set_session(struct td_desk *d, const char *user,
                         const char *display, int64_t since)
{
    if (!user || !user[0]) {
        d->user[0] = d->display[0] = '\0';
        d->since = 0;
        return;
    }
    if (strncmp(d->user, user, sizeof(d->user) - 1) != 0 || !d->since)
        d->since = since;
    td_copy_str(d->user, sizeof(d->user), user);
    td_copy_str(d->display, sizeof(d->display), display);
}

void td_desk_set_user(struct td_desk *d, const char *name)
{
    td_desk_set_session(d, name, NULL, (int64_t)time(NULL));
}

const char *td_desk_user(const struct td_desk *d)
{
    return d->user;
}

const char *td_desk_display_name(const struct td_desk *d)
{
    return d->display;
}

int64_t td_desk_since(const struct td_desk *d)
{
    return d->since;
}

void td_desk_lock(struct td_desk *d)
{
    d->locked = 1;
}

void td_desk_unlock(struct td_desk *d)
{
    d->locked = 0;
}

int td_desk_locked(const struct td_desk *d)
{
    return d->locked;
}

void td_desk_note_input(struct td_desk *d, uint64_t now_ms)
{
    d->input_ms = now_ms;
}

uint64_t td_desk_idle_seconds(const struct td_desk *d, uint64_t now_ms)
{
    return now_ms > d->input_ms ? (now_ms - d->input_ms) / 1000u : 0;
}

void td_desk_set_message(struct td_desk *d, const char *text)
{
    td_copy_str(d->message, sizeof(d->message), text);
}

int td_desk_set_clipboard(struct td_desk *d, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (n > TD_DESK_CLIPBOARD_MAX)
        return -E2BIG;
    memcpy(d->clipboard, text ? text : "", n + 1);
    return 0;
}

const char *td_desk_clipboard(const struct td_desk *d)
{
    return d->clipboard;
}

void td_desk_paste(struct td_desk *d)
{
    for (const char *p = d->clipboard; *p; p++)
        if (*p >= 0x20 && *p <= 0x7e)
            td_desk_key(d, *p);
}

static const char *const td_mode_names[] = {"idle", "typing", "scroll",
                                            "video"};

const char *td_mode_name(enum td_mode mode)
{
    return td_mode_names[mode];
}

int td_mode_parse(const char *name, enum td_mode *mode)
{
    for (size_t i = 0; i < sizeof(td_mode_names) / sizeof(*td_mode_names);
         i++) {
        if (strcmp(name, td_mode_names[i]) == 0) {
            *mode = (enum td_mode)i;
            return 0;
        }
    }
    return -EINVAL;
}

void td_desk_set_mode(struct td_desk *d, enum td_mode mode)
{
    d->mode = mode;
    d->next_ms = 0;
    d->frame = 0;
}

enum td_mode td_desk_mode(const struct td_desk *d)
{
    return d->mode;
}

/* Number of text box lines the text fills once wrapped at text_cols. */
static int td_desk_line_count(const struct td_desk *d)
{
    int lines = 1, col = 0;
    for (size_t i = 0; i < d->text_len; i++) {
        if (d->text[i] == '\n' || col == d->layout.text_cols) {
            lines++;
            col = 0;
        }
        if (d->text[i] != '\n')
            col++;
    }
    return lines;
}

/* Removes the first wrapped line from the text. */
static void td_desk_drop_first_line(struct td_desk *d)
{
    size_t n = 0;
    while (n < d->text_len && n < (size_t)d->layout.text_cols &&
           d->text[n] != '\n')
        n++;
    if (n < d->text_len && d->text[n] == '\n')
        n++;
    memmove(d->text, d->text + n, d->text_len - n + 1);
    d->text_len -= n;
}

/* Scrolls away the oldest lines until the text fits the box. */
static void td_desk_fit_text(struct td_desk *d)
{
    while (td_desk_line_count(d) > d->layout.text_rows)
        td_desk_drop_first_line(d);
}

void td_desk_key(struct td_desk *d, char ch)
{
    if (ch == '\b') {
        if (d->text_len > 0)
            d->text[--d->text_len] = '\0';
        return;
    }
    if (ch != '\n' && (ch < 0x20 || ch > 0x7e))
        return;
    if (d->text_len == TD_TEXT_MAX)
        td_desk_drop_first_line(d);
    d->text[d->text_len++] = ch;
    d->text[d->text_len] = '\0';
    td_desk_fit_text(d);
}

const char *td_desk_text(const struct td_desk *d)
{
    return d->text;
}

void td_desk_clear_text(struct td_desk *d)
{
    d->text_len = 0;
    d->text[0] = '\0';
}

void td_desk_pointer(struct td_desk *d, int x, int y)
{
    d->pointer_x = td_clamp(x, 0, d->layout.width - 1);
    d->pointer_y = td_clamp(y, 0, d->layout.height - 1);
}

void td_desk_pointer_pos(const struct td_desk *d, int *x, int *y)
{
    *x = d->pointer_x;
    *y = d->pointer_y;
}

enum td_click td_desk_click(struct td_desk *d)
{
    if (td_rect_contains(&d->layout.logoff, d->pointer_x, d->pointer_y))
        return TD_CLICK_LOGOFF;
    return TD_CLICK_NOTHING;
}

void td_desk_logoff(struct td_desk *d)
{
    td_desk_set_session(d, NULL, NULL, 0);
    td_desk_clear_text(d);
    td_desk_unlock(d);
}

void td_desk_end_session(struct td_desk *d, char *event, size_t size)
{
    snprintf(event, size, "event logoff%s%s", d->user[0] ? " " : "", d->user);
    td_desk_logoff(d);
}

enum td_desk_effect td_desk_input(struct td_desk *d,
                                  const struct td_input_event *ev,
                                  uint64_t now_ms, char *event, size_t size)
{
    snprintf(event, size, "%s", "");
    if (ev->kind == TD_INPUT_POWER)
        return TD_EFFECT_NONE;
    td_desk_note_input(d, now_ms);
    if (ev->kind == TD_INPUT_SECURE) {
        /* as on Windows: Ctrl+Alt+Del brings up the secure screen, here
         * the lock screen, which tests (and users) can see */
        td_desk_lock(d);
    } else if (ev->kind == TD_INPUT_POINTER) {
        td_desk_pointer(d, ev->x, ev->y);
    } else if (d->locked) {
        if (ev->kind != TD_INPUT_CHAR || ev->ch != '\n')
            return TD_EFFECT_NONE;
        td_desk_unlock(d);
        snprintf(event, size, "%s", "event unlock");
        return TD_EFFECT_UNLOCK;
    } else if (ev->kind == TD_INPUT_CHAR) {
        td_desk_key(d, ev->ch);
    } else if (ev->kind == TD_INPUT_PASTE) {
        td_desk_paste(d);
    } else if (ev->kind == TD_INPUT_CLICK &&
               td_desk_click(d) == TD_CLICK_LOGOFF) {
        td_desk_end_session(d, event, size);
        return TD_EFFECT_LOGOFF;
    }
    return TD_EFFECT_NONE;
}

static void td_desk_type_next(struct td_desk *d)
{
    td_desk_key(d, td_typing_sample[d->typing_pos]);
    d->typing_pos = (d->typing_pos + 1) % (sizeof(td_typing_sample) - 1);
}

int td_desk_tick(struct td_desk *d, uint64_t now_ms)
{
    int interval;

    if (d->mode == TD_MODE_IDLE)
        return -1;
    interval = d->mode == TD_MODE_TYPING ? TD_TYPING_INTERVAL_MS
                                         : TD_FRAME_INTERVAL_MS;
    if (now_ms >= d->next_ms) {
        if (d->mode == TD_MODE_TYPING)
            td_desk_type_next(d);
        else
            d->frame++;
        /* Keep the cadence, but never try to catch up on missed frames. */
        d->next_ms = d->next_ms && now_ms - d->next_ms < (uint64_t)interval
                         ? d->next_ms + interval
                         : now_ms + interval;
    }
    return (int)(d->next_ms - now_ms);
}

/* Appends s to out (room for size bytes), each UTF-8 sequence as one '?':
 * the font has ASCII only, and one cell per character keeps widths true. */
static void td_desk_ascii(char *out, size_t size, const char *s)
{
    size_t n = strlen(out);
    for (; *s && n + 1 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80 && c < 0xc0)
            continue; /* continuation byte: its lead byte gave the '?' */
        out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[n] = '\0';
}

static void td_desk_draw_topbar(struct td_desk *d, const char *clock)
{
    const struct td_layout *l = &d->layout;
    char user[TD_DESK_NAME_MAX + TD_DESK_DISPLAY_MAX + 16];

    td_canvas_fill(&d->canvas, l->topbar, TD_COLOR_TOPBAR);
    td_canvas_text(&d->canvas, l->hostname.x, l->hostname.y, d->hostname,
                   l->hostname.w / TD_FONT_W, TD_COLOR_TOPBAR_TEXT,
                   TD_COLOR_TOPBAR);
    snprintf(user, sizeof(user), "user: %s", d->user[0] ? d->user : "(none)");
    if (d->user[0] && d->display[0]) {
        td_desk_ascii(user, sizeof(user), " (");
        td_desk_ascii(user, sizeof(user), d->display);
        td_desk_ascii(user, sizeof(user), ")");
    }
    td_canvas_text(&d->canvas, l->user.x, l->user.y, user,
                   l->user.w / TD_FONT_W, TD_COLOR_TOPBAR_TEXT,
                   TD_COLOR_TOPBAR);
    td_canvas_fill(&d->canvas, l->logoff, TD_COLOR_LOGOFF);
    td_canvas_text(&d->canvas, l->logoff.x + TD_TEXT_PAD, l->clock.y, "Log off",
                   7, TD_COLOR_LOGOFF_TEXT, TD_COLOR_LOGOFF);
    td_canvas_text(&d->canvas, l->clock.x, l->clock.y, clock, TD_CLOCK_CHARS,
                   TD_COLOR_TOPBAR_TEXT, TD_COLOR_TOPBAR);
}

static void td_desk_draw_banner(struct td_desk *d)
{
    const struct td_layout *l = &d->layout;
    if (!d->message[0])
        return;
    td_canvas_fill(&d->canvas, l->banner, TD_COLOR_BANNER);
    td_canvas_text(&d->canvas, l->banner.x + TD_TEXT_PAD,
                   l->banner.y + TD_TEXT_PAD, d->message,
                   (l->banner.w - 2 * TD_TEXT_PAD) / TD_FONT_W,
                   TD_COLOR_BANNER_TEXT, TD_COLOR_BANNER);
}

/* Draws the typed text, wrapped at text_cols, one cell per character. */
static void td_desk_draw_text(struct td_desk *d)
{
    const struct td_layout *l = &d->layout;
    int col = 0, row = 0, x, y;

    for (size_t i = 0; i < d->text_len && row < l->text_rows; i++) {
        if (d->text[i] == '\n' || col == l->text_cols) {
            row++;
            col = 0;
            if (d->text[i] == '\n')
                continue;
            if (row == l->text_rows)
                break;
        }
        td_layout_text_cell(l, col, row, &x, &y);
        td_canvas_text(&d->canvas, x, y, d->text + i, 1, TD_COLOR_TEXT,
                       TD_COLOR_TEXTBOX);
        col++;
    }
}

/* Scroll workload: numbered lines moving up TD_SCROLL_STEP_PX a frame. */
static void td_desk_draw_scroll(struct td_desk *d)
{
    const struct td_layout *l = &d->layout;
    unsigned offset = d->frame * TD_SCROLL_STEP_PX;
    unsigned first = offset / TD_FONT_H;
    int shift = (int)(offset % TD_FONT_H), x, y;
    char line[128];
    struct td_rect all = {0, 0, d->scratch.width, d->scratch.height};

    td_canvas_fill(&d->scratch, all, TD_COLOR_TEXTBOX);
    for (int r = 0; r <= l->text_rows; r++) {
        snprintf(line, sizeof(line),
                 "%05u  Scrolling text: a page of a long document.",
                 (first + (unsigned)r) % 100000u);
        td_canvas_text(&d->scratch, 0, r * TD_FONT_H - shift, line,
                       l->text_cols, TD_COLOR_TEXT, TD_COLOR_TEXTBOX);
    }
    td_layout_text_cell(l, 0, 0, &x, &y);
    td_canvas_copy(&d->canvas, x, y, &d->scratch, all);
}

/* Video workload: a pattern that moves under the top bar every frame, so
 * every pixel changes, as in full-screen video. */
static void td_desk_draw_video(struct td_desk *d)
{
    unsigned f = d->frame;
    for (int y = TD_TOPBAR_H; y < d->layout.height; y++) {
        uint32_t *row = d->canvas.px + (size_t)y * d->canvas.width;
        unsigned vy = (unsigned)y + 3u * f;
        for (int x = 0; x < d->layout.width; x++) {
            unsigned vx = (unsigned)x + 6u * f;
            unsigned check = ((vx >> 5) ^ (vy >> 5)) & 1u;
            row[x] = (vx & 0xffu) << 16 | (vy & 0xffu) << 8 |
                     (check ? 0xc0u : 0x40u);
        }
    }
}

/* The lock screen: a plain area with one line of text. */
static void td_desk_draw_lock(struct td_desk *d)
{
    const struct td_layout *l = &d->layout;
    td_canvas_fill(&d->canvas, l->lock, TD_COLOR_LOCK);
    td_canvas_text(&d->canvas, l->lock_text.x, l->lock_text.y, TD_LOCK_TEXT,
                   l->lock_text.w / TD_FONT_W, TD_COLOR_LOCK_TEXT,
                   TD_COLOR_LOCK);
}

/* The pointer marker: a right triangle below its top-left hotspot, filled
 * with TD_COLOR_POINTER and edged in TD_COLOR_POINTER_EDGE; clipped to the
 * desk, as nothing is drawn outside it. */
static void td_desk_draw_pointer(struct td_desk *d)
{
    for (int y = 0; y < TD_POINTER_SIZE; y++) {
        for (int x = 0; x <= y; x++) {
            int px = d->pointer_x + x, py = d->pointer_y + y;
            int edge = (x == y && y > 0) || y == TD_POINTER_SIZE - 1;
            struct td_rect dot = {px, py, 1, 1};
            if (px >= d->layout.width || py >= d->layout.height)
                continue;
            td_canvas_fill(&d->canvas, dot,
                           edge ? TD_COLOR_POINTER_EDGE : TD_COLOR_POINTER);
        }
    }
}

const struct td_canvas *td_desk_render(struct td_desk *d, const char *clock)
{
    const struct td_layout *l = &d->layout;
    struct td_rect all = {0, 0, l->width, l->height};

    if (d->locked) {
        td_desk_draw_lock(d);
    } else if (d->mode == TD_MODE_VIDEO) {
        td_desk_draw_video(d);
    } else {
        td_canvas_copy(&d->canvas, 0, 0, &d->wallpaper, all);
        td_canvas_fill(&d->canvas, l->window, TD_COLOR_WINDOW);
        td_canvas_text(&d->canvas, l->label.x, l->label.y,
                       "Type here:", l->label.w / TD_FONT_W,
                       TD_COLOR_WINDOW_TEXT, TD_COLOR_WINDOW);
        td_canvas_fill(&d->canvas, l->textbox, TD_COLOR_TEXTBOX);
        if (d->mode == TD_MODE_SCROLL)
            td_desk_draw_scroll(d);
        else
            td_desk_draw_text(d);
    }
    return td_desk_render_clock(d, clock, NULL);
}

/* The last layers of td_desk_render(): everything the top bar's fill
 * covers lies under them. */
const struct td_canvas *td_desk_render_clock(struct td_desk *d,
                                             const char *clock, int *rows)
{
    const struct td_layout *l = &d->layout;
    int bottom = l->topbar.y + l->topbar.h;

    td_desk_draw_topbar(d, clock);
    if (!d->locked)
        td_desk_draw_banner(d);
    td_desk_draw_pointer(d);
    if (rows)
        *rows = bottom < d->canvas.height ? bottom : d->canvas.height;
    return &d->canvas;
}
