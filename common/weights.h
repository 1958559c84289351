/* weights.h — one interface to every weight format a model loader meets:
 * GGUF, a safetensors file, a sharded safetensors directory
 * (`*.safetensors.index.json`), a diffusers/HF directory holding one
 * safetensors file, and PyTorch zip checkpoints (`.pth`/`.pt`/`.pkl`, read by
 * ptckpt.c's restricted unpickler, which executes nothing). A loader asks for a
 * tensor by name and gets the same view whatever the file: dtype, shape in
 * PyTorch order (shape[0] is the slowest-varying dimension; GGUF's ne[] is
 * reversed into this order), and a pointer into the read-only mapping.
 *
 * Ownership: struct weights owns every mapping and table; tensor views and
 * their data pointers live until weights_close. Nothing is copied at open:
 * a tensor's bytes are read from the page cache when the loader touches them,
 * so the memory plan can read every size before any weight is read.
 * This module sits below the memory runtime: it includes no plan/cli header. */
#ifndef ISOPIPE_WEIGHTS_H
#define ISOPIPE_WEIGHTS_H
#include <stddef.h>
#include <stdint.h>

enum wt_dtype {
    WT_F32 = 0, WT_F16, WT_BF16, WT_F8_E4M3, WT_F8_E5M2, WT_F64,
    WT_I8, WT_U8, WT_I16, WT_I32, WT_I64, WT_BOOL,
    WT_GGML,            /* a GGUF block-quantized type: see wt_tensor.ggml_type */
    WT_N_DTYPES
};

enum wt_format {
    WT_FMT_GGUF = 0, WT_FMT_SAFETENSORS, WT_FMT_SAFETENSORS_SHARDED, WT_FMT_PYTORCH
};

#define WT_MAX_DIMS 8

struct wt_tensor {
    const char *name;        /* full name as stored (prefix included) */
    enum wt_dtype dtype;
    int ggml_type;           /* enum ggml_type when dtype == WT_GGML, else -1 */
    int n_dims;
    int64_t shape[WT_MAX_DIMS];   /* PyTorch order */
    int64_t strides[WT_MAX_DIMS]; /* in elements, PyTorch order (row-major for every format but a
                                     PyTorch checkpoint, which may store a non-contiguous view) */
    int contiguous;          /* strides are the row-major ones of shape */
    uint64_t nelem;
    uint64_t nbytes;         /* bytes the data spans */
    const void *data;        /* into the mapping (first element; storage offset applied) */
    int file;                /* index of the shard / file that holds it */
};

struct weights;

/* Open PATH: a file (format detected from its first bytes, never from its
 * name) or a directory (a `*.safetensors.index.json`, else exactly one
 * `*.safetensors`, else exactly one `.pth`/`.pt`/`.bin` checkpoint).
 * ISO_ENOINPUT missing, ISO_EDATA malformed (message names the file and
 * what is wrong), ISO_EUNAVAIL a format we cannot read (legacy pre-1.6
 * PyTorch files: the message says how to re-save). */
int weights_open(const char *path, struct weights **out);
void weights_close(struct weights **w);

enum wt_format weights_format(const struct weights *w);
const char *weights_format_name(const struct weights *w); /* "gguf", "safetensors", ... */
const char *weights_path(const struct weights *w);        /* as given to weights_open */
/* the directory the weights came from (config.json, tokenizer files live there) */
const char *weights_dir(const struct weights *w);

size_t weights_count(const struct weights *w);
const struct wt_tensor *weights_at(const struct weights *w, size_t i);
/* exact name; NULL when absent. Names are hashed: O(1). */
const struct wt_tensor *weights_find(const struct weights *w, const char *name);
/* the first prefix p of prefixes (NULL-terminated, "" allowed) such that some
 * tensor is named p + probe; NULL when none. ComfyUI files put
 * "model.diffusion_model." before the original names, for example. */
const char *weights_detect_prefix(const struct weights *w, const char *probe, const char *const *prefixes);

/* Find prefix + name and check its shape (n_dims entries; -1 in shape means
 * any size, and the size found is written back). ISO_EDATA naming the tensor
 * and the file when it is missing or misshapen. */
int weights_expect(const struct weights *w, const char *prefix, const char *name, int n_dims,
                   int64_t *shape, const struct wt_tensor **out);

/* metadata string (safetensors __metadata__, GGUF string kv), or NULL */
const char *weights_meta(const struct weights *w, const char *key);

/* Convert nelem elements of t starting at element index first (row-major
 * order of t's shape; a non-contiguous tensor is gathered through its
 * strides) to float32. F32/F16/BF16/F8 (E4M3FN, E5M2)/F64/ints, and the GGUF
 * types the prompt-expand dequantiser knows. ISO_EDATA for a type it cannot
 * convert (the message names the tensor and the type). */
int weights_to_f32(const struct wt_tensor *t, uint64_t first, uint64_t nelem, float *dst);

/* The kernel may drop the pages of t (after an upload or a conversion):
 * madvise(MADV_DONTNEED) on the whole pages inside it. */
void weights_drop(const struct weights *w, const struct wt_tensor *t);

/* bytes of one element (0 for WT_GGML) and a printable name ("BF16") */
size_t wt_dtype_size(enum wt_dtype t);
const char *wt_dtype_name(enum wt_dtype t);

/* element conversions shared by every model */
float wt_bf16_to_f32(uint16_t h);
uint16_t wt_f32_to_bf16(float f);   /* round to nearest even, NaN kept */
float wt_f16_to_f32(uint16_t h);
uint16_t wt_f32_to_f16(float f);
float wt_e4m3_to_f32(uint8_t b);    /* float8_e4m3fn: no infinities, 0x7f/0xff NaN */
float wt_e5m2_to_f32(uint8_t b);
#endif
