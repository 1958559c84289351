/* test_prompt_expand_tokenizer.c — the BPE tokenizer and chat templates.
 * 1. a hand-made vocabulary whose ids are worked out by hand (no model needed);
 * 2. SmolLM2's vocabulary against llama.cpp's ids for the strings of
 *    tests/fixtures/tokenizer/smollm2.txt (tests/ref/tok_llama_ids.py), and
 *    the chat template against llama_chat_apply_template; skipped when the
 *    model file is absent;
 * 3. the same for llama.cpp's vocabulary-only files of Llama 3 (llama-bpe),
 *    Qwen2, GPT-2 and StarCoder when ISOPIPE_TOKENIZER_VOCABS names a
 *    directory that holds them (skipped otherwise);
 * 4. the real Qwen2.5-Coder GGUF against transformers' ids for
 *    tests/fixtures/tokenizer/qwen2.5-coder.txt (tests/ref/tok_hf_gguf_ids.py),
 *    models/qwen2.5-0.5b.gguf or $ISOPIPE_QWEN_GGUF; skipped when absent. */
#include "test.h"

#include <stdint.h>

#include "chat.h"
#include "err.h"
#include "fs.h"
#include "gguf.h"
#include "tokenizer.h"

static int ids_eq(const struct tok_ids *a, const int32_t *b, size_t n)
{
    if (a->n != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (a->v[i] != b[i]) return 0;
    return 1;
}

static void print_ids(const char *what, const int32_t *v, size_t n)
{
    printf("    %s:", what);
    for (size_t i = 0; i < n; i++) printf(" %d", v[i]);
    printf("\n");
}

/* encode text and compare with the expected ids */
static void expect(const struct tokenizer *t, const char *text, int flags, const int32_t *want, size_t n)
{
    struct tok_ids got = { 0 };
    int rc = tok_encode(t, text, strlen(text), flags, &got);
    CHECKF(rc == 0 && ids_eq(&got, want, n), "'%s'", text);
    if (rc || !ids_eq(&got, want, n)) { print_ids("got", got.v, got.n); print_ids("want", want, n); }
    tok_ids_free(&got);
}

/* A vocabulary small enough to work out by hand. Byte-level: ' ' is 'Ġ'
 * (U+0120), '\n' is 'Ċ' (U+010A). Merge ranks: "a b" 0, "Ġ a" 1, "ab c" 2,
 * "Ġa b" 3, "b c" 4. */
static void test_hand_vocab(void)
{
    TEST("hand-made vocabulary");
    static const char *const toks[] = {
        "<s>", "</s>", "a", "b", "c", "\xc4\xa0", "ab", "\xc4\xa0" "a", "abc", "\xc4\xa0" "ab", "bc", "1", "2",
        "\xc4\x8a", "'", "s", "x", "<|sp|>",
    };
    static const int32_t types[] = { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4 };
    static const char *const merges[] = { "a b", "\xc4\xa0 a", "ab c", "\xc4\xa0" "a b", "b c" };
    size_t nt = sizeof toks / sizeof *toks, nm = sizeof merges / sizeof *merges;
    uint32_t tl[32], ml[8];
    for (size_t i = 0; i < nt; i++) tl[i] = (uint32_t)strlen(toks[i]);
    for (size_t i = 0; i < nm; i++) ml[i] = (uint32_t)strlen(merges[i]);
    struct tok_desc d = { nt, toks, tl, types, nm, merges, ml, "gpt2", 0, 1, -1, 1 };
    struct tokenizer *t = NULL;
    CHECK(tok_build(&d, &t) == 0 && t);
    if (!t) return;
    /* "abc": a b c -> (a b rank 0) ab c -> (ab c rank 2) abc */
    expect(t, "abc", 0, (const int32_t[]){ 8 }, 1);
    /* "bc" alone merges by rank 4 */
    expect(t, "bc", 0, (const int32_t[]){ 10 }, 1);
    /* " ab": Ġ a b -> "a b" (0) beats "Ġ a" (1): Ġ ab -> no "Ġ ab" merge -> [Ġ, ab] */
    expect(t, " ab", 0, (const int32_t[]){ 5, 6 }, 2);
    /* " a": Ġ a -> Ġa */
    expect(t, " a", 0, (const int32_t[]){ 7 }, 1);
    /* GPT-2 words: "ab abc" -> "ab", " abc"; " abc" = Ġ a b c -> Ġ ab c -> Ġ abc: no token "Ġabc", so
     * its symbols stay [Ġ, abc] */
    expect(t, "ab abc", 0, (const int32_t[]){ 6, 5, 8 }, 3);
    /* contraction and digits: "a's 12" -> "a" "'s" " 12" ; "'s" not a token -> bytes ' s;
     * " 12" -> Ġ 1 2 (no merges) */
    expect(t, "a's 12", 0, (const int32_t[]){ 2, 14, 15, 5, 11, 12 }, 6);
    /* whitespace: "a  b" -> "a", " " (\s+(?!\S) leaves one space for the word), " b" */
    expect(t, "a  b", 0, (const int32_t[]){ 2, 5, 5, 3 }, 4);
    /* BOS is added when asked and the model wants it */
    expect(t, "a", TOK_ADD_BOS, (const int32_t[]){ 0, 2 }, 2);
    /* control tokens only with TOK_PARSE_SPECIAL; user-defined ones too */
    expect(t, "a</s>b", TOK_PARSE_SPECIAL, (const int32_t[]){ 2, 1, 3 }, 3);
    /* without special parsing "</s>" is text: '<' '/' '>' are not in the vocabulary and vanish,
     * 's' is a token */
    expect(t, "a</s>", 0, (const int32_t[]){ 2, 15 }, 2);
    expect(t, "x<|sp|>x", TOK_PARSE_SPECIAL, (const int32_t[]){ 16, 17, 16 }, 3);
    /* decoding */
    struct tok_str s = { 0 };
    CHECK(tok_decode(t, 7, 0, &s) == 0 && s.n == 2 && memcmp(s.s, " a", 2) == 0);
    s.n = 0;
    CHECK(tok_decode(t, 1, 0, &s) == 0 && s.n == 0);
    CHECK(tok_decode(t, 1, 1, &s) == 0 && s.n == 4 && memcmp(s.s, "</s>", 4) == 0);
    CHECK(tok_decode(t, 99, 1, &s) == ISO_EDATA);
    tok_str_free(&s);
    CHECK(tok_is_eog(t, 1) && !tok_is_eog(t, 2));
    tok_free(&t);
    CHECK(t == NULL);

    /* the smollm pre-tokenizer isolates every digit first: "a12" -> "a" "1" "2" */
    d.pre = "smollm";
    CHECK(tok_build(&d, &t) == 0 && t);
    if (t) expect(t, " 12b", 0, (const int32_t[]){ 5, 11, 12, 3 }, 4);
    tok_free(&t);
    d.pre = "no-such-pre";
    CHECK(tok_build(&d, &t) == ISO_EUNAVAIL && !t);
}

static int unhex(const char *h, struct tok_str *out)
{
    out->n = 0;
    if (tok_str_append(out, "", 0)) return -1;
    for (; h[0] && h[0] != '\n'; h += 2) {
        unsigned v;
        if (!h[1] || sscanf(h, "%2x", &v) != 1) return -1;
        char c = (char)v;
        if (tok_str_append(out, &c, 1)) return -1;
    }
    return 0;
}

static int parse_ids(const char *line, struct tok_ids *out)
{
    out->n = 0;
    const char *p = line + 1;
    while (*p == ' ') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1) return -1;
        if (tok_ids_push(out, (int32_t)v)) return -1;
        p = end;
    }
    return 0;
}

/* model: the GGUF whose vocabulary is checked; fix: its fixture; pre: the
 * pre-tokenizer it must declare; chats: how many chat records to expect */
static void test_llama_fixture(const char *model, const char *fix, const char *pre, int chats, const char *hint)
{
    printf("# %s vs its reference\n", fix);
    if (!fs_exists(model)) { TEST_SKIP("'%s' is absent (%s)", model, hint); return; }
    struct gguf *g = NULL;
    struct tokenizer *t = NULL;
    char *data = NULL;
    size_t len = 0;
    CHECK(gguf_open(model, &g) == 0);
    if (!g) return;
    CHECK(tok_from_gguf(g, &t) == 0 && t);
    if (!t) goto done;
    enum chat_fmt fmt = CHAT_LLAMA3;
    if (chats) { const char *why = NULL; CHECK(chat_detect_gguf(g, t, &fmt, &why) == 0 && fmt == CHAT_CHATML && !why); }
    CHECK_STR(tok_pre_name(t), pre);
    if (!strcmp(pre, "smollm") && strstr(model, "SmolLM2")) {
        CHECK(tok_n_vocab(t) == 49152);
        CHECK(tok_find(t, "<|im_end|>") == 2 && tok_is_eog(t, 2) && tok_is_eog(t, 0));
    }
    CHECK(fs_read_all(fix, &data, &len, 1 << 24) == 0);
    if (!data) goto done;

    struct tok_str str = { 0 }, dec = { 0 }, rendered = { 0 };
    struct tok_ids want = { 0 }, got = { 0 };
    struct chat_msg msgs[8];
    struct tok_str contents[8];
    char roles[8][16];
    memset(contents, 0, sizeof contents);
    size_t nmsg = 0;
    int nstr = 0, nsame = 0, nchat = 0, nround = 0;
    for (char *line = data; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (line[0] == 'S') {
            CHECK(unhex(line + 2, &str) == 0);
            char *next = strchr(line, '\n');
            if (!next || next[1] != 'I') { CHECKF(0, "fixture: S without I"); break; }
            CHECK(parse_ids(next + 1, &want) == 0);
            got.n = 0;
            int rc = tok_encode(t, str.s, str.n, TOK_PARSE_SPECIAL, &got);
            int same = rc == 0 && ids_eq(&got, want.v, want.n);
            nstr++;
            nsame += same;
            CHECKF(same, "ids differ from llama.cpp for '%s'", str.s);
            if (!same) { print_ids("ours", got.v, got.n); print_ids("llama.cpp", want.v, want.n); }
            /* byte-level decoding gives the text back (special tokens as text) */
            dec.n = 0;
            int ok = 1;
            for (size_t i = 0; i < got.n; i++) ok &= tok_decode(t, got.v[i], 1, &dec) == 0;
            int round = ok && dec.n == str.n && (str.n == 0 || memcmp(dec.s, str.s, str.n) == 0);
            nround += round;
            CHECKF(round, "decode(encode(s)) != s for '%s'", str.s);
        } else if (line[0] == 'M' && nmsg < 8) {
            char role[16];
            const char *sp = strchr(line + 2, ' ');
            if (!sp || sp - (line + 2) >= 16) { CHECKF(0, "fixture: bad M line"); break; }
            memcpy(role, line + 2, (size_t)(sp - (line + 2)));
            role[sp - (line + 2)] = 0;
            memcpy(roles[nmsg], role, sizeof role);
            CHECK(unhex(sp + 1, &contents[nmsg]) == 0);
            msgs[nmsg].role = roles[nmsg];
            msgs[nmsg].content = contents[nmsg].s;
            nmsg++;
        } else if (line[0] == 'R') {
            CHECK(unhex(line + 2, &str) == 0);
            char *next = strchr(line, '\n');
            if (!next || next[1] != 'I') { CHECKF(0, "fixture: R without I"); break; }
            CHECK(parse_ids(next + 1, &want) == 0);
            rendered.n = 0;
            CHECK(chat_render(fmt, msgs, nmsg, 1, &rendered) == 0);
            CHECKF(rendered.n == str.n && memcmp(rendered.s, str.s, str.n) == 0, "chat text differs: '%s' vs '%s'",
                   rendered.s, str.s);
            got.n = 0;
            CHECK(chat_encode(fmt, t, msgs, nmsg, 1, &got) == 0);
            CHECKF(ids_eq(&got, want.v, want.n), "chat ids differ from llama.cpp");
            nchat++;
            nmsg = 0;
        }
    }
    printf("# %d/%d strings give the reference ids, %d round-trip, %d chats checked\n", nsame, nstr, nround, nchat);
    CHECKF(nstr >= 50, "only %d strings in the fixture", nstr);
    if (strstr(fix, "qwen2.5")) CHECKF(nstr >= 200, "only %d strings in the Qwen2.5 fixture", nstr);
    CHECK(nchat == chats);
    if (chats) {
        /* a topic that contains a control token's text stays text in chat_encode */
        struct chat_msg inj[1] = { { "user", "x<|im_end|>y" } };
        got.n = 0;
        CHECK(chat_encode(fmt, t, inj, 1, 0, &got) == 0);
        int32_t end = tok_find(t, "<|im_end|>");
        int n_end = 0;
        for (size_t i = 0; i < got.n; i++) n_end += got.v[i] == end;
        CHECKF(n_end == 1, "<|im_end|> in content became %d end tokens", n_end);
    }
    /* random text: never a crash, and valid UTF-8 always decodes back to itself */
    if (strstr(model, "SmolLM2")) {
        static const char *const bits[] = { "a", "Z", " ", "  ", "\n", "\t", "'s", "9", "\xc3\xa9", "\xe4\xb8\xad",
                                            "\xf0\x9f\x98\x80", "<|im_start|>", "<|im", "|>", ".", "\xc2\xa0", "\r\n" };
        uint64_t x = 88172645463325252ull;
        int ok = 1, crashfree = 1;
        for (int it = 0; it < 3000; it++) {
            str.n = 0;
            int len = 1 + (int)(x % 40);
            for (int k = 0; k < len; k++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;   /* xorshift64 */
                const char *b = bits[x % (sizeof bits / sizeof *bits)];
                tok_str_append(&str, b, strlen(b));
            }
            if (it % 3 == 0) { char junk = (char)(0x80 | (x >> 40 & 0x7f)); tok_str_append(&str, &junk, 1); }
            got.n = 0;
            crashfree &= tok_encode(t, str.s, str.n, TOK_PARSE_SPECIAL, &got) == 0;
            if (it % 3 == 0) continue;   /* invalid UTF-8 becomes U+FFFD, as in llama.cpp */
            dec.n = 0;
            for (size_t i = 0; i < got.n; i++) tok_decode(t, got.v[i], 1, &dec);
            ok &= dec.n == str.n && memcmp(dec.s, str.s, str.n) == 0;
        }
        CHECK(crashfree);
        CHECKF(ok, "random text does not round-trip");
    }
    tok_str_free(&str); tok_str_free(&dec); tok_str_free(&rendered);
    for (int i = 0; i < 8; i++) tok_str_free(&contents[i]);
    tok_ids_free(&want); tok_ids_free(&got);
done:
    free(data);
    tok_free(&t);
    gguf_close(&g);
}

int main(void)
{
    const char *root = getenv("ISOPIPE_ROOT");
    /* llama.cpp's vocabulary-only GGUFs (its models/ggml-vocab-*.gguf) are not
     * ours to commit; point ISOPIPE_TOKENIZER_VOCABS at a directory holding them */
    const char *vocabs = getenv("ISOPIPE_TOKENIZER_VOCABS");
    char model[1024], fix[1024];
    if (!root) root = ".";
    test_hand_vocab();
    snprintf(model, sizeof model, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", root);
    snprintf(fix, sizeof fix, "%s/tests/fixtures/tokenizer/smollm2.txt", root);
    test_llama_fixture(model, fix, "smollm", 3, "make models fetches it");
    static const char *const other[][3] = { { "llama-bpe", "llama-bpe", "0" }, { "qwen2", "qwen2", "3" },
                                            { "gpt-2", "gpt2", "0" }, { "starcoder", "smollm", "0" } };
    for (int i = 0; i < 4; i++) {
        snprintf(model, sizeof model, "%s/ggml-vocab-%s.gguf", vocabs ? vocabs : "(ISOPIPE_TOKENIZER_VOCABS unset)",
                 other[i][0]);
        snprintf(fix, sizeof fix, "%s/tests/fixtures/tokenizer/%s.txt", root, other[i][0]);
        test_llama_fixture(model, fix, other[i][1], atoi(other[i][2]),
                           "set ISOPIPE_TOKENIZER_VOCABS to a directory with llama.cpp's models/ggml-vocab-*.gguf");
    }
    /* the real Qwen2.5-Coder GGUF (make models LLM=qwen2.5-0.5b) against transformers'
     * tokenizer built from the same file (tests/ref/tok_hf_gguf_ids.py): 211 strings, 3 chats */
    const char *qwen = getenv("ISOPIPE_QWEN_GGUF");
    if (qwen && *qwen) snprintf(model, sizeof model, "%s", qwen);
    else snprintf(model, sizeof model, "%s/models/qwen2.5-0.5b.gguf", root);
    snprintf(fix, sizeof fix, "%s/tests/fixtures/tokenizer/qwen2.5-coder.txt", root);
    test_llama_fixture(model, fix, "qwen2", 3, "make models LLM=qwen2.5-0.5b fetches it; or set ISOPIPE_QWEN_GGUF");
    return test_report();
}
