#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* 4 KiB: a missing model's message lists every path tried (model.c) */
static _Thread_local char errbuf[4096];

int iso_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return code;
}

int iso_wrap(int code, const char *fmt, ...)
{
    char prefix[512], old[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errbuf, sizeof old);
    snprintf(errbuf, sizeof errbuf, "%s: %s", prefix, old[0] ? old : "failed");
    return code;
}

const char *iso_errmsg(void) { return errbuf[0] ? errbuf : "unknown error"; }
void iso_errclear(void) { errbuf[0] = 0; }
int iso_exit_code(int status) { return status < 0 ? -status : status; }
