#include "flo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"

int flow_alloc(struct flow *f, int w, int h)
{
    f->uv = NULL;
    f->w = f->h = 0;
    if (w <= 0 || h <= 0 || w > (1 << 16) || h > (1 << 16)) return iso_fail(ISO_EDATA, "bad flow size %dx%d", w, h);
    f->uv = calloc((size_t)w * (size_t)h * 2, sizeof(float));
    if (!f->uv) /* sizes come from data: not enough RAM now is 75, with the sizes */
        return iso_fail(ISO_ETEMPFAIL, "not enough memory for a %dx%d flow (%.1f MiB)", w, h,
                        (double)w * h * 2 * sizeof(float) / 1048576.0);
    f->w = w;
    f->h = h;
    return 0;
}

void flow_free(struct flow *f)
{
    if (!f) return;
    free(f->uv);
    f->uv = NULL;
    f->w = f->h = 0;
}

static int parse_header(const uint8_t *hdr, size_t total, const char *name, int *w, int *h)
{
    float magic;
    int32_t ww, hh;
    memcpy(&magic, hdr, 4);
    memcpy(&ww, hdr + 4, 4);
    memcpy(&hh, hdr + 8, 4);
    if (magic != FLO_MAGIC) return iso_fail(ISO_EDATA, "cannot read '%s': not a .flo file (bad magic)", name);
    if (ww <= 0 || hh <= 0 || ww > (1 << 16) || hh > (1 << 16))
        return iso_fail(ISO_EDATA, "cannot read '%s': bad size %dx%d", name, ww, hh);
    uint64_t need = 12 + (uint64_t)ww * (uint64_t)hh * 8;
    if (need != total)
        return iso_fail(ISO_EDATA, "cannot read '%s': %dx%d needs %llu bytes, file has %zu", name, ww, hh,
                        (unsigned long long)need, total);
    *w = ww;
    *h = hh;
    return 0;
}

int flo_read_mem(const uint8_t *buf, size_t len, struct flow *f, const char *name)
{
    memset(f, 0, sizeof *f);
    if (len < 12) return iso_fail(ISO_EDATA, "cannot read '%s': truncated .flo header", name);
    int w, h, rc = parse_header(buf, len, name, &w, &h);
    if (rc) return rc;
    if ((rc = flow_alloc(f, w, h))) return rc;
    memcpy(f->uv, buf + 12, (size_t)w * h * 8);
    return 0;
}

int flo_read(const char *path, struct flow *f)
{
    memset(f, 0, sizeof *f);
    FILE *fp;
    int rc = fs_fopen_input(path, &fp), w, h; /* a FIFO or device is refused, never waited on */
    if (rc) return rc;
    uint8_t hdr[12];
    long total;
    if (fseek(fp, 0, SEEK_END) != 0 || (total = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        rc = iso_fail(ISO_EIO, "cannot read '%s': %s", path, strerror(errno));
        goto done;
    }
    if (fread(hdr, 1, 12, fp) != 12) { rc = iso_fail(ISO_EDATA, "cannot read '%s': truncated .flo header", path); goto done; }
    if ((rc = parse_header(hdr, (size_t)total, path, &w, &h))) goto done;
    if ((rc = flow_alloc(f, w, h))) goto done;
    if (fread(f->uv, 8, (size_t)w * h, fp) != (size_t)w * h) {
        rc = iso_fail(ISO_EDATA, "cannot read '%s': truncated data", path);
        flow_free(f);
    }
done:
    fclose(fp);
    return rc;
}

static int write_cb(FILE *fp, void *ctx)
{
    const struct flow *f = ctx;
    float magic = FLO_MAGIC;
    int32_t w = f->w, h = f->h;
    if (fwrite(&magic, 4, 1, fp) != 1 || fwrite(&w, 4, 1, fp) != 1 || fwrite(&h, 4, 1, fp) != 1 ||
        fwrite(f->uv, 8, (size_t)w * h, fp) != (size_t)w * h)
        return iso_fail(ISO_EIO, "cannot write .flo: %s", strerror(errno));
    return 0;
}

int flo_write(const char *path, const struct flow *f)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return iso_fail(ISO_ECANTCREAT, "cannot create '%s': %s", path, strerror(errno));
    int rc = write_cb(fp, (void *)f);
    if (fclose(fp) != 0 && !rc) rc = iso_fail(ISO_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (rc) remove(path);
    return rc;
}

int flo_write_atomic(const char *path, const struct flow *f)
{
    return fs_write_atomic(path, write_cb, (void *)f);
}
