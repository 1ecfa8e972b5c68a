/*
 * td_desk.h - the state of testdesk's desktop and how it is drawn.
 *
 * A desk owns its canvas, which has the size of the screen (the
 * framebuffer). The desk itself is laid out at that size or, after
 * td_desk_resize(), at a smaller one: it is then drawn into the top-left
 * corner and the rest of the canvas stays TD_COLOR_OUTSIDE.
 *
 * Events (keys, pointer, clicks, control commands) change its state;
 * td_desk_render() draws the whole state into the canvas following
 * td_layout.h, so the picture depends only on the state, the clock text and
 * the workload frame counter. The desk knows nothing of devices or sockets;
 * main.c feeds it. Times are passed in: monotonic milliseconds for input
 * and workloads, Unix seconds for the login time.
 */
#ifndef TD_DESK_H
#define TD_DESK_H

#include <stddef.h>
#include <stdint.h>

#include "td_canvas.h"
#include "td_input.h"

/* Benchmark workloads (see README.md in this folder). */
enum td_mode {
    TD_MODE_IDLE,   /* nothing moves but the clock */
    TD_MODE_TYPING, /* text appears in the text box at typing speed */
    TD_MODE_SCROLL, /* a page of text scrolls in the text box */
    TD_MODE_VIDEO,  /* full-screen motion every frame */
};

/* Longest strings kept, in bytes. */
#define TD_DESK_NAME_MAX      64    /* user name */
#define TD_DESK_DISPLAY_MAX   128   /* the user's display name */
#define TD_DESK_MESSAGE_MAX   256   /* banner message */
#define TD_DESK_CLIPBOARD_MAX 32768 /* clipboard text */
#define TD_DESK_HOSTNAME_MAX  64
/* Room for any event line td_desk_end_session()/td_desk_input() write. */
#define TD_DESK_EVENT_MAX (TD_DESK_NAME_MAX + 32)

/* What a click hit. */
enum td_click {
    TD_CLICK_NOTHING,
    TD_CLICK_LOGOFF, /* the "Log off" button: the caller reports it */
};

/* What an input event did beyond changing the picture. */
enum td_desk_effect {
    TD_EFFECT_NONE,
    TD_EFFECT_LOGOFF, /* the user clicked "Log off" */
    TD_EFFECT_UNLOCK, /* the user unlocked the screen with Enter */
};

struct td_desk;

/* Creates a desk for a width x height screen, laid out at that size. NULL
 * on bad size (below TD_MIN_WIDTH x TD_MIN_HEIGHT) or no memory. hostname
 * is copied (and drawn truncated to fit the top bar). */
struct td_desk *td_desk_new(int width, int height, const char *hostname);
void td_desk_free(struct td_desk *d);

/* The layout of the desk (its width and height are the desk's size). */
const struct td_layout *td_desk_layout(const struct td_desk *d);
/* The screen's (canvas's) size, fixed at td_desk_new(). */
void td_desk_screen_size(const struct td_desk *d, int *width, int *height);

/*
 * Lays the desk out again at width x height, limited to the screen's size;
 * td_desk_layout() then gives the size used. All state (session, lock, text,
 * message, mode, clipboard) is kept; the pointer is moved inside the desk and
 * text that no longer fits scrolls away as when typing. Returns 0, -EINVAL
 * when the size is below TD_MIN_WIDTH x TD_MIN_HEIGHT, -ENOMEM (the desk is
 * then unchanged).
 */
int td_desk_resize(struct td_desk *d, int width, int height);

void td_desk_set_hostname(struct td_desk *d, const char *hostname);

/*
 * Starts or changes the session: user is shown in the top bar with display
 * (may be NULL or "") in brackets after it. since (Unix seconds) is the
 * login time, kept when user already is the logged-in user. A NULL or ""
 * user ends the session (no user, display name or login time); the text and
 * the lock are kept (td_desk_logoff() clears them too). The caller validates
 * the names; they are truncated to the maxima above.
 */
void td_desk_set_session(struct td_desk *d, const char *user,
                         const char *display, int64_t since);
/* td_desk_set_session(d, name, NULL, the current Unix time). */
void td_desk_set_user(struct td_desk *d, const char *name);
const char *td_desk_user(const struct td_desk *d);
const char *td_desk_display_name(const struct td_desk *d);
/* Login time in Unix seconds; 0 when nobody is logged in. */
int64_t td_desk_since(const struct td_desk *d);

/* "Log off": forgets the user, the typed text and the lock. */
void td_desk_logoff(struct td_desk *d);
/* td_desk_logoff() and writes the event line that tells the control
 * clients: "event logoff USER", or "event logoff" when nobody was logged
 * in. size should be TD_DESK_EVENT_MAX. */
void td_desk_end_session(struct td_desk *d, char *event, size_t size);

/* The lock screen (also what Ctrl+Alt+Del brings up, as the secure
 * attention sequence): while locked, only Enter (unlocking) and pointer moves
 * are taken from the user. */
void td_desk_lock(struct td_desk *d);
void td_desk_unlock(struct td_desk *d);
int td_desk_locked(const struct td_desk *d);

/* Records user input at now_ms (monotonic); td_desk_input() does it. */
void td_desk_note_input(struct td_desk *d, uint64_t now_ms);
/* Whole seconds since the last input (0 if now_ms is earlier). */
uint64_t td_desk_idle_seconds(const struct td_desk *d, uint64_t now_ms);

/* Shows text in a banner under the top bar; NULL or "" hides it. */
void td_desk_set_message(struct td_desk *d, const char *text);

/* Stores text (NUL-terminated bytes, UTF-8 by convention) as the clipboard.
 * Returns 0 or -E2BIG when it is over TD_DESK_CLIPBOARD_MAX bytes. */
int td_desk_set_clipboard(struct td_desk *d, const char *text);
const char *td_desk_clipboard(const struct td_desk *d);
/* Types the clipboard's printable ASCII characters into the text box;
 * other bytes (newlines, UTF-8 sequences) are skipped. */
void td_desk_paste(struct td_desk *d);

void td_desk_set_mode(struct td_desk *d, enum td_mode mode);
enum td_mode td_desk_mode(const struct td_desk *d);
const char *td_mode_name(enum td_mode mode);
/* Parses "idle", "typing", "scroll" or "video". Returns 0 or -EINVAL. */
int td_mode_parse(const char *name, enum td_mode *mode);

/* Adds a typed character to the text box: printable ASCII is appended,
 * '\n' starts a line, '\b' deletes the last character, others are ignored.
 * When the box is full the oldest line scrolls away. This is the text box
 * itself (the "type" command, the typing workload): the lock does not
 * apply; td_desk_input() is the user's keyboard. */
void td_desk_key(struct td_desk *d, char ch);
/* The text box contents ('\n' between lines). */
const char *td_desk_text(const struct td_desk *d);
void td_desk_clear_text(struct td_desk *d);

/* Moves the pointer marker's hotspot to (x, y), clamped to the desk. */
void td_desk_pointer(struct td_desk *d, int x, int y);
void td_desk_pointer_pos(const struct td_desk *d, int *x, int *y);
/* What a left click at the pointer position hits. */
enum td_click td_desk_click(struct td_desk *d);

/*
 * Applies one event from the user's devices at now_ms (monotonic): records
 * it as input (td_desk_idle_seconds), then types the character, moves the
 * pointer, pastes (Ctrl+V) or clicks. A click on "Log off" ends the session
 * (td_desk_end_session()); while locked, Enter unlocks and other keys,
 * pastes and clicks do nothing. When the event changes the session, writes
 * the event line for the control clients into event ("event logoff USER",
 * "event unlock"), else "". TD_INPUT_POWER is left to the caller.
 */
enum td_desk_effect td_desk_input(struct td_desk *d,
                                  const struct td_input_event *ev,
                                  uint64_t now_ms, char *event, size_t size);

/*
 * Advances the workload to now_ms (a monotonic clock). Returns the delay in
 * ms until the workload next wants a frame, or -1 when it needs none (idle).
 */
int td_desk_tick(struct td_desk *d, uint64_t now_ms);

/* Draws everything; clock is the "HH:MM:SS" text to show. The canvas (of
 * the screen's size) stays owned by the desk and valid until the next call,
 * td_desk_resize() or td_desk_free(). */
const struct td_canvas *td_desk_render(struct td_desk *d, const char *clock);

/*
 * Redraws only what a new clock text or hostname changes: the top bar and
 * what is drawn over it (banner, pointer). Gives the picture
 * td_desk_render() would when nothing but those changed since the last
 * full render, at a
 * fraction of its cost: an idle desktop (a pool's spare, dozens of instant
 * clones) then costs its host almost nothing between frames. Rows 0 up to
 * *rows (exclusive) are the only ones it may have changed.
 */
const struct td_canvas *td_desk_render_clock(struct td_desk *d,
                                             const char *clock, int *rows);

#endif
