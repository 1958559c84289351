/* fuzz_topic.c — libFuzzer target for the topic-file parser (topic_parse)
 * and the UTF-8 validator it relies on. A parse either fails with
 * ISO_EDATA or yields a non-empty topic that is itself valid UTF-8, with
 * keyframes resolved against the topic file's directory and values inside
 * their documented ranges. utf8_valid is cross-checked against a second,
 * independent decoder written from RFC 3629's table of well-formed byte
 * sequences (section 4). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "topic.h"

/* RFC 3629 §4: the well-formed sequences, by explicit byte ranges */
static int rfc3629_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c <= 0x7f) { i++; continue; }
        else if (c >= 0xc2 && c <= 0xdf) need = 1;
        else if (c == 0xe0) { need = 2; lo = 0xa0; }
        else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) need = 2;
        else if (c == 0xed) { need = 2; hi = 0x9f; }
        else if (c == 0xf0) { need = 3; lo = 0x90; }
        else if (c >= 0xf1 && c <= 0xf3) need = 3;
        else if (c == 0xf4) { need = 3; hi = 0x8f; }
        else return 0;
        if (n - i - 1 < need) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf) return 0;
        i += need + 1;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (utf8_valid((const char *)data, size) != rfc3629_valid(data, size)) abort();
    struct topic t;
    int rc = topic_parse((const char *)data, size, "dir/sub/x.topic", &t);
    if (rc == 0) {
        if (!t.text || !t.text[0]) abort();
        if (!utf8_valid(t.text, strlen(t.text))) abort();
        for (int i = 0; i < t.nkeyframes; i++) {
            const char *k = t.keyframes[i];
            if (!k || !k[0]) abort();
            if (k[0] != '/' && strncmp(k, "dir/sub/", 8) != 0) abort();
        }
        if (t.segments < 0 || t.segments > 1000 || t.frames < 0 || t.frames > 100000) abort();
        if (t.overlap < -1 || t.fps < 0 || t.fps > 1000 || t.width < 0 || t.height < 0) abort();
        topic_free(&t);
    } else if (rc != ISO_EDATA) {
        abort();
    }
    return 0;
}
