/* pool.h — one fixed set of worker threads for data-parallel loops, shared by every tool (flow-extract, the nn core and the models on it).
 * pool_for(p, n, fn, ctx) calls fn(ctx, i0, i1, worker) on disjoint ranges
 * covering [0, n) and returns when all are done; the calling thread works
 * too. With one thread everything runs inline. The pool owns its threads:
 * pool_free joins them. */
#ifndef ISOPIPE_POOL_H
#define ISOPIPE_POOL_H

struct pool;
typedef void (*pool_fn)(void *ctx, int i0, int i1, int worker);

/* nthreads >= 1; returns 0 or a negative status */
int pool_new(struct pool **out, int nthreads);
void pool_free(struct pool **p);
int pool_threads(const struct pool *p);
/* split [0, n) into about 4 chunks per thread, handed out dynamically */
void pool_for(struct pool *p, int n, pool_fn fn, void *ctx);
/* fn(ctx, i, n) once for each i in [0, n), n = pool_threads(p): for code
 * that partitions its work statically by thread index */
void pool_run(struct pool *p, void (*fn)(void *ctx, int i, int n), void *ctx);
/* how many rounds a waiting thread spins before it sleeps (default 64):
 * loops that dispatch thousands of tiny jobs per second (an LLM's decode
 * step) want more, at the price of CPU burnt while idle */
void pool_set_spin(struct pool *p, int rounds);
#endif
