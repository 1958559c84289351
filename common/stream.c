/* stream.c — the two-slot block window (see stream.h). Each slot k has two
 * events: arrived[k] (recorded on the copy stream after the copy into it)
 * and released[k] (recorded on the compute stream when the block in it is
 * handed over to the next one). A copy into slot k first makes the copy
 * stream wait for released[k]; compute on slot k first waits for
 * arrived[k]. Both waits are device-side (cudaStreamWaitEvent), so the host
 * only enqueues work and never blocks. */
#include "stream.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gpu.h"

struct stream_set {
    uint64_t n, max_bytes;
    const void **host;
    uint64_t *bytes;
    int host_mode;             /* cpu/fake: blocks are used in place */
    int n_slots;
    struct gpu_arena *arena;   /* the window: n_slots buffers (fake: accounting only) */
    void *buf[2];
    int64_t slot_block[2];     /* block in (or on its way into) slot k, -1 for none */
    int cur;                   /* slot the last stream_get handed out, -1 before */
    struct gpu_stream *copy, *compute;
    struct gpu_event *arrived[2], *released[2];
    uint64_t copies, hits, copied;
};

int stream_create(uint64_t n_blocks, uint64_t max_block_bytes, struct stream_set **out)
{
    *out = NULL;
    int rc = 0;
    if (n_blocks == 0) return iso_fail(ISO_EUSAGE, "stream: no blocks");
    struct stream_set *s = calloc(1, sizeof *s);
    if (!s) return iso_fail(ISO_EINTERNAL, "out of memory");
    s->n = n_blocks;
    s->max_bytes = max_block_bytes;
    s->cur = -1;
    s->slot_block[0] = s->slot_block[1] = -1;
    s->host = calloc(n_blocks, sizeof *s->host);
    s->bytes = calloc(n_blocks, sizeof *s->bytes);
    if (!s->host || !s->bytes) {
        rc = iso_fail(ISO_EINTERNAL, "out of memory");
        goto done;
    }
    s->n_slots = n_blocks >= 2 ? 2 : 1;
    s->host_mode = !gpu_present() || gpu_is_fake();
    if ((rc = gpu_stream_create(&s->copy)) || (rc = gpu_stream_create(&s->compute))) goto done;
    for (int k = 0; k < s->n_slots; k++)
        if ((rc = gpu_event_create(&s->arrived[k])) || (rc = gpu_event_create(&s->released[k]))) goto done;
    if (!gpu_present()) goto done;
    /* each buffer rounded up to 256 bytes so both start aligned */
    uint64_t slot = (max_block_bytes + 255) & ~(uint64_t)255;
    if (slot < max_block_bytes) {
        rc = iso_fail(ISO_EDATA, "stream: block size overflows");
        goto done;
    }
    if ((rc = gpu_arena_create("stream window", slot * (uint64_t)s->n_slots, &s->arena))) goto done;
    for (int k = 0; k < s->n_slots; k++)
        if ((rc = gpu_arena_alloc(s->arena, slot, 256, &s->buf[k]))) goto done;
done:
    if (rc) stream_free(&s);
    *out = s;
    return rc;
}

int stream_set_block(struct stream_set *s, uint64_t i, const void *host, uint64_t bytes)
{
    if (i >= s->n) return iso_fail(ISO_EINTERNAL, "stream: block %llu of %llu", (unsigned long long)i, (unsigned long long)s->n);
    if (bytes > s->max_bytes)
        return iso_fail(ISO_EINTERNAL, "stream: block %llu has %llu bytes, the window holds %llu", (unsigned long long)i,
                        (unsigned long long)bytes, (unsigned long long)s->max_bytes);
    s->host[i] = host;
    s->bytes[i] = bytes;
    return 0;
}

/* enqueue the copy of block i into slot k, after the slot's last use */
static int start_copy(struct stream_set *s, int k, uint64_t i)
{
    int rc;
    if (!s->host[i]) return iso_fail(ISO_EINTERNAL, "stream: block %llu was never registered", (unsigned long long)i);
    if ((rc = gpu_stream_wait_event(s->copy, s->released[k]))) return rc;
    if (!s->host_mode && (rc = gpu_memcpy_h2d(s->buf[k], s->host[i], s->bytes[i], s->copy))) return rc;
    if ((rc = gpu_event_record(s->arrived[k], s->copy))) return rc;
    s->slot_block[k] = (int64_t)i;
    s->copies++;
    s->copied += s->bytes[i];
    return 0;
}

int stream_get(struct stream_set *s, uint64_t i, const void **dev)
{
    *dev = NULL;
    int rc;
    if (i >= s->n) return iso_fail(ISO_EINTERNAL, "stream: block %llu of %llu", (unsigned long long)i, (unsigned long long)s->n);
    if (!s->host[i]) return iso_fail(ISO_EINTERNAL, "stream: block %llu was never registered", (unsigned long long)i);
    /* everything enqueued on compute so far was the last use of the slot
     * handed out before */
    if (s->cur >= 0 && (rc = gpu_event_record(s->released[s->cur], s->compute))) return rc;
    int k = -1;
    for (int j = 0; j < s->n_slots; j++)
        if (s->slot_block[j] == (int64_t)i) k = j;
    if (k >= 0) {
        s->hits++;
    } else {
        k = (s->n_slots == 2 && s->cur >= 0) ? 1 - s->cur : 0;
        if ((rc = start_copy(s, k, i))) return rc;
    }
    if ((rc = gpu_stream_wait_event(s->compute, s->arrived[k]))) return rc;
    if (s->n_slots == 2) {
        uint64_t next = (i + 1) % s->n;
        int o = 1 - k;
        if (s->slot_block[o] != (int64_t)next && (rc = start_copy(s, o, next))) return rc;
    }
    s->cur = k;
    /* cpu/fake: the same slot bookkeeping (so the counters tell what a real
     * device would copy), but the block is used where it lies */
    *dev = s->host_mode ? s->host[i] : s->buf[k];
    return 0;
}

struct gpu_stream *stream_compute(struct stream_set *s) { return s->compute; }

int stream_sync(struct stream_set *s)
{
    int rc = gpu_stream_sync(s->copy);
    if (rc == 0) rc = gpu_stream_sync(s->compute);
    return rc;
}

void stream_stats(const struct stream_set *s, uint64_t *copies, uint64_t *hits, uint64_t *bytes)
{
    if (copies) *copies = s->copies;
    if (hits) *hits = s->hits;
    if (bytes) *bytes = s->copied;
}

uint64_t stream_window_bytes(const struct stream_set *s) { return s->arena ? gpu_arena_size(s->arena) : 0; }

void stream_free(struct stream_set **sp)
{
    struct stream_set *s = *sp;
    if (!s) return;
    if (s->copy || s->compute) stream_sync(s);
    for (int k = 0; k < 2; k++) {
        gpu_event_free(&s->arrived[k]);
        gpu_event_free(&s->released[k]);
    }
    gpu_stream_free(&s->copy);
    gpu_stream_free(&s->compute);
    gpu_arena_free(&s->arena);
    free(s->host);
    free(s->bytes);
    free(s);
    *sp = NULL;
}
