/*
 * platform_posix.c - POSIX implementation of platform.h (Linux, the CLI,
 * fvd, tests).
 */
#include "platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Fault injection for tests (issue: clock faults): FV_CLOCK_SKEW_MS, read
 * once, shifts this process's wall clock, as a phone with a wrong clock
 * would be.  Never set in production; documented in docs/protocol.md. */
static int64_t clock_skew(void)
{
    static volatile int read_once;
    static volatile int64_t skew;
    if (!read_once) {
        const char *e = getenv("FV_CLOCK_SKEW_MS");
        skew = e ? (int64_t)strtoll(e, NULL, 10) : 0;
        read_once = 1;
    }
    return skew;
}

int64_t fv_platform_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + clock_skew();
}

int fv_platform_fsync_file(FILE *f)
{
    return fsync(fileno(f));
}

void fv_platform_sleep_ms(int64_t ms)
{
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int fv_platform_remove(const char *path)
{
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}
