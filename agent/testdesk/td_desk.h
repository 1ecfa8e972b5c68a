/*
 * td_desk.h - the state of testdesk's desktop and how it is drawn.
 *
 * A desk owns its canvas. Events (keys, pointer, clicks, control commands)
 * change its state; td_desk_render() draws the whole state into the canvas
 * following td_layout.h, so the picture depends only on the state, the clock
 * text and the workload frame counter. The desk knows nothing of devices or
 * sockets; main.c feeds it.
 */
#ifndef TD_DESK_H
#define TD_DESK_H

#include <stdint.h>

#include "td_canvas.h"

/* Benchmark workloads (see README.md in this folder). */
enum td_mode {
    TD_MODE_IDLE,   /* nothing moves but the clock */
    TD_MODE_TYPING, /* text appears in the text box at typing speed */
    TD_MODE_SCROLL, /* a page of text scrolls in the text box */
    TD_MODE_VIDEO,  /* full-screen motion every frame */
};

/* Longest user name and banner message kept, in bytes. */
#define TD_DESK_NAME_MAX 64
#define TD_DESK_MESSAGE_MAX 256

/* What a click hit. */
enum td_click {
    TD_CLICK_NOTHING,
    TD_CLICK_LOGOFF, /* the "Log off" button: the caller reports it */
};

struct td_desk;

/* Creates a desk for a width x height screen. NULL on bad size or no
 * memory. hostname is copied (truncated to fit the top bar). */
struct td_desk *td_desk_new(int width, int height, const char *hostname);
void td_desk_free(struct td_desk *d);

const struct td_layout *td_desk_layout(const struct td_desk *d);

/* Shows name as the logged-in user; NULL or "" means nobody. */
void td_desk_set_user(struct td_desk *d, const char *name);
const char *td_desk_user(const struct td_desk *d);

/* Shows text in a banner under the top bar; NULL or "" hides it. */
void td_desk_set_message(struct td_desk *d, const char *text);

void td_desk_set_mode(struct td_desk *d, enum td_mode mode);
enum td_mode td_desk_mode(const struct td_desk *d);
const char *td_mode_name(enum td_mode mode);
/* Parses "idle", "typing", "scroll" or "video". Returns 0 or -EINVAL. */
int td_mode_parse(const char *name, enum td_mode *mode);

/* Adds a typed character to the text box: printable ASCII is appended,
 * '\n' starts a line, '\b' deletes the last character, others are ignored.
 * When the box is full the oldest line scrolls away. */
void td_desk_key(struct td_desk *d, char ch);
/* The text box contents ('\n' between lines). */
const char *td_desk_text(const struct td_desk *d);
void td_desk_clear_text(struct td_desk *d);

/* Moves the pointer marker's hotspot to (x, y), clamped to the screen. */
void td_desk_pointer(struct td_desk *d, int x, int y);
void td_desk_pointer_pos(const struct td_desk *d, int *x, int *y);
/* A left click at the pointer position. */
enum td_click td_desk_click(struct td_desk *d);

/* "Log off": forgets the user and the typed text. */
void td_desk_logoff(struct td_desk *d);

/*
 * Advances the workload to now_ms (a monotonic clock). Returns the delay in
 * ms until the workload next wants a frame, or -1 when it needs none (idle).
 */
int td_desk_tick(struct td_desk *d, uint64_t now_ms);

/* Draws everything; clock is the "HH:MM:SS" text to show. The canvas stays
 * owned by the desk and valid until the next call or td_desk_free(). */
const struct td_canvas *td_desk_render(struct td_desk *d, const char *clock);

#endif
