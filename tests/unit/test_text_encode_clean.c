/* test_text_encode_clean — Wan2.1's prompt cleaning (tools/text-encode/clean.c)
 * against Python's html.unescape + re, tests/fixtures/text-encode/clean.txt
 * (written by tests/ref/clean_ref.py); identical bytes required. */
#include "clean.h"
#include "err.h"
#include "fs.h"
#include "test.h"

static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static size_t unhex(const char *h, char *d)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) d[n++] = (char)(hexval(h[0]) << 4 | hexval(h[1]));
    d[n] = 0;
    return n;
}

int main(void)
{
    const char *root = getenv("ISOPIPE_ROOT");
    char path[1024], *d = NULL, s[4096], want[4096];
    size_t n = 0, sl = 0;
    snprintf(path, sizeof path, "%s/tests/fixtures/text-encode/clean.txt", root ? root : ".");
    CHECK(fs_read_all(path, &d, &n, 1 << 20) == 0);
    int total = 0, same = 0;
    for (char *line = d ? strtok(d, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (line[0] == 'S') sl = unhex(line + 2, s);
        if (line[0] != 'C') continue;
        size_t wl = unhex(line + 2, want), ol = 0;
        char *out = NULL;
        int rc = wan_clean(s, sl, &out, &ol);
        int ok = rc == 0 && ol == wl && memcmp(out, want, wl) == 0;
        if (!ok) printf("  '%s' -> '%s', want '%s'\n", s, out ? out : "(error)", want);
        total++;
        same += ok;
        free(out);
    }
    CHECKF(total >= 30 && same == total, "%d of %d strings cleaned as Python does", same, total);
    printf("ok - clean: %d/%d\n", same, total);
    free(d);
    return test_report();
}
