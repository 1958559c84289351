/* llm_cuda.h — the CUDA forward pass of the LLM engine (llm_cuda.cu), used by
 * llm.c in the beefy and lightweight modes of a CUDA build. llm.c owns the
 * weights (device pointers in an arena, or a streamed window of layers) and
 * hands them in per call; struct llmc owns the activations, the activation
 * quantisation buffers and the f16 KV cache, all in one "activations" arena.
 * The arithmetic mirrors the CPU path (quant.c): activations are quantised to
 * the same 8-bit blocks with the same rounding and dotted as integers, so CUDA
 * and CPU logits agree to float summation order. */
#ifndef ISOPIPE_LLM_CUDA_H
#define ISOPIPE_LLM_CUDA_H
#include <stdint.h>
#include "gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

struct llmc;

struct llmc_dims {
    int n_embd, n_ff, n_head, n_head_kv, head_dim, n_rot, n_vocab, n_ctx, n_layer, max_batch;
    int rope_neox, f32_act;   /* f32_act: float activations (llm_params.f32_act) */
    float rms_eps, rope_base;
    const float *rope_freqs_host;   /* n_rot/2 factors or NULL (copied at create) */
};

/* a weight on the device; dev NULL = absent (a bias) */
struct llmc_w { const void *dev; enum ggml_type type; int64_t ne0, ne1; };

struct llmc_layer {
    struct llmc_w attn_norm, wq, wk, wv, bq, bk, bv, wo, ffn_norm, wg, wu, wd;
};

/* device bytes llmc_create will allocate (for the plan) */
uint64_t llmc_bytes(const struct llmc_dims *d);
/* stream: the cudaStream_t kernels run on (NULL: the default stream) */
int llmc_create(const struct llmc_dims *d, void *stream, struct llmc **out);
void llmc_set_stream(struct llmc *c, void *stream);
/* x (nt x n_embd floats, host) becomes the residual stream */
int llmc_input(struct llmc *c, const float *x, int nt);
/* one transformer layer over the nt tokens at positions pos.. */
int llmc_forward_layer(struct llmc *c, int l, const struct llmc_layer *L, int nt, int pos);
/* final norm and output head for rows first..nt-1, logits to the host */
int llmc_output(struct llmc *c, const struct llmc_w *norm, const struct llmc_w *out, int nt, int first, float *logits);
void llmc_free(struct llmc **c);

#ifdef __cplusplus
}
#endif
#endif
