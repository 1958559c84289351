/* model.h — finding a model by name or path (docs/DESIGN.md): a value with a '/'
 * or an existing file is a path; otherwise NAME is looked up in each
 * directory of $ISOPIPE_MODELS (colon-separated), then ./models, then
 * <prefix>/share/isopipe/models, as NAME itself and as NAME + each of the
 * given extensions. Missing: ISO_EUNAVAIL with every path tried. */
#ifndef ISOPIPE_MODEL_H
#define ISOPIPE_MODEL_H

/* exts: NULL-terminated list such as {".gguf", NULL}; *path is malloc'd */
int model_find(const char *name, const char *const *exts, char **path);
#endif
