/*
 * ds_source.h - one desktop's screen and input, read from QEMU's VNC server.
 *
 * Every deskpool-display child reads the desktop it serves through a
 * ds_source: a libvncclient connection to the VM's QEMU VNC server on its
 * unix socket (the run folder's vnc.sock, hypervisor-glue/README.md).
 *
 * What is asked of QEMU (see ../shared/notes/qemu.md §1):
 *   - the raw encoding only, in QEMU's native pixel format (32 bpp, depth
 *     24, red << 16, green << 8, blue: XRGB8888, 0x00RRGGBB in a uint32_t on
 *     a little-endian host), so QEMU copies rows instead of converting;
 *   - DesktopSize (the framebuffer follows the guest's mode changes),
 *     RichCursor (the cursor shape, when the display device has one) and
 *     the QEMU extended key event (keys as scancodes);
 *   - one incremental FramebufferUpdateRequest outstanding at all times: a
 *     new one goes out when QEMU's answer to the last one has been read.
 *     QEMU answers only when pixels changed, so an idle desktop costs no
 *     traffic, and nothing here polls.
 *
 * Event loop: the source is agnostic. Watch ds_source_fd() for input and
 * call ds_source_process() when it is readable; it handles the messages
 * that are there and returns what changed (DS_SOURCE_* flags). Then take
 * the damage, look at the framebuffer, the cursor. Messages the library
 * has already buffered do not make the fd readable again: when process
 * returns DS_SOURCE_MORE, call it again without waiting for the fd.
 *
 * Damage: every framebuffer rectangle QEMU sent since the caller last took
 * them, coalesced (contained and adjacent rectangles merge; beyond
 * DS_SOURCE_MAX_DAMAGE rectangles everything becomes one bounding box), so
 * it never grows without bound however long nobody takes it.
 *
 * Ownership: ds_source_open() returns a source the caller frees with
 * ds_source_close(). Pointers handed out (framebuffer, cursor, error text)
 * belong to the source and stay valid until the next ds_source_process()
 * (a resize replaces the framebuffer) or ds_source_close().
 *
 * Errors: functions return 0 (or a count, or flags) or a negative errno and
 * print the reason to stderr, prefixed "ds_source:". A source whose
 * connection broke (QEMU quit, a read failed, QEMU sent something
 * libvncclient could not decode) has ended: ds_source_process() and the
 * input functions return the same negative errno from then on, and
 * ds_source_error() says why; its last framebuffer stays readable.
 * Nothing here aborts on what QEMU sends.
 *
 * Process-wide requirements: libvncclient writes with write(2), so a
 * process using a source must ignore SIGPIPE (or a QEMU that quits at the
 * wrong moment kills it). libvncclient's global log hooks (rfbClientLog,
 * rfbClientErr) are set by ds_source_open(): its informational chatter is
 * dropped, its errors go to stderr prefixed "ds_source: libvncclient:".
 * libvncclient waits with select(), so the connection's descriptor must be
 * below FD_SETSIZE (ds_source_open() refuses otherwise). One thread per
 * source.
 */
#ifndef DS_SOURCE_H
#define DS_SOURCE_H

#include <stdint.h>

/* Largest framebuffer width or height accepted from QEMU (QEMU's own VNC
 * limit is 2560x2048). A larger one ends the source with -EFBIG. */
#define DS_SOURCE_MAX_DIM 8192

/* Damage rectangles kept before they collapse into one bounding box. */
#define DS_SOURCE_MAX_DAMAGE 32

/* Largest cursor kept, in pixels each way; larger shapes are ignored. */
#define DS_SOURCE_MAX_CURSOR 256

/* Flags returned by ds_source_process(): what changed during the call. */
#define DS_SOURCE_DAMAGE  0x1 /* framebuffer pixels changed: take damage */
#define DS_SOURCE_RESIZED 0x2 /* new framebuffer size, all of it damaged */
#define DS_SOURCE_CURSOR  0x4 /* new cursor shape or hotspot */
#define DS_SOURCE_MORE    0x8 /* buffered messages left: call again now */

/* Pointer button bits for ds_source_pointer() (RFB's button mask). */
#define DS_SOURCE_BUTTON_LEFT       0x01
#define DS_SOURCE_BUTTON_MIDDLE     0x02
#define DS_SOURCE_BUTTON_RIGHT      0x04
#define DS_SOURCE_BUTTON_WHEEL_UP   0x08
#define DS_SOURCE_BUTTON_WHEEL_DOWN 0x10

/* A connection to one desktop's QEMU VNC server; opaque. */
struct ds_source;

/* A rectangle in framebuffer pixels. */
struct ds_source_rect {
    int x, y, w, h;
};

/* Clips r to a width x height screen in place; 0 when nothing is left. */
int ds_source_rect_clip(struct ds_source_rect *r, int width, int height);

/* The framebuffer: height rows of width XRGB8888 pixels (0x00RRGGBB),
 * stride bytes apart. */
struct ds_source_fb {
    const uint32_t *pixels;
    int width, height;
    int stride;
};

/* The cursor: width x height ARGB8888 pixels (0xAARRGGBB, alpha 0 or 255:
 * RichCursor carries a 1-bit mask), rows width * 4 bytes apart; the
 * hotspot lies inside. serial grows by one with every new shape. */
struct ds_source_cursor {
    const uint32_t *pixels;
    int width, height;
    int hot_x, hot_y;
    unsigned serial;
};

/* Counters since the source was opened. */
struct ds_source_stats {
    uint64_t updates;     /* FramebufferUpdate messages read */
    uint64_t frames;      /* of them, answers to our update requests */
    uint64_t requests;    /* FramebufferUpdateRequests sent */
    uint64_t rects;       /* rectangles with pixels */
    uint64_t pixel_bytes; /* pixel data read (4 bytes a pixel) */
};

/*
 * Connects to the QEMU VNC server listening on the unix socket at
 * socket_path (no authentication: QEMU's -vnc unix: without a password),
 * sets the format and encodings described above, and waits until the
 * first whole framebuffer has arrived, for at most about timeout_ms (a
 * read stalled in the middle of a message may add up to timeout_ms more).
 * On success *out is the source, its whole framebuffer damaged.
 *
 * Returns 0 or: -EINVAL (NULL arguments, timeout_ms <= 0), -ENAMETOOLONG
 * (the path does not fit a sockaddr_un), -ENOENT (no such file),
 * -ENOTSOCK (not a socket), -ECONNREFUSED (nobody listens there) or
 * another connect(2) errno, -EMFILE (descriptor >= FD_SETSIZE),
 * -EPROTO (not an RFB server, or it wants authentication), -ECONNRESET
 * (QEMU closed the connection), -ETIMEDOUT (no first frame in time),
 * -EFBIG (framebuffer above DS_SOURCE_MAX_DIM), -ENOMEM. *out is NULL on
 * failure.
 */
int ds_source_open(struct ds_source **out, const char *socket_path,
                   int timeout_ms);

/*
 * The same on a unix socket already connected to QEMU's VNC server (the
 * display daemon connects and passes the descriptor to an unprivileged
 * session process, which cannot open the VM's run folder). The source
 * takes fd over: it is closed with the source, or at once on failure.
 * name only labels messages (e.g. the desktop id). Same returns, without
 * the path and connect(2) ones.
 */
int ds_source_open_fd(struct ds_source **out, int fd, const char *name,
                      int timeout_ms);

/* Closes the connection and frees the source; NULL is fine. */
void ds_source_close(struct ds_source *src);

/* The connection's descriptor, to watch for input (POLLIN). Owned by the
 * source: do not read, write or close it. */
int ds_source_fd(const struct ds_source *src);

/*
 * Reads and handles the server messages available now: at most a bounded
 * number of them, never waiting for a message that has not started to
 * arrive (one that has is read to its end, at most the open timeout).
 * Returns the DS_SOURCE_* flags for what changed (0: nothing), or a
 * negative errno once the source has ended: -ECONNRESET (QEMU closed the
 * connection: the VM stopped), -ETIMEDOUT (QEMU stalled in the middle of a
 * message), -EPROTO (a message libvncclient could not decode), -EFBIG,
 * -ENOMEM, or the errno of a failed read or write.
 */
int ds_source_process(struct ds_source *src);

/* 0 while the source lives, else the negative errno that ended it. */
int ds_source_status(const struct ds_source *src);

/* Why the source ended, one line without a newline; "" while it lives. */
const char *ds_source_error(const struct ds_source *src);

/* The current framebuffer (see struct ds_source_fb and Ownership). */
void ds_source_framebuffer(const struct ds_source *src,
                           struct ds_source_fb *fb);

/*
 * Moves the damage gathered since the last call into rects (room for max
 * rectangles) and forgets it. When there are more than max rectangles,
 * their bounding box is returned as the only one. Returns the number
 * stored (0: nothing changed), or -EINVAL for a NULL rects or max < 1.
 * Rectangles lie inside the current framebuffer; they may overlap.
 */
int ds_source_take_damage(struct ds_source *src, struct ds_source_rect *rects,
                          int max);

/* The last cursor shape QEMU sent into *cur; -ENOENT when it sent none
 * (the display device has no hardware cursor: std VGA draws none). */
int ds_source_cursor(const struct ds_source *src, struct ds_source_cursor *cur);

/* True once QEMU has announced the extended key event (scancodes). */
int ds_source_has_scancodes(const struct ds_source *src);

/*
 * Presses (down) or releases a key given as a QEMU "qnum": the XT set-1
 * scancode, with E0-prefixed keys folded into bit 7 (an RDP scancode maps
 * as code | (extended ? 0x80 : 0)). Sent as a QEMU extended key event, so
 * the guest gets that key whatever its layout. -EINVAL for qnum outside
 * 1..0xff, -ENOTSUP when QEMU did not announce the extension, or the
 * source's error.
 */
int ds_source_key_scancode(struct ds_source *src, unsigned qnum, int down);

/* Presses or releases the key QEMU's keymap gives keysym (an X11 keysym,
 * a plain RFB KeyEvent). -EINVAL for keysym 0, or the source's error. */
int ds_source_key_sym(struct ds_source *src, uint32_t keysym, int down);

/*
 * Moves the pointer to framebuffer pixel (x, y) (clamped to the screen)
 * with buttons (DS_SOURCE_BUTTON_*) held. QEMU scales the position to the
 * guest's absolute pointing device. -EINVAL for buttons above 0xff, or the
 * source's error.
 */
int ds_source_pointer(struct ds_source *src, int x, int y, unsigned buttons);

/* The source's counters. */
void ds_source_stats(const struct ds_source *src, struct ds_source_stats *st);

#endif
