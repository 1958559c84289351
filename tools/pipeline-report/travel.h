/* travel.h — the pieces of the travel pipeline's Make driver
 * (pipelines/travel.mk) that are easier to get right in C than in Make or
 * sh: reading the topic file once, with the same parser as the tools
 * (common/topic.h), and printing what Make needs as variables; stamp files
 * that change only when a stage's parameters change; and the stage runner
 * that times a tool, retries it once in lightweight mode after exit 75 and
 * checks that free VRAM came back. Every function returns 0 or a negative
 * ISO_E* status with the message set (common/err.h). */
#ifndef ISOPIPE_TRAVEL_H
#define ISOPIPE_TRAVEL_H
#include <stddef.h>

struct travel_vars_opts {
    const char *seg_model;   /* "morph" needs >= 2 keyframes, one segment per pair; "wan": MODEL=wan */
    const char *prompt_topic;/* where the prompt stage's topic goes (NULL: not written) */
    /* wan: ROLE=NAME|PATH of every model the run needs (WAN_DIT=wan2.1-vace-1.3b, ...),
     * found the way the tools find them (common/model.h) before anything runs */
    int nmodels;
    char **models;
    const char *key_topic;   /* wan: the keyframe prompts' topic (written when keyframes are generated) */
    const char *negative;    /* wan: where the topic's negative prompt goes (removed when it has none) */
};

/* Loads and checks the topic file (keyframes exist, are PNGs of one size,
 * enough of them for the model, paths Make can carry) and writes the Make
 * variables to vars_path, and the prompt topic (topic text, segments, seed
 * only, so that editing keyframes does not re-run the LLM) when asked. Both
 * are rewritten only when their content changes. */
int travel_topic_vars(const char *topic_path, const char *vars_path, const struct travel_vars_opts *o);
/* the same for MODEL=wan (docs/pipeline.md, "Wan"): keyframes optional (generated
 * by the T2V model when absent), Wan's knobs, frames 4k+1, sizes multiples of
 * 16, every model present (69 naming each missing one and `make models-wan`),
 * a VACE checkpoint where T2V is needed and the reverse refused */
int travel_topic_vars_wan(const char *topic_path, const char *vars_path, const struct travel_vars_opts *o);

/* Writes len bytes to path atomically unless path already holds exactly
 * them, so its mtime moves only when the content does (Make stamps). */
int travel_write_if_changed(const char *path, const char *data, size_t len);

/* stamp file of the sha256, dtype and shape of each named tensor of a weights
 * file, rewritten only when one changes */
int travel_tensor_stamp(const char *stamp, const char *file, int nnames, char **names);

/* stamp file: the words, one per line */
int travel_stamp(const char *path, int nwords, char **words);

/* 1 when every byte of a path is one Make and sh carry unquoted */
int travel_path_ok(const char *p);

struct travel_run_opts {
    const char *dir;          /* the run's bookkeeping folder (OUT/.travel) */
    const char *name;         /* stage name, e.g. "seg_001" */
    const char *kind;         /* prompt | flow | segment | stitch */
    const char *json;         /* the stage's JSON output (read after the run for its memory mode) */
    const char *mode;         /* --memory-mode for the first attempt */
    const char *probe;        /* vram-probe binary, NULL or missing: no GPU check */
    double baseline_timeout;  /* seconds vram-probe --wait-baseline may wait */
    int baseline_tol_mib;     /* tolerance passed along (0: the probe's default) */
    const char *sweep;        /* folder where the stage publishes: stale temporaries go first */
};

/* Removes the temporaries (fs_tmp_sibling names) in dir whose process is
 * dead: what a kill -9 or power loss left behind. Count in *removed. */
int travel_sweep(const char *dir, int *removed);

/* Runs argv (argv[argc] == NULL) as the stage, with --memory-mode, --task-id
 * and --log-json appended; on exit 75 in auto or beefy mode runs it once more
 * in lightweight mode. Writes DIR/records/NAME.json and appends to DIR/run.log.
 * Returns the tool's exit status (0..255), or a negative status when the
 * runner itself failed. */
int travel_run(const struct travel_run_opts *o, int argc, char **argv);

/* batch summary: argv holds NAME EXIT WALL OUTDIR fours; prints the table to
 * stdout and the number of failed runs in *failed */
int travel_summary(int argc, char **argv, int *failed);
#endif
