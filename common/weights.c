/* weights.c — one view of GGUF, safetensors (single, sharded, in a
 * directory) and PyTorch checkpoints (see weights.h). Each format keeps its
 * own reader (gguf.c, safetensors.c, ptckpt.c); this file opens the right
 * one(s), copies their tensor tables into struct wt_tensor (names and data
 * pointers still point into the readers), and hashes the names. */
#include "weights.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "gguf.h"
#include "gguf_quant.h"
#include "ptckpt.h"
#include "safetensors.h"

enum file_kind { F_ST, F_GGUF, F_PT };

struct wt_file {
    enum file_kind kind;
    struct safetensors *st;
    struct gguf *gg;
    struct ptckpt *pt;
    const uint8_t *map; size_t size; int owned;   /* the mapping, for weights_drop */
};

struct weights {
    enum wt_format fmt;
    char *path, *dir;
    struct wt_file *files; size_t n_files;
    struct wt_tensor *t; size_t n;
    char **own_names;        /* GGUF names (NUL-terminated copies), else NULL */
    uint32_t *hash; size_t hcap;   /* index + 1, 0 empty */
    char **meta_kv; size_t n_meta; /* GGUF string kvs: key, value, key, value ... */
};

/* dtype sizes, names and the scalar conversions live in wt_dtype.c */

/* ---- loading helpers ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);   /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * UINT64_C(0x100000001b3);
    return h;
}

static int build_hash(struct weights *w)
{
    size_t cap = 16;
    while (cap < w->n * 2) cap <<= 1;
    w->hash = calloc(cap, sizeof *w->hash);
    if (!w->hash) return iso_fail(ISO_EINTERNAL, "out of memory");
    w->hcap = cap;
    for (size_t i = 0; i < w->n; i++) {
        size_t h = hash_str(w->t[i].name) & (cap - 1);
        while (w->hash[h]) {
            if (strcmp(w->t[w->hash[h] - 1].name, w->t[i].name) == 0)
                return iso_fail(ISO_EDATA, "tensor '%s' appears twice", w->t[i].name);
            h = (h + 1) & (cap - 1);
        }
        w->hash[h] = (uint32_t)i + 1;
    }
    return 0;
}

/* shape, strides (row-major), nelem; ISO_EDATA on overflow */
static int set_shape(struct wt_tensor *t, int n_dims, const int64_t *shape)
{
    t->n_dims = n_dims;
    uint64_t n = 1;
    for (int i = 0; i < n_dims; i++) {
        t->shape[i] = shape[i];
        if (shape[i] < 0 || __builtin_mul_overflow(n, (uint64_t)shape[i], &n))
            return iso_fail(ISO_EDATA, "tensor '%s': shape overflows", t->name);
    }
    int64_t s = 1;
    for (int i = n_dims - 1; i >= 0; i--) {
        t->strides[i] = s;
        /* an empty tensor's other dimensions may multiply past 64 bits: [0, 2^40, 2^40] */
        if (__builtin_mul_overflow(s, shape[i] ? shape[i] : 1, &s))
            return iso_fail(ISO_EDATA, "tensor '%s': shape overflows", t->name);
    }
    t->contiguous = 1;
    t->nelem = n;
    return 0;
}

static int grow_tensors(struct weights *w, size_t more)
{
    struct wt_tensor *t = realloc(w->t, (w->n + more + 1) * sizeof *t);
    if (!t) return iso_fail(ISO_EINTERNAL, "out of memory");
    w->t = t;
    return 0;
}

static enum wt_dtype st_to_wt(enum st_dtype d, int *ok)
{
    *ok = 1;
    switch (d) {
    case ST_BOOL: return WT_BOOL;
    case ST_U8: return WT_U8;
    case ST_I8: return WT_I8;
    case ST_F8_E4M3: return WT_F8_E4M3;
    case ST_F8_E5M2: return WT_F8_E5M2;
    case ST_I16: return WT_I16;
    case ST_F16: return WT_F16;
    case ST_BF16: return WT_BF16;
    case ST_I32: return WT_I32;
    case ST_F32: return WT_F32;
    case ST_I64: return WT_I64;
    case ST_F64: return WT_F64;
    default: *ok = 0; return WT_U8;   /* U16/U32/U64: no model of ours stores them */
    }
}

static int add_safetensors(struct weights *w, const char *path)
{
    struct wt_file *f = realloc(w->files, (w->n_files + 1) * sizeof *f);
    if (!f) return iso_fail(ISO_EINTERNAL, "out of memory");
    w->files = f;
    f = &w->files[w->n_files];
    memset(f, 0, sizeof *f);
    f->kind = F_ST;
    int rc = st_open(path, &f->st);
    if (rc) return rc;
    w->n_files++;
    f->map = f->st->map; f->size = f->st->size; f->owned = f->st->fd >= 0;
    if ((rc = grow_tensors(w, f->st->n_tensors))) return rc;
    for (uint64_t i = 0; i < f->st->n_tensors; i++) {
        const struct st_tensor *s = &f->st->tensors[i];
        struct wt_tensor *t = &w->t[w->n];
        memset(t, 0, sizeof *t);
        t->name = s->name;
        int ok;
        t->dtype = st_to_wt(s->dtype, &ok);
        if (!ok) return iso_fail(ISO_EDATA, "'%s': tensor '%s' has dtype %s, which no model reads", path, s->name,
                                 st_dtype_name(s->dtype));
        t->ggml_type = -1;
        int64_t shape[WT_MAX_DIMS];
        for (int d = 0; d < s->n_dims; d++) {
            if (s->shape[d] > (uint64_t)INT64_MAX) return iso_fail(ISO_EDATA, "'%s': tensor '%s': shape overflows", path, s->name);
            shape[d] = (int64_t)s->shape[d];
        }
        if ((rc = set_shape(t, s->n_dims, shape))) return iso_wrap(rc, "'%s'", path);
        t->nbytes = s->nbytes;
        t->data = s->data;
        t->file = (int)(w->n_files - 1);
        w->n++;
    }
    return 0;
}

static int add_gguf(struct weights *w, const char *path)
{
    w->files = calloc(1, sizeof *w->files);
    if (!w->files) return iso_fail(ISO_EINTERNAL, "out of memory");
    struct wt_file *f = &w->files[0];
    f->kind = F_GGUF;
    int rc = gguf_open(path, &f->gg);
    if (rc) return iso_wrap(rc, "'%s'", path);
    w->n_files = 1;
    struct gguf *g = f->gg;
    f->map = g->map; f->size = g->size; f->owned = g->fd >= 0;
    w->own_names = calloc(g->n_tensors + 1, sizeof *w->own_names);
    if (!w->own_names || (rc = grow_tensors(w, g->n_tensors))) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct gguf_tensor *s = &g->tensors[i];
        struct wt_tensor *t = &w->t[w->n];
        memset(t, 0, sizeof *t);
        char *name = w->own_names[i] = strndup(s->name.s, s->name.len);
        if (!name) return iso_fail(ISO_EINTERNAL, "out of memory");
        if (strlen(name) != s->name.len) return iso_fail(ISO_EDATA, "'%s': a tensor name holds a NUL byte", path);
        t->name = name;
        switch (s->type) {
        case GGML_TYPE_F32: t->dtype = WT_F32; t->ggml_type = -1; break;
        case GGML_TYPE_F16: t->dtype = WT_F16; t->ggml_type = -1; break;
        case GGML_TYPE_BF16: t->dtype = WT_BF16; t->ggml_type = -1; break;
        default: t->dtype = WT_GGML; t->ggml_type = (int)s->type; break;
        }
        /* GGUF ne[0] is the fastest-varying dimension: PyTorch order reverses it */
        int64_t shape[WT_MAX_DIMS];
        if (s->n_dims > 4) return iso_fail(ISO_EDATA, "'%s': tensor '%s' has %u dimensions", path, name, s->n_dims);
        for (uint32_t d = 0; d < s->n_dims; d++) {
            if (s->ne[d] > (uint64_t)INT64_MAX) return iso_fail(ISO_EDATA, "'%s': tensor '%s': shape overflows", path, name);
            shape[s->n_dims - 1 - d] = (int64_t)s->ne[d];
        }
        if ((rc = set_shape(t, (int)s->n_dims, shape))) return iso_wrap(rc, "'%s'", path);
        t->nbytes = s->nbytes;
        t->data = s->data;
        t->file = 0;
        w->n++;
    }
    /* string metadata, NUL-terminated once here so weights_meta can hand out C strings */
    w->meta_kv = calloc(2 * g->n_kv + 1, sizeof *w->meta_kv);
    if (!w->meta_kv) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct gguf_kv *kv = &g->kv[i];
        if (kv->val.type != GGUF_T_STRING) continue;
        char *k = strndup(kv->key.s, kv->key.len), *v = strndup(kv->val.v.str.s, kv->val.v.str.len);
        w->meta_kv[2 * w->n_meta] = k;
        w->meta_kv[2 * w->n_meta + 1] = v;
        w->n_meta++;
        if (!k || !v) return iso_fail(ISO_EINTERNAL, "out of memory");
    }
    return 0;
}

static int add_pytorch(struct weights *w, const char *path)
{
    w->files = calloc(1, sizeof *w->files);
    if (!w->files) return iso_fail(ISO_EINTERNAL, "out of memory");
    struct wt_file *f = &w->files[0];
    f->kind = F_PT;
    int rc = ptckpt_open(path, &f->pt);
    if (rc) return rc;
    w->n_files = 1;
    struct ptckpt *p = f->pt;
    f->map = p->map; f->size = p->size; f->owned = p->fd >= 0;
    if ((rc = grow_tensors(w, p->n_tensors))) return rc;
    for (uint64_t i = 0; i < p->n_tensors; i++) {
        const struct pt_tensor *s = &p->tensors[i];
        struct wt_tensor *t = &w->t[w->n];
        memset(t, 0, sizeof *t);
        t->name = s->name;
        t->dtype = s->dtype;
        t->ggml_type = -1;
        t->n_dims = s->n_dims;
        memcpy(t->shape, s->shape, sizeof t->shape);
        memcpy(t->strides, s->strides, sizeof t->strides);
        t->contiguous = s->contiguous;
        t->nelem = s->nelem;
        t->nbytes = s->nbytes;
        t->data = s->data;
        t->file = 0;
        w->n++;
    }
    return 0;
}

/* ---- format detection and directories ---- */

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* the format of a file from its first bytes */
static int sniff(const char *path, enum wt_format *fmt)
{
    uint8_t b[512] = { 0 };
    /* O_NONBLOCK: a FIFO named like a weight file must not hang the open */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return iso_fail(errno == ENOENT ? ISO_ENOINPUT : ISO_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return iso_fail(ISO_EDATA, "'%s' is not a regular file", path);
    }
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    if (n < 0) return iso_fail(ISO_EIO, "cannot read '%s': %s", path, strerror(errno));
    if (n >= 4 && memcmp(b, "GGUF", 4) == 0) { *fmt = WT_FMT_GGUF; return 0; }
    if (n >= 4 && (memcmp(b, "PK\3\4", 4) == 0 || memcmp(b, "PK\5\6", 4) == 0)) { *fmt = WT_FMT_PYTORCH; return 0; }
    /* torch.save before 1.6 (or with _use_new_zipfile_serialization=False) wrote a
     * bare pickle stream (PROTO 0x80 first); older still, a tar file: ptckpt
     * refuses both with the way to re-save them */
    if ((n >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) || (n >= 262 && memcmp(b + 257, "ustar", 5) == 0)) {
        *fmt = WT_FMT_PYTORCH;
        return 0;
    }
    if (n >= 9 && b[8] == '{') { *fmt = WT_FMT_SAFETENSORS; return 0; }
    return iso_fail(ISO_EDATA, "'%s' is not a GGUF, safetensors or PyTorch zip file", path);
}

/* the one file in dir ending with one of sufs; *found 0 when none,
 * ISO_EDATA when several */
static int find_one(const char *dir, const char *const *sufs, char **found)
{
    *found = NULL;
    DIR *d = opendir(dir);
    if (!d) return iso_fail(ISO_EIO, "cannot read directory '%s': %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int match = 0;
        for (int i = 0; sufs[i]; i++) match |= has_suffix(e->d_name, sufs[i]);
        if (!match) continue;
        if (*found) {
            rc = iso_fail(ISO_EDATA, "directory '%s' holds several weight files ('%s' and '%s'): give one", dir,
                          strrchr(*found, '/') + 1, e->d_name);
            free(*found);
            *found = NULL;
            break;
        }
        if (asprintf(found, "%s/%s", dir, e->d_name) < 0) {
            *found = NULL;
            rc = iso_fail(ISO_EINTERNAL, "out of memory");
            break;
        }
    }
    closedir(d);
    return rc;
}

/* `*.safetensors.index.json` (transformers/diffusers sharding):
 * {"metadata": {...}, "weight_map": {"tensor name": "shard file name"}} */
static int open_sharded(struct weights *w, const char *index)
{
    json_error_t jerr;
    json_t *root = json_load_file(index, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0;
    char **shards = NULL;
    size_t n_shards = 0;
    if (!root) return iso_fail(ISO_EDATA, "'%s': %s (line %d)", index, jerr.text, jerr.line);
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map)) {
        rc = iso_fail(ISO_EDATA, "'%s': no \"weight_map\" object", index);
        goto done;
    }
    shards = calloc(json_object_size(map) + 1, sizeof *shards);
    if (!shards) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    const char *k;
    json_t *v;
    json_object_foreach(map, k, v) {
        const char *s = json_string_value(v);
        /* a shard is a plain file name next to the index: never a path that leaves the directory */
        if (!s || !*s || strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
            rc = iso_fail(ISO_EDATA, "'%s': tensor '%s': the shard is not a file name in the same directory", index, k);
            goto done;
        }
        size_t i;
        for (i = 0; i < n_shards && strcmp(shards[i], s); i++) {}
        if (i == n_shards) shards[n_shards++] = (char *)s;
    }
    for (size_t i = 0; i < n_shards; i++) {
        char *p;
        if (asprintf(&p, "%s/%s", w->dir, shards[i]) < 0) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        rc = add_safetensors(w, p);
        free(p);
        if (rc) goto done;
    }
    if ((rc = build_hash(w))) { rc = iso_wrap(rc, "'%s'", index); goto done; }
    json_object_foreach(map, k, v) {
        const struct wt_tensor *t = weights_find(w, k);
        size_t i;
        for (i = 0; i < n_shards && strcmp(shards[i], json_string_value(v)); i++) {}
        if (!t || t->file != (int)i) {
            rc = iso_fail(ISO_EDATA, "'%s': tensor '%s' is not in shard '%s'", index, k, json_string_value(v));
            goto done;
        }
    }
done:
    free(shards);
    json_decref(root);
    return rc;
}

static int open_file(struct weights *w, const char *path)
{
    enum wt_format fmt = WT_FMT_SAFETENSORS;
    int rc = sniff(path, &fmt);
    if (rc) return rc;
    w->fmt = fmt;
    switch (fmt) {
    case WT_FMT_GGUF: return add_gguf(w, path);
    case WT_FMT_PYTORCH: return add_pytorch(w, path);
    default: return add_safetensors(w, path);
    }
}

int weights_open(const char *path, struct weights **out)
{
    *out = NULL;
    int rc = 0;
    char *found = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return iso_fail(errno == ENOENT ? ISO_ENOINPUT : ISO_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct weights *w = calloc(1, sizeof *w);
    if (!w) return iso_fail(ISO_EINTERNAL, "out of memory");
    if (!(w->path = strdup(path))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if (S_ISDIR(sb.st_mode)) {
        if (!(w->dir = strdup(path))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        static const char *const idx[] = { ".safetensors.index.json", NULL }, *const st[] = { ".safetensors", NULL },
                                 *const pt[] = { ".pth", ".pt", ".bin", NULL };
        if ((rc = find_one(path, idx, &found))) goto done;
        if (found) {
            w->fmt = WT_FMT_SAFETENSORS_SHARDED;
            rc = open_sharded(w, found);
            goto done;   /* the hash is built */
        }
        if ((rc = find_one(path, st, &found))) goto done;
        if (!found && (rc = find_one(path, pt, &found))) goto done;
        if (!found) {
            rc = iso_fail(ISO_ENOINPUT, "directory '%s' holds no *.safetensors.index.json, *.safetensors, .pth, .pt or .bin file", path);
            goto done;
        }
        if ((rc = open_file(w, found))) goto done;
    } else if (!S_ISREG(sb.st_mode)) {   /* a FIFO or a device would block or never end */
        rc = iso_fail(ISO_EDATA, "'%s' is not a regular file or a directory", path);
        goto done;
    } else {
        const char *slash = strrchr(path, '/');
        w->dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
        if (!w->dir) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        if ((rc = open_file(w, path))) goto done;
    }
    rc = build_hash(w);
    if (rc) rc = iso_wrap(rc, "'%s'", found ? found : path);
done:
    free(found);
    if (rc) weights_close(&w);
    *out = w;
    return rc;
}

void weights_close(struct weights **wp)
{
    struct weights *w = *wp;
    if (!w) return;
    for (size_t i = 0; i < w->n_files; i++) {
        st_close(&w->files[i].st);
        gguf_close(&w->files[i].gg);
        ptckpt_close(&w->files[i].pt);
    }
    free(w->files);
    if (w->own_names)
        for (size_t i = 0; w->own_names[i]; i++) free(w->own_names[i]);
    free(w->own_names);
    for (size_t i = 0; i < 2 * w->n_meta; i++) free(w->meta_kv[i]);
    free(w->meta_kv);
    free(w->t);
    free(w->hash);
    free(w->path);
    free(w->dir);
    free(w);
    *wp = NULL;
}

/* ---- queries ---- */

enum wt_format weights_format(const struct weights *w) { return w->fmt; }

const char *weights_format_name(const struct weights *w)
{
    static const char *const names[] = { "gguf", "safetensors", "safetensors-sharded", "pytorch" };
    return (unsigned)w->fmt < 4 ? names[w->fmt] : "?";
}

const char *weights_path(const struct weights *w) { return w->path; }
const char *weights_dir(const struct weights *w) { return w->dir; }
size_t weights_count(const struct weights *w) { return w->n; }
const struct wt_tensor *weights_at(const struct weights *w, size_t i) { return i < w->n ? &w->t[i] : NULL; }

const struct wt_tensor *weights_find(const struct weights *w, const char *name)
{
    if (!w->hcap) return NULL;
    size_t h = hash_str(name) & (w->hcap - 1);
    while (w->hash[h]) {
        const struct wt_tensor *t = &w->t[w->hash[h] - 1];
        if (strcmp(t->name, name) == 0) return t;
        h = (h + 1) & (w->hcap - 1);
    }
    return NULL;
}

/* prefix + name in buf; 0 when it does not fit */
static int join(char *buf, size_t cap, const char *prefix, const char *name)
{
    int n = snprintf(buf, cap, "%s%s", prefix ? prefix : "", name);
    return n >= 0 && (size_t)n < cap;
}

const char *weights_detect_prefix(const struct weights *w, const char *probe, const char *const *prefixes)
{
    char buf[1024];
    for (size_t i = 0; prefixes[i]; i++)
        if (join(buf, sizeof buf, prefixes[i], probe) && weights_find(w, buf)) return prefixes[i];
    return NULL;
}

/* "[2, 3]" */
static void fmt_shape(char *buf, size_t cap, int n, const int64_t *shape)
{
    size_t o = 0;
    o += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && o < cap; i++) o += (size_t)snprintf(buf + o, cap - o, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

int weights_expect(const struct weights *w, const char *prefix, const char *name, int n_dims, int64_t *shape,
                   const struct wt_tensor **out)
{
    char full[1024];
    if (out) *out = NULL;
    if (!join(full, sizeof full, prefix, name)) return iso_fail(ISO_EDATA, "tensor name '%s%s' is too long", prefix ? prefix : "", name);
    const struct wt_tensor *t = weights_find(w, full);
    if (!t) return iso_fail(ISO_EDATA, "'%s': tensor '%s' is missing", w->path, full);
    int ok = t->n_dims == n_dims;
    for (int i = 0; ok && i < n_dims; i++) ok = shape[i] < 0 || shape[i] == t->shape[i];
    if (!ok) {
        char want[256], got[256];
        fmt_shape(want, sizeof want, n_dims, shape);
        fmt_shape(got, sizeof got, t->n_dims, t->shape);
        return iso_fail(ISO_EDATA, "'%s': tensor '%s' has shape %s, expected %s", w->path, full, got, want);
    }
    for (int i = 0; i < n_dims; i++) shape[i] = t->shape[i];
    if (out) *out = t;
    return 0;
}

const char *weights_meta(const struct weights *w, const char *key)
{
    for (size_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta_kv[2 * i], key) == 0) return w->meta_kv[2 * i + 1];
    for (size_t i = 0; i < w->n_files; i++) {
        const char *v = w->files[i].st ? st_meta(w->files[i].st, key) : NULL;
        if (v) return v;
    }
    return NULL;
}

void weights_drop(const struct weights *w, const struct wt_tensor *t)
{
    if (t->file < 0 || (size_t)t->file >= w->n_files || !t->nbytes) return;
    const struct wt_file *f = &w->files[t->file];
    if (!f->owned) return;   /* not our mapping */
    /* the mapping is read-only and file-backed: dropping whole pages around
     * the tensor loses nothing, they are read again from the file if touched */
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)t->data & ~(pg - 1);
    uintptr_t e = ((uintptr_t)t->data + t->nbytes + pg - 1) & ~(pg - 1);
    uintptr_t map_end = ((uintptr_t)f->map + f->size + pg - 1) & ~(pg - 1);
    if (a < (uintptr_t)f->map || e > map_end) return;
    madvise((void *)a, e - a, MADV_DONTNEED);
}

/* ---- conversion to float32 ---- */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* one element at byte pointer p */
static float elem_f32(enum wt_dtype d, const uint8_t *p)
{
    switch (d) {
    case WT_F32: { float f; memcpy(&f, p, 4); return f; }
    case WT_F16: return wt_f16_to_f32(le16(p));
    case WT_BF16: return wt_bf16_to_f32(le16(p));
    case WT_F8_E4M3: return wt_e4m3_to_f32(*p);
    case WT_F8_E5M2: return wt_e5m2_to_f32(*p);
    case WT_F64: { double v; memcpy(&v, p, 8); return (float)v; }
    case WT_I8: return (float)(int8_t)*p;
    case WT_U8: return (float)*p;
    case WT_BOOL: return *p ? 1.0f : 0.0f;
    case WT_I16: { int16_t v; memcpy(&v, p, 2); return (float)v; }
    case WT_I32: { int32_t v; memcpy(&v, p, 4); return (float)v; }
    case WT_I64: { int64_t v; memcpy(&v, p, 8); return (float)v; }
    default: return 0.0f;
    }
}

int weights_to_f32(const struct wt_tensor *t, uint64_t first, uint64_t nelem, float *dst)
{
    if (first > t->nelem || nelem > t->nelem - first)
        return iso_fail(ISO_EINTERNAL, "tensor '%s': elements [%" PRIu64 ", +%" PRIu64 ") are past its %" PRIu64, t->name,
                        first, nelem, t->nelem);
    const uint8_t *base = t->data;
    if (t->dtype == WT_GGML) {
        size_t be = ggml_type_block_elems((enum ggml_type)t->ggml_type), bb = ggml_type_block_bytes((enum ggml_type)t->ggml_type);
        float tmp[256];
        if (!be || be > 256 || !gguf_dequant_has((enum ggml_type)t->ggml_type))
            return iso_fail(ISO_EDATA, "tensor '%s': cannot convert GGUF type %s to float32", t->name,
                            ggml_type_name((enum ggml_type)t->ggml_type));
        uint64_t done = 0;
        while (done < nelem) {
            uint64_t e = first + done, b = e / be, in = e % be, take = be - in;
            if (take > nelem - done) take = nelem - done;
            if (in == 0 && take == be) gguf_dequant_block((enum ggml_type)t->ggml_type, base + b * bb, dst + done);
            else {
                gguf_dequant_block((enum ggml_type)t->ggml_type, base + b * bb, tmp);
                memcpy(dst + done, tmp + in, take * sizeof *dst);
            }
            done += take;
        }
        return 0;
    }
    size_t es = wt_dtype_size(t->dtype);
    if (!es) return iso_fail(ISO_EDATA, "tensor '%s': cannot convert %s to float32", t->name, wt_dtype_name(t->dtype));
    if (t->contiguous) {
        const uint8_t *p = base + first * es;
        switch (t->dtype) {
        case WT_F32: memcpy(dst, p, nelem * 4); break;
        case WT_BF16: for (uint64_t i = 0; i < nelem; i++) dst[i] = wt_bf16_to_f32(le16(p + 2 * i)); break;
        case WT_F16: for (uint64_t i = 0; i < nelem; i++) dst[i] = wt_f16_to_f32(le16(p + 2 * i)); break;
        default: for (uint64_t i = 0; i < nelem; i++) dst[i] = elem_f32(t->dtype, p + i * es); break;
        }
        return 0;
    }
    /* a strided view: walk the row-major index of `first` like an odometer */
    int64_t idx[WT_MAX_DIMS];
    uint64_t rem = first;
    for (int d = t->n_dims - 1; d >= 0; d--) {
        idx[d] = t->shape[d] ? (int64_t)(rem % (uint64_t)t->shape[d]) : 0;
        rem = t->shape[d] ? rem / (uint64_t)t->shape[d] : 0;
    }
    int64_t off = 0;
    for (int d = 0; d < t->n_dims; d++) off += idx[d] * t->strides[d];
    for (uint64_t i = 0; i < nelem; i++) {
        dst[i] = elem_f32(t->dtype, base + off * (int64_t)es);
        for (int d = t->n_dims - 1; d >= 0; d--) {
            off += t->strides[d];
            if (++idx[d] < t->shape[d]) break;
            off -= t->strides[d] * t->shape[d];
            idx[d] = 0;
        }
    }
    return 0;
}
