/* test.h — a tiny unit-test harness (after redis' testhelp.h).
 * CHECK records a pass or a failure and goes on; TEST_SKIP records a skip
 * with its reason; test_report() prints "N passed, N failed, N skipped" and
 * returns the exit status for main. */
#ifndef ISOPIPE_TEST_H
#define ISOPIPE_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed, test_failed, test_skipped;

#define CHECK(cond) do { \
        if (cond) { test_passed++; } \
        else { test_failed++; printf("FAIL - %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)
#define CHECKF(cond, ...) do { \
        if (cond) { test_passed++; } \
        else { test_failed++; printf("FAIL - %s:%d: %s: ", __FILE__, __LINE__, #cond); \
               printf(__VA_ARGS__); printf("\n"); } \
    } while (0)
#define CHECK_NEAR(a, b, tol) do { \
        double a_ = (a), b_ = (b); \
        CHECKF(fabs(a_ - b_) <= (tol), "%s = %.9g, %s = %.9g, tol %.3g", #a, a_, #b, b_, (double)(tol)); \
    } while (0)
#define CHECK_STR(a, b) do { \
        const char *a_ = (a), *b_ = (b); \
        CHECKF(a_ && b_ && strcmp(a_, b_) == 0, "'%s' != '%s'", a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
    } while (0)
#define TEST_SKIP(...) do { test_skipped++; printf("skip - "); printf(__VA_ARGS__); printf("\n"); } while (0)
#define TEST(name) printf("# %s\n", name)

static inline int test_report(void)
{
    printf("%d passed, %d failed, %d skipped\n", test_passed, test_failed, test_skipped);
    return test_failed ? 1 : 0;
}

/* "dir/name" in one of 8 rotating buffers (a call's result stays valid for
 * the next 7 calls, enough for every expression in a test) */
static inline char *test_path_in(const char *dir, const char *name)
{
    static char buf[8][900];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* a scratch directory under $TMPDIR, removed by the caller with fs_rm_rf */
static inline char *test_tmpdir(void)
{
    static char buf[512];
    const char *t = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/isopipe-unit-XXXXXX", t ? t : "/tmp");
    return mkdtemp(buf);
}
#endif
