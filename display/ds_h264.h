/*
 * ds_h264.h - the H.264 (AVC420) encoder of one RDPGFX surface.
 *
 * An encoder takes the desktop's framebuffer (BGRX: XRGB8888 little-endian,
 * what ds_source hands out) with the rectangles that changed, and returns
 * one H.264 access unit plus what RDPGFX_AVC420_BITMAP_STREAM's metablock
 * needs: the region rectangles and a quantizer and quality per rectangle.
 * The RDP session sends that as an RDPGFX SurfaceCommand (codec AVC420);
 * see ../shared/notes/freerdp2-server.md §2.
 *
 * The stream (x264):
 *   - Annex B byte stream (start codes), SPS and PPS before every IDR;
 *     main profile (signalled as constrained baseline when the stream
 *     fits it: preset ultrafast codes without CABAC), no B-frames, one
 *     output frame per input frame (tune zerolatency), so each call's
 *     access unit decodes at once given the ones before it. Every frame
 *     returned must reach the client; when one cannot, ask for an IDR;
 *   - an IDR only on the first frame, after ds_h264_resize(), and when the
 *     caller asks (DS_H264_IDR: protocol reset, RefreshRect, a client that
 *     lost its state); never on a schedule or a scene cut;
 *   - coded size: the surface size rounded up to a multiple of 16; x264
 *     fills the padding by repeating the last column and row, and the SPS
 *     crops it, so decoders output exactly width x height;
 *   - colour: full-range BT.709, the matrix FreeRDP's decoder applies
 *     (prim_internal.h) whatever the stream says, and signalled as such in
 *     the VUI for clients that read it. The conversion is FreeRDP's own
 *     (libyuv in Debian 12 has no BT.709 RGB -> YUV; see ds_h264.c).
 *
 * Damage: only the rectangles given are sent to the client (the client
 * decodes the whole picture but shows only the region rectangles). They
 * must cover every pixel that changed since the previous call: rows outside
 * them are not even converted again. Rectangles are clipped to the surface
 * and merged into at most DS_H264_MAX_RECTS; a frame with no damage left
 * is not encoded (an idle screen sends nothing). IDR frames always cover
 * the whole surface.
 *
 * Quality: x264's CRF rate control, so each frame's QP follows how busy
 * it is. The session reports every frame acknowledgement with
 * ds_h264_feedback(), which moves a quality level (0 best ...
 * DS_H264_LEVELS - 1) down when acknowledgements queue up and back up when
 * they flow again; each level raises the CRF, which lowers the bytes a
 * frame takes (+6 roughly halves them). The session bounds the frames in
 * flight itself, which bounds the bitrate to what the link carries.
 * Frames coded well above the refresh QP leave their area "lossy"; once
 * motion stops, the session sends one DS_H264_REFRESH frame, which codes
 * the lossy area again at the refresh QP so text becomes sharp
 * (ds_h264_lossy() says whether one is due). The client shows a frame's
 * region rectangles only, so a refresh lists the lossy area as regions;
 * it codes the whole picture at the refresh QP, but macroblocks already
 * that sharp cost next to nothing.
 *
 * Ownership: ds_h264_new() returns an encoder the caller frees with
 * ds_h264_free(). The frame's data and regions belong to the encoder and
 * stay valid until the next ds_h264_encode(), ds_h264_resize() or
 * ds_h264_free(). The framebuffer is only read during ds_h264_encode().
 *
 * Errors: functions return 0 (or what they document) or a negative errno,
 * and print the reason to stderr prefixed "ds_h264:" (x264's own errors
 * too). Nothing here aborts. An encoder is used by one thread; it runs
 * x264 on that thread alone.
 */
#ifndef DS_H264_H
#define DS_H264_H

#include <stddef.h>
#include <stdint.h>

/* Surface sizes accepted: even, DS_H264_MIN_DIM..DS_H264_MAX_DIM each way
 * (4096 x 2304 needs level 5.1; older Windows decoders refuse more). */
#define DS_H264_MIN_DIM 64
#define DS_H264_MAX_DIM 4096

/* Region rectangles in one frame at most (RDPGFX allows more; the client
 * converts each one, so fewer and larger is cheaper). */
#define DS_H264_MAX_RECTS 16

/* Quality levels: 0 is the parameters' CRF; each level down adds
 * DS_H264_LEVEL_CRF_STEP (at most 51). */
#define DS_H264_LEVELS         7
#define DS_H264_LEVEL_CRF_STEP 3

/* Defaults for zeroed ds_h264_params fields. */
#define DS_H264_DEFAULT_PRESET     "ultrafast"
#define DS_H264_DEFAULT_FPS        30
#define DS_H264_DEFAULT_CRF        23
#define DS_H264_DEFAULT_REFRESH_QP 18

/* ds_h264_encode() flags. */
#define DS_H264_IDR     0x1 /* code an IDR frame of the whole surface */
#define DS_H264_REFRESH 0x2 /* code at the refresh QP, lossy area included */

/* An encoder; opaque. */
struct ds_h264;

/* A rectangle in surface pixels. */
struct ds_h264_rect {
    int x, y, w, h;
};

struct ds_h264_params {
    int width, height;  /* surface size: even, within the limits above */
    const char *preset; /* x264 preset; NULL: DS_H264_DEFAULT_PRESET */
    int fps;            /* expected frames a second (rate control); 0: 30 */
    int crf;            /* CRF at level 0, 1..51 (lower is better); 0: 23 */
    int refresh_qp;     /* QP of refresh frames, 1..51; 0: 18 */
};

/* One region rectangle of a frame, with its RDPGFX_H264_QUANT_QUALITY
 * values: qp (0..51) and quality (0..100, 100 - qp as FreeRDP's shadow
 * server does). */
struct ds_h264_region {
    struct ds_h264_rect rect; /* inside the surface, never empty */
    int qp;
    int quality;
};

/* What ds_h264_encode() produced (see Ownership). */
struct ds_h264_frame {
    const uint8_t *data; /* one Annex B access unit: all its NAL units */
    size_t size;
    int idr;     /* an IDR frame (SPS and PPS included) */
    int refresh; /* coded at the refresh QP */
    int qp;      /* the frame's quantizer */
    int nregions;
    struct ds_h264_region regions[DS_H264_MAX_RECTS];
};

/*
 * Makes an encoder for a params->width x params->height surface, its first
 * frame an IDR. Returns 0 with *out set, or -EINVAL (NULL arguments, a
 * size or value out of range, a preset x264 does not know, or x264
 * refusing the settings), -ENOMEM. *out is NULL on failure.
 */
int ds_h264_new(struct ds_h264 **out, const struct ds_h264_params *params);

/* Frees the encoder; NULL is fine. */
void ds_h264_free(struct ds_h264 *enc);

/*
 * Starts over at a new surface size (the other parameters and the quality
 * level stay): the next frame is an IDR. On failure the encoder keeps its
 * old size and stays usable. Returns 0, -EINVAL or -ENOMEM.
 */
int ds_h264_resize(struct ds_h264 *enc, int width, int height);

/*
 * Encodes the framebuffer bgrx (height rows of width BGRX pixels, stride
 * bytes apart, stride >= width * 4) given the rectangles damaged since the
 * previous call (damage may be NULL when ndamage is 0), with flags
 * DS_H264_IDR and/or DS_H264_REFRESH.
 *
 * Returns 1 with *out describing a frame to send, 0 when there is nothing
 * to send (no damage inside the surface, no IDR due, and for a refresh no
 * lossy area either; *out then has size 0 and no regions), or -EINVAL (bad
 * arguments), -EIO (x264 or the colour conversion failed; the next frame
 * is then an IDR, so the client's picture is rebuilt).
 */
int ds_h264_encode(struct ds_h264 *enc, const uint8_t *bgrx, int stride,
                   const struct ds_h264_rect *damage, int ndamage,
                   unsigned flags, struct ds_h264_frame *out);

/* 1 when some of the surface was sent at a QP above the refresh QP +
 * DS_H264_LOSSY_MARGIN since its last refresh (a DS_H264_REFRESH frame
 * would send something), else 0. The margin spares a refresh after
 * frames already about as sharp: an IDR of a still screen at the
 * default CRF comes out at QP 20, and refreshing it would resend
 * nearly the same bytes (~0.9 MB for a 1080p page of text). */
#define DS_H264_LOSSY_MARGIN 3
int ds_h264_lossy(const struct ds_h264 *enc);

/*
 * Reports one frame acknowledgement: ack_latency_ms from sending the frame
 * to its RDPGFX_FRAME_ACKNOWLEDGE_PDU, and the frames sent but not yet
 * acknowledged after it. The queueing delay is the latency above the
 * lowest seen recently (the path's own round trip), smoothed. The level
 * drops one step when that delay exceeds DS_H264_QUEUE_HIGH_MS or
 * frames_in_flight reaches DS_H264_CONGESTED_IN_FLIGHT (then holds for
 * DS_H264_HOLD_ACKS acknowledgements, so the change can show), and climbs
 * one step after DS_H264_CLEAR_ACKS acknowledgements in a row with the
 * delay below DS_H264_QUEUE_LOW_MS and at most one frame in flight.
 * Returns the level now in force, or -EINVAL, -EIO.
 */
#define DS_H264_QUEUE_HIGH_MS       80
#define DS_H264_QUEUE_LOW_MS        20
#define DS_H264_CONGESTED_IN_FLIGHT 3
#define DS_H264_HOLD_ACKS           8
#define DS_H264_CLEAR_ACKS          30
int ds_h264_feedback(struct ds_h264 *enc, int ack_latency_ms,
                     int frames_in_flight);

/* Sets the quality level (0..DS_H264_LEVELS - 1) for the next frames.
 * Returns 0, -EINVAL, or -EIO when x264 refuses the new settings. */
int ds_h264_set_quality(struct ds_h264 *enc, int level);

/* The quality level in force (0 best). */
int ds_h264_quality(const struct ds_h264 *enc);

#endif
