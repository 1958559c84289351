/* test_sha256.c — SHA-256 against FIPS 180-4 example digests and Python's
 * hashlib (values written below were printed by hashlib.sha256), including
 * inputs fed in uneven pieces and a file. */
#include "test.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "fs.h"
#include "sha256.h"

static void digest(const void *p, size_t n, size_t piece, char hex[65])
{
    struct sha256 s;
    uint8_t d[32];
    sha256_init(&s);
    const uint8_t *b = p;
    while (n) {
        size_t k = piece && piece < n ? piece : n;
        sha256_update(&s, b, k);
        b += k;
        n -= k;
    }
    sha256_final(&s, d);
    sha256_hex(d, hex);
}

int main(void)
{
    char hex[65];
    TEST("vectors");
    digest("", 0, 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    digest("abc", 3, 0, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m56 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest(m56, 56, 0, hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    digest(m56, 56, 7, hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    static uint8_t big[1000000];
    memset(big, 'a', sizeof big);
    digest(big, sizeof big, 0, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    digest(big, sizeof big, 4093, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    uint8_t seq[768];
    for (int i = 0; i < 768; i++) seq[i] = (uint8_t)i;
    digest(seq, sizeof seq, 1, hex);
    CHECK_STR(hex, "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363");

    TEST("file");
    char *dir = test_tmpdir();
    char *path = fs_join(dir, "seq.bin");
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(seq, 1, sizeof seq, f) == sizeof seq);
    if (f) fclose(f);
    CHECK(sha256_file(path, hex) == 0);
    CHECK_STR(hex, "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363");
    char *missing = fs_join(dir, "missing");
    CHECK(sha256_file(missing, hex) == -66);

    TEST("cache: hashed once, again after any change");
    char *cache = fs_join(dir, "cache");
    setenv("XDG_CACHE_HOME", cache, 1);
    int hit = -1;
    CHECK(sha256_file_cached(path, hex, &hit) == 0 && hit == 0);
    CHECK_STR(hex, "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363");
    CHECK(sha256_file_cached(path, hex, &hit) == 0 && hit == 1);
    CHECK_STR(hex, "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363");
    char *cfile = fs_join(cache, "isopipe/sha256");
    struct stat st0;
    CHECK(stat(cfile, &st0) == 0 && S_ISREG(st0.st_mode));
    /* the cached digest is what comes back on a hit: forge it and see it */
    {
        FILE *c = fopen(cfile, "r+");
        CHECK(c && fputc('0', c) == '0');
        if (c) fclose(c);
        CHECK(sha256_file_cached(path, hex, &hit) == 0 && hit == 1 && hex[0] == '0');
    }
    /* rewritten in place, same size, old mtime put back: ctime moved, so hashed again */
    struct stat before;
    CHECK(stat(path, &before) == 0);
    seq[100] ^= 0xff;
    f = fopen(path, "r+b");
    CHECK(f && fwrite(seq, 1, sizeof seq, f) == sizeof seq);
    if (f) fclose(f);
    struct timespec ts[2] = { before.st_atim, before.st_mtim };
    CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
    char want[65];
    digest(seq, sizeof seq, 0, want);
    CHECK(sha256_file_cached(path, hex, &hit) == 0 && hit == 0);
    CHECK_STR(hex, want);
    CHECK(sha256_file_cached(path, hex, &hit) == 0 && hit == 1);
    CHECK_STR(hex, want);
    /* a damaged cache is ignored, never trusted */
    f = fopen(cfile, "w");
    CHECK(f && fputs("zz not a digest\n", f) >= 0);
    if (f) fclose(f);
    CHECK(sha256_file_cached(path, hex, &hit) == 0 && hit == 0);
    CHECK_STR(hex, want);
    CHECK(sha256_file_cached(missing, hex, &hit) == -66);
    unsetenv("XDG_CACHE_HOME");
    free(cache);
    free(cfile);
    fs_rm_rf(dir);
    free(path);
    free(missing);
    return test_report();
}
