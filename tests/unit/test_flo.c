/* test_flo.c — Middlebury .flo files (common/flo.c). The layout is checked
 * byte by byte against the format description of the Middlebury flow page
 * (the "PIEH" tag, i.e. float 202021.25 little-endian; int32 width and
 * height; u,v float32 pairs row by row), and every malformed file must be
 * an ISO_EDATA naming it. */
#include <dirent.h>
#include <unistd.h>

#include "err.h"
#include "flo.h"
#include "fs.h"
#include "test.h"

static char dir[600];

static char *P(const char *name) { return test_path_in(dir, name); }

static void put(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(b, 1, n, f); fclose(f); }
}

static void le32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static void lef(uint8_t *p, float f) { uint32_t u; memcpy(&u, &f, 4); le32(p, u); }

/* builds a .flo image by hand: magic, w, h, then the pairs */
static uint8_t *make(int w, int h, size_t *n)
{
    *n = 12 + (size_t)w * h * 8;
    uint8_t *b = malloc(*n);
    memcpy(b, "PIEH", 4);
    le32(b + 4, (uint32_t)w);
    le32(b + 8, (uint32_t)h);
    for (int i = 0; i < w * h; i++) {
        lef(b + 12 + 8 * i, (float)i * 0.25f - 3.0f);
        lef(b + 16 + 8 * i, (float)(i % 7) * -1.5f);
    }
    return b;
}

static void expect_bad(const char *what, const uint8_t *b, size_t n, const char *why)
{
    put(P("bad.flo"), b, n);
    struct flow f;
    int rc = flo_read(P("bad.flo"), &f);
    CHECKF(rc == ISO_EDATA && f.uv == NULL, "%s: status %d (%s)", what, rc, iso_errmsg());
    CHECKF(strstr(iso_errmsg(), P("bad.flo")) && strstr(iso_errmsg(), why), "%s: message '%s'", what, iso_errmsg());
    rc = flo_read_mem(b, n, &f, "mem.flo");
    CHECKF(rc == ISO_EDATA && f.uv == NULL && strstr(iso_errmsg(), "mem.flo") && strstr(iso_errmsg(), why), "%s (memory): %d '%s'",
           what, rc, iso_errmsg());
}

int main(void)
{
    char *d = test_tmpdir();
    if (!d) { printf("FAIL - cannot create a temporary directory\n0 passed, 1 failed, 0 skipped\n"); return 1; }
    snprintf(dir, sizeof dir, "%s", d);

    TEST("magic is the PIEH tag");
    float m = FLO_MAGIC;
    CHECK(memcmp(&m, "PIEH", 4) == 0);

    TEST("round trip and layout");
    struct flow f, g;
    CHECK(flow_alloc(&f, 5, 3) == 0 && f.uv && f.w == 5 && f.h == 3);
    for (int i = 0; i < 30; i++) f.uv[i] = (float)i * 0.1f - 1.0f;
    f.uv[7] = 1e10f; /* "unknown" in Middlebury files: kept as is */
    CHECK(flo_write(P("a.flo"), &f) == 0);
    char *raw;
    size_t n;
    CHECK(fs_read_all(P("a.flo"), &raw, &n, 1 << 20) == 0 && n == 12 + 5 * 3 * 8);
    uint8_t hdr[12];
    memcpy(hdr, "PIEH", 4);
    le32(hdr + 4, 5);
    le32(hdr + 8, 3);
    CHECK(memcmp(raw, hdr, 12) == 0);
    uint8_t px[8];
    lef(px, f.uv[2 * (1 * 5 + 2)]);
    lef(px + 4, f.uv[2 * (1 * 5 + 2) + 1]);
    CHECK(memcmp(raw + 12 + 8 * (1 * 5 + 2), px, 8) == 0); /* pixel (2,1): row major, u then v */
    free(raw);
    CHECK(flo_read(P("a.flo"), &g) == 0 && g.w == 5 && g.h == 3 && memcmp(f.uv, g.uv, 30 * sizeof(float)) == 0);
    flow_free(&g);
    CHECK(g.uv == NULL && g.w == 0);
    CHECK(flo_write_atomic(P("b.flo"), &f) == 0 && flo_read(P("b.flo"), &g) == 0 && memcmp(f.uv, g.uv, 30 * sizeof(float)) == 0);
    flow_free(&g);
    CHECK(flo_write_atomic(P("missing/b.flo"), &f) == ISO_ECANTCREAT && !fs_exists(P("missing")));
    CHECK(flo_write(P("missing/b.flo"), &f) == ISO_ECANTCREAT);
    flow_free(&f);
    /* a file made by hand reads back to the same numbers */
    uint8_t *b = make(4, 2, &n);
    put(P("hand.flo"), b, n);
    CHECK(flo_read(P("hand.flo"), &g) == 0 && g.w == 4 && g.h == 2);
    CHECK(g.uv && g.uv[0] == -3.0f && g.uv[2 * 5] == 5 * 0.25f - 3.0f && g.uv[2 * 5 + 1] == 5 * -1.5f);
    flow_free(&g);
    CHECK(flo_read_mem(b, n, &g, "x") == 0 && g.uv[2 * 7] == 7 * 0.25f - 3.0f);
    flow_free(&g);

    TEST("malformed files");
    uint8_t *c = malloc(n + 16);
    memcpy(c, b, n);
    memcpy(c, "PIEX", 4);
    expect_bad("bad magic", c, n, "bad magic");
    memcpy(c, b, n);
    c[n] = 0;
    expect_bad("one byte extra", c, n + 1, "needs 76 bytes");
    expect_bad("one byte short", b, n - 1, "needs 76 bytes");
    expect_bad("one pair short", b, n - 8, "needs 76 bytes");
    expect_bad("truncated header", b, 11, "truncated");
    expect_bad("empty", b, 0, "truncated");
    memcpy(c, b, n);
    le32(c + 4, 0);
    expect_bad("zero width", c, n, "bad size");
    le32(c + 4, 0xffffffffu);
    expect_bad("negative width", c, n, "bad size");
    le32(c + 4, 70000);
    le32(c + 8, 1);
    expect_bad("huge width", c, n, "bad size");
    le32(c + 4, 65536);
    le32(c + 8, 65536);
    expect_bad("huge but within limits", c, n, "needs");
    free(c);
    free(b);
    CHECK(flo_read(P("absent.flo"), &g) == ISO_ENOINPUT && g.uv == NULL);
    CHECK(flow_alloc(&g, 0, 4) == ISO_EDATA && flow_alloc(&g, 70000, 1) == ISO_EDATA && g.uv == NULL);

    fs_rm_rf(dir);
    return test_report();
}
