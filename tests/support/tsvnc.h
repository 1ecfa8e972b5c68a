/*
 * tsvnc.h - a VNC test client (libvncclient) for tests and benchmarks.
 *
 * Connects the way real clients do: to deskpool-display's VNC TCP port
 * with a password, to its gateway socket with a ticket preamble line, or
 * straight to a QEMU vnc.sock (for side-by-side benchmarks). It keeps a
 * copy of the remote framebuffer as XRGB8888 (0x00RRGGBB) and counts the
 * bytes it received, so a test can look at what a user would see.
 *
 * One thread per client. Functions return 0 or a negative errno; on
 * failure tsvnc_error() says why (including the server's refusal reason
 * when it sent one). Not for production: it trusts its caller.
 */
#ifndef TSVNC_H
#define TSVNC_H

#include <stdint.h>

struct tsvnc;
struct tsppm;

struct tsvnc_options {
    /* libvncclient encodings string, e.g. "tight", "zrle", "raw" or
     * "tight zrle raw"; NULL: "tight zrle raw". */
    const char *encodings;
    int quality;     /* JPEG quality level 0-9 for tight; -1: no JPEG */
    int compress;    /* compression level 0-9; -1: library default */
    int timeout_ms;  /* for connecting and the first frame; 0: 10000 */
    int no_ext_keys; /* do not announce the QEMU extended key event */
};

/* VNC over TCP at host:port with VNC authentication (password) or none
 * (password NULL). Returns once the first whole framebuffer arrived. */
int tsvnc_connect_tcp(struct tsvnc **out, const char *host, int port,
                      const char *password, const struct tsvnc_options *o);

/* The gateway socket: writes "TICKET <ticket>\n" (or "TICKET <ticket>
 * <peer>\n" when peer is not NULL), then speaks RFB without
 * authentication. */
int tsvnc_connect_gateway(struct tsvnc **out, const char *socket_path,
                          const char *ticket, const char *peer,
                          const struct tsvnc_options *o);

/* Straight to a QEMU VNC unix socket (no authentication). */
int tsvnc_connect_unix(struct tsvnc **out, const char *socket_path,
                       const struct tsvnc_options *o);

void tsvnc_close(struct tsvnc *c);

/* Why the last tsvnc_connect_*() of this process failed (the client is
 * gone by then): e.g. the server's "VNC connection failed: already used". */
const char *tsvnc_last_connect_error(void);

/* Why the last call failed (or the connection ended); "" if it did not. */
const char *tsvnc_error(const struct tsvnc *c);

/* Reads and handles what the server sends for up to timeout_ms, returning
 * as soon as at least one framebuffer update has been completely applied
 * since the call began. Returns 1 (updated), 0 (timeout), or a negative
 * errno when the connection ended (-ECONNRESET: the server closed it). */
int tsvnc_wait_update(struct tsvnc *c, int timeout_ms);

/* Handles messages for ms milliseconds, whatever arrives. Returns 0 or a
 * negative errno when the connection ended. */
int tsvnc_pump(struct tsvnc *c, int ms);

/* The client's framebuffer (valid until the next call on c). */
const uint32_t *tsvnc_pixels(const struct tsvnc *c, int *width, int *height);

/* Copy of the client's framebuffer as a tsppm (caller frees). */
int tsvnc_snapshot(const struct tsvnc *c, struct tsppm **out);

/* Input, as a VNC client sends it. */
int tsvnc_key_sym(struct tsvnc *c, uint32_t keysym, int down);
/* QEMU extended key event (qnum scancode plus keysym); -ENOTSUP when the
 * server did not acknowledge the extension. */
int tsvnc_key_scancode(struct tsvnc *c, uint32_t keysym, unsigned qnum,
                       int down);
int tsvnc_has_ext_keys(const struct tsvnc *c);
int tsvnc_pointer(struct tsvnc *c, int x, int y, unsigned buttons);

/* Types text (printable ASCII) with keysym press/release pairs. */
int tsvnc_type(struct tsvnc *c, const char *text);

/* Bytes received from the server since connecting (RFB handshake
 * included), and framebuffer updates completed. */
uint64_t tsvnc_bytes(const struct tsvnc *c);
uint64_t tsvnc_updates(const struct tsvnc *c);

/* The descriptor libvncclient reads (poll it for POLLIN to know that
 * something arrived; the bytes come through tsvnc's relay thread). */
int tsvnc_fd(const struct tsvnc *c);

#endif
