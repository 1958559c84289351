/* fuzz_png.c — libFuzzer target for the PNG reader (image_load_png_mem).
 * Every input must either decode to an image whose size matches its header
 * or fail with ISO_EDATA; anything else (a crash, a leak, another status,
 * an inconsistent image) is a finding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "image.h"

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The reader allocates the whole image once IHDR is read (up to the
     * 65536x65536 limit, which the unit tests cover). Keep the fuzzer
     * well inside its 2 GiB RSS limit by skipping headers that declare
     * more than 1 Mpixel (ASan's quarantine keeps freed images a while; a
     * CI run went over the limit once with 4 Mpixels allowed, for a cause
     * not reproduced since). PNG puts IHDR first (PNG spec 11.2.2), so bytes
     * 16..23 are its width and height whenever the file can be valid. */
    if (size >= 24) {
        uint64_t w = be32(data + 16), h = be32(data + 20);
        if (w * h > ((uint64_t)1 << 20)) return 0;
    }
    static const int wants[] = { 0, 1, 3, 4 };
    for (int i = 0; i < 4; i++) {
        struct image img;
        int rc = image_load_png_mem(data, size, &img, wants[i]);
        if (rc == 0) {
            if (!img.data || img.w <= 0 || img.h <= 0) abort();
            if (wants[i] && img.c != wants[i]) abort();
            if (!wants[i] && img.c != 1 && img.c != 3 && img.c != 4) abort();
            if (size >= 24 && ((uint32_t)img.w != be32(data + 16) || (uint32_t)img.h != be32(data + 20))) abort();
            /* touch every byte so ASan sees a short buffer */
            volatile unsigned sum = 0;
            for (size_t k = 0; k < (size_t)img.w * img.h * img.c; k++) sum += img.data[k];
            image_free(&img);
        } else {
            if (rc != ISO_EDATA) abort();
            if (img.data) abort();
            if (!strstr(iso_errmsg(), "(memory)")) abort();
        }
    }
    return 0;
}
