/*
 * tsrdp.h - a headless RDP test client on libfreerdp-client2: TLS (the
 * server's certificate is not checked: tests run self-signed ones), user
 * name and password sent in the Client Info PDU, the screen decoded by
 * FreeRDP's software GDI into a BGRX32 framebuffer the test reads as
 * XRGB8888 pixels (tsscreen_view()), keys as scancodes and the mouse;
 * bitmap updates, or the graphics pipeline (RDPGFX) with or without H.264.
 *
 * No thread: the test calls tsrdp_pump() to let the client read and
 * decode what the server sent. No Check assertions inside: functions
 * return errors, so tests can expect refusals.
 */
#ifndef TSRDP_H
#define TSRDP_H

#include <stddef.h>
#include <stdint.h>

struct tsrdp;

/*
 * Connects to 127.0.0.1:port as user with password (may be NULL) and
 * waits until the session is active. Returns 0 with *out, or -1 with
 * FreeRDP's reason in why (*out NULL): a refused login ends this way.
 */
int tsrdp_connect(struct tsrdp **out, int port, const char *user,
                  const char *password, char *why, size_t why_size);

/* How the client asks for graphics. */
enum tsrdp_graphics {
    TSRDP_BITMAP,     /* no graphics pipeline: bitmap updates */
    TSRDP_GFX,        /* RDPGFX without H.264 */
    TSRDP_GFX_AVC420, /* RDPGFX with AVC420 (FreeRDP's own decoder) */
};

/* tsrdp_connect() asking for graphics g. With GFX the client loads its
 * drdynvc and rdpgfx channels and decodes surfaces with the software GDI. */
int tsrdp_connect_gfx(struct tsrdp **out, int port, const char *user,
                      const char *password, enum tsrdp_graphics g, char *why,
                      size_t why_size);

/* Surface commands the client got over RDPGFX, by codec. */
struct tsrdp_gfx_stats {
    int connected; /* the rdpgfx channel came up */
    int avc420, planar, other;
};
void tsrdp_gfx_stats(struct tsrdp *c, struct tsrdp_gfx_stats *out);

/*
 * What the client has received since it connected, for benchmarks:
 * bytes on its TCP connection (TLS records and all, from the kernel's
 * TCP_INFO; -1 when the socket was not found), and updates: frames
 * (RDPGFX EndFrame) with the graphics pipeline, update PDUs (each one
 * paint: BeginPaint .. EndPaint) without.
 */
struct tsrdp_traffic {
    long long bytes;
    long long updates;
};
void tsrdp_traffic(struct tsrdp *c, struct tsrdp_traffic *out);

/* Disconnects and frees; NULL is fine. */
void tsrdp_close(struct tsrdp *c);

/* Handles what the server sent for up to ms milliseconds. Returns 0, or
 * -1 once the server has closed the connection. */
int tsrdp_pump(struct tsrdp *c, int ms);

/* The decoded screen: XRGB8888 pixels (0x00RRGGBB), rows stride bytes
 * apart; a copy, valid until the next call. NULL when out of memory. */
const uint32_t *tsrdp_pixels(struct tsrdp *c, int *width, int *height,
                             int *stride);

/* Presses (down) or releases a key by its set-1 scancode; extended: the
 * E0 prefix (arrows, right Ctrl...). */
int tsrdp_key(struct tsrdp *c, unsigned scancode, int extended, int down);

/* Sends the client's lock keys (a Synchronize event: TSRDP_*_LOCK or'ed,
 * RDP's KBD_SYNC_* values), as a client does when its window gets the
 * focus. */
#define TSRDP_SCROLL_LOCK 0x1
#define TSRDP_NUM_LOCK    0x2
#define TSRDP_CAPS_LOCK   0x4
int tsrdp_sync(struct tsrdp *c, unsigned locks);

/* Types a Unicode character (down and up) as Unicode key events. */
int tsrdp_unicode(struct tsrdp *c, unsigned codepoint);

/* Moves the mouse to (x, y); button 0: none, 1 left, 2 right, 3 middle,
 * pressed (down) or released. */
int tsrdp_mouse(struct tsrdp *c, int x, int y, int button, int down);

#endif
