/* err.h — status codes and the last error message.
 * Library functions return 0 on success or a negative ISO_E* status; the
 * status is the negated sysexits code main() exits with, so a tool's main
 * maps errors with `return -rc`. iso_fail() records a message (per thread)
 * for main to print; library code never prints errors or calls exit. */
#ifndef ISOPIPE_ERR_H
#define ISOPIPE_ERR_H

enum iso_status {
    ISO_OK        = 0,
    ISO_EUSAGE    = -64,  /* bad command line */
    ISO_EDATA     = -65,  /* bad input data */
    ISO_ENOINPUT  = -66,  /* input missing */
    ISO_EUNAVAIL  = -69,  /* model unavailable */
    ISO_EINTERNAL = -70,  /* internal error (a bug or an impossible state) */
    ISO_ECANTCREAT= -73,  /* cannot create output */
    ISO_EIO       = -74,  /* I/O error */
    ISO_ETEMPFAIL = -75,  /* not enough VRAM/RAM now */
    ISO_EINTR     = -130, /* interrupted */
};

/* Record "fmt..." as the current error and return code (for `return iso_fail(...)`). */
int iso_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with "fmt...: " (adds context on the way up). */
int iso_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *iso_errmsg(void);
void iso_errclear(void);
/* exit status for a status code (0 stays 0, negative becomes positive) */
int iso_exit_code(int status);

#endif
