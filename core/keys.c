/*
 * keys.c - the store's key material: the vault header in front of page 1.
 *
 * The header region (FV_VAULT_HDR_SIZE bytes) holds two slots of
 * FV_VAULT_SLOT_SIZE; a change writes the inactive slot with a higher
 * sequence number and fsyncs it, so a crash at any moment leaves either the
 * old or the new slot valid, never neither.  A slot ends with a BLAKE2b
 * checksum that tells a torn write from a good slot.  Layout (little endian):
 *
 *    0  magic "FVAULT\0\1"        8
 *    8  format version           u32 (1)
 *   12  wrap kind                u32 (1 passphrase, 2 key store)
 *   16  sequence                 u64
 *   24  page size, reserve       u32, u32
 *   32  kdf alg, passes, mem KiB u32 x3 (1 = Argon2id v1.3)
 *   44  salt                     16
 *   60  key count                u32 (1, or 2 while a rekey runs)
 *   64  write epoch              u32
 *   68  keys: 2 x {epoch u32, length u32, wrapped[ENTRY_BLOB]}
 * 2016  BLAKE2b-256 of bytes [0, 2016)
 *
 * A passphrase-wrapped key is nonce(24) | XChaCha20-Poly1305(dbkey) | tag,
 * under Argon2id(passphrase, salt), with the header fields above and the
 * entry's epoch as associated data: a failed unwrap means the credential is
 * wrong (FV_EKEY), never "corrupt".  Key-store wrapping is the platform
 * hook's opaque blob.  Every buffer that held a key is wiped on every path.
 */
#include "internal.h"

#include <string.h>

#include <sodium.h>

#define SLOT_MAGIC "FVAULT\0\1"
#define SLOT_VERSION 1u
#define ENTRY_BLOB 600
#define OFF_ENTRIES 68
#define ENTRY_SIZE (8 + ENTRY_BLOB)
#define OFF_SUM 2016
#define PASS_BLOB_LEN (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + FV_DBKEY_LEN + \
                       crypto_aead_xchacha20poly1305_ietf_ABYTES)

#define KDF_DEFAULT_MEM_KIB (64u * 1024u)
#define KDF_DEFAULT_PASSES 3u
#define KDF_MIN_MEM_KIB (8u * 1024u)
#define KDF_MAX_MEM_KIB (1024u * 1024u) /* a hostile header may not ask for more */
#define KDF_MAX_PASSES 16u

_Static_assert(OFF_ENTRIES + 2 * ENTRY_SIZE <= OFF_SUM, "slot entries overlap checksum");
_Static_assert(FV_WRAPPED_KEY_MAX <= ENTRY_BLOB, "key-store blob does not fit");
_Static_assert(2 * FV_VAULT_SLOT_SIZE == FV_VAULT_HDR_SIZE, "two slots fill the header");

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Associated data of a passphrase-wrapped key: the slot's fixed fields
 * (everything but the sequence number) and the entry's epoch. */
static void wrap_ad(const unsigned char *slot, uint32_t epoch, unsigned char ad[56])
{
    memcpy(ad, slot, 16);
    memcpy(ad + 16, slot + 24, 36);
    put32(ad + 52, epoch);
}

static fv_status derive_kek(fv_db *db, fv__keyring *k, const char *pass, size_t len)
{
    if (crypto_pwhash(k->kek, sizeof k->kek, pass, len, k->salt, k->kdf_passes,
                      (size_t)k->kdf_mem_kib * 1024u, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return fv__err(db, FV_ENOMEM, "not enough memory for the passphrase KDF (%u KiB)",
                       (unsigned)k->kdf_mem_kib);
    return FV_OK;
}

static void fill_fixed(const fv__keyring *k, unsigned char *slot)
{
    memset(slot, 0, FV_VAULT_SLOT_SIZE);
    memcpy(slot, SLOT_MAGIC, 8);
    put32(slot + 8, SLOT_VERSION);
    put32(slot + 12, (uint32_t)k->kind);
    put64(slot + 16, k->seq + 1);
    put32(slot + 24, FV_PAGE_SIZE);
    put32(slot + 28, FV_PAGE_RESERVE);
    put32(slot + 32, 1);
    put32(slot + 36, k->kdf_passes);
    put32(slot + 40, k->kdf_mem_kib);
    memcpy(slot + 44, k->salt, sizeof k->salt);
    put32(slot + 60, (uint32_t)k->nkeys);
    put32(slot + 64, k->write_epoch);
}

static fv_status wrap_entry(fv_db *db, const fv__keyring *k, unsigned char *slot, size_t i)
{
    unsigned char *e = slot + OFF_ENTRIES + i * ENTRY_SIZE;
    put32(e, k->keys[i].epoch);
    if (k->kind == FV_WRAP_PASSPHRASE) {
        unsigned char ad[56];
        unsigned char *nonce = e + 8;
        wrap_ad(slot, k->keys[i].epoch, ad);
        randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
        crypto_aead_xchacha20poly1305_ietf_encrypt(
            nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, NULL, k->keys[i].key,
            FV_DBKEY_LEN, ad, sizeof ad, NULL, nonce, k->kek);
        put32(e + 4, PASS_BLOB_LEN);
        return FV_OK;
    }
    size_t out_len = FV_WRAPPED_KEY_MAX;
    if (k->keystore->wrap(k->keystore->ctx, k->keys[i].key, e + 8, &out_len) != 0 ||
        out_len == 0 || out_len > FV_WRAPPED_KEY_MAX)
        return fv__err(db, FV_EKEY, "the key store could not wrap the database key");
    put32(e + 4, (uint32_t)out_len);
    return FV_OK;
}

fv_status fv__keys_write_header(fv_db *db)
{
    fv__keyring *k = db->keys;
    unsigned char slot[FV_VAULT_SLOT_SIZE];
    fill_fixed(k, slot);
    fv_status st = FV_OK;
    for (size_t i = 0; i < k->nkeys && st == FV_OK; i++) st = wrap_entry(db, k, slot, i);
    if (st == FV_OK) {
        crypto_generichash(slot + OFF_SUM, 32, slot, OFF_SUM, NULL, 0);
        int target = 1 - k->active_slot;
        int rc = fv__vault_header_write_slot(db->path, target, slot);
        if (rc != SQLITE_OK) {
            st = fv__err(db, FV_EIO, "could not write the store's key header (SQLite code %d)", rc);
        } else {
            k->active_slot = target;
            k->seq++;
        }
    }
    sodium_memzero(slot, sizeof slot);
    return st;
}

/* Parse the better of the two slots into k (keys still wrapped: returns
 * the slot copy in best). */
static fv_status pick_slot(fv_db *db, const unsigned char *hdr, fv__keyring *k,
                           unsigned char best[FV_VAULT_SLOT_SIZE])
{
    int chosen = -1;
    uint64_t seq = 0;
    for (int s = 0; s < 2; s++) {
        const unsigned char *slot = hdr + s * FV_VAULT_SLOT_SIZE;
        unsigned char sum[32];
        if (memcmp(slot, SLOT_MAGIC, 8) != 0) continue;
        crypto_generichash(sum, 32, slot, OFF_SUM, NULL, 0);
        if (sodium_memcmp(sum, slot + OFF_SUM, 32) != 0) continue;
        if (chosen < 0 || get64(slot + 16) > seq) {
            chosen = s;
            seq = get64(slot + 16);
        }
    }
    if (chosen < 0) {
        if (memcmp(hdr, "SQLite format 3", 15) == 0)
            return fv__err(db, FV_ECORRUPT, "%s is a plain SQLite database, not a fieldvault store",
                           db->path);
        return fv__err(db, FV_ECORRUPT, "%s is not a fieldvault store, or its key header is damaged",
                       db->path);
    }
    const unsigned char *slot = hdr + chosen * FV_VAULT_SLOT_SIZE;
    uint32_t version = get32(slot + 8), kind = get32(slot + 12);
    k->kdf_passes = get32(slot + 36);
    k->kdf_mem_kib = get32(slot + 40);
    k->nkeys = get32(slot + 60);
    k->write_epoch = get32(slot + 64);
    if (version != SLOT_VERSION)
        return fv__err(db, FV_ECORRUPT, "store format version %u is not supported (this library reads %u)",
                       (unsigned)version, SLOT_VERSION);
    if ((kind != FV_WRAP_PASSPHRASE && kind != FV_WRAP_KEYSTORE) ||
        get32(slot + 24) != FV_PAGE_SIZE || get32(slot + 28) != FV_PAGE_RESERVE ||
        get32(slot + 32) != 1 || k->kdf_passes < 1 || k->kdf_passes > KDF_MAX_PASSES ||
        k->kdf_mem_kib < KDF_MIN_MEM_KIB || k->kdf_mem_kib > KDF_MAX_MEM_KIB || k->nkeys < 1 ||
        k->nkeys > 2)
        return fv__err(db, FV_ECORRUPT, "the store's key header holds impossible parameters");
    k->kind = (fv__wrap_kind)kind;
    k->seq = seq;
    k->active_slot = chosen;
    memcpy(k->salt, slot + 44, sizeof k->salt);
    memcpy(best, slot, FV_VAULT_SLOT_SIZE);
    return FV_OK;
}

static fv_status unwrap_entries(fv_db *db, fv__keyring *k, const unsigned char *slot)
{
    int have_write = 0;
    for (size_t i = 0; i < k->nkeys; i++) {
        const unsigned char *e = slot + OFF_ENTRIES + i * ENTRY_SIZE;
        uint32_t epoch = get32(e), len = get32(e + 4);
        k->keys[i].epoch = epoch;
        int ok;
        if (k->kind == FV_WRAP_PASSPHRASE) {
            unsigned char ad[56];
            wrap_ad(slot, epoch, ad);
            ok = len == PASS_BLOB_LEN &&
                 crypto_aead_xchacha20poly1305_ietf_decrypt(
                     k->keys[i].key, NULL, NULL,
                     e + 8 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                     FV_DBKEY_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES, ad, sizeof ad,
                     e + 8, k->kek) == 0;
        } else {
            ok = len > 0 && len <= FV_WRAPPED_KEY_MAX &&
                 k->keystore->unwrap(k->keystore->ctx, e + 8, len, k->keys[i].key) == 0;
        }
        if (!ok) {
            return fv__err(db, FV_EKEY, k->kind == FV_WRAP_PASSPHRASE
                                            ? "wrong passphrase for %s"
                                            : "the key store could not unwrap the key of %s",
                           db->path);
        }
        if (epoch == k->write_epoch) have_write = 1;
    }
    if (!have_write)
        return fv__err(db, FV_ECORRUPT, "the store's key header has no key for its epoch");
    return FV_OK;
}

static fv_status check_credential(fv_db *db, const fv_open_config *cfg)
{
    int has_pass = cfg->passphrase != NULL;
    int has_ks = cfg->keystore != NULL;
    if (has_pass == has_ks)
        return fv__err(db, FV_EINVAL, "give exactly one credential: a passphrase or a key store");
    if (has_pass && (cfg->passphrase_len == 0 || cfg->passphrase_len > FV_PASSPHRASE_MAX))
        return fv__err(db, FV_EINVAL, "a passphrase is 1 to %d bytes", FV_PASSPHRASE_MAX);
    if (has_ks && (cfg->keystore->size < sizeof(fv_keystore) || cfg->keystore->wrap == NULL ||
                   cfg->keystore->unwrap == NULL))
        return fv__err(db, FV_EINVAL, "the key store hook is incomplete");
    return FV_OK;
}

static fv_status create_keys(fv_db *db, const fv_open_config *cfg)
{
    fv__keyring *k = db->keys;
    k->kind = cfg->passphrase ? FV_WRAP_PASSPHRASE : FV_WRAP_KEYSTORE;
    k->kdf_mem_kib = cfg->kdf_mem_kib ? cfg->kdf_mem_kib : KDF_DEFAULT_MEM_KIB;
    k->kdf_passes = cfg->kdf_passes ? cfg->kdf_passes : KDF_DEFAULT_PASSES;
    if (k->kdf_mem_kib < KDF_MIN_MEM_KIB || k->kdf_mem_kib > KDF_MAX_MEM_KIB ||
        k->kdf_passes > KDF_MAX_PASSES)
        return fv__err(db, FV_EINVAL, "KDF memory must be %u..%u KiB and passes 1..%u",
                       KDF_MIN_MEM_KIB, KDF_MAX_MEM_KIB, KDF_MAX_PASSES);
    randombytes_buf(k->salt, sizeof k->salt);
    k->nkeys = 1;
    k->write_epoch = 1;
    k->keys[0].epoch = 1;
    crypto_kdf_keygen(k->keys[0].key);
    k->seq = 0;
    k->active_slot = 1; /* so the first write goes to slot 0 */
    if (k->kind == FV_WRAP_PASSPHRASE) {
        fv_status st = derive_kek(db, k, cfg->passphrase, cfg->passphrase_len);
        if (st != FV_OK) return st;
    }
    return fv__keys_write_header(db);
}

fv_status fv__keys_open(fv_db *db, const fv_open_config *cfg, int create, int *created)
{
    *created = 0;
    fv_status st = check_credential(db, cfg);
    if (st != FV_OK) return st;
    db->keys = sodium_malloc(sizeof *db->keys);
    if (db->keys == NULL) return fv__err(db, FV_ENOMEM, "out of memory for the keyring");
    memset(db->keys, 0, sizeof *db->keys);
    db->keys->keystore = cfg->keystore;

    unsigned char hdr[FV_VAULT_HDR_SIZE];
    int rc = fv__vault_header_read(db->path, hdr);
    if (rc == SQLITE_CANTOPEN) {
        if (!create) return fv__err(db, FV_ENOTFOUND, "no store at %s", db->path);
        *created = 1;
        return create_keys(db, cfg);
    }
    if (create && (cfg->flags & FV_OPEN_EXCL))
        return fv__err(db, FV_EEXIST, "%s already exists", db->path);
    if (rc == SQLITE_NOTADB)
        return fv__err(db, FV_ECORRUPT, "%s is not a fieldvault store (too short)", db->path);
    if (rc != SQLITE_OK)
        return fv__err(db, FV_EIO, "cannot read %s (SQLite code %d)", db->path, rc);

    unsigned char slot[FV_VAULT_SLOT_SIZE];
    fv__keyring *k = db->keys;
    st = pick_slot(db, hdr, k, slot);
    if (st == FV_OK && (k->kind == FV_WRAP_PASSPHRASE) != (cfg->passphrase != NULL))
        st = fv__err(db, FV_EKEY, "%s is protected by %s", db->path,
                     k->kind == FV_WRAP_PASSPHRASE ? "a passphrase" : "a platform key store");
    if (st == FV_OK && k->kind == FV_WRAP_PASSPHRASE)
        st = derive_kek(db, k, cfg->passphrase, cfg->passphrase_len);
    if (st == FV_OK) st = unwrap_entries(db, k, slot);
    sodium_memzero(slot, sizeof slot);
    sodium_memzero(hdr, sizeof hdr);
    return st;
}

fv_status fv__keys_set_passphrase(fv_db *db, const char *pass, size_t len)
{
    fv__keyring *k = db->keys;
    if (k->kind != FV_WRAP_PASSPHRASE)
        return fv__err(db, FV_EMISUSE, "this store is protected by a key store, not a passphrase");
    if (pass == NULL || len == 0 || len > FV_PASSPHRASE_MAX)
        return fv__err(db, FV_EINVAL, "a passphrase is 1 to %d bytes", FV_PASSPHRASE_MAX);
    fv__keyring saved = *k;
    randombytes_buf(k->salt, sizeof k->salt);
    fv_status st = derive_kek(db, k, pass, len);
    if (st == FV_OK) st = fv__keys_write_header(db);
    if (st != FV_OK) { /* keep the old credential in memory: the file still has it */
        memcpy(k->salt, saved.salt, sizeof k->salt);
        memcpy(k->kek, saved.kek, sizeof k->kek);
    }
    sodium_memzero(&saved, sizeof saved);
    return st;
}

void fv__keys_free(fv__keyring *k)
{
    if (k != NULL) {
        sodium_memzero(k, sizeof *k);
        sodium_free(k);
    }
}
