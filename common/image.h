/* image.h — 8-bit images in memory and PNG files on disk (libpng).
 * An image owns its pixel buffer (row-major, interleaved, c channels:
 * 1 gray, 3 RGB, 4 RGBA). image_load_png converts whatever the file holds
 * (16-bit, palette, gray+alpha, low bit depths, interlaced) to the channel
 * count asked for; a corrupt or truncated file is an ISO_EDATA error. */
#ifndef ISOPIPE_IMAGE_H
#define ISOPIPE_IMAGE_H
#include <stddef.h>
#include <stdint.h>

struct image {
    int w, h, c;
    uint8_t *data; /* w*h*c bytes */
};

/* allocate w*h*c (checked for overflow); data is zeroed */
int image_alloc(struct image *img, int w, int h, int c);
void image_free(struct image *img);

/* want_c: 0 keeps gray as 1 and anything else as 3 or 4 (alpha kept);
 * 1, 3 or 4 converts (alpha dropped, or opaque alpha added). */
int image_load_png(const char *path, struct image *img, int want_c);
/* from memory (fuzzing, tests) */
int image_load_png_mem(const uint8_t *buf, size_t len, struct image *img, int want_c);
/* width and height only, without decoding the pixels */
int image_png_size(const char *path, int *w, int *h);
/* write (not atomic: callers write inside a temporary directory or use
 * image_save_png_atomic); zlib level 1..9, 0 = default (3: fast, ~5% larger) */
int image_save_png(const char *path, const struct image *img, int level);
int image_save_png_atomic(const char *path, const struct image *img, int level);
#endif
