/* test_ptckpt — the PyTorch checkpoint reader against files written by a
 * real torch.save (tests/ref/ptckpt_fixtures.py): names, dtypes, shapes,
 * strides, storage offsets, contiguity and shared storages as
 * torch.load(weights_only=True) reads them (expect.json), values through
 * weights_to_f32 (which gathers non-contiguous views through their strides)
 * equal to torch's .float() exactly (expect.safetensors); the big-endian,
 * legacy and whole-model files refused; the hostile corpus
 * (tests/ref/ptckpt_hostile.py, hostile.tsv) refused with ISO_EDATA and the
 * expected message, never a crash; and a sparse file past 4 GiB whose entries
 * can only be found through ZIP64 fields. */
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "ptckpt.h"
#include "safetensors.h"
#include "test.h"
#include "weights.h"

static char g_fix[1024];

static const char *fix(const char *name)
{
    static char buf[4][1200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_fix, name);
    return buf[k];
}

static int dtype_is(enum wt_dtype d, const char *torch_name)
{
    static const struct { enum wt_dtype d; const char *n; } m[] = {
        { WT_F32, "float32" }, { WT_F16, "float16" }, { WT_BF16, "bfloat16" }, { WT_F8_E4M3, "float8_e4m3fn" },
        { WT_F8_E5M2, "float8_e5m2" }, { WT_F64, "float64" }, { WT_I8, "int8" }, { WT_U8, "uint8" },
        { WT_I16, "int16" }, { WT_I32, "int32" }, { WT_I64, "int64" }, { WT_BOOL, "bool" },
    };
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (m[i].d == d) return strcmp(m[i].n, torch_name) == 0;
    return 0;
}

static void test_torch_files(void)
{
    TEST("checkpoints written by torch.save, read as torch.load(weights_only=True) reads them");
    json_error_t jerr;
    json_t *root = json_load_file(fix("expect.json"), 0, &jerr);
    struct safetensors *vals = NULL;
    CHECKF(root != NULL, "expect.json: %s", jerr.text);
    CHECK(st_open(fix("expect.safetensors"), &vals) == 0);
    if (!root || !vals) { json_decref(root); st_close(&vals); return; }
    const char *file;
    json_t *rows;
    json_object_foreach(json_object_get(root, "files"), file, rows) {
        struct weights *w = NULL;
        CHECKF(weights_open(fix(file), &w) == 0, "%s: %s", file, iso_errmsg());
        if (!w) continue;
        CHECK(weights_format(w) == WT_FMT_PYTORCH);
        CHECK_STR(weights_format_name(w), "pytorch");
        CHECKF(weights_count(w) == json_array_size(rows), "%s: %zu tensors, torch %zu", file, weights_count(w), json_array_size(rows));
        struct ptckpt *pt = NULL;
        CHECK(ptckpt_open(fix(file), &pt) == 0 && pt && pt->n_tensors == weights_count(w));
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r) {
            const char *name = json_string_value(json_object_get(r, "name"));
            const struct wt_tensor *t = weights_find(w, name);
            /* state dict order is kept */
            CHECKF(t && t == weights_at(w, i), "%s: '%s' missing or out of order", file, name);
            if (!t) continue;
            CHECKF(dtype_is(t->dtype, json_string_value(json_object_get(r, "dtype"))), "%s: %s dtype %s", file, name,
                   wt_dtype_name(t->dtype));
            json_t *shape = json_object_get(r, "shape"), *stride = json_object_get(r, "stride");
            int ok = t->n_dims == (int)json_array_size(shape);
            for (int d = 0; ok && d < t->n_dims; d++)
                ok = t->shape[d] == json_integer_value(json_array_get(shape, (size_t)d)) &&
                     t->strides[d] == json_integer_value(json_array_get(stride, (size_t)d));
            CHECKF(ok, "%s: '%s' shape/strides differ from torch's", file, name);
            CHECKF(t->contiguous == json_is_true(json_object_get(r, "contiguous")), "%s: '%s' contiguous %d", file, name, t->contiguous);
            const struct pt_tensor *p = pt ? ptckpt_find(pt, name) : NULL;
            CHECK(p && (json_int_t)p->storage_offset == json_integer_value(json_object_get(r, "storage_offset")));
            /* tensors share a storage exactly when torch's do */
            const struct pt_tensor *o = pt ? ptckpt_find(pt, json_string_value(json_object_get(r, "shares_storage_with"))) : NULL;
            CHECK(p && o && strcmp(p->storage, o->storage) == 0);
            if (p && o && o != p) CHECK((const char *)p->data == (const char *)o->data + (p->storage_offset - o->storage_offset) * wt_dtype_size(p->dtype));
            /* values: exact, non-contiguous views gathered through their strides */
            char key[300];
            snprintf(key, sizeof key, "%s:%s", file, name);
            const struct st_tensor *e = st_find(vals, key);
            CHECKF(e && e->nbytes == t->nelem * 4, "%s: no expected values", key);
            if (!e || e->nbytes != t->nelem * 4) continue;
            float *got = malloc(t->nelem * 4 + 4);
            CHECK(weights_to_f32(t, 0, t->nelem, got) == 0);
            CHECKF(memcmp(got, e->data, e->nbytes) == 0, "%s: values differ from torch's", key);
            if (t->nelem > 2) {   /* a range starting mid-tensor */
                CHECK(weights_to_f32(t, 1, t->nelem - 2, got) == 0);
                CHECKF(memcmp(got, (const float *)e->data + 1, (t->nelem - 2) * 4) == 0, "%s: [1, n-1) differs", key);
            }
            free(got);
        }
        ptckpt_close(&pt);
        weights_close(&w);
    }
    /* nested.pth: the weights come from "model", the optimizer's int-keyed state is not weights */
    struct weights *w = NULL;
    CHECK(weights_open(fix("nested.pth"), &w) == 0 && w && weights_find(w, "enc.deep.b") && !weights_find(w, "model.enc.w"));
    weights_close(&w);
    json_decref(root);
    st_close(&vals);
}

static void test_refused(void)
{
    TEST("big-endian, legacy and whole-model checkpoints are refused with a reason");
    struct weights *w = NULL;
    struct ptckpt *p = NULL;
    CHECK(weights_open(fix("bigendian.pth"), &w) == ISO_EDATA && !w && strstr(iso_errmsg(), "big-endian"));
    CHECK(weights_open(fix("legacy.pth"), &w) == ISO_EUNAVAIL && !w && strstr(iso_errmsg(), "legacy") &&
          strstr(iso_errmsg(), "torch.save(") && strstr(iso_errmsg(), "legacy.pth"));
    CHECK(ptckpt_open(fix("legacy.pth"), &p) == ISO_EUNAVAIL && !p && strstr(iso_errmsg(), "torch >= 1.6"));
    CHECK(weights_open(fix("wholemodel.pth"), &w) == ISO_EDATA && strstr(iso_errmsg(), "global '__main__.Holder' is not allowed"));
    CHECK(ptckpt_open(fix("absent.pth"), &p) == ISO_ENOINPUT);
}

static void test_hostile(void)
{
    TEST("the hostile corpus: refused with ISO_EDATA and a message, never run");
    char *text = NULL;
    size_t len = 0;
    CHECK(fs_read_all(fix("hostile.tsv"), &text, &len, 1 << 20) == 0);
    if (!text) return;
    int n = 0;
    remove("/tmp/isopipe-pwned");
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t1 || !t2) { CHECKF(0, "bad line '%s'", line); continue; }
        *t1 = *t2 = 0;
        int want = -atoi(t1 + 1);
        const char *msg = t2 + 1;
        char rel[300];
        snprintf(rel, sizeof rel, "hostile/%s", line);
        struct ptckpt *p = NULL;
        int rc = ptckpt_open(fix(rel), &p);
        CHECKF(rc == want && (rc != 0) == (p == NULL), "%s: status %d, want %d (%s)", line, rc, want, rc ? iso_errmsg() : "");
        if (want) CHECKF(strstr(iso_errmsg(), msg) && strstr(iso_errmsg(), line), "%s: message '%s' lacks '%s'", line, iso_errmsg(), msg);
        if (p) {   /* the good ones hold tensor 'w' of 4 floats 1 2 3 4 (good.pth, zip64_ok.pth) */
            const struct pt_tensor *t = ptckpt_find(p, "w");
            if (t && t->nelem == 4) {
                float f[4];
                memcpy(f, t->data, sizeof f);
                CHECK(f[0] == 1 && f[3] == 4);
            }
        }
        ptckpt_close(&p);
        /* the same through the in-memory entry point the fuzzer uses */
        char *buf = NULL;
        size_t blen = 0;
        if (fs_read_all(fix(rel), &buf, &blen, 1 << 24) == 0) {
            CHECKF(ptckpt_open_mem((const uint8_t *)buf, blen, &p) == want, "%s (in memory)", line);
            ptckpt_close(&p);
            free(buf);
        }
        n++;
    }
    CHECK(n >= 40);
    CHECKF(access("/tmp/isopipe-pwned", F_OK) != 0, "a hostile pickle ran code");
    free(text);
}

/* ---- a > 4 GiB sparse checkpoint: the reader must use the ZIP64 fields ---- */

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
static void put_le(struct buf *b, uint64_t v, int n)
{
    uint8_t x[8];
    for (int i = 0; i < n; i++) x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, (size_t)n);
}
static void put_s(struct buf *b, const char *s) { put(b, s, strlen(s)); }
static void pk_str(struct buf *b, const char *s) { put_s(b, "X"); put_le(b, strlen(s), 4); put_s(b, s); }
static void pk_int(struct buf *b, uint64_t v)
{
    if (v < 256) { put_s(b, "K"); put_le(b, v, 1); }
    else { put_s(b, "\x8a\x08"); put_le(b, v, 8); }   /* LONG1, 8 bytes */
}
/* "name": _rebuild_tensor_v2(storage(key, cls, numel), 0, (numel,), (1,), False, OrderedDict()) */
static void pk_tensor(struct buf *b, const char *name, const char *key, const char *cls, uint64_t numel)
{
    pk_str(b, name);
    put_s(b, "ctorch._utils\n_rebuild_tensor_v2\n((");
    pk_str(b, "storage");
    put_s(b, "ctorch\n"); put_s(b, cls); put_s(b, "\n");
    pk_str(b, key);
    pk_str(b, "cpu");
    pk_int(b, numel);
    put_s(b, "tQ");
    pk_int(b, 0);
    pk_int(b, numel); put_s(b, "\x85");
    pk_int(b, 1); put_s(b, "\x85");
    put_s(b, "\x89" "ccollections\nOrderedDict\n)R" "tR");
}

static void test_zip64_sparse(void)
{
    TEST("ZIP64: a sparse 8 GiB checkpoint with a 4 GiB storage and a storage past 4 GiB");
    const uint64_t G4 = UINT64_C(1) << 32;
    const uint64_t big_n = G4 + 16;           /* u8 storage '1': needs ZIP64 sizes */
    const uint64_t off_pkl = 0, off_big = 4096, off_w = 2 * G4 + 8192;   /* storage '0' past 4 GiB */
    struct buf pkl = { 0 }, cd = { 0 }, tail = { 0 };
    put_s(&pkl, "\x80\x02}(");
    pk_tensor(&pkl, "w", "0", "FloatStorage", 4);
    pk_tensor(&pkl, "big", "1", "ByteStorage", big_n);
    put_s(&pkl, "u.");
    char *dir = test_tmpdir();
    const char *path = test_path_in(dir, "zip64.pth");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    if (fd < 0) return;
    /* local headers: sig, version, flags, method 0, time, date, crc, sizes, name len, extra len */
    struct { const char *name; uint64_t off, size; const void *data; } e[3] = {
        { "archive/data.pkl", off_pkl, pkl.n, pkl.p },
        { "archive/data/1", off_big, big_n, NULL },
        { "archive/data/0", off_w, 16, "\0\0\x80\x3f\0\0\0\x40\0\0\x40\x40\0\0\x80\x40" },
    };
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        struct buf lh = { 0 };
        int z = e[i].size >= 0xFFFFFFFFu;
        put_s(&lh, "PK\3\4"); put_le(&lh, 45, 2); put_le(&lh, 0, 2); put_le(&lh, 0, 2); put_le(&lh, 0, 4);
        put_le(&lh, 0, 4); put_le(&lh, z ? 0xFFFFFFFFu : e[i].size, 4); put_le(&lh, z ? 0xFFFFFFFFu : e[i].size, 4);
        put_le(&lh, strlen(e[i].name), 2); put_le(&lh, z ? 20 : 0, 2); put_s(&lh, e[i].name);
        if (z) { put_le(&lh, 1, 2); put_le(&lh, 16, 2); put_le(&lh, e[i].size, 8); put_le(&lh, e[i].size, 8); }
        if (e[i].data) put(&lh, e[i].data, (size_t)e[i].size);
        ok &= pwrite(fd, lh.p, lh.n, (off_t)e[i].off) == (ssize_t)lh.n;
        free(lh.p);
        /* central directory entry: 32-bit fields saturated where the value needs ZIP64 */
        int zs = e[i].size >= 0xFFFFFFFFu, zo = e[i].off >= 0xFFFFFFFFu;
        put_s(&cd, "PK\1\2"); put_le(&cd, 45, 2); put_le(&cd, 45, 2); put_le(&cd, 0, 2); put_le(&cd, 0, 2);
        put_le(&cd, 0, 4); put_le(&cd, 0, 4);
        put_le(&cd, zs ? 0xFFFFFFFFu : e[i].size, 4); put_le(&cd, zs ? 0xFFFFFFFFu : e[i].size, 4);
        put_le(&cd, strlen(e[i].name), 2); put_le(&cd, (zs ? 16 : 0) + (zo ? 8 : 0) + ((zs || zo) ? 4 : 0), 2);
        put_le(&cd, 0, 2); put_le(&cd, 0, 2); put_le(&cd, 0, 2); put_le(&cd, 0, 4);
        put_le(&cd, zo ? 0xFFFFFFFFu : e[i].off, 4);
        put_s(&cd, e[i].name);
        if (zs || zo) {
            put_le(&cd, 1, 2); put_le(&cd, (zs ? 16 : 0) + (zo ? 8 : 0), 2);
            if (zs) { put_le(&cd, e[i].size, 8); put_le(&cd, e[i].size, 8); }
            if (zo) put_le(&cd, e[i].off, 8);
        }
    }
    uint64_t cd_off = off_w + 30 + strlen(e[2].name) + 16, z64 = cd_off + cd.n;
    put(&tail, cd.p, cd.n);
    put_s(&tail, "PK\6\6"); put_le(&tail, 44, 8); put_le(&tail, 45, 2); put_le(&tail, 45, 2); put_le(&tail, 0, 4);
    put_le(&tail, 0, 4); put_le(&tail, 3, 8); put_le(&tail, 3, 8); put_le(&tail, cd.n, 8); put_le(&tail, cd_off, 8);
    put_s(&tail, "PK\6\7"); put_le(&tail, 0, 4); put_le(&tail, z64, 8); put_le(&tail, 1, 4);
    put_s(&tail, "PK\5\6"); put_le(&tail, 0, 2); put_le(&tail, 0, 2); put_le(&tail, 3, 2); put_le(&tail, 3, 2);
    put_le(&tail, cd.n, 4); put_le(&tail, 0xFFFFFFFFu, 4); put_le(&tail, 0, 2);
    ok &= pwrite(fd, tail.p, tail.n, (off_t)cd_off) == (ssize_t)tail.n;
    close(fd);
    CHECK(ok);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (uint64_t)sb.st_size > 2 * G4 && (uint64_t)sb.st_blocks * 512 < (UINT64_C(1) << 24));
    struct weights *w = NULL;
    CHECKF(weights_open(path, &w) == 0, "%s", iso_errmsg());
    if (w) {
        const struct wt_tensor *t = weights_find(w, "w"), *b = weights_find(w, "big");
        CHECK(t && b && t->nelem == 4 && b->nelem == big_n && b->dtype == WT_U8 && b->nbytes == big_n);
        float f[4] = { 0 };
        if (t) CHECK(weights_to_f32(t, 0, 4, f) == 0);
        CHECK(f[0] == 1 && f[1] == 2 && f[2] == 3 && f[3] == 4);
        /* the data really is where the ZIP64 fields say: past 8 GiB, and at 4096 + header */
        if (t && b) CHECK((const uint8_t *)t->data - (const uint8_t *)b->data == (ptrdiff_t)(off_w - off_big) + (ptrdiff_t)(strlen(e[2].name) - strlen(e[1].name)) - 20);
        float last;
        if (b) CHECK(weights_to_f32(b, big_n - 1, 1, &last) == 0 && last == 0);   /* a hole reads as zero */
        weights_close(&w);
    }
    fs_rm_rf(dir);
    free(pkl.p);
    free(cd.p);
    free(tail.p);
}

int main(void)
{
    const char *root = getenv("ISOPIPE_ROOT");
    snprintf(g_fix, sizeof g_fix, "%s/tests/fixtures/ptckpt", root ? root : ".");
    test_torch_files();
    test_refused();
    test_hostile();
    test_zip64_sparse();
    return test_report();
}
