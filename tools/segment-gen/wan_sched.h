/* wan_sched.h — the flow-matching samplers segment-gen runs a Wan DiT with,
 * matching diffusers' set_timesteps and step exactly (not just their idea),
 * and the documented noise generator.
 *
 *   euler: FlowMatchEulerDiscreteScheduler(shift): sigmas spaced linearly from
 *          1 to the already-shifted sigma_min = shift(1/1000), shifted again,
 *          then 0; the model sees t = 1000 sigma as a float (shift 3, 3 steps:
 *          sigmas 1, 0.751121, 0.008929, 0). x += (sigma_next - sigma) v.
 *   unipc: UniPCMultistepScheduler(prediction_type="flow_prediction",
 *          use_flow_sigmas=True, flow_shift, solver_order 2, bh2, predict_x0,
 *          lower_order_final): sigmas linspace(1, 1/1000, S+1)[:-1] shifted,
 *          the first one 1 - 1e-6, then 0; the model sees the integer part of
 *          1000 sigma (shift 3, 4 steps: 999, 900, 750, 500). UniPC
 *          predictor-corrector (Zhao et al. 2023, "UniPC", Alg. 2 with B(h) =
 *          e^h - 1) on the data prediction x0 = x - sigma v.
 *
 * The latents and the sampler's state are host memory (malloc) on every
 * backend: the DiT (wan_forward) takes host latents and gives a host
 * velocity, and the sampler's arithmetic is plain element-wise float32 here,
 * bit for bit what the nn core's CPU nn_scale / nn_add compute. */
#ifndef ISOPIPE_WAN_SCHED_H
#define ISOPIPE_WAN_SCHED_H
#include <stddef.h>
#include <stdint.h>

enum wan_sampler { WAN_SAMPLER_UNIPC = 0, WAN_SAMPLER_EULER };
const char *wan_sampler_name(enum wan_sampler s);
int wan_sampler_parse(const char *s, enum wan_sampler *out);

#define WAN_SCHED_MAX_STEPS 1000

struct wan_sched {
    enum wan_sampler kind;
    int steps;
    double shift;
    float sigmas[WAN_SCHED_MAX_STEPS + 1];   /* float32, as diffusers keeps them */
    float timesteps[WAN_SCHED_MAX_STEPS];    /* what the model is given at each step */
    /* UniPC state */
    size_t n;
    float *m_prev, *m_cur;   /* the last two data predictions (model_outputs) */
    float *last;             /* last_sample: the sample before the last predictor step */
    float *tmp, *tmp2;       /* host memory, n floats each (UniPC: all five; Euler: tmp) */
    int lower_order_nums, this_order, step;
};

/* steps 1..WAN_SCHED_MAX_STEPS, shift > 0; n = elements of the latent */
int wan_sched_init(struct wan_sched *s, enum wan_sampler kind, int steps, double shift, size_t n);
void wan_sched_free(struct wan_sched *s);
/* one step: x (in/out, n floats, host memory) from the model's velocity v at step s->step */
void wan_sched_step(struct wan_sched *s, const float *v, float *x);
/* y = x * a, y = a + b over n floats of host memory, bit-identical to
 * nn_scale / nn_add on an NN_CPU context (y may equal an input) */
void wan_host_scale(float *y, const float *x, size_t n, float a);
void wan_host_add(float *y, const float *a, const float *b, size_t n);

/* Gaussian noise, counter-based and so identical whatever the thread count:
 * element i = Box-Muller of two uniforms from SplitMix64's finaliser applied
 * to seed-keyed counters (docs/wan.md gives the exact recipe). */
void wan_noise(uint64_t seed, float *out, size_t n);
#endif
