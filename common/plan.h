/* plan.h — the memory plan: what a model run will need in each memory mode,
 * computed from the model file's header and the run's parameters BEFORE any
 * weight is read, and the mode decision that follows from it (docs/DESIGN.md,
 * "Plan and modes"). Plans are plain values (no allocation inside); the
 * JSON schema of plan_to_json is documented in docs/memory.md.
 *
 * A model describes itself as streamable blocks (struct plan_blocks): n
 * identical blocks of B bytes (transformer layers, DiT blocks) that the
 * lightweight mode streams two at a time, plus resident weights (embeddings,
 * output head, norms) that always stay on the device, plus activations and
 * KV cache. plan_from_blocks() turns that into the per-mode numbers. A model
 * whose layers differ in size gives B = its largest block and n*B >= the
 * real total (the plan must never under-estimate). */
#ifndef ISOPIPE_PLAN_H
#define ISOPIPE_PLAN_H
#include <jansson.h>
#include <stdint.h>

#include "cli.h"

/* one pinned staging chunk of the beefy upload (rt_upload uses two, so the
 * read of one overlaps the transfer of the other; 16 MiB is far past the
 * size where PCIe DMA reaches full speed) */
#define PLAN_UPLOAD_CHUNK (UINT64_C(16) << 20)

/* per mode; VRAM fields are bytes on the device, host fields bytes of RAM */
struct plan_mode {
    int possible;            /* the tool can run in this mode at all */
    uint64_t weights;        /* VRAM for weights (lightweight: resident + 2 blocks) */
    uint64_t activations;    /* VRAM (cpu mode: host) for activations/scratch */
    uint64_t kv_cache;       /* VRAM (cpu mode: host) for the KV cache */
    uint64_t staging;        /* VRAM for upload staging (0: weights are copied in place) */
    uint64_t pinned_host;    /* page-locked host bytes */
    uint64_t host_rss;       /* expected peak RSS of the process */
    uint64_t vram_peak;      /* weights + activations + kv_cache + staging (0 for cpu) */
};

struct plan_blocks {
    uint64_t n_blocks;       /* identical streamable blocks */
    uint64_t block_bytes;    /* bytes of one block (the largest if they differ) */
    uint64_t resident_bytes; /* weights that never stream (embeddings, head, norms) */
    uint64_t largest_tensor; /* bytes of the largest single tensor (beefy upload) */
    uint64_t activations;    /* scratch for one forward pass at the run's sizes */
    uint64_t kv_cache;       /* KV cache at the run's context length (0 for none) */
    uint64_t host_base;      /* RSS the tool needs besides weights (code, buffers, outputs) */
    uint64_t align_slack;    /* arena padding for aligned sub-allocation (256 per tensor) */
    uint64_t upload_extra;   /* beefy only: device bytes beyond resident + n * block
                                (weights widened on upload: fp8 becomes bf16 in
                                nn_w_upload, while blocks stream as stored) */
    int gpu_ok;              /* the tool has a GPU path (beefy and lightweight) */
    int cpu_ok;              /* the tool has a CPU path */
    int gpu_explicit_only;   /* auto never picks a GPU mode (only an explicit
                                --memory-mode does): a GPU path not yet verified
                                on a card (NN_CUDA_MODELS_VERIFIED in nn.h) */
};

struct mem_plan {
    char model[256];         /* what was planned ("SmolLM2-135M Q4_1", a file name) */
    struct plan_blocks blocks;      /* the description the plan came from */
    uint64_t weights_total;  /* resident + n_blocks * block_bytes */
    struct plan_mode mode[4];/* indexed by enum mem_mode; [MEM_MODE_AUTO] unused */
};

/* Fill *p from a block description. Overflow in any sum: ISO_EDATA (the
 * numbers come from a model file). model may be NULL. Rules (docs/memory.md):
 *   (weights below include align_slack in both GPU modes)
 *   beefy:       weights = total + upload_extra, staging 0, pinned = two upload chunks
 *                (min(largest tensor, PLAN_UPLOAD_CHUNK) each), RSS = host_base + largest
 *                tensor + chunks (mmapped weights are dropped after upload)
 *   lightweight: weights = resident + 2 blocks (n < 2: all blocks), pinned =
 *                n blocks (the host copy the stream reads), RSS = host_base +
 *                largest tensor (resident upload) + n blocks
 *   cpu:         VRAM 0, RSS = host_base + total + activations + kv_cache */
int plan_from_blocks(struct mem_plan *p, const char *model, const struct plan_blocks *b);

/* Streamable blocks of a weights file (any format weights_open reads): a
 * tensor whose name has a component "blocks.K." or "layers.K." (any prefix:
 * "model.layers.3.mlp.w1") belongs to block K; everything else is resident.
 * Fills n_blocks (max K + 1), block_bytes (the largest block's sum),
 * resident_bytes, largest_tensor and align_slack (256 per tensor); the
 * caller adds activations, kv_cache, host_base and the mode flags. block_of
 * (may be NULL; weights_count entries, in weights_at order) gets each
 * tensor's block or -1. ISO_EDATA for a block index over 1e6 or a sum overflow. */
struct weights;
int plan_blocks_from_weights(const struct weights *w, struct plan_blocks *b, int64_t *block_of);

/* The room the decision sees. */
struct plan_env {
    int gpu;                 /* a device (real or fake) is present */
    uint64_t vram_free;      /* device-wide free bytes now */
    uint64_t vram_reserve;   /* --vram-reserve in bytes */
    uint64_t others_pending; /* live ledger reservations of other processes not yet in use */
    uint64_t host_budget;    /* mem_host_budget() */
};

/* bytes a GPU mode may use: free - reserve - others_pending (0 if negative) */
uint64_t plan_room(const struct plan_env *e);

/* Decide the mode for `requested` (auto or explicit). Returns 0 and *out, or
 *   ISO_ETEMPFAIL: it does not fit now (retryable: wait, or another mode);
 *                  the message gives need and room;
 *   ISO_EUNAVAIL:  it can never run so (explicit GPU mode without a device,
 *                  a mode the tool does not have) — the tool exits 75 for
 *                  explicit modes too, see rt_admit.
 * auto: beefy if its vram_peak <= room, else lightweight if its vram_peak <=
 * room, else ETEMPFAIL; without a device, or with gpu_explicit_only (and a
 * cpu path): cpu. Explicit modes are never
 * changed: they run or fail. Host RAM: a GPU mode whose pinned_host exceeds
 * host_budget is ETEMPFAIL as well (page-locked memory cannot be reclaimed;
 * mmapped weights can, so host_rss is reported, not enforced). */
int plan_decide(const struct mem_plan *p, enum mem_mode requested, const struct plan_env *e,
                enum mem_mode *out);

/* {"model", "weights_total", "blocks": {...}, "modes": {"beefy": {...}, ...}}
 * (new reference; schema in docs/memory.md). Callers add "auto_pick". */
json_t *plan_to_json(const struct mem_plan *p);
#endif
