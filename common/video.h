/* video.h — video files through libavcodec/libavformat.
 * The encoder takes 8-bit RGB frames, converts them to yuv420p (BT.601,
 * limited range, tagged as such) and writes H.264 (libx264) in MP4 with
 * timestamps in units of 1/fps. It writes to the path it is given, not
 * atomically: callers write to a temporary sibling (fs_tmp_sibling) and
 * publish it (fs_publish_file) once video_enc_finish has succeeded.
 * A struct video_enc owns its libav contexts; video_enc_free releases them
 * (and is all a failed run needs besides removing the file).
 * video_enc_open sets libav's (process-wide) log level from isopipe's:
 * libav's own lines only with -vv, errors come back as statuses.
 * The decoder section is written by flow-extract's engineer. */
#ifndef ISOPIPE_VIDEO_H
#define ISOPIPE_VIDEO_H
#include <stddef.h>
#include <stdint.h>

/* ---- encoder (common/video_enc.c) ---- */

struct video_enc_params {
    int width, height;      /* size of the RGB frames given to the encoder (any size >= 1);
                               odd sizes are padded to even by repeating the last column/row,
                               because yuv420p needs even dimensions */
    int fps_num, fps_den;   /* frame rate as a fraction (24/1, 30000/1001) */
    int crf;                /* libx264 constant rate factor 0..51 (0 = lossless in yuv420p) */
    const char *preset;     /* libx264 preset ("medium"); NULL = libx264's default */
    int threads;            /* encoder threads; 0 = libavcodec's choice */
    const char *codec;      /* encoder name; NULL = "libx264" */
    const char *name;       /* the file's name in error messages (the final name when
                               writing a temporary sibling); NULL = the path */
    int fragmented;         /* fragmented MP4 (moov first, then moof+mdat fragments): for
                               outputs that cannot seek, such as a pipe ("pipe:1") */
};

/* the defaults: 24 fps, crf 18, preset medium, 0 threads, libx264 */
void video_enc_default_params(struct video_enc_params *p);

/* What the opened encoder actually does, for reports. */
struct video_enc_info {
    const char *codec;      /* encoder used ("libx264" or "mpeg4") */
    int fell_back;          /* 1 when libx264 was asked for, missing, and mpeg4 used instead */
    int enc_width, enc_height; /* encoded size (even) */
    int padded;             /* 1 when enc size != frame size */
    const char *pix_fmt;    /* "yuv420p" */
};

struct video_enc;

/* Opens path (MP4, whatever its name) and the encoder. The fallback to
 * mpeg4 applies only when codec is NULL or "libx264" and libavcodec lacks
 * libx264 (ISOPIPE_VIDEO_NO_X264=1 in the environment pretends so, for
 * tests). Errors: ISO_EUSAGE bad params/preset, ISO_EUNAVAIL no encoder,
 * ISO_ECANTCREAT cannot create path, ISO_EINTERNAL libav failures. */
int video_enc_open(struct video_enc **out, const char *path, const struct video_enc_params *p);
/* 0 when name is a video encoder of the linked libavcodec (libx264 always:
 * it falls back to mpeg4), else ISO_EUSAGE naming it -- for a tool to
 * check --codec before any work, without libav's own messages */
int video_enc_check_codec(const char *name);
void video_enc_get_info(const struct video_enc *e, struct video_enc_info *info);
/* Encodes one w x h RGB24 frame (stride bytes per row, >= 3*width). */
int video_enc_write_rgb(struct video_enc *e, const uint8_t *rgb, ptrdiff_t stride);
/* Drains the encoder, writes the MP4 trailer and closes the file. */
int video_enc_finish(struct video_enc *e);
/* frames written so far */
int64_t video_enc_frames(const struct video_enc *e);
/* Releases everything (the file is closed, not removed); sets *e to NULL. */
void video_enc_free(struct video_enc **e);

/* RGB24 -> yuv420p, BT.601 limited range (ITU-R BT.601-7 table 3 with
 * Y in [16,235], Cb/Cr in [16,240]); chroma is the mean of each 2x2 block.
 * src is w x h; the destination planes are (w+1)&~1 by (h+1)&~1 (chroma
 * half that), the odd edge filled by repeating the last column/row.
 * Exposed for tests (tests/helpers/stitch_yuvcheck.c checks it against a
 * float64 computation). */
void video_rgb_to_yuv420(const uint8_t *src, ptrdiff_t src_stride, int w, int h, uint8_t *y,
                         ptrdiff_t y_stride, uint8_t *u, ptrdiff_t u_stride, uint8_t *v, ptrdiff_t v_stride);

/* ---- decoder (common/video_dec.c, flow-extract's engineer) ---- */

/* The decoder reads the first video stream of anything libavformat opens,
 * decodes it with libavcodec and converts every frame to RGB24 with
 * libswscale (BT.601/709 as the stream says, full-range output). A stream
 * whose frame size changes midway is an ISO_EDATA error. A struct video_dec
 * owns its libav contexts; video_dec_free releases them. */
struct video_dec;

/* Errors: ISO_ENOINPUT missing file, ISO_EIO unreadable, ISO_EDATA not a
 * video (no container or no video stream, no decoder, zero size). */
int video_dec_open(struct video_dec **out, const char *path, int threads);
/* frame size and the stream's nominal frame rate (0/1 when unknown) */
void video_dec_info(const struct video_dec *d, int *w, int *h, int *fps_num, int *fps_den);
/* Decodes the next frame into rgb (w x h RGB24, stride bytes per row).
 * Returns 1 with a frame, 0 at the end of the stream, or a negative status
 * (ISO_EDATA for a corrupt stream or a size change). */
int video_dec_read_rgb(struct video_dec *d, uint8_t *rgb, ptrdiff_t stride);
/* frames returned so far */
int64_t video_dec_frames(const struct video_dec *d);
void video_dec_free(struct video_dec **d);

#endif
