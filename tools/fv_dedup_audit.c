/*
 * fv_dedup_audit.c - fv's duplicate warnings, `fv customer merge` and the
 * read audit's commands (fv_dedup_audit.h).  The library does the work
 * (fieldvault.h, "Duplicates, customer merge, read audit"); this file
 * words it.
 *
 * Text output neutralises control characters in stored values (a name, a
 * user) so that they cannot drive the terminal.  JSON goes through
 * fv_json.c.  No protected value is ever printed here: duplicates are
 * named by id and public name, audit entries name fields, not values.
 */
#include "fv_dedup_audit.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* s with control characters (C0, DEL) as spaces, at most max bytes. */
static void put_clean(FILE *f, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    for (size_t i = 0; p[i] != '\0'; i++) {
        if (i >= max && (p[i] & 0xc0) != 0x80) {
            fputs("...", f);
            return;
        }
        fputc(p[i] < 0x20 || p[i] == 0x7f ? ' ' : p[i], f);
    }
}

/* ---- duplicates ---- */

static int on_dup(void *ctx, const fv_duplicate *d)
{
    fvda_dups *ds = ctx;
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 4;
        fvda_dup *v = realloc(ds->v, cap * sizeof *v);
        if (v == NULL) return 1; /* stop: fewer warnings, never a crash */
        ds->v = v;
        ds->cap = cap;
    }
    fvda_dup *x = &ds->v[ds->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->table, sizeof x->table, "%s", d->table);
    snprintf(x->id, sizeof x->id, "%s", d->id);
    snprintf(x->field, sizeof x->field, "%s", d->field);
    snprintf(x->customer_id, sizeof x->customer_id, "%s", d->customer_id ? d->customer_id : "");
    if (d->name != NULL) {
        size_t n = strlen(d->name) + 1;
        if ((x->name = malloc(n)) != NULL) memcpy(x->name, d->name, n);
    }
    return 0;
}

fv_status fvda_dups_find(fv_db *db, const fv_record *r, fvda_dups *d)
{
    memset(d, 0, sizeof *d);
    return fv_find_duplicates(db, r, on_dup, d);
}

void fvda_dups_warn(FILE *err, const fvda_dups *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const fvda_dup *x = &d->v[i];
        fprintf(err, "fv: warning: possible duplicate: %s %s '", x->table, x->id);
        put_clean(err, x->name, 80);
        fprintf(err, "' has the same %s%s", strcmp(x->field, "name") == 0 ? "name" : x->field,
                strcmp(x->field, "name") == 0 ? "" : " (normalised)");
        if (x->customer_id[0] != '\0') fprintf(err, " (customer %s)", x->customer_id);
        fputs(strcmp(x->table, "customer") == 0
                  ? "; added anyway (fv customer merge folds duplicate customers)\n"
                  : "; added anyway\n",
              err);
    }
}

void fvda_dups_json(fvj_writer *j, const fvda_dups *d)
{
    fvj_begin_array(j);
    for (size_t i = 0; i < d->n; i++) {
        const fvda_dup *x = &d->v[i];
        fvj_begin_object(j);
        fvj_member_string(j, "table", x->table);
        fvj_member_string(j, "id", x->id);
        fvj_member_string(j, "field", x->field);
        fvj_member_string(j, "name", x->name);
        if (x->customer_id[0] != '\0') fvj_member_string(j, "customer_id", x->customer_id);
        fvj_end_object(j);
    }
    fvj_end_array(j);
}

void fvda_dups_free(fvda_dups *d)
{
    for (size_t i = 0; i < d->n; i++) free(d->v[i].name);
    free(d->v);
    memset(d, 0, sizeof *d);
}

/* ---- merge ---- */

fv_status fvda_merge(fv_db *db, const char *keep, const char *other, FILE *f, fvj_writer *j)
{
    fv_merge_info info;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    fv_status st = fv_customer_merge(db, keep, other, &info);
    if (st != FV_OK) return st;
    if (j != NULL) {
        fvj_set_layout(j, FVJ_LINE);
        fvj_begin_object(j);
        fvj_member_string(j, "keep", keep);
        fvj_member_string(j, "other", other);
        fvj_key(j, "fields_filled");
        fvj_int(j, (int64_t)info.fields_filled);
        fvj_key(j, "contacts");
        fvj_int(j, (int64_t)info.contacts);
        fvj_key(j, "visits");
        fvj_int(j, (int64_t)info.visits);
        fvj_key(j, "others");
        fvj_int(j, (int64_t)info.others);
        fvj_key(j, "ok");
        fvj_bool(j, 1);
        fvj_end_object(j);
        return FV_OK;
    }
    fprintf(f, "merged %.36s into %.36s: %zu field%s filled, %zu contact%s, %zu visit%s and %zu "
               "other record%s moved\n",
            other, keep, info.fields_filled, info.fields_filled == 1 ? "" : "s", info.contacts,
            info.contacts == 1 ? "" : "s", info.visits, info.visits == 1 ? "" : "s", info.others,
            info.others == 1 ? "" : "s");
    return FV_OK;
}

/* ---- the audit ---- */

/* "2026-03-05T10:00:00.123Z" */
static void time_text(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || gmtime_r(&secs, &tm) == NULL) {
        snprintf(out, 32, "?");
        return;
    }
    char day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", day, (int)(ms % 1000));
}

typedef struct lister {
    FILE *f;
    fvj_writer *j;
    size_t n;
} lister;

static int on_entry(void *ctx, const fv_audit_entry *e)
{
    lister *l = ctx;
    char at[32];
    time_text(e->at_ms, at);
    l->n++;
    if (l->j != NULL) {
        fvj_writer *j = l->j;
        fvj_begin_object(j);
        fvj_member_string(j, "id", e->id);
        fvj_member_string(j, "at", at);
        fvj_key(j, "at_ms");
        fvj_int(j, e->at_ms);
        fvj_member_string(j, "user", e->user);
        fvj_member_string(j, "table", e->table);
        fvj_member_string(j, "row_id", e->row_id);
        fvj_member_string(j, "field", e->field);
        fvj_member_string(j, "customer_id", e->customer_id);
        fvj_member_string(j, "device", e->device);
        fvj_key(j, "position");
        fvj_int(j, (int64_t)e->seq);
        fvj_member_string(j, "prev_hash", e->prev_hash);
        fvj_member_string(j, "hash", e->hash);
        fvj_key(j, "deleted");
        fvj_bool(j, e->deleted);
        fvj_end_object(j);
        return 0;
    }
    /* one line an entry; stored text is cleaned (it may have been edited) */
    char line[512];
    snprintf(line, sizeof line, "%s  device %.8s #%llu  %.64s read %.64s.%.64s of %.36s  (entry %.36s)%s",
             at, e->device, (unsigned long long)e->seq, e->user, e->table, e->field, e->row_id,
             e->id, e->deleted ? "  (deleted)" : "");
    put_clean(l->f, line, sizeof line);
    fputc('\n', l->f);
    return 0;
}

fv_status fvda_audit_list(fv_db *db, FILE *f, fvj_writer *j)
{
    lister l = {f, j, 0};
    if (j != NULL) fvj_begin_array(j);
    fv_status st = fv_audit_each(db, on_entry, &l);
    if (j != NULL) fvj_end_array(j);
    if (st == FV_OK && j == NULL && l.n == 0) fprintf(f, "no audit entries\n");
    return st;
}

typedef struct checker {
    FILE *f;
    fvj_writer *j;
    char *first;
    size_t first_cap;
    uint64_t n;
} checker;

static int on_problem(void *ctx, const fv_audit_problem *p)
{
    checker *c = ctx;
    if (c->n++ == 0) snprintf(c->first, c->first_cap, "%s", p->detail);
    if (c->j != NULL) {
        fvj_begin_object(c->j);
        fvj_member_string(c->j, "kind", p->kind);
        fvj_member_string(c->j, "id", p->entry_id);
        fvj_member_string(c->j, "device", p->device[0] ? p->device : NULL);
        fvj_key(c->j, "position");
        if (p->position > 0) fvj_int(c->j, (int64_t)p->position);
        else fvj_null(c->j);
        fvj_member_string(c->j, "detail", p->detail);
        fvj_end_object(c->j);
    } else {
        fprintf(c->f, "%s: ", p->kind);
        put_clean(c->f, p->detail, 400);
        fputc('\n', c->f);
    }
    return 0;
}

fv_status fvda_audit_verify(fv_db *db, FILE *f, fvj_writer *j, uint64_t *problems, char *first,
                            size_t first_cap)
{
    checker c = {f, j, first, first_cap, 0};
    fv_audit_summary sum;
    memset(&sum, 0, sizeof sum);
    sum.size = sizeof sum;
    first[0] = '\0';
    *problems = 0;
    if (j != NULL) {
        fvj_begin_object(j);
        fvj_key(j, "problems");
        fvj_begin_array(j);
    }
    fv_status st = fv_audit_verify(db, on_problem, &c, &sum);
    if (j != NULL) {
        fvj_end_array(j);
        fvj_key(j, "entries");
        fvj_int(j, (int64_t)sum.entries);
        fvj_key(j, "devices");
        fvj_int(j, (int64_t)sum.devices);
        fvj_key(j, "ok");
        fvj_bool(j, st == FV_OK && sum.problems == 0);
        fvj_end_object(j);
    } else if (st == FV_OK) {
        if (sum.problems == 0)
            fprintf(f, "the audit log verifies: %llu entr%s from %llu device%s\n",
                    (unsigned long long)sum.entries, sum.entries == 1 ? "y" : "ies",
                    (unsigned long long)sum.devices, sum.devices == 1 ? "" : "s");
        else
            fprintf(f, "the audit log does not verify: %llu problem%s in %llu entr%s from %llu "
                       "device%s\n",
                    (unsigned long long)sum.problems, sum.problems == 1 ? "" : "s",
                    (unsigned long long)sum.entries, sum.entries == 1 ? "y" : "ies",
                    (unsigned long long)sum.devices, sum.devices == 1 ? "" : "s");
    }
    *problems = sum.problems;
    return st;
}
