/* test_plan — memory plans from block descriptions (numbers worked out by
 * hand below) and the mode decision exactly at its thresholds. */
#include <stdint.h>

#include "err.h"
#include "plan.h"
#include "test.h"

#define MIB (UINT64_C(1) << 20)

/* a 7B-ish LLM in Q4: 32 layers of 100 MiB, 500 MiB embeddings + head,
 * 256 MiB activations, 1 GiB KV cache */
static void llm_blocks(struct plan_blocks *b)
{
    memset(b, 0, sizeof *b);
    b->n_blocks = 32;
    b->block_bytes = 100 * MIB;
    b->resident_bytes = 500 * MIB;
    b->largest_tensor = 250 * MIB;
    b->activations = 256 * MIB;
    b->kv_cache = 1024 * MIB;
    b->host_base = 50 * MIB;
    b->gpu_ok = b->cpu_ok = 1;
}

static void test_numbers(void)
{
    TEST("plan_from_blocks numbers");
    struct plan_blocks b;
    struct mem_plan p;
    llm_blocks(&b);
    CHECK(plan_from_blocks(&p, "llm", &b) == 0);
    CHECK_STR(p.model, "llm");
    CHECK(p.weights_total == (500 + 3200) * MIB);
    const struct plan_mode *m = &p.mode[MEM_MODE_BEEFY];
    CHECK(m->possible);
    CHECK(m->weights == 3700 * MIB);
    CHECK(m->vram_peak == (3700 + 256 + 1024) * MIB);
    CHECK(m->pinned_host == 2 * PLAN_UPLOAD_CHUNK);
    CHECK(m->host_rss == 50 * MIB + 250 * MIB + 2 * PLAN_UPLOAD_CHUNK);
    m = &p.mode[MEM_MODE_LIGHTWEIGHT];
    CHECK(m->weights == (500 + 200) * MIB);
    CHECK(m->vram_peak == (700 + 256 + 1024) * MIB);
    CHECK(m->pinned_host == 3200 * MIB);
    CHECK(m->host_rss == (50 + 250 + 3200) * MIB);
    m = &p.mode[MEM_MODE_CPU];
    CHECK(m->vram_peak == 0 && m->weights == 0);
    CHECK(m->host_rss == (50 + 3700 + 256 + 1024) * MIB);

    /* a tensor smaller than a chunk: the chunks shrink to it */
    b.largest_tensor = 1000;
    CHECK(plan_from_blocks(&p, NULL, &b) == 0);
    CHECK(p.mode[MEM_MODE_BEEFY].pinned_host == 2000);
    CHECK_STR(p.model, "");

    /* one block: nothing to stream, lightweight holds it whole */
    llm_blocks(&b);
    b.n_blocks = 1;
    CHECK(plan_from_blocks(&p, "one", &b) == 0);
    CHECK(p.mode[MEM_MODE_LIGHTWEIGHT].weights == 600 * MIB);

    /* sizes from a hostile header overflow: refused, not wrapped */
    llm_blocks(&b);
    b.n_blocks = UINT64_MAX / 2;
    CHECK(plan_from_blocks(&p, "huge", &b) == ISO_EDATA);
    llm_blocks(&b);
    b.kv_cache = UINT64_MAX - 10;
    CHECK(plan_from_blocks(&p, "huge", &b) == ISO_EDATA);
}

static enum mem_mode pick(const struct mem_plan *p, enum mem_mode req, uint64_t free_b, uint64_t reserve,
                          uint64_t pending, int *rc)
{
    struct plan_env e = { 1, free_b, reserve, pending, UINT64_MAX };
    enum mem_mode m;
    *rc = plan_decide(p, req, &e, &m);
    return m;
}

static void test_thresholds(void)
{
    TEST("auto picks each mode exactly at its threshold");
    struct plan_blocks b;
    struct mem_plan p;
    llm_blocks(&b);
    plan_from_blocks(&p, "llm", &b);
    uint64_t beefy = p.mode[MEM_MODE_BEEFY].vram_peak, light = p.mode[MEM_MODE_LIGHTWEIGHT].vram_peak;
    int rc;
    /* free alone */
    CHECK(pick(&p, MEM_MODE_AUTO, beefy, 0, 0, &rc) == MEM_MODE_BEEFY && rc == 0);
    CHECK(pick(&p, MEM_MODE_AUTO, beefy - 1, 0, 0, &rc) == MEM_MODE_LIGHTWEIGHT && rc == 0);
    CHECK(pick(&p, MEM_MODE_AUTO, light, 0, 0, &rc) == MEM_MODE_LIGHTWEIGHT && rc == 0);
    CHECK(pick(&p, MEM_MODE_AUTO, light - 1, 0, 0, &rc) == MEM_MODE_AUTO && rc == ISO_ETEMPFAIL);
    /* the reserve counts byte for byte */
    CHECK(pick(&p, MEM_MODE_AUTO, beefy + 512 * MIB, 512 * MIB, 0, &rc) == MEM_MODE_BEEFY);
    CHECK(pick(&p, MEM_MODE_AUTO, beefy + 512 * MIB - 1, 512 * MIB, 0, &rc) == MEM_MODE_LIGHTWEIGHT);
    CHECK(pick(&p, MEM_MODE_AUTO, light + 512 * MIB, 512 * MIB, 0, &rc) == MEM_MODE_LIGHTWEIGHT);
    CHECK(pick(&p, MEM_MODE_AUTO, light + 512 * MIB - 1, 512 * MIB, 0, &rc) == MEM_MODE_AUTO && rc == ISO_ETEMPFAIL);
    /* so do other processes' pending reservations */
    CHECK(pick(&p, MEM_MODE_AUTO, beefy + 7, 3, 4, &rc) == MEM_MODE_BEEFY);
    CHECK(pick(&p, MEM_MODE_AUTO, beefy + 6, 3, 4, &rc) == MEM_MODE_LIGHTWEIGHT);
    CHECK(pick(&p, MEM_MODE_AUTO, light + 6, 3, 4, &rc) == MEM_MODE_AUTO && rc == ISO_ETEMPFAIL);
    CHECK(strstr(iso_errmsg(), "lightweight mode needs") != NULL);
    /* reserve + pending larger than free: no room at all, no wrap-around */
    CHECK(pick(&p, MEM_MODE_AUTO, 100, 200, 0, &rc) == MEM_MODE_AUTO && rc == ISO_ETEMPFAIL);
    CHECK(pick(&p, MEM_MODE_AUTO, UINT64_MAX, UINT64_MAX, UINT64_MAX, &rc) == MEM_MODE_AUTO && rc == ISO_ETEMPFAIL);
    struct plan_env e = { 1, 1000, 300, 200, 0 };
    CHECK(plan_room(&e) == 500);

    TEST("explicit modes are obeyed or refused, never changed");
    CHECK(pick(&p, MEM_MODE_LIGHTWEIGHT, beefy * 2, 0, 0, &rc) == MEM_MODE_LIGHTWEIGHT && rc == 0);
    CHECK(pick(&p, MEM_MODE_BEEFY, beefy, 0, 0, &rc) == MEM_MODE_BEEFY && rc == 0);
    CHECK(pick(&p, MEM_MODE_BEEFY, beefy - 1, 0, 0, &rc) == MEM_MODE_AUTO && rc == ISO_ETEMPFAIL);
    CHECK(strstr(iso_errmsg(), "beefy mode needs") != NULL);
    CHECK(pick(&p, MEM_MODE_LIGHTWEIGHT, light - 1, 0, 0, &rc) == MEM_MODE_AUTO && rc == ISO_ETEMPFAIL);
    CHECK(pick(&p, MEM_MODE_CPU, 0, 0, 0, &rc) == MEM_MODE_CPU && rc == 0);

    TEST("no GPU");
    struct plan_env none = { 0, 0, 0, 0, UINT64_MAX };
    enum mem_mode m;
    CHECK(plan_decide(&p, MEM_MODE_AUTO, &none, &m) == 0 && m == MEM_MODE_CPU);
    CHECK(plan_decide(&p, MEM_MODE_BEEFY, &none, &m) == ISO_EUNAVAIL && m == MEM_MODE_AUTO);
    CHECK(plan_decide(&p, MEM_MODE_LIGHTWEIGHT, &none, &m) == ISO_EUNAVAIL);
    b.cpu_ok = 0;
    plan_from_blocks(&p, "gpu-only", &b);
    CHECK(plan_decide(&p, MEM_MODE_AUTO, &none, &m) == ISO_EUNAVAIL);
    CHECK(plan_decide(&p, MEM_MODE_CPU, &none, &m) == ISO_EUNAVAIL);

    TEST("gpu_explicit_only: auto stays on the cpu, explicit GPU modes still run");
    llm_blocks(&b);
    b.gpu_explicit_only = 1;
    plan_from_blocks(&p, "unverified", &b);
    CHECK(pick(&p, MEM_MODE_AUTO, beefy * 4, 0, 0, &rc) == MEM_MODE_CPU && rc == 0);
    CHECK(pick(&p, MEM_MODE_BEEFY, beefy, 0, 0, &rc) == MEM_MODE_BEEFY && rc == 0);
    CHECK(pick(&p, MEM_MODE_LIGHTWEIGHT, light, 0, 0, &rc) == MEM_MODE_LIGHTWEIGHT && rc == 0);
    CHECK(pick(&p, MEM_MODE_BEEFY, beefy - 1, 0, 0, &rc) == MEM_MODE_AUTO && rc == ISO_ETEMPFAIL);
    json_t *gj = plan_to_json(&p);
    CHECK(json_is_false(json_object_get(gj, "gpu_auto")));
    json_decref(gj);
    b.cpu_ok = 0;   /* no cpu path: the flag cannot send auto there */
    plan_from_blocks(&p, "unverified-gpu-only", &b);
    CHECK(pick(&p, MEM_MODE_AUTO, beefy, 0, 0, &rc) == MEM_MODE_BEEFY && rc == 0);
    llm_blocks(&b);
    plan_from_blocks(&p, "llm", &b);
    gj = plan_to_json(&p);
    CHECK(json_is_true(json_object_get(gj, "gpu_auto")));
    json_decref(gj);

    TEST("pinned host memory bounds lightweight");
    llm_blocks(&b);
    plan_from_blocks(&p, "llm", &b);
    struct plan_env h = { 1, light, 0, 0, 3200 * MIB };
    CHECK(plan_decide(&p, MEM_MODE_AUTO, &h, &m) == 0 && m == MEM_MODE_LIGHTWEIGHT);
    h.host_budget = 3200 * MIB - 1;
    CHECK(plan_decide(&p, MEM_MODE_AUTO, &h, &m) == ISO_ETEMPFAIL);
    CHECK(strstr(iso_errmsg(), "pinned host memory") != NULL);

    TEST("a CPU-only tool (segment-gen morph) under auto with a GPU present");
    memset(&b, 0, sizeof b);
    b.activations = 64 * MIB;
    b.cpu_ok = 1;
    plan_from_blocks(&p, "morph", &b);
    struct plan_env g = { 1, 0, 0, 0, UINT64_MAX };
    CHECK(plan_decide(&p, MEM_MODE_AUTO, &g, &m) == 0 && m == MEM_MODE_CPU);
}

static void test_json(void)
{
    TEST("plan_to_json");
    struct plan_blocks b;
    struct mem_plan p;
    llm_blocks(&b);
    plan_from_blocks(&p, "llm", &b);
    json_t *j = plan_to_json(&p);
    CHECK_STR(json_string_value(json_object_get(j, "model")), "llm");
    CHECK(json_integer_value(json_object_get(j, "weights_total")) == (json_int_t)(3700 * MIB));
    json_t *modes = json_object_get(j, "modes");
    CHECK(json_object_size(modes) == 3);
    CHECK(json_integer_value(json_object_get(json_object_get(modes, "beefy"), "vram_peak")) ==
          (json_int_t)p.mode[MEM_MODE_BEEFY].vram_peak);
    CHECK(json_integer_value(json_object_get(json_object_get(modes, "lightweight"), "pinned_host")) ==
          (json_int_t)(3200 * MIB));
    CHECK(json_is_true(json_object_get(json_object_get(modes, "cpu"), "possible")));
    CHECK(json_integer_value(json_object_get(json_object_get(j, "blocks"), "n_blocks")) == 32);
    json_decref(j);
}

int main(void)
{
    test_numbers();
    test_thresholds();
    test_json();
    return test_report();
}
