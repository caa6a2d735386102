/*
 * platform_posix.c - POSIX implementation of platform.h (Linux, the CLI,
 * fvd, tests).
 */
#include "platform.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

int64_t fv_platform_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fv_platform_fsync_file(FILE *f)
{
    return fsync(fileno(f));
}
