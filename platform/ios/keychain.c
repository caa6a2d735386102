/*
 * keychain.c - the Keychain key store of fv_keychain.h (Apple platforms
 * only: platform.cmake compiles it when FV_BUILD_KEYCHAIN is on, which
 * toolchains/ios.cmake sets).
 *
 * wrap: fetch the key-encryption key (KEK) from the Keychain, creating a
 * random one on first use (SecItemAdd; a concurrent creator's item wins,
 * errSecDuplicateItem -> read it back), then seal the database key with
 * XChaCha20-Poly1305 under it: nonce(24) || ciphertext(32) || tag(16), the
 * associated data naming the format.  unwrap: fetch the KEK (never create
 * one: a missing item is a failed unwrap, FV_EKEY) and open the seal.
 * The KEK is wiped on every path; CFData copies of it are released at once
 * (the Security framework's own copies are its business).
 */
#include <CoreFoundation/CoreFoundation.h>
#include <Security/Security.h>
#include <sodium.h>
#include <string.h>

#include "fv_keychain.h"

#define KEK_LEN 32
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
static const unsigned char AD[] = "fieldvault keychain v1";

/* A query dictionary for the item; caller releases.  NULL on failure. */
static CFMutableDictionaryRef item_query(const fv_keychain *kc)
{
    CFMutableDictionaryRef q = CFDictionaryCreateMutable(
        NULL, 0, &kCFTypeDictionaryKeyCallBacks, &kCFTypeDictionaryValueCallBacks);
    CFStringRef svc = CFStringCreateWithCString(NULL, kc->service, kCFStringEncodingUTF8);
    CFStringRef acc = CFStringCreateWithCString(NULL, kc->account, kCFStringEncodingUTF8);
    if (q == NULL || svc == NULL || acc == NULL) {
        if (q) CFRelease(q);
        if (svc) CFRelease(svc);
        if (acc) CFRelease(acc);
        return NULL;
    }
    CFDictionarySetValue(q, kSecClass, kSecClassGenericPassword);
    CFDictionarySetValue(q, kSecAttrService, svc);
    CFDictionarySetValue(q, kSecAttrAccount, acc);
    CFRelease(svc);
    CFRelease(acc);
    return q;
}

/* Read the KEK into kek: 0, 1 if there is no item, -1 on an error. */
static int kek_read(fv_keychain *kc, unsigned char kek[KEK_LEN])
{
    CFMutableDictionaryRef q = item_query(kc);
    if (q == NULL) return -1;
    CFDictionarySetValue(q, kSecReturnData, kCFBooleanTrue);
    CFDictionarySetValue(q, kSecMatchLimit, kSecMatchLimitOne);
    CFTypeRef out = NULL;
    OSStatus s = SecItemCopyMatching(q, &out);
    CFRelease(q);
    if (s == errSecItemNotFound) return 1;
    if (s != errSecSuccess || out == NULL || CFGetTypeID(out) != CFDataGetTypeID()) {
        kc->last_os_status = (int)s;
        if (out) CFRelease(out);
        return -1;
    }
    int rc = -1;
    if (CFDataGetLength((CFDataRef)out) == KEK_LEN) {
        memcpy(kek, CFDataGetBytePtr((CFDataRef)out), KEK_LEN);
        rc = 0;
    }
    CFRelease(out);
    return rc;
}

/* Create a random KEK item; 0, or -1.  A racing creator's item is kept. */
static int kek_create(fv_keychain *kc, unsigned char kek[KEK_LEN])
{
    randombytes_buf(kek, KEK_LEN);
    CFMutableDictionaryRef q = item_query(kc);
    CFDataRef data = CFDataCreate(NULL, kek, KEK_LEN);
    if (q == NULL || data == NULL) {
        if (q) CFRelease(q);
        if (data) CFRelease(data);
        return -1;
    }
    CFDictionarySetValue(q, kSecValueData, data);
    CFDictionarySetValue(q, kSecAttrAccessible, kSecAttrAccessibleWhenUnlockedThisDeviceOnly);
    OSStatus s = SecItemAdd(q, NULL);
    CFRelease(data);
    CFRelease(q);
    if (s == errSecDuplicateItem) return kek_read(kc, kek) == 0 ? 0 : -1;
    if (s != errSecSuccess) {
        kc->last_os_status = (int)s;
        return -1;
    }
    return 0;
}

static int kc_wrap(void *ctx, const unsigned char key[32], unsigned char *out, size_t *out_len)
{
    fv_keychain *kc = ctx;
    unsigned char kek[KEK_LEN];
    int r = kek_read(kc, kek);
    if (r == 1) r = kek_create(kc, kek);
    if (r != 0) {
        sodium_memzero(kek, sizeof kek);
        return -1;
    }
    randombytes_buf(out, NONCE_LEN);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCE_LEN, &clen, key, 32, AD, sizeof AD - 1,
                                               NULL, out, kek);
    sodium_memzero(kek, sizeof kek);
    *out_len = NONCE_LEN + (size_t)clen;
    return 0;
}

static int kc_unwrap(void *ctx, const unsigned char *in, size_t in_len, unsigned char key[32])
{
    fv_keychain *kc = ctx;
    if (in_len != NONCE_LEN + 32 + TAG_LEN) return -1;
    unsigned char kek[KEK_LEN];
    if (kek_read(kc, kek) != 0) {
        sodium_memzero(kek, sizeof kek);
        return -1;
    }
    unsigned long long mlen = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(key, &mlen, NULL, in + NONCE_LEN,
                                                        in_len - NONCE_LEN, AD, sizeof AD - 1, in,
                                                        kek);
    sodium_memzero(kek, sizeof kek);
    return rc == 0 && mlen == 32 ? 0 : -1;
}

fv_status fv_keychain_keystore(fv_keychain *kc, fv_keystore *ks)
{
    if (kc == NULL || ks == NULL || kc->service[0] == '\0' || kc->account[0] == '\0')
        return FV_EINVAL;
    memset(ks, 0, sizeof *ks);
    ks->size = sizeof *ks;
    ks->ctx = kc;
    ks->wrap = kc_wrap;
    ks->unwrap = kc_unwrap;
    return FV_OK;
}
