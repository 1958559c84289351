/* test_fs.c — files and directories that appear whole or not at all
 * (common/fs.c): mkdir -p, path resolution and fs_relative (checked
 * against Python's os.path.relpath for the table, and against realpath(3)
 * for the round trip), atomic writes when the writer fails and when the
 * process is killed mid-write, and directory publish/abort. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "test.h"

static char dir[600];

static char *P(const char *name) { return test_path_in(dir, name); }

static void put(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    if (f) { fputs(s, f); fclose(f); }
}

static int has_content(const char *path, const char *want)
{
    char *d;
    size_t n;
    if (fs_read_all(path, &d, &n, 1 << 24)) return 0;
    int ok = n == strlen(want) && memcmp(d, want, n) == 0;
    free(d);
    return ok;
}

/* number of entries in a directory whose name contains pat (NULL = all) */
static int count_entries(const char *d, const char *pat)
{
    DIR *dd = opendir(d);
    if (!dd) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dd)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && (!pat || strstr(e->d_name, pat))) n++;
    closedir(dd);
    return n;
}

static void test_mkdir(void)
{
    TEST("fs_mkdir_p");
    CHECK(fs_mkdir_p(P("a/b/c/d")) == 0 && fs_is_dir(P("a/b/c/d")));
    CHECK(fs_mkdir_p(P("a/b/c/d")) == 0);          /* exists: fine */
    CHECK(fs_mkdir_p(P("a/b/c/d/")) == 0);         /* trailing slash */
    CHECK(fs_mkdir_p(P("a//e///f")) == 0 && fs_is_dir(P("a/e/f")));
    put(P("a/file"), "x");
    CHECK(fs_mkdir_p(P("a/file/g")) == ISO_ECANTCREAT && strstr(iso_errmsg(), "a/file"));
    CHECK(fs_mkdir_p(P("a/file")) == ISO_ECANTCREAT);
    CHECK(fs_mkdir_p("") == ISO_ECANTCREAT);
    CHECK(fs_exists(P("a/file")) && !fs_is_dir(P("a/file")) && !fs_exists(P("a/nope")));
    /* rm -rf does not follow a symlink out of the tree */
    CHECK(fs_mkdir_p(P("outside")) == 0);
    put(P("outside/keep"), "keep");
    CHECK(symlink(P("outside"), P("a/b/link")) == 0);
    CHECK(fs_rm_rf(P("a")) == 0 && !fs_exists(P("a")));
    CHECK(has_content(P("outside/keep"), "keep"));
    CHECK(fs_rm_rf(P("a")) == 0); /* absent: fine */
}

static void test_paths(void)
{
    TEST("dirname, join, resolve");
    struct { const char *in, *out; } dn[] = { { "a/b.json", "a" }, { "b.json", "." }, { "/b.json", "/" },
                                              { "/x/y/z", "/x/y" }, { "../k.topic", ".." },
                                              /* trailing slashes name the same directory */
                                              { "seg/", "." }, { "out/seg_000//", "out" }, { "/", "/" } };
    for (size_t i = 0; i < sizeof dn / sizeof dn[0]; i++) {
        char *r = fs_dirname(dn[i].in);
        CHECK_STR(r, dn[i].out);
        free(r);
    }
    char *r = fs_join("a", "b");
    CHECK_STR(r, "a/b");
    free(r);
    r = fs_join("a/", "b");
    CHECK_STR(r, "a/b");
    free(r);
    r = fs_join("/", "b");
    CHECK_STR(r, "/b");
    free(r);
    struct { const char *base, *rel, *out; } rs[] = {
        { "sample_inputs/harbor.topic", "kf/a.png", "sample_inputs/kf/a.png" },
        { "harbor.topic", "kf/a.png", "kf/a.png" },
        { "/x/y/harbor.topic", "../a.png", "/x/y/../a.png" },
        { "/x/y/harbor.topic", "/abs/a.png", "/abs/a.png" },
        { "out/scenes.json", "seg_000", "out/seg_000" },
    };
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) {
        r = fs_resolve(rs[i].base, rs[i].rel);
        CHECK_STR(r, rs[i].out);
        free(r);
    }
    CHECK(fs_resolve("a/b", NULL) == NULL);
}

static void test_relative(void)
{
    TEST("fs_relative");
    /* expected values from Python 3's os.path.relpath(target, dirname(from)) */
    struct { const char *from, *target, *want; } t[] = {
        { "/a/b/scenes.json", "/a/b/x.png", "x.png" },
        { "/a/b/scenes.json", "/a/b/c/x.png", "c/x.png" },
        { "/a/b/scenes.json", "/a/x.png", "../x.png" },
        { "/a/b/scenes.json", "/x/y/z.png", "../../x/y/z.png" },
        { "/a/b/scenes.json", "/a/b", "." },
        { "/a/b/scenes.json", "/a", ".." },
        { "/a/b/scenes.json", "/", "../.." },
        { "/scenes.json", "/x", "x" },
        { "/scenes.json", "/", "." },
        { "/a/bc/s.json", "/a/b/x", "../b/x" },
        { "/a/b/s.json", "/a/bc/x", "../bc/x" },
        { "/a/b/s.json", "/a/b/../c/./x", "../c/x" },
        { "/a/./b//s.json", "/a/b/x/", "x" },
        { "/s.json", "/a/b/c", "a/b/c" },
        { "/a/b/c/d/s.json", "/a/x", "../../../x" },
        { "/a/b/s.json", "/a/b/c/", "c" },
        { "/x/s.json", "/xy/z", "../xy/z" },
        /* relative to the working directory (the test chdirs to its temp dir) */
        { "out/scenes.json", "out/seg_000/frame_00000.png", "seg_000/frame_00000.png" },
        { "scenes.json", "kf/a.png", "kf/a.png" },
        { "out/s.json", "kf/a.png", "../kf/a.png" },
        { "out/deep/s.json", "out/x", "../x" },
        { "./out/../out/s.json", "out/./y", "y" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *r = fs_relative(t[i].from, t[i].target);
        CHECKF(r && strcmp(r, t[i].want) == 0, "fs_relative('%s', '%s') = '%s', want '%s'", t[i].from, t[i].target,
               r ? r : "(null)", t[i].want);
        free(r);
    }
    /* a JSON file above the working directory: the path goes back down through it */
    char cwd[PATH_MAX], want[PATH_MAX + 8];
    if (getcwd(cwd, sizeof cwd)) {
        const char *base = strrchr(cwd, '/') + 1;
        snprintf(want, sizeof want, "%s/x", base);
        char *r = fs_relative("../s.json", "x");
        CHECK_STR(r, want);
        free(r);
    }
    /* round trip on real directories: realpath(resolve(from, relative(from, t))) == realpath(t) */
    const char *dirs[] = { "rt/a/b/c", "rt/a/d", "rt/e", "rt/a/bc" };
    for (size_t i = 0; i < 4; i++) fs_mkdir_p(P(dirs[i]));
    const char *files[] = { "rt/a/b/c/f.json", "rt/a/d/g.png", "rt/e/h", "rt/a/bc/i", "rt/j" };
    for (size_t i = 0; i < 5; i++) put(P(files[i]), "x");
    int bad = 0;
    for (size_t i = 0; i < 5; i++)
        for (size_t k = 0; k < 5; k++) {
            char *rel = fs_relative(P(files[i]), P(files[k]));
            char *back = fs_resolve(P(files[i]), rel);
            char ra[PATH_MAX], rb[PATH_MAX];
            if (!back || !realpath(back, ra) || !realpath(P(files[k]), rb) || strcmp(ra, rb)) {
                bad++;
                printf("# round trip %s -> %s via '%s' failed\n", files[i], files[k], rel ? rel : "(null)");
            }
            free(rel);
            free(back);
        }
    CHECKF(bad == 0, "%d round trips failed", bad);
}

/* ---- atomic writes */
struct wctx { const char *text; int fail_after; int die; };

static int writer(FILE *f, void *ctx)
{
    struct wctx *w = ctx;
    size_t n = strlen(w->text), half = n / 2;
    fwrite(w->text, 1, half, f);
    fflush(f); /* the half is on disk, in the temporary file */
    if (w->die == 1) _exit(3);
    if (w->die == 2) raise(SIGKILL);
    if (w->fail_after) return iso_fail(ISO_EDATA, "writer gave up");
    fwrite(w->text + half, 1, n - half, f);
    return 0;
}

static void test_write_atomic(void)
{
    TEST("fs_write_atomic");
    fs_mkdir_p(P("w"));
    struct wctx ok = { "hello, world\n", 0, 0 };
    CHECK(fs_write_atomic(P("w/out.txt"), writer, &ok) == 0 && has_content(P("w/out.txt"), "hello, world\n"));
    CHECK(count_entries(P("w"), NULL) == 1);
    /* replace */
    struct wctx ok2 = { "second version\n", 0, 0 };
    CHECK(fs_write_atomic(P("w/out.txt"), writer, &ok2) == 0 && has_content(P("w/out.txt"), "second version\n"));
    CHECK(count_entries(P("w"), NULL) == 1);
    /* the writer fails: its status comes back, the old file stays, no temporary is left */
    struct wctx bad = { "this will not be written\n", 1, 0 };
    int rc = fs_write_atomic(P("w/out.txt"), writer, &bad);
    CHECK(rc == ISO_EDATA && strstr(iso_errmsg(), "writer gave up"));
    CHECK(has_content(P("w/out.txt"), "second version\n"));
    CHECK(count_entries(P("w"), NULL) == 1);
    rc = fs_write_atomic(P("w/new.txt"), writer, &bad);
    CHECK(rc == ISO_EDATA && !fs_exists(P("w/new.txt")) && count_entries(P("w"), NULL) == 1);
    /* missing directory */
    rc = fs_write_atomic(P("nodir/x.txt"), writer, &ok);
    CHECK(rc == ISO_ECANTCREAT && strstr(iso_errmsg(), "nodir"));
    /* relative path in the working directory */
    CHECK(fs_write_atomic("rel.txt", writer, &ok) == 0 && has_content("rel.txt", "hello, world\n"));
    unlink("rel.txt");

    /* the process dies mid-write (_exit, then SIGKILL), with and without an old file:
     * the target is either absent or intact; never the half-written text */
    for (int die = 1; die <= 2; die++)
        for (int old = 0; old <= 1; old++) {
            char name[64];
            snprintf(name, sizeof name, "d%d%d", die, old);
            fs_mkdir_p(P(name));
            char target[900];
            snprintf(target, sizeof target, "%s/out.json", P(name));
            if (old) put(target, "{\"old\": true}\n");
            pid_t pid = fork();
            if (pid == 0) {
                struct wctx w = { "{\"new\": \"a longer text that is only half written\"}\n", 0, die };
                fs_write_atomic(target, writer, &w);
                _exit(0); /* not reached */
            }
            int st = 0;
            waitpid(pid, &st, 0);
            if (die == 1) CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 3, "child status %d", st);
            else CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %d", st);
            if (old) CHECKF(has_content(target, "{\"old\": true}\n"), "die=%d: old content not intact", die);
            else CHECKF(!fs_exists(target), "die=%d: a target exists after the writer died", die);
            /* with O_TMPFILE (tmpfs, ext4, xfs, btrfs) the half-written data had no
             * name, so nothing is left; elsewhere at most one hidden temporary */
            int tmps = count_entries(P(name), ".out.json.tmp-");
            int fd = open(P(name), O_TMPFILE | O_WRONLY, 0600);
            if (fd >= 0) {
                close(fd);
                CHECKF(tmps == 0 && count_entries(P(name), NULL) == old, "die=%d old=%d: %d entries left", die, old,
                       count_entries(P(name), NULL));
            } else {
                CHECKF(tmps <= 1 && count_entries(P(name), NULL) == old + tmps, "die=%d old=%d: %d entries", die, old,
                       count_entries(P(name), NULL));
            }
            /* a re-run publishes and leaves only the target */
            struct wctx again = { "{\"rerun\": 1}\n", 0, 0 };
            CHECK(fs_write_atomic(target, writer, &again) == 0 && has_content(target, "{\"rerun\": 1}\n"));
            CHECK(count_entries(P(name), NULL) == 1);
        }
}

/* a pid that is certainly not running: a child that has been reaped */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

static void test_stale(void)
{
    TEST("leftovers of killed runs are cleaned");
    fs_mkdir_p(P("st"));
    char name[300];
    pid_t dead = dead_pid();
    snprintf(name, sizeof name, "st/.out.json.tmp-%d-0123abcd", (int)dead);
    put(P(name), "half");
    snprintf(name, sizeof name, "st/.seg_000.tmp-%d-89abcdef", (int)dead);
    fs_mkdir_p(P(name));
    snprintf(name, sizeof name, "st/.seg_000.tmp-%d-89abcdef/frame_00000.png", (int)dead);
    put(P(name), "x");
    snprintf(name, sizeof name, "st/.out.json.tmp-%d-00000000", (int)getpid()); /* this process: may be in use */
    put(P(name), "mine");
    put(P("st/.out.json.tmp-1-00000000"), "pid 1 is alive");
    snprintf(name, sizeof name, "st/.out.json.tmp-%d-xyz", (int)dead); /* not our pattern */
    put(P(name), "other");
    snprintf(name, sizeof name, "st/.other.json.tmp-%d-0123abcd", (int)dead); /* another output's */
    put(P(name), "other");
    CHECK(count_entries(P("st"), NULL) == 6);
    CHECK(fs_clean_stale_tmp(P("st/out.json")) == 1);
    CHECK(count_entries(P("st"), ".out.json.tmp-") == 3 && count_entries(P("st"), ".seg_000.tmp-") == 1);
    /* fs_dir_begin sweeps its own output's leftovers */
    char *tmp = NULL;
    CHECK(fs_dir_begin(P("st/seg_000"), &tmp) == 0);
    CHECK(count_entries(P("st"), ".seg_000.tmp-") == 1); /* only the new one */
    CHECK(fs_dir_publish(tmp, P("st/seg_000")) == 0 && count_entries(P("st"), ".seg_000.tmp-") == 0);
    free(tmp);
    CHECK(count_entries(P("st"), ".other.json.tmp-") == 1);
    CHECK(fs_clean_stale_tmp(P("nodir/x")) == 0);

    /* a zombie (killed, not yet reaped) answers kill(pid, 0) but is gone */
    pid_t z = fork();
    if (z == 0) _exit(0);
    CHECK(z > 0);
    if (z > 0) {
        for (int i = 0; i < 200; i++) { /* until the child has exited */
            char st[64], buf[256] = "";
            snprintf(st, sizeof st, "/proc/%d/stat", (int)z);
            FILE *f = fopen(st, "r");
            if (f) { if (!fgets(buf, sizeof buf, f)) buf[0] = 0; fclose(f); }
            char *q = strrchr(buf, ')');
            if (q && q[1] == ' ' && q[2] == 'Z') break;
            usleep(10000);
        }
        CHECK(kill(z, 0) == 0 && fs_pid_gone(z));
        CHECK(!fs_pid_gone(getpid()) && !fs_pid_gone(1) && fs_pid_gone(dead));
        snprintf(name, sizeof name, "st/.zz.mp4.tmp-%d-0123abcd", (int)z);
        put(P(name), "half a video");
        snprintf(name, sizeof name, "st/.yy.tmp-%d-0123abcd", (int)getpid());
        put(P(name), "mine");
        CHECK(fs_sweep_stale_tmp(P("st")) == 2); /* the zombie's and .other.json's */
        CHECK(count_entries(P("st"), ".zz.mp4.tmp-") == 0 && count_entries(P("st"), ".yy.tmp-") == 1);
        waitpid(z, NULL, 0);
    }
}

static void test_dirs(void)
{
    TEST("fs_dir_begin/publish/abort");
    char *tmp = NULL;
    const char *final = P("seg_000");
    CHECK(fs_dir_begin(final, &tmp) == 0 && tmp && fs_is_dir(tmp));
    CHECK(tmp && strncmp(tmp, dir, strlen(dir)) == 0 && strstr(tmp, "/.seg_000.tmp-"));
    char *f = fs_join(tmp, "frame_00000.png");
    put(f, "one");
    free(f);
    CHECK(!fs_exists(final)); /* nothing visible before publish */
    CHECK(fs_dir_publish(tmp, final) == 0 && has_content(P("seg_000/frame_00000.png"), "one") && !fs_exists(tmp));
    free(tmp);
    /* a non-empty directory is not replaced without an owner (issue 11) */
    CHECK(fs_dir_begin(final, &tmp) == ISO_ECANTCREAT && tmp == NULL);
    CHECK(has_content(P("seg_000/frame_00000.png"), "one"));
    /* replace an existing output of the same tool: only the new content remains */
    static const char *const names[] = { "frame_*.png", NULL };
    struct fs_dir_owner own = { "segment.json", "segment-gen", names, NULL, 0 };
    put(P("seg_000/segment.json"), "{\"tool\": \"segment-gen\", \"frames\": 1}");
    CHECK(fs_dir_begin_owned(final, &own, &tmp) == 0);
    f = fs_join(tmp, "frame_00001.png");
    put(f, "two");
    free(f);
    CHECK(fs_dir_publish(tmp, final) == 0);
    CHECK(has_content(P("seg_000/frame_00001.png"), "two") && !fs_exists(P("seg_000/frame_00000.png")));
    CHECK(count_entries(dir, ".seg_000.tmp-") == 0);
    free(tmp);
    /* abort: the temporary goes, the published one stays */
    put(P("seg_000/segment.json"), "{\"tool\": \"segment-gen\"}");
    CHECK(fs_dir_begin_owned(final, &own, &tmp) == 0);
    char *keep = strdup(tmp);
    f = fs_join(tmp, "junk");
    put(f, "junk");
    free(f);
    fs_dir_abort(&tmp);
    CHECK(tmp == NULL && !fs_exists(keep) && has_content(P("seg_000/frame_00001.png"), "two"));
    free(keep);
    fs_dir_abort(&tmp); /* twice: harmless */
    /* a file in the way is never replaced by a directory */
    put(P("was_file"), "file");
    CHECK(fs_dir_begin_owned(P("was_file"), &own, &tmp) == ISO_ECANTCREAT && tmp == NULL);
    CHECK(has_content(P("was_file"), "file"));
    CHECK(fs_dir_begin(P("nodir/seg"), &tmp) == ISO_ECANTCREAT && tmp == NULL);
    /* "-o seg_001/" is the directory seg_001, created beside it */
    char slashed[600];
    snprintf(slashed, sizeof slashed, "%s/", P("seg_001"));
    CHECK(fs_dir_begin(slashed, &tmp) == 0 && tmp && strstr(tmp, "/.seg_001.tmp-"));
    CHECK(tmp && fs_dir_publish(tmp, slashed) == 0 && fs_is_dir(P("seg_001")));
    free(tmp);
    tmp = NULL;
    CHECK(count_entries(dir, ".tmp-") == 0);
}

/* issue 11: an output replaces only what the same tool wrote, never holds an input */
static void test_owned(void)
{
    TEST("fs_dir_begin_owned: replace only our own output");
    static const char *const names[] = { "frame_*.png", NULL };
    struct fs_dir_owner own = { "segment.json", "segment-gen", names, NULL, 0 };
    char *tmp = NULL;
    CHECK(fs_mkdir_p(P("own/user")) == 0);
    put(P("own/user/thesis.txt"), "years of work");
    CHECK(fs_dir_begin_owned(P("own/user"), &own, &tmp) == ISO_ECANTCREAT && !tmp);
    CHECK(strstr(iso_errmsg(), "no segment.json") != NULL);
    CHECK(has_content(P("own/user/thesis.txt"), "years of work"));
    /* another tool's JSON */
    put(P("own/user/segment.json"), "{\"tool\": \"flow-extract\"}");
    CHECK(fs_dir_begin_owned(P("own/user"), &own, &tmp) == ISO_ECANTCREAT && strstr(iso_errmsg(), "flow-extract"));
    /* our JSON but a file we never write */
    put(P("own/user/segment.json"), "{\"tool\": \"segment-gen\"}");
    CHECK(fs_dir_begin_owned(P("own/user"), &own, &tmp) == ISO_ECANTCREAT && strstr(iso_errmsg(), "thesis.txt"));
    CHECK(has_content(P("own/user/thesis.txt"), "years of work"));
    /* not JSON at all */
    put(P("own/user/segment.json"), "garbage");
    CHECK(fs_dir_begin_owned(P("own/user"), &own, &tmp) == ISO_ECANTCREAT);
    /* an empty directory is fine */
    CHECK(fs_mkdir_p(P("own/empty")) == 0);
    CHECK(fs_dir_begin_owned(P("own/empty"), &own, &tmp) == 0 && tmp);
    fs_dir_abort(&tmp);
    /* the output may neither be nor contain an input */
    CHECK(fs_mkdir_p(P("own/in")) == 0);
    put(P("own/in/a.png"), "a");
    const char *ins[] = { P("own/in/a.png"), NULL };
    own.inputs = ins;
    own.n_inputs = 2;
    CHECK(fs_dir_begin_owned(P("own/in"), &own, &tmp) == ISO_ECANTCREAT && strstr(iso_errmsg(), "holds the input"));
    CHECK(fs_dir_begin_owned(P("own"), &own, &tmp) == ISO_ECANTCREAT);
    CHECK(fs_dir_begin_owned(P("own/in/a.png"), &own, &tmp) == ISO_ECANTCREAT && strstr(iso_errmsg(), "is the input"));
    char sp[700];
    snprintf(sp, sizeof sp, "%s/../own/./in", P("own"));
    CHECK(fs_check_output(sp, "-o", ins, 1) == ISO_ECANTCREAT); /* other spellings of the same path */
    CHECK(symlink(P("own/in"), P("own/link")) == 0 && fs_check_output(P("own/link"), "-o", ins, 1) == ISO_ECANTCREAT);
    CHECK(fs_check_output(P("own/other"), "-o", ins, 1) == 0);
    CHECK(fs_dir_begin_owned("", &own, &tmp) == ISO_EUSAGE);
    CHECK(fs_is_dir(P("own/in")) && has_content(P("own/in/a.png"), "a"));
}

/* issue 11: a FIFO or a device as an input is refused at once, never waited on */
static void test_special_inputs(void)
{
    TEST("fs_open_input: special files are refused without blocking");
    CHECK(mkfifo(P("fifo"), 0600) == 0);
    int fd = -2;
    FILE *f = NULL;
    char *data = NULL;
    size_t len;
    CHECK(fs_open_input(P("fifo"), &fd) == ISO_EDATA && fd == -1 && strstr(iso_errmsg(), "FIFO"));
    CHECK(fs_fopen_input(P("fifo"), &f) == ISO_EDATA && !f);
    CHECK(fs_read_all(P("fifo"), &data, &len, 100) == ISO_EDATA && !data);
    CHECK(fs_open_input("/dev/zero", &fd) == ISO_EDATA && strstr(iso_errmsg(), "character device"));
    CHECK(fs_open_input(dir, &fd) == ISO_EDATA);
    CHECK(fs_open_input(P("absent"), &fd) == ISO_ENOINPUT);
    CHECK(fs_check_not_special(P("fifo")) == ISO_EDATA && fs_check_not_special(dir) == 0 &&
          fs_check_not_special(P("absent")) == 0);
    put(P("plain"), "x");
    CHECK(fs_open_input(P("plain"), &fd) == 0 && fd >= 0);
    if (fd >= 0) {
        char c;
        CHECK(read(fd, &c, 1) == 1 && c == 'x' && !(fcntl(fd, F_GETFL) & O_NONBLOCK));
        close(fd);
    }
}

static void test_read_all(void)
{
    TEST("fs_read_all");
    char big[10001];
    memset(big, 'x', 10000);
    big[10000] = 0;
    put(P("big"), big);
    char *d;
    size_t n;
    CHECK(fs_read_all(P("big"), &d, &n, 10000) == 0 && n == 10000 && d[n] == 0);
    free(d);
    CHECK(fs_read_all(P("big"), &d, &n, 9999) == ISO_EDATA && d == NULL);
    CHECK(fs_read_all(P("big"), &d, &n, 6000) == ISO_EDATA);
    CHECK(fs_read_all(P("big"), &d, &n, 100) == ISO_EDATA);
    put(P("empty"), "");
    CHECK(fs_read_all(P("empty"), &d, &n, 100) == 0 && n == 0 && d && d[0] == 0);
    free(d);
    CHECK(fs_read_all(P("absent"), &d, &n, 100) == ISO_ENOINPUT && strstr(iso_errmsg(), "absent"));
}

int main(void)
{
    char *d = test_tmpdir();
    if (!d) { printf("FAIL - cannot create a temporary directory\n0 passed, 1 failed, 0 skipped\n"); return 1; }
    snprintf(dir, sizeof dir, "%s", d);
    if (chdir(dir) != 0) { printf("FAIL - chdir\n0 passed, 1 failed, 0 skipped\n"); return 1; }
    test_mkdir();
    test_paths();
    test_relative();
    test_write_atomic();
    test_dirs();
    test_stale();
    test_read_all();
    test_owned();
    test_special_inputs();
    if (chdir("/") == 0) fs_rm_rf(dir);
    return test_report();
}
