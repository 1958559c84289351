/* tokenizer.h — GPT-2 style byte-level BPE read from GGUF metadata
 * (tokenizer.ggml.model "gpt2": tokens, token_type, merges, bos/eos ids,
 * tokenizer.ggml.pre), behaving like llama.cpp's llama-vocab.cpp so that
 * the same text gives the same ids. Special tokens (control, user-defined)
 * are matched literally before BPE when asked; the pre-tokenizer regex is
 * the one the model declares ("smollm", "gpt2", "qwen2", "llama-bpe"),
 * written out by hand over a generated Unicode table (tok_unicode.h).
 * struct tokenizer owns copies of every string it needs, so it outlives
 * the GGUF it was read from. struct tok_ids / tok_str are growable arrays
 * the caller owns (free with tok_ids_free / tok_str_free). */
#ifndef ISOPIPE_TOKENIZER_H
#define ISOPIPE_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>

struct gguf;
struct tokenizer;

/* pre-tokenizers (llama-vocab.cpp LLAMA_VOCAB_PRE_TYPE_*) */
enum tok_pre { TOK_PRE_GPT2, TOK_PRE_SMOLLM, TOK_PRE_QWEN2, TOK_PRE_LLAMA3 };

/* token types as stored in tokenizer.ggml.token_type (llama.h LLAMA_TOKEN_TYPE_*) */
enum tok_type {
    TOK_TYPE_UNDEFINED = 0, TOK_TYPE_NORMAL = 1, TOK_TYPE_UNKNOWN = 2, TOK_TYPE_CONTROL = 3,
    TOK_TYPE_USER_DEFINED = 4, TOK_TYPE_UNUSED = 5, TOK_TYPE_BYTE = 6,
};

/* tok_encode flags */
enum { TOK_ADD_BOS = 1, TOK_PARSE_SPECIAL = 2 };

struct tok_ids { int32_t *v; size_t n, cap; };
struct tok_str { char *s; size_t n, cap; };     /* s is NUL-terminated when n > 0 */

/* Everything the tokenizer is built from (also what the GGUF reader fills).
 * Strings are (pointer, length), need not be NUL-terminated, and are copied. */
struct tok_desc {
    size_t n_tokens;
    const char *const *tokens; const uint32_t *token_lens;
    const int32_t *types;              /* may be NULL: all normal */
    size_t n_merges;
    const char *const *merges; const uint32_t *merge_lens;  /* "left right" */
    const char *pre;                   /* tokenizer.ggml.pre, NULL = "gpt2" */
    int32_t bos, eos, eot;             /* -1 when absent (eot: found by text when -1) */
    int add_bos;
};

/* ISO_EDATA malformed metadata, ISO_EUNAVAIL a tokenizer model or
 * pre-tokenizer this code does not implement (named in the message) */
int tok_build(const struct tok_desc *d, struct tokenizer **out);
int tok_from_gguf(const struct gguf *g, struct tokenizer **out);
void tok_free(struct tokenizer **t);

/* Appends the ids of text[0..len) to out. TOK_ADD_BOS adds BOS when the
 * model asks for it (tokenizer.ggml.add_bos_token); TOK_PARSE_SPECIAL
 * turns the text of control tokens (<|im_start|>) into their ids. */
int tok_encode(const struct tokenizer *t, const char *text, size_t len, int flags, struct tok_ids *out);
/* Appends the bytes of one token (byte-level decoded). Control tokens give
 * their text only when special is set, else nothing. */
int tok_decode(const struct tokenizer *t, int32_t id, int special, struct tok_str *out);

int tok_n_vocab(const struct tokenizer *t);
int32_t tok_bos(const struct tokenizer *t);
int32_t tok_eos(const struct tokenizer *t);
enum tok_pre tok_pre_type(const struct tokenizer *t);
const char *tok_pre_name(const struct tokenizer *t);
/* end of generation: eos, eot and the usual end-of-turn tokens (<|im_end|>, <|eot_id|>, ...) */
int tok_is_eog(const struct tokenizer *t, int32_t id);
/* id of a token with exactly this text, -1 when none */
int32_t tok_find(const struct tokenizer *t, const char *text);
/* raw stored text of a token (not byte-decoded), NULL for a bad id */
const char *tok_text(const struct tokenizer *t, int32_t id, size_t *len);
enum tok_type tok_token_type(const struct tokenizer *t, int32_t id);

int tok_ids_push(struct tok_ids *a, int32_t id);
void tok_ids_free(struct tok_ids *a);
int tok_str_append(struct tok_str *s, const char *p, size_t n);
void tok_str_free(struct tok_str *s);
#endif
