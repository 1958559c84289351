/* test_gpu — the GPU module on the fake device (accounting, arenas,
 * alignment, the pinned budget, the usage hook, the block stream's slot
 * logic) and discovery without a device (a CUDA build on a machine without
 * a driver must come up in CPU mode, in a child so the fake device of the
 * parent is not disturbed). */
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "gpu.h"
#include "log.h"
#include "stream.h"
#include "test.h"

#define MIB (UINT64_C(1) << 20)

static uint64_t g_hook_last = UINT64_MAX;
static int g_hook_calls;
static void hook(uint64_t own, void *ctx)
{
    (void)ctx;
    g_hook_last = own;
    g_hook_calls++;
}

/* run fn in a child with env var set (gpu_init runs once per process) */
static int child(const char *fake, int device, int (*fn)(int))
{
    pid_t p = fork();
    if (p == 0) {
        if (fake) setenv("ISOPIPE_FAKE_GPU", fake, 1);
        else unsetenv("ISOPIPE_FAKE_GPU");
        _exit(fn(device));
    }
    int st = 0;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static int discover(int device)
{
    int rc = gpu_init(device);
    if (rc) return 10 + iso_exit_code(rc) % 100;   /* 74 for a usage error (64) */
    return gpu_present() ? (gpu_is_fake() ? 2 : 1) : 0;
}

static void test_discovery(void)
{
    TEST("discovery");
    const char *gpu_env = getenv("ISOPIPE_TEST_REAL_GPU");
    int none = child(NULL, 0, discover);
    if (gpu_env && *gpu_env) CHECK(none == 1);
    else CHECKF(none == 0, "no fake, no GPU: CPU mode expected, got %d", none);
    CHECK(child("1024:512", 0, discover) == 2);
    CHECK(child("1024:512", 1, discover) == 74);
    CHECK(child("512:1024", 0, discover) == 74);
    CHECK(child("x", 0, discover) == 74);
    CHECK(child("1024", 0, discover) == 74);
    CHECK(child("1024:", 0, discover) == 74);
    CHECK(child("0:0", 0, discover) == 74);
}

static void test_fake(void)
{
    TEST("fake device accounting and arenas");
    setenv("ISOPIPE_FAKE_GPU", "1024:512", 1);
    CHECK(gpu_init(0) == 0);
    CHECK(gpu_present() && gpu_is_fake());
    CHECK_STR(gpu_get_info()->key, "fake");
    uint64_t f = 0, t = 0, pb = 1;
    CHECK(gpu_mem_get(&f, &t) == 0 && f == 512 * MIB && t == 1024 * MIB);
    int nv = 1;
    CHECK(gpu_process_bytes(&pb, &nv) == 0 && pb == 0 && nv == 0);
    gpu_set_usage_hook(hook, NULL);

    struct gpu_arena *a = NULL, *b = NULL, *c = NULL;
    CHECK(gpu_arena_create("weights", 100 * MIB, &a) == 0 && a);
    CHECK(g_hook_last == 100 * MIB);
    CHECK(gpu_mem_get(&f, &t) == 0 && f == 412 * MIB);
    CHECK(gpu_own_bytes() == 100 * MIB);
    CHECK(gpu_process_bytes(&pb, NULL) == 0 && pb == 100 * MIB);
    /* the fake device cannot give more than it has free */
    CHECK(gpu_arena_create("too big", 412 * MIB + 1, &b) == ISO_ETEMPFAIL && b == NULL);
    CHECK(strstr(iso_errmsg(), "too big") != NULL);
    CHECK(gpu_arena_create("rest", 412 * MIB, &b) == 0);
    CHECK(gpu_mem_get(&f, &t) == 0 && f == 0);
    gpu_arena_free(&b);
    CHECK(b == NULL && gpu_mem_get(&f, &t) == 0 && f == 412 * MIB);

    TEST("bump allocation: alignment, order, full, reset");
    void *p1, *p2, *p3, *p4;
    CHECK(gpu_arena_alloc(a, 1, 0, &p1) == 0);
    CHECK(gpu_arena_alloc(a, 10, 0, &p2) == 0);
    CHECK((uintptr_t)p1 % 256 == 0 && (uintptr_t)p2 % 256 == 0 && (uint8_t *)p2 - (uint8_t *)p1 == 256);
    CHECK(gpu_arena_alloc(a, 5, 1 << 20, &p3) == 0 && (uintptr_t)p3 % (1 << 20) == 0 && p3 > p2);
    CHECK(gpu_arena_alloc(a, 5, 8, &p4) == 0 && (uint8_t *)p4 == (uint8_t *)p3 + 8);
    CHECK(gpu_arena_alloc(a, 5, 3, &p4) == ISO_EINTERNAL);
    uint64_t used = gpu_arena_used(a);
    CHECK(used == (uint64_t)((uint8_t *)p3 - (uint8_t *)p1) + 13);
    CHECK(gpu_arena_alloc(a, 100 * MIB, 0, &p4) == ISO_ETEMPFAIL && p4 == NULL);
    CHECK(strstr(iso_errmsg(), "'weights' is full") != NULL);
    CHECK(gpu_arena_used(a) == used);
    CHECK(gpu_arena_alloc(a, UINT64_MAX - 8, 0, &p4) == ISO_ETEMPFAIL);
    gpu_arena_reset(a);
    CHECK(gpu_arena_used(a) == 0 && gpu_arena_peak(a) == used && gpu_arena_size(a) == 100 * MIB);
    void *q;
    CHECK(gpu_arena_alloc(a, 100 * MIB, 0, &q) == 0 && q == p1);
    CHECK(gpu_arena_alloc(a, 1, 1, &q) == ISO_ETEMPFAIL);
    /* two arenas never share addresses */
    CHECK(gpu_arena_create("act", 1 * MIB, &c) == 0);
    void *r;
    CHECK(gpu_arena_alloc(c, 1 * MIB, 0, &r) == 0);
    CHECK((uint8_t *)r >= (uint8_t *)p1 + 100 * MIB || (uint8_t *)r + MIB <= (uint8_t *)p1);
    gpu_arena_free(&c);
    gpu_arena_free(&a);
    CHECK(gpu_own_bytes() == 0 && g_hook_last == 0);

    TEST("copies on the fake device");
    uint8_t host[4096] = { 1 };
    CHECK(gpu_memcpy_h2d((void *)(uintptr_t)0x1000, host, sizeof host, NULL) == 0);
    CHECK(gpu_memcpy_d2h(host, (void *)(uintptr_t)0x1000, 16) == ISO_EUNAVAIL);
    struct gpu_event *e0 = NULL, *e1 = NULL;
    double secs = 1;
    CHECK(gpu_event_create(&e0) == 0 && gpu_event_create(&e1) == 0);
    CHECK(gpu_event_record(e0, NULL) == 0 && gpu_event_sync(e0) == 0);
    CHECK(gpu_event_elapsed(e0, e1, &secs) == ISO_EUNAVAIL && secs == 0);
    gpu_event_free(&e0);
    gpu_event_free(&e1);
    CHECK(e0 == NULL);
}

static void test_pinned(void)
{
    TEST("pinned host budget");
    /* set before the first use: the budget is fixed then */
    uint64_t b = gpu_pinned_budget();
    CHECK(b == 8 * MIB);
    void *p = NULL, *q = NULL;
    CHECK(gpu_host_alloc(5 * MIB, &p) == 0 && p);
    memset(p, 0xab, 5 * MIB);
    CHECK(gpu_pinned_used() == 5 * MIB);
    CHECK(gpu_host_alloc(3 * MIB + 1, &q) == ISO_ETEMPFAIL && q == NULL);
    CHECK(strstr(iso_errmsg(), "pinned host memory") != NULL);
    CHECK(gpu_pinned_used() == 5 * MIB);
    CHECK(gpu_host_alloc(3 * MIB, &q) == 0);
    gpu_host_free(p, 5 * MIB);
    gpu_host_free(q, 3 * MIB);
    CHECK(gpu_pinned_used() == 0);
    CHECK(gpu_host_alloc(UINT64_MAX, &q) == ISO_ETEMPFAIL);
}

static void test_stream(void)
{
    TEST("block stream slots (fake device: blocks used in place)");
    enum { N = 5, B = 1000 };
    static uint8_t blocks[N][B];
    struct stream_set *s = NULL;
    CHECK(stream_create(0, B, &s) == ISO_EUSAGE);
    CHECK(stream_create(N, B, &s) == 0 && s);
    if (!s) return;
    CHECK(stream_window_bytes(s) == 2 * 1024);
    CHECK(gpu_own_bytes() == 2 * 1024);
    const void *d;
    CHECK(stream_get(s, 0, &d) == ISO_EINTERNAL);   /* never registered */
    for (int k = 0; k < N; k++) {
        memset(blocks[k], k + 1, B);
        CHECK(stream_set_block(s, (uint64_t)k, blocks[k], k == N - 1 ? B - 10 : B) == 0);
    }
    CHECK(stream_set_block(s, N, blocks[0], B) == ISO_EINTERNAL);
    CHECK(stream_set_block(s, 0, blocks[0], B + 1) == ISO_EINTERNAL);
    /* two forward passes in order: the first get misses, every later get
     * was prefetched by the one before (wrapping to block 0) */
    int ok = 1;
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < N; k++) {
            if (stream_get(s, (uint64_t)k, &d) || d != blocks[k]) ok = 0;
        }
    CHECK(ok);
    uint64_t copies, hits, bytes;
    stream_stats(s, &copies, &hits, &bytes);
    CHECK(hits == 2 * N - 1);
    CHECK(copies == 2 * N + 1);   /* block 0 on the miss, then one prefetch per get */
    CHECK(bytes == (uint64_t)(2 * N + 1) * B - 2 * 10);
    /* out of order: a miss, then the prefetch follows the new position */
    CHECK(stream_get(s, 2, &d) == 0 && d == blocks[2]);
    CHECK(stream_get(s, 3, &d) == 0 && d == blocks[3]);
    uint64_t h2;
    stream_stats(s, NULL, &h2, NULL);
    CHECK(h2 == hits + 1);
    CHECK(stream_get(s, N, &d) == ISO_EINTERNAL);
    CHECK(stream_sync(s) == 0);
    stream_free(&s);
    CHECK(s == NULL && gpu_own_bytes() == 0);

    TEST("a single block needs a single slot");
    CHECK(stream_create(1, B, &s) == 0);
    CHECK(stream_window_bytes(s) == 1024);
    CHECK(stream_set_block(s, 0, blocks[0], B) == 0);
    CHECK(stream_get(s, 0, &d) == 0 && stream_get(s, 0, &d) == 0 && d == blocks[0]);
    stream_stats(s, &copies, &hits, NULL);
    CHECK(copies == 1 && hits == 1);
    stream_free(&s);
}

int main(void)
{
    char *tmp = test_tmpdir();
    setenv("ISOPIPE_LEDGER_DIR", tmp, 1);
    setenv("ISOPIPE_PINNED_MAX_MiB", "8", 1);
    log_init("test_gpu", "unit", LOG_ERROR, NULL);
    test_discovery();
    test_fake();
    test_pinned();
    test_stream();
    gpu_shutdown();
    log_close();
    fs_rm_rf(tmp);
    return test_report();
}
