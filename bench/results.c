/*
 * results.c - the results table: rows, targets, chart bars and metadata,
 * collected as the benchmarks run, then written as bench-results.json
 * (cJSON), bench-results.md (the table printed to stdout too) and the
 * gnuplot data and script for the ratio chart.
 */
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define MAX_ROWS 160
#define MAX_TARGETS 24
#define MAX_BARS 48
#define MAX_META 32
#define MAX_RAW 128

typedef struct row {
    char item[8], bench[96], subject[96], unit[32], ratio_note[64], note[400];
    double value, ratio;
    int missing;
} row;

typedef struct target {
    char text[200], measured[300];
    int met;
} target;

typedef struct bar {
    char label[64];
    double ratio, target;
} bar;

static row rows[MAX_ROWS];
static size_t nrows;
static target targets[MAX_TARGETS];
static size_t ntargets;
static bar bars[MAX_BARS];
static size_t nbars;
static char meta_k[MAX_META][48], meta_v[MAX_META][256];
static size_t nmeta;
static char raw_name[MAX_RAW][96];
static double *raw_v[MAX_RAW];
static size_t raw_n[MAX_RAW], nraw;

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void br_row(const char *item, const char *bench, const char *subject, double value,
            const char *unit, double ratio, const char *ratio_note, const char *note)
{
    if (nrows == MAX_ROWS) return;
    row *r = &rows[nrows++];
    memset(r, 0, sizeof *r);
    copy(r->item, sizeof r->item, item);
    copy(r->bench, sizeof r->bench, bench);
    copy(r->subject, sizeof r->subject, subject);
    copy(r->unit, sizeof r->unit, unit);
    copy(r->ratio_note, sizeof r->ratio_note, ratio_note);
    copy(r->note, sizeof r->note, note);
    r->value = value;
    r->ratio = ratio;
}

void br_missing(const char *item, const char *bench, const char *why)
{
    br_row(item, bench, "-", BR_NAN, "", BR_NAN, NULL, why);
    rows[nrows - 1].missing = 1;
}

void br_target(const char *text, const char *measured, int met)
{
    if (ntargets == MAX_TARGETS) return;
    target *t = &targets[ntargets++];
    copy(t->text, sizeof t->text, text);
    copy(t->measured, sizeof t->measured, measured);
    t->met = met;
}

void br_chart(const char *label, double ratio, double tgt)
{
    if (nbars == MAX_BARS || isnan(ratio)) return;
    bar *b = &bars[nbars++];
    copy(b->label, sizeof b->label, label);
    b->ratio = ratio;
    b->target = tgt;
}

void br_meta(const char *key, const char *fmt, ...)
{
    size_t i;
    for (i = 0; i < nmeta; i++)
        if (strcmp(meta_k[i], key) == 0) break;
    if (i == MAX_META) return;
    if (i == nmeta) nmeta++;
    copy(meta_k[i], sizeof meta_k[i], key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(meta_v[i], sizeof meta_v[i], fmt, ap);
    va_end(ap);
}

void br_raw(const char *name, const double *v, size_t n)
{
    if (nraw == MAX_RAW) return;
    raw_v[nraw] = malloc((n ? n : 1) * sizeof(double));
    if (raw_v[nraw] == NULL) return;
    memcpy(raw_v[nraw], v, n * sizeof(double));
    raw_n[nraw] = n;
    copy(raw_name[nraw], sizeof raw_name[nraw], name);
    nraw++;
}

static const char *met_text(int met)
{
    return met > 0 ? "**met**" : met == 0 ? "**not met**" : "not measured";
}

static void write_md(FILE *f)
{
    const char *date = "", *mode = "", *machine = "";
    for (size_t i = 0; i < nmeta; i++) {
        if (strcmp(meta_k[i], "date") == 0) date = meta_v[i];
        if (strcmp(meta_k[i], "mode") == 0) mode = meta_v[i];
        if (strcmp(meta_k[i], "machine") == 0) machine = meta_v[i];
    }
    fprintf(f, "## fieldvault benchmarks, %s\n\n", date);
    fprintf(f, "%s. %s.\n", mode, machine);
    int first = 1;
    for (size_t i = 0; i < nmeta; i++) {
        if (strcmp(meta_k[i], "date") == 0 || strcmp(meta_k[i], "mode") == 0 ||
            strcmp(meta_k[i], "machine") == 0)
            continue;
        fprintf(f, "%s%s: %s", first ? "" : "; ", meta_k[i], meta_v[i]);
        first = 0;
    }
    fprintf(f, "\n\n| # | benchmark | subject | result | ratio | notes |\n");
    fprintf(f, "|---|---|---|---:|---:|---|\n");
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        char v[64], rt[96];
        if (r->missing) {
            fprintf(f, "| %s | %s | - | not measured yet | - | %s |\n", r->item, r->bench, r->note);
            continue;
        }
        bench_fmt(r->value, v, sizeof v);
        if (isnan(r->ratio)) snprintf(rt, sizeof rt, "-");
        else snprintf(rt, sizeof rt, "%.2fx%s%s", r->ratio, r->ratio_note[0] ? " " : "",
                      r->ratio_note);
        fprintf(f, "| %s | %s | %s | %s %s | %s | %s |\n", r->item, r->bench, r->subject, v,
                r->unit, rt, r->note);
    }
    fprintf(f, "\n### Targets (issue 6)\n\n| target | measured | verdict |\n|---|---|---|\n");
    for (size_t i = 0; i < ntargets; i++)
        fprintf(f, "| %s | %s | %s |\n", targets[i].text, targets[i].measured,
                met_text(targets[i].met));
    fprintf(f, "\n");
}

static cJSON *num_or_null(double v)
{
    return isnan(v) || isinf(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

static int write_json(const char *path)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "meta");
    for (size_t i = 0; i < nmeta; i++) cJSON_AddStringToObject(meta, meta_k[i], meta_v[i]);
    cJSON *arr = cJSON_AddArrayToObject(root, "rows");
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "item", r->item);
        cJSON_AddStringToObject(o, "benchmark", r->bench);
        cJSON_AddStringToObject(o, "subject", r->subject);
        cJSON_AddBoolToObject(o, "measured", !r->missing);
        cJSON_AddItemToObject(o, "value", num_or_null(r->value));
        cJSON_AddStringToObject(o, "unit", r->unit);
        cJSON_AddItemToObject(o, "ratio", num_or_null(r->ratio));
        cJSON_AddStringToObject(o, "ratio_of", r->ratio_note);
        cJSON_AddStringToObject(o, "note", r->note);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *tg = cJSON_AddArrayToObject(root, "targets");
    for (size_t i = 0; i < ntargets; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "target", targets[i].text);
        cJSON_AddStringToObject(o, "measured", targets[i].measured);
        cJSON_AddStringToObject(o, "verdict", targets[i].met > 0    ? "met"
                                              : targets[i].met == 0 ? "not met"
                                                                    : "not measured");
        cJSON_AddItemToArray(tg, o);
    }
    cJSON *ch = cJSON_AddArrayToObject(root, "chart");
    for (size_t i = 0; i < nbars; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "label", bars[i].label);
        cJSON_AddItemToObject(o, "ratio", num_or_null(bars[i].ratio));
        cJSON_AddItemToObject(o, "target", num_or_null(bars[i].target));
        cJSON_AddItemToArray(ch, o);
    }
    cJSON *raw = cJSON_AddObjectToObject(root, "raw");
    for (size_t i = 0; i < nraw; i++) {
        cJSON *a = cJSON_CreateArray();
        for (size_t k = 0; k < raw_n[i]; k++) cJSON_AddItemToArray(a, num_or_null(raw_v[i][k]));
        cJSON_AddItemToObject(raw, raw_name[i], a);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (text == NULL) return -1;
    FILE *f = fopen(path, "w");
    int rc = -1;
    if (f != NULL) {
        rc = fputs(text, f) < 0 ? -1 : 0;
        fputc('\n', f);
        if (fclose(f) != 0) rc = -1;
    }
    cJSON_free(text);
    return rc;
}

static int write_chart(const char *out)
{
    char *dat = bench_path(out, "bench-ratios.dat");
    char *gp = bench_path(out, "bench-ratios.gp");
    FILE *f = dat ? fopen(dat, "w") : NULL;
    if (f == NULL) {
        free(dat);
        free(gp);
        return -1;
    }
    fprintf(f, "# label ratio target  (fieldvault relative to the peer or limit; higher is better)\n");
    for (size_t i = 0; i < nbars; i++) {
        if (isnan(bars[i].target)) fprintf(f, "\"%s\" %.6g NaN\n", bars[i].label, bars[i].ratio);
        else fprintf(f, "\"%s\" %.6g %.6g\n", bars[i].label, bars[i].ratio, bars[i].target);
    }
    fclose(f);
    f = fopen(gp, "w");
    if (f == NULL) {
        free(dat);
        free(gp);
        return -1;
    }
    const char *date = "";
    for (size_t i = 0; i < nmeta; i++)
        if (strcmp(meta_k[i], "date") == 0) date = meta_v[i];
    fprintf(f,
            "# gnuplot script written by fv_bench: gnuplot bench-ratios.gp (in this directory)\n"
            "set datafile missing \"NaN\"\n"
            "set style data histograms\n"
            "set style histogram clustered gap 1\n"
            "set style fill solid 0.85 border -1\n"
            "set boxwidth 0.9\n"
            "set logscale y 2\n"
            "set yrange [0.0078125:64]\n"
            "set ytics (\"1/128\" 0.0078125, \"1/64\" 0.015625, \"1/32\" 0.03125, \"1/16\" 0.0625, \"1/8\" 0.125, \"1/4\" 0.25, \"1/2\" 0.5, \"1\" 1, \"2\" 2, "
            "\"4\" 4, \"8\" 8, \"16\" 16, \"32\" 32, \"64\" 64)\n"
            "set grid ytics\n"
            "set xtics rotate by -40 left font \",9\"\n"
            "set bmargin 12\n"
            "set rmargin 22\n"
            "set key top right\n"
            "set ylabel \"fieldvault relative to the peer (higher is better, 1 = parity)\"\n"
            "set title \"fieldvault against its peers and the physical limit (%s)\"\n"
            "set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2 lc rgb \"#444444\"\n"
            "do for [t in \"svg png\"] {\n"
            "  if (t eq \"svg\") { set terminal svg size 1200,700 dynamic font \"sans,11\" background rgb \"white\" }\n"
            "  else { set terminal pngcairo size 1200,700 font \"sans,10\" background rgb \"white\" }\n"
            "  set output \"bench-ratios.\".t\n"
            "  plot \"bench-ratios.dat\" using 2:xtic(1) title \"measured\" lc rgb \"#2c7fb8\", \\\n"
            "       \"\" using 3 title \"target\" lc rgb \"#fdae6b\"\n"
            "  unset output\n"
            "}\n",
            date);
    fclose(f);
    free(dat);
    free(gp);
    return 0;
}

int br_write(const char *out, FILE *tty)
{
    int rc = 0;
    char *md = bench_path(out, "bench-results.md");
    char *js = bench_path(out, "bench-results.json");
    FILE *f = md ? fopen(md, "w") : NULL;
    if (f != NULL) {
        write_md(f);
        if (fclose(f) != 0) rc = -1;
    } else {
        rc = -1;
    }
    if (js == NULL || write_json(js) != 0) rc = -1;
    if (write_chart(out) != 0) rc = -1;
    if (tty != NULL) write_md(tty);
    free(md);
    free(js);
    return rc;
}
