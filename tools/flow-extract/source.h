/* source.h — the frames flow-extract reads: a video file (common/video.h),
 * a directory of frame_*.png (sorted by name), or an explicit pair of PNGs.
 * Every frame comes out as grey float in [0, 255] (BT.601 luma of the RGB
 * frame); all frames must have the size of the first. A struct fsrc owns its
 * decoder and buffers. */
#ifndef FLOW_SOURCE_H
#define FLOW_SOURCE_H

#include <jansson.h>

enum fsrc_kind { FSRC_VIDEO = 0, FSRC_DIR, FSRC_PAIR };

struct fsrc;

/* pair_b != NULL: the pair (input, pair_b); input a directory: its
 * frame_*.png; otherwise a video. Errors: ISO_ENOINPUT missing input or an
 * empty directory, ISO_EIO unreadable, ISO_EDATA not a video/PNG. */
int fsrc_open(struct fsrc **out, const char *input, const char *pair_b, int threads);
void fsrc_free(struct fsrc **s);
enum fsrc_kind fsrc_kind(const struct fsrc *s);
const char *fsrc_kind_name(const struct fsrc *s);
/* frame size (known after open) */
void fsrc_size(const struct fsrc *s, int *w, int *h);
/* frames known in advance (-1 for a video) */
int fsrc_count(const struct fsrc *s);
/* path of frame i for PNG sources (NULL for a video) */
const char *fsrc_path(const struct fsrc *s, int i);
/* Next frame as w*h grey floats into grey. Returns 1, 0 at the end, or a
 * negative status (ISO_EDATA for a frame of another size or a corrupt one). */
int fsrc_next(struct fsrc *s, float *grey);
/* frames read so far */
int fsrc_frames_read(const struct fsrc *s);
#endif
