/* nn_heap.c — best-fit allocation of offsets with merging (nn_heap.h) */
#include "nn_heap.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

int nn_heap_init(struct nn_heap *h, uint64_t size, uint64_t align)
{
    memset(h, 0, sizeof *h);
    if (!align || (align & (align - 1))) return iso_fail(ISO_EINTERNAL, "nn heap: alignment %llu", (unsigned long long)align);
    h->cap = 16;
    if (!(h->b = malloc((size_t)h->cap * sizeof *h->b))) return iso_fail(ISO_EINTERNAL, "out of memory");
    h->size = size & ~(align - 1);
    h->align = align;
    h->b[0] = (struct nn_heap_blk){ 0, h->size, 1 };
    h->n = h->size ? 1 : 0;
    return 0;
}

void nn_heap_fini(struct nn_heap *h)
{
    free(h->b);
    memset(h, 0, sizeof *h);
}

/* room for one more block */
static int grow(struct nn_heap *h)
{
    if (h->n < h->cap) return 0;
    struct nn_heap_blk *b = realloc(h->b, (size_t)h->cap * 2 * sizeof *b);
    if (!b) return iso_fail(ISO_EINTERNAL, "out of memory");
    h->b = b;
    h->cap *= 2;
    return 0;
}

static int alloc_at(struct nn_heap *h, uint64_t bytes, int top, uint64_t *off)
{
    if (!bytes) bytes = 1;
    if (bytes > h->size) return 1;
    bytes = (bytes + h->align - 1) & ~(h->align - 1);
    int best = -1;
    if (top) { /* the highest free range that holds it */
        for (int i = h->n - 1; i >= 0 && best < 0; i--)
            if (h->b[i].free && h->b[i].size >= bytes) best = i;
    } else { /* the smallest, the lowest among equals */
        for (int i = 0; i < h->n; i++)
            if (h->b[i].free && h->b[i].size >= bytes && (best < 0 || h->b[i].size < h->b[best].size)) best = i;
    }
    if (best < 0) return 1;
    if (h->b[best].size > bytes) { /* split: the rest stays free, after it (bottom) or before it (top) */
        if (grow(h)) return ISO_EINTERNAL;
        memmove(h->b + best + 2, h->b + best + 1, (size_t)(h->n - best - 1) * sizeof *h->b);
        uint64_t rest = h->b[best].size - bytes;
        if (top) {
            h->b[best + 1] = (struct nn_heap_blk){ h->b[best].off + rest, bytes, 1 };
            h->b[best].size = rest;
            best++;
        } else {
            h->b[best + 1] = (struct nn_heap_blk){ h->b[best].off + bytes, rest, 1 };
            h->b[best].size = bytes;
        }
        h->n++;
    }
    h->b[best].free = 0;
    *off = h->b[best].off;
    h->used += bytes;
    if (h->used > h->peak) h->peak = h->used;
    if (top && h->size - *off > h->top) h->top = h->size - *off;
    if (!top && *off + bytes > h->high) h->high = *off + bytes;
    return 0;
}

int nn_heap_alloc(struct nn_heap *h, uint64_t bytes, uint64_t *off) { return alloc_at(h, bytes, 0, off); }
int nn_heap_alloc_top(struct nn_heap *h, uint64_t bytes, uint64_t *off) { return alloc_at(h, bytes, 1, off); }

int nn_heap_free(struct nn_heap *h, uint64_t off, uint64_t *bytes)
{
    int lo = 0, hi = h->n - 1, i = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (h->b[mid].off == off) { i = mid; break; }
        if (h->b[mid].off < off) lo = mid + 1;
        else hi = mid - 1;
    }
    if (i < 0 || h->b[i].free)
        return iso_fail(ISO_EINTERNAL, "nn heap: release of offset %llu, which is not allocated", (unsigned long long)off);
    if (bytes) *bytes = h->b[i].size;
    h->used -= h->b[i].size;
    h->b[i].free = 1;
    if (i + 1 < h->n && h->b[i + 1].free) { /* merge the next */
        h->b[i].size += h->b[i + 1].size;
        memmove(h->b + i + 1, h->b + i + 2, (size_t)(h->n - i - 2) * sizeof *h->b);
        h->n--;
    }
    if (i > 0 && h->b[i - 1].free) { /* into the previous */
        h->b[i - 1].size += h->b[i].size;
        memmove(h->b + i, h->b + i + 1, (size_t)(h->n - i - 1) * sizeof *h->b);
        h->n--;
    }
    return 0;
}

int nn_heaps_add(struct nn_heaps *s, uint64_t size, uint64_t align, int reserved)
{
    struct nn_heap *h = realloc(s->h, (size_t)(s->n + 1) * sizeof *h);
    if (!h) return iso_fail(ISO_EINTERNAL, "out of memory");
    s->h = h;
    int rc = nn_heap_init(&s->h[s->n], size, align);
    if (rc) return rc;
    s->h[s->n++].reserved = reserved;
    return 0;
}

int nn_heaps_alloc(struct nn_heaps *s, uint64_t bytes, int top, int *k, uint64_t *off)
{
    for (int i = 0; i < s->n; i++) {
        uint64_t before = s->h[i].used;
        int rc = alloc_at(&s->h[i], bytes, top, off);
        if (rc <= 0) {
            *k = i;
            if (!rc) {
                s->used += s->h[i].used - before;
                if (s->used > s->peak) s->peak = s->used;
            }
            return rc;
        }
    }
    return 1;
}

int nn_heaps_free(struct nn_heaps *s, int k, uint64_t off)
{
    uint64_t b = 0;
    if (k < 0 || k >= s->n) return iso_fail(ISO_EINTERNAL, "nn heap: region %d of %d", k, s->n);
    int rc = nn_heap_free(&s->h[k], off, &b);
    if (!rc) s->used -= b;
    return rc;
}

void nn_heaps_fini(struct nn_heaps *s)
{
    for (int i = 0; i < s->n; i++) nn_heap_fini(&s->h[i]);
    free(s->h);
    memset(s, 0, sizeof *s);
}

void nn_heaps_stats(const struct nn_heaps *s, struct nn_act_stats *st)
{
    memset(st, 0, sizeof *st);
    st->peak = s->peak;
    for (int i = 0; i < s->n; i++) {
        if (s->h[i].reserved) {
            st->reserved += s->h[i].size;
            st->high += s->h[i].high + s->h[i].top;
        } else {
            st->beyond += s->h[i].size;
        }
    }
}
