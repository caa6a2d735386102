/*
 * keys.h - the admin side of field keys, behind `fvd admin ... keys init |
 * grant | rotate` (server/fvd.c parses the command line and prints; this
 * does the work against the store and the admin key file).
 *
 * What the store learns (store.h): the admin public key, each key's team,
 * class, version, key id and creation time, and the grants - each field key
 * sealed to one device's public key and signed by the admin key
 * (fieldcrypt.h).  Never a field key in clear: those stay in the
 * admin key file (adminkeys.h).
 *
 * Who gets a grant: an enrolled, not revoked device whose user's role may
 * read the class (fv__policy_field of the policy in force - the stored one,
 * else the built-in - on table "contact" for pii, "customer" for
 * confidential: where the shipped catalogue has fields of that class) and whose row scope covers the team
 * (scope all; or own or team, and the user's team is the key's team).  It
 * gets every version of the team's key of that class.  Granting is
 * idempotent: a device that holds a grant for (team, class, version) is
 * not given another.
 *
 * Every operation first publishes what the key file holds for the team
 * (the admin public key, each version), so a command cut short before it
 * published is completed by the next one.
 */
#ifndef FVD_KEYS_H
#define FVD_KEYS_H

#include <stdint.h>

#include "adminkeys.h"
#include "store.h"

/* What an operation did for one team. */
typedef struct fvd_keys_result {
    uint32_t version[3];   /* [FV_CLASS_PII], [FV_CLASS_CONFIDENTIAL]: the team's
                              latest version after the call (0: none) */
    uint32_t created[3];   /* the version this call created, per class (0: none) */
    uint64_t issued;       /* grants stored by this call */
    uint64_t skipped;      /* devices whose enrolled key is unusable (none expected:
                              enrolment checks it) */
} fvd_keys_result;

/* "pii" -> FV_CLASS_PII, "confidential" -> FV_CLASS_CONFIDENTIAL, else -1. */
int fvd_class_parse(const char *name);
/* The inverse ("?" for anything else). */
const char *fvd_class_name(int cls);

/* Make version 1 of each class of team's key the key file lacks (saving
 * the file before anything is published), then publish and grant as
 * fvd_keys_grant.  FV_EEXIST if the store has another admin key, or keys
 * of team the file does not hold. */
FV_NODISCARD fv_status fvd_keys_init(fvd_store *s, fvd_adminkeys *ak, const char *team,
                                     int64_t now_ms, fvd_keys_result *res, char *err,
                                     size_t errcap);

/* Publish team's keys and grant every version to every device that should
 * have it and does not.  FV_ENOTFOUND if the key file has no key of
 * team; FV_EEXIST as for init. */
FV_NODISCARD fv_status fvd_keys_grant(fvd_store *s, const fvd_adminkeys *ak, const char *team,
                                      fvd_keys_result *res, char *err, size_t errcap);

/* Add version N + 1 of team's key of class cls (N the highest the file or
 * the store knows), save the file, then publish and grant as
 * fvd_keys_grant.  FV_ENOTFOUND if team has no keys yet. */
FV_NODISCARD fv_status fvd_keys_rotate(fvd_store *s, fvd_adminkeys *ak, const char *team,
                                       int cls, int64_t now_ms, fvd_keys_result *res, char *err,
                                       size_t errcap);

#endif /* FVD_KEYS_H */
