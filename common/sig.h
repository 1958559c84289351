/* sig.h — SIGINT and SIGTERM as a flag, so a tool stops at its next safe
 * point, removes its temporary output, logs the "end" checkpoint and exits
 * 130 (docs/DESIGN.md: a failed run leaves no partial output behind).
 * sig_install() is called once by main; long loops poll sig_interrupted(). */
#ifndef ISOPIPE_SIG_H
#define ISOPIPE_SIG_H

void sig_install(void);
/* 1 once SIGINT or SIGTERM has arrived */
int sig_interrupted(void);
/* ISO_EINTR with the message "interrupted" when a signal arrived, else 0 */
int sig_check(void);
#endif
