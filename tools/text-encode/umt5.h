/* umt5.h — the umT5 encoder (Wan2.1's text encoder), llama2.c style: a
 * config, weights as views into the weight files (common/weights.h), one
 * forward written only with common/nn.h.
 *
 * umT5 is T5 v1.1 with a relative position bias of its own in every layer:
 * per layer RMSNorm -> self-attention (no 1/sqrt(d_kv) scaling, bias from
 * bidirectional relative-position buckets) -> residual, RMSNorm -> gated
 * GELU-tanh FFN (wi_0 the GELU branch, wi_1 linear, wo) -> residual; a final
 * RMSNorm. Layouts (recognised from the tensor names): Hugging Face
 * UMT5EncoderModel (also ComfyUI's single files, fp16 or scaled fp8), Wan's
 * .pth names, llama.cpp's T5 GGUF names (float weights only).
 * The struct borrows the weights (the caller closes them after umt5_free). */
#ifndef ISOPIPE_UMT5_H
#define ISOPIPE_UMT5_H
#include <stdint.h>

#include "nn.h"
#include "weights.h"

struct umt5_config {
    int d_model, n_heads, d_kv, n_layers, d_ff;
    int n_buckets, max_distance;
    int vocab_rows;          /* rows of the embedding */
    float eps;
    char source[64];         /* "config.json" or "tensor shapes + T5 defaults" */
};

struct umt5;

/* Recognise the layout, read the config (config_json: a config.json to read,
 * or NULL for the shapes and T5's defaults: max distance 128, eps 1e-6) and
 * check every tensor's shape. ISO_EDATA naming the tensor for a missing or
 * misshapen one, ISO_EUNAVAIL for weights nn cannot use (quantized GGUF). */
int umt5_open(const struct weights *w, const char *config_json, struct umt5 **out);
void umt5_free(struct umt5 **m);
const struct umt5_config *umt5_config(const struct umt5 *m);
const char *umt5_layout(const struct umt5 *m);   /* "huggingface", "comfyui-fp8-scaled", "wan", "gguf" */
/* bytes: one layer's tensors, the rest (embedding, final norm), the largest tensor */
void umt5_sizes(const struct umt5 *m, uint64_t *layer, uint64_t *resident, uint64_t *largest);
/* bytes that live on the host in every memory mode: the embedding as
 * stored (its rows are gathered from the mapping) and the float32 tables of
 * relative-position bias (converted at umt5_open) */
uint64_t umt5_host_bytes(const struct umt5 *m);
/* backend activation bytes of umt5_encode_batch (device bytes on NN_CUDA,
 * nn_alloc's alignment included) for B sequences of `tokens` tokens in all,
 * none longer than Lmax; what umt5_reserve allocates */
uint64_t umt5_scratch_bytes(const struct umt5_config *c, int Lmax, int tokens, int B);

/* Register the weights with r (common/nn_wres.h; before nn_wres_load): the
 * final norm resident (-1), layer i's norms and matrices as block i, in the
 * order the forward uses them. The embedding is not registered: it stays in
 * the mapping and its rows are gathered on the host (umT5-XXL's 256,384 x
 * 4096 is 2 GB of bf16 the device never needs); nor are the bias tables,
 * float32 host copies made at umt5_open. umt5_encode_batch then calls
 * nn_wres_enter(r, i) before layer i (r NULL: forget a registration, no
 * enters). 0 or nn_wres_add's error. */
struct nn_wres;
int umt5_wres_register(struct umt5 *m, struct nn_wres *r);
/* Allocate the activations for batches of at most B sequences, `tokens` in
 * all, none longer than Lmax, once (umt5_scratch_bytes of them); a batch
 * that does not fit allocates its own for the call. umt5_release gives them
 * back (before nn_free; umt5_free does not). 0 or ISO_ETEMPFAIL. */
int umt5_reserve(struct umt5 *m, struct nn *nn, int Lmax, int tokens, int B);
void umt5_release(struct umt5 *m, struct nn *nn);

/* T5's bidirectional relative position bucket of key - query (as
 * transformers computes it, float32 logarithm included) */
int umt5_bucket(int rel, int n_buckets, int max_distance);

/* Encode B sequences (ids[b], lens[b] >= 1 tokens, each id < vocab_rows,
 * checked by the caller); out[b] (host memory) receives [lens[b], d_model]
 * float32. A sequence's states are exactly those it gets alone: each is
 * computed on its own rows, padding never exists. The layers run in turn
 * over the whole batch (a streamed layer is copied once per batch). Runs on
 * nn's backend (NN_CPU or NN_CUDA). 0, ISO_ETEMPFAIL (activation memory),
 * ISO_EINTERNAL, or the backend's error. */
int umt5_encode_batch(struct umt5 *m, struct nn *nn, const int32_t *const *ids, const int *lens, int B, float **out);
#endif
