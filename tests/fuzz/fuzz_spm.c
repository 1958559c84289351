/* fuzz_spm.c — libFuzzer target for text-encode's tokenizer loader
 * (spiece.model protobuf, tokenizer.json, the precompiled charsmap trie) and
 * its encoder: any bytes are loaded as a tokenizer and, when accepted, a
 * multilingual string is tokenised with it. Tokenizer files come from users.
 * The make fuzz rule compiles common/ only, so the tool's spm.c is included
 * here whole. */
#include "../../tools/text-encode/spm.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char text[] = "Hello  w\xc3\xb6rld \xef\xac\x81 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\x01 <s> \xff";
    struct spm *s = NULL;
    if (spm_load_mem(data, size, "fuzz", &s) == 0) {
        int32_t *ids = NULL;
        size_t n = 0;
        int tr = 0;
        if (spm_encode(s, text, sizeof text - 1, 64, &ids, &n, &tr) == 0) {
            if (n == 0 || n > 64) abort();
            for (size_t i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= spm_n_ids(s)) abort();
        }
        free(ids);
        spm_free(&s);
    }
    return 0;
}
