/*
 * adminkeys.h - the admin key file: the admin's Ed25519 key pair and every
 * field key (team, class, version), encrypted under the admin passphrase.
 * Only the `fvd admin ... keys` commands open it; the serving process
 * (`fvd serve`) never does, so a running fvd holds no field key and cannot
 * read a protected value.
 *
 * Where: DIR/fvd-admin.keys with --data DIR, or the file --admin-keys names
 * (required with --postgres).
 *
 * Format (all integers big-endian):
 *
 *   "FVADMIN1" | opslimit (8) | memlimit (8) | salt (16) | nonce (24)
 *   | crypto_secretbox (XSalsa20-Poly1305) of the plaintext, tag first
 *
 * the box key derived from the passphrase with Argon2id (crypto_pwhash,
 * the INTERACTIVE limits when the file is made; a file's own limits are
 * accepted between libsodium's MIN and SENSITIVE).  The plaintext:
 *
 *   admin Ed25519 secret key (64) | count (4)
 *   | count x { team length (1) | team | class (1) | version (4)
 *               | created_ms (8) | key (32) }
 *
 * Secrets (the plaintext, the derived box key, the admin secret key, the
 * field keys, the passphrase) live only in sodium_malloc memory and are
 * wiped when freed.  The file is written whole and atomically: a temporary
 * file in the same directory (mode 0600), fsync, rename (link for a new
 * file, so an existing one is never replaced), fsync of the directory.  A
 * wrong passphrase or a damaged file changes nothing on disk.  An open
 * handle holds a lock (fcntl, on the file path + ".lock", created beside
 * it): a second admin command on the same file fails with FV_EBUSY rather
 * than make the same key version twice with different bytes.
 *
 * Errors: fv_status with a message in err (errcap bytes); no message ever
 * contains a secret.  Not thread-safe (one admin command at a time).
 */
#ifndef FVD_ADMINKEYS_H
#define FVD_ADMINKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "fieldcrypt.h"
#include "store.h"

/* The file's name in the --data directory. */
#define FVD_ADMIN_KEYS_FILE "fvd-admin.keys"
/* The environment variable holding the passphrase (else a prompt). */
#define FVD_ADMIN_PASS_ENV "FV_ADMIN_PASSPHRASE"
/* Bytes of a passphrase. */
#define FVD_ADMIN_PASS_MAX 1024
/* Field keys in one file (teams x classes x versions). */
#define FVD_ADMIN_KEYS_MAX 16384

/* One field key, as the file holds it. */
typedef struct fvd_field_key {
    char team[FVD_NAME_MAX + 1];
    int cls;                     /* FV_CLASS_PII or FV_CLASS_CONFIDENTIAL */
    uint32_t version;            /* 1, 2, ... */
    int64_t created_ms;
    unsigned char key[FV_FKEY_LEN];
} fvd_field_key;

typedef struct fvd_adminkeys fvd_adminkeys;

/*
 * The admin passphrase: the environment variable FVD_ADMIN_PASS_ENV if
 * set, else read from /dev/tty without echo after prompt (and read a second
 * time to confirm it when confirm != 0).  *out gets it NUL-terminated in
 * sodium_malloc memory, to be freed with fvd_admin_passphrase_free.
 * FV_ENOTFOUND: neither the variable nor a terminal; FV_EINVAL: empty,
 * longer than FVD_ADMIN_PASS_MAX, or the two entries differ.
 */
FV_NODISCARD fv_status fvd_admin_passphrase(const char *prompt, int confirm, char **out,
                                            char *err, size_t errcap);
/* Wipe and free (NULL-safe). */
void fvd_admin_passphrase_free(char *pass);

/*
 * Make a new key file at path with a new admin key pair and no field key.
 * FV_EEXIST if path exists (it is left alone); FV_EBUSY if another
 * process holds the file's lock; FV_EIO if it cannot be written.  On
 * FV_OK *out is the open file, closed with fvd_adminkeys_close.
 */
FV_NODISCARD fv_status fvd_adminkeys_create(const char *path, const char *pass,
                                            fvd_adminkeys **out, char *err, size_t errcap);
/*
 * Open the key file at path.  FV_ENOTFOUND if there is none; FV_EKEY with
 * "wrong admin passphrase or damaged key file" if it does not decrypt;
 * FV_ECORRUPT if it is not a key file or is malformed; FV_EBUSY if another
 * process holds the file's lock; FV_EIO, FV_ENOMEM.
 */
FV_NODISCARD fv_status fvd_adminkeys_open(const char *path, const char *pass,
                                          fvd_adminkeys **out, char *err, size_t errcap);
/* Write the file again with its current contents (atomically, see above). */
FV_NODISCARD fv_status fvd_adminkeys_save(fvd_adminkeys *k, char *err, size_t errcap);
/* Wipe and free (NULL-safe). */
void fvd_adminkeys_close(fvd_adminkeys *k);

/* The admin key pair; owned by k, valid until fvd_adminkeys_close. */
const unsigned char *fvd_adminkeys_public(const fvd_adminkeys *k);
const unsigned char *fvd_adminkeys_secret(const fvd_adminkeys *k);

/* The field keys, in the order they were added; key i is owned by k and
 * valid until the next fvd_adminkeys_add or fvd_adminkeys_close. */
size_t fvd_adminkeys_count(const fvd_adminkeys *k);
const fvd_field_key *fvd_adminkeys_key(const fvd_adminkeys *k, size_t i);
/* The highest version of team's key of class cls (0: none). */
uint32_t fvd_adminkeys_latest(const fvd_adminkeys *k, const char *team, int cls);

/* Add a new random key (team, cls, version), in memory only (save to keep
 * it).  FV_EEXIST if k has that key already, FV_EINVAL for a bad team,
 * class or version, FV_ENOMEM past FVD_ADMIN_KEYS_MAX. */
FV_NODISCARD fv_status fvd_adminkeys_add(fvd_adminkeys *k, const char *team, int cls,
                                         uint32_t version, int64_t created_ms, char *err,
                                         size_t errcap);

#endif /* FVD_ADMINKEYS_H */
