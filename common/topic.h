/* topic.h — the topic file of docs/DESIGN.md: UTF-8 text of `key: value` lines
 * with `#` comments; a file without any known key is all topic. Keys:
 * topic (required), keyframes (space- or comma-separated image paths,
 * relative to the topic file; may repeat), segments, frames, overlap, fps,
 * width, height, seed, and the Wan knobs steps, guidance, shift, sampler,
 * negative (docs/pipeline.md). struct topic owns its strings. */
#ifndef ISOPIPE_TOPIC_H
#define ISOPIPE_TOPIC_H
#include <stddef.h>
#include <stdint.h>

struct topic {
    char *path;          /* the file it came from (NULL for --topic text) */
    char *text;          /* the topic */
    char **keyframes;    /* resolved against the topic file's directory */
    int nkeyframes;
    int segments;        /* 0 = not given */
    int frames;          /* per segment, 0 = not given */
    int overlap;         /* -1 = not given */
    double fps;          /* 0 = not given */
    int width, height;   /* 0 = not given */
    uint64_t seed;
    int seed_set;
    /* Wan (make pipeline MODEL=wan): 0 / NULL = not given */
    int steps;           /* sampling steps */
    double guidance;     /* classifier-free guidance scale (>= 1); 0 = not given */
    double shift;        /* flow shift of the sigma schedule; 0 = not given */
    char *sampler;       /* "unipc" or "euler" */
    char *negative;      /* the negative prompt ("" is allowed: the empty prompt) */
};

/* parse a file; ISO_ENOINPUT when missing, ISO_EDATA for empty, non-UTF-8 or bad values */
int topic_load(const char *path, struct topic *t);
int topic_parse(const char *text, size_t len, const char *path, struct topic *t);
void topic_free(struct topic *t);
/* 1 when buf is valid UTF-8 (no overlongs, no surrogates) */
int utf8_valid(const char *buf, size_t len);
#endif
