/*
 * bench_size.c - item 7: the size of the fieldvault library itself,
 * without its dependencies (SQLite, libsodium, libcurl and the nanopb
 * runtime are shared libraries or left undefined), as an app would ship
 * it: the shared object `fieldvault_size` (bench.cmake: the library's own
 * sources, position-independent, only the FV_API symbols exported),
 * stripped.  Also the code + data of the static archive (`size -t`).
 *
 * aarch64: when Debian's cross compiler and the project's cross toolchain
 * file (toolchains/linux-aarch64.cmake) are there, the same target is
 * cross-built in out/aarch64 and measured the same way.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Stripped size of lib (a copy is stripped with strip_bin) and the
 * text/data figures of `size_bin lib`; 0 on success. */
static int measure(const char *strip_bin, const char *size_bin, const char *lib, const char *tmp,
                   long long *stripped, long long *text, long long *data)
{
    const char *sargv[] = {strip_bin, "--strip-all", "-o", tmp, lib, NULL};
    bench_child c = bench_run(sargv);
    int rc = c.status == 0 ? 0 : -1;
    if (rc != 0) bench_log("size: %s failed: %s", strip_bin, c.err ? c.err : "");
    bench_child_free(&c);
    if (rc != 0) return -1;
    *stripped = bench_file_size(tmp);
    const char *zargv[] = {size_bin, tmp, NULL};
    c = bench_run(zargv);
    *text = *data = -1;
    if (c.status == 0 && c.out != NULL) {
        /* "   text    data     bss     dec     hex filename" then the figures */
        const char *nl = strchr(c.out, '\n');
        long long t, d, b;
        if (nl != NULL && sscanf(nl + 1, "%lld %lld %lld", &t, &d, &b) == 3) {
            *text = t;
            *data = d + b;
        }
    }
    bench_child_free(&c);
    unlink(tmp);
    return 0;
}

static long long archive_code(const char *size_bin, const char *archive)
{
    const char *argv[] = {size_bin, "-t", archive, NULL};
    bench_child c = bench_run(argv);
    long long total = -1;
    if (c.status == 0 && c.out != NULL) {
        const char *p = strstr(c.out, "(TOTALS)");
        if (p != NULL) {
            while (p > c.out && p[-1] != '\n') p--;
            long long t, d, b;
            if (sscanf(p, "%lld %lld %lld", &t, &d, &b) == 3) total = t + d + b;
        }
    }
    bench_child_free(&c);
    return total;
}

static void aarch64(void)
{
    const char *gcc = "/usr/bin/aarch64-linux-gnu-gcc";
    char toolchain[1200];
    snprintf(toolchain, sizeof toolchain, "%s/toolchains/linux-aarch64.cmake", FV_SOURCE_DIR);
    if (access(gcc, X_OK) != 0 || access(toolchain, R_OK) != 0) {
        br_missing("7", "Library size, aarch64",
                   "no cross-build here (needs gcc-aarch64-linux-gnu and toolchains/linux-aarch64.cmake)");
        return;
    }
    char *dir = bench_path(g_cfg.out, "aarch64");
    char tc[1300];
    snprintf(tc, sizeof tc, "-DCMAKE_TOOLCHAIN_FILE=%s", toolchain);
    const char *conf[] = {"/usr/bin/cmake", "-S", FV_SOURCE_DIR, "-B", dir, tc,
                          "-DCMAKE_BUILD_TYPE=Release", "-DFV_BUILD_BENCH=ON",
                          "-DFV_BUILD_TESTS=OFF", "-DFV_WERROR=OFF", NULL};
    bench_child c = bench_run(conf);
    int ok = c.status == 0;
    if (!ok) bench_log("size: aarch64 configure failed: %s", c.err ? c.err : "");
    bench_child_free(&c);
    if (ok) {
        const char *build[] = {"/usr/bin/cmake", "--build", dir, "--target", "fieldvault_size",
                               "fieldvault", "-j", "2", NULL};
        c = bench_run(build);
        ok = c.status == 0;
        if (!ok) bench_log("size: aarch64 build failed: %s", c.err ? c.err : "");
        bench_child_free(&c);
    }
    long long stripped = 0, text = 0, data = 0;
    char *lib = bench_path(dir, "libfieldvault_size.so");
    char *tmp = bench_path(dir, "stripped.so");
    char *archive = bench_path(dir, "libfieldvault.a");
    if (ok)
        ok = measure("/usr/bin/aarch64-linux-gnu-strip", "/usr/bin/aarch64-linux-gnu-size", lib, tmp,
                     &stripped, &text, &data) == 0;
    if (ok) {
        char note[300];
        long long code = archive_code("/usr/bin/aarch64-linux-gnu-size", archive);
        snprintf(note, sizeof note,
                 "cross-built with Debian's gcc-aarch64-linux-gnu, Release; text %lld B, data+bss %lld B; "
                 "static archive code+data %lld B",
                 text, data, code);
        br_row("7", "Library size, aarch64", "libfieldvault.so, stripped", (double)stripped / 1024,
               "KiB", BR_NAN, NULL, note);
    } else {
        br_missing("7", "Library size, aarch64", "the cross-build failed here (see the run's log)");
    }
    free(lib);
    free(tmp);
    free(archive);
    free(dir);
}

int bench_size(void)
{
    char *tmp = bench_path(g_cfg.work, "stripped.so");
    long long stripped = 0, text = 0, data = 0;
    int rc = measure("/usr/bin/strip", "/usr/bin/size", FV_BENCH_SIZE_LIB, tmp, &stripped, &text, &data);
    free(tmp);
    if (rc != 0) {
        br_missing("7", "Library size, x86-64", "strip failed");
    } else {
        char note[300];
        long long code = archive_code("/usr/bin/size", FV_BENCH_STATIC_LIB);
        snprintf(note, sizeof note,
                 "Release (-O3), own code only (SQLite, libsodium, libcurl, nanopb runtime not included); "
                 "text %lld B, data+bss %lld B; static archive code+data %lld B",
                 text, data, code);
        br_row("7", "Library size, x86-64", "libfieldvault.so, stripped", (double)stripped / 1024, "KiB",
               BR_NAN, NULL, note);
    }
    aarch64();
    return rc;
}
