/* flow_check.c — the CUDA path of flow-extract's DIS (dis_cuda.cu) against
 * the CPU path (dis.c) on a real card. Renders synthetic textured pairs in
 * memory (translation, rotation, zoom; 320x240 to 1280x720) with a known
 * flow, computes the flow on both paths and prints, per case, the mean EPE
 * between them (the target: <= 0.05 px), each path's mean EPE
 * against the ground truth, and the time per pair (median of 5 after one
 * warm-up; GPU time includes both uploads and the download). Needs no
 * image libraries, so it runs on a machine with only the CUDA runtime.
 * Usage: flow_check [--threads N] [--cpu-only]
 *   --threads: CPU threads (default: the cores, at most 16)
 *   --cpu-only: the CPU path against the ground truth only (checks the
 *   renderer and its flow convention on a machine without a GPU) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dis.h"
#include "dis_cuda.h"
#include "err.h"
#include "gpu.h"
#include "pool.h"

static int n_pass, n_fail, n_skip, cpu_only;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* value noise: a hashed random lattice, bilinear between its points, summed
 * over four octaves; defined on the whole plane, so a warped frame never
 * samples outside its texture */
static float lattice(int32_t x, int32_t y, uint32_t seed)
{
    uint32_t h = (uint32_t)x * 0x8da6b343u ^ (uint32_t)y * 0xd8163841u ^ seed * 0xcb1ab31fu;
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    h *= 0x297a2d39u;
    h ^= h >> 15;
    return (float)(h & 0xffffff) / (float)0x1000000;
}

static float noise(double x, double y, double period, uint32_t seed)
{
    double fx = x / period, fy = y / period;
    double x0 = floor(fx), y0 = floor(fy), ax = fx - x0, ay = fy - y0;
    int32_t ix = (int32_t)x0, iy = (int32_t)y0;
    double a = lattice(ix, iy, seed) + ax * (lattice(ix + 1, iy, seed) - lattice(ix, iy, seed));
    double b = lattice(ix, iy + 1, seed) + ax * (lattice(ix + 1, iy + 1, seed) - lattice(ix, iy + 1, seed));
    return (float)(a + ay * (b - a));
}

static float texture(double x, double y)
{
    return 255.f * (0.40f * noise(x, y, 24, 1) + 0.30f * noise(x, y, 11, 2) + 0.20f * noise(x, y, 5, 3) +
                    0.10f * noise(x, y, 2.5, 4));
}

/* a point p of frame 0 moves to M p = c + s R(theta) (p - c) + t in frame 1 */
struct motion { double tx, ty, theta, scale; };

static void forward(const struct motion *m, double cx, double cy, double x, double y, double *ox, double *oy)
{
    double c = cos(m->theta) * m->scale, s = sin(m->theta) * m->scale;
    double dx = x - cx, dy = y - cy;
    *ox = cx + c * dx - s * dy + m->tx;
    *oy = cy + s * dx + c * dy + m->ty;
}

static void inverse(const struct motion *m, double cx, double cy, double x, double y, double *ox, double *oy)
{
    double c = cos(m->theta) / m->scale, s = sin(m->theta) / m->scale;
    double dx = x - cx - m->tx, dy = y - cy - m->ty;
    *ox = cx + c * dx + s * dy;
    *oy = cy - s * dx + c * dy;
}

/* frame 0 is the texture, frame 1 the texture carried by M (frame1(M p) = frame0(p)) */
static void render(int w, int h, const struct motion *m, float *I0, float *I1, float *gu, float *gv)
{
    double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            double px, py, qx, qy;
            I0[i] = texture(x, y);
            inverse(m, cx, cy, x, y, &px, &py);
            I1[i] = texture(px, py);
            forward(m, cx, cy, x, y, &qx, &qy);
            gu[i] = (float)(qx - x);
            gv[i] = (float)(qy - y);
        }
}

static double epe(const float *u0, const float *v0, const float *u1, const float *v1, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double du = u0[i] - u1[i], dv = v0[i] - v1[i];
        s += sqrt(du * du + dv * dv);
    }
    return s / (double)n;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define REPS 5

struct tcase { const char *name; int w, h; enum dis_preset preset; struct motion m; };

static void run_case(const struct tcase *c, struct pool *pool, int threads)
{
    size_t n = (size_t)c->w * c->h;
    float *buf = malloc(sizeof(float) * n * 8);
    struct dis *dc = NULL;
    struct dis_cuda *dg = NULL;
    int rc;
    if (!buf) { printf("FAIL - %s: out of memory\n", c->name); n_fail++; return; }
    float *I0 = buf, *I1 = buf + n, *gu = buf + 2 * n, *gv = buf + 3 * n;
    float *cu = buf + 4 * n, *cv = buf + 5 * n, *xu = buf + 6 * n, *xv = buf + 7 * n;
    render(c->w, c->h, &c->m, I0, I1, gu, gv);
    struct dis_params p;
    dis_params_preset(&p, c->preset);
    uint64_t bytes = 0;
    if ((rc = dis_new(&dc, c->w, c->h, &p, pool)) || (rc = dis_cuda_bytes(c->w, c->h, &p, &bytes)) ||
        (!cpu_only && (rc = dis_cuda_new(&dg, c->w, c->h, &p, threads)))) {
        printf("FAIL - %s: %s\n", c->name, iso_errmsg());
        n_fail++;
        goto done;
    }
    double tc[REPS], tg[REPS];
    for (int r = -1; r < REPS; r++) {
        double t0 = now_ms();
        if ((rc = dis_compute(dc, I0, I1, cu, cv))) break;
        double t1 = now_ms();
        if (cpu_only) memcpy(xu, cu, sizeof(float) * n), memcpy(xv, cv, sizeof(float) * n);
        else if ((rc = dis_cuda_compute(dg, I0, I1, xu, xv))) break;
        double t2 = now_ms();
        if (r >= 0) { tc[r] = t1 - t0; tg[r] = t2 - t1; }
    }
    if (rc) {
        printf("FAIL - %s: %s\n", c->name, iso_errmsg());
        n_fail++;
        goto done;
    }
    qsort(tc, REPS, sizeof tc[0], cmp_d);
    qsort(tg, REPS, sizeof tg[0], cmp_d);
    int finite = 1;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(xu[i]) || !isfinite(xv[i])) { finite = 0; break; }
    double e_cg = finite ? epe(cu, cv, xu, xv, n) : INFINITY;
    double e_c = epe(cu, cv, gu, gv, n), e_g = finite ? epe(xu, xv, gu, gv, n) : INFINITY;
    double maxd = 0;
    for (size_t i = 0; finite && i < n; i++) {
        double du = cu[i] - xu[i], dv = cv[i] - xv[i], d = sqrt(du * du + dv * dv);
        if (d > maxd) maxd = d;
    }
    if (cpu_only)
        printf("# %-28s %4dx%-4d %-8s EPE vs truth: cpu %.3f  ms/pair: cpu %.1f\n", c->name, c->w, c->h,
               dis_preset_name(c->preset), e_c, tc[REPS / 2]);
    else
    printf("# %-28s %4dx%-4d %-8s arena %6.1f MiB  EPE(cpu,gpu) %.4f (max %.3f)  EPE vs truth: cpu %.3f gpu %.3f"
           "  ms/pair: cpu %.1f gpu %.2f (x%.1f)\n",
           c->name, c->w, c->h, dis_preset_name(c->preset), bytes / 1048576.0, e_cg, maxd, e_c, e_g, tc[REPS / 2],
           tg[REPS / 2], tc[REPS / 2] / tg[REPS / 2]);
    if (cpu_only) {
        /* rendered motion, sub-pixel to 25 px: DIS-medium lands well under a pixel on this texture */
        if (e_c < 1.0) {
            printf("ok - %s %dx%d %s: CPU mean EPE vs truth %.3f px < 1\n", c->name, c->w, c->h,
                   dis_preset_name(c->preset), e_c);
            n_pass++;
        } else {
            printf("FAIL - %s %dx%d %s: CPU mean EPE vs truth %.3f px >= 1\n", c->name, c->w, c->h,
                   dis_preset_name(c->preset), e_c);
            n_fail++;
        }
    } else if (e_cg <= 0.05) {
        printf("ok - %s %dx%d %s: mean EPE between CPU and GPU %.4f px <= 0.05\n", c->name, c->w, c->h,
               dis_preset_name(c->preset), e_cg);
        n_pass++;
    } else {
        printf("FAIL - %s %dx%d %s: mean EPE between CPU and GPU %.4f px > 0.05\n", c->name, c->w, c->h,
               dis_preset_name(c->preset), e_cg);
        n_fail++;
    }
done:
    dis_free(&dc);
    dis_cuda_free(&dg);
    free(buf);
}

int main(int argc, char **argv)
{
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = nc > 16 ? 16 : nc < 1 ? 1 : (int)nc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--cpu-only") == 0) cpu_only = 1;
        else { fprintf(stderr, "usage: flow_check [--threads N] [--cpu-only]\n"); return 64; }
    }
    if (threads < 1) threads = 1;
    /* a pretend device runs no kernels: this check needs a real card */
    unsetenv("ISOPIPE_FAKE_GPU");
    if (!cpu_only && (gpu_init(0) || gpu_get_info()->backend != GPU_BACKEND_CUDA)) {
        printf("skip - CUDA DIS against the CPU path (no GPU)\n");
        printf("0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    const struct gpu_info *gi = gpu_get_info();
    if (!cpu_only) printf("# device: %s (cc %d.%d), CPU threads: %d\n", gi->name, gi->cc_major, gi->cc_minor, threads);
    struct pool *pool = NULL;
    if (pool_new(&pool, threads)) { printf("FAIL - thread pool: %s\n", iso_errmsg()); return 1; }
    const double deg = M_PI / 180;
    const struct tcase cases[] = {
        { "sub-pixel translation", 320, 240, DIS_PRESET_MEDIUM, { 0.37, -0.61, 0, 1 } },
        { "translation", 640, 480, DIS_PRESET_MEDIUM, { 12.5, 7.25, 0, 1 } },
        { "rotation 3 deg", 640, 480, DIS_PRESET_MEDIUM, { 0, 0, 3 * deg, 1 } },
        { "zoom 1.05", 640, 480, DIS_PRESET_MEDIUM, { 0, 0, 0, 1.05 } },
        { "translation", 1280, 720, DIS_PRESET_MEDIUM, { 23.5, -9.75, 0, 1 } },
        { "rotation 2 deg + translation", 1280, 720, DIS_PRESET_MEDIUM, { 6.5, 3.25, 2 * deg, 1 } },
        { "zoom 0.96", 1280, 720, DIS_PRESET_MEDIUM, { 0, 0, 0, 0.96 } },
        { "rotation 2 deg + translation", 1280, 720, DIS_PRESET_FAST, { 6.5, 3.25, 2 * deg, 1 } },
        { "rotation 2 deg + translation", 1280, 720, DIS_PRESET_ACCURATE, { 6.5, 3.25, 2 * deg, 1 } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], pool, threads);
    pool_free(&pool);
    gpu_shutdown();
    printf("%d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    return n_fail ? 1 : 0;
}
