/* gguf.h — reader for GGUF model files (llama.cpp's format; v3, and v2 which
 * has the same layout), mmapped. Layout (ggml docs/gguf.md): magic "GGUF",
 * u32 version, u64 tensor count, u64 metadata kv count, the kv pairs, the
 * tensor infos, then padding to general.alignment (default 32) and the tensor
 * data. Every offset, count and size read from the file is checked against
 * the file size before use; malformed files give ISO_EDATA with a message.
 * Strings and arrays point into the mapping (not NUL-terminated: use the len
 * fields); element access of string arrays and arrays of arrays is O(1)
 * (offsets precomputed at open). Keys and tensor names are hashed. The
 * struct gguf owns the mapping and every table; gguf_close frees them. */
#ifndef ISOPIPE_GGUF_H
#define ISOPIPE_GGUF_H
#include <stddef.h>
#include <stdint.h>

enum gguf_vtype {
    GGUF_T_UINT8 = 0, GGUF_T_INT8 = 1, GGUF_T_UINT16 = 2, GGUF_T_INT16 = 3, GGUF_T_UINT32 = 4,
    GGUF_T_INT32 = 5, GGUF_T_FLOAT32 = 6, GGUF_T_BOOL = 7, GGUF_T_STRING = 8, GGUF_T_ARRAY = 9,
    GGUF_T_UINT64 = 10, GGUF_T_INT64 = 11, GGUF_T_FLOAT64 = 12,
};

/* ggml tensor types (ggml.h numbering) */
enum ggml_type {
    GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1, GGML_TYPE_Q4_0 = 2, GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6, GGML_TYPE_Q5_1 = 7, GGML_TYPE_Q8_0 = 8, GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10, GGML_TYPE_Q3_K = 11, GGML_TYPE_Q4_K = 12, GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14, GGML_TYPE_Q8_K = 15, GGML_TYPE_BF16 = 30,
};

struct gguf_str { uint64_t len; const char *s; };

struct gguf_value {
    enum gguf_vtype type;
    union {
        uint64_t u; int64_t i; double f; int b;
        struct gguf_str str;
        struct {
            enum gguf_vtype type; uint64_t n;
            const uint8_t *data;          /* raw, in file */
            const uint64_t *off;          /* string/array elements: byte offset of element i from data
                                             (precomputed at open, so element access is O(1)) */
            const struct gguf_value *sub; /* array-of-arrays: element i parsed (NULL otherwise) */
        } arr;
    } v;
};

struct gguf_kv { struct gguf_str key; struct gguf_value val; };

struct gguf_tensor {
    struct gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];        /* ne[0] is the fastest-varying (row length) */
    enum ggml_type type;
    uint64_t offset;       /* relative to the data section */
    uint64_t nbytes;
    const void *data;      /* into the mapping */
};

struct gguf {
    const uint8_t *map; size_t size; int fd;   /* fd -1 and map not owned for gguf_open_mem */
    uint32_t version;
    uint64_t n_kv, n_tensors;
    struct gguf_kv *kv;
    struct gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;
    uint32_t *kv_hash, *tensor_hash;   /* open-addressing tables (index + 1, 0 = empty) */
    uint64_t kv_hcap, tensor_hcap;
};

/* open + parse + validate (ISO_ENOINPUT missing, ISO_EDATA malformed) */
int gguf_open(const char *path, struct gguf **out);
/* parse an in-memory buffer (fuzzing); the buffer must outlive the struct */
int gguf_open_mem(const uint8_t *buf, size_t len, struct gguf **out);
void gguf_close(struct gguf **g);

const struct gguf_kv *gguf_find_kv(const struct gguf *g, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);
/* typed getters; return 0 and fill *out, or <0 when missing / wrong type */
int gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out);   /* any integer type */
int gguf_get_f64(const struct gguf *g, const char *key, double *out);     /* any number */
int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out);
/* array element access: element i of an array of strings / numbers */
int gguf_arr_str(const struct gguf_value *arr, uint64_t i, struct gguf_str *out);
int gguf_arr_f64(const struct gguf_value *arr, uint64_t i, double *out);
int gguf_arr_i64(const struct gguf_value *arr, uint64_t i, int64_t *out);
/* element i of an array of arrays (nested arrays, GGUF v3 allows any depth) */
int gguf_arr_arr(const struct gguf_value *arr, uint64_t i, const struct gguf_value **out);
/* a string key compared with a C string */
int gguf_str_eq(struct gguf_str s, const char *c);
/* a tensor's element count (ne[0] * ... * ne[n_dims-1]) */
uint64_t gguf_tensor_nelem(const struct gguf_tensor *t);

/* bytes per block and elements per block of a tensor type; 0 if unsupported */
size_t ggml_type_block_bytes(enum ggml_type t);
size_t ggml_type_block_elems(enum ggml_type t);
const char *ggml_type_name(enum ggml_type t);
#endif
