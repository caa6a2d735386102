/*
 * grants.c - POST /v1/keys: the field-key grants sealed to the asking
 * device, after its cursor, one bounded batch (docs/protocol.md, "Field
 * keys").
 *
 * The answer carries the admin public key (empty while no field key
 * exists), then at most FV_WIRE_KEYS_MAX grants with seq > after in seq
 * order, and more = 1 when others wait.  Everything here is public or
 * sealed to the device: fvd holds no field key to leak.  Revoked devices
 * never get here (auth.c answers 403 REVOKED first).
 *
 * Every answer also carries the access policy in force (acl.h) and the
 * device's user's current role and team (dev was read through the user by
 * auth.c for this request): the device calls this at the start of every
 * sync, so a `policy set` or `set-user` reaches it at its next sync.
 */
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "fvd.h"

#define BAD_REQUEST fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST

static int collect(void *ctx, const fvd_grant *g)
{
    fieldvault_v1_KeysResponse *m = ctx;
    if (m->grants_count >= FV_WIRE_KEYS_MAX) return -1; /* the store gave more than asked */
    fieldvault_v1_Grant *w = &m->grants[m->grants_count++];
    w->seq = g->seq;
    _Static_assert(sizeof w->team >= sizeof g->team, "grant team");
    memcpy(w->team, g->team, sizeof g->team);
    w->field_class = (uint32_t)g->cls;
    w->version = g->version;
    _Static_assert(sizeof w->sealed_key == sizeof g->sealed, "sealed key");
    _Static_assert(sizeof w->signature == sizeof g->sig, "signature");
    memcpy(w->sealed_key, g->sealed, sizeof w->sealed_key);
    memcpy(w->signature, g->sig, sizeof w->signature);
    return 0;
}

void fvd_keys(fvd_store *s, const fvd_device *dev, const unsigned char *body, size_t len,
              fvd_reply *r)
{
    fieldvault_v1_KeysRequest q;
    char err[256] = "";
    if (fv__wire_decode_keys_request(body, len, &q, err, sizeof err) != FV_OK) {
        fvd_refuse(r, 400, BAD_REQUEST, "%s", err);
        return;
    }
    if (memcmp(q.device_id, dev->id, FV_DEVICE_LEN) != 0) {
        fvd_refuse(r, 400, BAD_REQUEST,
                   "the keys request names another device than the one that signed it");
        return;
    }
    /* about 5 KiB: fine on a connection thread's stack, but keep it off */
    static _Thread_local fieldvault_v1_KeysResponse m;
    memset(&m, 0, sizeof m);
    int found = 0;
    fv_status st = s->ops->get_admin_key(s, m.admin_public_key.bytes, &found, err, sizeof err);
    if (st != FV_OK) {
        fvd_refuse_store(r, st, "reading the admin key", err);
        return;
    }
    m.admin_public_key.size = found ? FV_WIRE_PUBKEY_LEN : 0;
    fv__policy policy;
    st = fvd_policy_current(s, &policy, NULL, err, sizeof err);
    if (st != FV_OK) {
        fvd_refuse_store(r, st, "reading the access policy", err);
        return;
    }
    m.has_policy = true;
    fv__wire_policy_out(&policy, &m.policy);
    _Static_assert(sizeof m.role >= sizeof dev->role && sizeof m.team >= sizeof dev->team,
                   "role and team fit the answer");
    snprintf(m.role, sizeof m.role, "%s", dev->role);
    snprintf(m.team, sizeof m.team, "%s", dev->team);
    int more = 0;
    st = s->ops->list_grants(s, dev->id, q.after, FV_WIRE_KEYS_MAX, collect, &m, &more, err,
                             sizeof err);
    if (st != FV_OK) {
        fvd_refuse_store(r, st, "reading the grants", err);
        return;
    }
    m.more = more != 0;
    r->body.len = 0;
    st = fv__wire_encode_keys_response(&m, fv__membuf_write, &r->body, err, sizeof err);
    if (st != FV_OK) {
        fvd_log("cannot encode a keys answer: %s", err);
        fvd_refuse(r, 500, fieldvault_v1_ErrorCode_ERROR_CODE_INTERNAL,
                   "cannot encode the keys answer");
        return;
    }
    r->status = 200;
}
