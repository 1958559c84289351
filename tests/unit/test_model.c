/* test_model.c — finding a model (common/model.c, docs/DESIGN.md): a path is
 * used as given; a NAME is looked up in each $ISOPIPE_MODELS directory, then
 * $XDG_DATA_HOME/isopipe/models, then <prefix>/share/isopipe/models and
 * <exe dir>/../models (prefix from /proc/self/exe), as NAME and NAME + each
 * extension; a missing model is ISO_EUNAVAIL naming every path tried and the
 * command that fetches the default models. */
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "model.h"
#include "test.h"

static void touch(const char *p)
{
    char *d = fs_dirname(p);
    fs_mkdir_p(d);
    free(d);
    FILE *f = fopen(p, "wb");
    if (f) { fputs("weights", f); fclose(f); }
}

static const char *const gguf[] = { ".gguf", NULL };
static const char *const st[] = { ".safetensors", ".st", NULL };

static int found(const char *name, const char *const *exts, const char *want)
{
    char *p = NULL;
    int rc = model_find(name, exts, &p);
    int ok = rc == 0 && p && strcmp(p, want) == 0;
    if (!ok) printf("# model_find('%s') = %d '%s' (%s), want '%s'\n", name, rc, p ? p : "", rc ? iso_errmsg() : "", want);
    free(p);
    return ok;
}

int main(void)
{
    char *d = test_tmpdir();
    if (!d || chdir(d) != 0) { printf("FAIL - cannot create a temporary directory\n0 passed, 1 failed, 0 skipped\n"); return 1; }
    char dir[600];
    snprintf(dir, sizeof dir, "%s", d);

    TEST("lookup order");
    setenv("ISOPIPE_MODELS", "m1:m2", 1);
    touch("m2/smollm.gguf");
    CHECK(found("smollm", gguf, "m2/smollm.gguf"));
    touch("m1/smollm.gguf");
    CHECK(found("smollm", gguf, "m1/smollm.gguf"));      /* earlier directory wins */
    touch("m1/smollm");
    CHECK(found("smollm", gguf, "m1/smollm"));           /* NAME before NAME.ext in one directory */
    char xdg[700], xraft[800];
    snprintf(xdg, sizeof xdg, "%s/xdg", dir);
    snprintf(xraft, sizeof xraft, "%s/isopipe/models/raft.st", xdg);
    setenv("XDG_DATA_HOME", xdg, 1);
    touch(xraft);
    CHECK(found("raft", st, xraft));                     /* after the env dirs: the XDG data dir, second extension */
    touch("models/raft.safetensors");                    /* ./models is not on the path: the working directory is no lookup place */
    CHECK(found("raft", st, xraft));
    touch("m2/raft.safetensors");
    CHECK(found("raft", st, "m2/raft.safetensors"));     /* env dirs before the XDG dir */
    unsetenv("ISOPIPE_MODELS");
    CHECK(found("raft", st, xraft));
    setenv("ISOPIPE_MODELS", "", 1);
    CHECK(found("raft", st, xraft));
    setenv("XDG_DATA_HOME", "relative", 1);              /* a relative XDG_DATA_HOME is ignored (XDG spec): ~/.local/share */
    char home[700], hraft[800];
    snprintf(home, sizeof home, "%s/home", dir);
    snprintf(hraft, sizeof hraft, "%s/.local/share/isopipe/models/raft.st", home);
    setenv("HOME", home, 1);
    touch(hraft);
    CHECK(found("raft", st, hraft));
    setenv("XDG_DATA_HOME", xdg, 1);
    setenv("ISOPIPE_MODELS", ":m2::", 1);                /* empty entries are skipped */
    CHECK(found("raft", st, "m2/raft.safetensors"));
    mkdir("m1/wan", 0777);                               /* a directory is not a model file */
    touch("m2/wan.safetensors");
    CHECK(found("wan", st, "m2/wan.safetensors"));
    {                                                    /* ... but it is a model folder for model_find_dir */
        char *q = NULL;
        setenv("ISOPIPE_MODELS", "m1:m2", 1);
        CHECK(model_find_dir("wan", st, &q) == 0 && q && strcmp(q, "m1/wan") == 0);
        free(q);
    }
    setenv("ISOPIPE_MODELS", "m1:m2", 1);
    CHECK(found("smollm", NULL, "m1/smollm"));           /* no extensions */

    TEST("paths");
    touch("sub/my.gguf");
    CHECK(found("sub/my.gguf", gguf, "sub/my.gguf"));
    char abs[800];
    snprintf(abs, sizeof abs, "%s/sub/my.gguf", dir);
    CHECK(found(abs, gguf, abs));
    touch("local.gguf");                                 /* an existing file in the working directory is a path */
    CHECK(found("local.gguf", gguf, "local.gguf"));
    char *p = NULL;
    CHECK(model_find("sub/none.gguf", gguf, &p) == ISO_EUNAVAIL && p == NULL);
    CHECK_STR(iso_errmsg(), "model 'sub/none.gguf' not found (tried 'sub/none.gguf')");
    CHECK(model_find("", gguf, &p) == ISO_EUSAGE);
    CHECK(model_find(NULL, gguf, &p) == ISO_EUSAGE);

    TEST("missing: ISO_EUNAVAIL with every path tried, in order");
    setenv("ISOPIPE_MODELS", "m1:m2", 1);
    CHECK(model_find("nope", st, &p) == ISO_EUNAVAIL && p == NULL);
    /* the test binary is build/tests/test_model: prefix build/, checkout dir build/tests/../models */
    char w_xdg[800], w_pre[PATH_MAX + 40], w_co[PATH_MAX + 40], exe[PATH_MAX];
    ssize_t en = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[en > 0 ? en : 0] = 0;
    char *ed = fs_dirname(exe), *pre = fs_dirname(ed);
    snprintf(w_xdg, sizeof w_xdg, "'%s/isopipe/models/nope.st'", xdg);
    snprintf(w_pre, sizeof w_pre, "'%s/share/isopipe/models/nope.st'", pre);
    snprintf(w_co, sizeof w_co, "'%s/../models/nope.st'", ed);
    free(ed); free(pre);
    const char *want[] = { "'nope'", "'m1/nope'", "'m1/nope.safetensors'", "'m1/nope.st'", "'m2/nope'",
                           "'m2/nope.safetensors'", "'m2/nope.st'", w_xdg, w_pre, w_co };
    const char *msg = iso_errmsg(), *at = msg;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *h = strstr(at, want[i]);
        CHECKF(h != NULL, "%s missing or out of order in: %s", want[i], msg);
        if (h) at = h;
    }
    CHECK(strncmp(msg, "model 'nope' not found (tried ", 30) == 0);
    /* not a checkout (no pipelines/models.sh above the binary's directory): the installed command */
    CHECKF(strstr(msg, "`isopipe-models` fetches the default models") != NULL, "%s", msg);
    /* a long $ISOPIPE_MODELS: still every path */
    char env[4000] = "";
    for (int i = 0; i < 30; i++) {
        char one[80];
        snprintf(one, sizeof one, "%sa/fairly/long/models/directory/number_%02d", i ? ":" : "", i);
        strcat(env, one);
    }
    setenv("ISOPIPE_MODELS", env, 1);
    CHECK(model_find("nope", gguf, &p) == ISO_EUNAVAIL);
    CHECKF(strstr(iso_errmsg(), "'a/fairly/long/models/directory/number_29/nope.gguf'") != NULL, "%zu chars: ...%s",
           strlen(iso_errmsg()), iso_errmsg() + (strlen(iso_errmsg()) > 200 ? strlen(iso_errmsg()) - 200 : 0));
    CHECK(strstr(iso_errmsg(), "/share/isopipe/models/nope.gguf'") != NULL);

    if (chdir("/") == 0) fs_rm_rf(dir);
    return test_report();
}
