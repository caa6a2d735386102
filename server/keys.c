/*
 * keys.c - init, grant and rotate of field keys (see keys.h).
 *
 * Layout: class names; who should hold a key (policy); publishing the key
 * file's facts for a team; granting; the three operations.
 *
 * Order of writes: a new key goes into the key file (saved atomically)
 * before the store hears of it, so the store never names a key the file
 * has lost; a key the file holds but the store does not know yet is
 * published by the next operation on its team.  Grants are sealed with
 * fv__fc_grant_make straight from the key file's memory: no copy of a
 * field key is made here.
 */
#include "keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "fvd.h"
#include "policy.h"

int fvd_class_parse(const char *name)
{
    if (name == NULL) return -1;
    if (strcmp(name, "pii") == 0) return FV_CLASS_PII;
    if (strcmp(name, "confidential") == 0) return FV_CLASS_CONFIDENTIAL;
    return -1;
}

const char *fvd_class_name(int cls)
{
    return cls == FV_CLASS_PII ? "pii" : cls == FV_CLASS_CONFIDENTIAL ? "confidential" : "?";
}

static const int CLASSES[2] = {FV_CLASS_PII, FV_CLASS_CONFIDENTIAL};

/* ---- Who should hold team's key of class cls ---- */

/* The catalogue's table with fields of class cls (core/schema.c): pii is
 * on contacts, confidential on customers. */
static const char *table_of(int cls)
{
    return cls == FV_CLASS_PII ? "contact" : "customer";
}

static int should_hold(const fv__policy *p, const fvd_device *d, const char *team, int cls)
{
    if (d->revoked) return 0;
    if (fv__policy_field(p, d->role, table_of(cls), (fv_field_class)cls) < FV__ACCESS_READ)
        return 0;
    for (size_t i = 0; i < p->nroles && i < FV_POLICY_ROLES_MAX; i++) {
        const fv__policy_role *r = &p->roles[i];
        if (strcmp(r->name, d->role) != 0) continue;
        if (r->scope == FV__SCOPE_ALL) return 1;
        if (r->scope == FV__SCOPE_OWN || r->scope == FV__SCOPE_TEAM)
            return strcmp(d->team, team) == 0;
        return 0;
    }
    return 0;
}

/* ---- Publishing ---- */

static fv_status publish_admin(fvd_store *s, const fvd_adminkeys *ak, char *err, size_t errcap)
{
    char why[256] = "";
    fv_status st = s->ops->set_admin_key(s, fvd_adminkeys_public(ak), why, sizeof why);
    if (st == FV_EEXIST)
        snprintf(err, errcap, "the store of record has another admin key: this is not the "
                 "admin key file its field keys were made with (see --admin-keys)");
    else if (st != FV_OK)
        snprintf(err, errcap, "cannot record the admin public key: %s", why);
    return st;
}

/* The store's view of team must not be ahead of the key file's. */
static fv_status check_store(fvd_store *s, const fvd_adminkeys *ak, const char *team,
                             char *err, size_t errcap)
{
    for (int i = 0; i < 2; i++) {
        uint32_t v = 0, mine = fvd_adminkeys_latest(ak, team, CLASSES[i]);
        char why[256] = "";
        fv_status st = s->ops->current_key_version(s, team, CLASSES[i], &v, why, sizeof why);
        if (st != FV_OK) {
            snprintf(err, errcap, "cannot read team %s's key versions: %s", team, why);
            return st;
        }
        if (v > mine) {
            snprintf(err, errcap, "the store of record knows team %s's %s key v%u but this "
                     "admin key file holds %s%u: an old copy, or another file?", team,
                     fvd_class_name(CLASSES[i]), (unsigned)v, mine ? "up to v" : "none, v",
                     (unsigned)mine);
            return FV_EEXIST;
        }
    }
    return FV_OK;
}

/* Publish every version of team's keys the file holds (already published:
 * fine). */
static fv_status publish_team(fvd_store *s, const fvd_adminkeys *ak, const char *team,
                              char *err, size_t errcap)
{
    for (size_t i = 0; i < fvd_adminkeys_count(ak); i++) {
        const fvd_field_key *k = fvd_adminkeys_key(ak, i);
        if (strcmp(k->team, team) != 0) continue;
        unsigned char id[FV_FKEY_ID_LEN];
        fv__fc_key_id(k->team, k->cls, k->version, id);
        char why[256] = "";
        fv_status st = s->ops->put_team_key(s, k->team, k->cls, k->version, id, k->created_ms,
                                            why, sizeof why);
        if (st != FV_OK && st != FV_EEXIST) {
            snprintf(err, errcap, "cannot publish team %s's %s key v%u: %s", team,
                     fvd_class_name(k->cls), (unsigned)k->version, why);
            return st;
        }
    }
    return FV_OK;
}

/* ---- Granting ---- */

typedef struct devices {
    fvd_device *v;
    size_t n, cap;
    int oom;
} devices;

static int collect_device(void *ctx, const fvd_device *d)
{
    devices *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        fvd_device *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL) {
            l->oom = 1;
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *d;
    return 0;
}

/* Grant every version of team's keys of class cls to d (if it should hold
 * them and does not). */
static fv_status grant_device(fvd_store *s, const fvd_adminkeys *ak, const fvd_device *d,
                              const char *team, int cls, fvd_keys_result *res, char *err,
                              size_t errcap)
{
    for (size_t i = 0; i < fvd_adminkeys_count(ak); i++) {
        const fvd_field_key *k = fvd_adminkeys_key(ak, i);
        if (k->cls != cls || strcmp(k->team, team) != 0) continue;
        unsigned char sealed[FV_GRANT_SEALED_LEN], sig[FV_GRANT_SIG_LEN];
        if (fv__fc_grant_make(fvd_adminkeys_secret(ak), d->id, d->public_key, team, cls,
                              k->version, k->key, sealed, sig) != 0) {
            res->skipped++;
            return FV_OK; /* not a usable key: enrolment refuses those */
        }
        int inserted = 0;
        char why[256] = "";
        fv_status st = s->ops->put_grant(s, d->id, team, cls, k->version, sealed, sig,
                                         &inserted, why, sizeof why);
        if (st != FV_OK) {
            char hex[2 * FV_DEVICE_LEN + 1];
            fvd_hex(d->id, FV_DEVICE_LEN, hex);
            snprintf(err, errcap, "cannot store the grant of team %s's %s key v%u to device "
                     "%s: %s", team, fvd_class_name(cls), (unsigned)k->version, hex, why);
            return st;
        }
        res->issued += (uint64_t)inserted;
    }
    return FV_OK;
}

fv_status fvd_keys_grant(fvd_store *s, const fvd_adminkeys *ak, const char *team,
                         fvd_keys_result *res, char *err, size_t errcap)
{
    if (s == NULL || ak == NULL || team == NULL || res == NULL) {
        snprintf(err, errcap, "keys grant: missing argument");
        return FV_EMISUSE;
    }
    for (int i = 0; i < 2; i++)
        res->version[CLASSES[i]] = fvd_adminkeys_latest(ak, team, CLASSES[i]);
    if (res->version[FV_CLASS_PII] == 0 && res->version[FV_CLASS_CONFIDENTIAL] == 0) {
        snprintf(err, errcap, "team %s has no field keys: run fvd admin keys init %s first",
                 team, team);
        return FV_ENOTFOUND;
    }
    fv_status st = publish_admin(s, ak, err, errcap);
    if (st == FV_OK) st = check_store(s, ak, team, err, errcap);
    if (st == FV_OK) st = publish_team(s, ak, team, err, errcap);
    if (st != FV_OK) return st;

    devices l = {NULL, 0, 0, 0};
    char why[256] = "";
    st = s->ops->list_devices(s, collect_device, &l, why, sizeof why);
    if (st == FV_OK && l.oom) {
        st = FV_ENOMEM;
        snprintf(why, sizeof why, "out of memory");
    }
    if (st != FV_OK) {
        free(l.v);
        snprintf(err, errcap, "cannot list the devices: %s", why);
        return st;
    }
    fv__policy policy;
    st = fvd_policy_current(s, &policy, NULL, why, sizeof why);
    if (st != FV_OK) {
        free(l.v);
        snprintf(err, errcap, "cannot read the access policy: %s", why);
        return st;
    }
    for (size_t i = 0; st == FV_OK && i < l.n; i++)
        for (int c = 0; st == FV_OK && c < 2; c++)
            if (should_hold(&policy, &l.v[i], team, CLASSES[c]))
                st = grant_device(s, ak, &l.v[i], team, CLASSES[c], res, err, errcap);
    free(l.v);
    return st;
}

/* ---- init and rotate ---- */

fv_status fvd_keys_init(fvd_store *s, fvd_adminkeys *ak, const char *team, int64_t now_ms,
                        fvd_keys_result *res, char *err, size_t errcap)
{
    if (s == NULL || ak == NULL || team == NULL || res == NULL) {
        snprintf(err, errcap, "keys init: missing argument");
        return FV_EMISUSE;
    }
    if (!fvd_name_ok(team, FVD_NAME_MAX, 0)) {
        snprintf(err, errcap, "bad team name: 1 to %d bytes of UTF-8, no control characters",
                 FVD_NAME_MAX);
        return FV_EINVAL;
    }
    /* Before anything is made: the store must be this file's. */
    fv_status st = publish_admin(s, ak, err, errcap);
    if (st == FV_OK) st = check_store(s, ak, team, err, errcap);
    if (st != FV_OK) return st;
    int added = 0;
    for (int i = 0; i < 2; i++) {
        if (fvd_adminkeys_latest(ak, team, CLASSES[i]) > 0) continue;
        char why[256] = "";
        st = fvd_adminkeys_add(ak, team, CLASSES[i], 1, now_ms, why, sizeof why);
        if (st != FV_OK) {
            snprintf(err, errcap, "cannot make team %s's %s key: %s", team,
                     fvd_class_name(CLASSES[i]), why);
            return st;
        }
        res->created[CLASSES[i]] = 1;
        added = 1;
    }
    if (added) {
        char why[256] = "";
        st = fvd_adminkeys_save(ak, why, sizeof why);
        if (st != FV_OK) {
            snprintf(err, errcap, "cannot save the admin key file: %s", why);
            return st;
        }
    }
    return fvd_keys_grant(s, ak, team, res, err, errcap);
}

fv_status fvd_keys_rotate(fvd_store *s, fvd_adminkeys *ak, const char *team, int cls,
                          int64_t now_ms, fvd_keys_result *res, char *err, size_t errcap)
{
    if (s == NULL || ak == NULL || team == NULL || res == NULL ||
        (cls != FV_CLASS_PII && cls != FV_CLASS_CONFIDENTIAL)) {
        snprintf(err, errcap, "keys rotate: missing or bad argument");
        return FV_EMISUSE;
    }
    if (fvd_adminkeys_latest(ak, team, FV_CLASS_PII) == 0 &&
        fvd_adminkeys_latest(ak, team, FV_CLASS_CONFIDENTIAL) == 0) {
        snprintf(err, errcap, "team %s has no field keys: run fvd admin keys init %s first",
                 team, team);
        return FV_ENOTFOUND;
    }
    fv_status st = publish_admin(s, ak, err, errcap);
    if (st == FV_OK) st = check_store(s, ak, team, err, errcap);
    if (st != FV_OK) return st;
    uint32_t next = fvd_adminkeys_latest(ak, team, cls) + 1;
    char why[256] = "";
    st = fvd_adminkeys_add(ak, team, cls, next, now_ms, why, sizeof why);
    if (st == FV_OK) st = fvd_adminkeys_save(ak, why, sizeof why);
    if (st != FV_OK) {
        snprintf(err, errcap, "cannot add team %s's %s key v%u: %s", team, fvd_class_name(cls),
                 (unsigned)next, why);
        return st;
    }
    res->created[cls] = next;
    return fvd_keys_grant(s, ak, team, res, err, errcap);
}
