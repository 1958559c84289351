/* model.c — the model lookup of model.h. */
#include "model.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"

static int is_model(const char *p, int dir_ok)
{
    struct stat st;
    if (stat(p, &st) != 0) return 0;
    return S_ISREG(st.st_mode) || (dir_ok && S_ISDIR(st.st_mode));
}

/* "tried" list: every path looked at, in order, for the error message */
struct tried {
    char *s;
    size_t len, cap;
};

static void tried_add(struct tried *t, const char *p)
{
    size_t need = t->len + strlen(p) + 5;
    if (need > t->cap) {
        size_t cap = need * 2;
        char *n = realloc(t->s, cap);
        if (!n) return; /* the list is only for the message */
        t->s = n;
        t->cap = cap;
    }
    t->len += (size_t)snprintf(t->s + t->len, t->cap - t->len, "%s'%s'", t->len ? ", " : "", p);
}

/* 1 and *path set when p is a model, else 0 and p added to the list */
static int try_path(struct tried *t, const char *p, int dir_ok, char **path)
{
    if (is_model(p, dir_ok)) {
        *path = strdup(p);
        return *path ? 1 : 0;
    }
    tried_add(t, p);
    return 0;
}

/* the directory holding the running executable (malloc'd), or NULL */
static char *exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return NULL;
    buf[n] = 0;
    return fs_dirname(buf);
}

/* a growable list of NUL-terminated strings ending with an empty one */
struct list { char *s; size_t len, cap; };
static void list_add(struct list *l, const char *a, const char *b)
{
    size_t n = strlen(a) + (b ? strlen(b) : 0) + 2;
    if (l->len + n + 1 > l->cap) {
        size_t cap = (l->len + n + 1) * 2;
        char *p = realloc(l->s, cap);
        if (!p) return;
        l->s = p;
        l->cap = cap;
    }
    l->len += (size_t)snprintf(l->s + l->len, l->cap - l->len, "%s%s", a, b ? b : "") + 1;
    l->s[l->len] = 0;
}

char *model_search_path(void)
{
    struct list l = { 0 };
    list_add(&l, "", NULL); /* make sure the list exists */
    l.len = 0;
    l.s[0] = 0;
    const char *env = getenv("ISOPIPE_MODELS");
    if (env && *env) {
        char *dup = strdup(env), *save = NULL;
        for (char *d = dup ? strtok_r(dup, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save))
            if (*d) list_add(&l, d, NULL);
        free(dup);
    }
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/') list_add(&l, xdg, "/isopipe/models");
    else if (home && *home) list_add(&l, home, "/.local/share/isopipe/models");
    char *ed = exe_dir();
    if (ed) {
        char *prefix = fs_dirname(ed);
        if (prefix) list_add(&l, strcmp(prefix, "/") ? prefix : "", "/share/isopipe/models");
        list_add(&l, ed, "/../models");
        free(prefix);
        free(ed);
    }
    return l.s;
}

const char *model_fetch_hint(void)
{
    static char hint[PATH_MAX + 64];
    if (hint[0]) return hint;
    char *ed = exe_dir();
    char *root = ed ? fs_dirname(ed) : NULL;
    char *mk = root ? fs_join(root, "pipelines/models.sh") : NULL;
    if (mk && is_model(mk, 0)) snprintf(hint, sizeof hint, "make -C '%s' models", root);
    else snprintf(hint, sizeof hint, "isopipe-models");
    free(ed);
    free(root);
    free(mk);
    return hint;
}

static int find(const char *name, const char *const *exts, int dir_ok, char **path)
{
    *path = NULL;
    if (!name || !*name) return iso_fail(ISO_EUSAGE, "empty model name");
    struct tried t = { 0 };
    char *dirs = NULL, *p = NULL, *q = NULL;
    int rc = 0;
    if (strchr(name, '/')) {
        /* a path to a FIFO or a device is bad data, not a missing model */
        if ((rc = fs_check_not_special(name))) goto done;
        if (!try_path(&t, name, dir_ok, path))
            rc = iso_fail(ISO_EUNAVAIL, "model '%s' not found (tried %s)", name, t.s ? t.s : "");
        goto done;
    }
    if (try_path(&t, name, dir_ok, path)) goto done;
    if (!(dirs = model_search_path())) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    for (char *d = dirs; *d; d += strlen(d) + 1) {
        if (!(p = fs_join(d, name))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        if (try_path(&t, p, dir_ok, path)) goto done;
        for (int i = 0; exts && exts[i]; i++) {
            size_t n = strlen(p) + strlen(exts[i]) + 1;
            if (!(q = malloc(n))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
            snprintf(q, n, "%s%s", p, exts[i]);
            if (try_path(&t, q, 0, path)) goto done;
            free(q);
            q = NULL;
        }
        free(p);
        p = NULL;
    }
    rc = iso_fail(ISO_EUNAVAIL, "model '%s' not found (tried %s); `%s` fetches the default models", name,
                  t.s ? t.s : "", model_fetch_hint());
done:
    free(t.s);
    free(dirs);
    free(p);
    free(q);
    return rc;
}

int model_find(const char *name, const char *const *exts, char **path) { return find(name, exts, 0, path); }
int model_find_dir(const char *name, const char *const *exts, char **path) { return find(name, exts, 1, path); }
