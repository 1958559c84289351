/* sha256.c — FIPS 180-4 §6.2 (SHA-256), written from the standard. */
#include "sha256.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

/* §6.2.2: one 512-bit block */
static void block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void sha256_init(struct sha256 *s)
{
    static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->nbuf = 0;
}

void sha256_update(struct sha256 *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    s->len += n;
    if (s->nbuf) {
        size_t k = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, k);
        s->nbuf += k; p += k; n -= k;
        if (s->nbuf < 64) return;
        block(s->h, s->buf);
        s->nbuf = 0;
    }
    for (; n >= 64; p += 64, n -= 64) block(s->h, p);
    memcpy(s->buf, p, n);
    s->nbuf = n;
}

/* §5.1.1: a 1 bit, zeros to 56 mod 64 bytes, then the length in bits (big-endian) */
void sha256_final(struct sha256 *s, uint8_t out[32])
{
    uint64_t bits = s->len * 8;
    uint8_t pad[72] = { 0x80 };
    size_t np = (s->nbuf < 56 ? 56 : 120) - s->nbuf;
    for (int i = 0; i < 8; i++) pad[np + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(s, pad, np + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24); out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8); out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void sha256_hex(const uint8_t d[32], char hex[65])
{
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

int sha256_file(const char *path, char hex[65])
{
    FILE *f;
    int orc = fs_fopen_input(path, &f);
    if (orc) return orc;
    static __thread uint8_t buf[1 << 16];
    struct sha256 s;
    uint8_t d[32];
    size_t n;
    sha256_init(&s);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&s, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) return iso_fail(ISO_EIO, "cannot read '%s'", path);
    sha256_final(&s, d);
    sha256_hex(d, hex);
    return 0;
}

/* ---- the cache of file digests ---- */

/* $XDG_CACHE_HOME/isopipe/sha256 (default ~/.cache/isopipe/sha256), malloc'd; NULL when neither is set */
static char *cache_path(void)
{
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char *p = NULL;
    if (x && x[0] == '/') p = fs_join(x, "isopipe/sha256");
    else if (home && home[0] == '/') {
        char *c = fs_join(home, ".cache");
        p = fs_join(c, "isopipe/sha256");
        free(c);
    }
    return p;
}

/* the key of a file's version: device, inode, size, mtime and ctime (ns) and
 * the absolute path; ctime moves on any write or metadata change and cannot be
 * set back by the user, so rewriting a file in place with its old mtime still
 * misses */
static void file_key(const struct stat *st, const char *abs, char *key, size_t cap)
{
    snprintf(key, cap, "%llu %llu %lld %lld.%09ld %lld.%09ld %s", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
             (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec, abs);
}

static int is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[64] == ' ';
}

#define CACHE_KEEP 64 /* entries kept; the oldest go first */

int sha256_file_cached(const char *path, char hex[65], int *hit)
{
    if (hit) *hit = 0;
    struct stat st;
    char *abs = realpath(path, NULL), *cp = NULL;
    if (!abs || stat(abs, &st) != 0 || !S_ISREG(st.st_mode) || strchr(abs, '\n') || !(cp = cache_path())) {
        free(abs);
        free(cp);
        return sha256_file(path, hex);
    }
    char key[PATH_MAX + 160];
    file_key(&st, abs, key, sizeof key);
    /* the cache: one "HEX KEY" line per file version, newest last */
    char *lines[CACHE_KEEP];
    int nl = 0;
    FILE *f = fopen(cp, "r");
    if (f) {
        char line[sizeof key + 80];
        while (fgets(line, sizeof line, f)) {
            size_t n = strlen(line);
            if (n < 66 || line[n - 1] != '\n' || !is_hex64(line)) continue; /* damaged: dropped */
            line[n - 1] = 0;
            if (strcmp(line + 65, key) == 0) {
                memcpy(hex, line, 64);
                hex[64] = 0;
                if (hit) *hit = 1;
                fclose(f);
                for (int i = 0; i < nl; i++) free(lines[i]);
                free(abs);
                free(cp);
                return 0;
            }
            if (nl == CACHE_KEEP) { free(lines[0]); memmove(lines, lines + 1, (CACHE_KEEP - 1) * sizeof *lines); nl--; }
            lines[nl++] = strdup(line);
        }
        fclose(f);
    }
    int rc = sha256_file(abs, hex);
    struct stat after;
    /* remembered only when the file did not change while it was read */
    if (rc == 0 && stat(abs, &after) == 0 && after.st_size == st.st_size && after.st_mtim.tv_sec == st.st_mtim.tv_sec &&
        after.st_mtim.tv_nsec == st.st_mtim.tv_nsec && after.st_ctim.tv_sec == st.st_ctim.tv_sec &&
        after.st_ctim.tv_nsec == st.st_ctim.tv_nsec && after.st_ino == st.st_ino) {
        /* written whole to a temporary name, then renamed: a reader never sees half a cache */
        char *dir = strdup(cp), *slash = strrchr(dir, '/');
        *slash = 0;
        char *tmp = NULL;
        if (fs_mkdir_p(dir) == 0 && asprintf(&tmp, "%s.%ld.tmp", cp, (long)getpid()) > 0) {
            FILE *w = fopen(tmp, "w");
            if (w) {
                int first = nl == CACHE_KEEP ? 1 : 0; /* room for the new entry */
                for (int i = first; i < nl; i++) fprintf(w, "%s\n", lines[i]);
                fprintf(w, "%s %s\n", hex, key);
                if (fclose(w) != 0 || rename(tmp, cp) != 0) unlink(tmp);
            }
        }
        free(tmp);
        free(dir);
    }
    for (int i = 0; i < nl; i++) free(lines[i]);
    free(abs);
    free(cp);
    return rc;
}
