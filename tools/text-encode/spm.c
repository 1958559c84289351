/* spm.c — SentencePiece unigram tokenizer (spm.h): a ModelProto reader,
 * the precompiled charsmap (a darts-clone double-array trie), both
 * libraries' normalisation, a tokenizer.json reader and the Viterbi
 * segmentation. */
#include "spm.h"

#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "gguf.h"
#include "grapheme_tab.h"

#define SPM_MAX_FILE (UINT64_C(256) << 20)
#define SPM_UNK_PENALTY 10.0f   /* sentencepiece kUnkPenalty, tokenizers K_UNK_PENALTY */
static const char SPACE_SYM[] = "\xe2\x96\x81";   /* U+2581, SentencePiece's whitespace */

/* SentencePiece piece types (sentencepiece_model.proto) */
enum { PT_NORMAL = 1, PT_UNKNOWN = 2, PT_CONTROL = 3, PT_USER = 4, PT_UNUSED = 5, PT_BYTE = 6 };

struct piece {
    char *s;
    uint32_t len;
    float score;             /* spiece.model scores are float */
    double dscore;           /* tokenizer.json scores are f64 */
    uint8_t type;
};

/* precompiled charsmap: <u32 trie bytes><darts-clone units><NUL-terminated replacements> */
struct cmap {
    uint32_t *units;
    size_t n_units;
    char *pool;
    size_t pool_len;
};

enum norm_kind { NORM_PRECOMPILED, NORM_STRIP, NORM_REPLACE };
/* one alternative of a Replace regex: [\A] char{min,max} [\z] (max 0 = unbounded) */
struct ralt { int anchor_start, anchor_end; char ch[5]; int chlen; unsigned min, max; };
struct norm {
    enum norm_kind kind;
    struct cmap cm;
    int left, right;
    char *pattern;           /* Replace with a String pattern */
    struct ralt *alts;       /* Replace with a Regex pattern */
    int n_alts;
    char *content;
};

enum { PRE_WSPLIT, PRE_METASPACE };
enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };
struct pretok { int kind; char repl[8]; int prepend; int split; };

struct added { char *s; size_t len; int id, lstrip, rstrip, normalized; };

struct spm {
    enum spm_format fmt;
    int from_gguf;           /* SPM_FMT_MODEL read from GGUF metadata */
    struct piece *p;
    int n;                   /* pieces (ids 0..n-1) */
    uint32_t *hash;          /* open addressing: id + 1, 0 empty */
    uint32_t hmask;
    uint32_t max_len;        /* longest piece in bytes */
    int unk_id, eos_id, byte_fallback;
    int byte_id[256];        /* id of <0xNN>, -1 absent */
    float min_score, max_score;     /* spiece.model: over NORMAL pieces */
    int *user;               /* ids of USER_DEFINED pieces (spiece.model) */
    int n_user;
    double dmin_score;              /* tokenizer.json: over every piece */
    /* spiece.model normalizer */
    struct cmap cm;
    int add_dummy_prefix, remove_extra_ws, escape_ws, ws_suffix;
    /* tokenizer.json */
    struct norm *norms;
    int n_norms;
    struct pretok *pre;
    int n_pre;
    struct added *added;
    int n_added;
    int32_t pre_ids[8], post_ids[8];
    int n_pre_ids, n_post_ids;
};

/* ---- growable byte and id buffers */

struct buf { char *s; size_t n, cap; };

static int buf_put(struct buf *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) return iso_fail(ISO_EINTERNAL, "out of memory");
        b->s = s;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

struct idv { int32_t *v; size_t n, cap; };

static int idv_push(struct idv *v, int32_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->v, cap * sizeof *p);
        if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = id;
    return 0;
}

/* ---- UTF-8 */

/* length of a valid UTF-8 sequence at s (n bytes available) and its code
 * point, or 0 when invalid (overlong, surrogate, beyond U+10FFFF, cut) —
 * sentencepiece's IsValidDecodeUTF8 */
static size_t utf8_dec(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) { *cp = c; return 1; }
    if (c < 0xc2) return 0;
    if (c < 0xe0) { len = 2; v = c & 0x1f; min = 0x80; }
    else if (c < 0xf0) { len = 3; v = c & 0x0f; min = 0x800; }
    else if (c < 0xf5) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return len;
}

/* sentencepiece's OneCharLen: from the lead byte alone */
static size_t one_char_len(unsigned char c)
{
    static const unsigned char t[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return t[c >> 4];
}

/* Rust's char::is_whitespace (White_Space, PropList.txt) */
static int is_ws(uint32_t c)
{
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

/* ---- grapheme clusters (UAX #29 extended, rules GB3..GB999) */

enum gcb { G_OTHER, G_CR, G_LF, G_CONTROL, G_EXTEND, G_ZWJ, G_RI, G_PREPEND, G_SPACING, G_L, G_V, G_T,
           G_LV, G_LVT, G_EXTPICT };

static enum gcb gcb_of(uint32_t c)
{
    size_t lo = 0, hi = GCB_NRANGES;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if ((gcb_ranges[mid] >> 8) <= c) lo = mid;
        else hi = mid;
    }
    return (enum gcb)(gcb_ranges[lo] & 0xff);
}

size_t spm_grapheme_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t c;
    size_t i = utf8_dec(s, n, &c);
    if (!i) return 1;
    enum gcb prev = gcb_of(c);
    int ri_run = prev == G_RI;           /* regional indicators in the current run */
    int pict = prev == G_EXTPICT;        /* ExtPict Extend* seen (for GB11) */
    int pict_zwj = 0;                    /* ... followed by ZWJ */
    while (i < n) {
        size_t l = utf8_dec(s + i, n - i, &c);
        if (!l) break;
        enum gcb cur = gcb_of(c);
        int join;
        if (prev == G_CR && cur == G_LF) join = 1;                                      /* GB3 */
        else if (prev == G_CR || prev == G_LF || prev == G_CONTROL) join = 0;           /* GB4 */
        else if (cur == G_CR || cur == G_LF || cur == G_CONTROL) join = 0;              /* GB5 */
        else if (prev == G_L && (cur == G_L || cur == G_V || cur == G_LV || cur == G_LVT)) join = 1; /* GB6 */
        else if ((prev == G_LV || prev == G_V) && (cur == G_V || cur == G_T)) join = 1; /* GB7 */
        else if ((prev == G_LVT || prev == G_T) && cur == G_T) join = 1;                /* GB8 */
        else if (cur == G_EXTEND || cur == G_ZWJ) join = 1;                             /* GB9 */
        else if (cur == G_SPACING) join = 1;                                            /* GB9a */
        else if (prev == G_PREPEND) join = 1;                                           /* GB9b */
        else if (pict_zwj && cur == G_EXTPICT) join = 1;                                /* GB11 */
        else if (prev == G_RI && cur == G_RI && ri_run % 2 == 1) join = 1;              /* GB12/13 */
        else join = 0;                                                                  /* GB999 */
        if (!join) break;
        /* state for GB11 and GB12/13 */
        if (cur == G_EXTPICT) { pict = 1; pict_zwj = 0; }
        else if (cur == G_EXTEND) pict_zwj = 0;
        else if (cur == G_ZWJ) { pict_zwj = pict; pict = 0; }
        else { pict = 0; pict_zwj = 0; }
        ri_run = cur == G_RI ? ri_run + 1 : 0;
        prev = cur;
        i += l;
    }
    return i;
}

/* ---- precompiled charsmap */

static int cmap_load(struct cmap *m, const unsigned char *d, size_t n, const char *name)
{
    memset(m, 0, sizeof *m);
    if (n == 0) return 0;        /* no charsmap: identity */
    if (n <= 4) return iso_fail(ISO_EDATA, "'%s': precompiled charsmap of %zu bytes", name, n);
    uint32_t tsz = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
    if (tsz >= n - 4 || tsz % 4 || tsz == 0)
        return iso_fail(ISO_EDATA, "'%s': precompiled charsmap: trie of %u bytes in a blob of %zu", name, tsz, n);
    m->n_units = tsz / 4;
    m->pool_len = n - 4 - tsz;
    m->units = malloc(tsz);
    m->pool = malloc(m->pool_len);
    if (!m->units || !m->pool) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (size_t i = 0; i < m->n_units; i++) {
        const unsigned char *u = d + 4 + 4 * i;
        m->units[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    }
    memcpy(m->pool, d + 4 + tsz, m->pool_len);
    if (m->pool[m->pool_len - 1] != 0)
        return iso_fail(ISO_EDATA, "'%s': precompiled charsmap: replacement strings not terminated", name);
    return 0;
}

static void cmap_free(struct cmap *m)
{
    free(m->units);
    free(m->pool);
    memset(m, 0, sizeof *m);
}

/* darts-clone unit fields */
#define DA_HAS_LEAF(u) (((u) >> 8) & 1)
#define DA_VALUE(u) ((u) & 0x7fffffffu)
#define DA_LABEL(u) ((u) & 0x800000ffu)
#define DA_OFFSET(u) (((u) >> 10) << (((u) & (1u << 9)) >> 6))

/* Darts::DoubleArray::commonPrefixSearch: the matches of prefixes of s, in
 * order of length. Fills at most max; returns the count found (capped), or
 * -1 for a trie or value that points outside the blob. */
static int cmap_prefixes(const struct cmap *m, const unsigned char *s, size_t n, size_t *len, const char **rep,
                         int max)
{
    if (!m->units) return 0;
    size_t pos = 0;
    uint32_t u = m->units[0];
    pos ^= DA_OFFSET(u);
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        pos ^= s[i];
        if (pos >= m->n_units) return 0;
        u = m->units[pos];
        if (DA_LABEL(u) != s[i]) return k;
        pos ^= DA_OFFSET(u);
        if (DA_HAS_LEAF(u)) {
            if (pos >= m->n_units) return -1;
            uint32_t v = DA_VALUE(m->units[pos]);
            if (v >= m->pool_len) return -1;
            if (k < max) { len[k] = i + 1; rep[k] = m->pool + v; k++; }
        }
    }
    return k;
}

/* ---- piece table */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}

/* id of the piece spelled s[0..n), -1 if none */
static int piece_find(const struct spm *m, const char *s, size_t n)
{
    if (!m->hash || n > m->max_len) return -1;
    for (uint32_t h = hash_bytes(s, n) & m->hmask;; h = (h + 1) & m->hmask) {
        uint32_t e = m->hash[h];
        if (!e) return -1;
        const struct piece *p = &m->p[e - 1];
        if (p->len == n && memcmp(p->s, s, n) == 0) return (int)(e - 1);
    }
}

/* Index every piece. spiece.model: a duplicate is an error (sentencepiece
 * refuses the model); tokenizer.json: the later id wins (its HashMap). */
static int build_hash(struct spm *m, const char *name)
{
    uint32_t cap = 16;
    while (cap < (uint32_t)m->n * 2u) cap *= 2;
    m->hash = calloc(cap, sizeof *m->hash);
    if (!m->hash) return iso_fail(ISO_EINTERNAL, "out of memory");
    m->hmask = cap - 1;
    m->max_len = 0;
    for (int i = 0; i < m->n; i++) {
        struct piece *p = &m->p[i];
        if (p->len > m->max_len) m->max_len = p->len;
        uint32_t h = hash_bytes(p->s, p->len) & m->hmask;
        for (;; h = (h + 1) & m->hmask) {
            uint32_t e = m->hash[h];
            if (!e) { m->hash[h] = (uint32_t)i + 1; break; }
            const struct piece *q = &m->p[e - 1];
            if (q->len == p->len && memcmp(q->s, p->s, p->len) == 0) {
                if (m->fmt == SPM_FMT_MODEL)
                    return iso_fail(ISO_EDATA, "'%s': piece %d duplicates piece %u", name, i, e - 1);
                m->hash[h] = (uint32_t)i + 1;
                break;
            }
        }
    }
    for (int b = 0; b < 256; b++) {
        char nm[8];
        snprintf(nm, sizeof nm, "<0x%02X>", b);
        m->byte_id[b] = piece_find(m, nm, 6);
        if (m->fmt == SPM_FMT_MODEL && m->byte_id[b] >= 0 && m->p[m->byte_id[b]].type != PT_BYTE) m->byte_id[b] = -1;
    }
    return 0;
}

/* ---- protobuf (the subset ModelProto needs) */

struct pb { const unsigned char *p, *end; };

static int pb_varint(struct pb *b, uint64_t *v)
{
    uint64_t r = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (b->p >= b->end) return -1;
        unsigned c = *b->p++;
        r |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) { *v = r; return 0; }
    }
    return -1;
}

/* next field: number, wire type, and its varint or (ptr, len) */
static int pb_field(struct pb *b, uint32_t *num, int *wt, uint64_t *v, const unsigned char **ptr, size_t *len)
{
    uint64_t key;
    if (pb_varint(b, &key)) return -1;
    *num = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    if (*num == 0) return -1;
    switch (*wt) {
    case 0: return pb_varint(b, v);
    case 1: if (b->end - b->p < 8) return -1; *ptr = b->p; b->p += 8; return 0;
    case 5: if (b->end - b->p < 4) return -1; *ptr = b->p; b->p += 4; return 0;
    case 2:
        if (pb_varint(b, v) || *v > (uint64_t)(b->end - b->p)) return -1;
        *ptr = b->p;
        *len = (size_t)*v;
        b->p += *len;
        return 0;
    default: return -1;      /* groups (3, 4) are not used by ModelProto */
    }
}

/* after the pieces, scores, types and normaliser flags of a SentencePiece
 * model (spiece.model or GGUF metadata): unk, eos, user-defined symbols,
 * the piece index, byte pieces */
static int finish_model(struct spm *m, const char *name, const char *eos_piece, size_t eos_len, int64_t eos_field)
{
    int rc;
    m->unk_id = m->eos_id = -1;
    m->min_score = FLT_MAX;
    m->max_score = FLT_MIN;   /* as sentencepiece initialises it */
    for (int i = 0; i < m->n; i++) {
        const struct piece *p = &m->p[i];
        if (p->type == PT_UNKNOWN) {
            if (m->unk_id >= 0) return iso_fail(ISO_EDATA, "'%s': two <unk> pieces (%d, %d)", name, m->unk_id, i);
            m->unk_id = i;
        }
        if (p->type == PT_NORMAL) {
            if (p->score < m->min_score) m->min_score = p->score;
            if (p->score > m->max_score) m->max_score = p->score;
        }
        if (p->type == PT_CONTROL && p->len == eos_len && memcmp(p->s, eos_piece, eos_len) == 0) m->eos_id = i;
    }
    if (m->unk_id < 0) return iso_fail(ISO_EDATA, "'%s': no <unk> piece", name);
    for (int i = 0; i < m->n; i++)
        if (m->p[i].type == PT_USER) {
            int *u = realloc(m->user, (size_t)(m->n_user + 1) * sizeof *u);
            if (!u) return iso_fail(ISO_EINTERNAL, "out of memory");
            m->user = u;
            m->user[m->n_user++] = i;
        }
    if (m->eos_id < 0 && eos_field >= 0 && eos_field < m->n && m->p[eos_field].type == PT_CONTROL) m->eos_id = (int)eos_field;
    if (m->eos_id < 0) return iso_fail(ISO_EDATA, "'%s': no </s> piece", name);
    if ((rc = build_hash(m, name))) return rc;
    if (m->byte_fallback)
        for (int b = 0; b < 256; b++)
            if (m->byte_id[b] < 0) return iso_fail(ISO_EDATA, "'%s': byte_fallback without the piece <0x%02X>", name, b);
    return 0;
}

static int load_model(struct spm *m, const unsigned char *d, size_t n, const char *name)
{
    struct pb top = { d, d + n };
    size_t cap = 0;
    uint32_t num;
    int wt;
    uint64_t v;
    const unsigned char *ptr = NULL;
    size_t len = 0;
    int model_type = 1, have_trainer = 0;
    int64_t eos_field = 2;
    const char *eos_piece = "</s>";
    size_t eos_len = 4;
    m->add_dummy_prefix = m->remove_extra_ws = m->escape_ws = 1;
    const unsigned char *cm = NULL;
    size_t cm_len = 0;
    while (top.p < top.end) {
        if (pb_field(&top, &num, &wt, &v, &ptr, &len)) goto bad;
        if (num == 1 && wt == 2) {          /* repeated SentencePiece pieces */
            if ((size_t)m->n == cap) {
                cap = cap ? cap * 2 : 1024;
                if (cap > (1u << 24)) goto bad;
                struct piece *p = realloc(m->p, cap * sizeof *p);
                if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
                m->p = p;
            }
            struct piece *p = &m->p[m->n];
            memset(p, 0, sizeof *p);
            p->type = PT_NORMAL;
            struct pb sub = { ptr, ptr + len };
            const unsigned char *sp = (const unsigned char *)"";
            size_t sl = 0;
            while (sub.p < sub.end) {
                const unsigned char *q = NULL;
                size_t ql = 0;
                if (pb_field(&sub, &num, &wt, &v, &q, &ql)) goto bad;
                if (num == 1 && wt == 2) { sp = q; sl = ql; }
                else if (num == 2 && wt == 5) { uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24; memcpy(&p->score, &u, 4); }
                else if (num == 3 && wt == 0) { if (v < 1 || v > 6) goto bad; p->type = (uint8_t)v; }
            }
            if (sl == 0 || sl > 1024) goto bad;
            p->s = malloc(sl + 1);
            if (!p->s) return iso_fail(ISO_EINTERNAL, "out of memory");
            memcpy(p->s, sp, sl);
            p->s[sl] = 0;
            p->len = (uint32_t)sl;
            p->dscore = p->score;
            m->n++;
        } else if (num == 2 && wt == 2) {   /* TrainerSpec */
            have_trainer = 1;
            struct pb sub = { ptr, ptr + len };
            while (sub.p < sub.end) {
                const unsigned char *q = NULL;
                size_t ql = 0;
                if (pb_field(&sub, &num, &wt, &v, &q, &ql)) goto bad;
                if (num == 3 && wt == 0) model_type = (int)v;
                else if (num == 24 && wt == 0) m->ws_suffix = v != 0;
                else if (num == 35 && wt == 0) m->byte_fallback = v != 0;
                else if (num == 42 && wt == 0) eos_field = (int64_t)(int32_t)v;
                else if (num == 47 && wt == 2) { eos_piece = (const char *)q; eos_len = ql; }
            }
        } else if (num == 3 && wt == 2) {   /* NormalizerSpec */
            struct pb sub = { ptr, ptr + len };
            while (sub.p < sub.end) {
                const unsigned char *q = NULL;
                size_t ql = 0;
                if (pb_field(&sub, &num, &wt, &v, &q, &ql)) goto bad;
                if (num == 2 && wt == 2) { cm = q; cm_len = ql; }
                else if (num == 3 && wt == 0) m->add_dummy_prefix = v != 0;
                else if (num == 4 && wt == 0) m->remove_extra_ws = v != 0;
                else if (num == 5 && wt == 0) m->escape_ws = v != 0;
            }
        }
    }
    if (m->n == 0 || !have_trainer) goto bad;
    if (model_type != 1)
        return iso_fail(ISO_EDATA, "'%s': a SentencePiece model of type %d, not unigram (1)", name, model_type);
    int rc = cmap_load(&m->cm, cm, cm_len, name);
    if (rc) return rc;
    return finish_model(m, name, eos_piece, eos_len, eos_field);
bad:
    return iso_fail(ISO_EDATA, "'%s': not a valid SentencePiece model (malformed protobuf)", name);
}

/* ---- tokenizer.json */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static int b64_decode(const char *s, unsigned char **out, size_t *n)
{
    size_t l = strlen(s);
    unsigned char *d = malloc(l / 4 * 3 + 3);
    if (!d) return iso_fail(ISO_EINTERNAL, "out of memory");
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < l; i++) {
        if (s[i] == '=') break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) { free(d); return -1; }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) { bits -= 8; d[k++] = (unsigned char)(acc >> bits); }
    }
    *out = d;
    *n = k;
    return 0;
}

/* Replace's Regex: alternatives of [\A] C [quantifier] [\z], C one literal
 * character (possibly backslash-escaped), quantifier +, {n}, {n,}, {n,m}:
 * what the converters of transformers write. Anything else is refused. */
static int parse_regex(struct norm *nm, const char *re)
{
    size_t n_alts = 1;
    for (const char *p = re; *p; p++) if (*p == '\\' && p[1]) p++; else if (*p == '|') n_alts++;
    nm->alts = calloc(n_alts, sizeof *nm->alts);
    if (!nm->alts) return iso_fail(ISO_EINTERNAL, "out of memory");
    const char *p = re;
    for (size_t a = 0; a < n_alts; a++) {
        struct ralt *r = &nm->alts[a];
        if (p[0] == '\\' && p[1] == 'A') { r->anchor_start = 1; p += 2; }
        if (p[0] == '\\') {
            if (!p[1] || strchr("AzbBdDsSwW0123456789", p[1])) return -1;
            p++;
        } else if (!*p || strchr("|()[]{}.*+?^$", *p)) return -1;
        uint32_t cp;
        size_t l = utf8_dec((const unsigned char *)p, strlen(p), &cp);
        if (!l) return -1;
        memcpy(r->ch, p, l);
        r->chlen = (int)l;
        p += l;
        r->min = r->max = 1;
        if (*p == '+') { r->max = 0; p++; }
        else if (*p == '{') {
            char *e;
            unsigned long lo = strtoul(p + 1, &e, 10);
            if (e == p + 1 || lo < 1 || lo > 1000) return -1;
            r->min = r->max = (unsigned)lo;
            if (*e == ',') {
                if (e[1] == '}') { r->max = 0; e++; }
                else {
                    char *e2;
                    unsigned long hi = strtoul(e + 1, &e2, 10);
                    if (e2 == e + 1 || hi < lo || hi > 1000) return -1;
                    r->max = (unsigned)hi;
                    e = e2;
                }
            }
            if (*e != '}') return -1;
            p = e + 1;
        }
        if (p[0] == '\\' && p[1] == 'z') { r->anchor_end = 1; p += 2; }
        if (a + 1 < n_alts) { if (*p != '|') return -1; p++; }
        else if (*p) return -1;
    }
    nm->n_alts = (int)n_alts;
    return 0;
}

static int parse_normalizer(struct spm *m, json_t *j, const char *name)
{
    if (!j || json_is_null(j)) return 0;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return iso_fail(ISO_EDATA, "'%s': normalizer without a type", name);
    if (!strcmp(type, "Sequence")) {
        json_t *a = json_object_get(j, "normalizers"), *e;
        size_t i;
        if (!json_is_array(a)) return iso_fail(ISO_EDATA, "'%s': Sequence normalizer without a list", name);
        json_array_foreach(a, i, e) {
            int rc = parse_normalizer(m, e, name);
            if (rc) return rc;
        }
        return 0;
    }
    if (m->n_norms >= 32) return iso_fail(ISO_EDATA, "'%s': more than 32 normalizers", name);
    struct norm *nn = realloc(m->norms, (size_t)(m->n_norms + 1) * sizeof *nn);
    if (!nn) return iso_fail(ISO_EINTERNAL, "out of memory");
    m->norms = nn;
    struct norm *nm = &m->norms[m->n_norms++];
    memset(nm, 0, sizeof *nm);
    if (!strcmp(type, "Precompiled")) {
        nm->kind = NORM_PRECOMPILED;
        const char *b64 = json_string_value(json_object_get(j, "precompiled_charsmap"));
        unsigned char *d = NULL;
        size_t n = 0;
        if (!b64 || b64_decode(b64, &d, &n)) return iso_fail(ISO_EDATA, "'%s': Precompiled normalizer: bad charsmap", name);
        int rc = cmap_load(&nm->cm, d, n, name);
        free(d);
        return rc;
    }
    if (!strcmp(type, "Strip")) {
        nm->kind = NORM_STRIP;
        nm->left = json_is_true(json_object_get(j, "strip_left"));
        nm->right = json_is_true(json_object_get(j, "strip_right"));
        return 0;
    }
    if (!strcmp(type, "Replace")) {
        nm->kind = NORM_REPLACE;
        json_t *pat = json_object_get(j, "pattern");
        const char *content = json_string_value(json_object_get(j, "content"));
        const char *str = json_string_value(json_object_get(pat, "String"));
        const char *re = json_string_value(json_object_get(pat, "Regex"));
        if (!content || (!str && !re)) return iso_fail(ISO_EDATA, "'%s': Replace normalizer without pattern or content", name);
        if (!(nm->content = strdup(content))) return iso_fail(ISO_EINTERNAL, "out of memory");
        if (str) {
            if (!*str) return iso_fail(ISO_EDATA, "'%s': Replace normalizer with an empty pattern", name);
            if (!(nm->pattern = strdup(str))) return iso_fail(ISO_EINTERNAL, "out of memory");
            return 0;
        }
        if (parse_regex(nm, re)) return iso_fail(ISO_EDATA, "'%s': Replace normalizer: regex '%s' is not supported", name, re);
        return 0;
    }
    return iso_fail(ISO_EDATA, "'%s': normalizer '%s' is not supported", name, type);
}

static int parse_pretok(struct spm *m, json_t *j, const char *name)
{
    if (!j || json_is_null(j)) return 0;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return iso_fail(ISO_EDATA, "'%s': pre_tokenizer without a type", name);
    if (!strcmp(type, "Sequence")) {
        json_t *a = json_object_get(j, "pretokenizers"), *e;
        size_t i;
        if (!json_is_array(a)) return iso_fail(ISO_EDATA, "'%s': Sequence pre_tokenizer without a list", name);
        json_array_foreach(a, i, e) {
            int rc = parse_pretok(m, e, name);
            if (rc) return rc;
        }
        return 0;
    }
    if (m->n_pre >= 8) return iso_fail(ISO_EDATA, "'%s': more than 8 pre_tokenizers", name);
    struct pretok *pp = realloc(m->pre, (size_t)(m->n_pre + 1) * sizeof *pp);
    if (!pp) return iso_fail(ISO_EINTERNAL, "out of memory");
    m->pre = pp;
    struct pretok *p = &m->pre[m->n_pre++];
    memset(p, 0, sizeof *p);
    if (!strcmp(type, "WhitespaceSplit")) { p->kind = PRE_WSPLIT; return 0; }
    if (!strcmp(type, "Metaspace")) {
        p->kind = PRE_METASPACE;
        const char *r = json_string_value(json_object_get(j, "replacement"));
        uint32_t cp;
        if (!r || strlen(r) >= sizeof p->repl || utf8_dec((const unsigned char *)r, strlen(r), &cp) != strlen(r))
            return iso_fail(ISO_EDATA, "'%s': Metaspace replacement must be one character", name);
        strcpy(p->repl, r);
        const char *ps = json_string_value(json_object_get(j, "prepend_scheme"));
        json_t *aps = json_object_get(j, "add_prefix_space");
        if (ps) {
            if (!strcmp(ps, "always")) p->prepend = PREPEND_ALWAYS;
            else if (!strcmp(ps, "first")) p->prepend = PREPEND_FIRST;
            else if (!strcmp(ps, "never")) p->prepend = PREPEND_NEVER;
            else return iso_fail(ISO_EDATA, "'%s': Metaspace prepend_scheme '%s'", name, ps);
        } else p->prepend = (!aps || json_is_true(aps)) ? PREPEND_ALWAYS : PREPEND_NEVER;
        json_t *sp = json_object_get(j, "split");
        p->split = !sp || json_is_true(sp);
        return 0;
    }
    return iso_fail(ISO_EDATA, "'%s': pre_tokenizer '%s' is not supported", name, type);
}

static int parse_post(struct spm *m, json_t *j, const char *name)
{
    if (!j || json_is_null(j)) return 0;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type || strcmp(type, "TemplateProcessing"))
        return iso_fail(ISO_EDATA, "'%s': post_processor '%s' is not supported", name, type ? type : "?");
    json_t *single = json_object_get(j, "single"), *sp = json_object_get(j, "special_tokens"), *e;
    size_t i;
    int seen_a = 0;
    if (!json_is_array(single)) return iso_fail(ISO_EDATA, "'%s': TemplateProcessing without 'single'", name);
    json_array_foreach(single, i, e) {
        json_t *st = json_object_get(e, "SpecialToken");
        if (json_object_get(e, "Sequence")) { seen_a = 1; continue; }
        const char *tid = json_string_value(json_object_get(st, "id"));
        json_t *ids = json_object_get(json_object_get(sp, tid ? tid : ""), "ids"), *x;
        size_t k;
        if (!tid || !json_is_array(ids)) return iso_fail(ISO_EDATA, "'%s': template token '%s' is not defined", name, tid ? tid : "?");
        json_array_foreach(ids, k, x) {
            json_int_t id = json_integer_value(x);
            int32_t *dst = seen_a ? m->post_ids : m->pre_ids;
            int *cnt = seen_a ? &m->n_post_ids : &m->n_pre_ids;
            if (!json_is_integer(x) || id < 0 || id >= m->n || *cnt >= 8)
                return iso_fail(ISO_EDATA, "'%s': template token '%s' has a bad id", name, tid);
            dst[(*cnt)++] = (int32_t)id;
        }
    }
    return 0;
}

static int load_json(struct spm *m, const char *d, size_t n, const char *name)
{
    json_error_t err;
    json_t *root = json_loadb(d, n, 0, &err);
    int rc = 0;
    if (!root || !json_is_object(root)) {
        rc = iso_fail(ISO_EDATA, "'%s': not a tokenizer.json (line %d: %s)", name, err.line, root ? "not an object" : err.text);
        goto done;
    }
    json_t *model = json_object_get(root, "model");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!type || strcmp(type, "Unigram")) {
        rc = iso_fail(ISO_EDATA, "'%s': tokenizer model '%s' is not supported (only Unigram)", name, type ? type : "?");
        goto done;
    }
    json_t *vocab = json_object_get(model, "vocab"), *e;
    size_t i;
    if (!json_is_array(vocab) || json_array_size(vocab) == 0 || json_array_size(vocab) > (1u << 24)) {
        rc = iso_fail(ISO_EDATA, "'%s': Unigram model without a vocabulary", name);
        goto done;
    }
    m->p = calloc(json_array_size(vocab), sizeof *m->p);
    if (!m->p) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    m->dmin_score = INFINITY;
    json_array_foreach(vocab, i, e) {
        const char *s = json_string_value(json_array_get(e, 0));
        json_t *sc = json_array_get(e, 1);
        if (!s || !json_is_number(sc) || !*s) {
            rc = iso_fail(ISO_EDATA, "'%s': vocabulary entry %zu is not [piece, score]", name, i);
            goto done;
        }
        struct piece *p = &m->p[m->n];
        p->len = (uint32_t)strlen(s);
        if (!(p->s = strdup(s))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        p->dscore = json_number_value(sc);
        p->score = (float)p->dscore;
        p->type = PT_NORMAL;
        if (p->dscore < m->dmin_score) m->dmin_score = p->dscore;
        m->n++;
    }
    json_t *unk = json_object_get(model, "unk_id");
    m->unk_id = json_is_integer(unk) ? (int)json_integer_value(unk) : -1;
    if (json_is_integer(unk) && (json_integer_value(unk) < 0 || json_integer_value(unk) >= m->n)) {
        rc = iso_fail(ISO_EDATA, "'%s': unk_id %lld outside the vocabulary", name, (long long)json_integer_value(unk));
        goto done;
    }
    m->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    if ((rc = build_hash(m, name))) goto done;
    json_t *added = json_object_get(root, "added_tokens");
    if (json_is_array(added) && json_array_size(added)) {
        m->added = calloc(json_array_size(added), sizeof *m->added);
        if (!m->added) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        json_array_foreach(added, i, e) {
            const char *c = json_string_value(json_object_get(e, "content"));
            json_t *id = json_object_get(e, "id");
            if (!c || !*c || !json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= m->n) {
                rc = iso_fail(ISO_EDATA, "'%s': added token %zu: bad content or id", name, i);
                goto done;
            }
            struct added *a = &m->added[m->n_added++];
            if (!(a->s = strdup(c))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
            a->len = strlen(c);
            a->id = (int)json_integer_value(id);
            a->lstrip = json_is_true(json_object_get(e, "lstrip"));
            a->rstrip = json_is_true(json_object_get(e, "rstrip"));
            a->normalized = json_is_true(json_object_get(e, "normalized"));
        }
    }
    if ((rc = parse_normalizer(m, json_object_get(root, "normalizer"), name)) ||
        (rc = parse_pretok(m, json_object_get(root, "pre_tokenizer"), name)) ||
        (rc = parse_post(m, json_object_get(root, "post_processor"), name)))
        goto done;
    m->eos_id = m->n_post_ids ? m->post_ids[m->n_post_ids - 1] : piece_find(m, "</s>", 4);
    if (m->eos_id < 0) rc = iso_fail(ISO_EDATA, "'%s': no </s> token", name);
done:
    json_decref(root);
    return rc;
}

/* ---- loading */

int spm_load_mem(const void *data, size_t n, const char *name, struct spm **out)
{
    *out = NULL;
    const unsigned char *d = data;
    struct spm *m = calloc(1, sizeof *m);
    if (!m) return iso_fail(ISO_EINTERNAL, "out of memory");
    size_t k = 0;
    while (k < n && (d[k] == ' ' || d[k] == '\n' || d[k] == '\r' || d[k] == '\t')) k++;
    int rc;
    if (k < n && d[k] == '{') {
        m->fmt = SPM_FMT_JSON;
        rc = load_json(m, data, n, name);
    } else if (n > 2 && d[0] == 0x0a) {     /* field 1 (pieces), length-delimited */
        m->fmt = SPM_FMT_MODEL;
        rc = load_model(m, d, n, name);
    } else {
        rc = iso_fail(ISO_EDATA, "'%s': neither a SentencePiece model nor a tokenizer.json", name);
    }
    if (rc) { spm_free(&m); return rc; }
    *out = m;
    return 0;
}

int spm_load(const char *path, struct spm **out)
{
    char *d = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = fs_read_all(path, &d, &n, SPM_MAX_FILE);
    if (rc) return rc;
    rc = spm_load_mem(d, n, path, out);
    free(d);
    return rc;
}

/* ---- a GGUF's tokenizer metadata (llama.cpp's "t5" tokenizer: the pieces
 * of the spiece.model with their scores and types, its charsmap and flags);
 * run with sentencepiece's rules, as llama.cpp's UGM tokenizer imitates them */
int spm_load_gguf(const char *path, struct spm **out)
{
    struct gguf *g = NULL;
    struct spm *m = NULL;
    *out = NULL;
    int rc = gguf_open(path, &g);
    if (rc) return rc;
    struct gguf_str model;
    const struct gguf_kv *tk = gguf_find_kv(g, "tokenizer.ggml.tokens"), *sc = gguf_find_kv(g, "tokenizer.ggml.scores"),
                         *ty = gguf_find_kv(g, "tokenizer.ggml.token_type"),
                         *cm = gguf_find_kv(g, "tokenizer.ggml.precompiled_charsmap");
    if (gguf_get_str(g, "tokenizer.ggml.model", &model) || !gguf_str_eq(model, "t5")) {
        rc = iso_fail(ISO_EDATA, "'%s': no SentencePiece unigram tokenizer in the metadata (tokenizer.ggml.model is not \"t5\")", path);
        goto done;
    }
    if (!tk || !sc || tk->val.type != GGUF_T_ARRAY || sc->val.type != GGUF_T_ARRAY || tk->val.v.arr.n == 0 ||
        tk->val.v.arr.n > (1u << 24) || sc->val.v.arr.n != tk->val.v.arr.n ||
        (ty && (ty->val.type != GGUF_T_ARRAY || ty->val.v.arr.n != tk->val.v.arr.n))) {
        rc = iso_fail(ISO_EDATA, "'%s': tokenizer.ggml.tokens / scores / token_type missing or of different lengths", path);
        goto done;
    }
    if (!(m = calloc(1, sizeof *m)) || !(m->p = calloc(tk->val.v.arr.n, sizeof *m->p))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    m->fmt = SPM_FMT_MODEL;
    m->from_gguf = 1;
    for (uint64_t i = 0; i < tk->val.v.arr.n; i++) {
        struct gguf_str t;
        double f;
        int64_t type = PT_NORMAL;
        if (gguf_arr_str(&tk->val, i, &t) || gguf_arr_f64(&sc->val, i, &f) || (ty && gguf_arr_i64(&ty->val, i, &type)) ||
            t.len == 0 || t.len > 1024 || type < 1 || type > 6) {
            rc = iso_fail(ISO_EDATA, "'%s': tokenizer entry %" PRIu64 " is malformed", path, i);
            goto done;
        }
        struct piece *p = &m->p[m->n++];
        if (!(p->s = malloc(t.len + 1))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        memcpy(p->s, t.s, t.len);
        p->s[t.len] = 0;
        p->len = (uint32_t)t.len;
        p->score = (float)f;
        p->dscore = p->score;
        p->type = (uint8_t)type;
        if (type == PT_BYTE) m->byte_fallback = 1;   /* byte pieces exist only in byte-fallback models */
    }
    uint64_t v;
    m->add_dummy_prefix = gguf_get_u64(g, "tokenizer.ggml.add_space_prefix", &v) ? 1 : v != 0;
    m->remove_extra_ws = gguf_get_u64(g, "tokenizer.ggml.remove_extra_whitespaces", &v) ? 1 : v != 0;
    m->escape_ws = 1;
    if (cm) {
        if (cm->val.type != GGUF_T_ARRAY || (cm->val.v.arr.type != GGUF_T_UINT8 && cm->val.v.arr.type != GGUF_T_INT8)) {
            rc = iso_fail(ISO_EDATA, "'%s': tokenizer.ggml.precompiled_charsmap is not a byte array", path);
            goto done;
        }
        if ((rc = cmap_load(&m->cm, cm->val.v.arr.data, (size_t)cm->val.v.arr.n, path))) goto done;
    }
    int64_t eos = gguf_get_u64(g, "tokenizer.ggml.eos_token_id", &v) ? -1 : (int64_t)v;
    rc = finish_model(m, path, "</s>", 4, eos);
done:
    gguf_close(&g);
    if (rc) spm_free(&m);
    *out = m;
    return rc;
}

void spm_free(struct spm **sp)
{
    struct spm *m = *sp;
    if (!m) return;
    for (int i = 0; i < m->n; i++) free(m->p[i].s);
    free(m->p);
    free(m->hash);
    free(m->user);
    cmap_free(&m->cm);
    for (int i = 0; i < m->n_norms; i++) {
        cmap_free(&m->norms[i].cm);
        free(m->norms[i].pattern);
        free(m->norms[i].alts);
        free(m->norms[i].content);
    }
    free(m->norms);
    free(m->pre);
    for (int i = 0; i < m->n_added; i++) free(m->added[i].s);
    free(m->added);
    free(m);
    *sp = NULL;
}

enum spm_format spm_format(const struct spm *s) { return s->fmt; }
const char *spm_format_name(const struct spm *s)
{
    return s->fmt == SPM_FMT_JSON ? "tokenizer.json" : s->from_gguf ? "gguf" : "spiece.model";
}
int spm_n_ids(const struct spm *s) { return s->n; }
int spm_eos_id(const struct spm *s) { return s->eos_id; }
const char *spm_piece(const struct spm *s, int id) { return id >= 0 && id < s->n ? s->p[id].s : NULL; }

/* ---- Viterbi (sentencepiece's EncodeOptimized; tokenizers' encode_optimized) */

struct node { int start, id; float score; double dscore; };

/* Append the ids of the best segmentation of s[0..n) (n > 0). */
static int viterbi(const struct spm *m, const char *s, size_t n, struct idv *out)
{
    int json = m->fmt == SPM_FMT_JSON;
    struct node *b = malloc((n + 1) * sizeof *b);
    if (!b) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (size_t i = 0; i <= n; i++) { b[i].start = -1; b[i].id = -1; b[i].score = 0; b[i].dscore = 0; }
    float unk = m->min_score - SPM_UNK_PENALTY;
    double dunk = m->dmin_score - (double)SPM_UNK_PENALTY;
    size_t at = 0;
    while (at < n) {
        float till = b[at].score;
        double dtill = b[at].dscore;
        size_t mblen = one_char_len((unsigned char)s[at]);
        if (mblen > n - at) mblen = n - at;
        int single = 0;
        size_t maxl = n - at < m->max_len ? n - at : m->max_len;
        for (size_t l = 1; l <= maxl; l++) {
            int id = piece_find(m, s + at, l);
            if (id < 0) continue;
            struct node *t = &b[at + l];
            if (json) {
                double c = m->p[id].dscore + dtill;
                if (t->start < 0 || c > t->dscore) { t->dscore = c; t->start = (int)at; t->id = id; }
            } else {
                int ty = m->p[id].type;
                if (ty == PT_UNUSED) continue;
                if (ty != PT_NORMAL && ty != PT_USER) continue;   /* control, unknown, byte: not matched */
                if (ty == PT_USER) {
                    double c = (double)((float)l * m->max_score) - 0.1 + (double)till;
                    if (t->start < 0 || c > (double)t->score) { t->score = (float)c; t->start = (int)at; t->id = id; }
                } else {
                    float c = m->p[id].score + till;
                    if (t->start < 0 || c > t->score) { t->score = c; t->start = (int)at; t->id = id; }
                }
            }
            if (l == mblen) single = 1;
        }
        if (!single) {
            struct node *t = &b[at + mblen];
            if (json) {
                double c = dunk + dtill;
                if (t->start < 0 || c > t->dscore) { t->dscore = c; t->start = (int)at; t->id = m->unk_id; }
            } else {
                float c = unk + till;
                if (t->start < 0 || c > t->score) { t->score = c; t->start = (int)at; t->id = m->unk_id; }
            }
        }
        at += mblen;
    }
    /* backtrack into (start, id) pairs, then emit in order */
    size_t cnt = 0;
    for (size_t e = n; e > 0; e = (size_t)b[e].start) {
        if (b[e].start < 0) { free(b); return iso_fail(ISO_EINTERNAL, "tokenizer lattice broken"); }
        cnt++;
    }
    size_t *ends = malloc(cnt * sizeof *ends);
    if (!ends) { free(b); return iso_fail(ISO_EINTERNAL, "out of memory"); }
    size_t k = cnt;
    for (size_t e = n; e > 0; e = (size_t)b[e].start) ends[--k] = e;
    int rc = 0;
    for (size_t i = 0; i < cnt && !rc; i++) {
        size_t e = ends[i], st = (size_t)b[e].start;
        int id = b[e].id;
        if (json && m->unk_id >= 0 && id == m->unk_id) {
            /* fuse_unk: consecutive unknowns are one token */
            while (i + 1 < cnt && b[ends[i + 1]].id == m->unk_id) e = ends[++i];
            int found = piece_find(m, s + st, e - st);
            if (found >= 0) { rc = idv_push(out, found); continue; }
            int all = m->byte_fallback;
            for (size_t j = st; j < e && all; j++) all = m->byte_id[(unsigned char)s[j]] >= 0;
            if (all) {
                for (size_t j = st; j < e && !rc; j++) rc = idv_push(out, m->byte_id[(unsigned char)s[j]]);
                continue;
            }
            if (m->unk_id < 0) { rc = iso_fail(ISO_EDATA, "the tokenizer has no unk_id for an unknown piece"); break; }
            rc = idv_push(out, m->unk_id);
        } else if (!json && id == m->unk_id) {
            /* sentencepiece merges a run of unknowns into one <unk> too;
             * with byte_fallback each of its bytes becomes <0xNN> */
            while (i + 1 < cnt && b[ends[i + 1]].id == m->unk_id) e = ends[++i];
            if (m->byte_fallback)
                for (size_t j = st; j < e && !rc; j++) rc = idv_push(out, m->byte_id[(unsigned char)s[j]]);
            else
                rc = idv_push(out, id);
        } else {
            if (id < 0) { rc = iso_fail(ISO_EDATA, "the tokenizer has no unk_id for an unknown piece"); break; }
            rc = idv_push(out, id);
        }
    }
    free(ends);
    free(b);
    return rc;
}

/* ---- sentencepiece normalisation (normalizer.cc) */

/* NormalizePrefix: the replacement of the longest rule at s, or the
 * character itself, or U+FFFD for one malformed byte; *used = bytes eaten */
static int norm_prefix(const struct spm *m, const char *s, size_t n, const char **rep, size_t *rlen, size_t *used)
{
    /* user-defined symbols are kept as they are (the PrefixMatcher) */
    size_t best = 0;
    for (int k = 0; k < m->n_user; k++) {
        const struct piece *p = &m->p[m->user[k]];
        if (p->len <= n && p->len > best && memcmp(p->s, s, p->len) == 0) best = p->len;
    }
    if (best) { *rep = s; *rlen = best; *used = best; return 0; }
    size_t lens[64];
    const char *reps[64];
    int k = cmap_prefixes(&m->cm, (const unsigned char *)s, n, lens, reps, 64);
    if (k < 0) return iso_fail(ISO_EDATA, "the tokenizer's precompiled charsmap is corrupt");
    if (k > 0) {
        int j = 0;
        for (int i = 1; i < k; i++) if (lens[i] > lens[j]) j = i;
        *rep = reps[j];
        *rlen = strlen(reps[j]);
        *used = lens[j];
        return 0;
    }
    uint32_t cp;
    size_t l = utf8_dec((const unsigned char *)s, n, &cp);
    if (!l) { *rep = "\xef\xbf\xbd"; *rlen = 3; *used = 1; return 0; }
    *rep = s;
    *rlen = l;
    *used = l;
    return 0;
}

static int spm_normalize(const struct spm *m, const char *s, size_t n, struct buf *out)
{
    int rc;
    const char *rep;
    size_t rl, used;
    out->n = 0;
    if ((rc = buf_put(out, "", 0))) return rc;
    if (m->remove_extra_ws) {
        while (n) {
            if ((rc = norm_prefix(m, s, n, &rep, &rl, &used))) return rc;
            if (!(rl == 1 && rep[0] == ' ')) break;
            s += used;
            n -= used;
        }
    }
    if (!n) return 0;
    const char *ws = m->escape_ws ? SPACE_SYM : " ";
    size_t wsl = strlen(ws);
    if (!m->ws_suffix && m->add_dummy_prefix && (rc = buf_put(out, ws, wsl))) return rc;
    int prev_space = m->remove_extra_ws;
    while (n) {
        if ((rc = norm_prefix(m, s, n, &rep, &rl, &used))) return rc;
        while (prev_space && rl && rep[0] == ' ') { rep++; rl--; }
        if (rl) {
            for (size_t i = 0; i < rl; i++) {
                if (m->escape_ws && rep[i] == ' ') rc = buf_put(out, SPACE_SYM, 3);
                else rc = buf_put(out, rep + i, 1);
                if (rc) return rc;
            }
            prev_space = rep[rl - 1] == ' ';
        }
        s += used;
        n -= used;
        if (!m->remove_extra_ws) prev_space = 0;
    }
    if (m->remove_extra_ws)
        while (out->n >= wsl && memcmp(out->s + out->n - wsl, ws, wsl) == 0) out->s[out->n -= wsl] = 0;
    if (m->ws_suffix && m->add_dummy_prefix && (rc = buf_put(out, ws, wsl))) return rc;
    return 0;
}

/* ---- tokenizers' pipeline */

/* Precompiled::normalize: per grapheme cluster; a cluster under 6 bytes
 * whose prefix has a rule becomes that (first, shortest) rule's
 * replacement; otherwise each character is looked up alone */
static int norm_precompiled(const struct cmap *cm, const char *s, size_t n, struct buf *out)
{
    size_t lens[1];
    const char *reps[1];
    size_t i = 0;
    int rc;
    while (i < n) {
        size_t g = spm_grapheme_len(s + i, n - i);
        if (g < 6) {
            int k = cmap_prefixes(cm, (const unsigned char *)s + i, g, lens, reps, 1);
            if (k < 0) return iso_fail(ISO_EDATA, "the tokenizer's precompiled charsmap is corrupt");
            if (k > 0) {
                if ((rc = buf_put(out, reps[0], strlen(reps[0])))) return rc;
                i += g;
                continue;
            }
        }
        for (size_t j = i; j < i + g;) {
            uint32_t cp;
            size_t l = utf8_dec((const unsigned char *)s + j, i + g - j, &cp);
            if (!l) l = 1;
            int k = cmap_prefixes(cm, (const unsigned char *)s + j, l, lens, reps, 1);
            if (k < 0) return iso_fail(ISO_EDATA, "the tokenizer's precompiled charsmap is corrupt");
            rc = k > 0 ? buf_put(out, reps[0], strlen(reps[0])) : buf_put(out, s + j, l);
            if (rc) return rc;
            j += l;
        }
        i += g;
    }
    return 0;
}

/* length of a match of alternative r at s[i..n), 0 if none */
static size_t ralt_match(const struct ralt *r, const char *s, size_t i, size_t n)
{
    if (r->anchor_start && i != 0) return 0;
    unsigned cnt = 0;
    size_t j = i;
    while (j + (size_t)r->chlen <= n && memcmp(s + j, r->ch, (size_t)r->chlen) == 0 && (r->max == 0 || cnt < r->max)) {
        j += (size_t)r->chlen;
        cnt++;
    }
    if (cnt < r->min) return 0;
    if (r->anchor_end && j != n) return 0;
    return j - i;
}

static int apply_norm(const struct norm *nm, const char *s, size_t n, struct buf *out)
{
    int rc = 0;
    out->n = 0;
    if ((rc = buf_put(out, "", 0))) return rc;
    switch (nm->kind) {
    case NORM_PRECOMPILED:
        return nm->cm.units ? norm_precompiled(&nm->cm, s, n, out) : buf_put(out, s, n);
    case NORM_STRIP: {
        size_t a = 0, e = n;
        uint32_t cp;
        size_t l;
        while (nm->left && a < e && (l = utf8_dec((const unsigned char *)s + a, e - a, &cp)) && is_ws(cp)) a += l;
        while (nm->right && e > a) {
            size_t st = e - 1;
            while (st > a && ((unsigned char)s[st] & 0xc0) == 0x80) st--;
            if (!(l = utf8_dec((const unsigned char *)s + st, e - st, &cp)) || !is_ws(cp)) break;
            e = st;
        }
        return buf_put(out, s + a, e - a);
    }
    case NORM_REPLACE: {
        size_t pl = nm->pattern ? strlen(nm->pattern) : 0, cl = strlen(nm->content);
        for (size_t i = 0; i < n && !rc;) {
            size_t ml = 0;
            if (nm->pattern) ml = (pl <= n - i && memcmp(s + i, nm->pattern, pl) == 0) ? pl : 0;
            else
                for (int a = 0; a < nm->n_alts && !ml; a++) ml = ralt_match(&nm->alts[a], s, i, n);
            if (ml) { rc = buf_put(out, nm->content, cl); i += ml; continue; }
            size_t step = one_char_len((unsigned char)s[i]);
            if (step > n - i) step = n - i;
            rc = buf_put(out, s + i, step);
            i += step;
        }
        /* a regex anchored at the end may match the empty rest: nothing to add */
        return rc;
    }
    }
    return 0;
}

/* the added token matching at s[i..n) (longest), -1 if none; normalized
 * selects the tokens matched on normalised text */
static int added_at(const struct spm *m, const char *s, size_t i, size_t n, int normalized)
{
    int best = -1;
    for (int k = 0; k < m->n_added; k++) {
        const struct added *a = &m->added[k];
        if (a->normalized != normalized || a->len > n - i || memcmp(s + i, a->s, a->len)) continue;
        if (best < 0 || a->len > m->added[best].len) best = k;
    }
    return best;
}

static size_t ws_back(const char *s, size_t lo, size_t i)
{
    while (i > lo) {
        size_t st = i - 1;
        while (st > lo && ((unsigned char)s[st] & 0xc0) == 0x80) st--;
        uint32_t cp;
        if (!utf8_dec((const unsigned char *)s + st, i - st, &cp) || !is_ws(cp)) break;
        i = st;
    }
    return i;
}

static size_t ws_fwd(const char *s, size_t i, size_t n)
{
    uint32_t cp;
    size_t l;
    while (i < n && (l = utf8_dec((const unsigned char *)s + i, n - i, &cp)) && is_ws(cp)) i += l;
    return i;
}

/* one word after pre-tokenisation */
struct word { size_t off, len; };

/* normalise, pre-tokenise and segment one piece of text between added
 * tokens; first: it starts at offset 0 of the input */
/* pre-tokenise and segment one piece of normalised text */
static int pretok_model(const struct spm *m, const char *s, size_t n, int first, struct idv *out)
{
    struct buf a = { 0 }, b = { 0 };
    struct word *w = NULL, *w2 = NULL;
    size_t nw = 0;
    int rc = buf_put(&a, s, n);
    if (rc || a.n == 0) goto done;
    /* words: (offset, length) into a, rebuilt in b by Metaspace */
    w = malloc(sizeof *w);
    if (!w) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    w[0].off = 0;
    w[0].len = a.n;
    nw = 1;
    for (int p = 0; p < m->n_pre && !rc; p++) {
        const struct pretok *pt = &m->pre[p];
        struct buf nb = { 0 };
        size_t cap = 0, n2 = 0;
        w2 = NULL;
        if ((rc = buf_put(&nb, "", 0))) goto done;
        for (size_t k = 0; k < nw && !rc; k++) {
            const char *ws = a.s + w[k].off;
            size_t wl = w[k].len;
            size_t base = nb.n;
            /* pieces of this word: [start, end) into nb */
            size_t starts[2];
            (void)starts;
            if (pt->kind == PRE_WSPLIT) {
                size_t i = 0;
                while (i < wl && !rc) {
                    uint32_t cp;
                    size_t l = utf8_dec((const unsigned char *)ws + i, wl - i, &cp);
                    if (!l) l = 1;
                    if (l && is_ws(cp)) { i += l; continue; }
                    size_t st = i;
                    while (i < wl) {
                        l = utf8_dec((const unsigned char *)ws + i, wl - i, &cp);
                        if (!l) l = 1;
                        if (is_ws(cp)) break;
                        i += l;
                    }
                    if (n2 == cap) { cap = cap ? cap * 2 : 16; struct word *t = realloc(w2, cap * sizeof *t); if (!t) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); break; } w2 = t; }
                    w2[n2].off = nb.n;
                    w2[n2].len = i - st;
                    n2++;
                    rc = buf_put(&nb, ws + st, i - st);
                    /* a word keeps "at offset 0" only if it starts the input */
                    if (st != 0 && k == 0 && n2 == 1) first = 0;
                }
                continue;
            }
            /* Metaspace: spaces become the replacement, a prefix is
             * prepended, then split before each replacement */
            size_t rl = strlen(pt->repl);
            int at0 = first && k == 0;
            int starts_repl = 0;
            /* the word after replacement starts with repl if it starts with ' ' or repl */
            if (wl && ws[0] == ' ') starts_repl = 1;
            else if (wl >= rl && memcmp(ws, pt->repl, rl) == 0) starts_repl = 1;
            if (!starts_repl && (pt->prepend == PREPEND_ALWAYS || (pt->prepend == PREPEND_FIRST && at0)))
                rc = buf_put(&nb, pt->repl, rl);
            for (size_t i = 0; i < wl && !rc; i++) rc = ws[i] == ' ' ? buf_put(&nb, pt->repl, rl) : buf_put(&nb, ws + i, 1);
            if (rc) break;
            size_t end = nb.n, st = base;
            if (!pt->split) {
                if (end > base) {
                    if (n2 == cap) { cap = cap ? cap * 2 : 16; struct word *t = realloc(w2, cap * sizeof *t); if (!t) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); break; } w2 = t; }
                    w2[n2].off = base; w2[n2].len = end - base; n2++;
                }
                continue;
            }
            for (size_t i = base; i <= end; i++) {
                int cut = i == end || (i > st && end - i >= rl && memcmp(nb.s + i, pt->repl, rl) == 0);
                if (!cut) continue;
                if (i > st) {
                    if (n2 == cap) { cap = cap ? cap * 2 : 16; struct word *t = realloc(w2, cap * sizeof *t); if (!t) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); break; } w2 = t; }
                    w2[n2].off = st; w2[n2].len = i - st; n2++;
                }
                st = i;
            }
        }
        free(a.s);
        a = nb;
        free(w);
        w = w2;
        w2 = NULL;
        nw = n2;
    }
    for (size_t k = 0; k < nw && !rc; k++)
        if (w[k].len) rc = viterbi(m, a.s + w[k].off, w[k].len, out);
done:
    free(w);
    free(w2);
    free(a.s);
    free(b.s);
    return rc;
}

/* normalise one piece of text between added tokens, split out the added
 * tokens matched on normalised text, pre-tokenise and segment the rest;
 * first: the piece starts at offset 0 of the input */
static int json_segment(const struct spm *m, const char *s, size_t n, int first, struct idv *out)
{
    struct buf a = { 0 }, b = { 0 };
    int rc = buf_put(&a, s, n);
    for (int i = 0; i < m->n_norms && !rc; i++) {
        rc = apply_norm(&m->norms[i], a.s, a.n, &b);
        struct buf t = a; a = b; b = t;
    }
    size_t seg = 0, i = 0;
    while (!rc && i <= a.n) {
        int k = i < a.n ? added_at(m, a.s, i, a.n, 1) : -1;
        if (i < a.n && k < 0) { i += one_char_len((unsigned char)a.s[i]); if (i > a.n) i = a.n; continue; }
        size_t end = i, next = i;
        if (k >= 0) {
            const struct added *t = &m->added[k];
            if (t->lstrip) end = ws_back(a.s, seg, i);
            next = i + t->len;
            if (t->rstrip) next = ws_fwd(a.s, next, a.n);
        }
        if (end > seg) rc = pretok_model(m, a.s + seg, end - seg, first && seg == 0, out);
        if (k < 0 || rc) break;
        rc = idv_push(out, m->added[k].id);
        seg = i = next;
    }
    free(a.s);
    free(b.s);
    return rc;
}

static int json_encode(const struct spm *m, const char *s, size_t n, struct idv *out)
{
    int rc = 0;
    size_t seg = 0, i = 0;
    while (i <= n && !rc) {
        int k = i < n ? added_at(m, s, i, n, 0) : -1;
        if (i < n && k < 0) { i += one_char_len((unsigned char)s[i]); if (i > n) i = n; continue; }
        size_t end = i, next = i;
        if (k >= 0) {
            const struct added *a = &m->added[k];
            if (a->lstrip) end = ws_back(s, seg, i);
            next = i + a->len;
            if (a->rstrip) next = ws_fwd(s, next, n);
        }
        if (end > seg) rc = json_segment(m, s + seg, end - seg, seg == 0, out);
        if (k < 0) break;
        if (!rc) rc = idv_push(out, m->added[k].id);
        seg = i = next;
    }
    return rc;
}

int spm_encode(const struct spm *m, const char *text, size_t n, int max_ids, int32_t **ids, size_t *n_ids,
               int *truncated)
{
    struct idv v = { 0 };
    struct buf norm = { 0 }, clean = { 0 };
    int rc = 0;
    *ids = NULL;
    *n_ids = 0;
    if (truncated) *truncated = 0;
    if (m->fmt == SPM_FMT_MODEL) {
        if ((rc = spm_normalize(m, text, n, &norm))) goto done;
        if (norm.n) rc = viterbi(m, norm.s, norm.n, &v);
    } else {
        /* text from the command line may hold malformed UTF-8, which a
         * Python str cannot: each bad byte becomes U+FFFD first */
        for (size_t i = 0; i < n && !rc;) {
            uint32_t cp;
            size_t l = utf8_dec((const unsigned char *)text + i, n - i, &cp);
            rc = l ? buf_put(&clean, text + i, l) : buf_put(&clean, "\xef\xbf\xbd", 3);
            i += l ? l : 1;
        }
        if (!rc && (rc = buf_put(&clean, "", 0)) == 0) {
            for (int i = 0; i < m->n_pre_ids && !rc; i++) rc = idv_push(&v, m->pre_ids[i]);
            if (!rc) rc = json_encode(m, clean.s, clean.n, &v);
        }
    }
    if (rc) goto done;
    size_t n_post = m->fmt == SPM_FMT_JSON ? (size_t)m->n_post_ids : 1;
    if (max_ids > 0 && v.n + n_post > (size_t)max_ids) {
        v.n = (size_t)max_ids > n_post ? (size_t)max_ids - n_post : 0;
        if (truncated) *truncated = 1;
    }
    if (m->fmt == SPM_FMT_JSON)
        for (int i = 0; i < m->n_post_ids && !rc; i++) rc = idv_push(&v, m->post_ids[i]);
    else
        rc = idv_push(&v, m->eos_id);
    if (rc) goto done;
    *ids = v.v;
    *n_ids = v.n;
    v.v = NULL;
done:
    free(v.v);
    free(norm.s);
    free(clean.s);
    return rc;
}
