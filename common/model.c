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

int model_find(const char *name, const char *const *exts, char **path)
{
    *path = NULL;
    if (!name || !*name) return iso_fail(ISO_EUSAGE, "empty model name");
    size_t cap = 4096, len = 0;
    char *tried = malloc(cap);
    if (!tried) return iso_fail(ISO_EINTERNAL, "out of memory");
    tried[0] = 0;
#define TRY(p)                                                                 \
    do {                                                                       \
        const char *p_ = (p);                                                  \
        if (is_file(p_)) { *path = strdup(p_); free(tried); return 0; }        \
        size_t l_ = strlen(p_);                                                \
        if (len + l_ + 8 < cap) {                                              \
            len += (size_t)snprintf(tried + len, cap - len, "%s'%s'", len ? ", " : "", p_); \
        }                                                                      \
    } while (0)
    if (strchr(name, '/')) {
        TRY(name);
        int rc = iso_fail(ISO_EUNAVAIL, "model '%s' not found (tried %s)", name, tried);
        free(tried);
        return rc;
    }
    TRY(name);
    const char *env = getenv("ISOPIPE_MODELS");
    char *dirs = NULL;
    size_t dl = (env ? strlen(env) : 0) + 64 + strlen(ISOPIPE_PREFIX);
    dirs = malloc(dl);
    if (!dirs) { free(tried); return iso_fail(ISO_EINTERNAL, "out of memory"); }
    snprintf(dirs, dl, "%s%s./models:%s/share/isopipe/models", env ? env : "", env && *env ? ":" : "", ISOPIPE_PREFIX);
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (!*d) continue;
        char *p = fs_join(d, name);
        if (!p) continue;
        TRY(p);
        for (int i = 0; exts && exts[i]; i++) {
            size_t n = strlen(p) + strlen(exts[i]) + 1;
            char *q = malloc(n);
            if (!q) continue;
            snprintf(q, n, "%s%s", p, exts[i]);
            if (is_file(q)) { *path = q; free(p); free(dirs); free(tried); return 0; }
            TRY(q);
            free(q);
        }
        free(p);
    }
#undef TRY
    free(dirs);
    int rc = iso_fail(ISO_EUNAVAIL, "model '%s' not found (tried %s); `make models` fetches the default models", name, tried);
    free(tried);
    return rc;
}
