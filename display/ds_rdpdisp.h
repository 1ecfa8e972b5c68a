/*
 * ds_rdpdisp.h - the display-control channel of one RDP session
 * (MS-RDPEDISP, "Microsoft::Windows::RDS::DisplayControl"): the client
 * asks for a new size when its window is resized (xfreerdp
 * /dynamic-resolution, mstsc's resizable window).
 *
 * The session opens it once drdynvc is ready; the client's answer to the
 * channel's creation goes to ds_rdpdisp_created() (the session's
 * creation callback serves every dynamic channel), which sends the
 * server's caps (one monitor). A client without the channel refuses it:
 * nothing more happens, the desktop keeps its size.
 *
 * Layouts arrive on FreeRDP's reader thread of the channel; the latest
 * is kept (under a mutex here) and the session's poll wakes on
 * ds_rdpdisp_fd(). A window being dragged sends many: ds_rdpdisp_due()
 * gives a size only after DS_RDPDISP_SETTLE_MS without a new one, so
 * the guest changes mode once. What to do with the size (ask the
 * desktop's agent for "set-resolution") is the session's business; the
 * screen follows when the guest's mode changes.
 */
#ifndef DS_RDPDISP_H
#define DS_RDPDISP_H

#include <freerdp/peer.h>

#define DS_RDPDISP_SETTLE_MS 300
#define DS_RDPDISP_MIN       200 /* MS-RDPEDISP's bounds on a monitor */
#define DS_RDPDISP_MAX       8192

struct ds_rdpdisp;

/* For the session's channel manager vcm of peer. 0, -ENOMEM. */
int ds_rdpdisp_new(struct ds_rdpdisp **out, HANDLE vcm, freerdp_peer *peer);

/* Closes the channel (joining its thread); NULL is fine. */
void ds_rdpdisp_free(struct ds_rdpdisp *p);

/* Opens the channel (once; call when drdynvc is ready). 0, or -EIO:
 * then the channel stays off. */
int ds_rdpdisp_open(struct ds_rdpdisp *p);

/* The client answered a dynamic channel's creation; if it is this one
 * and it was accepted, the caps go out. */
void ds_rdpdisp_created(struct ds_rdpdisp *p, UINT32 channel_id, INT32 status);

/* Readable (POLLIN) when a layout came. */
int ds_rdpdisp_fd(const struct ds_rdpdisp *p);

/* 1 with the size the client wants when one settled, else 0; clears the
 * descriptor's signal. */
int ds_rdpdisp_due(struct ds_rdpdisp *p, long long now_ms, int *width,
                   int *height);

/* 1 while a layout waits to settle (the session should call
 * ds_rdpdisp_due() again within DS_RDPDISP_SETTLE_MS). */
int ds_rdpdisp_pending(struct ds_rdpdisp *p);

#endif
