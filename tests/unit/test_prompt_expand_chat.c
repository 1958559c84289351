/* test_prompt_expand_chat.c — chat template detection and rendering,
 * checked against the formats as llama.cpp's llama-chat.cpp writes them
 * (the real SmolLM2 template is compared with llama.cpp itself in
 * test_prompt_expand_tokenizer). */
#include "test.h"

#include <stdint.h>

#include "chat.h"
#include "err.h"
#include "tokenizer.h"

static struct tokenizer *vocab(const char *const *toks, size_t n)
{
    uint32_t lens[64];
    int32_t types[64];
    for (size_t i = 0; i < n; i++) {
        lens[i] = (uint32_t)strlen(toks[i]);
        types[i] = toks[i][0] == '<' && toks[i][1] == '|' ? 3 : 1;
    }
    struct tok_desc d = { n, toks, lens, types, 0, NULL, NULL, "llama-bpe", 0, -1, -1, 1 };
    struct tokenizer *t = NULL;
    return tok_build(&d, &t) == 0 ? t : NULL;
}

int main(void)
{
    const struct chat_msg m[2] = { { "system", "Be brief." }, { "user", "  Hi there \n" } };
    struct tok_str s = { 0 };
    enum chat_fmt f;

    TEST("detect");
    const char *why = "unset";
    CHECK(chat_detect("{% for m in messages %}<|im_start|>{{ m.role }}...", NULL, &f, &why) == 0 && f == CHAT_CHATML && !why);
    CHECK(chat_detect("{{ '<|start_header_id|>' + m.role + '<|end_header_id|>\\n\\n' }}", NULL, &f, &why) == 0 &&
          f == CHAT_LLAMA3 && !why);
    /* a template we cannot render: the default (ChatML), and the reason */
    CHECK(chat_detect("[INST] {{ m.content }} [/INST]", NULL, &f, &why) == 0 && f == CHAT_CHATML && why &&
          strstr(why, "neither ChatML nor Llama 3"));
    /* Phi-4 uses <|im_start|> with <|im_sep|>: not ChatML */
    why = NULL;
    CHECK(chat_detect("<|im_start|>{{role}}<|im_sep|>", NULL, &f, &why) == 0 && f == CHAT_CHATML && why);
    static const char *const l3[] = { "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                                      "a", "b" };
    struct tokenizer *t = vocab(l3, 6);
    CHECK(t != NULL);
    if (!t) return test_report();
    CHECK(chat_detect(NULL, t, &f, &why) == 0 && f == CHAT_LLAMA3 && !why);
    /* an unknown template on a vocabulary with only Llama 3's markers: Llama 3, said so */
    CHECK(chat_detect("[INST]", t, &f, &why) == 0 && f == CHAT_LLAMA3 && why);
    static const char *const plain[] = { "<s>", "</s>", "a", "b" };
    struct tokenizer *tp = vocab(plain, 4);
    CHECK(tp && chat_detect(NULL, tp, &f, &why) == 0 && f == CHAT_CHATML && why && strstr(why, "no chat template"));

    TEST("render");
    CHECK(chat_render(CHAT_CHATML, m, 2, 1, &s) == 0);
    CHECK_STR(s.s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n  Hi there \n<|im_end|>\n"
                   "<|im_start|>assistant\n");
    s.n = 0;
    CHECK(chat_render(CHAT_CHATML, m, 1, 0, &s) == 0);
    CHECK_STR(s.s, "<|im_start|>system\nBe brief.<|im_end|>\n");
    s.n = 0;
    /* Llama 3: content trimmed, no newline after <|eot_id|>, BOS comes from the tokenizer */
    CHECK(chat_render(CHAT_LLAMA3, m, 2, 1, &s) == 0);
    CHECK_STR(s.s, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                   "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n");

    TEST("encode");
    /* a vocabulary with only the markers and "a", "b": the text "a" and "b" map to ids 4 and 5,
     * everything else (role names, newlines) has no token and vanishes */
    const struct chat_msg ab[1] = { { "a", "b" } };
    struct tok_ids ids = { 0 };
    CHECK(chat_encode(CHAT_LLAMA3, t, ab, 1, 0, &ids) == 0);
    const int32_t want[] = { 0, 1, 4, 2, 5, 3 };   /* BOS, <|start_header_id|>, a, <|end_header_id|>, b, <|eot_id|> */
    CHECKF(ids.n == 6 && !memcmp(ids.v, want, sizeof want), "%zu ids", ids.n);
    ids.n = 0;
    /* ChatML on a vocabulary without its markers (the default template taken
     * for such a model): the markers are plain text, which this vocabulary
     * spells only as the "a" of "<|im_start|>": BOS, that "a", the role "a", "b" */
    CHECK(chat_encode(CHAT_CHATML, t, ab, 1, 0, &ids) == 0);
    const int32_t want2[] = { 0, 4, 4, 5 };
    CHECKF(ids.n == 4 && !memcmp(ids.v, want2, sizeof want2), "%zu ids", ids.n);
    tok_free(&tp);
    tok_ids_free(&ids);
    tok_str_free(&s);
    tok_free(&t);
    return test_report();
}
