/* test_text_encode_spm — text-encode's SentencePiece tokenizer against the
 * libraries it imitates, with no tolerance:
 *  - tests/fixtures/spm/<name>.model: ids of the `sentencepiece` package
 *    (+ </s>), "P" records of <name>.ids;
 *  - tests/fixtures/spm/<name>.tokenizer.json: ids of the `tokenizers`
 *    library running that file, "T" records (uni_raw_added: added tokens
 *    matched on normalised text and with lstrip/rstrip, spm_added_ref.py);
 * both written by tests/ref/spm_ref.py (models trained there, nmt_nfkc, with
 * and without byte fallback, 280 strings in 16 languages plus edge cases).
 * Grapheme clusters against the Unicode Consortium's GraphemeBreakTest.txt
 * when the system has it. Corrupt and foreign files are refused (ISO_EDATA). */
#include <stdint.h>

#include "err.h"
#include "fs.h"
#include "spm.h"
#include "test.h"

static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

/* checks every record of kind ('P' or 'T') in fix against tokenizer t */
static void check_fixture(const struct spm *t, const char *fix, char kind, const char *label)
{
    char *d = NULL;
    size_t n = 0;
    if (fs_read_all(fix, &d, &n, 16u << 20)) { CHECKF(0, "cannot read %s: %s", fix, iso_errmsg()); return; }
    char *str = malloc(n + 1);
    size_t slen = 0;
    int total = 0, same = 0, shown = 0;
    for (char *line = strtok(d, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == 'S') {
            slen = 0;
            for (char *h = line + 2; h[0] && h[1]; h += 2) str[slen++] = (char)(hexval(h[0]) << 4 | hexval(h[1]));
            continue;
        }
        if (line[0] != kind) continue;
        int32_t *ids = NULL;
        size_t nid = 0;
        int rc = spm_encode(t, str, slen, 0, &ids, &nid, NULL);
        int ok = rc == 0;
        char *p = line + 1;
        size_t k = 0;
        while (ok && *p) {
            char *e;
            long v = strtol(p, &e, 10);
            if (e == p) break;
            p = e;
            if (k >= nid || ids[k] != v) ok = 0;
            k++;
        }
        if (k != nid) ok = 0;
        total++;
        same += ok;
        if (!ok && shown++ < 5) {
            printf("  %s: '%.*s': want%s got", label, (int)(slen > 60 ? 60 : slen), str, line + 1);
            for (size_t i = 0; i < nid && i < 30; i++) printf(" %d", ids[i]);
            printf("%s\n", rc ? iso_errmsg() : "");
        }
        free(ids);
    }
    CHECKF(total >= 200 && same == total, "%s: %d of %d strings give identical ids", label, same, total);
    printf("ok - %s: %d/%d identical\n", label, same, total);
    free(str);
    free(d);
}

static void test_fixtures(const char *root)
{
    static const char *const names[] = { "uni_bf", "uni_nobf", "uni_raw", "uni_raw_added" };
    char p[1024], fix[1024], label[128];
    for (int i = 0; i < 4; i++) {
        struct spm *t = NULL;
        snprintf(fix, sizeof fix, "%s/tests/fixtures/spm/%s.ids", root, names[i]);
        snprintf(p, sizeof p, "%s/tests/fixtures/spm/%s.model", root, names[i]);
        int rc = fs_exists(p) ? spm_load(p, &t) : 0;   /* uni_raw_added: only a tokenizer.json */
        CHECKF(rc == 0, "%s: %s", p, iso_errmsg());
        if (t) {
            CHECK(spm_format(t) == SPM_FMT_MODEL);
            snprintf(label, sizeof label, "%s.model vs sentencepiece", names[i]);
            check_fixture(t, fix, 'P', label);
            spm_free(&t);
        }
        snprintf(p, sizeof p, "%s/tests/fixtures/spm/%s.gguf", root, names[i]);
        if (fs_exists(p)) {   /* the same tokenizer as GGUF metadata: sentencepiece's ids too */
            rc = spm_load_gguf(p, &t);
            CHECKF(rc == 0, "%s: %s", p, iso_errmsg());
            if (t) {
                CHECK_STR(spm_format_name(t), "gguf");
                snprintf(label, sizeof label, "%s.gguf vs sentencepiece", names[i]);
                check_fixture(t, fix, 'P', label);
                spm_free(&t);
            }
        }
        snprintf(p, sizeof p, "%s/tests/fixtures/spm/%s.tokenizer.json", root, names[i]);
        if (!fs_exists(p)) continue;
        rc = spm_load(p, &t);
        CHECKF(rc == 0, "%s: %s", p, iso_errmsg());
        if (t) {
            CHECK(spm_format(t) == SPM_FMT_JSON);
            snprintf(label, sizeof label, "%s.tokenizer.json vs tokenizers", names[i]);
            check_fixture(t, fix, 'T', label);
            spm_free(&t);
        }
    }
}

/* truncation as Hugging Face's: the content is cut, </s> stays last */
static void test_truncation(const char *root)
{
    char p[1024];
    struct spm *t = NULL;
    snprintf(p, sizeof p, "%s/tests/fixtures/spm/uni_nobf.model", root);
    if (spm_load(p, &t)) { CHECKF(0, "%s", iso_errmsg()); return; }
    char text[4000];
    for (int i = 0; i < 1000; i++) memcpy(text + 4 * i, "ab. ", 4);
    int32_t *full = NULL, *cut = NULL;
    size_t nf = 0, nc = 0;
    int tr = -1;
    CHECK(spm_encode(t, text, sizeof text, 0, &full, &nf, &tr) == 0 && tr == 0);
    CHECK(spm_encode(t, text, sizeof text, 512, &cut, &nc, &tr) == 0 && tr == 1);
    CHECK(nf > 512 && nc == 512);
    CHECK(cut && full && memcmp(cut, full, 511 * sizeof *cut) == 0 && cut[511] == spm_eos_id(t));
    free(full);
    free(cut);
    CHECK(spm_encode(t, "short", 5, 512, &cut, &nc, &tr) == 0 && tr == 0 && nc < 512);
    free(cut);
    spm_free(&t);
}

static void test_bad_files(const char *root)
{
    struct spm *t = NULL;
    CHECK(spm_load_mem("hello world", 11, "text", &t) == ISO_EDATA && !t);
    CHECK(spm_load_mem("", 0, "empty", &t) == ISO_EDATA && !t);
    CHECK(spm_load_mem("{\"model\": {\"type\": \"BPE\"}}", 27, "bpe", &t) == ISO_EDATA && !t);
    CHECK(spm_load_mem("{\"model\": ", 10, "cut json", &t) == ISO_EDATA && !t);
    const char *j = "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", 0], [\"</s>\", 0]]},"
                    "\"normalizer\": {\"type\": \"NFKC\"}}";
    CHECK(spm_load_mem(j, strlen(j), "nfkc", &t) == ISO_EDATA && !t);
    CHECK(strstr(iso_errmsg(), "NFKC") != NULL);
    char p[1024];
    char *d = NULL;
    size_t n = 0;
    snprintf(p, sizeof p, "%s/tests/fixtures/spm/uni_bf.model", root);
    if (fs_read_all(p, &d, &n, 1u << 24) == 0) {
        /* every truncation point of the protobuf is refused or loads a prefix of the pieces; none crashes */
        int refused = 0;
        for (size_t cut = 1; cut < n; cut += n / 97 + 1) {
            int rc = spm_load_mem(d, cut, "cut", &t);
            refused += rc == ISO_EDATA;
            spm_free(&t);
        }
        CHECK(refused > 90);
        /* a charsmap whose trie size exceeds the blob */
        spm_free(&t);
        free(d);
    }
    CHECK(spm_load("/nonexistent/spiece.model", &t) == ISO_ENOINPUT);
}

static void test_graphemes(void)
{
    const char *path = "/usr/share/unicode/auxiliary/GraphemeBreakTest.txt";
    char *d = NULL;
    size_t n = 0;
    if (!fs_exists(path) || fs_read_all(path, &d, &n, 8u << 20)) {
        TEST_SKIP("graphemes: %s is missing (Debian package unicode-data)", path);
        return;
    }
    int total = 0, ok = 0;
    for (char *line = strtok(d, "\n"); line; line = strtok(NULL, "\n")) {
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        /* "÷ 0020 × 0308 ÷": the string and where clusters begin */
        char s[256];
        size_t sl = 0, bounds[64];
        int nb = 0;
        char *p = line;
        while (*p) {
            if (!strncmp(p, "\xc3\xb7", 2)) { if (nb < 64) bounds[nb++] = sl; p += 2; continue; }
            if (!strncmp(p, "\xc3\x97", 2) || *p == ' ' || *p == '\t') { p += *p == ' ' || *p == '\t' ? 1 : 2; continue; }
            char *e;
            unsigned long cp = strtoul(p, &e, 16);
            if (e == p) break;
            p = e;
            if (cp < 0x80) s[sl++] = (char)cp;
            else if (cp < 0x800) { s[sl++] = (char)(0xc0 | cp >> 6); s[sl++] = (char)(0x80 | (cp & 63)); }
            else if (cp < 0x10000) { s[sl++] = (char)(0xe0 | cp >> 12); s[sl++] = (char)(0x80 | (cp >> 6 & 63)); s[sl++] = (char)(0x80 | (cp & 63)); }
            else { s[sl++] = (char)(0xf0 | cp >> 18); s[sl++] = (char)(0x80 | (cp >> 12 & 63)); s[sl++] = (char)(0x80 | (cp >> 6 & 63)); s[sl++] = (char)(0x80 | (cp & 63)); }
        }
        if (nb < 2 || sl == 0) continue;
        /* surrogates are not UTF-8: those lines test nothing we meet */
        int good = 1;
        for (size_t i = 0; i + 2 < sl; i++) if ((unsigned char)s[i] == 0xed && ((unsigned char)s[i + 1] & 0xe0) == 0xa0) good = 0;
        if (!good) continue;
        total++;
        int same = 1, k = 0;
        for (size_t i = 0; i < sl && same;) {
            if (k >= nb || bounds[k] != i) same = 0;
            k++;
            i += spm_grapheme_len(s + i, sl - i);
        }
        ok += same && k == nb - 1;
    }
    CHECKF(total > 500 && ok == total, "GraphemeBreakTest: %d of %d lines", ok, total);
    printf("ok - graphemes: %d/%d lines of %s\n", ok, total, path);
    free(d);
}

int main(void)
{
    const char *root = getenv("ISOPIPE_ROOT");
    if (!root) root = ".";
    test_graphemes();
    test_fixtures(root);
    test_truncation(root);
    test_bad_files(root);
    return test_report();
}
