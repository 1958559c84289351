/* test_err.c — status codes and the per-thread error message (common/err.c). */
#include <pthread.h>

#include "err.h"
#include "test.h"

static void *thread_fn(void *arg)
{
    const char *tag = arg;
    int same = 1;
    for (int i = 0; i < 2000; i++) {
        iso_fail(ISO_EDATA, "%s %d", tag, i);
        char want[64];
        snprintf(want, sizeof want, "%s %d", tag, i);
        if (strcmp(iso_errmsg(), want) != 0) same = 0;
    }
    return (void *)(long)same;
}

int main(void)
{
    TEST("iso_fail / iso_wrap / iso_errmsg");
    iso_errclear();
    CHECK_STR(iso_errmsg(), "unknown error");
    CHECK(iso_fail(ISO_EDATA, "cannot read '%s': %s", "a.png", "not a PNG file") == ISO_EDATA);
    CHECK_STR(iso_errmsg(), "cannot read 'a.png': not a PNG file");
    CHECK(iso_wrap(ISO_EIO, "segment %d", 3) == ISO_EIO);
    CHECK_STR(iso_errmsg(), "segment 3: cannot read 'a.png': not a PNG file");
    iso_wrap(ISO_EIO, "stitch");
    CHECK_STR(iso_errmsg(), "stitch: segment 3: cannot read 'a.png': not a PNG file");
    iso_errclear();
    iso_wrap(ISO_EIO, "outer");
    CHECK_STR(iso_errmsg(), "outer: failed");
    /* a message longer than the buffer is cut, not overflowed */
    char big[6000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = 0;
    iso_fail(ISO_EDATA, "%s", big);
    CHECK(strlen(iso_errmsg()) == 4095 && iso_errmsg()[0] == 'y');
    /* the prefix is cut at 511 characters, the whole at 4095 */
    iso_wrap(ISO_EDATA, "%s", big);
    CHECK(strlen(iso_errmsg()) == 4095 && strncmp(iso_errmsg() + 511, ": yyy", 5) == 0);

    TEST("exit codes (sysexits, docs/DESIGN.md)");
    struct { int st, code; } ex[] = { { ISO_OK, 0 }, { ISO_EUSAGE, 64 }, { ISO_EDATA, 65 }, { ISO_ENOINPUT, 66 },
                                      { ISO_EUNAVAIL, 69 }, { ISO_EINTERNAL, 70 }, { ISO_ECANTCREAT, 73 },
                                      { ISO_EIO, 74 }, { ISO_ETEMPFAIL, 75 }, { ISO_EINTR, 130 } };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        CHECKF(iso_exit_code(ex[i].st) == ex[i].code, "status %d -> %d", ex[i].st, iso_exit_code(ex[i].st));

    TEST("the message is per thread");
    iso_fail(ISO_EDATA, "main thread");
    pthread_t a, b;
    void *ra, *rb;
    pthread_create(&a, NULL, thread_fn, "alpha");
    pthread_create(&b, NULL, thread_fn, "beta");
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    CHECK(ra == (void *)1 && rb == (void *)1);
    CHECK_STR(iso_errmsg(), "main thread");
    return test_report();
}
