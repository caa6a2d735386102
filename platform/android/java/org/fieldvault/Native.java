package org.fieldvault;

/**
 * The natives of libfieldvault_jni (registered by its JNI_OnLoad).  Package
 * private: handles are plain longs here and nowhere else; only
 * {@link Vault} calls these, under its own lock.
 */
final class Native {
    private Native() {}

    static {
        String path = System.getProperty("org.fieldvault.library");
        if (path != null && !path.isEmpty()) System.load(path);
        else System.loadLibrary("fieldvault_jni");
    }

    static final int LIST_CUSTOMERS = 0, LIST_VISITS = 1, LIST_CONTACTS = 2, LIST_DUE = 3;

    static native long open(String path, byte[] passphrase, KeyWrapper wrapper, String user,
                            int flags, int kdfMemKib, int kdfPasses);
    static native void close(long h);
    static native void cancelSync(long h);
    static native String insert(long h, String table, String[] names, String[] values);
    static native void update(long h, String table, String id, String[] names, String[] values);
    static native Record get(long h, String table, String id);
    static native void delete(long h, String table, String id, boolean restore);
    static native Record[] list(long h, int kind, String a, String b, String c);
    static native void enroll(long h, String server, String code, HttpTransport http);
    static native SyncResult sync(long h, String server, long maxMs, int batch, long timeoutMs,
                                  int attempts, HttpTransport http);
    static native SyncStatus status(long h);
    static native Conflict[] conflicts(long h, boolean includeResolved);
    static native void resolveConflict(long h, String id, boolean keepMine);
    static native String stateHash(long h);
    static native String version();
}
