/* spm.h — the SentencePiece unigram tokenizer of umT5, from either file
 * users have: a `spiece.model` (SentencePiece's ModelProto, read by our own
 * protobuf reader) or a Hugging Face `tokenizer.json` (Unigram model). The
 * format is recognised from the content, never the name.
 *
 * Each file is implemented as its own library runs it, because the two
 * disagree on edge cases and the ids must match bit for bit:
 *  - spiece.model as the `sentencepiece` library: the precompiled charsmap
 *    applied by longest match, add_dummy_prefix, remove_extra_whitespaces,
 *    escape_whitespaces, user-defined symbols kept whole, Viterbi over the
 *    piece scores (float), <unk> for characters no piece covers, each <unk>
 *    split into <0xNN> pieces when byte_fallback is on.
 *  - tokenizer.json as the `tokenizers` library: added tokens split out
 *    first, then its normalizer chain (Precompiled per grapheme cluster,
 *    Strip, Replace), pre-tokenizer (Metaspace, WhitespaceSplit), Viterbi per
 *    word (double) with consecutive unknowns fused, byte_fallback, and the
 *    post-processor's template (T5: "$A </s>").
 * Ids always end with </s> (spiece.model: appended as T5's tokenizer does).
 * The struct owns all it holds; spm_encode allocates the ids it returns. */
#ifndef ISOPIPE_SPM_H
#define ISOPIPE_SPM_H
#include <stddef.h>
#include <stdint.h>

struct spm;

enum spm_format { SPM_FMT_MODEL = 0, SPM_FMT_JSON };

/* Read PATH (either format). ISO_ENOINPUT missing, ISO_EDATA neither format
 * or corrupt (the message names the file and what is wrong). */
int spm_load(const char *path, struct spm **out);
/* the tokenizer in a GGUF's metadata (llama.cpp's "t5" tokenizer.ggml.*
 * keys), run as spiece.model. ISO_EDATA when it holds none. */
int spm_load_gguf(const char *path, struct spm **out);
/* the same from memory; name is used in messages */
int spm_load_mem(const void *data, size_t n, const char *name, struct spm **out);
void spm_free(struct spm **s);

enum spm_format spm_format(const struct spm *s);
const char *spm_format_name(const struct spm *s);   /* "spiece.model", "tokenizer.json", "gguf" */
/* one past the largest id the tokenizer can produce */
int spm_n_ids(const struct spm *s);
int spm_eos_id(const struct spm *s);
/* piece text of id (NULL when out of range) */
const char *spm_piece(const struct spm *s, int id);

/* Tokenise n bytes of text. max_ids > 0 limits the result to max_ids ids
 * with the closing </s> kept (the content is cut, as Hugging Face's
 * truncation does: umT5 in Wan uses 512 = 511 pieces + </s>); *truncated
 * says whether it was cut. *ids is malloc'ed (free it). 0 or ISO_E*. */
int spm_encode(const struct spm *s, const char *text, size_t n, int max_ids, int32_t **ids,
               size_t *n_ids, int *truncated);

/* Extended grapheme cluster boundaries (UAX #29, Unicode 15.0 tables): the
 * byte length of the cluster that starts at s (n > 0 bytes of valid UTF-8).
 * Exposed for its unit test against GraphemeBreakTest.txt. */
size_t spm_grapheme_len(const char *s, size_t n);
#endif
