/*
 * log_android.c - the default logger on Android: logcat, tag "fieldvault".
 * Compiled instead of platform/posix/log_posix.c by platform.cmake when
 * building with the NDK (links liblog); everything else Android uses from
 * platform/posix/ (bionic is POSIX).
 */
#include <android/log.h>

#include "platform.h"

const int fv__default_log_discards = 0;

void fv__default_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    int prio = level >= FV_LOG_ERROR  ? ANDROID_LOG_ERROR
               : level >= FV_LOG_WARN ? ANDROID_LOG_WARN
               : level >= FV_LOG_INFO ? ANDROID_LOG_INFO
                                      : ANDROID_LOG_DEBUG;
    __android_log_write(prio, "fieldvault", msg);
}
