package org.fieldvault;

/**
 * The platform key store (fieldvault.h's fv_keystore): wraps the store's
 * random 32-byte database key under a key that never leaves the key store
 * (on Android: an AES-GCM key in the AndroidKeyStore), and unwraps it.
 * The store file keeps only the wrapped form (at most 512 bytes).
 *
 * <p>Called during {@link Vault#open} on the calling thread.  The arrays
 * passed in and returned are wiped by the binding after the call; do not
 * keep references to them.  Throw (any exception) to fail: a failed unwrap
 * opens nothing and is reported as {@link VaultException.Status#WRONG_KEY}.
 */
public interface KeyWrapper {
    byte[] wrap(byte[] key) throws Exception;

    byte[] unwrap(byte[] wrapped) throws Exception;
}
