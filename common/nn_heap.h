/* nn_heap.h — the activation allocator of the nn core's CUDA backend, as
 * offsets: a region of `size` bytes handed out best-fit (the smallest free
 * range that holds the request; the lowest offset among equals), split on
 * allocation and merged with its free neighbours on release, so a forward
 * pass that frees what it allocated leaves one free range behind.
 *
 * It knows nothing of devices: nn_cuda.cu adds the offsets to a chunk's
 * device address, and on NN_CPU nn.c runs the same heaps as a shadow of
 * what the device would hold (nn_reserve on a pretend device), so the
 * plan's activation bound is checked against the real allocation sequence,
 * fragmentation included, without a card.
 *
 * Two ends: short-lived tensors are carved from the bottom, long-lived ones
 * (nn_heap_alloc_top: a model's caches that outlive many calls) from the
 * top, so what stays does not split the room the temporaries reuse.
 *
 * Counters: used (bytes allocated now), peak (the most used at once), high
 * (the highest end any bottom allocation reached), top (the most bytes from
 * the region's end any top allocation reached). high + top bounds what the
 * sequence needed of the region; what fragmentation adds shows against
 * peak. */
#ifndef ISOPIPE_NN_HEAP_H
#define ISOPIPE_NN_HEAP_H
#include <stdint.h>

struct nn_heap_blk { uint64_t off, size; int free; };
struct nn_heap {
    struct nn_heap_blk *b; /* by offset, covering [0, size) */
    int n, cap;
    uint64_t size, align, used, peak, high, top;
    int reserved; /* nn_heaps: made by nn_reserve */
};

/* a region of `size` bytes, allocations rounded up to `align` (a power of
 * two); 0, or ISO_EINTERNAL when host memory runs out */
int nn_heap_init(struct nn_heap *h, uint64_t size, uint64_t align);
void nn_heap_fini(struct nn_heap *h);
/* 0 and *off; 1 when no free range holds `bytes` (no message: the caller
 * decides); ISO_EINTERNAL when host memory runs out. bytes 0 counts as 1. */
int nn_heap_alloc(struct nn_heap *h, uint64_t bytes, uint64_t *off);
/* the same from the top: the end of the highest free range that holds it */
int nn_heap_alloc_top(struct nn_heap *h, uint64_t bytes, uint64_t *off);
/* release the allocation at off (*bytes: its rounded size); ISO_EINTERNAL
 * when off is not the start of an allocation */
int nn_heap_free(struct nn_heap *h, uint64_t off, uint64_t *bytes);

/* The regions of one nn context: reserved ones (nn_reserve: what the plan
 * computed) and ones added on demand when nothing reserved holds a request
 * (NN_CUDA_CHUNK or the request). An allocation is (region k, offset). */
struct nn_heaps {
    struct nn_heap *h;
    int n;
    uint64_t used, peak; /* over every region */
};
/* a new region of `size` (reserved 1: from nn_reserve) */
int nn_heaps_add(struct nn_heaps *s, uint64_t size, uint64_t align, int reserved);
/* the first region (in the order added) that holds bytes (top: from its
 * top end): 0, or 1 when none does */
int nn_heaps_alloc(struct nn_heaps *s, uint64_t bytes, int top, int *k, uint64_t *off);
/* release (k, off): 0, or ISO_EINTERNAL when it is not an allocation */
int nn_heaps_free(struct nn_heaps *s, int k, uint64_t off);
void nn_heaps_fini(struct nn_heaps *s);

/* what an nn context's activations took (nn_act_stats in nn.h) */
struct nn_act_stats {
    uint64_t reserved; /* bytes reserved up front (nn_reserve) */
    uint64_t high;     /* of those, how much the sequence needed (nn_heap's high + top) */
    uint64_t peak;     /* the most bytes allocated at once, every region */
    uint64_t beyond;   /* bytes of regions added past the reservation */
};
void nn_heaps_stats(const struct nn_heaps *s, struct nn_act_stats *st);
#endif
