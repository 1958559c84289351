/* fuzz_ptckpt.c — libFuzzer target for the PyTorch checkpoint reader
 * (ptckpt_open_mem): the zip reader and the restricted pickle machine.
 * An input that starts with "PK" is a whole checkpoint; any other input is a
 * data.pkl, wrapped here in a well-formed zip with root "archive", a
 * byteorder record and four storages "0".."3" of 64 bytes, so the fuzzer
 * spends its time inside the pickle machine rather than failing zip checks.
 * Every accepted input must give ISO_EDATA/ISO_EUNAVAIL or tensors whose
 * every reachable element (through the strides) lies inside the buffer;
 * weights_to_f32 then reads them, so an escaped bound is an ASan report. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ptckpt.h"
#include "weights.h"

static volatile float sink;

struct zb { uint8_t *p; size_t n; };

static void put(struct zb *b, const void *d, size_t n) { memcpy(b->p + b->n, d, n); b->n += n; }
static void le(struct zb *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) b->p[b->n++] = (uint8_t)(v >> (8 * i));
}

/* a STORED zip of the named entries (APPNOTE 4.3.7 local headers, 4.3.12 central directory, 4.3.16 end) */
static uint8_t *make_zip(const char **names, const uint8_t **data, const size_t *len, int n, size_t *out_len)
{
    size_t total = 22;
    for (int i = 0; i < n; i++) total += 30 + 46 + 2 * strlen(names[i]) + len[i];
    struct zb b = { malloc(total), 0 };
    size_t off[8];
    for (int i = 0; i < n; i++) {
        off[i] = b.n;
        put(&b, "PK\3\4", 4); le(&b, 20, 2); le(&b, 0, 2); le(&b, 0, 2); le(&b, 0, 4); le(&b, 0, 4);
        le(&b, len[i], 4); le(&b, len[i], 4); le(&b, strlen(names[i]), 2); le(&b, 0, 2);
        put(&b, names[i], strlen(names[i]));
        put(&b, data[i], len[i]);
    }
    size_t cd = b.n;
    for (int i = 0; i < n; i++) {
        put(&b, "PK\1\2", 4); le(&b, 20, 2); le(&b, 20, 2); le(&b, 0, 2); le(&b, 0, 2); le(&b, 0, 4); le(&b, 0, 4);
        le(&b, len[i], 4); le(&b, len[i], 4); le(&b, strlen(names[i]), 2); le(&b, 0, 2); le(&b, 0, 2); le(&b, 0, 2);
        le(&b, 0, 2); le(&b, 0, 4); le(&b, off[i], 4);
        put(&b, names[i], strlen(names[i]));
    }
    put(&b, "PK\5\6", 4); le(&b, 0, 2); le(&b, 0, 2); le(&b, (uint64_t)n, 2); le(&b, (uint64_t)n, 2);
    le(&b, b.n - cd, 4); le(&b, cd, 4); le(&b, 0, 2);
    *out_len = b.n;
    return b.p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *zip = NULL;
    const uint8_t *buf = data;
    size_t len = size;
    if (size > (1u << 20)) return 0;
    if (size < 2 || data[0] != 'P' || data[1] != 'K') {
        static uint8_t st[64];
        for (int i = 0; i < 64; i++) st[i] = (uint8_t)(i * 37 + 11);
        const char *names[6] = { "archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/data/1",
                                 "archive/data/2", "archive/data/3" };
        const uint8_t *d[6] = { data, (const uint8_t *)"little", st, st, st, st };
        size_t l[6] = { size, 6, 64, 16, 8, 0 };
        zip = make_zip(names, d, l, 6, &len);
        buf = zip;
    }
    struct ptckpt *p = NULL;
    int rc = ptckpt_open_mem(buf, len, &p);
    if (rc) {
        if ((rc != ISO_EDATA && rc != ISO_EUNAVAIL) || p) abort();
        free(zip);
        return 0;
    }
    for (uint64_t i = 0; i < p->n_tensors; i++) {
        const struct pt_tensor *t = &p->tensors[i];
        if (!t->name || !t->storage || t->n_dims < 0 || t->n_dims > WT_MAX_DIMS || ptckpt_find(p, t->name) == NULL) abort();
        size_t es = wt_dtype_size(t->dtype);
        uint64_t n = 1, last = 0;
        for (int d = 0; d < t->n_dims; d++) {
            if (t->shape[d] < 0 || t->strides[d] < 0) abort();
            n *= (uint64_t)t->shape[d];
            if (t->shape[d]) last += (uint64_t)(t->shape[d] - 1) * (uint64_t)t->strides[d];
        }
        if (n != t->nelem || !es) abort();
        if (!n) continue;
        const uint8_t *d0 = t->data;
        if (d0 < buf || (last + 1) * es != t->nbytes || t->nbytes > (size_t)(buf + len - d0)) abort();
        /* read them: as wt_tensor through weights_to_f32 (at most 4096 elements) */
        struct wt_tensor w = { 0 };
        w.name = t->name;
        w.dtype = t->dtype;
        w.ggml_type = -1;
        w.n_dims = t->n_dims;
        memcpy(w.shape, t->shape, sizeof w.shape);
        memcpy(w.strides, t->strides, sizeof w.strides);
        w.contiguous = t->contiguous;
        w.nelem = t->nelem;
        w.nbytes = t->nbytes;
        w.data = t->data;
        float f[64];
        uint64_t todo = t->nelem < 4096 ? t->nelem : 4096;
        for (uint64_t k = 0; k < todo; k += 64) {
            uint64_t m = todo - k < 64 ? todo - k : 64;
            if (weights_to_f32(&w, t->nelem - todo + k, m, f) != 0) abort();
            sink += f[0];
        }
    }
    ptckpt_close(&p);
    if (p) abort();
    free(zip);
    return 0;
}
