/* scenes.h — turning a topic into N scene prompts with a small LLM: the
 * conversation for each shot (system instruction, two worked examples, the
 * request with the previous shot for continuity), strict parsing of the
 * model's reply into one prompt, and the checks a set of prompts must pass
 * (non-empty, sane length, no template junk, distinct). The model itself
 * is driven by main.c; everything here is plain text, so it is unit-tested
 * without a model. */
#ifndef ISOPIPE_SCENES_H
#define ISOPIPE_SCENES_H
#include <jansson.h>
#include <stddef.h>

#include "chat.h"

/* reply limits (bytes): shorter is not a scene, longer is rambling */
#define SCENES_MIN_LEN 20
#define SCENES_MAX_LEN 400
#define SCENES_MIN_WORDS 5
/* generation stops at the first sentence end past this many bytes: small
 * models run on well past what a shot needs */
#define SCENES_STOP_LEN 100

/* the messages for shot `index` (0-based) of n; prev is the previous shot's
 * prompt (NULL for the first). The struct owns the message texts. */
struct scenes_conv {
    struct chat_msg msg[8];
    size_t n;
    char *text[8];
};
int scenes_conv_build(struct scenes_conv *c, const char *system, const char *topic, int index, int n,
                      const char *prev);
void scenes_conv_free(struct scenes_conv *c);

/* One reply of the model to one prompt (malloc'd in *prompt): one line,
 * an optional "Shot 2:" / "2." / "- " label and wrapping quotes removed,
 * SCENES_MIN_LEN..SCENES_MAX_LEN bytes, at least SCENES_MIN_WORDS words,
 * mostly letters, valid UTF-8, no chat-template markers, no chatter
 * ("Sure, here is..."). Otherwise ISO_EDATA and the reason in iso_errmsg(). */
int scenes_parse_reply(const char *reply, size_t len, char **prompt);

/* Length of s[0..n) up to and including the end of its last complete
 * sentence: '.', '!' or '?' (and a closing quote or bracket) followed by
 * whitespace, or by the end of the text when at_end is set. 0 when none. */
size_t scenes_sentence_end(const char *s, size_t n, int at_end);

/* Similarity of two prompts: the Jaccard index |A & B| / |A | B| of their
 * sets of word pairs (adjacent words, lower-cased, punctuation dropped);
 * 1 for the same words in the same order, 0 for no pair in common. */
double scenes_similarity(const char *a, const char *b);
/* replies at least this similar to an earlier prompt are near-copies */
#define SCENES_MAX_SIMILARITY 0.6

/* 1 when p equals one of prev[0..n) ignoring case, spacing and punctuation,
 * or is at least SCENES_MAX_SIMILARITY similar to one */
int scenes_is_duplicate(const char *p, char *const *prev, int n);

/* [{"index": i, "prompt": ...}, ...] (new reference) */
json_t *scenes_segments_json(char *const *prompts, int n);
/* The prompt of segment index (0-based) of n when every reply of the model
 * was unusable: the topic itself, made a sentence, with the shot's place
 * ("Opening shot", "Shot 2 of 4", "Final shot") so no two are alike and
 * each still describes the video. Never fails but for memory (NULL). */
char *scenes_fallback_prompt(const char *topic, int index, int n);
#endif
