package org.fieldvault;

import java.lang.ref.PhantomReference;
import java.lang.ref.ReferenceQueue;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An open fieldvault store: customers, contacts and visits in an encrypted
 * local SQLite file, synced with fvd.  The Java face of include/fieldvault.h.
 *
 * <pre>{@code
 * try (Vault v = Vault.open(path, passphrase, Vault.CREATE)) {
 *     String c = v.insert("customer", Map.of("name", "Acme Foods", "grade", "A"));
 *     v.insert("visit", Map.of("customer_id", c, "method", "visit", "summary", "Trial"));
 *     for (Record r : v.listVisits(c)) ...
 * }
 * }</pre>
 *
 * <p>Lifetime: a Vault owns one native handle, freed by {@link #close}
 * (idempotent; use try-with-resources, or Kotlin's {@code use}).  If a
 * Vault becomes unreachable unclosed, a cleaner frees the handle (the store
 * stays locked until then: close it).  Calls after close throw
 * {@link VaultException} with status MISUSE.  No method exposes the handle.
 *
 * <p>Threads: a Vault may be shared; its calls are serialised on an
 * internal lock (the library's contract is one thread at a time per handle).
 * {@link #cancelSync} is the exception: it may be called from any thread
 * while {@link #sync} runs, and makes it stop at the next batch boundary.
 *
 * <p>Errors: every failure is a {@link VaultException} carrying the
 * library's status and message.
 */
public final class Vault implements AutoCloseable {
    /** Open flags (fieldvault.h FV_OPEN_*). */
    public static final int CREATE = 0x01, EXCLUSIVE = 0x02, SYNC_FULL = 0x04;

    /** Open options beyond the credential; every field has a default. */
    public static final class Options {
        public int flags;
        /** The acting user (owner of the customers it creates); null = "local". */
        public String user;
        /** Argon2id cost for a new passphrase store; 0 = 64 MiB, 3 passes. */
        public int kdfMemKib, kdfPasses;

        public Options flags(int f) { flags = f; return this; }
        public Options user(String u) { user = u; return this; }
        public Options kdf(int memKib, int passes) { kdfMemKib = memKib; kdfPasses = passes; return this; }
    }

    // ---- the native handle, and the cleaner that frees a forgotten one ----

    /** Holds the handle; shared with the cleaner, never with callers. */
    private static final class Handle {
        private long ptr;

        Handle(long ptr) { this.ptr = ptr; }

        /** Free once; later calls do nothing.  Callers hold the vault's lock
         *  or the handle is unreachable from any vault. */
        synchronized void free() {
            long p = ptr;
            ptr = 0;
            if (p != 0) Native.close(p);
        }

        synchronized long get() { return ptr; }
    }

    /** A phantom reference per open Vault; a daemon thread frees the handle
     *  of each Vault the collector found unreachable.  (What
     *  java.lang.ref.Cleaner does, written out so that it also runs on
     *  Android before API 33.) */
    private static final class Tracker extends PhantomReference<Vault> {
        private static final ReferenceQueue<Vault> QUEUE = new ReferenceQueue<>();
        private static final Set<Tracker> LIVE = Collections.synchronizedSet(new HashSet<>());
        private static Thread thread;
        final Handle handle;

        Tracker(Vault v, Handle h) {
            super(v, QUEUE);
            handle = h;
            LIVE.add(this);
            start();
        }

        private static synchronized void start() {
            if (thread != null) return;
            thread = new Thread(() -> {
                for (;;) {
                    try {
                        Tracker t = (Tracker) QUEUE.remove();
                        t.handle.free();
                        LIVE.remove(t);
                    } catch (InterruptedException e) {
                        // keep cleaning: the thread is a daemon
                    } catch (Throwable e) {
                        // never let the cleaner die
                    }
                }
            }, "fieldvault-cleaner");
            thread.setDaemon(true);
            thread.start();
        }

        void closed() {
            LIVE.remove(this);
            clear();
        }
    }

    private final Handle handle;
    private final Tracker tracker;
    private final Object lock = new Object();
    /** Written after every native call: keeps this Vault reachable (so its
     *  cleaner cannot free the handle) until the call has returned.  The
     *  portable form of Reference.reachabilityFence (API 28+ on Android). */
    @SuppressWarnings("unused")
    private volatile int alive;

    private void reach() {
        alive = 1;
    }

    private Vault(long ptr) {
        handle = new Handle(ptr);
        tracker = new Tracker(this, handle);
    }

    // ---- opening ----

    /** Open (or with {@link #CREATE}, create) a store with a passphrase.
     *  The caller's array is not kept; wipe it when done. */
    public static Vault open(String path, char[] passphrase, int flags) {
        return open(path, passphrase, new Options().flags(flags));
    }

    public static Vault open(String path, char[] passphrase, Options o) {
        if (passphrase == null) throw new VaultException(1, "the passphrase is null");
        ByteBuffer bb = StandardCharsets.UTF_8.encode(CharBuffer.wrap(passphrase));
        byte[] utf8 = new byte[bb.remaining()];
        bb.get(utf8);
        if (bb.hasArray()) Arrays.fill(bb.array(), (byte) 0);
        try {
            return new Vault(Native.open(path, utf8, null, o.user, o.flags, o.kdfMemKib, o.kdfPasses));
        } finally {
            Arrays.fill(utf8, (byte) 0);
        }
    }

    /** Open (or create) a store whose database key is wrapped by the platform
     *  key store ({@link KeyWrapper}); no passphrase. */
    public static Vault open(String path, KeyWrapper keys, int flags) {
        return open(path, keys, new Options().flags(flags));
    }

    public static Vault open(String path, KeyWrapper keys, Options o) {
        if (keys == null) throw new VaultException(1, "the key wrapper is null");
        return new Vault(Native.open(path, null, keys, o.user, o.flags, o.kdfMemKib, o.kdfPasses));
    }

    /** The library version ("MAJOR.MINOR.PATCH"). */
    public static String version() {
        return Native.version();
    }

    /** Close the store and free the handle.  Idempotent; waits for a running
     *  call on another thread to finish. */
    @Override
    public void close() {
        synchronized (lock) {
            try {
                handle.free();
                tracker.closed();
            } finally {
                reach();
            }
        }
    }

    public boolean isClosed() {
        return handle.get() == 0;
    }

    private long h() {
        long p = handle.get();
        if (p == 0) throw new VaultException(12, "the vault is closed");
        return p;
    }

    // ---- records ----

    private static String[][] split(Map<String, String> fields) {
        String[] names = new String[fields.size()], values = new String[fields.size()];
        int i = 0;
        for (Map.Entry<String, String> e : fields.entrySet()) {
            names[i] = e.getKey();
            values[i++] = e.getValue();
        }
        return new String[][] {names, values};
    }

    /** Insert a new record into table ("customer", "contact", "visit") with
     *  the given fields; returns its id (a UUIDv7).  One transaction. */
    public String insert(String table, Map<String, String> fields) {
        String[][] nv = split(fields);
        synchronized (lock) {
            try {
                return Native.insert(h(), table, nv[0], nv[1]);
            } finally {
                reach();
            }
        }
    }

    /** Change fields of an existing record (a null value clears one); only
     *  these fields are written.  NOT_FOUND if there is no such record. */
    public void update(String table, String id, Map<String, String> changes) {
        String[][] nv = split(changes);
        synchronized (lock) {
            try {
                Native.update(h(), table, id, nv[0], nv[1]);
            } finally {
                reach();
            }
        }
    }

    /** The record, or null if absent or deleted. */
    public Record get(String table, String id) {
        synchronized (lock) {
            try {
                return Native.get(h(), table, id);
            } finally {
                reach();
            }
        }
    }

    /** Delete (a tombstone: synced, reversible with {@link #restore}). */
    public void delete(String table, String id) {
        synchronized (lock) {
            try {
                Native.delete(h(), table, id, false);
            } finally {
                reach();
            }
        }
    }

    public void restore(String table, String id) {
        synchronized (lock) {
            try {
                Native.delete(h(), table, id, true);
            } finally {
                reach();
            }
        }
    }

    // ---- the shipped tables, typed a little ----

    public String addCustomer(Map<String, String> fields) {
        return insert("customer", fields);
    }

    public void updateCustomer(String id, Map<String, String> changes) {
        update("customer", id, changes);
    }

    public String addVisit(String customerId, Map<String, String> fields) {
        Map<String, String> f = new java.util.LinkedHashMap<>(fields);
        f.put("customer_id", customerId);
        return insert("visit", f);
    }

    public void updateVisit(String id, Map<String, String> changes) {
        update("visit", id, changes);
    }

    // ---- lists ----

    /** Customers matching stage/grade/owner (null = any), by name. */
    public List<Record> listCustomers(String stage, String grade, String owner) {
        synchronized (lock) {
            try {
                return Arrays.asList(Native.list(h(), Native.LIST_CUSTOMERS, stage, grade, owner));
            } finally {
                reach();
            }
        }
    }

    public List<Record> listCustomers() {
        return listCustomers(null, null, null);
    }

    /** Visits of one customer (null = all), newest first. */
    public List<Record> listVisits(String customerId) {
        synchronized (lock) {
            try {
                return Arrays.asList(Native.list(h(), Native.LIST_VISITS, customerId, null, null));
            } finally {
                reach();
            }
        }
    }

    /** Contacts of one customer (null = all), by name. */
    public List<Record> listContacts(String customerId) {
        synchronized (lock) {
            try {
                return Arrays.asList(Native.list(h(), Native.LIST_CONTACTS, customerId, null, null));
            } finally {
                reach();
            }
        }
    }

    /** Follow-ups due on or before date (YYYY-MM-DD; null = today, UTC). */
    public List<Record> listDue(String date) {
        synchronized (lock) {
            try {
                return Arrays.asList(Native.list(h(), Native.LIST_DUE, date, null, null));
            } finally {
                reach();
            }
        }
    }

    // ---- sync ----

    /** Enrol with fvd using a one-time code from the team's admin. */
    public void enroll(String server, String code, HttpTransport http) {
        synchronized (lock) {
            try {
                Native.enroll(h(), server, code, http);
            } finally {
                reach();
            }
        }
    }

    /** Sync until drained, the time box ends or {@link #cancelSync}; resumable.
     *  A revoked device gets a result with {@code wiped} set (close the vault). */
    public SyncResult sync(SyncOptions o) {
        if (o == null) o = new SyncOptions();
        synchronized (lock) {
            try {
                return Native.sync(h(), o.server, o.maxMs, o.batchChanges, o.requestTimeoutMs,
                                   o.maxAttempts, o.http);
            } finally {
                reach();
            }
        }
    }

    /** Ask a running {@link #sync} to stop at its next batch boundary.  Any
     *  thread; does nothing when the vault is closed or no sync runs. */
    public void cancelSync() {
        synchronized (handle) { // not the call lock: a sync holds that
            long p = handle.ptr;
            if (p != 0) Native.cancelSync(p);
        }
    }

    public SyncStatus status() {
        synchronized (lock) {
            try {
                return Native.status(h());
            } finally {
                reach();
            }
        }
    }

    /** Conflicts, newest first (unresolved only unless includeResolved). */
    public List<Conflict> conflicts(boolean includeResolved) {
        synchronized (lock) {
            try {
                return Arrays.asList(Native.conflicts(h(), includeResolved));
            } finally {
                reach();
            }
        }
    }

    /** Settle a conflict, keeping this store's value or the one that arrived. */
    public void resolveConflict(String conflictId, boolean keepMine) {
        synchronized (lock) {
            try {
                Native.resolveConflict(h(), conflictId, keepMine);
            } finally {
                reach();
            }
        }
    }

    /** A hash of every visible record and field; equal on replicas holding the same data. */
    public String stateHash() {
        synchronized (lock) {
            try {
                return Native.stateHash(h());
            } finally {
                reach();
            }
        }
    }
}
