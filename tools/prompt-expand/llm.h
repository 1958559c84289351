/* llm.h — the LLM engine of prompt-expand: a decoder-only transformer
 * (llama and qwen2 families) run from a GGUF v3 file. The weights stay in the
 * mmapped file (cpu mode) or are uploaded to / streamed through the GPU
 * (beefy / lightweight, CUDA builds). struct llm owns the struct gguf, the
 * KV cache and the scratch buffers; callers own the token and logit arrays.
 * Positions are explicit: llm_eval(tok, n, pos) writes the KV cache at
 * pos..pos+n-1 and attends to 0..pos+n-1, so a caller restarts a
 * conversation by evaluating at pos 0 again (no separate reset). */
#ifndef ISOPIPE_LLM_H
#define ISOPIPE_LLM_H
#include <stdint.h>
#include "cli.h"    /* enum mem_mode */
#include "gguf.h"
#include "plan.h"

struct llm;

struct llm_params {
    int n_ctx;            /* KV cache length in tokens; 0 = min(model's context_length, 4096) */
    int threads;          /* CPU threads; 0 = all online CPUs */
    enum mem_mode mode;   /* MEM_MODE_AUTO picks cpu without CUDA or a device */
    int device;           /* CUDA device */
    int f32_act;          /* reference mode: activations stay float (no 8-bit blocks); slower.
                           * Used to check the CUDA kernels against the CPU to float rounding
                           * (8-bit activations make any two implementations differ by ~1%) */
};
void llm_params_default(struct llm_params *p);

/* Opens the GGUF, checks architecture/shapes/types, maps the weights and
 * allocates the KV cache. ISO_ENOINPUT missing file, ISO_EDATA malformed file
 * or shapes, ISO_EUNAVAIL unknown architecture (named in the message) or a
 * mode this build cannot run. */
int llm_open(const char *path, const struct llm_params *p, struct llm **out);
void llm_close(struct llm **m);

/* the parsed GGUF (for the tokenizer: tokenizer.ggml.* keys); owned by m */
const struct gguf *llm_gguf(const struct llm *m);
int llm_n_vocab(const struct llm *m);
int llm_n_ctx(const struct llm *m);        /* KV cache length in use */
int llm_n_ctx_train(const struct llm *m);  /* the model's context_length */
const char *llm_arch(const struct llm *m); /* "llama", "qwen2" */
const char *llm_quant(const struct llm *m);/* file type name, e.g. "Q4_1", "Q4_K_M" */
enum mem_mode llm_mode(const struct llm *m); /* the mode actually running (never AUTO) */
uint64_t llm_n_params(const struct llm *m);  /* number of weights */

/* The memory plan of running path with p (struct mem_plan, plan.h) from the
 * GGUF header alone: no weight is read. Blocks are the transformer layers;
 * resident are the embeddings, output head and norms; activations are the
 * engine's scratch at LLM_BATCH tokens; the KV cache is f16 at p->n_ctx.
 * Same errors as llm_open. */
int llm_plan(const char *path, const struct llm_params *p, struct mem_plan *out);

/* Feeds tok[0..n-1] at positions pos..pos+n-1 (pos + n <= llm_n_ctx) and
 * writes the n_vocab logits of the LAST token to logits (may be NULL). */
int llm_eval(struct llm *m, const int32_t *tok, int n, int pos, float *logits);
/* Same, but writes the logits of every token: logits is n * n_vocab floats,
 * row i for tok[i] (teacher forcing, perplexity). */
int llm_eval_all(struct llm *m, const int32_t *tok, int n, int pos, float *logits);
#endif
