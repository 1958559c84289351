/* segmodel.h — the model interface inside segment-gen.
 * A segment model turns a request (two keyframes, optional flows, a prompt,
 * a seed, a frame count and size) into frames handed one by one to a sink;
 * the tool (segment.c) owns every input and output, a model owns only its
 * context. The vtable is shaped for two kinds of model: the weight-free
 * flow-guided morph (morph.c), and a diffusion DiT read from safetensors,
 * which plans its memory from the file header before loading (plan), maps
 * and uploads or streams its blocks (open), needs the prompt and the seed
 * (generate), and gives everything back (close). */
#ifndef ISOPIPE_SEGMODEL_H
#define ISOPIPE_SEGMODEL_H
#include <jansson.h>
#include <stdint.h>

#include "cli.h"
#include "flo.h"
#include "image.h"
#include "plan.h"

/* what a model needs from the command line (checked before open) */
enum segmodel_needs {
    SEGMODEL_NEEDS_FLOW    = 1 << 0, /* --flow and --flow-back */
    SEGMODEL_NEEDS_PROMPT  = 1 << 1, /* --scenes and --index */
    SEGMODEL_NEEDS_WEIGHTS = 1 << 2, /* a model file found with model_find */
    SEGMODEL_TAKES_SCALE   = 1 << 3, /* --scale means something to it (RIFE's working resolution) */
};

/* Fixed for the life of a context: what open() and plan() may depend on. */
struct segmodel_params {
    const char *model_path;     /* resolved weights file, NULL for a weight-free model */
    enum mem_mode memory_mode;  /* as asked; a model that has no GPU path runs in cpu mode */
    int device;
    int64_t vram_reserve_mib;
    int threads;                /* CPU worker threads (>= 1) */
    int width, height, channels;/* frame size the context will be asked for */
    int frames;                 /* frames per request, keyframes included */
    double scale;               /* --scale, 0 when not given (the model's default) */
    struct rt *rt;              /* the run's runtime (rt_fallback_cpu when a GPU mode cannot start); may be NULL */
};

/* One segment. Pointers are borrowed for the call. */
struct segmodel_request {
    const struct image *start;      /* keyframe at t = 0 */
    const struct image *end;        /* keyframe at t = 1 */
    const struct flow *flow_fwd;    /* start -> end, NULL when not needed */
    const struct flow *flow_bwd;    /* end -> start, NULL when not needed */
    const char *prompt;             /* NULL without --scenes */
    uint64_t seed;
    int frames;                     /* >= 2, keyframes included */
    double fps;
};

/* Receives frame `index` (0..frames-1). It may be called from several worker
 * threads at once, each time with a distinct index, so a sink must be
 * thread-safe; it returns 0 or a status that stops generation. */
typedef int (*segmodel_sink)(void *sink_ctx, int index, const struct image *frame);

struct segmodel_ops {
    const char *name;               /* -m NAME */
    const char *summary;            /* one line for --help and errors */
    unsigned needs;                 /* enum segmodel_needs */
    const char *const *exts;        /* weight file extensions for model_find, NULL when weight-free */
    /* the memory plan (common/plan.h) from the parameters and the weight file's header only */
    int (*plan)(const struct segmodel_params *p, struct mem_plan *out);
    int (*open)(const struct segmodel_params *p, void **ctx);
    int (*generate)(void *ctx, const struct segmodel_request *req, segmodel_sink sink, void *sink_ctx);
    void (*close)(void **ctx);
    /* optional: add the model's own fields to segment.json's "memory" object
     * (where it computed, where its weights lived); called before close */
    void (*report)(void *ctx, json_t *memory);
};

/* the registry (registry.c): NULL when no model has that name */
const struct segmodel_ops *segmodel_find(const char *name);
/* "morph, ..." — the names -m accepts, for messages */
const char *segmodel_names(void);
#define SEGMODEL_DEFAULT "morph"

extern const struct segmodel_ops segmodel_morph;
extern const struct segmodel_ops segmodel_rife;
#endif
