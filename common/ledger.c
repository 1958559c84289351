/* ledger.c — the cross-process VRAM ledger (see ledger.h for the model).
 * The file is tiny (one line per live holder) and always rewritten whole
 * under the exclusive flock; a reader that finds a malformed line (a writer
 * killed mid-write) skips it, which at worst forgets a reservation that the
 * holder's next update writes again. */
#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "log.h"

#define LEDGER_MAX_BYTES (1 << 20)

/* sums of reservations saturate: two entries of 2^63 bytes must read as
 * "everything is taken", never wrap to a small number that admits anything */
static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

struct ledger {
    int fd;
    char *path;
    int have_entry;
    struct ledger_entry me;
};

uint64_t ledger_pid_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* "pid (comm) state ppid ..." — comm may hold spaces and parentheses,
     * so fields are counted from the last ')' (proc(5)) */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ') return 0;
    p += 2;
    if (*p == 'Z' || *p == 'X') return 0;   /* a zombie holds no VRAM */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p) return 0;
        p++;
    }
    return strtoull(p, NULL, 10);
}

static int entry_live(const struct ledger_entry *e)
{
    if (e->pid <= 0) return 0;
    if (kill(e->pid, 0) != 0 && errno != EPERM) return 0;
    return ledger_pid_start_time(e->pid) == e->start_time;
}

int ledger_dir(char **out)
{
    *out = NULL;
    char buf[4096];
    const char *d = getenv("ISOPIPE_LEDGER_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (d && *d) snprintf(buf, sizeof buf, "%s", d);
    else if (xdg && *xdg) snprintf(buf, sizeof buf, "%s/isopipe", xdg);
    else snprintf(buf, sizeof buf, "/tmp/isopipe-%u", (unsigned)getuid());
    if (!fs_is_dir(buf)) {
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            int rc = fs_mkdir_p(buf);
            if (rc) return iso_wrap(ISO_ECANTCREAT, "ledger directory '%s'", buf);
        }
    }
    /* a shared /tmp: never trust a ledger directory someone else owns, can
     * write to, or has pointed elsewhere with a symbolic link */
    struct stat st;
    if (lstat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return iso_fail(ISO_ECANTCREAT, "ledger directory '%s': not a directory (a symbolic link is refused)", buf);
    if (st.st_uid != getuid())
        return iso_fail(ISO_ECANTCREAT, "ledger directory '%s' belongs to uid %u, not to us", buf, (unsigned)st.st_uid);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return iso_fail(ISO_ECANTCREAT, "ledger directory '%s' is writable by others (mode %03o); use one only you "
                        "can write (chmod go-w)", buf, (unsigned)(st.st_mode & 0777));
    *out = strdup(buf);
    return *out ? 0 : iso_fail(ISO_EINTERNAL, "out of memory");
}

static int ledger_path(const char *key, char **out)
{
    char *dir = NULL;
    int rc = ledger_dir(&dir);
    if (rc) return rc;
    char name[128];
    snprintf(name, sizeof name, "%s.ledger", key);
    for (char *c = name; *c; c++)
        if (*c == '/') *c = '_';
    *out = fs_join(dir, name);
    free(dir);
    return *out ? 0 : iso_fail(ISO_EINTERNAL, "out of memory");
}

/* parse the whole file; dead and malformed entries are left out */
/* A ledger over LEDGER_MAX_BYTES is damaged (a live holder writes one short
 * line): only its first LEDGER_MAX_BYTES are parsed, the live entries found
 * there are kept, and the writer rewrites the file from them (each live
 * holder's next update puts its own line back). *damaged says so. */
static int read_entries_d(int fd, const char *path, struct ledger_entry **out, int *n, int *dropped, int *damaged)
{
    *out = NULL;
    *n = 0;
    *dropped = 0;
    *damaged = 0;
    int rc = 0, cap = 0;
    char *buf = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) return iso_fail(ISO_EIO, "cannot stat ledger '%s'", path);
    size_t want = (size_t)st.st_size;
    if (st.st_size > LEDGER_MAX_BYTES) {
        *damaged = 1;
        want = LEDGER_MAX_BYTES;
    }
    buf = malloc(want + 1);
    if (!buf) return iso_fail(ISO_EINTERNAL, "out of memory");
    ssize_t got = pread(fd, buf, want, 0);
    if (got < 0) {
        rc = iso_fail(ISO_EIO, "cannot read ledger '%s'", path);
        goto done;
    }
    buf[got] = 0;
    if (memchr(buf, 0, (size_t)got)) *damaged = 1; /* NUL bytes: not the text we write */
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        struct ledger_entry e;
        memset(&e, 0, sizeof e);
        int pid;
        uint64_t st_t, res, used;
        if (sscanf(line, "%d %" SCNu64 " %" SCNu64 " %" SCNu64 " %15s %39s", &pid, &st_t, &res, &used, e.mode,
                   e.task_id) < 4) {
            (*dropped)++;
            continue;
        }
        if (pid <= 0) {
            (*dropped)++;
            continue;
        }
        e.pid = pid;
        e.start_time = st_t;
        e.reserved = res;
        e.used = used;
        if (!entry_live(&e)) {
            (*dropped)++;
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            struct ledger_entry *ne = realloc(*out, (size_t)cap * sizeof *ne);
            if (!ne) {
                rc = iso_fail(ISO_EINTERNAL, "out of memory");
                goto done;
            }
            *out = ne;
        }
        (*out)[(*n)++] = e;
    }
done:
    free(buf);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

static int read_entries(int fd, const char *path, struct ledger_entry **out, int *n, int *dropped)
{
    int damaged = 0, rc = read_entries_d(fd, path, out, n, dropped, &damaged);
    if (!rc && damaged) {
        (*dropped)++; /* so every reader that rewrites on a drop rewrites it whole */
        log_warn("ledger '%s' was damaged (over %d bytes or not text): rebuilt from its %d live entr%s", path,
                 LEDGER_MAX_BYTES, *n, *n == 1 ? "y" : "ies");
    }
    return rc;
}

static int write_entries(int fd, const char *path, const struct ledger_entry *e, int n)
{
    size_t cap = (size_t)n * 160 + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%d %" PRIu64 " %" PRIu64 " %" PRIu64 " %s %s\n", (int)e[i].pid,
                                e[i].start_time, e[i].reserved, e[i].used, e[i].mode[0] ? e[i].mode : "-",
                                e[i].task_id[0] ? e[i].task_id : "-");
    int rc = 0;
    if (pwrite(fd, buf, len, 0) != (ssize_t)len || ftruncate(fd, (off_t)len) != 0)
        rc = iso_fail(ISO_EIO, "cannot write ledger '%s'", path);
    free(buf);
    return rc;
}

static int lock_fd(int fd, int op, const char *path)
{
    while (flock(fd, op) != 0) {
        if (errno == EINTR) continue;
        return iso_fail(ISO_EIO, "cannot lock ledger '%s'", path);
    }
    return 0;
}

int ledger_open(const char *key, struct ledger **out)
{
    *out = NULL;
    struct ledger *l = calloc(1, sizeof *l);
    if (!l) return iso_fail(ISO_EINTERNAL, "out of memory");
    l->fd = -1;
    int rc = ledger_path(key, &l->path);
    if (rc) goto done;
    /* O_NOFOLLOW: a symbolic link planted there would get its target
     * truncated by our rewrite; O_NONBLOCK: a FIFO would block the open */
    l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (l->fd < 0) {
        rc = iso_fail(ISO_ECANTCREAT, "cannot open ledger '%s': %s", l->path,
                      errno == ELOOP ? "it is a symbolic link (refused)" : strerror(errno));
        goto done;
    }
    struct stat st;
    if (fstat(l->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = iso_fail(ISO_ECANTCREAT, "ledger '%s' is not a regular file (refused)", l->path);
        goto done;
    }
    if (st.st_uid != getuid()) {
        rc = iso_fail(ISO_ECANTCREAT, "ledger '%s' belongs to uid %u, not to us (refused)", l->path, (unsigned)st.st_uid);
        goto done;
    }
    if (st.st_nlink != 1) {
        rc = iso_fail(ISO_ECANTCREAT, "ledger '%s' has %lu hard links (refused: a rewrite would change the others)",
                      l->path, (unsigned long)st.st_nlink);
        goto done;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) fchmod(l->fd, 0600); /* ours: tighten it */
    {
        int fl = fcntl(l->fd, F_GETFL);
        if (fl >= 0) fcntl(l->fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    l->me.pid = getpid();
    l->me.start_time = ledger_pid_start_time(l->me.pid);
    snprintf(l->me.task_id, sizeof l->me.task_id, "%s", log_task_id() ? log_task_id() : "-");
    for (char *c = l->me.task_id; *c; c++)
        if (*c == ' ' || *c == '\n' || *c == '\t') *c = '_';
done:
    if (rc) ledger_close(&l);
    *out = l;
    return rc;
}

/* lock, read live entries minus ours; the caller writes back and unlocks */
static int begin(struct ledger *l, struct ledger_entry **e, int *n)
{
    int rc = lock_fd(l->fd, LOCK_EX, l->path);
    if (rc) return rc;
    int dropped;
    rc = read_entries(l->fd, l->path, e, n, &dropped);
    if (rc) {
        flock(l->fd, LOCK_UN);
        return rc;
    }
    if (dropped) log_verbose("ledger: dropped %d dead or malformed entr%s", dropped, dropped == 1 ? "y" : "ies");
    int k = 0;
    for (int i = 0; i < *n; i++)
        if ((*e)[i].pid != l->me.pid) (*e)[k++] = (*e)[i];
    *n = k;
    return 0;
}

/* write entries (+ ours when we hold one) and unlock */
static int finish(struct ledger *l, struct ledger_entry *e, int n, int rc)
{
    if (rc == 0) {
        struct ledger_entry *all = realloc(e, (size_t)(n + 1) * sizeof *all);
        if (!all) {
            rc = iso_fail(ISO_EINTERNAL, "out of memory");
        } else {
            e = all;
            if (l->have_entry) e[n++] = l->me;
            rc = write_entries(l->fd, l->path, e, n);
        }
    }
    free(e);
    flock(l->fd, LOCK_UN);
    return rc;
}

int ledger_admit(struct ledger *l, ledger_free_fn free_fn, void *free_ctx, ledger_decide_fn decide, void *decide_ctx,
                 uint64_t *free_seen, uint64_t *pending_seen)
{
    struct ledger_entry *e = NULL;
    int n = 0;
    int rc = begin(l, &e, &n);
    if (rc) return rc;
    uint64_t others_used = 0, pending = 0, free_b = 0;
    for (int i = 0; i < n; i++) {
        others_used = sat_add(others_used, e[i].used);
        if (e[i].reserved > e[i].used) pending = sat_add(pending, e[i].reserved - e[i].used);
    }
    rc = free_fn(others_used, &free_b, free_ctx);
    if (free_seen) *free_seen = free_b;
    if (pending_seen) *pending_seen = pending;
    if (rc == 0) {
        uint64_t reserve = 0;
        const char *mode = "-";
        rc = decide(decide_ctx, free_b, pending, &reserve, &mode);
        if (rc == 0) {
            l->have_entry = 1;
            l->me.reserved = reserve;
            snprintf(l->me.mode, sizeof l->me.mode, "%s", mode);
        }
    }
    /* the file is rewritten even when not admitted: dead entries go */
    int wrc = finish(l, e, n, 0);
    return rc ? rc : wrc;
}

int ledger_set_used(struct ledger *l, uint64_t used)
{
    if (!l || !l->have_entry) return 0;
    struct ledger_entry *e = NULL;
    int n = 0;
    int rc = begin(l, &e, &n);
    if (rc) return rc;
    l->me.used = used;
    return finish(l, e, n, 0);
}

int ledger_release(struct ledger *l)
{
    if (!l || !l->have_entry) return 0;
    struct ledger_entry *e = NULL;
    int n = 0;
    int rc = begin(l, &e, &n);
    if (rc) return rc;
    l->have_entry = 0;
    return finish(l, e, n, 0);
}

void ledger_close(struct ledger **lp)
{
    struct ledger *l = *lp;
    if (!l) return;
    if (l->fd >= 0) {
        ledger_release(l);
        close(l->fd);
    }
    free(l->path);
    free(l);
    *lp = NULL;
}

int ledger_read(struct ledger *l, struct ledger_entry **out, int *n)
{
    struct ledger_entry *e = NULL;
    int rc = lock_fd(l->fd, LOCK_EX, l->path), dropped;
    if (rc) return rc;
    rc = read_entries(l->fd, l->path, &e, n, &dropped);
    if (rc == 0 && dropped) rc = write_entries(l->fd, l->path, e, *n);
    flock(l->fd, LOCK_UN);
    if (rc) {
        free(e);
        e = NULL;
        *n = 0;
    }
    *out = e;
    return rc;
}

int ledger_read_key(const char *key, struct ledger_entry **out, int *n)
{
    *out = NULL;
    *n = 0;
    struct ledger *l = NULL;
    int rc = ledger_open(key, &l);
    if (rc) return rc;
    rc = ledger_read(l, out, n);
    ledger_close(&l);
    return rc;
}

uint64_t ledger_others_used(const char *key)
{
    /* called from the VRAM probe, also on error paths: keep the caller's
     * error message intact */
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", iso_errmsg());
    char *path = NULL;
    if (ledger_path(key, &path)) {
        iso_fail(0, "%s", saved);
        return 0;
    }
    uint64_t sum = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat fst;
    if (fd >= 0 && (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode) || fst.st_uid != getuid())) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0) {
        struct ledger_entry *e = NULL;
        int n = 0, dropped;
        if (lock_fd(fd, LOCK_SH, path) == 0) {
            int damaged;
            if (read_entries_d(fd, path, &e, &n, &dropped, &damaged) == 0) {
                pid_t me = getpid();
                for (int i = 0; i < n; i++)
                    if (e[i].pid != me) sum = sat_add(sum, e[i].used);
            }
            flock(fd, LOCK_UN);
        }
        free(e);
        close(fd);
    }
    iso_fail(0, "%s", saved);
    free(path);
    return sum;
}
