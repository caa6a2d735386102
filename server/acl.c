/*
 * acl.c - see acl.h.  Layout: the policy in force; the rows of a push
 * batch (an open-addressing map) and who may write them; the filter and
 * the field check of a pull.
 */
#include "acl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

fv_status fvd_policy_current(fvd_store *s, fv__policy *p, int *stored, char *err,
                             size_t errcap)
{
    int found = 0;
    fv_status st = s->ops->get_policy(s, p, &found, err, errcap);
    if (st == FV_OK && !found) fv__policy_default(p);
    if (stored != NULL) *stored = st == FV_OK && found;
    return st;
}

typedef struct row {
    int used;
    int table;                          /* fv__policy_table index */
    char tname[FV_NAME_MAX + 1];        /* its table (complaints share visits' index) */
    unsigned char id[FV_ROWID_LEN];
    int has_owner, has_team, has_cust;  /* given by the batch */
    char owner[FV_NAME_MAX + 1], team[FV_NAME_MAX + 1];
    unsigned char cust[FV_ROWID_LEN];
    int resolved;
    char r_owner[FV_NAME_MAX + 1], r_team[FV_NAME_MAX + 1];
    int stored; /* a customer the store held before the batch (else the batch creates it) */
} row;

struct fvd_rows {
    row *v;
    size_t cap, n;
};

fvd_rows *fvd_rows_new(void)
{
    fvd_rows *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    m->cap = 256;
    m->v = calloc(m->cap, sizeof *m->v);
    if (m->v == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void fvd_rows_free(fvd_rows *m)
{
    if (m == NULL) return;
    free(m->v);
    free(m);
}

static size_t hash(int table, const unsigned char id[FV_ROWID_LEN])
{
    size_t h = (size_t)table * 1099511628211u;
    for (int i = 0; i < FV_ROWID_LEN; i++) h = (h ^ id[i]) * 1099511628211u;
    return h;
}

static row *find(const fvd_rows *m, int table, const unsigned char id[FV_ROWID_LEN])
{
    for (size_t i = hash(table, id) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        row *r = &m->v[i];
        if (!r->used) return r;
        if (r->table == table && memcmp(r->id, id, FV_ROWID_LEN) == 0) return r;
    }
}

static int grow(fvd_rows *m)
{
    fvd_rows bigger = {calloc(m->cap * 2, sizeof *m->v), m->cap * 2, 0};
    if (bigger.v == NULL) return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->v[i].used) *find(&bigger, m->v[i].table, m->v[i].id) = m->v[i];
    free(m->v);
    m->v = bigger.v;
    m->cap = bigger.cap;
    return 0;
}

int fvd_rows_note(fvd_rows *m, const fv__change *c)
{
    int t = fv__policy_table(c->table);
    if (t < 0) return 0; /* validation refuses it anyway */
    if ((m->n + 1) * 2 > m->cap && grow(m) != 0) return -1;
    row *r = find(m, t, c->row_id);
    if (!r->used) {
        memset(r, 0, sizeof *r);
        r->used = 1;
        r->table = t;
        snprintf(r->tname, sizeof r->tname, "%s", c->table);
        memcpy(r->id, c->row_id, FV_ROWID_LEN);
        m->n++;
    }
    const char *text = c->kind == FV__VAL_TEXT ? (const char *)c->data : "";
    if (t == 0 && strcmp(c->field, "owner") == 0) {
        r->has_owner = 1;
        snprintf(r->owner, sizeof r->owner, "%.64s", text);
    } else if (t == 0 && strcmp(c->field, "team") == 0) {
        r->has_team = 1;
        snprintf(r->team, sizeof r->team, "%.64s", text);
    } else if (t > 0 && strcmp(c->field, "customer_id") == 0 && c->kind == FV__VAL_TEXT) {
        r->has_cust = fv__uuid_parse(text, r->cust);
    }
    return 0;
}

/* The current text of tbl.field of id in the store ("" if none). */
static fv_status stored_text(fvd_store *s, const char *tbl, const unsigned char id[FV_ROWID_LEN],
                             const char *field, char *out, size_t cap, int *found, char *err,
                             size_t errcap)
{
    static _Thread_local fv__change c; /* one change is 4 KiB: not on the stack */
    int f = 0;
    fv_status st = s->ops->get_value(s, tbl, id, field, &c, &f, err, errcap);
    out[0] = '\0';
    if (st == FV_OK && f && c.kind == FV__VAL_TEXT) snprintf(out, cap, "%.64s", (const char *)c.data);
    if (found) *found = st == FV_OK && f;
    return st;
}

static fv_status customer_scope(fvd_store *s, const fvd_rows *m,
                                const unsigned char cust[FV_ROWID_LEN], char *owner, char *team,
                                char *err, size_t errcap)
{
    int found_o = 0, found_t = 0;
    fv_status st = stored_text(s, "customer", cust, "owner", owner, FV_NAME_MAX + 1, &found_o,
                               err, errcap);
    if (st == FV_OK)
        st = stored_text(s, "customer", cust, "team", team, FV_NAME_MAX + 1, &found_t, err, errcap);
    if (st != FV_OK || m == NULL) return st;
    /* a customer new in this batch: as the batch makes it */
    row *r = find(m, 0, cust);
    if (r->used && !found_o && r->has_owner) snprintf(owner, FV_NAME_MAX + 1, "%s", r->owner);
    if (r->used && !found_t && r->has_team) snprintf(team, FV_NAME_MAX + 1, "%s", r->team);
    return FV_OK;
}

fv_status fvd_rows_resolve(fvd_rows *m, fvd_store *s, char *err, size_t errcap)
{
    for (size_t i = 0; i < m->cap; i++) {
        row *r = &m->v[i];
        if (!r->used) continue;
        fv_status st;
        if (r->table == 0) {
            char name[FV_NAME_MAX + 1]; /* a customer always has one */
            st = customer_scope(s, m, r->id, r->r_owner, r->r_team, err, errcap);
            if (st == FV_OK)
                st = stored_text(s, "customer", r->id, "name", name, sizeof name, &r->stored, err,
                                 errcap);
        } else {
            char cust_text[FV_ID_LEN + 1];
            unsigned char cust[FV_ROWID_LEN];
            int found = 0, have = 0;
            st = stored_text(s, r->tname, r->id, "customer_id", cust_text,
                             sizeof cust_text, &found, err, errcap);
            if (st != FV_OK) return st;
            if (found) have = fv__uuid_parse(cust_text, cust);
            else if (r->has_cust) {
                memcpy(cust, r->cust, FV_ROWID_LEN);
                have = 1;
            }
            r->r_owner[0] = r->r_team[0] = '\0';
            st = have ? customer_scope(s, m, cust, r->r_owner, r->r_team, err, errcap) : FV_OK;
        }
        if (st != FV_OK) return st;
        r->resolved = 1;
    }
    return FV_OK;
}

fv_field_class fvd_field_class(const fv__change *c)
{
    fv__field f;
    if (strcmp(c->field, FV_FIELD_DELETED) != 0 && fv__shipped_field(c->table, c->field, &f))
        return f.cls;
    return FV_CLASS_PUBLIC;
}

int fvd_rows_may_write(const fvd_rows *m, const fv__policy *p, const fvd_device *dev,
                       const fv__change *c, char *why, size_t why_cap)
{
    int t = fv__policy_table(c->table);
    if (t < 0) {
        snprintf(why, why_cap, "no table %s", c->table);
        return 0;
    }
    row *r = find(m, t, c->row_id);
    fv__actor a = {dev->user, dev->role, dev->team};
    fv__row_owner ro = {r->used ? r->r_owner : "", r->used ? r->r_team : ""};
    /* a customer new in this batch: the write creating it (a device never
     * splits one write over two batches) */
    int creating = t == 0 && r->used && !r->stored;
    return fv__policy_may_change(p, &a, c->table, c->field, fvd_field_class(c), &ro, creating,
                                 why, why_cap);
}

const char *fvd_rows_team(const fvd_rows *m, const fv__change *c)
{
    int t = fv__policy_table(c->table);
    if (t < 0) return "";
    const row *r = find(m, t, c->row_id);
    return r->used && r->resolved ? r->r_team : "";
}

void fvd_pull_filter_of(const fv__policy *p, const fvd_device *dev, fvd_pull_filter *f)
{
    f->scope = FVD_PULL_NOTHING;
    f->name = NULL;
    for (size_t i = 0; i < p->nroles && i < FV_POLICY_ROLES_MAX; i++) {
        if (strcmp(p->roles[i].name, dev->role) != 0) continue;
        /* fv__policy_in_scope: an empty name or team matches nothing */
        switch (p->roles[i].scope) {
        case FV__SCOPE_ALL:
            f->scope = FVD_PULL_ALL;
            break;
        case FV__SCOPE_OWN:
            if (dev->user[0] != '\0') {
                f->scope = FVD_PULL_OWNER;
                f->name = dev->user;
            }
            break;
        case FV__SCOPE_TEAM:
            if (dev->team[0] != '\0') {
                f->scope = FVD_PULL_TEAM;
                f->name = dev->team;
            }
            break;
        default:
            break;
        }
        return;
    }
}

int fvd_may_read_field(const fv__policy *p, const fvd_device *dev, const fv__change *c)
{
    return fv__policy_table(c->table) >= 0 &&
           fv__policy_field(p, dev->role, c->table, fvd_field_class(c)) >= FV__ACCESS_READ;
}
