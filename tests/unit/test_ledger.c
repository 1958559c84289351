/* test_ledger — the cross-process ledger: reservations, pending sums, dead
 * and kill -9'ed holders dropped, pid reuse (a live pid with another start
 * time) dropped, malformed lines skipped, the directory rules. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "ledger.h"
#include "test.h"

#define MIB (UINT64_C(1) << 20)

static uint64_t g_free = 1000 * MIB;
static uint64_t g_seen_others_used;

static int free_stub(uint64_t others_used, uint64_t *free_b, void *ctx)
{
    (void)ctx;
    g_seen_others_used = others_used;
    *free_b = g_free;
    return 0;
}

struct want { uint64_t need; };

/* admitted when need <= free - pending */
static int decide_stub(void *ctx, uint64_t free_b, uint64_t pending, uint64_t *reserve, const char **mode)
{
    struct want *w = ctx;
    if (pending > free_b || w->need > free_b - pending) return iso_fail(ISO_ETEMPFAIL, "no room");
    *reserve = w->need;
    *mode = "beefy";
    return 0;
}

static int count_key(const char *key)
{
    struct ledger_entry *e = NULL;
    int n = -1;
    if (ledger_read_key(key, &e, &n)) n = -1;
    free(e);
    return n;
}

/* a child that reserves `need`, marks `used`, tells the parent, then waits */
static pid_t spawn_holder(const char *key, uint64_t need, uint64_t used, int exit_without_release)
{
    int p[2];
    if (pipe(p)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        struct ledger *l = NULL;
        struct want w = { need };
        char ok = 'n';
        if (ledger_open(key, &l) == 0 && ledger_admit(l, free_stub, NULL, decide_stub, &w, NULL, NULL) == 0 &&
            ledger_set_used(l, used) == 0)
            ok = 'y';
        if (write(p[1], &ok, 1) != 1) _exit(3);
        if (exit_without_release) _exit(0);   /* no ledger_close: like a crash */
        pause();
        _exit(0);
    }
    close(p[1]);
    char c = 0;
    if (read(p[0], &c, 1) != 1 || c != 'y') {
        close(p[0]);
        return -1;
    }
    close(p[0]);
    return pid;
}

static void test_start_time(void)
{
    TEST("pid start time");
    uint64_t me = ledger_pid_start_time(getpid());
    CHECK(me > 0);
    CHECK(ledger_pid_start_time(getpid()) == me);
    /* an independent read of field 22 of /proc/self/stat */
    FILE *f = fopen("/proc/self/stat", "r");
    char buf[1024] = "";
    CHECK(f && fgets(buf, sizeof buf, f));
    if (f) fclose(f);
    char *p = strrchr(buf, ')');
    unsigned long long v = 0;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " "))
        if (++field == 22) { v = strtoull(tok, NULL, 10); break; }
    CHECK(v == me);
    CHECK(ledger_pid_start_time(0x3fffffff) == 0);
}

static void test_admission(void)
{
    TEST("reserve, pending sums, release");
    struct ledger *l = NULL;
    CHECK(ledger_open("unit", &l) == 0);
    CHECK(count_key("unit") == 0);
    pid_t a = spawn_holder("unit", 600 * MIB, 100 * MIB, 0);
    CHECK(a > 0);
    CHECK(count_key("unit") == 1);
    CHECK(ledger_others_used("unit") == 100 * MIB);
    /* others' pending = 600 - 100 = 500: 500 fits, 500 MiB + 1 does not */
    struct want w = { 500 * MIB + 1 };
    uint64_t fs = 0, ps = 0;
    CHECK(ledger_admit(l, free_stub, NULL, decide_stub, &w, &fs, &ps) == ISO_ETEMPFAIL);
    CHECK(fs == 1000 * MIB && ps == 500 * MIB);
    CHECK(g_seen_others_used == 100 * MIB);
    CHECK(count_key("unit") == 1);
    w.need = 500 * MIB;
    CHECK(ledger_admit(l, free_stub, NULL, decide_stub, &w, NULL, NULL) == 0);
    CHECK(count_key("unit") == 2);
    struct ledger_entry *e = NULL;
    int n = 0;
    CHECK(ledger_read(l, &e, &n) == 0 && n == 2);
    int mine = -1;
    for (int i = 0; i < n; i++)
        if (e[i].pid == getpid()) mine = i;
    CHECK(mine >= 0 && e[mine].reserved == 500 * MIB && e[mine].used == 0 && !strcmp(e[mine].mode, "beefy"));
    free(e);
    /* admitting again replaces our entry, it does not add one */
    CHECK(ledger_admit(l, free_stub, NULL, decide_stub, &w, NULL, NULL) == 0);
    CHECK(count_key("unit") == 2);
    CHECK(ledger_set_used(l, 42) == 0);
    CHECK(ledger_read(l, &e, &n) == 0);
    for (int i = 0; i < n; i++)
        if (e[i].pid == getpid()) CHECK(e[i].used == 42);
    free(e);
    CHECK(ledger_release(l) == 0);
    CHECK(count_key("unit") == 1);

    TEST("a kill -9'ed holder's reservation is reclaimed by the next reader");
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
    CHECK(count_key("unit") == 0);
    w.need = 1000 * MIB;
    CHECK(ledger_admit(l, free_stub, NULL, decide_stub, &w, &fs, &ps) == 0 && ps == 0);
    CHECK(ledger_release(l) == 0);

    TEST("a holder that exits without releasing (crash) is dropped too");
    pid_t b = spawn_holder("unit", 300 * MIB, 0, 1);
    CHECK(b > 0);
    waitpid(b, NULL, 0);
    CHECK(count_key("unit") == 0);

    TEST("a holder that is still a zombie holds nothing");
    pid_t z = spawn_holder("unit", 300 * MIB, 0, 1);
    CHECK(z > 0);
    usleep(100000);   /* exited, not yet reaped */
    CHECK(count_key("unit") == 0);
    waitpid(z, NULL, 0);
    ledger_close(&l);
    CHECK(l == NULL);
}

static void test_reuse_and_junk(void)
{
    TEST("pid reuse and malformed lines");
    char *dir = NULL;
    CHECK(ledger_dir(&dir) == 0);
    char *path = fs_join(dir, "junk.ledger");
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        /* a live pid (our parent) with another start time: a reused pid, i.e. dead */
        fprintf(f, "%d %llu 100 0 beefy t1\n", (int)getppid(), (unsigned long long)ledger_pid_start_time(getppid()) + 1);
        /* the parent, with the right start time: live */
        fprintf(f, "%d %llu 200 50 lightweight t2\n", (int)getppid(), (unsigned long long)ledger_pid_start_time(getppid()));
        fprintf(f, "garbage line\n\n12\n");
        fclose(f);
    }
    struct ledger_entry *e = NULL;
    int n = 0;
    CHECK(ledger_read_key("junk", &e, &n) == 0);
    CHECK(n == 1);
    if (n == 1) CHECK(e[0].reserved == 200 && e[0].used == 50 && !strcmp(e[0].task_id, "t2"));
    free(e);
    CHECK(ledger_others_used("junk") == 50);
    /* the reader rewrote the file without the dead and malformed lines */
    char *data = NULL;
    size_t len = 0;
    CHECK(fs_read_all(path, &data, &len, 1 << 20) == 0);
    CHECK(data && strstr(data, "garbage") == NULL && strstr(data, "t1") == NULL && strstr(data, "t2") != NULL);
    free(data);
    free(path);
    free(dir);
}

/* issue 11: the ledger file is not trusted */
static void test_hostile(const char *base)
{
    TEST("hostile ledgers: garbage over 1 MiB, 2^63 reservations, links, modes");
    char *dir = NULL;
    CHECK(ledger_dir(&dir) == 0);
    char *path = fs_join(dir, "big.ledger");
    /* 2 MiB of garbage after one live line: admission still works, the file is rebuilt */
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d %llu 300 100 beefy keep\n", (int)getppid(), (unsigned long long)ledger_pid_start_time(getppid()));
        for (int i = 0; i < 2 * 1024 * 1024 / 16; i++) fputs("garbage\x01\xffjunk!\n", f);
        fclose(f);
    }
    struct ledger *l = NULL;
    struct want w = { 10 * MIB };
    uint64_t fs = 0, ps = 0;
    CHECK(ledger_open("big", &l) == 0);
    CHECK(l && ledger_admit(l, free_stub, NULL, decide_stub, &w, &fs, &ps) == 0 && ps == 200);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size < 4096); /* rebuilt: the live line and ours */
    CHECK(count_key("big") == 2);
    ledger_close(&l);
    free(path);

    /* two live holders of 2^63 bytes each: the pending sum saturates, nothing is admitted */
    path = fs_join(dir, "wrap.ledger");
    pid_t child = fork();
    if (child == 0) { pause(); _exit(0); }
    for (int i = 0; i < 50 && ledger_pid_start_time(child) == 0; i++) usleep(10000);
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d %llu 9223372036854775808 0 beefy a\n", (int)getppid(),
                (unsigned long long)ledger_pid_start_time(getppid()));
        fprintf(f, "%d %llu 9223372036854775808 0 beefy b\n", (int)child, (unsigned long long)ledger_pid_start_time(child));
        fclose(f);
    }
    w.need = 1;
    CHECK(ledger_open("wrap", &l) == 0);
    CHECK(l && ledger_admit(l, free_stub, NULL, decide_stub, &w, &fs, &ps) == ISO_ETEMPFAIL && ps == UINT64_MAX);
    ledger_close(&l);
    /* the same with "used" sums: others_used saturates too */
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d %llu 0 9223372036854775808 beefy a\n", (int)getppid(),
                (unsigned long long)ledger_pid_start_time(getppid()));
        fprintf(f, "%d %llu 0 9223372036854775808 beefy b\n", (int)child, (unsigned long long)ledger_pid_start_time(child));
        fclose(f);
    }
    CHECK(ledger_others_used("wrap") == UINT64_MAX);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    free(path);

    /* a symbolic link where the ledger goes: refused, its target untouched */
    char victim[700];
    snprintf(victim, sizeof victim, "%s/victim.txt", base);
    f = fopen(victim, "w");
    if (f) { fputs("precious\n", f); fclose(f); }
    path = fs_join(dir, "link.ledger");
    CHECK(symlink(victim, path) == 0);
    CHECK(ledger_open("link", &l) == ISO_ECANTCREAT && l == NULL);
    CHECK(strstr(iso_errmsg(), "symbolic link") != NULL);
    CHECK(ledger_others_used("link") == 0);
    CHECK(stat(victim, &st) == 0 && st.st_size == 9);
    free(path);
    /* a hard link: refused (a rewrite would change the other name's file) */
    path = fs_join(dir, "hard.ledger");
    char other[700];
    snprintf(other, sizeof other, "%s/other.txt", base);
    f = fopen(other, "w");
    if (f) { fputs("x\n", f); fclose(f); }
    CHECK(link(other, path) == 0);
    CHECK(ledger_open("hard", &l) == ISO_ECANTCREAT && strstr(iso_errmsg(), "hard link"));
    free(path);
    /* a FIFO there: refused at once */
    path = fs_join(dir, "fifo.ledger");
    CHECK(mkfifo(path, 0600) == 0);
    CHECK(ledger_open("fifo", &l) == ISO_ECANTCREAT);
    free(path);
    /* a directory others can write: refused */
    char open_dir[700];
    snprintf(open_dir, sizeof open_dir, "%s/worldw", base);
    CHECK(mkdir(open_dir, 0700) == 0 && chmod(open_dir, 0777) == 0);
    char *saved = strdup(getenv("ISOPIPE_LEDGER_DIR"));
    setenv("ISOPIPE_LEDGER_DIR", open_dir, 1);
    char *d2 = NULL;
    CHECK(ledger_dir(&d2) == ISO_ECANTCREAT && !d2 && strstr(iso_errmsg(), "writable by others"));
    /* a symbolic link to a directory: refused */
    char ldir[700];
    snprintf(ldir, sizeof ldir, "%s/linkdir", base);
    CHECK(symlink(dir, ldir) == 0);
    setenv("ISOPIPE_LEDGER_DIR", ldir, 1);
    CHECK(ledger_dir(&d2) == ISO_ECANTCREAT && !d2);
    setenv("ISOPIPE_LEDGER_DIR", saved, 1);
    free(saved);
    free(dir);
}

static void test_dir(const char *base)
{
    TEST("ledger directory");
    char sub[600];
    snprintf(sub, sizeof sub, "%s/new/deeper", base);
    setenv("ISOPIPE_LEDGER_DIR", sub, 1);
    char *dir = NULL;
    CHECK(ledger_dir(&dir) == 0 && dir && !strcmp(dir, sub));
    CHECK(fs_is_dir(sub));
    free(dir);
    snprintf(sub, sizeof sub, "%s/afile", base);
    FILE *f = fopen(sub, "w");
    if (f) fclose(f);
    setenv("ISOPIPE_LEDGER_DIR", sub, 1);
    CHECK(ledger_dir(&dir) == ISO_ECANTCREAT && dir == NULL);
    unsetenv("ISOPIPE_LEDGER_DIR");
    setenv("XDG_RUNTIME_DIR", base, 1);
    CHECK(ledger_dir(&dir) == 0);
    snprintf(sub, sizeof sub, "%s/isopipe", base);
    CHECK(dir && !strcmp(dir, sub));
    free(dir);
}

int main(void)
{
    char *tmp = test_tmpdir();
    char d[600];
    snprintf(d, sizeof d, "%s/ledger", tmp);
    setenv("ISOPIPE_LEDGER_DIR", d, 1);
    test_start_time();
    test_admission();
    test_reuse_and_junk();
    test_hostile(tmp);
    test_dir(tmp);
    fs_rm_rf(tmp);
    return test_report();
}
