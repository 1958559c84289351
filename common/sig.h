/* sig.h — SIGINT, SIGTERM and SIGHUP as a flag, so a tool stops at its next safe
 * point, removes its temporary output, logs the "end" checkpoint and exits
 * 130 (docs/DESIGN.md: a failed run leaves no partial output behind).
 * cli_parse() and cli_start() install it for every tool (again is harmless);
 * long loops and waits poll sig_interrupted(). */
#ifndef ISOPIPE_SIG_H
#define ISOPIPE_SIG_H

void sig_install(void);
/* 1 once SIGINT, SIGTERM or SIGHUP has arrived */
int sig_interrupted(void);
/* ISO_EINTR with the message "interrupted" when a signal arrived, else 0 */
int sig_check(void);
#endif
