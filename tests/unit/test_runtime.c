/* test_runtime — the runtime's life cycle on the fake device: plan JSON,
 * admission with the ledger entry it writes, waiting for another process's
 * reservation to go away (and giving up after --wait-vram), explicit modes,
 * the upload path, the memory object, and release at rt_end. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "gpu.h"
#include "ledger.h"
#include "log.h"
#include "mem.h"
#include "runtime.h"
#include "test.h"

#define MIB (UINT64_C(1) << 20)

static int free_fn(uint64_t others_used, uint64_t *free_b, void *ctx)
{
    return gpu_ledger_free_fn(others_used, free_b, ctx);
}

static int take_all(void *ctx, uint64_t free_b, uint64_t pending, uint64_t *reserve, const char **mode)
{
    (void)free_b; (void)pending;
    *reserve = *(uint64_t *)ctx;
    *mode = "beefy";
    return 0;
}

/* a child holding `bytes` in the fake device's ledger for `secs` */
static pid_t holder(uint64_t bytes, double secs)
{
    int p[2];
    if (pipe(p)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        struct ledger *l = NULL;
        char ok = 'n';
        if (ledger_open("fake", &l) == 0 && ledger_admit(l, free_fn, NULL, take_all, &bytes, NULL, NULL) == 0) ok = 'y';
        if (write(p[1], &ok, 1) != 1) _exit(3);
        if (secs > 0) usleep((useconds_t)(secs * 1e6));
        else pause();
        ledger_close(&l);
        _exit(0);
    }
    close(p[1]);
    char c = 0;
    int got = (int)read(p[0], &c, 1);
    close(p[0]);
    return got == 1 && c == 'y' ? pid : -1;
}

static int ledger_count(void)
{
    struct ledger_entry *e = NULL;
    int n = -1;
    if (ledger_read_key("fake", &e, &n)) n = -1;
    free(e);
    return n;
}

static int has_checkpoint(json_t *cps, const char *label)
{
    size_t i;
    json_t *v;
    json_array_foreach(cps, i, v) if (!strcmp(json_string_value(json_object_get(v, "label")), label)) return 1;
    return 0;
}

static void small_plan(struct mem_plan *p, uint64_t blocks, uint64_t block_bytes)
{
    struct plan_blocks b = { 0 };
    b.n_blocks = blocks;
    b.block_bytes = block_bytes;
    b.largest_tensor = block_bytes;
    b.activations = 1 * MIB;
    b.gpu_ok = b.cpu_ok = 1;
    plan_from_blocks(p, "unit", &b);
}

static void test_cycle(void)
{
    TEST("begin, plan json, admit beefy, upload, memory json, end");
    struct cli_common c = { 0 };
    struct rt *rt = NULL;
    struct mem_plan p;
    small_plan(&p, 8, 16 * MIB);   /* beefy 129 MiB, lightweight 33 MiB */
    CHECK(rt_begin(&c, &rt) == 0 && rt);
    json_t *pj = rt_plan_json(rt, &p);
    CHECK_STR(json_string_value(json_object_get(pj, "auto_pick")), "beefy");
    CHECK_STR(json_string_value(json_object_get(json_object_get(pj, "device"), "backend")), "fake");
    CHECK(json_integer_value(json_object_get(json_object_get(pj, "device"), "free")) == (json_int_t)(512 * MIB));
    json_decref(pj);
    CHECK(ledger_count() == 0);   /* --plan reserves nothing */
    enum mem_mode m;
    CHECK(rt_admit(rt, &p, &m) == 0 && m == MEM_MODE_BEEFY && rt_mode(rt) == MEM_MODE_BEEFY);
    struct ledger_entry *e = NULL;
    int n = 0;
    CHECK(ledger_read_key("fake", &e, &n) == 0 && n == 1);
    if (n == 1) CHECK(e[0].pid == getpid() && e[0].reserved == p.mode[MEM_MODE_BEEFY].vram_peak && e[0].used == 0);
    free(e);
    rt_load_begin(rt);
    struct gpu_arena *w = NULL;
    CHECK(gpu_arena_create("weights", 8 * 16 * MIB, &w) == 0);
    /* the ledger follows what we hold */
    CHECK(ledger_read_key("fake", &e, &n) == 0 && n == 1 && e[0].used == 128 * MIB);
    free(e);
    /* an anonymous read-only mapping stands in for a weights file */
    uint8_t *map = mmap(NULL, 16 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(map != MAP_FAILED);
    void *dev = NULL;
    for (int i = 0; i < 8; i++) CHECK(rt_upload(rt, w, map, 16 * MIB, 0, &dev) == 0 && dev);
    CHECK(rt_upload(rt, w, map, 1, 0, &dev) == ISO_ETEMPFAIL);   /* arena full */
    munmap(map, 16 * MIB);
    rt_load_end(rt);
    CHECK(rt_load_seconds(rt) >= 0 && rt_load_seconds(rt) < 60);
    json_t *mj = rt_memory_json(rt);
    CHECK_STR(json_string_value(json_object_get(mj, "mode")), "beefy");
    CHECK_STR(json_string_value(json_object_get(mj, "requested")), "auto");
    CHECK_STR(json_string_value(json_object_get(mj, "vram_source")), "fake");
    CHECK(json_integer_value(json_object_get(mj, "peak_vram")) >= (json_int_t)(128 * MIB));
    CHECK(json_integer_value(json_object_get(mj, "peak_rss")) > 0);
    CHECK(json_is_object(json_object_get(mj, "plan")));
    CHECK(json_integer_value(json_object_get(json_object_get(mj, "admission"), "reserved")) ==
          (json_int_t)p.mode[MEM_MODE_BEEFY].vram_peak);
    json_t *cps = json_object_get(mj, "checkpoints");
    CHECK(has_checkpoint(cps, "start") && has_checkpoint(cps, "before load") && has_checkpoint(cps, "after load"));
    json_decref(mj);
    rt_cleanup_begin(rt);
    gpu_arena_free(&w);
    CHECK(rt_end(&rt, 0) == 0 && rt == NULL);
    CHECK(ledger_count() == 0);
    cps = mem_checkpoints_json();
    CHECK(has_checkpoint(cps, "before cleanup") && has_checkpoint(cps, "end"));
    json_decref(cps);
    CHECK(rt_end(&rt, -5) == -5);   /* NULL runtime: status passes through */
}

static void test_modes(void)
{
    TEST("lightweight when beefy does not fit; explicit modes");
    struct cli_common c = { 0 };
    struct rt *rt = NULL;
    struct mem_plan p;
    small_plan(&p, 64, 16 * MIB);   /* beefy 1025 MiB > 512 free; lightweight 33 MiB */
    enum mem_mode m;
    CHECK(rt_begin(&c, &rt) == 0);
    CHECK(rt_admit(rt, &p, &m) == 0 && m == MEM_MODE_LIGHTWEIGHT);
    rt_end(&rt, 0);
    c.memory_mode = MEM_MODE_BEEFY;
    CHECK(rt_begin(&c, &rt) == 0);
    CHECK(rt_admit(rt, &p, &m) == ISO_ETEMPFAIL && m == MEM_MODE_AUTO);
    CHECK(strstr(iso_errmsg(), "beefy mode needs 1025.0 MiB") != NULL);
    CHECK(rt_end(&rt, ISO_ETEMPFAIL) == ISO_ETEMPFAIL);
    CHECK(ledger_count() == 0);
    c.memory_mode = MEM_MODE_CPU;
    CHECK(rt_begin(&c, &rt) == 0);
    CHECK(rt_admit(rt, &p, &m) == 0 && m == MEM_MODE_CPU);
    CHECK(ledger_count() == 0);   /* cpu mode reserves nothing */
    rt_end(&rt, 0);
    c.memory_mode = MEM_MODE_AUTO;
    c.vram_reserve_mib = 512 - 33 + 1;   /* leaves 32 MiB: lightweight needs 33 */
    CHECK(rt_begin(&c, &rt) == 0);
    CHECK(rt_admit(rt, &p, &m) == ISO_ETEMPFAIL);
    rt_end(&rt, 0);
    c.vram_reserve_mib = 512 - 33;
    CHECK(rt_begin(&c, &rt) == 0);
    CHECK(rt_admit(rt, &p, &m) == 0 && m == MEM_MODE_LIGHTWEIGHT);
    rt_end(&rt, 0);
}

static void test_wait(void)
{
    TEST("waiting for another process's reservation");
    struct cli_common c = { 0 };
    struct rt *rt = NULL;
    struct mem_plan p;
    small_plan(&p, 8, 16 * MIB);   /* lightweight needs 33 MiB */
    pid_t h = holder(500 * MIB, 0);   /* leaves 12 MiB */
    CHECK(h > 0);
    c.wait_vram_s = 0.5;
    enum mem_mode m;
    double t0 = mem_now();
    CHECK(rt_begin(&c, &rt) == 0);
    CHECK(rt_admit(rt, &p, &m) == ISO_ETEMPFAIL);
    double dt = mem_now() - t0;
    CHECKF(dt >= 0.5 && dt < 3, "gave up after %.2f s", dt);
    CHECK(strstr(iso_errmsg(), "no room after waiting") != NULL);
    CHECK(strstr(iso_errmsg(), "other isopipe reservations 500.0 MiB") != NULL);
    rt_end(&rt, 0);
    kill(h, SIGKILL);
    waitpid(h, NULL, 0);

    h = holder(500 * MIB, 0.4);   /* goes away after 0.4 s */
    CHECK(h > 0);
    c.wait_vram_s = 10;
    t0 = mem_now();
    CHECK(rt_begin(&c, &rt) == 0);
    CHECK(rt_admit(rt, &p, &m) == 0 && m == MEM_MODE_BEEFY);
    dt = mem_now() - t0;
    CHECKF(dt >= 0.3 && dt < 5, "admitted after %.2f s", dt);
    json_t *mj = rt_memory_json(rt);
    CHECK(json_integer_value(json_object_get(json_object_get(mj, "admission"), "attempts")) > 1);
    json_decref(mj);
    rt_end(&rt, 0);
    waitpid(h, NULL, 0);
    CHECK(ledger_count() == 0);
}

/* a GPU mode that cannot start after admission (no cuBLAS): the reservation
 * goes back to the ledger at once, the run is cpu mode from then on and the
 * report says why; a plan without a cpu mode refuses */
static void test_fallback(void)
{
    TEST("rt_fallback_cpu: reservation given back, cpu mode, report");
    struct cli_common c = { 0 };
    struct rt *rt = NULL;
    struct mem_plan p;
    small_plan(&p, 8, 16 * MIB);
    c.memory_mode = MEM_MODE_BEEFY;
    CHECK(rt_begin(&c, &rt) == 0 && rt);
    enum mem_mode m;
    CHECK(rt_admit(rt, &p, &m) == 0 && m == MEM_MODE_BEEFY);
    CHECK(ledger_count() == 1);
    CHECK(rt_fallback_cpu(rt, "nn cuda: no cuBLAS here") == 0);
    CHECK(ledger_count() == 0 && rt_mode(rt) == MEM_MODE_CPU);
    json_t *mj = rt_memory_json(rt);
    CHECK_STR(json_string_value(json_object_get(mj, "mode")), "cpu");
    CHECK_STR(json_string_value(json_object_get(mj, "requested")), "beefy");
    CHECK_STR(json_string_value(json_object_get(mj, "fallback")), "nn cuda: no cuBLAS here");
    CHECK(json_integer_value(json_object_get(json_object_get(mj, "admission"), "reserved")) == 0);
    json_decref(mj);
    CHECK(rt_end(&rt, 0) == 0);
    /* no cpu path in the plan: refused, with the reason */
    small_plan(&p, 8, 16 * MIB);
    p.mode[MEM_MODE_CPU].possible = 0;
    CHECK(rt_begin(&c, &rt) == 0 && rt);
    CHECK(rt_admit(rt, &p, &m) == 0 && m == MEM_MODE_BEEFY);
    int rc = rt_fallback_cpu(rt, "no cuBLAS");
    CHECKF(rc != 0 && strstr(iso_errmsg(), "no cuBLAS") && ledger_count() == 0, "rc %d: %s", rc, iso_errmsg());
    iso_errclear();
    rt_end(&rt, rc);
}

int main(void)
{
    char *tmp = test_tmpdir();
    setenv("ISOPIPE_LEDGER_DIR", tmp, 1);
    setenv("ISOPIPE_FAKE_GPU", "1024:512", 1);
    log_init("test_runtime", "unit", LOG_ERROR, NULL);
    test_cycle();
    test_modes();
    test_wait();
    test_fallback();
    log_close();
    fs_rm_rf(tmp);
    return test_report();
}
