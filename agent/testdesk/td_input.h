/*
 * td_input.h - keyboard and pointer input from evdev (/dev/input/event*).
 *
 * Keys become characters through the US layout (td_keymap.h), except
 * Ctrl+V (either Ctrl key held), which becomes a paste; absolute
 * pointer devices (virtio-tablet, usb-tablet) are scaled to screen pixels;
 * the left button gives clicks. Devices that appear later (modules loading
 * after testdesk starts) are picked up by td_input_rescan().
 */
#ifndef TD_INPUT_H
#define TD_INPUT_H

#include <poll.h>

#define TD_INPUT_DEVICES 16

enum td_input_kind {
    TD_INPUT_CHAR,    /* ch was typed */
    TD_INPUT_POINTER, /* the pointer moved to (x, y) */
    TD_INPUT_CLICK,   /* the left button went down */
    TD_INPUT_POWER,   /* the power button (ACPI) was pressed */
    TD_INPUT_PASTE,   /* Ctrl+V: paste the clipboard */
    TD_INPUT_SECURE,  /* Ctrl+Alt+Delete: the secure attention sequence */
};

struct td_input_event {
    enum td_input_kind kind;
    char ch;
    int x, y;
};

typedef void (*td_input_fn)(void *arg, const struct td_input_event *ev);

struct td_input;

/* Watches the event devices in dir for a width x height screen. Returns 0
 * or -ENOMEM; finding no device is not an error. */
int td_input_new(struct td_input **out, const char *dir, int width, int height);
void td_input_free(struct td_input *in);

/* Opens devices not yet open. Returns how many were added. */
int td_input_rescan(struct td_input *in);

/* Fills up to TD_INPUT_DEVICES pollfds; returns how many. */
int td_input_pollfds(const struct td_input *in, struct pollfd *pfds);

/* Reads the devices poll() flagged and calls fn for each event. */
void td_input_handle(struct td_input *in, const struct pollfd *pfds, int n,
                     td_input_fn fn, void *arg);

#endif
