/* test_st_write.c — the safetensors writer against the reader: what is
 * written reads back (names, dtypes, shapes, bytes, metadata), the header
 * is padded to 8 bytes, identical inputs give identical files, and bad
 * descriptions are refused without leaving a file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "safetensors.h"
#include "st_write.h"
#include "test.h"

int main(void)
{
    char dir[] = "/tmp/isopipe-stw-XXXXXX";
    if (!mkdtemp(dir)) { printf("FAIL - mkdtemp\n0 passed, 1 failed, 0 skipped\n"); return 1; }
    char *p1 = fs_join(dir, "a.safetensors"), *p2 = fs_join(dir, "b.safetensors"), *p3 = fs_join(dir, "c.safetensors");
    float lat[2 * 3 * 5];
    for (int i = 0; i < 30; i++) lat[i] = (float)i * 0.5f - 3;
    uint16_t h[7] = { 1, 2, 3, 4, 5, 6, 7 };
    struct st_out t[2] = {
        { "latents", ST_F32, 3, { 2, 3, 5 }, lat },
        { "prompt.0", ST_BF16, 1, { 7 }, h },
    };
    const char *meta[] = { "tool", "test", "format", "pt", NULL };
    CHECK(st_write(p1, t, 2, meta) == 0);
    CHECK(st_write(p2, t, 2, meta) == 0);
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    CHECK(fs_read_all(p1, &a, &la, 1 << 20) == 0 && fs_read_all(p2, &b, &lb, 1 << 20) == 0);
    CHECK(a && b && la == lb && memcmp(a, b, la) == 0);
    uint64_t hl = 0;
    for (int i = 0; i < 8 && a; i++) hl |= (uint64_t)(uint8_t)a[i] << (8 * i);
    CHECKF(hl % 8 == 0, "header length %llu", (unsigned long long)hl);
    CHECK(la == 8 + hl + sizeof lat + sizeof h);
    struct safetensors *st = NULL;
    CHECK(st_open(p1, &st) == 0);
    if (st) {
        const struct st_tensor *x = st_find(st, "latents"), *y = st_find(st, "prompt.0");
        CHECK(x && x->dtype == ST_F32 && x->n_dims == 3 && x->shape[0] == 2 && x->shape[2] == 5);
        CHECK(x && memcmp(x->data, lat, sizeof lat) == 0);
        CHECK(y && y->dtype == ST_BF16 && y->shape[0] == 7 && memcmp(y->data, h, sizeof h) == 0);
        CHECK_STR(st_meta(st, "format"), "pt");
        st_close(&st);
    }
    /* duplicates and unknown dtypes are refused; nothing is left behind */
    struct st_out dup[2] = { t[0], t[0] };
    CHECK(st_write(p3, dup, 2, NULL) == ISO_EUSAGE);
    struct st_out bad = { "x", (enum st_dtype)99, 1, { 1 }, lat };
    CHECK(st_write(p3, &bad, 1, NULL) == ISO_EUSAGE);
    CHECK(!fs_exists(p3));
    /* an empty file (no tensors) is valid safetensors */
    CHECK(st_write(p3, NULL, 0, NULL) == 0);
    CHECK(st_open(p3, &st) == 0 && st && st->n_tensors == 0);
    st_close(&st);
    free(a); free(b);
    fs_rm_rf(dir);
    free(p1); free(p2); free(p3);
    return test_report();
}
