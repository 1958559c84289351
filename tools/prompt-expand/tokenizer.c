/* tokenizer.c — byte-level BPE (GPT-2, Radford et al. 2019, §2.2) as
 * llama.cpp runs it (src/llama-vocab.cpp, src/unicode.cpp):
 *   1. special tokens are cut out of the text literally, longest first;
 *   2. each remaining piece is split into words by the model's pre-tokenizer
 *      regex (hand-written matchers below, one per regex);
 *   3. each word is byte-encoded (every byte mapped to a printable code point,
 *      GPT-2's bytes_to_unicode) and its UTF-8 characters are merged pairwise,
 *      always the adjacent pair of lowest merge rank first (leftmost on ties);
 *   4. each final symbol is looked up in the vocabulary. */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gguf.h"
#include "tok_unicode.h"

/* ---- growable arrays */

int tok_ids_push(struct tok_ids *a, int32_t id)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, nc * sizeof *v);
        if (!v) return iso_fail(ISO_EINTERNAL, "out of memory");
        a->v = v;
        a->cap = nc;
    }
    a->v[a->n++] = id;
    return 0;
}

void tok_ids_free(struct tok_ids *a)
{
    free(a->v);
    memset(a, 0, sizeof *a);
}

int tok_str_append(struct tok_str *s, const char *p, size_t n)
{
    if (n > SIZE_MAX / 2 - s->n - 1) return iso_fail(ISO_EINTERNAL, "string too long");
    if (s->n + n + 1 > s->cap) {
        size_t nc = s->cap ? s->cap : 64;
        while (nc < s->n + n + 1) nc *= 2;
        char *q = realloc(s->s, nc);
        if (!q) return iso_fail(ISO_EINTERNAL, "out of memory");
        s->s = q;
        s->cap = nc;
    }
    if (n) memcpy(s->s + s->n, p, n);
    s->n += n;
    s->s[s->n] = 0;
    return 0;
}

void tok_str_free(struct tok_str *s)
{
    free(s->s);
    memset(s, 0, sizeof *s);
}

/* ---- a string -> index hash map (open addressing, FNV-1a); the keys are
 * the strings of an array the map does not own */

struct strmap {
    uint32_t mask;
    int32_t *slot;              /* -1 empty, else an index into keys */
    char *const *keys;
    const uint32_t *lens;
};

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int strmap_init(struct strmap *m, size_t n, char *const *keys, const uint32_t *lens)
{
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    m->slot = malloc(cap * sizeof *m->slot);
    if (!m->slot) return iso_fail(ISO_EINTERNAL, "out of memory");
    memset(m->slot, 0xff, cap * sizeof *m->slot);
    m->mask = (uint32_t)(cap - 1);
    m->keys = keys;
    m->lens = lens;
    return 0;
}

static int32_t strmap_get(const struct strmap *m, const char *s, size_t n)
{
    for (uint32_t i = fnv1a(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t k = m->slot[i];
        if (k < 0) return -1;
        if (m->lens[k] == n && memcmp(m->keys[k], s, n) == 0) return k;
    }
}

/* overwrite: a later duplicate replaces the earlier one (llama.cpp's
 * token_to_id[word] = i); otherwise the first stays (bpe_ranks.emplace) */
static void strmap_put(struct strmap *m, int32_t idx, int overwrite)
{
    const char *s = m->keys[idx];
    size_t n = m->lens[idx];
    for (uint32_t i = fnv1a(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t k = m->slot[i];
        if (k < 0) { m->slot[i] = idx; return; }
        if (m->lens[k] == n && memcmp(m->keys[k], s, n) == 0) {
            if (overwrite) m->slot[i] = idx;
            return;
        }
    }
}

/* ---- the tokenizer */

struct tokenizer {
    int32_t n;
    char **text; uint32_t *len; uint8_t *type;
    struct strmap vocab;
    int32_t n_merges;
    char **merge; uint32_t *merge_len;
    struct strmap ranks;
    int32_t *special; int32_t n_special;   /* control/user-defined/unknown ids, longest first */
    enum tok_pre pre;
    int ignore_merges;                     /* llama-bpe: a word already in the vocabulary is one token */
    int32_t bos, eos, eot;
    int add_bos;
    uint8_t *eog;                          /* per id */
    char byte_enc[256][3];                 /* byte -> UTF-8 of its stand-in code point (1-2 bytes + NUL) */
    int16_t byte_dec[324];                 /* stand-in code point -> byte, -1 none */
};

static const char *const pre_names[] = { "gpt2", "smollm", "qwen2", "llama-bpe" };

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
 * other 68 bytes map to U+0100.. in order (encoder.py of GPT-2) */
static void byte_tables(struct tokenizer *t)
{
    int n = 0;
    for (int i = 0; i < 324; i++) t->byte_dec[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        int cp = keep ? b : 256 + n++;
        t->byte_dec[cp] = (int16_t)b;
        if (cp < 0x80) { t->byte_enc[b][0] = (char)cp; t->byte_enc[b][1] = 0; }
        else {
            t->byte_enc[b][0] = (char)(0xc0 | (cp >> 6));
            t->byte_enc[b][1] = (char)(0x80 | (cp & 0x3f));
            t->byte_enc[b][2] = 0;
        }
    }
}

void tok_free(struct tokenizer **tp)
{
    struct tokenizer *t = tp ? *tp : NULL;
    if (!t) return;
    for (int32_t i = 0; t->text && i < t->n; i++) free(t->text[i]);
    for (int32_t i = 0; t->merge && i < t->n_merges; i++) free(t->merge[i]);
    free(t->text); free(t->len); free(t->type);
    free(t->merge); free(t->merge_len);
    free(t->vocab.slot); free(t->ranks.slot);
    free(t->special); free(t->eog);
    free(t);
    *tp = NULL;
}

static int special_cmp(const void *a, const void *b, void *ctx)
{
    const struct tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->len[x] != t->len[y]) return t->len[x] > t->len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int parse_pre(const char *pre, enum tok_pre *out)
{
    if (!pre || !strcmp(pre, "gpt2") || !strcmp(pre, "gpt-2")) *out = TOK_PRE_GPT2;
    else if (!strcmp(pre, "smollm") || !strcmp(pre, "starcoder") || !strcmp(pre, "refact")) *out = TOK_PRE_SMOLLM;
    else if (!strcmp(pre, "qwen2") || !strcmp(pre, "stablelm2") || !strcmp(pre, "deepseek-r1-qwen")) *out = TOK_PRE_QWEN2;
    else if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "smaug-bpe") || !strcmp(pre, "dbrx"))
        *out = TOK_PRE_LLAMA3;
    else return iso_fail(ISO_EUNAVAIL, "unsupported pre-tokenizer '%s' (known: smollm, gpt2, qwen2, llama-bpe)", pre);
    return 0;
}

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) { memcpy(p, s, n); p[n] = 0; }
    return p;
}

int tok_build(const struct tok_desc *d, struct tokenizer **out)
{
    int rc = 0;
    struct tokenizer *t = NULL;
    *out = NULL;
    if (d->n_tokens == 0 || d->n_tokens > (1u << 24)) {
        rc = iso_fail(ISO_EDATA, "vocabulary of %zu tokens", d->n_tokens);
        goto done;
    }
    if (d->n_merges > (1u << 24)) { rc = iso_fail(ISO_EDATA, "%zu merges", d->n_merges); goto done; }
    t = calloc(1, sizeof *t);
    if (!t) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if ((rc = parse_pre(d->pre, &t->pre))) goto done;
    t->ignore_merges = t->pre == TOK_PRE_LLAMA3;
    t->n = (int32_t)d->n_tokens;
    t->text = calloc(d->n_tokens, sizeof *t->text);
    t->len = calloc(d->n_tokens, sizeof *t->len);
    t->type = calloc(d->n_tokens, 1);
    t->eog = calloc(d->n_tokens, 1);
    t->special = calloc(d->n_tokens, sizeof *t->special);
    t->n_merges = (int32_t)d->n_merges;
    t->merge = calloc(d->n_merges + 1, sizeof *t->merge);
    t->merge_len = calloc(d->n_merges + 1, sizeof *t->merge_len);
    if (!t->text || !t->len || !t->type || !t->eog || !t->special || !t->merge || !t->merge_len) {
        rc = iso_fail(ISO_EINTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < d->n_tokens; i++) {
        if (!(t->text[i] = dupn(d->tokens[i], d->token_lens[i]))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        t->len[i] = d->token_lens[i];
        int ty = d->types ? d->types[i] : TOK_TYPE_NORMAL;
        t->type[i] = (uint8_t)(ty >= 0 && ty <= 6 ? ty : TOK_TYPE_UNDEFINED);
    }
    for (size_t i = 0; i < d->n_merges; i++) {
        if (!(t->merge[i] = dupn(d->merges[i], d->merge_lens[i]))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        t->merge_len[i] = d->merge_lens[i];
    }
    if ((rc = strmap_init(&t->vocab, d->n_tokens, t->text, t->len))) goto done;
    for (int32_t i = 0; i < t->n; i++)
        if (t->len[i]) strmap_put(&t->vocab, i, 1);
    if ((rc = strmap_init(&t->ranks, d->n_merges, t->merge, t->merge_len))) goto done;
    for (int32_t i = 0; i < t->n_merges; i++) strmap_put(&t->ranks, i, 0);

    t->bos = d->bos >= 0 && d->bos < t->n ? d->bos : -1;
    t->eos = d->eos >= 0 && d->eos < t->n ? d->eos : -1;
    t->add_bos = d->add_bos && t->bos >= 0;
    t->eot = d->eot >= 0 && d->eot < t->n ? d->eot : -1;
    /* end-of-generation tokens found by their text, as llama-vocab.cpp does
     * ("auto-detect special tokens by text"): such a token is control-type */
    static const char *const eog_text[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                            "<|end_of_text|>", "<|eom_id|>", "<EOT>", NULL };
    for (int k = 0; eog_text[k]; k++) {
        int32_t id = strmap_get(&t->vocab, eog_text[k], strlen(eog_text[k]));
        if (id < 0) continue;
        t->eog[id] = 1;
        if (t->type[id] != TOK_TYPE_CONTROL && t->type[id] != TOK_TYPE_USER_DEFINED) t->type[id] = TOK_TYPE_CONTROL;
        if (t->eot < 0 && k < 6) t->eot = id;
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;

    for (int32_t i = 0; i < t->n; i++)
        if (t->len[i] && (t->type[i] == TOK_TYPE_CONTROL || t->type[i] == TOK_TYPE_USER_DEFINED ||
                          t->type[i] == TOK_TYPE_UNKNOWN))
            t->special[t->n_special++] = i;
    /* llama.cpp sorts by length only (std::sort, not stable); ties by id here */
    qsort_r(t->special, (size_t)t->n_special, sizeof *t->special, special_cmp, t);
    byte_tables(t);
    *out = t;
    t = NULL;
done:
    tok_free(&t);
    return rc;
}

/* ---- GGUF metadata */

/* walks an array of GGUF strings (u64 length + bytes each) in the mapping,
 * checking every length against the end of the file */
static int gguf_strings(const struct gguf *g, const struct gguf_value *v, const char *key, char ***s, uint32_t **lens)
{
    *s = NULL;
    *lens = NULL;
    if (v->type != GGUF_T_ARRAY || v->v.arr.type != GGUF_T_STRING)
        return iso_fail(ISO_EDATA, "%s is not an array of strings", key);
    uint64_t n = v->v.arr.n;
    if (n == 0 || n > (1u << 24)) return iso_fail(ISO_EDATA, "%s has %llu entries", key, (unsigned long long)n);
    const uint8_t *p = v->v.arr.data, *end = g->map + g->size;
    if (p < g->map || p > end) return iso_fail(ISO_EDATA, "%s lies outside the file", key);
    *s = malloc(n * sizeof **s);
    *lens = malloc(n * sizeof **lens);
    if (!*s || !*lens) { free(*s); free(*lens); *s = NULL; *lens = NULL; return iso_fail(ISO_EINTERNAL, "out of memory"); }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        if ((size_t)(end - p) < 8) goto bad;
        memcpy(&len, p, 8);   /* GGUF is little-endian, as is every machine we build for */
        p += 8;
        if (len > (uint64_t)(end - p) || len > UINT32_MAX) goto bad;
        (*s)[i] = (char *)p;
        (*lens)[i] = (uint32_t)len;
        p += len;
    }
    return 0;
bad:
    free(*s); free(*lens);
    *s = NULL; *lens = NULL;
    return iso_fail(ISO_EDATA, "%s: a string runs past the end of the file", key);
}

static int32_t get_id(const struct gguf *g, const char *key)
{
    uint64_t v;
    if (gguf_get_u64(g, key, &v) < 0 || v > INT32_MAX) return -1;
    return (int32_t)v;
}

int tok_from_gguf(const struct gguf *g, struct tokenizer **out)
{
    int rc = 0;
    struct tok_desc d;
    char **toks = NULL, **merges = NULL;
    uint32_t *tlens = NULL, *mlens = NULL;
    int32_t *types = NULL;
    char pre[64];
    struct gguf_str s;
    memset(&d, 0, sizeof d);
    *out = NULL;

    if (gguf_get_str(g, "tokenizer.ggml.model", &s) < 0) { rc = iso_fail(ISO_EDATA, "no tokenizer.ggml.model in the model file"); goto done; }
    if (s.len != 4 || memcmp(s.s, "gpt2", 4) != 0) {
        rc = iso_fail(ISO_EUNAVAIL, "unsupported tokenizer model '%.*s' (only gpt2 byte-level BPE)", (int)(s.len > 32 ? 32 : s.len), s.s);
        goto done;
    }
    const struct gguf_kv *kv = gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!kv) { rc = iso_fail(ISO_EDATA, "no tokenizer.ggml.tokens in the model file"); goto done; }
    if ((rc = gguf_strings(g, &kv->val, "tokenizer.ggml.tokens", &toks, &tlens))) goto done;
    d.n_tokens = (size_t)kv->val.v.arr.n;
    d.tokens = (const char *const *)toks;
    d.token_lens = tlens;

    kv = gguf_find_kv(g, "tokenizer.ggml.merges");
    if (!kv) { rc = iso_fail(ISO_EDATA, "no tokenizer.ggml.merges in the model file"); goto done; }
    if ((rc = gguf_strings(g, &kv->val, "tokenizer.ggml.merges", &merges, &mlens))) goto done;
    d.n_merges = (size_t)kv->val.v.arr.n;
    d.merges = (const char *const *)merges;
    d.merge_lens = mlens;

    kv = gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (kv) {
        if (kv->val.type != GGUF_T_ARRAY || kv->val.v.arr.n < d.n_tokens) {
            rc = iso_fail(ISO_EDATA, "tokenizer.ggml.token_type is not an array of %zu numbers", d.n_tokens);
            goto done;
        }
        types = malloc(d.n_tokens * sizeof *types);
        if (!types) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        for (size_t i = 0; i < d.n_tokens; i++) {
            int64_t v;
            if (gguf_arr_i64(&kv->val, i, &v) < 0) { rc = iso_fail(ISO_EDATA, "tokenizer.ggml.token_type[%zu] is not a number", i); goto done; }
            types[i] = (int32_t)(v >= 0 && v <= 6 ? v : 0);
        }
        d.types = types;
    }
    pre[0] = 0;
    if (gguf_get_str(g, "tokenizer.ggml.pre", &s) == 0) {
        if (s.len >= sizeof pre) { rc = iso_fail(ISO_EUNAVAIL, "unsupported pre-tokenizer '%.32s...'", s.s); goto done; }
        memcpy(pre, s.s, s.len);
        pre[s.len] = 0;
        d.pre = pre;
    }
    d.bos = get_id(g, "tokenizer.ggml.bos_token_id");
    d.eos = get_id(g, "tokenizer.ggml.eos_token_id");
    d.eot = get_id(g, "tokenizer.ggml.eot_token_id");
    uint64_t ab = 0;
    const struct gguf_kv *abkv = gguf_find_kv(g, "tokenizer.ggml.add_bos_token");
    if (abkv && abkv->val.type == GGUF_T_BOOL) ab = (uint64_t)abkv->val.v.b;
    d.add_bos = ab != 0;
    rc = tok_build(&d, out);
done:
    free(toks); free(tlens); free(merges); free(mlens); free(types);
    return rc;
}

/* ---- Unicode classes (tok_unicode.h) */

enum { U_LETTER = 1, U_NUMBER = 2, U_SPACE = 4, U_IN = 8 };

static int uni_class(uint32_t cp)
{
    if (cp > 0x10ffff) return 0;
    int lo = 0, hi = TOK_UNI_NRANGES - 1;
    while (lo < hi) {   /* the last range whose start <= cp */
        int mid = (lo + hi + 1) / 2;
        if ((tok_uni_ranges[mid] >> 2) <= cp) lo = mid;
        else hi = mid - 1;
    }
    return (int)(tok_uni_ranges[lo] & 3);
}

static int uni_flags(uint32_t cp)
{
    int f = U_IN;
    int k = uni_class(cp);
    if (k == 1) f |= U_LETTER;
    else if (k == 2) f |= U_NUMBER;
    for (int i = 0; i < TOK_UNI_NSPACE; i++)
        if (tok_uni_space[i] == cp) { f |= U_SPACE; break; }
    return f;
}

/* UTF-8 to code points as unicode_cpts_from_utf8 does: an invalid sequence
 * becomes U+FFFD and costs one byte */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        uint32_t v = 0xfffd;
        size_t len = 1;
        if (!(c & 0x80)) v = c;
        else if (!(c & 0x40)) v = 0xfffd;
        else if (!(c & 0x20)) {
            if (i + 1 < n && (s[i + 1] & 0xc0) == 0x80) { v = (uint32_t)(c & 0x1f) << 6 | (s[i + 1] & 0x3f); len = 2; }
        } else if (!(c & 0x10)) {
            if (i + 2 < n && (s[i + 1] & 0xc0) == 0x80 && (s[i + 2] & 0xc0) == 0x80) {
                v = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[i + 1] & 0x3f) << 6 | (s[i + 2] & 0x3f);
                len = 3;
            }
        } else if (!(c & 0x08)) {
            if (i + 3 < n && (s[i + 1] & 0xc0) == 0x80 && (s[i + 2] & 0xc0) == 0x80 && (s[i + 3] & 0xc0) == 0x80) {
                v = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3f) << 12 | (uint32_t)(s[i + 2] & 0x3f) << 6 |
                    (s[i + 3] & 0x3f);
                len = 4;
            }
        }
        /* code points past U+10FFFF have no UTF-8 form; llama.cpp throws on them later */
        if (v > 0x10ffff) { v = 0xfffd; len = 1; }
        cp[k++] = v;
        i += len;
    }
    return k;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xc0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12); out[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18); out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---- pre-tokenizers: each appends word lengths (in code points) of the
 * segment cp[ini..end) to words. They follow the matchers of unicode.cpp
 * alternative by alternative, including where those differ from a real
 * regex engine, since matching llama.cpp's ids is the point. */

struct seg {
    const uint32_t *cp; const int *fl;
    size_t ini, end, prev;
    size_t *words; size_t nw;
};

#define OOR 0xffffffffu
static uint32_t S_cp(const struct seg *s, size_t p) { return p >= s->ini && p < s->end ? s->cp[p] : OOR; }
static int S_fl(const struct seg *s, size_t p) { return p >= s->ini && p < s->end ? s->fl[p] : 0; }
static size_t S_add(struct seg *s, size_t end)
{
    size_t len = end - s->prev;
    if (len) s->words[s->nw++] = len;
    s->prev = end;
    return len;
}
static uint32_t lower_ascii(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's|'t|'re|'ve|'m|'ll|'d (case-insensitive when ci); returns the match length or 0 */
static int contraction(const struct seg *s, size_t pos, int ci)
{
    if (S_cp(s, pos) != '\'' || pos + 1 >= s->end) return 0;
    uint32_t a = S_cp(s, pos + 1);
    if (ci) a = lower_ascii(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 < s->end) {
        uint32_t b = S_cp(s, pos + 2);
        if (ci) b = lower_ascii(b);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    return 0;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(struct seg *s)
{
    size_t pos = s->ini;
    while (pos < s->end) {
        uint32_t c = S_cp(s, pos);
        int f = S_fl(s, pos);
        int k = contraction(s, pos, 0);
        if (k) { pos += S_add(s, pos + (size_t)k); continue; }
        int f2 = c == ' ' ? S_fl(s, pos + 1) : f;
        if (f2 & U_LETTER) {
            pos += c == ' ';
            while (f2 & U_LETTER) f2 = S_fl(s, ++pos);
            S_add(s, pos);
            continue;
        }
        if (f2 & U_NUMBER) {
            pos += c == ' ';
            while (f2 & U_NUMBER) f2 = S_fl(s, ++pos);
            S_add(s, pos);
            continue;
        }
        if (!(f2 & (U_SPACE | U_LETTER | U_NUMBER)) && (f2 & U_IN)) {
            pos += c == ' ';
            while (!(f2 & (U_SPACE | U_LETTER | U_NUMBER)) && (f2 & U_IN)) f2 = S_fl(s, ++pos);
            S_add(s, pos);
            continue;
        }
        size_t nws = 0;
        while (S_fl(s, pos + nws) & U_SPACE) nws++;
        if (nws > 1 && S_cp(s, pos + nws) != OOR) { pos += nws - 1; S_add(s, pos); continue; }
        if (nws > 0) { pos += nws; S_add(s, pos); continue; }
        S_add(s, ++pos);
    }
}

/* Llama 3 (digits_max 3) and Qwen2 (digits_max 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static void split_llama3(struct seg *s, size_t digits_max)
{
    size_t pos = s->ini;
    while (pos < s->end) {
        uint32_t c = S_cp(s, pos);
        int f = S_fl(s, pos);
        int k = contraction(s, pos, 1);
        if (k) { pos += S_add(s, pos + (size_t)k); continue; }
        if (!(c == '\r' || c == '\n' || (f & U_NUMBER))) {
            if ((f & U_LETTER) || (S_fl(s, pos + 1) & U_LETTER)) {
                pos++;
                while (S_fl(s, pos) & U_LETTER) pos++;
                S_add(s, pos);
                continue;
            }
        }
        if (f & U_NUMBER) {
            size_t ini = pos;
            while (S_fl(s, pos) & U_NUMBER)
                if (++pos - ini >= digits_max) { S_add(s, pos); ini = pos; }
            S_add(s, pos);
            continue;
        }
        int f2 = c == ' ' ? S_fl(s, pos + 1) : f;
        if (!(f2 & (U_SPACE | U_LETTER | U_NUMBER)) && (f & U_IN)) {
            pos += c == ' ';
            while (!(f2 & (U_SPACE | U_LETTER | U_NUMBER)) && (f2 & U_IN)) f2 = S_fl(s, ++pos);
            uint32_t c2 = S_cp(s, pos);
            while (c2 == '\r' || c2 == '\n') c2 = S_cp(s, ++pos);
            S_add(s, pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (S_fl(s, pos + nws) & U_SPACE) {
            uint32_t c2 = S_cp(s, pos + nws);
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) { pos = last_rn; S_add(s, pos); continue; }
        if (nws > 1 && S_cp(s, pos + nws) != OOR) { pos += nws - 1; S_add(s, pos); continue; }
        if (nws > 0) { pos += nws; S_add(s, pos); continue; }
        S_add(s, ++pos);
    }
}

/* words of cp[0..n) into words[] (capacity n); returns their count */
static size_t pre_split(enum tok_pre pre, const uint32_t *cp, const int *fl, size_t n, size_t *words)
{
    struct seg s = { cp, fl, 0, n, 0, words, 0 };
    switch (pre) {
    case TOK_PRE_GPT2: split_gpt2(&s); break;
    case TOK_PRE_QWEN2: split_llama3(&s, 1); break;
    case TOK_PRE_LLAMA3: split_llama3(&s, 3); break;
    case TOK_PRE_SMOLLM:
        /* two regexes in turn ("\p{N}", then GPT-2's): every number code
         * point becomes a piece of its own, and GPT-2's matcher runs on
         * each piece separately (unicode_regex_split applies them in order) */
        for (size_t i = 0; i < n;) {
            size_t j = i;
            if (fl[i] & U_NUMBER) j = i + 1;
            else while (j < n && !(fl[j] & U_NUMBER)) j++;
            s.ini = s.prev = i;
            s.end = j;
            split_gpt2(&s);
            i = j;
        }
        break;
    }
    return s.nw;
}

/* ---- BPE over one byte-encoded word */

struct sym { uint32_t off, n; int32_t prev, next; };
struct bigram { int32_t rank, left, right; uint32_t ln, rn; };

struct heap { struct bigram *v; size_t n, cap; };

static int bg_less(const struct bigram *a, const struct bigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static int heap_push(struct heap *h, struct bigram b)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        struct bigram *v = realloc(h->v, nc * sizeof *v);
        if (!v) return iso_fail(ISO_EINTERNAL, "out of memory");
        h->v = v;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bg_less(&b, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return 0;
}

static struct bigram heap_pop(struct heap *h)
{
    struct bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bg_less(&h->v[c + 1], &h->v[c])) c++;
        if (!bg_less(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

struct bpe_work {
    struct sym *sym; size_t sym_cap;
    struct heap heap;
    struct tok_str key;
};

static int add_bigram(const struct tokenizer *t, struct bpe_work *w, const char *word, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return 0;
    const struct sym *a = &w->sym[l], *b = &w->sym[r];
    w->key.n = 0;
    int rc;
    if ((rc = tok_str_append(&w->key, word + a->off, a->n)) || (rc = tok_str_append(&w->key, " ", 1)) ||
        (rc = tok_str_append(&w->key, word + b->off, b->n)))
        return rc;
    int32_t rank = strmap_get(&t->ranks, w->key.s, w->key.n);
    if (rank < 0) return 0;
    struct bigram bg = { rank, l, r, a->n, b->n };
    return heap_push(&w->heap, bg);
}

static int emit_symbol(const struct tokenizer *t, const char *s, size_t n, struct tok_ids *out)
{
    int32_t id = strmap_get(&t->vocab, s, n);
    if (id >= 0) return tok_ids_push(out, id);
    /* not in the vocabulary: one token per byte when the byte has one */
    for (size_t i = 0; i < n; i++) {
        int32_t b = strmap_get(&t->vocab, s + i, 1);
        if (b >= 0) {
            int rc = tok_ids_push(out, b);
            if (rc) return rc;
        }
    }
    return 0;
}

static int bpe_word(const struct tokenizer *t, struct bpe_work *w, const char *word, size_t n, struct tok_ids *out)
{
    int rc = 0;
    if (t->ignore_merges && strmap_get(&t->vocab, word, n) >= 0) return emit_symbol(t, word, n, out);
    size_t ns = 0;
    if (n > w->sym_cap) {
        struct sym *v = realloc(w->sym, n * sizeof *v);
        if (!v) return iso_fail(ISO_EINTERNAL, "out of memory");
        w->sym = v;
        w->sym_cap = n;
    }
    /* one symbol per UTF-8 character (the lead byte says how long, as unicode_len_utf8) */
    for (size_t off = 0; off < n;) {
        static const uint8_t lk[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
        size_t cl = lk[(uint8_t)word[off] >> 4];
        if (cl > n - off) cl = n - off;
        w->sym[ns].off = (uint32_t)off;
        w->sym[ns].n = (uint32_t)cl;
        w->sym[ns].prev = (int32_t)ns - 1;
        off += cl;
        w->sym[ns].next = off == n ? -1 : (int32_t)ns + 1;
        ns++;
    }
    w->heap.n = 0;
    for (size_t i = 1; i < ns; i++)
        if ((rc = add_bigram(t, w, word, (int32_t)i - 1, (int32_t)i))) return rc;
    while (w->heap.n) {
        struct bigram bg = heap_pop(&w->heap);
        struct sym *a = &w->sym[bg.left], *b = &w->sym[bg.right];
        /* stale: a side has grown or been merged away since this pair was queued */
        if (a->n != bg.ln || b->n != bg.rn || a->next != bg.right) continue;
        a->n += b->n;
        b->n = 0;
        a->next = b->next;
        if (b->next >= 0) w->sym[b->next].prev = bg.left;
        if ((rc = add_bigram(t, w, word, a->prev, bg.left))) return rc;
        if ((rc = add_bigram(t, w, word, bg.left, a->next))) return rc;
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = w->sym[i].next)
        if (w->sym[i].n && (rc = emit_symbol(t, word + w->sym[i].off, w->sym[i].n, out))) return rc;
    return 0;
}

/* pre-tokenize and BPE one piece of text without special tokens */
static int encode_raw(const struct tokenizer *t, const char *text, size_t len, struct tok_ids *out)
{
    int rc = 0;
    uint32_t *cp = NULL;
    int *fl = NULL;
    size_t *words = NULL;
    struct tok_str word = { 0 };
    struct bpe_work w;
    memset(&w, 0, sizeof w);
    if (len == 0) return 0;
    cp = malloc(len * sizeof *cp);
    fl = malloc(len * sizeof *fl);
    words = malloc(len * sizeof *words);
    if (!cp || !fl || !words) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    size_t n = utf8_decode((const uint8_t *)text, len, cp);
    for (size_t i = 0; i < n; i++) fl[i] = uni_flags(cp[i]);
    size_t nw = pre_split(t->pre, cp, fl, n, words);
    size_t at = 0;
    for (size_t k = 0; k < nw; k++) {
        word.n = 0;
        for (size_t i = at; i < at + words[k]; i++) {
            char u[4];
            size_t ul = utf8_encode(cp[i], u);
            for (size_t j = 0; j < ul; j++) {
                const char *e = t->byte_enc[(uint8_t)u[j]];
                if ((rc = tok_str_append(&word, e, strlen(e)))) goto done;
            }
        }
        at += words[k];
        if ((rc = bpe_word(t, &w, word.s, word.n, out))) goto done;
    }
done:
    free(cp); free(fl); free(words);
    free(w.sym); free(w.heap.v);
    tok_str_free(&w.key);
    tok_str_free(&word);
    return rc;
}

/* a piece of the input: raw text (id -1) or a special token */
struct frag { size_t off, len; int32_t id; };

int tok_encode(const struct tokenizer *t, const char *text, size_t len, int flags, struct tok_ids *out)
{
    int rc = 0;
    struct frag *fr = NULL, *nf = NULL;
    size_t nfr = 0, cap = 0;
    if ((flags & TOK_ADD_BOS) && t->add_bos && (rc = tok_ids_push(out, t->bos))) return rc;
    if (len == 0) return 0;
    cap = 16;
    fr = malloc(cap * sizeof *fr);
    if (!fr) return iso_fail(ISO_EINTERNAL, "out of memory");
    fr[nfr++] = (struct frag){ 0, len, -1 };
    /* llama-vocab.cpp tokenizer_st_partition: each special token in turn,
     * longest first, is cut out of every raw fragment left so far */
    for (int32_t si = 0; (flags & TOK_PARSE_SPECIAL) && si < t->n_special; si++) {
        int32_t id = t->special[si];
        const char *st = t->text[id];
        size_t sl = t->len[id];
        size_t nn = 0, ncap = nfr + 8;
        int found = 0;
        for (size_t i = 0; i < nfr && !found; i++)
            if (fr[i].id < 0 && fr[i].len >= sl && memmem(text + fr[i].off, fr[i].len, st, sl)) found = 1;
        if (!found) continue;
        for (size_t i = 0; i < nfr; i++) {
            size_t off = fr[i].off, rem = fr[i].len;
            for (;;) {
                const char *m = fr[i].id < 0 && rem >= sl ? memmem(text + off, rem, st, sl) : NULL;
                if (nn + 3 > ncap || !nf) {
                    ncap = ncap * 2 + 8;
                    struct frag *v = realloc(nf, ncap * sizeof *v);
                    if (!v) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
                    nf = v;
                }
                if (!m) {
                    if (fr[i].id >= 0) nf[nn++] = fr[i];
                    else if (rem) nf[nn++] = (struct frag){ off, rem, -1 };
                    break;
                }
                size_t at = (size_t)(m - text);
                if (at > off) nf[nn++] = (struct frag){ off, at - off, -1 };
                nf[nn++] = (struct frag){ at, sl, id };
                rem -= at - off + sl;
                off = at + sl;
            }
        }
        free(fr);
        fr = nf;
        nfr = nn;
        nf = NULL;
    }
    for (size_t i = 0; i < nfr; i++) {
        if (fr[i].id >= 0) rc = tok_ids_push(out, fr[i].id);
        else rc = encode_raw(t, text + fr[i].off, fr[i].len, out);
        if (rc) goto done;
    }
done:
    free(fr);
    free(nf);
    return rc;
}

int tok_decode(const struct tokenizer *t, int32_t id, int special, struct tok_str *out)
{
    if (id < 0 || id >= t->n) return iso_fail(ISO_EDATA, "token id %d out of range [0, %d)", id, t->n);
    switch (t->type[id]) {
    case TOK_TYPE_CONTROL:
    case TOK_TYPE_UNKNOWN:
        return special ? tok_str_append(out, t->text[id], t->len[id]) : 0;
    case TOK_TYPE_USER_DEFINED:
        return tok_str_append(out, t->text[id], t->len[id]);
    case TOK_TYPE_NORMAL: {
        /* llama_decode_text: each code point of the token stands for one byte */
        uint32_t cp[256];
        const uint8_t *s = (const uint8_t *)t->text[id];
        size_t done = 0;
        while (done < t->len[id]) {
            size_t chunk = t->len[id] - done;
            /* decode whole characters only: stop a chunk before a lead byte */
            if (chunk > 256) {
                chunk = 256;
                while (chunk > 1 && (s[done + chunk] & 0xc0) == 0x80) chunk--;
            }
            size_t n = utf8_decode(s + done, chunk, cp);
            for (size_t i = 0; i < n; i++) {
                int rc;
                if (cp[i] < 324 && t->byte_dec[cp[i]] >= 0) {
                    char b = (char)t->byte_dec[cp[i]];
                    rc = tok_str_append(out, &b, 1);
                } else {
                    char u[4];
                    rc = tok_str_append(out, u, utf8_encode(cp[i], u));
                }
                if (rc) return rc;
            }
            done += chunk;
        }
        return 0;
    }
    default:
        return 0;   /* unused, byte, undefined: nothing (llama.cpp suppresses them like control tokens) */
    }
}

int tok_n_vocab(const struct tokenizer *t) { return t->n; }
int32_t tok_bos(const struct tokenizer *t) { return t->bos; }
int32_t tok_eos(const struct tokenizer *t) { return t->eos; }
enum tok_pre tok_pre_type(const struct tokenizer *t) { return t->pre; }
const char *tok_pre_name(const struct tokenizer *t) { return pre_names[t->pre]; }
int tok_is_eog(const struct tokenizer *t, int32_t id) { return id >= 0 && id < t->n && t->eog[id]; }

int32_t tok_find(const struct tokenizer *t, const char *text)
{
    return strmap_get(&t->vocab, text, strlen(text));
}

const char *tok_text(const struct tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n) return NULL;
    if (len) *len = t->len[id];
    return t->text[id];
}

enum tok_type tok_token_type(const struct tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n ? (enum tok_type)t->type[id] : TOK_TYPE_UNDEFINED;
}
