/* safetensors.h — reader for the safetensors format (huggingface/
 * safetensors, "Format" section): an 8-byte little-endian header length N,
 * N bytes of UTF-8 JSON {"name": {"dtype", "shape", "data_offsets": [b, e]},
 * "__metadata__": {str: str}}, then the byte buffer; offsets are relative to
 * the buffer start. The file is mmapped read-only; every length, offset,
 * shape product and dtype size is checked (against overflow and the file
 * size) before use, and tensors must not overlap. The struct owns the
 * mapping and the tensor table; tensor data points into the mapping. */
#ifndef ISOPIPE_SAFETENSORS_H
#define ISOPIPE_SAFETENSORS_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum st_dtype {
    ST_BOOL = 0, ST_U8, ST_I8, ST_F8_E4M3, ST_F8_E5M2, ST_I16, ST_U16, ST_F16, ST_BF16,
    ST_I32, ST_U32, ST_F32, ST_I64, ST_U64, ST_F64, ST_N_DTYPES
};

#define ST_MAX_DIMS 8

struct st_tensor {
    char *name;
    enum st_dtype dtype;
    int n_dims;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t offset;         /* from the start of the file */
    uint64_t nbytes;
    const void *data;        /* into the mapping */
};

struct safetensors {
    const uint8_t *map; size_t size; int fd;
    uint64_t header_len;     /* N */
    uint64_t data_start;     /* 8 + N */
    uint64_t n_tensors;
    struct st_tensor *tensors; /* sorted by offset */
    json_t *metadata;        /* "__metadata__" object or NULL (owned) */
    uint64_t largest;        /* bytes of the largest tensor */
};

/* open + parse + validate: ISO_ENOINPUT missing, ISO_EDATA malformed (the
 * message says what and where) */
int st_open(const char *path, struct safetensors **out);
/* parse an in-memory buffer (tests, fuzzing); buf must outlive the struct */
int st_open_mem(const uint8_t *buf, size_t len, struct safetensors **out);
void st_close(struct safetensors **st);

const struct st_tensor *st_find(const struct safetensors *st, const char *name);
/* a metadata string or NULL */
const char *st_meta(const struct safetensors *st, const char *key);
size_t st_dtype_size(enum st_dtype t);
const char *st_dtype_name(enum st_dtype t);
/* "F16" -> ST_F16; -1 when unknown */
int st_dtype_parse(const char *s);
/* tell the kernel the bytes of t will not be read again soon (after an
 * upload): madvise(MADV_DONTNEED) on the whole pages inside it, so RSS
 * falls back (the file stays the backing store) */
void st_drop(const struct safetensors *st, const struct st_tensor *t);

#endif
