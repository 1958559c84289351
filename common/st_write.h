/* st_write.h — writing safetensors files (the format read by safetensors.h):
 * the tensor files tools hand to each other (text embeddings, latents, VACE
 * contexts) are float32 safetensors without a batch dimension (docs/).
 * The file appears whole or not at all (fs_write_atomic); its bytes depend
 * only on the tensors and metadata given (tensors in the order given, keys
 * of the header in a fixed order, no timestamps), so identical runs write
 * identical files. The caller keeps ownership of everything it passes. */
#ifndef ISOPIPE_ST_WRITE_H
#define ISOPIPE_ST_WRITE_H
#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

struct st_out {
    const char *name;
    enum st_dtype dtype;
    int n_dims;
    uint64_t shape[ST_MAX_DIMS];
    const void *data;        /* shape product * dtype size bytes */
};

/* meta_kv: NULL or NULL-terminated key, value, key, value, ... strings for
 * "__metadata__". ISO_EUSAGE for a bad description (empty or duplicate
 * name, unknown dtype), ISO_ECANTCREAT / ISO_EIO from the write. */
int st_write(const char *path, const struct st_out *t, size_t n, const char *const *meta_kv);
#endif
