#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "image.h"
#include "video.h"

struct fsrc {
    enum fsrc_kind kind;
    char **paths;
    int n, cap;
    int next;
    struct video_dec *vd;
    unsigned char *rgb;
    int w, h;
    int read;
};

void fsrc_free(struct fsrc **sp)
{
    struct fsrc *s = sp ? *sp : NULL;
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->paths[i]);
    free(s->paths);
    video_dec_free(&s->vd);
    free(s->rgb);
    free(s);
    *sp = NULL;
}

static int add_path(struct fsrc *s, char *p)
{
    if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
    if (s->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 16;
        char **np = realloc(s->paths, sizeof *np * (size_t)nc);
        if (!np) { free(p); return iso_fail(ISO_EINTERNAL, "out of memory"); }
        s->paths = np;
        s->cap = nc;
    }
    s->paths[s->n++] = p;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_frame_name(const char *n)
{
    size_t len = strlen(n);
    return len > 10 && strncmp(n, "frame_", 6) == 0 && strcmp(n + len - 4, ".png") == 0;
}

static int open_dir(struct fsrc *s, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return iso_fail(errno == ENOENT ? ISO_ENOINPUT : ISO_EIO, "cannot read '%s': %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (!is_frame_name(e->d_name)) continue;
        if ((rc = add_path(s, fs_join(dir, e->d_name)))) break;
    }
    if (!rc && errno) rc = iso_fail(ISO_EIO, "cannot read '%s': %s", dir, strerror(errno));
    closedir(d);
    if (rc) return rc;
    if (s->n == 0) return iso_fail(ISO_ENOINPUT, "no frame_*.png in '%s'", dir);
    /* names are zero-padded (frame_00000.png), so name order is frame order */
    qsort(s->paths, (size_t)s->n, sizeof *s->paths, cmp_str);
    return 0;
}

int fsrc_open(struct fsrc **out, const char *input, const char *pair_b, int threads)
{
    *out = NULL;
    struct fsrc *s = calloc(1, sizeof *s);
    int rc = 0;
    if (!s) return iso_fail(ISO_EINTERNAL, "out of memory");
    if (pair_b) {
        s->kind = FSRC_PAIR;
        if ((rc = add_path(s, strdup(input))) || (rc = add_path(s, strdup(pair_b)))) goto done;
    } else if (fs_is_dir(input)) {
        s->kind = FSRC_DIR;
        if ((rc = open_dir(s, input))) goto done;
    } else {
        s->kind = FSRC_VIDEO;
        if ((rc = video_dec_open(&s->vd, input, threads))) goto done;
        video_dec_info(s->vd, &s->w, &s->h, NULL, NULL);
        if (!(s->rgb = malloc((size_t)s->w * s->h * 3))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    }
    if (s->kind != FSRC_VIDEO && (rc = image_png_size(s->paths[0], &s->w, &s->h))) goto done;
done:
    if (rc) fsrc_free(&s);
    *out = s;
    return rc;
}

enum fsrc_kind fsrc_kind(const struct fsrc *s) { return s->kind; }
const char *fsrc_kind_name(const struct fsrc *s)
{
    return s->kind == FSRC_VIDEO ? "video" : s->kind == FSRC_DIR ? "frames" : "pair";
}
void fsrc_size(const struct fsrc *s, int *w, int *h)
{
    *w = s->w;
    *h = s->h;
}
int fsrc_count(const struct fsrc *s) { return s->kind == FSRC_VIDEO ? -1 : s->n; }
const char *fsrc_path(const struct fsrc *s, int i) { return s->kind == FSRC_VIDEO || i < 0 || i >= s->n ? NULL : s->paths[i]; }
int fsrc_frames_read(const struct fsrc *s) { return s->read; }

static void to_grey(const unsigned char *rgb, size_t n, float *grey)
{
    /* BT.601 luma, the weights OpenCV's and libpng's RGB-to-grey use */
    for (size_t i = 0; i < n; i++)
        grey[i] = 0.299f * rgb[3 * i] + 0.587f * rgb[3 * i + 1] + 0.114f * rgb[3 * i + 2];
}

int fsrc_next(struct fsrc *s, float *grey)
{
    int rc;
    if (s->kind == FSRC_VIDEO) {
        rc = video_dec_read_rgb(s->vd, s->rgb, (ptrdiff_t)s->w * 3);
        if (rc <= 0) return rc;
        to_grey(s->rgb, (size_t)s->w * s->h, grey);
        s->read++;
        return 1;
    }
    if (s->next >= s->n) return 0;
    struct image img;
    const char *p = s->paths[s->next];
    if ((rc = image_load_png(p, &img, 3))) return rc;
    if (img.w != s->w || img.h != s->h) {
        rc = iso_fail(ISO_EDATA, "'%s' is %dx%d but '%s' is %dx%d: all frames must have one size", p, img.w, img.h,
                      s->paths[0], s->w, s->h);
        image_free(&img);
        return rc;
    }
    to_grey(img.data, (size_t)img.w * img.h, grey);
    image_free(&img);
    s->next++;
    s->read++;
    return 1;
}
