/* ptckpt.c — PyTorch zip checkpoints (see ptckpt.h). Interim: the reader
 * lands in the next commit; until then every checkpoint is refused. */
#include "ptckpt.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

int ptckpt_open_mem(const uint8_t *buf, size_t len, struct ptckpt **out)
{
    (void)buf; (void)len;
    *out = NULL;
    return iso_fail(ISO_EUNAVAIL, "PyTorch checkpoints are not readable yet");
}

int ptckpt_open(const char *path, struct ptckpt **out)
{
    *out = NULL;
    return iso_fail(ISO_EUNAVAIL, "'%s': PyTorch checkpoints are not readable yet", path);
}

void ptckpt_close(struct ptckpt **p) { *p = NULL; }

const struct pt_tensor *ptckpt_find(const struct ptckpt *p, const char *name)
{
    for (uint64_t i = 0; i < p->n_tensors; i++)
        if (strcmp(p->tensors[i].name, name) == 0) return &p->tensors[i];
    return NULL;
}
