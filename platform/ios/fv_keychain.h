/*
 * fv_keychain.h - a key store (fieldvault.h's fv_keystore) backed by the iOS
 * Keychain.  Compiled only for Apple platforms (platform/ios/keychain.c,
 * Security framework).
 *
 * The store's database key is wrapped with a 256-bit key-encryption key
 * kept as a generic-password Keychain item (service, account), created on
 * first wrap, accessible only when the device is unlocked and never
 * migrated to another device (kSecAttrAccessibleWhenUnlockedThisDeviceOnly);
 * the wrapping is libsodium's XChaCha20-Poly1305, as the rest of the store.
 */
#ifndef FV_KEYCHAIN_H
#define FV_KEYCHAIN_H

#include "fieldvault.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fv_keychain {
    char service[128]; /* Keychain item service, e.g. the app's bundle id */
    char account[128]; /* item account, e.g. "fieldvault:<store name>" */
    int last_os_status; /* the Security framework's OSStatus of the last failure */
} fv_keychain;

/*
 * Fill *ks with callbacks over kc (kc->service and kc->account set by the
 * caller; kc must outlive the fv_open call that uses ks).  FV_EINVAL if a
 * name is empty.  Pass ks as fv_open_config.keystore.
 */
FV_API FV_NODISCARD fv_status fv_keychain_keystore(fv_keychain *kc, fv_keystore *ks);

#ifdef __cplusplus
}
#endif
#endif
