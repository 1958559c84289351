/* safetensors.c — the safetensors reader (see safetensors.h for the layout). */
#include "safetensors.h"

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
#include "fs.h"

/* the format caps the header at 100 MB (huggingface/safetensors,
 * "N: u64 ... header size limit"); a bigger N is a corrupt file */
#define ST_HEADER_MAX (100u * 1000u * 1000u)

static const struct { const char *name; size_t size; } g_dtypes[ST_N_DTYPES] = {
    [ST_BOOL] = { "BOOL", 1 }, [ST_U8] = { "U8", 1 }, [ST_I8] = { "I8", 1 },
    [ST_F8_E4M3] = { "F8_E4M3", 1 }, [ST_F8_E5M2] = { "F8_E5M2", 1 }, [ST_I16] = { "I16", 2 },
    [ST_U16] = { "U16", 2 }, [ST_F16] = { "F16", 2 }, [ST_BF16] = { "BF16", 2 }, [ST_I32] = { "I32", 4 },
    [ST_U32] = { "U32", 4 }, [ST_F32] = { "F32", 4 }, [ST_I64] = { "I64", 8 }, [ST_U64] = { "U64", 8 },
    [ST_F64] = { "F64", 8 },
};

size_t st_dtype_size(enum st_dtype t) { return (unsigned)t < ST_N_DTYPES ? g_dtypes[t].size : 0; }
const char *st_dtype_name(enum st_dtype t) { return (unsigned)t < ST_N_DTYPES ? g_dtypes[t].name : "?"; }

int st_dtype_parse(const char *s)
{
    for (int i = 0; i < ST_N_DTYPES; i++)
        if (strcmp(s, g_dtypes[i].name) == 0) return i;
    return -1;
}

static int cmp_offset(const void *a, const void *b)
{
    const struct st_tensor *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset ? 1 : 0;
}

/* a JSON integer that is >= 0 */
static int get_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_tensor(struct safetensors *st, const char *name, const json_t *v, struct st_tensor *t)
{
    uint64_t buf_len = st->size - st->data_start;
    if (!json_is_object(v)) return iso_fail(ISO_EDATA, "tensor '%s': entry is not an object", name);
    const json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
                 *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd)) return iso_fail(ISO_EDATA, "tensor '%s': no dtype", name);
    int dt = st_dtype_parse(json_string_value(jd));
    if (dt < 0) return iso_fail(ISO_EDATA, "tensor '%s': unknown dtype '%s'", name, json_string_value(jd));
    if (!json_is_array(js)) return iso_fail(ISO_EDATA, "tensor '%s': no shape", name);
    if (json_array_size(js) > ST_MAX_DIMS)
        return iso_fail(ISO_EDATA, "tensor '%s': %zu dimensions (at most %d)", name, json_array_size(js), ST_MAX_DIMS);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return iso_fail(ISO_EDATA, "tensor '%s': data_offsets is not [begin, end]", name);
    uint64_t begin, end;
    if (get_u64(json_array_get(jo, 0), &begin) || get_u64(json_array_get(jo, 1), &end) || begin > end)
        return iso_fail(ISO_EDATA, "tensor '%s': bad data_offsets", name);
    if (end > buf_len)
        return iso_fail(ISO_EDATA, "tensor '%s': data_offsets end %" PRIu64 " is past the data (%" PRIu64 " bytes)", name,
                        end, buf_len);
    t->dtype = (enum st_dtype)dt;
    t->n_dims = (int)json_array_size(js);
    uint64_t elems = 1;
    for (int i = 0; i < t->n_dims; i++) {
        if (get_u64(json_array_get(js, (size_t)i), &t->shape[i]))
            return iso_fail(ISO_EDATA, "tensor '%s': shape[%d] is not a non-negative integer", name, i);
        if (__builtin_mul_overflow(elems, t->shape[i], &elems))
            return iso_fail(ISO_EDATA, "tensor '%s': shape overflows", name);
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(elems, (uint64_t)st_dtype_size(t->dtype), &nbytes))
        return iso_fail(ISO_EDATA, "tensor '%s': size overflows", name);
    if (nbytes != end - begin)
        return iso_fail(ISO_EDATA, "tensor '%s': shape and dtype give %" PRIu64 " bytes, data_offsets %" PRIu64, name,
                        nbytes, end - begin);
    t->name = strdup(name);
    if (!t->name) return iso_fail(ISO_EINTERNAL, "out of memory");
    t->offset = st->data_start + begin;
    t->nbytes = nbytes;
    t->data = st->map + t->offset;
    return 0;
}

static int parse(struct safetensors *st)
{
    int rc = 0;
    json_t *root = NULL;
    if (st->size < 8) return iso_fail(ISO_EDATA, "file of %zu bytes is too short for a safetensors header", st->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | st->map[i];   /* little-endian u64 */
    if (n > ST_HEADER_MAX) return iso_fail(ISO_EDATA, "header length %" PRIu64 " exceeds the 100 MB limit", n);
    if (n > st->size - 8)
        return iso_fail(ISO_EDATA, "header length %" PRIu64 " is past the end of the file (%zu bytes)", n, st->size);
    st->header_len = n;
    st->data_start = 8 + n;
    json_error_t jerr;
    root = json_loadb((const char *)st->map + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = iso_fail(ISO_EDATA, "header JSON: %s at offset %d", jerr.text, jerr.position);
        goto done;
    }
    if (!json_is_object(root)) {
        rc = iso_fail(ISO_EDATA, "header JSON is not an object");
        goto done;
    }
    size_t count = json_object_size(root);
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta) {
        const char *k;
        json_t *v;
        if (!json_is_object(meta)) {
            rc = iso_fail(ISO_EDATA, "__metadata__ is not an object");
            goto done;
        }
        json_object_foreach(meta, k, v) {
            if (!json_is_string(v)) {
                rc = iso_fail(ISO_EDATA, "__metadata__ '%s' is not a string", k);
                goto done;
            }
        }
        st->metadata = json_incref(meta);
        count--;
    }
    st->tensors = calloc(count ? count : 1, sizeof *st->tensors);
    if (!st->tensors) {
        rc = iso_fail(ISO_EINTERNAL, "out of memory");
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) continue;
        if ((rc = parse_tensor(st, key, val, &st->tensors[st->n_tensors]))) goto done;
        if (st->tensors[st->n_tensors].nbytes > st->largest) st->largest = st->tensors[st->n_tensors].nbytes;
        st->n_tensors++;
    }
    qsort(st->tensors, st->n_tensors, sizeof *st->tensors, cmp_offset);
    /* tensors may not share bytes: a writer bug or a crafted file could
     * otherwise make two weights alias */
    const struct st_tensor *prev = NULL;   /* last non-empty tensor */
    for (uint64_t i = 0; i < st->n_tensors; i++) {
        const struct st_tensor *b = &st->tensors[i];
        if (!b->nbytes) continue;   /* empty tensors ([0, 4]) own no bytes */
        if (prev && prev->offset + prev->nbytes > b->offset) {
            rc = iso_fail(ISO_EDATA, "tensors '%s' and '%s' overlap", prev->name, b->name);
            goto done;
        }
        prev = b;
    }
done:
    json_decref(root);
    return rc;
}

static void st_free(struct safetensors *st)
{
    if (!st) return;
    for (uint64_t i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    json_decref(st->metadata);
    if (st->fd >= 0) {
        if (st->map && st->size) munmap((void *)st->map, st->size);
        close(st->fd);
    }
    free(st);
}

int st_open_mem(const uint8_t *buf, size_t len, struct safetensors **out)
{
    *out = NULL;
    struct safetensors *st = calloc(1, sizeof *st);
    if (!st) return iso_fail(ISO_EINTERNAL, "out of memory");
    st->fd = -1;
    st->map = buf;
    st->size = len;
    int rc = parse(st);
    if (rc) st_free(st);
    else *out = st;
    return rc;
}

int st_open(const char *path, struct safetensors **out)
{
    *out = NULL;
    int rc = 0;
    struct safetensors *st = calloc(1, sizeof *st);
    if (!st) return iso_fail(ISO_EINTERNAL, "out of memory");
    if ((rc = fs_open_input(path, &st->fd))) goto done; /* a FIFO or device is refused, never waited on */
    struct stat sb;
    if (fstat(st->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = iso_fail(ISO_EDATA, "'%s' is not a regular file", path);
        goto done;
    }
    st->size = (size_t)sb.st_size;
    if (st->size) {
        void *m = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, st->fd, 0);
        if (m == MAP_FAILED) {
            rc = iso_fail(ISO_EIO, "cannot map '%s': %s", path, strerror(errno));
            goto done;
        }
        st->map = m;
    }
    if ((rc = parse(st))) rc = iso_wrap(rc, "'%s'", path);
done:
    if (rc) st_free(st);
    else *out = st;
    return rc;
}

void st_close(struct safetensors **st)
{
    st_free(*st);
    *st = NULL;
}

const struct st_tensor *st_find(const struct safetensors *st, const char *name)
{
    for (uint64_t i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *st_meta(const struct safetensors *st, const char *key)
{
    return st->metadata ? json_string_value(json_object_get(st->metadata, key)) : NULL;
}

void st_drop(const struct safetensors *st, const struct st_tensor *t)
{
    if (st->fd < 0 || !t->nbytes) return;   /* not our mapping (st_open_mem) */
    /* the mapping is read-only and file-backed, so dropping whole pages
     * around the tensor (outward) loses nothing: they are read again from
     * the file if anyone touches them */
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)t->data & ~(pg - 1);
    uintptr_t e = ((uintptr_t)t->data + t->nbytes + pg - 1) & ~(pg - 1);
    uintptr_t map_end = (uintptr_t)st->map + st->size;
    if (e > ((map_end + pg - 1) & ~(pg - 1))) e = (map_end + pg - 1) & ~(pg - 1);
    madvise((void *)a, e - a, MADV_DONTNEED);
}
