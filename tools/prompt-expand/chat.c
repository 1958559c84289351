/* chat.c — ChatML and the Llama 3 header format, written out as
 * llama.cpp's llama-chat.cpp (llm_chat_apply_template) writes them. */
#include "chat.h"

#include <ctype.h>
#include <string.h>

#include "err.h"
#include "gguf.h"

const char *chat_fmt_name(enum chat_fmt f)
{
    return f == CHAT_LLAMA3 ? "llama3" : "chatml";
}

static int has_chatml(const struct tokenizer *t)
{
    return t && tok_find(t, "<|im_start|>") >= 0 && tok_find(t, "<|im_end|>") >= 0;
}

static int has_llama3(const struct tokenizer *t)
{
    return t && tok_find(t, "<|start_header_id|>") >= 0 && tok_find(t, "<|end_header_id|>") >= 0 &&
           tok_find(t, "<|eot_id|>") >= 0;
}

int chat_detect(const char *tmpl, const struct tokenizer *t, enum chat_fmt *out, const char **fallback)
{
    *fallback = NULL;
    if (tmpl && *tmpl) {
        if (strstr(tmpl, "<|im_start|>") && !strstr(tmpl, "<|im_sep|>") && !strstr(tmpl, "<end_of_utterance>")) {
            *out = CHAT_CHATML;
            return 0;
        }
        if (strstr(tmpl, "<|start_header_id|>") && strstr(tmpl, "<|end_header_id|>")) {
            *out = CHAT_LLAMA3;
            return 0;
        }
        *fallback = "the model's chat template is neither ChatML nor Llama 3";
    } else {
        if (!t) return iso_fail(ISO_EINTERNAL, "chat_detect: no template and no vocabulary");
        if (has_chatml(t)) { *out = CHAT_CHATML; return 0; }
        if (has_llama3(t)) { *out = CHAT_LLAMA3; return 0; }
        *fallback = "the model has no chat template and no ChatML or Llama 3 marker tokens";
    }
    /* the default: ChatML, unless only Llama 3's markers are in the vocabulary */
    *out = !has_chatml(t) && has_llama3(t) ? CHAT_LLAMA3 : CHAT_CHATML;
    return 0;
}

int chat_detect_gguf(const struct gguf *g, const struct tokenizer *t, enum chat_fmt *out, const char **fallback)
{
    struct gguf_str s;
    struct tok_str tmpl = { 0 };
    int rc;
    if (gguf_get_str(g, "tokenizer.chat_template", &s) == 0 && s.len) {
        if ((rc = tok_str_append(&tmpl, s.s, (size_t)s.len))) return rc;
    }
    rc = chat_detect(tmpl.s, t, out, fallback);
    tok_str_free(&tmpl);
    return rc;
}

/* llama-chat.cpp trim(): ASCII whitespace off both ends */
static void trimmed(const char *s, const char **b, size_t *n)
{
    size_t len = strlen(s);
    while (len && isspace((unsigned char)*s)) { s++; len--; }
    while (len && isspace((unsigned char)s[len - 1])) len--;
    *b = s;
    *n = len;
}

/* A message is a list of parts: a special marker (by text) or plain text.
 * part() feeds one to either the text or the id renderer. */
struct sink { struct tok_str *text; const struct tokenizer *t; struct tok_ids *ids; };

static int part(struct sink *k, int special, const char *s, size_t n)
{
    if (k->text) return tok_str_append(k->text, s, n);
    if (special) {
        int32_t id = tok_find(k->t, s);
        if (id >= 0) return tok_ids_push(k->ids, id);
        /* the default template on a vocabulary without its markers: text */
    }
    return tok_encode(k->t, s, n, 0, k->ids);
}

static int render(enum chat_fmt f, const struct chat_msg *m, size_t n, int add_assistant, struct sink *k)
{
    int rc = 0;
    struct tok_str buf = { 0 };
#define SPECIAL(s) do { if ((rc = part(k, 1, (s), strlen(s)))) goto done; } while (0)
#define TEXT(s, len) do { if ((len) && (rc = part(k, 0, (s), (len)))) goto done; } while (0)
    for (size_t i = 0; i < n; i++) {
        buf.n = 0;
        if (f == CHAT_CHATML) {
            /* <|im_start|>role\ncontent<|im_end|>\n: role, newline and content are one run of text */
            SPECIAL("<|im_start|>");
            if ((rc = tok_str_append(&buf, m[i].role, strlen(m[i].role))) || (rc = tok_str_append(&buf, "\n", 1)) ||
                (rc = tok_str_append(&buf, m[i].content, strlen(m[i].content))))
                goto done;
            TEXT(buf.s, buf.n);
            SPECIAL("<|im_end|>");
            TEXT("\n", 1);
        } else {
            const char *c;
            size_t cl;
            trimmed(m[i].content, &c, &cl);
            SPECIAL("<|start_header_id|>");
            TEXT(m[i].role, strlen(m[i].role));
            SPECIAL("<|end_header_id|>");
            if ((rc = tok_str_append(&buf, "\n\n", 2)) || (rc = tok_str_append(&buf, c, cl))) goto done;
            TEXT(buf.s, buf.n);
            SPECIAL("<|eot_id|>");
        }
    }
    if (add_assistant) {
        if (f == CHAT_CHATML) {
            SPECIAL("<|im_start|>");
            TEXT("assistant\n", 10);
        } else {
            SPECIAL("<|start_header_id|>");
            TEXT("assistant", 9);
            SPECIAL("<|end_header_id|>");
            TEXT("\n\n", 2);
        }
    }
#undef SPECIAL
#undef TEXT
done:
    tok_str_free(&buf);
    return rc;
}

int chat_render(enum chat_fmt f, const struct chat_msg *m, size_t n, int add_assistant, struct tok_str *out)
{
    struct sink k = { out, NULL, NULL };
    return render(f, m, n, add_assistant, &k);
}

int chat_encode(enum chat_fmt f, const struct tokenizer *t, const struct chat_msg *m, size_t n, int add_assistant,
                struct tok_ids *out)
{
    struct sink k = { NULL, t, out };
    int rc = tok_encode(t, "", 0, TOK_ADD_BOS, out);
    return rc ? rc : render(f, m, n, add_assistant, &k);
}
