/* fuzz_gguf.c — libFuzzer target for the GGUF reader (gguf_open_mem). On
 * inputs it accepts, every accessor is exercised over everything it
 * parsed: each string of each (nested) array, each number, each tensor's
 * first and last data byte, and the hash lookups by name, so a bound the
 * parser forgot shows up as an ASan report on the fuzzer's own buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gguf.h"

static volatile uint64_t sink;

static void walk(const struct gguf_value *v, int depth)
{
    if (v->type == GGUF_T_STRING) {
        if (v->v.str.len) sink += (uint8_t)v->v.str.s[0] + (uint8_t)v->v.str.s[v->v.str.len - 1];
        return;
    }
    if (v->type != GGUF_T_ARRAY) return;
    if (depth > 16) abort();
    for (uint64_t i = 0; i < v->v.arr.n; i++) {
        struct gguf_str s;
        const struct gguf_value *sub;
        double f;
        int64_t x;
        if (gguf_arr_str(v, i, &s) == 0) { if (s.len) sink += (uint8_t)s.s[0] + (uint8_t)s.s[s.len - 1]; }
        else if (gguf_arr_arr(v, i, &sub) == 0) walk(sub, depth + 1);
        else if (gguf_arr_f64(v, i, &f) == 0) sink += (uint64_t)(f == f);
        if (gguf_arr_i64(v, i, &x) == 0) sink += (uint64_t)x;
    }
    struct gguf_str s;
    if (gguf_arr_str(v, v->v.arr.n, &s) == 0) abort();   /* one past the end must fail */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gguf *g = NULL;
    int rc = gguf_open_mem(data, size, &g);
    if (rc != 0) {
        if (g || (rc != ISO_EDATA && rc != ISO_EINTERNAL)) abort();
        return 0;
    }
    char name[256];
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct gguf_kv *kv = &g->kv[i];
        walk(&kv->val, 0);
        if (kv->key.len < sizeof name && !memchr(kv->key.s, 0, kv->key.len)) {
            memcpy(name, kv->key.s, kv->key.len);
            name[kv->key.len] = 0;
            if (gguf_find_kv(g, name) != kv) abort();
            uint64_t u; double f; struct gguf_str s;
            sink += (uint64_t)gguf_get_u64(g, name, &u) + (uint64_t)gguf_get_f64(g, name, &f) + (uint64_t)gguf_get_str(g, name, &s);
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct gguf_tensor *t = &g->tensors[i];
        if (t->nbytes != gguf_tensor_nelem(t) / ggml_type_block_elems(t->type) * ggml_type_block_bytes(t->type)) abort();
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) abort();
        if (t->nbytes) sink += p[0] + p[t->nbytes - 1];
        if (t->name.len < sizeof name && !memchr(t->name.s, 0, t->name.len)) {
            memcpy(name, t->name.s, t->name.len);
            name[t->name.len] = 0;
            if (gguf_find_tensor(g, name) != t) abort();
        }
    }
    gguf_close(&g);
    return 0;
}
