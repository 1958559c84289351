/* text-encode — prompts in, umT5 encoder states out (Wan2.1's text
 * encoder as its own process: it loads once, encodes every prompt of a run,
 * writes the embeddings and exits). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clean.h"
#include "cli.h"
#include "err.h"
#include "fs.h"
#include "gpu.h"
#include "jsonio.h"
#include "log.h"
#include "mem.h"
#include "model.h"
#include "nn.h"
#include "nn_heap.h"
#include "nn_wres.h"
#include "runtime.h"
#include "safetensors.h"
#include "sig.h"
#include "spm.h"
#include "st_write.h"
#include "topic.h"
#include "umt5.h"
#include "weights.h"

#define TE_DEFAULT_MODEL "umt5-xxl"
#define TE_TEXT_LEN 512          /* Wan2.1 shared_config: text_len */
#define TE_MAX_PROMPTS 4096
#define TE_MAX_PROMPT_BYTES (1 << 20)
/* tokens encoded together, layer by layer (a streamed layer is copied once
 * per group): bounds the residual streams held at once (64 MiB at d_model 4096) */
#define TE_GROUP_TOKENS 4096

/* Wan2.1 wan/configs/shared_config.py, sample_neg_prompt (data, copied as it is) */
static const char wan_negative[] =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，"
    "杂乱的背景，三条腿，背景人很多，倒着走";

enum { OPT_TOKENIZER = 1000, OPT_PROMPT, OPT_SCENES, OPT_NEGATIVE, OPT_NO_NEGATIVE, OPT_REPORT, OPT_TEXT_LEN, OPT_PRECISION };

static const struct cli_opt opts[] = {
    { "tokenizer", 0, "FILE", "spiece.model or tokenizer.json (default: found beside the model)", OPT_TOKENIZER },
    { "prompt", 'p', "TEXT", "a prompt to encode (repeat for more; output prompt.0, prompt.1, ...)", OPT_PROMPT },
    { "scenes", 0, "FILE", "also encode every segment prompt of a scenes.json (after the --prompts; repeat: in order)", OPT_SCENES },
    { "negative", 0, "TEXT", "the negative prompt (default: Wan2.1's own; \"\" encodes the empty prompt)", OPT_NEGATIVE },
    { "no-negative", 0, NULL, "write no negative prompt", OPT_NO_NEGATIVE },
    { "report", 0, "FILE", "the JSON report (default: the output with .json in place of .safetensors)", OPT_REPORT },
    { "text-len", 0, "N", "tokens per prompt, </s> included; longer prompts are cut (default 512, Wan's)", OPT_TEXT_LEN },
    { "precision", 0, "P", "f32 (default), bf16x2 or bf16: how bf16/fp8 weights are multiplied (see Precision)", OPT_PRECISION },
    { 0 },
};

static const struct cli_spec spec = {
    .tool = "text-encode",
    .usage = "[options] -m MODEL (--prompt TEXT)... [--scenes scenes.json] -o OUT.safetensors",
    .summary = "Encode prompts with umT5 (Wan2.1's text encoder) into a safetensors file.",
    .description =
        "Each prompt is cleaned as Wan2.1 does it (HTML character references unescaped twice, whitespace runs\n"
        "made one space, ends stripped; ftfy's mojibake repair is not done), tokenised with the model's\n"
        "SentencePiece tokenizer (spiece.model or tokenizer.json, recognised from its content; ids\n"
        "identical to the sentencepiece / tokenizers libraries) to at most --text-len tokens with </s>, and\n"
        "encoded. Output: prompt.<i> (float32 [L_i, d_model], L_i its true token count, no padding) for the\n"
        "--prompts and then the --scenes segments, and 'negative'. The report (tool, version, task_id, model,\n"
        "prompts [{index, text, ids, tokens, truncated}], negative, memory) goes beside it.\n"
        "\n"
        "Models: a Hugging Face UMT5EncoderModel folder (config.json + model.safetensors or shards), Wan2.1's\n"
        "models_t5_umt5-xxl-enc-bf16.pth (read without running pickle code), ComfyUI's\n"
        "umt5_xxl_fp16 / fp8_e4m3fn_scaled .safetensors, a umT5 GGUF with float weights. Without a\n"
        "config.json the config comes from the tensor shapes and T5's defaults (max distance 128, eps 1e-6).\n"
        "The tokenizer is looked for beside the model, in a sibling tokenizer/ and in google/umt5-xxl/, then in\n"
        "a GGUF model's metadata.\n"
        "\n"
        "Memory: weights stay as stored (bf16 stays bf16, converted a tile at a time). cpu mode reads them\n"
        "from the mapped file. beefy (every layer on the GPU) and lightweight (layers streamed through two\n"
        "GPU buffers) run the nn core's CUDA backend, which has not yet been verified on a card: auto\n"
        "picks cpu (also with a GPU present, and when --vram-reserve leaves no room), and only an explicit\n"
        "--memory-mode beefy|lightweight takes the CUDA path (without CUDA or cuBLAS it says so in one\n"
        "line and encodes on the CPU). The embedding (2 GB in umT5-XXL) stays on the host in every mode.\n"
        "Precision: --precision f32 (the default) multiplies in float32 exactly (within 1e-4 of transformers\n"
        "in float32); bf16 rounds activations to bf16 like transformers in bf16 (about 2x faster where the\n"
        "CPU has AMX; ~1e-2 relative); bf16x2 is in between. The report's encode.precision says which ran.\n"
        "\n"
        "Exit codes: 64 usage, 65 bad data (a corrupt or foreign tokenizer, a tokenizer whose ids reach past\n"
        "the embedding, an empty --scenes, missing or misshapen tensors), 66 a missing input, 69 no model,\n"
        "weights of a type it cannot use, or --memory-mode beefy/lightweight without a GPU, 73 cannot create\n"
        "the output, 75 a GPU mode without room for it now, 130 interrupted. On error nothing is written.",
    .opts = opts,
    .examples = "  text-encode -m models/umt5-xxl -p \"a paper boat on a rainy street\" -o out/text.safetensors\n"
                "  text-encode -m umt5_xxl_fp8_e4m3fn_scaled.safetensors --tokenizer spiece.model --scenes out/scenes.json -o out/text.safetensors\n"
                "  text-encode -m models/umt5-xxl --plan -p x -o /tmp/t.safetensors",
    .default_model = TE_DEFAULT_MODEL,
    .min_args = 0,
    .max_args = 0,
    .common = CLI_C_MODEL | CLI_C_OUTPUT | CLI_C_MEMORY | CLI_C_THREADS,
    .has_gpu_path = 1,
};

struct args {
    const char *tokenizer, *scenes[8], *negative, *report;
    int n_scenes;
    const char **prompts;
    int n_prompts, no_negative, text_len;
    int precision;           /* -1: the nn default (ISOPIPE_NN_PREC or f32) */
};

static int on_opt(void *ctx, int id, const char *arg)
{
    struct args *a = ctx;
    long v = 0;
    int rc = 0;
    switch (id) {
    case OPT_TOKENIZER: a->tokenizer = arg; break;
    case OPT_SCENES:
        if (a->n_scenes >= 8) return iso_fail(ISO_EUSAGE, "--scenes: at most 8 files");
        a->scenes[a->n_scenes++] = arg;
        break;
    case OPT_NEGATIVE: a->negative = arg; break;
    case OPT_NO_NEGATIVE: a->no_negative = 1; break;
    case OPT_REPORT: a->report = arg; break;
    case OPT_TEXT_LEN: if (!(rc = cli_int("text-len", arg, 2, 1 << 16, &v))) a->text_len = (int)v; break;
    case OPT_PRECISION:
        if (!strcmp(arg, "f32")) a->precision = NN_PREC_F32;
        else if (!strcmp(arg, "bf16x2")) a->precision = NN_PREC_BF16X2;
        else if (!strcmp(arg, "bf16")) a->precision = NN_PREC_BF16;
        else rc = iso_fail(ISO_EUSAGE, "--precision: '%s' is not one of f32, bf16x2, bf16", arg);
        break;
    case OPT_PROMPT: {
        if (a->n_prompts >= TE_MAX_PROMPTS) return iso_fail(ISO_EUSAGE, "--prompt: more than %d prompts", TE_MAX_PROMPTS);
        const char **p = realloc(a->prompts, (size_t)(a->n_prompts + 1) * sizeof *p);
        if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
        a->prompts = p;
        a->prompts[a->n_prompts++] = arg;
        break;
    }
    default: rc = iso_fail(ISO_EINTERNAL, "unknown option id %d", id);
    }
    return rc;
}

/* one text to encode */
struct item {
    char *text;              /* cleaned */
    int32_t *ids;
    size_t n_ids;
    int truncated;
    float *out;              /* [n_ids, d_model] */
};

static int add_item(struct item **v, int *n, const char *raw, const char *what)
{
    size_t len = strlen(raw);
    if (len > TE_MAX_PROMPT_BYTES) return iso_fail(ISO_EDATA, "%s: %zu bytes (at most %d)", what, len, TE_MAX_PROMPT_BYTES);
    if (!utf8_valid(raw, len)) return iso_fail(ISO_EDATA, "%s is not UTF-8 text", what);
    struct item *p = realloc(*v, (size_t)(*n + 1) * sizeof *p);
    if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
    *v = p;
    memset(&p[*n], 0, sizeof p[*n]);
    size_t cl;
    int rc = wan_clean(raw, len, &p[*n].text, &cl);
    if (rc) return rc;
    (*n)++;
    return 0;
}

/* scenes.json from prompt-expand: "segments": [{"index", "prompt"}, ...] */
static int add_scenes(const char *path, struct item **v, int *n)
{
    json_t *root = NULL;
    int rc = jsonio_load(path, &root);
    if (rc) return rc;
    json_t *seg = json_object_get(root, "segments"), *e;
    size_t i;
    if (!json_is_array(seg) || json_array_size(seg) == 0) {
        rc = iso_fail(ISO_EDATA, "'%s': no segments to encode", path);
        goto done;
    }
    json_array_foreach(seg, i, e) {
        const char *p = json_string_value(json_object_get(e, "prompt"));
        if (!p) { rc = iso_fail(ISO_EDATA, "'%s': segment %zu has no prompt", path, i); goto done; }
        char what[64];
        snprintf(what, sizeof what, "segment %zu", i);
        if ((rc = add_item(v, n, p, what))) { iso_wrap(rc, "'%s'", path); goto done; }
        if (*n > TE_MAX_PROMPTS) { rc = iso_fail(ISO_EDATA, "'%s': more than %d prompts", path, TE_MAX_PROMPTS); goto done; }
    }
done:
    json_decref(root);
    return rc;
}

/* the tokenizer: --tokenizer, else the first of these beside the model */
static int find_tokenizer(const char *model_path, char **out)
{
    static const char *const rel[] = { "tokenizer.json", "spiece.model", "../tokenizer/tokenizer.json",
                                       "../tokenizer/spiece.model", "google/umt5-xxl/tokenizer.json",
                                       "google/umt5-xxl/spiece.model", "tokenizer/tokenizer.json",
                                       "tokenizer/spiece.model", NULL };
    char *base = fs_is_dir(model_path) ? strdup(model_path) : fs_dirname(model_path);
    if (!base) return iso_fail(ISO_EINTERNAL, "out of memory");
    int rc = 0;
    *out = NULL;
    for (int i = 0; rel[i]; i++) {
        size_t l = strlen(base) + strlen(rel[i]) + 2;
        char *p = malloc(l);
        if (!p) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); break; }
        snprintf(p, l, "%s/%s", base, rel[i]);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) { *out = p; break; }
        free(p);
    }
    if (!rc && !*out)
        rc = iso_fail(ISO_ENOINPUT, "no tokenizer beside the model '%s' (looked for tokenizer.json and spiece.model in "
                      "'%s', its sibling tokenizer/ and google/umt5-xxl/); give --tokenizer FILE", model_path, base);
    free(base);
    return rc;
}

static json_t *ids_json(const struct item *it)
{
    json_t *a = json_array();
    for (size_t k = 0; k < it->n_ids; k++) json_array_append_new(a, json_integer(it->ids[k]));
    return a;
}

static json_t *item_json(const struct item *it, int index)
{
    json_t *o = json_object();
    if (index >= 0) json_object_set_new(o, "index", json_integer(index));
    json_object_set_new(o, "text", json_string(it->text));
    json_object_set_new(o, "ids", ids_json(it));
    json_object_set_new(o, "tokens", json_integer((json_int_t)it->n_ids));
    json_object_set_new(o, "truncated", json_boolean(it->truncated));
    return o;
}

static char *report_path(const struct args *a, const char *out)
{
    if (a->report) return strdup(a->report);
    size_t l = strlen(out);
    char *p = malloc(l + 6);
    if (!p) return NULL;
    if (l > 12 && !strcmp(out + l - 12, ".safetensors")) snprintf(p, l + 6, "%.*s.json", (int)(l - 12), out);
    else snprintf(p, l + 6, "%s.json", out);
    return p;
}

static int run(const struct cli_common *c, struct args *a, struct rt *rt)
{
    int rc = 0, n = 0;
    struct item *items = NULL;          /* prompts, then the negative (last) when there is one */
    char *model_path = NULL, *tok_path = NULL, *config = NULL, *rep = NULL;
    struct weights *w = NULL;
    struct umt5 *m = NULL;
    struct spm *tok = NULL;
    struct nn *nn = NULL;
    struct nn_wres *wres = NULL, *wres_plan = NULL;
    int *gstart = NULL;
    struct st_out *tensors = NULL;
    char (*names)[32] = NULL;
    json_t *root = NULL;
    int wrote = 0;
    const char *out = c->output;

    if (!out) { rc = iso_fail(ISO_EUSAGE, "missing -o OUT.safetensors"); goto done; }
    if (!a->n_prompts && !a->n_scenes) { rc = iso_fail(ISO_EUSAGE, "nothing to encode: give --prompt TEXT or --scenes FILE"); goto done; }
    if (a->no_negative && a->negative) { rc = iso_fail(ISO_EUSAGE, "--negative and --no-negative together"); goto done; }
    if (!(rep = report_path(a, out))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    {   /* fail before loading anything when the outputs cannot be created */
        const char *paths[2] = { out, rep };
        for (int i = 0; i < 2 && !rc; i++) {
            char *dir = fs_dirname(paths[i]);
            if (!dir || !fs_is_dir(dir)) rc = iso_fail(ISO_ECANTCREAT, "cannot create '%s': '%s' is not a directory", paths[i], dir ? dir : "?");
            free(dir);
        }
        if (!rc && !strcmp(out, rep)) rc = iso_fail(ISO_EUSAGE, "--report and -o name the same file '%s'", out);
        if (rc) goto done;
    }
    for (int i = 0; i < a->n_prompts; i++) {
        char what[32];
        snprintf(what, sizeof what, "--prompt %d", i);
        if ((rc = add_item(&items, &n, a->prompts[i], what))) goto done;
    }
    for (int i = 0; i < a->n_scenes; i++)
        if ((rc = add_scenes(a->scenes[i], &items, &n))) goto done;
    int n_prompts = n;
    if (!a->no_negative && (rc = add_item(&items, &n, a->negative ? a->negative : wan_negative, "--negative"))) goto done;

    static const char *const exts[] = { ".safetensors", ".pth", ".gguf", NULL };
    if ((rc = model_find_dir(c->model ? c->model : TE_DEFAULT_MODEL, exts, &model_path))) goto done;
    if ((rc = weights_open(model_path, &w))) goto done;
    if (fs_is_dir(model_path)) {
        size_t l = strlen(model_path) + 13;
        if (!(config = malloc(l))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        snprintf(config, l, "%s/config.json", model_path);
        if (!fs_exists(config)) { free(config); config = NULL; }
    }
    if ((rc = umt5_open(w, config, &m))) goto done;
    const struct umt5_config *cfg = umt5_config(m);
    if (a->tokenizer) {
        if (!(tok_path = strdup(a->tokenizer))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    } else if ((rc = find_tokenizer(model_path, &tok_path))) {
        /* a GGUF may carry its tokenizer in its metadata */
        if (rc != ISO_ENOINPUT || weights_format(w) != WT_FMT_GGUF || spm_load_gguf(model_path, &tok)) goto done;
        iso_errclear();
        rc = 0;
        if (!(tok_path = strdup(model_path))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    }
    if (!tok && (rc = spm_load(tok_path, &tok))) goto done;
    if (spm_n_ids(tok) > cfg->vocab_rows) {
        rc = iso_fail(ISO_EDATA, "tokenizer '%s' has ids up to %d but the model '%s' has %d embedding rows", tok_path,
                      spm_n_ids(tok) - 1, model_path, cfg->vocab_rows);
        goto done;
    }
    log_verbose("model '%s': %s layout, %d layers, d_model %d, %d heads x %d, d_ff %d, %d buckets, max distance %d "
                "(config from %s); tokenizer '%s' (%s)", model_path, umt5_layout(m), cfg->n_layers, cfg->d_model,
                cfg->n_heads, cfg->d_kv, cfg->d_ff, cfg->n_buckets, cfg->max_distance, cfg->source, tok_path,
                spm_format_name(tok));

    int Lmax = 1;
    uint64_t out_bytes = 0;
    for (int i = 0; i < n; i++) {
        struct item *it = &items[i];
        if ((rc = spm_encode(tok, it->text, strlen(it->text), a->text_len, &it->ids, &it->n_ids, &it->truncated))) goto done;
        for (size_t k = 0; k < it->n_ids; k++)
            if (it->ids[k] < 0 || it->ids[k] >= cfg->vocab_rows) {
                rc = iso_fail(ISO_EDATA, "tokenizer '%s' gave id %d, past the %d embedding rows of '%s'", tok_path,
                              it->ids[k], cfg->vocab_rows, model_path);
                goto done;
            }
        if (it->truncated)
            log_warn("%s %d: longer than %d tokens, cut to %d (as Wan's tokenizer call does)",
                     i < n_prompts ? "prompt" : "negative prompt", i < n_prompts ? i : 0, a->text_len, a->text_len);
        if ((int)it->n_ids > Lmax) Lmax = (int)it->n_ids;
        out_bytes += (uint64_t)it->n_ids * (uint64_t)cfg->d_model * sizeof(float);
    }

    /* groups of consecutive prompts encoded together (layer by layer) */
    int n_groups = 0, group_B = 1, group_tokens = 1;
    gstart = malloc((size_t)(n + 1) * sizeof *gstart);
    if (!gstart) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    for (int i = 0; i < n;) {
        int j = i, tokens = 0;
        while (j < n && (j == i || tokens + (int)items[j].n_ids <= TE_GROUP_TOKENS)) tokens += (int)items[j++].n_ids;
        gstart[n_groups++] = i;
        if (j - i > group_B) group_B = j - i;
        if (tokens > group_tokens) group_tokens = tokens;
        i = j;
    }
    gstart[n_groups] = n;

    /* Where the weights live: registered with nn_wres (the final norm
     * resident, each layer a block); its sizes plan the GPU modes. The
     * embedding and the bias tables stay on the host in every mode. */
    if (!(wres_plan = nn_wres_new(NN_WRES_MAPPED, cfg->n_layers)) || (rc = umt5_wres_register(m, wres_plan))) {
        if (!rc) rc = ISO_EINTERNAL;
        goto done;
    }
    struct plan_blocks pb;
    struct mem_plan plan;
    memset(&pb, 0, sizeof pb);
    /* blocks = packed layers (as stored), resident = the final norm as
     * uploaded, upload_extra = what beefy's uploads add (fp8 as bf16) */
    nn_wres_plan_blocks(wres_plan, &pb);
    nn_wres_free(&wres_plan);
    umt5_wres_register(m, NULL);
    struct stat tst;
    uint64_t tok_bytes = stat(tok_path, &tst) == 0 ? (uint64_t)tst.st_size : 0;
    /* one group's activations + nn's fixed buffers (two 64 MiB conversion
     * slices on the CPU; cuBLAS workspace and two slices on CUDA) */
    uint64_t fixed = nn_cuda_fixed_bytes() > (UINT64_C(128) << 20) ? nn_cuda_fixed_bytes() : (UINT64_C(128) << 20);
    uint64_t act_bound = umt5_scratch_bytes(cfg, Lmax, group_tokens, group_B);
    pb.activations = nn_act_reserve_bytes(act_bound) + fixed;
    /* code and buffers, the outputs, the tokenizer while it is parsed (a JSON
     * tree is ~8x its text), the embedding and the bias tables (host in
     * every mode), the host copies of one group's embedding rows and tables */
    pb.host_base = (UINT64_C(64) << 20) + 2 * out_bytes + 8 * tok_bytes + umt5_host_bytes(m) +
                   ((uint64_t)Lmax * (uint64_t)cfg->d_model + 2 * (uint64_t)cfg->n_heads * (uint64_t)group_tokens +
                    2 * (uint64_t)group_tokens + 64 * (uint64_t)group_B) * sizeof(float);
    pb.cpu_ok = 1;
    /* GPU modes: in a CUDA build, or on a pretend device (ISOPIPE_FAKE_GPU),
     * where they compute with NN_CPU but keep the weights as the mode does */
#ifdef ISOPIPE_CUDA
    pb.gpu_ok = 1;
#else
    pb.gpu_ok = gpu_is_fake();
#endif
    pb.gpu_explicit_only = !NN_CUDA_MODELS_VERIFIED;
    char pname[256];
    const char *base = strrchr(model_path, '/');
    snprintf(pname, sizeof pname, "umT5 %s (%s)", base && base[1] ? base + 1 : model_path, umt5_layout(m));
    if ((rc = plan_from_blocks(&plan, pname, &pb))) goto done;
    if (c->plan_only) {
        json_t *extra = json_object();
        json_object_set_new(extra, "prompts", json_integer(n_prompts));
        json_object_set_new(extra, "max_tokens", json_integer(Lmax));
        json_object_set_new(extra, "host_only_bytes", json_integer((json_int_t)umt5_host_bytes(m)));
        rc = rt_print_plan(rt, &plan, extra);
        goto done;
    }
    enum mem_mode mode;
    if ((rc = rt_admit(rt, &plan, &mode))) goto done;
    int gpu_mode = mode == MEM_MODE_BEEFY || mode == MEM_MODE_LIGHTWEIGHT;
    enum nn_backend backend = gpu_mode && !gpu_is_fake() ? NN_CUDA : NN_CPU;
    rt_load_begin(rt);
    rc = nn_new(&nn, backend, cli_threads(c));
    if (rc == ISO_EUNAVAIL && backend == NN_CUDA) {
        char why[256];
        snprintf(why, sizeof why, "%s", iso_errmsg());
        iso_errclear();
        gpu_mode = 0;
        rc = rt_fallback_cpu(rt, why); /* the reservation goes back */
        if (!rc) rc = nn_new(&nn, NN_CPU, cli_threads(c));
    }
    enum nn_wres_mode wmode = !gpu_mode ? NN_WRES_MAPPED : mode == MEM_MODE_BEEFY ? NN_WRES_RESIDENT : NN_WRES_STREAMED;
    if (!rc && !(wres = nn_wres_new(wmode, cfg->n_layers))) rc = ISO_EINTERNAL;
    if (!rc) rc = umt5_wres_register(m, wres);
    if (!rc) rc = nn_wres_load(wres, nn);
    /* a GPU mode (on a pretend device: the CPU's shadow of the device's heaps) */
    if (!rc && gpu_mode) rc = nn_reserve(nn, act_bound);
    if (!rc) rc = umt5_reserve(m, nn, Lmax, group_tokens, group_B);
    rt_load_end(rt);
    if (rc) goto done;
    if (a->precision >= 0) nn_set_precision(nn, (enum nn_precision)a->precision);

    double t0 = mem_now();
    uint64_t total_tokens = 0;
    for (int g = 0; g < n_groups; g++) {
        if (sig_interrupted()) { rc = sig_check(); goto done; }
        int i0 = gstart[g], B = gstart[g + 1] - i0;
        const int32_t *ids[TE_GROUP_TOKENS];
        int lens[TE_GROUP_TOKENS];
        float *outs[TE_GROUP_TOKENS];
        for (int b = 0; b < B; b++) {
            struct item *it = &items[i0 + b];
            it->out = malloc(it->n_ids * (size_t)cfg->d_model * sizeof(float));
            if (!it->out) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
            ids[b] = it->ids;
            lens[b] = (int)it->n_ids;
            outs[b] = it->out;
            total_tokens += it->n_ids;
        }
        if ((rc = umt5_encode_batch(m, nn, ids, lens, B, outs))) goto done;
    }
    double secs = mem_now() - t0;

    tensors = calloc((size_t)n, sizeof *tensors);
    names = calloc((size_t)n, sizeof *names);
    if (!tensors || !names) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        if (i < n_prompts) snprintf(names[i], sizeof names[i], "prompt.%d", i);
        else snprintf(names[i], sizeof names[i], "negative");
        tensors[i].name = names[i];
        tensors[i].dtype = ST_F32;
        tensors[i].n_dims = 2;
        tensors[i].shape[0] = items[i].n_ids;
        tensors[i].shape[1] = (uint64_t)cfg->d_model;
        tensors[i].data = items[i].out;
    }

    root = jsonio_header_new();
    json_t *mj = json_object();
    jsonio_set_path(mj, "path", rep, model_path);
    json_object_set_new(mj, "format", json_string(weights_format_name(w)));
    json_object_set_new(mj, "layout", json_string(umt5_layout(m)));
    json_t *cj = json_object();
    json_object_set_new(cj, "d_model", json_integer(cfg->d_model));
    json_object_set_new(cj, "num_heads", json_integer(cfg->n_heads));
    json_object_set_new(cj, "d_kv", json_integer(cfg->d_kv));
    json_object_set_new(cj, "num_layers", json_integer(cfg->n_layers));
    json_object_set_new(cj, "d_ff", json_integer(cfg->d_ff));
    json_object_set_new(cj, "relative_attention_num_buckets", json_integer(cfg->n_buckets));
    json_object_set_new(cj, "relative_attention_max_distance", json_integer(cfg->max_distance));
    char epsb[32];
    snprintf(epsb, sizeof epsb, "%.7g", (double)cfg->eps);   /* as written in config.json, not as float widened */
    json_object_set_new(cj, "layer_norm_epsilon", json_real(strtod(epsb, NULL)));
    json_object_set_new(cj, "embedding_rows", json_integer(cfg->vocab_rows));
    json_object_set_new(cj, "source", json_string(cfg->source));
    json_object_set_new(mj, "config", cj);
    json_t *tj = json_object();
    jsonio_set_path(tj, "path", rep, tok_path);
    json_object_set_new(tj, "format", json_string(spm_format_name(tok)));
    json_object_set_new(mj, "tokenizer", tj);
    json_object_set_new(root, "model", mj);
    json_object_set_new(root, "output", json_string(out));
    json_object_set_new(root, "text_len", json_integer(a->text_len));
    json_t *pj = json_array();
    for (int i = 0; i < n_prompts; i++) json_array_append_new(pj, item_json(&items[i], i));
    json_object_set_new(root, "prompts", pj);
    json_object_set_new(root, "negative", n > n_prompts ? item_json(&items[n_prompts], -1) : json_null());
    json_t *ej = json_object();
    json_object_set_new(ej, "tokens", json_integer((json_int_t)total_tokens));
    json_object_set_new(ej, "seconds", json_real(secs));
    json_object_set_new(ej, "tokens_per_second", json_real(secs > 0 ? (double)total_tokens / secs : 0));
    json_object_set_new(ej, "threads", json_integer(cli_threads(c)));
    json_object_set_new(ej, "blas", json_string(nn_blas_info()));
    static const char *const prec_names[] = { "f32", "bf16x2", "bf16" };
    json_object_set_new(ej, "precision", json_string(prec_names[nn_precision(nn)]));
    json_object_set_new(ej, "backend", json_string(nn_backend_info(nn)));
    json_object_set_new(ej, "gemm", json_string(nn_gemm_info(nn)));
    json_object_set_new(ej, "groups", json_integer(n_groups));
    json_object_set_new(root, "encode", ej);

    static const char *const meta[] = { "tool", "text-encode", "model", "umT5 encoder states, float32 [tokens, d_model]", NULL };
    if ((rc = st_write(out, tensors, (size_t)n, meta))) goto done;
    wrote = 1;
    json_t *memj = rt_memory_json(rt);
    {   /* where the weights lived; streamed: what was copied */
        json_object_set_new(memj, "weights", json_string(nn_wres_mode_name(wmode)));
        json_object_set_new(memj, "weights_on_host", json_integer((json_int_t)umt5_host_bytes(m)));
        struct nn_act_stats ast;
        nn_act_stats(nn, &ast);
        jsonio_set_act_stats(memj, &ast);
        if (wmode == NN_WRES_STREAMED) {
            uint64_t copies, hits, bytes;
            nn_wres_stats(wres, &copies, &hits, &bytes);
            json_t *sj = json_object();
            json_object_set_new(sj, "copies", json_integer((json_int_t)copies));
            json_object_set_new(sj, "prefetched", json_integer((json_int_t)hits));
            json_object_set_new(sj, "bytes", json_integer((json_int_t)bytes));
            json_object_set_new(memj, "stream", sj);
        }
    }
    json_object_set_new(root, "memory", memj);
    if ((rc = jsonio_write_atomic(rep, root))) goto done;
    wrote = 0;
    log_info("%d prompt%s%s encoded to '%s' (%" PRIu64 " tokens, %.2f s, %s)", n_prompts, n_prompts == 1 ? "" : "s",
             n > n_prompts ? " and the negative" : "", out, total_tokens, secs, mem_mode_name(mode));
done:
    if (wrote) unlink(out);     /* the report failed: leave no half of the pair behind */
    if (nn) rt_cleanup_begin(rt);
    json_decref(root);
    for (int i = 0; items && i < n; i++) {
        free(items[i].text);
        free(items[i].ids);
        free(items[i].out);
    }
    free(items);
    free(tensors);
    free(names);
    free(gstart);
    if (m) umt5_release(m, nn);
    nn_wres_free(&wres);
    nn_wres_free(&wres_plan);
    nn_free(&nn);
    spm_free(&tok);
    umt5_free(&m);
    weights_close(&w);
    free(model_path);
    free(tok_path);
    free(config);
    free(rep);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli_common c;
    struct args a;
    int first;
    memset(&a, 0, sizeof a);
    a.text_len = TE_TEXT_LEN;
    a.precision = -1;
    int rc = cli_parse(&spec, argc, argv, &c, on_opt, &a, &first);
    if (rc == 1) { free(a.prompts); return 0; }
    if (rc < 0) { free(a.prompts); return iso_exit_code(rc); }
    if ((rc = cli_start(&spec, &c))) { free(a.prompts); return cli_finish(rc); }
    struct rt *rt = NULL;
    sig_install();
    rc = rt_begin(&c, &rt);
    if (rc == 0) rc = run(&c, &a, rt);
    rc = rt_end(&rt, rc);
    free(a.prompts);
    return cli_finish(rc);
}
