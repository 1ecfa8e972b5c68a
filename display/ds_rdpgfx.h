/*
 * ds_rdpgfx.h - the RDPGFX graphics pipeline of one RDP session (see
 * ds_rdp.h and ../shared/notes/freerdp2-server.md §2).
 *
 * The session makes one with ds_rdpgfx_new() on its virtual channel
 * manager and calls ds_rdpgfx_check() after every pass over the peer and
 * the channel manager; the answers to dynamic channels' creation go to
 * ds_rdpgfx_created() (a refusal turns the pipeline off). Once the
 * client is active and its drdynvc channel is ready, the pipeline opens
 * the "Microsoft::Windows::RDS::Graphics" channel; the client's
 * CapsAdvertise picks the codec:
 *   - AVC420 (H.264 by ds_h264) when a caps set allows it (8.1 with
 *     AVC420_ENABLED, or 10.x without AVC_DISABLED): full-surface frames
 *     whose region rectangles are the damage, an IDR on start, on
 *     ds_rdpgfx_request_idr() (RefreshRect), after a resize and after a
 *     protocol reset (a new CapsAdvertise); after motion stops, one
 *     refresh frame at a high quality where earlier frames were lossy;
 *   - otherwise planar surface commands of the damaged 64x64 tiles.
 * Every frame is StartFrame + surface commands + EndFrame; at most
 * DS_RDPGFX_IN_FLIGHT frames go unacknowledged (unless the client
 * suspended acknowledgements); acknowledgement latencies adapt the H.264
 * quality (ds_h264_feedback()).
 *
 * A client without GFX (not negotiated, no drdynvc), one that refuses the
 * channel, or one whose caps do not come within DS_RDPGFX_CAPS_MS turns
 * the pipeline off for good: the session then sends bitmap updates.
 *
 * Threads: FreeRDP 2.11 reads the channel on a thread of its own, which
 * runs CapsAdvertise and FrameAcknowledge; what they share with the
 * session's thread is under a mutex here. Everything else (the encoder,
 * sends) runs on the session's thread.
 *
 * Errors: negative errno; the reason goes to ds_session_log().
 */
#ifndef DS_RDPGFX_H
#define DS_RDPGFX_H

#include <freerdp/peer.h>

#include "ds_h264.h"
#include "ds_source.h"

#define DS_RDPGFX_IN_FLIGHT 2    /* frames sent and not yet acknowledged */
#define DS_RDPGFX_CAPS_MS   10000 /* from opening the channel to its caps */
#define DS_RDPGFX_STILL_MS  300  /* no damage this long: motion stopped */

enum ds_rdpgfx_state {
    DS_RDPGFX_WAIT, /* not decided yet: send nothing */
    DS_RDPGFX_ON,   /* graphics go through ds_rdpgfx_send() */
    DS_RDPGFX_OFF   /* no GFX: bitmap updates */
};

struct ds_rdpgfx;

/* For peer's virtual channel manager vcm (the session's; it outlives
 * this). Returns 0 with *out, or -ENOMEM. */
int ds_rdpgfx_new(struct ds_rdpgfx **out, freerdp_peer *peer, HANDLE vcm);

/* Closes the channel (joining FreeRDP's reader thread); NULL is fine. */
void ds_rdpgfx_free(struct ds_rdpgfx *g);

/* The client answered a dynamic channel's creation (the channel
 * manager's callback, on the session's thread): if it is this one and
 * refused, the pipeline goes off. */
void ds_rdpgfx_created(struct ds_rdpgfx *g, UINT32 channel_id, INT32 status);

/*
 * Moves the pipeline along (after the session ran the channel manager):
 * opens the GFX channel when it can, sets the surface up when caps arrive
 * (width x height: the desktop's size). activated: the peer is active.
 * Returns the state, or -EIO when the surface could not be set up.
 */
int ds_rdpgfx_check(struct ds_rdpgfx *g, int activated, int width, int height,
                    long long now_ms);

/* 1 when a frame may be sent now (state ON, frames in flight below the
 * bound), else 0. */
int ds_rdpgfx_ready(struct ds_rdpgfx *g);

/*
 * Sends one frame of the damaged rectangles of fb (the surface's size).
 * Returns the bytes of codec data sent (0: nothing to send), or -EIO.
 */
long ds_rdpgfx_send(struct ds_rdpgfx *g, const struct ds_source_fb *fb,
                    const struct ds_h264_rect *damage, int ndamage,
                    long long now_ms);

/* Called when there is no damage: after DS_RDPGFX_STILL_MS without any,
 * sends the one H.264 refresh frame due (ds_h264_lossy()). Returns bytes
 * sent, 0, or -EIO. */
long ds_rdpgfx_idle(struct ds_rdpgfx *g, const struct ds_source_fb *fb,
                    long long now_ms);

/* 1 when ds_rdpgfx_idle() may have something to send (an IDR, or the
 * refresh after motion), so the session should call it soon. */
int ds_rdpgfx_pending(const struct ds_rdpgfx *g);

/* The next frame is an IDR of the whole surface. */
void ds_rdpgfx_request_idr(struct ds_rdpgfx *g);

/* The desktop's new size: the surface is made again (then an IDR).
 * Returns 0, or -EIO/-ENOMEM. */
int ds_rdpgfx_resize(struct ds_rdpgfx *g, int width, int height);

/* The codec in use ("AVC420", "planar") or NULL before caps. */
const char *ds_rdpgfx_codec(const struct ds_rdpgfx *g);

#endif
