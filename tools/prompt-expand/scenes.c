/* scenes.c — see scenes.h. The request format was tuned on SmolLM2-135M:
 * one shot per request (a numbered list of N drifts and repeats itself at
 * this size), two worked examples from two different videos as earlier
 * turns (prompts.h), and the previous shot quoted back so each prompt
 * continues the last. Without the examples SmolLM2 copies the topic or
 * chats; with one example video it copies that video's subject. */
#include "scenes.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "prompts.h"
#include "topic.h"

void scenes_conv_free(struct scenes_conv *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->text[i]);
    memset(c, 0, sizeof *c);
}

static int add(struct scenes_conv *c, const char *role, char *text)
{
    if (!text) return iso_fail(ISO_EINTERNAL, "out of memory");
    c->text[c->n] = text;
    c->msg[c->n].role = role;
    c->msg[c->n].content = text;
    c->n++;
    return 0;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, f);
    if (vasprintf(&s, f, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

static char *request(const char *topic, int index, int n, const char *prev)
{
    if (prev) return fmt("Video: %s\nPrevious shot: %s\nShot %d of %d.", topic, prev, index + 1, n);
    return fmt("Video: %s\nShot %d of %d.", topic, index + 1, n);
}

int scenes_conv_build(struct scenes_conv *c, const char *system, const char *topic, int index, int n,
                      const char *prev)
{
    int rc;
    memset(c, 0, sizeof *c);
    if ((rc = add(c, "system", strdup(system ? system : PE_SYSTEM))) ||
        (rc = add(c, "user", request(PE_EXAMPLE1_TOPIC, 0, 3, NULL))) ||
        (rc = add(c, "assistant", strdup(PE_EXAMPLE1_SHOT))) ||
        (rc = add(c, "user", request(PE_EXAMPLE2_TOPIC, 1, 3, PE_EXAMPLE2_PREV))) ||
        (rc = add(c, "assistant", strdup(PE_EXAMPLE2_SHOT))) ||
        (rc = add(c, "user", request(topic, index, n, prev))))
        scenes_conv_free(c);
    return rc;
}

static int starts_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* a leading "Shot 2:", "Scene 2 of 4 -", "2.", "2)", "- " or "* " label; returns its length */
static size_t label_len(const char *s)
{
    static const char *const words[] = { "shot", "scene", "segment", NULL };
    const char *p = s;
    int word = 0;
    for (int i = 0; words[i] && !word; i++)
        if (starts_ci(p, words[i])) { p += strlen(words[i]); word = 1; }
    while (*p == ' ') p++;
    const char *d = p;
    while (isdigit((unsigned char)*p)) p++;
    int num = p > d;
    if (num) {
        while (*p == ' ') p++;
        if (starts_ci(p, "of ")) {
            p += 3;
            while (*p == ' ') p++;
            while (isdigit((unsigned char)*p)) p++;
        }
    }
    if ((word || num) && (*p == ':' || *p == '.' || *p == ')' || *p == '-')) {
        p++;
        while (*p == ' ') p++;
        return (size_t)(p - s);
    }
    if ((s[0] == '-' || s[0] == '*') && s[1] == ' ') return 2;
    return 0;
}

/* number of different words (lower-case, split at anything but letters,
 * digits, apostrophes and non-ASCII bytes); a looping model writes few */
static size_t distinct_words(const char *s)
{
    char *w[SCENES_MAX_LEN];
    size_t nw = 0, distinct = 0;
    char *copy = strdup(s);
    if (!copy) return 0;
    for (char *p = copy; *p;) {
        while (*p && !(isalnum((unsigned char)*p) || *p == '\'' || (unsigned char)*p >= 0x80)) p++;
        if (!*p) break;
        char *b = p;
        while (*p && (isalnum((unsigned char)*p) || *p == '\'' || (unsigned char)*p >= 0x80)) { *p = (char)tolower((unsigned char)*p); p++; }
        if (*p) *p++ = 0;
        int seen = 0;
        for (size_t i = 0; i < nw && !seen; i++) seen = !strcmp(w[i], b);
        if (!seen && nw < SCENES_MAX_LEN) { w[nw++] = b; distinct++; }
    }
    free(copy);
    return distinct;
}

int scenes_parse_reply(const char *reply, size_t len, char **prompt)
{
    *prompt = NULL;
    if (!utf8_valid(reply, len)) return iso_fail(ISO_EDATA, "the reply is not valid UTF-8");
    if (memchr(reply, 0, len)) return iso_fail(ISO_EDATA, "the reply contains a NUL byte");
    /* the first non-empty line; anything after it must be blank */
    const char *b = reply, *end = reply + len;
    while (b < end && isspace((unsigned char)*b)) b++;
    const char *e = memchr(b, '\n', (size_t)(end - b));
    if (!e) e = end;
    for (const char *q = e; q < end; q++)
        if (!isspace((unsigned char)*q)) return iso_fail(ISO_EDATA, "the reply has more than one line");
    while (e > b && isspace((unsigned char)e[-1])) e--;
    if (e == b) return iso_fail(ISO_EDATA, "the reply is empty");
    char *s = strndup(b, (size_t)(e - b));
    if (!s) return iso_fail(ISO_EINTERNAL, "out of memory");
    int rc = 0;
    if (strstr(s, "<|") || strstr(s, "|>") || strstr(s, "im_start") || strstr(s, "im_end") ||
        strstr(s, "<s>") || strstr(s, "</s>")) {
        rc = iso_fail(ISO_EDATA, "the reply contains chat-template markers");
        goto done;
    }
    size_t skip = label_len(s);
    memmove(s, s + skip, strlen(s + skip) + 1);
    /* wrapping quotes or markdown emphasis */
    for (int pass = 0; pass < 2; pass++) {
        size_t n = strlen(s);
        static const char *const pairs[][2] = { { "\"", "\"" }, { "**", "**" }, { "*", "*" }, { "\xe2\x80\x9c", "\xe2\x80\x9d" },
                                                { "'", "'" } };
        for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++) {
            size_t a = strlen(pairs[k][0]), z = strlen(pairs[k][1]);
            if (n >= a + z && !strncmp(s, pairs[k][0], a) && !strcmp(s + n - z, pairs[k][1])) {
                memmove(s, s + a, n - a - z);
                s[n - a - z] = 0;
                break;
            }
        }
        while (isspace((unsigned char)*s)) memmove(s, s + 1, strlen(s));
        size_t m = strlen(s);
        while (m && isspace((unsigned char)s[m - 1])) s[--m] = 0;
    }
    static const char *const chatter[] = { "sure", "here is", "here's", "here are", "certainly", "okay", "ok,",
                                           "i'm ", "i am ", "i can", "as an ai", "i cannot", "i can't", "sorry",
                                           "video:", "previous shot", NULL };
    for (int i = 0; chatter[i]; i++)
        if (starts_ci(s, chatter[i])) {
            rc = iso_fail(ISO_EDATA, "the reply starts with '%s' instead of a description", chatter[i]);
            goto done;
        }
    size_t n = strlen(s), letters = 0, visible = 0, words = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x80) { if ((ch & 0xc0) != 0x80) { letters++; visible++; } continue; }
        if (isspace(ch)) continue;
        visible++;
        letters += isalpha(ch) != 0;
        if (i == 0 || isspace((unsigned char)s[i - 1])) words++;
    }
    if (n < SCENES_MIN_LEN) { rc = iso_fail(ISO_EDATA, "the reply is too short (%zu bytes)", n); goto done; }
    if (n > SCENES_MAX_LEN) { rc = iso_fail(ISO_EDATA, "the reply is too long (%zu bytes)", n); goto done; }
    if (words < SCENES_MIN_WORDS) { rc = iso_fail(ISO_EDATA, "the reply has only %zu words", words); goto done; }
    if (letters * 10 < visible * 7) { rc = iso_fail(ISO_EDATA, "the reply is mostly not letters"); goto done; }
    size_t distinct = distinct_words(s);
    if (distinct < 4 || distinct * 3 < words) {
        rc = iso_fail(ISO_EDATA, "the reply repeats itself (%zu distinct words of %zu)", distinct, words);
        goto done;
    }
    *prompt = s;
    s = NULL;
done:
    free(s);
    return rc;
}

size_t scenes_sentence_end(const char *s, size_t n, int at_end)
{
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '.' && s[i] != '!' && s[i] != '?') continue;
        size_t j = i + 1;
        while (j < n && (s[j] == '"' || s[j] == '\'' || s[j] == ')')) j++;
        if (j == n ? at_end : isspace((unsigned char)s[j])) best = j;
    }
    return best;
}

/* lower-case ASCII letters and digits (and every non-ASCII byte) */
static char *norm(const char *p)
{
    char *o = malloc(strlen(p) + 1), *q = o;
    if (!o) return NULL;
    for (; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch >= 0x80 || isalnum(ch)) *q++ = (char)tolower(ch);
    }
    *q = 0;
    return o;
}

/* lower-cased words of s (letters, digits, apostrophes, non-ASCII bytes), in
 * one buffer; returns how many, at most max */
static size_t words_of(const char *s, char *buf, size_t cap, const char **w, size_t max)
{
    size_t nw = 0, k = 0;
    for (const char *p = s; *p && nw < max;) {
        while (*p && !(isalnum((unsigned char)*p) || *p == '\'' || (unsigned char)*p >= 0x80)) p++;
        if (!*p) break;
        w[nw++] = buf + k;
        while (*p && (isalnum((unsigned char)*p) || *p == '\'' || (unsigned char)*p >= 0x80)) {
            if (k + 1 < cap) buf[k++] = (char)tolower((unsigned char)*p);
            p++;
        }
        if (k < cap) buf[k++] = 0;
        else { nw--; break; }
    }
    return nw;
}

static int same_pair(const char **a, size_t i, const char **b, size_t j)
{
    return !strcmp(a[i], b[j]) && !strcmp(a[i + 1], b[j + 1]);
}

/* distinct pairs of w[0..n) */
static size_t distinct_pairs(const char **w, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++) seen = same_pair(w, i, w, k);
        d += !seen;
    }
    return d;
}

double scenes_similarity(const char *a, const char *b)
{
    enum { MAXW = 256 };
    static __thread char ba[4096], bb[4096];
    const char *wa[MAXW], *wb[MAXW];
    size_t na = words_of(a, ba, sizeof ba, wa, MAXW), nb = words_of(b, bb, sizeof bb, wb, MAXW);
    size_t da = distinct_pairs(wa, na), db = distinct_pairs(wb, nb), common = 0;
    for (size_t i = 0; i + 1 < na; i++) {
        int first = 1, inb = 0;
        for (size_t k = 0; k < i && first; k++) first = !same_pair(wa, i, wa, k);
        for (size_t j = 0; first && j + 1 < nb && !inb; j++) inb = same_pair(wa, i, wb, j);
        common += first && inb;
    }
    size_t uni = da + db - common;
    return uni ? (double)common / (double)uni : 1.0;
}

int scenes_is_duplicate(const char *p, char *const *prev, int n)
{
    char *a = norm(p);
    int dup = 0;
    for (int i = 0; a && i < n && !dup; i++) {
        char *b = norm(prev[i]);
        dup = (b && strcmp(a, b) == 0) || scenes_similarity(p, prev[i]) >= SCENES_MAX_SIMILARITY;
        free(b);
    }
    free(a);
    return dup;
}

json_t *scenes_segments_json(char *const *prompts, int n)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer(i));
        json_object_set_new(o, "prompt", json_string(prompts[i]));
        json_array_append_new(arr, o);
    }
    return arr;
}

char *scenes_fallback_prompt(const char *topic, int index, int n)
{
    /* the topic's first line, trimmed, without a closing full stop */
    size_t len = 0;
    while (topic[len] && topic[len] != '\n') len++;
    while (len && (topic[len - 1] == ' ' || topic[len - 1] == '\t' || topic[len - 1] == '\r' || topic[len - 1] == '.'))
        len--;
    while (len && (*topic == ' ' || *topic == '\t')) { topic++; len--; }
    if (len > 400) len = 400;
    char place[48];
    if (n <= 1) place[0] = 0;
    else if (index == 0) snprintf(place, sizeof place, "Opening shot: ");
    else if (index == n - 1) snprintf(place, sizeof place, "Final shot: ");
    else snprintf(place, sizeof place, "Shot %d of %d: ", index + 1, n);
    size_t cap = strlen(place) + len + 64;
    char *out = malloc(cap);
    if (!out) return NULL;
    int k = snprintf(out, cap, "%s%.*s", place, (int)len, topic);
    /* a sentence: capital after the place, full stop at the end */
    size_t at = strlen(place);
    if ((size_t)k > at && out[at] >= 'a' && out[at] <= 'z') out[at] = (char)(out[at] - 'a' + 'A');
    snprintf(out + k, cap - (size_t)k, ".");
    return out;
}
