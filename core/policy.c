/*
 * policy.c - see policy.h.  Decisions are functions of (policy, actor, row,
 * table, class) only, so a device and fvd holding the same policy version
 * decide the same way.
 */
#include "policy.h"

#include <stdio.h>
#include <string.h>

static const char *const tables[FV_POLICY_TABLES] = {"customer", "contact", "visit"};

int fv__policy_table(const char *table)
{
    if (table == NULL) return -1;
    for (int i = 0; i < FV_POLICY_TABLES; i++)
        if (strcmp(tables[i], table) == 0) return i;
    return -1;
}

static void set_role(fv__policy_role *r, const char *name, fv__scope scope, unsigned char pub,
                     unsigned char pii, unsigned char conf, unsigned char visit)
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->scope = scope;
    for (int t = 0; t < 2; t++) {
        r->access[t][FV_CLASS_PUBLIC] = pub;
        r->access[t][FV_CLASS_PII] = pii;
        r->access[t][FV_CLASS_CONFIDENTIAL] = conf;
    }
    /* visits carry public fields only; a role may add them even where it
     * may only read customers (service agents) */
    r->access[2][FV_CLASS_PUBLIC] = visit;
    r->access[2][FV_CLASS_PII] = visit;
    r->access[2][FV_CLASS_CONFIDENTIAL] = visit;
}

void fv__policy_default(fv__policy *p)
{
    const unsigned char N = FV__ACCESS_NONE, R = FV__ACCESS_READ, W = FV__ACCESS_WRITE;
    memset(p, 0, sizeof *p);
    p->version = 1;
    set_role(&p->roles[p->nroles++], "rep", FV__SCOPE_OWN, W, W, W, W);
    set_role(&p->roles[p->nroles++], "lead", FV__SCOPE_TEAM, W, W, W, W);
    set_role(&p->roles[p->nroles++], "director", FV__SCOPE_ALL, W, W, W, W);
    set_role(&p->roles[p->nroles++], "service", FV__SCOPE_ALL, R, R, N, W);
    set_role(&p->roles[p->nroles++], "admin", FV__SCOPE_NONE, N, N, N, N);
}

static const fv__policy_role *role_of(const fv__policy *p, const char *role)
{
    if (role == NULL) return NULL;
    for (size_t i = 0; i < p->nroles && i < FV_POLICY_ROLES_MAX; i++)
        if (strcmp(p->roles[i].name, role) == 0) return &p->roles[i];
    return NULL;
}

fv__access fv__policy_field(const fv__policy *p, const char *role, const char *table,
                            fv_field_class cls)
{
    const fv__policy_role *r = role_of(p, role);
    int t = fv__policy_table(table);
    if (r == NULL || t < 0 || (int)cls < 0 || (int)cls > 2) return FV__ACCESS_NONE;
    unsigned char a = r->access[t][cls];
    return a > FV__ACCESS_WRITE ? FV__ACCESS_NONE : (fv__access)a;
}

static int same(const char *a, const char *b)
{
    return a != NULL && b != NULL && a[0] != '\0' && strcmp(a, b) == 0;
}

int fv__policy_in_scope(const fv__policy *p, const fv__actor *a, const fv__row_owner *row)
{
    const fv__policy_role *r = role_of(p, a->role);
    if (r == NULL) return 0;
    switch (r->scope) {
    case FV__SCOPE_ALL: return 1;
    case FV__SCOPE_TEAM: return same(row->team, a->team);
    case FV__SCOPE_OWN: return same(row->owner, a->user);
    default: return 0;
    }
}

int fv__policy_may_read(const fv__policy *p, const fv__actor *a, const char *table,
                        fv_field_class cls, const fv__row_owner *row)
{
    return fv__policy_in_scope(p, a, row) && fv__policy_field(p, a->role, table, cls) >= FV__ACCESS_READ;
}

int fv__policy_may_write(const fv__policy *p, const fv__actor *a, const char *table,
                         const char *field, fv_field_class cls, const fv__row_owner *row,
                         char *why, size_t why_cap)
{
    const char *role = a->role ? a->role : "(none)";
    if (role_of(p, a->role) == NULL) {
        snprintf(why, why_cap, "role %s is not in the policy", role);
        return 0;
    }
    if (fv__policy_field(p, a->role, table, cls) < FV__ACCESS_WRITE) {
        snprintf(why, why_cap, "role %s may not write %s.%s", role, table, field);
        return 0;
    }
    if (!fv__policy_in_scope(p, a, row)) {
        snprintf(why, why_cap, "%s.%s: this %s is outside the scope of user %s (role %s)", table,
                 field, table, a->user ? a->user : "?", role);
        return 0;
    }
    return 1;
}
