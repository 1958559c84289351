#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "err.h"

#if defined(__SSE__)
#include <xmmintrin.h>
/* flush denormals to zero: decaying SOR increments otherwise hit the
 * slow subnormal path of the FPU and cost 10-100x per operation */
static void fpu_ftz(void) { _mm_setcsr(_mm_getcsr() | 0x8040); }
#else
static void fpu_ftz(void) {}
#endif

struct pool {
    int n;                 /* threads including the caller */
    pthread_t *tid;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    atomic_ulong gen;      /* bumped once per pool_for */
    atomic_int active;     /* workers still inside the current job */
    int quit;
    /* the current job */
    pool_fn fn;
    void *ctx;
    int total, chunk;
    atomic_int next;
    int spin;              /* rounds a waiter spins before it blocks */
};

struct worker_arg {
    struct pool *p;
    int id;
};

static void run_chunks(struct pool *p, int worker)
{
    fpu_ftz();
    for (;;) {
        int i0 = atomic_fetch_add(&p->next, p->chunk);
        if (i0 >= p->total) break;
        int i1 = i0 + p->chunk < p->total ? i0 + p->chunk : p->total;
        p->fn(p->ctx, i0, i1, worker);
    }
}

/* A flow runs hundreds of short parallel loops per frame, so waiters spin a
 * little before they block. Only a little: measured on a loaded 2-core
 * machine, 4000 rounds cost 40% more CPU and wall time than 64. */
#ifndef SPIN_ROUNDS
#define SPIN_ROUNDS 64
#endif
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* spin up to p->spin rounds while cond holds, yielding now and then so that on
 * a loaded machine the thread being waited for can run */
#define SPIN_WHILE(p, cond) do { \
        for (int r_ = 0; r_ < (p)->spin && (cond); r_++) { \
            if ((r_ & 255) == 255) sched_yield(); else cpu_relax(); \
        } \
    } while (0)

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    struct pool *p = wa->p;
    int id = wa->id;
    free(wa);
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (!p->quit && atomic_load(&p->gen) == seen) {
            pthread_mutex_unlock(&p->mu);
            SPIN_WHILE(p, atomic_load(&p->gen) == seen);
            pthread_mutex_lock(&p->mu);
        }
        while (!p->quit && atomic_load(&p->gen) == seen) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = atomic_load(&p->gen);
        pthread_mutex_unlock(&p->mu);
        run_chunks(p, id);
        pthread_mutex_lock(&p->mu);
        if (atomic_fetch_sub(&p->active, 1) == 1) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int pool_new(struct pool **out, int nthreads)
{
    *out = NULL;
    if (nthreads < 1) nthreads = 1;
    struct pool *p = calloc(1, sizeof *p);
    if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
    p->n = nthreads;
    p->spin = SPIN_ROUNDS;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->tid = calloc((size_t)nthreads, sizeof *p->tid);
    if (!p->tid) { pool_free(&p); return iso_fail(ISO_EINTERNAL, "out of memory"); }
    for (int i = 1; i < nthreads; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (wa->p = p, wa->id = i, pthread_create(&p->tid[i], NULL, worker_main, wa)) != 0) {
            free(wa);
            p->n = i; /* join only the threads that started */
            pool_free(&p);
            return iso_fail(ISO_EINTERNAL, "cannot start worker thread %d", i);
        }
    }
    *out = p;
    return 0;
}

void pool_free(struct pool **pp)
{
    struct pool *p = pp ? *pp : NULL;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->tid[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->tid);
    free(p);
    *pp = NULL;
}

int pool_threads(const struct pool *p) { return p ? p->n : 1; }

void pool_for(struct pool *p, int n, pool_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (!p || p->n == 1 || n == 1) {
        fpu_ftz();
        fn(ctx, 0, n, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->total = n;
    p->chunk = (n + 4 * p->n - 1) / (4 * p->n);
    atomic_store(&p->next, 0);
    atomic_store(&p->active, p->n - 1);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, 0);
    SPIN_WHILE(p, atomic_load(&p->active) > 0);
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->active) > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void pool_set_spin(struct pool *p, int rounds)
{
    if (p) p->spin = rounds < 0 ? 0 : rounds;
}

struct run_job { void (*fn)(void *, int, int); void *ctx; int n; };
static void run_one(void *ctx, int i0, int i1, int worker)
{
    (void)worker;
    struct run_job *j = ctx;
    for (int i = i0; i < i1; i++) j->fn(j->ctx, i, j->n);
}

void pool_run(struct pool *p, void (*fn)(void *ctx, int i, int n), void *ctx)
{
    struct run_job j = { fn, ctx, pool_threads(p) };
    pool_for(p, j.n, run_one, &j);
}
