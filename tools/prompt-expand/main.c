/* prompt-expand — a topic in, one visual prompt per video segment out
 * (scenes.json), written by a local instruction-tuned LLM (GGUF). */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chat.h"
#include "cli.h"
#include "err.h"
#include "fs.h"
#include "sig.h"
#include "gguf.h"
#include "jsonio.h"
#include "llm.h"
#include "log.h"
#include "mem.h"
#include "model.h"
#include "runtime.h"
#include "sample.h"
#include "scenes.h"
#include "sha256.h"
#include "tokenizer.h"
#include "topic.h"

#define PE_DEFAULT_MODEL "SmolLM2-135M-Instruct.Q4_1"
#define PE_PREFILL_CHUNK 16   /* request tokens per llm_eval call (an interrupt is seen between calls) */
#define PE_DEFAULT_SEGMENTS 4
#define PE_MAX_SEGMENTS 64
/* greedy decoding gives the same reply on every attempt, so its retries sample at this temperature */
#define PE_RETRY_TEMPERATURE 0.7
/* after the retries, attempts with constrained decoding (next seeds) before the topic stands in */
#define PE_CONSTRAINED_ATTEMPTS 2
/* their repetition penalty (at least), over the previous prompt's tokens and their own */
#define PE_CONSTRAINED_PENALTY 1.3

enum {
    OPT_TOPIC = 1000, OPT_SEGMENTS, OPT_SYSTEM, OPT_MAXTOK, OPT_TEMP, OPT_TOPK, OPT_TOPP, OPT_MINP,
    OPT_REPPEN, OPT_REPLAST, OPT_NCTX, OPT_RETRIES, OPT_NOSHA, OPT_STRICT, OPT_CONSTRAIN,
};

static const struct cli_opt opts[] = {
    { "topic", 0, "TEXT", "the topic itself instead of a TOPICFILE", OPT_TOPIC },
    { "segments", 'n', "N", "number of prompts (default: the topic file's segments, else one per keyframe pair, else 4; at most 64)", OPT_SEGMENTS },
    { "system", 0, "FILE", "replace the built-in instruction with the text of FILE", OPT_SYSTEM },
    { "max-tokens", 0, "N", "tokens the model may write per prompt (default 96)", OPT_MAXTOK },
    { "temperature", 0, "T", "sampling temperature; 0 = greedy (default 0.7)", OPT_TEMP },
    { "top-k", 0, "K", "keep the K most likely tokens; 0 = off (default 40)", OPT_TOPK },
    { "top-p", 0, "P", "keep the smallest set of tokens whose probability reaches P; 1 = off (default 0.9)", OPT_TOPP },
    { "min-p", 0, "P", "drop tokens less likely than P times the most likely; 0 = off (default 0.05)", OPT_MINP },
    { "repeat-penalty", 0, "X", "penalty for tokens already written; 1 = off (default 1.1)", OPT_REPPEN },
    { "repeat-last-n", 0, "N", "how many recent tokens the penalty looks at (default 64)", OPT_REPLAST },
    { "n-ctx", 0, "N", "context length in tokens (KV cache) (default 1024)", OPT_NCTX },
    { "retries", 0, "N", "attempts with the next seed when a reply cannot be used (default 3)", OPT_RETRIES },
    { "no-sha256", 0, NULL, "record the model file's size only, not its sha256", OPT_NOSHA },
    { "constrain", 0, NULL, "decode every attempt under the constraint, not only the last two", OPT_CONSTRAIN },
    { "strict", 0, NULL, "exit 69 when a prompt has no usable reply after the retries, instead of using the topic", OPT_STRICT },
    { 0 },
};

static const struct cli_spec spec = {
    .tool = "prompt-expand",
    .usage = "[options] [-o scenes.json] (TOPICFILE | - | --topic TEXT)",
    .summary = "Turn a topic into one visual prompt per video segment with a local LLM (GGUF).",
    .description =
        "The model writes one prompt per request: the instruction, two worked examples, then\n"
        "\"Video: <topic> / Previous shot: <prompt i-1> / Shot i of N\", so each prompt continues the\n"
        "last. A reply is used when it is one line of 20..400 bytes (5+ words, mostly letters, no chat\n"
        "markers, no \"Sure, here is\"), after removing a \"Shot 2:\" label or quotes, and differs from\n"
        "the prompts before it. Otherwise that prompt is asked again with the next seed, up to\n"
        "--retries more times (at temperature 0.7 when --temperature is 0: greedy repeats itself);\n"
        "when still no attempt gave a usable reply, the topic itself stands in for that prompt (\"Shot 2 of\n"
        "4: <topic>.\"), marked \"source\": \"topic\" with the reason in scenes.json and warned about,\n"
        "and every raw reply is kept in <output>.raw.txt: a small model's ramble never stops a run.\n"
        "Before that, two more attempts (next seeds) use constrained decoding: tokens holding markup,\n"
        "quotes, labels or control characters are never drawn, the reply must start with a letter,\n"
        "may not open with chatter, and may end (end of turn or newline) only after 20 bytes and\n"
        "5 words, and in its last 8 tokens a reply that long may only end its sentence; the\n"
        "previous prompt's tokens count for the repetition penalty (at least 1.3) so it is not\n"
        "copied (--constrain: every attempt). scenes.json says per prompt \"attempts\" and\n"
        "\"constrained\": true when a constrained attempt gave it.\n"
        "--strict exits 69 instead (the input was fine; the model could not serve it).\n"
        "On a terminal (stderr a tty, no -q) a progress line shows the segment (i/N), the attempt\n"
        "and tokens/s; it is never written to a file or pipe.\n"
        "\n"
        "Sampling: repetition penalty, top-k, top-p, min-p, temperature, in that order (top-p and\n"
        "min-p see temperature-1 probabilities, as llama.cpp). --seed (default: the topic file's\n"
        "seed, else 0) makes the output reproducible.\n"
        "\n"
        "Output: scenes.json (-o, default ./scenes.json) with topic, model (path relative to the\n"
        "JSON, architecture, quant, size, sha256), sampling settings, segments [{index, prompt}]\n"
        "(index from 0), generation statistics and the memory report. Models: GGUF of the llama\n"
        "and qwen2 architectures (any other exits 69, naming it) with a ChatML or Llama 3 chat\n"
        "template; any other template is replaced by ChatML (a warning, and model.chat_template_fallback\n"
        "in scenes.json). In cpu mode the plan's host RAM must fit MemAvailable (and the cgroup's\n"
        "room), else exit 75 before loading, with the numbers. The model's sha256 is computed\n"
        "once per file version and kept in $XDG_CACHE_HOME/isopipe/sha256 (~/.cache/isopipe/sha256),\n"
        "keyed by path, device, inode, size, mtime and ctime: any change to the file hashes it again.",
    .opts = opts,
    .examples = "  prompt-expand -o out/scenes.json sample_inputs/harbor.topic\n"
                "  prompt-expand --segments 3 --seed 7 --topic \"a paper boat drifting down a rainy street\"\n"
                "  prompt-expand -m Qwen2.5-7B-Instruct-Q4_K_M --plan --topic x",
    .default_model = PE_DEFAULT_MODEL ".gguf",
    .min_args = 0,
    .max_args = 1,
    .common = CLI_C_ALL,
    .has_gpu_path = 1,
    .dash_input = 1,
};

struct args {
    const char *topic_text, *system_file;
    int segments, max_tokens, n_ctx, retries, no_sha, strict, constrain;
    struct sample_params sp;
};

static int on_opt(void *ctx, int id, const char *arg)
{
    struct args *a = ctx;
    long v = 0;
    double d = 0;
    int rc = 0;
    switch (id) {
    case OPT_TOPIC: a->topic_text = arg; break;
    case OPT_SEGMENTS: if (!(rc = cli_int("segments", arg, 1, PE_MAX_SEGMENTS, &v))) a->segments = (int)v; break;
    case OPT_SYSTEM: a->system_file = arg; break;
    case OPT_MAXTOK: if (!(rc = cli_int("max-tokens", arg, 1, 4096, &v))) a->max_tokens = (int)v; break;
    case OPT_TEMP: if (!(rc = cli_double("temperature", arg, 0, 10, &d))) a->sp.temperature = d; break;
    case OPT_TOPK: if (!(rc = cli_int("top-k", arg, 0, 1 << 20, &v))) a->sp.top_k = (int)v; break;
    case OPT_TOPP: if (!(rc = cli_double("top-p", arg, 0.001, 1, &d))) a->sp.top_p = d; break;
    case OPT_MINP: if (!(rc = cli_double("min-p", arg, 0, 1, &d))) a->sp.min_p = d; break;
    case OPT_REPPEN: if (!(rc = cli_double("repeat-penalty", arg, 0.1, 10, &d))) a->sp.repeat_penalty = d; break;
    case OPT_REPLAST: if (!(rc = cli_int("repeat-last-n", arg, 0, 1 << 16, &v))) a->sp.repeat_last_n = (int)v; break;
    case OPT_NCTX: if (!(rc = cli_int("n-ctx", arg, 64, 1 << 20, &v))) a->n_ctx = (int)v; break;
    case OPT_RETRIES: if (!(rc = cli_int("retries", arg, 0, 100, &v))) a->retries = (int)v; break;
    case OPT_NOSHA: a->no_sha = 1; break;
    case OPT_STRICT: a->strict = 1; break;
    case OPT_CONSTRAIN: a->constrain = 1; break;
    default: rc = iso_fail(ISO_EINTERNAL, "unknown option id %d", id);
    }
    return rc;
}

/* ---- generation */

/* SIGINT/SIGTERM: finish the current token, clean up, log "end", exit 130 */
#define CHECK_INTERRUPT() do { if (sig_interrupted()) return sig_check(); } while (0)

struct gen {
    struct llm *m;
    const struct tokenizer *tok;
    struct sampler *smp;
    float *logits;
    struct tok_ids cache;      /* the ids whose keys and values sit in the KV cache, position by position */
    struct tok_ids out;        /* ids written for the current reply (the penalty's history) */
    int n_ctx, max_tokens;
    uint64_t prompt_tokens, gen_tokens;
    double prompt_s, gen_s;
    /* the progress line (stderr a terminal, not -q): segment seg + 1 of nseg */
    int progress, seg, nseg, attempt;
    double progress_t;
    /* constrained decoding: banned[id] for tokens that can never be part of a
     * usable reply (built on first use); constrain for the current attempt */
    uint8_t *banned;
    int constrain;
    const char *prev;          /* the prompt before this one (constrained attempts penalise its tokens), or NULL */
    struct tok_ids hist;       /* constrained attempts: the previous prompt's ids, then the reply's */
    int closing;               /* constrained: the last tokens before max_tokens, so the reply must end a sentence */
};

/* "prompt-expand: segment 2/4 (attempt 3), 37 tokens, 12.5 tokens/s" over itself on a terminal */
static void progress_show(struct gen *g, int tokens, double secs, int force)
{
    if (!g->progress) return;
    double now = mem_now();
    if (!force && now - g->progress_t < 0.25) return;
    g->progress_t = now;
    char att[48] = "";
    if (g->attempt > 0) snprintf(att, sizeof att, " (attempt %d%s)", g->attempt + 1, g->constrain ? ", constrained" : "");
    fprintf(stderr, "\r\033[Kprompt-expand: segment %d/%d%s, %d tokens, %.1f tokens/s", g->seg + 1, g->nseg, att, tokens,
            secs > 0 ? tokens / secs : 0.0);
    fflush(stderr);
}

static void progress_clear(struct gen *g)
{
    if (g->progress) { fputs("\r\033[K", stderr); fflush(stderr); }
}

/* Bytes no usable reply needs: markup, quotes, labels, control characters.
 * A token whose text holds one is never drawn in constrained decoding. */
static int banned_byte(unsigned char ch)
{
    return ch < 0x20 ? ch != '\n' && ch != ' ' : strchr("<>|*#`\"{}[]_\\/@=~^:;$%&+", ch) != NULL;
}

static int build_banned(struct gen *g)
{
    int nv = tok_n_vocab(g->tok);
    g->banned = calloc((size_t)nv, 1);
    if (!g->banned) return iso_fail(ISO_EINTERNAL, "out of memory");
    struct tok_str t = { 0 };
    for (int id = 0; id < nv; id++) {
        if (tok_is_eog(g->tok, id)) continue;
        t.n = 0;
        if (tok_decode(g->tok, id, 1, &t)) { g->banned[id] = 1; continue; }
        if (t.n == 0) g->banned[id] = 1;   /* a special or empty token writes nothing useful */
        for (size_t i = 0; i < t.n; i++)
            if (banned_byte((unsigned char)t.s[i])) { g->banned[id] = 1; break; }
    }
    free(t.s);
    return 0;
}

/* constrained decoding: may the reply so far (len bytes of s) be followed by
 * token id with text (tn bytes of ts)? One line that starts with a letter,
 * reaches SCENES_MIN_LEN bytes and SCENES_MIN_WORDS words before it may end,
 * and does not open with chatter ("Sure", "Here is", ...). */
static int constrained_ok(const struct gen *g, int32_t id, const char *s, size_t len, const char *ts, size_t tn)
{
    size_t words = 0, vis = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') continue;
        vis++;
        if (i == 0 || s[i - 1] == ' ') words++;
    }
    int long_enough = vis >= SCENES_MIN_LEN && words >= SCENES_MIN_WORDS;
    if (tok_is_eog(g->tok, id)) return long_enough;
    if (memchr(ts, '\n', tn)) return long_enough && ts[0] == '\n';
    /* near --max-tokens a reply long enough may only end its sentence */
    if (g->closing && long_enough && !memchr(ts, '.', tn) && !memchr(ts, '!', tn) && !memchr(ts, '?', tn)) return 0;
    if (vis == 0) {   /* the first visible character: a letter */
        size_t i = 0;
        while (i < tn && ts[i] == ' ') i++;
        if (i < tn && !isalpha((unsigned char)ts[i]) && (unsigned char)ts[i] < 0x80) return 0;
    }
    /* the opening so far plus this token, against the chatter openings */
    char head[64];
    size_t hn = 0;
    for (size_t i = 0; i < len && hn < sizeof head - 1; i++)
        if (hn || s[i] != ' ') head[hn++] = (char)tolower((unsigned char)s[i]);
    for (size_t i = 0; i < tn && hn < sizeof head - 1; i++)
        if (hn || ts[i] != ' ') head[hn++] = (char)tolower((unsigned char)ts[i]);
    head[hn] = 0;
    static const char *const chatter[] = { "sure", "here is", "here's", "here are", "certainly", "okay", "ok,", "i'm ",
                                           "i am ", "i can", "as an ai", "sorry", "video", "previous shot", "shot ", NULL };
    for (int i = 0; chatter[i]; i++)
        if (!strncmp(head, chatter[i], strlen(chatter[i]))) return 0;
    return 1;
}

#define CONSTRAINED_STOP INT32_MIN
/* one token under the constraint: banned tokens masked, then a draw; a draw
 * the reply cannot take is masked and drawn again */
static int32_t sample_constrained(struct gen *g, const struct tok_str *reply, struct tok_str *tmp)
{
    int nv = llm_n_vocab(g->m);
    for (int id = 0; id < nv; id++)
        if (g->banned[id]) g->logits[id] = -INFINITY;
    for (int tries = 0; tries < 256; tries++) {
        int32_t id = sampler_sample(g->smp, g->logits, g->hist.v, g->hist.n);
        if (id < 0) return id;
        tmp->n = 0;
        int rc = tok_decode(g->tok, id, 1, tmp);
        if (rc) return rc;
        if (constrained_ok(g, id, reply->s ? reply->s : "", reply->n, tmp->s ? tmp->s : "", tmp->n)) return id;
        g->logits[id] = -INFINITY;
    }
    return CONSTRAINED_STOP;   /* nothing allowed: the reply ends here and is judged as it is */
}

/* Evaluates the request (reusing the cached prefix it shares with the last
 * one: the instruction and example are the same every time) and samples a
 * reply until end of turn, a newline after some text, the first sentence
 * end past SCENES_STOP_LEN bytes, or max_tokens. In the last two cases the
 * reply is cut back to its last complete sentence; *cut is set when
 * max_tokens ended it without one. */
static int generate_reply(struct gen *g, const struct tok_ids *req, struct tok_str *reply, int *cut)
{
    int rc;
    *cut = 0;
    reply->n = 0;
    g->out.n = 0;
    if (req->n == 0) return iso_fail(ISO_EINTERNAL, "empty request");
    if (req->n + (size_t)g->max_tokens > (size_t)g->n_ctx)
        return iso_fail(ISO_EDATA, "the request takes %zu tokens and the reply up to %d: more than --n-ctx %d "
                        "(shorten the topic or raise --n-ctx)", req->n, g->max_tokens, g->n_ctx);
    CHECK_INTERRUPT();
    size_t lcp = 0;
    while (lcp < req->n && lcp < g->cache.n && req->v[lcp] == g->cache.v[lcp]) lcp++;
    if (lcp == req->n) lcp--;   /* the last token is evaluated again for its logits */
    double t0 = mem_now();
    /* in pieces, so SIGINT/SIGTERM is honoured during a long prompt too
     * (a 1.5B model takes tens of seconds over a 300-token request) */
    for (size_t at = lcp; at < req->n;) {
        size_t nn = req->n - at < PE_PREFILL_CHUNK ? req->n - at : PE_PREFILL_CHUNK;
        if ((rc = llm_eval(g->m, req->v + at, (int)nn, (int)at, g->logits))) return rc;
        at += nn;
        if (at < req->n) CHECK_INTERRUPT();
    }
    g->prompt_s += mem_now() - t0;
    g->prompt_tokens += req->n - lcp;
    g->cache.n = 0;
    for (size_t i = 0; i < req->n; i++)
        if ((rc = tok_ids_push(&g->cache, req->v[i]))) return rc;
    t0 = mem_now();
    int text = 0, trim = 1, k;
    struct tok_str tmp = { 0 };
    g->hist.n = 0;
    g->closing = 0;
    if (g->constrain && g->prev && (rc = tok_encode(g->tok, g->prev, strlen(g->prev), 0, &g->hist))) return rc;
    progress_show(g, 0, 0, 1);
    for (k = 0; k < g->max_tokens; k++) {
        if (sig_interrupted()) { free(tmp.s); return sig_check(); }
        int32_t id = g->constrain ? sample_constrained(g, reply, &tmp) : sampler_sample(g->smp, g->logits, g->out.v, g->out.n);
        if (id == CONSTRAINED_STOP) { trim = 0; break; }
        if (id < 0) { free(tmp.s); return id; }
        progress_show(g, k + 1, mem_now() - t0, 0);
        if (tok_is_eog(g->tok, id)) { trim = 0; break; }
        size_t before = reply->n;
        if ((rc = tok_decode(g->tok, id, 1, reply)) || (rc = tok_ids_push(&g->out, id)) || (rc = tok_ids_push(&g->hist, id))) {
            free(tmp.s);
            return rc;
        }
        g->closing = k + 1 >= g->max_tokens - 8;
        g->gen_tokens++;
        int stop = 0;
        for (size_t i = before; i < reply->n; i++) {
            if (reply->s[i] == '\n' && text) stop = 1;
            else if (reply->s[i] != ' ' && reply->s[i] != '\n' && reply->s[i] != '\t' && reply->s[i] != '\r') text = 1;
        }
        if (stop) { trim = 0; break; }
        if (scenes_sentence_end(reply->s, reply->n, 0) >= SCENES_STOP_LEN) break;
        if (k + 1 == g->max_tokens) { k++; break; }
        if ((rc = llm_eval(g->m, &id, 1, (int)g->cache.n, g->logits)) || (rc = tok_ids_push(&g->cache, id))) {
            free(tmp.s);
            return rc;
        }
    }
    free(tmp.s);
    if (trim) {
        size_t end = scenes_sentence_end(reply->s, reply->n, k < g->max_tokens);
        if (end) { reply->n = end; reply->s[end] = 0; }
        else if (k >= g->max_tokens) *cut = 1;
    }
    g->gen_s += mem_now() - t0;
    return 0;
}

static int generate(struct gen *g, const struct tok_ids *req, struct tok_str *reply, int *cut)
{
    int rc = generate_reply(g, req, reply, cut);
    progress_clear(g);
    return rc;
}

static int write_raw(FILE *f, void *ctx)
{
    const struct tok_str *s = ctx;
    if (s->n && fwrite(s->s, 1, s->n, f) != s->n) return iso_fail(ISO_EIO, "cannot write the raw output");
    return 0;
}

static uint64_t mix_seed(uint64_t seed, int index, int attempt)
{
    /* distinct, reproducible streams per prompt; attempt a of prompt i uses seed + a in the mix */
    return (seed + (uint64_t)attempt) ^ (UINT64_C(0x9e3779b97f4a7c15) * (uint64_t)(index + 1));
}

static json_t *sampling_json(const struct args *a, uint64_t seed)
{
    json_t *o = json_object();
    json_object_set_new(o, "temperature", json_real(a->sp.temperature));
    json_object_set_new(o, "top_k", json_integer(a->sp.top_k));
    json_object_set_new(o, "top_p", json_real(a->sp.top_p));
    json_object_set_new(o, "min_p", json_real(a->sp.min_p));
    json_object_set_new(o, "repeat_penalty", json_real(a->sp.repeat_penalty));
    json_object_set_new(o, "repeat_last_n", json_integer(a->sp.repeat_last_n));
    json_object_set_new(o, "seed", json_integer((json_int_t)seed));
    json_object_set_new(o, "max_tokens", json_integer(a->max_tokens));
    json_object_set_new(o, "retries", json_integer(a->retries));
    json_object_set_new(o, "constrained_attempts", json_integer(PE_CONSTRAINED_ATTEMPTS));
    json_object_set_new(o, "retry_temperature", json_real(a->sp.temperature > 0 ? a->sp.temperature : PE_RETRY_TEMPERATURE));
    json_object_set_new(o, "n_ctx", json_integer(a->n_ctx));
    return o;
}

/* all of standard input (at most max bytes, NUL-terminated) */
static int read_stdin(char **out, size_t *len, size_t max)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (;;) {
        if (n == cap) {
            if (cap >= max) { free(buf); return iso_fail(ISO_EDATA, "standard input: the topic is over %zu bytes", max); }
            cap = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) { free(buf); return iso_fail(ISO_EINTERNAL, "out of memory"); }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) {
            if (ferror(stdin)) { free(buf); return iso_fail(ISO_EIO, "cannot read standard input"); }
            break;
        }
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* cpu mode maps the weights and touches all of them for every token: a
 * model larger than the RAM there is would page from disk for hours, so
 * the plan's host figure must fit the host budget (MemAvailable, or the
 * cgroup's room when smaller) before anything is loaded; 75 otherwise */
static int cpu_fits(const struct mem_plan *p)
{
    const struct plan_mode *pm = &p->mode[MEM_MODE_CPU];
    uint64_t budget = mem_host_budget();
    if (pm->host_rss <= budget) return 0;
    const double M = 1024.0 * 1024.0;
    return iso_fail(ISO_ETEMPFAIL,
                    "'%s' needs %.1f MiB of RAM in cpu mode (weights %.1f + KV cache %.1f + activations %.1f + "
                    "base %.1f MiB), %.1f MiB available: free memory, lower --n-ctx, or take a smaller model",
                    p->model, pm->host_rss / M, p->weights_total / M, pm->kv_cache / M, pm->activations / M,
                    p->blocks.host_base / M, budget / M);
}

static int run(const struct cli_common *c, struct args *a, const char *topic_file, struct rt *rt)
{
    int rc = 0;
    struct topic t;
    char *model_path = NULL, *system = NULL, *raw_path = NULL;
    struct llm *m = NULL;
    struct tokenizer *tok = NULL;
    struct gen g;
    struct tok_ids req = { 0 };
    struct tok_str reply = { 0 }, raw = { 0 };
    struct scenes_conv conv;
    char **prompts = NULL;
    char **fallback_why = NULL; /* per prompt: why the topic stands in for the model's reply, or NULL */
    int n_fallback = 0;
    int *seg_attempts = NULL;  /* per prompt: attempts made */
    json_t *root = NULL;
    int n = 0;
    memset(&t, 0, sizeof t);
    memset(&g, 0, sizeof g);
    memset(&conv, 0, sizeof conv);
    const char *out = c->output ? c->output : "scenes.json";

    if (!!topic_file == !!a->topic_text) {
        rc = iso_fail(ISO_EUSAGE, topic_file ? "give a TOPICFILE or --topic, not both" : "missing TOPICFILE (or --topic TEXT)");
        goto done;
    }
    if (topic_file && !strcmp(topic_file, "-")) {
        /* the topic from standard input; keyframe paths are relative to the working directory */
        char *text = NULL;
        size_t len = 0;
        if ((rc = read_stdin(&text, &len, (size_t)1 << 20)) == 0) rc = topic_parse(text, len, NULL, &t);
        free(text);
        topic_file = "standard input";
    } else if (topic_file) rc = topic_load(topic_file, &t);
    else rc = topic_parse(a->topic_text, strlen(a->topic_text), NULL, &t);
    if (rc) { iso_wrap(rc, "topic %s%s%s", topic_file ? "'" : "", topic_file ? topic_file : "text", topic_file ? "'" : ""); goto done; }
    /* travel between keyframes: one segment per pair unless told otherwise */
    n = a->segments ? a->segments : t.segments ? t.segments : t.nkeyframes >= 2 ? t.nkeyframes - 1 : PE_DEFAULT_SEGMENTS;
    if (n < 1 || n > PE_MAX_SEGMENTS) { rc = iso_fail(ISO_EDATA, "segments: %d is out of range [1, %d]", n, PE_MAX_SEGMENTS); goto done; }
    uint64_t seed = c->seed_set ? c->seed : t.seed_set ? t.seed : 0;
    if (a->system_file) {
        size_t len;
        if ((rc = fs_read_all(a->system_file, &system, &len, 1 << 20))) { iso_wrap(rc, "--system"); goto done; }
        if (!utf8_valid(system, len) || strlen(system) != len) { rc = iso_fail(ISO_EDATA, "--system '%s' is not UTF-8 text", a->system_file); goto done; }
        while (len && (system[len - 1] == '\n' || system[len - 1] == ' ')) system[--len] = 0;
        if (!len) { rc = iso_fail(ISO_EDATA, "--system '%s' is empty", a->system_file); goto done; }
    }
    {   /* fail before loading anything when the output cannot be created */
        char *dir = fs_dirname(out);
        int ok = dir && fs_is_dir(dir);
        if (!ok) rc = iso_fail(ISO_ECANTCREAT, "cannot create '%s': '%s' is not a directory", out, dir ? dir : "?");
        free(dir);
        if (rc) goto done;
    }
    static const char *const exts[] = { ".gguf", NULL };
    if ((rc = model_find(c->model ? c->model : PE_DEFAULT_MODEL, exts, &model_path))) goto done;

    /* the plan comes from the GGUF header alone (llm_plan), before any weight is read */
    struct llm_params lp;
    struct mem_plan plan;
    llm_params_default(&lp);
    lp.n_ctx = a->n_ctx;
    lp.threads = cli_threads(c);
    lp.mode = c->memory_mode;
    lp.device = c->device;
    if ((rc = llm_plan(model_path, &lp, &plan))) goto done;
    if (c->plan_only) {
        rc = rt_print_plan(rt, &plan, NULL);
        goto done;
    }
    enum mem_mode mode;
    if ((rc = rt_admit(rt, &plan, &mode))) goto done;
    if (mode == MEM_MODE_CPU && (rc = cpu_fits(&plan))) goto done;

    lp.mode = mode;
    rt_load_begin(rt);
    rc = llm_open(model_path, &lp, &m);
    rt_load_end(rt);
    if (rc) goto done;
    if ((rc = tok_from_gguf(llm_gguf(m), &tok))) { iso_wrap(rc, "'%s'", model_path); goto done; }
    if (tok_n_vocab(tok) != llm_n_vocab(m)) {
        rc = iso_fail(ISO_EDATA, "'%s': %d tokens in the vocabulary but %d logits", model_path, tok_n_vocab(tok), llm_n_vocab(m));
        goto done;
    }
    enum chat_fmt fmt;
    const char *chat_fallback = NULL;
    if ((rc = chat_detect_gguf(llm_gguf(m), tok, &fmt, &chat_fallback))) { iso_wrap(rc, "'%s'", model_path); goto done; }
    if (chat_fallback)
        log_warn("'%s': %s; using the default template (%s)", model_path, chat_fallback, chat_fmt_name(fmt));
    log_verbose("model '%s': %s %s, %d tokens (%s), chat %s, mode %s", model_path, llm_arch(m), llm_quant(m),
                tok_n_vocab(tok), tok_pre_name(tok), chat_fmt_name(fmt), mem_mode_name(llm_mode(m)));

    a->sp.seed = seed;
    g.m = m;
    g.tok = tok;
    g.n_ctx = llm_n_ctx(m);
    g.max_tokens = a->max_tokens;
    g.logits = malloc((size_t)llm_n_vocab(m) * sizeof *g.logits);
    prompts = calloc((size_t)n, sizeof *prompts);
    fallback_why = calloc((size_t)n, sizeof *fallback_why);
    if (!g.logits || !prompts || !fallback_why) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if ((rc = sampler_new(&a->sp, llm_n_vocab(m), &g.smp))) goto done;

    int attempts = 0, n_constrained = 0;
    seg_attempts = calloc((size_t)n, sizeof *seg_attempts);
    if (!seg_attempts) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    g.progress = isatty(STDERR_FILENO) && !c->quiet;
    g.nseg = n;
    for (int i = 0; i < n; i++) {
        int a_i;
        char why[256] = "";
        g.seg = i;
        for (a_i = 0; a_i <= a->retries + PE_CONSTRAINED_ATTEMPTS; a_i++) {
            uint64_t s = mix_seed(seed, i, a_i);
            g.attempt = a_i;
            g.constrain = a->constrain || a_i > a->retries;
            if (g.constrain && !g.banned && (rc = build_banned(&g))) goto done;
            seg_attempts[i] = a_i + 1;
            struct sample_params sp = a->sp;
            if (a_i > 0 && sp.temperature <= 0) sp.temperature = PE_RETRY_TEMPERATURE;
            if (g.constrain) {   /* steer away from the previous prompt: its tokens are penalised too */
                g.prev = i ? prompts[i - 1] : NULL;
                if (sp.repeat_penalty < PE_CONSTRAINED_PENALTY) sp.repeat_penalty = PE_CONSTRAINED_PENALTY;
                if (sp.repeat_last_n < 256) sp.repeat_last_n = 256;
            }
            sampler_set_params(g.smp, &sp);
            sampler_reseed(g.smp, s);
            scenes_conv_free(&conv);
            req.n = 0;
            if ((rc = scenes_conv_build(&conv, system, t.text, i, n, i ? prompts[i - 1] : NULL)) ||
                (rc = chat_encode(fmt, tok, conv.msg, conv.n, 1, &req)))
                goto done;
            int cut;
            attempts++;
            if ((rc = generate(&g, &req, &reply, &cut))) goto done;
            char *p = NULL;
            int bad = 0;
            if (cut) bad = iso_fail(ISO_EDATA, "the reply was cut off at --max-tokens %d", a->max_tokens);
            else if ((bad = scenes_parse_reply(reply.s ? reply.s : "", reply.n, &p)) == 0 && scenes_is_duplicate(p, prompts, i))
                bad = iso_fail(ISO_EDATA, "the reply repeats an earlier prompt");
            char head[160];
            snprintf(head, sizeof head, "### prompt %d, attempt %d%s, seed %" PRIu64 ": ", i, a_i + 1,
                     g.constrain ? " (constrained)" : "", s);
            if ((rc = tok_str_append(&raw, head, strlen(head)))) goto done;
            const char *verdict = bad ? iso_errmsg() : "ok";
            if ((rc = tok_str_append(&raw, verdict, strlen(verdict))) || (rc = tok_str_append(&raw, "\n", 1)) ||
                (reply.n && (rc = tok_str_append(&raw, reply.s, reply.n))) || (rc = tok_str_append(&raw, "\n", 1)))
                goto done;
            if (!bad) {
                n_constrained += g.constrain;
                prompts[i] = p;
                log_verbose("prompt %d: %s", i, p);
                break;
            }
            free(p);
            snprintf(why, sizeof why, "%s", iso_errmsg());
            log_verbose("prompt %d, attempt %d: %s", i, a_i + 1, why);
        }
        if (!prompts[i]) {
            raw_path = malloc(strlen(out) + 9);
            if (!raw_path) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
            sprintf(raw_path, "%s.raw.txt", out);
            int wrc = fs_write_atomic(raw_path, write_raw, &raw);
            if (a->strict) {
                /* the input was fine: the model failed, so not 65 ("bad input data") but 69 */
                rc = iso_fail(ISO_EUNAVAIL, "--strict: the model gave no usable reply for prompt %d of %d in %d attempt%s "
                              "(last: %s)%s%s%s", i, n, a_i, a_i != 1 ? "s" : "", why,
                              wrc ? "" : "; raw output kept in '", wrc ? "" : raw_path, wrc ? "" : "'");
                goto done;
            }
            /* a topic never fails because a small model rambled: the topic itself stands in */
            if (!(prompts[i] = scenes_fallback_prompt(t.text, i, n))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
            if (!(fallback_why[i] = strdup(why))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
            n_fallback++;
            log_warn("prompt %d: no usable reply in %d attempt%s (last: %s); using the topic instead: '%s'%s%s%s", i,
                     a_i, a_i != 1 ? "s" : "", why, prompts[i], wrc ? "" : " (raw output in '",
                     wrc ? "" : raw_path, wrc ? "')" : "");
            free(raw_path);
            raw_path = NULL;
        }
    }

    root = jsonio_header_new();
    json_object_set_new(root, "topic", json_string(t.text));
    if (t.path) jsonio_set_path(root, "topic_file", out, t.path);
    json_t *mj = json_object();
    jsonio_set_path(mj, "path", out, model_path);
    struct gguf_str gname;
    if (gguf_get_str(llm_gguf(m), "general.name", &gname) == 0 && gname.len < 256 && utf8_valid(gname.s, (size_t)gname.len))
        json_object_set_new(mj, "name", json_stringn(gname.s, (size_t)gname.len));
    json_object_set_new(mj, "architecture", json_string(llm_arch(m)));
    json_object_set_new(mj, "quant", json_string(llm_quant(m)));
    json_object_set_new(mj, "n_params", json_integer((json_int_t)llm_n_params(m)));
    struct stat st;
    if (stat(model_path, &st) == 0) json_object_set_new(mj, "size", json_integer((json_int_t)st.st_size));
    if (!a->no_sha) {
        char hex[65];
        double t0 = mem_now();
        int hit = 0;
        if ((rc = sha256_file_cached(model_path, hex, &hit))) goto done;
        json_object_set_new(mj, "sha256", json_string(hex));
        log_verbose("sha256 of the model in %.2f s (%s)", mem_now() - t0, hit ? "from the cache" : "hashed, now cached");
    }
    json_object_set_new(mj, "tokenizer", json_string(tok_pre_name(tok)));
    json_object_set_new(mj, "chat_template", json_string(chat_fmt_name(fmt)));
    if (chat_fallback) json_object_set_new(mj, "chat_template_fallback", json_string(chat_fallback));
    json_object_set_new(root, "model", mj);
    json_object_set_new(root, "sampling", sampling_json(a, seed));
    json_t *segs = scenes_segments_json(prompts, n);
    for (int i = 0; segs && i < n; i++) {
        json_t *o = json_array_get(segs, (size_t)i);
        json_object_set_new(o, "attempts", json_integer(seg_attempts[i]));
        if (!fallback_why[i] && (a->constrain || seg_attempts[i] > a->retries + 1)) json_object_set_new(o, "constrained", json_true());
        if (fallback_why[i]) {
            json_object_set_new(o, "source", json_string("topic"));
            json_object_set_new(o, "fallback_reason", json_string(fallback_why[i]));
        }
    }
    json_object_set_new(root, "segments", segs);
    json_object_set_new(root, "fallback_prompts", json_integer(n_fallback));
    json_object_set_new(root, "constrained_prompts", json_integer(n_constrained));
    json_t *gj = json_object();
    json_object_set_new(gj, "requests", json_integer(attempts));
    json_object_set_new(gj, "prompt_tokens_evaluated", json_integer((json_int_t)g.prompt_tokens));
    json_object_set_new(gj, "tokens_generated", json_integer((json_int_t)g.gen_tokens));
    json_object_set_new(gj, "prompt_seconds", json_real(g.prompt_s));
    json_object_set_new(gj, "generate_seconds", json_real(g.gen_s));
    json_object_set_new(gj, "tokens_per_second", json_real(g.gen_s > 0 ? (double)g.gen_tokens / g.gen_s : 0));
    json_object_set_new(gj, "threads", json_integer(cli_threads(c)));
    json_object_set_new(root, "generation", gj);
    json_object_set_new(root, "memory", rt_memory_json(rt));
    if ((rc = jsonio_write_atomic(out, root))) goto done;
    if (!n_fallback) {   /* the raw output of an earlier failed run is stale now */
        char stale[4096];
        if ((size_t)snprintf(stale, sizeof stale, "%s.raw.txt", out) < sizeof stale) unlink(stale);
    }
    log_info("%d prompts written to '%s' (%" PRIu64 " tokens at %.1f tokens/s)", n, out, g.gen_tokens,
             g.gen_s > 0 ? (double)g.gen_tokens / g.gen_s : 0.0);
done:
    if (m) rt_cleanup_begin(rt);
    json_decref(root);
    for (int i = 0; prompts && i < n; i++) free(prompts[i]);
    free(prompts);
    for (int i = 0; fallback_why && i < n; i++) free(fallback_why[i]);
    free(fallback_why);
    scenes_conv_free(&conv);
    tok_ids_free(&req);
    tok_ids_free(&g.cache);
    tok_ids_free(&g.out);
    tok_ids_free(&g.hist);
    tok_str_free(&reply);
    tok_str_free(&raw);
    free(g.logits);
    free(g.banned);
    free(seg_attempts);
    sampler_free(&g.smp);
    tok_free(&tok);
    llm_close(&m);
    free(model_path);
    free(system);
    free(raw_path);
    topic_free(&t);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli_common c;
    struct args a;
    int first;
    memset(&a, 0, sizeof a);
    sample_params_default(&a.sp);
    a.max_tokens = 96;
    a.n_ctx = 1024;
    a.retries = 3;
    int rc = cli_parse(&spec, argc, argv, &c, on_opt, &a, &first);
    if (rc == 1) return 0;
    if (rc < 0) return iso_exit_code(rc);
    if ((rc = cli_start(&spec, &c))) return cli_finish(rc);
    struct rt *rt = NULL;
    sig_install();
    rc = rt_begin(&c, &rt);
    if (rc == 0) rc = run(&c, &a, first < argc ? argv[first] : NULL, rt);
    rc = rt_end(&rt, rc);
    return cli_finish(rc);
}
