/* model.h — finding a model by name or path (docs/DESIGN.md, "Models").
 * A value with a '/' or naming an existing file is a path. Otherwise NAME is
 * looked up, as NAME itself and as NAME + each of the given extensions, in:
 *   1. each directory of $ISOPIPE_MODELS (colon-separated),
 *   2. $XDG_DATA_HOME/isopipe/models (default ~/.local/share/isopipe/models),
 *      where `isopipe-models` puts what it fetches,
 *   3. <prefix>/share/isopipe/models, the prefix derived at run time from the
 *      executable's own location (<prefix>/bin/TOOL, via /proc/self/exe),
 *   4. <dir of the executable>/../models: a checkout's models/ beside bin/.
 * Nothing is baked in at build time, so an installed tree can be moved.
 * Missing: ISO_EUNAVAIL naming every path tried and the command that fetches
 * the default models from where the user is (`make -C CHECKOUT models` in a
 * checkout, `isopipe-models` for an installed tree). */
#ifndef ISOPIPE_MODEL_H
#define ISOPIPE_MODEL_H

/* exts: NULL-terminated list such as {".gguf", NULL}; *path is malloc'd.
 * Only regular files are models. */
int model_find(const char *name, const char *const *exts, char **path);
/* the same, and a directory is a model too (a diffusers / Hugging Face
 * folder with config.json and safetensors shards) */
int model_find_dir(const char *name, const char *const *exts, char **path);

/* The lookup directories in order, as one malloc'd string of
 * NUL-separated entries ending with an empty one; for --help and docs. */
char *model_search_path(void);
/* "make -C '/path/to/checkout' models" or "isopipe-models" (static) */
const char *model_fetch_hint(void);
#endif
