/* ptckpt.h — reader for PyTorch checkpoints in the zip format torch.save has
 * written since 1.6, without executing anything. The layout (torch/
 * serialization.py, caffe2 PyTorchStreamWriter): a zip archive whose entries
 * all sit under one root folder: `<root>/data.pkl` (the pickled object,
 * protocol 2), `<root>/byteorder` ("little"; absent in files older than
 * torch 1.12, which were little-endian), and one STORED (uncompressed) entry
 * `<root>/data/<key>` per tensor storage, its data aligned to 64 bytes in
 * the file. The zip's central directory (ZIP64 included) is read by our own
 * code and every offset and size is checked against the file size; the
 * storages are used in place through the read-only mapping.
 *
 * data.pkl is run by a restricted pickle machine: only the opcodes a state
 * dict needs and a whitelist of globals (OrderedDict, the torch tensor and
 * parameter rebuild functions, the storage classes, torch dtypes). Anything
 * else — os.system, builtins.eval, an unknown __reduce__ — is refused with
 * ISO_EDATA naming it; nothing in the file can make the reader call code.
 *
 * The state dict is looked up under "state_dict", "model", "params", "module"
 * or at the top level; nested dicts give dotted names ("encoder.conv.weight").
 * The struct owns the mapping and every table; tensors point into it. */
#ifndef ISOPIPE_PTCKPT_H
#define ISOPIPE_PTCKPT_H
#include <stddef.h>
#include <stdint.h>

#include "weights.h"   /* enum wt_dtype, WT_MAX_DIMS (declarations only) */

struct pt_tensor {
    char *name;              /* dotted, as found in the (nested) state dict */
    enum wt_dtype dtype;     /* never WT_GGML */
    int n_dims;
    int64_t shape[WT_MAX_DIMS];
    int64_t strides[WT_MAX_DIMS];  /* in elements, as saved (a view may be non-contiguous) */
    int contiguous;          /* strides are the row-major ones of shape */
    uint64_t storage_offset; /* in elements, into the storage */
    const char *storage;     /* the storage key ("0", "1", ...; owned): tensors may share a storage */
    uint64_t nelem;
    uint64_t nbytes;         /* bytes from the first element to one past the furthest one */
    const void *data;        /* into the mapping: storage start + storage_offset elements */
};

struct ptckpt {
    const uint8_t *map; size_t size; int fd;   /* fd -1 and map not owned for ptckpt_open_mem */
    char *root;              /* the archive's root folder */
    uint64_t n_tensors;
    struct pt_tensor *tensors;   /* in pickle (state dict) order */
    void *priv;              /* zip table (private) */
};

/* Open + parse + validate. ISO_ENOINPUT missing, ISO_EDATA malformed or
 * hostile (the message says what: "global 'posix.system' is not allowed"),
 * ISO_EUNAVAIL a legacy (pre-1.6, non-zip) checkpoint: the message says how
 * to re-save it. */
int ptckpt_open(const char *path, struct ptckpt **out);
/* parse an in-memory buffer (tests, fuzzing); buf must outlive the struct */
int ptckpt_open_mem(const uint8_t *buf, size_t len, struct ptckpt **out);
void ptckpt_close(struct ptckpt **p);
const struct pt_tensor *ptckpt_find(const struct ptckpt *p, const char *name);
#endif
