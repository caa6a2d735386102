/*
 * log_posix.c - the default logger on POSIX systems: it discards.  The
 * library never prints (an embedded library writing to stderr would
 * corrupt a CLI's output or a daemon's log format); an app that wants
 * fieldvault's log lines installs a logger hook (platform.h).
 */
#include "platform.h"

const int fv__default_log_discards = 1;

void fv__default_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)msg;
}
