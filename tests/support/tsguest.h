/*
 * tsguest.h - test guests run by libdeskpool-hv, and what tests do with
 * them: read their serial console, look at their screen, type and point.
 *
 * Integration tests run the product's own code to start their guests: each
 * test (or fixture) gets a state folder of its own and an hv_host on it
 * (hv_vm.h), creates VMs from the test image ($DESKPOOL_GUEST_DIR: a
 * linked clone of root.qcow2, direct boot of vmlinuz + initrd.img) and
 * drives them through hv_vm_qmp(), as a manager would.
 *
 * Test root: every state folder lives under one folder per test process,
 * /tmp/dpt-XXXXXX. QEMU runs detached from whoever started it, and Check
 * runs no teardown for a failing test, so a failed test can leave QEMUs
 * behind; tsguest_cleanup() ends every process whose command line names
 * the root and removes the tree. It runs at exit of the process that made
 * the root and after tsguest_run_suite(); test mains should use that, so
 * that the root is made before Check forks the tests and outlives them.
 *
 * Errors: functions return 0 (or a count) or a negative errno and print
 * the reason to stderr, prefixed "tsguest:", so a Check message can stay
 * short. Waits are bounded by the caller's timeout; nothing here asserts
 * on wall-clock time.
 *
 * Forking: an hv_host is plain data, so a process forked by Check can use
 * its parent's host and VMs; every QMP command is a short connection of
 * its own (hv_vm_qmp()).
 */
#ifndef TSGUEST_H
#define TSGUEST_H

#include <check.h>
#include <stddef.h>
#include <sys/types.h>

#include "hv_vm.h"
#include "tsppm.h"

/* Kernel command line of every test guest; callers may add to it. */
#define TSGUEST_CMDLINE                                                        \
    "console=ttyS0 vga=0x344 quiet vt.global_cursor_default=0"
#define TSGUEST_MEMORY_MB 256

/* Screen size vga=0x344 asks for (the spec's default display size). */
#define TSGUEST_WIDTH  1024
#define TSGUEST_HEIGHT 768

/* Serial lines of the image: its init mounted the root disk, and testdesk
 * drew its first frame (followed by " WxHxBPP mode=M"). The guest's
 * console ends lines with "\r\n"; append it to match a whole line. */
#define TSGUEST_ROOT_MOUNTED "deskpool-guest: root mounted"
#define TSGUEST_READY        "testdesk: ready"

/* Largest absolute pointer coordinate (QEMU's INPUT_EVENT_ABS_MAX). */
#define TSGUEST_ABS_MAX 32767

/* How long one QMP command (screendump, an input event) may take. */
#define TSGUEST_QMP_TIMEOUT_MS 10000

/* --- time ---------------------------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds: for deadlines, never for assertions. */
long long tsguest_now_ms(void);

/* The CPU's model name from /proc/cpuinfo ("unknown CPU" if none), for
 * benchmark tables. */
void tsguest_cpu_model(char *buf, size_t size);

/* The uid pid runs as when its real, effective, saved and file-system
 * uids are all that one (/proc/PID/status); -2 when they differ, -1 when
 * pid cannot be read. */
int tsguest_proc_uid(pid_t pid);

/* Sleeps ms milliseconds, resuming after signals. */
void tsguest_sleep_ms(int ms);

/* --- test root ---------------------------------------------------------- */

/*
 * The test root of this process, made on first use (mkdtemp, mode 0700)
 * with tsguest_cleanup() registered to run at exit. A process forked
 * afterwards shares it but never cleans it up. NULL if it cannot be made.
 */
const char *tsguest_root(void);

/*
 * SIGKILLs every process (but this one) whose command line contains the
 * test root, waits for them to be gone and removes the root with all in
 * it. Only the process that made the root does anything; idempotent.
 */
void tsguest_cleanup(void);

/*
 * Runs suite s (consumed) with CK_ENV verbosity, after making the test
 * root, and cleans up after it. Returns EXIT_SUCCESS when every test
 * passed, EXIT_FAILURE otherwise: `return tsguest_run_suite(x_suite());`.
 */
int tsguest_run_suite(Suite *s);

/* Runs suite s (consumed) with CK_ENV verbosity, nothing else: the main
 * of a unit test. Returns EXIT_SUCCESS when every test passed. */
int tsguest_run_checks(Suite *s);

/* --- hosts ---------------------------------------------------------------- */

/*
 * Opens a host (quiet) on state_dir, or, when state_dir is NULL, on a new
 * empty state folder under the test root (ROOT/PID-N). *out is the host,
 * NULL on failure.
 */
int tsguest_host_open(struct hv_host **out, const char *state_dir);

/*
 * Deletes every VM of h (stopping its QEMU), kills any process still
 * naming the state folder, closes h and removes the state folder if it is
 * under the test root. NULL is fine.
 */
void tsguest_host_close(struct hv_host *h);

/* --- VMs ------------------------------------------------------------------ */

/*
 * The guest image folder from $DESKPOOL_GUEST_DIR, after checking that it
 * is an absolute path holding vmlinuz, initrd.img and root.qcow2; NULL
 * (and what to do about it) otherwise.
 */
const char *tsguest_guest_dir(void);

/*
 * The accelerator test guests run with: $DESKPOOL_ACCEL (tcg, kvm or
 * auto) if set, else auto; auto is libdeskpool-hv's KVM boot probe, run
 * once per test root (the answer is kept there, for forked tests too) and
 * printed. -EINVAL for a DESKPOOL_ACCEL that is none of those.
 */
int tsguest_accel(enum hv_accel *out);

/*
 * Fills s for a VM id booting the test image: root.qcow2 as golden,
 * TSGUEST_CMDLINE plus extra_args (NULL or "" for none, e.g.
 * "testdesk.mode=idle"), TSGUEST_MEMORY_MB, tsguest_accel(). The id is
 * not validated (hv_vm_create() does that). -ENAMETOOLONG if something
 * does not fit.
 */
int tsguest_spec(struct hv_spec *s, const char *id, const char *extra_args);

/* Creates VM id from tsguest_spec() on h (stopped). */
int tsguest_create(struct hv_host *h, const char *id, const char *extra_args);

/*
 * Creates and starts VM id. Returns once QEMU answers QMP, not once the
 * guest booted: wait for TSGUEST_READY for that. On failure the VM is
 * deleted again.
 */
int tsguest_start(struct hv_host *h, const char *id, const char *extra_args);

/*
 * A test fixture's start: opens a host on a new state folder (as
 * tsguest_host_open(out, NULL)) and starts VM id on it (tsguest_start()),
 * saying where on stderr. On failure *out may still hold the host (NULL
 * if it could not be opened): close it with tsguest_host_close() either
 * way.
 */
int tsguest_host_start(struct hv_host **out, const char *id,
                       const char *extra_args);

/* --- serial console ------------------------------------------------------- */

/*
 * How many times text occurs (not overlapping) in the serial log of the
 * VM's current run (the last 8 MB of it), or a negative errno when there
 * is no log to read (e.g. -ENOENT: the VM is not running).
 */
int tsguest_serial_count(struct hv_host *h, const char *id, const char *text);

/*
 * Waits until text occurs at least `times` times in the serial log, for at
 * most timeout_ms. Returns 0, -ETIMEDOUT, or -ESRCH when QEMU is not
 * running (anymore); on failure the tails of the serial log and of QEMU's
 * own log go to stderr.
 */
int tsguest_wait_serial(struct hv_host *h, const char *id, const char *text,
                        int times, int timeout_ms);

/* Prints the last part of the VM's serial log to stderr. */
void tsguest_print_serial(struct hv_host *h, const char *id);

/* --- screen --------------------------------------------------------------- */

/* Where tsguest_screendump() writes: STATE/screen-ID.ppm. */
int tsguest_screen_path(struct hv_host *h, const char *id, char *buf,
                        size_t size);

/*
 * Takes a screendump of the VM (QMP screendump, a PPM at
 * tsguest_screen_path(), kept there) and loads it into *out (free it with
 * tsppm_free()); *out is NULL on failure.
 */
int tsguest_screendump(struct hv_host *h, const char *id, struct tsppm **out);

/*
 * A test's look at the screen: frees *shot, takes a new screendump into
 * it (tsguest_screendump()) and checks that it is TSGUEST_WIDTH x
 * TSGUEST_HEIGHT. Returns 0, a negative errno from the screendump (*shot
 * NULL), or -ERANGE for another size (*shot holds it; reason on stderr).
 * *shot must be NULL or an image; the caller frees the last one.
 */
int tsguest_screen(struct hv_host *h, const char *id, struct tsppm **shot);

/*
 * Keeps the VM's last screendump for CI, byte for byte, as
 * tsscreen_keep_file() does: $DESKPOOL_BUILD_DIR/tests/integration/
 * TEST-NAME.ppm. Returns 0 or a negative errno (-ENOENT without
 * DESKPOOL_BUILD_DIR or a screendump, -EINVAL for a NULL h).
 */
int tsguest_keep_screen(struct hv_host *h, const char *id, const char *test,
                        const char *name);

/* --- input ---------------------------------------------------------------- */

/*
 * Presses and releases one key given by its QEMU qcode ("h", "1", "spc",
 * "ret", "minus"... see QEMU's qapi/ui.json QKeyCode), with the left Shift
 * held around it when shift is set; one input-send-event.
 */
int tsguest_send_key(struct hv_host *h, const char *id, const char *qcode,
                     int shift);

/*
 * Types text as a user would on a US keyboard: printable ASCII and '\n'
 * (Enter), with Shift for upper case and shifted symbols, keys 40 ms apart
 * so the guest's PS/2 queue never overflows. -EINVAL before anything is
 * sent when text holds a character no key types.
 */
int tsguest_type_text(struct hv_host *h, const char *id, const char *text);

/*
 * Moves the absolute pointer (the VM's virtio-tablet) to (x, y), both in
 * 0..TSGUEST_ABS_MAX, which the guest scales to its screen size.
 */
int tsguest_move_abs(struct hv_host *h, const char *id, int x, int y);

/*
 * Where the guest draws an absolute coordinate v (0..TSGUEST_ABS_MAX) on
 * an axis of size pixels: v * (size - 1) / TSGUEST_ABS_MAX.
 */
int tsguest_abs_to_px(int v, int size);

/*
 * The absolute coordinate for pixel px on an axis of size pixels: the
 * inverse of tsguest_abs_to_px(), rounded up so that it maps back to px
 * exactly.
 */
int tsguest_px_to_abs(int px, int size);

/*
 * Clicks a pointer button ("left", "middle", "right") where the pointer
 * is: a press, then a release.
 */
int tsguest_click(struct hv_host *h, const char *id, const char *button);

#endif
