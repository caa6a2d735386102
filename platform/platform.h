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

/* Sleep (retry backoff). */
void fv_platform_sleep_ms(int64_t ms);

/* Remove a file; 0, or -1 if it could not be removed (absent is 0). */
int fv_platform_remove(const char *path);

/* The default HTTP transport (libcurl): a connection context kept for one
 * sync (HTTP keep-alive), and the fv_http_post_fn over it. */
struct fv_http_request;
struct fv_http_response;
void *fv_platform_http_open(void);
void fv_platform_http_close(void *ctx);
int fv_platform_http_post(void *ctx, const struct fv_http_request *req,
                          struct fv_http_response *resp, char *err, size_t errcap);

#endif
