/*
 * bench.h - what the parts of fv_bench share: the run's settings, timing
 * and statistics, running child programs, and the results table that
 * becomes bench-results.json, bench-results.md and the ratio chart.
 *
 * fv_bench is a program, not a library: the settings and the results are
 * plain module state, set up once by main.
 */
#ifndef FV_BENCH_H
#define FV_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- settings ---- */
typedef struct bench_cfg {
    int quick;           /* small sizes, 1 repetition */
    int reps;            /* repetitions of each timed measurement */
    int callgrind;       /* run the callgrind counts (1 unless --no-callgrind) */
    char out[1024];      /* where results go (build-bench/) */
    char work[1100];     /* scratch directory for stores and servers */
    char self[1024];     /* this program (for child runs) */
    unsigned seed;
} bench_cfg;

extern bench_cfg g_cfg;

/* ---- time and statistics (util.c) ---- */
double bench_now(void);                      /* monotonic seconds */
double bench_median(const double *v, size_t n);
double bench_percentile(double *v, size_t n, double p); /* sorts v */
void bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* stderr */

/* ---- files ---- */
/* A new empty directory under g_cfg.work (malloc'd path). */
char *bench_tmpdir(const char *tag);
void bench_rmtree(const char *path);
long long bench_file_size(const char *path);
char *bench_path(const char *dir, const char *name); /* malloc'd */

/* ---- child programs ---- */
typedef struct bench_child {
    int status;          /* exit status, 128+signal when killed, -1 when not run */
    char *out;           /* stdout, NUL-terminated, malloc'd */
    char *err;           /* stderr tail, NUL-terminated, malloc'd */
    double seconds;      /* wall time */
} bench_child;

/* Peak resident set (VmHWM) of process pid (0: this one), in KiB; -1 if
 * unknown.  (wait4's ru_maxrss is no use for a child of a large parent: it
 * includes the parent's pages the child held between fork and exec.) */
long bench_hwm_kib(pid_t pid);

/* Run argv (argv[0] a path) to completion, capturing stdout and stderr. */
bench_child bench_run(const char *const argv[]);
void bench_child_free(bench_child *c);
/* The value of "key=" in a "result ..." line of out; NAN if absent. */
double bench_result_field(const char *out, const char *key);

/* ---- results (results.c) ---- */
#define BR_NAN (0.0 / 0.0)

/* One line of the table.  ratio may be BR_NAN; ratio_note says what the
 * ratio is ("fieldvault / plain"). */
void br_row(const char *item, const char *bench, const char *subject, double value,
            const char *unit, double ratio, const char *ratio_note, const char *note);
/* A line for something not measured, and why. */
void br_missing(const char *item, const char *bench, const char *why);
/* A target of the issue: met 1, not met 0, not measured -1. */
void br_target(const char *target, const char *measured, int met);
/* A bar of the ratio chart (value as a fraction; 1.0 = parity), with the
 * target it is judged against (BR_NAN if none). */
void br_chart(const char *label, double ratio, double target);
/* Free-form facts about the run (machine, versions, duration). */
void br_meta(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A raw figure for the JSON file only (every repetition, instruction
 * counts...). */
void br_raw(const char *name, const double *v, size_t n);

/* Write out/bench-results.json, out/bench-results.md, out/bench-ratios.dat
 * and out/bench-ratios.gp; print the markdown to f. */
int br_write(const char *out, FILE *f);

/* ---- the benchmarks (one file each) ---- */
int bench_visits(void);   /* 1: record a visit, against the peers */
int bench_vfs(void);      /* 2: page encryption alone */
int bench_wire(void);     /* 3: nanopb against JSON */
int bench_size(void);     /* 7: library size */
int bench_sync(void);     /* 4: end-to-end sync */
int bench_memory(void);   /* 5: peak RSS */
int bench_load(void);     /* 6: fvd under load */

/* Child-process entry points (fv_bench SUBCOMMAND ...). */
int bench_peer_main(int argc, char **argv);    /* "peer": one visit measurement */
int bench_schema_main(int argc, char **argv);  /* "schema": dump the domain schema */
int bench_memory_child(int argc, char **argv); /* "mem-child": a syncing device */

/* Formatting helpers: "12,345", "1.23 M". */
const char *bench_fmt(double v, char *buf, size_t cap);

#endif
