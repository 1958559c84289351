/* test_gguf.c — the GGUF reader on synthetic files written here, byte by
 * byte from the GGUF v3 description (ggml docs/gguf.md): every metadata value
 * type, nested arrays, a custom alignment, tensor infos; then damaged
 * variants (every truncation, bad offsets, absurd counts, unsupported
 * types, misalignment, duplicates) which must fail with ISO_EDATA, cleanly
 * (this file also runs under ASan/UBSan). */
#include "test.h"
#include "err.h"
#include "fs.h"
#include "gguf.h"

#include <stdint.h>

struct buf { uint8_t *p; size_t n, cap; };

static void put(struct buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void u8(struct buf *b, uint8_t v) { put(b, &v, 1); }
static void u16(struct buf *b, uint16_t v) { u8(b, v & 0xff); u8(b, v >> 8); }
static void u32(struct buf *b, uint32_t v) { u16(b, v & 0xffff); u16(b, v >> 16); }
static void u64(struct buf *b, uint64_t v) { u32(b, (uint32_t)v); u32(b, (uint32_t)(v >> 32)); }
static void str(struct buf *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void f32(struct buf *b, float f) { uint32_t u; memcpy(&u, &f, 4); u32(b, u); }
static void f64(struct buf *b, double f) { uint64_t u; memcpy(&u, &f, 8); u64(b, u); }
static void key(struct buf *b, const char *k, uint32_t type) { str(b, k); u32(b, type); }

/* offsets of interesting fields, for the damage tests */
struct layout { size_t n_tensors_at, n_kv_at, arr_count_at, t1_type_at, t1_offset_at, t0_dim0_at, align; };

/* A file with 15 kv pairs and 2 tensors: "attn" (Q8_0, 64 x 2) and "norm" (F32, 64). */
static struct buf make_file(struct layout *L, uint64_t alignment)
{
    struct buf b = {0};
    put(&b, "GGUF", 4);
    u32(&b, 3);
    L->n_tensors_at = b.n; u64(&b, 2);
    L->n_kv_at = b.n; u64(&b, 15);
    key(&b, "general.architecture", GGUF_T_STRING); str(&b, "llama");
    key(&b, "general.alignment", GGUF_T_UINT32); u32(&b, (uint32_t)alignment);
    key(&b, "t.u8", GGUF_T_UINT8); u8(&b, 200);
    key(&b, "t.i8", GGUF_T_INT8); u8(&b, (uint8_t)-5);
    key(&b, "t.u16", GGUF_T_UINT16); u16(&b, 60000);
    key(&b, "t.i16", GGUF_T_INT16); u16(&b, (uint16_t)-3000);
    key(&b, "t.u32", GGUF_T_UINT32); u32(&b, 4000000000u);
    key(&b, "t.i32", GGUF_T_INT32); u32(&b, (uint32_t)-70000);
    key(&b, "t.f32", GGUF_T_FLOAT32); f32(&b, 1.5f);
    key(&b, "t.bool", GGUF_T_BOOL); u8(&b, 1);
    key(&b, "t.u64", GGUF_T_UINT64); u64(&b, 1ull << 40);
    key(&b, "t.i64", GGUF_T_INT64); u64(&b, (uint64_t)-(1ll << 40));
    key(&b, "t.f64", GGUF_T_FLOAT64); f64(&b, -2.25);
    key(&b, "t.strs", GGUF_T_ARRAY); u32(&b, GGUF_T_STRING);
    L->arr_count_at = b.n; u64(&b, 3); str(&b, "a"); str(&b, ""); str(&b, "h\xc3\xa9llo");
    /* [[1, 2], ["x"], []] : an array of arrays of different element types */
    key(&b, "t.nested", GGUF_T_ARRAY); u32(&b, GGUF_T_ARRAY); u64(&b, 3);
    u32(&b, GGUF_T_INT16); u64(&b, 2); u16(&b, 1); u16(&b, (uint16_t)-2);
    u32(&b, GGUF_T_STRING); u64(&b, 1); str(&b, "x");
    u32(&b, GGUF_T_FLOAT32); u64(&b, 0);
    /* tensor infos */
    str(&b, "attn"); u32(&b, 2);
    L->t0_dim0_at = b.n; u64(&b, 64); u64(&b, 2);
    u32(&b, GGML_TYPE_Q8_0); u64(&b, 0);
    uint64_t w_bytes = 2 * 2 * 34;                       /* 2 rows of 2 blocks */
    uint64_t norm_off = (w_bytes + alignment - 1) / alignment * alignment;
    str(&b, "norm"); u32(&b, 1); u64(&b, 64);
    L->t1_type_at = b.n; u32(&b, GGML_TYPE_F32);
    L->t1_offset_at = b.n; u64(&b, norm_off);
    while (b.n % alignment) u8(&b, 0);
    L->align = b.n;
    for (uint64_t i = 0; i < norm_off; i++) u8(&b, (uint8_t)i);
    for (int i = 0; i < 64; i++) f32(&b, (float)i * 0.5f);
    return b;
}

static void patch_u64(struct buf *b, size_t at, uint64_t v) { for (int i = 0; i < 8; i++) b->p[at + i] = (uint8_t)(v >> (8 * i)); }
static void patch_u32(struct buf *b, size_t at, uint32_t v) { for (int i = 0; i < 4; i++) b->p[at + i] = (uint8_t)(v >> (8 * i)); }

static int open_fails_data(const struct buf *b, const char *what)
{
    struct gguf *g = NULL;
    int rc = gguf_open_mem(b->p, b->n, &g);
    if (rc != ISO_EDATA) printf("# %s: rc %d (%s)\n", what, rc, rc ? iso_errmsg() : "opened");
    gguf_close(&g);
    return rc == ISO_EDATA;
}

static void test_values(void)
{
    TEST("all value types, nested arrays, alignment, tensor infos");
    struct layout L;
    struct buf b = make_file(&L, 64);
    struct gguf *g = NULL;
    int rc = gguf_open_mem(b.p, b.n, &g);
    CHECKF(rc == 0, "%s", iso_errmsg());
    if (rc) { free(b.p); return; }
    uint64_t u; double f; struct gguf_str s; int64_t i64;
    CHECK(g->version == 3 && g->n_kv == 15 && g->n_tensors == 2 && g->alignment == 64);
    CHECK(gguf_get_str(g, "general.architecture", &s) == 0 && gguf_str_eq(s, "llama"));
    CHECK(gguf_get_u64(g, "t.u8", &u) == 0 && u == 200);
    CHECK(gguf_find_kv(g, "t.i8")->val.v.i == -5);
    CHECK(gguf_get_u64(g, "t.i8", &u) < 0);                 /* negative: not a u64 */
    CHECK(gguf_get_u64(g, "t.u16", &u) == 0 && u == 60000);
    CHECK(gguf_get_f64(g, "t.i16", &f) == 0 && f == -3000);
    CHECK(gguf_get_u64(g, "t.u32", &u) == 0 && u == 4000000000u);
    CHECK(gguf_get_f64(g, "t.i32", &f) == 0 && f == -70000);
    CHECK(gguf_get_f64(g, "t.f32", &f) == 0 && f == 1.5);
    CHECK(gguf_get_u64(g, "t.bool", &u) == 0 && u == 1 && gguf_find_kv(g, "t.bool")->val.type == GGUF_T_BOOL);
    CHECK(gguf_get_u64(g, "t.u64", &u) == 0 && u == 1ull << 40);
    CHECK(gguf_find_kv(g, "t.i64")->val.v.i == -(1ll << 40));
    CHECK(gguf_get_f64(g, "t.f64", &f) == 0 && f == -2.25);
    CHECK(gguf_get_str(g, "t.u8", &s) == ISO_EDATA);       /* wrong type */
    CHECK(gguf_get_u64(g, "missing", &u) == ISO_ENOINPUT);
    CHECK(gguf_get_f64(g, "general.architecture", &f) < 0);
    const struct gguf_kv *kv = gguf_find_kv(g, "t.strs");
    CHECK(kv && kv->val.type == GGUF_T_ARRAY && kv->val.v.arr.n == 3);
    CHECK(gguf_arr_str(&kv->val, 0, &s) == 0 && gguf_str_eq(s, "a"));
    CHECK(gguf_arr_str(&kv->val, 1, &s) == 0 && s.len == 0);
    CHECK(gguf_arr_str(&kv->val, 2, &s) == 0 && gguf_str_eq(s, "h\xc3\xa9llo"));
    CHECK(gguf_arr_str(&kv->val, 3, &s) == ISO_EDATA);
    CHECK(gguf_arr_i64(&kv->val, 0, &i64) == ISO_EDATA);
    kv = gguf_find_kv(g, "t.nested");
    const struct gguf_value *e;
    CHECK(kv && kv->val.v.arr.n == 3 && kv->val.v.arr.type == GGUF_T_ARRAY);
    CHECK(gguf_arr_arr(&kv->val, 0, &e) == 0 && e->v.arr.n == 2 && gguf_arr_i64(e, 1, &i64) == 0 && i64 == -2);
    CHECK(gguf_arr_arr(&kv->val, 0, &e) == 0 && gguf_arr_f64(e, 0, &f) == 0 && f == 1);
    CHECK(gguf_arr_arr(&kv->val, 1, &e) == 0 && gguf_arr_str(e, 0, &s) == 0 && gguf_str_eq(s, "x"));
    CHECK(gguf_arr_arr(&kv->val, 2, &e) == 0 && e->v.arr.n == 0 && gguf_arr_f64(e, 0, &f) == ISO_EDATA);
    CHECK(gguf_arr_arr(&kv->val, 3, &e) == ISO_EDATA);
    const struct gguf_tensor *t = gguf_find_tensor(g, "attn");
    CHECK(t && t->type == GGML_TYPE_Q8_0 && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 2 && t->nbytes == 136);
    CHECK(t && (const uint8_t *)t->data == b.p + L.align);
    t = gguf_find_tensor(g, "norm");
    CHECK(t && t->type == GGML_TYPE_F32 && t->nbytes == 256 && t->offset == 192);
    CHECK(t && ((uintptr_t)((const uint8_t *)t->data - b.p)) % 64 == 0);
    if (t) { float v; memcpy(&v, (const uint8_t *)t->data + 4 * 10, 4); CHECK(v == 5.0f); }
    CHECK(gguf_find_tensor(g, "nope") == NULL);
    CHECK(g->data_offset == L.align && g->data_offset % 64 == 0);
    CHECK(ggml_type_block_bytes(GGML_TYPE_Q4_K) == 144 && ggml_type_block_bytes(GGML_TYPE_Q6_K) == 210 &&
          ggml_type_block_bytes(GGML_TYPE_Q5_K) == 176 && ggml_type_block_bytes(GGML_TYPE_Q4_1) == 20 &&
          ggml_type_block_elems(GGML_TYPE_Q5_1) == 32 && ggml_type_block_bytes((enum ggml_type)4) == 0);
    gguf_close(&g);
    CHECK(g == NULL);

    /* the same through a real file and mmap */
    char *dir = test_tmpdir(), *path = fs_join(dir, "m.gguf");
    FILE *fp = fopen(path, "wb");
    fwrite(b.p, 1, b.n, fp);
    fclose(fp);
    CHECK(gguf_open(path, &g) == 0 && g && g->n_tensors == 2);
    gguf_close(&g);
    char *missing = fs_join(dir, "none.gguf");
    CHECK(gguf_open(missing, &g) == ISO_ENOINPUT && strstr(iso_errmsg(), "none.gguf"));
    fp = fopen(path, "wb");
    fwrite(b.p, 1, 30, fp);
    fclose(fp);
    CHECK(gguf_open(path, &g) == ISO_EDATA && strstr(iso_errmsg(), "m.gguf"));
    free(missing);
    free(path);
    fs_rm_rf(dir);
    free(b.p);
}

static void test_damage(void)
{
    TEST("truncations and damaged fields fail cleanly with ISO_EDATA");
    struct layout L;
    struct buf b = make_file(&L, 32);
    int all = 1;
    /* every prefix shorter than the end of the last tensor must be refused */
    for (size_t n = 0; n < b.n; n++) {
        struct buf t = { b.p, n, n };
        if (!open_fails_data(&t, "truncated")) { all = 0; printf("# truncated at %zu opened\n", n); break; }
    }
    CHECK(all);
    struct buf c = { malloc(b.n), b.n, b.n };
#define DAMAGED(what, stmt) do { memcpy(c.p, b.p, b.n); stmt; CHECK(open_fails_data(&c, what)); } while (0)
    DAMAGED("bad magic", c.p[0] = 'X');
    DAMAGED("version 1", patch_u32(&c, 4, 1));
    DAMAGED("version 99", patch_u32(&c, 4, 99));
    DAMAGED("absurd tensor count", patch_u64(&c, L.n_tensors_at, 1ull << 60));
    DAMAGED("absurd kv count", patch_u64(&c, L.n_kv_at, UINT64_MAX));
    DAMAGED("absurd array count", patch_u64(&c, L.arr_count_at, 1ull << 62));
    DAMAGED("unsupported tensor type", patch_u32(&c, L.t1_type_at, 4));   /* Q4_2, removed from ggml */
    DAMAGED("unknown tensor type", patch_u32(&c, L.t1_type_at, 1000));
    DAMAGED("offset beyond the file", patch_u64(&c, L.t1_offset_at, 1u << 20));
    DAMAGED("offset overflowing", patch_u64(&c, L.t1_offset_at, UINT64_MAX - 31));
    DAMAGED("misaligned offset", patch_u64(&c, L.t1_offset_at, 8));
    DAMAGED("row not a multiple of the block", patch_u64(&c, L.t0_dim0_at, 48));
    DAMAGED("zero dimension", patch_u64(&c, L.t0_dim0_at, 0));
    DAMAGED("absurd dimension", patch_u64(&c, L.t0_dim0_at, 1ull << 63));
    DAMAGED("duplicate tensor name", memcpy(c.p + L.t1_type_at - 8 - 4 - 4, "attn", 4));
    free(c.p);
    free(b.p);

    /* duplicate keys, bad alignment, unknown value type, arrays nested too deep */
    struct buf d = {0};
    put(&d, "GGUF", 4); u32(&d, 3); u64(&d, 0); u64(&d, 2);
    key(&d, "k", GGUF_T_UINT8); u8(&d, 1);
    key(&d, "k", GGUF_T_UINT8); u8(&d, 2);
    CHECK(open_fails_data(&d, "duplicate key"));
    d.n = 0;
    put(&d, "GGUF", 4); u32(&d, 3); u64(&d, 0); u64(&d, 1);
    key(&d, "general.alignment", GGUF_T_UINT32); u32(&d, 48);
    CHECK(open_fails_data(&d, "alignment not a power of two"));
    d.n = 0;
    put(&d, "GGUF", 4); u32(&d, 3); u64(&d, 0); u64(&d, 1);
    key(&d, "k", 13); u64(&d, 0);
    CHECK(open_fails_data(&d, "unknown value type"));
    d.n = 0;
    put(&d, "GGUF", 4); u32(&d, 3); u64(&d, 0); u64(&d, 1);
    key(&d, "k", GGUF_T_ARRAY);
    for (int i = 0; i < 40; i++) { u32(&d, GGUF_T_ARRAY); u64(&d, 1); }
    u32(&d, GGUF_T_UINT8); u64(&d, 0);
    CHECK(open_fails_data(&d, "nesting"));
    d.n = 0;
    /* an empty but valid file: no kv, no tensors */
    put(&d, "GGUF", 4); u32(&d, 3); u64(&d, 0); u64(&d, 0);
    struct gguf *g = NULL;
    CHECK(gguf_open_mem(d.p, d.n, &g) == 0 && g && g->n_tensors == 0 && gguf_find_kv(g, "x") == NULL);
    gguf_close(&g);
    free(d.p);
}

/* a string array of many elements: element access must not walk the array */
static void test_big_array(void)
{
    TEST("string array element access is O(1) (100k strings)");
    struct buf b = {0};
    int n = 100000;
    put(&b, "GGUF", 4); u32(&b, 3); u64(&b, 0); u64(&b, 1);
    key(&b, "tokens", GGUF_T_ARRAY); u32(&b, GGUF_T_STRING); u64(&b, (uint64_t)n);
    char tmp[32];
    for (int i = 0; i < n; i++) { snprintf(tmp, sizeof tmp, "tok%d", i); str(&b, tmp); }
    struct gguf *g = NULL;
    CHECK(gguf_open_mem(b.p, b.n, &g) == 0);
    if (g) {
        const struct gguf_kv *kv = gguf_find_kv(g, "tokens");
        int okall = 1;
        struct gguf_str s;
        /* 100k lookups from the end: quadratic access would take minutes */
        for (int i = n - 1; i >= 0; i--) {
            snprintf(tmp, sizeof tmp, "tok%d", i);
            if (gguf_arr_str(&kv->val, (uint64_t)i, &s) || !gguf_str_eq(s, tmp)) { okall = 0; break; }
        }
        CHECK(okall);
    }
    gguf_close(&g);
    free(b.p);
}

static void test_real_model(void)
{
    TEST("the default model's header");
    const char *root = getenv("ISOPIPE_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", root ? root : ".");
    struct gguf *g = NULL;
    if (!fs_exists(path)) { TEST_SKIP("%s is absent (run make models)", path); return; }
    CHECKF(gguf_open(path, &g) == 0, "%s", iso_errmsg());
    if (!g) return;
    uint64_t u;
    struct gguf_str s;
    CHECK(g->n_tensors == 272 && g->version == 3);
    CHECK(gguf_get_str(g, "general.architecture", &s) == 0 && gguf_str_eq(s, "llama"));
    CHECK(gguf_get_u64(g, "llama.block_count", &u) == 0 && u == 30);
    const struct gguf_kv *kv = gguf_find_kv(g, "tokenizer.ggml.tokens");
    CHECK(kv && kv->val.v.arr.n == 49152 && gguf_arr_str(&kv->val, 1, &s) == 0 && gguf_str_eq(s, "<|im_start|>"));
    const struct gguf_tensor *t = gguf_find_tensor(g, "token_embd.weight");
    CHECK(t && t->type == GGML_TYPE_Q8_0 && t->ne[0] == 576 && t->ne[1] == 49152);
    t = gguf_find_tensor(g, "blk.29.ffn_down.weight");
    CHECK(t && t->type == GGML_TYPE_Q4_1 && t->ne[0] == 1536 && t->ne[1] == 576);
    gguf_close(&g);
}

int main(void)
{
    test_values();
    test_damage();
    test_big_array();
    test_real_model();
    return test_report();
}
