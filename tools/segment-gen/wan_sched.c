/* wan_sched.c — Euler and UniPC flow-matching samplers and the noise
 * generator (wan_sched.h). Sigma schedules follow diffusers 0.3x-0.4x's
 * set_timesteps step by step (float64 where numpy computes, float32 where
 * torch keeps), so that the model sees the same timesteps. */
#include "wan_sched.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

const char *wan_sampler_name(enum wan_sampler s) { return s == WAN_SAMPLER_EULER ? "euler" : "unipc"; }

int wan_sampler_parse(const char *s, enum wan_sampler *out)
{
    if (strcmp(s, "unipc") == 0) *out = WAN_SAMPLER_UNIPC;
    else if (strcmp(s, "euler") == 0) *out = WAN_SAMPLER_EULER;
    else return iso_fail(ISO_EUSAGE, "--sampler: '%s' is not one of unipc, euler", s);
    return 0;
}

/* FlowMatchEulerDiscreteScheduler.__init__ + set_timesteps (num_train_timesteps 1000) */
static void euler_sigmas(struct wan_sched *s)
{
    /* __init__: sigmas = shift(t/1000) for t = 1000 .. 1 in float32; sigma_max = shift(1) = 1,
     * sigma_min = shift(0.001) */
    float sh = (float)s->shift, t1 = 1.0f / 1000.0f;
    float smin = sh * t1 / (1.0f + (sh - 1.0f) * t1);
    float smax = sh * 1.0f / (1.0f + (sh - 1.0f) * 1.0f);
    /* set_timesteps: np.linspace(1000 sigma_max, 1000 sigma_min, S) (float64), /1000, shifted again */
    double a = (double)smax * 1000.0, b = (double)smin * 1000.0;
    int n = s->steps;
    for (int i = 0; i < n; i++) {
        double t = n > 1 ? (i == n - 1 ? b : a + (double)i * ((b - a) / (n - 1))) : a;
        double sg = t / 1000.0;
        sg = s->shift * sg / (1.0 + (s->shift - 1.0) * sg);
        s->sigmas[i] = (float)sg;
        s->timesteps[i] = s->sigmas[i] * 1000.0f;
    }
    s->sigmas[n] = 0.0f;
}

/* UniPCMultistepScheduler.set_timesteps with use_flow_sigmas (timestep_spacing irrelevant) */
static void unipc_sigmas(struct wan_sched *s)
{
    int n = s->steps;
    double lo = 1.0 / 1000.0;
    for (int i = 0; i < n; i++) {
        /* np.linspace(1, 1/1000, n + 1)[:-1] */
        double sg = 1.0 + (double)i * ((lo - 1.0) / n);
        sg = s->shift * sg / (1.0 + (s->shift - 1.0) * sg);
        if (i == 0 && fabs(sg - 1.0) < 1e-6) sg -= 1e-6;
        s->timesteps[i] = (float)(int64_t)(sg * 1000.0);   /* astype(int64): truncation */
        s->sigmas[i] = (float)sg;
    }
    s->sigmas[n] = 0.0f;
}

int wan_sched_init(struct wan_sched *s, enum wan_sampler kind, int steps, double shift, size_t n)
{
    memset(s, 0, sizeof *s);
    if (steps < 1 || steps > WAN_SCHED_MAX_STEPS)
        return iso_fail(ISO_EUSAGE, "--steps %d: between 1 and %d", steps, WAN_SCHED_MAX_STEPS);
    if (!(shift > 0) || !isfinite(shift)) return iso_fail(ISO_EUSAGE, "--shift %g: must be positive", shift);
    s->kind = kind;
    s->steps = steps;
    s->shift = shift;
    s->n = n;
    if (kind == WAN_SAMPLER_EULER) euler_sigmas(s);
    else unipc_sigmas(s);
    int unipc = kind == WAN_SAMPLER_UNIPC;
    float **bufs[] = { &s->tmp, &s->m_prev, &s->m_cur, &s->last, &s->tmp2 };
    for (int i = 0; i < (unipc ? 5 : 1); i++)
        if (!(*bufs[i] = malloc(n * sizeof(float)))) {
            wan_sched_free(s);
            return iso_fail(ISO_EINTERNAL, "out of memory (the sampler's %zu MiB)", n * sizeof(float) >> 20);
        }
    return 0;
}

void wan_sched_free(struct wan_sched *s)
{
    float **bufs[] = { &s->tmp, &s->m_prev, &s->m_cur, &s->last, &s->tmp2 };
    for (int i = 0; i < 5; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
}

/* y = x * a and y = a + b, element by element in float32 on host memory:
 * what the nn core's nn_scale and nn_add compute on the CPU, bit for bit
 * (one rounded operation per element either way) */
void wan_host_scale(float *y, const float *x, size_t n, float a)
{
    for (size_t i = 0; i < n; i++) y[i] = x[i] * a;
}

void wan_host_add(float *y, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

/* y += a * x (tmp is scratch) */
static void axpy(float *y, float a, const float *x, float *tmp, size_t n)
{
    wan_host_scale(tmp, x, n, a);
    wan_host_add(y, y, tmp, n);
}

/* flow sigmas: alpha = 1 - sigma, lambda = log(alpha) - log(sigma) */
static double lambda_of(float sigma) { return log(1.0 - (double)sigma) - log((double)sigma); }

/* UniPC bh2 coefficients for order 1 or 2 between sigma_s0 and sigma_t
 * (diffusers multistep_uni_{p,c}_bh_update): h_phi_1, B_h and the rhos */
struct unipc_coef { double ratio, alpha_t, h_phi_1, B_h, rk, rho0, rho1; };
static void unipc_coef(float sig_t, float sig_s0, float sig_s1, int order, int corrector, struct unipc_coef *k)
{
    double lt = lambda_of(sig_t), l0 = lambda_of(sig_s0), h = lt - l0;
    double hh = -h;                          /* predict_x0 */
    k->ratio = (double)sig_t / sig_s0;
    k->alpha_t = 1.0 - (double)sig_t;
    k->h_phi_1 = expm1(hh);
    k->B_h = expm1(hh);                      /* bh2 */
    k->rk = order == 2 ? (lambda_of(sig_s1) - l0) / h : 1.0;
    /* b_i = h_phi_k * i! / B_h with h_phi_k = h_phi_{k-1} / hh - 1/i! */
    double hphik = k->h_phi_1 / hh - 1.0, b1 = hphik / k->B_h;
    hphik = hphik / hh - 0.5;
    double b2 = hphik * 2.0 / k->B_h;
    if (!corrector) {
        k->rho0 = 0.5;                       /* order 2 predictor: rhos_p = [0.5] */
        k->rho1 = 0;
    } else if (order == 1) {
        k->rho0 = 0;
        k->rho1 = 0.5;                       /* rhos_c = [0.5] */
    } else {
        /* solve [[1, 1], [rk, 1]] rho = [b1, b2] */
        k->rho0 = (b1 - b2) / (1.0 - k->rk);
        k->rho1 = b1 - k->rho0;
    }
}

static void unipc_step(struct wan_sched *s, const float *v, float *x)
{
    size_t n = s->n;
    int i = s->step;
    float *m_new = s->tmp2;
    /* convert_model_output: x0 = sample - sigma v */
    wan_host_scale(m_new, v, n, -s->sigmas[i]);
    wan_host_add(m_new, m_new, x, n);

    if (i > 0) {
        /* corrector (UniC): x = ratio last - alpha h_phi_1 m0 - alpha B_h (rho0 D1 + rho1 (m_new - m0)),
         * m0 = the previous data prediction, D1 = (m_prev - m0) / rk */
        struct unipc_coef k;
        int order = s->this_order;
        unipc_coef(s->sigmas[i], s->sigmas[i - 1], order == 2 ? s->sigmas[i - 2] : 0, order, 1, &k);
        const float *m0 = s->m_cur;
        double g = -k.alpha_t * k.B_h;
        wan_host_scale(x, s->last, n, (float)k.ratio);
        axpy(x, (float)(-k.alpha_t * k.h_phi_1), m0, s->tmp, n);
        if (order == 2) {
            axpy(x, (float)(g * k.rho0 / k.rk), s->m_prev, s->tmp, n);
            axpy(x, (float)(-g * k.rho0 / k.rk), m0, s->tmp, n);
        }
        axpy(x, (float)(g * k.rho1), m_new, s->tmp, n);
        axpy(x, (float)(-g * k.rho1), m0, s->tmp, n);
    }
    /* history: model_outputs shift by one */
    float *t = s->m_prev;
    s->m_prev = s->m_cur;
    s->m_cur = m_new;
    s->tmp2 = t;
    int order = s->steps - i < 2 ? s->steps - i : 2;      /* lower_order_final */
    s->this_order = order < s->lower_order_nums + 1 ? order : s->lower_order_nums + 1;
    memcpy(s->last, x, n * sizeof(float));               /* last_sample (a copy, not arithmetic) */

    /* predictor (UniP): x = ratio x - alpha h_phi_1 m0 - alpha B_h rho D1 */
    struct unipc_coef k;
    unipc_coef(s->sigmas[i + 1], s->sigmas[i], s->this_order == 2 ? s->sigmas[i - 1] : 0, s->this_order, 0, &k);
    const float *m0 = s->m_cur;
    wan_host_scale(x, s->last, n, (float)k.ratio);
    axpy(x, (float)(-k.alpha_t * k.h_phi_1), m0, s->tmp, n);
    if (s->this_order == 2) {
        double g = -k.alpha_t * k.B_h * k.rho0 / k.rk;
        axpy(x, (float)g, s->m_prev, s->tmp, n);
        axpy(x, (float)-g, m0, s->tmp, n);
    }
    if (s->lower_order_nums < 2) s->lower_order_nums++;
}

void wan_sched_step(struct wan_sched *s, const float *v, float *x)
{
    if (s->kind == WAN_SAMPLER_EULER) {
        float dt = s->sigmas[s->step + 1] - s->sigmas[s->step];
        axpy(x, dt, v, s->tmp, s->n);
    } else {
        unipc_step(s, v, x);
    }
    s->step++;
}

/* SplitMix64's output function (Steele, Lea, Flood 2014) as a hash of a counter */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void wan_noise(uint64_t seed, float *out, size_t n)
{
    const uint64_t G = UINT64_C(0x9e3779b97f4a7c15);
    uint64_t key = mix64(seed + G);
    for (size_t p = 0; 2 * p < n; p++) {
        uint64_t b1 = mix64(key + (2 * (uint64_t)p + 1) * G), b2 = mix64(key + (2 * (uint64_t)p + 2) * G);
        double u1 = ((double)(b1 >> 11) + 0.5) * 0x1.0p-53;   /* (0, 1) */
        double u2 = (double)(b2 >> 11) * 0x1.0p-53;           /* [0, 1) */
        double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
        out[2 * p] = (float)(r * cos(a));
        if (2 * p + 1 < n) out[2 * p + 1] = (float)(r * sin(a));
    }
}
