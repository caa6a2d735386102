/*
 * fv_bench.c - the benchmark driver: runs the benchmarks of issue 6 in the
 * order 1, 2, 3, 7, 4, 5, 6, collects one results table and writes it
 * (bench-results.json, bench-results.md, the chart's data and script).
 *
 *   fv_bench all [--quick] [--out DIR] [--reps N] [--only 1,2,...]
 *                [--no-callgrind]
 *   fv_bench peer ...        one "record a visit" measurement (a child run)
 *   fv_bench mem-child ...   a syncing device whose peak memory is taken
 *
 * scripts/bench builds this and runs `fv_bench all`, then gnuplot.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

static void machine_meta(void)
{
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f != NULL) {
        char line[512];
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "model name", 10) == 0) {
                const char *p = strchr(line, ':');
                if (p != NULL) {
                    p++;
                    while (*p == ' ') p++;
                    snprintf(model, sizeof model, "%s", p);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        }
        fclose(f);
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    struct utsname u;
    uname(&u);
    br_meta("machine", "%ld cores (%s), %.0f GiB, %s %s, shared and noisy: read ratios, not absolutes",
            ncpu, model, (double)pages * (double)psz / (1024.0 * 1024 * 1024), u.sysname,
            u.machine);
    br_meta("versions", "SQLite %s, libsodium %s", sqlite3_libversion(),
            sodium_version_string());
}

static int want(const char *only, int item)
{
    if (only == NULL) return 1;
    char it[8];
    snprintf(it, sizeof it, "%d", item);
    for (const char *p = only; *p;) {
        size_t n = strcspn(p, ",");
        if (n == strlen(it) && strncmp(p, it, n) == 0) return 1;
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

static int run_all(int argc, char **argv)
{
    const char *only = NULL;
    snprintf(g_cfg.out, sizeof g_cfg.out, ".");
    g_cfg.reps = 0;
    g_cfg.callgrind = 1;
    g_cfg.seed = 20260301;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) g_cfg.quick = 1;
        else if (strcmp(argv[i], "--no-callgrind") == 0) g_cfg.callgrind = 0;
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) snprintf(g_cfg.out, sizeof g_cfg.out, "%s", argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) g_cfg.reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "fv_bench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (g_cfg.reps <= 0) g_cfg.reps = g_cfg.quick ? 1 : 5;
    if (g_cfg.reps > 15) g_cfg.reps = 15;
    snprintf(g_cfg.work, sizeof g_cfg.work, "%s/bench-work", g_cfg.out);
    bench_rmtree(g_cfg.work);
    if (mkdir(g_cfg.work, 0777) != 0) {
        fprintf(stderr, "fv_bench: cannot create %s\n", g_cfg.work);
        return 1;
    }
    chmod(g_cfg.work, 0777);
    if (sodium_init() < 0) return 1;

    double t0 = bench_now();
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    br_meta("date", "%s", date);
    br_meta("mode", "%s run, median of %d repetition%s", g_cfg.quick ? "Quick (--quick: small sizes)" : "Full",
            g_cfg.reps, g_cfg.reps == 1 ? "" : "s");
    machine_meta();

    static const struct {
        int item;
        int (*fn)(void);
        const char *name;
    } items[] = {{1, bench_visits, "Record a visit"},     {2, bench_vfs, "Page encryption"},
                 {3, bench_wire, "Wire format"},         {7, bench_size, "Library size"},
                 {4, bench_sync, "End-to-end sync"},     {5, bench_memory, "Memory"},
                 {6, bench_load, "fvd under load"}};
    int failed = 0;
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        if (!want(only, items[i].item)) continue;
        double s = bench_now();
        bench_log("item %d: %s", items[i].item, items[i].name);
        if (items[i].fn() != 0) {
            failed++;
            bench_log("item %d: failed (see the table)", items[i].item);
        }
        bench_log("item %d: %.0f s", items[i].item, bench_now() - s);
    }
    br_meta("duration", "%.0f s", bench_now() - t0);
    bench_rmtree(g_cfg.work);
    if (br_write(g_cfg.out, stdout) != 0) {
        fprintf(stderr, "fv_bench: cannot write the results into %s\n", g_cfg.out);
        return 1;
    }
    return failed ? 3 : 0;
}

int main(int argc, char **argv)
{
    ssize_t n = readlink("/proc/self/exe", g_cfg.self, sizeof g_cfg.self - 1);
    if (n > 0) g_cfg.self[n] = '\0';
    else snprintf(g_cfg.self, sizeof g_cfg.self, "%s", argv[0]);
    if (argc >= 2 && strcmp(argv[1], "all") == 0) return run_all(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "peer") == 0) return bench_peer_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "mem-child") == 0) return bench_memory_child(argc, argv);
    fprintf(stderr,
            "usage: fv_bench all [--quick] [--out DIR] [--reps N] [--only 1,2,3,7,4,5,6] "
            "[--no-callgrind]\n");
    return 2;
}
