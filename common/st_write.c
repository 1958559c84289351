/* st_write.c — safetensors writer (see st_write.h). Layout: u64 LE header
 * length N, N bytes of JSON padded with spaces to a multiple of 8 (so the
 * data of every 8-byte-aligned tensor stays aligned in a mapping), data. */
#include "st_write.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"

struct job {
    const struct st_out *t;
    size_t n;
    char *header;            /* padded JSON */
    uint64_t header_len;
    uint64_t *bytes;
};

static int writer(FILE *f, void *ctx)
{
    struct job *j = ctx;
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(j->header_len >> (8 * i));
    if (fwrite(len, 1, 8, f) != 8 || fwrite(j->header, 1, j->header_len, f) != j->header_len)
        return iso_fail(ISO_EIO, "write failed");
    for (size_t i = 0; i < j->n; i++)
        if (j->bytes[i] && fwrite(j->t[i].data, 1, j->bytes[i], f) != j->bytes[i])
            return iso_fail(ISO_EIO, "write failed");
    return 0;
}

int st_write(const char *path, const struct st_out *t, size_t n, const char *const *meta_kv)
{
    int rc = 0;
    json_t *root = json_object();
    struct job j = { t, n, NULL, 0, calloc(n ? n : 1, sizeof(uint64_t)) };
    char *js = NULL;
    if (!root || !j.bytes) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if (meta_kv && meta_kv[0]) {
        json_t *m = json_object();
        json_object_set_new(root, "__metadata__", m);
        for (size_t i = 0; meta_kv[i] && meta_kv[i + 1]; i += 2)
            json_object_set_new(m, meta_kv[i], json_string(meta_kv[i + 1]));
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const struct st_out *x = &t[i];
        size_t es = st_dtype_size(x->dtype);
        if (!x->name || !x->name[0] || !strcmp(x->name, "__metadata__") || es == 0 || x->n_dims < 0 ||
            x->n_dims > ST_MAX_DIMS) {
            rc = iso_fail(ISO_EUSAGE, "st_write: bad tensor %zu ('%s')", i, x->name ? x->name : "");
            goto done;
        }
        if (json_object_get(root, x->name)) {
            rc = iso_fail(ISO_EUSAGE, "st_write: tensor '%s' given twice", x->name);
            goto done;
        }
        uint64_t b = es;
        json_t *shape = json_array();
        for (int d = 0; d < x->n_dims; d++) {
            if (__builtin_mul_overflow(b, x->shape[d], &b)) {
                json_decref(shape);
                rc = iso_fail(ISO_EUSAGE, "st_write: tensor '%s' is too large", x->name);
                goto done;
            }
            json_array_append_new(shape, json_integer((json_int_t)x->shape[d]));
        }
        j.bytes[i] = b;
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string(st_dtype_name(x->dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets",
                            json_pack("[II]", (json_int_t)off, (json_int_t)(off + b)));
        json_object_set_new(root, x->name, e);
        off += b;
    }
    /* JSON_PRESERVE_ORDER: tensors in the order given, keys in insertion order */
    js = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!js) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    size_t jl = strlen(js), padded = (jl + 7) & ~(size_t)7;
    j.header = malloc(padded);
    if (!j.header) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    memcpy(j.header, js, jl);
    memset(j.header + jl, ' ', padded - jl);
    j.header_len = padded;
    rc = fs_write_atomic(path, writer, &j);
    if (rc) iso_wrap(rc, "cannot write '%s'", path);
done:
    free(js);
    free(j.header);
    free(j.bytes);
    json_decref(root);
    return rc;
}
