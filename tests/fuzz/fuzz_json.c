/* fuzz_json.c — libFuzzer target for the JSON readers in common/:
 * jsonio_load (fed through a memfd so the real file path is exercised),
 * the typed getters and jsonio_set_path over scenes.json / segment.json
 * shaped documents, and a dump/reload round trip that must give back an
 * equal document (jansson writes reals with 17 significant digits, so
 * the round trip is exact). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"
#include "jsonio.h"

static void walk(json_t *v, int depth)
{
    if (depth > 64) return;
    if (json_is_object(v)) {
        /* the keys tools read from scenes.json, segment.json, stitch.json */
        static const char *const keys[] = { "tool", "version", "task_id", "prompt", "fps", "frames",
                                            "width", "height", "seed", "overlap", "path", "keyframe", NULL };
        for (int i = 0; keys[i]; i++) {
            const char *s = jsonio_str(v, keys[i], NULL);
            if (s && !json_is_string(json_object_get(v, keys[i]))) abort();
            (void)jsonio_int(v, keys[i], -1);
            (void)jsonio_num(v, keys[i], -1);
        }
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child) walk(child, depth + 1);
        const char *p = jsonio_str(v, "path", NULL);
        if (p && *p) jsonio_set_path(v, "path_rel", "out/scenes.json", p);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) walk(child, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.json", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) { close(fd); return 0; }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    json_t *j = NULL;
    int rc = jsonio_load(path, &j);
    close(fd);
    if (rc) {
        if (rc != ISO_EDATA || j) abort();
        if (!strstr(iso_errmsg(), "line ")) abort();
        return 0;
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (s) {
        json_error_t e;
        json_t *k = json_loads(s, JSON_DECODE_ANY, &e);
        if (!k || !json_equal(j, k)) abort();
        json_decref(k);
        free(s);
    }
    walk(j, 0);
    json_decref(j);
    return 0;
}
