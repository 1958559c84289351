/* test_nn_heap.c — the activation allocator (common/nn_heap.c) and the nn
 * core's shadow of it on the CPU (nn_reserve on NN_CPU, nn_act_stats).
 *
 * The heap is checked against a model kept here independently: a byte map
 * of which of the region's 256-byte units are taken. Every allocation must
 * be aligned, inside the region, on units the model has free, and must be
 * refused only when no run of free units is long enough; best fit must pick
 * the smallest free run that holds the request, a top allocation the end of
 * the highest run that holds it; after everything is released the region
 * is one free range again (a full-size allocation succeeds), and the
 * counters (used, peak, high, top) equal the model's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "nn.h"
#include "nn_heap.h"
#include "test.h"

#define U 256

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* the model: units taken; the highest free run of >= n units: its end, -1 if none */
static long highest_run_end(const unsigned char *taken, long units, long n)
{
    for (long j = units; j > 0;) {
        if (taken[j - 1]) { j--; continue; }
        long i = j;
        while (i > 0 && !taken[i - 1]) i--;
        if (j - i >= n) return j;
        j = i;
    }
    return -1;
}

/* the model: units taken; the smallest free run of >= n units (its start), -1 if none */
static long smallest_run(const unsigned char *taken, long units, long n, long *len_out)
{
    long best = -1, best_len = 0;
    for (long i = 0; i < units;) {
        if (taken[i]) { i++; continue; }
        long j = i;
        while (j < units && !taken[j]) j++;
        if (j - i >= n && (best < 0 || j - i < best_len)) { best = i; best_len = j - i; }
        i = j;
    }
    *len_out = best_len;
    return best;
}

static void random_sequence(uint64_t size, int steps, int max_live)
{
    struct nn_heap h;
    CHECK(nn_heap_init(&h, size, U) == 0);
    long units = (long)(size / U);
    unsigned char *taken = calloc((size_t)units, 1);
    uint64_t *offs = calloc((size_t)max_live, sizeof *offs), *lens = calloc((size_t)max_live, sizeof *lens);
    int live = 0, bad_place = 0, bad_refuse = 0, bad_fit = 0, bad_count = 0;
    uint64_t used = 0, peak = 0, high = 0, top = 0;
    for (int s = 0; s < steps; s++) {
        if (live < max_live && (live == 0 || rnd() % 3)) {
            uint64_t bytes = 1 + rnd() % (size / 6); /* odd sizes: rounding to the unit is exercised */
            long n = (long)((bytes + U - 1) / U), run_len;
            long want = smallest_run(taken, units, n, &run_len), want_end = highest_run_end(taken, units, n);
            int at_top = rnd() % 4 == 0;
            uint64_t off;
            int rc = at_top ? nn_heap_alloc_top(&h, bytes, &off) : nn_heap_alloc(&h, bytes, &off);
            if (rc == 1) {
                if (want >= 0) bad_refuse++;
                continue;
            }
            if (rc || off % U || off + (uint64_t)n * U > size) { bad_place++; continue; }
            for (long u = 0; u < n; u++)
                if (taken[off / U + u]) bad_place++;
            if (at_top) { /* the end of the highest run that holds it */
                if ((long)(off / U) + n != want_end) bad_fit++;
                if (size - off > top) top = size - off;
            } else { /* best fit: the run it came from is as small as the smallest that holds it */
                long a = (long)(off / U), b = a + n;
                while (a > 0 && !taken[a - 1]) a--;
                while (b < units && !taken[b]) b++;
                if (want < 0 || b - a != run_len) bad_fit++;
                if (off + (uint64_t)n * U > high) high = off + (uint64_t)n * U;
            }
            memset(taken + off / U, 1, (size_t)n);
            offs[live] = off;
            lens[live++] = (uint64_t)n * U;
            used += (uint64_t)n * U;
            if (used > peak) peak = used;
        } else {
            int i = (int)(rnd() % (uint64_t)live);
            uint64_t got = 0;
            if (nn_heap_free(&h, offs[i], &got) || got != lens[i]) bad_place++;
            memset(taken + offs[i] / U, 0, (size_t)(lens[i] / U));
            used -= lens[i];
            offs[i] = offs[--live];
            lens[i] = lens[live];
        }
        if (h.used != used || h.peak != peak || h.high != high || h.top != top) bad_count++;
    }
    printf("  region %llu bytes, %d steps, at most %d live: %d blocks at the end\n", (unsigned long long)size, steps,
           max_live, h.n);
    CHECKF(bad_place == 0, "%d allocations out of place or overlapping", bad_place);
    CHECKF(bad_refuse == 0, "%d requests refused with a free run that held them", bad_refuse);
    CHECKF(bad_fit == 0, "%d allocations not from the run best fit (or the top) chooses", bad_fit);
    CHECKF(bad_count == 0, "%d steps with used/peak/high off the model", bad_count);
    while (live > 0) {
        live--;
        CHECK(nn_heap_free(&h, offs[live], NULL) == 0);
    }
    CHECKF(h.n == 1 && h.b[0].free && h.b[0].size == size && h.used == 0, "after releasing all: %d blocks", h.n);
    uint64_t off = 1;
    CHECK(nn_heap_alloc(&h, size, &off) == 0 && off == 0); /* merged back into one range */
    free(taken);
    free(offs);
    free(lens);
    nn_heap_fini(&h);
}

static void test_heap(void)
{
    TEST("nn_heap against a unit map");
    random_sequence(64 * U, 4000, 12);
    random_sequence(1000 * U, 20000, 60);
    random_sequence(7 * U, 500, 7);

    struct nn_heap h;
    uint64_t a, b, c, d, off;
    CHECK(nn_heap_init(&h, 10 * U, U) == 0);
    /* a 3-unit and a 2-unit hole: a 2-unit request takes the 2-unit hole though the 3-unit one comes first */
    CHECK(nn_heap_alloc(&h, 3 * U, &a) == 0 && nn_heap_alloc(&h, U, &b) == 0 && nn_heap_alloc(&h, 2 * U, &c) == 0 &&
          nn_heap_alloc(&h, 4 * U, &d) == 0);
    CHECK(nn_heap_free(&h, a, NULL) == 0 && nn_heap_free(&h, c, NULL) == 0);
    CHECK(nn_heap_alloc(&h, 2 * U - 5, &off) == 0 && off == c);
    CHECK(nn_heap_alloc(&h, 4 * U, &off) == 1); /* 3 units free at most */
    CHECK(nn_heap_free(&h, b + 16, NULL) == ISO_EINTERNAL); /* not the start of an allocation */
    iso_errclear();
    CHECK(nn_heap_free(&h, b, NULL) == 0);
    CHECK(nn_heap_free(&h, b, NULL) == ISO_EINTERNAL); /* released twice */
    iso_errclear();
    CHECK(nn_heap_alloc(&h, 4 * U, &off) == 0 && off == 0); /* a and b merged */
    CHECK(h.high == 10 * U && h.peak == 10 * U);
    nn_heap_fini(&h);
}

/* ---- the nn core's shadow: NN_CPU after nn_reserve runs the device's heaps ---- */
static void test_shadow(void)
{
    TEST("nn shadow heaps on NN_CPU");
    struct nn *nn = NULL;
    CHECK(nn_new(&nn, NN_CPU, 1) == 0);
    if (!nn) return;
    struct nn_act_stats st;
    float *before = nn_alloc(nn, 1000); /* before nn_reserve: not shadowed */
    nn_act_stats(nn, &st);
    CHECK(st.reserved == 0 && st.peak == 0 && st.beyond == 0);
    CHECK(nn_reserve(nn, 1 << 20) == 0);
    enum { N = 300 };
    float *p[N] = { 0 };
    uint64_t live = 0, peak = 0;
    for (int r = 0; r < 3; r++) /* three "forward passes": allocate, release in a shuffled order */
        for (int s = 0; s < 2 * N; s++) {
            int i = (int)(rnd() % N);
            if (p[i]) {
                live -= ((uint64_t)(i + 1) * 4 + 255) & ~(uint64_t)255;
                nn_release(nn, &p[i]);
            } else {
                p[i] = nn_alloc(nn, (size_t)i + 1);
                live += ((uint64_t)(i + 1) * 4 + 255) & ~(uint64_t)255;
                if (live > peak) peak = live;
            }
        }
    nn_release(nn, &before); /* never shadowed: ignored by the heaps */
    nn_act_stats(nn, &st);
    printf("  reserved %llu, high %llu, peak %llu (model %llu), beyond %llu\n", (unsigned long long)st.reserved,
           (unsigned long long)st.high, (unsigned long long)st.peak, (unsigned long long)peak,
           (unsigned long long)st.beyond);
    CHECK(st.reserved == nn_act_reserve_bytes(1 << 20) && st.beyond == 0 && st.peak == peak && st.high >= peak && st.high <= st.reserved);
    for (int i = 0; i < N; i++) nn_release(nn, &p[i]);
    /* a request past the reservation: a region beyond it, as the CUDA backend makes one */
    float *big = nn_alloc(nn, (2u << 20) / 4);
    nn_act_stats(nn, &st);
    CHECK(big && st.beyond == NN_CUDA_CHUNK && st.reserved == nn_act_reserve_bytes(1 << 20));
    nn_release(nn, &big);
    float *fit = nn_alloc(nn, (1u << 20) / 4); /* everything released: the reservation is one range again */
    nn_act_stats(nn, &st);
    CHECK(fit && st.high == 1 << 20 && st.beyond == NN_CUDA_CHUNK);
    nn_release(nn, &fit);
    /* a kept tensor goes to the top: the bottom's room stays whole, and the high water counts both ends */
    float *keep = nn_alloc_keep(nn, 1000), *tmp = nn_alloc(nn, (size_t)(nn_act_reserve_bytes(1 << 20) - 4096) / 4);
    nn_act_stats(nn, &st);
    CHECKF(keep && tmp && st.beyond == NN_CUDA_CHUNK && st.high == nn_act_reserve_bytes(1 << 20),
           "kept 4000 B at the top and the rest below: high %llu, beyond %llu", (unsigned long long)st.high,
           (unsigned long long)st.beyond);
    nn_release(nn, &tmp);
    nn_release(nn, &keep);
    nn_free(&nn);
}

int main(void)
{
    test_heap();
    test_shadow();
    return test_report();
}
