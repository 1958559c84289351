/* chat.h — the chat template a model expects, chosen from its metadata
 * (tokenizer.chat_template sniffed for marker strings, as llama.cpp's
 * llm_chat_detect_template does; the vocabulary when there is no template),
 * and the conversation rendered straight to token ids: the template's
 * markers become their special-token ids and message text is tokenized
 * without special-token parsing, so a topic that contains "<|im_end|>"
 * cannot end a turn early. */
#ifndef ISOPIPE_CHAT_H
#define ISOPIPE_CHAT_H
#include <stddef.h>
#include "tokenizer.h"

struct gguf;

enum chat_fmt {
    CHAT_CHATML,    /* <|im_start|>role\ncontent<|im_end|>\n (SmolLM2, Qwen2.5) */
    CHAT_LLAMA3,    /* <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> (Llama 3) */
};

struct chat_msg { const char *role, *content; };

/* template text from the GGUF (may be NULL) and the vocabulary decide.
 * A template that is neither ChatML nor Llama 3, or no template and no
 * marker tokens, never fails: the documented default is taken (ChatML,
 * or Llama 3 when the vocabulary has Llama 3's markers and no ChatML ones,
 * as llama.cpp's server falls back to ChatML) and *fallback says why
 * (a static string; NULL when the model's own format was recognised).
 * Returns 0, or an error only for t == NULL with no usable template. */
int chat_detect(const char *tmpl, const struct tokenizer *t, enum chat_fmt *out, const char **fallback);
int chat_detect_gguf(const struct gguf *g, const struct tokenizer *t, enum chat_fmt *out, const char **fallback);
const char *chat_fmt_name(enum chat_fmt f);

/* the conversation as text (for logs and tests; what llama.cpp's
 * llama_chat_apply_template would give), appended to out */
int chat_render(enum chat_fmt f, const struct chat_msg *m, size_t n, int add_assistant, struct tok_str *out);
/* the conversation as ids (BOS first when the model adds one), appended to out;
 * a marker the vocabulary lacks (ChatML taken by default for a model
 * without <|im_start|>) is tokenized as plain text, as llama.cpp does */
int chat_encode(enum chat_fmt f, const struct tokenizer *t, const struct chat_msg *m, size_t n, int add_assistant,
                struct tok_ids *out);
#endif
