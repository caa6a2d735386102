/*
 * platform.h - what fieldvault needs from the operating system, behind one
 * small interface.  core/ and sync/ include this header and no OS header;
 * CMake picks the implementation (platform/posix/ here; android/ and ios/
 * with their toolchains).  The full hook table (key store, HTTP, logging)
 * grows here as the layers that need it land.
 */
#ifndef FV_PLATFORM_H
#define FV_PLATFORM_H

#include <stdint.h>
#include <stdio.h>

/* Wall-clock time: milliseconds since the Unix epoch (UTC). */
int64_t fv_platform_now_ms(void);

/* Make what was written to f (already fflush'ed) durable.  0, or -1 with
 * errno set. */
int fv_platform_fsync_file(FILE *f);

#endif
