/* test_nn_wres.c — weight residency (common/nn_wres.h) on a pretend device:
 * a small model of mixed dtypes (f32, bf16, scaled fp8, an absent optional
 * weight) in one resident part and three blocks gives bit-identical outputs
 * when its weights are mapped, "resident" and streamed; the sizes match
 * what nn_w_pack and nn_w_upload_bytes take; a streamed block's fields point
 * into the packed copy only after its enter; the stream's counters show the
 * prefetch order; bad use is refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "gpu.h"
#include "nn.h"
#include "nn_wres.h"
#include "plan.h"
#include "test.h"

#define D 24
#define NB 3

struct blk { struct nn_w w1, b1, w2, w3; };
struct model { struct nn_w emb, norm; struct blk b[NB]; };

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float frand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}
static uint16_t to_bf16(float f) { uint32_t u; memcpy(&u, &f, 4); return (uint16_t)(u >> 16); }

/* backing storage, as a mapping would hold it */
static float emb[D], b1s[NB][D], w1s[NB][D * D];
static uint16_t norm_bf[D], w2s[NB][D * D];
static uint8_t w3s[NB][D * D];

static void make_model(struct model *m)
{
    rng = 0x2545f4914f6cdd1dull;   /* the same weights every time */
    for (int i = 0; i < D; i++) { emb[i] = frand(); norm_bf[i] = to_bf16(1.0f + 0.5f * frand()); }
    for (int b = 0; b < NB; b++)
        for (int i = 0; i < D * D; i++) {
            w1s[b][i] = frand() * 0.3f;
            w2s[b][i] = to_bf16(frand() * 0.3f);
            w3s[b][i] = (uint8_t)(rng >> 24) & 0x77;   /* e4m3 values, no NaN */
            frand();
            if (i < D) b1s[b][i] = frand();
        }
    memset(m, 0, sizeof *m);
    m->emb = (struct nn_w){ emb, WT_F32, 1.0f };
    m->norm = (struct nn_w){ norm_bf, WT_BF16, 1.0f };
    for (int b = 0; b < NB; b++) {
        m->b[b].w1 = (struct nn_w){ w1s[b], WT_F32, 1.0f };
        m->b[b].b1 = (struct nn_w){ b == 1 ? NULL : b1s[b], WT_F32, 1.0f };   /* block 1: no bias */
        m->b[b].w2 = (struct nn_w){ w2s[b], WT_BF16, 1.0f };
        m->b[b].w3 = (struct nn_w){ w3s[b], WT_F8_E4M3, 0.125f };
    }
}

static int reg(struct nn_wres *r, struct model *m)
{
    int rc = nn_wres_add(r, -1, &m->emb, D) | nn_wres_add(r, -1, &m->norm, D);
    for (int b = 0; b < NB; b++)
        rc |= nn_wres_add(r, b, &m->b[b].w1, D * D) | nn_wres_add(r, b, &m->b[b].b1, D) |
              nn_wres_add(r, b, &m->b[b].w2, D * D) | nn_wres_add(r, b, &m->b[b].w3, D * D);
    return rc;
}

/* two passes (as CFG does) through every block; out [2 * D] */
static int forward(struct nn *nn, struct nn_wres *r, const struct model *m, float *out)
{
    float x[D], y[D];
    memcpy(x, emb, sizeof x);   /* the resident f32 weight as input */
    for (int pass = 0; pass < 2; pass++) {
        for (int b = 0; b < NB; b++) {
            if (nn_wres_enter(r, b)) return -1;
            nn_linear(nn, y, x, 1, D, D, &m->b[b].w1, &m->b[b].b1);
            nn_linear(nn, x, y, 1, D, D, &m->b[b].w2, NULL);
            nn_linear(nn, y, x, 1, D, D, &m->b[b].w3, NULL);
            nn_rmsnorm(nn, x, y, 1, D, &m->norm, 1e-6f);
        }
        memcpy(out + pass * D, x, sizeof x);
    }
    return 0;
}

static void test_modes(struct nn *nn)
{
    TEST("mapped, resident and streamed weights give the same outputs");
    float out[3][2 * D];
    uint64_t copies = 0, hits = 0, bytes = 0;
    for (int mode = NN_WRES_MAPPED; mode <= NN_WRES_STREAMED; mode++) {
        struct model m;
        make_model(&m);
        struct nn_wres *r = nn_wres_new((enum nn_wres_mode)mode, NB);
        CHECK(r && reg(r, &m) == 0);
        if (!r) continue;
        CHECK(nn_wres_load(r, nn) == 0);
        if (mode == NN_WRES_STREAMED) {
            CHECK(m.b[0].w1.data == NULL && m.b[2].w3.data == NULL);   /* nothing until entered */
            CHECK(m.emb.data == emb);                                    /* resident: in place on a cpu context */
        }
        CHECK(forward(nn, r, &m, out[mode]) == 0);
        if (mode == NN_WRES_STREAMED) {
            /* the last block entered reads the packed copy, not the mapping, with the dtype and scale kept */
            CHECK(m.b[2].w1.data && m.b[2].w1.data != (const void *)w1s[2]);
            CHECK(m.b[2].w3.dtype == WT_F8_E4M3 && m.b[2].w3.scale == 0.125f);
            CHECK(((uintptr_t)m.b[2].w2.data & 255) == 0 && ((uintptr_t)m.b[2].w3.data & 255) == 0);
            CHECK(m.b[1].b1.data == NULL);                              /* absent stays absent */
            CHECK(memcmp(m.b[2].w2.data, w2s[2], sizeof w2s[2]) == 0);
            nn_wres_stats(r, &copies, &hits, &bytes);
        } else {
            CHECK(m.b[2].w1.data == (const void *)w1s[2]);
        }
        nn_wres_free(&r);
        CHECK(r == NULL);
    }
    CHECK(memcmp(out[0], out[1], sizeof out[0]) == 0);
    CHECK(memcmp(out[0], out[2], sizeof out[0]) == 0);
    /* 6 enters of 3 blocks in order: a miss for the first, every later one
     * prefetched by the one before it; each of the 6 gets prefetches the
     * next block (the last one block 0 again, unused): 1 + 6 copies */
    CHECKF(copies == 7 && hits == 5, "copies %llu hits %llu", (unsigned long long)copies, (unsigned long long)hits);
    CHECK(bytes > 0);
}

static void test_sizes(void)
{
    TEST("sizes follow nn_w_pack and nn_w_upload_bytes");
    struct model m;
    make_model(&m);
    struct nn_wres *r = nn_wres_new(NN_WRES_STREAMED, NB);
    CHECK(r && reg(r, &m) == 0);
    if (!r) return;
    uint64_t res, bmax, btot, all, big;
    nn_wres_sizes(r, &res, &bmax, &btot, &all, &big);
    CHECK(res == D * 4 + 256 + D * 2 + 256);
    uint64_t tot = 0, mx = 0;
    for (int b = 0; b < NB; b++) {
        struct nn_w ws[4] = { m.b[b].w1, m.b[b].b1, m.b[b].w2, m.b[b].w3 };
        size_t n[4] = { D * D, D, D * D, D * D }, off[4];
        size_t s = nn_w_pack(ws, n, 4, NULL, off);
        tot += s;
        if (s > mx) mx = s;
    }
    CHECK(bmax == mx && btot == tot);
    /* f32 2304 B, bias 96 B, bf16 1152 B, fp8 as bf16 1152 B, +256 each */
    uint64_t per_block = (D * D * 4 + 256) + (D * D * 2 + 256) + (D * D * 2 + 256);
    CHECK(all == res + NB * per_block + 2 * (D * 4 + 256));
    CHECK(big == D * D * 4);

    TEST("a plan from the registration holds what each mode takes");
    struct plan_blocks pb = { 0 };
    nn_wres_plan_blocks(r, &pb);
    pb.gpu_ok = pb.cpu_ok = 1;
    struct mem_plan p;
    CHECK(plan_from_blocks(&p, "wres", &pb) == 0);
    CHECK(p.mode[MEM_MODE_BEEFY].weights >= all);                  /* fp8 widened: upload_extra */
    CHECK(pb.upload_extra > 0);
    CHECK(p.mode[MEM_MODE_LIGHTWEIGHT].weights >= res + 2 * bmax);  /* resident + the window */
    CHECK(p.mode[MEM_MODE_LIGHTWEIGHT].pinned_host >= btot);
    nn_wres_free(&r);
}

static void test_refusals(struct nn *nn)
{
    TEST("bad use is refused");
    struct model m;
    make_model(&m);
    struct nn_wres *r = nn_wres_new(NN_WRES_STREAMED, NB);
    CHECK(r != NULL);
    if (!r) return;
    CHECK(nn_wres_add(r, NB, &m.emb, D) == ISO_EUSAGE);
    CHECK(nn_wres_add(r, -2, &m.emb, D) == ISO_EUSAGE);
    CHECK(reg(r, &m) == 0);
    CHECK(nn_wres_enter(r, 0) == ISO_EUSAGE);            /* before load */
    CHECK(nn_wres_load(r, nn) == 0);
    CHECK(nn_wres_add(r, 0, &m.emb, D) == ISO_EUSAGE);   /* after load */
    CHECK(nn_wres_enter(r, NB) == ISO_EUSAGE);
    CHECK(nn_wres_load(r, nn) == ISO_EUSAGE);
    nn_wres_free(&r);
    CHECK(nn_wres_new(NN_WRES_MAPPED, -1) == NULL);

    /* a pretend device too small for the resident upload: the arena says so */
    struct nn_wres *q = nn_wres_new(NN_WRES_RESIDENT, NB);
    CHECK(q && reg(q, &m) == 0);
    if (q) {
        static float big[1];
        struct nn_w huge = { big, WT_F32, 1.0f };
        CHECK(nn_wres_add(q, -1, &huge, (size_t)1 << 40) == 0);   /* 4 TiB: never read, only counted */
        CHECK(nn_wres_load(q, nn) == ISO_ETEMPFAIL);
        nn_wres_free(&q);
    }

    /* no blocks: STREAMED is RESIDENT, enter is a no-op */
    struct nn_wres *z = nn_wres_new(NN_WRES_STREAMED, 0);
    CHECK(z && nn_wres_add(z, -1, &m.emb, D) == 0 && nn_wres_load(z, nn) == 0 && nn_wres_enter(z, 0) == 0);
    nn_wres_free(&z);
}

int main(void)
{
    char *tmp = test_tmpdir();
    if (!tmp) { printf("cannot make a scratch directory\n"); return 1; }
    setenv("ISOPIPE_LEDGER_DIR", tmp, 1);
    setenv("ISOPIPE_FAKE_GPU", "1024:1024", 1);
    if (gpu_init(0)) { TEST_SKIP("no pretend device: %s", gpu_unavailable_reason()); return test_report(); }
    struct nn *nn = NULL;
    CHECK(nn_new(&nn, NN_CPU, 2) == 0);
    test_sizes();
    if (nn) { test_modes(nn); test_refusals(nn); }
    nn_free(&nn);
    gpu_shutdown();
    fs_rm_rf(tmp);
    return test_report();
}
