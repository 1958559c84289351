#include "topic.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"

int utf8_valid(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        int n;
        unsigned cp;
        if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
        else return 0;
        for (int k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return 0; /* overlong */
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += (size_t)n + 1;
    }
    return 1;
}

void topic_free(struct topic *t)
{
    if (!t) return;
    free(t->path);
    free(t->text);
    for (int i = 0; i < t->nkeyframes; i++) free(t->keyframes[i]);
    free(t->keyframes);
    free(t->sampler);
    free(t->negative);
    memset(t, 0, sizeof *t);
    t->overlap = -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

static const char *const keys[] = { "topic", "keyframes", "segments", "frames", "overlap", "fps",
                                    "width", "height", "seed", "steps", "guidance", "shift", "sampler",
                                    "negative", NULL };

static int known_key(const char *line, size_t *keylen)
{
    for (int i = 0; keys[i]; i++) {
        size_t n = strlen(keys[i]);
        if (strncmp(line, keys[i], n) == 0) {
            const char *p = line + n;
            while (*p == ' ' || *p == '\t') p++;
            if (*p == ':') { *keylen = n; return i; }
        }
    }
    return -1;
}

static int int_value(const char *path, int lineno, const char *key, const char *v, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *trim(end) || x < min || x > max)
        return iso_fail(ISO_EDATA, "%s:%d: %s: '%s' is not an integer in [%ld, %ld]", path, lineno, key, v, min, max);
    *out = x;
    return 0;
}

static int add_keyframes(struct topic *t, char *v)
{
    char *save = NULL;
    for (char *tok = strtok_r(v, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        char **nk = realloc(t->keyframes, sizeof *nk * (size_t)(t->nkeyframes + 1));
        if (!nk) return iso_fail(ISO_EINTERNAL, "out of memory");
        t->keyframes = nk;
        t->keyframes[t->nkeyframes] = t->path ? fs_resolve(t->path, tok) : strdup(tok);
        if (!t->keyframes[t->nkeyframes]) return iso_fail(ISO_EINTERNAL, "out of memory");
        t->nkeyframes++;
    }
    return 0;
}

int topic_parse(const char *text, size_t len, const char *path, struct topic *t)
{
    memset(t, 0, sizeof *t);
    t->overlap = -1;
    const char *name = path ? path : "(topic)";
    int rc = 0;
    if (memchr(text, 0, len)) return iso_fail(ISO_EDATA, "cannot read '%s': contains NUL bytes, not UTF-8 text", name);
    if (!utf8_valid(text, len)) return iso_fail(ISO_EDATA, "cannot read '%s': not valid UTF-8", name);
    if (path && !(t->path = strdup(path))) return iso_fail(ISO_EINTERNAL, "out of memory");
    char *copy = strndup(text, len);
    if (!copy) return iso_fail(ISO_EINTERNAL, "out of memory");
    /* skip a UTF-8 byte order mark */
    char *body = copy;
    if ((unsigned char)body[0] == 0xef && (unsigned char)body[1] == 0xbb && (unsigned char)body[2] == 0xbf) body += 3;

    /* first pass: does any line start with a known key? */
    int has_keys = 0;
    {
        char *p = body;
        while (*p) {
            char *nl = strchr(p, '\n');
            size_t kl;
            while (*p == ' ' || *p == '\t') p++;
            if (*p != '#' && known_key(p, &kl) >= 0) { has_keys = 1; break; }
            if (!nl) break;
            p = nl + 1;
        }
    }
    if (!has_keys) {
        /* all topic: comments dropped, lines joined with single spaces */
        size_t n = strlen(body);
        char *out = malloc(n + 1);
        if (!out) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        size_t k = 0;
        char *save = NULL;
        for (char *line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *l = trim(line);
            if (*l == '#' || !*l) continue;
            if (k) out[k++] = ' ';
            size_t ln = strlen(l);
            memcpy(out + k, l, ln);
            k += ln;
        }
        out[k] = 0;
        t->text = out;
    } else {
        int lineno = 0;
        char *p = body;
        while (p && *p) {
            char *nl = strchr(p, '\n');
            if (nl) *nl = 0;
            lineno++;
            char *line = trim(p);
            p = nl ? nl + 1 : NULL;
            if (!*line || *line == '#') continue;
            size_t kl;
            int k = known_key(line, &kl);
            if (k < 0) {
                char *colon = strchr(line, ':');
                size_t show = colon ? (size_t)(colon - line) : strlen(line);
                rc = iso_fail(ISO_EDATA, "%s:%d: unknown key '%.*s' (known: topic, keyframes, segments, frames, overlap, fps, width, height, seed, "
                                  "steps, guidance, shift, sampler, negative)",
                              name, lineno, (int)(show > 40 ? 40 : show), line);
                goto done;
            }
            char *v = trim(strchr(line + kl, ':') + 1);
            long x;
            switch (k) {
            case 0:
                if (t->text) {
                    /* a second topic line continues the first */
                    size_t a = strlen(t->text), b = strlen(v);
                    char *nt = realloc(t->text, a + b + 2);
                    if (!nt) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
                    nt[a] = ' ';
                    memcpy(nt + a + 1, v, b + 1);
                    t->text = nt;
                } else if (!(t->text = strdup(v))) {
                    rc = iso_fail(ISO_EINTERNAL, "out of memory");
                    goto done;
                }
                break;
            case 1: if ((rc = add_keyframes(t, v))) goto done; break;
            case 2: if ((rc = int_value(name, lineno, "segments", v, 1, 1000, &x))) goto done; t->segments = (int)x; break;
            case 3: if ((rc = int_value(name, lineno, "frames", v, 2, 100000, &x))) goto done; t->frames = (int)x; break;
            case 4: if ((rc = int_value(name, lineno, "overlap", v, 0, 100000, &x))) goto done; t->overlap = (int)x; break;
            case 5: {
                char *end;
                double d = strtod(v, &end);
                if (end == v || *trim(end) || !(d > 0 && d <= 1000)) {
                    rc = iso_fail(ISO_EDATA, "%s:%d: fps: '%s' is not a number in (0, 1000]", name, lineno, v);
                    goto done;
                }
                t->fps = d;
                break;
            }
            case 6: if ((rc = int_value(name, lineno, "width", v, 2, 16384, &x))) goto done; t->width = (int)x; break;
            case 7: if ((rc = int_value(name, lineno, "height", v, 2, 16384, &x))) goto done; t->height = (int)x; break;
            case 8: {
                char *end;
                errno = 0;
                unsigned long long s = strtoull(v, &end, 10);
                if (errno || end == v || *trim(end) || v[0] == '-') {
                    rc = iso_fail(ISO_EDATA, "%s:%d: seed: '%s' is not a non-negative integer", name, lineno, v);
                    goto done;
                }
                t->seed = s;
                t->seed_set = 1;
                break;
            }
            case 9: if ((rc = int_value(name, lineno, "steps", v, 1, 1000, &x))) goto done; t->steps = (int)x; break;
            case 10: case 11: {
                const char *key = k == 10 ? "guidance" : "shift";
                double lo = k == 10 ? 1 : 0, hi = 100;
                char *end;
                double d = strtod(v, &end);
                if (end == v || *trim(end) || !(d >= lo && d <= hi) || (k == 11 && d == 0)) {
                    rc = iso_fail(ISO_EDATA, "%s:%d: %s: '%s' is not a number in %s%g, %g]", name, lineno, key, v,
                                  k == 10 ? "[" : "(", lo, hi);
                    goto done;
                }
                if (k == 10) t->guidance = d; else t->shift = d;
                break;
            }
            case 12:
                if (strcmp(v, "unipc") != 0 && strcmp(v, "euler") != 0) {
                    rc = iso_fail(ISO_EDATA, "%s:%d: sampler: '%.40s' is not unipc or euler", name, lineno, v);
                    goto done;
                }
                free(t->sampler);
                if (!(t->sampler = strdup(v))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
                break;
            case 13:
                free(t->negative);
                if (!(t->negative = strdup(v))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
                break;
            }
        }
    }
    if (!t->text || !*trim(t->text)) {
        rc = iso_fail(ISO_EDATA, "'%s' has no topic (write a `topic:` line, or plain text)", name);
        goto done;
    }
done:
    free(copy);
    if (rc) topic_free(t);
    return rc;
}

int topic_load(const char *path, struct topic *t)
{
    memset(t, 0, sizeof *t);
    t->overlap = -1;
    char *data;
    size_t len;
    int rc = fs_read_all(path, &data, &len, (size_t)1 << 20);
    if (rc) return rc;
    rc = topic_parse(data, len, path, t);
    free(data);
    return rc;
}
