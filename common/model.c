#include "model.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "fs.h"

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
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

/* 1 and *path set when p is a regular file, else 0 and p added to the list */
static int try_path(struct tried *t, const char *p, char **path)
{
    if (is_file(p)) {
        *path = strdup(p);
        return *path ? 1 : 0;
    }
    tried_add(t, p);
    return 0;
}

int model_find(const char *name, const char *const *exts, char **path)
{
    *path = NULL;
    if (!name || !*name) return iso_fail(ISO_EUSAGE, "empty model name");
    struct tried t = { 0 };
    char *dirs = NULL, *p = NULL, *q = NULL;
    int rc = 0;
    if (strchr(name, '/')) {
        /* a path to a FIFO or a device is bad data, not a missing model */
        if ((rc = fs_check_not_special(name))) goto done;
        if (!try_path(&t, name, path))
            rc = iso_fail(ISO_EUNAVAIL, "model '%s' not found (tried %s)", name, t.s ? t.s : "");
        goto done;
    }
    if (try_path(&t, name, path)) goto done;
    const char *env = getenv("ISOPIPE_MODELS");
    size_t dl = (env ? strlen(env) : 0) + 64 + strlen(ISOPIPE_PREFIX);
    if (!(dirs = malloc(dl))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    snprintf(dirs, dl, "%s%s./models:%s/share/isopipe/models", env ? env : "", env && *env ? ":" : "", ISOPIPE_PREFIX);
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (!*d) continue;
        if (!(p = fs_join(d, name))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        if (try_path(&t, p, path)) goto done;
        for (int i = 0; exts && exts[i]; i++) {
            size_t n = strlen(p) + strlen(exts[i]) + 1;
            if (!(q = malloc(n))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
            snprintf(q, n, "%s%s", p, exts[i]);
            if (try_path(&t, q, path)) goto done;
            free(q);
            q = NULL;
        }
        free(p);
        p = NULL;
    }
    rc = iso_fail(ISO_EUNAVAIL, "model '%s' not found (tried %s); `make models` fetches the default models", name,
                  t.s ? t.s : "");
done:
    free(t.s);
    free(dirs);
    free(p);
    free(q);
    return rc;
}
