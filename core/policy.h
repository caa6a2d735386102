/*
 * policy.h - field-level access control as data, one module shared by the
 * device API and fvd (issue: field-level access control).
 *
 * A policy is a table: for each role, a row scope (own customers, the
 * team's, all, none) and for each table and field class an access level
 * (none, read, write).  Contacts, visits and complaints are in scope when
 * their customer is; complaints, activity records like visits, take the
 * visit column's access.  The default policy is DESIGN.md's:
 *
 *   role      scope  customer/contact fields         visit fields
 *   rep       own    public, pii, confidential: rw   rw
 *   lead      team   all classes rw                  rw
 *   director  all    all classes rw                  rw
 *   service   all    public r, pii r, confidential -  rw (may add visits)
 *   admin     none   -                               -
 *
 * One field rule stands beside the table (fv__policy_may_change): a
 * customer's grade is reviewed.  Only the reviewing roles (lead, director)
 * change customer.grade once the customer exists, and only they write the
 * decision on a grade proposal (customer.grade_decision, _decided_by,
 * _decided_at, _decision_for); the others propose (customer.grade_proposed
 * and its fields).  A customer may be given its first grade by the write
 * that creates it.
 *
 * Policies are versioned; a newer version replaces an older one.  Pure: no
 * I/O, no allocation.
 */
#ifndef FV_POLICY_H
#define FV_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "fieldvault.h"

#define FV_POLICY_ROLES_MAX 8
#define FV_POLICY_ROLE_MAX 16
#define FV_POLICY_TABLES 3 /* customer, contact, visit */

typedef enum fv__access { FV__ACCESS_NONE = 0, FV__ACCESS_READ = 1, FV__ACCESS_WRITE = 2 } fv__access;
typedef enum fv__scope {
    FV__SCOPE_NONE = 0,
    FV__SCOPE_OWN = 1,  /* customers whose owner is the user */
    FV__SCOPE_TEAM = 2, /* customers of the user's team */
    FV__SCOPE_ALL = 3
} fv__scope;

typedef struct fv__policy_role {
    char name[FV_POLICY_ROLE_MAX + 1];
    fv__scope scope;
    /* [table][class]: table 0 customer, 1 contact, 2 visit; class as
     * fv_field_class (public, pii, confidential) */
    unsigned char access[FV_POLICY_TABLES][3];
} fv__policy_role;

typedef struct fv__policy {
    uint32_t version;
    size_t nroles;
    fv__policy_role roles[FV_POLICY_ROLES_MAX];
} fv__policy;

/* Who is acting: an enrolled store's user, role and team. */
typedef struct fv__actor {
    const char *user;
    const char *role;
    const char *team;
} fv__actor;

/* The row a decision is about: its customer's owner and team (for a
 * contact or visit, those of the customer it belongs to).  NULL fields are
 * unknown (a row not yet seen: only its creator's change defines it). */
typedef struct fv__row_owner {
    const char *owner;
    const char *team;
} fv__row_owner;

void fv__policy_default(fv__policy *p);

/* -1 for an unknown table name, else its index (customer 0, contact 1,
 * visit 2; complaint 2 too: it takes the visit column). */
int fv__policy_table(const char *table);

/* The actor's access to a field of class cls of table (NONE for an unknown
 * role or table). */
fv__access fv__policy_field(const fv__policy *p, const char *role, const char *table,
                            fv_field_class cls);

/* Is the row in the actor's scope? */
int fv__policy_in_scope(const fv__policy *p, const fv__actor *a, const fv__row_owner *row);

/* May the actor write a field of class cls of table on row?  (In scope and
 * write access.)  On refusal, why gets a message naming the field and role
 * (why_cap bytes), e.g. "role service may not write customer.budget". */
int fv__policy_may_write(const fv__policy *p, const fv__actor *a, const char *table,
                         const char *field, fv_field_class cls, const fv__row_owner *row,
                         char *why, size_t why_cap);

/* fv__policy_may_write plus the field rules above: the check every write
 * goes through, on the device (core/acl.c) and in fvd (server/acl.c).
 * creating: the write creates the row (for a customer's grade: the write
 * that creates the customer may give it its first grade). */
int fv__policy_may_change(const fv__policy *p, const fv__actor *a, const char *table,
                          const char *field, fv_field_class cls, const fv__row_owner *row,
                          int creating, char *why, size_t why_cap);

/* Does role review grade proposals (may approve or reject them)? */
int fv__policy_reviews_grades(const char *role);

/* May the actor read it? */
int fv__policy_may_read(const fv__policy *p, const fv__actor *a, const char *table,
                        fv_field_class cls, const fv__row_owner *row);

/* ---- the policy as data ----
 * Text, for admins (fvd admin policy set|show):
 *
 *   version 2
 *   # role  scope  customer contact visit  (public pii confidential: - r w)
 *   rep     own    www      www     www
 *   service all    rr-      rr-     www
 *
 * and bytes, for stores and the wire (fv__policy_encode: at most
 * FV_POLICY_BYTES_MAX).  Both are checked by fv__policy_check: a version,
 * 1..FV_POLICY_ROLES_MAX distinct roles named [a-z_]+, known scopes and
 * access levels. */
#define FV_POLICY_BYTES_MAX (6 + FV_POLICY_ROLES_MAX * (2 + FV_POLICY_ROLE_MAX + FV_POLICY_TABLES * 3))
int fv__policy_check(const fv__policy *p, char *why, size_t why_cap);
/* 1, or 0 with why naming the line. */
int fv__policy_parse(const char *text, fv__policy *p, char *why, size_t why_cap);
/* The text form into out (NUL-terminated, cut at cap); returns the
 * length out holds. */
size_t fv__policy_format(const fv__policy *p, char *out, size_t cap);
/* Bytes: the length written (0 if cap is too small); decode 0 or -1. */
size_t fv__policy_encode(const fv__policy *p, unsigned char *out, size_t cap);
int fv__policy_decode(const unsigned char *b, size_t n, fv__policy *p);
/* Does `to` give role more than `from` (a wider scope, or more access to
 * some table and class)?  Then a device must pull again what was withheld. */
int fv__policy_widens(const fv__policy *from, const fv__policy *to, const char *role);

#endif /* FV_POLICY_H */
