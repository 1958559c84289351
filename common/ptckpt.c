/* ptckpt.c — PyTorch zip checkpoints without running pickles (see ptckpt.h).
 *
 * Three layers, each distrusting its input:
 *   1. the zip central directory (PKWARE APPNOTE 6.3.x §4.3.12-4.3.16, ZIP64
 *      §4.3.14-4.3.15 and the extra field §4.5.3), every offset and size checked
 *      against the buffer before it is used, entries STORED only;
 *   2. a pickle machine (CPython Lib/pickletools.py documents the opcodes)
 *      that knows the ~40 opcodes torch.save's protocol-2 pickles use and a
 *      whitelist of globals, with limits on stack, memo and object count;
 *   3. the state dict search: nested dicts flattened into dotted names.
 * Objects live in one array and refer to each other by index, so a pickle can
 * build cycles (a list that holds itself) without the machine recursing or
 * leaking; the flattening walk is bounded in depth and in visits. */
#include "ptckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

/* ---------------------------------------------------------------- zip ---- */

struct zent {
    const char *name; size_t nlen;   /* into the central directory (not NUL-terminated) */
    uint64_t data;                   /* offset of the entry's bytes in the file */
    uint64_t size;
};

struct zip { struct zent *e; size_t n; };

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int cmp_zent(const void *a, const void *b)
{
    const struct zent *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    return c ? c : x->nlen < y->nlen ? -1 : x->nlen > y->nlen;
}

static const struct zent *zip_find(const struct zip *z, const char *name, size_t nlen)
{
    struct zent key = { name, nlen, 0, 0 };
    return z->n ? bsearch(&key, z->e, z->n, sizeof *z->e, cmp_zent) : NULL;
}

/* ZIP64 extended information (§4.5.3, header id 0x0001): the 8-byte values
 * present are exactly those whose 32-bit fields are 0xFFFFFFFF, in the
 * order uncompressed size, compressed size, local header offset */
static int zip64_extra(const uint8_t *x, size_t xlen, uint64_t *usize, uint64_t *csize, uint64_t *off, const char *nm,
                       int nmlen)
{
    size_t i = 0;
    while (i + 4 <= xlen) {
        unsigned id = (unsigned)rd_le(x + i, 2), len = (unsigned)rd_le(x + i + 2, 2);
        if (len > xlen - i - 4) return iso_fail(ISO_EDATA, "zip entry '%.*s': extra field runs past its end", nmlen, nm);
        if (id == 1) {
            const uint8_t *p = x + i + 4, *end = p + len;
            uint64_t *want[3] = { usize, csize, off };
            for (int k = 0; k < 3; k++) {
                if (*want[k] != 0xFFFFFFFFu) continue;
                if (end - p < 8) return iso_fail(ISO_EDATA, "zip entry '%.*s': ZIP64 extra field is too short", nmlen, nm);
                *want[k] = rd_le(p, 8);
                p += 8;
            }
            return 0;
        }
        i += 4 + len;
    }
    if (*usize == 0xFFFFFFFFu || *csize == 0xFFFFFFFFu || *off == 0xFFFFFFFFu)
        return iso_fail(ISO_EDATA, "zip entry '%.*s': sizes say ZIP64 but it has no ZIP64 extra field", nmlen, nm);
    return 0;
}

static int zip_read(const uint8_t *b, size_t len, struct zip *z)
{
    /* end of central directory record (§4.3.16): 22 bytes + a comment of at
     * most 65535, so it starts in the last 65557 bytes */
    if (len < 22) return iso_fail(ISO_EDATA, "file of %zu bytes is too short for a zip archive (truncated?)", len);
    size_t lo = len - 22 > 65535 ? len - 22 - 65535 : 0, eocd = SIZE_MAX;
    for (size_t p = len - 22 + 1; p-- > lo;)
        if (memcmp(b + p, "PK\5\6", 4) == 0 && p + 22 + rd_le(b + p + 20, 2) == len) { eocd = p; break; }
    if (eocd == SIZE_MAX) return iso_fail(ISO_EDATA, "no zip end-of-central-directory record (truncated file?)");
    const uint8_t *e = b + eocd;
    uint64_t disk = rd_le(e + 4, 2), cd_disk = rd_le(e + 6, 2), n_disk = rd_le(e + 8, 2), n = rd_le(e + 10, 2),
             cd_size = rd_le(e + 12, 4), cd_off = rd_le(e + 16, 4);
    uint64_t cd_end_limit = eocd;   /* the central directory ends before the ZIP64 record or the EOCD */
    /* ZIP64 end of central directory locator (§4.3.15), 20 bytes right before the EOCD */
    if (eocd >= 20 && memcmp(b + eocd - 20, "PK\6\7", 4) == 0) {
        const uint8_t *l = b + eocd - 20;
        uint64_t r = rd_le(l + 8, 8);
        if (rd_le(l + 4, 4) != 0 || rd_le(l + 16, 4) > 1) return iso_fail(ISO_EDATA, "multi-disk zip archives are not supported");
        if (r > eocd - 20 || eocd - 20 - r < 56)
            return iso_fail(ISO_EDATA, "ZIP64 end-of-central-directory offset %" PRIu64 " is outside the file", r);
        const uint8_t *q = b + r;   /* ZIP64 EOCD record (§4.3.14) */
        if (memcmp(q, "PK\6\6", 4) != 0) return iso_fail(ISO_EDATA, "no ZIP64 end-of-central-directory record at %" PRIu64, r);
        if (rd_le(q + 4, 8) < 44) return iso_fail(ISO_EDATA, "ZIP64 end-of-central-directory record is too short");
        uint64_t d64 = rd_le(q + 16, 4), cdd64 = rd_le(q + 20, 4), nd64 = rd_le(q + 24, 8), n64 = rd_le(q + 32, 8),
                 size64 = rd_le(q + 40, 8), off64 = rd_le(q + 48, 8);
        /* a 16/32-bit field that is not saturated must agree with its ZIP64 twin */
        if ((disk != 0xFFFF && disk != d64) || (cd_disk != 0xFFFF && cd_disk != cdd64) || (n_disk != 0xFFFF && n_disk != nd64) ||
            (n != 0xFFFF && n != n64) || (cd_size != 0xFFFFFFFFu && cd_size != size64) || (cd_off != 0xFFFFFFFFu && cd_off != off64))
            return iso_fail(ISO_EDATA, "the ZIP64 end-of-central-directory record disagrees with the end record");
        disk = d64; cd_disk = cdd64; n_disk = nd64; n = n64; cd_size = size64; cd_off = off64;
        cd_end_limit = r;
    } else if (n == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
        return iso_fail(ISO_EDATA, "the zip end record says ZIP64 but there is no ZIP64 locator");
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n) return iso_fail(ISO_EDATA, "multi-disk zip archives are not supported");
    if (cd_off > cd_end_limit || cd_size > cd_end_limit - cd_off)
        return iso_fail(ISO_EDATA, "zip central directory [%" PRIu64 ", +%" PRIu64 ") is outside the file", cd_off, cd_size);
    if (n > cd_size / 46) return iso_fail(ISO_EDATA, "zip central directory of %" PRIu64 " bytes cannot hold %" PRIu64 " entries", cd_size, n);
    z->e = calloc(n ? n : 1, sizeof *z->e);
    if (!z->e) return iso_fail(ISO_EINTERNAL, "out of memory");
    const uint8_t *c = b + cd_off, *cend = c + cd_size;
    for (uint64_t i = 0; i < n; i++) {
        /* central directory file header (§4.3.12), 46 bytes + name + extra + comment */
        if (cend - c < 46 || memcmp(c, "PK\1\2", 4) != 0)
            return iso_fail(ISO_EDATA, "zip central directory entry %" PRIu64 " is malformed", i);
        unsigned flags = (unsigned)rd_le(c + 8, 2), method = (unsigned)rd_le(c + 10, 2);
        uint64_t csize = rd_le(c + 20, 4), usize = rd_le(c + 24, 4), off = rd_le(c + 42, 4);
        size_t nl = (size_t)rd_le(c + 28, 2), xl = (size_t)rd_le(c + 30, 2), cl = (size_t)rd_le(c + 32, 2);
        if ((size_t)(cend - c) - 46 < nl + xl + cl) return iso_fail(ISO_EDATA, "zip central directory entry %" PRIu64 " runs past its end", i);
        const char *nm = (const char *)c + 46;
        int nml = (int)nl;
        if (flags & 1) return iso_fail(ISO_EDATA, "zip entry '%.*s' is encrypted", nml, nm);
        if (method != 0)
            return iso_fail(ISO_EDATA, "zip entry '%.*s' is compressed (method %u); torch.save stores entries uncompressed", nml, nm, method);
        int rc = zip64_extra(c + 46 + nl, xl, &usize, &csize, &off, nm, nml);
        if (rc) return rc;
        if (csize != usize) return iso_fail(ISO_EDATA, "zip entry '%.*s' is stored but its sizes differ", nml, nm);
        /* local file header (§4.3.7): its own name and extra lengths (torch pads
         * the extra field so the data lands on a 64-byte boundary) */
        if (off > cd_off || cd_off - off < 30 || memcmp(b + off, "PK\3\4", 4) != 0)
            return iso_fail(ISO_EDATA, "zip entry '%.*s': no local header at offset %" PRIu64, nml, nm, off);
        const uint8_t *lh = b + off;
        uint64_t lnl = rd_le(lh + 26, 2), lxl = rd_le(lh + 28, 2), data = off + 30 + lnl + lxl;
        if (rd_le(lh + 8, 2) != 0) return iso_fail(ISO_EDATA, "zip entry '%.*s' is compressed in its local header", nml, nm);
        if (lnl != nl || data > cd_off || memcmp(lh + 30, nm, nl) != 0)
            return iso_fail(ISO_EDATA, "zip entry '%.*s': local header does not match the central directory", nml, nm);
        if (usize > cd_off - data)
            return iso_fail(ISO_EDATA, "zip entry '%.*s': %" PRIu64 " bytes at %" PRIu64 " run past the data area", nml, nm, usize, data);
        z->e[z->n++] = (struct zent){ nm, nl, data, usize };
        c += 46 + nl + xl + cl;
    }
    qsort(z->e, z->n, sizeof *z->e, cmp_zent);
    for (size_t i = 1; i < z->n; i++)
        if (cmp_zent(&z->e[i - 1], &z->e[i]) == 0)
            return iso_fail(ISO_EDATA, "zip entry '%.*s' appears twice", (int)z->e[i].nlen, z->e[i].name);
    return 0;
}

/* ------------------------------------------------------------- pickle ---- */

/* limits: far above any real state dict (umT5-XXL: ~250 tensors, a ~40 KB
 * pickle), far below what would hurt */
#define PK_MAX_STACK   (1u << 20)
#define PK_MAX_MARKS   (1u << 12)
#define PK_MAX_MEMO    (1u << 22)
#define PK_MAX_OBJS    (1u << 24)
#define PK_MAX_DEPTH   32          /* nested dicts in the state dict walk */
#define PK_MAX_VISITS  (1u << 22)  /* dict entries visited by the walk (DAG bombs) */

enum pk_kind {
    K_NONE, K_BOOL, K_INT, K_FLOAT, K_STR, K_BYTES, K_TUPLE, K_LIST, K_DICT, K_GLOBAL, K_STORAGE, K_TENSOR,
};

enum pk_global {
    G_ORDERED_DICT, G_DICT, G_LIST, G_TUPLE,
    G_REBUILD_TENSOR_V2, G_REBUILD_TENSOR_V3, G_REBUILD_PARAMETER, G_REBUILD_PARAMETER_WITH_STATE,
    G_STORAGE,          /* a typed storage class (dtype) or UntypedStorage (WT_U8, untyped) */
    G_DTYPE,            /* a torch.<dtype> (dtype) */
};

struct pk_obj {
    enum pk_kind kind;
    union {
        int64_t i;      /* K_BOOL, K_INT */
        double f;       /* K_FLOAT */
        struct { const char *s; size_t n; } str;             /* K_STR, K_BYTES (into the pickle) */
        struct { uint32_t *it; size_t n, cap; } seq;          /* K_TUPLE, K_LIST; K_DICT: key, value pairs */
        struct { enum pk_global g; enum wt_dtype dt; int untyped; const char *name; } gl;
        struct { const struct zent *ent; enum wt_dtype dt; uint64_t numel; int untyped; } sto;  /* numel in dt elements */
        struct {
            uint32_t storage; enum wt_dtype dt; int n_dims;
            int64_t shape[WT_MAX_DIMS], strides[WT_MAX_DIMS]; uint64_t offset;
        } ten;
    } v;
};

struct vm {
    const uint8_t *start, *p, *end;
    const struct zip *zip;
    const char *root; size_t root_len;
    struct pk_obj *obj; size_t n_obj, cap_obj;
    uint32_t *stack; size_t sp, cap_stack;
    size_t *marks; size_t n_marks, cap_marks;
    uint32_t *memo; size_t cap_memo;   /* index + 1, 0 = unset */
    size_t memo_next;                  /* MEMOIZE's next index */
};

static int grow(void **arr, size_t *cap, size_t need, size_t elem, size_t limit, const char *what)
{
    if (need <= *cap) return 0;
    if (need > limit) return iso_fail(ISO_EDATA, "data.pkl: more than %zu %s", limit, what);
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    if (c > limit) c = limit;
    void *n = realloc(*arr, c * elem);
    if (!n) return iso_fail(ISO_EINTERNAL, "out of memory");
    *arr = n;
    *cap = c;
    return 0;
}

static int new_obj(struct vm *m, enum pk_kind k, uint32_t *id)
{
    int rc = grow((void **)&m->obj, &m->cap_obj, m->n_obj + 1, sizeof *m->obj, PK_MAX_OBJS, "objects");
    if (rc) return rc;
    memset(&m->obj[m->n_obj], 0, sizeof *m->obj);
    m->obj[m->n_obj].kind = k;
    *id = (uint32_t)m->n_obj++;
    return 0;
}

static int push(struct vm *m, uint32_t id)
{
    int rc = grow((void **)&m->stack, &m->cap_stack, m->sp + 1, sizeof *m->stack, PK_MAX_STACK, "stack entries");
    if (rc) return rc;
    m->stack[m->sp++] = id;
    return 0;
}

static int push_new(struct vm *m, enum pk_kind k, uint32_t *id)
{
    uint32_t x;
    int rc = new_obj(m, k, &x);
    if (!rc) rc = push(m, x);
    if (id) *id = x;
    return rc;
}

static int pop(struct vm *m, uint32_t *id)
{
    size_t floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
    if (m->sp <= floor) return iso_fail(ISO_EDATA, "data.pkl: stack underflow");
    *id = m->stack[--m->sp];
    return 0;
}

static int seq_add(struct pk_obj *o, uint32_t x)
{
    if (o->v.seq.n == o->v.seq.cap) {
        size_t c = o->v.seq.cap ? o->v.seq.cap * 2 : 4;
        uint32_t *n = realloc(o->v.seq.it, c * sizeof *n);
        if (!n) return iso_fail(ISO_EINTERNAL, "out of memory");
        o->v.seq.it = n;
        o->v.seq.cap = c;
    }
    o->v.seq.it[o->v.seq.n++] = x;
    return 0;
}

static const char *kind_name(enum pk_kind k)
{
    static const char *const n[] = { "None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict",
                                     "global", "storage", "tensor" };
    return (unsigned)k <= K_TENSOR ? n[k] : "?";
}

static int take(struct vm *m, size_t n, const uint8_t **out)
{
    if ((size_t)(m->end - m->p) < n) return iso_fail(ISO_EDATA, "data.pkl is truncated");
    *out = m->p;
    m->p += n;
    return 0;
}

/* the whitelist: everything a state dict written by torch.save may name */
static const struct { const char *mod, *name; enum pk_global g; enum wt_dtype dt; } g_allowed[] = {
    { "collections", "OrderedDict", G_ORDERED_DICT, 0 },
    { "builtins", "dict", G_DICT, 0 }, { "builtins", "list", G_LIST, 0 }, { "builtins", "tuple", G_TUPLE, 0 },
    /* protocol 2 names Python 3's builtins by their Python 2 module */
    { "__builtin__", "dict", G_DICT, 0 }, { "__builtin__", "list", G_LIST, 0 }, { "__builtin__", "tuple", G_TUPLE, 0 },
    { "torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, 0 },
    { "torch._utils", "_rebuild_tensor_v3", G_REBUILD_TENSOR_V3, 0 },
    { "torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, 0 },
    { "torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAMETER_WITH_STATE, 0 },
    { "torch", "FloatStorage", G_STORAGE, WT_F32 }, { "torch", "HalfStorage", G_STORAGE, WT_F16 },
    { "torch", "BFloat16Storage", G_STORAGE, WT_BF16 }, { "torch", "DoubleStorage", G_STORAGE, WT_F64 },
    { "torch", "CharStorage", G_STORAGE, WT_I8 }, { "torch", "ByteStorage", G_STORAGE, WT_U8 },
    { "torch", "ShortStorage", G_STORAGE, WT_I16 }, { "torch", "IntStorage", G_STORAGE, WT_I32 },
    { "torch", "LongStorage", G_STORAGE, WT_I64 }, { "torch", "BoolStorage", G_STORAGE, WT_BOOL },
    { "torch.storage", "UntypedStorage", G_STORAGE, WT_U8 }, { "torch", "UntypedStorage", G_STORAGE, WT_U8 },
    { "torch", "float32", G_DTYPE, WT_F32 }, { "torch", "float", G_DTYPE, WT_F32 },
    { "torch", "float16", G_DTYPE, WT_F16 }, { "torch", "half", G_DTYPE, WT_F16 },
    { "torch", "bfloat16", G_DTYPE, WT_BF16 }, { "torch", "float64", G_DTYPE, WT_F64 },
    { "torch", "double", G_DTYPE, WT_F64 }, { "torch", "float8_e4m3fn", G_DTYPE, WT_F8_E4M3 },
    { "torch", "float8_e5m2", G_DTYPE, WT_F8_E5M2 }, { "torch", "int8", G_DTYPE, WT_I8 },
    { "torch", "uint8", G_DTYPE, WT_U8 }, { "torch", "int16", G_DTYPE, WT_I16 }, { "torch", "short", G_DTYPE, WT_I16 },
    { "torch", "int32", G_DTYPE, WT_I32 }, { "torch", "int", G_DTYPE, WT_I32 }, { "torch", "int64", G_DTYPE, WT_I64 },
    { "torch", "long", G_DTYPE, WT_I64 }, { "torch", "bool", G_DTYPE, WT_BOOL },
};

static int is_str(const char *s, size_t n, const char *c) { return strlen(c) == n && memcmp(s, c, n) == 0; }

/* printable form of a module/name pair for messages: control bytes become '?' */
static void printable(char *buf, size_t cap, const char *mod, size_t ml, const char *name, size_t nl)
{
    size_t o = 0;
    for (size_t i = 0; i < ml && o + 1 < cap; i++) buf[o++] = (mod[i] >= 32 && mod[i] < 127) ? mod[i] : '?';
    if (o + 1 < cap) buf[o++] = '.';
    for (size_t i = 0; i < nl && o + 1 < cap; i++) buf[o++] = (name[i] >= 32 && name[i] < 127) ? name[i] : '?';
    buf[o < cap ? o : cap - 1] = 0;
    if (ml + nl + 1 >= cap && cap > 4) memcpy(buf + cap - 4, "...", 4);
}

static int push_global(struct vm *m, const char *mod, size_t ml, const char *name, size_t nl)
{
    for (size_t i = 0; i < sizeof g_allowed / sizeof *g_allowed; i++) {
        if (!is_str(mod, ml, g_allowed[i].mod) || !is_str(name, nl, g_allowed[i].name)) continue;
        uint32_t id;
        int rc = push_new(m, K_GLOBAL, &id);
        if (rc) return rc;
        struct pk_obj *o = &m->obj[id];
        o->v.gl.g = g_allowed[i].g;
        o->v.gl.dt = g_allowed[i].dt;
        o->v.gl.untyped = g_allowed[i].g == G_STORAGE && strcmp(g_allowed[i].name, "UntypedStorage") == 0;
        o->v.gl.name = g_allowed[i].name;
        return 0;
    }
    char buf[160];
    printable(buf, sizeof buf, mod, ml, name, nl);
    return iso_fail(ISO_EDATA, "data.pkl: global '%s' is not allowed (a state dict never needs it; refusing to run it)", buf);
}

/* an int object's value */
static int get_int(const struct vm *m, uint32_t id, int64_t *v, const char *what)
{
    const struct pk_obj *o = &m->obj[id];
    if (o->kind != K_INT && o->kind != K_BOOL) return iso_fail(ISO_EDATA, "data.pkl: %s is a %s, not an int", what, kind_name(o->kind));
    *v = o->v.i;
    return 0;
}

/* BINPERSID: torch's persistent id ('storage', storage_type, key, location, numel) */
static int persistent_load(struct vm *m, uint32_t pid)
{
    const struct pk_obj *t = &m->obj[pid];
    if (t->kind != K_TUPLE || t->v.seq.n != 5) return iso_fail(ISO_EDATA, "data.pkl: a persistent id is not a 5-tuple");
    const struct pk_obj *tag = &m->obj[t->v.seq.it[0]], *ty = &m->obj[t->v.seq.it[1]], *key = &m->obj[t->v.seq.it[2]];
    if (tag->kind != K_STR || !is_str(tag->v.str.s, tag->v.str.n, "storage"))
        return iso_fail(ISO_EDATA, "data.pkl: persistent id is not a storage");
    if (ty->kind != K_GLOBAL || ty->v.gl.g != G_STORAGE) return iso_fail(ISO_EDATA, "data.pkl: persistent id names no storage type");
    if (key->kind != K_STR || key->v.str.n == 0 || key->v.str.n > 64)
        return iso_fail(ISO_EDATA, "data.pkl: storage key is not a short string");
    int64_t numel = 0;
    int rc = get_int(m, t->v.seq.it[4], &numel, "a storage size");
    if (rc) return rc;
    char name[256];
    int nl = snprintf(name, sizeof name, "%.*s/data/%.*s", (int)m->root_len, m->root, (int)key->v.str.n, key->v.str.s);
    if (nl < 0 || (size_t)nl >= sizeof name) return iso_fail(ISO_EDATA, "data.pkl: storage name too long");
    const struct zent *e = zip_find(m->zip, name, (size_t)nl);
    if (!e) return iso_fail(ISO_EDATA, "data.pkl: storage '%.*s' has no zip entry '%s'", (int)key->v.str.n, key->v.str.s, name);
    enum wt_dtype dt = ty->v.gl.dt;
    uint64_t bytes;
    /* the storage must fit inside its entry: a pickle cannot claim 2^62 bytes */
    if (numel < 0 || __builtin_mul_overflow((uint64_t)numel, (uint64_t)wt_dtype_size(dt), &bytes) || bytes > e->size)
        return iso_fail(ISO_EDATA, "data.pkl: storage '%.*s' claims %" PRId64 " elements of %s, its entry holds %" PRIu64 " bytes",
                        (int)key->v.str.n, key->v.str.s, numel, wt_dtype_name(dt), e->size);
    int untyped = ty->v.gl.untyped;
    uint32_t id;
    if ((rc = push_new(m, K_STORAGE, &id))) return rc;
    struct pk_obj *s = &m->obj[id];
    s->v.sto.ent = e;
    s->v.sto.dt = dt;
    s->v.sto.numel = (uint64_t)numel;
    s->v.sto.untyped = untyped;
    return 0;
}

/* an int tuple (size or stride) of at most WT_MAX_DIMS entries */
static int int_tuple(const struct vm *m, uint32_t id, int64_t *out, int *n, const char *what)
{
    const struct pk_obj *o = &m->obj[id];
    if (o->kind != K_TUPLE) return iso_fail(ISO_EDATA, "data.pkl: tensor %s is a %s, not a tuple", what, kind_name(o->kind));
    if (o->v.seq.n > WT_MAX_DIMS) return iso_fail(ISO_EDATA, "data.pkl: tensor has %zu dimensions (at most %d)", o->v.seq.n, WT_MAX_DIMS);
    *n = (int)o->v.seq.n;
    for (int i = 0; i < *n; i++) {
        int rc = get_int(m, o->v.seq.it[i], &out[i], what);
        if (rc) return rc;
        if (out[i] < 0) return iso_fail(ISO_EDATA, "data.pkl: tensor %s has a negative entry", what);
    }
    return 0;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
 * _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype[, metadata]) */
static int rebuild_tensor(struct vm *m, const struct pk_obj *args, int v3)
{
    size_t n = args->v.seq.n;
    if (v3 ? (n != 7 && n != 8) : (n != 6 && n != 7))
        return iso_fail(ISO_EDATA, "data.pkl: _rebuild_tensor_v%d takes %d or %d arguments, got %zu", v3 ? 3 : 2, v3 ? 7 : 6, v3 ? 8 : 7, n);
    const uint32_t *a = args->v.seq.it;
    const struct pk_obj *s = &m->obj[a[0]];
    if (s->kind != K_STORAGE) return iso_fail(ISO_EDATA, "data.pkl: a tensor's storage is a %s", kind_name(s->kind));
    int64_t off = 0;
    int nd, nd2, rc;
    int64_t shape[WT_MAX_DIMS] = { 0 }, strides[WT_MAX_DIMS] = { 0 };
    if ((rc = get_int(m, a[1], &off, "storage offset"))) return rc;
    if ((rc = int_tuple(m, a[2], shape, &nd, "size")) || (rc = int_tuple(m, a[3], strides, &nd2, "stride"))) return rc;
    if (nd != nd2) return iso_fail(ISO_EDATA, "data.pkl: tensor size and stride differ in length");
    if (off < 0) return iso_fail(ISO_EDATA, "data.pkl: negative storage offset");
    enum wt_dtype dt = s->v.sto.dt;
    uint64_t avail = s->v.sto.numel;   /* elements of dt in the storage */
    if (v3) {
        const struct pk_obj *d = &m->obj[a[6]];
        if (d->kind != K_GLOBAL || d->v.gl.g != G_DTYPE) return iso_fail(ISO_EDATA, "data.pkl: _rebuild_tensor_v3 without a dtype");
        dt = d->v.gl.dt;
        /* an untyped storage counts bytes */
        uint64_t bytes = s->v.sto.untyped ? s->v.sto.numel : s->v.sto.numel * wt_dtype_size(s->v.sto.dt);
        avail = bytes / wt_dtype_size(dt);
    } else if (s->v.sto.untyped) {
        return iso_fail(ISO_EDATA, "data.pkl: _rebuild_tensor_v2 on an untyped storage");
    }
    /* every element the view can reach lies inside the storage */
    uint64_t nelem = 1, last = (uint64_t)off;
    for (int i = 0; i < nd; i++)
        if (__builtin_mul_overflow(nelem, (uint64_t)shape[i], &nelem) || nelem >= (UINT64_C(1) << 60))
            return iso_fail(ISO_EDATA, "data.pkl: tensor size overflows");
    if (nelem) {
        for (int i = 0; i < nd; i++) {
            uint64_t reach;
            if (__builtin_mul_overflow((uint64_t)(shape[i] - 1), (uint64_t)strides[i], &reach) || __builtin_add_overflow(last, reach, &last))
                return iso_fail(ISO_EDATA, "data.pkl: tensor extent overflows");
        }
        if (last >= avail)
            return iso_fail(ISO_EDATA, "data.pkl: a tensor reaches element %" PRIu64 " of a storage of %" PRIu64, last, avail);
    } else if ((uint64_t)off > avail) {
        return iso_fail(ISO_EDATA, "data.pkl: storage offset %" PRId64 " is past the storage (%" PRIu64 ")", off, avail);
    }
    uint32_t id;
    uint32_t sid = a[0];
    if ((rc = push_new(m, K_TENSOR, &id))) return rc;
    struct pk_obj *t = &m->obj[id];
    t->v.ten.storage = sid;
    t->v.ten.dt = dt;
    t->v.ten.n_dims = nd;
    memcpy(t->v.ten.shape, shape, sizeof shape);
    memcpy(t->v.ten.strides, strides, sizeof strides);
    t->v.ten.offset = (uint64_t)off;
    return 0;
}

/* REDUCE / NEWOBJ: call a whitelisted global */
static int call(struct vm *m, uint32_t fn, uint32_t args, int newobj)
{
    const struct pk_obj *f = &m->obj[fn], *a = &m->obj[args];
    if (f->kind != K_GLOBAL) return iso_fail(ISO_EDATA, "data.pkl: REDUCE on a %s", kind_name(f->kind));
    if (a->kind != K_TUPLE) return iso_fail(ISO_EDATA, "data.pkl: call arguments are a %s", kind_name(a->kind));
    enum pk_global g = f->v.gl.g;
    if (newobj && g != G_ORDERED_DICT && g != G_DICT)
        return iso_fail(ISO_EDATA, "data.pkl: NEWOBJ of '%s' is not allowed", f->v.gl.name);
    switch (g) {
    case G_ORDERED_DICT: case G_DICT: case G_LIST: case G_TUPLE:
        if (a->v.seq.n) return iso_fail(ISO_EDATA, "data.pkl: %s() with arguments is not allowed", f->v.gl.name);
        return push_new(m, g == G_LIST ? K_LIST : g == G_TUPLE ? K_TUPLE : K_DICT, NULL);
    case G_REBUILD_TENSOR_V2: case G_REBUILD_TENSOR_V3:
        return rebuild_tensor(m, a, g == G_REBUILD_TENSOR_V3);
    case G_REBUILD_PARAMETER: case G_REBUILD_PARAMETER_WITH_STATE: {
        /* (data, requires_grad, backward_hooks[, state]): a Parameter is its data */
        size_t want = g == G_REBUILD_PARAMETER ? 3 : 4;
        if (a->v.seq.n != want || m->obj[a->v.seq.it[0]].kind != K_TENSOR)
            return iso_fail(ISO_EDATA, "data.pkl: %s takes a tensor and %zu more arguments", f->v.gl.name, want - 1);
        return push(m, a->v.seq.it[0]);
    }
    default:
        return iso_fail(ISO_EDATA, "data.pkl: '%s' cannot be called", f->v.gl.name);
    }
}

/* pop everything above the top mark into a new tuple/list */
static int pop_mark(struct vm *m, size_t *from)
{
    if (!m->n_marks) return iso_fail(ISO_EDATA, "data.pkl: no MARK on the stack");
    *from = m->marks[--m->n_marks];
    return 0;
}

static int memo_put(struct vm *m, uint64_t idx)
{
    if (m->sp == 0 || (m->n_marks && m->sp <= m->marks[m->n_marks - 1])) return iso_fail(ISO_EDATA, "data.pkl: memo put with an empty stack");
    if (idx >= PK_MAX_MEMO) return iso_fail(ISO_EDATA, "data.pkl: memo index %" PRIu64 " is too large", idx);
    size_t old = m->cap_memo;
    int rc = grow((void **)&m->memo, &m->cap_memo, (size_t)idx + 1, sizeof *m->memo, PK_MAX_MEMO, "memo entries");
    if (rc) return rc;
    memset(m->memo + old, 0, (m->cap_memo - old) * sizeof *m->memo);
    m->memo[idx] = m->stack[m->sp - 1] + 1;
    return 0;
}

static int memo_get(struct vm *m, uint64_t idx)
{
    if (idx >= m->cap_memo || !m->memo[idx]) return iso_fail(ISO_EDATA, "data.pkl: memo entry %" PRIu64 " is unset", idx);
    return push(m, m->memo[idx] - 1);
}

/* run the pickle; *result is the object STOP returns */
static int vm_run(struct vm *m, uint32_t *result)
{
    int rc = 0;
    const uint8_t *q = NULL;
    for (;;) {
        const uint8_t *at = m->p;
        if ((rc = take(m, 1, &q))) return rc;
        uint8_t op = *q;
        uint32_t a, b, id;
        switch (op) {
        case 0x80:   /* PROTO */
            if ((rc = take(m, 1, &q))) return rc;
            if (*q < 2 || *q > 5) return iso_fail(ISO_EDATA, "data.pkl: pickle protocol %u is not supported", *q);
            break;
        case 0x95:   /* FRAME: an 8-byte length; framing changes nothing here */
            if ((rc = take(m, 8, &q))) return rc;
            if (rd_le(q, 8) > (uint64_t)(m->end - m->p)) return iso_fail(ISO_EDATA, "data.pkl: frame runs past the end");
            break;
        case '.':    /* STOP */
            if (m->sp != 1 || m->n_marks) return iso_fail(ISO_EDATA, "data.pkl: STOP with %zu objects on the stack", m->sp);
            *result = m->stack[0];
            return 0;
        case '}': if ((rc = push_new(m, K_DICT, NULL))) return rc; break;   /* EMPTY_DICT */
        case ']': if ((rc = push_new(m, K_LIST, NULL))) return rc; break;   /* EMPTY_LIST */
        case ')': if ((rc = push_new(m, K_TUPLE, NULL))) return rc; break;  /* EMPTY_TUPLE */
        case 'N': if ((rc = push_new(m, K_NONE, NULL))) return rc; break;   /* NONE */
        case 0x88: case 0x89:   /* NEWTRUE, NEWFALSE */
            if ((rc = push_new(m, K_BOOL, &id))) return rc;
            m->obj[id].v.i = op == 0x88;
            break;
        case '(':    /* MARK */
            if ((rc = grow((void **)&m->marks, &m->cap_marks, m->n_marks + 1, sizeof *m->marks, PK_MAX_MARKS, "nested marks"))) return rc;
            m->marks[m->n_marks++] = m->sp;
            break;
        case '0':    /* POP */
            if ((rc = pop(m, &a))) return rc;
            break;
        case '1': {  /* POP_MARK */
            size_t from = 0;
            if ((rc = pop_mark(m, &from))) return rc;
            m->sp = from;
            break;
        }
        case 't': {  /* TUPLE (MARK ... TUPLE) */
            size_t from = 0;
            if ((rc = pop_mark(m, &from))) return rc;
            if ((rc = new_obj(m, K_TUPLE, &id))) return rc;
            for (size_t i = from; i < m->sp; i++)
                if ((rc = seq_add(&m->obj[id], m->stack[i]))) return rc;
            m->sp = from;
            if ((rc = push(m, id))) return rc;
            break;
        }
        case 'l': case 'd': {  /* LIST (MARK ... LIST), DICT (MARK k v ... DICT) */
            size_t from = 0;
            if ((rc = pop_mark(m, &from))) return rc;
            if (op == 'd' && (m->sp - from) % 2) return iso_fail(ISO_EDATA, "data.pkl: DICT with an odd number of items");
            if ((rc = new_obj(m, op == 'l' ? K_LIST : K_DICT, &id))) return rc;
            for (size_t i = from; i < m->sp; i++)
                if ((rc = seq_add(&m->obj[id], m->stack[i]))) return rc;
            m->sp = from;
            if ((rc = push(m, id))) return rc;
            break;
        }
        case 0x85: case 0x86: case 0x87: {   /* TUPLE1, TUPLE2, TUPLE3 */
            int n = op - 0x84;
            uint32_t it[3];
            for (int i = n - 1; i >= 0; i--)
                if ((rc = pop(m, &it[i]))) return rc;
            if ((rc = new_obj(m, K_TUPLE, &id))) return rc;
            for (int i = 0; i < n; i++)
                if ((rc = seq_add(&m->obj[id], it[i]))) return rc;
            if ((rc = push(m, id))) return rc;
            break;
        }
        case 'X': case 0x8c: case 0x8d:   /* BINUNICODE (u32 len), SHORT_BINUNICODE (u8), BINUNICODE8 (u64) */
        case 'B': case 'C': case 0x8e:    /* BINBYTES (u32), SHORT_BINBYTES (u8), BINBYTES8 (u64) */
        case 'T': case 'U': {             /* BINSTRING (i32), SHORT_BINSTRING (u8): protocol-2 byte strings */
            int lb = (op == 0x8c || op == 'C' || op == 'U') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
            if ((rc = take(m, (size_t)lb, &q))) return rc;
            uint64_t n = rd_le(q, lb);
            if (op == 'T' && n > INT32_MAX) return iso_fail(ISO_EDATA, "data.pkl: negative string length");
            if (n > (uint64_t)(m->end - m->p)) return iso_fail(ISO_EDATA, "data.pkl: a string runs past the end");
            if ((rc = take(m, (size_t)n, &q))) return rc;
            int text = op == 'X' || op == 0x8c || op == 0x8d;
            if ((rc = push_new(m, text ? K_STR : K_BYTES, &id))) return rc;
            m->obj[id].v.str.s = (const char *)q;
            m->obj[id].v.str.n = (size_t)n;
            break;
        }
        case 'J': case 'K': case 'M': {   /* BININT (i32), BININT1 (u8), BININT2 (u16) */
            int nb = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            if ((rc = take(m, (size_t)nb, &q))) return rc;
            int64_t v = (int64_t)rd_le(q, nb);
            if (op == 'J') v = (int32_t)(uint32_t)v;
            if ((rc = push_new(m, K_INT, &id))) return rc;
            m->obj[id].v.i = v;
            break;
        }
        case 0x8a: { /* LONG1: u8 length, little-endian two's complement */
            if ((rc = take(m, 1, &q))) return rc;
            size_t n = *q;
            if (n > 8) return iso_fail(ISO_EDATA, "data.pkl: an integer of %zu bytes is too large", n);
            if ((rc = take(m, n, &q))) return rc;
            uint64_t u = rd_le(q, (int)n);
            if (n && n < 8 && (q[n - 1] & 0x80)) u |= ~UINT64_C(0) << (8 * n);   /* sign-extend */
            if ((rc = push_new(m, K_INT, &id))) return rc;
            memcpy(&m->obj[id].v.i, &u, 8);
            break;
        }
        case 'G': {  /* BINFLOAT: big-endian double */
            if ((rc = take(m, 8, &q))) return rc;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = u << 8 | q[i];
            if ((rc = push_new(m, K_FLOAT, &id))) return rc;
            memcpy(&m->obj[id].v.f, &u, 8);
            break;
        }
        case 'q': case 'r': {   /* BINPUT (u8), LONG_BINPUT (u32) */
            if ((rc = take(m, op == 'q' ? 1 : 4, &q))) return rc;
            if ((rc = memo_put(m, rd_le(q, op == 'q' ? 1 : 4)))) return rc;
            break;
        }
        case 0x94:   /* MEMOIZE */
            if ((rc = memo_put(m, m->memo_next))) return rc;
            m->memo_next++;
            break;
        case 'h': case 'j': {   /* BINGET (u8), LONG_BINGET (u32) */
            if ((rc = take(m, op == 'h' ? 1 : 4, &q))) return rc;
            if ((rc = memo_get(m, rd_le(q, op == 'h' ? 1 : 4)))) return rc;
            break;
        }
        case 's': {  /* SETITEM: dict key value */
            uint32_t k, v;
            if ((rc = pop(m, &v)) || (rc = pop(m, &k)) || (rc = pop(m, &a))) return rc;
            if (m->obj[a].kind != K_DICT) return iso_fail(ISO_EDATA, "data.pkl: SETITEM on a %s", kind_name(m->obj[a].kind));
            if ((rc = seq_add(&m->obj[a], k)) || (rc = seq_add(&m->obj[a], v))) return rc;
            if ((rc = push(m, a))) return rc;
            break;
        }
        case 'u': {  /* SETITEMS: dict MARK k v k v ... */
            size_t from = 0;
            if ((rc = pop_mark(m, &from))) return rc;
            if (from == 0 || (m->n_marks && from <= m->marks[m->n_marks - 1]))
                return iso_fail(ISO_EDATA, "data.pkl: SETITEMS without a dict");
            a = m->stack[from - 1];
            if (m->obj[a].kind != K_DICT) return iso_fail(ISO_EDATA, "data.pkl: SETITEMS on a %s", kind_name(m->obj[a].kind));
            if ((m->sp - from) % 2) return iso_fail(ISO_EDATA, "data.pkl: SETITEMS with an odd number of items");
            for (size_t i = from; i < m->sp; i++)
                if ((rc = seq_add(&m->obj[a], m->stack[i]))) return rc;
            m->sp = from;
            break;
        }
        case 'a': {  /* APPEND */
            uint32_t v;
            if ((rc = pop(m, &v)) || (rc = pop(m, &a))) return rc;
            if (m->obj[a].kind != K_LIST) return iso_fail(ISO_EDATA, "data.pkl: APPEND to a %s", kind_name(m->obj[a].kind));
            if ((rc = seq_add(&m->obj[a], v)) || (rc = push(m, a))) return rc;
            break;
        }
        case 'e': {  /* APPENDS */
            size_t from = 0;
            if ((rc = pop_mark(m, &from))) return rc;
            if (from == 0 || (m->n_marks && from <= m->marks[m->n_marks - 1]))
                return iso_fail(ISO_EDATA, "data.pkl: APPENDS without a list");
            a = m->stack[from - 1];
            if (m->obj[a].kind != K_LIST) return iso_fail(ISO_EDATA, "data.pkl: APPENDS to a %s", kind_name(m->obj[a].kind));
            for (size_t i = from; i < m->sp; i++)
                if ((rc = seq_add(&m->obj[a], m->stack[i]))) return rc;
            m->sp = from;
            break;
        }
        case 'c': {  /* GLOBAL "module\nname\n" */
            const uint8_t *mod = m->p, *nl1 = memchr(mod, '\n', (size_t)(m->end - m->p));
            if (!nl1) return iso_fail(ISO_EDATA, "data.pkl: GLOBAL runs past the end");
            const uint8_t *name = nl1 + 1, *nl2 = memchr(name, '\n', (size_t)(m->end - name));
            if (!nl2) return iso_fail(ISO_EDATA, "data.pkl: GLOBAL runs past the end");
            m->p = nl2 + 1;
            if ((rc = push_global(m, (const char *)mod, (size_t)(nl1 - mod), (const char *)name, (size_t)(nl2 - name)))) return rc;
            break;
        }
        case 0x93: { /* STACK_GLOBAL: module name */
            if ((rc = pop(m, &b)) || (rc = pop(m, &a))) return rc;
            const struct pk_obj *mo = &m->obj[a], *no = &m->obj[b];
            if (mo->kind != K_STR || no->kind != K_STR) return iso_fail(ISO_EDATA, "data.pkl: STACK_GLOBAL of non-strings");
            if ((rc = push_global(m, mo->v.str.s, mo->v.str.n, no->v.str.s, no->v.str.n))) return rc;
            break;
        }
        case 'R': case 0x81: {   /* REDUCE: callable args; NEWOBJ: cls args */
            if ((rc = pop(m, &b)) || (rc = pop(m, &a))) return rc;
            if ((rc = call(m, a, b, op == 0x81))) return rc;
            break;
        }
        case 'Q': {  /* BINPERSID */
            if ((rc = pop(m, &a))) return rc;
            if ((rc = persistent_load(m, a))) return rc;
            break;
        }
        case 'b': {  /* BUILD: obj state -> obj, allowed where the state is inert */
            if ((rc = pop(m, &b))) return rc;
            if (m->sp == 0 || (m->n_marks && m->sp <= m->marks[m->n_marks - 1]))
                return iso_fail(ISO_EDATA, "data.pkl: BUILD without an object");
            const struct pk_obj *o = &m->obj[m->stack[m->sp - 1]];
            /* OrderedDict state ({'_metadata': ...}) and parameter/tensor python
             * attributes: both are attribute dicts we do not need; nothing runs */
            if (o->kind != K_DICT && o->kind != K_TENSOR) return iso_fail(ISO_EDATA, "data.pkl: BUILD on a %s is not allowed", kind_name(o->kind));
            break;
        }
        default:
            return iso_fail(ISO_EDATA, "data.pkl: pickle opcode 0x%02x at byte %td is not allowed", op, at - m->start);
        }
    }
}

/* --------------------------------------------------- the state dict walk ---- */

struct walk {
    struct vm *m;
    struct ptckpt *out;
    size_t cap;
    size_t visits;
    const uint8_t *base;
};

static int emit(struct walk *w, const char *name, const struct pk_obj *t)
{
    if (w->out->n_tensors == w->cap) {
        size_t c = w->cap ? w->cap * 2 : 64;
        struct pt_tensor *n = realloc(w->out->tensors, c * sizeof *n);
        if (!n) return iso_fail(ISO_EINTERNAL, "out of memory");
        w->out->tensors = n;
        w->cap = c;
    }
    struct pt_tensor *p = &w->out->tensors[w->out->n_tensors];
    memset(p, 0, sizeof *p);
    if (!(p->name = strdup(name))) return iso_fail(ISO_EINTERNAL, "out of memory");
    w->out->n_tensors++;
    const struct pk_obj *s = &w->m->obj[t->v.ten.storage];
    size_t es = wt_dtype_size(t->v.ten.dt);
    p->dtype = t->v.ten.dt;
    p->n_dims = t->v.ten.n_dims;
    memcpy(p->shape, t->v.ten.shape, sizeof p->shape);
    memcpy(p->strides, t->v.ten.strides, sizeof p->strides);
    p->storage_offset = t->v.ten.offset;
    const struct zent *e = s->v.sto.ent;   /* "<root>/data/<key>" */
    if (!(p->storage = strndup(e->name + w->m->root_len + 6, e->nlen - w->m->root_len - 6))) return iso_fail(ISO_EINTERNAL, "out of memory");
    /* rebuild_tensor checked the products: n < 2^60 and, for n > 0, last < the storage */
    uint64_t n = 1, last = 0;
    for (int i = 0; i < p->n_dims; i++) n *= (uint64_t)p->shape[i];
    int contiguous = 1;   /* PyTorch's rule: empty tensors are, size-1 dimensions' strides do not matter */
    int64_t expect = 1;
    for (int i = p->n_dims - 1; n && i >= 0; i--) {
        if (p->shape[i] != 1 && p->strides[i] != expect) contiguous = 0;
        expect *= p->shape[i];
        last += (uint64_t)(p->shape[i] - 1) * (uint64_t)p->strides[i];
    }
    p->nelem = n;
    p->contiguous = contiguous;
    p->nbytes = n ? (last + 1) * es : 0;
    p->data = w->base + e->data + p->storage_offset * es;
    return 0;
}

static int walk_dict(struct walk *w, uint32_t d, char *prefix, size_t plen, size_t pcap, int depth)
{
    if (depth > PK_MAX_DEPTH) return iso_fail(ISO_EDATA, "data.pkl: dicts nested more than %d deep (a cycle?)", PK_MAX_DEPTH);
    const struct pk_obj *o = &w->m->obj[d];
    for (size_t i = 0; i + 1 < o->v.seq.n; i += 2) {
        if (++w->visits > PK_MAX_VISITS) return iso_fail(ISO_EDATA, "data.pkl: the state dict is too large (shared sub-dicts?)");
        const struct pk_obj *k = &w->m->obj[o->v.seq.it[i]], *v = &w->m->obj[o->v.seq.it[i + 1]];
        if (k->kind != K_STR) continue;   /* int keys: optimizer state, not weights */
        if (v->kind != K_TENSOR && v->kind != K_DICT) continue;
        if (memchr(k->v.str.s, 0, k->v.str.n)) return iso_fail(ISO_EDATA, "data.pkl: a key holds a NUL byte");
        if (plen + k->v.str.n + 2 > pcap) return iso_fail(ISO_EDATA, "data.pkl: a tensor name is longer than %zu bytes", pcap);
        memcpy(prefix + plen, k->v.str.s, k->v.str.n);
        prefix[plen + k->v.str.n] = 0;
        int rc;
        if (v->kind == K_TENSOR) rc = emit(w, prefix, v);
        else {
            prefix[plen + k->v.str.n] = '.';
            rc = walk_dict(w, o->v.seq.it[i + 1], prefix, plen + k->v.str.n + 1, pcap, depth + 1);
        }
        if (rc) return rc;
    }
    return 0;
}

/* the dict holding the weights: a value under a known key, else the top */
static uint32_t find_state_dict(const struct vm *m, uint32_t top)
{
    static const char *const keys[] = { "state_dict", "model", "params", "module" };
    const struct pk_obj *o = &m->obj[top];
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i + 1 < o->v.seq.n; i += 2) {
            const struct pk_obj *key = &m->obj[o->v.seq.it[i]];
            if (key->kind == K_STR && is_str(key->v.str.s, key->v.str.n, keys[k]) && m->obj[o->v.seq.it[i + 1]].kind == K_DICT)
                return o->v.seq.it[i + 1];
        }
    return top;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct pt_tensor *)a)->name, ((const struct pt_tensor *)b)->name);
}

/* --------------------------------------------------------------- open ---- */

struct priv {
    struct zip zip;
};

static int parse(struct ptckpt *p)
{
    struct priv *pv = calloc(1, sizeof *pv);
    if (!pv) return iso_fail(ISO_EINTERNAL, "out of memory");
    p->priv = pv;
    const uint8_t *b = p->map;
    /* legacy formats: torch.load can still read them, and its torch.save (zip
     * since 1.6, unless _use_new_zipfile_serialization=False) writes ours */
#define RESAVE "re-save it with torch >= 1.6 (whose torch.save writes the zip format by default): " \
               "torch.save(torch.load('old.pth', weights_only=True), 'new.pth')"
    if (p->size >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5)
        return iso_fail(ISO_EUNAVAIL, "a legacy (pre-1.6, non-zip) PyTorch checkpoint, which we do not read: " RESAVE);
    if (p->size >= 262 && memcmp(b + 257, "ustar", 5) == 0)
        return iso_fail(ISO_EUNAVAIL, "a legacy (tar) PyTorch checkpoint, which we do not read: " RESAVE);
#undef RESAVE
    int rc = zip_read(b, p->size, &pv->zip);
    if (rc) return rc;
    struct zip *z = &pv->zip;
    /* the root folder: torch.save puts every record under one ("archive/" or the file's stem) */
    const struct zent *first = NULL;
    for (size_t i = 0; i < z->n; i++)
        if (z->e[i].nlen > 9 && memcmp(z->e[i].name + z->e[i].nlen - 9, "/data.pkl", 9) == 0 &&
            !memchr(z->e[i].name, '/', z->e[i].nlen - 9)) {
            if (first) return iso_fail(ISO_EDATA, "the zip holds several <root>/data.pkl records");
            first = &z->e[i];
        }
    if (!first) return iso_fail(ISO_EDATA, "the zip holds no <root>/data.pkl: not a torch.save checkpoint");
    size_t rl = first->nlen - 9;
    if (!(p->root = strndup(first->name, rl))) return iso_fail(ISO_EINTERNAL, "out of memory");
    if (strlen(p->root) != rl) return iso_fail(ISO_EDATA, "the archive root holds a NUL byte");
    char bo[300];
    snprintf(bo, sizeof bo, "%s/byteorder", p->root);
    const struct zent *e = zip_find(z, bo, strlen(bo));
    if (e) {   /* absent before torch 1.12: those files are little-endian */
        const char *v = (const char *)b + e->data;
        if (is_str(v, (size_t)e->size, "big"))
            return iso_fail(ISO_EDATA, "a big-endian checkpoint (byteorder 'big'): only little-endian ones are read; "
                                       "re-save it on a little-endian machine");
        if (!is_str(v, (size_t)e->size, "little")) return iso_fail(ISO_EDATA, "unknown byteorder record");
    }
    struct vm m = { 0 };
    m.start = m.p = b + first->data;
    m.end = m.p + first->size;
    m.zip = z;
    m.root = p->root;
    m.root_len = rl;
    uint32_t top = 0;
    struct walk w = { &m, p, 0, 0, b };
    char *name = NULL;
    if ((rc = vm_run(&m, &top))) goto done;
    if (m.obj[top].kind != K_DICT) {
        rc = iso_fail(ISO_EDATA, "data.pkl holds a %s, not a state dict", kind_name(m.obj[top].kind));
        goto done;
    }
    if (!(name = malloc(4096))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if ((rc = walk_dict(&w, find_state_dict(&m, top), name, 0, 4096, 0))) goto done;
    /* names must be unique ({"a.b": t, "a": {"b": t}} would collide) */
    struct pt_tensor *sorted = malloc((p->n_tensors + 1) * sizeof *sorted);
    if (!sorted) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if (p->n_tensors) memcpy(sorted, p->tensors, p->n_tensors * sizeof *sorted);
    qsort(sorted, p->n_tensors, sizeof *sorted, cmp_name);
    for (uint64_t i = 1; i < p->n_tensors && !rc; i++)
        if (strcmp(sorted[i - 1].name, sorted[i].name) == 0) rc = iso_fail(ISO_EDATA, "tensor '%s' appears twice", sorted[i].name);
    free(sorted);
done:
    free(name);
    for (size_t i = 0; i < m.n_obj; i++)
        if (m.obj[i].kind == K_TUPLE || m.obj[i].kind == K_LIST || m.obj[i].kind == K_DICT) free(m.obj[i].v.seq.it);
    free(m.obj);
    free(m.stack);
    free(m.marks);
    free(m.memo);
    return rc;
}

static void pt_free(struct ptckpt *p)
{
    if (!p) return;
    for (uint64_t i = 0; i < p->n_tensors; i++) {
        free(p->tensors[i].name);
        free((char *)p->tensors[i].storage);
    }
    free(p->tensors);
    struct priv *pv = p->priv;
    if (pv) {
        free(pv->zip.e);
        free(pv);
    }
    free(p->root);
    if (p->fd >= 0) {
        if (p->map && p->size) munmap((void *)p->map, p->size);
        close(p->fd);
    }
    free(p);
}

int ptckpt_open_mem(const uint8_t *buf, size_t len, struct ptckpt **out)
{
    *out = NULL;
    struct ptckpt *p = calloc(1, sizeof *p);
    if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
    p->fd = -1;
    p->map = buf;
    p->size = len;
    int rc = parse(p);
    if (rc) pt_free(p);
    else *out = p;
    return rc;
}

int ptckpt_open(const char *path, struct ptckpt **out)
{
    *out = NULL;
    int rc = 0;
    struct ptckpt *p = calloc(1, sizeof *p);
    if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
    p->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (p->fd < 0) {
        rc = iso_fail(errno == ENOENT ? ISO_ENOINPUT : ISO_EIO, "cannot open '%s': %s", path, strerror(errno));
        goto done;
    }
    struct stat sb;
    if (fstat(p->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = iso_fail(ISO_EDATA, "'%s' is not a regular file", path);
        goto done;
    }
    p->size = (size_t)sb.st_size;
    if (p->size) {
        void *mp = mmap(NULL, p->size, PROT_READ, MAP_PRIVATE, p->fd, 0);
        if (mp == MAP_FAILED) {
            rc = iso_fail(ISO_EIO, "cannot map '%s': %s", path, strerror(errno));
            goto done;
        }
        p->map = mp;
    }
    if ((rc = parse(p))) rc = iso_wrap(rc, "'%s'", path);
done:
    if (rc) pt_free(p);
    else *out = p;
    return rc;
}

void ptckpt_close(struct ptckpt **p)
{
    pt_free(*p);
    *p = NULL;
}

const struct pt_tensor *ptckpt_find(const struct ptckpt *p, const char *name)
{
    for (uint64_t i = 0; i < p->n_tensors; i++)
        if (strcmp(p->tensors[i].name, name) == 0) return &p->tensors[i];
    return NULL;
}
