/* test_topic.c — topic files (common/topic.c, docs/DESIGN.md "Topic file"):
 * keys and comments, a file without keys being all topic, keyframes
 * resolved against the topic file, bad values with file:line, and text
 * that is not UTF-8 (invalid bytes, overlong forms, surrogates, code
 * points past U+10FFFF, NUL) refused; a BOM is skipped. */
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "test.h"
#include "topic.h"

static char dir[600];

static char *P(const char *name) { return test_path_in(dir, name); }

static void put(const char *path, const char *s, size_t n)
{
    char *d = fs_dirname(path);
    fs_mkdir_p(d);
    free(d);
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(s, 1, n, f); fclose(f); }
}

static int parse_str(const char *s, struct topic *t) { return topic_parse(s, strlen(s), "x.topic", t); }

/* the text must be refused with ISO_EDATA and a message containing why */
static void bad(const char *what, const char *text, size_t n, const char *why)
{
    struct topic t;
    iso_errclear();
    int rc = topic_parse(text, n, "sample_inputs/bad.topic", &t);
    CHECKF(rc == ISO_EDATA && strstr(iso_errmsg(), why) && strstr(iso_errmsg(), "bad.topic"), "%s: %d '%s'", what, rc, iso_errmsg());
    CHECK(t.text == NULL && t.keyframes == NULL && t.nkeyframes == 0);
}

static void test_keys(void)
{
    TEST("keys and comments");
    const char *s = "# a travel between two images\n"
                    "topic: a harbor at dawn, fishing boats\n"
                    "   # an indented comment\n"
                    "\n"
                    "keyframes: kf/a.png, ../b.png\tkf/c.png\n"
                    "keyframes: /abs/d.png\n"
                    "segments: 3\n"
                    "frames:49\n"
                    "overlap :  8  \n"
                    "fps: 23.976\n"
                    "width: 832\n"
                    "height: 480\n"
                    "seed: 18446744073709551615\n"
                    "topic: and gulls: many of them\n";
    struct topic t;
    put(P("in/sub/harbor.topic"), s, strlen(s));
    int rc = topic_load(P("in/sub/harbor.topic"), &t);
    CHECKF(rc == 0, "%s", iso_errmsg());
    if (rc) return;
    CHECK_STR(t.text, "a harbor at dawn, fishing boats and gulls: many of them");
    CHECK_STR(t.path, P("in/sub/harbor.topic"));
    CHECK(t.nkeyframes == 4);
    if (t.nkeyframes == 4) {
        CHECK_STR(t.keyframes[0], P("in/sub/kf/a.png"));
        CHECK_STR(t.keyframes[1], P("in/sub/../b.png"));
        CHECK_STR(t.keyframes[2], P("in/sub/kf/c.png"));
        CHECK_STR(t.keyframes[3], "/abs/d.png");
    }
    CHECK(t.segments == 3 && t.frames == 49 && t.overlap == 8 && t.fps == 23.976 && t.width == 832 && t.height == 480);
    CHECK(t.seed == UINT64_MAX && t.seed_set);
    topic_free(&t);
    CHECK(t.text == NULL && t.keyframes == NULL && t.overlap == -1);
    /* a relative topic path resolves keyframes against its directory, not the cwd */
    if (chdir(dir) == 0) {
        CHECK(topic_load("in/sub/harbor.topic", &t) == 0 && t.nkeyframes == 4 && strcmp(t.keyframes[0], "in/sub/kf/a.png") == 0);
        topic_free(&t);
    }
    /* defaults when keys are absent; CRLF line ends */
    CHECK(parse_str("topic: only this\r\nfps: 16\r\n", &t) == 0);
    CHECK_STR(t.text, "only this");
    CHECK(t.fps == 16 && t.segments == 0 && t.frames == 0 && t.overlap == -1 && t.width == 0 && !t.seed_set && t.nkeyframes == 0);
    topic_free(&t);
    /* in-memory text without a path: keyframes are kept as written */
    CHECK(topic_parse("topic: t\nkeyframes: a.png\n", 26, NULL, &t) == 0 && t.path == NULL && t.nkeyframes == 1 &&
          strcmp(t.keyframes[0], "a.png") == 0);
    topic_free(&t);
    /* Wan's knobs; an empty negative is the empty prompt, not "not given" */
    CHECK(parse_str("topic: t\nsteps: 30\nguidance: 5.5\nshift: 3\nsampler: euler\nnegative: blurry, $(x)\n", &t) == 0);
    CHECK(t.steps == 30 && t.guidance == 5.5 && t.shift == 3);
    CHECK_STR(t.sampler, "euler");
    CHECK_STR(t.negative, "blurry, $(x)");
    topic_free(&t);
    CHECK(t.sampler == NULL && t.negative == NULL);
    CHECK(parse_str("topic: t\nnegative:\n", &t) == 0 && t.negative && t.negative[0] == 0 && t.steps == 0 && t.guidance == 0);
    topic_free(&t);
    /* a key name that only starts like a key is not one: all topic */
    CHECK(parse_str("topics: many\n", &t) == 0);
    CHECK_STR(t.text, "topics: many");
    topic_free(&t);
}

static void test_all_topic(void)
{
    TEST("a file without keys is all topic");
    struct topic t;
    CHECK(parse_str("# comment\n  A quiet harbor at dawn.  \n\n# more\nBoats drift; gulls circle.\n", &t) == 0);
    CHECK_STR(t.text, "A quiet harbor at dawn. Boats drift; gulls circle.");
    CHECK(t.nkeyframes == 0 && t.overlap == -1);
    topic_free(&t);
    CHECK(parse_str("one line, no newline", &t) == 0);
    CHECK_STR(t.text, "one line, no newline");
    topic_free(&t);
    /* colons in plain text are fine when no line starts with a known key */
    CHECK(parse_str("Scene: a harbor\nMood: calm\n", &t) == 0);
    CHECK_STR(t.text, "Scene: a harbor Mood: calm");
    topic_free(&t);
}

static void test_bad(void)
{
    TEST("bad values, empty files");
    const char *cases[][3] = {
        { "frames not a number", "topic: x\nframes: many\n", "bad.topic:2: frames: 'many' is not an integer" },
        { "frames too small", "topic: x\nframes: 1\n", "bad.topic:2: frames" },
        { "segments zero", "topic: x\nsegments: 0\n", "segments" },
        { "overlap negative", "topic: x\noverlap: -1\n", "overlap" },
        { "width 1", "topic: x\nwidth: 1\n", "width" },
        { "height huge", "topic: x\nheight: 100000\n", "height" },
        { "trailing junk", "topic: x\nwidth: 832px\n", "width" },
        { "fps zero", "topic: x\nfps: 0\n", "fps" },
        { "fps nan", "topic: x\nfps: nan\n", "fps" },
        { "fps unit", "topic: x\nfps: 16 fps\n", "fps" },
        { "fps empty", "topic: x\nfps:\n", "fps" },
        { "seed negative", "topic: x\nseed: -1\n", "seed" },
        { "seed overflow", "topic: x\nseed: 18446744073709551616\n", "seed" },
        { "unknown key", "topic: x\ncolour: blue\n", "bad.topic:2: unknown key 'colour'" },
        { "steps zero", "topic: x\nsteps: 0\n", "bad.topic:2: steps" },
        { "guidance below 1", "topic: x\nguidance: 0.5\n", "bad.topic:2: guidance: '0.5' is not a number in [1, 100]" },
        { "shift zero", "topic: x\nshift: 0\n", "bad.topic:2: shift" },
        { "shift text", "topic: x\nshift: high\n", "shift" },
        { "unknown sampler", "topic: x\nsampler: ddim\n", "bad.topic:2: sampler: 'ddim' is not unipc or euler" },
        { "no topic key", "fps: 16\nframes: 10\n", "has no topic" },
        { "empty topic value", "topic:   \n", "has no topic" },
        { "empty file", "", "has no topic" },
        { "only comments", "# nothing\n   \n# here\n", "has no topic" },
        { "only a BOM", "\xef\xbb\xbf", "has no topic" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) bad(cases[i][0], cases[i][1], strlen(cases[i][1]), cases[i][2]);
    struct topic t;
    CHECK(topic_load(P("absent.topic"), &t) == ISO_ENOINPUT && strstr(iso_errmsg(), "absent.topic"));
    put(P("empty.topic"), "", 0);
    CHECK(topic_load(P("empty.topic"), &t) == ISO_EDATA && strstr(iso_errmsg(), "empty.topic"));
    /* larger than the 1 MiB a topic file may be */
    size_t big = ((size_t)1 << 20) + 1;
    char *b = malloc(big);
    memset(b, 'a', big);
    put(P("big.topic"), b, big);
    CHECK(topic_load(P("big.topic"), &t) == ISO_EDATA);
    put(P("ok.topic"), b, big - 1);
    CHECK(topic_load(P("ok.topic"), &t) == 0 && strlen(t.text) == big - 1);
    topic_free(&t);
    free(b);
}

static void test_utf8(void)
{
    TEST("UTF-8");
    struct topic t;
    /* valid: 2-, 3-, 4-byte forms at their edges */
    const char *ok = "topic: caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\xa5 \xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf\n";
    CHECK(parse_str(ok, &t) == 0 && strstr(t.text, "caf\xc3\xa9 \xe6\x97\xa5") && strstr(t.text, "\xf4\x8f\xbf\xbf"));
    topic_free(&t);
    /* a BOM is skipped, keyed or not */
    CHECK(parse_str("\xef\xbb\xbftopic: x\n", &t) == 0 && strcmp(t.text, "x") == 0);
    topic_free(&t);
    CHECK(parse_str("\xef\xbb\xbfplain words\n", &t) == 0 && strcmp(t.text, "plain words") == 0);
    topic_free(&t);
    struct { const char *what; const char *s; size_t n; } b[] = {
        { "0xff byte", "topic: a\xff" "b\n", 11 },
        { "latin-1 e-acute", "topic: caf\xe9\n", 12 },
        { "lone continuation", "topic: \x80\n", 9 },
        { "overlong slash (C0 AF)", "topic: \xc0\xaf\n", 10 },
        { "overlong NUL (C0 80)", "topic: \xc0\x80\n", 10 },
        { "overlong 3-byte (E0 80 AF)", "topic: \xe0\x80\xaf\n", 11 },
        { "overlong 4-byte (F0 80 80 AF)", "topic: \xf0\x80\x80\xaf\n", 12 },
        { "surrogate D800", "topic: \xed\xa0\x80\n", 11 },
        { "surrogate DFFF", "topic: \xed\xbf\xbf\n", 11 },
        { "past U+10FFFF", "topic: \xf4\x90\x80\x80\n", 12 },
        { "5-byte form", "topic: \xf8\x88\x80\x80\x80\n", 13 },
        { "truncated at end", "topic: \xe6\x97", 9 },
        { "truncated mid-line", "topic: \xe6\x97x\n", 11 },
    };
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        bad(b[i].what, b[i].s, b[i].n, "UTF-8");
        CHECKF(!utf8_valid(b[i].s, b[i].n), "utf8_valid accepts %s", b[i].what);
    }
    bad("NUL byte", "topic: a\0b\n", 11, "NUL");
    CHECK(utf8_valid("", 0) && utf8_valid("plain", 5) && utf8_valid(ok, strlen(ok)));
}

int main(void)
{
    char *d = test_tmpdir();
    if (!d) { printf("FAIL - cannot create a temporary directory\n0 passed, 1 failed, 0 skipped\n"); return 1; }
    snprintf(dir, sizeof dir, "%s", d);
    test_keys();
    test_all_topic();
    test_bad();
    test_utf8();
    if (chdir("/") == 0) fs_rm_rf(dir);
    return test_report();
}
