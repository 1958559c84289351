/* test_weights — the one weights interface over every format, against files
 * written by the formats' own libraries (tests/ref/weights_fixtures.py:
 * safetensors.torch, gguf-py, torch) and the float32 values those libraries
 * decode (tests/fixtures/weights/expect.safetensors): every dtype through
 * weights_to_f32 (exact: each conversion to float32 is exact), GGUF shapes in
 * PyTorch order and its block types against gguf.quants.dequantize (within 1
 * ulp: gguf-py multiplies in float32 in another order), the 256 codes of each
 * fp8 kind against torch (exact, NaN for NaN), f32 -> bf16/f16 rounding
 * against torch's (bit-exact), sharded directories, prefixes, weights_expect
 * messages, block grouping for plans, and PyTorch checkpoints
 * (tests/fixtures/ptckpt/, tests/ref/ptckpt_fixtures.py). */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include "err.h"
#include "fs.h"
#include "gguf.h"
#include "plan.h"
#include "safetensors.h"
#include "test.h"
#include "weights.h"

static char g_fix[1024];
static struct safetensors *g_exp;

static const char *fix(const char *name)
{
    static char buf[4][1200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_fix, name);
    return buf[k];
}

/* float32 values of expect.safetensors key, or NULL */
static const float *expect(const char *key, uint64_t *n)
{
    const struct st_tensor *t = st_find(g_exp, key);
    if (!t || t->dtype != ST_F32) return NULL;
    *n = t->nbytes / 4;
    return t->data;
}

/* copy a file (0 ok) */
static int copy_file(const char *from, const char *to)
{
    char *data = NULL;
    size_t len = 0;
    if (fs_read_all(from, &data, &len, 1 << 24) != 0) return -1;
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(data, 1, len, f) == len ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    free(data);
    return rc;
}

static int same_f32(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

/* every element of t through weights_to_f32 equals expect[key] (within ulps units in the last place) */
static void check_values(const struct wt_tensor *t, const char *key, int ulps)
{
    uint64_t n = 0;
    const float *want = expect(key, &n);
    CHECKF(want && t && n == t->nelem, "%s: %" PRIu64 " expected values, tensor has %" PRIu64, key, n, t ? t->nelem : 0);
    if (!want || !t || n != t->nelem) return;
    float *got = malloc((n ? n : 1) * sizeof *got);
    CHECKF(weights_to_f32(t, 0, n, got) == 0, "%s: %s", key, iso_errmsg());
    int bad = 0;
    for (uint64_t i = 0; i < n && !bad; i++) {
        float tol = ulps ? ulps * fabsf(nextafterf(want[i], INFINITY) - want[i]) : 0;
        if (!(same_f32(got[i], want[i]) || fabsf(got[i] - want[i]) <= tol)) {
            CHECKF(0, "%s[%" PRIu64 "] = %.9g, want %.9g", key, i, got[i], want[i]);
            bad = 1;
        }
    }
    if (!bad) CHECK(1);
    /* a range that starts and ends inside blocks / rows */
    if (n > 3) {
        CHECK(weights_to_f32(t, 1, n - 2, got) == 0);
        int ok = 1;
        for (uint64_t i = 0; i < n - 2; i++) {
            float tol = ulps ? ulps * fabsf(nextafterf(want[i + 1], INFINITY) - want[i + 1]) : 0;
            ok &= same_f32(got[i], want[i + 1]) || fabsf(got[i] - want[i + 1]) <= tol;
        }
        CHECKF(ok, "%s: elements [1, n-1) differ", key);
    }
    free(got);
}

static void test_safetensors_file(void)
{
    TEST("a safetensors file: every dtype to float32");
    struct weights *w = NULL;
    CHECKF(weights_open(fix("st/model.safetensors"), &w) == 0, "%s", iso_errmsg());
    if (!w) return;
    CHECK(weights_format(w) == WT_FMT_SAFETENSORS);
    CHECK_STR(weights_format_name(w), "safetensors");
    CHECK_STR(weights_path(w), fix("st/model.safetensors"));
    CHECK_STR(weights_dir(w), fix("st"));
    CHECK_STR(weights_meta(w, "who"), "weights_fixtures");
    CHECK(weights_meta(w, "nope") == NULL);
    CHECK(weights_count(w) == 16);
    static const struct { const char *name; enum wt_dtype dt; } want[] = {
        { "f32", WT_F32 }, { "f16", WT_F16 }, { "bf16", WT_BF16 }, { "f8e4m3", WT_F8_E4M3 }, { "f8e5m2", WT_F8_E5M2 },
        { "f64", WT_F64 }, { "i8", WT_I8 }, { "u8", WT_U8 }, { "i16", WT_I16 }, { "i32", WT_I32 }, { "i64", WT_I64 },
        { "bool", WT_BOOL }, { "model.blocks.0.w", WT_F32 }, { "empty", WT_F32 },
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const struct wt_tensor *t = weights_find(w, want[i].name);
        CHECKF(t && t->dtype == want[i].dt && t->ggml_type == -1 && t->contiguous, "%s", want[i].name);
        if (!t) continue;
        CHECK(t->nbytes == t->nelem * wt_dtype_size(t->dtype));
        char key[64];
        snprintf(key, sizeof key, "st.%s", want[i].name);
        check_values(t, key, 0);
    }
    const struct wt_tensor *t = weights_find(w, "f16");
    CHECK(t && t->n_dims == 2 && t->shape[0] == 3 && t->shape[1] == 4 && t->strides[0] == 4 && t->strides[1] == 1);
    t = weights_find(w, "empty");
    CHECK(t && t->nelem == 0 && t->n_dims == 2 && t->shape[0] == 0 && t->shape[1] == 3);

    /* weights_expect: found, -1 filled in, missing, misshapen */
    int64_t shp[2] = { -1, 4 };
    const struct wt_tensor *o = NULL;
    CHECK(weights_expect(w, "", "f16", 2, shp, &o) == 0 && o == weights_find(w, "f16") && shp[0] == 3);
    int64_t s3[2] = { 3, 5 };
    CHECK(weights_expect(w, NULL, "f16", 2, s3, &o) == ISO_EDATA && o == NULL);
    CHECK(strstr(iso_errmsg(), "'f16' has shape [3, 4], expected [3, 5]") != NULL);
    CHECK(weights_expect(w, "model.", "blocks.9.w", 1, s3, &o) == ISO_EDATA);
    CHECK(strstr(iso_errmsg(), "tensor 'model.blocks.9.w' is missing") && strstr(iso_errmsg(), "model.safetensors"));
    int64_t s1[1] = { 4 };
    CHECK(weights_expect(w, "model.", "blocks.1.b", 1, s1, &o) == 0 && o);

    static const char *const prefixes[] = { "model.diffusion_model.", "model.", "", NULL };
    CHECK_STR(weights_detect_prefix(w, "blocks.0.w", prefixes), "model.");
    CHECK_STR(weights_detect_prefix(w, "f32", prefixes), "");
    CHECK(weights_detect_prefix(w, "nothing", prefixes) == NULL);

    /* dropped pages come back from the file */
    const struct wt_tensor *f32 = weights_find(w, "f32");
    weights_drop(w, f32);
    check_values(f32, "st.f32", 0);

    /* out of range is refused, not read */
    float x[4];
    CHECK(weights_to_f32(weights_find(w, "u8"), 2, 2, x) == ISO_EINTERNAL);

    /* blocks for the plan: model.blocks.0 (8 floats) and .1 (8 + 4 floats); the rest is resident */
    struct plan_blocks pb;
    int64_t blk[16];
    CHECK(plan_blocks_from_weights(w, &pb, blk) == 0);
    CHECK(pb.n_blocks == 2 && pb.block_bytes == 48 && pb.align_slack == 16 * 256);
    uint64_t total = 0, largest = 0;
    for (size_t i = 0; i < weights_count(w); i++) {
        total += weights_at(w, i)->nbytes;
        if (weights_at(w, i)->nbytes > largest) largest = weights_at(w, i)->nbytes;
        const char *nm = weights_at(w, i)->name;
        CHECK(blk[i] == (!strcmp(nm, "model.blocks.0.w") ? 0 : !strncmp(nm, "model.blocks.1.", 15) ? 1 : -1));
    }
    CHECK(pb.resident_bytes == total - 32 - 48 && pb.largest_tensor == largest);
    weights_close(&w);
    CHECK(w == NULL);
}

static void test_dir_and_sharded(void)
{
    TEST("directories: one safetensors file, sharded with an index");
    struct weights *w = NULL;
    CHECKF(weights_open(fix("st"), &w) == 0, "%s", iso_errmsg());
    CHECK(w && weights_format(w) == WT_FMT_SAFETENSORS && weights_count(w) == 16);
    if (w) CHECK_STR(weights_dir(w), fix("st"));
    weights_close(&w);

    CHECKF(weights_open(fix("sharded"), &w) == 0, "%s", iso_errmsg());
    if (!w) return;
    CHECK(weights_format(w) == WT_FMT_SAFETENSORS_SHARDED);
    CHECK_STR(weights_format_name(w), "safetensors-sharded");
    CHECK(weights_count(w) == 4);
    const struct wt_tensor *a = weights_find(w, "enc.layers.1.w"), *b = weights_find(w, "dec.w");
    CHECK(a && b && a->file != b->file && b->dtype == WT_BF16);
    check_values(a, "sharded.enc.layers.1.w", 0);
    check_values(b, "sharded.dec.w", 0);
    check_values(weights_find(w, "dec.layers.0.w"), "sharded.dec.layers.0.w", 0);
    CHECK_STR(weights_meta(w, "format"), "pt");
    struct plan_blocks pb;
    CHECK(plan_blocks_from_weights(w, &pb, NULL) == 0 && pb.n_blocks == 2 && pb.block_bytes == 24 + 4);
    weights_close(&w);

    /* an index naming a shard outside its directory, and one naming a missing tensor */
    char *dir = test_tmpdir();
    FILE *f = fopen(test_path_in(dir, "x.safetensors.index.json"), "w");
    fputs("{\"weight_map\": {\"a\": \"../model.safetensors\"}}", f);
    fclose(f);
    CHECK(weights_open(dir, &w) == ISO_EDATA && w == NULL && strstr(iso_errmsg(), "same directory"));
    f = fopen(test_path_in(dir, "x.safetensors.index.json"), "w");
    fputs("{\"weight_map\": {\"nope\": \"m.safetensors\"}}", f);
    fclose(f);
    CHECK(copy_file(fix("st/model.safetensors"), test_path_in(dir, "m.safetensors")) == 0);
    CHECK(weights_open(dir, &w) == ISO_EDATA && strstr(iso_errmsg(), "tensor 'nope' is not in shard 'm.safetensors'"));
    remove(test_path_in(dir, "x.safetensors.index.json"));
    /* two candidate files: ambiguous */
    CHECK(copy_file(fix("st/model.safetensors"), test_path_in(dir, "n.safetensors")) == 0);
    CHECK(weights_open(dir, &w) == ISO_EDATA && strstr(iso_errmsg(), "several weight files"));
    remove(test_path_in(dir, "n.safetensors"));
    remove(test_path_in(dir, "m.safetensors"));
    CHECK(weights_open(dir, &w) == ISO_ENOINPUT);
    /* content decides, not the name */
    f = fopen(test_path_in(dir, "junk.pth"), "w");
    fputs("this is not a checkpoint", f);
    fclose(f);
    CHECK(weights_open(test_path_in(dir, "junk.pth"), &w) == ISO_EDATA && strstr(iso_errmsg(), "not a GGUF, safetensors or PyTorch"));
    CHECK(copy_file(fix("model.gguf"), test_path_in(dir, "renamed.safetensors")) == 0);
    CHECK(weights_open(test_path_in(dir, "renamed.safetensors"), &w) == 0 && w && weights_format(w) == WT_FMT_GGUF);
    weights_close(&w);
    CHECK(weights_open(test_path_in(dir, "absent"), &w) == ISO_ENOINPUT);
    /* a FIFO, given or found in a directory, is refused, never read (it would block) */
    remove(test_path_in(dir, "renamed.safetensors"));
    remove(test_path_in(dir, "junk.pth"));
    CHECK(mkfifo(test_path_in(dir, "f.safetensors"), 0600) == 0);
    CHECK(weights_open(test_path_in(dir, "f.safetensors"), &w) == ISO_EDATA && strstr(iso_errmsg(), "not a regular file"));
    CHECK(weights_open(dir, &w) == ISO_EDATA && strstr(iso_errmsg(), "not a regular file"));
    fs_rm_rf(dir);
}

static void test_gguf(void)
{
    TEST("GGUF: PyTorch-order shapes, block types against gguf-py");
    struct weights *w = NULL;
    CHECKF(weights_open(fix("model.gguf"), &w) == 0, "%s", iso_errmsg());
    if (!w) return;
    CHECK(weights_format(w) == WT_FMT_GGUF);
    CHECK_STR(weights_meta(w, "test.note"), "weights fixture");
    CHECK_STR(weights_meta(w, "general.architecture"), "test");
    const struct wt_tensor *t = weights_find(w, "g.f32");
    CHECK(t && t->dtype == WT_F32 && t->n_dims == 2 && t->shape[0] == 3 && t->shape[1] == 5 && t->strides[0] == 5);
    check_values(t, "gguf.g.f32", 0);
    t = weights_find(w, "g.f16");
    CHECK(t && t->dtype == WT_F16 && t->shape[0] == 2 && t->shape[1] == 4);
    check_values(t, "gguf.g.f16", 0);
    static const struct { const char *n; int type; } q[] = {
        { "q8_0", GGML_TYPE_Q8_0 }, { "q4_0", GGML_TYPE_Q4_0 }, { "q4_1", GGML_TYPE_Q4_1 }, { "q5_0", GGML_TYPE_Q5_0 },
        { "q5_1", GGML_TYPE_Q5_1 }, { "q4_k", GGML_TYPE_Q4_K }, { "q5_k", GGML_TYPE_Q5_K }, { "q6_k", GGML_TYPE_Q6_K },
    };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        char name[32], key[40];
        snprintf(name, sizeof name, "g.%s", q[i].n);
        snprintf(key, sizeof key, "gguf.g.%s", q[i].n);
        t = weights_find(w, name);
        CHECKF(t && t->dtype == WT_GGML && t->ggml_type == q[i].type && t->n_dims == 2 && t->shape[0] == 2, "%s", name);
        if (t) check_values(t, key, 1);
    }
    t = weights_find(w, "g.q2_k");
    float y[256];
    CHECK(t && weights_to_f32(t, 0, 256, y) == ISO_EDATA && strstr(iso_errmsg(), "'g.q2_k'") && strstr(iso_errmsg(), "Q2_K"));
    weights_close(&w);
}

static void test_conversions(void)
{
    TEST("fp8 codes and bf16/f16 rounding against torch");
    uint64_t n = 0;
    const float *e4 = expect("fp8.e4m3fn", &n);
    CHECK(e4 && n == 256);
    int ok = 1;
    /* the sign of zero matters, the sign of a NaN does not */
    for (int b = 0; e4 && b < 256; b++) {
        float g = wt_e4m3_to_f32((uint8_t)b);
        int same = same_f32(g, e4[b]) && (isnan(g) || signbit(g) == signbit(e4[b]));
        if (!same) printf("  e4m3 0x%02x = %g, torch %g\n", b, g, e4[b]);
        ok &= same;
    }
    CHECKF(ok, "e4m3fn differs from torch");
    const float *e5 = expect("fp8.e5m2", &n);
    CHECK(e5 && n == 256);
    ok = 1;
    for (int b = 0; e5 && b < 256; b++) {
        float g = wt_e5m2_to_f32((uint8_t)b);
        int same = same_f32(g, e5[b]) && (isnan(g) || signbit(g) == signbit(e5[b]));
        if (!same) printf("  e5m2 0x%02x = %g, torch %g\n", b, g, e5[b]);
        ok &= same;
    }
    CHECKF(ok, "e5m2 differs from torch");
    CHECK(wt_e4m3_to_f32(0x7e) == 448.0f && isnan(wt_e4m3_to_f32(0x7f)) && wt_e4m3_to_f32(0x01) == 0x1p-9f);

    const float *in = expect("round.in", &n);
    const struct st_tensor *bf = st_find(g_exp, "round.bf16"), *hf = st_find(g_exp, "round.f16");
    CHECK(in && bf && hf && bf->nbytes == 2 * n && hf->nbytes == 2 * n);
    if (!in || !bf || !hf) return;
    int bad_bf = 0, bad_h = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint16_t wb, wh;
        memcpy(&wb, (const uint8_t *)bf->data + 2 * i, 2);
        memcpy(&wh, (const uint8_t *)hf->data + 2 * i, 2);
        uint16_t gb = wt_f32_to_bf16(in[i]), gh = wt_f32_to_f16(in[i]);
        /* NaN: any NaN is right (payloads differ between implementations) */
        if (isnan(in[i])) { bad_bf += !isnan(wt_bf16_to_f32(gb)); bad_h += !isnan(wt_f16_to_f32(gh)); continue; }
        if (gb != wb && bad_bf++ < 3) printf("  bf16(%.9g) = %04x, torch %04x\n", in[i], gb, wb);
        if (gh != wh && bad_h++ < 3) printf("  f16(%.9g) = %04x, torch %04x\n", in[i], gh, wh);
        /* the round trip back is exact */
        if (gb == wb && wt_bf16_to_f32(gb) != wt_bf16_to_f32(wb)) bad_bf++;
    }
    CHECKF(bad_bf == 0, "%d bf16 roundings differ from torch (of %" PRIu64 ")", bad_bf, n);
    CHECKF(bad_h == 0, "%d f16 roundings differ from torch (of %" PRIu64 ")", bad_h, n);
    /* f16 -> f32 for all 65536 codes round-trips through f32 -> f16 (NaN stays NaN) */
    int rt = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = wt_f16_to_f32((uint16_t)h);
        if (isnan(f) ? !isnan(wt_f16_to_f32(wt_f32_to_f16(f))) : wt_f32_to_f16(f) != h) rt++;
    }
    CHECKF(rt == 0, "%d f16 codes do not round-trip", rt);
    CHECK(wt_dtype_size(WT_BF16) == 2 && wt_dtype_size(WT_GGML) == 0 && wt_dtype_size(WT_I64) == 8);
    CHECK_STR(wt_dtype_name(WT_F8_E4M3), "F8_E4M3");
}

int main(void)
{
    const char *root = getenv("ISOPIPE_ROOT");
    snprintf(g_fix, sizeof g_fix, "%s/tests/fixtures/weights", root ? root : ".");
    if (st_open(fix("expect.safetensors"), &g_exp) != 0) {
        printf("FAIL - cannot open %s: %s\n", fix("expect.safetensors"), iso_errmsg());
        return test_report() + 1;
    }
    test_safetensors_file();
    test_dir_and_sharded();
    test_gguf();
    test_conversions();
    st_close(&g_exp);
    return test_report();
}
