/* test_image.c — the PNG reader and writer (common/image.c).
 * Inputs of every colour type, bit depth and interlace method are written
 * here with libpng directly, and the decoded pixels are compared with the
 * values the PNG spec (2nd ed., sections 4 and 13.12) says they stand for,
 * computed in float64 from the samples written. Corrupt and truncated
 * files must give ISO_EDATA with the file's name, never a crash. */
#include <png.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "image.h"
#include "test.h"

static char dir[600];

static char *path_in(const char *name)
{
    static char buf[8][800];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

struct raw {
    int w, h, depth, ctype, interlace;
    const uint16_t *s;          /* samples, w*h*spp, each < 2^depth */
    const png_color *pal; int npal;
    const uint8_t *trns; int ntrns;  /* palette alpha */
    const png_color_16 *trns_color;  /* gray/RGB transparent colour */
};

static int spp(int ctype)
{
    switch (ctype) {
    case PNG_COLOR_TYPE_GRAY: case PNG_COLOR_TYPE_PALETTE: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    default: return 4;
    }
}

/* libpng writer with its own error handling (a test failure, not a crash) */
static jmp_buf wjmp;
static void werr(png_structp p, png_const_charp m) { (void)p; printf("# libpng write error: %s\n", m); longjmp(wjmp, 1); }

static int write_raw(const char *path, const struct raw *r)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, werr, NULL);
    png_infop info = png_create_info_struct(p);
    int n = spp(r->ctype);
    size_t bps = r->depth == 16 ? 2 : 1; /* bytes per sample handed to libpng (packing on for < 8) */
    size_t rowbytes = (size_t)r->w * n * bps;
    uint8_t *buf = malloc(rowbytes * r->h);
    png_bytep *rows = malloc(sizeof *rows * r->h);
    volatile int ok = 0;
    if (setjmp(wjmp)) goto done;
    png_init_io(p, f);
    png_set_IHDR(p, info, r->w, r->h, r->depth, r->ctype, r->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (r->pal) png_set_PLTE(p, info, r->pal, r->npal);
    if (r->trns || r->trns_color) png_set_tRNS(p, info, r->trns, r->ntrns, r->trns_color);
    png_write_info(p, info);
    if (r->depth < 8) png_set_packing(p);
    if (r->interlace) png_set_interlace_handling(p);
    for (int y = 0; y < r->h; y++) {
        rows[y] = buf + (size_t)y * rowbytes;
        for (int i = 0; i < r->w * n; i++) {
            uint16_t v = r->s[(size_t)y * r->w * n + i];
            if (bps == 2) { rows[y][2 * i] = (uint8_t)(v >> 8); rows[y][2 * i + 1] = (uint8_t)v; }
            else rows[y][i] = (uint8_t)v;
        }
    }
    png_write_image(p, rows);
    png_write_end(p, NULL);
    ok = 1;
done:
    png_destroy_write_struct(&p, &info);
    fclose(f);
    free(buf);
    free(rows);
    return ok ? 0 : -1;
}

/* sample of depth d to 8 bits, PNG spec 13.12: v * 255 / (2^d - 1), rounded */
static int to8(unsigned v, int d) { return (int)floor(v * 255.0 / ((1 << d) - 1) + 0.5); }

static int pix(const struct image *im, int x, int y, int ch) { return im->data[((size_t)y * im->w + x) * im->c + ch]; }

/* loads path with want_c and compares every pixel with expect(x, y, ch) */
typedef int (*expect_fn)(const struct raw *r, int x, int y, int ch, int c);
static void check_decode(const char *what, const char *file, const struct raw *r, int want_c, int expect_c, expect_fn ex, int tol)
{
    struct image im;
    int rc = image_load_png(file, &im, want_c);
    CHECKF(rc == 0, "%s want_c=%d: %s", what, want_c, iso_errmsg());
    if (rc) return;
    CHECKF(im.w == r->w && im.h == r->h && im.c == expect_c, "%s want_c=%d: got %dx%dx%d, expected %dx%dx%d", what, want_c,
           im.w, im.h, im.c, r->w, r->h, expect_c);
    if (im.c != expect_c || im.w != r->w || im.h != r->h) { image_free(&im); return; }
    int bad = 0, worst = 0;
    for (int y = 0; y < r->h; y++)
        for (int x = 0; x < r->w; x++)
            for (int ch = 0; ch < im.c; ch++) {
                int e = ex(r, x, y, ch, im.c), g = pix(&im, x, y, ch);
                if (abs(e - g) > tol) {
                    if (!bad) printf("# %s want_c=%d: first mismatch at (%d,%d,%d): got %d, expected %d\n", what, want_c, x, y, ch, g, e);
                    bad++;
                }
                if (abs(e - g) > worst) worst = abs(e - g);
            }
    CHECKF(bad == 0, "%s want_c=%d: %d samples off by more than %d (worst %d)", what, want_c, bad, tol, worst);
    image_free(&im);
}

/* ---- expectations, one per source colour type */
static int sample(const struct raw *r, int x, int y, int i) { return r->s[((size_t)y * r->w + x) * spp(r->ctype) + i]; }

static int ex_gray(const struct raw *r, int x, int y, int ch, int c)
{
    int g = to8((unsigned)sample(r, x, y, 0), r->depth);
    if (ch == 3) {
        if (r->trns_color && (unsigned)sample(r, x, y, 0) == r->trns_color->gray) return 0;
        return 255;
    }
    return g;
}
static int ex_ga(const struct raw *r, int x, int y, int ch, int c)
{
    if (ch == 3) return to8((unsigned)sample(r, x, y, 1), r->depth);
    return to8((unsigned)sample(r, x, y, 0), r->depth);
}
static int ex_rgb(const struct raw *r, int x, int y, int ch, int c)
{
    if (c == 1) {
        /* libpng's default rgb_to_gray weights are the Rec. 709 ones (png_set_rgb_to_gray docs) */
        double R = to8((unsigned)sample(r, x, y, 0), r->depth), G = to8((unsigned)sample(r, x, y, 1), r->depth),
               B = to8((unsigned)sample(r, x, y, 2), r->depth);
        return (int)floor(0.2126 * R + 0.7152 * G + 0.0722 * B + 0.5);
    }
    if (ch == 3) return spp(r->ctype) == 4 ? to8((unsigned)sample(r, x, y, 3), r->depth) : 255;
    return to8((unsigned)sample(r, x, y, ch), r->depth);
}
static int ex_pal(const struct raw *r, int x, int y, int ch, int c)
{
    int i = sample(r, x, y, 0);
    if (ch == 3) return r->trns && i < r->ntrns ? r->trns[i] : 255;
    const png_color *e = &r->pal[i];
    if (c == 1) return (int)floor(0.2126 * e->red + 0.7152 * e->green + 0.0722 * e->blue + 0.5);
    return ch == 0 ? e->red : ch == 1 ? e->green : e->blue;
}

static uint16_t *make_samples(int w, int h, int n, int depth, unsigned seed)
{
    uint16_t *s = malloc(sizeof *s * (size_t)w * h * n);
    unsigned m = (1u << depth) - 1, st = seed * 2654435761u + 1;
    for (size_t i = 0; i < (size_t)w * h * n; i++) {
        st = st * 1103515245u + 12345u;
        /* include both extremes in every image */
        s[i] = i == 0 ? 0 : i == 1 ? (uint16_t)m : (uint16_t)((st >> 8) & m);
    }
    return s;
}

static void test_formats(void)
{
    TEST("every colour type and bit depth");
    const int W = 13, H = 7; /* odd sizes: partial bytes at row ends, short Adam7 passes */
    char name[64];
    for (int interlace = 0; interlace <= 1; interlace++) {
        const char *il = interlace ? "adam7" : "plain";
        /* gray 1, 2, 4, 8, 16 */
        for (int d = 1; d <= 16; d *= 2) {
            uint16_t *s = make_samples(W, H, 1, d, (unsigned)d);
            struct raw r = { .w = W, .h = H, .depth = d, .ctype = PNG_COLOR_TYPE_GRAY, .interlace = interlace, .s = s };
            snprintf(name, sizeof name, "gray%d-%s.png", d, il);
            CHECK(write_raw(path_in(name), &r) == 0);
            check_decode(name, path_in(name), &r, 0, 1, ex_gray, 0);
            check_decode(name, path_in(name), &r, 3, 3, ex_gray, 0);
            check_decode(name, path_in(name), &r, 4, 4, ex_gray, 0);
            /* gray with a transparent value (tRNS), PNG spec 11.3.2.1 */
            png_color_16 tc = { 0 };
            tc.gray = s[5];
            struct raw rt = r;
            rt.trns_color = &tc;
            snprintf(name, sizeof name, "gray%d-trns-%s.png", d, il);
            CHECK(write_raw(path_in(name), &rt) == 0);
            check_decode(name, path_in(name), &rt, 0, 4, ex_gray, 0);
            check_decode(name, path_in(name), &rt, 1, 1, ex_gray, 0);
            free(s);
        }
        /* gray + alpha, RGB, RGBA at 8 and 16 bits */
        for (int d = 8; d <= 16; d += 8) {
            uint16_t *s = make_samples(W, H, 2, d, 100u + d);
            struct raw r = { .w = W, .h = H, .depth = d, .ctype = PNG_COLOR_TYPE_GRAY_ALPHA, .interlace = interlace, .s = s };
            snprintf(name, sizeof name, "ga%d-%s.png", d, il);
            CHECK(write_raw(path_in(name), &r) == 0);
            check_decode(name, path_in(name), &r, 0, 4, ex_ga, 0);
            check_decode(name, path_in(name), &r, 1, 1, ex_ga, 0);
            check_decode(name, path_in(name), &r, 3, 3, ex_ga, 0);
            free(s);
            s = make_samples(W, H, 3, d, 200u + d);
            struct raw rr = { .w = W, .h = H, .depth = d, .ctype = PNG_COLOR_TYPE_RGB, .interlace = interlace, .s = s };
            snprintf(name, sizeof name, "rgb%d-%s.png", d, il);
            CHECK(write_raw(path_in(name), &rr) == 0);
            check_decode(name, path_in(name), &rr, 0, 3, ex_rgb, 0);
            check_decode(name, path_in(name), &rr, 4, 4, ex_rgb, 0);
            check_decode(name, path_in(name), &rr, 1, 1, ex_rgb, 1);
            free(s);
            s = make_samples(W, H, 4, d, 300u + d);
            struct raw ra = { .w = W, .h = H, .depth = d, .ctype = PNG_COLOR_TYPE_RGB_ALPHA, .interlace = interlace, .s = s };
            snprintf(name, sizeof name, "rgba%d-%s.png", d, il);
            CHECK(write_raw(path_in(name), &ra) == 0);
            check_decode(name, path_in(name), &ra, 0, 4, ex_rgb, 0);
            check_decode(name, path_in(name), &ra, 3, 3, ex_rgb, 0);
            free(s);
        }
        /* palette at 1, 2, 4, 8 bits, with and without tRNS */
        for (int d = 1; d <= 8; d *= 2) {
            int np = 1 << d;
            if (np > 200) np = 200;
            png_color pal[256];
            uint8_t tr[256];
            for (int i = 0; i < np; i++) {
                pal[i].red = (uint8_t)(i * 37 + 11);
                pal[i].green = (uint8_t)(255 - i * 13);
                pal[i].blue = (uint8_t)(i * i);
                tr[i] = (uint8_t)(i * 91 + 3);
            }
            uint16_t *s = make_samples(W, H, 1, d, 400u + d);
            for (int i = 0; i < W * H; i++) s[i] %= (uint16_t)np;
            struct raw r = { .w = W, .h = H, .depth = d, .ctype = PNG_COLOR_TYPE_PALETTE, .interlace = interlace, .s = s, .pal = pal, .npal = np };
            snprintf(name, sizeof name, "pal%d-%s.png", d, il);
            CHECK(write_raw(path_in(name), &r) == 0);
            check_decode(name, path_in(name), &r, 0, 3, ex_pal, 0);
            check_decode(name, path_in(name), &r, 4, 4, ex_pal, 0);
            check_decode(name, path_in(name), &r, 1, 1, ex_pal, 1);
            /* tRNS shorter than the palette: the rest is opaque (PNG spec 11.3.2.1) */
            struct raw rt = r;
            rt.trns = tr;
            rt.ntrns = np > 1 ? np / 2 + 1 : 1;
            snprintf(name, sizeof name, "pal%d-trns-%s.png", d, il);
            CHECK(write_raw(path_in(name), &rt) == 0);
            check_decode(name, path_in(name), &rt, 0, 4, ex_pal, 0);
            check_decode(name, path_in(name), &rt, 3, 3, ex_pal, 0);
            free(s);
        }
    }
}

static void test_roundtrip(void)
{
    TEST("round trip gray/RGB/RGBA");
    int cs[3] = { 1, 3, 4 };
    for (int k = 0; k < 3; k++) {
        struct image a, b;
        CHECK(image_alloc(&a, 31, 17, cs[k]) == 0);
        for (size_t i = 0; i < (size_t)31 * 17 * cs[k]; i++) a.data[i] = (uint8_t)(i * 7 + i / 13);
        char name[32];
        snprintf(name, sizeof name, "rt%d.png", cs[k]);
        const char *p = path_in(name);
        CHECK(image_save_png(p, &a, 0) == 0);
        CHECK(image_load_png(p, &b, 0) == 0);
        CHECKF(b.w == 31 && b.h == 17 && b.c == cs[k], "c=%d: got %dx%dx%d", cs[k], b.w, b.h, b.c);
        CHECK(b.data && memcmp(a.data, b.data, (size_t)31 * 17 * cs[k]) == 0);
        int w = 0, h = 0;
        CHECK(image_png_size(p, &w, &h) == 0 && w == 31 && h == 17);
        image_free(&b);
        /* the same bytes from memory */
        char *buf;
        size_t len;
        CHECK(fs_read_all(p, &buf, &len, 1 << 20) == 0);
        CHECK(image_load_png_mem((uint8_t *)buf, len, &b, 0) == 0 && b.c == cs[k] && memcmp(a.data, b.data, (size_t)31 * 17 * cs[k]) == 0);
        image_free(&b);
        free(buf);
        /* atomic save: same content, no temporary left */
        snprintf(name, sizeof name, "rt%d-atomic.png", cs[k]);
        p = path_in(name);
        CHECK(image_save_png_atomic(p, &a, 9) == 0);
        CHECK(image_load_png(p, &b, 0) == 0 && b.c == cs[k] && memcmp(a.data, b.data, (size_t)31 * 17 * cs[k]) == 0);
        image_free(&b);
        image_free(&a);
        CHECK(a.data == NULL && a.w == 0);
    }
    struct image a;
    CHECK(image_alloc(&a, 0, 5, 3) == ISO_EDATA && a.data == NULL);
    CHECK(image_alloc(&a, 70000, 70000, 4) == ISO_EDATA && a.data == NULL);
    CHECK(image_alloc(&a, 5, 5, 5) == ISO_EDATA);
    struct image z;
    CHECK(image_alloc(&z, 2, 2, 3) == 0);
    CHECK(image_save_png("/nonexistent-dir/x.png", &z, 0) == ISO_ECANTCREAT);
    CHECK(image_save_png_atomic("/nonexistent-dir/x.png", &z, 0) == ISO_ECANTCREAT);
    image_free(&z);
}

/* ---- corrupt files */
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

static void write_bytes(const char *p, const uint8_t *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (f) { fwrite(b, 1, n, f); fclose(f); }
}

/* the file must fail with ISO_EDATA, a message naming it, and no image */
static void expect_corrupt(const char *what, const uint8_t *b, size_t n)
{
    const char *p = path_in("corrupt.png");
    write_bytes(p, b, n);
    struct image im;
    int wants[2] = { 0, 3 };
    for (int k = 0; k < 2; k++) {
        iso_errclear();
        int rc = image_load_png(p, &im, wants[k]);
        CHECKF(rc == ISO_EDATA, "%s: status %d (%s)", what, rc, iso_errmsg());
        CHECKF(strstr(iso_errmsg(), p) != NULL, "%s: message does not name the file: %s", what, iso_errmsg());
        CHECKF(im.data == NULL, "%s: image left allocated", what);
        image_free(&im);
        rc = image_load_png_mem(b, n, &im, wants[k]);
        CHECKF(rc == ISO_EDATA && im.data == NULL, "%s (memory): status %d (%s)", what, rc, iso_errmsg());
    }
}

/* CRC-32 of PNG spec Annex D (reflected, polynomial 0xedb88320), bit by bit */
static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

/* fix the CRC of the chunk starting at off (length field) after an edit */
static void fix_crc(uint8_t *b, size_t off)
{
    uint32_t len = be32(b + off);
    put32(b + off + 8 + len, crc32_png(b + off + 4, len + 4));
}

static void test_corrupt(void)
{
    TEST("corrupt and truncated files");
    struct image a;
    image_alloc(&a, 40, 30, 3);
    for (size_t i = 0; i < 40 * 30 * 3; i++) a.data[i] = (uint8_t)(i * 31 + (i >> 5));
    const char *good = path_in("good.png");
    CHECK(image_save_png(good, &a, 0) == 0);
    image_free(&a);
    uint8_t *b;
    size_t n;
    CHECK(fs_read_all(good, (char **)&b, &n, 1 << 20) == 0);
    /* locate the chunks: signature (8), then length/type/data/crc */
    size_t idat = 0, iend = 0;
    for (size_t off = 8; off + 12 <= n;) {
        uint32_t len = be32(b + off);
        if (!memcmp(b + off + 4, "IDAT", 4) && !idat) idat = off;
        if (!memcmp(b + off + 4, "IEND", 4)) iend = off;
        off += 12 + len;
    }
    CHECK(idat > 0 && iend > idat);
    uint8_t *c = malloc(n + 64);

    /* bad CRC in IHDR (a critical chunk: libpng must refuse it) */
    memcpy(c, b, n);
    c[8 + 8 + 13] ^= 0x55;
    expect_corrupt("bad IHDR CRC", c, n);
    /* bad CRC in IDAT */
    memcpy(c, b, n);
    c[idat + 8 + be32(b + idat) + 1] ^= 0x01;
    expect_corrupt("bad IDAT CRC", c, n);
    /* IDAT data flipped with the CRC recomputed: zlib must catch it */
    memcpy(c, b, n);
    for (uint32_t k = 2; k < be32(b + idat); k += 5) c[idat + 8 + k] ^= 0xa5;
    fix_crc(c, idat);
    expect_corrupt("corrupt zlib stream", c, n);
    /* truncated at several points */
    size_t cuts[] = { 0, 1, 7, 8, 12, 20, 33, 36, idat + 8, idat + 8 + be32(b + idat) / 2, iend - 1, iend + 4 };
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        char what[64];
        snprintf(what, sizeof what, "truncated at %zu of %zu", cuts[k], n);
        expect_corrupt(what, b, cuts[k]);
    }
    /* garbage after the signature */
    memcpy(c, b, 8);
    for (int k = 8; k < 200; k++) c[k] = (uint8_t)(k * 97 + 13);
    expect_corrupt("garbage after signature", c, 200);
    /* not a PNG at all */
    expect_corrupt("text file", (const uint8_t *)"hello, this is not a png file\n", 30);
    /* huge dimensions: over the per-side limit, and within it but too many pixels */
    uint32_t dims[][2] = { { 70000, 1 }, { 1, 70000 }, { 65536, 65536 }, { 0, 10 }, { 0x80000000u, 1 } };
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        memcpy(c, b, n);
        put32(c + 16, dims[k][0]);
        put32(c + 20, dims[k][1]);
        fix_crc(c, 8);
        char what[64];
        snprintf(what, sizeof what, "IHDR %ux%u", dims[k][0], dims[k][1]);
        expect_corrupt(what, c, n);
    }
    /* bad bit depth for the colour type (RGB at 4 bits) */
    memcpy(c, b, n);
    c[24] = 4;
    fix_crc(c, 8);
    expect_corrupt("RGB at 4 bits", c, n);
    /* a missing file is ISO_ENOINPUT, not ISO_EDATA */
    struct image im;
    CHECK(image_load_png(path_in("absent.png"), &im, 0) == ISO_ENOINPUT && strstr(iso_errmsg(), "absent.png"));
    int w, h;
    CHECK(image_png_size(path_in("absent.png"), &w, &h) == ISO_ENOINPUT);
    write_bytes(path_in("t.png"), b, 20);
    CHECK(image_png_size(path_in("t.png"), &w, &h) == ISO_EDATA);
    free(c);
    free(b);
}

int main(void)
{
    char *d = test_tmpdir();
    if (!d) { printf("FAIL - cannot create a temporary directory\n0 passed, 1 failed, 0 skipped\n"); return 1; }
    snprintf(dir, sizeof dir, "%s", d);
    test_formats();
    test_roundtrip();
    test_corrupt();
    fs_rm_rf(dir);
    return test_report();
}
