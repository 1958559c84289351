/* test_pipeline_report_chart.c — memory.png's pieces: the 5x7 font, the axis
 * ends, and bars whose lengths are checked against a float64 computation of
 * value / full scale * panel width, read back from the written PNG. Also
 * report_read_memory on a memory object shaped like rt_memory_json's. */
#include <stdint.h>

#include "chart.h"
#include "font.h"
#include "fs.h"
#include "image.h"
#include "report.h"
#include "test.h"

static int glyph_ink(int ch)
{
    int n = 0;
    for (int y = 0; y < FONT_H; y++)
        for (int x = 0; x < FONT_W; x++) n += font_pixel(ch, x, y);
    return n;
}

static int same_glyph(int a, int b)
{
    for (int y = 0; y < FONT_H; y++)
        for (int x = 0; x < FONT_W; x++)
            if (font_pixel(a, x, y) != font_pixel(b, x, y)) return 0;
    return 1;
}

/* length of the run of colour c starting at (x, y) going right */
static int run_len(const struct image *img, int x, int y, const uint8_t c[3])
{
    int n = 0;
    while (x + n < img->w) {
        const uint8_t *p = img->data + ((size_t)y * (size_t)img->w + (size_t)(x + n)) * 3;
        if (p[0] != c[0] || p[1] != c[1] || p[2] != c[2]) break;
        n++;
    }
    return n;
}

int main(void)
{
    TEST("font: every printable character has its own glyph");
    CHECK(glyph_ink(' ') == 0);
    int empty = 0, dup = 0;
    for (int c = 33; c < 127; c++) {
        if (glyph_ink(c) == 0) empty++;
        for (int d = c + 1; d < 127; d++)
            if (same_glyph(c, d)) { dup++; printf("# glyphs '%c' and '%c' are identical\n", c, d); }
    }
    CHECK(empty == 0);
    CHECK(dup == 0);
    CHECK(same_glyph(1, '?'));   /* control bytes draw as '?' */
    CHECK(font_pixel('A', 5, 0) == 0 && font_pixel('A', 0, 7) == 0);
    CHECK(font_text_width("", 1) == 0);
    CHECK(font_text_width("abc", 1) == 17);
    CHECK(font_text_width("abc", 2) == 34);
    CHECK(font_descends('g') && font_descends('y') && !font_descends('a'));

    TEST("font: drawing puts the glyph's pixels where font_pixel says, clipped");
    {
        struct image img = { 0 };
        CHECK(image_alloc(&img, 20, 12, 3) == 0);
        const uint8_t red[3] = { 255, 0, 0 };
        font_draw(&img, 2, 1, "K", 2, red);
        int bad = 0;
        for (int y = 0; y < 12; y++)
            for (int x = 0; x < 20; x++) {
                int want = x >= 2 && y >= 1 && x < 12 && y < 15 && font_pixel('K', (x - 2) / 2, (y - 1) / 2);
                int got = img.data[((size_t)y * 20 + (size_t)x) * 3] == 255;
                bad += want != got;
            }
        CHECK(bad == 0);
        font_draw(&img, -3, -3, "WW", 3, red); /* partly outside: no crash */
        image_free(&img);
    }

    TEST("chart: axis ends at 1, 2 or 5 x 10^k MiB (GiB from 1 GiB)");
    const double M = 1048576.0, G = 1073741824.0;
    CHECK_NEAR(chart_nice_ceil(123 * M), 200 * M, 1);
    CHECK_NEAR(chart_nice_ceil(150 * M), 200 * M, 1);
    CHECK_NEAR(chart_nice_ceil(200 * M), 200 * M, 1);
    CHECK_NEAR(chart_nice_ceil(201 * M), 500 * M, 1);
    CHECK_NEAR(chart_nice_ceil(7.4 * M), 10 * M, 1);
    CHECK_NEAR(chart_nice_ceil(0.3 * M), 0.5 * M, 1);
    CHECK_NEAR(chart_nice_ceil(0), 1 * M, 1);
    CHECK_NEAR(chart_nice_ceil(1000 * M), 1000 * M, 1);
    CHECK_NEAR(chart_nice_ceil(1.3 * G), 2 * G, 1);
    CHECK_NEAR(chart_nice_ceil(13 * G), 20 * G, 1);

    TEST("chart: bar lengths against float64, read back from the PNG");
    {
        struct chart_row rows[3] = {
            { "prompt", 123456789, 150000000, 300e6, 350e6 },
            { "seg_000", 9.8e6, 7.4e6, -1, -1 },
            { "stitch", 55e6, -1, 0, 0 },
        };
        struct image img = { 0 }, back = { 0 };
        struct chart_layout lay;
        CHECK(chart_render(&img, "title", "sub", rows, 3, 1, &lay) == 0);
        CHECK_NEAR(lay.scale[0], 200 * M, 1);
        CHECK_NEAR(lay.scale[1], 500 * M, 1);
        char *dir = test_tmpdir();
        char *png = fs_join(dir, "memory.png");
        image_free(&img);
        CHECK(chart_write_png(png, "title", "sub", rows, 3, 1) == 0);
        CHECK(image_load_png(png, &back, 3) == 0);
        CHECK(back.w == 900 && back.h == lay.row_y0 + 3 * lay.row_h + 44);
        const uint8_t ram[3] = { 46, 110, 190 }, vram[3] = { 214, 96, 36 };
        for (int i = 0; i < 3 && back.data; i++) {
            int y = lay.row_y0 + i * lay.row_h;
            /* measured: filled, rows 11..20 of the row; plan: outlined, rows 3..9 */
            double want = rows[i].ram / (200 * M) * lay.panel_w;
            int got = run_len(&back, lay.panel_x[0], y + 15, ram);
            CHECKF(abs(got - (int)(want + 0.5)) <= 1, "row %d ram bar %d px, want %.2f", i, got, want);
            if (rows[i].ram_plan > 0) {
                double wp = rows[i].ram_plan / (200 * M) * lay.panel_w;
                got = run_len(&back, lay.panel_x[0], y + 3, ram);   /* top edge of the outline */
                CHECKF(abs(got - (int)(wp + 0.5)) <= 1, "row %d ram plan %d px, want %.2f", i, got, wp);
            }
            double wv = rows[i].vram > 0 ? rows[i].vram / (500 * M) * lay.panel_w : 0;
            got = run_len(&back, lay.panel_x[1], y + 15, vram);
            CHECKF(abs(got - (int)(wv + 0.5)) <= 1, "row %d vram bar %d px, want %.2f", i, got, wv);
        }
        image_free(&back);
        fs_rm_rf(dir);
        free(png);
    }

    TEST("report: memory object of the runtime (rt_memory_json shape)");
    {
        json_t *m = json_pack("{s:s, s:I, s:I, s:{s:{s:{s:I, s:I}, s:{s:I, s:I}}}}", "mode", "lightweight",
                              "peak_rss", (json_int_t)500000000, "peak_vram", (json_int_t)300000000, "plan", "modes",
                              "beefy", "host_rss", (json_int_t)900000000, "vram_peak", (json_int_t)2000000000,
                              "lightweight", "host_rss", (json_int_t)600000000, "vram_peak", (json_int_t)350000000);
        struct report_mem r;
        report_read_memory(m, &r);
        CHECK_STR(r.mode, "lightweight");
        CHECK_NEAR(r.peak_rss, 500e6, 0);
        CHECK_NEAR(r.peak_vram, 300e6, 0);
        CHECK_NEAR(r.plan_ram, 600e6, 0);    /* the plan of the mode it ran in, not beefy's */
        CHECK_NEAR(r.plan_vram, 350e6, 0);
        json_decref(m);
        /* no peak_rss: the highest checkpoint VmHWM */
        m = json_pack("{s:s, s:[{s:I}, {s:I}]}", "mode", "cpu", "checkpoints", "hwm", (json_int_t)7, "hwm",
                      (json_int_t)9);
        report_read_memory(m, &r);
        CHECK_NEAR(r.peak_rss, 9, 0);
        CHECK(r.peak_vram < 0);
        CHECK(r.plan_ram < 0);
        json_decref(m);
    }
    return test_report();
}
