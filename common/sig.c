#include "sig.h"

#include <signal.h>
#include <string.h>

#include "err.h"

static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

void sig_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL); /* the terminal or the runner went away */
}

int sig_interrupted(void) { return g_interrupted != 0; }

int sig_check(void) { return g_interrupted ? iso_fail(ISO_EINTR, "interrupted") : 0; }
