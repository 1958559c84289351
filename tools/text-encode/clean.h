/* clean.h — prompt cleaning as Wan2.1 does it before tokenising
 * (wan/modules/tokenizers.py, clean='whitespace'): HTML character
 * references unescaped twice (Python's html.unescape, its tables in
 * html_ent.h), the ends stripped, every run of whitespace (Python's \s)
 * made one space. ftfy's mojibake repair, Wan's first step, is not done. */
#ifndef ISOPIPE_TE_CLEAN_H
#define ISOPIPE_TE_CLEAN_H
#include <stddef.h>

/* *out is malloc'ed, NUL-terminated UTF-8 (malformed input bytes are kept
 * as they are). 0 or ISO_EINTERNAL. */
int wan_clean(const char *in, size_t n, char **out, size_t *out_n);
#endif
