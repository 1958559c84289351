/* clean.c — Wan2.1's prompt cleaning (clean.h). */
#include "clean.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "html_ent.h"

struct sb { char *s; size_t n, cap; };

static int sb_put(struct sb *b, const char *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) return iso_fail(ISO_EINTERNAL, "out of memory");
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

static size_t put_utf8(char *d, uint32_t c)
{
    if (c < 0x80) { d[0] = (char)c; return 1; }
    if (c < 0x800) { d[0] = (char)(0xc0 | c >> 6); d[1] = (char)(0x80 | (c & 63)); return 2; }
    if (c < 0x10000) { d[0] = (char)(0xe0 | c >> 12); d[1] = (char)(0x80 | (c >> 6 & 63)); d[2] = (char)(0x80 | (c & 63)); return 3; }
    d[0] = (char)(0xf0 | c >> 18); d[1] = (char)(0x80 | (c >> 12 & 63)); d[2] = (char)(0x80 | (c >> 6 & 63)); d[3] = (char)(0x80 | (c & 63));
    return 4;
}

/* code point at s (n > 0 bytes); length 1 and the byte itself for a malformed sequence */
static size_t dec(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
    if (len == 0 || len > n) { *cp = 0xfffffff; return 1; }
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) { *cp = 0xfffffff; return 1; }
        v = v << 6 | (s[i] & 0x3f);
    }
    *cp = v;
    return len;
}

static const char *ent_find(const char *name, size_t n)
{
    size_t lo = 0, hi = HTML_N_ENT;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(html_ent[mid].name, name, n);
        if (c == 0 && html_ent[mid].name[n]) c = 1;
        if (c == 0) return html_ent[mid].text;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* Python's html.unescape: &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) */
static int unescape(const char *s, size_t n, struct sb *o)
{
    int rc = 0;
    o->n = 0;
    if ((rc = sb_put(o, "", 0))) return rc;
    for (size_t i = 0; i < n && !rc;) {
        if (s[i] != '&') {
            size_t j = i;
            while (j < n && s[j] != '&') j++;
            rc = sb_put(o, s + i, j - i);
            i = j;
            continue;
        }
        size_t p = i + 1;
        if (p < n && s[p] == '#') {
            int hex = p + 1 < n && (s[p + 1] == 'x' || s[p + 1] == 'X');
            size_t q = p + 1 + (size_t)hex, st = q;
            uint64_t num = 0;
            while (q < n && (hex ? strchr("0123456789abcdefABCDEF", s[q]) && s[q] : (s[q] >= '0' && s[q] <= '9'))) {
                int dv = s[q] <= '9' ? s[q] - '0' : (s[q] | 32) - 'a' + 10;
                if (num < (UINT64_C(1) << 40)) num = num * (hex ? 16 : 10) + (uint64_t)dv;
                q++;
            }
            if (q == st) {      /* no digits: not a reference; '&' stays */
                rc = sb_put(o, "&", 1);
                i++;
                continue;
            }
            if (q < n && s[q] == ';') q++;
            char u[4];
            const char *text = NULL;
            for (int k = 0; k < HTML_N_INV; k++) if (html_inv[k].cp == num) text = html_inv[k].text;
            if (text) rc = sb_put(o, text, strlen(text));
            else if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) rc = sb_put(o, "\xef\xbf\xbd", 3);
            else {
                int drop = 0;
                for (int k = 0; k < HTML_N_DROP; k++) if (html_drop[k] == num) drop = 1;
                if (!drop) rc = sb_put(o, u, put_utf8(u, (uint32_t)num));
            }
            i = q;
            continue;
        }
        /* a name: 1..32 characters other than \t \n \f space < & # ; then ';'? */
        size_t q = p;
        int chars = 0;
        while (q < n && chars < 32 && !strchr("\t\n\f <&#;", s[q])) {
            uint32_t cp;
            q += dec((const unsigned char *)s + q, n - q, &cp);
            chars++;
        }
        if (chars == 0) { rc = sb_put(o, "&", 1); i++; continue; }
        if (q < n && s[q] == ';') q++;
        const char *text = ent_find(s + p, q - p);
        if (text) { rc = sb_put(o, text, strlen(text)); i = q; continue; }
        /* the longest known prefix (of at least 2 characters) */
        size_t x;
        text = NULL;
        for (x = q - p - 1; x >= 2 && !text; x--) text = ent_find(s + p, x);
        if (text) {
            x++;
            if ((rc = sb_put(o, text, strlen(text)))) break;
            rc = sb_put(o, s + p + x, q - p - x);
        } else {
            rc = sb_put(o, s + i, q - i);
        }
        i = q;
    }
    return rc;
}

/* Python's str.isspace (what re's \s and str.strip() use) */
static int py_space(uint32_t c)
{
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

int wan_clean(const char *in, size_t n, char **out, size_t *out_n)
{
    struct sb a = { 0 }, b = { 0 }, c = { 0 };
    int rc;
    *out = NULL;
    if ((rc = unescape(in, n, &a)) || (rc = unescape(a.s, a.n, &b)) || (rc = sb_put(&c, "", 0))) goto done;
    /* collapse whitespace runs to one space and drop them at the ends:
     * strip, collapse, strip is the same as this */
    int pending = 0;
    for (size_t i = 0; i < b.n && !rc;) {
        uint32_t cp;
        size_t l = dec((const unsigned char *)b.s + i, b.n - i, &cp);
        if (py_space(cp)) { pending = c.n > 0; i += l; continue; }
        if (pending) { rc = sb_put(&c, " ", 1); pending = 0; }
        if (!rc) rc = sb_put(&c, b.s + i, l);
        i += l;
    }
    if (rc) goto done;
    *out = c.s;
    *out_n = c.n;
    c.s = NULL;
done:
    free(a.s);
    free(b.s);
    free(c.s);
    return rc;
}
