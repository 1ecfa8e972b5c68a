/*
 * tsqmp.h - a minimal blocking QMP client for tests.
 *
 * Tests drive their guest the way a hypervisor manager does: over QEMU's
 * QMP socket (docs/interop/qmp-spec.txt). This client connects to a unix
 * socket, negotiates capabilities and runs one command at a time, waiting
 * for the reply with a timeout and skipping the asynchronous events that
 * QEMU interleaves. Every wait is bounded, and so is every line read (at
 * most TSQMP_MAX_LINE bytes), so a wedged or misbehaving QEMU fails a test
 * instead of hanging it.
 *
 * All functions return 0 or a negative errno and print the reason to stderr:
 * -ETIMEDOUT when QEMU did not answer in time, -ECONNRESET when it closed
 * the connection, -EPROTO for a reply that is not QMP, -EMSGSIZE for a line
 * over the limit (the connection is unusable after that), -EREMOTEIO when
 * QEMU answered with an error, -EINVAL for bad arguments.
 *
 * QEMU serves one client per QMP socket at a time: a second connection gets
 * no greeting until the first one closes.
 */
#ifndef TSQMP_H
#define TSQMP_H

#include <jansson.h>

/* Longest message accepted from QEMU, newline included. */
#define TSQMP_MAX_LINE (1024 * 1024)

/* Reply timeout used until tsqmp_set_timeout() is called. */
#define TSQMP_DEFAULT_TIMEOUT_MS 10000

/* Largest absolute pointer coordinate (QEMU's INPUT_EVENT_ABS_MAX). */
#define TSQMP_ABS_MAX 32767

/* A QMP connection; opaque, owned by whoever called tsqmp_connect(). */
struct tsqmp;

/*
 * Connects to the QMP socket at path, reads QEMU's greeting and sends
 * qmp_capabilities. Until timeout_ms has passed, a socket that does not
 * exist yet or refuses the connection is retried, since QEMU creates it a
 * moment after it starts. On success *out is the new connection.
 */
int tsqmp_connect(const char *path, int timeout_ms, struct tsqmp **out);

/* Closes and frees a connection; NULL is fine. */
void tsqmp_close(struct tsqmp *q);

/* Sets how long tsqmp_execute() waits for a reply (milliseconds, > 0). */
void tsqmp_set_timeout(struct tsqmp *q, int timeout_ms);

/*
 * Runs command with arguments args (an object, or NULL for none; not
 * consumed) and waits for its reply. Events and stale replies to earlier,
 * timed-out commands are skipped. On success, when ret is not NULL, *ret is
 * a new reference to the reply's "return" value (json_decref() it).
 */
int tsqmp_execute(struct tsqmp *q, const char *command, json_t *args,
                  json_t **ret);

/*
 * Presses and releases one key, given by its QEMU qcode ("h", "1", "spc",
 * "ret", "minus", ... see qapi/ui.json QKeyCode). With shift set, the key
 * is pressed while the left Shift key is held, in one input-send-event.
 */
int tsqmp_send_key_shift(struct tsqmp *q, const char *qcode, int shift);

/* tsqmp_send_key_shift() without Shift. */
int tsqmp_send_key(struct tsqmp *q, const char *qcode);

/*
 * Types text as a user would on a US keyboard: printable ASCII and '\n'
 * (Enter), with Shift for upper case and shifted symbols. Keys are paced a
 * few milliseconds apart, as typing is, so the guest's PS/2 queue never
 * overflows. Returns -EINVAL before sending anything if text holds a
 * character without a key.
 */
int tsqmp_type_text(struct tsqmp *q, const char *text);

/*
 * Moves the absolute pointer (usb-tablet, virtio-tablet) to (x, y), both in
 * 0..TSQMP_ABS_MAX, which the guest scales to its screen size.
 */
int tsqmp_move_abs(struct tsqmp *q, int x, int y);

/*
 * Writes the guest's screen to path as a binary PPM (QEMU's default
 * screendump format). QEMU opens the file itself, relative to its own
 * working directory, so pass an absolute path.
 */
int tsqmp_screendump(struct tsqmp *q, const char *path);

#endif
