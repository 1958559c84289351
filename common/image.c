#include "image.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "mem.h"

int image_alloc(struct image *img, int w, int h, int c)
{
    img->data = NULL;
    img->w = img->h = img->c = 0;
    if (w <= 0 || h <= 0 || c <= 0 || c > 4) return iso_fail(ISO_EDATA, "bad image size %dx%dx%d", w, h, c);
    size_t n = (size_t)w * (size_t)h;
    if (n / (size_t)w != (size_t)h || n > SIZE_MAX / 4 || n > ((size_t)1 << 31))
        return iso_fail(ISO_EDATA, "image too large (%dx%d)", w, h);
    img->data = calloc(n, (size_t)c);
    /* sizes come from data: not enough RAM for them now is 75, with the sizes */
    if (!img->data)
        return iso_fail(ISO_ETEMPFAIL, "not enough memory for a %dx%d x%d image (%.1f MiB)", w, h, c,
                        (double)n * c / 1048576.0);
    img->w = w;
    img->h = h;
    img->c = c;
    return 0;
}

void image_free(struct image *img)
{
    if (!img) return;
    free(img->data);
    img->data = NULL;
    img->w = img->h = img->c = 0;
}

struct src {
    FILE *f;
    const uint8_t *buf;
    size_t len, pos;
    char msg[200];
    const char *name;
};

static void on_error(png_structp p, png_const_charp msg)
{
    struct src *s = png_get_error_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(p, 1);
}
static void on_warning(png_structp p, png_const_charp msg) { (void)p; (void)msg; }

static void mem_read(png_structp p, png_bytep out, size_t n)
{
    struct src *s = png_get_io_ptr(p);
    if (s->len - s->pos < n) png_error(p, "truncated file");
    memcpy(out, s->buf + s->pos, n);
    s->pos += n;
}

static void file_read(png_structp p, png_bytep out, size_t n)
{
    struct src *s = png_get_io_ptr(p);
    if (fread(out, 1, n, s->f) != n) png_error(p, ferror(s->f) ? "read error" : "truncated file");
}

/* Everything touched after setjmp and read after a longjmp is volatile or
 * lives in the heap-allocated state, as C11 7.13.2.1 requires. */
static int load(struct src *s, struct image *img, int want_c, int size_only, int *ow, int *oh)
{
    uint8_t sig[8];
    png_structp p = NULL;
    png_infop info = NULL;
    png_bytep *volatile rows = NULL;
    struct image out = { 0 };
    struct image *volatile outp = &out;
    volatile int rc = 0;
    if (s->f) {
        if (fread(sig, 1, 8, s->f) != 8) return iso_fail(ISO_EDATA, "cannot read '%s': not a PNG file", s->name);
    } else {
        if (s->len < 8) return iso_fail(ISO_EDATA, "cannot read '%s': not a PNG file", s->name);
        memcpy(sig, s->buf, 8);
        s->pos = 8;
    }
    if (png_sig_cmp(sig, 0, 8)) return iso_fail(ISO_EDATA, "cannot read '%s': not a PNG file", s->name);
    p = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, on_error, on_warning);
    if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
    info = png_create_info_struct(p);
    if (!info) { png_destroy_read_struct(&p, NULL, NULL); return iso_fail(ISO_EINTERNAL, "out of memory"); }
    if (setjmp(png_jmpbuf(p))) {
        rc = iso_fail(ISO_EDATA, "cannot read '%s': %s", s->name, s->msg[0] ? s->msg : "corrupt PNG");
        goto done;
    }
    png_set_read_fn(p, s, s->f ? file_read : mem_read);
    png_set_sig_bytes(p, 8);
    /* refuse absurd dimensions before any allocation (a 1-pixel-high, 2^31-wide file) */
    png_set_user_limits(p, 1 << 16, 1 << 16);
    png_set_chunk_malloc_max(p, (png_alloc_size_t)64 << 20);
    png_read_info(p, info);
    png_uint_32 w = png_get_image_width(p, info), h = png_get_image_height(p, info);
    if (size_only) {
        *ow = (int)w;
        *oh = (int)h;
        goto done;
    }
    int bit_depth = png_get_bit_depth(p, info), ct = png_get_color_type(p, info);
    /* 16 -> 8 bits by rounding (v * 255 / 65535), as PNG spec 13.12 scales
     * samples; png_set_strip_16 would truncate (v >> 8), one level low for
     * about half of all values */
#ifdef PNG_READ_SCALE_16_TO_8_SUPPORTED
    if (bit_depth == 16) png_set_scale_16(p);
#else
    if (bit_depth == 16) png_set_strip_16(p);
#endif
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (ct == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(p);
    int has_alpha = (ct & PNG_COLOR_MASK_ALPHA) || png_get_valid(p, info, PNG_INFO_tRNS);
    if (png_get_valid(p, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(p);
    int gray = !(ct & PNG_COLOR_MASK_COLOR);
    int c = want_c ? want_c : (gray && !has_alpha) ? 1 : has_alpha ? 4 : 3;
    if (c == 1) {
        if (has_alpha) png_set_strip_alpha(p);
        if (!gray) png_set_rgb_to_gray_fixed(p, 1, -1, -1);
    } else {
        if (gray) png_set_gray_to_rgb(p);
        if (c == 3 && has_alpha) png_set_strip_alpha(p);
        if (c == 4 && !has_alpha) png_set_add_alpha(p, 0xff, PNG_FILLER_AFTER);
    }
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
    if ((int)png_get_rowbytes(p, info) != (int)w * c) png_error(p, "unexpected row layout");
    {
        /* a small file may decode to gigabytes (a decompression bomb): when
         * that does not fit in the memory this process may take now, it is
         * "retry later" (75) with the sizes, not an internal error */
        double need = (double)w * h * c + (double)h * sizeof(png_bytep), avail = (double)mem_host_budget();
        if (avail > 0 && need > avail) {
            rc = iso_fail(ISO_ETEMPFAIL, "cannot read '%s': it decodes to %ux%u x%d (%.1f MiB), more than the "
                          "%.1f MiB of memory available now", s->name, (unsigned)w, (unsigned)h, c,
                          need / 1048576.0, avail / 1048576.0);
            goto done;
        }
        if ((rc = image_alloc(outp, (int)w, (int)h, c))) {
            if (rc == ISO_ETEMPFAIL) /* calloc refused (a ulimit, overcommit off) */
                rc = iso_fail(ISO_ETEMPFAIL, "cannot read '%s': no memory for its %ux%u x%d pixels (%.1f MiB)",
                              s->name, (unsigned)w, (unsigned)h, c, need / 1048576.0);
            else
                rc = iso_wrap(rc, "cannot read '%s'", s->name);
            goto done;
        }
    }
    rows = malloc(sizeof *rows * h);
    if (!rows) { rc = iso_fail(ISO_ETEMPFAIL, "cannot read '%s': no memory for %u row pointers", s->name, (unsigned)h); goto done; }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = outp->data + (size_t)y * w * c;
    png_read_image(p, rows);
    png_read_end(p, NULL);
    *img = *outp;
    outp->data = NULL;
done:
    free(rows);
    image_free(outp);
    png_destroy_read_struct(&p, &info, NULL);
    return rc;
}

int image_load_png(const char *path, struct image *img, int want_c)
{
    memset(img, 0, sizeof *img);
    if (want_c != 0 && want_c != 1 && want_c != 3 && want_c != 4)
        return iso_fail(ISO_EINTERNAL, "image_load_png: bad channel count %d", want_c);
    struct src s = { .name = path };
    int orc = fs_fopen_input(path, &s.f); /* a FIFO or device is refused, never waited on */
    if (orc) return orc;
    int rc = load(&s, img, want_c, 0, NULL, NULL);
    fclose(s.f);
    return rc;
}

int image_load_png_mem(const uint8_t *buf, size_t len, struct image *img, int want_c)
{
    memset(img, 0, sizeof *img);
    struct src s = { .buf = buf, .len = len, .name = "(memory)" };
    return load(&s, img, want_c, 0, NULL, NULL);
}

int image_png_size(const char *path, int *w, int *h)
{
    struct src s = { .name = path };
    int orc = fs_fopen_input(path, &s.f); /* a FIFO or device is refused, never waited on */
    if (orc) return orc;
    int rc = load(&s, NULL, 0, 1, w, h);
    fclose(s.f);
    return rc;
}

struct wctx {
    const struct image *img;
    int level;
    char msg[200];
};

static void on_werror(png_structp p, png_const_charp msg)
{
    struct wctx *w = png_get_error_ptr(p);
    snprintf(w->msg, sizeof w->msg, "%s", msg);
    png_longjmp(p, 1);
}

static int write_png(FILE *f, void *ctx)
{
    struct wctx *wc = ctx;
    const struct image *img = wc->img;
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, wc, on_werror, on_warning);
    if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
    png_infop info = png_create_info_struct(p);
    png_bytep *volatile rows = NULL;
    volatile int rc = 0;
    if (!info) { png_destroy_write_struct(&p, NULL); return iso_fail(ISO_EINTERNAL, "out of memory"); }
    if (setjmp(png_jmpbuf(p))) {
        rc = iso_fail(ISO_EIO, "cannot write PNG: %s", wc->msg);
        goto done;
    }
    png_init_io(p, f);
    int ct = img->c == 1 ? PNG_COLOR_TYPE_GRAY : img->c == 2 ? PNG_COLOR_TYPE_GRAY_ALPHA
           : img->c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGBA;
    png_set_IHDR(p, info, (png_uint_32)img->w, (png_uint_32)img->h, 8, ct, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(p, wc->level > 0 ? wc->level : 3);
    /* frames are 8-bit sRGB (docs/DESIGN.md) */
    png_set_sRGB(p, info, PNG_sRGB_INTENT_PERCEPTUAL);
    png_write_info(p, info);
    rows = malloc(sizeof *rows * (size_t)img->h);
    if (!rows) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    for (int y = 0; y < img->h; y++) rows[y] = img->data + (size_t)y * img->w * img->c;
    png_write_image(p, rows);
    png_write_end(p, NULL);
done:
    free(rows);
    png_destroy_write_struct(&p, &info);
    return rc;
}

int image_save_png(const char *path, const struct image *img, int level)
{
    FILE *f = fopen(path, "wb");
    if (!f) return iso_fail(ISO_ECANTCREAT, "cannot create '%s': %s", path, strerror(errno));
    struct wctx wc = { .img = img, .level = level };
    int rc = write_png(f, &wc);
    if (fclose(f) != 0 && !rc) rc = iso_fail(ISO_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (rc) {
        remove(path);
        return iso_wrap(rc, "'%s'", path);
    }
    return 0;
}

int image_save_png_atomic(const char *path, const struct image *img, int level)
{
    struct wctx wc = { .img = img, .level = level };
    return fs_write_atomic(path, write_png, &wc);
}
