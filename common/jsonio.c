#include "jsonio.h"
#include "nn_heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "log.h"

json_t *jsonio_header_new(void)
{
    return json_pack("{s:s, s:s, s:s}", "tool", log_tool(), "version", ISOPIPE_VERSION, "task_id", log_task_id());
}

static int dump_cb(FILE *f, void *ctx)
{
    const json_t *root = ctx;
    /* 15 significant digits: epoch times keep sub-millisecond resolution (10
     * rounded them to whole seconds) and decimal inputs print as written */
    if (json_dumpf(root, f, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) != 0)
        return iso_fail(ISO_EIO, "cannot write JSON: %s", strerror(errno));
    fputc('\n', f);
    return 0;
}

int jsonio_write_atomic(const char *path, const json_t *root)
{
    return fs_write_atomic(path, dump_cb, (void *)root);
}

int jsonio_load(const char *path, json_t **out)
{
    *out = NULL;
    char *data;
    size_t len;
    int rc = fs_read_all(path, &data, &len, (size_t)256 << 20);
    if (rc) return rc;
    json_error_t e;
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &e);
    free(data);
    if (!j) return iso_fail(ISO_EDATA, "cannot parse '%s': line %d column %d: %s", path, e.line, e.column, e.text);
    *out = j;
    return 0;
}

const char *jsonio_str(const json_t *obj, const char *key, const char *def)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : def;
}

int64_t jsonio_int(const json_t *obj, const char *key, int64_t def)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) return json_integer_value(v);
    if (json_is_real(v)) {
        /* converting a double outside int64's range is undefined (C11 6.3.1.4) */
        double d = json_real_value(v);
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) return (int64_t)d;
    }
    return def;
}

double jsonio_num(const json_t *obj, const char *key, double def)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : def;
}

void jsonio_set_path(json_t *obj, const char *key, const char *json_path, const char *target)
{
    char *rel = fs_relative(json_path, target);
    json_object_set_new(obj, key, json_string(rel ? rel : target));
    free(rel);
}

void jsonio_set_act_stats(json_t *obj, const struct nn_act_stats *st)
{
    if (!st->reserved && !st->beyond) return;
    json_object_set_new(obj, "activations",
                        json_pack("{s:I, s:I, s:I, s:I}", "reserved", (json_int_t)st->reserved, "high_water",
                                  (json_int_t)st->high, "peak", (json_int_t)st->peak, "beyond_reserve",
                                  (json_int_t)st->beyond));
}
