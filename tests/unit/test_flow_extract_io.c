/* Files flow-extract reads and writes: the Middlebury .flo round trip and its
 * malformed variants (wrong magic, size that does not match the file, a
 * truncated header), and the video decoder on a clip this test encodes
 * itself with libavcodec (common/video.h encoder): frame count, size and
 * pixel values after the yuv420p round trip; a corrupt file is refused. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "flo.h"
#include "fs.h"
#include "source.h"
#include "test.h"
#include "video.h"

static int write_bytes(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(buf, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

static void frame_rgb(uint8_t *rgb, int w, int h, int k)
{
    /* a smooth pattern that moves 2 px per frame, so frames differ */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + 3 * ((size_t)y * w + x);
            p[0] = (uint8_t)(128 + 100 * ((x + 2 * k) % 32 < 16 ? 1 : -1) * 0.5);
            p[1] = (uint8_t)((y * 4) & 255);
            p[2] = (uint8_t)(((x + y + k) * 3) & 255);
        }
}

int main(void)
{
    char *dir = test_tmpdir();
    char path[600];

    TEST(".flo round trip");
    {
        struct flow f, g;
        CHECK(flow_alloc(&f, 7, 5) == 0);
        for (int i = 0; i < 70; i++) f.uv[i] = (float)(i * 0.37 - 11.0);
        f.uv[3] = 1e10f; /* unknown-flow marker survives */
        snprintf(path, sizeof path, "%s/a.flo", dir);
        CHECK(flo_write(path, &f) == 0);
        CHECK(flo_read(path, &g) == 0);
        CHECK(g.w == 7 && g.h == 5 && memcmp(f.uv, g.uv, 70 * sizeof(float)) == 0);
        flow_free(&g);
        /* the bytes are the documented layout: magic, w, h, then u, v pairs */
        char *data = NULL;
        size_t len = 0;
        CHECK(fs_read_all(path, &data, &len, 1 << 20) == 0);
        CHECK(len == 12 + 7 * 5 * 8);
        float magic;
        int32_t ww, hh;
        memcpy(&magic, data, 4);
        memcpy(&ww, data + 4, 4);
        memcpy(&hh, data + 8, 4);
        CHECK(magic == 202021.25f && ww == 7 && hh == 5);

        TEST(".flo with a wrong magic, a size mismatch, a short header");
        data[0] ^= 0x55;
        snprintf(path, sizeof path, "%s/magic.flo", dir);
        CHECK(write_bytes(path, data, len) == 0);
        CHECK(flo_read(path, &g) == ISO_EDATA && strstr(iso_errmsg(), "magic") && !strchr(iso_errmsg(), '\n'));
        data[0] ^= 0x55;
        snprintf(path, sizeof path, "%s/short.flo", dir);
        CHECK(write_bytes(path, data, len - 8) == 0);
        CHECK(flo_read(path, &g) == ISO_EDATA && strstr(iso_errmsg(), "needs") && !strchr(iso_errmsg(), '\n'));
        snprintf(path, sizeof path, "%s/long.flo", dir);
        CHECK(write_bytes(path, data, len) == 0);
        FILE *fa = fopen(path, "ab");
        if (fa) { fputc(0, fa); fclose(fa); }
        CHECK(flo_read(path, &g) == ISO_EDATA);
        snprintf(path, sizeof path, "%s/hdr.flo", dir);
        CHECK(write_bytes(path, data, 9) == 0);
        CHECK(flo_read(path, &g) == ISO_EDATA);
        int32_t huge = 1 << 20;
        memcpy(data + 4, &huge, 4);
        CHECK(flo_read_mem((const uint8_t *)data, len, &g, "mem") == ISO_EDATA);
        snprintf(path, sizeof path, "%s/none.flo", dir);
        CHECK(flo_read(path, &g) == ISO_ENOINPUT);
        free(data);
        flow_free(&f);
    }

    TEST("video decoder: a clip encoded here comes back frame by frame");
    {
        const int W = 96, H = 64, N = 6;
        struct video_enc_params ep;
        struct video_enc *enc = NULL;
        video_enc_default_params(&ep);
        ep.width = W;
        ep.height = H;
        ep.crf = 0;
        ep.preset = "ultrafast";
        snprintf(path, sizeof path, "%s/clip.mp4", dir);
        uint8_t *rgb = malloc((size_t)W * H * 3), *got = malloc((size_t)W * H * 3);
        int rc = video_enc_open(&enc, path, &ep);
        CHECKF(rc == 0, "video_enc_open: %s", iso_errmsg());
        for (int k = 0; k < N && !rc; k++) {
            frame_rgb(rgb, W, H, k);
            rc = video_enc_write_rgb(enc, rgb, W * 3);
        }
        if (!rc) rc = video_enc_finish(enc);
        video_enc_free(&enc);
        CHECK(rc == 0);

        struct video_dec *dec = NULL;
        rc = video_dec_open(&dec, path, 1);
        CHECKF(rc == 0, "video_dec_open: %s", iso_errmsg());
        if (!rc) {
            int w, h, n = 0;
            double worst = 0;
            video_dec_info(dec, &w, &h, NULL, NULL);
            CHECK(w == W && h == H);
            while ((rc = video_dec_read_rgb(dec, got, W * 3)) == 1) {
                frame_rgb(rgb, W, H, n);
                double err = 0;
                for (int i = 0; i < W * H * 3; i++) err += abs((int)got[i] - (int)rgb[i]);
                err /= W * H * 3;
                if (err > worst) worst = err;
                n++;
            }
            CHECK(rc == 0);
            CHECKF(n == N, "decoded %d frames, wrote %d", n, N);
            /* lossless luma, subsampled chroma: the mean error stays small */
            CHECKF(worst < 12, "mean abs error %.2f", worst);
            CHECK(video_dec_frames(dec) == N);
        }
        video_dec_free(&dec);

        TEST("the frame source reads the clip as grey frames");
        struct fsrc *src = NULL;
        CHECK(fsrc_open(&src, path, NULL, 1) == 0);
        if (src) {
            float *grey = malloc(sizeof(float) * W * H);
            int n = 0;
            while (fsrc_next(src, grey) == 1) n++;
            CHECK(n == N && fsrc_count(src) == -1 && strcmp(fsrc_kind_name(src), "video") == 0);
            free(grey);
        }
        fsrc_free(&src);

        TEST("a corrupt video and a missing one are refused with one line");
        snprintf(path, sizeof path, "%s/bad.mp4", dir);
        for (int i = 0; i < W * H * 3; i++) rgb[i] = (uint8_t)(i * 7919 >> 3);
        CHECK(write_bytes(path, rgb, 4096) == 0);
        rc = video_dec_open(&dec, path, 1);
        CHECKF(rc == ISO_EDATA && !strchr(iso_errmsg(), '\n'), "rc %d: %s", rc, iso_errmsg());
        video_dec_free(&dec);
        snprintf(path, sizeof path, "%s/missing.mp4", dir);
        CHECK(video_dec_open(&dec, path, 1) == ISO_ENOINPUT && dec == NULL);
        free(rgb);
        free(got);
    }
    fs_rm_rf(dir);
    return test_report();
}
