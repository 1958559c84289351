/* test_prompt_expand_scenes.c — strict parsing of model replies into scene
 * prompts, the duplicate check, the per-shot conversation and the JSON. */
#include "test.h"

#include "err.h"
#include "prompts.h"
#include "scenes.h"
#include "topic.h"

static const char *GOOD = "A paper boat drifts down a flooded street at dusk as rain ripples the water.";

/* parses reply; returns the prompt (static copy) or NULL */
static const char *parse(const char *reply)
{
    static char buf[1024];
    char *p = NULL;
    if (scenes_parse_reply(reply, strlen(reply), &p)) return NULL;
    snprintf(buf, sizeof buf, "%s", p);
    free(p);
    return buf;
}

static void rejected(const char *reply, const char *why)
{
    char *p = NULL;
    int rc = scenes_parse_reply(reply, strlen(reply), &p);
    CHECKF(rc == ISO_EDATA && !p, "accepted '%s'", reply);
    CHECKF(!why || strstr(iso_errmsg(), why), "'%s': message '%s' lacks '%s'", reply, iso_errmsg(), why);
    free(p);
}

static void test_parse(void)
{
    TEST("parse replies");
    char buf[1024];
    CHECK_STR(parse(GOOD), GOOD);
    snprintf(buf, sizeof buf, "  %s  \n\n", GOOD);
    CHECK_STR(parse(buf), GOOD);
    /* labels and wrapping are removed */
    static const char *const wraps[] = { "Shot 2: %s", "Shot 2 of 4: %s", "scene 3 - %s", "2. %s", "2) %s", "- %s",
                                         "\"%s\"", "**%s**", "Shot 1: \"%s\"", "\xe2\x80\x9c%s\xe2\x80\x9d", NULL };
    for (int i = 0; wraps[i]; i++) {
        snprintf(buf, sizeof buf, wraps[i], GOOD);
        CHECKF(parse(buf) && !strcmp(parse(buf), GOOD), "'%s' -> '%s'", buf, parse(buf) ? parse(buf) : "(rejected)");
    }
    /* a description that merely starts with a word like "Shotgun" keeps it */
    CHECK_STR(parse("Shotgun houses line a quiet street under a pale morning sky."),
              "Shotgun houses line a quiet street under a pale morning sky.");
    /* what is refused, and why */
    rejected("", "empty");
    rejected("   \n  ", "empty");
    rejected("A boat.", "too short");
    rejected("Boats boats boats boats boats boats", "repeats itself");
    rejected("the rain the boat the rain the boat the rain the boat the rain the boat", "repeats itself");
    rejected("<|im_start|>assistant A paper boat drifts down the flooded street at dusk.", "markers");
    rejected("A paper boat drifts down the street.<|im_end|> and more text here", "markers");
    rejected("Sure, here is the next shot: a paper boat drifts down the street.", "sure");
    rejected("Here's shot 2: a paper boat drifts down the flooded street.", "here's");
    rejected("As an AI I cannot see the street but the boat drifts along.", "as an ai");
    rejected("First line about a paper boat drifting.\nSecond line about the rain falling.", "more than one line");
    rejected("12345 67890 12345 67890 12345 67890 !!!", "letters");
    rejected("Video: a paper boat\nShot 2 of 3.", NULL);
    rejected("\xff\xfe not utf-8 at all but long enough to pass", "UTF-8");
    char longr[600];
    memset(longr, 0, sizeof longr);
    for (int i = 0; i < 50; i++) strcat(longr, "rain boat ");
    rejected(longr, "too long");
    rejected("Four words only here", "words");
}

static void test_dupes(void)
{
    TEST("duplicates");
    char *prev[2] = { (char *)GOOD, (char *)"The camera rises over wet rooftops as the storm clears." };
    CHECK(scenes_is_duplicate("a paper boat drifts down a FLOODED street at dusk, as rain ripples the water", prev, 2));
    CHECK(scenes_is_duplicate("The camera rises over wet rooftops as the storm clears", prev, 2));
    /* one word changed is a near-copy: 9 word pairs each, 8 shared, 10 in the union */
    CHECK(scenes_is_duplicate("The camera rises over wet rooftops as the storm returns.", prev, 2));
    CHECK_NEAR(scenes_similarity("The camera rises over wet rooftops as the storm returns.", prev[1]), 8.0 / 10, 1e-12);
    CHECK(!scenes_is_duplicate("The camera sinks below the wet rooftops into a lit alley.", prev, 2));
    CHECK(!scenes_is_duplicate(GOOD, prev, 0));

    /* pairs of "a b c d": ab bc cd; of "a b c e": ab bc ce -> 2 common of 4 */
    CHECK_NEAR(scenes_similarity("a b c d", "a b c e"), 2.0 / 4, 1e-12);
    CHECK_NEAR(scenes_similarity("A b, C d!", "a b c d"), 1, 1e-12);
    CHECK_NEAR(scenes_similarity("a b c d", "d c b a"), 0, 1e-12);
    /* repeated pairs count once: "a b a b" has ab, ba; "a b" has ab -> 1 of 2 */
    CHECK_NEAR(scenes_similarity("a b a b", "a b"), 0.5, 1e-12);
    /* the near-copies greedy SmolLM2 wrote for two shots in a row */
    char *near[1] = { (char *)"The camera takes a moment to snap the paper lantern, then it's on its way up into the night "
                              "market. The next shot is of the lantern being carried by a street performer, and the camera "
                              "continues with the next shot as they both move down towards the city skyline." };
    CHECK(scenes_is_duplicate("The camera takes a moment to snap the paper lantern, then it's on its way up into the night "
                              "market. The next shot is of the street performer carrying the lantern, and the camera "
                              "continues with the next shot as they both move down towards the city skyline.", near, 1));
    /* a continuation that shares its subject is not a copy */
    char *fox[1] = { (char *)"The fox runs across the snow-covered road, and the camera is on wheels moving along the snowy bridge." };
    CHECK(scenes_similarity("The fox runs across the snow-covered bridge, and a car is on the road behind it, with the camera "
                            "taking in the scene.", fox[0]) < 0.3);
    CHECK(!scenes_is_duplicate("The fox runs across the snow-covered bridge, and a car is on the road behind it, with the "
                               "camera taking in the scene.", fox, 1));
}

static void test_conv(void)
{
    TEST("conversation");
    struct scenes_conv c;
    CHECK(scenes_conv_build(&c, NULL, "a harbor at dawn", 0, 3, NULL) == 0);
    CHECK(c.n == 6);
    CHECK_STR(c.msg[0].role, "system");
    CHECK_STR(c.msg[0].content, PE_SYSTEM);
    CHECK_STR(c.msg[1].role, "user");
    CHECK_STR(c.msg[2].role, "assistant");
    CHECK_STR(c.msg[1].content, "Video: " PE_EXAMPLE1_TOPIC "\nShot 1 of 3.");
    CHECK_STR(c.msg[2].content, PE_EXAMPLE1_SHOT);
    CHECK_STR(c.msg[3].content, "Video: " PE_EXAMPLE2_TOPIC "\nPrevious shot: " PE_EXAMPLE2_PREV "\nShot 2 of 3.");
    CHECK_STR(c.msg[4].content, PE_EXAMPLE2_SHOT);
    CHECK_STR(c.msg[5].role, "user");
    CHECK_STR(c.msg[5].content, "Video: a harbor at dawn\nShot 1 of 3.");
    /* the worked example's answers pass our own parser and are distinct */
    CHECK(parse(PE_EXAMPLE1_SHOT) != NULL);
    CHECK(parse(PE_EXAMPLE2_PREV) != NULL);
    CHECK(parse(PE_EXAMPLE2_SHOT) != NULL);
    scenes_conv_free(&c);
    CHECK(c.n == 0);
    CHECK(scenes_conv_build(&c, "Custom instruction.", "a harbor at dawn", 2, 3, "Boats leave the harbor.") == 0);
    CHECK_STR(c.msg[0].content, "Custom instruction.");
    CHECK_STR(c.msg[5].content, "Video: a harbor at dawn\nPrevious shot: Boats leave the harbor.\nShot 3 of 3.");
    scenes_conv_free(&c);
}

static void test_sentences(void)
{
    TEST("sentence ends");
    const char *a = "A boat drifts. Rain falls on 3.5 roofs! The camera";
    CHECK(scenes_sentence_end(a, strlen(a), 0) == strlen("A boat drifts. Rain falls on 3.5 roofs!"));
    CHECK(scenes_sentence_end(a, strlen("A boat drifts."), 0) == 0);      /* needs the space after it */
    CHECK(scenes_sentence_end(a, strlen("A boat drifts."), 1) == strlen("A boat drifts."));
    CHECK(scenes_sentence_end("No end at all", 13, 1) == 0);
    CHECK(scenes_sentence_end("He said \"go.\" Then", 19, 0) == strlen("He said \"go.\""));
    CHECK(scenes_sentence_end("Version 3.5 is out", 18, 1) == 0);
}

static void test_json(void)
{
    TEST("json");
    char *p[2] = { (char *)"first prompt", (char *)"second prompt" };
    json_t *a = scenes_segments_json(p, 2);
    CHECK(json_is_array(a) && json_array_size(a) == 2);
    json_t *s1 = json_array_get(a, 1);
    CHECK(json_integer_value(json_object_get(s1, "index")) == 1);
    CHECK_STR(json_string_value(json_object_get(s1, "prompt")), "second prompt");
    json_decref(a);
}

/* random replies: no crash, and whatever is accepted keeps the promises of scenes.h */
static void test_random(void)
{
    TEST("random replies");
    static const char *const bits[] = { "the ", "camera ", "boat ", "Shot 2: ", "\"", "**", "<|im_end|>", "\n", " ",
                                        ".", "!", "\xc3\xa9", "\xe4\xb8\xad", "\xff", "1. ", "Sure, ", "- ", "\t", "rain " };
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int kept = 0, ok = 1;
    for (int it = 0; it < 5000; it++) {
        char buf[700];
        size_t n = 0;
        int parts = 1 + (int)(x % 60);
        for (int k = 0; k < parts; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            const char *b = bits[x % (sizeof bits / sizeof *bits)];
            size_t l = strlen(b);
            if (n + l < sizeof buf) { memcpy(buf + n, b, l); n += l; }
        }
        char *p = NULL;
        if (scenes_parse_reply(buf, n, &p) == 0) {
            size_t l = strlen(p);
            kept++;
            if (!(l >= SCENES_MIN_LEN && l <= SCENES_MAX_LEN && !strchr(p, '\n') && !strstr(p, "<|") && utf8_valid(p, l) && p[0] != ' ' && p[l - 1] != ' ')) printf("    bad: [%s]\n", p);
            ok &= l >= SCENES_MIN_LEN && l <= SCENES_MAX_LEN && !strchr(p, '\n') && !strstr(p, "<|") &&
                  utf8_valid(p, l) && p[0] != ' ' && p[l - 1] != ' ';
        }
        free(p);
    }
    printf("# %d of 5000 random replies accepted\n", kept);
    CHECK(ok);
    CHECK(kept > 0);
}

int main(void)
{
    test_parse();
    test_dupes();
    test_conv();
    test_sentences();
    test_json();
    test_random();
    return test_report();
}
