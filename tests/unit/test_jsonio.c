/* test_jsonio.c — JSON helpers (common/jsonio.c): the common header,
 * atomic writes, load errors with line and column, typed getters and
 * paths relative to the JSON file. */
#include <dirent.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "jsonio.h"
#include "log.h"
#include "test.h"

static char dir[600];

static char *P(const char *name) { return test_path_in(dir, name); }

static void put(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    if (f) { fputs(s, f); fclose(f); }
}

static int entries(const char *d)
{
    DIR *dd = opendir(d);
    int n = 0;
    struct dirent *e;
    while (dd && (e = readdir(dd)))
        if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))) n++;
    if (dd) closedir(dd);
    return n;
}

int main(void)
{
    char *d = test_tmpdir();
    if (!d || chdir(d) != 0) { printf("FAIL - cannot create a temporary directory\n0 passed, 1 failed, 0 skipped\n"); return 1; }
    snprintf(dir, sizeof dir, "%s", d);

    TEST("header");
    log_init("flow-extract", "HDR1", LOG_ERROR, NULL);
    json_t *h = jsonio_header_new();
    CHECK_STR(jsonio_str(h, "tool", NULL), "flow-extract");
    CHECK_STR(jsonio_str(h, "version", NULL), ISOPIPE_VERSION);
    CHECK_STR(jsonio_str(h, "task_id", NULL), "HDR1");
    CHECK(json_object_size(h) == 3);

    TEST("atomic write and load");
    fs_mkdir_p(P("out"));
    json_object_set_new(h, "fps", json_real(23.976));
    json_object_set_new(h, "frames", json_integer(49));
    json_object_set_new(h, "started", json_real(1763822204.123456));
    json_object_set_new(h, "prompt", json_string("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \"quoted\"\n"));
    jsonio_set_path(h, "video", P("out/stitch.json"), P("out/final.mp4"));
    jsonio_set_path(h, "keyframe", P("out/stitch.json"), P("kf/a.png"));
    jsonio_set_path(h, "segment", "out/stitch.json", "out/seg_000");   /* relative to the working directory */
    jsonio_set_path(h, "self_dir", P("out/stitch.json"), P("out"));
    CHECK_STR(jsonio_str(h, "video", NULL), "final.mp4");
    CHECK_STR(jsonio_str(h, "keyframe", NULL), "../kf/a.png");
    CHECK_STR(jsonio_str(h, "segment", NULL), "seg_000");
    CHECK_STR(jsonio_str(h, "self_dir", NULL), ".");
    CHECK(jsonio_write_atomic(P("out/stitch.json"), h) == 0);
    CHECK(entries(P("out")) == 1);
    json_t *back = NULL;
    CHECK(jsonio_load(P("out/stitch.json"), &back) == 0 && json_object_size(back) == json_object_size(h));
    CHECK(back && json_equal(json_object_get(h, "prompt"), json_object_get(back, "prompt")));
    CHECK(back && jsonio_num(back, "fps", 0) == 23.976);
    CHECK_NEAR(jsonio_num(back, "started", 0), 1763822204.123456, 1e-5); /* epoch times keep their fraction */
    char *text;
    size_t n;
    CHECK(fs_read_all(P("out/stitch.json"), &text, &n, 1 << 20) == 0 && n > 0 && text[n - 1] == '\n' && strstr(text, "\n  \"tool\""));
    free(text);
    json_decref(back);
    /* replace, and refuse a missing directory without leaving anything */
    json_object_set_new(h, "frames", json_integer(50));
    CHECK(jsonio_write_atomic(P("out/stitch.json"), h) == 0);
    CHECK(jsonio_load(P("out/stitch.json"), &back) == 0 && jsonio_int(back, "frames", 0) == 50);
    json_decref(back);
    CHECK(jsonio_write_atomic(P("missing/x.json"), h) == ISO_ECANTCREAT && !fs_exists(P("missing")));
    CHECK(entries(P("out")) == 1);
    json_decref(h);

    TEST("load errors");
    put(P("bad.json"), "{\n  \"a\": 1,\n  \"b\": ]\n}\n");
    json_t *j = (json_t *)1;
    CHECK(jsonio_load(P("bad.json"), &j) == ISO_EDATA && j == NULL);
    CHECKF(strstr(iso_errmsg(), P("bad.json")) && strstr(iso_errmsg(), "line 3 column 8"), "%s", iso_errmsg());
    put(P("dup.json"), "{\"a\": 1, \"a\": 2}");
    CHECK(jsonio_load(P("dup.json"), &j) == ISO_EDATA && strstr(iso_errmsg(), "line 1"));
    put(P("empty.json"), "");
    CHECK(jsonio_load(P("empty.json"), &j) == ISO_EDATA);
    put(P("scalar.json"), "42");
    CHECK(jsonio_load(P("scalar.json"), &j) == ISO_EDATA);
    put(P("trailing.json"), "{} x");
    CHECK(jsonio_load(P("trailing.json"), &j) == ISO_EDATA && strstr(iso_errmsg(), "line 1 column"));
    put(P("badutf8.json"), "{\"a\": \"\xff\"}");
    CHECK(jsonio_load(P("badutf8.json"), &j) == ISO_EDATA);
    CHECK(jsonio_load(P("absent.json"), &j) == ISO_ENOINPUT && strstr(iso_errmsg(), "absent.json"));
    CHECK(jsonio_load(P("out"), &j) != 0 && j == NULL); /* a directory */

    TEST("getters");
    j = json_pack("{s:s, s:i, s:f, s:f, s:f, s:b, s:n, s:o}", "s", "text", "i", 7, "r", 2.9, "neg", -2.9, "huge", 1e300,
                  "t", 1, "null", "arr", json_array());
    CHECK_STR(jsonio_str(j, "s", "def"), "text");
    CHECK_STR(jsonio_str(j, "i", "def"), "def");
    CHECK_STR(jsonio_str(j, "missing", "def"), "def");
    CHECK(jsonio_str(j, "arr", NULL) == NULL);
    CHECK(jsonio_int(j, "i", -1) == 7);
    CHECK(jsonio_int(j, "r", -1) == 2);
    CHECK(jsonio_int(j, "neg", -1) == -2);
    CHECK(jsonio_int(j, "huge", -1) == -1); /* out of int64's range: the default, not undefined behaviour */
    CHECK(jsonio_int(j, "s", -1) == -1 && jsonio_int(j, "t", -1) == -1 && jsonio_int(j, "null", -1) == -1);
    CHECK(jsonio_num(j, "i", 0) == 7.0 && jsonio_num(j, "r", 0) == 2.9 && jsonio_num(j, "s", 0.5) == 0.5);
    CHECK(jsonio_int(NULL, "i", 3) == 3 && jsonio_str(NULL, "s", "d") && jsonio_num(NULL, "r", 1.5) == 1.5);
    json_decref(j);

    log_close();
    if (chdir("/") == 0) fs_rm_rf(dir);
    return test_report();
}
