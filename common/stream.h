/* stream.h — block streaming for the lightweight mode: N host blocks (the
 * layers of a transformer, the blocks of a DiT) take turns in a window of
 * two device buffers. stream_get(i) returns block i's device pointer once
 * it has arrived and starts copying block (i+1) mod N into the other buffer
 * on a second (copy) stream, so the copy of the next block overlaps the
 * compute of this one. The host never waits for a copy: ordering is kept
 * with events on the device (copy waits for "compute done with the buffer
 * it overwrites", compute waits for "block arrived").
 * Peak VRAM = 2 * max block bytes (+ the caller's activations).
 * Host blocks should be pinned (gpu_host_alloc) for asynchronous copies at
 * full bandwidth; mmapped pageable blocks work but copy at pageable speed.
 * Without a real device (cpu backend and the fake device) stream_get returns
 * the host pointer itself: that IS the cpu path (weights read in place), and
 * on the fake device it lets CI exercise the order of gets and prefetches. */
#ifndef ISOPIPE_STREAM_H
#define ISOPIPE_STREAM_H
#include <stdint.h>

struct gpu_stream;
struct stream_set;

/* n blocks of at most max_block_bytes each; allocates the two device
 * buffers (one arena) and the copy stream. ISO_ETEMPFAIL when 2 buffers do
 * not fit, ISO_EUSAGE for n == 0. */
int stream_create(uint64_t n_blocks, uint64_t max_block_bytes, struct stream_set **out);
/* register block i's host bytes (must outlive the set) */
int stream_set_block(struct stream_set *s, uint64_t i, const void *host, uint64_t bytes);
/* The device pointer of block i (waits on the compute stream for it, starts
 * the copy of block i+1 mod n). Everything the caller enqueued on the
 * compute stream before this call is taken to be the last use of the
 * previous block. Blocks may be taken in any order; in order is the fast
 * path (the prefetch guessed right). */
int stream_get(struct stream_set *s, uint64_t i, const void **dev);
/* the stream kernels that use the blocks must run on (NULL: cpu/fake) */
struct gpu_stream *stream_compute(struct stream_set *s);
/* wait until all copies and compute on both streams are done */
int stream_sync(struct stream_set *s);
/* counters: copies started, copies that were prefetch hits, bytes copied */
void stream_stats(const struct stream_set *s, uint64_t *copies, uint64_t *hits, uint64_t *bytes);
/* the device bytes of the window (2 buffers) */
uint64_t stream_window_bytes(const struct stream_set *s);
void stream_free(struct stream_set **s);
#endif
