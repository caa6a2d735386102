/*
 * platform.h - what fieldvault needs from the operating system, behind one
 * table of hooks.  core/ and sync/ include this header and no OS header;
 * CMake picks the files that fill the defaults (platform/posix/ everywhere
 * POSIX holds, which includes Android's bionic and iOS; platform/android/
 * adds logcat, platform/ios/ the Keychain key store).
 *
 * The table (fv_platform) is versioned and swappable, like SQLite's VFS
 * and syscall tables: an app or a test installs its own with
 * fv_platform_set() to supply a clock, a random source, a logger, an HTTP
 * stack or a key store, or to inject faults; every hook it leaves NULL keeps
 * its default.  The library reaches the hooks only through the
 * fv_platform_* calls below, whose signatures are those core/ and sync/
 * have always used.
 *
 * Per-handle choices stay per handle: fv_open_config.keystore and
 * fv_sync_config.http win over the table's key store and HTTP hooks for the
 * handle or sync they are given to.
 */
#ifndef FV_PLATFORM_H
#define FV_PLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fieldvault.h"

#define FV_PLATFORM_VERSION 1

/* Log levels (the logger hook's level argument). */
#define FV_LOG_DEBUG 0
#define FV_LOG_INFO 1
#define FV_LOG_WARN 2
#define FV_LOG_ERROR 3

/* Bound on one formatted log message (longer ones are cut). */
#define FV_LOG_MSG_MAX 512

/*
 * The hook table.  version: FV_PLATFORM_VERSION (the hooks listed for that
 * version are read; a later version only appends hooks).  ctx is passed to
 * every hook except http_post, which gets the connection http_open made.
 * Any hook may be NULL: the default is used.  The table is read, never
 * copied: it must stay valid and unchanged while installed.
 */
typedef struct fv_platform {
    int version;
    void *ctx;
    /* Wall clock: milliseconds since the Unix epoch (UTC).  Default:
     * clock_gettime(CLOCK_REALTIME) (+ FV_CLOCK_SKEW_MS, a test knob). */
    int64_t (*now_ms)(void *ctx);
    /* Sleep (retry backoff).  Default: nanosleep, restarted on EINTR. */
    void (*sleep_ms)(void *ctx, int64_t ms);
    /* Fill buf with len unpredictable bytes.  Default: libsodium's
     * randombytes_buf (getrandom(2) / the OS CSPRNG).  Must never fail. */
    void (*random)(void *ctx, void *buf, size_t len);
    /* One log line (NUL-terminated, no newline).  The library never logs a
     * key, a passphrase or a protected value.  Default: discarded on POSIX
     * (the library never prints), logcat on Android. */
    void (*log)(void *ctx, int level, const char *msg);
    /* Make what was written to f (already fflush'ed) durable: 0, or -1
     * with errno set.  Default: fsync(2). */
    int (*fsync_file)(void *ctx, FILE *f);
    /* Remove a file: 0, or -1 (absent is 0).  Default: unlink(2). */
    int (*remove)(void *ctx, const char *path);
    /* The default HTTP transport, used by syncs whose fv_sync_config.http
     * is NULL: http_open makes a connection context kept for one sync
     * (NULL on failure), http_post performs one request on it (contract of
     * fv_http_post_fn; the response body must be malloc'd), http_close
     * frees it.  Default: libcurl, TLS verification on.  The three are
     * replaced together (a table with http_post set uses its own
     * http_open/http_close, which may be NULL: the connection is then ctx). */
    void *(*http_open)(void *ctx);
    void (*http_close)(void *ctx, void *conn);
    fv_http_post_fn http_post;
    /* The platform key store (Android Keystore, iOS Keychain) for bindings
     * that open stores without a passphrase.  Default: NULL on POSIX (no
     * key store: a passphrase and Argon2id). */
    const fv_keystore *keystore;
} fv_platform;

/*
 * Install a table (NULL: back to the defaults).  FV_EINVAL for a version
 * this library does not know.  Process-wide, like sqlite3_vfs_register: do
 * it at start-up or while no handle is in use (a sync in progress keeps the
 * HTTP transport it started with).  Thread-safe in itself (one atomic
 * pointer swap).
 */
FV_API FV_NODISCARD fv_status fv_platform_set(const fv_platform *p);

/* The installed table (never NULL: the defaults when none is installed),
 * and the defaults alone.  Static storage / as installed. */
FV_API const fv_platform *fv_platform_get(void);
FV_API const fv_platform *fv_platform_default(void);

/* ---- What core/ and sync/ call: each goes to the installed hook, or the
 * default when that hook is NULL. ---- */

int64_t fv_platform_now_ms(void);
void fv_platform_sleep_ms(int64_t ms);
void fv_platform_random(void *buf, size_t len);
/* printf-style; formatted into at most FV_LOG_MSG_MAX bytes.  Cheap when
 * the installed logger is the discarding default. */
void fv_platform_log(int level, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int fv_platform_fsync_file(FILE *f);
int fv_platform_remove(const char *path);
/* The key store of the installed table, or NULL. */
const fv_keystore *fv_platform_keystore(void);

/* The default HTTP transport as one sync sees it: open binds a connection
 * to the table installed at that moment (NULL if it cannot start); post
 * and close use that table.  post has the fv_http_post_fn contract. */
void *fv_platform_http_open(void);
void fv_platform_http_close(void *ctx);
int fv_platform_http_post(void *ctx, const fv_http_request *req, fv_http_response *resp,
                          char *err, size_t errcap);

/* ---- The defaults, one file each per platform (internal) ---- */
int64_t fv__posix_now_ms(void *ctx);
void fv__posix_sleep_ms(void *ctx, int64_t ms);
int fv__posix_fsync_file(void *ctx, FILE *f);
int fv__posix_remove(void *ctx, const char *path);
void fv__default_log(void *ctx, int level, const char *msg);
/* 1 when fv__default_log throws messages away (no formatting needed). */
extern const int fv__default_log_discards;
void *fv__curl_open(void *ctx);
void fv__curl_close(void *ctx, void *conn);
int fv__curl_post(void *conn, const fv_http_request *req, fv_http_response *resp, char *err,
                  size_t errcap);

#endif
