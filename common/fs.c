#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"

int fs_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int fs_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int fs_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return iso_fail(ISO_ECANTCREAT, "cannot create directory '%s': bad path", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return iso_fail(ISO_ECANTCREAT, "cannot create directory '%s': %s", buf, strerror(errno));
            if (!fs_is_dir(buf)) return iso_fail(ISO_ECANTCREAT, "cannot create directory '%s': not a directory", buf);
            buf[i] = c;
        }
    }
    return 0;
}

int fs_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : iso_fail(ISO_EIO, "cannot remove '%s': %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return iso_fail(ISO_EIO, "cannot open '%s': %s", path, strerror(errno));
        struct dirent *e;
        int rc = 0;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = fs_join(path, e->d_name);
            if (!p) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); break; }
            int r = fs_rm_rf(p);
            free(p);
            if (r) rc = r;
        }
        closedir(d);
        if (rmdir(path) != 0 && !rc) rc = iso_fail(ISO_EIO, "cannot remove '%s': %s", path, strerror(errno));
        return rc;
    }
    if (unlink(path) != 0) return iso_fail(ISO_EIO, "cannot remove '%s': %s", path, strerror(errno));
    return 0;
}

/* length of path without trailing slashes ("seg/" is the directory "seg"; "/" stays "/") */
static size_t trimmed_len(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    return n;
}

/* the last component of path, ignoring trailing slashes, as a malloc'd string */
static char *base_of(const char *path)
{
    size_t n = trimmed_len(path);
    size_t i = n;
    while (i > 0 && path[i - 1] != '/') i--;
    return strndup(path + i, n - i);
}

char *fs_dirname(const char *path)
{
    size_t n = trimmed_len(path);
    const char *slash = memrchr(path, '/', n);
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

char *fs_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *r = malloc(a + b + 2);
    if (!r) return NULL;
    memcpy(r, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') r[k++] = '/';
    memcpy(r + k, name, b + 1);
    return r;
}

char *fs_tmp_sibling(const char *final)
{
    char *dir = fs_dirname(final), *base = base_of(final);
    char *p = NULL;
    if (!dir || !base) goto done;
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) r = (uint32_t)getpid() * 2654435761u;
    size_t n = strlen(dir) + strlen(base) + 64;
    p = malloc(n);
    if (p) snprintf(p, n, "%s/.%s.tmp-%d-%08x", dir, base, (int)getpid(), r);
done:
    free(dir);
    free(base);
    return p;
}

int fs_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return iso_fail(ISO_EIO, "cannot open directory '%s': %s", dir, strerror(errno));
    fsync(fd); /* some file systems refuse fsync on directories; the rename stands either way */
    close(fd);
    return 0;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return iso_fail(ISO_EIO, "cannot open '%s': %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0 && errno != EINVAL) return iso_fail(ISO_EIO, "cannot sync '%s': %s", path, strerror(errno));
    return 0;
}

int fs_publish_file(const char *tmp, const char *final)
{
    int rc = fsync_path(tmp);
    if (rc) return rc;
    if (rename(tmp, final) != 0)
        return iso_fail(ISO_ECANTCREAT, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
    char *dir = fs_dirname(final);
    fs_sync_dir(dir);
    free(dir);
    return 0;
}

/* A temporary sibling is ".<base>.tmp-<pid>-<8 hex>" (fs_tmp_sibling). */
int fs_pid_gone(long pid)
{
    if (pid <= 0) return 1;
    if (kill((pid_t)pid, 0) != 0) return errno == ESRCH;
    /* a process killed with -9 whose parent died too stays a zombie until
     * init reaps it: it answers kill(pid, 0) but will never write again */
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* "pid (comm) state ...": comm may hold ')' (proc(5)), so the last one */
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* the pid of a temporary sibling name ".NAME.tmp-PID-XXXXXXXX" (fs_tmp_sibling), 0 if it is not one;
 * prefix_len > 0 requires NAME to be the one given by the caller's prefix */
static long tmp_pid(const char *name, size_t prefix_len)
{
    const char *t;
    if (prefix_len) t = name + prefix_len - 5; /* the prefix ends in ".tmp-" */
    else {
        if (name[0] != '.' || !(t = strstr(name + 1, ".tmp-"))) return 0;
    }
    char *end;
    errno = 0;
    long pid = strtol(t + 5, &end, 10);
    if (errno || end == t + 5 || pid <= 0 || *end != '-' || strlen(end + 1) != 8 ||
        strspn(end + 1, "0123456789abcdef") != 8)
        return 0;
    return pid;
}

/* remove the temporaries in dir (all, or those of one output when prefix is
 * given) whose process is gone; a live one, this process included, may
 * still be writing its own */
static int sweep(const char *dir, const char *prefix)
{
    size_t pl = prefix ? strlen(prefix) : 0;
    int removed = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (pl && strncmp(e->d_name, prefix, pl) != 0) continue;
        long pid = tmp_pid(e->d_name, pl);
        if (!pid || pid == (long)getpid() || !fs_pid_gone(pid)) continue;
        char *p = fs_join(dir, e->d_name);
        if (p && fs_rm_rf(p) == 0) removed++;
        free(p);
    }
    closedir(d);
    return removed;
}

int fs_sweep_stale_tmp(const char *dir)
{
    int n = sweep(dir, NULL);
    iso_errclear();
    return n;
}

int fs_clean_stale_tmp(const char *final)
{
    char *dir = fs_dirname(final), *base = base_of(final);
    char prefix[300];
    int removed = 0;
    if (dir && base && snprintf(prefix, sizeof prefix, ".%s.tmp-", base) < (int)sizeof prefix)
        removed = sweep(dir, prefix);
    free(dir);
    free(base);
    return removed;
}

/* Linux O_TMPFILE (open(2)): the data goes to an unnamed inode in the target
 * directory and gets a name only once complete (linkat of /proc/self/fd),
 * so a process killed while writing leaves nothing at all behind. Where the
 * file system lacks O_TMPFILE, a named temporary sibling is used. */
static int link_tmpfile(FILE *f, const char *tmp)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fileno(f));
    if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) return 0;
    /* no /proc: copy the unnamed file's bytes into a named one */
    int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) return -1;
    char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fileno(f), buf, sizeof buf, off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0 || (fsync(out) != 0 && errno != EINVAL)) break;
            return close(out) == 0 ? 0 : -1;
        }
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(out, buf + w, (size_t)(n - w));
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) { close(out); unlink(tmp); return -1; }
            w += k;
        }
        off += n;
    }
    close(out);
    unlink(tmp);
    return -1;
}

int fs_write_atomic(const char *path, int (*writer)(FILE *f, void *ctx), void *ctx)
{
    char *dir = fs_dirname(path), *tmp = NULL;
    FILE *f = NULL;
    int rc = 0, named = 0;
    if (!dir) return iso_fail(ISO_EINTERNAL, "out of memory");
    if (!fs_is_dir(dir)) {
        rc = iso_fail(ISO_ECANTCREAT, "cannot create '%s': directory '%s' does not exist", path, dir);
        goto done;
    }
    fs_clean_stale_tmp(path);
    if (!(tmp = fs_tmp_sibling(path))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        named = fd >= 0;
    }
    if (fd < 0 || !(f = fdopen(fd, "wb"))) {
        rc = iso_fail(ISO_ECANTCREAT, "cannot create '%s': %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        goto done;
    }
    rc = writer(f, ctx);
    /* a writer's own message ("cannot write PNG: No space left on device")
     * gets the file it was writing */
    if (rc && !strstr(iso_errmsg(), path)) iso_wrap(rc, "cannot write '%s'", path);
    if (fflush(f) != 0 && !rc) rc = iso_fail(ISO_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (!rc && fsync(fileno(f)) != 0 && errno != EINVAL)
        rc = iso_fail(ISO_EIO, "cannot sync '%s': %s", path, strerror(errno));
    if (!rc && !named) {
        if (link_tmpfile(f, tmp) != 0) rc = iso_fail(ISO_ECANTCREAT, "cannot create '%s': %s", path, strerror(errno));
        else named = 1;
    }
    if (fclose(f) != 0 && !rc) rc = iso_fail(ISO_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = iso_fail(ISO_ECANTCREAT, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (!rc) fs_sync_dir(dir);
done:
    if (rc && named) unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}

static const char *kind_of(mode_t m)
{
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISLNK(m)) return "a symbolic link";
    return "not a regular file";
}

int fs_open_input(const char *path, int *fd)
{
    *fd = -1;
    /* O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0)
        return iso_fail(errno == ENOENT ? ISO_ENOINPUT : errno == EISDIR ? ISO_EDATA : ISO_EIO,
                        "cannot read '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0) {
        int rc = iso_fail(ISO_EIO, "cannot read '%s': %s", path, strerror(errno));
        close(f);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return iso_fail(ISO_EDATA, "cannot read '%s': %s, not a regular file", path, kind_of(st.st_mode));
    }
    int fl = fcntl(f, F_GETFL);
    if (fl >= 0) fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    *fd = f;
    return 0;
}

int fs_fopen_input(const char *path, FILE **out)
{
    int fd, rc;
    *out = NULL;
    if ((rc = fs_open_input(path, &fd))) return rc;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return iso_fail(ISO_EINTERNAL, "cannot read '%s': %s", path, strerror(errno));
    }
    *out = f;
    return 0;
}

int fs_check_not_special(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return 0;
    return iso_fail(ISO_EDATA, "cannot read '%s': %s, not a regular file", path, kind_of(st.st_mode));
}

/* real path of p, which may not exist yet: its parent's real path joined to
 * its last component (NULL when the parent does not exist either) */
static char *real_of(const char *p)
{
    char *r = realpath(p, NULL);
    if (r) return r;
    char *dir = fs_dirname(p), *base = base_of(p), *rd = dir ? realpath(dir, NULL) : NULL, *out = NULL;
    if (rd && base && strcmp(base, ".") && strcmp(base, "..")) out = fs_join(rd, base);
    free(dir);
    free(base);
    free(rd);
    return out;
}

int fs_check_output(const char *output, const char *what, const char *const *inputs, int n_inputs)
{
    char *ro = real_of(output);
    int rc = 0;
    if (!ro) return 0; /* its parent is missing: the writer reports that */
    size_t n = strlen(ro);
    for (int i = 0; i < n_inputs && !rc; i++) {
        if (!inputs[i] || !*inputs[i]) continue;
        char *ri = realpath(inputs[i], NULL);
        if (!ri) continue; /* a missing input is its reader's message */
        if (!strcmp(ri, ro))
            rc = iso_fail(ISO_ECANTCREAT, "cannot create %s '%s': it is the input '%s'", what, output, inputs[i]);
        else if (!strncmp(ri, ro, n) && (ri[n] == '/' || !strcmp(ro, "/")))
            rc = iso_fail(ISO_ECANTCREAT, "cannot create %s '%s': it holds the input '%s', which it would replace",
                          what, output, inputs[i]);
        free(ri);
    }
    free(ro);
    return rc;
}

/* 1 when the directory final is an earlier output of own->tool: its marker
 * JSON names the tool, and every other entry is one the tool writes (or a
 * temporary of a run) */
static int owned_by(const char *final, const struct fs_dir_owner *own, char *why, size_t whylen)
{
    char *mp = fs_join(final, own->marker), *data = NULL;
    size_t len = 0;
    int ok = 0;
    json_t *j = NULL;
    snprintf(why, whylen, "it has no %s", own->marker);
    if (!mp) return 0;
    if (fs_exists(mp)) {
        if (fs_read_all(mp, &data, &len, (size_t)16 << 20) != 0 ||
            !(j = json_loadb(data, len, 0, NULL)) || !json_is_object(j)) {
            snprintf(why, whylen, "its %s is not %s's JSON", own->marker, own->tool);
        } else {
            const char *t = json_string_value(json_object_get(j, "tool"));
            if (!t || strcmp(t, own->tool)) snprintf(why, whylen, "its %s was written by '%s', not %s", own->marker,
                                                     t ? t : "(no tool)", own->tool);
            else ok = 1;
        }
    }
    iso_errclear();
    json_decref(j);
    free(data);
    free(mp);
    if (!ok) return 0;
    DIR *d = opendir(final);
    if (!d) { snprintf(why, whylen, "it cannot be listed"); return 0; }
    struct dirent *e;
    while ((e = readdir(d)) && ok) {
        const char *nm = e->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..") || !strcmp(nm, own->marker) || tmp_pid(nm, 0)) continue;
        int known = 0;
        for (const char *const *p = own->names; p && *p && !known; p++) known = fnmatch(*p, nm, FNM_PERIOD) == 0;
        if (!known) {
            snprintf(why, whylen, "it holds '%s', which %s did not write", nm, own->tool);
            ok = 0;
        }
    }
    closedir(d);
    return ok;
}

int fs_dir_check_owned(const char *final, const struct fs_dir_owner *own)
{
    int rc = 0;
    if (!*final) return iso_fail(ISO_EUSAGE, "the output directory is an empty string");
    if (own && (rc = fs_check_output(final, "output directory", own->inputs, own->n_inputs))) return rc;
    struct stat st;
    if (lstat(final, &st) == 0) {
        char why[600];
        if (!S_ISDIR(st.st_mode))
            return iso_fail(ISO_ECANTCREAT, "cannot create output directory '%s': %s is in the way (not replaced)",
                            final, S_ISREG(st.st_mode) ? "a file" : kind_of(st.st_mode));
        DIR *d = opendir(final);
        int empty = 1;
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) && empty) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
            closedir(d);
        }
        if (!empty) {
            if (!own) snprintf(why, sizeof why, "it is not empty");
            if (!own || !owned_by(final, own, why, sizeof why))
                return iso_fail(ISO_ECANTCREAT, "cannot replace '%s': %s; only an earlier output of this tool is "
                                "replaced (remove it or choose another directory)", final, why);
        }
    }
    return 0;
}

static int dir_begin(const char *final, const struct fs_dir_owner *own, int checked, char **tmp);

int fs_dir_begin(const char *final, char **tmp)
{
    return dir_begin(final, NULL, 0, tmp);
}

int fs_dir_begin_owned(const char *final, const struct fs_dir_owner *own, char **tmp)
{
    return dir_begin(final, own, 0, tmp);
}

int fs_dir_begin_checked(const char *final, char **tmp)
{
    return dir_begin(final, NULL, 1, tmp);
}

static int dir_begin(const char *final, const struct fs_dir_owner *own, int checked, char **tmp)
{
    *tmp = NULL;
    int rc = checked ? 0 : fs_dir_check_owned(final, own);
    if (rc) return rc;
    char *dir = fs_dirname(final);
    if (!fs_is_dir(dir)) {
        rc = iso_fail(ISO_ECANTCREAT, "cannot create '%s': directory '%s' does not exist", final, dir);
        free(dir);
        return rc;
    }
    free(dir);
    /* what a killed run of the same output left behind goes now */
    fs_clean_stale_tmp(final);
    char *t = fs_tmp_sibling(final);
    if (!t) return iso_fail(ISO_EINTERNAL, "out of memory");
    if (mkdir(t, 0777) != 0) {
        rc = iso_fail(ISO_ECANTCREAT, "cannot create '%s': %s", t, strerror(errno));
        free(t);
        return rc;
    }
    *tmp = t;
    return 0;
}

int fs_dir_publish(const char *tmp, const char *final)
{
    fs_sync_dir(tmp);
    if (rename(tmp, final) == 0) goto synced;
    if (errno != ENOTEMPTY && errno != EEXIST && errno != ENOTDIR && errno != EISDIR)
        return iso_fail(ISO_ECANTCREAT, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
#ifdef SYS_renameat2
    /* final exists: swap the two in one step, then remove the old one */
    if (syscall(SYS_renameat2, AT_FDCWD, tmp, AT_FDCWD, final, 2 /* RENAME_EXCHANGE */) == 0) {
        fs_rm_rf(tmp);
        goto synced;
    }
#endif
    {
        char *old = fs_tmp_sibling(final);
        if (!old) return iso_fail(ISO_EINTERNAL, "out of memory");
        if (rename(final, old) != 0) {
            int rc = iso_fail(ISO_ECANTCREAT, "cannot replace '%s': %s", final, strerror(errno));
            free(old);
            return rc;
        }
        if (rename(tmp, final) != 0) {
            int rc = iso_fail(ISO_ECANTCREAT, "cannot replace '%s': %s", final, strerror(errno));
            rename(old, final); /* put the old one back: a failed publish changes nothing */
            free(old);
            return rc;
        }
        fs_rm_rf(old);
        free(old);
    }
synced:;
    char *d = fs_dirname(final);
    fs_sync_dir(d);
    free(d);
    return 0;
}

void fs_dir_abort(char **tmp)
{
    if (!tmp || !*tmp) return;
    fs_rm_rf(*tmp);
    free(*tmp);
    *tmp = NULL;
}

char *fs_resolve(const char *base_file, const char *rel)
{
    if (!rel) return NULL;
    if (rel[0] == '/') return strdup(rel);
    char *dir = fs_dirname(base_file);
    char *r = strcmp(dir, ".") == 0 ? strdup(rel) : fs_join(dir, rel);
    free(dir);
    return r;
}

/* Absolute, lexically normalised path as a list of components (no symlink
 * resolution: the target may not exist yet). "/" is zero components.
 * *buf owns the strings; both are freed by the caller. */
static int split_abs(const char *p, char **buf, char ***parts, int *np)
{
    char cwd[PATH_MAX];
    *buf = NULL;
    *parts = NULL;
    *np = 0;
    char *s;
    if (p[0] == '/') s = strdup(p);
    else {
        if (!getcwd(cwd, sizeof cwd)) return -1;
        s = fs_join(cwd, p);
    }
    if (!s) return -1;
    char **v = calloc(strlen(s) / 2 + 2, sizeof *v); /* at most one component per two characters */
    if (!v) { free(s); return -1; }
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (!strcmp(t, ".")) continue;
        if (!strcmp(t, "..")) { if (n) n--; continue; } /* "/.." is "/" */
        v[n++] = t;
    }
    *buf = s;
    *parts = v;
    *np = n;
    return 0;
}

/* Both sides are made absolute and normalised, the common leading
 * components dropped, and one ".." written for each remaining component
 * of the JSON file's directory (what Python's os.path.relpath does). */
char *fs_relative(const char *from_file, const char *target)
{
    char *fd = fs_dirname(from_file);
    char *ba = NULL, *bb = NULL, **a = NULL, **b = NULL, *r = NULL;
    int na = 0, nb = 0;
    if (!fd || split_abs(fd, &ba, &a, &na) || split_abs(target, &bb, &b, &nb)) {
        r = strdup(target);
        goto done;
    }
    int common = 0;
    while (common < na && common < nb && strcmp(a[common], b[common]) == 0) common++;
    size_t n = 2;
    for (int i = common; i < na; i++) n += 3;
    for (int i = common; i < nb; i++) n += strlen(b[i]) + 1;
    r = malloc(n);
    if (!r) goto done;
    size_t k = 0;
    for (int i = common; i < na; i++) { memcpy(r + k, "../", 3); k += 3; }
    for (int i = common; i < nb; i++) k += (size_t)sprintf(r + k, "%s/", b[i]);
    if (k) r[k - 1] = 0; /* drop the last '/' */
    else strcpy(r, ".");
done:
    free(fd);
    free(ba);
    free(bb);
    free(a);
    free(b);
    return r;
}

int fs_read_all(const char *path, char **data, size_t *len, size_t max)
{
    *data = NULL;
    *len = 0;
    FILE *f;
    int orc = fs_fopen_input(path, &f);
    if (orc) return orc;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    if (!buf) { fclose(f); return iso_fail(ISO_EINTERNAL, "out of memory"); }
    for (;;) {
        if (n > max) { rc = iso_fail(ISO_EDATA, "cannot read '%s': larger than %zu bytes", path, max); break; }
        if (n + 1 >= cap) {
            /* grow to at most max + 2 bytes: room for one byte past max (to
             * detect an oversized file) and the NUL */
            size_t ncap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            if (max < SIZE_MAX - 2 && ncap > max + 2) ncap = max + 2;
            if (ncap <= cap) { rc = iso_fail(ISO_EDATA, "cannot read '%s': larger than %zu bytes", path, max); break; }
            char *nb = realloc(buf, ncap);
            if (!nb) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); break; }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) rc = iso_fail(ISO_EIO, "cannot read '%s': %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc) { free(buf); return rc; }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}
