/*
 * platform_posix.c - the POSIX defaults of platform.h's hook table (Linux,
 * Android's bionic, iOS; the CLI, fvd, tests): wall clock, sleep, fsync,
 * remove.  platform.c puts them in the default table.
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

int64_t fv__posix_now_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + clock_skew();
}

int fv__posix_fsync_file(void *ctx, FILE *f)
{
    (void)ctx;
    return fsync(fileno(f));
}

void fv__posix_sleep_ms(void *ctx, int64_t ms)
{
    (void)ctx;
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int fv__posix_remove(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}
