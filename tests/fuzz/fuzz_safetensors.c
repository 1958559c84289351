/* fuzz_safetensors.c — libFuzzer target for the safetensors reader
 * (st_open_mem), whose header is JSON: the other JSON reader in common/.
 * A buffer either fails with ISO_EDATA or opens into a table whose every
 * tensor lies inside the buffer, after the header, with shape x dtype size
 * equal to its byte count, non-empty ones sorted by offset and not
 * overlapping, and every one findable by name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct safetensors *st = NULL;
    int rc = st_open_mem(data, size, &st);
    if (rc) {
        if (rc != ISO_EDATA || st) abort();
        return 0;
    }
    if (!st || st->data_start != 8 + st->header_len || st->data_start > size) abort();
    uint64_t prev_end = st->data_start, largest = 0;
    for (uint64_t i = 0; i < st->n_tensors; i++) {
        const struct st_tensor *t = &st->tensors[i];
        if (!t->name || t->n_dims < 0 || t->n_dims > ST_MAX_DIMS) abort();
        uint64_t n = st_dtype_size(t->dtype);
        for (int k = 0; k < t->n_dims; k++) n *= t->shape[k];
        if (n != t->nbytes) abort();
        if (t->offset < st->data_start || t->offset > size || t->nbytes > size - t->offset) abort();
        /* empty tensors may sit anywhere (the reader accepts [1,1] inside [0,2];
         * the reference implementation would refuse it, harmlessly) */
        if (t->nbytes && t->offset < prev_end) abort();
        if (t->nbytes && (const uint8_t *)t->data != data + t->offset) abort();
        if (t->nbytes) prev_end = t->offset + t->nbytes;
        if (t->nbytes > largest) largest = t->nbytes;
        if (st_find(st, t->name) != t) abort();
        volatile uint8_t sum = 0;
        for (uint64_t b = 0; b < t->nbytes; b++) sum += ((const uint8_t *)t->data)[b];
    }
    if (largest != st->largest) abort();
    st_close(&st);
    if (st) abort();
    return 0;
}
