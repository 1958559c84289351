/* gguf.c — GGUF v2/v3 reader (ggml docs/gguf.md). The whole file is
 * mmapped; the parser walks it with a bounds-checked cursor, so every length,
 * count and offset is compared with the bytes that remain before it is used.
 * Counts read from the file only ever size allocations after they have been
 * bounded by the bytes left (each element takes at least one byte), so an
 * absurd count is a clean ISO_EDATA, never a huge malloc. */
#include "gguf.h"
#include "err.h"
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAX_DEPTH 8          /* nesting of arrays of arrays */
#define GGUF_DEFAULT_ALIGNMENT 32

struct cur { const uint8_t *p; size_t left; };

static int take(struct cur *c, size_t n, const uint8_t **out)
{
    if (n > c->left) return -1;
    *out = c->p;
    c->p += n; c->left -= n;
    return 0;
}
static int rd_u32(struct cur *c, uint32_t *v)
{
    const uint8_t *p;
    if (take(c, 4, &p)) return -1;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return 0;
}
static int rd_u64(struct cur *c, uint64_t *v)
{
    uint32_t lo, hi;
    if (rd_u32(c, &lo) || rd_u32(c, &hi)) return -1;
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}
static int rd_str(struct cur *c, struct gguf_str *s)
{
    const uint8_t *p;
    if (rd_u64(c, &s->len) || s->len > c->left || take(c, (size_t)s->len, &p)) return -1;
    s->s = (const char *)p;
    return 0;
}

static uint64_t le_u(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* size in bytes of a fixed-size value type; 0 for string/array/unknown */
static size_t vtype_size(uint32_t t)
{
    switch (t) {
    case GGUF_T_UINT8: case GGUF_T_INT8: case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16: case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32: case GGUF_T_INT32: case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64: case GGUF_T_INT64: case GGUF_T_FLOAT64: return 8;
    default: return 0;
    }
}

/* decode a fixed-size scalar at p into v */
static void scalar_at(uint32_t t, const uint8_t *p, struct gguf_value *v)
{
    v->type = (enum gguf_vtype)t;
    switch (t) {
    case GGUF_T_UINT8: v->v.u = p[0]; break;
    case GGUF_T_INT8: v->v.i = (int8_t)p[0]; break;
    case GGUF_T_BOOL: v->v.b = p[0] != 0; break;
    case GGUF_T_UINT16: v->v.u = le_u(p, 2); break;
    case GGUF_T_INT16: v->v.i = (int16_t)le_u(p, 2); break;
    case GGUF_T_UINT32: v->v.u = le_u(p, 4); break;
    case GGUF_T_INT32: v->v.i = (int32_t)le_u(p, 4); break;
    case GGUF_T_UINT64: v->v.u = le_u(p, 8); break;
    case GGUF_T_INT64: v->v.i = (int64_t)le_u(p, 8); break;
    case GGUF_T_FLOAT32: { uint32_t u = (uint32_t)le_u(p, 4); float f; memcpy(&f, &u, 4); v->v.f = f; break; }
    case GGUF_T_FLOAT64: { uint64_t u = le_u(p, 8); double d; memcpy(&d, &u, 8); v->v.f = d; break; }
    default: break;
    }
}

static void value_free(struct gguf_value *v)
{
    if (v->type != GGUF_T_ARRAY) return;
    struct gguf_value *sub = (struct gguf_value *)v->v.arr.sub;
    if (sub)
        for (uint64_t i = 0; i < v->v.arr.n; i++) value_free(&sub[i]);
    free(sub);
    free((void *)v->v.arr.off);
    v->v.arr.sub = NULL;
    v->v.arr.off = NULL;
}

/* GGUF: a value is a scalar, a string (u64 len + bytes) or an array
 * (u32 element type, u64 count, elements); arrays may nest. */
static int parse_value(struct cur *c, uint32_t type, struct gguf_value *v, int depth)
{
    memset(v, 0, sizeof *v);
    v->type = (enum gguf_vtype)type;
    size_t sz = vtype_size(type);
    if (sz) {
        const uint8_t *p;
        if (take(c, sz, &p)) return iso_fail(ISO_EDATA, "truncated value");
        scalar_at(type, p, v);
        return 0;
    }
    if (type == GGUF_T_STRING) {
        if (rd_str(c, &v->v.str)) return iso_fail(ISO_EDATA, "truncated string");
        return 0;
    }
    if (type != GGUF_T_ARRAY) return iso_fail(ISO_EDATA, "unknown value type %u", type);
    if (depth >= GGUF_MAX_DEPTH) return iso_fail(ISO_EDATA, "arrays nested deeper than %d", GGUF_MAX_DEPTH);
    uint32_t et;
    uint64_t n;
    if (rd_u32(c, &et) || rd_u64(c, &n)) return iso_fail(ISO_EDATA, "truncated array header");
    v->v.arr.type = (enum gguf_vtype)et;
    v->v.arr.n = n;
    v->v.arr.data = c->p;
    size_t esz = vtype_size(et);
    if (esz) {
        if (n > c->left / esz) return iso_fail(ISO_EDATA, "array of %llu elements overruns the file", (unsigned long long)n);
        c->p += n * esz; c->left -= n * esz;
        return 0;
    }
    /* strings take >= 8 bytes, arrays >= 12: bounding n by the bytes left
     * keeps the offset table no bigger than the file */
    size_t min_el = et == GGUF_T_STRING ? 8 : et == GGUF_T_ARRAY ? 12 : 0;
    if (!min_el) return iso_fail(ISO_EDATA, "unknown array element type %u", et);
    if (n > c->left / min_el) return iso_fail(ISO_EDATA, "array of %llu elements overruns the file", (unsigned long long)n);
    uint64_t *off = malloc((n ? n : 1) * sizeof *off);
    if (!off) return iso_fail(ISO_EINTERNAL, "out of memory");
    v->v.arr.off = off;
    struct gguf_value *sub = NULL;
    if (et == GGUF_T_ARRAY) {
        sub = calloc(n ? n : 1, sizeof *sub);
        if (!sub) return iso_fail(ISO_EINTERNAL, "out of memory");
        v->v.arr.sub = sub;
    }
    for (uint64_t i = 0; i < n; i++) {
        off[i] = (uint64_t)(c->p - v->v.arr.data);
        if (et == GGUF_T_STRING) {
            struct gguf_str s;
            if (rd_str(c, &s)) return iso_fail(ISO_EDATA, "truncated string in array");
        } else {
            int rc = parse_value(c, GGUF_T_ARRAY, &sub[i], depth + 1);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

size_t ggml_type_block_bytes(enum ggml_type t)
{
    switch (t) {
    case GGML_TYPE_F32: return 4;
    case GGML_TYPE_F16: case GGML_TYPE_BF16: return 2;
    case GGML_TYPE_Q4_0: return 2 + 16;
    case GGML_TYPE_Q4_1: return 4 + 16;
    case GGML_TYPE_Q5_0: return 2 + 4 + 16;
    case GGML_TYPE_Q5_1: return 4 + 4 + 16;
    case GGML_TYPE_Q8_0: return 2 + 32;
    case GGML_TYPE_Q8_1: return 4 + 32;
    case GGML_TYPE_Q2_K: return 16 + 64 + 4;
    case GGML_TYPE_Q3_K: return 32 + 64 + 12 + 2;
    case GGML_TYPE_Q4_K: return 4 + 12 + 128;
    case GGML_TYPE_Q5_K: return 4 + 12 + 32 + 128;
    case GGML_TYPE_Q6_K: return 128 + 64 + 16 + 2;
    case GGML_TYPE_Q8_K: return 4 + 256 + 32;
    }
    return 0;
}

size_t ggml_type_block_elems(enum ggml_type t)
{
    switch (t) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16: return 1;
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1:
    case GGML_TYPE_Q8_0: case GGML_TYPE_Q8_1: return 32;
    case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K:
    case GGML_TYPE_Q6_K: case GGML_TYPE_Q8_K: return 256;
    }
    return 0;
}

const char *ggml_type_name(enum ggml_type t)
{
    switch (t) {
    case GGML_TYPE_F32: return "F32";
    case GGML_TYPE_F16: return "F16";
    case GGML_TYPE_BF16: return "BF16";
    case GGML_TYPE_Q4_0: return "Q4_0";
    case GGML_TYPE_Q4_1: return "Q4_1";
    case GGML_TYPE_Q5_0: return "Q5_0";
    case GGML_TYPE_Q5_1: return "Q5_1";
    case GGML_TYPE_Q8_0: return "Q8_0";
    case GGML_TYPE_Q8_1: return "Q8_1";
    case GGML_TYPE_Q2_K: return "Q2_K";
    case GGML_TYPE_Q3_K: return "Q3_K";
    case GGML_TYPE_Q4_K: return "Q4_K";
    case GGML_TYPE_Q5_K: return "Q5_K";
    case GGML_TYPE_Q6_K: return "Q6_K";
    case GGML_TYPE_Q8_K: return "Q8_K";
    }
    return "unknown";
}

int gguf_str_eq(struct gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && memcmp(s.s, c, n) == 0;
}

uint64_t gguf_tensor_nelem(const struct gguf_tensor *t)
{
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= t->ne[d];
    return n;
}

/* FNV-1a over the bytes of a name, for the lookup tables */
static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* Builds an open-addressing table of n names (capacity a power of two >= 2n);
 * returns 1 when a name occurs twice (GGUF forbids duplicate keys and
 * tensor names), 0 ok, <0 out of memory. */
static int build_hash(uint64_t n, const struct gguf_str *(*name_of)(const struct gguf *, uint64_t),
                      const struct gguf *g, uint32_t **tab, uint64_t *cap, uint64_t *dup)
{
    uint64_t c = 16;
    while (c < 2 * n) c <<= 1;
    uint32_t *t = calloc(c, sizeof *t);
    if (!t) return -1;
    *tab = t; *cap = c;
    for (uint64_t i = 0; i < n; i++) {
        const struct gguf_str *s = name_of(g, i);
        uint64_t h = hash_bytes(s->s, s->len) & (c - 1);
        while (t[h]) {
            const struct gguf_str *o = name_of(g, t[h] - 1);
            if (o->len == s->len && memcmp(o->s, s->s, s->len) == 0) { *dup = i; return 1; }
            h = (h + 1) & (c - 1);
        }
        t[h] = (uint32_t)(i + 1);
    }
    return 0;
}
static const struct gguf_str *kv_name(const struct gguf *g, uint64_t i) { return &g->kv[i].key; }
static const struct gguf_str *tensor_name(const struct gguf *g, uint64_t i) { return &g->tensors[i].name; }

static int64_t lookup(const uint32_t *tab, uint64_t cap, const struct gguf *g,
                      const struct gguf_str *(*name_of)(const struct gguf *, uint64_t), const char *name)
{
    if (!tab) return -1;
    size_t n = strlen(name);
    uint64_t h = hash_bytes(name, n) & (cap - 1);
    while (tab[h]) {
        const struct gguf_str *o = name_of(g, tab[h] - 1);
        if (o->len == n && memcmp(o->s, name, n) == 0) return tab[h] - 1;
        h = (h + 1) & (cap - 1);
    }
    return -1;
}

static int parse(struct gguf *g)
{
    struct cur c = { g->map, g->size };
    const uint8_t *magic;
    uint64_t dup = 0;
    int rc;
    if (take(&c, 4, &magic) || memcmp(magic, "GGUF", 4) != 0)
        return iso_fail(ISO_EDATA, "not a GGUF file (bad magic)");
    if (rd_u32(&c, &g->version)) return iso_fail(ISO_EDATA, "truncated header");
    /* v1 used 32-bit counts; v2 and v3 share this layout (v3 only adds big-endian files, which
     * announce themselves with a byte-swapped version and are rejected here) */
    if (g->version != 2 && g->version != 3)
        return iso_fail(ISO_EDATA, "unsupported GGUF version %u (want 2 or 3)", g->version);
    if (rd_u64(&c, &g->n_tensors) || rd_u64(&c, &g->n_kv)) return iso_fail(ISO_EDATA, "truncated header");
    /* a kv takes >= 8+4+1 bytes, a tensor info >= 8+4+8+4+8 */
    if (g->n_kv > c.left / 13) return iso_fail(ISO_EDATA, "absurd metadata count %llu", (unsigned long long)g->n_kv);
    if (g->n_tensors > c.left / 32 || g->n_tensors > UINT32_MAX / 2)
        return iso_fail(ISO_EDATA, "absurd tensor count %llu", (unsigned long long)g->n_tensors);
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    if (!g->kv) return iso_fail(ISO_EINTERNAL, "out of memory");
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    /* GGUF §"key-value pairs": key string, u32 value type, value */
    for (uint64_t i = 0; i < g->n_kv; i++) {
        struct gguf_kv *kv = &g->kv[i];
        uint32_t t;
        if (rd_str(&c, &kv->key) || rd_u32(&c, &t))
            return iso_fail(ISO_EDATA, "truncated metadata entry %llu", (unsigned long long)i);
        if ((rc = parse_value(&c, t, &kv->val, 0)) < 0)
            return iso_wrap(rc, "metadata '%.*s'", (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.s);
        if (gguf_str_eq(kv->key, "general.alignment")) {
            uint64_t a;
            if (kv->val.type != GGUF_T_UINT32) return iso_fail(ISO_EDATA, "general.alignment is not a u32");
            a = kv->val.v.u;
            if (a == 0 || (a & (a - 1))) return iso_fail(ISO_EDATA, "general.alignment %llu is not a power of two", (unsigned long long)a);
            g->alignment = a;
        }
    }
    rc = build_hash(g->n_kv, kv_name, g, &g->kv_hash, &g->kv_hcap, &dup);
    if (rc < 0) return iso_fail(ISO_EINTERNAL, "out of memory");
    if (rc > 0) return iso_fail(ISO_EDATA, "duplicate metadata key '%.*s'", (int)(g->kv[dup].key.len > 200 ? 200 : g->kv[dup].key.len), g->kv[dup].key.s);

    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->tensors) return iso_fail(ISO_EINTERNAL, "out of memory");
    /* GGUF §"tensor infos": name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset */
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct gguf_tensor *t = &g->tensors[i];
        uint32_t type;
        if (rd_str(&c, &t->name) || rd_u32(&c, &t->n_dims))
            return iso_fail(ISO_EDATA, "truncated tensor info %llu", (unsigned long long)i);
        int nl = (int)(t->name.len > 200 ? 200 : t->name.len);
        if (t->n_dims < 1 || t->n_dims > 4)
            return iso_fail(ISO_EDATA, "tensor '%.*s': %u dimensions (want 1..4)", nl, t->name.s, t->n_dims);
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        uint64_t nelem = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if (rd_u64(&c, &t->ne[d])) return iso_fail(ISO_EDATA, "truncated tensor info '%.*s'", nl, t->name.s);
            if (t->ne[d] == 0 || t->ne[d] > INT64_MAX || nelem > INT64_MAX / t->ne[d])
                return iso_fail(ISO_EDATA, "tensor '%.*s': absurd dimension %llu", nl, t->name.s, (unsigned long long)t->ne[d]);
            nelem *= t->ne[d];
        }
        if (rd_u32(&c, &type) || rd_u64(&c, &t->offset))
            return iso_fail(ISO_EDATA, "truncated tensor info '%.*s'", nl, t->name.s);
        t->type = (enum ggml_type)type;
        size_t bb = ggml_type_block_bytes(t->type), be = ggml_type_block_elems(t->type);
        if (!bb) return iso_fail(ISO_EDATA, "tensor '%.*s': unsupported tensor type %u", nl, t->name.s, type);
        if (t->ne[0] % be)
            return iso_fail(ISO_EDATA, "tensor '%.*s': row of %llu is not a multiple of the %s block (%zu)",
                            nl, t->name.s, (unsigned long long)t->ne[0], ggml_type_name(t->type), be);
        uint64_t nblocks = nelem / be;
        if (nblocks > UINT64_MAX / bb) return iso_fail(ISO_EDATA, "tensor '%.*s': size overflows", nl, t->name.s);
        t->nbytes = nblocks * bb;
        if (t->offset % g->alignment)
            return iso_fail(ISO_EDATA, "tensor '%.*s': offset %llu is not aligned to %llu", nl, t->name.s,
                            (unsigned long long)t->offset, (unsigned long long)g->alignment);
    }
    rc = build_hash(g->n_tensors, tensor_name, g, &g->tensor_hash, &g->tensor_hcap, &dup);
    if (rc < 0) return iso_fail(ISO_EINTERNAL, "out of memory");
    if (rc > 0) return iso_fail(ISO_EDATA, "duplicate tensor name '%.*s'", (int)(g->tensors[dup].name.len > 200 ? 200 : g->tensors[dup].name.len), g->tensors[dup].name.s);

    /* GGUF: the data section starts at the next multiple of the alignment */
    uint64_t pos = (uint64_t)(c.p - g->map);
    uint64_t data = (pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors && data > g->size) return iso_fail(ISO_EDATA, "truncated before the tensor data");
    g->data_offset = data;
    uint64_t avail = g->size > data ? g->size - data : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct gguf_tensor *t = &g->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return iso_fail(ISO_EDATA, "tensor '%.*s': data [%llu, +%llu) lies beyond the end of the file (%llu data bytes)",
                            (int)(t->name.len > 200 ? 200 : t->name.len), t->name.s, (unsigned long long)t->offset,
                            (unsigned long long)t->nbytes, (unsigned long long)avail);
        t->data = g->map + data + t->offset;
    }
    return 0;
}

static void gguf_free(struct gguf *g)
{
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) value_free(&g->kv[i].val);
    free(g->kv);
    free(g->tensors);
    free(g->kv_hash);
    free(g->tensor_hash);
    if (g->fd >= 0) {
        if (g->map && g->size) munmap((void *)g->map, g->size);
        close(g->fd);
    }
    free(g);
}

int gguf_open_mem(const uint8_t *buf, size_t len, struct gguf **out)
{
    *out = NULL;
    struct gguf *g = calloc(1, sizeof *g);
    if (!g) return iso_fail(ISO_EINTERNAL, "out of memory");
    g->fd = -1;
    g->map = buf;
    g->size = len;
    int rc = parse(g);
    if (rc < 0) { gguf_free(g); return rc; }
    *out = g;
    return 0;
}

int gguf_open(const char *path, struct gguf **out)
{
    struct gguf *g = NULL;
    struct stat st;
    int rc = 0;
    *out = NULL;
    g = calloc(1, sizeof *g);
    if (!g) return iso_fail(ISO_EINTERNAL, "out of memory");
    if ((rc = fs_open_input(path, &g->fd))) goto done; /* a FIFO or device is refused, never waited on */
    if (fstat(g->fd, &st) < 0) { rc = iso_fail(ISO_EIO, "cannot stat '%s': %s", path, strerror(errno)); goto done; }
    if (!S_ISREG(st.st_mode)) { rc = iso_fail(ISO_EDATA, "cannot read '%s': not a regular file", path); goto done; }
    g->size = (size_t)st.st_size;
    if (g->size < 24) { rc = iso_fail(ISO_EDATA, "cannot read '%s': not a GGUF file (%zu bytes)", path, g->size); goto done; }
    void *m = mmap(NULL, g->size, PROT_READ, MAP_SHARED, g->fd, 0);
    if (m == MAP_FAILED) { rc = iso_fail(ISO_EIO, "cannot map '%s': %s", path, strerror(errno)); goto done; }
    g->map = m;
    rc = parse(g);
    if (rc < 0) { iso_wrap(rc, "cannot read '%s'", path); goto done; }
    *out = g;
    g = NULL;
done:
    if (g) gguf_free(g);
    return rc;
}

void gguf_close(struct gguf **g)
{
    if (!g || !*g) return;
    gguf_free(*g);
    *g = NULL;
}

const struct gguf_kv *gguf_find_kv(const struct gguf *g, const char *key)
{
    int64_t i = lookup(g->kv_hash, g->kv_hcap, g, kv_name, key);
    return i < 0 ? NULL : &g->kv[i];
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name)
{
    int64_t i = lookup(g->tensor_hash, g->tensor_hcap, g, tensor_name, name);
    return i < 0 ? NULL : &g->tensors[i];
}

static int value_u64(const struct gguf_value *v, uint64_t *out)
{
    switch (v->type) {
    case GGUF_T_UINT8: case GGUF_T_UINT16: case GGUF_T_UINT32: case GGUF_T_UINT64: *out = v->v.u; return 0;
    case GGUF_T_INT8: case GGUF_T_INT16: case GGUF_T_INT32: case GGUF_T_INT64:
        if (v->v.i < 0) return -1;
        *out = (uint64_t)v->v.i; return 0;
    case GGUF_T_BOOL: *out = (uint64_t)v->v.b; return 0;
    default: return -1;
    }
}

static int value_f64(const struct gguf_value *v, double *out)
{
    switch (v->type) {
    case GGUF_T_FLOAT32: case GGUF_T_FLOAT64: *out = v->v.f; return 0;
    case GGUF_T_UINT8: case GGUF_T_UINT16: case GGUF_T_UINT32: case GGUF_T_UINT64: *out = (double)v->v.u; return 0;
    case GGUF_T_INT8: case GGUF_T_INT16: case GGUF_T_INT32: case GGUF_T_INT64: *out = (double)v->v.i; return 0;
    case GGUF_T_BOOL: *out = v->v.b; return 0;
    default: return -1;
    }
}

int gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out)
{
    const struct gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv) return ISO_ENOINPUT;
    return value_u64(&kv->val, out) ? ISO_EDATA : 0;
}

int gguf_get_f64(const struct gguf *g, const char *key, double *out)
{
    const struct gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv) return ISO_ENOINPUT;
    return value_f64(&kv->val, out) ? ISO_EDATA : 0;
}

int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out)
{
    const struct gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv) return ISO_ENOINPUT;
    if (kv->val.type != GGUF_T_STRING) return ISO_EDATA;
    *out = kv->val.v.str;
    return 0;
}

int gguf_arr_str(const struct gguf_value *arr, uint64_t i, struct gguf_str *out)
{
    if (arr->type != GGUF_T_ARRAY || arr->v.arr.type != GGUF_T_STRING || i >= arr->v.arr.n) return ISO_EDATA;
    const uint8_t *p = arr->v.arr.data + arr->v.arr.off[i];
    out->len = le_u(p, 8);
    out->s = (const char *)p + 8;
    return 0;
}

static int arr_elem(const struct gguf_value *arr, uint64_t i, struct gguf_value *e)
{
    if (arr->type != GGUF_T_ARRAY || i >= arr->v.arr.n) return -1;
    size_t sz = vtype_size(arr->v.arr.type);
    if (!sz) return -1;
    memset(e, 0, sizeof *e);
    scalar_at(arr->v.arr.type, arr->v.arr.data + i * sz, e);
    return 0;
}

int gguf_arr_f64(const struct gguf_value *arr, uint64_t i, double *out)
{
    struct gguf_value e;
    if (arr_elem(arr, i, &e) || value_f64(&e, out)) return ISO_EDATA;
    return 0;
}

int gguf_arr_i64(const struct gguf_value *arr, uint64_t i, int64_t *out)
{
    struct gguf_value e;
    if (arr_elem(arr, i, &e)) return ISO_EDATA;
    switch (e.type) {
    case GGUF_T_UINT8: case GGUF_T_UINT16: case GGUF_T_UINT32: *out = (int64_t)e.v.u; return 0;
    case GGUF_T_UINT64: if (e.v.u > INT64_MAX) return ISO_EDATA; *out = (int64_t)e.v.u; return 0;
    case GGUF_T_INT8: case GGUF_T_INT16: case GGUF_T_INT32: case GGUF_T_INT64: *out = e.v.i; return 0;
    case GGUF_T_BOOL: *out = e.v.b; return 0;
    default: return ISO_EDATA;
    }
}

int gguf_arr_arr(const struct gguf_value *arr, uint64_t i, const struct gguf_value **out)
{
    if (arr->type != GGUF_T_ARRAY || arr->v.arr.type != GGUF_T_ARRAY || i >= arr->v.arr.n || !arr->v.arr.sub)
        return ISO_EDATA;
    *out = &arr->v.arr.sub[i];
    return 0;
}
