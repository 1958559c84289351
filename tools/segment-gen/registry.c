/* registry.c — the models -m can name: the morph (morph_model.c) and RIFE
 * (rife.c). A new model is one more entry here and one more file beside them. */
#include <stdio.h>
#include <string.h>

#include "segmodel.h"

static const struct segmodel_ops *const models[] = {
    &segmodel_morph,
    &segmodel_rife,
};
#define NMODELS (sizeof models / sizeof models[0])

const struct segmodel_ops *segmodel_find(const char *name)
{
    for (size_t i = 0; i < NMODELS; i++)
        if (strcmp(models[i]->name, name) == 0) return models[i];
    return NULL;
}

const char *segmodel_names(void)
{
    static char buf[256];
    if (buf[0]) return buf;
    size_t n = 0;
    for (size_t i = 0; i < NMODELS && n < sizeof buf; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? ", " : "", models[i]->name);
    return buf;
}
