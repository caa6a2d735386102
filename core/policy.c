/*
 * policy.c - see policy.h.  Decisions are functions of (policy, actor, row,
 * table, class) only, so a device and fvd holding the same policy version
 * decide the same way.
 */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const tables[FV_POLICY_TABLES] = {"customer", "contact", "visit"};

int fv__policy_table(const char *table)
{
    if (table == NULL) return -1;
    for (int i = 0; i < FV_POLICY_TABLES; i++)
        if (strcmp(tables[i], table) == 0) return i;
    if (strcmp(table, "complaint") == 0) return 2; /* an activity record, like a visit */
    /* an entry of the read audit: in scope of the customer read, written by
     * whoever may add visits there (every role that may read a customer) */
    if (strcmp(table, "audit") == 0) return 2;
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

/* ---- field rules: the grade review ---- */

int fv__policy_reviews_grades(const char *role)
{
    return role != NULL && (strcmp(role, "lead") == 0 || strcmp(role, "director") == 0);
}

/* The fields only a reviewer writes: the decision on a proposal, and the
 * grade itself (which an approval sets). */
static int reviewed_field(const char *table, const char *field)
{
    static const char *const fields[] = {"grade", "grade_decision", "grade_decided_by",
                                         "grade_decided_at", "grade_decision_for"};
    if (table == NULL || field == NULL || strcmp(table, "customer") != 0) return 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(fields[i], field) == 0) return 1;
    return 0;
}

int fv__policy_may_change(const fv__policy *p, const fv__actor *a, const char *table,
                          const char *field, fv_field_class cls, const fv__row_owner *row,
                          int creating, char *why, size_t why_cap)
{
    if (!fv__policy_may_write(p, a, table, field, cls, row, why, why_cap)) return 0;
    if (!reviewed_field(table, field) || fv__policy_reviews_grades(a->role)) return 1;
    if (creating && strcmp(field, "grade") == 0) return 1; /* a new customer's first grade */
    const char *role = a->role ? a->role : "(none)";
    if (strcmp(field, "grade") == 0)
        snprintf(why, why_cap,
                 "role %s may not change customer.grade: propose the grade instead "
                 "(fv_grade_propose; fv customer grade DB ID --propose S|A|B) and a lead or "
                 "director approves it", role);
    else
        snprintf(why, why_cap,
                 "role %s may not write customer.%s: only a lead or director approves or rejects "
                 "a grade proposal", role, field);
    return 0;
}

/* ---- the policy as data: text (admins) and bytes (stores, the wire) ---- */

static const char *const scope_names[] = {"none", "own", "team", "all"};
static const char access_chars[] = "-rw";

int fv__policy_check(const fv__policy *p, char *why, size_t why_cap)
{
    if (p->version == 0) {
        snprintf(why, why_cap, "the policy has no version");
        return 0;
    }
    if (p->nroles == 0 || p->nroles > FV_POLICY_ROLES_MAX) {
        snprintf(why, why_cap, "a policy has 1 to %d roles", FV_POLICY_ROLES_MAX);
        return 0;
    }
    for (size_t i = 0; i < p->nroles; i++) {
        const fv__policy_role *r = &p->roles[i];
        size_t n = strnlen(r->name, sizeof r->name);
        if (n == 0 || n == sizeof r->name) {
            snprintf(why, why_cap, "role %zu has no valid name", i + 1);
            return 0;
        }
        for (size_t k = 0; k < n; k++)
            if (!((r->name[k] >= 'a' && r->name[k] <= 'z') || r->name[k] == '_')) {
                snprintf(why, why_cap, "role name '%s': lower-case letters and _ only", r->name);
                return 0;
            }
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->roles[j].name, r->name) == 0) {
                snprintf(why, why_cap, "role %s is listed twice", r->name);
                return 0;
            }
        if ((unsigned)r->scope > FV__SCOPE_ALL) {
            snprintf(why, why_cap, "role %s: unknown scope", r->name);
            return 0;
        }
        for (int t = 0; t < FV_POLICY_TABLES; t++)
            for (int c = 0; c < 3; c++)
                if (r->access[t][c] > FV__ACCESS_WRITE) {
                    snprintf(why, why_cap, "role %s: unknown access level", r->name);
                    return 0;
                }
    }
    return 1;
}

size_t fv__policy_encode(const fv__policy *p, unsigned char *out, size_t cap)
{
    size_t need = 6 + p->nroles * (1 + FV_POLICY_ROLE_MAX + 1 + FV_POLICY_TABLES * 3);
    if (cap < need || p->nroles > FV_POLICY_ROLES_MAX) return 0;
    size_t n = 0;
    out[n++] = 'P';
    for (int i = 3; i >= 0; i--) out[n++] = (unsigned char)(p->version >> (8 * i));
    out[n++] = (unsigned char)p->nroles;
    for (size_t i = 0; i < p->nroles; i++) {
        const fv__policy_role *r = &p->roles[i];
        size_t len = strnlen(r->name, FV_POLICY_ROLE_MAX);
        out[n++] = (unsigned char)len;
        memcpy(out + n, r->name, len);
        n += len;
        out[n++] = (unsigned char)r->scope;
        for (int t = 0; t < FV_POLICY_TABLES; t++)
            for (int c = 0; c < 3; c++) out[n++] = r->access[t][c];
    }
    return n;
}

int fv__policy_decode(const unsigned char *b, size_t n, fv__policy *p)
{
    memset(p, 0, sizeof *p);
    size_t i = 0;
    if (n < 6 || b[i++] != 'P') return -1;
    for (int k = 0; k < 4; k++) p->version = p->version << 8 | b[i++];
    p->nroles = b[i++];
    if (p->nroles == 0 || p->nroles > FV_POLICY_ROLES_MAX) return -1;
    for (size_t r = 0; r < p->nroles; r++) {
        fv__policy_role *x = &p->roles[r];
        if (i >= n) return -1;
        size_t len = b[i++];
        if (len == 0 || len > FV_POLICY_ROLE_MAX || n - i < len + 1 + FV_POLICY_TABLES * 3) return -1;
        memcpy(x->name, b + i, len);
        i += len;
        x->scope = (fv__scope)b[i++];
        for (int t = 0; t < FV_POLICY_TABLES; t++)
            for (int c = 0; c < 3; c++) x->access[t][c] = b[i++];
    }
    char why[128];
    return i == n && fv__policy_check(p, why, sizeof why) ? 0 : -1;
}

int fv__policy_parse(const char *text, fv__policy *p, char *why, size_t why_cap)
{
    memset(p, 0, sizeof *p);
    int line = 0;
    const char *s = text;
    while (*s != '\0') {
        line++;
        const char *e = strchr(s, '\n');
        size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
        char buf[256];
        if (len >= sizeof buf) {
            snprintf(why, why_cap, "line %d: too long", line);
            return 0;
        }
        memcpy(buf, s, len);
        buf[len] = '\0';
        s += len + (e != NULL);
        char *hash = strchr(buf, '#');
        if (hash != NULL) *hash = '\0';
        char w[6][64];
        int nw = sscanf(buf, "%63s %63s %63s %63s %63s %63s", w[0], w[1], w[2], w[3], w[4], w[5]);
        if (nw <= 0) continue; /* blank or comment */
        if (strcmp(w[0], "version") == 0) {
            char *end;
            unsigned long v = nw == 2 ? strtoul(w[1], &end, 10) : 0;
            if (nw != 2 || *end != '\0' || v == 0 || v > 0xffffffffUL) {
                snprintf(why, why_cap, "line %d: version takes a number from 1", line);
                return 0;
            }
            if (p->version != 0) {
                snprintf(why, why_cap, "line %d: the version is given twice", line);
                return 0;
            }
            p->version = (uint32_t)v;
            continue;
        }
        if (nw != 5) {
            snprintf(why, why_cap,
                     "line %d: expected ROLE SCOPE CUSTOMER CONTACT VISIT (e.g. rep own www www www)",
                     line);
            return 0;
        }
        if (p->nroles == FV_POLICY_ROLES_MAX) {
            snprintf(why, why_cap, "line %d: at most %d roles", line, FV_POLICY_ROLES_MAX);
            return 0;
        }
        fv__policy_role *r = &p->roles[p->nroles];
        if (strlen(w[0]) > FV_POLICY_ROLE_MAX) {
            snprintf(why, why_cap, "line %d: role name longer than %d", line, FV_POLICY_ROLE_MAX);
            return 0;
        }
        memcpy(r->name, w[0], strlen(w[0]) + 1); /* checked: fits */
        for (size_t j = 0; j < p->nroles; j++)
            if (strcmp(p->roles[j].name, r->name) == 0) {
                snprintf(why, why_cap, "line %d: role %s is listed twice", line, r->name);
                return 0;
            }
        for (const char *c = r->name; *c != '\0'; c++)
            if (!((*c >= 'a' && *c <= 'z') || *c == '_')) {
                snprintf(why, why_cap, "line %d: role name '%s': lower-case letters and _ only",
                         line, r->name);
                return 0;
            }
        int scope = -1;
        for (int k = 0; k < 4; k++)
            if (strcmp(w[1], scope_names[k]) == 0) scope = k;
        if (scope < 0) {
            snprintf(why, why_cap, "line %d: scope '%s' is not none, own, team or all", line, w[1]);
            return 0;
        }
        r->scope = (fv__scope)scope;
        for (int t = 0; t < FV_POLICY_TABLES; t++) {
            const char *a = w[2 + t];
            if (strlen(a) != 3) {
                snprintf(why, why_cap,
                         "line %d: %s access '%s': three of - r w (public, pii, confidential)",
                         line, tables[t], a);
                return 0;
            }
            for (int c = 0; c < 3; c++) {
                const char *at = strchr(access_chars, a[c]);
                if (at == NULL || a[c] == '\0') {
                    snprintf(why, why_cap, "line %d: %s access '%s': use - r w", line, tables[t], a);
                    return 0;
                }
                r->access[t][c] = (unsigned char)(at - access_chars);
            }
        }
        p->nroles++;
    }
    if (!fv__policy_check(p, why, why_cap)) return 0;
    return 1;
}

size_t fv__policy_format(const fv__policy *p, char *out, size_t cap)
{
    if (cap == 0) return 0;
    size_t n = (size_t)snprintf(out, cap,
                                "# fieldvault access policy\n"
                                "version %u\n"
                                "# role     scope  customer contact visit"
                                "   (public pii confidential: - none, r read, w write)\n",
                                (unsigned)p->version);
    for (size_t i = 0; i < p->nroles && n < cap; i++) {
        const fv__policy_role *r = &p->roles[i];
        char a[3][4];
        for (int t = 0; t < FV_POLICY_TABLES; t++) {
            for (int c = 0; c < 3; c++) a[t][c] = access_chars[r->access[t][c] <= 2 ? r->access[t][c] : 0];
            a[t][3] = '\0';
        }
        n += (size_t)snprintf(out + n, cap - n, "%-10s %-6s %-8s %-7s %s\n", r->name,
                              scope_names[(unsigned)r->scope <= 3 ? r->scope : 0], a[0], a[1], a[2]);
    }
    return n < cap ? n : (cap > 0 ? cap - 1 : 0); /* what out holds */
}

int fv__policy_widens(const fv__policy *from, const fv__policy *to, const char *role)
{
    const fv__policy_role *a = role_of(from, role), *b = role_of(to, role);
    if (b == NULL) return 0;
    if (a == NULL) return 1;
    if (b->scope > a->scope) return 1;
    for (int t = 0; t < FV_POLICY_TABLES; t++)
        for (int c = 0; c < 3; c++)
            if (b->access[t][c] > a->access[t][c]) return 1;
    return 0;
}
